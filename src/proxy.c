/* proxy: the relay's runtime.
 *
 * One poll() loop drives every socket. Each pass rebuilds the poll set
 * from the state of every connection (interest follows buffer levels, so
 * a full buffer stops reading: that is the backpressure), waits until the
 * nearest deadline, steps whatever is ready, then handles expired
 * deadlines and frees what was closed during the pass. Objects are only
 * freed at the end of a pass, so a pointer taken during the pass stays
 * valid.
 *
 * A client request that is relayed gets an exchange: its candidate walk
 * (route.c), the current upstream attempt, and the per-attempt log that a
 * 503 lists. Until the first response byte reaches the client, any
 * retryable outcome moves on to the next candidate; after it, a failure
 * ends the client's response visibly (SPEC §4).
 *
 * Configs are generations: a reload makes a new one and connections keep
 * the one they started with until they finish. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "api.h"
#include "clock.h"
#include "dns.h"
#include "conf.h"
#include "json.h"
#include "ledger.h"
#include "log.h"
#include "money.h"
#include "net.h"
#include "proxy.h"
#include "route.h"
#include "server.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"

#define PROXY_MAX_ADDRS 4
#define PROXY_DRAIN_MS 10000
/* How often clients whose request is with an upstream are polled for a
 * hang-up (see the poll set in proxy_run). */
#define PROXY_HANGUP_CHECK_MS 100
#define ACCEPT_PAUSE_MS 100
#define ATTEMPT_LOG_CAP 2048
#define TASK_ID_MAX 128
#define TASK_POLL_MS 30000	/* the relay's own poll of open tasks */
#define TASK_POLLS_MAX 8	/* polls in flight at once */
#define TASKS_PATH "/v1/contents/generations/tasks"
#define USAGE_TAIL 4096		/* usage is read from this window */
#define EV_START 2048		/* first size of the SSE event buffer */
#define EV_CAP 32768		/* an SSE event larger than this passes
				 * through unfiltered */

/* One config in force, with everything derived from it. */
struct gen {
	struct conf *conf;		/* owned */
	struct route_table routes;	/* owned; credential health */
	struct tls_anchors anchors;	/* owned; ca_file or the embedded roots */
	int has_anchors;
	char *models_json;		/* owned; GET /v1/models body */
	size_t models_len;
	struct net_addr (*addrs)[PROXY_MAX_ADDRS];	/* owned; per provider */
	int *naddrs;			/* owned; per provider, 0 = unresolved */
	char **resolve_err;		/* owned; per provider, or NULL */
	/* Made once per config, not per request (gen_pieces): */
	struct view **fixed;		/* owned; [provider][cred]: the Host,
					 * auth and header= lines */
	size_t *path_len;		/* owned; per provider */
	struct view **model_value;	/* owned; [model][route]: the new
					 * "model" value, quoted, escaped */
	unsigned long refs;		/* connections using it */
	struct gen *next;		/* older generations */
};

struct exchange {
	struct server_conn *sc;		/* borrowed: the client */
	struct gen *gen;		/* borrowed */
	struct upstream *up;		/* the live attempt, or NULL */
	const struct conf_model *model;	/* borrowed from gen->conf */
	struct route_plan plan;
	size_t route;			/* current candidate */
	size_t cred;			/* (size_t)-1 for auth=none */
	unsigned attempts;		/* upstream attempts made */
	int fresh_retry;		/* a stale pooled conn was retried */
	struct json_request jr;		/* offsets into the request body */
	char *up_head;			/* owned: request head for this attempt
					 * (holds a secret: wiped on free) */
	size_t up_head_cap;
	size_t up_head_len;		/* bytes written (to wipe) */
	uint64_t deadline_ms;		/* `total` for the whole request */
	uint64_t attempt_ms;		/* when this attempt started */
	int head_sent;			/* the client has the response head */
	int client_chunked;		/* we frame the body as chunked */
	int sse;			/* text/event-stream response */
	int status;			/* status the client got */
	int drop_usage;			/* we asked for stream usage the client
					 * did not: drop the usage-only chunk */
	char *ev;			/* owned: SSE bytes of the event being
					 * assembled (EV_CAP), NULL until SSE */
	size_t ev_len;
	size_t ev_cap;
	char *tail;			/* owned, USAGE_TAIL, lazily: the last
					 * body bytes (usage lives at the end of
					 * every non-stream shape) */
	size_t tail_len;
	uint64_t body_bytes;		/* decoded body bytes relayed */
	int has_usage;
	uint64_t usage_in, usage_out;
	const char *wallet;		/* borrowed from conf ("default" open) */
	int64_t hold_nano;		/* wallet-currency hold while running */
	uint64_t est_in, est_out;	/* the hold's token estimate */
	int settled;			/* hold released, charge written */
	int resolving;			/* waiting for DNS for this candidate */
	int pinned;			/* one fixed candidate (a task's own
					 * provider and credential) */
	int no_charge;			/* settled elsewhere (tasks) */
	int task_create;		/* POST .../contents/generations/tasks */
	char task_id[TASK_ID_MAX];	/* GET/DELETE of this task, or "" */
	char *log;			/* owned, ATTEMPT_LOG_CAP, lazily: only a
					 * failed attempt writes it */
	size_t log_len;
};

/* The relay's own poll of one open task (SPEC §3: a client that never
 * polls is charged too). */
struct task_poll {
	struct upstream *up;		/* borrowed from P.ups while running */
	const struct conf *conf;	/* borrowed */
	char id[TASK_ID_MAX];
	char *head;			/* owned request (holds a secret) */
	size_t head_len;
	char body[8192];		/* the answer; larger ones are ignored */
	size_t body_len;
	int too_big;
	int status;
};

static struct {
	struct gen *gen;		/* current generation (head of list) */
	const char *config_path;	/* NULL: embedded */
	int *lfds;			/* owned listening sockets */
	struct tls_server_cert **lcerts;	/* owned; per listener, or NULL */
	size_t ncerts;			/* slots in lcerts */
	size_t nlfds;
	struct server_conn **conns;	/* owned */
	size_t nconns, conns_cap;
	struct upstream **ups;		/* owned: active and idle */
	size_t nups, ups_cap;
	struct pollfd *pfds;		/* owned; rebuilt every pass */
	void **powner;
	unsigned char *pkind;
	size_t pcap;
	uint64_t next_conn_id;
	uint64_t accept_paused_until;	/* EMFILE back-off, or 0 */
	/* Connections refused with 503 server_busy: read and discarded until
	 * the client closes (or a second passes), so that our answer is not
	 * lost to a TCP reset for unread request bytes. */
	int reject_fd[64];
	uint64_t reject_until[64];
	size_t nrejects;
	struct ledger ledger;		/* the one ledger this process writes */
	struct task_poll *polls[TASK_POLLS_MAX];	/* owned, in flight */
	size_t npolls;
	uint64_t next_poll_ms;
	uint64_t hangup_check_ms;	/* next pass that polls busy clients */
	struct held {
		char *name;		/* owned */
		int64_t nano;		/* sum of running requests' holds */
	} *held;
	size_t nheld;
	/* counters for /metrics */
	unsigned long long m_requests, m_relayed, m_attempts, m_upstream_conns,
	    m_errors_5xx, m_busy, m_charges, m_refused_402;
	char body_tmp[64];
	/* Conns whose answers wait for the ledger's group commit. */
	struct server_conn *held_conns;
} P;

enum { KIND_LISTEN, KIND_SERVER, KIND_UPSTREAM, KIND_REJECT, KIND_DNS };

static volatile sig_atomic_t got_term, got_hup;
static struct dns D;		/* the one resolver; large, so not on a stack */

static void
on_signal(int sig)
{
	if (sig == SIGHUP) {
		got_hup = 1;
	} else {
		got_term = 1;
	}
}

/* ---- generations -------------------------------------------------------- */

static void gen_pieces_free(struct gen *g);

static void
gen_free(struct gen *g)
{
	size_t i;

	if (g == NULL) {
		return;
	}
	route_table_free(&g->routes);
	if (g->has_anchors) {
		tls_anchors_free(&g->anchors);
	}
	free(g->models_json);
	if (g->resolve_err != NULL) {
		for (i = 0; i < g->conf->nproviders; i++) {
			free(g->resolve_err[i]);
		}
	}
	free(g->resolve_err);
	free(g->addrs);
	free(g->naddrs);
	gen_pieces_free(g);
	conf_free(g->conf);
	free(g);
}

static int provider_lines(const struct conf_provider *p, const char *secret,
    char *out, size_t cap);

/* Per-request text that only depends on the config: each credential's
 * fixed head lines (they hold its secret: wiped when freed), each
 * route's new "model" value. */
static int
gen_pieces(struct gen *g)
{
	const struct conf *c = g->conf;
	size_t i, j, h, n, cap, ncred;
	char *o;
	long e;
	int k;

	g->path_len = calloc(c->nproviders + 1, sizeof(*g->path_len));
	g->fixed = calloc(c->nproviders + 1, sizeof(*g->fixed));
	g->model_value = calloc(c->nmodels + 1, sizeof(*g->model_value));
	if (g->path_len == NULL || g->fixed == NULL ||
	    g->model_value == NULL) {
		return -1;
	}
	for (i = 0; i < c->nproviders; i++) {
		const struct conf_provider *p = &c->providers[i];

		g->path_len[i] = strlen(p->path);
		/* auth=none has no credential: one entry with no secret. */
		ncred = p->ncreds ? p->ncreds : 1;
		if ((g->fixed[i] = calloc(ncred, sizeof(**g->fixed))) ==
		    NULL) {
			return -1;
		}
		for (j = 0; j < ncred; j++) {
			const char *secret = p->ncreds ? p->creds[j].secret :
			    "";

			cap = strlen(p->host_header) + strlen(secret) + 64;
			for (h = 0; h < p->nheaders; h++) {
				cap += strlen(p->headers[h].name) +
				    strlen(p->headers[h].value) + 4;
			}
			if ((o = malloc(cap)) == NULL) {
				return -1;
			}
			g->fixed[i][j].p = o;
			n = (size_t)snprintf(o, cap, "Host: %s\r\n",
			    p->host_header);
			k = provider_lines(p, secret, o + n, cap - n);
			if (k < 0) {
				return -1;
			}
			g->fixed[i][j].n = n + (size_t)k;
		}
	}
	for (i = 0; i < c->nmodels; i++) {
		const struct conf_model *m = &c->models[i];

		g->model_value[i] = calloc(m->nroutes + 1,
		    sizeof(**g->model_value));
		if (g->model_value[i] == NULL) {
			return -1;
		}
		for (j = 0; j < m->nroutes; j++) {
			const char *um = m->routes[j].upstream_model;

			n = strlen(um);
			if ((o = malloc(2 * n + 8)) == NULL) {
				return -1;
			}
			g->model_value[i][j].p = o;
			o[0] = '"';
			e = json_escape(um, n, o + 1, 2 * n + 6);
			if (e < 0) {
				return -1;
			}
			o[e + 1] = '"';
			g->model_value[i][j].n = (size_t)e + 2;
		}
	}
	return 0;
}

static void
gen_pieces_free(struct gen *g)
{
	const struct conf *c = g->conf;
	size_t i, j;

	if (c == NULL) {
		return;
	}
	for (i = 0; g->fixed != NULL && i < c->nproviders; i++) {
		size_t n = c->providers[i].ncreds ? c->providers[i].ncreds : 1;

		for (j = 0; g->fixed[i] != NULL && j < n; j++) {
			if (g->fixed[i][j].p != NULL) {
				util_wipe((char *)(uintptr_t)g->fixed[i][j].p,
				    g->fixed[i][j].n);
				free((char *)(uintptr_t)g->fixed[i][j].p);
			}
		}
		free(g->fixed[i]);
	}
	for (i = 0; g->model_value != NULL && i < c->nmodels; i++) {
		for (j = 0; g->model_value[i] != NULL &&
		    j < c->models[i].nroutes; j++) {
			free((char *)(uintptr_t)g->model_value[i][j].p);
		}
		free(g->model_value[i]);
	}
	free(g->fixed);
	free(g->model_value);
	free(g->path_len);
	g->fixed = NULL;
	g->model_value = NULL;
	g->path_len = NULL;
}

static struct gen *
gen_new(struct conf *c)
{
	struct gen *g = calloc(1, sizeof(*g));
	size_t n = c->nproviders ? c->nproviders : 1;

	if (g == NULL) {
		return NULL;
	}
	g->conf = c;
	g->addrs = calloc(n, sizeof(*g->addrs));
	g->naddrs = calloc(n, sizeof(*g->naddrs));
	g->resolve_err = calloc(n, sizeof(*g->resolve_err));
	if (g->addrs == NULL || g->naddrs == NULL || g->resolve_err == NULL ||
	    route_table_init(&g->routes, c) < 0) {
		goto fail;
	}
	g->models_json = api_models_json(c, &g->models_len);
	if (g->models_json == NULL || gen_pieces(g) < 0) {
		goto fail;
	}
	{
		char err[512];

		if (tls_anchors_load(&g->anchors, c->ca_file, err,
		    sizeof(err)) < 0) {
			log_error("%s", err);
			goto fail;
		}
		g->has_anchors = 1;
		log_info("TLS trust anchors: %zu from %s",
		    tls_anchors_count(&g->anchors),
		    tls_anchors_source(&g->anchors));
	}
	return g;
fail:
	gen_pieces_free(g);
	g->conf = NULL;	/* the caller still owns c on failure */
	route_table_free(&g->routes);
	free(g->models_json);
	free(g->addrs);
	free(g->naddrs);
	free(g->resolve_err);
	free(g);
	return NULL;
}

