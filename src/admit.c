/* admit: who may make a request (see admit.h). */
#include <string.h>

#include "admit.h"
#include "conf.h"
#include "http.h"
#include "rewrite.h"
#include "server.h"
#include "util.h"

int
admit_bearer(const struct http_request *h, struct view *key)
{
	if (h->authorization.n <= 7 ||
	    !util_view_ieq((struct view){ h->authorization.p, 7 },
	    "Bearer ")) {
		return 0;
	}
	key->p = h->authorization.p + 7;
	key->n = h->authorization.n - 7;
	*key = util_view_trim(*key);
	return 1;
}

int
admit_admin(struct server_conn *sc, const struct conf *c, uint64_t now_ms)
{
	unsigned char hash[32];
	struct view key;

	if (!c->has_admin_key) {
		server_error(sc, 403, "forbidden", "the admin API is off: set "
		    "admin_key in the config", now_ms);
		return -1;
	}
	if (!admit_bearer(&sc->req.head, &key)) {
		server_error(sc, 401, "invalid_api_key", "missing admin key",
		    now_ms);
		return -1;
	}
	util_sha256(key.p, key.n, hash);
	if (!util_ct_equal(hash, c->admin_key_hash, 32)) {
		server_error(sc, 401, "invalid_api_key", "wrong admin key",
		    now_ms);
		return -1;
	}
	return 0;
}

/* 1 when host[0..n) names this machine's loopback: localhost (and
 * *.localhost, RFC 6761), 127.0.0.0/8, [::1]; a port may follow. */
static int
loopback_host(struct view h)
{
	size_t n = h.n, i, dots = 0;

	if (n > 0 && h.p[0] == '[') {
		return n >= 5 && memcmp(h.p, "[::1]", 5) == 0 &&
		    (n == 5 || h.p[5] == ':');
	}
	for (i = 0; i < n && h.p[i] != ':'; i++) {
	}
	n = i;
	if (n > 0 && h.p[n - 1] == '.') {
		n--;	/* a fully qualified "localhost." */
	}
	if ((n == 9 || (n > 9 && h.p[n - 10] == '.')) &&
	    util_mem_ieq(h.p + n - 9, "localhost", 9)) {
		return 1;
	}
	if (n < 7 || memcmp(h.p, "127.", 4) != 0) {
		return 0;
	}
	for (i = 0; i < n; i++) {
		if (h.p[i] == '.') {
			dots++;
		} else if (h.p[i] < '0' || h.p[i] > '9') {
			return 0;
		}
	}
	return dots == 3;
}

const char *
admit_open_mode(const struct http_request *h)
{
	struct view origin = rewrite_find_header(h->headers, h->nheaders,
	    "origin");
	struct view site = rewrite_find_header(h->headers, h->nheaders,
	    "sec-fetch-site");
	size_t k;

	if (h->host.n > 0 && !loopback_host(h->host)) {
		return "open mode (no wallet in the config) serves only "
		    "loopback host names; this Host is not one";
	}
	if (VIEW_IEQ(site, "cross-site") || VIEW_IEQ(site, "same-site")) {
		return "open mode refuses requests a browser makes for another "
		    "site";
	}
	if (origin.n == 0) {
		return NULL;
	}
	k = origin.n > 8 && util_mem_ieq(origin.p, "https://", 8) ? 8 :
	    origin.n > 7 && util_mem_ieq(origin.p, "http://", 7) ? 7 : 0;
	if (k == 0 || origin.n - k != h->host.n ||
	    !util_mem_ieq(origin.p + k, h->host.p, h->host.n)) {
		return "open mode refuses cross-origin requests (Origin is "
		    "not this relay)";
	}
	return NULL;
}
