"""Today's behaviour pinned byte for byte, so that splitting src/proxy.c
into modules can be checked to change nothing a user or a provider would
notice: the request head and body each provider auth style receives, the
stream-usage edits of the body, the response head a client gets, SSE fed
one byte at a time, and the exact ledger lines and wallet of a sequence of
requests.

Where a pinned behaviour looks wrong it is still pinned as it is, marked
"# today's behaviour; issue N may change it" (or "a new issue" for one
found while writing these tests); change the assertion with the fix."""
import hashlib
import json
import re
import subprocess
from decimal import Decimal, ROUND_HALF_EVEN

from harness import (KEY, RELAY, config, connect, http, ledger_lines, raw,
                     read_response, read_response_rest, sha256_hex, wait_for)

ADMIN = 'rk-admin-test-0000000000000000000009'
ID_RE = re.compile(rb'req_[0-9a-f]{16}([0-9a-f]{6})')


def masked(head):
    """A response head with the random part of its request id masked; the
    counter part (the last 6 hex digits) is kept."""
    return ID_RE.sub(rb'req_<random>\1', head)


def request(path, body, headers=b'', method=b'POST', version=b'HTTP/1.1', key=KEY,
            close=True):
    auth = b'Authorization: Bearer ' + key.encode() + b'\r\n' if key else b''
    return (method + b' ' + path + b' ' + version + b'\r\nHost: relay.test\r\n' + auth +
            headers + (b'Connection: close\r\n' if close else b'') +
            b'Content-Length: %d\r\n\r\n' % len(body) + body)


def split(out):
    head, sep, body = out.partition(b'\r\n\r\n')
    assert sep, out
    return head, body


class Client:
    """One keep-alive client connection: send a request, read its answer
    (its head kept raw), then the next one on the same connection."""

    def __init__(self, port):
        self.s = connect(port)
        self.rest = b''

    def ask(self, data, method='POST'):
        self.s.sendall(data)
        res = read_response_rest(self.s, self.rest, method)
        self.rest = getattr(res, 'leftover', b'')
        return res

    def close(self):
        self.s.close()


def chunked(*pieces):
    return b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in pieces) + b'0\r\n\r\n'


# ---- 1. golden upstream request heads ---------------------------------------

