/*
 * test_json: request scanning (fields, validation) and escape round
 * trips. (Usage counts in responses are usage.c's: test_usage.c.)
 *
 * Every input is also copied to end right before a PROT_NONE page
 * (picohttpparser's test.c idea), and every prefix of the valid inputs is
 * fed the same way, so a read past n crashes instead of passing quietly.
 *
 * Every request scanned here is also run through the reference copy of
 * the jsmn-based scanner the single-pass one replaced (json_ref.c), and
 * test_differential() adds mutations of a few bodies (truncations,
 * substitutions, deletions, insertions) and tricky cases: the result code,
 * every struct json_request field and json_top_string's views must be
 * identical.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "json.h"
#include "t.h"

#include "json_ref.c"

/* Room for the deep-nesting case; the page after it is PROT_NONE. */
#define GUARD_CAP (512 * 1024)

static char *guard_base;	/* owned: GUARD_CAP bytes then one guard page */

static void
guard_init(void)
{
	size_t ps = (size_t)sysconf(_SC_PAGESIZE);
	void *m;

	m = mmap(NULL, GUARD_CAP + ps, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (m == MAP_FAILED || mprotect((char *)m + GUARD_CAP, ps,
	    PROT_NONE) != 0) {
		printf("guard page setup failed\n");
		exit(2);
	}
	guard_base = m;
}

/* s[0..n) copied so that its last byte is the last readable one. */
static const char *
guarded(const char *s, size_t n)
{
	char *p;

	if (n > GUARD_CAP) {
		printf("input too large for the guard area\n");
		exit(2);
	}
	p = guard_base + GUARD_CAP - n;
	memmove(p, s, n);
	return p;
}

static size_t
rel(const char *p, const char *base)
{
	return p == NULL ? (size_t)-1 : (size_t)(p - base);
}

/* Scan s twice, in place and before the guard page, and insist the two
 * runs agree. The in-place result lands in *r. */
static int
scan_n(const char *s, size_t n, struct json_request *r)
{
	struct json_request g;
	const char *p;
	int a, b;

	a = json_scan_request(s, n, r);
	p = guarded(s, n);
	b = json_scan_request(p, n, &g);
	ok(a == b, "guarded result %d != %d for %.*s", b, a, (int)n, s);
	ok(ref_diff(p, n) == NULL, "%s differs from the reference for %.*s",
	    ref_diff(p, n), (int)n, s);
	if (a == JSON_OK && b == JSON_OK) {
		ok(rel(r->model.p, s) == rel(g.model.p, p) &&
		    r->model.n == g.model.n && r->model_off == g.model_off &&
		    r->model_len == g.model_len && r->stream == g.stream &&
		    r->has_max_tokens == g.has_max_tokens &&
		    r->max_tokens == g.max_tokens &&
		    r->has_stream_options == g.has_stream_options &&
		    r->include_usage == g.include_usage &&
		    r->stream_options_off == g.stream_options_off &&
		    r->stream_options_len == g.stream_options_len &&
		    r->object_end == g.object_end,
		    "guarded fields differ for %.*s", (int)n, s);
	}
	return a;
}

static int
scan(const char *s, struct json_request *r)
{
	return scan_n(s, strlen(s), r);
}

/* The model view must be what sits between the quotes at model_off. */
static void
check_model(const char *s, const struct json_request *r, const char *want)
{
	size_t wn = strlen(want);

	ok(r->model.n == wn && memcmp(r->model.p, want, wn) == 0,
	    "model: got \"%.*s\", want \"%s\"", (int)r->model.n,
	    r->model.p ? r->model.p : "", want);
	ok(r->model_len == wn + 2 && s[r->model_off] == '"' &&
	    s[r->model_off + r->model_len - 1] == '"' &&
	    r->model.p == s + r->model_off + 1,
	    "model range %zu+%zu in %s", r->model_off, r->model_len, s);
}

/* No proper prefix of a complete object is a complete object. */
static void
check_prefixes(const char *s)
{
	struct json_request r;
	size_t n = strlen(s), k, end, bad = 0;

	if (json_scan_request(s, n, &r) != JSON_OK) {
		ok(0, "prefix base %s not valid", s);
		return;
	}
	end = r.object_end;
	for (k = 0; k <= end; k++) {
		if (json_scan_request(guarded(s, k), k, &r) != JSON_INVALID ||
		    ref_diff(guarded(s, k), k) != NULL) {
			bad++;
		}
	}
	ok(bad == 0, "%zu prefixes of %s not invalid or not as the reference",
	    bad, s);
}

static void
test_model(void)
{
	struct json_request r;
	const char *s;
	char buf[64];
	long len;

	s = "{\"model\":\"gpt-4o\",\"messages\":[{\"role\":\"user\","
	    "\"content\":\"hi\"}]}";
	ok_int(scan(s, &r), JSON_OK, "model first");
	check_model(s, &r, "gpt-4o");
	ok_int(r.model_off, 9, "model_off");
	ok_int(r.object_end, strlen(s) - 1, "object_end");
	ok_int(r.stream, 0, "no stream");
	ok_int(r.has_max_tokens, 0, "no max tokens");
	ok_int(r.has_stream_options, 0, "no stream_options");
	check_prefixes(s);

	s = "{\"messages\":[{\"role\":\"user\",\"content\":\"hi\","
	    "\"model\":\"nested\"}],\"stream\":true,\"model\":\"claude\"}";
	ok_int(scan(s, &r), JSON_OK, "model last");
	check_model(s, &r, "claude");
	ok_int(r.stream, 1, "stream true");
	check_prefixes(s);

	s = "\n {\n  \"temperature\": 0.5,\n  \"model\" : \"m1\" ,\n"
	    "  \"n\": 1\n}\n\t\r ";
	ok_int(scan(s, &r), JSON_OK, "model middle, blanks");
	check_model(s, &r, "m1");
	ok_int(r.object_end, strchr(s, '}') - s, "object_end with blanks");
	check_prefixes(s);

	s = "{\"messages\":[{\"model\":\"x\"}],\"meta\":{\"model\":\"y\"},"
	    "\"m\":\"model\"}";
	ok_int(scan(s, &r), JSON_NO_MODEL, "nested model only");
	ok_int(scan("{}", &r), JSON_NO_MODEL, "empty object");
	ok_int(scan(" { } ", &r), JSON_NO_MODEL, "empty object, blanks");
	ok_int(scan("{\"model\":null}", &r), JSON_NO_MODEL, "model null");
	ok_int(scan("{\"model\":7}", &r), JSON_NO_MODEL, "model number");
	ok_int(scan("{\"model\":[\"a\"]}", &r), JSON_NO_MODEL, "model array");
	ok_int(scan("{\"model\":{\"id\":\"a\"}}", &r), JSON_NO_MODEL,
	    "model object");
	ok_int(scan("{\"Model\":\"a\"}", &r), JSON_NO_MODEL, "key case");
	ok_int(scan("{\"models\":\"a\"}", &r), JSON_NO_MODEL, "longer key");

	s = "{\"model\":\"\"}";
	ok_int(scan(s, &r), JSON_OK, "empty model");
	check_model(s, &r, "");

	s = "{\"model\":\"gpt\\u002d4o \\\"x\\\" \\\\ \\/\"}";
	ok_int(scan(s, &r), JSON_OK, "escaped model");
	check_model(s, &r, "gpt\\u002d4o \\\"x\\\" \\\\ \\/");
	len = json_unescape(r.model, buf, sizeof buf);
	ok_str(len >= 0 ? buf : NULL, "gpt-4o \"x\" \\ /", "model decoded");

	/* An escaped key is still the key the provider will read. */
	s = "{\"mod\\u0065l\":\"m\"}";
	ok_int(scan(s, &r), JSON_OK, "escaped key");
	check_model(s, &r, "m");
	s = "{\"model\":\"cheap\",\"mod\\u0065l\":\"dear\"}";
	ok_int(scan(s, &r), JSON_OK, "escaped duplicate key");
	check_model(s, &r, "dear");

	s = "{\"model\":\"a\",\"x\":1,\"model\":\"b\"}";
	ok_int(scan(s, &r), JSON_OK, "duplicate model");
	check_model(s, &r, "b");
	ok_int(scan("{\"model\":\"a\",\"model\":1}", &r), JSON_NO_MODEL,
	    "duplicate model, last not a string");
	s = "{\"model\":1,\"model\":\"a\"}";
	ok_int(scan(s, &r), JSON_OK, "duplicate model, last a string");
	check_model(s, &r, "a");

	/* Raw UTF-8 and DEL are fine inside strings. */
	s = "{\"model\":\"caf\xc3\xa9\x7f\"}";
	ok_int(scan(s, &r), JSON_OK, "utf-8 model");
	check_model(s, &r, "caf\xc3\xa9\x7f");
}

static void
test_stream(void)
{
	struct json_request r;

	ok_int(scan("{\"model\":\"m\",\"stream\":true}", &r), JSON_OK, "s1");
	ok_int(r.stream, 1, "stream true");
	ok_int(scan("{\"stream\":false,\"model\":\"m\"}", &r), JSON_OK, "s2");
	ok_int(r.stream, 0, "stream false");
	ok_int(scan("{\"model\":\"m\",\"stream\":\"true\"}", &r), JSON_OK,
	    "s3");
	ok_int(r.stream, 0, "stream \"true\"");
	ok_int(scan("{\"model\":\"m\",\"stream\":1}", &r), JSON_OK, "s4");
	ok_int(r.stream, 0, "stream 1");
	ok_int(scan("{\"model\":\"m\",\"stream\":null}", &r), JSON_OK, "s5");
	ok_int(r.stream, 0, "stream null");
	ok_int(scan("{\"model\":\"m\",\"stream\":true,\"stream\":false}", &r),
	    JSON_OK, "s6");
	ok_int(r.stream, 0, "stream duplicate, last false");
	ok_int(scan("{\"model\":\"m\",\"o\":{\"stream\":true}}", &r), JSON_OK,
	    "s7");
	ok_int(r.stream, 0, "nested stream");
}

static void
test_max_tokens(void)
{
	static const struct {
		const char *body;
		int has;
		uint64_t want;
	} cases[] = {
		{ "{\"model\":\"m\",\"max_tokens\":100}", 1, 100 },
		{ "{\"model\":\"m\",\"max_tokens\":0}", 1, 0 },
		{ "{\"model\":\"m\",\"max_completion_tokens\":64}", 1, 64 },
		{ "{\"max_output_tokens\":4096,\"model\":\"m\"}", 1, 4096 },
		{ "{\"model\":\"m\",\"max_tokens\":-5}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":-0}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":1.5}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":100.0}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":1e3}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":\"100\"}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":null}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":true}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":[1]}", 0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":18446744073709551615}", 1,
		    UINT64_MAX },
		{ "{\"model\":\"m\",\"max_tokens\":18446744073709551616}", 0,
		    0 },
		{ "{\"model\":\"m\",\"max_tokens\":99999999999999999999999}",
		    0, 0 },
		{ "{\"model\":\"m\",\"max_tokens\":10,"
		    "\"max_completion_tokens\":20}", 1, 20 },
		{ "{\"max_output_tokens\":30,\"model\":\"m\","
		    "\"max_tokens\":5}", 1, 30 },
		{ "{\"max_tokens\":30,\"max_tokens\":7,\"model\":\"m\"}", 1,
		    30 },
		{ "{\"model\":\"m\",\"max_tokens\":-1,"
		    "\"max_completion_tokens\":8}", 1, 8 },
		{ "{\"model\":\"m\",\"o\":{\"max_tokens\":8}}", 0, 0 },
	};
	struct json_request r;
	size_t i;
	char name[32];

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		snprintf(name, sizeof name, "max_tokens case %zu", i);
		ok_int(scan(cases[i].body, &r), JSON_OK, name);
		ok(r.has_max_tokens == cases[i].has &&
		    r.max_tokens == cases[i].want,
		    "%s: has %d %" PRIu64 ", want %d %" PRIu64, cases[i].body,
		    r.has_max_tokens, r.max_tokens, cases[i].has,
		    cases[i].want);
	}
}

