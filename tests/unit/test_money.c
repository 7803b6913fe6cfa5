/* Unit tests for money: cost, half-even conversion with a 128-bit
 * intermediate, formatting and parsing. tests/unit/money_ref.py checks
 * the same two functions against Python's decimal module on random
 * inputs; these are the hand-picked edges. */
#include <stdint.h>
#include <string.h>

#include "money.h"
#include "t.h"

#define NONE UINT64_MAX

/* in * in_price + out * out_price through money_cost_add(), as billing
 * prices two buckets. */
static int
cost(uint64_t in, uint64_t in_price, uint64_t out, uint64_t out_price,
    uint64_t *c)
{
	uint64_t sum = 0;

	if (money_cost_add(in, in_price, &sum) < 0 ||
	    money_cost_add(out, out_price, &sum) < 0) {
		return -1;
	}
	*c = sum;
	return 0;
}

static void
test_cost(void)
{
	uint64_t c = 7;

	ok(cost(1234, 1750, 567, 14000, &c) == 0 &&
	    c == 10097500, "cost of the SPEC example: %llu",
	    (unsigned long long)c);
	ok(cost(0, 1750, 0, 14000, &c) == 0 && c == 0,
	    "no tokens cost nothing");
	ok(cost(1000, NONE, 1000, NONE, &c) == 0 && c == 0,
	    "unpriced costs nothing");
	ok(cost(1000, NONE, 10, 6400, &c) == 0 && c == 64000,
	    "only output priced");
	ok(cost(1000, 19, 5, NONE, &c) == 0 && c == 19000,
	    "only input priced");
	ok(cost(UINT64_MAX, NONE, UINT64_MAX, NONE, &c) == 0 &&
	    c == 0, "max tokens unpriced");
	ok(cost(UINT64_MAX, 1, 0, 1, &c) == 0 &&
	    c == UINT64_MAX, "exactly UINT64_MAX");
	ok(cost(UINT64_MAX - 1, 1, 1, 1, &c) == 0 &&
	    c == UINT64_MAX, "sum to exactly UINT64_MAX");
	c = 7;
	ok(cost(UINT64_MAX, 2, 0, 0, &c) < 0 && c == 7,
	    "product overflow, out untouched");
	ok(cost(0, 0, UINT64_MAX / 3 + 1, 3, &c) < 0,
	    "output product overflow");
	ok(cost(UINT64_MAX - 1, 1, 2, 1, &c) < 0,
	    "sum overflow by one");
	ok(cost(100000000, 1000000000, 100000000, 1000000000,
	    &c) == 0 && c == 200000000000000000ull,
	    "largest hold at the largest price fits");
}

static uint64_t
conv(uint64_t usd, uint64_t num, uint64_t den, int *rc)
{
	uint64_t out = 12345;

	*rc = money_convert(usd, num, den, &out);
	return out;
}

