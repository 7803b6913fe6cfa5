/* front: admission and dispatch of a client's requests (see front.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "admit.h"
#include "api.h"
#include "conf.h"
#include "exchange.h"
#include "fleet.h"
#include "front.h"
#include "gen.h"
#include "local.h"
#include "metrics.h"
#include "path.h"
#include "rewrite.h"
#include "server.h"
#include "tasks.h"
#include "upload.h"
#include "util.h"

/* Paths are compared with literals, lengths first. */
#define path_starts(v, lit) \
	((v).n >= sizeof(lit) - 1 && memcmp((v).p, (lit), sizeof(lit) - 1) == 0)
#define path_ends(v, lit) ((v).n >= sizeof(lit) - 1 && \
	memcmp((v).p + (v).n - (sizeof(lit) - 1), (lit), sizeof(lit) - 1) == 0)

static void store_answer(void *owner, const struct store_call *c,
    uint64_t now_ms);

struct client *
front_new(struct server_conn *sc)
{
	struct client *cl = calloc(1, sizeof(*cl));

	if (cl == NULL) {
		return NULL;
	}
	cl->tag.kind = POOL_OWNER_CLIENT;
	cl->sc = sc;
	cl->wallet = -1;
	cl->lw.done = store_answer;
	cl->lw.owner = cl;
	return cl;
}

/* The exchange is over (or the connection is): settle it, count it, and
 * keep it for the next request when the connection goes on. */
static void
end_exchange(struct client *cl, uint64_t now_ms)
{
	struct exchange *ex = cl->ex;

	if (ex == NULL) {
		return;
	}
	exchange_end(ex);
	access_request(&cl->sc->req, ex, cl->conf, &cl->wallet,
	    now_ms != 0 ? now_ms : ex->seen_ms);
	cl->ex = NULL;
	if (cl->spare == NULL && cl->sc->state != SERVER_CLOSED) {
		exchange_recycle(ex);
		cl->spare = ex;
	} else {
		exchange_free(ex);
	}
}

/* After any call into the exchange: take it back once it is over, or
 * when its client has gone (unless it drains: see exchange_detach()). */
static void
reap(struct client *cl, uint64_t now_ms)
{
	if (cl->ex == NULL && cl->lw.fc != NULL) {
		return;		/* it waits for the store */
	}
	if (cl->ex == NULL) {	/* an answer of the relay's own: count it */
		access_request(&cl->sc->req, NULL, cl->conf, &cl->wallet,
		    now_ms);
		return;
	}
	if (cl->ex->over || (cl->sc->state == SERVER_CLOSED &&
	    !cl->ex->draining && !exchange_detach(cl->ex, now_ms))) {
		end_exchange(cl, now_ms);
	}
}

int
front_draining(const struct client *cl)
{
	return cl->ex != NULL && cl->ex->draining && !cl->ex->over;
}

void
front_free(struct client *cl)
{
	if (cl == NULL) {
		return;
	}
	end_exchange(cl, 0);
	fleet_forget(cl->lw.fc, 0);
	billing_unwait(&cl->wait);
	exchange_free(cl->spare);
	if (cl->conf != NULL) {
		gen_release(cl->conf);
	}
	util_wipe(cl->key, sizeof(cl->key));
	server_free(cl->sc);
	free(cl->upload);
	free(cl);
}

static const char *
wallet_name(const struct client *cl)
{
	return cl->wallet >= 0 ? cl->conf->wallets[cl->wallet].name :
	    "default";
}

/* The caller's wallet from its key (SPEC §3: Bearer or x-api-key).
 * Returns 0, or -1 after answering 401. Open mode needs no key. */
