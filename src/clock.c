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

uint64_t
clock_unix_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts.tv_sec < 0 ? 0 : (uint64_t)ts.tv_sec * 1000 +
	    (uint64_t)ts.tv_nsec / 1000000;
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
clock_iso8601_cached(struct clock_stamp *c, char *out, size_t cap)
{
	struct timespec ts;
	unsigned ms;

	if (cap < sizeof("0000-00-00T00:00:00.000Z")) {
		if (cap > 0) {
			out[0] = '\0';
		}
		return;
	}
	clock_gettime(CLOCK_REALTIME, &ts);
	if ((long long)ts.tv_sec != c->sec || c->text[0] == '\0') {
		struct tm tm;
		unsigned v[6], w[6] = { 4, 2, 2, 2, 2, 2 }, at[6] = {
			0, 5, 8, 11, 14, 17 };
		int i, j;

		gmtime_r(&ts.tv_sec, &tm);
		v[0] = (unsigned)(tm.tm_year + 1900) % 10000;
		v[1] = (unsigned)tm.tm_mon + 1;
		v[2] = (unsigned)tm.tm_mday;
		v[3] = (unsigned)tm.tm_hour;
		v[4] = (unsigned)tm.tm_min;
		v[5] = (unsigned)tm.tm_sec;
		memcpy(c->text, "0000-00-00T00:00:00", sizeof(c->text));
		for (i = 0; i < 6; i++) {
			for (j = (int)w[i] - 1; j >= 0; j--) {
				c->text[at[i] + (unsigned)j] =
				    (char)('0' + v[i] % 10);
				v[i] /= 10;
			}
		}
		c->sec = (long long)ts.tv_sec;
	}
	ms = (unsigned)(ts.tv_nsec / 1000000) % 1000;
	memcpy(out, c->text, sizeof(c->text) - 1);
	out[19] = '.';
	out[20] = (char)('0' + ms / 100);
	out[21] = (char)('0' + ms / 10 % 10);
	out[22] = (char)('0' + ms % 10);
	out[23] = 'Z';
	out[24] = '\0';
}

void
clock_iso8601(char *out, size_t cap)
{
	struct clock_stamp c;	/* no cache: any thread may log */

	c.sec = 0;
	c.text[0] = '\0';
	clock_iso8601_cached(&c, out, cap);
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
