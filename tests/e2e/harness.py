"""Shared pieces of the end-to-end tests: start the real ./relay and the
mock upstream on loopback, talk raw HTTP to them, and wait on readiness
signals (a log line, a port) instead of sleeping."""
import json
import os
import re
import socket
import subprocess
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), '..', '..'))
# The binary under test (make test-cross: dist/relay-<arch>), and for a
# foreign one the emulator that runs it (RELAY_EMU, e.g. "qemu-mipsel-static
# -cpu 24Kc"). RELAY is what tests execute: the binary itself, or a script
# that execs the emulator on it (same pid, so signals and /proc work).
RELAY_REAL = os.path.abspath(os.environ.get('RELAY_BIN') or os.path.join(ROOT, 'relay'))
EMU = os.environ.get('RELAY_EMU', '').split()
# Threads the emulator adds to the relay's one (qemu-user: its RCU thread).
EMU_THREADS = int(os.environ.get('RELAY_EMU_THREADS', '1')) if EMU else 0
RELAY = RELAY_REAL
# A relay relinked with a settable wall clock (tests/e2e/faketime.c).
RELAY_FAKETIME = os.path.abspath(os.environ.get('RELAY_FAKETIME_BIN') or
                                 os.path.join(ROOT, 'build', 'relay-faketime'))


def emulated(path):
    """A command that runs path (a relay binary) here: path itself, or a
    script exec'ing the emulator on it."""
    if not EMU:
        return path
    import atexit
    import shutil
    d = tempfile.mkdtemp(prefix='relay-emu-')
    # Tests may run the relay as another user (setpriv): the script must
    # be reachable by any.
    os.chmod(d, 0o755)
    atexit.register(shutil.rmtree, d, True)
    w = os.path.join(d, os.path.basename(path))
    with open(w, 'w') as f:
        f.write('#!/bin/sh\nexec %s %s "$@"\n' % (' '.join(EMU), path))
    os.chmod(w, 0o755)
    return w


def into_root(root):
    """Copy the relay (and a static emulator) into root; the argv that
    runs it from there (chroot)."""
    import shutil
    shutil.copy(RELAY_REAL, os.path.join(root, 'relay'))
    if not EMU:
        return ['/relay']
    shutil.copy(shutil.which(EMU[0]), os.path.join(root, 'emu'))
    return ['/emu'] + EMU[1:] + ['/relay']


RELAY = emulated(RELAY_REAL)
MOCK = os.path.join(ROOT, 'build', 'mockup')
CLIENTS = os.path.join(ROOT, 'tests', 'clients')
# The wire corpus (tests/data/wire): whole provider answers the mock serves
# byte for byte for a request with `x-mock-file: NAME`.
WIRE = os.path.join(ROOT, 'tests', 'data', 'wire')

# A client key and its hash, made for the tests only.
KEY = 'rk-test-key-0000000000000000000001'
KEY2 = 'rk-test-key-0000000000000000000002'


def sha256_hex(s):
    import hashlib
    return hashlib.sha256(s.encode()).hexdigest()


