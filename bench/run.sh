#!/bin/sh
# Relay benchmark suite: `make bench` runs `sh bench/run.sh` after building
# ./relay and build/mockup. Installs what it needs (idempotently), then hands
# over to bench/bench.py, which starts every process on loopback, measures,
# prints a final table and stops everything it started.
#
# Environment knobs (all optional):
#   BENCH_DURATION=8     seconds per throughput run (wrk -d)
#   BENCH_LAT_DURATION=5 seconds per latency run
#   BENCH_ROUNDS=3       runs per measurement (median + min-max spread)
#   BENCH_PORTKEY=1      0 skips Portkey (no npm needed)
#   BENCH_STREAMS=1000   concurrent SSE streams
#   BENCH_ONLY=streams   only the stream runs (plain and TLS upstream rows)
#   BENCH_ONLY=scaling   only the stream scaling runs (7)
#   BENCH_SCALE_N=1000   concurrent streams per scaling run, comma-separated
#                        (e.g. 1000,5000,10000; capped by the descriptor limit)
#   BENCH_SCALE_EVENTS=50, BENCH_SCALE_RATE=10000 (events/s of all streams
#                        together), BENCH_SCALE_ROUNDS (BENCH_ROUNDS),
#                        BENCH_SCALE_TLS=1, BENCH_SCALE_OPEN_RATE=2500
#   BENCH_OUT=DIR        where results/ scratch go (default bench/results)
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
cd "$ROOT"

say() { printf '[bench] %s\n' "$*"; }

for f in ./relay build/mockup; do
	if [ ! -x "$f" ]; then
		say "missing $f: run 'make bench' (it builds ./relay and build/mockup first)"
		exit 1
	fi
done

# --- system packages: nginx (mock upstream + baseline proxy) and wrk -------
have_nginx() { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }
need=
have_nginx || need="$need nginx-light"
command -v wrk >/dev/null 2>&1 || need="$need wrk"
if [ -n "$need" ]; then
	if [ "$(id -u)" != 0 ]; then
		say "need root to install:$need (or install them yourself)"
		exit 1
	fi
	# Debian starts the system nginx service on install unless policy-rc.d
	# says no. We never use that service: put a refusing policy in place
	# for the install only, when there is none already.
	made_policy=
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	say "apt-get install$need"
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends $need >/dev/null 2>&1; then
		apt-get update -qq >/dev/null
		apt-get install -y -qq --no-install-recommends $need >/dev/null
	fi
	if [ -n "$made_policy" ]; then rm -f /usr/sbin/policy-rc.d; fi
	# If a system nginx got started anyway, stop it (ours run with -p/-c).
	if [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
		say "stopping the system nginx service (the bench runs its own)"
		if command -v service >/dev/null 2>&1; then
			service nginx stop >/dev/null 2>&1 || kill "$(cat /run/nginx.pid)"
		else
			kill "$(cat /run/nginx.pid)"
		fi
	fi
fi

# --- Portkey gateway (pinned in bench/package.json) ------------------------
if [ "${BENCH_PORTKEY:-1}" != 0 ]; then
	if [ ! -f "$HERE/node_modules/@portkey-ai/gateway/build/start-server.js" ]; then
		if command -v npm >/dev/null 2>&1; then
			say "npm install Portkey gateway under bench/ (--ignore-scripts)"
			# Its patch-package postinstall fails under npm 11 and ships
			# no patches: scripts are not needed.
			if [ -f "$HERE/package-lock.json" ]; then
				(cd "$HERE" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null) ||
				(cd "$HERE" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
			else
				(cd "$HERE" && npm install --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
			fi
		else
			say "npm not found: Portkey is skipped"
		fi
	fi
fi

# Many sockets for the stream tests: a proxy holds two per stream. Raise
# the soft limit to the hard one (bench.py tries the hard limit too and
# says when the sandbox refuses).
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || ulimit -n 20000 2>/dev/null || true

exec python3 "$HERE/bench.py" "$@"
