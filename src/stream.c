/* stream: a response body from upstream to client (see stream.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "server.h"
#include "stream.h"
#include "upstream.h"

#define USAGE_TAIL 4096		/* usage is read from this window */
#define EV_START 2048		/* first size of the SSE event buffer */
#define EV_CAP 32768		/* an SSE event larger than this passes
				 * through unfiltered */

void
stream_reset(struct stream *s)
{
	char *ev = s->ev, *tail = s->tail;
	size_t ev_cap = s->ev_cap;

	memset(s, 0, sizeof(*s));
	s->ev = ev;
	s->ev_cap = ev_cap;
	s->tail = tail;
}

void
stream_free(struct stream *s)
{
	free(s->ev);
	free(s->tail);
	s->ev = NULL;
	s->tail = NULL;
	s->ev_cap = 0;
}

/* Keep the last USAGE_TAIL body bytes: every non-stream response shape
 * puts its usage object at the end. */
static void
keep_tail(struct stream *s, const char *p, size_t n)
{
	s->body_bytes += n;
	if (s->tail == NULL && (s->tail = malloc(USAGE_TAIL)) == NULL) {
		return;	/* no usage then: charged on the estimate */
	}
	if (n >= USAGE_TAIL) {
		memcpy(s->tail, p + n - USAGE_TAIL, USAGE_TAIL);
		s->tail_len = USAGE_TAIL;
		return;
	}
	if (s->tail_len + n > USAGE_TAIL) {
		size_t drop = s->tail_len + n - USAGE_TAIL;

		memmove(s->tail, s->tail + drop, s->tail_len - drop);
		s->tail_len -= drop;
	}
	memcpy(s->tail + s->tail_len, p, n);
	s->tail_len += n;
}

static void
note_usage(struct stream *s, const char *p, size_t n)
{
	struct json_usage u;

	if (json_find_usage(p, n, &u) && u.found) {
		/* Anthropic splits usage over message_start (input) and
		 * message_delta (output, cumulative): keep the latest of
		 * each that is present. */
		s->has_usage = 1;
		if (u.in > 0) {
			s->usage_in = u.in;
		}
		if (u.out > 0 || s->usage_out == 0) {
			s->usage_out = u.out;
		}
	}
}

void
stream_finish(struct stream *s)
{
	if (!s->sse && s->tail_len > 0) {
		note_usage(s, s->tail, s->tail_len);
	}
}

/* Append body bytes to the client's out buffer in the client's framing.
 * Returns 0, or -1 when out has no room for them now. */
static int
emit(struct stream *s, struct buf *o, const char *p, size_t n)
{
	char sz[20];
	int k;

	if (n == 0) {
		return 0;
	}
	if (buf_room(o) < n + 16) {
		buf_compact(o);
		if (buf_room(o) < n + 16) {
			return -1;
		}
	}
	if (s->client_chunked) {
		k = snprintf(sz, sizeof(sz), "%zx\r\n", n);
		(void)buf_append(o, sz, (size_t)k);
	}
	(void)buf_append(o, p, n);
	if (s->client_chunked) {
		(void)buf_append(o, "\r\n", 2);
	}
	return 0;
}

void
stream_error_event(struct stream *s, struct server_conn *sc, const char *why)
{
	char ev[512], esc[256], frame[16];
	int n;

	if (json_escape(why, strlen(why), esc, sizeof(esc)) < 0) {
		snprintf(esc, sizeof(esc), "upstream failed");
	}
	n = snprintf(ev, sizeof(ev), "event: error\ndata: {\"error\":{"
	    "\"message\":\"upstream stream broke: %s\",\"type\":"
	    "\"server_error\",\"code\":\"upstream_unavailable\"}}\n\n", esc);
	if (s->client_chunked) {
		int m = snprintf(frame, sizeof(frame), "%x\r\n", n);

		(void)buf_append(&sc->out, frame, (size_t)m);
		(void)buf_append(&sc->out, ev, (size_t)n);
		(void)buf_append(&sc->out, "\r\n", 2);
	} else {
		(void)buf_append(&sc->out, ev, (size_t)n);
	}
}

/* Length of the first complete SSE event in p[0..n) including its blank
 * line, or 0. */
static size_t
sse_event_len(const char *p, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++) {
		if (p[i] == '\n' && (p[i - 1] == '\n' ||
		    (i >= 2 && p[i - 1] == '\r' && p[i - 2] == '\n'))) {
			return i + 1;
		}
	}
	return 0;
}

/* The usage-only chunk of an OpenAI stream: empty choices plus usage. */
static int
is_usage_only_chunk(const char *p, size_t n)
{
	static const char needle[] = "\"choices\":[]";
	size_t i, k = sizeof(needle) - 1;

	for (i = 0; i + k <= n; i++) {
		if (memcmp(p + i, needle, k) == 0) {
			return 1;
		}
	}
	return 0;
}

/* SSE: assemble whole events so usage can be read from them and the
 * usage-only chunk we asked for can be hidden; each event is forwarded as
 * soon as it is complete. Returns 0, or -1 when out of memory. */
