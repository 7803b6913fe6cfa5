#!/bin/sh
# What ./relay is made of: links the release objects again, unstripped and
# with a linker map, and prints the bytes each object file (BearSSL and musl
# as one line each, or per member with -v) puts in the file (code, read-only
# data, initialised data) and in memory only (.bss), largest first.
#
#   make relay && sh tools/sizes.sh        # per object
#   sh tools/sizes.sh -v                   # BearSSL and libc per member
#   sh tools/sizes.sh -s                   # the 40 largest symbols
#
# The link command is the Makefile's own (`make -n relay`), so the flags and
# objects are the release ones; only -s is dropped and -Map added. The
# release link is LTO (Makefile: LTO_LINK), whose code comes out of the
# link's own partitions, not one object each: the per-object views add
# -fno-lto, linking each object's plain code as compiled (before
# cross-file inlining; their total is a little above the release
# binary's), and -s lists the symbols of the LTO link itself.
set -eu
cd "$(dirname "$0")/.."
mode=${1:-}
out=build/relay.sym
map=build/relay.map
cmd=$(make -s -n -W build/relay.o relay | grep -- ' -o relay ' | tail -n 1)
[ -n "$cmd" ] || { echo "tools/sizes.sh: cannot find the link command in 'make -n relay'" >&2; exit 1; }
# shellcheck disable=SC2086
set -- $(echo "$cmd" | sed -e 's/ -s / /' -e "s| -o relay | -o $out -Wl,-Map=$map |")
[ "$mode" = -s ] || set -- "$@" -fno-lto
"$@"
if [ "$mode" = -s ]; then
	nm --size-sort -S "$out" | tail -n 40
	exit 0
fi
awk -v verbose="$( [ "$mode" = -v ] && echo 1 || echo 0 )" '
function hex(s,   i, n, c) {
	n = 0
	for (i = 3; i <= length(s); i++) {
		c = index("0123456789abcdef", tolower(substr(s, i, 1))) - 1
		n = n * 16 + c
	}
	return n
}
function group(f,   m) {
	if (f ~ /libbearssl\.a\(/) { if (verbose) return f; return "BearSSL (libbearssl.a)" }
	if (f ~ /libc\.a\(/) { if (verbose) return f; return "musl libc (libc.a)" }
	if (f ~ /libgcc/ || f ~ /crt[^\/]*\.o$/) return "crt + libgcc"
	return f
}
function add(sec, size, f,   g) {
	if (size == 0 || f == "") return
	g = group(f)
	if (sec == ".bss" || sec == ".tbss") bss[g] += size; else file[g] += size
	seen[g] = 1
}
/^Linker script and memory map/ { on = 1; next }
!on { next }
/^\/DISCARD\// { on = 0; next }
/^\.[a-z_.]+[ \t]/ || /^\.[a-z_.]+$/ {
	out = $1
	alloc = (out ~ /^\.(init|fini|text|rodata|eh_frame|gcc_except_table|init_array|fini_array|data\.rel\.ro|got|got\.plt|data|tdata|tbss|bss)$/)
	next
}
!alloc { next }
# An input section: " .name 0xADDR 0xSIZE file", or its name alone on one
# line and "0xADDR 0xSIZE file" on the next.
/^ [.*A-Za-z_]/ && NF == 1 { pending = 1; next }
/^ \./ && NF >= 4 && $2 ~ /^0x/ && $3 ~ /^0x/ { add(out, hex($3), $4); pending = 0; next }
pending && NF >= 3 && $1 ~ /^0x/ && $2 ~ /^0x/ { add(out, hex($2), $3); pending = 0; next }
{ pending = 0 }
END {
	for (g in seen) { printf "%8d %8d  %s\n", file[g], bss[g], g; tf += file[g]; tb += bss[g] }
	printf "%8d %8d  total (in the file / .bss; objects linked without LTO)\n", tf, tb > "/dev/stderr"
}' "$map" | sort -rn
ls -l relay 2>/dev/null | awk '{ printf "./relay (LTO): %d bytes (%.1f KiB)\n", $5, $5 / 1024 }'
