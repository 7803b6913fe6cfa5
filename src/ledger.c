/* ledger: the append-only billing file of SPEC §6, as the serving relay
 * keeps it.
 *
 * Each event is one JSON line ending in "prev", the hex SHA-256 of the
 * previous line's bytes without its newline, so an edited, dropped or
 * reordered line breaks the chain at the line after it. A line is built in
 * a stack buffer and written with one write(2) to an O_APPEND descriptor:
 * a crash leaves either the whole line or a torn tail, which the next
 * start keeps aside in "<path>.torn" and cuts off. Earlier lines are never
 * rewritten; the only truncations are that tail cut and undoing a partial
 * write of our own.
 *
 * This file opens, locks and closes the ledger, formats and writes lines
 * (one at a time, or queued and written together: group commit), applies
 * the sync policy and answers queries. Its parts: the grammar of one line
 * (ledger_rec.c), the wallet and task tables (ledger_table.c), reading a
 * file back (ledger_replay.c), the mapped queue file (ledger_queue.c), the
 * fsync helper (ledger_sync.c) and `relay ledger verify|report`
 * (ledger_report.c). The charge path (format, queue, commit, settle) stays
 * in this file, inline where it was.
 *
 * What it does not do: compute prices (money.c does, and prices change,
 * so replay never re-derives an amount), hold requests or keep any clock
 * of its own beyond stamping lines.
 *
 * Ownership: struct ledger owns its path, the tables (ledger_table.c
 * frees them), the undo records and the group queue (malloc'ed, or the
 * queue file's mapping). ledger_close() is the single release site. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "json.h"
#include "ledger.h"
#include "ledger_queue.h"
#include "ledger_rec.h"
#include "ledger_replay.h"
#include "ledger_sync.h"
#include "ledger_table.h"
#include "log.h"
#include "util.h"

/* Group commit's queue can be the mapped queue file's. */
typedef char group_cap_is_queue_cap[(int)LEDGER_GROUP_CAP ==
    (int)LEDGER_QUEUE_CAP ? 1 : -1];

/* The compiler may not move memory stores across STORE_ORDER(): a queued
 * line's bytes reach the mapped queue file before the length that counts
 * them, so a process killed between the two leaves only whole lines.
 * (A kill lands between instructions, and the kernel sees the process's
 * stores in order, so only the compiler needs telling.) */
#if defined(__GNUC__)
#define STORE_ORDER() __asm__ __volatile__("" ::: "memory")
#else
static void no_op(void) {}
static void (*volatile opaque_call)(void) = no_op;
#define STORE_ORDER() opaque_call()
#endif

static int append_queued(void *arg, const char *q, size_t len,
    struct ledger_queue_lines *ql);

/* ---- tables ---- */

static void
ledger_init(struct ledger *l)
{
	memset(l, 0, sizeof *l);
	l->fd = -1;
	memcpy(l->last_hash, ledger_rec_zero_hash, sizeof l->last_hash);
}

/* Close and free everything l owns, without syncing. */
static void
release(struct ledger *l)
{
	if (l->fd >= 0) {
		close(l->fd);
	}
	ledger_table_free(&l->tab);
	free(l->path);
	if (l->queue_map != NULL) {
		ledger_queue_unmap(l->queue_map);
	} else {
		free(l->pend);
	}
	free(l->undo);
	ledger_init(l);
}

static void
sync_now(struct ledger *l, uint64_t now_ms)
{
	/* Nothing useful can be done about a failed fsync here: the line
	 * is in the page cache and counts; say so loudly. */
	if (fsync(l->fd) < 0) {
		log_error("ledger %s: fsync: %s", l->path, strerror(errno));
	}
	l->fsyncs++;
	l->dirty = 0;
	l->last_sync_ms = now_ms;
}

/* Stop the fsync helper, if there is one: syncs run inline from now. */
static void
stop_syncer(struct ledger *l)
{
	if (l->syncer != 0) {
		ledger_sync_stop(l->syncer, l->syncer_wake);
		l->syncer = 0;
		l->syncer_wake = -1;
	}
}

