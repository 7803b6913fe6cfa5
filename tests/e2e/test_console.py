"""The developer console (GET /, SPEC §11) in a real browser: Debian's
Chromium driven by the pinned playwright-core (tests/clients/
console_browser.mjs), at 1280 and 360 px wide. Assertions are on the
rendered text (innerText), not the HTML. Screenshots are kept under
build/console/ (test artifacts, not committed).

Without /usr/bin/chromium (or $CHROMIUM) or playwright-core these tests
fail, never skip: .ci/run installs both.

GET /v1/usage (the last requests and the 14-day chart) is being written
now: test_console_usage_stub renders the contract's shape from a stub
served to the page's own fetch (Playwright's route), and
test_console_wallet checks the real endpoint end to end as soon as the
relay answers it (until then, that the page says usage is not available
and still shows the wallet)."""
import json
import os
import re
import subprocess
from decimal import Decimal, ROUND_HALF_EVEN

from harness import CLIENTS, KEY, ROOT, config, cred_env, http, sha256_hex

CHROMIUM = os.environ.get('CHROMIUM', '/usr/bin/chromium')
SHOTS = os.path.join(ROOT, 'build', 'console')
DASH = '\u2014'
ADMIN = 'rk-admin-test-0000000000000000000009'
WRONG = 'rk-not-a-key-000000000000000000000'
# The families of the published catalog, in its order (SPEC §11).
PUBLISHED_FAMILIES = ['claude', 'deepseek-v', 'doubao-seedance', 'gpt', 'gpt-image',
                      'text-embedding']


def browse(plan):
    """Run the browser driver on plan; returns its result (one dict per
    width in result['runs'])."""
    assert os.access(CHROMIUM, os.X_OK), (
        'Chromium is not installed at %s: apt-get install chromium '
        '(.ci/run installs it; $CHROMIUM names another binary)' % CHROMIUM)
    assert os.path.isdir(os.path.join(CLIENTS, 'node_modules', 'playwright-core')), (
        'playwright-core is not installed: (cd tests/clients && npm ci)')
    os.makedirs(SHOTS, exist_ok=True)
    p = subprocess.run(['node', os.path.join(CLIENTS, 'console_browser.mjs'), json.dumps(plan)],
                       capture_output=True, text=True, timeout=180,
                       env=dict(os.environ, CHROMIUM=CHROMIUM))
    lines = [l for l in p.stdout.splitlines() if l.startswith('{')]
    assert lines, 'console_browser.mjs printed nothing (exit %s): %s' % (p.returncode, p.stderr[-2000:])
    res = json.loads(lines[-1])
    assert res['error'] is None, res['error']
    assert [r['width'] for r in res['runs']] == [w if isinstance(w, int) else w['width']
                                                 for w in plan['widths']], res
    return res


def catalog_of(conf_text):
    """[(alias, family, modality, in, out)] of a config's model lines in
    alias order (as /v1/models lists them); the family is the alias up to
    its first digit, trailing '-' dropped."""
    out = []
    for line in conf_text.splitlines():
        w = line.split('#')[0].split()
        if w and w[0] == 'model':
            alias = w[1]
            fam = re.match(r'[^0-9]*', alias).group(0).rstrip('-') or alias
            out.append((alias, fam, w[2], w[3], w[4]))
    return sorted(out)


def price(text):
    """A config price as the console writes it: '$' and the digits as
    written, at least two decimals; '-' is a dash."""
    if text == '-':
        return DASH
    i, _, f = text.partition('.')
    return '$%s.%s' % (i, f.ljust(2, '0'))


def money(d):
    """A Decimal as the console writes an amount: grouped, at least two
    decimals, no trailing zeros beyond."""
    s = '{:,.9f}'.format(d).rstrip('0')
    i, _, f = s.partition('.')
    return i + '.' + f.ljust(2, '0')


def check_page_basics(run, where):
    """What must hold on every page load: no other origin, no console
    error (a CSP violation is one; Chromium's own line for an answer with
    an error status is not), no horizontal scroll."""
    assert run['foreign'] == [], '%s: requests for another origin: %s' % (where, run['foreign'])
    errors = [e for e in run['errors'] if not e.startswith(
        'error: Failed to load resource: the server responded with a status of ')]
    assert errors == [], '%s: console errors: %s' % (where, errors)
    for name in ('catalog_only', 'obs', 'wrong', 'forgotten'):
        o = run.get(name)
        if not o:
            continue
        assert o['scroll_width'] <= o['client_width'] and o['body_scroll_width'] <= o['client_width'], (
            '%s %s: horizontal scroll at %d px: scrollWidth %d, clientWidth %d; too wide: %s' % (
                where, name, run['width'], o['scroll_width'], o['client_width'], o['too_wide']))
        assert o['title'] == 'Relay console'


