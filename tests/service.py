"""`make check-service`: the service files in dist/.

systemd (dist/relay.service):
- `systemd-analyze verify` prints nothing (it exits 0 even on unknown keys,
  so any output fails); ExecStart must exist, so the copy checked differs
  from the unit only in ExecStart's path (this build's binary);
- `systemd-analyze security --offline=true` scores it under 2.0;
- the sandbox directives the unit promises are there;
- every system call and socket family the relay uses while serving (HTTP
  and TLS upstreams, a stream, the batch-sync helper, SIGHUP, SIGTERM;
  traced with strace) is allowed by the unit's SystemCallFilter= and
  RestrictAddressFamilies= lines, as systemd combines them.

OpenWrt (dist/openwrt/relay):
- the procd init script passes `sh -n` and `shellcheck -s sh`, and a dry
  run of start_service against stub procd_* functions sets the command,
  respawn, reload on a changed config (SIGHUP), the user, limits and
  logging, and makes the ledger's directory; a relative ledger path is
  refused;
- the config it installs (configs/router.conf) passes `relay check`;
- the package Makefile, run against stub OpenWrt include files for each
  architecture, stages the right binary (checked against SHA256SUMS), the
  init script, the config and the sysupgrade keep list.

Prints one line per check and "service: N passed, N failed"."""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'e2e'))
import harness  # noqa: E402

ROOT = harness.ROOT
UNIT = os.path.join(ROOT, 'dist', 'relay.service')
OWRT = os.path.join(ROOT, 'dist', 'openwrt', 'relay')
RELAY = os.path.join(ROOT, 'dist', 'relay-x86_64')
passed = failed = 0