static int
pump_sse(struct stream *s, struct upstream *u, struct buf *o,
    uint64_t now_ms)
{
	if (s->ev == NULL) {
		/* Events are small; the buffer grows only for a big one. */
		s->ev_cap = EV_START;
		if ((s->ev = malloc(s->ev_cap)) == NULL) {
			return -1;
		}
	}
	for (;;) {
		size_t len, got;

		while ((len = sse_event_len(s->ev, s->ev_len)) > 0) {
			int had = s->has_usage;

			note_usage(s, s->ev, len);
			if (!(s->drop_usage && s->has_usage && !had &&
			    is_usage_only_chunk(s->ev, len))) {
				if (emit(s, o, s->ev, len) < 0) {
					return 0;	/* out is full: wait */
				}
			}
			s->body_bytes += len;
			memmove(s->ev, s->ev + len, s->ev_len - len);
			s->ev_len -= len;
		}
		if (s->ev_len == s->ev_cap && s->ev_cap < EV_CAP) {
			char *bigger = realloc(s->ev, s->ev_cap * 2);

			if (bigger != NULL) {
				s->ev = bigger;
				s->ev_cap *= 2;
			}
		}
		if (s->ev_len == s->ev_cap || (u->state == UPSTREAM_DONE &&
		    s->ev_len > 0)) {
			/* An oversized event, or a last one without its
			 * blank line: pass it on as it is. */
			note_usage(s, s->ev, s->ev_len);
			if (emit(s, o, s->ev, s->ev_len) < 0) {
				return 0;
			}
			s->body_bytes += s->ev_len;
			s->ev_len = 0;
		}
		if (u->state != UPSTREAM_BODY) {
			return 0;
		}
		got = upstream_read_body(u, s->ev + s->ev_len,
		    s->ev_cap - s->ev_len, now_ms);
		s->ev_len += got;
		if (got == 0 && u->state == UPSTREAM_BODY) {
			return 0;
		}
	}
}

/* Plain bodies: straight into out. A fixed-width chunk size line
 * ("0000001a\r\n" is valid chunk-size syntax) lets the data land in
 * place. Returns the bytes moved. */
static size_t
pump_plain(struct stream *s, struct upstream *u, struct buf *o,
    size_t room, uint64_t now_ms)
{
	static const char hex[] = "0123456789abcdef";
	char *dst = (char *)buf_tail(o);
	size_t got, v;
	int k;

	if (!s->client_chunked) {
		got = upstream_read_body(u, dst, room, now_ms);
		keep_tail(s, dst, got);
		buf_produced(o, got);
		return got;
	}
	got = upstream_read_body(u, dst + 10, room - 10 - 7, now_ms);
	if (got > 0) {
		for (k = 7, v = got; k >= 0; k--) {
			dst[k] = hex[v & 15];
			v >>= 4;
		}
		dst[8] = '\r';
		dst[9] = '\n';
		memcpy(dst + 10 + got, "\r\n", 2);
		keep_tail(s, dst + 10, got);
		buf_produced(o, got + 12);
	}
	return got;
}

/* One round: move decoded body bytes from the upstream to the client's
 * out buffer as far as it has room, then write what the socket takes. */
static enum stream_status
pump_once(struct stream *s, struct upstream *u, struct server_conn *sc,
    uint64_t now_ms, const char **why)
{
	struct buf *o = &sc->out;

	while (sc->state == SERVER_BUSY) {
		size_t got;

		if (u->state == UPSTREAM_FAILED) {
			*why = u->error;
			return STREAM_BROKEN;
		}
		if (s->sse) {
			if (pump_sse(s, u, o, now_ms) < 0) {
				*why = "out of memory";
				return STREAM_BROKEN;
			}
			if (u->state == UPSTREAM_FAILED) {
				continue;
			}
			if (s->ev_len > 0 || u->state == UPSTREAM_BODY) {
				break;
			}
		}
		if (u->state == UPSTREAM_DONE) {
			if (s->client_chunked &&
			    buf_append(o, "0\r\n\r\n", 5) < 0) {
				break;	/* wait for room */
			}
			return STREAM_DONE;
		}
		if (buf_len(o) == 0 || buf_room(o) < 64) {
			buf_compact(o);
		}
		if (buf_room(o) < 64) {
			break;
		}
		got = pump_plain(s, u, o, buf_room(o), now_ms);
		if (got == 0 && u->state == UPSTREAM_BODY) {
			break;
		}
	}
	if (sc->state != SERVER_CLOSED) {
		(void)server_flush(sc, now_ms);
	}
	return STREAM_WAIT;
}

enum stream_status
stream_pump(struct stream *s, struct upstream *u, struct server_conn *sc,
    uint64_t now_ms, const char **why)
{
	int rounds = 0;

	/* A round that empties out while body bytes are still buffered here
	 * (or decrypted inside TLS) must go again: no poll() event would
	 * come for bytes that already left their sockets. */
	for (;;) {
		enum stream_status st = pump_once(s, u, sc, now_ms, why);

		if (st != STREAM_WAIT) {
			return st;
		}
		if (sc->state != SERVER_BUSY || buf_len(&sc->out) > 0 ||
		    ++rounds > 64) {
			return STREAM_WAIT;
		}
		if (buf_len(&u->in) == 0 && u->state == UPSTREAM_BODY &&
		    !(s->sse && s->ev_len > 0) && !upstream_tls_buffered(u)) {
			return STREAM_WAIT;
		}
	}
}
