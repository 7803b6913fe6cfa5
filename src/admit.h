#ifndef RELAY_ADMIT_H
#define RELAY_ADMIT_H
/* admit: who may make a request, from its head alone (SPEC §3, §10): the
 * bearer token it carries, the admin key, and open mode's rule that only
 * this machine may use a relay without wallets. The client keys' wallets
 * are looked up by front.c, which keeps a connection's last key. */
#include <stdint.h>

#include "util.h"

struct conf;
struct http_request;
struct server_conn;

/* The token of an "Authorization: Bearer <token>" field (trimmed) into
 * *key. Returns 1 when the field has that scheme, else 0. */
int admit_bearer(const struct http_request *h, struct view *key);

/* The admin API (SPEC §9): 0 when the request carries the config's
 * admin_key as a bearer token, else -1 after answering 403 (no admin_key
 * in the config) or 401 (missing or wrong). */
int admit_admin(struct server_conn *sc, const struct conf *c,
    uint64_t now_ms);

/* Open mode serves whoever reaches it, so only this machine may, and not
 * through a browser on someone else's behalf: a Host that is not
 * loopback (localhost, *.localhost, 127.0.0.0/8, [::1], a port allowed)
 * is DNS rebinding; an Origin other than the relay's own, or a
 * Sec-Fetch-Site of cross-site or same-site, is another site's page.
 * Returns why the request is refused (for a 403), or NULL. */
const char *admit_open_mode(const struct http_request *h);

#endif
