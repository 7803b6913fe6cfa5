/* sse_upstream: an event-driven SSE upstream for the bench's stream
 * scaling section (bench/bench.py, BENCH_ONLY=scaling). Not part of the
 * relay; built by bench/bench.py into the run's scratch folder.
 *
 *   sse_upstream [--port N] [--port-file PATH]
 *                [--tls-port N --tls-port-file PATH --tls-cert PEM --tls-key PEM]
 *                [--events E] [--interval-ms D] [--event-bytes B]
 *
 * One thread, one epoll loop, one timer heap: thousands of streams on one
 * CPU. HTTP/1.1 with keep-alive on every connection. A POST (any path)
 * answers 200 with a chunked text/event-stream: the head and the first
 * event at once, then one content event every D ms (each about B = 120
 * bytes on the wire: `data: {"id":...,"choices":[{"index":0,"delta":
 * {"content":"..."}}]}` and a blank line, in a chunk of its own), E in
 * all; D ms after the last one a usage-only chunk (`"choices":[],"usage":
 * {...}`), then `data: [DONE]` and the last chunk in the same write. The
 * k-th event of a stream is due at start + k * D (no drift); how late the
 * loop ran each one is kept in a histogram.
 *
 * A request can set its own E and D with "sse:E:D" anywhere in its
 * x-sse header or, failing that, its Authorization header (the relay
 * sends its route's credential as a bearer token and passes x-sse on).
 *
 * GET /_stats answers the counters as JSON; GET /_stats/reset answers
 * them and starts them again (the bench does that before each run).
 *
 * TLS (--tls-port, OpenSSL, TLS 1.2 and 1.3, session ids and tickets so a
 * client can resume): the same service on a second listener.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define IN_MAX 8192		/* request head and body */
#define LATE_BUCKETS 2001	/* 0.1 ms each, the last one: 200 ms or more */

enum { ST_HANDSHAKE, ST_REQUEST, ST_STREAM, ST_CLOSING };

struct conn {
	int fd;
	uint32_t gen;		/* bumped on close: stale timers are dropped */
	uint8_t tls, state, close_after, want_out;
	SSL *ssl;
	char *in;		/* IN_MAX bytes, while a request is read */
	uint32_t nin;
	char *out;		/* bytes not yet taken by the socket */
	uint32_t nout, off, outcap;
	uint32_t next_ev, events;	/* next event index, content events */
	uint64_t t0_ns, interval_ns;
	uint32_t id;		/* stream number, in the event id */
};

struct timer {
	uint64_t due;
	int fd;
	uint32_t gen;
};

static struct conn **conns;	/* by fd */
static int nconns_cap;
static struct timer *heap;
static size_t nheap, heapcap;
static int ep;
static SSL_CTX *ssl_ctx;
static int lfd_plain = -1, lfd_tls = -1;
static uint32_t def_events = 50, def_interval_ms = 20, ev_bytes = 120;
static uint32_t next_id, next_gen;

static struct {
	unsigned long long accepted, requests, streams_started, streams_done,
	    events, bytes, tls_handshakes, tls_resumed, tls_failed, closed_early,
	    write_stalls;
	long long open_conns, open_streams, peak_open_streams;
	unsigned long long late_n, late_max_us;
	uint32_t late[LATE_BUCKETS];
	char tls_last[64];	/* version and cipher of the last handshake */
} S;

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *
xrealloc(void *p, size_t n)
{
	p = realloc(p, n);
	if (p == NULL) {
		fprintf(stderr, "sse_upstream: out of memory\n");
		exit(1);
	}
	return p;
}

/* ------------------------------------------------------------ timers */

static void
heap_push(uint64_t due, int fd, uint32_t gen)
{
	size_t i;

	if (nheap == heapcap) {
		heapcap = heapcap ? heapcap * 2 : 1024;
		heap = xrealloc(heap, heapcap * sizeof *heap);
	}
	i = nheap++;
	while (i > 0) {
		size_t p = (i - 1) / 2;

		if (heap[p].due <= due) {
			break;
		}
		heap[i] = heap[p];
		i = p;
	}
	heap[i].due = due;
	heap[i].fd = fd;
	heap[i].gen = gen;
}

