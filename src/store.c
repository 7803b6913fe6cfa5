/* store: the shared store's client in the event loop (see store.h).
 *
 * One connection and one queue. Each attempt to connect writes its
 * handshake (AUTH, SELECT, SCRIPT LOAD of every script) into the output
 * buffer first; calls submitted meanwhile are written after it, so they
 * leave as soon as the socket is connected and the server runs them in
 * that order. Every command written has an entry in the queue (a ring),
 * and each reply answers the oldest entry. The queue's oldest entry
 * carries the earliest deadline, so one comparison per pass finds a
 * store that stopped answering.
 *
 * What it does not do: retry a call (whether a failed call ran is
 * unknown; billing.c decides, using the scripts' idempotence), TLS (a
 * later step), RESP3, Redis Cluster redirections (the keys of a wallet
 * share a hash tag for that later step).
 *
 * Ownership: the buffers, the queue and the copy of the password are
 * the module's (freed and wiped by store_close()); the calls are the
 * caller's, only linked here. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bearssl.h"
#include "conf.h"
#include "dns.h"
#include "log.h"
#include "net.h"
#include "resp.h"
#include "store.h"
#include "util.h"

enum {
	OUT_CAP = 131072,	/* commands not yet written (EVAL of a
				 * script after NOSCRIPT is ~7 KiB) */
	IN_CAP = 65536,		/* replies not yet parsed (a reply is
				 * small: at most 8 short fields) */
	NODES = 64,
	KEY_MAX = 256
};

enum state {
	S_OFF,			/* store_open() not called */
	S_DOWN,			/* waiting until retry_at to connect */
	S_RESOLVING,		/* waiting for the resolver */
	S_CONNECTING,		/* connect in progress */
	S_OPEN			/* connected (the handshake may still run) */
};

enum kind { K_AUTH, K_SELECT, K_LOAD, K_CALL };

struct entry {
	struct store_call *call;	/* K_CALL: borrowed */
	unsigned char kind;		/* enum kind */
	unsigned char script;		/* K_LOAD: which */
	uint64_t deadline_ms;		/* its reply by then */
};

static struct {
	enum state state;
	int fd;
	struct dns *dns;		/* borrowed, or NULL */
	char url[300];			/* for logs */
	char host[256], port[8];
	char prefix[80];
	unsigned db;
	char *password;			/* owned (wiped), or NULL */
	uint64_t timeout_ms;
	char sha[STORE_NSCRIPTS][41];	/* hex SHA-1 of each script */
	char *out;			/* owned, OUT_CAP */
	size_t out_off, out_len;	/* unsent bytes: out[off..len) */
	size_t secret_end;		/* out[0..secret_end) holds AUTH:
					 * wiped once sent */
	char *in;			/* owned, IN_CAP */
	size_t in_len;
	struct resp_parser ps;
	struct resp_node nodes[NODES];
	struct entry q[STORE_QUEUE_MAX];
	size_t qhead, qn;
	size_t handshake;		/* handshake replies still awaited */
	uint64_t conn_deadline_ms;	/* connect (or resolve) by then */
	uint64_t retry_at_ms;		/* S_DOWN: next attempt */
	uint64_t backoff_ms;
	int up;				/* the last handshake completed */
	int down_logged;		/* this outage was logged */
	struct store_call *done, *done_tail;
} S;	/* zero (in .bss, not the binary): S_OFF holds no descriptor; fd
	 * is set to -1 by store_open() */

static void go_down(const char *why, uint64_t now_ms);

/* The hex SHA-1 of each script: EVALSHA's name for it. */
static void
hash_scripts(void)
{
	br_sha1_context ctx;
	unsigned char h[20];
	size_t k, n;

	for (k = 0; k < STORE_NSCRIPTS; k++) {
		const char *lua = store_script_lua((enum store_script)k, &n);

		br_sha1_init(&ctx);
		br_sha1_update(&ctx, lua != NULL ? lua : "", lua != NULL ? n :
		    0);
		br_sha1_out(&ctx, h);
		util_hex(h, 20, S.sha[k]);
	}
}

static void
finish_call(struct store_call *c, enum store_status st, const char *err)
{
	c->status = st;
	if (err != NULL) {
		snprintf(c->err, sizeof c->err, "%s", err);
	}
	c->next = NULL;
	if (S.done_tail != NULL) {
		S.done_tail->next = c;
	} else {
		S.done = c;
	}
	S.done_tail = c;
}

