/* local: the relay's own endpoints (see local.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "billing.h"
#include "clock.h"
#include "conf.h"
#include "fleet.h"
#include "gen.h"
#include "json.h"
#include "ledger.h"
#include "local.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "pool.h"
#include "rewrite.h"
#include "server.h"

/* A growing string (the /v1/usage body). */
struct sbuf {
	char *p;
	size_t n, cap;
	int failed;
};

static void
sb_init(struct sbuf *s, size_t cap)
{
	s->n = 0;
	s->cap = 0;
	s->failed = 0;
	s->p = util_grow(NULL, &s->cap, cap, 1);
	s->failed = s->p == NULL;
}

static void sb_add(struct sbuf *s, const char *fmt, ...) RELAY_PRINTF(2, 3);

static void
sb_add(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	int k;

	while (!s->failed) {
		va_start(ap, fmt);
		k = vsnprintf(s->p + s->n, s->cap - s->n, fmt, ap);
		va_end(ap);
		if (k < 0) {
			s->failed = 1;
		} else if ((size_t)k < s->cap - s->n) {
			s->n += (size_t)k;
			return;
		} else {
			char *p = util_grow(s->p, &s->cap, s->n + (size_t)k + 1,
			    1);

			if (p == NULL) {
				s->failed = 1;
			} else {
				s->p = p;
			}
		}
	}
}

/* Paths are compared with literals, lengths first. */
#define path_is(v, lit) \
	((v).n == sizeof(lit) - 1 && memcmp((v).p, (lit), sizeof(lit) - 1) == 0)

#define MODEL_PATH "/v1/models/"

struct view
local_model_alias(struct view p)
{
	struct view a = { NULL, 0 };
	size_t n = sizeof(MODEL_PATH) - 1;

	if (p.n > n && memcmp(p.p, MODEL_PATH, n) == 0 &&
	    memchr(p.p + n, '/', p.n - n) == NULL) {
		a.p = p.p + n;
		a.n = p.n - n;
	}
	return a;
}

int
local_is_endpoint(struct view p)
{
	return path_is(p, "/") || path_is(p, "/healthz") ||
	    path_is(p, "/metrics") || path_is(p, "/v1/models") ||
	    path_is(p, "/v1/wallet") || path_is(p, "/v1/usage") ||
	    local_model_alias(p).n > 0;
}

int
local_needs_key(struct view p)
{
	return path_is(p, "/v1/wallet") || path_is(p, "/v1/usage");
}

/* The wallet named w in the config (NULL: "default" in open mode). */
static const struct conf_wallet *
wallet_of(const struct conf *c, const char *w)
{
	size_t i;

	for (i = 0; i < c->nwallets; i++) {
		if (strcmp(c->wallets[i].name, w) == 0) {
			return &c->wallets[i];
		}
	}
	return NULL;
}

/* A count limit as JSON: the number, or null when not set. */
static const char *
limit_json(uint64_t v, char *out, size_t cap)
{
	if (v == 0) {
		return "null";
	}
	snprintf(out, cap, "%llu", (unsigned long long)v);
	return out;
}

/* amount (wallet currency) in USD at the configured rate, exact to the
 * nano and rounded half-even, as a decimal string. */
static void
usd_of(const struct conf *c, int64_t amount, char *out, size_t cap)
{
	uint64_t a = amount < 0 ? (uint64_t)0 - (uint64_t)amount :
	    (uint64_t)amount, usd = 0;

	if (money_convert(a, c->rate_den, c->rate_num, &usd) < 0) {
		usd = 0;
	}
	out[0] = '-';
	money_format_trim((int64_t)usd, out + (amount < 0), cap - 1);
}

/* What /v1/wallet shows of a wallet. */
struct wallet_fig {
	int64_t bal, held, today_nano;
	uint64_t requests, rpm, tpm, streams;
};

