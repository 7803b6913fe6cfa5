/* gen: config generations (see gen.h). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "conf.h"
#include "gen.h"
#include "json.h"
#include "log.h"
#include "rewrite.h"

static struct gen *current;	/* head of the list, newest first */

static void
pieces_free(struct gen *g)
{
	const struct conf *c = g->conf;
	size_t i, j;

	if (c == NULL) {
		return;
	}
	for (i = 0; g->fixed != NULL && i < c->nproviders; i++) {
		size_t n = c->providers[i].ncreds ? c->providers[i].ncreds : 1;

		for (j = 0; g->fixed[i] != NULL && j < n; j++) {
			if (g->fixed[i][j].p != NULL) {
				util_wipe((char *)(uintptr_t)g->fixed[i][j].p,
				    g->fixed[i][j].n);
				free((char *)(uintptr_t)g->fixed[i][j].p);
			}
		}
		free(g->fixed[i]);
	}
	for (i = 0; g->model_value != NULL && i < c->nmodels; i++) {
		for (j = 0; g->model_value[i] != NULL &&
		    j < c->models[i].nroutes; j++) {
			free((char *)(uintptr_t)g->model_value[i][j].p);
		}
		free(g->model_value[i]);
	}
	free(g->fixed);
	free(g->model_value);
	free(g->path_len);
	g->fixed = NULL;
	g->model_value = NULL;
	g->path_len = NULL;
}

/* One credential's Host, auth and header= lines. */
static int
fixed_lines(const struct conf_provider *p, const char *secret,
    struct view *out)
{
	size_t cap = strlen(p->host_header) + strlen(secret) + 64, h, n;
	char *o;
	int k;

	for (h = 0; h < p->nheaders; h++) {
		cap += strlen(p->headers[h].name) +
		    strlen(p->headers[h].value) + 4;
	}
	if ((o = malloc(cap)) == NULL) {
		return -1;
	}
	out->p = o;
	n = (size_t)snprintf(o, cap, "Host: %s\r\n", p->host_header);
	k = rewrite_provider_lines(p, secret, o + n, cap - n);
	if (k < 0) {
		return -1;
	}
	out->n = n + (size_t)k;
	return 0;
}

/* One route's "model" value: the upstream id, quoted and escaped. */
static int
model_value(const char *um, struct view *out)
{
	size_t n = strlen(um);
	char *o = malloc(2 * n + 8);
	long e;

	if (o == NULL) {
		return -1;
	}
	out->p = o;
	o[0] = '"';
	e = json_escape(um, n, o + 1, 2 * n + 6);
	if (e < 0) {
		return -1;
	}
	o[e + 1] = '"';
	out->n = (size_t)e + 2;
	return 0;
}

/* Per-request text that only depends on the config. */
static int
pieces(struct gen *g)
{
	const struct conf *c = g->conf;
	size_t i, j, ncred;

	g->path_len = calloc(c->nproviders + 1, sizeof(*g->path_len));
	g->fixed = calloc(c->nproviders + 1, sizeof(*g->fixed));
	g->model_value = calloc(c->nmodels + 1, sizeof(*g->model_value));
	if (g->path_len == NULL || g->fixed == NULL ||
	    g->model_value == NULL) {
		return -1;
	}
	for (i = 0; i < c->nproviders; i++) {
		const struct conf_provider *p = &c->providers[i];

		g->path_len[i] = strlen(p->path);
		/* auth=none has no credential: one entry with no secret. */
		ncred = p->ncreds ? p->ncreds : 1;
		if ((g->fixed[i] = calloc(ncred, sizeof(**g->fixed))) ==
		    NULL) {
			return -1;
		}
		for (j = 0; j < ncred; j++) {
			if (fixed_lines(p, p->ncreds ? p->creds[j].secret : "",
			    &g->fixed[i][j]) < 0) {
				return -1;
			}
		}
	}
	for (i = 0; i < c->nmodels; i++) {
		const struct conf_model *m = &c->models[i];

		g->model_value[i] = calloc(m->nroutes + 1,
		    sizeof(**g->model_value));
		if (g->model_value[i] == NULL) {
			return -1;
		}
		for (j = 0; j < m->nroutes; j++) {
			if (model_value(m->routes[j].upstream_model,
			    &g->model_value[i][j]) < 0) {
				return -1;
			}
		}
	}
	return 0;
}

