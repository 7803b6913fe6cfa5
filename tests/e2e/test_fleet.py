"""Several relays (SPEC §12): each keeps its own hash-chained ledger whose
lines say which relay wrote them ("node"), and `relay ledger report`
merges the ledgers of a fleet."""
import json
import os
import subprocess

from harness import KEY, RELAY, config, http

AUTH = {'Authorization': 'Bearer ' + KEY}

def lines(r, name):
    http('127.0.0.1', r.port, 'GET', '/healthz')  # the pass that answered has written
    with open(os.path.join(r.workdir, name), 'rb') as f:
        return [json.loads(l) for l in f.read().splitlines()]


def chat(r):
    return http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                {'model': 'gpt-5.2', 'messages': [], 'max_tokens': 100}, AUTH)


def test_each_relay_names_itself_and_report_merges_their_ledgers(env):
    m = env.start_mock()
    relays = []
    for name, n in (('relay-a', 2), ('relay-b', 3)):
        conf = config(m.port, ledger='ledger-%s.jsonl sync=none' % name,
                      extra='currency CNY rate=7.2000\nnode %s' % name)
        r = env.start_relay(conf, env={'MOCK_KEY_1': 'sk-up'})
        relays.append((r, name))
        for _ in range(n):
            assert chat(r).status == 200
    for r, name in relays:
        got = lines(r, 'ledger-%s.jsonl' % name)
        assert len(got) == (2 if name == 'relay-a' else 3)
        assert all(l['node'] == name for l in got), got
        p = subprocess.run([RELAY, 'ledger', 'verify', 'ledger-%s.jsonl' % name], cwd=r.workdir,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    wd = relays[0][0].workdir
    p = subprocess.run([RELAY, 'ledger', 'report', 'ledger-relay-a.jsonl', 'ledger-relay-b.jsonl',
                        '--by', 'node'], cwd=wd, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    rows = {l.split()[0]: l.split() for l in p.stdout.splitlines()}
    # 12 in + 34 out per request, 0.003578 CNY
    assert rows['relay-a'][1:3] == ['2', '24'] and rows['relay-b'][1:3] == ['3', '36'], p.stdout
    assert rows['total'][1] == '5' and rows['total'][-1] == '0.02', p.stdout
    p = subprocess.run([RELAY, 'ledger', 'report', 'ledger-relay-a.jsonl', 'ledger-relay-b.jsonl'],
                       cwd=wd, capture_output=True, text=True)
    rows = {l.split()[0]: l.split() for l in p.stdout.splitlines()}
    assert p.returncode == 0 and rows['acme'][1] == '5', p.stdout
    # A damaged second ledger is named.
    with open(os.path.join(wd, 'ledger-relay-b.jsonl'), 'r+b') as f:
        data = f.read()
        f.seek(0)
        f.write(data.replace(b'"in":12', b'"in":13', 1))
    p = subprocess.run([RELAY, 'ledger', 'report', 'ledger-relay-a.jsonl', 'ledger-relay-b.jsonl'],
                       cwd=wd, capture_output=True, text=True)
    assert p.returncode == 1 and p.stderr.startswith('ledger-relay-b.jsonl: line 2'), p.stderr

