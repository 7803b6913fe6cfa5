#!/bin/sh
# `make test-cross`: every foreign binary of `make cross` under qemu-user
# (called explicitly: binfmt is not needed), on the CPU a router has:
#
#   aarch64  qemu-aarch64-static -cpu cortex-a53
#   armv7    qemu-arm-static -cpu cortex-a7
#   mipsel   qemu-mipsel-static -cpu 24Kc   (MIPS32r2 without an FPU: an FPU
#            instruction is SIGILL, as on the router)
#
# For each: the ELF header (machine, static), every unit test program of
# that target (build/cross/<arch>/test_*), the 100,000-case money
# cross-check against Python's decimal, and the whole end-to-end suite
# (tests/e2e, RELAY_BIN=dist/relay-<arch>, RELAY_EMU=the emulator,
# RELAY_FAKETIME_BIN=that target's fake-clock relay). For mipsel also: no
# FPU instruction in the binary (objdump), with two controls showing the
# check and the emulator would catch one. x86_64 is the native build that
# `make test` runs: checked to be that same file.
#
# CROSS_E2E names the e2e files to run (default: all of tests/e2e); CI
# runs the ones that exercise what differs across CPUs (word size, byte
# order, 64-bit time on 32-bit musl, no FPU) to stay in its time budget.
#
# Prints one line per check and ends with "cross: N passed, N failed".
set -u
CROSS_E2E=${CROSS_E2E:-}
cd "$(dirname "$0")/.." || exit 1
pass=0
fail=0
t00=$(date +%s)
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
# add NAME OUTPUT RC: count a suite by its "...: N passed, M failed" line
add() {
	last=$(printf '%s\n' "$2" | grep -E '[0-9]+ passed, [0-9]+ failed' | tail -n 1)
	p=$(echo "$last" | sed -n 's/.* \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\1/p')
	f=$(echo "$last" | sed -n 's/.* \([0-9][0-9]*\) passed, \([0-9][0-9]*\) failed.*/\2/p')
	if [ -z "$p" ]; then
		bad "$1 (exit $3, no summary): $(printf '%s\n' "$2" | tail -n 3 | tr '\n' ' ')"
		return
	fi
	if [ "$3" != 0 ] && [ "$f" = 0 ]; then
		f=1
	fi
	pass=$((pass + p))
	fail=$((fail + f))
	if [ "$f" = 0 ]; then
		echo "ok   $1: $last ($(($(date +%s) - ts)) s)"
	else
		echo "FAIL $1: $last ($(($(date +%s) - ts)) s)"
		printf '%s\n' "$2" | grep -E '^(not ok|FAIL|     )' | head -n 40
	fi
}

emu_of() {
	case "$1" in
	aarch64) echo "qemu-aarch64-static -cpu cortex-a53" ;;
	armv7) echo "qemu-arm-static -cpu cortex-a7" ;;
	mipsel) echo "qemu-mipsel-static -cpu 24Kc" ;;
	*) echo "" ;;
	esac
}
machine_of() {
	case "$1" in
	x86_64) echo "Advanced Micro Devices X86-64" ;;
	aarch64) echo "AArch64" ;;
	armv7) echo "ARM" ;;
	mipsel) echo "MIPS R3000" ;;
	esac
}
# Instructions that touch the FPU: coprocessor-1 loads, stores, moves and
# branches, and arithmetic/compare/convert on single or double operands.
FPU_RE='[[:space:]](lwc1|swc1|ldc1|sdc1|lwxc1|swxc1|ldxc1|sdxc1|mtc1|mfc1|mthc1|mfhc1|cfc1|ctc1|bc1[ft]l?|(add|sub|mul|div|abs|neg|mov|sqrt|madd|msub|round|trunc|ceil|floor|cvt)\.[a-z.]+|c\.[a-z]+\.[sd])[[:space:]]'
fpu_count() {
	mipsel-linux-gnu-objdump -d "$1" | grep -cE "$FPU_RE"
}

