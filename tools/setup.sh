#!/bin/sh
# tools/setup.sh JOB...: install what the named jobs need and this machine
# lacks (Debian 12, apt-get), idempotently. Prints one line per change
# ("setup: installing ...") and nothing when everything is there.
#
#   build    `make`, `make run`: a C compiler, musl-gcc, xz, the CA bundle
#            the roots are compiled from, jsmn's header, and a deb-src
#            entry plus package lists while BearSSL's source is not cached
#   test     `make test`: curl, openssl, python3, node + npm, redis-server,
#            Debian's chromium (the console test), promtool (Debian's
#            prometheus: the metrics test), OpenSSL's
#            headers (the mock upstream), clang-14 with its sanitizer and
#            fuzzer runtime
#   cross    `make cross`, `make test-cross`: the aarch64, armhf and mipsel
#            cross compilers, Debian's musl for arm64 and armhf,
#            qemu-user-static, and the sources of musl and gcc-12 (the
#            soft-float mipsel C library, vendor/softfloat.sh)
#   image    `make image`: podman and runc (nothing if a Docker engine
#            answers)
#   service  `make check-service`: systemd-analyze, shellcheck, strace and
#            /bin/kill (the unit's ExecReload)
#
# Used by the Makefile (the jobs follow from the make goals) and by
# .ci/run. Needs root or sudo only when something is missing. Apt sources
# are never invented: a deb-src entry is derived from the machine's own
# deb entries.
set -eu
cd "$(dirname "$0")/.."

[ $# -gt 0 ] || set -- build

SUDO=""
if [ "$(id -u)" != 0 ]; then
	SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
APT_OPTS="-y -q --no-install-recommends -o DPkg::Lock::Timeout=300"

pkgs=""          # packages to install
arches=""        # foreign architectures to add
need_src=""      # source packages to fetch later (deb-src needed)
why=""

want_pkg() {     # want_pkg PACKAGE JOB
	case " $pkgs " in *" $1 "*) return 0;; esac
	pkgs="$pkgs $1"
	case " $why " in *" $2 "*) ;; *) why="$why $2";; esac
}
cmd() {          # cmd COMMAND PACKAGE JOB
	command -v "$1" >/dev/null 2>&1 || want_pkg "$2" "$3"
}
file() {         # file PATH PACKAGE JOB
	[ -e "$1" ] || want_pkg "$2" "$3"
}
installed() {    # installed PACKAGE[:ARCH]
	[ "$(dpkg-query -W -f='${db:Status-Status}' "$1" 2>/dev/null)" = installed ]
}
pkg() {          # pkg PACKAGE[:ARCH] JOB
	installed "$1" || want_pkg "$1" "$2"
}
arch() {         # arch DEBIAN-ARCH JOB
	dpkg --print-foreign-architectures | grep -qx "$1" && return 0
	case " $arches " in *" $1 "*) ;; *) arches="$arches $1";; esac
}
# A source package is needed unless its tarball is already in the cache.
src() {          # src TARBALL JOB
	[ -f "vendor/cache/$1" ] && return 0
	need_src="$need_src $1"
}

for job in "$@"; do
	case "$job" in
	build)
		cmd cc gcc build
		cmd make make build
		cmd musl-gcc musl-tools build
		cmd xz xz-utils build
		file /etc/ssl/certs/ca-certificates.crt ca-certificates build
		file /usr/include/jsmn.h libjsmn-dev build
		[ -f vendor/bearssl/.verified ] ||
		    src bearssl_0.6+dfsg.1.orig.tar.xz build
		;;
	test)
		cmd curl curl test
		cmd openssl openssl test
		cmd python3 python3 test
		# Node may come from elsewhere (with npm inside): check commands.
		cmd node nodejs test
		cmd npm npm test
		file /usr/include/openssl/ssl.h libssl-dev test
		cmd clang-14 clang-14 test
		pkg libclang-rt-14-dev test
		cmd prlimit util-linux test
		# the store suite's real server; the console's real browser
		cmd redis-server redis-server test
		cmd chromium chromium test
		# promtool checks /metrics and dist/'s alert rules
		# (test_metrics fails, never skips, without it)
		cmd promtool prometheus test
		clients=1
		;;
	cross)
		cmd aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu cross
		cmd arm-linux-gnueabihf-gcc gcc-arm-linux-gnueabihf cross
		cmd mipsel-linux-gnu-gcc gcc-mipsel-linux-gnu cross
		cmd qemu-mipsel-static qemu-user-static cross
		arch arm64 cross
		arch armhf cross
		pkg musl-dev:arm64 cross
		pkg musl-dev:armhf cross
		if [ ! -f vendor/softfloat/.verified ]; then
			src musl_1.2.3.orig.tar.gz cross
			src gcc-12_12.2.0.orig.tar.gz cross
		fi
		;;
	image)
		if ! docker info >/dev/null 2>&1; then
			cmd podman podman image
			cmd runc runc image
		fi
		;;
	service)
		cmd systemd-analyze systemd service
		cmd shellcheck shellcheck service
		cmd strace strace service
		file /bin/kill procps service
		;;
	*)
		echo "tools/setup.sh: unknown job '$job' (build test cross image service)" >&2
		exit 2
		;;
	esac
