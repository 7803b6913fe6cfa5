"""multipart/form-data bodies relayed streaming (SPEC §9): the model form
field picks the route and reaches the upstream rewritten to the upstream
id, every other byte arrives as the client sent it, a 50 MiB upload goes
through in bounded memory, a refused form is a 400 that says why and the
upstream never gets it whole, and the call is charged by its usage."""
import hashlib
import json
import os
import re
import struct
import subprocess
import wave
import zlib

import harness as h

UPLOAD_MODELS = [
    'model gpt-image-1 image 5.00 40.00 mock/gpt-image-1-2025-04-15',
    'model gpt-4o-transcribe text 2.50 10.00 mock/gpt-4o-transcribe-2025-03-20',
]


def start(env, extra='limits max_body=64m\npassthrough mock', models=None,
          providers=None, creds=('sk-upstream-1',)):
    env.start_mock()
    conf = h.config(env.mock.port, extra=extra, models=models or UPLOAD_MODELS,
                    providers=providers, creds=creds)
    return env.start_relay(conf, env=h.cred_env(creds))


def png_bytes(w=16, h_=16):
    """A real PNG: an opaque red square."""
    raw = b''.join(b'\x00' + bytes([200, 30, 30]) * w for _ in range(h_))

    def chunk(t, d):
        return (struct.pack('>I', len(d)) + t + d +
                struct.pack('>I', zlib.crc32(t + d) & 0xffffffff))
    return (b'\x89PNG\r\n\x1a\n' +
            chunk(b'IHDR', struct.pack('>IIBBBBB', w, h_, 8, 2, 0, 0, 0)) +
            chunk(b'IDAT', zlib.compress(raw)) + chunk(b'IEND', b''))


