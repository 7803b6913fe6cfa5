/* api: bodies of the relay's own endpoints. Built once per config (the
 * catalog never changes while a config is in force) and served from
 * memory. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "conf.h"
#include "util.h"

/* A string built by appending; once an append fails, the rest are
 * skipped and failed stays set. */
struct sbuf {
	char *p;		/* owned, NUL-terminated */
	size_t n, cap;
	int failed;
};

static void sb_add(struct sbuf *s, const char *fmt, ...) RELAY_PRINTF(2, 3);

static void
sb_add(struct sbuf *s, const char *fmt, ...)
{
	va_list ap;
	char *np = NULL;
	int need;

	while (!s->failed) {
		va_start(ap, fmt);
		need = vsnprintf(s->p + s->n, s->cap - s->n, fmt, ap);
		va_end(ap);
		if (need >= 0 && (size_t)need < s->cap - s->n) {
			s->n += (size_t)need;
			return;
		}
		np = need < 0 ? NULL : util_grow(s->p, &s->cap,
		    s->n + (size_t)need + 1, 1);
		if (np == NULL) {
			s->failed = 1;
		} else {
			s->p = np;
		}
	}
}

static const char *
price_json(const char *text)
{
	return strcmp(text, "-") == 0 ? "null" : text;
}

/* One catalog entry: OpenAI's model object plus family, modality and
 * pricing; Anthropic's model object when anthropic. */
static void
model_entry(struct sbuf *s, const struct conf_model *m, int anthropic)
{
	if (anthropic) {
		sb_add(s, "{\"type\":\"model\",\"id\":\"%s\","
		    "\"display_name\":\"%s\",\"created_at\":"
		    "\"1970-01-01T00:00:00Z\"}", m->alias, m->alias);
		return;
	}
	sb_add(s, "{\"id\":\"%s\",\"object\":\"model\",\"created\":0,"
	    "\"owned_by\":\"relay\",", m->alias);
	sb_add(s, "\"family\":\"%s\",\"modality\":\"%s\",", m->family,
	    conf_modality_name(m->modality));
	sb_add(s, "\"pricing\":{\"input_usd_per_1m\":%s,"
	    "\"output_usd_per_1m\":%s,", price_json(m->in_text),
	    price_json(m->out_text));
	/* null: not priced apart (they cost the input price). */
	sb_add(s, "\"cached_input_usd_per_1m\":%s,"
	    "\"cache_write_usd_per_1m\":%s}}",
	    m->cached_text ? price_json(m->cached_text) : "null",
	    m->cache_write_text ? price_json(m->cache_write_text) : "null");
}

/* The finished string, or NULL when an append failed. */
static char *
sb_done(struct sbuf *s, size_t *len)
{
	if (s->failed) {
		free(s->p);
		return NULL;
	}
	*len = s->n;
	return s->p;
}

char *
api_models_json(const struct conf *c, int anthropic, size_t *len)
{
	struct sbuf s = { NULL, 0, 0, 0 };
	size_t i;

	s.p = util_grow(NULL, &s.cap, 256 + c->nmodels * 256, 1);
	if (s.p == NULL) {
		return NULL;
	}
	sb_add(&s, anthropic ? "{\"data\":[" : "{\"object\":\"list\","
	    "\"data\":[");
	for (i = 0; i < c->nmodels; i++) {
		sb_add(&s, "%s", i ? "," : "");
		model_entry(&s, &c->models[i], anthropic);
	}
	if (anthropic) {
		/* One page: the whole catalog. */
		sb_add(&s, "],\"has_more\":false,\"first_id\":");
		sb_add(&s, c->nmodels ? "\"%s\",\"last_id\":\"%s\"}\n" :
		    "null,\"last_id\":null}\n%s%s", c->nmodels ?
		    c->models[0].alias : "", c->nmodels ?
		    c->models[c->nmodels - 1].alias : "");
	} else {
		sb_add(&s, "]}\n");
	}
	return sb_done(&s, len);
}

char *
api_model_json(const struct conf_model *m, int anthropic, size_t *len)
{
	struct sbuf s = { NULL, 0, 0, 0 };

	s.p = util_grow(NULL, &s.cap, 512, 1);
	if (s.p == NULL) {
		return NULL;
	}
	model_entry(&s, m, anthropic);
	sb_add(&s, "\n");
	return sb_done(&s, len);
}

static size_t
edit_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b), i, j;
	size_t row[64];

	if (la > 63 || lb > 63) {
		return 64;
	}
	for (j = 0; j <= lb; j++) {
		row[j] = j;
	}
	for (i = 1; i <= la; i++) {
		size_t prev = row[0], tmp;

		row[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev + (a[i - 1] != b[j - 1]);

			if (row[j] + 1 < best) {
				best = row[j] + 1;
			}
			if (row[j - 1] + 1 < best) {
				best = row[j - 1] + 1;
			}
			tmp = row[j];
			row[j] = best;
			prev = tmp;
		}
	}
	return row[lb];
}

void
api_close_aliases(const struct conf *c, const char *alias, char *out,
    size_t cap)
{
	size_t i, found = 0, pos = 0, d;
	size_t alen = strlen(alias);

	out[0] = '\0';
	for (d = 0; d <= 4 && found < 3; d++) {
		for (i = 0; i < c->nmodels && found < 3; i++) {
			const char *m = c->models[i].alias;
			size_t dist = edit_distance(alias, m);
			int prefix = alen >= 3 && strncmp(m, alias, alen) == 0;
			int n;

			if (prefix) {
				dist = 1;
			}
			if (dist != d || (d == 0 && !prefix)) {
				continue;
			}
			n = snprintf(out + pos, cap - pos, "%s'%s'",
			    found ? ", " : "", m);
			if (n < 0 || (size_t)n >= cap - pos) {
				return;
			}
			pos += (size_t)n;
			found++;
		}
	}
}

/* The developer console (GET /): src/console.html, its opening comment
 * and leading blanks stripped, compressed with gzip -9n and turned into
 * the definitions of api_console_gz and api_console_gz_len by src/embed.sh
 * -b (Makefile rules; the files are generated into build/). */
#include "console_html.inc"
