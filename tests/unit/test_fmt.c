/* Unit tests for fmt (src/fmt.c): the relay's printf family. Every case of
 * fmt_cases.h against its expected text and return value, the bytes past
 * a short buffer untouched, and the same cases against the host C
 * library's snprintf (build/fmt_ref, run here: its lines must equal ours);
 * then what only ours defines (NULL %s, %p, unsupported conversions kept
 * as written, EOVERFLOW), vsnprintf, and fprintf and printf with output
 * longer than their FMT_CHUNK buffer. */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include "fmt.h"
#include "fmt_esc.h"
#include "t.h"

#define NCASES 256
static char buf[2048];
static char lines[NCASES][4 * 64 + 16];
static int ncases;

static void
check(int line, int want_r, const char *want, size_t size, int r)
{
	char e[4 * sizeof buf + 1];

	ok(r == want_r && strcmp(buf, want) == 0,
	    "fmt_cases.h:%d: got %d \"%s\", want %d \"%s\"", line, r, buf,
	    want_r, want);
	if (size > 0 && size < sizeof buf - 1) {
		ok(buf[size] == 'Z', "fmt_cases.h:%d: byte %zu written past "
		    "the size", line, size);
	}
	fmt_esc(e, buf);
	if (ncases < NCASES && strlen(e) < sizeof lines[0] - 16) {
		snprintf(lines[ncases], sizeof lines[0], "%d\t%s\n", r, e);
	} else if (ncases < NCASES) {
		snprintf(lines[ncases], sizeof lines[0], "line %d too long\n",
		    line);
	}
	ncases++;
}

#define CASEN(r, e, size, ...) do { \
	memset(buf, 'Z', sizeof buf - 1); \
	buf[sizeof buf - 1] = '\0'; \
	if ((size) == 0) { buf[0] = '\0'; } \
	check(__LINE__, r, e, (size), fmt_snprintf(buf, (size), __VA_ARGS__)); \
} while (0);
#define CASE(r, e, ...) CASEN(r, e, sizeof buf, __VA_ARGS__)

static void
table(void)
{
#include "fmt_cases.h"
}

/* build/fmt_ref's lines, one per case, equal ours. */
static void
against_host(void)
{
	FILE *p = popen("build/fmt_ref", "r");
	char l[sizeof lines[0]];
	int i = 0, same = 0;

	ok(p != NULL, "build/fmt_ref runs");
	if (p == NULL) {
		return;
	}
	while (fgets(l, sizeof l, p) != NULL) {
		if (i < ncases && i < NCASES && strcmp(l, lines[i]) == 0) {
			same++;
		} else if (i < ncases && i < NCASES) {
			ok(0, "case %d: host C library: %.*s, ours: %.*s", i + 1,
			    (int)strcspn(l, "\n"), l,
			    (int)strcspn(lines[i], "\n"), lines[i]);
		}
		i++;
	}
	ok(pclose(p) == 0, "build/fmt_ref exits 0");
	ok_int(i, ncases, "host C library: one line per case");
	ok_int(same, ncases, "host C library: cases with the same result");
}

static int
viaf(char *b, size_t n, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = fmt_vsnprintf(b, n, fmt, ap);
	va_end(ap);
	return r;
}

/* Reads f (rewound) into out; its length. */
static size_t
slurp(FILE *f, char *out, size_t cap)
{
	size_t n;

	rewind(f);
	n = fread(out, 1, cap - 1, f);
	out[n] = '\0';
	return n;
}

static void
long_and_streams(void)
{
	static char want[4096], got[4096];
	char *p;
	FILE *f;
	int r, saved, n;

	/* 3000 bytes: longer than FMT_CHUNK, so written in pieces. */
	n = snprintf(want, sizeof want, "head|%2990d|tail", 7);
	ok_int(n, 3000, "snprintf: 3000 bytes");
	ok(want[5] == ' ' && want[2994] == '7' && want[2995] == '|',
	    "snprintf: the width's padding");
	ok_int(FMT_CHUNK < 3000, 1, "the case is longer than FMT_CHUNK");

	f = tmpfile();
	ok(f != NULL, "tmpfile");
	if (f == NULL) {
		return;
	}
	r = fprintf(f, "head|%2990d|tail", 7);
	ok_int(r, 3000, "fprintf: returns 3000");
	ok_int(slurp(f, got, sizeof got), 3000, "fprintf: 3000 bytes in the file");
	ok(strcmp(got, want) == 0, "fprintf: every piece written, in order");

	rewind(f);
	ok(ftruncate(fileno(f), 0) == 0, "truncate");
	fflush(stdout);
	saved = dup(1);
	ok(saved >= 0 && dup2(fileno(f), 1) == 1, "stdout into the file");
	r = printf("%s=%d %llu\n", "printf", -5, 18446744073709551615ULL);
	fflush(stdout);
	dup2(saved, 1);
	close(saved);
	ok_int(r, 31, "printf: returns its length");
	slurp(f, got, sizeof got);
	ok_str(got, "printf=-5 18446744073709551615\n", "printf: through stdout");
	fclose(f);

	ok_int(viaf(buf, 8, "%s-%llu", "va", 1234567890123ULL), 16,
	    "vsnprintf: through a va_list");
	ok_str(buf, "va-1234", "vsnprintf: through a va_list, cut");

	p = malloc(1);
	fmt_snprintf(buf, sizeof buf, "%p", (void *)p);
	snprintf(got, sizeof got, "0x%zx", (size_t)(uintptr_t)p);
	ok_str(buf, got, "%p: 0x and lowercase hex");
	free(p);
}

static void
ours_only(void)
{
	const char *nul = NULL;

	ok_int(fmt_snprintf(buf, sizeof buf, "[%s]", nul), 8, "NULL %s: length");
	ok_str(buf, "[(null)]", "NULL %s: (null)");
	ok_int(fmt_snprintf(buf, sizeof buf, "%p", (void *)0), 3, "%p of NULL");
	ok_str(buf, "0x0", "%p of NULL: 0x0");
	/* Not supported: copied as written, no argument taken. */
	ok_int(fmt_snprintf(buf, sizeof buf, "a%fb%d", 5), 5, "%f: kept");
	ok_str(buf, "a%fb5", "%f: kept, the next argument still read");
	ok_int(fmt_snprintf(buf, sizeof buf, "a%+db", 5), 5, "%+d: kept");
	ok_str(buf, "a%+db", "%+d: kept as written");
	ok_int(fmt_snprintf(buf, sizeof buf, "x%05"), 4, "a cut % sequence");
	ok_str(buf, "x%05", "a cut % sequence: kept");
	ok_int(fmt_snprintf(buf, sizeof buf, "%"), 1, "a lone %");
	ok_str(buf, "%", "a lone %: kept");
	errno = 0;
	ok_int(snprintf(NULL, 0, "%*d%s", INT_MAX, 1, "x"), -1,
	    "past INT_MAX bytes: -1");
	ok_int(errno, EOVERFLOW, "past INT_MAX bytes: EOVERFLOW");
	ok_int(snprintf(NULL, 0, "%*d", INT_MAX, 1), INT_MAX,
	    "exactly INT_MAX bytes: counted");
	ok_int(snprintf(NULL, 0, "%.*s", 3, "abcdef"), 3, "NULL buffer, size 0");
}

int
main(void)
{
	table();
	ok(ncases <= NCASES, "at most %d cases", NCASES);
	against_host();
	long_and_streams();
	ours_only();
	return t_done("fmt");
}
