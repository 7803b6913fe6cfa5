"""What an operator sees (SPEC §11): /metrics after real traffic (calls, a
failover, a cooled credential, a stream), checked by Prometheus' own
promtool; the access log and its rotation; the alert rules and the
dashboard in dist/."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess

from harness import KEY, ROOT, config, connect, http, ledger_lines, wait_for

DIST = os.path.join(ROOT, 'dist')
ALERT_TESTS = os.path.join(ROOT, 'tests', 'data', 'alerts_test.yml')
SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def promtool():
    # Debian's prometheus package (tools/setup.sh test installs it): never skipped.
    p = shutil.which('promtool')
    assert p, 'promtool is missing: apt-get install prometheus (sh tools/setup.sh test does)'
    return p


def auth(extra=None):
    h = {'Authorization': 'Bearer ' + KEY}
    h.update(extra or {})
    return h


def scrape(r):
    res = http('127.0.0.1', r.port, 'GET', '/metrics')
    assert res.status == 200, res.status
    assert res.header('content-type') == 'text/plain; version=0.0.4'
    return res.body.decode()


def parse(text):
    """{(name, (('label', 'value'), ...)): float}, and the families that
    have # HELP and # TYPE."""
    samples, helps, types = {}, set(), {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            helps.add(line.split()[2])
        elif line.startswith('# TYPE '):
            types[line.split()[2]] = line.split()[3]
        elif line:
            m = SAMPLE.match(line)
            assert m, 'not a sample line: %r' % line
            labels = tuple(sorted(LABEL.findall(m.group(2) or '')))
            key = (m.group(1), labels)
            assert key not in samples, 'duplicate series %r' % (key,)
            samples[key] = float(m.group(3))
    return samples, helps, types


def value(samples, name, **labels):
    return samples.get((name, tuple(sorted(labels.items()))))


def family_of(name, types):
    for suffix in ('_bucket', '_sum', '_count'):
        base = name[:-len(suffix)]
        if name.endswith(suffix) and types.get(base) == 'histogram':
            return base
    return name


def check_with_promtool(text):
    p = subprocess.run([promtool(), 'check', 'metrics'], input=text, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stdout.strip() == '' and p.stderr.strip() == '', \
        (p.returncode, p.stdout, p.stderr)


def traffic_config(mport, extra=''):
    return config(mport, providers=[
        'provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % mport,
        'credential mock env:MOCK_KEY_1',
        'credential mock env:MOCK_KEY_2',
        'provider bad base=http://127.0.0.1:%d/v1 auth=bearer' % mport,
        'credential bad env:BAD_KEY',
    ], models=[
        'model gpt-5.2 text 1.75 14.00 cached=0.175 mock/gpt-5.2-2026-01-01',
        'model claude-3-5-sonnet text 3.00 15.00 bad/x mock/claude-3-5-sonnet-20241022',
        'model dead text 1.00 1.00 bad/y',
    ], extra='cooldown failures=1 seconds=300\n' + extra)


TRAFFIC_ENV = {'MOCK_KEY_1': '429', 'MOCK_KEY_2': 'sk-upstream-ok-2', 'BAD_KEY': '500'}


def chat(r, model='gpt-5.2', extra=None, key=None):
    h = auth(extra) if key is None else {'Authorization': 'Bearer ' + key}
    return http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                {'model': model, 'messages': [{'role': 'user', 'content': 'hi'}]}, h)


def open_stream(r, events=30, gap_ms=100):
    """A streamed chat answer whose head and first event have arrived; the
    rest comes over gap_ms * events."""
    s = connect(r.port)
    body = json.dumps({'model': 'gpt-5.2', 'stream': True, 'messages': []}).encode()
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nx-mock: sse:%d:%d\r\nContent-Type: application/json\r\n'
              b'Content-Length: %d\r\n\r\n' % (events, gap_ms, len(body)) + body)
    got = b''
    while b'data: ' not in got:
        c = s.recv(65536)
        assert c, got
        got += c
    assert got.startswith(b'HTTP/1.1 200'), got[:200]
    return s, got


