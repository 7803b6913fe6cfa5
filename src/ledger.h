#ifndef RELAY_LEDGER_H
#define RELAY_LEDGER_H
/* The billing ledger (SPEC §6): an append-only file of JSON lines, each
 * chained to the previous one by its SHA-256, replayed at start to rebuild
 * wallet balances, today's usage and the table of async tasks. One relay
 * process holds a write lock on it; `relay ledger verify|report` only read
 * it. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "clock.h"
#include "ledger_rec.h"	/* LEDGER_LINE_MAX, LEDGER_RECORD_MAX,
				 * LEDGER_NAME_MAX */
#include "ledger_report.h"	/* ledger_verify_file, ledger_report_files */
#include "ledger_table.h"	/* struct ledger_wallet, ledger_task */

enum {
	LEDGER_BATCH_MS = 1000,		/* sync=batch: fsync at most this
					 * often (Redis's "everysec"); at
					 * 100 ms the flushes cost ~20 us of
					 * p99 at concurrency 1 (bench) and
					 * 10x the flash wear */
	LEDGER_GROUP_CAP = 65536,	/* group commit: bytes of charge lines
					 * that may wait for ledger_commit()
					 * (the queue file's room,
					 * LEDGER_QUEUE_CAP) */
	LEDGER_SYNCER_DELAY_MS = 100	/* sync=batch: the fsync helper is
					 * forked this long after open (or at
					 * the first write), off start-up */
};

/* When the ledger fsyncs its file. The config has its own enum
 * conf_sync; whoever opens the ledger maps one to the other, so the
 * ledger does not depend on conf. */
enum ledger_sync {
	LEDGER_SYNC_ALWAYS,	/* after every write (with group commit: every
				 * commit) */
	LEDGER_SYNC_BATCH,	/* at most every LEDGER_BATCH_MS, in a helper
				 * process */
	LEDGER_SYNC_NONE	/* never; the kernel writes back */
};

/* A finished request to be charged. Strings are borrowed for the call.
 * With currency USD the two amounts share the key "usd_nano", so the line
 * carries one usd_nano field: the debit, cur_nano. */
struct ledger_charge {
	const char *id;		/* request id (x-request-id) */
	const char *task;	/* the task this charge settles, or NULL */
	const char *wallet;
	const char *model;	/* the alias the client asked for */
	const char *route;	/* "provider/upstream-model" that answered */
	const char *cred;	/* credential label, or NULL to leave it out */
	int status;		/* HTTP status 0..999 (0: none received) */
	uint64_t in;		/* input tokens at the input price */
	uint64_t cached;	/* cache reads, at the cached price */
	uint64_t cache_write;	/* cache writes, at the cache-write price */
	uint64_t out;		/* output tokens */
	const char *cut;	/* an estimate for an answer cut short: by
				 * "client" or "upstream"; NULL */
	uint32_t ms;		/* the request's duration, kept for
				 * /v1/usage, not written (0xffffffff:
				 * unknown) */
	uint64_t usd_nano;	/* cost, from money_cost_usd_nano() */
	uint64_t cur_nano;	/* debit, from money_convert(); <= INT64_MAX */
	int estimated;		/* tokens were estimated, not reported */
};

/* A charge line waiting for ledger_commit(): what to undo if its write
 * fails. */
struct ledger_undo {
	const char *wallet;	/* the ledger_wallet's own name (stable) */
	int64_t nano;		/* debited */
	size_t task;		/* index of the task it settled, or SIZE_MAX */
	char day[11];		/* UTC day its today_* counters went to */
	char id[32];		/* request id, for the log */
};

/* An open ledger. Callers embed it; the fields are private by convention
 * and read only through the functions below. */
