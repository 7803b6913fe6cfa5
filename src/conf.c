/* conf: the flat config file (SPEC §2) compiled into a struct conf.
 *
 * The text is read line by line into a bounded stack buffer and split into
 * blank-separated words; each directive has one handler that checks its
 * words and fills the conf (conf_directives.c; this file gives them the
 * parser's tools: errors, warnings, copies, options and values, see
 * conf_int.h). Checks that need the whole file (routes to providers
 * defined later, the open-mode listen rule) run after the last line, and
 * the models are then sorted by alias for conf_find_model().
 *
 * Ownership: every string and array in a conf is owned by it; elements
 * are appended zeroed before they are filled, so conf_free() is the one
 * release site on the error path too. Secrets are read by the credential
 * directive (env:/file:) and never copied into an error or warning
 * message; a secret is wiped when the conf is freed. This module does no
 * network I/O and reads no clock. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "conf_int.h"
#include "util.h"

#define CONF_LINE_MAX 4096
#define CONF_WORDS_MAX 64
#define CONF_FILE_MAX (16u << 20)	/* a config is text, not data */
#define CONF_READ_MAX 65536u		/* bytes one read(2) may add */

/* "FILE:LINE: " (or "FILE: " outside the text), tag, then the message,
 * into out[cap]; a long one is cut. */
static void
vwhere(const struct parser *ps, char *out, size_t cap, const char *tag,
    const char *fmt, va_list ap)
{
	size_t n;

	if (ps->line > 0) {
		util_errf(out, cap, "%s:%d: %s", ps->name, ps->line, tag);
	} else {
		util_errf(out, cap, "%s: %s", ps->name, tag);
	}
	if (out == NULL || cap == 0) {
		return;
	}
	n = strlen(out);
	if (n + 1 < cap) {
		util_verrf(out + n, cap - n, fmt, ap);
	}
}

int
conf_perr(struct parser *ps, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vwhere(ps, ps->err, ps->errlen, "", fmt, ap);
	va_end(ap);
	return -1;
}

void *
conf_grow(struct parser *ps, void *arr, size_t *cap, size_t n, size_t size)
{
	void *p = util_grow(arr, cap, n + 1, size);

	if (p == NULL) {
		conf_perr(ps, "out of memory");
	}
	return p;
}

char *
conf_dupn(struct parser *ps, const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p == NULL) {
		conf_perr(ps, "out of memory");
		return NULL;
	}
	memcpy(p, s, n);
	p[n] = '\0';
	return p;
}

char *
conf_dups(struct parser *ps, const char *s)
{
	return conf_dupn(ps, s, strlen(s));
}

int
conf_pwarn(struct parser *ps, const char *fmt, ...)
{
	struct conf *c = ps->c;
	char msg[512];
	va_list ap;
	void *p;

	va_start(ap, fmt);
	vwhere(ps, msg, sizeof msg, "warning: ", fmt, ap);
	va_end(ap);
	if ((p = conf_grow(ps, c->warnings, &ps->cap_warnings, c->nwarnings,
	    sizeof *c->warnings)) == NULL) {
		return -1;
	}
	c->warnings = p;
	if ((c->warnings[c->nwarnings] = conf_dups(ps, msg)) == NULL) {
		return -1;
	}
	c->nwarnings++;
	return 0;
}

void
conf_free_secret(char *s)
{
	if (s != NULL) {
		util_wipe(s, strlen(s));
		free(s);
	}
}

int
conf_scan_opts(struct parser *ps, char **w, size_t from, size_t nw,
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
			return conf_perr(ps, "word %zu is not an option "
			    "(options are written name=value)", i + 1);
		}
		if (j == no) {
			return conf_perr(ps, "unknown option '%.*s' for %s",
			    (int)len, w[i], w[0]);
		}
		if (o[j].val && o[j].kind != OPT_MULTI) {
			return conf_perr(ps, "option '%s' given twice",
			    o[j].name);
		}
		if (eq && eq[1] == '\0') {
			return conf_perr(ps, "option '%s' needs a value",
			    o[j].name);
		}
		o[j].val = eq ? eq + 1 : "";
	}
	return 0;
}

int
conf_opt_yesno(struct parser *ps, const struct opt *o, int *out)
{
	if (o->val == NULL) {
		return 0;
	}
	if (strcmp(o->val, "yes") == 0 || strcmp(o->val, "no") == 0) {
		*out = o->val[0] == 'y';
		return 0;
	}
	return conf_perr(ps, "%s must be yes or no", o->name);
}

