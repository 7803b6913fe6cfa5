/* upstream: the relay's client side of HTTP/1.1 towards a provider.
 *
 * The request is written with writev() straight from borrowed pieces (the
 * client's body around a rewritten "model" value), so a 32 MiB request is
 * never copied. The response is read into one growable buffer (buf.h:
 * small at first, bounded by max_header plus the body window, given back
 * while the connection is parked); the caller
 * pulls decoded body bytes at its own pace, and we only ask poll() for
 * input while that buffer has room, which is what pushes a slow client's
 * backpressure back to the provider's TCP window.
 *
 * A connection from the pool may have been closed by the peer just as we
 * reused it; the caller learns that from `reused` with no response byte
 * (`got_bytes` 0) and retries on a fresh connection.
 *
 * While a request is going out we also watch for an answer that comes
 * before the end of the body (a 413 or 401 sent as soon as the head
 * arrived): then we stop sending, hand out that answer, and close the
 * connection after it (RFC 9112 section 9.5). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "net.h"
#include "tls.h"
#include "upstream.h"
#include "watch.h"
#include "util.h"

#define UPSTREAM_BODY_WINDOW 16384

/* The text of each reason: prefix, the detail, suffix. */
static const struct {
	const char *pre, *post;
} fail_text[] = {
	[UPSTREAM_FAIL_NONE] = { "", "" },
	[UPSTREAM_FAIL_CONNECT] = { "connect failed: ", "" },
	[UPSTREAM_FAIL_TLS] = { "TLS: ", "" },
	[UPSTREAM_FAIL_RESET_SENDING] = {
	    "connection reset while sending the request (", ")" },
	[UPSTREAM_FAIL_READ_SENDING] = { "", " while sending the request" },
	[UPSTREAM_FAIL_CLOSED_SENDING] = {
	    "connection closed while sending the request", "" },
	[UPSTREAM_FAIL_HUP_SENDING] = { "connection closed while sending", "" },
	[UPSTREAM_FAIL_READ_BEFORE_HEAD] = { "", " before the response head" },
	[UPSTREAM_FAIL_CLOSED_BEFORE_HEAD] = {
	    "connection closed before the response head", "" },
	[UPSTREAM_FAIL_CLOSED_IN_HEAD] = {
	    "connection closed inside the response head", "" },
	[UPSTREAM_FAIL_HEAD_TOO_LARGE] = { "response head too large", "" },
	[UPSTREAM_FAIL_MALFORMED_HEAD] = { "malformed response head: ", "" },
	[UPSTREAM_FAIL_PROTOCOL_SWITCH] = { "unexpected protocol switch", "" },
	[UPSTREAM_FAIL_BODY_CUT] = {
	    "upstream closed the connection before the end of the body", "" },
	[UPSTREAM_FAIL_BAD_CHUNKED] = { "malformed chunked body from upstream",
	    "" },
	[UPSTREAM_FAIL_CHUNK_BOOKKEEPING] = { "chunk bookkeeping error", "" },
	[UPSTREAM_FAIL_NO_MEMORY] = { "out of memory", "" },
	[UPSTREAM_FAIL_TIMEOUT_CONNECT] = { "connect timeout after ", " ms" },
	[UPSTREAM_FAIL_TIMEOUT_HANDSHAKE] = { "TLS handshake timeout after ",
	    " ms (connect)" },
	[UPSTREAM_FAIL_TIMEOUT_SENDING] = { "timeout while sending the request",
	    "" },
	[UPSTREAM_FAIL_TIMEOUT_FIRST_BYTE] = { "no response head within ",
	    " ms (first_byte)" },
	[UPSTREAM_FAIL_TIMEOUT_IDLE] = { "upstream idle for ", " ms" },
};

/* The fields of the head being parsed (parsing is synchronous: one array
 * serves every connection); a head that is complete keeps a copy of the
 * ones it has until its body starts (keep_fields()). */
static struct http_header head_fields[HTTP_MAX_HEADERS];

int
upstream_fail_is_timeout(enum upstream_fail f)
{
	return f >= UPSTREAM_FAIL_TIMEOUT_CONNECT &&
	    f <= UPSTREAM_FAIL_TIMEOUT_IDLE;
}

/* FAILED for reason f; detail (or NULL) completes its text. The first
 * failure sticks. */
