"""`make test-image`: the images `make image` built (tools/image.sh), checked
and run with the container engine (podman, or docker with an engine).

- relay:latest is under 1 MiB, holds exactly /relay (this machine's
  dist/ binary) and /data (owned by 65534), runs as 65534:65534 in /data,
  exposes 8080, and keeps /data on a volume;
- each relay:<arch> holds that target's dist/ binary and says so in its
  config; dist/relay-oci.tar indexes all four platforms with the same
  images;
- relay:latest runs (--network=host, read-only root, the config mounted,
  a named volume on /data) and relays a call to the mock upstream on
  loopback, writes its ledger into the volume as uid 65534, reloads on
  SIGHUP and stops with exit code 0 on SIGTERM;
- each foreign image starts under its static qemu (mounted in as the
  entrypoint) and prints its version.

Prints one line per check and "image: N passed, N failed"."""
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), 'e2e'))
import harness  # noqa: E402

ROOT = harness.ROOT
ARCHES = {'x86_64': ('amd64', None), 'aarch64': ('arm64', None),
          'armv7': ('arm', 'v7'), 'mipsel': ('mipsle', None)}
QEMU = {'aarch64': ['qemu-aarch64-static'], 'armv7': ['qemu-arm-static'],
        'mipsel': ['qemu-mipsel-static', '-cpu', '24Kc']}
MIB = 1 << 20
passed = failed = 0


def check(name, cond, detail=''):
    global passed, failed
    if cond:
        passed += 1
        print('ok   ' + name, flush=True)
    else:
        failed += 1
        print('FAIL %s %s' % (name, detail), flush=True)
    return cond


def engine():
    if shutil.which('podman'):
        return 'podman', 'localhost/relay'
    if shutil.which('docker') and subprocess.run(['docker', 'info'], capture_output=True).returncode == 0:
        return 'docker', 'relay'
    raise SystemExit('image: neither podman nor a Docker engine (tools/setup.sh image)')


ENG, NAME = engine()


def run(*args, check_rc=True, timeout=60):
    p = subprocess.run([ENG] + list(args), capture_output=True, text=True, timeout=timeout)
    if check_rc and p.returncode != 0:
        raise AssertionError('%s %s: %s' % (ENG, ' '.join(args), p.stderr.strip()))
    return p


def inspect(ref):
    return json.loads(run('image', 'inspect', ref).stdout)[0]


def sha(data):
    return hashlib.sha256(data).hexdigest()


def files_of(ref):
    """{path: (mode, uid, gid, sha256 or None)} of an image's file system."""
    c = run('create', ref).stdout.strip()
    try:
        out = subprocess.run([ENG, 'export', c], capture_output=True, timeout=60).stdout
    finally:
        run('rm', c, check_rc=False)
    files = {}
    with tarfile.open(fileobj=__import__('io').BytesIO(out)) as t:
        for m in t.getmembers():
            data = t.extractfile(m).read() if m.isfile() else None
            files[m.name.rstrip('/')] = (m.mode, m.uid, m.gid, data and sha(data))
    return files


def dist(arch):
    with open(os.path.join(ROOT, 'dist', 'relay-' + arch), 'rb') as f:
        return sha(f.read())


def native():
    m = os.uname().machine
    return {'aarch64': 'aarch64', 'arm64': 'aarch64', 'mips': 'mipsel'}.get(
        m, 'armv7' if m.startswith('armv7') else m)


