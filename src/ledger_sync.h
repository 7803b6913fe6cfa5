#ifndef RELAY_LEDGER_SYNC_H
#define RELAY_LEDGER_SYNC_H
/* The fsync helper of sync=batch: a child process that fsyncs the ledger
 * whenever it is woken, so the event loop never waits for the disk. */
#include <sys/types.h>

/* Fork the helper for the open file fd (path is for messages). The child
 * closes every descriptor but stdin, stdout, stderr, fd and its end of
 * the socket, so it holds none of the relay's connections; it ignores
 * the signals a terminal sends the whole process group, and runs at the
 * lowest priority. Returns its pid with *wake set to our end of the
 * socket (non-blocking, close-on-exec), or 0 with *wake = -1 when it
 * cannot start (logged: the caller then fsyncs inline). Blocks for the
 * fork only. */
pid_t ledger_sync_start(int fd, const char *path, int *wake);

/* Ask the helper behind wake for an fsync, without blocking (a full
 * socket holds a request already). Returns 0, or -1 when the helper is
 * gone (logged; stop it with ledger_sync_stop() and fsync inline). */
int ledger_sync_wake(int wake, const char *path);

/* Close wake, so the helper sees the end of its socket and exits, and
 * reap pid. Blocks until it has exited: not long, it only ever waits in
 * read(2) or fsync(2). */
void ledger_sync_stop(pid_t pid, int wake);

#endif
