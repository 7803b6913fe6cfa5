#ifndef RELAY_CONF_INT_H
#define RELAY_CONF_INT_H
/* Inside the conf module only: the parser state and the tools conf.c
 * gives the directive handlers of conf_directives.c. Not for other
 * modules, which see struct conf (conf.h) and nothing of the parser. */
#include <stddef.h>
#include <stdint.h>

#include "conf.h"
#include "util.h"

#define CONF_DURATION_MAX_MS 86400000u	/* a day */

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
	size_t cap_warnings, cap_prov;
	struct prov_state {
		unsigned credlines;	/* credential lines seen (skipped
					 * ones too, so labels stay stable) */
		size_t cap_creds;	/* of the provider's creds array */
	} *prov;		/* owned; per provider */
	int first[32];		/* per conf_directives[] entry: the line
				 * of its first use */
};

/* A directive: its handler checks the line's words w[0..nw) (w[0] is
 * the name) and fills ps->c; 0, or -1 with the error reported. */
struct conf_directive {
	const char *name;
	int (*fn)(struct parser *ps, char **w, size_t nw);
	int once;		/* may appear on one line only */
};

/* The provider and credential directives (conf_providers.c). */
int conf_do_provider(struct parser *ps, char **w, size_t nw);
int conf_do_credential(struct parser *ps, char **w, size_t nw);

/* The directives, in conf_directives.c. */
extern const struct conf_directive conf_directives[];
extern const size_t conf_ndirectives;

/* Report "FILE:LINE: message" (or "FILE: message" outside the text) in
 * ps->err; returns -1, so a handler can `return conf_perr(...)`. */
int conf_perr(struct parser *ps, const char *fmt, ...) RELAY_PRINTF(2, 3);

/* The host and port of a URL's authority a[0..end) ("name", "1.2.3.4",
 * "[v6]", each with an optional ":PORT" of 1 to 65535) into host[0..cap)
 * and *port (left as it is without one). Returns 0, or -1 when it is not
 * one of those. */
int conf_host_port(const char *a, const char *end, char *host, size_t cap,
    uint64_t *port);

/* Array arr of n elements of size bytes, with room for one more (zeroed,
 * util_grow; *cap its capacity): the array, or NULL after the error. */
void *conf_grow(struct parser *ps, void *arr, size_t *cap, size_t n,
    size_t size);

/* Append a zeroed element to array arr of n (a size_t lvalue, counted up)
 * with capacity *cap; elem, a pointer of the element type, points at it.
 * 0, or -1 after the error. */
#define CONF_PUSH(ps, arr, cap, n, elem) \
	(((elem) = conf_grow((ps), (arr), (cap), (n), sizeof *(arr))) == NULL \
	    ? -1 : ((arr) = (void *)(elem), (elem) = &(arr)[(n)++], 0))

/* Add "FILE:LINE: warning: message" to the conf's warnings. 0, or -1
 * (out of memory, reported). */
int conf_pwarn(struct parser *ps, const char *fmt, ...) RELAY_PRINTF(2, 3);

/* A malloc'd copy of s[0..n) (conf_dupn) or of the string s, or NULL
 * with "out of memory" reported. */
char *conf_dupn(struct parser *ps, const char *s, size_t n);
char *conf_dups(struct parser *ps, const char *s);

/* Wipe and free a secret (NULL is fine). */
void conf_free_secret(char *s);

/* Match words w[from..nw) against the options o[0..no): each value is
 * left in its o[].val. 0, or -1 with the error reported (a word that is
 * no option is not repeated: it may be a misplaced secret). */
int conf_scan_opts(struct parser *ps, char **w, size_t from, size_t nw,
    struct opt *o, size_t no);

/* The value of option o, when given, into *out: yes or no (1/0); a
 * duration "500ms", "10s", "5m" (zero, a bare number and more than a day
 * are errors); a size "4096", "16k" (KiB), "32m" (MiB), or a plain count,
 * both between lo and hi. 0 (also when o was not given), or -1 with the
 * error reported. */
int conf_opt_yesno(struct parser *ps, const struct opt *o, int *out);
int conf_opt_duration(struct parser *ps, const struct opt *o,
    uint64_t *ms);
int conf_opt_size(struct parser *ps, const struct opt *o, uint64_t lo,
    uint64_t hi, uint64_t *out);
int conf_opt_count(struct parser *ps, const struct opt *o, uint64_t lo,
    uint64_t hi, uint64_t *out);

/* "sha256:<64 hex>" into out: 0 or -1. The caller never echoes s: a raw
 * key may sit there. */
int conf_parse_hash(const char *s, unsigned char out[32]);

/* 1 when s is a plain name for a provider or a wallet: they appear in
 * routes ("name/model"), labels ("name#2") and the ledger. */
int conf_valid_name(const char *s);

/* 1 when host is "localhost" or a loopback address (127/8, ::1, or
 * ::ffff:127.x). */
int conf_is_loopback(const char *host);

/* 0 when path opens for reading and is no directory, else -1 with
 * "cannot read WHAT 'PATH': reason" reported. Never blocks on a FIFO. */
int conf_check_readable(struct parser *ps, const char *what,
    const char *path);

/* A secret written ref ("env:NAME" or "file:PATH") into *out
 * (malloc'd). 0; 1 when the environment variable is not set (nothing
 * reported); -1 with the error reported (usage: what a ref that is
 * neither says). Never echoes ref. */
int conf_secret(struct parser *ps, const char *ref, const char *usage,
    char **out);

/* The directives of conf_fleet.c: wallet (its key hashes, overdraft and
 * limits), store and node; and the whole-file checks they need. */
int conf_do_wallet(struct parser *ps, char **w, size_t nw);
int conf_do_store(struct parser *ps, char **w, size_t nw);
int conf_do_node(struct parser *ps, char **w, size_t nw);
int conf_fleet_finish(struct parser *ps);
void conf_fleet_free(struct conf *c);

/* Index of the provider named name[0..n), or -1. */
long conf_find_provider(const struct conf *c, const char *name, size_t n);

#endif
