/*
 * http.c: strict HTTP/1.1 message heads and chunked bodies (RFC 9112).
 *
 * It parses a request head (from a client) or a response head (from an
 * upstream) held whole in the caller's buffer, and derives the message
 * framing (Content-Length, chunked) and connection reuse from the fields.
 * Chunked bodies are decoded in http_chunked.c.
 *
 * It deliberately does no I/O, allocation or clock reading, and keeps no
 * state between calls to the head parsers: when more bytes arrive the
 * caller parses again from the start of the head (picohttpparser's model).
 * Heads are bounded by max_header, so the repeated scan stays cheap, and
 * every limit is checked against the bytes present so that an over-long
 * head is refused before it is complete rather than waited for forever.
 * It never decodes a transfer coding other than chunked. Of util.c it
 * uses only the view helpers (case-insensitive compare, OWS trim); all
 * bounds arithmetic on the message is in this file.
 *
 * Ownership: every view it fills points into the caller's buffer and is
 * valid while that buffer is unchanged; absent fields are empty views over
 * a static "".
 */
#include <limits.h>
#include <string.h>

#include "http.h"

/* Longest method accepted; real ones are short, and a bound keeps a
 * garbage first line from being scanned as a method. */
#define METHOD_MAX 32

/* Why a head was refused. Each parser maps these to its own answer. */
enum head_err {
	HEAD_OK = 0,
	HEAD_PARTIAL,
	HEAD_TOO_LARGE,		/* no end of head within max_header */
	HEAD_TOO_MANY,		/* more than HTTP_MAX_HEADERS fields */
	HEAD_LINE_TOO_LONG,	/* request line over HTTP_MAX_REQUEST_LINE */
	HEAD_NUL_CR,		/* NUL or CR not followed by LF */
	HEAD_START_LINE,	/* malformed request line or status line */
	HEAD_VERSION,		/* HTTP/x.y other than 1.0 and 1.1 */
	HEAD_OBS_FOLD,		/* field line starting with SP or HTAB */
	HEAD_WS_COLON,		/* white space between name and colon */
	HEAD_FIELD_NAME,	/* not a token, or no colon */
	HEAD_FIELD_VALUE,	/* control character in a value */
	HEAD_CL_INVALID,
	HEAD_CL_CONFLICT,
	HEAD_CL_AND_TE,
	HEAD_TE_HTTP10,
	HEAD_TE_UNSUPPORTED,
	HEAD_HOST_MISSING,
	HEAD_HOST_MULTIPLE,
	HEAD_DUP_CREDENTIAL,
	HEAD_NERR
};

struct req_answer {
	int status;
	const char *code;
	const char *message;
};

/* Answers to a bad request (SPEC §5 and §7). */
static const struct req_answer req_answers[HEAD_NERR] = {
	[HEAD_TOO_LARGE] = { 431, "headers_too_large",
	    "request head too large" },
	[HEAD_TOO_MANY] = { 431, "headers_too_large",
	    "too many header fields" },
	[HEAD_LINE_TOO_LONG] = { 414, "uri_too_long",
	    "request line too long" },
	[HEAD_NUL_CR] = { 400, "bad_request",
	    "NUL or bare CR in request head" },
	[HEAD_START_LINE] = { 400, "bad_request", "malformed request line" },
	[HEAD_VERSION] = { 400, "bad_request", "unsupported HTTP version" },
	[HEAD_OBS_FOLD] = { 400, "bad_request", "obs-fold header line" },
	[HEAD_WS_COLON] = { 400, "bad_request",
	    "white space before colon in header field" },
	[HEAD_FIELD_NAME] = { 400, "bad_request", "malformed header field" },
	[HEAD_FIELD_VALUE] = { 400, "bad_request",
	    "invalid character in header field value" },
	[HEAD_CL_INVALID] = { 400, "bad_request", "invalid Content-Length" },
	[HEAD_CL_CONFLICT] = { 400, "bad_request",
	    "conflicting Content-Length values" },
	[HEAD_CL_AND_TE] = { 400, "bad_request",
	    "both Content-Length and Transfer-Encoding" },
	[HEAD_TE_HTTP10] = { 400, "bad_request",
	    "Transfer-Encoding in HTTP/1.0 request" },
	[HEAD_TE_UNSUPPORTED] = { 501, "not_implemented",
	    "unsupported transfer coding" },
	[HEAD_HOST_MISSING] = { 400, "bad_request", "missing Host header" },
	[HEAD_HOST_MULTIPLE] = { 400, "bad_request",
	    "multiple Host headers" },
	[HEAD_DUP_CREDENTIAL] = { 400, "bad_request",
	    "duplicate credential header" },
};

