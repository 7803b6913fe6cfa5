/* exchange: one relayed request (see exchange.h). */
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "conf.h"
#include "exchange.h"
#include "fleet.h"
#include "gen.h"
#include "ledger.h"
#include "log.h"
#include "metrics.h"
#include "pool.h"
#include "rewrite.h"
#include "server.h"
#include "tasks.h"
#include "upload.h"
#include "upstream.h"
#include "util.h"

#define ATTEMPT_LOG_CAP 2048

struct exchange *
exchange_new(void)
{
	return calloc(1, sizeof(struct exchange));
}

void
exchange_recycle(struct exchange *ex)
{
	struct exchange keep = *ex;

	if (ex->up_head != NULL) {
		util_wipe(ex->up_head, ex->up_head_len);
	}
	memset(ex, 0, sizeof(*ex));
	ex->up_head = keep.up_head;
	ex->up_head_cap = keep.up_head_cap;
	ex->log = keep.log;
	ex->body = keep.body;
	stream_reset(&ex->body);
}

void
exchange_free(struct exchange *ex)
{
	if (ex == NULL) {
		return;
	}
	if (ex->up_head != NULL) {
		util_wipe(ex->up_head, ex->up_head_len);
		free(ex->up_head);
	}
	stream_free(&ex->body);
	free(ex->log);
	free(ex);
}

static const char *
cred_label(const struct exchange *ex)
{
	const struct conf_provider *p = &ex->gen->conf->providers[
	    ex->model->routes[ex->route].provider];

	return ex->cred == SIZE_MAX ? "(none)" : p->creds[ex->cred].label;
}

/* The metrics series of the current candidate's credential (or of its
 * provider, for auth=none). */
static size_t
cred_series(const struct exchange *ex)
{
	const struct conf_provider *p = &ex->gen->conf->providers[
	    ex->model->routes[ex->route].provider];

	return ex->cred == SIZE_MAX ? p->metrics : p->creds[ex->cred].metrics;
}

/* The live attempt ended so: counted once. */
static void
attempt_outcome(struct exchange *ex, enum metrics_outcome o)
{
	if (ex->attempt_live) {
		ex->attempt_live = 0;
		metrics_attempt(cred_series(ex), o);
	}
}

static const char *
route_text(const struct exchange *ex)
{
	return ex->model->routes[ex->route].text;
}

static void attempt_note(struct exchange *ex, const char *fmt, ...)
    RELAY_PRINTF(2, 3);

/* Add one entry to the attempt list a 503 shows. */
static void
attempt_note(struct exchange *ex, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ex->log == NULL && (ex->log = malloc(ATTEMPT_LOG_CAP)) == NULL) {
		return;
	}
	if (ex->log_len + 4 >= ATTEMPT_LOG_CAP) {
		return;
	}
	if (ex->log_len > 0) {
		memcpy(ex->log + ex->log_len, "; ", 2);
		ex->log_len += 2;
	}
	va_start(ap, fmt);
	n = vsnprintf(ex->log + ex->log_len, ATTEMPT_LOG_CAP - ex->log_len,
	    fmt, ap);
	va_end(ap);
	if (n > 0) {
		ex->log_len += (size_t)n;
		if (ex->log_len >= ATTEMPT_LOG_CAP) {
			ex->log_len = ATTEMPT_LOG_CAP - 1;
		}
	}
}

/* An attempt failed for why: into the list and the log. */
static void
attempt_failed(struct exchange *ex, const char *why, uint64_t now_ms,
    int timed)
{
	attempt_note(ex, "%s key %s: %s", route_text(ex), cred_label(ex), why);
	if (timed) {
		log_info("%s attempt %u %s key %s: %s (%llu ms)",
		    ex->sc->req.id, ex->attempts, route_text(ex),
		    cred_label(ex), why,
		    (unsigned long long)(now_ms - ex->attempt_ms));
	} else {
		log_info("%s attempt %u %s key %s: %s", ex->sc->req.id,
		    ex->attempts, route_text(ex), cred_label(ex), why);
	}
}

