/* Unit tests for ratelimit: each limit at its edge, the Retry-After each
 * gives (and -1 when waiting cannot help), the longest wait winning among
 * several, and a random walk of admissions and charges checked against a
 * plain model (every admission time and every charge kept in a list). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"
#include "t.h"

static struct limits_ask
ask(uint64_t now_ms, uint64_t tokens)
{
	struct limits_ask a;

	memset(&a, 0, sizeof(a));
	a.now_ms = now_ms;
	a.tokens = tokens;
	a.day_left_ms = 3600000;
	return a;
}

static void
test_rpm(void)
{
	struct limits_state s;
	struct limits_set l = { 3, 0, 0, 0 };
	struct limits_ask a;
	int64_t retry;
	uint64_t rpm, tpm;
	int i;

	memset(&s, 0, sizeof(s));
	for (i = 0; i < 3; i++) {
		a = ask(1000000 + (uint64_t)i * 10000, 1);
		ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "rpm: fits");
		ok_int(limits_admit(&s, &l, &a), 0, "admitted");
	}
	a = ask(1025000, 1);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_RPM, "the 4th");
	ok_int(retry, 35, "until the first leaves (1000000 + 60000)");
	a = ask(1059999, 1);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_RPM, "1 ms before");
	ok_int(retry, 1, "rounded up to 1 s");
	a = ask(1060000, 1);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "60 s after: out");
	limits_used(&s, 1060000, &rpm, &tpm);
	ok_int(rpm, 2, "two left in the window");
	ok_str(limits_name(LIMITS_RPM), "rpm", "name");
	ok_int(limits_by_name("tpm", 3), LIMITS_TPM, "by name");
	ok_int(limits_by_name("balance", 7), LIMITS_OK, "not a limit");
	limits_free(&s);
}

static void
test_tpm(void)
{
	struct limits_state s;
	struct limits_set l = { 0, 100, 0, 0 };
	struct limits_ask a;
	int64_t retry;
	uint64_t rpm, tpm;

	memset(&s, 0, sizeof(s));
	a = ask(5000, 101);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_TPM, "alone over");
	ok_int(retry, -1, "never");
	a = ask(5000, 100);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "exactly tpm");
	ok_int(limits_admit(&s, &l, &a), 0, "admit 100");
	a = ask(5500, 1);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_TPM, "held 100");
	ok_int(retry, 1, "an open hold ends soon");
	limits_release(&s, 100, 0);
	limits_settled(&s, 6000, 60);	/* charged 60 in second 6 */
	limits_used(&s, 6000, &rpm, &tpm);
	ok_int(tpm, 60, "settled in the window");
	a = ask(7000, 41);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_TPM, "60 + 41");
	ok_int(retry, 60, "second 6 leaves at second 67");
	a = ask(7000, 40);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "60 + 40");
	a = ask(66999, 41);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_TPM, "second 66");
	ok_int(retry, 1, "one more second");
	a = ask(67000, 41);
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "second 67: out");
	limits_used(&s, 67000, &rpm, &tpm);
	ok_int(tpm, 0, "window empty");
	limits_free(&s);
}

static void
test_streams_budget_and_order(void)
{
	struct limits_state s;
	struct limits_set l = { 1, 0, 1, 1000 };
	struct limits_ask a;
	int64_t retry;

	memset(&s, 0, sizeof(s));
	a = ask(1000, 1);
	a.stream = 1;
	a.amount = 400;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "a stream");
	ok_int(limits_admit(&s, &l, &a), 0, "admitted");
	a.now_ms = 2000;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_RPM,
	    "stream and rpm over: rpm's wait is longer");
	ok_int(retry, 59, "rpm's");
	l.rpm = 0;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_MAX_STREAMS,
	    "max_streams alone");
	ok_int(retry, 1, "1 s");
	a.stream = 0;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "not a stream");
	/* budget_day: spent + held + this. */
	a.spent = 500;
	a.held = 100;
	a.amount = 400;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "1000: fits");
	a.amount = 401;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_BUDGET_DAY, "1001");
	ok_int(retry, 1, "the hold in the way may settle for less");
	a.spent = 700;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_BUDGET_DAY, "spent");
	ok_int(retry, 3600, "the next UTC day");
	a.amount = 1001;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_BUDGET_DAY, "alone");
	ok_int(retry, -1, "never, above any wait");
	l.rpm = 1;
	a.stream = 1;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_BUDGET_DAY,
	    "never wins over rpm and streams");
	limits_release(&s, 1, 1);
	l.rpm = 0;
	a.amount = 1;
	a.spent = 0;
	ok_int(limits_check(&s, &l, &a, &retry), LIMITS_OK, "released");
	limits_free(&s);
}

/* A random walk against a model that keeps every event. */
static void
test_against_model(void)
{
	enum { N = 4000 };
	static uint64_t adm[N], chg_ms[N], chg_tok[N];
	struct limits_state s;
	struct limits_set l = { 7, 500, 0, 0 };
	struct limits_ask a;
	size_t na = 0, nc = 0, i, bad = 0;
	uint64_t now = 100000, in_win, tok_win, rpm, tpm, open = 0;
	int64_t retry;
	enum limits_reason r;
	int step;

	memset(&s, 0, sizeof(s));
	srand(7);
	for (step = 0; step < N && na < N && nc < N; step++) {
		now += (uint64_t)(rand() % 9000);
		a = ask(now, (uint64_t)(rand() % 120));
		in_win = tok_win = 0;
		for (i = 0; i < na; i++) {
			in_win += adm[i] + 60000 > now;
		}
		for (i = 0; i < nc; i++) {
			/* the 1-s buckets of the last 61 seconds */
			if (chg_ms[i] / 1000 + 60 >= now / 1000) {
				tok_win += chg_tok[i];
			}
		}
		r = limits_check(&s, &l, &a, &retry);
		if ((in_win >= 7) != (r == LIMITS_RPM ||
		    (r != LIMITS_OK && in_win >= 7)) ||
		    ((in_win < 7 && tok_win + open + a.tokens <= 500) !=
		    (r == LIMITS_OK))) {
			bad++;
		}
		limits_used(&s, now, &rpm, &tpm);
		bad += rpm != in_win || tpm != tok_win + open;
		if (r == LIMITS_OK) {
			(void)limits_admit(&s, &l, &a);
			adm[na++] = now;
			open += a.tokens;
			/* it settles at once, for its estimate or less */
			limits_release(&s, a.tokens, 0);
			open -= a.tokens;
			chg_ms[nc] = now;
			chg_tok[nc] = a.tokens / 2;
			limits_settled(&s, now, chg_tok[nc++]);
		}
	}
	ok_int(bad, 0, "the windows agree with the model on every step");
	ok(na > 100, "a walk with admissions (%zu)", na);
	limits_free(&s);
}

int
main(void)
{
	test_rpm();
	test_tpm();
	test_streams_budget_and_order();
	test_against_model();
	return t_done("ratelimit");
}
