/*
 * metrics: the counters and their text exposition (see metrics.h).
 *
 * Series live in two arrays (aliases and fixed names; credentials) that
 * only metrics_config() grows, between requests; a request reaches its
 * slot by the index its config carries. Nothing here allocates per
 * request, reads a clock or does I/O. What it does not do: keep anything
 * per wallet or per client (the labels come from the config and fixed
 * sets only, so the exposition is bounded by the config), or take a
 * status, an alias or a label from the network as a label value.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "metrics.h"
#include "route.h"
#include "util.h"

struct metrics metrics;

/* Histogram bounds in milliseconds (the loop's clock), and as the le
 * label says them, in seconds; the last bucket is +Inf. LLM calls take
 * from milliseconds (a refusal, an embedding) to minutes (a long
 * stream). */
enum { NBOUNDS = 15, NBUCKETS = NBOUNDS + 1 };
static const uint64_t bound_ms[NBOUNDS] = { 5, 10, 25, 50, 100, 250, 500,
	1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000 };
static const char *const bound_text[NBUCKETS] = { "0.005", "0.01",
	"0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30",
	"60", "120", "300", "+Inf" };

/* The status label: the codes the relay itself answers with, and those
 * providers commonly send, exactly; any other by its class. Bounded
 * whatever an upstream sends. 499 is a request whose client left before
 * it got an answer (nginx's code). */
static const int status_code[] = { 200, 201, 202, 204, 400, 401, 402, 403,
	404, 405, 408, 409, 413, 414, 415, 422, 429, 431, 499, 500, 501, 502,
	503, 504 };
enum { NCODES = sizeof status_code / sizeof status_code[0],
	NSTATUS = NCODES + 5 };	/* 2xx 3xx 4xx 5xx other */
static const char *const class_text[] = { "2xx", "3xx", "4xx", "5xx",
	"other" };

static const char *const outcome_text[METRICS_OUTCOMES] = { "ok",
	"rejected", "server_error", "timeout", "connect_error", "broken",
	"cancelled" };
static const char *const kind_text[METRICS_KINDS] = { "input", "cached",
	"cache_write", "output" };

struct hist {
	uint64_t n[NBUCKETS];	/* per bucket, not cumulative */
	uint64_t sum_ms;
};

struct model_series {
	char *name;		/* owned: the alias or a fixed name */
	int live;		/* named by the config in force: shown */
	uint64_t requests[NSTATUS];
	uint64_t tokens[METRICS_KINDS];
	struct hist duration, ttfb;
};

struct cred_series {
	char *provider;		/* owned */
	char *label;		/* owned: "openai#2", or "(none)" */
	int live;
	uint64_t n[METRICS_OUTCOMES];
};

/* A queued charge line's counts, until its write is known (see
 * metrics_charge()); the ledger queues at most 512 lines. */
enum { PENDING_MAX = 512 };
struct pending {
	size_t model;
	uint64_t tokens[METRICS_KINDS];
	uint64_t nano;
};

static struct model_series *models;	/* owned */
static size_t nmodels, cap_models;
static struct cred_series *creds;	/* owned */
static size_t ncreds, cap_creds;
static uint64_t charged_nano;	/* wallet-currency nano-units debited */
static struct pending pend[PENDING_MAX];
static size_t npend;

static size_t
status_slot(int status)
{
	size_t i;

	if (status == 0) {
		status = 499;
	}
	for (i = 0; i < NCODES; i++) {
		if (status_code[i] == status) {
			return i;
		}
	}
	return status >= 200 && status < 600 ?
	    NCODES + (size_t)(status / 100 - 2) : NSTATUS - 1;
}

static void
observe(struct hist *h, uint64_t ms)
{
	size_t i = 0;

	while (i < NBOUNDS && ms > bound_ms[i]) {
		i++;
	}
	h->n[i]++;
	h->sum_ms += ms;
}

void
metrics_request(size_t model, int status, uint64_t ms)
{
	metrics.answered++;
	if (model < nmodels) {
		models[model].requests[status_slot(status)]++;
		observe(&models[model].duration, ms);
	}
}

void
metrics_attempt(size_t cred, enum metrics_outcome o)
{
	if (cred < ncreds && o < METRICS_OUTCOMES) {
		creds[cred].n[o]++;
	}
}

void
metrics_ttfb(size_t model, uint64_t ms)
{
	if (model < nmodels) {
		observe(&models[model].ttfb, ms);
	}
}

/* Add (sign 1) or take back (sign -1) one charge's counts. */
static void
apply(size_t model, const uint64_t *tokens, uint64_t nano, int sign)
{
	size_t k;
	uint64_t *t = model < nmodels ? models[model].tokens : NULL;

	if (sign > 0) {
		charged_nano += nano;
	} else {
		charged_nano -= nano;
	}
	for (k = 0; t != NULL && k < METRICS_KINDS; k++) {
		if (sign > 0) {
			t[k] += tokens[k];
		} else {
			t[k] -= tokens[k];
		}
	}
}

