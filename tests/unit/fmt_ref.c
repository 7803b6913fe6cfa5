/* The host C library's snprintf on the cases of tests/unit/fmt_cases.h,
 * one line each: "RET<TAB>escaped output". Built with HOSTCC (glibc on the
 * build machine) as build/fmt_ref; tests/unit/test_fmt.c runs it and
 * compares every line with the relay's printf (src/fmt.c). */
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>

#include "fmt_esc.h"

static char buf[2048];

static void
line(int r)
{
	char e[4 * sizeof buf + 1];

	fmt_esc(e, buf);
	printf("%d\t%s\n", r, e);
}

#define CASEN(r, e, size, ...) do { \
	memset(buf, 'Z', sizeof buf - 1); \
	buf[sizeof buf - 1] = '\0'; \
	if ((size) == 0) { buf[0] = '\0'; } \
	line(snprintf(buf, (size), __VA_ARGS__)); \
} while (0);
#define CASE(r, e, ...) CASEN(r, e, sizeof buf, __VA_ARGS__)

int
main(void)
{
#include "fmt_cases.h"
	return 0;
}
