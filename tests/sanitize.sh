#!/bin/sh
# Sanitizer and fuzz checks (STYLE.md §10), for CI on a short budget:
#
#  (a) every tests/unit/test_*.c and a ./relay built with clang and
#      -fsanitize=address,undefined -fno-sanitize-recover=all against
#      glibc (not musl), the unit programs run, then a quick e2e subset
#      (test_core, test_failover) against build/asan/relay; any
#      AddressSanitizer, LeakSanitizer or UBSan report fails the run;
#  (b) each libFuzzer harness tests/fuzz/fuzz_*.c for FUZZ_TIME seconds
#      (default 30), all at once, from its seed corpus
#      tests/fuzz/corpus/<name>/ (new inputs go to build/fuzz/corpus/).
#
# Outputs live under build/asan/ and build/fuzz/ only; objects are reused
# while their sources, headers and flags are unchanged. Needs the main
# `make` (build/roots.c, build/default_conf.c, vendor/) and build/mockup.
# Installs clang-14 and libclang-rt-14-dev with apt-get when
# -fsanitize=fuzzer does not link. Ends with "sanitize: N passed, N
# failed" and exits non-zero on any failure.
#
# A crash found by a fuzzer is saved as build/fuzz/artifacts/<name>-*;
# replay it with: build/fuzz/fuzz_<name> build/fuzz/artifacts/<file>
set -u
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
A=build/asan
F=build/fuzz
FUZZ_TIME=${FUZZ_TIME:-30}
JOBS=${JOBS:-2}
# A hung test must not hang CI.
TIMEOUT=
command -v timeout >/dev/null 2>&1 && TIMEOUT="timeout 300"
t0=$(date +%s)
pass=0
fail=0

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
finish() {
	echo "sanitize: wall time $(($(date +%s) - t0)) s"
	echo "sanitize: $pass passed, $fail failed"
	[ "$fail" -eq 0 ]
	exit $?
}
die() {
	echo "sanitize: $*" >&2
	fail=$((fail + 1))
	finish
}

mkdir -p "$A/obj" "$A/bearssl" "$A/logs" "$F/obj" "$F/corpus" "$F/artifacts"

# ---- toolchain ------------------------------------------------------------
# clang with the compiler-rt sanitizer and libFuzzer runtimes (Debian 12:
# clang-14 and libclang-rt-14-dev). Probed by linking a trivial harness.
probe() {
	for c in clang-14 clang; do
		command -v "$c" >/dev/null 2>&1 || continue
		printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
		    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
		    'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n)' \
		    '{ (void)d; (void)n; return 0; }' > "$F/probe.c"
		if "$c" -fsanitize=fuzzer,address,undefined -o "$F/probe" \
		    "$F/probe.c" >"$F/probe.log" 2>&1; then
			CC=$c
			return 0
		fi
	done
	return 1
}
CC=
if ! probe; then
	echo "sanitize: no clang with -fsanitize=fuzzer: installing clang-14 libclang-rt-14-dev"
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	command -v apt-get >/dev/null 2>&1 ||
	    die "apt-get not found: install clang-14 and libclang-rt-14-dev by hand"
	$SUDO apt-get update -q >/dev/null 2>&1 ||
	    echo "sanitize: apt-get update reported errors (continuing)"
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q \
	    clang-14 libclang-rt-14-dev >/dev/null ||
	    die "apt-get install clang-14 libclang-rt-14-dev failed"
	probe || { cat "$F/probe.log" >&2; die "clang still cannot link -fsanitize=fuzzer"; }
fi
command -v python3 >/dev/null 2>&1 || die "python3 is needed for the e2e subset"

# ---- inputs from the main build -------------------------------------------
for f in build/roots.c build/default_conf.c build/store_lua.c build/mockup \
    vendor/bearssl/inc/bearssl.h vendor/jsmn/jsmn.h; do
	[ -f "$f" ] || die "$f is missing: run 'make relay build/mockup' first"
done

