"""Several relays (SPEC §12): each keeps its own hash-chained ledger whose
lines say which relay wrote them ("node"), and `relay ledger report`
merges the ledgers of a fleet."""
import json
import os
import shutil
import socket
import subprocess
import time

from harness import KEY, RELAY, config, http, sha256_hex, wait_for

AUTH = {'Authorization': 'Bearer ' + KEY}
ADMIN = 'rk-admin-test-0000000000000000000009'
STORE_PW = 'store-pw-test-000000000000000000007'


class Redis:
    """A throwaway redis-server (or REDIS_SERVER) on loopback: no
    persistence, so a restart loses everything, as a lost store does."""

    def __init__(self, workdir, password=None):
        binary = os.environ.get('REDIS_SERVER') or shutil.which('redis-server') or \
            shutil.which('valkey-server')
        # Never a silent skip: .ci/run installs redis-server.
        assert binary, 'no redis-server or valkey-server (apt-get install redis-server)'
        self.binary, self.workdir, self.password = binary, workdir, password
        with socket.socket() as so:
            so.bind(('127.0.0.1', 0))
            self.port = so.getsockname()[1]
        self.proc = None
        self.start()

    def start(self):
        args = [self.binary, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                '--appendonly', 'no', '--dir', self.workdir, '--daemonize', 'no',
                '--logfile', os.path.join(self.workdir, 'redis.log')]
        if self.password:
            args += ['--requirepass', self.password]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_for(self.ping, what='redis-server answering PING')

    def ping(self):
        try:
            return self.cmd('PING') == 'PONG'
        except OSError:
            return False

    def cmd(self, *args):
        with socket.create_connection(('127.0.0.1', self.port), timeout=5) as so:
            f = so.makefile('rb')
            cmds = ([('AUTH', self.password)] if self.password else []) + [args]
            so.sendall(b''.join(b'*%d\r\n' % len(c) + b''.join(
                b'$%d\r\n%s\r\n' % (len(str(a).encode()), str(a).encode()) for a in c) for c in cmds))
            out = [self._read(f) for _ in cmds]
            return out[-1]

    def _read(self, f):
        line = f.readline()
        if not line.endswith(b'\r\n'):
            raise OSError('connection closed')
        t, rest = line[:1], line[1:-2]
        if t in (b'+', b'-'):
            return rest.decode()
        if t == b':':
            return int(rest)
        if t == b'$':
            n = int(rest)
            return None if n < 0 else f.read(n + 2)[:-2].decode()
        if t == b'*':
            n = int(rest)
            return None if n < 0 else [self._read(f) for _ in range(n)]
        raise OSError('bad reply %r' % line)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def lines(r, name):
    http('127.0.0.1', r.port, 'GET', '/healthz')  # the pass that answered has written
    with open(os.path.join(r.workdir, name), 'rb') as f:
        return [json.loads(l) for l in f.read().splitlines()]


def chat(r):
    return http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                {'model': 'gpt-5.2', 'messages': [], 'max_tokens': 100}, AUTH)


