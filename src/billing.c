/* billing: holds, charges and the group commit (see billing.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "clock.h"
#include "conf.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "util.h"

/*
 * A pass that handled many events says more are coming: its charges may
 * wait for the next pass (one only, and only while fewer than
 * COMMIT_BATCH lines wait), so that under load one write(2) (and one
 * fsync for sync=always) carries more lines. While answers wait or lines
 * are queued the next poll() does not sleep, so an idle relay commits at
 * once, and a quiet one (a pass of one or two events) commits every pass.
 */
enum { COMMIT_BUSY_EVENTS = 4, COMMIT_BATCH = 32 };

static struct ledger ledger;	/* the one ledger this process writes */
static struct held {
	char *name;		/* owned */
	int64_t nano;		/* sum of running requests' holds */
} *held;
static size_t nheld, held_cap;
static struct billing_wait *waiting;	/* answers held for the commit */
static int deferred;

int
billing_open(const struct conf *c, int allow_broken, char *err,
    size_t errlen)
{
	char today[16];
	size_t i;

	clock_today(today, sizeof(today));
	if (ledger_open(&ledger, c->ledger_path,
	    c->ledger_sync == CONF_SYNC_ALWAYS ? LEDGER_SYNC_ALWAYS :
	    c->ledger_sync == CONF_SYNC_BATCH ? LEDGER_SYNC_BATCH :
	    LEDGER_SYNC_NONE,
	    c->currency_lower, today, allow_broken, err, errlen) < 0) {
		return -1;
	}
	for (i = 0; i < c->nwallets; i++) {
		(void)ledger_add_wallet(&ledger, c->wallets[i].name);
	}
	if (ledger_group(&ledger) < 0) {
		log_warn("ledger: no memory for group commit; every charge "
		    "line is written on its own");
	}
	return 0;
}

void
billing_close(void)
{
	size_t i;

	ledger_close(&ledger);
	for (i = 0; i < nheld; i++) {
		free(held[i].name);
	}
	free(held);
	held = NULL;
	nheld = held_cap = 0;
	waiting = NULL;
}

struct ledger *
billing_ledger(void)
{
	return &ledger;
}

int
billing_cost(const struct conf *c, const struct conf_model *m,
    const struct billing_tokens *t, uint64_t *usd, uint64_t *cur)
{
	uint64_t sum = 0;

	if (money_cost_add(t->in, m->in_nano_usd, &sum) < 0 ||
	    money_cost_add(t->cached, m->cached_nano_usd, &sum) < 0 ||
	    money_cost_add(t->cache_write, m->cache_write_nano_usd,
	    &sum) < 0 ||
	    money_cost_add(t->out, m->out_nano_usd, &sum) < 0 ||
	    money_convert(sum, c->rate_num, c->rate_den, cur) < 0 ||
	    *cur > (uint64_t)INT64_MAX) {
		return -1;
	}
	*usd = sum;
	return 0;
}

static int64_t *
held_of(const char *wallet)
{
	struct held *h;
	size_t i;

	for (i = 0; i < nheld; i++) {
		if (strcmp(held[i].name, wallet) == 0) {
			return &held[i].nano;
		}
	}
	h = util_grow(held, &held_cap, nheld + 1, sizeof(*held));
	if (h == NULL) {
		return NULL;
	}
	held = h;
	if ((h[nheld].name = strdup(wallet)) == NULL) {
		return NULL;
	}
	h[nheld].nano = 0;
	return &h[nheld++].nano;
}

int64_t
billing_held(const char *wallet)
{
	size_t i;

	for (i = 0; i < nheld; i++) {
		if (strcmp(held[i].name, wallet) == 0) {
			return held[i].nano;
		}
	}
	return 0;
}

