/* ledger_report: `relay ledger verify` and `relay ledger report`, the
 * CLI's read-only side of the ledger.
 *
 * Both replay the file with every problem fatal (ledger_replay.c), so
 * what they accept is what a relay would open without complaint. verify
 * prints each wallet's balance and, when a relay died with charges
 * queued, a note on stderr about the queue file; report sums the charge
 * lines by wallet, model or day into a table.
 *
 * What it does not do: lock, write or repair the file (a running relay
 * may hold it; the relay's own start repairs a torn tail).
 *
 * Ownership: the tables and the report's rows are allocated per call and
 * freed before it returns. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger_queue.h"
#include "ledger_rec.h"
#include "ledger_replay.h"
#include "ledger_report.h"
#include "ledger_table.h"
#include "money.h"
#include "util.h"

/* Replay path read-only into rp->tab (which the caller frees). */
static int
replay_file(const char *path, struct ledger_replay *rp, char *err,
    size_t errlen)
{
	int fd, rc;

	fd = util_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		return util_errf(err, errlen, "%s: %s", path, strerror(errno));
	}
	rp->path = path;
	rc = ledger_replay_fd(rp, fd, err, errlen);
	close(fd);
	return rc;
}

static void
upper(const char *cur, char out[9])
{
	size_t i;

	if (cur[0] == '\0') {
		memcpy(out, "currency", 9);
		return;
	}
	for (i = 0; i < 4; i++) {
		out[i] = cur[i] >= 'a' && cur[i] <= 'z' ?
		    (char)(cur[i] - 'a' + 'A') :
		    cur[i];
	}
}

/* `relay ledger verify` after a relay died with lines queued: say how
 * many of them the ledger lacks (its next start appends them), or that
 * they cannot be placed. Reads only. */
static void
queue_note(const char *path, const char *last_hash)
{
	const char *why;
	size_t n;

	if (ledger_queue_missing(path, last_hash, &n, &why) < 0) {
		fprintf(stderr, "note: %s.queue holds queued charge lines "
		    "that %s; the relay's next start keeps them in "
		    "%s.queue-unplaced\n", path, why, path);
	} else if (n > 0) {
		fprintf(stderr, "note: %s.queue holds %zu charge line%s that "
		    "a relay answered and had not written when it stopped; "
		    "the balances above leave %s out, and the relay's next "
		    "start appends %s\n", path, n, n == 1 ? "" : "s",
		    n == 1 ? "it" : "them", n == 1 ? "it" : "them");
	}
}

int
ledger_verify_file(const char *path, FILE *out, char *err, size_t errlen)
{
	struct ledger_table tab;
	struct ledger_replay rp;
	char cur[9], amount[MONEY_FMT_MAX];
	size_t i;

	memset(&tab, 0, sizeof tab);
	memset(&rp, 0, sizeof rp);
	rp.mode = LEDGER_REPLAY_VERIFY;
	rp.tab = &tab;
	if (replay_file(path, &rp, err, errlen) < 0) {
		ledger_table_free(&tab);
		return -1;
	}
	upper(rp.cur, cur);
	for (i = 0; i < tab.nwallets; i++) {
		money_format(tab.wallets[i].balance_nano, 2, amount,
		    sizeof amount);
		fprintf(out, "%s %s %s\n", tab.wallets[i].name, cur, amount);
	}
	queue_note(path, rp.last_hash);
	ledger_table_free(&tab);
	return 0;
}

/* One report row: charges summed under one key. */
struct row {
	char *key;		/* owned */
	uint64_t requests, in, cached, cache_write, out, usd_nano, cur_nano;
};

struct report {
	enum { BY_WALLET, BY_MODEL, BY_DAY, BY_NODE } by;
	const char *since;	/* "YYYY-MM-DD" or NULL */
	struct row *rows;	/* owned, sorted by key */
	size_t n, cap;
	struct row total;
};

static int
add_u64(uint64_t *a, uint64_t b)
{
	if (*a > UINT64_MAX - b) {
		return -1;
	}
	*a += b;
	return 0;
}

static int
row_add(struct row *w, const struct ledger_rec *r)
{
	/* Amounts are printed through int64_t. */
	if (add_u64(&w->requests, 1) < 0 ||
	    add_u64(&w->in, r->in) < 0 ||
	    add_u64(&w->cached, r->cached) < 0 ||
	    add_u64(&w->cache_write, r->cache_write) < 0 ||
	    add_u64(&w->out, r->out) < 0 ||
	    add_u64(&w->usd_nano, r->usd_nano) < 0 ||
	    add_u64(&w->cur_nano, (uint64_t)r->amount) < 0 ||
	    w->usd_nano > INT64_MAX || w->cur_nano > INT64_MAX) {
		return -1;
	}
	return 0;
}

