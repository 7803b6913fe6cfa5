/* ledger_replay: reading a ledger file back.
 *
 * Each line is one record chained to the line before by "prev", the hex
 * SHA-256 of that line's bytes without its newline, so an edited, dropped
 * or reordered line breaks the chain at the line after it. Replay reads
 * the file in bounded memory (a fixed read window, one line at a time),
 * checks every record and the chain, and applies each record to the
 * wallet and task tables: ledger_open() rebuilds the serving relay's
 * state this way, `relay ledger verify|report` check a file with every
 * problem fatal.
 *
 * What it does not do: write or cut the file (a torn tail goes to the
 * caller's cut()), or re-derive an amount (prices change; the line's
 * amount is what was charged).
 *
 * Ownership: the read window and the record are allocated per
 * ledger_replay_fd() call and freed before it returns; the tables are the
 * caller's. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger_rec.h"
#include "ledger_replay.h"
#include "ledger_table.h"
#include "log.h"
#include "util.h"

enum {
	/* A whole maximal line fits after the carried-over partial one, and
	 * each read still asks for a useful amount. */
	READ_CAP = LEDGER_LINE_MAX + 1 + 32768
};

/* Sequential line reader over a fixed window. */
struct reader {
	int fd;
	char *buf;		/* owned, READ_CAP bytes */
	size_t start, len;	/* unread bytes are buf[start..len) */
	int eof;
	uint64_t line;		/* number of the line last returned */
	off_t end;		/* file offset past the last complete line */
	char prev[65];		/* hash of the line before the last one */
	char hash[65];		/* hash of the last line returned */
};

enum {
	LINE_OK = 1,		/* *p, *n: a complete line, no newline */
	LINE_EOF = 0,		/* *p, *n: torn bytes after the last newline */
	LINE_ERR = -1,		/* read(2) failed, errno set */
	LINE_LONG = -2		/* line r->line is over LEDGER_LINE_MAX */
};

static int
reader_next(struct reader *r, const char **p, size_t *n)
{
	char *nl;
	ssize_t got;

	for (;;) {
		nl = memchr(r->buf + r->start, '\n', r->len - r->start);
		if (nl != NULL) {
			*p = r->buf + r->start;
			*n = (size_t)(nl - *p);
			r->start += *n + 1;
			r->end += (off_t)*n + 1;
			r->line++;
			memcpy(r->prev, r->hash, sizeof r->hash);
			ledger_rec_hash(*p, *n, r->hash);
			return *n > LEDGER_LINE_MAX ? LINE_LONG : LINE_OK;
		}
		if (r->len - r->start > LEDGER_LINE_MAX) {
			r->line++;
			return LINE_LONG;
		}
		if (r->eof) {
			*p = r->buf + r->start;
			*n = r->len - r->start;
			return LINE_EOF;
		}
		memmove(r->buf, r->buf + r->start, r->len - r->start);
		r->len -= r->start;
		r->start = 0;
		got = read(r->fd, r->buf + r->len, READ_CAP - r->len);
		if (got < 0 && errno == EINTR) {
			continue;
		}
		if (got < 0) {
			return LINE_ERR;
		}
		if (got == 0) {
			r->eof = 1;
		}
		r->len += (size_t)got;
	}
}

/* How bad a problem is for ledger_open (verify and report stop on all). */
enum severity {
	P_SOFT,			/* billing oddity: log it and go on */
	P_DAMAGE,		/* fatal unless allow_broken */
	P_FATAL			/* cannot go on at all */
};

/* Report a problem on line. Returns 0 when replay goes on, -1 with err
 * set when it stops. */
static int
problem(const struct ledger_replay *rp, uint64_t line, enum severity sev,
    const char *what, const char *detail, char *err, size_t errlen)
{
	if (rp->mode != LEDGER_REPLAY_OPEN) {
		return util_errf(err, errlen, "line %" PRIu64 ": %s: %s", line,
		    what, detail);
	}
	if (sev == P_SOFT || (sev == P_DAMAGE && rp->allow_broken)) {
		log_warn("ledger %s:%" PRIu64 ": %s (%s)%s", rp->path, line,
		    what, detail, sev == P_SOFT ? "" : "; going on because "
		    "broken ledgers are allowed");
		return 0;
	}
	return util_errf(err, errlen, "ledger %s:%" PRIu64 ": %s (%s)",
	    rp->path, line, what, detail);
}

