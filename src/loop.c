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
#include "exchange.h"
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
#include "reject.h"
#include "server.h"
#include "tasks.h"
#include "tls.h"
#include "upstream.h"
#include "util.h"
#include "watch.h"

#define LOOP_DRAIN_MS 10000
#define ACCEPT_PAUSE_MS 100
/* How often every connection is looked at again (see pass()). */
#define LOOP_RECONCILE_MS 1000
#define LOOP_RECONCILE_SLICE 512

enum { KIND_LISTEN, KIND_CLIENT, KIND_UPSTREAM, KIND_REJECT, KIND_DNS,
	KIND_STORE };

static struct {
	const char *config_path;	/* NULL: embedded */
	int *lfds;			/* owned listening sockets */
	struct ev *lev;			/* owned: theirs */
	struct tls_server_cert **lcerts;	/* owned; per listener, or NULL */
	size_t ncerts;			/* slots in lcerts */
	size_t nlfds;
	struct client **clients;	/* owned */
	size_t nclients, clients_cap;
	struct ev **touched;		/* owned: refreshed at the pass's end */
	size_t touchcap, ntouched;
	struct ev **dead;		/* owned: closed clients to free */
	size_t deadcap, ndead;
	struct ev **pending;		/* owned: TLS holds their bytes */
	size_t pendcap, npending;
	int full;			/* refresh every connection */
	int sweep;			/* an upstream closed */
	uint64_t reconcile_ms;		/* next look at everything */
	int reconciling;		/* one is under way (reconcile()) */
	size_t recon_client, recon_pool;	/* its cursors */
	struct ev dnsev[2];
	uint64_t nearest;		/* the pass's nearest deadline, 0: none */
	uint64_t next_conn_id;
	uint64_t accept_paused_until;	/* EMFILE back-off, or 0 */
	short store_revents;		/* the shared store's socket's events */
	struct ev storeev;		/* its socket in the wait */
	struct peers peers;		/* open clients per address */
	uint64_t drain_until;		/* stopping: give up at this time */
} L;

static void watch(struct ev *e, int fd, short events);
static void touch(struct ev *e, void *owner, int kind);
static void pause_accepts(void);

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
				pause_accepts();
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
		cl->sc->ev.idx = (uint32_t)L.nclients;
		L.clients[L.nclients++] = cl;
		touch(&cl->sc->ev, cl, KIND_CLIENT);
		metrics.clients = L.nclients;
		gen_hold(c);
	}
}

/* ---- what changed in a pass: refreshed at its end (watch.h) ----------- */

static void *
grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	void *p = need <= *cap ? arr : util_grow(arr, cap, need, elem);

	if (p == NULL) {
		L.full = 1;	/* refresh everything at the end instead */
	}
	return p;
}

/* e onto the list a (n entries, room for cap) once: flag says it is on. */
static void
push(struct ev ***a, size_t *cap, size_t *n, struct ev *e, int flag)
{
	struct ev **p;

	if (e->flags & flag) {
		return;
	}
	if ((p = grow(*a, cap, *n + 1, sizeof(*p))) != NULL) {
		*a = p;
		p[(*n)++] = e;
		e->flags |= (unsigned char)flag;
	}
}

static void
watch(struct ev *e, int fd, short events)
{
	if (watch_set(e, fd, events) < 0) {
		L.full = 1;
	}
}

static void
deadline(struct ev *e, uint64_t d)
{
	if (watch_deadline(e, d) < 0) {
		L.full = 1;
	}
}

static void
touch(struct ev *e, void *owner, int kind)
{
	e->owner = owner;
	e->kind = (unsigned char)kind;
	push(&L.touched, &L.touchcap, &L.ntouched, e, EV_TOUCHED);
}

/* A client's state and its upstream's change together (the exchange
 * moves bytes from one to the other): both are looked at again. */
static void
touch_client(struct client *cl)
{
	touch(&cl->sc->ev, cl, KIND_CLIENT);
	if (cl->ex != NULL && cl->ex->up != NULL) {
		touch(&cl->ex->up->ev, cl->ex->up, KIND_UPSTREAM);
	}
}

/* The shared store answered client owner (fleet_step()). */
static void
store_answered(void *owner)
{
	touch_client(owner);
}

static void
touch_upstream(struct upstream *u)
{
	const struct pool_owner *o = u->owner;

	touch(&u->ev, u, KIND_UPSTREAM);
	if (o != NULL && o->kind == POOL_OWNER_CLIENT) {
		touch_client(u->owner);
	}
}

/* e's connection as it is now: its interest registered, its deadline in
 * the heap, in L.pending when TLS holds bytes the socket will not
 * announce. A closed one leaves the set (and the heap, unless a closed
 * client still drains its upstream); the pass then sweeps. */
