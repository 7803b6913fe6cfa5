#!/bin/sh
# chroot_dns: the static resolver works in an empty root that holds only
# etc/resolv.conf, etc/hosts and the binary: no NSS modules, no libc files,
# no /dev, no /proc. Runs tests/e2e/dnsprobe (static, musl) under chroot:
# names from hosts, localhost, literals, then real UDP queries to a test
# nameserver on 127.0.0.1 (the same probe in -s mode, outside the root),
# NXDOMAIN and a silent nameserver. Needs root; prints
# "chroot_dns: N passed, N failed".
#
# DNSPROBE=path uses an already built probe; otherwise it is built here
# with musl-gcc from the sources (BearSSL from build/libbearssl.a).
set -u
cd "$(dirname "$0")/../.."
pass=0
fail=0

if [ "$(id -u)" -ne 0 ]; then
	echo "chroot_dns: skipped (needs root for chroot)"
	echo "chroot_dns: 0 passed, 0 failed"
	exit 0
fi

tmp=$(mktemp -d /tmp/chroot_dns.XXXXXX) || exit 1
srv=
cleanup() {
	[ -n "$srv" ] && kill "$srv" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

probe=${DNSPROBE:-}
if [ -z "$probe" ]; then
	probe=$tmp/dnsprobe
	[ -f build/libbearssl.a ] || make -s build/libbearssl.a >/dev/null
	musl-gcc -std=c99 -D_POSIX_C_SOURCE=200809L -D_DEFAULT_SOURCE -Os \
	    -Wall -Wextra -Werror -Ivendor/bearssl/inc -Isrc -Ibuild \
	    -static -o "$probe" tests/e2e/dnsprobe.c src/dns.c src/util.c \
	    src/sha256.c src/log.c src/clock.c build/libbearssl.a || {
		echo "chroot_dns: cannot build the probe"
		echo "chroot_dns: 0 passed, 1 failed"
		exit 1
	}
fi

root=$tmp/root
mkdir -p "$root/etc"
cp "$probe" "$root/dnsprobe"
printf '127.0.0.1 localhost\n127.0.0.77 provider.test\n' > "$root/etc/hosts"
printf 'nameserver 127.0.0.1:1\n' > "$root/etc/resolv.conf"

# run NAME WANT_STATUS PATTERN ARGS...: chroot the probe, check the exit
# status and that stdout+stderr match PATTERN (grep -E).
run() {
	name=$1 want=$2 pat=$3
	shift 3
	out=$(chroot "$root" /dnsprobe "$@" 2>&1)
	rc=$?
	if [ "$rc" -eq "$want" ] && echo "$out" | grep -Eq "$pat"; then
		pass=$((pass + 1))
		echo "ok - $name"
	else
		fail=$((fail + 1))
		echo "not ok - $name (status $rc, want $want; output: $out)"
	fi
}

# Nothing but the two files and the binary in the root.
n=$(find "$root" -type f | wc -l)
if [ "$n" -eq 3 ]; then
	pass=$((pass + 1))
	echo "ok - root holds 3 files"
else
	fail=$((fail + 1))
	echo "not ok - root holds $n files"
fi

run "localhost and hosts" 0 \
    '^localhost 127\.0\.0\.1$' localhost provider.test
run "hosts name" 0 '^provider\.test 127\.0\.0\.77$' provider.test
run "literals" 0 '^::1 ::1$' 192.0.2.1 ::1
run "silent nameserver fails" 1 \
    'cannot resolve api\.example\.test: no answer from nameserver 127\.0\.0\.1:1 after 2 tries' \
    -t 100 api.example.test

# A nameserver on loopback (chroot keeps the network namespace).
"$probe" -s "$tmp/port" &
srv=$!
i=0
while [ ! -s "$tmp/port" ] && [ $i -lt 50 ]; do
	sleep 0.1
	i=$((i + 1))
done
port=$(cat "$tmp/port" 2>/dev/null)
if [ -n "$port" ]; then
	printf 'nameserver 127.0.0.1:%s\noptions timeout:1\n' "$port" \
	    > "$root/etc/resolv.conf"
	run "query over UDP" 0 '^api\.example\.test 127\.0\.0\.88$' \
	    api.example.test
	run "NXDOMAIN" 1 \
	    'cannot resolve nx\.example\.test: NXDOMAIN \(no such name\)' \
	    nx.example.test
	run "hosts still first" 0 '^provider\.test 127\.0\.0\.77$' \
	    provider.test
else
	fail=$((fail + 1))
	echo "not ok - test nameserver did not start"
fi

echo "chroot_dns: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
