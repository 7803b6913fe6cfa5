#!/bin/sh
# Instructions per relayed request, repeatably: callgrind counts every
# instruction of ./relay (linked again with symbols) while wrk sends the
# bench's chat completion through it to an nginx mock. Not part of
# `make bench`. Run after `make relay`; needs valgrind, nginx-light, wrk.
#
#   sh bench/profile.sh [seconds]      # prints instr/request and the top
#                                      # functions by own cost
#   PROFILE_STORE=1 sh bench/profile.sh 3
#                                      # the same with the wallets in a
#                                      # loopback redis-server (store)
#   PROFILE_TLS=1 sh bench/profile.sh  # the same through an HTTPS upstream
#                                      # (a throwaway CA made with openssl,
#                                      # given as ca_file): BearSSL's share
#
# valgrind hides SHA-NI from cpuid, so the ledger hash runs BearSSL's
# portable SHA-256 here (about 18,400 instructions per line instead of
# 2,300 with SHA-NI): subtract the difference for the real figure.
set -eu
cd "$(dirname "$0")/.."
SECS=${1:-3}
D=$(mktemp -d /tmp/relay-profile.XXXXXX)
REDIS=
trap 'kill $MOCK $RELAY $REDIS 2>/dev/null; rm -rf "$D"' EXIT INT TERM
# The release link (the Makefile's, from `make -n relay`: LTO included),
# without -s.
cmd=$(make -s -n -W build/relay.o relay | grep -- ' -o relay ' | tail -n 1)
[ -n "$cmd" ] || { echo "bench/profile.sh: no link command in 'make -n relay'" >&2; exit 1; }
# shellcheck disable=SC2046,SC2086
$(echo "$cmd" | sed -e 's/ -s / /' -e "s| -o relay | -o $D/relay |")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MP=$(free_port); RP=$(free_port)
mkdir -p "$D/tmp"
SCHEME=http LISTEN="127.0.0.1:$MP" HOST=127.0.0.1 CA_LINE= SSL_LINE=
if [ "${PROFILE_TLS:-0}" = 1 ]; then
	(cd "$D" &&
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout ca.key -out ca.pem -days 2 -subj /CN=profile-ca \
	    -addext basicConstraints=critical,CA:TRUE \
	    -addext keyUsage=critical,keyCertSign &&
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout up.key -out up.csr -subj /CN=localhost &&
	printf 'subjectAltName=DNS:localhost\n' > up.ext &&
	openssl x509 -req -in up.csr -CA ca.pem -CAkey ca.key -set_serial 1 \
	    -days 2 -extfile up.ext -out up.pem) >"$D/openssl.log" 2>&1 ||
	    { cat "$D/openssl.log"; exit 1; }
	SCHEME=https LISTEN="127.0.0.1:$MP ssl" HOST=localhost
	CA_LINE="ca_file $D/ca.pem"
	SSL_LINE="ssl_certificate $D/up.pem; ssl_certificate_key $D/up.key;"
fi
cat > "$D/mock.conf" <<CONF
worker_processes 1; daemon off; master_process off; pid $D/mock.pid;
error_log $D/mock-error.log warn;
events { worker_connections 1024; }
http { access_log off; client_body_temp_path $D/tmp; keepalive_requests 100000000;
  $SSL_LINE
  server { listen $LISTEN;
    location / { default_type application/json; return 200 '{"id":"chatcmpl-mock","object":"chat.completion","created":1700000000,"model":"bench-upstream","choices":[{"index":0,"message":{"role":"assistant","content":"hello from mock"},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":34,"total_tokens":46}}'; } } }
CONF
KEY=rk-bench-0000000000000000000000000001
KH=$(printf %s $KEY | sha256sum | cut -d' ' -f1)
cat > "$D/relay.conf" <<CONF
listen 127.0.0.1:$RP
ledger $D/ledger.jsonl sync=batch
$CA_LINE
provider mock base=$SCHEME://$HOST:$MP/v1 auth=bearer
credential mock env:BENCH_UPSTREAM_KEY
model bench-model text 1.00 2.00 mock/bench-upstream
wallet acme key=sha256:$KH overdraft=1000000.00
CONF
if [ "${PROFILE_STORE:-0}" = 1 ]; then
	SP=$(free_port)
	redis-server --port "$SP" --bind 127.0.0.1 --save '' --appendonly no \
	    --dir "$D" >/dev/null & REDIS=$!
	echo "store redis://127.0.0.1:$SP" >> "$D/relay.conf"
	i=0
	until redis-cli -p "$SP" ping >/dev/null 2>&1; do
		i=$((i + 1)); [ $i -lt 100 ] || exit 1; sleep 0.1
	done
fi
nginx -p "$D/" -c "$D/mock.conf" -e "$D/mock-error.log" & MOCK=$!
RELAY_LOG=warn BENCH_UPSTREAM_KEY=sk valgrind --tool=callgrind \
    --callgrind-out-file="$D/cg.out" --instr-atstart=no "$D/relay" \
    -c "$D/relay.conf" 2>"$D/cg.err" & RELAY=$!
i=0
until curl -s -o /dev/null "http://127.0.0.1:$RP/healthz"; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$D/cg.err"; exit 1; }; sleep 0.1
done
URL=http://127.0.0.1:$RP/v1/chat/completions
wrk -t1 -c8 -d1s -s bench/post.lua -H "Authorization: Bearer $KEY" $URL >/dev/null
callgrind_control -i on $RELAY >/dev/null 2>&1
N=$(wrk -t1 -c8 -d${SECS}s -s bench/post.lua -H "Authorization: Bearer $KEY" $URL |
    sed -n 's/.*"requests":\([0-9]*\).*/\1/p')
callgrind_control -i off $RELAY >/dev/null 2>&1
kill $RELAY; wait $RELAY 2>/dev/null || true
TOTAL=$(callgrind_annotate "$D/cg.out" | awk '/PROGRAM TOTALS/ {gsub(",","",$1); print $1}')
echo "requests: $N   instructions per request: $((TOTAL / N))"
callgrind_annotate "$D/cg.out" | sed -n '/file:function/,$p' | sed -n '3,25p' |
    awk -v n="$N" '{x=$1; gsub(",","",x); f=""; for (i = 2; i <= NF; i++)
        if ($i ~ /:/) { f=$i; sub(/^\?\?\?:/, "", f) }; printf "%8d  %s\n", x/n, f}'
