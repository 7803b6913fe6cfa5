/* loop: listeners and the poll() loop (see loop.h). The only caller of
 * the *_step functions: every event of a socket goes to its owner from
 * here, and the end of a pass (timers, the commit of the pass's charges,
 * freeing what closed) happens here in one fixed order. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "access.h"
#include "billing.h"
#include "clock.h"
#include "conf.h"
#include "dns.h"
#include "fleet.h"
#include "front.h"
#include "gen.h"
#include "ledger.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "peers.h"
#include "pool.h"
#include "server.h"
#include "tasks.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"

#define LOOP_DRAIN_MS 10000
/* How often clients whose request is with an upstream are polled for a
 * hang-up (see add_all). */
#define LOOP_HANGUP_CHECK_MS 100
#define ACCEPT_PAUSE_MS 100
#define REJECTS_MAX 64
/* A lingering connection (linger()) is closed after LINGER_IDLE_MS
 * without a byte from the client, and LINGER_MAX_MS at the most. */
#define LINGER_IDLE_MS 1000
#define LINGER_MAX_MS 10000

enum { KIND_LISTEN, KIND_CLIENT, KIND_UPSTREAM, KIND_REJECT, KIND_DNS,
	KIND_STORE };

static struct {
	const char *config_path;	/* NULL: embedded */
	int *lfds;			/* owned listening sockets */
	struct tls_server_cert **lcerts;	/* owned; per listener, or NULL */
	size_t ncerts;			/* slots in lcerts */
	size_t nlfds;
	struct client **clients;	/* owned */
	size_t nclients, clients_cap;
	/* The poll set, rebuilt every pass: fd, what it is, whose. */
	struct pollfd *pfds;		/* owned */
	void **powner;			/* owned */
	unsigned char *pkind;		/* owned */
	size_t pcap, npfds;
	uint64_t nearest;		/* the pass's nearest deadline, 0: none */
	uint64_t next_conn_id;
	uint64_t accept_paused_until;	/* EMFILE back-off, or 0 */
	/* Connections answered and closed before their request was read
	 * (503 server_busy, an early error): read and discarded until the
	 * client closes or stops sending (linger()), so that our answer is
	 * not lost to a TCP reset for unread request bytes. */
	int reject_fd[REJECTS_MAX];
	uint64_t reject_until[REJECTS_MAX];	/* idle deadline */
	uint64_t reject_end[REJECTS_MAX];	/* hard deadline */
	size_t nrejects;
	uint64_t hangup_check_ms;	/* next pass that polls busy clients */
	short store_revents;		/* the shared store's socket's events */
	struct peers peers;		/* open clients per address */
	uint64_t drain_until;		/* stopping: give up at this time */
} L;

static volatile sig_atomic_t got_term, got_hup, got_usr1;

static void
on_signal(int sig)
{
	if (sig == SIGHUP) {
		got_hup = 1;
	} else if (sig == SIGUSR1) {
		got_usr1 = 1;
	} else {
		got_term = 1;
	}
}

/* ---- accept ------------------------------------------------------------- */

/* fd, answered and its write side shut: read and drop what the client
 * still sends until it closes, or sends nothing for LINGER_IDLE_MS, or
 * LINGER_MAX_MS passed; then close it (closing with unread bytes would
 * reset the connection, and the answer with it). Full: closed. */
static void
linger(int fd, uint64_t now_ms)
{
	if (L.nrejects < REJECTS_MAX) {
		L.reject_fd[L.nrejects] = fd;
		L.reject_until[L.nrejects] = now_ms + LINGER_IDLE_MS;
		L.reject_end[L.nrejects++] = now_ms + LINGER_MAX_MS;
	} else {
		close(fd);
	}
}

/* Over max_conns (or max_conns_per_ip, per_ip set): answer 503 at once,
 * then read and drop what the client still sends (linger()). */
