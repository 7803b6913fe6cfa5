/* fleet: a serving relay's side of the shared store (see fleet.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "fleet.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "util.h"

enum {
	RETRY_MS = 250,			/* a failed settle is sent again */
	REMEMBER_MS = 86400000		/* a settled id is known that long */
};

static struct {
	int on;
	struct fleet_call *retry;	/* the fleet's calls to send again */
	uint64_t retry_at_ms;
	uint64_t backlog;
} F;

/* Calls are linked twice: live (all) through a hidden header. */
struct live {
	struct live *prev, *next;
	struct fleet_call fc;
};

#define LIVE_OF(fc) ((struct live *)(void *)((char *)(fc) - \
	offsetof(struct live, fc)))

static struct live *lives;

static struct fleet_call *
call_new(void)
{
	struct live *l = calloc(1, sizeof(*l));

	if (l == NULL) {
		return NULL;
	}
	l->next = lives;
	if (lives != NULL) {
		lives->prev = l;
	}
	lives = l;
	return &l->fc;
}

static void
call_free(struct fleet_call *fc)
{
	struct live *l = LIVE_OF(fc);

	if (l->prev != NULL) {
		l->prev->next = l->next;
	} else {
		lives = l->next;
	}
	if (l->next != NULL) {
		l->next->prev = l->prev;
	}
	free(l);
}

int
fleet_open(const struct conf *c, uint64_t now_ms, char *err, size_t errlen)
{
	if (c->store == NULL) {
		return 0;
	}
	if (store_open(c->store, pool_dns(), now_ms, err, errlen) < 0) {
		return -1;
	}
	F.on = 1;
	log_info("wallets are kept in the shared store %s", c->store->url);
	return 0;
}

void
fleet_close(void)
{
	if (!F.on) {
		return;
	}
	store_close();
	if (F.backlog > 0) {
		log_warn("%llu settles and credits did not reach the store: "
		    "they are in the ledger (relay store rebuild)",
		    (unsigned long long)F.backlog);
	}
	while (lives != NULL) {
		call_free(&lives->fc);
	}
	memset(&F, 0, sizeof(F));
}

int
fleet_on(void)
{
	return F.on;
}

/* fc is the fleet's now: send it again until the store answers. */
static void
keep(struct fleet_call *fc, uint64_t now_ms)
{
	fc->owner = NULL;
	fc->done = NULL;
	fc->next = F.retry;
	F.retry = fc;
	F.backlog++;
	metrics.store_backlog = F.backlog;
	if (F.retry_at_ms == 0) {
		F.retry_at_ms = now_ms + RETRY_MS;
	}
}

/* Send fc now, or keep it for later. */
static void
send_or_keep(struct fleet_call *fc, uint64_t now_ms)
{
	if (store_submit(&fc->c, now_ms) < 0) {
		keep(fc, now_ms);
	}
}

/* fc's HOLD may have taken a hold nobody will settle: release it. */
static void
release(struct fleet_call *fc, uint64_t now_ms)
{
	memset(fc->c.arg, 0, sizeof(fc->c.arg));
	fc->c.script = STORE_SETTLE;
	fc->c.arg[4] = REMEMBER_MS;
	fc->owner = NULL;
	fc->done = NULL;
	fc->forgotten = 0;
	send_or_keep(fc, now_ms);
}

struct fleet_call *
fleet_ask(enum store_script s, const char *wallet, const char *id,
    const int64_t *arg,
    void (*done)(void *, const struct store_call *, uint64_t), void *owner,
    uint64_t now_ms)
{
	struct fleet_call *fc;

	if (!F.on || (fc = call_new()) == NULL) {
		return NULL;
	}
	fc->c.script = s;
	snprintf(fc->c.wallet, sizeof(fc->c.wallet), "%s", wallet);
	snprintf(fc->c.id, sizeof(fc->c.id), "%s", id != NULL ? id : "");
	memcpy(fc->c.arg, arg, sizeof(fc->c.arg));
	fc->done = done;
	fc->owner = owner;
	fc->credit = s == STORE_CREDIT;
	if (store_submit(&fc->c, now_ms) < 0) {
		if (fc->credit) {	/* in the ledger already: it must go */
			keep(fc, now_ms);
		} else {
			call_free(fc);
		}
		return NULL;
	}
	return fc;
}

