/*
 * test_stream.c: response bodies on their way from a provider to a
 * client (src/stream.c). The client is a server_conn on a socketpair
 * (the test reads its end); the provider is a loopback listener the test
 * writes answers into (tests/unit/loopback.h, as in test_upstream.c).
 * Each pass polls both sockets, steps what poll says, and calls
 * stream_pump() as the exchange does after any event; the client's bytes
 * are compared with what the provider sent: byte-exact for JSON,
 * dechunked and event by event for SSE. Usage counts are checked as the
 * ledger would charge them.
 */
#include <stdlib.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "loopback.h"
#include "server.h"
#include "stream.h"
#include "t.h"
#include "upstream.h"

#define T0 7000000ull
#define SEEN_CAP (24u << 20)

static struct conf *conf;	/* default limits: max_header 16 KiB */
static struct net_addr addr;
static int lfd = -1;
static struct server_conn *sc;
static int cfd = -1;		/* the client's end */
static struct upstream *u;
static int pfd = -1;		/* the provider's end */
static struct stream s;
static enum stream_status st;
static const char *why;
static char *seen;		/* what the client read */
static size_t seen_len;
static int client_reading = 1;

/* Client and provider connected, the provider's head parsed, the body
 * started; the stream set as the exchange would set it. */
static void
setup(const struct conf *c, const char *head, int sse, int chunked,
    int drop_usage)
{
	struct iovec iov[1];
	char err[160], req[256];
	int fd = lb_pair(&cfd), i;

	sc = server_new(fd, 1, c, NULL, T0);
	lb_puts(cfd, "POST /v1/chat/completions HTTP/1.1\r\nHost: r\r\n"
	    "Content-Length: 2\r\n\r\n{}");
	server_step(sc, POLLIN, T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	if (sc->state != SERVER_BODY_READY) {
		printf("setup: client request not read\n");
		exit(2);
	}
	server_busy(sc);

	u = upstream_connect(&addr, 0, c, NULL, NULL, T0, err, sizeof(err));
	if (u == NULL) {
		printf("upstream_connect: %s\n", err);
		exit(2);
	}
	iov[0].iov_base = (void *)(uintptr_t)"POST /v1/chat/completions "
	    "HTTP/1.1\r\nHost: p\r\nContent-Length: 0\r\n\r\n";
	iov[0].iov_len = strlen(iov[0].iov_base);
	upstream_send(u, iov, 1, sc->req.head.method, T0);
	pfd = lb_accept(lfd);
	for (i = 0; i < 100 && u->state != UPSTREAM_READ_HEAD; i++) {
		upstream_step(u, lb_poll(u->fd, upstream_interest(u), 20), T0);
	}
	lb_read(pfd, req, sizeof(req), 100, NULL);
	lb_puts(pfd, head);
	for (i = 0; i < 100 && u->state == UPSTREAM_READ_HEAD; i++) {
		upstream_step(u, lb_poll(u->fd, POLLIN, 20), T0);
	}
	if (u->state != UPSTREAM_HEAD) {
		printf("setup: no head (%s)\n", u->error);
		exit(2);
	}
	upstream_start_body(u, T0);
	stream_reset(&s);
	s.sse = sse;
	s.client_chunked = chunked;
	s.drop_usage = drop_usage;
	stream_start(&s);
	st = STREAM_WAIT;
	why = NULL;
	seen_len = 0;
	seen[0] = '\0';
	client_reading = 1;
}

static void
teardown(void)
{
	server_free(sc);
	sc = NULL;
	upstream_free(u);
	u = NULL;
	close(cfd);
	cfd = -1;
	if (pfd >= 0) {
		close(pfd);
	}
	pfd = -1;
}

static void
client_read(void)
{
	seen_len += lb_read(cfd, seen + seen_len, SEEN_CAP - seen_len, 0,
	    NULL);
}

/* One loop pass: poll both sockets (up to wait_ms), step them, pump. */
static void
pass(uint64_t now, int wait_ms)
{
	struct pollfd p[2];

	p[0].fd = u->fd;
	p[0].events = upstream_interest(u);
	p[1].fd = sc->state == SERVER_CLOSED ? -1 : sc->fd;
	p[1].events = server_interest(sc);
	p[0].revents = p[1].revents = 0;
	if (p[0].events == 0 && p[1].events == 0) {
		wait_ms = 0;
	}
	(void)poll(p, 2, wait_ms);
	if (p[0].revents) {
		upstream_step(u, p[0].revents, now);
	}
	if (p[1].revents) {
		server_step(sc, p[1].revents, now);
	}
	if (st == STREAM_WAIT) {
		st = stream_pump(&s, u, sc, now, &why);
	}
	if (client_reading) {
		client_read();
	}
}

/* Passes until the pump is no longer waiting (or n passes). */
static void
run(int n)
{
	int i;

	for (i = 0; i < n && st == STREAM_WAIT; i++) {
		pass(T0, 10);
	}
}

/* What the exchange does after STREAM_DONE: read usage, end the
 * response; then the client reads the rest. */
static void
finish_response(void)
{
	int i;

	stream_finish(&s);
	server_response_done(sc, T0);
	for (i = 0; i < 200 && (buf_len(&sc->out) > 0 || sc->body_left > 0);
	    i++) {
		server_step(sc, lb_poll(sc->fd, POLLOUT, 20), T0);
		client_read();
	}
	server_step(sc, 0, T0);
	client_read();
}

/* The provider writes all of p while the relay pumps. */
static void
provide(const char *p, size_t n)
{
	size_t done = 0;
	int i;

	for (i = 0; i < 100000 && done < n; i++) {
		done += lb_write_some(pfd, p + done, n - done);
		pass(T0, 2);
	}
}

/* Dechunk a chunked body: returns the decoded length, *done when the
 * last chunk was seen, *bad on a framing error. */
static size_t
dechunk(const char *in, size_t n, char *out, int *done, int *bad)
{
	struct http_chunked d;
	size_t at = 0, len = 0;

	http_chunked_init(&d);
	*bad = 0;
	while (at < n && !d.done) {
		size_t off = 0, dlen = 0;
		long r = http_chunked_step(&d, in + at, n - at, &off, &dlen);

		if (r < 0) {
			*bad = 1;
			break;
		}
		memcpy(out + len, in + at + off, dlen);
		len += dlen;
		at += (size_t)r;
		if (r == 0) {
			break;
		}
	}
	*done = d.done;
	if (d.done && at != n) {
		*bad = 1;	/* bytes after the last chunk */
	}
	out[len] = '\0';
	return len;
}

/* body in chunks of k bytes, then the last chunk. */
static size_t
chunk(const char *body, size_t n, size_t k, char *out)
{
	size_t at = 0, o = 0;

	while (at < n) {
		size_t m = n - at < k ? n - at : k;

		o += (size_t)sprintf(out + o, "%zx\r\n", m);
		memcpy(out + o, body + at, m);
		o += m;
		memcpy(out + o, "\r\n", 2);
		o += 2;
		at += m;
	}
	memcpy(out + o, "0\r\n\r\n", 6);
	return o + 5;
}

/* ---- JSON bodies ---- */

static const char json_small[] = "{\"id\":\"chatcmpl-1\",\"object\":"
    "\"chat.completion\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
    "\"assistant\",\"content\":\"Hello\"}}],\"usage\":{\"prompt_tokens\":11,"
    "\"completion_tokens\":7,\"total_tokens\":18}}";

static void
test_json(void)
{
	static char big[200000], head[128];
	size_t n, i;
	int over_first = 0;

	/* Content-Length: the same bytes, then usage from the tail. */
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n",
	    strlen(json_small));
	setup(conf, head, 0, 0, 0);
	provide(json_small, strlen(json_small));
	run(100);
	ok_int(st, STREAM_DONE, "JSON: DONE");
	finish_response();
	ok(seen_len == strlen(json_small) && memcmp(seen, json_small,
	    seen_len) == 0, "JSON: byte-exact (%zu)", seen_len);
	ok(s.has_usage && s.usage.in == 11 && s.usage.out == 7,
	    "JSON: usage 11/7 (%d %llu %llu)", s.has_usage,
	    (unsigned long long)s.usage.in, (unsigned long long)s.usage.out);
	ok_int(s.body_bytes, strlen(json_small), "JSON: bytes counted");
	ok_int(sc->state, SERVER_READ_HEAD, "JSON: client kept alive");
	teardown();

	/* 190 KB of content before the usage: still read from the tail. */
	n = (size_t)snprintf(big, sizeof(big), "{\"id\":\"x\",\"choices\":[{"
	    "\"message\":{\"content\":\"");
	while (n < 190000) {
		big[n] = (char)('a' + n % 26);
		n++;
	}
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\"}}],\"usage\":{"
	    "\"prompt_tokens\":1234,\"completion_tokens\":56789}}\n");
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu"
	    "\r\n\r\n", n);
	setup(conf, head, 0, 0, 0);
	provide(big, n);
	run(1000);
	ok_int(st, STREAM_DONE, "190 KB JSON: DONE");
	finish_response();
	ok(seen_len == n && memcmp(seen, big, n) == 0,
	    "190 KB JSON: byte-exact (%zu of %zu)", seen_len, n);
	ok(s.has_usage && s.usage.in == 1234 && s.usage.out == 56789,
	    "190 KB JSON: usage from the tail");
	teardown();

	/* Chunked upstream to an HTTP/1.1 client: re-chunked, valid. */
	{
		static char framed[300000], dec[300000];
		size_t fn = chunk(big, n, 3000, framed);
		int done, bad;

		setup(conf, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		    "\r\n", 0, 1, 0);
		provide(framed, fn - 5);
		run(20);
		ok_int(st, STREAM_WAIT, "chunked: not done before the last "
		    "chunk");
		dechunk(seen, seen_len, dec, &done, &bad);
		ok(!done && !bad, "chunked: no last chunk sent before it came");
		provide(framed + fn - 5, 5);
		run(100);
		ok_int(st, STREAM_DONE, "chunked: DONE after the last chunk");
		finish_response();
		ok(dechunk(seen, seen_len, dec, &done, &bad) == n && done &&
		    !bad && memcmp(dec, big, n) == 0,
		    "chunked: the client's bytes are valid chunked coding of "
		    "the same body, ending in one last chunk");
		ok(seen_len > 5 && memcmp(seen + seen_len - 5, "0\r\n\r\n", 5)
		    == 0, "chunked: ends with 0 CRLF CRLF");
		ok(s.has_usage && s.usage.in == 1234, "chunked: usage");
		teardown();
	}

	/* One byte at a time, a body over the 4 KiB tail. */
	n = (size_t)snprintf(big, sizeof(big), "{\"choices\":[{\"text\":\"");
	while (n < 6000) {
		big[n++] = 'z';
	}
	n += (size_t)snprintf(big + n, sizeof(big) - n, "\"}],\"usage\":{"
	    "\"input_tokens\":3,\"output_tokens\":4}}");
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu"
	    "\r\n\r\n", n);
	setup(conf, head, 0, 0, 0);
	for (i = 0; i < n; i++) {
		lb_write(pfd, big + i, 1);
		pass(T0, 20);
		if (st != STREAM_WAIT && i + 1 < n) {
			over_first = 1;
		}
	}
	run(10);
	ok(!over_first && st == STREAM_DONE, "byte by byte: DONE at the last "
	    "byte only");
	finish_response();
	ok(seen_len == n && memcmp(seen, big, n) == 0,
	    "byte by byte: byte-exact");
	ok(s.has_usage && s.usage.in == 3 && s.usage.out == 4,
	    "byte by byte: usage (input_tokens/output_tokens)");
	teardown();

	/* Usage is read by meaning wherever it sits (it used to be read
	 * from the last 4 KiB only): in a 14 KB body, a usage object
	 * followed by 3.9 KB or 5 KB of a trailing field is read. */
	for (i = 0; i < 2; i++) {
		size_t pad = i == 0 ? 3900 : 5000;

		n = (size_t)snprintf(big, sizeof(big), "{\"pre\":\"");
		memset(big + n, 'q', 10000);
		n += 10000;
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\",\"usage\":{"
		    "\"prompt_tokens\":5,\"completion_tokens\":6},\"pad\":\"");
		memset(big + n, 'p', pad);
		n += pad;
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\"}");
		snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\n"
		    "Content-Length: %zu\r\n\r\n", n);
		setup(conf, head, 0, 0, 0);
		provide(big, n);
		run(100);
		finish_response();
		ok(seen_len == n && memcmp(seen, big, n) == 0,
		    "usage %zu bytes before the end: bytes pass", pad);
		ok(s.has_usage && s.usage.in == 5 && s.usage.out == 6,
		    "usage %zu bytes before the end: read", pad);
		teardown();
	}
}

