/* conf_directives: what each directive of the config file (SPEC §2)
 * means. One handler per directive checks its words and fills the conf;
 * conf.c splits the lines, finds the handler in conf_directives[] and
 * lends the tools (conf_int.h).
 *
 * A handler appends an element zeroed (util_grow) before it fills it, so
 * conf_free() releases a half-filled one on the error path too. Secrets
 * (credential lines: env:NAME or file:PATH) are read here and never
 * copied into a message; nor is a word that may be a misplaced one. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"
#include "util.h"

#define CONF_PRICE_MAX 1000000000u	/* 1000000.000 USD per 1M tokens */
#define CONF_RATE_MAX 1000000u		/* currency units per USD */
#define CONF_HOLD_MAX 100000000u	/* keeps hold * price in 64 bits */
#define CONF_CONNS_MAX 1048576u
#define CONF_FAILURES_MAX 1000000u

/* listen ADDR:PORT [tls cert=PATH key=PATH] [open=yes] */
static int
do_listen(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "tls", OPT_FLAG, NULL }, { "cert", OPT_ONE, NULL },
	    { "key", OPT_ONE, NULL }, { "open", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	struct conf_listen *l;
	const char *s, *h, *port;
	char host[INET6_ADDRSTRLEN], pbuf[8];
	unsigned char a[16];
	uint64_t pnum;
	size_t hn;

	if (nw < 2 || strchr(w[1], '=')) {
		return conf_perr(ps, "listen needs ADDR:PORT");
	}
	s = w[1];
	if (s[0] == '[') {
		h = s + 1;
		port = strchr(s, ']');
		hn = port ? (size_t)(port - h) : 0;
		port = port && port[1] == ':' ? port + 2 : NULL;
	} else {
		h = s;
		port = strrchr(s, ':');
		hn = port ? (size_t)(port - h) : 0;
		port = port ? port + 1 : NULL;
	}
	if (port == NULL || hn == 0 || hn >= sizeof host) {
		goto bad;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	if (s[0] == '[' ? inet_pton(AF_INET6, host, a) != 1 :
	    strcmp(host, "localhost") != 0 &&
	    inet_pton(AF_INET, host, a) != 1) {
		goto bad;
	}
	if (util_parse_u64(port, strlen(port), &pnum) < 0 || pnum > 65535) {
		return conf_perr(ps, "bad port in '%s' (0 to 65535)", s);
	}
	if (conf_scan_opts(ps, w, 2, nw, o, 4) < 0) {
		return -1;
	}
	if (CONF_PUSH(ps, c->listens, &ps->cap_listens, c->nlistens, l) < 0) {
		return -1;
	}
	l->line = ps->line;
	l->tls = o[0].val != NULL;
	snprintf(pbuf, sizeof pbuf, "%u", (unsigned)pnum);
	/* The name is bound as its address: binding must not depend on an
	 * /etc/hosts that a FROM scratch image does not have. */
	if ((l->host = conf_dups(ps, strcmp(host, "localhost") == 0 ?
	    "127.0.0.1" : host)) == NULL ||
	    (l->port = conf_dups(ps, pbuf)) == NULL ||
	    conf_opt_yesno(ps, &o[3], &l->open) < 0) {
		return -1;
	}
	if (!l->tls && (o[1].val || o[2].val)) {
		return conf_perr(ps, "cert= and key= need the tls word");
	}
	if (l->tls && (o[1].val == NULL || o[2].val == NULL)) {
		return conf_perr(ps, "tls needs cert=PATH and key=PATH");
	}
	if (l->tls && (conf_check_readable(ps, "cert file", o[1].val) < 0 ||
	    conf_check_readable(ps, "key file", o[2].val) < 0 ||
	    (l->cert_path = conf_dups(ps, o[1].val)) == NULL ||
	    (l->key_path = conf_dups(ps, o[2].val)) == NULL)) {
		return -1;
	}
	return 0;
bad:
	return conf_perr(ps, "bad listen address '%s' (write IPv4:PORT, "
	    "[IPv6]:PORT or localhost:PORT)", s);
}

/* admin_key sha256:<hex> */
static int
do_admin_key(struct parser *ps, char **w, size_t nw)
{
	if (nw < 2 || conf_parse_hash(w[1], ps->c->admin_key_hash) < 0) {
		return conf_perr(ps, "admin_key is written sha256:<64 hex "
		    "digits> (the SHA-256 of the key; see relay key)");
	}
	ps->c->has_admin_key = 1;
	return conf_scan_opts(ps, w, 2, nw, NULL, 0);
}

/* ledger PATH [sync=always|batch|none] */
static int
do_ledger(struct parser *ps, char **w, size_t nw)
{
	static const char *const syncs[] = { "always", "batch", "none" };
	struct opt o[] = { { "sync", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	size_t i;

	if (nw < 2 || strchr(w[1], '=')) {
		return conf_perr(ps, "ledger needs a PATH");
	}
	if (conf_scan_opts(ps, w, 2, nw, o, 1) < 0) {
		return -1;
	}
	for (i = 0; o[0].val && i < 3; i++) {
		if (strcmp(o[0].val, syncs[i]) == 0) {
			c->ledger_sync = (enum conf_sync)i;
			break;
		}
	}
	if (i == 3) {
		return conf_perr(ps, "sync must be always, batch or none");
	}
	free(c->ledger_path);
	c->ledger_path = conf_dups(ps, w[1]);
	return c->ledger_path ? 0 : -1;
}

/* currency CODE rate=DECIMAL */
static int
do_currency(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "rate", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	const char *dot;
	unsigned ndec, i;
	uint64_t num, den = 1;

	if (nw < 2 || strlen(w[1]) != 3 ||
	    strspn(w[1], "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != 3) {
		return conf_perr(ps, "currency needs a CODE of three capital "
		    "letters (e.g. CNY)");
	}
	if (conf_scan_opts(ps, w, 2, nw, o, 1) < 0) {
		return -1;
	}
	if (o[0].val == NULL) {
		return conf_perr(ps, "currency needs rate=DECIMAL (%s per USD)",
		    w[1]);
	}
	/* The denominator is 10^(decimals written), so "7.2000" keeps the
	 * precision its author meant. */
	dot = strchr(o[0].val, '.');
	ndec = dot ? (unsigned)strlen(dot + 1) : 0;
	if (ndec > 6 || util_parse_fixed(o[0].val, strlen(o[0].val), ndec,
	    ndec, &num) < 0) {
		return conf_perr(ps, "bad rate '%s' (a decimal with at most 6 "
		    "decimals)", o[0].val);
	}
	for (i = 0; i < ndec; i++) {
		den *= 10;
	}
	if (num == 0 || num / den > CONF_RATE_MAX ||
	    (num / den == CONF_RATE_MAX && num % den)) {
		return conf_perr(ps, "rate must be more than zero and at most "
		    "%u", CONF_RATE_MAX);
	}
	for (i = 0; i < 3; i++) {
		c->currency[i] = w[1][i];
		c->currency_lower[i] = (char)(w[1][i] - 'A' + 'a');
	}
	c->currency[3] = c->currency_lower[3] = '\0';
	c->rate_num = num;
	c->rate_den = den;
	return 0;
}

/* cooldown failures=N seconds=N */
static int
do_cooldown(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "failures", OPT_ONE, NULL },
	    { "seconds", OPT_ONE, NULL }, { "max", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	uint64_t failures = c->cooldown_failures, secs = c->cooldown_ms / 1000;
	uint64_t max = c->cooldown_max_ms / 1000;

	if (conf_scan_opts(ps, w, 1, nw, o, 3) < 0 ||
	    conf_opt_count(ps, &o[0], 1, CONF_FAILURES_MAX, &failures) < 0 ||
	    conf_opt_count(ps, &o[1], 0, CONF_DURATION_MAX_MS / 1000,
	    &secs) < 0 ||
	    conf_opt_count(ps, &o[2], 0, CONF_DURATION_MAX_MS / 1000,
	    &max) < 0) {
		return -1;
	}
	c->cooldown_failures = (unsigned)failures;
	c->cooldown_ms = secs * 1000;
	c->cooldown_max_ms = max * 1000;
	return 0;
}

/* holds max_tokens=N */
static int
do_holds(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "max_tokens", OPT_ONE, NULL } };

	if (conf_scan_opts(ps, w, 1, nw, o, 1) < 0) {
		return -1;
	}
	return conf_opt_count(ps, &o[0], 1, CONF_HOLD_MAX,
	    &ps->c->hold_max_tokens);
}

/* timeouts header= keepalive= connect= first_byte= idle= total= body= */
static int
do_timeouts(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "header", OPT_ONE, NULL },
	    { "keepalive", OPT_ONE, NULL }, { "connect", OPT_ONE, NULL },
	    { "first_byte", OPT_ONE, NULL }, { "idle", OPT_ONE, NULL },
	    { "total", OPT_ONE, NULL }, { "body", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	uint64_t *dst[7];
	size_t i;

	dst[0] = &c->header_timeout_ms;
	dst[1] = &c->keepalive_timeout_ms;
	dst[2] = &c->connect_timeout_ms;
	dst[3] = &c->first_byte_timeout_ms;
	dst[4] = &c->idle_timeout_ms;
	dst[5] = &c->total_timeout_ms;
	dst[6] = &c->body_timeout_ms;
	if (conf_scan_opts(ps, w, 1, nw, o, 7) < 0) {
		return -1;
	}
	for (i = 0; i < 7; i++) {
		if (conf_opt_duration(ps, &o[i], dst[i]) < 0) {
			return -1;
		}
	}
	return 0;
}

/* limits max_body= max_header= max_conns= max_conns_per_ip= */
static int
do_limits(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "max_body", OPT_ONE, NULL },
	    { "max_header", OPT_ONE, NULL }, { "max_conns", OPT_ONE, NULL },
	    { "max_conns_per_ip", OPT_ONE, NULL } };
	struct conf *c = ps->c;

	if (conf_scan_opts(ps, w, 1, nw, o, 4) < 0 ||
	    conf_opt_size(ps, &o[0], 1, UINT64_MAX, &c->max_body) < 0 ||
	    conf_opt_size(ps, &o[1], 1024, 1048576, &c->max_header) < 0 ||
	    conf_opt_size(ps, &o[2], 1, CONF_CONNS_MAX, &c->max_conns) < 0 ||
	    conf_opt_size(ps, &o[3], 1, CONF_CONNS_MAX,
	    &c->max_conns_per_ip) < 0) {
		return -1;
	}
	return 0;
}

