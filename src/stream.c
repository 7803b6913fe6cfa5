/* stream: a response body from upstream to client (see stream.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "json.h"
#include "server.h"
#include "stream.h"
#include "upstream.h"

#define EV_START 512		/* first size of the SSE event buffer */
#define EV_CAP 32768		/* an event larger than this is passed on
				 * in pieces as it arrives */

static void on_data(void *ctx, const char *p, size_t n);

void
stream_reset(struct stream *s)
{
	char *ev = s->ev;
	size_t ev_cap = s->ev_cap;

	memset(s, 0, offsetof(struct stream, scan));
	memset(&s->body_bytes, 0, sizeof(*s) -
	    offsetof(struct stream, body_bytes));
	s->ev = ev;
	s->ev_cap = ev_cap;
}

void
stream_free(struct stream *s)
{
	free(s->ev);
	s->ev = NULL;
	s->ev_cap = 0;
}

void
stream_start(struct stream *s)
{
	usage_scan_start(&s->scan);
	if (s->sse) {
		sse_init(&s->reader, on_data, s);
	}
}

/* SSE data bytes of the current event go to the usage scanner. */
static void
on_data(void *ctx, const char *p, size_t n)
{
	struct stream *s = ctx;

	usage_scan_feed(&s->scan, p, n);
}

/* What one document (an event's data, or a whole body) said. */
static void
note_doc(struct stream *s, const struct usage_doc *d)
{
	s->content_bytes += d->content_bytes;
	if (!d->found) {
		return;
	}
	if (d->invalid) {
		s->usage_bad = d->usage_why;
		return;
	}
	s->has_usage = 1;
	s->usage_final |= d->final;
	usage_merge(&s->usage, &d->usage);
}

/* An event ended: what it said, and whether it goes to the client. */
static void
event_done(struct stream *s)
{
	struct usage_doc d;

	usage_scan_end(&s->scan, &d);
	note_doc(s, &d);
	/* The stream's object: the first id, the latest status. */
	if (s->doc.id[0] == '\0' && d.id[0] != '\0') {
		memcpy(s->doc.id, d.id, sizeof(d.id));
	}
	if (d.status[0] != '\0') {
		memcpy(s->doc.status, d.status, sizeof(d.status));
	}
	s->ev_drop = s->drop_usage && d.usage_only && !s->ev_passing;
	usage_scan_start(&s->scan);
}

void
stream_finish(struct stream *s)
{
	if (!s->sse) {
		usage_scan_end(&s->scan, &s->doc);
		note_doc(s, &s->doc);
		return;
	}
	/* A stream's object as one document: what its events said (a
	 * background response streamed to its end is charged from it). */
	s->doc.found = s->has_usage || s->usage_bad != NULL;
	s->doc.invalid = s->usage_bad != NULL;
	s->doc.usage_why = s->usage_bad;
	s->doc.final = s->usage_final;
	s->doc.usage = s->usage;
}

/* Append up to n body bytes to out in the client's framing. whole: all
 * n or nothing, unless n could never fit. Returns how many went (0 when
 * out has no room now). */
static size_t
emit(struct stream *s, struct buf *o, const char *p, size_t n, int whole)
{
	char sz[20];
	size_t room;
	int k;

	if (n == 0) {
		return 0;
	}
	room = buf_reserve(o, n + 16);
	if (room <= 16 || (whole && room < n + 16 &&
	    n + 16 <= buf_limit(o))) {
		return 0;
	}
	if (n > room - 16) {
		n = room - 16;
	}
	if (s->client_chunked) {
		k = snprintf(sz, sizeof(sz), "%zx\r\n", n);
		(void)buf_append(o, sz, (size_t)k);
	}
	(void)buf_append(o, p, n);
	if (s->client_chunked) {
		(void)buf_append(o, "\r\n", 2);
	}
	return n;
}

void
stream_error_event(struct stream *s, struct server_conn *sc, const char *why)
{
	char ev[512], esc[256], frame[16];
	int n;

	if (json_escape(why, strlen(why), esc, sizeof(esc)) < 0) {
		snprintf(esc, sizeof(esc), "upstream failed");
	}
	if (s->anthropic) {
		n = snprintf(ev, sizeof(ev), "event: error\ndata: {\"type\":"
		    "\"error\",\"error\":{\"type\":\"api_error\",\"message\":"
		    "\"upstream stream broke: %s\"}}\n\n", esc);
	} else {
		n = snprintf(ev, sizeof(ev), "event: error\ndata: {\"error\":{"
		    "\"message\":\"upstream stream broke: %s\",\"type\":"
		    "\"server_error\",\"code\":\"upstream_unavailable\"}}\n\n",
		    esc);
	}
	if (s->client_chunked) {
		int m = snprintf(frame, sizeof(frame), "%x\r\n", n);

		(void)buf_append(&sc->out, frame, (size_t)m);
		(void)buf_append(&sc->out, ev, (size_t)n);
		(void)buf_append(&sc->out, "\r\n", 2);
	} else {
		(void)buf_append(&sc->out, ev, (size_t)n);
	}
}

