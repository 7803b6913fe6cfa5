/* pool: the relay's upstream connections (see pool.h). */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "dns.h"
#include "gen.h"
#include "metrics.h"
#include "pool.h"
#include "upstream.h"
#include "util.h"

#define POOL_MAX_ADDRS 4

static struct upstream **ups;	/* owned: active and parked */
static size_t nups, ups_cap;
/* The parked ones, last parked on top: a new request takes the newest
 * parked connection of its provider without looking at the busy ones (at
 * 10,000 open streams a walk over every connection cost each new stream
 * ~25 us). An entry whose connection closed while parked is dropped when
 * a search meets it or when pool_sweep() frees it; only pool_release()
 * parks. */
static struct upstream **idle;
static size_t nidle, idle_cap;
static int stopping;
static struct dns resolver;	/* large, so not on a stack */

int
pool_init(char *err, size_t errlen)
{
	return dns_init(&resolver, NULL, NULL, err, errlen);
}

void
pool_free(void)
{
	size_t i;

	for (i = 0; i < nups; i++) {
		upstream_free(ups[i]);
	}
	free(ups);
	ups = NULL;
	nups = ups_cap = 0;
	free(idle);
	idle = NULL;
	nidle = idle_cap = 0;
	dns_free(&resolver);
}

struct dns *
pool_dns(void)
{
	return &resolver;
}

static struct upstream *
take_idle(size_t provider, const struct conf *c)
{
	size_t i = nidle;

	/* Most recently parked first: the likeliest to still be open. */
	while (i > 0) {
		struct upstream *u = idle[--i];
		int take = u->state == UPSTREAM_IDLE &&
		    u->provider == provider && u->conf == c;

		if (take || u->state != UPSTREAM_IDLE) {
			/* Out of the stack: taken, or closed while parked. */
			memmove(&idle[i], &idle[i + 1],
			    (nidle - i - 1) * sizeof(*idle));
			nidle--;
		}
		if (take) {
			return u;
		}
	}
	return NULL;
}

static int
track(struct upstream *u)
{
	struct upstream **p = util_grow(ups, &ups_cap, nups + 1, sizeof(*ups));

	if (p == NULL) {
		return -1;
	}
	ups = p;
	ups[nups++] = u;
	gen_hold(u->conf);
	return 0;
}

enum pool_result
pool_get(const struct gen *g, size_t p, int fresh, void *owner,
    uint64_t now_ms, struct upstream **out, char *err, size_t errlen)
{
	const struct conf_provider *pv = &g->conf->providers[p];
	struct net_addr addrs[POOL_MAX_ADDRS];
	struct upstream *u = fresh ? NULL : take_idle(p, g->conf);
	int naddr = 0, d;

	if (u == NULL) {
		/* Never blocks: a name not in the cache is queried and the
		 * caller asks again once an answer came. */
		d = dns_lookup(&resolver, pv->host, (uint16_t)atoi(pv->port),
		    now_ms, addrs, POOL_MAX_ADDRS, &naddr, err, errlen);
		if (d == DNS_PENDING) {
			return POOL_PENDING;
		}
		if (d == DNS_FAILED || naddr == 0) {
			if (d != DNS_FAILED) {
				util_errf(err, errlen, "no address");
			}
			return POOL_FAILED;
		}
		u = upstream_connect(&addrs[0], p, g->conf,
		    pv->https ? &g->anchors : NULL, pv->host, now_ms, err,
		    errlen);
		if (u == NULL) {
			return POOL_FAILED;
		}
		if (track(u) < 0) {
			upstream_free(u);
			util_errf(err, errlen, "out of memory");
			return POOL_FAILED;
		}
		metrics.upstream_conns++;
	}
	u->owner = owner;
	*out = u;
	return POOL_GOT;
}

void
pool_release(struct upstream *u, uint64_t now_ms)
{
	struct upstream **p = NULL;

	u->owner = NULL;
	if (upstream_reusable(u) && u->conf == gen_current()->conf &&
	    !stopping && (p = util_grow(idle, &idle_cap, nidle + 1,
	    sizeof(*idle))) != NULL) {
		idle = p;
		idle[nidle++] = u;
		upstream_park(u, now_ms);
	} else {
		upstream_close(u);
	}
}

void
pool_drop(struct upstream *u)
{
	u->owner = NULL;
	upstream_close(u);
}

void
pool_stop(void)
{
	stopping = 1;
}

void
pool_close_idle(void)
{
	size_t i;

	for (i = 0; i < nups; i++) {
		if (ups[i]->state == UPSTREAM_IDLE) {
			upstream_close(ups[i]);
		}
	}
}

void
pool_sweep(void)
{
	size_t i, j;

	for (i = 0, j = 0; i < nidle; i++) {
		if (idle[i]->state == UPSTREAM_IDLE) {
			idle[j++] = idle[i];
		}
	}
	nidle = j;
	for (i = 0, j = 0; i < nups; i++) {
		struct upstream *u = ups[i];

		if (u->state == UPSTREAM_CLOSED) {
			const struct conf *c = u->conf;

			upstream_free(u);
			gen_release(c);
			continue;
		}
		ups[j++] = u;
	}
	nups = j;
}

size_t
pool_count(void)
{
	return nups;
}

struct upstream *
pool_at(size_t i)
{
	return ups[i];
}

size_t
pool_idle(void)
{
	size_t i, n = 0;

	for (i = 0; i < nups; i++) {
		n += ups[i]->state == UPSTREAM_IDLE;
	}
	return n;
}
