"""Security and hostile input (issue 14, SPEC §10): one regression test per
finding, each asserting what a client, an attacker or a provider sees (the
status and code of the answer, what reaches the mock upstream, what the
ledger holds, what another local user can read).

Each test here fails on a relay built before the fixes (RELAY_BIN=... runs
the suite against another binary), except two that pin what already held
there (the overdraft promise, 414/431: said in each); the ones that need a
config option the old binary does not know fail there at start.
SECURITY.md maps each promise to its test."""
import json
import os
import select
import signal
import socket
import subprocess
import threading
import time

from harness import (KEY, KEY2, RELAY, config, connect, http, ledger_lines, raw,
                     read_response_rest, sha256_hex, wait_for)

ADMIN = 'rk-admin-test-0000000000000000000009'
CHAT = b'{"model":"gpt-5.2","messages":[{"role":"user","content":"hi"}],"max_tokens":5}'


class Conn:
    """One keep-alive client connection (optionally from another loopback
    address): send a request, read its answer, then the next one."""

    def __init__(self, port, src=None):
        self.port = port
        self.s = socket.create_connection(('127.0.0.1', port), timeout=10,
                                          source_address=(src, 0) if src else None)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.rest = b''

    def send(self, method, path, body=b'', key=KEY, headers=b''):
        auth = b'Authorization: Bearer %s\r\n' % key.encode() if key else b''
        cl = b'Content-Length: %d\r\n' % len(body) if body or method == 'POST' else b''
        self.s.sendall(b'%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n' % (method.encode(), path.encode(), self.port) +
                       auth + headers + cl + b'\r\n' + body)

    def read(self, method='POST'):
        res = read_response_rest(self.s, self.rest, method)
        self.rest = getattr(res, 'leftover', b'')
        return res

    def ask(self, method, path, body=b'', key=KEY, headers=b''):
        self.send(method, path, body, key, headers)
        return self.read(method)

    def close(self):
        self.s.close()


def chat(port, key=KEY, headers=None, body=None):
    h = {'Authorization': 'Bearer ' + key} if key else {}
    h.update(headers or {})
    return http('127.0.0.1', port, 'POST', '/v1/chat/completions', body or CHAT, h)


def verify(r):
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def ask_raw(port, data, timeout=5):
    """Raw bytes in, the answer out, also when the relay resets after it;
    the relay must close within timeout."""
    out = raw(port, data, timeout, refused_ok=True)
    assert not out.endswith(b'<timeout>'), out[-200:]
    return out


def err(res):
    return res.json()['error']


def wire(env, files):
    """A folder of whole HTTP answers for the mock's x-mock-file, and a
    mock that serves it (besides tests/data/wire)."""
    d = os.path.join(env.dir, 'wire-sec')
    os.makedirs(d, exist_ok=True)
    for name, data in files.items():
        with open(os.path.join(d, name), 'wb') as f:
            f.write(data)
    return env.start_mock(['--files', d])


def answer(status, body, extra=b''):
    reason = {200: b'OK', 429: b'Too Many Requests'}[status]
    return (b'HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n' % (status, reason) + extra +
            b'Content-Length: %d\r\n\r\n' % len(body) + body)


# ---- reload ----------------------------------------------------------------

