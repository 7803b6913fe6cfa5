/* Unit tests for ledger_rec: the grammar of one ledger line. Every record
 * type with its decoded fields; each field type given every wrong kind of
 * value; bad hashes, bad time stamps, names at and over the limit; the
 * exact JSON grammar; and torn lines: every strict prefix of a good line
 * is refused. Inputs sit right before a PROT_NONE page, so a read past
 * the end crashes instead of passing. */
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "ledger_rec.h"
#include "t.h"
#include "util.h"

#define PREV "\"prev\":\"" \
	"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\""
#define TS "{\"ts\":\"2026-11-20T10:00:00.000Z\","
#define CH TS "\"type\":\"charge\",\"id\":\"r\",\"wallet\":\"acme\"," \
	"\"model\":\"m\",\"route\":\"p/m\",\"status\":200,\"in\":1,\"out\":2," \
	"\"usd_nano\":3,"
#define CR TS "\"type\":\"credit\",\"wallet\":\"acme\","

static char *page;		/* two pages: read-write, then PROT_NONE */
static size_t pagesz;
static char why[LEDGER_REC_WHY_MAX];
static struct ledger_rec rec;

/* Parse s[0..n) placed so that its last byte is the last readable one. */
static int
parse_n(const char *s, size_t n)
{
	char *at;

	if (n > pagesz) {
		return -2;
	}
	at = page + pagesz - n;
	memcpy(at, s, n);
	why[0] = '\0';
	return ledger_rec_parse(at, n, &rec, why, sizeof why);
}

static int
parse(const char *s)
{
	return parse_n(s, strlen(s));
}

/* s must be refused with exactly want. */
static void
bad(const char *name, const char *s, const char *want)
{
	ok(parse(s) < 0, "%s: refused", name);
	ok_str(why, want, name);
}

static void
test_charge(void)
{
	ok(parse(CH "\"cny_nano\":72702000,\"task\":\"t\\u0031\","
	    "\"cred\":\"openai#1\",\"estimated\":true," PREV "}") == 0,
	    "charge: %s", why);
	ok_int(rec.type, LEDGER_REC_CHARGE, "type");
	ok(memcmp(rec.ts, "2026-11-20T10:00:00.000Z", 24) == 0, "ts view");
	ok(memcmp(rec.prev, "0123456789abcdef", 16) == 0, "prev view");
	ok(rec.ts >= page && rec.prev < page + pagesz, "views into the line");
	ok_str(rec.cur, "cny", "currency from the key");
	ok_int(rec.cur_keyed, 1, "keyed");
	ok_int(rec.amount, 72702000, "debit");
	ok_int(rec.status, 200, "status");
	ok_int(rec.in, 1, "in");
	ok_int(rec.out, 2, "out");
	ok_int(rec.usd_nano, 3, "usd_nano");
	ok_int(rec.estimated, 1, "estimated");
	ok_str(rec.id, "r", "id");
	ok_str(rec.task, "t1", "task, \\u escape decoded");
	ok_str(rec.wallet, "acme", "wallet");
	ok_str(rec.model, "m", "model");
	ok_str(rec.route, "p/m", "route");
	ok_str(rec.cred, "openai#1", "cred");

	/* USD: usd_nano is the cost and the debit; optional fields absent. */
	ok(parse(CH PREV "}") == 0, "usd charge: %s", why);
	ok(strcmp(rec.cur, "usd") == 0 && !rec.cur_keyed && rec.amount == 3,
	    "usd: the debit is usd_nano");
	ok(rec.task[0] == '\0' && rec.cred[0] == '\0' && !rec.estimated,
	    "absent fields are empty");
	ok(parse(CH "\"cny_nano\":0,\"estimated\":false," PREV "}") == 0 &&
	    rec.amount == 0 && !rec.estimated, "zero debit, estimated false");
	ok(parse(CH "\"cny_nano\":-0," PREV "}") == 0 && rec.amount == 0,
	    "-0 is not negative");
	ok(parse(CH "\"cny_nano\":9223372036854775807," PREV "}") == 0 &&
	    rec.amount == INT64_MAX, "largest debit");

	/* Cached and cache-write tokens, and who cut an estimated answer
	 * (SPEC §8). */
	ok(parse(CH "\"cached\":1920,\"cache_write\":100000,\"cny_nano\":5,"
	    "\"estimated\":true,\"cut\":\"client\"," PREV "}") == 0,
	    "cached, cache_write, cut: %s", why);
	ok(rec.cached == 1920 && rec.cache_write == 100000, "cache counts");
	ok_str(rec.cut, "client", "cut");
	ok(parse(CH PREV "}") == 0 && rec.cached == 0 &&
	    rec.cache_write == 0 && rec.cut[0] == '\0', "absent: 0 and \"\"");
	ok(parse(CH "\"cut\":\"upstream\"," PREV "}") == 0, "cut upstream");
	bad("cut someone else", CH "\"cut\":\"server\"," PREV "}",
	    "\"cut\" must be \"client\" or \"upstream\"");
	bad("cached negative", CH "\"cached\":-1," PREV "}",
	    "\"cached\" is negative");
	bad("cache_write a string", CH "\"cache_write\":\"1\"," PREV "}",
	    "\"cache_write\" must be an integer");
	bad("cached in a credit", "{\"ts\":\"2026-11-20T10:00:00.000Z\","
	    "\"type\":\"credit\",\"wallet\":\"w\",\"cny_nano\":1,"
	    "\"cached\":1," PREV "}",
	    "\"cached\" does not belong in a credit record");
}

