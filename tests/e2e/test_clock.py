"""A device whose clock is not set (routers without a battery-backed clock
boot in 1970 until NTP answers): TLS to a provider fails with a message
that names the clock and what it reads, and works at the next attempt once
the clock is set, without a restart. The clock is faked with
build/relay-faketime (the relay's objects relinked with
tests/e2e/faketime.c; under make test-cross, each target's own)."""
import os
import time

from harness import KEY, RELAY_FAKETIME, config, emulated, http
from test_tls import certs, tls_mock


def chat(r):
    return http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                {'model': 'gpt-5.2', 'messages': []}, {'Authorization': 'Bearer ' + KEY})


def set_clock(path, seconds):
    with open(path + '.tmp', 'w') as f:
        f.write('' if seconds is None else '%d\n' % seconds)
    os.replace(path + '.tmp', path)


def test_unset_clock_fails_tls_naming_the_clock_then_recovers(env):
    assert os.path.exists(RELAY_FAKETIME), RELAY_FAKETIME + ' missing (make build/relay-faketime)'
    d = certs(env)
    m = tls_mock(env, d, 'localhost')
    clock = os.path.join(env.dir, 'clock')
    set_clock(clock, 7)                       # 1970-01-01 00:00:07 UTC
    conf = config(m.port, providers=[
        'provider sec base=https://localhost:%d/v1' % m.tls_port, 'credential sec env:S'],
        models=['model gpt-5.2 text 1.75 14.00 sec/gpt-5.2-tls'],
        extra='ca_file %s\n' % os.path.join(d, 'ca.pem'))
    r = env.start_relay(conf, env={'S': 'sk-tls', 'RELAY_FAKETIME_FILE': clock},
                        binary=emulated(RELAY_FAKETIME))
    res = chat(r)
    assert res.status == 503, res.body
    msg = res.json()['error']['message']
    want = 'the system clock is not set (it reads 1970-01-01 00:00:07 UTC)'
    assert want in msg and 'sec/gpt-5.2-tls key sec#1: TLS' in msg, msg
    assert want in r.log()
    assert m.stats()['requests'] == 0

    # A clock that is set but wrong (years ahead): the certificate is
    # expired at that time, and the message says what the clock reads.
    set_clock(clock, 4102444800)              # 2100-01-01
    res = chat(r)
    assert res.status == 503, res.body
    msg = res.json()['error']['message']
    assert ("certificate expired or not yet valid at this system's clock "
            "(2100-01-01 00:00:") in msg, msg

    # NTP sets the clock: the next request works, no restart.
    set_clock(clock, int(time.time()))
    res = chat(r)
    assert res.status == 200, res.body
    assert m.stats()['requests'] == 1
    assert r.proc.poll() is None
