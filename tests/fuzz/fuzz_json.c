/* libFuzzer harness for src/json.c: json_scan_request, json_top_string,
 * json_unescape and json_escape on every input.
 *
 * Invariants checked besides memory safety:
 *  - json_scan_request and json_top_string(..., "model") agree on the
 *    verdict and, when a model is found, on its view;
 *  - every offset json_scan_request reports lies inside the body and
 *    points at what it names (quotes, the closing brace);
 *  - blanks around the body change nothing but the offsets;
 *  - json_unescape never needs more room than its input, returns -1 for
 *    a buffer one byte short, and undoes json_escape exactly; the output
 *    of json_escape is accepted as a string by the validator. */
#include "fuzz.h"
#include "json.h"

static void
check_request_offsets(const char *b, size_t n, const struct json_request *j,
    int r)
{
	if (r == JSON_OK) {
		CHECK(j->model_len >= 2 && j->model_off + j->model_len <= n);
		CHECK(b[j->model_off] == '"');
		CHECK(b[j->model_off + j->model_len - 1] == '"');
		CHECK(j->model.p == b + j->model_off + 1);
		CHECK(j->model.n == j->model_len - 2);
	}
	if (r == JSON_OK || r == JSON_NO_MODEL) {
		CHECK(j->object_end < n && b[j->object_end] == '}');
		if (j->has_stream_options) {
			CHECK(j->stream_options_len > 0);
			CHECK(j->stream_options_off + j->stream_options_len <=
			    j->object_end);
		}
		CHECK(!j->include_usage || j->has_stream_options);
	}
}

static void
check_scan(const char *b, size_t n)
{
	static const char pre[] = " \n\t ", post[] = "\r\n ";
	struct json_request j, w;
	struct view v;
	size_t np = sizeof pre - 1, nq = sizeof post - 1;
	char *wrapped;
	int r, r2, r3;

	r = json_scan_request(b, n, &j);
	CHECK(r == JSON_OK || r == JSON_INVALID || r == JSON_NOT_OBJECT ||
	    r == JSON_NO_MODEL || r == JSON_NOMEM);
	check_request_offsets(b, n, &j, r);

	r2 = json_top_string(b, n, "model", &v);
	CHECK(r2 == r);
	if (r == JSON_OK) {
		CHECK(v.p == j.model.p && v.n == j.model.n);
	}

	wrapped = malloc(np + n + nq);
	CHECK(wrapped != NULL);
	memcpy(wrapped, pre, np);
	memcpy(wrapped + np, b, n);
	memcpy(wrapped + np + n, post, nq);
	r3 = json_scan_request(wrapped, np + n + nq, &w);
	CHECK(r3 == r);
	check_request_offsets(wrapped, np + n + nq, &w, r3);
	if (r == JSON_OK) {
		CHECK(w.model_off == j.model_off + np);
		CHECK(w.model.n == j.model.n);
	}
	if (r == JSON_OK || r == JSON_NO_MODEL) {
		CHECK(w.object_end == j.object_end + np);
		CHECK(w.stream == j.stream && w.include_usage == j.include_usage);
		CHECK(w.has_max_tokens == j.has_max_tokens &&
		    w.max_tokens == j.max_tokens);
	}
	free(wrapped);
}

/* Unescape raw with a buffer of exactly cap bytes. */
static long
unescape_cap(struct view raw, size_t cap, char **out)
{
	*out = malloc(cap ? cap : 1);
	CHECK(*out != NULL);
	return json_unescape(raw, *out, cap);
}

static void
check_unescape(const char *b, size_t n)
{
	struct view raw = { b, n };
	char *o1, *o2, *o3, *e, *o4, *doc;
	long u1, u2, u3, el, u4;
	struct json_request j;
	size_t ecap = 6 * n + 1;

	u1 = unescape_cap(raw, n + 1, &o1);
	u2 = unescape_cap(raw, 4 * n + 16, &o2);
	CHECK(u1 == u2);
	if (u1 >= 0) {
		CHECK((size_t)u1 <= n);
		CHECK(memcmp(o1, o2, (size_t)u1 + 1) == 0);
		CHECK(o1[u1] == '\0');
		u3 = unescape_cap(raw, (size_t)u1 + 1, &o3);
		CHECK(u3 == u1);
		free(o3);
		u3 = unescape_cap(raw, (size_t)u1, &o3);
		CHECK(u3 == -1);
		free(o3);
	}
	free(o1);
	free(o2);

	/* Escape the input as string contents, then read it back. */
	e = malloc(ecap);
	CHECK(e != NULL);
	el = json_escape(b, n, e, ecap);
	CHECK(el >= 0 && (size_t)el < ecap && e[el] == '\0');
	CHECK(json_escape(b, n, e, (size_t)el) == -1);
	CHECK(json_escape(b, n, e, (size_t)el + 1) == el);
	u4 = unescape_cap((struct view){ e, (size_t)el }, n + 1, &o4);
	CHECK(u4 == (long)n && memcmp(o4, b, n) == 0);
	free(o4);

	/* ... and as a model name inside a request body. */
	doc = malloc((size_t)el + 16);
	CHECK(doc != NULL);
	memcpy(doc, "{\"model\":\"", 10);
	memcpy(doc + 10, e, (size_t)el);
	memcpy(doc + 10 + el, "\"}", 2);
	CHECK(json_scan_request(doc, (size_t)el + 12, &j) == JSON_OK);
	CHECK(j.model.n == (size_t)el);
	u4 = unescape_cap(j.model, n + 1, &o4);
	CHECK(u4 == (long)n && memcmp(o4, b, n) == 0);
	free(o4);
	free(doc);
	free(e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *b = fuzz_dup(data, size);

	check_scan(b, size);
	check_unescape(b, size);
	free(b);
	return 0;
}
