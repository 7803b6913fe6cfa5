/* server: the client-facing connection.
 *
 * Two growable buffers (buf.h), bounded as ever: input (a request head
 * of up to max_header plus a window of body or pipelined bytes) and output
 * (a response head plus a window of body); small until bytes wait, given
 * back while idle. The request head is copied into req.mem together with
 * the body, so the input buffer can move on; its owner then borrows views
 * into req.mem for the life of the request.
 *
 * Framing follows RFC 9112 strictly (see http.c); after any framing error
 * the connection is closed, since the relay never guesses where the next
 * request starts (SPEC §7). */
#include <errno.h>
#include <poll.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "conf.h"
#include "json.h"
#include "log.h"
#include "net.h"
#include "server.h"
#include "watch.h"
#include "tls.h"
#include "util.h"

#define SERVER_BODY_WINDOW 16384
#define SERVER_OUT_EXTRA 16384
#define SERVER_CHUNKED_START 16384
#define SERVER_KEEP_MEM 65536	/* request blocks up to this are reused */
#define SERVER_PREALLOC (1024 * 1024)	/* a body announced bigger grows
					 * as it comes (a streamed one is
					 * never held whole) */

/* The fields of the head being parsed, for every connection (parsing is
 * synchronous); a request taken keeps a copy of its own (take_head()). */
static struct http_header head_fields[HTTP_MAX_HEADERS];

struct server_conn *
server_new(int fd, uint64_t id, const struct conf *c,
    const struct tls_server_cert *cert, uint64_t now_ms)
{
	struct server_conn *sc;
	size_t in_cap = (size_t)c->max_header + SERVER_BODY_WINDOW;
	size_t out_cap = (size_t)c->max_header + SERVER_OUT_EXTRA;

	sc = calloc(1, sizeof(*sc));
	if (sc == NULL) {
		return NULL;
	}
	if (cert != NULL) {
		char err[160];

		sc->tls = tls_server_new(cert, err, sizeof(err));
		if (sc->tls == NULL) {
			log_warn("conn %llu: %s", (unsigned long long)id, err);
			free(sc);
			return NULL;
		}
	}
	buf_init_grow(&sc->in, in_cap);
	buf_init_grow(&sc->out, out_cap);
	sc->fd = fd;
	sc->linger_fd = -1;
	sc->id = id;
	sc->conf = c;
	sc->state = SERVER_READ_HEAD;
	sc->deadline_ms = now_ms + c->header_timeout_ms;
	sc->last_io_ms = now_ms;
	return sc;
}

static void
reset_request(struct server_conn *sc)
{
	/* Keep a small request block for the next request on this
	 * connection: no malloc per request on keep-alive. */
	if (sc->req.mem != NULL && sc->req.mem_cap <= SERVER_KEEP_MEM &&
	    sc->spare_mem == NULL) {
		sc->spare_mem = sc->req.mem;
		sc->spare_cap = sc->req.mem_cap;
	} else {
		free(sc->req.mem);
	}
	memset(&sc->req, 0, sizeof(sc->req));
	sc->body_ptr = NULL;
	sc->body_left = 0;
	sc->got_bytes = 0;
	sc->body_stream = 0;
	sc->body_open = 0;
	sc->body_taken = 0;
	sc->body_error = NULL;
	sc->body_error_status = 0;
}

void
server_free(struct server_conn *sc)
{
	if (sc == NULL) {
		return;
	}
	if (sc->fd >= 0) {
		close(sc->fd);
	}
	if (sc->linger_fd >= 0) {
		close(sc->linger_fd);
	}
	tls_free(sc->tls);
	reset_request(sc);
	free(sc->spare_mem);
	free(sc->fields);
	buf_free(&sc->in);
	buf_free(&sc->out);
	free(sc);
}

