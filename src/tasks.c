/* tasks: async tasks and the relay's own polls of them (see tasks.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "billing.h"
#include "clock.h"
#include "conf.h"
#include "gen.h"
#include "json.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "tasks.h"
#include "upstream.h"
#include "usage.h"
#include "util.h"

#define TASK_ID_MAX 128		/* bytes of a task id, at most (SPEC §10) */
#define TASK_POLL_MS 30000	/* the relay's own poll of open tasks */
#define TASK_POLLS_MAX 8	/* polls in flight at once */

struct task_poll {
	struct pool_owner tag;		/* first: POOL_OWNER_TASK_POLL */
	struct upstream *up;		/* borrowed from the pool */
	const struct conf *conf;	/* borrowed */
	char id[TASK_ID_MAX + 1];
	char *head;			/* owned request (holds a secret) */
	size_t head_len;
	struct usage_scan scan;		/* the answer, read as it comes */
	int status;
};

static struct task_poll *polls[TASK_POLLS_MAX];	/* owned, in flight */
static size_t npolls;
static uint64_t next_poll_ms;

/* RELAY_TASK_POLL_MS overrides the poll period (tests). */
static uint64_t
poll_period_ms(void)
{
	const char *e = getenv("RELAY_TASK_POLL_MS");
	uint64_t v;

	if (e != NULL && util_parse_u64(e, strlen(e), &v) == 0 && v > 0) {
		return v;
	}
	return TASK_POLL_MS;
}

void
tasks_init(uint64_t now_ms)
{
	next_poll_ms = now_ms + poll_period_ms();
}

/* 1 when a task id from an upstream may go into a request line (SPEC
 * §10): [A-Za-z0-9._:-], 1 to TASK_ID_MAX bytes. */
static int
id_ok(const char *id)
{
	size_t n = strlen(id), i;

	if (n == 0 || n > TASK_ID_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		char ch = id[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' ||
		    ch == ':' || ch == '-')) {
			return 0;
		}
	}
	return 1;
}

