/* metrics: the counters and their text exposition (see metrics.h). */
#include <stdio.h>

#include "metrics.h"
#include "ratelimit.h"

struct metrics metrics;

size_t
metrics_render(const struct metrics_snapshot *s, char *out, size_t cap)
{
	int n = snprintf(out, cap,
	    "# TYPE relay_requests_total counter\n"
	    "relay_requests_total %llu\n"
	    "# TYPE relay_relayed_total counter\n"
	    "relay_relayed_total %llu\n"
	    "# TYPE relay_upstream_attempts_total counter\n"
	    "relay_upstream_attempts_total %llu\n"
	    "# TYPE relay_upstream_connects_total counter\n"
	    "relay_upstream_connects_total %llu\n"
	    "# TYPE relay_upstream_unavailable_total counter\n"
	    "relay_upstream_unavailable_total %llu\n"
	    "# TYPE relay_charges_total counter\n"
	    "relay_charges_total %llu\n"
	    "# TYPE relay_insufficient_balance_total counter\n"
	    "relay_insufficient_balance_total %llu\n"
	    "# TYPE relay_busy_rejections_total counter\n"
	    "relay_busy_rejections_total %llu\n"
	    "# TYPE relay_client_connections gauge\n"
	    "relay_client_connections %zu\n"
	    "# TYPE relay_upstream_connections gauge\n"
	    "relay_upstream_connections %zu\n"
	    "# TYPE relay_upstream_idle_connections gauge\n"
	    "relay_upstream_idle_connections %zu\n"
	    "# TYPE relay_ledger_lines_total counter\n"
	    "relay_ledger_lines_total %llu\n"
	    "# TYPE relay_ledger_writes_total counter\n"
	    "relay_ledger_writes_total %llu\n"
	    "# TYPE relay_ledger_fsyncs_total counter\n"
	    "relay_ledger_fsyncs_total %llu\n",
	    (unsigned long long)metrics.requests,
	    (unsigned long long)metrics.relayed,
	    (unsigned long long)metrics.attempts,
	    (unsigned long long)metrics.upstream_conns,
	    (unsigned long long)metrics.unavailable,
	    (unsigned long long)metrics.charges,
	    (unsigned long long)metrics.refused_402,
	    (unsigned long long)metrics.busy, metrics.clients, s->upstreams,
	    s->idle, (unsigned long long)s->ledger_lines,
	    (unsigned long long)s->ledger_writes,
	    (unsigned long long)s->ledger_fsyncs);

	size_t len, k;
	int m;

	if (n < 0 || (size_t)n >= cap) {
		return 0;
	}
	len = (size_t)n;
	m = snprintf(out + len, cap - len, "# TYPE relay_rate_limited_total "
	    "counter\n");
	for (k = 1; m >= 0 && (size_t)m < cap - len && k < LIMITS_NREASONS;
	    k++) {
		len += (size_t)m;
		m = snprintf(out + len, cap - len, "relay_rate_limited_total"
		    "{limit=\"%s\"} %llu\n", limits_name((enum limits_reason)k),
		    (unsigned long long)metrics.refused_limit[k]);
	}
	if (m < 0 || (size_t)m >= cap - len) {
		return 0;
	}
	return len + (size_t)m;
}