# One target's checks; the last line is "counts: PASSED FAILED".
one_arch() {
	arch=$1
	t0=$(date +%s)
	bin=dist/relay-$arch
	echo "== $arch"
	if [ ! -x "$bin" ]; then
		bad "$arch: $bin missing (make cross)"
		return
	fi
	hdr=$(readelf -lh "$bin" 2>&1)
	if printf '%s\n' "$hdr" | grep -q "Machine:[[:space:]]*$(machine_of "$arch")\$" &&
	    ! printf '%s\n' "$hdr" | grep -q INTERP &&
	    printf '%s\n' "$hdr" | grep -q 'Type:[[:space:]]*EXEC'; then
		ok "$arch: $bin is a static $(machine_of "$arch") executable"
	else
		bad "$arch: $bin header: $(printf '%s\n' "$hdr" | grep -E 'Machine|Type|INTERP' | tr '\n' ' ')"
	fi

	if [ "$arch" = x86_64 ]; then
		if cmp -s relay "$bin"; then
			ok "x86_64: $bin is ./relay byte for byte (make test runs it natively)"
		else
			bad "x86_64: $bin differs from ./relay"
		fi
		return
	fi

	emu=$(emu_of "$arch")
	q=${emu%% *}
	if ! command -v "$q" >/dev/null 2>&1; then
		bad "$arch: $q not found (tools/setup.sh cross installs qemu-user-static)"
		return
	fi
	dir=build/cross/$arch
	# qemu-user passes a MIPS guest the host's SO_ERROR number as is
	# (test_upstream names the refused connect by it there).
	RELAY_EMU_RAW_SO_ERROR=
	[ "$arch" = mipsel ] && RELAY_EMU_RAW_SO_ERROR=1
	export RELAY_EMU_RAW_SO_ERROR
	[ -n "$RELAY_EMU_RAW_SO_ERROR" ] || unset RELAY_EMU_RAW_SO_ERROR

	# Unit tests.
	n=0
	for t in "$dir"/test_*; do
		[ -x "$t" ] || continue
		n=$((n + 1))
		# shellcheck disable=SC2086
		ts=$(date +%s)
		out=$($emu "$t" 2>&1)
		rc=$?
		add "$arch ${t##*/}" "$out" $rc
	done
	[ "$n" -gt 0 ] || bad "$arch: no unit test programs in $dir (make cross-units-$arch)"

	# Money arithmetic (64-bit math on 32-bit CPUs) against decimal.
	wrap=$(mktemp)
	printf '#!/bin/sh\nexec %s %s/money_cases "$@"\n' "$emu" "$(pwd)/$dir" >"$wrap"
	chmod +x "$wrap"
	ts=$(date +%s)
	out=$(python3 tests/unit/money_ref.py "$wrap" 100000 2>&1)
	rc=$?
	add "$arch money_ref" "$out" $rc
	rm -f "$wrap"

	# The end-to-end suite against this target's binary.
	ts=$(date +%s)
	# shellcheck disable=SC2086
	out=$(RELAY_BIN=$bin RELAY_EMU="$emu" RELAY_FAKETIME_BIN=$dir/relay-faketime \
	    python3 tests/e2e/run.py $CROSS_E2E 2>&1)
	rc=$?
	add "$arch e2e" "$out" $rc

	if [ "$arch" = mipsel ]; then
		# No FPU instruction anywhere in the soft-float binaries ...
		for b in "$bin" "$dir/relay-faketime"; do
			c=$(fpu_count "$b")
			if [ "$c" = 0 ]; then
				ok "mipsel: $b has no FPU instruction (objdump)"
			else
				bad "mipsel: $b has $c FPU instructions:"
				mipsel-linux-gnu-objdump -d "$b" | grep -E "$FPU_RE" | head -n 5
			fi
		done
		# ... and the controls: the same check finds them in hard-float
		# code, and the emulated 24Kc traps on one.
		ctl=$(mktemp -d)
		printf 'double f(double a, double b) { return a * b + 1.0; }\n' >"$ctl/hf.c"
		# shellcheck disable=SC2016
		printf 'void __start(void) { __asm__ volatile("mtc1 $0, $f0\\n\\tli $2, 4001\\n\\tli $4, 0\\n\\tsyscall"); }\n' >"$ctl/fpu.c"
		if mipsel-linux-gnu-gcc -O2 -mhard-float -c -o "$ctl/hf.o" "$ctl/hf.c" &&
		    [ "$(fpu_count "$ctl/hf.o")" -gt 0 ]; then
			ok "mipsel: control: the check finds FPU instructions in hard-float code"
		else
			bad "mipsel: control: the check misses FPU instructions in hard-float code"
		fi
		if mipsel-linux-gnu-gcc -static -nostdlib -fno-pic -mno-abicalls -o "$ctl/fpu" "$ctl/fpu.c"; then
			# shellcheck disable=SC2086
			$emu "$ctl/fpu" >/dev/null 2>&1
			rc=$?
			if [ "$rc" = 132 ]; then
				ok "mipsel: control: $emu stops an FPU instruction with SIGILL"
			else
				bad "mipsel: control: an FPU instruction under $emu exited $rc, not SIGILL"
			fi
		else
			bad "mipsel: control program did not build"
		fi
		rm -rf "$ctl"
	fi
	echo "   $arch: $(($(date +%s) - t0)) s"
}

# Two targets at a time (most of an e2e run is waiting on sockets; the
# unit tests under qemu are CPU-bound and the machine may have 2 cores);
# CROSS_JOBS=1 runs them one after the other.
logs=build/cross/logs
mkdir -p "$logs"
running=0
for arch in "$@"; do
	# shellcheck disable=SC2030  # each target counts in its own subshell
	( pass=0; fail=0; one_arch "$arch"; echo "counts: $pass $fail" ) \
	    >"$logs/$arch.log" 2>&1 &
	running=$((running + 1))
	if [ "$running" -ge "${CROSS_JOBS:-2}" ]; then
		wait
		running=0
	fi
done
wait
for arch in "$@"; do
	grep -v '^counts: ' "$logs/$arch.log"
	c=$(grep '^counts: ' "$logs/$arch.log" | tail -n 1)
	if [ -z "$c" ]; then
		bad "$arch: the checks did not finish (see $logs/$arch.log)"
		continue
	fi
	# shellcheck disable=SC2031
	pass=$((pass + $(echo "$c" | cut -d' ' -f2)))
	# shellcheck disable=SC2031
	fail=$((fail + $(echo "$c" | cut -d' ' -f3)))
done

echo "cross: wall time $(($(date +%s) - t00)) s"
echo "cross: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
