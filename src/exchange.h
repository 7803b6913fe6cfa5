#ifndef RELAY_EXCHANGE_H
#define RELAY_EXCHANGE_H
/* One relayed request: its walk over the candidates (route.c), the live
 * upstream attempt, failover until the first response byte reaches the
 * client, the body on its way (stream.c), and at the end the one charge
 * (billing.c). Until the head is sent any retryable outcome moves on to
 * the next candidate; after it a failure ends the client's response
 * visibly (SPEC §4). An exchange answers its client itself (a 503, the
 * relayed answer, a cut stream) and then reports itself over; its owner
 * (front.c) takes it back. */
#include <stddef.h>
#include <stdint.h>

#include "json.h"
#include "ledger_rec.h"
#include "route.h"
#include "stream.h"

struct billing_wait;
struct conf;
struct conf_model;
struct conf_wallet;
struct gen;
struct server_conn;
struct upload;
struct fleet_call;
struct store_call;
struct upstream;

/* A task id of at most 128 bytes (SPEC §10) and its NUL. */
#define EXCHANGE_TASK_ID_MAX 129

struct exchange {
	struct server_conn *sc;		/* borrowed: the client */
	void *owner;			/* borrowed: what its upstream's owner
					 * points at (pool.h) */
	struct billing_wait *wait;	/* borrowed: the owner's place among
					 * answers that wait for the commit */
	struct gen *gen;		/* borrowed */
	struct upstream *up;		/* the live attempt, or NULL */
	const struct conf_model *model;	/* borrowed from gen->conf */
	struct route_plan plan;
	size_t route;			/* current candidate */
	size_t cred;			/* SIZE_MAX for auth=none */
	unsigned attempts;		/* upstream attempts made */
	int fresh_retry;		/* a stale pooled conn was retried */
	struct json_request jr;		/* offsets into the request body */
	char *up_head;			/* owned: request head for this attempt
					 * (holds a secret: wiped) */
	size_t up_head_cap;
	size_t up_head_len;		/* bytes written (to wipe) */
	uint64_t deadline_ms;		/* `total` for the whole request */
	uint64_t attempt_ms;		/* when this attempt started */
	int head_sent;			/* the client has the response head */
	int status;			/* status the client got */
	struct stream body;		/* the response body on its way */
	const char *wallet;		/* borrowed from conf ("default" open) */
	int64_t hold_nano;		/* wallet-currency hold while running */
	uint64_t est_in, est_out;	/* the hold's token estimate */
	const struct conf_wallet *limits;	/* borrowed: the wallet whose
					 * limits apply (SPEC §12), or NULL */
	int limited;			/* admitted under limits: counted in
					 * the windows until settled */
	int64_t retry_s;		/* BILLING_LIMITED: Retry-After (-1:
					 * never) */
	int settled;			/* hold released, charge written */
	int resolving;			/* waiting for DNS for this candidate */
	int pinned;			/* one fixed candidate (an object's own
					 * provider and credential) */
	int no_charge;			/* free, or settled elsewhere (tasks) */
	int must_drain;			/* the provider goes on (and bills)
					 * after the client leaves: read the
					 * rest whatever `disconnect` says */
	int record;			/* a 2xx answer creates an object to
					 * record (tasks_record()) */
	enum ledger_obj_kind record_kind;	/* ... of this kind */
	char task_id[EXCHANGE_TASK_ID_MAX];	/* a call on this recorded
					 * object: its answer may settle it */
	char *log;			/* owned, lazily: the attempt list a 503
					 * shows */
	size_t log_len;
	int over;			/* answered and settled: give it back */
	const char *cut;		/* the answer was cut: "upstream" */
	int draining;			/* the client left; the rest is read for
					 * its usage (disconnect drain) */
	uint64_t seen_ms;		/* the time of its latest event */
	struct upload *upload;		/* borrowed: a streamed form body
					 * (upload.h), or NULL */
	int committed;			/* a piece of that body beyond the
					 * held bytes went to an upstream:
					 * no other attempt can be made */
	int streaming;			/* counted in metrics.open_streams */
	int attempt_live;		/* an attempt whose outcome is not
					 * counted yet (metrics) */
	int charged;			/* its charge line is written: */
	uint64_t charged_tokens[4];	/* in, cached, cache_write, out */
	uint64_t charged_nano;		/* the debit, wallet currency */
	struct fleet_call *fhold;	/* the shared store's HOLD in flight
					 * (fleet.h), or NULL */
	int fheld;			/* the store holds for it: settle
					 * there at the end */
	char fid[32];			/* the request id the store knows */
};