static void
test_convert(void)
{
	uint64_t usd, num, den, p, q, r, want, got;
	int rc, bad = 0;

	ok_int(conv(5, 1, 2, &rc), 2, "2.5 -> 2 (tie to even)");
	ok_int(conv(15, 1, 2, &rc), 8, "7.5 -> 8 (tie to even)");
	ok_int(conv(7, 1, 2, &rc), 4, "3.5 -> 4");
	ok_int(conv(9, 1, 2, &rc), 4, "4.5 -> 4");
	ok_int(conv(1, 1, 2, &rc), 0, "0.5 -> 0");
	ok_int(conv(3, 1, 2, &rc), 2, "1.5 -> 2");
	ok_int(conv(26, 1, 10, &rc), 3, "2.6 -> 3");
	ok_int(conv(24, 1, 10, &rc), 2, "2.4 -> 2");
	ok_int(conv(251, 1, 100, &rc), 3, "2.51 -> 3");
	ok_int(conv(10097500, 72, 10, &rc), 72702000, "SPEC example CNY");
	ok_int(conv(5, 72, 10, &rc), 36, "36.0 exact");
	ok_int(conv(1, 72000, 10000, &rc), 7, "7.2 -> 7");
	ok_int(conv(0, 72, 10, &rc), 0, "zero");
	ok(conv(UINT64_MAX, 1, 1, &rc) == UINT64_MAX && rc == 0, "max * 1");
	ok(conv(UINT64_MAX, 2, 2, &rc) == UINT64_MAX && rc == 0,
	    "max * 2 / 2 needs the 128-bit product");
	ok(conv(UINT64_MAX, UINT64_MAX, UINT64_MAX, &rc) == UINT64_MAX &&
	    rc == 0, "max * max / max");
	ok(conv(UINT64_MAX, UINT64_MAX, 1, &rc) == 12345 && rc < 0,
	    "max * max overflows, out untouched");
	ok(conv(UINT64_MAX, 2, 1, &rc) == 12345 && rc < 0, "max * 2 overflows");
	/* 2^65 - 1 = 31 * 1190112520884487201; halved it is 2^64 - 0.5,
	 * which rounds to the even 2^64: one past the largest result. */
	ok(conv(1190112520884487201ull, 31, 2, &rc) == 12345 && rc < 0,
	    "rounding up past UINT64_MAX overflows");
	ok(conv(1190112520884487201ull, 31, 4, &rc) ==
	    9223372036854775808ull && rc == 0,
	    "(2^65 - 1) / 4 = 2^63 - 0.25 -> 2^63");
	ok(conv(1, 1, 0, &rc) == 12345 && rc < 0, "zero denominator");
	ok_int(conv(1000000000, 1000000000000ull, 1000000, &rc),
	    1000000000000000ull, "largest rate");
	/* 2^63 + 1 as the divisor exercises the carry out of bit 63. */
	ok(conv(UINT64_MAX - 1, 9223372036854775809ull,
	    9223372036854775809ull, &rc) == UINT64_MAX - 1 && rc == 0,
	    "divisor above 2^63");
	ok(conv(9223372036854775808ull, 3, 9223372036854775809ull, &rc) ==
	    3 && rc == 0, "3 * 2^63 / (2^63 + 1) = 2.99.. -> 3");

	/* Small exhaustive sweep against the textbook definition. */
	for (usd = 0; usd < 400; usd++) {
		for (num = 1; num < 40; num++) {
			for (den = 1; den <= 20; den++) {
				p = usd * num;
				q = p / den;
				r = p % den;
				want = q + (2 * r > den || (2 * r == den &&
				    (q & 1)));
				got = conv(usd, num, den, &rc);
				bad += rc != 0 || got != want;
			}
		}
	}
	ok_int(bad, 0, "sweep of small conversions");
}

static const char *
fmt(int64_t nano, unsigned dec)
{
	static char buf[MONEY_FMT_MAX];

	money_format(nano, dec, buf, sizeof buf);
	return buf;
}

static const char *
trim(int64_t nano)
{
	static char buf[MONEY_FMT_MAX];

	money_format_trim(nano, buf, sizeof buf);
	return buf;
}

static void
test_format(void)
{
	char small[4];

	ok_str(fmt(1234567890, 2), "1.23", "1.23");
	ok_str(fmt(1235000000, 2), "1.24", "1.235 -> 1.24 (tie to even)");
	ok_str(fmt(1225000000, 2), "1.22", "1.225 -> 1.22 (tie to even)");
	ok_str(fmt(1225000001, 2), "1.23", "just above the tie");
	ok_str(fmt(999999999, 2), "1.00", "carry into the integer part");
	ok_str(fmt(0, 2), "0.00", "zero");
	ok_str(fmt(-1005000000, 2), "-1.00", "negative tie");
	ok_str(fmt(-1006000000, 2), "-1.01", "negative");
	ok_str(fmt(-1, 2), "0.00", "negative rounding to zero has no sign");
	ok_str(fmt(-5000000, 2), "0.00", "-0.005 -> 0.00 (tie to even)");
	ok_str(fmt(-15000000, 2), "-0.02", "-0.015 -> -0.02");
	ok_str(fmt(10097500, 6), "0.010098", "6 decimals, tie to even");
	ok_str(fmt(1, 9), "0.000000001", "9 decimals");
	ok_str(fmt(1500000000, 0), "2", "0 decimals 1.5");
	ok_str(fmt(2500000000, 0), "2", "0 decimals 2.5");
	ok_str(fmt(1, 12), "0.000000001", "more than 9 decimals is 9");
	ok_str(fmt(INT64_MAX, 9), "9223372036.854775807", "INT64_MAX");
	ok_str(fmt(INT64_MIN, 9), "-9223372036.854775808", "INT64_MIN");
	ok_str(fmt(INT64_MIN, 2), "-9223372036.85", "INT64_MIN 2 dec");
	ok_str(fmt(INT64_MAX, 2), "9223372036.85", "INT64_MAX 2 dec");
	money_format(1234567890, 2, small, sizeof small);
	ok_str(small, "1.2", "cut to cap");

	ok_str(trim(1500000000), "1.50", "trim keeps two decimals");
	ok_str(trim(1), "0.000000001", "trim keeps all nine");
	ok_str(trim(-2000000000), "-2.00", "trim negative");
	ok_str(trim(1230000), "0.00123", "trim middle");
	ok_str(trim(0), "0.00", "trim zero");
	ok_str(trim(INT64_MIN), "-9223372036.854775808", "trim INT64_MIN");
}

