/* route: candidate order, round-robin, cooldowns on an injected monotonic
 * clock. Nothing here sleeps: time is whatever the test says it is. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "route.h"
#include "t.h"

static struct conf *
load(const char *text)
{
	char err[512];
	struct conf *c = conf_parse(text, strlen(text), "t.conf", err,
	    sizeof(err));

	if (c == NULL) {
		printf("config error: %s\n", err);
		exit(1);
	}
	return c;
}

/* Walk the whole plan; record "route:cred" for tries and "route:cred~" for
 * skips into out. */
static void
walk(struct route_table *t, const struct conf *c, const char *alias,
    uint64_t now, char *out, size_t cap)
{
	const struct conf_model *m = conf_find_model(c, alias, strlen(alias));
	struct route_plan p;
	size_t route, cred;
	uint64_t wait;
	enum route_next_kind k;

	out[0] = '\0';
	route_plan_start(&p, m);
	while ((k = route_next(&p, t, c, now, &route, &cred, &wait)) !=
	    ROUTE_END) {
		char one[32];

		snprintf(one, sizeof(one), "%s%zu:%zu%s", out[0] ? " " : "",
		    route, cred, k == ROUTE_SKIP_COOLING ? "~" :
		    k == ROUTE_SKIP_NO_CRED ? "!" : "");
		strncat(out, one, cap - strlen(out) - 1);
	}
}

