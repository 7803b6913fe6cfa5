#ifndef RELAY_FLEET_H
#define RELAY_FLEET_H
/* fleet: a serving relay's side of the shared store (SPEC §12). With a
 * `store` line, the wallets' balances, holds and limit windows live in
 * Redis or Valkey and change only by the scripts of store_scripts.h, so
 * the relays that name one store never overdraw a wallet or pass a limit
 * together. This module asks them on behalf of the requests (HOLD before
 * a metered call, READ for /v1/wallet, CREDIT for the admin credit) and
 * owns what must reach the store even when nobody waits for it: the
 * SETTLE of every request that held, the release of a hold whose asker
 * went away, a credit whose reply was lost. Those are sent again until
 * the store answered them (the scripts are idempotent by id), so a store
 * that restarts loses no charge and counts none twice.
 *
 * Each relay still writes its own ledger (the record of truth); the
 * store is the fleet's shared view of it (relay store rebuild).
 *
 * Not here: the wire (store.c), what a refusal means to a client
 * (exchange.c, local.c). */
#include <stddef.h>
#include <stdint.h>

#include "store.h"

struct conf;

/* A call the caller waits for. The fleet owns it: the caller keeps the
 * pointer until done() ran, or gives it up with fleet_forget(). */
struct fleet_call {
	struct store_call c;	/* first: what store_done() gives back */
	void (*done)(void *owner, const struct store_call *c,
	    uint64_t now_ms);
	void *owner;		/* NULL: the fleet's own (retried) */
	int forgotten;
	int credit;		/* a CREDIT whose reply was lost is retried */
	struct fleet_call *next;	/* the retry list */
};

/* Start the client when c has a store (the first connect at once).
 * Returns 0 (also without a store), or -1 with a message. */
int fleet_open(const struct conf *c, uint64_t now_ms, char *err,
    size_t errlen);

/* Close it; calls in flight and unsent settles are dropped (logged). */
void fleet_close(void);

/* 1 when the config this process started with has a store. */
int fleet_on(void);

/* Ask the store: script s for wallet with id and its arguments (as in
 * store_scripts.h; arg[1] is the id's place). done(owner, call, now)
 * runs once with the answer; a call the store could not run is
 * STORE_FAILED. Returns the call, or NULL when the store cannot take it
 * now (unreachable: the caller answers 503 store_unavailable); a CREDIT
 * refused so is kept and sent again, its ledger line being written. */
struct fleet_call *fleet_ask(enum store_script s, const char *wallet,
    const char *id, const int64_t *arg,
    void (*done)(void *, const struct store_call *, uint64_t), void *owner,
    uint64_t now_ms);

/* The caller of fc goes away: its answer is dropped; a HOLD it took is
 * released (a SETTLE of nothing), a CREDIT still goes through. */
void fleet_forget(struct fleet_call *fc, uint64_t now_ms);

/* Request id's hold on wallet is over: charge nano (0: none) for tokens.
 * Sent now and again until the store answered. */
void fleet_settle(const char *wallet, const char *id, int64_t nano,
    uint64_t tokens, uint64_t now_ms);

/* The loop's side: the socket and its events (-1: none), the nearest
 * deadline (0: none), and a step after poll() that runs the answers'
 * done(), calls seen(owner) (may be NULL) after each, and sends again
 * what must go. */
int fleet_fd(short *events);
uint64_t fleet_deadline(void);
void fleet_step(short revents, uint64_t now_ms, void (*seen)(void *owner));

/* 1 while calls are in flight or waiting to be sent again: a relay
 * that stops waits for them (within its drain time). */
int fleet_busy(void);

#endif
