/* Unit tests for resp: the RESP2 reply parser and the command encoder.
 *
 * Every input is fed as a client reads it: whole, split in two at every
 * byte position, and one byte at a time, each time going on through the
 * pipelined replies that follow. The three must give the same replies
 * (tree and bytes taken), then the same end: the bytes left over, or the
 * same error. Each piece handed to the parser ends right before a
 * PROT_NONE page, so a read past the end crashes, and it is moved there
 * anew before each call (the parser must not keep pointers between
 * calls). Results are compared as text, which prints both sides. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "t.h"
#include "resp_t.h"

#define AREA_MIN (256 * 1024)
#define NODES 256
#define SUM 8192

#include "guard_t.h"

/* Limits of one run. */
struct lim {
	size_t nodes;		/* the caller's node array */
	size_t max_reply;
};

static const struct lim dflt = { NODES, 64 * 1024 };

/* Feed in[0..len) as pieces: the bytes at hand grow to cuts[0], cuts[1],
 * ... then len. After each piece, parse replies until one is PARTIAL.
 * The text: each reply as "N:tree " (N bytes taken), then "BAD(reason)"
 * or "left=K" (bytes of an incomplete reply at the end). */
static void
feed(const char *in, size_t len, const size_t *cuts, size_t ncuts,
    struct lim lm, char *sum, size_t cap)
{
	static struct resp_node nodes[4096];
	static char wire[AREA_MIN];
	struct rt_out w = { wire, sizeof(wire), 0, 0 };
	struct resp_parser ps;
	struct rt_out o = { sum, cap - 1, 0, 0 };
	size_t have = 0, used = 0, c;
	char b[64];

	resp_parser_init(&ps, nodes, lm.nodes, lm.max_reply);
	for (c = 0; c <= ncuts; c++) {
		have = c < ncuts ? cuts[c] : len;
		for (;;) {
			const char *p = at_guard(in + used, have - used);
			ssize_t r = resp_parse(&ps, p, have - used);

			if (r == RESP_PARTIAL) {
				break;
			}
			if (r == RESP_BAD) {
				rt_puts(&o, "BAD(");
				rt_puts(&o, resp_strerror(
				    resp_parser_error(&ps)));
				rt_puts(&o, ")");
				/* Sticky. */
				if (resp_parse(&ps, p, have - used) !=
				    RESP_BAD) {
					rt_puts(&o, " not sticky");
				}
				sum[o.len] = '\0';
				return;
			}
			if (r <= 0 || (size_t)r > have - used ||
			    nodes[0].next == 0) {
				rt_puts(&o, "RESULT?");
				break;
			}
			/* Accepted replies are canonical: written back,
			 * they are the bytes taken. */
			w.len = 0;
			w.cut = 0;
			rt_wire(&w, nodes, 0);
			if (w.cut || w.len != (size_t)r ||
			    memcmp(wire, in + used, w.len) != 0) {
				rt_puts(&o, "NOT CANONICAL ");
			}
			snprintf(b, sizeof(b), "%zd:", r);
			rt_puts(&o, b);
			rt_text(&o, nodes, 0);
			rt_puts(&o, " ");
			used += (size_t)r;
		}
	}
	snprintf(b, sizeof(b), "left=%zu", len - used);
	rt_puts(&o, b);
	if (o.cut) {
		rt_puts(&o, "...");
	}
	sum[o.len] = '\0';
}

/* Whole, every split in two, one byte at a time: all equal; returns the
 * whole text in want_out when asked. */
static void
check_lim(const char *name, const char *in, size_t len, const char *want,
    struct lim lm)
{
	static char whole[SUM], other[SUM];
	static size_t cuts[AREA_MIN];
	size_t k;
	int bad = 0;

	feed(in, len, NULL, 0, lm, whole, sizeof(whole));
	ok_str(whole, want, name);
	for (k = 0; k <= len && !bad; k++) {
		feed(in, len, &k, 1, lm, other, sizeof(other));
		if (strcmp(other, whole) != 0) {
			ok(0, "%s split at %zu: got \"%s\", whole \"%s\"",
			    name, k, other, whole);
			bad = 1;
		}
	}
	for (k = 0; k < len; k++) {
		cuts[k] = k + 1;
	}
	feed(in, len, cuts, len, lm, other, sizeof(other));
	ok(strcmp(other, whole) == 0, "%s byte by byte: got \"%s\", "
	    "whole \"%s\"", name, other, whole);
}