static int
report_add(void *arg, const struct ledger_rec *r, uint64_t line, char *err,
    size_t errlen)
{
	struct report *rp = arg;
	struct row *row;
	char key[LEDGER_NAME_MAX + 1], *copy;
	size_t lo = 0, hi = rp->n, mid;
	int c = 1;

	if (rp->since != NULL && memcmp(r->ts, rp->since, 10) < 0) {
		return 0;
	}
	if (rp->by == BY_DAY) {
		memcpy(key, r->ts, 10);
		key[10] = '\0';
	} else if (rp->by == BY_NODE) {
		snprintf(key, sizeof key, "%s", r->node[0] != '\0' ? r->node :
		    "-");
	} else {
		snprintf(key, sizeof key, "%s", rp->by == BY_MODEL ? r->model :
		    r->wallet);
	}
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(key, rp->rows[mid].key)) == 0) {
			lo = mid;
			break;
		}
		if (c < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	if (c != 0) {
		if ((copy = strdup(key)) == NULL) {
			return util_errf(err, errlen, "out of memory");
		}
		row = util_grow(rp->rows, &rp->cap, rp->n + 1, sizeof *row);
		if (row == NULL) {
			free(copy);
			return util_errf(err, errlen, "out of memory");
		}
		rp->rows = row;
		memmove(&rp->rows[lo + 1], &rp->rows[lo],
		    (rp->n - lo) * sizeof *rp->rows);
		memset(&rp->rows[lo], 0, sizeof *rp->rows);
		rp->rows[lo].key = copy;
		rp->n++;
	}
	if (row_add(&rp->rows[lo], r) < 0 || row_add(&rp->total, r) < 0) {
		return util_errf(err, errlen,
		    "line %" PRIu64 ": totals out of range", line);
	}
	return 0;
}

enum { COLS = 8, CELL_MAX = 32 };

/* The number cells of a row. */
static void
row_cells(const struct row *w, char cell[COLS][CELL_MAX])
{
	snprintf(cell[1], CELL_MAX, "%" PRIu64, w->requests);
	snprintf(cell[2], CELL_MAX, "%" PRIu64, w->in);
	snprintf(cell[3], CELL_MAX, "%" PRIu64, w->cached);
	snprintf(cell[4], CELL_MAX, "%" PRIu64, w->cache_write);
	snprintf(cell[5], CELL_MAX, "%" PRIu64, w->out);
	money_format((int64_t)w->usd_nano, 6, cell[6], CELL_MAX);
	money_format((int64_t)w->cur_nano, 2, cell[7], CELL_MAX);
}

static void
print_row(FILE *out, const char *key, char cell[COLS][CELL_MAX],
    const int width[COLS])
{
	int i;

	fprintf(out, "%-*s", width[0], key);
	for (i = 1; i < COLS; i++) {
		fprintf(out, "  %*s", width[i], cell[i]);
	}
	fputc('\n', out);
}

static void
widen(int width[COLS], const char *key, char cell[COLS][CELL_MAX])
{
	int i, k;

	if ((k = (int)strlen(key)) > width[0]) {
		width[0] = k;
	}
	for (i = 1; i < COLS; i++) {
		if ((k = (int)strlen(cell[i])) > width[i]) {
			width[i] = k;
		}
	}
}

static void
header_cells(const char *cur, char cell[COLS][CELL_MAX])
{
	snprintf(cell[1], CELL_MAX, "requests");
	snprintf(cell[2], CELL_MAX, "in tokens");
	snprintf(cell[3], CELL_MAX, "cached");
	snprintf(cell[4], CELL_MAX, "cache write");
	snprintf(cell[5], CELL_MAX, "out tokens");
	snprintf(cell[6], CELL_MAX, "USD");
	snprintf(cell[7], CELL_MAX, "%s", cur);
}

static int
valid_day(const char *s)
{
	static const char shape[] = "dddd-dd-dd";
	size_t i;

	if (strlen(s) != sizeof shape - 1) {
		return 0;
	}
	for (i = 0; i < sizeof shape - 1; i++) {
		if (shape[i] == 'd' ? s[i] < '0' || s[i] > '9' :
		    s[i] != shape[i]) {
			return 0;
		}
	}
	return 1;
}

