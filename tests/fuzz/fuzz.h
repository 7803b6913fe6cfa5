#ifndef RELAY_FUZZ_H
#define RELAY_FUZZ_H
/* Shared by the libFuzzer harnesses in tests/fuzz/ (built and run by
 * tests/sanitize.sh with -fsanitize=fuzzer,address,undefined).
 *
 * CHECK() states an invariant of the code under test: a failure prints
 * the condition and aborts, which libFuzzer reports as a crash and saves
 * the input as a reproducer. Inputs are copied into exact-size heap
 * blocks (fuzz_dup) so that ASan catches a read one byte past the length
 * the parser was given, not just past the fuzzer's own buffer. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(cond) do { \
	if (!(cond)) { \
		fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
		    __LINE__, #cond); \
		abort(); \
	} \
} while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* An exact-size malloc'd copy of p[0..n) (a 1-byte block when n is 0, so
 * that every result is a distinct pointer). */
static inline char *
fuzz_dup(const void *p, size_t n)
{
	char *b = malloc(n ? n : 1);

	if (b == NULL) {
		abort();
	}
	if (n) {
		memcpy(b, p, n);
	}
	return b;
}

/* 1 when the view p[0..n) lies inside buf[0..len) (an empty view may also
 * point at a static ""). */
static inline int
fuzz_inside(const char *p, size_t n, const char *buf, size_t len)
{
	if (n == 0) {
		return 1;
	}
	return p >= buf && p <= buf + len && n <= (size_t)(buf + len - p);
}

#endif