const char *
server_close_text(enum server_close_reason why)
{
	static const char *const text[] = {
		[SERVER_CLOSE_DONE] = "response complete",
		[SERVER_CLOSE_PEER] = "client closed",
		[SERVER_CLOSE_READ_FAILED] = "client read failed",
		[SERVER_CLOSE_WRITE_FAILED] = "client write failed",
		[SERVER_CLOSE_INVALID_SOCKET] = "invalid socket",
		[SERVER_CLOSE_KEEPALIVE] = "keep-alive timeout",
		[SERVER_CLOSE_STOPPED_READING] = "client stopped reading",
		[SERVER_CLOSE_HEAD_TOO_BIG] = "response head does not fit",
		[SERVER_CLOSE_SHUTDOWN] = "shutdown",
		[SERVER_CLOSE_CUT] = "response cut",
	};

	return (size_t)why < sizeof(text) / sizeof(text[0]) && text[why] ?
	    text[why] : "closed";
}

void
server_close(struct server_conn *sc, enum server_close_reason why)
{
	if (sc->state == SERVER_CLOSED) {
		return;
	}
	if (sc->tls != NULL && tls_error(sc->tls) != NULL) {
		log_info("conn %llu closed: %s", (unsigned long long)sc->id,
		    tls_error(sc->tls));
	} else {
		log_debug("conn %llu closed: %s", (unsigned long long)sc->id,
		    server_close_text(why));
	}
	if (sc->tls != NULL && sc->fd >= 0 && tls_handshake_done(sc->tls)) {
		(void)tls_shutdown(sc->tls, sc->fd);	/* best effort */
	}
	sc->state = SERVER_CLOSED;
	/* Out of the loop's wait before the close: a copy of the descriptor
	 * (a child between its fork and its closing them) would keep an
	 * epoll registration alive past the connection. */
	watch_del(&sc->ev, sc->fd >= 0);
	if (sc->fd >= 0 && why == SERVER_CLOSE_DONE && sc->linger &&
	    shutdown(sc->fd, SHUT_WR) == 0) {
		sc->linger_fd = sc->fd;		/* server_take_linger() */
		sc->fd = -1;
	}
	if (sc->fd >= 0) {
		close(sc->fd);
		sc->fd = -1;
	}
}

int
server_take_linger(struct server_conn *sc)
{
	int fd = sc->linger_fd;

	sc->linger_fd = -1;
	return fd;
}

void
server_busy(struct server_conn *sc)
{
	sc->state = SERVER_BUSY;
	sc->deadline_ms = 0;
	buf_release(&sc->in);	/* read again only to see a hang-up */
}

void
server_gate(struct server_conn *sc, int gate)
{
	sc->gated = gate;
}

static short plain_interest(const struct server_conn *sc);

short
server_interest(const struct server_conn *sc)
{
	short want = plain_interest(sc);

	if (sc->tls == NULL || sc->state == SERVER_CLOSED) {
		return want;
	}
	/* The engine says what the socket must do. */
	return tls_interest(sc->tls, want);
}

static short
plain_interest(const struct server_conn *sc)
{
	short ev = 0;

	if (sc->state == SERVER_CLOSED) {
		return 0;
	}
	if ((buf_len(&sc->out) > 0 || sc->body_left > 0) && !sc->gated) {
		ev |= POLLOUT;	/* gated: nothing may be written yet */
	}
	switch (sc->state) {
	case SERVER_READ_HEAD:
	case SERVER_READ_BODY:
	case SERVER_BUSY:
		/* In BUSY we still watch for the client going away, so its
		 * upstream is closed at once; pipelined bytes wait in in. */
		if (buf_len(&sc->in) < buf_limit(&sc->in)) {
			ev |= POLLIN;
		}
		break;
	default:
		break;
	}
	return ev;
}