static void
fail(struct upstream *u, enum upstream_fail f, const char *detail)
{
	if (u->state == UPSTREAM_FAILED || u->state == UPSTREAM_CLOSED) {
		return;
	}
	u->fail = f;
	snprintf(u->error, sizeof(u->error), "%s%.120s%s", fail_text[f].pre,
	    detail != NULL ? detail : "", fail_text[f].post);
	u->state = UPSTREAM_FAILED;
	u->deadline_ms = 0;
}

/* A timeout of ms milliseconds. */
static void
fail_ms(struct upstream *u, enum upstream_fail f, uint64_t ms)
{
	char n[24];

	n[util_u64_dec(ms, n)] = '\0';
	fail(u, f, n);
}

/* Forget the head's fields (its body starts, or it is dropped). */
static void
drop_fields(struct upstream *u)
{
	free(u->fields);
	u->fields = NULL;
	u->fields_cap = 0;
	u->resp.headers = NULL;
	u->resp.nheaders = 0;
}

struct upstream *
upstream_connect(const struct net_addr *a, size_t provider,
    const struct conf *c, const struct tls_anchors *ta,
    const char *server_name, uint64_t now_ms, char *err, size_t errlen)
{
	struct upstream *u;
	size_t cap = (size_t)c->max_header + UPSTREAM_BODY_WINDOW;

	u = calloc(1, sizeof(*u));
	if (u == NULL) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	buf_init_grow(&u->in, cap);
	u->provider = provider;
	u->conf = c;
	if (ta != NULL) {
		u->tls = tls_client_new(ta, server_name, err, errlen);
		if (u->tls == NULL) {
			free(u);
			return NULL;
		}
	}
	u->fd = net_connect_start(a);
	if (u->fd < 0) {
		snprintf(err, errlen, "connect failed: %s", strerror(errno));
		tls_free(u->tls);
		free(u);
		return NULL;
	}
	u->state = UPSTREAM_CONNECTING;
	u->deadline_ms = now_ms + c->connect_timeout_ms;
	return u;
}

void
upstream_send(struct upstream *u, const struct iovec *iov, int iovcnt,
    struct view method, uint64_t now_ms)
{
	int i;

	u->iovcnt = 0;
	for (i = 0; i < iovcnt && u->iovcnt < UPSTREAM_IOV_MAX; i++) {
		if (iov[i].iov_len > 0) {
			u->iov[u->iovcnt++] = iov[i];
		}
	}
	u->method = method;
	u->more = 0;
	u->got_bytes = 0;
	u->cut = 0;
	u->eof = 0;
	u->fail = UPSTREAM_FAIL_NONE;
	u->error[0] = '\0';
	u->read_error[0] = '\0';
	u->requests++;
	drop_fields(u);
	/* The head's room back (the buffer is empty: a new request). */
	buf_set_max(&u->in, (size_t)u->conf->max_header + UPSTREAM_BODY_WINDOW);
	http_response_reset(&u->resp);
	if (u->state == UPSTREAM_IDLE) {
		u->reused = 1;
		u->state = UPSTREAM_SENDING;
		u->deadline_ms = now_ms + u->conf->idle_timeout_ms;
	}
}

void
upstream_expect_more(struct upstream *u)
{
	u->more = 1;
}

void
upstream_send_more(struct upstream *u, const char *p, size_t n, int last)
{
	u->iovcnt = 0;
	if (n > 0) {
		u->iov[0].iov_base = (void *)(uintptr_t)p;
		u->iov[0].iov_len = n;
		u->iovcnt = 1;
	}
	u->more = !last;
}

static short
plain_interest(const struct upstream *u)
{
	switch (u->state) {
	case UPSTREAM_CONNECTING:
		return POLLOUT;
	case UPSTREAM_SENDING:
		return u->iovcnt > 0 ? POLLOUT | POLLIN : POLLIN;
	case UPSTREAM_READ_HEAD:
	case UPSTREAM_IDLE:
		return POLLIN;
	case UPSTREAM_BODY:
		/* At EOF the socket has nothing more: asking would wake
		 * every poll() at once while a slow client drains. */
		if (u->eof) {
			return 0;
		}
		return buf_len(&u->in) < buf_limit(&u->in) ? POLLIN : 0;
	default:
		return 0;
	}
}

short
upstream_interest(const struct upstream *u)
{
	short want = plain_interest(u);

	if (u->tls == NULL || u->state == UPSTREAM_CONNECTING || want == 0) {
		return want;
	}
	/* Under TLS the engine decides what the socket must do. */
	return tls_interest(u->tls, want);
}