/* Reasons for a bad response, recorded in the attempt list. */
static const char *const resp_errors[HEAD_NERR] = {
	[HEAD_TOO_LARGE] = "response head too large",
	[HEAD_TOO_MANY] = "too many header fields in response",
	[HEAD_NUL_CR] = "NUL or bare CR in response head",
	[HEAD_START_LINE] = "malformed status line",
	[HEAD_VERSION] = "unsupported HTTP version in response",
	[HEAD_OBS_FOLD] = "obs-fold header line in response",
	[HEAD_WS_COLON] = "white space before colon in response header",
	[HEAD_FIELD_NAME] = "malformed header field in response",
	[HEAD_FIELD_VALUE] = "malformed header field in response",
	[HEAD_CL_INVALID] = "invalid Content-Length in response",
	[HEAD_CL_CONFLICT] = "conflicting Content-Length in response",
};

static const char empty[] = "";

static struct view
empty_view(void)
{
	struct view v;

	v.p = empty;
	v.n = 0;
	return v;
}

#define ONES UINT64_C(0x0101010101010101)

/* "!#$%&'*+-.^_`|~", digits and letters (see http.h). */
const uint32_t http_tchar_bits[4] = {
	0x00000000, 0x03ff6cfa, 0xc7fffffe, 0x57ffffff
};

