#ifndef RELAY_UPSTREAM_H
#define RELAY_UPSTREAM_H
/* The upstream side: one connection from the relay to a provider. It
 * connects, writes a request given as iovecs (borrowed), reads and parses
 * the response head, then hands out the decoded body on demand, so the
 * caller controls the pace (backpressure). Keep-alive connections are
 * parked by the caller and reused. */
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "buf.h"
#include "ev.h"
#include "http.h"
#include "net.h"

struct conf;
struct tls_anchors;
struct tls_conn;

enum upstream_state {
	UPSTREAM_CONNECTING,	/* waiting for the TCP connect to finish */
	UPSTREAM_SENDING,	/* writing the request */
	UPSTREAM_READ_HEAD,	/* request sent; waiting for the response head */
	UPSTREAM_HEAD,		/* head parsed; the caller looks at resp */
	UPSTREAM_BODY,		/* body bytes arrive; the caller pulls them */
	UPSTREAM_DONE,		/* the whole body was handed out */
	UPSTREAM_FAILED,	/* error[] says why */
	UPSTREAM_IDLE,		/* parked in the keep-alive pool */
	UPSTREAM_CLOSED		/* released at the end of the loop pass */
};

enum upstream_framing {
	UPSTREAM_BODY_NONE,
	UPSTREAM_BODY_LENGTH,
	UPSTREAM_BODY_CHUNKED,
	UPSTREAM_BODY_CLOSE	/* ends when the peer closes */
};

#define UPSTREAM_IOV_MAX 6

/* Why an attempt failed. The text a person reads (the 503's attempt
 * list, the log) is made from the reason and a detail (an errno text, a
 * TLS reason, a limit) by upstream_fail(). */
enum upstream_fail {
	UPSTREAM_FAIL_NONE,
	UPSTREAM_FAIL_CONNECT,		/* connect failed: <errno> */
	UPSTREAM_FAIL_TLS,		/* TLS: <reason> */
	UPSTREAM_FAIL_RESET_SENDING,	/* reset while sending (<errno>) */
	UPSTREAM_FAIL_READ_SENDING,	/* <read error> while sending */
	UPSTREAM_FAIL_CLOSED_SENDING,	/* closed while sending the request */
	UPSTREAM_FAIL_HUP_SENDING,	/* POLLHUP while sending */
	UPSTREAM_FAIL_READ_BEFORE_HEAD,	/* <read error> before the head */
	UPSTREAM_FAIL_CLOSED_BEFORE_HEAD,
	UPSTREAM_FAIL_CLOSED_IN_HEAD,
	UPSTREAM_FAIL_HEAD_TOO_LARGE,
	UPSTREAM_FAIL_MALFORMED_HEAD,	/* malformed response head: <why> */
	UPSTREAM_FAIL_PROTOCOL_SWITCH,	/* a 101 */
	UPSTREAM_FAIL_BODY_CUT,		/* closed before the end of the body */
	UPSTREAM_FAIL_BAD_CHUNKED,	/* malformed chunked body */
	UPSTREAM_FAIL_CHUNK_BOOKKEEPING,
	UPSTREAM_FAIL_NO_MEMORY,	/* out of memory (the head's fields) */
	UPSTREAM_FAIL_TIMEOUT_CONNECT,	/* the timeouts: detail is the ms */
	UPSTREAM_FAIL_TIMEOUT_HANDSHAKE,
	UPSTREAM_FAIL_TIMEOUT_SENDING,
	UPSTREAM_FAIL_TIMEOUT_FIRST_BYTE,
	UPSTREAM_FAIL_TIMEOUT_IDLE
};

