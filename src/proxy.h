#ifndef RELAY_PROXY_H
#define RELAY_PROXY_H
/* The relay's runtime: listeners, the poll() loop, and the glue that pairs
 * each client request with upstream attempts (candidate walk, failover,
 * streaming with backpressure). */

struct conf;

/* Serve conf until SIGTERM/SIGINT (drain, sync the ledger, return 0).
 * SIGHUP reloads config_path (NULL: the embedded default). Takes
 * ownership of conf. allow_broken_ledger starts even on a ledger whose
 * chain is broken (logged). Returns 0 on a clean stop, 1 when it could
 * not start. */
int proxy_run(struct conf *conf, const char *config_path,
    int allow_broken_ledger);

#endif
