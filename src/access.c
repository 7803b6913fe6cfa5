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
#include "json.h"
#include "log.h"
#include "metrics.h"
#include "money.h"

enum { ACCESS_BUF = 64 * 1024, ACCESS_LINE_MAX = 2048 };

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
	char *p;

	if (want == NULL || strcmp(want, "off") == 0) {
		access_flush();
		close_fd();
		free(A.path);
		A.path = NULL;
		return 0;
	}
	if (strcmp(want, "stderr") == 0) {
		if (A.fd != 2) {
			access_flush();
			close_fd();
			free(A.path);
			A.path = NULL;
			A.fd = 2;
		}
		return 0;
	}
	if (A.fd > 2 && A.path != NULL && strcmp(A.path, want) == 0) {
		return 0;	/* the same file: keep it */
	}
	access_flush();
	close_fd();
	free(A.path);
	if ((A.path = p = malloc(strlen(want) + 1)) == NULL) {
		log_error("access_log: out of memory");
		return -1;
	}
	memcpy(p, want, strlen(want) + 1);
	A.fd = open_path(p);
	return A.fd >= 0 ? 0 : -1;
}

int
access_on(void)
{
	return A.fd >= 0;
}

/* A JSON string (quoted and escaped) or null; cut when it would not fit
 * (a field of a request is never near the line's size). */
static size_t
put_str(char *o, size_t cap, const char *s, size_t n)
{
	long e;

	if (s == NULL) {
		return (size_t)snprintf(o, cap, "null");
	}
	if (cap < 3) {
		return cap;
	}
	if (n > (cap - 3) / 6) {
		n = (cap - 3) / 6;
	}
	o[0] = '"';
	e = json_escape(s, n, o + 1, cap - 2);
	if (e < 0) {
		return cap;
	}
	o[e + 1] = '"';
	o[e + 2] = '\0';
	return (size_t)e + 2;
}

void
access_write(const struct access_entry *e)
{
	char line[ACCESS_LINE_MAX], ts[32], cost[MONEY_FMT_MAX];
	size_t n = 0, cap = sizeof(line) - 1;

#define ROOM (n < cap ? cap - n : 0)
#define PUT(...) (n += (size_t)snprintf(line + n, ROOM, __VA_ARGS__))
#define STR(s, len) (n += n < cap ? put_str(line + n, ROOM, (s), (len)) : 0)
	if (A.fd < 0) {
		return;
	}
	clock_iso8601_cached(&A.stamp, ts, sizeof(ts));
	money_format_trim(e->cost_nano, cost, sizeof(cost));
	PUT("{\"ts\":\"%s\",\"id\":", ts);
	STR(e->id, e->id != NULL ? strlen(e->id) : 0);
	PUT(",\"method\":");
	STR(e->method, e->method_len);
	PUT(",\"path\":");
	STR(e->path, e->path_len);
	PUT(",\"wallet\":");
	STR(e->wallet, e->wallet != NULL ? strlen(e->wallet) : 0);
	PUT(",\"model\":");
	STR(e->model, e->model != NULL ? strlen(e->model) : 0);
	PUT(",\"route\":");
	STR(e->route, e->route != NULL ? strlen(e->route) : 0);
	PUT(",\"attempts\":%u,\"status\":%d,\"in\":%llu,\"cached\":%llu,"
	    "\"cache_write\":%llu,\"out\":%llu,\"cost\":\"%s\",\"currency\":",
	    e->attempts, e->status, (unsigned long long)e->in,
	    (unsigned long long)e->cached, (unsigned long long)e->cache_write,
	    (unsigned long long)e->out, cost);
	STR(e->currency, e->currency != NULL ? strlen(e->currency) : 0);
	PUT(",\"ms\":%llu}\n", (unsigned long long)e->ms);
#undef ROOM
#undef PUT
#undef STR
	if (n >= cap) {
		metrics.access_dropped++;	/* cannot happen: fields are
						 * cut to fit */
		return;
	}
	if (A.len + n > sizeof(buf)) {
		access_flush();
	}
	memcpy(buf + A.len, line, n);
	A.len += n;
	A.lines++;
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
				log_error("access_log: write: %s; lines are "
				    "dropped until a write succeeds",
				    w < 0 ? strerror(errno) : "nothing written");
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
