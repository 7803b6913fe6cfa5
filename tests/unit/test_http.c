/*
 * test_http.c: the request and response head parsers, the field helpers
 * and the chunked decoder.
 *
 * Every input is fed three ways: whole, split at every byte position
 * (the first part alone must be PARTIAL, or already the final answer,
 * then the whole gives the same answer), and one byte at a time (the
 * first answer that is not PARTIAL comes exactly when the head is
 * complete, and equals the whole answer). Each piece handed to the code
 * under test ends right before a PROT_NONE page, so a read past the end
 * crashes (picohttpparser's test.c). Results are compared as summary
 * strings, which makes a mismatch print both sides.
 */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "t.h"
#include "http.h"

#define AREA_MIN (96 * 1024)
#define MAXH 16384		/* SPEC §2 default max_header */

#include "guard_t.h"

static struct view
cv(const char *s)
{
	struct view v;

	v.p = s;
	v.n = strlen(s);
	return v;
}

/* ---- summaries ---- */

#define SUM 256
#define FULL (40 * 1024)

static void
req_summary(int r, const struct http_request *q, char *out, size_t cap,
    int full)
{
	size_t i, k;
	char cl[32];

	if (r == HTTP_PARTIAL) {
		snprintf(out, cap, "PARTIAL");
		return;
	}
	if (r == HTTP_BAD) {
		snprintf(out, cap, "BAD %d %s %s", q->error_status,
		    q->error_code ? q->error_code : "(null)",
		    q->error_message ? q->error_message : "(null)");
		return;
	}
	if (r <= 0) {
		snprintf(out, cap, "RESULT %d", r);
		return;
	}
	if (q->has_content_length) {
		snprintf(cl, sizeof(cl), "%" PRIu64, q->content_length);
	} else {
		snprintf(cl, sizeof(cl), "-");
	}
	k = (size_t)snprintf(out, cap,
	    "%.*s %.*s 1.%d cl=%s ch=%d ka=%d ec=%d host=[%.*s] auth=[%.*s] "
	    "key=[%.*s] n=%zu",
	    (int)q->method.n, q->method.p, (int)q->target.n, q->target.p,
	    q->minor_version, cl, q->chunked, q->keep_alive,
	    q->expect_continue, (int)q->host.n, q->host.p,
	    (int)q->authorization.n, q->authorization.p,
	    (int)q->x_api_key.n, q->x_api_key.p, q->nheaders);
	for (i = 0; full && i < q->nheaders && k < cap; i++) {
		k += (size_t)snprintf(out + k, cap - k, "|%.*s=%.*s",
		    (int)q->headers[i].name.n, q->headers[i].name.p,
		    (int)q->headers[i].value.n, q->headers[i].value.p);
	}
}

static void
resp_summary(int r, const struct http_response *q, char *out, size_t cap,
    int full)
{
	size_t i, k;
	char cl[32];

	if (r == HTTP_PARTIAL) {
		snprintf(out, cap, "PARTIAL");
		return;
	}
	if (r == HTTP_BAD) {
		snprintf(out, cap, "BAD %s", q->error ? q->error : "(null)");
		return;
	}
	if (r <= 0) {
		snprintf(out, cap, "RESULT %d", r);
		return;
	}
	if (q->has_content_length) {
		snprintf(cl, sizeof(cl), "%" PRIu64, q->content_length);
	} else {
		snprintf(cl, sizeof(cl), "-");
	}
	k = (size_t)snprintf(out, cap, "%d 1.%d [%.*s] cl=%s ch=%d ka=%d n=%zu",
	    q->status, q->minor_version, (int)q->reason.n, q->reason.p, cl,
	    q->chunked, q->keep_alive, q->nheaders);
	for (i = 0; full && i < q->nheaders && k < cap; i++) {
		k += (size_t)snprintf(out + k, cap - k, "|%.*s=%.*s",
		    (int)q->headers[i].name.n, q->headers[i].name.p,
		    (int)q->headers[i].value.n, q->headers[i].value.p);
	}
}

/* 1 when v lies inside [b, b + n). */
static int
inside(struct view v, const char *b, size_t n)
{
	return v.n == 0 || (v.p >= b && v.p + v.n <= b + n);
}

static int
req_views_inside(const struct http_request *q, const char *b, size_t n)
{
	size_t i;
	int good = inside(q->method, b, n) && inside(q->target, b, n) &&
	    inside(q->host, b, n) && inside(q->authorization, b, n) &&
	    inside(q->x_api_key, b, n);

	for (i = 0; i < q->nheaders; i++) {
		good = good && inside(q->headers[i].name, b, n) &&
		    inside(q->headers[i].value, b, n);
	}
	return good;
}

static int
resp_views_inside(const struct http_response *q, const char *b, size_t n)
{
	size_t i;
	int good = inside(q->reason, b, n);

	for (i = 0; i < q->nheaders; i++) {
		good = good && inside(q->headers[i].name, b, n) &&
		    inside(q->headers[i].value, b, n);
	}
	return good;
}

/* ---- the three-way driver for both head parsers ---- */

static char input[AREA_MIN];
static char s_whole[FULL], s_got[FULL];
static struct http_header req_fields[HTTP_MAX_HEADERS];
static struct http_header resp_fields[HTTP_MAX_HEADERS];
static struct http_request req = { .headers = req_fields };
static struct http_response resp = { .headers = resp_fields };

static int parse_raw(int is_resp, const char *in, size_t n, size_t maxh,
    char *out, size_t cap, int full);
static char s_slow[FULL];
static unsigned long fast_diffs;

/* Parse in[0..n) before the guard page; summary into out. Every input is
 * parsed twice: with the one-pass field path and with the general one
 * only; the two must agree exactly (fast_diffs counts disagreements). */
static int
parse_one(int is_resp, const char *in, size_t n, size_t maxh, char *out,
    size_t cap, int full)
{
	int r, r2;

	http_fast_fields = 0;
	r2 = parse_raw(is_resp, in, n, maxh, s_slow, sizeof(s_slow), 1);
	http_fast_fields = 1;
	r = parse_raw(is_resp, in, n, maxh, out, cap, 1);
	if (r != r2 || strcmp(out, s_slow) != 0) {
		fast_diffs++;
		ok(0, "fast and general field paths differ on %.*s: %s | %s",
		    (int)(n > 60 ? 60 : n), in, out, s_slow);
	}
	if (!full) {
		r = parse_raw(is_resp, in, n, maxh, out, cap, 0);
	}
	return r;
}

static int
parse_raw(int is_resp, const char *in, size_t n, size_t maxh, char *out,
    size_t cap, int full)
{
	const char *b = at_guard(in, n);
	int r;

	if (is_resp) {
		r = http_parse_response(b, n, maxh, &resp);
		resp_summary(r, &resp, out, cap, full);
		if (r > 0 && !resp_views_inside(&resp, b, (size_t)r)) {
			snprintf(out, cap, "views outside the head");
		}
	} else {
		r = http_parse_request(b, n, maxh, &req);
		req_summary(r, &req, out, cap, full);
		if (r > 0 && !req_views_inside(&req, b, (size_t)r)) {
			snprintf(out, cap, "views outside the head");
		}
	}
	return r;
}