def test_pinned_upstream_request_head_per_auth_style(env):
    m = env.start_mock()
    mp = m.port
    conf = config(mp, providers=[
        'provider bb base=http://127.0.0.1:%d/base/v9 auth=bearer header=X-Fixed:one '
        'header=anthropic-version:2023-06-01' % mp,
        'credential bb env:BB1',
        'credential bb env:BB2',
        'provider xa base=http://127.0.0.1:%d/xa auth=x-api-key header=X-Fixed:two' % mp,
        'credential xa env:XA',
        'provider az base=http://127.0.0.1:%d auth=api-key header=X-Fixed:three' % mp,
        'credential az env:AZ',
        'provider no base=http://127.0.0.1:%d/none/ auth=none header=X-Fixed:four' % mp,
    ], models=['model m-bb text 1.75 14.00 bb/up-bb',
               'model vid video - 6.40 bb/seedance-x',
               'model m-xa text 1.00 1.00 xa/vendor/up-xa',
               'model m-az text 1.00 1.00 az/up-az',
               'model m-no text 1.00 1.00 no/up-no'])
    r = env.start_relay(conf, env={'BB1': 'sk-bb-1', 'BB2': 'sk-bb-2', 'XA': 'sk-xa',
                                   'AZ': 'sk-az'})
    # Everything a client may send that must not reach the provider, mixed
    # with what must, in an order the provider must see kept.
    client_fields = (
        b'User-Agent: pin/1\r\n'
        b'X-Fixed: from-client\r\n'             # same name as header=: replaced
        b'Accept-Encoding: gzip, br\r\n'
        b'X-Multi: a\r\n'
        b'api-key: client-api-key\r\n'
        b'x-api-key: client-x-api-key\r\n'
        b'Connection: keep-alive, X-Hop\r\n'
        b'X-Hop: listed in Connection\r\n'
        b'Keep-Alive: timeout=5\r\n'
        b'TE: trailers\r\n'
        b'Trailer: X-T\r\n'
        b'Upgrade: h2c\r\n'
        b'Proxy-Authorization: Basic eDp5\r\n'
        b'Proxy-Connection: keep-alive\r\n'
        b'OpenAI-Organization: org-client\r\n'  # dropped (issue 14, SPEC §10)
        b'OpenAI-Project: proj-client\r\n'      # dropped (issue 14, SPEC §10)
        b'anthropic-version: 1999-01-01\r\n'
        b'X-Empty:\r\n'
        b'x-CUSTOM:  spaced value \t\r\n'
        b'X-Multi: b\r\n'
        b'Content-Type: application/json\r\n'
        b'Accept: */*\r\n')
    kept = (b'User-Agent: pin/1\r\n'
            b'X-Multi: a\r\n'
            b'%s'                                # anthropic-version unless header= sets it
            b'X-Empty: \r\n'
            b'x-CUSTOM: spaced value\r\n'
            b'X-Multi: b\r\n'
            b'Content-Type: application/json\r\n'
            b'Accept: */*\r\n')
    host = b'Host: 127.0.0.1:%d\r\n' % mp
    cases = [
        # alias, the provider's path, its credential and header= lines
        ('m-bb', b'/base/v9', b'Authorization: Bearer sk-bb-1\r\nX-Fixed: one\r\n'
         b'anthropic-version: 2023-06-01\r\n', b'up-bb', False),
        ('m-bb', b'/base/v9', b'Authorization: Bearer sk-bb-2\r\nX-Fixed: one\r\n'
         b'anthropic-version: 2023-06-01\r\n', b'up-bb', False),   # the cursor moved on
        ('m-xa', b'/xa', b'x-api-key: sk-xa\r\nX-Fixed: two\r\n', b'vendor/up-xa', True),
        ('m-az', b'', b'api-key: sk-az\r\nX-Fixed: three\r\n', b'up-az', True),
        ('m-no', b'/none', b'X-Fixed: four\r\n', b'up-no', True),
    ]
    for alias, base, cred_lines, upstream_id, client_version in cases:
        body = b'{"model":"%s","messages":[{"role":"user","content":"hi"}],"max_tokens":5}' % \
            alias.encode()
        req = (b'POST /v1/chat/completions?api-version=2024-06-01&x=a%20b HTTP/1.1\r\n'
               b'Host: relay.example:8080\r\nAuthorization: Bearer ' + KEY.encode() + b'\r\n' +
               client_fields + b'Content-Length: %d\r\n\r\n' % len(body) + body)
        s = connect(r.port)
        s.sendall(req)
        res = read_response(s)
        s.close()
        assert res.status == 200, (alias, res.status, res.body)
        head, got = m.last_raw()
        want_body = body.replace(b'"%s"' % alias.encode(), b'"%s"' % upstream_id)
        want = (b'POST ' + base + b'/chat/completions?api-version=2024-06-01&x=a%20b HTTP/1.1\r\n' +
                host + cred_lines +
                kept % (b'anthropic-version: 1999-01-01\r\n' if client_version else b'') +
                b'Content-Length: %d\r\n\r\n' % len(want_body))
        assert head == want, (alias, head, want)
        assert got == want_body, (alias, got)

    # A chunked client body with Expect: 100-continue, the key in x-api-key:
    # Transfer-Encoding, Expect and x-api-key stay behind, the length is
    # the rewritten body's.
    body = b'{"model":"m-xa","messages":[]}'
    s = connect(r.port)
    s.sendall(b'POST /v1/messages HTTP/1.1\r\nHost: x\r\nx-api-key: ' + KEY.encode() +
              b'\r\nExpect: 100-continue\r\nTransfer-Encoding: chunked\r\nX-After: 1\r\n\r\n')
    s.settimeout(5)
    assert s.recv(100) == b'HTTP/1.1 100 Continue\r\n\r\n'
    s.sendall(chunked(body[:7], body[7:]))
    res = read_response(s)
    s.close()
    assert res.status == 200, res.body
    head, got = m.last_raw()
    assert head == (b'POST /xa/messages HTTP/1.1\r\n' + host +
                    b'x-api-key: sk-xa\r\nX-Fixed: two\r\nX-After: 1\r\n'
                    b'Content-Length: 38\r\n\r\n'), head
    assert got == b'{"model":"vendor/up-xa","messages":[]}', got

    # today's behaviour; a new issue may change it: only the first
    # Connection field is read for the names it lists (RFC 9110 7.6.1
    # combines them), so a field named in a second one reaches the provider
    s = connect(r.port)
    body = b'{"model":"m-no"}'
    s.sendall(b'POST /v1/embeddings HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nConnection: X-First\r\nConnection: X-Second\r\nX-First: 1\r\nX-Second: 2\r\n'
              b'Content-Length: %d\r\n\r\n' % len(body) + body)
    assert read_response(s).status == 200
    s.close()
    assert m.last_raw() == (b'POST /none/embeddings HTTP/1.1\r\n' + host +
                            b'X-Fixed: four\r\nX-Second: 2\r\nContent-Length: 17\r\n\r\n',
                            b'{"model":"up-no"}')

    # A video task: created like any call, then polled and cancelled on the
    # provider and credential that made it, with no body.
    def task_call(method, path, body=b''):
        out = raw(r.port, method + b' ' + path + b' HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
                  KEY.encode() + b'\r\nUser-Agent: pin/1\r\nConnection: close\r\n' +
                  (b'Content-Length: %d\r\n' % len(body) if body else b'') + b'\r\n' + body)
        assert out.startswith(b'HTTP/1.1 200 OK\r\n'), out
        return m.last_raw()
    head, got = task_call(b'POST', b'/v1/contents/generations/tasks', b'{"model":"vid"}')
    assert head == (b'POST /base/v9/contents/generations/tasks HTTP/1.1\r\n' + host +
                    b'Authorization: Bearer sk-bb-1\r\nX-Fixed: one\r\n'
                    b'anthropic-version: 2023-06-01\r\nUser-Agent: pin/1\r\n'
                    b'Content-Length: 22\r\n\r\n'), head
    assert got == b'{"model":"seedance-x"}', got
    # today's behaviour; a new issue may change it: a GET or DELETE
    # without a body is sent with "Content-Length: 0" (RFC 9110 8.6: a
    # request without content should not send one)
    for method, path in ((b'GET', b'/contents/generations/tasks/cgt-mock-1?verbose=1'),
                         (b'DELETE', b'/contents/generations/tasks/cgt-mock-1')):
        head, got = task_call(method, b'/v1' + path)
        assert head == (method + b' /base/v9' + path + b' HTTP/1.1\r\n' + host +
                        b'Authorization: Bearer sk-bb-1\r\nX-Fixed: one\r\n'
                        b'anthropic-version: 2023-06-01\r\nUser-Agent: pin/1\r\n'
                        b'Content-Length: 0\r\n\r\n'), head
        assert got == b''
    assert KEY.encode() not in b''.join(h + b for h, b in m.raw_requests())


# ---- 2. the stream-usage edits of the body ----------------------------------

IU = b'"include_usage":true'


