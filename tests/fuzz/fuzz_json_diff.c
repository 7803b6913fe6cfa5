/* libFuzzer harness: differential test of json_scan_request and
 * json_top_string (src/json.c, one validating pass) against the
 * jsmn-based implementation they replaced, kept in tests/unit/json_ref.c.
 *
 * Every input is compared as it is and as the value of a member in the
 * middle of a request object ({"model":"m","x":INPUT,"max_tokens":1}),
 * so that fragments of values reach the member-reading paths too. Any
 * difference in a result code, in a field of struct json_request or in a
 * json_top_string view aborts with what differed (ref_diff). */
#include "fuzz.h"
#include "json.h"

#include "../unit/json_ref.c"

static void
same(const char *b, size_t n)
{
	const char *d = ref_diff(b, n);

	if (d != NULL) {
		fprintf(stderr, "json_diff: %s differs for %zu bytes: \"", d,
		    n);
		fwrite(b, 1, n, stderr);
		fprintf(stderr, "\"\n");
	}
	CHECK(d == NULL);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char head[] = "{\"model\":\"m\",\"x\":",
	    tail[] = ",\"max_tokens\":1}";
	size_t nh = sizeof head - 1, nt = sizeof tail - 1;
	char *b = fuzz_dup(data, size), *w;

	same(b, size);
	free(b);
	w = malloc(nh + size + nt);
	CHECK(w != NULL);
	memcpy(w, head, nh);
	memcpy(w + nh, data, size);
	memcpy(w + nh + size, tail, nt);
	same(w, nh + size + nt);
	free(w);
	return 0;
}