/* A torn tail: keep its bytes in "<path>.torn" first, then cut it, so a
 * crash in between can only keep it twice, never lose it. */
static int
cut_torn(void *arg, off_t end, const char *p, size_t n, uint64_t line,
    char *err, size_t errlen)
{
	struct ledger *l = arg;
	char *tpath = NULL;
	size_t k = strlen(l->path), done;
	int tfd = -1;

	if ((tpath = malloc(k + sizeof ".torn")) == NULL) {
		util_errf(err, errlen, "out of memory");
		goto fail;
	}
	memcpy(tpath, l->path, k);
	memcpy(tpath + k, ".torn", sizeof ".torn");
	tfd = util_open(tpath, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC |
	    O_NOFOLLOW, 0600);
	if (tfd < 0 || util_write_all(tfd, p, n, &done) < 0 ||
	    util_write_all(tfd, "\n", 1, &done) < 0 || fsync(tfd) < 0) {
		util_errf(err, errlen, "ledger %s: cannot keep the torn last "
		    "line in %s: %s", l->path, tpath, strerror(errno));
		goto fail;
	}
	if (ftruncate(l->fd, end) < 0) {
		util_errf(err, errlen, "ledger %s: cannot cut the torn last "
		    "line: %s", l->path, strerror(errno));
		goto fail;
	}
	if (l->sync != LEDGER_SYNC_NONE) {
		sync_now(l, clock_mono_ms());
	}
	log_warn("ledger %s:%" PRIu64 ": torn last line (%zu bytes, no "
	    "newline) cut off and appended to %s", l->path, line, n, tpath);
	close(tfd);
	free(tpath);
	return 0;
fail:
	if (tfd >= 0) {
		close(tfd);
	}
	free(tpath);
	return -1;
}

/* ---- the serving relay's side ---- */

static int
lock_file(struct ledger *l, char *err, size_t errlen)
{
	struct flock fl;

	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(l->fd, F_SETLK, &fl) == 0) {
		return 0;
	}
	if (errno != EACCES && errno != EAGAIN) {
		return util_errf(err, errlen, "ledger %s: cannot lock: %s",
		    l->path, strerror(errno));
	}
	memset(&fl, 0, sizeof fl);
	fl.l_type = F_WRLCK;
	fl.l_whence = SEEK_SET;
	if (fcntl(l->fd, F_GETLK, &fl) == 0 && fl.l_type != F_UNLCK) {
		util_errf(err, errlen, "ledger %s is locked by another relay "
		    "(pid %ld)", l->path, (long)fl.l_pid);
	} else {
		util_errf(err, errlen, "ledger %s is locked by another relay",
		    l->path);
	}
	return -1;
}

int
ledger_open(struct ledger *l, const char *path, enum ledger_sync sync,
    const char *currency_lower, const char *today, int allow_broken,
    char *err, size_t errlen)
{
	struct ledger_replay rp;

	ledger_init(l);
	l->sync = sync;
	if (strlen(currency_lower) != 3) {
		return util_errf(err, errlen, "ledger %s: bad currency '%s'",
		    path, currency_lower);
	}
	memcpy(l->cur, currency_lower, 4);
	memcpy(l->cur_key, ",\"", 2);	/* ,"cny_nano": */
	memcpy(l->cur_key + 2, l->cur, 3);
	memcpy(l->cur_key + 5, "_nano\":", 8);
	if (today != NULL && strlen(today) == 10) {
		memcpy(l->tab.today, today, 11);
	}
	if ((l->path = strdup(path)) == NULL) {
		util_errf(err, errlen, "out of memory");
		goto fail;
	}
	l->fd = util_open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		util_errf(err, errlen, "ledger %s: %s", path, strerror(errno));
		goto fail;
	}
	if (lock_file(l, err, errlen) < 0) {
		goto fail;
	}
	memset(&rp, 0, sizeof rp);
	rp.mode = LEDGER_REPLAY_OPEN;
	rp.allow_broken = allow_broken;
	rp.path = l->path;
	rp.tab = &l->tab;
	rp.recent = 1;
	memcpy(rp.cur, l->cur, sizeof rp.cur);
	rp.cut = cut_torn;
	rp.arg = l;
	if (ledger_replay_fd(&rp, l->fd, err, errlen) < 0) {
		goto fail;
	}
	memcpy(l->last_hash, rp.last_hash, sizeof l->last_hash);
	l->lines = rp.lines;
	l->size = rp.end;
	if (ledger_queue_recover(l->path, l->last_hash, append_queued, l, err,
	    errlen) < 0) {
		goto fail;
	}
	l->last_sync_ms = clock_mono_ms();
	l->syncer_wanted = l->sync == LEDGER_SYNC_BATCH;
	l->syncer_wake = -1;
	l->syncer_at_ms = l->last_sync_ms + LEDGER_SYNCER_DELAY_MS;
	return 0;