static void
check(const char *name, const char *in, const char *want)
{
	check_lim(name, in, strlen(in), want, dflt);
}

static void
check_n(const char *name, const char *in, size_t len, const char *want)
{
	check_lim(name, in, len, want, dflt);
}

/* ---- replies ---------------------------------------------------------- */

static void
test_types(void)
{
	check("simple", "+OK\r\n", "5:+OK left=0");
	check("simple empty", "+\r\n", "3:+ left=0");
	check("error", "-ERR unknown command 'FOO'\r\n",
	    "28:-ERR unknown command 'FOO' left=0");
	check("noscript", "-NOSCRIPT No matching script.\r\n",
	    "31:-NOSCRIPT No matching script. left=0");
	check("int 0", ":0\r\n", "4::0 left=0");
	check("int -1", ":-1\r\n", "5::-1 left=0");
	check("int max", ":9223372036854775807\r\n",
	    "22::9223372036854775807 left=0");
	check("int min", ":-9223372036854775808\r\n",
	    "23::-9223372036854775808 left=0");
	check("bulk", "$5\r\nhello\r\n", "11:$5\"hello\" left=0");
	check("bulk empty", "$0\r\n\r\n", "6:$0\"\" left=0");
	check("bulk null", "$-1\r\n", "5:$-1 left=0");
	check_n("bulk binary", "$6\r\na\r\n\0\n\r\r\n", 12,
	    "12:$6\"a\\x0d\\x0a\\x00\\x0a\\x0d\" left=0");
	check("bulk crlf inside", "$4\r\n\r\n\r\n\r\n",
	    "10:$4\"\\x0d\\x0a\\x0d\\x0a\" left=0");
	check("array empty", "*0\r\n", "4:*0[] left=0");
	check("array null", "*-1\r\n", "5:*-1 left=0");
	check("array", "*3\r\n:1\r\n$-1\r\n+x\r\n",
	    "17:*3[:1,$-1,+x] left=0");
	check("array nested",
	    "*3\r\n*2\r\n:1\r\n:2\r\n*1\r\n*0\r\n*-1\r\n",
	    "29:*3[*2[:1,:2],*1[*0[]],*-1] left=0");
	check("array of errors", "*2\r\n-ERR a\r\n-WRONGTYPE b\r\n",
	    "26:*2[-ERR a,-WRONGTYPE b] left=0");
	/* What the store's HOLD script answers. */
	check("hold reply",
	    "*5\r\n$7\r\nrefused\r\n$3\r\nrpm\r\n:12\r\n"
	    "$11\r\n-2500000000\r\n$1\r\n0\r\n",
	    "56:*5[$7\"refused\",$3\"rpm\",:12,$11\"-2500000000\",$1\"0\"]"
	    " left=0");
}

static void
test_pipelined(void)
{
	check("pipelined",
	    "+OK\r\n:1\r\n$3\r\nabc\r\n*1\r\n+a\r\n$-1\r\n-ERR x\r\n",
	    "5:+OK 4::1 9:$3\"abc\" 8:*1[+a] 5:$-1 8:-ERR x left=0");
	check("pipelined, last incomplete", "+OK\r\n:1\r\n$3\r\nab",
	    "5:+OK 4::1 left=6");
	check("pipelined, then bad", "+OK\r\n?x\r\n",
	    "5:+OK BAD(bad type byte)");
	check("incomplete array", "*2\r\n:1\r\n", "left=8");
	check("incomplete line", "+OK\r", "left=4");
	check("nothing", "", "left=0");
}

