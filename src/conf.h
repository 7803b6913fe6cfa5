#ifndef RELAY_CONF_H
#define RELAY_CONF_H
/* The flat config file (SPEC §2) compiled into an immutable struct conf.
 * Parsing is pure apart from reading env:/file: secrets and checking that
 * ca_file/cert/key files are readable. Every error is "FILE:LINE: message".
 * One conf_free() releases everything a conf owns. */
#include <stddef.h>
#include <stdint.h>

#define CONF_PRICE_NONE UINT64_MAX /* a '-' price: metered, not debited */

enum conf_auth {
	CONF_AUTH_BEARER,	/* Authorization: Bearer <secret> */
	CONF_AUTH_X_API_KEY,	/* x-api-key: <secret> */
	CONF_AUTH_API_KEY,	/* api-key: <secret> (Azure) */
	CONF_AUTH_NONE
};

enum conf_modality {
	CONF_TEXT,
	CONF_IMAGE,
	CONF_VIDEO,
	CONF_EMBEDDINGS
};

enum conf_sync {
	CONF_SYNC_ALWAYS,
	CONF_SYNC_BATCH,
	CONF_SYNC_NONE
};

struct conf_listen {
	char *host;		/* owned; "0.0.0.0", "127.0.0.1", "::1" (no brackets) */
	char *port;		/* owned; decimal, "0" means pick any */
	int tls;		/* `tls` word present */
	char *cert_path;	/* owned or NULL */
	char *key_path;		/* owned or NULL */
	int open;		/* open=yes */
	int line;
};

struct conf_header {
	char *name;		/* owned */
	char *value;		/* owned */
};

struct conf_cred {
	char *label;		/* owned; "<provider>#<n>", n from 1 in file order */
	char *secret;		/* owned; the resolved value, never logged */
	char *source;		/* owned; "env:NAME" or "file:PATH", for display */
	int line;
	size_t metrics;		/* its series in metrics.c, set by
				 * metrics_config() (not parsed) */
};

struct conf_provider {
	char *name;		/* owned */
	char *base;		/* owned; as written, e.g. "https://api.openai.com/v1" */
	int https;		/* scheme is https */
	char *host;		/* owned; host name or address, no brackets */
	char *port;		/* owned; explicit port or "443"/"80" */
	char *host_header;	/* owned; value for the Host header ("host[:port]") */
	char *path;		/* owned; path part of base without trailing '/',
				 * may be "" */
	enum conf_auth auth;
	struct conf_header *headers;	/* owned array; header=Name:Value */
	size_t nheaders;
	int insecure;		/* insecure=yes */
	struct conf_cred *creds;	/* owned array, file order */
	size_t ncreds;
	int line;
	size_t metrics;		/* series of its attempts without a
				 * credential (auth=none): metrics_config() */
};

struct conf_route {
	size_t provider;	/* index into conf.providers */
	char *upstream_model;	/* owned; everything after the first '/' */
	char *text;		/* owned; the route as written "provider/model" */
};

struct conf_model {
	char *alias;		/* owned */
	char *family;		/* owned; alias up to its first digit, trailing '-' dropped */
	enum conf_modality modality;
	uint64_t in_nano_usd;	/* nano-USD per input token, or CONF_PRICE_NONE */
	uint64_t out_nano_usd;	/* nano-USD per output token, or CONF_PRICE_NONE */
	char *in_text;		/* owned; input price as written ("0.140", "-") */
	char *out_text;		/* owned; output price as written */
	uint64_t cached_nano_usd;	/* cache reads: cached=, else the input
					 * price */
	uint64_t cache_write_nano_usd;	/* cache writes: cache_write=, else the
					 * input price */
	char *cached_text;	/* owned; cached= as written, or NULL */
	char *cache_write_text;	/* owned; cache_write= as written, or NULL */
	struct conf_route *routes;	/* owned array, priority order */
	size_t nroutes;
	int line;
	int direct;		/* one of conf.direct: a provider reached
				 * without a model (no price, no catalog) */
	size_t metrics;		/* its series in metrics.c, set by
				 * metrics_config() (not parsed) */
};

struct conf_wallet {
	char *name;		/* owned */
	unsigned char (*key_hashes)[32];	/* owned array of SHA-256 of client keys */
	size_t nkeys;
	uint64_t overdraft_nano;	/* wallet-currency nano-units */
	/* Limits (SPEC §12); 0 is no limit. */
	uint64_t rpm;		/* requests admitted in any 60 s */
	uint64_t tpm;		/* tokens in any 60 s: input and output of
				 * settled requests, the estimate of open
				 * holds until they settle */
	uint64_t max_streams;	/* streamed requests open at once */
	uint64_t budget_day_nano;	/* charged per UTC day plus open holds,
					 * wallet-currency nano-units */
	int line;
};

/* store redis://HOST:PORT[/DB] [password=...] [prefix=...] [timeout=...]:
 * the shared store of a fleet (SPEC §12). */
struct conf_store {
	char *url;		/* owned; as written (no password in it) */
	char *host;		/* owned; address or name, no brackets */
	char *port;		/* owned; decimal */
	unsigned db;		/* SELECT db after connecting (0: none) */
	char *password;		/* owned secret (wiped), or NULL: no AUTH */
	char *source;		/* owned; "env:NAME" or "file:PATH", or NULL */
	char *prefix;		/* owned; key prefix ("relay:") */
	uint64_t timeout_ms;	/* a command's reply within (3 s) */
	int line;
};

