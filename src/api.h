#ifndef RELAY_API_H
#define RELAY_API_H
/* The relay's own endpoints' bodies: the model catalog, the developer
 * console page, "did you mean" suggestions. Pure formatting over a conf. */
#include <stddef.h>

struct conf;

struct conf_model;

/* GET /v1/models body: OpenAI's list shape plus family, modality,
 * pricing; or Anthropic's (anthropic: the caller sent anthropic-version).
 * Returns a malloc'd string and its length, or NULL. */
char *api_models_json(const struct conf *c, int anthropic, size_t *len);

/* GET /v1/models/<alias> body: the catalog entry of m, in the same two
 * shapes. A malloc'd string and its length, or NULL. */
char *api_model_json(const struct conf_model *m, int anthropic,
    size_t *len);

/* The developer console (GET /): the page src/console.html, compressed
 * with gzip -9n and compiled in at build time (build/console_html.inc,
 * included by api.c); local.c sends it with Content-Encoding: gzip. */
extern const unsigned char api_console_gz[];
extern const size_t api_console_gz_len;

/* Up to three aliases close to alias (same family, shared prefix or a
 * small edit distance), as "'a', 'b'" into out; "" when none. */
void api_close_aliases(const struct conf *c, const char *alias, char *out,
    size_t cap);

#endif