struct upstream {
	int fd;
	enum upstream_state state;
	uint64_t deadline_ms;	/* absolute monotonic; 0 = none */
	size_t provider;	/* conf provider index */
	const struct conf *conf;	/* borrowed; the config it was made for */
	struct buf in;		/* owned, growable: response bytes not yet
				 * handed out (max_header + the body window;
				 * the window alone in BODY) */
	struct http_response resp;	/* views into in, valid in HEAD;
					 * headers is fields */
	struct http_header *fields;	/* owned in HEAD: the head's fields */
	size_t fields_cap;
	size_t head_len;
	struct view method;	/* borrowed: the request method (no-body rule) */
	enum upstream_framing framing;
	uint64_t remaining;	/* LENGTH: body bytes still to come */
	struct http_chunked chunked;
	int eof;		/* the peer closed its side */
	struct iovec iov[UPSTREAM_IOV_MAX];	/* borrowed request pieces */
	int iovcnt;
	int reused;		/* taken from the pool for this request */
	int cut;		/* the answer came before the whole request
				 * was sent: never reused */
	int got_bytes;		/* some response byte arrived */
	int more;		/* the request body goes on: once the iovecs
				 * are written, stay SENDING and wait for
				 * upstream_send_more() */
	unsigned long requests;	/* requests sent on this connection */
	uint64_t idle_since_ms;	/* when it was parked */
	enum upstream_fail fail;	/* why it failed (FAILED) */
	char error[160];	/* that, as text */
	char read_error[120];	/* the last read error, for the reason */
	struct tls_conn *tls;	/* owned; NULL for plain http */
	void *owner;		/* borrowed: who uses it (a struct starting
				 * with pool.h's tag), NULL while parked */
	struct ev ev;		/* the loop's (ev.h) */
};

/* 1 when the reason is one of the timeouts. */
int upstream_fail_is_timeout(enum upstream_fail f);

/* Start a connection to a; with ta set, TLS to server_name (SNI and the
 * certificate's host name). Returns NULL with error text in err when the
 * socket cannot even be created. */
struct upstream *upstream_connect(const struct net_addr *a, size_t provider,
    const struct conf *c, const struct tls_anchors *ta,
    const char *server_name, uint64_t now_ms, char *err, size_t errlen);

/* Queue a request (the iovecs and what they point to are borrowed until
 * the head arrives) and arm the timers. The connection is CONNECTING or
 * IDLE. */
void upstream_send(struct upstream *u, const struct iovec *iov, int iovcnt,
    struct view method, uint64_t now_ms);

/* The request queued by upstream_send() is not all of it: its body goes
 * on in pieces given with upstream_send_more(). */
void upstream_expect_more(struct upstream *u);

/* SENDING with every queued byte written and more expected: queue the
 * next piece (borrowed until written); last: it ends the request. */
void upstream_send_more(struct upstream *u, const char *p, size_t n,
    int last);

/* Do the I/O revents allow and advance. */
void upstream_step(struct upstream *u, short revents, uint64_t now_ms);

/* poll() interest. */
short upstream_interest(const struct upstream *u);

/* 1 when TLS holds decrypted bytes that no poll() event will announce and
 * there is room to take them (also an early answer while SENDING): the
 * caller steps it as if readable. */
int upstream_tls_buffered(const struct upstream *u);

/* The deadline passed: FAILED with a timeout reason for the state. */
void upstream_timeout(struct upstream *u, uint64_t now_ms);

/* In HEAD: the caller is done with resp; drop the head and start the body
 * (DONE at once when there is none). */
void upstream_start_body(struct upstream *u, uint64_t now_ms);

/* In BODY: copy up to cap decoded body bytes into dst. Returns the count
 * (0 when nothing is buffered). Moves to DONE at the end of the body, or
 * FAILED on a framing error. */
size_t upstream_read_body(struct upstream *u, char *dst, size_t cap,
    uint64_t now_ms);

/* 1 when the finished connection can be parked for reuse. */
int upstream_reusable(const struct upstream *u);

/* Park: IDLE, the idle timer armed. */
void upstream_park(struct upstream *u, uint64_t now_ms);

/* Close the socket and mark CLOSED (memory released with upstream_free). */
void upstream_close(struct upstream *u);

void upstream_free(struct upstream *u);

#endif