def test_pinned_stream_usage_body_edits(env):
    m = env.start_mock()
    conf = config(m.port, models=[
        'model gpt-5.2 text 1.75 14.00 mock/gpt-5.2-2026-01-01',
        'model slashy text 1.00 1.00 mock/org/vendor/id<&>\'',
        'model unicode text 1.00 1.00 mock/mod\u00e8le-\u00fc'])
    r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
    up = b'"gpt-5.2-2026-01-01"'
    chat = b'/v1/chat/completions'
    H, S, _ = 'hidden', 'shown', None   # the usage chunk the client gets
    cases = [
        # (path, client body, body the provider gets, usage chunk)
        (chat, b'{"model":"gpt-5.2","stream":true}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"messages":[]}  ',
         b'{"model":%s,"stream":true,"messages":[],"stream_options":{%s}}  ' % (up, IU), H),
        (chat, b' { "model" : "gpt-5.2" , "stream" : true } ',
         b' { "model" : %s , "stream" : true ,"stream_options":{%s}} ' % (up, IU), H),
        (chat, b'{"stream":true,"model":"gpt-5.2"}',
         b'{"stream":true,"model":%s,"stream_options":{%s}}' % (up, IU), H),
        (chat + b'?api-version=1', b'{"model":"gpt-5.2","stream":true}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        (b'/v1/openai/deployments/d1/chat/completions', b'{"model":"gpt-5.2","stream":true}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{}}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{ }}',
         b'{"model":%s,"stream":true,"stream_options":{ %s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{\n}}',
         b'{"model":%s,"stream":true,"stream_options":{\n%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{"x":1}}',
         b'{"model":%s,"stream":true,"stream_options":{"x":1,%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{"x":1 }}',
         b'{"model":%s,"stream":true,"stream_options":{"x":1 ,%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":null}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":[]}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":"x"}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        # false: a later duplicate key is added (every common parser takes
        # the last one)
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{"include_usage":false}}',
         b'{"model":%s,"stream":true,"stream_options":{"include_usage":false,%s}}' % (up, IU), H),
        # already asked: untouched but for the model, and shown
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{"include_usage":true}}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), S),
        (chat, b'{"model":"gpt-5.2","stream":true,"stream_options":{"include_usage" : true }}',
         b'{"model":%s,"stream":true,"stream_options":{"include_usage" : true }}' % up, S),
        # not a stream, or not chat: untouched but for the model
        (chat, b'{"model":"gpt-5.2","stream":false}', b'{"model":%s,"stream":false}' % up, _),
        (chat, b'{"model":"gpt-5.2","stream":"true"}', b'{"model":%s,"stream":"true"}' % up, _),
        (chat, b'{"model":"gpt-5.2"}', b'{"model":%s}' % up, _),
        (b'/v1/responses', b'{"model":"gpt-5.2","stream":true}',
         b'{"model":%s,"stream":true}' % up, _),
        (b'/v1/responses', b'{"model":"gpt-5.2","stream":true,"stream_options":null}',
         b'{"model":%s,"stream":true,"stream_options":null}' % up, _),
        (b'/v1/completions', b'{"model":"gpt-5.2","stream":true}',
         b'{"model":%s,"stream":true}' % up, _),
        # only the top-level "model" is the model; keys are read decoded,
        # the client's escapes are kept
        (chat, b'{"model":"gpt-5.2","messages":[{"model":"x"}],"stream":true}',
         b'{"model":%s,"messages":[{"model":"x"}],"stream":true,"stream_options":{%s}}' % (up, IU),
         H),
        (chat, b'{"mod\\u0065l":"gpt-5.2","stream":true}',
         b'{"mod\\u0065l":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        (chat, b'{"model":"gpt\\u002d5.2","stream":true}',
         b'{"model":%s,"stream":true,"stream_options":{%s}}' % (up, IU), H),
        # upstream ids are sent as configured: '/' and non-ASCII raw
        (chat, b'{"model":"slashy","stream":true}',
         b'{"model":"org/vendor/id<&>\'","stream":true,"stream_options":{%s}}' % IU, H),
        (chat, b'{"model":"unicode"}', '{"model":"mod\u00e8le-\u00fc"}'.encode(), _),
    ]
    # Duplicate top-level keys are refused, nothing goes upstream (SPEC §8,
    # issue 13; the last one used to count).
    for body in (b'{"model":"gpt-5.2","stream":true,"stream":false}',
                 b'{"model":"gpt-5.2","stream":true,"stream_options":{"include_usage":true},'
                 b'"stream_options":{}}'):
        before = m.stats()['requests']
        res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions', body,
                   {'Authorization': 'Bearer ' + KEY})
        assert res.status == 400 and b'"code":"invalid_json"' in res.body, res.body
        assert m.stats()['requests'] == before
    for path, body, want, usage in cases:
        res = http('127.0.0.1', r.port, 'POST', path.decode(), body,
                   {'Authorization': 'Bearer ' + KEY})
        assert res.status == 200, (path, body, res.status, res.body)
        head, got = m.last_raw()
        assert got == want, (path, body, got, want)
        assert b'\r\nContent-Length: %d\r\n' % len(want) in head, head
        # the mock streams its usage chunk when asked; the relay hides the
        # one it asked for, not one the client asked for
        if usage is not None:
            assert res.body.endswith(b'data: [DONE]\n\n'), res.body
            assert (b'"choices":[],"usage"' in res.body) == (usage == S), (body, res.body)

    # A route id that would need JSON escaping (a quote, a backslash) is
    # refused by the config, so the escaping of the model value is never
    # reached from a config file.
    for bad in ('mock/we"ird', 'mock/back\\slash'):
        with open(env.dir + '/bad.conf', 'w') as f:
            f.write('provider mock base=http://127.0.0.1:1/v1\nmodel x text 1 1 %s\n' % bad)
        p = subprocess.run([RELAY, 'check', '-c', 'bad.conf'], capture_output=True, text=True,
                           cwd=env.dir)
        assert p.returncode == 1, p.stdout
        assert p.stderr == "bad.conf:2: route '%s' is not provider/upstream-model\n" % bad, \
            p.stderr