def finish_stream(s, got):
    s.settimeout(30)
    while not got.endswith(b'0\r\n\r\n'):
        c = s.recv(65536)
        assert c, 'the stream ended early: %r' % got[-200:]
        got += c
    s.close()
    assert b'[DONE]' in got
    return got


def test_metrics_after_real_traffic_are_labelled_and_pass_promtool(env):
    m = env.start_mock()
    r = env.start_relay(traffic_config(m.port), env=TRAFFIC_ENV)
    # 1: mock#1 answers 429 and cools for 300 s; mock#2 answers
    res = chat(r)
    assert res.status == 200 and res.header('x-relay-attempts') == '2', res.headers
    # 2: usage with cached tokens (86 in, 1920 cached, 300 out)
    res = chat(r, extra={'x-mock-file': 'openai_chat_cached_reasoning.http'})
    assert res.status == 200, res.body
    # 3: a failover from a 500 to the next route
    res = chat(r, 'claude-3-5-sonnet')
    assert res.status == 200 and res.header('x-relay-route') == 'mock/claude-3-5-sonnet-20241022'
    # 4: no route can answer: 503
    assert chat(r, 'dead').status == 503
    # 5: refused before routing: unknown model, unknown key
    assert chat(r, 'no-such-model').status == 404
    assert chat(r, key='rk-not-a-known-key-00000000000000').status == 401
    # 6: a stream, open while scraped
    s, got = open_stream(r)
    during, _, _ = parse(scrape(r))
    assert value(during, 'relay_open_streams') == 1
    finish_stream(s, got)
    text = scrape(r)
    check_with_promtool(text)
    samples, helps, types = parse(text)

    # every family has # HELP and # TYPE
    for (name, _) in samples:
        fam = family_of(name, types)
        assert fam in helps and fam in types, 'no HELP/TYPE for %s' % fam
    assert value(samples, 'relay_open_streams') == 0

    # requests by model and status
    req = 'relay_requests_total'
    assert value(samples, req, model='gpt-5.2', status='200') == 3
    assert value(samples, req, model='claude-3-5-sonnet', status='200') == 1
    assert value(samples, req, model='dead', status='503') == 1
    assert value(samples, req, model='(local)', status='404') == 1
    assert value(samples, req, model='(local)', status='401') == 1

    # upstream attempts by provider, credential, outcome
    att = 'relay_upstream_attempts_total'
    assert value(samples, att, provider='mock', credential='mock#1', outcome='rejected') == 1
    assert value(samples, att, provider='mock', credential='mock#2', outcome='ok') == 4
    assert value(samples, att, provider='bad', credential='bad#1', outcome='server_error') == 2
    assert value(samples, att, provider='mock', credential='mock#1', outcome='ok') is None

    # the cooled credential, and the others
    cool = 'relay_credential_cooling'
    assert 250 < value(samples, cool, provider='mock', credential='mock#1') <= 300
    assert value(samples, cool, provider='mock', credential='mock#2') == 0
    assert value(samples, cool, provider='bad', credential='bad#1') == 0

    # tokens (cached ones apart) and money, as the ledger has them
    charges = [l for l in ledger_lines(r) if l['type'] == 'charge']
    for kind, field in (('input', 'in'), ('cached', 'cached'), ('cache_write', 'cache_write'),
                        ('output', 'out')):
        want = sum(l.get(field, 0) for l in charges if l['model'] == 'gpt-5.2')
        assert (value(samples, 'relay_tokens_total', model='gpt-5.2', kind=kind) or 0) == want, kind
    assert value(samples, 'relay_tokens_total', model='gpt-5.2', kind='cached') == 1920
    # debits in the wallet currency (the default config's CNY)
    assert value(samples, 'relay_charged_nano_total', currency='CNY') == \
        sum(l['cny_nano'] for l in charges) > 0

    # histograms: one observation per answer, one TTFB per response head
    dur = 'relay_request_duration_seconds'
    assert value(samples, dur + '_count', model='gpt-5.2') == 3
    assert value(samples, dur + '_bucket', model='gpt-5.2', le='+Inf') == 3
    # the stream took about 3 s: above the 2.5 s bucket, the calls below
    assert value(samples, dur + '_bucket', model='gpt-5.2', le='2.5') == 2
    assert value(samples, dur + '_bucket', model='gpt-5.2', le='60') == 3
    assert value(samples, dur + '_sum', model='gpt-5.2') >= 2.9
    ttfb = 'relay_upstream_ttfb_seconds'
    assert value(samples, ttfb + '_count', model='gpt-5.2') == 4     # 429 + 3 answers
    assert value(samples, ttfb + '_count', model='claude-3-5-sonnet') == 2  # 500 + answer
    assert value(samples, ttfb + '_count', model='dead') == 1

    # labels come from the config, never from a secret
    for secret in [KEY, 'sk-upstream-ok-2', 'rk-not-a-known-key']:
        assert secret not in text
    labels = {v for (_, ls) in samples for (k, v) in ls if k == 'model'}
    assert labels <= {'gpt-5.2', 'claude-3-5-sonnet', 'dead', '(local)', '(none)'}, labels
    assert 'no-such-model' not in text


