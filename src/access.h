#ifndef RELAY_ACCESS_H
#define RELAY_ACCESS_H
/* The access log (SPEC §11): one JSON line per request, off unless the
 * config says `access_log PATH|stderr`. Lines are gathered in a fixed
 * buffer and written with one write(2) at the end of a loop pass (or
 * when the buffer is full); SIGUSR1 makes the loop call access_reopen()
 * so that a rotated file is let go. What a line holds is chosen by the
 * caller from names and numbers: a key, a credential or a query string is
 * never one of its fields. */
#include <stddef.h>
#include <stdint.h>

struct conf;

/* One request, as its line says it. NULL strings are written as null. */
struct access_entry {
	const char *id;		/* x-request-id */
	const char *method;	/* method_len bytes */
	size_t method_len;
	const char *path;	/* path_len bytes, without the query */
	size_t path_len;
	const char *wallet;
	const char *model;	/* the alias asked for, NULL when none */
	const char *route;	/* "provider/model" that answered last */
	unsigned attempts;
	int status;		/* 499: the client left before an answer */
	uint64_t in, cached, cache_write, out;	/* charged tokens */
	int64_t cost_nano;	/* the debit, wallet currency */
	const char *currency;
	uint64_t ms;
};

/* Follow c's access_log: open it (or stderr), keep the file already open
 * when the path is the same, close it when off. Returns 0, or -1 (logged)
 * when the file cannot be opened: the log is then off. */
int access_config(const struct conf *c);

/* 1 when lines are being written. */
int access_on(void);

/* Add e's line (written by access_flush() at the latest). */
void access_write(const struct access_entry *e);

/* Write the gathered lines. A failed write drops them (counted in
 * metrics.access_dropped, logged once per failure streak). */
void access_flush(void);

/* SIGUSR1: write what is gathered, close the file and open the path
 * again (a new file after rotation). */
void access_reopen(void);

/* Flush and close (at stop). */
void access_close(void);

#endif
