/* faketime: a test-only wall clock for build/relay-faketime, the relay's
 * own objects relinked with -Wl,--wrap=clock_gettime -Wl,--wrap=time (a
 * static binary ignores LD_PRELOAD, and a time namespace cannot move
 * CLOCK_REALTIME). Every call from the relay and from BearSSL's
 * certificate check lands here.
 *
 * RELAY_FAKETIME_FILE names a file holding seconds since the epoch: while
 * it holds a number, CLOCK_REALTIME reads that second (plus the real
 * sub-second part); empty or missing, the real clock. The file is read at
 * every call, so a test can "set the clock" (as NTP would) while the
 * relay runs. CLOCK_MONOTONIC is never touched. */
#include <fcntl.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

/* 32-bit musl (64-bit time_t) renames the calls in its headers. The
 * Makefile wraps the same names (FAKETIME_SYMS). */
#if defined(_REDIR_TIME64) && _REDIR_TIME64
#define REAL_CLOCK_GETTIME __real___clock_gettime64
#define WRAP_CLOCK_GETTIME __wrap___clock_gettime64
#define WRAP_TIME __wrap___time64
#else
#define REAL_CLOCK_GETTIME __real_clock_gettime
#define WRAP_CLOCK_GETTIME __wrap_clock_gettime
#define WRAP_TIME __wrap_time
#endif

int REAL_CLOCK_GETTIME(clockid_t id, struct timespec *ts);
int WRAP_CLOCK_GETTIME(clockid_t id, struct timespec *ts);
time_t WRAP_TIME(time_t *t);

static int
fake_seconds(long long *out)
{
	const char *path = getenv("RELAY_FAKETIME_FILE");
	char buf[32];
	ssize_t n;
	int fd;

	if (path == NULL || (fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		return 0;
	}
	n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0 || buf[0] < '0' || buf[0] > '9') {
		return 0;
	}
	buf[n] = 0;
	*out = strtoll(buf, NULL, 10);
	return 1;
}

int
WRAP_CLOCK_GETTIME(clockid_t id, struct timespec *ts)
{
	long long s;
	int rc = REAL_CLOCK_GETTIME(id, ts);

	if (rc == 0 && id == CLOCK_REALTIME && fake_seconds(&s)) {
		ts->tv_sec = (time_t)s;
	}
	return rc;
}

time_t
WRAP_TIME(time_t *t)
{
	struct timespec ts;

	WRAP_CLOCK_GETTIME(CLOCK_REALTIME, &ts);
	if (t != NULL) {
		*t = ts.tv_sec;
	}
	return ts.tv_sec;
}
