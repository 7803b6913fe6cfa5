#ifndef RELAY_LOOP_H
#define RELAY_LOOP_H
/* The relay's runtime: listeners and the one event loop that drives
 * every socket. A connection's interest follows its buffer levels (a full
 * buffer stops reading, which is the backpressure) and is registered with
 * the wait (watch.h: epoll, or poll() with RELAY_POLL=1) when it changes;
 * its deadlines go to a heap. A pass waits until a socket is ready or the
 * nearest deadline, steps what is ready, handles the deadlines due,
 * commits the pass's charges, then looks again at the connections the
 * pass touched and frees what closed. Objects are only freed at the end
 * of a pass, so a pointer taken during the pass stays valid. */

struct conf;

/* Serve conf until SIGTERM/SIGINT (drain, sync the ledger, return 0).
 * SIGHUP reloads config_path (NULL: the embedded default). Takes
 * ownership of conf. allow_broken_ledger starts even on a ledger whose
 * chain is broken (logged). Returns 0 on a clean stop, 1 when it could
 * not start. */
int loop_run(struct conf *conf, const char *config_path,
    int allow_broken_ledger);

#endif