static void
serve_wallet(struct server_conn *sc, const struct conf *c, const char *w,
    const struct wallet_fig *f, uint64_t now_ms)
{
	const struct conf_wallet *wl = wallet_of(c, w);
	char b[MONEY_FMT_MAX], u[MONEY_FMT_MAX + 1], body[1200];
	char od[MONEY_FMT_MAX], bd[MONEY_FMT_MAX + 2], bu[MONEY_FMT_MAX];
	char x1[24], x2[24], x3[24];
	int n;

	money_format_trim(f->bal, b, sizeof(b));
	usd_of(c, f->bal, u, sizeof(u));
	money_format(wl != NULL ? (int64_t)wl->overdraft_nano : 0, 2, od,
	    sizeof(od));
	snprintf(bd, sizeof(bd), "null");
	if (wl != NULL && wl->budget_day_nano > 0) {
		bd[0] = '"';
		money_format((int64_t)wl->budget_day_nano, 2, bd + 1,
		    sizeof(bd) - 2);
		strcat(bd, "\"");
	}
	money_format(f->today_nano + f->held, 2, bu, sizeof(bu));
	n = snprintf(body, sizeof(body), "{\"wallet\":\"%s\",\"currency\":\"%s\","
	    "\"balance\":\"%s\",\"balance_nano\":%lld,\"balance_usd\":\"%s\","
	    "\"held_nano\":%lld,\"today\":{\"charged_nano\":%lld,"
	    "\"requests\":%llu},\"overdraft\":\"%s\",\"limits\":{\"rpm\":%s,"
	    "\"tpm\":%s,\"max_streams\":%s,\"budget_day\":%s},\"used\":{"
	    "\"rpm\":%llu,\"tpm\":%llu,\"streams\":%llu,\"budget_day\":\"%s\"}}\n",
	    w, c->currency, b, (long long)f->bal, u, (long long)f->held,
	    (long long)f->today_nano, (unsigned long long)f->requests, od,
	    limit_json(wl != NULL ? wl->rpm : 0, x1, sizeof(x1)),
	    limit_json(wl != NULL ? wl->tpm : 0, x2, sizeof(x2)),
	    limit_json(wl != NULL ? wl->max_streams : 0, x3, sizeof(x3)), bd,
	    (unsigned long long)f->rpm, (unsigned long long)f->tpm,
	    (unsigned long long)f->streams, bu);
	server_respond(sc, 200, "application/json", NULL, body, (size_t)n, 0,
	    now_ms);
}

/* GET /v1/wallet from this process: the balance, holds, today's
 * charges, the overdraft, and the limits (SPEC §12) with what they see
 * in use now (rpm: the admissions of the last 60 s; tpm: settled and
 * open tokens of the last 60 s; streams open; budget_day: today's
 * charges plus open holds). */
static void
serve_wallet_here(struct server_conn *sc, const struct conf *c,
    const char *w, uint64_t now_ms)
{
	struct ledger *l = billing_ledger();
	struct wallet_fig f;
	char today[16];

	memset(&f, 0, sizeof(f));
	f.bal = ledger_balance(l, w);
	clock_today(today, sizeof(today));
	ledger_today(l, w, today, &f.today_nano, &f.requests);
	f.held = billing_held(w);
	billing_limits_used(w, &f.rpm, &f.tpm, &f.streams);
	serve_wallet(sc, c, w, &f, now_ms);
}

/* Ask the store (lw) for script s on wallet w: 0 asked (the connection
 * waits), -1 answered 503 store_unavailable. */
static int
ask_store(struct server_conn *sc, enum store_script s, const char *w,
    const char *id, const int64_t *arg, struct local_wait *lw,
    const char *why, uint64_t now_ms)
{
	lw->fc = fleet_ask(s, w, id, arg, lw->done, lw->owner, now_ms);
	if (lw->fc == NULL) {
		metrics.store_unavailable++;
		server_error(sc, 503, "store_unavailable", why, now_ms);
		return -1;
	}
	server_busy(sc);
	return 0;
}