void
metrics_charge(size_t model, const uint64_t tokens[METRICS_KINDS],
    uint64_t nano, size_t pending)
{
	struct pending *p;

	apply(model, tokens, nano, 1);
	if (pending != npend + 1) {
		/* Written at once, or the ledger wrote the lines queued
		 * before this one on its own (a full queue, a credit line):
		 * those are not ours to take back any more. */
		npend = 0;
		if (pending != 1) {
			return;
		}
	}
	if (npend < PENDING_MAX) {
		p = &pend[npend++];
		p->model = model;
		memcpy(p->tokens, tokens, sizeof p->tokens);
		p->nano = nano;
	}
}

void
metrics_commit(int ok)
{
	while (!ok && npend > 0) {
		npend--;
		apply(pend[npend].model, pend[npend].tokens, pend[npend].nano,
		    -1);
	}
	npend = 0;
}

/* ---- series, made per config ---------------------------------------- */

static char *
dup(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL) {
		memcpy(p, s, n);
	}
	return p;
}

/* Room for one more element in *arr (elem bytes each). 0 or -1. */
static int
room(void **arr, size_t *cap, size_t n, size_t elem)
{
	size_t want = *cap ? *cap * 2 : 32;
	void *p;

	if (n < *cap) {
		return 0;
	}
	if (n >= METRICS_SERIES_MAX ||
	    (p = realloc(*arr, want * elem)) == NULL) {
		return -1;
	}
	*arr = p;
	*cap = want;
	return 0;
}

/* The series of alias name, made when new; 0 (the sink) on failure. */
static size_t
model_series(const char *name)
{
	struct model_series *m;
	size_t i;

	for (i = 0; i < nmodels; i++) {
		if (strcmp(models[i].name, name) == 0) {
			return i;
		}
	}
	if (room((void **)&models, &cap_models, nmodels,
	    sizeof *models) < 0) {
		return 0;
	}
	m = &models[nmodels];
	memset(m, 0, sizeof *m);
	if ((m->name = dup(name)) == NULL) {
		return 0;
	}
	return nmodels++;
}

static size_t
cred_series(const char *provider, const char *label)
{
	struct cred_series *s;
	size_t i;

	for (i = 0; i < ncreds; i++) {
		if (strcmp(creds[i].provider, provider) == 0 &&
		    strcmp(creds[i].label, label) == 0) {
			return i;
		}
	}
	if (room((void **)&creds, &cap_creds, ncreds, sizeof *creds) < 0) {
		return 0;
	}
	s = &creds[ncreds];
	memset(s, 0, sizeof *s);
	if ((s->provider = dup(provider)) == NULL ||
	    (s->label = dup(label)) == NULL) {
		free(s->provider);
		return 0;
	}
	return ncreds++;
}

/* Mark series k of *arr live (k 0, the sink, is not). Returns 0, or -1
 * for the sink: what named it could not have a series of its own. */
static int
live(int *flag, size_t k)
{
	*flag = k != 0;
	return k != 0 ? 0 : -1;
}

int
metrics_config(struct conf *c)
{
	size_t i, j, k;
	int rc = 0;

	if (nmodels == 0 && (model_series("(sink)") != 0 ||
	    model_series("(local)") != METRICS_LOCAL ||
	    model_series("(none)") != METRICS_NONE)) {
		return -1;
	}
	if (ncreds == 0 && cred_series("", "(sink)") != 0) {
		return -1;
	}
	for (i = 0; i < nmodels; i++) {
		models[i].live = i == METRICS_LOCAL || i == METRICS_NONE;
	}
	for (i = 0; i < ncreds; i++) {
		creds[i].live = 0;
	}
	for (i = 0; i < c->nmodels; i++) {
		k = c->models[i].metrics = model_series(c->models[i].alias);
		rc |= live(&models[k].live, k);
	}
	for (i = 0; c->direct != NULL && i < c->nproviders; i++) {
		c->direct[i].metrics = METRICS_NONE;
	}
	for (i = 0; i < c->nproviders; i++) {
		struct conf_provider *p = &c->providers[i];

		/* A provider's own series counts attempts without a
		 * credential: auth=none with no credential line. */
		p->metrics = 0;
		if (p->ncreds == 0) {
			k = p->metrics = cred_series(p->name, "(none)");
			rc |= live(&creds[k].live, k);
		}
		for (j = 0; j < p->ncreds; j++) {
			k = p->creds[j].metrics = cred_series(p->name,
			    p->creds[j].label);
			rc |= live(&creds[k].live, k);
		}
	}
	return rc;
}

