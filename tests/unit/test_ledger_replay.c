/* Unit tests for ledger_replay: a chain of hand-written records read back
 * into the tables (balances, today's counts, tasks, the chain position);
 * each problem as verify and report see it (fatal, with its line) and as
 * ledger_open sees it (logged, skipped or fatal by severity, or going on
 * when broken ledgers are allowed); a torn tail in each mode; lines that
 * straddle the read window and the longest line there may be. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger_replay.h"
#include "log.h"
#include "t.h"
#include "ledger_t.h"

#define TS "{\"ts\":\"2026-11-20T10:00:00.000Z\","
#define CREDIT(w, n) TS "\"type\":\"credit\",\"wallet\":\"" w "\"," \
	"\"cny_nano\":" #n
#define CHARGE(id, w, n) TS "\"type\":\"charge\",\"id\":\"" id "\"," \
	"\"wallet\":\"" w "\",\"model\":\"m\",\"route\":\"p/m\"," \
	"\"status\":200,\"in\":1,\"out\":2,\"usd_nano\":3,\"cny_nano\":" #n
#define TASK(id) TS "\"type\":\"task\",\"id\":\"" id "\",\"wallet\":\"w\"," \
	"\"model\":\"v\",\"route\":\"ark/v\",\"cred\":\"ark#1\""

static char logged[2048];
static struct ledger_table tab;

/* Charges the charged() callback saw. */
static struct {
	int n;
	uint64_t last_line;
	int stop_at;		/* line to stop on, or 0 */
} seen;

static int
on_charge(void *arg, const struct ledger_rec *r, uint64_t line, char *e,
    size_t elen)
{
	(void)arg;
	(void)r;
	seen.n++;
	seen.last_line = line;
	if (seen.stop_at != 0 && line == (uint64_t)seen.stop_at) {
		return util_errf(e, elen, "stopped at %d", seen.stop_at);
	}
	return 0;
}

/* What cut() was given. */
static struct {
	int calls, fail;
	off_t end;
	uint64_t line;
	char text[128];
} cut;

static int
on_cut(void *arg, off_t end, const char *p, size_t n, uint64_t line,
    char *e, size_t elen)
{
	(void)arg;
	cut.calls++;
	cut.end = end;
	cut.line = line;
	snprintf(cut.text, sizeof cut.text, "%.*s", (int)n, p);
	return cut.fail ? util_errf(e, elen, "cut failed") : 0;
}

/* Replay path in mode into a fresh tab (rp's results kept), stderr
 * captured into logged. cur: the ledger's currency, or "". */
static int
run(const char *path, enum ledger_replay_mode mode, int allow_broken,
    const char *cur, struct ledger_replay *rp)
{
	int fd = open(path, O_RDONLY), rc;

	ledger_table_free(&tab);
	memset(rp, 0, sizeof *rp);
	rp->mode = mode;
	rp->allow_broken = allow_broken;
	rp->path = path;
	rp->tab = &tab;
	snprintf(rp->cur, sizeof rp->cur, "%s", cur);
	rp->charged = on_charge;
	rp->cut = on_cut;
	err[0] = '\0';
	capture_stderr();
	rc = ledger_replay_fd(rp, fd, err, sizeof err);
	captured(logged, sizeof logged);
	close(fd);
	return rc;
}

static int64_t
balance(const char *wallet)
{
	const struct ledger_wallet *w = ledger_table_wallet_find(&tab, wallet);

	return w != NULL ? w->balance_nano : INT64_MIN;
}