def test_reload_reaches_every_keep_alive_connection(env):
    # SPEC §10: after SIGHUP every new request, also on a keep-alive
    # connection opened before, uses the new keys, prices and credentials;
    # a request in flight finishes on the old config. The old relay kept
    # each connection on the config it was accepted under: a removed key
    # kept working there, at the old price, on the old provider secret.
    m = env.start_mock()
    base = ['listen 127.0.0.1:0', 'ledger relay-ledger.jsonl sync=none',
            'provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % m.port]
    before = base + ['credential mock env:OLD_SECRET',
                     'model gpt-5.2 text 1.75 14.00 mock/gpt-5.2',
                     'wallet acme key=sha256:%s key=sha256:%s overdraft=100000' %
                     (sha256_hex(KEY), sha256_hex(KEY2))]
    after = base + ['credential mock env:NEW_SECRET',
                    'model gpt-5.2 text 1050.00 8400.00 mock/gpt-5.2',   # 600x
                    'wallet acme key=sha256:%s overdraft=100000' % sha256_hex(KEY)]
    r = env.start_relay('\n'.join(before) + '\n',
                        env={'OLD_SECRET': 'sk-old-secret', 'NEW_SECRET': 'sk-new-secret'})
    removed, kept, flight = Conn(r.port), Conn(r.port), Conn(r.port)
    assert removed.ask('POST', '/v1/chat/completions', CHAT, key=KEY2).status == 200
    assert kept.ask('POST', '/v1/chat/completions', CHAT).status == 200
    assert b'Authorization: Bearer sk-old-secret\r\n' in m.last_raw()[0]
    # a request in flight across the reload
    flight.send('POST', '/v1/chat/completions', CHAT, headers=b'x-mock: stall:1500\r\n')
    wait_for(lambda: m.stats()['requests'] == 3, 5, 'the in-flight request at the mock')
    with open(r.conf, 'w') as f:
        f.write('\n'.join(after) + '\n')
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_for(lambda: 'config reloaded' in r.log(), 5, 'reload')

    res = removed.ask('POST', '/v1/chat/completions', CHAT, key=KEY2)
    assert res.status == 401 and err(res)['code'] == 'invalid_api_key', (res.status, res.body)
    assert m.stats()['requests'] == 3, 'the removed key reached the provider'
    res = kept.ask('POST', '/v1/chat/completions', CHAT)
    assert res.status == 200, res.body
    head = m.last_raw()[0]
    assert b'Authorization: Bearer sk-new-secret\r\n' in head and b'sk-old-secret' not in head, head
    new_id = res.header('x-request-id')

    res = flight.read()
    assert res.status == 200, res.body
    old_id = res.header('x-request-id')
    charges = {l['id']: l for l in ledger_lines(r) if l['type'] == 'charge'}
    # mock usage: 12 prompt, 34 completion tokens; nano-USD per token
    assert charges[new_id]['usd_nano'] == 12 * 1050000 + 34 * 8400000, charges[new_id]
    assert charges[old_id]['usd_nano'] == 12 * 1750 + 34 * 14000, charges[old_id]
    for c in (removed, kept, flight):
        c.close()
    verify(r)


# ---- request targets -------------------------------------------------------

HOSTILE_TARGETS = [
    '/v1/../../x',
    '/v1/chat/../../admin/wallets/acme/credit',
    '/v1/%2e%2e/%2e%2e/x',
    '/v1/%2E%2E/x',
    '/v1/..%2fchat/completions',
    '/v1/chat%2fcompletions',
    '/v1/chat%5ccompletions',
    '/v1/chat\\completions',
    '/v1//chat/completions',
    '/v1/chat/completions#frag',
    '/v1/%252e%252e/x',
    '/v1/chat/completions/.',
    '/v1/contents/generations/tasks/',
]


def test_hostile_paths_are_refused_before_routing(env):
    # SPEC §10: dot segments, encoded dots/slashes/backslashes, backslashes,
    # empty segments, fragments and double encoding are 400 bad_request,
    # and nothing reaches a provider. The old relay appended them to the
    # provider's base (and, with a trailing slash, created a video task it
    # never recorded or charged).
    m = env.start_mock()
    r = env.start_relay(config(m.port), env={'MOCK_KEY_1': 'sk-up'})
    for target in HOSTILE_TARGETS:
        body = CHAT if 'tasks' not in target else b'{"model":"gpt-5.2","content":[]}'
        res = http('127.0.0.1', r.port, 'POST', target, body, {'Authorization': 'Bearer ' + KEY})
        assert res.status == 400, (target, res.status, res.body[:200])
        assert err(res)['code'] == 'bad_request', (target, res.body)
        assert m.stats()['requests'] == 0, (target, 'reached the provider')
    for target in ('/v1/../v1/models', '/v1//models', '/v1/models#x', '/%2e%2e/healthz'):
        res = http('127.0.0.1', r.port, 'GET', target, None, {'Authorization': 'Bearer ' + KEY})
        assert res.status == 400 and err(res)['code'] == 'bad_request', (target, res.status, res.body)
    assert m.stats()['requests'] == 0 and m.stats()['tasks'] == {}
    assert [l for l in ledger_lines(r)] == []
    # the same connection style still relays a clean path
    assert chat(r.port).status == 200 and m.stats()['requests'] == 1


# ---- open mode -------------------------------------------------------------

def test_open_mode_refuses_rebinding_and_cross_site_requests(env):
    # SPEC §10: open mode (no wallet) serves this machine only: a foreign
    # Host (DNS rebinding), a foreign Origin and a browser's cross-site
    # fetch are 403 forbidden. The old relay answered them 200 on the
    # operator's credential.
    m = env.start_mock()
    r = env.start_relay(config(m.port, wallets=False), env={'MOCK_KEY_1': 'sk-operator'})
    own = 'http://127.0.0.1:%d' % r.port
    refused = [
        {'Host': 'rebind.attacker.example'},
        {'Host': 'rebind.attacker.example:%d' % r.port},
        {'Host': '127.0.0.1.attacker.example'},
        {'Origin': 'http://evil.example'},
        {'Origin': 'null'},
        {'Origin': 'http://127.0.0.1:1'},
        {'Sec-Fetch-Site': 'cross-site'},
        {'Sec-Fetch-Site': 'same-site'},
    ]
    for h in refused:
        res = chat(r.port, key=None, headers=h)
        assert res.status == 403, (h, res.status, res.body[:200])
        assert err(res)['code'] == 'forbidden', (h, res.body)
        assert m.stats()['requests'] == 0, (h, 'reached the provider')
    res = http('127.0.0.1', r.port, 'GET', '/v1/models', None, {'Host': 'rebind.attacker.example'})
    assert res.status == 403, 'the catalog of a rebound page'
    served = [
        {},
        {'Origin': own},
        {'Host': 'localhost:%d' % r.port, 'Origin': 'http://localhost:%d' % r.port},
        {'Host': '[::1]:%d' % r.port},
        {'Sec-Fetch-Site': 'same-origin', 'Origin': own},
        {'Sec-Fetch-Site': 'none'},
    ]
    for i, h in enumerate(served):
        res = chat(r.port, key=None, headers=h)
        assert res.status == 200, (h, res.status, res.body[:200])
        assert m.stats()['requests'] == i + 1
    assert b'Authorization: Bearer sk-operator' in m.last_raw()[0]


# ---- local endpoints, body timeout, per-address limit ----------------------

def test_local_endpoints_take_no_body(env):
    # SPEC §10: /, /healthz, /metrics, /v1/models, /v1/wallet (and
    # /v1/usage) take no body: a GET that announces one is 400 at once,
    # with no 100 Continue (the old relay said 100 Continue and waited
    # for the body).
    m = env.start_mock()
    r = env.start_relay(config(m.port), env={'MOCK_KEY_1': 'sk-up'})
    for path in ('/', '/healthz', '/metrics', '/v1/models', '/v1/wallet', '/v1/usage'):
        for framing in (b'Content-Length: 5\r\n', b'Transfer-Encoding: chunked\r\n'):
            s = connect(r.port)
            s.sendall(b'GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n'
                      b'Expect: 100-continue\r\n%s\r\n' % (path.encode(), KEY.encode(), framing))
            s.settimeout(5)
            first = s.recv(65536)
            s.close()
            assert first.startswith(b'HTTP/1.1 400 '), (path, framing, first[:200])
            assert b'"bad_request"' in first and b'takes no request body' in first, first
        assert http('127.0.0.1', r.port, 'GET', path, None,
                    {'Authorization': 'Bearer ' + KEY}).status == 200, path
    assert m.stats()['requests'] == 0


def test_request_body_must_arrive_within_the_body_timeout(env):
    # SPEC §10: `timeouts body=` bounds the whole body; a trickle (one
    # byte every 100 ms, well inside `idle`) no longer keeps it open.
    m = env.start_mock()
    r = env.start_relay(config(m.port, timeouts='body=1s idle=10s'), env={'MOCK_KEY_1': 'sk-up'})
    s = connect(r.port)
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n'
              b'Content-Type: application/json\r\nContent-Length: 400\r\n\r\n' % KEY.encode())
    t0 = time.monotonic()
    sent, out = 0, b''
    while time.monotonic() - t0 < 8:
        try:
            s.sendall(b' ')
            sent += 1
        except OSError:
            pass
        if select.select([s], [], [], 0.1)[0]:
            c = s.recv(65536)
            out += c
            if not c or b'\r\n\r\n' in out:
                break
    dt = time.monotonic() - t0
    s.close()
    assert out.startswith(b'HTTP/1.1 408 '), (dt, sent, out[:300])
    assert b'request_timeout' in out and b'body timeout' in out, out
    assert 0.8 < dt < 3.0 and 5 <= sent < 400, (dt, sent)
    assert m.stats()['requests'] == 0
    # a body that arrives in time is served
    assert chat(r.port).status == 200


