#ifndef RELAY_LOCAL_H
#define RELAY_LOCAL_H
/* The endpoints the relay answers itself (SPEC §3): /healthz, /metrics,
 * /v1/models (and /v1/models/<alias>), /v1/wallet, /v1/usage, the console at /, and the admin credit. */
#include <stdint.h>

#include "util.h"

struct conf;
struct server_conn;
struct fleet_call;
struct store_call;

/* 1 when path is one of the local GET endpoints. */
int local_is_endpoint(struct view path);

/* The alias in "/v1/models/<alias>", or an empty view when path is not
 * that. */
struct view local_model_alias(struct view path);

/* 1 for the local endpoints that need the caller's key (its wallet). */
int local_needs_key(struct view path);

/* An answer that waits for the shared store (fleet.h): the caller sets
 * done and owner; fc is the call while it runs (NULL: none). done()
 * gives the store's answer to local_answer(). */
struct local_wait {
	struct fleet_call *fc;
	void (*done)(void *, const struct store_call *, uint64_t);
	void *owner;
};

/* Answer a local GET endpoint under config c. wallet names the caller's
 * wallet (for /v1/wallet; "default" in open mode). With a shared store,
 * /v1/wallet asks it (lw). */
void local_serve(struct server_conn *sc, const struct conf *c,
    const char *wallet, struct local_wait *lw, uint64_t now_ms);

/* The store's answer call to what lw asked for wallet w: the wallet, a
 * credit's new balance, or 503 store_unavailable. */
void local_answer(struct server_conn *sc, const struct conf *c,
    const char *w, const struct store_call *call, uint64_t now_ms);

/* The wallet name in "/admin/wallets/<name>/credit", or an empty view
 * when path is not that. */
struct view local_credit_target(struct view path);

/* POST /admin/wallets/<name>/credit with {"amount":"100.00","note":...}:
 * append a credit line and answer the new balance. */
void local_credit(struct server_conn *sc, const struct conf *c,
    struct local_wait *lw, uint64_t now_ms);

#endif