static void
reject_busy(int fd, int per_ip, uint64_t now_ms)
{
	char body[160], msg[512];
	int n, k;
	ssize_t w;

	metrics.busy++;
	k = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"too many "
	    "open connections%s\",\"type\":\"server_error\",\"code\":"
	    "\"server_busy\"}}\n", per_ip ? " from this address" : "");
	/* Every Content-Length the relay writes is its body's (it said
	 * 105 here for 93 bytes). */
	n = snprintf(msg, sizeof(msg), "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\nContent-Length: %d\r\n"
	    "Retry-After: 1\r\nConnection: close\r\n\r\n%s", k, body);
	w = write(fd, msg, (size_t)n);
	(void)w;
	shutdown(fd, SHUT_WR);
	linger(fd, now_ms);
}

static void
accept_ready(int lfd, const struct tls_server_cert *cert, uint64_t now_ms)
{
	const struct conf *c = gen_current()->conf;
	int budget = 64;

	while (budget-- > 0) {
		unsigned char peer[16];
		int fd = net_accept(lfd, peer);
		struct server_conn *sc;
		struct client *cl, **p;
		uint32_t from_peer;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: the pending connection
				 * stays queued and the listener stays readable.
				 * Stop polling it for a moment instead of
				 * spinning; the others keep being served. */
				log_warn("accept: %s; pausing accepts for %d ms",
				    strerror(errno), ACCEPT_PAUSE_MS);
				L.accept_paused_until = now_ms +
				    ACCEPT_PAUSE_MS;
			}
			return;
		}
		if (L.nclients >= c->max_conns) {
			reject_busy(fd, 0, now_ms);
			continue;
		}
		/* One address cannot take every connection (SPEC §10). */
		from_peer = peers_add(&L.peers, peer);
		if (from_peer == 0 || from_peer > c->max_conns_per_ip) {
			if (from_peer != 0) {
				peers_del(&L.peers, peer);
			}
			reject_busy(fd, 1, now_ms);
			continue;
		}
		p = util_grow(L.clients, &L.clients_cap, L.nclients + 1,
		    sizeof(*L.clients));
		if (p == NULL) {
			close(fd);
			return;
		}
		L.clients = p;
		sc = server_new(fd, ++L.next_conn_id, c, cert, now_ms);
		if (sc == NULL || (cl = front_new(sc)) == NULL) {
			if (sc != NULL) {
				server_free(sc);
			} else {
				close(fd);
			}
			peers_del(&L.peers, peer);
			return;
		}
		memcpy(sc->peer, peer, sizeof(sc->peer));
		L.clients[L.nclients++] = cl;
		metrics.clients = L.nclients;
		gen_hold(c);
	}
}

/* ---- the poll set ------------------------------------------------------- */

static int
ensure_pfds(size_t n)
{
	struct pollfd *pf;
	void **po;
	unsigned char *pk;

	if (n <= L.pcap) {
		return 0;
	}
	n = n * 2;
	if ((pf = realloc(L.pfds, n * sizeof(*pf))) == NULL) {
		return -1;
	}
	L.pfds = pf;
	if ((po = realloc(L.powner, n * sizeof(*po))) == NULL) {
		return -1;
	}
	L.powner = po;
	if ((pk = realloc(L.pkind, n)) == NULL) {
		return -1;
	}
	L.pkind = pk;
	L.pcap = n;
	return 0;
}

static void
add_fd(int fd, short events, int kind, void *owner)
{
	L.pfds[L.npfds].fd = fd;
	L.pfds[L.npfds].events = events;
	L.pkind[L.npfds] = (unsigned char)kind;
	L.powner[L.npfds++] = owner;
}

static void
near(uint64_t d)
{
	if (d != 0 && (L.nearest == 0 || d < L.nearest)) {
		L.nearest = d;
	}
}

/* One connection's socket, polled for its interest ev. One that only
 * waits (a client whose request is with an upstream, a parked upstream:
 * ev is POLLIN, for a hang-up) joins the set only on a hang-up check
 * pass (see add_all). Returns 1 when it was left out. */
static int
add_conn(int fd, short ev, int waits, int tls_buffered, uint64_t deadline,
    int kind, void *owner, uint64_t now_ms, int check_hangups)
{
	near(deadline);
	if (waits && ev == POLLIN && !check_hangups && !tls_buffered) {
		return 1;
	}
	if (tls_buffered) {
		L.nearest = now_ms;	/* do not wait */
	}
	add_fd(fd, ev, kind, owner);
	return 0;
}