static void
test_good(void)
{
	const char *p = path_of("good.jsonl");
	struct ledger_replay rp;
	struct ledger_task *t;
	char *text, hash[65];
	size_t n;

	append_raw(p, CREDIT("w", 1000));
	append_raw(p, TASK("cgt-1"));
	append_raw(p, CHARGE("r1", "w", 10));
	append_raw(p, TS "\"type\":\"charge\",\"id\":\"r2\",\"task\":\"cgt-1\","
	    "\"wallet\":\"w\",\"model\":\"v\",\"route\":\"ark/v\","
	    "\"status\":200,\"in\":0,\"out\":5,\"usd_nano\":3,"
	    "\"cny_nano\":20");
	append_raw(p, CREDIT("x", -7));
	memcpy(tab.today, "2026-11-20", 11);
	ok(run(p, LEDGER_REPLAY_VERIFY, 0, "", &rp) == 0, "good: %s", err);
	ok(strcmp(rp.cur, "cny") == 0, "currency from the first amount");
	ok(balance("w") == 970 && balance("x") == -7, "balances");
	ok(rp.lines == 5 && seen.n == 2 && seen.last_line == 4,
	    "five lines, two charges seen");
	t = ledger_table_task_find(&tab, "cgt-1");
	ok(t != NULL && t->charged && t->line == 2, "task recorded, charged");
	text = slurp(p, &n);
	ok(rp.end == (off_t)n, "end is the file's size");
	hex_sha(strrchr(text, '{'), strlen(strrchr(text, '{')) - 1, hash);
	ok_str(rp.last_hash, hash, "last_hash is the last line's");
	free(text);
	ok(ledger_table_wallet_find(&tab, "w")->today_requests == 0,
	    "a fresh table has no day: today's counters stay 0");

	/* Today's counters for the day the table is for. */
	ledger_table_free(&tab);
	memset(&rp, 0, sizeof rp);
	memcpy(tab.today, "2026-11-20", 11);
	rp.mode = LEDGER_REPLAY_VERIFY;
	rp.path = p;
	rp.tab = &tab;
	{
		int fd = open(p, O_RDONLY);

		ok(ledger_replay_fd(&rp, fd, err, sizeof err) == 0 &&
		    ledger_table_wallet_find(&tab, "w")->today_nano == 30 &&
		    ledger_table_wallet_find(&tab, "w")->today_requests == 2,
		    "today's counters: %s", err);
		close(fd);
	}

	seen.n = 0;
	seen.stop_at = 3;
	ok(run(p, LEDGER_REPLAY_VERIFY, 0, "", &rp) < 0 &&
	    strcmp(err, "stopped at 3") == 0 && seen.n == 1,
	    "charged() stops the replay: %s", err);
	seen.stop_at = 0;

	spit(path_of("empty.jsonl"), "", 0);
	ok(run(path_of("empty.jsonl"), LEDGER_REPLAY_VERIFY, 0, "", &rp) == 0 &&
	    rp.lines == 0 && rp.end == 0 && strcmp(rp.last_hash, ZEROS) == 0,
	    "an empty file");
}

/* Each problem in a file of its own: the two lines before it are good. */
static void
problem_case(const char *name, const char *body, const char *want_verify,
    const char *want_open, int open_fatal)
{
	const char *p = path_of("bad.jsonl");
	struct ledger_replay rp;

	unlink(p);
	append_raw(p, CREDIT("w", 1000));
	append_raw(p, TASK("cgt-1"));
	append_raw(p, body);
	ok(run(p, LEDGER_REPLAY_VERIFY, 0, "", &rp) < 0, "%s: verify stops",
	    name);
	ok_str(err, want_verify, name);
	ok(run(p, LEDGER_REPLAY_REPORT, 0, "", &rp) < 0 &&
	    strcmp(err, want_verify) == 0, "%s: report stops alike", name);
	if (open_fatal) {
		ok(run(p, LEDGER_REPLAY_OPEN, 0, "cny", &rp) < 0 &&
		    strstr(err, want_open) != NULL, "%s: open refuses: %s",
		    name, err);
		ok(run(p, LEDGER_REPLAY_OPEN, 1, "cny", &rp) == 0 &&
		    strstr(logged, want_open) != NULL &&
		    strstr(logged, "going on because broken ledgers are "
		    "allowed") != NULL, "%s: allowed broken, logged: %s", name,
		    logged);
	} else {
		ok(run(p, LEDGER_REPLAY_OPEN, 0, "cny", &rp) == 0 &&
		    strstr(logged, want_open) != NULL &&
		    strstr(logged, "allowed") == NULL, "%s: open logs it: %s",
		    name, logged);
	}
	ok_int(rp.lines, 3, "the chain goes on");
}