static int
check_key(struct client *cl, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;
	const struct http_request *h = &sc->req.head;
	struct view key = { NULL, 0 };
	unsigned char hash[32];

	if (conf_open_mode(cl->conf)) {
		return 0;
	}
	if (!admit_bearer(h, &key) && h->x_api_key.n > 0) {
		key = h->x_api_key;
	}
	if (key.n == 0) {
		server_error(sc, 401, "invalid_api_key", "missing API key: send "
		    "Authorization: Bearer <key> or x-api-key", now_ms);
		return -1;
	}
	/* A keep-alive client sends the same key every time: remember the
	 * last accepted one on this connection (compared in constant time)
	 * instead of hashing it again. */
	if (cl->key_len != 0 && key.n == cl->key_len &&
	    util_ct_equal(key.p, cl->key, key.n)) {
		cl->wallet = cl->key_wallet;
		return 0;
	}
	util_sha256(key.p, key.n, hash);
	cl->wallet = conf_find_wallet(cl->conf, hash);
	if (cl->wallet < 0) {
		server_error(sc, 401, "invalid_api_key", "unknown API key",
		    now_ms);
		return -1;
	}
	if (key.n <= sizeof(cl->key)) {
		memcpy(cl->key, key.p, key.n);
		cl->key_len = key.n;
		cl->key_wallet = cl->wallet;
	}
	return 0;
}

/* Each request is served on the config in force when its head arrived
 * (SPEC §10): after a reload, also on a keep-alive connection opened
 * before. The request in hand holds its generation; the key cache is
 * for the config it was checked under. */
static void
use_current_config(struct client *cl)
{
	const struct conf *now = gen_current()->conf;

	if (cl->conf == now) {
		return;
	}
	if (cl->conf != NULL) {
		gen_release(cl->conf);
	}
	gen_hold(now);
	cl->conf = now;
	util_wipe(cl->key, sizeof(cl->key));
	cl->key_len = 0;
}

/* 405 with the methods this path accepts (SPEC §9). */
static void
not_allowed(struct server_conn *sc, const char *allow, uint64_t now_ms)
{
	char msg[64], extra[64];

	snprintf(msg, sizeof(msg), "use %s for this path", allow);
	snprintf(extra, sizeof(extra), "Allow: %s\r\n", allow);
	server_error_with(sc, 405, "method_not_allowed", msg, extra, now_ms);
}

enum body_kind { BODY_NONE, BODY_JSON, BODY_MULTIPART, BODY_OTHER };

/* What the request body is, by its Content-Type (SPEC §9): none, JSON
 * (application/json, any +json type, no type at all, or curl -d's
 * default application/x-www-form-urlencoded, which no provider API uses:
 * read as JSON, as other relays do), multipart form data, or something
 * the relay does not relay. */
static enum body_kind
body_kind(const struct http_request *h)
{
	struct view ct = rewrite_find_header(h->headers, h->nheaders,
	    "content-type");
	size_t n;

	if (!h->chunked && h->content_length == 0) {
		return BODY_NONE;
	}
	for (n = 0; n < ct.n && ct.p[n] != ';' && ct.p[n] != ' ' &&
	    ct.p[n] != '\t'; n++) {
	}
	ct.n = n;
	if (ct.n == 0 || VIEW_IEQ(ct, "application/json") ||
	    VIEW_IEQ(ct, "application/x-www-form-urlencoded") ||
	    (ct.n > 5 && util_mem_ieq(ct.p + ct.n - 5, "+json", 5) &&
	    util_mem_ieq(ct.p, "application/", 12))) {
		return BODY_JSON;
	}
	return VIEW_IEQ(ct, "multipart/form-data") ? BODY_MULTIPART :
	    BODY_OTHER;
}

static void begin_upload(struct client *cl, int post, uint64_t now_ms);

/* Decide on the head alone: path, method, key, body type (SPEC §7: 100
 * Continue only once these are accepted). */