static void
test_stream_options(void)
{
	static const struct {
		const char *body;
		int has, include;
		const char *value;	/* the recorded range, or NULL */
	} cases[] = {
		{ "{\"model\":\"m\",\"stream_options\":"
		    "{\"include_usage\":true}}", 1, 1,
		    "{\"include_usage\":true}" },
		{ "{\"stream_options\" : { \"include_usage\" : true } ,"
		    "\"model\":\"m\"}", 1, 1,
		    "{ \"include_usage\" : true }" },
		{ "{\"model\":\"m\",\"stream_options\":"
		    "{\"include_usage\":false}}", 1, 0,
		    "{\"include_usage\":false}" },
		{ "{\"model\":\"m\",\"stream_options\":"
		    "{\"include_usage\":\"true\"}}", 1, 0,
		    "{\"include_usage\":\"true\"}" },
		{ "{\"model\":\"m\",\"stream_options\":"
		    "{\"x\":{\"include_usage\":true}}}", 1, 0,
		    "{\"x\":{\"include_usage\":true}}" },
		{ "{\"model\":\"m\",\"stream_options\":"
		    "{\"a\":[1,{\"b\":2}],\"include_usage\":true}}", 1, 1,
		    "{\"a\":[1,{\"b\":2}],\"include_usage\":true}" },
		{ "{\"model\":\"m\",\"stream_options\":"
		    "{\"include_usage\":true,\"include_usage\":false}}", 1, 0,
		    "{\"include_usage\":true,\"include_usage\":false}" },
		{ "{\"model\":\"m\",\"stream_options\":{}}", 1, 0, "{}" },
		{ "{\"model\":\"m\",\"stream_options\":null}", 1, 0, "null" },
		{ "{\"model\":\"m\",\"stream_options\":\"s\"}", 1, 0, "\"s\"" },
		{ "{\"model\":\"m\",\"stream_options\":[true]}", 1, 0,
		    "[true]" },
		{ "{\"model\":\"m\",\"include_usage\":true}", 0, 0, NULL },
		{ "{\"model\":\"m\",\"o\":{\"stream_options\":"
		    "{\"include_usage\":true}}}", 0, 0, NULL },
		{ "{\"stream_options\":{\"include_usage\":true},"
		    "\"stream_options\":{}, \"model\":\"m\"}", 1, 0, "{}" },
	};
	struct json_request r;
	size_t i, wn;
	const char *s;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		s = cases[i].body;
		ok_int(scan(s, &r), JSON_OK, s);
		ok(r.has_stream_options == cases[i].has &&
		    r.include_usage == cases[i].include,
		    "%s: has %d include %d", s, r.has_stream_options,
		    r.include_usage);
		if (cases[i].value != NULL) {
			wn = strlen(cases[i].value);
			ok(r.stream_options_len == wn &&
			    memcmp(s + r.stream_options_off, cases[i].value,
			    wn) == 0, "%s: range %zu+%zu", s,
			    r.stream_options_off, r.stream_options_len);
		}
		check_prefixes(s);
	}
}

