"""Exact billing (SPEC §6): charges equal an independent decimal reference,
wallets, holds and 402, the hash-chained ledger, crash and tamper."""
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
from decimal import Decimal, ROUND_HALF_EVEN

from harness import (EMU_THREADS, KEY, RELAY, config, connect, http, ledger_lines, read_response,
                     sha256_hex, wait_for)

ADMIN = 'rk-admin-test-0000000000000000000009'
RATE = Decimal('7.2000')


def conf(mport, overdraft='0', extra='', creds=('sk-up',), ledger='relay-ledger.jsonl sync=none'):
    return config(mport, creds=creds, overdraft=overdraft, ledger=ledger,
                  extra='admin_key sha256:%s\ncurrency CNY rate=7.2000\n%s' % (sha256_hex(ADMIN), extra))


def start(env, **kw):
    m = env.start_mock()
    creds = kw.pop('creds', ('sk-up',))
    r = env.start_relay(conf(m.port, creds=creds, **kw),
                        env={'MOCK_KEY_%d' % (i + 1): c for i, c in enumerate(creds)})
    return m, r


def credit(r, amount, wallet='acme', key=ADMIN):
    return http('127.0.0.1', r.port, 'POST', '/admin/wallets/%s/credit' % wallet,
                {'amount': amount}, {'Authorization': 'Bearer ' + key})


def chat(r, body=None, extra=None):
    h = {'Authorization': 'Bearer ' + KEY}
    h.update(extra or {})
    return http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                body or {'model': 'gpt-5.2', 'messages': [], 'max_tokens': 100}, h)


def reference(tin, tout, pin, pout):
    """USD per 1M tokens -> nano-USD; wallet debit half-even at RATE."""
    usd_nano = tin * int(Decimal(pin) * 1000) + tout * int(Decimal(pout) * 1000)
    cny_nano = (Decimal(usd_nano) * RATE).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return usd_nano, int(cny_nano)


