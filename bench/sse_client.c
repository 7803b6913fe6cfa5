/* sse_client: open N concurrent HTTP/1.1 POST streams to HOST:PORT and time
 * every server-sent event. Built and run by bench/bench.py (not part of the
 * relay).
 *
 *   sse_client HOST PORT PATH N RAMP_MS TIMEOUT_S BODY [HEADER]...
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

struct conn {
	int fd, state, status, events;
	int64_t t_start, t_conn, t_sent, t_first, t_ev1, t_last, t_done;
	char carry[16];
	size_t ncarry;
	char head[32];
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

/* Count occurrences of pat in (carry + data); keeps the last len-1 bytes
 * as the next carry so a pattern split across reads is still found. */
static int
count_pat(struct conn *c, const char *data, size_t n, const char *pat,
    char *carry, size_t *ncarry, int *done_seen)
{
	static char scratch[65536 + 32];
	size_t plen = strlen(pat), len, i, keep;
	int hits = 0;

	memcpy(scratch, carry, *ncarry);
	memcpy(scratch + *ncarry, data, n);
	len = *ncarry + n;
	for (i = 0; i + plen <= len; i++) {
		if (scratch[i] == pat[0] && memcmp(scratch + i, pat, plen) == 0) {
			hits++;
			i += plen - 1;
		}
	}
	if (done_seen != NULL) {
		for (i = 0; i + 6 <= len; i++) {
			if (memcmp(scratch + i, "[DONE]", 6) == 0) {
				*done_seen = 1;
			}
		}
	}
	keep = plen > 6 ? plen - 1 : 5;
	if (keep > len) {
		keep = len;
	}
	memcpy(carry, scratch + len - keep, keep);
	*ncarry = keep;
	(void)c;
	return hits;
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

int
main(int argc, char **argv)
{
	const char *host, *path, *body;
	int port, n, timeout_s, ramp_ms, ep, i, active, next;
	char *req;
	size_t reqlen, cap;
	struct conn *cs;
	struct sockaddr_in sa;
	struct rlimit rl;
	int64_t *gaps, *conn_t, *ttfb, *fev, *dur, t0, deadline;
	size_t ngaps = 0, gapcap, nok = 0;
	int ok = 0, non200 = 0, failed = 0, incomplete = 0, ev_min = -1, ev_max = 0;
	long long ev_total = 0;

	if (argc < 8) {
		fprintf(stderr, "usage: %s HOST PORT PATH N RAMP_MS TIMEOUT_S BODY [HEADER]...\n",
		    argv[0]);
		return 2;
	}
	host = argv[1];
	port = atoi(argv[2]);
	path = argv[3];
	n = atoi(argv[4]);
	ramp_ms = atoi(argv[5]);
	timeout_s = atoi(argv[6]);
	body = argv[7];

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
	gapcap = (size_t)n * 64;
	gaps = malloc(gapcap * sizeof *gaps);
	conn_t = malloc((size_t)n * sizeof *conn_t);
	ttfb = malloc((size_t)n * sizeof *ttfb);
	fev = malloc((size_t)n * sizeof *fev);
	dur = malloc((size_t)n * sizeof *dur);
	ep = epoll_create1(0);
	if (cs == NULL || gaps == NULL || ep < 0) {
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
				char buf[65536];
				ssize_t r = recv(c->fd, buf, sizeof buf, 0);
				int hits, done = 0;

				if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
					break;
				}
				if (r <= 0) {
					c->state = ST_FAILED;
					if (c->status == 200 && c->events > 0) {
						incomplete++;
					} else if (c->status != 0 && c->status != 200) {
						non200++;
					} else {
						failed++;
					}
					active--;
					close(c->fd);
					break;
				}
				if (c->t_first == 0) {
					c->t_first = tn;
				}
				if (c->status == 0 && c->nhead < sizeof c->head - 1) {
					size_t take = sizeof c->head - 1 - c->nhead;

					if (take > (size_t)r) {
						take = (size_t)r;
					}
					memcpy(c->head + c->nhead, buf, take);
					c->nhead += take;
					c->head[c->nhead] = 0;
					if (c->nhead >= 12) {
						c->status = atoi(c->head + 9);
					}
				}
				hits = count_pat(c, buf, (size_t)r, "data: {", c->carry,
				    &c->ncarry, &done);
				while (hits-- > 0) {
					c->events++;
					if (c->events == 1) {
						c->t_ev1 = tn;
					} else if (ngaps < gapcap) {
						gaps[ngaps++] = tn - c->t_last;
					}
					c->t_last = tn;
				}
				if (done || (c->status != 0 && c->status != 200 && c->nhead >= 12)) {
					if (c->status == 200 && done) {
						c->state = ST_DONE;
						c->t_done = tn;
						ok++;
					} else {
						c->state = ST_FAILED;
						non200++;
					}
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
	for (i = 0; i < n; i++) {
		struct conn *c = &cs[i];

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
	    "\"incomplete\":%d,\"events_min\":%d,\"events_max\":%d,"
	    "\"events_total\":%lld,\"wall_us\":%lld,", n, ok, non200, failed,
	    incomplete, ev_min, ev_max, ev_total, (long long)(now_us() - t0));
	{
		double sum = 0;
		size_t j;

		for (j = 0; j < ngaps; j++) {
			sum += (double)gaps[j];
		}
		printf("\"gap_mean\":%.1f,", ngaps ? sum / (double)ngaps : -1.0);
	}
	stat_out("connect", conn_t, nok, 0);
	stat_out("ttfb", ttfb, nok, 0);
	stat_out("first_event", fev, nok, 0);
	stat_out("duration", dur, nok, 0);
	stat_out("gap", gaps, ngaps, 1);
	printf("}\n");
	return 0;
}