def check(name, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1
        print('ok   ' + name, flush=True)
    else:
        failed += 1
        print('FAIL %s %s' % (name, str(detail)[:2000]), flush=True)
    return cond


def sh(args, **kw):
    return subprocess.run(args, capture_output=True, text=True, **kw)


def unit_copy(d):
    """The unit with ExecStart pointing at this build's binary."""
    with open(UNIT) as f:
        text = f.read()
    new = re.sub(r'^ExecStart=/usr/local/bin/relay ', 'ExecStart=%s ' % RELAY, text, flags=re.M)
    changed = [(a, b) for a, b in zip(text.splitlines(), new.splitlines()) if a != b]
    assert len(changed) == 1 and changed[0][0].startswith('ExecStart='), changed
    path = os.path.join(d, 'relay.service')
    with open(path, 'w') as f:
        f.write(new)
    return path, text


def test_systemd(d):
    path, text = unit_copy(d)
    p = sh(['systemd-analyze', 'verify', path])
    check('systemd-analyze verify: no output', p.returncode == 0 and not (p.stdout + p.stderr).strip(),
          p.stdout + p.stderr)
    p = sh(['systemd-analyze', 'security', '--offline=true', path])
    m = re.search(r'Overall exposure level for relay\.service: ([0-9.]+)', p.stdout)
    score = float(m.group(1)) if m else 99
    check('systemd-analyze security --offline=true: exposure %.1f (under 2.0)' % score,
          p.returncode == 0 and score < 2.0, p.stdout[-1500:] + p.stderr)
    for want in ('DynamicUser=yes', 'StateDirectory=relay', 'ProtectSystem=strict',
                 'NoNewPrivileges=yes', 'CapabilityBoundingSet=\n',
                 'RestrictAddressFamilies=AF_INET AF_INET6 AF_UNIX',
                 'SystemCallFilter=@system-service\n', 'ExecReload=/bin/kill -HUP $MAINPID'):
        check('unit has ' + want.strip(), want in text + '\n')
    return text


def groups():
    """Every syscall group systemd knows, expanded: {"@name": set}."""
    out = sh(['systemd-analyze', 'syscall-filter']).stdout
    raw, cur = {}, None
    for line in out.splitlines():
        if line.startswith('@'):
            cur = line.strip()
            raw[cur] = []
        elif cur and line.strip() and not line.strip().startswith('#'):
            raw[cur].append(line.strip())

    def expand(name, seen=()):
        s = set()
        for x in raw.get(name, []):
            s |= expand(x, seen + (name,)) if x.startswith('@') and x not in seen else {x}
        return s
    return {g: expand(g) for g in raw}


def allowed_syscalls(text):
    """Apply the unit's SystemCallFilter= lines as systemd does: the first
    (an allow list) sets the list, '~' lines remove, later lines add."""
    g = groups()
    allow = None
    for line in text.splitlines():
        if not line.startswith('SystemCallFilter='):
            continue
        v = line.split('=', 1)[1].strip()
        deny = v.startswith('~')
        names = set()
        for w in v.lstrip('~').split():
            names |= g.get(w, set()) if w.startswith('@') else {w}
        if allow is None:
            assert not deny
            allow = names
        elif deny:
            allow -= names
        else:
            allow |= names
    return allow or set()


def trace_relay(d):
    """The syscalls and socket families of a relay serving for a while."""
    env = harness.Env()
    try:
        from test_tls import certs
        cd = certs(env)
        m = env.start_mock(['--tls-port', '0', '--tls-cert', os.path.join(cd, 'localhost.pem'),
                            '--tls-key', os.path.join(cd, 'localhost.key')])
        out = os.path.join(d, 'strace')
        wrap = os.path.join(d, 'relay-traced')
        with open(wrap, 'w') as f:
            f.write('#!/bin/sh\nexec strace -f -qq -o %s %s "$@"\n' % (out, RELAY))
        os.chmod(wrap, 0o755)
        conf = harness.config(m.port, ledger='relay-ledger.jsonl sync=batch', providers=[
            'provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % m.port,
            'credential mock env:MOCK_KEY_1',
            'provider sec base=https://localhost:%d/v1' % m.tls_port, 'credential sec env:MOCK_KEY_1'],
            models=['model gpt-5.2 text 1.75 14.00 mock/gpt-5.2',
                    'model gpt-tls text 1.75 14.00 sec/gpt-tls'],
            extra='ca_file %s\n' % os.path.join(cd, 'ca.pem'))
        r = env.start_relay(conf, env=harness.cred_env(), binary=wrap)
        auth = {'Authorization': 'Bearer ' + harness.KEY}
        ok = []
        for model, stream in (('gpt-5.2', False), ('gpt-5.2', True), ('gpt-tls', False)):
            res = harness.http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                               {'model': model, 'stream': stream, 'messages': []}, auth)
            ok.append(res.status)
        harness.wait_for(lambda: 'relay_ledger_fsyncs_total' in harness.http(
            '127.0.0.1', r.port, 'GET', '/metrics').body.decode(), 5, 'metrics')
        # signals go to the relay, strace's child (not to strace)
        with open('/proc/%d/task/%d/children' % (r.proc.pid, r.proc.pid)) as f:
            pid = int(f.read().split()[0])
        os.kill(pid, signal.SIGHUP)
        harness.wait_for(lambda: 'reload' in r.log().lower(), 10, 'reload')
        os.kill(pid, signal.SIGTERM)
        rc = r.proc.wait(20)        # strace exits with the relay's status
        r.stop()
        check('the traced relay served (%s) and stopped with 0' % ok,
              ok == [200, 200, 200] and rc == 0, (ok, rc, r.log()[-800:]))
        calls, fams = set(), set()
        with open(out) as f:
            for line in f:
                mm = re.match(r'\d+\s+([a-z0-9_]+)\(', line)
                if mm:
                    calls.add(mm.group(1))
                for fam in re.findall(r'\b(?:socket|socketpair)\((AF_[A-Z0-9]+)', line):
                    fams.add(fam)
        return calls, fams
    finally:
        env.close()


