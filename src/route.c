/* route: which (route, credential) to try next, and credential health.
 *
 * Candidates are every route of the alias in order; within a route the
 * provider's credentials starting at a cursor that advances with every
 * request, so load spreads over siblings. Cooling credentials are reported
 * as skips (the caller lists them in a 503) and never attempted. Time is
 * always a monotonic now_ms passed in: a wall-clock jump changes nothing. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "route.h"

int
route_table_init(struct route_table *t, const struct conf *c)
{
	size_t i;

	memset(t, 0, sizeof(*t));
	t->failures_to_cool = c->cooldown_failures;
	t->cooldown_ms = c->cooldown_ms;
	t->nproviders = c->nproviders;
	if (c->nproviders == 0) {
		return 0;
	}
	t->providers = calloc(c->nproviders, sizeof(*t->providers));
	if (t->providers == NULL) {
		return -1;
	}
	for (i = 0; i < c->nproviders; i++) {
		struct route_provider *p = &t->providers[i];

		p->ncreds = c->providers[i].ncreds;
		if (p->ncreds == 0) {
			continue;
		}
		p->creds = calloc(p->ncreds, sizeof(*p->creds));
		if (p->creds == NULL) {
			route_table_free(t);
			return -1;
		}
	}
	return 0;
}

void
route_table_inherit(struct route_table *t, const struct conf *c,
    const struct route_table *old, const struct conf *oldc)
{
	size_t i, j, k, l;

	for (i = 0; i < c->nproviders; i++) {
		const struct conf_provider *np = &c->providers[i];

		for (k = 0; k < oldc->nproviders; k++) {
			const struct conf_provider *op = &oldc->providers[k];

			if (strcmp(np->name, op->name) != 0) {
				continue;
			}
			t->providers[i].cursor = old->providers[k].cursor;
			for (j = 0; j < np->ncreds; j++) {
				for (l = 0; l < op->ncreds; l++) {
					if (strcmp(np->creds[j].label,
					    op->creds[l].label) == 0 &&
					    strcmp(np->creds[j].secret,
					    op->creds[l].secret) == 0) {
						t->providers[i].creds[j] =
						    old->providers[k].creds[l];
					}
				}
			}
		}
	}
}

void
route_table_free(struct route_table *t)
{
	size_t i;

	if (t->providers != NULL) {
		for (i = 0; i < t->nproviders; i++) {
			free(t->providers[i].creds);
		}
	}
	free(t->providers);
	t->providers = NULL;
	t->nproviders = 0;
}

void
route_plan_start(struct route_plan *p, const struct conf_model *m)
{
	memset(p, 0, sizeof(*p));
	p->model = m;
}

enum route_next_kind
route_next(struct route_plan *p, struct route_table *t, const struct conf *c,
    uint64_t now_ms, size_t *route, size_t *cred, uint64_t *wait_ms)
{
	*route = p->route;
	*cred = (size_t)-1;
	*wait_ms = 0;
	while (p->route < p->model->nroutes) {
		size_t prov = p->model->routes[p->route].provider;
		struct route_provider *rp = &t->providers[prov];
		size_t idx;

		*route = p->route;
		if (rp->ncreds == 0) {
			p->route++;
			p->entered = 0;
			p->step = 0;
			if (c->providers[prov].auth == CONF_AUTH_NONE) {
				return ROUTE_TRY;
			}
			return ROUTE_SKIP_NO_CRED;
		}
		if (!p->entered) {
			p->entered = 1;
			p->start = (size_t)(rp->cursor++ % rp->ncreds);
			p->step = 0;
		}
		if (p->step >= rp->ncreds) {
			p->route++;
			p->entered = 0;
			continue;
		}
		idx = (p->start + p->step) % rp->ncreds;
		p->step++;
		*cred = idx;
		if (rp->creds[idx].cooldown_until_ms > now_ms) {
			*wait_ms = rp->creds[idx].cooldown_until_ms - now_ms;
			return ROUTE_SKIP_COOLING;
		}
		return ROUTE_TRY;
	}
	return ROUTE_END;
}

enum route_outcome
route_classify(int status)
{
	if (status == 401 || status == 403 || status == 429) {
		return ROUTE_REJECTED;
	}
	if (status >= 500) {
		return ROUTE_FAILED;
	}
	return ROUTE_OK;
}

void
route_report(struct route_table *t, size_t provider, size_t cred,
    enum route_outcome o, uint64_t retry_after_ms, uint64_t now_ms)
{
	struct route_cred *rc;
	uint64_t cool;

	if (provider >= t->nproviders || cred >= t->providers[provider].ncreds) {
		return;
	}
	rc = &t->providers[provider].creds[cred];
	switch (o) {
	case ROUTE_OK:
		rc->failures = 0;
		rc->cooldown_until_ms = 0;
		break;
	case ROUTE_REJECTED:
		rc->failures++;
		if (rc->failures >= t->failures_to_cool) {
			cool = t->cooldown_ms;
			if (retry_after_ms > cool) {
				cool = retry_after_ms;
			}
			rc->cooldown_until_ms = now_ms + cool;
			/* A new run of rejections is needed after the
			 * cooldown; one more failure does not re-cool. */
			rc->failures = 0;
		}
		break;
	case ROUTE_FAILED:
		break;
	}
}

uint64_t
route_soonest_ms(const struct route_table *t, const struct conf *c,
    const struct conf_model *m, uint64_t now_ms)
{
	uint64_t best = UINT64_MAX;
	size_t i, j;

	for (i = 0; i < m->nroutes; i++) {
		const struct route_provider *rp =
		    &t->providers[m->routes[i].provider];

		if (rp->ncreds == 0 &&
		    c->providers[m->routes[i].provider].auth == CONF_AUTH_NONE) {
			return 0;
		}
		for (j = 0; j < rp->ncreds; j++) {
			uint64_t until = rp->creds[j].cooldown_until_ms;
			uint64_t w = until > now_ms ? until - now_ms : 0;

			if (w < best) {
				best = w;
			}
		}
	}
	return best == UINT64_MAX ? 0 : best;
}
