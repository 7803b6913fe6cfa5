#ifndef RELAY_ACCESS_H
#define RELAY_ACCESS_H
/* The access log (SPEC §11): one JSON line per request, off unless the
 * config says `access_log PATH|stderr`. Lines are gathered in a fixed
 * buffer and written with one write(2) at the end of a loop pass (or
 * when the buffer is full); SIGUSR1 makes the loop call access_reopen()
 * so that a rotated file is let go. The end of every request comes here
 * (access_request()), also to be counted in metrics. A line holds names and numbers of
 * the request, its exchange and its charge: a key, a credential, a header
 * or a query string is never one of its fields. */
#include <stddef.h>
#include <stdint.h>

struct conf;
struct exchange;
struct server_request;

/* Follow c's access_log: open it (or stderr), keep the file already open
 * when the path is the same, close it when off. Returns 0, or -1 (logged)
 * when the file cannot be opened: the log is then off. */
int access_config(const struct conf *c);

/* Test hook (access_request() checks it itself): 1 when lines are being
 * written. */
int access_on(void);

/* Request rq is over: count it (metrics_request(): its model series,
 * status and duration) and, when the log is on, add its line; once
 * (rq->accounted). ex: its exchange; NULL for an answer of the relay's
 * own, counted only once it has one (rq->status). *wallet: the index of
 * its wallet in c (-1: no key accepted), -1 once counted (a next answer
 * before a head is nobody's). A request whose client left before any
 * answer has status 499. */
void access_request(struct server_request *rq, const struct exchange *ex,
    const struct conf *c, long *wallet, uint64_t now_ms);

/* Test hook (access_request() is the way in): add the line of request
 * rq (written by access_flush() at the latest): ex is its exchange (model, route, attempts, what was
 * charged), NULL for an answer of the relay's own; wallet NULL when no
 * key was accepted; status 499 when the client left before an answer; ms
 * from its head to the end of its answer. */
void access_write(const struct server_request *rq, const struct exchange *ex,
    const char *wallet, const char *currency, int status, uint64_t ms);

/* Write the gathered lines. A failed write drops them (counted in
 * metrics.access_dropped, logged once per failure streak). */
void access_flush(void);

/* SIGUSR1: write what is gathered, close the file and open the path
 * again (a new file after rotation). */
void access_reopen(void);

/* Flush and close (at stop). */
void access_close(void);

#endif