fail:
	release(l);
	return -1;
}

void
ledger_close(struct ledger *l)
{
	(void)ledger_commit(l);
	stop_syncer(l);
	if (l->fd >= 0 && l->sync != LEDGER_SYNC_NONE) {
		sync_now(l, clock_mono_ms());
	}
	release(l);
}

int
ledger_add_wallet(struct ledger *l, const char *wallet)
{
	return ledger_table_wallet(&l->tab, wallet) == NULL ? -1 : 0;
}

/* A line under construction; `full` is sticky once anything did not
 * fit, and is checked once at the end. */
struct line {
	char buf[LEDGER_RECORD_MAX];
	size_t n;
	int full;
};

static inline void
put_mem(struct line *b, const char *s, size_t k)
{
	if (b->full || k >= sizeof b->buf - b->n) {
		b->full = 1;
		return;
	}
	memcpy(b->buf + b->n, s, k);
	b->n += k;
}

static inline void
put_raw(struct line *b, const char *s)
{
	put_mem(b, s, strlen(s));
}

/* Literals go in with their length known at compile time: every line is
 * built on the request path. */
#define put_lit(b, lit) put_mem((b), (lit), sizeof(lit) - 1)

/* ,"key":"escaped val" -- pre is the literal ,"key":" */
static void
put_str_pre(struct line *b, const char *pre, size_t npre, const char *val)
{
	size_t n, i;
	long k;

	put_mem(b, pre, npre);
	/* One pass finds the end (NUL is below 0x20) or a byte to escape. */
	for (i = 0;; i++) {
		unsigned char c = (unsigned char)val[i];

		if (c < 0x20 || c == '"' || c == '\\') {
			break;
		}
	}
	if (val[i] == '\0') {	/* the usual case: nothing to escape */
		put_mem(b, val, i);
	} else if (!b->full) {
		n = i + strlen(val + i);
		k = json_escape(val, n, b->buf + b->n, sizeof b->buf - b->n);
		if (k < 0) {
			b->full = 1;
			return;
		}
		b->n += (size_t)k;
	}
	put_lit(b, "\"");
}

#define put_str(b, key, val) \
	put_str_pre((b), ",\"" key "\":\"", sizeof(",\"" key "\":\"") - 1, \
	    (val))

/* ,"key":[-]digits -- pre is the literal ,"key": */
static inline void
put_num_pre(struct line *b, const char *pre, size_t npre, int neg,
    uint64_t mag)
{
	char num[32];
	size_t k = 0;

	if (neg) {
		num[k++] = '-';
	}
	k += util_u64_dec(mag, num + k);
	put_mem(b, pre, npre);
	put_mem(b, num, k);
}

#define put_num(b, key, neg, mag) \
	put_num_pre((b), ",\"" key "\":", sizeof(",\"" key "\":") - 1, (neg), \
	    (mag))

/* ts, type and node, the start of every record; ts gets the time
 * stamp. */
static void
put_head(struct line *b, struct ledger *l, const char *type, char ts[32])
{
	clock_iso8601_cached(&l->stamp, ts, 32);
	b->n = 0;
	b->full = 0;
	put_lit(b, "{\"ts\":\"");
	put_raw(b, ts);
	put_lit(b, "\",\"type\":\"");
	put_raw(b, type);
	put_lit(b, "\"");
	if (l->node[0] != '\0') {
		put_str(b, "node", l->node);
	}
}