static void
drop_upstream(struct exchange *ex)
{
	if (ex->up != NULL) {
		pool_drop(ex->up);
		ex->up = NULL;
	}
}

/* The charge of an answer the client got (SPEC §8): the provider's
 * usage when it gave its last word; else an estimate: invalid usage is
 * charged the hold; an answer without usage (or cut short: cut says by
 * whom) its prompt estimate (or what message_start reported) and the
 * content it delivered, 4 bytes a token, at least 1, at most the hold's
 * output allowance. */
static void
write_charge(struct exchange *ex, const char *cut)
{
	const struct stream *s = &ex->body;
	struct ledger_charge ch;

	memset(&ch, 0, sizeof(ch));
	ch.id = ex->sc->req.id;
	ch.wallet = ex->wallet;
	ch.model = ex->model->alias;
	ch.route = route_text(ex);
	ch.cred = ex->cred == SIZE_MAX ? NULL : cred_label(ex);
	ch.status = ex->status;
	ch.ms = ex->seen_ms > ex->sc->req.started_ms ?
	    (uint32_t)(ex->seen_ms - ex->sc->req.started_ms) : 0;
	if (s->usage_bad != NULL) {
		log_warn("%s invalid usage from %s (%s): charged the hold",
		    ch.id, route_text(ex), s->usage_bad);
		ch.in = ex->est_in;
		ch.out = ex->est_out;
		ch.estimated = 1;
	} else if (s->has_usage && s->usage_final && cut == NULL) {
		ch.in = s->usage.in;
		ch.cached = s->usage.cached;
		ch.cache_write = s->usage.cache_write;
		ch.out = s->usage.out;
	} else {
		uint64_t out = s->sse ? s->content_bytes / 4 :
		    s->body_bytes / 4;

		if (s->sse && out == 0) {
			out = 1;
		}
		if (s->has_usage) {	/* message_start: the input is known */
			ch.in = s->usage.in;
			ch.cached = s->usage.cached;
			ch.cache_write = s->usage.cache_write;
		} else {
			ch.in = ex->est_in;
		}
		ch.out = out < ex->est_out ? out : ex->est_out;
		ch.estimated = 1;
		ch.cut = cut;
	}
	if (billing_charge(ex->gen->conf, ex->model, &ch) < 0) {
		if (ch.estimated) {
			return;
		}
		/* Usage whose price does not fit in 64 bits: a charge is
		 * never dropped (SPEC §8), the hold stands in for it. */
		ch.in = ex->est_in;
		ch.cached = ch.cache_write = 0;
		ch.out = ex->est_out;
		ch.estimated = 1;
		if (billing_charge(ex->gen->conf, ex->model, &ch) < 0) {
			return;
		}
	}
	/* For the access log. */
	ex->charged = 1;
	ex->charged_tokens[0] = ch.in;
	ex->charged_tokens[1] = ch.cached;
	ex->charged_tokens[2] = ch.cache_write;
	ex->charged_tokens[3] = ch.out;
	ex->charged_nano = ch.cur_nano;
}

void
exchange_end(struct exchange *ex)
{
	if (ex->streaming) {
		ex->streaming = 0;
		metrics.open_streams--;
	}
	if (ex->attempt_live) {
		/* The client left before the answer's head. */
		attempt_outcome(ex, METRICS_CANCELLED);
	}
	if (ex->fhold != NULL) {	/* the store's answer is not needed */
		fleet_forget(ex->fhold, ex->seen_ms);
		ex->fhold = NULL;
		ex->settled = 1;
	}
	if (!ex->settled && ex->wallet != NULL) {
		ex->settled = 1;
		if (!ex->fheld) {	/* the store's is settled below */
			billing_release(ex->wallet, ex->hold_nano);
		}
		if (ex->limited) {
			ex->limited = 0;
			billing_limits_release(ex->wallet, exchange_hold_tokens(ex),
			    ex->jr.stream);
		}
		if (ex->head_sent && ex->status >= 200 && ex->status < 300 &&
		    !ex->no_charge) {
			/* Not over: the client went away mid-answer. */
			write_charge(ex, ex->cut != NULL ? ex->cut :
			    ex->over ? NULL : "client");
		}
		if (ex->fheld) {
			ex->fheld = 0;
			fleet_settle(ex->wallet, ex->fid, ex->charged ?
			    (int64_t)ex->charged_nano : 0, ex->charged ?
			    ex->charged_tokens[0] + ex->charged_tokens[1] +
			    ex->charged_tokens[2] + ex->charged_tokens[3] : 0,
			    ex->seen_ms);
		}
	}
	drop_upstream(ex);
}

