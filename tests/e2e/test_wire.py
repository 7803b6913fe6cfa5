"""Issue 13, "exact money on every real provider's bytes": the wire corpus
(tests/data/wire) replayed through the relay by the mock (x-mock-file),
each test asserting what the client receives and the exact ledger line.

Money is computed here, independently of the relay: prices are USD per 1M
tokens (nano-USD per token = price x 1000), usd_nano = in*in_price +
cached*cached_price + cache_write*cache_write_price + out*out_price (a
missing cached= or cache_write= price is the input price, '-' costs 0),
cny_nano = round_half_even(usd_nano * rate) with Python's decimal. Token
buckets are stated by hand from the provider's documented usage; the
content of a cut stream is measured here with Python's own JSON parser
(decoded UTF-8 bytes of the content strings of the events delivered).

The contract is SPEC section 8 as made precise by issue 13 (see each test)."""
import hashlib
import importlib.util
import json
import os
import re
import subprocess
import time
from decimal import Decimal, ROUND_HALF_EVEN

from harness import (KEY, RELAY, WIRE, config, connect, http, node, read_response,
                     sha256_hex, wait_for)

ADMIN = 'rk-admin-test-0000000000000000000009'
RATE = Decimal('7.2')
TS = rb'"ts":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"'

_spec = importlib.util.spec_from_file_location('wire_make', os.path.join(WIRE, 'make.py'))
wire = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(wire)


# ---- the relay's configuration -------------------------------------------------

# alias: (modality, in, out, cached, cache_write, route); None: not set
MODELS = {
    'gpt-4o': ('text', '2.50', '10.00', '1.25', None, 'mock/gpt-4o-2024-08-06'),
    'o4-mini': ('text', '1.10', '4.40', '0.275', None, 'mock/o4-mini-2025-04-16'),
    'gpt-4.1': ('text', '2.00', '8.00', '0.50', None, 'mock/gpt-4.1-2025-04-14'),
    'text-embedding-3-small': ('embeddings', '0.020', '-', None, None,
                               'mock/text-embedding-3-small'),
    'gpt-image-1': ('image', '5.00', '40.00', '1.25', None, 'mock/gpt-image-1'),
    'azure-gpt-4o': ('text', '2.50', '10.00', '1.25', None, 'azure/gpt-4o'),
    'claude-sonnet-4-5': ('text', '3.00', '15.00', '0.30', '3.75',
                          'mock/claude-sonnet-4-5-20250929'),
    'claude-cw': ('text', '3.00', '15.00', None, '3.75', 'mock/claude-sonnet-4-5-20250929'),
    'claude-plain': ('text', '3.00', '15.00', None, None, 'mock/claude-sonnet-4-5-20250929'),
    'deepseek-reasoner': ('text', '0.550', '2.190', '0.140', None, 'mock/deepseek-reasoner'),
    'doubao-pro': ('text', '0.110', '0.275', None, None, 'ark/doubao-1-5-pro-32k-250115'),
    'doubao-seedance': ('video', '-', '6.40', None, None, 'ark/doubao-seedance-1-0-pro-250528'),
    'qwen': ('text', '0.100', '0.300', '0.025', None, 'mock/Qwen/Qwen2.5-7B-Instruct'),
    'gpt-plain': ('text', '2.50', '10.00', None, None, 'mock/gpt-4o-2024-08-06'),
    'cheap': ('text', '0.001', '0.001', None, None, 'mock/cheap'),
    'claude-down': ('text', '3.00', '15.00', None, None, 'down/claude-sonnet-4-5-20250929'),
}


# The same catalog without cache prices (cached tokens and cache writes at
# the input price).
PLAIN = {a: (v[0], v[1], v[2], None, None, v[5]) for a, v in MODELS.items()}


def model_lines(models=MODELS):
    """The config's model lines; the cache options stand in different
    places after the two prices (before the route, after it, cache_write
    before cached)."""
    out = []
    for alias, (mod, pin, pout, pc, pw, route) in models.items():
        opts = []
        if pw:
            opts.append('cache_write=' + pw)
        if pc:
            opts.append('cached=' + pc)
        if alias == 'o4-mini':
            out.append('model %s %s %s %s %s %s' % (alias, mod, pin, pout, route, ' '.join(opts)))
        else:
            out.append(' '.join(['model', alias, mod, pin, pout] + opts + [route]))
    return out


def wire_relay(env, extra='', overdraft='100000', relay_env=None, models=MODELS, mock_args=None):
    m = env.start_mock(mock_args)
    c = config(m.port, overdraft=overdraft, providers=[
        'provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % m.port,
        'credential mock env:MOCK_KEY_1',
        'provider azure base=http://127.0.0.1:%d/openai/deployments/gpt-4o auth=api-key' % m.port,
        'credential azure env:AZ_KEY',
        'provider ark base=http://127.0.0.1:%d/api/v3 auth=bearer' % m.port,
        'credential ark env:ARK_KEY',
        'provider down base=http://127.0.0.1:%d/v1 auth=x-api-key' % m.port,
        'credential down env:DOWN_KEY',
    ], models=model_lines(models),
        extra='currency CNY rate=7.2\nadmin_key sha256:%s\n%s' % (sha256_hex(ADMIN), extra))
    e = {'MOCK_KEY_1': 'sk-up', 'AZ_KEY': 'az-up', 'ARK_KEY': 'ark-up', 'DOWN_KEY': '500',
         'RELAY_TASK_POLL_MS': '3600000'}
    e.update(relay_env or {})
    r = env.start_relay(c, env=e)
    return m, r


# ---- money, computed here ------------------------------------------------------

def nano(price):
    if price is None or price == '-':
        return 0
    v = Decimal(price) * 1000
    assert v == v.to_integral_value(), price
    return int(v)