int
conf_opt_duration(struct parser *ps, const struct opt *o, uint64_t *ms)
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
		return conf_perr(ps, "bad duration '%s' for %s (write e.g. "
		    "500ms, 10s or 5m)", s, o->name);
	}
	if (v == 0) {
		return conf_perr(ps, "%s must be more than zero", o->name);
	}
	if (v > CONF_DURATION_MAX_MS / mul) {
		return conf_perr(ps, "%s is longer than a day", o->name);
	}
	*ms = v * mul;
	return 0;
}

int
conf_opt_size(struct parser *ps, const struct opt *o, uint64_t lo,
    uint64_t hi, uint64_t *out)
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
		return conf_perr(ps, "bad size '%s' for %s (write e.g. 4096, "
		    "16k or 32m)", s, o->name);
	}
	v *= mul;
	if (v == 0) {
		return conf_perr(ps, "%s must be more than zero", o->name);
	}
	if (v < lo || v > hi) {
		return conf_perr(ps, "%s must be between %llu and %llu",
		    o->name, (unsigned long long)lo, (unsigned long long)hi);
	}
	*out = v;
	return 0;
}

int
conf_opt_count(struct parser *ps, const struct opt *o, uint64_t lo,
    uint64_t hi, uint64_t *out)
{
	uint64_t v;

	if (o->val == NULL) {
		return 0;
	}
	if (util_parse_u64(o->val, strlen(o->val), &v) < 0 || v < lo ||
	    v > hi) {
		return conf_perr(ps, "%s must be a number from %llu to %llu",
		    o->name, (unsigned long long)lo, (unsigned long long)hi);
	}
	*out = v;
	return 0;
}

int
conf_parse_hash(const char *s, unsigned char out[32])
{
	if (strncmp(s, "sha256:", 7) != 0) {
		return -1;
	}
	return util_unhex32(s + 7, strlen(s + 7), out);
}

int
conf_valid_name(const char *s)
{
	size_t n = strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-");

	return n > 0 && s[n] == '\0';
}

int
conf_is_loopback(const char *host)
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

int
conf_check_readable(struct parser *ps, const char *what, const char *path)
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
		return conf_perr(ps, "cannot read %s '%s': %s", what, path,
		    strerror(e));
	}
	return 0;
}

long
conf_find_provider(const struct conf *c, const char *name, size_t n)
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
			return conf_perr(ps, "control character in line");
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
			return conf_perr(ps, "more than %d words",
			    CONF_WORDS_MAX);
		}
		w[nw++] = buf + i;
		i += strcspn(buf + i, " \t");
		buf[i] = '\0';
	}
	if (nw == 0) {
		return 0;
	}
	for (i = 0; i < conf_ndirectives; i++) {
		if (strcmp(w[0], conf_directives[i].name) != 0) {
			continue;
		}
		if (conf_directives[i].once && ps->first[i]) {
			return conf_perr(ps, "duplicate '%s' directive (first "
			    "on line %d)", w[0], ps->first[i]);
		}
		if (ps->first[i] == 0) {
			ps->first[i] = ps->line;
		}
		return conf_directives[i].fn(ps, w, nw);
	}
	return conf_perr(ps, "unknown directive '%s'", w[0]);
}

/* Move m[root] down the max-heap m[0..n) (by alias) to its place. */
static void
sift_model(struct conf_model *m, size_t root, size_t n)
{
	struct conf_model t;
	size_t child;

	while ((child = 2 * root + 1) < n) {
		if (child + 1 < n
		    && strcmp(m[child].alias, m[child + 1].alias) < 0) {
			child++;
		}
		if (strcmp(m[root].alias, m[child].alias) >= 0) {
			return;
		}
		t = m[root];
		m[root] = m[child];
		m[child] = t;
		root = child;
	}
}

/* Sort the models by alias (strcmp order) for conf_find_model: a heap
 * sort, O(n log n) without extra memory, in a tenth of the code of libc's
 * qsort (which nothing else in the relay needed: 2 KiB). Aliases are
 * unique, so stability does not matter. */
static void
sort_models(struct conf_model *m, size_t n)
{
	struct conf_model t;
	size_t i;

	for (i = n / 2; i-- > 0;) {
		sift_model(m, i, n);
	}
	for (i = n; i-- > 1;) {
		t = m[0];
		m[0] = m[i];
		m[i] = t;
		sift_model(m, 0, i);
	}
}