/* The wallet a charge or credit moves, and its balance after it, once
 * the amount is known to be in the ledger's currency and in range.
 * Returns 1 with *w and *bal, 0 when a problem skips the record, -1 to
 * stop. */
static int
amount_ok(struct ledger_replay *rp, const struct ledger_rec *r,
    uint64_t line, struct ledger_wallet **w, int64_t *bal, char *err,
    size_t errlen)
{
	char detail[LEDGER_REC_WHY_MAX];

	if (rp->cur[0] == '\0') {
		memcpy(rp->cur, r->cur, 4);
	}
	if (strcmp(r->cur, rp->cur) != 0) {
		if (r->cur_keyed) {
			snprintf(detail, sizeof detail, "amounts in %s_nano, "
			    "but the ledger's currency is %s; a ledger keeps "
			    "one currency", r->cur, rp->cur);
		} else {
			snprintf(detail, sizeof detail, "missing \"%s_nano\"",
			    rp->cur);
		}
		return problem(rp, line, P_DAMAGE, "wrong currency", detail,
		    err, errlen);
	}
	if ((*w = ledger_table_wallet(rp->tab, r->wallet)) == NULL) {
		return util_errf(err, errlen, "out of memory");
	}
	if (ledger_table_add((*w)->balance_nano,
	    r->type == LEDGER_REC_CHARGE ? -r->amount : r->amount, bal) < 0) {
		return problem(rp, line, P_DAMAGE, "balance out of range",
		    r->wallet, err, errlen);
	}
	return 1;
}

/* The charge among the wallet's recent ones (no duration: not in the
 * ledger). */
static int
recent_add(struct ledger_wallet *w, const struct ledger_rec *r)
{
	const uint64_t n[4] = { r->in, r->cached, r->cache_write, r->out };

	return ledger_recent_charge(&w->recent, r->ts, r->id, r->model, n,
	    r->usd_nano, r->amount, LEDGER_RECENT_NO_MS, (unsigned)r->status,
	    r->estimated);
}

int
ledger_replay_apply(struct ledger_replay *rp, const struct ledger_rec *r,
    uint64_t line, char *err, size_t errlen)
{
	struct ledger_wallet *w = NULL;
	struct ledger_task *t, k;
	char detail[LEDGER_REC_WHY_MAX];
	int64_t bal = 0;
	int rc;

	if (r->type != LEDGER_REC_TASK &&
	    (rc = amount_ok(rp, r, line, &w, &bal, err, errlen)) <= 0) {
		return rc;
	}
	switch (r->type) {
	case LEDGER_REC_CHARGE:
		t = r->task[0] != '\0' ?
		    ledger_table_task_find(rp->tab, r->task) : NULL;
		if (r->task[0] != '\0' && (t == NULL || t->charged)) {
			snprintf(detail, sizeof detail, "task \"%s\" %s",
			    r->task, t == NULL ? "is not recorded by an "
			    "earlier line" : "was charged before");
			if (problem(rp, line, P_SOFT, "bad task charge",
			    detail, err, errlen) < 0) {
				return -1;
			}
		}
		w->balance_nano = bal;
		ledger_table_count_today(rp->tab, w, r->ts, r->amount, 0);
		if (t != NULL) {
			t->charged = 1;
		}
		if (rp->recent && recent_add(w, r) < 0) {
			return util_errf(err, errlen, "out of memory");
		}
		if (rp->charged != NULL) {
			return rp->charged(rp->arg, r, line, err, errlen);
		}
		return 0;
	case LEDGER_REC_CREDIT:
		w->balance_nano = bal;
		return 0;
	case LEDGER_REC_TASK:
		if ((t = ledger_table_task_find(rp->tab, r->id)) != NULL) {
			snprintf(detail, sizeof detail, "task \"%s\" was "
			    "recorded on line %" PRIu64, r->id, t->line);
			return problem(rp, line, P_SOFT, "task recorded twice",
			    detail, err, errlen);
		}
		k = (struct ledger_task){ .id = r->id, .wallet = r->wallet,
		    .model = r->model, .route = r->route, .cred = r->cred,
		    .kind = r->kind };
		if (ledger_table_task_add(rp->tab, &k,
		    ledger_recent_day_number(r->ts), line) < 0) {
			return util_errf(err, errlen, "out of memory");
		}
		return 0;
	}
	return 0;
}

