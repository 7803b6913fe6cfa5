#ifndef RELAY_REWRITE_H
#define RELAY_REWRITE_H
/* The bytes the relay changes on their way through, as pure functions:
 * the upstream request head (the credential's auth style, header=
 * lines, the client's fields that pass), the edits to the client's body
 * (the model value, the usage request of an OpenAI chat stream) and the
 * response head the client gets. No I/O, no allocation, no clock: the
 * caller gives every input and the room for the output. */
#include <stddef.h>
#include <sys/uio.h>

#include "http.h"
#include "util.h"

struct buf;
struct conf_provider;
struct json_request;

/* The credential in the provider's auth style (Authorization: Bearer,
 * x-api-key, api-key, or none), then its header= lines, each ending in
 * CRLF, NUL-terminated, into out. Returns the length, or -1 when cap is
 * too small. */
int rewrite_provider_lines(const struct conf_provider *p,
    const char *secret, char *out, size_t cap);

/* The value of the first field called name (case-insensitive), or an
 * empty view. */
struct view rewrite_find_header(const struct http_header *h, size_t n,
    const char *name);

/* One change to the client's body: del bytes at off replaced by ins. */
struct rewrite_edit {
	size_t off;
	size_t del;
	const char *ins;	/* borrowed */
	size_t ins_len;
};

/* For an OpenAI chat stream (path ends in /chat/completions, "stream":
 * true) whose client did not ask for usage, the edit that asks for it
 * (SPEC §3): include_usage added to stream_options, or stream_options
 * replaced or added. Returns 1 with *e set (the usage-only chunk must
 * then be hidden from the client), else 0. */
int rewrite_usage_edit(const struct json_request *jr, const char *body,
    struct view path, struct rewrite_edit *e);

/* Everything the upstream request is made of. Views are borrowed. */
struct rewrite_request {
	struct view method;
	struct view base_path;	/* the provider's base path ("" or "/v1") */
	struct view path;	/* the client's path; it starts with "/v1",
				 * which base_path replaces */
	struct view query;	/* "?..." or empty */
	struct view fixed;	/* Host, auth and header= lines (per
				 * credential, see rewrite_provider_lines) */
	const struct http_header *headers;	/* the client's fields */
	size_t nheaders;
	struct view connection;	/* the client's Connection value */
	const struct conf_provider *provider;	/* its header= names
				 * replace the client's fields */
	const char *body;	/* the client's body */
	size_t body_len;
	const struct rewrite_edit *edits;	/* sorted by off, apart */
	int nedits;		/* at most 2 */
	/* A body that goes on after body[0..body_len) (a streamed form,
	 * SPEC §9): body_more bytes of it still to come, counted in the
	 * Content-Length; or, chunked, the head says Transfer-Encoding:
	 * chunked and body[0..body_len) (edited) goes as the first chunk. */
	uint64_t body_more;
	int chunked;
};

/* Bytes rewrite_request() may write into head. */
size_t rewrite_request_need(const struct rewrite_request *r);

/* The request head into head (rewrite_request_need() bytes of room),
 * then iovecs for head, body pieces and insertions into iov (room for
 * 2 * nedits + 3: chunked adds the chunk's closing CRLF; the chunk's
 * size line ends the head). Fields the relay does not forward: hop-by-hop ones
 * and those the client's Connection names, the client's credentials
 * (Authorization, x-api-key, api-key), Host, Content-Length, Expect,
 * Accept-Encoding (usage must be readable), and names a header= sets.
 * Content-Length is the edited body's (with body_more). Returns the number of iovecs; the
 * head's length is iov[0].iov_len. */
int rewrite_request(const struct rewrite_request *r, char *head,
    struct iovec *iov);

/* Everything the client's response head is made of. */
struct rewrite_response {
	const struct http_response *resp;	/* the upstream's head */
	struct view method;	/* the client's request method */
	int minor_version;	/* the client's HTTP/1.x */
	const char *request_id;
	const char *route;	/* "provider/upstream-model" */
	unsigned attempts;
	int may_shrink;		/* an event may be left out (the usage-only
				 * chunk): an event stream's Content-Length
				 * is not passed on, the relay frames it */
};

/* How the body that follows goes to the client. */
struct rewrite_framing {
	int sse;		/* text/event-stream */
	int client_chunked;	/* the relay frames it chunked */
	int close_after;	/* in: the connection closes after this
				 * answer; out: also when only the close can
				 * end the body (HTTP/1.0 without a length) */
};

/* The response head for the client into out: the upstream's status and
 * fields minus hop-by-hop ones, Content-Length and our own x-relay-*
 * (the upstream's x-request-id kept as x-upstream-request-id), the body
 * framing, then x-request-id, x-relay-route, x-relay-attempts and the
 * Connection field. Returns 0, or -1 (nothing written) when it does not
 * fit. */
int rewrite_response_head(const struct rewrite_response *r, struct buf *out,
    struct rewrite_framing *f);

#endif