static int
push(enum kind k, struct store_call *c, unsigned script, uint64_t now_ms)
{
	struct entry *e;

	if (S.qn == STORE_QUEUE_MAX) {
		return -1;
	}
	e = &S.q[(S.qhead + S.qn++) % STORE_QUEUE_MAX];
	e->kind = (unsigned char)k;
	e->call = c;
	e->script = (unsigned char)script;
	e->deadline_ms = now_ms + S.timeout_ms;
	return 0;
}

/* The free room at the end of out: *cap bytes. Sent bytes are dropped
 * first (once the AUTH command in them has been wiped). */
static char *
out_room(size_t *cap)
{
	if (S.out_off == S.out_len) {
		S.out_off = S.out_len = 0;
	} else if (S.out_off > 0 && S.secret_end == 0) {
		memmove(S.out, S.out + S.out_off, S.out_len - S.out_off);
		S.out_len -= S.out_off;
		S.out_off = 0;
	}
	*cap = OUT_CAP - S.out_len;
	return S.out + S.out_len;
}

/* A plain command (AUTH, SELECT, SCRIPT LOAD) into out. */
static int
put_plain(const struct view *argv, size_t argc)
{
	size_t cap;
	char *p = out_room(&cap);
	ssize_t n = resp_encode(p, cap, argv, argc);

	if (n < 0) {
		return -1;
	}
	S.out_len += (size_t)n;
	return 0;
}

/* The call c as EVALSHA (or EVAL with the script's text) into out. */
static int
put_call(const struct store_call *c, int eval)
{
	const struct store_script_def *d = &store_scripts[c->script];
	int has_id = c->script == STORE_HOLD || c->script == STORE_SETTLE ||
	    c->script == STORE_CREDIT;
	struct resp_cmd cmd;
	char key[KEY_MAX];
	size_t cap, k;
	char *p = out_room(&cap);
	int kn;
	ssize_t n;
	size_t len;
	const char *lua;

	resp_cmd_begin(&cmd, p, cap, 3 + STORE_NKEYS + d->nargs);
	if (eval) {
		if ((lua = store_script_lua(c->script, &len)) == NULL) {
			return -1;
		}
		resp_cmd_arg(&cmd, "EVAL", 4);
		resp_cmd_arg(&cmd, lua, len);
	} else {
		resp_cmd_arg(&cmd, "EVALSHA", 7);
		resp_cmd_arg(&cmd, S.sha[c->script], 40);
	}
	resp_cmd_u64(&cmd, STORE_NKEYS);
	for (k = 0; k < STORE_NKEYS; k++) {
		kn = store_key(key, sizeof key, S.prefix, c->wallet,
		    (enum store_key)k);
		if (kn < 0) {
			return -1;
		}
		resp_cmd_arg(&cmd, key, (size_t)kn);
	}
	for (k = 0; k < d->nargs && k < STORE_ARGS_MAX; k++) {
		if (k == 1 && has_id) {
			resp_cmd_arg(&cmd, c->id, strlen(c->id));
		} else {
			resp_cmd_i64(&cmd, c->arg[k]);
		}
	}
	if ((n = resp_cmd_end(&cmd)) < 0) {
		return -1;
	}
	S.out_len += (size_t)n;
	return 0;
}

/* Write what the socket takes of out. */
static void
flush(uint64_t now_ms)
{
	ssize_t w;

	while (S.state == S_OPEN && S.out_off < S.out_len) {
		w = send(S.fd, S.out + S.out_off, S.out_len - S.out_off,
		    MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			break;
		}
		if (w <= 0) {
			go_down(w < 0 ? strerror(errno) : "write failed",
			    now_ms);
			return;
		}
		S.out_off += (size_t)w;
	}
	if (S.secret_end != 0 && S.out_off >= S.secret_end) {
		util_wipe(S.out, S.secret_end);
		S.secret_end = 0;
	}
	if (S.out_off == S.out_len) {
		S.out_off = S.out_len = 0;
	}
}

