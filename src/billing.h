#ifndef RELAY_BILLING_H
#define RELAY_BILLING_H
/* Money at run time (SPEC §6): the one ledger this process writes, the
 * holds of running requests, the price of a usage, the charge lines, and
 * the group commit that lets answers go once their charges are safe. */
#include <stddef.h>
#include <stdint.h>

struct conf;
struct conf_model;
struct conf_wallet;
struct ledger;
struct ledger_charge;

/* Open and replay the ledger named by c, make sure c's wallets have
 * entries, turn group commit on. Returns 0, or -1 with a message in
 * err. */
int billing_open(const struct conf *c, int allow_broken, char *err,
    size_t errlen);

/* The "node" of the ledger's lines from now on (SPEC §12): c's node
 * NAME; without one, the host name when c has a store; else none. At
 * open and on a reload. */
void billing_set_node(const struct conf *c);

/* Sync and close the ledger; forget the holds. */
void billing_close(void);

/* The ledger, for queries (balances, tasks) and the loop's timers. */
struct ledger *billing_ledger(void);

/* Tokens by price: input, cache reads, cache writes, output. */
struct billing_tokens {
	uint64_t in, cached, cache_write, out;
};

/* The cost of tokens t of model m under config c, each bucket at its own
 * price (SPEC §8): *usd in nano-USD, *cur in nano-units of the wallet
 * currency (at most INT64_MAX). Returns 0, or -1 when it does not fit in
 * 64 bits. The one cost function. */
int billing_cost(const struct conf *c, const struct conf_model *m,
    const struct billing_tokens *t, uint64_t *usd, uint64_t *cur);

/* Nano-units held for wallet by running requests. */
int64_t billing_held(const char *wallet);

enum billing_hold {
	BILLING_HELD,		/* *hold_nano is held */
	BILLING_REFUSED,	/* does not fit: msg says why (402) */
	BILLING_NOMEM,
	BILLING_LIMITED,	/* over a wallet limit (429): see
				 * billing_limits(); exchange_hold() only */
	BILLING_UNAVAILABLE,	/* the shared store cannot answer (503
				 * store_unavailable) */
	BILLING_PENDING		/* asked the shared store: its answer
				 * comes later (exchange_fleet_hold()) */
};

/* The hold for est_in input and est_out output tokens of model m: their
 * cost in nano-units of the wallet currency (capped far below
 * INT64_MAX). */
int64_t billing_hold_amount(const struct conf *c, const struct conf_model *m,
    uint64_t est_in, uint64_t est_out);

/* Hold the cost of est_in input and est_out output tokens for wallet
 * (limited to balance minus holds plus overdraft_nano when limited is
 * set; open mode is not). Single-threaded, so check and hold are one
 * step under any concurrency. */
enum billing_hold billing_hold(const struct conf *c,
    const struct conf_model *m, const char *wallet, int limited,
    uint64_t overdraft_nano, uint64_t est_in, uint64_t est_out,
    int64_t *hold_nano, char *msg, size_t msglen);

/* A request's hold is over. */
void billing_release(const char *wallet, int64_t hold_nano);

/* The limits of wallet wl (SPEC §12: rpm, tpm, max_streams, budget_day),
 * for a request whose hold of hold_nano (already taken by billing_hold())
 * estimates tokens (input and output); stream: it counts against
 * max_streams. 0: admitted, counted in the wallet's windows until
 * billing_limits_release(); 1: over a limit, nothing counted, msg says
 * which (the 429 rate_limited) and *retry_s when to come back (-1: this
 * request can never pass: it alone is over tpm or budget_day); -1: no
 * memory. Windows run on the monotonic clock; budget_day is the UTC day's
 * charges in the ledger plus the open holds. Refusals are counted for
 * /metrics. */
int billing_limits(const struct conf_wallet *wl, uint64_t tokens, int stream,
    int64_t hold_nano, int64_t *retry_s, char *msg, size_t msglen);

/* Count a refusal by limit why (enum limits_reason) of wallet wl and
 * say it in msg: tokens and hold_nano are the request's, spent the
 * wallet's charges today (-1: unknown, the store's), retry_s as
 * billing_limits() gives it. */
void billing_refused(const struct conf_wallet *wl, int why, uint64_t tokens,
    int64_t hold_nano, int64_t spent, int64_t retry_s, char *msg,
    size_t msglen);

/* Charge line ch was written: its tokens (all four buckets) join its
 * wallet's tpm window. billing_charge() calls it; so does a task's
 * settlement, which writes its own line. */
void billing_limits_charged(const struct ledger_charge *ch);

/* An admitted request is over: its tokens and stream are no longer
 * open. */
void billing_limits_release(const char *wallet, uint64_t tokens,
    int stream);

/* What a wallet's limits see now: admissions in the rpm window, tokens
 * in the tpm window (settled and open), open streams. */
void billing_limits_used(const char *wallet, uint64_t *rpm, uint64_t *tpm,
    uint64_t *streams);

/* Price ch->in and ch->out with model m of config c, fill ch->usd_nano
 * and ch->cur_nano, and write the charge (queued under group commit).
 * Failures are logged with the request id. Returns 0 or -1. */
int billing_charge(const struct conf *c, const struct conf_model *m,
    struct ledger_charge *ch);

/* An answer that waits for its charge line: its owner embeds one. */
struct billing_wait {
	struct billing_wait *next;	/* private */
	void *owner;			/* borrowed: given back when it may go */
	int waiting;
};

/* 1 when an answer finished now must wait for ledger_commit(): lines
 * are queued and the queue does not survive a crash of the process. */
int billing_must_wait(void);

/* Put w (for owner) on the list of answers that wait for the commit. */
void billing_wait(struct billing_wait *w, void *owner);

/* Take w off that list (its owner is going away). */
void billing_unwait(struct billing_wait *w);

/* 1 while charges or answers wait: the loop must not sleep. */
int billing_busy(void);

/* End of a loop pass that handled events: 1 when this pass's charges
 * may wait for the next pass (a busy pass, few lines waiting: one
 * write(2) carries more lines then). */
int billing_defer(int events);

/* Write the queued lines with one write(2) and hand back the answers
 * that waited for them: a list the caller walks with billing_take(),
 * letting each owner's answer go. Letting one go can finish more
 * requests (pipelined ones), so the caller commits again while
 * billing_busy() (a few rounds). */
struct billing_wait *billing_commit(void);

/* w no longer waits; returns the next one of the list. */
struct billing_wait *billing_take(struct billing_wait *w);

/* The answers are out: hash the last queued line now. */
void billing_settle(void);

#endif
