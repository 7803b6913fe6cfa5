#!/bin/sh
# Fetch the pinned BearSSL and jsmn sources from Debian, verify their
# SHA-256 against vendor/VERSIONS and unpack them under vendor/.
#
# BearSSL comes from the Debian source package `bearssl` (apt-get source,
# which needs a deb-src entry: .ci/run derives one from the machine's own
# apt sources). jsmn is a single header shipped by the binary package
# `libjsmn-dev`; we check the header itself, so either the installed copy
# or a downloaded .deb will do.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
cache="$here/cache"
mkdir -p "$cache"

want() { awk -v n="$1" '$1 == n { print $NF }' "$here/VERSIONS"; }
sum() { sha256sum "$1" | cut -d' ' -f1; }
die() { echo "vendor/fetch.sh: $*" >&2; exit 1; }

# --- BearSSL ---------------------------------------------------------------
if [ ! -f "$here/bearssl/.verified" ]; then
	tarball="$cache/bearssl_0.6+dfsg.1.orig.tar.xz"
	if [ ! -f "$tarball" ]; then
		( cd "$cache" && apt-get source --download-only bearssl >/dev/null 2>&1 ) || true
		[ -f "$tarball" ] || die "could not get $(basename "$tarball") with 'apt-get source --download-only bearssl' (is a deb-src entry configured? see .ci/run)"
	fi
	got=$(sum "$tarball")
	[ "$got" = "$(want bearssl)" ] || die "bearssl checksum mismatch: got $got, want $(want bearssl)"
	rm -rf "$here/bearssl" "$cache/bearssl-0.6"
	tar -C "$cache" -xJf "$tarball"
	mv "$cache/bearssl-0.6" "$here/bearssl"
	touch "$here/bearssl/.verified"
	echo "vendor: bearssl 0.6 verified and unpacked"
fi

# --- jsmn ------------------------------------------------------------------
if [ ! -f "$here/jsmn/.verified" ]; then
	hdr=""
	if [ -f /usr/include/jsmn.h ] && [ "$(sum /usr/include/jsmn.h)" = "$(want jsmn)" ]; then
		hdr=/usr/include/jsmn.h
	else
		( cd "$cache" && apt-get download libjsmn-dev >/dev/null 2>&1 ) || true
		deb=$(ls "$cache"/libjsmn-dev_*.deb 2>/dev/null | head -n 1)
		[ -n "$deb" ] || die "could not get libjsmn-dev with 'apt-get download libjsmn-dev'"
		rm -rf "$cache/jsmn-deb"
		dpkg-deb -x "$deb" "$cache/jsmn-deb"
		hdr="$cache/jsmn-deb/usr/include/jsmn.h"
	fi
	got=$(sum "$hdr")
	[ "$got" = "$(want jsmn)" ] || die "jsmn.h checksum mismatch: got $got, want $(want jsmn)"
	rm -rf "$here/jsmn"
	mkdir -p "$here/jsmn"
	cp "$hdr" "$here/jsmn/jsmn.h"
	touch "$here/jsmn/.verified"
	echo "vendor: jsmn 1.1.0 verified"
fi
