/* Unit tests for gen: config generations. The first generation, a reload
 * that becomes current while the old one lives on as long as something
 * holds it (and is freed when the last user lets go), a bad config
 * refused with the old one kept, credential health carried over a
 * reload, each credential's fixed request lines in its auth style, and
 * each route's escaped "model" value. Configs live in a temp directory. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "gen.h"
#include "route.h"
#include "t_rt.h"

static const char CONF_A[] =
    "ledger %s/ledger.jsonl\n"
    "cooldown failures=2 seconds=30\n"
    "provider bear base=http://127.0.0.1:9001/v1 auth=bearer\n"
    "credential bear env:T_GEN_K1\n"
    "credential bear env:T_GEN_K2\n"
    "provider anth base=http://127.0.0.1:9002/v1 auth=x-api-key "
    "header=anthropic-version:2023-06-01\n"
    "credential anth env:T_GEN_K3\n"
    "provider azure base=http://localhost:9003/openai auth=api-key "
    "header=x-extra:1 header=x-other:two\n"
    "credential azure env:T_GEN_K1\n"
    "provider open base=http://127.0.0.1:9004 auth=none\n"
    "model m1 text 1.00 2.00 bear/gpt-x anth/claude-y\n"
    "model odd text 1.00 2.00 azure/org/model-1.5:free open/a/b\n";

static char err[512];

/* Write the config text (printf-style, dir filled in) to dir/name. */
static const char *
write_conf(const char *name, const char *text)
{
	char buf[4096];
	const char *path = t_path(name);

	snprintf(buf, sizeof(buf), text, t_dir);
	t_spit(path, buf);
	return path;
}

static struct conf *
load(const char *path)
{
	struct conf *c = conf_load(path, err, sizeof(err));

	if (c == NULL) {
		printf("config error: %s\n", err);
		exit(2);
	}
	return c;
}

static size_t
provider_index(const struct conf *c, const char *name)
{
	size_t i;

	for (i = 0; i < c->nproviders; i++) {
		if (strcmp(c->providers[i].name, name) == 0) {
			return i;
		}
	}
	return SIZE_MAX;
}

/* The fixed lines of (provider name, cred) as a string. */
static const char *
fixed(const struct gen *g, const char *prov, size_t cred, char *out,
    size_t cap)
{
	size_t p = provider_index(g->conf, prov);
	const struct view *v;

	if (p == SIZE_MAX) {
		return "(no provider)";
	}
	v = gen_fixed(g, p, cred);
	snprintf(out, cap, "%.*s", (int)v->n, v->p);
	return out;
}

/* The model value of (alias, route) as a string. */
static const char *
model_value(const struct gen *g, const char *alias, size_t route, char *out,
    size_t cap)
{
	const struct conf_model *m = conf_find_model(g->conf, alias,
	    strlen(alias));
	const struct view *v;

	if (m == NULL) {
		return "(no model)";
	}
	v = &g->model_value[m - g->conf->models][route];
	snprintf(out, cap, "%.*s", (int)v->n, v->p);
	return out;
}

/* Walk m's plan at now: "route:cred" per try, '~' for a cooling skip. */
static const char *
walk(struct gen *g, const char *alias, uint64_t now, char *out, size_t cap)
{
	const struct conf_model *m = conf_find_model(g->conf, alias,
	    strlen(alias));
	struct route_plan p;
	enum route_next_kind k;
	size_t route, cred;
	uint64_t wait;

	out[0] = '\0';
	route_plan_start(&p, m);
	while ((k = route_next(&p, &g->routes, g->conf, now, &route, &cred,
	    &wait)) != ROUTE_END) {
		char one[32];

		snprintf(one, sizeof(one), "%s%zu:%zu%s", out[0] ? " " : "",
		    route, cred, k == ROUTE_SKIP_COOLING ? "~" : "");
		strncat(out, one, cap - strlen(out) - 1);
	}
	return out;
}

