"""The whole surface through one base URL (issue 15, SPEC §9): every row of
README's "Objects, affinity and passthrough" table, end to end against a
stateful provider (tests/e2e/objects_mock.py) whose objects belong to the
credential that made them, so a call that reaches the wrong credential is
a visible 404. Asserts what reached the provider and what the ledger says;
the official SDKs drive the same surface in test_openai_sdk_*."""
import base64
import hashlib
import json
import os
import re
import select
import struct
import subprocess
import sys
import time
import wave
import zlib
from decimal import ROUND_HALF_EVEN, Decimal

from harness import (KEY, KEY2, RELAY, connect, http, ledger_lines, node, read_response,
                     sha256_hex, stop_proc, wait_for)

# multipart/form-data request bodies are relayed (SPEC §9):
# test_multipart_bodies and the SDK test check that each upload is relayed,
# the "model" form field rewritten to the upstream id, every file's bytes
# untouched at the provider, uploads charged (images, audio) or recorded for
# affinity (files). (False: the checks of the 415 answered before.)
MULTIPART_RELAYED = True

HERE = os.path.dirname(os.path.abspath(__file__))
CREDS = ('fake-oai-one-0000000000000001', 'fake-oai-two-0000000000000002')
LABEL = {'oai#1': CREDS[0], 'oai#2': CREDS[1]}
UPSTREAM = 'oai/gpt-5.2-2026-01-01'
RATE = Decimal('7.2000')
PRICES = {      # alias: (input, cached input, output) USD per 1M tokens
    'gpt-5.2': ('1.75', '0.175', '14.00'),
    'text-embedding-3-small': ('0.020', '0.020', '0'),
    'gpt-3.5-turbo-instruct': ('1.50', '1.50', '2.00'),
    'gpt-image-1': ('5.00', '5.00', '40.00'),
    'gpt-4o-transcribe': ('2.50', '2.50', '10.00'),
}
TASK_FIELDS = {'ts', 'type', 'id', 'wallet', 'model', 'route', 'cred', 'kind', 'prev'}


class ObjMock:
    """tests/e2e/objects_mock.py on a free port; stopped with the Env."""

    def __init__(self, env):
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, 'objects_mock.py')],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r'listening on 127\.0\.0\.1:(\d+)', line)
        if not m:
            raise AssertionError('objects_mock did not start: %r' % line)
        self.port = int(m.group(1))
        env.extra_mocks.append(self)

    def requests(self):
        return http('127.0.0.1', self.port, 'GET', '/_mock/requests').json()['requests']

    def objects(self):
        return http('127.0.0.1', self.port, 'GET', '/_mock/objects').json()

    def reset(self):
        http('127.0.0.1', self.port, 'POST', '/_mock/reset', body=b'')

    def stop(self):
        stop_proc(self.proc)


def surface_conf(port, passthrough='oai', extra=''):
    lines = ['listen 127.0.0.1:0', 'ledger relay-ledger.jsonl sync=none',
             'currency CNY rate=7.2000',
             'provider oai base=http://127.0.0.1:%d/v1 auth=bearer' % port,
             'credential oai env:OAI_1', 'credential oai env:OAI_2',
             'model gpt-5.2 text 1.75 14.00 cached=0.175 ' + UPSTREAM,
             'model text-embedding-3-small embeddings 0.020 0 oai/text-embedding-3-small',
             'model gpt-3.5-turbo-instruct text 1.50 2.00 oai/gpt-3.5-turbo-instruct',
             'model gpt-image-1 image 5.00 40.00 oai/gpt-image-1-2025-04-15',
             'model gpt-4o-transcribe text 2.50 10.00 oai/gpt-4o-transcribe-2025-03-20',
             'model claude-3-5-sonnet text 3.00 15.00 oai/claude-3-5-sonnet-20241022',
             'wallet acme key=sha256:%s overdraft=1000' % sha256_hex(KEY),
             'wallet globex key=sha256:%s overdraft=1000' % sha256_hex(KEY2)]
    if passthrough:
        lines.append('passthrough ' + passthrough)
    return '\n'.join(lines) + '\n' + extra


def relay_env(poll_ms='600000'):
    # The relay's own poll is off (10 min) unless a test wants it.
    return {'OAI_1': CREDS[0], 'OAI_2': CREDS[1], 'RELAY_TASK_POLL_MS': poll_ms}


def start(env, passthrough='oai', poll_ms='600000', extra=''):
    m = ObjMock(env)
    r = env.start_relay(surface_conf(m.port, passthrough, extra), env=relay_env(poll_ms))
    return m, r


def restart(env, r, poll_ms='600000'):
    r.stop()
    return env.start_relay(open(r.conf).read(), env=relay_env(poll_ms))


def call(r, method, path, body=None, key=KEY, headers=None):
    h = {'Authorization': 'Bearer ' + key}
    h.update(headers or {})
    return http('127.0.0.1', r.port, method, path, body, h)


def tasks(r):
    return [l for l in ledger_lines(r) if l['type'] == 'task']


def charges(r):
    return [l for l in ledger_lines(r) if l['type'] == 'charge']