/* Check line rd->line, p[0..n), and apply it. Returns 0 to go on, -1
 * with err to stop. */
static int
replay_line(struct ledger_replay *rp, const struct reader *rd,
    struct ledger_rec *rec, const char *p, size_t n, char *err,
    size_t errlen)
{
	char why[LEDGER_REC_WHY_MAX];

	if (ledger_rec_parse(p, n, rec, why, sizeof why) < 0) {
		return problem(rp, rd->line, P_DAMAGE, "malformed record", why,
		    err, errlen);
	}
	if (memcmp(rec->prev, rd->prev, 64) != 0) {
		if (rd->line == 1) {
			snprintf(why, sizeof why, "prev of the first line is "
			    "not 64 zeros");
		} else {
			snprintf(why, sizeof why, "prev does not match line %"
			    PRIu64, rd->line - 1);
		}
		/* The record itself is sound: apply it anyway if we go on,
		 * the balance is what the file says. */
		if (problem(rp, rd->line, P_DAMAGE, "hash chain broken", why,
		    err, errlen) < 0) {
			return -1;
		}
	}
	return ledger_replay_apply(rp, rec, rd->line, err, errlen);
}

/* The file ends in a torn line p[0..n) after rd's complete lines. */
static int
torn_tail(struct ledger_replay *rp, const struct reader *rd, const char *p,
    size_t n, char *err, size_t errlen)
{
	switch (rp->mode) {
	case LEDGER_REPLAY_OPEN:
		return rp->cut(rp->arg, rd->end, p, n, rd->line + 1, err,
		    errlen);
	case LEDGER_REPLAY_VERIFY:
		return util_errf(err, errlen, "line %" PRIu64 ": torn last "
		    "line: no newline at the end of the file (the relay cuts "
		    "it off at start)", rd->line + 1);
	case LEDGER_REPLAY_REPORT:
		rp->torn_line = rd->line + 1;
		return 0;
	}
	return 0;
}

int
ledger_replay_fd(struct ledger_replay *rp, int fd, char *err, size_t errlen)
{
	struct reader rd;
	struct ledger_rec *rec = NULL;
	char why[LEDGER_REC_WHY_MAX];
	const char *p = NULL;
	size_t n = 0;
	int rc;

	memset(&rd, 0, sizeof rd);
	rd.fd = fd;
	memcpy(rd.hash, ledger_rec_zero_hash, sizeof rd.hash);
	if ((rd.buf = malloc(READ_CAP)) == NULL ||
	    (rec = malloc(sizeof *rec)) == NULL) {
		util_errf(err, errlen, "out of memory");
		goto fail;
	}
	while ((rc = reader_next(&rd, &p, &n)) != LINE_EOF) {
		if (rc == LINE_ERR) {
			util_errf(err, errlen, "%s%s: read: %s",
			    rp->mode == LEDGER_REPLAY_OPEN ? "ledger " : "",
			    rp->path, strerror(errno));
			goto fail;
		}
		if (rc == LINE_LONG) {
			snprintf(why, sizeof why, "longer than %d bytes",
			    LEDGER_LINE_MAX);
			problem(rp, rd.line, P_FATAL, "malformed line", why,
			    err, errlen);
			goto fail;
		}
		if (replay_line(rp, &rd, rec, p, n, err, errlen) < 0) {
			goto fail;
		}
	}
	if (n > 0 && torn_tail(rp, &rd, p, n, err, errlen) < 0) {
		goto fail;
	}
	memcpy(rp->last_hash, rd.hash, sizeof rd.hash);
	rp->lines = rd.line;
	rp->end = rd.end;
	free(rec);
	free(rd.buf);
	return 0;
fail:
	free(rec);
	free(rd.buf);
	return -1;
}
