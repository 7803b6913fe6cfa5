/* conf: the flat config file (SPEC §2) compiled into a struct conf.
 *
 * The text is read line by line into a bounded stack buffer and split into
 * blank-separated words; each directive has one handler that checks its
 * words and fills the conf. Checks that need the whole file (routes to
 * providers defined later, the open-mode listen rule) run after the last
 * line, and the models are then sorted by alias for conf_find_model().
 *
 * Ownership: every string and array in a conf is owned by it; elements
 * are appended zeroed before they are filled, so conf_free() is the one
 * release site on the error path too. Secrets are read here (env:/file:)
 * and never copied into an error or warning message; a secret is wiped
 * when the conf is freed. This module does no network I/O and reads no
 * clock. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "util.h"

#define CONF_LINE_MAX 4096
#define CONF_WORDS_MAX 64
#define CONF_FILE_MAX (16u << 20)	/* a config is text, not data */
#define CONF_SECRET_MAX 8192		/* first line of a file: secret */
#define CONF_PRICE_MAX 1000000000u	/* 1000000.000 USD per 1M tokens */
#define CONF_RATE_MAX 1000000u		/* currency units per USD */
#define CONF_DURATION_MAX_MS 86400000u	/* a day */
#define CONF_HOLD_MAX 100000000u	/* keeps hold * price in 64 bits */
#define CONF_CONNS_MAX 1048576u
#define CONF_FAILURES_MAX 1000000u

enum opt_kind { OPT_ONE, OPT_MULTI, OPT_FLAG };

/* One name=value option (or bare flag word) a directive accepts. */
struct opt {
	const char *name;
	enum opt_kind kind;
	const char *val;	/* borrowed from the line; last value given,
				 * "" for a flag, NULL when absent */
};

struct parser {
	struct conf *c;
	const char *name;	/* borrowed; FILE in messages */
	int line;		/* current line, 0 outside the text */
	char *err;		/* borrowed; caller's error buffer */
	size_t errlen;
	size_t cap_listens, cap_providers, cap_models, cap_wallets;
	size_t cap_warnings, cap_credlines;
	unsigned *credlines;	/* owned; per provider, credential lines seen
				 * (skipped ones too, so labels stay stable) */
	int first[16];		/* per directives[] entry, line of first use */
};

static int perr(struct parser *ps, const char *fmt, ...) RELAY_PRINTF(2, 3);
static int pwarn(struct parser *ps, const char *fmt, ...) RELAY_PRINTF(2, 3);

/* Report "FILE:LINE: message" (or "FILE: message" outside the text);
 * always returns -1 so handlers can `return perr(...)`. */
static int
perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (ps->line > 0) {
		n = snprintf(ps->err, ps->errlen, "%s:%d: ", ps->name,
		    ps->line);
	} else {
		n = snprintf(ps->err, ps->errlen, "%s: ", ps->name);
	}
	if (n >= 0 && (size_t)n < ps->errlen) {
		va_start(ap, fmt);
		vsnprintf(ps->err + n, ps->errlen - (size_t)n, fmt, ap);
		va_end(ap);
	}
	return -1;
}

/* Make room for element n of an array of capacity *cap; new slots are
 * zeroed. Returns the (maybe moved) array, or NULL on failure. */
static void *
grow(struct parser *ps, void *arr, size_t *cap, size_t n, size_t size)
{
	size_t ncap;
	char *p;

	if (n < *cap) {
		return arr;
	}
	ncap = *cap ? *cap * 2 : 8;
	if (ncap > SIZE_MAX / size || (p = realloc(arr, ncap * size)) == NULL) {
		perr(ps, "out of memory");
		return NULL;
	}
	memset(p + n * size, 0, (ncap - n) * size);
	*cap = ncap;
	return p;
}

static char *
dupn(struct parser *ps, const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL) {
		perr(ps, "out of memory");
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

static char *
dups(struct parser *ps, const char *s)
{
	return dupn(ps, s, strlen(s));
}

/* Add "FILE:LINE: warning: message" to c->warnings. */
static int
pwarn(struct parser *ps, const char *fmt, ...)
{
	struct conf *c = ps->c;
	char msg[512];
	va_list ap;
	void *p;
	int n;

	n = snprintf(msg, sizeof msg, "%s:%d: warning: ", ps->name, ps->line);
	if (n < 0 || (size_t)n >= sizeof msg) {
		n = 0;
	}
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof msg - (size_t)n, fmt, ap);
	va_end(ap);
	p = grow(ps, c->warnings, &ps->cap_warnings, c->nwarnings,
	    sizeof *c->warnings);
	if (p == NULL) {
		return -1;
	}
	c->warnings = p;
	if ((c->warnings[c->nwarnings] = dups(ps, msg)) == NULL) {
		return -1;
	}
	c->nwarnings++;
	return 0;
}

static void
wipe(char *s)
{
	volatile char *p = s;

	while (p && *p) {
		*p++ = '\0';
	}
}

/* Match words w[from..nw) against the options o[0..no). */
static int
scan_opts(struct parser *ps, char **w, size_t from, size_t nw,
    struct opt *o, size_t no)
{
	const char *eq;
	size_t i, j, len;

	for (i = from; i < nw; i++) {
		eq = strchr(w[i], '=');
		len = eq ? (size_t)(eq - w[i]) : strlen(w[i]);
		for (j = 0; j < no; j++) {
			if (strlen(o[j].name) == len &&
			    memcmp(o[j].name, w[i], len) == 0 &&
			    (o[j].kind == OPT_FLAG) == (eq == NULL)) {
				break;
			}
		}
		/* The stray word itself is not repeated: it may be a secret
		 * pasted in the wrong place. */
		if (j == no && eq == NULL) {
			return perr(ps, "word %zu is not an option (options "
			    "are written name=value)", i + 1);
		}
		if (j == no) {
			return perr(ps, "unknown option '%.*s' for %s",
			    (int)len, w[i], w[0]);
		}
		if (o[j].val && o[j].kind != OPT_MULTI) {
			return perr(ps, "option '%s' given twice", o[j].name);
		}
		if (eq && eq[1] == '\0') {
			return perr(ps, "option '%s' needs a value",
			    o[j].name);
		}
		o[j].val = eq ? eq + 1 : "";
	}
	return 0;
}