static struct gen *
gen_of(const struct conf *c)
{
	struct gen *g;

	for (g = P.gen; g != NULL; g = g->next) {
		if (g->conf == c) {
			return g;
		}
	}
	return P.gen;
}

static void
gen_release(const struct conf *c)
{
	struct gen *g = gen_of(c), **pp;

	if (g->refs > 0) {
		g->refs--;
	}
	if (g == P.gen || g->refs > 0) {
		return;
	}
	for (pp = &P.gen; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			gen_free(g);
			return;
		}
	}
}

/* ---- bookkeeping -------------------------------------------------------- */

static int
grow(void **arr, size_t *cap, size_t elem)
{
	size_t ncap = *cap ? *cap * 2 : 64;
	void *p = realloc(*arr, ncap * elem);

	if (p == NULL) {
		return -1;
	}
	*arr = p;
	*cap = ncap;
	return 0;
}

static int
track_upstream(struct upstream *u)
{
	if (P.nups == P.ups_cap &&
	    grow((void **)&P.ups, &P.ups_cap, sizeof(*P.ups)) < 0) {
		return -1;
	}
	P.ups[P.nups++] = u;
	gen_of(u->conf)->refs++;
	return 0;
}

static void exchange_free(struct exchange *ex);

/* An exchange for sc: the one its last request left behind (buffers and
 * all, so a keep-alive connection allocates nothing per request), or a
 * new one. */
static struct exchange *
exchange_get(struct server_conn *sc)
{
	struct exchange *ex = sc->spare_ex, keep;

	if (ex == NULL) {
		return calloc(1, sizeof(*ex));
	}
	sc->spare_ex = NULL;
	keep = *ex;
	memset(ex, 0, sizeof(*ex));
	ex->up_head = keep.up_head;
	ex->up_head_cap = keep.up_head_cap;
	ex->ev = keep.ev;
	ex->ev_cap = keep.ev_cap;
	ex->log = keep.log;
	ex->tail = keep.tail;
	return ex;
}

/* The exchange is over: keep it on its connection for the next request,
 * its secret-bearing request head wiped. */
static void
exchange_put(struct exchange *ex)
{
	struct server_conn *sc = ex->sc;

	if (sc == NULL || sc->state == SERVER_CLOSED || sc->spare_ex != NULL) {
		exchange_free(ex);
		return;
	}
	if (ex->up_head != NULL) {
		util_wipe(ex->up_head, ex->up_head_len);
		ex->up_head_len = 0;
	}
	sc->spare_ex = ex;
}

static void
exchange_free(struct exchange *ex)
{
	if (ex == NULL) {
		return;
	}
	if (ex->up_head != NULL) {
		util_wipe(ex->up_head, ex->up_head_len);
		free(ex->up_head);
	}
	free(ex->ev);
	free(ex->log);
	free(ex->tail);
	free(ex);
}

/* Detach and close the exchange's upstream (not reusable). */
static void
drop_upstream(struct exchange *ex)
{
	if (ex->up != NULL) {
		ex->up->owner = NULL;
		upstream_close(ex->up);
		ex->up = NULL;
	}
}

static void
release_upstream(struct exchange *ex, uint64_t now_ms)
{
	struct upstream *u = ex->up;

	if (u == NULL) {
		return;
	}
	ex->up = NULL;
	u->owner = NULL;
	if (upstream_reusable(u) && u->conf == P.gen->conf && !got_term) {
		upstream_park(u, now_ms);
	} else {
		upstream_close(u);
	}
}

static const char *cred_label(const struct exchange *ex);
static void record_task(struct exchange *ex);
static int locate_task(const struct conf *c, const struct ledger_task *t,
    const struct conf_model **mp, size_t *route, size_t *cred, char *err,
    size_t errlen);
static void task_settle(const struct ledger_task *t, const struct conf *c,
    const char *req_id, int status, const char *body, size_t n);

static int64_t *
held_of(const char *wallet)
{
	size_t i;
	struct held *h;

	for (i = 0; i < P.nheld; i++) {
		if (strcmp(P.held[i].name, wallet) == 0) {
			return &P.held[i].nano;
		}
	}
	h = realloc(P.held, (P.nheld + 1) * sizeof(*h));
	if (h == NULL) {
		return NULL;
	}
	P.held = h;
	h[P.nheld].name = strdup(wallet);
	if (h[P.nheld].name == NULL) {
		return NULL;
	}
	h[P.nheld].nano = 0;
	return &h[P.nheld++].nano;
}

static void
write_charge(struct exchange *ex)
{
	const struct conf *c = ex->gen->conf;
	const struct conf_model *m = ex->model;
	struct ledger_charge ch;
	char err[256];
	uint64_t usd = 0, cur = 0;

	memset(&ch, 0, sizeof(ch));
	ch.id = ex->sc->req.id;
	ch.wallet = ex->wallet;
	ch.model = m->alias;
	ch.route = m->routes[ex->route].text;
	ch.cred = ex->cred == (size_t)-1 ? NULL : cred_label(ex);
	ch.status = ex->status;
	if (ex->has_usage) {
		ch.in = ex->usage_in;
		ch.out = ex->usage_out;
	} else {
		/* No usage in the answer: charge the hold's estimate, with
		 * output bounded by what actually streamed. */
		ch.in = ex->est_in;
		ch.out = ex->body_bytes / 4 < ex->est_out ?
		    ex->body_bytes / 4 : ex->est_out;
		ch.estimated = 1;
	}
	if (money_cost_usd_nano(ch.in, m->in_nano_usd, ch.out,
	    m->out_nano_usd, &usd) < 0 ||
	    money_convert(usd, c->rate_num, c->rate_den, &cur) < 0 ||
	    cur > (uint64_t)INT64_MAX) {
		log_error("%s charge overflows 64 bits (in=%llu out=%llu): "
		    "not written", ch.id, (unsigned long long)ch.in,
		    (unsigned long long)ch.out);
		return;
	}
	ch.usd_nano = usd;
	ch.cur_nano = cur;
	if (ledger_charge(&P.ledger, &ch, err, sizeof(err)) < 0) {
		log_error("%s ledger write failed: %s", ch.id, err);
		return;
	}
	P.m_charges++;
}

/* Release the hold and, for a response the client got from an upstream,
 * write its one charge line. Idempotent: called on every way out. */
static void
settle(struct exchange *ex)
{
	int64_t *h;

	if (ex->settled || ex->wallet == NULL) {
		return;
	}
	ex->settled = 1;
	h = held_of(ex->wallet);
	if (h != NULL) {
		*h -= ex->hold_nano;
	}
	if (ex->head_sent && ex->status >= 200 && ex->status < 300 &&
	    !ex->no_charge) {
		write_charge(ex);
	}
}

static void
end_exchange(struct server_conn *sc)
{
	if (sc->ex != NULL) {
		settle(sc->ex);
		drop_upstream(sc->ex);
		exchange_put(sc->ex);
		sc->ex = NULL;
	}
}

/* ---- attempts ----------------------------------------------------------- */

static void
attempt_note(struct exchange *ex, const char *fmt, ...)
    RELAY_PRINTF(2, 3);

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

static const char *
cred_label(const struct exchange *ex)
{
	const struct conf *c = ex->gen->conf;
	const struct conf_provider *p =
	    &c->providers[ex->model->routes[ex->route].provider];

	if (ex->cred == (size_t)-1) {
		return "(none)";
	}
	return p->creds[ex->cred].label;
}

/* Client request fields the relay does not forward: hop-by-hop ones, the
 * client's credentials and framing (replaced), Accept-Encoding (usage must
 * be readable), and names the provider sets itself. Dispatch on the first
 * letter: this runs for every field of every request. */
static int
header_dropped(const struct view name, const struct conf_provider *p,
    const struct view connection)
{
	size_t i;
	int hit = 0;

	if (name.n == 0) {
		return 1;
	}
	switch (name.p[0] | 0x20) {
	case 'a':
		hit = VIEW_IEQ(name, "authorization") ||
		    VIEW_IEQ(name, "api-key") ||
		    VIEW_IEQ(name, "accept-encoding");
		break;
	case 'c':
		hit = VIEW_IEQ(name, "connection") ||
		    VIEW_IEQ(name, "content-length");
		break;
	case 'e':
		hit = VIEW_IEQ(name, "expect");
		break;
	case 'h':
		hit = VIEW_IEQ(name, "host");
		break;
	case 'k':
	case 'p':
	case 't':
	case 'u':
		hit = http_is_hop_by_hop(name);
		break;
	case 'x':
		hit = VIEW_IEQ(name, "x-api-key");
		break;
	default:
		break;
	}
	if (hit || (connection.n > 0 &&
	    http_connection_lists(connection, name))) {
		return 1;
	}
	for (i = 0; i < p->nheaders; i++) {
		if (util_view_ieq(name, p->headers[i].name)) {
			return 1;
		}
	}
	return 0;
}

static struct view
find_header(const struct http_header *h, size_t n, const char *name)
{
	struct view none = { "", 0 };
	size_t i, len = strlen(name);

	for (i = 0; i < n; i++) {
		if (h[i].name.n == len && util_view_ieq(h[i].name, name)) {
			return h[i].value;
		}
	}
	return none;
}

/* A change to the client's body: delete del bytes at off, insert ins. */
struct edit {
	size_t off;
	size_t del;
	const char *ins;
	size_t ins_len;
};

static int
path_ends(const struct view p, const char *s)
{
	size_t n = strlen(s);

	return p.n >= n && memcmp(p.p + p.n - n, s, n) == 0;
}

/* For an OpenAI chat stream the relay needs the final usage chunk
 * (SPEC §3): ask for it, and remember to hide it when the client did not
 * ask. The body is never copied: the insertion is one more iovec. */
static int
usage_edit(struct exchange *ex, const char *body, struct edit *e)
{
	const struct json_request *jr = &ex->jr;

	if (!jr->stream || jr->include_usage ||
	    !path_ends(ex->sc->req.path, "/chat/completions")) {
		return 0;
	}
	ex->drop_usage = 1;
	if (jr->has_stream_options && jr->stream_options_len >= 2 &&
	    body[jr->stream_options_off] == '{') {
		size_t close = jr->stream_options_off + jr->stream_options_len - 1;
		size_t k = jr->stream_options_off + 1;

		while (k < close && (body[k] == ' ' || body[k] == '\t' ||
		    body[k] == '\n' || body[k] == '\r')) {
			k++;
		}
		/* A later duplicate key wins in every common parser. */
		e->off = close;
		e->del = 0;
		e->ins = k == close ? "\"include_usage\":true" :
		    ",\"include_usage\":true";
	} else if (jr->has_stream_options) {
		e->off = jr->stream_options_off;
		e->del = jr->stream_options_len;
		e->ins = "{\"include_usage\":true}";
	} else {
		e->off = jr->object_end;
		e->del = 0;
		e->ins = ",\"stream_options\":{\"include_usage\":true}";
	}
	e->ins_len = strlen(e->ins);
	return 1;
}

/* The credential in the provider's auth style, then its fixed headers,
 * into out. Returns the length, or -1 when cap is too small. */
static int
provider_lines(const struct conf_provider *p, const char *secret, char *out,
    size_t cap)
{
	const char *name = NULL;
	size_t pos = 0, i, need = strlen(secret) + 32;

	for (i = 0; i < p->nheaders; i++) {
		need += strlen(p->headers[i].name) +
		    strlen(p->headers[i].value) + 4;
	}
	if (need >= cap) {
		return -1;
	}
	switch (p->auth) {
	case CONF_AUTH_BEARER:
		name = "Authorization: Bearer ";
		break;
	case CONF_AUTH_X_API_KEY:
		name = "x-api-key: ";
		break;
	case CONF_AUTH_API_KEY:
		name = "api-key: ";
		break;
	case CONF_AUTH_NONE:
		break;
	}
#define ADD(s) do { size_t l_ = strlen(s); memcpy(out + pos, (s), l_); \
	pos += l_; } while (0)
	if (name != NULL) {
		ADD(name);
		ADD(secret);
		ADD("\r\n");
	}
	for (i = 0; i < p->nheaders; i++) {
		ADD(p->headers[i].name);
		ADD(": ");
		ADD(p->headers[i].value);
		ADD("\r\n");
	}
#undef ADD
	out[pos] = '\0';
	return (int)pos;
}

/* Build the upstream request for the current candidate into ex->up_head
 * and the iovecs around the client's body. Returns the iov count or -1. */