def test_each_relay_names_itself_and_report_merges_their_ledgers(env):
    m = env.start_mock()
    relays = []
    for name, n in (('relay-a', 2), ('relay-b', 3)):
        conf = config(m.port, ledger='ledger-%s.jsonl sync=none' % name,
                      extra='currency CNY rate=7.2000\nnode %s' % name)
        r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
        relays.append((r, name))
        for _ in range(n):
            assert chat(r).status == 200
    for r, name in relays:
        got = lines(r, 'ledger-%s.jsonl' % name)
        assert len(got) == (2 if name == 'relay-a' else 3)
        assert all(l['node'] == name for l in got), got
        p = subprocess.run([RELAY, 'ledger', 'verify', 'ledger-%s.jsonl' % name], cwd=r.workdir,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    wd = relays[0][0].workdir
    p = subprocess.run([RELAY, 'ledger', 'report', 'ledger-relay-a.jsonl', 'ledger-relay-b.jsonl',
                        '--by', 'node'], cwd=wd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rows = {l.split()[0]: l.split() for l in p.stdout.splitlines()}
    # 12 in + 34 out per request, 0.003578 CNY
    assert rows['relay-a'][1:3] == ['2', '24'] and rows['relay-b'][1:3] == ['3', '36'], p.stdout
    assert rows['total'][1] == '5' and rows['total'][-1] == '0.02', p.stdout
    p = subprocess.run([RELAY, 'ledger', 'report', 'ledger-relay-a.jsonl', 'ledger-relay-b.jsonl'],
                       cwd=wd, capture_output=True, text=True)
    rows = {l.split()[0]: l.split() for l in p.stdout.splitlines()}
    assert p.returncode == 0 and rows['acme'][1] == '5', p.stdout
    # A damaged second ledger is named.
    with open(os.path.join(wd, 'ledger-relay-b.jsonl'), 'r+b') as f:
        data = f.read()
        f.seek(0)
        f.write(data.replace(b'"in":12', b'"in":13', 1))
    p = subprocess.run([RELAY, 'ledger', 'report', 'ledger-relay-a.jsonl', 'ledger-relay-b.jsonl'],
                       cwd=wd, capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.startswith('ledger-relay-b.jsonl: line 2'), p.stderr


def rebuild(wd, conf, files, env=None):
    e = dict(os.environ)
    e.update(env or {})
    return subprocess.run([RELAY, 'store', 'rebuild', '-c', conf] + files, cwd=wd,
                          capture_output=True, text=True, env=e, timeout=60)


def test_store_rebuild_sets_the_balances_from_every_ledger(env):
    m = env.start_mock()
    redis = Redis(env.dir, password=STORE_PW)
    try:
        relays = []
        for name, top_up, n in (('relay-a', '10.00', 2), ('relay-b', '5.00', 3)):
            conf = config(m.port, ledger='ledger-%s.jsonl sync=none' % name,
                          extra='currency CNY rate=7.2000\nnode %s\nadmin_key sha256:%s' % (
                              name, sha256_hex(ADMIN)))
            r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
            assert http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit', {'amount': top_up},
                        {'Authorization': 'Bearer ' + ADMIN}).status == 200
            for _ in range(n):
                assert chat(r).status == 200
            relays.append(r)
        bal = sum(http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, AUTH).json()['balance_nano']
                  for r in relays)
        for r in relays:
            r.stop()
        assert bal == 15 * 10**9 - 5 * 3578400
        wd = env.dir
        with open(os.path.join(wd, 'fleet.conf'), 'w') as f:
            f.write('currency CNY rate=7.2000\nwallet acme key=sha256:%s\nwallet idle key=sha256:%s\n'
                    'store redis://127.0.0.1:%d password=env:STORE_PW prefix=t:\n' % (
                        sha256_hex(KEY), sha256_hex('rk-idle'), redis.port))
        files = ['ledger-relay-a.jsonl', 'ledger-relay-b.jsonl']
        # The store holds something stale: rebuild replaces it.
        redis.cmd('HSET', 't:{acme}', 'bal', '123')
        p = rebuild(wd, 'fleet.conf', files, {'STORE_PW': STORE_PW})
        assert p.returncode == 0, p.stderr
        assert 'acme CNY 14.98 (the store had 0.00' in p.stdout and 'idle CNY 0.00' in p.stdout, p.stdout
        assert redis.cmd('HGET', 't:{acme}', 'bal') == str(bal)
        assert redis.cmd('HGET', 't:{acme}', 'spent') == str(5 * 3578400)
        assert redis.cmd('HGET', 't:{idle}', 'bal') == '0'
        # Serving on the store is not built yet: the relay says so and
        # does not start (never each relay spending the wallet alone).
        with open(os.path.join(wd, 'serve.conf'), 'w') as f:
            f.write('listen 127.0.0.1:0\nledger serve.jsonl sync=none\n' + open(
                os.path.join(wd, 'fleet.conf')).read())
        e = dict(os.environ, STORE_PW=STORE_PW)
        p = subprocess.run([RELAY, '-c', 'serve.conf'], cwd=wd, capture_output=True, text=True,
                           env=e, timeout=30)
        assert p.returncode == 1 and 'not supported yet' in p.stderr, p.stderr
        assert STORE_PW not in p.stderr
        # Run again: the same state (it sets, it does not add).
        p = rebuild(wd, 'fleet.conf', files, {'STORE_PW': STORE_PW})
        assert p.returncode == 0 and redis.cmd('HGET', 't:{acme}', 'bal') == str(bal), p.stdout
        # A wrong password is refused by the store and never printed.
        p = rebuild(wd, 'fleet.conf', files, {'STORE_PW': 'wrong-password-0000'})
        assert p.returncode == 1 and 'AUTH' in p.stdout + p.stderr, p.stdout + p.stderr
        assert 'wrong-password' not in p.stdout + p.stderr
        # A ledger that does not verify: nothing is written.
        redis.cmd('HSET', 't:{acme}', 'bal', '7')
        with open(os.path.join(wd, 'ledger-relay-b.jsonl'), 'r+b') as f:
            data = f.read()
            f.seek(0)
            f.write(data.replace(b'"in":12', b'"in":13', 1))
        p = rebuild(wd, 'fleet.conf', files, {'STORE_PW': STORE_PW})
        assert p.returncode == 1 and 'ledger-relay-b.jsonl: line' in p.stderr, p.stderr
        assert redis.cmd('HGET', 't:{acme}', 'bal') == '7'
        # The store is down: said so, in bounded time.
        redis.stop()
        t0 = time.monotonic()
        p = rebuild(wd, 'fleet.conf', files[:1], {'STORE_PW': STORE_PW})
        assert p.returncode == 1 and 'unreachable' in p.stdout, p.stdout + p.stderr
        assert time.monotonic() - t0 < 10
    finally:
        redis.stop()