/* ---- SSE ---- */

#define EV1 "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":" \
	"{\"content\":\"Hel\"}}],\"usage\":null}\n\n"
#define EV2 "data: {\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":" \
	"{\"content\":\"lo\"},\"finish_reason\":\"stop\"}],\"usage\":null}\n\n"
#define EV_USAGE "data: {\"id\":\"c1\",\"choices\":[],\"usage\":" \
	"{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11}}\n\n"
#define EV_DONE "data: [DONE]\n\n"
#define AN_STOP "event: message_stop\n" \
	"data: {\"type\":\"message_stop\"}\n\n"

/* Feed events (concatenated in body) framed in upstream chunks of 7
 * bytes, one byte per write. After each byte the client must have
 * received exactly the complete events so far (minus the dropped ones),
 * each as one chunk of its own. Returns the number of byte positions
 * where that did not hold. */
static int
sse_byte_by_byte(const char *const *events, int nev, const int *kept,
    int *done_at_end)
{
	static char body[8192], framed[16384], dec[16384], want[8192];
	size_t map[8192], ends[16], i, fn, n = 0, at = 0, o = 0, m;
	int k, bad_steps = 0, done, bad;

	for (k = 0; k < nev; k++) {
		memcpy(body + n, events[k], strlen(events[k]));
		n += strlen(events[k]);
		ends[k] = n - 1;
	}
	/* Frame it, remembering where each body byte lands. */
	while (at < n) {
		m = n - at < 7 ? n - at : 7;
		o += (size_t)sprintf(framed + o, "%zx\r\n", m);
		for (i = 0; i < m; i++) {
			map[at + i] = o + i;
		}
		memcpy(framed + o, body + at, m);
		o += m;
		memcpy(framed + o, "\r\n", 2);
		o += 2;
		at += m;
	}
	memcpy(framed + o, "0\r\n\r\n", 5);
	fn = o + 5;
	*done_at_end = 1;
	for (i = 0; i < fn; i++) {
		size_t wl = 0;

		lb_write(pfd, framed + i, 1);
		pass(T0, 20);
		for (k = 0; k < nev; k++) {
			if (map[ends[k]] <= i && kept[k]) {
				memcpy(want + wl, events[k], strlen(events[k]));
				wl += strlen(events[k]);
			}
		}
		if (dechunk(seen, seen_len, dec, &done, &bad) != wl ||
		    memcmp(dec, want, wl) != 0 || bad) {
			bad_steps++;
		}
		if (st != STREAM_WAIT && i + 1 < fn) {
			*done_at_end = 0;
		}
	}
	run(10);
	if (st != STREAM_DONE) {
		*done_at_end = 0;
	}
	return bad_steps;
}

