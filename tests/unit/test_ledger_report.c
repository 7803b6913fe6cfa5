/* Unit tests for ledger_report: what `relay ledger verify` and `relay
 * ledger report` print for hand-written files. Balances and currencies,
 * every malformed record as verify names it, over-long lines and missing
 * files, the report table by wallet, model and day (since a day, with
 * totals, a torn tail noted, totals out of range refused), and verify's
 * notes about a queue file a relay left behind. Files live in a fresh
 * directory under /tmp. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "ledger_queue.h"
#include "ledger_report.h"
#include "log.h"
#include "t.h"
#include "ledger_t.h"

static void
malformed_case(const char *name, const char *body, const char *want)
{
	const char *p = path_of("bad.jsonl");
	char out[512];

	unlink(p);
	append_raw(p, "{\"ts\":\"2026-11-20T10:00:00.000Z\",\"type\":\"credit\","
	    "\"wallet\":\"acme\",\"cny_nano\":1000000000,\"note\":\"\"");
	append_raw(p, body);
	ok(verify(p, out, sizeof out) < 0, "%s: refused", name);
	ok_str(err, want, name);
}

#define TS "{\"ts\":\"2026-11-20T10:00:00.000Z\","
#define CH TS "\"type\":\"charge\",\"id\":\"r\",\"wallet\":\"acme\"," \
	"\"model\":\"m\",\"route\":\"p/m\",\"status\":200,"

static void
test_malformed(void)
{
	const char *p = path_of("good.jsonl");
	char out[512];

	unlink(p);
	append_raw(p, TS "\"type\":\"credit\",\"wallet\":\"a\\u0063me\","
	    "\"cny_nano\":1000000000,\"note\":\"\"");
	append_raw(p, CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":100000000,\"estimated\":false");
	append_raw(p, " { \"type\" : \"credit\" , \"ts\" : "
	    "\"2026-11-20T10:00:00.000Z\", \"wallet\":\"acme\", "
	    "\"cny_nano\":-1 ");
	ok(verify(p, out, sizeof out) == 0, "hand-written records: %s", err);
	ok_str(out, "acme CNY 0.90\n", "escaped wallet name decoded");

	malformed_case("missing usd", CH "\"in\":1,\"out\":2,\"cny_nano\":1",
	    "line 2: malformed record: missing \"usd_nano\"");
	malformed_case("negative", CH "\"in\":-1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1", "line 2: malformed record: \"in\" is negative");
	malformed_case("fraction", CH "\"in\":1.5,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1", "line 2: malformed record: \"in\" must be an "
	    "integer");
	malformed_case("string number", CH "\"in\":\"1\",\"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":1", "line 2: malformed record: "
	    "\"in\" must be an integer");
	malformed_case("huge", CH "\"in\":18446744073709551616,\"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":1", "line 2: malformed record: "
	    "\"in\" is out of range");
	malformed_case("amount range", CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":9223372036854775808", "line 2: malformed record: "
	    "the amount is out of range");
	malformed_case("unknown key", CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1,\"bonus\":1", "line 2: malformed record: unknown "
	    "key \"bonus\"");
	malformed_case("duplicate", CH "\"in\":1,\"in\":1,\"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":1", "line 2: malformed record: "
	    "duplicate key \"in\"");
	malformed_case("bad type", TS "\"type\":\"refund\",\"wallet\":\"a\"",
	    "line 2: malformed record: unknown record type \"refund\"");
	malformed_case("note on charge", CH "\"in\":1,\"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":1,\"note\":\"x\"", "line 2: "
	    "malformed record: \"note\" does not belong in a charge record");
	malformed_case("bad ts", "{\"ts\":\"yesterday\",\"type\":\"credit\","
	    "\"wallet\":\"a\",\"cny_nano\":1", "line 2: malformed record: "
	    "\"ts\" is not a UTC time like 2026-11-24T22:10:00.123Z");
	malformed_case("other currency", TS "\"type\":\"credit\",\"wallet\":"
	    "\"a\",\"eur_nano\":1", "line 2: wrong currency: amounts in "
	    "eur_nano, but the ledger's currency is cny; a ledger keeps one "
	    "currency");
	malformed_case("two amounts", TS "\"type\":\"credit\",\"wallet\":"
	    "\"a\",\"cny_nano\":1,\"usd_nano\":1", "line 2: malformed record: "
	    "a credit needs exactly one amount (\"<currency>_nano\")");
	malformed_case("missing comma", CH "\"in\":1 \"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":1", "line 2: malformed record: bad "
	    "JSON at byte 121 (expected ',' or '}')");
	malformed_case("bad literal", CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1,\"estimated\":tru", "line 2: malformed record: "
	    "bad JSON at byte 167 (expected a string, number or literal)");
	malformed_case("bad escape", TS "\"type\":\"credit\",\"wallet\":"
	    "\"a\\q\",\"cny_nano\":1", "line 2: malformed record: bad JSON at "
	    "byte 59 (expected a string, number or literal)");
	malformed_case("nested", CH "\"in\":{},\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1", "line 2: malformed record: bad JSON at byte 119 "
	    "(expected a string, number or literal)");
	malformed_case("nul in name", TS "\"type\":\"credit\",\"wallet\":"
	    "\"a\\u0000b\",\"cny_nano\":1", "line 2: malformed record: "
	    "\"wallet\" is not a valid string of at most 256 bytes");
	malformed_case("empty wallet", TS "\"type\":\"credit\",\"wallet\":"
	    "\"\",\"cny_nano\":1", "line 2: malformed record: \"wallet\" is "
	    "empty");
	malformed_case("unknown task", CH "\"task\":\"t1\",\"in\":1,\"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":1", "line 2: bad task charge: task "
	    "\"t1\" is not recorded by an earlier line");
	malformed_case("trailing", TS "\"type\":\"credit\",\"wallet\":\"a\","
	    "\"cny_nano\":1} x", "line 2: malformed record: bad JSON at byte "
	    "77 (bytes after the object)");
	malformed_case("empty line", "", "line 2: malformed record: not a JSON "
	    "object");
}

static void
test_long_line(void)
{
	const char *p = path_of("long.jsonl");
	char *big = malloc(LEDGER_LINE_MAX + 2), out[256];

	memset(big, 'x', LEDGER_LINE_MAX + 1);
	big[LEDGER_LINE_MAX + 1] = '\n';
	spit(p, big, LEDGER_LINE_MAX + 2);
	ok(verify(p, out, sizeof out) < 0 && strcmp(err, "line 1: malformed "
	    "line: longer than 65536 bytes") == 0, "over-long line: %s", err);
	free(big);
	spit(p, "", 0);
	ok(verify(p, out, sizeof out) == 0 && out[0] == '\0',
	    "empty ledger verifies");
	ok(verify(path_of("missing.jsonl"), out, sizeof out) < 0 &&
	    strstr(err, "No such file") != NULL, "missing file: %s", err);
}

static void
test_report(void)
{
	const char *p = path_of("report.jsonl");
	char out[2048];

	unlink(p);
	append_raw(p, "{\"ts\":\"2026-11-19T09:00:00.000Z\",\"type\":\"credit\","
	    "\"wallet\":\"acme\",\"cny_nano\":100000000000,\"note\":\"top-up\"");
	append_raw(p, "{\"ts\":\"2026-11-20T10:00:00.000Z\",\"type\":\"charge\","
	    "\"id\":\"r1\",\"wallet\":\"acme\",\"model\":\"gpt-5.2\",\"route\":"
	    "\"openai/gpt-5.2\",\"cred\":\"openai#1\",\"status\":200,"
	    "\"in\":1000,\"out\":500,\"usd_nano\":8750000,"
	    "\"cny_nano\":63000000");
	append_raw(p, "{\"ts\":\"2026-11-21T11:00:00.000Z\",\"type\":\"charge\","
	    "\"id\":\"r2\",\"wallet\":\"beta\",\"model\":\"claude-3-5-sonnet\","
	    "\"route\":\"anthropic/claude\",\"status\":200,\"in\":2000,"
	    "\"out\":100,\"usd_nano\":7500000,\"cny_nano\":54000000");
	append_raw(p, "{\"ts\":\"2026-11-21T12:00:00.000Z\",\"type\":\"charge\","
	    "\"id\":\"r3\",\"wallet\":\"acme\",\"model\":\"gpt-5.2\",\"route\":"
	    "\"openai/gpt-5.2\",\"status\":502,\"in\":10,\"out\":10,"
	    "\"usd_nano\":157500,\"cny_nano\":1134000,\"estimated\":true");

	ok(verify(p, out, sizeof out) == 0, "verify report ledger: %s", err);
	ok_str(out, "acme CNY 99.94\nbeta CNY -0.05\n", "report balances");

	ok(report(p, NULL, NULL, out, sizeof out) == 0, "report: %s", err);
	ok_str(out,
	    "wallet  requests  in tokens  cached  cache write  out tokens       USD   CNY\n"
	    "acme           2       1010       0            0         510  0.008908  0.06\n"
	    "beta           1       2000       0            0         100  0.007500  0.05\n"
	    "total          3       3010       0            0         610  0.016408  0.12\n",
	    "report by wallet");
	ok(report(p, "model", NULL, out, sizeof out) == 0, "by model");
	ok_str(out,
	    "model              requests  in tokens  cached  cache write  out tokens       USD   "
	    "CNY\n"
	    "claude-3-5-sonnet         1       2000       0            0         100  0.007500  "
	    "0.05\n"
	    "gpt-5.2                   2       1010       0            0         510  0.008908  "
	    "0.06\n"
	    "total                     3       3010       0            0         610  0.016408  "
	    "0.12\n", "report by model");
	ok(report(p, "day", "2026-11-21", out, sizeof out) == 0, "by day");
	ok_str(out,
	    "day         requests  in tokens  cached  cache write  out tokens       USD   CNY\n"
	    "2026-11-21         2       2010       0            0         110  0.007658  0.06\n"
	    "total              2       2010       0            0         110  0.007658  0.06\n",
	    "report by day since");
	ok(report(p, "day", "2027-01-01", out, sizeof out) == 0 &&
	    strstr(out, "total         0          0       0            0           0  0.000000  "
	    "0.00\n") != NULL, "nothing since: %s", out);
	ok(report(p, "colour", NULL, out, sizeof out) < 0 &&
	    strcmp(err, "bad --by 'colour' (wallet, model, day or node)") == 0,
	    "bad by");
	ok(report(p, "day", "21/11/2026", out, sizeof out) < 0 &&
	    strcmp(err, "bad --since '21/11/2026' (YYYY-MM-DD)") == 0,
	    "bad since");
}

/* Several ledgers (a fleet's relays, each its own chain): one table,
 * by node too; a second file in another currency or with a broken chain
 * is refused, naming it. */