static void
test_valid_values(void)
{
	static const char *const cases[] = {
		"{\"model\":\"a\",\"x\":[1,-0,0,0.5e-3,1E+2,-12.34,10e5,"
		    "true,false,null,\"s\",{},[],[[]],{\"k\":{}}]}",
		"{\"model\":\"a\",\"x\":\"\\b\\f\\n\\r\\t\\\"\\\\\\/"
		    "\\u00e9\\uD83D\\uDE00\"}",
		"{\"model\":\"a\",\"\":\"\",\"x\":-0.0E-0}",
		"\t\r\n {\"model\":\"a\"}\t\r\n ",
		"{\"model\":\"a\",\"x\":[ 1 , 2 ,\n3 ]}",
	};
	struct json_request r;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ok_int(scan(cases[i], &r), JSON_OK, cases[i]);
		check_prefixes(cases[i]);
	}
}

static void
test_invalid(void)
{
	static const struct {
		const char *body;
		size_t n;	/* 0: strlen */
		int want;
	} cases[] = {
		{ "", 0, JSON_INVALID },
		{ "   \n", 0, JSON_INVALID },
		{ "{\"model\":\"a\"} x", 0, JSON_INVALID },
		{ "{\"model\":\"a\"}{}", 0, JSON_INVALID },
		{ "{\"model\":\"a\"} {\"model\":\"b\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\"}}", 0, JSON_INVALID },
		{ "{\"model\":\"a\"}]", 0, JSON_INVALID },
		{ "{\"model\":\"a\"]", 0, JSON_INVALID },
		{ "{\"model\":\"a\",}", 0, JSON_INVALID },
		{ "{,\"model\":\"a\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",,\"b\":1}", 0, JSON_INVALID },
		{ "{\"model\" \"a\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\" \"b\":1}", 0, JSON_INVALID },
		{ "{\"model\"::\"a\"}", 0, JSON_INVALID },
		{ "{\"model\",\"a\"}", 0, JSON_INVALID },
		{ "{\"x\":1,\"model\",\"a\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":{\"y\",1}}", 0, JSON_INVALID },
		{ "{\"model\":\"a\":1}", 0, JSON_INVALID },
		{ "{\"model\"}", 0, JSON_INVALID },
		{ "{\"model\":}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"b\"}", 0, JSON_INVALID },
		{ "{1:\"a\"}", 0, JSON_INVALID },
		{ "{null:\"a\"}", 0, JSON_INVALID },
		{ "{{}:\"a\"}", 0, JSON_INVALID },
		{ "{model:\"a\"}", 0, JSON_INVALID },
		{ "{'model':'a'}", 0, JSON_INVALID },
		{ "{\"model\":a}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":[1,]}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":[,1]}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":[1 2]}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":[1:2]}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":[\"k\":2]}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":{\"y\":1,}}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":{\"y\":1]}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":[1}}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":tru}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":nul}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":truex}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":True}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":NaN}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":true\"y\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":01}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":-01}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":00}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1.}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":-}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":--1}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":.5}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":+1}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1e}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1e+}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1.5e}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1.e5}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":0x10}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1-2}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1[}", 0, JSON_INVALID },
		{ "{\"model\":\"a", 0, JSON_INVALID },
		{ "{\"model\":\"a}", 0, JSON_INVALID },
		{ "{\"model\":\"a\\\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\"", 0, JSON_INVALID },
		{ "{\"model\":\"a\",", 0, JSON_INVALID },
		{ "{\"model\":1", 0, JSON_INVALID },
		{ "{\"model\":\"a\x01\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\x1f\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\tb\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\nb\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\",\"k\x02\":1}", 0, JSON_INVALID },
		{ "{\"model\":\"a\\q\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\\x41\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\\'\"}", 0, JSON_INVALID },
		{ "{\"model\":\"\\u12\"}", 0, JSON_INVALID },
		{ "{\"model\":\"\\u12g4\"}", 0, JSON_INVALID },
		{ "{\"model\":\"\\u", 0, JSON_INVALID },
		{ "{\"model\":\"\\", 0, JSON_INVALID },
		{ "{\f\"model\":\"a\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\"}\f", 0, JSON_INVALID },
		{ "\xef\xbb\xbf{\"model\":\"a\"}", 0, JSON_INVALID },
		{ "{\"model\":\"a\"}\0", 14, JSON_INVALID },
		{ "{\"model\":\"a\"} \0 ", 16, JSON_INVALID },
		{ "{\"model\":\"a\0b\"}", 15, JSON_INVALID },
		{ "{\"model\":\"a\",\"x\":1\0}", 20, JSON_INVALID },
		{ "\0{\"model\":\"a\"}", 14, JSON_INVALID },
		{ "}", 0, JSON_INVALID },
		{ "]", 0, JSON_INVALID },
		{ "{", 0, JSON_INVALID },
		{ "[", 0, JSON_INVALID },
		{ ":", 0, JSON_INVALID },
		{ ",", 0, JSON_INVALID },
		{ "01", 0, JSON_INVALID },
		{ "1 2", 0, JSON_INVALID },
		{ "1,", 0, JSON_INVALID },
		{ "[1,]", 0, JSON_INVALID },
		{ "\"abc", 0, JSON_INVALID },
		{ "\"abc\" x", 0, JSON_INVALID },
		{ "[{\"model\":\"a\"}]", 0, JSON_NOT_OBJECT },
		{ "[]", 0, JSON_NOT_OBJECT },
		{ " [ ] ", 0, JSON_NOT_OBJECT },
		{ "\"model\"", 0, JSON_NOT_OBJECT },
		{ "42", 0, JSON_NOT_OBJECT },
		{ "42 ", 0, JSON_NOT_OBJECT },
		{ "-1.5e3", 0, JSON_NOT_OBJECT },
		{ "true", 0, JSON_NOT_OBJECT },
		{ " null\n", 0, JSON_NOT_OBJECT },
	};
	struct json_request r;
	size_t i, n;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		n = cases[i].n ? cases[i].n : strlen(cases[i].body);
		ok(scan_n(cases[i].body, n, &r) == cases[i].want,
		    "invalid case %zu: %.*s: want %d", i, (int)n,
		    cases[i].body, cases[i].want);
	}
}

