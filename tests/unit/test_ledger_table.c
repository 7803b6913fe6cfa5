/* Unit tests for ledger_table: wallets stay sorted and unique as they are
 * inserted (through growth), balance arithmetic refuses to leave int64_t,
 * today's counters roll over on a new day (live) and ignore other days
 * (replay), and tasks are found by id through several index growths,
 * kept in ledger order with copied strings. */
#include <stdlib.h>
#include <string.h>

#include "ledger_table.h"
#include "t.h"

static void
test_wallets(void)
{
	static const char *const names[] = { "m", "c", "x", "a", "q", "b",
	    "z", "k", "e", "d", "y", "f" };
	struct ledger_table t;
	struct ledger_wallet *w;
	char name[8];
	size_t i;
	int sorted = 1;

	memset(&t, 0, sizeof t);
	ok(ledger_table_wallet_find(&t, "a") == NULL, "empty table");
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(name, sizeof name, "%s", names[i]);
		w = ledger_table_wallet(&t, name);
		ok(w != NULL && strcmp(w->name, names[i]) == 0 &&
		    w->name != name && w->balance_nano == 0,
		    "insert %s (a copy, balance 0)", names[i]);
		w->balance_nano = (int64_t)i + 1;
	}
	ok_int(t.nwallets, 12, "twelve wallets");
	for (i = 1; i < t.nwallets; i++) {
		sorted &= strcmp(t.wallets[i - 1].name, t.wallets[i].name) < 0;
	}
	ok(sorted, "sorted by name");
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		w = ledger_table_wallet(&t, names[i]);
		ok(w != NULL && w->balance_nano == (int64_t)i + 1,
		    "find %s again, not a new one", names[i]);
	}
	ok_int(t.nwallets, 12, "still twelve");
	ok(ledger_table_wallet_find(&t, "zz") == NULL &&
	    ledger_table_wallet_find(&t, "") == NULL, "unknown names");
	ok(ledger_table_wallet_find(&t, "k") == &t.wallets[6], "find k");
	ledger_table_free(&t);
	ok(t.nwallets == 0 && t.wallets == NULL && t.cap_wallets == 0,
	    "freed and empty");
	ok(ledger_table_wallet(&t, "again") != NULL && t.nwallets == 1,
	    "usable after free");
	ledger_table_free(&t);
}

static void
test_add(void)
{
	int64_t out = 7;

	ok(ledger_table_add(5, -7, &out) == 0 && out == -2, "5 - 7");
	ok(ledger_table_add(INT64_MAX - 1, 1, &out) == 0 && out == INT64_MAX,
	    "up to the maximum");
	out = 7;
	ok(ledger_table_add(INT64_MAX, 1, &out) < 0 && out == 7,
	    "over the maximum refused, out unchanged");
	ok(ledger_table_add(INT64_MIN + 1, -1, &out) == 0 && out == INT64_MIN,
	    "down to the minimum");
	ok(ledger_table_add(INT64_MIN, -1, &out) < 0, "under the minimum");
	ok(ledger_table_add(-1, INT64_MIN + 1, &out) == 0 && out == INT64_MIN,
	    "negative plus negative");
	ok(ledger_table_add(0, INT64_MIN, &out) == 0 && out == INT64_MIN,
	    "0 plus the minimum");
}

static void
test_today(void)
{
	struct ledger_table t;
	struct ledger_wallet *a, *b;

	memset(&t, 0, sizeof t);
	a = ledger_table_wallet(&t, "a");
	ledger_table_count_today(&t, a, "2026-11-24T10:00:00.000Z", 5, 0);
	ok(a->today_nano == 0 && a->today_requests == 0 && t.today[0] == '\0',
	    "replay without a day counts nothing");
	memcpy(t.today, "2026-11-24", 11);
	ledger_table_count_today(&t, a, "2026-11-24T10:00:00.000Z", 5, 0);
	ledger_table_count_today(&t, a, "2026-11-23T10:00:00.000Z", 7, 0);
	ok(a->today_nano == 5 && a->today_requests == 1,
	    "replay counts only today's charges");
	b = ledger_table_wallet(&t, "b");
	a = ledger_table_wallet(&t, "a");
	ledger_table_count_today(&t, b, "2026-11-24T11:00:00.000Z", 3, 1);
	ok(b->today_nano == 3 && a->today_nano == 5, "live, same day");
	ledger_table_count_today(&t, b, "2026-11-25T00:00:01.000Z", 4, 1);
	ok(strcmp(t.today, "2026-11-25") == 0 && b->today_nano == 4 &&
	    b->today_requests == 1 && a->today_nano == 0 &&
	    a->today_requests == 0, "a new day resets every wallet");
	ledger_table_count_today(&t, b, "2026-11-25T00:00:02.000Z", INT64_MAX,
	    1);
	ok(b->today_nano == INT64_MAX && b->today_requests == 2,
	    "the sum saturates");
	ledger_table_new_day(&t, "2026-11-26");
	ok(strcmp(t.today, "2026-11-26") == 0 && b->today_nano == 0 &&
	    b->today_requests == 0, "new_day");
	ledger_table_free(&t);
	ok(t.today[0] == '\0', "free forgets the day");
}