static int
opt_yesno(struct parser *ps, const struct opt *o, int *out)
{
	if (o->val == NULL) {
		return 0;
	}
	if (strcmp(o->val, "yes") == 0 || strcmp(o->val, "no") == 0) {
		*out = o->val[0] == 'y';
		return 0;
	}
	return perr(ps, "%s must be yes or no", o->name);
}

/* Duration "500ms", "10s", "5m"; zero and a bare number are errors. */
static int
opt_duration(struct parser *ps, const struct opt *o, uint64_t *ms)
{
	const char *s = o->val;
	size_t n;
	uint64_t v, mul;

	if (s == NULL) {
		return 0;
	}
	n = strlen(s);
	if (n > 2 && strcmp(s + n - 2, "ms") == 0) {
		mul = 1;
		n -= 2;
	} else if (n > 1 && (s[n - 1] == 's' || s[n - 1] == 'm')) {
		mul = s[n - 1] == 's' ? 1000 : 60000;
		n--;
	} else {
		mul = 0;
	}
	if (mul == 0 || util_parse_u64(s, n, &v) < 0) {
		return perr(ps, "bad duration '%s' for %s (write e.g. 500ms, "
		    "10s or 5m)", s, o->name);
	}
	if (v == 0) {
		return perr(ps, "%s must be more than zero", o->name);
	}
	if (v > CONF_DURATION_MAX_MS / mul) {
		return perr(ps, "%s is longer than a day", o->name);
	}
	*ms = v * mul;
	return 0;
}

/* Size "4096", "16k" (KiB), "32m" (MiB), between lo and hi. */
static int
opt_size(struct parser *ps, const struct opt *o, uint64_t lo, uint64_t hi,
    uint64_t *out)
{
	const char *s = o->val;
	size_t n;
	uint64_t v, mul = 1;

	if (s == NULL) {
		return 0;
	}
	n = strlen(s);
	if (n > 1 && (s[n - 1] == 'k' || s[n - 1] == 'K')) {
		mul = 1024;
		n--;
	} else if (n > 1 && (s[n - 1] == 'm' || s[n - 1] == 'M')) {
		mul = 1048576;
		n--;
	}
	if (util_parse_u64(s, n, &v) < 0 || v > UINT64_MAX / mul) {
		return perr(ps, "bad size '%s' for %s (write e.g. 4096, 16k "
		    "or 32m)", s, o->name);
	}
	v *= mul;
	if (v == 0) {
		return perr(ps, "%s must be more than zero", o->name);
	}
	if (v < lo || v > hi) {
		return perr(ps, "%s must be between %llu and %llu", o->name,
		    (unsigned long long)lo, (unsigned long long)hi);
	}
	*out = v;
	return 0;
}

/* Plain count between lo and hi. */
static int
opt_count(struct parser *ps, const struct opt *o, uint64_t lo, uint64_t hi,
    uint64_t *out)
{
	uint64_t v;

	if (o->val == NULL) {
		return 0;
	}
	if (util_parse_u64(o->val, strlen(o->val), &v) < 0 || v < lo ||
	    v > hi) {
		return perr(ps, "%s must be a number from %llu to %llu",
		    o->name, (unsigned long long)lo, (unsigned long long)hi);
	}
	*out = v;
	return 0;
}

/* "sha256:<64 hex>" into out. Never echoed: a raw key may sit there. */
static int
parse_hash(const char *s, unsigned char out[32])
{
	if (strncmp(s, "sha256:", 7) != 0) {
		return -1;
	}
	return util_unhex32(s + 7, strlen(s + 7), out);
}

/* Names of providers and wallets: they appear in routes ("name/model"),
 * labels ("name#2") and the ledger, so they stay plain. */
static int
valid_name(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && s[n] == '\0';
}

static int
is_loopback(const char *host)
{
	static const unsigned char lo6[16] = { [15] = 1 };
	static const unsigned char mapped[12] = { [10] = 0xff, [11] = 0xff };
	unsigned char a[16];

	if (strcasecmp(host, "localhost") == 0) {
		return 1;
	}
	if (inet_pton(AF_INET, host, a) == 1) {
		return a[0] == 127;
	}
	if (inet_pton(AF_INET6, host, a) == 1) {
		return memcmp(a, lo6, 16) == 0 ||
		    (memcmp(a, mapped, 12) == 0 && a[12] == 127);
	}
	return 0;
}

/* The file must open for reading and not be a directory. */
static int
check_readable(struct parser *ps, const char *what, const char *path)
{
	struct stat st;
	int fd, e = 0;

	/* O_NONBLOCK: a FIFO given by mistake must not hang the check. */
	fd = util_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	if (fd < 0) {
		e = errno;
	} else {
		if (fstat(fd, &st) < 0) {
			e = errno;
		} else if (S_ISDIR(st.st_mode)) {
			e = EISDIR;
		}
		close(fd);
	}
	if (e) {
		return perr(ps, "cannot read %s '%s': %s", what, path,
		    strerror(e));
	}
	return 0;
}

