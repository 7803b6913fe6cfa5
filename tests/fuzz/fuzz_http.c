/* libFuzzer harness for src/http.c: http_parse_request,
 * http_parse_response and http_chunked_step, each on every input.
 *
 * Invariants checked besides memory safety:
 *  - a parse result is HTTP_BAD, HTTP_PARTIAL or a length within the
 *    buffer, and every view of an accepted head lies inside that head;
 *  - a head accepted with length r out of a longer buffer is accepted
 *    with the same r and the same derived framing from exactly r bytes,
 *    and r - 1 bytes are HTTP_PARTIAL;
 *  - any prefix of the input parses to HTTP_PARTIAL or to the same
 *    outcome as the whole input (http.c's stated contract);
 *  - a smaller max_header gives the same outcome or a 431/414 refusal,
 *    and the same length whenever the head fits in it;
 *  - the one-pass field path and the general one give the same result,
 *    error and field views for every request and response;
 *  - the chunked decoder yields the same data, the same end state and
 *    the same consumed length whether fed all at once, byte by byte, or
 *    in chunks of an input-chosen size. */
#include "fuzz.h"
#include "http.h"

#define MAXH 16384

static struct http_header f_a[HTTP_MAX_HEADERS], f_b[HTTP_MAX_HEADERS];
static struct http_header g_a[HTTP_MAX_HEADERS], g_b[HTTP_MAX_HEADERS];
static struct http_request rq_a = { .headers = f_a }, rq_b = { .headers = f_b };
static struct http_response rs_a = { .headers = g_a }, rs_b = { .headers = g_b };

static void
request_views(const struct http_request *q, const char *buf, size_t r)
{
	size_t i;

	CHECK(fuzz_inside(q->method.p, q->method.n, buf, r));
	CHECK(q->method.n > 0);
	CHECK(fuzz_inside(q->target.p, q->target.n, buf, r));
	CHECK(q->minor_version == 0 || q->minor_version == 1);
	CHECK(q->nheaders <= HTTP_MAX_HEADERS);
	for (i = 0; i < q->nheaders; i++) {
		const struct http_header *h = &q->headers[i];

		CHECK(h->name.n > 0);
		CHECK(fuzz_inside(h->name.p, h->name.n, buf, r));
		CHECK(fuzz_inside(h->value.p, h->value.n, buf, r));
		(void)http_is_hop_by_hop(h->name);
		(void)http_connection_lists(h->value, h->name);
	}
	CHECK(fuzz_inside(q->host.p, q->host.n, buf, r));
	CHECK(fuzz_inside(q->authorization.p, q->authorization.n, buf, r));
	CHECK(fuzz_inside(q->x_api_key.p, q->x_api_key.n, buf, r));
	CHECK(!(q->has_content_length && q->chunked));
	CHECK(q->keep_alive == 0 || q->keep_alive == 1);
}

static int
same_request(const struct http_request *a, const struct http_request *b)
{
	return a->method.n == b->method.n && a->target.n == b->target.n &&
	    a->minor_version == b->minor_version &&
	    a->nheaders == b->nheaders &&
	    a->has_content_length == b->has_content_length &&
	    a->content_length == b->content_length &&
	    a->chunked == b->chunked && a->keep_alive == b->keep_alive &&
	    a->expect_continue == b->expect_continue &&
	    a->host.n == b->host.n;
}

static int
request(const char *buf, size_t len, size_t maxh, struct http_request *q)
{
	int r = http_parse_request(buf, len, maxh, q);

	CHECK(r == HTTP_BAD || r == HTTP_PARTIAL ||
	    (r > 0 && (size_t)r <= len && (size_t)r <= maxh));
	if (r == HTTP_BAD) {
		CHECK(q->error_status == 400 || q->error_status == 414 ||
		    q->error_status == 431 || q->error_status == 501);
		CHECK(q->error_code != NULL && q->error_message != NULL);
	}
	if (r > 0) {
		request_views(q, buf, (size_t)r);
	}
	return r;
}

/* Outcome for buf[0..k) in a block of exactly k bytes. */
static int
request_prefix(const char *buf, size_t k, size_t maxh,
    struct http_request *q)
{
	char *p = fuzz_dup(buf, k);
	int r = request(p, k, maxh, q);

	free(p);
	return r;
}

