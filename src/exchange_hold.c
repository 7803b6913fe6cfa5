/* exchange_hold: a request's hold, in the process or in the shared store,
 * and the answer to a hold refused (see exchange.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "conf.h"
#include "exchange.h"
#include "fleet.h"
#include "gen.h"
#include "metrics.h"
#include "money.h"
#include "ratelimit.h"
#include "server.h"

uint64_t
exchange_hold_tokens(const struct exchange *ex)
{
	return ex->est_in > UINT64_MAX - ex->est_out ? UINT64_MAX :
	    ex->est_in + ex->est_out;
}

static void estimate(struct exchange *ex);

int
exchange_hold(struct exchange *ex, int limited, uint64_t overdraft_nano,
    char *msg, size_t msglen)
{
	const struct conf *c = ex->gen->conf;
	int r, k;

	estimate(ex);
	r = billing_hold(c, ex->model, ex->wallet, limited, overdraft_nano,
	    ex->est_in, ex->est_out, &ex->hold_nano, msg, msglen);
	if (r == BILLING_HELD && limited && ex->limits != NULL) {
		k = billing_limits(ex->limits, exchange_hold_tokens(ex), ex->jr.stream,
		    ex->hold_nano, &ex->retry_s, msg, msglen);
		if (k != 0) {
			billing_release(ex->wallet, ex->hold_nano);
			r = k > 0 ? BILLING_LIMITED : BILLING_NOMEM;
		} else {
			ex->limited = 1;
		}
	}
	if (r != BILLING_HELD) {
		ex->hold_nano = 0;
		ex->settled = 1;	/* nothing held, nothing to charge */
	}
	return r;
}

/* The hold's token estimate: the prompt as bytes / 4, max_tokens (or
 * the config's holds max_tokens) out for each of n choices. */
static void
estimate(struct exchange *ex)
{
	const struct conf *c = ex->gen->conf;

	ex->est_in = ex->sc->req.body_len / 4;
	ex->est_out = ex->jr.has_max_tokens ? ex->jr.max_tokens :
	    c->hold_max_tokens;
	/* n choices each produce up to the allowance (SPEC §8); no
	 * overflow: both sides are bounded far below 2^32. */
	if (ex->jr.n > 1) {
		ex->est_out = ex->jr.n > UINT32_MAX || ex->est_out > UINT32_MAX ?
		    UINT64_MAX / 4 : ex->est_out * ex->jr.n;
	}
	if (ex->no_charge) {
		ex->est_in = ex->est_out = 0;	/* free: nothing to hold */
	}
}

int
exchange_fleet_hold(struct exchange *ex, uint64_t overdraft_nano,
    void (*done)(void *, const struct store_call *, uint64_t), void *owner,
    char *msg, size_t msglen, uint64_t now_ms)
{
	const struct conf *c = ex->gen->conf;
	const struct conf_wallet *wl = ex->limits;
	int64_t arg[STORE_ARGS_MAX] = { 0 };

	estimate(ex);
	ex->hold_nano = billing_hold_amount(c, ex->model, ex->est_in,
	    ex->est_out);
	ex->settled = 1;	/* until the store holds */
	snprintf(ex->fid, sizeof(ex->fid), "%s", ex->sc->req.id);
	arg[2] = ex->hold_nano;
	arg[3] = (int64_t)exchange_hold_tokens(ex);
	arg[4] = ex->jr.stream ? 1 : 0;
	arg[5] = (int64_t)(c->total_timeout_ms + 60000);
	arg[6] = (int64_t)overdraft_nano;
	if (wl != NULL) {
		arg[7] = (int64_t)wl->rpm;
		arg[8] = (int64_t)wl->tpm;
		arg[9] = (int64_t)wl->max_streams;
		arg[10] = (int64_t)wl->budget_day_nano;
	}
	ex->deadline_ms = now_ms + c->total_timeout_ms;
	ex->fhold = fleet_ask(STORE_HOLD, ex->wallet, ex->fid, arg, done,
	    owner, now_ms);
	if (ex->fhold == NULL) {
		snprintf(msg, msglen, "the shared store is unreachable "
		    "(reconnecting); no request is let through without it");
		return BILLING_UNAVAILABLE;
	}
	return BILLING_PENDING;
}

int
exchange_fleet_held(struct exchange *ex, const struct store_call *c,
    char *msg, size_t msglen)
{
	const char *f0 = c->nfields > 0 ? c->field[0] : "";
	enum limits_reason why;
	char b[MONEY_FMT_MAX], hs[MONEY_FMT_MAX], need[MONEY_FMT_MAX];

	ex->fhold = NULL;
	if (c->status != STORE_REPLIED) {
		snprintf(msg, msglen, "the shared store did not take the "
		    "hold: %s", c->err);
		return BILLING_UNAVAILABLE;
	}
	if (strcmp(f0, "ok") == 0 || strcmp(f0, "dup") == 0) {
		ex->fheld = 1;
		ex->settled = 0;
		return BILLING_HELD;
	}
	if (strcmp(f0, "refused") != 0 || c->nfields < 5) {
		snprintf(msg, msglen, "the shared store answered the hold "
		    "with \"%s\"", f0);
		return BILLING_UNAVAILABLE;
	}
	ex->retry_s = strtoll(c->field[2], NULL, 10);
	if (strcmp(c->field[1], "balance") == 0) {
		money_format(strtoll(c->field[3], NULL, 10), 2, b, sizeof(b));
		money_format(strtoll(c->field[4], NULL, 10), 2, hs,
		    sizeof(hs));
		money_format(ex->hold_nano, 2, need, sizeof(need));
		snprintf(msg, msglen, "wallet '%s' has %s %s (%s held by "
		    "running requests of the fleet) and cannot cover this "
		    "request's hold of %s %s; top it up or lower max_tokens",
		    ex->wallet, b, ex->gen->conf->currency, hs, need,
		    ex->gen->conf->currency);
		metrics.refused_402++;
		return BILLING_REFUSED;
	}
	why = limits_by_name(c->field[1], strlen(c->field[1]));
	if (why == LIMITS_OK || ex->limits == NULL) {
		snprintf(msg, msglen, "the shared store refused the hold for "
		    "an unknown reason \"%s\"", c->field[1]);
		return BILLING_UNAVAILABLE;
	}
	billing_refused(ex->limits, why, exchange_hold_tokens(ex), ex->hold_nano, -1,
	    ex->retry_s, msg, msglen);
	return BILLING_LIMITED;
}

void
exchange_refuse(struct exchange *ex, int hold, const char *msg,
    uint64_t now_ms)
{
	char extra[48];

	if (hold == BILLING_REFUSED) {
		server_error(ex->sc, 402, "insufficient_balance", msg, now_ms);
	} else if (hold == BILLING_LIMITED) {
		/* Retry-After only when waiting helps (SPEC §12). */
		snprintf(extra, sizeof(extra), "Retry-After: %lld\r\n",
		    (long long)(ex->retry_s < 1 ? 1 : ex->retry_s));
		server_error_with(ex->sc, 429, "rate_limited", msg,
		    ex->retry_s >= 0 ? extra : NULL, now_ms);
	} else if (hold == BILLING_UNAVAILABLE) {
		metrics.store_unavailable++;
		server_error(ex->sc, 503, "store_unavailable", msg, now_ms);
	} else {
		server_error(ex->sc, 503, "server_busy", "out of memory",
		    now_ms);
	}
}
