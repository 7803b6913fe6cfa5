/* conf_fleet: the directives of wallets and of a fleet (SPEC §12): wallet
 * (its keys, overdraft and limits) and node (this relay's name in the
 * ledger). The handlers are listed in conf_directives[]; conf.c lends the
 * tools (conf_int.h). The shared store (store redis://...) is not built
 * yet: the directive is unknown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "conf_int.h"
#include "util.h"

#define CONF_RPM_MAX 100000u		/* the in-process log holds as many
					 * admission times (8 bytes each) */
#define CONF_TPM_MAX 999999999999999ull	/* 15 digits: exact in the
					 * store's Lua numbers */
#define CONF_STREAMS_MAX 1000000u
#define CONF_AMOUNT_MAX 999999999999999999ull	/* nano: the store's
					 * amounts have at most 18 digits */
#define CONF_FLEET_NAME_MAX 100		/* node names (a store's keys and
					 * replies will want wallet names as
					 * short) */

/* An amount option of the wallet currency (at most 9 decimals) into
 * *nano, from 1 nano to CONF_AMOUNT_MAX when positive is set. */
static int
amount_opt(struct parser *ps, const struct opt *o, int positive,
    uint64_t *nano)
{
	if (o->val == NULL) {
		return 0;
	}
	if (util_parse_fixed(o->val, strlen(o->val), 9, 9, nano) < 0 ||
	    (positive && (*nano == 0 || *nano > CONF_AMOUNT_MAX))) {
		return conf_perr(ps, "bad %s '%s' (an amount in %s with at most "
		    "9 decimals%s)", o->name, o->val, ps->c->currency,
		    positive ? ", more than zero" : "");
	}
	return 0;
}

/* The key=sha256:<hex> words of a wallet line into wl; each key belongs
 * to one wallet only. */
static int
wallet_keys(struct parser *ps, char **w, size_t nw, struct conf_wallet *wl)
{
	struct conf *c = ps->c;
	unsigned char hash[32];
	size_t i, j, k, nkeys = 0;

	for (i = 2; i < nw; i++) {
		nkeys += strncmp(w[i], "key=", 4) == 0;
	}
	if ((wl->key_hashes = calloc(nkeys, 32)) == NULL) {
		return conf_perr(ps, "out of memory");
	}
	for (i = 2; i < nw; i++) {
		if (strncmp(w[i], "key=", 4) != 0) {
			continue;
		}
		if (conf_parse_hash(w[i] + 4, hash) < 0) {
			return conf_perr(ps, "a wallet key is written "
			    "key=sha256:<64 hex digits> (see relay key)");
		}
		/* One key, one wallet: otherwise who pays would depend on
		 * the search order. */
		for (j = 0; j < c->nwallets; j++) {
			for (k = 0; k < c->wallets[j].nkeys; k++) {
				if (memcmp(c->wallets[j].key_hashes[k], hash,
				    32) == 0) {
					return conf_perr(ps, "a key of wallet "
					    "'%s' is already a key of wallet "
					    "'%s' (line %d)", w[1],
					    c->wallets[j].name,
					    c->wallets[j].line);
				}
			}
		}
		memcpy(wl->key_hashes[wl->nkeys++], hash, 32);
	}
	return 0;
}

/* wallet NAME key=sha256:<hex> [key=...]... [overdraft=AMOUNT] [rpm=N]
 * [tpm=N] [max_streams=N] [budget_day=AMOUNT] */
int
conf_do_wallet(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "key", OPT_MULTI, NULL },
	    { "overdraft", OPT_ONE, NULL }, { "rpm", OPT_ONE, NULL },
	    { "tpm", OPT_ONE, NULL }, { "max_streams", OPT_ONE, NULL },
	    { "budget_day", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	struct conf_wallet *wl;
	size_t i;

	if (nw < 2 || !conf_valid_name(w[1])) {
		return conf_perr(ps, "wallet needs a NAME (letters, digits, "
		    "'.', '_', '-')");
	}
	for (i = 0; i < c->nwallets; i++) {
		if (strcmp(c->wallets[i].name, w[1]) == 0) {
			return conf_perr(ps, "duplicate wallet '%s' (first on "
			    "line %d)", w[1], c->wallets[i].line);
		}
	}
	if (conf_scan_opts(ps, w, 2, nw, o, 6) < 0) {
		return -1;
	}
	if (o[0].val == NULL) {
		return conf_perr(ps, "wallet '%s' needs at least one "
		    "key=sha256:<hex>", w[1]);
	}
	if (CONF_PUSH(ps, c->wallets, &ps->cap_wallets, c->nwallets, wl) < 0) {
		return -1;
	}
	wl->line = ps->line;
	if ((wl->name = conf_dups(ps, w[1])) == NULL ||
	    amount_opt(ps, &o[1], 0, &wl->overdraft_nano) < 0 ||
	    conf_opt_count(ps, &o[2], 1, CONF_RPM_MAX, &wl->rpm) < 0 ||
	    conf_opt_count(ps, &o[3], 1, CONF_TPM_MAX, &wl->tpm) < 0 ||
	    conf_opt_count(ps, &o[4], 1, CONF_STREAMS_MAX,
	    &wl->max_streams) < 0 ||
	    amount_opt(ps, &o[5], 1, &wl->budget_day_nano) < 0) {
		return -1;
	}
	return wallet_keys(ps, w, nw, wl);
}

/* node NAME: this relay's name on its ledger lines */
int
conf_do_node(struct parser *ps, char **w, size_t nw)
{
	if (nw != 2 || !conf_valid_name(w[1]) ||
	    strlen(w[1]) > CONF_FLEET_NAME_MAX) {
		return conf_perr(ps, "node is written node NAME (letters, "
		    "digits, '.', '_', '-'; at most %d)", CONF_FLEET_NAME_MAX);
	}
	free(ps->c->node);
	ps->c->node = conf_dups(ps, w[1]);
	return ps->c->node != NULL ? 0 : -1;
}

void
conf_fleet_free(struct conf *c)
{
	free(c->node);
}
