/* Unit tests for sse: every legal framing of server-sent events (CRLF,
 * LF and CR line ends, comments, data without the space, multi-line
 * data, event/id/retry fields), read incrementally in any split. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sse.h"
#include "t.h"

struct got {
	char data[8][256];	/* each event's data */
	char name[8][48];	/* each event's name */
	size_t end[8];		/* raw offset where each event ended */
	int n;
	size_t dlen;
};

static void
on_data(void *ctx, const char *p, size_t n)
{
	struct got *g = ctx;

	if (g->n < 8 && g->dlen + n < sizeof(g->data[0])) {
		memcpy(g->data[g->n] + g->dlen, p, n);
		g->dlen += n;
		g->data[g->n][g->dlen] = '\0';
	}
}

/* Feed the stream in pieces of step bytes (0: whole). */
static void
read_all(const char *s, size_t step, struct got *g)
{
	struct sse r;
	size_t n = strlen(s), off = 0;

	memset(g, 0, sizeof(*g));
	sse_init(&r, on_data, g);
	while (off < n) {
		size_t len = step == 0 || n - off < step ? n - off : step;
		size_t at = 0;

		while (at < len) {
			int ended;
			size_t k = sse_feed(&r, s + off + at, len - at, &ended);

			at += k;
			if (ended && g->n < 8) {
				snprintf(g->name[g->n], sizeof(g->name[0]), "%s",
				    r.event);
				g->end[g->n] = off + at;
				g->n++;
				g->dlen = 0;
			}
			if (k == 0) {
				break;
			}
		}
		off += len;
	}
}

static void
check(const char *what, const char *stream, int n, const char *const *data,
    const char *const *names)
{
	static const size_t steps[] = { 0, 1, 2, 3, 7 };
	struct got g;
	size_t s;
	int i;

	for (s = 0; s < sizeof(steps) / sizeof(steps[0]); s++) {
		read_all(stream, steps[s], &g);
		ok_int(g.n, n, what);
		for (i = 0; i < n && i < g.n; i++) {
			ok_str(g.data[i], data[i], what);
			if (names != NULL) {
				ok_str(g.name[i], names[i], what);
			}
		}
	}
}

static void
test_framings(void)
{
	static const char *const two[] = { "{\"a\":1}", "[DONE]" };
	static const char *const names[] = { "message_start", "ping" };
	static const char *const ml[] = { "{\"a\":\n1}" };
	static const char *const empty[] = { "", "x" };

	check("LF", "data: {\"a\":1}\n\ndata: [DONE]\n\n", 2, two, NULL);
	check("CRLF", "data: {\"a\":1}\r\n\r\ndata: [DONE]\r\n\r\n", 2, two,
	    NULL);
	check("CR", "data: {\"a\":1}\r\rdata: [DONE]\r\r", 2, two, NULL);
	check("no space", "data:{\"a\":1}\n\ndata:[DONE]\n\n", 2, two, NULL);
	check("comments and fields", ": keep-alive\n\nid: 7\nretry: 100\n"
	    "data: {\"a\":1}\n: mid-event comment\n\ndata: [DONE]\n\n", 3,
	    (const char *const[]){ "", "{\"a\":1}", "[DONE]" }, NULL);
	check("event names", "event: message_start\ndata: {\"a\":1}\n\n"
	    "event:ping\ndata: [DONE]\n\n", 2, two, names);
	check("an event without a name after a named one",
	    "event: message_start\ndata: {\"a\":1}\n\ndata: [DONE]\n\n", 2,
	    two, (const char *const[]){ "message_start", "" });
	check("multi-line data", "data: {\"a\":\ndata: 1}\n\n", 1, ml, NULL);
	check("data without a colon, two spaces", "data\n\ndata:  x\n\n", 2,
	    (const char *const[]){ "", " x" }, NULL);
	(void)empty;
	check("blank lines between events", "\n\n\r\ndata: {\"a\":1}\n\n\n\n"
	    "data: [DONE]\n\n", 2, two, NULL);
}

static void
test_event_ends(void)
{
	struct got g;

	read_all("data: a\r\n\r\ndata: b\r\n\r\n", 0, &g);
	ok_int(g.n, 2, "two events");
	ok_int(g.end[0], 11, "the CRLF that ends an event belongs to it");
	ok_int(g.end[1], 22, "second end");
	read_all("data: a\n\n", 0, &g);
	ok_int(g.end[0], 9, "LF end");
	read_all("data: a\n\ndata: partial", 0, &g);
	ok_int(g.n, 1, "an event without its blank line is not ended");
}

static void
test_big_event(void)
{
	size_t n = 3 * 1024 * 1024, i;
	char *s = malloc(n + 32);
	struct sse r;
	size_t total = 0, off = 0;
	int ended = 0;

	memcpy(s, "data: ", 6);
	for (i = 6; i < n; i++) {
		s[i] = 'x';
	}
	memcpy(s + n, "\n\n", 3);
	sse_init(&r, NULL, NULL);
	while (off < n + 2 && !ended) {
		size_t k = sse_feed(&r, s + off, (n + 2 - off) < 4096 ?
		    n + 2 - off : 4096, &ended);

		off += k;
		total += k;
	}
	ok(ended && total == n + 2, "a 3 MiB event is read in 4 KiB pieces");
	free(s);
}

int
main(void)
{
	test_framings();
	test_event_ends();
	test_big_event();
	return t_done("sse");
}