def test_a_client_that_leaves_first_is_499_and_its_attempt_cancelled(env):
    m = env.start_mock()
    r = env.start_relay(traffic_config(m.port, 'access_log access.log'), env=TRAFFIC_ENV)
    s = connect(r.port)
    body = json.dumps({'model': 'claude-3-5-sonnet', 'messages': []}).encode()
    # x-mock replaces the credential's script: the first route stalls
    s.sendall(b'POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ' +
              KEY.encode() + b'\r\nx-mock: stall\r\nContent-Length: %d\r\n\r\n' % len(body) + body)

    def samples():
        return parse(scrape(r))[0]
    wait_for(lambda: value(samples(), 'relay_upstream_connections') == 1, 10, 'the attempt')
    s.close()
    wait_for(lambda: value(samples(), 'relay_requests_total', model='claude-3-5-sonnet',
                           status='499') == 1, 10, 'the request counted as 499')
    got = samples()
    assert value(got, 'relay_upstream_attempts_total', provider='bad', credential='bad#1',
                 outcome='cancelled') == 1
    assert value(got, 'relay_upstream_attempts_total', provider='bad', credential='bad#1',
                 outcome='server_error') is None
    assert value(got, 'relay_upstream_connections') == 0
    # its access line: 499, the model, the route it was waiting on
    path = os.path.join(env.dir, 'access.log')
    wait_for(lambda: any(l['status'] == 499 for l in read_lines(path)[1]), 10, 'the 499 line')
    line = [l for l in read_lines(path)[1] if l['status'] == 499][0]
    assert (line['model'], line['route'], line['attempts'], line['cost']) == \
        ('claude-3-5-sonnet', 'bad/x', 1, '0.00'), line


def test_attempt_outcomes_timeout_connect_error_broken(env):
    m = env.start_mock()
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    dead = s.getsockname()[1]
    s.close()
    conf = config(m.port, timeouts='first_byte=300ms', providers=[
        'provider slow base=http://127.0.0.1:%d/v1' % m.port, 'credential slow env:S',
        'provider gone base=http://127.0.0.1:%d/v1' % dead, 'credential gone env:G',
        'provider rst base=http://127.0.0.1:%d/v1' % m.port, 'credential rst env:R',
        'provider ok base=http://127.0.0.1:%d/v1' % m.port, 'credential ok env:O',
    ], models=['model gpt-5.2 text 1.75 14.00 slow/w gone/x rst/y ok/z'])
    r = env.start_relay(conf, env={'S': 'stall', 'G': 'sk-g', 'R': 'reset', 'O': 'sk-o'})
    res = chat(r)
    assert res.status == 200 and res.header('x-relay-attempts') == '4', res.headers
    text = scrape(r)
    check_with_promtool(text)
    got = parse(text)[0]
    att = 'relay_upstream_attempts_total'
    assert value(got, att, provider='slow', credential='slow#1', outcome='timeout') == 1
    assert value(got, att, provider='gone', credential='gone#1', outcome='connect_error') == 1
    assert value(got, att, provider='rst', credential='rst#1', outcome='broken') == 1
    assert value(got, att, provider='ok', credential='ok#1', outcome='ok') == 1
    # a response head only from the last: one TTFB
    assert value(got, 'relay_upstream_ttfb_seconds_count', model='gpt-5.2') == 1


