#!/usr/bin/env python3
"""objects_mock: a stateful provider for the object APIs (issue 15), in the
shapes of OpenAI's API reference, for the end-to-end tests.

    python3 tests/e2e/objects_mock.py [--port N] [--port-file PATH]

Serves HTTP/1.1 (keep-alive, Content-Length or chunked request bodies) on
127.0.0.1 and prints "objects_mock listening on 127.0.0.1:PORT" once ready
(also written to --port-file, under a temporary name then renamed).
Standard library only; one thread per connection.

Every object belongs to the credential that created it (the Authorization
bearer token, or x-api-key): a read, update or delete with another
credential is answered 404 as by a provider account that never made it,
which is what makes the relay's object affinity observable. A request
without a credential is 401.

Endpoints (under /v1, the paths of api.openai.com):

  POST   /responses                  store defaults to true; "stream": true
                                     answers SSE (response.created, a delta,
                                     response.completed); "background": true
                                     answers "queued", then each GET by the
                                     owner moves it on (script below)
  GET    /responses/{id}             counts a poll (owner only);
                                     ?stream=true: its events (a background
                                     one runs to its end; completed only)
  POST   /responses/compact          previous_response_id must be the
                                     caller's; usage 800:0:120
  POST   /responses/input_tokens     model optional; {"input_tokens": 4 x
                                     the length of the items' JSON}
  DELETE /responses/{id}
  POST   /responses/{id}/cancel      a queued or in-progress background
                                     response becomes "cancelled"
  GET    /responses/{id}/input_items
  POST   /chat/completions           "store": true keeps it; "stream"
  GET    /chat/completions           the owner's stored ones (limit, order)
  GET    /chat/completions/{id}      POST: update metadata; DELETE
  GET    /chat/completions/{id}/messages
  POST   /files                      multipart: purpose, file
  GET    /files                      GET/DELETE /files/{id}, GET
                                     /files/{id}/content (the bytes)
  POST   /vector_stores              JSON, no model; GET/DELETE
                                     /vector_stores/{id}; GET /vector_stores
  GET    /models, /models/{id}       DELETE /models/{id} for "ft:" models
  POST   /embeddings                 float or base64 (the SDK's default)
  POST   /completions                "stream" too
  POST   /images/generations         JSON; /images/edits multipart
  POST   /audio/transcriptions       multipart
  POST   /batches                    (a provider would take it)
  POST   /messages/count_tokens      Anthropic's: {"input_tokens": 4 x the
                                     length of the messages' JSON}

Background script, read at the create from the request header
"x-mock-bg: STEPS[:END]" or, failing that, metadata.mock_bg in the body
(same syntax): the STEPS-th counted GET and every later one answer END
(completed, incomplete, failed or cancelled; default completed:2); GETs
before answer "in_progress". "x-mock-usage: IN:CACHED:OUT" (or
metadata.mock_usage) sets the usage of a completed response (default
1200:300:450); input_tokens is IN, of which CACHED are
input_tokens_details.cached_tokens. "x-mock-gap-ms: N" (or
metadata.mock_gap_ms) on a streamed create pauses N ms before the
response.completed event (a response still generating).

Observation (no credential needed, never recorded):

  GET  /_mock/requests    {"requests":[{"seq","method","target","path",
                          "query","headers":{lower-name: value},"auth",
                          "body_b64","body_bytes","json","form"},...]}
                          in arrival order; "form" is the multipart parts:
                          [{"name","filename","content_type","size",
                          "sha256","value" (text parts)}]
  GET  /_mock/objects     {"<id>":{"kind","owner","status","polls",
                          "streamed_to_end"},...}
  POST /_mock/reset       forget the requests (objects stay)
"""
import argparse
import base64
import hashlib
import json
import os
import struct
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A 1x1 PNG, for images answers.
PNG_1x1 = base64.b64encode(bytes.fromhex(
    '89504e470d0a1a0a0000000d4948445200000001000000010806000000'
    '1f15c4890000000d49444154789c6360000002000001e5270de40000000049454e44ae426082')).decode()

