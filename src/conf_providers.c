/* conf_providers: the provider and credential directives of the config
 * file (SPEC §2): where an upstream is (its base URL, fixed headers, TLS
 * policy) and the secrets to reach it with (env:NAME or file:PATH, read
 * here and never copied into a message; nor is a word that may be a
 * misplaced one). The other directives are in conf_directives.c. */
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

#define CONF_SECRET_MAX 8192		/* first line of a file: secret */

/* base=http[s]://host[:port][/path] into the provider's fields. */
static int
parse_base(struct parser *ps, struct conf_provider *pr, const char *s)
{
	const char *a, *end;
	char host[256], pbuf[8];
	size_t n;
	uint64_t port = 0;

	if (strncasecmp(s, "https://", 8) == 0) {
		pr->https = 1;
		a = s + 8;
	} else if (strncasecmp(s, "http://", 7) == 0) {
		a = s + 7;
	} else {
		return conf_perr(ps, "base must be an http:// or https:// URL");
	}
	end = a + strcspn(a, "/");
	if (memchr(a, '@', (size_t)(end - a))) {
		/* Never echoed: user:password@ is a secret. */
		return conf_perr(ps, "base must not hold user:password@ (write "
		    "a credential line)");
	}
	if (strpbrk(a, "?#")) {
		return conf_perr(ps, "base must not have a query or fragment");
	}
	if (conf_host_port(a, end, host, sizeof(host), &port) < 0) {
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
	if ((pr->host = conf_dups(ps, host)) == NULL ||
	    (pr->port = conf_dups(ps, pbuf)) == NULL ||
	    (pr->host_header = conf_dupn(ps, a, (size_t)(end - a))) == NULL ||
	    (pr->path = conf_dupn(ps, end, n)) == NULL) {
		return -1;
	}
	return 0;
bad:
	return conf_perr(ps, "bad host or port in base '%s'", s);
}

/* header=Name:Value on a provider line, into the next slot of
 * pr->headers (allocated for all of the line's headers). */
static int
add_header(struct parser *ps, struct conf_provider *pr, const char *s)
{
	static const char *const refused[] = { "host", "content-length",
	    "transfer-encoding", "connection", "authorization", "x-api-key",
	    "api-key" };
	struct conf_header *hd;
	const char *colon = strchr(s, ':');
	size_t n, i;

	n = colon ? (size_t)(colon - s) : 0;
	if (n == 0 || strspn(s, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-.^_`|~") != n) {
		return conf_perr(ps, "header is written header=Name:Value");
	}
	/* Framing headers belong to the relay, auth headers to the
	 * credential lines (secrets are never written inline). */
	for (i = 0; i < sizeof refused / sizeof refused[0]; i++) {
		if (strlen(refused[i]) == n &&
		    strncasecmp(s, refused[i], n) == 0) {
			return conf_perr(ps, "header '%.*s' cannot be set with "
			    "header=", (int)n, s);
		}
	}
	hd = &pr->headers[pr->nheaders++];
	if ((hd->name = conf_dupn(ps, s, n)) == NULL ||
	    (hd->value = conf_dups(ps, colon + 1)) == NULL) {
		return -1;
	}
	return 0;
}

/* provider NAME base=URL auth=... [header=Name:Value]... [insecure=yes] */
int
conf_do_provider(struct parser *ps, char **w, size_t nw)
{
	static const char *const auths[] = { "bearer", "x-api-key",
	    "api-key", "none" };
	struct opt o[] = { { "base", OPT_ONE, NULL }, { "auth", OPT_ONE, NULL },
	    { "header", OPT_MULTI, NULL }, { "insecure", OPT_ONE, NULL } };
	struct conf *c = ps->c;
	struct conf_provider *pr;
	size_t i, auth = 0, nh = 0;
	long dup;
	void *p;

	if (nw < 2 || !conf_valid_name(w[1])) {
		return conf_perr(ps, "provider needs a NAME (letters, digits, "
		    "'.', '_', '-')");
	}
	dup = conf_find_provider(c, w[1], strlen(w[1]));
	if (dup >= 0) {
		return conf_perr(ps, "duplicate provider '%s' (first on line "
		    "%d)", w[1], c->providers[dup].line);
	}
	if (conf_scan_opts(ps, w, 2, nw, o, 4) < 0) {
		return -1;
	}
	if (o[0].val == NULL) {
		return conf_perr(ps, "provider '%s' needs base=URL", w[1]);
	}
	for (; o[1].val && auth < 4; auth++) {
		if (strcmp(o[1].val, auths[auth]) == 0) {
			break;
		}
	}
	if (auth == 4) {
		return conf_perr(ps, "auth must be bearer, x-api-key, api-key "
		    "or none");
	}
	if ((p = conf_grow(ps, ps->prov, &ps->cap_prov, c->nproviders,
	    sizeof *ps->prov)) == NULL) {
		return -1;
	}
	ps->prov = p;
	if (CONF_PUSH(ps, c->providers, &ps->cap_providers, c->nproviders, pr) < 0) {
		return -1;
	}
	pr->line = ps->line;
	pr->auth = (enum conf_auth)auth;
	if (conf_opt_yesno(ps, &o[3], &pr->insecure) < 0 ||
	    (pr->name = conf_dups(ps, w[1])) == NULL ||
	    (pr->base = conf_dups(ps, o[0].val)) == NULL ||
	    parse_base(ps, pr, o[0].val) < 0) {
		return -1;
	}
	for (i = 2; i < nw; i++) {
		nh += strncmp(w[i], "header=", 7) == 0;
	}
	if (nh > 0 && (pr->headers = calloc(nh, sizeof *pr->headers)) ==
	    NULL) {
		return conf_perr(ps, "out of memory");
	}
	for (i = 2; i < nw; i++) {
		if (strncmp(w[i], "header=", 7) == 0 &&
		    add_header(ps, pr, w[i] + 7) < 0) {
			return -1;
		}
	}
	/* Plain http would carry the credential in clear over the
	 * network; on loopback it never leaves the host. */
	if (!pr->https && !pr->insecure && !conf_is_loopback(pr->host)) {
		return conf_perr(ps, "plain http to '%s' is only allowed for "
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
		return conf_perr(ps, "cannot read secret file '%s': %s", path,
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
		conf_perr(ps, "cannot read secret file '%s': %s", path,
		    strerror(e));
	} else if (nl == NULL && n == sizeof buf) {
		conf_perr(ps, "secret file '%s' has a first line over %d bytes",
		    path, CONF_SECRET_MAX);
	} else if (n == 0) {
		conf_perr(ps, "secret file '%s' is empty", path);
	} else if (!clean_secret(buf, n)) {
		conf_perr(ps, "secret file '%s' holds a control character",
		    path);
	} else if ((*out = conf_dupn(ps, buf, n)) != NULL) {
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

int
conf_secret(struct parser *ps, const char *ref, const char *usage,
    char **out)
{
	const char *v;

	/* ref is not echoed in any message: it may be the secret. */
	if (strncmp(ref, "env:", 4) == 0 && valid_env_name(ref + 4)) {
		v = getenv(ref + 4);
		if (v == NULL || v[0] == '\0') {
			return 1;
		}
		if (!clean_secret(v, strlen(v))) {
			return conf_perr(ps, "environment variable %s holds a "
			    "control character", ref + 4);
		}
		return (*out = conf_dups(ps, v)) != NULL ? 0 : -1;
	}
	if (strncmp(ref, "file:", 5) == 0 && ref[5] != '\0') {
		return read_secret(ps, ref + 5, out);
	}
	return conf_perr(ps, "%s", usage);
}

/* credential PROVIDER env:NAME|file:PATH */
int
conf_do_credential(struct parser *ps, char **w, size_t nw)
{
	struct conf *c = ps->c;
	struct conf_provider *pr;
	struct conf_cred *cr;
	char *secret = NULL, label[128];
	long pi;
	void *p;
	int k;

	/* w[2] is not echoed in any message here: it may be the secret. */
	if (nw != 3) {
		return conf_perr(ps, "credential is written credential "
		    "PROVIDER env:NAME or file:PATH");
	}
	pi = conf_find_provider(c, w[1], strlen(w[1]));
	if (pi < 0) {
		return conf_perr(ps, "credential for undefined provider '%s'",
		    w[1]);
	}
	pr = &c->providers[pi];
	ps->prov[pi].credlines++;
	if ((k = conf_secret(ps, w[2], "secrets are written "
	    "env:NAME or file:PATH", &secret)) != 0) {
		return k < 0 ? -1 : conf_pwarn(ps, "environment variable %s "
		    "is not set; credential skipped", w[2] + 4);
	}
	p = util_grow(pr->creds, &ps->prov[pi].cap_creds, pr->ncreds + 1,
	    sizeof *pr->creds);
	if (p == NULL) {
		conf_free_secret(secret);
		return conf_perr(ps, "out of memory");
	}
	pr->creds = p;
	cr = &pr->creds[pr->ncreds++];
	cr->secret = secret;
	cr->line = ps->line;
	snprintf(label, sizeof label, "%s#%u", pr->name,
	    ps->prov[pi].credlines);
	if ((cr->label = conf_dups(ps, label)) == NULL ||
	    (cr->source = conf_dups(ps, w[2])) == NULL) {
		return -1;
	}
	return 0;
}

int
conf_host_port(const char *a, const char *end, char *host, size_t cap,
    uint64_t *port)
{
	const char *h, *after;
	unsigned char addr[16];
	size_t hn;

	if (a[0] == '[') {
		h = a + 1;
		after = memchr(a, ']', (size_t)(end - a));
		hn = after != NULL ? (size_t)(after - h) : 0;
		after = after != NULL ? after + 1 : a;
	} else {
		h = a;
		hn = strcspn(a, ":/");
		after = a + hn;
	}
	if (hn == 0 || hn >= cap) {
		return -1;
	}
	memcpy(host, h, hn);
	host[hn] = '\0';
	if (a[0] == '[' ? inet_pton(AF_INET6, host, addr) != 1 :
	    strspn(host, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_") != hn) {
		return -1;
	}
	if (after < end && (*after != ':' || util_parse_u64(after + 1,
	    (size_t)(end - after - 1), port) < 0 || *port == 0 ||
	    *port > 65535)) {
		return -1;
	}
	return 0;
}
