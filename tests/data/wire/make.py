#!/usr/bin/env python3
"""Writes the wire corpus: complete HTTP answers (status line, head, body
as framed on the wire) in the shapes each provider documents, written by
this project. The mock upstream serves them byte for byte (x-mock-file).

  python3 tests/data/wire/make.py           rewrite the committed files here
  python3 tests/data/wire/make.py --big DIR write the big ones into DIR
                                            (generated at test time, not committed)

Every Content-Length and chunk size is computed here, so a file can be
edited in this script and regenerated; the token counts in each body are
the provider's word that the tests check the ledger against (by hand, in
tests/e2e/test_wire.py, never by reading these files back)."""
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATE = 'Tue, 03 Jun 2025 10:00:00 GMT'


# ---- framing -----------------------------------------------------------------

def answer(head, body, status='HTTP/1.1 200 OK', chunks=None):
    """head: list of 'Name: value' lines; the framing field goes where
    None stands. chunks: None for Content-Length, else a list of body
    pieces (their concatenation is body) sent as chunks, or an int list
    of chunk sizes repeated over the body."""
    if isinstance(body, str):
        body = body.encode()
    lines = []
    for h in head:
        if h is None:
            lines.append('Content-Length: %d' % len(body) if chunks is None
                         else 'Transfer-Encoding: chunked')
        else:
            lines.append(h)
    out = (status + '\r\n' + ''.join(l + '\r\n' for l in lines) + '\r\n').encode()
    if chunks is None:
        return out + body
    return out + chunked(body, chunks)


def chunked(body, chunks):
    if chunks and isinstance(chunks[0], int):
        pieces, i, k = [], 0, 0
        while i < len(body):
            n = chunks[k % len(chunks)]
            pieces.append(body[i:i + n])
            i += n
            k += 1
    else:
        pieces = [p.encode() if isinstance(p, str) else p for p in chunks]
        assert b''.join(pieces) == body
    return b''.join(b'%x\r\n%s\r\n' % (len(p), p) for p in pieces if p) + b'0\r\n\r\n'


def sse_answer(head, events, sizes=None, max_chunk=None):
    """SSE events (bytes, each with its blank line): one chunk per event
    (split at max_chunk), or chunks of the given sizes across events."""
    events = [e.encode() if isinstance(e, str) else e for e in events]
    body = b''.join(events)
    if sizes:
        return answer(head, body, chunks=sizes)
    pieces = []
    for e in events:
        step = max_chunk or len(e)
        pieces += [e[i:i + step] for i in range(0, len(e), step)]
    return answer(head, body, chunks=pieces)


def j(obj):
    """Compact JSON the way OpenAI and Anthropic send it (UTF-8 raw)."""
    return json.dumps(obj, separators=(',', ':'), ensure_ascii=False)


def data(obj, nl='\n'):
    return 'data: ' + j(obj) + nl + nl


def ev(name, obj, nl='\n'):
    return 'event: ' + name + nl + 'data: ' + j(obj) + nl + nl


# ---- heads -------------------------------------------------------------------

OPENAI = [
    'Date: ' + DATE, 'Content-Type: application/json', None, 'Connection: keep-alive',
    'access-control-expose-headers: X-Request-ID', 'openai-organization: user-relaytest',
    'openai-processing-ms: 412', 'openai-project: proj_RelayTest00000000000000',
    'openai-version: 2020-10-01', 'x-envoy-upstream-service-time: 415',
    'x-ratelimit-limit-requests: 10000', 'x-ratelimit-limit-tokens: 30000000',
    'x-ratelimit-remaining-requests: 9999', 'x-ratelimit-remaining-tokens: 29999981',
    'x-ratelimit-reset-requests: 6ms', 'x-ratelimit-reset-tokens: 0s',
    'x-request-id: req_4f6a0d7e2b9c41d5a8e3f1b2c7d9e0a1',
    'strict-transport-security: max-age=31536000; includeSubDomains; preload',
    'cf-cache-status: DYNAMIC', 'X-Content-Type-Options: nosniff', 'Server: cloudflare',
    'CF-RAY: 94a1b2c3d4e5f607-SJC', 'alt-svc: h3=":443"; ma=86400']
OPENAI_SSE = [h.replace('application/json', 'text/event-stream; charset=utf-8')
              if h else h for h in OPENAI]