static void
test_malformed(void)
{
	check("type", "?x\r\n", "BAD(bad type byte)");
	check("type space", " +OK\r\n", "BAD(bad type byte)");
	check("type inline", "PING\r\n", "BAD(bad type byte)");
	check("resp3 null", "_\r\n",
	    "BAD(RESP3 type byte (only RESP2 is spoken))");
	check("resp3 map", "%1\r\n+a\r\n+b\r\n",
	    "BAD(RESP3 type byte (only RESP2 is spoken))");
	check("resp3 in array", "*2\r\n:1\r\n#t\r\n",
	    "BAD(RESP3 type byte (only RESP2 is spoken))");
	check("bare LF", "+OK\n", "BAD(line or bulk string not ended by CRLF)");
	check("bare CR", "+O\rK\r\n",
	    "BAD(line or bulk string not ended by CRLF)");
	check("LF in error", "-ERR a\nb\r\n",
	    "BAD(line or bulk string not ended by CRLF)");
	check("bulk too long", "$3\r\nabcd\r\n",
	    "BAD(line or bulk string not ended by CRLF)");
	check("bulk short CR", "$3\r\nabc\rX",
	    "BAD(line or bulk string not ended by CRLF)");
	check("bulk length LF", "$3\nabc\r\n",
	    "BAD(line or bulk string not ended by CRLF)");
	check("int letters", ":12a\r\n", "BAD(bad integer)");
	check("int empty", ":\r\n", "BAD(bad integer)");
	check("int minus", ":-\r\n", "BAD(bad integer)");
	check("int -0", ":-0\r\n", "BAD(bad integer)");
	check("int 01", ":01\r\n", "BAD(bad integer)");
	check("int +1", ":+1\r\n", "BAD(bad integer)");
	check("int space", ": 1\r\n", "BAD(bad integer)");
	check("int overflow", ":9223372036854775808\r\n",
	    "BAD(integer or length overflows 64 bits)");
	check("int underflow", ":-9223372036854775809\r\n",
	    "BAD(integer or length overflows 64 bits)");
	check("int long", ":123456789012345678901234567890\r\n",
	    "BAD(integer or length overflows 64 bits)");
	check("int long, letter late", ":12345678901234567890123456789x\r\n",
	    "BAD(bad integer)");
	check("bulk -2", "$-2\r\n", "BAD(bad bulk or array length)");
	check("bulk -0", "$-0\r\n", "BAD(bad bulk or array length)");
	check("bulk 01", "$01\r\na\r\n", "BAD(bad bulk or array length)");
	check("bulk empty length", "$\r\n", "BAD(bad bulk or array length)");
	check("bulk letters", "$x\r\n", "BAD(bad bulk or array length)");
	check("bulk overflow", "$99999999999999999999\r\n",
	    "BAD(integer or length overflows 64 bits)");
	check("array -2", "*-2\r\n", "BAD(bad bulk or array length)");
	check("array letters", "*1x\r\n", "BAD(bad bulk or array length)");
	check("bad in nested", "*2\r\n*1\r\n:1\r\n$2\r\nabc\r\n",
	    "BAD(line or bulk string not ended by CRLF)");
}

/* n arrays of one element around ":1". */
static size_t
nest(char *out, size_t n)
{
	size_t k, len = 0;

	for (k = 0; k < n; k++) {
		memcpy(out + len, "*1\r\n", 4);
		len += 4;
	}
	memcpy(out + len, ":1\r\n", 4);
	return len + 4;
}

/* The text of n arrays of one element around leaf, taking len bytes. */
static void
nest_want(char *want, size_t cap, size_t len, size_t n, const char *leaf)
{
	struct rt_out o = { want, cap - 1, 0, 0 };
	char b[32];
	size_t k;

	snprintf(b, sizeof(b), "%zu:", len);
	rt_puts(&o, b);
	for (k = 0; k < n; k++) {
		rt_puts(&o, "*1[");
	}
	rt_puts(&o, leaf);
	for (k = 0; k < n; k++) {
		rt_puts(&o, "]");
	}
	rt_puts(&o, " left=0");
	want[o.len] = '\0';
}