int
server_flush(struct server_conn *sc, uint64_t now_ms)
{
	if (sc->gated) {
		return 0;	/* the owner holds the answer back */
	}
	while (buf_len(&sc->out) > 0 || sc->body_left > 0) {
		struct iovec iov[2];
		int n = 0;
		ssize_t w;
		size_t from_out;

		if (buf_len(&sc->out) > 0) {
			iov[n].iov_base = buf_head(&sc->out);
			iov[n].iov_len = buf_len(&sc->out);
			n++;
		}
		if (sc->body_left > 0) {
			iov[n].iov_base = (void *)(uintptr_t)sc->body_ptr;
			iov[n].iov_len = sc->body_left;
			n++;
		}
		w = sc->tls != NULL ? tls_writev(sc->tls, sc->fd, iov, n) :
		    net_sendv(sc->fd, iov, n);
		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				break;
			}
			server_close(sc, SERVER_CLOSE_WRITE_FAILED);
			return -1;
		}
		sc->last_io_ms = now_ms;
		from_out = buf_len(&sc->out);
		if ((size_t)w < from_out) {
			buf_consume(&sc->out, (size_t)w);
			continue;
		}
		buf_consume(&sc->out, from_out);
		w -= (ssize_t)from_out;
		if (w > 0) {	/* body_ptr may be NULL: no NULL + 0 */
			sc->body_ptr += w;
			sc->body_left -= (size_t)w;
		}
	}
	if (sc->tls != NULL && tls_flush_pending(sc->tls, sc->fd) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK) {
		server_close(sc, SERVER_CLOSE_WRITE_FAILED);
		return -1;
	}
	if (sc->state == SERVER_BUSY || sc->state == SERVER_DRAIN) {
		/* A client that stops reading is bounded by `idle`. */
		sc->deadline_ms = (buf_len(&sc->out) > 0 || sc->body_left > 0) ?
		    sc->last_io_ms + sc->conf->idle_timeout_ms : 0;
	}
	return 0;
}

/* Read into in: once, or again with the whole room (what the fixed
 * buffer took in one read) while a head fills the first size, and always
 * for a body on its way: a request takes the reads it took with the fixed
 * buffer (a small form is held whole, a head too large is refused after
 * reading it, not reset). The room goes back with the buffer once the
 * request is in. Returns 1 when bytes arrived, 0 when nothing more can be
 * read now (EAGAIN or no room), -1 when the connection ended. */
static int
read_some(struct server_conn *sc, uint64_t now_ms)
{
	int got = 0;
	ssize_t r;

	do {
		if ((got || sc->state == SERVER_READ_BODY) &&
		    sc->in.cap < buf_limit(&sc->in)) {
			(void)buf_reserve(&sc->in, buf_limit(&sc->in) -
			    buf_len(&sc->in));
		}
		if (buf_make_room(&sc->in) == 0) {
			return got;
		}
		do {
			r = sc->tls != NULL ? tls_read(sc->tls, sc->fd,
			    buf_tail(&sc->in), buf_room(&sc->in)) :
			    recv(sc->fd, buf_tail(&sc->in), buf_room(&sc->in),
			    0);
		} while (r < 0 && errno == EINTR);
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return got;
		}
		if (r <= 0) {
			if (got) {
				return 1;	/* the end, on the next call */
			}
			server_close(sc, r < 0 ? SERVER_CLOSE_READ_FAILED :
			    SERVER_CLOSE_PEER);
			return -1;
		}
		buf_produced(&sc->in, (size_t)r);
		sc->last_io_ms = now_ms;
		got = 1;
	} while (buf_room(&sc->in) == 0 && sc->state == SERVER_READ_HEAD &&
	    sc->in.cap < buf_limit(&sc->in));
	return 1;
}

static void
rebase(struct view *v, const char *from, const char *to)
{
	if (v->p != NULL) {
		v->p = to + (v->p - from);
	}
}

/* Copy the parsed head into req.mem (sized for the body as well) and
 * point every view at the copy. */