/* The SSE reader takes the buffered bytes up to the end of an event. */
static void
parse_events(struct stream *s)
{
	while (!s->ev_ended && s->ev_parsed < s->ev_len) {
		int ended;

		s->ev_parsed += sse_feed(&s->reader, s->ev + s->ev_parsed,
		    s->ev_len - s->ev_parsed, &ended);
		if (ended) {
			s->ev_ended = 1;
			event_done(s);
		}
	}
}

/* Pass on the parsed bytes (a whole event, or what a passing one has so
 * far), then drop them from ev. Returns 0, or -1 when out is full. */
static int
flush_parsed(struct stream *s, struct buf *o)
{
	while (s->ev_emitted < s->ev_parsed) {
		/* A whole event goes in one piece when it can: one chunk,
		 * one write. */
		size_t n = s->ev_drop ? s->ev_parsed - s->ev_emitted :
		    emit(s, o, s->ev + s->ev_emitted, s->ev_parsed -
		    s->ev_emitted, !s->ev_passing);

		if (n == 0) {
			return -1;
		}
		s->ev_emitted += n;
	}
	s->body_bytes += s->ev_parsed;
	memmove(s->ev, s->ev + s->ev_parsed, s->ev_len - s->ev_parsed);
	s->ev_len -= s->ev_parsed;
	s->ev_parsed = 0;
	s->ev_emitted = 0;
	if (s->ev_ended) {
		s->ev_ended = 0;
		s->ev_passing = 0;
		s->ev_drop = 0;
	}
	return 0;
}

/* SSE: assemble whole events so usage can be read from them and the
 * usage-only chunk we asked for can be hidden; each event is passed on as
 * soon as it is complete, an event that outgrows the buffer as it
 * arrives. o is NULL when draining (nothing is passed on). Returns 0, or
 * -1 when out of memory. */
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
		size_t got;

		parse_events(s);
		if (s->ev_ended && s->reader.after_cr &&
		    s->ev_parsed < s->ev_len && s->ev[s->ev_parsed] == '\n') {
			s->ev_parsed++;	/* the LF of the CRLF that ended it */
			s->reader.after_cr = 0;
		}
		if (o == NULL && (s->ev_ended || s->ev_passing)) {
			s->ev_drop = 1;	/* draining: nobody to pass it to */
		}
		if ((s->ev_ended || s->ev_passing) && s->ev_parsed > 0 &&
		    !(s->ev_ended && s->reader.after_cr && s->reader.crlf &&
		    s->ev_parsed == s->ev_len && u->state == UPSTREAM_BODY)) {
			/* (An event that ended on a CR of a CRLF stream waits
			 * for its LF, so that events stay whole.) */
			if (flush_parsed(s, o) < 0) {
				return 0;	/* out is full: wait */
			}
			continue;
		}
		if (s->ev_len == s->ev_cap) {
			char *bigger = s->ev_cap < EV_CAP ?
			    realloc(s->ev, s->ev_cap * 2) : NULL;

			if (bigger != NULL) {
				s->ev = bigger;
				s->ev_cap *= 2;
			} else {
				s->ev_passing = 1;	/* too big to hold */
			}
			continue;
		}
		if (u->state != UPSTREAM_BODY) {
			if (u->state == UPSTREAM_DONE && s->ev_len > 0) {
				/* A last event without its blank line: pass
				 * it on as it is. */
				event_done(s);
				s->ev_drop = o == NULL;
				s->ev_passing = 1;
				s->ev_parsed = s->ev_len;
				if (flush_parsed(s, o) < 0) {
					return 0;
				}
			}
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

/* Plain bodies: straight into out, scanned for usage on the way. A
 * fixed-width chunk size line ("0000001a\r\n" is valid chunk-size
 * syntax) lets the data land in place. Returns the bytes moved. */
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
		usage_scan_feed(&s->scan, dst, got);
		s->body_bytes += got;
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
		usage_scan_feed(&s->scan, dst + 10, got);
		s->body_bytes += got;
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
		/* Room for what the upstream has buffered, or for a window
		 * of it when TLS holds decrypted bytes too (out grows only
		 * as far as bytes wait). */
		if (buf_reserve(o, (upstream_tls_buffered(u) ?
		    buf_limit(&u->in) : buf_len(&u->in)) + 64) < 64) {
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

enum stream_status
stream_drain(struct stream *s, struct upstream *u, uint64_t now_ms,
    const char **why)
{
	char sink[4096];
	size_t got = 1;

	if (s->sse && pump_sse(s, u, NULL, now_ms) < 0) {
		*why = "out of memory";
		return STREAM_BROKEN;
	}
	while (!s->sse && u->state == UPSTREAM_BODY && got > 0) {
		got = upstream_read_body(u, sink, sizeof(sink), now_ms);
		usage_scan_feed(&s->scan, sink, got);
		s->body_bytes += got;
	}
	if (u->state == UPSTREAM_FAILED) {
		*why = u->error;
		return STREAM_BROKEN;
	}
	return u->state == UPSTREAM_DONE ? STREAM_DONE : STREAM_WAIT;
}