ANTHROPIC = [
    'Date: ' + DATE, 'Content-Type: application/json', None, 'Connection: keep-alive',
    'anthropic-ratelimit-input-tokens-limit: 2000000',
    'anthropic-ratelimit-input-tokens-remaining: 1999000',
    'anthropic-ratelimit-input-tokens-reset: 2025-06-03T10:00:01Z',
    'anthropic-ratelimit-output-tokens-limit: 400000',
    'anthropic-ratelimit-output-tokens-remaining: 399000',
    'anthropic-ratelimit-output-tokens-reset: 2025-06-03T10:00:01Z',
    'request-id: req_011CPkz3x9Qe8sJ2RelayTest', 'anthropic-organization-id: 00000000-0000-4000-8000-000000000000',
    'via: 1.1 google', 'cf-cache-status: DYNAMIC', 'X-Robots-Tag: none', 'Server: cloudflare',
    'CF-RAY: 94a1b2c3d4e5f608-SJC']
ANTHROPIC_SSE = [h.replace('application/json', 'text/event-stream; charset=utf-8')
                 if h else h for h in ANTHROPIC] + ['Cache-Control: no-cache']

AZURE_SSE = [
    'Content-Type: text/event-stream; charset=utf-8', None, 'Connection: keep-alive',
    'Cache-Control: no-cache, must-revalidate', 'access-control-allow-origin: *',
    'apim-request-id: 6a8d3c2e-1f4b-4e59-9a7c-0b2d4e6f8a10',
    'Strict-Transport-Security: max-age=31536000; includeSubDomains; preload',
    'x-content-type-options: nosniff', 'x-ms-region: East US 2',
    'x-ratelimit-remaining-requests: 249', 'x-ratelimit-remaining-tokens: 249980',
    'x-ms-rai-invoked: true', 'x-request-id: 0d2f6b1a-7c3e-4a58-9b21-3e4f5a6b7c8d',
    'x-ms-client-request-id: 6a8d3c2e-1f4b-4e59-9a7c-0b2d4e6f8a10',
    'azureml-model-session: d158-20250527044113', 'x-ms-deployment-name: gpt-4o',
    'Date: ' + DATE]

DEEPSEEK = [
    'Date: ' + DATE, 'Content-Type: application/json', None, 'Connection: keep-alive',
    'vary: origin, access-control-request-method, access-control-request-headers',
    'access-control-allow-credentials: true', 'x-ds-trace-id: 8c1f0e2d4b6a49f3a5d7c9e1b3f5a7c9',
    'Strict-Transport-Security: max-age=31536000; includeSubDomains; preload',
    'X-Content-Type-Options: nosniff', 'Server: CW']
DEEPSEEK_SSE = [h.replace('application/json', 'text/event-stream; charset=utf-8')
                if h else h for h in DEEPSEEK] + ['Cache-Control: no-cache']

ARK = [
    'Server: istio-envoy', 'Date: ' + DATE, 'Content-Type: application/json', None,
    'Connection: keep-alive', 'x-client-request-id: unknown-20250603100000-RelayTest',
    'x-envoy-upstream-service-time: 1873',
    'x-request-id: 0217489448000000000000000000000000000000000000000000000',
    'X-Tt-Logid: 20250603100000D0D0D0D0D0D0D0D0D0D0']

UVICORN = ['date: ' + DATE, 'server: uvicorn', None, 'content-type: application/json']
UVICORN_SSE = ['date: ' + DATE, 'server: uvicorn', 'cache-control: no-cache',
               'connection: keep-alive', 'x-accel-buffering: no',
               'content-type: text/event-stream; charset=utf-8', None]


# ---- OpenAI ------------------------------------------------------------------

CHAT_ID = 'chatcmpl-Bx3kQ7nV0c2mZ8pL4rT6yW1aE9sD5'


def chat_body(usage, content='Hello! How can I help you today?', model='gpt-4o-2024-08-06'):
    """A chat completion with usage given as JSON text (so a test can
    put any bytes there)."""
    return ('{"id":"%s","object":"chat.completion","created":1748944800,"model":"%s",'
            '"choices":[{"index":0,"message":{"role":"assistant","content":%s,"refusal":null,'
            '"annotations":[]},"logprobs":null,"finish_reason":"stop"}],"usage":%s,'
            '"service_tier":"default","system_fingerprint":"fp_07871e2ad8"}'
            % (CHAT_ID, model, j(content), usage))


def openai_chat(usage):
    return answer(OPENAI, chat_body(usage))


def completion_details(reasoning=0):
    return {'reasoning_tokens': reasoning, 'audio_tokens': 0, 'accepted_prediction_tokens': 0,
            'rejected_prediction_tokens': 0}