def check_catalog(o, conf_text, where):
    """The catalog as the config publishes it: families in order, each
    alias under its family in order, modality labels, prices exactly."""
    cat = catalog_of(conf_text)
    fams = []
    for _, fam, _, _, _ in cat:
        if fam not in fams:
            fams.append(fam)
    assert o['families'] == fams, '%s: family headings %s, want %s' % (where, o['families'], fams)
    assert o['live'] == '%d models live' % len(cat), '%s: %r' % (where, o['live'])
    assert ('%d models live' % len(cat)) in o['text']
    got = [(r['alias'], t['family'], r['modality'], r['input'].split('\n')[0], r['output'])
           for t in o['catalog'] for r in t['rows']]
    want = [(a, f, m, price(i), price(out)) for a, f, m, i, out in cat]
    assert got == want, '%s: catalog rows\n got  %s\n want %s' % (where, got, want)
    for t in o['catalog']:
        assert t['head'] == ['model', 'in / 1M', 'out / 1M'], t['head']
    # The text a reader sees, not only the cells.
    for a, _, m, i, out in cat:
        assert a in o['text'], a
    assert 'Routing and failover' in o['headings']
    for words in ('round-robin', 'cooling down', '503', 'Retry-After', 'x-relay-route',
                  'x-relay-attempts'):
        assert words in o['routing'], '%s: routing text lacks %r: %s' % (where, words, o['routing'])


def default_conf():
    """configs/relay.conf (the embedded default catalog) on an ephemeral
    port: the published catalog in open mode."""
    with open(os.path.join(ROOT, 'configs', 'relay.conf')) as f:
        text = f.read()
    served = re.sub(r'(?m)^listen\s+127\.0\.0\.1:8080\s*$', 'listen 127.0.0.1:0', text)
    assert served != text, 'configs/relay.conf no longer listens on 127.0.0.1:8080'
    return text, served


def test_console_published_catalog(env):
    text, served = default_conf()
    r = env.start_relay(served)
    base = 'http://127.0.0.1:%d/' % r.port
    # Open mode: any key shows the wallet 'default' (the relay's Origin
    # check lets its own page through).
    anykey = 'rk-open-mode-0000000000000000000000'
    res = browse({'url': base, 'widths': [1280, 360], 'key': anykey,
                  'shots': os.path.join(SHOTS, 'catalog')})
    for run in res['runs']:
        where = 'default catalog at %d px' % run['width']
        check_page_basics(run, where)
        for o in (run['catalog_only'], run['obs']):
            check_catalog(o, text, where)
        o = run['obs']
        # SPEC §11 names the families and the figures outright.
        assert o['families'] == PUBLISHED_FAMILIES, o['families']
        assert o['live'] == '17 models live'
        rows = {r['alias']: r for t in o['catalog'] for r in t['rows']}
        assert (rows['claude-3-5-sonnet']['input'], rows['claude-3-5-sonnet']['output']) == ('$3.00', '$15.00')
        assert (rows['deepseek-v4-flash']['input'], rows['deepseek-v4-flash']['output']) == ('$0.140', '$0.281')
        assert (rows['doubao-seedance-2-0-pro']['input'], rows['doubao-seedance-2-0-pro']['output']) == (DASH, '$6.40')
        assert (rows['gpt-image-2']['input'], rows['gpt-image-2']['output']) == (DASH, DASH)
        assert (rows['text-embedding-3-small']['input'], rows['text-embedding-3-small']['output']) == ('$0.019', DASH)
        assert [rows[a]['modality'] for a in ('claude-3-5-sonnet', 'doubao-seedance-2-0-pro',
                                              'gpt-image-2', 'text-embedding-3-small')] == \
            ['text', 'video', 'image', 'embeddings']
        # Before a key: only the page and the catalog, with no key.
        paths = [q['path'] for q in run['requests']]
        assert paths[:2] == ['/', '/v1/models'], paths
        assert all(q['auth'] is None for q in run['requests'][:2])
        assert run['catalog_only']['mine_hidden'] and run['catalog_only']['wallet'] == []
        # With one: the open-mode wallet.
        assert paths[2:] == ['/v1/wallet', '/v1/usage?limit=50'], paths
        cards = {c['label']: c['value'] for c in o['wallet']}
        assert cards['Wallet'] == 'default' and cards['Balance'] == '0.00 CNY\n$0.00 USD', cards
        check_key_kept_in_page(run, anykey, where)
        assert os.path.getsize(run['shot']) > 10000
    assert 'gpt-5.5-openai-compact' in res['runs'][1]['obs']['text']