int
main(void)
{
	struct conf *c;
	struct route_table t;
	char got[256], want[64];
	unsigned counts[3] = { 0, 0, 0 };
	int i;

	setenv("K1", "a", 1);
	setenv("K2", "b", 1);
	setenv("K3", "c", 1);
	c = load("provider p base=http://127.0.0.1:1/v1\n"
	    "credential p env:K1\ncredential p env:K2\ncredential p env:K3\n"
	    "provider q base=http://127.0.0.1:2/v1\ncredential q env:K1\n"
	    "provider n base=http://127.0.0.1:3/v1 auth=none\n"
	    "provider e base=http://127.0.0.1:4/v1\n"
	    "model m text 1 1 p/x q/y\n"
	    "model open text 1 1 e/x n/y\n"
	    "cooldown failures=3 seconds=60\n");
	ok_int(route_table_init(&t, c), 0, "init");

	/* Order: every route in order, credentials from the cursor. */
	walk(&t, c, "m", 1000, got, sizeof(got));
	ok_str(got, "0:0 0:1 0:2 1:0", "first request starts at cred 0");
	walk(&t, c, "m", 1000, got, sizeof(got));
	ok_str(got, "0:1 0:2 0:0 1:0", "cursor advances per request");
	walk(&t, c, "m", 1000, got, sizeof(got));
	ok_str(got, "0:2 0:0 0:1 1:0", "and wraps");

	/* A provider without credentials is skipped; auth=none is tried,
	 * with no credential: (size_t)-1, whatever the width of size_t (the
	 * skip says so too). */
	walk(&t, c, "open", 1000, got, sizeof(got));
	snprintf(want, sizeof(want), "0:%zu! 1:%zu", (size_t)-1, (size_t)-1);
	ok_str(got, want, "no-cred skip, auth=none try");

	/* Spread: first picks over 300 requests are even. */
	for (i = 0; i < 300; i++) {
		const struct conf_model *m = conf_find_model(c, "m", 1);
		struct route_plan p;
		size_t route, cred;
		uint64_t wait;

		route_plan_start(&p, m);
		if (route_next(&p, &t, c, 1000, &route, &cred, &wait) ==
		    ROUTE_TRY) {
			counts[cred]++;
		}
	}
	ok(counts[0] == 100 && counts[1] == 100 && counts[2] == 100,
	    "even spread %u %u %u", counts[0], counts[1], counts[2]);

	/* Cooldown after 3 rejections in a row; a 5xx does not count. */
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 5000);
	route_report(&t, 0, 1, ROUTE_FAILED, 0, 5000);
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 5000);
	ok_int(t.providers[0].creds[1].cooldown_until_ms, 0, "2 rejections");
	route_report(&t, 0, 1, ROUTE_OK, 0, 5000);
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 6000);
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 6000);
	ok_int(t.providers[0].creds[1].cooldown_until_ms, 0,
	    "success reset the count");
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 7000);
	ok_int(t.providers[0].creds[1].cooldown_until_ms, 67000,
	    "3rd rejection in a row cools for 60 s");

	t.providers[0].cursor = 0;
	walk(&t, c, "m", 7000, got, sizeof(got));
	ok_str(got, "0:0 0:1~ 0:2 1:0", "cooling credential is skipped");
	ok_int(route_soonest_ms(&t, c, conf_find_model(c, "m", 1), 7000), 0,
	    "siblings usable now");

	/* The clock is monotonic time passed in: only its value matters.
	 * A wall-clock jump backwards or far forward never reaches here;
	 * just before the end it is still cooling, at the end it is back. */
	t.providers[0].cursor = 1;
	walk(&t, c, "m", 66999, got, sizeof(got));
	ok_str(got, "0:1~ 0:2 0:0 1:0", "cooling until the last ms");
	t.providers[0].cursor = 1;
	walk(&t, c, "m", 67000, got, sizeof(got));
	ok_str(got, "0:1 0:2 0:0 1:0", "usable again when it ends");

	/* Retry-After longer than the cooldown extends it. */
	route_report(&t, 1, 0, ROUTE_REJECTED, 0, 10000);
	route_report(&t, 1, 0, ROUTE_REJECTED, 0, 10000);
	route_report(&t, 1, 0, ROUTE_REJECTED, 120000, 10000);
	ok_int(t.providers[1].creds[0].cooldown_until_ms, 130000,
	    "Retry-After 120 s beats cooldown 60 s");
	route_report(&t, 0, 0, ROUTE_REJECTED, 0, 10000);
	route_report(&t, 0, 0, ROUTE_REJECTED, 0, 10000);
	route_report(&t, 0, 0, ROUTE_REJECTED, 1000, 10000);
	ok_int(t.providers[0].creds[0].cooldown_until_ms, 70000,
	    "a shorter Retry-After does not shorten it");

	/* Everything cooling: soonest is the nearest end. */
	route_report(&t, 0, 2, ROUTE_REJECTED, 0, 20000);
	route_report(&t, 0, 2, ROUTE_REJECTED, 0, 20000);
	route_report(&t, 0, 2, ROUTE_REJECTED, 0, 20000);
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 20000);
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 20000);
	route_report(&t, 0, 1, ROUTE_REJECTED, 0, 20000);
	ok_int(route_soonest_ms(&t, c, conf_find_model(c, "m", 1), 20000),
	    50000, "soonest usable in 50 s (cred 0 until 70000)");
	walk(&t, c, "m", 20000, got, sizeof(got));
	ok(strstr(got, "~") != NULL && strstr(got, "0:0 ") == NULL,
	    "all skipped: %s", got);

	/* Classification. */
	ok_int(route_classify(429), ROUTE_REJECTED, "429");
	ok_int(route_classify(401), ROUTE_REJECTED, "401");
	ok_int(route_classify(403), ROUTE_REJECTED, "403");
	ok_int(route_classify(500), ROUTE_FAILED, "500");
	ok_int(route_classify(503), ROUTE_FAILED, "503");
	ok_int(route_classify(400), ROUTE_OK, "400 is the client's answer");
	ok_int(route_classify(404), ROUTE_OK, "404");
	ok_int(route_classify(200), ROUTE_OK, "200");

	/* Reload keeps health for unchanged credentials only. */
	{
		struct conf *c2;
		struct route_table t2;

		setenv("K2", "changed", 1);
		c2 = load("provider p base=http://127.0.0.1:1/v1\n"
		    "credential p env:K1\ncredential p env:K2\n"
		    "credential p env:K3\n"
		    "provider q base=http://127.0.0.1:2/v1\n"
		    "credential q env:K1\n"
		    "model m text 1 1 p/x q/y\n");
		route_table_init(&t2, c2);
		route_table_inherit(&t2, c2, &t, c);
		ok_int(t2.providers[0].creds[0].cooldown_until_ms, 70000,
		    "unchanged credential keeps its cooldown");
		ok_int(t2.providers[0].creds[1].cooldown_until_ms, 0,
		    "changed secret starts fresh");
		ok_int(t2.providers[1].creds[0].cooldown_until_ms, 130000,
		    "other provider kept");
		route_table_free(&t2);
		conf_free(c2);
	}
	route_table_free(&t);
	conf_free(c);
	return t_done("route");
}
