/* reject: lingering answered connections (see reject.h). */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/socket.h>

#include "ev.h"
#include "metrics.h"
#include "reject.h"
#include "watch.h"

/* A lingering connection is closed after LINGER_IDLE_MS without a byte
 * from the client, and LINGER_MAX_MS at the most. */
#define LINGER_IDLE_MS 1000
#define LINGER_MAX_MS 10000

struct reject {
	struct ev ev;		/* a free slot: not EV_REG */
	uint64_t until;		/* idle deadline */
	uint64_t end;		/* hard deadline */
};

static struct {
	struct reject rej[REJECT_SLOTS];
	size_t n;		/* slots in use */
	unsigned char kind;
} R;

void
reject_init(unsigned char kind)
{
	R.kind = kind;
}

void
reject_linger(int fd, uint64_t now_ms)
{
	size_t i;

	for (i = 0; R.n < REJECT_SLOTS && i < REJECT_SLOTS; i++) {
		struct reject *r = &R.rej[i];

		if (!(r->ev.flags & EV_REG)) {
			r->until = now_ms + LINGER_IDLE_MS;
			r->end = now_ms + LINGER_MAX_MS;
			r->ev.owner = r;
			r->ev.kind = R.kind;
			if (watch_set(&r->ev, fd, POLLIN) < 0) {
				break;
			}
			R.n++;
			return;
		}
	}
	close(fd);
}

void
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
	reject_linger(fd, now_ms);
}

void
reject_read(void *owner, uint64_t now_ms)
{
	static char sink[16384];
	struct reject *r = owner;
	ssize_t n = 0;
	int reads;

	/* Up to 256 KiB a pass: a client mid-upload is drained quickly. */
	for (reads = 0; reads < 16; reads++) {
		n = read(r->ev.fd, sink, sizeof(sink));
		if (n <= 0) {
			break;
		}
		r->until = now_ms + LINGER_IDLE_MS;
		if (r->until > r->end) {
			r->until = r->end;
		}
	}
	if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
		r->until = 0;	/* closed by reject_sweep() */
	}
}

uint64_t
reject_next(void)
{
	uint64_t d = 0;
	size_t i;

	for (i = 0; R.n > 0 && i < REJECT_SLOTS; i++) {
		const struct reject *r = &R.rej[i];

		if ((r->ev.flags & EV_REG) && r->until != 0 &&
		    (d == 0 || r->until < d)) {
			d = r->until;
		}
	}
	return d;
}

void
reject_sweep(uint64_t now_ms)
{
	size_t i;

	for (i = 0; R.n > 0 && i < REJECT_SLOTS; i++) {
		struct reject *r = &R.rej[i];

		if ((r->ev.flags & EV_REG) && r->until <= now_ms) {
			watch_del(&r->ev, 1);
			close(r->ev.fd);
			R.n--;
		}
	}
}

void
reject_close_all(void)
{
	size_t i;

	for (i = 0; i < REJECT_SLOTS; i++) {
		if (R.rej[i].ev.flags & EV_REG) {
			close(R.rej[i].ev.fd);
		}
	}
}
