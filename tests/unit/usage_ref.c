/*
 * usage_ref: an independent reading of usage (src/usage.h's contract) for
 * differential tests: the whole document is parsed into a tree first
 * (recursive descent, RFC 8259, at most 64 levels), then the documented
 * places are looked up in it. Members are visited in document order and
 * a later one replaces an earlier one, as the streaming scanner does.
 * Compiled into tests only, never into ./relay.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "usage.h"

enum { RN_OBJ, RN_ARR, RN_STR, RN_NUM, RN_LIT };

struct rnode {
	int type;
	const char *p;		/* STR: raw contents; NUM/LIT: text */
	size_t n;
	struct rnode *kids;	/* OBJ: key, value pairs; ARR: values */
	size_t nkids;
};

struct rparse {
	const char *s;
	size_t n, i;
	int bad;
};

static void
ref_ws(struct rparse *r)
{
	while (r->i < r->n && (r->s[r->i] == ' ' || r->s[r->i] == '\t' ||
	    r->s[r->i] == '\n' || r->s[r->i] == '\r')) {
		r->i++;
	}
}

static void ref_value(struct rparse *r, struct rnode *v, int depth);

static void
ref_add(struct rnode *parent, struct rnode *kid)
{
	struct rnode *k = realloc(parent->kids, (parent->nkids + 1) *
	    sizeof(*k));

	if (k == NULL) {
		abort();
	}
	parent->kids = k;
	parent->kids[parent->nkids++] = *kid;
}

static void
ref_string(struct rparse *r, struct rnode *v)
{
	size_t start = ++r->i;

	v->type = RN_STR;
	while (r->i < r->n) {
		unsigned char c = (unsigned char)r->s[r->i];

		if (c == '"') {
			v->p = r->s + start;
			v->n = r->i - start;
			r->i++;
			return;
		}
		if (c < 0x20) {
			break;
		}
		if (c == '\\') {
			if (r->i + 1 >= r->n) {
				break;
			}
			c = (unsigned char)r->s[++r->i];
			if (c == 'u') {
				int k;

				for (k = 1; k <= 4; k++) {
					if (r->i + k >= r->n ||
					    util_hex_digit(r->s[r->i + k]) < 0) {
						r->bad = 1;
						return;
					}
				}
				r->i += 4;
			} else if (c == 0 || !strchr("\"\\/bfnrt", c)) {
				break;
			}
		}
		r->i++;
	}
	r->bad = 1;
}

static int
ref_digit(const struct rparse *r)
{
	return r->i < r->n && r->s[r->i] >= '0' && r->s[r->i] <= '9';
}

static void
ref_number(struct rparse *r, struct rnode *v)
{
	size_t start = r->i;

	v->type = RN_NUM;
	if (r->s[r->i] == '-') {
		r->i++;
	}
	if (!ref_digit(r)) {
		r->bad = 1;
		return;
	}
	if (r->s[r->i] == '0') {
		r->i++;
	} else {
		while (ref_digit(r)) {
			r->i++;
		}
	}
	if (r->i < r->n && r->s[r->i] == '.') {
		r->i++;
		if (!ref_digit(r)) {
			r->bad = 1;
			return;
		}
		while (ref_digit(r)) {
			r->i++;
		}
	}
	if (r->i < r->n && (r->s[r->i] == 'e' || r->s[r->i] == 'E')) {
		r->i++;
		if (r->i < r->n && (r->s[r->i] == '+' || r->s[r->i] == '-')) {
			r->i++;
		}
		if (!ref_digit(r)) {
			r->bad = 1;
			return;
		}
		while (ref_digit(r)) {
			r->i++;
		}
	}
	v->p = r->s + start;
	v->n = r->i - start;
}

static void
ref_container(struct rparse *r, struct rnode *v, int depth, int obj)
{
	char close = obj ? '}' : ']';

	v->type = obj ? RN_OBJ : RN_ARR;
	if (depth >= 64) {
		r->bad = 1;
		return;
	}
	r->i++;
	ref_ws(r);
	if (r->i < r->n && r->s[r->i] == close) {
		r->i++;
		return;
	}
	for (;;) {
		struct rnode k, val;

		memset(&k, 0, sizeof(k));
		memset(&val, 0, sizeof(val));
		if (obj) {
			ref_ws(r);
			if (r->i >= r->n || r->s[r->i] != '"') {
				r->bad = 1;
				return;
			}
			ref_string(r, &k);
			ref_ws(r);
			if (r->bad || r->i >= r->n || r->s[r->i] != ':') {
				r->bad = 1;
				return;
			}
			r->i++;
			ref_add(v, &k);
		}
		ref_value(r, &val, depth + 1);
		ref_add(v, &val);
		if (r->bad) {
			return;
		}
		ref_ws(r);
		if (r->i < r->n && r->s[r->i] == ',') {
			r->i++;
			continue;
		}
		if (r->i < r->n && r->s[r->i] == close) {
			r->i++;
			return;
		}
		r->bad = 1;
		return;
	}
}