def cost(alias, tin, cached=0, cw=0, tout=0, models=MODELS):
    _, pin, pout, pc, pw, _ = models[alias]
    usd = (tin * nano(pin) + cached * nano(pc if pc else pin) +
           cw * nano(pw if pw else pin) + tout * nano(pout))
    cny = int((Decimal(usd) * RATE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    return usd, cny


def fmt2(n):
    return '{:f}'.format((Decimal(n) / 10**9).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN))


def charge_pattern(rid, alias, tin, cached=0, cw=0, tout=0, estimated=False, cut=None,
                   cred=None, status=200, task=None, models=MODELS):
    """The exact charge line: fields in the contract's order, cached and
    cache_write only when not 0, estimated and cut only when they apply."""
    route = models[alias][5]
    cred = cred or route.split('/')[0] + '#1'
    usd, cny = cost(alias, tin, cached, cw, tout, models)
    s = b'{' + TS + b',"type":"charge","id":"' + re.escape(rid.encode()) + b'"'
    if task:
        s += b',"task":"' + re.escape(task.encode()) + b'"'
    s += (b',"wallet":"acme","model":"' + re.escape(alias.encode()) + b'","route":"' +
          re.escape(route.encode()) + b'","cred":"' + re.escape(cred.encode()) +
          b'","status":%d,"in":%d' % (status, tin))
    if cached:
        s += b',"cached":%d' % cached
    if cw:
        s += b',"cache_write":%d' % cw
    s += b',"out":%d,"usd_nano":%d,"cny_nano":%d' % (tout, usd, cny)
    if estimated:
        s += b',"estimated":true'
    if cut:
        s += b',"cut":"' + cut.encode() + b'"'
    return s + b',"prev":"[0-9a-f]{64}"}', cny


# ---- the ledger ----------------------------------------------------------------

def raw_lines(r, settle=True):
    if settle and r.proc.poll() is None:
        try:
            http('127.0.0.1', r.port, 'GET', '/healthz')
        except OSError:
            pass
    with open(os.path.join(r.workdir, 'relay-ledger.jsonl'), 'rb') as f:
        data = f.read()
    return data.splitlines()


def check_chain(r):
    prev = b'0' * 64
    for line in raw_lines(r):
        assert json.loads(line)['prev'].encode() == prev, line
        prev = hashlib.sha256(line).hexdigest().encode()


def money_lines(r, settle=True):
    """Charge and credit lines: the task lines that record a stored
    Responses object (SPEC §9) are left out."""
    return [l for l in raw_lines(r, settle) if b'"type":"task"' not in l]


def new_line(r, before, timeout=15.0):
    """The one money line written after the first `before` ones (waits for
    it: a cut stream is charged when the relay notices the cut)."""
    lines = wait_for(lambda: (lambda ls: ls if len(ls) > before else None)(money_lines(r)),
                     timeout, 'a new ledger line')
    time.sleep(0.05)
    lines = money_lines(r)
    assert len(lines) == before + 1, lines[before:]
    return lines[before]


def assert_line(line, pattern):
    assert re.fullmatch(pattern, line), '\n  got  %s\n  want %s' % (
        line.decode(errors='replace'), pattern.decode(errors='replace'))


def wallet(r):
    res = http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, {'Authorization': 'Bearer ' + KEY})
    assert res.status == 200, res.body
    return res.json()


# ---- reading the corpus ----------------------------------------------------------

def file_bytes(name, gen=None):
    for d in (WIRE, gen):
        if d and os.path.exists(os.path.join(d, name)):
            with open(os.path.join(d, name), 'rb') as f:
                return f.read()
    raise AssertionError('no wire file ' + name)


def parse_answer(raw):
    """(head, decoded body, [(file offset of a chunk's data, its size)])."""
    head, sep, rest = raw.partition(b'\r\n\r\n')
    assert sep
    hl = len(head) + 4
    te = re.search(rb'(?im)^transfer-encoding:\s*chunked\s*$', head)
    if not te:
        return head, rest, [(hl, len(rest))]
    body, chunks, i = bytearray(), [], 0
    while True:
        eol = rest.index(b'\r\n', i)
        size = int(rest[i:eol].split(b';')[0], 16)
        i = eol + 2
        if size == 0:
            return head, bytes(body), chunks
        chunks.append((hl + i, size))
        body += rest[i:i + size]
        i += size + 2


def wire_offset(raw, decoded):
    """The file offset at which `decoded` body bytes have been sent; at
    the end of a chunk, after its CRLF (the chunk is complete)."""
    _, _, chunks = parse_answer(raw)
    pos = 0
    for start, size in chunks:
        if decoded <= pos + size:
            k = decoded - pos
            return start + k + (2 if k == size and k > 0 else 0)
        pos += size
    raise AssertionError('offset past the body')


EOL = re.compile(rb'\r\n|\n|\r')


def sse_blocks(body):
    """An SSE body cut into event blocks as the WHATWG rules read it:
    [(raw bytes through the blank line, event name, data)]; lines end in
    CRLF, LF or CR; comments and other fields stay in their block."""
    out, fields, start, i = [], [], 0, 0
    for m in EOL.finditer(body):
        line = body[i:m.start()]
        if line == b'':
            out.append(block(body[start:m.end()], fields))
            fields, start = [], m.end()
        elif not line.startswith(b':'):
            name, _, value = line.partition(b':')
            fields.append((name, value[1:] if value.startswith(b' ') else value))
        i = m.end()
    if start < len(body):
        line = body[i:]
        if line and not line.startswith(b':'):
            name, _, value = line.partition(b':')
            fields.append((name, value[1:] if value.startswith(b' ') else value))
        out.append(block(body[start:], fields))
    return out


def block(raw, fields):
    name = ''
    data = []
    for k, v in fields:
        if k == b'event':
            name = v.decode()
        elif k == b'data':
            data.append(v.decode())
    return raw, name, '\n'.join(data) if data else None


def jload(data):
    try:
        return json.loads(data)
    except (TypeError, ValueError):
        return None


def usage_only(data):
    d = jload(data)
    return isinstance(d, dict) and d.get('choices') == [] and isinstance(d.get('usage'), dict)


def content_bytes(data):
    """Content an event delivers: OpenAI chat deltas' content,
    reasoning_content and tool-call arguments; Anthropic text, partial_json
    and thinking deltas; Responses response.*.delta strings. Decoded
    UTF-8 bytes; never framing, names, ids or signatures."""
    d = jload(data)
    if not isinstance(d, dict):
        return 0
    n = 0

    def s(v):
        return len(v.encode()) if isinstance(v, str) else 0
    for c in d.get('choices') or []:
        delta = c.get('delta') or {}
        n += s(delta.get('content')) + s(delta.get('reasoning_content'))
        for tc in delta.get('tool_calls') or []:
            n += s((tc.get('function') or {}).get('arguments'))
    t = d.get('type')
    if t == 'content_block_delta':
        delta = d.get('delta') or {}
        n += s(delta.get('text')) + s(delta.get('partial_json')) + s(delta.get('thinking'))
    if isinstance(t, str) and t.startswith('response.') and t.endswith('.delta'):
        n += s(d.get('delta'))
    return n