static int
take_head(struct server_conn *sc, size_t head_len)
{
	struct server_request *rq = &sc->req;
	struct http_request *h = &rq->head;
	const char *from = (const char *)buf_head(&sc->in);
	size_t cap = head_len, i, q;

	if (h->has_content_length) {
		cap += h->content_length < SERVER_PREALLOC ?
		    (size_t)h->content_length : SERVER_PREALLOC;
	} else if (h->chunked) {
		cap += SERVER_CHUNKED_START;
	}
	if (sc->spare_mem != NULL && sc->spare_cap >= cap) {
		rq->mem = sc->spare_mem;
		cap = sc->spare_cap;
		sc->spare_mem = NULL;
	} else {
		rq->mem = malloc(cap + 1);
		if (rq->mem == NULL) {
			return -1;
		}
	}
	rq->mem_cap = cap;
	memcpy(rq->mem, from, head_len);
	rq->head_len = head_len;
	h->headers = http_fields_keep(&sc->fields, &sc->fields_cap, h->headers,
	    h->nheaders);
	if (h->headers == NULL) {
		h->nheaders = 0;
		return -1;
	}
	rebase(&h->method, from, rq->mem);
	rebase(&h->target, from, rq->mem);
	rebase(&h->host, from, rq->mem);
	rebase(&h->authorization, from, rq->mem);
	rebase(&h->x_api_key, from, rq->mem);
	rebase(&h->connection, from, rq->mem);
	for (i = 0; i < h->nheaders; i++) {
		rebase(&h->headers[i].name, from, rq->mem);
		rebase(&h->headers[i].value, from, rq->mem);
	}
	buf_consume(&sc->in, head_len);
	rq->path = h->target;
	rq->query.p = h->target.p + h->target.n;
	rq->query.n = 0;
	for (q = 0; q < h->target.n; q++) {
		if (h->target.p[q] == '?') {
			rq->path.n = q;
			rq->query.p = h->target.p + q;
			rq->query.n = h->target.n - q;
			break;
		}
	}
	return 0;
}

static int
parse_head(struct server_conn *sc, uint64_t now_ms)
{
	struct http_request *h = &sc->req.head;
	int r;

	if (buf_len(&sc->in) == 0) {
		return HTTP_PARTIAL;
	}
	if (!sc->got_bytes) {
		/* The head must now arrive within `header`. */
		sc->got_bytes = 1;
		sc->deadline_ms = now_ms + sc->conf->header_timeout_ms;
	}
	h->headers = head_fields;
	r = http_parse_request((const char *)buf_head(&sc->in),
	    buf_len(&sc->in), (size_t)sc->conf->max_header, h);
	if (r <= 0 || (h->has_content_length &&
	    h->content_length > sc->conf->max_body)) {
		h->headers = NULL;	/* not taken: not its own */
		h->nheaders = 0;
	}
	if (r == HTTP_PARTIAL) {
		return r;
	}
	util_request_id(sc->req.id, sizeof(sc->req.id));
	sc->req.started_ms = now_ms;
	if (r == HTTP_BAD) {
		sc->close_after = 1;
		server_error(sc, h->error_status, h->error_code,
		    h->error_message, now_ms);
		return r;
	}
	if (h->has_content_length && h->content_length > sc->conf->max_body) {
		sc->close_after = 1;
		server_error(sc, 413, "request_too_large",
		    "request body is larger than max_body", now_ms);
		return HTTP_BAD;
	}
	if (!h->keep_alive) {
		sc->close_after = 1;
	}
	if (take_head(sc, (size_t)r) < 0) {
		sc->close_after = 1;
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return HTTP_BAD;
	}
	sc->deadline_ms = 0;
	return r;
}

/* The next deadline while a body arrives. */
static uint64_t
body_deadline(const struct server_conn *sc, uint64_t now_ms)
{
	uint64_t d = now_ms + sc->conf->idle_timeout_ms;

	return sc->body_deadline_ms < d ? sc->body_deadline_ms : d;
}

