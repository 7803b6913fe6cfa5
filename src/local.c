/* local: the relay's own endpoints (see local.h). */
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "billing.h"
#include "clock.h"
#include "conf.h"
#include "gen.h"
#include "json.h"
#include "ledger.h"
#include "local.h"
#include "log.h"
#include "metrics.h"
#include "money.h"
#include "pool.h"
#include "server.h"

/* Paths are compared with literals, lengths first. */
#define path_is(v, lit) \
	((v).n == sizeof(lit) - 1 && memcmp((v).p, (lit), sizeof(lit) - 1) == 0)

int
local_is_endpoint(struct view p)
{
	return path_is(p, "/") || path_is(p, "/healthz") ||
	    path_is(p, "/metrics") || path_is(p, "/v1/models") ||
	    path_is(p, "/v1/wallet");
}

static void
serve_wallet(struct server_conn *sc, const struct conf *c, const char *w,
    uint64_t now_ms)
{
	struct ledger *l = billing_ledger();
	int64_t bal = ledger_balance(l, w), today_nano = 0;
	uint64_t requests = 0, usd_abs = 0, abs_bal;
	char today[16], b[MONEY_FMT_MAX], u[MONEY_FMT_MAX + 1], body[768];
	int n;

	clock_today(today, sizeof(today));
	ledger_today(l, w, today, &today_nano, &requests);
	money_format_trim(bal, b, sizeof(b));
	/* USD = balance / rate, exact to the nano and rounded half-even. */
	abs_bal = bal < 0 ? (uint64_t)0 - (uint64_t)bal : (uint64_t)bal;
	if (money_convert(abs_bal, c->rate_den, c->rate_num, &usd_abs) < 0) {
		usd_abs = 0;
	}
	u[0] = '-';
	money_format_trim((int64_t)usd_abs, u + (bal < 0), sizeof(u) - 1);
	n = snprintf(body, sizeof(body), "{\"wallet\":\"%s\",\"currency\":\"%s\","
	    "\"balance\":\"%s\",\"balance_nano\":%lld,\"balance_usd\":\"%s\","
	    "\"held_nano\":%lld,\"today\":{\"charged_nano\":%lld,"
	    "\"requests\":%llu}}\n", w, c->currency, b, (long long)bal, u,
	    (long long)billing_held(w), (long long)today_nano,
	    (unsigned long long)requests);
	server_respond(sc, 200, "application/json", NULL, body, (size_t)n, 0,
	    now_ms);
}

static void
serve_metrics(struct server_conn *sc, uint64_t now_ms)
{
	const struct ledger *l = billing_ledger();
	struct metrics_snapshot s;
	char body[2048];
	size_t n;

	s.upstreams = pool_count();
	s.idle = pool_idle();
	s.ledger_lines = l->lines;
	s.ledger_writes = l->writes;
	s.ledger_fsyncs = l->fsyncs;
	n = metrics_render(&s, body, sizeof(body));
	server_respond(sc, 200, "text/plain; version=0.0.4", NULL, body, n, 0,
	    now_ms);
}

void
local_serve(struct server_conn *sc, const struct conf *c, const char *wallet,
    uint64_t now_ms)
{
	struct view path = sc->req.path;

	if (path_is(path, "/healthz")) {
		server_respond(sc, 200, "application/json", NULL,
		    "{\"status\":\"ok\"}\n", 16, 1, now_ms);
	} else if (path_is(path, "/v1/models")) {
		const struct gen *g = gen_of(c);

		server_respond(sc, 200, "application/json", NULL,
		    g->models_json, g->models_len, 1, now_ms);
	} else if (path_is(path, "/v1/wallet")) {
		serve_wallet(sc, c, wallet, now_ms);
	} else if (path_is(path, "/")) {
		server_respond(sc, 200, "text/html; charset=utf-8", NULL,
		    api_console_html, api_console_len, 1, now_ms);
	} else {
		serve_metrics(sc, now_ms);
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
local_credit(struct server_conn *sc, const struct conf *c, uint64_t now_ms)
{
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
	if (ledger_credit(billing_ledger(), name, nano, note_s, err,
	    sizeof(err)) < 0) {
		server_error(sc, 500, "ledger_error", err, now_ms);
		return;
	}
	log_info("%s credit wallet=%s %s_nano=%lld", sc->req.id, name,
	    c->currency_lower, (long long)nano);
	money_format_trim(ledger_balance(billing_ledger(), name), b, sizeof(b));
	n = snprintf(out, sizeof(out), "{\"wallet\":\"%s\",\"currency\":\"%s\","
	    "\"credited_nano\":%lld,\"balance\":\"%s\"}\n", name, c->currency,
	    (long long)nano, b);
	server_respond(sc, 200, "application/json", NULL, out, (size_t)n, 0,
	    now_ms);
}