/* The handshake of a new attempt, before any call. */
static int
put_handshake(uint64_t now_ms)
{
	struct view v[3];
	char db[12];
	size_t k;

	S.handshake = 0;
	if (S.password != NULL) {
		v[0] = (struct view){ "AUTH", 4 };
		v[1] = (struct view){ S.password, strlen(S.password) };
		if (put_plain(v, 2) < 0 || push(K_AUTH, NULL, 0, now_ms) < 0) {
			return -1;
		}
		S.secret_end = S.out_len;
		S.handshake++;
	}
	if (S.db != 0) {
		snprintf(db, sizeof db, "%u", S.db);
		v[0] = (struct view){ "SELECT", 6 };
		v[1] = (struct view){ db, strlen(db) };
		if (put_plain(v, 2) < 0 || push(K_SELECT, NULL, 0, now_ms) < 0) {
			return -1;
		}
		S.handshake++;
	}
	for (k = 0; k < STORE_NSCRIPTS; k++) {
		v[0] = (struct view){ "SCRIPT", 6 };
		v[1] = (struct view){ "LOAD", 4 };
		v[2].p = store_script_lua((enum store_script)k, &v[2].n);
		if (v[2].p == NULL || put_plain(v, 3) < 0 ||
		    push(K_LOAD, NULL, (unsigned)k, now_ms) < 0) {
			return -1;
		}
		S.handshake++;
	}
	return 0;
}

/* Close the connection, fail every call in flight, wait to reconnect. */
static void
go_down(const char *why, uint64_t now_ms)
{
	struct entry *e;
	char msg[200];

	snprintf(msg, sizeof msg, "store unreachable: %s", why);
	if (!S.down_logged) {
		log_warn("store %s: %s; requests that need it get 503 "
		    "store_unavailable until it is back (retrying)", S.url,
		    why);
		S.down_logged = 1;
	}
	if (S.fd >= 0) {
		close(S.fd);
		S.fd = -1;
	}
	while (S.qn > 0) {
		e = &S.q[S.qhead];
		S.qhead = (S.qhead + 1) % STORE_QUEUE_MAX;
		S.qn--;
		if (e->kind == K_CALL && e->call != NULL) {
			finish_call(e->call, STORE_FAILED, msg);
		}
	}
	S.qhead = 0;
	util_wipe(S.out, OUT_CAP);
	S.out_off = S.out_len = S.secret_end = S.in_len = 0;
	S.state = S_DOWN;
	S.up = 0;
	S.retry_at_ms = now_ms + S.backoff_ms;
	S.backoff_ms = S.backoff_ms * 2 > STORE_BACKOFF_MAX_MS ?
	    STORE_BACKOFF_MAX_MS : S.backoff_ms * 2;
}

/* Connect to addr, or wait for the resolver. */
static void
connect_now(uint64_t now_ms)
{
	struct net_addr addr;
	char err[200];
	int n = 0, r;

	if (S.dns != NULL) {
		r = dns_lookup(S.dns, S.host, (uint16_t)atoi(S.port), now_ms,
		    &addr, 1, &n, err, sizeof err);
		if (r == DNS_PENDING) {
			S.state = S_RESOLVING;
			return;
		}
		if (r == DNS_FAILED || n == 0) {
			go_down(r == DNS_FAILED ? err : "no address", now_ms);
			return;
		}
	} else if (net_resolve(S.host, S.port, &addr, 1, err,
	    sizeof err) < 1) {
		go_down(err, now_ms);
		return;
	}
	if ((S.fd = net_connect_start(&addr)) < 0) {
		go_down(strerror(errno), now_ms);
		return;
	}
	S.state = S_CONNECTING;
}

/* A new attempt: the handshake into out, then connect. */
static void
attempt(uint64_t now_ms)
{
	S.out_off = S.out_len = S.in_len = 0;
	S.qhead = S.qn = 0;
	resp_parser_init(&S.ps, S.nodes, NODES, IN_CAP);
	S.conn_deadline_ms = now_ms + S.timeout_ms;
	S.state = S_RESOLVING;
	if (put_handshake(now_ms) < 0) {
		go_down("the handshake does not fit", now_ms);
		return;
	}
	connect_now(now_ms);
}

