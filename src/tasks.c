/* tasks: async tasks and the relay's own polls of them (see tasks.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "billing.h"
#include "clock.h"
#include "conf.h"
#include "fleet.h"
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

#define TASK_ID_MAX TASKS_ID_MAX
#define FORGET_MS 3600000	/* forget old objects this often */
#define TASK_POLL_MS 30000	/* the relay's own poll of open tasks */
#define TASK_POLLS_MAX 8	/* polls in flight at once */

struct task_poll {
	struct pool_owner tag;		/* first: POOL_OWNER_TASK_POLL */
	struct upstream *up;		/* borrowed from the pool */
	const struct conf *conf;	/* borrowed */
	char id[TASK_ID_MAX + 1];
	enum ledger_obj_kind kind;
	char *head;			/* owned request (holds a secret) */
	size_t head_len;
	struct usage_scan scan;		/* the answer, read as it comes */
	int status;
};

static struct task_poll *polls[TASK_POLLS_MAX];	/* owned, in flight */
static size_t npolls;
static uint64_t next_poll_ms;
static uint64_t next_forget_ms;

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

/* Affinity is bounded (SPEC §9): settled objects older than affinity
 * days=, and the oldest past affinity max=, are forgotten. */
static void
forget(uint64_t now_ms)
{
	const struct conf *c = gen_current()->conf;
	char today[16];
	size_t gone;

	next_forget_ms = now_ms + FORGET_MS;
	clock_today(today, sizeof(today));
	gone = ledger_forget_tasks(billing_ledger(),
	    ledger_recent_day_number(today) - (long)c->affinity_days,
	    (size_t)c->affinity_max);
	if (gone > 0) {
		log_info("forgot %zu settled object%s (affinity days=%llu "
		    "max=%llu)", gone, gone == 1 ? "" : "s",
		    (unsigned long long)c->affinity_days,
		    (unsigned long long)c->affinity_max);
	}
}

void
tasks_init(uint64_t now_ms)
{
	next_poll_ms = now_ms + poll_period_ms();
	forget(now_ms);
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
    enum ledger_obj_kind kind, const char *wallet, const char *model,
    const char *route, const char *cred)
{
	static const char *const what[] = { "task", "response", "object" };
	struct ledger_task t;
	char err[256];

	if (answer->id[0] == '\0') {
		if (kind == LEDGER_OBJ_PLAIN) {
			return;	/* an answer that made no object */
		}
		log_error("%s %s created but its id could not be read from "
		    "the answer: it cannot be charged", req_id, what[kind]);
		return;
	}
	if (!id_ok(answer->id)) {
		log_error("%s %s created with an id the relay does not "
		    "accept (only A-Z a-z 0-9 . _ : -, at most %d bytes): not "
		    "recorded", req_id, what[kind], TASK_ID_MAX);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.id = answer->id;
	t.wallet = wallet;
	t.model = model;
	t.route = route;
	t.cred = cred;
	t.kind = kind;
	if (ledger_task(billing_ledger(), &t, err, sizeof(err)) < 0) {
		log_error("%s %s %s not recorded: %s", req_id, what[kind],
		    answer->id, err);
		return;
	}
	log_info("%s %s %s recorded (wallet=%s route=%s key=%s)", req_id,
	    what[kind], answer->id, wallet, route, cred != NULL ? cred :
	    "(none)");
	if (kind != LEDGER_OBJ_PLAIN) {
		/* Created already finished (a background response that
		 * completed at once): settled now. */
		tasks_settle(answer->id, gen_current()->conf, req_id, 200,
		    answer);
	}
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

	if (t == NULL || t->charged || st[0] == '\0' ||
	    (answer->id[0] != '\0' && strcmp(answer->id, t->id) != 0)) {
		return;	/* not an answer about the object itself */
	}
	/* A response that ran out of max_output_tokens is billed by the
	 * provider: incomplete is charged like completed. */
	ok = t->kind == LEDGER_OBJ_TASK ? strcmp(st, "succeeded") == 0 :
	    strcmp(st, "completed") == 0 || strcmp(st, "incomplete") == 0;
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
		metrics.ledger_errors++;
		return;
	}
	metrics.charges += ok;
	if (ok) {
		const struct conf_model *m = t->model != NULL ?
		    conf_find_model(c, t->model, strlen(t->model)) : NULL;
		const uint64_t tokens[METRICS_KINDS] = { ch.in, ch.cached,
		    ch.cache_write, ch.out };

		metrics_charge(m != NULL ? m->metrics : METRICS_NONE, tokens,
		    ch.cur_nano);
	}
	billing_limits_charged(&ch);
	if (ok) {	/* the store has no hold for it: a settle of its own */
		char fid[STORE_ID_MAX + 1];

		snprintf(fid, sizeof(fid), "task-%s", req_id);
		fleet_settle(ch.wallet, fid, (int64_t)ch.cur_nano, ch.in +
		    ch.cached + ch.cache_write + ch.out, clock_mono_ms());
	}
	log_info("task %s %s: %s (out=%llu)", t->id, st,
	    ok ? "charged" : "closed without charge",
	    (unsigned long long)ch.out);
}

/* Where recorded object t lives under config c: its provider's direct
 * model and its credential. */
