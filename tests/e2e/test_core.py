"""Relay core (issue 2): relaying through the real binary to the mock, with
curl and the official openai and @anthropic-ai/sdk SDKs; headers; framing;
memory bounds."""
import gzip
import hashlib
import json
import os
import re
import socket
import subprocess
import time

from harness import (KEY, KEY2, RELAY, ROOT, config, connect, cred_env, http, ledger_lines,
                     node, raw, read_response, wait_for)


def start(env, creds=('sk-upstream-1',), **kw):
    m = env.start_mock()
    r = env.start_relay(config(m.port, creds=creds, **kw), env=cred_env(creds))
    return m, r


def auth(key=KEY):
    return {'Authorization': 'Bearer ' + key}


def sdk_env(r, key=KEY):
    return {'RELAY_URL': 'http://127.0.0.1:%d/v1' % r.port, 'RELAY_KEY': key}


def test_sdk_chat_reaches_mock_with_upstream_model_and_credential(env):
    m, r = start(env)
    out = node('openai_client.mjs', ['chat'], sdk_env(r))
    assert out.get('content') == 'hello from mock', out
    last = m.stats()['last']
    body = json.loads(last['body'])
    assert body['model'] == 'gpt-5.2-2026-01-01', body
    assert last['headers']['authorization'] == 'Bearer sk-upstream-1', last['headers']
    assert KEY not in json.dumps(last), 'client key leaked upstream'
    assert last['path'] == '/v1/chat/completions'
    assert out['usage']['completion_tokens'] == 34


def test_sdk_stream_arrives_intact(env):
    m, r = start(env)
    out = node('openai_client.mjs', ['stream'], sdk_env(r))
    assert out.get('content') == 'tok0 tok1 tok2 tok3 tok4 ', out
    body = json.loads(m.stats()['last']['body'])
    assert body['model'] == 'gpt-5.2-2026-01-01' and body['stream'] is True


def test_sdk_embeddings_and_models(env):
    m, r = start(env)
    out = node('openai_client.mjs', ['embed', 'text-embedding-3-small'], sdk_env(r))
    assert out.get('dims') == 2 and out['usage']['prompt_tokens'] == 8, out
    assert json.loads(m.stats()['last']['body'])['model'] == 'text-embedding-3-small'
    out = node('openai_client.mjs', ['models'], sdk_env(r))
    assert sorted(out['ids']) == ['claude-3-5-sonnet', 'gpt-5.2', 'text-embedding-3-small'], out


def test_sdk_sees_unknown_model_error(env):
    m, r = start(env)
    out = node('openai_client.mjs', ['error', 'gpt-5.3'], sdk_env(r))
    assert out['status'] == 404 and out['code'] == 'model_not_found', out
    assert "gpt-5.2" in out['message'], out   # the close alias is suggested


def start_anthropic(env):
    """A mock provider configured like Anthropic's (x-api-key, a fixed
    anthropic-version) behind claude-3-5-sonnet."""
    m = env.start_mock()
    conf = config(m.port, providers=[
        'provider an base=http://127.0.0.1:%d/v1 auth=x-api-key header=anthropic-version:2023-06-01' % m.port,
        'credential an env:AN_KEY',
    ], models=['model claude-3-5-sonnet text 3.00 15.00 an/claude-3-5-sonnet-20241022'])
    return m, env.start_relay(conf, env={'AN_KEY': 'sk-an-upstream'})


def anthropic_env(r, key=KEY):
    return {'RELAY_BASE': 'http://127.0.0.1:%d' % r.port, 'RELAY_KEY': key}


def charges(r):
    return [l for l in ledger_lines(r) if l['type'] == 'charge']