def test_metrics_series_follow_a_reload(env):
    # A reload keeps the counts of what it keeps, stops showing what it
    # drops and shows what it adds.
    m = env.start_mock()
    r = env.start_relay(traffic_config(m.port), env=TRAFFIC_ENV)
    assert chat(r).status == 200
    with open(r.conf) as f:
        conf = f.read()
    conf = conf.replace('model dead text 1.00 1.00 bad/y', 'model fresh text 1.00 1.00 mock/z')
    with open(r.conf, 'w') as f:
        f.write(conf)
    os.kill(r.proc.pid, signal.SIGHUP)
    wait_for(lambda: 'config reloaded' in r.log(), 10, 'the reload')
    assert chat(r, 'fresh').status == 200
    text = scrape(r)
    check_with_promtool(text)
    samples, _, _ = parse(text)
    assert value(samples, 'relay_requests_total', model='gpt-5.2', status='200') == 1
    assert value(samples, 'relay_requests_total', model='fresh', status='200') == 1
    assert 'model="dead"' not in text


# ---- the access log -----------------------------------------------------------

FIELDS = {'ts', 'id', 'method', 'path', 'wallet', 'model', 'route', 'attempts', 'status',
          'in', 'cached', 'cache_write', 'out', 'cost', 'currency', 'ms'}


def read_lines(path):
    with open(path, 'rb') as f:
        raw = f.read()
    lines = [json.loads(l) for l in raw.decode().splitlines()]
    for l in lines:
        assert set(l) == FIELDS, l
    return raw, lines