static ssize_t
io_writev(struct upstream *u, const struct iovec *iov, int n)
{
	if (u->tls != NULL) {
		return tls_writev(u->tls, u->fd, iov, n);
	}
	return net_sendv(u->fd, iov, n);
}

static ssize_t
io_read(struct upstream *u, void *p, size_t n)
{
	if (u->tls != NULL) {
		return tls_read(u->tls, u->fd, p, n);
	}
	/* recv(), not read(): a socket needs none of the VFS read path. */
	return recv(u->fd, p, n, 0);
}

static const char *
io_error(const struct upstream *u, int e)
{
	if (u->tls != NULL && tls_error(u->tls) != NULL) {
		return tls_error(u->tls);
	}
	return strerror(e);
}

static void
send_some(struct upstream *u, uint64_t now_ms)
{
	while (u->iovcnt > 0) {
		ssize_t w = io_writev(u, u->iov, u->iovcnt);
		int i;

		if (w < 0) {
			if (errno == EINTR) {
				continue;
			}
			if (errno == EAGAIN || errno == EWOULDBLOCK) {
				return;
			}
			if (u->tls != NULL && !tls_handshake_done(u->tls)) {
				fail(u, UPSTREAM_FAIL_TLS, io_error(u, errno));
			} else {
				fail(u, UPSTREAM_FAIL_RESET_SENDING,
				    io_error(u, errno));
			}
			return;
		}
		u->deadline_ms = now_ms + u->conf->idle_timeout_ms;
		for (i = 0; i < u->iovcnt && w > 0; i++) {
			if ((size_t)w < u->iov[i].iov_len) {
				u->iov[i].iov_base =
				    (char *)u->iov[i].iov_base + w;
				u->iov[i].iov_len -= (size_t)w;
				w = 0;
				break;
			}
			w -= (ssize_t)u->iov[i].iov_len;
			u->iov[i].iov_len = 0;
		}
		while (u->iovcnt > 0 && u->iov[0].iov_len == 0) {
			memmove(&u->iov[0], &u->iov[1],
			    (size_t)(u->iovcnt - 1) * sizeof(u->iov[0]));
			u->iovcnt--;
		}
	}
	if (u->tls != NULL && tls_flush_pending(u->tls, u->fd) < 0) {
		if (errno != EAGAIN && errno != EWOULDBLOCK) {
			fail(u, UPSTREAM_FAIL_TLS, io_error(u, errno));
		}
		/* Records still queued: tls_interest asks for POLLOUT while
		 * we already wait for the answer. */
	}
	if (u->more) {
		return;	/* the owner has more of the body to give */
	}
	u->state = UPSTREAM_READ_HEAD;
	u->deadline_ms = now_ms + u->conf->first_byte_timeout_ms;
}

/* Read once into in. Returns 1 on bytes, 0 on EAGAIN/no room, -1 on EOF
 * or error (eof set; read_error set for errors). */
static int
read_some(struct upstream *u)
{
	ssize_t r;

	if (buf_make_room(&u->in) == 0) {
		return 0;
	}
	do {
		r = io_read(u, buf_tail(&u->in), buf_room(&u->in));
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return 0;
		}
		u->eof = 1;
		if (u->tls != NULL && !tls_handshake_done(u->tls)) {
			snprintf(u->read_error, sizeof(u->read_error),
			    "TLS: %s", io_error(u, errno));
		} else {
			snprintf(u->read_error, sizeof(u->read_error),
			    "connection reset (%s)", io_error(u, errno));
		}
		return -1;
	}
	if (r == 0) {
		u->eof = 1;
		return -1;
	}
	u->got_bytes = 1;
	buf_produced(&u->in, (size_t)r);
	return 1;
}

/* A complete head keeps its own copy of its fields. Returns 0, or -1
 * (FAILED: no memory). */
static int
keep_fields(struct upstream *u)
{
	u->resp.headers = http_fields_keep(&u->fields, &u->fields_cap,
	    head_fields, u->resp.nheaders);
	if (u->resp.headers == NULL) {
		u->resp.nheaders = 0;
		fail(u, UPSTREAM_FAIL_NO_MEMORY, NULL);
		return -1;
	}
	return 0;
}