/*
 * head then rest form the input; a good head must be answered with
 * strlen(head) bytes consumed whatever follows. want is the short summary
 * (no field list), or "BAD ...".
 */
static void
check_head(int is_resp, const char *name, const char *head, size_t hlen,
    const char *rest, size_t rlen, size_t maxh, const char *want)
{
	static char s_short[FULL];
	size_t len = hlen + rlen, k, bad_at = 0;
	int r, r0, good = strncmp(want, "BAD", 3) != 0;

	if (len > sizeof(input)) {
		ok(0, "%s: input too long", name);
		return;
	}
	memcpy(input, head, hlen);
	memcpy(input + hlen, rest, rlen);

	/* Whole. */
	r0 = parse_one(is_resp, input, len, maxh, s_short, sizeof(s_short), 0);
	ok_str(s_short, want, name);
	if (good) {
		ok_int(r0, hlen, name);
	}
	parse_one(is_resp, input, len, maxh, s_whole, sizeof(s_whole), 1);

	/* Split at every position: first part, then the whole. */
	for (k = 0; k < len && !bad_at; k++) {
		r = parse_one(is_resp, input, k, maxh, s_got, sizeof(s_got),
		    1);
		if (r == HTTP_PARTIAL ? good && k >= hlen :
		    strcmp(s_got, s_whole) != 0 || (good && k < hlen)) {
			bad_at = k + 1;
			break;
		}
		parse_one(is_resp, input, len, maxh, s_got, sizeof(s_got), 1);
		if (strcmp(s_got, s_whole) != 0) {
			bad_at = k + 1;
		}
	}
	ok(!bad_at, "%s: split at %zu: got \"%.200s\"", name,
	    bad_at ? bad_at - 1 : 0, s_got);

	/* One byte at a time. */
	for (k = 1; k <= len; k++) {
		r = parse_one(is_resp, input, k, maxh, s_got, sizeof(s_got),
		    1);
		if (r != HTTP_PARTIAL) {
			break;
		}
	}
	ok(strcmp(s_got, s_whole) == 0 && (!good || k == hlen),
	    "%s: byte at a time: \"%.200s\" after %zu bytes", name, s_got, k);
}

#define REQ(name, head, rest, maxh, want) \
	check_head(0, name, head, sizeof(head) - 1, rest, sizeof(rest) - 1, \
	    maxh, want)
#define REQ_BAD(name, in, want) REQ(name, in, "", MAXH, want)
#define RESP(name, head, rest, maxh, want) \
	check_head(1, name, head, sizeof(head) - 1, rest, sizeof(rest) - 1, \
	    maxh, want)
#define RESP_BAD(name, in, want) RESP(name, in, "", MAXH, want)

#define E400(msg) "BAD 400 bad_request " msg

/* ---- requests ---- */

static void
test_requests_good(void)
{
	REQ("simple GET", "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n", "",
	    MAXH, "GET / 1.1 cl=- ch=0 ka=1 ec=0 host=[example.com] auth=[] "
	    "key=[] n=1");
	REQ("POST with body and credentials",
	    "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: relay.local:8080\r\n"
	    "Authorization: Bearer sk-abc\r\n"
	    "x-api-key: \t k1 \t\r\n"
	    "Content-Length: 11\r\n"
	    "Expect: 100-Continue\r\n"
	    "Content-Type: application/json\r\n"
	    "\r\n", "{\"model\":1}", MAXH,
	    "POST /v1/chat/completions 1.1 cl=11 ch=0 ka=1 ec=1 "
	    "host=[relay.local:8080] auth=[Bearer sk-abc] key=[k1] n=6");
	REQ("chunked POST",
	    "POST /v1/x HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: \tChunked \r\n\r\n",
	    "5\r\nhello\r\n0\r\n\r\n", MAXH,
	    "POST /v1/x 1.1 cl=- ch=1 ka=1 ec=0 host=[h] auth=[] key=[] n=2");
	REQ("HTTP/1.0 keep-alive",
	    "GET /a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", "", MAXH,
	    "GET /a 1.0 cl=- ch=0 ka=1 ec=0 host=[] auth=[] key=[] n=1");
	REQ("HTTP/1.0 default close", "GET /a HTTP/1.0\r\n\r\n", "", MAXH,
	    "GET /a 1.0 cl=- ch=0 ka=0 ec=0 host=[] auth=[] key=[] n=0");
	REQ("HTTP/1.0 ignores Expect",
	    "POST /a HTTP/1.0\r\nExpect: 100-continue\r\n"
	    "Content-Length: 0\r\n\r\n", "", MAXH,
	    "POST /a 1.0 cl=0 ch=0 ka=0 ec=0 host=[] auth=[] key=[] n=2");
	REQ("Connection list with close",
	    "GET / HTTP/1.1\r\nHost: h\r\nConnection: foo ,\tCLOSE\r\n\r\n",
	    "", MAXH,
	    "GET / 1.1 cl=- ch=0 ka=0 ec=0 host=[h] auth=[] key=[] n=2");
	REQ("Connection in two fields",
	    "GET / HTTP/1.1\r\nHost: h\r\nConnection: te\r\n"
	    "Connection: close\r\n\r\n", "", MAXH,
	    "GET / 1.1 cl=- ch=0 ka=0 ec=0 host=[h] auth=[] key=[] n=3");
	REQ("pipelined",
	    "GET /1 HTTP/1.1\r\nHost: h\r\n\r\n",
	    "GET /2 HTTP/1.1\r\nHost: h\r\n\r\n", MAXH,
	    "GET /1 1.1 cl=- ch=0 ka=1 ec=0 host=[h] auth=[] key=[] n=1");
	REQ("leading empty lines",
	    "\r\n\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", "", MAXH,
	    "GET / 1.1 cl=- ch=0 ka=1 ec=0 host=[h] auth=[] key=[] n=1");
	REQ("bare LF line ends", "GET / HTTP/1.1\nHost: h\n\n", "x", MAXH,
	    "GET / 1.1 cl=- ch=0 ka=1 ec=0 host=[h] auth=[] key=[] n=1");
	REQ("mixed line ends", "GET / HTTP/1.1\r\nHost: h\n\r\n", "", MAXH,
	    "GET / 1.1 cl=- ch=0 ka=1 ec=0 host=[h] auth=[] key=[] n=1");
	REQ("empty value and obs-text",
	    "GET / HTTP/1.1\r\nX-Empty:\r\nX-Blank: \t \r\nHost:h\r\n"
	    "X-Text: caf\xc3\xa9 \"q\"\r\n\r\n", "", MAXH,
	    "GET / 1.1 cl=- ch=0 ka=1 ec=0 host=[h] auth=[] key=[] n=4");
	REQ("identical Content-Length repeated",
	    "PUT /p HTTP/1.1\r\nhost: h\r\ncontent-length: 5\r\n"
	    "CONTENT-LENGTH: 5\r\n\r\n", "hello", MAXH,
	    "PUT /p 1.1 cl=5 ch=0 ka=1 ec=0 host=[h] auth=[] key=[] n=3");
	REQ("largest Content-Length",
	    "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 18446744073709551615\r\n\r\n", "", MAXH,
	    "POST / 1.1 cl=18446744073709551615 ch=0 ka=1 ec=0 host=[h] "
	    "auth=[] key=[] n=2");
	REQ("leading zeros in Content-Length",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 007\r\n\r\n", "",
	    MAXH, "POST / 1.1 cl=7 ch=0 ka=1 ec=0 host=[h] auth=[] key=[] "
	    "n=2");
	REQ("asterisk form", "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n", "", MAXH,
	    "OPTIONS * 1.1 cl=- ch=0 ka=1 ec=0 host=[h] auth=[] key=[] n=1");
	REQ("absolute form and token method",
	    "M-SEARCH http://h/x?y=%20 HTTP/1.1\r\nHost: h\r\n\r\n", "", MAXH,
	    "M-SEARCH http://h/x?y=%20 1.1 cl=- ch=0 ka=1 ec=0 host=[h] "
	    "auth=[] key=[] n=1");
	REQ("empty Host value", "GET / HTTP/1.1\r\nHost:\r\n\r\n", "", MAXH,
	    "GET / 1.1 cl=- ch=0 ka=1 ec=0 host=[] auth=[] key=[] n=1");
	REQ("32-byte method",
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345 / HTTP/1.1\r\nHost: h\r\n\r\n",
	    "", MAXH, "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345 / 1.1 cl=- ch=0 ka=1 "
	    "ec=0 host=[h] auth=[] key=[] n=1");
}

