/* Unit tests for ledger.h's API, the ledger as the relay uses it: exact
 * line format and key order, the hash chain over appends, replay after
 * reopen, a torn tail, tampering found by verify and open, the lock
 * against a second relay, the sync policies, tasks, a partial write
 * undone, group commit and the queue file across a crash. What verify and
 * report print for hand-written files is test_ledger_report's. Files live
 * in a fresh directory under /tmp. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "clock.h"
#include "ledger.h"
#include "log.h"
#include "t.h"
#include "ledger_t.h"

#define TS "{\"ts\":\"2026-11-20T10:00:00.000Z\","
#define CH TS "\"type\":\"charge\",\"id\":\"r\",\"wallet\":\"acme\"," \
	"\"model\":\"m\",\"route\":\"p/m\",\"status\":200,"

static struct ledger_charge
charge(const char *id, const char *wallet, uint64_t cur_nano)
{
	struct ledger_charge c;

	memset(&c, 0, sizeof c);
	c.id = id;
	c.wallet = wallet;
	c.model = "gpt-5.2";
	c.route = "openai/gpt-5.2";
	c.cred = "openai#1";
	c.status = 200;
	c.in = 1234;
	c.out = 567;
	c.usd_nano = 10097500;
	c.cur_nano = cur_nano;
	return c;
}

static int
ts_ok(const char *line)
{
	static const char shape[] = "{\"ts\":\"dddd-dd-ddTdd:dd:dd.dddZ\"";
	size_t i;

	for (i = 0; i < sizeof shape - 1; i++) {
		if (shape[i] == 'd' ? line[i] < '0' || line[i] > '9' :
		    line[i] != shape[i]) {
			return 0;
		}
	}
	return 1;
}

static void
test_format(void)
{
	const char *p = path_of("format.jsonl");
	struct ledger l;
	struct ledger_charge c;
	struct ledger_task t;
	char today[11], line[2048], prev[65], want[2048], *text;
	int rc;

	clock_today(today, sizeof today);
	rc = ledger_open(&l, p, LEDGER_SYNC_BATCH, "cny", today, 0, err,
	    sizeof err);
	ok(rc == 0, "open new ledger: %s", err);
	c = charge("req_1", "acme", 72702000);
	ok(ledger_charge(&l, &c, err, sizeof err) == 0, "charge: %s", err);
	ok(ledger_credit(&l, "acme", 100000000000, "top-up \"Q4\"\\\n", err,
	    sizeof err) == 0, "credit: %s", err);
	memset(&t, 0, sizeof t);
	t.id = "cgt-2026";
	t.wallet = "acme";
	t.model = "doubao-seedance-2-0-pro";
	t.route = "ark/doubao-seedance-2-0-pro-250528";
	t.cred = "ark#1";
	ok(ledger_task(&l, &t, err, sizeof err) == 0, "task: %s", err);
	c = charge("req_2", "acme", 5);
	c.task = "cgt-2026";
	c.cred = NULL;
	c.estimated = 1;
	c.in = 0;
	c.out = 1000;
	c.usd_nano = 6400000;
	ok(ledger_charge(&l, &c, err, sizeof err) == 0, "task charge: %s",
	    err);
	ledger_close(&l);

	text = slurp(p, NULL);
	ok(line_of(text, 1, line, sizeof line) && ts_ok(line), "line 1 ts");
	ok_str(line + 32, ",\"type\":\"charge\",\"id\":\"req_1\",\"wallet\":"
	    "\"acme\",\"model\":\"gpt-5.2\",\"route\":\"openai/gpt-5.2\","
	    "\"cred\":\"openai#1\",\"status\":200,\"in\":1234,\"out\":567,"
	    "\"usd_nano\":10097500,\"cny_nano\":72702000,\"prev\":\"0000000000"
	    "000000000000000000000000000000000000000000000000000000\"}",
	    "charge line");
	hex_sha(line, strlen(line), prev);
	ok(line_of(text, 2, line, sizeof line) && ts_ok(line), "line 2 ts");
	snprintf(want, sizeof want, ",\"type\":\"credit\",\"wallet\":\"acme\","
	    "\"cny_nano\":100000000000,\"note\":\"top-up \\\"Q4\\\"\\\\\\n\","
	    "\"prev\":\"%s\"}", prev);
	ok_str(line + 32, want, "credit line, escaped note, chained");
	hex_sha(line, strlen(line), prev);
	ok(line_of(text, 3, line, sizeof line) && ts_ok(line), "line 3 ts");
	snprintf(want, sizeof want, ",\"type\":\"task\",\"id\":\"cgt-2026\","
	    "\"wallet\":\"acme\",\"model\":\"doubao-seedance-2-0-pro\","
	    "\"route\":\"ark/doubao-seedance-2-0-pro-250528\",\"cred\":"
	    "\"ark#1\",\"prev\":\"%s\"}", prev);
	ok_str(line + 32, want, "task line");
	hex_sha(line, strlen(line), prev);
	ok(line_of(text, 4, line, sizeof line) && ts_ok(line), "line 4 ts");
	snprintf(want, sizeof want, ",\"type\":\"charge\",\"id\":\"req_2\","
	    "\"task\":\"cgt-2026\",\"wallet\":\"acme\",\"model\":\"gpt-5.2\","
	    "\"route\":\"openai/gpt-5.2\",\"status\":200,\"in\":0,\"out\":1000,"
	    "\"usd_nano\":6400000,\"cny_nano\":5,\"estimated\":true,"
	    "\"prev\":\"%s\"}", prev);
	ok_str(line + 32, want, "task charge: task after id, no cred, "
	    "estimated");
	ok(line_of(text, 5, line, sizeof line) == NULL, "four lines");
	ok(text[strlen(text) - 1] == '\n', "ends in a newline");
	free(text);
}

static void
test_usd(void)
{
	const char *p = path_of("usd.jsonl");
	struct ledger l;
	struct ledger_charge c;
	char line[2048], out[256], *text;

	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "usd", NULL, 0, err,
	    sizeof err) == 0, "open usd: %s", err);
	ledger_credit(&l, "w", 5000000000, NULL, err, sizeof err);
	c = charge("req_1", "w", 11000000);
	ok(ledger_charge(&l, &c, err, sizeof err) == 0, "usd charge: %s", err);
	ledger_close(&l);
	text = slurp(p, NULL);
	line_of(text, 2, line, sizeof line);
	ok(strstr(line, "\"out\":567,\"usd_nano\":11000000,\"prev\"") != NULL,
	    "USD: one usd_nano field, the debit: %s", line);
	line_of(text, 1, line, sizeof line);
	ok(strstr(line, "\"usd_nano\":5000000000,\"note\":\"\"") != NULL,
	    "USD credit: %s", line);
	free(text);
	ok(verify(p, out, sizeof out) == 0, "verify usd: %s", err);
	ok_str(out, "w USD 4.99\n", "usd balance");
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "usd", NULL, 0, err,
	    sizeof err) == 0 && ledger_balance(&l, "w") == 4989000000,
	    "usd replay: %s", err);
	ledger_close(&l);
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) < 0, "a usd ledger under a cny config is refused");
	ok(strstr(err, ":1: wrong currency (missing \"cny_nano\")") != NULL,
	    "wrong currency message: %s", err);
}

/* A ledger with 8 lines over three wallets, for replay and tampering. */
static void
build_chain(const char *p, struct ledger *l, const char *today)
{
	struct ledger_charge c;
	char id[16];
	int i;

	ok(ledger_open(l, p, LEDGER_SYNC_ALWAYS, "cny", today, 0, err,
	    sizeof err) == 0, "open chain: %s", err);
	ledger_credit(l, "acme", 1000000000000, "top-up", err, sizeof err);
	ledger_credit(l, "beta", 5000000000, "trial", err, sizeof err);
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "req_%d", i);
		c = charge(id, i % 2 ? "beta" : "acme", 72702000);
		ok(ledger_charge(l, &c, err, sizeof err) == 0, "charge %d: %s",
		    i, err);
	}
	ledger_credit(l, "old-wallet", -3000000000, "correction", err,
	    sizeof err);
}

