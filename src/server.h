#ifndef RELAY_SERVER_H
#define RELAY_SERVER_H
/* The downstream side: one client connection, its request parsing and
 * response writing. server_step() does the I/O and moves the state
 * forward; when it stops in SERVER_HEAD_READY or SERVER_BODY_READY the
 * caller (the front) decides what the request means and answers through the
 * server_respond*() helpers or by streaming into out. */
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "ev.h"
#include "http.h"

struct conf;
struct tls_conn;
struct tls_server_cert;

enum server_state {
	SERVER_READ_HEAD,	/* waiting for a complete request head */
	SERVER_HEAD_READY,	/* head parsed; the owner checks path/key */
	SERVER_READ_BODY,	/* reading the body into req.mem */
	SERVER_BODY_READY,	/* request complete; the owner acts */
	SERVER_BUSY,		/* the owner is producing the response */
	SERVER_DRAIN,		/* response complete; flushing out */
	SERVER_CLOSED		/* released at the end of the loop pass */
};

struct server_request {
	struct http_request head;	/* views into mem; headers points to
					 * the connection's fields */
	char *mem;		/* owned: copy of the head, then the body */
	size_t mem_cap;
	size_t head_len;
	size_t body_len;	/* body bytes in mem after the head */
	struct http_chunked chunked;
	char id[32];		/* x-request-id "req_<hex>" */
	struct view path;	/* target without the query, view into mem */
	struct view query;	/* "?..." or empty, view into mem */
	uint64_t started_ms;
	int status;		/* the status its answer has (server_respond(),
				 * or the relayed head's), 0 before one */
	int accounted;		/* counted and logged (front.c) */
};

struct server_conn {
	int fd;
	uint64_t id;		/* connection number, for logs */
	enum server_state state;
	uint64_t deadline_ms;	/* absolute monotonic; 0 = none */
	uint64_t last_io_ms;	/* last read/write progress */
	int close_after;	/* close once out is flushed */
	int got_bytes;		/* bytes of the current head have arrived */
	unsigned long served;	/* requests answered on this connection */
	struct buf in;		/* request bytes not yet consumed */
	struct buf out;		/* response bytes not yet written */
	const char *body_ptr;	/* borrowed: a response body sent after out */
	size_t body_left;
	struct server_request req;
	char *spare_mem;	/* owned: a finished request's block, reused */
	size_t spare_cap;
	struct http_header *fields;	/* owned: the current head's fields,
					 * kept for the next request */
	size_t fields_cap;
	struct tls_conn *tls;	/* owned; NULL on a plain listener */
	const struct conf *conf;	/* borrowed; the config this conn started on */
	int gated;		/* the owner holds the output back (see
				 * server_gate()) */
	unsigned char peer[16];	/* the client's address (net_accept()) */
	uint64_t body_deadline_ms;	/* the whole body by then (`timeouts
					 * body`), 0 outside a body */
	void *owner;		/* borrowed: whoever serves this connection */
	int linger;		/* answered before the request's body was
				 * read: see server_take_linger() */
	int linger_fd;		/* owned: closed by server_close(DONE) with
				 * linger set, still to be drained; -1 */
	/* A streamed body (server_accept_head_stream()): the owner takes it
	 * piece by piece with server_body_take() instead of whole in req. */
	int body_stream;	/* this request's body is streamed */
	int body_open;		/* ... and not all of it was taken yet */
	uint64_t body_taken;	/* decoded body bytes taken so far */
	const char *body_error;	/* why server_body_take() failed */
	int body_error_status;	/* ... 400 or 413 */
	struct ev ev;		/* the loop's (ev.h); its owner is the client */
};

/* Why a connection closed, for the log (server_close_text()). */
enum server_close_reason {
	SERVER_CLOSE_DONE,		/* response complete, no keep-alive */
	SERVER_CLOSE_PEER,		/* the client closed */
	SERVER_CLOSE_READ_FAILED,
	SERVER_CLOSE_WRITE_FAILED,
	SERVER_CLOSE_INVALID_SOCKET,
	SERVER_CLOSE_KEEPALIVE,		/* idle keep-alive timed out */
	SERVER_CLOSE_STOPPED_READING,	/* `idle` passed with output queued */
	SERVER_CLOSE_HEAD_TOO_BIG,	/* a response head did not fit */
	SERVER_CLOSE_SHUTDOWN,		/* the relay is stopping */
	SERVER_CLOSE_CUT		/* the response was cut (upstream broke) */
};

/* Allocate a connection for an accepted fd; with cert set, it speaks TLS
 * (the handshake runs under the `header` timeout). Returns NULL on no
 * memory. */
struct server_conn *server_new(int fd, uint64_t id, const struct conf *c,
    const struct tls_server_cert *cert, uint64_t now_ms);

/* Free everything the connection owns and close its fd. */
void server_free(struct server_conn *sc);