static void
test_several(void)
{
	const char *a = path_of("node-a.jsonl"), *b = path_of("node-b.jsonl");
	const char *c = path_of("node-c.jsonl"), *paths[3];
	char *buf = NULL, *text;
	size_t n = 0, bad = 9;
	FILE *f;
	int rc;

	unlink(a);
	unlink(b);
	unlink(c);
	append_raw(a, TS "\"type\":\"charge\",\"node\":\"relay-a\",\"id\":"
	    "\"r1\",\"wallet\":\"acme\",\"model\":\"m\",\"route\":\"p/m\","
	    "\"status\":200,\"in\":10,\"out\":20,\"usd_nano\":1000000,"
	    "\"cny_nano\":7200000");
	append_raw(b, TS "\"type\":\"charge\",\"node\":\"relay-b\",\"id\":"
	    "\"r2\",\"wallet\":\"acme\",\"model\":\"m\",\"route\":\"p/m\","
	    "\"status\":200,\"in\":1,\"out\":2,\"usd_nano\":2000000,"
	    "\"cny_nano\":14400000");
	append_raw(b, TS "\"type\":\"charge\",\"id\":\"r3\",\"wallet\":"
	    "\"beta\",\"model\":\"m\",\"route\":\"p/m\",\"status\":200,"
	    "\"in\":1,\"out\":1,\"usd_nano\":1000000,\"cny_nano\":7200000");
	paths[0] = a;
	paths[1] = b;
	f = open_memstream(&buf, &n);
	rc = ledger_report_files(paths, 2, "node", NULL, f, &bad, err,
	    sizeof err);
	fclose(f);
	ok(rc == 0, "two files: %s", err);
	ok_str(buf,
	    "node     requests  in tokens  cached  cache write  out tokens       USD   CNY\n"
	    "-               1          1       0            0           1  0.001000  0.01\n"
	    "relay-a         1         10       0            0          20  0.001000  0.01\n"
	    "relay-b         1          1       0            0           2  0.002000  0.01\n"
	    "total           3         12       0            0          23  0.004000  0.03\n",
	    "by node over two files");
	free(buf);
	buf = NULL;
	f = open_memstream(&buf, &n);
	rc = ledger_report_files(paths, 2, "wallet", NULL, f, &bad, err,
	    sizeof err);
	fclose(f);
	ok(rc == 0, "by wallet: %s", err);
	ok_str(buf,
	    "wallet  requests  in tokens  cached  cache write  out tokens       USD   CNY\n"
	    "acme           2         11       0            0          22  0.003000  0.02\n"
	    "beta           1          1       0            0           1  0.001000  0.01\n"
	    "total          3         12       0            0          23  0.004000  0.03\n",
	    "by wallet: the two relays' charges of acme add up");
	free(buf);
	buf = NULL;
	append_raw(c, TS "\"type\":\"credit\",\"wallet\":\"w\","
	    "\"usd_nano\":5000000000,\"note\":\"\"");
	paths[2] = c;
	f = open_memstream(&buf, &n);
	rc = ledger_report_files(paths, 3, NULL, NULL, f, &bad, err,
	    sizeof err);
	fclose(f);
	ok(rc < 0 && bad == 2, "another currency in the third file: %s", err);
	free(buf);
	buf = NULL;
	/* b's second line loses its link to the first. */
	text = slurp(b, NULL);
	if (text != NULL) {
		char *q = strstr(text, "\n") + 1;

		q = strstr(q, "\"prev\":\"") + 8;
		*q = *q == '0' ? '1' : '0';
		f = fopen(b, "w");
		fputs(text, f);
		fclose(f);
		free(text);
	}
	f = open_memstream(&buf, &n);
	rc = ledger_report_files(paths, 2, NULL, NULL, f, &bad, err,
	    sizeof err);
	fclose(f);
	ok(rc < 0 && bad == 1 && strstr(err, "line 2") != NULL,
	    "a broken chain in the second file: file %zu, %s", bad, err);
	free(buf);
}