static void
test_chain_replay(void)
{
	const char *p = path_of("chain.jsonl");
	struct ledger l, m;
	int64_t nano;
	uint64_t reqs;
	char today[11], out[512], hash[65];
	uint64_t lines;

	clock_today(today, sizeof today);
	build_chain(p, &l, today);
	ok_int(l.lines, 8, "8 lines");
	ok_int(ledger_balance(&l, "acme"), 1000000000000 - 3 * 72702000,
	    "acme balance");
	ok_int(ledger_balance(&l, "beta"), 5000000000 - 2 * 72702000,
	    "beta balance");
	ok_int(ledger_balance(&l, "old-wallet"), -3000000000, "negative");
	ok_int(ledger_balance(&l, "nobody"), 0, "unknown wallet");
	ledger_today(&l, "acme", today, &nano, &reqs);
	ok(nano == 3 * 72702000 && reqs == 3, "acme today %lld/%llu",
	    (long long)nano, (unsigned long long)reqs);
	ledger_today(&l, "acme", "1999-01-01", &nano, &reqs);
	ok(nano == 0 && reqs == 0, "another day reads zero");
	memcpy(hash, l.last_hash, sizeof hash);
	lines = l.lines;
	ledger_close(&l);

	ok(verify(p, out, sizeof out) == 0, "verify chain: %s", err);
	ok_str(out, "acme CNY 999.78\nbeta CNY 4.85\nold-wallet CNY -3.00\n",
	    "verify balances");

	ok(ledger_open(&m, p, LEDGER_SYNC_ALWAYS, "cny", today, 0, err,
	    sizeof err) == 0, "reopen: %s", err);
	ok_int(ledger_balance(&m, "acme"), 1000000000000 - 3 * 72702000,
	    "replayed acme");
	ok_int(ledger_balance(&m, "beta"), 5000000000 - 2 * 72702000,
	    "replayed beta");
	ok_int(ledger_balance(&m, "old-wallet"), -3000000000,
	    "replayed wallet that is in no config");
	ledger_today(&m, "beta", today, &nano, &reqs);
	ok(nano == 2 * 72702000 && reqs == 2, "replayed today");
	ok_str(m.last_hash, hash, "replayed chain head");
	ok_int(m.lines, lines, "replayed line count");
	ok(ledger_credit(&m, "beta", 1, "x", err, sizeof err) == 0,
	    "append after reopen");
	ledger_close(&m);
	ok(verify(p, out, sizeof out) == 0, "chain continues: %s", err);

	ok(ledger_open(&m, p, LEDGER_SYNC_ALWAYS, "cny", "2000-01-01", 0, err,
	    sizeof err) == 0, "reopen on another day");
	ledger_today(&m, "acme", "2000-01-01", &nano, &reqs);
	ok(nano == 0 && reqs == 0, "charges of other days do not count");
	ok(ledger_add_wallet(&m, "fresh") == 0 &&
	    ledger_balance(&m, "fresh") == 0, "add_wallet");
	ledger_close(&m);
	ledger_close(&m);
	ok(m.fd == -1, "close twice is harmless");
}

static void
test_torn(void)
{
	const char *p = path_of("torn.jsonl"), *tp = path_of("torn.jsonl.torn");
	static const char torn[] = "{\"ts\":\"2026-11-24T22:10:00.1";
	struct ledger l;
	char out[512], *text, *kept;
	size_t before, after;
	int fd;

	build_chain(p, &l, NULL);
	ledger_close(&l);
	free(slurp(p, &before));
	fd = open(p, O_WRONLY | O_APPEND);
	ok(write(fd, torn, sizeof torn - 1) == (ssize_t)sizeof torn - 1,
	    "tear");
	close(fd);
	ok(verify(p, out, sizeof out) < 0, "verify sees the torn line");
	ok_str(err, "line 9: torn last line: no newline at the end of the "
	    "file (the relay cuts it off at start)", "torn message");
	ok(report(p, "wallet", NULL, out, sizeof out) == 0 &&
	    strstr(out, "note: line 9 is torn") != NULL,
	    "report skips it with a note: %s", err);

	ok(ledger_open(&l, p, LEDGER_SYNC_BATCH, "cny", NULL, 0, err,
	    sizeof err) == 0, "open cuts the torn tail: %s", err);
	ok_int(l.lines, 8, "8 complete lines");
	text = slurp(p, &after);
	ok_int(after, before, "file back to its last complete line");
	kept = slurp(tp, NULL);
	ok(kept != NULL && strcmp(kept, "{\"ts\":\"2026-11-24T22:10:00.1\n") ==
	    0, "torn bytes kept in .torn: %s", kept ? kept : "(none)");
	free(text);
	free(kept);
	ok(ledger_credit(&l, "acme", 7, NULL, err, sizeof err) == 0,
	    "append after the cut");
	ledger_close(&l);
	ok(verify(p, out, sizeof out) == 0, "chain intact after cut: %s", err);
}

