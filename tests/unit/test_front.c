/* Unit tests for front: one client connection (a socketpair: the relay's
 * end under server_new(), the test writes requests into the other) and
 * what front_step() answers: the relay's own paths, the admission errors
 * with their exact status and body, keys and the per-connection key
 * cache, the admin credit, keep-alive and pipelining, and a relayed
 * request to a provider played by this test on a loopback listener. The
 * test drives the loop by hand as loop.c does (poll the client and the
 * pool's upstreams, step them, commit the charges, sweep), with an
 * injected time. */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "api.h"
#include "billing.h"
#include "conf.h"
#include "front.h"
#include "gen.h"
#include "ledger.h"
#include "metrics.h"
#include "pool.h"
#include "server.h"
#include "t_rt.h"
#include "upstream.h"
#include "util.h"

#define CLI_BUF 262144

static uint64_t now = 1000000;
static struct t_provider prov;
static char err[512];
static const char *ledger_path;
static uint64_t conn_ids;

struct cli {
	struct client *cl;
	int fd;			/* the test's end */
	char buf[CLI_BUF];	/* what the client received */
	size_t len;
	int eof;
};

static const char *
key_hash(const char *key)
{
	static char hex[3][65];
	static int k;
	unsigned char h[32];

	k = (k + 1) % 3;
	util_sha256(key, strlen(key), h);
	util_hex(h, 32, hex[k]);
	return hex[k];
}

/* Requests are served on the current generation's config (SPEC §10:
 * a reload reaches every connection), whatever the connection was
 * accepted under. A test that needs another config points the current
 * generation at it for a while; only conf fields are read then (no
 * relaying). */
static struct conf *swapped;

static void
use_conf(struct conf *c)
{
	if (swapped == NULL) {
		swapped = gen_current()->conf;
	}
	gen_current()->conf = c != NULL ? c : swapped;
	if (c == NULL) {
		swapped = NULL;
	}
}

static void
cli_open(struct cli *k, const struct conf *c)
{
	struct server_conn *sc;
	int sv[2];

	memset(k, 0, sizeof(*k));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0) {
		perror("socketpair");
		exit(2);
	}
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	sc = server_new(sv[0], ++conn_ids, c, NULL, now);
	k->cl = sc ? front_new(sc) : NULL;
	if (k->cl == NULL) {
		printf("server_new/front_new failed\n");
		exit(2);
	}
	k->fd = sv[1];
}

static void
cli_close(struct cli *k)
{
	if (k->cl != NULL) {
		front_free(k->cl);
		k->cl = NULL;
	}
	if (k->fd >= 0) {
		close(k->fd);
		k->fd = -1;
	}
}

/* Let the answers that waited for their charge go (loop.c's
 * commit_charges). */
static void
commit(void)
{
	int rounds;

	for (rounds = 0; rounds < 4 && billing_busy(); rounds++) {
		struct billing_wait *w = billing_commit();

		while (w != NULL) {
			struct client *cl = w->owner;

			w = billing_take(w);
			if (cl->sc->state != SERVER_CLOSED) {
				front_release(cl, now);
			}
		}
	}
	billing_settle();
}

/* One loop pass for client k: poll it and every upstream, step what is
 * ready, commit, sweep; then the provider's turn and the client reads. */
static void
pass(struct cli *k, int ms)
{
	struct pollfd pf[17];
	struct upstream *us[17];
	size_t i, n = 0, first_up;

	if (k->cl->sc->state != SERVER_CLOSED) {
		pf[n].fd = k->cl->sc->fd;
		pf[n].events = server_interest(k->cl->sc);
		pf[n].revents = 0;
		us[n++] = NULL;
	}
	first_up = n;
	for (i = 0; i < pool_count() && n < 17; i++) {
		struct upstream *u = pool_at(i);

		if (u->state == UPSTREAM_CLOSED) {
			continue;
		}
		pf[n].fd = u->fd;
		pf[n].events = upstream_interest(u);
		pf[n].revents = 0;
		us[n++] = u;
	}
	if (poll(pf, n, ms) > 0) {
		for (i = 0; i < n; i++) {
			if (pf[i].revents == 0) {
				continue;
			}
			if (i < first_up) {
				if (k->cl->sc->state != SERVER_CLOSED) {
					server_step(k->cl->sc, pf[i].revents,
					    now);
					front_step(k->cl, now);
				}
			} else if (us[i]->state != UPSTREAM_CLOSED) {
				struct pool_owner *o;

				upstream_step(us[i], pf[i].revents, now);
				o = us[i]->owner;
				if (o != NULL && o->kind == POOL_OWNER_CLIENT) {
					front_on_upstream((struct client *)o,
					    now);
				}
			}
		}
	}
	commit();
	pool_sweep();
	t_provider_step(&prov);
	(void)t_drain(k->fd, k->buf, sizeof(k->buf), &k->len, &k->eof);
}

/* Passes until the client holds a complete response (or the relay
 * closed). Returns the response (k->buf). */
static const char *
await(struct cli *k)
{
	int i;

	for (i = 0; i < 400; i++) {
		if (t_http_complete(k->buf, k->len) > 0 || k->eof) {
			break;
		}
		pass(k, 5);
	}
	return k->buf;
}

/* Send a request and wait for its response. */
static const char *
request(struct cli *k, const char *text)
{
	k->len = 0;
	k->buf[0] = '\0';
	t_send(k->fd, text);
	return await(k);
}

/* Drop the first complete response from k->buf (keep-alive). */
static void
consume(struct cli *k)
{
	size_t n = t_http_complete(k->buf, k->len);

	memmove(k->buf, k->buf + n, k->len - n);
	k->len -= n;
	k->buf[k->len] = '\0';
}