static void
test_limits(void)
{
	static char in[4096], want[SUM];
	struct lim lm;
	size_t len;

	/* Depth: 64 nested arrays are fine, 65 are not; an empty array
	 * opens nothing. */
	len = nest(in, RESP_MAX_DEPTH);
	nest_want(want, sizeof(want), len, RESP_MAX_DEPTH, ":1");
	check_lim("depth 64", in, len, want, dflt);
	len = nest(in, RESP_MAX_DEPTH + 1);
	check_lim("depth 65", in, len, "BAD(arrays nested too deep)", dflt);
	len = nest(in, RESP_MAX_DEPTH) - 4;
	memcpy(in + len, "*0\r\n", 4);
	nest_want(want, sizeof(want), len + 4, RESP_MAX_DEPTH, "*0[]");
	check_lim("depth 64 + empty", in, len + 4, want, dflt);

	/* Nodes: the root and three elements need four. */
	lm = dflt;
	lm.nodes = 4;
	check_lim("nodes: 4 of 4", "*3\r\n:1\r\n:2\r\n:3\r\n", 16,
	    "16:*3[:1,:2,:3] left=0", lm);
	lm.nodes = 3;
	/* Refused on the array's head, before its elements come. */
	check_lim("nodes: 4 of 3", "*3\r\n", 4, "BAD(too many elements)", lm);
	check_lim("nodes: nested", "*2\r\n*1\r\n:1\r\n:2\r\n", 16,
	    "BAD(too many elements)", lm);
	check_lim("nodes: huge count", "*4000000000\r\n", 13,
	    "BAD(too many elements)", dflt);
	lm.nodes = 1;
	check_lim("nodes: one", "+OK\r\n:2\r\n", 9, "5:+OK 4::2 left=0", lm);

	/* Size: a reply of max_reply bytes is fine, one more is not, and
	 * a length that cannot fit is refused at once. */
	lm = dflt;
	lm.max_reply = 11;
	check_lim("size: 11 of 11", "$5\r\nhello\r\n+OK\r\n", 16,
	    "11:$5\"hello\" 5:+OK left=0", lm);
	check_lim("size: 12 of 11", "$6\r\nhello!\r\n", 12,
	    "BAD(reply too large)", lm);
	check_lim("size: bulk head", "$1000\r\n", 7, "BAD(reply too large)",
	    lm);
	check_lim("size: endless line", "+aaaaaaaaaaaaaaaaaaaa", 21,
	    "BAD(reply too large)", lm);
	check_lim("size: line", "+aaaaaaaaaa\r\n", 13,
	    "BAD(reply too large)", lm);
	check_lim("size: array", "*3\r\n:1\r\n:2\r\n:3\r\n", 16,
	    "BAD(reply too large)", lm);
	check_lim("size: endless LF line", "-aaaaaaaaaaaaaaaaaaa\n", 21,
	    "BAD(reply too large)", lm);
	lm.max_reply = 0;
	check_lim("size: 0", "+\r\n", 3, "BAD(reply too large)", lm);
}

/* A 100 KiB bulk string read in pieces of 13 to 3280 bytes (each piece
 * is copied to the guard page anew, so one byte at a time would cost the
 * test, not the parser, a quadratic time). */
static void
test_big(void)
{
	static char in[100 * 1024 + 64], other[128 * 1024];
	static size_t cuts[100 * 1024 + 64];
	struct lim lm = dflt;
	size_t len, k, n, step;
	int bad = 0;

	n = 100 * 1024;
	len = (size_t)snprintf(in, sizeof(in), "$%zu\r\n", n);
	for (k = 0; k < n; k++) {
		in[len + k] = (char)('a' + k % 26);
	}
	len += n;
	memcpy(in + len, "\r\n:7\r\n", 6);
	len += 6;
	lm.max_reply = 1024 * 1024;
	for (step = 13; step <= 4096 && !bad; step = step * 3 + 1) {
		size_t nc = 0;

		for (k = step; k < len; k += step) {
			cuts[nc++] = k;
		}
		feed(in, len, cuts, nc, lm, other, sizeof(other));
		if (strncmp(other, "102411:$102400\"abcdefghij", 24) != 0 ||
		    strstr(other, " 4::7 left=0") == NULL) {
			ok(0, "big in steps of %zu: %.60s", step, other);
			bad = 1;
		}
	}
	ok(!bad, "100 KiB bulk in pieces");
}

/* Views and resp_child() of a nested reply. */
static void
test_tree(void)
{
	const char *in = "*3\r\n*2\r\n$1\r\na\r\n*0\r\n:5\r\n+end\r\n";
	struct resp_node nodes[8];
	struct resp_parser ps;
	size_t a, b;
	ssize_t r;

	resp_parser_init(&ps, nodes, 8, 1024);
	r = resp_parse(&ps, in, strlen(in));
	ok_int(r, strlen(in), "tree: taken");
	ok_int(nodes[0].next, 6, "tree: node count");
	a = resp_child(nodes, 0, 0);
	ok_int(a, 1, "tree: first");
	ok_int(resp_child(nodes, 0, 1), 4, "tree: second skips the subtree");
	b = resp_child(nodes, 0, 2);
	ok_int(b, 5, "tree: third");
	ok(nodes[b].type == RESP_STRING && nodes[b].str.p == in + 24 &&
	    nodes[b].str.n == 3, "tree: view into the input");
	ok(nodes[resp_child(nodes, a, 0)].str.p == in + 12,
	    "tree: bulk view");
	ok_int(nodes[resp_child(nodes, a, 1)].n, 0, "tree: empty array");
	ok_int(nodes[4].i, 5, "tree: integer");
	ok(nodes[3].str.p != NULL && nodes[5].str.p != NULL,
	    "tree: other views are empty, not NULL");
	ok(resp_parser_error(&ps) == RESP_OK, "tree: no error");
}

