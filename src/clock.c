/* clock: the only module that reads time.
 *
 * Deadlines and cooldowns use CLOCK_MONOTONIC so a wall-clock jump changes
 * nothing; CLOCK_REALTIME is read only to stamp ledger and log lines, in
 * UTC. Integer arithmetic only. */
#include <stdio.h>
#include <time.h>

#include "clock.h"

uint64_t
clock_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Wall-clock now, broken down in UTC; *ms gets the milliseconds. */
static void
utc_now(struct tm *tm, unsigned *ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, tm);
	*ms = (unsigned)(ts.tv_nsec / 1000000);
}

void
clock_iso8601(char *out, size_t cap)
{
	struct tm tm;
	unsigned ms;

	utc_now(&tm, &ms);
	snprintf(out, cap, "%04d-%02d-%02dT%02d:%02d:%02d.%03uZ",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, ms);
}

void
clock_today(char *out, size_t cap)
{
	struct tm tm;
	unsigned ms;

	utc_now(&tm, &ms);
	snprintf(out, cap, "%04d-%02d-%02d", tm.tm_year + 1900,
	    tm.tm_mon + 1, tm.tm_mday);
}
