/* libFuzzer harness: path_check (src/path.c). Whatever it accepts must
 * stay below its base however a front end reads it: percent-decoded
 * once or twice, with backslashes as slashes, it has no empty, "." or
 * ".." segment, and no '#'. The input is split at its first '?' into
 * path and query. */
#include "fuzz.h"
#include "path.h"
#include "util.h"

/* Percent-decode p[0..n) into out (n bytes of room); returns the length. */
static size_t
decode(const char *p, size_t n, char *out)
{
	size_t i, k = 0;

	for (i = 0; i < n; i++) {
		int hi, lo;

		if (p[i] == '%' && i + 2 < n &&
		    (hi = util_hex_digit(p[i + 1])) >= 0 &&
		    (lo = util_hex_digit(p[i + 2])) >= 0) {
			out[k++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[k++] = p[i] == '\\' ? '/' : p[i];
		}
	}
	return k;
}

static void
no_climb(const char *p, size_t n)
{
	size_t i, seg = 1;

	CHECK(n > 0 && p[0] == '/');
	if (n == 1) {
		return;
	}
	for (i = 1; i <= n; i++) {
		if (i == n || p[i] == '/') {
			size_t len = i - seg;

			CHECK(len > 0);
			CHECK(!(len == 1 && p[seg] == '.'));
			CHECK(!(len == 2 && p[seg] == '.' && p[seg + 1] == '.'));
			seg = i + 1;
		} else {
			CHECK(p[i] != '#');
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *b = fuzz_dup(data, size), *once, *twice;
	const char *q = memchr(b, '?', size);
	struct view path = { b, q ? (size_t)(q - b) : size };
	struct view query = { q ? q : b + size, q ? size - path.n : 0 };
	size_t n1, n2;

	if (path_check(path, query) == NULL) {
		once = malloc(path.n + 1);
		twice = malloc(path.n + 1);
		CHECK(once != NULL && twice != NULL);
		no_climb(path.p, path.n);
		n1 = decode(path.p, path.n, once);
		no_climb(once, n1);
		n2 = decode(once, n1, twice);
		no_climb(twice, n2);
		CHECK(memchr(query.p, '#', query.n) == NULL);
		free(once);
		free(twice);
	}
	free(b);
	return 0;
}