/* A fresh connection for one request; the response stays in *k. */
static const char *
once(struct cli *k, const struct conf *c, const char *text)
{
	cli_open(k, c);
	return request(k, text);
}

/* The response without its x-request-id value: status line, fields and
 * body as the client sees them. */
static const char *
plain(const char *resp, char *out, size_t cap)
{
	const char *id = strstr(resp, "x-request-id: req_");
	size_t n = t_http_complete(resp, strlen(resp));

	if (n == 0) {
		n = strlen(resp);
	}
	if (id == NULL || id > resp + n) {
		snprintf(out, cap, "%.*s", (int)n, resp);
	} else {
		snprintf(out, cap, "%.*sx-request-id: ID%.*s", (int)(id - resp),
		    resp, (int)(n - (size_t)(id - resp) - 40), id + 40);
	}
	return out;
}

static char *
error_response(int status, const char *reason, const char *type,
    const char *code, const char *message, int close_after,
    const char *extra, char *out, size_t cap)
{
	char body[1024];

	snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\",\"type\":"
	    "\"%s\",\"code\":\"%s\"}}\n", message, type, code);
	snprintf(out, cap, "HTTP/1.1 %d %s\r\nContent-Type: application/json"
	    "\r\nContent-Length: %zu\r\nx-request-id: ID\r\n%s%s\r\n%s",
	    status, reason, strlen(body), close_after ?
	    "Connection: close\r\n" : "", extra ? extra : "", body);
	return out;
}

/* A request on a fresh connection must get exactly this error; a
 * request the relay did not read to its end closes the connection. */
static void
want_error(const struct conf *c, const char *req, int status,
    const char *reason, const char *type, const char *code,
    const char *message, int close_after, const char *extra,
    const char *name)
{
	struct cli k;
	char want[2048], got[4096];
	int i;

	once(&k, c, req);
	error_response(status, reason, type, code, message, close_after, extra,
	    want, sizeof(want));
	ok_str(plain(k.buf, got, sizeof(got)), want, name);
	if (close_after) {
		for (i = 0; i < 20 && !k.eof; i++) {
			pass(&k, 1);
		}
		ok(k.eof, "%s: the connection is closed after it", name);
	} else {
		ok(!k.eof && k.cl->sc->state == SERVER_READ_HEAD,
		    "%s: the connection stays open", name);
	}
	cli_close(&k);
}

static const char *
post(const char *path, const char *auth, const char *body)
{
	static char text[8192];

	snprintf(text, sizeof(text), "POST %s HTTP/1.1\r\nHost: relay\r\n"
	    "%sContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n"
	    "%s", path, auth, strlen(body), body);
	return text;
}

static const char *
get(const char *path, const char *auth)
{
	static char text[2048];

	snprintf(text, sizeof(text), "GET %s HTTP/1.1\r\nHost: relay\r\n%s\r\n",
	    path, auth);
	return text;
}

#define ACME "Authorization: Bearer k-acme\r\n"
#define BETA "x-api-key: k-beta\r\n"
#define ADMIN "Authorization: Bearer adm-secret\r\n"
#define CHAT "{\"model\":\"gpt-5.2\",\"messages\":[],\"max_tokens\":10}"