void
server_accept_head(struct server_conn *sc, uint64_t now_ms)
{
	const struct http_request *h = &sc->req.head;

	if (h->expect_continue && (h->chunked || h->content_length > 0)) {
		/* RFC 9110 §10.1.1: the head is acceptable, send the body. */
		(void)buf_puts(&sc->out, "HTTP/1.1 100 Continue\r\n\r\n");
	}
	sc->state = SERVER_READ_BODY;
	/* The body must arrive whole within `body`, and never stall longer
	 * than `idle` (SPEC §10): a trickle of bytes keeps nothing open. */
	sc->body_deadline_ms = now_ms + sc->conf->body_timeout_ms;
	sc->deadline_ms = body_deadline(sc, now_ms);
}

static int grow_body(struct server_conn *sc, size_t need);

void
server_accept_head_stream(struct server_conn *sc, uint64_t now_ms)
{
	server_accept_head(sc, now_ms);
	sc->body_stream = 1;
	sc->body_open = 1;
}

int
server_body_room(struct server_conn *sc, size_t need)
{
	return grow_body(sc, need);
}

static long
body_failed(struct server_conn *sc, int status, const char *why)
{
	sc->body_error = why;
	sc->body_error_status = status;
	return -1;
}

long
server_body_take(struct server_conn *sc, char *dst, size_t cap, int *end)
{
	struct server_request *rq = &sc->req;
	const struct http_request *h = &rq->head;
	size_t got = 0;

	if (!h->chunked) {
		uint64_t want = h->content_length - sc->body_taken;
		size_t n = buf_len(&sc->in);

		n = n < cap ? n : cap;
		n = n < want ? n : (size_t)want;
		memcpy(dst, buf_head(&sc->in), n);
		buf_consume(&sc->in, n);
		sc->body_taken += n;
		got = n;
	} else {
		/* The decoder takes framing bytes as they come, so a step
		 * given no more input than dst has room for hands out no more
		 * data than fits. */
		while (buf_len(&sc->in) > 0 && !rq->chunked.done && got < cap) {
			const char *in = (const char *)buf_head(&sc->in);
			size_t n = buf_len(&sc->in), off = 0, dlen = 0;
			long r;

			if (n > cap - got) {
				n = cap - got;
			}
			r = http_chunked_step(&rq->chunked, in, n, &off, &dlen);
			if (r < 0) {
				return body_failed(sc, 400,
				    "invalid chunked request body");
			}
			if (dlen > cap - got) {
				return body_failed(sc, 400,
				    "invalid chunked request body");
			}
			if (sc->body_taken + dlen > sc->conf->max_body) {
				return body_failed(sc, 413, "request body is "
				    "larger than max_body");
			}
			memcpy(dst + got, in + off, dlen);
			got += dlen;
			sc->body_taken += dlen;
			buf_consume(&sc->in, (size_t)r);
			if (r == 0) {
				break;
			}
		}
	}
	*end = h->chunked ? rq->chunked.done :
	    sc->body_taken == h->content_length;
	if (*end) {
		sc->body_open = 0;
	}
	return (long)got;
}

static int
grow_body(struct server_conn *sc, size_t need)
{
	struct server_request *rq = &sc->req;
	size_t cap = rq->mem_cap;
	char *p;

	if (rq->head_len + rq->body_len + need <= cap) {
		return 0;
	}
	while (rq->head_len + rq->body_len + need > cap) {
		cap *= 2;
	}
	if (cap > rq->head_len + (size_t)sc->conf->max_body) {
		cap = rq->head_len + (size_t)sc->conf->max_body;
	}
	p = realloc(rq->mem, cap + 1);
	if (p == NULL) {
		return -1;
	}
	/* Views point into mem: move them with it. */
	if (p != rq->mem) {
		struct http_request *h = &rq->head;
		size_t i;

		rebase(&h->method, rq->mem, p);
		rebase(&h->target, rq->mem, p);
		rebase(&h->host, rq->mem, p);
		rebase(&h->authorization, rq->mem, p);
		rebase(&h->x_api_key, rq->mem, p);
		rebase(&h->connection, rq->mem, p);
		rebase(&rq->path, rq->mem, p);
		rebase(&rq->query, rq->mem, p);
		for (i = 0; i < h->nheaders; i++) {
			rebase(&h->headers[i].name, rq->mem, p);
			rebase(&h->headers[i].value, rq->mem, p);
		}
		rq->mem = p;
	}
	rq->mem_cap = cap;
	return 0;
}