static struct timer
heap_pop(void)
{
	struct timer top = heap[0], last = heap[--nheap];
	size_t i = 0;

	for (;;) {
		size_t l = 2 * i + 1, m;

		if (l >= nheap) {
			break;
		}
		m = (l + 1 < nheap && heap[l + 1].due < heap[l].due) ? l + 1 : l;
		if (heap[m].due >= last.due) {
			break;
		}
		heap[i] = heap[m];
		i = m;
	}
	if (nheap > 0) {
		heap[i] = last;
	}
	return top;
}

static void
late_note(uint64_t late_ns)
{
	uint64_t us = late_ns / 1000, b = us / 100;

	S.late[b < LATE_BUCKETS ? b : LATE_BUCKETS - 1]++;
	S.late_n++;
	if (us > S.late_max_us) {
		S.late_max_us = us;
	}
}

/* p-th percentile of the lateness, in microseconds (bucket's upper end). */
static unsigned long long
late_pct(double p)
{
	unsigned long long want, seen = 0;
	size_t b;

	if (S.late_n == 0) {
		return 0;
	}
	want = (unsigned long long)(p / 100.0 * (double)S.late_n + 0.5);
	if (want < 1) {
		want = 1;
	}
	for (b = 0; b < LATE_BUCKETS; b++) {
		seen += S.late[b];
		if (seen >= want) {
			return (b + 1) * 100;
		}
	}
	return S.late_max_us;
}

/* ------------------------------------------------------------ sockets */

static void
set_events(struct conn *c)
{
	struct epoll_event ev;

	ev.events = EPOLLIN | EPOLLRDHUP | (c->want_out ? EPOLLOUT : 0);
	ev.data.fd = c->fd;
	epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
}

static void
conn_close(struct conn *c)
{
	if (c->state == ST_STREAM) {
		S.closed_early++;
		S.open_streams--;
	}
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	conns[c->fd] = NULL;
	free(c->in);
	free(c->out);
	free(c);
	S.open_conns--;
}

static void
out_add(struct conn *c, const char *p, size_t n)
{
	if (c->off > 0 && c->off == c->nout) {
		c->off = c->nout = 0;
	}
	if (c->nout + n > c->outcap) {
		if (c->off > 0) {
			memmove(c->out, c->out + c->off, c->nout - c->off);
			c->nout -= c->off;
			c->off = 0;
		}
		if (c->nout + n > c->outcap) {
			c->outcap = (uint32_t)((c->nout + n) * 2 + 256);
			c->out = xrealloc(c->out, c->outcap);
		}
	}
	memcpy(c->out + c->nout, p, n);
	c->nout += (uint32_t)n;
}

/* Write what the socket takes. 0: all out or waiting for room; -1: the
 * connection is dead (closed here). */
static int
flush_out(struct conn *c)
{
	while (c->off < c->nout) {
		size_t n = c->nout - c->off;
		ssize_t w;

		if (c->tls) {
			int r = SSL_write(c->ssl, c->out + c->off, (int)n);

			if (r <= 0) {
				int e = SSL_get_error(c->ssl, r);

				if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
					break;
				}
				conn_close(c);
				return -1;
			}
			w = r;
		} else {
			w = send(c->fd, c->out + c->off, n, MSG_NOSIGNAL);
			if (w < 0) {
				if (errno == EAGAIN || errno == EWOULDBLOCK) {
					break;
				}
				if (errno == EINTR) {
					continue;
				}
				conn_close(c);
				return -1;
			}
		}
		c->off += (uint32_t)w;
		S.bytes += (unsigned long long)w;
	}
	if (c->off == c->nout) {
		c->off = c->nout = 0;
		if (c->want_out) {
			c->want_out = 0;
			set_events(c);
		}
		if (c->state == ST_CLOSING) {
			conn_close(c);
			return -1;
		}
	} else if (!c->want_out) {
		c->want_out = 1;
		S.write_stalls++;
		set_events(c);
	}
	return 0;
}