static void
test_pieces(void)
{
	struct gen *g = gen_current();
	char got[512];

	/* Host, then the credential in the provider's auth style, then the
	 * header= lines, each ending in CRLF. */
	ok_str(fixed(g, "bear", 0, got, sizeof(got)),
	    "Host: 127.0.0.1:9001\r\nAuthorization: Bearer sk-one\r\n",
	    "bearer, first credential");
	ok_str(fixed(g, "bear", 1, got, sizeof(got)),
	    "Host: 127.0.0.1:9001\r\nAuthorization: Bearer sk-two\r\n",
	    "bearer, second credential");
	ok_str(fixed(g, "anth", 0, got, sizeof(got)),
	    "Host: 127.0.0.1:9002\r\nx-api-key: sk-three\r\n"
	    "anthropic-version: 2023-06-01\r\n", "x-api-key and header=");
	ok_str(fixed(g, "azure", 0, got, sizeof(got)),
	    "Host: localhost:9003\r\napi-key: sk-one\r\nx-extra: 1\r\n"
	    "x-other: two\r\n", "api-key and two header= lines");
	ok_str(fixed(g, "open", SIZE_MAX, got, sizeof(got)),
	    "Host: 127.0.0.1:9004\r\n", "auth=none: Host only");

	/* The "model" value sent upstream: everything after the first '/',
	 * quoted and JSON-escaped. */
	ok_str(model_value(g, "m1", 0, got, sizeof(got)), "\"gpt-x\"",
	    "m1 route 0");
	ok_str(model_value(g, "m1", 1, got, sizeof(got)), "\"claude-y\"",
	    "m1 route 1");
	/* (conf refuses '"' and '\\' in a route, so there is nothing to
	 * escape in practice.) */
	ok_str(model_value(g, "odd", 0, got, sizeof(got)),
	    "\"org/model-1.5:free\"", "everything after the first '/'");
	ok_str(model_value(g, "odd", 1, got, sizeof(got)), "\"a/b\"",
	    "a slash after the first one is part of the id");

	/* The /v1/models body is made once per generation. */
	ok(g->models_json != NULL && g->models_len == strlen(g->models_json) &&
	    strstr(g->models_json, "\"id\":\"m1\"") != NULL &&
	    strstr(g->models_json, "\"id\":\"odd\"") != NULL,
	    "models body lists both aliases: %s",
	    g->models_json ? g->models_json : "(null)");
}