static enum tasks_where
locate(const struct conf *c, const struct ledger_task *t,
    const struct conf_model **mp, size_t *cred, char *err, size_t errlen)
{
	size_t n = strcspn(t->route, "/"), i;
	const struct conf_provider *pv = NULL;

	for (i = 0; i < c->nproviders; i++) {
		if (strlen(c->providers[i].name) == n &&
		    memcmp(c->providers[i].name, t->route, n) == 0) {
			pv = &c->providers[i];
			break;
		}
	}
	if (pv == NULL) {
		util_errf(err, errlen, "provider %.*s of %s is no longer "
		    "configured", (int)n, t->route, t->id);
		return TASKS_GONE;
	}
	*mp = &c->direct[i];
	if ((t->cred == NULL || t->cred[0] == '\0' ||
	    strcmp(t->cred, "(none)") == 0) && pv->auth == CONF_AUTH_NONE) {
		*cred = SIZE_MAX;	/* auth=none: no credential */
		return TASKS_FOUND;
	}
	if ((i = conf_cred_index(pv, t->cred)) == SIZE_MAX) {
		util_errf(err, errlen, "credential %s of %s is no longer "
		    "configured", t->cred, t->id);
		return TASKS_GONE;
	}
	*cred = i;
	return TASKS_FOUND;
}

enum tasks_where
tasks_locate(const struct conf *c, struct view path, const char *wallet,
    const struct conf_model **m, size_t *cred, char *id, char *err,
    size_t errlen)
{
	const struct ledger *l = billing_ledger();
	const struct ledger_task *t;
	size_t i = 4, j;	/* past "/v1/" */

	if (l == NULL || path.n <= 4) {
		return TASKS_UNKNOWN;
	}
	while (i < path.n) {
		for (j = i; j < path.n && path.p[j] != '/'; j++) {
		}
		if (j - i > 0 && j - i <= TASK_ID_MAX) {
			memcpy(id, path.p + i, j - i);
			id[j - i] = '\0';
			if ((t = ledger_task_find(l, id)) != NULL) {
				if (strcmp(t->wallet, wallet) != 0) {
					return TASKS_FOREIGN;
				}
				return locate(c, t, m, cred, err, errlen);
			}
		}
		i = j + 1;
	}
	return TASKS_UNKNOWN;
}

/* The recorded object whose id is idv, or NULL. */
static const struct ledger_task *
task_of(struct view idv)
{
	const struct ledger *l = billing_ledger();
	char id[TASK_ID_MAX + 1];

	if (l == NULL || idv.n == 0 || idv.n >= sizeof(id)) {
		return NULL;
	}
	memcpy(id, idv.p, idv.n);
	id[idv.n] = '\0';
	return ledger_task_find(l, id);
}

enum tasks_where
tasks_locate_id(const struct conf *c, struct view idv, const char *wallet,
    const struct conf_model **m, size_t *cred, char *err, size_t errlen)
{
	const struct ledger_task *t = task_of(idv);

	if (t == NULL) {
		return TASKS_UNKNOWN;
	}
	if (strcmp(t->wallet, wallet) != 0) {
		return TASKS_FOREIGN;
	}
	return locate(c, t, m, cred, err, errlen);
}

size_t
tasks_cred_of(const struct conf *c, struct view idv, const char *wallet,
    size_t prov)
{
	const struct ledger_task *t = task_of(idv);
	const struct conf_model *m;
	char err[300];
	size_t cred;

	if (t == NULL || strcmp(t->wallet, wallet) != 0 ||
	    locate(c, t, &m, &cred, err, sizeof(err)) != TASKS_FOUND ||
	    m != &c->direct[prov]) {
		return SIZE_MAX;
	}
	return cred;
}

int
tasks_foreign(struct view idv, const char *wallet)
{
	const struct ledger_task *t = task_of(idv);

	return t != NULL && strcmp(t->wallet, wallet) != 0;
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
	n = snprintf(tp->head, cap, "GET %s%s/%s HTTP/1.1\r\n", pv->path,
	    tp->kind == LEDGER_OBJ_RESPONSE ? "/responses" :
	    "/contents/generations/tasks", tp->id);
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
	size_t cred, prov;
	char err[300];

	if (!id_ok(t->id)) {
		/* Recorded before ids were checked: never put into a request
		 * line (SPEC §10). */
		log_debug("task poll skipped: id not accepted");
		return;
	}
	if (locate(g->conf, t, &m, &cred, err, sizeof(err)) != TASKS_FOUND) {
		log_debug("task poll skipped: %s", err);
		return;
	}
	prov = m->routes[0].provider;
	if ((tp = calloc(1, sizeof(*tp))) == NULL) {
		return;
	}
	tp->tag.kind = POOL_OWNER_TASK_POLL;
	tp->conf = g->conf;
	usage_scan_start(&tp->scan);
	snprintf(tp->id, sizeof(tp->id), "%s", t->id);
	tp->kind = t->kind;
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

	if (now_ms >= next_forget_ms && !stopping) {
		forget(now_ms);
	}
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
	return next_poll_ms < next_forget_ms ? next_poll_ms : next_forget_ms;
}

/* The provider does not know the polled object. A fresh one may be a
 * provider's blip and stays open (no free lunch); one older than affinity
 * days= was deleted or expired upstream and will never finish: closed
 * uncharged, not polled forever. */
static void
gone(const struct task_poll *tp)
{
	const struct ledger_task *t = ledger_task_find(billing_ledger(),
	    tp->id);
	struct usage_doc d;
	char today[16];

	clock_today(today, sizeof(today));
	if (t == NULL || t->day >= ledger_recent_day_number(today) -
	    (long)tp->conf->affinity_days) {
		return;
	}
	memset(&d, 0, sizeof(d));
	d.valid = 1;
	snprintf(d.id, sizeof(d.id), "%s", tp->id);
	memcpy(d.status, "expired", sizeof("expired"));
	tasks_settle(tp->id, tp->conf, "relay-poll", tp->status, &d);
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
		if (tp->status == 404 || tp->status == 410) {
			gone(tp);
		}
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