def test_syscalls(d, text):
    if not check('strace found', shutil.which('strace') is not None, '(tools/setup.sh service)'):
        return
    calls, fams = trace_relay(d)
    allow = allowed_syscalls(text)
    # execve is the service manager's (strace's here), before the filter
    calls.discard('execve')
    check('the relay used %d system calls, all allowed by SystemCallFilter= (%s)'
          % (len(calls), ' '.join(sorted(calls))), calls and calls <= allow,
          'not allowed: %s' % sorted(calls - allow))
    fam_line = [x for x in text.splitlines() if x.startswith('RestrictAddressFamilies=')][0]
    allowed_fams = set(fam_line.split('=', 1)[1].split())
    check('socket families %s allowed by RestrictAddressFamilies=' % sorted(fams),
          fams and fams <= allowed_fams, sorted(fams - allowed_fams))


def openwrt_root(d):
    """A fake router root: the init script and config with their paths
    moved under d."""
    etc = os.path.join(d, 'etc', 'relay')
    os.makedirs(etc, exist_ok=True)
    with open(os.path.join(OWRT, 'files', 'relay.conf')) as f:
        conf = f.read().replace('/etc/relay', etc)
    with open(os.path.join(etc, 'relay.conf'), 'w') as f:
        f.write(conf)
    for k in ('openai.key', 'deepseek.key'):
        with open(os.path.join(etc, k), 'w') as f:
            f.write('sk-test\n')
    with open(os.path.join(OWRT, 'files', 'relay.init')) as f:
        init = f.read().replace('/etc/relay', etc).replace('/usr/sbin/relay', RELAY)
    path = os.path.join(d, 'relay.init')
    with open(path, 'w') as f:
        f.write(init)
    return path, etc


DRY_RUN = r'''
set -u
log=$1; init=$2
procd_open_instance() { echo "open_instance $*" >>"$log"; }
procd_close_instance() { echo "close_instance" >>"$log"; }
procd_set_param() { echo "param $*" >>"$log"; }
procd_append_param() { echo "append $*" >>"$log"; }
procd_add_reload_trigger() { echo "reload_trigger $*" >>"$log"; }
chown() { echo "chown $*" >>"$log"; }
chgrp() { echo "chgrp $*" >>"$log"; }
. "$init"
start_service
echo "rc $?" >>"$log"
'''


def dry_run(d, init):
    log = os.path.join(d, 'procd.log')
    if os.path.exists(log):
        os.remove(log)
    p = sh(['sh', '-c', DRY_RUN, 'dry-run', log, init])
    with open(log) as f:
        return f.read().splitlines(), p


def test_openwrt(d):
    init = os.path.join(OWRT, 'files', 'relay.init')
    p = sh(['sh', '-n', init])
    check('relay.init: sh -n', p.returncode == 0, p.stderr)
    p = sh(['shellcheck', '-s', 'sh', init])
    check('relay.init: shellcheck -s sh', p.returncode == 0 and not p.stdout.strip(), p.stdout)

    path, etc = openwrt_root(d)
    lines, p = dry_run(d, path)
    conf = os.path.join(etc, 'relay.conf')
    want = ['open_instance ',
            'param command %s -c %s' % (RELAY, conf),
            'param respawn 3600 5 5',
            'param file ' + conf,
            'param reload_signal HUP',
            'param user relay', 'param group relay', 'param no_new_privs 1',
            'param stdout 1', 'param stderr 1', 'close_instance', 'rc 0']
    missing = [w for w in want if w not in lines]
    check('dry run: start_service sets command, respawn, reload on a changed config (HUP), '
          'user, logging', not missing, (missing, lines, p.stderr))
    check('dry run: an open file limit', any(x.startswith('param limits nofile=') for x in lines), lines)
    data = os.path.join(etc, 'data')
    check('dry run: the ledger directory %s made, for the relay user' % data,
          os.path.isdir(data) and 'chown relay:relay ' + data in lines, lines)
    # A relative ledger path would land in / (procd's working directory).
    with open(conf) as f:
        text = f.read()
    with open(conf, 'w') as f:
        f.write(re.sub(r'^ledger\s+\S+', 'ledger ledger.jsonl', text, flags=re.M))
    lines, p = dry_run(d, path)
    check('dry run: a relative ledger path is refused before procd hears of it',
          'rc 1' in lines and not any(x.startswith('open_instance') for x in lines)
          and 'absolute ledger path' in p.stderr, (lines, p.stderr))
    with open(conf, 'w') as f:
        f.write(text)
    p = sh([os.path.join(ROOT, 'relay'), 'check', '-c', conf])
    check('configs/router.conf passes relay check', p.returncode == 0, p.stdout[-500:] + p.stderr)