/* The reply nodes[0] of a script call, into c. */
static void
call_reply(struct store_call *c, uint64_t now_ms)
{
	const struct resp_node *r = &S.nodes[0], *x;
	char err[160];
	size_t k, i;

	if (r->type == RESP_ERROR) {
		if (r->str.n >= 8 && memcmp(r->str.p, "NOSCRIPT", 8) == 0) {
			/* The server lost its scripts (restarted under us,
			 * SCRIPT FLUSH): EVAL loads it again. */
			if (put_call(c, 1) == 0 &&
			    push(K_CALL, c, 0, now_ms) == 0) {
				flush(now_ms);
				return;
			}
			finish_call(c, STORE_FAILED, "the script is not loaded "
			    "and there is no room to send it");
			return;
		}
		snprintf(err, sizeof err, "%.*s", (int)(r->str.n < 150 ?
		    r->str.n : 150), r->str.p);
		finish_call(c, STORE_ERROR, err);
		return;
	}
	if (r->type != RESP_ARRAY || r->null) {
		finish_call(c, STORE_ERROR, "the script's reply is not an "
		    "array");
		return;
	}
	c->nfields = r->n < STORE_FIELDS_MAX ? r->n : STORE_FIELDS_MAX;
	for (k = 0; k < c->nfields; k++) {
		i = resp_child(S.nodes, 0, k);
		x = &S.nodes[i];
		if (x->type == RESP_INTEGER) {
			snprintf(c->field[k], STORE_FIELD_MAX, "%lld",
			    (long long)x->i);
		} else {
			snprintf(c->field[k], STORE_FIELD_MAX, "%.*s",
			    (int)(x->str.n < STORE_FIELD_MAX - 1 ? x->str.n :
			    STORE_FIELD_MAX - 1), x->str.p);
		}
	}
	finish_call(c, STORE_REPLIED, NULL);
}

/* The handshake's replies: an error is the end of this connection. */
static int
handshake_reply(const struct entry *e, uint64_t now_ms)
{
	const struct resp_node *r = &S.nodes[0];
	static const char *const what[] = { "AUTH", "SELECT", "SCRIPT LOAD" };
	char why[200];

	if (r->type == RESP_ERROR) {
		snprintf(why, sizeof why, "%s refused: %.*s", what[e->kind],
		    (int)(r->str.n < 120 ? r->str.n : 120), r->str.p);
		go_down(why, now_ms);
		return -1;
	}
	if (e->kind == K_LOAD && (r->type != RESP_BULK || r->str.n != 40 ||
	    memcmp(r->str.p, S.sha[e->script], 40) != 0)) {
		log_warn("store %s: SCRIPT LOAD of %s answered another SHA-1",
		    S.url, store_scripts[e->script].name);
	}
	if (S.handshake > 0 && --S.handshake == 0) {
		log_info("store %s: connected", S.url);
		S.up = 1;
		S.down_logged = 0;
		S.backoff_ms = STORE_BACKOFF_MIN_MS;
	}
	return 0;
}

/* Parse and dispatch every complete reply in in. */
static void
take_replies(uint64_t now_ms)
{
	size_t off = 0;
	ssize_t r;
	struct entry e;

	while (S.state == S_OPEN && off < S.in_len) {
		r = resp_parse(&S.ps, S.in + off, S.in_len - off);
		if (r == RESP_PARTIAL) {
			break;
		}
		if (r < 0 || S.qn == 0) {
			go_down(r < 0 ? resp_strerror(resp_parser_error(&S.ps)) :
			    "a reply nothing asked for", now_ms);
			return;
		}
		e = S.q[S.qhead];
		S.qhead = (S.qhead + 1) % STORE_QUEUE_MAX;
		S.qn--;
		if (e.kind == K_CALL) {
			call_reply(e.call, now_ms);
		} else if (handshake_reply(&e, now_ms) < 0) {
			return;
		}
		off += (size_t)r;
	}
	if (S.state == S_OPEN && off > 0) {
		memmove(S.in, S.in + off, S.in_len - off);
		S.in_len -= off;
	}
}

static void
read_replies(uint64_t now_ms)
{
	ssize_t r;

	for (;;) {
		if (S.in_len == IN_CAP) {
			go_down("a reply larger than the input buffer", now_ms);
			return;
		}
		r = recv(S.fd, S.in + S.in_len, IN_CAP - S.in_len, 0);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			return;
		}
		if (r <= 0) {
			go_down(r == 0 ? "the store closed the connection" :
			    strerror(errno), now_ms);
			return;
		}
		S.in_len += (size_t)r;
		take_replies(now_ms);
		if (S.state != S_OPEN) {
			return;
		}
	}
}

int
store_open(const struct conf_store *cs, struct dns *d, uint64_t now_ms,
    char *err, size_t errlen)
{
	store_close();
	if (strlen(cs->host) >= sizeof S.host ||
	    strlen(cs->port) >= sizeof S.port ||
	    strlen(cs->prefix) >= sizeof S.prefix) {
		return util_errf(err, errlen, "store: host or prefix too long");
	}
	S.fd = -1;
	S.out = malloc(OUT_CAP);
	S.in = malloc(IN_CAP);
	if (S.out == NULL || S.in == NULL || (cs->password != NULL &&
	    (S.password = strdup(cs->password)) == NULL)) {
		store_close();
		return util_errf(err, errlen, "store: out of memory");
	}
	snprintf(S.url, sizeof S.url, "%s", cs->url != NULL ? cs->url : "");
	snprintf(S.host, sizeof S.host, "%s", cs->host);
	snprintf(S.port, sizeof S.port, "%s", cs->port);
	snprintf(S.prefix, sizeof S.prefix, "%s", cs->prefix);
	S.db = cs->db;
	S.timeout_ms = cs->timeout_ms;
	S.dns = d;
	S.backoff_ms = STORE_BACKOFF_MIN_MS;
	hash_scripts();
	attempt(now_ms);
	return 0;
}

