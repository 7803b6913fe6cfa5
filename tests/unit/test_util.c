/* Unit tests for util: views, bounded number parsing, constant-time
 * compare, SHA-256, hex and random bytes. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "t.h"
#include "util.h"
#include "../../tools/lz.h"

static struct view
v(const char *s)
{
	struct view r;

	r.p = s;
	r.n = strlen(s);
	return r;
}

static void
test_u64_dec(void)
{
	/* Against printf at every power of ten and its neighbours, and a
	 * spread of other values up to UINT64_MAX. */
	char got[24], want[24];
	uint64_t v, p = 1, x = 0x9e3779b97f4a7c15u;
	size_t n;
	int i, k, bad = 0;

	for (i = 0; i < 20 && !bad; i++) {
		for (k = -1; k <= 1; k++) {
			v = p + (uint64_t)(int64_t)k;
			n = util_u64_dec(v, got);
			got[n] = '\0';
			snprintf(want, sizeof want, "%llu", (unsigned long long)v);
			bad |= strcmp(got, want) != 0;
		}
		p *= 10;
	}
	for (i = 0; i < 100000 && !bad; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = x >> (i % 64);
		n = util_u64_dec(v, got);
		got[n] = '\0';
		snprintf(want, sizeof want, "%llu", (unsigned long long)v);
		bad |= strcmp(got, want) != 0;
	}
	n = util_u64_dec(UINT64_MAX, got);
	got[n] = '\0';
	ok(!bad && strcmp(got, "18446744073709551615") == 0 &&
	    util_u64_dec(0, got) == 1 && got[0] == '0',
	    "u64_dec matches printf (powers of ten +-1, 100,000 others, "
	    "0, UINT64_MAX)");
}

/* A chunk size line's digits: against printf's %llx. */
static void
test_u64_hex(void)
{
	char got[24], want[24];
	uint64_t v, x = 0x9e3779b97f4a7c15u;
	size_t n;
	int i, bad = 0;

	for (i = 0; i < 100000 && !bad; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		v = i < 64 ? (uint64_t)1 << i : x >> (i % 64);
		n = util_u64_hex(v, got);
		got[n] = '\0';
		snprintf(want, sizeof want, "%llx", (unsigned long long)v);
		bad |= strcmp(got, want) != 0;
	}
	n = util_u64_hex(UINT64_MAX, got);
	got[n] = '\0';
	ok(!bad && strcmp(got, "ffffffffffffffff") == 0 &&
	    util_u64_hex(0, got) == 1 && got[0] == '0' &&
	    util_u64_hex(16384, got) == 4 && memcmp(got, "4000", 4) == 0,
	    "u64_hex matches printf %%llx (powers of two, 100,000 others, 0, "
	    "UINT64_MAX)");
}

static void
test_views(void)
{
	struct view t;

	ok(util_view_eq(v("gpt-5.2"), "gpt-5.2"), "view_eq equal");
	ok(!util_view_eq(v("gpt-5.2"), "gpt-5"), "view_eq prefix");
	ok(!util_view_eq(v("gpt"), "gpt-5"), "view_eq longer s");
	ok(!util_view_eq(v("GPT"), "gpt"), "view_eq is case-sensitive");
	ok(util_view_eq(v(""), ""), "view_eq empty");
	ok(util_view_ieq(v("Content-Length"), "content-length"), "view_ieq");
	ok(!util_view_ieq(v("Content-Lengt"), "content-length"),
	    "view_ieq short");
	ok(!util_view_ieq(v("Content-Lengthx"), "content-length"),
	    "view_ieq long");
	/* Only letters fold: these pairs differ by 0x20 too. */
	ok(!util_view_ieq(v("@"), "`"), "view_ieq: @ is not `");
	ok(!util_view_ieq(v("["), "{"), "view_ieq: [ is not {");
	ok(!util_view_ieq(v("\x7f"), "_"), "view_ieq: DEL is not _");
	ok(!util_view_ieq(v("\xc1"), "\xe1"), "view_ieq: no folding above ASCII");
	ok(util_view_ieq(v("AZaz09-"), "azAZ09-"), "view_ieq: A-Z a-z");
	{
		struct view nul = { "ab\0cd", 5 };

		ok(!util_view_ieq(nul, "ab"), "view_ieq: a NUL in the view "
		    "is not the end of s");
	}
	ok(VIEW_IEQ(v("Host"), "host") && !VIEW_IEQ(v("Hos"), "host"),
	    "VIEW_IEQ compares lengths first");
	{
		/* Every pair of bytes, at every offset of every length up
		 * to 20 (the word loop, the overlapping last word and the
		 * short path), against a byte-at-a-time reference. */
		char a[20], b[20];
		int x, y, bad = 0;
		size_t n, at;

		for (x = 0; x < 256 && !bad; x++) {
			for (y = 0; y < 256 && !bad; y++) {
				int fx = x >= 'A' && x <= 'Z' ? x + 32 : x;
				int fy = y >= 'A' && y <= 'Z' ? y + 32 : y;

				for (n = 1; n <= sizeof a && !bad; n++) {
					at = (size_t)(x + y) % n;
					memset(a, 'q', n);
					memset(b, 'Q', n);
					a[at] = (char)x;
					b[at] = (char)y;
					bad = util_mem_ieq(a, b, n) != (fx == fy);
				}
			}
		}
		ok(!bad, "mem_ieq: every byte pair, lengths 1-20");
		ok(util_mem_ieq("", "x", 0), "mem_ieq: empty");
	}
	t = util_view_trim(v(" \t chunked \t"));
	ok(t.n == 7 && memcmp(t.p, "chunked", 7) == 0, "view_trim both");
	t = util_view_trim(v(" \t "));
	ok_int(t.n, 0, "view_trim all blank");
	t = util_view_trim(v("a b"));
	ok_int(t.n, 3, "view_trim keeps inner blank");
}