def test_connections_per_address_are_limited(env):
    # SPEC §10: `limits max_conns_per_ip=` connections per client address;
    # the one over gets 503 server_busy and the others keep being served.
    # 127.0.0.2 is another address (Linux routes 127/8 to lo).
    m = env.start_mock()
    r = env.start_relay(config(m.port, extra='limits max_conns_per_ip=3'), env={'MOCK_KEY_1': 'sk-up'})
    mine = [Conn(r.port, '127.0.0.1') for _ in range(3)]
    for c in mine:
        assert c.ask('GET', '/healthz').status == 200
    s = socket.create_connection(('127.0.0.1', r.port), timeout=5, source_address=('127.0.0.1', 0))
    out = b''
    while True:
        c = s.recv(65536)
        if not c:
            break
        out += c
    s.close()
    head, _, body = out.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 503 '), out
    assert b'\r\nContent-Length: %d\r\n' % len(body) in head + b'\r\n', out
    e = json.loads(body)['error']
    assert e['code'] == 'server_busy' and e['message'] == 'too many open connections from this address', e
    # another address is served in full, and the first three still are
    others = [Conn(r.port, '127.0.0.2') for _ in range(3)]
    for c in others + mine:
        assert c.ask('POST', '/v1/chat/completions', CHAT).status == 200
    # a slot freed is a slot to take
    mine.pop().close()

    def one_more():
        c = Conn(r.port, '127.0.0.1')
        try:
            return c.ask('GET', '/healthz').status == 200
        except (OSError, ValueError):
            return False
        finally:
            c.close()
    wait_for(one_more, 5, 'a new connection once one closed')
    for c in others + mine:
        c.close()