static void
test_paths(const struct conf *c, struct conf *noadmin)
{
	/* Unknown paths. */
	want_error(c, get("/nope", ""), 404, "Not Found", "not_found_error",
	    "not_found", "unknown path", 1, NULL, "404 unknown path");
	want_error(c, get("/v2/chat", ACME), 404, "Not Found",
	    "not_found_error", "not_found", "unknown path", 1, NULL,
	    "404 outside /v1");
	want_error(c, post("/admin/wallets/acme", ADMIN, "{}"), 404,
	    "Not Found", "not_found_error", "not_found", "unknown path", 1,
	    NULL, "404 unknown admin path");
	want_error(c, post("/admin/wallets/a/b/credit", ADMIN, "{}"), 404,
	    "Not Found", "not_found_error", "not_found", "unknown path", 1,
	    NULL, "404 wallet name with a slash");

	/* Wrong methods: each 405 lists what the path accepts (SPEC §9). */
	want_error(c, post("/healthz", "", "{}"), 405, "Method Not Allowed",
	    "invalid_request_error", "method_not_allowed",
	    "use GET for this path", 1, "Allow: GET\r\n",
	    "405 POST /healthz");
	want_error(c, "DELETE /v1/models HTTP/1.1\r\nHost: relay\r\n\r\n", 405,
	    "Method Not Allowed", "invalid_request_error",
	    "method_not_allowed", "use GET for this path", 1,
	    "Allow: GET\r\n", "405 DELETE /v1/models");
	want_error(c, "PUT /v1/models/gpt-5.2 HTTP/1.1\r\nHost: relay\r\n\r\n",
	    405, "Method Not Allowed", "invalid_request_error",
	    "method_not_allowed", "use GET, DELETE for this path", 1,
	    "Allow: GET, DELETE\r\n", "405 PUT of a model");
	want_error(c, "PATCH /v1/chat/completions HTTP/1.1\r\nHost: relay\r\n"
	    "\r\n", 405, "Method Not Allowed", "invalid_request_error",
	    "method_not_allowed", "use GET, POST, DELETE for this path", 1,
	    "Allow: GET, POST, DELETE\r\n", "405 PATCH of a relayed path");
	want_error(c, get("/admin/wallets/acme/credit", ADMIN), 405,
	    "Method Not Allowed", "invalid_request_error",
	    "method_not_allowed", "use POST for this path", 1,
	    "Allow: POST\r\n", "405 GET of the admin credit");
	/* A GET without a model and on no recorded object goes to the
	 * passthrough provider; there is none here. */
	want_error(c, get("/v1/chat/completions", ACME), 404, "Not Found",
	    "not_found_error", "not_found", "this call names no model and no "
	    "object the relay recorded, and no passthrough provider is "
	    "configured (passthrough PROVIDER)", 0, NULL,
	    "GET of a relayed path without passthrough");

	/* Keys. */
	want_error(c, post("/v1/chat/completions", "", CHAT), 401,
	    "Unauthorized", "authentication_error", "invalid_api_key",
	    "missing API key: send Authorization: Bearer <key> or x-api-key",
	    1, NULL, "401 no key");
	want_error(c, post("/v1/chat/completions",
	    "Authorization: Basic k-acme\r\n", CHAT), 401, "Unauthorized",
	    "authentication_error", "invalid_api_key",
	    "missing API key: send Authorization: Bearer <key> or x-api-key",
	    1, NULL, "401 a Basic credential is no key");
	want_error(c, post("/v1/chat/completions",
	    "Authorization: Bearer k-nobody\r\n", CHAT), 401, "Unauthorized",
	    "authentication_error", "invalid_api_key", "unknown API key", 1,
	    NULL, "401 unknown Bearer key");
	want_error(c, post("/v1/chat/completions", "x-api-key: k-nobody\r\n",
	    CHAT), 401, "Unauthorized", "authentication_error",
	    "invalid_api_key", "unknown API key", 1, NULL,
	    "401 unknown x-api-key");
	want_error(c, get("/v1/wallet", ""), 401, "Unauthorized",
	    "authentication_error", "invalid_api_key",
	    "missing API key: send Authorization: Bearer <key> or x-api-key",
	    1, NULL, "401 /v1/wallet needs a key");
	want_error(c, get("/v1/contents/generations/tasks/t1", ""), 401,
	    "Unauthorized", "authentication_error", "invalid_api_key",
	    "missing API key: send Authorization: Bearer <key> or x-api-key",
	    1, NULL, "401 a task read needs a key");

	/* The admin API. */
	use_conf(noadmin);
	want_error(noadmin, post("/admin/wallets/acme/credit", ADMIN,
	    "{\"amount\":\"1.00\"}"), 403, "Forbidden",
	    "invalid_request_error", "forbidden",
	    "the admin API is off: set admin_key in the config", 1, NULL,
	    "403 admin off");
	use_conf(NULL);
	want_error(c, post("/admin/wallets/acme/credit", "",
	    "{\"amount\":\"1.00\"}"), 401, "Unauthorized",
	    "authentication_error", "invalid_api_key", "missing admin key", 1,
	    NULL, "401 no admin key");
	want_error(c, post("/admin/wallets/acme/credit",
	    "x-api-key: adm-secret\r\n", "{\"amount\":\"1.00\"}"), 401,
	    "Unauthorized", "authentication_error", "invalid_api_key",
	    "missing admin key", 1, NULL, "401 the admin key only as Bearer");
	want_error(c, post("/admin/wallets/acme/credit", ACME,
	    "{\"amount\":\"1.00\"}"), 401, "Unauthorized",
	    "authentication_error", "invalid_api_key", "wrong admin key", 1,
	    NULL, "401 a client key is the wrong admin key");
	want_error(c, post("/admin/wallets/nobody/credit", ADMIN,
	    "{\"amount\":\"1.00\"}"), 404, "Not Found", "not_found_error",
	    "not_found", "no such wallet in the config", 0, NULL,
	    "404 credit of an unknown wallet");
	want_error(c, post("/admin/wallets/acme/credit", ADMIN,
	    "{\"amount\":\"1.5.0\"}"), 400, "Bad Request",
	    "invalid_request_error", "bad_request", "body must be "
	    "{\\\"amount\\\":\\\"100.00\\\"} (a non-zero decimal string in the "
	    "wallet currency)", 0, NULL, "400 bad amount");
	want_error(c, post("/admin/wallets/acme/credit", ADMIN,
	    "{\"amount\":\"0\"}"), 400, "Bad Request", "invalid_request_error",
	    "bad_request", "body must be {\\\"amount\\\":\\\"100.00\\\"} (a "
	    "non-zero decimal string in the wallet currency)", 0, NULL,
	    "400 zero amount");
}