/* The client's exact bytes: each kept event as one chunk, then the
 * last chunk. */
static const char *
chunks_of(const char *const *events, int nev, const int *kept)
{
	static char out[16384];
	size_t o = 0;
	int k;

	for (k = 0; k < nev; k++) {
		if (kept[k]) {
			o += (size_t)sprintf(out + o, "%zx\r\n%s\r\n",
			    strlen(events[k]), events[k]);
		}
	}
	sprintf(out + o, "0\r\n\r\n");
	return out;
}

static void
test_sse(void)
{
	static const char *const ev[] = { EV1, EV2, EV_USAGE, EV_DONE };
	static const int keep_all[] = { 1, 1, 1, 1 };
	static const int drop_usage[] = { 1, 1, 0, 1 };
	static const char sse_head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
	int bad, done_at_end;

	/* The relay asked for usage: the usage-only chunk is hidden. */
	setup(conf, sse_head, 1, 1, 1);
	bad = sse_byte_by_byte(ev, 4, drop_usage, &done_at_end);
	ok_int(bad, 0, "SSE byte by byte, drop_usage: each event reaches the "
	    "client when complete, never a partial one");
	ok(done_at_end, "SSE: DONE only after the upstream's last chunk");
	finish_response();
	seen[seen_len] = '\0';
	ok_str(seen, chunks_of(ev, 4, drop_usage), "SSE drop_usage: exact "
	    "client bytes, one chunk per event, usage chunk hidden");
	ok(s.has_usage && s.usage.in == 9 && s.usage.out == 2,
	    "SSE drop_usage: usage read from the hidden chunk");
	/* The stream as one document, as a background response streamed
	 * to its end is settled from (tasks_settle). */
	ok(s.doc.found && !s.doc.invalid && s.doc.usage.in == 9 &&
	    s.doc.usage.out == 2, "SSE: the finished stream's doc carries "
	    "its usage");
	teardown();

	/* The client asked for usage itself: everything passes. */
	setup(conf, sse_head, 1, 1, 0);
	bad = sse_byte_by_byte(ev, 4, keep_all, &done_at_end);
	ok(bad == 0 && done_at_end, "SSE byte by byte, usage kept: event by "
	    "event, DONE at the end");
	finish_response();
	seen[seen_len] = '\0';
	ok_str(seen, chunks_of(ev, 4, keep_all), "SSE usage kept: exact "
	    "client bytes");
	ok(s.has_usage && s.usage.in == 9 && s.usage.out == 2,
	    "SSE usage kept: usage read");
	teardown();

	/* CRLF line ends, comments, event: lines, no space after data:. */
	{
		static const char *const crlf[] = {
			": keep-alive\r\n\r\n",
			"event: response.output_text.delta\r\n"
			    "data:{\"delta\":\"Hi\"}\r\n\r\n",
			"event: response.completed\r\ndata: {\"type\":"
			    "\"response.completed\",\"response\":{\"usage\":"
			    "{\"input_tokens\":21,\"output_tokens\":8}}}\r\n\r\n",
		};
		static const int all3[] = { 1, 1, 1 };

		setup(conf, sse_head, 1, 1, 0);
		bad = sse_byte_by_byte(crlf, 3, all3, &done_at_end);
		ok(bad == 0 && done_at_end, "SSE with CRLF: event by event");
		finish_response();
		seen[seen_len] = '\0';
		ok_str(seen, chunks_of(crlf, 3, all3), "SSE with CRLF: exact");
		ok(s.has_usage && s.usage.in == 21 && s.usage.out == 8,
		    "Responses stream: usage from response.completed");
		teardown();
	}

	/* An empty-choices chunk without usage (Azure's content filter
	 * results) reaches the client even with drop_usage (SPEC §8). */
	{
		static const char *const az[] = {
			"data: {\"choices\":[],\"prompt_filter_results\":[{"
			    "\"prompt_index\":0}]}\n\n",
			EV1, EV_USAGE, EV_DONE,
		};
		static const int kept[] = { 1, 1, 0, 1 };

		setup(conf, sse_head, 1, 1, 1);
		bad = sse_byte_by_byte(az, 4, kept, &done_at_end);
		finish_response();
		seen[seen_len] = '\0';
		ok(bad == 0 && strcmp(seen, chunks_of(az, 4, kept)) == 0,
		    "prompt_filter_results chunk passes, usage chunk hidden");
		teardown();
	}

	/* The usage-only chunk is recognised by JSON meaning: a provider
	 * that writes "choices": [] (with a space) has it hidden too (it
	 * used to leak: the bytes "choices":[] were looked for). */
	{
		static const char *const sp[] = {
			EV1,
			"data: {\"id\":\"c1\", \"choices\": [], \"usage\": "
			    "{\"prompt_tokens\": 9, \"completion_tokens\": 2}}"
			    "\n\n",
			EV_DONE,
		};
		static const int kept[] = { 1, 0, 1 };

		setup(conf, sse_head, 1, 1, 1);
		bad = sse_byte_by_byte(sp, 3, kept, &done_at_end);
		finish_response();
		seen[seen_len] = '\0';
		ok(bad == 0 && strcmp(seen, chunks_of(sp, 3, kept)) == 0,
		    "\"choices\": [] with a space: the usage chunk is hidden");
		ok(s.has_usage && s.usage.in == 9 && s.usage.out == 2,
		    "\"choices\": [] with a space: usage still read");
		teardown();
	}

	/* Anthropic: input from message_start, output from message_delta. */
	{
		static const char *const an[] = {
			"event: message_start\ndata: {\"type\":\"message_start\","
			    "\"message\":{\"id\":\"msg_1\",\"role\":"
			    "\"assistant\",\"content\":[],\"usage\":{"
			    "\"input_tokens\":25,\"output_tokens\":1}}}\n\n",
			"event: content_block_delta\ndata: {\"type\":"
			    "\"content_block_delta\",\"index\":0,\"delta\":{"
			    "\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n",
			"event: message_delta\ndata: {\"type\":"
			    "\"message_delta\",\"delta\":{\"stop_reason\":"
			    "\"end_turn\"},\"usage\":{\"output_tokens\":15}}\n\n",
			AN_STOP,
		};

		setup(conf, sse_head, 1, 1, 0);
		bad = sse_byte_by_byte(an, 4, keep_all, &done_at_end);
		finish_response();
		seen[seen_len] = '\0';
		ok(bad == 0 && done_at_end && strcmp(seen, chunks_of(an, 4,
		    keep_all)) == 0, "Anthropic stream: every event, exact");
		ok(s.has_usage && s.usage.in == 25 && s.usage.out == 15,
		    "Anthropic: input 25 from message_start, output 15 from "
		    "message_delta (%llu %llu)",
		    (unsigned long long)s.usage.in,
		    (unsigned long long)s.usage.out);
		teardown();
	}

	/* Close-delimited SSE to an HTTP/1.0 client: not chunked, the same
	 * bytes; a last event without its blank line is passed on. */
	setup(conf, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
	    "\r\n", 1, 0, 0);
	provide(EV1 EV2 "data: [DONE]\n", strlen(EV1 EV2) + 13);
	close(pfd);
	pfd = -1;
	run(100);
	ok_int(st, STREAM_DONE, "close-delimited SSE: DONE at the close");
	finish_response();
	seen[seen_len] = '\0';
	ok_str(seen, EV1 EV2 "data: [DONE]\n", "close-delimited SSE: same "
	    "bytes, the unterminated last event too");
	teardown();
}