def chunk(delta=None, finish=None, usage=None, choices=True, model='gpt-4o-2024-08-06',
          obf='GQ'):
    c = {'id': 'chatcmpl-Bx3kRa9m2Vn7cQ4pZ8wL1sT6yE0uD', 'object': 'chat.completion.chunk',
         'created': 1748944800, 'model': model, 'service_tier': 'default',
         'system_fingerprint': 'fp_07871e2ad8',
         'choices': [{'index': 0, 'delta': delta if delta is not None else {},
                      'logprobs': None, 'finish_reason': finish}] if choices else [],
         'usage': usage}
    if obf:
        c['obfuscation'] = obf
    return c


STREAM_TEXT = ['Hello', '!', ' Caf\u00e9', ' au', ' lait', ' costs', ' \u20ac3', '.', '\n',
               'Enjoy', ' "it"', '.']


def openai_chat_stream(texts=STREAM_TEXT, usage=None):
    events = [data(chunk({'role': 'assistant', 'content': '', 'refusal': None}))]
    events += [data(chunk({'content': t}, obf='x' * (i % 4 + 1))) for i, t in enumerate(texts)]
    events.append(data(chunk({}, 'stop', obf='Zk')))
    events.append(data(chunk(choices=False, usage=usage, obf='Rq')))
    events.append('data: [DONE]\n\n')
    return events


STREAM_USAGE = {'prompt_tokens': 1117, 'completion_tokens': 46, 'total_tokens': 1163,
                'prompt_tokens_details': {'cached_tokens': 1024, 'audio_tokens': 0},
                'completion_tokens_details': completion_details()}

TOOL_ARGS = ['{"', 'location', '":"', 'Paris', ',', ' France', '","', 'unit', '":"', 'c', '"}']


def openai_chat_stream_tools():
    first = {'role': 'assistant', 'content': None, 'tool_calls': [
        {'index': 0, 'id': 'call_DdmO9pD3xa9XTPNJ32zg2hcA', 'type': 'function',
         'function': {'name': 'get_weather', 'arguments': ''}}], 'refusal': None}
    events = [data(chunk(first))]
    events += [data(chunk({'tool_calls': [{'index': 0, 'function': {'arguments': a}}]}))
               for a in TOOL_ARGS]
    events.append(data(chunk({}, 'tool_calls')))
    events.append(data(chunk(choices=False, usage={
        'prompt_tokens': 82, 'completion_tokens': 18, 'total_tokens': 100,
        'prompt_tokens_details': {'cached_tokens': 0, 'audio_tokens': 0},
        'completion_tokens_details': completion_details()})))
    events.append('data: [DONE]\n\n')
    return events


def responses_object(status, output, usage, tools=(), model='gpt-4.1-2025-04-14',
                     rid='resp_67ccd3a9da748190baa7f1570fe91ac604becb25c45c1d41',
                     metadata=None):
    return {
        'id': rid, 'object': 'response', 'created_at': 1748944800, 'status': status,
        'background': False, 'error': None, 'incomplete_details': None, 'instructions': None,
        'max_output_tokens': None, 'model': model, 'output': output,
        'parallel_tool_calls': True, 'previous_response_id': None,
        'reasoning': {'effort': None, 'summary': None}, 'service_tier': 'default',
        'store': True, 'temperature': 1.0, 'text': {'format': {'type': 'text'}},
        'tool_choice': 'auto', 'tools': list(tools), 'top_p': 1.0, 'truncation': 'disabled',
        'usage': usage, 'user': None, 'metadata': metadata if metadata is not None else {}}


def message_item(text, status='completed', mid='msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41'):
    return {'type': 'message', 'id': mid, 'status': status, 'role': 'assistant',
            'content': [{'type': 'output_text', 'text': text, 'annotations': [], 'logprobs': []}]
            if text is not None else []}


def responses_usage(inp, cached, out, reasoning=0):
    return {'input_tokens': inp, 'input_tokens_details': {'cached_tokens': cached},
            'output_tokens': out, 'output_tokens_details': {'reasoning_tokens': reasoning},
            'total_tokens': inp + out}


RESP_TEXT = ('The relay meters every token: cached input at its own price, the rest '
             'of the prompt at the input price.')

# A tool whose parameters have a property named "usage" (and an example
# with counts in it): none of it is the answer's usage.
USAGE_TOOL = {
    'type': 'function', 'name': 'record_usage',
    'description': 'Store the token usage of a call',
    'parameters': {
        'type': 'object',
        'properties': {'usage': {'type': 'object', 'properties': {
            'input_tokens': {'type': 'integer'}, 'output_tokens': {'type': 'integer'}},
            'required': ['input_tokens', 'output_tokens']}},
        'required': ['usage'],
        'examples': [{'usage': {'input_tokens': 1, 'output_tokens': 1}}]},
    'strict': False}

RESP_DELTAS = ['Stored', ' the', ' usage', ': 1', ' in', ', 1', ' out', ' \u2713', '.']