/* The line of the first use of directive name. */
static int
directive_line(const struct parser *ps, const char *name)
{
	size_t i;

	for (i = 0; i < conf_ndirectives; i++) {
		if (strcmp(conf_directives[i].name, name) == 0) {
			return ps->first[i];
		}
	}
	return 0;
}

/* One model per provider for calls that name none (SPEC §9): its one
 * route reaches the provider with the path as the client gave it; and
 * the passthrough provider by name. */
static int
finish_direct(struct parser *ps)
{
	struct conf *c = ps->c;
	struct conf_model *m;
	long pi;
	size_t i;

	c->passthrough = SIZE_MAX;
	if (c->passthrough_name != NULL) {
		pi = conf_find_provider(c, c->passthrough_name,
		    strlen(c->passthrough_name));
		if (pi < 0) {
			ps->line = directive_line(ps, "passthrough");
			return conf_perr(ps, "passthrough names undefined "
			    "provider '%s'", c->passthrough_name);
		}
		c->passthrough = (size_t)pi;
	}
	if (c->nproviders == 0) {
		return 0;
	}
	if ((c->direct = calloc(c->nproviders, sizeof *c->direct)) == NULL) {
		return conf_perr(ps, "out of memory");
	}
	for (i = 0; i < c->nproviders; i++) {
		m = &c->direct[i];
		m->direct = 1;
		m->in_nano_usd = m->out_nano_usd = CONF_PRICE_NONE;
		m->cached_nano_usd = m->cache_write_nano_usd = CONF_PRICE_NONE;
		if ((m->routes = calloc(1, sizeof *m->routes)) == NULL) {
			return conf_perr(ps, "out of memory");
		}
		m->nroutes = 1;
		m->routes[0].provider = i;
		if ((m->alias = conf_dups(ps, c->providers[i].name)) == NULL ||
		    (m->family = conf_dups(ps, "")) == NULL ||
		    (m->in_text = conf_dups(ps, "-")) == NULL ||
		    (m->out_text = conf_dups(ps, "-")) == NULL ||
		    (m->routes[0].upstream_model = conf_dups(ps, "")) == NULL ||
		    (m->routes[0].text = conf_dups(ps, c->providers[i].name)) ==
		    NULL) {
			return -1;
		}
	}
	return 0;
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
			pi = conf_find_provider(c, r->text,
			    strcspn(r->text, "/"));
			if (pi < 0) {
				ps->line = c->models[i].line;
				return conf_perr(ps, "route '%s' names "
				    "undefined provider '%.*s'", r->text,
				    (int)strcspn(r->text, "/"), r->text);
			}
			r->provider = (size_t)pi;
		}
	}
	if (c->nlistens == 0) {
		ps->line = 0;
		c->listens = calloc(1, sizeof *c->listens);
		if (c->listens == NULL) {
			return conf_perr(ps, "out of memory");
		}
		c->nlistens = 1;
		if ((c->listens[0].host = conf_dups(ps, "127.0.0.1")) == NULL ||
		    (c->listens[0].port = conf_dups(ps, "8080")) == NULL) {
			return -1;
		}
	}
	/* Open mode serves without keys: exposing it beyond this host must
	 * be asked for on the listen line itself. */
	for (i = 0; c->nwallets == 0 && i < c->nlistens; i++) {
		l = &c->listens[i];
		if (!l->open && !conf_is_loopback(l->host)) {
			ps->line = l->line;
			return conf_perr(ps, "open mode (no wallet lines) "
			    "serves loopback only; write open=yes on the "
			    "listen line to accept other addresses");
		}
	}
	sort_models(c->models, c->nmodels);
	if (conf_fleet_finish(ps) < 0) {
		return -1;
	}
	return finish_direct(ps);
}

/* What a config that does not say otherwise gets (SPEC §2); the strings
 * (source, ledger_path) are set by conf_parse. */