/* Build head + depth '[' + depth ']' + '}' into s; returns the length. */
static size_t
nest(char *s, size_t depth)
{
	static const char head[] = "{\"model\":\"a\",\"x\":";
	size_t hl = sizeof head - 1, i;

	memcpy(s, head, hl);
	for (i = 0; i < depth; i++) {
		s[hl + i] = '[';
		s[hl + depth + i] = ']';
	}
	s[hl + 2 * depth] = '}';
	return hl + 2 * depth + 1;
}

/* Nesting is capped (jsmn's close walk is quadratic in depth), and
 * nothing deep may slip past the cap or over-read. */
static void
test_deep(void)
{
	size_t big = 4u << 20, n, o, i;
	struct json_request r;
	char *s, *p;

	s = malloc(big + 64);
	if (s == NULL) {
		ok(0, "malloc");
		return;
	}
	/* The top-level object is one level, so 63 arrays fit in 64. */
	n = nest(s, 63);
	ok_int(scan_n(s, n, &r), JSON_OK, "depth 64");
	ok_int(r.object_end, n - 1, "depth 64 object_end");
	check_prefixes((s[n] = '\0', s));
	n = nest(s, 64);
	ok_int(scan_n(s, n, &r), JSON_INVALID, "depth 65");
	n = nest(s, 200000);
	ok_int(scan_n(s, n, &r), JSON_INVALID, "depth 200001");
	ok_int(scan_n(s, n - 1 - 200000, &r), JSON_INVALID, "unclosed deep");
	/* Brackets in strings do not count. */
	p = s + sprintf(s, "{\"model\":\"a\",\"x\":\"");
	memset(p, '[', 1000);
	p += 1000;
	p += sprintf(p, "\\\"\",\"y\":\"");
	memset(p, '{', 1000);
	p += 1000;
	p += sprintf(p, "\"}");
	ok_int(scan_n(s, (size_t)(p - s), &r), JSON_OK, "brackets in strings");
	/* jsmn reads t" as one primitive, so the run after it is real
	 * nesting to jsmn even though a JSON-minded scan sees a string. */
	p = s + sprintf(s, "{\"model\":\"a\",\"x\":[t\" ");
	for (i = 0; i < 200000; i++) {
		*p++ = '[';
	}
	for (i = 0; i < 200000; i++) {
		*p++ = ']';
	}
	p += sprintf(p, "]}");
	ok_int(scan_n(s, (size_t)(p - s), &r), JSON_INVALID,
	    "primitive hiding a quote");
	ok_int(scan("{\"model\":\"a\",\"x\":]}", &r), JSON_INVALID,
	    "close before open");
	/* Worst case under the cap: blocks of 63 opens then 63 closes.
	 * Must finish in well under a second. */
	o = (size_t)sprintf(s, "{\"model\":\"a\",\"x\":[");
	while (o + 200 < big) {
		for (i = 0; i < 62; i++) {
			s[o++] = '[';
		}
		for (i = 0; i < 62; i++) {
			s[o++] = ']';
		}
		s[o++] = ',';
	}
	o += (size_t)sprintf(s + o, "1]}");
	ok_int(json_scan_request(s, o, &r), JSON_OK, "4 MB at depth 64");
	free(s);
}