/* The same n fields, view for view (the same bytes of one buffer). */
static int
same_fields(const struct http_header *a, const struct http_header *b,
    size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (a[i].name.p != b[i].name.p || a[i].name.n != b[i].name.n ||
		    a[i].value.p != b[i].value.p ||
		    a[i].value.n != b[i].value.n) {
			return 0;
		}
	}
	return 1;
}

/* The one-pass field path and the general one agree on everything:
 * result, error, and every field's views (same bytes of buf). */
static void
check_fast_fields(const char *buf, size_t len)
{
	int r, r2;

	http_fast_fields = 0;
	r2 = http_parse_request(buf, len, MAXH, &rq_b);
	http_fast_fields = 1;
	r = http_parse_request(buf, len, MAXH, &rq_a);
	CHECK(r == r2);
	if (r == HTTP_BAD) {
		CHECK(rq_a.error_message == rq_b.error_message);
	}
	if (r > 0) {
		CHECK(same_request(&rq_a, &rq_b));
		CHECK(same_fields(rq_a.headers, rq_b.headers, rq_a.nheaders));
	}
	http_fast_fields = 0;
	r2 = http_parse_response(buf, len, MAXH, &rs_b);
	http_fast_fields = 1;
	r = http_parse_response(buf, len, MAXH, &rs_a);
	CHECK(r == r2);
	if (r == HTTP_BAD) {
		CHECK(rs_a.error == rs_b.error);
	}
	if (r > 0) {
		CHECK(rs_a.status == rs_b.status && rs_a.nheaders == rs_b.nheaders &&
		    rs_a.content_length == rs_b.content_length &&
		    rs_a.chunked == rs_b.chunked &&
		    rs_a.keep_alive == rs_b.keep_alive);
		CHECK(same_fields(rs_a.headers, rs_b.headers, rs_a.nheaders));
	}
}

static void
check_requests(const char *buf, size_t len, const uint8_t *data)
{
	size_t ks[3], i, ms;
	int r, r2;

	check_fast_fields(buf, len);
	r = request(buf, len, MAXH, &rq_a);
	if (r > 0) {
		r2 = request_prefix(buf, (size_t)r, MAXH, &rq_b);
		CHECK(r2 == r);
		CHECK(same_request(&rq_a, &rq_b));
		r2 = request_prefix(buf, (size_t)r - 1, MAXH, &rq_b);
		CHECK(r2 == HTTP_PARTIAL);
	}
	ks[0] = len / 2;
	ks[1] = len ? len - 1 : 0;
	ks[2] = len ? (size_t)data[0] * 16 % len : 0;
	for (i = 0; i < 3; i++) {
		r2 = request_prefix(buf, ks[i], MAXH, &rq_b);
		CHECK(r2 == HTTP_PARTIAL || r2 == r);
		if (r2 == HTTP_BAD) {
			CHECK(rq_b.error_status == rq_a.error_status);
		}
	}
	/* A tighter head limit: same outcome, or refused as too large. */
	ms = len / 2 + 1;
	r2 = request(buf, len, ms, &rq_b);
	if (r > 0 && (size_t)r <= ms) {
		CHECK(r2 == r);
	} else if (r2 != r || (r == HTTP_BAD &&
	    rq_b.error_status != rq_a.error_status)) {
		CHECK(r2 == HTTP_BAD);
		CHECK(rq_b.error_status == 431 || rq_b.error_status == 414);
	}
}

static void
response_views(const struct http_response *s, const char *buf, size_t r)
{
	size_t i;

	CHECK(s->status >= 100 && s->status <= 999);
	CHECK(s->minor_version == 0 || s->minor_version == 1);
	CHECK(fuzz_inside(s->reason.p, s->reason.n, buf, r));
	CHECK(s->nheaders <= HTTP_MAX_HEADERS);
	for (i = 0; i < s->nheaders; i++) {
		CHECK(s->headers[i].name.n > 0);
		CHECK(fuzz_inside(s->headers[i].name.p, s->headers[i].name.n,
		    buf, r));
		CHECK(fuzz_inside(s->headers[i].value.p,
		    s->headers[i].value.n, buf, r));
	}
	(void)http_response_has_no_body(s->status,
	    (struct view){ "HEAD", 4 });
}