/* NAME A|B: *out becomes 0 for A, 1 for B; -1 after the error. */
static int
two_words(struct parser *ps, char **w, size_t nw, const char *a,
    const char *b, int *out)
{
	if (nw != 2 || (strcmp(w[1], a) != 0 && strcmp(w[1], b) != 0)) {
		return conf_perr(ps, "%s is written %s %s|%s", w[0], w[0], a,
		    b);
	}
	*out = strcmp(w[1], b) == 0;
	return 0;
}

/* disconnect close|drain */
static int
do_disconnect(struct parser *ps, char **w, size_t nw)
{
	return two_words(ps, w, nw, "close", "drain",
	    &ps->c->disconnect_drain);
}

/* metrics auth=none|admin */
static int
do_metrics(struct parser *ps, char **w, size_t nw)
{
	return two_words(ps, w, nw, "auth=none", "auth=admin",
	    &ps->c->metrics_admin);
}

/* A directive of one word that is no option: a copy into *out. */
static int
one_word(struct parser *ps, char **w, size_t nw, const char *usage,
    char **out)
{
	if (nw != 2 || strchr(w[1], '=') != NULL) {
		return conf_perr(ps, "%s", usage);
	}
	*out = conf_dups(ps, w[1]);
	return *out != NULL ? 0 : -1;
}