/* Mark closed (fd closed at once; memory freed by the owner later) and
 * log why at debug level (a TLS failure at info). The one way a client
 * connection closes. */
void server_close(struct server_conn *sc, enum server_close_reason why);

/* The fd of a connection server_close() ended after answering a request
 * whose body it never read (an early error: 401, 413, 415, ...), or -1.
 * Its write side is shut; the caller reads and drops what the client
 * still sends for a moment before closing it, because closing a socket
 * with unread bytes resets the connection, and a client still writing
 * its body then loses the answer (Node's fetch reports "fetch failed").
 * The caller owns the fd after this. */
int server_take_linger(struct server_conn *sc);

/* Fixed text for a close reason ("client closed", ...). Test hook: the
 * relay logs it itself; the tests check the table. */
const char *server_close_text(enum server_close_reason why);

/* The owner takes over the request: BUSY, no deadline of the server's
 * own (the owner's timers bound it). */
void server_busy(struct server_conn *sc);

/* gate 1: out is filled but nothing is written (no POLLOUT, flushes do
 * nothing) until gate 0 again; the owner uses it to hold an answer back
 * until its charge is on disk. */
void server_gate(struct server_conn *sc, int gate);

/* Do the I/O the revents allow and advance. Safe to call with revents 0
 * (just makes progress on buffered bytes). */
void server_step(struct server_conn *sc, short revents, uint64_t now_ms);

/* poll() interest for the current state and buffer levels. */
short server_interest(const struct server_conn *sc);

/* 1 when TLS holds decrypted request bytes that no poll() event will
 * announce and there is room for them: step it as if readable. */
int server_tls_buffered(const struct server_conn *sc);

/* Handle an expired deadline (408, or a silent close when idle). */
void server_timeout(struct server_conn *sc, uint64_t now_ms);

/* Write as much of out (then body_ptr) as the socket takes (nothing while
 * gated). Returns 0, or -1 when the connection failed (it is then
 * closed). */
int server_flush(struct server_conn *sc, uint64_t now_ms);

/* Accept the head: go on to read the body (sending 100 Continue when the
 * client asked for it). */
void server_accept_head(struct server_conn *sc, uint64_t now_ms);

/* Accept the head of a request whose body the owner streams: the
 * connection reads into its input buffer only (bounded: max_header + 16
 * KiB; the owner takes the bytes with server_body_take(), which is the
 * backpressure), and stays in SERVER_READ_BODY until the owner moves it
 * on. An answer given while the body is still open closes the connection
 * after it. */
void server_accept_head_stream(struct server_conn *sc, uint64_t now_ms);

/* Copy up to cap decoded body bytes of a streamed body into dst and
 * consume them (de-chunked when the client sent it chunked). *end is set
 * once the body is complete. Returns the count (0: none buffered now),
 * or -1 for a malformed chunked body or one over max_body (body_error
 * and body_error_status say which; nothing is answered). */
long server_body_take(struct server_conn *sc, char *dst, size_t cap,
    int *end);

/* Room for need more body bytes in req.mem (the part of a streamed body
 * the owner holds). Returns 0, or -1 when out of memory. */
int server_body_room(struct server_conn *sc, size_t need);

/* A complete response with a small body copied into out (or borrowed when
 * borrow is set; the body must then outlive the response). extra is
 * additional header lines, each ending in CRLF, or NULL. Moves to
 * SERVER_DRAIN. */
void server_respond(struct server_conn *sc, int status,
    const char *content_type, const char *extra, const char *body,
    size_t len, int borrow, uint64_t now_ms);

/* 1 for the Anthropic paths (/v1/messages and below): errors there take
 * Anthropic's shape (SPEC §5). */
int server_anthropic_path(struct view path);

/* The JSON error body for a request on path into out[cap]: OpenAI's
 * shape {"error":{"message","type","code"}}, or on Anthropic paths
 * {"type":"error","error":{"type","message"}} with Anthropic's error
 * types. A message too long for cap is replaced by the code. Returns the
 * length, or 0 when cap is too small even for that (cap >= 256 always
 * fits). */
size_t server_error_body(struct view path, int status, const char *code,
    const char *message, char *out, size_t cap);

/* An error response (server_error_body()'s shape). Closes after it when
 * the request's framing is not known to be consumed. */
void server_error(struct server_conn *sc, int status, const char *code,
    const char *message, uint64_t now_ms);

/* The same with extra header lines ("Allow: GET\r\n"), or NULL. */
void server_error_with(struct server_conn *sc, int status, const char *code,
    const char *message, const char *extra, uint64_t now_ms);

/* The response is complete (streamed by the owner): flush and go on. */
void server_response_done(struct server_conn *sc, uint64_t now_ms);

/* Fixed reason phrase for a status. Test hook: the relay writes it in
 * its own heads; the tests check the table. */
const char *server_reason(int status);

#endif