static void
parse_head(struct upstream *u, uint64_t now_ms)
{
	for (;;) {
		int r;

		u->resp.headers = head_fields;
		r = http_parse_response((const char *)buf_head(&u->in),
		    buf_len(&u->in), (size_t)u->conf->max_header, &u->resp);
		if (r == HTTP_PARTIAL || r == HTTP_BAD) {
			u->resp.headers = NULL;
			u->resp.nheaders = 0;
		}
		if (r == HTTP_PARTIAL) {
			return;
		}
		if (r == HTTP_BAD) {
			fail(u, UPSTREAM_FAIL_MALFORMED_HEAD, u->resp.error);
			return;
		}
		if (u->resp.status >= 100 && u->resp.status < 200) {
			u->resp.headers = NULL;	/* not kept */
			u->resp.nheaders = 0;
			if (u->resp.status == 101) {
				fail(u, UPSTREAM_FAIL_PROTOCOL_SWITCH, NULL);
				return;
			}
			/* Interim responses (100 Continue, 103) are not
			 * forwarded: the client gets the final one. */
			buf_consume(&u->in, (size_t)r);
			continue;
		}
		if (keep_fields(u) < 0) {
			return;
		}
		u->head_len = (size_t)r;
		u->state = UPSTREAM_HEAD;
		u->deadline_ms = now_ms + u->conf->idle_timeout_ms;
		return;
	}
}

/* The last read (r) found no complete head: an error, an EOF, or a head
 * that outgrew its room. */
static void
head_failed(struct upstream *u, int r, enum upstream_fail read_err,
    enum upstream_fail closed)
{
	if (r < 0) {
		if (u->read_error[0] != '\0') {
			fail(u, read_err, u->read_error);
		} else if (u->got_bytes) {
			fail(u, UPSTREAM_FAIL_CLOSED_IN_HEAD, NULL);
		} else {
			fail(u, closed, NULL);
		}
		return;
	}
	if (buf_len(&u->in) >= u->conf->max_header) {
		fail(u, UPSTREAM_FAIL_HEAD_TOO_LARGE, NULL);
	}
}

/* SENDING: an answer may arrive before the request is complete (a server
 * that refuses a body says so as soon as it has the head). An interim 1xx
 * is skipped; a final answer ends the request: the rest of it is not sent
 * (the server has decided without it) and the connection is not reused.
 * Under TLS this reads between records: the half-duplex engine cannot
 * receive while a record of the request waits to be sent (tls.c). */
static void
watch_early(struct upstream *u, short revents, uint64_t now_ms)
{
	int r;

	if (u->tls != NULL) {
		if (!tls_handshake_done(u->tls) ||
		    (!(revents & (POLLIN | POLLHUP | POLLERR)) &&
		    tls_pending(u->tls) == 0)) {
			return;
		}
	} else if (!(revents & (POLLIN | POLLHUP | POLLERR))) {
		return;
	}
	while ((r = read_some(u)) > 0) {
		parse_head(u, now_ms);
		if (u->state != UPSTREAM_SENDING) {
			break;
		}
	}
	if (u->state == UPSTREAM_HEAD) {
		u->cut = 1;
		u->iovcnt = 0;
		return;
	}
	if (u->state != UPSTREAM_SENDING) {
		return;
	}
	head_failed(u, r, UPSTREAM_FAIL_READ_SENDING,
	    UPSTREAM_FAIL_CLOSED_SENDING);
}