static int
build_request(struct exchange *ex, struct iovec *iov)
{
	const struct gen *g = ex->gen;
	const struct conf *c = g->conf;
	const struct conf_route *r = &ex->model->routes[ex->route];
	const struct conf_provider *p = &c->providers[r->provider];
	const struct server_request *rq = &ex->sc->req;
	const struct http_request *h = &rq->head;
	const char *body = rq->mem + rq->head_len;
	size_t model = (size_t)(ex->model - c->models);
	const struct view *fixed, *mval;
	struct view connection = h->connection;
	size_t need, i, pos = 0, plen;
	size_t new_body_len, at;
	struct edit edits[2], tmp;
	int nedits = 1, niov;
	char *o;

	if (model >= c->nmodels || ex->route >= ex->model->nroutes) {
		return -1;	/* not this generation's model */
	}
	fixed = &g->fixed[r->provider][ex->cred == (size_t)-1 ? 0 : ex->cred];
	mval = &g->model_value[model][ex->route];
	plen = g->path_len[r->provider];
	need = 64 + h->method.n + plen + rq->path.n + rq->query.n + fixed->n;
	for (i = 0; i < h->nheaders; i++) {
		need += h->headers[i].name.n + h->headers[i].value.n + 4;
	}
	if (need > ex->up_head_cap) {
		if (ex->up_head != NULL) {
			util_wipe(ex->up_head, ex->up_head_len);
		}
		ex->up_head_len = 0;
		free(ex->up_head);
		ex->up_head = malloc(need);
		if (ex->up_head == NULL) {
			ex->up_head_cap = 0;
			return -1;
		}
		ex->up_head_cap = need;
	}
	o = ex->up_head;

	edits[0].off = ex->jr.model_off;
	edits[0].del = ex->jr.model_len;
	edits[0].ins = mval->p;
	edits[0].ins_len = mval->n;
	ex->drop_usage = 0;
	if (ex->pinned) {
		nedits = 0;	/* a task poll has no body to rewrite */
	} else {
		nedits += usage_edit(ex, body, &edits[1]);
	}
	if (nedits == 2 && edits[1].off < edits[0].off) {
		tmp = edits[0];
		edits[0] = edits[1];
		edits[1] = tmp;
	}
	new_body_len = rq->body_len;
	for (i = 0; i < (size_t)nedits; i++) {
		new_body_len = new_body_len - edits[i].del + edits[i].ins_len;
	}

	/* Field by field with memcpy: need covers every piece. */
#define PUTV(ptr, len) do { memcpy(o + pos, (ptr), (len)); \
	pos += (len); } while (0)
#define PUTS(lit) PUTV((lit), sizeof(lit) - 1)
	PUTV(h->method.p, h->method.n);
	PUTS(" ");
	/* rq->path starts with "/v1"; the provider's base path replaces it. */
	PUTV(p->path, plen);
	PUTV(rq->path.p + 3, rq->path.n - 3);
	PUTV(rq->query.p, rq->query.n);
	PUTS(" HTTP/1.1\r\n");
	PUTV(fixed->p, fixed->n);
	for (i = 0; i < h->nheaders; i++) {
		const struct http_header *f = &h->headers[i];

		if (header_dropped(f->name, p, connection)) {
			continue;
		}
		/* need counted name + value + 4 for each field. */
		memcpy(o + pos, f->name.p, f->name.n);
		pos += f->name.n;
		o[pos++] = ':';
		o[pos++] = ' ';
		memcpy(o + pos, f->value.p, f->value.n);
		pos += f->value.n;
		o[pos++] = '\r';
		o[pos++] = '\n';
	}
	PUTS("Content-Length: ");
	pos += util_u64_dec(new_body_len, o + pos);
	PUTS("\r\n\r\n");
#undef PUTS
#undef PUTV
	iov[0].iov_base = o;
	iov[0].iov_len = pos;
	if (pos > ex->up_head_len) {
		ex->up_head_len = pos;
	}
	niov = 1;
	at = 0;
	for (i = 0; i < (size_t)nedits; i++) {
		iov[niov].iov_base = (void *)(uintptr_t)(body + at);
		iov[niov++].iov_len = edits[i].off - at;
		iov[niov].iov_base = (void *)(uintptr_t)edits[i].ins;
		iov[niov++].iov_len = edits[i].ins_len;
		at = edits[i].off + edits[i].del;
	}
	iov[niov].iov_base = (void *)(uintptr_t)(body + at);
	iov[niov++].iov_len = rq->body_len - at;
	return niov;
}

static struct upstream *
take_idle(size_t provider, const struct conf *c)
{
	size_t i;

	/* Most recently parked first: the likeliest to still be open. */
	for (i = P.nups; i > 0; i--) {
		struct upstream *u = P.ups[i - 1];

		if (u->state == UPSTREAM_IDLE && u->provider == provider &&
		    u->conf == c) {
			return u;
		}
	}
	return NULL;
}

static void fail_all(struct exchange *ex, uint64_t now_ms);
static void after_upstream(struct upstream *u, uint64_t now_ms);
static void break_stream(struct exchange *ex, const char *why,
    uint64_t now_ms);
static void note_usage(struct exchange *ex, const char *p, size_t n);
static void hold_answer(struct server_conn *sc);
static void after_server(struct server_conn *sc, uint64_t now_ms);

/* Start the next attempt, or answer 503 when no candidate is left. */
static void
next_attempt(struct exchange *ex, uint64_t now_ms, int fresh)
{
	const struct conf *c = ex->gen->conf;
	struct iovec iov[UPSTREAM_IOV_MAX];
	enum route_next_kind k;
	size_t route, cred, prov;
	uint64_t wait_ms;
	int niov;

	for (;;) {
		struct upstream *u = NULL;
		char err[160];

		if (!fresh && ex->pinned) {
			/* A task lives with one credential: no failover. */
			fail_all(ex, now_ms);
			return;
		}
		if (!fresh) {
			if (now_ms >= ex->deadline_ms) {
				attempt_note(ex, "total timeout of %llu ms "
				    "reached", (unsigned long long)
				    c->total_timeout_ms);
				fail_all(ex, now_ms);
				return;
			}
			k = route_next(&ex->plan, &ex->gen->routes, c, now_ms,
			    &route, &cred, &wait_ms);
			if (k == ROUTE_END) {
				fail_all(ex, now_ms);
				return;
			}
			ex->route = route;
			ex->cred = cred;
			if (k == ROUTE_SKIP_NO_CRED) {
				attempt_note(ex, "%s: no credential configured",
				    ex->model->routes[route].text);
				continue;
			}
			if (k == ROUTE_SKIP_COOLING) {
				attempt_note(ex, "%s key %s: cooling down, "
				    "%llu s left", ex->model->routes[route].text,
				    cred_label(ex), (unsigned long long)
				    ((wait_ms + 999) / 1000));
				continue;
			}
		}
		fresh = 0;
		prov = ex->model->routes[ex->route].provider;
		niov = build_request(ex, iov);
		if (niov < 0) {
			attempt_note(ex, "%s: cannot build the request",
			    ex->model->routes[ex->route].text);
			continue;
		}
		ex->attempt_ms = now_ms;
		if (!ex->fresh_retry) {
			u = take_idle(prov, c);
		}
		if (u == NULL) {
			const struct conf_provider *pv = &c->providers[prov];
			struct net_addr addrs[PROXY_MAX_ADDRS];
			int naddr = 0, d;

			/* Never blocks: a name not in the cache is queried and
			 * the exchange waits for the answer (dns_generation). */
			d = dns_lookup(&D, pv->host, (uint16_t)atoi(pv->port),
			    now_ms, addrs, PROXY_MAX_ADDRS, &naddr, err,
			    sizeof(err));
			if (d == DNS_PENDING) {
				ex->resolving = 1;
				return;
			}
			ex->resolving = 0;
			if (d == DNS_FAILED || naddr == 0) {
				ex->attempts++;
				P.m_attempts++;
				attempt_note(ex, "%s key %s: %s",
				    ex->model->routes[ex->route].text,
				    cred_label(ex), d == DNS_FAILED ? err :
				    "no address");
				log_info("%s attempt %u %s key %s: %s",
				    ex->sc->req.id, ex->attempts,
				    ex->model->routes[ex->route].text,
				    cred_label(ex), d == DNS_FAILED ? err :
				    "no address");
				continue;
			}
			u = upstream_connect(&addrs[0], prov, c,
			    pv->https ? &ex->gen->anchors : NULL, pv->host,
			    now_ms, err, sizeof(err));
			if (u == NULL || track_upstream(u) < 0) {
				if (u != NULL) {
					upstream_free(u);
					snprintf(err, sizeof(err),
					    "out of memory");
				}
				ex->attempts++;
				P.m_attempts++;
				attempt_note(ex, "%s key %s: %s",
				    ex->model->routes[ex->route].text,
				    cred_label(ex), err);
				log_info("%s attempt %u %s key %s: %s",
				    ex->sc->req.id, ex->attempts,
				    ex->model->routes[ex->route].text,
				    cred_label(ex), err);
				continue;
			}
			P.m_upstream_conns++;
		}
		if (!ex->fresh_retry) {
			ex->attempts++;
			P.m_attempts++;
		}
		u->owner = ex;
		ex->up = u;
		upstream_send(u, iov, niov, ex->sc->req.head.method, now_ms);
		/* Try to write at once: saves a poll round trip. */
		if (u->state == UPSTREAM_SENDING) {
			upstream_step(u, POLLOUT, now_ms);
			if (u->state == UPSTREAM_FAILED ||
			    u->state == UPSTREAM_HEAD) {
				after_upstream(u, now_ms);
			}
		}
		return;
	}
}

static void
fail_all(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;
	char msg[ATTEMPT_LOG_CAP + 256], extra[64];
	uint64_t wait = route_soonest_ms(&ex->gen->routes, ex->gen->conf,
	    ex->model, now_ms);
	unsigned long secs = (unsigned long)((wait + 999) / 1000);

	if (secs < 1) {
		secs = 1;
	}
	snprintf(msg, sizeof(msg), "no upstream could answer for model '%s' "
	    "(%u attempt%s): %s", ex->model->alias, ex->attempts,
	    ex->attempts == 1 ? "" : "s", ex->log_len ? ex->log :
	    "no candidate");
	snprintf(extra, sizeof(extra), "Retry-After: %lu\r\nx-relay-attempts: "
	    "%u\r\n", secs, ex->attempts);
	log_warn("%s %s", sc->req.id, msg);
	drop_upstream(ex);
	end_exchange(sc);
	P.m_errors_5xx++;
	/* server_error() cannot add headers; build it here. */
	{
		char body[ATTEMPT_LOG_CAP * 2 + 512], esc[ATTEMPT_LOG_CAP * 2 + 300];
		int n;

		if (json_escape(msg, strlen(msg), esc, sizeof(esc)) < 0) {
			snprintf(esc, sizeof(esc), "no upstream could answer");
		}
		n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%s\","
		    "\"type\":\"server_error\",\"code\":"
		    "\"upstream_unavailable\"}}\n", esc);
		server_respond(sc, 503, "application/json", extra, body,
		    (size_t)n, 0, now_ms);
	}
}

/* ---- the response ------------------------------------------------------- */

static int
forward_head(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;
	struct upstream *u = ex->up;
	const struct http_response *r = &u->resp;
	struct view connection = r->connection;
	struct view ctype = find_header(r->headers, r->nheaders,
	    "content-type");
	struct buf *o = &sc->out;
	const char *route;
	char *d, *start;
	size_t i, need, route_len, id_len;
	int has_body;

	ex->status = r->status;
	ex->sse = ctype.n >= 17 && util_view_ieq((struct view){ ctype.p, 17 },
	    "text/event-stream");
	has_body = !http_response_has_no_body(r->status, sc->req.head.method);
	/* "Connection: keep-alive" names a field that is hop-by-hop anyway:
	 * no need to look up every field in it. */
	if (VIEW_IEQ(connection, "keep-alive")) {
		connection.n = 0;
	}
	/* Bound the head, make room once, then copy field by field. */
	route = ex->model->routes[ex->route].text;
	route_len = strlen(route);
	id_len = strlen(sc->req.id);
	need = 400 + route_len + id_len;
	for (i = 0; i < r->nheaders; i++) {
		need += r->headers[i].name.n + r->headers[i].value.n + 28;
	}
	if (buf_room(o) < need) {
		buf_compact(o);
		if (buf_room(o) < need) {
			return -1;
		}
	}
	d = (char *)buf_tail(o);
	start = d;
#define OUT(p, len) do { memcpy(d, (p), (len)); d += (len); } while (0)
#define OUTL(lit) OUT((lit), sizeof(lit) - 1)
	OUTL("HTTP/1.1 ");
	d += util_u64_dec((uint64_t)r->status, d);
	OUTL(" ");
	OUT(r->reason.p, r->reason.n > 100 ? 100 : r->reason.n);
	OUTL("\r\n");
	for (i = 0; i < r->nheaders; i++) {
		const struct http_header *f = &r->headers[i];

		if (http_is_hop_by_hop(f->name) ||
		    (connection.n && http_connection_lists(connection,
		    f->name)) || VIEW_IEQ(f->name, "content-length") ||
		    VIEW_IEQ(f->name, "x-relay-route") ||
		    VIEW_IEQ(f->name, "x-relay-attempts")) {
			continue;
		}
		if (VIEW_IEQ(f->name, "x-request-id")) {
			/* Ours names the request; keep theirs beside it. */
			OUTL("x-upstream-request-id");
		} else {
			OUT(f->name.p, f->name.n);
		}
		OUTL(": ");
		OUT(f->value.p, f->value.n);
		OUTL("\r\n");
	}
	if (!has_body) {
		if (r->status != 204 && r->status != 304) {
			OUTL("Content-Length: 0\r\n");
		}
	} else if (r->has_content_length && !r->chunked) {
		OUTL("Content-Length: ");
		d += util_u64_dec(r->content_length, d);
		OUTL("\r\n");
	} else if (sc->req.head.minor_version >= 1) {
		ex->client_chunked = 1;
		OUTL("Transfer-Encoding: chunked\r\n");
	} else {
		/* HTTP/1.0 has no chunked coding: the close ends the body. */
		sc->close_after = 1;
	}
	OUTL("x-request-id: ");
	OUT(sc->req.id, id_len);
	OUTL("\r\nx-relay-route: ");
	OUT(route, route_len);
	OUTL("\r\nx-relay-attempts: ");
	d += util_u64_dec(ex->attempts, d);
	if (sc->close_after) {
		OUTL("\r\nConnection: close\r\n\r\n");
	} else if (sc->req.head.minor_version == 0) {
		OUTL("\r\nConnection: keep-alive\r\n\r\n");
	} else {
		OUTL("\r\n\r\n");
	}
#undef OUTL
#undef OUT
	buf_produced(o, (size_t)(d - start));
	ex->head_sent = 1;
	(void)now_ms;
	return 0;
}