def write_wav(path, seconds=1):
    w = wave.open(path, 'wb')
    w.setnchannels(1)
    w.setsampwidth(2)
    w.setframerate(8000)
    w.writeframes(bytes(range(256)) * (16000 * seconds // 256))
    w.close()


def form(fields, boundary=b'relay-test-boundary-7d3f'):
    """A multipart/form-data body from (name, filename or None, bytes)."""
    out = []
    for name, filename, data in fields:
        disp = b'Content-Disposition: form-data; name="' + name + b'"'
        if filename:
            disp += b'; filename="' + filename + b'"\r\nContent-Type: application/octet-stream'
        out.append(b'--' + boundary + b'\r\n' + disp + b'\r\n\r\n' + data + b'\r\n')
    out.append(b'--' + boundary + b'--\r\n')
    return b''.join(out), 'multipart/form-data; boundary=' + boundary.decode()


def parts_of(head, body):
    """The parts of a multipart body the mock received: {name: bytes}."""
    m = re.search(rb'(?im)^content-type:\s*multipart/form-data;\s*boundary=("?)([^"\r\n]+)\1', head)
    assert m, head
    delim = b'--' + m.group(2)
    out = {}
    for piece in body.split(delim)[1:]:
        if piece.startswith(b'--'):
            break
        hdrs, _, data = piece[2:].partition(b'\r\n\r\n')
        name = re.search(rb'name="([^"]*)"', hdrs).group(1).decode()
        out[name] = data[:-2]  # the CRLF before the next delimiter
    return out


def header(head, name):
    m = re.search(rb'(?im)^' + name.encode() + rb':\s*([^\r\n]*)', head)
    return m and m.group(1).decode()


def post_form(port, path, body, ctype, chunked=False, timeout=120):
    """curl --data-binary of a prepared body; returns (status, body)."""
    args = ['curl', '-sS', '-o', '-', '-w', '\n%{http_code}',
            '-H', 'Authorization: Bearer ' + h.KEY, '-H', 'Content-Type: ' + ctype,
            '--data-binary', '@' + body]
    if chunked:
        args += ['-H', 'Transfer-Encoding: chunked']
    p = subprocess.run(args + ['http://127.0.0.1:%d%s' % (port, path)],
                       capture_output=True, timeout=timeout)
    status, _, rest = p.stdout[::-1].partition(b'\n')
    return int(status[::-1]), rest[::-1]


def charges(r):
    return [l for l in h.ledger_lines(r) if l.get('type') == 'charge']


def test_curl_image_edit_model_rewritten_file_bytes_identical(env):
    r = start(env)
    img = os.path.join(env.dir, 'square.png')
    with open(img, 'wb') as f:
        f.write(png_bytes())
    p = subprocess.run(['curl', '-sS', '-w', '\n%{http_code}',
                        '-H', 'Authorization: Bearer ' + h.KEY,
                        '-F', 'model=gpt-image-1', '-F', 'prompt=make it blue',
                        '-F', 'image=@' + img + ';type=image/png',
                        'http://127.0.0.1:%d/v1/images/edits' % r.port],
                       capture_output=True, timeout=30)
    body, _, status = p.stdout.rpartition(b'\n')
    assert status == b'200', p.stdout
    assert b'aGVsbG8gZnJvbSBtb2Nr' in body
    head, up = env.mock.last_raw()
    parts = parts_of(head, up)
    assert parts['model'] == b'gpt-image-1-2025-04-15', parts.get('model')
    assert parts['prompt'] == b'make it blue'
    assert parts['image'] == png_bytes()
    # The length the upstream was told is the rewritten body's.
    assert int(header(head, 'content-length')) == len(up)
    assert header(head, 'authorization') == 'Bearer sk-upstream-1'
    # Charged by the usage the image answer carries.
    c = charges(r)
    assert len(c) == 1, c
    assert (c[0]['model'], c[0]['in'], c[0]['out']) == ('gpt-image-1', 50, 1056)
    assert not c[0].get('estimated')


def test_chunked_upload_goes_up_chunked(env):
    r = start(env)
    data = os.urandom(300 * 1024)
    body, ctype = form([(b'model', None, b'gpt-image-1'), (b'prompt', None, b'x'),
                        (b'image', b'a.bin', data)])
    path = os.path.join(env.dir, 'form.bin')
    with open(path, 'wb') as f:
        f.write(body)
    status, out = post_form(r.port, '/v1/images/edits', path, ctype, chunked=True)
    assert status == 200, out
    head, up = env.mock.last_raw()
    assert header(head, 'transfer-encoding') == 'chunked', head
    assert header(head, 'content-length') is None
    assert parts_of(head, up)['model'] == b'gpt-image-1-2025-04-15'
    assert parts_of(head, up)['image'] == data


def test_official_node_sdk_image_edit_transcription_file(env):
    r = start(env)
    img = os.path.join(env.dir, 'square.png')
    with open(img, 'wb') as f:
        f.write(png_bytes())
    wav = os.path.join(env.dir, 'hello.wav')
    write_wav(wav)
    e = {'RELAY_URL': 'http://127.0.0.1:%d/v1' % r.port, 'RELAY_KEY': h.KEY}

    out = h.node('openai_upload.mjs', ['image_edit', img, 'gpt-image-1'], e)
    assert out.get('b64') == 'aGVsbG8gZnJvbSBtb2Nr', out
    head, up = env.mock.last_raw()
    parts = parts_of(head, up)
    assert parts['model'] == b'gpt-image-1-2025-04-15'
    assert parts['image'] == png_bytes()

    out = h.node('openai_upload.mjs', ['transcribe', wav, 'gpt-4o-transcribe'], e)
    assert out.get('text') == 'hello from mock', out
    head, up = env.mock.last_raw()
    parts = parts_of(head, up)
    assert parts['model'] == b'gpt-4o-transcribe-2025-03-20'
    with open(wav, 'rb') as f:
        assert parts['file'] == f.read()

    # files.create names no model: passthrough, never charged, the file
    # recorded for affinity.
    out = h.node('openai_upload.mjs', ['file', wav], e)
    assert out == {'id': 'file-mock1', 'object': 'file'}, out
    head, up = env.mock.last_raw()
    assert head.startswith(b'POST /v1/files ')
    parts = parts_of(head, up)
    assert parts['purpose'] == b'assistants'
    with open(wav, 'rb') as f:
        assert parts['file'] == f.read()

    lines = h.ledger_lines(r)
    c = [l for l in lines if l.get('type') == 'charge']
    assert [(l['model'], l['in'], l['out']) for l in c] == [
        ('gpt-image-1', 50, 1056), ('gpt-4o-transcribe', 14, 5)], c
    assert any(l.get('type') == 'task' and l.get('id') == 'file-mock1' and l.get('kind') == 'object'
               for l in lines), lines


def test_50mib_upload_streams_in_bounded_memory(env):
    r = start(env)
    # Warm up: the first form (and its connection) costs what every later
    # one does.
    small, ctype = form([(b'model', None, b'gpt-image-1'), (b'image', b'a', b'x' * 1000)])
    sp = os.path.join(env.dir, 'small.bin')
    with open(sp, 'wb') as f:
        f.write(small)
    assert post_form(r.port, '/v1/images/edits', sp, ctype)[0] == 200
    before = r.status()['VmHWM']
    big = os.path.join(env.dir, 'big.bin')
    data = os.urandom(50 * 1024 * 1024)
    body, ctype = form([(b'model', None, b'gpt-image-1'), (b'prompt', None, b'p'),
                        (b'image', b'big.png', data)])
    with open(big, 'wb') as f:
        f.write(body)
    want = hashlib.sha256(body.replace(b'\r\n\r\ngpt-image-1\r\n',
                                       b'\r\n\r\ngpt-image-1-2025-04-15\r\n', 1)).hexdigest()
    del data, body
    status, out = post_form(r.port, '/v1/images/edits', big, ctype)
    assert status == 200, out
    after = r.status()['VmHWM']
    # The relay's peak memory grew by far less than the upload (measured:
    # well under 1 MiB); 8 MiB is the bound.
    assert after - before < 8 * 1024, (before, after)
    raw = json.loads(h.http('127.0.0.1', env.mock.port, 'GET', '/_mock/raw').body)
    last = raw['requests'][-1]
    assert last['body_sha256'] == want
    assert last['body_bytes'] == os.path.getsize(big) + len('-2025-04-15')


def test_refused_forms_are_400_and_never_reach_the_upstream_whole(env):
    r = start(env)
    data = os.urandom(2 * 1024 * 1024)
    path = os.path.join(env.dir, 'bad.bin')

    def send(body, ctype, path_='/v1/images/edits'):
        with open(path, 'wb') as f:
            f.write(body)
        status, out = post_form(r.port, path_, path, ctype)
        return status, json.loads(out)

    before = len(env.mock.raw_requests())
    # Streamed, then cut: no closing delimiter. The upstream got most of
    # it but not its end, so it never acted on it.
    body, ctype = form([(b'model', None, b'gpt-image-1'), (b'image', b'a', data)])
    status, j = send(body[:-len(b'--\r\n') - 40], ctype)
    assert status == 400, j
    assert j['error']['message'] == ('multipart/form-data body refused: the '
                                     'multipart body ended before its closing delimiter')
    # The model after a big file: the relay does not hold a whole upload.
    body, ctype = form([(b'image', b'a', data), (b'model', None, b'gpt-image-1')])
    status, j = send(body, ctype)
    assert status == 400
    assert 'first 256 KiB' in j['error']['message'], j
    # No model at all, on a path that costs money.
    body, ctype = form([(b'prompt', None, b'x')])
    status, j = send(body, ctype)
    assert (status, j['error']['code']) == (400, 'missing_model'), j
    # An unknown model.
    body, ctype = form([(b'model', None, b'gpt-imag-1')])
    status, j = send(body, ctype)
    assert (status, j['error']['code']) == (404, 'model_not_found'), j
    # A Content-Type without a boundary.
    status, j = send(b'x', 'multipart/form-data')
    assert status == 400
    assert 'no boundary' in j['error']['message'], j
    assert len(env.mock.raw_requests()) == before
    assert charges(r) == []


def test_failover_only_before_the_body_is_committed(env):
    providers = [
        'provider bad base=http://127.0.0.1:%d/v1 auth=bearer' % 0,
        'credential bad env:MOCK_KEY_1',
        'provider good base=http://127.0.0.1:%d/v1 auth=bearer' % 0,
        'credential good env:MOCK_KEY_2',
    ]
    env.start_mock()
    providers = [p.replace(':0/', ':%d/' % env.mock.port) for p in providers]
    creds = ('500', 'sk-upstream-2')
    conf = h.config(env.mock.port, extra='limits max_body=64m', providers=providers,
                    models=['model gpt-image-1 image 5.00 40.00 bad/img-a good/img-b'],
                    creds=creds)
    r = env.start_relay(conf, env=h.cred_env(creds))
    path = os.path.join(env.dir, 'f.bin')
    # A small form is held whole: the 500 fails over to the next route.
    body, ctype = form([(b'model', None, b'gpt-image-1'), (b'image', b'a', b'y' * 1000)])
    with open(path, 'wb') as f:
        f.write(body)
    status, out = post_form(r.port, '/v1/images/edits', path, ctype)
    assert status == 200, out
    head, up = env.mock.last_raw()
    assert parts_of(head, up)['model'] == b'img-b'
    # A big one was partly sent to the first route: the 500 is final (503
    # with the attempt list), it cannot be sent again.
    body, ctype = form([(b'model', None, b'gpt-image-1'), (b'image', b'a', os.urandom(4 << 20))])
    with open(path, 'wb') as f:
        f.write(body)
    status, out = post_form(r.port, '/v1/images/edits', path, ctype)
    assert status == 503, out
    assert b'already sent' in out, out


def test_streamed_body_bounded_by_body_timeout(env):
    r = start(env, extra='limits max_body=64m\ntimeouts body=1s')
    body, ctype = form([(b'model', None, b'gpt-image-1'), (b'image', b'a', b'z' * 100000)])
    s = h.connect(r.port)
    try:
        s.sendall(('POST /v1/images/edits HTTP/1.1\r\nHost: x\r\n'
                   'Authorization: Bearer %s\r\nContent-Type: %s\r\n'
                   'Content-Length: %d\r\n\r\n' % (h.KEY, ctype, len(body))).encode() +
                  body[:50000])
        # Routed and partly sent upstream; the rest never comes.
        resp = h.read_response(s, 'POST', timeout=10)
    finally:
        s.close()
    assert resp.status == 408, resp.body
    assert resp.json()['error']['message'] == ('the request body did not arrive '
                                               'within the body timeout')
    assert resp.header('connection') == 'close'
    # It was routed (the upstream had its start) before the timeout cut it.
    assert 'request body refused: the request body did not arrive' in r.log()
    assert env.mock.raw_requests() == []
    assert charges(r) == []


def test_upload_through_tls_on_both_sides(env):
    here = os.path.dirname(os.path.abspath(__file__))
    d = os.path.join(env.dir, 'certs')
    subprocess.run(['sh', os.path.join(here, 'certs.sh'), d], check=True,
                   capture_output=True, timeout=60)
    m = env.start_mock(['--tls-port', '0', '--tls-cert', os.path.join(d, 'localhost.pem'),
                        '--tls-key', os.path.join(d, 'localhost.key')])
    conf = h.config(m.port, providers=[
        'provider sec base=https://localhost:%d/v1' % m.tls_port, 'credential sec env:S'],
        models=['model gpt-image-1 image 5.00 40.00 sec/gpt-image-1-tls'],
        extra='ca_file %s\nlimits max_body=64m' % os.path.join(d, 'ca.pem')).replace(
        'listen 127.0.0.1:0', 'listen 127.0.0.1:0 tls cert=%s key=%s' % (
            os.path.join(d, 'localhost.pem'), os.path.join(d, 'localhost.key')))
    r = env.start_relay(conf, env={'S': 'sk-tls'})
    data = os.urandom(8 << 20)
    body, ctype = form([(b'model', None, b'gpt-image-1'), (b'image', b'a.png', data)])
    path = os.path.join(env.dir, 'tls-form.bin')
    with open(path, 'wb') as f:
        f.write(body)
    want = hashlib.sha256(body.replace(b'\r\n\r\ngpt-image-1\r\n',
                                       b'\r\n\r\ngpt-image-1-tls\r\n', 1)).hexdigest()
    for chunked in (False, True):
        args = ['curl', '-sS', '--cacert', os.path.join(d, 'ca.pem'), '-o', '/dev/null',
                '-w', '%{http_code}', '-H', 'Authorization: Bearer ' + h.KEY,
                '-H', 'Content-Type: ' + ctype, '--data-binary', '@' + path]
        if chunked:
            args += ['-H', 'Transfer-Encoding: chunked']
        p = subprocess.run(args + ['https://localhost:%d/v1/images/edits' % r.port],
                           capture_output=True, text=True, timeout=60)
        assert p.stdout == '200', (chunked, p.stdout, p.stderr)
        last = json.loads(h.http('127.0.0.1', m.port, 'GET', '/_mock/raw').body)['requests'][-1]
        assert last['body_sha256'] == want, chunked
    assert len(charges(r)) == 2