void
store_close(void)
{
	if (S.state != S_OFF && S.fd >= 0) {
		close(S.fd);
	}
	if (S.password != NULL) {
		util_wipe(S.password, strlen(S.password));
		free(S.password);
	}
	if (S.out != NULL) {
		util_wipe(S.out, OUT_CAP);
	}
	free(S.out);
	free(S.in);
	memset(&S, 0, sizeof S);
}

int
store_accepts(void)
{
	return S.state == S_RESOLVING || S.state == S_CONNECTING ||
	    S.state == S_OPEN;
}

int
store_submit(struct store_call *c, uint64_t now_ms)
{
	const char *why = NULL;

	c->status = STORE_WAITING;
	c->nfields = 0;
	c->err[0] = '\0';
	c->next = NULL;
	if (!store_accepts()) {
		why = "store unreachable (reconnecting)";
	} else if ((unsigned)c->script >= STORE_NSCRIPTS) {
		why = "no such script";
	} else if (S.qn == STORE_QUEUE_MAX) {
		why = "too many store commands in flight";
	} else if (put_call(c, 0) < 0) {
		why = "the store's output buffer is full, or the wallet "
		    "name does not fit a key";
	}
	if (why != NULL) {
		c->status = STORE_FAILED;
		snprintf(c->err, sizeof c->err, "%s", why);
		return -1;
	}
	/* Written by the next store_step(): the calls of one loop pass
	 * leave together, in one write. */
	(void)push(K_CALL, c, 0, now_ms);
	return 0;
}

int
store_fd(short *events)
{
	if (S.state == S_CONNECTING) {
		*events = POLLOUT;
		return S.fd;
	}
	if (S.state == S_OPEN) {
		*events = (short)(POLLIN | (S.out_off < S.out_len ? POLLOUT :
		    0));
		return S.fd;
	}
	return -1;
}

uint64_t
store_deadline(void)
{
	uint64_t d = 0;

	switch (S.state) {
	case S_DOWN:
		return S.retry_at_ms;
	case S_RESOLVING:
	case S_CONNECTING:
		d = S.conn_deadline_ms;
		break;
	default:
		break;
	}
	if (S.qn > 0 && (d == 0 || S.q[S.qhead].deadline_ms < d)) {
		d = S.q[S.qhead].deadline_ms;
	}
	return d;
}

/* Deadlines and the time to reconnect. */
static void
timers(uint64_t now_ms)
{
	char why[80];

	switch (S.state) {
	case S_DOWN:
		if (now_ms >= S.retry_at_ms) {
			attempt(now_ms);
		}
		return;
	case S_RESOLVING:
		connect_now(now_ms);
		/* FALLTHROUGH */
	case S_CONNECTING:
		if (S.state != S_DOWN && now_ms >= S.conn_deadline_ms) {
			go_down("connect timed out", now_ms);
		}
		return;
	case S_OPEN:
		if (S.qn > 0 && now_ms >= S.q[S.qhead].deadline_ms) {
			snprintf(why, sizeof why, "no reply within %llu ms",
			    (unsigned long long)S.timeout_ms);
			go_down(why, now_ms);
		}
		return;
	default:
		return;
	}
}

void
store_step(short revents, uint64_t now_ms)
{
	if (S.state == S_CONNECTING && (revents & (POLLOUT | POLLERR |
	    POLLHUP)) != 0) {
		if (net_connect_result(S.fd) < 0) {
			go_down(strerror(errno), now_ms);
		} else {
			S.state = S_OPEN;
		}
	}
	if (S.state == S_OPEN) {
		flush(now_ms);
	}
	if (S.state == S_OPEN && (revents & (POLLIN | POLLERR | POLLHUP)) !=
	    0) {
		read_replies(now_ms);
	}
	timers(now_ms);
}

struct store_call *
store_done(void)
{
	struct store_call *list = S.done;

	S.done = S.done_tail = NULL;
	return list;
}