static void
test_local(const struct conf *c)
{
	struct cli k;
	char want[4096], got[8192], line[1024], *text;
	const char *body;
	const struct gen *g = gen_current();
	int n;

	/* The admin credit: the new balance, and a credit line. */
	once(&k, c, post("/admin/wallets/acme/credit", ADMIN,
	    "{\"amount\":\"100.00\",\"note\":\"first \\u0074op-up\"}"));
	ok_str(plain(k.buf, got, sizeof(got)), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 83\r\n"
	    "x-request-id: ID\r\n\r\n{\"wallet\":\"acme\",\"currency\":\"CNY\","
	    "\"credited_nano\":100000000000,\"balance\":\"100.00\"}\n",
	    "admin credit answers the balance");
	text = t_slurp(ledger_path, NULL);
	n = t_nlines(text);
	ok(text != NULL && t_line(text, n, line, sizeof(line)) &&
	    strstr(line, "\"type\":\"credit\",\"wallet\":\"acme\",\"cny_nano\":"
	    "100000000000,\"note\":\"first top-up\",\"prev\":") != NULL,
	    "the credit line: %s", line);
	free(text);
	/* Keep-alive: a second credit on the same connection. */
	consume(&k);
	request(&k, post("/admin/wallets/acme/credit", ADMIN,
	    "{\"amount\":\"-0.5\"}"));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"credited_nano\":"
	    "-500000000,\"balance\":\"99.50\"}") != NULL,
	    "a correction on the same connection: %s", k.buf);
	cli_close(&k);
	ok_int(ledger_balance(billing_ledger(), "acme"), 99500000000,
	    "balance 99.50");

	/* /healthz */
	once(&k, c, get("/healthz", ""));
	ok_str(plain(k.buf, got, sizeof(got)), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 16\r\n"
	    "x-request-id: ID\r\n\r\n{\"status\":\"ok\"}\n", "/healthz");
	ok(!k.eof, "keep-alive");

	/* /v1/models on the same connection: the generation's body. */
	consume(&k);
	request(&k, get("/v1/models", ""));
	snprintf(want, sizeof(want), "HTTP/1.1 200 OK\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\nx-request-id: ID\r\n"
	    "\r\n%s", g->models_len, g->models_json);
	ok_str(plain(k.buf, got, sizeof(got)), want, "/v1/models");
	ok(strstr(k.buf, "\"id\":\"gpt-5.2\"") != NULL, "lists gpt-5.2");

	/* /v1/wallet with a key. 99.50 CNY / 7.2 = 13.819444444(4) USD. */
	consume(&k);
	request(&k, get("/v1/wallet", ACME));
	ok_str(plain(k.buf, got, sizeof(got)), "HTTP/1.1 200 OK\r\n"
	    "Content-Type: application/json\r\nContent-Length: 309\r\n"
	    "x-request-id: ID\r\n\r\n{\"wallet\":\"acme\",\"currency\":\"CNY\","
	    "\"balance\":\"99.50\",\"balance_nano\":99500000000,"
	    "\"balance_usd\":\"13.819444444\",\"held_nano\":0,\"today\":"
	    "{\"charged_nano\":0,\"requests\":0},\"overdraft\":\"0.00\","
	    "\"limits\":{\"rpm\":null,\"tpm\":null,\"max_streams\":null,"
	    "\"budget_day\":null},\"used\":{\"rpm\":0,\"tpm\":0,"
	    "\"streams\":0,\"budget_day\":\"0.00\"}}\n",
	    "/v1/wallet");

	/* /metrics: Prometheus text. */
	consume(&k);
	request(&k, get("/metrics", ""));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "Content-Type: text/plain; "
	    "version=0.0.4\r\n") != NULL, "/metrics is text");
	ok(metrics.answered >= 4, "the answers before it are counted: %llu",
	    (unsigned long long)metrics.answered);
	ok(strstr(k.buf, "\n# TYPE relay_requests_total counter\n") != NULL &&
	    strstr(k.buf, "\n# TYPE relay_request_duration_seconds "
	    "histogram\n") != NULL, "the labelled families are announced");
	ok(strstr(k.buf, "\n# TYPE relay_charges_total counter\n") != NULL &&
	    strstr(k.buf, "\nrelay_ledger_lines_total ") != NULL,
	    "counters and ledger figures");

	/* The console: gzip-compressed to a client that accepts gzip (the
	 * bytes built into the binary), a page that says so to others. */
	consume(&k);
	request(&k, get("/", "Accept-Encoding: gzip, deflate, br\r\n"));
	body = strstr(k.buf, "\r\n\r\n");
	ok(t_status(k.buf) == 200 && strstr(k.buf, "Content-Type: text/html; "
	    "charset=utf-8\r\n") && strstr(k.buf, "Content-Encoding: gzip"
	    "\r\n") && strstr(k.buf, "Vary: Accept-Encoding\r\n") &&
	    body != NULL && k.len - (size_t)(body + 4 - k.buf) ==
	    api_console_gz_len && memcmp(body + 4, api_console_gz,
	    api_console_gz_len) == 0 && api_console_gz[0] == 0x1f &&
	    api_console_gz[1] == 0x8b, "the console page, gzip-compressed");
	consume(&k);
	request(&k, get("/", "Accept-Encoding: gzip;q=0, *\r\n"));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "Content-Type: text/html; "
	    "charset=utf-8\r\n") && !strstr(k.buf, "Content-Encoding") &&
	    strstr(k.buf, "<title>Relay console</title>") &&
	    strstr(k.buf, "curl --compressed"),
	    "gzip refused: a page saying how to get the console");
	consume(&k);
	request(&k, get("/", "Accept-Encoding: identity;q=1, *;q=0.5\r\n"));
	ok(strstr(k.buf, "Content-Encoding: gzip\r\n") != NULL,
	    "'*' with a weight accepts gzip");
	consume(&k);
	request(&k, get("/", ""));
	ok(t_status(k.buf) == 200 && !strstr(k.buf, "Content-Encoding") &&
	    strstr(k.buf, "curl --compressed"),
	    "no Accept-Encoding: the plain page");
	ok_int(k.cl->sc->served, 8, "eight answers on one connection");
	cli_close(&k);
}

static void
test_key_cache(const struct conf *c)
{
	struct cli k;
	char got[4096];

	cli_open(&k, c);
	request(&k, get("/v1/wallet", ACME));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"wallet\":\"acme\""),
	    "first key on the connection");
	consume(&k);
	request(&k, get("/v1/wallet", ACME));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"wallet\":\"acme\""),
	    "the same key again (from the cache)");
	consume(&k);
	request(&k, get("/v1/wallet", BETA));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"wallet\":\"beta\""),
	    "another key (x-api-key) on the same connection: its own wallet");
	consume(&k);
	request(&k, get("/v1/wallet", ACME));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"wallet\":\"acme\""),
	    "back to the first key");
	consume(&k);
	/* A key of the same length as the cached one, one byte off. */
	request(&k, get("/v1/wallet", "Authorization: Bearer k-acmf\r\n"));
	ok_str(plain(k.buf, got, sizeof(got)), "HTTP/1.1 401 Unauthorized\r\n"
	    "Content-Type: application/json\r\nContent-Length: 95\r\n"
	    "x-request-id: ID\r\nConnection: close\r\n\r\n{\"error\":"
	    "{\"message\":\"unknown API key\",\"type\":\"authentication_error\","
	    "\"code\":\"invalid_api_key\"}}\n",
	    "a near miss of the cached key is unknown");
	cli_close(&k);
}