/* Currencies: verify prints the ledger's, upper-case. */
static void
test_currencies(void)
{
	const char *p = path_of("usd.jsonl");
	char out[512];

	unlink(p);
	append_raw(p, TS "\"type\":\"credit\",\"wallet\":\"w\","
	    "\"usd_nano\":5000000000,\"note\":\"\"");
	append_raw(p, TS "\"type\":\"charge\",\"id\":\"r\",\"wallet\":"
	    "\"w\",\"model\":\"m\",\"route\":\"p/m\",\"status\":200,"
	    "\"in\":1,\"out\":2,\"usd_nano\":11000000");
	ok(verify(p, out, sizeof out) == 0, "usd ledger: %s", err);
	ok_str(out, "w USD 4.99\n", "usd balance, upper-case");
	ok(report(p, NULL, NULL, out, sizeof out) == 0, "usd report: %s", err);
	ok_str(out,
	    "wallet  requests  in tokens  cached  cache write  out tokens       USD   USD\n"
	    "w              1          1       0            0           2  0.011000  0.01\n"
	    "total          1          1       0            0           2  0.011000  0.01\n",
	    "usd report: the debit in both columns");
	p = path_of("tasks-only.jsonl");
	unlink(p);
	append_raw(p, TS "\"type\":\"task\",\"id\":\"t\",\"wallet\":\"w\","
	    "\"model\":\"m\",\"route\":\"p/m\"");
	ok(verify(p, out, sizeof out) == 0 && out[0] == '\0',
	    "tasks only: no balances");
	ok(report(p, "model", NULL, out, sizeof out) == 0, "report: %s", err);
	ok_str(out,
	    "model  requests  in tokens  cached  cache write  out tokens       USD  currency\n"
	    "total         0          0       0            0           0  0.000000      0.00\n",
	    "no amount yet: the column says currency");
}