# The relay's modules, from the Makefile's MODULES list (joined over its
# continuation lines, and any MODULES += lines).
MODULES=$(sed -n '/^MODULES[[:space:]]*+\{0,1\}=/{
:a
/\\$/{
N
ba
}
s/\\\n/ /g
s/^MODULES[[:space:]]*+\{0,1\}=//
p
}' Makefile)
[ -n "$MODULES" ] || die "cannot read MODULES from the Makefile"
# What the fuzz harnesses link (with their layers below).
FUZZ_MODULES="util sha256 log clock http http_chunked json conf conf_directives conf_providers conf_fleet money ledger dns dns_parse net usage sse path"
VERSION=$(sed -n 's/^VERSION[[:space:]]*=[[:space:]]*//p' Makefile)
# The ledger's parts besides ledger.c (fuzz_ledger reaches ledger_report).
FUZZ_MODULES="$FUZZ_MODULES ledger_rec ledger_table ledger_sync ledger_queue
 ledger_replay ledger_report ledger_recent ledger_query"
# The store client's codec (fuzz_resp).
FUZZ_MODULES="$FUZZ_MODULES resp"

# The multipart/form-data reader (fuzz_multipart).
FUZZ_MODULES="$FUZZ_MODULES multipart"

COMMON="-std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -g -O1
 -fno-omit-frame-pointer -Wall -Wextra -Wno-missing-prototypes
 -DRELAY_VERSION=\"${VERSION:-0}\" -Ivendor/bearssl/inc -Isrc -Ibuild"
# jsmn only for what includes tests/unit/json_ref.c (as in the Makefile).
JSMN_CFLAGS="-DJSMN_STRICT -DJSMN_PARENT_LINKS -Ivendor/jsmn"
SAN="-fsanitize=address,undefined -fno-sanitize-recover=all"
ASAN_CFLAGS="$COMMON $SAN"
FUZZ_CFLAGS="$COMMON -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=all"
BR_CFLAGS="-W -Wall -O1 -Ivendor/bearssl/inc -Ivendor/bearssl/src"
export CC