/* One chunk holding one event. */
static void
add_chunk(struct conn *c, const char *ev, size_t n)
{
	char h[16];
	int hn = snprintf(h, sizeof h, "%zx\r\n", n);

	out_add(c, h, (size_t)hn);
	out_add(c, ev, n);
	out_add(c, "\r\n", 2);
}

static void
add_content_event(struct conn *c, uint32_t k)
{
	char ev[1024];
	int n, pad;

	/* Without the content: the frame. The content fills it up to
	 * ev_bytes (at least a few characters). */
	n = snprintf(ev, sizeof ev,
	    "data: {\"id\":\"chatcmpl-%08x\",\"object\":\"chat.completion.chunk\","
	    "\"choices\":[{\"index\":0,\"delta\":{\"content\":\" t%u", c->id, k);
	pad = (int)ev_bytes - n - 7;	/* "\"}}]}\n\n" is 7 */
	if (pad < 0) {
		pad = 0;
	}
	if (n + pad + 16 > (int)sizeof ev) {
		pad = (int)sizeof ev - n - 16;
	}
	memset(ev + n, 'x', (size_t)pad);
	n += pad;
	n += snprintf(ev + n, sizeof ev - (size_t)n, "\"}}]}\n\n");
	add_chunk(c, ev, (size_t)n);
	S.events++;
}

static void
add_usage_and_done(struct conn *c)
{
	char ev[512];
	int n;

	n = snprintf(ev, sizeof ev,
	    "data: {\"id\":\"chatcmpl-%08x\",\"object\":\"chat.completion.chunk\","
	    "\"choices\":[],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":%u,"
	    "\"total_tokens\":%u}}\n\n", c->id, c->events, c->events + 12);
	add_chunk(c, ev, (size_t)n);
	add_chunk(c, "data: [DONE]\n\n", 14);
	out_add(c, "0\r\n\r\n", 5);
	S.events += 2;
}

static void
stats_body(char *b, size_t cap, int *len)
{
	*len = snprintf(b, cap,
	    "{\"accepted\":%llu,\"requests\":%llu,\"streams_started\":%llu,"
	    "\"streams_done\":%llu,\"closed_early\":%llu,\"events\":%llu,\"bytes\":%llu,"
	    "\"open_conns\":%lld,\"open_streams\":%lld,\"peak_open_streams\":%lld,"
	    "\"tls_handshakes\":%llu,\"tls_resumed\":%llu,\"tls_failed\":%llu,"
	    "\"write_stalls\":%llu,\"late_n\":%llu,\"late_p50_us\":%llu,"
	    "\"late_p99_us\":%llu,\"late_p999_us\":%llu,\"late_max_us\":%llu,"
	    "\"tls_last\":\"%s\"}\n",
	    S.accepted, S.requests, S.streams_started, S.streams_done, S.closed_early,
	    S.events, S.bytes, S.open_conns, S.open_streams, S.peak_open_streams,
	    S.tls_handshakes, S.tls_resumed, S.tls_failed, S.write_stalls, S.late_n,
	    late_pct(50), late_pct(99), late_pct(99.9), S.late_max_us, S.tls_last);
}

static void
stats_reset(void)
{
	long long oc = S.open_conns, os = S.open_streams;

	memset(&S, 0, sizeof S);
	S.open_conns = oc;
	S.open_streams = os;
	S.peak_open_streams = os;
}