/* Totals that leave int64_t are refused, naming the line. */
static void
test_totals(void)
{
	const char *p = path_of("huge.jsonl");
	char out[512];

	unlink(p);
	append_raw(p, CH "\"in\":1,\"out\":2,\"usd_nano\":"
	    "9223372036854775807,\"cny_nano\":1");
	append_raw(p, CH "\"in\":1,\"out\":2,\"usd_nano\":1,"
	    "\"cny_nano\":1");
	ok(verify(p, out, sizeof out) == 0, "verify does not sum usd: %s",
	    err);
	ok(report(p, NULL, NULL, out, sizeof out) < 0 &&
	    strcmp(err, "line 2: totals out of range") == 0,
	    "report refuses: %s", err);
}

/* A torn tail: verify refuses, report leaves it out with a note. */
static void
test_torn(void)
{
	const char *p = path_of("torn.jsonl");
	char out[1024];
	int fd;

	unlink(p);
	append_raw(p, CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":10000000");
	fd = open(p, O_WRONLY | O_APPEND);
	ok(write(fd, "{\"ts\"", 5) == 5, "tear");
	close(fd);
	ok(verify(p, out, sizeof out) < 0 && strcmp(err, "line 2: torn last "
	    "line: no newline at the end of the file (the relay cuts it off "
	    "at start)") == 0, "verify: %s", err);
	ok(report(p, NULL, NULL, out, sizeof out) == 0, "report: %s", err);
	ok_str(out,
	    "wallet  requests  in tokens  cached  cache write  out tokens       USD   CNY\n"
	    "acme           1          1       0            0           2  0.000000  0.01\n"
	    "total          1          1       0            0           2  0.000000  0.01\n"
	    "note: line 2 is torn (no newline at the end of the file) and was "
	    "left out\n", "torn tail noted");
}

