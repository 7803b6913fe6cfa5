/* Inputs that end right before an unreadable page, so that a parser that
 * reads one byte past its input faults (tests of pure parsers). Define
 * AREA_MIN (bytes) before including; call guard_init() once, then
 * at_guard(s, n) gives a copy of s[0..n) ending at the guard page. */
#ifndef RELAY_GUARD_T_H
#define RELAY_GUARD_T_H
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

static char *area;		/* readable bytes, then one PROT_NONE page */
static size_t area_len;

static void
guard_init(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	void *m = NULL;

	area_len = (AREA_MIN + page - 1) / page * page;
	m = mmap(NULL, area_len + page, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED) {
		perror("mmap");
		exit(2);
	}
	area = m;
	if (mprotect(area + area_len, page, PROT_NONE) != 0) {
		perror("mprotect");
		exit(2);
	}
}

/* Copy n bytes so that they end right before the guard page. */
static const char *
at_guard(const char *s, size_t n)
{
	char *p = area + area_len - n;

	if (n > area_len) {
		fprintf(stderr, "input too large for the guard area\n");
		exit(2);
	}
	memmove(p, s, n);
	return p;
}
#endif