static void
finish_exchange(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;

	if (!ex->sse && ex->tail_len > 0) {
		note_usage(ex, ex->tail, ex->tail_len);
	}
	if (ex->status >= 200 && ex->status < 300) {
		if (ex->task_create) {
			record_task(ex);
		} else if (ex->task_id[0] != '\0') {
			task_settle(ledger_task_find(&P.ledger, ex->task_id),
			    ex->gen->conf, sc->req.id, ex->status, ex->tail,
			    ex->tail_len);
		}
	}
	log_info("%s %.*s %.*s model=%s route=%s key=%s -> %d attempts=%u "
	    "in=%llu out=%llu%s %llu ms", sc->req.id,
	    (int)sc->req.head.method.n, sc->req.head.method.p,
	    (int)sc->req.path.n, sc->req.path.p, ex->model->alias,
	    ex->model->routes[ex->route].text, cred_label(ex), ex->status,
	    ex->attempts, (unsigned long long)ex->usage_in,
	    (unsigned long long)ex->usage_out, ex->has_usage ? "" :
	    " (no usage)", (unsigned long long)(now_ms - sc->req.started_ms));
	release_upstream(ex, now_ms);
	end_exchange(sc);
	if (ledger_pending(&P.ledger) > 0 &&
	    !ledger_queue_survives_crash(&P.ledger)) {
		hold_answer(sc);
	}
	server_response_done(sc, now_ms);
}

/* The answer's last bytes wait until its charge line is in the file:
 * commit_charges() at the end of this loop pass writes the pass's lines
 * with one write(2), then lets every held answer go. Only when the queue
 * is plain memory (sync=always, or no queue file): a line in the mapped
 * queue file already survives a crash of the relay, so the answer goes
 * at once and the write follows at the end of the pass. */
static void
hold_answer(struct server_conn *sc)
{
	if (!sc->hold_out && sc->state != SERVER_CLOSED) {
		sc->hold_out = 1;
		sc->held_next = P.held_conns;
		P.held_conns = sc;
	}
}

/*
 * A pass that handled many events says more are coming: its charges may
 * wait for the next pass (one only, and only while fewer than
 * COMMIT_BATCH lines wait), so that under load one write(2) (and one
 * fsync for sync=always) carries more lines. While answers are held or lines wait the next
 * poll() does not sleep, so an idle relay commits at once, and a quiet
 * one (a pass of one or two events) commits every pass.
 */
enum { COMMIT_BUSY_EVENTS = 4, COMMIT_BATCH = 32 };

static void
commit_charges(uint64_t now_ms, int events)
{
	static int deferred;
	size_t n = ledger_pending(&P.ledger);
	int rounds;

	if (n > 0 && n < COMMIT_BATCH && events >= COMMIT_BUSY_EVENTS &&
	    !deferred) {
		struct server_conn **pp = &P.held_conns;

		/* sweep() frees what closed this pass: unlink it first. */
		while (*pp != NULL) {
			struct server_conn *c = *pp;

			if (c->state == SERVER_CLOSED) {
				*pp = c->held_next;
				c->hold_out = 0;
				c->held_next = NULL;
			} else {
				pp = &c->held_next;
			}
		}
		deferred = 1;
		return;
	}
	deferred = 0;

	/* Letting an answer go can start the next (pipelined) request;
	 * a charge that completes inside it is committed by the next
	 * round. */
	for (rounds = 0; rounds < 4 && (n > 0 || P.held_conns != NULL);
	    rounds++) {
		struct server_conn *sc = P.held_conns;

		if (n > 0 && ledger_commit(&P.ledger) < 0) {
			P.m_charges -= n < P.m_charges ? n : P.m_charges;
		}
		P.held_conns = NULL;
		while (sc != NULL) {
			struct server_conn *next = sc->held_next;

			sc->hold_out = 0;
			sc->held_next = NULL;
			if (sc->state != SERVER_CLOSED &&
			    server_flush(sc, now_ms) == 0) {
				after_server(sc, now_ms);
			}
			sc = next;
		}
		n = ledger_pending(&P.ledger);
	}
	ledger_settle(&P.ledger);	/* the answers are out: hash now */
}

/* The provider answered the creation of an async task: remember who made
 * it and where it lives, so polls go to the same credential and it is
 * charged once when it succeeds (SPEC §3). */
static void
record_task(struct exchange *ex)
{
	struct ledger_task t;
	struct view idv;
	char id[TASK_ID_MAX], err[256];
	long n;

	if (json_top_string(ex->tail, ex->tail_len, "id", &idv) != JSON_OK ||
	    (n = json_unescape(idv, id, sizeof(id))) <= 0 ||
	    strlen(id) != (size_t)n) {
		log_error("%s task created but its id could not be read from "
		    "the answer: it cannot be charged", ex->sc->req.id);
		return;
	}
	memset(&t, 0, sizeof(t));
	t.id = id;
	t.wallet = ex->wallet;
	t.model = ex->model->alias;
	t.route = ex->model->routes[ex->route].text;
	t.cred = cred_label(ex);
	if (ledger_task(&P.ledger, &t, err, sizeof(err)) < 0) {
		log_error("%s task %s not recorded: %s", ex->sc->req.id, id,
		    err);
		return;
	}
	log_info("%s task %s recorded (wallet=%s route=%s key=%s)",
	    ex->sc->req.id, id, t.wallet, t.route, t.cred);
}

/* A task's state as the provider reports it. Succeeded: charge its usage,
 * once. Failed, cancelled or expired: close it with a zero line (never
 * charged). Anything else: still running. */
static void
task_settle(const struct ledger_task *t, const struct conf *c,
    const char *req_id, int status, const char *body, size_t n)
{
	const struct conf_model *m;
	struct ledger_charge ch;
	struct json_usage u;
	struct view st;
	uint64_t usd = 0, cur = 0;
	char err[256];
	int ok;

	if (t == NULL || t->charged ||
	    json_top_string(body, n, "status", &st) != JSON_OK) {
		return;
	}
	ok = util_view_eq(st, "succeeded");
	if (!ok && !util_view_eq(st, "failed") &&
	    !util_view_eq(st, "cancelled") && !util_view_eq(st, "expired")) {
		return;
	}
	m = conf_find_model(c, t->model, strlen(t->model));
	memset(&ch, 0, sizeof(ch));
	memset(&u, 0, sizeof(u));
	if (ok && (!json_find_usage(body, n, &u) || m == NULL)) {
		log_error("task %s succeeded but %s: left open", t->id,
		    m == NULL ? "its model is no longer configured" :
		    "no usage came with it");
		return;
	}
	if (ok && (money_cost_usd_nano(u.in, m->in_nano_usd, u.out,
	    m->out_nano_usd, &usd) < 0 ||
	    money_convert(usd, c->rate_num, c->rate_den, &cur) < 0 ||
	    cur > (uint64_t)INT64_MAX)) {
		log_error("task %s charge overflows: left open", t->id);
		return;
	}
	ch.id = req_id;
	ch.task = t->id;
	ch.wallet = t->wallet;
	ch.model = t->model;
	ch.route = t->route;
	ch.cred = t->cred;
	ch.status = status;
	ch.in = u.in;
	ch.out = u.out;
	ch.usd_nano = usd;
	ch.cur_nano = cur;
	if (ledger_charge(&P.ledger, &ch, err, sizeof(err)) < 0) {
		log_error("task %s: ledger write failed: %s", t->id, err);
		return;
	}
	P.m_charges += ok;
	log_info("task %s %.*s: %s (out=%llu)", t->id, (int)st.n, st.p,
	    ok ? "charged" : "closed without charge",
	    (unsigned long long)u.out);
}

/* The upstream broke after the client got the head: never present a cut
 * body as complete (SPEC §4.4, §7). */
static void
break_stream(struct exchange *ex, const char *why, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;

	log_warn("%s stream from %s broke: %s", sc->req.id,
	    ex->model->routes[ex->route].text, why);
	if (ex->sse) {
		char ev[512], esc[256], frame[16];
		int n;

		if (json_escape(why, strlen(why), esc, sizeof(esc)) < 0) {
			snprintf(esc, sizeof(esc), "upstream failed");
		}
		n = snprintf(ev, sizeof(ev), "event: error\ndata: {\"error\":{"
		    "\"message\":\"upstream stream broke: %s\",\"type\":"
		    "\"server_error\",\"code\":\"upstream_unavailable\"}}\n\n",
		    esc);
		if (ex->client_chunked) {
			int m = snprintf(frame, sizeof(frame), "%x\r\n", n);

			(void)buf_append(&sc->out, frame, (size_t)m);
			(void)buf_append(&sc->out, ev, (size_t)n);
			(void)buf_append(&sc->out, "\r\n", 2);
		} else {
			(void)buf_append(&sc->out, ev, (size_t)n);
		}
	}
	drop_upstream(ex);
	end_exchange(sc);
	/* No last chunk and a close: the client sees a cut body. */
	sc->close_after = 1;
	server_response_done(sc, now_ms);
}

/* Keep the last USAGE_TAIL body bytes: every non-stream response shape
 * puts its usage object at the end. */
static void
keep_tail(struct exchange *ex, const char *p, size_t n)
{
	ex->body_bytes += n;
	if (ex->tail == NULL && (ex->tail = malloc(USAGE_TAIL)) == NULL) {
		return;	/* no usage then: charged on the estimate */
	}
	if (n >= USAGE_TAIL) {
		memcpy(ex->tail, p + n - USAGE_TAIL, USAGE_TAIL);
		ex->tail_len = USAGE_TAIL;
		return;
	}
	if (ex->tail_len + n > USAGE_TAIL) {
		size_t drop = ex->tail_len + n - USAGE_TAIL;

		memmove(ex->tail, ex->tail + drop, ex->tail_len - drop);
		ex->tail_len -= drop;
	}
	memcpy(ex->tail + ex->tail_len, p, n);
	ex->tail_len += n;
}

static void
note_usage(struct exchange *ex, const char *p, size_t n)
{
	struct json_usage u;

	if (json_find_usage(p, n, &u) && u.found) {
		/* Anthropic splits usage over message_start (input) and
		 * message_delta (output, cumulative): keep the latest of
		 * each that is present. */
		ex->has_usage = 1;
		if (u.in > 0) {
			ex->usage_in = u.in;
		}
		if (u.out > 0 || ex->usage_out == 0) {
			ex->usage_out = u.out;
		}
	}
}

/* Append body bytes to the client's out buffer in the client's framing.
 * Returns 0, or -1 when out has no room for them now. */
static int
emit(struct exchange *ex, const char *p, size_t n)
{
	struct buf *o = &ex->sc->out;
	char sz[20];
	int k;

	if (n == 0) {
		return 0;
	}
	if (buf_room(o) < n + 16) {
		buf_compact(o);
		if (buf_room(o) < n + 16) {
			return -1;
		}
	}
	if (ex->client_chunked) {
		k = snprintf(sz, sizeof(sz), "%zx\r\n", n);
		(void)buf_append(o, sz, (size_t)k);
	}
	(void)buf_append(o, p, n);
	if (ex->client_chunked) {
		(void)buf_append(o, "\r\n", 2);
	}
	return 0;
}

/* Length of the first complete SSE event in p[0..n) including its blank
 * line, or 0. */
static size_t
sse_event_len(const char *p, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++) {
		if (p[i] == '\n' && (p[i - 1] == '\n' ||
		    (i >= 2 && p[i - 1] == '\r' && p[i - 2] == '\n'))) {
			return i + 1;
		}
	}
	return 0;
}

/* The usage-only chunk of an OpenAI stream: empty choices plus usage. */
static int
is_usage_only_chunk(const char *p, size_t n)
{
	static const char needle[] = "\"choices\":[]";
	size_t i, k = sizeof(needle) - 1;

	for (i = 0; i + k <= n; i++) {
		if (memcmp(p + i, needle, k) == 0) {
			return 1;
		}
	}
	return 0;
}

/* SSE: assemble whole events so usage can be read from them and the
 * usage-only chunk we asked for can be hidden; each event is forwarded as
 * soon as it is complete. */