static unsigned char
lower(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static int
ieq_view(struct view a, struct view b)
{
	size_t i;

	if (a.n != b.n) {
		return 0;
	}
	for (i = 0; i < a.n; i++) {
		if (lower((unsigned char)a.p[i]) !=
		    lower((unsigned char)b.p[i])) {
			return 0;
		}
	}
	return 1;
}


/*
 * Find the line that starts at pos, looking for its LF before lim only.
 * The line excludes its terminator: CRLF, or a bare LF, which RFC 9112
 * §2.2 lets a recipient accept. Returns 1 and sets *line and *next (the
 * first byte after the LF), or 0 when no LF is there yet.
 */
static int
find_line(const char *buf, size_t pos, size_t lim, struct view *line,
    size_t *next)
{
	const char *lf = NULL;

	if (pos >= lim) {
		return 0;
	}
	lf = memchr(buf + pos, '\n', lim - pos);
	if (lf == NULL) {
		return 0;
	}
	line->p = buf + pos;
	line->n = (size_t)(lf - line->p);
	if (line->n > 0 && line->p[line->n - 1] == '\r') {
		line->n--;
	}
	*next = (size_t)(lf - buf) + 1;
	return 1;
}

/* RFC 9112 §2.2: a CR not part of a line ending, or a NUL, is refused. */
static int
has_nul_or_cr(struct view line)
{
	return memchr(line.p, '\0', line.n) != NULL ||
	    memchr(line.p, '\r', line.n) != NULL;
}

/* The first index from i below n whose byte may not be in a field value
 * (a control other than HTAB, or DEL), or n. Eight bytes at a time while
 * none is below 0x20 or DEL: values are most of a head's bytes. */
static size_t
value_end(const unsigned char *p, size_t i, size_t n)
{
	for (; n - i >= 8; i += 8) {
		uint64_t x;

		memcpy(&x, p + i, 8);
		if (((x - ONES * 0x20) | ((x ^ ONES * 0x7f) - ONES)) & ~x &
		    ONES * 0x80) {
			break;
		}
	}
	while (i < n && ((p[i] >= 0x20 && p[i] != 0x7f) || p[i] == '\t')) {
		i++;
	}
	return i;
}

/*
 * field-line = field-name ":" OWS field-value OWS (RFC 9112 §5).
 * A line starting with white space is obs-fold (§5.2) and white space
 * before the colon is refused (§5.1): both are request smuggling vectors.
 * Values may hold HTAB, SP, VCHAR and obs-text, no other control.
 */
static enum head_err
parse_field(struct view line, struct http_header *h)
{
	size_t i;

	if (line.p[0] == ' ' || line.p[0] == '\t') {
		return HEAD_OBS_FOLD;
	}
	for (i = 0; i < line.n && http_is_tchar((unsigned char)line.p[i]); i++) {
	}
	if (i < line.n && i > 0 && (line.p[i] == ' ' || line.p[i] == '\t')) {
		return HEAD_WS_COLON;
	}
	if (i == 0 || i == line.n || line.p[i] != ':') {
		return HEAD_FIELD_NAME;
	}
	h->name.p = line.p;
	h->name.n = i;
	h->value.p = line.p + i + 1;
	h->value.n = line.n - i - 1;
	h->value = util_view_trim(h->value);
	if (value_end((const unsigned char *)h->value.p, 0, h->value.n) !=
	    h->value.n) {
		return HEAD_FIELD_VALUE;
	}
	return HEAD_OK;
}

int http_fast_fields = 1;

/*
 * The usual field line in one pass: "name:" with a tchar name, optional
 * blanks, a value of visible bytes, obs-text, SP and HTAB, then CRLF, all
 * below lim. Fills *h and *next and returns 1 exactly when the general
 * path (find_line + parse_field) would accept the line with the same
 * views; returns 0 for anything else (the end of the head, a bare LF,
 * obs-fold, any error), which the general path then handles and names.
 */
static int
fast_field(const char *buf, size_t pos, size_t lim, struct http_header *h,
    size_t *next)
{
	const unsigned char *p = (const unsigned char *)buf;
	size_t i = pos, v, e;

	while (i < lim && http_is_tchar(p[i])) {
		i++;
	}
	if (i == pos || i >= lim || p[i] != ':') {
		return 0;
	}
	h->name.p = buf + pos;
	h->name.n = i - pos;
	i++;
	while (i < lim && (p[i] == ' ' || p[i] == '\t')) {
		i++;
	}
	v = i;
	i = value_end(p, i, lim);
	if (lim - i < 2 || p[i] != '\r' || p[i + 1] != '\n') {
		return 0;
	}
	for (e = i; e > v && (p[e - 1] == ' ' || p[e - 1] == '\t'); e--) {
	}
	h->value.p = buf + v;
	h->value.n = e - v;
	*next = i + 2;
	return 1;
}

/*
 * Read field lines from pos up to the empty line that ends the head. Lines
 * are only looked for below lim = min(len, max_header), so the outcome for
 * a prefix of the input is either HEAD_PARTIAL or the outcome for the
 * whole input.
 */
static enum head_err
parse_fields(const char *buf, size_t len, size_t max_header, size_t pos,
    struct http_header *headers, size_t *nheaders, size_t *end)
{
	size_t lim = len < max_header ? len : max_header;
	size_t next = 0;
	struct view line;
	enum head_err e;

	*nheaders = 0;
	for (;;) {
		if (*nheaders < HTTP_MAX_HEADERS && http_fast_fields &&
		    fast_field(buf, pos, lim, &headers[*nheaders], &next)) {
			(*nheaders)++;
			pos = next;
			continue;
		}
		if (!find_line(buf, pos, lim, &line, &next)) {
			return len >= max_header ? HEAD_TOO_LARGE :
			    HEAD_PARTIAL;
		}
		if (line.n == 0) {
			*end = next;
			return HEAD_OK;
		}
		/* A field line that parses holds no NUL or CR, so the scan
		 * for them only runs to name the error right. */
		if (*nheaders == HTTP_MAX_HEADERS) {
			return has_nul_or_cr(line) ? HEAD_NUL_CR :
			    HEAD_TOO_MANY;
		}
		e = parse_field(line, &headers[*nheaders]);
		if (e != HEAD_OK) {
			return has_nul_or_cr(line) ? HEAD_NUL_CR : e;
		}
		(*nheaders)++;
		pos = next;
	}
}

/* HTTP-version = "HTTP/" DIGIT "." DIGIT (RFC 9112 §2.3), 8 bytes. */
static enum head_err
parse_version(const char *p, int *minor)
{
	if (memcmp(p, "HTTP/", 5) != 0 || p[5] < '0' || p[5] > '9' ||
	    p[6] != '.' || p[7] < '0' || p[7] > '9') {
		return HEAD_START_LINE;
	}
	if (p[5] != '1' || (p[7] != '0' && p[7] != '1')) {
		return HEAD_VERSION;
	}
	*minor = p[7] - '0';
	return HEAD_OK;
}

/*
 * request-line = method SP request-target SP HTTP-version (RFC 9112 §3),
 * with exactly one SP between parts: §3 allows lenient splitting on other
 * white space, which a strict relay does not need. The target may hold no
 * CTL, SP, DEL or non-ASCII byte (RFC 3986).
 */
static enum head_err
parse_request_line(struct view line, struct http_request *req)
{
	size_t i = 0, start;
	unsigned char c;

	while (i < line.n && http_is_tchar((unsigned char)line.p[i])) {
		i++;
	}
	if (i == 0 || i > METHOD_MAX || i == line.n || line.p[i] != ' ') {
		return HEAD_START_LINE;
	}
	req->method.p = line.p;
	req->method.n = i;
	start = ++i;
	while (i < line.n) {
		c = (unsigned char)line.p[i];
		if (c <= 0x20 || c >= 0x7f) {
			break;
		}
		i++;
	}
	if (i == start || i == line.n || line.p[i] != ' ') {
		return HEAD_START_LINE;
	}
	req->target.p = line.p + start;
	req->target.n = i - start;
	i++;
	if (line.n - i != 8) {
		return HEAD_START_LINE;
	}
	return parse_version(line.p + i, &req->minor_version);
}

/* 1 when the comma-separated list in v names s. */
static int
lists(struct view v, const char *s)
{
	struct view n;

	n.p = s;
	n.n = strlen(s);
	return http_connection_lists(v, n);
}

/* What the fields both kinds of head are framed by say: Content-Length,
 * Transfer-Encoding and Connection (RFC 9112 §6, §9.3). */
struct framing {
	int has_cl;
	uint64_t cl;		/* Content-Length, when has_cl */
	int has_te;		/* Transfer-Encoding present */
	int te_chunked;		/* ... and it is a lone "chunked" */
	size_t nconn;		/* Connection fields seen */
	struct view connection;	/* the first one's value, or empty */
	int conn_close;		/* Connection lists "close" */
	int ka;			/* Connection lists "keep-alive" */
};

static void
framing_init(struct framing *f)
{
	memset(f, 0, sizeof *f);
	f->connection = empty_view();
}

/* Note h in f when it is one of the framing fields. Returns 1 when it
 * is, 0 when it is not, or -1 with *e set (HEAD_CL_INVALID,
 * HEAD_CL_CONFLICT). Inlined: it runs for most fields of every head. */
static RELAY_INLINE int
framing_field(struct framing *f, const struct http_header *h,
    enum head_err *e)
{
	uint64_t v = 0;

	if (VIEW_IEQ(h->name, "content-length")) {
		if (util_parse_u64(h->value.p, h->value.n, &v) < 0) {
			*e = HEAD_CL_INVALID;
			return -1;
		}
		/* RFC 9112 §6.3 rule 5: differing values are unrecoverable;
		 * identical repeats are harmless. */
		if (f->has_cl && v != f->cl) {
			*e = HEAD_CL_CONFLICT;
			return -1;
		}
		f->has_cl = 1;
		f->cl = v;
		return 1;
	}
	if (VIEW_IEQ(h->name, "transfer-encoding")) {
		/* A second field extends the coding list (RFC 9110 §5.3), so
		 * it is no longer a lone "chunked". */
		f->te_chunked = !f->has_te && VIEW_IEQ(h->value, "chunked");
		f->has_te = 1;
		return 1;
	}
	if (VIEW_IEQ(h->name, "connection")) {
		if (f->nconn++ == 0) {
			f->connection = h->value;
		}
		f->conn_close |= lists(h->value, "close");
		f->ka |= lists(h->value, "keep-alive");
		return 1;
	}
	return 0;
}

/* RFC 9112 §9.3: whether the connection persists after a message of
 * this version, as far as its Connection fields tell. */
static int
framing_keep_alive(const struct framing *f, int minor_version)
{
	if (minor_version == 1) {
		return !f->conn_close;
	}
	return f->ka && !f->conn_close;
}

/* Framing and connection fields of a request (RFC 9112 §6, §9.3). */
static enum head_err
derive_request(struct http_request *req)
{
	const struct http_header *h = NULL;
	struct framing f;
	enum head_err e = HEAD_OK;
	size_t i, nhost = 0;
	int has_auth = 0, has_key = 0, expect = 0, r;

	framing_init(&f);
	for (i = 0; i < req->nheaders; i++) {
		h = &req->headers[i];
		/* Only names starting with these letters matter here; the
		 * test saves a chain of compares for every other field. */
		if (h->name.n == 0 ||
		    !memchr("cthaex", h->name.p[0] | 0x20, 6)) {
			continue;
		}
		r = framing_field(&f, h, &e);
		if (r < 0) {
			return e;
		}
		if (r > 0) {
			continue;
		}
		if (VIEW_IEQ(h->name, "host")) {
			nhost++;
			req->host = h->value;
		} else if (VIEW_IEQ(h->name, "expect")) {
			expect |= VIEW_IEQ(h->value, "100-continue");
		} else if (VIEW_IEQ(h->name, "authorization")) {
			/* Two credentials leave it unclear whose request
			 * this is; refuse rather than pick one. */
			if (has_auth++) {
				return HEAD_DUP_CREDENTIAL;
			}
			req->authorization = h->value;
		} else if (VIEW_IEQ(h->name, "x-api-key")) {
			if (has_key++) {
				return HEAD_DUP_CREDENTIAL;
			}
			req->x_api_key = h->value;
		}
	}
	req->has_content_length = f.has_cl;
	req->content_length = f.cl;
	req->connection = f.connection;
	/* RFC 9112 §6.1: Transfer-Encoding in 1.0 means faulty framing, and
	 * with Content-Length it is a smuggling attempt; a server MAY refuse
	 * either, and a relay that must not guess does. */
	if (f.has_te && req->minor_version == 0) {
		return HEAD_TE_HTTP10;
	}
	if (f.has_te && f.has_cl) {
		return HEAD_CL_AND_TE;
	}
	/* RFC 9112 §6.1: an unknown coding gets 501; we decode none but
	 * chunked. */
	if (f.has_te && !f.te_chunked) {
		return HEAD_TE_UNSUPPORTED;
	}
	req->chunked = f.has_te;
	/* RFC 9112 §3.2: 400 for a 1.1 request without Host or with more
	 * than one. */
	if (nhost > 1) {
		return HEAD_HOST_MULTIPLE;
	}
	if (nhost == 0 && req->minor_version == 1) {
		return HEAD_HOST_MISSING;
	}
	req->keep_alive = framing_keep_alive(&f, req->minor_version);
	/* RFC 9110 §10.1.1: a server MUST ignore 100-continue in a 1.0
	 * request. */
	req->expect_continue = expect && req->minor_version == 1;
	return HEAD_OK;
}

static void
reset_request(struct http_request *req)
{
	req->method = empty_view();
	req->target = empty_view();
	req->minor_version = 0;
	req->nheaders = 0;
	req->has_content_length = 0;
	req->content_length = 0;
	req->chunked = 0;
	req->keep_alive = 0;
	req->expect_continue = 0;
	req->host = empty_view();
	req->authorization = empty_view();
	req->x_api_key = empty_view();
	req->connection = empty_view();
	req->error_status = 0;
	req->error_code = NULL;
	req->error_message = NULL;
}

/* A head's fields, after its start line parsed with result e (line is
 * that line, next the byte after it): a bad start line that holds a NUL
 * or a CR is refused as such (a valid line holds neither). */
static RELAY_INLINE enum head_err
head_fields(enum head_err e, struct view line, const char *buf, size_t len,
    size_t max_header, size_t next, struct http_header *headers,
    size_t *nheaders, size_t *end)
{
	if (e != HEAD_OK) {
		return has_nul_or_cr(line) ? HEAD_NUL_CR : e;
	}
	return parse_fields(buf, len, max_header, next, headers, nheaders, end);
}

/* What the head parsers return for e: the head's length (end),
 * HTTP_PARTIAL or HTTP_BAD. */
static int
head_result(enum head_err e, size_t end)
{
	if (e == HEAD_OK) {
		return (int)end;
	}
	return e == HEAD_PARTIAL ? HTTP_PARTIAL : HTTP_BAD;
}

static int
request_result(struct http_request *req, enum head_err e, size_t end)
{
	if (e != HEAD_OK && e != HEAD_PARTIAL) {
		req->error_status = req_answers[e].status;
		req->error_code = req_answers[e].code;
		req->error_message = req_answers[e].message;
	}
	return head_result(e, end);
}

int
http_parse_request(const char *buf, size_t len, size_t max_header,
    struct http_request *req)
{
	size_t lim, pos = 0, next = 0, end = 0;
	struct view line;
	enum head_err e;

	reset_request(req);
	/* The result is an int byte count. */
	if (max_header > INT_MAX) {
		max_header = INT_MAX;
	}
	lim = len < max_header ? len : max_header;
	/* RFC 9112 §2.2: ignore empty lines before the request line. They
	 * count towards the head, so max_header bounds them too. */
	for (;;) {
		if (pos < lim && buf[pos] == '\n') {
			pos++;
		} else if (pos + 1 < lim && buf[pos] == '\r' &&
		    buf[pos + 1] == '\n') {
			pos += 2;
		} else {
			break;
		}
	}
	if (!find_line(buf, pos, lim, &line, &next)) {
		/* Without its LF the line is at least lim - pos - 1 bytes
		 * long (the last byte may be the CR of CRLF). */
		if (lim - pos >= (size_t)HTTP_MAX_REQUEST_LINE + 2) {
			e = HEAD_LINE_TOO_LONG;
		} else if (len >= max_header) {
			e = HEAD_TOO_LARGE;
		} else {
			e = HEAD_PARTIAL;
		}
		return request_result(req, e, 0);
	}
	if (line.n > HTTP_MAX_REQUEST_LINE) {
		return request_result(req, HEAD_LINE_TOO_LONG, 0);
	}
	e = head_fields(parse_request_line(line, req), line, buf, len,
	    max_header, next, req->headers, &req->nheaders, &end);
	if (e == HEAD_OK) {
		e = derive_request(req);
	}
	return request_result(req, e, end);
}

/*
 * status-line = HTTP-version SP status-code SP [ reason-phrase ]
 * (RFC 9112 §4). A missing SP after the code is accepted too: some
 * servers send "HTTP/1.1 200" and §4 asks recipients to accept it.
 */
static enum head_err
parse_status_line(struct view line, struct http_response *resp)
{
	const char *p = line.p;
	size_t i;
	unsigned char c;
	enum head_err e;

	if (line.n < 12 || p[8] != ' ') {
		return HEAD_START_LINE;
	}
	e = parse_version(p, &resp->minor_version);
	if (e != HEAD_OK) {
		return e;
	}
	if (p[9] < '1' || p[9] > '9' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9') {
		return HEAD_START_LINE;
	}
	resp->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	if (line.n == 12) {
		return HEAD_OK;
	}
	if (p[12] != ' ') {
		return HEAD_START_LINE;
	}
	/* reason-phrase = 1*( HTAB / SP / VCHAR / obs-text ) */
	for (i = 13; i < line.n; i++) {
		c = (unsigned char)p[i];
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			return HEAD_START_LINE;
		}
	}
	resp->reason.p = p + 13;
	resp->reason.n = line.n - 13;
	return HEAD_OK;
}