def wallet_conf(mock_port):
    models = ['model gpt-5.2 text 1.75 14.00 cached=0.175 mock/gpt-5.2-2026-01-01',
              'model gpt-4.1-mini text 0.150 0.6 mock/gpt-4.1-mini',
              'model text-embedding-3-small embeddings 0.019 - mock/text-embedding-3-small',
              'model claude-3-5-sonnet text 3.00 15.00 mock/claude-3-5-sonnet-20241022']
    return config(mock_port, models=models, overdraft='100',
                  extra='admin_key sha256:%s\ncurrency CNY rate=7.2000\n' % sha256_hex(ADMIN))


def start_wallet_relay(env):
    m = env.start_mock()
    conf = wallet_conf(m.port)
    r = env.start_relay(conf, env=cred_env())
    res = http('127.0.0.1', r.port, 'POST', '/admin/wallets/acme/credit', {'amount': '1000.00'},
               {'Authorization': 'Bearer ' + ADMIN})
    assert res.status == 200, res.body
    auth = {'Authorization': 'Bearer ' + KEY}
    for body in ({'model': 'gpt-5.2', 'messages': [], 'max_tokens': 100},
                 {'model': 'claude-3-5-sonnet', 'messages': [], 'max_tokens': 50}):
        path = '/v1/messages' if body['model'].startswith('claude') else '/v1/chat/completions'
        res = http('127.0.0.1', r.port, 'POST', path, body, auth)
        assert res.status == 200, res.body
    w = http('127.0.0.1', r.port, 'GET', '/v1/wallet', headers=auth)
    assert w.status == 200, w.body
    return m, r, conf, w.json()


def check_wallet_cards(o, w, where, overdraft=None):
    cards = {c['label']: c['value'] for c in o['wallet']}
    usd = Decimal(w['balance_usd']).quantize(Decimal('0.01'), rounding=ROUND_HALF_EVEN)
    want = {
        'Wallet': w['wallet'],
        'Balance': '%s CNY\n$%s USD' % (money(Decimal(w['balance'])), money(usd)),
        'Held for requests in flight': '%s CNY' % money(Decimal(w['held_nano']) / 10**9),
        'Overdraft allowed': DASH if overdraft is None else '%s CNY' % money(Decimal(overdraft)),
        'Spent today (UTC)': '%s CNY\n%d request%s' % (
            money(Decimal(w['today']['charged_nano']) / 10**9), w['today']['requests'],
            '' if w['today']['requests'] == 1 else 's'),
    }
    assert cards == want, '%s: wallet cards\n got  %s\n want %s' % (where, cards, want)
    for v in want.values():
        assert v.split('\n')[0] in o['text'], v


def check_key_kept_in_page(run, key, where):
    """The key was sent only as a header to the relay: never in a URL,
    storage, a cookie or the page's HTML and text."""
    for name in ('obs', 'wrong'):
        o = run.get(name)
        if not o:
            continue
        assert key not in o['href'] and o['href'].endswith('/'), '%s: URL %s' % (where, o['href'])
        assert o['local'] == {} and o['session'] == {} and o['cookie'] == '', (
            '%s: storage %s %s %r' % (where, o['local'], o['session'], o['cookie']))
        assert o['key_type'] == 'password'
    assert not run['obs']['key_in_html'] and not run['obs']['key_in_text'], where
    assert run['cookies'] == [], run['cookies']
    for q in run['requests']:
        assert key not in q['url'], q
        if q['auth'] is not None:
            assert q['path'].split('?')[0] in ('/v1/wallet', '/v1/usage'), q


