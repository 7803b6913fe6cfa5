/* conf_fleet: the directives of wallets and of a fleet (SPEC §12): wallet
 * (its keys, overdraft and limits), store (the shared Redis or Valkey)
 * and node (this relay's name in the ledger). The handlers are listed in
 * conf_directives[]; conf.c lends the tools (conf_int.h).
 *
 * The store's password is a secret (env:NAME or file:PATH), read here
 * and never copied into a message; a password inside the URL is refused
 * without being echoed. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

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
#define CONF_PREFIX_MAX 64
#define CONF_FLEET_NAME_MAX 100		/* wallet and node names with a store
					 * (its keys and replies) */

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

/* The host, port and database of "redis://HOST[:PORT][/DB]" into st. */
static int
store_url(struct parser *ps, struct conf_store *st, const char *url)
{
	const char *a, *end;
	char host[256], pbuf[8];
	uint64_t port = 6379, db = 0;

	if (strncasecmp(url, "rediss://", 9) == 0) {
		return conf_perr(ps, "TLS to the store (rediss://) is not "
		    "supported yet: use redis:// on loopback or a private "
		    "network");
	}
	if (strncasecmp(url, "redis://", 8) != 0) {
		return conf_perr(ps, "store is written store "
		    "redis://HOST:PORT[/DB] [password=env:NAME|file:PATH] "
		    "[prefix=P] [timeout=3s]");
	}
	a = url + 8;
	end = a + strcspn(a, "/");
	if (memchr(a, '@', (size_t)(end - a)) != NULL) {
		/* Never echoed: user:password@ is a secret. */
		return conf_perr(ps, "the store URL must not hold a password: "
		    "write password=env:NAME or password=file:PATH");
	}
	if (conf_host_port(a, end, host, sizeof(host), &port) < 0) {
		goto bad;
	}
	if (*end == '/' && end[1] != '\0' && (util_parse_u64(end + 1,
	    strlen(end + 1), &db) < 0 || db > 1000000)) {
		return conf_perr(ps, "bad database in '%s' (a number after "
		    "the /)", url);
	}
	snprintf(pbuf, sizeof pbuf, "%u", (unsigned)port);
	st->db = (unsigned)db;
	if ((st->host = conf_dups(ps, host)) == NULL ||
	    (st->port = conf_dups(ps, pbuf)) == NULL ||
	    (st->url = conf_dups(ps, url)) == NULL) {
		return -1;
	}
	return 0;
bad:
	return conf_perr(ps, "bad host or port in store '%s'", url);
}

/* A key prefix: printable, no blank, no brace (the {wallet} hash tag
 * follows it). */
static int
valid_prefix(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > CONF_PREFIX_MAX) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (s[i] <= ' ' || s[i] > '~' || s[i] == '{' || s[i] == '}') {
			return 0;
		}
	}
	return 1;
}

/* store redis://HOST:PORT[/DB] [password=env:NAME|file:PATH] [prefix=P]
 * [timeout=DURATION] */
int
conf_do_store(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "password", OPT_ONE, NULL },
	    { "prefix", OPT_ONE, NULL }, { "timeout", OPT_ONE, NULL } };
	struct conf_store *st;
	int k;

	if (nw < 2 || strchr(w[1], '=') != NULL) {
		return conf_perr(ps, "store needs a URL: "
		    "redis://HOST:PORT[/DB]");
	}
	if ((st = calloc(1, sizeof *st)) == NULL) {
		return conf_perr(ps, "out of memory");
	}
	ps->c->store = st;
	st->line = ps->line;
	st->timeout_ms = 3000;
	if (store_url(ps, st, w[1]) < 0 ||
	    conf_scan_opts(ps, w, 2, nw, o, 3) < 0 ||
	    conf_opt_duration(ps, &o[2], &st->timeout_ms) < 0) {
		return -1;
	}
	if (o[1].val != NULL && !valid_prefix(o[1].val)) {
		return conf_perr(ps, "bad prefix (1 to %d printable "
		    "characters, no blank and no brace)", CONF_PREFIX_MAX);
	}
	if ((st->prefix = conf_dups(ps, o[1].val != NULL ? o[1].val :
	    "relay:")) == NULL) {
		return -1;
	}
	if (o[0].val != NULL) {
		k = conf_secret(ps, o[0].val, "password is written "
		    "password=env:NAME or password=file:PATH", &st->password);
		if (k != 0) {
			return k < 0 ? -1 : conf_perr(ps, "store password: "
			    "environment variable %s is not set",
			    o[0].val + 4);
		}
		if ((st->source = conf_dups(ps, o[0].val)) == NULL) {
			return -1;
		}
	}
	if (!conf_is_loopback(st->host)) {
		return conf_pwarn(ps, "the store is reached over plain TCP "
		    "(no TLS yet): keep %s on a private network", st->host);
	}
	return 0;
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

int
conf_fleet_finish(struct parser *ps)
{
	struct conf *c = ps->c;
	size_t i;

	if (c->store == NULL) {
		return 0;
	}
	for (i = 0; i < c->nwallets; i++) {
		if (strlen(c->wallets[i].name) > CONF_FLEET_NAME_MAX) {
			ps->line = c->wallets[i].line;
			return conf_perr(ps, "with a store, a wallet name has at "
			    "most %d characters", CONF_FLEET_NAME_MAX);
		}
	}
	if (c->nwallets == 0) {
		ps->line = c->store->line;
		return conf_pwarn(ps, "open mode (no wallet): the store has "
		    "nothing to share and is not used");
	}
	return 0;
}

void
conf_fleet_free(struct conf *c)
{
	if (c->store != NULL) {
		free(c->store->url);
		free(c->store->host);
		free(c->store->port);
		conf_free_secret(c->store->password);
		free(c->store->source);
		free(c->store->prefix);
		free(c->store);
	}
	free(c->node);
}