/* "sse:E:D" in v[0..n): E and D taken when found. */
static void
script(const char *v, size_t n, uint32_t *e, uint32_t *d)
{
	size_t i;

	for (i = 0; i + 4 <= n; i++) {
		if (memcmp(v + i, "sse:", 4) == 0) {
			char tmp[64], *p;
			size_t k = n - i - 4 < sizeof tmp - 1 ? n - i - 4 : sizeof tmp - 1;
			unsigned long a, b;

			memcpy(tmp, v + i + 4, k);
			tmp[k] = 0;
			a = strtoul(tmp, &p, 10);
			if (p != tmp && *p == ':') {
				b = strtoul(p + 1, NULL, 10);
				if (a >= 1 && a <= 1000000 && b <= 3600000) {
					*e = (uint32_t)a;
					*d = (uint32_t)b;
				}
			}
			return;
		}
	}
}

/* A whole request in c->in? Handle it: 1 handled (and consumed), 0 wait
 * for more, -1 closed. */
static int
handle_request(struct conn *c)
{
	char *end = memmem(c->in, c->nin, "\r\n\r\n", 4), *p, *line;
	size_t head_len, clen = 0, total;
	uint32_t e = def_events, d = def_interval_ms, xe = 0, xd = 0;
	int get = 0, stats = 0, reset = 0, close_after = 0;

	if (end == NULL) {
		if (c->nin >= IN_MAX) {
			conn_close(c);
			return -1;
		}
		return 0;
	}
	head_len = (size_t)(end - c->in) + 4;
	if (c->nin >= 4 && memcmp(c->in, "GET ", 4) == 0) {
		get = 1;
		stats = c->nin >= 11 && memcmp(c->in + 4, "/_stats", 7) == 0;
		reset = stats && c->nin >= 17 && memcmp(c->in + 11, "/reset", 6) == 0;
	}
	/* header fields */
	line = memchr(c->in, '\n', head_len);
	while (line != NULL && line + 1 < c->in + head_len - 2) {
		char *ln = line + 1, *eol = memchr(ln, '\n', (size_t)(c->in + head_len - ln));
		char *colon;
		size_t nl;

		if (eol == NULL) {
			break;
		}
		nl = (size_t)(eol - ln);
		colon = memchr(ln, ':', nl);
		if (colon != NULL) {
			size_t kn = (size_t)(colon - ln);
			char *v = colon + 1;
			size_t vn = (size_t)(eol - v);

			if (kn == 14 && strncasecmp(ln, "content-length", 14) == 0) {
				clen = strtoul(v, NULL, 10);
			} else if (kn == 10 && strncasecmp(ln, "connection", 10) == 0) {
				for (p = v; p + 5 <= eol; p++) {
					if (strncasecmp(p, "close", 5) == 0) {
						close_after = 1;
					}
				}
			} else if (kn == 13 && strncasecmp(ln, "authorization", 13) == 0) {
				script(v, vn, &e, &d);
			} else if (kn == 5 && strncasecmp(ln, "x-sse", 5) == 0) {
				script(v, vn, &xe, &xd);
			} else if (kn == 17 && strncasecmp(ln, "transfer-encoding", 17) == 0) {
				/* a chunked request body is not needed by the bench */
				static const char r411[] = "HTTP/1.1 411 Length Required\r\n"
				    "Content-Length: 0\r\nConnection: close\r\n\r\n";

				out_add(c, r411, sizeof r411 - 1);
				c->state = ST_CLOSING;
				c->nin = 0;
				return flush_out(c) < 0 ? -1 : 1;
			}
		}
		line = eol;
	}
	if (xe > 0) {		/* x-sse wins over the credential */
		e = xe;
		d = xd;
	}
	total = head_len + clen;
	if (total > IN_MAX) {
		conn_close(c);
		return -1;
	}
	if (c->nin < total) {
		return 0;
	}
	S.requests++;
	c->close_after = (uint8_t)close_after;
	if (get) {
		char body[1024], h[256];
		int bl, hl;

		if (stats) {
			stats_body(body, sizeof body, &bl);
			if (reset) {
				stats_reset();
			}
		} else {
			bl = snprintf(body, sizeof body, "{\"status\":\"ok\"}\n");
		}
		hl = snprintf(h, sizeof h, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
		    "Content-Length: %d\r\n%s\r\n", bl, close_after ? "Connection: close\r\n" : "");
		out_add(c, h, (size_t)hl);
		out_add(c, body, (size_t)bl);
	} else {
		static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
		    "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";

		out_add(c, head, sizeof head - 1);
		c->state = ST_STREAM;
		c->events = e;
		c->interval_ns = (uint64_t)d * 1000000u;
		c->t0_ns = now_ns();
		c->id = ++next_id;
		S.streams_started++;
		S.open_streams++;
		if (S.open_streams > S.peak_open_streams) {
			S.peak_open_streams = S.open_streams;
		}
		add_content_event(c, 0);
		c->next_ev = 1;
		heap_push(c->t0_ns + c->interval_ns, c->fd, c->gen);
	}
	memmove(c->in, c->in + total, c->nin - total);
	c->nin -= (uint32_t)total;
	if (get && close_after) {
		c->state = ST_CLOSING;
	}
	if (c->state == ST_STREAM) {
		/* The request buffer is not needed while the stream runs. */
		if (c->nin == 0) {
			free(c->in);
			c->in = NULL;
		}
	}
	return flush_out(c) < 0 ? -1 : 1;
}