static void
test_escape(void)
{
	char out[1024], back[1024], body[1200];
	unsigned char all[256];
	struct json_request r;
	struct view v;
	long len, blen;
	size_t i;
	const char *in = "a\"b\\c\n\r\t\b\f\x01\x1f\x7f/\xc3\xa9 z";
	const char *want = "a\\\"b\\\\c\\n\\r\\t\\b\\f\\u0001\\u001f"
	    "\\u007f/\xc3\xa9 z";

	len = json_escape(in, strlen(in), out, sizeof out);
	ok_int(len, strlen(want), "escape length");
	ok_str(out, want, "escape");
	ok_int(json_escape(in, strlen(in), out, strlen(want)), -1,
	    "escape, no room for NUL");
	ok_int(json_escape(in, strlen(in), out, strlen(want) + 1),
	    strlen(want), "escape, exact room");
	ok_int(json_escape("\n", 1, out, 2), -1, "escape pair cut");
	ok_int(json_escape("\x01", 1, out, 6), -1, "escape \\u cut");
	ok_int(json_escape("", 0, out, 1), 0, "escape empty");
	ok_int(json_escape("", 0, out, 0), -1, "escape cap 0");

	v.p = "caf\\u00e9"; v.n = strlen(v.p);
	len = json_unescape(v, out, sizeof out);
	ok_str(len == 5 ? out : NULL, "caf\xc3\xa9", "\\u00e9");
	v.p = "\\ud83d\\ude00!"; v.n = strlen(v.p);
	len = json_unescape(v, out, sizeof out);
	ok_str(len == 5 ? out : NULL, "\xf0\x9f\x98\x80!", "surrogate pair");
	v.p = "\\uD83D\\uDE00"; v.n = strlen(v.p);
	len = json_unescape(v, out, sizeof out);
	ok_str(len == 4 ? out : NULL, "\xf0\x9f\x98\x80", "upper-case hex");
	v.p = "\\u20ac\\u0041\\u07ff"; v.n = strlen(v.p);
	len = json_unescape(v, out, sizeof out);
	ok_str(len == 6 ? out : NULL, "\xe2\x82\xac" "A\xdf\xbf",
	    "2- and 3-byte forms");
	v.p = "\\\"\\\\\\/\\b\\f\\n\\r\\t"; v.n = strlen(v.p);
	len = json_unescape(v, out, sizeof out);
	ok_str(len == 8 ? out : NULL, "\"\\/\b\f\n\r\t", "short escapes");
	v.p = "a\\u0000b"; v.n = strlen(v.p);
	len = json_unescape(v, out, sizeof out);
	ok(len == 3 && memcmp(out, "a\0b", 4) == 0, "\\u0000 kept, len %ld",
	    len);

	{
		static const char *const bad[] = {
			"\\", "a\\", "\\x", "\\u", "\\u12", "\\u12g4",
			"\\ud83d", "\\ud83dx", "\\ud83d\\u0041", "\\ud83d\\n",
			"\\ude00", "\\ud83d\\ud83d", "\\U00e9",
		};

		for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
			v.p = bad[i];
			v.n = strlen(bad[i]);
			ok(json_unescape(v, out, sizeof out) == -1,
			    "bad escape %s accepted", bad[i]);
			v.p = guarded(bad[i], v.n);
			ok(json_unescape(v, out, sizeof out) == -1,
			    "guarded bad escape %s accepted", bad[i]);
		}
	}

	v.p = "caf\\u00e9"; v.n = strlen(v.p);
	ok_int(json_unescape(v, out, 5), -1, "unescape, no room for NUL");
	ok_int(json_unescape(v, out, 6), 5, "unescape, exact room");
	ok_int(json_unescape(v, out, 4), -1, "unescape, \\u cut");
	v.p = ""; v.n = 0;
	ok_int(json_unescape(v, out, 1), 0, "unescape empty");
	ok_int(json_unescape(v, out, 0), -1, "unescape cap 0");

	/* Every byte value survives escape then unescape, and the escaped
	 * form is a string json_scan_request accepts. */
	for (i = 0; i < 256; i++) {
		all[i] = (unsigned char)i;
	}
	len = json_escape((const char *)all, sizeof all, out, sizeof out);
	ok(len > 0, "escape all bytes");
	v.p = guarded(out, (size_t)len);
	v.n = (size_t)len;
	blen = json_unescape(v, back, sizeof back);
	ok(blen == 256 && memcmp(back, all, 256) == 0,
	    "all bytes round trip (%ld)", blen);
	snprintf(body, sizeof body, "{\"model\":\"%s\"}", out);
	ok_int(scan(body, &r), JSON_OK, "escaped bytes as a model");
	blen = json_unescape(r.model, back, sizeof back);
	ok(blen == 256 && memcmp(back, all, 256) == 0,
	    "model round trip (%ld)", blen);

	{
		static const char *const texts[] = {
			"plain", "", "caf\xc3\xa9", "\xf0\x9f\x98\x80",
			"quote \" back \\ slash / end", "\x7f\x1b[0m",
		};

		for (i = 0; i < sizeof texts / sizeof texts[0]; i++) {
			len = json_escape(texts[i], strlen(texts[i]), out,
			    sizeof out);
			v.p = out;
			v.n = len < 0 ? 0 : (size_t)len;
			blen = json_unescape(v, back, sizeof back);
			ok_str(len >= 0 && blen >= 0 ? back : NULL, texts[i],
			    "round trip");
		}
	}
}