static void
test_tasks(void)
{
	struct ledger_table t;
	struct ledger_task *k, in;
	char id[32], wallet[32];
	size_t i;
	int found = 1, order = 1;

	memset(&t, 0, sizeof t);
	memset(&in, 0, sizeof in);
	ok(ledger_table_task_find(&t, "x") == NULL, "no tasks, no index");
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof id, "cgt-%zu", i);
		snprintf(wallet, sizeof wallet, "w%zu", i % 3);
		in.id = id;
		in.wallet = wallet;
		in.model = "seedance";
		in.route = "ark/seedance-250528";
		in.cred = i % 2 ? "ark#1" : "";
		in.kind = LEDGER_OBJ_TASK;
		if (ledger_table_task_add(&t, &in, 20000 + (long)i / 100,
		    i + 1) < 0) {
			break;
		}
	}
	ok_int(i, 1000, "a thousand tasks");
	ok(t.cap_slots >= 2000 && (t.cap_slots & (t.cap_slots - 1)) == 0,
	    "index at most half full, a power of two (%zu)", t.cap_slots);
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof id, "cgt-%zu", i);
		k = ledger_table_task_find(&t, id);
		found &= k != NULL && strcmp(k->id, id) == 0 &&
		    k->line == i + 1 && !k->charged;
		order &= k == &t.tasks[i];
	}
	ok(found, "each found by id with its line");
	ok(order, "kept in ledger order");
	k = ledger_table_task_find(&t, "cgt-7");
	ok(k != NULL && strcmp(k->wallet, "w1") == 0 &&
	    strcmp(k->model, "seedance") == 0 &&
	    strcmp(k->route, "ark/seedance-250528") == 0 &&
	    strcmp(k->cred, "ark#1") == 0, "strings copied");
	k = ledger_table_task_find(&t, "cgt-8");
	ok(k != NULL && k->cred[0] == '\0', "empty cred");
	ok(ledger_table_task_find(&t, "cgt-1000") == NULL &&
	    ledger_table_task_find(&t, "") == NULL, "unknown ids");
	ledger_table_free(&t);
	ok(t.ntasks == 0 && t.tasks == NULL && t.task_slots == NULL &&
	    t.cap_slots == 0, "freed");
}

/* Affinity is bounded (SPEC §9): settled entries go by age, then the
 * oldest settled past max; open tasks stay whatever their age. */
static void
test_forget(void)
{
	struct ledger_table t;
	struct ledger_task in, *k;
	char id[32];
	size_t i, gone;
	int found = 1;

	memset(&t, 0, sizeof t);
	memset(&in, 0, sizeof in);
	in.wallet = "w";
	in.route = "openai";
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof id, "obj-%zu", i);
		in.id = id;
		/* Every tenth a task still open; the rest plain objects. */
		in.kind = i % 10 == 0 ? LEDGER_OBJ_TASK : LEDGER_OBJ_PLAIN;
		in.model = i % 10 == 0 ? "seedance" : "";
		ok(ledger_table_task_add(&t, &in, 100 + (long)i, i + 1) == 0,
		    "add %zu", i);
	}
	k = ledger_table_task_find(&t, "obj-3");
	ok(k != NULL && k->charged && k->kind == LEDGER_OBJ_PLAIN &&
	    k->day == 103, "a plain object is settled from the start");
	ok(!ledger_table_task_find(&t, "obj-0")->charged, "a task is open");
	gone = ledger_table_task_forget(&t, 150, 1000);
	/* Days 100..149: 50 entries, 5 of them open tasks. */
	ok_int(gone, 45, "settled entries before the cut-off day go");
	ok(ledger_table_task_find(&t, "obj-3") == NULL &&
	    ledger_table_task_find(&t, "obj-0") != NULL &&
	    ledger_table_task_find(&t, "obj-40") != NULL &&
	    ledger_table_task_find(&t, "obj-150") == NULL, "which ones");
	for (i = 50; i < 100; i++) {
		snprintf(id, sizeof id, "obj-%zu", i);
		k = ledger_table_task_find(&t, id);
		found &= k != NULL && k->line == i + 1;
	}
	ok(found, "the index finds every one kept");
	ok_int(t.ntasks, 55, "55 kept");
	gone = ledger_table_task_forget(&t, 0, 40);
	ok_int(gone, 19, "past max, down to nine tenths of it");
	ok_int(t.ntasks, 36, "36 kept");
	ok(ledger_table_task_find(&t, "obj-51") == NULL &&
	    ledger_table_task_find(&t, "obj-99") != NULL &&
	    ledger_table_task_find(&t, "obj-50") != NULL,
	    "the oldest settled went; open tasks stay");
	ledger_table_free(&t);
}

int
main(void)
{
	test_wallets();
	test_add();
	test_today();
	test_tasks();
	test_forget();
	return t_done("ledger_table");
}
