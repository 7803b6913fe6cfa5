"""Failover exactly as SPEC §4 says: candidates, retries, cooldowns on the
monotonic clock, the 503 with its attempt list, broken streams."""
import json
import os
import signal
import socket
import time

from harness import KEY, config, connect, http, raw, wait_for


def auth(extra=None):
    h = {'Authorization': 'Bearer ' + KEY}
    h.update(extra or {})
    return h


def chat(r, extra=None, body=None):
    return http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                body or {'model': 'gpt-5.2', 'messages': []}, auth(extra))


def two_providers(mport, first, second, extra=''):
    return config(mport, providers=[
        'provider p1 base=http://127.0.0.1:%d/v1' % mport,
        'credential p1 env:P1',
        'provider p2 base=http://127.0.0.1:%d/v1' % mport,
        'credential p2 env:P2',
    ], models=['model gpt-5.2 text 1.75 14.00 p1/gpt-a p2/gpt-b'], extra=extra), \
        {'P1': first, 'P2': second}


def test_429_then_ok_takes_two_attempts(env):
    m = env.start_mock()
    creds = ('429', 'sk-ok-2')
    r = env.start_relay(config(m.port, creds=creds), env={'MOCK_KEY_1': creds[0], 'MOCK_KEY_2': creds[1]})
    res = chat(r)
    assert res.status == 200, res.body
    assert res.header('x-relay-attempts') == '2', res.headers
    assert m.stats()['by_key'] == {'429': 1, 'sk-ok-2': 1}
    assert 'attempt 1 mock/gpt-5.2-2026-01-01 key mock#1: 429' in r.log()


def test_rejected_credential_rests_then_returns(env):
    m = env.start_mock()
    creds = ('429', 'sk-ok-2')
    r = env.start_relay(config(m.port, creds=creds, extra='cooldown failures=1 seconds=2'),
                        env={'MOCK_KEY_1': creds[0], 'MOCK_KEY_2': creds[1]})
    t0 = time.monotonic()
    assert chat(r).header('x-relay-attempts') == '2'
    for _ in range(6):   # cursor lands on mock#1 every other request
        res = chat(r)
        assert res.status == 200 and res.header('x-relay-attempts') == '1', res.headers
    assert m.stats()['by_key']['429'] == 1, 'a cooling credential was tried'

    def tried_again():
        chat(r)
        return m.stats()['by_key']['429'] >= 2
    wait_for(tried_again, 10, 'the cooled credential to be tried again')
    assert time.monotonic() - t0 >= 1.9, 'tried again before its cooldown ended'


def test_route_500_falls_over_to_next_route(env):
    m = env.start_mock()
    conf, e = two_providers(m.port, '500', 'sk-ok')
    r = env.start_relay(conf, env=e)
    res = chat(r)
    assert res.status == 200
    assert res.header('x-relay-route') == 'p2/gpt-b' and res.header('x-relay-attempts') == '2'
    assert json.loads(m.stats()['last']['body'])['model'] == 'gpt-b'
    # a 500 does not cool the credential: it is tried again next time
    chat(r)
    assert m.stats()['by_key']['500'] == 2


def test_client_errors_pass_through_unchanged(env):
    m = env.start_mock()
    conf, e = two_providers(m.port, 'status:422', 'sk-ok')
    r = env.start_relay(conf, env=e)
    res = chat(r)
    assert res.status == 422 and res.json()['error']['code'] == 'mock422', res.body
    assert res.header('x-relay-attempts') == '1'
    assert m.stats()['by_key'].get('sk-ok') is None


def test_stalled_upstream_moves_on_after_first_byte(env):
    m = env.start_mock()
    conf, e = two_providers(m.port, 'stall', 'sk-ok')
    r = env.start_relay(conf.replace('listen', 'timeouts first_byte=300ms\nlisten', 1), env=e)
    t0 = time.monotonic()
    res = chat(r)
    dt = time.monotonic() - t0
    assert res.status == 200 and res.header('x-relay-attempts') == '2', res.body
    assert 0.29 <= dt < 3, dt
    assert 'no response head within 300 ms' in r.log()