static long
find_provider(const struct conf *c, const char *name, size_t n)
{
	size_t i;

	for (i = 0; i < c->nproviders; i++) {
		if (strlen(c->providers[i].name) == n &&
		    memcmp(c->providers[i].name, name, n) == 0) {
			return (long)i;
		}
	}
	return -1;
}

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
	void *p;

	if (nw < 2 || strchr(w[1], '=')) {
		return perr(ps, "listen needs ADDR:PORT");
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
		return perr(ps, "bad port in '%s' (0 to 65535)", s);
	}
	if (scan_opts(ps, w, 2, nw, o, 4) < 0) {
		return -1;
	}
	p = grow(ps, c->listens, &ps->cap_listens, c->nlistens,
	    sizeof *c->listens);
	if (p == NULL) {
		return -1;
	}
	c->listens = p;
	l = &c->listens[c->nlistens++];
	l->line = ps->line;
	l->tls = o[0].val != NULL;
	snprintf(pbuf, sizeof pbuf, "%u", (unsigned)pnum);
	/* The name is bound as its address: binding must not depend on an
	 * /etc/hosts that a FROM scratch image does not have. */
	if ((l->host = dups(ps, strcmp(host, "localhost") == 0 ?
	    "127.0.0.1" : host)) == NULL ||
	    (l->port = dups(ps, pbuf)) == NULL ||
	    opt_yesno(ps, &o[3], &l->open) < 0) {
		return -1;
	}
	if (!l->tls && (o[1].val || o[2].val)) {
		return perr(ps, "cert= and key= need the tls word");
	}
	if (l->tls && (o[1].val == NULL || o[2].val == NULL)) {
		return perr(ps, "tls needs cert=PATH and key=PATH");
	}
	if (l->tls && (check_readable(ps, "cert file", o[1].val) < 0 ||
	    check_readable(ps, "key file", o[2].val) < 0 ||
	    (l->cert_path = dups(ps, o[1].val)) == NULL ||
	    (l->key_path = dups(ps, o[2].val)) == NULL)) {
		return -1;
	}
	return 0;
bad:
	return perr(ps, "bad listen address '%s' (write IPv4:PORT, "
	    "[IPv6]:PORT or localhost:PORT)", s);
}

/* admin_key sha256:<hex> */
static int
do_admin_key(struct parser *ps, char **w, size_t nw)
{
	if (nw < 2 || parse_hash(w[1], ps->c->admin_key_hash) < 0) {
		return perr(ps, "admin_key is written sha256:<64 hex digits> "
		    "(the SHA-256 of the key; see relay key)");
	}
	ps->c->has_admin_key = 1;
	return scan_opts(ps, w, 2, nw, NULL, 0);
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
		return perr(ps, "ledger needs a PATH");
	}
	if (scan_opts(ps, w, 2, nw, o, 1) < 0) {
		return -1;
	}
	for (i = 0; o[0].val && i < 3; i++) {
		if (strcmp(o[0].val, syncs[i]) == 0) {
			c->ledger_sync = (enum conf_sync)i;
			break;
		}
	}
	if (i == 3) {
		return perr(ps, "sync must be always, batch or none");
	}
	free(c->ledger_path);
	c->ledger_path = dups(ps, w[1]);
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
		return perr(ps, "currency needs a CODE of three capital "
		    "letters (e.g. CNY)");
	}
	if (scan_opts(ps, w, 2, nw, o, 1) < 0) {
		return -1;
	}
	if (o[0].val == NULL) {
		return perr(ps, "currency needs rate=DECIMAL (%s per USD)",
		    w[1]);
	}
	/* The denominator is 10^(decimals written), so "7.2000" keeps the
	 * precision its author meant. */
	dot = strchr(o[0].val, '.');
	ndec = dot ? (unsigned)strlen(dot + 1) : 0;
	if (ndec > 6 || util_parse_fixed(o[0].val, strlen(o[0].val), ndec,
	    ndec, &num) < 0) {
		return perr(ps, "bad rate '%s' (a decimal with at most 6 "
		    "decimals)", o[0].val);
	}
	for (i = 0; i < ndec; i++) {
		den *= 10;
	}
	if (num == 0 || num / den > CONF_RATE_MAX ||
	    (num / den == CONF_RATE_MAX && num % den)) {
		return perr(ps, "rate must be more than zero and at most %u",
		    CONF_RATE_MAX);
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
	    { "seconds", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	uint64_t failures = c->cooldown_failures, secs = c->cooldown_ms / 1000;

	if (scan_opts(ps, w, 1, nw, o, 2) < 0 ||
	    opt_count(ps, &o[0], 1, CONF_FAILURES_MAX, &failures) < 0 ||
	    opt_count(ps, &o[1], 0, CONF_DURATION_MAX_MS / 1000, &secs) < 0) {
		return -1;
	}
	c->cooldown_failures = (unsigned)failures;
	c->cooldown_ms = secs * 1000;
	return 0;
}

/* holds max_tokens=N */
static int
do_holds(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "max_tokens", OPT_ONE, NULL } };

	if (scan_opts(ps, w, 1, nw, o, 1) < 0) {
		return -1;
	}
	return opt_count(ps, &o[0], 1, CONF_HOLD_MAX, &ps->c->hold_max_tokens);
}

/* timeouts header= keepalive= connect= first_byte= idle= total= */
static int
do_timeouts(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "header", OPT_ONE, NULL },
	    { "keepalive", OPT_ONE, NULL }, { "connect", OPT_ONE, NULL },
	    { "first_byte", OPT_ONE, NULL }, { "idle", OPT_ONE, NULL },
	    { "total", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	uint64_t *dst[6];
	size_t i;

	dst[0] = &c->header_timeout_ms;
	dst[1] = &c->keepalive_timeout_ms;
	dst[2] = &c->connect_timeout_ms;
	dst[3] = &c->first_byte_timeout_ms;
	dst[4] = &c->idle_timeout_ms;
	dst[5] = &c->total_timeout_ms;
	if (scan_opts(ps, w, 1, nw, o, 6) < 0) {
		return -1;
	}
	for (i = 0; i < 6; i++) {
		if (opt_duration(ps, &o[i], dst[i]) < 0) {
			return -1;
		}
	}
	return 0;
}

