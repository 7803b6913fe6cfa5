#ifndef RELAY_MONEY_H
#define RELAY_MONEY_H
/* Integer money (SPEC §6): prices in nano-USD per token, wallet amounts in
 * nano-units of the wallet currency. Pure functions, no floating point,
 * no allocation, no I/O. */
#include <stddef.h>
#include <stdint.h>

/* Room for any money_format()/money_format_trim() result: sign, 19 digits,
 * point, 9 decimals and the NUL. */
enum { MONEY_FMT_MAX = 32 };

/* Add tokens * price (CONF_PRICE_NONE counts as 0) to *sum. Returns 0,
 * or -1 when it does not fit in 64 bits (*sum untouched). */
int money_cost_add(uint64_t tokens, uint64_t price, uint64_t *sum);

/* round_half_even(usd_nano * rate_num / rate_den): USD to wallet-currency
 * nano-units at the configured rate. The product is exact (128 bits, built
 * from 64-bit halves). Returns 0, or -1 when rate_den is 0 or the rounded
 * result does not fit in 64 bits (*out untouched). */
int money_convert(uint64_t usd_nano, uint64_t rate_num, uint64_t rate_den,
    uint64_t *out);

/* nano / 1e9 as a decimal string with exactly `decimals` (0..9, larger
 * counts as 9) digits after the point (no point for 0), rounded
 * half-even: (1234567890, 2) -> "1.23", (-1005000000, 2) -> "-1.00". A
 * value that rounds to zero has no sign: (-1, 2) -> "0.00". The result is
 * cut to fit cap and NUL-terminated; cap >= MONEY_FMT_MAX always fits. */
void money_format(int64_t nano, unsigned decimals, char *out, size_t cap);

/* nano / 1e9 exactly: all 9 decimals, trailing zeros dropped down to two
 * decimals: 1500000000 -> "1.50", 1 -> "0.000000001", -2e9 -> "-2.00". */
void money_format_trim(int64_t nano, char *out, size_t cap);

/* Parse "100.00", "-5", "0.000000001" (optional '-', digits, optionally a
 * point and 1..9 digits; no '+', no blanks, no "1." or ".5") of n bytes
 * into nano-units. Returns 0, or -1 on bad syntax or when the value is
 * outside int64_t (*out_nano untouched). */
int money_parse(const char *s, size_t n, int64_t *out_nano);

#endif
