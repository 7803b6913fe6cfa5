"""HTTPS to providers (issue 3): the relay reaches the mock over TLS with
BearSSL; bad certificates fail with their own reason; connections and TLS
sessions are reused. Certificates are made at test time (certs.sh)."""
import json
import os
import subprocess

from harness import KEY, config, http, node

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