# ---- 3. the response head a client gets --------------------------------------

def test_pinned_response_heads(env):
    m = env.start_mock()
    conf = config(m.port, providers=[
        'provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % m.port,
        'credential mock env:MOCK_KEY_1',
    ], models=['model gpt-5.2 text 1.75 14.00 mock/gpt-5.2-2026-01-01'])
    r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
    route = b'x-relay-route: mock/gpt-5.2-2026-01-01\r\n'
    J = b'{"model":"gpt-5.2"}'
    S = b'{"model":"gpt-5.2","stream":true}'
    CHAT = (b'{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,'
            b'"model":"gpt-5.2-2026-01-01","choices":[{"index":0,"message":{"role":"assistant",'
            b'"content":"hello from mock"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,'
            b'"completion_tokens":34,"total_tokens":46}}')
    events = [chat_event(i) for i in range(5)] + [b'data: [DONE]\n\n']
    n = [0]

    def rid():
        """The id the next request gets: random part masked, the counter
        counts every request this relay has seen."""
        n[0] += 1
        return b'x-request-id: req_<random>%06x\r\n' % n[0]

    # HTTP/1.1 keep-alive: no Connection field; a Content-Length answer.
    c = Client(r.port)
    res = c.ask(request(b'/v1/chat/completions', J, close=False))
    assert masked(res.raw_head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: ok\r\nContent-Length: 275\r\n' + rid() + route +
        b'x-relay-attempts: 1'), res.raw_head
    assert res.body == CHAT

    # The upstream's own x-request-id kept as x-upstream-request-id; its
    # hop-by-hop fields (and those its Connection lists), its Content-Length
    # and its x-relay-* dropped; everything else in its order.
    up_fields = [b'X-Request-Id: up-req-123', b'Keep-Alive: timeout=5', b'X-Drop: 1',
                 b'Upgrade: h2c', b'Proxy-Authenticate: Basic', b'Proxy-Foo: 1',
                 b'TE: trailers', b'Trailer: X-T', b'x-relay-route: fake/route',
                 b'X-Relay-Attempts: 9', b'Set-Cookie: a=1', b'X-Kept: yes', b'Set-Cookie: b=2']
    res = c.ask(request(b'/v1/chat/completions', J, b''.join(
        b'x-mock-header: ' + f + b'\r\n' for f in up_fields) +
        b'x-mock-connection: X-Drop\r\n', close=False))
    assert masked(res.raw_head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: ok\r\nx-upstream-request-id: up-req-123\r\nSet-Cookie: a=1\r\n'
        b'X-Kept: yes\r\nSet-Cookie: b=2\r\nContent-Length: 275\r\n' + rid() + route +
        b'x-relay-attempts: 1'), res.raw_head
    assert res.body == CHAT

    # today's behaviour; a new issue may change it: only the upstream's
    # first Connection field is read for the names it lists, so a field
    # named in a second one reaches the client
    res = c.ask(request(b'/v1/chat/completions', J, b'x-mock-header: Connection: X-Up2\r\n'
                        b'x-mock-header: X-Up2: 1\r\n', close=False))
    assert masked(res.raw_head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: ok\r\nX-Up2: 1\r\nContent-Length: 275\r\n' + rid() + route +
        b'x-relay-attempts: 1'), res.raw_head

    # Upstream 204 and 304: no body, no Content-Length, the connection goes on.
    for code, reason in ((204, b'No Content'), (304, b'Not Modified')):
        res = c.ask(request(b'/v1/chat/completions', J, b'x-mock: status:%d\r\n' % code,
                            close=False))
        assert masked(res.raw_head) == (
            b'HTTP/1.1 %d %s\r\nServer: mockup\r\nX-Mock-Step: status\r\n' % (code, reason) +
            rid() + route + b'x-relay-attempts: 1'), res.raw_head
        assert res.leftover == b'', res.leftover

    # An upstream 400 is passed through as it is.
    res = c.ask(request(b'/v1/chat/completions', J, b'x-mock: status:400\r\n', close=False))
    assert masked(res.raw_head) == (
        b'HTTP/1.1 400 Bad Request\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: status\r\nContent-Length: 69\r\n' + rid() + route +
        b'x-relay-attempts: 1'), res.raw_head
    assert res.body == b'{"error":{"message":"mock error 400","type":"mock","code":"mock400"}}'

    # The upstream fails: 503 with Retry-After and attempts, no route.
    res = c.ask(request(b'/v1/chat/completions', J, b'x-mock: 500\r\n', close=False))
    assert masked(res.raw_head) == (
        b'HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n'
        b'Content-Length: 196\r\n' + rid() + b'Retry-After: 1\r\nx-relay-attempts: 1'), \
        res.raw_head
    assert res.body == (b'{"error":{"message":"no upstream could answer for model \'gpt-5.2\' '
                        b'(1 attempt): mock/gpt-5.2-2026-01-01 key mock#1: 500 Internal Server '
                        b'Error","type":"server_error","code":"upstream_unavailable"}}\n'), res.body
    c.close()

    # An upstream chunked JSON answer: chunked to the client, each chunk
    # with a fixed-width size line (how it is cut follows the reads).
    out = raw(r.port, request(b'/v1/chat/completions', J, b'x-mock: bigchunked:200\r\n'))
    head, body = split(out)
    assert masked(head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: bigchunked\r\nTransfer-Encoding: chunked\r\n' + rid() + route +
        b'x-relay-attempts: 1\r\nConnection: close'), head
    big = (b'{"id":"big","object":"chat.completion","pad":"' + b'x' * 85 +
           b'","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}')
    assert len(big) == 200
    assert dechunk_fixed(body) == big, body

    # An upstream answer framed by its close alone: chunked to the client.
    out = raw(r.port, request(b'/v1/chat/completions', J, b'x-mock: eof\r\n'))
    head, body = split(out)
    assert masked(head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: eof\r\nTransfer-Encoding: chunked\r\n' + rid() + route +
        b'x-relay-attempts: 1\r\nConnection: close'), head
    assert dechunk_fixed(body) == CHAT, body

    # SSE, chunked by the upstream and close-delimited: one chunk per event.
    for step in (b'ok', b'eof'):
        out = raw(r.port, request(b'/v1/chat/completions', S, b'x-mock: %s\r\n' % step))
        head, body = split(out)
        assert masked(head) == (
            b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: text/event-stream\r\n'
            b'X-Mock-Step: %s\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n' % step +
            rid() + route + b'x-relay-attempts: 1\r\nConnection: close'), head
        assert body == chunked(*events), body

    # HTTP/1.0 client: no chunked coding; a stream is close-delimited.
    out = raw(r.port, request(b'/v1/chat/completions', S, version=b'HTTP/1.0', close=False))
    head, body = split(out)
    assert masked(head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: text/event-stream\r\n'
        b'X-Mock-Step: ok\r\nCache-Control: no-cache\r\n' + rid() + route +
        b'x-relay-attempts: 1\r\nConnection: close'), head
    assert body == b''.join(events), body
    out = raw(r.port, request(b'/v1/chat/completions', J, b'x-mock: eof\r\n',
                              version=b'HTTP/1.0', close=False))
    head, body = split(out)
    assert masked(head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: eof\r\n' + rid() + route +
        b'x-relay-attempts: 1\r\nConnection: close'), head
    assert body == CHAT, body
    # HTTP/1.0 without keep-alive, a Content-Length answer: closed after it.
    out = raw(r.port, request(b'/v1/chat/completions', J, version=b'HTTP/1.0', close=False))
    head, body = split(out)
    assert masked(head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: ok\r\nContent-Length: 275\r\n' + rid() + route +
        b'x-relay-attempts: 1\r\nConnection: close'), head
    assert body == CHAT, body
    # HTTP/1.0 with keep-alive: kept (and said so) for a Content-Length
    # answer; a stream still ends with the close.
    c = Client(r.port)
    ka = b'Connection: keep-alive\r\n'
    res = c.ask(request(b'/v1/chat/completions', J, ka, version=b'HTTP/1.0', close=False))
    assert masked(res.raw_head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: application/json\r\n'
        b'X-Mock-Step: ok\r\nContent-Length: 275\r\n' + rid() + route +
        b'x-relay-attempts: 1\r\nConnection: keep-alive'), res.raw_head
    c.s.sendall(request(b'/v1/chat/completions', S, ka, version=b'HTTP/1.0', close=False))
    out = b''
    while True:
        got = c.s.recv(65536)
        if not got:
            break
        out += got
    c.close()
    head, body = split(out)
    assert masked(head) == (
        b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: text/event-stream\r\n'
        b'X-Mock-Step: ok\r\nCache-Control: no-cache\r\n' + rid() + route +
        b'x-relay-attempts: 1\r\nConnection: close'), head
    assert body == b''.join(events), body

    # HEAD: 405 on relayed and local paths alike, with the methods each
    # path accepts, and without a body (RFC 9110 9.3.2).
    for path, what in ((b'/v1/chat/completions', b'GET, POST, DELETE'),
                       (b'/healthz', b'GET')):
        out = raw(r.port, b'HEAD ' + path + b' HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
                  KEY.encode() + b'\r\n\r\n', timeout=5)
        msg = b'{"error":{"message":"use %s for this path","type":"invalid_request_error",' \
              b'"code":"method_not_allowed"}}\n' % what
        assert masked(out) == (
            b'HTTP/1.1 405 Method Not Allowed\r\nContent-Type: application/json\r\n'
            b'Content-Length: %d\r\n' % len(msg) + rid() +
            b'Connection: close\r\nAllow: %s\r\n\r\n' % what), out

    # A relay error: 401 without a route.
    out = raw(r.port, request(b'/v1/chat/completions', J, key='rk-wrong', close=False))
    msg = b'{"error":{"message":"unknown API key","type":"authentication_error",' \
          b'"code":"invalid_api_key"}}\n'
    assert masked(out) == (
        b'HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n'
        b'Content-Length: %d\r\n' % len(msg) + rid() + b'Connection: close\r\n\r\n' + msg), out


