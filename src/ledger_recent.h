#ifndef RELAY_LEDGER_RECENT_H
#define RELAY_LEDGER_RECENT_H
/* A wallet's recent charges, for GET /v1/usage and the console (SPEC
 * §11): the last LEDGER_RECENT_MAX charges and the spend of the last
 * LEDGER_RECENT_DAYS UTC days. Rebuilt by replay at start (the request
 * durations are not in the ledger: those entries have none), updated by
 * every charge. Plain memory, allocated with a wallet's first charge. */
#include <stddef.h>
#include <stdint.h>

enum {
	LEDGER_RECENT_MAX = 50,
	LEDGER_RECENT_DAYS = 14
};

#define LEDGER_RECENT_NO_MS UINT32_MAX	/* duration unknown */

struct ledger_recent_entry {
	char ts[25];		/* "2026-11-24T22:10:00.123Z" */
	char id[32];		/* the request id (cut) */
	char model[64];		/* the alias (cut) */
	uint64_t in, cached, cache_write, out;
	uint64_t usd_nano;
	int64_t cur_nano;	/* the debit */
	uint32_t ms;		/* duration, or LEDGER_RECENT_NO_MS */
	uint16_t status;
	uint8_t estimated;
};

struct ledger_recent {
	struct ledger_recent_entry e[LEDGER_RECENT_MAX];	/* a ring */
	size_t next, n;		/* the next slot; entries held */
	char last_day[11];	/* the newest UTC day counted, or "" */
	int64_t day_nano[LEDGER_RECENT_DAYS];	/* [0] is last_day */
	uint32_t day_requests[LEDGER_RECENT_DAYS];
};

/* Add a charge from its parts: ts (24 bytes), id and model (cut to fit),
 * tokens in, cached, cache_write, out, its cost in nano-USD and in the
 * wallet currency, duration (LEDGER_RECENT_NO_MS: unknown), status and
 * whether it was estimated. *r is allocated the first time; returns 0,
 * or -1 when out of memory (nothing kept). */
int ledger_recent_charge(struct ledger_recent **r, const char *ts,
    const char *id, const char *model, const uint64_t tokens[4],
    uint64_t usd_nano, int64_t cur_nano, uint32_t ms, unsigned status,
    int estimated);

/* The k-th newest entry (0: newest), or NULL past the last. */
const struct ledger_recent_entry *ledger_recent_get(
    const struct ledger_recent *r, size_t k);

/* The spend and charge count of UTC day (k days before today: "YYYY-MM-DD"
 * given as today and an offset k) into *nano and *requests (0 when not
 * held). */
void ledger_recent_day(const struct ledger_recent *r, const char *today,
    unsigned k, int64_t *nano, uint32_t *requests);

/* Days since 1970-01-01 of the UTC day "YYYY-MM-DD" (only its first 10
 * bytes are read), or -1 when malformed. */
long ledger_recent_day_number(const char *d);

/* The UTC day k days before day ("2026-03-01" minus 1 is "2026-02-28")
 * into out (11 bytes). */
void ledger_recent_day_before(const char *day, unsigned k, char out[11]);

#endif