int
ledger_report_files(const char *const *paths, size_t npaths, const char *by,
    const char *since, FILE *out, size_t *bad, char *err, size_t errlen)
{
	struct report rep;
	struct ledger_table tab;
	struct ledger_replay rp;
	char cell[COLS][CELL_MAX], cur[9], first[4] = "";
	int width[COLS] = { 0 };
	size_t i, f;
	uint64_t *torn = calloc(npaths > 0 ? npaths : 1, sizeof *torn);
	int rc = -1;

	memset(&rep, 0, sizeof rep);
	memset(&tab, 0, sizeof tab);
	*bad = 0;
	if (torn == NULL) {
		util_errf(err, errlen, "out of memory");
		goto done;
	}
	if (by == NULL || strcmp(by, "wallet") == 0) {
		rep.by = BY_WALLET;
	} else if (strcmp(by, "model") == 0) {
		rep.by = BY_MODEL;
	} else if (strcmp(by, "day") == 0) {
		rep.by = BY_DAY;
	} else if (strcmp(by, "node") == 0) {
		rep.by = BY_NODE;
	} else {
		util_errf(err, errlen, "bad --by '%s' (wallet, model, day or "
		    "node)", by);
		goto done;
	}
	if (since != NULL && !valid_day(since)) {
		util_errf(err, errlen, "bad --since '%s' (YYYY-MM-DD)", since);
		goto done;
	}
	rep.since = since;
	/* Each file is its own chain (one relay's); the charges of all go
	 * into one table, in one currency. */
	for (f = 0; f < npaths; f++) {
		*bad = f;
		ledger_table_free(&tab);
		memset(&tab, 0, sizeof tab);
		memset(&rp, 0, sizeof rp);
		rp.mode = LEDGER_REPLAY_REPORT;
		rp.tab = &tab;
		rp.charged = report_add;
		rp.arg = &rep;
		memcpy(rp.cur, first, sizeof rp.cur);
		if (replay_file(paths[f], &rp, err, errlen) < 0) {
			goto done;
		}
		if (first[0] == '\0') {
			memcpy(first, rp.cur, sizeof first);
		}
		torn[f] = rp.torn_line;
	}
	upper(first, cur);
	header_cells(cur, cell);
	by = rep.by == BY_DAY ? "day" : rep.by == BY_MODEL ? "model" :
	    rep.by == BY_NODE ? "node" : "wallet";
	widen(width, by, cell);
	for (i = 0; i < rep.n; i++) {
		row_cells(&rep.rows[i], cell);
		widen(width, rep.rows[i].key, cell);
	}
	row_cells(&rep.total, cell);
	widen(width, "total", cell);
	header_cells(cur, cell);
	print_row(out, by, cell, width);
	for (i = 0; i < rep.n; i++) {
		row_cells(&rep.rows[i], cell);
		print_row(out, rep.rows[i].key, cell, width);
	}
	row_cells(&rep.total, cell);
	print_row(out, "total", cell, width);
	for (f = 0; f < npaths; f++) {
		if (torn[f] != 0) {
			fprintf(out, "note: %s%sline %" PRIu64 " is torn (no "
			    "newline at the end of the file) and was left "
			    "out\n", npaths > 1 ? paths[f] : "",
			    npaths > 1 ? ": " : "", torn[f]);
		}
	}
	rc = 0;
done:
	for (i = 0; i < rep.n; i++) {
		free(rep.rows[i].key);
	}
	free(rep.rows);
	free(torn);
	ledger_table_free(&tab);
	return rc;
}

int
ledger_sum_files(const char *const *paths, size_t npaths, const char *today,
    struct ledger_table *sum, size_t *bad, char *err, size_t errlen)
{
	struct ledger_table tab;
	struct ledger_replay rp;
	struct ledger_wallet *w;
	char first[4] = "";
	size_t f, i;

	memset(sum, 0, sizeof *sum);
	memset(&tab, 0, sizeof tab);
	*bad = 0;
	for (f = 0; f < npaths; f++) {
		*bad = f;
		ledger_table_free(&tab);
		memset(&tab, 0, sizeof tab);
		ledger_table_new_day(&tab, today);
		memset(&rp, 0, sizeof rp);
		rp.mode = LEDGER_REPLAY_VERIFY;
		rp.tab = &tab;
		memcpy(rp.cur, first, sizeof rp.cur);
		if (replay_file(paths[f], &rp, err, errlen) < 0) {
			goto fail;
		}
		if (first[0] == '\0') {
			memcpy(first, rp.cur, sizeof first);
		}
		for (i = 0; i < tab.nwallets; i++) {
			w = ledger_table_wallet(sum, tab.wallets[i].name);
			if (w == NULL) {
				util_errf(err, errlen, "out of memory");
				goto fail;
			}
			if (ledger_table_add(w->balance_nano,
			    tab.wallets[i].balance_nano, &w->balance_nano) < 0 ||
			    ledger_table_add(w->today_nano,
			    tab.wallets[i].today_nano, &w->today_nano) < 0) {
				util_errf(err, errlen, "the balance of %s is out "
				    "of range", tab.wallets[i].name);
				goto fail;
			}
		}
	}
	ledger_table_free(&tab);
	return 0;
fail:
	ledger_table_free(&tab);
	ledger_table_free(sum);
	return -1;
}