void
ledger_set_node(struct ledger *l, const char *node)
{
	snprintf(l->node, sizeof l->node, "%s", node != NULL ? node : "");
}

/* What charge and task lines share, in this order: id, the task a
 * charge settles (NULL: none), wallet, model, route, and cred (NULL: left
 * out). */
static inline void
put_routed(struct line *b, const char *id, const char *task,
    const char *wallet, const char *model, const char *route,
    const char *cred)
{
	put_str(b, "id", id);
	if (task != NULL) {
		put_str(b, "task", task);
	}
	put_str(b, "wallet", wallet);
	if (model != NULL) {
		put_str(b, "model", model);
	}
	put_str(b, "route", route);
	if (cred != NULL) {
		put_str(b, "cred", cred);
	}
}

/* The refusal once a partial write could not be undone. */
static int
stopped(const struct ledger *l, char *err, size_t errlen)
{
	return util_errf(err, errlen, "ledger %s: writes stopped after a "
	    "partial write could not be undone; restart to repair", l->path);
}

/* Refuse before formatting: a closed or stopped ledger, a missing or
 * oversized required string strs[i] (called names[i]), an oversized
 * optional one (opt, may be NULL). Names, labels, ids and notes are short;
 * the bound keeps every record far below LEDGER_RECORD_MAX. */
static int
check_write(const struct ledger *l, const char *const *strs,
    const char *const *names, size_t n, const char *opt, char *err,
    size_t errlen)
{
	size_t i;

	if (l->fd < 0) {
		return util_errf(err, errlen, "ledger is not open");
	}
	if (l->broken) {
		return stopped(l, err, errlen);
	}
	for (i = 0; i < n; i++) {
		if (strs[i] == NULL || strs[i][0] == '\0') {
			return util_errf(err, errlen, "ledger record without "
			    "%s", names[i]);
		}
		if (strlen(strs[i]) > LEDGER_NAME_MAX) {
			return util_errf(err, errlen, "ledger record %s "
			    "longer than %d bytes", names[i], LEDGER_NAME_MAX);
		}
	}
	if (opt != NULL && strlen(opt) > LEDGER_NAME_MAX) {
		return util_errf(err, errlen, "ledger record field longer "
		    "than %d bytes", LEDGER_NAME_MAX);
	}
	return 0;
}

/* The queued byte count in the queue file, if there is one. */
static void
queue_set_len(struct ledger *l, size_t n)
{
	if (l->queue_map != NULL) {
		ledger_queue_set_len(l->queue_map, n);
	}
}

/* ledger_settle(), inline in finish_line() on the request path. */
static inline void
settle(struct ledger *l)
{
	if (!l->unhashed) {
		return;
	}
	ledger_rec_hash(l->pend + l->unhashed_off, l->unhashed_len,
	    l->last_hash);
	if (l->unhashed_in_file) {
		memcpy(l->file_hash, l->last_hash, sizeof l->file_hash);
	}
	l->unhashed = 0;
}

void
ledger_settle(struct ledger *l)
{
	settle(l);
}

/* Close the line with prev and its newline. */
static int
finish_line(struct ledger *l, struct line *b, char *err, size_t errlen)
{
	settle(l);
	put_lit(b, ",\"prev\":\"");
	put_mem(b, l->last_hash, 64);
	put_lit(b, "\"}\n");
	if (b->full) {
		return util_errf(err, errlen, "ledger record longer than %d "
		    "bytes", LEDGER_RECORD_MAX);
	}
	return 0;
}

/* Lines are in the file now: count them and apply the sync policy. */
static void
written(struct ledger *l, size_t bytes, size_t lines)
{
	l->size += (off_t)bytes;
	l->lines += lines;
	l->writes++;
	if (l->unhashed) {
		/* file_hash follows at settle */
		l->unhashed_in_file = 1;
	} else {
		memcpy(l->file_hash, l->last_hash, sizeof l->file_hash);
	}
	if (l->sync == LEDGER_SYNC_ALWAYS) {
		sync_now(l, clock_mono_ms());
	} else if (l->sync == LEDGER_SYNC_BATCH) {
		l->dirty = 1;
	}
}

