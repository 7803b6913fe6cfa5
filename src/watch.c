/* watch: epoll or the poll() set, and the deadline heap (see watch.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/epoll.h>
#endif

#include "log.h"
#include "util.h"
#include "watch.h"

/* How often the poll() set includes the sockets that only wait for a
 * hang-up (see watch_wait). */
#define HANGUP_CHECK_MS 100
#define EPOLL_BATCH 256

static struct {
	int epfd;			/* the epoll set, or -1: the poll set */
	/* The poll set: every registered socket, and whose. */
	struct pollfd *pfds;		/* owned */
	struct ev **pev;		/* owned, pcap entries too */
	size_t pcap, npfds;
	struct watch_ready *ready;	/* owned: the last wait's */
	size_t readycap;
	struct ev **heap;		/* owned: deadlines, nearest first */
	size_t heapcap, nheap;
	uint64_t hangup_check_ms;	/* next wait that polls waiting ones */
} W;				/* epfd is set by watch_open() */

int
watch_open(void)
{
	const char *e = getenv("RELAY_POLL");

	W.epfd = -1;
#ifdef __linux__
	if ((e == NULL || strcmp(e, "1") != 0) &&
	    (W.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0) {
		log_error("epoll: %s", strerror(errno));
		return -1;
	}
#else
	(void)e;
#endif
	return 0;
}

int
watch_epoll(void)
{
	return W.epfd >= 0;
}

int
watch_set(struct ev *e, int fd, short events)
{
	int known = (e->flags & EV_REG) && e->fd == fd;

	if (known && e->events == events) {
		return 0;
	}
#ifdef __linux__
	if (W.epfd >= 0) {
		struct epoll_event ee = { (uint32_t)events, { e } };

		if (epoll_ctl(W.epfd, known ? EPOLL_CTL_MOD : EPOLL_CTL_ADD,
		    fd, &ee) < 0 && (errno != EEXIST ||
		    epoll_ctl(W.epfd, EPOLL_CTL_MOD, fd, &ee) < 0)) {
			log_warn("epoll_ctl: %s", strerror(errno));
		}
	} else
#endif
	if (!(e->flags & EV_REG)) {
		size_t cap = W.pcap;
		struct pollfd *pf = W.npfds < cap ? W.pfds : util_grow(W.pfds,
		    &W.pcap, W.npfds + 1, sizeof(*pf));
		struct ev **pe = W.pev;

		if (pf == NULL) {
			return -1;
		}
		W.pfds = pf;
		if (cap != W.pcap && (pe = realloc(pe, W.pcap * sizeof(*pe))) ==
		    NULL) {
			W.pcap = cap;	/* pfds is larger; no harm */
			return -1;
		}
		W.pev = pe;
		W.pev[W.npfds] = e;
		e->pidx = (uint32_t)++W.npfds;
	}
	e->fd = fd;
	e->events = events;
	e->flags |= EV_REG;
	if (e->pidx != 0) {
		W.pfds[e->pidx - 1].events = events;
	}
	return 0;
}

void
watch_del(struct ev *e, int open)
{
	if (!(e->flags & EV_REG)) {
		return;
	}
	e->flags &= (unsigned char)~EV_REG;
#ifdef __linux__
	if (W.epfd >= 0) {
		if (open) {
			(void)epoll_ctl(W.epfd, EPOLL_CTL_DEL, e->fd, NULL);
		}
		return;
	}
#endif
	(void)open;
	/* The last entry takes its place. */
	W.npfds--;
	if (e->pidx - 1 < W.npfds) {
		W.pfds[e->pidx - 1] = W.pfds[W.npfds];
		W.pev[e->pidx - 1] = W.pev[W.npfds];
		W.pev[e->pidx - 1]->pidx = e->pidx;
	}
	e->pidx = 0;
}

int
watch_wait(int timeout, uint64_t now_ms, struct watch_ready **ready)
{
	int rc, check, skipped = 0;
	size_t i, n = 0, need = W.npfds + EPOLL_BATCH;
	struct watch_ready *r = need <= W.readycap ? W.ready :
	    util_grow(W.ready, &W.readycap, need, sizeof(*r));

	if (r == NULL) {
		errno = ENOMEM;
		return -1;
	}
	W.ready = r;
	*ready = r;
#ifdef __linux__
	if (W.epfd >= 0) {
		struct epoll_event ee[EPOLL_BATCH];

		rc = epoll_wait(W.epfd, ee, EPOLL_BATCH, timeout);
		for (i = 0; rc > 0 && i < (size_t)rc; i++) {
			r[i].e = ee[i].data.ptr;
			r[i].re = (short)ee[i].events;
		}
		return rc;
	}
#endif
	/*
	 * A client whose request is with an upstream has nothing to say
	 * until its answer is written; it is polled only to see it hang up.
	 * The kernel polls every socket of the set on every wait, and under
	 * load half the sockets are in this state (busy clients, or pooled
	 * upstreams while their clients send the next request), so they
	 * (EV_WAITS) join the set once every HANGUP_CHECK_MS: an abandoned
	 * upstream request is closed that much later, and a write to a
	 * client that has gone still fails at once. A pooled connection
	 * closed in between checks is retried on a new connection when
	 * reused (exchange.c). An epoll set costs nothing per waiting
	 * socket: there they stay registered and a hang-up is seen at once.
	 */
	check = now_ms >= W.hangup_check_ms;
	if (check) {
		W.hangup_check_ms = now_ms + HANGUP_CHECK_MS;
	}
	for (i = 0; i < W.npfds; i++) {
		int w = (W.pev[i]->flags & EV_WAITS) && !check;

		W.pfds[i].fd = w ? -1 : W.pev[i]->fd;
		skipped |= w;
	}
	if (skipped && (timeout < 0 || (uint64_t)timeout >
	    W.hangup_check_ms - now_ms)) {
		timeout = (int)(W.hangup_check_ms - now_ms);
	}
	rc = poll(W.pfds, (nfds_t)W.npfds, timeout);
	for (i = 0; rc > 0 && i < W.npfds; i++) {
		if (W.pfds[i].revents != 0) {
			r[n].e = W.pev[i];
			r[n++].re = W.pfds[i].revents;
		}
	}
	return rc < 0 ? rc : (int)n;
}

/* ---- deadlines: a binary heap, nearest first ---------------------------- */

static void
heap_put(size_t i, struct ev *e)
{
	W.heap[i] = e;
	e->heap = (uint32_t)i + 1;
}

static void
heap_fix(size_t i)
{
	struct ev *e = W.heap[i];

	while (i > 0 && W.heap[(i - 1) / 2]->deadline > e->deadline) {
		heap_put(i, W.heap[(i - 1) / 2]);
		i = (i - 1) / 2;
	}
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= W.nheap) {
			break;
		}
		if (c + 1 < W.nheap &&
		    W.heap[c + 1]->deadline < W.heap[c]->deadline) {
			c++;
		}
		if (W.heap[c]->deadline >= e->deadline) {
			break;
		}
		heap_put(i, W.heap[c]);
		i = c;
	}
	heap_put(i, e);
}

int
watch_deadline(struct ev *e, uint64_t d)
{
	if (d == 0) {
		if (e->heap != 0) {
			size_t i = e->heap - 1;

			e->heap = 0;
			if (i < --W.nheap) {
				W.heap[i] = W.heap[W.nheap];
				heap_fix(i);
			}
		}
		return 0;
	}
	if (e->heap == 0) {
		struct ev **h = W.nheap < W.heapcap ? W.heap :
		    util_grow(W.heap, &W.heapcap, W.nheap + 1, sizeof(*h));

		if (h == NULL) {
			return -1;
		}
		W.heap = h;
		W.heap[W.nheap] = e;
		e->heap = (uint32_t)++W.nheap;
	} else if (e->deadline == d) {
		return 0;
	}
	e->deadline = d;
	heap_fix(e->heap - 1);
	return 0;
}

struct ev *
watch_next(void)
{
	return W.nheap > 0 ? W.heap[0] : NULL;
}
