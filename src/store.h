#ifndef RELAY_STORE_H
#define RELAY_STORE_H
/* The client of the shared store (SPEC §12): one connection to Redis or
 * Valkey inside the event loop, never blocking it. It connects without
 * blocking (an address, or a name through the loop's resolver), sends
 * AUTH and SELECT when configured and SCRIPT LOAD of every script of
 * store_scripts.h at each connect, then runs script calls with EVALSHA,
 * pipelined: each call is written at once and its reply is matched by
 * order (RESP replies come in the order of the commands). A NOSCRIPT
 * reply (the server lost its scripts) sends the call again as EVAL, which
 * loads the script too.
 *
 * Failure: every command has a deadline (store timeout=); a reply that
 * does not come in time, a closed or broken connection or a malformed
 * reply fails every call in flight (STORE_FAILED) and the client
 * reconnects by itself, with a backoff from 100 ms to 5 s. While it is
 * down, store_submit() refuses at once: the caller answers 503
 * store_unavailable, never waits and never lets a request through.
 *
 * Two drive it: the serving loop through fleet.c, and `relay store
 * rebuild` (store_rebuild.c, with its own poll()).
 *
 * One store per process (module state, like the pool). The calls belong
 * to the caller, which keeps each in place until it is finished; the
 * client only links them. Not here: what a reply means (fleet.c and its
 * callers). */
#include <stddef.h>
#include <stdint.h>

#include "store_scripts.h"

struct conf_store;
struct dns;

enum {
	STORE_ID_MAX = 128,		/* request and credit ids */
	STORE_WALLET_MAX = 100,		/* wallet names (conf checks) */
	STORE_ARGS_MAX = 11,		/* HOLD's */
	STORE_FIELDS_MAX = 8,		/* elements of a reply kept */
	STORE_FIELD_MAX = 24,		/* bytes of each, with the NUL */
	STORE_QUEUE_MAX = 1024,		/* commands in flight */
	STORE_BACKOFF_MIN_MS = 100,
	STORE_BACKOFF_MAX_MS = 5000
};

enum store_status {
	STORE_WAITING,		/* queued or sent, no reply yet */
	STORE_REPLIED,		/* the script answered: nfields, field[] */
	STORE_ERROR,		/* it answered an error (err): the script
				 * refused, or the server did; final */
	STORE_FAILED		/* no answer: down, timed out, queue full
				 * (err); whether it ran is unknown */
};

/* One script call. The caller fills script, wallet, id and arg, and
 * keeps the call in place while its status is STORE_WAITING. */
struct store_call {
	enum store_script script;
	char wallet[STORE_WALLET_MAX + 1];	/* the keys' {wallet} */
	char id[STORE_ID_MAX + 1];	/* ARGV[2] of hold, settle, credit */
	int64_t arg[STORE_ARGS_MAX];	/* ARGV[k + 1] as decimals (but the
					 * id's, ARGV[2]) */
	enum store_status status;
	size_t nfields;			/* elements of the reply array */
	char field[STORE_FIELDS_MAX][STORE_FIELD_MAX];	/* each as text
					 * (integers in decimal; longer
					 * ones cut) */
	char err[160];			/* ERROR, FAILED: why */
	struct store_call *next;	/* private: the done list */
};

/* Start the client for cs (the first connect begins at once). d is the
 * loop's resolver for a host name (may be NULL for an address). The
 * scripts' SHA-1s are computed here. Returns 0, or -1 with a message. */
int store_open(const struct conf_store *cs, struct dns *d, uint64_t now_ms,
    char *err, size_t errlen);

/* Close the connection; calls in flight are dropped unanswered. */
void store_close(void);

/* Queue call (STORE_WAITING); the next store_step() writes it with the
 * others queued since (one write for a loop pass's calls). Returns 0, or -1 when it cannot be run now (down, queue
 * full, a wallet the keys cannot hold): its status is then STORE_FAILED
 * and err says why, and it is not on the done list. */
int store_submit(struct store_call *call, uint64_t now_ms);

/* 1 while calls are accepted (connected, or connecting after a wait),
 * 0 while down (and before store_open()). */
int store_accepts(void);

/* The socket to poll and its events into *events, or -1 when none. */
int store_fd(short *events);

/* The nearest deadline (a reply, a connect, a reconnect), 0 when none. */
uint64_t store_deadline(void);

/* Do the I/O revents allow (0: just progress), then the timers: a
 * reply's or connect's deadline, the time to reconnect. Finished calls
 * join the done list. */
void store_step(short revents, uint64_t now_ms);

/* The calls finished since the last take, oldest first, linked through
 * next; the list is emptied. */
struct store_call *store_done(void);

#endif
