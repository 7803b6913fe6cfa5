#ifndef RELAY_EV_H
#define RELAY_EV_H
/* What the loop keeps for one socket it watches (loop.c): the interest
 * it registered with the kernel (epoll) or in its poll set, and the
 * socket's place in the loop's deadline heap. A client connection and an
 * upstream connection each embed one; only loop.c (and reject.c, for
 * the answered connections it lingers on) reads or writes it, through
 * watch.h (all zero, from calloc, means "not known to the loop yet"). */
#include <stdint.h>

struct ev {
	void *owner;		/* the struct client, upstream, ... */
	uint64_t deadline;	/* its key in the heap, while heap != 0 */
	uint32_t heap;		/* index + 1 in the deadline heap; 0: none */
	uint32_t pidx;		/* poll set: index + 1 there; 0: none */
	uint32_t idx;		/* loop: a client's place in its array */
	int fd;			/* the registered socket (flags EV_REG) */
	short events;		/* the registered interest (POLLIN...) */
	unsigned char kind;	/* loop.c's KIND_... */
	unsigned char flags;	/* loop.c's EV_... */
};

#endif
