"""HTTPS to providers (issue 3): the relay reaches the mock over TLS with
BearSSL; bad certificates fail with their own reason; connections and TLS
sessions are reused. Certificates are made at test time (certs.sh)."""
import json
import os
import socket
import subprocess
import time

from harness import KEY, config, connect, http, node

HERE = os.path.dirname(os.path.abspath(__file__))


def certs(env):
    d = os.path.join(env.dir, 'certs')
    subprocess.run(['sh', os.path.join(HERE, 'certs.sh'), d], check=True,
                   capture_output=True, timeout=60)
    return d


def tls_mock(env, d, name):
    return env.start_mock(['--tls-port', '0', '--tls-cert', os.path.join(d, name + '.pem'),
                           '--tls-key', os.path.join(d, name + '.key')])


def relay_to(env, m, d, ca='ca.pem', host='localhost', port=None, extra=''):
    conf = config(m.port, providers=[
        'provider sec base=https://%s:%d/v1' % (host, port or m.tls_port), 'credential sec env:S'],
        models=['model gpt-5.2 text 1.75 14.00 sec/gpt-5.2-tls'],
        extra='ca_file %s\n%s' % (os.path.join(d, ca), extra))
    return env.start_relay(conf, env={'S': 'sk-tls'})


def chat(r):
    return http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                {'model': 'gpt-5.2', 'messages': []}, {'Authorization': 'Bearer ' + KEY})


def test_sdk_over_https_with_ca_file(env):
    d = certs(env)
    m = tls_mock(env, d, 'localhost')
    r = relay_to(env, m, d)
    e = {'RELAY_URL': 'http://127.0.0.1:%d/v1' % r.port, 'RELAY_KEY': KEY}
    out = node('openai_client.mjs', ['chat'], e)
    assert out.get('content') == 'hello from mock', out
    out = node('openai_client.mjs', ['stream'], e)
    assert out.get('content') == 'tok0 tok1 tok2 tok3 tok4 ', out
    st = m.stats()
    assert st['last']['tls']['sni'] == 'localhost', st['last']
    assert json.loads(st['last']['body'])['model'] == 'gpt-5.2-tls'
    assert st['last']['headers']['authorization'] == 'Bearer sk-tls'


def test_ec_certificate_works(env):
    d = certs(env)
    m = tls_mock(env, d, 'localhost-ec')
    r = relay_to(env, m, d)
    assert chat(r).status == 200


def test_bad_certificates_fail_with_their_own_reason(env):
    d = certs(env)
    cases = [('localhost', 'other-ca.pem', 'not trusted'),
             ('wrongname', 'ca.pem', 'host name mismatch'),
             ('expired', 'ca.pem', 'expired')]
    for cert, ca, reason in cases:
        m = tls_mock(env, d, cert)
        r = relay_to(env, m, d, ca=ca)
        res = chat(r)
        assert res.status == 503, (cert, res.body)
        msg = res.json()['error']['message']
        assert reason in msg and 'sec/gpt-5.2-tls key sec#1: TLS' in msg, (cert, msg)
        assert m.stats()['requests'] == 0
        assert reason in r.log()
        r.stop()
    # a plain HTTP server on the HTTPS port
    plain = env.start_mock()
    r = relay_to(env, plain, d, port=plain.port)
    res = chat(r)
    assert res.status == 503 and 'not a TLS server' in res.json()['error']['message'], res.body


def test_200_requests_reuse_a_handful_of_connections(env):
    d = certs(env)
    m = tls_mock(env, d, 'localhost')
    r = relay_to(env, m, d)
    for _ in range(200):
        assert chat(r).status == 200
    st = http('127.0.0.1', m.port, 'GET', '/_mock/stats').json()
    assert st['requests'] == 200
    assert st['tls_handshakes'] <= 3, st
    assert st['connections'] <= 4, st      # + our own stats connection
    # a new connection to the same host resumes the TLS session
    res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
               {'model': 'gpt-5.2', 'messages': []},
               {'Authorization': 'Bearer ' + KEY, 'x-mock': 'close'})
    assert res.status == 503
    assert chat(r).status == 200
    st = http('127.0.0.1', m.port, 'GET', '/_mock/stats').json()
    assert st['tls_resumed'] >= 1, st