/* limits max_body= max_header= max_conns= */
static int
do_limits(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "max_body", OPT_ONE, NULL },
	    { "max_header", OPT_ONE, NULL }, { "max_conns", OPT_ONE, NULL } };
	struct conf *c = ps->c;

	if (scan_opts(ps, w, 1, nw, o, 3) < 0 ||
	    opt_size(ps, &o[0], 1, UINT64_MAX, &c->max_body) < 0 ||
	    opt_size(ps, &o[1], 1024, 1048576, &c->max_header) < 0 ||
	    opt_size(ps, &o[2], 1, CONF_CONNS_MAX, &c->max_conns) < 0) {
		return -1;
	}
	return 0;
}

/* ca_file PATH */
static int
do_ca_file(struct parser *ps, char **w, size_t nw)
{
	if (nw < 2 || strchr(w[1], '=')) {
		return perr(ps, "ca_file needs a PATH");
	}
	if (scan_opts(ps, w, 2, nw, NULL, 0) < 0 ||
	    check_readable(ps, "ca_file", w[1]) < 0) {
		return -1;
	}
	ps->c->ca_file = dups(ps, w[1]);
	return ps->c->ca_file ? 0 : -1;
}

/* base=http[s]://host[:port][/path] into the provider's fields. */
static int
parse_base(struct parser *ps, struct conf_provider *pr, const char *s)
{
	const char *a, *end, *h, *after;
	char host[256], pbuf[8];
	unsigned char addr[16];
	size_t hn, n;
	uint64_t port = 0;

	if (strncasecmp(s, "https://", 8) == 0) {
		pr->https = 1;
		a = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		a = s + 7;
	} else {
		return perr(ps, "base must be an http:// or https:// URL");
	}
	end = a + strcspn(a, "/");
	if (memchr(a, '@', (size_t)(end - a))) {
		/* Never echoed: user:password@ is a secret. */
		return perr(ps, "base must not hold user:password@ (write a "
		    "credential line)");
	}
	if (strpbrk(a, "?#")) {
		return perr(ps, "base must not have a query or fragment");
	}
	if (a[0] == '[') {
		h = a + 1;
		after = memchr(a, ']', (size_t)(end - a));
		hn = after ? (size_t)(after - h) : 0;
		after = after ? after + 1 : a;
	} else {
		h = a;
		hn = strcspn(a, ":/");
		after = a + hn;
	}
	if (hn == 0 || hn >= sizeof host) {
		goto bad;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	if (a[0] == '[' ? inet_pton(AF_INET6, host, addr) != 1 :
	    strspn(host, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != hn) {
		goto bad;
	}
	if (after < end && (*after != ':' || util_parse_u64(after + 1,
	    (size_t)(end - after - 1), &port) < 0 || port == 0 ||
	    port > 65535)) {
		goto bad;
	}
	if (port == 0) {
		port = pr->https ? 443 : 80;
	}
	snprintf(pbuf, sizeof pbuf, "%u", (unsigned)port);
	/* Drop trailing '/': the request path ("/chat/completions") is
	 * appended to it. */
	n = strlen(end);
	while (n > 0 && end[n - 1] == '/') {
		n--;
	}
	if ((pr->host = dups(ps, host)) == NULL ||
	    (pr->port = dups(ps, pbuf)) == NULL ||
	    (pr->host_header = dupn(ps, a, (size_t)(end - a))) == NULL ||
	    (pr->path = dupn(ps, end, n)) == NULL) {
		return -1;
	}
	return 0;
bad:
	return perr(ps, "bad host or port in base '%s'", s);
}

/* header=Name:Value on a provider line. */
static int
add_header(struct parser *ps, struct conf_provider *pr, const char *s)
{
	static const char *const refused[] = { "host", "content-length",
	    "transfer-encoding", "connection", "authorization", "x-api-key",
	    "api-key" };
	struct conf_header *hd;
	const char *colon = strchr(s, ':');
	size_t n, i;
	void *p;

	n = colon ? (size_t)(colon - s) : 0;
	if (n == 0 || strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~") != n) {
		return perr(ps, "header is written header=Name:Value");
	}
	/* Framing headers belong to the relay, auth headers to the
	 * credential lines (secrets are never written inline). */
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		if (strlen(refused[i]) == n &&
		    strncasecmp(s, refused[i], n) == 0) {
			return perr(ps, "header '%.*s' cannot be set with "
			    "header=", (int)n, s);
		}
	}
	p = realloc(pr->headers, (pr->nheaders + 1) * sizeof *pr->headers);
	if (p == NULL) {
		return perr(ps, "out of memory");
	}
	pr->headers = p;
	hd = &pr->headers[pr->nheaders++];
	hd->value = NULL;
	if ((hd->name = dupn(ps, s, n)) == NULL ||
	    (hd->value = dups(ps, colon + 1)) == NULL) {
		return -1;
	}
	return 0;
}

/* provider NAME base=URL auth=... [header=Name:Value]... [insecure=yes] */
static int
do_provider(struct parser *ps, char **w, size_t nw)
{
	static const char *const auths[] = { "bearer", "x-api-key",
	    "api-key", "none" };
	struct opt o[] = { { "base", OPT_ONE, NULL }, { "auth", OPT_ONE, NULL },
	    { "header", OPT_MULTI, NULL }, { "insecure", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	struct conf_provider *pr;
	size_t i, auth = 0;
	long dup;
	void *p;

	if (nw < 2 || !valid_name(w[1])) {
		return perr(ps, "provider needs a NAME (letters, digits, '.', "
		    "'_', '-')");
	}
	dup = find_provider(c, w[1], strlen(w[1]));
	if (dup >= 0) {
		return perr(ps, "duplicate provider '%s' (first on line %d)",
		    w[1], c->providers[dup].line);
	}
	if (scan_opts(ps, w, 2, nw, o, 4) < 0) {
		return -1;
	}
	if (o[0].val == NULL) {
		return perr(ps, "provider '%s' needs base=URL", w[1]);
	}
	for (; o[1].val && auth < 4; auth++) {
		if (strcmp(o[1].val, auths[auth]) == 0) {
			break;
		}
	}
	if (auth == 4) {
		return perr(ps, "auth must be bearer, x-api-key, api-key or "
		    "none");
	}
	p = grow(ps, ps->credlines, &ps->cap_credlines, c->nproviders,
	    sizeof *ps->credlines);
	if (p == NULL) {
		return -1;
	}
	ps->credlines = p;
	p = grow(ps, c->providers, &ps->cap_providers, c->nproviders,
	    sizeof *c->providers);
	if (p == NULL) {
		return -1;
	}
	c->providers = p;
	pr = &c->providers[c->nproviders++];
	pr->line = ps->line;
	pr->auth = (enum conf_auth)auth;
	if (opt_yesno(ps, &o[3], &pr->insecure) < 0 ||
	    (pr->name = dups(ps, w[1])) == NULL ||
	    (pr->base = dups(ps, o[0].val)) == NULL ||
	    parse_base(ps, pr, o[0].val) < 0) {
		return -1;
	}
	for (i = 2; i < nw; i++) {
		if (strncmp(w[i], "header=", 7) == 0 &&
		    add_header(ps, pr, w[i] + 7) < 0) {
			return -1;
		}
	}
	/* Plain http would carry the credential in clear over the
	 * network; on loopback it never leaves the host. */
	if (!pr->https && !pr->insecure && !is_loopback(pr->host)) {
		return perr(ps, "plain http to '%s' is only allowed for "
		    "loopback (write insecure=yes to allow it)", pr->host);
	}
	return 0;
}

/* A secret goes into a request header: CR, LF or NUL would let it
 * inject one, so control characters are refused. */
static int
clean_secret(const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f) {
			return 0;
		}
	}
	return 1;
}

/* The first line of path, trailing CR/LF/blanks stripped, into *out. */
static int
read_secret(struct parser *ps, const char *path, char **out)
{
	char buf[CONF_SECRET_MAX];
	const char *nl = NULL;
	size_t n = 0;
	ssize_t r;
	int fd, e = 0, rc = -1;

	fd = util_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK, 0);
	if (fd < 0) {
		return perr(ps, "cannot read secret file '%s': %s", path,
		    strerror(errno));
	}
	while (n < sizeof buf && nl == NULL) {
		r = read(fd, buf + n, sizeof buf - n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			e = r < 0 ? errno : 0;
			break;
		}
		nl = memchr(buf + n, '\n', (size_t)r);
		n += (size_t)r;
	}
	close(fd);
	if (nl) {
		n = (size_t)(nl - buf);
	}
	while (n > 0 && (buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	    buf[n - 1] == '\t')) {
		n--;
	}
	if (e) {
		perr(ps, "cannot read secret file '%s': %s", path, strerror(e));
	} else if (nl == NULL && n == sizeof buf) {
		perr(ps, "secret file '%s' has a first line over %d bytes",
		    path, CONF_SECRET_MAX);
	} else if (n == 0) {
		perr(ps, "secret file '%s' is empty", path);
	} else if (!clean_secret(buf, n)) {
		perr(ps, "secret file '%s' holds a control character", path);
	} else if ((*out = dupn(ps, buf, n)) != NULL) {
		rc = 0;
	}
	memset(buf, 0, sizeof buf);
	return rc;
}