static void
on_head(struct client *cl, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;
	const struct http_request *h = &sc->req.head;
	struct view path = sc->req.path;
	int get = util_view_eq(h->method, "GET");
	int post = util_view_eq(h->method, "POST");
	int del = util_view_eq(h->method, "DELETE");
	const char *why;
	int ok;

	cl->wallet = -1;
	if (cl->upload != NULL) {
		cl->upload->on = 0;
	}
	use_current_config(cl);
	if ((why = path_check(path, sc->req.query)) != NULL) {
		server_error(sc, 400, "bad_request", why, now_ms);
		return;
	}
	if (conf_open_mode(cl->conf) && (why = admit_open_mode(h)) != NULL) {
		server_error(sc, 403, "forbidden", why, now_ms);
		return;
	}
	if (local_model_alias(path).n > 0 && del) {
		/* Deleting a fine-tuned model is the provider's business. */
		ok = check_key(cl, now_ms) == 0;
	} else if (local_is_endpoint(path)) {
		if (!get) {
			not_allowed(sc, local_model_alias(path).n > 0 ?
			    "GET, DELETE" : "GET", now_ms);
			return;
		}
		if (h->chunked || h->content_length > 0) {
			server_error(sc, 400, "bad_request",
			    "this endpoint takes no request body", now_ms);
			return;
		}
		if (cl->conf->metrics_admin &&
		    util_view_eq(path, "/metrics")) {
			ok = admit_admin(sc, cl->conf, now_ms) == 0;
			if (ok) {
				server_accept_head(sc, now_ms);
			}
			return;
		}
		ok = !local_needs_key(path) || check_key(cl, now_ms) == 0;
	} else if (path_starts(path, "/admin/")) {
		if (local_credit_target(path).n == 0) {
			server_error(sc, 404, "not_found", "unknown path",
			    now_ms);
			return;
		}
		if (!post) {
			not_allowed(sc, "POST", now_ms);
			return;
		}
		ok = admit_admin(sc, cl->conf, now_ms) == 0;
	} else if (!path_starts(path, "/v1/")) {
		server_error(sc, 404, "not_found", "unknown path", now_ms);
		return;
	} else if (!post && !get && !del) {
		not_allowed(sc, "GET, POST, DELETE", now_ms);
		return;
	} else {
		ok = check_key(cl, now_ms) == 0;
		if (ok && body_kind(h) == BODY_OTHER) {
			server_error(sc, 415, "unsupported_media_type", "the "
			    "relay takes JSON (Content-Type: application/json) "
			    "or multipart/form-data request bodies", now_ms);
			return;
		}
		if (ok && body_kind(h) == BODY_MULTIPART) {
			begin_upload(cl, post, now_ms);
			return;
		}
	}
	if (ok) {
		server_accept_head(sc, now_ms);
	}
}

/* An exchange for the client's request: the one its last request left
 * (buffers and all), or a new one. */
static struct exchange *
take_exchange(struct client *cl, const struct conf_model *m, uint64_t now_ms)
{
	struct exchange *ex = cl->spare;

	if (ex != NULL) {
		cl->spare = NULL;
	} else if ((ex = exchange_new()) == NULL) {
		server_error(cl->sc, 503, "server_busy", "out of memory",
		    now_ms);
		return NULL;
	}
	ex->sc = cl->sc;
	ex->owner = cl;
	ex->wait = &cl->wait;
	ex->gen = gen_of(cl->conf);
	ex->model = m;
	ex->wallet = wallet_name(cl);
	ex->upload = cl->upload != NULL && cl->upload->on ? cl->upload : NULL;
	cl->ex = ex;
	return ex;
}

/* A call on recorded object id, located as where says (tasks.h): to the
 * provider and credential that made it, never charged. Returns 1 when
 * answered or started, 0 when the object is unknown. */