def test_connect_refused_and_reset_move_on(env):
    m = env.start_mock()
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    dead = s.getsockname()[1]
    s.close()
    conf = config(m.port, providers=[
        'provider gone base=http://127.0.0.1:%d/v1' % dead, 'credential gone env:G',
        'provider rst base=http://127.0.0.1:%d/v1' % m.port, 'credential rst env:R',
        'provider ok base=http://127.0.0.1:%d/v1' % m.port, 'credential ok env:O',
    ], models=['model gpt-5.2 text 1.75 14.00 gone/x rst/y ok/z'])
    r = env.start_relay(conf, env={'G': 'sk-g', 'R': 'reset', 'O': 'sk-o'})
    res = chat(r)
    assert res.status == 200 and res.header('x-relay-attempts') == '3', (res.status, res.headers)
    assert res.header('x-relay-route') == 'ok/z'


def test_all_bad_gives_503_with_retry_after_and_attempt_list(env):
    m = env.start_mock()
    creds = ('429', '401')
    r = env.start_relay(config(m.port, creds=creds, extra='cooldown failures=1 seconds=30'),
                        env={'MOCK_KEY_1': creds[0], 'MOCK_KEY_2': creds[1]})
    t0 = time.monotonic()
    res = chat(r)
    assert time.monotonic() - t0 < 3
    assert res.status == 503, res.body
    e = res.json()['error']
    assert e['code'] == 'upstream_unavailable'
    assert 'mock/gpt-5.2-2026-01-01 key mock#1: 429' in e['message'], e
    assert 'key mock#2: 401' in e['message'], e
    assert res.header('x-relay-attempts') == '2'
    ra = int(res.header('retry-after'))
    assert 25 <= ra <= 30, ra
    # next request: both cooling, no attempt at all, and it says so
    res = chat(r)
    assert res.status == 503 and res.header('x-relay-attempts') == '0'
    msg = res.json()['error']['message']
    assert 'key mock#1: cooling down' in msg and 's left' in msg, msg
    assert m.stats()['requests'] == 2


def test_total_timeout_bounds_the_request(env):
    m = env.start_mock()
    creds = ('stall', 'stall')
    r = env.start_relay(config(m.port, creds=creds, timeouts='first_byte=10s total=600ms'),
                        env={'MOCK_KEY_1': creds[0], 'MOCK_KEY_2': creds[1]})
    t0 = time.monotonic()
    res = chat(r)
    dt = time.monotonic() - t0
    assert res.status == 503 and 0.55 <= dt < 3, (res.status, dt)
    assert 'total timeout' in res.json()['error']['message']


