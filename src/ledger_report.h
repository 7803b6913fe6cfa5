#ifndef RELAY_LEDGER_REPORT_H
#define RELAY_LEDGER_REPORT_H
/* The CLI's read-only side of the ledger: `relay ledger verify` and
 * `relay ledger report`. Part of the ledger's API (ledger.h includes
 * this header); the two names predate the split, so they do not start
 * with ledger_report_ as a module's exports otherwise do. */
#include <stddef.h>
#include <stdio.h>

/* `relay ledger verify`: read path (no lock, read-only), check every line
 * (shape and types for its record type, one currency throughout, each
 * task recorded once and charged at most once) and the hash chain. On
 * success print "wallet CURRENCY balance" lines (2 decimals, wallets
 * sorted) to out and return 0. On damage return -1 with err naming the
 * first bad line: "line 7: hash chain broken: prev does not match line
 * 6". A torn last line is damage too. Reads in bounded memory apart from
 * the wallet and task tables. When <path>.queue holds charge lines a
 * relay answered and had not written when it died (its next start appends
 * them), a note on stderr says how many. */
int ledger_verify_file(const char *path, FILE *out, char *err,
    size_t errlen);

/* `relay ledger report FILE...`: the same checks on each of the npaths
 * files (each its own hash chain: one relay's ledger; all in one
 * currency), then one table of all their charges grouped by "wallet",
 * "model", "day" or "node" (the relay of a fleet that wrote the line, "-"
 * for none; by NULL means wallet), only from UTC day since ("YYYY-MM-DD")
 * on when since is not NULL: key, requests, in and out tokens, USD (6
 * decimals) and the wallet currency (2 decimals), then a total row. A
 * torn last line is skipped with a note. Returns 0, or -1 with a message
 * in err about file *bad. */
int ledger_report_files(const char *const *paths, size_t npaths,
    const char *by, const char *since, FILE *out, size_t *bad, char *err,
    size_t errlen);

struct ledger_table;

/* `relay store rebuild`: the ledgers' sum. Each of the npaths files is
 * checked as verify checks it (its own chain; all in one currency); sum
 * gets every wallet's balance over all of them, and in today_nano the
 * charges of UTC day today ("YYYY-MM-DD"). The caller frees sum with
 * ledger_table_free(). Returns 0, or -1 with err about file *bad. */
int ledger_sum_files(const char *const *paths, size_t npaths,
    const char *today, struct ledger_table *sum, size_t *bad, char *err,
    size_t errlen);

#endif