static int
start_located(struct client *cl, enum tasks_where where,
    const struct conf_model *m, size_t cred, const char *id,
    const char *err, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;
	struct exchange *ex;

	switch (where) {
	case TASKS_UNKNOWN:
		return 0;
	case TASKS_FOREIGN:
		server_error(sc, 404, "not_found", "unknown object", now_ms);
		return 1;
	case TASKS_GONE:
		server_error(sc, 503, "upstream_unavailable", err, now_ms);
		return 1;
	case TASKS_FOUND:
		break;
	}
	if ((ex = take_exchange(cl, m, now_ms)) == NULL) {
		return 1;
	}
	ex->pinned = 1;
	ex->no_charge = 1;
	ex->route = 0;
	ex->cred = cred;
	snprintf(ex->task_id, sizeof(ex->task_id), "%s", id);
	exchange_start(ex, now_ms, 1);
	return 1;
}

/* A call whose path names a recorded object (SPEC §9): its answer may
 * settle a task or a background response. Returns 1 when answered or
 * started, 0 when the path names no recorded object. */
static int
start_on_object(struct client *cl, uint64_t now_ms)
{
	const struct conf_model *m = NULL;
	char id[TASKS_ID_MAX + 1], err[300];
	size_t cred = SIZE_MAX;
	enum tasks_where w = tasks_locate(cl->conf, cl->sc->req.path,
	    wallet_name(cl), &m, &cred, id, err, sizeof(err));

	return start_located(cl, w, m, cred, id, err, now_ms);
}

/* Counting a Responses input without a model: the provider counts for
 * the earlier response's model, so it goes where previous names (free,
 * like any token count). Returns 0 when previous is not recorded. */
static int
start_on_previous(struct client *cl, struct view previous, uint64_t now_ms)
{
	const struct conf_model *m = NULL;
	char err[300];
	size_t cred = SIZE_MAX;
	enum tasks_where w = tasks_locate_id(cl->conf, previous,
	    wallet_name(cl), &m, &cred, err, sizeof(err));

	return start_located(cl, w, m, cred, "", err, now_ms);
}

/* A call without a model and on no recorded object: to the passthrough
 * provider (SPEC §9), any of its credentials, never charged. An object
 * it creates (a 2xx answer with an id) is recorded for later calls. */
static void
start_passthrough(struct client *cl, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;
	const struct conf *c = cl->conf;
	struct exchange *ex;

	if (c->passthrough == SIZE_MAX) {
		server_error(sc, 404, "not_found", "this call names no model "
		    "and no object the relay recorded, and no passthrough "
		    "provider is configured (passthrough PROVIDER)", now_ms);
		return;
	}
	if ((ex = take_exchange(cl, &c->direct[c->passthrough], now_ms)) ==
	    NULL) {
		return;
	}
	ex->no_charge = 1;
	ex->record = util_view_eq(sc->req.head.method, "POST");
	ex->record_kind = LEDGER_OBJ_PLAIN;
	exchange_start(ex, now_ms, 0);
}

/* Paths (after /v1) whose calls cost money at the provider: without a
 * model they are refused, never passed through uncharged. */
static const char *const billable[] = {
	"/chat/completions", "/completions", "/embeddings", "/responses",
	"/responses/input_tokens", "/responses/compact", "/messages",
	"/messages/count_tokens",
	"/images/generations", "/images/edits", "/images/variations",
	"/audio/speech", "/audio/transcriptions", "/audio/translations",
	"/contents/generations/tasks", "/videos",
	"/rerank", "/embeddings/multimodal"
};

/* Paths that create work the provider bills later, which the relay
 * cannot meter: refused. */
static const char *const unmetered[] = { "/batches", "/fine_tuning/jobs",
	"/messages/batches" };

static int
path_in(struct view path, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (path.n == 3 + strlen(list[i]) &&
		    memcmp(path.p + 3, list[i], path.n - 3) == 0) {
			return 1;
		}
	}
	return 0;
}

#define BILLABLE(path) \
	path_in((path), billable, sizeof(billable) / sizeof(billable[0]))

