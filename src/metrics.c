/*
 * metrics: the counters and their text exposition (see metrics.h).
 *
 * Series live in two lists (aliases and fixed names; credentials) that
 * only metrics_config() grows, between requests; a request reaches its
 * counter by the index its config carries. Nothing here allocates per
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
#include "ratelimit.h"
#include "route.h"
#include "util.h"

struct metrics metrics;

/* Histogram bounds in milliseconds (the loop's clock), and as the le
 * label says them, in seconds; the last bucket is +Inf. LLM calls take
 * from milliseconds (a refusal, an embedding) to minutes (a long
 * stream). Label texts are char arrays: read-only data, no relocations. */
enum { NBOUNDS = 15, NBUCKETS = NBOUNDS + 1 };
static const uint32_t bound_ms[NBOUNDS] = { 5, 10, 25, 50, 100, 250, 500,
	1000, 2500, 5000, 10000, 30000, 60000, 120000, 300000 };
static const char bound_text[NBUCKETS][6] = { "0.005", "0.01", "0.025",
	"0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "30", "60", "120",
	"300", "+Inf" };

/* The status label: the codes the relay itself answers with, and those
 * providers commonly send, exactly; any other by its class. Bounded
 * whatever an upstream sends. 499 is a request whose client left before
 * it got an answer (nginx's code). */
enum { NCODES = 24, NSTATUS = NCODES + 5 };	/* 2xx 3xx 4xx 5xx other */
static const short status_code[NCODES] = { 200, 201, 202, 204, 400, 401,
	402, 403, 404, 405, 408, 409, 413, 414, 415, 422, 429, 431, 499, 500,
	501, 502, 503, 504 };
static const char status_text[NSTATUS][6] = { "200", "201", "202", "204",
	"400", "401", "402", "403", "404", "405", "408", "409", "413", "414",
	"415", "422", "429", "431", "499", "500", "501", "502", "503", "504",
	"2xx", "3xx", "4xx", "5xx", "other" };
static const char outcome_text[METRICS_OUTCOMES][14] = { "ok", "rejected",
	"server_error", "timeout", "connect_error", "broken", "cancelled" };
static const char kind_text[METRICS_KINDS][12] = { "input", "cached",
	"cache_write", "output" };

/* The counters of a series: a model's (answers by status, tokens, two
 * histograms: buckets, not cumulative, then the sum in ms), or a
 * credential's (attempts by outcome, from 0). */
enum {
	S_REQ = 0,
	S_TOK = S_REQ + NSTATUS,
	S_DUR = S_TOK + METRICS_KINDS,
	S_TTFB = S_DUR + NBUCKETS + 1,
	S_ALL = S_TTFB + NBUCKETS + 1
};

struct series {
	char *a, *b;		/* owned, one block: the alias and ""; or the
				 * provider and the credential label */
	int live;		/* named by the config in force: shown */
	uint64_t v[S_ALL];
};

struct list {
	struct series *s;	/* owned */
	size_t n, cap;
};

static struct list M, C;	/* models (and fixed names), credentials */
static uint64_t charged_nano;	/* wallet-currency nano-units debited */

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
observe(uint64_t *h, uint64_t ms)
{
	size_t i = 0;

	while (i < NBOUNDS && ms > bound_ms[i]) {
		i++;
	}
	h[i]++;
	h[NBUCKETS] += ms;
}

void
metrics_request(size_t model, int status, uint64_t ms)
{
	metrics.answered++;
	if (model < M.n) {
		M.s[model].v[S_REQ + status_slot(status)]++;
		observe(M.s[model].v + S_DUR, ms);
	}
}

void
metrics_attempt(size_t cred, enum metrics_outcome o)
{
	if (cred < C.n && o < METRICS_OUTCOMES) {
		C.s[cred].v[o]++;
	}
}

void
metrics_ttfb(size_t model, uint64_t ms)
{
	if (model < M.n) {
		observe(M.s[model].v + S_TTFB, ms);
	}
}

void
metrics_charge(size_t model, const uint64_t tokens[METRICS_KINDS],
    uint64_t nano)
{
	size_t k;

	charged_nano += nano;
	for (k = 0; model < M.n && k < METRICS_KINDS; k++) {
		M.s[model].v[S_TOK + k] += tokens[k];
	}
}

/* ---- series, made per config ---------------------------------------- */

/* The series (a, b) of l, made when new; 0 (the sink) when it cannot
 * be. */
static size_t
find(struct list *l, const char *a, const char *b)
{
	size_t i, la = strlen(a) + 1, lb = strlen(b) + 1;
	struct series *s;

	for (i = 0; i < l->n; i++) {
		if (strcmp(l->s[i].a, a) == 0 && strcmp(l->s[i].b, b) == 0) {
			return i;
		}
	}
	if (l->n == l->cap) {
		size_t want = l->cap ? l->cap * 2 : 16;

		if (l->n >= METRICS_SERIES_MAX ||
		    (s = realloc(l->s, want * sizeof(*s))) == NULL) {
			return 0;
		}
		l->s = s;
		l->cap = want;
	}
	s = &l->s[l->n];
	memset(s, 0, sizeof(*s));
	if ((s->a = malloc(la + lb)) == NULL) {
		return 0;
	}
	memcpy(s->a, a, la);
	s->b = s->a + la;
	memcpy(s->b, b, lb);
	return l->n++;
}

