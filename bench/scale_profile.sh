#!/bin/sh
# Where the relay's CPU per relayed SSE event and its memory per open
# stream go, at N concurrent streams (the stream scaling section's load:
# bench/sse_upstream.c and bench/sse_client.c on CPU 1, the relay on CPU 0).
# Not part of `make bench`. Run after `make relay` (it links ./relay's
# objects again, with symbols); needs perf, valgrind, openssl.
#
#   sh bench/scale_profile.sh [N] [plain|tls] [perf|syscalls|callgrind|dhat]...
#
# perf       perf record (cpu-clock: this VM has no hardware counters) of
#            the relay during one run at the scaling section's pace
#            (N streams, 50 events, 10,000 events/s in all): the functions,
#            kernel and user, by their share of the relay's samples
# syscalls   perf stat of the relay's system calls in the same kind of run,
#            per relayed event
# callgrind  instructions per relayed event by function (user space only),
#            over a slower run (valgrind is ~50x slower: 1,000 events/s)
# dhat       heap bytes live at the relay's peak, by allocation site, per
#            stream (a glibc build of the same sources: valgrind cannot
#            replace malloc in a static binary)
# rss        resident memory per open stream as section (7) reads it
#            ((VmHWM after the run - VmRSS before it) / N), relay only: a
#            quick before/after of a memory change (not in the default set)
#
# Every process runs SCHED_RR (chrt -r $RT, default 10; RT=0: not), as in
# the bench's section (7). Output goes to stdout and $OUT (default
# /tmp/relay-scale-profile).
set -eu
cd "$(dirname "$0")/.."
N=${1:-1000}
MODE=${2:-plain}
shift 2 2>/dev/null || shift $#
WHAT=${*:-perf syscalls callgrind dhat}
E=${SCALE_PROFILE_EVENTS:-50}
RATE=${SCALE_PROFILE_RATE:-10000}
OUT=${OUT:-/tmp/relay-scale-profile}
rm -rf "$OUT"
mkdir -p "$OUT"
D=$OUT
PIDS=
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

say() { printf '== %s\n' "$*"; }

ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
RT=${RT:-10}
if [ "$RT" -gt 0 ] && chrt -r "$RT" true 2>/dev/null; then
	chrt -r -p "$RT" $$ >/dev/null	# inherited by everything started below