def test_console_wallet(env):
    m, r, conf, w = start_wallet_relay(env)
    base = 'http://127.0.0.1:%d/' % r.port
    usage = http('127.0.0.1', r.port, 'GET', '/v1/usage?limit=50',
                 headers={'Authorization': 'Bearer ' + KEY})
    res = browse({'url': base, 'widths': [1280, 360], 'key': KEY, 'wrong_key': WRONG,
                  'forget': True, 'shots': os.path.join(SHOTS, 'wallet')})
    for run in res['runs']:
        where = 'wallet at %d px' % run['width']
        check_page_basics(run, where)
        o = run['obs']
        check_catalog(o, conf, where)
        rows = {r['alias']: r for t in o['catalog'] for r in t['rows']}
        assert rows['gpt-5.2']['input'] == '$1.75\ncached $0.175', rows['gpt-5.2']
        assert rows['gpt-4.1-mini']['output'] == '$0.60', rows['gpt-4.1-mini']
        # A wrong key: the relay's own message, nothing of the wallet.
        assert run['wrong']['err'] == 'unknown API key', run['wrong']['err']
        assert run['wrong']['mine_hidden'] and run['wrong']['wallet'] == []
        # The right key: the wallet as /v1/wallet has it, formatted.
        assert o['err'] == '' and not o['mine_hidden'], o['err']
        check_wallet_cards(o, w, where, overdraft=w.get('overdraft'))
        assert w['today']['requests'] == 2 and w['today']['charged_nano'] > 0, w
        check_key_kept_in_page(run, KEY, where)
        assert any(q['path'] == '/v1/wallet' and q['auth'] == 'Bearer ' + KEY for q in run['requests'])
        if usage.status == 200:
            # /v1/usage is on this relay: the page shows what it answers.
            u = usage.json()
            assert len(o['usage_rows']) == len(u['requests']) == 2, o['usage_rows']
            assert [x[1] for x in o['usage_rows']] == [q['model'] for q in u['requests']]
            assert len(o['bars']) == 14 and o['bars'][-1]['day'] == u['days'][-1]['day'], o['bars']
            assert o['bars'][-1]['cls'] == 'bar', o['bars'][-1]
            for x, q in zip(o['usage_rows'], u['requests']):
                assert x[2] == '{:,}'.format(q['in']) and x[4] == '{:,}'.format(q['out']), (x, q)
                assert x[5].startswith(money(Decimal(q['cost']))) and x[6] == str(q['status']), (x, q)
        else:
            # Not there yet: the page says so and keeps the wallet.
            assert o['usage_hidden'] and o['usage_note'].startswith('Usage is not available'), o['usage_note']
            assert o['svg'] == 0 and o['usage_rows'] == []
        # Forget: the key leaves the page.
        f = run['forgotten']
        assert f['key_value'] == '' and f['mine_hidden'] and f['wallet'] == [], f['wallet']


# /v1/usage as its contract has it (newest first; 14 days, today last).
STUB_DAYS = [('2026-11-22', '0.00', 0), ('2026-11-23', '1.25', 3), ('2026-11-24', '0.00', 0),
             ('2026-11-25', '12.50', 40), ('2026-11-26', '3.1', 7), ('2026-11-27', '0.00', 0),
             ('2026-11-28', '0.00', 0), ('2026-11-29', '7.0000001', 12), ('2026-11-30', '0.00', 0),
             ('2026-12-01', '2.00', 1), ('2026-12-02', '0.00', 0), ('2026-12-03', '1000.99', 1234),
             ('2026-12-04', '0.00', 0), ('2026-12-05', '0.0042', 3)]
STUB_REQUESTS = [
    {'ts': '2026-12-05T06:00:00.123Z', 'id': 'req_c', 'model': 'gpt-5.2', 'in': 12, 'cached': 0,
     'cache_write': 0, 'out': 34, 'cost': '0.0012', 'cost_usd': '0.000166', 'status': 200, 'ms': 5,
     'estimated': False},
    {'ts': '2026-12-05T05:59:58.000Z', 'id': 'req_b', 'model': 'claude-3-5-sonnet', 'in': 1234567,
     'cached': 2000, 'cache_write': 512, 'out': 15, 'cost': '27.5', 'cost_usd': '3.819444444',
     'status': 200, 'ms': None, 'estimated': True},
    {'ts': '2026-12-04T23:10:00.000Z', 'id': 'req_a', 'model': 'gpt-5.4-openai-compact', 'in': 0,
     'cached': 0, 'cache_write': 0, 'out': 0, 'cost': '0.00', 'cost_usd': '0.00', 'status': 503,
     'ms': 1201, 'estimated': False},
]


def usage_stub():
    return {'wallet': 'acme', 'currency': 'CNY', 'requests': STUB_REQUESTS,
            'days': [{'day': d, 'cost': c, 'requests': n} for d, c, n in STUB_DAYS]}