void
upstream_step(struct upstream *u, short revents, uint64_t now_ms)
{
	int r;

	switch (u->state) {
	case UPSTREAM_CONNECTING:
		if (!(revents & (POLLOUT | POLLERR | POLLHUP))) {
			return;
		}
		if (net_connect_result(u->fd) < 0) {
			fail(u, UPSTREAM_FAIL_CONNECT, strerror(errno));
			return;
		}
		u->state = UPSTREAM_SENDING;
		if (u->tls == NULL) {
			u->deadline_ms = now_ms + u->conf->idle_timeout_ms;
		}
		/* Under TLS `connect` also bounds the handshake: the
		 * deadline set at connect stays until data flows. */
		/* fall through */
	case UPSTREAM_SENDING:
		if (u->tls != NULL && u->iovcnt == 0 &&
		    tls_flush_pending(u->tls, u->fd) < 0 &&
		    errno != EAGAIN && errno != EWOULDBLOCK) {
			fail(u, UPSTREAM_FAIL_TLS, io_error(u, errno));
			return;
		}
		send_some(u, now_ms);
		if (u->state == UPSTREAM_SENDING) {
			watch_early(u, revents, now_ms);
		}
		if (u->state != UPSTREAM_READ_HEAD) {
			if (u->state == UPSTREAM_SENDING &&
			    (revents & (POLLHUP | POLLERR))) {
				fail(u, UPSTREAM_FAIL_HUP_SENDING, NULL);
			}
			return;
		}
		/* fall through */
	case UPSTREAM_READ_HEAD:
		if (u->tls != NULL && (revents & POLLOUT) &&
		    tls_flush_pending(u->tls, u->fd) < 0 &&
		    errno != EAGAIN && errno != EWOULDBLOCK) {
			fail(u, UPSTREAM_FAIL_TLS, io_error(u, errno));
			return;
		}
		if (!(revents & (POLLIN | POLLHUP | POLLERR))) {
			return;	/* nothing to read yet: wait for poll */
		}
		for (;;) {
			r = read_some(u);
			if (r <= 0) {
				break;
			}
			parse_head(u, now_ms);
			if (u->state != UPSTREAM_READ_HEAD) {
				return;
			}
		}
		head_failed(u, r, UPSTREAM_FAIL_READ_BEFORE_HEAD,
		    UPSTREAM_FAIL_CLOSED_BEFORE_HEAD);
		return;
	case UPSTREAM_BODY:
		if (u->tls != NULL && (revents & POLLOUT)) {
			(void)tls_flush_pending(u->tls, u->fd);
		}
		if (revents & (POLLIN | POLLHUP | POLLERR)) {
			while ((r = read_some(u)) > 0) {
				u->deadline_ms = now_ms +
				    u->conf->idle_timeout_ms;
				if (u->tls == NULL) {
					break;
				}
			}
		}
		return;
	case UPSTREAM_IDLE:
		/* An idle connection has nothing to say: data or EOF means
		 * the peer closed or broke it. */
		if (revents & (POLLIN | POLLHUP | POLLERR)) {
			upstream_close(u);
		}
		return;
	default:
		return;
	}
}

void
upstream_timeout(struct upstream *u, uint64_t now_ms)
{
	(void)now_ms;
	switch (u->state) {
	case UPSTREAM_CONNECTING:
		fail_ms(u, UPSTREAM_FAIL_TIMEOUT_CONNECT,
		    u->conf->connect_timeout_ms);
		break;
	case UPSTREAM_SENDING:
		if (u->tls != NULL && !tls_handshake_done(u->tls)) {
			fail_ms(u, UPSTREAM_FAIL_TIMEOUT_HANDSHAKE,
			    u->conf->connect_timeout_ms);
		} else {
			fail(u, UPSTREAM_FAIL_TIMEOUT_SENDING, NULL);
		}
		break;
	case UPSTREAM_READ_HEAD:
		fail_ms(u, UPSTREAM_FAIL_TIMEOUT_FIRST_BYTE,
		    u->conf->first_byte_timeout_ms);
		break;
	case UPSTREAM_IDLE:
		upstream_close(u);
		break;
	default:
		fail_ms(u, UPSTREAM_FAIL_TIMEOUT_IDLE,
		    u->conf->idle_timeout_ms);
		break;
	}
}

void
upstream_start_body(struct upstream *u, uint64_t now_ms)
{
	const struct http_response *h = &u->resp;

	drop_fields(u);		/* resp's scalars stay */
	buf_consume(&u->in, u->head_len);
	u->head_len = 0;
	/* The body only passes through: read it in a window of
	 * UPSTREAM_BODY_WINDOW bytes at the front of the buffer (the head's
	 * room comes back with the next request). A client that reads slowly
	 * then holds back at most that much here, and a stream never touches
	 * the rest of the buffer. resp's views die here (the caller is done
	 * with them). */
	buf_set_max(&u->in, UPSTREAM_BODY_WINDOW);
	memset(&u->chunked, 0, sizeof(u->chunked));
	http_chunked_init(&u->chunked);
	if (http_response_has_no_body(h->status, u->method)) {
		u->framing = UPSTREAM_BODY_NONE;
	} else if (h->chunked) {
		u->framing = UPSTREAM_BODY_CHUNKED;
	} else if (h->has_content_length) {
		u->framing = UPSTREAM_BODY_LENGTH;
		u->remaining = h->content_length;
	} else {
		u->framing = UPSTREAM_BODY_CLOSE;
	}
	u->state = UPSTREAM_BODY;
	u->deadline_ms = now_ms + u->conf->idle_timeout_ms;
	if (u->framing == UPSTREAM_BODY_NONE ||
	    (u->framing == UPSTREAM_BODY_LENGTH && u->remaining == 0)) {
		u->state = UPSTREAM_DONE;
		u->deadline_ms = 0;
	}
}