static void
refresh(struct ev *e)
{
	int fd, waits, buffered, gone;
	short want;
	uint64_t d;

	e->flags &= (unsigned char)~(EV_TOUCHED | EV_SEEN);
	if (e->kind == KIND_CLIENT) {
		struct client *cl = e->owner;
		struct server_conn *sc = cl->sc;

		fd = sc->state == SERVER_CLOSED ? -1 : sc->fd;
		want = server_interest(sc);
		/* A busy client still sending a streamed body is read. */
		waits = sc->state == SERVER_BUSY && !sc->body_open;
		buffered = server_tls_buffered(sc);
		d = front_deadline(cl);
		gone = fd < 0 && !front_draining(cl);
	} else {
		struct upstream *u = e->owner;

		fd = u->state == UPSTREAM_CLOSED ? -1 : u->fd;
		want = upstream_interest(u);
		waits = u->state == UPSTREAM_IDLE;
		buffered = upstream_tls_buffered(u);
		d = u->deadline_ms;
		gone = fd < 0;
	}
	if (fd < 0) {
		watch_del(e, 0);	/* done by the close already */
		L.sweep |= e->kind != KIND_CLIENT;
	} else {
		e->flags = (unsigned char)((e->flags & ~EV_WAITS) |
		    (waits && want == POLLIN && !buffered ? EV_WAITS : 0));
		watch(e, fd, want);
	}
	/* A deadline that moved later, or went, keeps its earlier place:
	 * when that comes, handle_timeouts() finds nothing due and the
	 * refresh after it puts the connection where it belongs. Most
	 * deadlines move later on every read or write; this way they cost
	 * the heap nothing then. */
	if (gone || e->heap == 0 || (d != 0 && d < e->deadline)) {
		deadline(e, gone ? 0 : d);
	}
	if (buffered && !gone) {
		push(&L.pending, &L.pendcap, &L.npending, e, EV_PENDING);
	}
	if (gone && e->kind == KIND_CLIENT) {
		push(&L.dead, &L.deadcap, &L.ndead, e, EV_DEAD);
	}
}

/* Refresh the clients from *ci and the pool's connections from *pi on,
 * at most max of them; the cursors move past those done. */
static void
refresh_from(size_t *ci, size_t *pi, size_t max)
{
	size_t n = 0;

	for (; n < max && *ci < L.nclients; n++) {
		refresh(&L.clients[(*ci)++]->sc->ev);	/* touched at accept */
	}
	for (; n < max && *pi < pool_count(); n++) {
		struct upstream *u = pool_at((*pi)++);

		u->ev.owner = u;
		u->ev.kind = KIND_UPSTREAM;
		refresh(&u->ev);
	}
}

/* Refresh what the pass touched; after a failed allocation, or when
 * asked (full), every connection. */
static void
refresh_touched(int full)
{
	size_t i, ci = 0, pi = 0;

	if (full || L.full) {
		L.full = 0;
		refresh_from(&ci, &pi, SIZE_MAX);
	}
	for (i = 0; i < L.ntouched; i++) {
		refresh(L.touched[i]);
	}
	L.ntouched = 0;
}

/* The look at everything once a second, LOOP_RECONCILE_SLICE connections
 * a pass: a connection whose change no event or deadline announced is
 * put right within about a second, and no pass stalls for it (a whole
 * look took 1-1.5 ms at 10,000 connections here: the streams that
 * arrived meanwhile waited that long). A client freed meanwhile hands
 * its place to the last one, which this round may then skip. */
static void
reconcile(uint64_t now_ms)
{
	if (!L.reconciling) {
		if (now_ms < L.reconcile_ms) {
			return;
		}
		L.reconciling = 1;
		L.recon_client = 0;
		L.recon_pool = 0;
	}
	refresh_from(&L.recon_client, &L.recon_pool, LOOP_RECONCILE_SLICE);
	if (L.recon_client >= L.nclients && L.recon_pool >= pool_count()) {
		L.reconciling = 0;
		L.reconcile_ms = now_ms + LOOP_RECONCILE_MS;
	}
}

/* A connection about to be freed leaves every structure of the loop. */
static void
forget(struct ev *e)
{
	size_t i;

	watch_del(e, 0);
	deadline(e, 0);
	if (e->flags & EV_PENDING) {
		for (i = 0; i < L.npending; i++) {
			if (L.pending[i] == e) {
				L.pending[i] = L.pending[--L.npending];
				break;
			}
		}
	}
	e->flags = 0;
}

static void
near(uint64_t d)
{
	if (d != 0 && (L.nearest == 0 || d < L.nearest)) {
		L.nearest = d;
	}
}