void
tasks_record(const char *req_id, const struct usage_doc *answer,
    const char *wallet, const char *model, const char *route,
    const char *cred)
{
	struct ledger_task t;
	char err[256];

	if (!answer->valid || answer->id[0] == '\0') {
		log_error("%s task created but its id could not be read from "
		    "the answer: it cannot be charged", req_id);
		return;
	}
	if (!id_ok(answer->id)) {
		log_error("%s task created with an id the relay does not "
		    "accept (only A-Z a-z 0-9 . _ : -, at most %d bytes): it "
		    "cannot be charged", req_id, TASK_ID_MAX);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.id = answer->id;
	t.wallet = wallet;
	t.model = model;
	t.route = route;
	t.cred = cred;
	if (ledger_task(billing_ledger(), &t, err, sizeof(err)) < 0) {
		log_error("%s task %s not recorded: %s", req_id, answer->id,
		    err);
		return;
	}
	log_info("%s task %s recorded (wallet=%s route=%s key=%s)", req_id,
	    answer->id, wallet, route, cred != NULL ? cred : "(none)");
}

/* The charge of a task that ended: its usage when it succeeded, a zero
 * line (never charged) when it did not. Returns 0, or -1 (logged): the
 * task then stays open. */
static int
task_line(const struct ledger_task *t, const struct conf *c, int ok,
    const struct usage_doc *answer, struct ledger_charge *ch)
{
	const struct conf_model *m = conf_find_model(c, t->model,
	    strlen(t->model));
	struct billing_tokens tk;

	if (!ok) {
		return 0;
	}
	if (!answer->found || answer->invalid || m == NULL) {
		log_error("task %s succeeded but %s: left open", t->id,
		    m == NULL ? "its model is no longer configured" :
		    answer->invalid ? answer->usage_why :
		    "no usage came with it");
		return -1;
	}
	ch->in = answer->usage.in;
	ch->cached = answer->usage.cached;
	ch->cache_write = answer->usage.cache_write;
	ch->out = answer->usage.out;
	tk.in = ch->in;
	tk.cached = ch->cached;
	tk.cache_write = ch->cache_write;
	tk.out = ch->out;
	if (billing_cost(c, m, &tk, &ch->usd_nano, &ch->cur_nano) < 0) {
		log_error("task %s charge overflows: left open", t->id);
		return -1;
	}
	return 0;
}

void
tasks_settle(const char *id, const struct conf *c, const char *req_id,
    int status, const struct usage_doc *answer)
{
	const struct ledger_task *t = ledger_task_find(billing_ledger(), id);
	const char *st = answer->status;
	struct ledger_charge ch;
	char err[256];
	int ok;

	if (t == NULL || t->charged || st[0] == '\0') {
		return;
	}
	ok = strcmp(st, "succeeded") == 0;
	if (!ok && strcmp(st, "failed") != 0 && strcmp(st, "cancelled") != 0 &&
	    strcmp(st, "expired") != 0) {
		return;	/* still running */
	}
	memset(&ch, 0, sizeof(ch));
	if (task_line(t, c, ok, answer, &ch) < 0) {
		return;
	}
	ch.id = req_id;
	ch.task = t->id;
	ch.wallet = t->wallet;
	ch.model = t->model;
	ch.route = t->route;
	ch.cred = t->cred != NULL && t->cred[0] != '\0' ? t->cred : NULL;
	ch.status = status;
	ch.ms = LEDGER_RECENT_NO_MS;
	if (ledger_charge(billing_ledger(), &ch, err, sizeof(err)) < 0) {
		log_error("task %s: ledger write failed: %s", t->id, err);
		return;
	}
	metrics.charges += ok;
	log_info("task %s %s: %s (out=%llu)", t->id, st,
	    ok ? "charged" : "closed without charge",
	    (unsigned long long)ch.out);
}

static enum tasks_where
locate(const struct conf *c, const struct ledger_task *t,
    const struct conf_model **mp, size_t *route, size_t *cred, char *err,
    size_t errlen)
{
	const struct conf_model *m = conf_find_model(c, t->model,
	    strlen(t->model));
	const struct conf_provider *pv;
	size_t i;

	if (m == NULL) {
		util_errf(err, errlen, "model '%s' of task %s is no longer "
		    "configured", t->model, t->id);
		return TASKS_GONE;
	}
	if ((i = conf_route_index(m, t->route)) == SIZE_MAX) {
		util_errf(err, errlen, "route %s of task %s is no longer "
		    "configured", t->route, t->id);
		return TASKS_GONE;
	}
	*route = i;
	pv = &c->providers[m->routes[i].provider];
	if ((t->cred == NULL || t->cred[0] == '\0' ||
	    strcmp(t->cred, "(none)") == 0) && pv->auth == CONF_AUTH_NONE) {
		*cred = SIZE_MAX;	/* auth=none: no credential */
		*mp = m;
		return TASKS_FOUND;
	}
	if ((i = conf_cred_index(pv, t->cred)) == SIZE_MAX) {
		util_errf(err, errlen, "credential %s of task %s is no longer "
		    "configured", t->cred, t->id);
		return TASKS_GONE;
	}
	*cred = i;
	*mp = m;
	return TASKS_FOUND;
}

enum tasks_where
tasks_locate(const struct conf *c, const char *id, const char *wallet,
    const struct conf_model **m, size_t *route, size_t *cred, char *err,
    size_t errlen)
{
	const struct ledger_task *t = ledger_task_find(billing_ledger(), id);

	if (t == NULL || strcmp(t->wallet, wallet) != 0) {
		/* Another wallet's task is as unknown as a made-up one. */
		return TASKS_UNKNOWN;
	}
	return locate(c, t, m, route, cred, err, errlen);
}

static void
poll_free(struct task_poll *tp, uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < npolls; i++) {
		if (polls[i] == tp) {
			polls[i] = polls[--npolls];
			break;
		}
	}
	if (tp->up != NULL) {
		pool_release(tp->up, now_ms);
	}
	if (tp->head != NULL) {
		util_wipe(tp->head, tp->head_len);
		free(tp->head);
	}
	free(tp);
}

void
tasks_free(void)
{
	while (npolls > 0) {
		poll_free(polls[0], clock_mono_ms());
	}
}

