/* money: integer arithmetic for prices, costs and wallet amounts.
 *
 * Every amount is an integer count of nano-units (1e-9 USD or 1e-9 of the
 * wallet currency), so a price of "1.75" USD per 1M tokens is exactly 1750
 * nano-USD per token and nothing is ever rounded except the one currency
 * conversion, which SPEC §6 fixes as round-half-even. There is no floating
 * point here: a double cannot hold every 64-bit amount and its rounding
 * would make two correct relays disagree on a balance.
 *
 * The conversion needs usd_nano * rate_num, which can pass 64 bits; it is
 * computed as a 128-bit value held in two 64-bit halves and divided by
 * shift-and-subtract. __int128 would be shorter but is a compiler
 * extension the style rules out.
 *
 * What it does not do: know about the config (the caller passes prices
 * and the rate), allocate, or do I/O. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "money.h"
#include "util.h"

/* Same value as CONF_PRICE_NONE; money sits below conf, so it is not
 * included for one constant. */
#define PRICE_NONE UINT64_MAX

static const uint64_t pow10[10] = {
	1, 10, 100, 1000, 10000, 100000, 1000000, 10000000, 100000000,
	1000000000
};

int
money_cost_add(uint64_t tokens, uint64_t price, uint64_t *sum)
{
	uint64_t c;

	if (price == PRICE_NONE || price == 0) {
		return 0;
	}
	if (tokens > UINT64_MAX / price) {
		return -1;
	}
	c = tokens * price;
	if (*sum > UINT64_MAX - c) {
		return -1;
	}
	*sum += c;
	return 0;
}

/* a * b as a 128-bit hi:lo, from four 32x32 partial products. */
static void
mul_64x64(uint64_t a, uint64_t b, uint64_t *hi, uint64_t *lo)
{
	uint64_t a0 = a & 0xffffffffu, a1 = a >> 32;
	uint64_t b0 = b & 0xffffffffu, b1 = b >> 32;
	uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
	uint64_t mid;

	/* At most 3 * (2^32 - 1): no carry is lost. */
	mid = (p00 >> 32) + (p01 & 0xffffffffu) + (p10 & 0xffffffffu);
	*lo = (mid << 32) | (p00 & 0xffffffffu);
	*hi = p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32);
}

/* hi:lo / d for hi < d (so the quotient fits in 64 bits), one bit at a
 * time. The running remainder stays below d; shifting it left can carry
 * out of bit 63 when d > 2^63, and then it is certainly >= d, so `top`
 * forces the subtraction, which wraps back to the right value. */
static uint64_t
div_128(uint64_t hi, uint64_t lo, uint64_t d, uint64_t *rem)
{
	uint64_t q = 0, r = hi, top;
	int i;

	for (i = 63; i >= 0; i--) {
		top = r >> 63;
		r = (r << 1) | ((lo >> i) & 1);
		q <<= 1;
		if (top || r >= d) {
			r -= d;
			q |= 1;
		}
	}
	*rem = r;
	return q;
}

/* q + 1 when the discarded fraction r/d is above one half, or exactly one
 * half and q is odd (banker's rounding: ties go to the even neighbour).
 * Needs r < d. */
static int
round_up(uint64_t q, uint64_t r, uint64_t d)
{
	return r > d - r || (r == d - r && (q & 1));
}

int
money_convert(uint64_t usd_nano, uint64_t rate_num, uint64_t rate_den,
    uint64_t *out)
{
	uint64_t hi, lo, q, r;

	if (rate_den == 0) {
		return -1;
	}
	mul_64x64(usd_nano, rate_num, &hi, &lo);
	if (hi >= rate_den) {
		return -1;
	}
	if (hi == 0) {
		/* The common case fits 64 bits: one hardware division
		 * instead of the bitwise long division. */
		q = lo / rate_den;
		r = lo % rate_den;
	} else {
		q = div_128(hi, lo, rate_den, &r);
	}
	if (round_up(q, r, rate_den)) {
		if (q == UINT64_MAX) {
			return -1;
		}
		q++;
	}
	*out = q;
	return 0;
}

void
money_format(int64_t nano, unsigned decimals, char *out, size_t cap)
{
	uint64_t mag, unit, q, r;
	int neg;

	if (decimals > 9) {
		decimals = 9;
	}
	/* -(nano + 1) + 1 keeps INT64_MIN from overflowing. */
	mag = nano < 0 ? (uint64_t)-(nano + 1) + 1 : (uint64_t)nano;
	unit = pow10[9 - decimals];
	q = mag / unit;
	r = mag % unit;
	if (round_up(q, r, unit)) {
		q++;
	}
	neg = nano < 0 && q != 0;
	if (decimals == 0) {
		snprintf(out, cap, "%s%" PRIu64, neg ? "-" : "", q);
	} else {
		snprintf(out, cap, "%s%" PRIu64 ".%0*" PRIu64, neg ? "-" : "",
		    q / pow10[decimals], (int)decimals, q % pow10[decimals]);
	}
}

void
money_format_trim(int64_t nano, char *out, size_t cap)
{
	char buf[MONEY_FMT_MAX];
	size_t n, point;

	money_format(nano, 9, buf, sizeof buf);
	/* Nine decimals are always written: the point is 10 from the end. */
	n = strlen(buf);
	point = n - 10;
	while (n - point - 1 > 2 && buf[n - 1] == '0') {
		n--;
	}
	buf[n] = '\0';
	snprintf(out, cap, "%s", buf);
}

int
money_parse(const char *s, size_t n, int64_t *out_nano)
{
	uint64_t v;
	int neg = 0;

	if (n > 0 && s[0] == '-') {
		neg = 1;
		s++;
		n--;
	}
	if (util_parse_fixed(s, n, 9, 9, &v) < 0) {
		return -1;
	}
	if (v > (uint64_t)INT64_MAX + (uint64_t)neg) {
		return -1;
	}
	if (!neg) {
		*out_nano = (int64_t)v;
	} else if (v == (uint64_t)INT64_MAX + 1) {
		*out_nano = INT64_MIN;
	} else {
		*out_nano = -(int64_t)v;
	}
	return 0;
}