/* passthrough PROVIDER (checked against the providers at the end) */
static int
do_passthrough(struct parser *ps, char **w, size_t nw)
{
	return one_word(ps, w, nw, "passthrough is written passthrough "
	    "PROVIDER", &ps->c->passthrough_name);
}

/* access_log PATH|stderr|off (SPEC §11; "off" is kept as written) */
static int
do_access_log(struct parser *ps, char **w, size_t nw)
{
	return one_word(ps, w, nw, "access_log is written access_log "
	    "PATH|stderr|off", &ps->c->access_log);
}

/* affinity days=N max=N */
static int
do_affinity(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "days", OPT_ONE, NULL }, { "max", OPT_ONE,
	    NULL } };

	if (conf_scan_opts(ps, w, 1, nw, o, 2) < 0 ||
	    conf_opt_count(ps, &o[0], 1, 3650, &ps->c->affinity_days) < 0 ||
	    conf_opt_count(ps, &o[1], 1, 10000000, &ps->c->affinity_max) <
	    0) {
		return -1;
	}
	return 0;
}

/* ca_file PATH */
static int
do_ca_file(struct parser *ps, char **w, size_t nw)
{
	if (nw < 2 || strchr(w[1], '=')) {
		return conf_perr(ps, "ca_file needs a PATH");
	}
	if (conf_scan_opts(ps, w, 2, nw, NULL, 0) < 0 ||
	    conf_check_readable(ps, "ca_file", w[1]) < 0) {
		return -1;
	}
	ps->c->ca_file = conf_dups(ps, w[1]);
	return ps->c->ca_file ? 0 : -1;
}