static void
ref_value(struct rparse *r, struct rnode *v, int depth)
{
	static const char *const lits[] = { "true", "false", "null" };
	size_t k;

	ref_ws(r);
	if (r->i >= r->n) {
		r->bad = 1;
		return;
	}
	switch (r->s[r->i]) {
	case '{':
		ref_container(r, v, depth, 1);
		return;
	case '[':
		ref_container(r, v, depth, 0);
		return;
	case '"':
		ref_string(r, v);
		return;
	default:
		break;
	}
	for (k = 0; k < 3; k++) {
		size_t len = strlen(lits[k]);

		if (r->n - r->i >= len && memcmp(r->s + r->i, lits[k], len) ==
		    0) {
			v->type = RN_LIT;
			v->p = r->s + r->i;
			v->n = len;
			r->i += len;
			return;
		}
	}
	ref_number(r, v);
}

static void
ref_free(struct rnode *v)
{
	size_t i;

	for (i = 0; i < v->nkids; i++) {
		ref_free(&v->kids[i]);
	}
	free(v->kids);
}

/* Decoded key == name. */
static int
ref_key(const struct rnode *k, const char *name)
{
	char buf[256];
	long n = json_unescape((struct view){ k->p, k->n }, buf, sizeof(buf));

	return n >= 0 && (size_t)n == strlen(name) &&
	    memcmp(buf, name, (size_t)n) == 0;
}

/* Bytes of a string's decoded contents, \u escapes as usage.c counts. */
static uint64_t
ref_bytes(const struct rnode *s)
{
	uint64_t n = 0;
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (s->p[i] != '\\') {
			n++;
		} else if (s->p[++i] == 'u') {
			unsigned long u = strtoul((char[]){ s->p[i + 1],
			    s->p[i + 2], s->p[i + 3], s->p[i + 4], 0 }, NULL, 16);

			n += u < 0x80 ? 1 : u < 0x800 ? 2 : (u >= 0xd800 &&
			    u < 0xe000) ? 2 : 3;
			i += 4;
		} else {
			n++;
		}
	}
	return n;
}

struct ref_place {
	uint64_t raw[8];
	unsigned has;
	int bad, obj;
};

static const char *const ref_fields[] = {
	"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens",
	NULL, "cache_read_input_tokens", "cache_creation_input_tokens",
	"prompt_cache_hit_tokens"
};

static void
ref_count(struct ref_place *pl, int f, const struct rnode *v)
{
	uint64_t x = 0;
	size_t i;

	if (v->type == RN_LIT && v->n == 4 && memcmp(v->p, "null", 4) == 0) {
		return;
	}
	if (v->type != RN_NUM) {
		pl->bad = 1;
		return;
	}
	for (i = 0; i < v->n; i++) {
		if (v->p[i] < '0' || v->p[i] > '9') {
			pl->bad = 1;
			return;
		}
		x = x * 10 + (uint64_t)(v->p[i] - '0');
		if (x > USAGE_COUNT_MAX) {
			pl->bad = 1;
			return;
		}
	}
	pl->raw[f] = x;
	pl->has |= 1u << f;
}

/* One "usage" value: reset the place, then its members in order. */
static void
ref_usage(struct ref_place *pl, const struct rnode *u)
{
	size_t i, j;
	int f;

	memset(pl, 0, sizeof(*pl));
	pl->obj = u->type == RN_OBJ;
	if (!pl->obj) {
		return;
	}
	for (i = 0; i + 1 < u->nkids; i += 2) {
		const struct rnode *k = &u->kids[i], *v = &u->kids[i + 1];

		for (f = 0; f < 8; f++) {
			if (ref_fields[f] != NULL && ref_key(k, ref_fields[f])) {
				ref_count(pl, f, v);
			}
		}
		if ((ref_key(k, "prompt_tokens_details") ||
		    ref_key(k, "input_tokens_details")) && v->type == RN_OBJ) {
			for (j = 0; j + 1 < v->nkids; j += 2) {
				if (ref_key(&v->kids[j], "cached_tokens")) {
					ref_count(pl, 4, &v->kids[j + 1]);
				}
			}
		}
	}
}