def responses_stream(deltas=RESP_DELTAS, usage=None, tools=(USAGE_TOOL,), big_text=None,
                     nl='\n'):
    text = big_text if big_text is not None else ''.join(deltas)
    usage = usage or responses_usage(328, 0, 12)
    seq = [0]

    def e(name, obj):
        obj = dict(type=name, sequence_number=seq[0], **obj)
        seq[0] += 1
        return ev(name, obj, nl)
    item_id = 'msg_67ccd3acc8d48190a77525dc6de64b4104becb25c45c1d41'
    events = [
        e('response.created', {'response': responses_object('in_progress', [], None, tools)}),
        e('response.in_progress', {'response': responses_object('in_progress', [], None, tools)}),
        e('response.output_item.added', {'output_index': 0, 'item': message_item(None, 'in_progress')}),
        e('response.content_part.added', {'item_id': item_id, 'output_index': 0, 'content_index': 0,
                                          'part': {'type': 'output_text', 'annotations': [],
                                                   'logprobs': [], 'text': ''}}),
    ]
    events += [e('response.output_text.delta', {'item_id': item_id, 'output_index': 0,
                                                'content_index': 0, 'delta': d, 'logprobs': []})
               for d in deltas]
    events += [
        e('response.output_text.done', {'item_id': item_id, 'output_index': 0, 'content_index': 0,
                                        'text': text, 'logprobs': []}),
        e('response.content_part.done', {'item_id': item_id, 'output_index': 0, 'content_index': 0,
                                         'part': {'type': 'output_text', 'annotations': [],
                                                  'logprobs': [], 'text': text}}),
        e('response.output_item.done', {'output_index': 0, 'item': message_item(text)}),
        e('response.completed', {'response': responses_object('completed', [message_item(text)],
                                                              usage, tools)}),
    ]
    return events


def openai_embeddings():
    return answer(OPENAI, j({'object': 'list', 'data': [
        {'object': 'embedding', 'index': 0,
         'embedding': [-0.006929283, -0.005336422, 0.024047505, -0.003570515, 0.0112345]}],
        'model': 'text-embedding-3-small', 'usage': {'prompt_tokens': 8, 'total_tokens': 8}}))


PNG_1X1 = ('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5E'
           'rkJggg==')


def openai_images():
    return answer(OPENAI, j({
        'created': 1748944800, 'background': 'opaque', 'data': [{'b64_json': PNG_1X1}],
        'output_format': 'png', 'quality': 'low', 'size': '1024x1024',
        'usage': {'input_tokens': 50, 'input_tokens_details': {'image_tokens': 40, 'text_tokens': 10},
                  'output_tokens': 272, 'total_tokens': 322}}))


# ---- Azure OpenAI --------------------------------------------------------------

SAFE = {'hate': {'filtered': False, 'severity': 'safe'},
        'self_harm': {'filtered': False, 'severity': 'safe'},
        'sexual': {'filtered': False, 'severity': 'safe'},
        'violence': {'filtered': False, 'severity': 'safe'}}
AZURE_TEXT = ['Sure', '!', ' Here', ' you', ' go', '.']


def azure_stream():
    base = {'created': 1748944800, 'id': 'chatcmpl-BdAzUre0kL3mN5pQ7rS9tU1vW3xY5',
            'model': 'gpt-4o-2024-11-20', 'object': 'chat.completion.chunk',
            'system_fingerprint': 'fp_ee1d74bde0'}

    def c(choices, **extra):
        d = {'choices': choices}
        d.update(base)
        d.update(extra)
        return data(d)
    prompt_filter = {'choices': [], 'created': 0, 'id': '', 'model': '', 'object': '',
                     'prompt_filter_results': [{'prompt_index': 0, 'content_filter_results': dict(
                         SAFE, jailbreak={'filtered': False, 'detected': False})}]}
    events = [data(prompt_filter),
              c([{'content_filter_results': {}, 'delta': {'content': '', 'refusal': None,
                                                          'role': 'assistant'},
                  'finish_reason': None, 'index': 0, 'logprobs': None}])]
    events += [c([{'content_filter_results': SAFE, 'delta': {'content': t},
                   'finish_reason': None, 'index': 0, 'logprobs': None}]) for t in AZURE_TEXT]
    events.append(c([{'content_filter_results': {}, 'delta': {}, 'finish_reason': 'stop',
                      'index': 0, 'logprobs': None}]))
    events.append(c([{'content_filter_offsets': {'check_offset': 35, 'start_offset': 35,
                                                 'end_offset': 61},
                      'content_filter_results': SAFE, 'finish_reason': None, 'index': 0}]))
    events.append(c([], usage={
        'completion_tokens': 12, 'completion_tokens_details': {
            'accepted_prediction_tokens': 0, 'audio_tokens': 0, 'reasoning_tokens': 0,
            'rejected_prediction_tokens': 0},
        'prompt_tokens': 20, 'prompt_tokens_details': {'audio_tokens': 0, 'cached_tokens': 0},
        'total_tokens': 32}))
    events.append('data: [DONE]\n\n')
    return events