/* verify's notes about <path>.queue (on stderr). */
static void
test_queue_notes(void)
{
	const char *p = path_of("q.jsonl");
	char out[256], notes[1024], line[1024], q[2048], hash[65], *text, *m;
	size_t n, len;

	unlink(p);
	append_raw(p, CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1");
	text = slurp(p, &n);
	hex_sha(text, n - 1, hash);
	free(text);
	/* Two charge lines queued after the ledger's last. */
	len = 0;
	snprintf(line, sizeof line, CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1,\"prev\":\"%s\"}", hash);
	len += (size_t)snprintf(q + len, sizeof q - len, "%s\n", line);
	hex_sha(line, strlen(line), hash);
	snprintf(line, sizeof line, CH "\"in\":1,\"out\":2,\"usd_nano\":3,"
	    "\"cny_nano\":1,\"prev\":\"%s\"}", hash);
	len += (size_t)snprintf(q + len, sizeof q - len, "%s\n", line);
	m = ledger_queue_map(p);
	ok(m != NULL, "a queue file");
	if (m == NULL) {
		return;
	}
	memcpy(m + LEDGER_QUEUE_HEAD, q, len);
	ledger_queue_set_len(m, len);
	capture_stderr();
	ok(verify(p, out, sizeof out) == 0, "verify with a queue: %s", err);
	captured(notes, sizeof notes);
	snprintf(line, sizeof line, "note: %s.queue holds 2 charge lines that "
	    "a relay answered and had not written when it stopped; the "
	    "balances above leave them out, and the relay's next start "
	    "appends them\n", p);
	ok_str(notes, line, "two lines missing");
	ok_str(out, "acme CNY 0.00\n", "balances without them");

	memcpy(m + LEDGER_QUEUE_HEAD, "x", 1);	/* line 1 no longer fits */
	capture_stderr();
	ok(verify(p, out, sizeof out) == 0, "verify: %s", err);
	captured(notes, sizeof notes);
	snprintf(line, sizeof line, "note: %s.queue holds queued charge lines "
	    "that do not continue the ledger's chain; the relay's next start "
	    "keeps them in %s.queue-unplaced\n", p, p);
	ok_str(notes, line, "unplaceable lines");

	ledger_queue_set_len(m, 0);
	capture_stderr();
	ok(verify(p, out, sizeof out) == 0, "verify: %s", err);
	captured(notes, sizeof notes);
	ok_str(notes, "", "an empty queue: no note");
	ledger_queue_unmap(m);
}

int
main(void)
{
	make_dir("test_ledger_report");
	log_set_level(LOG_ERROR);
	test_malformed();
	test_long_line();
	test_report();
	test_currencies();
	test_totals();
	test_torn();
	test_several();
	test_queue_notes();
	if (t_fail == 0) {
		remove_dir();
	}
	return t_done("ledger_report");
}
