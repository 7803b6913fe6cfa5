#ifndef RELAY_RATELIMIT_H
#define RELAY_RATELIMIT_H
/* A wallet's limits in the process (SPEC §12): rpm, tpm, max_streams and
 * budget_day checked on one relay's own windows, with the semantics of
 * the shared store's HOLD script (store_scripts.h), so that a wallet
 * behaves the same with and without a store:
 *  - rpm: a sliding log of the admissions of the last 60 s (exact; its
 *    Retry-After is when the admission that must leave has left);
 *  - tpm: settled tokens (input and output) in 1-s buckets, the 61 whose
 *    seconds can lie within the last 60 s, plus the estimates of the open
 *    holds until they settle; one request over tpm can never pass (-1);
 *  - max_streams: open streamed requests (Retry-After 1);
 *  - budget_day: charged this UTC day plus the open holds plus this
 *    hold; Retry-After is the next UTC midnight when the day's charges
 *    alone are in the way, else 1; one hold over the budget: -1.
 * With several limits over, the longest wait and its reason win (-1, no
 * use waiting, above all).
 *
 * Pure: the caller gives the times, nothing is read here; the rpm log
 * grows (to at most rpm entries while rpm stays) and is freed by
 * limits_free(). */
#include <stddef.h>
#include <stdint.h>

#define LIMITS_TPM_SLOTS 62	/* 61 seconds of buckets, and one free */

/* What a wallet allows; 0 is no limit. */
struct limits_set {
	uint64_t rpm, tpm, max_streams;
	int64_t budget_day;	/* nano-units of the wallet currency */
};

/* One wallet's windows. Zeroed is empty. Fields are private. */
struct limits_state {
	uint64_t *log;		/* owned: admission times (ms), a ring */
	size_t cap, head, n;
	struct limits_bucket {
		uint64_t sec;	/* the second it is for */
		uint64_t tok;	/* tokens settled in it */
	} tpm[LIMITS_TPM_SLOTS];	/* second s in slot s % 62 */
	uint64_t htok;		/* tokens of the open holds */
	uint64_t streams;	/* open streamed holds */
};

enum limits_reason {
	LIMITS_OK = 0,
	LIMITS_MAX_STREAMS,
	LIMITS_RPM,
	LIMITS_TPM,
	LIMITS_BUDGET_DAY,
	LIMITS_NREASONS
};

/* A hold to admit. */
struct limits_ask {
	uint64_t now_ms;	/* any clock that never goes back: windows */
	uint64_t day_left_ms;	/* until the next UTC midnight */
	uint64_t tokens;	/* estimated input + output */
	int stream;		/* counts against max_streams */
	int64_t amount;		/* the hold, nano */
	int64_t held;		/* the wallet's open holds, without it */
	int64_t spent;		/* charged this UTC day */
};

/* The limit of l that admitting a would pass (LIMITS_OK: none), with
 * *retry_s its Retry-After in seconds, or -1 when waiting cannot help.
 * Drops what left the windows by a->now_ms. */
enum limits_reason limits_check(struct limits_state *s,
    const struct limits_set *l, const struct limits_ask *a,
    int64_t *retry_s);

/* a was admitted: into the rpm log (when l->rpm is set), its tokens and
 * stream counted as open. 0, or -1 when the log cannot grow (nothing
 * counted: refuse the request). */
int limits_admit(struct limits_state *s, const struct limits_set *l,
    const struct limits_ask *a);

/* An admitted hold is over: its tokens and stream are no longer open. */
void limits_release(struct limits_state *s, uint64_t tokens, int stream);

/* tokens were charged at now_ms: into the tpm window. */
void limits_settled(struct limits_state *s, uint64_t now_ms,
    uint64_t tokens);

/* In use at now_ms: admissions in the rpm window, tokens in the tpm
 * window (settled ones and open holds'). */
void limits_used(struct limits_state *s, uint64_t now_ms, uint64_t *rpm,
    uint64_t *tpm);

/* "max_streams", "rpm", "tpm", "budget_day" (the store's words too), or
 * "" for LIMITS_OK. */
const char *limits_name(enum limits_reason r);

/* The reason named p[0..n) (a store reply), or LIMITS_OK. Test hook
 * until the store client reads the HOLD script's replies. */
enum limits_reason limits_by_name(const char *p, size_t n);

void limits_free(struct limits_state *s);

#endif