static void
test_bodies(const struct conf *c)
{
	struct cli k;
	char want[2048], got[4096];
	size_t mark;

	/* A relayed path whose body is not what it must be: 400, and the
	 * connection goes on (the body was read). */
	cli_open(&k, c);
	request(&k, post("/v1/chat/completions", ACME, "{\"model\":"));
	error_response(400, "Bad Request", "invalid_request_error",
	    "invalid_json", "the request body is not valid JSON", 0, NULL,
	    want, sizeof(want));
	ok_str(plain(k.buf, got, sizeof(got)), want, "400 invalid_json");
	consume(&k);
	request(&k, post("/v1/chat/completions", ACME, "[1,2]"));
	error_response(400, "Bad Request", "invalid_request_error",
	    "invalid_json", "the request body must be a JSON object", 0, NULL,
	    want, sizeof(want));
	ok_str(plain(k.buf, got, sizeof(got)), want, "400 not an object");
	consume(&k);
	request(&k, post("/v1/chat/completions", ACME,
	    "{\"messages\":[{\"model\":\"gpt-5.2\"}]}"));
	error_response(400, "Bad Request", "invalid_request_error",
	    "missing_model", "the request body has no \\\"model\\\" string", 0,
	    NULL, want, sizeof(want));
	ok_str(plain(k.buf, got, sizeof(got)), want,
	    "400 missing_model (a nested model does not count)");
	consume(&k);
	request(&k, post("/v1/chat/completions", ACME,
	    "{\"model\":\"gpt-5.3\"}"));
	error_response(404, "Not Found", "not_found_error", "model_not_found",
	    "unknown model 'gpt-5.3' (did you mean 'gpt-5.2'?)", 0, NULL, want,
	    sizeof(want));
	ok_str(plain(k.buf, got, sizeof(got)), want, "404 did you mean");
	consume(&k);
	request(&k, post("/v1/chat/completions", ACME,
	    "{\"model\":\"zzzzzzzzzzzz\"}"));
	error_response(404, "Not Found", "not_found_error", "model_not_found",
	    "unknown model 'zzzzzzzzzzzz'; GET /v1/models lists them", 0, NULL,
	    want, sizeof(want));
	ok_str(plain(k.buf, got, sizeof(got)), want,
	    "404 with nothing close: the catalog's path");
	ok_int(k.cl->sc->served, 5, "all on one connection");
	ok_int(prov.nreqs, 0, "no upstream was asked");
	cli_close(&k);

	/* 402: beta has nothing. Its hold is 12 bytes... of prompt / 4 = the
	 * body's bytes / 4 input tokens and max_tokens out. */
	mark = t_log_mark();
	cli_open(&k, c);
	request(&k, post("/v1/chat/completions", BETA,
	    "{\"model\":\"gpt-5.2\",\"max_tokens\":1000}"));
	error_response(402, "Payment Required", "insufficient_quota",
	    "insufficient_balance", "wallet 'beta' has 0.00 CNY (0.00 held by "
	    "running requests) and cannot cover this request's hold of 0.10 "
	    "CNY; top it up or lower max_tokens", 0, NULL, want, sizeof(want));
	ok_str(plain(k.buf, got, sizeof(got)), want, "402 insufficient_balance");
	ok_int(prov.nreqs, 0, "no upstream was asked");
	ok_int(billing_held("beta"), 0, "nothing held");
	ok(t_log_has(mark, "POST /v1/chat/completions -> 402 "
	    "insufficient_balance"), "logged");
	/* The connection goes on: the wallet endpoint answers. */
	consume(&k);
	request(&k, get("/v1/wallet", BETA));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"held_nano\":0,"),
	    "keep-alive after a 402");
	cli_close(&k);
}

static void
test_pipeline(const struct conf *c)
{
	struct cli k;
	char two[512];
	int i;

	/* Two requests in one write: answered in order. */
	cli_open(&k, c);
	snprintf(two, sizeof(two), "%s%s", get("/healthz", ""),
	    "GET /v1/wallet HTTP/1.1\r\nHost: relay\r\nx-api-key: k-acme\r\n"
	    "\r\n");
	t_send(k.fd, two);
	for (i = 0; i < 50; i++) {
		size_t first = t_http_complete(k.buf, k.len);

		if (first > 0 && t_http_complete(k.buf + first,
		    k.len - first) > 0) {
			break;
		}
		pass(&k, 5);
	}
	ok(strncmp(k.buf, "HTTP/1.1 200 OK", 15) == 0 &&
	    strstr(k.buf, "{\"status\":\"ok\"}\n") != NULL,
	    "first answer: /healthz");
	consume(&k);
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"wallet\":\"acme\""),
	    "second answer: the wallet");
	ok_int(k.cl->sc->served, 2, "two served");

	/* HTTP/1.0 without keep-alive: one answer, then close. */
	consume(&k);
	cli_close(&k);
	once(&k, c, "GET /healthz HTTP/1.0\r\n\r\n");
	ok(t_status(k.buf) == 200 && strstr(k.buf, "Connection: close\r\n"),
	    "HTTP/1.0: Connection: close");
	for (i = 0; i < 20 && !k.eof; i++) {
		pass(&k, 1);
	}
	ok(k.eof, "and closed");
	cli_close(&k);
}