void
local_answer(struct server_conn *sc, const struct conf *c, const char *w,
    const struct store_call *call, uint64_t now_ms)
{
	struct wallet_fig f;
	char today[16], out[300], b[MONEY_FMT_MAX];
	int64_t unused;
	int n;

	if (call->status != STORE_REPLIED || call->nfields < 2 ||
	    strcmp(call->field[0], "ok") != 0) {
		metrics.store_unavailable++;
		server_error(sc, 503, "store_unavailable", call->script ==
		    STORE_CREDIT ? "the credit is written in this relay's "
		    "ledger and goes to the shared store when it answers: do "
		    "not send it again" : "the shared store did not answer",
		    now_ms);
		return;
	}
	if (call->script == STORE_CREDIT) {
		money_format_trim(strtoll(call->field[1], NULL, 10), b,
		    sizeof(b));
		n = snprintf(out, sizeof(out), "{\"wallet\":\"%s\",\"currency\":"
		    "\"%s\",\"credited_nano\":%lld,\"balance\":\"%s\"}\n", w,
		    c->currency, (long long)call->arg[2], b);
		server_respond(sc, 200, "application/json", NULL, out,
		    (size_t)n, 0, now_ms);
		return;
	}
	memset(&f, 0, sizeof(f));
	if (call->nfields >= 8) {
		f.bal = strtoll(call->field[1], NULL, 10);
		f.held = strtoll(call->field[2], NULL, 10);
		f.streams = strtoull(call->field[4], NULL, 10);
		f.today_nano = strtoll(call->field[5], NULL, 10);
		f.rpm = strtoull(call->field[6], NULL, 10);
		/* Open holds count with their estimate, as in-process. */
		f.tpm = strtoull(call->field[7], NULL, 10) +
		    strtoull(call->field[3], NULL, 10);
	}
	clock_today(today, sizeof(today));
	ledger_today(billing_ledger(), w, today, &unused, &f.requests);
	serve_wallet(sc, c, w, &f, now_ms);
}

/* N of "?limit=N" (1..LEDGER_RECENT_MAX; the most when absent or
 * bad). */
static size_t
usage_limit(struct view q)
{
	static const char key[] = "limit=";
	size_t i, k = sizeof(key) - 1, j;
	uint64_t v;

	for (i = 0; i + k <= q.n; i++) {
		if ((i == 0 || q.p[i - 1] == '?' || q.p[i - 1] == '&') &&
		    memcmp(q.p + i, key, k) == 0) {
			for (j = i + k; j < q.n && q.p[j] != '&'; j++) {
			}
			if (util_parse_u64(q.p + i + k, j - i - k, &v) == 0 &&
			    v >= 1 && v < LEDGER_RECENT_MAX) {
				return (size_t)v;
			}
		}
	}
	return LEDGER_RECENT_MAX;
}

/* One recent charge as a JSON object. */
static void
usage_entry(struct sbuf *s, const struct conf *c,
    const struct ledger_recent_entry *x)
{
	char cost[MONEY_FMT_MAX], usd[MONEY_FMT_MAX], ms[16];

	money_format_trim(x->cur_nano, cost, sizeof(cost));
	money_format_trim((int64_t)x->usd_nano, usd, sizeof(usd));
	if (x->ms == LEDGER_RECENT_NO_MS) {
		snprintf(ms, sizeof(ms), "null");
	} else {
		snprintf(ms, sizeof(ms), "%lu", (unsigned long)x->ms);
	}
	(void)c;
	sb_add(s, "{\"ts\":\"%s\",\"id\":\"%s\",\"model\":\"%s\","
	    "\"in\":%llu,\"cached\":%llu,\"cache_write\":%llu,\"out\":%llu,"
	    "\"cost\":\"%s\",\"cost_usd\":\"%s\",\"status\":%u,\"ms\":%s,"
	    "\"estimated\":%s}", x->ts, x->id, x->model,
	    (unsigned long long)x->in, (unsigned long long)x->cached,
	    (unsigned long long)x->cache_write, (unsigned long long)x->out,
	    cost, usd, (unsigned)x->status, ms, x->estimated ? "true" : "false");
}

/* GET /v1/usage?limit=N: the caller's own recent charges, newest first,
 * and the spend of the last 14 UTC days, oldest first (SPEC §11). */
static void
serve_usage(struct server_conn *sc, const struct conf *c, const char *w,
    uint64_t now_ms)
{
	const struct ledger_recent *r = ledger_recent_of(billing_ledger(), w);
	const struct ledger_recent_entry *x;
	struct sbuf s;
	size_t limit = usage_limit(sc->req.query), k;
	char today[16], day[11], cost[MONEY_FMT_MAX];
	int64_t nano;
	uint32_t reqs;
	unsigned d;

	sb_init(&s, 4096);
	clock_today(today, sizeof(today));
	sb_add(&s, "{\"wallet\":\"%s\",\"currency\":\"%s\",\"requests\":[",
	    w, c->currency);
	for (k = 0; k < limit && (x = ledger_recent_get(r, k)) != NULL; k++) {
		sb_add(&s, k ? "," : "");
		usage_entry(&s, c, x);
	}
	sb_add(&s, "],\"days\":[");
	for (d = LEDGER_RECENT_DAYS; d-- > 0;) {
		ledger_recent_day(r, today, d, &nano, &reqs);
		ledger_recent_day_before(today, d, day);
		money_format_trim(nano, cost, sizeof(cost));
		sb_add(&s, "%s{\"day\":\"%s\",\"cost\":\"%s\",\"requests\":%lu}",
		    d + 1 == LEDGER_RECENT_DAYS ? "" : ",", day, cost,
		    (unsigned long)reqs);
	}
	sb_add(&s, "]}\n");
	if (s.failed) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
	} else {
		server_respond(sc, 200, "application/json", NULL, s.p, s.n, 0,
		    now_ms);
	}
	free(s.p);
}