/* Every candidate failed (or none is left, or `total` ran out): 503 with
 * the attempt list and when to come back (SPEC §4.5). */
static void
fail_all(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;
	char msg[ATTEMPT_LOG_CAP + 256], extra[64];
	char body[ATTEMPT_LOG_CAP * 6 + 2048];
	uint64_t wait = route_soonest_ms(&ex->gen->routes, ex->gen->conf,
	    ex->model, now_ms);
	unsigned long secs = (unsigned long)((wait + 999) / 1000);
	size_t n;

	if (secs < 1) {
		secs = 1;
	}
	snprintf(msg, sizeof(msg), "no upstream could answer for %s '%s' "
	    "(%u attempt%s): %s", ex->model->direct ? "provider" : "model",
	    ex->model->alias, ex->attempts,
	    ex->attempts == 1 ? "" : "s", ex->log_len ? ex->log :
	    "no candidate");
	snprintf(extra, sizeof(extra), "Retry-After: %lu\r\nx-relay-attempts: "
	    "%u\r\n", secs, ex->attempts);
	log_warn("%s %s", sc->req.id, msg);
	exchange_end(ex);
	ex->over = 1;
	metrics.unavailable++;
	/* server_error() cannot add headers; answer here. */
	n = server_error_body(sc->req.path, 503, "upstream_unavailable", msg,
	    body, sizeof(body));
	server_respond(sc, 503, "application/json", extra, body, n, 0, now_ms);
}

/* A streamed form (upload.h): the model value is the form field's, sent
 * as the upstream id itself (a form value is not JSON); the body held so
 * far goes first, the rest after it (Content-Length counts it all, or
 * chunks follow). */
static void
upload_edit(const struct exchange *ex, struct rewrite_request *w,
    struct rewrite_edit *e)
{
	const struct upload *u = ex->upload;
	const struct server_request *rq = &ex->sc->req;

	if (u->by_model && !ex->model->direct) {
		e->off = (size_t)u->mp.model_off;
		e->del = (size_t)(u->mp.model_end - u->mp.model_off);
		e->ins = ex->model->routes[ex->route].upstream_model;
		e->ins_len = strlen(e->ins);
		w->nedits = 1;
	} else {
		w->nedits = 0;
	}
	w->chunked = u->chunked;
	if (!u->whole && !u->chunked) {
		w->body_more = rq->head.content_length - rq->body_len;
	}
}

/* The upstream request for the current candidate into ex->up_head and
 * iovecs around the client's body. Returns the iov count or -1. */
