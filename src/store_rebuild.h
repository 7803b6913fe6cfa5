#ifndef RELAY_STORE_REBUILD_H
#define RELAY_STORE_REBUILD_H
/* `relay store rebuild LEDGER...` (SPEC §12): the ledgers are the record
 * of truth, so a store that was lost (flushed, restarted without
 * persistence, replaced) is set again from them: each wallet's balance
 * (credits minus charges over every ledger of the fleet) and the charges
 * of the current UTC day (budget_day), by the store's REBUILD script,
 * which also recounts the holds still open in the store. Every relay of
 * the fleet must be stopped meanwhile: a charge settled between the
 * reading of the ledgers and the script would be lost or counted twice.
 *
 * A command, not the serving loop: it drives the store client (store.h)
 * with its own poll() until every wallet is answered. */
#include <stddef.h>
#include <stdio.h>

struct conf;

/* Rebuild the store of c from the npaths ledgers; one line per wallet on
 * out ("acme CNY 12.34 (the store had 12.30, 0.05 held)"). The wallets
 * are those of the ledgers and of c. Returns 0, or -1 with a message in
 * err (nothing is written to the store when a ledger does not verify). */
int store_rebuild(const struct conf *c, const char *const *paths,
    size_t npaths, FILE *out, char *err, size_t errlen);

#endif