def test_console_usage_stub(env):
    """The usage table and the 14-day chart rendered from /v1/usage's
    contract (served to the page by a stub), and a wallet with the
    overdraft and amounts beyond 2^53 nano (exact, never floating point)."""
    m, r, conf, w = start_wallet_relay(env)
    base = 'http://127.0.0.1:%d/' % r.port
    big = {'wallet': 'acme', 'currency': 'CNY', 'balance': '12345678.123456789',
           'balance_nano': 12345678123456789, 'balance_usd': '1714677.517146776',
           'held_nano': 9007199254740993, 'today': {'charged_nano': 4200000, 'requests': 3},
           'overdraft': '100.00'}
    stub = json.dumps(usage_stub())
    # 1280 and 360 px: both stubs. 800 px: the real relay's wallet with
    # the overdraft member appended, as /v1/wallet will have it.
    res = browse({'url': base, 'key': KEY,
                  'stubs': {'/v1/usage?limit=50': {'body': stub}, '/v1/wallet': {'body': json.dumps(big)}},
                  'shots': os.path.join(SHOTS, 'usage'),
                  'widths': [1280, 360, {'width': 800, 'stubs': {'/v1/usage?limit=50': {'body': stub}},
                                         'wallet_extra': ',"overdraft":"100.00"',
                                         'shots': os.path.join(SHOTS, 'overdraft')}]})
    over = res['runs'].pop()
    check_page_basics(over, 'overdraft')
    check_wallet_cards(over['obs'], dict(w, overdraft='100.00'), 'relay wallet + overdraft',
                       overdraft='100.00')
    for run in res['runs']:
        where = 'usage stub at %d px' % run['width']
        check_page_basics(run, where)
        check_key_kept_in_page(run, KEY, where)
        o = run['obs']
        cards = {c['label']: c['value'] for c in o['wallet']}
        assert cards['Balance'] == '12,345,678.123456789 CNY\n$1,714,677.52 USD', cards
        assert cards['Held for requests in flight'] == '9,007,199.254740993 CNY', cards
        assert cards['Overdraft allowed'] == '100.00 CNY', cards
        assert cards['Spent today (UTC)'] == '0.0042 CNY\n3 requests', cards
        # The request the page made: its own key, at most 50 rows.
        uq = [q for q in run['requests'] if q['path'].startswith('/v1/usage')]
        assert [(q['path'], q['auth']) for q in uq] == [('/v1/usage?limit=50', 'Bearer ' + KEY)], uq
        # The last requests: time, model, tokens incl. cached, cost, status, ms.
        assert o['recent_heading'] == 'Last 50 requests'
        assert o['usage_head'] == ['time (UTC)', 'model', 'in', 'cached', 'out', 'cost (CNY)',
                                   'status', 'ms'], o['usage_head']
        assert o['usage_rows'] == [
            ['2026-12-05 06:00:00', 'gpt-5.2', '12', '0', '34', '0.0012', '200', '5'],
            ['2026-12-05 05:59:58', 'claude-3-5-sonnet', '1,234,567', '2,000 + 512 write', '15',
             '27.50 (est.)', '200', DASH],
            ['2026-12-04 23:10:00', 'gpt-5.4-openai-compact', '0', '0', '0', '0.00', '503', '1,201'],
        ], o['usage_rows']
        for line in ('gpt-5.4-openai-compact', '1,234,567', '27.50 (est.)', '1,201'):
            assert line in o['text'], line
        # The chart: 14 bars, oldest first, today last; the highest day is
        # the tallest bar; zero days are a flat mark.
        assert o['svg'] == 1 and len(o['bars']) == 14, o['bars']
        assert [b['day'] for b in o['bars']] == [d for d, _, _ in STUB_DAYS]
        top = max(o['bars'], key=lambda b: b['h'])
        assert top['day'] == '2026-12-03' and top['cls'] == 'bar', top
        assert all(b['cls'] == 'bar zero' for b, (_, c, _) in zip(o['bars'], STUB_DAYS) if c == '0.00')
        assert o['bars'][-1]['title'] == '2026-12-05: 0.0042 CNY, 3 requests', o['bars'][-1]
        assert o['chart_peak'] == 'peak 1,000.99 CNY', o['chart_peak']
        assert o['chart_labels'] == ['11-22', '11-29', 'today'], o['chart_labels']
        total = sum(Decimal(c) for _, c, _ in STUB_DAYS)
        assert o['chartsum'] == '14 days: %s CNY, 1,300 requests' % money(total), o['chartsum']
        assert o['chart_width'] > 300, o['chart_width']
    # At 360 px the rows are cards, each value labelled.
    narrow = res['runs'][1]['obs']
    assert narrow['usage_row_display'] == 'block', narrow['usage_row_display']
    assert narrow['usage_labels'][:2] == ['time (UTC)', 'model'], narrow['usage_labels']
    assert res['runs'][0]['obs']['usage_row_display'] == 'table-row'