/* Differential runs: inputs that differ from the reference, counted per
 * group, the first few printed. */
static size_t diff_bad;

static void
diff_n(const char *s, size_t n)
{
	const char *d = ref_diff(guarded(s, n), n);
	size_t i;

	if (d == NULL) {
		return;
	}
	if (diff_bad++ < 5) {
		printf("# %s differs from the reference for \"", d);
		for (i = 0; i < n; i++) {
			if ((unsigned char)s[i] < 0x20 || s[i] == '\\' ||
			    (unsigned char)s[i] >= 0x7f) {
				printf("\\x%02x", (unsigned char)s[i]);
			} else {
				putchar(s[i]);
			}
		}
		printf("\"\n");
	}
}

static void
diff_str(const char *s)
{
	diff_n(s, strlen(s));
}

/* s with the byte at p replaced (with p == n: nothing replaced) and, when
 * ins, c inserted before p instead, or with the byte at p deleted (c < 0). */
static void
diff_edit(const char *s, size_t n, size_t p, int c, int ins, char *buf)
{
	memcpy(buf, s, p);
	if (c < 0) {
		memcpy(buf + p, s + p + 1, n - p - 1);
		diff_n(buf, n - 1);
	} else if (ins) {
		buf[p] = (char)c;
		memcpy(buf + p + 1, s + p, n - p);
		diff_n(buf, n + 1);
	} else {
		buf[p] = (char)c;
		memcpy(buf + p + 1, s + p + 1, n - p - 1);
		diff_n(buf, n);
	}
}

/* Every truncation, and at every position from from on a deletion and
 * each of the bytes below put in place of the byte there and in front of
 * it. */
static void
diff_mutations(const char *s, size_t from)
{
	static const char subst[] = "{}[]\":,\\0-.eEt u\t\x1f\x7f\x80";
	size_t n = strlen(s), p, k, before = diff_bad;
	char *buf = malloc(n + 2);

	if (buf == NULL) {
		ok(0, "malloc");
		return;
	}
	for (p = 0; p <= n; p++) {
		diff_n(s, p);
	}
	for (p = from; p < n; p++) {
		diff_edit(s, n, p, -1, 0, buf);
		for (k = 0; k < sizeof subst; k++) {
			/* sizeof subst: the NUL byte too. */
			diff_edit(s, n, p, (unsigned char)subst[k], 0, buf);
			diff_edit(s, n, p, (unsigned char)subst[k], 1, buf);
		}
	}
	ok(diff_bad == before, "%zu mutations of %.60s... differ from the "
	    "reference", diff_bad - before, s);
	free(buf);
}

/* Nesting of depth levels (the top-level container counts) made of
 * open/close pairs: "[" "]" or "{\"a\":" "}", under a request object
 * when obj. */
static void
diff_deep(size_t depth, const char *open, const char *close, int obj)
{
	size_t lo = strlen(open), lc = strlen(close), i, o = 0;
	char *s = malloc(depth * (lo + lc) + 64);

	if (s == NULL) {
		ok(0, "malloc");
		return;
	}
	if (obj) {
		o = (size_t)sprintf(s, "{\"model\":\"m\",\"x\":");
		depth--;
	}
	for (i = 0; i < depth; i++, o += lo) {
		memcpy(s + o, open, lo);
	}
	o += (size_t)sprintf(s + o, "1");
	if (open[0] == '{') {
		o -= 1;		/* {"a":{"a":1} needs its innermost value */
		o += (size_t)sprintf(s + o, "1");
	}
	for (i = 0; i < depth; i++, o += lc) {
		memcpy(s + o, close, lc);
	}
	if (obj) {
		s[o++] = '}';
	}
	diff_n(s, o);
	diff_n(s, o - 1);
	free(s);
}

