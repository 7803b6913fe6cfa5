/* ledger_recent: a wallet's recent charges (see ledger_recent.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_recent.h"

/* The n digits at d as a number, or -1 when one of them is not a digit
 * (so no sscanf: it alone would add ~11 KiB of libc to ./relay). */
static long
digits(const char *d, int n)
{
	long v = 0;
	int i;

	for (i = 0; i < n; i++) {
		if (d[i] < '0' || d[i] > '9') {
			return -1;
		}
		v = v * 10 + (d[i] - '0');
	}
	return v;
}

/* Days since 1970-01-01 of a "YYYY-MM-DD" (a proleptic Gregorian civil
 * day; Howard Hinnant's days_from_civil), or -1 when malformed. */
long
ledger_recent_day_number(const char *d)
{
	long y, m, dd, era, yoe, doy, doe;

	if ((y = digits(d, 4)) < 0 || d[4] != '-' ||
	    (m = digits(d + 5, 2)) < 1 || m > 12 || d[7] != '-' ||
	    (dd = digits(d + 8, 2)) < 1 || dd > 31) {
		return -1;
	}
	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153L * (m + (m > 2 ? -3 : 9)) + 2) / 5 + dd - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static void
civil(long z, char out[11])
{
	long era, doe, yoe, y, doy, mp, d, m;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	d = doy - (153 * mp + 2) / 5 + 1;
	m = mp + (mp < 10 ? 3 : -9);
	y += m <= 2;
	if (y < 0 || y > 9999) {
		y = 0;
	}
	out[0] = (char)('0' + y / 1000);
	out[1] = (char)('0' + y / 100 % 10);
	out[2] = (char)('0' + y / 10 % 10);
	out[3] = (char)('0' + y % 10);
	out[4] = '-';
	out[5] = (char)('0' + m / 10);
	out[6] = (char)('0' + m % 10);
	out[7] = '-';
	out[8] = (char)('0' + d / 10);
	out[9] = (char)('0' + d % 10);
	out[10] = '\0';
}

void
ledger_recent_day_before(const char *day, unsigned k, char out[11])
{
	long n = ledger_recent_day_number(day);

	if (n < 0) {
		snprintf(out, 11, "%.10s", day);
		return;
	}
	civil(n - (long)k, out);
}

/* Count the charge's spend on its day; newer days push older ones out. */
static void
count_day(struct ledger_recent *r, const struct ledger_recent_entry *x)
{
	char day[11];
	long now, last, shift;
	int i;

	memcpy(day, x->ts, 10);
	day[10] = '\0';
	if ((now = ledger_recent_day_number(day)) < 0) {
		return;
	}
	last = r->last_day[0] ? ledger_recent_day_number(r->last_day) : -1;
	if (last < 0 || now > last) {
		shift = last < 0 ? LEDGER_RECENT_DAYS : now - last;
		for (i = LEDGER_RECENT_DAYS - 1; i >= 0; i--) {
			int from = i - (int)(shift < LEDGER_RECENT_DAYS ?
			    shift : LEDGER_RECENT_DAYS);

			r->day_nano[i] = from >= 0 ? r->day_nano[from] : 0;
			r->day_requests[i] = from >= 0 ?
			    r->day_requests[from] : 0;
		}
		memcpy(r->last_day, day, sizeof(day));
		last = now;
	}
	if (last - now < LEDGER_RECENT_DAYS) {
		r->day_nano[last - now] += x->cur_nano;
		r->day_requests[last - now]++;
	}
}

/* Add a charge (x->ts says its day). */
static int
recent_add(struct ledger_recent **rp,
    const struct ledger_recent_entry *x)
{
	struct ledger_recent *r = *rp;

	if (r == NULL && (r = *rp = calloc(1, sizeof(*r))) == NULL) {
		return -1;
	}
	r->e[r->next] = *x;
	r->next = (r->next + 1) % LEDGER_RECENT_MAX;
	if (r->n < LEDGER_RECENT_MAX) {
		r->n++;
	}
	count_day(r, x);
	return 0;
}

const struct ledger_recent_entry *
ledger_recent_get(const struct ledger_recent *r, size_t k)
{
	if (r == NULL || k >= r->n) {
		return NULL;
	}
	return &r->e[(r->next + LEDGER_RECENT_MAX - 1 - k) % LEDGER_RECENT_MAX];
}

void
ledger_recent_day(const struct ledger_recent *r, const char *today,
    unsigned k, int64_t *nano, uint32_t *requests)
{
	long t, last, i;

	*nano = 0;
	*requests = 0;
	if (r == NULL || !r->last_day[0] || (t = ledger_recent_day_number(today)) < 0 ||
	    (last = ledger_recent_day_number(r->last_day)) < 0) {
		return;
	}
	i = last - (t - (long)k);
	if (i >= 0 && i < LEDGER_RECENT_DAYS) {
		*nano = r->day_nano[i];
		*requests = r->day_requests[i];
	}
}

int
ledger_recent_charge(struct ledger_recent **r, const char *ts,
    const char *id, const char *model, const uint64_t tokens[4],
    uint64_t usd_nano, int64_t cur_nano, uint32_t ms, unsigned status,
    int estimated)
{
	struct ledger_recent_entry x;

	memset(&x, 0, sizeof(x));
	memcpy(x.ts, ts, 24);
	snprintf(x.id, sizeof(x.id), "%.31s", id);
	snprintf(x.model, sizeof(x.model), "%.63s", model);
	x.in = tokens[0];
	x.cached = tokens[1];
	x.cache_write = tokens[2];
	x.out = tokens[3];
	x.usd_nano = usd_nano;
	x.cur_nano = cur_nano;
	x.ms = ms;
	x.status = (uint16_t)status;
	x.estimated = (uint8_t)(estimated != 0);
	return recent_add(r, &x);
}
