/* ratelimit: a wallet's limits in the process (see ratelimit.h). The checks
 * mirror the store's HOLD script (store_scripts.c) step by step: the
 * same windows, the same waits, the same choice among several limits
 * (tests/unit/test_limits.c takes its cases from the script's tests in
 * tests/store/test_scripts.py).
 *
 * Not here: the balance (billing.c checks it first: 402 before 429), the
 * clocks (the caller's), the wallet table (billing.c). */
#include <stdlib.h>
#include <string.h>

#include "ratelimit.h"

#define WINDOW_MS 60000u

static const char *const names[LIMITS_NREASONS] = {
	"", "max_streams", "rpm", "tpm", "budget_day"
};

const char *
limits_name(enum limits_reason r)
{
	return (unsigned)r < LIMITS_NREASONS ? names[r] : "";
}

enum limits_reason
limits_by_name(const char *p, size_t n)
{
	size_t i;

	for (i = 1; i < LIMITS_NREASONS; i++) {
		if (strlen(names[i]) == n && memcmp(names[i], p, n) == 0) {
			return (enum limits_reason)i;
		}
	}
	return LIMITS_OK;
}

/* a + b, at most INT64_MAX (both >= 0). */
static int64_t
sat_add(int64_t a, int64_t b)
{
	return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* Keep the longest wait: -1 (never) above all (the script's refuse()). */
static void
refuse(enum limits_reason *why, int64_t *retry, enum limits_reason r,
    int64_t s)
{
	if (*why == LIMITS_OK || (*retry >= 0 && (s < 0 || s > *retry))) {
		*why = r;
		*retry = s;
	}
}

/* Admissions of the log older than the window leave it. */
static void
trim_log(struct limits_state *s, uint64_t now_ms)
{
	while (s->n > 0 && s->log[s->head] + WINDOW_MS <= now_ms) {
		s->head = (s->head + 1) % s->cap;
		s->n--;
	}
	if (s->n == 0) {
		s->head = 0;
	}
}

/* Settled tokens of the window at second sec; the buckets in it into
 * b[] (oldest first) when b is not NULL. */
static uint64_t
tpm_window(const struct limits_state *s, uint64_t sec,
    struct limits_bucket *b, size_t *nb)
{
	uint64_t sum = 0, k, from = sec >= 60 ? sec - 60 : 0;
	const struct limits_bucket *x;

	if (nb != NULL) {
		*nb = 0;
	}
	for (k = from; k <= sec; k++) {
		x = &s->tpm[k % LIMITS_TPM_SLOTS];
		if (x->sec != k || x->tok == 0) {
			continue;
		}
		sum = x->tok > UINT64_MAX - sum ? UINT64_MAX : sum + x->tok;
		if (b != NULL) {
			b[(*nb)++] = *x;
		}
	}
	return sum;
}

/* tpm: 1 when over, with *s the wait (see ratelimit.h). */
static int
tpm_over(const struct limits_state *st, uint64_t tpm, uint64_t tok,
    uint64_t now_ms, int64_t *wait)
{
	struct limits_bucket b[LIMITS_TPM_SLOTS];
	uint64_t sec = now_ms / 1000, sum, used, need, freed = 0;
	size_t nb, i;

	if (tok > tpm) {
		*wait = -1;
		return 1;
	}
	sum = tpm_window(st, sec, b, &nb);
	used = sum > UINT64_MAX - st->htok ? UINT64_MAX : sum + st->htok;
	if (used <= tpm - tok) {
		return 0;
	}
	need = used - (tpm - tok);
	*wait = 1;	/* open holds alone in the way: they end soon */
	if (need <= sum) {
		for (i = 0; i < nb; i++) {
			freed += b[i].tok;
			if (freed >= need) {
				*wait = (int64_t)(b[i].sec + 61 - sec);
				break;
			}
		}
	}
	return 1;
}

enum limits_reason
limits_check(struct limits_state *s, const struct limits_set *l,
    const struct limits_ask *a, int64_t *retry_s)
{
	enum limits_reason why = LIMITS_OK;
	int64_t retry = 0, wait;

	if (l->max_streams > 0 && a->stream &&
	    s->streams >= l->max_streams) {
		refuse(&why, &retry, LIMITS_MAX_STREAMS, 1);
	}
	trim_log(s, a->now_ms);
	if (l->rpm > 0 && s->n >= l->rpm) {
		/* n - rpm + 1 admissions must leave; the last of them is the
		 * (n - rpm)th oldest. */
		uint64_t t = s->log[(s->head + (s->n - l->rpm)) % s->cap];
		uint64_t left = t + WINDOW_MS - a->now_ms;

		wait = (int64_t)((left + 999) / 1000);
		refuse(&why, &retry, LIMITS_RPM, wait < 1 ? 1 : wait);
	}
	if (l->tpm > 0 && tpm_over(s, l->tpm, a->tokens, a->now_ms, &wait)) {
		refuse(&why, &retry, LIMITS_TPM, wait);
	}
	if (l->budget_day > 0) {
		int64_t spent = a->spent > 0 ? a->spent : 0;

		if (a->amount > l->budget_day) {
			refuse(&why, &retry, LIMITS_BUDGET_DAY, -1);
		} else if (sat_add(sat_add(spent, a->held), a->amount) >
		    l->budget_day) {
			wait = 1;
			if (sat_add(spent, a->amount) > l->budget_day) {
				wait = (int64_t)((a->day_left_ms + 999) /
				    1000);
			}
			refuse(&why, &retry, LIMITS_BUDGET_DAY, wait);
		}
	}
	*retry_s = retry;
	return why;
}

/* Room for one more admission in the ring, in order. */
static int
log_room(struct limits_state *s)
{
	size_t cap, i;
	uint64_t *p;

	if (s->n < s->cap) {
		return 0;
	}
	cap = s->cap < 8 ? 8 : s->cap * 2;
	if ((p = malloc(cap * sizeof *p)) == NULL) {
		return -1;
	}
	for (i = 0; i < s->n; i++) {
		p[i] = s->log[(s->head + i) % s->cap];
	}
	free(s->log);
	s->log = p;
	s->cap = cap;
	s->head = 0;
	return 0;
}

int
limits_admit(struct limits_state *s, const struct limits_set *l,
    const struct limits_ask *a)
{
	if (l->rpm > 0) {
		if (log_room(s) < 0) {
			return -1;
		}
		s->log[(s->head + s->n) % s->cap] = a->now_ms;
		s->n++;
	}
	s->htok = a->tokens > UINT64_MAX - s->htok ? UINT64_MAX :
	    s->htok + a->tokens;
	s->streams += a->stream != 0;
	return 0;
}

void
limits_release(struct limits_state *s, uint64_t tokens, int stream)
{
	s->htok = tokens < s->htok ? s->htok - tokens : 0;
	if (stream && s->streams > 0) {
		s->streams--;
	}
}

void
limits_settled(struct limits_state *s, uint64_t now_ms, uint64_t tokens)
{
	uint64_t sec = now_ms / 1000;
	struct limits_bucket *b = &s->tpm[sec % LIMITS_TPM_SLOTS];

	if (tokens == 0) {
		return;
	}
	if (b->sec != sec) {
		b->sec = sec;
		b->tok = 0;
	}
	b->tok = tokens > UINT64_MAX - b->tok ? UINT64_MAX : b->tok + tokens;
}

void
limits_used(struct limits_state *s, uint64_t now_ms, uint64_t *rpm,
    uint64_t *tpm)
{
	uint64_t sum = tpm_window(s, now_ms / 1000, NULL, NULL);

	trim_log(s, now_ms);
	*rpm = s->n;
	*tpm = sum > UINT64_MAX - s->htok ? UINT64_MAX : sum + s->htok;
}

void
limits_free(struct limits_state *s)
{
	free(s->log);
	memset(s, 0, sizeof *s);
}