int
main(void)
{
	struct conf *c1, *c1b;
	struct gen *g1, *g2, *g3;
	const char *path, *bad;
	char got[256], *text;
	size_t mark, bear;
	const struct conf_model *m;

	t_tmpdir("test_gen");
	t_log_capture();
	setenv("T_GEN_K1", "sk-one", 1);
	setenv("T_GEN_K2", "sk-two", 1);
	setenv("T_GEN_K3", "sk-three", 1);

	/* ---- the first generation ---- */
	path = write_conf("relay.conf", CONF_A);
	c1 = load(path);
	mark = t_log_mark();
	ok_int(gen_start(c1), 0, "gen_start");
	g1 = gen_current();
	ok(g1 != NULL && g1->conf == c1, "the current generation is c1's");
	ok_int(g1->refs, 1, "the relay holds the current generation");
	ok(gen_of(c1) == g1, "gen_of(c1)");
	ok(g1->has_anchors, "trust anchors loaded");
	ok(t_log_has(mark, "INFO TLS trust anchors: "),
	    "the anchors' source is logged");
	test_pieces();

	/* ---- reload: the new generation is current, the old one lives on
	 * while a connection holds it ---- */
	gen_hold(c1);	/* a client connection opened on c1 */
	gen_hold(c1);	/* and an upstream connection */
	ok_int(g1->refs, 3, "two users and the relay");

	/* Cool bear#1 down on g1: two rejections (failures=2). */
	bear = provider_index(c1, "bear");
	route_report(&g1->routes, bear, 0, ROUTE_REJECTED, 0, 1000);
	route_report(&g1->routes, bear, 0, ROUTE_REJECTED, 0, 1000);
	ok_str(walk(g1, "m1", 2000, got, sizeof(got)), "0:0~ 0:1 1:0",
	    "bear#1 cooling on the old generation");

	/* The new config: same bear credentials, anth's secret changed,
	 * another model. */
	setenv("T_GEN_K3", "sk-three-rotated", 1);
	write_conf("relay.conf",
	    "ledger %s/ledger.jsonl\n"
	    "cooldown failures=2 seconds=30\n"
	    "provider bear base=http://127.0.0.1:9001/v1 auth=bearer\n"
	    "credential bear env:T_GEN_K1\n"
	    "credential bear env:T_GEN_K2\n"
	    "provider anth base=http://127.0.0.1:9002/v1 auth=x-api-key\n"
	    "credential anth env:T_GEN_K3\n"
	    "model m1 text 1.00 2.00 bear/gpt-x anth/claude-y\n"
	    "model m2 text 3.00 4.00 anth/claude-z\n");
	mark = t_log_mark();
	ok_int(gen_reload(path), 0, "reload");
	g2 = gen_current();
	ok(g2 != g1 && g2->conf != c1, "a new current generation");
	ok(t_log_has(mark, "config reloaded: 2 models, 2 providers"),
	    "the reload is logged");
	ok_int(g2->refs, 1, "the relay holds the new one");
	ok_int(g1->refs, 2, "the old one: its two users");
	ok(gen_of(c1) == g1, "the old generation is still found");
	ok(g2->next == g1, "listed after the new one");
	ok(conf_find_model(g2->conf, "m2", 2) != NULL &&
	    conf_find_model(c1, "m2", 2) == NULL,
	    "the new model is in the new generation only");

	/* Health carried over: bear#1 is still cooling under the new config
	 * (same label and secret); anth#1's secret changed, so its history
	 * is not carried. */
	/* The round-robin cursor carries over too: the walk on g1 took
	 * bear's cursor one step on. */
	ok_str(walk(g2, "m1", 2000, got, sizeof(got)), "0:1 0:0~ 1:0",
	    "bear#1 still cooling after the reload, cursor kept");
	ok_int(g2->routes.providers[provider_index(g2->conf, "bear")].
	    creds[0].cooldown_until_ms, 31000, "same cooldown end");
	route_report(&g1->routes, provider_index(c1, "anth"), 0,
	    ROUTE_REJECTED, 0, 1000);
	ok_int(g1->routes.providers[provider_index(c1, "anth")].creds[0].
	    failures, 1, "anth#1 rejected once on the old generation");
	ok_int(g2->routes.providers[provider_index(g2->conf, "anth")].
	    creds[0].failures, 0, "a rotated secret starts clean");
	ok_str(walk(g2, "m1", 31000, got, sizeof(got)), "0:0 0:1 1:0",
	    "the cooldown ends on time in the new generation");

	/* The new generation's pieces follow its own config. */
	ok_str(fixed(g2, "anth", 0, got, sizeof(got)),
	    "Host: 127.0.0.1:9002\r\nx-api-key: sk-three-rotated\r\n",
	    "new secret, header= dropped");
	ok_str(model_value(g2, "m2", 0, got, sizeof(got)), "\"claude-z\"",
	    "m2's value");

	/* ---- a bad config is refused; the current one stays ---- */
	bad = write_conf("bad.conf", "provider x base=http://127.0.0.1:1\n"
	    "model m text 1 1 nosuch/y\n");
	mark = t_log_mark();
	ok_int(gen_reload(bad), -1, "bad config refused");
	ok(gen_current() == g2, "the running config stays current");
	snprintf(got, sizeof(got), "ERROR reload refused, keeping the running "
	    "config: %s:2: ", bad);
	ok(t_log_has(mark, got), "the refusal is logged with FILE:LINE");
	mark = t_log_mark();
	ok_int(gen_reload(t_path("missing.conf")), -1, "missing file refused");
	ok(gen_current() == g2 && t_log_has(mark, "reload refused"),
	    "still the same generation");
	ok_int(g2->refs, 1, "a refused reload takes no reference");

	/* ---- the last user of the old generation lets go ---- */
	gen_release(c1);
	ok_int(g1->refs, 1, "one user left");
	ok(gen_of(c1) == g1, "still there");
	gen_release(c1);	/* g1 and c1 are freed here (ASan would see a
				 * use after free or a leak) */
	ok(gen_of(c1) == g2, "freed: gen_of() no longer finds it (falls "
	    "back to the current one)");
	ok(g2->next == NULL, "the list holds the current generation only");

	/* The current generation is not freed when its last user goes:
	 * the relay holds it. */
	c1b = g2->conf;
	gen_hold(c1b);
	gen_release(c1b);
	ok(gen_current() == g2 && gen_of(c1b) == g2 && g2->refs == 1,
	    "the current generation outlives its users");

	/* ---- reload with no path: the embedded default config ---- */
	mark = t_log_mark();
	ok_int(gen_reload(NULL), 0, "reload of the embedded config");
	g3 = gen_current();
	ok(g3 != g2 && g3->conf->nmodels == 17, "17 aliases: %zu",
	    g3->conf->nmodels);
	ok(t_log_has(mark, "config reloaded: 17 models, 4 providers"),
	    "logged");
	m = conf_find_model(g3->conf, "gpt-5.2", 7);
	ok(m != NULL && gen_of(c1b) == g3 && g3->next == NULL,
	    "the old generation had no user left: freed at once");

	gen_free_all();
	ok(gen_current() == NULL, "gen_free_all empties the list");
	t_log_restore();
	text = t_slurp(t_logpath, NULL);
	if (t_fail && text != NULL) {
		printf("--- log ---\n%s", text);
	}
	free(text);
	t_rmdir();
	return t_done("gen");
}
