"""Memory of each `make cross` binary at idle and with 100 open streams,
for the README's small-device profile (not part of make test; run after
make cross and make build/mockup: python3 tools/footprint.py).

The foreign binaries run under qemu-user, whose process also holds the
emulator (its code, the translated-code cache, its heap), so its VmRSS is
not the relay's. Run with a fixed guest base (-B), the guest's memory is
one host address range; the resident pages in that range (from
/proc/PID/smaps) are what the relay itself touched: its binary's pages,
data, heap and stacks, as on the device (page-table and kernel socket
memory aside). Both numbers are printed. x86_64 runs natively (VmRSS).

Setup per target: the relay on a config like configs/router.conf's limits
(sync=batch ledger, one provider: build/mockup on loopback), idle RSS
after start-up and one request, then 100 concurrent SSE streams
(bench/sse_client.c, x-mock sse:250:20: 250 chunks 20 ms apart, 5 s) and
the peak RSS sampled every 50 ms while they run."""
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, '..', 'tests', 'e2e'))
import harness  # noqa: E402

ROOT = harness.ROOT
BASE = 0x200000000
EMU = {
    'x86_64': (None, None),
    # a 64-bit guest: confine it to 1 GiB above BASE
    'aarch64': (['qemu-aarch64-static', '-cpu', 'cortex-a53', '-B', hex(BASE), '-R', '0x40000000'],
                0x40000000),
    # 32-bit guests live in [BASE, BASE + 4 GiB)
    'armv7': (['qemu-arm-static', '-cpu', 'cortex-a7', '-B', hex(BASE)], 1 << 32),
    'mipsel': (['qemu-mipsel-static', '-cpu', '24Kc', '-B', hex(BASE)], 1 << 32),
}
STREAMS = 100


def kib(pid, key='VmRSS'):
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    return 0


def guest_kib(pid, size):
    """Resident KiB of the host mappings inside [BASE, BASE + size)."""
    total, inside = 0, False
    with open('/proc/%d/smaps' % pid) as f:
        for line in f:
            m = re.match(r'^([0-9a-f]+)-([0-9a-f]+) ', line)
            if m:
                lo = int(m.group(1), 16)
                inside = BASE <= lo < BASE + size
            elif inside and line.startswith('Rss:'):
                total += int(line.split()[1])
    return total


def measure(arch, client):
    emu, size = EMU[arch]
    env = harness.Env()
    try:
        m = env.start_mock()
        binary = os.path.join(ROOT, 'dist', 'relay-' + arch)
        if emu:
            wrap = os.path.join(env.dir, 'relay-emu')
            with open(wrap, 'w') as f:
                f.write('#!/bin/sh\nexec %s %s "$@"\n' % (' '.join(emu), binary))
            os.chmod(wrap, 0o755)
            binary = wrap
        conf = harness.config(m.port, ledger='ledger.jsonl sync=batch',
                              extra='limits max_body=8m max_header=16k max_conns=512\n')
        r = env.start_relay(conf, env=harness.cred_env(), binary=binary)
        pid = r.proc.pid

        def rss():
            return guest_kib(pid, size) if emu else kib(pid)
        res = harness.http('127.0.0.1', r.port, 'POST', '/v1/chat/completions',
                           {'model': 'gpt-5.2', 'messages': []},
                           {'Authorization': 'Bearer ' + harness.KEY})
        assert res.status == 200, res.body
        time.sleep(1.0)
        idle, idle_total = rss(), kib(pid)
        peak, peak_total, done = [idle], [idle_total], []

        def sample():
            while not done:
                peak[0] = max(peak[0], rss())
                peak_total[0] = max(peak_total[0], kib(pid))
                time.sleep(0.05)
        t = threading.Thread(target=sample)
        t.start()
        body = json.dumps({'model': 'gpt-5.2', 'stream': True,
                           'messages': [{'role': 'user', 'content': 'hi'}]})
        p = subprocess.run([client, '127.0.0.1', str(r.port), '/v1/chat/completions',
                            str(STREAMS), '500', '60', body, 'x-mock: sse:250:20',
                            'Authorization: Bearer ' + harness.KEY],
                           capture_output=True, text=True, timeout=120)
        done.append(1)
        t.join()
        js = json.loads(p.stdout.split('BENCHJSON ', 1)[1]) if 'BENCHJSON' in p.stdout else {}
        return idle, peak[0], idle_total, peak_total[0], js.get('ok'), js.get('n')
    finally:
        env.close()


def main():
    client = os.path.join(ROOT, 'build', 'sse_client')
    subprocess.run(['cc', '-std=gnu99', '-O2', '-o', client,
                    os.path.join(ROOT, 'bench', 'sse_client.c')], check=True)
    arches = sys.argv[1:] or list(EMU)
    print('%-8s %10s %12s %14s %16s %8s' % ('target', 'idle KiB', '100 str. KiB',
                                           'qemu idle KiB', 'qemu 100 str. KiB', 'streams'))
    for a in arches:
        idle, peak, ti, tp, ok, n = measure(a, client)
        q = EMU[a][0] is not None
        print('%-8s %10d %12d %14s %16s %8s' % (a, idle, peak, ti if q else '-', tp if q else '-',
                                               '%s/%s' % (ok, n)), flush=True)


if __name__ == '__main__':
    main()
