"""Several relays (SPEC §12): each keeps its own hash-chained ledger whose
lines say which relay wrote them ("node"), `relay ledger report` merges
the ledgers of a fleet, and relays that name one store (a real
redis-server on loopback) share its wallets: balance, holds and limits."""
import json
import os
import shutil
import socket
import subprocess
import threading
import time

from harness import KEY, RELAY, config, http, node, sha256_hex, wait_for

AUTH = {'Authorization': 'Bearer ' + KEY}
ADMIN = 'rk-admin-test-0000000000000000000009'
STORE_PW = 'store-pw-test-000000000000000000007'


class Redis:
    """A throwaway redis-server (or REDIS_SERVER) on loopback: no
    persistence, so a restart loses everything, as a lost store does."""

    def __init__(self, workdir, password=None, persist=False):
        binary = os.environ.get('REDIS_SERVER') or shutil.which('redis-server') or \
            shutil.which('valkey-server')
        # Never a silent skip: .ci/run installs redis-server.
        assert binary, 'no redis-server or valkey-server (apt-get install redis-server)'
        self.binary, self.workdir, self.password = binary, workdir, password
        self.persist = persist
        with socket.socket() as so:
            so.bind(('127.0.0.1', 0))
            self.port = so.getsockname()[1]
        self.proc = None
        self.start()

    def start(self):
        # persist: every write in the append-only file before its reply,
        # the setting README asks of a fleet's store.
        args = [self.binary, '--port', str(self.port), '--bind', '127.0.0.1', '--save', '',
                '--appendonly', 'yes' if self.persist else 'no', '--appendfsync', 'always',
                '--dir', self.workdir, '--daemonize', 'no',
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
        # A relay serving on the store sees the rebuilt balance.
        with open(os.path.join(wd, 'serve.conf'), 'w') as f:
            f.write('listen 127.0.0.1:0\nledger serve.jsonl sync=none\n' + open(
                os.path.join(wd, 'fleet.conf')).read())
        r = env.start_relay(open(os.path.join(wd, 'serve.conf')).read(),
                            env={'STORE_PW': STORE_PW})
        w = http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, AUTH).json()
        assert w['balance_nano'] == bal, w
        r.stop()
        assert STORE_PW not in r.log()
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


# ---- serving on a shared store -------------------------------------------

PRICE = 3578400     # nano-CNY of one mock chat: 12 in + 34 out of gpt-5.2


def fleet_relays(env, m, redis, n=3, wallet_opts='overdraft=0', extra=''):
    """n relays on one store, each with its own ledger and node name."""
    out = []
    for i in range(n):
        conf = config(m.port, ledger='ledger-%d.jsonl sync=none' % i, wallets=False,
                      extra='currency CNY rate=7.2000\nnode relay-%d\nadmin_key sha256:%s\n'
                            'wallet acme key=sha256:%s %s\n'
                            'store redis://127.0.0.1:%d prefix=f: timeout=1s\n%s' % (
                                i, sha256_hex(ADMIN), sha256_hex(KEY), wallet_opts, redis.port,
                                extra))
        out.append(env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'}))
    return out


def credit(r, amount):
    return http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit', {'amount': amount},
                {'Authorization': 'Bearer ' + ADMIN})


def wallet(r):
    return http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, AUTH)


def charged(r, i):
    """The charges in relay i's ledger (nano-CNY), after its pending lines."""
    return sum(l.get('cny_nano', 0) for l in lines(r, 'ledger-%d.jsonl' % i)
               if l.get('type') == 'charge')


def hammer(relays, stop, results, per_thread=5000, seconds=60):
    """Two threads per relay that call it until stop is set (at most
    per_thread calls and seconds each)."""
    end = time.monotonic() + seconds

    def run(r):
        for _ in range(per_thread):
            if stop.is_set() or time.monotonic() > end:
                return
            try:
                results.append(chat(r).status)
            except OSError:
                results.append('conn')
    ts = [threading.Thread(target=run, args=(r,)) for r in relays for _ in range(2)]
    for t in ts:
        t.start()
    return ts