static void
test_problems(void)
{
	char body[512];

	problem_case("malformed", "{\"bonus\":1", "line 3: malformed record: "
	    "unknown key \"bonus\"", ":3: malformed record (unknown key "
	    "\"bonus\")", 1);
	problem_case("wrong currency", TS "\"type\":\"credit\",\"wallet\":"
	    "\"w\",\"usd_nano\":1", "line 3: wrong currency: missing "
	    "\"cny_nano\"", ":3: wrong currency (missing \"cny_nano\")", 1);
	problem_case("other currency", TS "\"type\":\"credit\",\"wallet\":"
	    "\"w\",\"eur_nano\":1", "line 3: wrong currency: amounts in "
	    "eur_nano, but the ledger's currency is cny; a ledger keeps one "
	    "currency", ":3: wrong currency (amounts in eur_nano", 1);
	problem_case("balance out of range", CREDIT("w",
	    9223372036854775807), "line 3: balance out of range: w",
	    ":3: balance out of range (w)", 1);
	problem_case("unknown task", TS "\"type\":\"charge\",\"id\":\"r\","
	    "\"task\":\"nope\",\"wallet\":\"w\",\"model\":\"m\",\"route\":"
	    "\"p/m\",\"status\":200,\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1", "line 3: bad task charge: task \"nope\" is not "
	    "recorded by an earlier line", ":3: bad task charge (task "
	    "\"nope\" is not recorded by an earlier line)", 0);
	problem_case("task twice", TASK("cgt-1"), "line 3: task recorded "
	    "twice: task \"cgt-1\" was recorded on line 2", ":3: task "
	    "recorded twice (task \"cgt-1\" was recorded on line 2)", 0);

	/* A record whose prev is not the line before's. */
	snprintf(body, sizeof body, "%s\n%s,\"prev\":\"%s\"}\n",
	    "{\"ts\":\"2026-11-20T10:00:00.000Z\",\"type\":\"credit\","
	    "\"wallet\":\"w\",\"cny_nano\":1,\"prev\":\"" "0000000000000000"
	    "000000000000000000000000000000000000000000000000\"}",
	    CREDIT("w", 2), ZEROS);
	spit(path_of("chain.jsonl"), body, strlen(body));
	{
		struct ledger_replay rp;

		ok(run(path_of("chain.jsonl"), LEDGER_REPLAY_VERIFY, 0, "",
		    &rp) < 0 && strcmp(err, "line 2: hash chain broken: prev "
		    "does not match line 1") == 0, "broken chain: %s", err);
		ok(run(path_of("chain.jsonl"), LEDGER_REPLAY_OPEN, 1, "cny",
		    &rp) == 0 && balance("w") == 3, "allowed broken: the "
		    "record is applied as written");
	}
	snprintf(body, sizeof body, "%s,\"prev\":\"1%.63s\"}\n",
	    CREDIT("w", 2), ZEROS);
	spit(path_of("first.jsonl"), body, strlen(body));
	{
		struct ledger_replay rp;

		ok(run(path_of("first.jsonl"), LEDGER_REPLAY_VERIFY, 0, "",
		    &rp) < 0 && strcmp(err, "line 1: hash chain broken: prev "
		    "of the first line is not 64 zeros") == 0, "first prev: %s",
		    err);
	}
	{
		struct ledger_replay rp;

		ok(run(path_of("missing.jsonl"), LEDGER_REPLAY_VERIFY, 0, "",
		    &rp) < 0 && strncmp(err, dir, strlen(dir)) == 0 &&
		    strstr(err, "missing.jsonl: read: Bad file descriptor") !=
		    NULL, "a read error: %s", err);
		ok(run(path_of("missing.jsonl"), LEDGER_REPLAY_OPEN, 0, "cny",
		    &rp) < 0 && strncmp(err, "ledger ", 7) == 0,
		    "open's read error names the ledger: %s", err);
	}
}