/* Series k of l is shown (not the sink). Returns 0, or -1 for the sink:
 * what named it could not have a series of its own. */
static int
show(struct list *l, size_t k)
{
	l->s[k].live = k != 0;
	return k != 0 ? 0 : -1;
}

int
metrics_config(struct conf *c)
{
	size_t i, j, k;
	int rc = 0;

	if (M.n == 0 && (find(&M, "(sink)", "") != 0 ||
	    find(&M, "(local)", "") != METRICS_LOCAL ||
	    find(&M, "(none)", "") != METRICS_NONE ||
	    find(&C, "", "(sink)") != 0)) {
		return -1;
	}
	for (i = 0; i < M.n; i++) {
		M.s[i].live = i == METRICS_LOCAL || i == METRICS_NONE;
	}
	for (i = 0; i < C.n; i++) {
		C.s[i].live = 0;
	}
	for (i = 0; i < c->nmodels; i++) {
		k = c->models[i].metrics = find(&M, c->models[i].alias, "");
		rc |= show(&M, k);
	}
	for (i = 0; i < c->nproviders; i++) {
		struct conf_provider *p = &c->providers[i];

		if (c->direct != NULL) {
			c->direct[i].metrics = METRICS_NONE;
		}
		/* A provider's own series counts attempts without a
		 * credential: auth=none with no credential line. */
		k = p->metrics = p->ncreds == 0 ? find(&C, p->name, "(none)") :
		    0;
		rc |= p->ncreds == 0 ? show(&C, k) : 0;
		for (j = 0; j < p->ncreds; j++) {
			k = p->creds[j].metrics = find(&C, p->name,
			    p->creds[j].label);
			rc |= show(&C, k);
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

static void
family(struct out *o, const char *name, const char *type, const char *help)
{
	put(o, "# HELP relay_%s %s\n# TYPE relay_%s %s\n", name, help, name,
	    type);
}

/* One sample: relay_<name>{k="v",...} value. kv: label names and values
 * in pairs, NULL after the last (no braces when there is none); values
 * are escaped as the format wants (\\, \", \n). secs: v is milliseconds,
 * written as seconds. */
static void
sample(struct out *o, const char *name, const char *const *kv, uint64_t v,
    int secs)
{
	const char *c;
	size_t i;

	put(o, "relay_%s", name);
	for (i = 0; kv[i] != NULL; i += 2) {
		put(o, "%c%s=\"", i == 0 ? '{' : ',', kv[i]);
		for (c = kv[i + 1]; *c != '\0'; c++) {
			if (*c == '\\' || *c == '"' || *c == '\n') {
				put_byte(o, '\\');
			}
			put_byte(o, *c == '\n' ? 'n' : *c);
		}
		put_byte(o, '"');
	}
	if (i > 0) {
		put_byte(o, '}');
	}
	if (secs) {
		put(o, " %llu.%03llu\n", (unsigned long long)(v / 1000),
		    (unsigned long long)(v % 1000));
	} else {
		put(o, " %llu\n", (unsigned long long)v);
	}
}

/* The labels of series s of l: model="a", or provider="a",
 * credential="b"; then last="" for the caller to fill (at kv[j], which
 * it returns the index of). */
static size_t
labels(const struct list *l, const struct series *s, const char **kv,
    const char *last)
{
	size_t j = 0;

	kv[j++] = l == &M ? "model" : "provider";
	kv[j++] = s->a;
	if (l == &C) {
		kv[j++] = "credential";
		kv[j++] = s->b;
	}
	kv[j++] = last;
	kv[j + 1] = NULL;
	return j;
}

/* A counter family: v[off..off+n) of every live series of l, a sample
 * for each that is not 0, its last label's value from text (stride
 * bytes apart). */
static void
put_counts(struct out *o, const struct list *l, const char *name,
    const char *help, const char *last, size_t off, size_t n,
    const char *text, size_t stride)
{
	const char *kv[8];
	size_t i, k, j;

	family(o, name, "counter", help);
	for (i = 0; i < l->n; i++) {
		j = labels(l, &l->s[i], kv, last);
		for (k = 0; l->s[i].live && k < n; k++) {
			if (l->s[i].v[off + k] != 0) {
				kv[j] = text + k * stride;
				sample(o, name, kv, l->s[i].v[off + k], 0);
			}
		}
	}
}

/* A histogram family over the live model series that have data. */
static void
put_hist(struct out *o, const char *name, const char *help, size_t off)
{
	char fam[40];
	const char *kv[6];
	uint64_t cum;
	size_t i, b, len = strlen(name);

	family(o, name, "histogram", help);
	memcpy(fam, name, len);
	for (i = 0; i < M.n; i++) {
		const uint64_t *h = M.s[i].v + off;

		for (b = 0, cum = 0; b < NBUCKETS; b++) {
			cum += h[b];
		}
		if (!M.s[i].live || cum == 0) {
			continue;
		}
		labels(&M, &M.s[i], kv, "le");
		memcpy(fam + len, "_bucket", 8);
		for (b = 0, cum = 0; b < NBUCKETS; b++) {
			cum += h[b];
			kv[3] = bound_text[b];
			sample(o, fam, kv, cum, 0);
		}
		kv[2] = NULL;
		memcpy(fam + len, "_sum", 5);
		sample(o, fam, kv, h[NBUCKETS], 1);
		memcpy(fam + len, "_count", 7);
		sample(o, fam, kv, cum, 0);
	}
}

/* The unlabelled families, gauges first: name (after relay_) and help. */
enum { NGAUGES = 5, NPLAIN = 17 };
static const char *const plain[NPLAIN][2] = {
	{ "open_streams", "Open SSE answers." },
	{ "client_connections", "Open client connections." },
	{ "upstream_connections", "Upstream connections." },
	{ "upstream_idle_connections", "Idle upstream connections." },
	{ "store_backlog", "Settles and credits waiting for the store." },
	{ "relayed_total", "Relayed requests." },
	{ "upstream_connects_total", "Upstream connects." },
	{ "upstream_unavailable_total", "503 upstream_unavailable answers." },
	{ "charges_total", "Charge lines written." },
	{ "insufficient_balance_total", "402 answers." },
	{ "busy_rejections_total", "503 server_busy refusals." },
	{ "ledger_lines_total", "Lines in the ledger." },
	{ "ledger_writes_total", "Ledger write(2) calls." },
	{ "ledger_fsyncs_total", "Ledger fsync(2) calls." },
	{ "ledger_write_errors_total", "Ledger writes that failed." },
	{ "access_log_dropped_total", "Access log lines lost." },
	{ "store_unavailable_total", "503 store_unavailable answers." },
};

size_t
metrics_render(const struct metrics_snapshot *s, char *out, size_t cap)
{
	const uint64_t v[NPLAIN] = { metrics.open_streams, metrics.clients,
	    s->upstreams, s->idle, metrics.store_backlog, metrics.relayed,
	    metrics.upstream_conns,
	    metrics.unavailable, metrics.charges, metrics.refused_402,
	    metrics.busy, s->ledger_lines, s->ledger_writes, s->ledger_fsyncs,
	    metrics.ledger_errors, metrics.access_dropped,
	    metrics.store_unavailable };
	const struct conf *c = s->conf;
	const char *kv[6] = { "provider", NULL, "credential", NULL, NULL };
	struct out o;
	size_t i, j;

	o.p = out;
	o.n = 0;
	o.cap = cap;
	if (cap > 0) {
		out[0] = '\0';
	}
	put_counts(&o, &M, "requests_total", "Answers by model and status.",
	    "status", S_REQ, NSTATUS, status_text[0], sizeof(status_text[0]));
	put_hist(&o, "request_duration_seconds", "Request durations.", S_DUR);
	put_hist(&o, "upstream_ttfb_seconds", "Upstream time to the response "
	    "head.", S_TTFB);
	put_counts(&o, &C, "upstream_attempts_total", "Upstream attempts.",
	    "outcome", 0, METRICS_OUTCOMES, outcome_text[0],
	    sizeof(outcome_text[0]));
	put_counts(&o, &M, "tokens_total", "Tokens charged.", "kind", S_TOK,
	    METRICS_KINDS, kind_text[0], sizeof(kind_text[0]));

	/* Every credential of the config in force. */
	family(&o, "credential_cooling", "gauge", "Cooldown seconds left.");
	for (i = 0; c != NULL && i < c->nproviders; i++) {
		kv[1] = c->providers[i].name;
		for (j = 0; j < c->providers[i].ncreds; j++) {
			uint64_t until = s->routes != NULL &&
			    i < s->routes->nproviders &&
			    j < s->routes->providers[i].ncreds ?
			    s->routes->providers[i].creds[j].cooldown_until_ms :
			    0;

			kv[3] = c->providers[i].creds[j].label;
			sample(&o, "credential_cooling", kv,
			    until > s->now_ms ? until - s->now_ms : 0, 1);
		}
	}
	family(&o, "charged_nano_total", "counter", "Debits, nano-units.");
	kv[0] = "currency";
	kv[1] = c != NULL ? c->currency : "";
	kv[2] = NULL;
	sample(&o, "charged_nano_total", kv, charged_nano, 0);
	family(&o, "rate_limited_total", "counter", "429 answers by wallet "
	    "limit.");
	kv[0] = "limit";
	for (i = 1; i < LIMITS_NREASONS; i++) {
		kv[1] = limits_name((enum limits_reason)i);
		sample(&o, "rate_limited_total", kv, metrics.refused_limit[i],
		    0);
	}

	for (i = 0; i < NPLAIN; i++) {
		family(&o, plain[i][0], i < NGAUGES ? "gauge" : "counter",
		    plain[i][1]);
		sample(&o, plain[i][0], kv + 2, v[i], 0);
	}
	return o.n;
}