/* A new exchange, or NULL (no memory). */
struct exchange *exchange_new(void);

/* Ready for the owner's next request: everything cleared but the
 * buffers, the secret-bearing request head wiped. */
void exchange_recycle(struct exchange *ex);

void exchange_free(struct exchange *ex);

/* Hold the request's maximum cost for ex->wallet (SPEC §6): the prompt
 * as bytes / 4 tokens, max_tokens (or the config's holds max_tokens) out.
 * limited: the wallet has a balance to respect (not open mode). Then
 * ex->limits' rpm, tpm, max_streams and budget_day (when set), after the
 * balance: BILLING_LIMITED with ex->retry_s. Returns a billing_hold
 * result; msg says why on a refusal (nothing is then held). */
int exchange_hold(struct exchange *ex, int limited, uint64_t overdraft_nano,
    char *msg, size_t msglen);

/* The hold's tokens, input and output (what tpm counts), saturated. */
uint64_t exchange_hold_tokens(const struct exchange *ex);

/* Answer a hold that exchange_hold() did not take (hold, its result; msg,
 * its message): 402 insufficient_balance, 429 rate_limited with
 * Retry-After when waiting helps, 503 store_unavailable, or 503
 * server_busy (no memory). */
void exchange_refuse(struct exchange *ex, int hold, const char *msg,
    uint64_t now_ms);

/* With a shared store (fleet_on()): ask it for the hold exchange_hold()
 * would take in the process, against the balance and limits the fleet
 * shares. Returns BILLING_PENDING (done(owner, call, now) runs with the
 * answer: give it to exchange_fleet_held()), or BILLING_UNAVAILABLE with
 * msg (the store is unreachable: 503 store_unavailable). */
int exchange_fleet_hold(struct exchange *ex, uint64_t overdraft_nano,
    void (*done)(void *, const struct store_call *, uint64_t), void *owner,
    char *msg, size_t msglen, uint64_t now_ms);

/* The store's answer c to ex's HOLD: BILLING_HELD (start it), or a
 * refusal for exchange_refuse() with msg. */
int exchange_fleet_held(struct exchange *ex, const struct store_call *c,
    char *msg, size_t msglen);

/* Start relaying, under the `total` timeout. The client's connection
 * becomes BUSY. fresh: try ex->route and ex->cred as set (pinned) instead
 * of asking the route plan. */
void exchange_start(struct exchange *ex, uint64_t now_ms, int fresh);

/* Its upstream has news (after upstream_step() or a timeout). */
void exchange_on_upstream(struct exchange *ex, uint64_t now_ms);

/* The client can take more: pump the body on. */
void exchange_pump(struct exchange *ex, uint64_t now_ms);

/* The resolver has answered: try the candidate that waited for it. */
void exchange_resume(struct exchange *ex, uint64_t now_ms);

/* A streamed body did not arrive whole within `timeouts body`: unless
 * the answer has begun, cut the upstream and answer 408. */
void exchange_body_timeout(struct exchange *ex, uint64_t now_ms);

/* `total` ran out. */
void exchange_expire(struct exchange *ex, uint64_t now_ms);

/* The client's connection closed mid-answer. With `disconnect drain` the
 * exchange goes on reading the upstream for its usage, within `total`,
 * and returns 1: its owner keeps it (and the connection's memory) until
 * it is over. Else 0: end it. */
int exchange_detach(struct exchange *ex, uint64_t now_ms);

/* Settle (release the hold, write the charge of an answer the client
 * got) and drop the upstream. Idempotent; every way out goes here. */
void exchange_end(struct exchange *ex);

#endif