CREATED = 1767225600     # fixed timestamps: answers compare equal


class State:
    def __init__(self):
        self.lock = threading.Lock()
        self.requests = []
        self.seq = 0
        self.objects = {}        # id -> dict(kind, owner, obj, ...)
        self.counter = 0
        # Fine-tuned models exist for every credential (the account's).
        self.ft_models = {'ft:gpt-4.1-mini:acme::mock1', 'ft:gpt-4.1-mini:acme::mock2'}

    def new_id(self, prefix):
        with self.lock:
            self.counter += 1
            return '%s%06d' % (prefix, self.counter)


STATE = State()


def now_s():
    return CREATED


def parse_multipart(body, ctype):
    """The parts of a multipart/form-data body, or None when it is not one."""
    b = None
    for p in ctype.split(';')[1:]:
        k, _, v = p.strip().partition('=')
        if k.lower() == 'boundary':
            b = v.strip('"')
    if not b:
        return None
    delim = b'--' + b.encode()
    parts = []
    chunks = body.split(delim)
    if len(chunks) < 3 or not chunks[-1].startswith(b'--'):
        return None
    for c in chunks[1:-1]:
        if not c.startswith(b'\r\n'):
            return None
        c = c[2:]
        head, sep, data = c.partition(b'\r\n\r\n')
        if not sep or not data.endswith(b'\r\n'):
            return None
        data = data[:-2]
        hdrs = {}
        for line in head.decode('utf-8', 'replace').split('\r\n'):
            k, _, v = line.partition(':')
            hdrs[k.strip().lower()] = v.strip()
        name = filename = None
        for p in hdrs.get('content-disposition', '').split(';')[1:]:
            k, _, v = p.strip().partition('=')
            v = v.strip('"')
            if k == 'name':
                name = v
            elif k == 'filename':
                filename = v
        part = {'name': name, 'filename': filename,
                'content_type': hdrs.get('content-type'), 'size': len(data),
                'sha256': hashlib.sha256(data).hexdigest(), 'data': data}
        if filename is None:
            part['value'] = data.decode('utf-8', 'replace')
        parts.append(part)
    return parts


def error(status, message, etype='invalid_request_error', code=None, param=None):
    return status, {'error': {'message': message, 'type': etype, 'param': param, 'code': code}}


def not_found(what, oid):
    return error(404, "No %s found with id '%s'." % (what, oid), code=None)


def usage_of(script_usage):
    tin, cached, tout = script_usage
    return {'input_tokens': tin, 'input_tokens_details': {'cached_tokens': cached},
            'output_tokens': tout, 'output_tokens_details': {'reasoning_tokens': 0},
            'total_tokens': tin + tout}


def parse_usage(text):
    try:
        a, b, c = (int(x) for x in text.split(':'))
        return (a, b, c)
    except (ValueError, AttributeError):
        return None


def parse_bg(text):
    if not text:
        return None
    steps, _, end = text.partition(':')
    try:
        steps = max(1, int(steps))
    except ValueError:
        return None
    end = end or 'completed'
    if end not in ('completed', 'incomplete', 'failed', 'cancelled'):
        return None
    return steps, end


def response_obj(o):
    """The Responses API object of stored response o, as it stands."""
    st = o['status']
    r = {
        'id': o['id'], 'object': 'response', 'created_at': CREATED, 'status': st,
        'background': o['background'], 'error': None, 'incomplete_details': None,
        'instructions': None, 'max_output_tokens': o['max_output_tokens'],
        'model': o['model'], 'output': [], 'parallel_tool_calls': True,
        'previous_response_id': o['previous'], 'reasoning': {'effort': None, 'summary': None},
        'service_tier': 'default', 'store': o['store'], 'temperature': 1.0,
        'text': {'format': {'type': 'text'}}, 'tool_choice': 'auto', 'tools': [],
        'top_p': 1.0, 'truncation': 'disabled', 'usage': None, 'user': None,
        'metadata': o['metadata'],
    }
    if st in ('completed', 'incomplete'):
        r['output'] = [{
            'id': 'msg_' + o['id'][5:], 'type': 'message', 'status': 'completed', 'role': 'assistant',
            'content': [{'type': 'output_text', 'text': 'hello from the objects mock',
                         'annotations': []}]}]
        r['usage'] = usage_of(o['usage'])
        if st == 'incomplete':
            r['incomplete_details'] = {'reason': 'max_output_tokens'}
    elif st == 'failed':
        r['error'] = {'code': 'server_error', 'message': 'mock: the response failed'}
    return r