static int
build_request(struct exchange *ex, struct iovec *iov)
{
	const struct gen *g = ex->gen;
	const struct conf *c = g->conf;
	const struct conf_route *r = &ex->model->routes[ex->route];
	const struct server_request *rq = &ex->sc->req;
	size_t model = (size_t)(ex->model - c->models), need;
	struct rewrite_request w;
	struct rewrite_edit edits[2], tmp;
	const struct view *mval;

	if (ex->model->direct) {
		mval = NULL;
	} else if (model >= c->nmodels || ex->route >= ex->model->nroutes) {
		return -1;	/* not this generation's model */
	} else {
		mval = &g->model_value[model][ex->route];
	}
	memset(&w, 0, sizeof(w));
	w.method = rq->head.method;
	w.base_path.p = c->providers[r->provider].path;
	w.base_path.n = g->path_len[r->provider];
	w.path = rq->path;
	w.query = rq->query;
	w.fixed = *gen_fixed(g, r->provider, ex->cred);
	w.headers = rq->head.headers;
	w.nheaders = rq->head.nheaders;
	w.connection = rq->head.connection;
	w.provider = &c->providers[r->provider];
	w.body = rq->mem + rq->head_len;
	w.body_len = rq->body_len;
	edits[0].off = ex->jr.model_off;
	edits[0].del = ex->jr.model_len;
	edits[0].ins = mval != NULL ? mval->p : NULL;
	edits[0].ins_len = mval != NULL ? mval->n : 0;
	w.edits = edits;
	/* A call without a model (on an object, passthrough) is sent as the
	 * client wrote it. */
	w.nedits = ex->model->direct ? 0 : 1;
	ex->body.drop_usage = 0;
	if (ex->upload != NULL) {
		upload_edit(ex, &w, &edits[0]);
	} else if (!ex->model->direct && rewrite_usage_edit(&ex->jr, w.body, rq->path,
	    &edits[1])) {
		ex->body.drop_usage = 1;
		w.nedits = 2;
		if (edits[1].off < edits[0].off) {
			tmp = edits[0];
			edits[0] = edits[1];
			edits[1] = tmp;
		}
	}
	need = rewrite_request_need(&w);
	if (need > ex->up_head_cap) {
		if (ex->up_head != NULL) {
			util_wipe(ex->up_head, ex->up_head_len);
		}
		ex->up_head_len = 0;
		free(ex->up_head);
		if ((ex->up_head = malloc(need)) == NULL) {
			ex->up_head_cap = 0;
			return -1;
		}
		ex->up_head_cap = need;
	}
	{
		int niov = rewrite_request(&w, ex->up_head, iov);

		if (iov[0].iov_len > ex->up_head_len) {
			ex->up_head_len = iov[0].iov_len;
		}
		return niov;
	}
}

/* The next candidate from the route plan, or -1 after answering 503. */
static int
next_candidate(struct exchange *ex, uint64_t now_ms)
{
	const struct conf *c = ex->gen->conf;
	enum route_next_kind k;
	size_t route, cred;
	uint64_t wait_ms;

	for (;;) {
		if (ex->pinned) {
			/* A task lives with one credential: no failover. */
			fail_all(ex, now_ms);
			return -1;
		}
		if (ex->committed) {
			/* The body's sent part is gone: it cannot be sent
			 * again. */
			attempt_note(ex, "part of the request body was already "
			    "sent: no other attempt");
			fail_all(ex, now_ms);
			return -1;
		}
		if (now_ms >= ex->deadline_ms) {
			attempt_note(ex, "total timeout of %llu ms reached",
			    (unsigned long long)c->total_timeout_ms);
			fail_all(ex, now_ms);
			return -1;
		}
		k = route_next(&ex->plan, &ex->gen->routes, c, now_ms, &route,
		    &cred, &wait_ms);
		if (k == ROUTE_END) {
			fail_all(ex, now_ms);
			return -1;
		}
		ex->route = route;
		ex->cred = cred;
		if (k == ROUTE_SKIP_NO_CRED) {
			attempt_note(ex, "%s: no credential configured",
			    route_text(ex));
		} else if (k == ROUTE_SKIP_COOLING) {
			attempt_note(ex, "%s key %s: cooling down, %llu s left",
			    route_text(ex), cred_label(ex),
			    (unsigned long long)((wait_ms + 999) / 1000));
		} else {
			return 0;
		}
	}
}

/* Start the next attempt, or answer 503 when no candidate is left.
 * fresh: try the current candidate (pinned, a retry on a new connection
 * or after DNS) before asking the plan. */