done

# A deb-src entry for each deb entry of the machine's own sources, unless
# one exists already.
has_deb_src() {
	grep -rqs '^Types:.*deb-src' /etc/apt/sources.list.d/ ||
	    grep -qs '^deb-src' /etc/apt/sources.list
}

# The pinned Node clients (tests/clients: the official SDKs and
# playwright-core), once node and npm are there.
node_clients() {
	[ -n "${clients:-}" ] || return 0
	[ -d tests/clients/node_modules/openai ] &&
	    [ -d tests/clients/node_modules/playwright-core ] && return 0
	echo "setup: npm ci in tests/clients (the pinned SDKs and playwright-core)"
	(cd tests/clients && npm ci --no-audit --no-fund >/dev/null 2>&1) ||
	    { echo "tools/setup.sh: npm ci in tests/clients failed" >&2; exit 1; }
}

if [ -z "$pkgs$arches$need_src" ]; then
	node_clients
	exit 0
fi

if [ -n "$SUDO" ] && ! command -v sudo >/dev/null 2>&1; then
	echo "tools/setup.sh: missing for$why:${pkgs:+ packages$pkgs}${arches:+; architectures$arches}${need_src:+; deb-src entries (for$need_src)}" >&2
	echo "tools/setup.sh: run as root (or install sudo) to let it install them" >&2
	exit 1
fi

update=0
for a in $arches; do
	echo "setup: adding the Debian architecture $a (for the cross C libraries)"
	$SUDO dpkg --add-architecture "$a"
	update=1
done
if [ -n "$need_src" ] && ! has_deb_src; then
	echo "setup: adding deb-src entries derived from the machine's apt sources (for$need_src)"
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		grep -q '^Types: deb$' "$f" || continue
		sed 's/^Types: deb$/Types: deb-src/' "$f" |
		    $SUDO tee "/etc/apt/sources.list.d/relay-src-$(basename "$f")" >/dev/null
	done
	if [ -f /etc/apt/sources.list ] && grep -q '^deb ' /etc/apt/sources.list; then
		sed -n 's/^deb /deb-src /p' /etc/apt/sources.list |
		    $SUDO tee /etc/apt/sources.list.d/relay-src.list >/dev/null
	fi
	update=1
fi
# Package lists: needed for any install, and for apt-get source when the
# machine has never fetched its source indexes.
[ -n "$pkgs" ] && update=1
if [ -n "$need_src" ] && ! ls /var/lib/apt/lists/*Sources* >/dev/null 2>&1; then
	update=1
fi
if [ "$update" = 1 ]; then
	echo "setup: apt-get update"
	# An index can fail transiently ("Mirror sync in progress?") while
	# everything needed still installs: judge by the install itself.
	$SUDO apt-get update -q -o DPkg::Lock::Timeout=300 >/dev/null 2>&1 ||
	    echo "setup: apt-get update reported errors (continuing)"
fi
if [ -n "$pkgs" ]; then
	echo "setup: installing$pkgs (for$why)"
	# shellcheck disable=SC2086
	$SUDO apt-get install $APT_OPTS $pkgs >/dev/null ||
	    { echo "tools/setup.sh: apt-get install$pkgs failed" >&2; exit 1; }
fi
node_clients