/* Move body bytes from in to req.mem. Returns 1 when the body is
 * complete, 0 when more is needed, -1 after an error response. */
static int
take_body(struct server_conn *sc, uint64_t now_ms)
{
	struct server_request *rq = &sc->req;
	long n;
	int end;

	do {
		size_t room = buf_len(&sc->in);

		if (!rq->head.chunked &&
		    room > rq->head.content_length - rq->body_len) {
			room = (size_t)(rq->head.content_length - rq->body_len);
		}
		if (grow_body(sc, room) < 0) {
			sc->close_after = 1;
			server_error(sc, 503, "server_busy", "out of memory",
			    now_ms);
			return -1;
		}
		if (room > rq->mem_cap - rq->head_len - rq->body_len) {
			room = rq->mem_cap - rq->head_len - rq->body_len;
		}
		n = server_body_take(sc, rq->mem + rq->head_len + rq->body_len,
		    room, &end);
		if (n < 0) {
			sc->close_after = 1;
			server_error(sc, sc->body_error_status,
			    sc->body_error_status == 413 ? "request_too_large" :
			    "bad_request", sc->body_error, now_ms);
			return -1;
		}
		rq->body_len += (size_t)n;
	} while (n > 0 && !end);
	return end;
}

void
server_step(struct server_conn *sc, short revents, uint64_t now_ms)
{
	int can_read = (revents & (POLLIN | POLLHUP | POLLERR)) != 0;
	int r;

	if (sc->state == SERVER_CLOSED) {
		return;
	}
	if (revents & POLLNVAL) {
		server_close(sc, SERVER_CLOSE_INVALID_SOCKET);
		return;
	}
	if ((revents & POLLOUT) && server_flush(sc, now_ms) < 0) {
		return;
	}
	for (;;) {
		switch (sc->state) {
		case SERVER_READ_HEAD:
			r = parse_head(sc, now_ms);
			if (r > 0) {
				sc->state = SERVER_HEAD_READY;
				return;
			}
			if (r == HTTP_BAD) {
				break;	/* now DRAIN (or CLOSED) */
			}
			if (!can_read || read_some(sc, now_ms) <= 0) {
				return;
			}
			break;
		case SERVER_READ_BODY:
			if (sc->body_stream) {
				/* The owner takes the bytes as it can. */
				if (!can_read || read_some(sc, now_ms) <= 0) {
					return;
				}
				sc->deadline_ms = body_deadline(sc, now_ms);
				return;
			}
			r = take_body(sc, now_ms);
			if (r > 0) {
				sc->req.mem[sc->req.head_len +
				    sc->req.body_len] = '\0';
				sc->state = SERVER_BODY_READY;
				sc->deadline_ms = 0;
				return;
			}
			if (r < 0) {
				break;
			}
			if (!can_read || read_some(sc, now_ms) <= 0) {
				return;
			}
			sc->deadline_ms = body_deadline(sc, now_ms);
			break;
		case SERVER_BUSY:
			/* Only to notice a client that went away. */
			if (can_read) {
				(void)read_some(sc, now_ms);
			}
			return;
		case SERVER_DRAIN:
			if (buf_len(&sc->out) > 0 || sc->body_left > 0) {
				return;
			}
			if (sc->close_after) {
				server_close(sc, SERVER_CLOSE_DONE);
				return;
			}
			reset_request(sc);
			sc->served++;
			sc->state = SERVER_READ_HEAD;
			/* Waiting for the next request holds no buffer. */
			buf_release(&sc->in);
			buf_release(&sc->out);
			sc->deadline_ms = now_ms + sc->conf->keepalive_timeout_ms;
			if (buf_len(&sc->in) > 0) {
				/* A pipelined request is already here. */
				can_read = 0;
			}
			if (sc->tls != NULL && tls_pending(sc->tls) > 0) {
				/* Decrypted bytes no poll() would report. */
				can_read = 1;
			}
			break;
		default:
			return;
		}
	}
}