def dechunk_fixed(body):
    """A chunked body whose size lines are all 8 hex digits (the relay's
    framing of a non-SSE body), de-chunked; it must end with the last
    chunk."""
    out = b''
    while True:
        m = re.match(rb'([0-9a-f]{8}|0)\r\n', body)
        assert m, body[:40]
        size = int(m.group(1), 16)
        body = body[m.end():]
        if size == 0:
            assert body == b'\r\n', body
            return out
        assert m.group(1) != b'0' and body[size:size + 2] == b'\r\n', body[:40]
        out += body[:size]
        body = body[size + 2:]


# ---- 4. SSE fed one byte at a time -------------------------------------------

def chat_event(i, model=b'gpt-5.2-2026-01-01'):
    return (b'data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,'
            b'"model":"%s","choices":[{"index":0,"delta":{"content":"tok%d "},'
            b'"finish_reason":null}]}\n\n' % (model, i))


def chat_usage_event(model=b'gpt-5.2-2026-01-01'):
    return (b'data: {"id":"chatcmpl-mock","object":"chat.completion.chunk","created":1700000000,'
            b'"model":"%s","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":34,'
            b'"total_tokens":46}}\n\n' % model)


def anthropic_events(n, model=b'claude-3-5-sonnet-20241022'):
    ev = [b'event: message_start\ndata: {"type":"message_start","message":{"id":"msg_mock",'
          b'"type":"message","role":"assistant","model":"%s","content":[],"stop_reason":null,'
          b'"stop_sequence":null,"usage":{"input_tokens":25,"output_tokens":1}}}\n\n' % model,
          b'event: content_block_start\ndata: {"type":"content_block_start","index":0,'
          b'"content_block":{"type":"text","text":""}}\n\n']
    ev += [b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
           b'"delta":{"type":"text_delta","text":"tok%d "}}\n\n' % i for i in range(n)]
    ev += [b'event: content_block_stop\ndata: {"type":"content_block_stop","index":0}\n\n',
           b'event: message_delta\ndata: {"type":"message_delta","delta":{"stop_reason":'
           b'"end_turn","stop_sequence":null},"usage":{"output_tokens":15}}\n\n',
           b'event: message_stop\ndata: {"type":"message_stop"}\n\n']
    return ev


