/*
 * test_server.c: the client connection (src/server.c) driven over one
 * end of a socketpair. The test is the client: it writes request bytes
 * into the other end and reads what the relay answers, and it plays the
 * owner (the front) by calling server_accept_head(), server_busy(),
 * server_respond() and server_error() where the front would, followed
 * by server_step(sc, 0, now) as front_step() does. Time is injected:
 * nothing sleeps, deadlines are compared with the configured timeouts.
 */
#include <stdlib.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "conf.h"
#include "http.h"
#include "log.h"
#include "loopback.h"
#include "server.h"
#include "t.h"
#include "watch.h"

#define T0 1000000ull

static const char conf_text[] =
    "timeouts header=2s keepalive=5s idle=3s\n"
    "limits max_body=1k max_header=1k\n";

static struct conf *conf;
static struct server_conn *sc;
static int peer = -1;		/* the client's end */
static char got[1 << 20];	/* what the client read */

static void
open_conn(const struct conf *c)
{
	int fd = lb_pair(&peer);

	sc = server_new(fd, 1, c, NULL, T0);
	if (sc == NULL) {
		printf("server_new failed\n");
		exit(2);
	}
}

static void
close_conn(void)
{
	server_free(sc);
	sc = NULL;
	close(peer);
	peer = -1;
}

/* The client sends s; the relay reads it. */
static void
send_step(const char *s, uint64_t now)
{
	lb_puts(peer, s);
	server_step(sc, POLLIN, now);
}

/* What the client has received so far (waiting a little for the first
 * byte when wait is set); *eof says the relay closed. */
static const char *
client_reads(int wait, int *eof)
{
	lb_read(peer, got, sizeof(got), wait ? 200 : 0, eof);
	return got;
}

/* SPEC §10: every Content-Length the relay writes matches its body.
 * Checked on each whole single answer the client read. */
static void
cl_matches(const char *s)
{
	const char *cl = strstr(s, "\r\nContent-Length: ");
	const char *end = strstr(s, "\r\n\r\n");
	unsigned long n;

	if (cl == NULL || end == NULL || cl > end ||
	    strstr(end, "HTTP/1.1 ") != NULL) {
		return;
	}
	n = strtoul(cl + 18, NULL, 10);
	ok(strlen(end + 4) == n, "Content-Length %lu matches the body (%zu)",
	    n, strlen(end + 4));
}

/* The x-request-id value replaced by "req_ID" once its shape is checked
 * ("req_" and 22 lower-case hex digits), so answers compare as bytes. */
static const char *
norm_id(const char *s)
{
	static char out[1 << 16];
	const char *p = strstr(s, "x-request-id: req_");
	size_t i, pre;
	int hex = 1;

	if (p == NULL) {
		snprintf(out, sizeof(out), "%s", s);
		return out;
	}
	p += strlen("x-request-id: ");
	for (i = 4; i < 26; i++) {
		hex &= (p[i] >= '0' && p[i] <= '9') ||
		    (p[i] >= 'a' && p[i] <= 'f');
	}
	hex &= p[26] == '\r';
	ok(hex, "x-request-id is req_ and 22 hex digits: %.30s", p);
	pre = (size_t)(p - s);
	snprintf(out, sizeof(out), "%.*sreq_ID%s", (int)pre, s, p + 26);
	cl_matches(out);
	return out;
}

static struct view
body_view(void)
{
	struct view v;

	v.p = sc->req.mem + sc->req.head_len;
	v.n = sc->req.body_len;
	return v;
}

static int
view_is(struct view v, const char *s)
{
	return v.n == strlen(s) && memcmp(v.p, s, v.n) == 0;
}

/* The owner answers "ok" (text/plain), as a local endpoint does. */
static void
answer_ok(uint64_t now)
{
	server_busy(sc);
	ok(buf_len(&sc->in) > 0 || sc->in.data == NULL,
	    "busy: an empty input buffer is given back");
	server_respond(sc, 200, "text/plain", NULL, "ok", 2, 0, now);
	server_step(sc, 0, now);
}

#define OK_200 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n" \
	"Content-Length: 2\r\nx-request-id: req_ID\r\n"

/* ---- request heads ---- */