def test_load_spreads_evenly_over_siblings(env):
    m = env.start_mock()
    creds = ('sk-a', 'sk-b', 'sk-c')
    r = env.start_relay(config(m.port, creds=creds),
                        env={'MOCK_KEY_%d' % (i + 1): c for i, c in enumerate(creds)})
    s = connect(r.port)
    body = b'{"model":"gpt-5.2","messages":[]}'
    req = (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
           b'\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    from harness import read_response
    for _ in range(300):
        s.sendall(req)
        assert read_response(s).status == 200
    s.close()
    counts = m.stats()['by_key']
    assert sorted(counts) == ['sk-a', 'sk-b', 'sk-c'], counts
    for k, v in counts.items():
        assert 90 <= v <= 110, counts


def test_client_disconnect_closes_upstream(env):
    m = env.start_mock()
    r = env.start_relay(config(m.port, creds=('stall',)), env={'MOCK_KEY_1': 'stall'})
    s = connect(r.port)
    body = b'{"model":"gpt-5.2"}'
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nContent-Length: %d\r\n\r\n' % len(body) + body)

    def metric(name):
        txt = http('127.0.0.1', r.port, 'GET', '/metrics').body.decode()
        for line in txt.splitlines():
            if line.startswith(name + ' '):
                return int(line.split()[1])
    wait_for(lambda: metric('relay_upstream_connections') == 1, 5, 'upstream attempt')
    s.close()
    wait_for(lambda: metric('relay_upstream_connections') == 0, 2, 'upstream closed with the client')


def test_provider_closing_pooled_connections_costs_no_attempt(env):
    # The provider answers keep-alive, then drops each connection while it
    # sits in the relay's pool. The relay may not notice before it reuses
    # one (pooled connections are polled for hang-ups only every 100 ms);
    # then it must retry on a new connection without counting an attempt,
    # and the provider must see each request exactly once.
    m = env.start_mock()
    r = env.start_relay(config(m.port, creds=('sk-ok',)), env={'MOCK_KEY_1': 'sk-ok'})
    s = connect(r.port)
    body = b'{"model":"gpt-5.2","messages":[]}'
    req = (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
           b'\r\nx-mock: okclose\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    from harness import read_response
    for i in range(30):
        s.sendall(req)
        res = read_response(s)
        assert res.status == 200, (i, res.status, res.body)
        assert res.header('x-relay-attempts') == '1', (i, res.headers)
        if i % 3 == 2:
            time.sleep(0.12)   # let a hang-up check see some of them closed
    s.close()
    assert m.stats()['by_key'] == {'sk-ok': 30}


def test_cooldown_survives_reload(env):
    m = env.start_mock()
    creds = ('429', 'sk-ok-2')
    conf = config(m.port, creds=creds, extra='cooldown failures=1 seconds=60')
    r = env.start_relay(conf, env={'MOCK_KEY_1': creds[0], 'MOCK_KEY_2': creds[1]})
    assert chat(r).header('x-relay-attempts') == '2'
    with open(r.conf, 'a') as f:
        f.write('model gpt-4.1-mini text 0.150 0.600 mock/gpt-4.1-mini\n')
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_for(lambda: 'config reloaded' in r.log(), 5, 'reload')
    ids = [x['id'] for x in http('127.0.0.1', r.port, 'GET', '/v1/models').json()['data']]
    assert 'gpt-4.1-mini' in ids
    for _ in range(4):
        assert chat(r).header('x-relay-attempts') == '1'
    assert m.stats()['by_key']['429'] == 1
    # a broken config is refused and the old one keeps serving
    with open(r.conf, 'a') as f:
        f.write('bogus directive\n')
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_for(lambda: 'reload refused' in r.log(), 5, 'refusal')
    assert 'relay.conf:%d: unknown directive' % len(open(r.conf).read().splitlines()) in r.log()
    assert chat(r).status == 200


def test_no_secret_in_any_output_of_a_failing_run(env):
    m = env.start_mock()
    secrets = ('up-live-SECRET-one-1234567890', 'up-live-SECRET-two-0987654321')
    r = env.start_relay(config(m.port, creds=secrets, extra='cooldown failures=1 seconds=5'),
                        env={'MOCK_KEY_1': secrets[0], 'MOCK_KEY_2': secrets[1]})
    outputs = []
    for script in ('401', '500', 'reset', 'badhead', '429', '429'):
        res = chat(r, {'x-mock': script})
        outputs.append(res.raw_head + res.body)
    outputs.append(raw(r.port, b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n'
                       b'Authorization: Bearer ' + secrets[0].encode() + b'\r\nContent-Length: 2\r\n\r\n{}'))
    stopped = r.stop()
    assert stopped == 0
    everything = b'\n'.join(outputs) + r.log().encode()
    for s in secrets:
        assert s.encode() not in everything, s
        assert s[8:].encode() not in everything, s
    assert b'mock#1' in everything and b'mock#2' in everything


def test_stream_stalled_midway_ends_with_error_event(env):
    m = env.start_mock()
    r = env.start_relay(config(m.port, creds=('sk-ok',), timeouts='idle=400ms'),
                        env={'MOCK_KEY_1': 'sk-ok'})
    body = b'{"model":"gpt-5.2","stream":true}'
    t0 = time.monotonic()
    out = raw(r.port, b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nx-mock: sse:3:3000\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    dt = time.monotonic() - t0
    assert 0.35 < dt < 2.5, dt
    assert b'tok0' in out and b'tok1' not in out, out
    assert b'event: error\ndata: {"error":{"message":"upstream stream broke: upstream idle' in out, out


def test_hostile_upstream_heads_are_retryable_failures(env):
    m = env.start_mock()
    r = env.start_relay(config(m.port, creds=('sk-x',)), env={'MOCK_KEY_1': 'sk-x'})
    for script, reason in (('badhead', 'malformed response head'),
                           ('hugehead', 'response head too large'),
                           ('close', 'closed before the response head'),
                           ('reset', 'connection reset')):
        res = chat(r, {'x-mock': script})
        assert res.status == 503, (script, res.status, res.body[:200])
        assert reason in res.json()['error']['message'], (script, res.json())
    assert chat(r).status == 200    # and the relay is fine afterwards