def sse_head(step, n, route):
    return (b'HTTP/1.1 200 OK\r\nServer: mockup\r\nContent-Type: text/event-stream\r\n'
            b'X-Mock-Step: %s\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n'
            b'x-request-id: req_<random>%06x\r\nx-relay-route: %s\r\nx-relay-attempts: 1\r\n'
            b'Connection: close' % (step, n, route))


def test_pinned_sse_byte_at_a_time(env):
    m = env.start_mock()
    r = env.start_relay(config(m.port), env={'MOCK_KEY_1': 'sk-up'})
    n = 0
    # The mock writes the whole answer (head, chunk framing, data) one byte
    # per send(), 20 us apart, each body byte its own chunk; the client must
    # get exactly what it gets when each event comes whole, chunk for chunk.
    steps = (b'sse:3', b'ssebytes:3:20')
    for asked in (False, True):
        body = b'{"model":"gpt-5.2","stream":true%s}' % (
            b',"stream_options":{"include_usage":true}' if asked else b'')
        sent = (b'{"model":"gpt-5.2-2026-01-01","stream":true,'
                b'"stream_options":{"include_usage":true}}')
        want = [chat_event(i) for i in range(3)]
        if asked:
            want.append(chat_usage_event())
        want.append(b'data: [DONE]\n\n')
        for step in steps:
            out = raw(r.port, request(b'/v1/chat/completions', body, b'x-mock: %s\r\n' % step),
                      timeout=30)
            n += 1
            head, got = split(out)
            assert masked(head) == sse_head(step.split(b':')[0], n,
                                            b'mock/gpt-5.2-2026-01-01'), head
            # one chunk per event; the usage-only chunk the relay asked for
            # is hidden from a client that did not ask (found today by the
            # literal bytes "choices":[], which issue 13 may change; the
            # mock's chunk is compact, so what is hidden here stays)
            assert got == chunked(*want), (asked, step, got)
            assert m.last_raw()[1] == sent
    for step in steps:
        body = b'{"model":"claude-3-5-sonnet","stream":true,"max_tokens":64}'
        out = raw(r.port, request(b'/v1/messages', body, b'x-mock: %s\r\n' % step), timeout=30)
        n += 1
        head, got = split(out)
        assert masked(head) == sse_head(step.split(b':')[0], n,
                                        b'mock/claude-3-5-sonnet-20241022'), head
        assert got == chunked(*anthropic_events(3)), (step, got)
        assert m.last_raw()[1] == b'{"model":"claude-3-5-sonnet-20241022","stream":true,' \
                                  b'"max_tokens":64}'
    lines = ledger_lines(r)
    assert [(l['model'], l['in'], l['out'], l['usd_nano'], l.get('estimated')) for l in lines] == \
        [('gpt-5.2', 12, 34, 12 * 1750 + 34 * 14000, None)] * 4 + \
        [('claude-3-5-sonnet', 25, 15, 25 * 3000 + 15 * 15000, None)] * 2, lines


# ---- 5. holds, charges, the ledger and the wallet ----------------------------

RATE = Decimal('7.2000')
TS_RE = rb'"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"'


def usd_nano(tin, tout, pin, pout):
    # USD per 1M tokens = nano-USD per token * 1000
    return tin * int(Decimal(pin) * 1000) + tout * int(Decimal(pout) * 1000)