/* The poll's request: GET the task on its own credential's lines. */
static int
poll_head(struct task_poll *tp, const struct conf_provider *pv,
    const struct view *fixed)
{
	size_t cap = 128 + strlen(pv->path) + strlen(tp->id) + fixed->n;
	int n;

	if ((tp->head = malloc(cap)) == NULL) {
		return -1;
	}
	n = snprintf(tp->head, cap, "GET %s/contents/generations/tasks/%s "
	    "HTTP/1.1\r\n", pv->path, tp->id);
	if (n < 0 || (size_t)n + fixed->n + 32 > cap) {
		return -1;
	}
	memcpy(tp->head + n, fixed->p, fixed->n);
	n += (int)fixed->n;
	n += snprintf(tp->head + n, cap - (size_t)n, "Content-Length: 0\r\n\r\n");
	tp->head_len = (size_t)n;
	return 0;
}

/* Start one poll of task t on its own credential. */
static void
poll_start(const struct ledger_task *t, uint64_t now_ms)
{
	struct gen *g = gen_current();
	const struct conf_model *m;
	struct task_poll *tp;
	struct upstream *u;
	struct iovec iov;
	size_t route, cred, prov;
	char err[300];

	if (!id_ok(t->id)) {
		/* Recorded before ids were checked: never put into a request
		 * line (SPEC §10). */
		log_debug("task poll skipped: id not accepted");
		return;
	}
	if (locate(g->conf, t, &m, &route, &cred, err, sizeof(err)) !=
	    TASKS_FOUND) {
		log_debug("task poll skipped: %s", err);
		return;
	}
	prov = m->routes[route].provider;
	if ((tp = calloc(1, sizeof(*tp))) == NULL) {
		return;
	}
	tp->tag.kind = POOL_OWNER_TASK_POLL;
	tp->conf = g->conf;
	usage_scan_start(&tp->scan);
	snprintf(tp->id, sizeof(tp->id), "%s", t->id);
	if (poll_head(tp, &g->conf->providers[prov],
	    gen_fixed(g, prov, cred)) < 0 ||
	    pool_get(g, prov, 0, tp, now_ms, &u, err, sizeof(err)) !=
	    POOL_GOT) {
		poll_free(tp, now_ms);	/* not resolved yet: next round */
		return;
	}
	tp->up = u;
	polls[npolls++] = tp;
	iov.iov_base = tp->head;
	iov.iov_len = tp->head_len;
	upstream_send(u, &iov, 1, (struct view){ "GET", 3 }, now_ms);
}

void
tasks_tick(uint64_t now_ms, int stopping)
{
	const struct ledger_task *t;
	size_t cursor = 0, i;

	if (now_ms < next_poll_ms || stopping) {
		return;
	}
	next_poll_ms = now_ms + poll_period_ms();
	while (npolls < TASK_POLLS_MAX &&
	    (t = ledger_task_next_open(billing_ledger(), &cursor)) != NULL) {
		for (i = 0; i < npolls; i++) {
			if (strcmp(polls[i]->id, t->id) == 0) {
				break;
			}
		}
		if (i == npolls) {
			poll_start(t, now_ms);
		}
	}
}

uint64_t
tasks_due_ms(void)
{
	return next_poll_ms;
}

/* A poll that is over: its connection is closed, not parked. */
static void
poll_over(struct task_poll *tp, uint64_t now_ms)
{
	pool_drop(tp->up);
	tp->up = NULL;
	poll_free(tp, now_ms);
}

void
tasks_on_upstream(struct task_poll *tp, struct upstream *u, uint64_t now_ms)
{
	switch (u->state) {
	case UPSTREAM_HEAD:
		tp->status = u->resp.status;
		if (tp->status < 200 || tp->status >= 300) {
			log_info("task %s: poll answered %d", tp->id,
			    tp->status);
			poll_over(tp, now_ms);
			return;
		}
		upstream_start_body(u, now_ms);
		break;
	case UPSTREAM_FAILED:
		log_info("task %s: poll failed: %s", tp->id, u->error);
		poll_over(tp, now_ms);
		return;
	default:
		break;
	}
	while (u->state == UPSTREAM_BODY) {
		char buf[4096];
		size_t got = upstream_read_body(u, buf, sizeof(buf), now_ms);

		usage_scan_feed(&tp->scan, buf, got);
		if (got == 0) {
			break;
		}
	}
	if (u->state == UPSTREAM_FAILED) {
		poll_over(tp, now_ms);
	} else if (u->state == UPSTREAM_DONE) {
		struct usage_doc answer;

		usage_scan_end(&tp->scan, &answer);
		tasks_settle(tp->id, tp->conf, "relay-poll", tp->status,
		    &answer);
		poll_free(tp, now_ms);
	}
}