/*
 * Every client and upstream connection. A client whose request is with
 * an upstream has nothing to say until its answer is written; it is
 * polled only to see it hang up. The kernel polls every socket of the
 * set on every pass, and under load half the sockets are in this state
 * (busy clients, or pooled upstreams while their clients send the next
 * request), so they join the set once every LOOP_HANGUP_CHECK_MS: an
 * abandoned upstream request is closed that much later, and a write to a
 * client that has gone still fails at once. A pooled connection closed
 * in between checks is retried on a new connection when reused
 * (exchange.c). Returns 1 when a socket was left out.
 */
static int
add_all(uint64_t now_ms, int check_hangups)
{
	int skipped = 0;
	size_t i;

	for (i = 0; i < L.nclients; i++) {
		struct client *cl = L.clients[i];
		struct server_conn *sc = cl->sc;

		/* A busy client still sending a streamed body is read. */
		skipped |= add_conn(sc->fd, server_interest(sc),
		    sc->state == SERVER_BUSY && !sc->body_open,
		    server_tls_buffered(sc),
		    front_deadline(cl), KIND_CLIENT, cl, now_ms,
		    check_hangups);
	}
	for (i = 0; i < pool_count(); i++) {
		struct upstream *u = pool_at(i);

		skipped |= add_conn(u->fd, upstream_interest(u),
		    u->state == UPSTREAM_IDLE, upstream_tls_buffered(u),
		    u->deadline_ms, KIND_UPSTREAM, u, now_ms, check_hangups);
	}
	return skipped;
}

/* Build the poll set and the nearest deadline; returns poll's timeout. */
static int
build_pollset(uint64_t now_ms)
{
	int check_hangups, skipped, k, j;
	size_t i;

	L.npfds = 0;
	L.nearest = 0;
	if (L.accept_paused_until != 0 && now_ms >= L.accept_paused_until) {
		L.accept_paused_until = 0;
	}
	for (i = 0; i < L.nlfds; i++) {
		add_fd(L.lfds[i], L.accept_paused_until ? 0 : POLLIN,
		    KIND_LISTEN, L.lcerts[i]);
	}
	near(L.accept_paused_until);
	check_hangups = now_ms >= L.hangup_check_ms;
	if (check_hangups) {
		L.hangup_check_ms = now_ms + LOOP_HANGUP_CHECK_MS;
	}
	skipped = add_all(now_ms, check_hangups);
	for (i = 0; i < L.nrejects; i++) {
		add_fd(L.reject_fd[i], POLLIN, KIND_REJECT, &L.reject_fd[i]);
		near(L.reject_until[i]);
	}
	k = dns_fds(pool_dns(), L.pfds + L.npfds, 2);
	for (j = 0; j < k; j++) {
		L.pkind[L.npfds] = KIND_DNS;
		L.powner[L.npfds++] = NULL;
	}
	near(dns_deadline(pool_dns()));
	{
		short ev;
		int fd = fleet_fd(&ev);

		if (fd >= 0) {
			add_fd(fd, ev, KIND_STORE, NULL);
		}
		near(fleet_deadline());
	}
	near(tasks_due_ms());
	{
		uint64_t due = ledger_tick_due_ms(billing_ledger());

		near(due == UINT64_MAX ? 0 : due);
	}
	near(L.drain_until);
	if (skipped) {
		near(L.hangup_check_ms);
	}
	if (billing_busy()) {
		L.nearest = now_ms;	/* held answers: do not sleep */
	}
	if (L.nearest == 0) {
		return -1;
	}
	return L.nearest <= now_ms ? 0 : (L.nearest - now_ms > 60000 ? 60000 :
	    (int)(L.nearest - now_ms));
}

/* ---- events ------------------------------------------------------------- */

/* An upstream has news: tell its owner. */
static void
upstream_news(struct upstream *u, uint64_t now_ms)
{
	struct pool_owner *o = u->owner;

	if (o == NULL) {
		return;
	}
	switch (o->kind) {
	case POOL_OWNER_CLIENT:
		front_on_upstream((struct client *)o, now_ms);
		break;
	case POOL_OWNER_TASK_POLL:
		tasks_on_upstream((struct task_poll *)o, u, now_ms);
		break;
	}
}

