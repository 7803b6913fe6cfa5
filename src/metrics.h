#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H
/* The relay's counters for /metrics: plain integers bumped by the module
 * that sees the event (one process, one thread: no locks, no allocation),
 * rendered in Prometheus' text format on request. */
#include <stddef.h>
#include <stdint.h>

struct metrics {
	uint64_t requests;	/* request heads accepted for handling */
	uint64_t relayed;	/* requests handed to an upstream */
	uint64_t attempts;	/* upstream attempts */
	uint64_t upstream_conns;	/* upstream connections opened */
	uint64_t unavailable;	/* 503 upstream_unavailable answers */
	uint64_t busy;		/* connections refused with server_busy */
	uint64_t charges;	/* charge lines written */
	uint64_t refused_402;	/* insufficient_balance answers */
	uint64_t refused_429;	/* rate_limited answers (a wallet's limit) */
	uint64_t refused_limit[5];	/* ... by limit: enum limits_reason */
	/* gauges, kept current by their owners */
	size_t clients;		/* open client connections (loop) */
};

extern struct metrics metrics;

/* What /metrics reads from elsewhere at render time. */
struct metrics_snapshot {
	size_t upstreams;	/* upstream connections, active and idle */
	size_t idle;		/* of those, parked */
	uint64_t ledger_lines, ledger_writes, ledger_fsyncs;
};

/* The text exposition into out[cap]. Returns its length, or 0 when cap
 * is too small. */
size_t metrics_render(const struct metrics_snapshot *s, char *out,
    size_t cap);

#endif
