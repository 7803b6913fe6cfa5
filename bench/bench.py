#!/usr/bin/env python3
"""Relay benchmark driver, started by bench/run.sh (`make bench`).

Everything runs on loopback. One fast upstream mock (nginx answering a fixed
chat.completion from memory) sits behind every target:

  direct   the mock itself (the floor)
  nginx    nginx as a plain reverse proxy, 1 worker, upstream keep-alive
  relay    ./relay: a client key, one route to the mock, a wallet, a ledger
  (streams also: relay-tls, the relay reaching build/mockup over TLS)
  portkey  the Portkey AI gateway 1.15.2 (Node), when installed

The proxy under test runs on CPU 0, wrk, the mocks and this driver on CPU 1.
Each figure is the median of BENCH_ROUNDS runs (default 3) with the min-max
spread; targets alternate within a round and the order flips every round
(A B C D, D C B A, ...) because the machine is small and shared.

Every process this script starts is stopped when it ends (also on Ctrl-C).
Scratch and logs go to bench/results/ (or $BENCH_OUT).
"""
import datetime
import hashlib
import json
import os
import platform
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
# BENCH_RELAY: another binary to measure (an A/B against an older build).
RELAY = os.environ.get('BENCH_RELAY') or os.path.join(ROOT, 'relay')
MOCKUP = os.path.join(ROOT, 'build', 'mockup')
OUT = os.path.abspath(os.environ.get('BENCH_OUT', os.path.join(BENCH, 'results')))
PORTKEY_JS = os.path.join(BENCH, 'node_modules', '@portkey-ai', 'gateway', 'build',
                          'start-server.js')
NGINX = shutil.which('nginx') or '/usr/sbin/nginx'
WRK = shutil.which('wrk') or 'wrk'

DUR = int(os.environ.get('BENCH_DURATION', '8'))
LDUR = int(os.environ.get('BENCH_LAT_DURATION', '5'))
ROUNDS = int(os.environ.get('BENCH_ROUNDS', '3'))
# c=1 latency: p99 of a 5 s run is decided by a few hundred requests, so
# it gets more rounds than the rest.
LROUNDS = int(os.environ.get('BENCH_LAT_ROUNDS', '5'))
STREAMS = int(os.environ.get('BENCH_STREAMS', '1000'))
STREAMS_LIGHT = int(os.environ.get('BENCH_STREAMS_LIGHT', '250'))
RAMP_MS = int(os.environ.get('BENCH_RAMP_MS', '200'))
NICE = int(os.environ.get('BENCH_NICE', '-10'))
WANT_PORTKEY = os.environ.get('BENCH_PORTKEY', '1') != '0'
ONLY = os.environ.get('BENCH_ONLY', '')          # '' = everything; 'streams' = (4) only
STREAMS_ONLY = ONLY == 'streams'
SCALING_ONLY = ONLY == 'scaling'                 # (7) only
# (7) stream scaling: N concurrent streams per run (comma-separated), the
# events of every stream (plus a usage chunk and [DONE]), the events per
# second all streams carry together (a stream's gap is N / rate), how many
# streams are opened per second at most, rounds, and whether the TLS
# upstream rows run.
SCALE_N = [int(x) for x in os.environ.get('BENCH_SCALE_N', '1000').replace('_', '').split(',')
           if x.strip()]
SCALE_EVENTS = int(os.environ.get('BENCH_SCALE_EVENTS', '50'))
SCALE_RATE = int(os.environ.get('BENCH_SCALE_RATE', '10000'))
SCALE_OPEN_RATE = int(os.environ.get('BENCH_SCALE_OPEN_RATE', '2500'))
SCALE_ROUNDS = int(os.environ.get('BENCH_SCALE_ROUNDS', os.environ.get('BENCH_ROUNDS', '3')))
SCALE_TLS = os.environ.get('BENCH_SCALE_TLS', '1') != '0'
# Real-time priority (SCHED_RR) for every process of (7), 0: nice only.
# On this shared box a niced proxy still waited on the run queue for most
# of a run (nginx: 1.4 s of 1.8 s), and the streams' timings were the
# neighbours' (TTFB p50 0.2-1 s); under SCHED_RR they are the proxies'.
SCALE_RT = int(os.environ.get('BENCH_SCALE_RT', '10'))
SCALE_EVENT_BYTES = 120
# Descriptors a proxy needs besides two per stream: listeners, logs, the
# ledger and its queue, epoll/eventfd, the fsync helper's pipe.
SCALE_FD_RESERVE = 64
SCALE_BODY = ('{"model":"bench-sse","stream":true,"stream_options":{"include_usage":true},'
              '"messages":[{"role":"user","content":"Tell a story, one token per event."}]}')
CONNS = 64
STARTUP_TRIALS = 5
BUDGET_S = 540           # optional parts are skipped once this is spent

KEY = 'rk-bench-0000000000000000000000000001'      # bench-only client key
ADMIN_KEY = 'rk-bench-admin-00000000000000000001'  # bench-only admin key
UPSTREAM_KEY = 'sk-bench-upstream'
SSE_SCRIPT = 'sse:50:20'                           # 50 chunks, 20 ms apart
PATH = '/v1/chat/completions'
STREAM_BODY = ('{"model":"bench-sse","stream":true,"messages":[{"role":"user",'
               '"content":"Count to fifty, one token per event."}]}')

NCPU = os.cpu_count() or 1
STORE_BENCH = os.environ.get('BENCH_STORE', '1') != '0' and shutil.which('redis-server')
PROXY_CPU = 0
LOAD_CPU = 1 if NCPU >= 2 else 0
CLK_TCK = os.sysconf('SC_CLK_TCK')
T_START = time.monotonic()

PROCS = []       # every process started, stopped at exit
PROBLEMS = []    # things that looked broken, for the report
LOGF = None


def out(s=''):
    print(s, flush=True)
    if LOGF:
        LOGF.write(s + '\n')
        LOGF.flush()


def problem(s):
    PROBLEMS.append(s)
    out('  !! ' + s)


def elapsed():
    return time.monotonic() - T_START


# ---------------------------------------------------------------- processes

class Proc:
    """A process pinned to one CPU. Pinning is inherited: this driver pins
    itself to the CPU for the spawn (vfork+exec, no preexec hook) and back,
    so no extra exec (taskset) sits in front of the program."""

    def __init__(self, name, argv, cpu, env=None, cwd=None, log=None):
        self.name = name
        self.argv = argv
        self.cpu = cpu
        self.env_extra = env or {}
        self.log = log
        e = dict(os.environ)
        e.update(self.env_extra)
        self.logf = open(log, 'ab') if log else subprocess.DEVNULL
        prev = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {cpu})
        try:
            self.t0 = time.perf_counter()
            self.p = subprocess.Popen(argv, cwd=cwd, env=e, stdin=subprocess.DEVNULL,
                                      stdout=self.logf, stderr=self.logf)
        finally:
            os.sched_setaffinity(0, prev)
        self.pid = self.p.pid
        PROCS.append(self)

    def cmdline(self):
        env = ' '.join('%s=%s' % (k, shlex.quote(v)) for k, v in self.env_extra.items())
        return ((env + ' ') if env else '') + 'taskset -c %d ' % self.cpu + shlex.join(self.argv)

    def alive(self):
        return self.p.poll() is None

    def stop(self):
        if self.p.poll() is None:
            self.p.terminate()
            try:
                self.p.wait(10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        if self.logf is not subprocess.DEVNULL:
            self.logf.close()
            self.logf = subprocess.DEVNULL
        if self in PROCS:
            PROCS.remove(self)
        return self.p.returncode


def stop_all():
    for p in list(reversed(PROCS)):
        try:
            p.stop()
        except Exception:
            pass


def children(pid):
    kids = []
    for d in os.listdir('/proc'):
        if not d.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % d) as f:
                s = f.read()
        except OSError:
            continue
        if int(s[s.rindex(')') + 2:].split()[1]) == pid:
            kids.append(int(d))
    return kids


def tree(pid):
    res, todo = [], [pid]
    while todo:
        p = todo.pop()
        res.append(p)
        todo.extend(children(p))
    return res


def cpu_ticks(pids):
    t = 0
    for p in pids:
        try:
            with open('/proc/%d/stat' % p) as f:
                s = f.read()
        except OSError:
            continue
        f = s[s.rindex(')') + 2:].split()
        t += int(f[11]) + int(f[12])      # fields 14 (utime) and 15 (stime)
    return t


def status_kb(pid, key):
    try:
        with open('/proc/%d/status' % pid) as f:
            for line in f:
                if line.startswith(key + ':'):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def free_port():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def http_status(port, path='/healthz', method='GET', body=b'', headers=(), timeout=2.0):
    """Status code and body of one request, or None when it fails."""
    try:
        s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    except OSError:
        return None, b''
    try:
        h = ['%s %s HTTP/1.1' % (method, path), 'Host: 127.0.0.1:%d' % port,
             'Connection: close', 'Content-Length: %d' % len(body)]
        h += list(headers)
        s.sendall(('\r\n'.join(h) + '\r\n\r\n').encode() + body)
        data = b''
        while True:
            c = s.recv(65536)
            if not c:
                break
            data += c
            head, sep, rest = data.partition(b'\r\n\r\n')
            if not sep:
                continue
            cl = re.search(rb'(?im)^content-length:\s*(\d+)', head)
            if cl and len(rest) >= int(cl.group(1)):
                break
            if re.search(rb'(?im)^transfer-encoding:\s*chunked', head) and \
                    (rest.endswith(b'\r\n0\r\n\r\n') or rest.startswith(b'0\r\n\r\n')):
                break
        m = re.match(rb'HTTP/1\.[01] (\d{3})', data)
        return (int(m.group(1)) if m else None), data.partition(b'\r\n\r\n')[2]
    except OSError:
        return None, b''
    finally:
        s.close()