def test_connections_per_address_default_is_256(env):
    # The default (no limits line): the 257th connection from one address
    # is refused while another address is served. The old relay let one
    # address take every connection up to max_conns.
    m = env.start_mock()
    r = env.start_relay(config(m.port), env={'MOCK_KEY_1': 'sk-up'})
    conns = []
    try:
        for _ in range(256):
            c = Conn(r.port, '127.0.0.1')
            conns.append(c)
            c.send('GET', '/healthz')
        for c in conns:
            assert c.read('GET').status == 200
        out = raw(r.port, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', timeout=5)
        assert out.startswith(b'HTTP/1.1 503 ') and b'from this address' in out, out[:300]
        other = Conn(r.port, '127.0.0.2')
        conns.append(other)
        assert other.ask('POST', '/v1/chat/completions', CHAT).status == 200
        assert conns[0].ask('POST', '/v1/chat/completions', CHAT).status == 200
    finally:
        for c in conns:
            c.close()


def test_busy_503_content_length_matches_its_body(env):
    # SPEC §10: every Content-Length the relay writes matches its body; the
    # max_conns 503 said 105 for 93 bytes.
    m = env.start_mock()
    r = env.start_relay(config(m.port, extra='limits max_conns=2'), env={'MOCK_KEY_1': 'sk-up'})
    held = [Conn(r.port) for _ in range(2)]
    for c in held:
        assert c.ask('GET', '/healthz').status == 200
    out = raw(r.port, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n', timeout=5)
    head, _, body = out.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 503 ') and b'<timeout>' not in out, out
    lengths = [l for l in head.split(b'\r\n') if l.lower().startswith(b'content-length:')]
    assert lengths == [b'Content-Length: %d' % len(body)], (lengths, len(body), body)
    e = json.loads(body)['error']
    assert e['code'] == 'server_busy' and e['message'] == 'too many open connections', e
    for c in held:
        assert c.ask('GET', '/healthz').status == 200
        c.close()


# ---- cooldowns -------------------------------------------------------------

LONG_429 = answer(429, b'{"error":{"message":"slow down","type":"rate_limit"}}',
                  b'Retry-After: 86399\r\n')
DAY_429 = answer(429, b'{"error":{"message":"slow down","type":"rate_limit"}}',
                 b'Retry-After: 86400\r\n')


def test_upstream_retry_after_cools_for_at_most_300s_by_default(env):
    # SPEC §10: an upstream's Retry-After stretches a credential's cooldown
    # to at most `cooldown max=` (300 s by default): one tenant's 429 must
    # not lock every tenant out of a shared key for a day. The old relay
    # cooled it for the 86,399 s the provider asked.
    m = wire(env, {'429-long': LONG_429})
    r = env.start_relay(config(m.port, extra='cooldown failures=1 seconds=1'),
                        env={'MOCK_KEY_1': 'sk-up'})
    res = chat(r.port, headers={'x-mock-file': '429-long'})
    assert res.status == 503 and err(res)['code'] == 'upstream_unavailable', res.body
    assert 1 <= int(res.header('retry-after')) <= 300, res.header('retry-after')
    res = chat(r.port)   # cooling: no attempt, and the wait it announces is capped too
    assert res.status == 503 and 1 <= int(res.header('retry-after')) <= 300, \
        (res.status, res.header('retry-after'), res.body)
    assert m.stats()['requests'] == 1


def test_cooldown_max_ends_a_long_retry_after(env):
    # With a small `cooldown max=`, a credential told to wait a day is used
    # again once max has passed. (The old relay does not know `max=` and
    # refuses this config at start.)
    m = wire(env, {'429-long': LONG_429, '429-day': DAY_429})
    r = env.start_relay(config(m.port, extra='cooldown failures=1 seconds=1 max=2'),
                        env={'MOCK_KEY_1': 'sk-up'})
    for name in ('429-long', '429-day'):
        res = chat(r.port, headers={'x-mock-file': name})
        assert res.status == 503 and 1 <= int(res.header('retry-after')) <= 2, \
            (name, res.status, res.header('retry-after'))
        cooling = chat(r.port)
        assert cooling.status == 503 and int(cooling.header('retry-after')) <= 2, cooling.body
        t0 = time.monotonic()
        wait_for(lambda: chat(r.port).status == 200, 5, 'the credential back after max')
        assert time.monotonic() - t0 < 3.5
    assert m.stats()['requests'] == 4


# ---- the overdraft promise ---------------------------------------------------

def sse_answer(out_tokens):
    def chunk(b):
        return b'%x\r\n%s\r\n' % (len(b), b)
    ev1 = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":'
           b'[{"index":0,"delta":{"content":"hi"},"finish_reason":null}]}\n\n')
    ev2 = (b'data: {"id":"c1","object":"chat.completion.chunk","created":1,"model":"m","choices":[],'
           b'"usage":{"prompt_tokens":10,"completion_tokens":%d,"total_tokens":%d}}\n\n'
           % (out_tokens, out_tokens + 10))
    head = b'HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n'
    first = head + chunk(ev1)
    return first + chunk(ev2) + chunk(b'data: [DONE]\n\n') + b'0\r\n\r\n', len(first)


def billing_conf(mport, overdraft):
    return config(mport, overdraft=overdraft,
                  extra='admin_key sha256:%s\ncurrency CNY rate=7.2000' % sha256_hex(ADMIN))


def credit(r, amount, note=None):
    body = {'amount': amount}
    if note is not None:
        body['note'] = note
    return http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit', body,
                {'Authorization': 'Bearer ' + ADMIN})


def wallet(r):
    return http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, {'Authorization': 'Bearer ' + KEY}).json()