/* A shell variable name. Checked so that a key pasted as "env:sk-..."
 * is refused instead of being echoed in the "not set" warning. */
static int
valid_env_name(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
	    "abcdefghijklmnopqrstuvwxyz0123456789_");

	return n > 0 && s[n] == '\0' && !(s[0] >= '0' && s[0] <= '9');
}

/* credential PROVIDER env:NAME|file:PATH */
static int
do_credential(struct parser *ps, char **w, size_t nw)
{
	struct conf *c = ps->c;
	struct conf_provider *pr;
	struct conf_cred *cr;
	const char *ref, *v;
	char *secret = NULL, label[128];
	long pi;
	void *p;

	/* w[2] is not echoed in any message here: it may be the secret. */
	if (nw != 3) {
		return perr(ps, "credential is written credential PROVIDER "
		    "env:NAME or file:PATH");
	}
	pi = find_provider(c, w[1], strlen(w[1]));
	if (pi < 0) {
		return perr(ps, "credential for undefined provider '%s'", w[1]);
	}
	pr = &c->providers[pi];
	ref = w[2];
	ps->credlines[pi]++;
	if (strncmp(ref, "env:", 4) == 0 && valid_env_name(ref + 4)) {
		v = getenv(ref + 4);
		if (v == NULL || v[0] == '\0') {
			return pwarn(ps, "environment variable %s is not set; "
			    "credential skipped", ref + 4);
		}
		if (!clean_secret(v, strlen(v))) {
			return perr(ps, "environment variable %s holds a "
			    "control character", ref + 4);
		}
		if ((secret = dups(ps, v)) == NULL) {
			return -1;
		}
	} else if (strncmp(ref, "file:", 5) == 0 && ref[5] != '\0') {
		if (read_secret(ps, ref + 5, &secret) < 0) {
			return -1;
		}
	} else {
		return perr(ps, "secrets are written env:NAME or file:PATH");
	}
	p = realloc(pr->creds, (pr->ncreds + 1) * sizeof *pr->creds);
	if (p == NULL) {
		wipe(secret);
		free(secret);
		return perr(ps, "out of memory");
	}
	pr->creds = p;
	cr = &pr->creds[pr->ncreds++];
	memset(cr, 0, sizeof *cr);
	cr->secret = secret;
	cr->line = ps->line;
	snprintf(label, sizeof label, "%s#%u", pr->name, ps->credlines[pi]);
	if ((cr->label = dups(ps, label)) == NULL ||
	    (cr->source = dups(ps, ref)) == NULL) {
		return -1;
	}
	return 0;
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
		return perr(ps, "bad %s price '%s' (USD per 1M tokens, at most "
		    "3 decimals and 1000000, or -)", side, s);
	}
	return 0;
}

