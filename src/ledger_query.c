/* ledger_query: the serving ledger's answers to questions (see ledger.h):
 * balances, today's counters, recent charges, tasks. Read-only; the
 * tables are ledger_table.c's, the writes ledger.c's. */
#include <string.h>

#include "ledger.h"
#include "ledger_table.h"

const struct ledger_recent *
ledger_recent_of(const struct ledger *l, const char *wallet)
{
	const struct ledger_wallet *w = ledger_table_wallet_find(&l->tab,
	    wallet);

	return w != NULL ? w->recent : NULL;
}

int64_t
ledger_balance(const struct ledger *l, const char *wallet)
{
	const struct ledger_wallet *w;

	w = ledger_table_wallet_find(&l->tab, wallet);
	return w != NULL ? w->balance_nano : 0;
}

void
ledger_today(const struct ledger *l, const char *wallet, const char *today,
    int64_t *charged_nano, uint64_t *requests)
{
	const struct ledger_wallet *w;

	w = ledger_table_wallet_find(&l->tab, wallet);
	*charged_nano = 0;
	*requests = 0;
	if (w != NULL && today != NULL && strcmp(today, l->tab.today) == 0) {
		*charged_nano = w->today_nano;
		*requests = w->today_requests;
	}
}

const struct ledger_task *
ledger_task_find(const struct ledger *l, const char *id)
{
	return ledger_table_task_find(&l->tab, id);
}

const struct ledger_task *
ledger_task_next_open(const struct ledger *l, size_t *cursor)
{
	while (*cursor < l->tab.ntasks) {
		if (!l->tab.tasks[(*cursor)++].charged) {
			return &l->tab.tasks[*cursor - 1];
		}
	}
	return NULL;
}