# ---- Anthropic ---------------------------------------------------------------

CLAUDE = 'claude-sonnet-4-5-20250929'


def anthropic_message(usage, text="I've cached the whole manual; ask me anything about it."):
    return answer(ANTHROPIC, j({
        'id': 'msg_01XFDUDYJgAACzvnptvVoYEL', 'type': 'message', 'role': 'assistant',
        'model': CLAUDE, 'content': [{'type': 'text', 'text': text}],
        'stop_reason': 'end_turn', 'stop_sequence': None, 'usage': usage}))


def an_usage(inp, cw, cr, out, **extra):
    u = {'input_tokens': inp, 'cache_creation_input_tokens': cw, 'cache_read_input_tokens': cr,
         'cache_creation': {'ephemeral_5m_input_tokens': cw, 'ephemeral_1h_input_tokens': 0},
         'output_tokens': out}
    u.update(extra)
    u['service_tier'] = 'standard'
    return u


def message_start(usage):
    return ev('message_start', {'type': 'message_start', 'message': {
        'id': 'msg_014p7gG3wDgGV9EUtLvnow3U', 'type': 'message', 'role': 'assistant',
        'model': CLAUDE, 'content': [], 'stop_reason': None, 'stop_sequence': None,
        'usage': usage}})


PING = 'event: ping\ndata: {"type": "ping"}\n\n'
AN_TEXT = ['Okay', ',', ' let', "'s", ' check', ' the', ' weather', ' in', ' Z\u00fcrich', '.']
AN_JSON = ['', '{"location":', ' "Z\u00fcr', 'ich, CH"', ', "unit": "c', 'elsius"}']


def text_deltas(texts, index=0):
    return [ev('content_block_delta', {'type': 'content_block_delta', 'index': index,
                                       'delta': {'type': 'text_delta', 'text': t}}) for t in texts]


def block_start(index, block):
    return ev('content_block_start', {'type': 'content_block_start', 'index': index,
                                      'content_block': block})


def block_stop(index):
    return ev('content_block_stop', {'type': 'content_block_stop', 'index': index})


def message_delta(stop, out):
    return ev('message_delta', {'type': 'message_delta',
                                'delta': {'stop_reason': stop, 'stop_sequence': None},
                                'usage': {'output_tokens': out}})


STOP = ev('message_stop', {'type': 'message_stop'})


def anthropic_stream():
    events = [message_start(an_usage(472, 1024, 20480, 1)),
              block_start(0, {'type': 'text', 'text': ''}), PING]
    events += text_deltas(AN_TEXT)
    events += [block_stop(0),
               block_start(1, {'type': 'tool_use', 'id': 'toolu_01T1x1fJ34qAmk2tNTrN7Up6',
                               'name': 'get_weather', 'input': {}})]
    events += [ev('content_block_delta', {'type': 'content_block_delta', 'index': 1,
                                          'delta': {'type': 'input_json_delta', 'partial_json': p}})
               for p in AN_JSON]
    events += [block_stop(1), PING, message_delta('tool_use', 89), STOP]
    return events


AN_THINK = ['Let me solve this step by step:\n\n1. First break down 27 * 453',
            '\n2. 453 = 400 + 50 + 3', '\n3. 27 * 400 = 10,800; 27 * 50 = 1,350; 27 * 3 = 81']
AN_SIGNATURE = ('EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds9pXyPBR2H1qP5zXc8vG4YmW'
                'kT1rN0eJ3bLq7sD9fH2gK5mA8uC6wX1yZ4oV7iQ3tR0nE8pS2dF6hJ9kL1mB4vC7xZ==')
AN_THINK_TEXT = ['27 * 453 = ', '12,231']


def anthropic_stream_thinking():
    events = [message_start(an_usage(50, 0, 0, 4)),
              block_start(0, {'type': 'thinking', 'thinking': '', 'signature': ''})]
    events += [ev('content_block_delta', {'type': 'content_block_delta', 'index': 0,
                                          'delta': {'type': 'thinking_delta', 'thinking': t}})
               for t in AN_THINK]
    events += [ev('content_block_delta', {'type': 'content_block_delta', 'index': 0,
                                          'delta': {'type': 'signature_delta',
                                                    'signature': AN_SIGNATURE}}),
               block_stop(0), block_start(1, {'type': 'text', 'text': ''})]
    events += text_deltas(AN_THINK_TEXT, 1)
    events += [block_stop(1), message_delta('end_turn', 312), STOP]
    return events


