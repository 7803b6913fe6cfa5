#ifndef RELAY_T_H
#define RELAY_T_H
/* A tiny test helper: ok() counts and reports; t_done() prints the
 * summary line "N passed, N failed" and returns the exit code.
 * The first failures print both sides (BearSSL's check_equals idea). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define ok(cond, ...) do { \
	if (cond) { t_pass++; } else { t_fail++; \
		printf("not ok %d - ", t_pass + t_fail); printf(__VA_ARGS__); \
		printf("  (%s:%d)\n", __FILE__, __LINE__); } \
} while (0)

#define ok_int(got, want, name) do { \
	long long g_ = (long long)(got), w_ = (long long)(want); \
	ok(g_ == w_, "%s: got %lld, want %lld", name, g_, w_); \
} while (0)

#define ok_str(got, want, name) do { \
	const char *g_ = (got), *w_ = (want); \
	ok(g_ && w_ && strcmp(g_, w_) == 0, "%s: got \"%s\", want \"%s\"", \
	    name, g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
} while (0)

static int
t_done(const char *suite)
{
	printf("%s: %d passed, %d failed\n", suite, t_pass, t_fail);
	return t_fail ? 1 : 0;
}

#endif