struct ledger {
	int fd;			/* O_APPEND, locked; -1 when closed */
	char *path;		/* owned */
	enum ledger_sync sync;
	char cur[4];		/* wallet currency, lower-case ("cny") */
	char cur_key[13];	/* its amount's key: ,"cny_nano": */
	struct clock_stamp stamp;	/* ts text of the current second */
	char last_hash[65];	/* hex SHA-256 of the last line: next prev */
	uint64_t lines;		/* complete lines in the file */
	off_t size;		/* bytes of complete lines: a failed write is
				 * cut back to here */
	int dirty;		/* written since the last fsync (batch) */
	int broken;		/* a partial write could not be undone: no more
				 * writes until a restart repairs the tail */
	uint64_t last_sync_ms;	/* monotonic time of the last fsync */
	uint64_t fsyncs;	/* fsync(2) calls made, for metrics */
	uint64_t writes;	/* write(2)s of complete lines, for metrics */
	/* sync=batch: the fsync runs in a helper process, so the event loop
	 * never waits for the disk; the loop asks for it with a byte on
	 * syncer_wake (see ledger_sync.c). The helper is forked after
	 * start-up, not at open. */
	pid_t syncer;		/* 0: none, batch syncs run inline */
	int syncer_wanted;	/* batch: not forked yet */
	uint64_t syncer_at_ms;	/* monotonic time to fork it */
	int syncer_wake;	/* our end of the helper's socket, or -1 */
	/* Group commit (ledger_group()): charge lines wait in pend and go
	 * out with one write(2) per ledger_commit(). */
	int group;
	char *pend;		/* LEDGER_GROUP_CAP bytes: malloc'ed, or in
				 * the mapped queue file; NULL before group */
	char *queue_map;	/* <path>.queue mapped (see ledger_group()),
				 * or NULL: then answers wait for the write */
	size_t pend_len;
	struct ledger_undo *undo;	/* owned, one per waiting line */
	size_t nundo, cap_undo;
	char file_hash[65];	/* hash of the last line in the file */
	/* The last queued line's hash is taken late (ledger_settle()): until
	 * then last_hash (and file_hash once that line is in the file) is
	 * stale, and the line's bytes wait in pend at unhashed_off. */
	int unhashed, unhashed_in_file;
	size_t unhashed_off, unhashed_len;
	struct ledger_table tab;	/* owned: wallets, today's counters,
					 * tasks */
	char node[LEDGER_NAME_MAX + 1];	/* "node" of every line, or "" */
};

/* Open (creating, mode 0600) and lock the ledger at path, then replay it:
 * check every line and the hash chain, rebuild balances, today's counters
 * (today is the current UTC day "2026-11-24", or NULL) and the task table.
 * A torn last line (no newline) is appended to "<path>.torn", cut off the
 * file and logged. A malformed line or a broken chain is an error naming
 * the line, unless allow_broken: then it is logged, a malformed line is
 * skipped, and the chain continues from the file's real last line.
 * Amounts must be in currency_lower ("cny"). Blocks on disk I/O only; use
 * at startup. Returns 0, or -1 with a message in err; after a failure l
 * holds nothing and needs no ledger_close(). The lock is a POSIX record
 * lock: it belongs to the process, and closing any other descriptor of
 * the same file in this process releases it. */
int ledger_open(struct ledger *l, const char *path, enum ledger_sync sync,
    const char *currency_lower, const char *today, int allow_broken,
    char *err, size_t errlen);

/* fsync (unless sync=none), unlock, close and free. l may be passed again
 * and is then left alone. */
void ledger_close(struct ledger *l);

/* From now on every line says "node":node (the relay of a fleet that
 * wrote it, SPEC §12); NULL or "" leaves it out. */
void ledger_set_node(struct ledger *l, const char *node);

/* Make sure wallet has an entry (balance 0 if new), so that later charges
 * do not allocate. For startup, from the config's wallets. Returns 0, or
 * -1 when out of memory. */
int ledger_add_wallet(struct ledger *l, const char *wallet);

/* Append a charge line and debit the wallet. With c->task set, the task
 * must be known and not yet charged (a task is charged exactly once).
 * The line is written with one write(2); sync=always then fsyncs (with
 * group commit on, the line is queued: see ledger_group()). Returns
 * 0, or -1 with a message in err and nothing changed (no line written, or
 * a partial one cut back off). An fsync failure after a complete write is
 * logged, not returned: the line is in the file and counts. */
int ledger_charge(struct ledger *l, const struct ledger_charge *c,
    char *err, size_t errlen);

