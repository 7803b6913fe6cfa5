#ifndef RELAY_METRICS_H
#define RELAY_METRICS_H
/* The relay's counters for /metrics (SPEC §11): plain integers bumped by
 * the module that sees the event (one process, one thread: no locks), and
 * labelled families kept in series: one per alias, per provider
 * credential, and a few fixed names. Series are made when a config comes
 * into force (metrics_config(), at start and on each reload), found by
 * name, so the counters of an alias or a credential that a reload keeps
 * go on counting; the config's structs carry their series index, so a
 * request bumps an array slot and never looks a name up or allocates.
 * Rendered in Prometheus' text format 0.0.4 on request. */
#include <stddef.h>
#include <stdint.h>

struct conf;
struct route_table;

struct metrics {
	uint64_t relayed;	/* requests handed to an upstream */
	uint64_t attempts;	/* upstream attempts (for tests; the
				 * labelled family splits them by outcome) */
	uint64_t upstream_conns;	/* upstream connections opened */
	uint64_t unavailable;	/* 503 upstream_unavailable answers */
	uint64_t busy;		/* connections refused with server_busy */
	uint64_t charges;	/* charge lines written */
	uint64_t refused_402;	/* insufficient_balance answers */
	uint64_t ledger_errors;	/* ledger writes that failed */
	uint64_t access_dropped;	/* access log lines lost to a failed
					 * write */
	uint64_t answered;	/* requests counted by metrics_request()
				 * (for tests) */
	uint64_t refused_429;	/* rate_limited answers (a wallet's limit) */
	uint64_t refused_limit[5];	/* ... by limit: enum limits_reason */
	uint64_t store_unavailable;	/* 503 store_unavailable answers */
	/* gauges, kept current by their owners */
	size_t clients;		/* open client connections (loop) */
	size_t open_streams;	/* relayed SSE answers whose head went out
				 * and whose body is still on its way
				 * (exchange) */
	uint64_t store_backlog;	/* settles and credits the shared store
				 * has not taken yet (fleet) */
};

extern struct metrics metrics;

/* Fixed model series (conf_model.metrics): 0 counts what belongs to no
 * config brought into force (never shown); METRICS_LOCAL, requests the
 * relay answers itself (its own endpoints, refusals before routing);
 * METRICS_NONE, requests relayed without a model (objects, passthrough).
 * Credential series 0 is the same sink. */
enum { METRICS_SINK = 0, METRICS_LOCAL = 1, METRICS_NONE = 2 };

/* Upstream attempt outcomes (the label's fixed set). */
enum metrics_outcome {
	METRICS_OK,		/* an answer the client gets */
	METRICS_REJECTED,	/* 401, 403, 429: counts towards cooldown */
	METRICS_SERVER_ERROR,	/* 5xx */
	METRICS_TIMEOUT,	/* connect, TLS, send or first byte too slow,
				 * or `total` ran out before the head */
	METRICS_CONNECT_ERROR,	/* DNS, connect or TLS failed */
	METRICS_BROKEN,		/* reset, closed or malformed before a head */
	METRICS_CANCELLED,	/* the client left before the head */
	METRICS_OUTCOMES
};

/* Token kinds of relay_tokens_total, in this order in every array. */
enum { METRICS_KINDS = 4 };	/* input, cached, cache_write, output */

/* Bring config c into force: every alias, credential (and provider
 * without one) gets a series, found by name among those already made or
 * new, and its index in the struct's metrics field; direct models get
 * METRICS_NONE. Series c does not name are kept (a request in flight on
 * an older config may still count in them, a later reload may name them
 * again) but not shown. At most METRICS_SERIES_MAX of each kind: beyond
 * that, new names count in the sink. Returns 0, or -1 when out of memory
 * or past that bound (what could not be made counts in the sink).
 * Allocates; call between requests (start, reload). */
enum { METRICS_SERIES_MAX = 4096 };
int metrics_config(struct conf *c);

/* A request is over: its status (the client's; 0 when it got none) and
 * how long it took, for model series model. */
void metrics_request(size_t model, int status, uint64_t ms);

/* An upstream attempt of credential series cred ended so. */
void metrics_attempt(size_t cred, enum metrics_outcome o);

/* An attempt for model series model got its response head ms after it
 * started. */
void metrics_ttfb(size_t model, uint64_t ms);

/* A charge line for model series model was written or queued: its tokens
 * (input, cached, cache_write, output) and its debit (wallet-currency
 * nano-units) count now. (A queued line whose write fails later stays
 * counted: relay_ledger_write_errors_total says it happened.) */
void metrics_charge(size_t model, const uint64_t tokens[METRICS_KINDS],
    uint64_t nano);

/* What /metrics reads from elsewhere at render time. */
struct metrics_snapshot {
	size_t upstreams;	/* upstream connections, active and idle */
	size_t idle;		/* of those, parked */
	uint64_t ledger_lines, ledger_writes, ledger_fsyncs;
	const struct conf *conf;	/* the current config: its credentials
					 * and currency */
	const struct route_table *routes;	/* its credential health */
	uint64_t now_ms;	/* monotonic, for cooldowns */
};

/* The text exposition into out[cap] (NUL-terminated when it fits).
 * Returns its length; when that is cap or more, nothing usable was
 * written: call again with a larger buffer (snprintf's contract). */
size_t metrics_render(const struct metrics_snapshot *s, char *out,
    size_t cap);

#endif