def test_overdraft_is_passed_only_by_usage_beyond_holds(env):
    # SPEC §8: under concurrency the holds in flight never exceed balance
    # plus overdraft; a wallet passes -overdraft only by what an upstream
    # reported beyond a hold, and is then refused (402) until credited.
    # (The relay before issue 14 kept this promise too: this pins it.)
    data, pause_at = sse_answer(1000000)
    m = wire(env, {'huge-usage': data})
    r = env.start_relay(billing_conf(m.port, '0.10'), env={'MOCK_KEY_1': 'sk-up'})
    over_nano = 100000000
    assert credit(r, '0.05').status == 200
    body = b'{"model":"gpt-5.2","stream":true,"messages":[],"max_tokens":100}'
    results, samples = [], []

    def one():
        try:
            res = chat(r.port, body=body, headers={'x-mock-file': 'huge-usage',
                                                   'x-mock-file-pause': '%d:1500' % pause_at})
            results.append(res.status)
        except Exception as e:
            results.append(repr(e))
    ts = [threading.Thread(target=one) for _ in range(50)]
    for t in ts:
        t.start()
    wait_for(lambda: m.stats()['requests'] > 0, 10, 'streams at the mock')
    while any(t.is_alive() for t in ts) and len(samples) < 40:
        samples.append(wallet(r))
        time.sleep(0.02)
    for t in ts:
        t.join(30)
    assert results.count(200) + results.count(402) == 50, results
    ok = results.count(200)
    # each hold: prompt bytes / 4 in, 100 out (nano-USD per token), at 7.2;
    # 0.05 + 0.10 CNY admits at most 14 of them
    hold = (len(body) // 4 * 1750 + 100 * 14000) * 72 // 10
    start = 50000000 + over_nano
    assert 1 <= ok <= start // hold, (ok, start // hold, results)
    # Holds are admitted only while they fit balance plus overdraft. The
    # balance only falls here (each stream's usage is far beyond its
    # hold), so the holds in flight never pass its starting point plus
    # overdraft; before any charge, that is balance plus overdraft itself.
    assert any(w['held_nano'] > 0 for w in samples), samples
    for w in samples:
        assert 0 <= w['held_nano'] <= start, (w, start)
        if w['balance_nano'] == 50000000:
            assert w['held_nano'] <= w['balance_nano'] + over_nano, w
    charges = [l for l in ledger_lines(r) if l['type'] == 'charge']
    assert len(charges) == ok and all(c['out'] == 1000000 and 'estimated' not in c for c in charges), charges
    w = wallet(r)
    assert w['held_nano'] == 0 and w['balance_nano'] < -over_nano, w
    # pushed below -overdraft by usage alone: refused until credited, however small
    small = b'{"model":"gpt-5.2","messages":[],"max_tokens":1}'
    before = m.stats()['requests']
    for _ in range(3):
        res = chat(r.port, body=small)
        assert res.status == 402 and err(res)['code'] == 'insufficient_balance', res.body
    assert m.stats()['requests'] == before
    owed = -w['balance_nano']
    assert credit(r, '%d.%09d' % (owed // 10**9, owed % 10**9)).status == 200
    assert wallet(r)['balance_nano'] == 0
    assert chat(r.port, body=small).status == 200
    out = verify(r)
    assert 'acme CNY ' in out, out
    # (holds cover n choices: test_wire.test_wire_holds_cover_n_choices)


# ---- task ids from an upstream ---------------------------------------------

def task_answer(tid):
    return answer(200, json.dumps({'id': tid, 'status': 'queued'}).encode())


HOSTILE_IDS = {
    'task-inject': 'cgt-evil HTTP/1.1\r\nX-Injected: 1\r\nX-Pad: x',
    'task-crlf': 'cgt-evil\r\nX-Injected: 1',
    'task-dots': '../../../v1/chat/completions',
    'task-slash': 'cgt/evil',
    'task-space': 'cgt evil',
    'task-long': 'c' * 129,
}


def task_conf(mport):
    return config(mport, providers=[
        'provider ark base=http://127.0.0.1:%d/api/v3' % mport, 'credential ark env:A1'],
        models=['model doubao-seedance-2-0-pro video - 6.40 ark/doubao-seedance-2-0-pro-250528'])


def create_task(r, headers):
    return http('127.0.0.1', r.port, 'POST', '/v1/contents/generations/tasks',
                {'model': 'doubao-seedance-2-0-pro', 'content': [{'type': 'text', 'text': 'a cat'}]},
                dict({'Authorization': 'Bearer ' + KEY}, **headers))


def test_hostile_task_ids_never_reach_a_request_line(env):
    # SPEC §10: ids taken from an upstream answer are checked
    # ([A-Za-z0-9._:-], at most 128 bytes) before they go into a request
    # line. A task created with any other id is not recorded (logged), and
    # the relay's own poll never sends it. The old relay recorded them and
    # polled with the id spliced into its request line (header injection,
    # path traversal).
    m = wire(env, {name: task_answer(tid) for name, tid in HOSTILE_IDS.items()})
    r = env.start_relay(task_conf(m.port), env={'A1': 'sk-ark', 'RELAY_TASK_POLL_MS': '100'})
    for name, tid in HOSTILE_IDS.items():
        res = create_task(r, {'x-mock-file': name})
        assert res.status == 200 and res.json()['id'] == tid, (name, res.status, res.body)
    # a good task, so that the relay's poll is seen to run
    good = create_task(r, {'x-mock': 'task:1'}).json()['id']
    wait_for(lambda: [l for l in ledger_lines(r) if l['type'] == 'charge' and l.get('task') == good],
             10, 'the relay to poll the good task')
    time.sleep(0.5)   # five more poll rounds
    for head, _ in m.raw_requests():
        line = head.split(b'\r\n', 1)[0]
        assert b'X-Injected' not in head and b'cgt-evil' not in head, head
        assert b'..' not in line and b' evil' not in line, line
    tasks = [l['id'] for l in ledger_lines(r) if l['type'] == 'task']
    assert tasks == [good], tasks
    assert r.log().count('task created with an id the relay does not accept') + \
        r.log().count('its id could not be read') == len(HOSTILE_IDS), r.log()
    assert m.stats()['tasks'][good]['polls'] == 1
    verify(r)


def test_task_id_of_128_bytes_is_recorded(env):
    # SPEC §10 allows ids of at most 128 bytes; the relay took at most 127,
    # so a provider's 128-byte task id was never recorded, polled or
    # charged, and its client's GET was 404.
    tid = 'cgt-' + 'a' * 124
    assert len(tid) == 128
    m = wire(env, {'task-128': task_answer(tid)})
    r = env.start_relay(task_conf(m.port), env={'A1': 'sk-ark'})
    res = create_task(r, {'x-mock-file': 'task-128'})
    assert res.status == 200 and res.json()['id'] == tid
    tasks = [l['id'] for l in ledger_lines(r) if l['type'] == 'task']
    assert tasks == [tid], (tasks, r.log())
    # the client's poll goes to the provider (the mock does not know it: 404)
    res = http('127.0.0.1', r.port, 'GET', '/v1/contents/generations/tasks/' + tid, None,
               {'Authorization': 'Bearer ' + KEY})
    assert res.status == 404 and b'task not found' in res.body, (res.status, res.body)
    assert m.last_raw()[0].startswith(b'GET /api/v3/contents/generations/tasks/%s HTTP/1.1\r\n' % tid.encode())


def chained(records):
    """Ledger lines for records (dicts without prev), hash-chained."""
    import hashlib
    out, prev = [], '0' * 64
    for rec in records:
        line = json.dumps(dict(rec, prev=prev), separators=(',', ':')).encode()
        out.append(line)
        prev = hashlib.sha256(line).hexdigest()
    return b''.join(l + b'\n' for l in out)


def test_hostile_task_ids_from_an_older_ledger_are_never_polled(env):
    # Tasks recorded by an older relay, before ids were checked, are read
    # back at start; the relay's own poll skips those whose id it would not
    # accept now, so a hostile id in the ledger never reaches a request line.
    m = env.start_mock()
    base = {'ts': '2026-11-24T22:10:00.123Z', 'type': 'task', 'wallet': 'acme',
            'model': 'doubao-seedance-2-0-pro', 'route': 'ark/doubao-seedance-2-0-pro-250528',
            'cred': 'ark#1'}
    bad = [v for k, v in HOSTILE_IDS.items() if k != 'task-long']
    with open(os.path.join(env.dir, 'relay-ledger.jsonl'), 'wb') as f:
        f.write(chained([dict(base, id=tid) for tid in bad]))
    r = env.start_relay(task_conf(m.port), env={'A1': 'sk-ark', 'RELAY_TASK_POLL_MS': '100'})
    good = create_task(r, {'x-mock': 'task:1'}).json()['id']
    wait_for(lambda: [l for l in ledger_lines(r) if l['type'] == 'charge' and l.get('task') == good],
             10, 'the relay to poll the good task')
    time.sleep(0.5)
    for head, _ in m.raw_requests():
        line = head.split(b'\r\n', 1)[0]
        assert b'X-Injected' not in head and b'cgt-evil' not in head, head
        assert b'..' not in line and b' evil' not in line, line
    assert m.stats()['tasks'][good]['polls'] == 1
    verify(r)


# ---- provider account headers ----------------------------------------------

def test_client_cannot_choose_the_provider_account(env):
    # SPEC §10: OpenAI-Organization / OpenAI-Project from a client never
    # reach the provider (they pick the account the relay's credential
    # bills); a provider's header= may set them.
    m = env.start_mock()
    r = env.start_relay(config(m.port, providers=[
        'provider plain base=http://127.0.0.1:%d/v1 auth=bearer' % m.port,
        'credential plain env:K1',
        'provider org base=http://127.0.0.1:%d/v1 auth=bearer header=OpenAI-Organization:org-operator '
        'header=OpenAI-Project:proj-operator' % m.port,
        'credential org env:K2'],
        models=['model m-plain text 1.00 1.00 plain/up', 'model m-org text 1.00 1.00 org/up']),
        env={'K1': 'sk-1', 'K2': 'sk-2'})
    client = {'OpenAI-Organization': 'org-client', 'OpenAI-Project': 'proj-client',
              'openai-organization': 'org-client-2'}
    res = chat(r.port, headers=client, body=b'{"model":"m-plain","messages":[]}')
    assert res.status == 200, res.body
    head = m.last_raw()[0].lower()
    assert b'openai-organization' not in head and b'openai-project' not in head, head
    assert b'org-client' not in head and b'proj-client' not in head
    res = chat(r.port, headers=client, body=b'{"model":"m-org","messages":[]}')
    assert res.status == 200, res.body
    lines = m.last_raw()[0].split(b'\r\n')
    assert [l for l in lines if l.lower().startswith(b'openai-organization:')] == \
        [b'OpenAI-Organization: org-operator'], lines
    assert [l for l in lines if l.lower().startswith(b'openai-project:')] == \
        [b'OpenAI-Project: proj-operator'], lines


# ---- the process ---------------------------------------------------------------

def test_process_is_not_dumpable_and_has_no_core(env):
    # SPEC §10: not dumpable (PR_SET_DUMPABLE 0) and core size 0, so that
    # another process of the same uid cannot read the relay's environment
    # or memory (provider secrets, client keys) and a crash leaves no core
    # file. The relay runs as uid 65534 (as root; else as the caller),
    # started with a core limit that allows cores; a process of that same
    # uid tries to read it.
    drop = []
    if os.geteuid() == 0:
        os.chown(env.dir, 65534, 65534)
        drop = ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups']
    uid = '65534' if drop else str(os.geteuid())
    m = env.start_mock()
    secret = 'fake-upstream-credential-in-environ-123'
    wrap = ['sh', '-c', 'ulimit -S -c unlimited && exec "$@"', 'sh'] + drop
    r = env.start_relay(config(m.port), env={'MOCK_KEY_1': secret}, wrap=wrap)
    pid = r.proc.pid
    assert chat(r.port).status == 200   # it serves as that user
    st = os.stat('/proc/%d' % pid)
    with open('/proc/%d/status' % pid) as f:
        uids = [l for l in f if l.startswith('Uid:')][0].split()[1:]
    assert uids == [uid] * 4, uids
    with open('/proc/%d/limits' % pid) as f:
        core = [l for l in f if l.startswith('Max core file size')][0].split()
    assert core[4] == '0', core   # the soft limit (the relay lowers the hard one too)
    # a non-dumpable process's /proc files belong to root
    assert os.stat('/proc/%d/environ' % pid).st_uid == 0, (st.st_uid, uid)
    p = subprocess.run(drop + ['cat', '/proc/%d/environ' % pid], capture_output=True)
    assert p.returncode != 0 and secret.encode() not in p.stdout, (p.returncode, p.stdout[:100], p.stderr)
    p = subprocess.run(drop + ['cat', '/proc/%d/mem' % pid], capture_output=True)
    assert p.returncode != 0
    assert r.stop() == 0


# ---- side files ------------------------------------------------------------

def test_queue_side_file_that_is_not_ours_stops_the_start(env):
    # SPEC §10: <ledger>.queue is opened without following a symbolic link,
    # and a file that is not a relay queue file is never truncated: the
    # start fails naming it, and the file (or the link's target) is left
    # as it was. The old relay followed the link and truncated the target.
    m = env.start_mock()
    conf = config(m.port)
    qpath = os.path.join(env.dir, 'relay-ledger.jsonl.queue')
    victim = os.path.join(env.dir, 'victim.txt')
    precious = b'precious data, not a queue\n'
    for kind in ('symlink', 'foreign file'):
        with open(victim, 'wb') as f:
            f.write(precious)
        if kind == 'symlink':
            os.symlink(victim, qpath)
        else:
            with open(qpath, 'wb') as f:
                f.write(precious)
        r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'}, wait=False)
        try:
            rc = r.proc.wait(10)
        except subprocess.TimeoutExpired:
            rc = None
        log = r.log()
        r.stop()
        assert open(victim, 'rb').read() == precious, (kind, 'overwritten', rc, log)
        assert rc == 1, (kind, rc, log)
        assert 'relay-ledger.jsonl.queue' in log, (kind, log)
        if kind == 'symlink':
            assert os.path.islink(qpath) and os.readlink(qpath) == victim
            assert 'symbolic link' in log, log
        else:
            assert not os.path.islink(qpath) and open(qpath, 'rb').read() == precious
            assert 'not a relay queue file' in log, log
        os.unlink(qpath)
    # with the path clear the relay starts and makes its own queue
    r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
    assert chat(r.port).status == 200
    assert os.path.getsize(qpath) > 65536 and open(victim, 'rb').read() == precious


def test_torn_side_file_is_never_followed_through_a_symlink(env):
    # SPEC §10: a torn last line is moved to <ledger>.torn, which is opened
    # without following a symbolic link (the old relay appended the torn
    # bytes to whatever file the link named).
    m = env.start_mock()
    conf = config(m.port)
    r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
    assert chat(r.port).status == 200
    r.stop()
    path = os.path.join(env.dir, 'relay-ledger.jsonl')
    torn = b'{"ts":"2026-11-24T22:10:00.123Z","type":"cha'
    with open(path, 'ab') as f:
        f.write(torn)
    victim = os.path.join(env.dir, 'victim.txt')
    with open(victim, 'wb') as f:
        f.write(b'precious\n')
    os.symlink(victim, path + '.torn')
    r2 = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'}, wait=False)
    try:
        rc = r2.proc.wait(10)
    except subprocess.TimeoutExpired:
        rc = None
    log = r2.log()
    r2.stop()
    assert open(victim, 'rb').read() == b'precious\n', 'the torn line went through the link'
    assert os.path.islink(path + '.torn')
    # the relay refuses to start rather than lose the torn bytes
    assert rc == 1 and 'relay-ledger.jsonl.torn' in log, (rc, log)
    assert open(path, 'rb').read().endswith(torn), 'the torn bytes are kept in the ledger'


# ---- admin input -------------------------------------------------------------

def test_credit_note_must_be_utf8(env):
    # SPEC §10: the ledger is UTF-8 text; an admin credit note with raw
    # bytes that are not UTF-8 is refused with 400 and nothing is written
    # (the old relay wrote them into the ledger as they came).
    m = env.start_mock()
    r = env.start_relay(billing_conf(m.port, '0'), env={'MOCK_KEY_1': 'sk-up'})
    ledger = os.path.join(env.dir, 'relay-ledger.jsonl')
    for body in (b'{"amount":"1.00","note":"caf\xe9 \xff\xfe"}', b'{"amount":"1.00","note":"\xc0\xaf"}',
                 b'{"amount":"1.00","note":"\xed\xb3\xbf"}'):
        res = http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit', body,
                   {'Authorization': 'Bearer ' + ADMIN, 'Content-Type': 'application/json'})
        assert res.status == 400 and err(res)['code'] == 'bad_request', (body, res.status, res.body)
        assert b'UTF-8' in res.body, res.body
    assert open(ledger, 'rb').read() == b''
    # an escaped lone surrogate cannot be decoded: the note falls back to
    # "top-up" (today's behaviour), never to bytes that are not UTF-8
    res = http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit',
               b'{"amount":"1.00","note":"\\udcff"}', {'Authorization': 'Bearer ' + ADMIN})
    assert res.status == 200 and json.loads(open(ledger, 'rb').read().splitlines()[-1])['note'] == 'top-up'
    assert credit(r, '1.00', 'caf\u00e9 \u2603').status == 200
    data = open(ledger, 'rb').read()
    data.decode('utf-8')   # strict: the whole ledger is UTF-8
    assert json.loads(data.splitlines()[-1])['note'] == 'caf\u00e9 \u2603'
    verify(r)


# ---- head limits -------------------------------------------------------------

def test_long_request_line_is_414_and_big_head_431(env):
    # SPEC §5/§7: a request line over 8 KiB is 414 uri_too_long (also when
    # it is far over max_header); a head over max_header, or over 100
    # fields, is 431 headers_too_large. (The relay before issue 14 answered
    # the same: this pins it; the answer comes before the reset that a
    # close with unread bytes makes.)
    m = env.start_mock()
    r = env.start_relay(config(m.port), env={'MOCK_KEY_1': 'sk-up'})
    for n in (9 * 1024, 100 * 1024):
        out = ask_raw(r.port, b'GET /v1/models?q=' + b'a' * n + b' HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n')
        assert out.startswith(b'HTTP/1.1 414 ') and b'"uri_too_long"' in out, (n, out[:300])
    big = b''.join(b'X-Pad-%d: %s\r\n' % (i, b'p' * 1000) for i in range(20))
    out = ask_raw(r.port, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' + big + b'\r\n')
    assert out.startswith(b'HTTP/1.1 431 ') and b'"headers_too_large"' in out, out[:300]
    many = b''.join(b'X-F-%d: 1\r\n' % i for i in range(101))
    out = ask_raw(r.port, b'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n' + many + b'\r\n')
    assert out.startswith(b'HTTP/1.1 431 ') and b'"headers_too_large"' in out, out[:300]
    assert m.stats()['requests'] == 0
    assert http('127.0.0.1', r.port, 'GET', '/healthz').status == 200


# ---- metrics -------------------------------------------------------------------

def test_metrics_auth_admin_needs_the_admin_key(env):
    # SPEC §10: `metrics auth=admin` puts /metrics behind the admin key (a
    # client key is not enough); the other local endpoints stay as they are.
    m = env.start_mock()
    r = env.start_relay(billing_conf(m.port, '0') + 'metrics auth=admin\n', env={'MOCK_KEY_1': 'sk-up'})
    res = http('127.0.0.1', r.port, 'GET', '/metrics')
    assert res.status == 401 and err(res)['code'] == 'invalid_api_key', (res.status, res.body[:200])
    assert b'relay_requests_total' not in res.body
    res = http('127.0.0.1', r.port, 'GET', '/metrics', None, {'Authorization': 'Bearer ' + KEY})
    assert res.status == 401, 'a client key opened /metrics'
    res = http('127.0.0.1', r.port, 'GET', '/metrics', None, {'Authorization': 'Bearer ' + ADMIN})
    assert res.status == 200 and b'relay_requests_total' in res.body, res.body[:200]
    assert http('127.0.0.1', r.port, 'GET', '/healthz').status == 200
    # without the option /metrics is open, as before
    r.stop()
    r2 = env.start_relay(config(m.port), env={'MOCK_KEY_1': 'sk-up'})
    assert http('127.0.0.1', r2.port, 'GET', '/metrics').status == 200