static void
pump_sse(struct exchange *ex, uint64_t now_ms)
{
	struct upstream *u = ex->up;

	if (ex->ev == NULL) {
		/* Events are small; the buffer grows only for a big one. */
		ex->ev_cap = EV_START;
		ex->ev = malloc(ex->ev_cap);
		if (ex->ev == NULL) {
			break_stream(ex, "out of memory", now_ms);
			return;
		}
	}
	for (;;) {
		size_t len, got;

		while ((len = sse_event_len(ex->ev, ex->ev_len)) > 0) {
			int had = ex->has_usage;

			note_usage(ex, ex->ev, len);
			if (!(ex->drop_usage && ex->has_usage && !had &&
			    is_usage_only_chunk(ex->ev, len))) {
				if (emit(ex, ex->ev, len) < 0) {
					return;	/* out is full: wait */
				}
			}
			ex->body_bytes += len;
			memmove(ex->ev, ex->ev + len, ex->ev_len - len);
			ex->ev_len -= len;
		}
		if (ex->ev_len == ex->ev_cap && ex->ev_cap < EV_CAP) {
			char *bigger = realloc(ex->ev, ex->ev_cap * 2);

			if (bigger != NULL) {
				ex->ev = bigger;
				ex->ev_cap *= 2;
			}
		}
		if (ex->ev_len == ex->ev_cap || (u->state == UPSTREAM_DONE &&
		    ex->ev_len > 0)) {
			/* An oversized event, or a last one without its
			 * blank line: pass it on as it is. */
			note_usage(ex, ex->ev, ex->ev_len);
			if (emit(ex, ex->ev, ex->ev_len) < 0) {
				return;
			}
			ex->body_bytes += ex->ev_len;
			ex->ev_len = 0;
		}
		if (u->state != UPSTREAM_BODY) {
			return;
		}
		got = upstream_read_body(u, ex->ev + ex->ev_len,
		    ex->ev_cap - ex->ev_len, now_ms);
		ex->ev_len += got;
		if (got == 0 && u->state == UPSTREAM_BODY) {
			return;
		}
	}
}

/* One round: move decoded body bytes from the upstream to the client's
 * out buffer as far as it has room, then write what the socket takes. */
static void
pump_once(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;
	struct upstream *u = ex->up;

	while (u != NULL && sc->state == SERVER_BUSY) {
		struct buf *o = &sc->out;
		size_t room, got;
		char *dst;

		if (u->state == UPSTREAM_FAILED) {
			break_stream(ex, u->error, now_ms);
			return;
		}
		if (ex->sse) {
			pump_sse(ex, now_ms);
			if (sc->state != SERVER_BUSY || ex->ev_len > 0 ||
			    u->state == UPSTREAM_BODY) {
				break;
			}
		}
		if (u->state == UPSTREAM_DONE) {
			if (ex->client_chunked &&
			    buf_append(o, "0\r\n\r\n", 5) < 0) {
				break;	/* wait for room */
			}
			finish_exchange(ex, now_ms);
			return;
		}
		if (buf_len(o) == 0 || buf_room(o) < 64) {
			buf_compact(o);
		}
		room = buf_room(o);
		if (room < 64) {
			break;
		}
		dst = (char *)buf_tail(o);
		if (ex->client_chunked) {
			/* A fixed-width size line lets the data land in place:
			 * "0000001a\r\n" is valid chunk-size syntax. */
			got = upstream_read_body(u, dst + 10, room - 10 - 7,
			    now_ms);
			if (got > 0) {
				static const char hex[] = "0123456789abcdef";
				size_t v = got;
				int k;

				for (k = 7; k >= 0; k--) {
					dst[k] = hex[v & 15];
					v >>= 4;
				}
				dst[8] = '\r';
				dst[9] = '\n';
				memcpy(dst + 10 + got, "\r\n", 2);
				keep_tail(ex, dst + 10, got);
				buf_produced(o, got + 12);
			}
		} else {
			got = upstream_read_body(u, dst, room, now_ms);
			keep_tail(ex, dst, got);
			buf_produced(o, got);
		}
		if (got == 0 && u->state == UPSTREAM_BODY) {
			break;
		}
	}
	if (sc->state != SERVER_CLOSED) {
		(void)server_flush(sc, now_ms);
	}
}

/* Pump until the client socket or the upstream has nothing more to give.
 * A round that empties out while body bytes are still buffered here (or
 * decrypted inside TLS) must go again: no poll() event would come for
 * bytes that already left their sockets. */
static void
pump(struct exchange *ex, uint64_t now_ms)
{
	struct server_conn *sc = ex->sc;
	int rounds = 0;

	for (;;) {
		struct upstream *u;

		pump_once(ex, now_ms);
		if (sc->state != SERVER_BUSY || ex->up == NULL ||
		    buf_len(&sc->out) > 0 || ++rounds > 64) {
			return;
		}
		u = ex->up;
		if (buf_len(&u->in) == 0 && u->state == UPSTREAM_BODY &&
		    !(ex->sse && ex->ev_len > 0) && !upstream_tls_buffered(u)) {
			return;
		}
	}
}

static void
on_upstream_head(struct exchange *ex, uint64_t now_ms)
{
	struct upstream *u = ex->up;
	const struct http_response *r = &u->resp;
	enum route_outcome o = route_classify(r->status);
	size_t prov = ex->model->routes[ex->route].provider;

	if (o != ROUTE_OK) {
		struct view ra = find_header(r->headers, r->nheaders,
		    "retry-after");
		uint64_t retry_ms = 0, secs;

		if (ra.n > 0 && util_parse_u64(ra.p, ra.n, &secs) == 0 &&
		    secs < 86400) {
			retry_ms = secs * 1000;
		}
		if (ex->cred != (size_t)-1) {
			route_report(&ex->gen->routes, prov, ex->cred, o,
			    retry_ms, now_ms);
		}
		attempt_note(ex, "%s key %s: %d %.*s",
		    ex->model->routes[ex->route].text, cred_label(ex),
		    r->status, (int)(r->reason.n > 60 ? 60 : r->reason.n),
		    r->reason.p);
		log_info("%s attempt %u %s key %s: %d (%llu ms)",
		    ex->sc->req.id, ex->attempts,
		    ex->model->routes[ex->route].text, cred_label(ex),
		    r->status, (unsigned long long)(now_ms - ex->attempt_ms));
		drop_upstream(ex);
		next_attempt(ex, now_ms, 0);
		return;
	}
	if (ex->cred != (size_t)-1) {
		route_report(&ex->gen->routes, prov, ex->cred, ROUTE_OK, 0,
		    now_ms);
	}
	if (forward_head(ex, now_ms) < 0) {
		break_stream(ex, "response head does not fit", now_ms);
		return;
	}
	upstream_start_body(u, now_ms);
	pump(ex, now_ms);
}

static void
on_upstream_failed(struct exchange *ex, uint64_t now_ms)
{
	struct upstream *u = ex->up;

	if (ex->head_sent) {
		pump(ex, now_ms);
		return;
	}
	if (u->reused && !u->got_bytes && !u->timed_out && !ex->fresh_retry) {
		/* A pooled connection the peer had already closed: not the
		 * candidate's fault, try once more on a new connection. */
		drop_upstream(ex);
		ex->fresh_retry = 1;
		next_attempt(ex, now_ms, 1);
		ex->fresh_retry = 0;
		return;
	}
	attempt_note(ex, "%s key %s: %s", ex->model->routes[ex->route].text,
	    cred_label(ex), u->error);
	log_info("%s attempt %u %s key %s: %s (%llu ms)", ex->sc->req.id,
	    ex->attempts, ex->model->routes[ex->route].text, cred_label(ex),
	    u->error, (unsigned long long)(now_ms - ex->attempt_ms));
	drop_upstream(ex);
	next_attempt(ex, now_ms, 0);
}


static void
poll_free(struct task_poll *tp)
{
	size_t i;

	for (i = 0; i < P.npolls; i++) {
		if (P.polls[i] == tp) {
			P.polls[i] = P.polls[--P.npolls];
			break;
		}
	}
	if (tp->up != NULL) {
		tp->up->owner = NULL;
		tp->up->internal = 0;
		if (upstream_reusable(tp->up) && tp->up->conf == P.gen->conf &&
		    !got_term) {
			upstream_park(tp->up, clock_mono_ms());
		} else {
			upstream_close(tp->up);
		}
	}
	if (tp->head != NULL) {
		util_wipe(tp->head, tp->head_len);
		free(tp->head);
	}
	free(tp);
}

static void
poll_step(struct upstream *u, uint64_t now_ms)
{
	struct task_poll *tp = u->owner;

	switch (u->state) {
	case UPSTREAM_HEAD:
		tp->status = u->resp.status;
		if (tp->status < 200 || tp->status >= 300) {
			log_info("task %s: poll answered %d", tp->id,
			    tp->status);
			upstream_close(u);
			poll_free(tp);
			return;
		}
		upstream_start_body(u, now_ms);
		break;
	case UPSTREAM_FAILED:
		log_info("task %s: poll failed: %s", tp->id, u->error);
		upstream_close(u);
		poll_free(tp);
		return;
	default:
		break;
	}
	while (u->state == UPSTREAM_BODY) {
		char sink[4096];
		size_t room = sizeof(tp->body) - tp->body_len, got;

		if (room == 0) {
			tp->too_big = 1;
			got = upstream_read_body(u, sink, sizeof(sink), now_ms);
		} else {
			got = upstream_read_body(u, tp->body + tp->body_len,
			    room, now_ms);
			tp->body_len += got;
		}
		if (got == 0) {
			break;
		}
	}
	if (u->state == UPSTREAM_FAILED) {
		upstream_close(u);
		poll_free(tp);
	} else if (u->state == UPSTREAM_DONE) {
		if (!tp->too_big) {
			task_settle(ledger_task_find(&P.ledger, tp->id),
			    tp->conf, "relay-poll", tp->status, tp->body,
			    tp->body_len);
		}
		poll_free(tp);
	}
}

/* Start one poll of task t on its own credential. */
static void
poll_start(const struct ledger_task *t, uint64_t now_ms)
{
	const struct conf *c = P.gen->conf;
	const struct conf_model *m;
	const struct conf_provider *pv;
	const struct view *fixed;
	struct net_addr addrs[PROXY_MAX_ADDRS];
	struct task_poll *tp;
	struct upstream *u;
	struct iovec iov;
	size_t route, cred, prov, cap;
	char err[300];
	int naddr = 0, n;

	if (locate_task(c, t, &m, &route, &cred, err, sizeof(err)) < 0) {
		log_debug("task poll skipped: %s", err);
		return;
	}
	prov = m->routes[route].provider;
	pv = &c->providers[prov];
	u = take_idle(prov, c);
	if (u == NULL) {
		if (dns_lookup(&D, pv->host, (uint16_t)atoi(pv->port), now_ms,
		    addrs, PROXY_MAX_ADDRS, &naddr, err, sizeof(err)) !=
		    DNS_DONE || naddr == 0) {
			return;	/* next round */
		}
	}
	/* The Host, auth and header= lines: the generation's (gen_pieces). */
	fixed = &P.gen->fixed[prov][cred];
	tp = calloc(1, sizeof(*tp));
	cap = 128 + strlen(pv->path) + strlen(t->id) + fixed->n;
	if (tp == NULL || (tp->head = malloc(cap)) == NULL) {
		free(tp);
		return;
	}
	tp->conf = c;
	snprintf(tp->id, sizeof(tp->id), "%s", t->id);
	n = snprintf(tp->head, cap, "GET %s/contents/generations/tasks/%s "
	    "HTTP/1.1\r\n", pv->path, t->id);
	if (n < 0 || (size_t)n + fixed->n + 32 > cap) {
		poll_free(tp);
		return;
	}
	memcpy(tp->head + n, fixed->p, fixed->n);
	n += (int)fixed->n;
	n += snprintf(tp->head + n, cap - (size_t)n, "Content-Length: 0\r\n\r\n");
	tp->head_len = (size_t)n;
	if (u == NULL) {
		u = upstream_connect(&addrs[0], prov, c,
		    pv->https ? &P.gen->anchors : NULL, pv->host, now_ms, err,
		    sizeof(err));
		if (u == NULL || track_upstream(u) < 0) {
			if (u != NULL) {
				upstream_free(u);
			}
			poll_free(tp);
			return;
		}
	}
	tp->up = u;
	u->owner = tp;
	u->internal = 1;
	P.polls[P.npolls++] = tp;
	iov.iov_base = tp->head;
	iov.iov_len = tp->head_len;
	upstream_send(u, &iov, 1, (struct view){ "GET", 3 }, now_ms);
}

/* RELAY_TASK_POLL_MS overrides the poll period (tests); the first poll is
 * one period after start. */
static uint64_t
task_poll_first_ms(void)
{
	const char *e = getenv("RELAY_TASK_POLL_MS");
	uint64_t v;

	if (e != NULL && util_parse_u64(e, strlen(e), &v) == 0 && v > 0) {
		return v;
	}
	return TASK_POLL_MS;
}

/* Every TASK_POLL_MS: poll open tasks that no poll is already asking. */
static void
poll_tasks(uint64_t now_ms)
{
	const struct ledger_task *t;
	size_t cursor = 0, i;

	if (now_ms < P.next_poll_ms || got_term) {
		return;
	}
	P.next_poll_ms = now_ms + task_poll_first_ms();
	while (P.npolls < TASK_POLLS_MAX &&
	    (t = ledger_task_next_open(&P.ledger, &cursor)) != NULL) {
		for (i = 0; i < P.npolls; i++) {
			if (strcmp(P.polls[i]->id, t->id) == 0) {
				break;
			}
		}
		if (i == P.npolls) {
			poll_start(t, now_ms);
		}
	}
}

static void
after_upstream(struct upstream *u, uint64_t now_ms)
{
	struct exchange *ex = u->owner;
	struct server_conn *sc;

	if (ex == NULL) {
		return;
	}
	if (u->internal) {
		poll_step(u, now_ms);
		return;
	}
	sc = ex->sc;
	switch (u->state) {
	case UPSTREAM_FAILED:
		on_upstream_failed(ex, now_ms);
		break;
	case UPSTREAM_HEAD:
		on_upstream_head(ex, now_ms);
		break;
	case UPSTREAM_BODY:
	case UPSTREAM_DONE:
		pump(ex, now_ms);
		break;
	default:
		break;
	}
	/* The exchange may have ended: let the client side move on. */
	if (sc->state != SERVER_BUSY) {
		after_server(sc, now_ms);
	}
}

