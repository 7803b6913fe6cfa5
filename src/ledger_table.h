#ifndef RELAY_LEDGER_TABLE_H
#define RELAY_LEDGER_TABLE_H
/* What a ledger's lines add up to: each wallet's balance and today's
 * counters, and the table of async tasks. Plain memory: no I/O, no clock
 * (the day is an argument). An all-zero struct ledger_table is empty.
 * The lookups every request makes are inline below, as they were when
 * the table lived in ledger.c. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ledger_rec.h"
#include "ledger_recent.h"

/* One wallet as the ledger knows it. Wallets that are no longer in the
 * config are kept: their history is still money. */
struct ledger_wallet {
	char *name;		/* owned */
	int64_t balance_nano;	/* credits minus charges, wallet currency */
	int64_t today_nano;	/* charged on the day ledger_table.today */
	uint64_t today_requests;	/* charge lines on that day */
	struct ledger_recent *recent;	/* owned: its last charges, or NULL
					 * before its first */
};

/* An object created upstream (SPEC §9): an async (video) task, a
 * background response or any other object: who created it and where it
 * lives upstream. As an argument to ledger_task() only the five strings
 * and kind are read. */
struct ledger_task {
	const char *id;		/* the provider's object id */
	const char *wallet;
	const char *model;	/* the alias ("" for a plain object created
				 * without one) */
	const char *route;	/* "provider/upstream-model", or "provider" */
	const char *cred;	/* credential label, e.g. "ark#1" */
	enum ledger_obj_kind kind;
	int charged;		/* settled: a charge line with "task": this id
				 * exists (or a plain object, never charged) */
	long day;		/* its UTC day, days since 1970-01-01 */
	uint64_t line;		/* ledger line of the task record */
	char *mem;		/* owned block the five strings point into */
};

struct ledger_table {
	struct ledger_wallet *wallets;	/* owned, sorted by name */
	size_t nwallets, cap_wallets;
	struct ledger_task *tasks;	/* owned, in ledger order */
	size_t ntasks, cap_tasks;
	uint32_t *task_slots;	/* owned hash index: 0 empty, else index+1 */
	size_t cap_slots;	/* a power of two, or 0 */
	char today[11];		/* UTC day the today_* counters are for
				 * ("2026-11-24"), or "" */
};

/* Free everything t owns and leave it empty (today included). */
void ledger_table_free(struct ledger_table *t);

/* Index of the wallet called name in t->wallets (*found = 1), or where
 * it would be inserted (*found = 0). */
static inline size_t
ledger_table_wallet_pos(const struct ledger_table *t, const char *name,
    int *found)
{
	size_t lo = 0, hi = t->nwallets, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		c = strcmp(name, t->wallets[mid].name);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	*found = 0;
	return lo;
}

/* The wallet called name, or NULL. The pointer is valid until the next
 * wallet is inserted. */
static inline const struct ledger_wallet *
ledger_table_wallet_find(const struct ledger_table *t, const char *name)
{
	int found;
	size_t i = ledger_table_wallet_pos(t, name, &found);

	return found ? &t->wallets[i] : NULL;
}

/* Insert a wallet called name, which is not in t yet (sorted; balance
 * and counters 0). Returns it, or NULL when out of memory (t unchanged
 * but for spare capacity). The pointer is valid until the next wallet
 * is inserted. */
struct ledger_wallet *ledger_table_wallet_add(struct ledger_table *t,
    const char *name);

/* The wallet called name, inserted when new: as
 * ledger_table_wallet_find(), then ledger_table_wallet_add(). */
static inline struct ledger_wallet *
ledger_table_wallet(struct ledger_table *t, const char *name)
{
	int found;
	size_t i = ledger_table_wallet_pos(t, name, &found);

	return found ? &t->wallets[i] : ledger_table_wallet_add(t, name);
}

/* *out = a + delta (a balance and a change to it). Returns 0, or -1 with
 * *out unchanged when the sum leaves int64_t. */
static inline int
ledger_table_add(int64_t a, int64_t delta, int64_t *out)
{
	if ((delta > 0 && a > INT64_MAX - delta) ||
	    (delta < 0 && a < INT64_MIN - delta)) {
		return -1;
	}
	*out = a + delta;
	return 0;
}

/* Start day (its first 10 bytes, "2026-11-24") as t->today: every
 * wallet's today counters go to 0. */
void ledger_table_new_day(struct ledger_table *t, const char *day);

/* Count a charge of nano on day (its first 10 bytes) in w's today
 * counters. live: the charge was just made, so day is the current day,
 * and a day other than t->today starts a new one; otherwise (replay) only
 * charges of t->today count. The sum saturates: it is a statistic. */
static inline void
ledger_table_count_today(struct ledger_table *t, struct ledger_wallet *w,
    const char *day, int64_t nano, int live)
{
	if (memcmp(day, t->today, 10) != 0 || t->today[0] == '\0') {
		if (!live) {
			return;
		}
		ledger_table_new_day(t, day);
	}
	if (ledger_table_add(w->today_nano, nano, &w->today_nano) < 0) {
		w->today_nano = INT64_MAX;
	}
	w->today_requests++;
}

/* The task with this id, or NULL. The pointer is valid until the next
 * ledger_table_task_add(). */
struct ledger_task *ledger_table_task_find(const struct ledger_table *t,
    const char *id);

/* Add a task whose id is not in the table yet, at the end (ledger
 * order), uncharged (a plain object: settled); the five strings of k are
 * copied (cred may be ""), with its kind and day; line is its ledger
 * line. Returns 0, or -1 when out of memory (t unchanged but for spare
 * capacity). */
int ledger_table_task_add(struct ledger_table *t, const struct ledger_task *k,
    long day, uint64_t line);

/* Forget settled entries (never an open task) from before day min_day,
 * then, while more than max remain, the oldest settled ones down to nine
 * tenths of max. Indices into t->tasks change. Returns how many went. */
size_t ledger_table_task_forget(struct ledger_table *t, long min_day,
    size_t max);

#endif