AN_OVERLOADED_TEXT = ['Sure', ', here', ' is']


def anthropic_stream_overloaded():
    events = [message_start(an_usage(30, 0, 0, 1)),
              block_start(0, {'type': 'text', 'text': ''}), PING]
    events += text_deltas(AN_OVERLOADED_TEXT)
    events.append('event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", '
                  '"message": "Overloaded"}}\n\n')
    return events


# ---- DeepSeek ------------------------------------------------------------------

def deepseek_chat():
    body = j({'id': '5f7c2b1e-3a4d-4e6f-8a9b-0c1d2e3f4a5b', 'object': 'chat.completion',
              'created': 1748944800, 'model': 'deepseek-reasoner',
              'choices': [{'index': 0, 'message': {
                  'role': 'assistant', 'content': '9.11 is smaller than 9.8.',
                  'reasoning_content': 'Compare the tenths: 1 < 8, so 9.11 < 9.8.'},
                  'logprobs': None, 'finish_reason': 'stop'}],
              'usage': {'prompt_tokens': 1536, 'completion_tokens': 420, 'total_tokens': 1956,
                        'prompt_tokens_details': {'cached_tokens': 1024},
                        'completion_tokens_details': {'reasoning_tokens': 300},
                        'prompt_cache_hit_tokens': 1024, 'prompt_cache_miss_tokens': 512},
              'system_fingerprint': 'fp_393bca965e_prod0623_fp8_kvcache'})
    # While a request waits in the queue DeepSeek sends empty lines ahead
    # of the JSON (legal white space before the value).
    return answer(DEEPSEEK, '\n\n' + body, chunks=['\n', '\n', body])


DS_REASONING = ['Compare', ' the', ' tenths', ':', ' 1 < 8.']
DS_TEXT = ['9.11', ' is', ' smaller', '.']


def deepseek_stream():
    def c(delta, finish=None, usage=None):
        d = {'id': '5f7c2b1e-3a4d-4e6f-8a9b-0c1d2e3f4a5c', 'object': 'chat.completion.chunk',
             'created': 1748944800, 'model': 'deepseek-reasoner',
             'system_fingerprint': 'fp_393bca965e_prod0623_fp8_kvcache',
             'choices': [{'index': 0, 'delta': delta, 'logprobs': None, 'finish_reason': finish}]}
        if usage:
            d['usage'] = usage
        return data(d)
    events = [': keep-alive\n\n', ': keep-alive\n\n',
              c({'role': 'assistant', 'content': None, 'reasoning_content': ''})]
    events += [c({'content': None, 'reasoning_content': t}) for t in DS_REASONING]
    events += [c({'content': t, 'reasoning_content': None}) for t in DS_TEXT]
    # usage rides on the last chunk, whose choices are not empty
    events.append(c({'content': '', 'reasoning_content': None}, 'stop', {
        'prompt_tokens': 81, 'completion_tokens': 150, 'total_tokens': 231,
        'prompt_cache_hit_tokens': 64, 'prompt_cache_miss_tokens': 17}))
    events.append('data: [DONE]\n\n')
    return events


# ---- Volcengine Ark ------------------------------------------------------------

TASK_ID = 'cgt-20250603100000-x7k2p'


def ark_chat():
    return answer(ARK, j({
        'choices': [{'finish_reason': 'stop', 'index': 0, 'logprobs': None,
                     'message': {'content': '\u4f60\u597d\uff01\u6709\u4ec0\u4e48\u53ef\u4ee5'
                                            '\u5e2e\u4f60\u7684\u5417\uff1f', 'role': 'assistant'}}],
        'created': 1748944800, 'id': '0217489448000000cfa43dc3f3683b1de1c09624ff49085a456ac',
        'model': 'doubao-1-5-pro-32k-250115', 'service_tier': 'default', 'object': 'chat.completion',
        'usage': {'completion_tokens': 9, 'prompt_tokens': 19, 'total_tokens': 28,
                  'prompt_tokens_details': {'cached_tokens': 0},
                  'completion_tokens_details': {'reasoning_tokens': 0}}}))


def ark_task_created():
    return answer(ARK, j({'id': TASK_ID}))