def test_inbound_tls_with_curl(env):
    d = certs(env)
    m = env.start_mock()
    for name in ('localhost', 'localhost-ec'):
        conf = config(m.port, creds=('sk-in',)).replace(
            'listen 127.0.0.1:0', 'listen 127.0.0.1:0 tls cert=%s key=%s' % (
                os.path.join(d, name + '.pem'), os.path.join(d, name + '.key')))
        r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-in'})
        assert 'listening on https://127.0.0.1:%d' % r.port in r.log()
        url = 'https://localhost:%d' % r.port
        p = subprocess.run(['curl', '-sS', '--cacert', os.path.join(d, 'ca.pem'), url + '/healthz'],
                           capture_output=True, text=True, timeout=20)
        assert p.stdout.strip() == '{"status":"ok"}', (name, p.stdout, p.stderr)
        p = subprocess.run(['curl', '-sS', '--cacert', os.path.join(d, 'ca.pem'),
                            '-H', 'Authorization: Bearer ' + KEY, '-N',
                            '-d', '{"model":"gpt-5.2","stream":true}', url + '/v1/chat/completions'],
                           capture_output=True, text=True, timeout=20)
        assert 'tok4' in p.stdout and p.stdout.rstrip().endswith('data: [DONE]'), (name, p.stdout, p.stderr)
        # keep-alive over TLS: several requests on one connection
        p = subprocess.run(['curl', '-sS', '--cacert', os.path.join(d, 'ca.pem'), '-o', '/dev/null',
                            '-o', '/dev/null', '-w', '%{http_code} %{num_connects}\\n',
                            url + '/healthz', url + '/v1/models'],
                           capture_output=True, text=True, timeout=20)
        assert p.stdout.split('\n')[:2] == ['200 1', '200 0'], p.stdout
        # a wrong CA is refused by the client; plain HTTP to the TLS port gets no answer, no hang
        p = subprocess.run(['curl', '-sS', '--cacert', os.path.join(d, 'other-ca.pem'), url + '/healthz'],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0
        p = subprocess.run(['curl', '-sS', '-m', '5', 'http://127.0.0.1:%d/healthz' % r.port],
                           capture_output=True, text=True, timeout=20)
        assert p.returncode != 0 and p.returncode != 28, (p.returncode, p.stderr)
        assert http('127.0.0.1', m.port, 'GET', '/_mock/stats').status == 200
        r.stop()


def test_big_bodies_through_tls_on_both_sides(env):
    d = certs(env)
    m = tls_mock(env, d, 'localhost')
    conf = config(m.port, providers=[
        'provider sec base=https://localhost:%d/v1' % m.tls_port, 'credential sec env:S'],
        models=['model gpt-5.2 text 1.75 14.00 sec/gpt-5.2-tls'],
        extra='ca_file %s' % os.path.join(d, 'ca.pem')).replace(
        'listen 127.0.0.1:0', 'listen 127.0.0.1:0 tls cert=%s key=%s' % (
            os.path.join(d, 'localhost.pem'), os.path.join(d, 'localhost.key')))
    r = env.start_relay(conf, env={'S': 'sk-tls'})
    body = os.path.join(env.dir, 'body.json')
    with open(body, 'w') as f:
        f.write('{"model":"gpt-5.2","pad":"%s"}' % ('x' * 300000))
    for script in ('big:20000000', 'bigchunked:20000000', 'sse:200'):
        p = subprocess.run(['curl', '-sS', '--cacert', os.path.join(d, 'ca.pem'),
                            '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
                            '-H', 'Authorization: Bearer ' + KEY, '-H', 'x-mock: ' + script,
                            '--data-binary', '@' + body,
                            'https://localhost:%d/v1/chat/completions' % r.port],
                           capture_output=True, text=True, timeout=60)
        code, size = p.stdout.split()
        assert code == '200', (script, p.stdout, p.stderr)
        if script.startswith('big'):
            assert size == '20000000', (script, size)
        else:
            assert int(size) > 200 * 100, size
    assert len(json.loads(http('127.0.0.1', m.port, 'GET', '/_mock/stats').json()['last']['body'])['pad']) == 300000


def big_pad(n):
    """n bytes of varied ASCII (a corrupted or reordered record shows)."""
    unit = ''.join(chr(97 + (i * 7) % 26) for i in range(4096))
    return (unit * (n // len(unit) + 1))[:n]


def test_big_request_and_answer_over_the_half_duplex_upstream(env):
    """Upstream TLS connections use a half-duplex BearSSL buffer (one
    16 KiB record buffer, not two): a request body near max_body goes out
    and a 20 MB answer comes back intact, and the pooled connection is
    reused afterwards (one handshake for everything)."""
    d = certs(env)
    m = tls_mock(env, d, 'localhost')
    r = relay_to(env, m, d)
    pad = big_pad(30 * 1024 * 1024)
    body = ('{"model":"gpt-5.2","pad":"%s"}' % pad).encode()
    for _ in range(2):
        res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions', body,
                   {'Authorization': 'Bearer ' + KEY, 'x-mock': 'echo'}, timeout=120)
        assert res.status == 200, res.body[:300]
        echo = res.json()
        sent = json.loads(echo['body'])
        assert sent['model'] == 'gpt-5.2-tls' and sent['pad'] == pad
    for script in ('big:20000000', 'bigchunked:20000000'):
        res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                   {'model': 'gpt-5.2'}, {'Authorization': 'Bearer ' + KEY, 'x-mock': script},
                   timeout=120)
        assert res.status == 200 and len(res.body) == 20000000, (script, res.status)
        assert res.body.endswith(b'"total_tokens":3}}'), res.body[-100:]
    assert chat(r).status == 200
    st = http('127.0.0.1', m.port, 'GET', '/_mock/stats').json()
    assert st['requests'] == 5 and st['tls_handshakes'] == 1, st


def test_slow_reader_backpressure_through_a_tls_upstream(env):
    """A client that reads slowly holds the TLS upstream back too: the
    relay's memory does not grow with the 50 MB answer."""
    d = certs(env)
    m = tls_mock(env, d, 'localhost')
    r = relay_to(env, m, d)
    assert chat(r).status == 200
    base = r.status()['VmRSS']
    s = connect(r.port)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    body = b'{"model":"gpt-5.2"}'
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nx-mock: big:52428800\r\nContent-Length: %d\r\n\r\n'
              % len(body) + body)
    got = 0
    while got < 4 * 1024 * 1024:       # read 4 MiB slowly
        c = s.recv(16384)
        assert c
        got += len(c)
        time.sleep(0.002)
    st = r.status()
    assert st['VmHWM'] < base + 4096, (base, st)
    s.close()
    assert chat(r).status == 200