struct conf {
	char *source;		/* owned; FILE as given, or "(embedded)" */

	struct conf_listen *listens;	/* owned; default one 127.0.0.1:8080 */
	size_t nlistens;

	int has_admin_key;
	unsigned char admin_key_hash[32];

	char *ledger_path;	/* owned; default "relay-ledger.jsonl" */
	enum conf_sync ledger_sync;	/* default batch */

	char currency[8];	/* upper-case ISO code, default "CNY" */
	char currency_lower[8];	/* lower-case, for the ledger field name */
	uint64_t rate_num;	/* wallet currency per USD = rate_num / rate_den */
	uint64_t rate_den;	/* a power of ten; default rate 7.2 = 72/10 */

	unsigned cooldown_failures;	/* default 3 */
	uint64_t cooldown_ms;		/* default 60000 */
	uint64_t cooldown_max_ms;	/* cooldown max=: an upstream
					 * Retry-After stretches a cooldown to
					 * at most this (default 300 s) */
	uint64_t hold_max_tokens;	/* default 4096 */

	uint64_t header_timeout_ms;	/* default 10 s */
	uint64_t keepalive_timeout_ms;	/* default 60 s */
	uint64_t connect_timeout_ms;	/* default 5 s */
	uint64_t first_byte_timeout_ms;	/* default 120 s */
	uint64_t idle_timeout_ms;	/* default 300 s */
	uint64_t total_timeout_ms;	/* default 600 s */
	uint64_t body_timeout_ms;	/* default 60 s: a request body must
					 * arrive whole within it */

	uint64_t max_body;	/* bytes, default 32 MiB */
	uint64_t max_header;	/* bytes, default 16 KiB */
	uint64_t max_conns;	/* default 4096 */
	uint64_t max_conns_per_ip;	/* default 256 */
	int disconnect_drain;	/* disconnect drain: a client that hangs up
				 * mid-answer leaves the upstream read to its
				 * end for its usage (default close) */
	int metrics_admin;	/* metrics auth=admin: /metrics needs the
				 * admin key */
	char *access_log;	/* owned; access_log PATH|stderr|off as
				 * written, NULL when not set (off) */

	char *ca_file;		/* owned or NULL */

	struct conf_provider *providers;	/* owned array */
	size_t nproviders;
	struct conf_model *models;	/* owned array, sorted by alias */
	size_t nmodels;
	struct conf_model *direct;	/* owned, one per provider: its one
					 * route reaches the provider as is,
					 * for calls that name no model
					 * (objects, passthrough; SPEC §9) */
	size_t passthrough;	/* passthrough PROVIDER: where calls without
				 * a model go when no recorded object
				 * decides; SIZE_MAX when not set */
	char *passthrough_name;	/* owned; as written, until finish() */
	uint64_t affinity_days;	/* affinity days=: objects are forgotten
				 * this long after their creation (30) */
	uint64_t affinity_max;	/* affinity max=: at most this many kept
				 * (100000); the oldest settled go first */
	struct conf_wallet *wallets;	/* owned array; none means open mode */
	size_t nwallets;
	struct conf_store *store;	/* owned, or NULL: everything in the
					 * process */
	char *node;		/* owned; node NAME, or NULL (with a store:
				 * the host name) */

	char **warnings;	/* owned; "FILE:LINE: warning: ..." lines */
	size_t nwarnings;
};

/* Test hook (the relay reads a file with conf_load or the embedded text
 * with conf_load_default, both through this; the tests and the fuzz
 * target parse text): parse config text (len bytes, need not be
 * NUL-terminated). name is the FILE used in messages. Returns a new conf,
 * or NULL with "FILE:LINE: message" in err. Reads env:/file: secrets. */
struct conf *conf_parse(const char *text, size_t len, const char *name,
    char *err, size_t errlen);

/* Read path and conf_parse() it. A read failure is reported as
 * "FILE: <strerror>". */
struct conf *conf_load(const char *path, char *err, size_t errlen);

/* The config compiled into the binary (configs/relay.conf). */
struct conf *conf_load_default(char *err, size_t errlen);

void conf_free(struct conf *c);

/* The model with this alias (n bytes), or NULL. Binary search. */
const struct conf_model *conf_find_model(const struct conf *c,
    const char *alias, size_t n);

/* Index of p's credential labelled label ("openai#2"), or SIZE_MAX. */
size_t conf_cred_index(const struct conf_provider *p, const char *label);

/* Index of the wallet holding a key whose SHA-256 is hash, or -1. Compares
 * every key in constant time so timing says nothing about which matched. */
long conf_find_wallet(const struct conf *c, const unsigned char hash[32]);

/* 1 when the config has no wallet (open mode, SPEC §2). */
int conf_open_mode(const struct conf *c);

/* Fixed strings for enums. */
const char *conf_modality_name(enum conf_modality m);
const char *conf_auth_name(enum conf_auth a);

/* Test hook (conf_load_default unpacks it itself; test_conf compares it
 * with configs/relay.conf): the embedded default config, LZ-packed at
 * build time, as a malloc'd NUL-terminated copy, its length in *len, or
 * NULL when out of memory. */
char *conf_default_text(size_t *len);

#endif