def test_anthropic_sdk_message_is_relayed_and_charged(env):
    m, r = start_anthropic(env)
    out = node('anthropic_client.mjs', ['message'], anthropic_env(r))
    assert out.get('text') == 'hello from mock' and out['stop'] == 'end_turn', out
    assert out['usage'] == {'input_tokens': 25, 'output_tokens': 15}, out
    last = m.stats()['last']
    assert last['path'] == '/v1/messages', last['path']
    assert json.loads(last['body'])['model'] == 'claude-3-5-sonnet-20241022'
    # the SDK's x-api-key is replaced by the credential, and the provider's
    # anthropic-version is the one sent
    assert last['headers']['x-api-key'] == 'sk-an-upstream', last['headers']
    assert last['headers']['anthropic-version'] == '2023-06-01', last['headers']
    assert KEY not in json.dumps(last), 'client key leaked upstream'
    (c,) = charges(r)
    # 25 in at $3.00/1M + 15 out at $15.00/1M
    assert (c['model'], c['route'], c['in'], c['out']) == \
        ('claude-3-5-sonnet', 'an/claude-3-5-sonnet-20241022', 25, 15), c
    assert c['usd_nano'] == 25 * 3000 + 15 * 15000 and 'estimated' not in c, c


def test_anthropic_sdk_stream_is_relayed_and_charged_from_its_events(env):
    m, r = start_anthropic(env)
    out = node('anthropic_client.mjs', ['stream'], anthropic_env(r))
    assert out.get('text') == 'tok0 tok1 tok2 tok3 tok4 ', out
    assert out['usage']['input_tokens'] == 25 and out['usage']['output_tokens'] == 15, out
    assert json.loads(m.stats()['last']['body'])['stream'] is True
    # input from message_start, output from message_delta
    (c,) = charges(r)
    assert (c['in'], c['out'], c['usd_nano']) == (25, 15, 300000), c


def test_anthropic_sdk_sees_relay_errors(env):
    m, r = start_anthropic(env)
    out = node('anthropic_client.mjs', ['error', 'claude-3-5-sonet'], anthropic_env(r))
    assert out['status'] == 404 and out['name'] == 'NotFoundError', out
    assert 'claude-3-5-sonnet' in out['apiMessage'], out   # the close alias
    out = node('anthropic_client.mjs', ['error'], anthropic_env(r, key='rk-wrong'))
    assert out['status'] == 401 and out['name'] == 'AuthenticationError', out
    assert 'rk-wrong' not in json.dumps(out), out
    assert m.stats()['requests'] == 0 and charges(r) == []


def test_curl_chat_and_relay_headers(env):
    m, r = start(env)
    p = subprocess.run(
        ['curl', '-sS', '-D', '-', '-H', 'Authorization: Bearer ' + KEY,
         '-H', 'Content-Type: application/json',
         '-H', 'X-Custom-Header: kept', '-H', 'Keep-Alive: timeout=5',
         '-H', 'Connection: keep-alive, X-Drop-Me', '-H', 'X-Drop-Me: 1',
         '-d', '{"model":"gpt-5.2","messages":[{"role":"user","content":"hi"}]}',
         'http://127.0.0.1:%d/v1/chat/completions' % r.port],
        capture_output=True, timeout=20)
    head, _, body = p.stdout.decode().partition('\r\n\r\n')
    assert head.startswith('HTTP/1.1 200'), p.stdout
    h = head.lower()
    assert 'x-request-id: req_' in h
    assert 'x-relay-route: mock/gpt-5.2-2026-01-01' in h
    assert 'x-relay-attempts: 1' in h
    assert json.loads(body)['model'] == 'gpt-5.2-2026-01-01'
    seen = m.stats()['last']['headers']
    assert seen.get('x-custom-header') == 'kept', seen
    for hop in ('keep-alive', 'x-drop-me', 'connection', 'transfer-encoding'):
        assert hop not in seen, (hop, seen)