/* model ALIAS MODALITY INPRICE OUTPRICE ROUTE [ROUTE...] */
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
	void *p;

	if (nw < 6) {
		return perr(ps, "model is written model ALIAS MODALITY "
		    "INPRICE OUTPRICE ROUTE...");
	}
	if (!valid_alias(w[1])) {
		return perr(ps, "bad model alias '%s'", w[1]);
	}
	for (i = 0; i < c->nmodels; i++) {
		if (strcmp(c->models[i].alias, w[1]) == 0) {
			return perr(ps, "duplicate model alias '%s' (first on "
			    "line %d)", w[1], c->models[i].line);
		}
	}
	for (mod = 0; mod < 4; mod++) {
		if (strcmp(w[2], modalities[mod]) == 0) {
			break;
		}
	}
	if (mod == 4) {
		return perr(ps, "unknown modality '%s' (text, image, video or "
		    "embeddings)", w[2]);
	}
	if (parse_price(ps, w[3], "input", &in) < 0 ||
	    parse_price(ps, w[4], "output", &out) < 0) {
		return -1;
	}
	for (i = 5; i < nw; i++) {
		slash = strchr(w[i], '/');
		if (slash == NULL || slash == w[i] || slash[1] == '\0' ||
		    strpbrk(w[i], "\"\\")) {
			return perr(ps, "route '%s' is not "
			    "provider/upstream-model", w[i]);
		}
	}
	p = grow(ps, c->models, &ps->cap_models, c->nmodels, sizeof *c->models);
	if (p == NULL) {
		return -1;
	}
	c->models = p;
	m = &c->models[c->nmodels++];
	m->line = ps->line;
	m->modality = (enum conf_modality)mod;
	m->in_nano_usd = in;
	m->out_nano_usd = out;
	/* Family: up to the first digit, trailing '-' dropped
	 * ("gpt-5.2" -> "gpt"); the whole alias if that leaves nothing. */
	fam = strcspn(w[1], "0123456789");
	while (fam > 0 && w[1][fam - 1] == '-') {
		fam--;
	}
	if (fam == 0) {
		fam = strlen(w[1]);
	}
	if ((m->alias = dups(ps, w[1])) == NULL ||
	    (m->family = dupn(ps, w[1], fam)) == NULL ||
	    (m->in_text = dups(ps, w[3])) == NULL ||
	    (m->out_text = dups(ps, w[4])) == NULL) {
		return -1;
	}
	if ((m->routes = calloc(nw - 5, sizeof *m->routes)) == NULL) {
		return perr(ps, "out of memory");
	}
	for (i = 5; i < nw; i++) {
		r = &m->routes[m->nroutes++];
		/* The provider is resolved after the last line: it may be
		 * defined further down. */
		r->provider = SIZE_MAX;
		if ((r->text = dups(ps, w[i])) == NULL ||
		    (r->upstream_model = dups(ps, strchr(w[i], '/') + 1)) ==
		    NULL) {
			return -1;
		}
	}
	if (in == CONF_PRICE_NONE || out == CONF_PRICE_NONE) {
		return pwarn(ps, "model '%s' has no %s price; it is metered, "
		    "never debited", w[1], in != CONF_PRICE_NONE ? "output" :
		    out != CONF_PRICE_NONE ? "input" : "input or output");
	}
	return 0;
}

