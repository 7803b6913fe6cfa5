/* libFuzzer harness: differential test of the streaming usage scanner
 * (src/usage.c) against a tree-building reading of the same contract
 * (tests/unit/usage_ref.c). The first input byte picks how the rest is
 * cut into pieces, so every split of a document is tried; the input is
 * also wrapped as the usage object of each documented shape, so counts
 * reach the paths that read them. Everything usage_scan_end() reports
 * must equal the reference. */
#include "fuzz.h"
#include "usage.h"

#include "../unit/usage_ref.c"

static void
same(const struct usage_doc *a, const struct usage_doc *b)
{
	CHECK(a->valid == b->valid);
	CHECK(a->found == b->found);
	CHECK(a->final == b->final);
	CHECK(a->invalid == b->invalid);
	CHECK(a->usage_only == b->usage_only);
	CHECK(a->content_bytes == b->content_bytes);
	CHECK(strcmp(a->type, b->type) == 0);
	CHECK(strcmp(a->id, b->id) == 0);
	CHECK(strcmp(a->status, b->status) == 0);
	if (a->found && !a->invalid) {
		CHECK(a->usage.in == b->usage.in);
		CHECK(a->usage.cached == b->usage.cached);
		CHECK(a->usage.cache_write == b->usage.cache_write);
		CHECK(a->usage.out == b->usage.out);
	}
}

static void
one(const char *b, size_t n, unsigned step)
{
	struct usage_scan s;
	struct usage_doc got, want, whole;
	size_t off = 0;

	usage_scan_start(&s);
	while (off < n) {
		size_t k = step == 0 ? n - off : (off * 7 + step) % (step + 1) + 1;

		if (k > n - off) {
			k = n - off;
		}
		usage_scan_feed(&s, b + off, k);
		off += k;
	}
	usage_scan_end(&s, &got);
	ref_usage_scan(b, n, &want);
	same(&got, &want);
	usage_scan_all(b, n, &whole);
	CHECK(memcmp(&got, &whole, sizeof(got)) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const wraps[][2] = {
		{ "{\"usage\":", "}" },
		{ "{\"type\":\"message_start\",\"message\":{\"usage\":", "}}" },
		{ "{\"response\":{\"usage\":", "},\"type\":\"response.completed\"}" },
		{ "{\"choices\":[],\"usage\":", "}" },
	};
	unsigned step;
	char *b, *w;
	size_t i;

	if (size == 0) {
		return 0;
	}
	step = data[0] % 16;
	b = fuzz_dup(data + 1, size - 1);
	one(b, size - 1, step);
	for (i = 0; i < sizeof(wraps) / sizeof(wraps[0]); i++) {
		size_t a = strlen(wraps[i][0]), z = strlen(wraps[i][1]);

		w = malloc(a + size - 1 + z);
		CHECK(w != NULL);
		memcpy(w, wraps[i][0], a);
		memcpy(w + a, b, size - 1);
		memcpy(w + a + size - 1, wraps[i][1], z);
		one(w, a + size - 1 + z, step);
		free(w);
	}
	free(b);
	return 0;
}
