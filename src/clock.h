#ifndef RELAY_CLOCK_H
#define RELAY_CLOCK_H
/* The only module that reads time. Deadlines and cooldowns use the
 * monotonic clock; the wall clock is used for ledger timestamps only. */
#include <stdint.h>
#include <stddef.h>

/* Milliseconds on CLOCK_MONOTONIC. */
uint64_t clock_mono_ms(void);

/* Wall-clock UTC as "2026-11-24T22:10:00.123Z" into out (cap >= 25). */
void clock_iso8601(char *out, size_t cap);

/* Wall-clock UTC day "2026-11-24" into out (cap >= 11). */
void clock_today(char *out, size_t cap);

#endif