static void
reject_event(int *fdp, uint64_t now_ms)
{
	static char sink[16384];
	size_t k = (size_t)(fdp - L.reject_fd);
	ssize_t r = 0;
	int reads;

	/* Up to 256 KiB a pass: a client mid-upload is drained quickly. */
	for (reads = 0; reads < 16; reads++) {
		r = read(*fdp, sink, sizeof(sink));
		if (r <= 0) {
			break;
		}
		L.reject_until[k] = now_ms + LINGER_IDLE_MS;
		if (L.reject_until[k] > L.reject_end[k]) {
			L.reject_until[k] = L.reject_end[k];
		}
	}
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR)) {
		close(*fdp);
		*fdp = -1;
	}
}

static void
dispatch(size_t i, uint64_t now_ms)
{
	short re = L.pfds[i].revents;

	/* TLS may hold decrypted bytes the socket no longer announces:
	 * treat those as readable. */
	if (re == 0 && L.pkind[i] == KIND_UPSTREAM &&
	    upstream_tls_buffered(L.powner[i])) {
		re = POLLIN;
	} else if (re == 0 && L.pkind[i] == KIND_CLIENT &&
	    server_tls_buffered(((struct client *)L.powner[i])->sc)) {
		re = POLLIN;
	}
	if (re == 0) {
		return;
	}
	switch (L.pkind[i]) {
	case KIND_LISTEN:
		if (!got_term) {
			accept_ready(L.pfds[i].fd, L.powner[i], now_ms);
		}
		break;
	case KIND_CLIENT: {
		struct client *cl = L.powner[i];

		if (cl->sc->state != SERVER_CLOSED) {
			server_step(cl->sc, re, now_ms);
			front_step(cl, now_ms);
		}
		break;
	}
	case KIND_REJECT:
		reject_event(L.powner[i], now_ms);
		break;
	case KIND_STORE:
		L.store_revents = re;	/* fleet_step() at the pass's end */
		break;
	case KIND_UPSTREAM: {
		struct upstream *u = L.powner[i];

		if (u->state != UPSTREAM_CLOSED) {
			upstream_step(u, re, now_ms);
			upstream_news(u, now_ms);
		}
		break;
	}
	}
}

/* ---- the end of a pass -------------------------------------------------- */

/* Requests waiting for DNS try again once an answer (or failure) came. */
static void
resume_resolving(uint64_t now_ms)
{
	static unsigned seen;
	unsigned g;
	size_t i, n;

	dns_step(pool_dns(), now_ms);
	g = dns_generation(pool_dns());
	if (g == seen) {
		return;
	}
	seen = g;
	for (i = 0, n = L.nclients; i < n; i++) {
		front_resume(L.clients[i], now_ms);
	}
}

static void
handle_timeouts(uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < pool_count(); i++) {
		struct upstream *u = pool_at(i);

		if (u->deadline_ms != 0 && u->deadline_ms <= now_ms &&
		    u->state != UPSTREAM_CLOSED) {
			upstream_timeout(u, now_ms);
			upstream_news(u, now_ms);
		}
	}
	for (i = 0; i < L.nclients; i++) {
		front_timeout(L.clients[i], now_ms);
	}
}

/* Write the pass's charge lines and let the answers that waited for them
 * go (billing.h); letting one go can start and finish a pipelined
 * request, whose charge the next round commits. */
static void
commit_charges(uint64_t now_ms, int events)
{
	int rounds;

	if (billing_defer(events)) {
		return;
	}
	for (rounds = 0; rounds < 4 && billing_busy(); rounds++) {
		struct billing_wait *w = billing_commit();

		while (w != NULL) {
			struct client *cl = w->owner;

			w = billing_take(w);
			if (cl->sc->state != SERVER_CLOSED) {
				front_release(cl, now_ms);
			}
		}
	}
	billing_settle();	/* the answers are out: hash now */
}

static void
sweep(uint64_t now_ms)
{
	size_t i, j;

	for (i = 0, j = 0; i < L.nclients; i++) {
		struct client *cl = L.clients[i];

		if (cl->sc->state == SERVER_CLOSED && !front_draining(cl)) {
			int fd = server_take_linger(cl->sc);

			if (fd >= 0) {
				linger(fd, now_ms);
			}
			gen_release(cl->sc->conf);
			peers_del(&L.peers, cl->sc->peer);
			front_free(cl);
			continue;
		}
		L.clients[j++] = cl;
	}
	L.nclients = j;
	metrics.clients = L.nclients;
	pool_sweep();
}

