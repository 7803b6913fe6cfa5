#ifndef RELAY_ROUTE_H
#define RELAY_ROUTE_H
/* Candidate selection and credential health (SPEC §4). Plain data and
 * pure functions: every call takes now_ms (monotonic), nothing here reads
 * a clock, so tests drive it with an injected time. */
#include <stddef.h>
#include <stdint.h>

struct conf;
struct conf_model;

struct route_cred {
	unsigned failures;		/* rejections in a row */
	uint64_t cooldown_until_ms;	/* monotonic; 0 = not cooling */
};

struct route_provider {
	uint64_t cursor;		/* round-robin start, advances per use */
	size_t ncreds;
	struct route_cred *creds;	/* owned array, one per conf credential */
};

struct route_table {
	size_t nproviders;
	struct route_provider *providers;	/* owned array */
	unsigned failures_to_cool;	/* conf cooldown failures */
	uint64_t cooldown_ms;		/* conf cooldown seconds, in ms */
};

/* Build the health table for a config. Returns 0 or -1 (no memory). */
int route_table_init(struct route_table *t, const struct conf *c);

/* Carry health over from an old table for credentials whose provider
 * name, label and secret are unchanged (config reload). */
void route_table_inherit(struct route_table *t, const struct conf *c,
    const struct route_table *old, const struct conf *oldc);

void route_table_free(struct route_table *t);

/* One request's walk over its candidates. */
struct route_plan {
	const struct conf_model *model;	/* borrowed from conf */
	size_t route;		/* index of the current route */
	size_t start;		/* first credential index in this route */
	size_t step;		/* credentials of this route looked at */
	int entered;		/* the cursor was taken for this route */
};

enum route_next_kind {
	ROUTE_TRY,		/* attempt (route, cred) */
	ROUTE_SKIP_COOLING,	/* (route, cred) is cooling; *wait_ms left */
	ROUTE_SKIP_NO_CRED,	/* the route's provider has no credential */
	ROUTE_END		/* no candidate left */
};

void route_plan_start(struct route_plan *p, const struct conf_model *m);

/* Advance to the next candidate. Always sets *route, *cred and *wait_ms
 * (meaningful for ROUTE_TRY and ROUTE_SKIP_*; cred is (size_t)-1 for
 * SKIP_NO_CRED, wait_ms 0 but for SKIP_COOLING). A provider with
 * auth=none and no credential yields one ROUTE_TRY with cred
 * (size_t)-1. */
enum route_next_kind route_next(struct route_plan *p, struct route_table *t,
    const struct conf *c, uint64_t now_ms, size_t *route, size_t *cred,
    uint64_t *wait_ms);

enum route_outcome {
	ROUTE_OK,		/* an answer the client gets (2xx, other 4xx) */
	ROUTE_REJECTED,		/* 401, 403, 429: counts towards cooldown */
	ROUTE_FAILED		/* 5xx, connect/TLS/timeout: no cooldown */
};

/* Classify an upstream status. */
enum route_outcome route_classify(int status);

/* Record an attempt's outcome. A REJECTED credential that reaches the
 * failure count is cooled for cooldown_ms, or retry_after_ms when that is
 * longer; OK resets its count. */
void route_report(struct route_table *t, size_t provider, size_t cred,
    enum route_outcome o, uint64_t retry_after_ms, uint64_t now_ms);

/* Milliseconds until the first credential of m's routes is usable again
 * (0 when one is usable now). */
uint64_t route_soonest_ms(const struct route_table *t, const struct conf *c,
    const struct conf_model *m, uint64_t now_ms);

#endif