static uint64_t
ref_text(const struct rnode *v)
{
	return v->type == RN_STR ? ref_bytes(v) : 0;
}

static int
ref_is_text_key(const struct rnode *k)
{
	return ref_key(k, "content") || ref_key(k, "reasoning_content") ||
	    ref_key(k, "reasoning") || ref_key(k, "refusal");
}

/* Content of choices[]: into c[0] (delta) or c[3] (message, text). */
static void
ref_choices(const struct rnode *arr, uint64_t *c)
{
	size_t i, j, t, q;

	for (i = 0; arr->type == RN_ARR && i < arr->nkids; i++) {
		const struct rnode *ch = &arr->kids[i];

		for (j = 0; ch->type == RN_OBJ && j + 1 < ch->nkids; j += 2) {
			const struct rnode *k = &ch->kids[j], *v = &ch->kids[j + 1];
			int fam = ref_key(k, "delta") ? 0 : 3;

			if (ref_key(k, "text")) {
				c[0] += ref_text(v);
				continue;
			}
			if ((!ref_key(k, "delta") && !ref_key(k, "message")) ||
			    v->type != RN_OBJ) {
				continue;
			}
			for (t = 0; t + 1 < v->nkids; t += 2) {
				const struct rnode *tv = &v->kids[t + 1];

				if (ref_is_text_key(&v->kids[t])) {
					c[fam] += ref_text(tv);
				}
				if (!ref_key(&v->kids[t], "tool_calls") ||
				    tv->type != RN_ARR) {
					continue;
				}
				for (q = 0; q < tv->nkids; q++) {
					const struct rnode *tc = &tv->kids[q];
					size_t a, b;

					for (a = 0; tc->type == RN_OBJ &&
					    a + 1 < tc->nkids; a += 2) {
						const struct rnode *fn =
						    &tc->kids[a + 1];

						if (!ref_key(&tc->kids[a],
						    "function") ||
						    fn->type != RN_OBJ) {
							continue;
						}
						for (b = 0; b + 1 < fn->nkids;
						    b += 2) {
							if (ref_key(&fn->kids[b],
							    "arguments")) {
								c[fam] += ref_text(
								    &fn->kids[b + 1]);
							}
						}
					}
				}
			}
		}
	}
}

/* Strings of elements' key "name" in an array of objects, summed. */
static uint64_t
ref_elem_text(const struct rnode *arr, const char *n1, const char *n2)
{
	uint64_t sum = 0;
	size_t i, j;

	for (i = 0; arr->type == RN_ARR && i < arr->nkids; i++) {
		const struct rnode *e = &arr->kids[i];

		for (j = 0; e->type == RN_OBJ && j + 1 < e->nkids; j += 2) {
			if (ref_key(&e->kids[j], n1) || (n2 != NULL &&
			    ref_key(&e->kids[j], n2))) {
				sum += ref_text(&e->kids[j + 1]);
			}
		}
	}
	return sum;
}

static void
ref_capture(const struct rnode *v, char *dst, size_t cap)
{
	long n;

	dst[0] = '\0';
	if (v->type != RN_STR || v->n > 160) {
		return;	/* usage.c keeps at most 160 raw bytes */
	}
	n = json_unescape((struct view){ v->p, v->n }, dst, cap);
	if (n < 0 || strlen(dst) != (size_t)n) {
		dst[0] = '\0';
	}
}