/* wallet NAME key=sha256:<hex> [key=...]... [overdraft=DECIMAL] */
static int
do_wallet(struct parser *ps, char **w, size_t nw)
{
	struct opt o[] = { { "key", OPT_MULTI, NULL },
	    { "overdraft", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	struct conf_wallet *wl;
	unsigned char hash[32];
	uint64_t overdraft = 0;
	size_t i, j, k, nkeys = 0;
	void *p;

	if (nw < 2 || !valid_name(w[1])) {
		return perr(ps, "wallet needs a NAME (letters, digits, '.', "
		    "'_', '-')");
	}
	for (i = 0; i < c->nwallets; i++) {
		if (strcmp(c->wallets[i].name, w[1]) == 0) {
			return perr(ps, "duplicate wallet '%s' (first on line "
			    "%d)", w[1], c->wallets[i].line);
		}
	}
	if (scan_opts(ps, w, 2, nw, o, 2) < 0) {
		return -1;
	}
	if (o[0].val == NULL) {
		return perr(ps, "wallet '%s' needs at least one "
		    "key=sha256:<hex>", w[1]);
	}
	if (o[1].val && util_parse_fixed(o[1].val, strlen(o[1].val), 9, 9,
	    &overdraft) < 0) {
		return perr(ps, "bad overdraft '%s' (an amount in %s with at "
		    "most 9 decimals)", o[1].val, c->currency);
	}
	for (i = 2; i < nw; i++) {
		nkeys += strncmp(w[i], "key=", 4) == 0;
	}
	p = grow(ps, c->wallets, &ps->cap_wallets, c->nwallets,
	    sizeof *c->wallets);
	if (p == NULL) {
		return -1;
	}
	c->wallets = p;
	wl = &c->wallets[c->nwallets++];
	wl->line = ps->line;
	wl->overdraft_nano = overdraft;
	if ((wl->name = dups(ps, w[1])) == NULL) {
		return -1;
	}
	if ((wl->key_hashes = calloc(nkeys, 32)) == NULL) {
		return perr(ps, "out of memory");
	}
	for (i = 2; i < nw; i++) {
		if (strncmp(w[i], "key=", 4) != 0) {
			continue;
		}
		if (parse_hash(w[i] + 4, hash) < 0) {
			return perr(ps, "a wallet key is written "
			    "key=sha256:<64 hex digits> (see relay key)");
		}
		/* One key, one wallet: otherwise who pays would depend on
		 * the search order. */
		for (j = 0; j < c->nwallets; j++) {
			for (k = 0; k < c->wallets[j].nkeys; k++) {
				if (memcmp(c->wallets[j].key_hashes[k], hash,
				    32) == 0) {
					return perr(ps, "a key of wallet '%s' "
					    "is already a key of wallet '%s' "
					    "(line %d)", w[1],
					    c->wallets[j].name,
					    c->wallets[j].line);
				}
			}
		}
		memcpy(wl->key_hashes[wl->nkeys++], hash, 32);
	}
	return 0;
}

static const struct directive {
	const char *name;
	int (*fn)(struct parser *, char **, size_t);
	int once;		/* may appear on one line only */
} directives[] = {
	{ "listen", do_listen, 0 },
	{ "admin_key", do_admin_key, 1 },
	{ "ledger", do_ledger, 1 },
	{ "currency", do_currency, 1 },
	{ "cooldown", do_cooldown, 1 },
	{ "holds", do_holds, 1 },
	{ "timeouts", do_timeouts, 1 },
	{ "limits", do_limits, 1 },
	{ "ca_file", do_ca_file, 1 },
	{ "provider", do_provider, 0 },
	{ "credential", do_credential, 0 },
	{ "model", do_model, 0 },
	{ "wallet", do_wallet, 0 },
};

/* parser.first has a slot per directive. */
typedef char conf_first_fits[sizeof directives / sizeof directives[0] <=
    sizeof ((struct parser *)0)->first / sizeof (int) ? 1 : -1];

/* Split one line (already NUL-terminated in buf) into words and run its
 * directive. */
static int
do_line(struct parser *ps, char *buf, size_t n)
{
	char *w[CONF_WORDS_MAX];
	size_t i, nw = 0;

	for (i = 0; i < n; i++) {
		if (((unsigned char)buf[i] < 0x20 && buf[i] != '\t') ||
		    buf[i] == 0x7f) {
			return perr(ps, "control character in line");
		}
	}
	for (i = 0; i < n; i++) {
		if (buf[i] == ' ' || buf[i] == '\t') {
			continue;
		}
		/* '#' starts a comment only at the start of a word, so a
		 * value such as a URL fragment may still hold one. */
		if (buf[i] == '#') {
			break;
		}
		if (nw == CONF_WORDS_MAX) {
			return perr(ps, "more than %d words", CONF_WORDS_MAX);
		}
		w[nw++] = buf + i;
		i += strcspn(buf + i, " \t");
		buf[i] = '\0';
	}
	if (nw == 0) {
		return 0;
	}
	for (i = 0; i < sizeof directives / sizeof directives[0]; i++) {
		if (strcmp(w[0], directives[i].name) != 0) {
			continue;
		}
		if (directives[i].once && ps->first[i]) {
			return perr(ps, "duplicate '%s' directive (first on "
			    "line %d)", w[0], ps->first[i]);
		}
		if (ps->first[i] == 0) {
			ps->first[i] = ps->line;
		}
		return directives[i].fn(ps, w, nw);
	}
	return perr(ps, "unknown directive '%s'", w[0]);
}

static int
cmp_model(const void *a, const void *b)
{
	return strcmp(((const struct conf_model *)a)->alias,
	    ((const struct conf_model *)b)->alias);
}

/* Whole-file checks, after the last line. */
static int
finish(struct parser *ps)
{
	struct conf *c = ps->c;
	struct conf_route *r;
	struct conf_listen *l;
	size_t i, j;
	long pi;

	for (i = 0; i < c->nmodels; i++) {
		for (j = 0; j < c->models[i].nroutes; j++) {
			r = &c->models[i].routes[j];
			pi = find_provider(c, r->text, strcspn(r->text, "/"));
			if (pi < 0) {
				ps->line = c->models[i].line;
				return perr(ps, "route '%s' names undefined "
				    "provider '%.*s'", r->text,
				    (int)strcspn(r->text, "/"), r->text);
			}
			r->provider = (size_t)pi;
		}
	}
	if (c->nlistens == 0) {
		ps->line = 0;
		c->listens = calloc(1, sizeof *c->listens);
		if (c->listens == NULL) {
			return perr(ps, "out of memory");
		}
		c->nlistens = 1;
		if ((c->listens[0].host = dups(ps, "127.0.0.1")) == NULL ||
		    (c->listens[0].port = dups(ps, "8080")) == NULL) {
			return -1;
		}
	}
	/* Open mode serves without keys: exposing it beyond this host must
	 * be asked for on the listen line itself. */
	for (i = 0; c->nwallets == 0 && i < c->nlistens; i++) {
		l = &c->listens[i];
		if (!l->open && !is_loopback(l->host)) {
			ps->line = l->line;
			return perr(ps, "open mode (no wallet lines) serves "
			    "loopback only; write open=yes on the listen line "
			    "to accept other addresses");
		}
	}
	if (c->nmodels > 1) {
		qsort(c->models, c->nmodels, sizeof *c->models, cmp_model);
	}
	return 0;
}

static void
set_defaults(struct conf *c)
{
	c->ledger_sync = CONF_SYNC_BATCH;
	memcpy(c->currency, "CNY", 4);
	memcpy(c->currency_lower, "cny", 4);
	c->rate_num = 72;
	c->rate_den = 10;
	c->cooldown_failures = 3;
	c->cooldown_ms = 60000;
	c->hold_max_tokens = 4096;
	c->header_timeout_ms = 10000;
	c->keepalive_timeout_ms = 60000;
	c->connect_timeout_ms = 5000;
	c->first_byte_timeout_ms = 120000;
	c->idle_timeout_ms = 300000;
	c->total_timeout_ms = 600000;
	c->max_body = 32u << 20;
	c->max_header = 16u << 10;
	c->max_conns = 4096;
}

struct conf *
conf_parse(const char *text, size_t len, const char *name, char *err,
    size_t errlen)
{
	struct parser ps;
	char buf[CONF_LINE_MAX + 1];
	const char *p = text, *end = text + len, *nl;
	size_t n;

	memset(&ps, 0, sizeof ps);
	ps.name = name;
	ps.err = err;
	ps.errlen = errlen;
	if (errlen > 0) {
		err[0] = '\0';
	}
	if ((ps.c = calloc(1, sizeof *ps.c)) == NULL) {
		perr(&ps, "out of memory");
		return NULL;
	}
	set_defaults(ps.c);
	if ((ps.c->source = dups(&ps, name)) == NULL ||
	    (ps.c->ledger_path = dups(&ps, "relay-ledger.jsonl")) == NULL) {
		goto fail;
	}
	while (p < end) {
		ps.line++;
		nl = memchr(p, '\n', (size_t)(end - p));
		n = (size_t)((nl ? nl : end) - p);
		/* CRLF files are tolerated; a CR anywhere else is not. */
		if (n > 0 && p[n - 1] == '\r') {
			n--;
		}
		if (n > CONF_LINE_MAX) {
			perr(&ps, "line longer than %d bytes", CONF_LINE_MAX);
			goto fail;
		}
		memcpy(buf, p, n);
		buf[n] = '\0';
		if (do_line(&ps, buf, n) < 0) {
			goto fail;
		}
		p = nl ? nl + 1 : end;
	}
	if (finish(&ps) < 0) {
		goto fail;
	}
	free(ps.credlines);
	return ps.c;
fail:
	memset(buf, 0, sizeof buf);
	free(ps.credlines);
	conf_free(ps.c);
	return NULL;
}

struct conf *
conf_load(const char *path, char *err, size_t errlen)
{
	struct conf *c = NULL;
	char *text = NULL;
	size_t len = 0, cap = 0;
	ssize_t r;
	void *p;
	int fd, e = 0;

	fd = util_open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY, 0);
	if (fd < 0) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 65536;
			if (cap > CONF_FILE_MAX ||
			    (p = realloc(text, cap)) == NULL) {
				e = cap > CONF_FILE_MAX ? EFBIG : ENOMEM;
				break;
			}
			text = p;
		}
		r = read(fd, text + len, cap - len);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			e = r < 0 ? errno : 0;
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	if (e) {
		snprintf(err, errlen, "%s: %s", path, strerror(e));
	} else {
		c = conf_parse(text ? text : "", len, path, err, errlen);
	}
	free(text);
	return c;
}

