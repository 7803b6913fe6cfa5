#ifndef RELAY_POOL_H
#define RELAY_POOL_H
/* Every upstream connection the relay has, in use or parked for reuse,
 * and the resolver that finds their addresses. A request asks the pool
 * for a connection to a provider (a parked one if it can, else a new one
 * once the name is resolved, never blocking) and gives it back when done:
 * parked if it can be reused, closed if not. Connections are freed at the
 * end of a loop pass (pool_sweep()). */
#include <stddef.h>
#include <stdint.h>

struct dns;
struct gen;
struct upstream;

/* What a connection's owner pointer (struct upstream's `owner`) points
 * at: every owner struct starts with this tag, so the loop knows whom to
 * tell when the connection has news. */
enum pool_owner_kind {
	POOL_OWNER_CLIENT = 1,	/* a client's request (front.h) */
	POOL_OWNER_TASK_POLL	/* the relay's own poll of a task (tasks.h) */
};

struct pool_owner {
	enum pool_owner_kind kind;
};

/* Start the resolver. Returns 0, or -1 with a message in err. */
int pool_init(char *err, size_t errlen);

/* Close and free every connection, stop the resolver. */
void pool_free(void);

/* The resolver, for the loop's poll set. */
struct dns *pool_dns(void);

enum pool_result {
	POOL_GOT,		/* *out is a connection (parked or connecting) */
	POOL_PENDING,		/* the name is being resolved: ask again once
				 * dns_generation() changes */
	POOL_FAILED		/* err says why */
};

/* A connection to provider p of generation g for owner: a parked one of
 * the same config (most recently parked first) unless fresh is set, else
 * a new one. Never blocks. */
enum pool_result pool_get(const struct gen *g, size_t p, int fresh,
    void *owner, uint64_t now_ms, struct upstream **out, char *err,
    size_t errlen);

/* The owner is done with u: park it when it can be reused (a complete
 * answer, keep-alive, the current config, the relay not stopping), else
 * close it. */
void pool_release(struct upstream *u, uint64_t now_ms);

/* The owner is done with u and it must not be reused: close it. */
void pool_drop(struct upstream *u);

/* From now on nothing is parked (the relay is stopping). */
void pool_stop(void);

/* Close every parked connection (a reload: they belong to the old
 * config). */
void pool_close_idle(void);

/* Free the connections closed during this pass. */
void pool_sweep(void);

/* Connections, for the poll set and the timers: pool_at(0 ..
 * pool_count() - 1). */
size_t pool_count(void);
struct upstream *pool_at(size_t i);

/* Parked connections. */
size_t pool_idle(void);

#endif
