#ifndef RELAY_REJECT_H
#define RELAY_REJECT_H
/* reject: connections answered and closed before their request was read
 * (503 server_busy over max_conns, an early error of the server). Each is
 * read and discarded until the client closes or stops sending, so that
 * the answer is not lost to a TCP reset for unread request bytes. A fixed
 * set of REJECT_SLOTS lingering sockets, each in the loop's wait
 * (watch.h) with the kind the loop gave reject_init(); when all are taken
 * a connection is closed at once. */
#include <stdint.h>

#define REJECT_SLOTS 64

/* Sockets of this module are registered with kind (loop.c's KIND_...),
 * and their owner is what reject_read() takes. */
void reject_init(unsigned char kind);

/* fd, answered and its write side shut: read and drop what the client
 * still sends until it closes, or sends nothing for a second, or ten
 * seconds passed; then close it. No slot free: closed now. */
void reject_linger(int fd, uint64_t now_ms);

/* Answer 503 server_busy at once (per_ip: the client's address has too
 * many connections, else the relay has), count it, and linger. */
void reject_busy(int fd, int per_ip, uint64_t now_ms);

/* The socket of owner (a registered reject's ev.owner) is readable. */
void reject_read(void *owner, uint64_t now_ms);

/* The nearest deadline of a lingering socket, or 0. */
uint64_t reject_next(void);

/* Close those whose time is up or whose client closed. */
void reject_sweep(uint64_t now_ms);

/* Close every one (the relay stops). */
void reject_close_all(void);

#endif