def test_static_shape():
    img = inspect(NAME + ':latest')
    check('relay:latest is under 1 MiB (%d bytes)' % img['Size'], img['Size'] < MIB)
    cfg = img['Config']
    check('runs as 65534:65534', cfg.get('User') == '65534:65534', cfg.get('User'))
    check('working directory /data', cfg.get('WorkingDir') == '/data', cfg.get('WorkingDir'))
    check('exposes 8080/tcp', '8080/tcp' in (cfg.get('ExposedPorts') or {}), cfg.get('ExposedPorts'))
    check('/data is a volume', '/data' in (cfg.get('Volumes') or {}), cfg.get('Volumes'))
    check('entrypoint /relay, config from /etc/relay/relay.conf',
          cfg.get('Entrypoint') == ['/relay'] and cfg.get('Cmd') == ['-c', '/etc/relay/relay.conf'],
          (cfg.get('Entrypoint'), cfg.get('Cmd')))
    files = files_of(NAME + ':latest')
    check('holds only /relay and /data', sorted(files) == ['data', 'relay'], sorted(files))
    check('/relay is dist/relay-%s' % native(), files.get('relay', (0, 0, 0, ''))[3] == dist(native()))
    check('/data is owned by 65534 and empty',
          files.get('data', (0, -1, -1, ''))[1:3] == (65534, 65534), files.get('data'))
    for arch, (a, v) in ARCHES.items():
        ref = '%s:%s' % (NAME, arch)
        i = inspect(ref)
        f = files_of(ref)
        # (podman 4.3's inspect shows no variant: the OCI index has it)
        check('%s: %s image holding dist/relay-%s' % (ref, a, arch),
              i.get('Architecture') == a and i.get('Variant', v) == v
              and f.get('relay', (0, 0, 0, ''))[3] == dist(arch),
              (i.get('Architecture'), i.get('Variant')))


def test_oci_index():
    path = os.path.join(ROOT, 'dist', 'relay-oci.tar')
    if not check('dist/relay-oci.tar exists', os.path.exists(path)):
        return
    with tarfile.open(path) as t:
        def blob(d):
            return t.extractfile('blobs/sha256/' + d.split(':')[1]).read()
        index = json.loads(t.extractfile('index.json').read())
        lists = [json.loads(blob(m['digest'])) for m in index['manifests']]
        manifests = lists[0].get('manifests', []) if lists else []
        got = {}
        for m in manifests:
            p = m.get('platform', {})
            man = json.loads(blob(m['digest']))
            # the image's one layer holds relay: find its hash
            layer = t.extractfile('blobs/sha256/' + man['layers'][-1]['digest'].split(':')[1])
            import io
            data = layer.read()
            try:
                lt = tarfile.open(fileobj=io.BytesIO(data))
            except tarfile.ReadError:
                import gzip
                lt = tarfile.open(fileobj=io.BytesIO(gzip.decompress(data)))
            rel = [x for x in lt.getmembers() if x.name.lstrip('./') == 'relay']
            got[(p.get('architecture'), p.get('variant'))] = rel and sha(lt.extractfile(rel[0]).read())
    want = {(a, v): dist(arch) for arch, (a, v) in ARCHES.items()}
    check('the OCI index holds the four platforms, each with its dist/ binary', got == want,
          {k: (v or '')[:12] for k, v in got.items()})