/* util_write_all() failed after done bytes: half a line would glue the next
 * one onto it, so cut back to the last complete line, which only we
 * append to. Returns the message's tail. */
static const char *
undo_partial(struct ledger *l, size_t done)
{
	if (done > 0 && ftruncate(l->fd, l->size) < 0) {
		l->broken = 1;
	}
	return l->broken ? "; a partial line is left and writes are "
	    "stopped" : "";
}

/* Finish the line with prev and write it with one write(2), after the
 * queued charge lines (their order in the file is the chain's). */
static int
append(struct ledger *l, struct line *b, char *err, size_t errlen)
{
	size_t done;
	int e;

	if (l->pend_len > 0) {
		(void)ledger_commit(l);
	}
	if (l->broken) {
		return stopped(l, err, errlen);
	}
	if (finish_line(l, b, err, errlen) < 0) {
		return -1;
	}
	if (util_write_all(l->fd, b->buf, b->n, &done) < 0) {
		e = errno;
		return util_errf(err, errlen, "ledger %s: write: %s%s",
		    l->path, strerror(e), undo_partial(l, done));
	}
	ledger_rec_hash(b->buf, b->n - 1, l->last_hash);
	written(l, b->n, 1);
	return 0;
}

/* Group commit: queue a finished charge line and what undoes it. */
static inline int
queue_line(struct ledger *l, struct line *b, const struct ledger_undo *u,
    char *err, size_t errlen)
{
	if (finish_line(l, b, err, errlen) < 0) {
		return -1;
	}
	if (l->nundo == l->cap_undo || b->n > LEDGER_GROUP_CAP - l->pend_len) {
		/* ledger_charge() made room first */
		return util_errf(err, errlen, "ledger group commit queue is "
		    "full");
	}
	memcpy(l->pend + l->pend_len, b->buf, b->n);
	l->unhashed = 1;	/* finish_line() settled the one before */
	l->unhashed_in_file = 0;
	l->unhashed_off = l->pend_len;
	l->unhashed_len = b->n - 1;
	l->pend_len += b->n;
	/* The line's bytes before the length that counts them. */
	STORE_ORDER();
	queue_set_len(l, l->pend_len);
	l->undo[l->nundo++] = *u;
	return 0;
}

/* ---- the queue file (see ledger_group() in ledger.h) ---- */

int
ledger_queue_survives_crash(const struct ledger *l)
{
	return l->queue_map != NULL;
}

/* ledger_queue_recover()'s append: the relay died with these charge
 * lines answered and not written; write them and apply them. */
static int
append_queued(void *arg, const char *q, size_t len,
    struct ledger_queue_lines *ql)
{
	struct ledger *l = arg;
	struct ledger_replay rp;
	char why[LEDGER_REC_WHY_MAX], err[LEDGER_REC_WHY_MAX + 64];
	size_t k = ql->first, n = ql->n, bytes = len - ql->at[k], i, done;

	if (util_write_all(l->fd, q + ql->at[k], bytes, &done) < 0) {
		log_error("ledger %s: cannot append %zu queued charge line%s: "
		    "%s%s", l->path, n - k, n - k == 1 ? "" : "s",
		    strerror(errno), undo_partial(l, done));
		return -1;
	}
	memset(&rp, 0, sizeof rp);
	rp.mode = LEDGER_REPLAY_OPEN;
	rp.path = l->path;
	rp.tab = &l->tab;
	rp.recent = 1;
	memcpy(rp.cur, l->cur, sizeof rp.cur);
	for (i = k; i < n; i++) {
		(void)ledger_rec_parse(q + ql->at[i], ql->len[i], &ql->rec,
		    why, sizeof why);
		if (ledger_replay_apply(&rp, &ql->rec, l->lines + 1, err,
		    sizeof err) < 0) {
			log_error("ledger %s: %s", l->path, err);
		}
		ledger_rec_hash(q + ql->at[i], ql->len[i], l->last_hash);
		l->lines++;
	}
	l->size += (off_t)bytes;
	memcpy(l->file_hash, l->last_hash, sizeof l->file_hash);
	log_warn("ledger %s: %zu charge line%s answered but not yet written "
	    "when the relay stopped: appended from the queue file", l->path,
	    n - k, n - k == 1 ? "" : "s");
	if (l->sync != LEDGER_SYNC_NONE && fsync(l->fd) < 0) {
		log_error("ledger %s: fsync after appending queued lines: %s",
		    l->path, strerror(errno));
	}
	return 0;
}