/* Framing and reuse of a response (RFC 9112 §6.3, §9.3). */
static enum head_err
derive_response(struct http_response *resp)
{
	const struct http_header *h = NULL;
	struct framing f;
	enum head_err e = HEAD_OK;
	size_t i;
	int reuse = 1;

	framing_init(&f);
	for (i = 0; i < resp->nheaders; i++) {
		h = &resp->headers[i];
		if (h->name.n == 0 || ((h->name.p[0] | 0x20) != 'c' &&
		    (h->name.p[0] | 0x20) != 't')) {
			continue;
		}
		if (framing_field(&f, h, &e) < 0) {
			return e;
		}
	}
	resp->has_content_length = f.has_cl;
	resp->content_length = f.cl;
	resp->connection = f.connection;
	if (f.has_te) {
		/* §6.3 rule 3: Transfer-Encoding overrides Content-Length,
		 * but a message with both may be a smuggling attempt, so the
		 * connection is not reused. Rule 4: a coding list not ending
		 * in a chunked we decode leaves the body close-delimited.
		 * §6.1: in a 1.0 message the framing is faulty; close after
		 * it. */
		if (f.has_cl || !f.te_chunked || resp->minor_version == 0) {
			reuse = 0;
		}
		resp->has_content_length = 0;
		resp->content_length = 0;
		resp->chunked = f.te_chunked;
	}
	resp->keep_alive = framing_keep_alive(&f, resp->minor_version);
	/* §6.3 rule 8: no length at all means read until close. */
	if (!resp->has_content_length && !resp->chunked &&
	    !(resp->status < 200 || resp->status == 204 ||
	    resp->status == 304)) {
		reuse = 0;
	}
	if (!reuse) {
		resp->keep_alive = 0;
		resp->connection = empty_view();
	}
	return HEAD_OK;
}

