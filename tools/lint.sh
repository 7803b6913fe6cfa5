#!/bin/sh
# lint: the checks `make lint` runs over src/. Each problem is printed as
# "FILE:LINE: message"; the exit code is 1 when there is any, else 0.
#
#  1. Warnings: every src/*.c and relay.c compiled as the build compiles
#     it (LINT_CFLAGS from the Makefile: its CFLAGS, -Werror included,
#     but RELAY_VERSION, which this script sets itself; -O2 for the modules
#     it builds with $(OPT_HOT)), plus LINT_WARN below: extra warnings
#     that the whole tree passes today (no -Wconversion).
#     BearSSL's headers are included as system headers, so its own style
#     is not reported. The compiler prints its "FILE:LINE:COL:" lines.
#  2. File size: a C file (.c or .h) in src/ over MAX_FILE (1,000) lines.
#  3. Function size: a function over MAX_FUNC (120) lines, counted from
#     the line of its name to its closing brace. The code style is
#     BSD/OpenBSD: return type on its own line, the name at column 0, the
#     braces of a body at column 0.
#  4. Dead code: an exported (not static) function of src/*.c that
#     nothing outside its own .c file uses. Uses are looked for in src/,
#     relay.c and tools/ with comments and string literals taken out; in
#     a header only a macro (#define) counts as a use, since the
#     function's own prototype is no use. tests/ and bench/ are not
#     looked at: a function only tests call is dead code, unless its
#     header marks it as a test hook (next paragraph).
#
# Test hooks: a function that exists for the unit tests (a switch, an
# observer of internal state) is declared in its module's header under a
# contract comment that contains the words "Test hook" and says what the
# tests use it for. The comment covers the declarations that follow it
# without a blank line in between. Prefer a static helper in the test
# itself when the tests only want a convenience.
#
# Usage: make lint (it passes CC and LINT_CFLAGS to this script). LINT_WARN,
# MAX_FILE, MAX_FUNC and JOBS may be set to try other limits.
set -u
cd "$(dirname "$0")/.." || exit 1

CC=${CC:-musl-gcc}
if [ -z "${LINT_CFLAGS:-}" ]; then
	echo "lint: run it as make lint (the build's flags come from the" \
	    "Makefile)" >&2
	exit 2
fi
# Extra warnings the whole tree passes today (GCC 12): the style's
# prototypes and declarations, format strings, no VLAs or alloca, and what
# the optimizer can see of null pointers and duplicated branches.
LINT_WARN=${LINT_WARN:-"-Wformat=2 -Wundef -Wvla -Wold-style-definition
 -Wmissing-declarations -Wredundant-decls -Wnested-externs -Wwrite-strings
 -Wnull-dereference -Wduplicated-cond -Wduplicated-branches
 -Wjump-misses-init -Wdouble-promotion -Wformat-overflow=2 -Walloca
 -Wdeclaration-after-statement -Wbad-function-cast -Wshift-overflow=2
 -Wunused-macros"}
MAX_FILE=${MAX_FILE:-1000}
MAX_FUNC=${MAX_FUNC:-120}
JOBS=${JOBS:-2}

T=$(mktemp -d "${TMPDIR:-/tmp}/lint.XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT INT TERM
: > "$T/found"

# ---- 1. warnings -----------------------------------------------------------
# Modules the Makefile builds with -O2 (OPT_name = $(OPT_HOT)): some
# warnings depend on the optimizer, so each file gets its build's level.
HOT=" $(sed -n 's/^OPT_\([A-Za-z0-9_]*\)[[:space:]]*=[[:space:]]*\$(OPT_HOT).*/\1/p' \
    Makefile | tr '\n' ' ') "
for f in src/*.c relay.c; do
	m=$(basename "$f" .c)
	case $HOT in
	*" $m "*) echo "$f -O2" ;;
	*) echo "$f -" ;;
	esac
done | CC=$CC CF="$LINT_CFLAGS $LINT_WARN" OUT=$T xargs -n2 -P"$JOBS" \
    sh -c '
	opt=$1
	[ "$opt" = - ] && opt=
	# shellcheck disable=SC2086
	$CC $CF $opt "-DRELAY_VERSION=\"lint\"" -c -o /dev/null "$0" \
	    > "$OUT/cc.$(echo "$0" | tr / _)" 2>&1 ||
	    echo "$0" >> "$OUT/ccfail"'
cat "$T"/cc.* 2>/dev/null | grep -E '^[^ ]+:[0-9]+:[0-9]+: (error|warning)' |
    grep -v '^vendor/' | sort -u >> "$T/found"
if [ -s "$T/ccfail" ]; then
	# A file that failed without a FILE:LINE diagnostic (a missing header,
	# a bad flag): say so, with the compiler's own words.
	while read -r f; do
		grep -q "^$f:[0-9]" "$T/found" ||
		    sed -n "1s|^|$f:1: does not compile: |p" \
		    "$T/cc.$(echo "$f" | tr / _)" >> "$T/found"
	done < "$T/ccfail"
fi

# ---- 2. file size ----------------------------------------------------------
for f in src/*.c src/*.h; do
	awk -v max="$MAX_FILE" 'END { if (NR > max) printf "%s:%d: file has " \
	    "%d lines (limit %d)\n", FILENAME, max + 1, NR, max }' "$f"
done >> "$T/found"

# ---- 3. function size ------------------------------------------------------
# A name at column 0 followed by '(' starts a candidate; a ';' at the end
# of a line before any '{' at column 0 makes it a prototype; '{' at column
# 0 makes it a body, which ends at the next '}' at column 0.
for f in src/*.c; do
	awk -v max="$MAX_FUNC" '
	!inbody && /^[A-Za-z_][A-Za-z0-9_]*\(/ {
		cand = FNR
		name = $0
		sub(/\(.*/, "", name)
	}
	cand && !inbody && /;[ \t]*$/ { cand = 0 }
	cand && !inbody && /^\{/ { inbody = 1; start = cand; cand = 0; next }
	inbody && /^\}/ {
		n = FNR - start + 1
		if (n > max) {
			printf "%s:%d: function %s is %d lines (limit %d)\n",
			    FILENAME, start, name, n, max
		}
		inbody = 0
	}' "$f"
