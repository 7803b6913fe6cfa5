#ifndef RELAY_API_H
#define RELAY_API_H
/* The relay's own endpoints' bodies: the model catalog, the developer
 * console page, "did you mean" suggestions. Pure formatting over a conf. */
#include <stddef.h>

struct conf;

/* GET /v1/models body (OpenAI list shape plus family, modality, pricing).
 * Returns a malloc'd string and its length, or NULL. */
char *api_models_json(const struct conf *c, size_t *len);

/* The developer console (GET /): the page src/console.html, compiled in
 * at build time (build/console_html.inc, included by api.c). */
extern const char api_console_html[];
extern const size_t api_console_len;

/* Up to three aliases close to alias (same family, shared prefix or a
 * small edit distance), as "'a', 'b'" into out; "" when none. */
void api_close_aliases(const struct conf *c, const char *alias, char *out,
    size_t cap);

#endif