def test_early_answer_while_the_body_is_still_going_out(env):
    """A provider that refuses a body on its head alone answers while the
    relay is still sending (24 MiB here). The relay reads that answer
    between records, stops sending and passes it on; the connection is not
    reused. A server that answers and then stops reading cannot be heard
    mid-record by the half-duplex engine: it ends as a reset attempt when
    the server gives up, never as a hang."""
    d = certs(env)
    m = tls_mock(env, d, 'localhost')
    r = relay_to(env, m, d)
    body = ('{"model":"gpt-5.2","pad":"%s"}' % ('x' * (24 << 20))).encode()
    hdr = {'Authorization': 'Bearer ' + KEY}

    def send(mode):
        t0 = time.monotonic()
        res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions', body,
                   dict(hdr, **{'x-mock': mode}), timeout=60)
        return res, time.monotonic() - t0

    for mode in ('early:413', 'early:413:close'):
        res, _ = send(mode)
        assert res.status == 413, (mode, res.body[:300])
        assert res.json()['error']['message'] == 'mock early 413', res.body
        assert res.header('x-relay-route') == 'sec/gpt-5.2-tls'
    # a retryable refusal is an attempt like any other
    res, _ = send('early:401')
    assert res.status == 503 and '401 Unauthorized' in res.json()['error']['message'], res.body
    res, took = send('early:413:stop:1500')
    assert took < 20, took
    if res.status == 503:
        assert 'while sending the request' in res.json()['error']['message'], res.body
    else:
        assert res.status == 413, res.body[:300]
    assert chat(r).status == 200
    assert m.stats()['tls_resumed'] >= 1