def test_charges_equal_the_decimal_reference(env):
    m, r = start(env)
    assert credit(r, '100.00').status == 200
    shapes = [('/v1/chat/completions', 'gpt-5.2', 12, 34, '1.75', '14.00'),
              ('/v1/embeddings', 'text-embedding-3-small', 8, 0, '0.019', '0'),
              ('/v1/messages', 'claude-3-5-sonnet', 25, 15, '3.00', '15.00')]
    for path, model, tin, tout, pin, pout in shapes:
        res = http('127.0.0.1', r.port, 'POST', path, {'model': model, 'max_tokens': 50, 'input': 'x'},
                   {'Authorization': 'Bearer ' + KEY})
        assert res.status == 200, res.body
        line = ledger_lines(r)[-1]
        usd, cny = reference(tin, tout, pin, pout)
        assert line['type'] == 'charge' and line['model'] == model, line
        assert (line['in'], line['out'], line['usd_nano'], line['cny_nano']) == (tin, tout, usd, cny), (line, usd, cny)
        assert line['id'] == res.header('x-request-id') and line['wallet'] == 'acme'
        assert 'estimated' not in line
    # a stream is charged from its usage chunk
    chat(r, {'model': 'gpt-5.2', 'stream': True, 'messages': []})
    line = ledger_lines(r)[-1]
    assert (line['in'], line['out']) == (12, 34) and line['usd_nano'] == reference(12, 34, '1.75', '14.00')[0]
    # /v1/wallet equals credits minus charges
    w = http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, {'Authorization': 'Bearer ' + KEY}).json()
    spent = sum(l['cny_nano'] for l in ledger_lines(r) if l['type'] == 'charge')
    assert w['balance_nano'] == 100 * 10**9 - spent, (w, spent)
    assert w['currency'] == 'CNY' and w['held_nano'] == 0 and w['today']['requests'] == 4, w
    assert Decimal(w['balance']) == Decimal(w['balance_nano']) / 10**9
    assert abs(Decimal(w['balance_usd']) - Decimal(w['balance_nano']) / 10**9 / RATE) < Decimal('1e-9')
    # the chain verifies and the CLI prints the same balance
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert 'acme CNY %s' % (Decimal(w['balance_nano']) / 10**9).quantize(Decimal('0.01')) in p.stdout, p.stdout
    p = subprocess.run([RELAY, 'ledger', 'report', 'relay-ledger.jsonl', '--by', 'model'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0 and 'claude-3-5-sonnet' in p.stdout, p.stdout + p.stderr


def test_failover_charges_only_the_answering_attempt(env):
    m, r = start(env, overdraft='1000', creds=('500', 'sk-ok'))
    res = chat(r)
    assert res.status == 200 and res.header('x-relay-attempts') == '2'
    charges = [l for l in ledger_lines(r) if l['type'] == 'charge']
    assert len(charges) == 1 and charges[0]['cred'] == 'mock#2', charges
    # an upstream client error is passed through and not charged
    chat(r, extra={'x-mock': 'status:400'})
    # every candidate failing: 503, not charged
    chat(r, extra={'x-mock': '500'})
    assert len([l for l in ledger_lines(r) if l['type'] == 'charge']) == 1


def test_wallet_runs_dry_then_402(env):
    m, r = start(env)
    assert chat(r).status == 402
    body = chat(r).json()['error']
    assert body['code'] == 'insufficient_balance' and "wallet 'acme'" in body['message'], body
    assert m.stats()['requests'] == 0
    # hold for max_tokens=100 of gpt-5.2 is about 0.0101 CNY; 0.05 covers a few
    assert credit(r, '0.05').status == 200
    ok = 0
    for _ in range(20):
        res = chat(r)
        if res.status == 402:
            break
        assert res.status == 200
        ok += 1
    assert 1 <= ok < 20, ok
    w = http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, {'Authorization': 'Bearer ' + KEY}).json()
    assert w['balance_nano'] >= 0, w
    # admin API: wrong key, unknown wallet, bad amount
    assert credit(r, '1', key='nope').status == 401
    assert credit(r, '1', wallet='ghost').status == 404
    assert credit(r, 'abc').status == 400


def test_concurrency_never_goes_below_overdraft(env):
    m, r = start(env, overdraft='0.10')
    assert credit(r, '0.05').status == 200
    results = []

    def one():
        try:
            results.append(chat(r, {'model': 'gpt-5.2', 'messages': [], 'max_tokens': 1000},
                                {'x-mock': 'stall:200'}).status)
        except Exception as e:
            results.append(str(e))
    ts = [threading.Thread(target=one) for _ in range(100)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert results.count(200) + results.count(402) == 100, results
    assert results.count(402) > 0 and results.count(200) > 0, results
    w = http('127.0.0.1', r.port, 'GET', '/v1/wallet', None, {'Authorization': 'Bearer ' + KEY}).json()
    assert w['balance_nano'] >= -100000000, w
    assert w['held_nano'] == 0


def test_client_disconnect_mid_stream_is_charged_once(env):
    m, r = start(env, overdraft='100')
    s = connect(r.port)
    body = b'{"model":"gpt-5.2","stream":true,"max_tokens":500}'
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' + KEY.encode() +
              b'\r\nx-mock: sse:50:100\r\nContent-Length: %d\r\n\r\n' % len(body) + body)
    s.settimeout(5)
    got = b''
    while b'tok1' not in got:
        got += s.recv(4096)
    s.close()
    wait_for(lambda: [l for l in ledger_lines(r) if l['type'] == 'charge'], 5, 'charge line')
    time.sleep(0.3)   # nothing more may arrive: exactly one line
    charges = [l for l in ledger_lines(r) if l['type'] == 'charge']
    assert len(charges) == 1 and charges[0]['estimated'] is True, charges
    assert 0 < charges[0]['out'] <= 500


def burst(port, n, results):
    def one(i):
        try:
            res = chat_port(port)
            results.append((res.status, res.header('x-request-id'), len(res.body)))
        except Exception:
            pass
    ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in ts:
        t.start()
    return ts


def chat_port(port):
    return http('127.0.0.1', port, 'POST', '/v1/chat/completions',
                {'model': 'gpt-5.2', 'messages': []},
                {'Authorization': 'Bearer ' + KEY, 'x-mock': 'stall:30'})


def test_kill_9_mid_burst_loses_no_charge(env):
    m, r = start(env, overdraft='1000', ledger='relay-ledger.jsonl sync=always')
    results = []
    ts = burst(r.port, 60, results)
    wait_for(lambda: len(results) >= 20, 10, 'some answers')
    r.proc.send_signal(signal.SIGKILL)
    r.proc.wait()
    for t in ts:
        t.join(10)
    done = {rid for status, rid, blen in results if status == 200 and blen > 0}
    assert len(done) >= 20
    lines = ledger_lines(r)
    ids = [l['id'] for l in lines if l['type'] == 'charge']
    for rid in done:
        assert ids.count(rid) == 1, rid
    assert len(ids) == len(set(ids))
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    # restart on the same ledger: balances are the replay
    r2 = env.start_relay(open(r.conf).read(), env={'MOCK_KEY_1': 'sk-up'})
    w = http('127.0.0.1', r2.port, 'GET', '/v1/wallet', None, {'Authorization': 'Bearer ' + KEY}).json()
    assert w['balance_nano'] == -sum(l['cny_nano'] for l in ledger_lines(r) if l['type'] == 'charge')


def test_kill_9_with_the_queue_file_loses_no_charge(env):
    # sync=none: answers leave before their lines are written (the lines
    # are in the mapped queue file first). After kill -9 mid-burst and a
    # restart, every answered request is charged exactly once.
    m, r = start(env, overdraft='1000', ledger='relay-ledger.jsonl sync=none')
    results = []
    ts = burst(r.port, 60, results)
    wait_for(lambda: len(results) >= 20, 10, 'some answers')
    r.proc.send_signal(signal.SIGKILL)
    r.proc.wait()
    for t in ts:
        t.join(10)
    done = {rid for status, rid, blen in results if status == 200 and blen > 0}
    assert len(done) >= 20
    assert os.path.getsize(os.path.join(r.workdir, 'relay-ledger.jsonl.queue')) > 65536
    # verify reads the dead relay's ledger as it is; a note on stderr, if
    # any, names the lines still only in the queue file
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stderr == '' or 'answered and had not written' in p.stderr, p.stderr
    # the restart syncs differently: it still appends what the queue holds
    conf = open(r.conf).read().replace('sync=none', 'sync=always')
    assert 'sync=always' in conf
    r2 = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
    ids = [l['id'] for l in ledger_lines(r2) if l['type'] == 'charge']
    for rid in done:
        assert ids.count(rid) == 1, rid
    assert len(ids) == len(set(ids))
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    w = http('127.0.0.1', r2.port, 'GET', '/v1/wallet', None, {'Authorization': 'Bearer ' + KEY}).json()
    assert w['balance_nano'] == -sum(l['cny_nano'] for l in ledger_lines(r2) if l['type'] == 'charge')


def metrics(r):
    txt = http('127.0.0.1', r.port, 'GET', '/metrics').body.decode()
    # the unlabelled families (labelled ones carry seconds as decimals)
    return {l.split()[0]: int(l.split()[1]) for l in txt.splitlines()
            if l and not l.startswith('#') and '{' not in l}


def test_group_commit_answers_only_after_their_charge_is_on_disk(env):
    # Answers that finish in the same loop pass share one write and one
    # fsync (sync=always); none reaches its client before its line is in
    # the file.
    m, r = start(env, overdraft='1000', ledger='relay-ledger.jsonl sync=always')
    n = 40
    seen, lock, go = [], threading.Lock(), threading.Event()

    def one():
        go.wait(5)
        res = chat_port(r.port)
        # read the ledger the moment the answer is complete
        ids = [l['id'] for l in ledger_lines(r, settle=False) if l['type'] == 'charge']
        with lock:
            seen.append((res.status, res.header('x-request-id') in ids))
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    go.set()
    for t in ts:
        t.join(20)
    assert len(seen) == n and all(st == 200 for st, _ in seen), seen
    assert all(inside for _, inside in seen), 'an answer arrived before its charge line'
    met = metrics(r)
    assert met['relay_ledger_lines_total'] == n
    # 40 answers stalled the same 30 ms upstream: far fewer writes than lines
    assert met['relay_ledger_writes_total'] < n, met
    assert met['relay_ledger_fsyncs_total'] == met['relay_ledger_writes_total'], met
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def children(pid):
    try:
        with open('/proc/%d/task/%d/children' % (pid, pid)) as f:
            return [int(x) for x in f.read().split()]
    except OSError:
        return []


def test_batch_sync_helper_process(env):
    # sync=batch fsyncs in a helper process (the relay itself stays one
    # thread). It syncs while the relay runs, leaves with it, and if it is
    # killed the relay says so and syncs inline without losing a charge.
    m, r = start(env, overdraft='1000', ledger='relay-ledger.jsonl sync=batch')
    # forked shortly after start-up (LEDGER_SYNCER_DELAY_MS), not during it
    wait_for(lambda: len(children(r.proc.pid)) == 1, 5, 'sync helper')
    helper = children(r.proc.pid)[0]
    # (under qemu-user the process also holds the emulator's own thread)
    assert len(os.listdir('/proc/%d/task' % r.proc.pid)) == 1 + EMU_THREADS, 'relay has one thread'
    # the helper keeps the ledger and its own socket, none of the relay's
    # (its listener, clients, upstreams): nothing stays open through it.
    # It closes them just after the fork, so look once it has settled.
    def helper_fds():
        out = {}
        for f in os.listdir('/proc/%d/fd' % helper):
            try:
                out[int(f)] = os.readlink('/proc/%d/fd/%s' % (helper, f))
            except OSError:
                pass            # closed while we looked
        return out

    def helper_socks():
        return [t for fd, t in helper_fds().items() if fd > 2 and t.startswith('socket:')]
    wait_for(lambda: len(helper_socks()) == 1, 5, 'the helper holding only its own socket')
    assert any(t.endswith('relay-ledger.jsonl') for t in helper_fds().values()), helper_fds()
    assert chat(r).status == 200
    wait_for(lambda: metrics(r)['relay_ledger_fsyncs_total'] >= 1, 5, 'a batch fsync')
    # a terminal's ^C reaches the whole process group: the helper stays
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        os.kill(helper, sig)
    assert chat(r).status == 200
    wait_for(lambda: metrics(r)['relay_ledger_fsyncs_total'] >= 2, 5, 'a batch fsync after the signals')
    assert children(r.proc.pid) == [helper] and 'sync helper gone' not in r.log()
    os.kill(helper, signal.SIGKILL)
    assert chat(r).status == 200
    wait_for(lambda: 'sync helper gone' in r.log(), 5, 'the relay noticing')
    before = metrics(r)['relay_ledger_fsyncs_total']
    for _ in range(3):
        assert chat(r).status == 200
    wait_for(lambda: metrics(r)['relay_ledger_fsyncs_total'] > before, 5, 'inline fsync')
    assert len([l for l in ledger_lines(r) if l['type'] == 'charge']) == 6
    assert not os.path.exists('/proc/%d' % helper), 'the dead helper is reaped'
    # a helper that is alive leaves with the relay
    m2, r2 = start(env, overdraft='1000', ledger='relay-ledger-2.jsonl sync=batch')
    wait_for(lambda: len(children(r2.proc.pid)) == 1, 5, 'sync helper')
    helper2 = children(r2.proc.pid)[0]
    r2.proc.send_signal(signal.SIGTERM)
    assert r2.proc.wait(10) == 0
    wait_for(lambda: not os.path.exists('/proc/%d' % helper2), 5, 'helper gone with the relay')


def test_sigterm_finishes_in_flight_requests_and_their_charges(env):
    # SPEC: on SIGTERM stop accepting, finish what is in flight, sync the
    # ledger and exit 0. The answers held for group commit must go out too.
    m, r = start(env, overdraft='1000', ledger='relay-ledger.jsonl sync=batch')
    n = 10
    results = []

    def one():
        try:
            res = http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                       {'model': 'gpt-5.2', 'messages': []},
                       {'Authorization': 'Bearer ' + KEY, 'x-mock': 'stall:400'})
            results.append((res.status, res.header('x-request-id'), res.json()))
        except Exception as e:
            results.append((str(e), None, None))
    before = m.stats()['requests']
    ts = [threading.Thread(target=one) for _ in range(n)]
    for t in ts:
        t.start()
    wait_for(lambda: m.stats()['requests'] - before >= n, 10, 'all requests at the mock')
    r.proc.send_signal(signal.SIGTERM)

    def refused():
        try:
            socket.create_connection(('127.0.0.1', r.port), 1).close()
            return False
        except (ConnectionRefusedError, ConnectionResetError):
            # reset: it reached the backlog just as the listener closed
            return True
    wait_for(refused, 5, 'the listener closed while requests are in flight')
    assert r.proc.poll() is None, 'exited before its requests were done'
    for t in ts:
        t.join(10)
    assert r.proc.wait(10) == 0
    assert len(results) == n and all(st == 200 and body and body.get('usage')
                                     for st, _, body in results), results
    ids = [l['id'] for l in ledger_lines(r) if l['type'] == 'charge']
    assert sorted(ids) == sorted(rid for _, rid, _ in results)
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_tamper_is_detected_and_named(env):
    m, r = start(env, overdraft='1000')
    for _ in range(5):
        assert chat(r).status == 200
    r.stop()
    path = os.path.join(r.workdir, 'relay-ledger.jsonl')
    good = open(path, 'rb').read().splitlines(keepends=True)
    assert len(good) == 5

    def verify(lines):
        with open(path, 'wb') as f:
            f.writelines(lines)
        return subprocess.run([RELAY, 'ledger', 'verify', path], capture_output=True, text=True)
    p = verify(good)
    assert p.returncode == 0, p.stderr
    digit = good[2].replace(b'"in":12', b'"in":13')
    assert digit != good[2]
    p = verify(good[:2] + [digit] + good[3:])
    assert p.returncode == 1 and 'line 4' in p.stderr, p.stderr
    p = verify(good[:2] + good[3:])
    assert p.returncode == 1 and 'line 3' in p.stderr, p.stderr
    p = verify(good[:1] + [good[2], good[1]] + good[3:])
    assert p.returncode == 1 and 'line 2' in p.stderr, p.stderr
    # the relay refuses to start on a broken chain, unless told to
    verify(good[:2] + good[3:])
    r2 = env.start_relay(open(r.conf).read(), env={'MOCK_KEY_1': 'sk-up'}, wait=False)
    assert r2.proc.wait(10) == 1 and 'hash chain broken' in r2.log(), r2.log()


