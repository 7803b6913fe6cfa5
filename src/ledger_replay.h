#ifndef RELAY_LEDGER_REPLAY_H
#define RELAY_LEDGER_REPLAY_H
/* Reading a ledger back: every line held to the record grammar, the hash
 * chain followed from the first line, one currency throughout, each task
 * recorded once and charged at most once, and every record applied to a
 * ledger_table. In bounded memory: one line at a time through a fixed
 * read window (a line may be LEDGER_LINE_MAX bytes). */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ledger_rec.h"
#include "ledger_table.h"

enum ledger_replay_mode {
	LEDGER_REPLAY_OPEN,	/* ledger_open: damage (a malformed record, a
				 * broken chain, the wrong currency) is fatal
				 * unless allow_broken, then logged and the
				 * record skipped or applied as written;
				 * billing oddities are logged; a torn last
				 * line goes to cut() */
	LEDGER_REPLAY_VERIFY,	/* every problem is fatal, a torn tail too */
	LEDGER_REPLAY_REPORT	/* as verify, but a torn tail is skipped */
};

/* Called for each charge record applied (line: its number). Returns 0,
 * or -1 with err to stop the replay. */
typedef int ledger_replay_fn(void *arg, const struct ledger_rec *r,
    uint64_t line, char *err, size_t errlen);

/* LEDGER_REPLAY_OPEN: the file ends in the torn line p[0..n) (no
 * newline), line number line, after end bytes of complete lines; p is
 * valid for the call. Returns 0, or -1 with err to stop the replay. */
typedef int ledger_replay_cut_fn(void *arg, off_t end, const char *p,
    size_t n, uint64_t line, char *err, size_t errlen);

/* A replay: the caller fills the first part (zero the rest) and reads
 * the results after ledger_replay_fd(). */
struct ledger_replay {
	enum ledger_replay_mode mode;
	int allow_broken;	/* OPEN: damage is logged, not fatal */
	const char *path;	/* borrowed, for messages */
	struct ledger_table *tab;	/* borrowed: the state rebuilt */
	char cur[4];		/* the currency, lower-case; "" takes the
				 * first amount's */
	int recent;		/* keep each wallet's recent charges (the
				 * serving relay; verify and report don't) */
	ledger_replay_fn *charged;	/* or NULL */
	ledger_replay_cut_fn *cut;	/* OPEN only */
	void *arg;		/* for charged() and cut() */
	/* results */
	char last_hash[65];	/* hash of the last complete line: the next
				 * line's prev (64 zeros for none) */
	uint64_t lines;		/* complete lines */
	off_t end;		/* bytes of complete lines */
	uint64_t torn_line;	/* REPORT: the torn line skipped, or 0 */
};

/* Read fd from its offset to its end, checking and applying every line
 * to rp->tab as rp->mode says. Messages: "line 7: hash chain broken:
 * prev does not match line 6" (verify, report), "ledger PATH:7: hash
 * chain broken (prev does not match line 6)" (open). Returns 0 with the
 * results set, or -1 with err (rp->tab then holds what was applied so
 * far). Blocks on reading fd. */
int ledger_replay_fd(struct ledger_replay *rp, int fd, char *err,
    size_t errlen);

/* Apply one record that ledger_rec_parse() accepted, as line number
 * line, to rp->tab: by rp->mode's rules, as ledger_replay_fd() applies
 * each. Returns 0 (applied, or skipped after a logged problem), or -1
 * with err. */
int ledger_replay_apply(struct ledger_replay *rp, const struct ledger_rec *r,
    uint64_t line, char *err, size_t errlen);

#endif
