#!/bin/sh
# The soft-float mipsel toolchain for FPU-less routers (MIPS 24Kc, 74Kc):
# a static musl C library and gcc's soft-fp routines, both compiled with
# -msoft-float from Debian's sources, into vendor/softfloat/mipsel/.
#
# Why: Debian's mipsel musl and libgcc.a are hard-float (musl's printf
# formats floating point with FPU instructions; libgcc's __adddf3 & co.
# use the FPU), so a binary linked against them dies with SIGILL on a core
# without an FPU, or on an OpenWrt kernel built without the FPU emulator.
#
# Sources: `apt-get source --download-only musl` and `... gcc-12` (the
# orig tarballs, whose SHA-256 is pinned in vendor/VERSIONS; Debian adds
# no patches to musl, and only libgcc/soft-fp, libgcc/config/mips and
# include/longlong.h are taken from gcc). The result is cached: it is
# rebuilt only when this script or a pinned checksum changes.
#
# Output: vendor/softfloat/mipsel/{include,lib}, with lib/musl-gcc.specs,
# so that the compiler is
#   mipsel-linux-gnu-gcc -msoft-float -specs vendor/softfloat/mipsel/lib/musl-gcc.specs
# lib/libsoftfp.a is linked ahead of libgcc.a by that specs file.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"
out="$here/softfloat/mipsel"
CROSS=${CROSS:-mipsel-linux-gnu-}
JOBS=${JOBS:-2}

want() { awk -v n="$1" '$1 == n { print $NF }' "$here/VERSIONS"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
die() { echo "vendor/softfloat.sh: $*" >&2; exit 1; }

stamp="musl $(want musl) gcc $(want gcc-12) script $(sum "$0") at $out"
if [ -f "$out/.verified" ] && [ "$(cat "$out/.verified")" = "$stamp" ]; then
	exit 0
fi
command -v "${CROSS}gcc" >/dev/null 2>&1 ||
    die "${CROSS}gcc not found (tools/setup.sh cross installs gcc-mipsel-linux-gnu)"

mkdir -p "$cache"
fetch() {	# fetch SOURCE-PACKAGE TARBALL NAME-IN-VERSIONS
	if [ ! -f "$cache/$2" ]; then
		( cd "$cache" && apt-get source --download-only "$1" >/dev/null 2>&1 ) || true
		[ -f "$cache/$2" ] || die "could not get $2 with 'apt-get source --download-only $1' (is a deb-src entry configured? tools/setup.sh cross adds one)"
	fi
	got=$(sum "$cache/$2")
	[ "$got" = "$(want "$3")" ] || die "$2 checksum mismatch: got $got, want $(want "$3")"
}
fetch musl musl_1.2.3.orig.tar.gz musl
fetch gcc-12 gcc-12_12.2.0.orig.tar.gz gcc-12

work="$cache/softfloat-build"
rm -rf "$work" "$out"
mkdir -p "$work" "$out"
t0=$(date +%s)

# --- musl ------------------------------------------------------------------
tar -C "$work" -xzf "$cache/musl_1.2.3.orig.tar.gz"
(
	cd "$work/musl-1.2.3"
	CROSS_COMPILE="$CROSS" CC="${CROSS}gcc" CFLAGS="-Os -msoft-float" ./configure \
	    --target=mipsel-linux-muslsf --prefix="$out" \
	    --syslibdir="$out/lib" --disable-shared --enable-wrapper=gcc \
	    >"$work/musl-configure.log" 2>&1 ||
	    { tail -n 5 "$work/musl-configure.log" | cut -c1-300; exit 1; }
	make -j"$JOBS" >"$work/musl-build.log" 2>&1 ||
	    { tail -n 5 "$work/musl-build.log" | cut -c1-300; exit 1; }
	make install >>"$work/musl-build.log" 2>&1 ||
	    { tail -n 5 "$work/musl-build.log" | cut -c1-300; exit 1; }
) || die "musl build failed (logs in $work)"

# --- soft-fp ---------------------------------------------------------------
# The routines gcc's libgcc builds for a soft-float 32-bit MIPS
# (config/t-softfp with float modes sf df, int modes si di, sf<->df).
gcc_outer=gcc-12-12.2.0/gcc-12.2.0-dfsg.tar.xz
tar -C "$work" -xzf "$cache/gcc-12_12.2.0.orig.tar.gz" "$gcc_outer"
tar -C "$work" -xJf "$work/$gcc_outer" \
    gcc-12.2.0/libgcc/soft-fp gcc-12.2.0/libgcc/config/mips/sfp-machine.h \
    gcc-12.2.0/include/longlong.h
rm -f "$work/$gcc_outer"
sf="$work/gcc-12.2.0/libgcc/soft-fp"
fns=""
for m in sf df; do
	for op in add${m}3 sub${m}3 mul${m}3 div${m}3 neg${m}2 eq${m}2 ge${m}2 le${m}2 unord${m}2; do
		fns="$fns $op"
	done
	for i in si di; do
		fns="$fns fix${m}${i} fixuns${m}${i} float${i}${m} floatun${i}${m}"
	done
done
fns="$fns extendsfdf2 truncdfsf2"
mkdir -p "$work/softfp"
for f in $fns; do
	${CROSS}gcc -Os -msoft-float -fno-asynchronous-unwind-tables \
	    -ffunction-sections -DIN_LIBGCC2 -I"$work/gcc-12.2.0/libgcc/config/mips" \
	    -I"$sf" -I"$work/gcc-12.2.0/include" -c -o "$work/softfp/$f.o" "$sf/$f.c" ||
	    die "soft-fp: $f.c did not compile"
done
ar rcs "$out/lib/libsoftfp.a" "$work"/softfp/*.o

# --- the compiler's view ---------------------------------------------------
# musl's generated specs, with the soft-fp archive ahead of libgcc.a.
specs="$out/lib/musl-gcc.specs"
[ -f "$specs" ] || die "musl did not install $specs"
sed -i "s|^libgcc.a%s|$out/lib/libsoftfp.a libgcc.a%s|" "$specs"
grep -q libsoftfp "$specs" || die "could not put libsoftfp.a into $specs"

# A smoke test: floating-point formatting (musl's printf) links and holds
# no FPU instruction.
cat >"$work/t.c" <<'EOF'
#include <stdio.h>
int main(int argc, char **argv) { (void)argv; printf("%.3f\n", argc * 1.5); return 0; }
EOF
${CROSS}gcc -msoft-float -specs "$specs" -static -Os -o "$work/t" "$work/t.c" 2>"$work/t.log" ||
    { cat "$work/t.log"; die "a soft-float test program did not link"; }
fpu=$(${CROSS}objdump -d "$work/t" | grep -cE '\s(lwc1|swc1|ldc1|sdc1|mtc1|mfc1|mthc1|mfhc1|cfc1|ctc1|add\.[sd]|sub\.[sd]|mul\.[sd]|div\.[sd]|cvt\.)\s' || true)
[ "$fpu" = 0 ] || die "the soft-float test program still has $fpu FPU instructions"

rm -rf "$work"
echo "$stamp" >"$out/.verified"
echo "vendor: soft-float musl 1.2.3 and gcc-12 soft-fp for mipsel built and verified ($(($(date +%s) - t0)) s)"