done >> "$T/found"

# ---- 4. exported functions nothing else uses -------------------------------
# Every file to search, without comments and string literals, continued
# lines joined (a macro's body is on its #define line).
mkdir "$T/pp"
for f in src/*.c src/*.h relay.c tools/*.c; do
	[ -f "$f" ] || continue
	$CC -fpreprocessed -dD -E -P "$f" 2>/dev/null |
	    sed -e ':a' -e '/\\$/N; s/\\\n/ /; ta' |
	    sed -e 's/"\([^"\\]\|\\.\)*"/""/g' \
	    -e "s/'\\([^'\\\\]\\|\\\\.\\)*'/''/g" \
	    > "$T/pp/$(echo "$f" | tr / _)"
done

# Test hooks: names declared under a comment that says "Test hook".
for h in src/*.h; do
	awk '
	/\/\*/ { incomment = 1; text = "" }
	incomment { text = text " " $0 }
	/\*\// { incomment = 0; hook = (tolower(text) ~ /test hook/); next }
	/^[ \t]*$/ { hook = 0; next }
	hook {
		line = $0
		while (match(line, /[A-Za-z_][A-Za-z0-9_]*\(/)) {
			print substr(line, RSTART, RLENGTH - 1)
			line = substr(line, RSTART + RLENGTH)
		}
	}' "$h"
done | sort -u > "$T/hooks"

# name file line: every exported function definition.
for f in src/*.c; do
	awk '
	/^[A-Za-z_][A-Za-z0-9_]*\(/ {
		name = $0
		sub(/\(.*/, "", name)
		if (prev != "" && prev !~ /static/ && prev !~ /^[#\/ \t*]/ &&
		    prev !~ /;[ \t]*$/) {
			print name, FILENAME, FNR
		}
	}
	{ prev = $0 }' "$f"
done > "$T/exports"

# "word file" for every identifier of every searched file (of a header,
# only its #define lines and tab-indented lines: the bodies of its inline
# functions; prototypes and their continuation lines are not uses).
for p in "$T"/pp/*; do
	b=$(basename "$p")
	case $b in
	*.h) grep -E '^(#define|[ \t])' "$p" ;;
	*) cat "$p" ;;
	esac | grep -o '[A-Za-z_][A-Za-z0-9_]*' | sort -u | sed "s|\$| $b|"
done > "$T/words"

awk -v hooks="$T/hooks" -v words="$T/words" '
BEGIN {
	while ((getline w < hooks) > 0) {
		hook[w] = 1
	}
	while ((getline l < words) > 0) {
		split(l, f, " ")
		seen[f[1]] = seen[f[1]] " " f[2] " "
	}
}
{
	name = $1
	file = $2
	own = file
	gsub("/", "_", own)
	if (name == "main" || name in hook) {
		next
	}
	rest = seen[name]
	gsub(" " own " ", " ", rest)
	if (rest !~ /[^ ]/) {
		base = file
		sub(/.*\//, "", base)
		printf "%s:%d: %s is exported but nothing outside %s uses it " \
		    "(make it static, remove it, or mark a test hook in its " \
		    "header)\n", file, $3, name, base
	}
}' "$T/exports" >> "$T/found"

if [ -s "$T/found" ]; then
	cat "$T/found"
	echo "lint: $(wc -l < "$T/found" | tr -d ' ') problems" >&2
	exit 1
fi
echo "lint: clean" >&2
exit 0