static void
test_relay(const struct conf *c)
{
	struct cli k;
	char want[2048], got[4096], line[1024], *text;
	int64_t bal = ledger_balance(billing_ledger(), "acme");
	int n;

	/* A relayed request: the provider gets the rewritten request on
	 * the credential, the client the answer with the relay's fields,
	 * the wallet the charge. */
	t_provider_reset(&prov);
	t_provider_json(&prov, 200, "x-request-id: up-1\r\n",
	    "{\"id\":\"c1\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
	    "\"completion_tokens\":7}}");
	cli_open(&k, c);
	request(&k, post("/v1/chat/completions", ACME "Accept-Encoding: gzip\r\n",
	    CHAT));
	ok_int(prov.nreqs, 1, "the provider got one request");
	snprintf(want, sizeof(want), "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: 127.0.0.1:%d\r\nAuthorization: Bearer sk-up\r\n"
	    "Content-Type: application/json\r\nContent-Length: 50\r\n\r\n"
	    "{\"model\":\"up-model\",\"messages\":[],\"max_tokens\":10}",
	    prov.port);
	ok_str(prov.nreqs ? prov.req[0] : "", want,
	    "the upstream request: credential, no client key, no "
	    "Accept-Encoding, the upstream model");
	ok_str(plain(k.buf, got, sizeof(got)), "HTTP/1.1 200 X\r\n"
	    "Content-Type: application/json\r\nx-upstream-request-id: up-1\r\n"
	    "Content-Length: 75\r\nx-request-id: ID\r\nx-relay-route: "
	    "p/up-model\r\nx-relay-attempts: 1\r\n\r\n{\"id\":\"c1\","
	    "\"choices\":[],\"usage\":{\"prompt_tokens\":11,"
	    "\"completion_tokens\":7}}", "the client's answer");
	text = t_slurp(ledger_path, NULL);
	n = t_nlines(text);
	t_line(text, n, line, sizeof(line));
	free(text);
	snprintf(want, sizeof(want), "\"type\":\"charge\",\"id\":\"%.26s\","
	    "\"wallet\":\"acme\",\"model\":\"gpt-5.2\",\"route\":"
	    "\"p/up-model\",\"cred\":\"p#1\",\"status\":200,\"in\":11,"
	    "\"out\":7,\"usd_nano\":117250,\"cny_nano\":844200,\"prev\":",
	    strstr(k.buf, "x-request-id: ") ? strstr(k.buf,
	    "x-request-id: ") + 14 : "?");
	ok(strstr(line, want) != NULL, "charged: %s", line);
	ok_int(ledger_balance(billing_ledger(), "acme"), bal - 844200,
	    "debited");
	ok_int(billing_held("acme"), 0, "the hold is released");
	ok_int(pool_idle(), 1, "the upstream connection is parked");

	/* Keep-alive on both sides: the next request reuses the parked
	 * upstream connection. */
	t_provider_json(&prov, 200, NULL, "{\"usage\":{\"prompt_tokens\":1,"
	    "\"completion_tokens\":1}}");
	consume(&k);
	request(&k, post("/v1/chat/completions", ACME, CHAT));
	ok(t_status(k.buf) == 200 && strstr(k.buf, "x-relay-attempts: 1\r\n"),
	    "second relayed request on the same connection");
	ok(prov.nreqs == 2 && prov.req_conn[1] == prov.req_conn[0],
	    "on the same upstream connection");
	ok_int(k.cl->sc->served, 2, "both answered on one client connection");
	cli_close(&k);
	pool_sweep();
}

/* Timers: front_deadline() says when, front_timeout() acts (the loop
 * calls it once the time has come). */
static void
test_timers(const struct conf *c)
{
	struct cli k;
	char got[1024];

	/* A head that does not arrive within `header` (10 s): 408. */
	cli_open(&k, c);
	ok(front_deadline(k.cl) == now + 10000, "a new connection has 10 s "
	    "for its head");
	t_send(k.fd, "GET /healthz HTTP/1.1\r\nHo");
	pass(&k, 5);
	ok(k.len == 0, "half a head: no answer yet");
	front_timeout(k.cl, now + 9999);
	pass(&k, 0);
	ok(k.len == 0 && !k.eof, "not before the deadline");
	now += 10000;
	front_timeout(k.cl, now);
	await(&k);
	ok_str(plain(k.buf, got, sizeof(got)), "HTTP/1.1 408 Request Timeout\r\n"
	    "Content-Type: application/json\r\nContent-Length: 120\r\n"
	    "x-request-id: ID\r\nConnection: close\r\n\r\n{\"error\":"
	    "{\"message\":\"the request head did not arrive in time\","
	    "\"type\":\"invalid_request_error\",\"code\":"
	    "\"request_timeout\"}}\n", "408 request_timeout");
	ok(k.eof, "and closed");
	cli_close(&k);

	/* An idle keep-alive connection is closed silently after
	 * `keepalive` (60 s). */
	cli_open(&k, c);
	request(&k, get("/healthz", ""));
	pass(&k, 0);
	ok(t_status(k.buf) == 200 && front_deadline(k.cl) == now + 60000,
	    "after an answer: 60 s of keep-alive");
	consume(&k);
	now += 60000;
	front_timeout(k.cl, now);
	pass(&k, 0);
	ok(k.eof && k.len == 0, "closed without a word");
	cli_close(&k);
}

/* Expect: 100-continue: the interim answer once the head is accepted,
 * none for a head that is refused. */
static void
test_continue(const struct conf *c)
{
	struct cli k;
	const char *body = "{\"amount\":\"1.00\"}";
	char head[512];

	cli_open(&k, c);
	snprintf(head, sizeof(head), "POST /admin/wallets/beta/credit "
	    "HTTP/1.1\r\nHost: relay\r\n" ADMIN "Expect: 100-continue\r\n"
	    "Content-Length: %zu\r\n\r\n", strlen(body));
	request(&k, head);
	ok_str(k.buf, "HTTP/1.1 100 Continue\r\n\r\n", "100 Continue");
	k.len = 0;
	t_send(k.fd, body);
	await(&k);
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"balance\":\"1.00\""),
	    "then the answer: %s", k.buf);
	cli_close(&k);

	cli_open(&k, c);
	snprintf(head, sizeof(head), "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: relay\r\nExpect: 100-continue\r\nContent-Length: 10\r\n"
	    "\r\n");
	request(&k, head);
	ok(t_status(k.buf) == 401 && strstr(k.buf, "100 Continue") == NULL,
	    "no key: 401 without 100 Continue");
	cli_close(&k);
}

