#ifndef RELAY_WATCH_H
#define RELAY_WATCH_H
/* The sockets the loop waits on and the deadlines it waits for. Each
 * socket is registered once and changed only when what it waits for
 * changes: with epoll on Linux (a wake-up costs in proportion to the
 * ready sockets, not the open ones), or with the portable poll() set
 * (RELAY_POLL=1, and every other system), kept as an array the loop
 * changes in place. The deadlines are a binary heap, nearest first. Both
 * hold struct ev (ev.h) pointers; an ev must leave both (watch_del(),
 * watch_deadline(e, 0)) before it is freed. */
#include <stdint.h>

#include "ev.h"

/* ev.flags: the watch's and the loop's */
enum {
	EV_REG = 1,		/* registered (watch_set()) */
	EV_TOUCHED = 2,		/* loop: in its list of what a pass touched */
	EV_PENDING = 4,		/* loop: TLS holds bytes for it */
	EV_SEEN = 8,		/* loop: stepped this pass */
	EV_WAITS = 16,		/* it only waits for a hang-up (see watch.c) */
	EV_DEAD = 32		/* loop: closed, in its list to free */
};

struct watch_ready {
	struct ev *e;
	short re;		/* poll() revents */
};

/* epoll unless RELAY_POLL=1 or not on Linux. Returns 0, or -1 (logged).
 * What it allocates lives until the process exits. */
int watch_open(void);

/* 1 with epoll. */
int watch_epoll(void);

/* Register e's socket fd for events (0: only errors and hang-ups), or
 * change it. A descriptor another ev had registered and still open (a
 * lingering client's) is taken over. Returns 0, or -1 out of memory. */
int watch_set(struct ev *e, int fd, short events);

/* e's socket leaves the set. open: its descriptor is still open (else it
 * was closed, which took it out of an epoll set already). */
void watch_del(struct ev *e, int open);

/* Wait up to timeout_ms (-1: no limit) for ready sockets; *ready gets
 * them. Returns how many, or -1 (errno). */
int watch_wait(int timeout_ms, uint64_t now_ms, struct watch_ready **ready);

/* e's deadline becomes d (0: none). Returns 0, or -1 out of memory. */
int watch_deadline(struct ev *e, uint64_t d);

/* The ev with the nearest deadline, or NULL. */
struct ev *watch_next(void);

#endif