static void
test_credit_task(void)
{
	ok(parse(CR "\"cny_nano\":-3000000000,\"note\":\"correction\","
	    PREV "}") == 0, "credit: %s", why);
	ok(rec.type == LEDGER_REC_CREDIT && rec.amount == -3000000000LL,
	    "negative credit amount");
	ok(rec.status == 0 && rec.in == 0 && rec.usd_nano == 0 &&
	    rec.id[0] == '\0', "charge fields are zero in a credit");
	ok(parse(CR "\"usd_nano\":5," PREV "}") == 0 &&
	    strcmp(rec.cur, "usd") == 0 && rec.amount == 5, "usd credit");
	ok(parse(CR "\"cny_nano\":-9223372036854775807," PREV "}") == 0 &&
	    rec.amount == -INT64_MAX, "most negative credit");

	ok(parse(TS "\"type\":\"task\",\"id\":\"cgt-1\",\"wallet\":\"acme\","
	    "\"model\":\"seedance\",\"route\":\"ark/seedance-250528\","
	    "\"cred\":\"ark#1\"," PREV "}") == 0, "task: %s", why);
	ok(rec.type == LEDGER_REC_TASK && rec.cur[0] == '\0' &&
	    rec.amount == 0, "a task has no amount");
	ok_str(rec.route, "ark/seedance-250528", "task route");
	bad("task with amount", TS "\"type\":\"task\",\"id\":\"c\","
	    "\"wallet\":\"a\",\"model\":\"m\",\"route\":\"r\",\"cny_nano\":1,"
	    PREV "}", "\"cny_nano\" does not belong in a task record");
	bad("task without route", TS "\"type\":\"task\",\"id\":\"c\","
	    "\"wallet\":\"a\",\"model\":\"m\"," PREV "}",
	    "missing \"route\"");
	bad("task with empty id", TS "\"type\":\"task\",\"id\":\"\","
	    "\"wallet\":\"a\",\"model\":\"m\",\"route\":\"r\"," PREV "}",
	    "\"id\" is empty");
}

/* Each field type given each wrong kind of value. */
static void
test_field_kinds(void)
{
	static const struct {
		const char *name, *body, *want;
	} cases[] = {
		{ "string as number", TS "\"type\":\"credit\",\"wallet\":1,"
		    "\"cny_nano\":1,", "\"wallet\" must be a string" },
		{ "string as bool", CH "\"cred\":true,\"cny_nano\":1,",
		    "\"cred\" must be a string" },
		{ "string as null", CR "\"note\":null,\"cny_nano\":1,",
		    "\"note\" must be a string" },
		{ "ts as number", "{\"ts\":1,\"type\":\"credit\","
		    "\"wallet\":\"a\",\"cny_nano\":1,", "\"ts\" must be a "
		    "string" },
		{ "integer as string", CR "\"cny_nano\":\"1\",",
		    "\"cny_nano\" must be an integer" },
		{ "integer as fraction", CR "\"cny_nano\":1.0,",
		    "\"cny_nano\" must be an integer" },
		{ "integer as exponent", CR "\"cny_nano\":1e3,",
		    "\"cny_nano\" must be an integer" },
		{ "integer as null", CR "\"cny_nano\":null,",
		    "\"cny_nano\" must be an integer" },
		{ "integer as bool", CR "\"cny_nano\":false,",
		    "\"cny_nano\" must be an integer" },
		{ "integer over 64 bits", CR "\"cny_nano\":"
		    "18446744073709551616,", "\"cny_nano\" is out of range" },
		{ "amount over int64", CR "\"cny_nano\":9223372036854775808,",
		    "the amount is out of range" },
		{ "negative token count", TS "\"type\":\"charge\",\"id\":\"r\","
		    "\"wallet\":\"a\",\"model\":\"m\",\"route\":\"r\","
		    "\"status\":200,\"in\":1,\"out\":-2,\"usd_nano\":3,",
		    "\"out\" is negative" },
		{ "negative debit", CH "\"cny_nano\":-1,",
		    "\"cny_nano\" is negative" },
		{ "status over 999", TS "\"type\":\"charge\",\"id\":\"r\","
		    "\"wallet\":\"a\",\"model\":\"m\",\"route\":\"r\","
		    "\"status\":1000,\"in\":1,\"out\":2,\"usd_nano\":3,",
		    "\"status\" is out of range" },
		{ "bool as number", CH "\"estimated\":1,",
		    "\"estimated\" must be true or false" },
		{ "bool as string", CH "\"estimated\":\"true\",",
		    "\"estimated\" must be true or false" },
		{ "type as number", "{\"ts\":\"2026-11-20T10:00:00.000Z\","
		    "\"type\":1,\"wallet\":\"a\",", "missing \"type\"" },
	};
	char line[1024];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(line, sizeof line, "%s" PREV "}", cases[i].body);
		bad(cases[i].name, line, cases[i].want);
	}
}