static void
test_head(void)
{
	static const char head[] = "POST /v1/chat/completions?trace=1&x=2 "
	    "HTTP/1.1\r\nHost: relay\r\nAuthorization: Bearer rk-1\r\n"
	    "Content-Length: 5\r\nX-Other: v\r\n\r\n";
	size_t i;
	char one[2];

	open_conn(conf);
	ok_int(sc->state, SERVER_READ_HEAD, "new: reading a head");
	ok(server_interest(sc) == POLLIN, "new: waits for input only");
	/* One byte at a time: nothing happens before the last byte. */
	for (i = 0; i + 1 < sizeof(head) - 1; i++) {
		one[0] = head[i];
		one[1] = '\0';
		send_step(one, T0 + i);
		if (sc->state != SERVER_READ_HEAD) {
			break;
		}
	}
	ok_int(i, sizeof(head) - 2, "head incomplete until its last byte");
	send_step("\n", T0 + 100);
	ok_int(sc->state, SERVER_HEAD_READY, "last byte: HEAD_READY");
	ok(view_is(sc->req.head.method, "POST"), "method");
	ok(view_is(sc->req.path, "/v1/chat/completions"), "path without the "
	    "query: %.*s", (int)sc->req.path.n, sc->req.path.p);
	ok(view_is(sc->req.query, "?trace=1&x=2"), "query");
	ok(view_is(sc->req.head.authorization, "Bearer rk-1"), "credential");
	ok(sc->req.head.has_content_length &&
	    sc->req.head.content_length == 5, "announced length");
	ok(sc->req.head.nheaders == 4 &&
	    view_is(sc->req.head.headers[3].value, "v"), "fields");
	ok(strncmp(sc->req.id, "req_", 4) == 0 && strlen(sc->req.id) == 26,
	    "request id made: %s", sc->req.id);
	ok_str(client_reads(0, NULL), "", "nothing answered yet");
	close_conn();

	/* A whole head with its body in one write. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nContent-Length: 5\r\n\r\n"
	    "hello", T0);
	ok_int(sc->state, SERVER_HEAD_READY, "head and body: HEAD_READY");
	server_accept_head(sc, T0);
	ok_int(sc->state, SERVER_READ_BODY, "accepted: READ_BODY");
	server_step(sc, 0, T0);
	ok_int(sc->state, SERVER_BODY_READY, "buffered body: BODY_READY");
	ok(view_is(body_view(), "hello"), "body bytes");
	ok(sc->req.mem[sc->req.head_len + sc->req.body_len] == '\0',
	    "body NUL-terminated");
	ok(view_is(sc->req.path, "/v1/x"), "path still valid after the body");
	ok_str(client_reads(0, NULL), "", "no 100 Continue unasked");
	close_conn();
}

/* ---- bodies ---- */

static void
test_body_length(void)
{
	static const char body[] = "{\"model\":\"m\"}";
	size_t i;
	char one[2];

	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nContent-Length: 13\r\n"
	    "\r\n", T0);
	server_accept_head(sc, T0);
	ok_int(sc->deadline_ms, T0 + 3000, "body: idle deadline armed");
	server_step(sc, 0, T0);
	ok_int(sc->state, SERVER_READ_BODY, "no body bytes yet");
	for (i = 0; i < 12; i++) {
		one[0] = body[i];
		one[1] = '\0';
		send_step(one, T0 + 10 * (i + 1));
		if (sc->state != SERVER_READ_BODY) {
			break;
		}
	}
	ok_int(i, 12, "body: still reading before the last byte");
	send_step("}", T0 + 200);
	ok_int(sc->state, SERVER_BODY_READY, "body: BODY_READY");
	ok(view_is(body_view(), body), "body: bytes in order");
	ok_int(sc->deadline_ms, 0, "BODY_READY: no deadline of the server's");
	close_conn();
}

static void
test_body_chunked(void)
{
	static const char chunked[] = "5\r\nhello\r\n6;ext=1\r\n world\r\n"
	    "0\r\nX-Trailer: t\r\n\r\n";
	struct conf *big;
	char *many;
	size_t i, k;
	char one[2];

	/* Whole. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", T0);
	ok_int(sc->state, SERVER_HEAD_READY, "chunked: HEAD_READY");
	server_accept_head(sc, T0);
	lb_puts(peer, chunked);
	server_step(sc, POLLIN, T0);
	ok_int(sc->state, SERVER_BODY_READY, "chunked: BODY_READY");
	ok(view_is(body_view(), "hello world"), "chunked: decoded body");
	close_conn();

	/* One byte at a time, then a pipelined request right after it. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", T0);
	server_accept_head(sc, T0);
	for (i = 0; i < sizeof(chunked) - 1; i++) {
		one[0] = chunked[i];
		one[1] = '\0';
		send_step(one, T0 + i);
		if (sc->state != SERVER_READ_BODY) {
			break;
		}
	}
	ok_int(i, sizeof(chunked) - 2, "chunked byte by byte: done at the "
	    "last byte");
	ok_int(sc->state, SERVER_BODY_READY, "chunked byte by byte: ready");
	ok(view_is(body_view(), "hello world"), "chunked byte by byte: body");
	close_conn();

	/* A body that outgrows the first block (16 KiB): the block grows
	 * and the head's views move with it. */
	big = lb_conf("limits max_body=64k max_header=1k\n");
	many = malloc(64 * 1024);
	open_conn(big);
	send_step("POST /v1/grow?q=1 HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\nX-Late: still-here\r\n\r\n", T0);
	server_accept_head(sc, T0);
	for (i = 0, k = 0; i < 40; i++) {
		char line[1100];
		size_t j;

		for (j = 0; j < 1000; j++) {
			many[k + j] = (char)('a' + (k + j) % 26);
		}
		snprintf(line, sizeof(line), "3e8\r\n%.1000s\r\n", many + k);
		k += 1000;
		send_step(line, T0);
	}
	send_step("0\r\n\r\n", T0);
	ok_int(sc->state, SERVER_BODY_READY, "40 KB chunked: BODY_READY");
	ok(sc->req.body_len == 40000 && memcmp(body_view().p, many, 40000) ==
	    0, "40 KB chunked: every byte (%zu)", sc->req.body_len);
	ok(view_is(sc->req.path, "/v1/grow") && view_is(sc->req.query, "?q=1")
	    && view_is(sc->req.head.headers[2].value, "still-here"),
	    "40 KB chunked: path, query and fields still readable");
	close_conn();
	free(many);
	conf_free(big);
}

/* ---- a streamed body (server_accept_head_stream, SPEC §9) ---- */

/* Take what the connection has, in pieces of at most cap bytes, into
 * out; returns the total, -1 on an error. */
static long
take_all(char *out, size_t cap, int *end)
{
	long n, total = 0;

	while ((n = server_body_take(sc, out + total, cap, end)) > 0) {
		total += n;
	}
	return n < 0 ? -1 : total;
}

