#ifndef RELAY_CLOCK_H
#define RELAY_CLOCK_H
/* The only module that reads time. Deadlines and cooldowns use the
 * monotonic clock; the wall clock is used for ledger timestamps and UTC
 * days only. */
#include <stdint.h>
#include <stddef.h>

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t clock_mono_ms(void);

/* Milliseconds since 1970 on the wall clock (UTC days: a wallet's
 * budget_day). */
uint64_t clock_unix_ms(void);

/* Wall-clock UTC as "2026-11-24T22:10:00.123Z" into out (cap >= 25). */
void clock_iso8601(char *out, size_t cap);

/* The text up to the seconds, remembered for one second: a caller that
 * stamps a line per request from one thread keeps one (zeroed) and
 * passes it to clock_iso8601_cached(), which then costs no gmtime. */
struct clock_stamp {
	long long sec;		/* the second text is for; 0 = none yet */
	char text[20];		/* "2026-11-24T22:10:00" */
};
void clock_iso8601_cached(struct clock_stamp *c, char *out, size_t cap);

/* Wall-clock UTC day "2026-11-24" into out (cap >= 11). */
void clock_today(char *out, size_t cap);

#endif
