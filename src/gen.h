#ifndef RELAY_GEN_H
#define RELAY_GEN_H
/* Config generations. A reload makes a new generation; connections and
 * requests keep the one they started with, and an old generation is
 * freed when the last of them lets go. A generation also holds what is
 * derived from its config once instead of per request: credential
 * health, trust anchors, the /v1/models body, each credential's fixed
 * request lines and each route's escaped model value. */
#include <stddef.h>

#include "route.h"
#include "tls.h"
#include "util.h"

struct conf;

struct gen {
	struct conf *conf;		/* owned */
	struct route_table routes;	/* owned; credential health */
	struct tls_anchors anchors;	/* owned; ca_file or the embedded roots */
	int has_anchors;
	char *models_json;		/* owned; GET /v1/models body */
	size_t models_len;
	char *models_anthropic;		/* owned; the same in Anthropic's shape
					 * (the caller sent anthropic-version) */
	size_t models_anthropic_len;
	struct view **fixed;		/* owned; [provider][cred]: the Host,
					 * auth and header= lines (they hold
					 * the secret: wiped when freed) */
	size_t *path_len;		/* owned; per provider */
	struct view **model_value;	/* owned; [model][route]: the new
					 * "model" value, quoted, escaped */
	unsigned long refs;		/* connections and requests using it */
	struct gen *next;		/* older generations */
};

/* Make c the first generation (it takes c over; on failure the caller
 * still owns c). Returns 0, or -1 (logged). */
int gen_start(struct conf *c);

/* Load the config at path (NULL: the embedded one) as the new current
 * generation, credential health carried over. A bad config is refused
 * and logged, and the old one stays. Returns 0 or -1. */
int gen_reload(const char *path);

/* The current generation. */
struct gen *gen_current(void);

/* The generation of config c (the current one if c is not known). */
struct gen *gen_of(const struct conf *c);

/* Count one more user of c's generation / one fewer: an old generation
 * with no user left is freed. */
void gen_hold(const struct conf *c);
void gen_release(const struct conf *c);

/* The fixed lines of credential cred (SIZE_MAX: auth=none) of provider
 * p. */
const struct view *gen_fixed(const struct gen *g, size_t p, size_t cred);

/* Free every generation (at exit). */
void gen_free_all(void);

#endif