fi
cc -std=gnu99 -O2 -o "$D/sse_upstream" bench/sse_upstream.c -lssl -lcrypto
cc -std=gnu99 -O2 -o "$D/sse_client" bench/sse_client.c
OBJS=$(ls build/*.o | grep -v -e '/test_' -e 'mockup' -e 'json_scan')
musl-gcc -static -Wl,--gc-sections -o "$D/relay" $OBJS build/libbearssl.a
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1,DNS:localhost \
    -keyout "$D/key.pem" -out "$D/cert.pem" >/dev/null 2>&1

taskset -c 1 "$D/sse_upstream" --port 0 --port-file "$D/up.port" --tls-port 0 \
    --tls-port-file "$D/up.tls" --tls-cert "$D/cert.pem" --tls-key "$D/key.pem" &
PIDS="$PIDS $!"
i=0
while [ ! -s "$D/up.tls" ]; do i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.05; done
UP=$(cat "$D/up.port")
UPT=$(cat "$D/up.tls")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
KEY=rk-bench-0000000000000000000000000001
KH=$(printf %s $KEY | sha256sum | cut -d' ' -f1)
BODY='{"model":"bench-sse","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Tell a story, one token per event."}]}'

# relay_conf PORT DIR
relay_conf() {
	if [ "$MODE" = tls ]; then
		base="https://localhost:$UPT/v1"
		ca="ca_file $D/cert.pem"
	else
		base="http://127.0.0.1:$UP/v1"
		ca=
	fi
	cat > "$2/relay.conf" <<CONF
listen 127.0.0.1:$1
limits max_conns=1000000 max_conns_per_ip=1000000
ledger $2/ledger.jsonl sync=batch
$ca
provider sse base=$base auth=bearer
credential sse env:BENCH_SSE_KEY
model bench-sse text 1.00 2.00 sse/bench-upstream
wallet acme key=sha256:$KH overdraft=1000000.00
CONF
}

wait_up() {
	i=0
	until curl -s -o /dev/null "http://127.0.0.1:$1/healthz"; do
		i=$((i + 1)); [ $i -lt 300 ] || { echo "relay did not start"; exit 1; }; sleep 0.1
	done
}

# client PORT N D_MS RAMP_MS EVENTS: one run, prints the client's summary
client() {
	taskset -c 1 "$D/sse_client" -c -e "$5" 127.0.0.1 "$1" /v1/chat/completions "$2" "$4" 600 \
	    "$BODY" "Authorization: Bearer $KEY" "x-sse: sse:$5:$3" > "$D/client.out"
	python3 - "$D/client.out" <<'PY'
import json, sys
d = json.loads(open(sys.argv[1]).read().split(' ', 1)[1])
print('   client: ok %d/%d, events %d, TTFB p99 %.2f ms, gap p50 %.1f p99 %.1f ms' % (
    d['ok'], d['n'], d['events_all'], d['ttfb_p99'] / 1000, d['gap_p50'] / 1000,
    d['gap_p99'] / 1000))
PY
}

events_of() { sed -n 's/.*"events_all":\([0-9]*\).*/\1/p' "$D/client.out"; }

DMS=$(( N * 1000 / RATE )); [ "$DMS" -ge 1 ] || DMS=1
RAMP=$(( N * 1000 / 2500 )); [ "$RAMP" -ge "$DMS" ] || RAMP=$DMS

for what in $WHAT; do
	W="$D/$what"
	mkdir -p "$W"
	RP=$(free_port)
	relay_conf "$RP" "$W"
	case $what in
	perf|syscalls)
		BENCH_SSE_KEY=sse:1:0 RELAY_LOG=warn taskset -c 0 nice -n -10 "$D/relay" \
		    -c "$W/relay.conf" 2>"$W/relay.err" &
		RPID=$!; PIDS="$PIDS $RPID"
		wait_up "$RP"
		taskset -c 1 "$D/sse_client" -c 127.0.0.1 "$RP" /v1/chat/completions 1 0 10 \
		    "$BODY" "Authorization: Bearer $KEY" "x-sse: sse:1:0" >/dev/null
		if [ "$what" = perf ]; then
			say "perf record: relay, $N $MODE streams, $E events, D=$DMS ms"
			perf record -e cpu-clock -F 4000 -g -p "$RPID" -o "$W/perf.data" \
			    2>"$W/perf.err" &
			PP=$!
			sleep 0.3
			client "$RP" "$N" "$DMS" "$RAMP" "$E"
			kill -INT $PP; wait $PP 2>/dev/null || true
			perf report -i "$W/perf.data" --no-children --sort sym --stdio -g none \
			    2>/dev/null | grep -v '^#' | grep '%' > "$W/top.txt"
			perf report -i "$W/perf.data" --no-children --sort dso --stdio -g none \
			    2>/dev/null | grep -v '^#' | grep '%' | head -3 > "$W/dso.txt"
			perf report -i "$W/perf.data" --no-children --sort sym --stdio \
			    -g caller,0.5,callee --symbol-filter=pvm_irq_enable \
			    2>/dev/null | grep -v '^#' | grep '%' | head -30 > "$W/irq.txt"
			echo "   by DSO (kernel = [kernel.kallsyms]):"
			sed 's/^/     /' "$W/dso.txt"
			echo "   top functions (share of the relay's samples; [k] kernel):"
			sed 's/^/     /' "$W/top.txt" | head -40
			echo "   pvm_irq_enable (this VM's cost of enabling interrupts) by caller:"
			sed 's/^/     /' "$W/irq.txt"
		else
			say "syscalls per relayed event: relay, $N $MODE streams"
			perf stat -e 'syscalls:sys_enter_poll,syscalls:sys_enter_epoll_pwait,syscalls:sys_enter_epoll_ctl,syscalls:sys_enter_recvfrom,syscalls:sys_enter_sendto,syscalls:sys_enter_sendmsg,syscalls:sys_enter_accept4,syscalls:sys_enter_connect,syscalls:sys_enter_write,syscalls:sys_enter_read,syscalls:sys_enter_close,syscalls:sys_enter_getsockopt,syscalls:sys_enter_setsockopt,syscalls:sys_enter_socket,syscalls:sys_enter_mmap,syscalls:sys_enter_munmap,syscalls:sys_enter_brk,syscalls:sys_enter_madvise,syscalls:sys_enter_mremap,exceptions:page_fault_user' \
			    -p "$RPID" -o "$W/stat.txt" &
			PP=$!
			sleep 0.3
			client "$RP" "$N" "$DMS" "$RAMP" "$E"
			kill -INT $PP; wait $PP 2>/dev/null || true
			EV=$(events_of)
			awk -v ev="$EV" '/syscalls:|exceptions:/ { gsub(",", "", $1);
			    printf "     %-40s %10d  %6.3f per event\n", $2, $1, $1 / ev }' "$W/stat.txt"
		fi
		kill "$RPID"; wait "$RPID" 2>/dev/null || true
		;;
	callgrind)
		# valgrind runs the relay ~50x slower: 1,000 events/s in all.
		CD=$(( N * 1000 / 1000 )); CR=$(( N * 4 ))
		CE=${SCALE_PROFILE_CG_EVENTS:-10}
		say "callgrind: relay, $N $MODE streams, $CE events, D=$CD ms"
		BENCH_SSE_KEY=sse:1:0 RELAY_LOG=warn valgrind --tool=callgrind \
		    --callgrind-out-file="$W/cg.out" --instr-atstart=no "$D/relay" \
		    -c "$W/relay.conf" 2>"$W/cg.err" &
		RPID=$!; PIDS="$PIDS $RPID"
		wait_up "$RP"
		taskset -c 1 "$D/sse_client" -c 127.0.0.1 "$RP" /v1/chat/completions 1 0 30 \
		    "$BODY" "Authorization: Bearer $KEY" "x-sse: sse:1:0" >/dev/null
		callgrind_control -i on "$RPID" >/dev/null 2>&1
		client "$RP" "$N" "$CD" "$CR" "$CE"
		callgrind_control -i off "$RPID" >/dev/null 2>&1
		kill "$RPID"; wait "$RPID" 2>/dev/null || true
		EV=$(events_of)
		TOTAL=$(callgrind_annotate "$W/cg.out" | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
		echo "   instructions per relayed event (setup of a stream included): $((TOTAL / EV))"
		callgrind_annotate "$W/cg.out" | sed -n '/file:function/,$p' | sed -n '3,30p' |
		    awk -v n="$EV" '{x=$1; gsub(",","",x); f=""; for (i = 2; i <= NF; i++)
			if ($i ~ /:/) { f=$i; sub(/^\?\?\?:/, "", f) }; printf "     %8d  %s\n", x/n, f}'
		callgrind_annotate --inclusive=yes "$W/cg.out" > "$W/inclusive.txt" 2>/dev/null || true
		;;
	rss)
		say "rss: resident memory per open stream, relay, $N $MODE streams, $E events, D=$DMS ms"
		BENCH_SSE_KEY=sse:1:0 RELAY_LOG=warn taskset -c 0 "$D/relay" \
		    -c "$W/relay.conf" 2>"$W/relay.err" &
		RPID=$!; PIDS="$PIDS $RPID"
		wait_up "$RP"
		taskset -c 1 "$D/sse_client" -c 127.0.0.1 "$RP" /v1/chat/completions 1 0 10 \
		    "$BODY" "Authorization: Bearer $KEY" "x-sse: sse:1:0" >/dev/null
		IDLE=$(awk '/^VmRSS/ {print $2}' "/proc/$RPID/status")
		client "$RP" "$N" "$DMS" "$RAMP" "$E"
		HWM=$(awk '/^VmHWM/ {print $2}' "/proc/$RPID/status")
		kill "$RPID"; wait "$RPID" 2>/dev/null || true
		awk -v i="$IDLE" -v h="$HWM" -v n="$N" 'BEGIN { printf \
		    "   RSS %.1f -> %.1f MiB = %.1f KiB per open stream\n", i / 1024, h / 1024, (h - i) / n }'
		;;
	dhat)
		say "dhat: heap live at the relay's peak, by allocation site, $N $MODE streams"
		cc -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -O2 -g \
		    -DRELAY_VERSION='"0.1.0"' -Ivendor/bearssl/inc -Isrc -Ibuild \
		    -o "$D/relay-glibc" relay.c src/*.c build/default_conf.c build/roots.c \
		    build/libbearssl.a
		CD=$(( N * 1000 / 1000 )); CR=$(( N * 4 ))
		BENCH_SSE_KEY=sse:1:0 RELAY_LOG=warn valgrind --tool=dhat \
		    --dhat-out-file="$W/dhat.json" "$D/relay-glibc" -c "$W/relay.conf" \
		    2>"$W/dhat.err" &
		RPID=$!; PIDS="$PIDS $RPID"
		wait_up "$RP"
		client "$RP" "$N" "$CD" "$CR" 5
		kill "$RPID"; wait "$RPID" 2>/dev/null || true
		python3 - "$W/dhat.json" "$N" <<'PY'
import json, re, sys
d = json.load(open(sys.argv[1]))
n = int(sys.argv[2])
ftbl = d['ftbl']
sites, blocks = {}, {}
def where(fs):
    """The first frames in the relay's own sources below malloc and friends."""
    chain = []
    for i in fs:
        f = ftbl[i]
        m = re.search(r': (\w+) \(([^)]*?)/?([\w.]+):(\d+)(?::\d+)?\)', f)
        if not m:
            continue
        fn, fil, line = m.group(1), m.group(3), m.group(4)
        if fn in ('malloc', 'calloc', 'realloc') or fil.startswith('vg_'):
            continue
        chain.append('%s (%s:%s)' % (fn, fil, line))
    return ' < '.join(chain[:3]) or '?'
total = 0
for pp in d['pps']:
    g = pp.get('gb', 0)
    if not g:
        continue
    k = where(pp['fs'])
    sites[k] = sites.get(k, 0) + g
    blocks[k] = blocks.get(k, 0) + pp.get('gbk', 0)
    total += g
# Streams open at the peak: client connections' buffers then live (under
# valgrind not all N streams overlap).
live = max([b for k, b in blocks.items() if k.startswith('server_new (server.c:')] or [n])
print('   heap bytes live at the global peak: %d, with %d client connections open: '
      '%.1f KiB per open stream' % (total, live, total / 1024.0 / live))
for k, g in sorted(sites.items(), key=lambda kv: -kv[1])[:15]:
    print('     %8.2f KiB/stream  %6d blocks  %s' % (g / 1024.0 / live, blocks[k], k))
PY
		;;
	esac
done
