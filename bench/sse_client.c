/* sse_client: open N concurrent HTTP/1.1 POST streams to HOST:PORT and time
 * every server-sent event. Built and run by bench/bench.py (not part of the
 * relay).
 *
 *   sse_client [-c] [-e EVENTS] HOST PORT PATH N RAMP_MS TIMEOUT_S BODY [HEADER]...
 *
 * The N connections are opened evenly over RAMP_MS milliseconds (0: all at
 * once), so all N are open together while the first byte of each is timed
 * without a thundering herd of N simultaneous connects (non-blocking
 * connect, one epoll loop, one thread). For each stream it records: connect time, time from
 * request sent to the first response byte (TTFB), to the first content
 * event ("data: {"), the gaps between consecutive content events, and the
 * end ("data: [DONE]"). Prints one line:
 *   BENCHJSON {"n":..,"ok":..,...}
 * with percentiles in microseconds. A stream counts as ok when its status
 * is 200 and [DONE] arrived before TIMEOUT_S.
 *
 * SSE_DUMP=FILE (environment): append one line per stream, "index
 * start_us conn_us ttfb_us" (start from the first stream's), then "--":
 * to see when in the ramp the slow first bytes were.
 * -c (complete): a stream counts as ok only when it also ended properly
 * after [DONE]: the last chunk ("0" CRLF CRLF) of a chunked body, or the
 * close of one that is not chunked; it is read to that end before the
 * client closes it. -e EVENTS: and only with exactly EVENTS content
 * events ("data: {" events without "usage"). Either way the result also
 * counts every event (events_all: content, usage and [DONE]), the streams
 * that carried a usage event (usage_streams) and the ok streams with
 * another number of content events than -e said (short).
 *
 * The bytes are read by a small matcher per stream (no copies), so a
 * pattern split across two reads is still found.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum { ST_CONNECTING, ST_READING, ST_DONE, ST_FAILED };

/* Patterns the matcher looks for (KMP, lower-cased input where noted). */
enum { P_DATA, P_USAGE, P_END, P_HEADEND, P_CHUNKED, P_N };

struct pat {
	const char *s;
	uint8_t len, fold;
	uint8_t fail[32];
};

static struct pat pats[P_N] = {
	{ "data: ", 0, 0, { 0 } },
	{ "\"usage\":{", 0, 0, { 0 } },
	{ "\r\n0\r\n\r\n", 0, 0, { 0 } },
	{ "\r\n\r\n", 0, 0, { 0 } },
	{ "chunked", 0, 1, { 0 } },
};

struct conn {
	int fd, state, status, events, events_all;
	int64_t t_start, t_conn, t_sent, t_first, t_ev1, t_last, t_done;
	uint8_t m[P_N];		/* matched prefix length per pattern */
	uint8_t after_data;	/* "data: " just ended: the next byte tells */
	uint8_t in_json;	/* inside a "data: {" event (until its blank line) */
	uint8_t head_done, chunked, done_seen, end_seen, usage_seen, ev_usage;
	uint8_t nl;		/* newlines in a row (event end) */
	char head[16];
	size_t nhead;
};

static int64_t
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int64_t
pct(int64_t *v, size_t n, double p)
{
	size_t i;

	if (n == 0) {
		return -1;
	}
	i = (size_t)(p / 100.0 * (double)(n - 1) + 0.5);
	return v[i < n ? i : n - 1];
}

static void
stat_out(const char *name, int64_t *v, size_t n, int last)
{
	qsort(v, n, sizeof *v, cmp64);
	printf("\"%s_p50\":%lld,\"%s_p90\":%lld,\"%s_p99\":%lld,\"%s_max\":%lld%s",
	    name, (long long)pct(v, n, 50), name, (long long)pct(v, n, 90),
	    name, (long long)pct(v, n, 99), name,
	    (long long)(n ? v[n - 1] : -1), last ? "" : ",");
}

static void
pats_init(void)
{
	int i;

	for (i = 0; i < P_N; i++) {
		struct pat *p = &pats[i];
		uint8_t k = 0, j;

		p->len = (uint8_t)strlen(p->s);
		p->fail[0] = 0;
		for (j = 1; j < p->len; j++) {
			while (k > 0 && p->s[j] != p->s[k]) {
				k = p->fail[k - 1];
			}
			if (p->s[j] == p->s[k]) {
				k++;
			}
			p->fail[j] = k;
		}
	}
}