/* Open mode: no wallet in the config, no key needed for the wallet
 * endpoint, the wallet is "default", and a key sent is ignored. */
static void
test_open_mode(void)
{
	struct conf *open = t_conf("ledger %s\nprovider p base=http://"
	    "127.0.0.1:%d/v1\nmodel gpt-5.2 text 1.75 14.00 p/up-model\n",
	    ledger_path, prov.port);
	struct cli k;

	use_conf(open);
	cli_open(&k, open);
	request(&k, "GET /v1/wallet HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n");
	ok(t_status(k.buf) == 200 && strstr(k.buf, "{\"wallet\":\"default\","
	    "\"currency\":\"CNY\","), "the wallet is default: %s", k.buf);
	consume(&k);
	request(&k, "GET /v1/wallet HTTP/1.1\r\nHost: localhost:8080\r\n"
	    "Authorization: Bearer k-whatever\r\n\r\n");
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"wallet\":\"default\""),
	    "a key sent is ignored");
	cli_close(&k);

	/* Only this machine, and not a browser page of another site, may
	 * use open mode (SPEC §10): DNS rebinding (a foreign Host) and
	 * cross-site requests (a foreign Origin) are refused. */
	{
		static const char *const refused[] = {
			"Host: rebind.attacker.example\r\n",
			"Host: 127.0.0.1.attacker.example\r\n",
			"Host: 10.0.0.1:8080\r\n",
			"Host: [::2]:8080\r\n",
			"Host: 127.0.0.1:8080\r\nOrigin: https://evil.example\r\n",
			"Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:3000\r\n",
			"Host: 127.0.0.1:8080\r\nOrigin: null\r\n",
			"Host: localhost:8080\r\nSec-Fetch-Site: cross-site\r\n",
		};
		static const char *const served[] = {
			"Host: 127.0.0.1:8080\r\n", "Host: 127.9.8.7\r\n",
			"Host: LOCALHOST\r\n", "Host: api.localhost:8080\r\n",
			"Host: localhost.:8080\r\n", "Host: [::1]:8080\r\n",
			"Host: 127.0.0.1:8080\r\nOrigin: http://127.0.0.1:8080\r\n",
			"Host: localhost\r\nSec-Fetch-Site: same-origin\r\n",
		};
		char req[512];
		size_t i;

		t_provider_reset(&prov);
		for (i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
			cli_open(&k, open);
			snprintf(req, sizeof(req), "POST /v1/chat/completions "
			    "HTTP/1.1\r\n%sContent-Type: text/plain\r\n"
			    "Content-Length: 2\r\n\r\n{}", refused[i]);
			request(&k, req);
			ok(t_status(k.buf) == 403 && strstr(k.buf,
			    "\"code\":\"forbidden\"") != NULL && prov.nreqs == 0,
			    "open mode refuses %.60s", refused[i]);
			cli_close(&k);
		}
		for (i = 0; i < sizeof(served) / sizeof(served[0]); i++) {
			cli_open(&k, open);
			snprintf(req, sizeof(req), "GET /healthz HTTP/1.1\r\n"
			    "%s\r\n", served[i]);
			request(&k, req);
			ok_int(t_status(k.buf), 200, served[i]);
			cli_close(&k);
		}
	}
	use_conf(NULL);
	/* (Relaying needs the config to be a generation: the loop test
	 * does that part.) */
	conf_free(open);
}

static int
ledger_count(const char *needle)
{
	char *text = t_slurp(ledger_path, NULL);
	int n = t_count(text, needle);

	free(text);
	return n;
}

/* Video tasks: the creation is relayed and recorded, reads go to the
 * task's own provider and credential, the success is charged once. */