def cost(model, tin, cached, tout):
    """(usd_nano, cny_nano) by an independent decimal reference."""
    pin, pc, pout = PRICES[model]
    usd = (tin * int(Decimal(pin) * 1000) + cached * int(Decimal(pc) * 1000) +
           tout * int(Decimal(pout) * 1000))
    return usd, int((Decimal(usd) * RATE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def verify_ledger(r):
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stdout + p.stderr
    return p.stdout


def seen(m, path, method=None):
    """The credentials the provider saw for path (exact, query excluded)."""
    return [q['auth'] for q in m.requests()
            if q['path'] == path and (method is None or q['method'] == method)]


def wallet(r, key=KEY):
    return call(r, 'GET', '/v1/wallet', key=key).json()


def err_code(res):
    return res.json()['error']['code']


# -- by model -------------------------------------------------------------

def test_calls_with_a_model_are_routed_rewritten_and_charged_once(env):
    m, r = start(env)
    cases = [
        ('/v1/chat/completions', {'model': 'gpt-5.2', 'messages': [{'role': 'user', 'content': 'hi'}]},
         'gpt-5.2', 'gpt-5.2-2026-01-01', (19, 0, 10)),
        ('/v1/embeddings', {'model': 'text-embedding-3-small', 'input': 'hi'},
         'text-embedding-3-small', 'text-embedding-3-small', (8, 0, 0)),
        ('/v1/completions', {'model': 'gpt-3.5-turbo-instruct', 'prompt': 'hi'},
         'gpt-3.5-turbo-instruct', 'gpt-3.5-turbo-instruct', (5, 0, 6)),
        ('/v1/images/generations', {'model': 'gpt-image-1', 'prompt': 'a cat'},
         'gpt-image-1', 'gpt-image-1-2025-04-15', (50, 0, 272)),
        ('/v1/responses', {'model': 'gpt-5.2', 'input': 'hi', 'store': False},
         'gpt-5.2', 'gpt-5.2-2026-01-01', (900, 300, 450)),
    ]
    for path, body, alias, upstream, (tin, cached, tout) in cases:
        res = call(r, 'POST', path, body)
        assert res.status == 200, (path, res.body)
        q = m.requests()[-1]
        assert q['path'] == path and q['json']['model'] == upstream, q
        assert q['auth'] in CREDS and KEY not in json.dumps(q['headers']), q
        c = charges(r)[-1]
        assert c['id'] == res.header('x-request-id') and c['model'] == alias, c
        assert (c['in'], c.get('cached', 0), c['out']) == (tin, cached, tout), c
        assert (c['usd_nano'], c['cny_nano']) == cost(alias, tin, cached, tout), c
    assert len(charges(r)) == len(cases), ledger_lines(r)
    # none of them made an object to remember (no store, store:false)
    assert tasks(r) == [], ledger_lines(r)
    res = call(r, 'POST', '/v1/chat/completions', {'model': 'gpt-5.3', 'messages': []})
    assert res.status == 404 and err_code(res) == 'model_not_found', res.body
    assert len(m.requests()) == len(cases)
    verify_ledger(r)


# -- objects follow their credential ---------------------------------------

def test_twenty_stored_objects_are_read_on_their_own_credential_also_after_a_restart(env):
    m, r = start(env)
    made = []           # (kind, id)
    for i in range(10):
        res = call(r, 'POST', '/v1/responses', {'model': 'gpt-5.2', 'input': 'question %d' % i})
        assert res.status == 200, res.body
        made.append(('response', res.json()['id']))
        res = call(r, 'POST', '/v1/chat/completions', {
            'model': 'gpt-5.2', 'store': True, 'metadata': {'n': str(i)},
            'messages': [{'role': 'user', 'content': 'chat %d' % i}]})
        assert res.status == 200, res.body
        made.append(('chat', res.json()['id']))
    lines = tasks(r)
    assert [l['id'] for l in lines] == [oid for _, oid in made], lines
    for l in lines:
        assert set(l) == TASK_FIELDS, l
        assert (l['kind'], l['wallet'], l['model'], l['route']) == \
            ('object', 'acme', 'gpt-5.2', UPSTREAM), l
    owner = {l['id']: LABEL[l['cred']] for l in lines}
    assert set(owner.values()) == set(CREDS), owner   # both credentials hold objects
    # the provider agrees on who made what
    objs = m.objects()
    assert all(objs[oid]['owner'] == owner[oid] for _, oid in made), objs
    assert len(charges(r)) == 20          # each create charged once

    def read_all(r):
        m.reset()
        for kind, oid in made:
            if kind == 'response':
                paths = [('GET', '/v1/responses/' + oid, None),
                         ('GET', '/v1/responses/%s/input_items' % oid, None)]
            else:
                paths = [('GET', '/v1/chat/completions/' + oid, None),
                         ('GET', '/v1/chat/completions/%s/messages' % oid, None),
                         ('POST', '/v1/chat/completions/' + oid, {'metadata': {'seen': 'yes'}})]
            for method, path, body in paths:
                res = call(r, method, path, body)
                assert res.status == 200, (path, res.status, res.body)
                if path.endswith(oid):
                    assert res.json()['id'] == oid, res.body
        reqs = m.requests()
        assert len(reqs) == 50, len(reqs)
        for q in reqs:
            oid = q['path'].split('/')[3 if '/responses/' in q['path'] else 4]
            assert q['auth'] == owner[oid], q        # the creator's credential, every time
    read_all(r)
    r = restart(env, r)                   # affinity comes from the ledger
    read_all(r)
    for kind, oid in made:
        path = ('/v1/responses/' if kind == 'response' else '/v1/chat/completions/') + oid
        res = call(r, 'DELETE', path)
        assert res.status == 200 and res.json()['deleted'] is True, res.body
        assert seen(m, path, 'DELETE') == [owner[oid]]
    assert len(charges(r)) == 20          # reads, updates and deletes are never charged
    verify_ledger(r)


def test_previous_response_id_continues_on_the_credential_that_holds_it(env):
    m, r = start(env)
    first = call(r, 'POST', '/v1/responses', {'model': 'gpt-5.2', 'input': 'remember 7'}).json()
    cred = LABEL[tasks(r)[-1]['cred']]
    for i in range(4):     # without pinning, the cursor would put every other one elsewhere
        res = call(r, 'POST', '/v1/responses', {'model': 'gpt-5.2', 'input': 'and then %d' % i,
                                                'previous_response_id': first['id']})
        assert res.status == 200, res.body
        assert res.json()['previous_response_id'] == first['id']
    assert seen(m, '/v1/responses', 'POST') == [cred] * 5
    assert [l['cred'] for l in tasks(r)] == [tasks(r)[0]['cred']] * 5
    assert len(charges(r)) == 5           # each continuation is charged like any call
    # Another wallet cannot continue (and so read) acme's conversation: as
    # unknown to it as a made-up id, and the provider never hears of it.
    before = len(m.requests())
    for _ in range(2):
        res = call(r, 'POST', '/v1/responses', {'model': 'gpt-5.2', 'input': 'what was it?',
                                                'previous_response_id': first['id']}, key=KEY2)
        assert res.status == 404 and err_code(res) == 'not_found', res.body
    assert len(m.requests()) == before
    assert len(charges(r)) == 5 and wallet(r, KEY2)['held_nano'] == 0
    # Counting the next input needs no model: the provider counts for the
    # earlier response's, so it goes where that response lives; free.
    body = {'input': 'and how many tokens now?', 'previous_response_id': first['id']}
    for _ in range(3):
        res = call(r, 'POST', '/v1/responses/input_tokens', body)
        assert res.status == 200 and res.json()['object'] == 'response.input_tokens', res.body
        assert res.json()['input_tokens'] > 0
    got = [q for q in m.requests() if q['path'] == '/v1/responses/input_tokens']
    assert [(q['auth'], q['json']) for q in got] == [(cred, body)] * 3, got
    res = call(r, 'POST', '/v1/responses/input_tokens', body, key=KEY2)
    assert res.status == 404 and err_code(res) == 'not_found', res.body
    # on no recorded response and without a model, nothing says where
    res = call(r, 'POST', '/v1/responses/input_tokens', dict(body, previous_response_id='resp_x'))
    assert res.status == 400 and err_code(res) == 'missing_model', res.body
    assert len(m.requests()) == before + 3 and len(charges(r)) == 5


def test_another_wallets_object_is_404_and_never_reaches_the_provider(env):
    m, r = start(env)
    resp = call(r, 'POST', '/v1/responses', {'model': 'gpt-5.2', 'input': 'mine'}).json()['id']
    bg = call(r, 'POST', '/v1/responses', {'model': 'gpt-5.2', 'input': 'later',
                                           'background': True}).json()['id']
    chat = call(r, 'POST', '/v1/chat/completions', {
        'model': 'gpt-5.2', 'store': True, 'messages': [{'role': 'user', 'content': 'x'}]}).json()['id']
    vs = call(r, 'POST', '/v1/vector_stores', {'name': 'acme docs'}).json()['id']
    m.reset()
    probes = [('GET', '/v1/responses/' + resp, None), ('DELETE', '/v1/responses/' + resp, None),
              ('GET', '/v1/responses/%s/input_items' % resp, None),
              ('POST', '/v1/responses/%s/cancel' % bg, b''), ('GET', '/v1/responses/' + bg, None),
              ('DELETE', '/v1/responses/' + bg, None),
              ('GET', '/v1/chat/completions/' + chat, None),
              ('POST', '/v1/chat/completions/' + chat, {'metadata': {'owner': 'globex'}}),
              ('GET', '/v1/chat/completions/%s/messages' % chat, None),
              ('DELETE', '/v1/chat/completions/' + chat, None),
              ('GET', '/v1/vector_stores/' + vs, None), ('DELETE', '/v1/vector_stores/' + vs, None)]
    for method, path, body in probes:
        res = call(r, method, path, body, key=KEY2)
        assert res.status == 404 and err_code(res) == 'not_found', (method, path, res.body)
    assert m.requests() == [], m.requests()
    # acme's objects are untouched, and the background response still open
    for path in ('/v1/responses/' + resp, '/v1/chat/completions/' + chat, '/v1/vector_stores/' + vs):
        assert call(r, 'GET', path).status == 200, path
    assert m.objects()[bg]['status'] == 'queued'
    assert charges(r) and all(c.get('task') is None for c in charges(r))


# -- passthrough ------------------------------------------------------------

def test_passthrough_relays_calls_without_a_model_and_never_charges(env):
    m, r = start(env)
    calls = [('GET', '/v1/files', None, ''),
             ('GET', '/v1/chat/completions?limit=3&order=desc', None, 'limit=3&order=desc'),
             ('GET', '/v1/vector_stores', None, ''),
             ('DELETE', '/v1/models/ft:gpt-4.1-mini:acme::mock1', None, '')]
    for method, target, body, query in calls:
        res = call(r, method, target, body)
        assert res.status == 200, (target, res.status, res.body)
        q = m.requests()[-1]
        assert (q['method'], q['target']) == (method, target) and q['query'] == query, q
        assert q['auth'] in CREDS and KEY not in json.dumps(q['headers']), q
    assert res.json() == {'id': 'ft:gpt-4.1-mini:acme::mock1', 'object': 'model', 'deleted': True}
    # an object made outside the relay: the provider's own answer comes back
    res = call(r, 'GET', '/v1/responses/resp_made_elsewhere')
    assert res.status == 404 and 'resp_made_elsewhere' in res.json()['error']['message'], res.body
    assert m.requests()[-1]['path'] == '/v1/responses/resp_made_elsewhere'
    # what a passthrough POST creates is recorded without a model ...
    made = []
    for i in range(2):
        res = call(r, 'POST', '/v1/vector_stores', {'name': 'docs %d' % i})
        assert res.status == 200 and res.json()['object'] == 'vector_store', res.body
        made.append(res.json()['id'])
    lines = tasks(r)
    assert [l['id'] for l in lines] == made, lines
    for l in lines:
        assert set(l) == TASK_FIELDS - {'model'}, l
        assert (l['kind'], l['wallet'], l['route']) == ('object', 'acme', 'oai'), l
    owner = {l['id']: LABEL[l['cred']] for l in lines}
    assert set(owner.values()) == set(CREDS), owner
    # ... and later calls on it go to the credential that made it
    for vid in made:
        for _ in range(3):
            res = call(r, 'GET', '/v1/vector_stores/' + vid)
            assert res.status == 200 and res.json()['id'] == vid, res.body
        assert seen(m, '/v1/vector_stores/' + vid) == [owner[vid]] * 3
    assert charges(r) == [], ledger_lines(r)
    assert wallet(r)['balance_nano'] == 0 and wallet(r)['held_nano'] == 0
    verify_ledger(r)


def test_without_passthrough_calls_without_a_model_are_404_saying_why(env):
    m, r = start(env, passthrough=None)
    for method, path, body in [('GET', '/v1/files', None), ('GET', '/v1/chat/completions', None),
                               ('POST', '/v1/vector_stores', {'name': 'x'}),
                               ('DELETE', '/v1/models/ft:gpt-4.1-mini:acme::mock1', None),
                               ('GET', '/v1/responses/resp_made_elsewhere', None),
                               ('POST', '/v1/responses/resp_made_elsewhere/cancel', b'')]:
        res = call(r, method, path, body)
        assert res.status == 404 and err_code(res) == 'not_found', (path, res.body)
        assert 'passthrough' in res.json()['error']['message'], res.body
    assert m.requests() == []
    assert ledger_lines(r) == []


def test_calls_that_cost_money_need_a_model_and_unmeterable_work_is_refused(env):
    m, r = start(env)
    billable = ['/v1/chat/completions', '/v1/responses', '/v1/embeddings', '/v1/completions',
                '/v1/images/generations', '/v1/responses/compact']
    for path in billable:
        for body in (b'', {'messages': [{'role': 'user', 'content': 'free?'}], 'input': 'x'}):
            res = call(r, 'POST', path, body)
            assert res.status == 400 and err_code(res) == 'missing_model', (path, body, res.body)
    # a POST with no body at all (no Content-Length) is the same bodyless POST
    res = call(r, 'POST', '/v1/chat/completions')
    assert res.status == 400 and err_code(res) == 'missing_model', res.body
    for path, body in [('/v1/batches', {'input_file_id': 'file-1', 'endpoint': '/v1/chat/completions',
                                        'completion_window': '24h'}),
                       ('/v1/fine_tuning/jobs', {'model': 'gpt-5.2', 'training_file': 'file-1'}),
                       ('/v1/messages/batches', {'requests': []})]:
        res = call(r, 'POST', path, body)
        assert res.status == 403, (path, res.body)
        if path.startswith('/v1/messages'):     # Anthropic's error shape there
            assert res.json()['error']['type'] == 'permission_error', res.body
        else:
            assert err_code(res) == 'forbidden', res.body
    assert m.requests() == [] and ledger_lines(r) == []


def test_only_json_bodies_are_relayed(env):
    m, r = start(env)
    body = json.dumps({'model': 'gpt-5.2', 'messages': [{'role': 'user', 'content': 'hi'}]})
    for ctype in ('text/plain', 'application/xml', 'application/octet-stream'):
        res = call(r, 'POST', '/v1/chat/completions', body, headers={'Content-Type': ctype})
        assert res.status == 415 and err_code(res) == 'unsupported_media_type', (ctype, res.body)
    assert m.requests() == []
    # what curl -d sends, and JSON with a charset, are read as JSON
    for ctype in ('application/x-www-form-urlencoded', 'application/json; charset=utf-8'):
        res = call(r, 'POST', '/v1/chat/completions', body, headers={'Content-Type': ctype})
        assert res.status == 200, (ctype, res.body)
    assert len(m.requests()) == 2 and len(charges(r)) == 2


def test_an_early_refusal_reaches_a_client_still_sending_its_body(env):
    # The relay refuses some requests on their head alone (a wrong key, a
    # body type it does not take) and then closes. A client that sends the
    # head first and its body after (as Node's fetch does with an upload)
    # is still writing then; a socket closed with those bytes unread resets
    # the connection and the client sees "fetch failed", not the refusal.
    m, r = start(env)
    body = b'x' * (1 << 20)
    for key, ctype, status, code in ((KEY, 'text/plain', 415, 'unsupported_media_type'),
                                     ('rk-wrong', 'application/json', 401, 'invalid_api_key')):
        s = connect(r.port)
        s.sendall(('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n'
                   'Content-Type: %s\r\nContent-Length: %d\r\n\r\n' % (key, ctype, len(body))).encode())
        ready, _, _ = select.select([s], [], [], 10)      # the refusal is on its way ...
        assert ready, 'no answer to the head'
        s.sendall(body)                                   # ... while the body still goes out
        res = read_response(s, 'POST')
        s.close()
        assert res.status == status and err_code(res) == code, res.body
        assert res.header('connection') == 'close', res.headers
    assert m.requests() == [] and ledger_lines(r) == []
    # A slow uploader (a big file over a slow link) still sending two
    # seconds after the refusal: the relay keeps reading while bytes come.
    s = connect(r.port)
    s.sendall(('POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer rk-wrong\r\n'
               'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n' % (1 << 20)).encode())
    assert select.select([s], [], [], 10)[0], 'no answer to the head'
    for _ in range(10):          # the client's pace, not a wait for the relay
        s.sendall(b'y' * (1 << 17) if _ == 9 else b'y' * 8192)
        time.sleep(0.25)
    res = read_response(s, 'POST')
    s.close()
    assert res.status == 401 and err_code(res) == 'invalid_api_key', res.body


def test_405_allow_lists_what_each_path_accepts_and_head_has_no_body(env):
    m, r = start(env)
    cases = [('PUT', '/v1/chat/completions', 'GET, POST, DELETE'),
             ('PATCH', '/v1/responses/resp_x', 'GET, POST, DELETE'),
             ('PUT', '/v1/vector_stores', 'GET, POST, DELETE'),
             ('POST', '/v1/models', 'GET'), ('PUT', '/v1/models', 'GET'),
             ('POST', '/v1/models/gpt-5.2', 'GET, DELETE'), ('PUT', '/v1/models/gpt-5.2', 'GET, DELETE'),
             ('POST', '/v1/wallet', 'GET'), ('POST', '/v1/usage', 'GET'), ('POST', '/healthz', 'GET'),
             ('DELETE', '/metrics', 'GET'),
             ('GET', '/admin/wallets/acme/credit', 'POST')]
    for method, path, allow in cases:
        res = call(r, method, path, b'' if method in ('POST', 'PUT', 'PATCH') else None)
        assert res.status == 405 and err_code(res) == 'method_not_allowed', (method, path, res.body)
        assert res.header('allow') == allow, (method, path, res.headers)
    # HEAD: the head alone; nothing follows it but the next answer, if any
    for path, allow in (('/v1/models', 'GET'), ('/v1/chat/completions', 'GET, POST, DELETE')):
        s = connect(r.port)
        s.sendall(('HEAD %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n'
                   'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' %
                   (path, KEY)).encode())
        data = b''
        s.settimeout(10)
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
        s.close()
        head, _, rest = data.partition(b'\r\n\r\n')
        assert head.startswith(b'HTTP/1.1 405') and b'\r\nAllow: %s\r\n' % allow.encode() in head + \
            b'\r\n', data
        if b'\r\nConnection: close' in head:
            assert rest == b'', data
        else:
            assert rest.startswith(b'HTTP/1.1 200'), data
    assert m.requests() == []


def test_models_retrieve_and_the_anthropic_list_shape(env):
    m, r = start(env)
    listing = http('127.0.0.1', r.port, 'GET', '/v1/models').json()
    entries = {e['id']: e for e in listing['data']}
    res = http('127.0.0.1', r.port, 'GET', '/v1/models/gpt-5.2')
    assert res.status == 200 and res.json() == entries['gpt-5.2'], res.body
    assert res.json()['object'] == 'model' and res.json()['pricing']['cached_input_usd_per_1m'] == 0.175
    res = http('127.0.0.1', r.port, 'GET', '/v1/models/gpt-5.3')
    assert res.status == 404 and err_code(res) == 'model_not_found', res.body
    assert 'gpt-5.2' in res.json()['error']['message'], res.body      # did you mean
    # an Anthropic caller (every Anthropic SDK sends anthropic-version)
    ah = {'anthropic-version': '2023-06-01', 'x-api-key': KEY}
    res = http('127.0.0.1', r.port, 'GET', '/v1/models', None, ah)
    d = res.json()
    assert res.status == 200 and set(d) == {'data', 'has_more', 'first_id', 'last_id'}, d
    ids = [e['id'] for e in d['data']]
    assert ids == [e['id'] for e in listing['data']] and d['has_more'] is False, d
    assert (d['first_id'], d['last_id']) == (ids[0], ids[-1]), d
    for e in d['data']:
        assert set(e) == {'type', 'id', 'display_name', 'created_at'} and e['type'] == 'model', e
    res = http('127.0.0.1', r.port, 'GET', '/v1/models/claude-3-5-sonnet', None, ah)
    assert res.status == 200 and res.json() == d['data'][ids.index('claude-3-5-sonnet')], res.body
    assert m.requests() == []


# -- background responses ---------------------------------------------------

def create_bg(r, script, usage=None, key=KEY, extra=None):
    h = {'x-mock-bg': script}
    if usage:
        h['x-mock-usage'] = usage
    body = {'model': 'gpt-5.2', 'input': 'think hard', 'background': True}
    body.update(extra or {})
    res = call(r, 'POST', '/v1/responses', body, key=key, headers=h)
    assert res.status == 200 and res.json()['status'] == 'queued', res.body
    return res.json()['id']


def test_background_response_is_charged_once_when_the_client_sees_it_completed(env):
    m, r = start(env)
    rid = create_bg(r, '3:completed', usage='1500:600:700')
    (t,) = tasks(r)
    assert set(t) == TASK_FIELDS, t
    assert (t['id'], t['kind'], t['wallet'], t['model'], t['route']) == \
        (rid, 'response', 'acme', 'gpt-5.2', UPSTREAM), t
    assert charges(r) == [], ledger_lines(r)          # the create is not charged ...
    w = wallet(r)
    assert (w['balance_nano'], w['held_nano']) == (0, 0), w    # ... and holds nothing
    for _ in range(2):
        res = call(r, 'GET', '/v1/responses/' + rid)
        assert res.status == 200 and res.json()['status'] == 'in_progress', res.body
    assert charges(r) == []
    res = call(r, 'GET', '/v1/responses/' + rid)
    assert res.json()['status'] == 'completed' and res.json()['usage']['input_tokens'] == 1500
    usd, cny = cost('gpt-5.2', 900, 600, 700)
    for _ in range(2):      # reading it again never charges again
        assert call(r, 'GET', '/v1/responses/' + rid).json()['status'] == 'completed'
    (c,) = charges(r)
    assert c == {'ts': c['ts'], 'type': 'charge', 'id': res.header('x-request-id'), 'task': rid,
                 'wallet': 'acme', 'model': 'gpt-5.2', 'route': UPSTREAM, 'cred': t['cred'],
                 'status': 200, 'in': 900, 'cached': 600, 'out': 700, 'usd_nano': usd,
                 'cny_nano': cny, 'prev': c['prev']}, c
    w = wallet(r)
    assert (w['balance_nano'], w['held_nano']) == (-cny, 0), w
    u = call(r, 'GET', '/v1/usage').json()['requests'][0]
    assert (u['in'], u['cached'], u['out'], u['model']) == (900, 600, 700, 'gpt-5.2'), u
    assert seen(m, '/v1/responses/' + rid) == [LABEL[t['cred']]] * 5
    out = verify_ledger(r)
    assert re.search(r'^acme CNY -\d+\.\d\d$', out, re.M), out   # the balance is the charge


def test_background_response_streamed_to_completion_is_charged_once_from_its_events(env):
    # GET /v1/responses/<id>?stream=true follows a background response to
    # its end as events: the relay charges it from response.completed.
    m, r = start(env)
    rid = create_bg(r, '9:completed', usage='2000:500:300')
    res = call(r, 'GET', '/v1/responses/%s?stream=true' % rid)
    assert res.status == 200 and res.header('content-type').startswith('text/event-stream')
    events = [json.loads(l[6:]) for l in res.body.decode().splitlines() if l.startswith('data: ')]
    assert [e['type'] for e in events] == ['response.created', 'response.output_text.delta',
                                           'response.completed'], events
    assert events[-1]['response']['id'] == rid
    (t,) = tasks(r)
    (c,) = charges(r)
    assert (c['task'], c['id'], c['cred']) == (rid, res.header('x-request-id'), t['cred']), c
    assert (c['in'], c['cached'], c['out']) == (1500, 500, 300), c
    assert (c['usd_nano'], c['cny_nano']) == cost('gpt-5.2', 1500, 500, 300), c
    assert seen(m, '/v1/responses/' + rid) == [LABEL[t['cred']]]
    # reading it again, streamed or not, never charges again
    assert call(r, 'GET', '/v1/responses/%s?stream=true' % rid).status == 200
    assert call(r, 'GET', '/v1/responses/' + rid).json()['status'] == 'completed'
    assert len(charges(r)) == 1 and wallet(r)['held_nano'] == 0
    verify_ledger(r)


def test_a_streamed_background_response_is_read_to_its_end_when_its_client_leaves(env):
    # "background": true with "stream": true runs on at the provider when
    # the client hangs up, and the provider bills all of it: whatever
    # `disconnect` says (close here, the default), the relay reads the
    # rest and charges the provider's usage, not an estimate of the cut.
    m, r = start(env)
    body = json.dumps({'model': 'gpt-5.2', 'input': 'a long essay', 'background': True,
                       'stream': True}).encode()
    s = connect(r.port)
    s.sendall(b'POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nContent-Type: application/json\r\nx-mock-gap-ms: 700\r\n'
              b'x-mock-usage: 3000:1000:800\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    data = b''
    s.settimeout(10)
    while b'response.output_text.delta' not in data:
        c = s.recv(65536)
        assert c, data
        data += c
    s.close()                    # gone before response.completed
    wait_for(lambda: charges(r), 10, 'the charge of the drained response')
    (c,) = charges(r)
    assert (c['in'], c['cached'], c['out']) == (2000, 1000, 800), c
    assert 'estimated' not in c and 'cut' not in c, c
    assert (c['usd_nano'], c['cny_nano']) == cost('gpt-5.2', 2000, 1000, 800), c
    rid = re.search(rb'"id": "(resp_[A-Za-z0-9]+)"', data).group(1).decode()
    assert m.objects()[rid]['streamed_to_end'] is True
    assert wallet(r)['held_nano'] == 0
    # ... and recorded: the client coming back for it reaches its credential
    (t,) = tasks(r)
    assert (t['id'], t['kind']) == (rid, 'object'), t
    res = call(r, 'GET', '/v1/responses/' + rid)
    assert res.status == 200 and res.json()['status'] == 'completed', res.body
    assert seen(m, '/v1/responses/' + rid) == [LABEL[t['cred']]]
    assert len(charges(r)) == 1
    # a plain stream cut by its client is still closed at once (disconnect close)
    s = connect(r.port)
    body = json.dumps({'model': 'gpt-5.2', 'input': 'short', 'stream': True}).encode()
    s.sendall(b'POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nContent-Type: application/json\r\nx-mock-gap-ms: 700\r\n'
              b'Content-Length: %d\r\n\r\n' % len(body) + body)
    data = b''
    while b'response.output_text.delta' not in data:
        c = s.recv(65536)
        assert c, data
        data += c
    s.close()
    wait_for(lambda: len(charges(r)) == 2, 10, 'the cut stream charged')
    assert charges(r)[-1].get('cut') == 'client' and charges(r)[-1].get('estimated') is True
    verify_ledger(r)


def test_background_response_the_client_never_polls_is_charged_by_the_relay(env):
    m, r = start(env, poll_ms='150')
    a = create_bg(r, '2:completed', usage='1000:0:300')
    b = create_bg(r, '6:completed', usage='2000:1000:100')   # outlives a by several rounds

    def charged(rid):
        return [c for c in charges(r) if c.get('task') == rid]
    wait_for(lambda: charged(b), 30, 'the relay to poll both responses to completion')
    (ca,) = charged(a)     # a settled rounds ago and was never charged again
    (cb,) = charged(b)
    assert ca['id'] == cb['id'] == 'relay-poll', (ca, cb)
    assert (ca['in'], ca.get('cached', 0), ca['out']) == (1000, 0, 300), ca
    assert (ca['usd_nano'], ca['cny_nano']) == cost('gpt-5.2', 1000, 0, 300), ca
    assert (cb['in'], cb['cached'], cb['out']) == (1000, 1000, 100), cb
    assert (cb['usd_nano'], cb['cny_nano']) == cost('gpt-5.2', 1000, 1000, 100), cb
    objs = m.objects()
    assert (objs[a]['polls'], objs[b]['polls']) == (2, 6), objs   # no poll after it settled
    owner = {t['id']: LABEL[t['cred']] for t in tasks(r)}
    assert seen(m, '/v1/responses/' + a) == [owner[a]] * 2
    assert seen(m, '/v1/responses/' + b) == [owner[b]] * 6
    # an open one survives a restart: the next relay polls it from the ledger
    r = restart(env, r, poll_ms='600000')
    c = create_bg(r, '1:completed', usage='10:0:10')
    r = restart(env, r, poll_ms='150')
    wait_for(lambda: [x for x in charges(r) if x.get('task') == c], 30, 'the restarted relay to poll')
    assert len(charges(r)) == 3 and wallet(r)['held_nano'] == 0
    verify_ledger(r)


def test_cancelled_and_failed_background_responses_close_without_a_charge(env):
    m, r = start(env)
    a = create_bg(r, '5:completed')
    res = call(r, 'POST', '/v1/responses/%s/cancel' % a, b'')
    assert res.status == 200 and res.json()['status'] == 'cancelled', res.body
    b = create_bg(r, '1:failed')
    res_b = call(r, 'GET', '/v1/responses/' + b)
    assert res_b.json()['status'] == 'failed', res_b.body
    c = create_bg(r, '1:incomplete', usage='400:0:64', extra={'max_output_tokens': 64})
    res_c = call(r, 'GET', '/v1/responses/' + c)
    assert res_c.json()['status'] == 'incomplete', res_c.body
    for rid in (a, b, c):     # later reads add nothing
        assert call(r, 'GET', '/v1/responses/' + rid).status == 200
    assert [t['kind'] for t in tasks(r)] == ['response'] * 3
    got = {x['task']: x for x in charges(r)}
    assert len(charges(r)) == 3 and set(got) == {a, b, c}, charges(r)
    for rid, req in ((a, res), (b, res_b)):
        x = got[rid]
        assert x['id'] == req.header('x-request-id'), x
        assert (x['in'], x['out'], x['usd_nano'], x['cny_nano']) == (0, 0, 0, 0), x
    # cut by max_output_tokens: the provider bills it, so it is charged
    assert (got[c]['in'], got[c]['out']) == (400, 64), got[c]
    cny = cost('gpt-5.2', 400, 0, 64)[1]
    assert got[c]['cny_nano'] == cny
    w = wallet(r)
    assert (w['balance_nano'], w['held_nano']) == (-cny, 0), w
    verify_ledger(r)


def test_a_streamed_response_is_charged_from_its_events_and_recorded(env):
    m, r = start(env)
    s = connect(r.port)
    body = json.dumps({'model': 'gpt-5.2', 'input': 'stream it', 'stream': True}).encode()
    s.sendall(b'POST /v1/responses HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: %d'
              b'\r\n\r\n' % len(body) + body)
    data = b''
    s.settimeout(10)
    while True:
        c = s.recv(65536)
        if not c:
            break
        data += c
    s.close()
    assert data.startswith(b'HTTP/1.1 200') and b'response.completed' in data, data[:300]
    rid = re.search(rb'"id": "(resp_[A-Za-z0-9]+)"', data).group(1).decode()
    (t,) = tasks(r)
    assert (t['id'], t['kind'], t['model']) == (rid, 'object', 'gpt-5.2'), t
    (c,) = charges(r)
    assert (c['in'], c['cached'], c['out']) == (900, 300, 450), c
    assert (c['usd_nano'], c['cny_nano']) == cost('gpt-5.2', 900, 300, 450)
    res = call(r, 'GET', '/v1/responses/' + rid)
    assert res.status == 200 and res.json()['status'] == 'completed', res.body
    assert seen(m, '/v1/responses/' + rid) == [LABEL[t['cred']]]
    assert len(charges(r)) == 1


# -- multipart ----------------------------------------------------------------

def png_bytes(w=8, h=8):
    """A real PNG: w x h RGB, a gradient."""
    def chunk(kind, data):
        return struct.pack('>I', len(data)) + kind + data + \
            struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff)
    raw = b''.join(b'\x00' + b''.join(bytes((x * 32 % 256, y * 32 % 256, 128)) for x in range(w))
                   for y in range(h))
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def wav_bytes(path):
    """A real WAV: 0.25 s of a 440 Hz square wave, 16 kHz mono 16-bit."""
    with wave.open(path, 'wb') as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b''.join(struct.pack('<h', 8000 if (i // 18) % 2 else -8000)
                               for i in range(4000)))
    with open(path, 'rb') as f:
        return f.read()


def multipart(fields, boundary='----relay-e2e-7d3f0a9c'):
    out = b''
    for name, value in fields:
        out += b'--' + boundary.encode() + b'\r\n'
        if isinstance(value, tuple):
            fname, ctype, data = value
            out += ('Content-Disposition: form-data; name="%s"; filename="%s"\r\n'
                    'Content-Type: %s\r\n\r\n' % (name, fname, ctype)).encode() + data + b'\r\n'
        else:
            out += ('Content-Disposition: form-data; name="%s"\r\n\r\n' % name).encode() + \
                value.encode() + b'\r\n'
    out += b'--' + boundary.encode() + b'--\r\n'
    return out, 'multipart/form-data; boundary=' + boundary


def test_multipart_bodies(env):
    m, r = start(env)
    png = png_bytes()
    wav = wav_bytes(os.path.join(env.dir, 'hello.wav'))
    jsonl = b'{"messages":[{"role":"user","content":"hi"}]}\n' * 3
    uploads = [
        ('/v1/files', [('purpose', 'assistants'), ('file', ('notes.jsonl', 'application/jsonl', jsonl))],
         None, 'file', jsonl),
        ('/v1/images/edits', [('model', 'gpt-image-1'), ('prompt', 'add a hat'),
                              ('image', ('cat.png', 'image/png', png))],
         'gpt-image-1-2025-04-15', 'image', png),
        ('/v1/audio/transcriptions', [('model', 'gpt-4o-transcribe'),
                                      ('file', ('hello.wav', 'audio/wav', wav))],
         'gpt-4o-transcribe-2025-03-20', 'file', wav),
    ]
    answers = []
    for path, fields, upstream, file_field, data in uploads:
        body, ctype = multipart(fields)
        res = call(r, 'POST', path, body, headers={'Content-Type': ctype})
        answers.append(res)
        if not MULTIPART_RELAYED:
            assert res.status == 415 and err_code(res) == 'unsupported_media_type', (path, res.body)
            continue
        assert res.status == 200, (path, res.body)
        q = m.requests()[-1]
        form = {p['name']: p for p in q['form']}
        assert form[file_field]['sha256'] == hashlib.sha256(data).hexdigest(), q['form']
        assert form[file_field]['size'] == len(data), q['form']
        if upstream:
            assert form['model']['value'] == upstream, q['form']
        assert q['auth'] in CREDS, q
    if not MULTIPART_RELAYED:
        assert m.requests() == [] and ledger_lines(r) == []
        return
    # the file is recorded (passthrough) and read back, byte for byte, on its credential
    fid = answers[0].json()['id']
    (t,) = tasks(r)
    assert (t['id'], t['kind'], t['route']) == (fid, 'object', 'oai'), t
    res = call(r, 'GET', '/v1/files/%s/content' % fid)
    assert res.status == 200 and res.body == jsonl, res.body[:200]
    assert seen(m, '/v1/files/%s/content' % fid) == [LABEL[t['cred']]]
    got = charges(r)
    assert [(c['model'], c['in'], c['out']) for c in got] == \
        [('gpt-image-1', 50, 272), ('gpt-4o-transcribe', 60, 7)], got
    for c in got:
        assert (c['usd_nano'], c['cny_nano']) == cost(c['model'], c['in'], 0, c['out']), c
    verify_ledger(r)


# -- the official SDKs -----------------------------------------------------------

def sdk_conf(port):
    # Calls without a model pass through to "acct", the first credential's
    # account, so a file made outside the relay is found there.
    return surface_conf(port, passthrough='acct', extra=(
        'provider acct base=http://127.0.0.1:%d/v1 auth=bearer\n'
        'credential acct env:OAI_1\n' % port))


def test_openai_sdk_surface_direct_and_through_the_relay(env):
    # The openai Python SDK is not installed on this machine (only Debian
    # packages and npm are reachable here), so only the Node SDK runs.
    m = ObjMock(env)
    r = env.start_relay(sdk_conf(m.port), env=relay_env())
    png = png_bytes()
    wav = wav_bytes(os.path.join(env.dir, 'hello.wav'))
    with open(os.path.join(env.dir, 'cat.png'), 'wb') as f:
        f.write(png)
    out = node('surface.mjs', [], {
        'MOCK_URL': 'http://127.0.0.1:%d/v1' % m.port, 'MOCK_KEY': CREDS[0],
        'RELAY_URL': 'http://127.0.0.1:%d/v1' % r.port,
        'RELAY_ROOT': 'http://127.0.0.1:%d' % r.port, 'RELAY_KEY': KEY,
        'PNG': os.path.join(env.dir, 'cat.png'), 'WAV': os.path.join(env.dir, 'hello.wav')})
    assert 'thrown' not in out, out
    res = out['calls']
    multipart_calls = {'files.create', 'images.edit', 'audio.transcriptions.create'}
    differ = {   # answered by the relay itself (README: HTTP API)
        'models.retrieve', 'models.list',
        # a list shows the provider account's objects, which differ per run
        'chat.completions.list', 'files.list'}
    for name, d in res.items():
        direct, relayed = d['direct'], d['relay']
        assert 'error' not in direct, (name, direct)
        if name in multipart_calls and not MULTIPART_RELAYED:
            assert relayed.get('error') == 415, (name, relayed)
            continue
        if name in differ:
            continue
        assert direct == relayed, (name, direct, relayed)
    for name in ('models.retrieve', 'models.list', 'chat.completions.list', 'files.list'):
        assert 'error' not in res[name]['relay'], (name, res[name])
    # the relay answers models from its catalog, in OpenAI's shape
    mr = res['models.retrieve']['relay']
    assert mr['id'] == 'gpt-5.2' and mr['object'] == 'model' and \
        set(res['models.retrieve']['direct']['keys']) <= set(mr['keys']), res['models.retrieve']
    assert 'gpt-5.2' in res['models.list']['relay']['ids'], res['models.list']
    for name in ('chat.completions.list', 'files.list'):
        assert res[name]['relay']['object'] == res[name]['direct']['object'] == 'list', res[name]
    # the background response went queued -> in_progress -> completed through the relay
    assert res['responses.retrieve']['relay']['statuses'][-1] == 'completed', res
    assert out['consistent'] == {'direct': True, 'relay': True}, out['consistent']
    # Anthropic's SDK lists and retrieves the catalog in its own shape
    a = out['anthropic']
    assert 'claude-3-5-sonnet' in a['ids'] and a['retrieve'] == {
        'type': 'model', 'id': 'claude-3-5-sonnet', 'display_name': 'claude-3-5-sonnet',
        'created_at': '1970-01-01T00:00:00Z'}, a
    # ... and counts tokens: relayed by model, rewritten, never charged
    (q,) = [q for q in m.requests() if q['path'] == '/v1/messages/count_tokens']
    assert q['json']['model'] == 'claude-3-5-sonnet-20241022' and q['auth'] in CREDS, q
    assert a['count_tokens'] == {'input_tokens': 4 * len(json.dumps(q['json']['messages']))}, a
    assert all(c['model'] != 'claude-3-5-sonnet' for c in charges(r)), charges(r)
    # what reached the provider through the relay: objects on their credential
    owner = {t['id']: t['cred'] for t in tasks(r)}
    rel = out['relay_ids']
    kinds = {t['id']: t['kind'] for t in tasks(r)}
    assert kinds.get(rel['response']) == 'response' and kinds.get(rel['chat']) == 'object', tasks(r)
    assert kinds.get(rel['vector_store']) == 'object' and owner[rel['vector_store']] == 'acct#1'
    assert kinds.get(rel['streamed']) == 'object', tasks(r)
    for oid in (rel['response'], rel['chat'], rel['cancelled'], rel['streamed']):
        sec = LABEL[owner[oid]]
        for q in m.requests():
            if oid in q['path']:
                assert q['auth'] == sec, (oid, q['method'], q['path'], q['auth'])
    # counting and compacting on the streamed response: pinned to its credential
    cont = [q for q in m.requests() if (q['json'] or {}).get('previous_response_id') ==
            rel['streamed']]
    assert [q['path'] for q in cont] == ['/v1/responses/input_tokens', '/v1/responses/compact']
    for q in cont:
        assert q['json']['model'] == 'gpt-5.2-2026-01-01' and \
            q['auth'] == LABEL[owner[rel['streamed']]], q
    # one charge per billable call: the chat, the background response when
    # completed, embeddings, completions, image generation, the three
    # streams, the compaction; the cancelled response closes with a zero
    # line; reads and token counting are never charged ("in" is the
    # uncached input: 1200 of which 300 cached is in=900)
    by_usage = sorted((c['model'], c['in'], c['out']) for c in charges(r) if not c.get('task'))
    want_usage = [('gpt-5.2', 19, 10)] * 2 + [('gpt-3.5-turbo-instruct', 5, 6)] * 2 + \
        [('gpt-5.2', 900, 450), ('gpt-5.2', 800, 120), ('gpt-image-1', 50, 272),
         ('text-embedding-3-small', 8, 0)]
    if MULTIPART_RELAYED:
        want_usage += [('gpt-image-1', 50, 272), ('gpt-4o-transcribe', 60, 7)]
    assert by_usage == sorted(want_usage), charges(r)
    assert not any(c.get('estimated') for c in charges(r)), charges(r)
    got = sorted((c['model'], c['out'] > 0 or c['in'] > 0) for c in charges(r))
    want = [('gpt-3.5-turbo-instruct', True), ('gpt-3.5-turbo-instruct', True),
            ('gpt-5.2', False), ('gpt-5.2', True), ('gpt-5.2', True), ('gpt-5.2', True),
            ('gpt-5.2', True), ('gpt-5.2', True), ('gpt-image-1', True),
            ('text-embedding-3-small', True)]
    if MULTIPART_RELAYED:
        want = sorted(want + [('gpt-image-1', True), ('gpt-4o-transcribe', True)])
    assert got == want, charges(r)
    if MULTIPART_RELAYED:
        forms = [q for q in m.requests() if q['form'] and q['auth'] in CREDS and
                 q['path'] in ('/v1/images/edits', '/v1/audio/transcriptions')]
        relayed = [q for q in forms if {p['name']: p for p in q['form']}['model']['value'] in
                   ('gpt-image-1-2025-04-15', 'gpt-4o-transcribe-2025-03-20')]
        assert len(relayed) == 2, forms
        for q in relayed:
            parts = {p['name']: p for p in q['form']}
            data = png if q['path'] == '/v1/images/edits' else wav
            f = parts['image'] if 'image' in parts else parts['file']
            assert f['sha256'] == hashlib.sha256(data).hexdigest(), q['form']
    verify_ledger(r)


def test_openai_sdk_resource_calls_as_its_generated_tests_make_them(env):
    # SPEC §9's acceptance names the openai Node SDK's own generated
    # API-resource tests. The npm package (the only registry reachable
    # here) ships no tests and no OpenAPI spec for their Prism mock, so
    # tests/clients/resources.mjs makes the same calls the way those tests
    # do -- each method with its required parameters, and with every
    # optional one the pinned SDK's types list -- in the six resources
    # named, directly and through the relay, and this test compares both:
    # what the SDK returned, and what reached the provider, byte for byte.
    m = ObjMock(env)
    r = env.start_relay(surface_conf(m.port), env=relay_env())
    out = node('resources.mjs', [], {
        'MOCK_URL': 'http://127.0.0.1:%d/v1' % m.port, 'MOCK_KEY': CREDS[0],
        'RELAY_URL': 'http://127.0.0.1:%d/v1' % r.port, 'RELAY_KEY': KEY})
    local = {'models.retrieve', 'models.list'}       # the relay's catalog answers
    upstream = {'gpt-5.2': 'gpt-5.2-2026-01-01', 'gpt-image-1': 'gpt-image-1-2025-04-15',
                'text-embedding-3-small': 'text-embedding-3-small',
                'gpt-3.5-turbo-instruct': 'gpt-3.5-turbo-instruct'}
    calls = out['calls']
    assert len(calls) == 13, sorted(calls)
    for name, d in calls.items():
        direct, relayed = d['direct'], d['relay']
        # a call that threw: {"error": status or "thrown"} (a response's own
        # "error" member is null)
        assert not isinstance(direct.get('error'), (int, str)), (name, direct)
        assert not isinstance(relayed.get('error'), (int, str)), (name, relayed)
        if name in local:
            continue
        # the provider names the model it ran: through the relay, the upstream id
        if 'model' in direct:
            direct = dict(direct, model=upstream[direct['model']])
        assert direct == relayed, (name, d)
    assert calls['models.retrieve']['relay']['object'] == 'model'
    assert 'gpt-5.2' in calls['models.list']['relay']['ids']
    by = {}
    for q in m.requests():
        by.setdefault((q['headers'].get('x-case'), q['headers'].get('x-run')), []).append(q)
    assert not [k for k in by if k[0] in local and k[1] == 'relay'], sorted(by)
    for name in calls:
        if name in local:
            continue
        (dq,), (rq,) = by[(name, 'direct')], by[(name, 'relay')]
        assert rq['auth'] in CREDS and KEY not in json.dumps(rq['headers']), rq
        # (each run deletes its own fine-tuned model: mock1 directly, mock2 relayed)
        assert (rq['method'], rq['path'], rq['query']) == \
            (dq['method'], dq['path'].replace('::mock1', '::mock2'), dq['query']), (dq, rq)
        if dq['json'] is None:
            assert rq['body_bytes'] == 0, rq
            continue
        # the body the provider got is the client's, the model's value
        # replaced and not one other byte changed (the nested "model"
        # members, escapes, unicode and numbers included)
        alias = dq['json']['model']
        sent = base64.b64decode(dq['body_b64'])
        old = b'"model":' + json.dumps(alias).encode()
        assert sent.count(old) == 1, sent
        want = sent.replace(old, b'"model":' + json.dumps(upstream[alias]).encode())
        assert base64.b64decode(rq['body_b64']) == want, (name, rq['body_b64'])
        assert rq['json']['model'] == upstream[alias]
    # one charge per billable call through the relay, from the provider's usage
    got = sorted((c['model'], c['in'], c.get('cached', 0), c['out']) for c in charges(r))
    assert got == sorted([('gpt-5.2', 19, 0, 10)] * 2 + [('gpt-3.5-turbo-instruct', 5, 0, 6)] * 2 +
                         [('text-embedding-3-small', 8, 0, 0)] * 2 +
                         [('gpt-5.2', 900, 300, 450)] * 2 + [('gpt-image-1', 50, 0, 272)] * 2), got
    assert not any(c.get('estimated') for c in charges(r)) and tasks(r) == [], ledger_lines(r)
    verify_ledger(r)