def input_items(body, rid):
    inp = body.get('input', '')
    items = []
    if isinstance(inp, str):
        inp = [{'role': 'user', 'content': inp}]
    for i, m in enumerate(inp if isinstance(inp, list) else []):
        if not isinstance(m, dict):
            continue
        content = m.get('content', '')
        if isinstance(content, str):
            content = [{'type': 'input_text', 'text': content}]
        items.append({'id': 'msg_in%s_%d' % (rid[5:], i), 'type': 'message',
                      'role': m.get('role', 'user'), 'status': 'completed',
                      'content': content})
    return items


def page(data, has_more=False):
    return {'object': 'list', 'data': data,
            'first_id': data[0]['id'] if data else None,
            'last_id': data[-1]['id'] if data else None, 'has_more': has_more}


def chat_obj(o):
    c = dict(o['obj'])
    c['metadata'] = o['metadata']
    return c


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'objects_mock'
    sys_version = ''

    def log_message(self, *a):
        pass

    # -- plumbing ---------------------------------------------------------
    def read_body(self):
        te = (self.headers.get('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            out = b''
            while True:
                line = self.rfile.readline(65537)
                size = int(line.split(b';')[0].strip() or b'0', 16)
                if size == 0:
                    while self.rfile.readline(65537) not in (b'\r\n', b'\n', b''):
                        pass
                    return out
                out += self.rfile.read(size)
                self.rfile.readline(3)
        n = int(self.headers.get('Content-Length') or 0)
        return self.rfile.read(n) if n else b''

    def send_json(self, status, obj, extra=None):
        data = (json.dumps(obj) + '\n').encode()
        self.send_response(status)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def send_bytes(self, status, data, ctype):
        self.send_response(status)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def send_sse(self, events, gap_s=0):
        """events as one SSE answer; gap_s: a pause before the last one."""
        self.send_response(200)
        self.send_header('Content-Type', 'text/event-stream')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        for i, ev in enumerate(events):
            if gap_s and i == len(events) - 1:
                time.sleep(gap_s)    # the provider still generating
            if isinstance(ev, tuple):
                chunk = ('event: %s\ndata: %s\n\n' % (ev[0], json.dumps(ev[1]))).encode()
            else:
                chunk = ('data: %s\n\n' % ev).encode()
            self.wfile.write(b'%x\r\n%s\r\n' % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b'0\r\n\r\n')

    def handle_any(self):
        body = self.read_body()
        u = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(u.path)
        if path.startswith('/_mock/'):
            return self.observe(path)
        auth = self.headers.get('Authorization') or ''
        token = auth[7:].strip() if auth.lower().startswith('bearer ') else \
            (self.headers.get('x-api-key') or '')
        ctype = self.headers.get('Content-Type') or ''
        rec = {'method': self.command, 'target': self.path, 'path': path, 'query': u.query,
               'headers': {k.lower(): v for k, v in self.headers.items()},
               'auth': token, 'body_b64': base64.b64encode(body).decode(),
               'body_bytes': len(body), 'json': None, 'form': None}
        js = None
        form = None
        if body and ctype.lower().startswith('multipart/form-data'):
            form = parse_multipart(body, ctype)
            rec['form'] = [{k: v for k, v in p.items() if k != 'data'} for p in form] \
                if form is not None else 'malformed'
        elif body:
            try:
                js = json.loads(body)
                rec['json'] = js
            except ValueError:
                js = None
        with STATE.lock:
            STATE.seq += 1
            rec['seq'] = STATE.seq
            STATE.requests.append(rec)
        if not token:
            return self.send_json(*error(401, 'You didn\'t provide an API key.',
                                         code='missing_api_key'))
        if body and form is None and js is None:
            return self.send_json(*error(400, 'We could not parse the JSON body of your request.'))
        if form is not None:
            fields = {p['name']: p for p in form}
        else:
            fields = None
        res = self.route(self.command, path, u.query, token, js if isinstance(js, dict) else
                         ({} if js is None else None), fields)
        if res is None:
            return self.send_json(*error(404, 'Invalid URL (%s %s)' % (self.command, path)))
        if res == 'sent':
            return None
        if len(res) == 3 and isinstance(res[1], bytes):
            return self.send_bytes(*res)
        return self.send_json(*res)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = handle_any

    def observe(self, path):
        if path == '/_mock/requests':
            with STATE.lock:
                return self.send_json(200, {'requests': list(STATE.requests)})
        if path == '/_mock/objects':
            with STATE.lock:
                out = {k: {'kind': o['kind'], 'owner': o['owner'],
                           'status': o.get('status'), 'polls': o.get('polls', 0),
                           'streamed_to_end': o.get('streamed_to_end', False)}
                       for k, o in STATE.objects.items()}
            return self.send_json(200, out)
        if path == '/_mock/reset' and self.command == 'POST':
            with STATE.lock:
                STATE.requests = []
            return self.send_json(200, {})
        return self.send_json(404, {'error': {'message': 'unknown mock path'}})

    # -- the API ----------------------------------------------------------
    def owned(self, oid, token, kind):
        o = STATE.objects.get(oid)
        if o is None or o['owner'] != token or o['kind'] != kind or o.get('deleted'):
            return None
        return o

    def route(self, method, path, query, token, js, form):
        if js is None and form is None:
            return error(400, 'The body must be a JSON object.')
        seg = [s for s in path.split('/') if s]
        if not seg or seg[0] != 'v1':
            return None
        seg = seg[1:]
        q = urllib.parse.parse_qs(query)
        name = '/'.join(seg[:1])
        if seg == ['responses', 'compact'] and method == 'POST':
            return self.compact(token, js)
        if seg == ['responses', 'input_tokens'] and method == 'POST':
            return self.input_tokens(token, js)
        if seg[:1] == ['responses']:
            return self.api_responses(method, seg[1:], token, js, q)
        if seg[:2] == ['chat', 'completions']:
            return self.chat(method, seg[2:], token, js, q)
        if name == 'files':
            return self.files(method, seg[1:], token, form, q)
        if name == 'vector_stores':
            return self.vector_stores(method, seg[1:], token, js)
        if name == 'models':
            return self.models(method, seg[1:], token)
        if seg == ['embeddings'] and method == 'POST':
            return self.embeddings(js)
        if seg == ['completions'] and method == 'POST':
            return self.completions(js)  # "stream" too
        if seg == ['images', 'generations'] and method == 'POST':
            return self.image(js.get('model'), js.get('prompt'))
        if seg == ['images', 'edits'] and method == 'POST':
            if form is None or 'image' not in form and 'image[]' not in form:
                return error(400, "Missing required parameter: 'image'.")
            return self.image(form.get('model', {}).get('value'), form.get('prompt', {}).get('value'))
        if seg == ['audio', 'transcriptions'] and method == 'POST':
            if form is None or 'file' not in form or 'model' not in form:
                return error(400, "Missing required parameter: 'file' or 'model'.")
            return 200, {'text': 'hello from the objects mock',
                         'usage': {'type': 'tokens', 'input_tokens': 60,
                                   'input_token_details': {'text_tokens': 0, 'audio_tokens': 60},
                                   'output_tokens': 7, 'total_tokens': 67}}
        if seg == ['messages', 'count_tokens'] and method == 'POST':
            if not isinstance(js.get('model'), str):
                return error(400, 'model: Field required')
            return 200, {'input_tokens': 4 * len(json.dumps(js.get('messages', [])))}
        if seg == ['batches'] and method == 'POST':
            bid = STATE.new_id('batch_')
            return 200, {'id': bid, 'object': 'batch', 'status': 'validating'}
        return None

    # /v1/responses ...
    def previous_of(self, token, js):
        """(the owned previous response or None, an error answer or None)."""
        prev = js.get('previous_response_id')
        if prev is None:
            return None, None
        with STATE.lock:
            o = self.owned(prev, token, 'response')
        if o is None:
            return None, error(400, "Previous response with id '%s' not found." % prev,
                               param='previous_response_id',
                               code='previous_response_not_found')
        return o, None

    def compact(self, token, js):
        if not isinstance(js.get('model'), str):
            return error(400, "Missing required parameter: 'model'.", param='model')
        prev, err = self.previous_of(token, js)
        if err:
            return err
        items = (prev['input_items'] if prev else []) + input_items(js, 'resp_cmp')
        return 200, {'id': STATE.new_id('cmp_mock'), 'object': 'response.compaction',
                     'created_at': CREATED,
                     'output': [dict(i, id='msg_c%d' % n) for n, i in enumerate(items)] + [
                         {'id': 'cmp_item', 'type': 'compaction',
                          'encrypted_content': 'bW9jaw=='}],
                     'usage': usage_of((800, 0, 120))}

    def input_tokens(self, token, js):
        prev, err = self.previous_of(token, js)
        if err:
            return err
        items = (prev['input_items'] if prev else []) + input_items(js, 'resp_cnt')
        return 200, {'object': 'response.input_tokens',
                     'input_tokens': 4 * len(json.dumps(items))}

    def api_responses(self, method, rest, token, js, q):
        if not rest:
            if method != 'POST':
                return error(405, 'use POST')
            return self.create_response(token, js)
        rid = rest[0]
        stream = None
        with STATE.lock:
            o = self.owned(rid, token, 'response')
            if o is None:
                return error(404, "Response with id '%s' not found." % rid)
            if rest[1:] == [] and method == 'DELETE':
                o['deleted'] = True
                return 200, {'id': rid, 'object': 'response.deleted', 'deleted': True}
            if rest[1:] == ['cancel'] and method == 'POST':
                if not o['background']:
                    return error(400, 'Only responses created with background=true can be cancelled.')
                if o['status'] in ('queued', 'in_progress'):
                    o['status'] = 'cancelled'
                return 200, response_obj(o)
            if rest[1:] == ['input_items'] and method == 'GET':
                return 200, page(o['input_items'])
            if rest[1:] != [] or method != 'GET':
                return None
            if q.get('stream', [''])[0] == 'true':
                if o['background'] and o['status'] in ('queued', 'in_progress'):
                    o['status'] = o['script'][1]      # streamed to its end
                if o['status'] != 'completed':
                    return error(400, 'mock: only a completed response streams')
                stream = o
            elif o['background'] and o['status'] in ('queued', 'in_progress'):
                o['polls'] += 1
                steps, end = o['script']
                o['status'] = end if o['polls'] >= steps else 'in_progress'
            elif o['background']:
                o['polls'] += 1
            if stream is None:
                return 200, response_obj(o)
        self.send_response_events(o)      # outside the lock: it writes to the socket
        return 'sent'

    def create_response(self, token, js):
        model = js.get('model')
        if not isinstance(model, str):
            return error(400, "Missing required parameter: 'model'.", param='model')
        _, err = self.previous_of(token, js)
        if err:
            return err
        prev = js.get('previous_response_id')
        meta = js.get('metadata') or {}
        hdr = self.headers
        bg = parse_bg(hdr.get('x-mock-bg')) or parse_bg(meta.get('mock_bg')) or (2, 'completed')
        usage = parse_usage(hdr.get('x-mock-usage')) or parse_usage(meta.get('mock_usage')) \
            or (1200, 300, 450)
        rid = STATE.new_id('resp_mock')
        background = bool(js.get('background'))
        o = {'id': rid, 'kind': 'response', 'owner': token, 'model': model,
             'background': background, 'store': js.get('store', True) is not False,
             'previous': prev, 'metadata': meta,
             'max_output_tokens': js.get('max_output_tokens'),
             'status': 'queued' if background else 'completed', 'polls': 0,
             'script': bg, 'usage': usage, 'input_items': input_items(js, rid)}
        if o['store'] or background:
            with STATE.lock:
                STATE.objects[rid] = o
        if js.get('stream'):
            gap = hdr.get('x-mock-gap-ms') or meta.get('mock_gap_ms') or 0
            self.send_response_events(o, int(gap) / 1000.0)
            if background:
                with STATE.lock:
                    o['status'] = 'completed'
                    o['streamed_to_end'] = True
            else:
                o['status'] = 'completed'
            return 'sent'
        return 200, response_obj(o)

    def send_response_events(self, o, gap_s=0):
        """Response o as a stream: created, a text delta, completed (after
        gap_s)."""
        rid = o['id']
        self.send_sse([
            ('response.created', {'type': 'response.created', 'sequence_number': 0,
                                  'response': response_obj(dict(o, status='in_progress'))}),
            ('response.output_text.delta', {'type': 'response.output_text.delta',
                                            'sequence_number': 1, 'item_id': 'msg_' + rid[5:],
                                            'output_index': 0, 'content_index': 0,
                                            'delta': 'hello from the objects mock'}),
            ('response.completed', {'type': 'response.completed', 'sequence_number': 2,
                                    'response': response_obj(dict(o, status='completed'))}),
        ], gap_s)

    # /v1/chat/completions ...
    def chat(self, method, rest, token, js, q):
        if not rest:
            if method == 'GET':
                with STATE.lock:
                    mine = [chat_obj(o) for o in STATE.objects.values()
                            if o['kind'] == 'chat' and o['owner'] == token and not o.get('deleted')]
                if q.get('order', ['asc'])[0] == 'desc':
                    mine.reverse()
                limit = int(q.get('limit', ['20'])[0])
                return 200, page(mine[:limit], len(mine) > limit)
            if method != 'POST':
                return error(405, 'use GET or POST')
            return self.create_chat(token, js)
        cid = rest[0]
        with STATE.lock:
            o = self.owned(cid, token, 'chat')
            if o is None:
                return error(404, "Chat completion with id '%s' not found." % cid)
            if rest[1:] == [] and method == 'GET':
                return 200, chat_obj(o)
            if rest[1:] == [] and method == 'POST':
                if not isinstance(js.get('metadata'), dict):
                    return error(400, "Missing required parameter: 'metadata'.")
                o['metadata'] = js['metadata']
                return 200, chat_obj(o)
            if rest[1:] == [] and method == 'DELETE':
                o['deleted'] = True
                return 200, {'object': 'chat.completion.deleted', 'id': cid, 'deleted': True}
            if rest[1:] == ['messages'] and method == 'GET':
                msgs = [{'id': '%s-%d' % (cid, i), 'role': m.get('role', 'user'),
                         'content': m.get('content'), 'name': None, 'content_parts': None}
                        for i, m in enumerate(o['messages']) if isinstance(m, dict)]
                return 200, page(msgs)
        return None

    def create_chat(self, token, js):
        model = js.get('model')
        if not isinstance(model, str):
            return error(400, "Missing required parameter: 'model'.", param='model')
        cid = STATE.new_id('chatcmpl-mock')
        usage = {'prompt_tokens': 19, 'completion_tokens': 10, 'total_tokens': 29,
                 'prompt_tokens_details': {'cached_tokens': 0, 'audio_tokens': 0},
                 'completion_tokens_details': {'reasoning_tokens': 0, 'audio_tokens': 0,
                                               'accepted_prediction_tokens': 0,
                                               'rejected_prediction_tokens': 0}}
        obj = {'id': cid, 'object': 'chat.completion', 'created': CREATED, 'model': model,
               'choices': [{'index': 0, 'message': {'role': 'assistant',
                                                    'content': 'hello from the objects mock',
                                                    'refusal': None, 'annotations': []},
                            'logprobs': None, 'finish_reason': 'stop'}],
               'usage': usage, 'service_tier': 'default', 'system_fingerprint': None}
        if js.get('store') is True:
            with STATE.lock:
                STATE.objects[cid] = {'id': cid, 'kind': 'chat', 'owner': token, 'obj': obj,
                                      'metadata': js.get('metadata') or {},
                                      'messages': js.get('messages') or []}
        if js.get('stream'):
            base = {'id': cid, 'object': 'chat.completion.chunk', 'created': CREATED,
                    'model': model}
            evs = [json.dumps(dict(base, choices=[{'index': 0, 'delta': {
                'role': 'assistant', 'content': 'hello from the objects mock'},
                'finish_reason': None}]))]
            evs.append(json.dumps(dict(base, choices=[{'index': 0, 'delta': {},
                                                       'finish_reason': 'stop'}])))
            if (js.get('stream_options') or {}).get('include_usage'):
                evs.append(json.dumps(dict(base, choices=[], usage=usage)))
            evs.append('[DONE]')
            self.send_sse(evs)
            return 'sent'
        return 200, obj

    # /v1/files ...
    def files(self, method, rest, token, form, q):
        if not rest:
            if method == 'GET':
                with STATE.lock:
                    mine = [o['obj'] for o in STATE.objects.values()
                            if o['kind'] == 'file' and o['owner'] == token and not o.get('deleted')]
                return 200, page(mine)
            if method != 'POST':
                return error(405, 'use GET or POST')
            if form is None or 'file' not in form or 'purpose' not in form:
                return error(400, "Missing required parameters: 'file' and 'purpose' "
                             "(multipart/form-data).")
            f = form['file']
            fid = STATE.new_id('file-mock')
            obj = {'id': fid, 'object': 'file', 'bytes': f['size'], 'created_at': CREATED,
                   'filename': f['filename'], 'purpose': form['purpose']['value'],
                   'status': 'processed', 'expires_at': None, 'status_details': None}
            with STATE.lock:
                STATE.objects[fid] = {'id': fid, 'kind': 'file', 'owner': token, 'obj': obj,
                                      'data': f['data']}
            return 200, obj
        fid = rest[0]
        with STATE.lock:
            o = self.owned(fid, token, 'file')
            if o is None:
                return error(404, "No such File object: %s" % fid)
            if rest[1:] == [] and method == 'GET':
                return 200, o['obj']
            if rest[1:] == [] and method == 'DELETE':
                o['deleted'] = True
                return 200, {'id': fid, 'object': 'file', 'deleted': True}
            if rest[1:] == ['content'] and method == 'GET':
                return 200, o['data'], 'application/octet-stream'
        return None

    # /v1/vector_stores ...
    def vector_stores(self, method, rest, token, js):
        if not rest:
            if method == 'GET':
                with STATE.lock:
                    mine = [o['obj'] for o in STATE.objects.values()
                            if o['kind'] == 'vector_store' and o['owner'] == token
                            and not o.get('deleted')]
                return 200, page(mine)
            if method != 'POST':
                return error(405, 'use GET or POST')
            vid = STATE.new_id('vs_mock')
            n = len(js.get('file_ids') or [])
            obj = {'id': vid, 'object': 'vector_store', 'created_at': CREATED,
                   'name': js.get('name'), 'usage_bytes': 0,
                   'file_counts': {'in_progress': 0, 'completed': n, 'failed': 0,
                                   'cancelled': 0, 'total': n},
                   'status': 'completed', 'expires_after': None, 'expires_at': None,
                   'last_active_at': CREATED, 'metadata': js.get('metadata') or {}}
            with STATE.lock:
                STATE.objects[vid] = {'id': vid, 'kind': 'vector_store', 'owner': token,
                                      'obj': obj}
            return 200, obj
        vid = rest[0]
        with STATE.lock:
            o = self.owned(vid, token, 'vector_store')
            if o is None:
                return error(404, "No vector store found with id '%s'." % vid)
            if rest[1:] == [] and method == 'GET':
                return 200, o['obj']
            if rest[1:] == [] and method == 'DELETE':
                o['deleted'] = True
                return 200, {'id': vid, 'object': 'vector_store.deleted', 'deleted': True}
        return None

    # /v1/models ...
    def models(self, method, rest, token):
        def model(mid):
            return {'id': mid, 'object': 'model', 'created': CREATED, 'owned_by': 'mock-org'}
        if not rest and method == 'GET':
            with STATE.lock:
                ids = ['gpt-5.2', 'gpt-5.2-2026-01-01'] + sorted(STATE.ft_models)
            return 200, {'object': 'list', 'data': [model(i) for i in ids]}
        if len(rest) != 1:
            return None
        mid = rest[0]
        if method == 'GET':
            return 200, model(mid)
        if method == 'DELETE':
            with STATE.lock:
                if mid not in STATE.ft_models:
                    return error(404, "The model '%s' does not exist" % mid,
                                 code='model_not_found')
                STATE.ft_models.discard(mid)
            return 200, {'id': mid, 'object': 'model', 'deleted': True}
        return None

    def embeddings(self, js):
        model = js.get('model')
        if not isinstance(model, str):
            return error(400, "Missing required parameter: 'model'.")
        vec = [0.125, -0.5, 0.25, 1.0]
        if js.get('encoding_format') == 'base64':
            emb = base64.b64encode(struct.pack('<%df' % len(vec), *vec)).decode()
        else:
            emb = vec
        return 200, {'object': 'list', 'data': [{'object': 'embedding', 'index': 0,
                                                 'embedding': emb}],
                     'model': model, 'usage': {'prompt_tokens': 8, 'total_tokens': 8}}

    def completions(self, js):
        model = js.get('model')
        if not isinstance(model, str):
            return error(400, "Missing required parameter: 'model'.")
        obj = {'id': STATE.new_id('cmpl-mock'), 'object': 'text_completion',
               'created': CREATED, 'model': model,
               'choices': [{'text': ' hello from the objects mock', 'index': 0,
                            'logprobs': None, 'finish_reason': 'stop'}],
               'usage': {'prompt_tokens': 5, 'completion_tokens': 6, 'total_tokens': 11}}
        if not js.get('stream'):
            return 200, obj
        evs = [json.dumps(dict(obj, choices=[dict(obj['choices'][0], finish_reason=None)],
                               usage=None)),
               json.dumps(dict(obj, choices=[dict(obj['choices'][0], text='')], usage=None))]
        if (js.get('stream_options') or {}).get('include_usage'):
            evs.append(json.dumps(dict(obj, choices=[])))
        self.send_sse(evs + ['[DONE]'])
        return 'sent'

    def image(self, model, prompt):
        if not model:
            return error(400, "Missing required parameter: 'model'.")
        return 200, {'created': CREATED, 'data': [{'b64_json': PNG_1x1}],
                     'background': 'opaque', 'output_format': 'png', 'quality': 'low',
                     'size': '1024x1024',
                     'usage': {'input_tokens': 50, 'output_tokens': 272, 'total_tokens': 322,
                               'input_tokens_details': {'text_tokens': 50, 'image_tokens': 0}}}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--port-file')
    a = ap.parse_args()
    srv = ThreadingHTTPServer(('127.0.0.1', a.port), Handler)
    srv.daemon_threads = True
    port = srv.server_address[1]
    if a.port_file:
        tmp = a.port_file + '.tmp'
        with open(tmp, 'w') as f:
            f.write('%d\n' % port)
        os.rename(tmp, a.port_file)
    print('objects_mock listening on 127.0.0.1:%d' % port, flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == '__main__':
    main()