struct conf *
conf_load_default(char *err, size_t errlen)
{
	return conf_parse(conf_default_text, conf_default_len, "(embedded)",
	    err, errlen);
}

void
conf_free(struct conf *c)
{
	struct conf_provider *pr;
	struct conf_model *m;
	size_t i, j;

	if (c == NULL) {
		return;
	}
	for (i = 0; i < c->nlistens; i++) {
		free(c->listens[i].host);
		free(c->listens[i].port);
		free(c->listens[i].cert_path);
		free(c->listens[i].key_path);
	}
	free(c->listens);
	for (i = 0; i < c->nproviders; i++) {
		pr = &c->providers[i];
		free(pr->name);
		free(pr->base);
		free(pr->host);
		free(pr->port);
		free(pr->host_header);
		free(pr->path);
		for (j = 0; j < pr->nheaders; j++) {
			free(pr->headers[j].name);
			free(pr->headers[j].value);
		}
		free(pr->headers);
		for (j = 0; j < pr->ncreds; j++) {
			wipe(pr->creds[j].secret);
			free(pr->creds[j].secret);
			free(pr->creds[j].label);
			free(pr->creds[j].source);
		}
		free(pr->creds);
	}
	free(c->providers);
	for (i = 0; i < c->nmodels; i++) {
		m = &c->models[i];
		free(m->alias);
		free(m->family);
		free(m->in_text);
		free(m->out_text);
		for (j = 0; j < m->nroutes; j++) {
			free(m->routes[j].text);
			free(m->routes[j].upstream_model);
		}
		free(m->routes);
	}
	free(c->models);
	for (i = 0; i < c->nwallets; i++) {
		free(c->wallets[i].name);
		free(c->wallets[i].key_hashes);
	}
	free(c->wallets);
	for (i = 0; i < c->nwarnings; i++) {
		free(c->warnings[i]);
	}
	free(c->warnings);
	free(c->ledger_path);
	free(c->ca_file);
	free(c->source);
	free(c);
}

const struct conf_model *
conf_find_model(const struct conf *c, const char *alias, size_t n)
{
	size_t lo = 0, hi = c->nmodels, mid, an;
	int r;

	if (n == 0) {
		return NULL;
	}
	/* memcmp then length orders byte strings exactly as the strcmp
	 * used to sort them. */
	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		an = strlen(c->models[mid].alias);
		r = memcmp(alias, c->models[mid].alias, n < an ? n : an);
		if (r == 0) {
			r = n < an ? -1 : n > an;
		}
		if (r == 0) {
			return &c->models[mid];
		}
		if (r < 0) {
			hi = mid;
		} else {
			lo = mid + 1;
		}
	}
	return NULL;
}

long
conf_find_wallet(const struct conf *c, const unsigned char hash[32])
{
	long found = -1, mask;
	size_t i, k;

	/* Every key is compared and the match is selected with a mask, so
	 * the time taken does not depend on which key (if any) matched. */
	for (i = 0; i < c->nwallets; i++) {
		for (k = 0; k < c->wallets[i].nkeys; k++) {
			mask = -(long)util_ct_equal(c->wallets[i].key_hashes[k],
			    hash, 32);
			found = (found & ~mask) | ((long)i & mask);
		}
	}
	return found;
}

int
conf_open_mode(const struct conf *c)
{
	return c->nwallets == 0;
}

const char *
conf_modality_name(enum conf_modality m)
{
	static const char *const names[] = { "text", "image", "video",
	    "embeddings" };

	return (unsigned)m < 4 ? names[m] : "?";
}

const char *
conf_auth_name(enum conf_auth a)
{
	static const char *const names[] = { "bearer", "x-api-key",
	    "api-key", "none" };

	return (unsigned)a < 4 ? names[a] : "?";
}