static void
next_attempt(struct exchange *ex, uint64_t now_ms, int fresh)
{
	struct iovec iov[UPSTREAM_IOV_MAX];
	struct upstream *u;
	enum pool_result pr;
	char err[160];
	int niov;

	for (;;) {
		if (!fresh && next_candidate(ex, now_ms) < 0) {
			return;
		}
		fresh = 0;
		niov = build_request(ex, iov);
		if (niov < 0) {
			attempt_note(ex, "%s: cannot build the request",
			    route_text(ex));
			continue;
		}
		ex->attempt_ms = now_ms;
		pr = pool_get(ex->gen, ex->model->routes[ex->route].provider,
		    ex->fresh_retry, ex->owner, now_ms, &u, err, sizeof(err));
		if (pr == POOL_PENDING) {
			ex->resolving = 1;
			return;
		}
		ex->resolving = 0;
		if (!ex->fresh_retry || pr == POOL_FAILED) {
			ex->attempts++;
			metrics.attempts++;
		}
		if (pr == POOL_FAILED) {
			metrics_attempt(cred_series(ex), METRICS_CONNECT_ERROR);
			ex->attempt_live = 0;
			attempt_failed(ex, err, now_ms, 0);
			continue;
		}
		ex->up = u;
		ex->attempt_live = 1;
		upstream_send(u, iov, niov, ex->sc->req.head.method, now_ms);
		if (ex->upload != NULL && !ex->upload->whole) {
			upstream_expect_more(u);
		}
		/* Try to write at once: saves a poll round trip. */
		if (u->state == UPSTREAM_SENDING) {
			upstream_step(u, POLLOUT, now_ms);
			if (u->state == UPSTREAM_FAILED ||
			    u->state == UPSTREAM_HEAD ||
			    (u->state == UPSTREAM_SENDING && u->more)) {
				exchange_on_upstream(ex, now_ms);
			}
		}
		return;
	}
}

/* A whole 2xx answer (stream_finish() done): the object it made is
 * recorded, or the recorded object it is about may settle (tasks.h). */
static void
note_object(struct exchange *ex)
{
	struct stream *s = &ex->body;

	if (ex->status < 200 || ex->status >= 300) {
		return;
	}
	if (ex->record) {
		tasks_record(ex->sc->req.id, &s->doc, ex->record_kind,
		    ex->wallet, ex->model->direct ? NULL : ex->model->alias,
		    route_text(ex), ex->cred == SIZE_MAX ? NULL :
		    cred_label(ex));
	} else if (ex->task_id[0] != '\0') {
		tasks_settle(ex->task_id, ex->gen->conf, ex->sc->req.id,
		    ex->status, &s->doc);
	}
}

static void
finish(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;
	struct stream *s = &ex->body;

	stream_finish(s);
	note_object(ex);
	log_info("%s %.*s %.*s model=%s route=%s key=%s -> %d attempts=%u "
	    "in=%llu out=%llu%s %llu ms", sc->req.id,
	    (int)sc->req.head.method.n, sc->req.head.method.p,
	    (int)sc->req.path.n, sc->req.path.p, ex->model->alias,
	    route_text(ex), cred_label(ex), ex->status, ex->attempts,
	    (unsigned long long)(s->usage.in + s->usage.cached +
	    s->usage.cache_write), (unsigned long long)s->usage.out,
	    s->has_usage ? "" : " (no usage)",
	    (unsigned long long)(now_ms - sc->req.started_ms));
	if (ex->up != NULL) {
		pool_release(ex->up, now_ms);
		ex->up = NULL;
	}
	ex->over = 1;
	exchange_end(ex);
	/* The answer's last bytes wait until its charge line is in the
	 * file, unless the queue survives a crash (billing.h). */
	if (billing_must_wait() && sc->state != SERVER_CLOSED) {
		server_gate(sc, 1);
		billing_wait(ex->wait, ex->owner);
	}
	server_response_done(sc, now_ms);
}