/* A multipart/form-data body (SPEC §9): streamed, not read whole. A POST
 * on a path that costs money is routed by its model field, which the
 * relay then holds the body's start for; any other call by its path
 * (a recorded object, else passthrough) at once. */
static void
begin_upload(struct client *cl, int post, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;
	enum multipart_err e;
	char msg[200];

	if (cl->upload == NULL &&
	    (cl->upload = malloc(sizeof(*cl->upload))) == NULL) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return;
	}
	e = upload_begin(cl->upload, &sc->req.head, post &&
	    BILLABLE(sc->req.path));
	if (e != MULTIPART_OK) {
		snprintf(msg, sizeof(msg), "multipart/form-data body refused: "
		    "%s", multipart_strerror(e));
		server_error(sc, 400, "bad_request", msg, now_ms);
		return;
	}
	server_accept_head_stream(sc, now_ms);
}


/* find_model(): the body names no model. */
static const struct conf_model pass_on;
#define PASS_ON (&pass_on)

/* The catalog's model alias[0..len) (NUL-terminated), or NULL after
 * answering 404 with the aliases close to it. */
static const struct conf_model *
lookup_model(struct server_conn *sc, const struct conf *c, const char *alias,
    size_t len, uint64_t now_ms)
{
	const struct conf_model *m = conf_find_model(c, alias, len);
	char close_to[200], msg[512], shown[64];

	if (m == NULL) {
		api_close_aliases(c, alias, close_to, sizeof(close_to));
		snprintf(shown, sizeof(shown), "%.60s", alias);
		snprintf(msg, sizeof(msg), "unknown model '%s'%s%s%s", shown,
		    close_to[0] ? " (did you mean " : "", close_to,
		    close_to[0] ? "?)" : "; GET /v1/models lists them");
		server_error(sc, 404, "model_not_found", msg, now_ms);
	}
	return m;
}

/* The model the body asks for, PASS_ON when it names none, or NULL after
 * answering 400/404. */
static const struct conf_model *
find_model(struct server_conn *sc, const struct conf *c,
    struct json_request *jr, uint64_t now_ms)
{
	const char *body = sc->req.mem + sc->req.head_len;
	char alias[256];
	long alias_len;
	int r = json_scan_request(body, sc->req.body_len, jr);

	if (r == JSON_INVALID || r == JSON_NOT_OBJECT) {
		server_error(sc, 400, "invalid_json", r == JSON_INVALID ?
		    "the request body is not valid JSON" :
		    "the request body must be a JSON object", now_ms);
		return NULL;
	}
	if (r == JSON_NOMEM) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return NULL;
	}
	if (jr->duplicate) {
		/* {"model":"dear","model":"cheap"}: the relay bills the last
		 * while a provider may run the first (SPEC §8). */
		server_error(sc, 400, "invalid_json", "a top-level member name "
		    "appears twice in the request body (I-JSON, RFC 7493)",
		    now_ms);
		return NULL;
	}
	if (r == JSON_NO_MODEL) {
		return PASS_ON;	/* the caller decides */
	}
	alias_len = json_unescape(jr->model, alias, sizeof(alias));
	if (alias_len < 0) {
		server_error(sc, 404, "model_not_found", "unknown model",
		    now_ms);
		return NULL;
	}
	return lookup_model(sc, c, alias, (size_t)alias_len, now_ms);
}


/* What a create call leaves to record (SPEC §9): a video task; a
 * background response (charged when it completes, not now); a stored
 * response or chat completion (for affinity only). */