/* ---- requests ----------------------------------------------------------- */

/* Paths are compared with literals, lengths first. */
#define path_is(v, lit) \
	((v).n == sizeof(lit) - 1 && memcmp((v).p, (lit), sizeof(lit) - 1) == 0)
#define path_starts(v, lit) \
	((v).n >= sizeof(lit) - 1 && memcmp((v).p, (lit), sizeof(lit) - 1) == 0)

static int
is_local_get(const struct view p)
{
	return path_is(p, "/") || path_is(p, "/healthz") ||
	    path_is(p, "/metrics") || path_is(p, "/v1/models") ||
	    path_is(p, "/v1/wallet");
}

static const char *
wallet_name(const struct server_conn *sc)
{
	return sc->req.wallet >= 0 ? sc->conf->wallets[sc->req.wallet].name :
	    "default";
}

/* The caller's wallet from its key (SPEC §3: Bearer or x-api-key).
 * Returns 0, or -1 after answering 401. Open mode needs no key. */
static int
check_key(struct server_conn *sc, uint64_t now_ms)
{
	const struct http_request *h = &sc->req.head;
	struct view key = { NULL, 0 };
	unsigned char hash[32];

	if (conf_open_mode(sc->conf)) {
		return 0;
	}
	if (h->authorization.n > 7 &&
	    util_view_ieq((struct view){ h->authorization.p, 7 }, "Bearer ")) {
		key.p = h->authorization.p + 7;
		key.n = h->authorization.n - 7;
		key = util_view_trim(key);
	} else if (h->x_api_key.n > 0) {
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
	if (sc->key_len != 0 && key.n == sc->key_len &&
	    util_ct_equal(key.p, sc->key, key.n)) {
		sc->req.wallet = sc->key_wallet;
		return 0;
	}
	util_sha256(key.p, key.n, hash);
	sc->req.wallet = conf_find_wallet(sc->conf, hash);
	if (sc->req.wallet < 0) {
		server_error(sc, 401, "invalid_api_key", "unknown API key",
		    now_ms);
		return -1;
	}
	if (key.n <= sizeof(sc->key)) {
		memcpy(sc->key, key.p, key.n);
		sc->key_len = key.n;
		sc->key_wallet = sc->req.wallet;
	}
	return 0;
}

static int
check_admin(struct server_conn *sc, uint64_t now_ms)
{
	const struct http_request *h = &sc->req.head;
	unsigned char hash[32];
	struct view key;

	if (!sc->conf->has_admin_key) {
		server_error(sc, 403, "forbidden", "the admin API is off: set "
		    "admin_key in the config", now_ms);
		return -1;
	}
	if (h->authorization.n <= 7 ||
	    !util_view_ieq((struct view){ h->authorization.p, 7 }, "Bearer ")) {
		server_error(sc, 401, "invalid_api_key", "missing admin key",
		    now_ms);
		return -1;
	}
	key.p = h->authorization.p + 7;
	key.n = h->authorization.n - 7;
	key = util_view_trim(key);
	util_sha256(key.p, key.n, hash);
	if (!util_ct_equal(hash, sc->conf->admin_key_hash, 32)) {
		server_error(sc, 401, "invalid_api_key", "wrong admin key",
		    now_ms);
		return -1;
	}
	return 0;
}

/* "/admin/wallets/<name>/credit" -> name view, or an empty view. */
static struct view
credit_target(const struct view path)
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

/* Decide on the head alone: path, method, key (SPEC §7: 100 Continue only
 * once these are accepted). */
static void
on_head(struct server_conn *sc, uint64_t now_ms)
{
	const struct http_request *h = &sc->req.head;
	struct view path = sc->req.path;
	int get = util_view_eq(h->method, "GET");
	int post = util_view_eq(h->method, "POST");

	P.m_requests++;
	if (is_local_get(path)) {
		if (!get) {
			server_error(sc, 405, "method_not_allowed",
			    "use GET for this path", now_ms);
			return;
		}
		if (path_is(path, "/v1/wallet") && check_key(sc, now_ms) < 0) {
			return;
		}
		server_accept_head(sc, now_ms);
		return;
	}
	if (path_starts(path, "/admin/")) {
		if (credit_target(path).n == 0) {
			server_error(sc, 404, "not_found", "unknown path",
			    now_ms);
			return;
		}
		if (!post) {
			server_error(sc, 405, "method_not_allowed",
			    "use POST for this path", now_ms);
			return;
		}
		if (check_admin(sc, now_ms) == 0) {
			server_accept_head(sc, now_ms);
		}
		return;
	}
	if (!path_starts(path, "/v1/")) {
		server_error(sc, 404, "not_found", "unknown path", now_ms);
		return;
	}
	if (path_starts(path, TASKS_PATH "/") && (get ||
	    util_view_eq(h->method, "DELETE"))) {
		if (check_key(sc, now_ms) == 0) {
			server_accept_head(sc, now_ms);
		}
		return;
	}
	if (!post) {
		server_error(sc, 405, "method_not_allowed",
		    "use POST for this path", now_ms);
		return;
	}
	if (check_key(sc, now_ms) == 0) {
		server_accept_head(sc, now_ms);
	}
}

static void
serve_wallet(struct server_conn *sc, uint64_t now_ms)
{
	const struct conf *c = sc->conf;
	const char *w = wallet_name(sc);
	int64_t bal = ledger_balance(&P.ledger, w), today_nano = 0;
	int64_t *held = held_of(w);
	uint64_t requests = 0, usd_abs = 0, abs_bal;
	char today[16], b[MONEY_FMT_MAX], u[MONEY_FMT_MAX + 1], body[768];
	int n;

	clock_today(today, sizeof(today));
	ledger_today(&P.ledger, w, today, &today_nano, &requests);
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
	    (long long)(held ? *held : 0), (long long)today_nano,
	    (unsigned long long)requests);
	server_respond(sc, 200, "application/json", NULL, body, (size_t)n, 0,
	    now_ms);
}

static void
serve_credit(struct server_conn *sc, uint64_t now_ms)
{
	const struct conf *c = sc->conf;
	const char *body = sc->req.mem + sc->req.head_len;
	struct view target = credit_target(sc->req.path), amount, note;
	char name[128], note_s[128], err[256], out[300], b[MONEY_FMT_MAX];
	int64_t nano;
	long nl;
	size_t i;
	int n;

	snprintf(name, sizeof(name), "%.*s", (int)target.n, target.p);
	for (i = 0; i < c->nwallets; i++) {
		if (strcmp(c->wallets[i].name, name) == 0) {
			break;
		}
	}
	if (i == c->nwallets && !(conf_open_mode(c) &&
	    strcmp(name, "default") == 0)) {
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
		}
	}
	if (ledger_credit(&P.ledger, name, nano, note_s, err,
	    sizeof(err)) < 0) {
		server_error(sc, 500, "ledger_error", err, now_ms);
		return;
	}
	log_info("%s credit wallet=%s %s_nano=%lld", sc->req.id, name,
	    c->currency_lower, (long long)nano);
	money_format_trim(ledger_balance(&P.ledger, name), b, sizeof(b));
	n = snprintf(out, sizeof(out), "{\"wallet\":\"%s\",\"currency\":\"%s\","
	    "\"credited_nano\":%lld,\"balance\":\"%s\"}\n", name, c->currency,
	    (long long)nano, b);
	server_respond(sc, 200, "application/json", NULL, out, (size_t)n, 0,
	    now_ms);
}

static void
serve_local(struct server_conn *sc, uint64_t now_ms)
{
	struct gen *g = gen_of(sc->conf);
	struct view path = sc->req.path;

	if (path_is(path, "/healthz")) {
		server_respond(sc, 200, "application/json", NULL,
		    "{\"status\":\"ok\"}\n", 16, 1, now_ms);
	} else if (path_is(path, "/v1/models")) {
		server_respond(sc, 200, "application/json", NULL,
		    g->models_json, g->models_len, 1, now_ms);
	} else if (path_is(path, "/v1/wallet")) {
		serve_wallet(sc, now_ms);
	} else if (path_is(path, "/")) {
		server_respond(sc, 200, "text/html; charset=utf-8", NULL,
		    api_console_html, api_console_len, 1, now_ms);
	} else {
		char body[2048];
		size_t i, idle = 0;
		int n;

		for (i = 0; i < P.nups; i++) {
			idle += P.ups[i]->state == UPSTREAM_IDLE;
		}
		n = snprintf(body, sizeof(body),
		    "# TYPE relay_requests_total counter\n"
		    "relay_requests_total %llu\n"
		    "# TYPE relay_relayed_total counter\n"
		    "relay_relayed_total %llu\n"
		    "# TYPE relay_upstream_attempts_total counter\n"
		    "relay_upstream_attempts_total %llu\n"
		    "# TYPE relay_upstream_connects_total counter\n"
		    "relay_upstream_connects_total %llu\n"
		    "# TYPE relay_upstream_unavailable_total counter\n"
		    "relay_upstream_unavailable_total %llu\n"
		    "# TYPE relay_charges_total counter\n"
		    "relay_charges_total %llu\n"
		    "# TYPE relay_insufficient_balance_total counter\n"
		    "relay_insufficient_balance_total %llu\n"
		    "# TYPE relay_busy_rejections_total counter\n"
		    "relay_busy_rejections_total %llu\n"
		    "# TYPE relay_client_connections gauge\n"
		    "relay_client_connections %zu\n"
		    "# TYPE relay_upstream_connections gauge\n"
		    "relay_upstream_connections %zu\n"
		    "# TYPE relay_upstream_idle_connections gauge\n"
		    "relay_upstream_idle_connections %zu\n"
		    "# TYPE relay_ledger_lines_total counter\n"
		    "relay_ledger_lines_total %llu\n"
		    "# TYPE relay_ledger_writes_total counter\n"
		    "relay_ledger_writes_total %llu\n"
		    "# TYPE relay_ledger_fsyncs_total counter\n"
		    "relay_ledger_fsyncs_total %llu\n",
		    P.m_requests, P.m_relayed, P.m_attempts,
		    P.m_upstream_conns, P.m_errors_5xx, P.m_charges,
		    P.m_refused_402, P.m_busy, P.nconns,
		    P.nups, idle, (unsigned long long)P.ledger.lines,
		    (unsigned long long)P.ledger.writes,
		    (unsigned long long)P.ledger.fsyncs);
		if (n < 0 || (size_t)n >= sizeof(body)) {
			n = 0;	/* cannot happen with these formats */
		}
		server_respond(sc, 200, "text/plain; version=0.0.4", NULL,
		    body, (size_t)n, 0, now_ms);
	}
}

/* SPEC §6: hold the request's maximum cost before relaying; refuse it
 * when the wallet (minus running holds, plus overdraft) cannot cover it.
 * Single-threaded, so check and hold are one step under any concurrency. */
static int
take_hold(struct server_conn *sc, struct exchange *ex, uint64_t now_ms)
{
	const struct conf *c = sc->conf;
	const struct conf_model *m = ex->model;
	uint64_t usd, cur;
	int64_t *held, balance, overdraft = 0;
	char msg[400], b[MONEY_FMT_MAX], h[MONEY_FMT_MAX], need[MONEY_FMT_MAX];

	ex->wallet = wallet_name(sc);
	ex->est_in = sc->req.body_len / 4;
	ex->est_out = ex->jr.has_max_tokens ? ex->jr.max_tokens :
	    c->hold_max_tokens;
	if (money_cost_usd_nano(ex->est_in, m->in_nano_usd, ex->est_out,
	    m->out_nano_usd, &usd) < 0 ||
	    money_convert(usd, c->rate_num, c->rate_den, &cur) < 0 ||
	    cur > (uint64_t)INT64_MAX / 4) {
		cur = (uint64_t)INT64_MAX / 4;
	}
	held = held_of(ex->wallet);
	if (held == NULL) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return -1;
	}
	if (sc->req.wallet >= 0) {
		overdraft = (int64_t)c->wallets[sc->req.wallet].overdraft_nano;
		balance = ledger_balance(&P.ledger, ex->wallet);
		if (balance - *held - (int64_t)cur < -overdraft) {
			money_format(balance, 2, b, sizeof(b));
			money_format(*held, 2, h, sizeof(h));
			money_format((int64_t)cur, 2, need, sizeof(need));
			snprintf(msg, sizeof(msg), "wallet '%s' has %s %s "
			    "(%s held by running requests) and cannot cover "
			    "this request's hold of %s %s; top it up or lower "
			    "max_tokens", ex->wallet, b, c->currency, h, need,
			    c->currency);
			P.m_refused_402++;
			server_error(sc, 402, "insufficient_balance", msg,
			    now_ms);
			return -1;
		}
	}
	*held += (int64_t)cur;
	ex->hold_nano = (int64_t)cur;
	return 0;
}

/* Where a recorded task lives now: its model, route and credential by
 * label. Returns 0, or -1 with a reason. */
/* The request is checked and held: the exchange owns it from here, under
 * the `total` timeout. fresh: try ex->route and ex->cred as set (a task's
 * own provider and credential) instead of asking the route plan. */