int
ledger_group(struct ledger *l)
{
	/* The shortest charge line is well over 128 bytes. */
	size_t cap = LEDGER_GROUP_CAP / 128;

	if (l->group) {
		return 0;
	}
	l->undo = malloc(cap * sizeof *l->undo);
	if (l->undo == NULL) {
		return -1;
	}
	if (l->sync != LEDGER_SYNC_ALWAYS && l->fd >= 0 &&
	    (l->queue_map = ledger_queue_map(l->path)) != NULL) {
		l->pend = l->queue_map + LEDGER_QUEUE_HEAD;
	} else if ((l->pend = malloc(LEDGER_GROUP_CAP)) == NULL) {
		free(l->undo);
		l->undo = NULL;
		return -1;
	}
	l->cap_undo = cap;
	l->group = 1;
	memcpy(l->file_hash, l->last_hash, sizeof l->file_hash);
	return 0;
}

size_t
ledger_pending(const struct ledger *l)
{
	return l->nundo;
}

int
ledger_commit(struct ledger *l)
{
	size_t done = 0, i, n = l->nundo, bytes = l->pend_len;
	const char *why;
	int e = EBADF;

	if (n == 0) {
		return 0;
	}
	l->pend_len = 0;
	l->nundo = 0;
	if (l->fd >= 0 && !l->broken) {
		if (util_write_all(l->fd, l->pend, bytes, &done) == 0) {
			queue_set_len(l, 0);
			written(l, bytes, n);
			return (int)n;
		}
		e = errno;
	}
	queue_set_len(l, 0);	/* undone below: not to be replayed */
	why = l->broken ? "writes are stopped" : strerror(e);
	log_error("ledger %s: write: %s%s; %zu charge line%s not written",
	    l->path, why, l->broken ? "" : undo_partial(l, done), n,
	    n == 1 ? "" : "s");
	/* Undo newest first; the chain goes on from the file's last line. */
	for (i = n; i-- > 0;) {
		const struct ledger_undo *u = &l->undo[i];
		struct ledger_wallet *w = ledger_table_wallet(&l->tab,
		    u->wallet);

		log_error("%s charge of %" PRId64 " %s nano to %s not written",
		    u->id, u->nano, l->cur, u->wallet);
		if (w != NULL) {
			w->balance_nano += u->nano;
			if (memcmp(u->day, l->tab.today, 11) == 0) {
				w->today_nano -= u->nano;
				w->today_requests--;
			}
		}
		if (u->task != SIZE_MAX && u->task < l->tab.ntasks) {
			l->tab.tasks[u->task].charged = 0;
		}
	}
	/* The unhashed line was in this batch; the file's last line was
	 * settled when the batch's first line took it as prev. */
	l->unhashed = 0;
	memcpy(l->last_hash, l->file_hash, sizeof l->last_hash);
	return -1;
}

/* The charge among the wallet's recent ones (GET /v1/usage). Memory
 * only: when there is none, /v1/usage misses it, the ledger does not. */
static void
recent_add(struct ledger_wallet *w, const char *ts,
    const struct ledger_charge *c)
{
	const uint64_t n[4] = { c->in, c->cached, c->cache_write, c->out };

	(void)ledger_recent_charge(&w->recent, ts, c->id, c->model, n,
	    c->usd_nano, (int64_t)c->cur_nano, c->ms, (unsigned)c->status,
	    c->estimated);
}