static void
sweep_rejects(uint64_t now_ms)
{
	size_t i, j;

	for (i = 0, j = 0; i < L.nrejects; i++) {
		if (L.reject_fd[i] >= 0 && L.reject_until[i] <= now_ms) {
			close(L.reject_fd[i]);
			L.reject_fd[i] = -1;
		}
		if (L.reject_fd[i] >= 0) {
			L.reject_fd[j] = L.reject_fd[i];
			L.reject_until[j] = L.reject_until[i];
			L.reject_end[j++] = L.reject_end[i];
		}
	}
	L.nrejects = j;
}

/* ---- signals ------------------------------------------------------------ */

/* The config in force gets its metrics series and its access log. */
static void
follow_config(struct conf *c)
{
	if (metrics_config(c) < 0) {
		log_warn("metrics: over %d series or no memory: some are "
		    "counted in none", METRICS_SERIES_MAX);
	}
	(void)access_config(c);
}

static void
reload(void)
{
	if (gen_reload(L.config_path) < 0) {
		return;
	}
	follow_config(gen_current()->conf);
	/* A resumed session skips certificate checks: new anchors, new
	 * sessions. Parked connections belong to the old config. */
	tls_sessions_forget();
	pool_close_idle();
	billing_set_node(gen_current()->conf);
}

/* SIGTERM/SIGINT: no new connections; idle keep-alive clients have
 * nothing in flight and go at once, the others get LOOP_DRAIN_MS. */
static void
start_drain(uint64_t now_ms)
{
	size_t i;

	log_info("stopping: no new connections, draining %zu", L.nclients);
	for (i = 0; i < L.nlfds; i++) {
		close(L.lfds[i]);
	}
	L.nlfds = 0;
	L.drain_until = now_ms + LOOP_DRAIN_MS;
	pool_stop();
	for (i = 0; i < L.nclients; i++) {
		struct server_conn *sc = L.clients[i]->sc;

		if (sc->state == SERVER_READ_HEAD && !sc->got_bytes) {
			server_close(sc, SERVER_CLOSE_SHUTDOWN);
		} else {
			/* Its answer says Connection: close and the
			 * connection ends with it. */
			sc->close_after = 1;
		}
	}
	sweep(now_ms);
}

/* ---- start and stop ----------------------------------------------------- */

static int
open_listener(const struct conf *c, const struct conf_listen *l)
{
	struct net_addr a;
	char err[256];
	int fd;

	if (l->tls) {
		struct tls_server_cert *cert = calloc(1, sizeof(*cert));

		if (cert == NULL || tls_server_cert_load(cert, l->cert_path,
		    l->key_path, err, sizeof(err)) < 0) {
			log_error("%s:%d: %s", c->source, l->line,
			    cert ? err : "out of memory");
			free(cert);
			return -1;
		}
		L.lcerts[L.nlfds] = cert;
	}
	if (net_resolve(l->host, l->port, &a, 1, err, sizeof(err)) < 0) {
		log_error("listen %s:%s: %s", l->host, l->port, err);
		return -1;
	}
	if ((fd = net_listen(&a)) < 0) {
		log_error("listen %s:%s: %s", l->host, l->port,
		    strerror(errno));
		return -1;
	}
	L.lfds[L.nlfds++] = fd;
	log_info("listening on %s://%s%s%s:%d", l->tls ? "https" : "http",
	    strchr(l->host, ':') ? "[" : "", l->host,
	    strchr(l->host, ':') ? "]" : "", net_local_port(fd));
	return 0;
}

static int
open_listeners(const struct conf *c)
{
	size_t i, n = c->nlistens ? c->nlistens : 1;

	L.lfds = calloc(n, sizeof(*L.lfds));
	L.lcerts = calloc(n, sizeof(*L.lcerts));
	if (L.lfds == NULL || L.lcerts == NULL) {
		return -1;
	}
	L.ncerts = c->nlistens;
	for (i = 0; i < c->nlistens; i++) {
		if (open_listener(c, &c->listens[i]) < 0) {
			return -1;
		}
	}
	return 0;
}