/* ---- the exposition --------------------------------------------------- */

/* Text appended to a caller's buffer; n counts what did not fit too. */
struct out {
	char *p;
	size_t n, cap;
};

static void put(struct out *o, const char *fmt, ...) RELAY_PRINTF(2, 3);

static void
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int k;

	va_start(ap, fmt);
	k = vsnprintf(o->n < o->cap ? o->p + o->n : NULL,
	    o->n < o->cap ? o->cap - o->n : 0, fmt, ap);
	va_end(ap);
	o->n += k > 0 ? (size_t)k : 0;
}

static void
put_byte(struct out *o, char c)
{
	if (o->n + 1 < o->cap) {
		o->p[o->n] = c;
		o->p[o->n + 1] = '\0';
	}
	o->n++;
}

/* name="value", the value escaped as the format wants (\\, \", \n). */
static void
put_label(struct out *o, const char *name, const char *v)
{
	put(o, "%s=\"", name);
	for (; *v != '\0'; v++) {
		if (*v == '\\' || *v == '"') {
			put_byte(o, '\\');
			put_byte(o, *v);
		} else if (*v == '\n') {
			put(o, "\\n");
		} else {
			put_byte(o, *v);
		}
	}
	put_byte(o, '"');
}

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void
put_seconds(struct out *o, uint64_t ms)
{
	put(o, "%llu.%03llu", (unsigned long long)(ms / 1000),
	    (unsigned long long)(ms % 1000));
}

static void
put_requests(struct out *o)
{
	size_t i, s;

	family(o, "relay_requests_total", "counter", "Requests answered, by "
	    "model alias ((none): relayed without a model, (local): answered "
	    "by the relay itself) and status (499: the client left first).");
	for (i = 0; i < nmodels; i++) {
		for (s = 0; models[i].live && s < NSTATUS; s++) {
			if (models[i].requests[s] == 0) {
				continue;
			}
			put(o, "relay_requests_total{");
			put_label(o, "model", models[i].name);
			if (s < NCODES) {
				put(o, ",status=\"%d\"} ", status_code[s]);
			} else {
				put(o, ",status=\"%s\"} ", class_text[s - NCODES]);
			}
			put(o, "%llu\n",
			    (unsigned long long)models[i].requests[s]);
		}
	}
}

/* One histogram family over the live model series that have data. */
static void
put_hist(struct out *o, const char *name, const char *help, int ttfb)
{
	uint64_t cum;
	size_t i, b;

	family(o, name, "histogram", help);
	for (i = 0; i < nmodels; i++) {
		const struct hist *h = ttfb ? &models[i].ttfb :
		    &models[i].duration;

		for (b = 0, cum = 0; b < NBUCKETS; b++) {
			cum += h->n[b];
		}
		if (!models[i].live || cum == 0) {
			continue;
		}
		for (b = 0, cum = 0; b < NBUCKETS; b++) {
			cum += h->n[b];
			put(o, "%s_bucket{", name);
			put_label(o, "model", models[i].name);
			put(o, ",le=\"%s\"} %llu\n", bound_text[b],
			    (unsigned long long)cum);
		}
		put(o, "%s_sum{", name);
		put_label(o, "model", models[i].name);
		put(o, "} ");
		put_seconds(o, h->sum_ms);
		put(o, "\n%s_count{", name);
		put_label(o, "model", models[i].name);
		put(o, "} %llu\n", (unsigned long long)cum);
	}
}

static void
put_attempts(struct out *o)
{
	size_t i, k;

	family(o, "relay_upstream_attempts_total", "counter", "Upstream "
	    "attempts by provider, credential label and outcome (ok, "
	    "rejected: 401/403/429, server_error: 5xx, timeout, "
	    "connect_error, broken, cancelled).");
	for (i = 0; i < ncreds; i++) {
		for (k = 0; creds[i].live && k < METRICS_OUTCOMES; k++) {
			if (creds[i].n[k] == 0) {
				continue;
			}
			put(o, "relay_upstream_attempts_total{");
			put_label(o, "provider", creds[i].provider);
			put_byte(o, ',');
			put_label(o, "credential", creds[i].label);
			put(o, ",outcome=\"%s\"} %llu\n", outcome_text[k],
			    (unsigned long long)creds[i].n[k]);
		}
	}
}