static void
plan_record(struct exchange *ex, struct view path)
{
	const struct json_request *jr = &ex->jr;

	if (util_view_eq(path, TASKS_PATH)) {
		ex->record = 1;
		ex->record_kind = LEDGER_OBJ_TASK;
		ex->no_charge = 1;	/* charged when the task succeeds */
	} else if (util_view_eq(path, "/v1/responses") && jr->background &&
	    !jr->stream) {
		ex->record = 1;
		ex->record_kind = LEDGER_OBJ_RESPONSE;
		ex->no_charge = 1;	/* charged when it completes */
	} else if ((util_view_eq(path, "/v1/responses") && jr->store != 0) ||
	    (util_view_eq(path, "/v1/chat/completions") && jr->store == 1)) {
		ex->record = 1;
		ex->record_kind = LEDGER_OBJ_PLAIN;
	}
	/* A streamed background response runs on at the provider when its
	 * client leaves: its usage is read to the end, not estimated. */
	ex->must_drain = util_view_eq(path, "/v1/responses") &&
	    jr->background && jr->stream;
}

/* A Responses call that continues a recorded response goes to the
 * credential that holds it (a conversation lives in one account). */
static void
pin_previous(struct client *cl, struct exchange *ex)
{
	const struct conf_model *m = ex->model;
	size_t i, cred;

	if (ex->jr.previous.n == 0) {
		return;
	}
	for (i = 0; i < m->nroutes; i++) {
		cred = tasks_cred_of(cl->conf, ex->jr.previous,
		    wallet_name(cl), m->routes[i].provider);
		if (cred != SIZE_MAX) {
			ex->pinned = 1;
			ex->route = i;
			ex->cred = cred;
			return;
		}
	}
}

static void start_model(struct client *cl, const struct conf_model *m,
    const struct json_request *jr, uint64_t now_ms);

static void
start_relay(struct client *cl, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;
	const struct conf *c = cl->conf;
	struct view path = sc->req.path;
	const struct conf_model *m;
	struct json_request jr;

	if (start_on_object(cl, now_ms)) {
		return;
	}
	if (!util_view_eq(sc->req.head.method, "POST")) {
		start_passthrough(cl, now_ms);
		return;
	}
	if (path_in(path, unmetered, sizeof(unmetered) /
	    sizeof(unmetered[0]))) {
		server_error(sc, 403, "forbidden", "this call creates work the "
		    "provider bills later, which the relay cannot meter: "
		    "call the provider directly", now_ms);
		return;
	}
	if (sc->req.body_len == 0) {
		if (BILLABLE(path)) {
			server_error(sc, 400, "missing_model", "the request "
			    "has no body, so no \"model\"", now_ms);
		} else {
			start_passthrough(cl, now_ms);
		}
		return;
	}
	if ((m = find_model(sc, c, &jr, now_ms)) == NULL) {
		return;
	}
	if (m == PASS_ON) {
		if (util_view_eq(path, "/v1/responses/input_tokens") &&
		    jr.previous.n > 0 && start_on_previous(cl, jr.previous,
		    now_ms)) {
			return;
		}
		if (BILLABLE(path)) {
			server_error(sc, 400, "missing_model",
			    "the request body has no \"model\" string",
			    now_ms);
		} else {
			start_passthrough(cl, now_ms);
		}
		return;
	}
	if (tasks_foreign(jr.previous, wallet_name(cl))) {
		/* Continuing another wallet's response would read it. */
		server_error(sc, 404, "not_found", "unknown previous_response_id",
		    now_ms);
		return;
	}
	start_model(cl, m, &jr, now_ms);
}

/* Relay a call by its model m: jr holds the JSON body's fields (a form's
 * have none). */