static void
test_parse_u64(void)
{
	uint64_t x = 7;

	ok(util_parse_u64("0", 1, &x) == 0 && x == 0, "u64 zero");
	ok(util_parse_u64("12345", 5, &x) == 0 && x == 12345, "u64 12345");
	ok(util_parse_u64("123abc", 3, &x) == 0 && x == 123,
	    "u64 honours n");
	ok(util_parse_u64("18446744073709551615", 20, &x) == 0 &&
	    x == UINT64_MAX, "u64 max");
	x = 7;
	ok(util_parse_u64("18446744073709551616", 20, &x) < 0 && x == 7,
	    "u64 overflow by one");
	ok(util_parse_u64("99999999999999999999", 20, &x) < 0,
	    "u64 overflow");
	ok(util_parse_u64("", 0, &x) < 0, "u64 empty");
	ok(util_parse_u64("12a", 3, &x) < 0, "u64 letter");
	ok(util_parse_u64("-1", 2, &x) < 0, "u64 sign");
	ok(util_parse_u64("+1", 2, &x) < 0, "u64 plus");
	ok(util_parse_u64(" 1", 2, &x) < 0, "u64 blank");
	ok(util_parse_u64("1.0", 3, &x) < 0, "u64 dot");
}

static void
test_parse_fixed(void)
{
	static const struct {
		const char *s;
		unsigned max_frac, scale;
		int rc;
		uint64_t want;
	} cases[] = {
		{ "1.75", 3, 3, 0, 1750 },
		{ "0.019", 3, 3, 0, 19 },
		{ "15", 3, 3, 0, 15000 },
		{ "0.140", 3, 3, 0, 140 },
		{ "14.00", 3, 3, 0, 14000 },
		{ "1.2345", 3, 3, -1, 0 },
		{ "1.5", 1, 9, 0, 1500000000 },
		{ "7.2000", 4, 4, 0, 72000 },
		{ "0", 0, 0, 0, 0 },
		{ "1.", 3, 3, -1, 0 },
		{ ".5", 3, 3, -1, 0 },
		{ "1..5", 3, 3, -1, 0 },
		{ "1.5x", 3, 3, -1, 0 },
		{ "-1", 3, 3, -1, 0 },
		{ "", 3, 3, -1, 0 },
		{ "1.5", 3, 2, -1, 0 },		/* scale below max_frac */
		{ "18446744073709551.615", 3, 3, 0, UINT64_MAX },
		{ "18446744073709551.616", 3, 3, -1, 0 },
		{ "18446744073709552", 3, 3, -1, 0 },
	};
	uint64_t x;
	size_t i;
	int rc;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		x = 0;
		rc = util_parse_fixed(cases[i].s, strlen(cases[i].s),
		    cases[i].max_frac, cases[i].scale, &x);
		ok(rc == cases[i].rc && (rc < 0 || x == cases[i].want),
		    "parse_fixed(\"%s\", %u, %u): rc %d value %" PRIu64,
		    cases[i].s, cases[i].max_frac, cases[i].scale, rc, x);
	}
}

static void
test_ct_equal(void)
{
	unsigned char a[32], b[32];

	memset(a, 0xab, sizeof a);
	memcpy(b, a, sizeof b);
	ok(util_ct_equal(a, b, 32) == 1, "ct_equal same");
	b[31] ^= 1;
	ok(util_ct_equal(a, b, 32) == 0, "ct_equal last byte");
	b[31] ^= 1;
	b[0] ^= 0x80;
	ok(util_ct_equal(a, b, 32) == 0, "ct_equal first byte");
	ok(util_ct_equal(a, b, 0) == 1, "ct_equal empty");
	ok(util_ct_equal("abc", "abd", 2) == 1, "ct_equal honours n");
}