static void
tamper_case(const char *name, const char *text, const char *want_verify,
    const char *want_open)
{
	const char *p = path_of("tampered.jsonl");
	struct ledger l;
	char out[512];

	spit(p, text, strlen(text));
	ok(verify(p, out, sizeof out) < 0, "%s: verify fails", name);
	ok_str(err, want_verify, name);
	if (want_open != NULL) {
		ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
		    sizeof err) < 0, "%s: open refuses", name);
		ok(strstr(err, want_open) != NULL, "%s: open says %s", name,
		    err);
	}
}

static void
test_tamper(void)
{
	const char *p = path_of("orig.jsonl"), *tp;
	struct ledger l;
	char *text, *mod, *d, *s3, *s4, *s5, out[512], last[2048],
	    prevline[2048], hash[65];
	size_t n;

	build_chain(p, &l, NULL);
	ledger_close(&l);
	text = slurp(p, &n);
	mod = malloc(n + 1);

	/* A digit changed in line 3 ("in":1234 -> 1235). */
	memcpy(mod, text, n + 1);
	s3 = mod;
	s3 = strchr(s3, '\n') + 1;
	s3 = strchr(s3, '\n') + 1;
	d = strstr(s3, "\"in\":1234");
	d[8] = '5';
	tamper_case("digit changed", mod, "line 4: hash chain broken: prev "
	    "does not match line 3", ":4: hash chain broken (prev does not "
	    "match line 3)");

	/* Line 3 deleted. */
	s4 = strchr(strchr(strchr(text, '\n') + 1, '\n') + 1, '\n') + 1;
	s3 = strchr(strchr(text, '\n') + 1, '\n') + 1;
	memcpy(mod, text, (size_t)(s3 - text));
	strcpy(mod + (s3 - text), s4);
	tamper_case("line deleted", mod, "line 3: hash chain broken: prev "
	    "does not match line 2", NULL);

	/* Lines 3 and 4 swapped. */
	s5 = strchr(s4, '\n') + 1;
	memcpy(mod, text, (size_t)(s3 - text));
	memcpy(mod + (s3 - text), s4, (size_t)(s5 - s4));
	memcpy(mod + (s3 - text) + (s5 - s4), s3, (size_t)(s4 - s3));
	strcpy(mod + (s5 - text), s5);
	ok_int(strlen(mod), n, "swap keeps the size");
	tamper_case("lines swapped", mod, "line 3: hash chain broken: prev "
	    "does not match line 2", NULL);

	/* The first line's prev is not zeros. */
	memcpy(mod, text, n + 1);
	d = strstr(mod, ZEROS);
	d[63] = '1';
	tamper_case("first prev", mod, "line 1: hash chain broken: prev of "
	    "the first line is not 64 zeros", NULL);

	/* Garbage in the middle. */
	memcpy(mod, text, (size_t)(s3 - text));
	strcpy(mod + (s3 - text), "garbage\n");
	strcat(mod, s4);
	tamper_case("garbage line", mod, "line 3: malformed record: not a "
	    "JSON object", ":3: malformed record (not a JSON object)");

	/* allow_broken: open goes on, balances are what the file says, and
	 * new lines chain to the file's real last line. */
	memcpy(mod, text, n + 1);
	d = strstr(mod, "\"in\":1234");
	d = strstr(d + 1, "\"in\":1234");	/* second charge, line 4 */
	d = strstr(d, "\"cny_nano\":72702000");
	d[15] = '3';			/* 72702000 -> 72703000 */
	tp = path_of("tampered.jsonl");
	spit(tp, mod, strlen(mod));
	ok(ledger_open(&l, tp, LEDGER_SYNC_NONE, "cny", NULL, 1, err,
	    sizeof err) == 0, "allow_broken opens: %s", err);
	ok_int(ledger_balance(&l, "beta"), 5000000000 - 72703000 - 72702000,
	    "balance from the edited line");
	ok(ledger_credit(&l, "beta", 1, NULL, err, sizeof err) == 0,
	    "append to a broken ledger");
	ledger_close(&l);
	free(text);
	text = slurp(tp, &n);
	line_of(text, 8, prevline, sizeof prevline);
	line_of(text, 9, last, sizeof last);
	hex_sha(prevline, strlen(prevline), hash);
	ok(strstr(last, hash) != NULL, "new line chains to the real last "
	    "line");
	ok(verify(tp, out, sizeof out) < 0 && strcmp(err, "line 5: hash "
	    "chain broken: prev does not match line 4") == 0,
	    "old damage is still reported: %s", err);
	free(text);
	free(mod);
}

/* Many lines, so they straddle the reader's window, then records of
 * exactly LEDGER_LINE_MAX bytes (padded with blanks, which JSON allows)
 * and one byte more. */
static void
test_big(void)
{
	static const char body[] = "{\"ts\":\"2026-11-20T10:00:00.000Z\","
	    "\"type\":\"credit\",\"wallet\":\"w0\",\"cny_nano\":1,"
	    "\"note\":\"pad\"";
	const char *p = path_of("big.jsonl");
	struct ledger_charge c;
	struct ledger l;
	char id[32], wallet[8], out[512];
	size_t i;
	int64_t sum = 0;

	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0, "open big");
	for (i = 0; i < 3000; i++) {
		snprintf(id, sizeof id, "req_%zu", i);
		snprintf(wallet, sizeof wallet, "w%zu", i % 7);
		c = charge(id, wallet, i);
		if (ledger_charge(&l, &c, err, sizeof err) < 0) {
			break;
		}
	}
	ok_int(i, 3000, "3000 charges");
	ledger_close(&l);
	for (i = 0; i < 3000; i += 7) {
		sum += (int64_t)i;
	}
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0 && l.lines == 3000 &&
	    ledger_balance(&l, "w0") == -sum, "replay across reads: %s", err);
	ledger_close(&l);

	for (i = 0; i < 2; i++) {
		append_padded(p, body, LEDGER_LINE_MAX + i);
	}
	ok(verify(p, out, sizeof out) < 0 && strcmp(err, "line 3002: "
	    "malformed line: longer than 65536 bytes") == 0,
	    "line 3001 of exactly %d bytes passes, 3002 is one too long: %s",
	    LEDGER_LINE_MAX, err);
}