def cny_nano(usd):
    return int((Decimal(usd) * RATE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def fmt(nano, decimals):
    return '{:f}'.format((Decimal(nano) / 10**9).quantize(Decimal(1).scaleb(-decimals),
                                                          rounding=ROUND_HALF_EVEN))


def fmt_trim(nano):
    """Nine decimals with trailing zeros dropped, at least two kept."""
    s = fmt(nano, 9)
    while len(s.split('.')[1]) > 2 and s.endswith('0'):
        s = s[:-1]
    return s


def wallet_body(balance, held, charged, requests):
    usd = (Decimal(abs(balance)) / RATE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    usd_s = fmt_trim(int(usd))
    if balance < 0:
        usd_s = '-' + usd_s
    return ('{"wallet":"acme","currency":"CNY","balance":"%s","balance_nano":%d,'
            '"balance_usd":"%s","held_nano":%d,"today":{"charged_nano":%d,"requests":%d},'
            '"overdraft":"0.00","limits":{"rpm":null,"tpm":null,"max_streams":null,'
            '"budget_day":null},"used":{}}\n' % (
                fmt_trim(balance), balance, usd_s, held, charged, requests)).encode()


def test_pinned_holds_charges_ledger_and_wallet(env):
    m = env.start_mock()
    conf = config(m.port, overdraft='0', providers=[
        'provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % m.port,
        'credential mock env:UP',
        'provider bad base=http://127.0.0.1:%d/v1 auth=bearer' % m.port,
        'credential bad env:BAD',
    ], models=['model gpt-5.2 text 1.75 14.00 mock/gpt-5.2-2026-01-01',
               'model claude-3-5-sonnet text 3.00 15.00 mock/claude-3-5-sonnet-20241022',
               'model gpt-fo text 3.00 15.00 bad/gpt-a mock/gpt-b'],
        extra='admin_key sha256:%s\ncurrency CNY rate=7.2000\n' % sha256_hex(ADMIN))
    r = env.start_relay(conf, env={'UP': 'sk-up', 'BAD': '500'})
    auth = {'Authorization': 'Bearer ' + KEY}

    def wallet():
        # The "used" counts (SPEC §12) move with the clock's windows:
        # their shape is pinned here, the bytes around them exactly.
        res = http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, auth)
        assert res.status == 200
        used = re.search(rb'"used":\{"rpm":\d+,"tpm":\d+,"streams":\d+,'
                         rb'"budget_day":"\d+\.\d\d"\}\}\n$', res.body)
        assert used, res.body
        return res.body[:used.start()] + b'"used":{}}\n'

    def post(path, body, extra=b''):
        out = raw(r.port, request(path, body, extra), timeout=10)
        head, rest = split(out)
        return out, head, rest

    def hold(body, max_tokens, pin='1.75', pout='14.00'):
        return cny_nano(usd_nano(len(body) // 4, max_tokens, pin, pout))

    balance, charged, count = 0, 0, 0
    assert wallet() == wallet_body(0, 0, 0, 0)
    res = http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit', {'amount': '1.00'},
               {'Authorization': 'Bearer ' + ADMIN})
    assert res.body == b'{"wallet":"acme","currency":"CNY","credited_nano":1000000000,' \
                       b'"balance":"1.00"}\n', res.body
    balance = 10**9
    assert wallet() == wallet_body(balance, 0, 0, 0)
    expect = [b'{' + TS_RE + rb',"type":"credit","wallet":"acme","cny_nano":1000000000,'
              rb'"note":"top-up","prev":"0{64}"}']
    ids = [None]

    def charge_line(rid, model, route, cred, tin, tout, usd, cur, estimated=False, cut=None):
        return (b'{' + TS_RE + b',"type":"charge","id":"' + rid + b'","wallet":"acme",'
                b'"model":"' + model + b'","route":"' + route + b'","cred":"' + cred +
                b'","status":200,"in":%d,"out":%d,"usd_nano":%d,"cny_nano":%d' % (
                    tin, tout, usd, cur) + (b',"estimated":true' if estimated else b'') +
                (b',"cut":"' + cut + b'"' if cut else b'') +
                b',"prev":"[0-9a-f]{64}"}')

    def rid_of(head):
        mm = re.search(rb'\r\nx-request-id: (req_[0-9a-f]{22})\r\n', head)
        assert mm, head
        return mm.group(1)

    # 1. A request in flight holds its maximum cost: prompt bytes / 4 in,
    # max_tokens out. The client leaves before any answer: no charge.
    body = b'{"model":"gpt-5.2","messages":[{"role":"user","content":"hold me"}],"max_tokens":300}'
    s = connect(r.port)
    s.sendall(request(b'/v1/chat/completions', body, b'x-mock: stall:60000\r\n'))
    wait_for(lambda: m.stats()['requests'] == 1, 5, 'the stalled request upstream')
    assert wallet() == wallet_body(balance, hold(body, 300), 0, 0)
    s.close()
    wait_for(lambda: wallet() == wallet_body(balance, 0, 0, 0), 5, 'the hold released')

    # 2. Non-stream with usage: charged from it.
    body = b'{"model":"gpt-5.2","messages":[],"max_tokens":100}'
    out, head, _ = post(b'/v1/chat/completions', body)
    assert head.startswith(b'HTTP/1.1 200 OK\r\n'), out
    usd = usd_nano(12, 34, '1.75', '14.00')
    cur = cny_nano(usd)
    balance -= cur
    charged += cur
    count += 1
    expect.append(charge_line(rid_of(head), b'gpt-5.2', b'mock/gpt-5.2-2026-01-01', b'mock#1',
                              12, 34, usd, cur))
    assert wallet() == wallet_body(balance, 0, charged, count)

    # 3. A stream: charged from the usage chunk the relay asked for.
    body = b'{"model":"gpt-5.2","stream":true,"max_tokens":50}'
    out, head, _ = post(b'/v1/chat/completions', body)
    assert head.startswith(b'HTTP/1.1 200 OK\r\n') and b'"usage"' not in out, out
    balance -= cur
    charged += cur
    count += 1
    expect.append(charge_line(rid_of(head), b'gpt-5.2', b'mock/gpt-5.2-2026-01-01', b'mock#1',
                              12, 34, usd, cur))
    assert wallet() == wallet_body(balance, 0, charged, count)

    # 4. A stream the upstream cuts after two events: charged on an
    # estimate, input from the body, output from the content delivered
    # ("tok0 tok1 ": 10 bytes, 2 tokens), marked cut by the upstream.
    body = b'{"model":"gpt-5.2","stream":true,"max_tokens":1000,"messages":[]}'
    out, head, rest = post(b'/v1/chat/completions', body, b'x-mock: sse_cut:2\r\n')
    err = (b'event: error\ndata: {"error":{"message":"upstream stream broke: upstream closed '
           b'the connection before the end of the body","type":"server_error",'
           b'"code":"upstream_unavailable"}}\n\n')
    relayed = [chat_event(0), chat_event(1)]
    assert rest == b''.join(b'%x\r\n%s\r\n' % (len(e), e) for e in relayed + [err]), rest
    # (Issue 13: it was the body bytes / 4, SSE framing included: 93.)
    tin, tout = len(body) // 4, len(b'tok0 tok1 ') // 4
    assert (tin, tout) == (16, 2)
    usd_e = usd_nano(tin, tout, '1.75', '14.00')
    cur_e = cny_nano(usd_e)
    balance -= cur_e
    charged += cur_e
    count += 1
    expect.append(charge_line(rid_of(head), b'gpt-5.2', b'mock/gpt-5.2-2026-01-01', b'mock#1',
                              tin, tout, usd_e, cur_e, estimated=True, cut=b'upstream'))
    assert wallet() == wallet_body(balance, 0, charged, count)

    # 4b. An Anthropic stream cut after two text deltas: input from
    # message_start (25), output from the content delivered (2 tokens),
    # estimated and cut (issue 13: it was charged message_start's 1
    # output token as if it were the answer's usage).
    body = b'{"model":"claude-3-5-sonnet","stream":true,"max_tokens":100}'
    out, head, rest = post(b'/v1/messages', body, b'x-mock: sse_cut:4\r\n')
    ev = anthropic_events(2)[:4]
    # On an Anthropic path the error event has Anthropic's shape (SPEC §5).
    err_a = (b'event: error\ndata: {"type":"error","error":{"type":"api_error","message":'
             b'"upstream stream broke: upstream closed the connection before the end of the '
             b'body"}}\n\n')
    assert rest == b''.join(b'%x\r\n%s\r\n' % (len(e), e) for e in ev + [err_a]), rest
    usd_a = usd_nano(25, 2, '3.00', '15.00')
    cur_a = cny_nano(usd_a)
    balance -= cur_a
    charged += cur_a
    count += 1
    expect.append(charge_line(rid_of(head), b'claude-3-5-sonnet',
                              b'mock/claude-3-5-sonnet-20241022', b'mock#1', 25, 2, usd_a, cur_a,
                              estimated=True, cut=b'upstream'))
    assert wallet() == wallet_body(balance, 0, charged, count)

    # 5. A hold that does not fit: 402, nothing reaches the upstream.
    before = m.stats()['requests']
    body = b'{"model":"gpt-5.2","messages":[],"max_tokens":100000}'
    out, head, rest = post(b'/v1/chat/completions', body)
    need = hold(body, 100000)
    msg = ("wallet 'acme' has %s CNY (0.00 held by running requests) and cannot cover this "
           "request's hold of %s CNY; top it up or lower max_tokens" % (
               fmt(balance, 2), fmt(need, 2))).encode()
    want = (b'{"error":{"message":"%s","type":"insufficient_quota",'
            b'"code":"insufficient_balance"}}\n' % msg)
    assert re.fullmatch(b'HTTP/1.1 402 Payment Required\r\nContent-Type: application/json\r\n'
                        b'Content-Length: %d\r\nx-request-id: req_<random>[0-9a-f]{6}\r\n'
                        b'Connection: close' % len(want), masked(head)), head
    assert rest == want, rest
    assert m.stats()['requests'] == before
    assert wallet() == wallet_body(balance, 0, charged, count)

    # 6. An upstream 400 is passed through and not charged.
    out, head, rest = post(b'/v1/chat/completions', b'{"model":"gpt-5.2","max_tokens":10}',
                           b'x-mock: status:400\r\n')
    assert head.startswith(b'HTTP/1.1 400 Bad Request\r\n'), out
    assert wallet() == wallet_body(balance, 0, charged, count)

    # 7. Failover: the first route answers 500, the second is charged.
    out, head, rest = post(b'/v1/chat/completions', b'{"model":"gpt-fo","max_tokens":10}')
    assert b'\r\nx-relay-route: mock/gpt-b\r\nx-relay-attempts: 2\r\n' in head, head
    usd_f = usd_nano(12, 34, '3.00', '15.00')
    cur_f = cny_nano(usd_f)
    balance -= cur_f
    charged += cur_f
    count += 1
    expect.append(charge_line(rid_of(head), b'gpt-fo', b'mock/gpt-b', b'mock#1', 12, 34,
                              usd_f, cur_f))
    assert wallet() == wallet_body(balance, 0, charged, count)
    assert [h.split(b'\r\n')[0] for h, _ in m.raw_requests()[-2:]] == \
        [b'POST /v1/chat/completions HTTP/1.1'] * 2
    assert [b for _, b in m.raw_requests()[-2:]] == \
        [b'{"model":"gpt-a","max_tokens":10}', b'{"model":"gpt-b","max_tokens":10}']

    # The ledger, line for line, chained by the SHA-256 of each line.
    with open(r.workdir + '/relay-ledger.jsonl', 'rb') as f:
        data = f.read()
    assert data.endswith(b'\n')
    got = data[:-1].split(b'\n')
    assert len(got) == len(expect), got
    prev = b'0' * 64
    for line, pattern in zip(got, expect):
        assert re.fullmatch(pattern, line), (line, pattern)
        assert json.loads(line)['prev'].encode() == prev, line
        prev = hashlib.sha256(line).hexdigest().encode()
    assert balance == 10**9 - 2 * cur - cur_e - cur_a - cur_f
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0 and 'acme CNY %s' % fmt(balance, 2) in p.stdout, p.stdout + p.stderr