enum billing_hold
billing_hold(const struct conf *c, const struct conf_model *m,
    const char *wallet, int limited, uint64_t overdraft_nano,
    uint64_t est_in, uint64_t est_out, int64_t *hold_nano, char *msg,
    size_t msglen)
{
	struct billing_tokens t = { est_in, 0, 0, est_out };
	uint64_t usd, cur;
	int64_t *h = held_of(wallet), balance;
	char b[MONEY_FMT_MAX], hs[MONEY_FMT_MAX], need[MONEY_FMT_MAX];

	if (billing_cost(c, m, &t, &usd, &cur) < 0 ||
	    cur > (uint64_t)INT64_MAX / 4) {
		cur = (uint64_t)INT64_MAX / 4;
	}
	if (h == NULL) {
		return BILLING_NOMEM;
	}
	if (limited) {
		balance = ledger_balance(&ledger, wallet);
		if (balance - *h - (int64_t)cur < -(int64_t)overdraft_nano) {
			money_format(balance, 2, b, sizeof(b));
			money_format(*h, 2, hs, sizeof(hs));
			money_format((int64_t)cur, 2, need, sizeof(need));
			snprintf(msg, msglen, "wallet '%s' has %s %s (%s held "
			    "by running requests) and cannot cover this "
			    "request's hold of %s %s; top it up or lower "
			    "max_tokens", wallet, b, c->currency, hs, need,
			    c->currency);
			metrics.refused_402++;
			return BILLING_REFUSED;
		}
	}
	*h += (int64_t)cur;
	*hold_nano = (int64_t)cur;
	return BILLING_HELD;
}

void
billing_release(const char *wallet, int64_t hold_nano)
{
	int64_t *h = held_of(wallet);

	if (h != NULL) {
		*h -= hold_nano;
	}
}

int
billing_charge(const struct conf *c, const struct conf_model *m,
    struct ledger_charge *ch)
{
	struct billing_tokens t = { ch->in, ch->cached, ch->cache_write,
	    ch->out };
	char err[256];

	if (billing_cost(c, m, &t, &ch->usd_nano, &ch->cur_nano) < 0) {
		log_error("%s charge overflows 64 bits (in=%llu cached=%llu "
		    "cache_write=%llu out=%llu): not written", ch->id,
		    (unsigned long long)ch->in, (unsigned long long)ch->cached,
		    (unsigned long long)ch->cache_write,
		    (unsigned long long)ch->out);
		return -1;
	}
	if (ledger_charge(&ledger, ch, err, sizeof(err)) < 0) {
		log_error("%s ledger write failed: %s", ch->id, err);
		metrics.ledger_errors++;
		return -1;
	}
	metrics.charges++;
	{
		const uint64_t tokens[METRICS_KINDS] = { ch->in, ch->cached,
		    ch->cache_write, ch->out };

		metrics_charge(m->metrics, tokens, ch->cur_nano);
	}
	return 0;
}

int
billing_must_wait(void)
{
	return ledger_pending(&ledger) > 0 &&
	    !ledger_queue_survives_crash(&ledger);
}

void
billing_wait(struct billing_wait *w, void *owner)
{
	if (!w->waiting) {
		w->waiting = 1;
		w->owner = owner;
		w->next = waiting;
		waiting = w;
	}
}

void
billing_unwait(struct billing_wait *w)
{
	struct billing_wait **pp;

	if (!w->waiting) {
		return;
	}
	for (pp = &waiting; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == w) {
			*pp = w->next;
			break;
		}
	}
	w->waiting = 0;
	w->next = NULL;
}

int
billing_busy(void)
{
	return waiting != NULL || ledger_pending(&ledger) > 0;
}

int
billing_defer(int events)
{
	size_t n = ledger_pending(&ledger);

	if (n > 0 && n < COMMIT_BATCH && events >= COMMIT_BUSY_EVENTS &&
	    !deferred) {
		deferred = 1;
		return 1;
	}
	deferred = 0;
	return 0;
}

struct billing_wait *
billing_commit(void)
{
	struct billing_wait *list = waiting;
	size_t n = ledger_pending(&ledger);

	if (n > 0 && ledger_commit(&ledger) < 0) {
		metrics.charges -= n < metrics.charges ? n : metrics.charges;
		metrics.ledger_errors++;
	}
	waiting = NULL;
	return list;
}

struct billing_wait *
billing_take(struct billing_wait *w)
{
	struct billing_wait *next = w->next;

	w->next = NULL;
	w->waiting = 0;
	return next;
}

void
billing_settle(void)
{
	ledger_settle(&ledger);
}