static void
test_hashes(void)
{
	static const struct {
		const char *name, *prev;
	} cases[] = {
		{ "63 digits", "0123456789abcdef0123456789abcdef0123456789abcd"
		    "ef0123456789abcde" },
		{ "65 digits", "0123456789abcdef0123456789abcdef0123456789abcd"
		    "ef0123456789abcdef0" },
		{ "upper case", "0123456789ABCDEF0123456789abcdef0123456789abcd"
		    "ef0123456789abcdef" },
		{ "not hex", "g123456789abcdef0123456789abcdef0123456789abcdef"
		    "0123456789abcdef" },
		{ "empty", "" },
		{ "escaped digit", "\\u0030123456789abcdef0123456789abcdef01234"
		    "56789abcdef0123456789abcdef" },
	};
	char line[512];
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(line, sizeof line, CR "\"cny_nano\":1,\"prev\":\"%s\"}",
		    cases[i].prev);
		bad(cases[i].name, line, "\"prev\" is not 64 lower-case hex "
		    "digits");
	}
	bad("no prev", CR "\"cny_nano\":1}", "missing \"prev\"");
	bad("prev a number", CR "\"cny_nano\":1,\"prev\":0}",
	    "\"prev\" must be a string");
}

static void
test_timestamps(void)
{
	static const char *const bad_ts[] = {
		"2026-11-20T10:00:00Z",		/* no milliseconds */
		"2026-11-20T10:00:00.000",	/* no Z */
		"2026-11-20 10:00:00.000Z",	/* a blank for T */
		"2026-11-20T10:00:00.000+00:00",
		"2026-1-20T10:00:00.000Z",
		"20261120T100000.000Z",
		"2026-11-2xT10:00:00.000Z",
		"2026-11-20T10:00:00.0000Z",
		"",
		"yesterday",
	};
	char line[512];
	size_t i;

	for (i = 0; i < sizeof bad_ts / sizeof bad_ts[0]; i++) {
		snprintf(line, sizeof line, "{\"ts\":\"%s\",\"type\":\"credit\","
		    "\"wallet\":\"a\",\"cny_nano\":1," PREV "}", bad_ts[i]);
		bad(bad_ts[i], line, "\"ts\" is not a UTC time like "
		    "2026-11-24T22:10:00.123Z");
	}
	/* The shape only: the parser does not judge the calendar. */
	ok(parse("{\"ts\":\"9999-99-99T99:99:99.999Z\",\"type\":\"credit\","
	    "\"wallet\":\"a\",\"cny_nano\":1," PREV "}") == 0,
	    "any digits in the shape");
	bad("no ts", "{\"type\":\"credit\",\"wallet\":\"a\",\"cny_nano\":1,"
	    PREV "}", "missing \"ts\"");
}