void
server_timeout(struct server_conn *sc, uint64_t now_ms)
{
	switch (sc->state) {
	case SERVER_READ_HEAD:
		if (!sc->got_bytes && sc->served > 0) {
			/* Idle keep-alive: nothing was asked, nothing to answer. */
			server_close(sc, SERVER_CLOSE_KEEPALIVE);
			return;
		}
		util_request_id(sc->req.id, sizeof(sc->req.id));
		sc->close_after = 1;
		server_error(sc, 408, "request_timeout",
		    "the request head did not arrive in time", now_ms);
		break;
	case SERVER_READ_BODY:
		sc->close_after = 1;
		server_error(sc, 408, "request_timeout",
		    sc->body_deadline_ms <= now_ms ? "the request body did not "
		    "arrive within the body timeout" : "the request body "
		    "stalled", now_ms);
		break;
	case SERVER_BUSY:
	case SERVER_DRAIN:
		server_close(sc, SERVER_CLOSE_STOPPED_READING);
		break;
	default:
		break;
	}
}

const char *
server_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 202: return "Accepted";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 422: return "Unprocessable Content";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return "Unknown";
	}
}

void
server_respond(struct server_conn *sc, int status, const char *content_type,
    const char *extra, const char *body, size_t len, int borrow,
    uint64_t now_ms)
{
	char head[512];
	int n;

	if (sc->state == SERVER_CLOSED) {
		return;
	}
	if (sc->req.id[0] == '\0') {
		util_request_id(sc->req.id, sizeof(sc->req.id));
	}
	sc->req.status = status;
	if (sc->body_open) {
		/* The rest of the body is unread: close after the answer,
		 * draining what still comes (server_take_linger()). */
		sc->close_after = 1;
		sc->linger = 1;
	}
	n = snprintf(head, sizeof(head),
	    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
	    "x-request-id: %s\r\n%s",
	    status, server_reason(status), content_type, len, sc->req.id,
	    sc->close_after ? "Connection: close\r\n" :
	    (sc->req.head.minor_version == 0 ?
	    "Connection: keep-alive\r\n" : ""));
	if (buf_append(&sc->out, head, (size_t)n) < 0 ||
	    (extra != NULL && buf_puts(&sc->out, extra) < 0) ||
	    buf_append(&sc->out, "\r\n", 2) < 0) {
		server_close(sc, SERVER_CLOSE_HEAD_TOO_BIG);
		return;
	}
	if (util_view_eq(sc->req.head.method, "HEAD")) {
		len = 0;	/* RFC 9110 9.3.2: the head alone */
	}
	if (borrow || len > buf_reserve(&sc->out, len)) {
		sc->body_ptr = body;
		sc->body_left = len;
	} else {
		(void)buf_append(&sc->out, body, len);
	}
	sc->state = SERVER_DRAIN;
	(void)server_flush(sc, now_ms);
	if (sc->state != SERVER_CLOSED) {
		sc->deadline_ms = (buf_len(&sc->out) || sc->body_left) ?
		    now_ms + sc->conf->idle_timeout_ms : 0;
	}
}

/* Anthropic's error types for a status (SPEC §5). */
static const char *
anthropic_type(int status, const char *code)
{
	switch (status) {
	case 401: return "authentication_error";
	case 403: return "permission_error";
	case 404: return "not_found_error";
	case 429: return "rate_limit_error";
	case 503: return strcmp(code, "server_busy") == 0 ?
	    "overloaded_error" : "api_error";
	default: return status >= 500 ? "api_error" :
	    "invalid_request_error";
	}
}