def test_three_relays_never_overdraw_one_wallet_together(env):
    m = env.start_mock()
    redis = Redis(env.dir)
    try:
        relays = fleet_relays(env, m, redis)
        c = credit(relays[0], '0.05')
        assert c.status == 200 and c.json()['balance'] == '0.05', c.body
        stop, results = threading.Event(), []
        for t in hammer(relays, stop, results, per_thread=40):
            t.join(60)
        ok = results.count(200)
        # Each relay held against the one balance: a few got through, the
        # rest were refused with 402, none was let through for free.
        assert ok >= 5 and results.count(402) > 0, results
        assert set(results) <= {200, 402}, results
        spent = sum(charged(r, i) for i, r in enumerate(relays))
        assert spent == ok * PRICE and spent <= 5 * 10**7, (spent, ok)
        # Every relay shows the store's balance: credits minus the charges
        # of all three ledgers, nothing held.
        want = 5 * 10**7 - spent
        for r in relays:
            w = wallet(r).json()
            assert w['balance_nano'] == want and w['held_nano'] == 0, w
        assert redis.cmd('HGET', 'f:{acme}', 'bal') == str(want)
        # The 402 says why, in the fleet's terms.
        e = chat(relays[2])
        assert e.status == 402 and 'held by running requests of the fleet' in \
            e.json()['error']['message'], e.body
    finally:
        redis.stop()


def test_a_shared_rpm_holds_exactly_across_relays(env):
    m = env.start_mock()
    redis = Redis(env.dir)
    try:
        relays = fleet_relays(env, m, redis, wallet_opts='overdraft=0 rpm=5')
        assert credit(relays[0], '100').status == 200
        got = [chat(relays[i % 3]) for i in range(9)]
        assert [g.status for g in got] == [200] * 5 + [429] * 4, [g.status for g in got]
        ra = int(dict(got[5].headers)['retry-after'])
        assert 1 <= ra <= 60, ra
        assert got[5].json()['error']['code'] == 'rate_limited'
        w = wallet(relays[1]).json()
        assert w['used']['rpm'] == 5 and w['limits']['rpm'] == 5, w
    finally:
        redis.stop()


def test_store_down_is_503_and_a_restart_loses_nothing(env):
    m = env.start_mock()
    redis = Redis(env.dir, persist=True)
    try:
        relays = fleet_relays(env, m, redis)
        assert credit(relays[0], '1000').status == 200
        stop, results = threading.Event(), []
        ts = hammer(relays, stop, results)
        wait_for(lambda: results.count(200) >= 20, 30, '20 answers')
        redis.stop()        # SIGKILL mid-load
        # While it is down: 503 store_unavailable, never a free pass, soon.
        t0 = time.monotonic()
        e = wait_for(lambda: (lambda x: x if x.status == 503 else None)(chat(relays[1])), 10,
                     'a 503 while the store is down')
        assert e.json()['error']['code'] == 'store_unavailable', e.body
        assert time.monotonic() - t0 < 5
        w = wallet(relays[0])
        assert w.status == 503 and w.json()['error']['code'] == 'store_unavailable'
        assert credit(relays[0], '1').status == 503
        # ... and wrote nothing: the ledger has the one credit of the start.
        assert [l['type'] for l in lines(relays[0], 'ledger-0.jsonl')].count('credit') == 1
        redis.start()       # the same data, from its append-only file
        wait_for(lambda: chat(relays[2]).status == 200, 15, 'service back after the restart')
        n = len(results)
        wait_for(lambda: len(results) >= n + 20, 30, 'load going on after the restart')
        stop.set()
        for t in ts:
            t.join(60)
        assert set(results) <= {200, 503}, set(results)
        spent = sum(charged(r, i) for i, r in enumerate(relays))
        # Settles that failed while it was down went again: the store has
        # every charge of the three ledgers, once.
        want = 1000 * 10**9 - spent
        # Once no settle waits (a relay sends a failed one again every
        # 250 ms), the store has every charge of the three ledgers, once,
        # and no hold is left: those of the calls refused at the crash
        # (whether or not the store had taken them) are released.
        wait_for(lambda: all('\nrelay_store_backlog 0\n' in http(
            '127.0.0.1', r.port, 'GET', '/metrics').body.decode() for r in relays), 15,
            'every settle taken by the store')
        want = 1000 * 10**9 - spent
        for r in relays:
            w = wallet(r).json()
            assert w['balance_nano'] == want and w['held_nano'] == 0, w
        assert 'relay_store_unavailable_total 0\n' not in http(
            '127.0.0.1', relays[0].port, 'GET', '/metrics').body.decode()
        assert spent == results.count(200) * PRICE + PRICE, (spent, results.count(200))
    finally:
        redis.stop()