static void
test_torn(void)
{
	const char *p = path_of("torn.jsonl");
	struct ledger_replay rp;
	size_t size;
	int fd;

	unlink(p);
	append_raw(p, CREDIT("w", 5));
	append_raw(p, CHARGE("r1", "w", 1));
	free(slurp(p, &size));
	fd = open(p, O_WRONLY | O_APPEND);
	ok(write(fd, "{\"ts\":\"20", 9) == 9, "tear");
	close(fd);
	ok(run(p, LEDGER_REPLAY_VERIFY, 0, "", &rp) < 0 &&
	    strcmp(err, "line 3: torn last line: no newline at the end of the "
	    "file (the relay cuts it off at start)") == 0, "verify: %s", err);
	ok(run(p, LEDGER_REPLAY_REPORT, 0, "", &rp) == 0 &&
	    rp.torn_line == 3 && rp.lines == 2 && rp.end == (off_t)size,
	    "report skips it");
	memset(&cut, 0, sizeof cut);
	ok(run(p, LEDGER_REPLAY_OPEN, 0, "cny", &rp) == 0 && cut.calls == 1 &&
	    cut.end == (off_t)size && cut.line == 3 &&
	    strcmp(cut.text, "{\"ts\":\"20") == 0 && rp.lines == 2,
	    "open hands it to cut()");
	cut.fail = 1;
	ok(run(p, LEDGER_REPLAY_OPEN, 0, "cny", &rp) < 0 &&
	    strcmp(err, "cut failed") == 0, "cut() can stop the open");
	cut.fail = 0;
}

/* Many lines across reads, then a line of exactly LEDGER_LINE_MAX bytes
 * and one a byte longer. */
static void
test_window(void)
{
	static const char body[] = TS "\"type\":\"credit\",\"wallet\":\"w\","
	    "\"cny_nano\":1,\"note\":\"pad\"";
	const char *p = path_of("big.jsonl");
	struct ledger_replay rp;
	size_t i;
	int fd;

	unlink(p);
	fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	close(fd);
	for (i = 0; i < 1500; i++) {
		append_raw(p, body);
	}
	ok(run(p, LEDGER_REPLAY_VERIFY, 0, "", &rp) == 0 && rp.lines == 1500 &&
	    balance("w") == 1500, "1500 lines across reads: %s", err);
	append_padded(p, body, LEDGER_LINE_MAX);
	append_padded(p, body, LEDGER_LINE_MAX + 1);
	ok(run(p, LEDGER_REPLAY_VERIFY, 0, "", &rp) < 0 &&
	    strcmp(err, "line 1502: malformed line: longer than 65536 bytes") ==
	    0, "line 1501 of exactly LEDGER_LINE_MAX bytes passes, 1502 does "
	    "not: %s", err);
	ok(run(p, LEDGER_REPLAY_OPEN, 1, "cny", &rp) < 0 &&
	    strstr(err, ":1502: malformed line (longer than 65536 bytes)") !=
	    NULL, "too long is fatal even when broken ledgers are allowed");
}

/* ledger_replay_apply() on its own, as the queue recovery uses it. */
static void
test_apply(void)
{
	struct ledger_replay rp;
	struct ledger_rec r;
	char why[LEDGER_REC_WHY_MAX], line[512];

	ledger_table_free(&tab);
	memset(&rp, 0, sizeof rp);
	rp.mode = LEDGER_REPLAY_OPEN;
	rp.path = "q";
	rp.tab = &tab;
	memcpy(rp.cur, "cny", 4);
	snprintf(line, sizeof line, "%s,\"prev\":\"%s\"}",
	    CHARGE("r", "w", 9), ZEROS);
	ok(ledger_rec_parse(line, strlen(line), &r, why, sizeof why) == 0,
	    "parse: %s", why);
	ok(ledger_replay_apply(&rp, &r, 7, err, sizeof err) == 0 &&
	    balance("w") == -9, "a charge applied");
	memcpy(rp.cur, "usd", 4);
	capture_stderr();
	ok(ledger_replay_apply(&rp, &r, 8, err, sizeof err) < 0 &&
	    strcmp(err, "ledger q:8: wrong currency (amounts in cny_nano, but "
	    "the ledger's currency is usd; a ledger keeps one currency)") == 0,
	    "wrong currency: %s", err);
	captured(logged, sizeof logged);
	ok(balance("w") == -9, "not applied");
}

int
main(void)
{
	make_dir("test_ledger_replay");
	test_good();
	test_problems();
	test_torn();
	test_window();
	test_apply();
	ledger_table_free(&tab);
	if (t_fail == 0) {
		remove_dir();
	}
	return t_done("ledger_replay");
}