def test_x_api_key_client_auth_and_provider_auth_styles(env):
    m = env.start_mock()
    conf = config(m.port, providers=[
        'provider az base=http://127.0.0.1:%d/v1 auth=api-key' % m.port,
        'credential az env:AZ_KEY',
        'provider an base=http://127.0.0.1:%d/v1 auth=x-api-key header=anthropic-version:2023-06-01' % m.port,
        'credential an env:AN_KEY',
    ], models=['model gpt-5.2 text 1.75 14.00 az/gpt-5.2',
               'model claude-3-5-sonnet text 3.00 15.00 an/claude-3-5-sonnet-20241022'])
    r = env.start_relay(conf, env={'AZ_KEY': 'sk-az', 'AN_KEY': 'sk-an'})
    res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
               {'model': 'gpt-5.2', 'messages': []}, {'x-api-key': KEY})
    assert res.status == 200, res.body
    seen = m.stats()['last']['headers']
    assert seen.get('api-key') == 'sk-az' and 'x-api-key' not in seen, seen
    res = http('127.0.0.1', r.port, 'POST', '/v1/messages',
               {'model': 'claude-3-5-sonnet', 'max_tokens': 10, 'messages': []},
               {'x-api-key': KEY, 'anthropic-version': '1999-01-01'})
    assert res.status == 200, res.body
    assert res.json()['usage']['input_tokens'] == 25
    seen = m.stats()['last']['headers']
    assert seen.get('x-api-key') == 'sk-an', seen
    # the provider's fixed header replaces the client's, never sent twice
    assert seen.get('anthropic-version') == '2023-06-01', seen


def test_bad_inputs_get_documented_errors(env):
    m, r = start(env)
    p = r.port

    def post(body, headers=None):
        h = auth()
        h.update(headers or {})
        return http('127.0.0.1', p, 'POST', '/v1/chat/completions', body, h)

    res = post('{"model": "gpt-5.2", ')
    assert res.status == 400 and res.json()['error']['code'] == 'invalid_json', res.body
    res = post('[1,2]')
    assert res.status == 400 and res.json()['error']['code'] == 'invalid_json', res.body
    res = post({'messages': []})
    assert res.status == 400 and res.json()['error']['code'] == 'missing_model', res.body
    res = post({'model': 'gpt-5.2x', 'messages': []})
    e = res.json()['error']
    assert res.status == 404 and e['code'] == 'model_not_found' and "'gpt-5.2'" in e['message'], res.body
    res = http('127.0.0.1', p, 'POST', '/v1/chat/completions', {'model': 'gpt-5.2'})
    assert res.status == 401 and res.json()['error']['code'] == 'invalid_api_key', res.body
    res = http('127.0.0.1', p, 'POST', '/v1/chat/completions', {'model': 'gpt-5.2'},
               auth('rk-wrong-key'))
    assert res.status == 401 and 'rk-wrong-key' not in res.body.decode(), res.body
    res = http('127.0.0.1', p, 'PUT', '/v1/chat/completions', None, auth())
    assert res.status == 405 and res.json()['error']['code'] == 'method_not_allowed'
    assert res.header('allow') == 'GET, POST, DELETE', res.raw_head
    # without a model and without passthrough: refused, saying why
    res = http('127.0.0.1', p, 'GET', '/v1/chat/completions', None, auth())
    assert res.status == 404 and 'passthrough' in res.json()['error']['message'], res.body
    res = http('127.0.0.1', p, 'GET', '/nope')
    assert res.status == 404
    assert m.stats()['requests'] == 0, 'a bad request reached the upstream'