static void
on_readable(struct conn *c)
{
	for (;;) {
		char drop[4096], *dst;
		size_t room;
		ssize_t r;

		if (c->state == ST_REQUEST) {
			if (c->in == NULL) {
				c->in = xrealloc(NULL, IN_MAX);
			}
			dst = c->in + c->nin;
			room = IN_MAX - c->nin;
			if (room == 0) {
				conn_close(c);
				return;
			}
		} else {
			/* Streaming or closing: read only to see an EOF (bytes
			 * sent meanwhile are dropped: proxies do not pipeline). */
			dst = drop;
			room = sizeof drop;
		}
		if (c->tls) {
			int n = SSL_read(c->ssl, dst, (int)room);

			if (n <= 0) {
				int e = SSL_get_error(c->ssl, n);

				if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
					return;
				}
				conn_close(c);
				return;
			}
			r = n;
		} else {
			r = recv(c->fd, dst, room, 0);
			if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
				return;
			}
			if (r < 0 && errno == EINTR) {
				continue;
			}
			if (r <= 0) {
				conn_close(c);
				return;
			}
		}
		if (c->state != ST_REQUEST) {
			continue;
		}
		c->nin += (uint32_t)r;
		for (;;) {
			int h = handle_request(c);

			if (h < 0) {
				return;
			}
			if (h == 0 || c->state != ST_REQUEST || c->nin == 0) {
				break;
			}
		}
	}
}

static void
do_handshake(struct conn *c)
{
	int r = SSL_accept(c->ssl);

	if (r == 1) {
		S.tls_handshakes++;
		if (SSL_session_reused(c->ssl)) {
			S.tls_resumed++;
		}
		snprintf(S.tls_last, sizeof S.tls_last, "%s %s", SSL_get_version(c->ssl),
		    SSL_get_cipher_name(c->ssl));
		c->state = ST_REQUEST;
		if (c->want_out) {
			c->want_out = 0;
			set_events(c);
		}
		on_readable(c);
		return;
	}
	switch (SSL_get_error(c->ssl, r)) {
	case SSL_ERROR_WANT_READ:
		if (c->want_out) {
			c->want_out = 0;
			set_events(c);
		}
		return;
	case SSL_ERROR_WANT_WRITE:
		if (!c->want_out) {
			c->want_out = 1;
			set_events(c);
		}
		return;
	default:
		S.tls_failed++;
		ERR_clear_error();
		conn_close(c);
	}
}