static void
test_names(void)
{
	char name[LEDGER_NAME_MAX + 2], line[1024];

	memset(name, 'n', sizeof name);
	name[LEDGER_NAME_MAX] = '\0';
	snprintf(line, sizeof line, TS "\"type\":\"credit\",\"wallet\":\"%s\","
	    "\"cny_nano\":1," PREV "}", name);
	ok(parse(line) == 0 && strlen(rec.wallet) == LEDGER_NAME_MAX,
	    "a name of LEDGER_NAME_MAX bytes: %s", why);
	name[LEDGER_NAME_MAX] = 'n';
	name[LEDGER_NAME_MAX + 1] = '\0';
	snprintf(line, sizeof line, TS "\"type\":\"credit\",\"wallet\":\"%s\","
	    "\"cny_nano\":1," PREV "}", name);
	bad("one byte more", line, "\"wallet\" is not a valid string of at "
	    "most 256 bytes");
	/* 255 bytes and one escape that decodes to 2 bytes: 257. */
	name[LEDGER_NAME_MAX - 1] = '\0';
	snprintf(line, sizeof line, TS "\"type\":\"credit\",\"wallet\":"
	    "\"%s\\u00e9\",\"cny_nano\":1," PREV "}", name);
	bad("over the limit once decoded", line, "\"wallet\" is not a valid "
	    "string of at most 256 bytes");
	bad("NUL in a name", CR "\"cny_nano\":1,\"id\":\"x\"," PREV "}",
	    "\"id\" does not belong in a credit record");
	bad("NUL escape", TS "\"type\":\"credit\",\"wallet\":\"a\\u0000b\","
	    "\"cny_nano\":1," PREV "}", "\"wallet\" is not a valid string of "
	    "at most 256 bytes");
	bad("lone surrogate", TS "\"type\":\"credit\",\"wallet\":\"\\ud800\","
	    "\"cny_nano\":1," PREV "}", "\"wallet\" is not a valid string of "
	    "at most 256 bytes");
	bad("empty wallet", TS "\"type\":\"credit\",\"wallet\":\"\","
	    "\"cny_nano\":1," PREV "}", "\"wallet\" is empty");
	ok(parse(TS "\"type\":\"credit\",\"wallet\":\"a\\\"b\\\\c\\/d\\n\","
	    "\"cny_nano\":1," PREV "}") == 0 &&
	    strcmp(rec.wallet, "a\"b\\c/d\n") == 0, "escapes decoded");
}