static const struct conf defaults = {
	.ledger_sync = CONF_SYNC_BATCH,
	.currency = "CNY",
	.currency_lower = "cny",
	.rate_num = 72,
	.rate_den = 10,
	.cooldown_failures = 3,
	.cooldown_ms = 60000,
	.cooldown_max_ms = 300000,
	.hold_max_tokens = 4096,
	.header_timeout_ms = 10000,
	.keepalive_timeout_ms = 60000,
	.connect_timeout_ms = 5000,
	.first_byte_timeout_ms = 120000,
	.idle_timeout_ms = 300000,
	.total_timeout_ms = 600000,
	.body_timeout_ms = 60000,
	.affinity_days = 30,
	.affinity_max = 100000,
	.max_body = 32u << 20,
	.max_header = 16u << 10,
	.max_conns = 4096,
	.max_conns_per_ip = 256
};

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
	if ((ps.c = malloc(sizeof *ps.c)) == NULL) {
		conf_perr(&ps, "out of memory");
		return NULL;
	}
	*ps.c = defaults;
	if ((ps.c->source = conf_dups(&ps, name)) == NULL ||
	    (ps.c->ledger_path = conf_dups(&ps, "relay-ledger.jsonl")) ==
	    NULL) {
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
			conf_perr(&ps, "line longer than %d bytes",
			    CONF_LINE_MAX);
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
	free(ps.prov);
	return ps.c;
fail:
	memset(buf, 0, sizeof buf);
	free(ps.prov);
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
		util_errf(err, errlen, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		/* Room for another CONF_READ_MAX bytes: the buffer doubles
		 * from 64 KiB, and a full CONF_FILE_MAX is too large. */
		if (len == cap) {
			if (len >= CONF_FILE_MAX) {
				e = EFBIG;
				break;
			}
			p = util_grow(text, &cap, len + CONF_READ_MAX, 1);
			if (p == NULL) {
				e = ENOMEM;
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
		util_errf(err, errlen, "%s: %s", path, strerror(e));
	} else {
		c = conf_parse(text ? text : "", len, path, err, errlen);
	}
	free(text);
	return c;
}

/* build/default_conf.c, written by tools/lzpack. */
extern const unsigned char conf_default_lz[];
extern const size_t conf_default_lz_len, conf_default_len;

char *
conf_default_text(size_t *len)
{
	char *text = malloc(conf_default_len + 1);

	if (text == NULL || util_unlz(conf_default_lz, conf_default_lz_len,
	    (unsigned char *)text, conf_default_len) < 0) {
		free(text);
		return NULL;
	}
	text[conf_default_len] = 0;
	*len = conf_default_len;
	return text;
}

struct conf *
conf_load_default(char *err, size_t errlen)
{
	struct conf *c = NULL;
	size_t len;
	char *text = conf_default_text(&len);

	if (text == NULL) {
		util_errf(err, errlen, "(embedded): out of memory");
		return NULL;
	}
	c = conf_parse(text, len, "(embedded)", err, errlen);
	free(text);
	return c;
}

static void
free_texts(char *const *text, size_t n)
{
	while (n > 0) {
		free(text[--n]);
	}
}

static void
free_provider(struct conf_provider *pr)
{
	char *text[] = { pr->name, pr->base, pr->host, pr->port,
	    pr->host_header, pr->path };
	size_t j;

	free_texts(text, sizeof text / sizeof text[0]);
	for (j = 0; j < pr->nheaders; j++) {
		free(pr->headers[j].name);
		free(pr->headers[j].value);
	}
	free(pr->headers);
	for (j = 0; j < pr->ncreds; j++) {
		conf_free_secret(pr->creds[j].secret);
		free(pr->creds[j].label);
		free(pr->creds[j].source);
	}
	free(pr->creds);
}

static void
free_model(struct conf_model *m)
{
	char *text[] = { m->alias, m->family, m->in_text, m->out_text,
	    m->cached_text, m->cache_write_text };
	size_t j;

	for (j = 0; m->routes != NULL && j < m->nroutes; j++) {
		free(m->routes[j].text);
		free(m->routes[j].upstream_model);
	}
	free(m->routes);
	free_texts(text, sizeof text / sizeof text[0]);
}

void
conf_free(struct conf *c)
{
	size_t i;

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
		free_provider(&c->providers[i]);
	}
	free(c->providers);
	for (i = 0; i < c->nmodels; i++) {
		free_model(&c->models[i]);
	}
	free(c->models);
	for (i = 0; c->direct != NULL && i < c->nproviders; i++) {
		free_model(&c->direct[i]);
	}
	free(c->direct);
	free(c->passthrough_name);
	free(c->access_log);
	for (i = 0; i < c->nwallets; i++) {
		free(c->wallets[i].name);
		free(c->wallets[i].key_hashes);
	}
	free(c->wallets);
	conf_fleet_free(c);
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

size_t
conf_cred_index(const struct conf_provider *p, const char *label)
{
	size_t i;

	for (i = 0; i < p->ncreds; i++) {
		if (strcmp(p->creds[i].label, label) == 0) {
			return i;
		}
	}
	return SIZE_MAX;
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