/* The upstream broke after the client got the head: never present a cut
 * body as complete (SPEC §4.4, §7). */
static void
break_stream(struct exchange *ex, const char *why, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;

	log_warn("%s stream from %s broke: %s", sc->req.id, route_text(ex),
	    why);
	if (ex->body.sse) {
		stream_error_event(&ex->body, sc, why);
	}
	ex->cut = "upstream";
	exchange_end(ex);
	ex->over = 1;
	/* No last chunk and a close: the client sees a cut body. */
	sc->close_after = 1;
	server_response_done(sc, now_ms);
}

static void
pump(struct exchange *ex, uint64_t now_ms)
{
	const char *why = NULL;

	switch (stream_pump(&ex->body, ex->up, ex->sc, now_ms, &why)) {
	case STREAM_DONE:
		finish(ex, now_ms);
		break;
	case STREAM_BROKEN:
		break_stream(ex, why, now_ms);
		break;
	case STREAM_WAIT:
		break;
	}
}

/* The client gets this status and head: forward it and start the body. */
static void
forward(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;
	struct rewrite_response r;
	struct rewrite_framing f;

	ex->status = ex->up->resp.status;
	r.resp = &ex->up->resp;
	r.method = sc->req.head.method;
	r.minor_version = sc->req.head.minor_version;
	r.request_id = sc->req.id;
	r.route = route_text(ex);
	r.attempts = ex->attempts;
	r.may_shrink = ex->body.drop_usage;
	/* An answer that came before the whole body was read ends the
	 * connection: the rest of the body is not read. */
	f.close_after = sc->close_after || sc->body_open;
	if (rewrite_response_head(&r, &sc->out, &f) < 0) {
		ex->body.sse = f.sse;
		break_stream(ex, "response head does not fit", now_ms);
		return;
	}
	ex->body.sse = f.sse;
	ex->body.client_chunked = f.client_chunked;
	sc->req.status = ex->status;
	if (f.sse) {
		ex->streaming = 1;
		metrics.open_streams++;
	}
	ex->body.anthropic = server_anthropic_path(sc->req.path);
	stream_start(&ex->body);
	sc->close_after = f.close_after;
	ex->head_sent = 1;
	upstream_start_body(ex->up, now_ms);
	pump(ex, now_ms);
}

static void
on_head(struct exchange *ex, uint64_t now_ms)
{
	const struct http_response *r = &ex->up->resp;
	enum route_outcome o = route_classify(r->status);
	size_t prov = ex->model->routes[ex->route].provider;
	char why[80];

	metrics_ttfb(ex->model->metrics, now_ms - ex->attempt_ms);
	attempt_outcome(ex, o == ROUTE_OK ? METRICS_OK :
	    o == ROUTE_REJECTED ? METRICS_REJECTED : METRICS_SERVER_ERROR);
	if (o == ROUTE_OK) {
		if (ex->cred != SIZE_MAX) {
			route_report(&ex->gen->routes, prov, ex->cred,
			    ROUTE_OK, 0, now_ms);
		}
		forward(ex, now_ms);
		return;
	}
	if (ex->cred != SIZE_MAX) {
		struct view ra = rewrite_find_header(r->headers, r->nheaders,
		    "retry-after");
		uint64_t retry_ms = 0, secs;

		/* An upstream's Retry-After stretches the cooldown, to at
		 * most `cooldown max` (SPEC §10): one tenant's 429 must not
		 * lock every tenant out of a shared key for a day. */
		if (ra.n > 0 && util_parse_u64(ra.p, ra.n, &secs) == 0 &&
		    secs < 86400) {
			retry_ms = secs * 1000;
			if (retry_ms > ex->gen->conf->cooldown_max_ms) {
				retry_ms = ex->gen->conf->cooldown_max_ms;
			}
		}
		route_report(&ex->gen->routes, prov, ex->cred, o, retry_ms,
		    now_ms);
	}
	attempt_note(ex, "%s key %s: %d %.*s", route_text(ex), cred_label(ex),
	    r->status, (int)(r->reason.n > 60 ? 60 : r->reason.n),
	    r->reason.p);
	snprintf(why, sizeof(why), "%d", r->status);
	log_info("%s attempt %u %s key %s: %s (%llu ms)", ex->sc->req.id,
	    ex->attempts, route_text(ex), cred_label(ex), why,
	    (unsigned long long)(now_ms - ex->attempt_ms));
	drop_upstream(ex);
	next_attempt(ex, now_ms, 0);
}