/* Turn group commit on: from now on ledger_charge() applies the charge in
 * memory and queues its line (chained) instead of writing it, and
 * ledger_commit() writes every queued line with one write(2) (then
 * fsyncs for sync=always). A busy relay makes one write (and one fsync)
 * per loop pass instead of one per request. Credit and task lines, and a
 * full queue, commit first and are written at once.
 *
 * With sync=batch or none the queue is the file <path>.queue, mapped
 * into memory: a queued line is in the kernel's page cache at once, so
 * it survives a crash of the process, and the answer need not wait for
 * the write (ledger_queue_survives_crash()). Lines the ledger lacks when
 * the queue file is opened (the relay died between answer and write) are
 * appended to it and applied; queued lines that do not continue the
 * ledger's chain are kept in <path>.queue-unplaced and logged. Without
 * the file (it cannot be made: logged), and with sync=always, the queue
 * is plain memory and the event loop commits before the answers leave,
 * so a client never holds an answer whose charge is not in the file.
 * Returns 0, or -1 when out of memory (group stays off). */
int ledger_group(struct ledger *l);

/* Whether queued lines survive a crash of the process (the queue file is
 * mapped), so the answers of charged requests may leave before
 * ledger_commit(). */
int ledger_queue_survives_crash(const struct ledger *l);

/* Write the queued charge lines with one write(2); sync=always then
 * fsyncs, sync=batch marks the file dirty. On a failed write nothing of
 * the batch stays: a partial write is cut back, the charges are undone in
 * memory (balances, today's counters, settled tasks), the chain goes on
 * from the file's last line, and each lost charge is logged with its
 * request id. Returns the number of lines written, or -1. */
int ledger_commit(struct ledger *l);

/* Hash the last queued line now. Only the next line needs it (as its
 * prev), and that line would hash it itself; the event loop calls this
 * after the answers have left, so the hash is not on their way out. */
void ledger_settle(struct ledger *l);

/* Charge lines queued and not yet committed. */
size_t ledger_pending(const struct ledger *l);

/* Append a credit line: amount_nano (wallet currency; negative for a
 * correction) is added to wallet's balance. note may be NULL (""). Same
 * write, sync and error rules as ledger_charge(). */
int ledger_credit(struct ledger *l, const char *wallet, int64_t amount_nano,
    const char *note, char *err, size_t errlen);

/* Append a task line recording who created object t->id, what it is
 * (t->kind) and where (t->cred may be NULL; t->model may be NULL or ""
 * for a plain object). An id already in the table is refused. Same
 * write, sync and error rules as ledger_charge(). */
int ledger_task(struct ledger *l, const struct ledger_task *t, char *err,
    size_t errlen);

/* sync=batch: start the fsync helper when its time has come (see
 * LEDGER_SYNCER_DELAY_MS), and fsync when lines were written and
 * LEDGER_BATCH_MS have passed since the last fsync. Call from the event
 * loop with the monotonic now; does nothing for the other policies. */
void ledger_tick(struct ledger *l, uint64_t now_ms);

/* Monotonic time at which ledger_tick() has work, or UINT64_MAX when none
 * is pending; for the loop's poll timeout. */
uint64_t ledger_tick_due_ms(const struct ledger *l);

/* The recent charges of wallet (ledger_recent.h), or NULL when it has
 * none. Valid until the next charge. */
const struct ledger_recent *ledger_recent_of(const struct ledger *l,
    const char *wallet);

/* Wallet balance in nano-units of the wallet currency; 0 for a wallet the
 * ledger has never seen. */
int64_t ledger_balance(const struct ledger *l, const char *wallet);

/* Charged nano-units and charge count of wallet on the UTC day today
 * ("2026-11-24"); zeros when the ledger's counters are for another day or
 * the wallet is unknown. */
void ledger_today(const struct ledger *l, const char *wallet,
    const char *today, int64_t *charged_nano, uint64_t *requests);

/* Forget settled objects created before UTC day min_day (days since
 * 1970-01-01) and, past max, the oldest settled ones (SPEC §9: affinity
 * is bounded). Does nothing while charges wait for the group commit.
 * Returns how many went. */
size_t ledger_forget_tasks(struct ledger *l, long min_day, size_t max);

/* The task with this id, or NULL. The pointer (and its strings) stay
 * valid until the next ledger_task(), ledger_forget_tasks() or
 * ledger_close(). */
const struct ledger_task *ledger_task_find(const struct ledger *l,
    const char *id);

/* Iterate open (uncharged) tasks in ledger order: start with *cursor = 0;
 * each call returns the next one, or NULL at the end. Same validity as
 * ledger_task_find(). */
const struct ledger_task *ledger_task_next_open(const struct ledger *l,
    size_t *cursor);

#endif