static void
test_grammar(void)
{
	ok(parse(" { \"type\" : \"credit\" , \"ts\" : "
	    "\"2026-11-20T10:00:00.000Z\",\r\n\t\"wallet\":\"acme\", "
	    "\"cny_nano\":-1 , " PREV " } ") == 0,
	    "blanks anywhere JSON allows them: %s", why);
	bad("not an object", "[1]", "not a JSON object");
	bad("empty line", "", "not a JSON object");
	bad("blank line", "  ", "not a JSON object");
	bad("empty object", "{}", "missing \"type\"");
	bad("key not a string", "{ts:1}", "bad JSON at byte 2 (expected a "
	    "key)");
	bad("no colon", "{\"ts\" 1}", "bad JSON at byte 7 (expected ':')");
	bad("no value", "{\"ts\":}", "bad JSON at byte 7 (expected a string, "
	    "number or literal)");
	bad("nested object", "{\"in\":{}}", "bad JSON at byte 7 (expected a "
	    "string, number or literal)");
	bad("array", "{\"in\":[1]}", "bad JSON at byte 7 (expected a "
	    "string, number or literal)");
	bad("half literal", "{\"estimated\":tru}", "bad JSON at byte 14 "
	    "(expected a string, number or literal)");
	bad("bad escape", "{\"note\":\"a\\q\"}", "bad JSON at byte 9 "
	    "(expected a string, number or literal)");
	bad("short \\u", "{\"note\":\"\\u12\"}", "bad JSON at byte 9 "
	    "(expected a string, number or literal)");
	bad("control character", "{\"note\":\"a\tb\"}", "bad JSON at byte 9 "
	    "(expected a string, number or literal)");
	bad("leading plus", "{\"in\":+1}", "bad JSON at byte 7 (expected a "
	    "string, number or literal)");
	bad("bare minus", "{\"in\":-}", "bad JSON at byte 7 (expected a "
	    "string, number or literal)");
	bad("dot without digits", "{\"in\":1.}", "bad JSON at byte 7 "
	    "(expected a string, number or literal)");
	bad("exponent without digits", "{\"in\":1e+}", "bad JSON at byte 7 "
	    "(expected a string, number or literal)");
	bad("leading zero", "{\"in\":01}", "bad JSON at byte 8 (expected ',' "
	    "or '}')");
	bad("missing comma", "{\"in\":1 \"out\":2}", "bad JSON at byte 9 "
	    "(expected ',' or '}')");
	bad("trailing comma", "{\"in\":1,}", "bad JSON at byte 9 (expected "
	    "a key)");
	bad("bytes after", CR "\"cny_nano\":1," PREV "} x", "bad JSON at "
	    "byte 154 (bytes after the object)");
	bad("two objects", CR "\"cny_nano\":1," PREV "}{}", "bad JSON at "
	    "byte 153 (bytes after the object)");
	bad("unknown key", "{\"bonus\":1}", "unknown key \"bonus\"");
	bad("long unknown key is cut", "{\"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaa\":1}", "unknown key \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"");
	bad("upper-case currency", "{\"CNY_nano\":1}",
	    "unknown key \"CNY_nano\"");
	bad("four-letter currency", "{\"cnyx_nano\":1}",
	    "unknown key \"cnyx_nano\"");
	bad("duplicate key", "{\"in\":1,\"in\":1}", "duplicate key \"in\"");
	bad("two currency keys", "{\"cny_nano\":1,\"eur_nano\":1}",
	    "duplicate key \"eur_nano\"");
	bad("unknown type", TS "\"type\":\"refund\",\"wallet\":\"a\"",
	    "bad JSON at byte 62 (expected ',' or '}')");
	bad("unknown type, whole", TS "\"type\":\"refund\",\"wallet\":\"a\"}",
	    "unknown record type \"refund\"");
	bad("note in a charge", CH "\"cny_nano\":1,\"note\":\"x\"," PREV "}",
	    "\"note\" does not belong in a charge record");
	bad("credit with two amounts", CR "\"cny_nano\":1,\"usd_nano\":1,"
	    PREV "}", "a credit needs exactly one amount "
	    "(\"<currency>_nano\")");
	bad("credit without amount", CR PREV "}", "a credit needs exactly "
	    "one amount (\"<currency>_nano\")");
	bad("charge without usd", TS "\"type\":\"charge\",\"id\":\"r\","
	    "\"wallet\":\"a\",\"model\":\"m\",\"route\":\"r\",\"status\":1,"
	    "\"in\":1,\"out\":2,\"cny_nano\":1," PREV "}",
	    "missing \"usd_nano\"");
	ok(parse(CR "\"eur_nano\":1," PREV "}") == 0 &&
	    strcmp(rec.cur, "eur") == 0, "another currency parses (the "
	    "ledger's currency is the caller's check)");
}

/* A line cut anywhere (a crash mid-write) is never a record. */
static void
test_torn(void)
{
	static const char *const lines[] = {
		CH "\"cny_nano\":72702000,\"estimated\":true," PREV "}",
		CR "\"cny_nano\":-1,\"note\":\"x\"," PREV "}",
		TS "\"type\":\"task\",\"id\":\"c\",\"wallet\":\"a\","
		    "\"model\":\"m\",\"route\":\"r\"," PREV "}",
	};
	size_t i, k, n, accepted;

	for (i = 0; i < sizeof lines / sizeof lines[0]; i++) {
		n = strlen(lines[i]);
		ok(parse_n(lines[i], n) == 0, "line %zu whole: %s", i, why);
		for (k = 0, accepted = 0; k < n; k++) {
			accepted += parse_n(lines[i], k) == 0;
		}
		ok_int(accepted, 0, "no prefix of a line parses");
	}
	/* Cut inside an escape or a number, at the page's end. */
	ok(parse_n("{\"note\":\"\\u00", 13) < 0, "cut in \\u");
	ok(parse_n("{\"note\":\"\\", 10) < 0, "cut after a backslash");
	ok(parse_n("{\"in\":12", 8) < 0, "cut in a number");
	ok(parse_n("{\"in\":1e", 8) < 0, "cut in an exponent");
	ok(parse_n("{\"estimated\":fals", 17) < 0, "cut in a literal");
}

static void
test_hash(void)
{
	static const char line[] = "{\"ts\":\"x\"}";
	unsigned char h[32];
	char want[65], got[65];

	ok(strlen(ledger_rec_zero_hash) == 64 &&
	    strspn(ledger_rec_zero_hash, "0") == 64, "zero hash");
	util_sha256(line, sizeof line - 1, h);
	util_hex(h, 32, want);
	ledger_rec_hash(line, sizeof line - 1, got);
	ok_str(got, want, "chain hash is the hex SHA-256");
	ledger_rec_hash("", 0, got);
	ok_str(got, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b"
	    "7852b855", "hash of the empty line");
}

int
main(void)
{
	pagesz = (size_t)sysconf(_SC_PAGESIZE);
	page = mmap(NULL, 2 * pagesz, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (page == MAP_FAILED || mprotect(page + pagesz, pagesz,
	    PROT_NONE) < 0) {
		perror("mmap");
		return 2;
	}
	test_charge();
	test_credit_task();
	test_field_kinds();
	test_hashes();
	test_timestamps();
	test_names();
	test_grammar();
	test_torn();
	test_hash();
	return t_done("ledger_rec");
}
