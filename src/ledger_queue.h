#ifndef RELAY_LEDGER_QUEUE_H
#define RELAY_LEDGER_QUEUE_H
/* The group-commit queue as a file: "<ledger>.queue", mapped into memory.
 * A charge line stored there is in the kernel's page cache at once, so it
 * outlives a crash of the process; the next start appends the queued
 * lines the ledger lacks, and keeps aside in "<ledger>.queue-unplaced"
 * the ones it cannot place. The file is LEDGER_QUEUE_HEAD bytes of header
 * (a magic string, then the queued byte count as a native uint64 at
 * LEDGER_QUEUE_LEN_AT) and LEDGER_QUEUE_CAP bytes of lines. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "ledger_rec.h"

enum {
	LEDGER_QUEUE_CAP = 65536,	/* bytes of lines: ledger.h's
					 * LEDGER_GROUP_CAP */
	LEDGER_QUEUE_HEAD = 64,
	LEDGER_QUEUE_LEN_AT = 16,
	LEDGER_QUEUE_FILE_SIZE = LEDGER_QUEUE_HEAD + LEDGER_QUEUE_CAP,
	/* The shortest charge line is well over 128 bytes. */
	LEDGER_QUEUE_MAX_LINES = LEDGER_QUEUE_CAP / 128 + 1
};

/* Map "<path>.queue" (path is the ledger's) for writing, with no lines
 * queued: made if need be, started over if it is not a queue file
 * (logged), its blocks reserved where the file system can, so that a
 * store into the mapping need not find space later. Call after
 * ledger_queue_recover(). Blocks on disk I/O: for start-up. Returns the
 * mapping of LEDGER_QUEUE_FILE_SIZE bytes (the lines go from
 * LEDGER_QUEUE_HEAD on), or NULL (logged: the queue stays in memory). */
char *ledger_queue_map(const char *path);

/* Unmap what ledger_queue_map() mapped. */
void ledger_queue_unmap(char *map);

/* Record that n bytes of lines are queued in map. The lines' bytes must
 * be stored first, and the compiler kept from moving them past this
 * call, so that a process killed in between leaves only whole lines.
 * Inline: once per charge. */
static inline void
ledger_queue_set_len(char *map, uint64_t n)
{
	memcpy(map + LEDGER_QUEUE_LEN_AT, &n, sizeof n);
}

/* Queued lines, and which of them a ledger lacks. */
struct ledger_queue_lines {
	size_t n;		/* whole lines */
	size_t first;		/* the ledger lacks lines first..n-1 */
	size_t at[LEDGER_QUEUE_MAX_LINES];	/* line i is q + at[i], */
	size_t len[LEDGER_QUEUE_MAX_LINES];	/* len[i] bytes, no newline */
	struct ledger_rec rec;	/* scratch: the last line parsed */
};

/* Split the queued bytes q[0..len) into lines and find those a ledger
 * whose last line hashes to last_hash lacks. The queue holds a prefix of
 * what is in the ledger, then what is not (a write may have stopped
 * anywhere): the newest queued line that is the ledger's last says where
 * the missing ones start, else the first line must continue the chain.
 * The missing lines must be charge lines, each chained to the one
 * before. Returns 0 with *ql filled, or -1 with *why ("are not whole
 * lines", "do not continue the ledger's chain", "are not a chain of
 * charge lines") when they cannot be placed. Reads only q. Test hook:
 * the recovery and verify paths call it inside this module; the tests
 * call it directly. */
int ledger_queue_place(const char *q, size_t len, const char *last_hash,
    struct ledger_queue_lines *ql, const char **why);

/* For ledger_queue_recover(): write the missing lines q[ql->at[ql->first]
 * ..len) to the ledger and apply them (ql->rec is free to parse them
 * into). Returns 0, or -1 when they could not be written (logged; they
 * are then kept aside). */
typedef int ledger_queue_append_fn(void *arg, const char *q, size_t len,
    struct ledger_queue_lines *ql);

/* At start-up, whatever the sync policy: a relay that died with lines
 * queued in "<path>.queue" has its lines placed against the ledger whose
 * last line hashes to last_hash; append(arg, ...) is called for the ones
 * the ledger lacks (not at all when none are), and lines that cannot be
 * placed or appended are kept in "<path>.queue-unplaced" (logged). Then
 * the queue is emptied. No queue file, or one that is not a queue file,
 * is fine. Returns 0, or -1 with err when a queue file exists but cannot
 * be read, or its lines could be neither appended nor kept aside: it may
 * hold answered charges, so the ledger must not open without them (the
 * queue file is left as it was). Blocks on disk I/O. */
int ledger_queue_recover(const char *path, const char *last_hash,
    ledger_queue_append_fn *append, void *arg, char *err, size_t errlen);

/* For `relay ledger verify`: how many lines "<path>.queue" holds that
 * the ledger whose last line hashes to last_hash lacks (0 when there is
 * no queue file, or it cannot be read). Returns 0 with *missing, or -1
 * with *why (as ledger_queue_place(), or "have a broken length") when
 * the queued lines cannot be placed. Reads only. */
int ledger_queue_missing(const char *path, const char *last_hash,
    size_t *missing, const char **why);

#endif
