/* Unit tests for ledger_recent: the ring of a wallet's last charges and
 * the spend of its last 14 UTC days, across month, year and leap days. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ledger_recent.h"
#include "t.h"

/* A charge of nano in the wallet's currency at ts, request req_<i>. */
static int
add(struct ledger_recent **r, const char *ts, int64_t nano, unsigned i)
{
	static const uint64_t tokens[4];
	char id[16];

	snprintf(id, sizeof(id), "req_%u", i);
	return ledger_recent_charge(r, ts, id, "m", tokens, 0, nano, i, 200,
	    0);
}

int
main(void)
{
	struct ledger_recent *r = NULL;
	int64_t nano;
	uint32_t reqs;
	char day[11];
	unsigned i;

	ok_int(ledger_recent_day_number("1970-01-01"), 0, "day 0");
	ok_int(ledger_recent_day_number("2026-12-05T08:00:00Z"), 20792,
	    "a time stamp's day (its first 10 bytes)");
	ok_int(ledger_recent_day_number("2024-02-29") -
	    ledger_recent_day_number("2024-02-28"), 1, "a leap day");
	ok_int(ledger_recent_day_number("2026-13-01"), -1, "month 13");
	ok_int(ledger_recent_day_number("2026-12-00"), -1, "day 0 of a month");
	ok_int(ledger_recent_day_number("2026-1-05"), -1, "a 1-digit month");
	ok_int(ledger_recent_day_number("2026-12-0"), -1, "cut short");
	ok_int(ledger_recent_day_number(" 2026-12-05"), -1, "a blank first");
	ok_int(ledger_recent_day_number(""), -1, "empty");
	ledger_recent_day_before("2026-03-01", 1, day);
	ok_str(day, "2026-02-28", "before March 1st, 2026");
	ledger_recent_day_before("2024-03-01", 1, day);
	ok_str(day, "2024-02-29", "a leap day");
	ledger_recent_day_before("2027-01-01", 13, day);
	ok_str(day, "2026-12-19", "across a year");
	ledger_recent_day_before("2026-12-05", 0, day);
	ok_str(day, "2026-12-05", "0 days before");

	ok(ledger_recent_get(r, 0) == NULL, "none yet");
	for (i = 0; i < 60; i++) {
		ok(add(&r, "2026-12-05T10:00:00.000Z", 100, i) == 0, "add %u",
		    i);
	}
	ok(r != NULL && r->n == LEDGER_RECENT_MAX, "the ring keeps 50");
	ok_str(ledger_recent_get(r, 0)->id, "req_59", "newest first");
	ok_str(ledger_recent_get(r, 49)->id, "req_10", "the 50th newest");
	ok(ledger_recent_get(r, 50) == NULL, "no 51st");
	ledger_recent_day(r, "2026-12-05", 0, &nano, &reqs);
	ok(nano == 6000 && reqs == 60, "today: every charge counted (%lld, %u)",
	    (long long)nano, reqs);

	/* Older days, then newer ones push them out. */
	add(&r, "2026-12-04T23:59:59.999Z", 7, 100);
	ledger_recent_day(r, "2026-12-05", 1, &nano, &reqs);
	ok(nano == 7 && reqs == 1, "yesterday");
	add(&r, "2026-11-01T00:00:00.000Z", 9, 101);
	ledger_recent_day(r, "2026-12-05", 34, &nano, &reqs);
	ok(nano == 0 && reqs == 0, "a day past the window is not counted");
	add(&r, "2026-12-18T00:00:00.000Z", 5, 102);
	ledger_recent_day(r, "2026-12-18", 0, &nano, &reqs);
	ok(nano == 5 && reqs == 1, "13 days later: that day");
	ledger_recent_day(r, "2026-12-18", 13, &nano, &reqs);
	ok(nano == 6000 && reqs == 60, "the 5th is still in the window");
	add(&r, "2026-12-19T00:00:00.000Z", 1, 103);
	ledger_recent_day(r, "2026-12-19", 14, &nano, &reqs);
	ok(nano == 0, "and out of it one day later");
	ledger_recent_day(r, "2026-12-20", 0, &nano, &reqs);
	ok(nano == 0 && reqs == 0, "a day without charges");
	ledger_recent_day(r, "2026-12-20", 1, &nano, &reqs);
	ok(nano == 1 && reqs == 1, "asked from a later today");
	free(r);
	return t_done("ledger_recent");
}
