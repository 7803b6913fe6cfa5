/* lat_client: latency at concurrency 1, interleaved across targets.
 * Built and run by bench/bench.py (not part of the relay).
 *
 *   lat_client SECONDS BODYFILE -t NAME PORT PATH [-H HEADER]... [-t ...]
 *
 * Each -t names a target on 127.0.0.1; the -H lines after it ("Name:
 * value") go with its requests.
 *
 * One keep-alive connection per target on 127.0.0.1. Exactly one request
 * is in flight at any time: a cycle sends one POST of BODYFILE to each
 * target in turn, waiting for the whole response before the next, and
 * every cycle starts at the next target (rotation), so no target always
 * follows the same neighbour. Measuring the targets in the same second
 * like this means a stall of the shared host hits them alike, instead of
 * deciding which target's separate run gets the bad second.
 *
 * Latency is from the first byte written to the last byte of the
 * response read (CLOCK_MONOTONIC, nanoseconds). Prints, per target:
 *   BENCHJSON {"name":"..","requests":..,"errors":..,"p50":..,"p90":..,"p99":..,"p999":..,"max":..}
 * with the percentiles in microseconds (3 decimals). A response that is
 * not 200, a broken connection or 5 s of silence counts as an error; the
 * connection is then opened again.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define MAX_TARGETS 8
#define MAX_REQUEST 8192
#define RESPONSE_BUF 65536

struct target {
	const char *name;
	int port, fd;
	char request[MAX_REQUEST];
	size_t request_len;
	int64_t *samples;
	size_t n, cap;
	unsigned long errors;
};

static char response[RESPONSE_BUF];

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int
cmp64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static void
die(const char *what)
{
	fprintf(stderr, "lat_client: %s: %s\n", what, errno ? strerror(errno) : "bad argument");
	exit(2);
}

static int
open_conn(int port)
{
	struct sockaddr_in a;
	struct timeval limit = { 5, 0 };
	int fd, one = 1;

	memset(&a, 0, sizeof a);
	a.sin_family = AF_INET;
	a.sin_port = htons((uint16_t)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	/* A target that stops answering is an error, not a hung bench. */
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, sizeof limit);
	if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Case-insensitive search for a header's value inside the head. */
static const char *
find_header(const char *head, size_t len, const char *name)
{
	size_t nl = strlen(name);

	for (size_t i = 0; i + nl + 2 < len; i++)
		if ((i == 0 || head[i - 1] == '\n') && strncasecmp(head + i, name, nl) == 0 &&
		    head[i + nl] == ':')
			return head + i + nl + 1;
	return NULL;
}

/* Read one response: Content-Length or chunked framing. Returns the
 * status code, or -1 when the connection broke or the framing is not
 * one this client reads. */
static int
read_response(int fd)
{
	size_t have = 0, head_len = 0, need = 0;
	int status = -1, chunked = 0;

	for (;;) {
		ssize_t r = recv(fd, response + have, sizeof response - have, 0);

		if (r <= 0)
			return -1;
		have += (size_t)r;
		if (!head_len) {
			char *end = memmem(response, have, "\r\n\r\n", 4);
			const char *v;

			if (!end) {
				if (have == sizeof response)
					return -1;
				continue;
			}
			head_len = (size_t)(end - response) + 4;
			if (have < 12 || memcmp(response, "HTTP/1.1 ", 9))
				return -1;
			status = atoi(response + 9);
			if ((v = find_header(response, head_len, "content-length")))
				need = head_len + strtoul(v, NULL, 10);
			else if ((v = find_header(response, head_len, "transfer-encoding")) &&
				 strstr(v, "chunked") && strstr(v, "chunked") < response + head_len)
				chunked = 1;
			else
				return -1;
		}
		if (chunked) {
			if (have >= head_len + 5 && !memcmp(response + have - 5, "0\r\n\r\n", 5))
				return status;
			if (have == sizeof response)
				return -1;
		} else if (have >= need) {
			return have == need ? status : -1;
		} else if (need > sizeof response) {
			return -1;
		}
	}
}

static void
measure(struct target *t)
{
	int64_t t0;
	int status;

	if (t->fd < 0 && (t->fd = open_conn(t->port)) < 0) {
		t->errors++;
		return;
	}
	t0 = now_ns();
	if (send(t->fd, t->request, t->request_len, MSG_NOSIGNAL) != (ssize_t)t->request_len)
		status = -1;
	else
		status = read_response(t->fd);
	if (status != 200) {
		t->errors++;
		close(t->fd);
		t->fd = -1;
		return;
	}
	if (t->n == t->cap) {
		t->cap = t->cap ? 2 * t->cap : 65536;
		if (!(t->samples = realloc(t->samples, t->cap * sizeof *t->samples)))
			die("realloc");
	}
	t->samples[t->n++] = now_ns() - t0;
}

static double
pct(const struct target *t, double p)
{
	size_t i;

	if (!t->n)
		return 0;
	i = (size_t)(p / 100.0 * (double)(t->n - 1) + 0.5);
	return (double)t->samples[i] / 1000.0;
}

int
main(int argc, char **argv)
{
	static struct target targets[MAX_TARGETS];
	char body[MAX_REQUEST];
	size_t body_len, nt = 0;
	FILE *f;
	int64_t end;

	if (argc < 4)
		die("usage: lat_client SECONDS BODYFILE -t NAME PORT PATH [-H HEADER]...");
	if (!(f = fopen(argv[2], "rb")))
		die(argv[2]);
	body_len = fread(body, 1, sizeof body, f);
	fclose(f);
	for (int a = 3; a < argc; a++) {
		struct target *t = &targets[nt - 1];
		int n;

		if (!strcmp(argv[a], "-t") && a + 3 < argc && nt < MAX_TARGETS) {
			t = &targets[nt++];
			t->name = argv[a + 1];
			t->port = atoi(argv[a + 2]);
			t->fd = -1;
			n = snprintf(t->request, sizeof t->request,
				     "POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
				     "Content-Type: application/json\r\nContent-Length: %zu\r\n",
				     argv[a + 3], t->port, body_len);
			t->request_len = (size_t)n;
			a += 3;
		} else if (!strcmp(argv[a], "-H") && a + 1 < argc && nt > 0) {
			n = snprintf(t->request + t->request_len,
				     sizeof t->request - t->request_len, "%s\r\n", argv[++a]);
			t->request_len += (size_t)n;
		} else {
			die(argv[a]);
		}
		if (t->request_len + 2 + body_len > sizeof t->request)
			die("request too long");
	}
	if (nt == 0)
		die("no target");
	for (size_t i = 0; i < nt; i++) {
		struct target *t = &targets[i];

		memcpy(t->request + t->request_len, "\r\n", 2);
		memcpy(t->request + t->request_len + 2, body, body_len);
		t->request_len += 2 + body_len;
	}
	end = now_ns() + (int64_t)atoi(argv[1]) * 1000000000;
	for (size_t cycle = 0; now_ns() < end; cycle++)
		for (size_t i = 0; i < nt; i++)
			measure(&targets[(cycle + i) % nt]);
	for (size_t i = 0; i < nt; i++) {
		struct target *t = &targets[i];

		qsort(t->samples, t->n, sizeof *t->samples, cmp64);
		printf("BENCHJSON {\"name\":\"%s\",\"requests\":%zu,\"errors\":%lu,\"p50\":%.3f,"
		       "\"p90\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f}\n",
		       t->name, t->n, t->errors, pct(t, 50), pct(t, 90), pct(t, 99), pct(t, 99.9),
		       pct(t, 100));
	}
	return 0;
}
