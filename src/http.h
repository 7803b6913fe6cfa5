#ifndef RELAY_HTTP_H
#define RELAY_HTTP_H
/* HTTP/1.1 message heads and chunked bodies (RFC 9112), parsed strictly.
 * Pure: bytes in, result out; no I/O, no allocation, no clock. Parsed
 * fields are views into the caller's buffer, valid while it is unchanged.
 *
 * Parser contract (picohttpparser's): > 0 is the number of bytes the head
 * took (request line or status line, fields and the empty line),
 * HTTP_PARTIAL means more bytes are needed, HTTP_BAD means malformed. */
#include <stddef.h>
#include <stdint.h>
#include "util.h"

#define HTTP_BAD (-1)
#define HTTP_PARTIAL (-2)
#define HTTP_MAX_HEADERS 100
#define HTTP_MAX_REQUEST_LINE 8192

struct http_header {
	struct view name;
	struct view value;	/* leading/trailing blanks trimmed */
};

struct http_request {
	struct view method;
	struct view target;	/* request-target as sent */
	int minor_version;	/* 0 or 1 (HTTP/1.x only) */
	struct http_header *headers;	/* borrowed: the caller sets room for
					 * HTTP_MAX_HEADERS before parsing */
	size_t nheaders;

	/* Derived from the fields: */
	int has_content_length;
	uint64_t content_length;
	int chunked;		/* Transfer-Encoding: chunked */
	int keep_alive;		/* 1.1 unless "close"; 1.0 only with "keep-alive" */
	int expect_continue;	/* Expect: 100-continue */
	struct view host;	/* Host field value, empty when absent */
	struct view authorization;	/* Authorization value, empty when absent */
	struct view x_api_key;	/* x-api-key value, empty when absent */
	struct view connection;	/* the first Connection value, empty when
				 * absent (it lists hop-by-hop fields) */

	/* Set when HTTP_BAD is returned: the status to answer (400, 414, 431,
	 * 501), the SPEC §5 error code ("bad_request", "uri_too_long",
	 * "headers_too_large", "not_implemented") and a fixed message. */
	int error_status;
	const char *error_code;
	const char *error_message;
};

/* Parse a request head from buf[0..len) into req, whose headers must
 * point to HTTP_MAX_HEADERS entries (the fields land there: a caller that
 * keeps the request keeps a copy of the nheaders it needs, so that a
 * connection does not hold 3 KiB of unused entries). max_header bounds
 * the whole head (request line + fields + CRLFs); a longer head, or more than
 * HTTP_MAX_HEADERS fields, is HTTP_BAD with 431; a request line over
 * HTTP_MAX_REQUEST_LINE is 414. Rejected with 400 (SPEC §7): bare CR or NUL
 * in the head, obs-fold, white space before a colon, bad field name
 * characters, Content-Length that is not plain digits or differs between
 * fields, both Content-Length and Transfer-Encoding, an HTTP/1.1 request
 * without Host, a malformed request line, a version other than HTTP/1.0 or
 * HTTP/1.1. A transfer coding other than a lone "chunked" is 501.
 * Lines end in CRLF; a bare LF line ending is accepted (RFC 9112 §2.2). */
int http_parse_request(const char *buf, size_t len, size_t max_header,
    struct http_request *req);

struct http_response {
	int minor_version;
	int status;		/* 100..999 */
	struct view reason;
	struct http_header *headers;	/* borrowed: as in http_request */
	size_t nheaders;

	int has_content_length;
	uint64_t content_length;
	int chunked;
	int keep_alive;		/* the connection may be reused after this */
	struct view connection;	/* the first Connection value, or empty */
	const char *error;	/* why, when HTTP_BAD is returned */
};

/* 1 (the default): the usual field lines take a one-pass fast path. Tests
 * set 0 to compare it with the general path, which must give the same
 * result for every input. */
extern int http_fast_fields;

/* Keep a copy of n parsed fields (from the caller's HTTP_MAX_HEADERS
 * array) in *own, an array of *cap entries grown with util_grow() and
 * kept for the next copy. Returns the copy, or NULL (no memory). */
struct http_header *http_fields_keep(struct http_header **own, size_t *cap,
    const struct http_header *from, size_t n);

/* Forget a parsed response: status 0, no fields. Cheap: the field array
 * is not cleared. */
void http_response_reset(struct http_response *resp);

/* Parse a response head (from an upstream). Same contract and limits as
 * http_parse_request; on HTTP_BAD, error names the reason ("malformed
 * status line", "response head too large", ...). */
int http_parse_response(const char *buf, size_t len, size_t max_header,
    struct http_response *resp);

/* 1 when a response with this status to a request with this method has no
 * body whatever its fields say (1xx, 204, 304, HEAD). */
int http_response_has_no_body(int status, struct view method);

/* 1 when name is a hop-by-hop field that a proxy must not forward
 * (Connection, Keep-Alive, TE, Trailer, Transfer-Encoding, Upgrade,
 * Proxy-*), case-insensitive. Fields named in Connection are checked by the
 * caller with http_connection_lists(). */
int http_is_hop_by_hop(struct view name);

/* 1 when the comma-separated Connection value lists name. */
int http_connection_lists(struct view connection_value, struct view name);

/* tchar of RFC 9110 §5.6.2 (a field name's characters), as a bitmap of
 * the 128 ASCII codes. */
extern const uint32_t http_tchar_bits[4];

static inline int
http_is_tchar(unsigned char c)
{
	return c < 128 && (http_tchar_bits[c >> 5] >> (c & 31)) & 1;
}

/* Resumable decoder of a chunked body (RFC 9112 §7.1; http_chunked.c).
 * It consumes framing bytes as they come (no need to keep a partial size
 * line in the buffer) and hands out data as views into the input. */
struct http_chunked {
	int state;		/* private */
	uint64_t remaining;	/* data bytes left in the current chunk */
	size_t line_len;	/* bytes of the current size/trailer line */
	size_t trailer_bytes;	/* total trailer bytes seen */
	int digits;		/* size digits seen on this line */
	int done;		/* the last chunk and trailers were consumed */
};

void http_chunked_init(struct http_chunked *d);

/* Consume from in[0..n). Returns the number of bytes consumed (>= 0) or
 * HTTP_BAD. When it stops at chunk data it sets *data_off and *data_len to the
 * data bytes inside the consumed range (relative to in) and returns right
 * after them; otherwise *data_len is 0. Call again with the rest until it
 * returns 0 with n > 0 only when d->done is set, or n is exhausted.
 * Limits: a size line (with extensions) over 4096 bytes, a size over
 * 2^60, or trailers over 16 KiB are HTTP_BAD. */
long http_chunked_step(struct http_chunked *d, const char *in, size_t n,
    size_t *data_off, size_t *data_len);

#endif