static void
test_sha256_hex(void)
{
	unsigned char h[32], back[32];
	char hex[65];

	util_sha256("abc", 3, h);
	util_hex(h, 32, hex);
	ok_str(hex, "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad", "sha256(abc)");
	util_sha256("", 0, h);
	util_hex(h, 32, hex);
	ok_str(hex, "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855", "sha256(empty)");
	ok(util_unhex32(hex, 64, back) == 0 && memcmp(back, h, 32) == 0,
	    "unhex32 round trip");
	memcpy(hex, "E3B0C442", 8);
	ok(util_unhex32(hex, 64, back) == 0 && memcmp(back, h, 32) == 0,
	    "unhex32 upper case");
	ok(util_unhex32(hex, 63, back) < 0, "unhex32 short");
	hex[10] = 'g';
	ok(util_unhex32(hex, 64, back) < 0, "unhex32 non-hex");
	util_hex((const unsigned char *)"\x00\xff", 2, hex);
	ok_str(hex, "00ff", "hex two bytes");
	util_hex(h, 0, hex);
	ok_str(hex, "", "hex empty");
}

static void
test_grow(void)
{
	size_t cap = 0, i;
	int *a = NULL, *b;

	b = util_grow(a, &cap, 1, sizeof(int));
	ok(b != NULL && cap == 8, "first growth gives 8 (cap %zu)", cap);
	a = b;
	for (i = 0; i < 8; i++) {
		ok(a[i] == 0, "new element %zu zeroed", i);
		a[i] = (int)i + 1;
	}
	b = util_grow(a, &cap, 8, sizeof(int));
	ok(b == a && cap == 8, "no growth when need fits");
	b = util_grow(a, &cap, 9, sizeof(int));
	ok(b != NULL && cap == 16, "doubles to 16 (cap %zu)", cap);
	a = b;
	ok(a[7] == 8 && a[8] == 0 && a[15] == 0, "old kept, new zeroed");
	b = util_grow(a, &cap, 100, sizeof(int));
	ok(b != NULL && cap == 128, "grows past need in doublings (%zu)", cap);
	a = b;
	b = util_grow(a, &cap, SIZE_MAX / 2 + 2, sizeof(int));
	ok(b == NULL && cap == 128, "an overflowing count is refused");
	b = util_grow(a, &cap, 129, SIZE_MAX / 8);
	ok(b == NULL && cap == 128, "an overflowing byte size is refused");
	free(a);
}

/* A one-off formatter in the shape util_verrf serves: prefix, then the
 * caller's format. */
static int prefixed(char *err, size_t errlen, const char *fmt, ...)
    RELAY_PRINTF(3, 4);

static int
prefixed(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;
	int rc;

	if (errlen < 3) {
		return -1;
	}
	memcpy(err, "p: ", 3);
	va_start(ap, fmt);
	rc = util_verrf(err + 3, errlen - 3, fmt, ap);
	va_end(ap);
	return rc;
}

static void
test_errf(void)
{
	char err[8];

	ok(util_errf(err, sizeof(err), "x=%d", 42) == -1, "errf returns -1");
	ok_str(err, "x=42", "errf formats");
	util_errf(err, sizeof(err), "%s", "a long reason");
	ok_str(err, "a long ", "errf cuts to the buffer");
	ok(util_errf(NULL, 0, "%d", 1) == -1, "errf without a buffer");
	ok(prefixed(err, sizeof(err), "%d", 7) == -1, "verrf returns -1");
	ok_str(err, "p: 7", "verrf formats its va_list");
	prefixed(err, sizeof(err), "%s", "longer");
	ok_str(err, "p: long", "verrf cuts to the buffer");
}

static void
test_utf8(void)
{
	static const char *const good[] = { "", "plain", "caf\xc3\xa9",
	    "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf" };
	static const char *const bad[] = { "\xff", "\xc3", "\xc0\xaf",
	    "\xe0\x80\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "a\x80",
	    "\xe4\xb8", "\xf0\x9f\x98" };
	size_t i;

	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		ok(util_utf8_valid(good[i], strlen(good[i])), "utf-8 ok %zu", i);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		ok(!util_utf8_valid(bad[i], strlen(bad[i])), "utf-8 bad %zu", i);
	}
}

static void
test_random(void)
{
	unsigned char a[32], b[32];

	memset(a, 0, sizeof a);
	memset(b, 0, sizeof b);
	ok(util_random(a, sizeof a) == 0 && util_random(b, sizeof b) == 0,
	    "random returns 0");
	ok(memcmp(a, b, sizeof a) != 0, "random differs between calls");
	ok(util_random(a, 0) == 0, "random of nothing");
}