def test_framing_errors_close_the_connection(env):
    m, r = start(env)
    p = r.port
    cases = [
        (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
         b'Transfer-Encoding: chunked\r\n\r\n', 400, 'bad_request'),
        (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n'
         b'Content-Length: 6\r\n\r\n', 400, 'bad_request'),
        (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n', 400, 'bad_request'),
        (b'GET /healthz HTTP/1.1\r\n\r\n', 400, 'bad_request'),
        (b'GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n', 400, 'bad_request'),
        (b'GET /healthz HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n', 400, 'bad_request'),
        (b'GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n', 400, 'bad_request'),
        (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n', 501, 'not_implemented'),
        (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
         b'\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n', 400, 'bad_request'),
        (b'GET /' + b'a' * 9000 + b' HTTP/1.1\r\nHost: x\r\n\r\n', 414, 'uri_too_long'),
        (b'GET /healthz HTTP/1.1\r\nHost: x\r\n' + b'X-Big: ' + b'b' * 20000 + b'\r\n\r\n', 431, 'headers_too_large'),
        (b'GET /healthz HTTP/1.1\r\nHost: x\r\n' + b''.join(b'X-%d: 1\r\n' % i for i in range(101)) + b'\r\n',
         431, 'headers_too_large'),
    ]
    for data, status, code in cases:
        out = raw(p, data + b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n', timeout=5)
        assert out.startswith(b'HTTP/1.1 %d' % status), (data[:80], out[:200])
        assert (b'"code":"%s"' % code.encode()) in out, out
        assert b'x-request-id: req_' in out
        # closed after the error: the second request was never answered
        assert out.count(b'HTTP/1.1') == 1, out


def test_oversize_body_is_refused_before_it_is_read(env):
    m, r = start(env, extra='limits max_body=1k')
    s = connect(r.port)
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nContent-Length: 5000\r\n\r\n')
    res = read_response(s)
    assert res.status == 413 and res.json()['error']['code'] == 'request_too_large'
    s.close()
    # chunked: refused as soon as the decoded size passes max_body
    body = b''.join(b'200\r\n' + b'x' * 512 + b'\r\n' for _ in range(4)) + b'0\r\n\r\n'
    out = raw(r.port, b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nTransfer-Encoding: chunked\r\n\r\n' + body)
    assert out.startswith(b'HTTP/1.1 413'), out[:200]
    assert m.stats()['requests'] == 0


def test_chunked_request_body_and_expect_continue(env):
    m, r = start(env)
    body = json.dumps({'model': 'gpt-5.2', 'messages': [{'role': 'user', 'content': 'x' * 3000}]}).encode()
    chunks = b''.join(b'%x\r\n%s\r\n' % (len(body[i:i + 700]), body[i:i + 700])
                      for i in range(0, len(body), 700)) + b'0\r\n\r\n'
    s = connect(r.port)
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\n\r\n')
    s.settimeout(5)
    first = s.recv(100)
    assert first.startswith(b'HTTP/1.1 100 Continue\r\n\r\n'), first
    s.sendall(chunks)
    res = read_response(s)
    assert res.status == 200, res.body
    sent = json.loads(m.stats()['last']['body'])
    assert sent['messages'][0]['content'] == 'x' * 3000 and sent['model'] == 'gpt-5.2-2026-01-01'


def test_keepalive_pipelining_and_http10(env):
    m, r = start(env)
    req = (b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
           b'\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n')
    bodies = [json.dumps({'model': 'gpt-5.2', 'messages': [], 'n': i}).encode() for i in range(3)]
    s = connect(r.port)
    s.sendall(b''.join(req % len(b) + b for b in bodies) + b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    got = []
    rest = b''
    for i in range(4):
        class Pre:
            def __init__(self, sock, pre):
                self.sock, self.pre = sock, pre

            def settimeout(self, t):
                self.sock.settimeout(t)

            def recv(self, n):
                if self.pre:
                    p, self.pre = self.pre, b''
                    return p
                return self.sock.recv(n)
        res = read_response(Pre(s, rest))
        rest = res.leftover
        got.append(res)
    assert [g.status for g in got] == [200, 200, 200, 200]
    assert got[3].json() == {'status': 'ok'}
    ids = {g.header('x-request-id') for g in got}
    assert len(ids) == 4
    s.close()
    # HTTP/1.0: served, closed unless keep-alive was asked; a chunked
    # upstream stream is sent close-delimited
    out = raw(r.port, b'POST /v1/chat/completions HTTP/1.0\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nContent-Length: 41\r\n\r\n{"model":"gpt-5.2","stream":true,"a":"b"}')
    assert out.startswith(b'HTTP/1.1 200'), out[:300]
    head, _, body = out.partition(b'\r\n\r\n')
    assert b'transfer-encoding' not in head.lower() and b'connection: close' in head.lower(), head
    assert body.endswith(b'data: [DONE]\n\n'), body[-100:]


def test_models_healthz_metrics_console(env):
    m, r = start(env)
    res = http('127.0.0.1', r.port, 'GET', '/v1/models')
    d = res.json()
    assert d['object'] == 'list' and len(d['data']) == 3
    g = [x for x in d['data'] if x['id'] == 'gpt-5.2'][0]
    assert g['family'] == 'gpt' and g['modality'] == 'text'
    assert g['pricing'] == {'input_usd_per_1m': 1.75, 'output_usd_per_1m': 14.0,
                            'cached_input_usd_per_1m': None, 'cache_write_usd_per_1m': None}
    e = [x for x in d['data'] if x['id'] == 'text-embedding-3-small'][0]
    assert e['pricing']['output_usd_per_1m'] is None
    assert http('127.0.0.1', r.port, 'GET', '/healthz').json() == {'status': 'ok'}
    met = http('127.0.0.1', r.port, 'GET', '/metrics').body.decode()
    assert 'relay_requests_total' in met
    # The console is sent gzip-compressed to a client that accepts gzip:
    # the page as built (build/console.html), byte for byte once inflated.
    page = http('127.0.0.1', r.port, 'GET', '/', headers={'Accept-Encoding': 'gzip, deflate, br'})
    assert page.status == 200 and page.header('content-encoding') == 'gzip', page.raw_head
    assert page.header('vary') == 'Accept-Encoding', page.raw_head
    html = gzip.decompress(page.body)
    with open(os.path.join(ROOT, 'build', 'console.html'), 'rb') as f:
        assert html == f.read()
    assert b'<title>Relay console</title>' in html and html.rstrip().endswith(b'</html>')
    # Without gzip (curl without --compressed): a short page that says how.
    for h in ({}, {'Accept-Encoding': 'gzip;q=0, identity'}):
        page = http('127.0.0.1', r.port, 'GET', '/', headers=h)
        assert page.status == 200 and page.header('content-encoding') is None, page.raw_head
        assert b'<title>Relay console</title>' in page.body and b'curl --compressed' in page.body
    out = subprocess.run(['curl', '-s', '--compressed', 'http://127.0.0.1:%d/' % r.port],
                         capture_output=True, timeout=10)
    assert out.returncode == 0 and out.stdout == html


def test_default_config_serves_17_aliases(env):
    # `make run` serves the embedded config; -l moves it off 8080 for the test
    log = os.path.join(env.dir, 'default.log')
    lf = open(log, 'wb')
    p = subprocess.Popen([RELAY, '-l', '127.0.0.1:0'], cwd=env.dir, stdout=lf, stderr=lf)
    try:
        def port():
            assert p.poll() is None, open(log).read()
            m = re.search(r'listening on http://127\.0\.0\.1:(\d+)', open(log).read())
            return m and int(m.group(1))
        prt = wait_for(port, 10, 'default relay')
        res = http('127.0.0.1', prt, 'GET', '/v1/models')
        ids = [x['id'] for x in res.json()['data']]
        assert len(ids) == 17, ids
        assert 'deepseek-v4-flash' in ids and 'doubao-seedance-2-0-pro' in ids
        fam = {x['id']: x['family'] for x in res.json()['data']}
        assert fam['deepseek-v4-flash'] == 'deepseek-v' and fam['claude-3-5-sonnet'] == 'claude'
        # open mode: no key needed; no credential configured -> 503 listing why
        res = http('127.0.0.1', prt, 'POST', '/v1/chat/completions',
                   {'model': 'gpt-5.2', 'messages': []})
        assert res.status == 503 and 'no credential' in res.json()['error']['message'], res.body
    finally:
        p.terminate()
        p.wait(10)
        lf.close()
    # open mode refuses a non-loopback -l
    q = subprocess.run([RELAY, '-l', '0.0.0.0:0'], capture_output=True, text=True, timeout=10)
    assert q.returncode == 1 and 'loopback only' in q.stderr, q.stderr


def test_check_and_models_commands(env):
    conf = os.path.join(env.dir, 'bad.conf')
    cases = [
        ('listen 127.0.0.1:0\nfrobnicate yes\n', 'bad.conf:2: '),
        ('provider a base=http://127.0.0.1:1/v1\nmodel x text 1 1 a/x\nmodel x text 1 1 a/y\n', 'bad.conf:3: '),
        ('model x text 1 1 nope/x\n', 'bad.conf:1: '),
        ('provider a base=http://127.0.0.1:1/v1\nmodel x text 1.2345 1 a/x\n', 'bad.conf:2: '),
        ('provider a base=http://127.0.0.1:1/v1\ncredential a sk-inline-secret\n', 'bad.conf:2: '),
        ('ca_file /nonexistent/ca.pem\n', 'bad.conf:1: '),
        ('timeouts header=10\n', 'bad.conf:1: '),
    ]
    for text, prefix in cases:
        with open(conf, 'w') as f:
            f.write(text)
        p = subprocess.run([RELAY, 'check', '-c', 'bad.conf'], capture_output=True, text=True,
                           cwd=env.dir)
        assert p.returncode == 1, (text, p.stdout, p.stderr)
        assert p.stderr.startswith(prefix), (text, p.stderr)
        assert 'sk-inline-secret' not in p.stderr
        # and the server refuses to start on it, with the same message
        p2 = subprocess.run([RELAY, '-c', 'bad.conf'], capture_output=True, text=True, timeout=10,
                            cwd=env.dir)
        assert p2.returncode == 1 and prefix in p2.stderr, p2.stderr
    p = subprocess.run([RELAY, 'check'], capture_output=True, text=True)
    assert p.returncode == 0 and 'models     17' in p.stdout, p.stdout
    p = subprocess.run([RELAY, 'models'], capture_output=True, text=True)
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 18 and 'gpt-5.4-mini' in p.stdout, p.stdout
    row = [l for l in lines if l.startswith('deepseek-v4-flash ')][0].split()
    assert row[1:5] == ['text', 'deepseek-v', '0.140', '0.281'], row
    p = subprocess.run([RELAY, 'key'], capture_output=True, text=True)
    k = p.stdout.splitlines()
    assert k[0].startswith('key: rk-') and k[1].startswith('key=sha256:')
    assert hashlib.sha256(k[0][5:].encode()).hexdigest() == k[1][11:]
    p = subprocess.run([RELAY, 'version'], capture_output=True, text=True)
    assert p.stdout.startswith('relay ')


def test_header_timeout_and_max_conns(env):
    m, r = start(env, timeouts='header=300ms keepalive=300ms', extra='limits max_conns=2')
    a = connect(r.port)
    b = connect(r.port)
    a.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n')   # never finished
    time.sleep(0.05)
    out = raw(r.port, b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    assert out.startswith(b'HTTP/1.1 503') and b'server_busy' in out, out
    a.settimeout(5)
    got = a.recv(4096)
    assert got.startswith(b'HTTP/1.1 408') and b'request_timeout' in got, got
    b.settimeout(5)
    got = b.recv(4096)
    assert got.startswith(b'HTTP/1.1 408'), got
    # after the slots freed up, the relay serves again
    wait_for(lambda: http('127.0.0.1', r.port, 'GET', '/healthz').status == 200, 5, 'slot')


def test_big_response_constant_memory(env):
    m, r = start(env)
    base = r.status()['VmRSS']
    for script in ('big:104857600', 'bigchunked:104857600'):
        p = subprocess.run(
            ['curl', '-sS', '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
             '-H', 'Authorization: Bearer ' + KEY, '-H', 'x-mock: ' + script,
             '-d', '{"model":"gpt-5.2"}', 'http://127.0.0.1:%d/v1/chat/completions' % r.port],
            capture_output=True, text=True, timeout=120)
        assert p.stdout == '200 104857600', (script, p.stdout, p.stderr)
    st = r.status()
    assert st['VmHWM'] < base + 2048, ('peak RSS grew', base, st['VmHWM'])


def test_slow_reader_backpressure(env):
    m, r = start(env)
    base = r.status()['VmRSS']
    s = connect(r.port)
    body = b'{"model":"gpt-5.2"}'
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nx-mock: big:52428800\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    got = 0
    h = hashlib.sha256()
    t0 = time.monotonic()
    peak = 0
    while got < 4 * 1024 * 1024:       # read 4 MiB slowly
        c = s.recv(16384)
        assert c
        got += len(c)
        time.sleep(0.002)
        peak = max(peak, r.status()['VmRSS'])
    st = r.status()
    assert st['VmHWM'] < base + 4096, (base, st)   # far below the 50 MiB answer
    s.close()
    # the upstream connection is dropped with the client; relay still serves
    res = http('127.0.0.1', r.port, 'GET', '/healthz')
    assert res.status == 200


def test_early_upstream_answer_stops_the_body(env):
    """An upstream that refuses the body on its head alone (413 as soon as
    the head is in, then it stops reading) gets its answer passed on at
    once: the relay watches for an answer while it sends, stops sending,
    and does not reuse that connection."""
    m, r = start(env)
    body = ('{"model":"gpt-5.2","pad":"%s"}' % ('x' * (24 << 20))).encode()
    t0 = time.monotonic()
    # The mock gives up on the unread body after 60 s: an answer well
    # before that was not waiting for it (a wide margin, not a speed
    # figure: the sanitizer build on a loaded machine is slow).
    res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions', body,
               dict(auth(), **{'x-mock': 'early:413:stop:60000'}), timeout=90)
    assert res.status == 413 and res.json()['error']['message'] == 'mock early 413', res.body
    assert time.monotonic() - t0 < 40, 'waited for the upstream to give up'
    conns = m.stats()['connections']
    assert http('127.0.0.1', r.port, 'POST', '/v1/chat/completions', {'model': 'gpt-5.2'},
                auth()).status == 200
    assert m.stats()['connections'] == conns + 2      # a new upstream connection + stats


def test_upstream_stream_cut_gives_error_event(env):
    m, r = start(env)
    body = b'{"model":"gpt-5.2","stream":true}'
    out = raw(r.port, b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nx-mock: sse_cut:2\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    head, _, rest = out.partition(b'\r\n\r\n')
    assert head.startswith(b'HTTP/1.1 200') and b'transfer-encoding: chunked' in head.lower(), head
    assert b'tok1' in rest and b'[DONE]' not in rest, rest
    assert b'event: error\ndata: {"error":{' in rest, rest
    assert b'"code":"upstream_unavailable"' in rest
    # no last chunk: the client cannot mistake it for a clean end
    assert not rest.endswith(b'0\r\n\r\n'), rest[-40:]


def test_truncated_upstream_body_is_not_complete(env):
    m, r = start(env)
    s = connect(r.port)
    body = b'{"model":"gpt-5.2"}'
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nx-mock: trunc:100\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    try:
        read_response(s)
        raise AssertionError('a truncated body was presented as complete')
    except ConnectionError as e:
        assert 'closed after 100 of 1000' in str(e), e
    s.close()


def test_stream_usage_is_requested_and_hidden_unless_asked(env):
    m, r = start(env)
    for asked in (False, True):
        body = {'model': 'gpt-5.2', 'stream': True, 'messages': []}
        if asked:
            body['stream_options'] = {'include_usage': True}
        res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions', body, auth())
        sent = json.loads(m.stats()['last']['body'])
        assert sent['stream_options']['include_usage'] is True, sent
        events = [e for e in res.body.decode().split('\n\n') if e.strip()]
        usage_events = [e for e in events if '"usage"' in e]
        assert events[-1] == 'data: [DONE]', events[-3:]
        assert len(usage_events) == (1 if asked else 0), (asked, events)
    # the relay metered both streams from the usage chunk
    assert r.log().count('in=12 out=34') == 2, r.log()
    # stream_options present without include_usage: it is added, others kept
    res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
               {'model': 'gpt-5.2', 'stream': True, 'stream_options': {'x': 1}}, auth())
    assert json.loads(m.stats()['last']['body'])['stream_options'] == {'x': 1, 'include_usage': True}
    assert '"usage"' not in res.body.decode()


def test_usage_read_from_every_shape(env):
    m, r = start(env)
    for path, model, want in (('/v1/chat/completions', 'gpt-5.2', 'in=12 out=34'),
                              ('/v1/embeddings', 'text-embedding-3-small', 'in=8 out=0'),
                              ('/v1/responses', 'gpt-5.2', 'in=10 out=20'),
                              ('/v1/messages', 'claude-3-5-sonnet', 'in=25 out=15')):
        for stream in (False, True):
            if stream and path == '/v1/embeddings':
                continue
            before = r.log().count(want)
            res = http('127.0.0.1', r.port, 'POST', path,
                       {'model': model, 'stream': stream, 'input': 'x'}, auth())
            assert res.status == 200, res.body
            wait_for(lambda: r.log().count(want) == before + 1, 5, '%s %s %s' % (path, stream, want))


def test_provider_by_name_resolves_without_blocking(env):
    m = env.start_mock()
    conf = config(m.port, providers=[
        'provider named base=http://localhost:%d/v1' % m.port, 'credential named env:N',
        'provider nx base=http://no-such-host.invalid:%d/v1 insecure=yes' % m.port, 'credential nx env:N'],
        models=['model gpt-5.2 text 1.75 14.00 nx/x named/gpt-5.2'])
    r = env.start_relay(conf, env={'N': 'sk-n'})
    res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions', {'model': 'gpt-5.2'},
               {'Authorization': 'Bearer ' + KEY})
    assert res.status == 200 and res.header('x-relay-route') == 'named/gpt-5.2', res.body
    assert res.header('x-relay-attempts') == '2'
    assert 'cannot resolve no-such-host.invalid' in r.log(), r.log()


def test_key_checked_on_every_request_of_a_connection(env):
    m, r = start(env)
    s = connect(r.port)
    body = b'{"model":"gpt-5.2"}'
    for key, want in ((KEY, 200), (KEY[:-1] + 'X', 401), (KEY, 200), ('', 401)):
        h = b'Authorization: Bearer ' + key.encode() + b'\r\n' if key else b''
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n' + h +
                  b'Content-Length: %d\r\n\r\n' % len(body) + body)
        res = read_response(s)
        assert res.status == want, (key, res.status, res.body)
        if want == 401:
            break   # the body was not read: the relay closes
    s.close()


def test_event_backend_is_the_one_asked_for(env):
    """epoll on Linux; RELAY_POLL=1 (tests/run.sh runs this file once
    more with it) the portable poll() set. Either way a stream goes
    through."""
    m, r = start(env)
    fds = '/proc/%d/fd' % r.proc.pid
    links = [os.readlink(os.path.join(fds, f)) for f in os.listdir(fds)]
    want_poll = os.environ.get('RELAY_POLL') == '1'
    assert any('eventpoll' in l for l in links) != want_poll, (want_poll, links)
    res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
               {'model': 'gpt-5.2', 'stream': True, 'messages': []}, auth())
    assert res.status == 200 and res.body.endswith(b'data: [DONE]\n\n'), res.body[-200:]


def test_out_of_descriptors_does_not_spin(env):
    m = env.start_mock()
    conf = config(m.port)
    r = env.start_relay(conf, env=cred_env(), args=[])
    subprocess.run(['prlimit', '--pid', str(r.proc.pid), '--nofile=24:24'], check=True)
    keep = connect(r.port)   # an existing client keeps being served
    flood = []
    for _ in range(40):
        try:
            flood.append(connect(r.port))
        except OSError:
            break
    wait_for(lambda: 'pausing accepts' in r.log(), 5, 'EMFILE back-off')

    def cpu():
        f = open('/proc/%d/stat' % r.proc.pid).read().rsplit(')', 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf('SC_CLK_TCK')
    c0 = cpu()
    time.sleep(1.0)          # measuring idleness: nothing to wait for
    assert cpu() - c0 < 0.3, 'the loop spins while out of descriptors'
    keep.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
    assert read_response(keep).status == 200
    for s in flood:
        s.close()
    wait_for(lambda: http('127.0.0.1', r.port, 'GET', '/healthz').status == 200, 5, 'accepting again')
