/* clock: the only module that reads time.
 *
 * Deadlines and cooldowns use CLOCK_MONOTONIC so a wall-clock jump changes
 * nothing; CLOCK_REALTIME is read only to stamp ledger and log lines, in
 * UTC. Integer arithmetic only. */
#include <stdio.h>
#include <string.h>
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

	static const char pat[] = "0000-00-00T00:00:00.000Z";
	/* Digit positions (from the right of each field) written by hand:
	 * this runs for every ledger line and log line. */
	unsigned v[7], w[7] = { 4, 2, 2, 2, 2, 2, 3 }, at[7] = {
		0, 5, 8, 11, 14, 17, 20 };
	int i, j;

	utc_now(&tm, &ms);
	if (cap < sizeof(pat)) {
		if (cap > 0) {
			out[0] = '\0';
		}
		return;
	}
	v[0] = (unsigned)(tm.tm_year + 1900) % 10000;
	v[1] = (unsigned)tm.tm_mon + 1;
	v[2] = (unsigned)tm.tm_mday;
	v[3] = (unsigned)tm.tm_hour;
	v[4] = (unsigned)tm.tm_min;
	v[5] = (unsigned)tm.tm_sec;
	v[6] = ms % 1000;
	memcpy(out, pat, sizeof(pat));
	for (i = 0; i < 7; i++) {
		for (j = (int)w[i] - 1; j >= 0; j--) {
			out[at[i] + (unsigned)j] = (char)('0' + v[i] % 10);
			v[i] /= 10;
		}
	}
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
