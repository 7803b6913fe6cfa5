/* store_rebuild: the store set again from the ledgers (see
 * store_rebuild.h). */
#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "conf.h"
#include "ledger_recent.h"
#include "ledger_report.h"
#include "ledger_table.h"
#include "money.h"
#include "store.h"
#include "store_rebuild.h"
#include "util.h"

enum { REBUILD_MAX_MS = 30000 };	/* the whole command, at most */

/* Every call submitted is answered (or failed): drive the client. */
static int
drive(size_t ncalls, char *err, size_t errlen)
{
	uint64_t start = clock_mono_ms(), now, due;
	struct pollfd p;
	size_t done = 0;
	struct store_call *c;
	int wait;

	while (done < ncalls) {
		now = clock_mono_ms();
		if (now - start > REBUILD_MAX_MS) {
			return util_errf(err, errlen, "the store did not answer "
			    "within %d s", REBUILD_MAX_MS / 1000);
		}
		p.fd = store_fd(&p.events);
		p.revents = 0;
		due = store_deadline();
		wait = due == 0 ? 100 : due <= now ? 0 : (int)(due - now > 100 ?
		    100 : due - now);
		if (poll(&p, p.fd >= 0 ? 1 : 0, wait) < 0 && errno != EINTR) {
			return util_errf(err, errlen, "poll: %s",
			    strerror(errno));
		}
		store_step(p.fd >= 0 ? p.revents : 0, clock_mono_ms());
		for (c = store_done(); c != NULL; c = c->next) {
			done++;
		}
	}
	return 0;
}

int
store_rebuild(const struct conf *c, const char *const *paths,
    size_t npaths, FILE *out, char *err, size_t errlen)
{
	struct ledger_table sum;
	struct store_call *calls = NULL;
	char today[16], why[256], bal[MONEY_FMT_MAX], old[MONEY_FMT_MAX];
	char held[MONEY_FMT_MAX];
	size_t bad = 0, i, n;
	long day;
	int rc = -1, failed = 0;

	if (c->store == NULL) {
		return util_errf(err, errlen, "the config has no store line");
	}
	clock_today(today, sizeof(today));
	day = ledger_recent_day_number(today);
	if (ledger_sum_files(paths, npaths, today, &sum, &bad, why,
	    sizeof(why)) < 0) {
		return util_errf(err, errlen, "%s: %s (nothing written to the "
		    "store)", paths[bad], why);
	}
	for (i = 0; i < c->nwallets; i++) {
		if (ledger_table_wallet(&sum, c->wallets[i].name) == NULL) {
			util_errf(err, errlen, "out of memory");
			goto done;
		}
	}
	n = sum.nwallets;
	if (n == 0) {
		rc = 0;
		goto done;
	}
	if ((calls = calloc(n, sizeof(*calls))) == NULL) {
		util_errf(err, errlen, "out of memory");
		goto done;
	}
	for (i = 0; i < n; i++) {
		if (strlen(sum.wallets[i].name) > STORE_WALLET_MAX) {
			util_errf(err, errlen, "wallet %s: name too long for the "
			    "store", sum.wallets[i].name);
			goto done;
		}
		calls[i].script = STORE_REBUILD;
		snprintf(calls[i].wallet, sizeof(calls[i].wallet), "%s",
		    sum.wallets[i].name);
		calls[i].arg[0] = sum.wallets[i].balance_nano;
		calls[i].arg[1] = day;
		calls[i].arg[2] = sum.wallets[i].today_nano;
	}
	if (store_open(c->store, NULL, clock_mono_ms(), why,
	    sizeof(why)) < 0) {
		util_errf(err, errlen, "%s", why);
		goto done;
	}
	/* All pipelined behind the handshake: one round trip. */
	for (i = 0; i < n; i++) {
		if (store_submit(&calls[i], clock_mono_ms()) < 0) {
			util_errf(err, errlen, "store %s: %s", c->store->url,
			    calls[i].err);
			goto done;
		}
	}
	if (drive(n, err, errlen) < 0) {
		goto done;
	}
	for (i = 0; i < n; i++) {
		money_format(calls[i].arg[0], 2, bal, sizeof(bal));
		if (calls[i].status != STORE_REPLIED || calls[i].nfields != 3 ||
		    strcmp(calls[i].field[0], "ok") != 0) {
			fprintf(out, "%s %s %s NOT SET: %s\n",
			    calls[i].wallet, c->currency, bal,
			    calls[i].status == STORE_REPLIED ? "an unexpected "
			    "reply" : calls[i].err);
			failed = 1;
			continue;
		}
		money_format(strtoll(calls[i].field[1], NULL, 10), 2, old,
		    sizeof(old));
		money_format(strtoll(calls[i].field[2], NULL, 10), 2, held,
		    sizeof(held));
		fprintf(out, "%s %s %s (the store had %s, %s held)\n",
		    calls[i].wallet, c->currency, bal, old, held);
	}
	if (failed) {
		util_errf(err, errlen, "some wallets were not set (above)");
		goto done;
	}
	rc = 0;
done:
	store_close();
	free(calls);
	ledger_table_free(&sum);
	return rc;
}