/* Signals, descriptors, the first generation, resolver, ledger and
 * listeners. Returns 0, or -1 (logged) when the relay cannot start. */
static int
start(struct conf *conf, int allow_broken_ledger)
{
	struct sigaction sa;
	struct rlimit rl;
	char err[512];

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_IGN;
	sigaction(SIGPIPE, &sa, NULL);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	/* max_conns client sockets plus their upstreams need descriptors:
	 * take the hard limit the system allows. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
	if (gen_start(conf) < 0) {
		conf_free(conf);
		return -1;
	}
	follow_config(conf);
	if (pool_init(err, sizeof(err)) < 0 ||
	    billing_open(conf, allow_broken_ledger, err, sizeof(err)) < 0) {
		log_error("%s", err);
		return -1;
	}
	if (open_listeners(conf) < 0) {
		billing_close();
		return -1;
	}
	if (fleet_open(conf, clock_mono_ms(), err, sizeof(err)) < 0) {
		log_error("%s", err);
		billing_close();
		return -1;
	}
	tasks_init(clock_mono_ms());
	log_info("relay %s serving %zu models from %s%s", RELAY_VERSION,
	    conf->nmodels, conf->source, conf_open_mode(conf) ?
	    " (open mode: no wallet, no key needed)" : "");
	return 0;
}

static void
stop(void)
{
	size_t i;

	tasks_free();
	for (i = 0; i < L.nclients; i++) {
		front_free(L.clients[i]);
	}
	pool_free();
	for (i = 0; i < L.nlfds; i++) {
		close(L.lfds[i]);
	}
	for (i = 0; L.lcerts != NULL && i < L.ncerts; i++) {
		if (L.lcerts[i] != NULL) {
			tls_server_cert_free(L.lcerts[i]);
			free(L.lcerts[i]);
		}
	}
	free(L.lcerts);
	for (i = 0; i < L.nrejects; i++) {
		close(L.reject_fd[i]);
	}
	gen_free_all();
	peers_free(&L.peers);
	free(L.clients);
	free(L.pfds);
	free(L.powner);
	free(L.pkind);
	free(L.lfds);
	fleet_close();
	billing_close();
	access_close();
	log_info("stopped");
}

/* One pass: signals, the poll set, poll(), the events, then the end of
 * the pass in its fixed order. Returns 0 to go on, 1 to stop. */
static int
pass(void)
{
	uint64_t now_ms = clock_mono_ms();
	int timeout, rc;
	size_t i;

	if (got_hup) {
		got_hup = 0;
		reload();
	}
	if (got_usr1) {
		got_usr1 = 0;
		access_reopen();
	}
	if (got_term && L.drain_until == 0) {
		start_drain(now_ms);
	}
	if (L.drain_until != 0 && ((L.nclients == 0 && !fleet_busy()) ||
	    now_ms >= L.drain_until)) {
		return 1;
	}
	if (ensure_pfds(L.nlfds + L.nclients + pool_count() + L.nrejects +
	    3) < 0) {
		log_error("out of memory for the poll set");
		return 1;
	}
	timeout = build_pollset(now_ms);
	rc = poll(L.pfds, (nfds_t)L.npfds, timeout);
	if (rc < 0 && errno != EINTR) {
		log_error("poll: %s", strerror(errno));
		return 1;
	}
	now_ms = clock_mono_ms();
	for (i = 0; rc >= 0 && i < L.npfds; i++) {
		dispatch(i, now_ms);
	}
	resume_resolving(now_ms);
	fleet_step(L.store_revents, now_ms);
	L.store_revents = 0;
	tasks_tick(now_ms, got_term);
	handle_timeouts(now_ms);
	commit_charges(now_ms, rc);
	access_flush();
	sweep(now_ms);
	sweep_rejects(now_ms);
	ledger_tick(billing_ledger(), now_ms);
	return 0;
}

int
loop_run(struct conf *conf, const char *config_path, int allow_broken_ledger)
{
	L.config_path = config_path;
	if (start(conf, allow_broken_ledger) < 0) {
		return 1;
	}
	while (pass() == 0) {
	}
	stop();
	return 0;
}
