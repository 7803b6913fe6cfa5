#ifndef RELAY_TASKS_H
#define RELAY_TASKS_H
/* Async (video) tasks (SPEC §3): the task a provider creates is recorded
 * in the ledger with its wallet, route and credential; reads of it go to
 * that credential; it is charged exactly once, when it is first seen
 * succeeded, from a client's read or from the relay's own poll of open
 * tasks (every 30 s), so a client that never polls is charged too. */
#include <stddef.h>
#include <stdint.h>

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

/* The provider answered the creation of a task (what its body said):
 * record who made it and where it lives. Failures are logged. */
void tasks_record(const char *req_id, const struct usage_doc *answer,
    const char *wallet, const char *model, const char *route,
    const char *cred);

/* A read of task id answered status (what its body said): when the task
 * has ended, charge it (succeeded) or close it (failed, cancelled,
 * expired). */
void tasks_settle(const char *id, const struct conf *c, const char *req_id,
    int status, const struct usage_doc *answer);

enum tasks_where {
	TASKS_FOUND,		/* *m, *route, *cred are set */
	TASKS_UNKNOWN,		/* no such task for this wallet (404) */
	TASKS_GONE		/* its model, route or credential is no
				 * longer configured: err says which (503) */
};

/* Where task id of wallet lives under config c. */
enum tasks_where tasks_locate(const struct conf *c, const char *id,
    const char *wallet, const struct conf_model **m, size_t *route,
    size_t *cred, char *err, size_t errlen);

/* Every period: poll open tasks that no poll is asking already. Does
 * nothing while stopping. */
void tasks_tick(uint64_t now_ms, int stopping);

/* When tasks_tick() has work next. */
uint64_t tasks_due_ms(void);

/* A poll's upstream has news. */
void tasks_on_upstream(struct task_poll *tp, struct upstream *u,
    uint64_t now_ms);

#endif