static void
test_differential(void)
{
	static const char *const bodies[] = {
		"{\"model\":\"bench-model\",\"messages\":[{\"role\":\"system\","
		    "\"content\":\"You are a concise assistant.\"},{\"role\":"
		    "\"user\",\"content\":\"In two sentences, explain why an "
		    "API relay keeps upstream connections alive between "
		    "requests, and what it costs in memory.\"}],"
		    "\"max_tokens\":64,\"temperature\":0.2,\"stream\":false}",
		" {\"stream_options\" : {\"include_usage\":true,\"x\":[{}]},"
		    "\"mod\\u0065l\":\"a\\\"b\",\"stream\":true,"
		    "\"max_completion_tokens\":7,\"n\":[-0.5e+3,null]}\n",
		"{\"id\":\"t\\ud83d\\ude00\",\"status\":\"ok\",\"amount\":"
		    "\"1.00\",\"\":0,\"max_output_tokens\":1e5,\"model\":[1]}",
		"[\"model\",{\"model\":\"a\"},-1.5E-3,true,false,null]",
	};
	static const char *const cases[] = {
		/* numbers, as values and as max_tokens */
		"-0", "1e5", "01", "1.", ".5", "-", "1e", "1e+", "-01", "0.0",
		"1E-0", "+1", "0x1", "1.5e3", "00", "-0.0", "2e-0", "1 2",
		"{\"model\":\"m\",\"x\":-0}", "{\"model\":\"m\",\"x\":01}",
		"{\"model\":\"m\",\"x\":1.}", "{\"model\":\"m\",\"x\":.5}",
		"{\"model\":\"m\",\"x\":1e5}", "{\"model\":\"m\",\"x\":-}",
		"{\"model\":\"m\",\"max_tokens\":-0}",
		"{\"model\":\"m\",\"max_tokens\":1e5}",
		"{\"model\":\"m\",\"max_tokens\":01}",
		"{\"model\":\"m\",\"max_tokens\":0}",
		"{\"model\":\"m\",\"max_tokens\":1.0}",
		"{\"model\":\"m\",\"max_tokens\":-1}",
		"{\"model\":\"m\",\"max_tokens\":\"5\"}",
		"{\"model\":\"m\",\"max_tokens\":18446744073709551615}",
		"{\"model\":\"m\",\"max_tokens\":18446744073709551616}",
		"{\"model\":\"m\",\"max_tokens\":184467440737095516150}",
		"{\"model\":\"m\",\"max_tokens\":99999999999999999999}",
		"{\"max_tokens\":9,\"max_output_tokens\":3,"
		    "\"max_completion_tokens\":12,\"max_tokens\":1,\"model\":1}",
		"{\"max_tokens\":9,\"max_tokens\":1.5,\"max_tokens\":[10]}",
		/* duplicate keys */
		"{\"model\":\"a\",\"model\":\"b\"}",
		"{\"model\":\"a\",\"model\":null}",
		"{\"model\":{\"model\":\"a\"},\"model\":[\"b\"]}",
		"{\"model\":\"a\",\"model\":true,\"model\":\"\"}",
		"{\"stream\":true,\"stream\":1}", "{\"stream\":false,"
		    "\"stream\":true}",
		"{\"stream_options\":{\"include_usage\":true},"
		    "\"stream_options\":[{\"include_usage\":true}]}",
		"{\"stream_options\":{\"include_usage\":false,"
		    "\"include_usage\":true},\"model\":\"m\"}",
		"{\"stream_options\":{\"include_usage\":true,"
		    "\"include_usage\":null}}",
		"{\"stream_options\":{\"include_usage\":false},\"x\":[true],"
		    "\"y\":{\"include_usage\":true}}",
		"[{\"stream_options\":{\"include_usage\":true}}]",
		"{\"stream_options\":{\"a\":{\"include_usage\":true}}}",
		"{\"stream_options\":{\"include_usage\":{\"a\":1}}}",
		"{\"stream_options\":{\"include_usage\":\"true\"}}",
		"{\"id\":\"a\",\"id\":2}", "{\"id\":1,\"id\":\"b\"}",
		/* escapes in keys */
		"{\"mod\\u0065l\":\"m\"}", "{\"\\u006dodel\":\"m\"}",
		"{\"model\\u0000\":\"m\"}", "{\"mod\\ud800el\":\"m\"}",
		"{\"mod\\ud83d\\ude00el\":\"m\"}", "{\"m\\od\":\"m\"}",
		"{\"stre\\u0061m\":true,\"model\":\"m\"}",
		"{\"max_\\u0074okens\":5,\"model\":\"m\"}",
		"{\"stream\\u005foptions\":{\"include\\u005fusage\":true}}",
		"{\"\\u0069d\":\"x\",\"st\\u0061tus\":\"y\",\"\\/\":\"z\"}",
		"{\"a_key_longer_than_the_32_byte_buffer\":\"v\"}",
		"{\"a_key_longer_than_the_32_byte_buffe\\u0072\":\"v\"}",
		"{\"\":\"e\",\"\\u0000\":\"n\"}",
		"{\"mod\\u0065l\":\"a\",\"model\":\"b\",\"mod\\u0065l\":3}",
		/* strings */
		"{\"model\":\"\\u00e9\\uD83D\\uDE00\\ud800\"}",
		"{\"model\":\"\\u00g0\"}", "{\"model\":\"\\U0041\"}",
		"{\"model\":\"a\\\\\"}", "{\"model\":\"a\\\\\\\"\"}",
		"{\"model\":\"\x7f\xff\xc3\"}", "\"\\u0000\"", "\"\\\"",
		/* blanks, garbage, BOM */
		"{\"model\":\"m\"}  \t\r\n", "{\"model\":\"m\"} x",
		"{\"model\":\"m\"}\v", "\v{\"model\":\"m\"}",
		"\xef\xbb\xbf{\"model\":\"m\"}", "{\"model\":\"m\"}\xef\xbb\xbf",
		"{\"model\":\"m\"},", "{\"model\":\"m\"}[]", " 1 ", "\"s\" ",
		"[] ", "{} {}", "true false", "nul", "truex", "[true,fals]",
		"{\"model\":\"m\",\"x\":[tru\"e\" [[[]]]]}",
	};
	static const struct {
		const char *s;
		size_t n;
	} nuls[] = {
		{ "\0", 1 }, { "{\"model\":\"m\"}\0", 14 },
		{ "{\"model\":\"m\0\"}", 14 }, { "{\"model\0\":\"m\"}", 14 },
		{ "{\0\"model\":\"m\"}", 14 }, { "{\"model\":1\0}", 12 },
		{ "{\"model\":\"m\"} \0", 15 }, { "[1,\0]", 5 },
		{ "{\"model\":\"\\u0000\"}\0", 19 }, { "\"\0\"", 3 },
	};
	size_t i, before;

	char many[1024];
	size_t o;

	for (i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		diff_mutations(bodies[i], 0);
	}
	/* More tokens than the reference's stack array (256): its counting
	 * pass and malloc'd array. Mutated near the end only. */
	o = (size_t)sprintf(many, "{\"model\":\"m\",\"x\":[");
	for (i = 0; i < 300; i++) {
		o += (size_t)sprintf(many + o, "%s1", i ? "," : "");
	}
	sprintf(many + o, "],\"max_tokens\":5,\"stream_options\":"
	    "{\"include_usage\":true},\"model\":\"n\"}");
	diff_mutations(many, strlen(many) - 60);
	before = diff_bad;
	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		diff_str(cases[i]);
	}
	for (i = 0; i < sizeof nuls / sizeof nuls[0]; i++) {
		diff_n(nuls[i].s, nuls[i].n);
	}
	/* Deep nesting: at the limit (64, the top level included) and one
	 * past, with arrays, objects and both, at the top or in a request;
	 * each also with its last byte cut. */
	for (i = 62; i <= 66; i++) {
		diff_deep(i, "[", "]", 0);
		diff_deep(i, "[", "]", 1);
		diff_deep(i, "{\"a\":", "}", 0);
		diff_deep(i, "{\"a\":", "}", 1);
		diff_deep(i, "[{\"a\":", "}]", 1);
		diff_deep(i, "{\"stream_options\":", "}", 0);
	}
	ok(diff_bad == before, "%zu tricky cases differ from the reference",
	    diff_bad - before);
}