/* The exposition is rendered into one buffer kept from scrape to scrape.
 * An answer larger than the connection's output buffer is sent from it
 * (borrowed), so a buffer that is outgrown is kept, not freed: a slow
 * scraper may still be reading it. */
static void
serve_metrics(struct server_conn *sc, const struct conf *c, uint64_t now_ms)
{
	static char *text, *outgrown[24];
	static size_t cap, nold;
	const struct ledger *l = billing_ledger();
	struct metrics_snapshot s;
	size_t n;
	char *p;

	s.upstreams = pool_count();
	s.idle = pool_idle();
	s.ledger_lines = l->lines;
	s.ledger_writes = l->writes;
	s.ledger_fsyncs = l->fsyncs;
	s.conf = c;
	s.routes = &gen_of(c)->routes;
	s.now_ms = now_ms;
	n = metrics_render(&s, text, cap);
	if (n >= cap) {
		if (nold == sizeof(outgrown) / sizeof(outgrown[0]) ||
		    (p = malloc(2 * n)) == NULL) {
			server_error(sc, 503, "server_busy", "out of memory",
			    now_ms);
			return;
		}
		if (text != NULL) {
			outgrown[nold++] = text;
		}
		text = p;
		cap = 2 * n;
		n = metrics_render(&s, text, cap);
	}
	server_respond(sc, 200, "text/plain; version=0.0.4", NULL, text, n, 0,
	    now_ms);
}

/* 1 when the caller speaks Anthropic's API (it sends anthropic-version,
 * as every Anthropic SDK does). */
static int
anthropic_caller(const struct server_conn *sc)
{
	const struct http_request *h = &sc->req.head;

	return rewrite_find_header(h->headers, h->nheaders,
	    "anthropic-version").n > 0;
}

/* GET /v1/models/<alias>: its catalog entry (SPEC §9). */
static void
serve_model(struct server_conn *sc, const struct conf *c, struct view alias,
    uint64_t now_ms)
{
	const struct conf_model *m = conf_find_model(c, alias.p, alias.n);
	char close_to[200], msg[512], name[64];
	size_t len;
	char *body;

	if (m == NULL) {
		snprintf(name, sizeof(name), "%.*s", (int)(alias.n > 60 ? 60 :
		    alias.n), alias.p);
		api_close_aliases(c, name, close_to, sizeof(close_to));
		snprintf(msg, sizeof(msg), "unknown model '%s'%s%s%s", name,
		    close_to[0] ? " (did you mean " : "", close_to,
		    close_to[0] ? "?)" : "; GET /v1/models lists them");
		server_error(sc, 404, "model_not_found", msg, now_ms);
		return;
	}
	if ((body = api_model_json(m, anthropic_caller(sc), &len)) == NULL) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return;
	}
	server_respond(sc, 200, "application/json", NULL, body, len, 0,
	    now_ms);
	free(body);
}

/* The console is embedded gzip-compressed (build/console.html.gz, made
 * with gzip -9n; 40% of the page's size) and sent as is
 * to clients that accept gzip, which every browser does. Others (curl
 * without --compressed, scripts) get this page, which says so. */
static const char console_plain[] =
    "<!doctype html>\n<html lang=\"en\"><meta charset=\"utf-8\">"
    "<title>Relay console</title>\n<p>The Relay console is sent "
    "gzip-compressed: open this address in a web browser, or fetch it "
    "with <code>curl --compressed</code>.</p>\n<p>The API: "
    "<code>/v1/models</code>, <code>/v1/chat/completions</code>, ...; "
    "<code>/healthz</code>.</p>\n</html>\n";