/* Model aliases reach JSON and log lines; keep them to plain characters
 * ('/' and ':' allowed for "vendor/model:tag" style names). */
static int
valid_alias(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/:@+");

	return n > 0 && s[n] == '\0';
}

static int
parse_price(struct parser *ps, const char *s, const char *side,
    uint64_t *out)
{
	/* USD per 1M tokens with 3 decimals is exactly nano-USD per token. */
	if (strcmp(s, "-") == 0) {
		*out = CONF_PRICE_NONE;
		return 0;
	}
	if (util_parse_fixed(s, strlen(s), 3, 3, out) < 0 ||
	    *out > CONF_PRICE_MAX) {
		return conf_perr(ps, "bad %s price '%s' (USD per 1M tokens, at "
		    "most 3 decimals and 1000000, or -)", side, s);
	}
	return 0;
}

/* A model's cached= and cache_write= options, anywhere after its two
 * prices (SPEC §8); 1 when w is one, 0 when it is a route, -1 after an
 * error. */
static int
price_option(struct parser *ps, const char *w, struct conf_model *m)
{
	static const char *const names[] = { "cached=", "cache_write=" };
	char **text[2];
	uint64_t *val[2];
	size_t k, n;

	text[0] = &m->cached_text;
	text[1] = &m->cache_write_text;
	val[0] = &m->cached_nano_usd;
	val[1] = &m->cache_write_nano_usd;
	for (k = 0; k < 2; k++) {
		n = strlen(names[k]);
		if (strncmp(w, names[k], n) != 0) {
			continue;
		}
		if (*text[k] != NULL) {
			return conf_perr(ps, "%.*s given twice", (int)n - 1,
			    names[k]);
		}
		if (parse_price(ps, w + n, k == 0 ? "cached" : "cache_write",
		    val[k]) < 0 || (*text[k] = conf_dups(ps, w + n)) == NULL) {
			return -1;
		}
		return 1;
	}
	return 0;
}

/* The warning for a model with a price of "-" (not priced: metered, not
 * debited), naming what is debited still. */
static int
unpriced_warning(struct parser *ps, const char *alias, uint64_t in,
    uint64_t out)
{
	if (in == CONF_PRICE_NONE && out == CONF_PRICE_NONE) {
		return conf_pwarn(ps, "model '%s' has no input or output price; "
		    "it is metered, never debited", alias);
	}
	if (in == CONF_PRICE_NONE || out == CONF_PRICE_NONE) {
		const char *none = in == CONF_PRICE_NONE ? "input" : "output";
		const char *priced = in == CONF_PRICE_NONE ? "output" : "input";

		return conf_pwarn(ps, "model '%s' has no %s price: its %s "
		    "tokens are metered, not debited; %s is debited", alias,
		    none, none, priced);
	}
	return 0;
}

/* model ALIAS MODALITY INPRICE OUTPRICE [cached=P] [cache_write=P]
 * ROUTE [ROUTE...] */