def test_access_log_lines_rotation_and_no_secrets(env):
    m = env.start_mock()
    path = os.path.join(env.dir, 'access.log')
    r = env.start_relay(traffic_config(m.port, 'access_log access.log'), env=TRAFFIC_ENV)
    ids = []
    res = chat(r)                                   # failover from the 429
    ids.append(res.header('x-request-id'))
    res = chat(r, extra={'x-mock-file': 'openai_chat_cached_reasoning.http'})
    ids.append(res.header('x-request-id'))
    res = chat(r, key='rk-wrong-secret-key-000000000000')   # 401
    ids.append(res.header('x-request-id'))
    res = http('127.0.0.1', r.port, 'GET', '/v1/models?key=sk-query-secret-123', None,
               {'x-api-key': 'sk-header-secret-456'})
    ids.append(res.header('x-request-id'))
    ledger = {l['id']: l for l in ledger_lines(r) if l['type'] == 'charge'}
    # The lines of a loop pass are written at its end, just after its
    # answers: once the line of a last request is in, all are.
    mark = http('127.0.0.1', r.port, 'GET', '/healthz').header('x-request-id')
    wait_for(lambda: os.path.exists(path) and mark in [l['id'] for l in read_lines(path)[1]],
             10, 'the last line')

    raw, lines = read_lines(path)
    assert [l['id'] for l in lines[:4]] == ids
    assert lines[-1]['path'] == '/healthz' and lines[-1]['status'] == 200
    first, cached, refused, models = lines[:4]
    assert first['status'] == 200 and first['attempts'] == 2 and first['wallet'] == 'acme'
    assert first['model'] == 'gpt-5.2' and first['route'] == 'mock/gpt-5.2-2026-01-01'
    assert first['method'] == 'POST' and first['path'] == '/v1/chat/completions'
    assert re.match(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$', first['ts'])
    assert (cached['in'], cached['cached'], cached['out']) == (86, 1920, 300)
    # cost in the wallet currency, as the ledger's debit
    assert cached['currency'] == 'CNY', cached
    assert round(float(cached['cost']) * 1e9) == ledger[cached['id']]['cny_nano'] > 0
    assert refused['status'] == 401 and refused['wallet'] is None and refused['model'] is None
    assert models['status'] == 200 and models['path'] == '/v1/models'

    # rotation: the file is renamed, SIGUSR1 makes the relay open a new one
    before, _ = read_lines(path)
    os.rename(path, path + '.1')
    os.kill(r.proc.pid, signal.SIGUSR1)
    wait_for(lambda: os.path.exists(path), 10, 'the access log reopened')
    res = chat(r)
    after = res.header('x-request-id')
    wait_for(lambda: len(read_lines(path)[1]) >= 1, 10, 'a line in the new file')
    assert [l['id'] for l in read_lines(path)[1]] == [after]
    old_raw, old = read_lines(path + '.1')
    assert old_raw == before, 'the rotated file changed'

    # never a secret: client keys, upstream credentials, query strings
    for blob in (raw, old_raw, read_lines(path)[0]):
        for secret in (KEY, 'rk-wrong-secret', 'sk-upstream-ok-2',
                       'sk-query-secret', 'sk-header-secret', 'Bearer'):
            assert secret.encode() not in blob, secret


def test_access_log_is_off_by_default_and_can_go_to_stderr(env):
    m = env.start_mock()
    r = env.start_relay(traffic_config(m.port), env=TRAFFIC_ENV)
    rid = chat(r).header('x-request-id')
    assert chat(r, 'claude-3-5-sonnet').status == 200
    assert not [f for f in os.listdir(env.dir) if 'access' in f]
    assert '"id":"%s"' % rid not in r.log()
    r.stop()
    r2 = env.start_relay(traffic_config(m.port, 'access_log stderr'), env=TRAFFIC_ENV)
    rid = chat(r2).header('x-request-id')
    wait_for(lambda: '"id":"%s"' % rid in r2.log(), 10, 'the line on stderr')
    line = [l for l in r2.log().splitlines() if '"id":"%s"' % rid in l][0]
    assert json.loads(line)['status'] == 200


# ---- dist/: alert rules and the dashboard ---------------------------------------

def test_alert_rules_pass_promtool_and_fire_when_they_should(env):
    p = subprocess.run([promtool(), 'check', 'rules', os.path.join(DIST, 'alerts.yml')],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    assert 'SUCCESS: 3 rules found' in p.stdout, p.stdout
    # promtool's rule unit tests: each alert fires on the series that
    # should fire it, and not before its `for` has passed
    p = subprocess.run([promtool(), 'test', 'rules', ALERT_TESTS],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 0 and 'SUCCESS' in p.stdout, p.stdout + p.stderr


def test_dashboard_queries_name_metrics_the_relay_exports(env):
    with open(os.path.join(DIST, 'grafana-dashboard.json')) as f:
        dash = json.load(f)
    exprs = [t['expr'] for p in dash['panels'] for t in p.get('targets', [])]
    assert len(exprs) >= 8, exprs
    with open(os.path.join(DIST, 'alerts.yml')) as f:
        exprs += re.findall(r'expr:\s*(.+)', f.read())
    m = env.start_mock()
    r = env.start_relay(traffic_config(m.port), env=TRAFFIC_ENV)
    chat(r)
    _, _, types = parse(scrape(r))
    names = set(types) | {n + s for n, t in types.items() if t == 'histogram'
                          for s in ('_bucket', '_sum', '_count')}
    for e in exprs:
        used = set(re.findall(r'\brelay_[a-z_]+', e))
        assert used, e
        assert used <= names, (e, used - names)