static void
test_tasks(const struct conf *c)
{
	struct cli k;
	char want[1024];
	int charges = ledger_count("\"type\":\"charge\""), i;

	t_provider_reset(&prov);
	t_provider_json(&prov, 200, NULL, "{\"id\":\"cgt-9\",\"status\":"
	    "\"queued\"}");
	cli_open(&k, c);
	request(&k, post("/v1/contents/generations/tasks", ACME,
	    "{\"model\":\"vid\",\"content\":[]}"));
	ok_int(t_status(k.buf), 200, "task created");
	ok(prov.nreqs == 1 && strncmp(prov.req[0], "POST /v1/contents/"
	    "generations/tasks HTTP/1.1\r\n", 45) == 0 &&
	    strstr(prov.req[0], "{\"model\":\"vid-up\",") != NULL,
	    "relayed like any call");
	ok_int(ledger_count("\"type\":\"task\",\"id\":\"cgt-9\",\"wallet\":"
	    "\"acme\",\"model\":\"vid\",\"route\":\"p/vid-up\",\"cred\":"
	    "\"p#1\""), 1, "the task is recorded with its credential");
	ok_int(ledger_count("\"type\":\"charge\""), charges,
	    "creating is not charged");
	ok_int(billing_held("acme"), 0, "no hold left");

	/* Another wallet's task is unknown (SPEC §9: never passed on). */
	consume(&k);
	request(&k, get("/v1/contents/generations/tasks/cgt-9", BETA));
	ok(t_status(k.buf) == 404 && strstr(k.buf, "\"message\":\"unknown "
	    "object\""), "404 for another wallet");
	ok_int(prov.nreqs, 1, "it did not reach the provider");
	/* A path below the task goes where the task lives, too. */
	t_provider_json(&prov, 404, NULL, "{\"error\":\"no such thing\"}");
	consume(&k);
	request(&k, get("/v1/contents/generations/tasks/cgt-9/x", ACME));
	ok(t_status(k.buf) == 404 && strstr(k.buf, "no such thing"),
	    "a path below a task: the provider's answer");
	ok(prov.nreqs == 2 && strstr(prov.req[1], "GET /v1/contents/"
	    "generations/tasks/cgt-9/x HTTP/1.1\r\n") != NULL,
	    "sent on as the client wrote it");

	/* Reads: running, then succeeded (charged), then again (not). */
	t_provider_json(&prov, 200, NULL, "{\"id\":\"cgt-9\",\"status\":"
	    "\"running\"}");
	t_provider_json(&prov, 200, NULL, "{\"id\":\"cgt-9\",\"status\":"
	    "\"succeeded\",\"usage\":{\"completion_tokens\":100}}");
	t_provider_json(&prov, 200, NULL, "{\"id\":\"cgt-9\",\"status\":"
	    "\"succeeded\",\"usage\":{\"completion_tokens\":100}}");
	for (i = 0; i < 3; i++) {
		consume(&k);
		request(&k, get("/v1/contents/generations/tasks/cgt-9", ACME));
		ok_int(t_status(k.buf), 200, "task read");
		ok_int(ledger_count("\"type\":\"charge\""), charges +
		    (i > 0), "charged once, when first seen succeeded");
	}
	snprintf(want, sizeof(want), "GET /v1/contents/generations/tasks/cgt-9 "
	    "HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer sk-up"
	    "\r\n", prov.port);
	ok(prov.nreqs == 5 && strncmp(prov.req[4], want, strlen(want)) == 0,
	    "the read goes to the task's credential: %s",
	    prov.nreqs == 5 ? prov.req[4] : "");
	ok_int(ledger_count("\"task\":\"cgt-9\",\"wallet\":\"acme\","
	    "\"model\":\"vid\",\"route\":\"p/vid-up\",\"cred\":\"p#1\","
	    "\"status\":200,\"in\":0,\"out\":100,\"usd_nano\":640000,"), 1,
	    "the charge line");
	cli_close(&k);

	/* The same through an auth=none provider. */
	t_provider_reset(&prov);
	t_provider_json(&prov, 200, NULL, "{\"id\":\"cgt-loc\"}");
	t_provider_json(&prov, 200, NULL, "{\"id\":\"cgt-loc\",\"status\":"
	    "\"succeeded\",\"usage\":{\"completion_tokens\":10}}");
	cli_open(&k, c);
	request(&k, post("/v1/contents/generations/tasks", ACME,
	    "{\"model\":\"vloc\"}"));
	ok_int(t_status(k.buf), 200, "created on the auth=none provider");
	ok_int(ledger_count("\"id\":\"cgt-loc\",\"wallet\":\"acme\","
	    "\"model\":\"vloc\",\"route\":\"loc/vl\",\"prev\""), 1,
	    "recorded without a credential (auth=none)");
	consume(&k);
	request(&k, get("/v1/contents/generations/tasks/cgt-loc", ACME));
	/* It used to be recorded as "(none)", looked up among the
	 * provider's credentials and answered 503. */
	ok(t_status(k.buf) == 200, "an auth=none task can be read (got "
	    "%d: %s)", t_status(k.buf), t_body(k.buf));
	cli_close(&k);
}

int
main(void)
{
	struct conf *c, *noadmin;

	signal(SIGPIPE, SIG_IGN);
	t_tmpdir("test_front");
	t_log_capture();
	setenv("T_FRONT_K", "sk-up", 1);
	ledger_path = t_path("ledger.jsonl");
	t_provider_open(&prov);

	c = t_conf("ledger %s sync=always\n"
	    "admin_key sha256:%s\n"
	    "currency CNY rate=7.2000\n"
	    "holds max_tokens=1000\n"
	    "provider p base=http://127.0.0.1:%d/v1 auth=bearer\n"
	    "credential p env:T_FRONT_K\n"
	    "model gpt-5.2 text 1.75 14.00 p/up-model\n"
	    "model gpt-4.1-mini text 0.150 0.600 p/mini\n"
	    "model vid video - 6.40 p/vid-up\n"
	    "provider loc base=http://127.0.0.1:%d/v1 auth=none\n"
	    "model vloc video - 1.00 loc/vl\n"
	    "wallet acme key=sha256:%s\n"
	    "wallet beta key=sha256:%s\n",
	    ledger_path, key_hash("adm-secret"), prov.port, prov.port,
	    key_hash("k-acme"), key_hash("k-beta"));
	noadmin = t_conf("ledger %s\n"
	    "provider p base=http://127.0.0.1:%d/v1 auth=bearer\n"
	    "model gpt-5.2 text 1.75 14.00 p/up-model\n"
	    "wallet acme key=sha256:%s\n", ledger_path, prov.port,
	    key_hash("k-acme"));
	ok_int(billing_open(c, 0, err, sizeof(err)), 0, "billing_open");
	ok_int(gen_start(c), 0, "gen_start");
	ok_int(pool_init(err, sizeof(err)), 0, "pool_init");

	test_paths(c, noadmin);
	test_local(c);
	test_key_cache(c);
	test_bodies(c);
	test_pipeline(c);
	test_relay(c);
	test_tasks(c);
	test_timers(c);
	test_continue(c);
	test_open_mode();

	pool_free();
	billing_close();
	gen_free_all();
	conf_free(noadmin);
	t_provider_close(&prov);
	t_log_restore();
	if (t_fail) {
		t_log_show(0);
	}
	t_rmdir();
	return t_bugs_done("front");
}
