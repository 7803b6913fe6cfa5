/* log: leveled lines on stderr, "2026-11-24T22:10:00.123Z LEVEL message".
 *
 * Each line is formatted into a stack buffer and written with a single
 * write(2), so lines from one process never interleave mid-line. Long
 * messages are cut, never split. Control characters in a message become
 * '?' so a value taken from the network cannot forge a log line. There is
 * no file output and no buffering; callers never pass secrets. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "log.h"

#define LOG_LINE_MAX 2048

/* -1 until the first message or log_set_level(): RELAY_LOG is read then. */
static int min_level = -1;

static const char *const level_names[] = { "DEBUG", "INFO", "WARN", "ERROR" };

void
log_set_level(enum log_level level)
{
	min_level = (int)level;
}

/* Write all of p, retrying on EINTR; stderr failures are ignored. */
static void
write_all(const char *p, size_t n)
{
	ssize_t r;

	while (n > 0) {
		r = write(2, p, n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			return;
		}
		p += r;
		n -= (size_t)r;
	}
}

/* Format fmt after the first `used` bytes of line, neutralise control
 * characters in the formatted part, add the newline and write it. */
static void
emit(char *line, size_t used, const char *fmt, va_list ap)
{
	int r;
	size_t i, n;

	r = vsnprintf(line + used, LOG_LINE_MAX - used - 1, fmt, ap);
	n = used;
	if (r > 0) {
		n += (size_t)r < LOG_LINE_MAX - used - 1 ?
		    (size_t)r : LOG_LINE_MAX - used - 2;
	}
	for (i = used; i < n; i++) {
		if ((unsigned char)line[i] < 0x20 && line[i] != '\t') {
			line[i] = '?';
		}
	}
	line[n++] = '\n';
	write_all(line, n);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	char line[LOG_LINE_MAX];
	const char *env;
	va_list ap;
	size_t used;

	if (min_level < 0) {
		env = getenv("RELAY_LOG");
		min_level = env && strcmp(env, "debug") == 0 ?
		    LOG_DEBUG : LOG_INFO;
	}
	if ((int)level < min_level || level > LOG_ERROR) {
		return;
	}
	clock_iso8601(line, sizeof line);
	used = strlen(line);
	used += (size_t)snprintf(line + used, sizeof line - used, " %s ",
	    level_names[level]);
	va_start(ap, fmt);
	emit(line, used, fmt, ap);
	va_end(ap);
}
