/* metrics: series per config, the status and outcome labels, histogram
 * buckets, and the exposition's shape. */
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "metrics.h"
#include "route.h"
#include "t.h"

static char text[65536];

static struct conf *
parse(const char *s)
{
	char err[256];
	struct conf *c = conf_parse(s, strlen(s), "t.conf", err, sizeof(err));

	if (c == NULL) {
		printf("config: %s\n", err);
		exit(1);
	}
	return c;
}

static const char *
render(const struct conf *c, const struct route_table *rt, uint64_t now_ms)
{
	struct metrics_snapshot s;
	size_t n;

	memset(&s, 0, sizeof(s));
	s.conf = c;
	s.routes = rt;
	s.now_ms = now_ms;
	n = metrics_render(&s, text, sizeof(text));
	ok(n < sizeof(text), "the exposition fits: %zu", n);
	return text;
}

static int
has(const char *line)
{
	char want[512];

	snprintf(want, sizeof(want), "\n%s\n", line);
	return strstr(text, want) != NULL;
}

static const char *const CONF1 =
    "listen 127.0.0.1:0\n"
    "provider p base=http://127.0.0.1:1/v1\ncredential p env:K1\n"
    "credential p env:K2\n"
    "provider open base=http://127.0.0.1:2/v1 auth=none\n"
    "model a text 1 1 p/x\nmodel b text 1 1 open/y p/z\n";

static void
test_series_and_labels(void)
{
	struct conf *c = parse(CONF1), *c2;
	struct route_table rt;
	size_t a, b;
	const uint64_t tokens[METRICS_KINDS] = { 10, 20, 0, 5 };

	ok_int(metrics_config(c), 0, "series for every alias and credential");
	a = c->models[0].metrics;
	b = c->models[1].metrics;
	ok(a > METRICS_NONE && b > METRICS_NONE && a != b, "own series");
	metrics_request(a, 200, 3);		/* bucket 0.005 */
	metrics_request(a, 200, 700);		/* bucket 1 */
	metrics_request(a, 418, 20);		/* by class */
	metrics_request(a, 0, 20);		/* the client left: 499 */
	metrics_request(METRICS_LOCAL, 404, 0);
	metrics_attempt(c->providers[0].creds[1].metrics, METRICS_REJECTED);
	metrics_attempt(c->providers[1].metrics, METRICS_TIMEOUT);
	metrics_ttfb(b, 120000);
	metrics_charge(a, tokens, 1500);
	ok(route_table_init(&rt, c) == 0, "route table");
	rt.providers[0].creds[1].cooldown_until_ms = 61500;
	render(c, &rt, 1000);
	ok(has("relay_requests_total{model=\"a\",status=\"200\"} 2"), "200");
	ok(has("relay_requests_total{model=\"a\",status=\"4xx\"} 1"), "418");
	ok(has("relay_requests_total{model=\"a\",status=\"499\"} 1"), "499");
	ok(has("relay_requests_total{model=\"(local)\",status=\"404\"} 1"),
	    "local");
	ok(strstr(text, "model=\"b\",status") == NULL, "no empty series");
	ok(has("relay_request_duration_seconds_bucket{model=\"a\","
	    "le=\"0.005\"} 1") && has("relay_request_duration_seconds_bucket"
	    "{model=\"a\",le=\"0.5\"} 3") && has(
	    "relay_request_duration_seconds_bucket{model=\"a\",le=\"1\"} 4") &&
	    has("relay_request_duration_seconds_bucket{model=\"a\","
	    "le=\"+Inf\"} 4"), "cumulative buckets");
	ok(has("relay_request_duration_seconds_sum{model=\"a\"} 0.743"),
	    "sum in seconds");
	ok(has("relay_upstream_ttfb_seconds_bucket{model=\"b\",le=\"60\"} 0")
	    && has("relay_upstream_ttfb_seconds_bucket{model=\"b\","
	    "le=\"120\"} 1"), "a bound is inclusive");
	ok(has("relay_upstream_attempts_total{provider=\"p\",credential="
	    "\"p#2\",outcome=\"rejected\"} 1"), "by credential label");
	ok(has("relay_upstream_attempts_total{provider=\"open\",credential="
	    "\"(none)\",outcome=\"timeout\"} 1"), "auth=none");
	ok(has("relay_credential_cooling{provider=\"p\",credential=\"p#2\"} "
	    "60.500") && has("relay_credential_cooling{provider=\"p\","
	    "credential=\"p#1\"} 0.000"), "cooldown seconds left");
	ok(has("relay_tokens_total{model=\"a\",kind=\"cached\"} 20") &&
	    has("relay_tokens_total{model=\"a\",kind=\"output\"} 5"),
	    "tokens by kind");
	ok(has("relay_charged_nano_total{currency=\"CNY\"} 1500"), "money");
	ok(strstr(text, "# HELP relay_open_streams ") != NULL &&
	    strstr(text, "# TYPE relay_open_streams gauge\n") != NULL,
	    "HELP and TYPE");
	route_table_free(&rt);

	/* A reload that drops a and keeps b: a is not shown, b keeps its
	 * counts, and a comes back with its counts when named again. */
	c2 = parse("listen 127.0.0.1:0\n"
	    "provider p base=http://127.0.0.1:1/v1\ncredential p env:K1\n"
	    "model b text 1 1 p/z\nmodel c text 1 1 p/w\n");
	ok_int(metrics_config(c2), 0, "reload");
	ok_int(c2->models[0].metrics, b, "b keeps its series");
	render(c2, NULL, 0);
	ok(strstr(text, "model=\"a\"") == NULL, "a is not shown");
	ok(strstr(text, "credential=\"p#2\"") == NULL, "p#2 is not shown");
	ok(has("relay_upstream_ttfb_seconds_count{model=\"b\"} 1"),
	    "b's counts go on");
	ok_int(metrics_config(c), 0, "back");
	render(c, NULL, 0);
	ok(has("relay_requests_total{model=\"a\",status=\"200\"} 2"),
	    "a's counts were kept");
	conf_free(c2);
	conf_free(c);
}

static void
test_small_buffer(void)
{
	char small[64];
	struct metrics_snapshot s;
	size_t n;

	memset(&s, 0, sizeof(s));
	n = metrics_render(&s, small, sizeof(small));
	ok(n >= sizeof(small), "too small: says how much it needs (%zu)", n);
	ok(metrics_render(&s, text, n + 1) == n, "then fits");
}

int
main(void)
{
	setenv("K1", "sk-secret-1", 1);
	setenv("K2", "sk-secret-2", 1);
	test_series_and_labels();
	ok(strstr(text, "sk-secret") == NULL, "no secret in the exposition");
	test_small_buffer();
	return t_done("metrics");
}