/* json_number_end(), which the ledger's record parser uses. */
static void
test_number_end(void)
{
	static const struct {
		const char *in;
		size_t end;
	} cases[] = {
		{ "0", 1 }, { "-0", 2 }, { "123,", 3 }, { "01", 1 },
		{ "1.5}", 3 }, { "-1.25e+10 ", 9 }, { "2E3", 3 }, { "1e-0", 4 },
		{ "-", 0 }, { "+1", 0 }, { "1.", 0 }, { "1.e3", 0 },
		{ "1e", 0 }, { "1e+", 0 }, { ".5", 0 }, { "-x", 0 },
	};
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		ok_int(json_number_end(cases[i].in, strlen(cases[i].in), 0),
		    cases[i].end, cases[i].in);
	}
	ok_int(json_number_end("[12]", 4, 1), 3, "from an offset");
	ok_int(json_number_end("12", 1, 0), 1, "stops at n");
}

/* I-JSON (RFC 7493): a top-level name given twice is reported, compared
 * by meaning; "n" is read for the hold. */
static void
test_duplicates_and_n(void)
{
	static const char *const twins[] = {
		"{\"model\":\"expensive\",\"model\":\"cheap\"}",
		"{\"model\":\"a\",\"mod\\u0065l\":\"b\"}",
		"{\"model\":\"a\",\"max_tokens\":1,\"max_tokens\":9}",
		"{\"model\":\"a\",\"stream\":true,\"stream\":false}",
		"{\"model\":\"a\",\"n\":1,\"n\":5}",
		"{\"model\":\"a\",\"user\":\"x\",\"us\\u0065r\":\"y\"}",
		"{\"model\":\"a\",\"messages\":[],\"messages\":[]}",
		"{\"model\":\"a\",\"stream_options\":{},\"stream_options\":{}}",
	};
	static const char *const fine[] = {
		"{\"model\":\"a\",\"max_tokens\":1,\"max_output_tokens\":2,"
		    "\"max_completion_tokens\":3}",
		"{\"model\":\"a\",\"messages\":[{\"role\":\"user\",\"role\":"
		    "\"x\"}]}",
		"{\"model\":\"a\",\"stream_options\":{\"include_usage\":true,"
		    "\"include_usage\":false}}",
		"{\"model\":\"a\",\"ab\":1,\"ba\":2,\"a\":3,\"b\":4}",
	};
	struct json_request r;
	size_t i;

	for (i = 0; i < sizeof(twins) / sizeof(twins[0]); i++) {
		ok(json_scan_request(twins[i], strlen(twins[i]), &r) == JSON_OK &&
		    r.duplicate == 1, "twin names: %s", twins[i]);
	}
	for (i = 0; i < sizeof(fine) / sizeof(fine[0]); i++) {
		ok(json_scan_request(fine[i], strlen(fine[i]), &r) == JSON_OK &&
		    r.duplicate == 0, "no twins at the top: %s", fine[i]);
	}
	ok(json_scan_request("{\"model\":\"a\",\"n\":3}", 19, &r) ==
	    JSON_OK && r.n == 3, "n read");
	ok(json_scan_request("{\"model\":\"a\"}", 13, &r) == JSON_OK &&
	    r.n == 1, "no n: 1");
	ok(json_scan_request("{\"model\":\"a\",\"n\":0}", 19, &r) ==
	    JSON_OK && r.n == 1, "n 0: 1");
	ok(json_scan_request("{\"model\":\"a\",\"n\":\"4\"}", 21, &r) ==
	    JSON_OK && r.n == 1, "n not a number: 1");
}

/* What object affinity reads from a request (SPEC §9): store, background
 * and previous_response_id, by meaning. */
static void
test_object_fields(void)
{
	static const char a[] = "{\"model\":\"m\",\"st\\u006fre\": false, "
	    "\"background\" :true,\"previous_response_id\":\"resp_9\"}";
	static const char b[] = "{\"model\":\"m\",\"store\":true,"
	    "\"meta\":{\"background\":true,\"store\":false}}";
	static const char c[] = "{\"model\":\"m\",\"store\":\"yes\","
	    "\"previous_response_id\":7}";
	struct json_request r;

	ok(json_scan_request(a, strlen(a), &r) == JSON_OK && r.store == 0 &&
	    r.background == 1 && r.previous.n == 6 &&
	    memcmp(r.previous.p, "resp_9", 6) == 0,
	    "store (escaped name) false, background, previous_response_id");
	ok(json_scan_request(b, strlen(b), &r) == JSON_OK && r.store == 1 &&
	    r.background == 0 && r.previous.p == NULL,
	    "only top-level members count");
	ok(json_scan_request(c, strlen(c), &r) == JSON_OK && r.store == -1 &&
	    r.previous.p == NULL, "a store that is not a boolean, an id "
	    "that is not a string: not read");
	ok(json_scan_request("{\"model\":\"m\"}", 13, &r) == JSON_OK &&
	    r.store == -1 && r.background == 0, "absent: store -1");
	ok(json_scan_request("{\"store\":true,\"store\":false}", 28, &r) ==
	    JSON_NO_MODEL && r.duplicate == 1 && r.store == 0,
	    "store twice: a twin, the last wins");
}

int
main(void)
{
	guard_init();
	test_model();
	test_stream();
	test_max_tokens();
	test_stream_options();
	test_valid_values();
	test_invalid();
	test_deep();
	test_escape();
	test_differential();
	test_number_end();
	test_duplicates_and_n();
	test_object_fields();
	return t_done("json");
}