static int
response(const char *buf, size_t len, size_t maxh, struct http_response *s)
{
	int r = http_parse_response(buf, len, maxh, s);

	CHECK(r == HTTP_BAD || r == HTTP_PARTIAL ||
	    (r > 0 && (size_t)r <= len && (size_t)r <= maxh));
	if (r == HTTP_BAD) {
		CHECK(s->error != NULL && s->error[0] != '\0');
	}
	if (r > 0) {
		response_views(s, buf, (size_t)r);
	}
	return r;
}

static int
response_prefix(const char *buf, size_t k, size_t maxh,
    struct http_response *s)
{
	char *p = fuzz_dup(buf, k);
	int r = response(p, k, maxh, s);

	free(p);
	return r;
}

static void
check_responses(const char *buf, size_t len)
{
	int r, r2;

	r = response(buf, len, MAXH, &rs_a);
	if (r > 0) {
		r2 = response_prefix(buf, (size_t)r, MAXH, &rs_b);
		CHECK(r2 == r);
		CHECK(rs_b.status == rs_a.status &&
		    rs_b.nheaders == rs_a.nheaders &&
		    rs_b.has_content_length == rs_a.has_content_length &&
		    rs_b.content_length == rs_a.content_length &&
		    rs_b.chunked == rs_a.chunked &&
		    rs_b.keep_alive == rs_a.keep_alive);
		r2 = response_prefix(buf, (size_t)r - 1, MAXH, &rs_b);
		CHECK(r2 == HTTP_PARTIAL);
	}
	r2 = response_prefix(buf, len / 2, MAXH, &rs_b);
	CHECK(r2 == HTTP_PARTIAL || r2 == r);
	if (r2 == HTTP_BAD) {
		CHECK(strcmp(rs_b.error, rs_a.error) == 0);
	}
}

enum { CH_MORE, CH_DONE, CH_BAD };

struct decoded {
	int end;		/* CH_MORE (input ran out), CH_DONE, CH_BAD */
	size_t consumed;	/* bytes taken before the end */
	char *data;		/* owned, the data bytes in order */
	size_t ndata;
};

/* Feed in[0..n) to a fresh decoder, at most step bytes (0: all) newly
 * visible per call; each call sees an exact-size copy of its window. */
static void
decode(const char *in, size_t n, size_t step, struct decoded *out)
{
	struct http_chunked d;
	size_t pos = 0, end = 0, off, dlen;
	long r;
	char *w;

	http_chunked_init(&d);
	out->end = CH_MORE;
	out->data = malloc(n + 1);
	out->ndata = 0;
	CHECK(out->data != NULL);
	while (pos < n) {
		if (end == pos) {
			end = step == 0 || n - pos < step ? n : pos + step;
		}
		w = fuzz_dup(in + pos, end - pos);
		r = http_chunked_step(&d, w, end - pos, &off, &dlen);
		if (r >= 0 && dlen > 0) {
			CHECK(off + dlen <= (size_t)r);
			memcpy(out->data + out->ndata, w + off, dlen);
			out->ndata += dlen;
		}
		free(w);
		if (r == HTTP_BAD) {
			out->end = CH_BAD;
			break;
		}
		CHECK(r >= 0 && (size_t)r <= end - pos);
		pos += (size_t)r;
		if (d.done) {
			out->end = CH_DONE;
			break;
		}
		/* 0 with bytes left means done, and done was handled. */
		CHECK(r > 0);
	}
	out->consumed = pos;
	CHECK(out->ndata <= pos || out->end == CH_BAD);
}

static void
check_chunked(const char *buf, size_t len, const uint8_t *data)
{
	struct decoded a, b, c;
	size_t step = len ? 2 + data[len - 1] % 13 : 1;

	decode(buf, len, 0, &a);
	decode(buf, len, 1, &b);
	decode(buf, len, step, &c);
	CHECK(a.end == b.end && a.end == c.end);
	CHECK(a.ndata == b.ndata && a.ndata == c.ndata);
	CHECK(memcmp(a.data, b.data, a.ndata) == 0);
	CHECK(memcmp(a.data, c.data, a.ndata) == 0);
	if (a.end != CH_BAD) {
		CHECK(a.consumed == b.consumed && a.consumed == c.consumed);
	}
	free(a.data);
	free(b.data);
	free(c.data);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = fuzz_dup(data, size);

	check_requests(buf, size, data);
	check_responses(buf, size);
	check_chunked(buf, size, data);
	free(buf);
	return 0;
}
