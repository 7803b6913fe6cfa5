#!/usr/bin/env python3
"""Cross-check src/money.c against an independent reference.

Usage: money_ref.py DRIVER [CASES [SEED]]

DRIVER is the money_cases binary. CASES (default 100000) random inputs are
generated from SEED (default: random; printed so a failure can be replayed)
over the ranges the config accepts (src/conf.c: prices up to 1000000.000
USD per 1M tokens = 1e9 nano-USD per token or '-', rates up to 1000000 with
up to 6 decimals, holds up to 1e8 tokens) plus their edges, exact ties,
overflow boundaries and arbitrary 64-bit values. The reference computes the
cost with Python integers and the conversion with the decimal module
(ROUND_HALF_EVEN at a precision that makes the quotient exact enough to
decide every tie), cross-checked by integer divmod. Prints
"money_ref: N passed, M failed"; exits 1 on any mismatch.
"""
import decimal
import random
import subprocess
import sys

MAX64 = 2**64 - 1
NONE = MAX64                    # CONF_PRICE_NONE
PRICE_MAX = 1_000_000_000       # CONF_PRICE_MAX
RATE_MAX = 1_000_000            # CONF_RATE_MAX
HOLD_MAX = 100_000_000          # CONF_HOLD_MAX

# usd * num < 2^128 has at most 39 digits; 100 digits leave 60 fractional
# digits, and a quotient by a 64-bit den is either exactly .5 or at least
# 1/den (> 1e-20) away from it, so the rounding decision is exact.
CTX = decimal.Context(prec=100, rounding=decimal.ROUND_HALF_EVEN)


def reference(i, ip, o, op, num, den):
    usd = i * (0 if ip == NONE else ip) + o * (0 if op == NONE else op)
    if usd > MAX64 or den == 0:
        return "overflow"
    exact = CTX.divide(CTX.multiply(decimal.Decimal(usd),
                                    decimal.Decimal(num)),
                       decimal.Decimal(den))
    cur = int(exact.to_integral_value(rounding=decimal.ROUND_HALF_EVEN,
                                      context=CTX))
    q, r = divmod(usd * num, den)
    if 2 * r > den or (2 * r == den and q % 2 == 1):
        q += 1
    if q != cur:
        raise SystemExit("money_ref: reference disagrees with itself on "
                         f"{i} {ip} {o} {op} {num} {den}")
    if cur > MAX64:
        return "overflow"
    return f"{usd} {cur}"


def rate(rng):
    """A rate the config accepts: num / 10^k, 0 < rate <= RATE_MAX."""
    den = 10 ** rng.randint(0, 6)
    style = rng.random()
    if style < 0.1:
        num = RATE_MAX * den
    elif style < 0.2:
        num = 1
    elif style < 0.6:
        num = rng.randint(1, 20 * den)          # 0.000001 .. 20
    else:
        num = rng.randint(1, RATE_MAX * den)
    return num, den


def price(rng):
    style = rng.random()
    if style < 0.1:
        return NONE
    if style < 0.15:
        return rng.choice([0, 1, PRICE_MAX])
    if style < 0.7:
        return rng.randint(0, 100_000)          # up to 100 USD per 1M
    return rng.randint(0, PRICE_MAX)


def tokens(rng):
    style = rng.random()
    if style < 0.05:
        return rng.choice([0, 1, HOLD_MAX, 2**32, 2**63, MAX64])
    if style < 0.6:
        return rng.randint(0, 20_000)
    if style < 0.9:
        return rng.randint(0, HOLD_MAX)
    return rng.randint(0, 2**rng.randint(1, 64) - 1)   # what upstreams say


def case(rng):
    kind = rng.random()
    if kind < 0.70:                             # config ranges
        num, den = rate(rng)
        return (tokens(rng), price(rng), tokens(rng), price(rng), num, den)
    if kind < 0.80:                             # exact ties
        den = rng.choice([2, 10, 100, 10**6, 2 * 10**6])
        q = rng.randint(0, 10**12)
        if rng.random() < 0.5:
            return (q * den + den // 2, 1, 0, NONE, 1, den)
        usd = 2 * q + 1                         # usd * 5 / 10 = x.5
        return (usd, 1, 0, 0, 5, 10)
    if kind < 0.88:                             # overflow boundaries
        p = rng.randint(1, PRICE_MAX)
        t = MAX64 // p + rng.choice([-1, 0, 1])
        if rng.random() < 0.5:
            return (t, p, 0, NONE, 1, 1)
        return (t // 2, p, t // 2 + rng.randint(0, 2), p, 1, 1)
    if kind < 0.94:                             # conversion overflow edge
        num, den = rate(rng)
        usd = MAX64 * den // num + rng.choice([-1, 0, 1])
        usd = max(0, min(MAX64, usd))
        return (usd, 1, 0, 0, num, den)
    # arbitrary 64-bit rates: every path of the 128-bit division
    return (rng.randint(0, MAX64), 1, 0, 0, rng.randint(0, MAX64),
            rng.randint(1, MAX64))


def main():
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    driver = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 100_000
    seed = (int(sys.argv[3]) if len(sys.argv) > 3
            else random.SystemRandom().randrange(2**32))
    print(f"money_ref: seed {seed}, {count} cases")
    rng = random.Random(seed)
    cases = [
        (0, 0, 0, 0, 1, 1), (MAX64, 1, 0, 0, 1, 1), (MAX64, NONE, MAX64,
        NONE, 1, 1), (HOLD_MAX, PRICE_MAX, HOLD_MAX, PRICE_MAX,
        RATE_MAX * 10**6, 10**6), (1234, 1750, 567, 14000, 72, 10),
        (5, 1, 0, 0, 1, 2), (15, 1, 0, 0, 1, 2), (MAX64, 1, 0, 0, 2, 2),
        (MAX64, 1, 0, 0, MAX64, MAX64), (MAX64, 1, 0, 0, 2, 1),
    ]
    while len(cases) < count:
        cases.append(case(rng))
    text = "".join(" ".join(map(str, c)) + "\n" for c in cases)
    run = subprocess.run([driver], input=text, capture_output=True,
                         text=True, check=False)
    got = run.stdout.splitlines()
    if run.returncode != 0 or len(got) != len(cases):
        print(f"money_ref: driver exited {run.returncode} after "
              f"{len(got)} of {len(cases)} lines: {run.stderr.strip()}")
        print(f"money_ref: 0 passed, {len(cases)} failed")
        return 1
    passed = failed = 0
    for c, g in zip(cases, got):
        want = reference(*c)
        if g == want:
            passed += 1
            continue
        failed += 1
        if failed <= 10:
            print(f"mismatch: {' '.join(map(str, c))}: got {g!r}, "
                  f"want {want!r}")
    print(f"money_ref: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