/* ---- large SSE events ---- */

static void
test_sse_big_event(void)
{
	static char ev[41000], framed[90000], dec[90000];
	static const char sse_head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
	struct conf *wide;
	size_t n = 0, fn;
	int done, bad;

	n = (size_t)sprintf(ev, "event: response.completed\ndata: {\"type\":"
	    "\"response.completed\",\"response\":{\"output_text\":\"");
	while (n < 40000) {
		ev[n++] = 'o';
	}
	n += (size_t)sprintf(ev + n, "\",\"usage\":{\"input_tokens\":7,"
	    "\"output_tokens\":9000}}}\n\n" EV_DONE);
	fn = chunk(ev, n, 4096, framed);

	/* With the default max_header (16 KiB) the client's output buffer
	 * is 32 KiB: an event larger than the 32 KiB event buffer is passed
	 * on in pieces as it arrives (it used to need 32 KiB + 16 bytes of
	 * room at once and stalled the stream until `idle`; SPEC §8). */
	setup(conf, sse_head, 1, 1, 0);
	provide(framed, fn);
	run(300);
	ok_int(st, STREAM_DONE, "default limits: a 40 KB event, DONE");
	finish_response();
	ok(dechunk(seen, seen_len, dec, &done, &bad) == n && done && !bad &&
	    memcmp(dec, ev, n) == 0, "default limits: every byte, valid "
	    "chunked");
	ok(s.has_usage && s.usage.in == 7 && s.usage.out == 9000,
	    "default limits: usage at the end of a big event");
	teardown();

	/* With more room, the same. */
	wide = lb_conf("limits max_header=64k\n");
	setup(wide, sse_head, 1, 1, 0);
	provide(framed, fn);
	run(300);
	ok_int(st, STREAM_DONE, "64k max_header: 40 KB event, DONE");
	finish_response();
	ok(dechunk(seen, seen_len, dec, &done, &bad) == n && done && !bad &&
	    memcmp(dec, ev, n) == 0, "64k max_header: every byte, valid "
	    "chunked");
	ok(s.has_usage && s.usage.in == 7 && s.usage.out == 9000,
	    "64k max_header: usage at the end of a big event");
	ok(s.ev_cap <= 32768, "event buffer bounded at 32 KiB (%zu)",
	    s.ev_cap);
	teardown();
	conf_free(wide);
}