static void
on_accept(int lfd, int tls)
{
	for (;;) {
		struct epoll_event ev;
		struct conn *c;
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), one = 1;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				fprintf(stderr, "sse_upstream: accept: out of descriptors\n");
			}
			return;
		}
		if (fd >= nconns_cap) {
			int old = nconns_cap;

			nconns_cap = fd * 2 + 64;
			conns = xrealloc(conns, (size_t)nconns_cap * sizeof *conns);
			memset(conns + old, 0, (size_t)(nconns_cap - old) * sizeof *conns);
		}
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		c = xrealloc(NULL, sizeof *c);
		memset(c, 0, sizeof *c);
		c->fd = fd;
		c->gen = ++next_gen;
		c->tls = (uint8_t)tls;
		c->state = tls ? ST_HANDSHAKE : ST_REQUEST;
		conns[fd] = c;
		S.accepted++;
		S.open_conns++;
		ev.events = EPOLLIN | EPOLLRDHUP;
		ev.data.fd = fd;
		epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
		if (tls) {
			c->ssl = SSL_new(ssl_ctx);
			if (c->ssl == NULL || SSL_set_fd(c->ssl, fd) != 1) {
				conn_close(c);
				continue;
			}
			do_handshake(c);
		}
	}
}

/* A due timer: the next event of its stream. */
static void
on_timer(struct timer t, uint64_t now)
{
	struct conn *c = (t.fd >= 0 && t.fd < nconns_cap) ? conns[t.fd] : NULL;

	if (c == NULL || c->gen != t.gen || c->state != ST_STREAM) {
		return;
	}
	late_note(now > t.due ? now - t.due : 0);
	if (c->next_ev < c->events) {
		add_content_event(c, c->next_ev);
		c->next_ev++;
		heap_push(c->t0_ns + (uint64_t)c->next_ev * c->interval_ns, c->fd, c->gen);
	} else {
		add_usage_and_done(c);
		S.streams_done++;
		S.open_streams--;
		c->state = c->close_after ? ST_CLOSING : ST_REQUEST;
	}
	if (flush_out(c) < 0) {
		return;
	}
	if (c->state == ST_REQUEST && c->nin > 0) {
		while (c->state == ST_REQUEST && c->nin > 0) {
			int h = handle_request(c);

			if (h <= 0) {
				break;
			}
		}
	}
}

static int
listen_on(int port, int *actual)
{
	struct sockaddr_in sa;
	socklen_t sl = sizeof sa;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0) {
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 16384) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &sl) < 0) {
		close(fd);
		return -1;
	}
	*actual = ntohs(sa.sin_port);
	return fd;
}

static void
write_port(const char *path, int port)
{
	char tmp[4096];
	FILE *f;

	if (path == NULL) {
		return;
	}
	snprintf(tmp, sizeof tmp, "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL || fprintf(f, "%d\n", port) < 0 || fclose(f) != 0 ||
	    rename(tmp, path) != 0) {
		fprintf(stderr, "sse_upstream: cannot write %s\n", path);
		exit(1);
	}
}

static void
usage(void)
{
	fprintf(stderr, "usage: sse_upstream [--port N] [--port-file PATH] [--tls-port N "
	    "--tls-port-file PATH --tls-cert PEM --tls-key PEM] [--events E] "
	    "[--interval-ms D] [--event-bytes B]\n");
	exit(2);
}

static volatile sig_atomic_t stop;

static void
on_term(int sig)
{
	(void)sig;
	stop = 1;
}