static void
on_failed(struct exchange *ex, uint64_t now_ms)
{
	struct upstream *u = ex->up;

	if (ex->head_sent) {
		pump(ex, now_ms);
		return;
	}
	if (u->reused && !u->got_bytes && !upstream_fail_is_timeout(u->fail) &&
	    !ex->fresh_retry && !ex->committed) {
		/* A pooled connection the peer had already closed: not the
		 * candidate's fault, try once more on a new connection. */
		drop_upstream(ex);
		ex->attempt_live = 0;	/* not counted: not an attempt */
		ex->fresh_retry = 1;
		next_attempt(ex, now_ms, 1);
		ex->fresh_retry = 0;
		return;
	}
	attempt_outcome(ex, upstream_fail_is_timeout(u->fail) ?
	    METRICS_TIMEOUT : u->fail == UPSTREAM_FAIL_CONNECT ||
	    u->fail == UPSTREAM_FAIL_TLS ? METRICS_CONNECT_ERROR :
	    METRICS_BROKEN);
	attempt_failed(ex, u->error, now_ms, 1);
	drop_upstream(ex);
	next_attempt(ex, now_ms, 0);
}

/* The streamed form was refused (or its bytes could not be read): the
 * upstream is cut before its body is complete, so it never acts on it,
 * and the client is told why (nothing is charged). */
static void
refuse(struct exchange *ex, int status, const char *code, const char *why,
    uint64_t now_ms)
{
	log_info("%s request body refused: %s", ex->sc->req.id, why);
	drop_upstream(ex);
	exchange_end(ex);
	ex->over = 1;
	server_error(ex->sc, status, code, why, now_ms);
}

void
exchange_body_timeout(struct exchange *ex, uint64_t now_ms)
{
	ex->seen_ms = now_ms;
	if (!ex->over && !ex->head_sent) {
		refuse(ex, 408, "request_timeout", "the request body did not "
		    "arrive within the body timeout", now_ms);
	}
}

/* SENDING: give the upstream more of a streamed body while it has
 * written what it had and the client has sent more; each piece is read
 * by the form reader first, and the last goes only once the form is
 * complete (upload_next()). */
static void
send_body(struct exchange *ex, uint64_t now_ms)
{
	struct upstream *u = ex->up;
	const char *p;
	size_t n;

	while (ex->upload != NULL && u->state == UPSTREAM_SENDING &&
	    u->more && u->iovcnt == 0) {
		switch (upload_next(ex->upload, ex->sc, &p, &n)) {
		case UPLOAD_WAIT:
			return;
		case UPLOAD_BAD:
			refuse(ex, ex->upload->status,
			    upload_code(ex->upload), ex->upload->why, now_ms);
			return;
		case UPLOAD_LAST:
			upstream_send_more(u, p, n, 1);
			break;
		default:
			upstream_send_more(u, p, n, 0);
			break;
		}
		ex->committed = 1;
		upstream_step(u, POLLOUT, now_ms);
	}
	if (u->state != UPSTREAM_SENDING) {
		exchange_on_upstream(ex, now_ms);
	}
}

/* disconnect drain: the client left; the rest of the answer is read for
 * its usage only. */