def estimate_out(blocks, allowance):
    return min(max(1, sum(content_bytes(d) for _, _, d in blocks) // 4), allowance)


def prefix_through(body, pred, count):
    """The blocks of body through the count-th one that pred accepts."""
    got, seen = [], 0
    for b in sse_blocks(body):
        got.append(b)
        if pred(b):
            seen += 1
            if seen == count:
                return got
    raise AssertionError('only %d matching events' % seen)


def text_event(b):
    return content_bytes(b[2]) > 0


# ---- talking to the relay ----------------------------------------------------------

class Answer:
    """One relayed answer read off the socket incrementally: head, then the
    body decoded (chunked, Content-Length or close), into a bytearray."""

    def __init__(self, port, path, body, headers=None, key=KEY):
        self.s = connect(port)
        h = {'Host': 'relay.test', 'Connection': 'close', 'Content-Type': 'application/json'}
        if key:
            h['Authorization'] = 'Bearer ' + key
        h.update(headers or {})
        h['Content-Length'] = str(len(body))
        req = 'POST %s HTTP/1.1\r\n' % path + ''.join('%s: %s\r\n' % kv for kv in h.items())
        self.s.sendall(req.encode() + b'\r\n' + body)
        self.buf = bytearray()
        self.pos = 0
        self.body = bytearray()
        self.eof = False
        self.done = False
        self.s.settimeout(30)
        while b'\r\n\r\n' not in self.buf:
            self._recv()
            if self.eof:
                raise AssertionError('closed before the head: %r' % bytes(self.buf))
        i = self.buf.index(b'\r\n\r\n')
        self.head = bytes(self.buf[:i])
        self.pos = i + 4
        lines = self.head.decode('latin-1').split('\r\n')
        self.status = int(lines[0].split(' ')[1])
        self.headers = {}
        for l in lines[1:]:
            k, _, v = l.partition(':')
            self.headers.setdefault(k.strip().lower(), v.strip())
        self.chunked = 'chunked' in self.headers.get('transfer-encoding', '').lower()
        self.length = int(self.headers['content-length']) if 'content-length' in self.headers \
            else None
        self._pump()

    def rid(self):
        return self.headers['x-request-id']

    def _recv(self):
        c = self.s.recv(1 << 20)
        if not c:
            self.eof = True
        self.buf += c

    def _pump(self):
        if self.chunked:
            while not self.done:
                eol = self.buf.find(b'\r\n', self.pos)
                if eol < 0:
                    return
                size = int(bytes(self.buf[self.pos:eol]).split(b';')[0], 16)
                if size == 0:
                    self.done = True
                    return
                if len(self.buf) < eol + 2 + size + 2:
                    return
                self.body += self.buf[eol + 2:eol + 2 + size]
                assert self.buf[eol + 2 + size:eol + 4 + size] == b'\r\n'
                self.pos = eol + 4 + size
                if self.pos > 1 << 20:
                    del self.buf[:self.pos]
                    self.pos = 0
        else:
            self.body += self.buf[self.pos:]
            del self.buf[:]
            self.pos = 0
            if self.length is not None and len(self.body) >= self.length:
                self.done = True

    def read_until(self, n, timeout=20):
        end = time.monotonic() + timeout
        while len(self.body) < n and not self.done and not self.eof:
            assert time.monotonic() < end, 'stalled at %d of %d body bytes' % (len(self.body), n)
            self._recv()
            self._pump()
        return bytes(self.body)

    def read_all(self, timeout=30):
        end = time.monotonic() + timeout
        while not self.done and not self.eof:
            assert time.monotonic() < end, 'stalled at %d body bytes' % len(self.body)
            self._recv()
            self._pump()
        if self.length is None and not self.chunked:
            self.done = self.eof
        return bytes(self.body)

    def close(self):
        self.s.close()


def ask(r, path, body, headers=None, key=KEY):
    if isinstance(body, dict):
        body = json.dumps(body).encode()
    a = Answer(r.port, path, body, headers, key)
    a.read_all()
    a.close()
    return a


def request_body(path, alias, stream=False, asked=False, extra=None):
    if path.endswith('/messages'):
        b = {'model': alias, 'max_tokens': 1024,
             'messages': [{'role': 'user', 'content': 'What is the weather in Z\u00fcrich?'}]}
    elif path.endswith('/responses'):
        b = {'model': alias, 'input': 'Store the usage of this call, please.'}
    elif path.endswith('/embeddings'):
        b = {'model': alias, 'input': 'The food was delicious and the waiter...'}
    elif path.endswith('/images/generations'):
        b = {'model': alias, 'prompt': 'A cute baby sea otter', 'size': '1024x1024',
             'quality': 'low'}
    else:
        b = {'model': alias, 'messages': [{'role': 'user', 'content': 'Hello there, relay!'}]}
    if stream:
        b['stream'] = True
    if asked:
        b['stream_options'] = {'include_usage': True}
    b.update(extra or {})
    return json.dumps(b).encode()


# ---- the corpus, case by case ------------------------------------------------------------

CHAT, RESP, MSG = '/v1/chat/completions', '/v1/responses', '/v1/messages'

# (file, path, alias, stream, (in, cached, cache_write, out) or 'estimate')
CORPUS = [
    ('openai_chat.http', CHAT, 'gpt-4o', False, (19, 0, 0, 10)),
    ('openai_chat_cached_reasoning.http', CHAT, 'o4-mini', False, (86, 1920, 0, 300)),
    ('openai_chat_stream_usage.http', CHAT, 'gpt-4o', True, (93, 1024, 0, 46)),
    ('openai_chat_stream_tools.http', CHAT, 'gpt-4o', True, (82, 0, 0, 18)),
    ('openai_responses.http', RESP, 'gpt-4.1', False, (136, 4864, 0, 120)),
    ('openai_responses_stream_usage_schema.http', RESP, 'gpt-4.1', True, (328, 0, 0, 12)),
    ('openai_embeddings.http', '/v1/embeddings', 'text-embedding-3-small', False, (8, 0, 0, 0)),
    ('openai_images_gpt_image.http', '/v1/images/generations', 'gpt-image-1', False,
     (50, 0, 0, 272)),
    ('azure_chat_stream_content_filter.http', CHAT, 'azure-gpt-4o', True, (20, 0, 0, 12)),
    ('anthropic_message_cache_write.http', MSG, 'claude-sonnet-4-5', False, (21, 0, 100000, 393)),
    ('anthropic_message_cache_read_write.http', MSG, 'claude-sonnet-4-5', False,
     (3, 98304, 2051, 512)),
    ('anthropic_stream.http', MSG, 'claude-sonnet-4-5', True, (472, 20480, 1024, 89)),
    ('anthropic_stream_thinking.http', MSG, 'claude-sonnet-4-5', True, (50, 0, 0, 312)),
    # no message_delta: estimated from message_start's counts and the
    # content delivered ("Sure", ", here", " is": 13 bytes -> 3); the
    # HTTP body ended cleanly, so no "cut"
    ('anthropic_stream_overloaded.http', MSG, 'claude-sonnet-4-5', True, 'estimate'),
    ('deepseek_chat_reasoner.http', CHAT, 'deepseek-reasoner', False, (512, 1024, 0, 420)),
    ('deepseek_chat_reasoner_stream.http', CHAT, 'deepseek-reasoner', True, (17, 64, 0, 150)),
    ('ark_chat.http', CHAT, 'doubao-pro', False, (19, 0, 0, 9)),
    ('vllm_chat_pretty.http', CHAT, 'qwen', False, (17, 0, 0, 28)),
    ('vllm_chat_stream_crlf.http', CHAT, 'qwen', True, (17, 0, 0, 28)),
]


def expected_client_body(raw, path, stream, asked):
    """The body the client must get: the provider's bytes, less the
    usage-only chunk the relay asked for on behalf of a chat client that
    did not ask."""
    _, body, _ = parse_answer(raw)
    if not (stream and path == CHAT and not asked):
        return body
    return b''.join(b[0] for b in sse_blocks(body) if not usage_only(b[2]))


def replay(r, case, step=None, asked=False, gen=None, models=MODELS, timeout=30):
    """One corpus file through the relay: the client's body and the ledger
    line, exactly. Returns the charge in the wallet currency."""
    name, path, alias, stream, want = case
    raw = file_bytes(name, gen)
    body = request_body(path, alias, stream, asked)
    headers = {'x-mock-file': name}
    if step:
        headers['x-mock-file-step'] = step
    before = len(money_lines(r))
    a = Answer(r.port, path, body, headers)
    got = a.read_all(timeout)
    a.close()
    assert a.status == 200, (name, a.status, got[:300])
    exp = expected_client_body(raw, path, stream, asked)
    assert a.done, (name, 'the answer did not end cleanly')
    if got != exp:
        k = next((i for i in range(min(len(got), len(exp))) if got[i] != exp[i]),
                 min(len(got), len(exp)))
        raise AssertionError('%s (step %s, asked %s): client body differs at byte %d of %d/%d:'
                             '\n  got  %r\n  want %r' % (name, step, asked, k, len(got), len(exp),
                                                        got[max(0, k - 80):k + 80],
                                                        exp[max(0, k - 80):k + 80]))
    if want == 'estimate':
        _, pbody, _ = parse_answer(raw)
        blocks = sse_blocks(pbody)
        start = jload(blocks[0][2])['message']['usage']
        tin, cached, cw = (start['input_tokens'], start['cache_read_input_tokens'],
                           start['cache_creation_input_tokens'])
        tout = estimate_out(blocks, 1024)
        pat, cny = charge_pattern(a.rid(), alias, tin, cached, cw, tout, estimated=True,
                                  models=models)
    else:
        tin, cached, cw, tout = want
        pat, cny = charge_pattern(a.rid(), alias, tin, cached, cw, tout, models=models)
    assert_line(new_line(r, before), pat)
    return cny


def replay_all(env, cases, models=MODELS):
    m, r = wire_relay(env, models=models)
    total = 0
    for case in cases:
        total += replay(r, case, models=models)
        raw = file_bytes(case[0])
        if case[1] == CHAT and case[3]:
            total += replay(r, case, asked=True, models=models)
        if len(raw) < 16384:
            # the same bytes in 3-byte writes, 40 us apart
            total += replay(r, case, step='3:40', models=models)
    check_chain(r)
    assert wallet(r)['balance_nano'] == -total
    return m, r


def test_wire_openai_corpus(env):
    replay_all(env, [c for c in CORPUS if c[0].startswith('openai_')])


def test_wire_azure_prompt_filter_chunk_reaches_the_client(env):
    # Azure's first chunk has "choices":[] and prompt_filter_results but no
    # usage: it is not the usage-only chunk and reaches the client.
    # (no cache prices: this holds with or without them)
    case = [c for c in CORPUS if c[0].startswith('azure_')]
    m, r = replay_all(env, case, models=PLAIN)
    raw = file_bytes(case[0][0])
    _, body, _ = parse_answer(raw)
    first = sse_blocks(body)[0][0]
    assert b'prompt_filter_results' in first
    a = ask(r, CHAT, request_body(CHAT, 'azure-gpt-4o', True), {'x-mock-file': case[0][0]})
    assert bytes(a.body).startswith(first), bytes(a.body)[:300]
    head, _ = m.last_raw()
    assert head.startswith(b'POST /openai/deployments/gpt-4o/chat/completions HTTP/1.1\r\n'), head


def test_wire_anthropic_corpus(env):
    replay_all(env, [c for c in CORPUS if c[0].startswith('anthropic_')])


def test_wire_deepseek_ark_and_python_server_corpus(env):
    replay_all(env, [c for c in CORPUS if c[0].split('_')[0] in ('deepseek', 'ark', 'vllm')])


def test_wire_corpus_without_cache_prices(env):
    # Without cached= a cached token costs the input price, without
    # cache_write= a cache write does; the buckets are recorded all the same.
    replay_all(env, [c for c in CORPUS if c[4] == 'estimate' or c[4][1] or c[4][2]],
               models=PLAIN)


# ---- cached and cache-write tokens ----------------------------------------------------------

def test_wire_cached_and_cache_write_tokens_priced_per_bucket(env):
    m, r = wire_relay(env)
    # The 100,000-token cache write, at the cache-write price; then the
    # same answer for a model without cache prices (input price) and one
    # with cache_write= only (cached reads at the input price).
    cases = [
        ('anthropic_message_cache_write.http', 'claude-sonnet-4-5', (21, 0, 100000, 393)),
        ('anthropic_message_cache_write.http', 'claude-plain', (21, 0, 100000, 393)),
        ('anthropic_message_cache_read_write.http', 'claude-cw', (3, 98304, 2051, 512)),
        ('anthropic_message_cache_read_write.http', 'claude-plain', (3, 98304, 2051, 512)),
        ('openai_chat_cached_reasoning.http', 'gpt-4o', (86, 1920, 0, 300)),
        ('openai_chat_cached_reasoning.http', 'gpt-plain', (86, 1920, 0, 300)),
    ]
    for name, alias, want in cases:
        path = MSG if name.startswith('anthropic') else CHAT
        replay(r, (name, path, alias, False, want))
    # 21*3000 + 100000*3750 + 393*15000 nano-USD: the cache write is 90% of it
    assert cost('claude-sonnet-4-5', 21, 0, 100000, 393) == (380958000, 2742897600)
    assert cost('claude-plain', 21, 0, 100000, 393) == (305958000, 2202897600)
    assert cost('gpt-4o', 86, 1920, 0, 300) == (5615000, 40428000)
    assert cost('gpt-plain', 86, 1920, 0, 300) == (8015000, 57708000)


# ---- the usage-only chunk -------------------------------------------------------------------

def test_wire_usage_chunk_with_spaces_is_hidden_only_when_the_relay_asked(env):
    gen = os.path.join(env.dir, 'wire-gen')
    os.makedirs(gen)
    m, r = wire_relay(env, mock_args=['--files', gen])
    # The same stream with the usage-only chunk pretty-printed over three
    # data lines ("choices": [ ]), after a chunk with empty choices and a
    # null usage (not a usage-only chunk: it reaches the client).
    N = '\r\n'
    events = wire.vllm_stream()
    events[-2:-1] = [
        'data: ' + wire.vllm_chunk([], usage=None) + N + N,
        'data: {"id": "chatcmpl-9f2c4e6a8b0d4f1e9a3c5e7b9d1f3a5d",' + N +
        'data:  "choices": [ ],' + N +
        'data:  "usage": {"prompt_tokens": 17, "completion_tokens": 28, "total_tokens": 45}}' +
        N + N]
    with open(os.path.join(gen, 'pretty_usage_stream.http'), 'wb') as f:
        f.write(wire.sse_answer(wire.UVICORN_SSE, events, sizes=[5, 40]))
    pretty = ('pretty_usage_stream.http', CHAT, 'qwen', True, (17, 0, 0, 28))
    for asked in (False, True):
        replay(r, pretty, gen=gen, asked=asked)
        replay(r, pretty, gen=gen, asked=asked, step='2:20')
    name = 'vllm_chat_stream_crlf.http'
    raw = file_bytes(name)
    _, body, _ = parse_answer(raw)
    hidden = [b for b in sse_blocks(body) if usage_only(b[2])]
    assert len(hidden) == 1 and b'"choices": [], "usage": {' in hidden[0][0], hidden
    case = (name, CHAT, 'qwen', True, (17, 0, 0, 28))
    for step in (None, '1:20', '11'):
        replay(r, case, step=step)                 # hidden: the relay asked
        replay(r, case, step=step, asked=True)     # shown: the client asked
    # the relay asked the provider for usage
    assert json.loads(m.last_raw()[1])['stream_options'] == {'include_usage': True}


# ---- big events -----------------------------------------------------------------------------

def big_dir(env):
    d = os.path.join(env.dir, 'wire-big')
    subprocess.run(['python3', os.path.join(WIRE, 'make.py'), '--big', d], check=True)
    return d


def test_wire_big_sse_events_pass_whole_and_usage_after_them_is_found(env):
    gen = os.path.join(env.dir, 'wire-big')
    m, r = wire_relay(env, mock_args=['--files', gen])
    big_dir(env)
    raw40 = file_bytes('big_chat_stream_40k.http', gen)
    sizes = [len(b[0]) for b in sse_blocks(parse_answer(raw40)[1])]
    assert max(sizes) > 40 * 1024, sizes
    case = ('big_chat_stream_40k.http', CHAT, 'gpt-4o', True, (12, 0, 0, 10008))
    t0 = time.monotonic()
    replay(r, case, gen=gen)
    replay(r, case, gen=gen, asked=True)
    replay(r, case, gen=gen, step='1000:100')       # the 40 KB event in 1000-byte writes
    raw3 = file_bytes('big_responses_stream_3m.http', gen)
    done = [b for b in sse_blocks(parse_answer(raw3)[1]) if b[1] == 'response.completed']
    assert len(done[0][0]) > 3 * 1024 * 1024
    replay(r, ('big_responses_stream_3m.http', RESP, 'gpt-4.1', True, (37, 0, 0, 20000)), gen=gen)
    assert time.monotonic() - t0 < 30, 'a big event stalled'
    # usage followed by 10 KB of metadata: more than 4 KiB before the end
    raw10 = file_bytes('big_responses_metadata_10k.http', gen)
    body = parse_answer(raw10)[1]
    assert len(body) - body.index(b'"usage":{"input_tokens"') > 10 * 1024
    replay(r, ('big_responses_metadata_10k.http', RESP, 'gpt-4.1', False, (34, 16, 0, 7)), gen=gen)
    replay(r, ('big_responses_metadata_10k.http', RESP, 'gpt-4.1', False, (34, 16, 0, 7)), gen=gen,
           step='512:50')
    check_chain(r)


# ---- calls that cost nothing ----------------------------------------------------------------

def test_wire_token_counting_is_never_charged(env):
    m, r = wire_relay(env)
    before = wallet(r)
    for path, alias, name in (('/v1/messages/count_tokens', 'claude-sonnet-4-5',
                               'anthropic_count_tokens.http'),
                              ('/v1/responses/input_tokens', 'gpt-4.1',
                               'openai_responses_input_tokens.http')):
        body = json.dumps({'model': alias, 'input' if 'responses' in path else 'messages':
                           [{'role': 'user', 'content': 'How many tokens is this?'}]}).encode()
        a = ask(r, path, body, {'x-mock-file': name})
        assert a.status == 200, a.body
        assert bytes(a.body) == parse_answer(file_bytes(name))[1]
        assert m.last_raw()[0].startswith(b'POST ' + path.encode() + b' HTTP/1.1\r\n')
    assert money_lines(r) == [], money_lines(r)
    assert wallet(r) == before
    # a call that costs something still is charged
    replay(r, CORPUS[0])
    assert len(money_lines(r)) == 1


# ---- cut streams --------------------------------------------------------------------------

def cut_case(env, r, name, path, alias, body, pred, count, how, want_in, allowance,
             cached=0, cw=0, gen=None, extra_headers=None):
    """Stream `name`, stopping after the count-th event pred accepts: how
    is 'client' (the mock pauses there, the client reads that far and
    hangs up) or 'upstream' (the mock closes there). Checks the bytes the
    client got and the estimated charge."""
    raw = file_bytes(name, gen)
    _, pbody, _ = parse_answer(raw)
    blocks = prefix_through(pbody, pred, count)
    prefix = b''.join(b[0] for b in blocks)
    off = wire_offset(raw, len(prefix))
    headers = {'x-mock-file': name}
    headers['x-mock-file-pause' if how == 'client' else 'x-mock-file-cut'] = str(off)
    headers.update(extra_headers or {})
    before = len(money_lines(r))
    a = Answer(r.port, path, body, headers)
    assert a.status == 200, a.head
    if how == 'client':
        got = a.read_until(len(prefix))
        assert got == prefix, (got[-200:], prefix[-200:])
        a.close()
        rest = b''
    else:
        got = a.read_all()
        a.close()
        assert not a.done, 'a broken stream was presented as complete'
        assert got.startswith(prefix), (got[:len(prefix)][-200:], prefix[-200:])
        rest = got[len(prefix):]
    tout = estimate_out(blocks, allowance)
    pat, cny = charge_pattern(a.rid(), alias, want_in, cached, cw, tout, estimated=True, cut=how)
    assert_line(new_line(r, before), pat)
    return rest, tout, cny


def error_event(rest):
    evs = sse_blocks(rest)
    assert len(evs) == 1 and evs[0][1] == 'error', rest
    return json.loads(evs[0][2])


def test_wire_client_hangs_up_after_6_tokens_of_content(env):
    m, r = wire_relay(env)
    body = request_body(CHAT, 'gpt-4o', True, extra={'max_tokens': 500})
    # "Hello" "!" " Café" " au" " lait" " costs": 26 bytes -> 6 tokens
    _, tout, _ = cut_case(env, r, 'openai_chat_stream_usage.http', CHAT, 'gpt-4o', body,
                          text_event, 6, 'client', len(body) // 4, 500)
    assert tout == 6
    # tool-call arguments are content, the function name is not:
    # '{"' 'location' '":"' 'Paris' ',' -> 19 bytes -> 4
    body = request_body(CHAT, 'gpt-4o', True)
    _, tout, _ = cut_case(env, r, 'openai_chat_stream_tools.http', CHAT, 'gpt-4o', body,
                          text_event, 5, 'client', len(body) // 4, 4096)
    assert tout == 4
    # thinking deltas are content, the signature is not
    body = request_body(MSG, 'claude-sonnet-4-5', True)
    think = sum(len(t.encode()) for t in wire.AN_THINK) + len(wire.AN_THINK_TEXT[0].encode())
    _, tout, _ = cut_case(env, r, 'anthropic_stream_thinking.http', MSG, 'claude-sonnet-4-5',
                          body, text_event, 4, 'client', 50, 1024)
    assert tout == think // 4, (tout, think)


def test_wire_client_hangs_up_after_a_tool_schema_with_usage(env):
    # response.created echoes a tool whose schema has a "usage" property
    # (and an example {"usage":{"input_tokens":1,"output_tokens":1}}): not
    # usage. The client leaves before response.completed: an estimate,
    # never 1 in / 1 out.
    m, r = wire_relay(env)
    body = request_body(RESP, 'gpt-4.1', True, extra={'max_output_tokens': 800})
    # "Stored" " the" " usage" ": 1" " in" ", 1": 25 bytes -> 6
    _, tout, _ = cut_case(env, r, 'openai_responses_stream_usage_schema.http', RESP, 'gpt-4.1',
                          body, lambda b: b[1] == 'response.output_text.delta', 6, 'client',
                          len(body) // 4, 800)
    assert tout == 6


def test_wire_upstream_cut_after_4_tokens_of_content(env):
    m, r = wire_relay(env)
    body = request_body(CHAT, 'gpt-4o', True, extra={'max_tokens': 300})
    # "Hello" "!" " Café" " au": 15 bytes -> 3 tokens
    rest, tout, _ = cut_case(env, r, 'openai_chat_stream_usage.http', CHAT, 'gpt-4o', body,
                             text_event, 4, 'upstream', len(body) // 4, 300)
    assert tout == 3
    err = error_event(rest)
    assert err['error']['code'] == 'upstream_unavailable', err
    # nothing but the role chunk delivered: at least 1
    rest, tout, _ = cut_case(env, r, 'openai_chat_stream_usage.http', CHAT, 'gpt-4o', body,
                             lambda b: True, 1, 'upstream', len(body) // 4, 300)
    assert tout == 1
    # reasoning deltas are content: DeepSeek cut after 5 reasoning and 2
    # content deltas
    body = request_body(CHAT, 'deepseek-reasoner', True)
    rest, tout, _ = cut_case(env, r, 'deepseek_chat_reasoner_stream.http', CHAT,
                             'deepseek-reasoner', body, text_event, 7, 'upstream',
                             len(body) // 4, 4096)
    assert tout == len(''.join(wire.DS_REASONING + wire.DS_TEXT[:2]).encode()) // 4
    # a Python server's stream cut inside one of its odd chunks, right
    # after an event: decoded \u escapes count as their UTF-8 bytes
    body = request_body(CHAT, 'qwen', True)
    rest, tout, _ = cut_case(env, r, 'vllm_chat_stream_crlf.http', CHAT, 'qwen', body,
                             text_event, 4, 'upstream', len(body) // 4, 4096)
    assert tout == len(''.join(wire.VLLM_TEXT[:4]).encode()) // 4 == 5


def test_wire_cut_estimate_is_bounded_by_the_output_allowance(env):
    gen = os.path.join(env.dir, 'wire-big')
    m, r = wire_relay(env, mock_args=['--files', gen], extra='holds max_tokens=3000')
    big_dir(env)
    # 40 KiB of content delivered, but the hold allowed n x max_tokens = 2 x 100
    body = request_body(CHAT, 'gpt-4o', True, extra={'max_tokens': 100, 'n': 2})
    _, tout, _ = cut_case(env, r, 'big_chat_stream_40k.http', CHAT, 'gpt-4o', body, text_event, 1,
                          'upstream', len(body) // 4, 200, gen=gen)
    assert tout == 200
    # no max_tokens: the config's holds max_tokens=3000
    body = request_body(CHAT, 'gpt-4o', True)
    _, tout, _ = cut_case(env, r, 'big_chat_stream_40k.http', CHAT, 'gpt-4o', body, text_event, 1,
                          'client', len(body) // 4, 3000, gen=gen)
    assert tout == 3000


def test_wire_anthropic_cut_after_3_text_deltas(env):
    m, r = wire_relay(env)
    body = request_body(MSG, 'claude-sonnet-4-5', True)
    # message_start's counts stand for the input; "Okay" "," " let": 9
    # bytes -> 2 tokens out, not message_start's output_tokens 1
    rest, tout, _ = cut_case(env, r, 'anthropic_stream.http', MSG, 'claude-sonnet-4-5', body,
                             text_event, 3, 'upstream', 472, 1024, cached=20480, cw=1024)
    assert tout == 2
    # on an Anthropic path the relay's error event has Anthropic's shape
    err = error_event(rest)
    assert err.get('type') == 'error' and err['error']['type'] == 'api_error', err
    assert isinstance(err['error'].get('message'), str) and err['error']['message'], err
    # cut right after message_start: no content, at least 1
    rest, tout, _ = cut_case(env, r, 'anthropic_stream.http', MSG, 'claude-sonnet-4-5', body,
                             lambda b: b[1] == 'message_start', 1, 'upstream', 472, 1024,
                             cached=20480, cw=1024)
    assert tout == 1
    # the client hangs up after the whole text block and two partial_json
    # deltas (the second is '{"location":')
    rest, tout, _ = cut_case(env, r, 'anthropic_stream.http', MSG, 'claude-sonnet-4-5', body,
                             text_event, 11, 'client', 472, 1024, cached=20480, cw=1024)
    assert tout == len(''.join(wire.AN_TEXT + wire.AN_JSON[:2]).encode()) // 4


# ---- invalid usage ---------------------------------------------------------------------

def test_wire_invalid_usage_is_charged_its_hold(env):
    gen = os.path.join(env.dir, 'wire-gen')
    os.makedirs(gen)
    m, r = wire_relay(env, mock_args=['--files', gen], extra='holds max_tokens=2000')
    chat = [
        ('u64', '{"prompt_tokens":18446744073709551615,"completion_tokens":10,"total_tokens":9}'),
        ('exp', '{"prompt_tokens":1e12,"completion_tokens":10,"total_tokens":1000000000010}'),
        ('neg', '{"prompt_tokens":19,"completion_tokens":-1,"total_tokens":18}'),
        ('frac', '{"prompt_tokens":19,"completion_tokens":1.5,"total_tokens":20.5}'),
        ('str', '{"prompt_tokens":"19","completion_tokens":10,"total_tokens":29}'),
        ('over', '{"prompt_tokens":1099511627777,"completion_tokens":1,"total_tokens":1099511627778}'),
        ('cached', '{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,'
                   '"prompt_tokens_details":{"cached_tokens":20}}'),
        ('dscached', '{"prompt_tokens":10,"completion_tokens":5,"total_tokens":15,'
                     '"prompt_cache_hit_tokens":11,"prompt_cache_miss_tokens":0}'),
    ]
    files = {}
    for tag, usage in chat:
        files['inv_%s.http' % tag] = (CHAT, 'gpt-plain', wire.openai_chat(usage))
    files['inv_anthropic_str.http'] = (MSG, 'claude-plain', wire.anthropic_message(
        {'input_tokens': 25, 'output_tokens': '15'}))
    files['inv_anthropic_neg_cache.http'] = (MSG, 'claude-plain', wire.anthropic_message(
        {'input_tokens': 25, 'cache_read_input_tokens': -5, 'output_tokens': 15}))
    stream = wire.openai_chat_stream(usage={'prompt_tokens': 12, 'completion_tokens': -3,
                                            'total_tokens': 9})
    files['inv_stream.http'] = (CHAT, 'gpt-plain', wire.sse_answer(wire.OPENAI_SSE, stream))
    for name, (_, _, b) in files.items():
        with open(os.path.join(gen, name), 'wb') as f:
            f.write(b)
    total = 0
    allowances = [(None, 2000), ({'max_tokens': 300}, 300),
                  ({'max_completion_tokens': 50}, 50), ({'max_tokens': 40, 'n': 3}, 120)]
    for i, (name, (path, alias, raw)) in enumerate(sorted(files.items())):
        extra, allowance = allowances[i % len(allowances)]
        if path == MSG:
            extra, allowance = {'max_tokens': 256}, 256
        stream = name == 'inv_stream.http'
        body = request_body(path, alias, stream, asked=stream, extra=extra)
        before = len(money_lines(r))
        a = ask(r, path, body, {'x-mock-file': name})
        assert a.status == 200 and bytes(a.body) == parse_answer(raw)[1], (name, a.body[:200])
        pat, cny = charge_pattern(a.rid(), alias, len(body) // 4, 0, 0, allowance,
                                  estimated=True)
        assert_line(new_line(r, before), pat)
        total += cny
        # the reason is logged with the request
        assert wait_for(lambda: [l for l in r.log().splitlines() if a.rid() in l and
                                 'invalid' in l.lower() and 'usage' in l.lower()], 5,
                        'the logged reason for ' + name)
    w = wallet(r)
    assert w['balance_nano'] == -total and w['held_nano'] == 0, (w, total)
    # 2^40 itself is a valid count
    with open(os.path.join(gen, 'max.http'), 'wb') as f:
        f.write(wire.openai_chat('{"prompt_tokens":1099511627776,"completion_tokens":0,'
                                 '"total_tokens":1099511627776}'))
    before = len(money_lines(r))
    a = ask(r, CHAT, request_body(CHAT, 'gpt-plain'), {'x-mock-file': 'max.http'})
    assert a.status == 200
    pat, _ = charge_pattern(a.rid(), 'gpt-plain', 2**40, 0, 0, 0)
    assert_line(new_line(r, before), pat)
    check_chain(r)


# ---- request bodies ------------------------------------------------------------------------

def test_wire_duplicate_top_level_members_are_refused(env):
    m, r = wire_relay(env)
    bodies = [
        b'{"model":"gpt-plain","model":"cheap","messages":[{"role":"user","content":"hi"}]}',
        b'{"model":"gpt-plain","messages":[],"mod\\u0065l":"cheap"}',
        b'{"model":"gpt-plain","stream":false,"messages":[],"stream":true}',
        b'{ "max_tokens" : 10 , "model" : "gpt-plain" , "max_tokens" : 99999 }',
    ]
    for b in bodies:
        a = ask(r, CHAT, b)
        assert a.status == 400, (b, a.status, a.body)
        assert a.headers['content-type'].startswith('application/json')
        err = json.loads(bytes(a.body))['error']
        assert err['code'] == 'invalid_json', err
    # on an Anthropic path, in Anthropic's shape
    a = ask(r, MSG, b'{"model":"claude-plain","max_tokens":10,"model":"cheap","messages":[]}')
    assert a.status == 400
    d = json.loads(bytes(a.body))
    assert d['type'] == 'error' and d['error']['type'] == 'invalid_request_error', d
    assert m.stats()['requests'] == 0
    assert money_lines(r) == []
    # the same request without the repeat is relayed
    a = ask(r, CHAT, b'{"model":"gpt-plain","messages":[{"role":"user","content":"hi"}],'
                     b'"metadata":{"a":"1"}}', {'x-mock-file': 'openai_chat.http'})
    assert a.status == 200
    assert json.loads(m.last_raw()[1])['model'] == 'gpt-4o-2024-08-06'


# ---- holds cover n ---------------------------------------------------------------------------

def test_wire_holds_cover_n_choices(env):
    m, r = wire_relay(env, overdraft='0')
    res = http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit', {'amount': '1.00'},
               {'Authorization': 'Bearer ' + ADMIN})
    assert res.status == 200, res.body
    # a running request holds prompt bytes / 4 in and n x max_tokens out
    body = request_body(CHAT, 'gpt-plain', extra={'n': 3, 'max_tokens': 100})
    s = connect(r.port)
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nx-mock: stall:60000\r\nContent-Length: %d\r\n\r\n' %
              len(body) + body)
    wait_for(lambda: m.stats()['requests'] == 1, 5, 'the stalled request upstream')
    _, hold = cost('gpt-plain', len(body) // 4, 0, 0, 300)
    w = wallet(r)
    assert w['held_nano'] == hold, (w, hold)
    s.close()
    wait_for(lambda: wallet(r)['held_nano'] == 0, 5, 'the hold released')
    # 1 x 5000 out fits 1.00 CNY, 4 x 5000 does not
    one = request_body(CHAT, 'gpt-plain', extra={'max_tokens': 5000})
    assert cost('gpt-plain', len(one) // 4, 0, 0, 5000)[1] < 10**9
    body = request_body(CHAT, 'gpt-plain', extra={'max_tokens': 5000, 'n': 4})
    _, need = cost('gpt-plain', len(body) // 4, 0, 0, 20000)
    assert need > 10**9
    a = ask(r, CHAT, body)
    assert a.status == 402, (a.status, a.body)
    msg = ("wallet 'acme' has 1.00 CNY (0.00 held by running requests) and cannot cover this "
           "request's hold of %s CNY; top it up or lower max_tokens" % fmt2(need))
    assert json.loads(bytes(a.body))['error']['message'] == msg, a.body
    assert m.stats()['requests'] == 1
    a = ask(r, CHAT, one, {'x-mock-file': 'openai_chat.http'})
    assert a.status == 200


# ---- Anthropic's error shape ------------------------------------------------------------------

def test_wire_relay_errors_on_anthropic_paths_have_anthropic_shape(env):
    m, r = wire_relay(env)
    msg = json.dumps({'model': 'claude-plain', 'max_tokens': 10, 'messages': []}).encode()
    cases = [
        (MSG, msg, 'rk-wrong', 401, 'authentication_error'),
        (MSG, msg.replace(b'claude-plain', b'claude-nope'), KEY, 404, 'not_found_error'),
        (MSG, b'{"model":', KEY, 400, 'invalid_request_error'),
        (MSG, b'{"max_tokens":10,"messages":[]}', KEY, 400, 'invalid_request_error'),
        (MSG, msg.replace(b'claude-plain', b'claude-down'), KEY, 503, 'api_error'),
        ('/v1/messages/count_tokens', msg.replace(b'claude-plain', b'claude-nope'), KEY, 404,
         'not_found_error'),
    ]
    for path, body, key, status, typ in cases:
        a = ask(r, path, body, key=key)
        assert a.status == status, (path, body, a.status, a.body)
        d = json.loads(bytes(a.body))
        assert d.get('type') == 'error', d
        assert d['error']['type'] == typ, (status, d)
        assert isinstance(d['error'].get('message'), str) and d['error']['message'], d
        assert 'rk-wrong' not in bytes(a.body).decode()
    # OpenAI paths keep OpenAI's shape
    a = ask(r, CHAT, b'{"model":"gpt-nope"}')
    d = json.loads(bytes(a.body))
    assert a.status == 404 and 'type' not in d and d['error']['code'] == 'model_not_found', d
    # the official SDK reads status, type and message
    sdk = {'RELAY_BASE': 'http://127.0.0.1:%d' % r.port, 'RELAY_KEY': KEY}
    out = node('anthropic_client.mjs', ['error', 'claude-nope'], sdk)
    assert (out['status'], out['name'], out['type']) == \
        (404, 'NotFoundError', 'not_found_error'), out
    assert 'claude-nope' in out['apiMessage'], out
    out = node('anthropic_client.mjs', ['error', 'claude-plain'], dict(sdk, RELAY_KEY='rk-wrong'))
    assert (out['status'], out['name'], out['type']) == \
        (401, 'AuthenticationError', 'authentication_error'), out
    out = node('anthropic_client.mjs', ['error', 'claude-down'], sdk)
    assert (out['status'], out['type']) == (503, 'api_error'), out
    assert 'claude-down' in out['apiMessage'], out
    assert money_lines(r) == []


# ---- the catalog, check and report --------------------------------------------------------------

def test_wire_check_warns_that_unpriced_output_is_not_debited_but_input_is(env):
    conf = os.path.join(env.dir, 'check.conf')
    with open(conf, 'w') as f:
        f.write('provider mock base=http://127.0.0.1:1/v1\n'
                'model emb embeddings 0.020 - mock/emb\n'
                'model chat text 1.00 2.00 mock/chat\n')
    p = subprocess.run([RELAY, 'check', '-c', 'check.conf'], cwd=env.dir, capture_output=True,
                       text=True)
    assert p.returncode == 0, p.stderr
    warn = [l for l in p.stderr.splitlines() if "'emb'" in l]
    assert len(warn) == 1, p.stderr
    w = warn[0]
    assert w.startswith('check.conf:2: warning: '), w
    assert 'never debited' not in w, w
    # the output is metered, not debited; the input is debited
    assert 'output' in w and 'metered' in w and 'not debited' in w, w
    assert re.search(r'\binput\b(?:(?!\bnot\b)[^;.])*\bdebited\b', w), w
    assert "'chat'" not in p.stderr, p.stderr


def test_wire_catalog_shows_cached_and_cache_write_prices(env):
    m, r = wire_relay(env)
    p = subprocess.run([RELAY, 'models', '-c', r.conf], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    head = lines[0].lower()
    assert 'cached' in head and 'write' in head, lines[0]
    rows = {l.split()[0]: l.split() for l in lines[1:] if l.strip()}
    assert {'0.30', '3.75'} <= set(rows['claude-sonnet-4-5']), rows['claude-sonnet-4-5']
    assert '1.25' in rows['gpt-4o'] and '0.275' in rows['o4-mini'], rows
    assert '3.75' in rows['claude-cw'], rows['claude-cw']
    p = subprocess.run([RELAY, 'check', '-c', r.conf], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    res = http('127.0.0.1', r.port, 'GET', '/v1/models', None, {'Authorization': 'Bearer ' + KEY})
    assert res.status == 200
    d = json.loads(res.body, parse_float=Decimal)
    by = {e['id']: e['pricing'] for e in d['data']}
    raw = res.body.decode()
    for alias, (_, pin, pout, pc, pw, _) in MODELS.items():
        pr = by[alias]
        for key, want in (('cached_input_usd_per_1m', pc), ('cache_write_usd_per_1m', pw)):
            assert key in pr, (alias, pr)
            if want is None:
                assert pr[key] is None, (alias, key, pr)
            else:
                assert Decimal(pr[key]) == Decimal(want), (alias, key, pr)
                # written like the input price is (a JSON number or string alike)
                assert type(pr[key]) is type(pr['input_usd_per_1m']), (alias, pr)
    ent = raw[raw.index('"id":"claude-sonnet-4-5"'):]
    ent = ent[:ent.index('}}') + 2]
    q = '"' if ent.split('"input_usd_per_1m":')[1].startswith('"') else ''
    assert '"cached_input_usd_per_1m":%s0.30%s' % (q, q) in ent, ent
    assert '"cache_write_usd_per_1m":%s3.75%s' % (q, q) in ent, ent


def test_wire_ledger_report_and_verify_count_cache_buckets(env):
    m, r = wire_relay(env)
    wantc = [('anthropic_message_cache_read_write.http', MSG, 'claude-sonnet-4-5', False,
              (3, 98304, 2051, 512)),
             ('openai_chat_cached_reasoning.http', CHAT, 'o4-mini', False, (86, 1920, 0, 300)),
             ('openai_chat.http', CHAT, 'gpt-4o', False, (19, 0, 0, 10))]
    total = 0
    for c in wantc:
        total += replay(r, c)
    r.stop()
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'acme CNY -%s' % fmt2(total) in p.stdout, (p.stdout, fmt2(total))
    p = subprocess.run([RELAY, 'ledger', 'report', 'relay-ledger.jsonl', '--by', 'model'],
                       cwd=r.workdir, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    head = lines[0]
    total_row = [l for l in lines if l.startswith('total')][0]

    def column(label):
        """The cell of the total row under a header label (cells are
        right-aligned, two spaces apart; a label may have one space)."""
        end = head.lower().index(label)
        while end < len(head) and head[end:end + 2] != '  ':
            end += 1
        return total_row[:end].split()[-1]
    assert 'cached' in head.lower() and 'write' in head.lower(), head
    ins = sum(c[4][0] for c in wantc)
    outs = sum(c[4][3] for c in wantc)
    assert column('in tokens') == str(ins), (column('in tokens'), p.stdout)
    assert column('out tokens') == str(outs), p.stdout
    assert column('cached') == str(98304 + 1920), p.stdout
    assert column('write') == str(2051), p.stdout


# ---- video tasks ------------------------------------------------------------------------------

def test_wire_ark_video_task_charged_from_the_task_object(env):
    m, r = wire_relay(env, models=PLAIN)
    body = json.dumps({'model': 'doubao-seedance', 'content': [
        {'type': 'text', 'text': 'A kitten yawning at the camera --rs 1080p --dur 5'}]}).encode()
    a = ask(r, '/v1/contents/generations/tasks', body, {'x-mock-file': 'ark_video_task_created.http'})
    assert a.status == 200 and json.loads(bytes(a.body)) == {'id': wire.TASK_ID}, a.body
    lines = raw_lines(r)
    assert len(lines) == 1
    assert_line(lines[0], b'{' + TS + b',"type":"task","id":"' + wire.TASK_ID.encode() +
                b'","wallet":"acme","model":"doubao-seedance","route":'
                b'"ark/doubao-seedance-1-0-pro-250528","cred":"ark#1","prev":"0{64}"}')
    s = connect(r.port)
    s.sendall(('GET /v1/contents/generations/tasks/%s HTTP/1.1\r\nHost: x\r\n'
               'Authorization: Bearer %s\r\nx-mock-file: ark_video_task_succeeded.http\r\n'
               'Connection: close\r\n\r\n' % (wire.TASK_ID, KEY)).encode())
    res = read_response(s)
    s.close()
    assert res.status == 200
    assert res.body == parse_answer(file_bytes('ark_video_task_succeeded.http'))[1]
    rid = res.header('x-request-id')
    pat, _ = charge_pattern(rid, 'doubao-seedance', 0, 0, 0, 246840, task=wire.TASK_ID,
                            models=PLAIN)
    assert_line(new_line(r, 0), pat)
    check_chain(r)