static void
test_requests_bad(void)
{
	REQ_BAD("double SP", "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("trailing SP", "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("HTAB separator", "GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("HTTP/0.9", "GET /\r\n\r\n", E400("malformed request line"));
	REQ_BAD("no target", "GET HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("empty target", "GET  HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("lower-case version", "GET / http/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("HTTP/1.2", "GET / HTTP/1.2\r\nHost: h\r\n\r\n",
	    E400("unsupported HTTP version"));
	REQ_BAD("HTTP/2.0", "GET / HTTP/2.0\r\nHost: h\r\n\r\n",
	    E400("unsupported HTTP version"));
	REQ_BAD("HTTP/1.10", "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("method with (", "G(T / HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("33-byte method",
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456 / HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("CTL in target", "GET /a\x01z HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("DEL in target", "GET /a\x7fz HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("non-ASCII target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("leading white space", " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("malformed request line"));
	REQ_BAD("empty request line only", "\r\n\r\n \r\n",
	    E400("malformed request line"));

	REQ_BAD("obs-fold",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n",
	    E400("obs-fold header line"));
	REQ_BAD("obs-fold with HTAB",
	    "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\tb\r\n\r\n",
	    E400("obs-fold header line"));
	REQ_BAD("white space after request line",
	    "GET / HTTP/1.1\r\n Host: h\r\n\r\n",
	    E400("obs-fold header line"));
	REQ_BAD("SP before colon", "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
	    E400("white space before colon in header field"));
	REQ_BAD("HTAB before colon",
	    "GET / HTTP/1.1\r\nHost: h\r\nContent-Length\t: 5\r\n\r\n",
	    E400("white space before colon in header field"));
	REQ_BAD("bad name char", "GET / HTTP/1.1\r\nHo(st: h\r\n\r\n",
	    E400("malformed header field"));
	REQ_BAD("empty name", "GET / HTTP/1.1\r\nHost: h\r\n: v\r\n\r\n",
	    E400("malformed header field"));
	REQ_BAD("no colon", "GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n",
	    E400("malformed header field"));
	REQ_BAD("CTL in value",
	    "GET / HTTP/1.1\r\nHost: h\r\nX: a\x01z\r\n\r\n",
	    E400("invalid character in header field value"));
	REQ_BAD("DEL in value", "GET / HTTP/1.1\r\nHost: h\r\nX: a\x7f\r\n\r\n",
	    E400("invalid character in header field value"));
	REQ_BAD("NUL in value",
	    "GET / HTTP/1.1\r\nHost: h\r\nX: a\0b\r\n\r\n",
	    E400("NUL or bare CR in request head"));
	REQ_BAD("NUL in request line", "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("NUL or bare CR in request head"));
	REQ_BAD("bare CR in value",
	    "GET / HTTP/1.1\r\nHost: h\r\nX: a\rb\r\n\r\n",
	    E400("NUL or bare CR in request head"));
	REQ_BAD("CR CR LF", "GET / HTTP/1.1\r\nHost: h\r\r\n\r\n",
	    E400("NUL or bare CR in request head"));
	REQ_BAD("bare CR as line end", "GET / HTTP/1.1\rHost: h\r\n\r\n",
	    E400("NUL or bare CR in request head"));
	REQ_BAD("bare CR before request line",
	    "\rGET / HTTP/1.1\r\nHost: h\r\n\r\n",
	    E400("NUL or bare CR in request head"));
	REQ_BAD("CR CR at the end of head",
	    "GET / HTTP/1.1\r\nHost: h\r\n\r\r\n",
	    E400("NUL or bare CR in request head"));

	REQ_BAD("Content-Length with sign",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n",
	    E400("invalid Content-Length"));
	REQ_BAD("negative Content-Length",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
	    E400("invalid Content-Length"));
	REQ_BAD("Content-Length with inner blank",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n",
	    E400("invalid Content-Length"));
	REQ_BAD("Content-Length list",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n",
	    E400("invalid Content-Length"));
	REQ_BAD("empty Content-Length",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
	    E400("invalid Content-Length"));
	REQ_BAD("hex Content-Length",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x10\r\n\r\n",
	    E400("invalid Content-Length"));
	REQ_BAD("Content-Length overflow",
	    "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Content-Length: 18446744073709551616\r\n\r\n",
	    E400("invalid Content-Length"));
	REQ_BAD("conflicting Content-Length",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Content-Length: 6\r\n\r\n",
	    E400("conflicting Content-Length values"));
	REQ_BAD("Content-Length and chunked",
	    "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n",
	    E400("both Content-Length and Transfer-Encoding"));
	REQ_BAD("chunked and Content-Length",
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
	    "Content-Length: 5\r\n\r\n",
	    E400("both Content-Length and Transfer-Encoding"));
	REQ_BAD("Content-Length and gzip",
	    "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n"
	    "Content-Length: 5\r\n\r\n",
	    E400("both Content-Length and Transfer-Encoding"));
	REQ_BAD("Transfer-Encoding in 1.0",
	    "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
	    E400("Transfer-Encoding in HTTP/1.0 request"));
	REQ_BAD("gzip", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n",
	    "BAD 501 not_implemented unsupported transfer coding");
	REQ_BAD("gzip, chunked", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: gzip, chunked\r\n\r\n",
	    "BAD 501 not_implemented unsupported transfer coding");
	REQ_BAD("identity", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: identity\r\n\r\n",
	    "BAD 501 not_implemented unsupported transfer coding");
	REQ_BAD("chunked twice", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "BAD 501 not_implemented unsupported transfer coding");
	REQ_BAD("chunked;param", "POST / HTTP/1.1\r\nHost: h\r\n"
	    "Transfer-Encoding: chunked;q=1\r\n\r\n",
	    "BAD 501 not_implemented unsupported transfer coding");
	REQ_BAD("missing Host", "GET / HTTP/1.1\r\nX: y\r\n\r\n",
	    E400("missing Host header"));
	REQ_BAD("two Host fields",
	    "GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
	    E400("multiple Host headers"));
	REQ_BAD("two Authorization fields",
	    "GET / HTTP/1.1\r\nHost: a\r\nAuthorization: Bearer a\r\n"
	    "Authorization: Bearer b\r\n\r\n",
	    E400("duplicate credential header"));
	REQ_BAD("two x-api-key fields",
	    "GET / HTTP/1.1\r\nHost: a\r\nx-api-key: a\r\nX-Api-Key: a\r\n\r\n",
	    E400("duplicate credential header"));
}

/* Fill input-sized scratch with a head built by the caller. */
static char big[AREA_MIN];

static size_t
put(size_t at, const char *s)
{
	size_t n = strlen(s);

	memcpy(big + at, s, n);
	return at + n;
}

static size_t
fill(size_t at, char c, size_t n)
{
	memset(big + at, c, n);
	return at + n;
}

static char long_want[FULL];

static void
test_requests_limits(void)
{
	char want[SUM];
	size_t n, i, h;
	int r;

	/* A request line of exactly HTTP_MAX_REQUEST_LINE bytes passes. */
	n = put(0, "GET /");
	n = fill(n, 'a', HTTP_MAX_REQUEST_LINE - 14);
	n = put(n, " HTTP/1.1");
	ok_int(n, HTTP_MAX_REQUEST_LINE, "request line length");
	n = put(n, "\r\nHost: h\r\n\r\n");
	r = http_parse_request(at_guard(big, n), n, MAXH, &req);
	ok_int(r, n, "request line of 8192 bytes");
	ok_int(req.target.n, HTTP_MAX_REQUEST_LINE - 13, "long target length");
	snprintf(long_want, sizeof(long_want), "GET %.*s 1.1 cl=- ch=0 ka=1 "
	    "ec=0 host=[h] auth=[] key=[] n=1", HTTP_MAX_REQUEST_LINE - 13,
	    big + 4);
	check_head(0, "request line of 8192 bytes", big, n, "", 0, MAXH,
	    long_want);

	/* One byte more is 414, complete or not. */
	n = put(0, "GET /");
	n = fill(n, 'a', HTTP_MAX_REQUEST_LINE - 13);
	n = put(n, " HTTP/1.1\r\nHost: h\r\n\r\n");
	check_head(0, "request line of 8193 bytes", big, n, "", 0, MAXH,
	    "BAD 414 uri_too_long request line too long");
	n = put(0, "GET /");
	n = fill(n, 'a', 9000);
	check_head(0, "incomplete long request line", big, n, "", 0, MAXH,
	    "BAD 414 uri_too_long request line too long");
	ok_int(http_parse_request(at_guard(big, 8193), 8193, MAXH, &req),
	    HTTP_PARTIAL, "8193 bytes without LF may still end in CRLF");
	ok_int(http_parse_request(at_guard(big, 8194), 8194, MAXH, &req),
	    HTTP_BAD, "8194 bytes without LF");
	ok_int(req.error_status, 414, "8194 bytes without LF: status");
	/* An unending request line is 414 even though max_header is larger
	 * than what has arrived. */
	n = put(0, "GET /");
	n = fill(n, 'a', 8190);
	n = put(n, "\r");
	ok_int(http_parse_request(at_guard(big, n), n, MAXH, &req), HTTP_BAD,
	    "long line ending in CR");

	/* A head of exactly max_header passes; one byte less is 431. */
	n = put(0, "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ");
	n = fill(n, 'p', 200);
	n = put(n, "\r\n\r\n");
	snprintf(want, sizeof(want), "GET / 1.1 cl=- ch=0 ka=1 ec=0 host=[h] "
	    "auth=[] key=[] n=2");
	check_head(0, "head of exactly max_header", big, n, "next", 4, n,
	    want);
	check_head(0, "head of max_header + 1", big, n, "", 0, n - 1,
	    "BAD 431 headers_too_large request head too large");
	/* Incomplete: max_header bytes and still no end of head. */
	n = put(0, "GET / HTTP/1.1\r\nHost: h\r\n");
	for (i = 0; i < 20; i++) {
		n = put(n, "X-Filler: 0123456789\r\n");
	}
	check_head(0, "incomplete head over max_header", big, n, "", 0, 256,
	    "BAD 431 headers_too_large request head too large");
	/* Empty lines alone count towards the head. */
	n = fill(0, '\n', 300);
	check_head(0, "empty lines over max_header", big, n, "", 0, 256,
	    "BAD 431 headers_too_large request head too large");
	/* Request line longer than max_header: the head limit speaks. */
	n = put(0, "GET /");
	n = fill(n, 'a', 600);
	n = put(n, " HTTP/1.1\r\nHost: h\r\n\r\n");
	check_head(0, "request line over a small max_header", big, n, "", 0,
	    512, "BAD 431 headers_too_large request head too large");

	/* HTTP_MAX_HEADERS fields pass, one more is 431. */
	for (h = HTTP_MAX_HEADERS; h <= HTTP_MAX_HEADERS + 1; h++) {
		n = put(0, "GET / HTTP/1.1\r\nHost: h\r\n");
		for (i = 1; i < h; i++) {
			n += (size_t)snprintf(big + n, sizeof(big) - n,
			    "X-%zu: %zu\r\n", i, i);
		}
		n = put(n, "\r\n");
		if (h == HTTP_MAX_HEADERS) {
			snprintf(want, sizeof(want), "GET / 1.1 cl=- ch=0 ka=1 "
			    "ec=0 host=[h] auth=[] key=[] n=%d",
			    HTTP_MAX_HEADERS);
		} else {
			snprintf(want, sizeof(want),
			    "BAD 431 headers_too_large too many header fields");
		}
		check_head(0, h == HTTP_MAX_HEADERS ? "100 fields" :
		    "101 fields", big, n, "", 0, MAXH, want);
	}
	ok_str(req.error_code, "headers_too_large", "101 fields: code");
}

/* Views, reuse of the struct, and the summary of a long line. */
static void
test_request_views(void)
{
	static const char in[] = "POST /v1/messages HTTP/1.1\r\n"
	    "Host: api\r\nX-Api-Key: secret\r\n\r\n";
	const char *b = at_guard(in, sizeof(in) - 1);
	int r;

	r = http_parse_request(b, sizeof(in) - 1, MAXH, &req);
	ok_int(r, sizeof(in) - 1, "views: length");
	ok(req.method.p == b && req.method.n == 4, "views: method");
	ok(req.target.p == b + 5 && req.target.n == 12, "views: target");
	ok(req.headers[1].name.n == 9 &&
	    memcmp(req.headers[1].name.p, "X-Api-Key", 9) == 0,
	    "views: name as sent");
	ok(req.x_api_key.n == 6 && memcmp(req.x_api_key.p, "secret", 6) == 0,
	    "views: x-api-key");
	ok(req.authorization.p != NULL && req.authorization.n == 0,
	    "views: absent authorization is an empty view");
	ok(req.error_code == NULL && req.error_status == 0,
	    "views: no error on success");
	/* A failed parse after a good one leaves no stale success fields. */
	r = http_parse_request(at_guard("GET / HTTP/1.1\r\n\r\n", 18), 18,
	    MAXH, &req);
	ok_int(r, HTTP_BAD, "reuse: missing Host");
	b = at_guard(in, sizeof(in) - 1);
	r = http_parse_request(b, sizeof(in) - 1, MAXH, &req);
	ok(r > 0 && req.error_code == NULL && req.error_message == NULL,
	    "reuse: error cleared");
	ok_int(http_parse_request(b, 0, MAXH, &req), HTTP_PARTIAL,
	    "empty input");
}

/* ---- responses ---- */

static void
test_responses(void)
{
	RESP("200 with length", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Content-Type: application/json\r\n\r\n", "hello", MAXH,
	    "200 1.1 [OK] cl=5 ch=0 ka=1 n=2");
	RESP("chunked without reason",
	    "HTTP/1.1 200\r\nTransfer-Encoding: chunked\r\n\r\n",
	    "5\r\nhello\r\n0\r\n\r\n", MAXH, "200 1.1 [] cl=- ch=1 ka=1 n=1");
	RESP("empty reason", "HTTP/1.1 204 \r\n\r\n", "", MAXH,
	    "204 1.1 [] cl=- ch=0 ka=1 n=0");
	RESP("close-delimited", "HTTP/1.1 200 OK\r\nServer: x\r\n\r\n", "abc",
	    MAXH, "200 1.1 [OK] cl=- ch=0 ka=0 n=1");
	RESP("Connection: close",
	    "HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 2\r\n\r\n",
	    "ok", MAXH, "200 1.1 [OK] cl=2 ch=0 ka=0 n=2");
	RESP("1.0 default close",
	    "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\n",
	    "ok", MAXH, "200 1.0 [OK] cl=2 ch=0 ka=0 n=1");
	RESP("1.0 keep-alive", "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n"
	    "Connection: keep-alive\r\n\r\n", "ok", MAXH,
	    "200 1.0 [OK] cl=2 ch=0 ka=1 n=2");
	RESP("both lengths: chunked wins",
	    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", "", MAXH,
	    "200 1.1 [OK] cl=- ch=1 ka=0 n=2");
	RESP("gzip coding: close-delimited",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "", MAXH,
	    "200 1.1 [OK] cl=- ch=0 ka=0 n=1");
	RESP("gzip, chunked: close-delimited",
	    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "",
	    MAXH, "200 1.1 [OK] cl=- ch=0 ka=0 n=1");
	RESP("chunked in 1.0: not reused",
	    "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n"
	    "Connection: keep-alive\r\n\r\n", "", MAXH,
	    "200 1.0 [OK] cl=- ch=1 ka=0 n=2");
	RESP("304 without length", "HTTP/1.1 304 Not Modified\r\n\r\n", "",
	    MAXH, "304 1.1 [Not Modified] cl=- ch=0 ka=1 n=0");
	RESP("100 Continue then 200", "HTTP/1.1 100 Continue\r\n\r\n",
	    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", MAXH,
	    "100 1.1 [Continue] cl=- ch=0 ka=1 n=0");
	RESP("429 with Retry-After",
	    "HTTP/1.1 429 Too Many Requests\r\nRetry-After: 3\r\n"
	    "Content-Length: 2\r\n\r\n", "{}", MAXH,
	    "429 1.1 [Too Many Requests] cl=2 ch=0 ka=1 n=2");
	RESP("reason with HTAB and obs-text",
	    "HTTP/1.1 503 Indispon\xc3\xadvel\tagora\r\n"
	    "Content-Length: 0\r\n\r\n", "", MAXH,
	    "503 1.1 [Indispon\xc3\xadvel\tagora] cl=0 ch=0 ka=1 n=1");
	RESP("bare LF", "HTTP/1.1 200 OK\nContent-Length: 0\n\n", "", MAXH,
	    "200 1.1 [OK] cl=0 ch=0 ka=1 n=1");
	RESP("identical lengths",
	    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\ncontent-length: 3\r\n\r\n",
	    "abc", MAXH, "200 1.1 [OK] cl=3 ch=0 ka=1 n=2");
	RESP("status 999", "HTTP/1.1 999 Odd\r\nContent-Length: 0\r\n\r\n", "",
	    MAXH, "999 1.1 [Odd] cl=0 ch=0 ka=1 n=1");
	RESP("a typical provider head",
	    "HTTP/1.1 200 OK\r\n"
	    "Date: Tue, 05 Nov 2024 10:00:00 GMT\r\n"
	    "Content-Type: text/event-stream; charset=utf-8\r\n"
	    "Transfer-Encoding: chunked\r\n"
	    "Connection: keep-alive\r\n"
	    "openai-processing-ms: 112\r\n"
	    "x-request-id: req_0123456789abcdef\r\n"
	    "Strict-Transport-Security: max-age=31536000; includeSubDomains\r\n"
	    "\r\n", "1a\r\ndata: {\"id\":\"x\"}\n\n\r\n\r\n", MAXH,
	    "200 1.1 [OK] cl=- ch=1 ka=1 n=7");

	RESP_BAD("two-digit status", "HTTP/1.1 20 OK\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("four-digit status", "HTTP/1.1 2000 OK\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("status below 100", "HTTP/1.1 099 Low\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("double SP", "HTTP/1.1  200 OK\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("no SP before reason", "HTTP/1.1 200OK\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("not HTTP", "ICY 200 OK\r\n\r\n", "BAD malformed status line");
	RESP_BAD("HTTP/2", "HTTP/2 200 OK\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("HTTP/1.2", "HTTP/1.2 200 OK\r\n\r\n",
	    "BAD unsupported HTTP version in response");
	RESP_BAD("CTL in reason", "HTTP/1.1 200 O\x01K\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("empty status line", "\r\nHTTP/1.1 200 OK\r\n\r\n",
	    "BAD malformed status line");
	RESP_BAD("NUL", "HTTP/1.1 200 OK\r\nX: a\0\r\n\r\n",
	    "BAD NUL or bare CR in response head");
	RESP_BAD("bare CR", "HTTP/1.1 200 OK\rX: a\r\n\r\n",
	    "BAD NUL or bare CR in response head");
	RESP_BAD("obs-fold", "HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n",
	    "BAD obs-fold header line in response");
	RESP_BAD("SP before colon", "HTTP/1.1 200 OK\r\nX : a\r\n\r\n",
	    "BAD white space before colon in response header");
	RESP_BAD("bad name", "HTTP/1.1 200 OK\r\nX@Y: a\r\n\r\n",
	    "BAD malformed header field in response");
	RESP_BAD("CTL in value", "HTTP/1.1 200 OK\r\nX: \x1b[0m\r\n\r\n",
	    "BAD malformed header field in response");
	RESP_BAD("invalid length",
	    "HTTP/1.1 200 OK\r\nContent-Length: 12a\r\n\r\n",
	    "BAD invalid Content-Length in response");
	RESP_BAD("length list",
	    "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\n\r\n",
	    "BAD invalid Content-Length in response");
	RESP_BAD("conflicting lengths",
	    "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
	    "BAD conflicting Content-Length in response");
}

static void
test_response_limits(void)
{
	char want[SUM];
	size_t n, i, h;

	n = put(0, "HTTP/1.1 200 OK\r\n");
	for (i = 0; i < 20; i++) {
		n = put(n, "X-Filler: 0123456789\r\n");
	}
	check_head(1, "incomplete response over max_header", big, n, "", 0,
	    256, "BAD response head too large");
	n = put(n, "\r\n");
	check_head(1, "response of exactly max_header", big, n, "", 0, n,
	    "200 1.1 [OK] cl=- ch=0 ka=0 n=20");
	check_head(1, "response of max_header + 1", big, n, "", 0, n - 1,
	    "BAD response head too large");
	n = fill(0, 'H', 1000);
	check_head(1, "endless status line", big, n, "", 0, 512,
	    "BAD response head too large");
	for (h = HTTP_MAX_HEADERS; h <= HTTP_MAX_HEADERS + 1; h++) {
		n = put(0, "HTTP/1.1 200 OK\r\n");
		for (i = 0; i < h; i++) {
			n += (size_t)snprintf(big + n, sizeof(big) - n,
			    "X-%zu: %zu\r\n", i, i);
		}
		n = put(n, "\r\n");
		if (h == HTTP_MAX_HEADERS) {
			snprintf(want, sizeof(want), "200 1.1 [OK] cl=- "
			    "ch=0 ka=0 n=%d", HTTP_MAX_HEADERS);
		} else {
			snprintf(want, sizeof(want),
			    "BAD too many header fields in response");
		}
		check_head(1, h == HTTP_MAX_HEADERS ? "response, 100 fields" :
		    "response, 101 fields", big, n, "", 0, MAXH, want);
	}
}

/* ---- field helpers ---- */

/* Every byte in a field name and in the method: accepted exactly when
 * it is a tchar (RFC 9110 §5.6.2); NUL and CR are named as such. */
static void
test_tchar_bytes(void)
{
	static const char tchars[] = "!#$%&'*+-.^_`|~0123456789"
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	char in[64], why[80];
	int c, bad_field = 0, bad_method = 0, bad_nul = 0, r;

	for (c = 0; c < 256; c++) {
		int want = c != 0 && strchr(tchars, c) != NULL;
		size_t n;


		n = sizeof("GET / HTTP/1.1\r\nHost: h\r\nXcy: v\r\n\r\n") - 1;
		memcpy(in, "GET / HTTP/1.1\r\nHost: h\r\nXcy: v\r\n\r\n", n);
		in[26] = (char)c;
		r = http_parse_request(at_guard(in, n), n, MAXH, &req);
		/* "X:y: v" is the field X with the value "y: v". */
		if ((r > 0) != (want || c == ':')) {
			bad_field++;
			snprintf(why, sizeof(why), "field byte 0x%02x", c);
			ok(0, why);
		}
		if ((c == 0 || c == '\r') && (r != HTTP_BAD ||
		    strstr(req.error_message, "NUL") == NULL)) {
			bad_nul++;
		}
		n = sizeof("GcT / HTTP/1.1\r\nHost: h\r\n\r\n") - 1;
		memcpy(in, "GcT / HTTP/1.1\r\nHost: h\r\n\r\n", n);
		in[1] = (char)c;
		r = http_parse_request(at_guard(in, n), n, MAXH, &req);
		if ((r > 0) != want) {
			bad_method++;
			snprintf(why, sizeof(why), "method byte 0x%02x", c);
			ok(0, why);
		}
	}
	ok(bad_field == 0, "field names: every byte judged as tchar or not");
	/* Field values are checked eight bytes at a time: put each byte
	 * at every offset of a 21-byte value. */
	{
		static const char pre[] = "GET / HTTP/1.1\r\nHost: h\r\nX: ";
		int bad_value = 0, pos;

		for (c = 0; c < 256; c++) {
			int want = c >= 0x20 ? c != 0x7f : c == '\t';

			for (pos = 1; pos < 20; pos++) {
				size_t n = sizeof(pre) - 1;

				memcpy(in, pre, n);
				memset(in + n, 'v', 21);
				in[n + (size_t)pos] = (char)c;
				n += 21;
				memcpy(in + n, "\r\n\r\n", 4);
				n += 4;
				r = http_parse_request(at_guard(in, n), n, MAXH,
				    &req);
				if ((r > 0) != want) {
					bad_value++;
				}
			}
		}
		ok(bad_value == 0, "field values: every byte at every offset");
	}
	ok(bad_method == 0, "methods: every byte judged as tchar or not");
	ok(bad_nul == 0, "field names: NUL and CR are named as such");
}

/* The first Connection value is kept: it names the fields a proxy must
 * not forward. */
static void
test_connection_view(void)
{
	static const char rq[] = "GET / HTTP/1.1\r\nHost: h\r\n"
	    "Connection: keep-alive, X-A\r\nconnection: X-B\r\n\r\n";
	static const char rs[] = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n"
	    "CONNECTION:  close \r\n\r\n";
	static const char none[] = "GET / HTTP/1.1\r\nHost: h\r\n\r\n";
	static const char rs_none[] = "HTTP/1.1 200 OK\r\n"
	    "Content-Length: 0\r\n\r\n";
	struct view want = { "keep-alive, X-A", 15 };

	ok(http_parse_request(at_guard(rq, sizeof(rq) - 1), sizeof(rq) - 1,
	    MAXH, &req) > 0 && util_view_eq(req.connection, "keep-alive, X-A") &&
	    req.connection.n == want.n, "request: first Connection value");
	ok(http_parse_response(at_guard(rs, sizeof(rs) - 1), sizeof(rs) - 1,
	    MAXH, &resp) > 0 && util_view_eq(resp.connection, "close"),
	    "response: Connection value, trimmed");
	ok(http_parse_request(at_guard(none, sizeof(none) - 1),
	    sizeof(none) - 1, MAXH, &req) > 0 && req.connection.n == 0,
	    "request without Connection: empty");
	/* An upstream connection parses each response into the same
	 * struct: the last one's Connection must not stay behind. */
	ok(http_parse_response(at_guard(rs_none, sizeof(rs_none) - 1),
	    sizeof(rs_none) - 1, MAXH, &resp) > 0 && resp.connection.n == 0,
	    "response without Connection after one with it: empty");
}

static void
test_helpers(void)
{
	ok(http_response_has_no_body(100, cv("GET")), "no body: 100");
	ok(http_response_has_no_body(101, cv("GET")), "no body: 101");
	ok(http_response_has_no_body(204, cv("POST")), "no body: 204");
	ok(http_response_has_no_body(304, cv("GET")), "no body: 304");
	ok(http_response_has_no_body(200, cv("HEAD")), "no body: HEAD");
	ok(!http_response_has_no_body(200, cv("GET")), "body: 200 GET");
	ok(!http_response_has_no_body(205, cv("POST")), "body: 205");
	ok(!http_response_has_no_body(500, cv("POST")), "body: 500");
	ok(!http_response_has_no_body(200, cv("head")),
	    "body: methods are case-sensitive");

	ok(http_is_hop_by_hop(cv("Connection")), "hop: Connection");
	ok(http_is_hop_by_hop(cv("keep-alive")), "hop: Keep-Alive");
	ok(http_is_hop_by_hop(cv("TE")), "hop: TE");
	ok(http_is_hop_by_hop(cv("Trailer")), "hop: Trailer");
	ok(http_is_hop_by_hop(cv("TRANSFER-ENCODING")),
	    "hop: Transfer-Encoding");
	ok(http_is_hop_by_hop(cv("Upgrade")), "hop: Upgrade");
	ok(http_is_hop_by_hop(cv("Proxy-Authorization")),
	    "hop: Proxy-Authorization");
	ok(http_is_hop_by_hop(cv("proxy-connection")), "hop: Proxy-Connection");
	ok(!http_is_hop_by_hop(cv("Proxy")), "end: Proxy");
	ok(http_is_hop_by_hop(cv("Proxy-A")), "hop: Proxy-A (7 letters)");
	ok(http_is_hop_by_hop(cv("PROXY-ABCD")), "hop: PROXY-ABCD (10 letters)");
	ok(!http_is_hop_by_hop(cv("x-upgrade")), "end: x-upgrade");
	ok(!http_is_hop_by_hop(cv("tf")), "end: tf");
	ok(!http_is_hop_by_hop(cv("Trailers")), "end: Trailers");
	ok(!http_is_hop_by_hop(cv("T")), "end: T");
	ok(!http_is_hop_by_hop(cv("Content-Length")), "end: Content-Length");
	ok(!http_is_hop_by_hop(cv("Authorization")), "end: Authorization");
	ok(!http_is_hop_by_hop(cv("")), "end: empty name");

	ok(http_connection_lists(cv("close"), cv("close")), "lists: alone");
	ok(http_connection_lists(cv("Keep-Alive, Upgrade"), cv("upgrade")),
	    "lists: second, other case");
	ok(http_connection_lists(cv(" ,\t, x-foo \t,"), cv("X-Foo")),
	    "lists: OWS and empty elements");
	ok(!http_connection_lists(cv("closed"), cv("close")),
	    "lists: no prefix match");
	ok(!http_connection_lists(cv("keep-alive close"), cv("close")),
	    "lists: SP is not a separator");
	ok(!http_connection_lists(cv(""), cv("close")), "lists: empty value");
	ok(!http_connection_lists(cv(",,"), cv("")), "lists: empty name");
}

/* ---- chunked ---- */

static char dec_out[AREA_MIN];

/*
 * Feed in[0..n) in pieces: split == 0 means pieces of `piece` bytes,
 * otherwise two pieces split at `split`. Every piece is copied right
 * before the guard page. Returns the total consumed (stopping when done)
 * or HTTP_BAD; data goes to dec_out. *contract is cleared when the step
 * breaks its documented contract.
 */
static long
feed_chunked(const char *in, size_t n, size_t split, size_t piece,
    struct http_chunked *d, size_t *outlen, int *contract)
{
	size_t at = 0, len, off, dlen, left;
	const char *p = NULL;
	long r, total = 0;

	http_chunked_init(d);
	*outlen = 0;
	while (at < n && !d->done) {
		len = split ? (at == 0 ? split : n - at) : piece;
		if (len > n - at) {
			len = n - at;
		}
		p = at_guard(in + at, len);
		left = len;
		while (left > 0) {
			r = http_chunked_step(d, p, left, &off, &dlen);
			if (r == HTTP_BAD) {
				return HTTP_BAD;
			}
			if (r < 0 || (size_t)r > left) {
				*contract = 0;
				return HTTP_BAD;
			}
			if (dlen > 0) {
				if (off + dlen != (size_t)r) {
					*contract = 0;
				}
				memcpy(dec_out + *outlen, p + off, dlen);
				*outlen += dlen;
			}
			if (r == 0) {
				if (!d->done) {
					*contract = 0;
				}
				break;
			}
			p += r;
			left -= (size_t)r;
			total += r;
			if (d->done) {
				break;
			}
		}
		at += len;
	}
	return total;
}

/*
 * want_used < 0: HTTP_BAD expected. Otherwise the bytes consumed, the
 * data and whether the last chunk was seen.
 */
static void
check_chunked(const char *name, const char *in, size_t n, long want_used,
    const char *data, size_t dlen, int want_done)
{
	struct http_chunked d;
	size_t outlen, k;
	long r;
	int contract = 1, good = 1;
	size_t first_bad = 0;

	/* Whole, one byte at a time, and split at every position. */
	for (k = 0; k <= n + 1; k++) {
		if (k == 0) {
			r = feed_chunked(in, n, 0, n ? n : 1, &d, &outlen,
			    &contract);
		} else if (k == n + 1) {
			r = feed_chunked(in, n, 0, 1, &d, &outlen, &contract);
		} else {
			r = feed_chunked(in, n, k, 0, &d, &outlen, &contract);
		}
		if (want_used < 0) {
			good = r == HTTP_BAD && !d.done;
		} else {
			good = r == want_used && outlen == dlen &&
			    memcmp(dec_out, data, dlen) == 0 &&
			    d.done == want_done;
		}
		if (!good || !contract) {
			first_bad = k + 1;
			break;
		}
	}
	ok(!first_bad, "%s: %s (mode %zu): got %ld, %zu data bytes, done %d",
	    name, contract ? "wrong result" : "contract broken",
	    first_bad ? first_bad - 1 : 0, r, outlen, d.done);
}

#define CHUNK_OK(name, in, data, done) \
	check_chunked(name, in, sizeof(in) - 1, (long)(sizeof(in) - 1), \
	    data, sizeof(data) - 1, done)
#define CHUNK_USED(name, in, used, data) \
	check_chunked(name, in, sizeof(in) - 1, used, data, \
	    sizeof(data) - 1, 1)
#define CHUNK_BAD(name, in) \
	check_chunked(name, in, sizeof(in) - 1, -1, "", 0, 0)

static void
test_chunked(void)
{
	struct http_chunked d;
	size_t off = 9, dlen = 9, n, i;
	long r;

	CHUNK_OK("one chunk", "5\r\nhello\r\n0\r\n\r\n", "hello", 1);
	CHUNK_OK("hex sizes", "3\r\nabc\r\nA\r\n0123456789\r\n"
	    "1f\r\n0123456789abcdefghijklmnopqrstu\r\n0\r\n\r\n",
	    "abc01234567890123456789abcdefghijklmnopqrstu", 1);
	CHUNK_OK("upper-case hex", "0A\r\n0123456789\r\n0\r\n\r\n",
	    "0123456789", 1);
	CHUNK_OK("leading zeros", "0005\r\nhello\r\n000\r\n\r\n", "hello", 1);
	CHUNK_OK("extensions",
	    "4;name=value;x=\"q;s\"\r\nwxyz\r\n0;last\r\n\r\n", "wxyz", 1);
	CHUNK_OK("BWS before extension", "4 \t;a\r\nwxyz\r\n0\r\n\r\n",
	    "wxyz", 1);
	CHUNK_OK("trailers", "2\r\nok\r\n0\r\nX-Trailer: a\r\nY:b\r\n\r\n",
	    "ok", 1);
	CHUNK_OK("bare LF", "2\nok\n0\nX: y\n\n", "ok", 1);
	CHUNK_OK("binary data", "4\r\n\r\n\0\n\r\n0\r\n\r\n", "\r\n\0\n", 1);
	CHUNK_OK("empty body", "0\r\n\r\n", "", 1);
	CHUNK_OK("unfinished", "5\r\nhel", "hel", 0);
	CHUNK_OK("unfinished size line", "5;ext", "", 0);
	CHUNK_OK("size of 2^60", "1000000000000000\r\nabc", "abc", 0);
	CHUNK_USED("stops after the body",
	    "1\r\na\r\n0\r\n\r\nGET / HTTP/1.1\r\n", 11, "a");

	CHUNK_BAD("size over 2^60", "1000000000000001\r\n");
	CHUNK_BAD("size over 2^64", "100000000000000000\r\n");
	CHUNK_BAD("non-hex size", "g\r\n");
	CHUNK_BAD("non-hex after digits", "5g\r\nhello\r\n0\r\n\r\n");
	CHUNK_BAD("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n");
	CHUNK_BAD("negative size", "-1\r\n");
	CHUNK_BAD("empty size", "\r\nhello\r\n");
	CHUNK_BAD("extension without size", ";a\r\n");
	CHUNK_BAD("leading white space", " 5\r\nhello\r\n0\r\n\r\n");
	CHUNK_BAD("white space then CRLF", "5 \r\nhello\r\n0\r\n\r\n");
	CHUNK_BAD("CR without LF", "5\rhello\r\n0\r\n\r\n");
	CHUNK_BAD("data longer than size", "5\r\nhelloX\r\n0\r\n\r\n");
	CHUNK_BAD("CR then junk after data", "5\r\nhello\rX\n0\r\n\r\n");
	CHUNK_BAD("NUL in extension", "5;a\0b\r\nhello\r\n0\r\n\r\n");
	CHUNK_BAD("trailer with SP before colon", "0\r\nX : y\r\n\r\n");
	CHUNK_BAD("trailer obs-fold", "0\r\nX: y\r\n z\r\n\r\n");
	CHUNK_BAD("trailer without colon", "0\r\nXY\r\n\r\n");
	CHUNK_BAD("trailer CTL", "0\r\nX: \x01\r\n\r\n");
	CHUNK_BAD("final CR then junk", "0\r\n\rX");

	/* Size line limit: 4096 bytes pass, 4097 do not. */
	n = put(0, "1;");
	n = fill(n, 'e', 4094);
	n = put(n, "\r\nx\r\n0\r\n\r\n");
	check_chunked("size line of 4096 bytes", big, n, (long)n, "x", 1, 1);
	n = put(0, "1;");
	n = fill(n, 'e', 4095);
	n = put(n, "\r\nx\r\n0\r\n\r\n");
	check_chunked("size line of 4097 bytes", big, n, -1, "", 0, 0);
	n = fill(0, '0', 4097);
	n = put(n, "\r\n\r\n");
	check_chunked("4097 zeros", big, n, -1, "", 0, 0);

	/* Trailer limit: 16 KiB in all, counting CRLFs. */
	n = put(0, "0\r\n");
	for (i = 0; i < 16; i++) {
		n = put(n, "X: ");
		n = fill(n, 't', 1019);
		n = put(n, "\r\n");
	}
	n = put(n, "\r\n");
	ok_int(n - 3, 16 * 1024 + 2, "trailer test size");
	check_chunked("trailers over 16 KiB", big, n, -1, "", 0, 0);
	n = put(0, "0\r\n");
	for (i = 0; i < 16; i++) {
		n = put(n, "X: ");
		n = fill(n, 't', i == 0 ? 1017 : 1019);
		n = put(n, "\r\n");
	}
	n = put(n, "\r\n");
	check_chunked("trailers of 16 KiB", big, n, (long)n, "", 0, 1);

	/* BAD is sticky; done consumes nothing more. */
	http_chunked_init(&d);
	r = http_chunked_step(&d, "z", 1, &off, &dlen);
	ok_int(r, HTTP_BAD, "sticky: first");
	r = http_chunked_step(&d, "0\r\n\r\n", 5, &off, &dlen);
	ok_int(r, HTTP_BAD, "sticky: later");
	http_chunked_init(&d);
	r = http_chunked_step(&d, "0\r\n\r\nxyz", 8, &off, &dlen);
	ok(r == 5 && d.done && dlen == 0, "done: stops at the end");
	r = http_chunked_step(&d, "xyz", 3, &off, &dlen);
	ok(r == 0 && dlen == 0, "done: consumes nothing more");
	/* Framing and data come back in separate calls. */
	http_chunked_init(&d);
	r = http_chunked_step(&d, "3\r\nabc\r\n", 8, &off, &dlen);
	ok(r == 6 && off == 3 && dlen == 3 && d.remaining == 0,
	    "data stops the call");
	r = http_chunked_step(&d, "\r\n", 2, &off, &dlen);
	ok(r == 2 && dlen == 0 && !d.done, "framing only");
	r = http_chunked_step(&d, "", 0, &off, &dlen);
	ok(r == 0 && dlen == 0, "no input");
	/* A huge chunk is handed out piece by piece. */
	http_chunked_init(&d);
	r = http_chunked_step(&d, "fffffffff\r\n", 11, &off, &dlen);
	ok(r == 11 && d.remaining == 0xfffffffffULL, "huge chunk size");
	r = http_chunked_step(&d, "abcd", 4, &off, &dlen);
	ok(r == 4 && off == 0 && dlen == 4 &&
	    d.remaining == 0xfffffffffULL - 4, "huge chunk data");
}

int
main(void)
{
	guard_init();
	test_requests_good();
	test_requests_bad();
	test_requests_limits();
	test_request_views();
	test_responses();
	test_response_limits();
	test_helpers();
	test_tchar_bytes();
	test_connection_view();
	test_chunked();
	return t_done("http");
}