/* ---- commands --------------------------------------------------------- */

static void
test_encode(void)
{
	static const struct view argv[] = {
		{ "SET", 3 }, { "k", 1 }, { "a\r\nb\0c", 6 }, { "", 0 }
	};
	static const char want4[] = "*4\r\n$3\r\nSET\r\n$1\r\nk\r\n"
	    "$6\r\na\r\nb\0c\r\n$0\r\n\r\n";
	size_t wlen = sizeof(want4) - 1;
	const char *want = want4;
	char out[128];
	struct resp_node nodes[8];
	struct resp_parser ps;
	struct resp_cmd c;
	ssize_t r;
	size_t cap, k;
	int bad = 0;

	r = resp_encode(out, sizeof(out), argv, 4);
	ok(r == (ssize_t)wlen && memcmp(out, want, wlen) == 0,
	    "encode: %zd bytes", r);
	ok_int(resp_encode(out, wlen, argv, 4), wlen, "encode: exact fit");
	for (cap = 0; cap < wlen; cap++) {
		if (resp_encode(out, cap, argv, 4) != -1) {
			bad = 1;
		}
	}
	ok(!bad, "encode: -1 for every smaller buffer");
	ok_int(resp_encode(out, sizeof(out), argv, 0), 4, "encode: no args");

	/* Encoded commands parse back to their arguments. */
	resp_parser_init(&ps, nodes, 8, sizeof(out));
	r = resp_encode(out, sizeof(out), argv, 4);
	ok_int(resp_parse(&ps, out, (size_t)r), r, "round trip: taken");
	ok(nodes[0].type == RESP_ARRAY && nodes[0].n == 4, "round trip: *4");
	for (k = 0; k < 4; k++) {
		const struct resp_node *e = &nodes[resp_child(nodes, 0, k)];

		ok(e->type == RESP_BULK && e->str.n == argv[k].n &&
		    memcmp(e->str.p, argv[k].p, argv[k].n) == 0,
		    "round trip: arg %zu", k);
	}

	/* Numbers. */
	resp_cmd_begin(&c, out, sizeof(out), 6);
	resp_cmd_arg(&c, "EVALSHA", 7);
	resp_cmd_u64(&c, 0);
	resp_cmd_u64(&c, UINT64_MAX);
	resp_cmd_i64(&c, INT64_MIN);
	resp_cmd_i64(&c, -1);
	resp_cmd_i64(&c, INT64_MAX);
	r = resp_cmd_end(&c);
	want = "*6\r\n$7\r\nEVALSHA\r\n$1\r\n0\r\n$20\r\n18446744073709551615"
	    "\r\n$20\r\n-9223372036854775808\r\n$2\r\n-1\r\n"
	    "$19\r\n9223372036854775807\r\n";
	ok(r == (ssize_t)strlen(want) && memcmp(out, want, strlen(want)) == 0,
	    "numbers: %.*s", r > 0 ? (int)r : 0, out);

	/* The count announced must be the count given. */
	resp_cmd_begin(&c, out, sizeof(out), 2);
	resp_cmd_arg(&c, "PING", 4);
	ok_int(resp_cmd_end(&c), -1, "fewer args than announced");
	resp_cmd_begin(&c, out, sizeof(out), 1);
	resp_cmd_arg(&c, "PING", 4);
	resp_cmd_arg(&c, "x", 1);
	ok_int(resp_cmd_end(&c), -1, "more args than announced");
	resp_cmd_begin(&c, out, 5, 1);
	resp_cmd_arg(&c, "PING", 4);
	resp_cmd_arg(&c, "", 0);
	ok_int(resp_cmd_end(&c), -1, "full stays full");
}

int
main(void)
{
	guard_init();
	test_types();
	test_pipelined();
	test_malformed();
	test_limits();
	test_big();
	test_tree();
	test_encode();
	return t_done("resp");
}