def wait_port(port, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            socket.create_connection(('127.0.0.1', port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError('nothing listens on port %d' % port)


def wait_ready(proc, port, path='/healthz', timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if not proc.alive():
            raise RuntimeError('%s exited with %s before it answered (log: %s)'
                               % (proc.name, proc.p.returncode, proc.log))
        st, _ = http_status(port, path, timeout=1.0)
        if st == 200:
            return
        time.sleep(0.01)
    raise RuntimeError('%s did not answer 200 on %s within %.0fs' % (proc.name, path, timeout))


def time_to_200(proc, port, path, timeout=30.0):
    """Tight poll from this driver (on the load CPU): connect, GET, until the
    first 200. Returns seconds since just before the spawn."""
    req = ('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n' % path).encode()
    end = proc.t0 + timeout
    while True:
        now = time.perf_counter()
        if now > end:
            raise RuntimeError('%s: no 200 within %.0fs' % (proc.name, timeout))
        s = socket.socket()
        try:
            s.connect(('127.0.0.1', port))
            s.sendall(req)
            data = s.recv(64)
            if data.startswith((b'HTTP/1.1 200', b'HTTP/1.0 200')):
                return time.perf_counter() - proc.t0
        except OSError:
            if not proc.alive():
                raise RuntimeError('%s exited with %s' % (proc.name, proc.p.returncode))
        finally:
            s.close()


# ---------------------------------------------------------------- targets

def fill(template, **kv):
    with open(os.path.join(BENCH, 'conf', template)) as f:
        s = f.read()
    for k, v in kv.items():
        s = s.replace('@%s@' % k, str(v))
    return s


def nginx_prefix(name):
    d = tempfile.mkdtemp(prefix=name + '-', dir=SCRATCH)
    os.makedirs(os.path.join(d, 'tmp'), exist_ok=True)
    return d


USER_LINE = 'user root;' if os.geteuid() == 0 else ''


def start_nginx(name, template, cpu, **kv):
    d = nginx_prefix(name)
    conf = os.path.join(d, 'nginx.conf')
    with open(conf, 'w') as f:
        f.write(fill(template, USER_LINE=USER_LINE, PREFIX=d, **kv))
    p = Proc(name, [NGINX, '-p', d + '/', '-c', conf, '-e', os.path.join(d, 'error.log')],
             cpu, log=os.path.join(d, 'stderr.log'))
    p.dir = d
    return p


def nginx_worker(master):
    kids = children(master.pid)
    return kids


class Target:
    def __init__(self, name, port, headers):
        self.name = name
        self.port = port
        self.headers = headers
        self.proc = None          # the process under test (None: direct)
        self.cpu_pids = None      # pids whose CPU time is the target's
        self.rss_pid = None       # pid whose RSS is reported

    def url(self):
        return 'http://127.0.0.1:%d%s' % (self.port, PATH)


def per_ip_limit():
    """The load all comes from 127.0.0.1: lift the per-address connection
    limit (limits max_conns_per_ip=, 256 by default) where the binary has
    it (an older one, measured with BENCH_RELAY, does not)."""
    global PER_IP
    if PER_IP is not None:
        return PER_IP
    line = 'limits max_conns=1000000 max_conns_per_ip=1000000'
    d = tempfile.mkdtemp(prefix='probe-', dir=SCRATCH)
    path = os.path.join(d, 'probe.conf')
    with open(path, 'w') as f:
        f.write(line + '\n')
    ok = subprocess.run([RELAY, 'check', '-c', path], capture_output=True).returncode == 0
    PER_IP = line if ok else 'limits max_conns=1000000'
    return PER_IP


PER_IP = None


def relay_config(port, mock_port, sse_port, extra='', sse_base=None):
    """sse_base: where the bench-sse route goes (default: build/mockup's plain
    port; the TLS stream row passes its https:// listener)."""
    return '\n'.join([
        'listen 127.0.0.1:%d' % port,
        per_ip_limit(),
        'admin_key sha256:%s' % hashlib.sha256(ADMIN_KEY.encode()).hexdigest(),
        'ledger bench-ledger.jsonl sync=batch',
        'provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % mock_port,
        'credential mock env:BENCH_UPSTREAM_KEY',
        'provider sse base=%s auth=bearer' % (sse_base or 'http://127.0.0.1:%d/v1' % sse_port),
        'credential sse env:BENCH_SSE_KEY',
        'model bench-model text 1.00 2.00 mock/bench-upstream',
        'model bench-sse text 1.00 2.00 sse/bench-upstream',
        # Balance: credited below through the admin API when the relay has
        # it; the overdraft keeps the bench running while it does not.
        'wallet acme key=sha256:%s overdraft=1000000.00' % hashlib.sha256(KEY.encode()).hexdigest(),
        extra, ''])


def start_relay(name, mock_port, sse_port, extra='', sse_base=None, sse_key=SSE_SCRIPT):
    d = tempfile.mkdtemp(prefix=name + '-', dir=SCRATCH)
    port = free_port()
    conf = os.path.join(d, 'relay.conf')
    with open(conf, 'w') as f:
        f.write(relay_config(port, mock_port, sse_port, extra, sse_base))
    p = Proc(name, [RELAY, '-c', conf], PROXY_CPU, cwd=d, log=os.path.join(d, 'relay.err'),
             env={'RELAY_LOG': 'warn', 'BENCH_UPSTREAM_KEY': UPSTREAM_KEY,
                  'BENCH_SSE_KEY': sse_key})
    p.dir = d
    p.port = port
    return p


def relay_target(targets, name, mock_port, sse_port, extra=''):
    """A relay as a long-lived target (appended to targets and returned;
    its process is .proc), its wallet credited through the admin API (the
    status in .proc.credit)."""
    p = start_relay(name, mock_port, sse_port, extra=extra)
    wait_ready(p, p.port)
    t = Target(name, p.port, ['Authorization: Bearer ' + KEY])
    t.proc = p
    t.cpu_pids = lambda: tree(p.pid)
    t.rss_pid = lambda: p.pid
    targets.append(t)
    p.credit, _ = http_status(p.port, '/admin/wallets/acme/credit', 'POST',
                              b'{"amount":"1000000.00"}',
                              ['Authorization: Bearer ' + ADMIN_KEY,
                               'Content-Type: application/json'])
    return t


def start_portkey(name):
    port = free_port()
    d = tempfile.mkdtemp(prefix=name + '-', dir=SCRATCH)
    p = Proc(name, ['node', PORTKEY_JS, '--port=%d' % port, '--headless'], PROXY_CPU,
             cwd=BENCH, log=os.path.join(d, 'portkey.log'))
    p.dir = d
    p.port = port
    return p


def portkey_headers(upstream_port, cred):
    return ['x-portkey-provider: openai',
            'x-portkey-custom-host: http://127.0.0.1:%d/v1' % upstream_port,
            'Authorization: Bearer %s' % cred]


# ---------------------------------------------------------------- stats

def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs, fmt):
    xs = [x for x in xs if x is not None]
    if not xs:
        return 'n/a'
    return '%s (%s-%s)' % (fmt(statistics.median(xs)), fmt(min(xs)), fmt(max(xs)))


def f_int(x):
    return '{:,.0f}'.format(x)


def f1(x):
    return '%.1f' % x


def f2(x):
    return '%.2f' % x


def f3(x):
    return '%.3f' % x


def ms(us):
    return us / 1000.0


def mib(kb):
    return kb / 1024.0


# ---------------------------------------------------------------- wrk

PRINTED_CMDS = set()


def run_wrk(t, conns, dur, script='post.lua', latency=False, tag=''):
    argv = ['taskset', '-c', str(LOAD_CPU), WRK, '-t1', '-c%d' % conns, '-d%ds' % dur,
            '--timeout', '5s']
    if latency:
        argv.append('--latency')
    argv += ['-s', os.path.join('bench', script)]
    for h in t.headers:
        argv += ['-H', h]
    argv.append(t.url())
    key = (t.name, tag)
    if key not in PRINTED_CMDS:
        PRINTED_CMDS.add(key)
        out('  $ ' + shlex.join(argv))
    pids = t.cpu_pids() if t.cpu_pids else []
    c0 = cpu_ticks(pids)
    try:
        r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=dur + 30)
    except subprocess.TimeoutExpired:
        problem('%s %s: wrk did not finish within %ds' % (t.name, tag, dur + 30))
        return None
    c1 = cpu_ticks(pids)
    with open(os.path.join(SCRATCH, 'wrk.log'), 'a') as f:
        f.write('### %s %s\n$ %s\n%s%s\n' % (t.name, tag, shlex.join(argv), r.stdout, r.stderr))
    m = re.search(r'^BENCHJSON (\{.*\})$', r.stdout, re.M)
    if not m:
        problem('%s %s: wrk printed no result (rc %d): %s' % (t.name, tag, r.returncode,
                                                               (r.stderr or r.stdout)[-300:]))
        return None
    res = json.loads(m.group(1))
    n2 = re.search(r'Non-2xx or 3xx responses: (\d+)', r.stdout)
    res['non2xx'] = int(n2.group(1)) if n2 else 0
    res['sock_err'] = res['err_connect'] + res['err_read'] + res['err_write'] + res['err_timeout']
    res['rps'] = res['requests'] / (res['duration_us'] / 1e6) if res['duration_us'] else 0
    t.requests = getattr(t, 'requests', 0) + res['requests']
    t.runs = getattr(t, 'runs', 0) + 1
    res['cpu_us'] = ((c1 - c0) / CLK_TCK * 1e6 / res['requests']
                     if pids and res['requests'] else None)
    if res['non2xx'] or res['sock_err']:
        problem('%s %s: %d non-2xx responses, socket errors connect %d read %d write %d '
                'timeout %d (of %d requests)' % (
                    t.name, tag, res['non2xx'], res['err_connect'], res['err_read'],
                    res['err_write'], res['err_timeout'], res['requests']))
    if t.proc is not None and not t.proc.alive():
        problem('%s exited (status %s) during %s' % (t.name, t.proc.p.returncode, tag))
    return res


LAT_CLIENT = None      # built by main() into the scratch directory


def build_lat_client():
    """Compile bench/lat_client.c and write the body wrk's post.lua sends
    (the same bytes, so the two tools measure the same request)."""
    global LAT_CLIENT
    with open(os.path.join(BENCH, 'post.lua')) as f:
        lua = f.read()
    body = ''.join(re.findall(r"'([^']*)'", lua.split('wrk.body =', 1)[1].split('\n\n', 1)[0]))
    with open(os.path.join(SCRATCH, 'body.json'), 'w') as f:
        f.write(body)
    exe = os.path.join(SCRATCH, 'lat_client')
    r = subprocess.run(['cc', '-std=gnu99', '-O2', '-o', exe, os.path.join(BENCH, 'lat_client.c')],
                       capture_output=True, text=True)
    if r.returncode != 0:
        problem('could not build bench/lat_client.c: %s' % r.stderr[-300:])
        return
    LAT_CLIENT = exe


def run_lat1(ts, dur, tag='c1'):
    """Concurrency 1 through every target in ts, interleaved request by
    request (bench/lat_client.c): one result dict per target, in ts order,
    with p50/p90/p99/p999 in microseconds like run_wrk's."""
    if LAT_CLIENT is None:
        return [None] * len(ts)
    argv = ['taskset', '-c', str(LOAD_CPU), LAT_CLIENT, str(dur),
            os.path.join(SCRATCH, 'body.json')]
    for t in ts:
        argv += ['-t', t.name, str(t.port), PATH]
        for h in t.headers:
            argv += ['-H', h]
    key = (tuple(t.name for t in ts), tag)
    if key not in PRINTED_CMDS:
        PRINTED_CMDS.add(key)
        out('  $ ' + ' '.join(os.path.relpath(a, ROOT) if a.startswith(SCRATCH) else
                              shlex.quote(a) for a in argv))
    try:
        r = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True,
                           timeout=dur + 10 * len(ts) + 30)
    except subprocess.TimeoutExpired:
        problem('%s: lat_client did not finish' % tag)
        return [None] * len(ts)
    with open(os.path.join(SCRATCH, 'wrk.log'), 'a') as f:
        f.write('### lat_client %s\n$ %s\n%s%s\n' % (tag, shlex.join(argv), r.stdout, r.stderr))
    got = {}
    for m in re.finditer(r'^BENCHJSON (\{.*\})$', r.stdout, re.M):
        d = json.loads(m.group(1))
        got[d['name']] = d
    res = []
    for t in ts:
        d = got.get(t.name)
        if d is None or not d['requests']:
            problem('%s %s: lat_client measured nothing (rc %d): %s' % (
                t.name, tag, r.returncode, (r.stderr or r.stdout)[-300:]))
            res.append(None)
            continue
        d['rps'] = d['requests'] / dur
        d['non2xx'] = d['errors']
        d['sock_err'] = 0
        if d['errors']:
            problem('%s %s: %d requests failed (not 200, or the connection broke) of %d' % (
                t.name, tag, d['errors'], d['requests'] + d['errors']))
        t.requests = getattr(t, 'requests', 0) + d['requests']
        t.runs = getattr(t, 'runs', 0) + 1
        if t.proc is not None and not t.proc.alive():
            problem('%s exited (status %s) during %s' % (t.name, t.proc.p.returncode, tag))
        res.append(d)
    return res


def relay_log_lines(p):
    """The relay's stderr (RELAY_LOG=warn: anything there is a problem)."""
    try:
        with open(p.log, 'rb') as f:
            return f.read().decode('utf-8', 'replace').splitlines()
    except OSError:
        return []


def sum_runs(parts):
    """One result from the slices of a round: requests, time and CPU added
    up (a failed slice makes the round fail)."""
    if not parts or any(p is None for p in parts):
        return None
    n = sum(p['requests'] for p in parts)
    dur = sum(p['duration_us'] for p in parts)
    cpu = [p['cpu_us'] for p in parts]
    return {'requests': n, 'duration_us': dur, 'rps': n / (dur / 1e6) if dur else 0,
            'cpu_us': (sum(c * p['requests'] for c, p in zip(cpu, parts)) / n
                       if n and None not in cpu else None),
            'non2xx': sum(p['non2xx'] for p in parts),
            'sock_err': sum(p['sock_err'] for p in parts)}


def rounds_order(targets, r):
    return targets if r % 2 == 0 else list(reversed(targets))


def make_cert(tls_dir):
    """The loopback certificate (EC P-256, self-signed, DNS:localhost and
    IP:127.0.0.1) that every TLS listener of the bench serves and every
    TLS client trusts. False without openssl."""
    if not shutil.which('openssl'):
        return False
    os.makedirs(tls_dir, exist_ok=True)
    r = subprocess.run(
        ['openssl', 'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256',
         '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1',
         '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
         '-keyout', os.path.join(tls_dir, 'key.pem'),
         '-out', os.path.join(tls_dir, 'cert.pem')], capture_output=True, timeout=30)
    return r.returncode == 0


def print_problems():
    if PROBLEMS:
        out('Problems seen (%d):' % len(PROBLEMS))
        for p in PROBLEMS:
            out('  - ' + p)
    else:
        out('Problems seen: none (no non-2xx, no socket errors, no relay stderr, no exits)')


# ---------------------------------------------------------------- main

def main():
    global LOGF, SCRATCH
    os.makedirs(OUT, exist_ok=True)
    for d in os.listdir(OUT):           # scratch of earlier runs (ledgers get big)
        if d.startswith('run-'):
            shutil.rmtree(os.path.join(OUT, d), ignore_errors=True)
    SCRATCH = tempfile.mkdtemp(prefix='run-', dir=OUT)
    stamp = datetime.datetime.now().strftime('%Y-%m-%d %H:%M:%S')
    LOGF = open(os.path.join(OUT, 'latest.txt'), 'w')
    if ONLY not in ('', 'streams', 'scaling'):
        out('BENCH_ONLY=%s: unknown (use "streams" or "scaling", or leave it unset for '
            'everything)' % ONLY)
        return 2
    os.sched_setaffinity(0, {LOAD_CPU})
    niced = 0
    if NICE:
        try:
            os.nice(NICE)       # inherited by every process started below
            niced = NICE
        except OSError:
            pass

    cpu_model = '?'
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    cpu_model = line.split(':', 1)[1].strip()
                    break
    except OSError:
        pass
    out('Relay benchmark  %s  nproc=%d  CPU: %s  kernel %s' % (
        stamp, NCPU, cpu_model, platform.release()))
    out('proxy under test on CPU %d; wrk, mocks and this driver on CPU %d; '
        'throughput runs %ds, latency runs %ds, %d rounds (%d at c=1), median (min-max)' % (
            PROXY_CPU, LOAD_CPU, DUR, LDUR, ROUNDS, LROUNDS))
    out('all bench processes run at nice %d%s' % (
        niced, ' (BENCH_NICE; a raised priority keeps other work on this shared box from '
        'dominating the tails)' if niced else ''))
    if NCPU < 2:
        out('WARNING: one CPU only: proxy and load share it; figures are not comparable.')
    out('scratch and logs: %s' % os.path.relpath(SCRATCH, ROOT))
    for exe in (RELAY, MOCKUP):
        if not os.access(exe, os.X_OK):
            out('missing %s (run make bench)' % exe)
            return 1
    if not STREAMS_ONLY and not SCALING_ONLY:
        build_lat_client()

    results = {'date': stamp, 'nproc': NCPU, 'cpu': cpu_model, 'targets': {}}
    tls_dir = os.path.join(SCRATCH, 'tls')
    have_cert = make_cert(tls_dir)

    if SCALING_ONLY:
        out('')
        out('BENCH_ONLY=scaling: only the stream scaling runs (7); everything else is skipped')
        results['scaling'] = scaling_section(tls_dir if have_cert else None)
        stop_all()
        report_scaling(results['scaling'])
        out('')
        print_problems()
        results['problems'] = PROBLEMS
        with open(os.path.join(OUT, 'latest.json'), 'w') as f:
            json.dump(results, f, indent=1)
        out('')
        out('full output: %s; total time %.0f s' % (
            os.path.relpath(os.path.join(OUT, 'latest.txt'), ROOT), elapsed()))
        return 0

    # --- the mocks, on the load CPU
    mock_port = free_port()
    tls_port = free_port()
    tls_listen = ''
    if have_cert:
        tls_listen = ('listen 127.0.0.1:%d ssl backlog=4096; ssl_certificate %s/cert.pem; '
                      'ssl_certificate_key %s/key.pem;' % (tls_port, tls_dir, tls_dir))
    mock = start_nginx('mock', 'nginx-mock.conf.in', LOAD_CPU, PORT=mock_port,
                       TLS_LISTEN=tls_listen)
    wait_ready(mock, mock_port)
    port_file = os.path.join(SCRATCH, 'mockup.port')
    tport_file = os.path.join(SCRATCH, 'mockup.tls-port')
    argv = [MOCKUP, '--port', '0', '--port-file', port_file]
    if tls_listen:
        # The same loopback certificate also serves build/mockup's TLS
        # listener, for the TLS stream row (relay-tls).
        argv += ['--tls-port', '0', '--tls-port-file', tport_file,
                 '--tls-cert', os.path.join(tls_dir, 'cert.pem'),
                 '--tls-key', os.path.join(tls_dir, 'key.pem')]
    mockup = Proc('mockup', argv, LOAD_CPU, log=os.path.join(SCRATCH, 'mockup.log'))
    end = time.monotonic() + 10
    while time.monotonic() < end and not (
            os.path.exists(port_file) and (not tls_listen or os.path.exists(tport_file))):
        time.sleep(0.01)
    sse_port = int(open(port_file).read())
    sse_tls_port = int(open(tport_file).read()) if tls_listen and \
        os.path.exists(tport_file) else None
    out('mock upstream (nginx, fixed chat.completion): %s' % mock.cmdline())
    out('stream mock (build/mockup):                   %s' % mockup.cmdline())

    have_portkey = WANT_PORTKEY and os.path.exists(PORTKEY_JS) and shutil.which('node')
    if WANT_PORTKEY and not have_portkey:
        out('Portkey: not installed (bench/run.sh installs it with npm); skipped')

    startup = {'relay': [], 'nginx': [], 'portkey': []}
    idle = {'relay': [], 'nginx': [], 'portkey': []}
    targets, thr, lat1, latp, peak = [], {}, {}, {}, {}
    tls_ok = False
    if STREAMS_ONLY:
        out('')
        out('BENCH_ONLY=streams: only the stream runs (4); start-up, throughput, latency and '
            'TLS throughput are skipped')
    # ------------------------------------------------------------ (5a) startup
    if not STREAMS_ONLY:
        out('')
        out('== exec to first 200 (tight GET /healthz poll from CPU %d), idle RSS ==' % LOAD_CPU)
        printed = set()
        for i in range(STARTUP_TRIALS):
            for kind in (('relay', 'nginx') if i % 2 == 0 else ('nginx', 'relay')):
                if kind == 'relay':
                    p = start_relay('relay-start', mock_port, sse_port)
                    port, path = p.port, '/healthz'
                else:
                    port = free_port()
                    p = start_nginx('nginx-start', 'nginx-proxy.conf.in', PROXY_CPU, PORT=port,
                                    MOCK_PORT=mock_port, SSE_PORT=sse_port,
                                    STREAM_PORT=free_port(), TLS_SERVER='')
                    path = '/healthz'
                try:
                    dt = time_to_200(p, port, path, 10)
                    startup[kind].append(dt * 1000)
                    time.sleep(0.3)
                    rp = p.pid if kind == 'relay' else (nginx_worker(p) or [p.pid])[0]
                    idle[kind].append(status_kb(rp, 'VmRSS'))
                except RuntimeError as e:
                    problem('startup %s: %s' % (kind, e))
                if kind not in printed:
                    printed.add(kind)
                    out('  $ %s   # then poll GET %s' % (p.cmdline(), path))
                p.stop()
        if have_portkey:
            for i in range(3):
                p = start_portkey('portkey-start')
                try:
                    startup['portkey'].append(time_to_200(p, p.port, '/', 30) * 1000)
                    time.sleep(0.5)
                    idle['portkey'].append(status_kb(p.pid, 'VmRSS'))
                except RuntimeError as e:
                    problem('startup portkey: %s' % e)
                if i == 0:
                    out('  $ %s   # then poll GET /' % p.cmdline())
                p.stop()
        for k in ('relay', 'nginx', 'portkey'):
            if startup[k]:
                out('  %-8s exec to first 200: %s ms   idle RSS %s MiB' % (
                    k, spread(startup[k], f2), spread([mib(x) for x in idle[k] if x], f2)))
    size = os.path.getsize(RELAY)
    ftype = subprocess.run(['file', '-b', RELAY], capture_output=True, text=True).stdout.strip() \
        if shutil.which('file') else ''
    out('  ./relay binary: %d bytes (%.1f KiB)%s' % (size, size / 1024.0,
                                                     ('; ' + ftype) if ftype else ''))

    # ------------------------------------------------------------ long-lived targets
    if not STREAMS_ONLY:
        out('')
        out('== targets ==')
        direct = Target('direct', mock_port, [])
        direct.cpu_pids = lambda: nginx_worker(mock)
        direct.rss_pid = lambda: (nginx_worker(mock) or [mock.pid])[0]
        targets.append(direct)
        out('  direct:  POST http://127.0.0.1:%d%s (the mock)' % (mock_port, PATH))

        ng_port, ng_stream = free_port(), free_port()
        ng = start_nginx('nginx', 'nginx-proxy.conf.in', PROXY_CPU, PORT=ng_port,
                         MOCK_PORT=mock_port, SSE_PORT=sse_port, STREAM_PORT=ng_stream,
                         TLS_SERVER='')
        wait_ready(ng, ng_port)
        tn = Target('nginx', ng_port, [])
        tn.proc = ng
        tn.cpu_pids = lambda: nginx_worker(ng)
        tn.rss_pid = lambda: (nginx_worker(ng) or [ng.pid])[0]
        targets.append(tn)
        out('  nginx:   %s  (config %s)' % (ng.cmdline(), os.path.relpath(
            os.path.join(ng.dir, 'nginx.conf'), ROOT)))

        tr = relay_target(targets, 'relay', mock_port, sse_port)
        rl = tr.proc
        out('  relay:   %s  (config %s)' % (rl.cmdline(), os.path.relpath(
            os.path.join(rl.dir, 'relay.conf'), ROOT)))
        out('  relay wallet credit via POST /admin/wallets/acme/credit: HTTP %s%s' % (
            rl.credit, '' if rl.credit == 200 else ' (wallet runs on its overdraft=1000000.00)'))
        st, body = http_status(rl.port, PATH, 'POST', b'{"model":"bench-model","messages":[]}',
                               ['Authorization: Bearer ' + KEY, 'Content-Type: application/json'])
        if st != 200:
            problem('relay: a single chat completion answered %s: %r' % (st, body[:200]))

        # The same relay with its wallets in a shared store (issue 18): a
        # loopback redis-server on the load's CPU, so the relay's CPU per
        # request is compared with the in-process one in the same run.
        if STORE_BENCH:
            rdir = tempfile.mkdtemp(prefix='redis-', dir=SCRATCH)
            rport = free_port()
            rd = Proc('redis', [shutil.which('redis-server'), '--port', str(rport), '--bind',
                                '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', rdir],
                      LOAD_CPU, log=os.path.join(rdir, 'redis.log'))
            wait_port(rport)
            rs = relay_target(targets, 'relay-store', mock_port, sse_port,
                              extra='store redis://127.0.0.1:%d prefix=bench:' % rport).proc
            out('  relay-store: %s  (the relay config plus: store redis://127.0.0.1:%d; '
                '%s)' % (rs.cmdline(), rport, rd.cmdline()))
            if rs.credit != 200:
                problem('relay-store: the credit answered %s' % rs.credit)
        else:
            out('  relay-store: not run (%s)' % ('BENCH_STORE=0' if shutil.which('redis-server')
                                                 else 'no redis-server: tools/setup.sh bench'))

        pk = None
        if have_portkey:
            pk = start_portkey('portkey')
            wait_ready(pk, pk.port, '/', 30)
            tp = Target('portkey', pk.port, portkey_headers(mock_port, UPSTREAM_KEY))
            tp.proc = pk
            tp.cpu_pids = lambda: tree(pk.pid)
            tp.rss_pid = lambda: pk.pid
            targets.append(tp)
            out('  portkey: %s' % pk.cmdline())
            st, body = http_status(pk.port, PATH, 'POST', b'{"model":"bench-model","messages":[]}',
                                   tp.headers + ['Content-Type: application/json'])
            if st != 200:
                problem('portkey: a single chat completion answered %s: %r' % (st, body[:200]))
        for t in targets:
            pid = t.rss_pid()
            results['targets'][t.name] = {'rss_idle_kb_longlived': status_kb(pid, 'VmRSS')}

        # ------------------------------------------------------------ (1)+(2) throughput
        out('')
        out('== (1) throughput and (2) proxy CPU per request: %d keep-alive connections, '
            '%d-byte POST, %ds ==' % (CONNS, 296, DUR))
        out('  CPU per request = utime+stime delta from /proc/PID/stat (fields 14+15) of the '
            'serving process (nginx: its worker) / requests wrk counted')
        out('  the targets run in %d slices of 1 s each per round, alternating (the order '
            'rotates every slice and reverses every round), so that all of them live through '
            'the same seconds of this shared host; each round sums a target\'s slices.' % DUR)
        for t in targets:        # warm-up: connection pools, JIT
            run_wrk(t, CONNS, 2 if t.name == 'portkey' else 1, tag='warm-up')
        thr = {t.name: [] for t in targets}
        mixed = targets
        for r in range(ROUNDS):
            slices = {t.name: [] for t in mixed}
            for k in range(DUR):
                order = rounds_order(mixed[k % len(mixed):] + mixed[:k % len(mixed)], r)
                for t in order:
                    slices[t.name].append(run_wrk(t, CONNS, 1, tag='throughput'))
            runs = [(t, sum_runs(slices[t.name])) for t in mixed]
            for t, res in runs:
                thr[t.name].append(res)
                if res:
                    out('  round %d %-8s %9s req/s  CPU %7s us/req  non-2xx %d  socket errors %d' % (
                        r + 1, t.name, f_int(res['rps']),
                        f2(res['cpu_us']) if res['cpu_us'] is not None else '-',
                        res['non2xx'], res['sock_err']))

        # ------------------------------------------------------------ (3) latency
        out('')
        out('== (3a) latency at concurrency 1 (bench/lat_client.c: direct, nginx and relay '
            'interleaved request by request, %ds, %d rounds; Portkey on its own) =='
            % (LDUR, LROUNDS))
        lat1 = {t.name: [] for t in targets}
        mixed = [t for t in targets if t.name != 'portkey']
        for r in range(LROUNDS):
            runs = list(zip(mixed, run_lat1(mixed, LDUR)))
            runs += [(t, run_lat1([t], LDUR)[0]) for t in targets if t.name == 'portkey']
            for t, res in runs:
                lat1[t.name].append(res)
                if res:
                    out('  round %d %-8s p50 %7.3f ms  p99 %7.3f ms  p99.9 %7.3f ms  (%s req)' % (
                        r + 1, t.name, ms(res['p50']), ms(res['p99']), ms(res['p999']),
                        f_int(res['requests'])))
        out('')
        out('== (3b) latency at a paced rate (4 connections, random 10-30 ms delay() between '
            'requests: ~190 req/s, %ds) ==' % LDUR)
        latp = {t.name: [] for t in targets}
        for r in range(ROUNDS):
            for t in rounds_order(targets, r):
                res = run_wrk(t, 4, LDUR, script='post_paced.lua', latency=True, tag='paced')
                latp[t.name].append(res)
                if res:
                    out('  round %d %-8s p50 %7.3f ms  p99 %7.3f ms  (%s req/s)' % (
                        r + 1, t.name, ms(res['p50']), ms(res['p99']), f_int(res['rps'])))

        # peak RSS of the long-lived targets after all the load above
        peak = {}
        for t in targets:
            peak[t.name] = status_kb(t.rss_pid(), 'VmHWM')


        rl_lines = relay_log_lines(rl)
        if rl_lines:
            problem('relay (RELAY_LOG=warn) wrote %d line(s) to stderr during the load runs; '
                    'last: %s' % (len(rl_lines), ' | '.join(rl_lines[-3:])[:400]))
        if not rl.alive():
            problem('relay exited with status %s during the load runs' % rl.p.returncode)

        ng.stop()
        rl.stop()
        if pk:
            pk.stop()
        results['ledger'] = ledger_check(rl, tr.requests + 1, CONNS * tr.runs, 'load runs')

    # ------------------------------------------------------------ (4) streaming
    out('')
    out('== (4) concurrent SSE streams from build/mockup (x-mock: %s: 50 chunks 20 ms apart), '
        'opened over %d ms, fresh proxy per run ==' % (SSE_SCRIPT, RAMP_MS))
    out('  %d streams: peak RSS (VmHWM) of a fresh proxy, and timings. build/mockup (one thread '
        'per stream, on CPU %d) needs more than one CPU for %d streams of 50 events/s, so at '
        'that size the timings include the mock falling behind (see direct); the %d-stream '
        'runs are where the mock keeps up and the added TTFB and gaps are the proxy\'s.'
        % (STREAMS, LOAD_CPU, STREAMS, STREAMS_LIGHT))
    if sse_tls_port:
        out('  relay-tls: the same streams, with the relay reaching build/mockup\'s TLS listener '
            '(https://localhost:%d/v1, ca_file = the bench\'s loopback certificate): one '
            'upstream TLS connection per stream. Its "added" columns also hold the mock\'s TLS '
            'work; the handshakes (and how many resumed a session) are counted by the mock.'
            % sse_tls_port)
    else:
        out('  relay-tls: skipped (no loopback certificate: openssl missing)')
    client = os.path.join(SCRATCH, 'sse_client')
    r = subprocess.run(['cc', '-std=gnu99', '-O2', '-o', client,
                        os.path.join(BENCH, 'sse_client.c')], capture_output=True, text=True)
    streams = {}
    if r.returncode != 0:
        problem('could not build bench/sse_client.c: %s' % r.stderr[-300:])
    else:
        def stream_run(name, nstreams, port, headers, proc, rss_pid):
            argv = ['taskset', '-c', str(LOAD_CPU), client, '127.0.0.1', str(port), PATH,
                    str(nstreams), str(RAMP_MS), '30', STREAM_BODY] + headers
            if (name, nstreams, 'stream') not in PRINTED_CMDS:
                PRINTED_CMDS.add((name, nstreams, 'stream'))
                out('  $ ' + ' '.join(shlex.quote(a) if a != client else
                                      os.path.relpath(client, ROOT) for a in argv))
            pids = tree(proc.pid) if proc else []
            c0 = cpu_ticks(pids)
            try:
                rr = subprocess.run(argv, capture_output=True, text=True, timeout=60)
            except subprocess.TimeoutExpired:
                problem('%s %d streams: client did not finish in 60 s' % (name, nstreams))
                return None
            c1 = cpu_ticks(pids)
            m = re.search(r'^BENCHJSON (\{.*\})$', rr.stdout, re.M)
            if not m:
                problem('%s %d streams: client printed no result: %s' % (
                    name, nstreams, rr.stderr[-300:]))
                return None
            res = json.loads(m.group(1))
            res['hwm_kb'] = status_kb(rss_pid, 'VmHWM') if rss_pid else None
            res['cpu_ms'] = (c1 - c0) / CLK_TCK * 1000 if pids else None
            if res['ok'] != nstreams:
                problem('%s %d streams: %d complete (non-200 %d, failed %d, cut short %d)'
                        % (name, nstreams, res['ok'], res['non200'], res['failed'],
                           res['incomplete']))
            if proc is not None and not proc.alive():
                problem('%s exited (status %s) during the stream run' % (name, proc.p.returncode))
            return res

        def show(r, name, nstreams, res):
            out('  %-7s %-9s %4d streams: ok %4d  TTFB p50 %6.1f p99 %6.1f ms  gap p50 %5.1f '
                'p99 %6.1f max %6.1f ms  peak RSS %s  CPU %s ms%s' % (
                    r, name, nstreams, res['ok'], ms(res['ttfb_p50']), ms(res['ttfb_p99']),
                    ms(res['gap_p50']), ms(res['gap_p99']), ms(res['gap_max']),
                    ('%.1f MiB' % mib(res['hwm_kb'])) if res['hwm_kb'] else '-',
                    ('%.0f' % res['cpu_ms']) if res['cpu_ms'] is not None else '-',
                    ('  upstream conns %d' % res['upstream_conns']
                     if res.get('upstream_conns') is not None else '') +
                    ('  TLS handshakes %d (%d resumed)' % (res['tls_handshakes'],
                                                           res['tls_resumed'])
                     if res.get('tls_handshakes') is not None else '')))

        def mock_counts():
            """build/mockup's connection and TLS counters (its plain port; the
            stats call is itself one connection)."""
            st, body = http_status(sse_port, '/_mock/stats', timeout=5)
            try:
                j = json.loads(body) if st == 200 else {}
            except ValueError:
                j = {}
            return j.get('connections'), j.get('tls_handshakes'), j.get('tls_resumed')

        names = ['direct', 'nginx', 'relay'] + (['relay-tls'] if sse_tls_port else [])
        for nstreams in (STREAMS, STREAMS_LIGHT):
            for name in names:
                streams[(name, nstreams)] = []
            for r in range(ROUNDS):
                for name in rounds_order(names, r):
                    if name == 'direct':
                        res = stream_run('direct', nstreams, sse_port,
                                         ['x-mock: ' + SSE_SCRIPT,
                                          'Authorization: Bearer ' + SSE_SCRIPT], None, None)
                    elif name == 'nginx':
                        sp = free_port()
                        p = start_nginx('nginx-sse', 'nginx-proxy.conf.in', PROXY_CPU,
                                        PORT=free_port(), MOCK_PORT=mock_port, SSE_PORT=sse_port,
                                        STREAM_PORT=sp, TLS_SERVER='')
                        wait_ready(p, sp, '/_mock/stats')
                        res = stream_run('nginx', nstreams, sp,
                                         ['x-mock: ' + SSE_SCRIPT,
                                          'Authorization: Bearer ' + SSE_SCRIPT],
                                         p, (nginx_worker(p) or [p.pid])[0])
                        p.stop()
                    else:
                        if name == 'relay-tls':
                            p = start_relay('relay-tls-sse', mock_port, sse_port,
                                            'ca_file %s/cert.pem' % tls_dir,
                                            'https://localhost:%d/v1' % sse_tls_port)
                        else:
                            p = start_relay('relay-sse', mock_port, sse_port)
                        wait_ready(p, p.port)
                        c0, h0, r0 = mock_counts()
                        res = stream_run(name, nstreams, p.port,
                                         ['x-mock: ' + SSE_SCRIPT, 'Authorization: Bearer ' + KEY],
                                         p, p.pid)
                        c1, h1, r1 = mock_counts()
                        if res and None not in (c0, c1):
                            # A fresh relay opens an upstream connection only
                            # when none is idle: this is how many streams
                            # were open together at the most.
                            res['upstream_conns'] = c1 - c0 - 1
                            if res['upstream_conns'] < 0.95 * nstreams:
                                problem('%s %d streams: only %d upstream connections, so the '
                                        'streams did not all overlap and the peak RSS '
                                        'understates %d concurrent streams' % (
                                            name, nstreams, res['upstream_conns'], nstreams))
                        if res and name == 'relay-tls' and None not in (h0, r0, h1, r1):
                            res['tls_handshakes'], res['tls_resumed'] = h1 - h0, r1 - r0
                        lines = relay_log_lines(p)
                        if lines:
                            problem('%s wrote %d stderr line(s) in the stream run; last: %s' % (
                                name, len(lines), ' | '.join(lines[-3:])[:400]))
                        p.stop()
                        if res:
                            ledger_check(p, res['ok'], 0, '%d-stream run' % nstreams,
                                         quiet=True)
                    streams[(name, nstreams)].append(res)
                    if res:
                        show('round %d' % (r + 1), name, nstreams, res)
        if have_portkey and elapsed() < BUDGET_S:
            p = start_portkey('portkey-sse')
            wait_ready(p, p.port, '/', 30)
            hdrs = ['x-mock: ' + SSE_SCRIPT] + portkey_headers(sse_port, SSE_SCRIPT)
            st, body = http_status(p.port, PATH, 'POST', STREAM_BODY.encode(),
                                   hdrs + ['Content-Type: application/json'], timeout=10)
            if st == 200 and b'data: {' in body:
                res = stream_run('portkey', STREAMS_LIGHT, p.port, hdrs, p, p.pid)
                streams[('portkey', STREAMS_LIGHT)] = [res]
                if res:
                    show('once', 'portkey', STREAMS_LIGHT, res)
            else:
                msg = body.decode('utf-8', 'replace').strip()[:120]
                out('  portkey: streaming skipped: one stream through it answered HTTP %s %s '
                    '(its log: %s)' % (st, msg, os.path.relpath(p.log, ROOT)))
                try:
                    with open(p.log, 'rb') as f:
                        m = re.search(rb'TypeError: [^\n]*', f.read())
                    if m:
                        out('           Portkey logged: %s (see Portkey-AI/gateway#1550, #1389)'
                            % m.group(0).decode('utf-8', 'replace'))
                except OSError:
                    pass
            p.stop()
        elif have_portkey:
            out('  portkey: streaming skipped (time budget)')

    # ------------------------------------------------------------ (6) TLS
    if not STREAMS_ONLY:
        out('')
        out('== (6) TLS upstream ==')
        if not tls_listen:
            out('  TLS: no openssl to make a loopback certificate; skipped')
        else:
            extra = '\n'.join([
                'ca_file %s/cert.pem' % tls_dir,
                'provider tls base=https://localhost:%d/v1 auth=bearer' % tls_port,
                'credential tls env:BENCH_UPSTREAM_KEY',
                'model bench-tls text 1.00 2.00 tls/bench-upstream'])
            d = tempfile.mkdtemp(prefix='relay-tls-check-', dir=SCRATCH)
            conf = os.path.join(d, 'relay.conf')
            with open(conf, 'w') as f:
                f.write(relay_config(free_port(), mock_port, sse_port, extra))
            chk = subprocess.run([RELAY, 'check', '-c', conf], capture_output=True, text=True,
                                 env=dict(os.environ, BENCH_UPSTREAM_KEY=UPSTREAM_KEY,
                                          BENCH_SSE_KEY=SSE_SCRIPT))
            why = ''
            if chk.returncode != 0:
                why = 'relay check refused an https base: ' + (chk.stderr or chk.stdout).strip()[-200:]
            else:
                p = start_relay('relay-tls', mock_port, sse_port, extra)
                try:
                    wait_ready(p, p.port)
                    st, body = http_status(p.port, PATH, 'POST',
                                           b'{"model":"bench-tls","messages":[]}',
                                           ['Authorization: Bearer ' + KEY,
                                            'Content-Type: application/json'], timeout=10)
                    tls_ok = st == 200
                    if not tls_ok:
                        why = ('a request routed to https://127.0.0.1:%d answered HTTP %s: %s'
                               % (tls_port, st, body.decode('utf-8', 'replace').strip()[:160]))
                except RuntimeError as e:
                    why = str(e)
                p.stop()
            if not tls_ok:
                out('  TLS: the relay could not reach the TLS mock (see the probe line above)')
                out('       (probe: %s)' % why)
            else:
                out('  relay reaches the TLS mock: measuring throughput and CPU per request')
                results['tls'] = tls_bench(mock_port, sse_port, tls_port, tls_dir, extra)

    # ------------------------------------------------------------ (7) stream scaling
    if not STREAMS_ONLY:
        results['scaling'] = scaling_section(tls_dir if have_cert else None)

    # ------------------------------------------------------------ report
    stop_all()
    report(results, targets, thr, lat1, latp, peak, startup, idle, streams, size, tls_ok)
    with open(os.path.join(OUT, 'latest.json'), 'w') as f:
        json.dump(results, f, indent=1)
    out('')
    out('full output: %s; raw wrk output: %s; total time %.0f s' % (
        os.path.relpath(os.path.join(OUT, 'latest.txt'), ROOT),
        os.path.relpath(os.path.join(SCRATCH, 'wrk.log'), ROOT), elapsed()))
    return 0


def ledger_check(p, expect, slack, what, quiet=False):
    """After a relay stopped: one charge line per relayed request (up to
    `slack` more: requests in flight when wrk stopped are still charged),
    `relay ledger verify` passes; then the (large) ledger is deleted."""
    path = os.path.join(p.dir, 'bench-ledger.jsonl')
    if not os.path.exists(path):
        if not quiet:
            out('  ledger: %s has no ledger file (billing not written yet?)' % p.name)
        return None
    size = os.path.getsize(path)
    charges = 0
    with open(path, 'rb') as f:
        for line in f:
            if b'"type":"charge"' in line:
                charges += 1
    try:
        v = subprocess.run([RELAY, 'ledger', 'verify', path], capture_output=True, text=True,
                           timeout=120)
        vrc, vout = v.returncode, (v.stdout + v.stderr).strip()
    except subprocess.TimeoutExpired:
        vrc, vout = None, 'timed out'
    ok = vrc == 0 and expect <= charges <= expect + slack
    msg = ('ledger after the %s: %d charge lines (%.1f MiB) for %d requests counted by the '
           'clients (+ up to %d in flight); relay ledger verify: %s' % (
               what, charges, size / 1048576.0, expect, slack,
               'ok' if vrc == 0 else 'exit %s: %s' % (vrc, vout[-200:])))
    if not ok:
        problem(msg)
    elif not quiet:
        out('  ' + msg)
    os.unlink(path)
    return {'charges': charges, 'expected': expect, 'slack': slack, 'verify_rc': vrc,
            'bytes': size}


def tls_bench(mock_port, sse_port, tls_port, tls_dir, extra):
    """Only runs once the relay can reach an https upstream: relay vs nginx,
    both re-using TLS connections to the same TLS mock."""
    res = {}
    ngp = free_port()
    tls_server = ('upstream mock_tls { server 127.0.0.1:%d; keepalive 256; } '
                  'server { listen 127.0.0.1:%d backlog=4096; location / { '
                  'proxy_pass https://mock_tls; proxy_http_version 1.1; '
                  'proxy_set_header Connection ""; proxy_ssl_session_reuse on; } }'
                  % (tls_port, ngp))
    ng = start_nginx('nginx-tls', 'nginx-proxy.conf.in', PROXY_CPU, PORT=free_port(),
                     MOCK_PORT=mock_port, SSE_PORT=sse_port, STREAM_PORT=free_port(),
                     TLS_SERVER=tls_server)
    rl = start_relay('relay-tls', mock_port, sse_port, extra)
    try:
        wait_ready(ng, ngp, '/healthz')
    except RuntimeError:
        pass
    wait_ready(rl, rl.port)
    tn = Target('nginx-tls', ngp, [])
    tn.proc = ng
    tn.cpu_pids = lambda: nginx_worker(ng)
    tr = Target('relay-tls', rl.port, ['Authorization: Bearer ' + KEY])
    tr.proc = rl
    tr.cpu_pids = lambda: tree(rl.pid)
    # the body names bench-model; the TLS route is bench-tls
    tr.url = lambda: 'http://127.0.0.1:%d%s' % (rl.port, PATH)
    ts = [tn, tr]
    for t in ts:
        run_wrk(t, CONNS, 1, tag='warm-up')
    runs = {t.name: [] for t in ts}
    for r in range(ROUNDS):
        for t in rounds_order(ts, r):
            x = run_wrk(t, CONNS, DUR, script='post_tls.lua' if t is tr else 'post.lua',
                        tag='tls')
            runs[t.name].append(x)
            if x:
                out('  round %d %-9s %9s req/s  CPU %s us/req' % (
                    r + 1, t.name, f_int(x['rps']), f2(x['cpu_us'] or 0)))
    for t in ts:
        xs = [x for x in runs[t.name] if x]
        res[t.name] = {'rps': med([x['rps'] for x in xs]),
                       'cpu_us': med([x['cpu_us'] for x in xs])}
    ng.stop()
    rl.stop()
    return res


# ---------------------------------------------------------------- (7) stream scaling

def nofile_limits():
    """Raise this process's descriptor limit (inherited by everything it
    starts) as far as allowed. Returns (soft, hard, why the hard limit
    stays where it is)."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    why = ''
    want = 1 << 20
    try:
        with open('/proc/sys/fs/nr_open') as f:
            want = int(f.read())
    except (OSError, ValueError):
        pass
    if hard < want:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, want))
        except (ValueError, OSError) as e:
            why = ('raising it to fs.nr_open=%d was refused (%s: no CAP_SYS_RESOURCE in '
                   'this sandbox)' % (want, e))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    return soft, hard, why


def scale_timing(n):
    """A stream's gap D (ms) and the ramp (ms) over which the N streams
    open: all streams together carry SCALE_RATE events/s, and they open at
    most SCALE_OPEN_RATE per second, but over at least one gap so that the
    events of different streams are spread evenly over time."""
    d_ms = max(1, int(round(n * 1000.0 / SCALE_RATE)))
    ramp_ms = max(d_ms, int(n * 1000.0 / SCALE_OPEN_RATE))
    return d_ms, ramp_ms


def scaling_section(tls_dir):
    """Relay and nginx in turn, each alone on the proxy CPU, relaying N
    concurrent SSE streams from bench/sse_upstream.c (one thread, epoll, a
    timer heap) to the event-driven bench/sse_client.c, both on the load
    CPU. Returns {'runs': [...], 'meta': {...}} for report_scaling()."""
    rt, prev = None, None
    if SCALE_RT > 0:
        # Set on this driver, inherited by every process it starts.
        try:
            prev = (os.sched_getscheduler(0), os.sched_getparam(0))
            os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(SCALE_RT))
            rt = SCALE_RT
        except (OSError, AttributeError) as e:
            out('')
            out('  (SCHED_RR refused: %s; the section runs niced only)' % e)
    try:
        res = scaling_runs(tls_dir)
    finally:
        if prev is not None and rt:
            try:
                os.sched_setscheduler(0, prev[0], prev[1])
            except OSError:
                pass
    res['meta']['rt'] = rt
    return res


def scaling_runs(tls_dir):
    out('')
    tls = bool(tls_dir) and SCALE_TLS
    soft, hard, why = nofile_limits()
    nmax = max(0, (soft - SCALE_FD_RESERVE) // 2) // 100 * 100
    out('== (7) stream scaling: N concurrent SSE streams through one proxy process, '
        '%d round(s) ==' % SCALE_ROUNDS)
    out('  each stream: %d content events of %d bytes, then a usage-only chunk and [DONE] '
        '(the events all streams carry together: %s/s, so a stream\'s gap D = N / %s s); '
        'opened over max(D, N / %s/s)' % (SCALE_EVENTS, SCALE_EVENT_BYTES, f_int(SCALE_RATE),
                                         f_int(SCALE_RATE), f_int(SCALE_OPEN_RATE)))
    out('  bench/sse_upstream.c and bench/sse_client.c (one thread each, epoll) on CPU %d; '
        'relay and nginx (1 worker, proxy_buffering off, upstream keep-alive) on CPU %d, '
        'a fresh one per run, alternating' % (LOAD_CPU, PROXY_CPU))
    out('  CPU per event = proxy utime+stime over the run / events the client received '
        '(content, usage, [DONE]); KiB per stream = (VmHWM after - VmRSS before) / N')
    pol = os.sched_getscheduler(0)
    out('  scheduling: %s' % ('SCHED_RR priority %d for every process of this section '
                              '(BENCH_SCALE_RT; 0: nice only)' % os.sched_getparam(0).sched_priority
                              if pol == os.SCHED_RR else 'nice %d (BENCH_SCALE_RT=0 or refused)'
                              % os.nice(0)))
    out('  descriptors: RLIMIT_NOFILE soft %d, hard %d%s; a proxy needs 2 per stream + '
        '%d, so N <= %s here' % (soft, hard, ('; ' + why) if why else '', SCALE_FD_RESERVE,
                                 f_int(nmax)))
    meta = {'events': SCALE_EVENTS, 'rate': SCALE_RATE, 'open_rate': SCALE_OPEN_RATE,
            'rounds': SCALE_ROUNDS, 'nofile_soft': soft, 'nofile_hard': hard,
            'nofile_why': why, 'n_max': nmax, 'tls': tls, 'asked': SCALE_N, 'n': [],
            'event_bytes': SCALE_EVENT_BYTES}
    res = {'runs': [], 'meta': meta}
    exes = {}
    for name, libs in (('sse_upstream', ['-lssl', '-lcrypto']), ('sse_client', [])):
        exe = os.path.join(SCRATCH, name)
        r = subprocess.run(['cc', '-std=gnu99', '-O2', '-o', exe,
                            os.path.join(BENCH, name + '.c')] + libs,
                           capture_output=True, text=True)
        if r.returncode != 0:
            problem('scaling: could not build bench/%s.c: %s' % (name, r.stderr[-300:]))
            return res
        exes[name] = exe
    pf, tpf = os.path.join(SCRATCH, 'sse_upstream.port'), os.path.join(SCRATCH, 'sse_upstream.tls')
    argv = [exes['sse_upstream'], '--port', '0', '--port-file', pf,
            '--event-bytes', str(SCALE_EVENT_BYTES)]
    if tls:
        argv += ['--tls-port', '0', '--tls-port-file', tpf,
                 '--tls-cert', os.path.join(tls_dir, 'cert.pem'),
                 '--tls-key', os.path.join(tls_dir, 'key.pem')]
    up = Proc('sse_upstream', argv, LOAD_CPU, log=os.path.join(SCRATCH, 'sse_upstream.log'))
    end = time.monotonic() + 10
    while time.monotonic() < end and not (os.path.exists(pf) and (not tls or
                                                                   os.path.exists(tpf))):
        time.sleep(0.01)
    if not os.path.exists(pf):
        problem('scaling: sse_upstream did not start (log %s)' % up.log)
        return res
    up_port = int(open(pf).read())
    up_tls = int(open(tpf).read()) if tls else None
    out('  $ %s' % ' '.join(os.path.relpath(a, ROOT) if a.startswith(SCRATCH) else
                            shlex.quote(a) for a in up.cmdline().split(' ')))

    def up_stats(reset=False):
        st, body = http_status(up_port, '/_stats/reset' if reset else '/_stats', timeout=5)
        try:
            return json.loads(body) if st == 200 else {}
        except ValueError:
            return {}

    names = ['direct', 'relay', 'nginx'] + (['relay-tls', 'nginx-tls'] if tls else [])
    for n_asked in SCALE_N:
        n = n_asked
        if n > nmax:
            n = nmax
            out('  N=%s asked: a proxy would need %s descriptors (2 per stream + %d); the hard '
                'limit is %d, so N=%s instead' % (f_int(n_asked), f_int(2 * n_asked +
                                                                        SCALE_FD_RESERVE),
                                                  SCALE_FD_RESERVE, hard, f_int(n)))
        if n <= 0:
            continue
        meta['n'].append(n)
        d_ms, ramp_ms = scale_timing(n)
        out('')
        out('  N=%s: D=%d ms, opened over %d ms, a stream lasts %.1f s' % (
            f_int(n), d_ms, ramp_ms, SCALE_EVENTS * d_ms / 1000.0))
        for r in range(SCALE_ROUNDS):
            # Units rotate every round; within a pair relay and nginx
            # swap every round, so each pair lives through the same
            # minute of this shared host, and neither always goes first.
            units = [['direct'], ['relay', 'nginx']] + ([['relay-tls', 'nginx-tls']] if tls
                                                         else [])
            k = r % len(units)
            units = units[k:] + units[:k]
            order = []
            for u in units:
                order += u if r % 2 == 0 else list(reversed(u))
            for name in order:
                x = scale_run(name, n, d_ms, ramp_ms, exes['sse_client'], up, up_port, up_tls,
                              tls_dir, hard, up_stats)
                if x is None:
                    continue
                x['round'] = r + 1
                res['runs'].append(x)
                scale_show(x)
    up.stop()
    return res


def nginx_worker_conns(n):
    """nginx starts closing reusable connections (new clients that have not
    sent their request yet, idle keep-alive ones) once fewer than 1/16 of
    its worker_connections are free ("worker_connections are not enough,
    reusing connections"): 2 per stream and that sixteenth. It may exceed
    the descriptor limit (a warning); the descriptors then are the limit,
    as for the relay."""
    return (2 * n * 16) // 15 + 256


def scale_run(name, n, d_ms, ramp_ms, client, up, up_port, up_tls, tls_dir, hard, up_stats):
    import resource
    e = SCALE_EVENTS
    script = 'sse:%d:%d' % (e, d_ms)
    is_tls = name.endswith('-tls')
    proc, rss_pid, cpu_pids = None, None, None
    if name == 'direct':
        port = up_port
        headers = []
    elif name.startswith('relay'):
        extra = 'ca_file %s/cert.pem' % tls_dir if is_tls else ''
        base = 'https://localhost:%d/v1' % up_tls if is_tls else None
        proc = start_relay('relay-scale', up_port, up_port, extra, base, sse_key=script)
        wait_ready(proc, proc.port)
        port = proc.port
        headers = ['Authorization: Bearer ' + KEY]      # the relay's client key
        rss_pid = proc.pid
        cpu_pids = lambda: tree(proc.pid)
    else:
        port = free_port()
        tls_dir_s = ('proxy_ssl_session_reuse on; proxy_ssl_server_name on; '
                     'proxy_ssl_name localhost; proxy_ssl_verify on; '
                     'proxy_ssl_trusted_certificate %s/cert.pem;' % tls_dir) if is_tls else ''
        proc = start_nginx('nginx-scale', 'nginx-stream.conf.in', PROXY_CPU, PORT=port,
                           UPSTREAM_PORT=up_tls if is_tls else up_port,
                           SCHEME='https' if is_tls else 'http', TLS_DIRECTIVES=tls_dir_s,
                           NOFILE=hard, WORKER_CONNS=nginx_worker_conns(n),
                           KEEPALIVE=max(1024, n))
        wait_ready(proc, port)
        workers = nginx_worker(proc)
        rss_pid = workers[0] if workers else proc.pid
        cpu_pids = lambda: [rss_pid]
        headers = []
    timeout_s = int(ramp_ms / 1000.0 + e * d_ms / 1000.0 * 2 + 30)
    argv = ['taskset', '-c', str(LOAD_CPU), client, '-c', '-e', str(e), '127.0.0.1', str(port),
            PATH, str(n), str(ramp_ms), str(timeout_s), SCALE_BODY] + headers + [
                'x-sse: ' + script]
    if proc is not None:
        # One short stream first: the proxy's first upstream connection
        # (and TLS session, which the rest resume) exists before the run,
        # as in a proxy that has been up for a while.
        warm = subprocess.run(argv[:5] + ['127.0.0.1', str(port), PATH, '1', '0', '10',
                                          SCALE_BODY] + headers + ['x-sse: sse:1:0'],
                              capture_output=True, text=True, timeout=30)
        if '"ok":1,' not in warm.stdout:
            problem('scaling %s N=%d: the warm-up stream failed: %s' % (
                name, n, (warm.stdout + warm.stderr)[-300:]))
    key = ('scale', name)
    if key not in PRINTED_CMDS:
        PRINTED_CMDS.add(key)
        if proc is not None:
            out('  %s: %s' % (name, proc.cmdline()))
        out('  $ ' + ' '.join(os.path.relpath(a, ROOT) if a.startswith(SCRATCH) else
                              shlex.quote(a) for a in argv))
    time.sleep(0.2)
    idle_kb = status_kb(rss_pid, 'VmRSS') if rss_pid else None
    up_stats(reset=True)
    pids = cpu_pids() if cpu_pids else []
    c0, u0 = cpu_ticks(pids), cpu_ticks([up.pid])
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    try:
        rr = subprocess.run(argv, capture_output=True, text=True, timeout=timeout_s + 30)
    except subprocess.TimeoutExpired:
        problem('scaling %s N=%d: the client did not finish in %d s' % (name, n, timeout_s + 30))
        if proc:
            proc.stop()
        return None
    wall = time.monotonic() - t0
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    c1, u1 = cpu_ticks(pids), cpu_ticks([up.pid])
    hwm = status_kb(rss_pid, 'VmHWM') if rss_pid else None
    st = up_stats()
    alive = proc.alive() if proc else True
    lines = relay_log_lines(proc) if proc and name.startswith('relay') else []
    if proc:
        proc.stop()
    m = re.search(r'^BENCHJSON (\{.*\})$', rr.stdout, re.M)
    if not m:
        problem('scaling %s N=%d: the client printed no result: %s' % (
            name, n, (rr.stderr or rr.stdout)[-300:]))
        return None
    x = json.loads(m.group(1))
    x.update({'name': name, 'n': n, 'd_ms': d_ms, 'ramp_ms': ramp_ms, 'wall_s': wall,
              'up_cpu_s': (u1 - u0) / CLK_TCK,
              'client_cpu_s': (ru1.ru_utime + ru1.ru_stime) - (ru0.ru_utime + ru0.ru_stime),
              'late_p99_us': st.get('late_p99_us'), 'late_max_us': st.get('late_max_us'),
              'peak_open': st.get('peak_open_streams'), 'up_accepted': st.get('accepted'),
              'tls_handshakes': st.get('tls_handshakes'), 'tls_resumed': st.get('tls_resumed'),
              'tls_last': st.get('tls_last')})
    if proc is not None:
        cpu_s = (c1 - c0) / CLK_TCK
        x['cpu_s'] = cpu_s
        x['cpu_us_ev'] = cpu_s * 1e6 / x['events_all'] if x['events_all'] else None
        x['busy'] = cpu_s / wall if wall else None
        x['idle_kb'], x['hwm_kb'] = idle_kb, hwm
        # per stream open at the peak: N, or fewer when some failed
        nopen = min(n, st.get('peak_open_streams') or n)
        x['kib_stream'] = (hwm - idle_kb) / float(nopen) if hwm and idle_kb and nopen else None
    tag = 'scaling %s N=%s' % (name, f_int(n))
    if x['ok'] != n:
        problem('%s: %d of %d streams complete (non-200 %d, failed %d, cut short %d, wrong '
                'event count %d)' % (tag, x['ok'], n, x['non200'], x['failed'],
                                     x['incomplete'], x['short']))
    if x['usage_streams'] != n:
        problem('%s: the usage chunk reached the client in %d of %d streams' % (
            tag, x['usage_streams'], n))
    if st and st.get('peak_open_streams', n) < n:
        problem('%s: at most %d streams were open together at the upstream (not all N)' % (
            tag, st['peak_open_streams']))
    if st.get('late_p99_us') is not None and st['late_p99_us'] > 10000:
        problem('%s: the upstream sent its events late (p99 %.1f ms, gap D %d ms): the load '
                'side did not keep up, so the timings hold its lag too' % (
                    tag, st['late_p99_us'] / 1000.0, d_ms))
    if not alive:
        problem('%s: the proxy exited during the run' % tag)
    if lines:
        problem('%s: the relay wrote %d stderr line(s); last: %s' % (
            tag, len(lines), ' | '.join(lines[-3:])[:400]))
    if proc is not None and name.startswith('relay'):
        # one charge per complete stream, and one for the warm-up stream
        ledger_check(proc, x['ok'] + 1, 0, '%s-stream scaling run' % f_int(n), quiet=True)
    return x


def scale_show(x):
    if x['name'] == 'direct':
        prx = ''
    else:
        prx = '  CPU %5.2f us/event (%.2f s, %2.0f%% busy)  RSS %.1f -> %.1f MiB = %5.1f KiB/stream' % (
            x['cpu_us_ev'] or 0, x['cpu_s'], 100 * (x['busy'] or 0), mib(x['idle_kb'] or 0),
            mib(x['hwm_kb'] or 0), x['kib_stream'] or 0)
    out('  round %d %-9s N=%-6s ok %-6d events %-8s%s  TTFB p50 %.2f p99 %.2f ms  gap p50 %.1f '
        'p99 %.1f ms  upstream late p99 %.1f ms  open together %s  load CPU: upstream %.0f%% '
        'client %.0f%%%s' % (
            x['round'], x['name'], f_int(x['n']), x['ok'], f_int(x['events_all']), prx,
            ms(x['ttfb_p50']), ms(x['ttfb_p99']), ms(x['gap_p50']), ms(x['gap_p99']),
            (x['late_p99_us'] or 0) / 1000.0, x['peak_open'],
            100 * x['up_cpu_s'] / x['wall_s'], 100 * x['client_cpu_s'] / x['wall_s'],
            ('  TLS handshakes %s (%s resumed, %s)' % (x['tls_handshakes'], x['tls_resumed'],
                                                      x.get('tls_last'))
             if x['name'].endswith('-tls') else '')))


def report_scaling(sc):
    """The scaling table: per N and upstream kind, relay and nginx (medians
    over rounds), the ratios relay/nginx paired per round, and the issue's
    targets."""
    runs = sc.get('runs') or []
    meta = sc.get('meta') or {}
    if not runs:
        out('')
        out('Stream scaling: no runs')
        return
    out('')
    out('Stream scaling (median of %d rounds; ratios: relay/nginx within each round, median; '
        '"added" = minus direct in the same round): %d events of %d bytes + usage + [DONE] per '
        'stream, %s events/s in all (gap D = N / %s s); %s' % (
            meta.get('rounds', 0), meta.get('events', 0), meta.get('event_bytes', 0),
            f_int(meta.get('rate', 0)), f_int(meta.get('rate', 0)),
            'every process SCHED_RR %d' % meta['rt'] if meta.get('rt') else 'niced, not real-time'))
    out('')
    out('| N | upstream | target | complete | CPU us/event | x nginx | CPU busy | KiB/stream '
        '| x nginx | TTFB p99 ms | added TTFB p99 ms | gap p99 ms (D) | added gap p99 ms |')
    out('| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    by = {}
    for x in runs:
        by.setdefault((x['n'], x['name']), []).append(x)
    summary = {}

    def paired(n, a, b, key):
        ra = {x['round']: x for x in by.get((n, a), [])}
        rb = {x['round']: x for x in by.get((n, b), [])}
        rs = [ra[k][key] / rb[k][key] for k in ra if k in rb and ra[k].get(key) and
              rb[k].get(key)]
        return (med(rs), rs)

    def added(n, a, key):
        ra = {x['round']: x for x in by.get((n, a), [])}
        rd = {x['round']: x for x in by.get((n, 'direct'), [])}
        return med([ra[k][key] - rd[k][key] for k in ra if k in rd])

    for n in sorted(set(x['n'] for x in runs)):
        for kind, names in (('plain', ('direct', 'relay', 'nginx')),
                            ('TLS', ('relay-tls', 'nginx-tls'))):
            for name in names:
                xs = by.get((n, name))
                if not xs:
                    continue
                peer = 'nginx-tls' if name == 'relay-tls' else 'nginx'
                s = {
                    'ok_min': min(x['ok'] for x in xs), 'runs': len(xs),
                    'cpu_us_ev': med([x.get('cpu_us_ev') for x in xs]),
                    'busy': med([x.get('busy') for x in xs]),
                    'kib_stream': med([x.get('kib_stream') for x in xs]),
                    'ttfb_p99': med([x['ttfb_p99'] for x in xs]),
                    'gap_p99': med([x['gap_p99'] for x in xs]),
                    'add_ttfb_p99': added(n, name, 'ttfb_p99') if name != 'direct' else None,
                    'add_gap_p99': added(n, name, 'gap_p99') if name != 'direct' else None,
                    'd_ms': xs[0]['d_ms'],
                }
                if name.startswith('relay'):
                    s['cpu_ratio'], s['cpu_ratio_all'] = paired(n, name, peer, 'cpu_us_ev')
                    s['mem_ratio'], s['mem_ratio_all'] = paired(n, name, peer, 'kib_stream')
                summary['%s@%d' % (name, n)] = s

                def v(val, fmt):
                    return fmt % val if val is not None else '-'

                def vms(us, fmt):
                    return fmt % ms(us) if us is not None else '-'
                out('| %s | %s | %s | %d/%d%s | %s | %s | %s | %s | %s | %s | %s | %s (%d) | %s |' % (
                    f_int(n), kind, name, s['ok_min'], n,
                    '' if s['runs'] == meta.get('rounds') else ' (%d runs)' % s['runs'],
                    v(s['cpu_us_ev'], '%.2f'), v(s.get('cpu_ratio'), '%.2fx'),
                    v(100 * s['busy'] if s['busy'] is not None else None, '%.0f%%'),
                    v(s['kib_stream'], '%.1f'),
                    v(s.get('mem_ratio'), '%.2fx'), vms(s['ttfb_p99'], '%.2f'),
                    vms(s['add_ttfb_p99'], '%+.2f'), vms(s['gap_p99'], '%.1f'), s['d_ms'],
                    vms(s['add_gap_p99'], '%+.2f')))
    sc['summary'] = summary
    out('')
    for k, s in sorted(summary.items()):
        if s.get('cpu_ratio_all'):
            out('  %-16s per round: CPU x nginx %s; KiB/stream x nginx %s' % (
                k, ', '.join('%.2f' % r for r in s['cpu_ratio_all']),
                ', '.join('%.2f' % r for r in s['mem_ratio_all'])))
    asked = meta.get('asked') or []
    ns = meta.get('n') or []
    if any(a > meta.get('n_max', 0) for a in asked):
        out('  where the box stops: N=%s asked, %s run: a proxy holds 2 descriptors per stream '
            '(client and upstream) + about %d, and RLIMIT_NOFILE is %d here%s' % (
                ', '.join(f_int(a) for a in asked), ', '.join(f_int(a) for a in ns),
                SCALE_FD_RESERVE, meta.get('nofile_hard', 0),
                ' (%s)' % meta['nofile_why'] if meta.get('nofile_why') else ''))

    # the targets
    checks = []
    nlo = 1000 if 1000 in ns else None
    nhi = max(ns) if ns else None

    def chk(name, val, ok, limit):
        checks.append((name, val, ok, limit))
    for n in sorted(set([nlo, nhi]) - {None}):
        for rn in ('relay', 'relay-tls'):
            s = summary.get('%s@%d' % (rn, n))
            if s is None:
                continue
            r = s.get('cpu_ratio')
            chk('CPU per event <= 1.0x nginx, %s streams%s' % (
                f_int(n), ', TLS upstream' if rn == 'relay-tls' else ''),
                '%.2fx' % r if r is not None else '-', r is not None and r <= 1.0, '<= 1.00x')
    for n in ns:
        s = summary.get('relay@%d' % n)
        if s:
            r = s.get('mem_ratio')
            chk('KiB per open plain stream <= 0.5x nginx, %s streams' % f_int(n),
                '%.2fx (%s vs %s KiB)' % (r, '%.1f' % s['kib_stream'],
                                          '%.1f' % summary['nginx@%d' % n]['kib_stream'])
                if r is not None and summary.get('nginx@%d' % n, {}).get('kib_stream')
                else '-', r is not None and r <= 0.5, '<= 0.50x')
        s = summary.get('relay-tls@%d' % n)
        if s:
            k = s.get('kib_stream')
            chk('KiB per TLS-upstream stream <= 24, %s streams' % f_int(n),
                '%.1f KiB' % k if k is not None else '-', k is not None and k <= 24,
                '<= 24 KiB')
    if nlo:
        for rn, nn in (('relay', 'nginx'), ('relay-tls', 'nginx-tls')):
            a, b = summary.get('%s@%d' % (rn, nlo)), summary.get('%s@%d' % (nn, nlo))
            if not a or not b:
                continue
            for key, what in (('add_ttfb_p99', 'added TTFB p99'), ('add_gap_p99',
                                                                   'added gap p99')):
                x, y = a.get(key), b.get(key)
                chk('%s <= nginx, 1,000 streams%s' % (what, ', TLS upstream'
                                                      if rn == 'relay-tls' else ''),
                    '%s vs %s ms' % ('%.2f' % ms(x) if x is not None else '-',
                                     '%.2f' % ms(y) if y is not None else '-'),
                    x is not None and y is not None and x <= y, '<= nginx')
    allok = all(x['ok'] == x['n'] for x in runs)
    chk('every stream completes (all runs, all targets)',
        '%d of %d runs' % (sum(1 for x in runs if x['ok'] == x['n']), len(runs)), allok,
        'all')
    out('')
    out('Targets (issue 16, stream scaling):')
    out('')
    out('| target | relay | limit | result |')
    out('| --- | ---: | ---: | --- |')
    for name, val, ok, limit in checks:
        out('| %s | %s | %s | %s |' % (name, val, limit, 'PASS' if ok else 'MISS'))
    sc['checks'] = [{'name': c[0], 'value': c[1], 'pass': c[2]} for c in checks]


def report(results, targets, thr, lat1, latp, peak, startup, idle, streams, size, tls_ok):
    def col(runs, key):
        return [x[key] for x in runs if x and x.get(key) is not None]

    def added(runs, key):
        """target minus direct, paired per round."""
        res = []
        for a, d in zip(runs, lat1_direct if runs is not None else []):
            if a and d:
                res.append(a[key] - d[key])
        return res

    lat1_direct = lat1.get('direct', [])
    summary = {}
    for t in targets:
        n = t.name
        s = {
            'rps': med(col(thr[n], 'rps')), 'rps_all': col(thr[n], 'rps'),
            'cpu_us': med(col(thr[n], 'cpu_us')), 'cpu_us_all': col(thr[n], 'cpu_us'),
            'p50_c1_us': med(col(lat1[n], 'p50')), 'p99_c1_us': med(col(lat1[n], 'p99')),
            'p50_paced_us': med(col(latp[n], 'p50')), 'p99_paced_us': med(col(latp[n], 'p99')),
            'paced_rps': med(col(latp[n], 'rps')),
            'non2xx': sum(col(thr[n], 'non2xx') + col(lat1[n], 'non2xx') + col(latp[n], 'non2xx')),
            'sock_err': sum(col(thr[n], 'sock_err') + col(lat1[n], 'sock_err') +
                            col(latp[n], 'sock_err')),
            'peak_kb': peak.get(n),
        }
        s['add_p50_c1_us'] = med(added(lat1[n], 'p50'))
        s['add_p99_c1_us'] = med(added(lat1[n], 'p99'))
        s['add_p50_c1_all'] = added(lat1[n], 'p50')
        s['add_p99_c1_all'] = added(lat1[n], 'p99')
        pd = latp.get('direct', [])
        s['add_p50_paced_us'] = med([a['p50'] - d['p50'] for a, d in zip(latp[n], pd) if a and d])
        s['add_p99_paced_us'] = med([a['p99'] - d['p99'] for a, d in zip(latp[n], pd) if a and d])
        if n in idle and idle[n]:
            s['idle_kb'] = med(idle[n])
            s['idle_kb_all'] = idle[n]
        else:
            s['idle_kb'] = results['targets'][n].get('rss_idle_kb_longlived')
        if n in startup and startup[n]:
            s['startup_ms'] = med(startup[n])
            s['startup_ms_all'] = startup[n]
        results['targets'][n].update(s)
        summary[n] = s

    def v(x, fmt, dash='-'):
        return fmt(x) if x is not None else dash

    out('')
    out('== results (median of %d; "added" = target minus direct, paired per round) ==' % ROUNDS)
    if targets:
        out('')
        out('| target | req/s | CPU us/req | p50 / p99 ms, c=1 | added p50 / p99 ms, c=1 '
            '| p50 / p99 ms, ~190 req/s | RSS idle / peak MiB | exec to first 200 ms |')
        out('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
    for t in targets:
        s = summary[t.name]
        out('| %s | %s | %s | %s / %s | %s | %s / %s | %s / %s | %s |' % (
            t.name, v(s['rps'], f_int), v(s['cpu_us'], f2),
            v(s['p50_c1_us'], lambda x: f3(ms(x))), v(s['p99_c1_us'], lambda x: f3(ms(x))),
            '-' if t.name == 'direct' else '%s / %s' % (
                v(s['add_p50_c1_us'], lambda x: f3(ms(x))),
                v(s['add_p99_c1_us'], lambda x: f3(ms(x)))),
            v(s['p50_paced_us'], lambda x: f3(ms(x))), v(s['p99_paced_us'], lambda x: f3(ms(x))),
            v(s['idle_kb'], lambda x: f2(mib(x))), v(s['peak_kb'], lambda x: f2(mib(x))),
            v(s.get('startup_ms'), f2)))
    if targets:
        out('')
        out('Spread (min-max over rounds):')
    for t in targets:
        s = summary[t.name]
        out('  %-8s req/s %s  CPU us/req %s  added p99 c=1 %s ms' % (
            t.name, spread(s['rps_all'], f_int), spread(s['cpu_us_all'], f2),
            spread([ms(x) for x in s['add_p99_c1_all']], f3) if t.name != 'direct' else '-'))

    sres = {}
    if streams:
        out('')
        out('SSE streams (50 chunks, 20 ms apart, opened over %d ms); TTFB = request sent to '
            'first response byte; gap = time between consecutive chunks at the client; '
            '"added" = minus direct, paired per round:' % RAMP_MS)
        out('')
        out('| target | streams | complete | TTFB p50 / p99 ms | added TTFB p50 / p99 ms '
            '| gap p50 / p99 ms | added gap p50 / p99 ms | peak RSS MiB | proxy CPU ms |')
        out('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
        for (n, ns), runs in sorted(streams.items(), key=lambda kv: (-kv[0][1], kv[0][0] != 'direct',
                                                                     kv[0][0])):
            dr = streams.get(('direct', ns), [])
            ok = [x for x in runs if x]
            if not ok:
                out('| %s | %d | failed | | | | | | |' % (n, ns))
                continue
            d0 = [x for x in dr if x]

            # When the mock itself falls behind (direct's gap p99 over twice
            # the 20 ms spacing), differences to direct mean nothing.
            mock_bound = bool(d0) and med([x['gap_p99'] for x in d0]) > 40000

            def pair(key):
                if n == 'direct' or not d0 or mock_bound:
                    return None
                if len(runs) == 1:      # a single run: against the direct median
                    return ok[0][key] - med([x[key] for x in d0])
                return med([a[key] - d[key] for a, d in zip(runs, dr) if a and d])
            r = {
                'ok': min(x['ok'] for x in ok),
                'ttfb_p50': med([x['ttfb_p50'] for x in ok]),
                'ttfb_p99': med([x['ttfb_p99'] for x in ok]),
                'gap_p50': med([x['gap_p50'] for x in ok]),
                'gap_p99': med([x['gap_p99'] for x in ok]),
                'add_ttfb_p50': pair('ttfb_p50'), 'add_ttfb_p99': pair('ttfb_p99'),
                'add_gap_p50': pair('gap_p50'), 'add_gap_p99': pair('gap_p99'),
                'hwm_kb': med([x['hwm_kb'] for x in ok if x['hwm_kb']]),
                'hwm_kb_all': [x['hwm_kb'] for x in ok if x['hwm_kb']],
                'cpu_ms': med([x['cpu_ms'] for x in ok if x['cpu_ms'] is not None]),
                'runs': len(ok),
            }
            if any('upstream_conns' in x for x in ok):
                r['upstream_conns_all'] = [x.get('upstream_conns') for x in ok]
            if any('tls_handshakes' in x for x in ok):
                r['tls_handshakes_all'] = [x.get('tls_handshakes') for x in ok]
                r['tls_resumed_all'] = [x.get('tls_resumed') for x in ok]
            sres['%s@%d' % (n, ns)] = r
            out('| %s%s | %d | %d/%d | %s / %s | %s | %s / %s | %s | %s | %s |' % (
                n, ' (1 run)' if r['runs'] == 1 else '', ns, r['ok'], ns,
                f1(ms(r['ttfb_p50'])), f1(ms(r['ttfb_p99'])),
                ('mock-bound' if mock_bound and n != 'direct' else '-')
                if r['add_ttfb_p50'] is None else '%s / %s' % (
                    f1(ms(r['add_ttfb_p50'])), f1(ms(r['add_ttfb_p99']))),
                f1(ms(r['gap_p50'])), f1(ms(r['gap_p99'])),
                ('mock-bound' if mock_bound and n != 'direct' else '-')
                if r['add_gap_p50'] is None else '%s / %s' % (
                    f1(ms(r['add_gap_p50'])), f1(ms(r['add_gap_p99']))),
                v(r['hwm_kb'], lambda x: '%s (%s-%s)' % (
                    f1(mib(x)), f1(mib(min(r['hwm_kb_all']))), f1(mib(max(r['hwm_kb_all']))))),
                v(r['cpu_ms'], lambda x: '%.0f' % x)))
        results['streams'] = sres

    R = summary.get('relay', {})
    N = summary.get('nginx', {})
    P = summary.get('portkey', {})

    def ratio(a, b):
        return a / b if a is not None and b else None

    def paired(a, b, key):
        """Median over rounds of a/b within the same round: the two ran
        back to back, so drift in the shared machine's load between rounds
        cancels out. The plain ratio of medians is printed beside it."""
        rs = [x[key] / y[key] for x, y in zip(thr.get(a, []), thr.get(b, []))
              if x and y and x.get(key) and y.get(key)]
        return (med(rs), rs) if rs else (None, [])
    r_cpu, r_cpu_all = paired('relay', 'nginx', 'cpu_us')
    r_thr, r_thr_all = paired('relay', 'nginx', 'rps')
    r_pk, r_pk_all = paired('relay', 'portkey', 'rps')
    m_cpu = ratio(R.get('cpu_us'), N.get('cpu_us'))
    m_thr = ratio(R.get('rps'), N.get('rps'))
    m_pk = ratio(R.get('rps'), P.get('rps'))

    def rounds(xs, f):
        return ', '.join(f % x for x in xs)
    if not STREAMS_ONLY:
        out('')
        out('Ratios (median of the per-round ratios; per round; ratio of the medians):')
        out('  relay/nginx CPU us per request: %s  (%s; %s)' % (
            v(r_cpu, lambda x: '%.2fx' % x), rounds(r_cpu_all, '%.2f'),
            v(m_cpu, lambda x: '%.2fx' % x)))
        out('  relay/nginx throughput:         %s  (%s; %s)' % (
            v(r_thr, lambda x: '%.2fx' % x), rounds(r_thr_all, '%.2f'),
            v(m_thr, lambda x: '%.2fx' % x)))
        out('  relay/portkey throughput:       %s  (%s; %s)' % (
            v(r_pk, lambda x: '%.1fx' % x), rounds(r_pk_all, '%.1f'),
            v(m_pk, lambda x: '%.1fx' % x)))
    results['ratios'] = {'cpu_relay_nginx': r_cpu, 'rps_relay_nginx': r_thr,
                         'rps_relay_portkey': r_pk,
                         'cpu_relay_nginx_rounds': r_cpu_all,
                         'rps_relay_nginx_rounds': r_thr_all,
                         'rps_relay_portkey_rounds': r_pk_all,
                         'cpu_relay_nginx_of_medians': m_cpu,
                         'rps_relay_nginx_of_medians': m_thr,
                         'rps_relay_portkey_of_medians': m_pk}

    checks = []

    def check(name, value, ok, limit, measured=True):
        """measured False: not run this time (BENCH_ONLY, no openssl): SKIP."""
        checks.append((name, value if measured else 'not measured', ok if measured else None,
                       limit))

    full = not STREAMS_ONLY

    check('CPU us/req <= 1.0x nginx', v(r_cpu, lambda x: '%.2fx' % x),
          r_cpu is not None and r_cpu <= 1.0, '<= 1.00x', full)
    check('throughput >= 0.95x nginx', v(r_thr, lambda x: '%.2fx' % x),
          r_thr is not None and r_thr >= 0.95, '>= 0.95x', full)
    check('throughput >= 50x Portkey', v(r_pk, lambda x: '%.1fx' % x),
          r_pk is not None and r_pk >= 50, '>= 50x', full)
    ra, na = R.get('add_p99_c1_us'), N.get('add_p99_c1_us')
    # The target compares the medians over rounds (as the issue states
    # it). Beside it, relay minus nginx within each round (the two ran
    # back to back, direct cancels out): when the medians are within a
    # few microseconds, this shows whether either side is ahead at all.
    d_p99 = [x['p99'] - y['p99'] for x, y in zip(lat1.get('relay', []), lat1.get('nginx', []))
             if x and y] if full else []
    m_d_p99 = med(d_p99) if d_p99 else None
    if full:
        out('  relay - nginx p99 at c=1, per round: %s ms; median %s ms' % (
            ', '.join('%+.3f' % ms(x) for x in d_p99), v(m_d_p99, lambda x: '%+.3f' % ms(x))))
    results['ratios']['p99_c1_relay_minus_nginx_rounds'] = d_p99
    check('added p99 at c=1 <= nginx added p99',
          '%s vs %s ms' % (v(ra, lambda x: f3(ms(x))), v(na, lambda x: f3(ms(x)))),
          ra is not None and na is not None and ra <= na, '<= nginx', full)
    ik = R.get('idle_kb')
    check('idle RSS <= 1 MiB', v(ik, lambda x: '%.2f MiB' % mib(x)),
          ik is not None and ik <= 1024, '<= 1.00 MiB', full)
    sk = sres.get('relay@%d' % STREAMS, {}).get('hwm_kb')
    sok = sres.get('relay@%d' % STREAMS, {}).get('ok')
    check('%d streams peak RSS <= 40 MiB' % STREAMS,
          v(sk, lambda x: '%.1f MiB' % mib(x)) + ('' if sok == STREAMS else
                                                 ' (%s/%d complete)' % (sok, STREAMS)),
          sk is not None and sk <= 40 * 1024 and sok == STREAMS, '<= 40 MiB')
    tls_rows = any(n == 'relay-tls' for n, _ in streams)
    tk = sres.get('relay-tls@%d' % STREAMS, {}).get('hwm_kb')
    tok = sres.get('relay-tls@%d' % STREAMS, {}).get('ok')
    check('%d TLS streams peak RSS <= 64 MiB' % STREAMS,
          v(tk, lambda x: '%.1f MiB' % mib(x)) + ('' if tok == STREAMS else
                                                 ' (%s/%d complete)' % (tok, STREAMS)),
          tk is not None and tk <= 64 * 1024 and tok == STREAMS, '<= 64 MiB', tls_rows)
    check('stripped binary <= 400 KiB', '%.1f KiB' % (size / 1024.0), size <= 400 * 1024,
          '<= 400 KiB')
    su = R.get('startup_ms')
    check('exec to first 200 <= 5 ms', v(su, lambda x: '%.2f ms' % x),
          su is not None and su <= 5.0, '<= 5 ms', full)
    if results.get('scaling'):
        report_scaling(results['scaling'])
    out('')
    out('Targets (issue):')
    out('')
    out('| target | relay | limit | result |')
    out('| --- | ---: | ---: | --- |')
    for name, value, ok, limit in checks:
        out('| %s | %s | %s | %s |' % (name, value, limit,
                                       'SKIP' if ok is None else 'PASS' if ok else 'MISS'))
    out('| TLS | %s | | %s |' % ('measured' if tls_ok else 'not measured' if STREAMS_ONLY
                                  else 'probe failed', 'see above' if tls_ok else 'SKIP'))
    results['checks'] = [{'name': c[0], 'value': c[1], 'pass': c[2]} for c in checks]
    results['problems'] = PROBLEMS
    out('')
    print_problems()
    summary_rel = {k: v for k, v in summary.items()}
    results['summary'] = summary_rel


def on_signal(signum, frame):
    stop_all()
    sys.exit(128 + signum)


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_signal)
    rc = 1
    try:
        rc = main()
    except Exception as e:
        import traceback
        traceback.print_exc()
        out('bench failed: %s' % e)
        rc = 1
    finally:
        stop_all()
    sys.exit(rc)
