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

const char api_console_html[] =
"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n"
"<title>Relay console</title>\n<style>\n"
"body{font:15px/1.45 system-ui,sans-serif;max-width:60rem;margin:2rem auto;"
"padding:0 1rem;color:#1d1d1f}\n"
"table{border-collapse:collapse;width:100%}th,td{text-align:left;"
"padding:.3rem .6rem;border-bottom:1px solid #ddd}\n"
"td.n{text-align:right;font-variant-numeric:tabular-nums}\n"
"input{font:inherit;padding:.3rem;width:24rem}button{font:inherit}\n"
"code{background:#f3f3f3;padding:0 .2rem}\n#err{color:#b00}\n"
"</style></head><body>\n<h1>Relay</h1>\n"
"<p>Call <code>/v1/chat/completions</code> (or any OpenAI / Anthropic "
"path) with one of these models and your key.</p>\n"
"<h2>Wallet</h2>\n<p><input id=\"key\" type=\"password\" "
"placeholder=\"rk-... (your client key)\" autocomplete=\"off\"> "
"<button id=\"go\">Show</button></p>\n"
"<p id=\"err\"></p><pre id=\"wallet\"></pre>\n"
"<h2>Models</h2>\n<table><thead><tr><th>model</th><th>family</th>"
"<th>modality</th><th>USD in / 1M</th><th>USD out / 1M</th></tr>"
"</thead><tbody id=\"models\"></tbody></table>\n"
"<script>\n"
"function cell(t,c){var d=document.createElement('td');d.textContent=t;"
"if(c)d.className=c;return d}\n"
"fetch('/v1/models').then(function(r){return r.json()}).then(function(j){"
"var tb=document.getElementById('models');j.data.forEach(function(m){"
"var tr=document.createElement('tr');tr.appendChild(cell(m.id));"
"tr.appendChild(cell(m.family));tr.appendChild(cell(m.modality));"
"var p=m.pricing;tr.appendChild(cell(p.input_usd_per_1m===null?'-':"
"String(p.input_usd_per_1m),'n'));tr.appendChild(cell("
"p.output_usd_per_1m===null?'-':String(p.output_usd_per_1m),'n'));"
"tb.appendChild(tr)})});\n"
"document.getElementById('go').onclick=function(){"
"var k=document.getElementById('key').value;"
"fetch('/v1/wallet',{headers:{Authorization:'Bearer '+k}}).then("
"function(r){return r.json()}).then(function(j){"
"document.getElementById('err').textContent=j.error?j.error.message:'';"
"document.getElementById('wallet').textContent=j.error?'':"
"JSON.stringify(j,null,2)})};\n"
"</script>\n</body></html>\n";
const size_t api_console_len = sizeof(api_console_html) - 1;