/* The DNS sockets while queries are in flight. A socket closed and opened
 * again can have the same number, so each is registered again (epoll:
 * added, or changed when it is still there) on every such pass. */
static void
watch_dns(void)
{
	struct pollfd p[2];
	int k = dns_fds(pool_dns(), p, 2), j;

	for (j = 0; j < 2; j++) {
		struct ev *e = &L.dnsev[j];

		e->kind = KIND_DNS;
		if (j < k) {
			e->flags &= (unsigned char)(watch_epoll() ? ~EV_REG :
			    0xff);
			watch(e, p[j].fd, POLLIN);
		} else {
			watch_del(e, 0);
		}
	}
}

/* The nearest deadline as poll's timeout: -1 none, 0 do not sleep. */
static int
wait_ms(uint64_t now_ms)
{
	size_t i;

	L.nearest = watch_next() ? watch_next()->deadline : 0;
	if (L.accept_paused_until != 0 && now_ms >= L.accept_paused_until) {
		L.accept_paused_until = 0;
		for (i = 0; i < L.nlfds; i++) {
			watch(&L.lev[i], L.lfds[i], POLLIN);
		}
	}
	near(L.accept_paused_until);
	near(reject_next());
	near(dns_deadline(pool_dns()));
	{
		short ev;
		int fd = fleet_fd(&ev);

		/* The store reconnects a pass or more after it closed (a
		 * back-off), so a closed socket has left the set first. */
		L.storeev.kind = KIND_STORE;
		if (fd >= 0) {
			watch(&L.storeev, fd, ev);
		} else {
			watch_del(&L.storeev, 0);
		}
		near(fleet_deadline());
	}
	near(tasks_due_ms());
	{
		uint64_t due = ledger_tick_due_ms(billing_ledger());

		near(due == UINT64_MAX ? 0 : due);
	}
	near(L.drain_until);
	/* A look at everything under way goes on at once. */
	near(L.reconciling ? now_ms : L.reconcile_ms);
	if (billing_busy() || L.npending > 0) {
		L.nearest = now_ms;	/* held answers, TLS bytes: do not sleep */
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
pause_accepts(void)
{
	size_t i;

	for (i = 0; i < L.nlfds; i++) {
		watch(&L.lev[i], L.lfds[i], 0);
	}
}

static void
dispatch(struct ev *e, short re, uint64_t now_ms)
{
	switch (e->kind) {
	case KIND_LISTEN:
		if (!got_term) {
			accept_ready(e->fd, e->owner, now_ms);
		}
		break;
	case KIND_CLIENT: {
		struct client *cl = e->owner;

		touch_client(cl);
		if (cl->sc->state != SERVER_CLOSED) {
			server_step(cl->sc, re, now_ms);
			front_step(cl, now_ms);
		}
		touch_client(cl);
		break;
	}
	case KIND_REJECT:
		reject_read(e->owner, now_ms);
		break;
	case KIND_STORE:
		L.store_revents = re;	/* fleet_step() at the pass's end */
		break;
	case KIND_UPSTREAM: {
		struct upstream *u = e->owner;

		touch_upstream(u);
		if (u->state != UPSTREAM_CLOSED) {
			upstream_step(u, re, now_ms);
			upstream_news(u, now_ms);
		}
		touch_upstream(u);
		break;
	}
	}
	e->flags |= EV_SEEN;
}

/* TLS may hold decrypted bytes the socket no longer announces: the
 * connections that had some at the end of the last pass and were not
 * stepped in this one are stepped as readable. */
static void
dispatch_pending(uint64_t now_ms)
{
	struct ev **p = L.pending;
	size_t n = L.npending, i;

	for (i = 0; i < n; i++) {
		p[i]->flags &= (unsigned char)~EV_PENDING;
	}
	L.npending = 0;
	for (i = 0; i < n; i++) {
		struct ev *e = p[i];

		if (e->flags & EV_SEEN) {
			continue;
		}
		if (e->kind == KIND_CLIENT ? server_tls_buffered(((struct
		    client *)e->owner)->sc) : upstream_tls_buffered(e->owner)) {
			dispatch(e, POLLIN, now_ms);
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
	L.full = 1;
}

/* The deadlines that passed, nearest first. A deadline that moved since
 * it was put in the heap is only looked at early: front_timeout() and
 * the check here act on the deadlines as they are now. */
static void
handle_timeouts(uint64_t now_ms)
{
	struct ev *e;

	while ((e = watch_next()) != NULL && e->deadline <= now_ms) {
		deadline(e, 0);
		if (e->kind == KIND_CLIENT) {
			touch_client(e->owner);
			front_timeout(e->owner, now_ms);
			touch_client(e->owner);
		} else {
			struct upstream *u = e->owner;

			touch_upstream(u);
			if (u->deadline_ms != 0 && u->deadline_ms <= now_ms &&
			    u->state != UPSTREAM_CLOSED) {
				upstream_timeout(u, now_ms);
				upstream_news(u, now_ms);
			}
			touch_upstream(u);
		}
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
			touch_client(cl);
			if (cl->sc->state != SERVER_CLOSED) {
				front_release(cl, now_ms);
			}
			touch_client(cl);
		}
	}
	billing_settle();	/* the answers are out: hash now */
}

/* Free what closed: the clients a refresh saw close (each takes the last
 * one's place in the array); upstreams on a pass where a refresh saw one
 * close (one closed unseen, by a client freed here or when its connect
 * failed at once, goes at the next such pass or after the look at
 * everything once a second). */
static void
sweep(uint64_t now_ms)
{
	size_t i;

	for (i = 0; i < L.ndead; i++) {
		struct client *cl = L.dead[i]->owner;
		uint32_t k = cl->sc->ev.idx;
		int fd = server_take_linger(cl->sc);

		forget(&cl->sc->ev);
		if (fd >= 0) {
			reject_linger(fd, now_ms);
		}
		L.clients[k] = L.clients[--L.nclients];
		L.clients[k]->sc->ev.idx = k;
		gen_release(cl->sc->conf);
		peers_del(&L.peers, cl->sc->peer);
		front_free(cl);
	}
	L.ndead = 0;
	metrics.clients = L.nclients;
	if (!L.sweep) {
		return;
	}
	L.sweep = 0;
	for (i = 0; i < pool_count(); i++) {
		if (pool_at(i)->state == UPSTREAM_CLOSED) {
			forget(&pool_at(i)->ev);
		}
	}
	pool_sweep();
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
	refresh_touched(1);	/* the parked connections closed */
}

/* SIGTERM/SIGINT: no new connections; idle keep-alive clients have
 * nothing in flight and go at once, the others get LOOP_DRAIN_MS. */
static void
start_drain(uint64_t now_ms)
{
	size_t i;

	log_info("stopping: no new connections, draining %zu", L.nclients);
	for (i = 0; i < L.nlfds; i++) {
		watch_del(&L.lev[i], 1);
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
	refresh_touched(1);
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
	L.lev[L.nlfds].owner = L.lcerts[L.nlfds];
	L.lev[L.nlfds].kind = KIND_LISTEN;
	watch(&L.lev[L.nlfds], fd, POLLIN);
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
	L.lev = calloc(n, sizeof(*L.lev));
	if (L.lfds == NULL || L.lcerts == NULL || L.lev == NULL) {
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
	reject_init(KIND_REJECT);
	if (watch_open() < 0 || open_listeners(conf) < 0) {
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
	reject_close_all();
	gen_free_all();
	peers_free(&L.peers);
	free(L.clients);
	free(L.touched);
	free(L.dead);
	free(L.pending);
	free(L.lfds);
	free(L.lev);
	/* The wait's set and arrays (watch.h) go with the process. */
	fleet_close();
	billing_close();
	access_close();
	log_info("stopped");
}

/* One pass: signals, the wait for ready sockets or the nearest
 * deadline, the events, then the end of the pass in its fixed order.
 * Returns 0 to go on, 1 to stop. */
static int
pass(void)
{
	uint64_t now_ms = clock_mono_ms();
	struct watch_ready *ready;
	int timeout, rc, i;

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
	watch_dns();
	timeout = wait_ms(now_ms);
	rc = watch_wait(timeout, now_ms, &ready);
	if (rc < 0 && errno != EINTR) {
		log_error("%s: %s", watch_epoll() ? "epoll_wait" : "poll",
		    strerror(errno));
		return 1;
	}
	now_ms = clock_mono_ms();
	for (i = 0; i < rc; i++) {
		dispatch(ready[i].e, ready[i].re, now_ms);
	}
	dispatch_pending(now_ms);
	resume_resolving(now_ms);
	if (now_ms >= tasks_due_ms()) {
		L.full = 1;	/* task polls may start */
	}
	/* A store answer goes to its client (front.c): fleet_step() names
	 * each client it answered, to be looked at again. */
	fleet_step(L.store_revents, now_ms, store_answered);
	L.store_revents = 0;
	tasks_tick(now_ms, got_term);
	/* Every so often everything is looked at again, whatever the pass
	 * saw (once a second, a slice a pass). */
	reconcile(now_ms);
	refresh_touched(0);
	handle_timeouts(now_ms);
	commit_charges(now_ms, rc);
	access_flush();
	refresh_touched(0);
	sweep(now_ms);
	reject_sweep(now_ms);
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