static void
test_body_stream(void)
{
	char out[4096];
	int end = 0, eof = 0;
	long n;

	/* Content-Length: the bytes are left in the input buffer until
	 * taken, the pipelined request after them is not. */
	open_conn(conf);
	send_step("POST /v1/up HTTP/1.1\r\nHost: r\r\nContent-Length: 11"
	    "\r\nExpect: 100-continue\r\n\r\n", T0);
	server_accept_head_stream(sc, T0);
	server_step(sc, POLLOUT, T0);
	ok(strstr(client_reads(1, &eof), "100 Continue") != NULL,
	    "stream: 100 Continue");
	send_step("hello", T0);
	ok_int(sc->state, SERVER_READ_BODY, "stream: stays READ_BODY");
	ok_int(sc->req.body_len, 0, "stream: nothing copied into the block");
	n = take_all(out, 3, &end);
	ok(n == 5 && memcmp(out, "hello", 5) == 0 && !end && sc->body_open,
	    "stream: 5 bytes in pieces of 3, not the end");
	send_step(" worldGET / HTTP/1.1\r\n", T0);
	n = take_all(out, sizeof(out), &end);
	ok(n == 6 && memcmp(out, " world", 6) == 0 && end && !sc->body_open,
	    "stream: the rest, the end, the next request left alone");
	close_conn();

	/* Chunked: de-chunked into pieces no bigger than asked for. */
	open_conn(conf);
	send_step("POST /v1/up HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", T0);
	server_accept_head_stream(sc, T0);
	send_step("5\r\nhello\r\n6;x=1\r\n world\r\n", T0);
	n = take_all(out, 4, &end);
	ok(n == 11 && memcmp(out, "hello world", 11) == 0 && !end,
	    "stream chunked: decoded in pieces of 4, not the end");
	send_step("0\r\n\r\n", T0);
	n = take_all(out, 4, &end);
	ok(n == 0 && end, "stream chunked: the last chunk ends it");
	close_conn();

	/* A bad chunk and a body over max_body (1k): -1 with the reason,
	 * nothing answered (the owner answers). */
	open_conn(conf);
	send_step("POST /v1/up HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", T0);
	server_accept_head_stream(sc, T0);
	send_step("zz\r\n", T0);
	ok(take_all(out, 4, &end) == -1 && sc->body_error_status == 400,
	    "stream chunked: a bad size line is -1, 400");
	close_conn();
	open_conn(conf);
	send_step("POST /v1/up HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", T0);
	server_accept_head_stream(sc, T0);
	send_step("800\r\n", T0);
	memset(out, 'a', 2048);
	out[2048] = '\0';
	send_step(out, T0);
	ok(take_all(out, sizeof(out), &end) == -1 &&
	    sc->body_error_status == 413, "stream chunked: over max_body is "
	    "-1, 413");
	close_conn();

	/* An answer while the body is still open closes after it. */
	open_conn(conf);
	send_step("POST /v1/up HTTP/1.1\r\nHost: r\r\nContent-Length: 100"
	    "\r\n\r\nabc", T0);
	server_accept_head_stream(sc, T0);
	server_busy(sc);
	server_respond(sc, 200, "text/plain", NULL, "ok", 2, 0, T0);
	server_step(sc, 0, T0);
	ok(strstr(client_reads(1, &eof), "Connection: close\r\n") != NULL,
	    "stream: an answer before the body's end says Connection: close");
	ok(sc->state == SERVER_CLOSED && client_reads(1, &eof) != NULL &&
	    eof, "stream: closed after it, the client reads the end");
	{
		/* ... with the fd handed over to drain what still comes, so
		 * a client still sending gets no reset under the answer. */
		int fd = server_take_linger(sc);

		ok(fd >= 0, "stream: the fd is handed over to drain");
		if (fd >= 0) {
			close(fd);
		}
	}
	close_conn();
}

/* ---- 100 Continue ---- */

static void
test_continue(void)
{
	int eof;

	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\n"
	    "Content-Length: 4\r\n\r\n", T0);
	ok_int(sc->state, SERVER_HEAD_READY, "expect: HEAD_READY");
	ok_str(client_reads(0, NULL), "", "expect: no 100 before the owner "
	    "accepts the head");
	server_accept_head(sc, T0);
	ok(server_interest(sc) & POLLOUT, "expect: 100 Continue queued");
	server_step(sc, POLLOUT, T0);
	ok_str(client_reads(1, NULL), "HTTP/1.1 100 Continue\r\n\r\n",
	    "expect: exactly one 100 Continue");
	send_step("ping", T0 + 5);
	ok_int(sc->state, SERVER_BODY_READY, "expect: body after the 100");
	ok(view_is(body_view(), "ping"), "expect: body");
	answer_ok(T0 + 5);
	ok_str(norm_id(client_reads(1, NULL)), OK_200 "\r\nok",
	    "expect: then the answer");
	close_conn();

	/* No body announced: no 100. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\n"
	    "Content-Length: 0\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, POLLOUT, T0);
	ok_int(sc->state, SERVER_BODY_READY, "expect, no body: ready");
	ok_str(client_reads(0, NULL), "", "expect, no body: no 100 Continue");
	close_conn();

	/* HTTP/1.0 has no 100 Continue (RFC 9110 §10.1.1). */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.0\r\nExpect: 100-continue\r\n"
	    "Content-Length: 4\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, POLLOUT, T0);
	ok_str(client_reads(0, NULL), "", "expect from a 1.0 client: no 100");
	close_conn();

	/* The owner refuses the head (a bad key): no 100, the answer, and
	 * the connection closes, since the body was never read. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nExpect: 100-continue\r\n"
	    "Content-Length: 4\r\n\r\n", T0);
	server_error(sc, 401, "invalid_api_key", "unknown key", T0);
	server_step(sc, 0, T0);
	ok_str(norm_id(client_reads(1, &eof)),
	    "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\n"
	    "Content-Length: 91\r\nx-request-id: req_ID\r\n"
	    "Connection: close\r\n\r\n"
	    "{\"error\":{\"message\":\"unknown key\",\"type\":"
	    "\"authentication_error\",\"code\":\"invalid_api_key\"}}\n",
	    "refused head: 401, no 100 Continue, Connection: close");
	if (!eof) {
		client_reads(1, &eof);
	}
	ok(eof && sc->state == SERVER_CLOSED, "refused head: closed");
	close_conn();
}

/* ---- pipelining and keep-alive ---- */