struct http_header *
http_fields_keep(struct http_header **own, size_t *cap,
    const struct http_header *from, size_t n)
{
	/* n + 1: util_grow() of nothing to nothing says NULL. */
	struct http_header *f = util_grow(*own, cap, n + 1, sizeof(*f));

	if (f == NULL) {
		return NULL;
	}
	*own = f;
	memcpy(f, from, n * sizeof(*f));
	return f;
}

void
http_response_reset(struct http_response *resp)
{
	resp->minor_version = 0;
	resp->status = 0;
	resp->reason = empty_view();
	resp->nheaders = 0;
	resp->has_content_length = 0;
	resp->content_length = 0;
	resp->chunked = 0;
	resp->keep_alive = 0;
	resp->connection = empty_view();
	resp->error = NULL;
}

int
http_parse_response(const char *buf, size_t len, size_t max_header,
    struct http_response *resp)
{
	size_t lim, next = 0, end = 0;
	struct view line;
	enum head_err e;

	http_response_reset(resp);
	if (max_header > INT_MAX) {
		max_header = INT_MAX;
	}
	lim = len < max_header ? len : max_header;
	if (!find_line(buf, 0, lim, &line, &next)) {
		e = len >= max_header ? HEAD_TOO_LARGE : HEAD_PARTIAL;
	} else {
		e = head_fields(parse_status_line(line, resp), line, buf, len,
		    max_header, next, resp->headers, &resp->nheaders, &end);
	}
	if (e == HEAD_OK) {
		e = derive_response(resp);
	}
	if (e != HEAD_OK && e != HEAD_PARTIAL) {
		resp->error = resp_errors[e] ? resp_errors[e] :
		    "malformed response head";
	}
	return head_result(e, end);
}