static void
launch(struct server_conn *sc, struct exchange *ex,
    const struct conf_model *m, uint64_t now_ms, int fresh)
{
	ex->deadline_ms = now_ms + sc->conf->total_timeout_ms;
	route_plan_start(&ex->plan, m);
	sc->ex = ex;
	sc->state = SERVER_BUSY;
	sc->deadline_ms = 0;
	P.m_relayed++;
	next_attempt(ex, now_ms, fresh);
}

static int
locate_task(const struct conf *c, const struct ledger_task *t,
    const struct conf_model **mp, size_t *route, size_t *cred, char *err,
    size_t errlen)
{
	const struct conf_model *m = conf_find_model(c, t->model,
	    strlen(t->model));
	const struct conf_provider *pv;
	size_t i;

	if (m == NULL) {
		snprintf(err, errlen, "model '%s' of task %s is no longer "
		    "configured", t->model, t->id);
		return -1;
	}
	for (i = 0; i < m->nroutes && strcmp(m->routes[i].text, t->route);
	    i++) {
	}
	if (i == m->nroutes) {
		snprintf(err, errlen, "route %s of task %s is no longer "
		    "configured", t->route, t->id);
		return -1;
	}
	*route = i;
	pv = &c->providers[m->routes[i].provider];
	for (i = 0; i < pv->ncreds && strcmp(pv->creds[i].label, t->cred);
	    i++) {
	}
	if (i == pv->ncreds) {
		snprintf(err, errlen, "credential %s of task %s is no longer "
		    "configured", t->cred, t->id);
		return -1;
	}
	*cred = i;
	*mp = m;
	return 0;
}

/* GET or DELETE of a task: to the provider and credential that made it. */
static void
start_task_request(struct server_conn *sc, uint64_t now_ms)
{
	struct view idv = { sc->req.path.p + sizeof(TASKS_PATH),
	    sc->req.path.n - sizeof(TASKS_PATH) };
	const struct ledger_task *t;
	const struct conf_model *m;
	struct exchange *ex;
	char id[TASK_ID_MAX], err[300];
	size_t route, cred;

	if (idv.n == 0 || idv.n >= sizeof(id) || memchr(idv.p, '/', idv.n)) {
		server_error(sc, 404, "not_found", "unknown task", now_ms);
		return;
	}
	memcpy(id, idv.p, idv.n);
	id[idv.n] = '\0';
	t = ledger_task_find(&P.ledger, id);
	if (t == NULL || strcmp(t->wallet, wallet_name(sc)) != 0) {
		/* Another wallet's task is as unknown as a made-up one. */
		server_error(sc, 404, "not_found", "unknown task", now_ms);
		return;
	}
	if (locate_task(sc->conf, t, &m, &route, &cred, err,
	    sizeof(err)) < 0) {
		server_error(sc, 503, "upstream_unavailable", err, now_ms);
		return;
	}
	ex = exchange_get(sc);
	if (ex == NULL) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return;
	}
	ex->sc = sc;
	ex->gen = gen_of(sc->conf);
	ex->model = m;
	ex->pinned = 1;
	ex->no_charge = 1;
	ex->route = route;
	ex->cred = cred;
	ex->wallet = wallet_name(sc);
	snprintf(ex->task_id, sizeof(ex->task_id), "%s", id);
	launch(sc, ex, m, now_ms, 1);
}

static void
start_relay(struct server_conn *sc, uint64_t now_ms)
{
	struct gen *g = gen_of(sc->conf);
	const char *body = sc->req.mem + sc->req.head_len;
	struct json_request jr;
	char alias[256];
	long alias_len;
	const struct conf_model *m;
	struct exchange *ex;
	int r;

	if (path_starts(sc->req.path, TASKS_PATH "/") &&
	    !util_view_eq(sc->req.head.method, "POST")) {
		start_task_request(sc, now_ms);
		return;
	}
	r = json_scan_request(body, sc->req.body_len, &jr);
	if (r == JSON_INVALID || r == JSON_NOT_OBJECT) {
		server_error(sc, 400, "invalid_json", r == JSON_INVALID ?
		    "the request body is not valid JSON" :
		    "the request body must be a JSON object", now_ms);
		return;
	}
	if (r == JSON_NOMEM) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return;
	}
	if (r == JSON_NO_MODEL) {
		server_error(sc, 400, "missing_model",
		    "the request body has no \"model\" string", now_ms);
		return;
	}
	alias_len = json_unescape(jr.model, alias, sizeof(alias));
	if (alias_len < 0) {
		server_error(sc, 404, "model_not_found", "unknown model",
		    now_ms);
		return;
	}
	m = conf_find_model(sc->conf, alias, (size_t)alias_len);
	if (m == NULL) {
		char close_to[200], msg[512], shown[64];

		api_close_aliases(sc->conf, alias, close_to, sizeof(close_to));
		snprintf(shown, sizeof(shown), "%.60s", alias);
		snprintf(msg, sizeof(msg), "unknown model '%s'%s%s%s", shown,
		    close_to[0] ? " (did you mean " : "", close_to,
		    close_to[0] ? "?)" : "; GET /v1/models lists them");
		server_error(sc, 404, "model_not_found", msg, now_ms);
		return;
	}
	ex = exchange_get(sc);
	if (ex == NULL) {
		server_error(sc, 503, "server_busy", "out of memory", now_ms);
		return;
	}
	ex->sc = sc;
	ex->gen = g;
	ex->model = m;
	ex->jr = jr;
	if (take_hold(sc, ex, now_ms) < 0) {
		exchange_put(ex);
		return;
	}
	/* Creating a video task is charged when the task succeeds, not now. */
	ex->task_create = util_view_eq(sc->req.path, TASKS_PATH);
	ex->no_charge = ex->task_create;
	launch(sc, ex, m, now_ms, 0);
}

static void
after_server(struct server_conn *sc, uint64_t now_ms)
{
	for (;;) {
		enum server_state before = sc->state;

		switch (sc->state) {
		case SERVER_HEAD_READY:
			on_head(sc, now_ms);
			break;
		case SERVER_BODY_READY:
			if (is_local_get(sc->req.path)) {
				serve_local(sc, now_ms);
			} else if (path_starts(sc->req.path, "/admin/")) {
				serve_credit(sc, now_ms);
			} else {
				start_relay(sc, now_ms);
			}
			break;
		case SERVER_BUSY:
			if (sc->ex != NULL && sc->ex->up != NULL &&
			    sc->ex->head_sent) {
				pump(sc->ex, now_ms);
			}
			if (sc->state == SERVER_BUSY) {
				return;
			}
			break;
		case SERVER_DRAIN:
			break;
		case SERVER_CLOSED:
			end_exchange(sc);
			return;
		default:
			return;
		}
		if (sc->state == SERVER_CLOSED) {
			end_exchange(sc);
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

/* ---- accept ------------------------------------------------------------- */

static void
accept_ready(int lfd, const struct tls_server_cert *cert, uint64_t now_ms)
{
	const struct conf *c = P.gen->conf;
	int budget = 64;

	while (budget-- > 0) {
		int fd = net_accept(lfd);
		struct server_conn *sc;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: the pending connection
				 * stays queued and the listener stays readable.
				 * Stop polling it for a moment instead of
				 * spinning; the others keep being served. */
				log_warn("accept: %s; pausing accepts for %d ms",
				    strerror(errno), ACCEPT_PAUSE_MS);
				P.accept_paused_until = now_ms +
				    ACCEPT_PAUSE_MS;
			}
			return;
		}
		if (P.nconns >= c->max_conns) {
			static const char busy[] =
			    "HTTP/1.1 503 Service Unavailable\r\n"
			    "Content-Type: application/json\r\n"
			    "Content-Length: 105\r\nRetry-After: 1\r\n"
			    "Connection: close\r\n\r\n"
			    "{\"error\":{\"message\":\"too many open "
			    "connections\",\"type\":\"server_error\",\"code\":"
			    "\"server_busy\"}}\n";
			ssize_t w;

			P.m_busy++;
			w = write(fd, busy, sizeof(busy) - 1);
			(void)w;
			if (P.nrejects < sizeof(P.reject_fd) /
			    sizeof(P.reject_fd[0])) {
				shutdown(fd, SHUT_WR);
				P.reject_fd[P.nrejects] = fd;
				P.reject_until[P.nrejects++] = now_ms + 1000;
			} else {
				close(fd);
			}
			continue;
		}
		if (P.nconns == P.conns_cap &&
		    grow((void **)&P.conns, &P.conns_cap,
		    sizeof(*P.conns)) < 0) {
			close(fd);
			return;
		}
		sc = server_new(fd, ++P.next_conn_id, c, cert, now_ms);
		if (sc == NULL) {
			close(fd);
			return;
		}
		P.conns[P.nconns++] = sc;
		P.gen->refs++;
	}
}

/* ---- the loop ----------------------------------------------------------- */

static int
ensure_pfds(size_t n)
{
	if (n <= P.pcap) {
		return 0;
	}
	n = n * 2;
	{
		struct pollfd *pf = realloc(P.pfds, n * sizeof(*pf));
		void **po;
		unsigned char *pk;

		if (pf == NULL) {
			return -1;
		}
		P.pfds = pf;
		po = realloc(P.powner, n * sizeof(*po));
		if (po == NULL) {
			return -1;
		}
		P.powner = po;
		pk = realloc(P.pkind, n);
		if (pk == NULL) {
			return -1;
		}
		P.pkind = pk;
	}
	P.pcap = n;
	return 0;
}

static uint64_t
conn_deadline(const struct server_conn *sc)
{
	uint64_t d = sc->deadline_ms;

	if (sc->ex != NULL && (d == 0 || sc->ex->deadline_ms < d)) {
		d = sc->ex->deadline_ms;
	}
	return d;
}

static void
sweep(void)
{
	size_t i, j;

	for (i = 0, j = 0; i < P.nconns; i++) {
		struct server_conn *sc = P.conns[i];

		if (sc->state == SERVER_CLOSED) {
			end_exchange(sc);
			gen_release(sc->conf);
			exchange_free(sc->spare_ex);
			server_free(sc);
			continue;
		}
		P.conns[j++] = sc;
	}
	P.nconns = j;
	for (i = 0, j = 0; i < P.nups; i++) {
		struct upstream *u = P.ups[i];

		if (u->state == UPSTREAM_CLOSED) {
			const struct conf *c = u->conf;

			upstream_free(u);
			gen_release(c);
			continue;
		}
		P.ups[j++] = u;
	}
	P.nups = j;
}

/* Exchanges waiting for DNS try again once an answer (or failure) came. */
static void
resume_resolving(uint64_t now_ms)
{
	static unsigned seen;
	unsigned g;
	size_t i, n;

	dns_step(&D, now_ms);
	g = dns_generation(&D);
	if (g == seen) {
		return;
	}
	seen = g;
	n = P.nconns;
	for (i = 0; i < n; i++) {
		struct server_conn *sc = P.conns[i];

		if (sc->state == SERVER_BUSY && sc->ex != NULL &&
		    sc->ex->resolving && sc->ex->up == NULL) {
			next_attempt(sc->ex, now_ms, 1);
			if (sc->state != SERVER_BUSY) {
				after_server(sc, now_ms);
			}
		}
	}
}

static void
sweep_rejects(uint64_t now_ms)
{
	size_t i, j;

	for (i = 0, j = 0; i < P.nrejects; i++) {
		if (P.reject_fd[i] >= 0 && P.reject_until[i] <= now_ms) {
			close(P.reject_fd[i]);
			P.reject_fd[i] = -1;
		}
		if (P.reject_fd[i] >= 0) {
			P.reject_fd[j] = P.reject_fd[i];
			P.reject_until[j++] = P.reject_until[i];
		}
	}
	P.nrejects = j;
}

static void
handle_timeouts(uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < P.nups; i++) {
		struct upstream *u = P.ups[i];

		if (u->deadline_ms != 0 && u->deadline_ms <= now_ms &&
		    u->state != UPSTREAM_CLOSED) {
			upstream_timeout(u, now_ms);
			after_upstream(u, now_ms);
		}
	}
	for (i = 0; i < P.nconns; i++) {
		struct server_conn *sc = P.conns[i];
		struct exchange *ex = sc->ex;

		if (sc->state == SERVER_CLOSED) {
			continue;
		}
		if (ex != NULL && ex->deadline_ms <= now_ms) {
			if (ex->head_sent) {
				break_stream(ex, "total timeout reached",
				    now_ms);
			} else {
				if (ex->up != NULL) {
					attempt_note(ex, "%s key %s: total "
					    "timeout of %llu ms reached",
					    ex->model->routes[ex->route].text,
					    cred_label(ex), (unsigned long long)
					    sc->conf->total_timeout_ms);
				}
				fail_all(ex, now_ms);
			}
			after_server(sc, now_ms);
			continue;
		}
		if (sc->deadline_ms != 0 && sc->deadline_ms <= now_ms) {
			server_timeout(sc, now_ms);
			after_server(sc, now_ms);
		}
	}
}