/* 1 when q (the text after "q=") is zero: "0", "0.", "0.0" ... */
static int
qvalue_zero(const char *p, size_t n)
{
	size_t i;

	if (n == 0 || p[0] != '0') {
		return 0;
	}
	for (i = 1; i < n && i < 5; i++) {
		if (p[i] != '.' && p[i] != '0') {
			return 0;
		}
	}
	return 1;
}

/* One Accept-Encoding element (RFC 9110 §12.5.3) "coding *(; param)":
 * its coding and whether its weight is q=0. */
static struct view
coding_of(struct view e, int *refused)
{
	struct view c = e, param;
	const char *semi = memchr(e.p, ';', e.n);

	*refused = 0;
	if (semi != NULL) {
		c.n = (size_t)(semi - e.p);
		param.p = semi + 1;
		param.n = e.n - c.n - 1;
		param = util_view_trim(param);
		if (param.n >= 2 && (param.p[0] == 'q' || param.p[0] == 'Q') &&
		    param.p[1] == '=') {
			*refused = qvalue_zero(param.p + 2, param.n - 2);
		}
	}
	return util_view_trim(c);
}

/* 1 when the request's Accept-Encoding fields allow gzip: "gzip" or
 * "x-gzip" with a weight above 0, or "*" while gzip is not refused by
 * name. No Accept-Encoding field: 0 (RFC 9110 would allow any coding,
 * but a client that says nothing is rarely a browser). */
static int
console_gzip_ok(const struct http_request *h)
{
	int named = -1, star = 0, refused;
	size_t i, k, a;
	struct view v, e;

	for (i = 0; i < h->nheaders; i++) {
		if (!VIEW_IEQ(h->headers[i].name, "accept-encoding")) {
			continue;
		}
		v = h->headers[i].value;
		for (a = 0; a < v.n; a = k + 1) {
			for (k = a; k < v.n && v.p[k] != ','; k++) {
			}
			e.p = v.p + a;
			e.n = k - a;
			e = coding_of(e, &refused);
			if (VIEW_IEQ(e, "gzip") || VIEW_IEQ(e, "x-gzip")) {
				named = named == 1 || !refused;
			} else if (VIEW_IEQ(e, "*")) {
				star = star || !refused;
			}
		}
	}
	return named == 1 || (named < 0 && star);
}

static void
serve_console(struct server_conn *sc, uint64_t now_ms)
{
	if (console_gzip_ok(&sc->req.head)) {
		server_respond(sc, 200, "text/html; charset=utf-8",
		    "Content-Encoding: gzip\r\nVary: Accept-Encoding\r\n",
		    (const char *)api_console_gz, api_console_gz_len, 1,
		    now_ms);
	} else {
		server_respond(sc, 200, "text/html; charset=utf-8",
		    "Vary: Accept-Encoding\r\n", console_plain,
		    sizeof(console_plain) - 1, 1, now_ms);
	}
}

void
local_serve(struct server_conn *sc, const struct conf *c, const char *wallet,
    struct local_wait *lw, uint64_t now_ms)
{
	static const int64_t now0[STORE_ARGS_MAX];

	struct view path = sc->req.path;

	if (path_is(path, "/healthz")) {
		server_respond(sc, 200, "application/json", NULL,
		    "{\"status\":\"ok\"}\n", 16, 1, now_ms);
	} else if (path_is(path, "/v1/models")) {
		const struct gen *g = gen_of(c);

		if (anthropic_caller(sc)) {
			server_respond(sc, 200, "application/json", NULL,
			    g->models_anthropic, g->models_anthropic_len, 1,
			    now_ms);
		} else {
			server_respond(sc, 200, "application/json", NULL,
			    g->models_json, g->models_len, 1, now_ms);
		}
	} else if (local_model_alias(path).n > 0) {
		serve_model(sc, c, local_model_alias(path), now_ms);
	} else if (path_is(path, "/v1/wallet") && fleet_on() &&
	    wallet_of(c, wallet) != NULL) {
		(void)ask_store(sc, STORE_READ, wallet, NULL, now0, lw,
		    "the shared store that keeps the wallets is unreachable "
		    "(reconnecting)", now_ms);
	} else if (path_is(path, "/v1/wallet")) {
		serve_wallet_here(sc, c, wallet, now_ms);
	} else if (path_is(path, "/v1/usage")) {
		serve_usage(sc, c, wallet, now_ms);
	} else if (path_is(path, "/")) {
		serve_console(sc, now_ms);
	} else {
		serve_metrics(sc, c, now_ms);
	}
}