STUB_RULES = '''
INCLUDE_DIR := $(TOPDIR)/include
BUILD_DIR := $(TOPDIR)/build
CP := cp -fpR
INSTALL_DIR := install -d -m0755
INSTALL_BIN := install -m0755
INSTALL_DATA := install -m0644
INSTALL_CONF := install -m0600
'''
STUB_PACKAGE = '''
PKG_BUILD_DIR := $(BUILD_DIR)/$(PKG_NAME)-$(PKG_VERSION)
define BuildPackage
stage:
\t$$(Build/Prepare)
\t$$(Build/Compile)
\t$$(call Package/$(1)/install,$(STAGE))
\t@echo 'title: $$(TITLE)'
\t@echo 'userid: $$(USERID)'
\t@echo 'conffiles: $$(strip $$(Package/$(1)/conffiles))'
endef
'''


def test_openwrt_package(d):
    top = os.path.join(d, 'sdk')
    os.makedirs(os.path.join(top, 'include'))
    with open(os.path.join(top, 'rules.mk'), 'w') as f:
        f.write(STUB_RULES)
    with open(os.path.join(top, 'include', 'package.mk'), 'w') as f:
        f.write(STUB_PACKAGE)
    for arch, binary in (('mipsel', 'relay-mipsel'), ('arm', 'relay-armv7'),
                         ('aarch64', 'relay-aarch64'), ('x86_64', 'relay-x86_64')):
        stage = os.path.join(d, 'stage-' + arch)
        # Package/relay's variables are read at $(eval) time, so the stub
        # echoes them from the Package/relay define
        p = sh(['make', '--no-print-directory', '-C', OWRT, 'TOPDIR=' + top, 'ARCH=' + arch,
                'STAGE=' + stage, 'stage'])
        files = {}
        for base, _, names in os.walk(stage):
            for n in names:
                full = os.path.join(base, n)
                files[os.path.relpath(full, stage)] = full

        def same(rel, src):
            try:
                with open(files[rel], 'rb') as a, open(src, 'rb') as b:
                    return a.read() == b.read()
            except (KeyError, OSError):
                return False
        good = (p.returncode == 0
                and sorted(files) == ['etc/init.d/relay', 'etc/relay/relay.conf',
                                      'lib/upgrade/keep.d/relay', 'usr/sbin/relay']
                and same('usr/sbin/relay', os.path.join(ROOT, 'dist', binary))
                and same('etc/init.d/relay', os.path.join(OWRT, 'files', 'relay.init'))
                and same('etc/relay/relay.conf', os.path.join(ROOT, 'configs', 'router.conf'))
                and os.access(files.get('usr/sbin/relay', '/nonexistent'), os.X_OK)
                and 'conffiles: /etc/relay/relay.conf' in p.stdout)
        check('package Makefile, ARCH=%s: stages %s (SHA256SUMS checked), init script, '
              'config, keep list' % (arch, binary), good, (p.returncode, sorted(files), p.stdout[-600:], p.stderr[-600:]))


def main():
    d = tempfile.mkdtemp(prefix='relay-service-')
    try:
        for t in (lambda: test_syscalls(d, test_systemd(d)), lambda: test_openwrt(d),
                  lambda: test_openwrt_package(d)):
            try:
                t()
            except Exception as e:
                import traceback
                check('(crashed)', False, traceback.format_exc() + repr(e))
    finally:
        shutil.rmtree(d, ignore_errors=True)
    print('service: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