def test_relay_resolves_in_an_empty_root(env):
    """The static binary alone in a chroot with only etc/hosts and
    etc/resolv.conf (no NSS, no CA bundle) resolves a provider name."""
    if os.geteuid() != 0:
        raise AssertionError('this test needs root for chroot (CI runs as root)')
    m = env.start_mock()
    root = os.path.join(env.dir, 'root')
    os.makedirs(os.path.join(root, 'etc'))
    with open(os.path.join(root, 'etc', 'hosts'), 'w') as f:
        f.write('127.0.0.1 localhost\n127.0.0.1 provider.test\n')
    with open(os.path.join(root, 'etc', 'resolv.conf'), 'w') as f:
        f.write('nameserver 127.0.0.1\n')
    from harness import into_root
    argv = into_root(root)     # the binary, not a wrapper (with its emulator)
    conf = config(m.port, providers=[
        'provider named base=http://provider.test:%d/v1 insecure=yes' % m.port,
        'credential named file:/key'],
        models=['model gpt-5.2 text 1.75 14.00 named/gpt-5.2'], ledger='/ledger.jsonl sync=none')
    with open(os.path.join(root, 'relay.conf'), 'w') as f:
        f.write(conf)
    with open(os.path.join(root, 'key'), 'w') as f:
        f.write('sk-chroot\n')
    logp = os.path.join(env.dir, 'chroot.log')
    lf = open(logp, 'wb')
    p = subprocess.Popen(['chroot', root] + argv + ['-c', '/relay.conf'], stdout=lf, stderr=lf)
    try:
        import re
        from harness import wait_for

        def port():
            assert p.poll() is None, open(logp).read()
            mm = re.search(r'listening on http://127\.0\.0\.1:(\d+)', open(logp).read())
            return mm and int(mm.group(1))
        prt = wait_for(port, 10, 'relay in chroot')
        res = http('127.0.0.1', prt, 'POST', '/v1/chat/completions', {'model': 'gpt-5.2'},
                   {'Authorization': 'Bearer ' + KEY})
        assert res.status == 200 and res.header('x-relay-route') == 'named/gpt-5.2', res.body
        assert m.stats()['last']['headers']['authorization'] == 'Bearer sk-chroot'
        assert 'embedded' in open(logp).read()   # trust anchors without any file
    finally:
        p.terminate()
        p.wait(10)
        lf.close()


def one_suite_family_on_both_sides(env, suites, name, requests=1):
    """Only the given suites, on the client side (curl) and the provider
    side (the mock): a 300 KB request and a 2 MB answer go through whole,
    requests times, each on a TLS connection of its own from curl."""
    d = certs(env)
    m = env.start_mock(['--tls-port', '0', '--tls-cert', os.path.join(d, 'localhost.pem'),
                        '--tls-key', os.path.join(d, 'localhost.key'), '--tls-ciphers', suites])
    conf = config(m.port, providers=[
        'provider sec base=https://localhost:%d/v1' % m.tls_port, 'credential sec env:S'],
        models=['model gpt-5.2 text 1.75 14.00 sec/gpt-5.2-tls'],
        extra='ca_file %s' % os.path.join(d, 'ca.pem')).replace(
        'listen 127.0.0.1:0', 'listen 127.0.0.1:0 tls cert=%s key=%s' % (
            os.path.join(d, 'localhost.pem'), os.path.join(d, 'localhost.key')))
    r = env.start_relay(conf, env={'S': 'sk-tls'})
    pad = big_pad(300000)
    body = os.path.join(env.dir, 'body.json')
    with open(body, 'w') as f:
        f.write('{"model":"gpt-5.2","pad":"%s"}' % pad)
    for _ in range(requests):
        p = subprocess.run(['curl', '-sS', '-v', '--cacert', os.path.join(d, 'ca.pem'),
                            '--tlsv1.2', '--tls-max', '1.2', '--ciphers', suites,
                            '-o', '/dev/null', '-w', '%{http_code} %{size_download}',
                            '-H', 'Authorization: Bearer ' + KEY, '-H', 'x-mock: big:2000000',
                            '--data-binary', '@' + body,
                            'https://localhost:%d/v1/chat/completions' % r.port],
                           capture_output=True, text=True, timeout=60)
        assert p.stdout.split() == ['200', '2000000'], (p.stdout, p.stderr[-2000:])
        assert name in p.stderr, p.stderr[-2000:]
        st = http('127.0.0.1', m.port, 'GET', '/_mock/stats').json()
        assert name in st['last']['tls']['cipher'], st['last']['tls']
        assert json.loads(st['last']['body'])['pad'] == pad


def test_chacha20_poly1305_on_both_sides(env):
    """ChaCha20-Poly1305 suites only, both sides (on x86-64 the relay sets
    BearSSL's SSE2 ChaCha20 and 64-bit Poly1305 itself instead of the
    default picks)."""
    one_suite_family_on_both_sides(
        env, 'ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-CHACHA20-POLY1305', 'CHACHA20-POLY1305')


def test_aes_gcm_on_both_sides(env):
    """AES-GCM suites only, both sides, on three client connections: the
    relay asks the CPU for AES-NI and PCLMUL at its first TLS connection
    and every later one, client or provider side, uses that choice."""
    one_suite_family_on_both_sides(
        env, 'ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES128-GCM-SHA256:'
        'ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES256-GCM-SHA384', 'GCM', requests=3)
