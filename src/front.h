#ifndef RELAY_FRONT_H
#define RELAY_FRONT_H
/* The front door: one client connection and what its requests mean.
 * It admits each request (path, method, key; SPEC §3, §7), sends it to
 * the relay's own endpoints (local.c) or to an exchange (exchange.c), and
 * moves the connection on once an answer is done. The loop calls in here
 * for every event of the connection or of its upstream. */
#include <stddef.h>
#include <stdint.h>

#include "billing.h"
#include "local.h"
#include "pool.h"

struct conf;
struct exchange;
struct server_conn;
struct upstream;

struct upload;

struct client {
	struct pool_owner tag;		/* first: POOL_OWNER_CLIENT (the
					 * upstream's owner is the client) */
	struct server_conn *sc;		/* owned */
	struct exchange *ex;		/* owned while a relay runs */
	struct exchange *spare;		/* owned: kept for the next request */
	struct billing_wait wait;	/* its answer waits for the commit */
	const struct conf *conf;	/* the config of the request in hand
					 * (its generation held), NULL before
					 * the first */
	long wallet;			/* this request's conf wallet, -1 open */
	unsigned char key[96];		/* the last client key accepted here
					 * (wiped on free); key_len 0 = none */
	size_t key_len;
	long key_wallet;
	struct upload *upload;		/* owned, made for the first streamed
					 * form body (upload.h) */
	struct local_wait lw;		/* an answer of its own waiting for
					 * the shared store (local.h) */
};

/* A client for an accepted connection (taken over), or NULL. */
struct client *front_new(struct server_conn *sc);

/* End what runs, free everything (the connection too). */
void front_free(struct client *cl);

/* The connection moved (after server_step()): handle what it has now
 * and go on as far as its buffered bytes allow. */
void front_step(struct client *cl, uint64_t now_ms);

/* Its upstream has news (after upstream_step() or a timeout). */
void front_on_upstream(struct client *cl, uint64_t now_ms);

/* Its answer waited for the commit and may go now. */
void front_release(struct client *cl, uint64_t now_ms);

/* The resolver has answered: a request waiting for it goes on. */
void front_resume(struct client *cl, uint64_t now_ms);

/* 1 while the client has gone but its answer is still read for its
 * usage (disconnect drain): not to be freed yet. */
int front_draining(const struct client *cl);

/* The nearest deadline of the connection or its request (0: none). */
uint64_t front_deadline(const struct client *cl);

/* Handle expired deadlines. */
void front_timeout(struct client *cl, uint64_t now_ms);

#endif
