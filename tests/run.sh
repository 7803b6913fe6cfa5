#!/bin/sh
# `make test`: every unit test program, then the end-to-end suite (the real
# ./relay and the mock upstream on loopback, curl and the official SDKs).
# Prints each suite's result and ends with the total "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
pass=0
fail=0
add() {
	# $1: a suite's summary line "name: N passed, N failed"
	p=$(echo "$1" | sed -n 's/.* \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1/p')
	f=$(echo "$1" | sed -n 's/.* \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\2/p')
	pass=$((pass + ${p:-0}))
	fail=$((fail + ${f:-1}))
}

for t in build/test_*; do
	[ -x "$t" ] || continue
	out=$("$t" 2>&1)
	rc=$?
	echo "$out" | grep -v '^ok ' | tail -n 20
	last=$(echo "$out" | tail -n 1)
	add "$last"
	[ $rc -eq 0 ] || case "$last" in *" 0 failed"*) fail=$((fail + 1)); echo "$t exited $rc";; esac
done

# The static resolver in an empty root: only etc/resolv.conf and etc/hosts.
out=$(DNSPROBE=build/dnsprobe sh tests/e2e/chroot_dns.sh 2>&1)
echo "$out" | tail -n 3
add "$(echo "$out" | tail -n 1)"

# Money arithmetic against Python's decimal module, 100,000 random cases.
out=$(python3 tests/unit/money_ref.py build/money_cases 100000 2>&1)
rc=$?
echo "$out" | tail -n 2
last=$(echo "$out" | tail -n 1)
add "$last"
[ $rc -eq 0 ] || case "$last" in *" 0 failed"*) fail=$((fail + 1));; esac

# The store's Lua scripts against a throwaway redis-server on loopback
# (tests/store/; a failure when none is installed: .ci/run installs it).
out=$(python3 tests/store/test_scripts.py 2>&1)
rc=$?
echo "$out" | grep -v '^ok ' | tail -n 20
last=$(echo "$out" | tail -n 1)
add "$last"
[ $rc -eq 0 ] || case "$last" in *" 0 failed"*) fail=$((fail + 1));; esac

# The SDK clients are pinned in tests/clients/package.json + lockfile.
if [ ! -d tests/clients/node_modules/openai ] ||
    [ ! -d tests/clients/node_modules/playwright-core ]; then
	(cd tests/clients && npm ci --no-audit --no-fund >/dev/null 2>&1) ||
	    { echo "npm ci in tests/clients failed"; fail=$((fail + 1)); }
fi

out=$(python3 tests/e2e/run.py 2>&1)
rc=$?
echo "$out"
last=$(echo "$out" | tail -n 1)
add "$last"
[ $rc -eq 0 ] || case "$last" in *" 0 failed"*) fail=$((fail + 1));; esac

# The portable poll() backend (RELAY_POLL=1; epoll is Linux's default):
# the core e2e file once more with it forced (about 13 s).
out=$(RELAY_POLL=1 python3 tests/e2e/run.py tests/e2e/test_core.py 2>&1)
rc=$?
echo "$out" | grep -v '^ok ' | sed 's/^e2e:/e2e (RELAY_POLL=1):/'
last=$(echo "$out" | tail -n 1)
add "$last"
[ $rc -eq 0 ] || case "$last" in *" 0 failed"*) fail=$((fail + 1));; esac

# Sanitizers (ASan/UBSan) and the fuzz targets on a short budget.
out=$(FUZZ_TIME=${FUZZ_TIME:-20} sh tests/sanitize.sh 2>&1)
rc=$?
echo "$out" | tail -n 25
last=$(echo "$out" | tail -n 1)
add "$last"
[ $rc -eq 0 ] || case "$last" in *" 0 failed"*) fail=$((fail + 1));; esac

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