size_t
upstream_read_body(struct upstream *u, char *dst, size_t cap,
    uint64_t now_ms)
{
	size_t got = 0;

	(void)now_ms;
	while (u->state == UPSTREAM_BODY && got < cap) {
		size_t avail = buf_len(&u->in);
		size_t n;

		if (avail == 0 && u->tls != NULL && !u->eof &&
		    tls_pending(u->tls) > 0 && read_some(u) > 0) {
			continue;	/* decrypted bytes no poll would report */
		}
		if (avail == 0) {
			if (u->eof) {
				if (u->framing == UPSTREAM_BODY_CLOSE) {
					u->state = UPSTREAM_DONE;
					u->deadline_ms = 0;
				} else {
					fail(u, UPSTREAM_FAIL_BODY_CUT, NULL);
				}
			}
			break;
		}
		switch (u->framing) {
		case UPSTREAM_BODY_LENGTH:
			n = avail;
			if (n > cap - got) {
				n = cap - got;
			}
			if (n > u->remaining) {
				n = (size_t)u->remaining;
			}
			memcpy(dst + got, buf_head(&u->in), n);
			got += n;
			buf_consume(&u->in, n);
			u->remaining -= n;
			if (u->remaining == 0) {
				u->state = UPSTREAM_DONE;
				u->deadline_ms = 0;
			}
			break;
		case UPSTREAM_BODY_CHUNKED: {
			size_t off = 0, dlen = 0;
			long r;

			/* Never let the decoder hand out more data than dst
			 * can take: it resumes mid-chunk on the next call. */
			n = avail < cap - got ? avail : cap - got;
			r = http_chunked_step(&u->chunked,
			    (const char *)buf_head(&u->in), n, &off, &dlen);
			if (r < 0) {
				fail(u, UPSTREAM_FAIL_BAD_CHUNKED, NULL);
				return got;
			}
			if (dlen > cap - got) {
				/* Defensive: cannot happen with the bound. */
				fail(u, UPSTREAM_FAIL_CHUNK_BOOKKEEPING, NULL);
				return got;
			}
			memcpy(dst + got, buf_head(&u->in) + off, dlen);
			got += dlen;
			buf_consume(&u->in, (size_t)r);
			if (u->chunked.done) {
				u->state = UPSTREAM_DONE;
				u->deadline_ms = 0;
			} else if (r == 0) {
				return got;
			}
			break;
		}
		case UPSTREAM_BODY_CLOSE:
			n = avail < cap - got ? avail : cap - got;
			memcpy(dst + got, buf_head(&u->in), n);
			got += n;
			buf_consume(&u->in, n);
			break;
		default:
			u->state = UPSTREAM_DONE;
			break;
		}
	}
	return got;
}

int
upstream_reusable(const struct upstream *u)
{
	return u->state == UPSTREAM_DONE && u->resp.keep_alive && !u->eof &&
	    !u->cut && buf_len(&u->in) == 0 &&
	    u->framing != UPSTREAM_BODY_CLOSE &&
	    (u->tls == NULL || tls_quiet(u->tls));
}

void
upstream_park(struct upstream *u, uint64_t now_ms)
{
	u->state = UPSTREAM_IDLE;
	u->iovcnt = 0;
	u->idle_since_ms = now_ms;
	u->deadline_ms = now_ms + u->conf->keepalive_timeout_ms;
	buf_release(&u->in);	/* parked: empty (upstream_reusable()) */
}

void
upstream_close(struct upstream *u)
{
	tls_free(u->tls);
	u->tls = NULL;
	watch_del(&u->ev, u->fd >= 0);	/* before the close: see server.c */
	if (u->fd >= 0) {
		close(u->fd);
		u->fd = -1;
	}
	u->state = UPSTREAM_CLOSED;
	u->deadline_ms = 0;
}

void
upstream_free(struct upstream *u)
{
	if (u != NULL) {
		tls_free(u->tls);
		if (u->fd >= 0) {
			close(u->fd);
		}
		buf_free(&u->in);
		free(u->fields);
		free(u);
	}
}

int
upstream_tls_buffered(const struct upstream *u)
{
	return u->tls != NULL && u->fd >= 0 &&
	    (u->state == UPSTREAM_READ_HEAD || u->state == UPSTREAM_BODY ||
	    (u->state == UPSTREAM_SENDING && tls_handshake_done(u->tls))) &&
	    tls_pending(u->tls) > 0 && buf_len(&u->in) < buf_limit(&u->in);
}