def wait_for(pred, timeout=10.0, what='condition'):
    """Poll pred() until it returns a truthy value; fail after timeout."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError('timed out waiting for ' + what)
        time.sleep(0.01)


def stop_proc(proc, grace=5):
    """SIGTERM, then SIGKILL after grace seconds."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class Mock:
    def __init__(self, workdir, args=None):
        self.log = os.path.join(workdir, 'mock.log')
        args = args or []
        self.proc = subprocess.Popen([MOCK, '--port', '0', '--files', WIRE] + args,
                                     stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        m = re.search(r'listening on 127\.0\.0\.1:(\d+)', line)
        if not m:
            raise AssertionError('mock did not start: %r' % line)
        self.port = int(m.group(1))
        self.tls_port = None
        if '--tls-port' in args:
            line = self.proc.stdout.readline()
            m = re.search(r'tls listening on 127\.0\.0\.1:(\d+)', line)
            if not m:
                raise AssertionError('mock TLS did not start: %r' % line)
            self.tls_port = int(m.group(1))

    def stats(self):
        return json.loads(http('127.0.0.1', self.port, 'GET', '/_mock/stats').body)

    def reset(self):
        http('127.0.0.1', self.port, 'POST', '/_mock/reset', body=b'')

    def raw_requests(self):
        """The last requests mockup received (up to 16, oldest first),
        byte for byte: a list of (head, body) bytes, the head from the
        request line through the blank line."""
        import base64
        d = json.loads(http('127.0.0.1', self.port, 'GET', '/_mock/raw').body)
        return [(base64.b64decode(r['head']), base64.b64decode(r['body']))
                for r in d['requests']]

    def last_raw(self):
        """(head, body) of the last request mockup received."""
        reqs = self.raw_requests()
        assert reqs, 'mockup has received no request'
        return reqs[-1]

    def stop(self):
        stop_proc(self.proc)


class Relay:
    """./relay on a config written to a temp dir, listening on an
    ephemeral port that it reports in its log."""
    count = 0

    def __init__(self, workdir, config, env=None, args=None, wait=True, wrap=None,
                 binary=None):
        self.workdir = workdir
        self.conf = os.path.join(workdir, 'relay.conf')
        with open(self.conf, 'w') as f:
            f.write(config)
        Relay.count += 1
        self.logpath = os.path.join(workdir, 'relay-%d.log' % Relay.count)
        self.logf = open(self.logpath, 'ab')
        e = dict(os.environ)
        e.update(env or {})
        # wrap: a command prefix that ends by exec'ing the relay (setpriv,
        # a shell that sets a limit first), so proc.pid is the relay's.
        self.proc = subprocess.Popen(
            (wrap or []) + [binary or RELAY, '-c', self.conf] + (args or []), cwd=workdir,
            stdout=self.logf, stderr=self.logf, env=e)
        self.port = None
        if wait:
            self.port = int(wait_for(self._port, 10, 'relay to listen'))

    def _port(self):
        if self.proc.poll() is not None:
            raise AssertionError('relay exited %s: %s' %
                                 (self.proc.returncode, self.log()))
        m = re.search(r'listening on https?://127\.0\.0\.1:(\d+)', self.log())
        return m and m.group(1)

    def log(self):
        with open(self.logpath, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def status(self):
        """/proc/PID/status as a dict of ints (kB) where numeric."""
        out = {}
        with open('/proc/%d/status' % self.proc.pid) as f:
            for line in f:
                k, _, v = line.partition(':')
                v = v.strip().split()
                if v and v[0].isdigit():
                    out[k] = int(v[0])
        return out

    def stop(self, sig=None):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.logf.close()
        return self.proc.returncode


class Response:
    def __init__(self, status, reason, headers, body, raw_head):
        self.status = status
        self.reason = reason
        self.headers = headers      # list of (lower-name, value)
        self.body = body
        self.raw_head = raw_head

    def header(self, name):
        for k, v in self.headers:
            if k == name.lower():
                return v
        return None

    def json(self):
        return json.loads(self.body)


def read_response(sock, method='GET', timeout=10):
    """Read one HTTP/1.1 response (Content-Length, chunked or close)."""
    sock.settimeout(timeout)
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError('closed before head: %r' % data)
        data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    _, status, reason = (lines[0].split(' ', 2) + [''])[:3]
    headers = []
    for l in lines[1:]:
        k, _, v = l.partition(':')
        headers.append((k.strip().lower(), v.strip()))
    r = Response(int(status), reason, headers, b'', head)
    if int(status) == 100:
        r2 = read_response_rest(sock, rest, method)
        return r2
    te = r.header('transfer-encoding')
    cl = r.header('content-length')
    if method == 'HEAD' or int(status) in (204, 304):
        r.body = b''
        r.leftover = rest
        return r
    if te and 'chunked' in te.lower():
        body = b''
        buf = rest
        while True:
            while b'\r\n' not in buf:
                c = sock.recv(65536)
                if not c:
                    raise ConnectionError('closed inside chunked body')
                buf += c
            line, _, buf = buf.partition(b'\r\n')
            size = int(line.split(b';')[0], 16)
            while len(buf) < size + 2:
                c = sock.recv(65536)
                if not c:
                    raise ConnectionError('closed inside chunk')
                buf += c
            if size == 0:
                while not buf.startswith(b'\r\n') and b'\r\n\r\n' not in buf:
                    c = sock.recv(65536)
                    if not c:
                        break
                    buf += c
                break
            body += buf[:size]
            buf = buf[size + 2:]
        r.body = body
        r.leftover = b''
        return r
    if cl is not None:
        n = int(cl)
        body = rest
        while len(body) < n:
            c = sock.recv(65536)
            if not c:
                raise ConnectionError('closed after %d of %d body bytes' % (len(body), n))
            body += c
        r.body = body[:n]
        r.leftover = body[n:]
        return r
    body = rest
    while True:
        c = sock.recv(65536)
        if not c:
            break
        body += c
    r.body = body
    r.leftover = b''
    return r


def read_response_rest(sock, rest, method):
    class S:
        def __init__(self, s, pre):
            self.s, self.pre = s, pre

        def settimeout(self, t):
            self.s.settimeout(t)

        def recv(self, n):
            if self.pre:
                p, self.pre = self.pre, b''
                return p
            return self.s.recv(n)
    return read_response(S(sock, rest), method)


def connect(port, host='127.0.0.1'):
    s = socket.create_connection((host, port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def http(host, port, method, path, body=None, headers=None, timeout=10):
    """One request on a new connection; returns a Response."""
    s = connect(port, host)
    try:
        h = {'Host': '%s:%d' % (host, port), 'Connection': 'close'}
        h.update(headers or {})
        if body is not None:
            if isinstance(body, (dict, list)):
                body = json.dumps(body).encode()
                h.setdefault('Content-Type', 'application/json')
            elif isinstance(body, str):
                body = body.encode()
            h['Content-Length'] = str(len(body))
        req = '%s %s HTTP/1.1\r\n' % (method, path)
        req += ''.join('%s: %s\r\n' % kv for kv in h.items()) + '\r\n'
        s.sendall(req.encode() + (body or b''))
        return read_response(s, method, timeout)
    finally:
        s.close()


def raw(port, data, timeout=10, refused_ok=False):
    """Send raw bytes, return everything the relay answers until it closes
    (or timeout: "<timeout>" is appended). refused_ok: a relay that refuses
    a head before it has read all of it closes with bytes unread, which
    resets the connection after its answer: keep what came."""
    s = connect(port)
    try:
        s.sendall(data)
    except OSError:
        if not refused_ok:
            raise
    s.settimeout(timeout)
    out = b''
    try:
        while True:
            c = s.recv(65536)
            if not c:
                break
            out += c
    except socket.timeout:
        out += b'<timeout>'
    except ConnectionResetError:
        if not refused_ok:
            raise
    finally:
        s.close()
    return out


def config(mock_port, extra='', wallets=True, providers=None, models=None,
           creds=('sk-upstream-1',), timeouts='', overdraft='100000',
           ledger='relay-ledger.jsonl sync=none'):
    """A small config: one provider 'mock' on the mock upstream."""
    lines = ['listen 127.0.0.1:0']
    if timeouts:
        lines.append('timeouts ' + timeouts)
    lines.append('ledger ' + ledger)
    if providers is None:
        lines.append('provider mock base=http://127.0.0.1:%d/v1 auth=bearer' % mock_port)
        for i, _ in enumerate(creds):
            lines.append('credential mock env:MOCK_KEY_%d' % (i + 1))
    else:
        lines += providers
    if models is None:
        lines.append('model gpt-5.2 text 1.75 14.00 mock/gpt-5.2-2026-01-01')
        lines.append('model text-embedding-3-small embeddings 0.019 - mock/text-embedding-3-small')
        lines.append('model claude-3-5-sonnet text 3.00 15.00 mock/claude-3-5-sonnet-20241022')
    else:
        lines += models
    if wallets:
        lines.append('wallet acme key=sha256:%s overdraft=%s' % (sha256_hex(KEY), overdraft))
    lines.append(extra)
    return '\n'.join(lines) + '\n'


def ledger_lines(r, settle=True):
    """The ledger's lines. With sync=none or batch an answer may reach its
    client a few microseconds before its charge line is written (the line
    is already in the crash-safe queue file): unless settle is False, one
    more answered request first makes sure the loop pass that sent the
    answer has written its lines."""
    if settle and r.proc.poll() is None:
        try:
            http('127.0.0.1', r.port, 'GET', '/healthz')
        except OSError:
            pass
    with open(os.path.join(r.workdir, 'relay-ledger.jsonl'), 'rb') as f:
        return [json.loads(l) for l in f.read().splitlines()]


def cred_env(creds=('sk-upstream-1',)):
    return {'MOCK_KEY_%d' % (i + 1): c for i, c in enumerate(creds)}


def node(script, args, env):
    """Run a tests/clients script with node; returns its JSON line."""
    e = dict(os.environ)
    e.update(env)
    p = subprocess.run(['node', os.path.join(CLIENTS, script)] + args,
                       capture_output=True, text=True, env=e, timeout=60)
    lines = [l for l in p.stdout.splitlines() if l.strip()]
    if not lines:
        raise AssertionError('node %s %s printed nothing: %s' % (script, args, p.stderr))
    return json.loads(lines[-1])


class Env:
    """Per-test scratch: a temp dir, a mock, relays; all stopped at the end."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix='relay-e2e-')
        self.mock = None
        self.extra_mocks = []
        self.relays = []

    def start_mock(self, args=None):
        m = Mock(self.dir, args)
        if self.mock is None:
            self.mock = m
        else:
            self.extra_mocks.append(m)
        return m

    def start_relay(self, conf, env=None, args=None, wait=True, wrap=None, binary=None):
        r = Relay(self.dir, conf, env, args, wait, wrap, binary)
        self.relays.append(r)
        return r

    def close(self):
        for r in self.relays:
            try:
                r.stop()
            except Exception:
                pass
        for m in [self.mock] + self.extra_mocks:
            if m:
                m.stop()