def test_run_and_relay():
    d = tempfile.mkdtemp(prefix='relay-image-')
    os.chmod(d, 0o755)
    mock = harness.Mock(d)
    vol = 'relay-image-test-%d' % os.getpid()
    name = 'relay-image-test-%d' % os.getpid()
    conf = os.path.join(d, 'relay.conf')
    with open(conf, 'w') as f:
        f.write(harness.config(mock.port, ledger='ledger.jsonl sync=batch'))
    os.chmod(conf, 0o644)
    try:
        run('volume', 'create', vol)
        args = ['run', '-d', '--name', name, '--network=host', '--read-only',
                '--ulimit', 'nofile=20000:20000', '--ulimit', 'nproc=4096:4096',
                '-v', conf + ':/etc/relay/relay.conf:ro', '-v', vol + ':/data',
                '-e', 'MOCK_KEY_1=sk-in-container', NAME + ':latest']
        run(*args)

        def port():
            st = json.loads(run('inspect', name).stdout)[0]['State']
            assert st['Running'] or st['ExitCode'] == 0, ('exited', st, logs())
            m = re.search(r'listening on http://127\.0\.0\.1:(\d+)', logs())
            return m and int(m.group(1))

        def logs():
            p = run('logs', name, check_rc=False)
            return p.stdout + p.stderr
        p = harness.wait_for(port, 20, 'the relay in the container to listen')
        res = harness.http('127.0.0.1', p, 'POST', '/v1/chat/completions',
                           {'model': 'gpt-5.2', 'messages': [{'role': 'user', 'content': 'hi'}]},
                           {'Authorization': 'Bearer ' + harness.KEY})
        check('a call relayed from the container: 200 via mock/gpt-5.2-2026-01-01',
              res.status == 200 and res.header('x-relay-route') == 'mock/gpt-5.2-2026-01-01',
              (res.status, res.body[:200]))
        last = mock.stats()['last']
        check('the mock saw the credential from the container environment',
              last['headers']['authorization'] == 'Bearer sk-in-container', last['headers'])
        pid = json.loads(run('inspect', name).stdout)[0]['State']['Pid']
        with open('/proc/%d/status' % pid) as f:
            uid = [line.split()[1:] for line in f if line.startswith('Uid:')][0]
        check('the relay runs as uid 65534', uid[0] == '65534', uid)
        mp = json.loads(run('volume', 'inspect', vol).stdout)[0]['Mountpoint']
        harness.http('127.0.0.1', p, 'GET', '/healthz')       # settles the ledger write

        def ledger():
            try:
                with open(os.path.join(mp, 'ledger.jsonl')) as f:
                    return [json.loads(x) for x in f if x.strip()]
            except OSError:
                return []
        lines = harness.wait_for(lambda: [x for x in ledger() if x.get('type') == 'charge'], 10,
                                 'a charge line in the volume')
        st = os.stat(os.path.join(mp, 'ledger.jsonl'))
        check('the ledger is in the /data volume, written by 65534 (%d charge line)' % len(lines),
              len(lines) == 1 and st.st_uid == 65534, (len(lines), st.st_uid))
        run('kill', '--signal', 'HUP', name)
        harness.wait_for(lambda: 'reload' in logs().lower(), 10, 'the reload log line')
        check('SIGHUP reloads the config', 'reload' in logs().lower())
        t0 = time.monotonic()
        run('stop', '-t', '20', name, timeout=40)
        st = json.loads(run('inspect', name).stdout)[0]['State']
        check('SIGTERM stops it with exit code 0 (%.1f s)' % (time.monotonic() - t0),
              st['ExitCode'] == 0, (st['ExitCode'], logs()[-500:]))
    except Exception as e:      # a broken run is a failure, not a crash
        check('the container run', False, repr(e))
    finally:
        run('rm', '-f', name, check_rc=False)
        run('volume', 'rm', '-f', vol, check_rc=False)
        mock.stop()
        shutil.rmtree(d, ignore_errors=True)


def test_foreign_images_start_under_qemu():
    for arch, q in QEMU.items():
        exe = shutil.which(q[0])
        if not check('%s found' % q[0], exe is not None, '(tools/setup.sh cross)'):
            continue
        p = run('run', '--rm', '--network=none', '--ulimit', 'nofile=1024:1024',
                '--ulimit', 'nproc=4096:4096',
                '-v', exe + ':/qemu:ro', '--entrypoint', '/qemu',
                '%s:%s' % (NAME, arch), *q[1:], '/relay', 'version', check_rc=False)
        check('%s:%s starts under %s: %s' % (NAME, arch, ' '.join(q), p.stdout.strip()),
              p.returncode == 0 and p.stdout.startswith('relay '), p.stderr.strip()[-300:])


def main():
    for t in (test_static_shape, test_oci_index, test_run_and_relay,
              test_foreign_images_start_under_qemu):
        try:
            t()
        except Exception as e:
            check(t.__name__, False, repr(e))
    print('image: %d passed, %d failed' % (passed, failed))
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