static void
test_pipeline(void)
{
	int eof;

	open_conn(conf);
	/* Two requests in one write. */
	send_step("GET /v1/models HTTP/1.1\r\nHost: r\r\n\r\n"
	    "POST /v1/second HTTP/1.1\r\nHost: r\r\nContent-Length: 3\r\n\r\n"
	    "abc", T0);
	ok(sc->state == SERVER_HEAD_READY && view_is(sc->req.path,
	    "/v1/models"), "pipelined: the first request first");
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	ok_int(sc->state, SERVER_BODY_READY, "pipelined: first has no body");
	server_busy(sc);
	/* A third request arrives while the first is being answered: it
	 * waits in the input buffer. */
	send_step("GET /v1/third HTTP/1.1\r\nHost: r\r\n\r\n", T0 + 1);
	ok_int(sc->state, SERVER_BUSY, "pipelined: still busy with the first");
	ok_str(client_reads(0, NULL), "", "pipelined: nothing answered yet");
	server_respond(sc, 200, "text/plain", NULL, "ok", 2, 0, T0 + 2);
	server_step(sc, 0, T0 + 2);
	ok(sc->state == SERVER_HEAD_READY && view_is(sc->req.path,
	    "/v1/second"), "pipelined: then the second");
	ok_int(sc->served, 1, "pipelined: one served");
	server_accept_head(sc, T0 + 2);
	server_step(sc, 0, T0 + 2);
	ok(sc->state == SERVER_BODY_READY && view_is(body_view(), "abc"),
	    "pipelined: second body");
	server_busy(sc);
	server_respond(sc, 201, "text/plain", NULL, "two", 3, 0, T0 + 3);
	server_step(sc, 0, T0 + 3);
	ok(sc->state == SERVER_HEAD_READY && view_is(sc->req.path,
	    "/v1/third"), "pipelined: then the third");
	server_accept_head(sc, T0 + 3);
	server_step(sc, 0, T0 + 3);
	answer_ok(T0 + 3);
	ok_int(sc->state, SERVER_READ_HEAD, "pipelined: all answered");
	client_reads(1, &eof);
	{
		/* Three answers, in order, each with its own id. */
		const char *a = strstr(got, "\r\n\r\nok");
		const char *b = strstr(got, "\r\n\r\ntwo");
		const char *c = a != NULL ? strstr(a + 1, "\r\n\r\nok") : NULL;

		ok(a != NULL && b != NULL && c != NULL && a < b && b < c,
		    "pipelined: answers in order: %s", got);
		ok(strstr(got, "HTTP/1.1 201 Created\r\nContent-Type: "
		    "text/plain\r\nContent-Length: 3\r\n") != NULL,
		    "pipelined: the second answer's head");
	}
	ok(!eof && sc->state == SERVER_READ_HEAD, "pipelined: kept alive");
	close_conn();
}