int
ledger_charge(struct ledger *l, const struct ledger_charge *c, char *err,
    size_t errlen)
{
	const char *const strs[] = { c->id, c->wallet, c->model, c->route };
	const char *const names[] = { "id", "wallet", "model", "route" };
	struct ledger_wallet *w;
	struct ledger_task *t = NULL;
	struct line b;
	char ts[32];
	int64_t bal;

	if (check_write(l, strs, names, 4, c->cred, err, errlen) < 0 ||
	    check_write(l, strs, names, 0, c->task, err, errlen) < 0) {
		return -1;
	}
	if (c->status < 0 || c->status > 999 ||
	    c->cur_nano > (uint64_t)INT64_MAX) {
		return util_errf(err, errlen, "ledger charge %s: status or "
		    "amount out of range", c->id);
	}
	if (c->task != NULL) {
		t = ledger_table_task_find(&l->tab, c->task);
		if (t == NULL || t->charged) {
			return util_errf(err, errlen, "ledger charge %s: task "
			    "%s %s", c->id, c->task,
			    t == NULL ? "is unknown" : "is already charged");
		}
	}
	if (l->group && (l->nundo == l->cap_undo ||
	    LEDGER_RECORD_MAX > LEDGER_GROUP_CAP - l->pend_len)) {
		(void)ledger_commit(l);	/* full: this pass writes twice */
	}
	if ((w = ledger_table_wallet(&l->tab, c->wallet)) == NULL) {
		return util_errf(err, errlen, "out of memory");
	}
	if (ledger_table_add(w->balance_nano, -(int64_t)c->cur_nano,
	    &bal) < 0) {
		return util_errf(err, errlen, "ledger charge %s: balance of "
		    "%s out of range", c->id, c->wallet);
	}
	put_head(&b, l, "charge", ts);
	put_routed(&b, c->id, c->task, c->wallet, c->model, c->route,
	    c->cred);
	put_num(&b, "status", 0, (uint64_t)c->status);
	put_num(&b, "in", 0, c->in);
	if (c->cached != 0) {
		put_num(&b, "cached", 0, c->cached);
	}
	if (c->cache_write != 0) {
		put_num(&b, "cache_write", 0, c->cache_write);
	}
	put_num(&b, "out", 0, c->out);
	/* With currency USD the two amounts are one field: the debit. */
	if (strcmp(l->cur, "usd") != 0) {
		put_num(&b, "usd_nano", 0, c->usd_nano);
	}
	put_num_pre(&b, l->cur_key, sizeof l->cur_key - 1, 0, c->cur_nano);
	if (c->estimated) {
		put_lit(&b, ",\"estimated\":true");
	}
	if (c->cut != NULL) {
		put_str(&b, "cut", c->cut);
	}
	if (l->group) {
		struct ledger_undo u;
		size_t n;

		u.wallet = w->name;
		u.nano = (int64_t)c->cur_nano;
		u.task = t != NULL ? (size_t)(t - l->tab.tasks) : SIZE_MAX;
		memcpy(u.day, ts, 10);
		u.day[10] = '\0';
		n = strlen(c->id) < sizeof u.id ? strlen(c->id) :
		    sizeof u.id - 1;
		memcpy(u.id, c->id, n);
		u.id[n] = '\0';
		if (queue_line(l, &b, &u, err, errlen) < 0) {
			return -1;
		}
	} else if (append(l, &b, err, errlen) < 0) {
		return -1;
	}
	w->balance_nano = bal;
	ledger_table_count_today(&l->tab, w, ts, (int64_t)c->cur_nano, 1);
	if (t != NULL) {
		t->charged = 1;
	}
	recent_add(w, ts, c);
	return 0;
}

