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
#include "util.h"

#define TASK_ID_MAX 128
#define TASK_POLL_MS 30000	/* the relay's own poll of open tasks */
#define TASK_POLLS_MAX 8	/* polls in flight at once */

struct task_poll {
	struct pool_owner tag;		/* first: POOL_OWNER_TASK_POLL */
	struct upstream *up;		/* borrowed from the pool */
	const struct conf *conf;	/* borrowed */
	char id[TASK_ID_MAX];
	char *head;			/* owned request (holds a secret) */
	size_t head_len;
	char body[8192];		/* the answer; larger ones are ignored */
	size_t body_len;
	int too_big;
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

void
tasks_record(const char *req_id, const char *body, size_t n,
    const char *wallet, const char *model, const char *route,
    const char *cred)
{
	struct ledger_task t;
	struct view idv;
	char id[TASK_ID_MAX], err[256];
	long k;

	if (json_top_string(body, n, "id", &idv) != JSON_OK ||
	    (k = json_unescape(idv, id, sizeof(id))) <= 0 ||
	    strlen(id) != (size_t)k) {
		log_error("%s task created but its id could not be read from "
		    "the answer: it cannot be charged", req_id);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.id = id;
	t.wallet = wallet;
	t.model = model;
	t.route = route;
	t.cred = cred;
	if (ledger_task(billing_ledger(), &t, err, sizeof(err)) < 0) {
		log_error("%s task %s not recorded: %s", req_id, id, err);
		return;
	}
	log_info("%s task %s recorded (wallet=%s route=%s key=%s)", req_id, id,
	    wallet, route, cred);
}

/* The charge of a task that ended: its usage when it succeeded, a zero
 * line (never charged) when it did not. Returns 0, or -1 (logged): the
 * task then stays open. */
static int
task_line(const struct ledger_task *t, const struct conf *c, int ok,
    const char *body, size_t n, struct ledger_charge *ch)
{
	const struct conf_model *m = conf_find_model(c, t->model,
	    strlen(t->model));
	struct json_usage u;

	memset(&u, 0, sizeof(u));
	if (ok && (!json_find_usage(body, n, &u) || m == NULL)) {
		log_error("task %s succeeded but %s: left open", t->id,
		    m == NULL ? "its model is no longer configured" :
		    "no usage came with it");
		return -1;
	}
	ch->in = u.in;
	ch->out = u.out;
	if (ok && billing_cost(c, m, u.in, u.out, &ch->usd_nano,
	    &ch->cur_nano) < 0) {
		log_error("task %s charge overflows: left open", t->id);
		return -1;
	}
	return 0;
}

void
tasks_settle(const char *id, const struct conf *c, const char *req_id,
    int status, const char *body, size_t n)
{
	const struct ledger_task *t = ledger_task_find(billing_ledger(), id);
	struct ledger_charge ch;
	struct view st;
	char err[256];
	int ok;

	if (t == NULL || t->charged ||
	    json_top_string(body, n, "status", &st) != JSON_OK) {
		return;
	}
	ok = util_view_eq(st, "succeeded");
	if (!ok && !util_view_eq(st, "failed") &&
	    !util_view_eq(st, "cancelled") && !util_view_eq(st, "expired")) {
		return;	/* still running */
	}
	memset(&ch, 0, sizeof(ch));
	if (task_line(t, c, ok, body, n, &ch) < 0) {
		return;
	}
	ch.id = req_id;
	ch.task = t->id;
	ch.wallet = t->wallet;
	ch.model = t->model;
	ch.route = t->route;
	ch.cred = t->cred;
	ch.status = status;
	if (ledger_charge(billing_ledger(), &ch, err, sizeof(err)) < 0) {
		log_error("task %s: ledger write failed: %s", t->id, err);
		return;
	}
	metrics.charges += ok;
	log_info("task %s %.*s: %s (out=%llu)", t->id, (int)st.n, st.p,
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
	for (i = 0; i < m->nroutes && strcmp(m->routes[i].text, t->route);
	    i++) {
	}
	if (i == m->nroutes) {
		util_errf(err, errlen, "route %s of task %s is no longer "
		    "configured", t->route, t->id);
		return TASKS_GONE;
	}
	*route = i;
	pv = &c->providers[m->routes[i].provider];
	for (i = 0; i < pv->ncreds && strcmp(pv->creds[i].label, t->cred);
	    i++) {
	}
	if (i == pv->ncreds) {
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
		char sink[4096];
		size_t room = sizeof(tp->body) - tp->body_len, got;

		if (room == 0) {
			tp->too_big = 1;
			got = upstream_read_body(u, sink, sizeof(sink), now_ms);
		} else {
			got = upstream_read_body(u, tp->body + tp->body_len,
			    room, now_ms);
			tp->body_len += got;
		}
		if (got == 0) {
			break;
		}
	}
	if (u->state == UPSTREAM_FAILED) {
		poll_over(tp, now_ms);
	} else if (u->state == UPSTREAM_DONE) {
		if (!tp->too_big) {
			tasks_settle(tp->id, tp->conf, "relay-poll",
			    tp->status, tp->body, tp->body_len);
		}
		poll_free(tp, now_ms);
	}
}