static void
start_model(struct client *cl, const struct conf_model *m,
    const struct json_request *jr, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;
	const struct conf *c = cl->conf;
	struct view path = sc->req.path;
	struct exchange *ex;
	char msg[400];
	int hold;

	if ((ex = take_exchange(cl, m, now_ms)) == NULL) {
		return;
	}
	if (jr != NULL) {
		ex->jr = *jr;
	}
	/* Token counting costs nothing at the provider (SPEC §8): no hold,
	 * no charge. */
	ex->no_charge = path_ends(path, "/messages/count_tokens") ||
	    path_ends(path, "/responses/input_tokens");
	/* A wallet's limits count every metered call, also those charged
	 * later (tasks, background responses), but not token counting. */
	ex->limits = cl->wallet >= 0 && !ex->no_charge ?
	    &c->wallets[cl->wallet] : NULL;
	plan_record(ex, path);
	pin_previous(cl, ex);
	if (fleet_on() && ex->limits != NULL) {
		/* The fleet's wallets are in the shared store: ask it (token
		 * counting, free, does not). */
		hold = exchange_fleet_hold(ex,
		    c->wallets[cl->wallet].overdraft_nano, store_answer, cl,
		    msg, sizeof(msg), now_ms);
		if (hold == BILLING_PENDING) {
			server_busy(sc);
			return;
		}
		exchange_refuse(ex, hold, msg, now_ms);
		end_exchange(cl, now_ms);
		return;
	}
	hold = exchange_hold(ex, cl->wallet >= 0 && !fleet_on(), cl->wallet >= 0 ?
	    c->wallets[cl->wallet].overdraft_nano : 0, msg, sizeof(msg));
	if (hold != BILLING_HELD) {
		exchange_refuse(ex, hold, msg, now_ms);
		end_exchange(cl, now_ms);
		return;
	}
	exchange_start(ex, now_ms, ex->pinned);
}

/* A streamed form body (upload.h) has news: hold its start until it can
 * be routed, then route it. Returns 0 while it waits for bytes. */
static int
on_upload(struct client *cl, uint64_t now_ms)
{
	struct upload *u = cl->upload;
	struct server_conn *sc = cl->sc;
	const struct conf_model *m;

	switch (upload_hold(u, sc)) {
	case UPLOAD_WAIT:
		return 0;
	case UPLOAD_BAD:
		server_error(sc, u->status, upload_code(u), u->why, now_ms);
		return 1;
	default:
		break;
	}
	if (!u->by_model) {
		start_relay(cl, now_ms);	/* by object or passthrough */
	} else if (!u->mp.model_done) {
		server_error(sc, 400, "missing_model", "the multipart/form-data "
		    "body has no \"model\" field", now_ms);
	} else if ((m = lookup_model(sc, cl->conf, u->mp.model,
	    u->mp.model_len, now_ms)) != NULL) {
		start_model(cl, m, NULL, now_ms);
	}
	return 1;
}

static void
on_body(struct client *cl, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;

	if (local_is_endpoint(sc->req.path) &&
	    !util_view_eq(sc->req.head.method, "DELETE")) {
		/* DELETE /v1/models/<id> is the provider's (on_head). */
		local_serve(sc, cl->conf, wallet_name(cl), &cl->lw, now_ms);
	} else if (path_starts(sc->req.path, "/admin/")) {
		local_credit(sc, cl->conf, &cl->lw, now_ms);
	} else {
		start_relay(cl, now_ms);
	}
}

void
front_step(struct client *cl, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;

	for (;;) {
		enum server_state before = sc->state;

		switch (sc->state) {
		case SERVER_HEAD_READY:
			on_head(cl, now_ms);
			break;
		case SERVER_BODY_READY:
			on_body(cl, now_ms);
			break;
		case SERVER_READ_BODY:
			if (!sc->body_stream || !on_upload(cl, now_ms)) {
				return;
			}
			break;
		case SERVER_BUSY:
			if (cl->ex != NULL) {
				exchange_pump(cl->ex, now_ms);
			}
			if (sc->state == SERVER_BUSY) {
				return;
			}
			break;
		case SERVER_DRAIN:
			break;
		case SERVER_CLOSED:
			reap(cl, now_ms);
			return;
		default:
			return;
		}
		reap(cl, now_ms);
		if (sc->state == SERVER_CLOSED) {
			return;
		}
		/* Buffered bytes may already complete the next step, and a
		 * drained response moves on to the next request. */
		server_step(sc, 0, now_ms);
		if (sc->state == before && before == SERVER_DRAIN) {
			return;	/* still flushing: wait for POLLOUT */
		}
	}
}