/* Every credential of the config in force: seconds of cooldown left. */
static void
put_cooling(struct out *o, const struct metrics_snapshot *s)
{
	const struct conf *c = s->conf;
	size_t i, j;

	family(o, "relay_credential_cooling", "gauge", "Seconds until a "
	    "cooling credential is tried again (0: usable).");
	for (i = 0; c != NULL && i < c->nproviders; i++) {
		const struct conf_provider *p = &c->providers[i];

		for (j = 0; j < p->ncreds; j++) {
			uint64_t until = s->routes != NULL &&
			    i < s->routes->nproviders &&
			    j < s->routes->providers[i].ncreds ?
			    s->routes->providers[i].creds[j].cooldown_until_ms :
			    0;

			put(o, "relay_credential_cooling{");
			put_label(o, "provider", p->name);
			put_byte(o, ',');
			put_label(o, "credential", p->creds[j].label);
			put(o, "} ");
			put_seconds(o, until > s->now_ms ? until - s->now_ms :
			    0);
			put_byte(o, '\n');
		}
	}
}

static void
put_tokens(struct out *o, const struct metrics_snapshot *s)
{
	size_t i, k;

	family(o, "relay_tokens_total", "counter", "Tokens charged, by model "
	    "alias and kind (input at the input price, cached, cache_write, "
	    "output), as in the ledger's charge lines.");
	for (i = 0; i < nmodels; i++) {
		const uint64_t *t = models[i].tokens;

		if (!models[i].live || (t[0] | t[1] | t[2] | t[3]) == 0) {
			continue;
		}
		for (k = 0; k < METRICS_KINDS; k++) {
			put(o, "relay_tokens_total{");
			put_label(o, "model", models[i].name);
			put(o, ",kind=\"%s\"} %llu\n", kind_text[k],
			    (unsigned long long)t[k]);
		}
	}
	family(o, "relay_charged_nano_total", "counter", "Wallet debits of "
	    "the charge lines written, in nano-units of the wallet currency.");
	put(o, "relay_charged_nano_total{");
	put_label(o, "currency", s->conf != NULL ? s->conf->currency : "");
	put(o, "} %llu\n", (unsigned long long)charged_nano);
}

/* The unlabelled families: name, type, help, value. */
static void
put_plain(struct out *o, const char *name, const char *type,
    const char *help, uint64_t v)
{
	family(o, name, type, help);
	put(o, "%s %llu\n", name, (unsigned long long)v);
}

size_t
metrics_render(const struct metrics_snapshot *s, char *out, size_t cap)
{
	struct out o;

	o.p = out;
	o.n = 0;
	o.cap = cap;
	if (cap > 0) {
		out[0] = '\0';
	}
	put_requests(&o);
	put_hist(&o, "relay_request_duration_seconds", "Time from a request's "
	    "head to the end of its answer, by model alias.", 0);
	put_hist(&o, "relay_upstream_ttfb_seconds", "Time from the start of "
	    "an upstream attempt to its response head, by model alias.", 1);
	put_attempts(&o);
	put_cooling(&o, s);
	put_tokens(&o, s);
	put_plain(&o, "relay_open_streams", "gauge", "Relayed answers whose "
	    "head went out and whose body is still on its way.",
	    metrics.open_streams);
	put_plain(&o, "relay_relayed_total", "counter", "Requests handed to "
	    "an upstream.", metrics.relayed);
	put_plain(&o, "relay_upstream_connects_total", "counter", "Upstream "
	    "connections opened.", metrics.upstream_conns);
	put_plain(&o, "relay_upstream_unavailable_total", "counter", "503 "
	    "upstream_unavailable answers.", metrics.unavailable);
	put_plain(&o, "relay_charges_total", "counter", "Charge lines "
	    "written.", metrics.charges);
	put_plain(&o, "relay_insufficient_balance_total", "counter", "402 "
	    "insufficient_balance answers.", metrics.refused_402);
	put_plain(&o, "relay_busy_rejections_total", "counter", "Connections "
	    "refused with 503 server_busy.", metrics.busy);
	put_plain(&o, "relay_client_connections", "gauge", "Open client "
	    "connections.", metrics.clients);
	put_plain(&o, "relay_upstream_connections", "gauge", "Upstream "
	    "connections, in use and parked.", s->upstreams);
	put_plain(&o, "relay_upstream_idle_connections", "gauge", "Parked "
	    "upstream connections.", s->idle);
	put_plain(&o, "relay_ledger_lines_total", "counter", "Lines in the "
	    "ledger file.", s->ledger_lines);
	put_plain(&o, "relay_ledger_writes_total", "counter", "write(2) calls "
	    "of complete ledger lines.", s->ledger_writes);
	put_plain(&o, "relay_ledger_fsyncs_total", "counter", "fsync(2) calls "
	    "on the ledger.", s->ledger_fsyncs);
	put_plain(&o, "relay_ledger_write_errors_total", "counter", "Ledger "
	    "writes that failed (their lines are undone and logged).",
	    metrics.ledger_errors);
	put_plain(&o, "relay_access_log_dropped_total", "counter", "Access "
	    "log lines lost to a failed write.", metrics.access_dropped);
	return o.n;
}