def test_torn_tail_is_cut_and_a_second_relay_is_refused(env):
    m, r = start(env, overdraft='1000')
    assert chat(r).status == 200
    # a second relay on the same ledger is refused (lock)
    other = os.path.join(env.dir, 'second')
    os.mkdir(other)
    cfg = open(r.conf).read().replace('ledger relay-ledger.jsonl', 'ledger %s/relay-ledger.jsonl' % r.workdir)
    with open(os.path.join(other, 'relay.conf'), 'w') as f:
        f.write(cfg)
    p = subprocess.run([RELAY, '-c', 'relay.conf'], cwd=other, capture_output=True, text=True, timeout=10)
    assert p.returncode == 1 and 'locked by another relay' in p.stderr, p.stderr
    r.stop()
    path = os.path.join(r.workdir, 'relay-ledger.jsonl')
    with open(path, 'ab') as f:
        f.write(b'{"ts":"2026-11-24T22:10:00.123Z","type":"cha')
    r2 = env.start_relay(open(r.conf).read(), env={'MOCK_KEY_1': 'sk-up'})
    assert 'torn' in r2.log(), r2.log()
    assert open(path + '.torn', 'rb').read().rstrip(b'\n').endswith(b'"type":"cha')
    assert chat(r2).status == 200
    r2.stop()
    p = subprocess.run([RELAY, 'ledger', 'verify', path], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def task_relay(env, poll_ms='300000'):
    m = env.start_mock()
    c = config(m.port, providers=[
        'provider ark base=http://127.0.0.1:%d/api/v3' % m.port,
        'credential ark env:A1', 'credential ark env:A2'],
        models=['model doubao-seedance-2-0-pro video - 6.40 ark/doubao-seedance-2-0-pro-250528',
                'model gpt-5.2 text 1.75 14.00 ark/gpt-5.2'],
        extra='admin_key sha256:%s\ncurrency CNY rate=7.2000' % sha256_hex(ADMIN))
    r = env.start_relay(c, env={'A1': 'sk-ark-1', 'A2': 'sk-ark-2', 'RELAY_TASK_POLL_MS': poll_ms})
    return m, r


def create_task(r, script):
    return http('127.0.0.1', r.port, 'POST', '/v1/contents/generations/tasks',
                {'model': 'doubao-seedance-2-0-pro', 'content': [{'type': 'text', 'text': 'a cat'}]},
                {'Authorization': 'Bearer ' + KEY, 'x-mock': script})


def get_task(r, tid, method='GET', key=KEY):
    return http('127.0.0.1', r.port, method, '/v1/contents/generations/tasks/' + tid, None,
                {'Authorization': 'Bearer ' + key})


def test_video_task_charged_once_on_the_creating_credential(env):
    m, r = task_relay(env)
    tasks = []
    for _ in range(2):     # the cursor puts them on different credentials
        res = create_task(r, 'task:2')
        assert res.status == 200, res.body
        tasks.append(res.json()['id'])
    assert [l['type'] for l in ledger_lines(r)] == ['task', 'task'], ledger_lines(r)
    creds = {l['id']: l['cred'] for l in ledger_lines(r)}
    assert sorted(creds.values()) == ['ark#1', 'ark#2'], creds
    for tid in tasks:
        res = get_task(r, tid)
        assert res.status == 200 and res.json()['status'] == 'running', res.body
        res = get_task(r, tid)
        assert res.json()['status'] == 'succeeded', res.body
        for _ in range(2):   # polling again never charges again
            assert get_task(r, tid).json()['status'] == 'succeeded'
    st = m.stats()['tasks']
    assert all(st[t]['polls'] == 4 for t in tasks), st   # none went to the wrong key
    charges = [l for l in ledger_lines(r) if l['type'] == 'charge']
    assert sorted(c['task'] for c in charges) == sorted(tasks), charges
    usd, cny = reference(0, 108900, '0', '6.40')
    for c in charges:
        assert (c['out'], c['usd_nano'], c['cny_nano']) == (108900, usd, cny), c
    # an unknown id and another wallet's view are both 404
    assert get_task(r, 'cgt-nope').status == 404
    p = subprocess.run([RELAY, 'ledger', 'verify', 'relay-ledger.jsonl'], cwd=r.workdir,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr


def test_failed_task_is_not_charged(env):
    m, r = task_relay(env)
    tid = create_task(r, 'taskfail:1').json()['id']
    assert get_task(r, tid).json()['status'] == 'failed'
    lines = ledger_lines(r)
    assert lines[-1]['type'] == 'charge' and lines[-1]['task'] == tid and lines[-1]['cny_nano'] == 0, lines
    assert get_task(r, tid, 'DELETE').status == 200


def test_task_the_client_never_polls_is_charged_by_the_relay(env):
    m, r = task_relay(env, poll_ms='200')
    tid = create_task(r, 'task:2').json()['id']

    def charged():
        return [l for l in ledger_lines(r) if l['type'] == 'charge' and l.get('task') == tid]
    wait_for(charged, 10, 'the relay to poll the task to success')
    time.sleep(0.6)   # several more poll rounds: still exactly one charge
    assert len(charged()) == 1 and charged()[0]['id'] == 'relay-poll', charged()
    assert m.stats()['tasks'][tid]['polls'] == 2
    # survives a restart: the task record is in the ledger, not in memory
    r.stop()
    r2 = env.start_relay(open(r.conf).read(), env={'A1': 'sk-ark-1', 'A2': 'sk-ark-2',
                                                   'RELAY_TASK_POLL_MS': '200'})
    tid2 = create_task(r2, 'task:1').json()['id']
    r2.stop()
    r3 = env.start_relay(open(r.conf).read(), env={'A1': 'sk-ark-1', 'A2': 'sk-ark-2',
                                                   'RELAY_TASK_POLL_MS': '200'})
    wait_for(lambda: [l for l in ledger_lines(r3) if l.get('task') == tid2], 10, 'restart poll')


def test_disconnect_drain_charges_the_providers_usage(env):
    # `disconnect drain`: a client that hangs up mid-stream leaves the
    # upstream read to its end, and the provider's own usage is charged,
    # not an estimate (SPEC §8). With the default (close) the same hang-up
    # is charged on an estimate marked cut by the client.
    for mode, exact in (('drain', True), ('close', False)):
        m = env.start_mock()
        for f in ('relay-ledger.jsonl', 'relay-ledger.jsonl.queue'):
            if os.path.exists(os.path.join(env.dir, f)):
                os.unlink(os.path.join(env.dir, f))
        r = env.start_relay(conf(m.port, creds=('sk-up',), overdraft='100') +
                            'disconnect %s\n' % mode, env={'MOCK_KEY_1': 'sk-up'})
        s = connect(r.port)
        body = b'{"model":"gpt-5.2","stream":true,"max_tokens":500}'
        s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
                  KEY.encode() + b'\r\nx-mock: sse:20:20\r\nContent-Length: %d\r\n\r\n' %
                  len(body) + body)
        s.settimeout(5)
        got = b''
        while b'tok1' not in got:
            got += s.recv(4096)
        s.close()
        wait_for(lambda: [l for l in ledger_lines(r) if l['type'] == 'charge'], 10,
                 'charge line')
        charges = [l for l in ledger_lines(r) if l['type'] == 'charge']
        assert len(charges) == 1, charges
        c = charges[0]
        if exact:
            # the mock's usage chunk: 12 in, 34 out
            assert (c['in'], c['out']) == (12, 34) and 'estimated' not in c, c
            assert 'drained after the client left' in r.log(), r.log()
        else:
            assert c['estimated'] is True and c['cut'] == 'client', c
            assert c['out'] < 34, c
        r.stop()
        m.stop()


def test_usage_lists_the_callers_recent_charges_and_14_days(env):
    # GET /v1/usage (SPEC §11): the caller's own charges, newest first,
    # with tokens, cost and duration, and the spend of the last 14 UTC
    # days; rebuilt from the ledger after a restart (durations unknown).
    m, r = start(env, overdraft='100')
    assert credit(r, '50.00').status == 200
    ids = []
    for mt in (10, 20, 30):
        res = chat(r, {'model': 'gpt-5.2', 'messages': [], 'max_tokens': mt})
        assert res.status == 200, res.body
        ids.append(res.header('x-request-id'))
    res = http('127.0.0.1', r.port, 'GET', '/v1/usage?limit=2', None,
               {'Authorization': 'Bearer ' + KEY})
    assert res.status == 200, res.body
    d = res.json()
    assert d['wallet'] == 'acme' and d['currency'] == 'CNY'
    assert [x['id'] for x in d['requests']] == [ids[2], ids[1]], d['requests']
    x = d['requests'][0]
    usd = Decimal(12 * 1750 + 34 * 14000) / Decimal(10**9)
    cny = (usd * Decimal('7.2')).quantize(Decimal('0.000000001'), rounding=ROUND_HALF_EVEN)
    assert (x['model'], x['in'], x['cached'], x['cache_write'], x['out'], x['status'],
            x['estimated']) == ('gpt-5.2', 12, 0, 0, 34, 200, False), x
    assert Decimal(x['cost']) == cny and Decimal(x['cost_usd']) == usd, x
    assert isinstance(x['ms'], int) and x['ms'] >= 0, x
    assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', x['ts']), x
    days = d['days']
    assert len(days) == 14 and days[-1]['day'] == time.strftime('%Y-%m-%d', time.gmtime())
    assert days[-1]['requests'] == 3 and Decimal(days[-1]['cost']) == 3 * cny, days[-1]
    assert all(x['requests'] == 0 for x in days[:-1])
    assert http('127.0.0.1', r.port, 'GET', '/v1/usage').status == 401
    # after a restart: the same charges from the ledger, durations unknown
    r.stop()
    r2 = env.start_relay(conf(m.port, overdraft='100'), env={'MOCK_KEY_1': 'sk-up'})
    d2 = http('127.0.0.1', r2.port, 'GET', '/v1/usage', None,
              {'Authorization': 'Bearer ' + KEY}).json()
    assert [x['id'] for x in d2['requests']] == ids[::-1]
    assert all(x['ms'] is None for x in d2['requests'])
    assert d2['days'][-1]['requests'] == 3