def test_a_store_unreachable_from_the_start(env):
    m = env.start_mock()
    with socket.socket() as so:
        so.bind(('127.0.0.1', 0))
        port = so.getsockname()[1]
    conf = config(m.port, extra='store redis://127.0.0.1:%d password=env:STORE_PW\n' % port)
    r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up', 'STORE_PW': STORE_PW})
    e = chat(r)
    assert e.status == 503 and e.json()['error']['code'] == 'store_unavailable', e.body
    # Token counting is free: it needs no store.
    assert http('127.0.0.1', r.port, 'GET', '/healthz').status == 200
    assert 'store_unavailable' in e.body.decode() and STORE_PW not in r.log()
    # A store that refuses the password: 503 too, and the log says why
    # without the password.
    redis = Redis(env.dir, password='the-right-one-000000000')
    try:
        conf = config(m.port, ledger='second.jsonl sync=none',
                      extra='store redis://127.0.0.1:%d password=env:STORE_PW\n' % redis.port)
        r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up', 'STORE_PW': STORE_PW})
        e = chat(r)
        assert e.status == 503 and e.json()['error']['code'] == 'store_unavailable', e.body
        wait_for(lambda: 'AUTH refused' in r.log(), 5, 'the refusal logged')
        assert STORE_PW not in r.log()
    finally:
        redis.stop()


def test_the_official_sdks_through_a_relay_on_the_store(env):
    """The pinned openai and @anthropic-ai/sdk clients against relays on a
    store: a call, a stream (max_streams counted and given back), and the
    store's 503 as the SDK reports it."""
    m = env.start_mock()
    redis = Redis(env.dir)
    try:
        a, b = fleet_relays(env, m, redis, n=2, wallet_opts='overdraft=0 max_streams=1')
        assert credit(a, '10').status == 200
        sdk = {'RELAY_KEY': KEY}
        out = node('openai_client.mjs', ['chat'], dict(sdk, RELAY_URL='http://127.0.0.1:%d/v1'
                                                       % a.port))
        assert out.get('content') == 'hello from mock', out
        out = node('openai_client.mjs', ['stream'], dict(sdk, RELAY_URL='http://127.0.0.1:%d/v1'
                                                         % b.port))
        assert out.get('content') == 'tok0 tok1 tok2 tok3 tok4 ', out
        out = node('anthropic_client.mjs', ['stream'], dict(
            sdk, RELAY_BASE='http://127.0.0.1:%d' % a.port))
        assert out.get('text'), out
        spent = charged(a, 0) + charged(b, 1)
        for r in (a, b):
            w = wallet(r).json()
            # Every charge of both ledgers is in the store, no hold or
            # stream left open (max_streams=1 let each stream in turn).
            assert w['balance_nano'] == 10 * 10**9 - spent and w['held_nano'] == 0, w
            assert w['used']['streams'] == 0, w
        redis.stop()
        out = node('openai_client.mjs', ['error', 'gpt-5.2'], dict(
            sdk, RELAY_URL='http://127.0.0.1:%d/v1' % b.port))
        assert out.get('status') == 503 and 'store' in out.get('message', ''), out
    finally:
        redis.stop()
