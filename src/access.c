/*
 * access: the access log (see access.h).
 *
 * One fixed buffer, filled by access_write() and emptied by
 * access_flush() with one write(2): a busy pass costs one system call,
 * not one per request. What it does not do: rotate files itself (an
 * operator's logrotate renames the file and sends SIGUSR1), or block on a
 * slow stderr pipe (a write that fails drops the lines and counts them).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "access.h"
#include "clock.h"
#include "conf.h"
#include "exchange.h"
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "server.h"

enum { ACCESS_BUF = 64 * 1024, ACCESS_LINE_MAX = 4096 };

static struct {
	int fd;			/* -1: off; 2: stderr (not ours to close) */
	char *path;		/* owned: the file's path, NULL for stderr */
	size_t len;		/* bytes in buf */
	size_t lines;		/* lines in buf, for the dropped count */
	int failing;		/* the last write failed (logged once) */
	struct clock_stamp stamp;
} A = { -1, NULL, 0, 0, 0, { 0, { 0 } } };

/* Apart from A, so that it is in .bss, not 64 KiB of the binary. */
static char buf[ACCESS_BUF];

static int
open_path(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);

	if (fd < 0) {
		log_error("access_log %s: %s", path, strerror(errno));
	}
	return fd;
}

static void
close_fd(void)
{
	if (A.fd > 2) {
		close(A.fd);
	}
	A.fd = -1;
}

int
access_config(const struct conf *c)
{
	const char *want = c->access_log;
	int err = want != NULL && strcmp(want, "stderr") == 0;
	size_t n;

	if (want != NULL && strcmp(want, "off") == 0) {
		want = NULL;
	}
	if (want != NULL && (err ? A.fd == 2 : A.path != NULL &&
	    strcmp(A.path, want) == 0)) {
		return 0;	/* the same: keep it */
	}
	access_flush();
	close_fd();
	free(A.path);
	A.path = NULL;
	if (want == NULL || err) {
		A.fd = err ? 2 : -1;
		return 0;
	}
	n = strlen(want) + 1;
	if ((A.path = malloc(n)) == NULL) {
		log_error("access_log: out of memory");
		return -1;
	}
	memcpy(A.path, want, n);
	A.fd = open_path(A.path);
	return A.fd >= 0 ? 0 : -1;
}

int
access_on(void)
{
	return A.fd >= 0;
}

/* A JSON string (quoted and escaped), or null, appended to line[*n..cap)
 * (*n past cap when it does not fit). */
static void
put_str(char *line, size_t *n, size_t cap, const char *s, size_t len)
{
	long e = -1;

	if (*n + 8 > cap) {
		*n = cap;
		return;
	}
	if (s == NULL) {
		memcpy(line + *n, "null", 4);
		*n += 4;
		return;
	}
	line[(*n)++] = '"';
	e = json_escape(s, len, line + *n, cap - *n - 1);
	*n = e < 0 ? cap : *n + (size_t)e;
	if (*n < cap) {
		line[(*n)++] = '"';
	}
}

void
access_write(const struct server_request *rq, const struct exchange *ex,
    const char *wallet, const char *currency, int status, uint64_t ms)
{
	static const char *const key[7] = { "id", "method", "path", "wallet",
	    "model", "route", "currency" };
	const char *val[7];
	size_t len[7], n, i, cap = ACCESS_LINE_MAX;
	uint64_t t[4] = { 0, 0, 0, 0 }, nano = 0;
	char line[ACCESS_LINE_MAX], ts[32], cost[MONEY_FMT_MAX];
	int k;

	if (A.fd < 0) {
		return;
	}
	val[0] = rq->id[0] != '\0' ? rq->id : NULL;
	val[1] = rq->head.method.p;
	len[1] = rq->head.method.n;
	val[2] = rq->path.p;
	len[2] = rq->path.n;
	val[3] = wallet;
	val[4] = ex != NULL && !ex->model->direct ? ex->model->alias : NULL;
	val[5] = ex != NULL && ex->attempts > 0 ?
	    ex->model->routes[ex->route].text : NULL;
	val[6] = currency;
	if (ex != NULL && ex->charged) {
		memcpy(t, ex->charged_tokens, sizeof(t));
		nano = ex->charged_nano;
	}
	clock_iso8601_cached(&A.stamp, ts, sizeof(ts));
	n = (size_t)snprintf(line, cap, "{\"ts\":\"%s\"", ts);
	for (i = 0; i < 7; i++) {
		if (i != 1 && i != 2) {
			len[i] = val[i] != NULL ? strlen(val[i]) : 0;
		}
		if (len[i] > 256) {
			len[i] = 256;	/* a field is never near this */
		}
		n += n < cap ? (size_t)snprintf(line + n, cap - n, ",\"%s\":",
		    key[i]) : 0;
		put_str(line, &n, cap, val[i], len[i]);
	}
	money_format_trim((int64_t)nano, cost, sizeof(cost));
	k = n < cap ? snprintf(line + n, cap - n, ",\"attempts\":%u,"
	    "\"status\":%d,\"in\":%llu,\"cached\":%llu,\"cache_write\":%llu,"
	    "\"out\":%llu,\"cost\":\"%s\",\"ms\":%llu}\n",
	    ex != NULL ? ex->attempts : 0, status, (unsigned long long)t[0],
	    (unsigned long long)t[1], (unsigned long long)t[2],
	    (unsigned long long)t[3], cost, (unsigned long long)ms) : -1;
	if (k < 0 || n + (size_t)k >= cap) {
		metrics.access_dropped++;	/* does not fit: fields are cut
						 * far below the line's size */
		return;
	}
	n += (size_t)k;
	if (A.len + n > sizeof(buf)) {
		access_flush();
	}
	memcpy(buf + A.len, line, n);
	A.len += n;
	A.lines++;
}

void
access_request(struct server_request *rq, const struct exchange *ex,
    const struct conf *c, long *wallet, uint64_t now_ms)
{
	int status = rq->status != 0 ? rq->status : 499;
	uint64_t ms = rq->started_ms != 0 && now_ms > rq->started_ms ?
	    now_ms - rq->started_ms : 0;

	if (rq->accounted || (ex == NULL && rq->status == 0)) {
		return;
	}
	rq->accounted = 1;
	metrics_request(ex != NULL ? ex->model->metrics : METRICS_LOCAL,
	    status, ms);
	if (A.fd >= 0 && c != NULL) {
		access_write(rq, ex, *wallet >= 0 ? c->wallets[*wallet].name :
		    conf_open_mode(c) ? "default" : NULL, c->currency, status,
		    ms);
	}
	*wallet = -1;
}

void
access_flush(void)
{
	size_t off = 0;
	ssize_t w;

	while (A.fd >= 0 && off < A.len) {
		w = write(A.fd, buf + off, A.len - off);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			if (!A.failing) {
				log_error("access_log: write: %s (lines "
				    "dropped)", w < 0 ? strerror(errno) : "0");
			}
			A.failing = 1;
			metrics.access_dropped += A.lines;
			break;
		}
		off += (size_t)w;
	}
	if (off == A.len) {
		A.failing = 0;
	}
	A.len = 0;
	A.lines = 0;
}

void
access_reopen(void)
{
	access_flush();
	if (A.path == NULL) {
		return;	/* off, or stderr */
	}
	close_fd();
	A.fd = open_path(A.path);
	if (A.fd >= 0) {
		log_info("access_log %s reopened", A.path);
	}
}

void
access_close(void)
{
	access_flush();
	close_fd();
	free(A.path);
	A.path = NULL;
}