/* After the exchange did something: the connection goes on once the
 * exchange let it. */
static void
after_exchange(struct client *cl, uint64_t now_ms)
{
	reap(cl, now_ms);
	if (cl->sc->state != SERVER_BUSY) {
		front_step(cl, now_ms);
	}
}

/* The shared store answered what the client waits for: its hold (start
 * the call or refuse it), or an answer of the relay's own. */
static void
store_answer(void *owner, const struct store_call *c, uint64_t now_ms)
{
	struct client *cl = owner;
	struct exchange *ex = cl->ex;
	char msg[400];
	int r;

	if (ex != NULL && ex->fhold != NULL) {
		r = exchange_fleet_held(ex, c, msg, sizeof(msg));
		if (r == BILLING_HELD) {
			exchange_start(ex, now_ms, ex->pinned);
		} else {
			exchange_refuse(ex, r, msg, now_ms);
			end_exchange(cl, now_ms);
		}
	} else {
		cl->lw.fc = NULL;
		local_answer(cl->sc, cl->conf, wallet_name(cl), c, now_ms);
	}
	after_exchange(cl, now_ms);
}

void
front_on_upstream(struct client *cl, uint64_t now_ms)
{
	if (cl->ex != NULL) {
		exchange_on_upstream(cl->ex, now_ms);
	}
	after_exchange(cl, now_ms);
}

void
front_release(struct client *cl, uint64_t now_ms)
{
	server_gate(cl->sc, 0);
	if (cl->sc->state != SERVER_CLOSED && server_flush(cl->sc, now_ms) ==
	    0) {
		front_step(cl, now_ms);
	}
}

void
front_resume(struct client *cl, uint64_t now_ms)
{
	if (cl->sc->state == SERVER_BUSY && cl->ex != NULL &&
	    cl->ex->resolving && cl->ex->up == NULL) {
		exchange_resume(cl->ex, now_ms);
		after_exchange(cl, now_ms);
	}
}

/* A streamed body still arriving while its call runs: bounded by
 * `timeouts body` until the answer begins. */
static int
body_late(const struct client *cl)
{
	return cl->ex != NULL && cl->sc->body_open && !cl->ex->head_sent &&
	    !cl->ex->over && cl->sc->body_deadline_ms != 0;
}

uint64_t
front_deadline(const struct client *cl)
{
	uint64_t d = cl->sc->deadline_ms;

	if (cl->ex != NULL && (d == 0 || cl->ex->deadline_ms < d)) {
		d = cl->ex->deadline_ms;
	}
	if (body_late(cl) && (d == 0 || cl->sc->body_deadline_ms < d)) {
		d = cl->sc->body_deadline_ms;	/* a streamed body's end */
	}
	return d;
}

void
front_timeout(struct client *cl, uint64_t now_ms)
{
	struct server_conn *sc = cl->sc;

	if (sc->state == SERVER_CLOSED) {
		if (front_draining(cl) && cl->ex->deadline_ms <= now_ms) {
			exchange_expire(cl->ex, now_ms);
			reap(cl, now_ms);
		}
		return;
	}
	if (body_late(cl) && sc->body_deadline_ms <= now_ms) {
		exchange_body_timeout(cl->ex, now_ms);
		reap(cl, now_ms);
		front_step(cl, now_ms);
		return;
	}
	if (cl->ex != NULL && cl->ex->deadline_ms <= now_ms) {
		exchange_expire(cl->ex, now_ms);
		reap(cl, now_ms);
		front_step(cl, now_ms);
		return;
	}
	if (sc->deadline_ms != 0 && sc->deadline_ms <= now_ms) {
		server_timeout(sc, now_ms);
		front_step(cl, now_ms);
	}
}