struct view
local_credit_target(struct view path)
{
	static const char pre[] = "/admin/wallets/", post[] = "/credit";
	struct view w = { NULL, 0 };
	size_t np = sizeof(pre) - 1, ns = sizeof(post) - 1;

	if (path.n > np + ns && memcmp(path.p, pre, np) == 0 &&
	    memcmp(path.p + path.n - ns, post, ns) == 0) {
		w.p = path.p + np;
		w.n = path.n - np - ns;
		if (memchr(w.p, '/', w.n) != NULL) {
			w.n = 0;
		}
	}
	return w;
}

/* 1 when name is a wallet of c (or "default" in open mode). */
static int
known_wallet(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nwallets; i++) {
		if (strcmp(c->wallets[i].name, name) == 0) {
			return 1;
		}
	}
	return conf_open_mode(c) && strcmp(name, "default") == 0;
}

void
local_credit(struct server_conn *sc, const struct conf *c,
    struct local_wait *lw, uint64_t now_ms)
{
	int64_t arg[STORE_ARGS_MAX] = { 0 };
	char id[48];
	const char *body = sc->req.mem + sc->req.head_len;
	struct view target = local_credit_target(sc->req.path), amount, note;
	char name[128], note_s[128], err[256], out[300], b[MONEY_FMT_MAX];
	int64_t nano;
	long nl;
	int n;

	snprintf(name, sizeof(name), "%.*s", (int)target.n, target.p);
	if (!known_wallet(c, name)) {
		server_error(sc, 404, "not_found", "no such wallet in the config",
		    now_ms);
		return;
	}
	if (json_top_string(body, sc->req.body_len, "amount", &amount) !=
	    JSON_OK || money_parse(amount.p, amount.n, &nano) < 0 ||
	    nano == 0) {
		server_error(sc, 400, "bad_request", "body must be "
		    "{\"amount\":\"100.00\"} (a non-zero decimal string in the "
		    "wallet currency)", now_ms);
		return;
	}
	snprintf(note_s, sizeof(note_s), "top-up");
	if (json_top_string(body, sc->req.body_len, "note", &note) == JSON_OK) {
		nl = json_unescape(note, note_s, sizeof(note_s));
		if (nl < 0 || strlen(note_s) != (size_t)nl) {
			snprintf(note_s, sizeof(note_s), "top-up");
		} else if (!util_utf8_valid(note_s, (size_t)nl)) {
			/* The ledger is UTF-8 text (SPEC §10). */
			server_error(sc, 400, "bad_request", "the note is not "
			    "valid UTF-8", now_ms);
			return;
		}
	}
	if (fleet_on() && (wallet_of(c, name) == NULL || !store_accepts())) {
		metrics.store_unavailable++;
		server_error(sc, 503, "store_unavailable", wallet_of(c, name) ==
		    NULL ? "the open mode's wallet is not kept in the shared "
		    "store" : "the shared store that keeps the wallets is "
		    "unreachable (reconnecting): nothing was credited",
		    now_ms);
		return;
	}
	if (ledger_credit(billing_ledger(), name, nano, note_s, err,
	    sizeof(err)) < 0) {
		server_error(sc, 500, "ledger_error", err, now_ms);
		return;
	}
	log_info("%s credit wallet=%s %s_nano=%lld", sc->req.id, name,
	    c->currency_lower, (long long)nano);
	if (fleet_on()) {
		snprintf(id, sizeof(id), "credit-%s", sc->req.id);
		arg[2] = nano;
		arg[3] = 86400000;	/* a retry comes within a day */
		(void)ask_store(sc, STORE_CREDIT, name, id, arg, lw,
		    "the credit is written in this relay's ledger and goes "
		    "to the shared store when it answers: do not send it "
		    "again", now_ms);
		return;
	}
	money_format_trim(ledger_balance(billing_ledger(), name), b, sizeof(b));
	n = snprintf(out, sizeof(out), "{\"wallet\":\"%s\",\"currency\":\"%s\","
	    "\"credited_nano\":%lld,\"balance\":\"%s\"}\n", name, c->currency,
	    (long long)nano, b);
	server_respond(sc, 200, "application/json", NULL, out, (size_t)n, 0,
	    now_ms);
}
