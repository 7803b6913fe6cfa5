#ifndef RELAY_TASKS_H
#define RELAY_TASKS_H
/* Objects created upstream and their affinity (SPEC §3, §9): the id a
 * create call answers (a video task, a background or stored response, a
 * stored chat completion, a file, a vector store, ...) is recorded in the
 * ledger with its wallet, provider and credential; later calls that name
 * it go to that credential. A video task and a background response are
 * charged exactly once, when first seen finished (succeeded, completed),
 * from a client's read or from the relay's own poll of open ones (every
 * 30 s), so a client that never polls is charged too. Settled entries are
 * forgotten `affinity days=` after their creation, or past `affinity
 * max=` (the oldest first). */
#include <stddef.h>
#include <stdint.h>

#include "ledger_rec.h"		/* enum ledger_obj_kind */
#include "util.h"

struct conf;
struct conf_model;
struct upstream;
struct usage_doc;

#define TASKS_PATH "/v1/contents/generations/tasks"

/* The relay's own poll of one open task; its upstream's owner. */
struct task_poll;

/* Start the poll timer (the first poll one period from now; the period
 * is RELAY_TASK_POLL_MS in the environment, for tests, or 30 s). */
void tasks_init(uint64_t now_ms);

/* Stop every poll in flight. */
void tasks_free(void);

/* The provider answered the creation of an object (what its body said):
 * record who made it, what it is and where it lives. model is the alias
 * (NULL for a call without one); route "provider/model" or "provider".
 * Failures are logged. */
void tasks_record(const char *req_id, const struct usage_doc *answer,
    enum ledger_obj_kind kind, const char *wallet, const char *model,
    const char *route, const char *cred);

/* A call on object id answered status (what its body said): when a
 * charged kind has ended, charge it (succeeded, completed, incomplete) or
 * close it (failed, cancelled, expired). */
void tasks_settle(const char *id, const struct conf *c, const char *req_id,
    int status, const struct usage_doc *answer);

enum tasks_where {
	TASKS_FOUND,		/* *m, *cred and id are set */
	TASKS_UNKNOWN,		/* the path names no recorded object */
	TASKS_FOREIGN,		/* it names another wallet's (404: as
				 * unknown as a made-up one) */
	TASKS_GONE		/* its provider or credential is no longer
				 * configured: err says which (503) */
};

/* Where the object a request path names lives, for wallet under config
 * c: the first segment after /v1/ that is a recorded id decides. *m is
 * the provider's direct model (conf.direct; its one route), *cred the
 * credential (SIZE_MAX for auth=none), id (TASKS_ID_MAX + 1 bytes) the
 * object's id. */
enum tasks_where tasks_locate(const struct conf *c, struct view path,
    const char *wallet, const struct conf_model **m, size_t *cred, char *id,
    char *err, size_t errlen);

/* tasks_locate() for an object named by its id (a previous_response_id)
 * rather than by a path. */
enum tasks_where tasks_locate_id(const struct conf *c, struct view id,
    const char *wallet, const struct conf_model **m, size_t *cred,
    char *err, size_t errlen);

/* The credential that made recorded object id of wallet, if it lives with
 * provider prov under config c (Responses' previous_response_id): its
 * index, or SIZE_MAX. */
size_t tasks_cred_of(const struct conf *c, struct view id,
    const char *wallet, size_t prov);

/* 1 when id is an object recorded for a wallet other than wallet: to it
 * as unknown as a made-up id (a previous_response_id, say). */
int tasks_foreign(struct view id, const char *wallet);

/* Bytes of an object id, at most (SPEC §10); buffers hold one more. */
#define TASKS_ID_MAX 128

/* Every period: poll open tasks that no poll is asking already. Does
 * nothing while stopping. */
void tasks_tick(uint64_t now_ms, int stopping);

/* When tasks_tick() has work next. */
uint64_t tasks_due_ms(void);

/* A poll's upstream has news. */
void tasks_on_upstream(struct task_poll *tp, struct upstream *u,
    uint64_t now_ms);

#endif