# Objects built with other flags (or another compiler) are dropped.
flags_stamp() { # dir flags
	if [ "$(cat "$1/flags" 2>/dev/null)" != "$CC $2" ]; then
		rm -f "$1"/obj/*.o "$1"/librelay.a
		printf '%s\n' "$CC $2" > "$1/flags"
	fi
}
flags_stamp "$A" "$ASAN_CFLAGS"
flags_stamp "$F" "$FUZZ_CFLAGS"

# stale OUT DEP...: OUT is missing or older than a DEP.
stale() {
	o=$1
	shift
	[ -f "$o" ] || return 0
	for d in "$@"; do
		[ "$d" -nt "$o" ] && return 0
	done
	return 1
}

# compile FLAGS [quiet] < "OUT SRC" lines: JOBS compilers at a time.
# Warnings are shown (unless quiet) but do not fail the build.
compile() {
	CFL=$1 QUIET=${2:-} xargs -r -n2 -P"$JOBS" sh -c '
	    $CC $CFL -c -o "$0" "$1" 2>"$0.err" || { cat "$0.err" >&2; exit 255; }
	    [ -s "$0.err" ] && [ -z "$QUIET" ] && cat "$0.err" >&2
	    rm -f "$0.err"'
}

HEADERS=$(echo src/*.h vendor/jsmn/jsmn.h)

# ---- BearSSL: once, without sanitizers -------------------------------------
if stale "$A/libbearssl.a" vendor/bearssl/inc/bearssl.h vendor/VERSIONS; then
	echo "sanitize: building $A/libbearssl.a"
	for s in vendor/bearssl/src/*/*.c; do
		d=${s#vendor/bearssl/src/}
		echo "$A/bearssl/$(echo "${d%.c}" | tr / _).o $s"
	done | compile "$BR_CFLAGS" quiet || die "BearSSL build failed"
	rm -f "$A/libbearssl.a"
	ar rcs "$A/libbearssl.a" "$A"/bearssl/*.o || die "ar libbearssl.a failed"
fi

# ---- sanitized modules ------------------------------------------------------
# objs DIR "MODULES": "OUT SRC" lines for the stale ones; default_conf,
# roots and store_lua come from build/*.c, the others from src/*.c.
objs() {
	for m in $2; do
		case $m in
		default_conf|roots|store_lua) s=build/$m.c ;;
		*) s=src/$m.c ;;
		esac
		# shellcheck disable=SC2086
		stale "$1/obj/$m.o" "$s" $HEADERS && echo "$1/obj/$m.o $s"
	done
}
echo "sanitize: compiling with $CC"
MODULES="$MODULES default_conf roots store_lua"
FUZZ_MODULES="$FUZZ_MODULES default_conf"
objs "$A" "$MODULES" | compile "$ASAN_CFLAGS" || die "ASan build of src/ failed"
objs "$F" "$FUZZ_MODULES" | compile "$FUZZ_CFLAGS" || die "fuzz build of src/ failed"

archive() { # LIB DIR MODULES
	lib=$1 dir=$2
	list=""
	for m in $3; do
		list="$list $dir/obj/$m.o"
	done
	# shellcheck disable=SC2086
	if stale "$lib" $list; then
		rm -f "$lib"
		# shellcheck disable=SC2086
		ar rcs "$lib" $list || die "ar $lib failed"
	fi
}
archive "$A/librelay.a" "$A" "$MODULES"
archive "$F/librelay.a" "$F" "$FUZZ_MODULES"
LIBS="$A/librelay.a $A/libbearssl.a"

# ---- (a) ASan + UBSan: unit programs ---------------------------------------
ASAN_BASE="detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1:check_initialization_order=1:strict_init_order=1"
UBSAN_BASE="print_stacktrace=1:halt_on_error=1"
SAN_RE='ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|SUMMARY: UndefinedBehaviorSanitizer'

link() { # OUT SRC...
	o=$1
	shift
	extra=
	case $1 in
	*/test_json.c) extra=$JSMN_CFLAGS ;;
	esac
	# shellcheck disable=SC2086
	if stale "$o" "$@" $LIBS $HEADERS tests/unit/*.h tests/unit/json_ref.c; then
		# shellcheck disable=SC2086
		$CC $ASAN_CFLAGS $extra -Itests/unit -o "$o" "$@" $LIBS -lpthread \
		    2>"$o.err" || { cat "$o.err"; return 1; }
	fi
	return 0
}

units=""
for src in tests/unit/test_*.c; do
	name=$(basename "$src" .c)
	if link "$A/$name" "$src"; then
		units="$units $name"
	else
		bad "asan $name (build)"
	fi
done

export ASAN_OPTIONS="$ASAN_BASE"
export UBSAN_OPTIONS="$UBSAN_BASE"
for name in $units; do
	out=$($TIMEOUT "$A/$name" 2>&1)
	rc=$?
	if [ $rc -eq 0 ] && ! echo "$out" | grep -Eq "$SAN_RE"; then
		ok "asan $name ($(echo "$out" | tail -n 1))"
	else
		bad "asan $name (exit $rc)"
		echo "$out" | grep -v '^ok ' | tail -n 60 | sed 's/^/     /'
	fi
done

# ---- (a) ASan + UBSan: ./relay and the e2e subset --------------------------
if link "$A/relay" relay.c; then
	E2E_RUN=tests/e2e/run.py
	if ! grep -q RELAY_BIN tests/e2e/harness.py; then
		# The harness does not read RELAY_BIN yet: run a copy whose
		# RELAY and ROOT lines are rewritten.
		mkdir -p "$A/e2e"
		cp tests/e2e/run.py "$A/e2e/run.py"
		sed -e "s|^ROOT = .*|ROOT = '$ROOT'|" \
		    -e "s|^RELAY = .*|RELAY = os.environ.get('RELAY_BIN') or os.path.join(ROOT, 'relay')|" \
		    tests/e2e/harness.py > "$A/e2e/harness.py"
		grep -q "^ROOT = '$ROOT'" "$A/e2e/harness.py" &&
		    grep -q RELAY_BIN "$A/e2e/harness.py" ||
		    die "cannot point tests/e2e/harness.py at RELAY_BIN"
		E2E_RUN=$A/e2e/run.py
	fi
	rm -f "$A"/logs/*
	# No detect_stack_use_after_return here: its fake stacks add a few
	# MB of RSS and test_core bounds the relay's RSS.
	out=$(RELAY_BIN="$ROOT/$A/relay" \
	    ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$ROOT/$A/logs/asan" \
	    UBSAN_OPTIONS="$UBSAN_BASE:log_path=$ROOT/$A/logs/ubsan" \
	    $TIMEOUT python3 "$E2E_RUN" tests/e2e/test_core.py tests/e2e/test_failover.py \
	    tests/e2e/test_billing.py tests/e2e/test_fleet.py 2>&1)
	rc=$?
	reports=$(ls "$A"/logs 2>/dev/null)
	if [ $rc -eq 0 ] && [ -z "$reports" ]; then
		ok "asan e2e subset ($(echo "$out" | tail -n 1))"
	else
		bad "asan e2e subset (exit $rc; $(echo "$out" | tail -n 1))"
		if [ -n "$reports" ]; then
			# Each report stops its relay: show the distinct ones
			# and the first in full; the tests that failed follow.
			echo "     sanitizer reports in $A/logs/ ($(echo "$reports" | wc -l) processes):"
			cat "$A"/logs/* | grep -Eh "$SAN_RE" | sort | uniq -c |
			    sed 's/^/     /'
			set -- $reports
			sed 's/^/     /' "$A/logs/$1"
			echo "$out" | grep '^FAIL' | sed 's/^/     /'
		else
			# The failing tests' names and tracebacks first (a
			# relay log can run long: CI shows a part of it).
			echo "$out" | grep '^FAIL' | sed 's/^/     /'
			echo "$out" | grep -v '^ok ' | head -n 60 | sed 's/^/     /'
		fi
	fi
else
	bad "asan relay (build)"
fi

# ---- (b) fuzz targets -------------------------------------------------------
targets=""
for src in tests/fuzz/fuzz_*.c; do
	name=$(basename "$src" .c)
	name=${name#fuzz_}
	o=$F/fuzz_$name
	extra=
	[ "$name" = json_diff ] && extra=$JSMN_CFLAGS
	# shellcheck disable=SC2086
	if stale "$o" "$src" tests/fuzz/fuzz.h tests/unit/json_ref.c tests/unit/usage_ref.c \
	    $F/librelay.a $A/libbearssl.a; then
		if ! $CC $FUZZ_CFLAGS $extra -fsanitize=fuzzer -Itests/fuzz -o "$o" \
		    "$src" $F/librelay.a $A/libbearssl.a 2>"$o.err"; then
			cat "$o.err"
			bad "fuzz $name (build)"
			continue
		fi
	fi
	targets="$targets $name"
done

run_fuzz() { # name
	n=$1
	seeds=
	[ -d "tests/fuzz/corpus/$n" ] && seeds=tests/fuzz/corpus/$n
	dict=
	[ -f "tests/fuzz/$n.dict" ] && dict="-dict=tests/fuzz/$n.dict"
	mkdir -p "$F/corpus/$n"
	# A smaller quarantine keeps each fuzzer's RSS well under the limit.
	# shellcheck disable=SC2086
	ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:quarantine_size_mb=64" \
	"$F/fuzz_$n" -max_total_time="$FUZZ_TIME" -rss_limit_mb=1024 \
	    -timeout=10 -print_final_stats=1 \
	    -artifact_prefix="$F/artifacts/$n-" $dict \
	    "$F/corpus/$n" $seeds > "$F/$n.log" 2>&1
	echo $? > "$F/$n.rc"
}

fuzz_report() { # name
	n=$1
	rc=$(cat "$F/$n.rc" 2>/dev/null || echo 1)
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$F/$n.log")
	if [ "$rc" = 0 ] && ! grep -Eq "$SAN_RE|invariant failed" "$F/$n.log"; then
		ok "fuzz $n (${runs:-?} runs in ${FUZZ_TIME}s)"
	else
		bad "fuzz $n (exit $rc)"
		grep -v '^#\|^INFO:\|^stat::' "$F/$n.log" | head -n 80 | sed 's/^/     /'
		ls "$F/artifacts/$n-"* 2>/dev/null | sed 's/^/     artifact: /'
	fi
}

# All targets at once, each for FUZZ_TIME seconds of wall time: the wall
# time of this part is FUZZ_TIME whatever the number of targets, and they
# share the cores.
for n in $targets; do
	rm -f "$F/$n.rc"
	run_fuzz "$n" &
done
wait
for n in $targets; do
	fuzz_report "$n"
done

finish