static void
test_keepalive(void)
{
	int eof;

	/* HTTP/1.1: kept alive by default, no Connection field. */
	open_conn(conf);
	send_step("GET /v1/a HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	answer_ok(T0 + 10);
	ok_str(norm_id(client_reads(1, &eof)), OK_200 "\r\nok",
	    "1.1: answer without a Connection field");
	ok(!eof && sc->state == SERVER_READ_HEAD && sc->fd >= 0,
	    "1.1: kept alive");
	ok_int(sc->deadline_ms, T0 + 10 + 5000, "1.1: keep-alive deadline");
	/* An idle keep-alive connection holds no buffer (memory per open
	 * connection: buf.h). */
	ok(sc->in.data == NULL && sc->out.data == NULL,
	    "1.1: idle: both buffers given back");
	/* The next request on it. */
	send_step("GET /v1/b HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
	    T0 + 20);
	ok(sc->state == SERVER_HEAD_READY && view_is(sc->req.path, "/v1/b"),
	    "1.1: second request on the connection");
	ok_int(sc->deadline_ms, 0, "HEAD_READY: no deadline of the server's");
	server_accept_head(sc, T0 + 20);
	server_step(sc, 0, T0 + 20);
	answer_ok(T0 + 20);
	ok_str(norm_id(client_reads(1, &eof)), OK_200
	    "Connection: close\r\n\r\nok", "Connection: close: said");
	if (!eof) {
		client_reads(1, &eof);
	}
	ok(eof && sc->state == SERVER_CLOSED, "Connection: close: closed");
	close_conn();

	/* HTTP/1.0: closed unless asked. */
	open_conn(conf);
	send_step("GET /v1/a HTTP/1.0\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	answer_ok(T0);
	ok_str(norm_id(client_reads(1, &eof)), OK_200
	    "Connection: close\r\n\r\nok", "1.0: Connection: close");
	if (!eof) {
		client_reads(1, &eof);
	}
	ok(eof && sc->state == SERVER_CLOSED, "1.0: closed");
	close_conn();

	open_conn(conf);
	send_step("GET /v1/a HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	answer_ok(T0);
	ok_str(norm_id(client_reads(1, &eof)), OK_200
	    "Connection: keep-alive\r\n\r\nok", "1.0 keep-alive: said");
	ok(!eof && sc->state == SERVER_READ_HEAD, "1.0 keep-alive: open");
	close_conn();
}

/* ---- errors ---- */

/* The whole answer to a request that fails while it is read, and
 * whether the relay then closed. */
static const char *
refused(const struct conf *c, const char *request, int *closed)
{
	int eof = 0;

	open_conn(c);
	send_step(request, T0);
	if (sc->state == SERVER_HEAD_READY) {
		server_accept_head(sc, T0);
		server_step(sc, 0, T0);
	}
	server_step(sc, 0, T0);
	client_reads(1, &eof);
	if (!eof) {
		char more[256];

		lb_read(peer, more, sizeof(more), 200, &eof);
		if (strlen(got) + strlen(more) < sizeof(got)) {
			strcat(got, more);
		}
	}
	*closed = eof && sc->state == SERVER_CLOSED;
	close_conn();
	return norm_id(got);
}

#define ERR_HEAD(status, len) "HTTP/1.1 " status "\r\n" \
	"Content-Type: application/json\r\nContent-Length: " len "\r\n" \
	"x-request-id: req_ID\r\nConnection: close\r\n\r\n"

static void
test_errors(void)
{
	char big[2048];
	int closed;

	/* Framing errors: 400 and the connection closes; the request
	 * pipelined behind is never answered. */
	ok_str(refused(conf, "POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Content-Length: 1\r\nContent-Length: 2\r\n\r\nab"
	    "GET /v1/next HTTP/1.1\r\nHost: r\r\n\r\n", &closed),
	    ERR_HEAD("400 Bad Request", "110")
	    "{\"error\":{\"message\":\"conflicting Content-Length values\","
	    "\"type\":\"invalid_request_error\",\"code\":\"bad_request\"}}\n",
	    "two lengths: 400, only one answer");
	ok(closed, "two lengths: closed");
	ok_str(refused(conf, "POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", &closed),
	    ERR_HEAD("400 Bad Request", "118")
	    "{\"error\":{\"message\":\"both Content-Length and "
	    "Transfer-Encoding\",\"type\":\"invalid_request_error\",\"code\":"
	    "\"bad_request\"}}\n", "length and chunked: 400");
	ok(closed, "length and chunked: closed");
	ok_str(refused(conf, "POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: gzip\r\n\r\n", &closed),
	    ERR_HEAD("501 Not Implemented", "99")
	    "{\"error\":{\"message\":\"unsupported transfer coding\",\"type\":"
	    "\"server_error\",\"code\":\"not_implemented\"}}\n",
	    "gzip coding: 501");
	ok(closed, "gzip coding: closed");
	ok_str(refused(conf, "POST /v1/x HTTP/1.1\r\n\r\n", &closed),
	    ERR_HEAD("400 Bad Request", "96")
	    "{\"error\":{\"message\":\"missing Host header\",\"type\":"
	    "\"invalid_request_error\",\"code\":\"bad_request\"}}\n",
	    "no Host: 400");
	ok(closed, "no Host: closed");
	ok_str(refused(conf, "POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", &closed),
	    ERR_HEAD("400 Bad Request", "105")
	    "{\"error\":{\"message\":\"invalid chunked request body\",\"type\":"
	    "\"invalid_request_error\",\"code\":\"bad_request\"}}\n",
	    "bad chunk size: 400");
	ok(closed, "bad chunk size: closed");
	/* A head over max_header (1 KiB): 431. */
	snprintf(big, sizeof(big), "GET /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "X-Big: %01100d\r\n\r\n", 0);
	ok_str(refused(conf, big, &closed),
	    ERR_HEAD("431 Request Header Fields Too Large", "105")
	    "{\"error\":{\"message\":\"request head too large\",\"type\":"
	    "\"invalid_request_error\",\"code\":\"headers_too_large\"}}\n",
	    "head over max_header: 431");
	ok(closed, "head over max_header: closed");

	/* 413: an announced body over max_body is refused before it is
	 * read; exactly max_body is fine. */
	ok_str(refused(conf, "POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Content-Length: 1025\r\n\r\n", &closed),
	    ERR_HEAD("413 Content Too Large", "119")
	    "{\"error\":{\"message\":\"request body is larger than max_body\","
	    "\"type\":\"invalid_request_error\",\"code\":"
	    "\"request_too_large\"}}\n", "announced 1025 > 1k: 413 at once");
	ok(closed, "announced too large: closed");
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nContent-Length: 1024\r\n"
	    "\r\n", T0);
	ok_int(sc->state, SERVER_HEAD_READY, "announced exactly max_body: ok");
	close_conn();
	/* Chunked: refused as soon as the decoded size passes max_body. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\n"
	    "Transfer-Encoding: chunked\r\n\r\n", T0);
	server_accept_head(sc, T0);
	memset(big, 'x', 600);
	memcpy(big, "258\r\n", 5);
	memcpy(big + 5 + 600, "\r\n", 3);
	send_step(big, T0);
	ok_int(sc->state, SERVER_READ_BODY, "chunked 600 of 1024: reading");
	ok_str(client_reads(0, NULL), "", "chunked 600: nothing answered");
	send_step(big, T0);
	{
		int eof = 0;

		client_reads(1, &eof);
		ok_str(norm_id(got), ERR_HEAD("413 Content Too Large", "119")
		    "{\"error\":{\"message\":\"request body is larger than "
		    "max_body\",\"type\":\"invalid_request_error\",\"code\":"
		    "\"request_too_large\"}}\n", "chunked 1200 > 1k: 413");
		server_step(sc, 0, T0);
		if (!eof) {
			client_reads(1, &eof);
		}
		ok(eof && sc->state == SERVER_CLOSED, "chunked too large: "
		    "closed");
	}
	close_conn();

	/* An error the owner sends after the whole request was read keeps
	 * the connection (the framing is known). */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nContent-Length: 2\r\n\r\n"
	    "{}", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_error(sc, 404, "model_not_found",
	    "model \"gpt-x\" not found; close: gpt-5", T0);
	server_step(sc, 0, T0);
	ok_str(norm_id(client_reads(1, NULL)),
	    "HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
	    "Content-Length: 114\r\nx-request-id: req_ID\r\n\r\n"
	    "{\"error\":{\"message\":\"model \\\"gpt-x\\\" not found; close: "
	    "gpt-5\",\"type\":\"not_found_error\",\"code\":\"model_not_found\"}}"
	    "\n", "404 after the body: escaped message, kept alive");
	ok_int(sc->state, SERVER_READ_HEAD, "404 after the body: open");
	/* Extra header lines: a 405's Allow. */
	send_step("PUT /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_error_with(sc, 405, "method_not_allowed", "use POST",
	    "Allow: GET, POST\r\n", T0);
	server_step(sc, 0, T0);
	ok_str(norm_id(client_reads(1, NULL)),
	    "HTTP/1.1 405 Method Not Allowed\r\nContent-Type: "
	    "application/json\r\nContent-Length: 92\r\nx-request-id: req_ID\r\n"
	    "Allow: GET, POST\r\n\r\n{\"error\":{\"message\":\"use POST\","
	    "\"type\":\"invalid_request_error\",\"code\":\"method_not_allowed\"}}"
	    "\n", "405: Allow");
	/* Error types by status. */
	{
		static const struct {
			int status;
			const char *type;
		} types[] = {
			{ 402, "insufficient_quota" },
			{ 429, "rate_limit_error" },
			{ 500, "server_error" },
			{ 503, "server_error" },
			{ 400, "invalid_request_error" },
		};
		size_t i;
		char want[128];

		for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
			send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
			server_accept_head(sc, T0);
			server_step(sc, 0, T0);
			server_error(sc, types[i].status, "c", "m", T0);
			server_step(sc, 0, T0);
			client_reads(1, NULL);
			snprintf(want, sizeof(want), "\"type\":\"%s\"",
			    types[i].type);
			ok(strstr(got, want) != NULL, "%d: %s",
			    types[i].status, want);
			snprintf(want, sizeof(want), "HTTP/1.1 %d %s\r\n",
			    types[i].status, server_reason(types[i].status));
			ok(strncmp(got, want, strlen(want)) == 0, "%s", want);
		}
	}
	close_conn();
}

/* ---- timeouts ---- */

static void
test_timeouts(void)
{
	int eof;

	/* A head that stalls: 408 at the header deadline, then close. */
	open_conn(conf);
	ok_int(sc->deadline_ms, T0 + 2000, "new: header deadline");
	send_step("GET /v1/x HTTP/1.1\r\nHo", T0 + 500);
	ok_int(sc->deadline_ms, T0 + 500 + 2000,
	    "first bytes: the head must arrive within `header`");
	server_timeout(sc, T0 + 2500);
	server_step(sc, 0, T0 + 2500);
	ok_str(norm_id(client_reads(1, &eof)),
	    ERR_HEAD("408 Request Timeout", "120")
	    "{\"error\":{\"message\":\"the request head did not arrive in "
	    "time\",\"type\":\"invalid_request_error\",\"code\":"
	    "\"request_timeout\"}}\n", "stalled head: 408");
	if (!eof) {
		client_reads(1, &eof);
	}
	ok(eof && sc->state == SERVER_CLOSED, "stalled head: closed");
	close_conn();

	/* A new connection that never says anything: also 408. */
	open_conn(conf);
	server_timeout(sc, T0 + 2000);
	server_step(sc, 0, T0 + 2000);
	client_reads(1, &eof);
	ok(strncmp(got, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0,
	    "silent new connection: 408");
	close_conn();

	/* Keep-alive: idle after an answer, closed without a word. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	answer_ok(T0 + 100);
	client_reads(1, NULL);
	ok_int(sc->deadline_ms, T0 + 100 + 5000, "keep-alive deadline");
	server_timeout(sc, T0 + 5100);
	ok_str(client_reads(1, &eof), "", "keep-alive timeout: no bytes");
	ok(eof && sc->state == SERVER_CLOSED, "keep-alive timeout: closed");
	close_conn();

	/* Keep-alive, then the next head starts and stalls: 408. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	answer_ok(T0);
	client_reads(1, NULL);
	send_step("GET /v1/y HT", T0 + 4000);
	ok_int(sc->deadline_ms, T0 + 4000 + 2000,
	    "next head started: header deadline replaces keep-alive");
	server_timeout(sc, T0 + 6000);
	server_step(sc, 0, T0 + 6000);
	client_reads(1, &eof);
	ok(strncmp(got, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0,
	    "stalled second head: 408, not a silent close");
	close_conn();

	/* A body that stalls: 408 at the idle deadline, then close. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nContent-Length: 9\r\n\r\n"
	    "abc", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	send_step("de", T0 + 1000);
	ok_int(sc->deadline_ms, T0 + 1000 + 3000,
	    "body bytes: the idle deadline moves");
	server_timeout(sc, T0 + 4000);
	server_step(sc, 0, T0 + 4000);
	ok_str(norm_id(client_reads(1, &eof)),
	    ERR_HEAD("408 Request Timeout", "105")
	    "{\"error\":{\"message\":\"the request body stalled\",\"type\":"
	    "\"invalid_request_error\",\"code\":\"request_timeout\"}}\n",
	    "stalled body: 408");
	if (!eof) {
		client_reads(1, &eof);
	}
	ok(eof && sc->state == SERVER_CLOSED, "stalled body: closed");
	close_conn();
}

/* ---- output: the gate, big bodies, backpressure ---- */

static void
test_output(void)
{
	static char big[300000];
	size_t i, total = 0, head_len = 0;
	int rounds, eof;
	char *p;

	/* The gate holds a complete answer back until it opens. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_busy(sc);
	server_gate(sc, 1);
	server_respond(sc, 200, "text/plain", NULL, "ok", 2, 0, T0);
	server_step(sc, POLLOUT, T0);
	ok(!(server_interest(sc) & POLLOUT), "gated: no POLLOUT");
	ok_int(server_flush(sc, T0), 0, "gated: flush does nothing");
	ok_str(client_reads(1, NULL), "", "gated: the client gets nothing");
	ok_int(sc->state, SERVER_DRAIN, "gated: waiting in DRAIN");
	server_gate(sc, 0);
	ok(server_interest(sc) & POLLOUT, "open: POLLOUT");
	ok_int(server_flush(sc, T0), 0, "open: flushed");
	server_step(sc, 0, T0);
	ok_str(norm_id(client_reads(1, NULL)), OK_200 "\r\nok",
	    "open: the answer arrives whole");
	ok_int(sc->state, SERVER_READ_HEAD, "open: next request");
	close_conn();

	/* A borrowed body far larger than the output buffer (17 KiB). */
	for (i = 0; i < sizeof(big); i++) {
		big[i] = (char)('A' + i % 23);
	}
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_busy(sc);
	server_respond(sc, 200, "text/html", NULL, big, sizeof(big), 1, T0);
	ok(sc->body_left > 0 && sc->state == SERVER_DRAIN,
	    "big body: not all written at once (%zu left)", sc->body_left);
	ok(server_interest(sc) == POLLOUT, "big body: waits for POLLOUT only");
	ok_int(sc->deadline_ms, T0 + 3000, "big body: idle deadline");
	p = malloc(sizeof(big) + 4096);
	for (rounds = 0; rounds < 1000 && sc->state == SERVER_DRAIN;
	    rounds++) {
		size_t n = lb_read(peer, p + total, sizeof(big) + 4096 - total,
		    0, NULL);

		total += n;
		server_step(sc, lb_poll(sc->fd, POLLOUT, 100), T0 + 1);
	}
	total += lb_read(peer, p + total, sizeof(big) + 4096 - total, 100,
	    &eof);
	p[total] = '\0';
	head_len = strstr(p, "\r\n\r\n") != NULL ? (size_t)(strstr(p,
	    "\r\n\r\n") - p) + 4 : 0;
	ok(strncmp(p, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n"
	    "Content-Length: 300000\r\n", 66) == 0, "big body: head");
	ok(total - head_len == sizeof(big) && memcmp(p + head_len, big,
	    sizeof(big)) == 0, "big body: every byte in order (%zu)",
	    total - head_len);
	ok_int(sc->state, SERVER_READ_HEAD, "big body: done, kept alive");
	free(p);

	/* A client that stops reading: the answer stays queued, and
	 * `idle` later the connection is closed. */
	send_step("GET /v1/y HTTP/1.1\r\nHost: r\r\n\r\n", T0 + 10);
	server_accept_head(sc, T0 + 10);
	server_step(sc, 0, T0 + 10);
	server_busy(sc);
	server_respond(sc, 200, "text/html", NULL, big, sizeof(big), 1,
	    T0 + 10);
	for (i = 0; i < 20; i++) {
		server_step(sc, POLLOUT, T0 + 20);
	}
	ok(sc->state == SERVER_DRAIN && sc->body_left > 0,
	    "stopped reader: output still queued");
	ok(sc->deadline_ms == sc->last_io_ms + 3000 &&
	    sc->last_io_ms >= T0 + 10, "stopped reader: idle deadline from "
	    "the last write");
	lb_log_begin();
	server_timeout(sc, sc->deadline_ms);
	ok(strstr(lb_log_end(), "conn 1 closed: client stopped reading") !=
	    NULL, "stopped reader: closed, reason logged");
	ok_int(sc->state, SERVER_CLOSED, "stopped reader: CLOSED");
	close_conn();

	/* Input backpressure: while busy, pipelined bytes fill the input
	 * buffer, then the relay stops reading. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_busy(sc);
	memset(big, 'p', 40000);
	total = lb_write_some(peer, big, 40000);
	for (i = 0; i < 10; i++) {
		server_step(sc, POLLIN, T0);
	}
	ok(buf_len(&sc->in) == sc->in.cap && !(server_interest(sc) & POLLIN),
	    "busy, input full (%zu of %zu): POLLIN dropped", buf_len(&sc->in),
	    sc->in.cap);
	close_conn();
}

/* ---- close reasons ---- */

static const char *
closed_with(void)
{
	static char why[128];
	const char *l = lb_log_end();
	const char *p = strstr(l, "conn 1 closed: ");
	size_t n;

	if (p == NULL) {
		return "(no close logged)";
	}
	p += strlen("conn 1 closed: ");
	n = strcspn(p, "\n");
	snprintf(why, sizeof(why), "%.*s", (int)n, p);
	return why;
}

static void
test_close(void)
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
	static char extra[40000];
	size_t i;
	int eof;

	for (i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
		ok_str(server_close_text((enum server_close_reason)i), text[i],
		    "close text");
	}
	ok_str(server_close_text((enum server_close_reason)99), "closed",
	    "close text out of range");

	/* The client hangs up between requests. */
	open_conn(conf);
	close(peer);
	peer = -1;
	lb_log_begin();
	server_step(sc, POLLIN, T0);
	ok_str(closed_with(), "client closed", "hang-up: reason");
	ok(sc->state == SERVER_CLOSED && sc->fd == -1, "hang-up: CLOSED");
	server_free(sc);

	/* ... or while its request is with an upstream (BUSY). */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_busy(sc);
	close(peer);
	peer = -1;
	lb_log_begin();
	server_step(sc, POLLIN, T0);
	ok_str(closed_with(), "client closed", "hang-up while busy: reason");
	ok_int(sc->state, SERVER_CLOSED, "hang-up while busy: CLOSED");
	server_free(sc);

	/* An answer to a client that has gone: the write fails. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_busy(sc);
	close(peer);
	peer = -1;
	lb_log_begin();
	server_respond(sc, 200, "text/plain", NULL, "ok", 2, 0, T0);
	ok_str(closed_with(), "client write failed", "write to a gone "
	    "client: reason");
	ok_int(sc->state, SERVER_CLOSED, "write to a gone client: CLOSED");
	server_free(sc);

	/* A client that closes with our answer unread: the next read
	 * fails (a reset). */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	answer_ok(T0);
	close(peer);
	peer = -1;
	lb_log_begin();
	server_step(sc, POLLIN, T0);
	ok_str(closed_with(), "client read failed", "reset: reason");
	server_free(sc);

	/* Done: the answer had Connection: close. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\nConnection: close\r\n\r\n",
	    T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	lb_log_begin();
	answer_ok(T0);
	ok_str(closed_with(), "response complete", "close after answer");
	ok_int(server_take_linger(sc), -1, "close after a whole request: "
	    "nothing to drain");
	close_conn();

	/* Refused on its head while the body is still coming: after the
	 * answer the fd goes to the owner to drain (server_take_linger),
	 * its write side shut, so the client reads the answer and the end
	 * and may go on sending without a reset. */
	open_conn(conf);
	send_step("POST /v1/x HTTP/1.1\r\nHost: r\r\nContent-Length: 100"
	    "\r\n\r\nabc", T0);
	server_error(sc, 415, "unsupported_media_type", "m", T0);
	server_step(sc, 0, T0);
	ok(sc->state == SERVER_CLOSED && sc->fd == -1, "early error: closed");
	{
		int fd = server_take_linger(sc);
		char b[64];
		ssize_t n;

		ok(fd >= 0, "early error: the fd is handed over to drain");
		ok_int(server_take_linger(sc), -1, "early error: only once");
		client_reads(1, &eof);
		ok(strncmp(got, "HTTP/1.1 415 ", 13) == 0 && eof &&
		    strstr(got, "Connection: close\r\n") != NULL,
		    "early error: the client reads the answer, then the end");
		lb_puts(peer, "the rest of the body");
		n = fd >= 0 ? read(fd, b, sizeof(b)) : -1;
		ok(n == 20 && memcmp(b, "the rest of the body", 20) == 0,
		    "early error: what the client still sends is there to "
		    "drain (%zd)", n);
		if (fd >= 0) {
			close(fd);
		}
	}
	close_conn();

	/* Keep-alive timeout. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	answer_ok(T0);
	lb_log_begin();
	server_timeout(sc, T0 + 5000);
	ok_str(closed_with(), "keep-alive timeout", "keep-alive: reason");
	close_conn();

	/* poll() says the descriptor is not open. */
	open_conn(conf);
	lb_log_begin();
	server_step(sc, POLLNVAL, T0);
	ok_str(closed_with(), "invalid socket", "POLLNVAL: reason");
	ok_int(sc->state, SERVER_CLOSED, "POLLNVAL: CLOSED");
	close_conn();

	/* A response head that cannot fit the output buffer. */
	open_conn(conf);
	send_step("GET /v1/x HTTP/1.1\r\nHost: r\r\n\r\n", T0);
	server_accept_head(sc, T0);
	server_step(sc, 0, T0);
	server_busy(sc);
	memset(extra, 'e', sizeof(extra) - 3);
	memcpy(extra, "X-E: ", 5);
	memcpy(extra + sizeof(extra) - 3, "\r\n", 3);
	lb_log_begin();
	server_respond(sc, 200, "text/plain", extra, "ok", 2, 0, T0);
	ok_str(closed_with(), "response head does not fit", "huge head: "
	    "reason");
	ok_str(client_reads(1, &eof), "", "huge head: nothing sent");
	ok(eof && sc->state == SERVER_CLOSED, "huge head: closed");
	close_conn();

	/* The owner's own reasons; a second close changes nothing. */
	open_conn(conf);
	lb_log_begin();
	server_close(sc, SERVER_CLOSE_SHUTDOWN);
	server_close(sc, SERVER_CLOSE_CUT);
	{
		const char *l = lb_log_end();
		const char *first = strstr(l, "conn 1 closed: shutdown");

		ok(first != NULL && strstr(first + 1, "conn 1 closed") == NULL,
		    "shutdown: one close logged: %s", l);
	}
	client_reads(1, &eof);
	ok(eof && sc->state == SERVER_CLOSED && sc->fd == -1,
	    "shutdown: the client sees the end");
	server_respond(sc, 200, "text/plain", NULL, "ok", 2, 0, T0);
	ok_int(sc->state, SERVER_CLOSED, "respond after close: nothing");
	close_conn();
}

/* Listen addresses (net_resolve): literals and localhost, no names. */
static void
test_listen_addr(void)
{
	struct net_addr a;
	char err[256];
	const struct sockaddr_in *v4 = (const struct sockaddr_in *)&a.ss;
	const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&a.ss;

	ok(net_resolve("127.0.0.1", "8080", &a, 1, err, sizeof(err)) == 1 &&
	    v4->sin_family == AF_INET && ntohs(v4->sin_port) == 8080 &&
	    ntohl(v4->sin_addr.s_addr) == 0x7f000001 &&
	    a.len == sizeof(*v4), "an IPv4 literal");
	ok(net_resolve("localhost", "0", &a, 1, err, sizeof(err)) == 1 &&
	    v4->sin_family == AF_INET &&
	    ntohl(v4->sin_addr.s_addr) == 0x7f000001, "localhost: 127.0.0.1");
	ok(net_resolve("::1", "443", &a, 1, err, sizeof(err)) == 1 &&
	    v6->sin6_family == AF_INET6 && ntohs(v6->sin6_port) == 443 &&
	    IN6_IS_ADDR_LOOPBACK(&v6->sin6_addr) && a.len == sizeof(*v6),
	    "an IPv6 literal");
	ok(net_resolve("relay.example", "80", &a, 1, err, sizeof(err)) < 0 &&
	    strstr(err, "'relay.example' is not an IPv4 or IPv6 address") !=
	    NULL, "a name is refused: %s", err);
	ok(net_resolve("127.0.0.1", "65536", &a, 1, err, sizeof(err)) < 0 &&
	    strstr(err, "bad port") != NULL, "a port past 65535: %s", err);
}

/* A closed connection leaves the loop's wait before its descriptor is
 * closed: a copy of the descriptor elsewhere (a child between its fork and
 * closing what it inherited, here a dup) keeps the socket alive, and an
 * epoll registration that lived on with it would report events for a
 * connection the loop has freed. */
static void
test_close_leaves_the_wait(void)
{
	struct watch_ready *r;
	int copy, n;

	ok_int(watch_open(), 0, "the wait opens");
	open_conn(conf);
	ok_int(watch_set(&sc->ev, sc->fd, POLLIN), 0, "registered");
	copy = dup(sc->fd);
	server_close(sc, SERVER_CLOSE_PEER);
	ok_int(sc->ev.flags & EV_REG, 0, "out of the wait");
	lb_puts(peer, "GET / HTTP/1.1\r\n\r\n");	/* the socket is readable */
	n = watch_wait(50, T0, &r);
	ok_int(n, 0, "no event for the closed connection");
	close(copy);
	close_conn();
}

int
main(void)
{
	log_set_level(LOG_ERROR);
	test_listen_addr();
	conf = lb_conf(conf_text);
	test_head();
	test_body_length();
	test_body_chunked();
	test_body_stream();
	test_continue();
	test_pipeline();
	test_keepalive();
	test_errors();
	test_timeouts();
	test_output();
	test_close();
	test_close_leaves_the_wait();
	conf_free(conf);
	return t_done("server");
}