static void
drain(struct exchange *ex, uint64_t now_ms)
{
	const char *why = NULL;

	switch (stream_drain(&ex->body, ex->up, now_ms, &why)) {
	case STREAM_DONE:
		stream_finish(&ex->body);
		note_object(ex);	/* the client may come back for it */
		log_info("%s drained after the client left: in=%llu out=%llu%s",
		    ex->sc->req.id, (unsigned long long)ex->body.usage.in,
		    (unsigned long long)ex->body.usage.out,
		    ex->body.usage_final ? "" : " (no usage)");
		pool_release(ex->up, now_ms);
		ex->up = NULL;
		/* The provider's own usage when it came; else an estimate
		 * of what the client was sent. */
		ex->cut = ex->body.usage_final ? NULL : "client";
		ex->over = 1;
		exchange_end(ex);
		break;
	case STREAM_BROKEN:
		log_warn("%s drain from %s broke: %s", ex->sc->req.id,
		    route_text(ex), why);
		ex->cut = "client";
		ex->over = 1;
		exchange_end(ex);
		break;
	case STREAM_WAIT:
		break;
	}
}

int
exchange_detach(struct exchange *ex, uint64_t now_ms)
{
	ex->seen_ms = now_ms;
	if (ex->over || ex->draining || !ex->head_sent || ex->up == NULL ||
	    !(ex->gen->conf->disconnect_drain || ex->must_drain) ||
	    ex->no_charge) {
		return 0;
	}
	ex->draining = 1;
	log_info("%s client left mid-answer: reading the rest for its usage "
	    "(disconnect drain)", ex->sc->req.id);
	drain(ex, now_ms);
	return !ex->over;
}

void
exchange_on_upstream(struct exchange *ex, uint64_t now_ms)
{
	ex->seen_ms = now_ms;
	if (ex->up == NULL || ex->over) {
		return;
	}
	if (ex->draining) {
		drain(ex, now_ms);
		return;
	}
	switch (ex->up->state) {
	case UPSTREAM_SENDING:
		send_body(ex, now_ms);
		break;
	case UPSTREAM_FAILED:
		on_failed(ex, now_ms);
		break;
	case UPSTREAM_HEAD:
		on_head(ex, now_ms);
		break;
	case UPSTREAM_BODY:
	case UPSTREAM_DONE:
		pump(ex, now_ms);
		break;
	default:
		break;
	}
}

void
exchange_pump(struct exchange *ex, uint64_t now_ms)
{
	ex->seen_ms = now_ms;
	if (ex->up != NULL && ex->head_sent && !ex->over) {
		pump(ex, now_ms);
	} else if (ex->up != NULL && !ex->over &&
	    ex->up->state == UPSTREAM_SENDING) {
		send_body(ex, now_ms);	/* more of the body came */
	}
}

void
exchange_start(struct exchange *ex, uint64_t now_ms, int fresh)
{
	ex->seen_ms = now_ms;
	ex->deadline_ms = now_ms + ex->gen->conf->total_timeout_ms;
	route_plan_start(&ex->plan, ex->model);
	server_busy(ex->sc);
	metrics.relayed++;
	next_attempt(ex, now_ms, fresh);
}

void
exchange_resume(struct exchange *ex, uint64_t now_ms)
{
	ex->seen_ms = now_ms;
	if (ex->resolving && ex->up == NULL && !ex->over) {
		next_attempt(ex, now_ms, 1);
	}
}

void
exchange_expire(struct exchange *ex, uint64_t now_ms)
{
	ex->seen_ms = now_ms;
	if (ex->over) {
		return;
	}
	if (ex->draining) {
		ex->cut = "client";
		ex->over = 1;
		exchange_end(ex);
		return;
	}
	if (ex->head_sent) {
		break_stream(ex, "total timeout reached", now_ms);
		return;
	}
	if (ex->up != NULL) {
		attempt_note(ex, "%s key %s: total timeout of %llu ms reached",
		    route_text(ex), cred_label(ex),
		    (unsigned long long)ex->gen->conf->total_timeout_ms);
		attempt_outcome(ex, METRICS_TIMEOUT);
	}
	fail_all(ex, now_ms);
}