static int
parse(const char *s, int64_t *v)
{
	*v = 42;
	return money_parse(s, strlen(s), v);
}

static void
test_parse(void)
{
	int64_t v;
	static const int64_t rt[] = { 0, 1, -1, 10, 1500000000,
	    -1234567891, 72702000, INT64_MAX, INT64_MIN };
	char buf[MONEY_FMT_MAX];
	size_t i;
	int bad = 0;

	ok(parse("100.00", &v) == 0 && v == 100000000000, "100.00");
	ok(parse("-5", &v) == 0 && v == -5000000000, "-5");
	ok(parse("0.000000001", &v) == 0 && v == 1, "one nano");
	ok(parse("7.2", &v) == 0 && v == 7200000000, "7.2");
	ok(parse("-0", &v) == 0 && v == 0, "-0");
	ok(parse("0012.5", &v) == 0 && v == 12500000000, "leading zeros");
	ok(parse("9223372036.854775807", &v) == 0 && v == INT64_MAX, "max");
	ok(parse("-9223372036.854775808", &v) == 0 && v == INT64_MIN, "min");
	ok(parse("9223372036.854775808", &v) < 0 && v == 42,
	    "max + 1, out untouched");
	ok(parse("-9223372036.854775809", &v) < 0, "min - 1");
	ok(parse("99999999999999999999", &v) < 0, "u64 overflow");
	ok(parse("1.0000000001", &v) < 0, "ten decimals");
	ok(parse("", &v) < 0, "empty");
	ok(parse("-", &v) < 0, "sign only");
	ok(parse("1.", &v) < 0, "1.");
	ok(parse(".5", &v) < 0, ".5");
	ok(parse("+5", &v) < 0, "+5");
	ok(parse(" 5", &v) < 0, "blank");
	ok(parse("5 ", &v) < 0, "trailing blank");
	ok(parse("1e3", &v) < 0, "exponent");
	ok(parse("--1", &v) < 0, "double sign");
	ok(parse("1,5", &v) < 0, "comma");
	ok(money_parse("12abc", 2, &v) == 0 && v == 12000000000,
	    "n is honoured");
	for (i = 0; i < sizeof rt / sizeof rt[0]; i++) {
		money_format_trim(rt[i], buf, sizeof buf);
		bad += money_parse(buf, strlen(buf), &v) != 0 || v != rt[i];
	}
	ok_int(bad, 0, "format_trim -> parse round trip");
}

static void
test_cost_add(void)
{
	uint64_t s = 10;

	ok(money_cost_add(1000, 1250, &s) == 0 && s == 1250010,
	    "cost_add: tokens * price added");
	ok(money_cost_add(5, NONE, &s) == 0 && s == 1250010,
	    "cost_add: an unpriced bucket adds nothing");
	ok(money_cost_add(UINT64_MAX, 0, &s) == 0 && s == 1250010,
	    "cost_add: price 0 never overflows");
	ok(money_cost_add(UINT64_MAX / 2 + 1, 2, &s) < 0 && s == 1250010,
	    "cost_add: product overflow refused, sum untouched");
	s = UINT64_MAX - 5;
	ok(money_cost_add(1, 6, &s) < 0 && s == UINT64_MAX - 5,
	    "cost_add: sum overflow refused");
	ok(money_cost_add(1, 5, &s) == 0 && s == UINT64_MAX,
	    "cost_add: up to UINT64_MAX");
}

int
main(void)
{
	test_cost_add();
	test_cost();
	test_convert();
	test_format();
	test_parse();
	return t_done("money");
}