void
fleet_forget(struct fleet_call *fc, uint64_t now_ms)
{
	(void)now_ms;
	if (fc != NULL) {
		fc->forgotten = 1;
		fc->owner = NULL;
		fc->done = NULL;
	}
}

void
fleet_settle(const char *wallet, const char *id, int64_t nano,
    uint64_t tokens, uint64_t now_ms)
{
	struct fleet_call *fc;

	if (!F.on) {
		return;
	}
	if ((fc = call_new()) == NULL) {
		log_error("%s: out of memory for the store's settle of %lld "
		    "nano on %s (in the ledger: relay store rebuild)", id,
		    (long long)nano, wallet);
		return;
	}
	fc->c.script = STORE_SETTLE;
	snprintf(fc->c.wallet, sizeof(fc->c.wallet), "%s", wallet);
	snprintf(fc->c.id, sizeof(fc->c.id), "%s", id);
	fc->c.arg[2] = nano;
	fc->c.arg[3] = tokens > (uint64_t)INT64_MAX ? INT64_MAX :
	    (int64_t)tokens;
	fc->c.arg[4] = REMEMBER_MS;
	send_or_keep(fc, now_ms);
}

/* A HOLD's reply that holds something. */
static int
took_hold(const struct store_call *c)
{
	return c->status == STORE_FAILED || (c->status == STORE_REPLIED &&
	    c->nfields > 0 && (strcmp(c->field[0], "ok") == 0 ||
	    strcmp(c->field[0], "dup") == 0));
}

/* One answered call; seen(owner) after its owner had the answer. */
static void
answered(struct fleet_call *fc, uint64_t now_ms, void (*seen)(void *))
{
	struct store_call *c = &fc->c;
	void *owner = fc->owner;

	if (fc->done != NULL) {
		fc->done(owner, c, now_ms);
		if (seen != NULL) {
			seen(owner);
		}
		fc->done = NULL;
		fc->owner = NULL;
		/* Unknown whether a failed HOLD ran: release it. */
		if (c->script == STORE_HOLD && c->status == STORE_FAILED) {
			release(fc, now_ms);
			return;
		}
	} else if (fc->forgotten && c->script == STORE_HOLD) {
		if (took_hold(c)) {
			release(fc, now_ms);
			return;
		}
	} else if (c->status == STORE_ERROR) {
		log_error("store refused %s %s for %s: %s",
		    store_scripts[c->script].name, c->id, c->wallet, c->err);
	}
	if (c->status == STORE_FAILED && (c->script == STORE_SETTLE ||
	    fc->credit)) {
		keep(fc, now_ms);
		return;
	}
	call_free(fc);
}

int
fleet_fd(short *events)
{
	return F.on ? store_fd(events) : -1;
}

uint64_t
fleet_deadline(void)
{
	uint64_t d;

	if (!F.on) {
		return 0;
	}
	d = store_deadline();
	if (F.retry != NULL && (d == 0 || F.retry_at_ms < d)) {
		d = F.retry_at_ms;
	}
	return d;
}

void
fleet_step(short revents, uint64_t now_ms, void (*seen)(void *owner))
{
	struct store_call *c, *next;
	struct fleet_call *fc, *list;

	if (!F.on) {
		return;
	}
	store_step(revents, now_ms);
	for (c = store_done(); c != NULL; c = next) {
		next = c->next;
		answered((struct fleet_call *)(void *)c, now_ms, seen);
	}
	if (F.retry == NULL || now_ms < F.retry_at_ms) {
		return;
	}
	list = F.retry;
	F.retry = NULL;
	F.retry_at_ms = 0;
	while (list != NULL) {
		fc = list;
		list = fc->next;
		F.backlog--;
		send_or_keep(fc, now_ms);
	}
	metrics.store_backlog = F.backlog;
}

int
fleet_busy(void)
{
	return F.on && lives != NULL;
}
