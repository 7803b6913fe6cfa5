/* libFuzzer harness: the incremental SSE reader (src/sse.c) against a
 * reading of the WHATWG rules over the whole input at once: split into
 * lines (CRLF, LF, CR), ':' comments, "name: value" with one optional
 * space, data lines joined with "\n", a blank line ending an event. The
 * first byte picks the piece size; every event's data, name and end
 * offset must equal the reference, and no event may end where the
 * reference has none. */
#include "fuzz.h"
#include "sse.h"

#define EV_MAX 64

struct evs {
	size_t n;
	size_t end[EV_MAX];
	char name[EV_MAX][48];
	size_t dlen[EV_MAX];
	uint64_t dsum[EV_MAX];	/* a checksum of the data bytes */
	size_t cur_len;
	uint64_t cur_sum;
};

static void
add(struct evs *e, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		e->cur_sum = e->cur_sum * 131 + (unsigned char)p[i] + 1;
	}
	e->cur_len += n;
}

static void
on_data(void *ctx, const char *p, size_t n)
{
	add(ctx, p, n);
}

static void
ended(struct evs *e, size_t at, const char *name)
{
	if (e->n < EV_MAX) {
		e->end[e->n] = at;
		snprintf(e->name[e->n], sizeof(e->name[0]), "%s", name);
		e->dlen[e->n] = e->cur_len;
		e->dsum[e->n] = e->cur_sum;
		e->n++;
	}
	e->cur_len = 0;
	e->cur_sum = 0;
}

/* The reference: lines first, then fields. */
static void
reference(const char *s, size_t n, struct evs *e)
{
	size_t i = 0, data_lines = 0;
	int has_lines = 0;
	char name[48] = "";

	while (i < n) {
		size_t start = i, end, colon, v;

		while (i < n && s[i] != '\r' && s[i] != '\n') {
			i++;
		}
		if (i == n) {
			return;		/* a line without its end */
		}
		end = i;
		if (s[i] == '\r' && i + 1 < n && s[i + 1] == '\n') {
			i++;
		}
		i++;
		if (end == start) {
			if (has_lines) {
				ended(e, i, name);
				name[0] = '\0';
				data_lines = 0;
				has_lines = 0;
			}
			continue;
		}
		has_lines = 1;
		if (s[start] == ':') {
			continue;
		}
		for (colon = start; colon < end && s[colon] != ':'; colon++) {
		}
		v = colon < end ? colon + 1 : end;
		if (v < end && s[v] == ' ') {
			v++;
		}
		if (colon - start == 4 && memcmp(s + start, "data", 4) == 0) {
			if (data_lines++ > 0) {
				add(e, "\n", 1);
			}
			add(e, s + v, end - v);
		} else if (colon - start == 5 &&
		    memcmp(s + start, "event", 5) == 0) {
			size_t k = end - v < 47 ? end - v : 47;

			memcpy(name, s + v, k);
			name[k] = '\0';
		}
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct evs got, want;
	struct sse r;
	size_t off = 0, i;
	unsigned step;
	char *s;

	if (size == 0) {
		return 0;
	}
	step = data[0] % 8;
	s = fuzz_dup(data + 1, size - 1);
	size--;
	memset(&got, 0, sizeof(got));
	memset(&want, 0, sizeof(want));
	sse_init(&r, on_data, &got);
	while (off < size) {
		size_t k = step == 0 ? size - off : (off % (step + 1)) + 1, at = 0;

		if (k > size - off) {
			k = size - off;
		}
		while (at < k) {
			int end;
			size_t t = sse_feed(&r, s + off + at, k - at, &end);

			CHECK(t > 0);
			at += t;
			if (end) {
				ended(&got, off + at, r.event);
			}
		}
		off += k;
	}
	reference(s, size, &want);
	/* A CRLF split between two pieces may end an event before its LF;
	 * the reference counts the LF in. */
	CHECK(got.n == want.n);
	for (i = 0; i < got.n; i++) {
		CHECK(got.end[i] == want.end[i] ||
		    (got.end[i] + 1 == want.end[i] && s[got.end[i]] == '\n'));
		CHECK(strcmp(got.name[i], want.name[i]) == 0);
		CHECK(got.dlen[i] == want.dlen[i]);
		CHECK(got.dsum[i] == want.dsum[i]);
	}
	free(s);
	return 0;
}