static const char *
openai_type(int status)
{
	switch (status) {
	case 401: return "authentication_error";
	case 402: return "insufficient_quota";
	case 404: return "not_found_error";
	case 429: return "rate_limit_error";
	default: return status >= 500 ? "server_error" :
	    "invalid_request_error";
	}
}

int
server_anthropic_path(struct view path)
{
	static const char p[] = "/v1/messages";
	size_t n = sizeof(p) - 1;

	return path.n >= n && memcmp(path.p, p, n) == 0 &&
	    (path.n == n || path.p[n] == '/');
}

size_t
server_error_body(struct view path, int status, const char *code,
    const char *message, char *out, size_t cap)
{
	size_t need = strlen(message) * 6 + strlen(code) + 128, m;
	long e;
	int n;

	if (cap < 128 + 2 * strlen(code)) {
		return 0;
	}
	if (need > cap) {
		message = code;	/* it cannot fit escaped: name the code */
	}
	if (server_anthropic_path(path)) {
		n = snprintf(out, cap, "{\"type\":\"error\",\"error\":{\"type\":"
		    "\"%s\",\"message\":\"", anthropic_type(status, code));
	} else {
		n = snprintf(out, cap, "{\"error\":{\"message\":\"");
	}
	m = (size_t)n;
	e = json_escape(message, strlen(message), out + m, cap - m);
	m += e < 0 ? 0 : (size_t)e;
	if (server_anthropic_path(path)) {
		n = snprintf(out + m, cap - m, "\"}}\n");
	} else {
		n = snprintf(out + m, cap - m, "\",\"type\":\"%s\",\"code\":"
		    "\"%s\"}}\n", openai_type(status), code);
	}
	return m + (size_t)n;
}

void
server_error(struct server_conn *sc, int status, const char *code,
    const char *message, uint64_t now_ms)
{
	server_error_with(sc, status, code, message, NULL, now_ms);
}

void
server_error_with(struct server_conn *sc, int status, const char *code,
    const char *message, const char *extra, uint64_t now_ms)
{
	char body[4096];
	size_t n = server_error_body(sc->req.path, status, code, message, body,
	    sizeof(body));

	/* A request whose body was not read leaves the framing unknown;
	 * what the client still sends is drained, not reset. */
	if (sc->state == SERVER_READ_HEAD || sc->state == SERVER_HEAD_READY ||
	    sc->state == SERVER_READ_BODY) {
		sc->close_after = 1;
		sc->linger = 1;
	}
	log_info("%s %.*s %.*s -> %d %s", sc->req.id[0] ? sc->req.id : "-",
	    (int)sc->req.head.method.n, sc->req.head.method.p ?
	    sc->req.head.method.p : "", (int)sc->req.path.n,
	    sc->req.path.p ? sc->req.path.p : "", status, code);
	server_respond(sc, status, "application/json", extra, body, n, 0,
	    now_ms);
}

void
server_response_done(struct server_conn *sc, uint64_t now_ms)
{
	if (sc->state == SERVER_CLOSED) {
		return;
	}
	if (sc->body_open) {
		sc->close_after = 1;	/* as in server_respond() */
		sc->linger = 1;
	}
	sc->state = SERVER_DRAIN;
	(void)server_flush(sc, now_ms);
}

int
server_tls_buffered(const struct server_conn *sc)
{
	return sc->tls != NULL && sc->fd >= 0 &&
	    (sc->state == SERVER_READ_HEAD || sc->state == SERVER_READ_BODY ||
	    (sc->state == SERVER_BUSY && sc->body_open)) &&
	    tls_pending(sc->tls) > 0 && buf_len(&sc->in) < buf_limit(&sc->in);
}
