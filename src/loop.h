#ifndef RELAY_LOOP_H
#define RELAY_LOOP_H
/* The relay's runtime: listeners and the one poll() loop that drives
 * every socket. Each pass builds the poll set from every connection's
 * interest (interest follows buffer levels: a full buffer stops reading,
 * which is the backpressure), waits until the nearest deadline, steps
 * whatever is ready, then handles timers, commits the pass's charges and
 * frees what closed during the pass. Objects are only freed at the end of
 * a pass, so a pointer taken during the pass stays valid. */

struct conf;

/* Serve conf until SIGTERM/SIGINT (drain, sync the ledger, return 0).
 * SIGHUP reloads config_path (NULL: the embedded default). Takes
 * ownership of conf. allow_broken_ledger starts even on a ledger whose
 * chain is broken (logged). Returns 0 on a clean stop, 1 when it could
 * not start. */
int loop_run(struct conf *conf, const char *config_path,
    int allow_broken_ledger);

#endif