static void
test_lock(void)
{
	const char *p = path_of("lock.jsonl");
	struct ledger l, m;
	char want[128], msg[512];
	int fds[2], status;
	ssize_t n;
	pid_t pid;

	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0, "parent holds the lock");
	if (pipe(fds) < 0) {
		perror("pipe");
		exit(2);
	}
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (ledger_open(&m, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
		    sizeof err) == 0) {
			_exit(3);
		}
		n = write(fds[1], err, strlen(err));
		_exit(n > 0 ? 0 : 4);
	}
	close(fds[1]);
	n = read(fds[0], msg, sizeof msg - 1);
	msg[n > 0 ? n : 0] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	ok(WIFEXITED(status) && WEXITSTATUS(status) == 0,
	    "second open in another process fails (status %d)", status);
	snprintf(want, sizeof want, "ledger %s is locked by another relay "
	    "(pid %ld)", p, (long)getpid());
	ok_str(msg, want, "lock message names the holder");
	ledger_close(&l);
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0, "lock released by close: %s", err);
	ledger_close(&l);
}

static void
test_sync(void)
{
	struct ledger l;
	uint64_t due;

	ok(ledger_open(&l, path_of("always.jsonl"), LEDGER_SYNC_ALWAYS, "cny",
	    NULL, 0, err, sizeof err) == 0, "open always");
	ledger_credit(&l, "a", 1, NULL, err, sizeof err);
	ledger_credit(&l, "a", 1, NULL, err, sizeof err);
	ok(l.fsyncs == 2 && !l.dirty, "always: one fsync per line");
	ok(ledger_tick_due_ms(&l) == UINT64_MAX, "always: no tick work");
	ledger_close(&l);

	ok(ledger_open(&l, path_of("batch.jsonl"), LEDGER_SYNC_BATCH, "cny",
	    NULL, 0, err, sizeof err) == 0, "open batch");
	due = l.last_sync_ms + LEDGER_SYNCER_DELAY_MS;
	ok(l.syncer == 0 && ledger_tick_due_ms(&l) == due,
	    "batch: no fsync helper at open; it is due shortly after");
	ledger_tick(&l, due - 1);
	ok(l.syncer == 0, "batch: not before its time");
	ledger_tick(&l, due);
	ok(l.syncer > 0 && ledger_tick_due_ms(&l) == UINT64_MAX,
	    "batch: helper forked, nothing else due");
	ledger_credit(&l, "a", 1, NULL, err, sizeof err);
	ledger_credit(&l, "a", 1, NULL, err, sizeof err);
	due = ledger_tick_due_ms(&l);
	ok(LEDGER_BATCH_MS == 1000 && l.fsyncs == 0 && l.dirty &&
	    due == l.last_sync_ms + LEDGER_BATCH_MS, "batch: dirty, due LEDGER_BATCH_MS after the last fsync");
	ledger_tick(&l, due - 1);
	ok(l.fsyncs == 0 && l.dirty, "batch: not before it is due");
	ledger_tick(&l, due);
	ok(l.fsyncs == 1 && !l.dirty && l.last_sync_ms == due,
	    "batch: one fsync for both lines");
	ok(ledger_tick_due_ms(&l) == UINT64_MAX, "batch: clean again");
	ledger_tick(&l, due + 1000);
	ok_int(l.fsyncs, 1, "batch: nothing to sync, no fsync");
	ledger_close(&l);

	/* A write before the helper's time forks it at the next tick. */
	ok(ledger_open(&l, path_of("batch2.jsonl"), LEDGER_SYNC_BATCH, "cny",
	    NULL, 0, err, sizeof err) == 0, "open batch again");
	ledger_credit(&l, "a", 1, NULL, err, sizeof err);
	ledger_tick(&l, l.last_sync_ms + 1);
	ok(l.syncer > 0 && l.fsyncs == 0 && l.dirty,
	    "batch: the first write brings the helper, not an fsync yet");
	ledger_close(&l);
	ok(count_in(path_of("batch2.jsonl"), "\"credit\"") == 1,
	    "and the line is in the file");

	ok(ledger_open(&l, path_of("none.jsonl"), LEDGER_SYNC_NONE, "cny", NULL,
	    0, err, sizeof err) == 0, "open none");
	ledger_credit(&l, "a", 1, NULL, err, sizeof err);
	ledger_tick(&l, UINT64_MAX - 1);
	ok(l.fsyncs == 0 && !l.dirty, "none: never");
	ledger_close(&l);
}