def ark_task_succeeded():
    return answer(ARK, j({
        'id': TASK_ID, 'model': 'doubao-seedance-1-0-pro-250528', 'status': 'succeeded',
        'content': {'video_url': 'https://ark-content-generation-cn-beijing.tos-cn-beijing.'
                                 'volces.com/doubao-seedance-1-0-pro/0217489448.mp4'
                                 '?X-Tos-Algorithm=TOS4-HMAC-SHA256&X-Tos-Expires=86400'},
        'usage': {'completion_tokens': 246840, 'total_tokens': 246840},
        'created_at': 1748944800, 'updated_at': 1748944863, 'seed': 58944,
        'resolution': '1080p', 'ratio': '16:9', 'duration': 5, 'framespersecond': 24}))


# ---- an OpenAI-compatible Python server (vLLM / FastAPI style) ----------------

def py(obj, **kw):
    """Python's json.dumps defaults: ", " and ": ", ASCII with \\u escapes."""
    return json.dumps(obj, **kw)


def vllm_chat_pretty():
    body = py({'id': 'chatcmpl-9f2c4e6a8b0d4f1e9a3c5e7b9d1f3a5c', 'object': 'chat.completion',
               'created': 1748944800, 'model': 'Qwen/Qwen2.5-7B-Instruct',
               'choices': [{'index': 0, 'message': {
                   'role': 'assistant', 'reasoning_content': None,
                   'content': 'Caf\u00e9 au lait \u2014 "hot"\nand sweet.', 'tool_calls': []},
                   'logprobs': None, 'finish_reason': 'stop', 'stop_reason': None}],
               'usage': {'prompt_tokens': 17, 'total_tokens': 45, 'completion_tokens': 28,
                         'prompt_tokens_details': None},
               'prompt_logprobs': None}, indent=2) + '\n'
    return answer(UVICORN, body)


VLLM_TEXT = ['Caf\u00e9', ' au lait', ' \u2014', ' "hot"', '\n', 'and', ' sweet', '.']
VLLM_BASE = {'id': 'chatcmpl-9f2c4e6a8b0d4f1e9a3c5e7b9d1f3a5d', 'object': 'chat.completion.chunk',
             'created': 1748944800, 'model': 'Qwen/Qwen2.5-7B-Instruct'}


def vllm_chunk(choices, **extra):
    d = dict(VLLM_BASE, choices=choices)
    d.update(extra)
    return py(d)


def vllm_stream():
    """SSE the way sse-starlette writes it (CRLF, ': ping' comments), with
    the variations the SSE rules allow: 'data:' without the space, an id
    line, a retry line, data split over two lines."""
    def ch(t):
        return vllm_chunk([{'index': 0, 'delta': {'content': t}, 'logprobs': None,
                            'finish_reason': None}])
    N = '\r\n'
    events = ['retry: 3000' + N + N,
              ': ping - 2025-06-03 10:00:00.000000+00:00' + N + N,
              'data:' + vllm_chunk([{'index': 0, 'delta': {'role': 'assistant', 'content': ''},
                                     'logprobs': None, 'finish_reason': None}]) + N + N]
    for i, t in enumerate(VLLM_TEXT):
        if i == 2:
            events.append('id: 7' + N + 'data: ' + ch(t) + N + N)
        elif i == 4:
            s = ch(t)
            cut = s.index('"choices"')
            events.append('data: ' + s[:cut] + N + 'data: ' + s[cut:] + N + N)
        elif i % 2:
            events.append('data:' + ch(t) + N + N)
        else:
            events.append('data: ' + ch(t) + N + N)
        if i == 5:
            events.append(': ping - 2025-06-03 10:00:15.000000+00:00' + N + N)
    events.append('data: ' + vllm_chunk([{'index': 0, 'delta': {}, 'logprobs': None,
                                          'finish_reason': 'stop', 'stop_reason': None}]) + N + N)
    events.append('data: ' + vllm_chunk([], usage={'prompt_tokens': 17, 'total_tokens': 45,
                                                   'completion_tokens': 28}) + N + N)
    events.append('data: [DONE]' + N + N)
    return events


# ---- the files -----------------------------------------------------------------