int
http_response_has_no_body(int status, struct view method)
{
	/* RFC 9110 §6.4.1; methods are case-sensitive (§9.1). */
	if ((status >= 100 && status < 200) || status == 204 ||
	    status == 304) {
		return 1;
	}
	return method.n == 4 && memcmp(method.p, "HEAD", 4) == 0;
}

int
http_is_hop_by_hop(struct view name)
{
	/* RFC 9110 §7.6.1, plus Keep-Alive (RFC 2068) and the
	 * Proxy-* fields meant for this hop only. Every forwarded field
	 * passes here, so the length picks the one name to compare. */
	struct view prefix;

	switch (name.n) {
	case 2:
		return VIEW_IEQ(name, "te");
	case 7:
		if (VIEW_IEQ(name, "trailer") || VIEW_IEQ(name, "upgrade")) {
			return 1;
		}
		break;
	case 10:
		if (VIEW_IEQ(name, "connection") ||
		    VIEW_IEQ(name, "keep-alive")) {
			return 1;
		}
		break;
	case 17:
		if (VIEW_IEQ(name, "transfer-encoding")) {
			return 1;
		}
		break;
	default:
		break;
	}
	if (name.n < 6 || (name.p[0] | 0x20) != 'p') {
		return 0;
	}
	prefix.p = name.p;
	prefix.n = 6;
	return VIEW_IEQ(prefix, "proxy-");
}

int
http_connection_lists(struct view connection_value, struct view name)
{
	/* #token (RFC 9110 §5.6.1): elements separated by commas with OWS,
	 * empty elements allowed and ignored. */
	const char *p = connection_value.p;
	size_t n = connection_value.n, i = 0, start;
	struct view elem;

	while (i <= n) {
		start = i;
		while (i < n && p[i] != ',') {
			i++;
		}
		elem.p = p + start;
		elem.n = i - start;
		elem = util_view_trim(elem);
		if (elem.n > 0 && ieq_view(elem, name)) {
			return 1;
		}
		i++;
	}
	return 0;
}