/* Feed byte ch to pattern i of c: 1 when the pattern just completed. */
static inline int
pat_step(struct conn *c, int i, char ch)
{
	const struct pat *p = &pats[i];
	uint8_t k = c->m[i];

	if (p->fold && ch >= 'A' && ch <= 'Z') {
		ch = (char)(ch - 'A' + 'a');
	}
	while (k > 0 && p->s[k] != ch) {
		k = p->fail[k - 1];
	}
	if (p->s[k] == ch) {
		k++;
	}
	if (k == p->len) {
		c->m[i] = p->fail[k - 1];
		return 1;
	}
	c->m[i] = k;
	return 0;
}

static int64_t *gaps;
static size_t ngaps, gapcap;

static void
gap_add(int64_t g)
{
	if (ngaps == gapcap) {
		size_t cap = gapcap ? gapcap * 2 : 65536;
		int64_t *p = realloc(gaps, cap * sizeof *p);

		if (p == NULL) {
			return;		/* keep what we have */
		}
		gaps = p;
		gapcap = cap;
	}
	gaps[ngaps++] = g;
}

/* A content event ("data: {" without usage) has ended or a usage event
 * has been seen: count and time it. */
static void
content_event(struct conn *c, int64_t tn)
{
	c->events++;
	if (c->events == 1) {
		c->t_ev1 = tn;
	} else {
		gap_add(tn - c->t_last);
	}
	c->t_last = tn;
}

/* Read data[0..n) of stream c, received at tn. */
static void
scan(struct conn *c, const char *data, size_t n, int64_t tn)
{
	size_t i;

	for (i = 0; i < n; i++) {
		char ch = data[i];

		if (!c->head_done) {
			if (c->nhead < sizeof c->head - 1) {
				c->head[c->nhead++] = ch;
				c->head[c->nhead] = 0;
				if (c->nhead == 12) {
					c->status = atoi(c->head + 9);
				}
			}
			if (pat_step(c, P_CHUNKED, ch)) {
				c->chunked = 1;
			}
			if (pat_step(c, P_HEADEND, ch)) {
				c->head_done = 1;
				/* "\r\n0\r\n\r\n" may start with the head's end */
				c->m[P_END] = 2;
			}
			continue;
		}
		if (c->after_data) {
			c->after_data = 0;
			if (ch == '{') {
				c->in_json = 1;
				c->ev_usage = 0;
				c->nl = 0;
			} else if (ch == '[') {
				c->done_seen = 1;
			}
		}
		if (pat_step(c, P_DATA, ch)) {
			c->events_all++;
			c->after_data = 1;
		}
		if (c->in_json) {
			if (pat_step(c, P_USAGE, ch)) {
				c->ev_usage = 1;
			}
			/* The event ends with a blank line: two newlines with
			 * nothing but CR between them. */
			if (ch == '\n') {
				if (++c->nl == 2) {
					c->in_json = 0;
					if (c->ev_usage) {
						c->usage_seen = 1;
					} else {
						content_event(c, tn);
					}
				}
			} else if (ch != '\r') {
				c->nl = 0;
			}
		}
		if (c->done_seen && pat_step(c, P_END, ch)) {
			c->end_seen = 1;
		}
	}
}

static int
start_conn(struct conn *c, uint32_t idx, int ep, const struct sockaddr_in *sa)
{
	struct epoll_event ev;
	int one = 1;

	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		c->state = ST_FAILED;
		return -1;
	}
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	c->t_start = now_us();
	if (connect(c->fd, (const struct sockaddr *)sa, sizeof *sa) < 0 &&
	    errno != EINPROGRESS) {
		close(c->fd);
		c->state = ST_FAILED;
		return -1;
	}
	c->state = ST_CONNECTING;
	ev.events = EPOLLOUT;
	ev.data.u32 = idx;
	epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev);
	return 0;
}

/* The stream has ended (EOF, or closed by us when it was done): ok or
 * why not. */