static void
test_tasks(void)
{
	const char *p = path_of("tasks.jsonl");
	const struct ledger_task *t;
	struct ledger l;
	struct ledger_task nt;
	struct ledger_charge c;
	char id[32], out[256];
	size_t cur;
	int i, nopen;

	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0, "open tasks");
	memset(&nt, 0, sizeof nt);
	nt.wallet = "acme";
	nt.model = "doubao-seedance-2-0-pro";
	nt.route = "ark/seedance";
	nt.cred = "ark#2";
	for (i = 0; i < 100; i++) {
		snprintf(id, sizeof id, "cgt-%03d", i);
		nt.id = id;
		ok(ledger_task(&l, &nt, err, sizeof err) == 0, "task %d", i);
	}
	ok(ledger_task(&l, &nt, err, sizeof err) < 0 &&
	    strstr(err, "already recorded") != NULL, "duplicate task refused");
	t = ledger_task_find(&l, "cgt-042");
	ok(t != NULL && strcmp(t->cred, "ark#2") == 0 &&
	    strcmp(t->route, "ark/seedance") == 0 && !t->charged &&
	    t->line == 43, "find task");
	ok(ledger_task_find(&l, "cgt-100") == NULL, "unknown task");
	c = charge("req_t", "acme", 10);
	c.task = "cgt-042";
	ok(ledger_charge(&l, &c, err, sizeof err) == 0, "charge task");
	ok(ledger_charge(&l, &c, err, sizeof err) < 0 &&
	    strstr(err, "already charged") != NULL, "charged only once");
	c.task = "nope";
	ok(ledger_charge(&l, &c, err, sizeof err) < 0 &&
	    strstr(err, "is unknown") != NULL, "unknown task refused");
	c.task = "cgt-007";
	ledger_charge(&l, &c, err, sizeof err);
	ledger_close(&l);

	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0, "reopen tasks");
	ok(ledger_task_find(&l, "cgt-042")->charged, "replayed charged");
	ok(!ledger_task_find(&l, "cgt-041")->charged, "replayed open");
	ok_str(ledger_task_find(&l, "cgt-099")->model,
	    "doubao-seedance-2-0-pro", "replayed model");
	for (cur = 0, nopen = 0; (t = ledger_task_next_open(&l, &cur)) !=
	    NULL; nopen++) {
		if (strcmp(t->id, "cgt-042") == 0 ||
		    strcmp(t->id, "cgt-007") == 0) {
			break;
		}
	}
	ok_int(nopen, 98, "98 open tasks, charged ones skipped");
	ledger_close(&l);
	ok(verify(p, out, sizeof out) == 0, "verify tasks: %s", err);

	/* A second charge of one task written by hand. */
	append_raw(p, CH "\"task\":\"cgt-042\",\"in\":1,\"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":1");
	ok(verify(p, out, sizeof out) < 0 && strcmp(err, "line 103: bad task "
	    "charge: task \"cgt-042\" was charged before") == 0,
	    "verify: a task charged twice: %s", err);
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0, "open only warns about it: %s", err);
	ledger_close(&l);
}

static void
test_refusals(void)
{
	struct ledger l;
	struct ledger_charge c;
	char big[LEDGER_NAME_MAX + 2];

	ok(ledger_open(&l, path_of("refuse.jsonl"), LEDGER_SYNC_NONE, "cny",
	    NULL, 0, err, sizeof err) == 0, "open refuse");
	memset(big, 'n', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	c = charge("req", big, 1);
	ok(ledger_charge(&l, &c, err, sizeof err) < 0 &&
	    strstr(err, "wallet longer than 256") != NULL, "long wallet: %s",
	    err);
	c = charge("req", "w", 1);
	c.cred = big;
	ok(ledger_charge(&l, &c, err, sizeof err) < 0, "long cred");
	c = charge("", "w", 1);
	ok(ledger_charge(&l, &c, err, sizeof err) < 0 &&
	    strstr(err, "without id") != NULL, "empty id: %s", err);
	c = charge("req", "w", (uint64_t)INT64_MAX + 1);
	ok(ledger_charge(&l, &c, err, sizeof err) < 0, "debit too large");
	c = charge("req", "w", 1);
	c.status = 1000;
	ok(ledger_charge(&l, &c, err, sizeof err) < 0, "bad status");
	ok(ledger_credit(&l, "w", INT64_MAX, NULL, err, sizeof err) == 0,
	    "credit max");
	ok(ledger_credit(&l, "w", 1, NULL, err, sizeof err) < 0 &&
	    strstr(err, "out of range") != NULL, "balance overflow refused");
	ok_int(ledger_balance(&l, "w"), INT64_MAX, "balance unchanged");
	ok_int(l.lines, 1, "nothing refused was written");
	ledger_close(&l);
	ok(ledger_credit(&l, "w", 1, NULL, err, sizeof err) < 0 &&
	    strstr(err, "not open") != NULL, "closed ledger refuses");
	ok(ledger_open(&l, dir, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) < 0 && strstr(err, "Is a directory") != NULL,
	    "unopenable path: %s", err);
}

/* RLIMIT_FSIZE makes the kernel accept only part of a line: the ledger
 * must cut the half line back off and stay usable. */
static void
test_partial_write(void)
{
	const char *p = path_of("partial.jsonl");
	struct ledger l;
	struct rlimit old, lim;
	char out[256];
	size_t size, after;
	int rc;

	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0, "open partial");
	ledger_credit(&l, "w", 5, NULL, err, sizeof err);
	free(slurp(p, &size));
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = size + 40;
	setrlimit(RLIMIT_FSIZE, &lim);
	rc = ledger_credit(&l, "w", 7, "a note that does not fit", err,
	    sizeof err);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	ok(rc < 0 && strstr(err, "write:") != NULL && !l.broken,
	    "partial write refused: %s", err);
	free(slurp(p, &after));
	ok_int(after, size, "half line cut back off");
	ok_int(ledger_balance(&l, "w"), 5, "balance unchanged");
	ok(ledger_credit(&l, "w", 1, NULL, err, sizeof err) == 0,
	    "next write works");
	ledger_close(&l);
	ok(verify(p, out, sizeof out) == 0, "chain intact: %s", err);
}

/* Group commit: charges wait in memory (already debited) and go out with
 * one write per ledger_commit(); a failed write undoes the whole batch
 * (balances, today's counters, settled tasks) and the chain goes on from
 * the file's last line. */