static void
test_write_all(void)
{
	char path[] = "/tmp/test_util.XXXXXX", back[16];
	size_t done = 99;
	int fd = mkstemp(path);

	ok(fd >= 0, "temp file");
	ok(util_write_all(fd, "hello, file", 11, &done) == 0 && done == 11,
	    "all written");
	ok(pread(fd, back, sizeof back, 0) == 11 &&
	    memcmp(back, "hello, file", 11) == 0, "and in the file");
	ok(util_write_all(fd, "", 0, &done) == 0 && done == 0, "nothing");
	close(fd);
	unlink(path);
	errno = 0;
	ok(util_write_all(fd, "x", 1, &done) < 0 && errno == EBADF &&
	    done == 0, "a closed descriptor: EBADF");
	fd = open("/dev/full", O_WRONLY);
	if (fd >= 0) {
		ok(util_write_all(fd, "x", 1, &done) < 0 && errno == ENOSPC &&
		    done == 0, "a full device: ENOSPC");
		close(fd);
	}
}

/* Request ids: "req_" and 22 lower-case hex digits, a new one each call;
 * nothing written into a buffer too small. */
static void
test_request_id(void)
{
	char a[32], b[32], small[26];
	size_t i;
	int hex = 1;

	util_request_id(a, sizeof(a));
	util_request_id(b, sizeof(b));
	for (i = 4; i < 26; i++) {
		hex &= (a[i] >= '0' && a[i] <= '9') || (a[i] >= 'a' && a[i] <= 'f');
	}
	ok(strncmp(a, "req_", 4) == 0 && strlen(a) == 26 && hex,
	    "request id: req_ and 22 hex digits (%s)", a);
	ok(strcmp(a, b) != 0, "request id: a new one each time");
	memset(small, 'x', sizeof(small));
	util_request_id(small, sizeof(small));
	ok(small[0] == 'x', "request id: nothing written into 26 bytes");
}

/* util_unlz: a hand-made stream, its refusals, and what tools/lz.h packs
 * coming back byte for byte (text, runs, noise, the empty input). */
static void
test_unlz(void)
{
	/* 0 01100001 ('a'), then 1 1 0000000 010: a copy of 3 from 1 back. */
	static const unsigned char aaaa[] = { 0x30, 0xe0, 0x10 };
	static const unsigned char before[] = { 0x80, 0x00, 0x00 };
	static const char text[] = "provider openai base=https://api.openai"
	    ".com/v1\nprovider anthropic base=https://api.anthropic.com/v1\n"
	    "model gpt-5.5 text 5 30 openai/gpt-5.5\n";
	static unsigned char in[20000], out[20000];
	unsigned char *packed = NULL;
	size_t i, n, plen, bad = 0;
	uint64_t x = 0x9e3779b97f4a7c15u;

	ok_int(util_unlz(aaaa, sizeof aaaa, out, 4), 0, "unlz: aaaa");
	ok(memcmp(out, "aaaa", 4) == 0, "unlz: aaaa bytes");
	ok_int(util_unlz(aaaa, sizeof aaaa, out, 5), -1, "unlz: input ends");
	ok_int(util_unlz(aaaa, 2, out, 4), -1, "unlz: truncated copy");
	ok_int(util_unlz(before, sizeof before, out, 4), -1,
	    "unlz: copy before the start");

	for (i = 0; i < sizeof in; i++) {
		x = x * 6364136223846793005u + 1442695040888963407u;
		if (i < 5000) {
			in[i] = (unsigned char)text[i % (sizeof text - 1)];
		} else if (i < 9000) {
			in[i] = (unsigned char)(i < 7000 ? 'x' : x >> 60);
		} else {
			in[i] = (unsigned char)(x >> 56);
		}
	}
	for (n = 0; n <= sizeof in; n += n < 300 ? 1 : 4999) {
		packed = lz_pack(in, n, &plen);
		if (packed == NULL
		    || util_unlz(packed, plen, out, n) != 0
		    || memcmp(in, out, n) != 0) {
			bad++;
		}
		free(packed);
	}
	ok(bad == 0, "unlz: %zu packed buffers did not come back", bad);
	packed = lz_pack(in, 5000, &plen);
	ok(packed != NULL && plen < 5000 / 10, "unlz: repeated text packs "
	    "to %zu bytes", plen);
	free(packed);
}

int
main(void)
{
	test_request_id();
	test_views();
	test_u64_dec();
	test_u64_hex();
	test_parse_u64();
	test_parse_fixed();
	test_ct_equal();
	test_sha256_hex();
	test_grow();
	test_errf();
	test_utf8();
	test_random();
	test_write_all();
	test_unlz();
	return t_done("util");
}