/* ---- a provider that breaks ---- */

static void
test_broken(void)
{
	static const char sse_head[] = "HTTP/1.1 200 OK\r\nContent-Type: "
	    "text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
	static const char err_ev[] = "event: error\ndata: {\"error\":{"
	    "\"message\":\"upstream stream broke: upstream closed the "
	    "connection before the end of the body\",\"type\":"
	    "\"server_error\",\"code\":\"upstream_unavailable\"}}\n\n";
	char want[1024], framed[1024];
	size_t fn;

	/* A Content-Length body cut short. */
	setup(conf, "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n", 0, 0, 0);
	provide("{\"partial\":", 11);
	close(pfd);
	pfd = -1;
	run(100);
	ok_int(st, STREAM_BROKEN, "cut JSON body: BROKEN");
	ok_str(why, "upstream closed the connection before the end of the "
	    "body", "cut JSON body: the upstream's reason");
	seen[seen_len] = '\0';
	ok_str(seen, "{\"partial\":", "cut JSON body: what came was passed");
	teardown();

	/* An SSE stream cut inside an event: the complete events came,
	 * then the error event; never the last chunk. */
	setup(conf, sse_head, 1, 1, 0);
	fn = chunk(EV1 "data: {\"choi", strlen(EV1) + 12, 64, framed);
	provide(framed, fn - 5);
	close(pfd);
	pfd = -1;
	run(100);
	ok_int(st, STREAM_BROKEN, "cut SSE: BROKEN");
	ok_str(why, "upstream closed the connection before the end of the "
	    "body", "cut SSE: reason");
	stream_error_event(&s, sc, why);
	server_flush(sc, T0);
	client_read();
	seen[seen_len] = '\0';
	snprintf(want, sizeof(want), "%zx\r\n%s\r\n%zx\r\n%s\r\n",
	    strlen(EV1), EV1, strlen(err_ev), err_ev);
	ok_str(seen, want, "cut SSE: complete events, then the error event "
	    "as a chunk, no last chunk");
	teardown();

	/* A provider that times out mid-stream: the owner's reason. */
	setup(conf, sse_head, 1, 1, 0);
	provide("5\r\n", 3);
	upstream_timeout(u, T0 + 300000);
	run(5);
	ok(st == STREAM_BROKEN && strcmp(why, "upstream idle for 300000 ms")
	    == 0, "idle upstream: BROKEN with its reason");
	teardown();

	/* stream_error_event() on its own: escaped, both framings. */
	setup(conf, sse_head, 1, 0, 0);
	stream_error_event(&s, sc, "TLS: \"bad\" record\n");
	server_flush(sc, T0);
	client_read();
	seen[seen_len] = '\0';
	ok_str(seen, "event: error\ndata: {\"error\":{\"message\":\"upstream "
	    "stream broke: TLS: \\\"bad\\\" record\\n\",\"type\":"
	    "\"server_error\",\"code\":\"upstream_unavailable\"}}\n\n",
	    "error event, not chunked: exact, escaped");
	teardown();
	setup(conf, sse_head, 1, 1, 0);
	stream_error_event(&s, sc, "upstream idle for 300000 ms");
	server_flush(sc, T0);
	client_read();
	seen[seen_len] = '\0';
	ok_str(seen, "93\r\nevent: error\ndata: {\"error\":{\"message\":"
	    "\"upstream stream broke: upstream idle for 300000 ms\",\"type\":"
	    "\"server_error\",\"code\":\"upstream_unavailable\"}}\n\n\r\n",
	    "error event, chunked: one chunk of its exact length");
	teardown();
}