/* The top level's members, in order. */
static void
ref_top(const struct rnode *top, struct ref_place *pl, uint64_t *c,
    int *choices_empty, struct usage_doc *d)
{
	size_t i, j, q;

	for (i = 0; top->type == RN_OBJ && i + 1 < top->nkids; i += 2) {
		const struct rnode *k = &top->kids[i], *v = &top->kids[i + 1];

		if (ref_key(k, "type")) {
			ref_capture(v, d->type, sizeof(d->type));
		} else if (ref_key(k, "id")) {
			ref_capture(v, d->id, sizeof(d->id));
		} else if (ref_key(k, "status")) {
			ref_capture(v, d->status, sizeof(d->status));
		} else if (ref_key(k, "choices")) {
			*choices_empty = v->type == RN_ARR && v->nkids == 0;
			ref_choices(v, c);
		} else if (ref_key(k, "usage")) {
			ref_usage(&pl[0], v);
		} else if (ref_key(k, "delta")) {
			c[1] += ref_text(v);
			for (j = 0; v->type == RN_OBJ && j + 1 < v->nkids;
			    j += 2) {
				if (ref_key(&v->kids[j], "text") ||
				    ref_key(&v->kids[j], "partial_json") ||
				    ref_key(&v->kids[j], "thinking")) {
					c[2] += ref_text(&v->kids[j + 1]);
				}
			}
		} else if (ref_key(k, "content")) {
			c[3] += ref_elem_text(v, "text", "thinking");
		} else if (ref_key(k, "output")) {
			for (q = 0; v->type == RN_ARR && q < v->nkids; q++) {
				const struct rnode *e = &v->kids[q];

				for (j = 0; e->type == RN_OBJ &&
				    j + 1 < e->nkids; j += 2) {
					if (ref_key(&e->kids[j], "content")) {
						c[3] += ref_elem_text(
						    &e->kids[j + 1], "text",
						    NULL);
					}
				}
			}
		} else if (ref_key(k, "message") || ref_key(k, "response")) {
			int p = ref_key(k, "message") ? 1 : 2;

			for (j = 0; v->type == RN_OBJ && j + 1 < v->nkids;
			    j += 2) {
				const struct rnode *rk = &v->kids[j];

				if (ref_key(rk, "usage")) {
					ref_usage(&pl[p], &v->kids[j + 1]);
				} else if (p == 2 && ref_key(rk, "id")) {
					/* A Responses stream event names its
					 * response here (SPEC §9); the last
					 * id or status of the document wins,
					 * at either place. */
					ref_capture(&v->kids[j + 1], d->id,
					    sizeof(d->id));
				} else if (p == 2 && ref_key(rk, "status")) {
					ref_capture(&v->kids[j + 1], d->status,
					    sizeof(d->status));
				}
			}
		}
	}
}

static int
ref_ends(const char *s, const char *suf)
{
	size_t n = strlen(s), k = strlen(suf);

	return n >= k && strcmp(s + n - k, suf) == 0;
}

void ref_usage_scan(const char *text, size_t n, struct usage_doc *d);

void
ref_usage_scan(const char *text, size_t n, struct usage_doc *d)
{
	struct rparse r = { text, n, 0, 0 };
	struct rnode top;
	struct ref_place pl[3];
	uint64_t c[4] = { 0, 0, 0, 0 }, prompt = 0, cached = 0;
	int choices_empty = 0, p = 0;
	const struct ref_place *u;

	memset(d, 0, sizeof(*d));
	memset(&top, 0, sizeof(top));
	memset(pl, 0, sizeof(pl));
	ref_value(&r, &top, 0);
	ref_ws(&r);
	if (r.bad || r.i != n) {
		ref_free(&top);
		return;
	}
	d->valid = 1;
	ref_top(&top, pl, c, &choices_empty, d);
	ref_free(&top);
	d->usage_only = choices_empty && pl[0].obj;
	if (d->type[0] == '\0' || strcmp(d->type, "message") == 0) {
		d->content_bytes = c[0] + c[3];
	} else if (strcmp(d->type, "content_block_delta") == 0) {
		d->content_bytes = c[2];
	} else if (strncmp(d->type, "response.", 9) == 0 &&
	    ref_ends(d->type, ".delta")) {
		d->content_bytes = c[1];
	}
	d->final = 1;
	if (d->type[0] == '\0' || !strcmp(d->type, "message") ||
	    !strcmp(d->type, "message_delta")) {
		p = 0;
	} else if (!strcmp(d->type, "message_start")) {
		p = 1;
		d->final = 0;
	} else if (!strcmp(d->type, "response.completed") ||
	    !strcmp(d->type, "response.incomplete")) {
		p = 2;
	} else {
		d->final = 0;
		return;
	}
	u = &pl[p];
	if (!u->obj || (u->has == 0 && !u->bad)) {
		d->final = 0;
		return;
	}
	d->found = 1;
	if (u->bad) {
		d->invalid = 1;
		return;
	}
	if (u->has & 1) {
		prompt = u->raw[0];
	} else if (u->has & 4) {
		prompt = u->raw[2];
	}
	if (u->has & 16) {
		cached = u->raw[4];
	} else if (u->has & 128) {
		cached = u->raw[7];
	}
	if (cached > prompt) {
		d->invalid = 1;
		return;
	}
	d->usage.in = prompt - cached;
	d->usage.cached = cached + ((u->has & 32) ? u->raw[5] : 0);
	d->usage.cache_write = (u->has & 64) ? u->raw[6] : 0;
	d->usage.out = (u->has & 2) ? u->raw[1] : (u->has & 8) ? u->raw[3] : 0;
}
