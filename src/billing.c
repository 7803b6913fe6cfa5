/* billing: holds, charges and the group commit (see billing.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "billing.h"
#include "clock.h"
#include "conf.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "ratelimit.h"
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
	struct limits_state lim;	/* its limits' windows (ratelimit.h) */
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
	billing_set_node(c);
	if (ledger_group(&ledger) < 0) {
		log_warn("ledger: no memory for group commit; every charge "
		    "line is written on its own");
	}
	return 0;
}

void
billing_set_node(const struct conf *c)
{
	char host[LEDGER_NAME_MAX + 1];
	size_t n;

	if (c->node != NULL) {
		ledger_set_node(&ledger, c->node);
		return;
	}
	ledger_set_node(&ledger, NULL);
	if (c->store != NULL && gethostname(host, sizeof(host)) == 0) {
		host[sizeof(host) - 1] = '\0';
		/* A name the ledger can hold unescaped. */
		n = strspn(host, "abcdefghijklmnopqrstuvwxyz"
		    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_");
		host[n] = '\0';
		ledger_set_node(&ledger, n > 0 ? host : NULL);
	}
}

void
billing_close(void)
{
	size_t i;

	ledger_close(&ledger);
	for (i = 0; i < nheld; i++) {
		free(held[i].name);
		limits_free(&held[i].lim);
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

static uint64_t
sat_add(uint64_t a, uint64_t b)
{
	return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

/* The entry of wallet, made when new (NULL: no memory). */
static struct held *
entry_of(const char *wallet)
{
	struct held *h;
	size_t i;

	for (i = 0; i < nheld; i++) {
		if (strcmp(held[i].name, wallet) == 0) {
			return &held[i];
		}
	}
	h = util_grow(held, &held_cap, nheld + 1, sizeof(*held));
	if (h == NULL) {
		return NULL;
	}
	held = h;
	memset(&h[nheld], 0, sizeof(h[nheld]));
	if ((h[nheld].name = strdup(wallet)) == NULL) {
		return NULL;
	}
	return &h[nheld++];
}

static int64_t *
held_of(const char *wallet)
{
	struct held *h = entry_of(wallet);

	return h != NULL ? &h->nano : NULL;
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

int64_t
billing_hold_amount(const struct conf *c, const struct conf_model *m,
    uint64_t est_in, uint64_t est_out)
{
	struct billing_tokens t = { est_in, 0, 0, est_out };
	uint64_t usd, cur;

	if (billing_cost(c, m, &t, &usd, &cur) < 0 ||
	    cur > (uint64_t)INT64_MAX / 4) {
		cur = (uint64_t)INT64_MAX / 4;
	}
	return (int64_t)cur;
}

enum billing_hold
billing_hold(const struct conf *c, const struct conf_model *m,
    const char *wallet, int limited, uint64_t overdraft_nano,
    uint64_t est_in, uint64_t est_out, int64_t *hold_nano, char *msg,
    size_t msglen)
{
	uint64_t cur = (uint64_t)billing_hold_amount(c, m, est_in, est_out);
	int64_t *h = held_of(wallet), balance;
	char b[MONEY_FMT_MAX], hs[MONEY_FMT_MAX], need[MONEY_FMT_MAX];

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

void
billing_refused(const struct conf_wallet *wl, int why, uint64_t tokens,
    int64_t hold_nano, int64_t spent, int64_t retry_s, char *msg,
    size_t msglen)
{
	metrics.refused_429++;
	metrics.refused_limit[why]++;
	switch (why) {
	case LIMITS_MAX_STREAMS:
		snprintf(msg, msglen, "wallet '%s' has %llu streams open, its "
		    "max_streams", wl->name,
		    (unsigned long long)wl->max_streams);
		break;
	case LIMITS_RPM:
		snprintf(msg, msglen, "wallet '%s' made %llu requests in the "
		    "last 60 s, its rpm", wl->name,
		    (unsigned long long)wl->rpm);
		break;
	case LIMITS_TPM:
		snprintf(msg, msglen, retry_s < 0 ? "this request's %llu "
		    "tokens (input estimate plus max_tokens) are more than "
		    "wallet '%s' may use in 60 s (tpm %llu); lower max_tokens" :
		    "this request's %llu tokens (input estimate plus "
		    "max_tokens) would take wallet '%s' over its tpm of %llu "
		    "tokens in 60 s (open requests count their estimate)",
		    (unsigned long long)tokens, wl->name,
		    (unsigned long long)wl->tpm);
		break;
	default: {
		char b[MONEY_FMT_MAX], sp[MONEY_FMT_MAX], hs[MONEY_FMT_MAX];

		money_format((int64_t)wl->budget_day_nano, 2, b, sizeof(b));
		money_format(spent, 2, sp, sizeof(sp));
		money_format(hold_nano, 2, hs, sizeof(hs));
		if (retry_s < 0) {
			snprintf(msg, msglen, "this request's hold of %s is more "
			    "than wallet '%s' may spend in a day (budget_day "
			    "%s); lower max_tokens", hs, wl->name, b);
		} else if (spent < 0) {	/* the store's: the fleet's day */
			snprintf(msg, msglen, "wallet '%s' has spent so much of "
			    "its budget_day %s today (UTC, the whole fleet) that "
			    "this request's hold of %s does not fit", wl->name,
			    b, hs);
		} else {
			snprintf(msg, msglen, "wallet '%s' has spent %s of its "
			    "budget_day %s today (UTC), and this request's hold "
			    "of %s does not fit beside that and the running "
			    "requests' holds", wl->name, sp, b, hs);
		}
		break;
	}
	}
}

int
billing_limits(const struct conf_wallet *wl, uint64_t tokens, int stream,
    int64_t hold_nano, int64_t *retry_s, char *msg, size_t msglen)
{
	struct limits_set set = { wl->rpm, wl->tpm, wl->max_streams,
	    (int64_t)wl->budget_day_nano };
	struct held *h;
	struct limits_ask a;
	enum limits_reason why;
	char today[16];
	uint64_t unix_ms, requests;
	int64_t spent;

	*retry_s = 0;
	if (set.rpm == 0 && set.tpm == 0 && set.max_streams == 0 &&
	    set.budget_day == 0) {
		return 0;
	}
	if ((h = entry_of(wl->name)) == NULL) {
		return -1;
	}
	memset(&a, 0, sizeof(a));
	a.now_ms = clock_mono_ms();
	unix_ms = clock_unix_ms();
	a.day_left_ms = 86400000 - unix_ms % 86400000;
	a.tokens = tokens;
	a.stream = stream;
	a.amount = hold_nano;
	a.held = h->nano - hold_nano;	/* the others' */
	clock_today(today, sizeof(today));
	ledger_today(&ledger, wl->name, today, &spent, &requests);
	a.spent = spent;
	why = limits_check(&h->lim, &set, &a, retry_s);
	if (why == LIMITS_OK) {
		return limits_admit(&h->lim, &set, &a) < 0 ? -1 : 0;
	}
	billing_refused(wl, why, tokens, hold_nano, spent, *retry_s, msg,
	    msglen);
	return 1;
}

void
billing_limits_charged(const struct ledger_charge *ch)
{
	struct held *h = entry_of(ch->wallet);
	uint64_t tok = sat_add(sat_add(ch->in, ch->cached),
	    sat_add(ch->cache_write, ch->out));

	if (h != NULL) {
		limits_settled(&h->lim, clock_mono_ms(), tok);
	}
}

void
billing_limits_release(const char *wallet, uint64_t tokens, int stream)
{
	struct held *h = entry_of(wallet);

	if (h != NULL) {
		limits_release(&h->lim, tokens, stream);
	}
}

void
billing_limits_used(const char *wallet, uint64_t *rpm, uint64_t *tpm,
    uint64_t *streams)
{
	struct held *h = entry_of(wallet);

	*rpm = *tpm = *streams = 0;
	if (h != NULL) {
		limits_used(&h->lim, clock_mono_ms(), rpm, tpm);
		*streams = h->lim.streams;
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
	billing_limits_charged(ch);
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