def files():
    return {
        'openai_chat.http': openai_chat(j({
            'prompt_tokens': 19, 'completion_tokens': 10, 'total_tokens': 29,
            'prompt_tokens_details': {'cached_tokens': 0, 'audio_tokens': 0},
            'completion_tokens_details': completion_details()})),
        'openai_chat_cached_reasoning.http': answer(OPENAI, chat_body(j({
            'prompt_tokens': 2006, 'completion_tokens': 300, 'total_tokens': 2306,
            'prompt_tokens_details': {'cached_tokens': 1920, 'audio_tokens': 0},
            'completion_tokens_details': completion_details(192)}),
            content='The answer is 42.', model='o4-mini-2025-04-16')),
        'openai_chat_stream_usage.http': sse_answer(OPENAI_SSE, openai_chat_stream(
            usage=STREAM_USAGE)),
        'openai_chat_stream_tools.http': sse_answer(OPENAI_SSE, openai_chat_stream_tools()),
        'openai_responses.http': answer(OPENAI, j(responses_object(
            'completed', [message_item(RESP_TEXT)], responses_usage(5000, 4864, 120)))),
        'openai_responses_stream_usage_schema.http': sse_answer(OPENAI_SSE, responses_stream()),
        'openai_responses_input_tokens.http': answer(OPENAI, j({
            'object': 'response.input_tokens', 'input_tokens': 11})),
        'openai_embeddings.http': openai_embeddings(),
        'openai_images_gpt_image.http': openai_images(),
        'azure_chat_stream_content_filter.http': sse_answer(AZURE_SSE, azure_stream()),
        'anthropic_message_cache_write.http': anthropic_message(an_usage(21, 100000, 0, 393)),
        'anthropic_message_cache_read_write.http': anthropic_message(
            an_usage(3, 2051, 98304, 512, server_tool_use={'web_search_requests': 0}),
            text='From the cached manual: the relay debits in nano-units.'),
        'anthropic_stream.http': sse_answer(ANTHROPIC_SSE, anthropic_stream()),
        'anthropic_stream_thinking.http': sse_answer(ANTHROPIC_SSE, anthropic_stream_thinking()),
        'anthropic_stream_overloaded.http': sse_answer(ANTHROPIC_SSE,
                                                       anthropic_stream_overloaded()),
        'anthropic_count_tokens.http': answer(ANTHROPIC, j({'input_tokens': 2095})),
        'deepseek_chat_reasoner.http': deepseek_chat(),
        'deepseek_chat_reasoner_stream.http': sse_answer(DEEPSEEK_SSE, deepseek_stream()),
        'ark_chat.http': ark_chat(),
        'ark_video_task_created.http': ark_task_created(),
        'ark_video_task_succeeded.http': ark_task_succeeded(),
        'vllm_chat_pretty.http': vllm_chat_pretty(),
        'vllm_chat_stream_crlf.http': sse_answer(UVICORN_SSE, vllm_stream(),
                                                 sizes=[1, 7, 64, 3, 250, 13, 2, 97]),
    }


# ---- big ones (made at test time) ---------------------------------------------

BIG_WORDS = ('relay ', 'meters ', 'every ', 'token ', 'exactly; ', 'caf\u00e9 ', '\u6570\u636e ',
             '"quoted" ', 'line\n')


def big_text(size):
    out, n, i = [], 0, 0
    while n < size:
        w = BIG_WORDS[i % len(BIG_WORDS)]
        out.append(w)
        n += len(w.encode())
        i += 1
    return ''.join(out)


BIG_CHAT_TAIL = [' and', ' that', ' is', ' all', '.']


def big_files():
    text40 = big_text(40 * 1024)
    chat = [data(chunk({'role': 'assistant', 'content': '', 'refusal': None})),
            data(chunk({'content': text40}))]
    chat += [data(chunk({'content': t})) for t in BIG_CHAT_TAIL]
    chat += [data(chunk({}, 'stop')),
             data(chunk(choices=False, usage={
                 'prompt_tokens': 12, 'completion_tokens': 10008, 'total_tokens': 10020,
                 'prompt_tokens_details': {'cached_tokens': 0, 'audio_tokens': 0},
                 'completion_tokens_details': completion_details()})),
             'data: [DONE]\n\n']
    text3m = big_text(3 * 1024 * 1024)
    resp = responses_stream(deltas=['The', ' whole', ' text'], tools=(),
                            usage=responses_usage(37, 0, 20000), big_text=text3m)
    meta = {'k%02d' % i: ('v%02d-' % i) + 'm' * 508 for i in range(20)}
    meta['usage'] = 'input_tokens=1 output_tokens=1'
    body = j(responses_object('completed', [message_item('Short answer.')],
                              responses_usage(50, 16, 7), metadata=meta))
    return {
        'big_chat_stream_40k.http': sse_answer(OPENAI_SSE, chat),
        'big_responses_stream_3m.http': sse_answer(OPENAI_SSE, resp, max_chunk=65536),
        'big_responses_metadata_10k.http': answer(OPENAI, body),
    }


def write(d, fs):
    os.makedirs(d, exist_ok=True)
    for name, b in sorted(fs.items()):
        with open(os.path.join(d, name), 'wb') as f:
            f.write(b)


if __name__ == '__main__':
    if len(sys.argv) == 3 and sys.argv[1] == '--big':
        write(sys.argv[2], big_files())
    elif len(sys.argv) == 1:
        write(HERE, files())
    else:
        sys.exit(__doc__)