static void
test_group_commit(void)
{
	const char *p = path_of("group.jsonl");
	struct ledger l;
	struct ledger_charge c;
	struct ledger_task nt;
	struct rlimit old, lim;
	char id[32], out[256], *text;
	size_t size, after, lines = 0, i;
	int64_t today_nano;
	uint64_t today_n;
	int rc;

	unlink(p);
	ok(ledger_open(&l, p, LEDGER_SYNC_ALWAYS, "cny", "2026-11-25", 0, err,
	    sizeof err) == 0, "open group");
	ok(ledger_group(&l) == 0, "group commit on");
	ok(ledger_credit(&l, "w", 1000, "top-up", err, sizeof err) == 0,
	    "credit is written at once");
	memset(&nt, 0, sizeof nt);
	nt.id = "cgt-1";
	nt.wallet = "w";
	nt.model = "m";
	nt.route = "ark/m";
	ok(ledger_task(&l, &nt, err, sizeof err) == 0, "task is written at once");
	free(slurp(p, &size));
	for (i = 0; i < 5; i++) {
		snprintf(id, sizeof id, "req_%zu", i);
		c = charge(id, "w", 10);
		ok(ledger_charge(&l, &c, err, sizeof err) == 0, "queue %zu", i);
	}
	free(slurp(p, &after));
	ok_int(after, size, "queued charges are not in the file yet");
	ok_int(ledger_pending(&l), 5, "five pending");
	ok_int(ledger_balance(&l, "w"), 950, "queued charges are debited");
	rc = ledger_commit(&l);
	ok_int(rc, 5, "commit writes five lines");
	ok_int(ledger_pending(&l), 0, "nothing pending");
	ok_int(l.fsyncs, 3, "sync=always: one fsync per commit");
	text = slurp(p, &after);
	for (i = 0; i < after; i++) {
		lines += text[i] == '\n';
	}
	free(text);
	ok_int(lines, 7, "credit, task and five charges in the file");
	ok(verify(p, out, sizeof out) == 0 && strcmp(out, "w CNY 0.00\n") ==
	    0, "chain verifies after commit: %s %s", err, out);

	/* A credit while charges wait: the charges go first, in order. */
	c = charge("req_a", "w", 1);
	ledger_charge(&l, &c, err, sizeof err);
	ok(ledger_credit(&l, "w", 5, NULL, err, sizeof err) == 0 &&
	    ledger_pending(&l) == 0, "a credit commits the queue first");

	/* A batch that cannot be written is undone as a whole. */
	free(slurp(p, &size));
	ledger_today(&l, "w", "2026-11-25", &today_nano, &today_n);
	c = charge("req_b", "w", 7);
	c.task = "cgt-1";
	ok(ledger_charge(&l, &c, err, sizeof err) == 0, "queue task charge");
	c = charge("req_c", "w", 11);
	ok(ledger_charge(&l, &c, err, sizeof err) == 0, "queue charge");
	ok(ledger_task_find(&l, "cgt-1")->charged, "task charged in memory");
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = size + 100;	/* half of the first line fits */
	setrlimit(RLIMIT_FSIZE, &lim);
	rc = ledger_commit(&l);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	ok(rc < 0 && !l.broken, "failed commit reported");
	free(slurp(p, &after));
	ok_int(after, size, "partial batch cut back off");
	ok_int(ledger_balance(&l, "w"), 1000 - 50 - 1 + 5,
	    "balance restored");
	{
		int64_t tn;
		uint64_t tc;

		ledger_today(&l, "w", "2026-11-25", &tn, &tc);
		ok(tn == today_nano && tc == today_n,
		    "today's counters restored");
	}
	ok(!ledger_task_find(&l, "cgt-1")->charged, "task open again");
	c = charge("req_d", "w", 3);
	c.task = "cgt-1";
	ok(ledger_charge(&l, &c, err, sizeof err) == 0 &&
	    ledger_commit(&l) == 1, "next commit works");
	ledger_close(&l);
	ok(verify(p, out, sizeof out) == 0 && strcmp(out, "w CNY 0.00\n") ==
	    0, "chain intact after a failed batch: %s %s", err, out);

	/* ledger_close() commits what is still queued. */
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0 && ledger_group(&l) == 0, "reopen");
	ok_int(ledger_balance(&l, "w"), 951, "replayed balance");
	c = charge("req_e", "w", 1);
	ledger_charge(&l, &c, err, sizeof err);
	ledger_close(&l);
	ok(verify(p, out, sizeof out) == 0 && strcmp(out, "w CNY 0.00\n") ==
	    0, "close committed the queue: %s %s", err, out);
}

/* Hex SHA-256 of the file's last line (without its newline). */
static void
last_line_hash(const char *p, char out[65])
{
	unsigned char h[32];
	size_t n, start;
	char *text = slurp(p, &n);

	start = n - 1;
	while (start > 0 && text[start - 1] != '\n') {
		start--;
	}
	util_sha256(text + start, n - 1 - start, h);
	util_hex(h, 32, out);
	free(text);
}

/* The relay hashes a queued line after the answers have left
 * (ledger_settle()); until then the chain's hashes are stale. Every order
 * of charge, commit, settle and a failed commit must still chain. */
static void
test_group_settle(void)
{
	const char *p = path_of("settle.jsonl");
	struct ledger l;
	struct ledger_charge c;
	struct rlimit old, lim;
	char want[65], out[256];
	size_t size;

	unlink(p);
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0 && ledger_group(&l) == 0, "open group");
	ok(ledger_credit(&l, "w", 1000, NULL, err, sizeof err) == 0, "credit");
	c = charge("req_1", "w", 1);
	ok(ledger_charge(&l, &c, err, sizeof err) == 0 && l.unhashed,
	    "a queued line is not hashed yet");
	ok(ledger_commit(&l) == 1, "commit");
	ledger_settle(&l);
	last_line_hash(p, want);
	ok(!l.unhashed && strcmp(l.last_hash, want) == 0 &&
	    strcmp(l.file_hash, want) == 0,
	    "settle after commit: prev and file hash are the line's");

	/* Committed, not settled: the next line settles it as its prev. */
	c = charge("req_2", "w", 1);
	ledger_charge(&l, &c, err, sizeof err);
	ok(ledger_commit(&l) == 1 && l.unhashed, "commit, no settle");
	c = charge("req_3", "w", 1);
	ledger_charge(&l, &c, err, sizeof err);
	last_line_hash(p, want);
	ok(strcmp(l.file_hash, want) == 0,
	    "the next charge settled the committed line");

	/* That batch fails: the chain goes on from req_2. */
	free(slurp(p, &size));
	signal(SIGXFSZ, SIG_IGN);
	getrlimit(RLIMIT_FSIZE, &old);
	lim = old;
	lim.rlim_cur = size;
	setrlimit(RLIMIT_FSIZE, &lim);
	ok(ledger_commit(&l) < 0, "failed commit");
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, SIG_DFL);
	ok(!l.unhashed && strcmp(l.last_hash, want) == 0,
	    "after the failure prev is the file's last line");
	c = charge("req_4", "w", 1);
	ok(ledger_charge(&l, &c, err, sizeof err) == 0 &&
	    ledger_commit(&l) == 1, "next commit");
	c = charge("req_5", "w", 1);
	ledger_charge(&l, &c, err, sizeof err);
	ledger_settle(&l);	/* settled before its commit */
	ok(ledger_commit(&l) == 1, "commit a settled line");
	last_line_hash(p, want);
	ok(strcmp(l.file_hash, want) == 0, "file hash after commit");
	c = charge("req_6", "w", 1);
	ledger_charge(&l, &c, err, sizeof err);
	ok(ledger_credit(&l, "w", 1, NULL, err, sizeof err) == 0,
	    "a credit after an unsettled charge");
	ledger_close(&l);
	ok(verify(p, out, sizeof out) == 0 && strcmp(out, "w CNY 0.00\n") ==
	    0, "chain verifies: %s %s", err, out);
}