int
main(int argc, char **argv)
{
	const char *port_file = NULL, *tls_port_file = NULL, *cert = NULL, *key = NULL;
	int port = 0, tls_port = -1, i, actual;
	struct rlimit rl;
	struct epoll_event ev;
	struct sigaction sa;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (i + 1 >= argc) {
			usage();
		}
		if (strcmp(a, "--port") == 0) {
			port = atoi(argv[++i]);
		} else if (strcmp(a, "--port-file") == 0) {
			port_file = argv[++i];
		} else if (strcmp(a, "--tls-port") == 0) {
			tls_port = atoi(argv[++i]);
		} else if (strcmp(a, "--tls-port-file") == 0) {
			tls_port_file = argv[++i];
		} else if (strcmp(a, "--tls-cert") == 0) {
			cert = argv[++i];
		} else if (strcmp(a, "--tls-key") == 0) {
			key = argv[++i];
		} else if (strcmp(a, "--events") == 0) {
			def_events = (uint32_t)atoi(argv[++i]);
		} else if (strcmp(a, "--interval-ms") == 0) {
			def_interval_ms = (uint32_t)atoi(argv[++i]);
		} else if (strcmp(a, "--event-bytes") == 0) {
			ev_bytes = (uint32_t)atoi(argv[++i]);
		} else {
			usage();
		}
	}
	if (tls_port >= 0 && (cert == NULL || key == NULL)) {
		usage();
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_term;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	ep = epoll_create1(EPOLL_CLOEXEC);
	lfd_plain = listen_on(port, &actual);
	if (ep < 0 || lfd_plain < 0) {
		perror("sse_upstream: listen");
		return 1;
	}
	write_port(port_file, actual);
	ev.events = EPOLLIN;
	ev.data.fd = -1;
	epoll_ctl(ep, EPOLL_CTL_ADD, lfd_plain, &ev);
	if (tls_port >= 0) {
		static const unsigned char sid_ctx[] = "sse_upstream";

		ssl_ctx = SSL_CTX_new(TLS_server_method());
		if (ssl_ctx == NULL ||
		    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION) != 1 ||
		    SSL_CTX_use_certificate_chain_file(ssl_ctx, cert) != 1 ||
		    SSL_CTX_use_PrivateKey_file(ssl_ctx, key, SSL_FILETYPE_PEM) != 1 ||
		    SSL_CTX_check_private_key(ssl_ctx) != 1) {
			fprintf(stderr, "sse_upstream: TLS setup failed (%s, %s)\n", cert, key);
			ERR_print_errors_fp(stderr);
			return 1;
		}
		SSL_CTX_set_options(ssl_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
		SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
		    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_RELEASE_BUFFERS);
		SSL_CTX_set_session_id_context(ssl_ctx, sid_ctx, sizeof sid_ctx - 1);
		SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_SERVER);
		SSL_CTX_sess_set_cache_size(ssl_ctx, 65536);
		SSL_CTX_set_timeout(ssl_ctx, 7200);
		lfd_tls = listen_on(tls_port, &actual);
		if (lfd_tls < 0) {
			perror("sse_upstream: listen (TLS)");
			return 1;
		}
		write_port(tls_port_file, actual);
		ev.events = EPOLLIN;
		ev.data.fd = -2;
		epoll_ctl(ep, EPOLL_CTL_ADD, lfd_tls, &ev);
	}

	while (!stop) {
		struct epoll_event evs[512];
		struct timespec ts, *tp = NULL;
		uint64_t now = now_ns();
		int n, k;

		/* Every timer that is due, oldest first. */
		while (nheap > 0 && heap[0].due <= now) {
			on_timer(heap_pop(), now);
		}
		if (nheap > 0) {
			uint64_t wait = heap[0].due - now;

			ts.tv_sec = (time_t)(wait / 1000000000u);
			ts.tv_nsec = (long)(wait % 1000000000u);
			tp = &ts;
		}
		n = epoll_pwait2(ep, evs, 512, tp, NULL);
		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			perror("sse_upstream: epoll_pwait2");
			return 1;
		}
		for (k = 0; k < n; k++) {
			int fd = evs[k].data.fd;
			struct conn *c;

			if (fd == -1) {
				on_accept(lfd_plain, 0);
				continue;
			}
			if (fd == -2) {
				on_accept(lfd_tls, 1);
				continue;
			}
			c = fd < nconns_cap ? conns[fd] : NULL;
			if (c == NULL) {
				continue;
			}
			if (c->state == ST_HANDSHAKE) {
				do_handshake(c);
				continue;
			}
			if ((evs[k].events & EPOLLOUT) && c->want_out) {
				if (flush_out(c) < 0) {
					continue;
				}
			}
			if (evs[k].events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) {
				on_readable(c);
			}
		}
	}
	return 0;
}