static void
gen_free(struct gen *g)
{
	if (g == NULL) {
		return;
	}
	route_table_free(&g->routes);
	if (g->has_anchors) {
		tls_anchors_free(&g->anchors);
	}
	free(g->models_json);
	free(g->models_anthropic);
	pieces_free(g);
	conf_free(g->conf);
	free(g);
}

/* A generation for c, or NULL (logged); on failure the caller still owns
 * c. */
static struct gen *
gen_new(struct conf *c)
{
	struct gen *g = calloc(1, sizeof(*g));
	char err[512];

	if (g == NULL) {
		log_error("out of memory");
		return NULL;
	}
	g->conf = c;
	if (route_table_init(&g->routes, c) < 0 ||
	    (g->models_json = api_models_json(c, 0, &g->models_len)) ==
	    NULL || (g->models_anthropic = api_models_json(c, 1,
	    &g->models_anthropic_len)) == NULL ||
	    pieces(g) < 0) {
		log_error("out of memory");
		goto fail;
	}
	if (tls_anchors_load(&g->anchors, c->ca_file, err, sizeof(err)) < 0) {
		log_error("%s", err);
		goto fail;
	}
	g->has_anchors = 1;
	log_info("TLS trust anchors: %zu from %s",
	    tls_anchors_count(&g->anchors), tls_anchors_source(&g->anchors));
	return g;
fail:
	pieces_free(g);
	route_table_free(&g->routes);
	free(g->models_json);
	free(g->models_anthropic);
	free(g);
	return NULL;
}

int
gen_start(struct conf *c)
{
	struct gen *g = gen_new(c);

	if (g == NULL) {
		return -1;
	}
	g->refs++;	/* the current generation is held by the relay */
	current = g;
	return 0;
}

int
gen_reload(const char *path)
{
	char err[1024];
	struct conf *c;
	struct gen *g;

	c = path ? conf_load(path, err, sizeof(err)) :
	    conf_load_default(err, sizeof(err));
	if (c == NULL) {
		log_error("reload refused, keeping the running config: %s",
		    err);
		return -1;
	}
	g = gen_new(c);
	if (g == NULL) {
		conf_free(c);
		log_error("reload refused: out of memory");
		return -1;
	}
	route_table_inherit(&g->routes, c, &current->routes, current->conf);
	g->next = current;
	current = g;
	/* The old generation dies once its last user does. */
	g->refs++;
	gen_release(g->next->conf);
	log_info("config reloaded: %zu models, %zu providers (listeners "
	    "unchanged)", c->nmodels, c->nproviders);
	return 0;
}

struct gen *
gen_current(void)
{
	return current;
}

struct gen *
gen_of(const struct conf *c)
{
	struct gen *g;

	for (g = current; g != NULL; g = g->next) {
		if (g->conf == c) {
			return g;
		}
	}
	return current;
}

void
gen_hold(const struct conf *c)
{
	gen_of(c)->refs++;
}

void
gen_release(const struct conf *c)
{
	struct gen *g = gen_of(c), **pp;

	if (g->refs > 0) {
		g->refs--;
	}
	if (g == current || g->refs > 0) {
		return;
	}
	for (pp = &current; *pp != NULL; pp = &(*pp)->next) {
		if (*pp == g) {
			*pp = g->next;
			gen_free(g);
			return;
		}
	}
}

const struct view *
gen_fixed(const struct gen *g, size_t p, size_t cred)
{
	return &g->fixed[p][cred == SIZE_MAX ? 0 : cred];
}

void
gen_free_all(void)
{
	while (current != NULL) {
		struct gen *g = current;

		current = g->next;
		gen_free(g);
	}
}