/* A relay that dies with charges queued: the child opens the ledger with
 * the queue file, queues the lines of ids, writes the first `cut` bytes
 * of the queue to the ledger itself (a write the crash cut short;
 * CUT_ALL: all of it; CUT_LINE: its first line) and dies without
 * committing. */
enum { CUT_NONE = 0 };
#define CUT_ALL SIZE_MAX
#define CUT_LINE (SIZE_MAX - 1)
static void
die_with_queued(const char *p, const char *const *ids, size_t nids,
    size_t cut)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct ledger l;
		struct ledger_charge c;
		size_t i, w;

		if (ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
		    sizeof err) < 0 || ledger_group(&l) < 0 ||
		    !ledger_queue_survives_crash(&l)) {
			_exit(2);
		}
		for (i = 0; i < nids; i++) {
			c = charge(ids[i], "w", 10);
			if (ledger_charge(&l, &c, err, sizeof err) < 0) {
				_exit(3);
			}
		}
		w = cut < l.pend_len ? cut : l.pend_len;
		if (cut == CUT_LINE) {
			w = (size_t)((char *)memchr(l.pend, '\n', l.pend_len) -
			    l.pend) + 1;
		}
		if (w > 0 && write(l.fd, l.pend, w) != (ssize_t)w) {
			_exit(4);
		}
		_exit(0);
	}
	{
		int st;

		waitpid(pid, &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "child queued %zu line(s) and died", nids);
	}
}

/* What `relay ledger verify` says on stderr about path (its notes). */
static void
verify_notes(const char *path, char *notes, size_t cap)
{
	char out[256];

	capture_stderr();
	(void)verify(path, out, sizeof out);
	captured(notes, cap);
}

/* Open with the queue file (recovering it) and return the balance. */
static int64_t
reopen_balance(const char *p)
{
	struct ledger l;
	int64_t b;

	if (ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) < 0 || ledger_group(&l) < 0) {
		return INT64_MIN;
	}
	b = ledger_balance(&l, "w");
	ledger_close(&l);
	return b;
}

/* With sync=none or batch the queue is a mapped file, so answers leave
 * before the write; a relay that dies in between loses nothing: the next
 * start appends what the ledger lacks, once, wherever the write stopped. */