static void
reload(void)
{
	char err[1024];
	struct conf *c;
	struct gen *g;
	size_t i;

	c = P.config_path ? conf_load(P.config_path, err, sizeof(err)) :
	    conf_load_default(err, sizeof(err));
	if (c == NULL) {
		log_error("reload refused, keeping the running config: %s",
		    err);
		return;
	}
	g = gen_new(c);
	if (g == NULL) {
		conf_free(c);
		log_error("reload refused: out of memory");
		return;
	}
	route_table_inherit(&g->routes, c, &P.gen->routes, P.gen->conf);
	/* A resumed session skips certificate checks: new anchors, new
	 * sessions. */
	tls_sessions_forget();
	g->next = P.gen;
	P.gen = g;
	/* Parked connections belong to the old config: let them go. */
	for (i = 0; i < P.nups; i++) {
		if (P.ups[i]->state == UPSTREAM_IDLE) {
			upstream_close(P.ups[i]);
		}
	}
	/* The old generation dies once its last connection does. */
	g->refs++;
	gen_release(g->next->conf);
	g->refs--;
	log_info("config reloaded: %zu models, %zu providers (listeners "
	    "unchanged)", c->nmodels, c->nproviders);
}

static int
open_listeners(const struct conf *c)
{
	size_t i;

	P.lfds = calloc(c->nlistens ? c->nlistens : 1, sizeof(*P.lfds));
	P.lcerts = calloc(c->nlistens ? c->nlistens : 1, sizeof(*P.lcerts));
	if (P.lfds == NULL || P.lcerts == NULL) {
		return -1;
	}
	P.ncerts = c->nlistens;
	for (i = 0; i < c->nlistens; i++) {
		const struct conf_listen *l = &c->listens[i];
		struct net_addr a;
		char err[256];
		int fd;

		if (l->tls) {
			P.lcerts[P.nlfds] = calloc(1, sizeof(**P.lcerts));
			if (P.lcerts[P.nlfds] == NULL ||
			    tls_server_cert_load(P.lcerts[P.nlfds],
			    l->cert_path, l->key_path, err, sizeof(err)) < 0) {
				log_error("%s:%d: %s", c->source, l->line,
				    P.lcerts[P.nlfds] ? err : "out of memory");
				free(P.lcerts[P.nlfds]);
				P.lcerts[P.nlfds] = NULL;
				return -1;
			}
		}
		if (net_resolve(l->host, l->port, &a, 1, err, sizeof(err)) <
		    0) {
			log_error("listen %s:%s: %s", l->host, l->port, err);
			return -1;
		}
		fd = net_listen(&a);
		if (fd < 0) {
			log_error("listen %s:%s: %s", l->host, l->port,
			    strerror(errno));
			return -1;
		}
		P.lfds[P.nlfds++] = fd;
		log_info("listening on %s://%s%s%s:%d", l->tls ? "https" : "http",
		    strchr(l->host, ':') ? "[" : "", l->host,
		    strchr(l->host, ':') ? "]" : "", net_local_port(fd));
	}
	return 0;
}

int
proxy_run(struct conf *conf, const char *config_path,
    int allow_broken_ledger)
{
	struct sigaction sa;
	uint64_t drain_until = 0;
	size_t i;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	/* max_conns client sockets plus their upstreams need descriptors:
	 * take the hard limit the system allows. */
	{
		struct rlimit rl;

		if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
		    rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			(void)setrlimit(RLIMIT_NOFILE, &rl);
		}
	}
	P.config_path = config_path;
	P.gen = gen_new(conf);
	if (P.gen == NULL) {
		log_error("out of memory");
		conf_free(conf);
		return 1;
	}
	P.gen->refs++;	/* the current generation is held by the loop */
	{
		char err[512], today[16];

		if (dns_init(&D, NULL, NULL, err, sizeof(err)) < 0) {
			log_error("%s", err);
			return 1;
		}

		clock_today(today, sizeof(today));
		if (ledger_open(&P.ledger, conf->ledger_path, conf->ledger_sync,
		    conf->currency_lower, today, allow_broken_ledger, err,
		    sizeof(err)) < 0) {
			log_error("%s", err);
			return 1;
		}
		for (i = 0; i < conf->nwallets; i++) {
			(void)ledger_add_wallet(&P.ledger,
			    conf->wallets[i].name);
		}
		if (ledger_group(&P.ledger) < 0) {
			log_warn("ledger: no memory for group commit; every "
			    "charge line is written on its own");
		}
	}
	if (open_listeners(conf) < 0) {
		ledger_close(&P.ledger);
		return 1;
	}
	P.next_poll_ms = clock_mono_ms() + task_poll_first_ms();
	log_info("relay %s serving %zu models from %s%s", RELAY_VERSION,
	    conf->nmodels, conf->source, conf_open_mode(conf) ?
	    " (open mode: no wallet, no key needed)" : "");

	for (;;) {
		uint64_t now_ms = clock_mono_ms(), nearest = 0;
		size_t n = 0;
		int timeout, rc, check_hangups, skipped = 0;

		if (got_hup) {
			got_hup = 0;
			reload();
		}
		if (got_term && drain_until == 0) {
			log_info("stopping: no new connections, draining %zu",
			    P.nconns);
			for (i = 0; i < P.nlfds; i++) {
				close(P.lfds[i]);
			}
			P.nlfds = 0;
			drain_until = now_ms + PROXY_DRAIN_MS;
			/* Idle keep-alive clients have nothing in flight. */
			for (i = 0; i < P.nconns; i++) {
				if (P.conns[i]->state == SERVER_READ_HEAD &&
				    !P.conns[i]->got_bytes) {
					server_close(P.conns[i], "shutdown");
				}
			}
			sweep();
		}
		if (drain_until != 0 && (P.nconns == 0 ||
		    now_ms >= drain_until)) {
			break;
		}
		if (ensure_pfds(P.nlfds + P.nconns + P.nups + P.nrejects + 3) < 0) {
			log_error("out of memory for the poll set");
			break;
		}
		if (P.accept_paused_until != 0 &&
		    now_ms >= P.accept_paused_until) {
			P.accept_paused_until = 0;
		}
		for (i = 0; i < P.nlfds; i++) {
			P.pfds[n].fd = P.lfds[i];
			P.pfds[n].events = P.accept_paused_until ? 0 : POLLIN;
			P.pkind[n] = KIND_LISTEN;
			P.powner[n++] = NULL;
		}
		if (P.accept_paused_until != 0) {
			nearest = P.accept_paused_until;
		}
		/* A client whose request is with an upstream has nothing to
		 * say until its answer is written; it is polled only to see
		 * it hang up. The kernel polls every socket of the set on
		 * every pass, and under load half the sockets are in this
		 * state (busy clients, or pooled upstreams while their
		 * clients send the next request), so they join the set once
		 * every PROXY_HANGUP_CHECK_MS: an abandoned upstream request
		 * is closed that much later, and a write to a client that
		 * has gone still fails at once. */
		check_hangups = now_ms >= P.hangup_check_ms;
		if (check_hangups) {
			P.hangup_check_ms = now_ms + PROXY_HANGUP_CHECK_MS;
		}
		for (i = 0; i < P.nconns; i++) {
			struct server_conn *sc = P.conns[i];
			uint64_t d = conn_deadline(sc);
			short ev = server_interest(sc);

			if (sc->state == SERVER_BUSY && ev == POLLIN &&
			    !check_hangups && !server_tls_buffered(sc)) {
				skipped = 1;
				if (d != 0 && (nearest == 0 || d < nearest)) {
					nearest = d;
				}
				continue;
			}
			P.pfds[n].fd = sc->fd;
			P.pfds[n].events = ev;
			if (server_tls_buffered(sc)) {
				nearest = now_ms;	/* do not wait */
			}
			P.pkind[n] = KIND_SERVER;
			P.powner[n++] = sc;
			if (d != 0 && (nearest == 0 || d < nearest)) {
				nearest = d;
			}
		}
		for (i = 0; i < P.nups; i++) {
			struct upstream *u = P.ups[i];
			short ev = upstream_interest(u);

			/* Pooled connections, likewise, are polled only to
			 * see the provider close them; one closed in between
			 * checks is retried on a new connection when reused
			 * (on_upstream_failed). */
			if (u->state == UPSTREAM_IDLE && ev == POLLIN &&
			    !check_hangups && !upstream_tls_buffered(u)) {
				skipped = 1;
				if (u->deadline_ms != 0 && (nearest == 0 ||
				    u->deadline_ms < nearest)) {
					nearest = u->deadline_ms;
				}
				continue;
			}
			P.pfds[n].fd = u->fd;
			P.pfds[n].events = ev;
			if (upstream_tls_buffered(u)) {
				nearest = now_ms;	/* do not wait */
			}
			P.pkind[n] = KIND_UPSTREAM;
			P.powner[n++] = u;
			if (u->deadline_ms != 0 && (nearest == 0 ||
			    u->deadline_ms < nearest)) {
				nearest = u->deadline_ms;
			}
		}
		for (i = 0; i < P.nrejects; i++) {
			P.pfds[n].fd = P.reject_fd[i];
			P.pfds[n].events = POLLIN;
			P.pkind[n] = KIND_REJECT;
			P.powner[n++] = &P.reject_fd[i];
			if (nearest == 0 || P.reject_until[i] < nearest) {
				nearest = P.reject_until[i];
			}
		}
		{
			int k = dns_fds(&D, P.pfds + n, 2), j;
			uint64_t dd = dns_deadline(&D);

			for (j = 0; j < k; j++) {
				P.pkind[n] = KIND_DNS;
				P.powner[n++] = NULL;
			}
			if (dd != 0 && (nearest == 0 || dd < nearest)) {
				nearest = dd;
			}
		}
		if (P.next_poll_ms != 0 && (nearest == 0 ||
		    P.next_poll_ms < nearest)) {
			nearest = P.next_poll_ms;
		}
		{
			uint64_t due = ledger_tick_due_ms(&P.ledger);

			if (due != UINT64_MAX && (nearest == 0 ||
			    due < nearest)) {
				nearest = due;
			}
		}
		if (drain_until != 0 && (nearest == 0 || drain_until < nearest)) {
			nearest = drain_until;
		}
		if (skipped && (nearest == 0 || P.hangup_check_ms < nearest)) {
			nearest = P.hangup_check_ms;
		}
		timeout = -1;
		if (P.held_conns != NULL || ledger_pending(&P.ledger) > 0) {
			nearest = now_ms;	/* held answers: do not sleep */
		}
		if (nearest != 0) {
			timeout = nearest <= now_ms ? 0 :
			    (nearest - now_ms > 60000 ? 60000 :
			    (int)(nearest - now_ms));
		}
		rc = poll(P.pfds, (nfds_t)n, timeout);
		if (rc < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			break;
		}
		now_ms = clock_mono_ms();
		for (i = 0; rc >= 0 && i < n; i++) {
			short re = P.pfds[i].revents;

			/* TLS may hold decrypted bytes the socket no longer
			 * announces: treat those as readable. */
			if (re == 0 && P.pkind[i] == KIND_UPSTREAM &&
			    upstream_tls_buffered(P.powner[i])) {
				re = POLLIN;
			} else if (re == 0 && P.pkind[i] == KIND_SERVER &&
			    server_tls_buffered(P.powner[i])) {
				re = POLLIN;
			}
			if (re == 0) {
				continue;
			}
			switch (P.pkind[i]) {
			case KIND_LISTEN:
				if (!got_term) {
					accept_ready(P.pfds[i].fd,
					    P.lcerts[i], now_ms);
				}
				break;
			case KIND_SERVER: {
				struct server_conn *sc = P.powner[i];

				if (sc->state == SERVER_CLOSED) {
					break;
				}
				server_step(sc, re, now_ms);
				after_server(sc, now_ms);
				break;
			}
			case KIND_REJECT: {
				int *fdp = P.powner[i];
				char sink[4096];
				ssize_t r = read(*fdp, sink, sizeof(sink));

				if (r <= 0 && !(r < 0 && errno == EAGAIN)) {
					close(*fdp);
					*fdp = -1;
				}
				break;
			}
			case KIND_UPSTREAM: {
				struct upstream *u = P.powner[i];

				if (u->state == UPSTREAM_CLOSED) {
					break;
				}
				upstream_step(u, re, now_ms);
				after_upstream(u, now_ms);
				break;
			}
			}
		}
		resume_resolving(now_ms);
		poll_tasks(now_ms);
		handle_timeouts(now_ms);
		commit_charges(now_ms, rc);
		sweep();
		sweep_rejects(now_ms);
		ledger_tick(&P.ledger, now_ms);
	}
	while (P.npolls > 0) {
		poll_free(P.polls[0]);
	}
	for (i = 0; i < P.nconns; i++) {
		end_exchange(P.conns[i]);
		exchange_free(P.conns[i]->spare_ex);
		server_free(P.conns[i]);
	}
	for (i = 0; i < P.nups; i++) {
		upstream_free(P.ups[i]);
	}
	for (i = 0; i < P.nlfds; i++) {
		close(P.lfds[i]);
	}
	if (P.lcerts != NULL) {
		for (i = 0; i < P.ncerts; i++) {
			if (P.lcerts[i] != NULL) {
				tls_server_cert_free(P.lcerts[i]);
				free(P.lcerts[i]);
			}
		}
	}
	free(P.lcerts);
	for (i = 0; i < P.nrejects; i++) {
		close(P.reject_fd[i]);
	}
	while (P.gen != NULL) {
		struct gen *g = P.gen;

		P.gen = g->next;
		gen_free(g);
	}
	free(P.conns);
	free(P.ups);
	free(P.pfds);
	free(P.powner);
	free(P.pkind);
	free(P.lfds);
	ledger_close(&P.ledger);
	dns_free(&D);
	for (i = 0; i < P.nheld; i++) {
		free(P.held[i].name);
	}
	free(P.held);
	log_info("stopped");
	return 0;
}