int
ledger_credit(struct ledger *l, const char *wallet, int64_t amount_nano,
    const char *note, char *err, size_t errlen)
{
	const char *const names[] = { "wallet" };
	struct ledger_wallet *w;
	struct line b;
	char ts[32];
	int64_t bal;

	if (note == NULL) {
		note = "";
	}
	if (check_write(l, &wallet, names, 1, note, err, errlen) < 0) {
		return -1;
	}
	if ((w = ledger_table_wallet(&l->tab, wallet)) == NULL) {
		return util_errf(err, errlen, "out of memory");
	}
	if (ledger_table_add(w->balance_nano, amount_nano, &bal) < 0) {
		return util_errf(err, errlen, "ledger credit: balance of %s "
		    "out of range", wallet);
	}
	put_head(&b, l, "credit", ts);
	put_str(&b, "wallet", wallet);
	put_num_pre(&b, l->cur_key, sizeof l->cur_key - 1, amount_nano < 0,
	    amount_nano < 0 ?
	    (uint64_t)-(amount_nano + 1) + 1 : (uint64_t)amount_nano);
	put_str(&b, "note", note);
	if (append(l, &b, err, errlen) < 0) {
		return -1;
	}
	w->balance_nano = bal;
	return 0;
}

int
ledger_task(struct ledger *l, const struct ledger_task *t, char *err,
    size_t errlen)
{
	static const char *const kinds[] = { NULL, "response", "object" };
	const int modeled = t->model != NULL && t->model[0] != '\0';
	const char *const strs[] = { t->id, t->wallet, t->route, t->model };
	const char *const names[] = { "id", "wallet", "route", "model" };
	struct line b;
	char ts[32];

	/* A plain object may be made without a model; what is charged
	 * never is. */
	if (check_write(l, strs, names, modeled || t->kind !=
	    LEDGER_OBJ_PLAIN ? 4 : 3, t->cred, err, errlen) < 0) {
		return -1;
	}
	if (ledger_table_task_find(&l->tab, t->id) != NULL) {
		return util_errf(err, errlen, "ledger task %s is already "
		    "recorded", t->id);
	}
	put_head(&b, l, "task", ts);
	put_routed(&b, t->id, NULL, t->wallet, modeled ? t->model : NULL,
	    t->route, t->cred);
	if (kinds[t->kind] != NULL) {
		put_str(&b, "kind", kinds[t->kind]);
	}
	if (append(l, &b, err, errlen) < 0) {
		return -1;
	}
	/* The line is written; if the table cannot hold it now, a restart
	 * will (replay reads it back). */
	if (ledger_table_task_add(&l->tab, t, ledger_recent_day_number(ts),
	    l->lines) < 0) {
		log_error("ledger %s: out of memory recording task %s",
		    l->path, t->id);
	}
	return 0;
}

size_t
ledger_forget_tasks(struct ledger *l, long min_day, size_t max)
{
	if (l->nundo > 0) {
		return 0;	/* undo entries point into the table */
	}
	return ledger_table_task_forget(&l->tab, min_day, max);
}

void
ledger_tick(struct ledger *l, uint64_t now_ms)
{
	if (l->syncer_wanted && l->fd >= 0 && (now_ms >= l->syncer_at_ms ||
	    l->dirty)) {
		l->syncer_wanted = 0;	/* once: if it fails, inline */
		l->syncer = ledger_sync_start(l->fd, l->path,
		    &l->syncer_wake);
	}
	if (l->fd >= 0 && l->dirty && now_ms >= ledger_tick_due_ms(l)) {
		if (l->syncer != 0 &&
		    ledger_sync_wake(l->syncer_wake, l->path) == 0) {
			l->fsyncs++;
			l->dirty = 0;
			l->last_sync_ms = now_ms;
			return;
		}
		stop_syncer(l);	/* gone, if there was one */
		sync_now(l, now_ms);
	}
}

uint64_t
ledger_tick_due_ms(const struct ledger *l)
{
	uint64_t due = UINT64_MAX;

	if (l->syncer_wanted && l->fd >= 0) {
		due = l->syncer_at_ms;
	}
	if (l->sync == LEDGER_SYNC_BATCH && l->dirty &&
	    l->last_sync_ms + LEDGER_BATCH_MS < due) {
		due = l->last_sync_ms + LEDGER_BATCH_MS;
	}
	return due;
}