static void
test_queue_file(void)
{
	const char *p = path_of("queue.jsonl");
	const char *a[] = { "req_qa1", "req_qa2", "req_qa3" };
	const char *b[] = { "req_qb1", "req_qb2" };
	const char *c[] = { "req_qc1", "req_qc2" };
	const char *d[] = { "req_qd1" };
	const char *e[] = { "req_qe1" };
	const char *f[] = { "req_qf1", "req_qf2" };
	const char *g[] = { "req_qg1" };
	const char *h[] = { "req_qh1", "req_qh2", "req_qh3" };
	char qpath[160], out[256], line[LEDGER_RECORD_MAX];
	struct ledger l;
	int fd;

	unlink(p);
	snprintf(qpath, sizeof qpath, "%s.queue", p);
	unlink(qpath);
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0 && ledger_credit(&l, "w", 1000, NULL, err,
	    sizeof err) == 0, "credit");
	ledger_close(&l);

	die_with_queued(p, a, 3, CUT_NONE);
	ok_int(count_in(p, "req_qa"), 0, "nothing written before the crash");
	ok_int(reopen_balance(p), 1000 - 30, "reopen: three queued charges "
	    "recovered and applied");
	ok(count_in(p, "req_qa1") == 1 && count_in(p, "req_qa3") == 1,
	    "each appended once");
	ok_int(reopen_balance(p), 970, "a second start appends nothing");
	ok_int(count_in(p, "req_qa"), 3, "still three lines");

	/* The crash came after the write, before the length was cleared. */
	die_with_queued(p, b, 2, CUT_ALL);
	ok_int(reopen_balance(p), 950, "whole write, length not cleared: "
	    "nothing appended");
	ok_int(count_in(p, "req_qb"), 2, "no line twice");

	/* The write stopped after the first whole line. */
	die_with_queued(p, c, 2, CUT_LINE);
	ok(count_in(p, "req_qc1") == 1 && count_in(p, "req_qc2") == 0,
	    "the first line is in the file, the second not");
	ok_int(reopen_balance(p), 930, "the second recovered, the first "
	    "counted once");
	ok(count_in(p, "req_qc1") == 1 && count_in(p, "req_qc2") == 1,
	    "once each");

	/* Half a line in the file: cut off as torn, then recovered. */
	die_with_queued(p, d, 1, 100);
	ok_int(reopen_balance(p), 920, "a torn write: the whole line "
	    "recovered");
	ok_int(count_in(p, "req_qd1"), 1, "once in the ledger");

	/* The ledger moved on without the queue (it was moved away during a
	 * start): its lines cannot be placed. */
	die_with_queued(p, e, 1, CUT_NONE);
	snprintf(line, sizeof line, "%s.aside", qpath);
	ok(rename(qpath, line) == 0, "queue file moved away");
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0 && ledger_credit(&l, "w", 5, NULL, err,
	    sizeof err) == 0, "a credit written without the queue");
	ledger_close(&l);
	ok(rename(line, qpath) == 0, "queue file moved back");
	ok_int(reopen_balance(p), 925, "the unplaceable charge is not applied");
	snprintf(line, sizeof line, "%s.queue-unplaced", p);
	ok_int(count_in(line, "req_qe1"), 1, "it is kept in .queue-unplaced");
	ok_int(count_in(p, "req_qe1"), 0, "and not in the ledger");
	ok(verify(p, out, sizeof out) == 0 && strcmp(out, "w CNY 0.00\n") ==
	    0, "chain verifies: %s %s", err, out);

	/* A file that is not a queue file stops the start, naming it, and
	 * is never overwritten (SPEC §10; it used to be started over). */
	fd = open(qpath, O_WRONLY | O_TRUNC);
	ok(fd >= 0 && write(fd, "junk", 4) == 4, "queue file overwritten");
	close(fd);
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) < 0 && strstr(err, qpath) != NULL &&
	    strstr(err, "is not a relay queue file") != NULL,
	    "junk queue: the start fails naming it: %s", err);
	ok_int(count_in(qpath, "junk"), 1, "and the file is left as it was");
	ok(unlink(qpath) == 0, "moved away");
	ok_int(reopen_balance(p), 925, "then the ledger opens");
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) == 0 && ledger_group(&l) == 0 &&
	    ledger_queue_survives_crash(&l), "queue file in use again");
	ledger_close(&l);

	/* A relay that died with sync=none or batch and starts again with
	 * sync=always still appends what it had queued. */
	die_with_queued(p, f, 2, CUT_NONE);
	ok(ledger_open(&l, p, LEDGER_SYNC_ALWAYS, "cny", NULL, 0, err,
	    sizeof err) == 0, "reopen with sync=always: %s", err);
	ok_int(ledger_balance(&l, "w"), 905, "its two queued charges applied");
	ledger_close(&l);
	ok(count_in(p, "req_qf1") == 1 && count_in(p, "req_qf2") == 1,
	    "and appended once each");
	ok_int(reopen_balance(p), 905, "the next batch start appends nothing");

	/* A queue file that cannot be read may hold answered charges: the
	 * ledger does not open without it. */
	die_with_queued(p, g, 1, CUT_NONE);
	snprintf(line, sizeof line, "%s.aside", qpath);
	ok(rename(qpath, line) == 0 && symlink(qpath, qpath) == 0,
	    "a queue file that loops");
	ok(ledger_open(&l, p, LEDGER_SYNC_NONE, "cny", NULL, 0, err,
	    sizeof err) < 0 && strstr(err, "cannot be read") != NULL &&
	    strstr(err, "does not start") != NULL, "refused: %s", err);
	ok(unlink(qpath) == 0 && rename(line, qpath) == 0, "queue file back");
	ok_int(reopen_balance(p), 895, "then it is recovered");

	/* verify says what the queue holds that the ledger lacks. */
	die_with_queued(p, h, 3, CUT_LINE);
	verify_notes(p, line, sizeof line);
	ok(strstr(line, "holds 2 charge lines that a relay answered") != NULL,
	    "verify notes the two unwritten lines: %s", line);
	ok_int(reopen_balance(p), 865, "the next start appends them");
	verify_notes(p, line, sizeof line);
	ok_str(line, "", "then verify has no note");

	/* sync=always keeps the queue in memory (answers wait for fsync). */
	ok(ledger_open(&l, path_of("always-q.jsonl"), LEDGER_SYNC_ALWAYS, "cny",
	    NULL, 0, err, sizeof err) == 0 && ledger_group(&l) == 0 &&
	    !ledger_queue_survives_crash(&l), "sync=always: no queue file");
	ledger_close(&l);
	snprintf(line, sizeof line, "%s.queue", path_of("always-q.jsonl"));
	ok(access(line, F_OK) != 0, "none made");

	/* Something else where the queue file goes (a directory, a symbolic
	 * link): the start fails naming it. */
	snprintf(line, sizeof line, "%s.queue", path_of("noq.jsonl"));
	ok(mkdir(line, 0700) == 0, "a directory where the queue file goes");
	ok(ledger_open(&l, path_of("noq.jsonl"), LEDGER_SYNC_BATCH, "cny", NULL,
	    0, err, sizeof err) < 0 && strstr(err, line) != NULL,
	    "a directory for a queue file: refused: %s", err);
	rmdir(line);
	ok(symlink(path_of("elsewhere"), line) == 0, "a symbolic link there");
	ok(ledger_open(&l, path_of("noq.jsonl"), LEDGER_SYNC_BATCH, "cny", NULL,
	    0, err, sizeof err) < 0 && strstr(err, "symbolic link") != NULL &&
	    access(path_of("elsewhere"), F_OK) != 0,
	    "a symbolic link: refused, never followed: %s", err);
	unlink(line);
	rmdir(line);
}

/* The cached stamp equals the uncached one (the same second), also when
 * the cache holds an older second. */
static void
test_stamp(void)
{
	struct clock_stamp c;
	char a[32], b[32];
	int tries, same = 0;

	memset(&c, 0, sizeof c);
	for (tries = 0; tries < 3 && !same; tries++) {
		clock_iso8601_cached(&c, a, sizeof a);
		clock_iso8601(b, sizeof b);
		same = memcmp(a, b, 19) == 0;
	}
	ok(same && ts_ok(a) == ts_ok(b) && strlen(a) == 24 && a[23] == 'Z',
	    "cached stamp %s matches %s", a, b);
	c.sec -= 1;	/* a stale cache is refreshed */
	memcpy(c.text, "1999-01-01T00:00:00", 20);
	clock_iso8601_cached(&c, a, sizeof a);
	ok(memcmp(a, "1999", 4) != 0, "stale cache refreshed: %s", a);
	clock_iso8601_cached(&c, a, 10);
	ok(a[0] == '\0', "short buffer: empty");
}

int
main(void)
{
	make_dir("test_ledger");
	/* Torn tails and allow_broken are expected to warn. */
	log_set_level(LOG_ERROR);
	test_format();
	test_usd();
	test_chain_replay();
	test_torn();
	test_tamper();
	test_big();
	test_lock();
	test_sync();
	test_tasks();
	test_refusals();
	test_partial_write();
	test_group_commit();
	test_group_settle();
	test_queue_file();
	test_stamp();
	/* Leave the files for a post-mortem when something failed. */
	if (t_fail == 0) {
		remove_dir();
	}
	return t_done("ledger");
}