static void
finish(struct conn *c, int64_t tn, int complete_mode, int expect, int *ok, int *non200,
    int *failed, int *incomplete, int *shrt)
{
	int good;

	if (c->status != 0 && c->status != 200) {
		c->state = ST_FAILED;
		(*non200)++;
		return;
	}
	good = c->status == 200 && c->done_seen &&
	    (!complete_mode || c->end_seen || !c->chunked);
	if (good) {
		c->state = ST_DONE;
		c->t_done = tn;
		(*ok)++;
		if (expect >= 0 && c->events != expect) {
			(*shrt)++;
			if (complete_mode) {
				c->state = ST_FAILED;
				(*ok)--;
				(*incomplete)++;
			}
		}
	} else if (c->status == 200) {
		c->state = ST_FAILED;
		(*incomplete)++;
	} else {
		c->state = ST_FAILED;
		(*failed)++;
	}
}

int
main(int argc, char **argv)
{
	const char *host, *path, *body;
	int port, n, timeout_s, ramp_ms, ep, i, active, next, opt;
	int complete_mode = 0, expect = -1, shrt = 0, usage_streams = 0;
	char *req;
	size_t reqlen, cap, nok = 0;
	struct conn *cs;
	struct sockaddr_in sa;
	struct rlimit rl;
	int64_t *conn_t, *ttfb, *fev, *dur, t0, deadline;
	int ok = 0, non200 = 0, failed = 0, incomplete = 0, ev_min = -1, ev_max = 0;
	long long ev_total = 0, ev_all = 0;

	while ((opt = getopt(argc, argv, "+ce:")) != -1) {
		if (opt == 'c') {
			complete_mode = 1;
		} else if (opt == 'e') {
			expect = atoi(optarg);
		} else {
			return 2;
		}
	}
	argc -= optind - 1;
	argv += optind - 1;
	if (argc < 8) {
		fprintf(stderr, "usage: sse_client [-c] [-e EVENTS] HOST PORT PATH N RAMP_MS "
		    "TIMEOUT_S BODY [HEADER]...\n");
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	path = argv[3];
	n = atoi(argv[4]);
	ramp_ms = atoi(argv[5]);
	timeout_s = atoi(argv[6]);
	body = argv[7];
	pats_init();

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}

	cap = 1024 + strlen(path) + strlen(body);
	for (i = 8; i < argc; i++) {
		cap += strlen(argv[i]) + 2;
	}
	req = malloc(cap);
	reqlen = (size_t)snprintf(req, cap,
	    "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
	    "Accept: text/event-stream\r\nContent-Length: %zu\r\n",
	    path, host, port, strlen(body));
	for (i = 8; i < argc; i++) {
		reqlen += (size_t)snprintf(req + reqlen, cap - reqlen, "%s\r\n", argv[i]);
	}
	reqlen += (size_t)snprintf(req + reqlen, cap - reqlen, "\r\n%s", body);

	memset(&sa, 0, sizeof sa);
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
		fprintf(stderr, "bad host %s (IPv4 literal only)\n", host);
		return 2;
	}

	cs = calloc((size_t)n, sizeof *cs);
	conn_t = malloc((size_t)n * sizeof *conn_t);
	ttfb = malloc((size_t)n * sizeof *ttfb);
	fev = malloc((size_t)n * sizeof *fev);
	dur = malloc((size_t)n * sizeof *dur);
	ep = epoll_create1(0);
	if (cs == NULL || conn_t == NULL || ttfb == NULL || fev == NULL || dur == NULL ||
	    ep < 0) {
		perror("setup");
		return 2;
	}

	t0 = now_us();
	deadline = t0 + (int64_t)timeout_s * 1000000;
	active = 0;
	next = 0;
	while (active > 0 || next < n) {
		struct epoll_event evs[256];
		int64_t t = now_us(), wait_until = deadline;
		int k, m;

		if (t >= deadline) {
			break;
		}
		/* Open the streams due by now: stream i starts at t0 + i * ramp / n. */
		while (next < n && t >= t0 + (int64_t)ramp_ms * 1000 * next / n) {
			if (start_conn(&cs[next], (uint32_t)next, ep, &sa) == 0) {
				active++;
			} else {
				failed++;
			}
			next++;
		}
		if (next < n) {
			wait_until = t0 + (int64_t)ramp_ms * 1000 * next / n;
		}
		m = epoll_wait(ep, evs, 256, (int)((wait_until - t + 999) / 1000));
		if (m < 0) {
			if (errno == EINTR) {
				continue;
			}
			break;
		}
		for (k = 0; k < m; k++) {
			struct conn *c = &cs[evs[k].data.u32];
			int64_t tn = now_us();

			if (c->state == ST_CONNECTING) {
				int err = 0;
				socklen_t el = sizeof err;
				struct epoll_event ev;

				getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &el);
				if (err != 0 || send(c->fd, req, reqlen, MSG_NOSIGNAL) != (ssize_t)reqlen) {
					c->state = ST_FAILED;
					failed++;
					active--;
					close(c->fd);
					continue;
				}
				c->t_conn = tn;
				c->t_sent = now_us();
				c->state = ST_READING;
				ev.events = EPOLLIN;
				ev.data.u32 = evs[k].data.u32;
				epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
				continue;
			}
			if (c->state != ST_READING) {
				continue;
			}
			for (;;) {
				static char buf[65536];
				ssize_t r = recv(c->fd, buf, sizeof buf, 0);

				if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					break;
				}
				if (r < 0 && errno == EINTR) {
					continue;
				}
				if (r <= 0) {
					finish(c, tn, complete_mode, expect, &ok, &non200, &failed,
					    &incomplete, &shrt);
					active--;
					close(c->fd);
					break;
				}
				if (c->t_first == 0) {
					c->t_first = tn;
				}
				scan(c, buf, (size_t)r, tn);
				if ((c->status != 0 && c->status != 200) ||
				    (c->done_seen && (!complete_mode || c->end_seen))) {
					finish(c, tn, complete_mode, expect, &ok, &non200, &failed,
					    &incomplete, &shrt);
					active--;
					close(c->fd);
					break;
				}
			}
		}
	}
	for (i = 0; i < next; i++) {
		if (cs[i].state == ST_CONNECTING || cs[i].state == ST_READING) {
			incomplete++;
			close(cs[i].fd);
		}
	}
	incomplete += n - next;		/* never started: out of time */
	{
		const char *dp = getenv("SSE_DUMP");
		FILE *df = dp != NULL ? fopen(dp, "a") : NULL;

		for (i = 0; df != NULL && i < n; i++) {
			fprintf(df, "%d %lld %lld %lld\n", (int)i,
			    (long long)(cs[i].t_start - t0),
			    (long long)(cs[i].t_conn - cs[i].t_start),
			    (long long)(cs[i].t_first - cs[i].t_sent));
		}
		if (df != NULL) {
			fprintf(df, "--\n");
			fclose(df);
		}
	}
	for (i = 0; i < n; i++) {
		struct conn *c = &cs[i];

		ev_all += c->events_all;
		usage_streams += c->usage_seen;
		if (c->state != ST_DONE) {
			continue;
		}
		conn_t[nok] = c->t_conn - c->t_start;
		ttfb[nok] = c->t_first - c->t_sent;
		fev[nok] = c->t_ev1 - c->t_sent;
		dur[nok] = c->t_done - c->t_sent;
		nok++;
		ev_total += c->events;
		if (ev_min < 0 || c->events < ev_min) {
			ev_min = c->events;
		}
		if (c->events > ev_max) {
			ev_max = c->events;
		}
	}
	printf("BENCHJSON {\"n\":%d,\"ok\":%d,\"non200\":%d,\"failed\":%d,"
	    "\"incomplete\":%d,\"short\":%d,\"usage_streams\":%d,\"events_min\":%d,"
	    "\"events_max\":%d,\"events_total\":%lld,\"events_all\":%lld,\"wall_us\":%lld,",
	    n, ok, non200, failed, incomplete, shrt, usage_streams, ev_min, ev_max, ev_total,
	    ev_all, (long long)(now_us() - t0));
	{
		double sum = 0;
		size_t j;

		for (j = 0; j < ngaps; j++) {
			sum += (double)gaps[j];
		}
		printf("\"gap_mean\":%.1f,\"gaps\":%zu,", ngaps ? sum / (double)ngaps : -1.0, ngaps);
	}
	stat_out("connect", conn_t, nok, 0);
	stat_out("ttfb", ttfb, nok, 0);
	stat_out("first_event", fev, nok, 0);
	stat_out("duration", dur, nok, 0);
	stat_out("gap", gaps, ngaps, 1);
	printf("}\n");
	return 0;
}