static int
do_model(struct parser *ps, char **w, size_t nw)
{
	static const char *const modalities[] = { "text", "image", "video",
	    "embeddings" };
	struct conf *c = ps->c;
	struct conf_model *m;
	struct conf_route *r;
	const char *slash;
	uint64_t in, out;
	size_t i, mod, fam;

	if (nw < 6) {
		return conf_perr(ps, "model is written model ALIAS MODALITY "
		    "INPRICE OUTPRICE ROUTE...");
	}
	if (!valid_alias(w[1])) {
		return conf_perr(ps, "bad model alias '%s'", w[1]);
	}
	for (i = 0; i < c->nmodels; i++) {
		if (strcmp(c->models[i].alias, w[1]) == 0) {
			return conf_perr(ps, "duplicate model alias '%s' "
			    "(first on line %d)", w[1], c->models[i].line);
		}
	}
	for (mod = 0; mod < 4; mod++) {
		if (strcmp(w[2], modalities[mod]) == 0) {
			break;
		}
	}
	if (mod == 4) {
		return conf_perr(ps, "unknown modality '%s' (text, image, "
		    "video or embeddings)", w[2]);
	}
	if (parse_price(ps, w[3], "input", &in) < 0 ||
	    parse_price(ps, w[4], "output", &out) < 0) {
		return -1;
	}
	for (i = 5; i < nw; i++) {
		slash = strchr(w[i], '/');
		if (strncmp(w[i], "cached=", 7) == 0 ||
		    strncmp(w[i], "cache_write=", 12) == 0) {
			continue;	/* an option: read below */
		}
		if (slash == NULL || slash == w[i] || slash[1] == '\0' ||
		    strpbrk(w[i], "\"\\")) {
			return conf_perr(ps, "route '%s' is not "
			    "provider/upstream-model", w[i]);
		}
	}
	if (CONF_PUSH(ps, c->models, &ps->cap_models, c->nmodels, m) < 0) {
		return -1;
	}
	m->line = ps->line;
	m->modality = (enum conf_modality)mod;
	m->in_nano_usd = in;
	m->out_nano_usd = out;
	m->cached_nano_usd = in;	/* unless cached= says */
	m->cache_write_nano_usd = in;
	/* Family: up to the first digit, trailing '-' dropped
	 * ("gpt-5.2" -> "gpt"); the whole alias if that leaves nothing. */
	fam = strcspn(w[1], "0123456789");
	while (fam > 0 && w[1][fam - 1] == '-') {
		fam--;
	}
	if (fam == 0) {
		fam = strlen(w[1]);
	}
	if ((m->alias = conf_dups(ps, w[1])) == NULL ||
	    (m->family = conf_dupn(ps, w[1], fam)) == NULL ||
	    (m->in_text = conf_dups(ps, w[3])) == NULL ||
	    (m->out_text = conf_dups(ps, w[4])) == NULL) {
		return -1;
	}
	if ((m->routes = calloc(nw - 5, sizeof *m->routes)) == NULL) {
		return conf_perr(ps, "out of memory");
	}
	for (i = 5; i < nw; i++) {
		int k = price_option(ps, w[i], m);

		if (k != 0) {
			if (k < 0) {
				return -1;
			}
			continue;
		}
		r = &m->routes[m->nroutes++];
		/* The provider is resolved after the last line: it may be
		 * defined further down. */
		r->provider = SIZE_MAX;
		if ((r->text = conf_dups(ps, w[i])) == NULL ||
		    (r->upstream_model = conf_dups(ps,
		    strchr(w[i], '/') + 1)) == NULL) {
			return -1;
		}
	}
	if (m->nroutes == 0) {
		return conf_perr(ps, "model '%s' has no route", w[1]);
	}
	return unpriced_warning(ps, w[1], in, out);
}

const struct conf_directive conf_directives[] = {
	{ "listen", do_listen, 0 },
	{ "admin_key", do_admin_key, 1 },
	{ "ledger", do_ledger, 1 },
	{ "currency", do_currency, 1 },
	{ "cooldown", do_cooldown, 1 },
	{ "holds", do_holds, 1 },
	{ "timeouts", do_timeouts, 1 },
	{ "limits", do_limits, 1 },
	{ "ca_file", do_ca_file, 1 },
	{ "provider", conf_do_provider, 0 },
	{ "credential", conf_do_credential, 0 },
	{ "model", do_model, 0 },
	{ "wallet", conf_do_wallet, 0 },
	{ "disconnect", do_disconnect, 1 },
	{ "metrics", do_metrics, 1 },
	{ "passthrough", do_passthrough, 1 },
	{ "affinity", do_affinity, 1 },
	{ "access_log", do_access_log, 1 },
	{ "store", conf_do_store, 1 },
	{ "node", conf_do_node, 1 },
};

const size_t conf_ndirectives = sizeof conf_directives /
    sizeof conf_directives[0];

/* parser.first has a slot per directive. */
typedef char conf_first_fits[sizeof conf_directives /
    sizeof conf_directives[0] <= sizeof ((struct parser *)0)->first /
    sizeof (int) ? 1 : -1];