/* ---- backpressure ---- */

static void
test_backpressure(void)
{
	const size_t total = 16u << 20;
	char *body = malloc(total), head[128];
	size_t n = 0, i;
	int rounds;

	for (i = 0; i < total; i++) {
		body[i] = (char)('0' + i % 10);
	}
	snprintf(head, sizeof(head), "HTTP/1.1 200 OK\r\nContent-Length: %zu"
	    "\r\n\r\n", total);
	setup(conf, head, 0, 0, 0);
	client_reading = 0;
	for (rounds = 0; rounds < 3000; rounds++) {
		size_t w = lb_write_some(pfd, body + n, total - n);

		n += w;
		pass(T0, 1);
		if (w == 0 && upstream_interest(u) == 0 &&
		    !(lb_poll(pfd, POLLOUT, 0) & POLLOUT)) {
			break;
		}
	}
	ok(st == STREAM_WAIT, "client not reading: the pump waits");
	ok(n < total, "client not reading: the provider is held back (%zu of "
	    "%zu written)", n, total);
	ok(upstream_interest(u) == 0, "client not reading: the upstream is "
	    "not read (window full)");
	ok(server_interest(sc) & POLLOUT, "client not reading: output queued");
	ok(buf_len(&sc->out) <= sc->out.cap && buf_len(&u->in) <= 16384,
	    "buffers bounded: out %zu of %zu, upstream %zu",
	    buf_len(&sc->out), sc->out.cap, buf_len(&u->in));
	/* The client reads again: everything arrives, in order. */
	client_reading = 1;
	for (rounds = 0; rounds < 200000 && st == STREAM_WAIT; rounds++) {
		if (n < total) {
			n += lb_write_some(pfd, body + n, total - n);
		}
		pass(T0, 1);
	}
	ok_int(st, STREAM_DONE, "client reads again: DONE");
	finish_response();
	ok(seen_len == total && memcmp(seen, body, total) == 0,
	    "16 MiB: every byte in order (%zu)", seen_len);
	teardown();

	/* The same for an SSE stream: many events, a client that stops. */
	{
		static const char sse_head[] = "HTTP/1.1 200 OK\r\n"
		    "Content-Type: text/event-stream\r\n\r\n";
		size_t evn = 0, k = 0;

		for (k = 0; evn + 100 < total; k++) {
			evn += (size_t)sprintf(body + evn, "data: {\"n\":%zu,"
			    "\"choices\":[{\"delta\":{\"content\":\"xx\"}}]}"
			    "\n\n", k);
		}
		setup(conf, sse_head, 1, 1, 0);
		client_reading = 0;
		n = 0;
		for (rounds = 0; rounds < 3000; rounds++) {
			size_t w = lb_write_some(pfd, body + n, evn - n);

			n += w;
			pass(T0, 1);
			if (w == 0 && upstream_interest(u) == 0 &&
			    !(lb_poll(pfd, POLLOUT, 0) & POLLOUT)) {
				break;
			}
		}
		ok(st == STREAM_WAIT && n < evn && upstream_interest(u) == 0,
		    "SSE, client not reading: waits, provider held back");
		ok(s.ev_cap <= 32768, "SSE: event buffer bounded (%zu)",
		    s.ev_cap);
		client_reading = 1;
		for (rounds = 0; rounds < 400000 && n < evn; rounds++) {
			n += lb_write_some(pfd, body + n, evn - n);
			pass(T0, 1);
		}
		close(pfd);
		pfd = -1;
		run(100000);
		ok_int(st, STREAM_DONE, "SSE: DONE at the close");
		finish_response();
		{
			char *dec = malloc(seen_len + 1);
			int done, bad;
			size_t dn = dechunk(seen, seen_len, dec, &done, &bad);

			ok(dn == evn && done && !bad &&
			    memcmp(dec, body, evn) == 0,
			    "SSE: every event in order, valid chunked (%zu "
			    "of %zu)", dn, evn);
			free(dec);
		}
		teardown();
	}
	free(body);
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	conf = lb_conf("timeouts idle=300s\n");
	lfd = lb_listen(&addr);
	seen = malloc(SEEN_CAP + 1);
	test_json();
	test_sse();
	test_sse_big_event();
	test_broken();
	test_backpressure();
	stream_free(&s);
	free(seen);
	close(lfd);
	conf_free(conf);
	return t_done("stream");
}
