/*
 * json_ref: the request scanner of src/json.c as it was before the
 * single-pass rewrite (commit 40bcbd2): jsmn (JSMN_STRICT) tokenizing,
 * check_value's grammar walk, nesting_ok's depth pass, then read_request
 * over the tokens. Kept verbatim, with every name prefixed ref_, as the
 * oracle the new scanner is compared against: tests/unit/test_json.c and
 * tests/fuzz/fuzz_json_diff.c #include this file and run both on the same
 * input. Compiled into those tests only, never into ./relay.
 *
 * Self-contained (its own static copy of jsmn and of json_unescape), so
 * a later change to src/json.c cannot move the oracle.
 *
 * No difference is intended: same result code, same struct json_request
 * (all zero unless JSON_OK or JSON_NO_MODEL), same json_top_string view
 * (including the earlier string left in *out when a later duplicate key
 * is not a string), for every input. The one behaviour that cannot be
 * compared: this version returns JSON_NOMEM when malloc fails for a body
 * of more than 256 tokens; the new one allocates nothing.
 */
/* Its own static copy of jsmn (src/json.c has none). */
#define JSMN_STATIC
#ifndef JSMN_STRICT
#define JSMN_STRICT
#endif
#ifndef JSMN_PARENT_LINKS
#define JSMN_PARENT_LINKS
#endif
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsmn.h"
#include "json.h"

int ref_json_scan_request(const char *body, size_t n,
    struct json_request *out);
int ref_json_top_string(const char *body, size_t n, const char *key,
    struct view *out);
static long ref_json_unescape(struct view raw, char *out, size_t cap);

enum {
	/* Longest key we compare against, decoded, plus its NUL. */
	REF_KEY_MAX = 32,
	/* Deepest request nesting accepted. */
	REF_MAX_DEPTH = 64
};

/* Tokens kept on the stack: a typical chat body needs a few dozen. */
#define REF_SMALL_TOKENS 256

static int
ref_is_ws(char c)
{
	/* RFC 8259 section 2: exactly these four. */
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static size_t
ref_skip_ws(const char *s, size_t n, size_t pos)
{
	while (pos < n && ref_is_ws(s[pos])) {
		pos++;
	}
	return pos;
}

static int
ref_is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* RFC 8259 section 6:
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static int
ref_valid_number(const char *p, size_t n)
{
	size_t i = 0;

	if (i < n && p[i] == '-') {
		i++;
	}
	if (i >= n) {
		return 0;
	}
	if (p[i] == '0') {
		i++;
	} else if (p[i] >= '1' && p[i] <= '9') {
		while (i < n && ref_is_digit(p[i])) {
			i++;
		}
	} else {
		return 0;
	}
	if (i < n && p[i] == '.') {
		i++;
		if (i >= n || !ref_is_digit(p[i])) {
			return 0;
		}
		while (i < n && ref_is_digit(p[i])) {
			i++;
		}
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		i++;
		if (i < n && (p[i] == '+' || p[i] == '-')) {
			i++;
		}
		if (i >= n || !ref_is_digit(p[i])) {
			return 0;
		}
		while (i < n && ref_is_digit(p[i])) {
			i++;
		}
	}
	return i == n;
}

static int
ref_lit_eq(const char *p, size_t n, const char *lit)
{
	size_t len = strlen(lit);

	return n == len && memcmp(p, lit, len) == 0;
}

/* jsmn strict only looks at a primitive's first byte ("nul", "tru",
 * "-", "1." all pass), so the whole token is checked here. */
static int
ref_valid_primitive(const char *p, size_t n)
{
	return ref_lit_eq(p, n, "true") || ref_lit_eq(p, n, "false") ||
	    ref_lit_eq(p, n, "null") || ref_valid_number(p, n);
}

/* Token counts: plain digits only, so "-1", "1.0", "1e3" are refused
 * rather than rounded, and anything above UINT64_MAX is refused rather
 * than clamped. */
static int
ref_parse_count(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0) {
		return -1;
	}
	for (i = 0; i < n; i++) {
		unsigned d;

		if (!ref_is_digit(p[i])) {
			return -1;
		}
		d = (unsigned)(p[i] - '0');
		if (v > (UINT64_MAX - d) / 10) {
			return -1;
		}
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int
ref_tok_count(const char *s, const jsmntok_t *t, uint64_t *out)
{
	if (t->type != JSMN_PRIMITIVE) {
		return -1;
	}
	return ref_parse_count(s + t->start, (size_t)(t->end - t->start), out);
}

static int
ref_tok_is_true(const char *s, const jsmntok_t *t)
{
	return t->type == JSMN_PRIMITIVE &&
	    ref_lit_eq(s + t->start, (size_t)(t->end - t->start), "true");
}

/* Compare a key token with name after decoding escapes. Comparing raw
 * bytes would let {"model":"cheap","mod\u0065l":"dear"} route and bill
 * by the first key while the provider, which decodes, obeys the second. */
static int
ref_key_is(const char *s, const jsmntok_t *t, const char *name)
{
	struct view raw;
	char buf[REF_KEY_MAX];
	size_t len = strlen(name);
	long got;

	if (t->type != JSMN_STRING) {
		return 0;
	}
	raw.p = s + t->start;
	raw.n = (size_t)(t->end - t->start);
	if (memchr(raw.p, '\\', raw.n) == NULL) {
		return raw.n == len && memcmp(raw.p, name, len) == 0;
	}
	got = ref_json_unescape(raw, buf, sizeof buf);
	return got >= 0 && (size_t)got == len && memcmp(buf, name, len) == 0;
}

/* A string token starts just after the quote at pos. jsmn already checked
 * the escapes; RFC 8259 section 7 also forbids raw bytes below 0x20. */
static int
ref_check_string(const char *s, size_t pos, const jsmntok_t *t)
{
	int i;

	if (t->type != JSMN_STRING || t->start != (int)pos + 1) {
		return -1;
	}
	for (i = t->start; i < t->end; i++) {
		if ((unsigned char)s[i] < 0x20) {
			return -1;
		}
	}
	return 0;
}

/*
 * Walk the jsmn tokens t[0..ntok) of s[0..n) in document order as the
 * RFC 8259 grammar for one value starting at pos, checking every byte
 * between tokens (blanks, ':' and ','), each token's kind and position,
 * and that each container closes where jsmn says it ends. All tokens must
 * be used. On success *endp is just past the value.
 *
 * Iterative on purpose: a body of a million '[' must not recurse. The
 * container stack lives in the tokens' parent fields, which are
 * rewritten here (jsmn's own links are not trusted on malformed input).
 */
static int
ref_check_value(const char *s, size_t n, size_t pos, jsmntok_t *t, int ntok,
    size_t *endp)
{
	enum { W_VALUE, W_KEY, W_AFTER } state = W_VALUE;
	int i = 0, cur = -1;
	jsmntok_t *tk = NULL;
	char c, closer;

	pos = ref_skip_ws(s, n, pos);
	for (;;) {
		switch (state) {
		case W_VALUE:
			if (pos >= n || i >= ntok) {
				return -1;
			}
			tk = &t[i];
			c = s[pos];
			if (c == '{' || c == '[') {
				if (tk->type != (c == '{' ? JSMN_OBJECT :
				    JSMN_ARRAY) || tk->start != (int)pos) {
					return -1;
				}
				tk->parent = cur;
				cur = i++;
				pos = ref_skip_ws(s, n, pos + 1);
				closer = c == '{' ? '}' : ']';
				if (pos < n && s[pos] == closer) {
					if (tk->end != (int)pos + 1) {
						return -1;
					}
					pos++;
					cur = tk->parent;
					state = W_AFTER;
				} else {
					state = c == '{' ? W_KEY : W_VALUE;
				}
			} else if (c == '"') {
				if (ref_check_string(s, pos, tk) < 0) {
					return -1;
				}
				pos = (size_t)tk->end + 1;
				i++;
				state = W_AFTER;
			} else {
				if (tk->type != JSMN_PRIMITIVE ||
				    tk->start != (int)pos ||
				    !ref_valid_primitive(s + pos,
				    (size_t)(tk->end - tk->start))) {
					return -1;
				}
				pos = (size_t)tk->end;
				i++;
				state = W_AFTER;
			}
			break;
		case W_KEY:
			if (pos >= n || i >= ntok || s[pos] != '"' ||
			    ref_check_string(s, pos, &t[i]) < 0) {
				return -1;
			}
			pos = ref_skip_ws(s, n, (size_t)t[i].end + 1);
			i++;
			if (pos >= n || s[pos] != ':') {
				return -1;
			}
			pos = ref_skip_ws(s, n, pos + 1);
			state = W_VALUE;
			break;
		case W_AFTER:
			if (cur == -1) {
				if (i != ntok) {
					return -1;
				}
				*endp = pos;
				return 0;
			}
			pos = ref_skip_ws(s, n, pos);
			if (pos >= n) {
				return -1;
			}
			tk = &t[cur];
			closer = tk->type == JSMN_OBJECT ? '}' : ']';
			if (s[pos] == ',') {
				pos = ref_skip_ws(s, n, pos + 1);
				state = tk->type == JSMN_OBJECT ? W_KEY :
				    W_VALUE;
			} else if (s[pos] == closer &&
			    tk->end == (int)pos + 1) {
				pos++;
				cur = tk->parent;
			} else {
				return -1;
			}
			break;
		}
	}
}

/*
 * Reject nesting deeper than REF_MAX_DEPTH before jsmn sees the body. This
 * must follow jsmn's own lexing, not just JSON's: in strict mode jsmn
 * reads a primitive up to a blank, ',', ']' or '}', so in
 * [t" [[[[ ... the quote belongs to the primitive and the brackets after
 * it are real to jsmn. A scan that took the quote as a string would see
 * one long string and let the deep run through. Stops where jsmn stops
 * (a NUL byte); anything jsmn rejects may be counted either way.
 */
static int
ref_nesting_ok(const char *s, size_t n)
{
	enum { L_TOP, L_STRING, L_PRIMITIVE } mode = L_TOP;
	size_t i, depth = 0;
	char c;

	for (i = 0; i < n && s[i] != '\0'; i++) {
		c = s[i];
		if (mode == L_PRIMITIVE && (ref_is_ws(c) || c == ',' || c == ']' ||
		    c == '}')) {
			/* The delimiter ends it and is read at top level. */
			mode = L_TOP;
		}
		switch (mode) {
		case L_STRING:
			if (c == '\\') {
				i++;
			} else if (c == '"') {
				mode = L_TOP;
			}
			break;
		case L_PRIMITIVE:
			break;
		case L_TOP:
			if (c == '"') {
				mode = L_STRING;
			} else if (c == '{' || c == '[') {
				if (++depth > REF_MAX_DEPTH) {
					return 0;
				}
			} else if (c == '}' || c == ']') {
				if (depth == 0) {
					return 0;
				}
				depth--;
			} else if (c == '-' || ref_is_digit(c) || c == 't' ||
			    c == 'f' || c == 'n') {
				mode = L_PRIMITIVE;
			}
			break;
		}
	}
	return 1;
}

/* Index of the token after t[i] and everything inside it: the first
 * token starting at or after t[i]'s end. */
static int
ref_next_sibling(const jsmntok_t *t, int ntok, int i)
{
	int end = t[i].end;

	for (i++; i < ntok && t[i].start < end; i++) {
	}
	return i;
}

/* Byte range of a value token, quotes included for strings. */
static size_t
ref_tok_off(const jsmntok_t *t)
{
	return (size_t)t->start - (t->type == JSMN_STRING ? 1 : 0);
}

static size_t
ref_tok_len(const jsmntok_t *t)
{
	return (size_t)(t->end - t->start) + (t->type == JSMN_STRING ? 2 : 0);
}

static int
ref_object_include_usage(const char *s, const jsmntok_t *t, int ntok, int obj)
{
	int k, on = 0;

	if (t[obj].type != JSMN_OBJECT) {
		return 0;
	}
	for (k = obj + 1; k < ntok && t[k].start < t[obj].end;
	    k = ref_next_sibling(t, ntok, k + 1)) {
		/* Duplicate keys: the last one wins, as for "model". */
		if (ref_key_is(s, &t[k], "include_usage")) {
			on = ref_tok_is_true(s, &t[k + 1]);
		}
	}
	return on;
}

/* The top-level key of t as plain bytes: the raw token, or its unescaped
 * form in buf. Returns the length, or -1 (not a string, bad escape). */
static long
ref_key_text(const char *s, const jsmntok_t *t, char *buf, size_t cap,
    const char **out)
{
	struct view raw;

	if (t->type != JSMN_STRING) {
		return -1;
	}
	raw.p = s + t->start;
	raw.n = (size_t)(t->end - t->start);
	if (memchr(raw.p, '\\', raw.n) == NULL) {
		*out = raw.p;
		return (long)raw.n;
	}
	*out = buf;
	return ref_json_unescape(raw, buf, cap);
}

#define REF_KEY_EQ(p, n, lit) ((n) == sizeof(lit) - 1 && \
	memcmp((p), (lit), sizeof(lit) - 1) == 0)

static void
ref_read_request(const char *s, const jsmntok_t *t, int ntok,
    struct json_request *out, int *has_model)
{
	int k, v = 0;
	uint64_t mt;
	char buf[REF_KEY_MAX];

	for (k = 1; k < ntok && t[k].start < t[0].end;
	    k = ref_next_sibling(t, ntok, v)) {
		const char *key;
		long n = ref_key_text(s, &t[k], buf, sizeof buf, &key);

		v = k + 1;
		if (n < 0) {
			continue;
		}
		/* Each key is read once, then matched by length and bytes. */
		if (REF_KEY_EQ(key, (size_t)n, "model")) {
			*has_model = t[v].type == JSMN_STRING;
			out->model.p = s + t[v].start;
			out->model.n = (size_t)(t[v].end - t[v].start);
			out->model_off = ref_tok_off(&t[v]);
			out->model_len = ref_tok_len(&t[v]);
		} else if (REF_KEY_EQ(key, (size_t)n, "stream")) {
			out->stream = ref_tok_is_true(s, &t[v]);
		} else if (REF_KEY_EQ(key, (size_t)n, "max_tokens") ||
		    REF_KEY_EQ(key, (size_t)n, "max_completion_tokens") ||
		    REF_KEY_EQ(key, (size_t)n, "max_output_tokens")) {
			/* Several limits: hold the largest, so a budget
			 * check never under-reserves. */
			if (ref_tok_count(s, &t[v], &mt) == 0 &&
			    (!out->has_max_tokens || mt > out->max_tokens)) {
				out->has_max_tokens = 1;
				out->max_tokens = mt;
			}
		} else if (REF_KEY_EQ(key, (size_t)n, "stream_options")) {
			out->has_stream_options = 1;
			out->stream_options_off = ref_tok_off(&t[v]);
			out->stream_options_len = ref_tok_len(&t[v]);
			out->include_usage = ref_object_include_usage(s, t, ntok,
			    v);
		}
	}
}

/* Validate body[0..n) as one JSON object and tokenize it. On JSON_OK *tp
 * is either small (the caller's array of nsmall tokens) or a malloc'd
 * array the caller frees. */
static int
ref_tokenize_object(const char *body, size_t n, jsmntok_t *small, size_t nsmall,
    jsmntok_t **tp, int *ntok)
{
	jsmn_parser p;
	jsmntok_t *t = NULL;
	size_t pos, end;
	int r, res;

	*tp = NULL;
	*ntok = 0;
	/* jsmn keeps offsets in int. */
	if (n >= INT_MAX) {
		return JSON_NOMEM;
	}
	pos = ref_skip_ws(body, n, 0);
	if (pos >= n) {
		return JSON_INVALID;
	}
	/* A bare top-level primitive is handled here: jsmn strict reports
	 * "1" at the end of input as partial, since it wants a delimiter. */
	if (body[pos] != '{' && body[pos] != '[' && body[pos] != '"') {
		end = pos;
		while (end < n && !ref_is_ws(body[end])) {
			end++;
		}
		if (!ref_valid_primitive(body + pos, end - pos) ||
		    ref_skip_ws(body, n, end) != n) {
			return JSON_INVALID;
		}
		return JSON_NOT_OBJECT;
	}

	if (!ref_nesting_ok(body, n)) {
		return JSON_INVALID;
	}
	/* Most request bodies fit the caller's small array: one pass. Only a
	 * bigger one is counted first, so its array fits it exactly. */
	t = small;
	jsmn_init(&p);
	r = jsmn_parse(&p, body, n, t, (unsigned)nsmall);
	if (r == JSMN_ERROR_NOMEM) {
		jsmn_init(&p);
		r = jsmn_parse(&p, body, n, NULL, 0);
		if (r <= 0) {
			return JSON_INVALID;
		}
		if ((size_t)r > SIZE_MAX / sizeof *t) {
			return JSON_NOMEM;
		}
		t = malloc((size_t)r * sizeof *t);
		if (t == NULL) {
			return JSON_NOMEM;
		}
		jsmn_init(&p);
		r = jsmn_parse(&p, body, n, t, (unsigned)r);
	}
	if (r <= 0) {
		res = r == JSMN_ERROR_NOMEM ? JSON_NOMEM : JSON_INVALID;
		goto fail;
	}
	if (ref_check_value(body, n, 0, t, (int)p.toknext, &end) < 0 ||
	    ref_skip_ws(body, n, end) != n) {
		res = JSON_INVALID;
		goto fail;
	}
	if (t[0].type != JSMN_OBJECT) {
		res = JSON_NOT_OBJECT;
		goto fail;
	}
	*tp = t;
	*ntok = (int)p.toknext;
	return JSON_OK;
fail:
	if (t != small) {
		free(t);
	}
	return res;
}

int
ref_json_scan_request(const char *body, size_t n, struct json_request *out)
{
	jsmntok_t small[REF_SMALL_TOKENS], *t;
	int ntok, has_model = 0, res;

	memset(out, 0, sizeof *out);
	res = ref_tokenize_object(body, n, small, REF_SMALL_TOKENS, &t, &ntok);
	if (res != JSON_OK) {
		return res;
	}
	out->object_end = (size_t)t[0].end - 1;
	ref_read_request(body, t, ntok, out, &has_model);
	if (t != small) {
		free(t);
	}
	return has_model ? JSON_OK : JSON_NO_MODEL;
}

int
ref_json_top_string(const char *body, size_t n, const char *key,
    struct view *out)
{
	jsmntok_t small[REF_SMALL_TOKENS], *t;
	int ntok, i, res;

	out->p = NULL;
	out->n = 0;
	res = ref_tokenize_object(body, n, small, REF_SMALL_TOKENS, &t, &ntok);
	if (res != JSON_OK) {
		return res;
	}
	res = JSON_NO_MODEL;
	for (i = 1; i + 1 < ntok && t[i].start < t[0].end;
	    i = ref_next_sibling(t, ntok, i + 1)) {
		if (ref_key_is(body, &t[i], key)) {
			if (t[i + 1].type == JSMN_STRING) {
				out->p = body + t[i + 1].start;
				out->n = (size_t)(t[i + 1].end - t[i + 1].start);
				res = JSON_OK;
			} else {
				res = JSON_NO_MODEL;
			}
		}
	}
	if (t != small) {
		free(t);
	}
	return res;
}


static int
ref_hex_val(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Read "\uXXXX" at raw[i..]; returns the code unit or -1. */
static long
ref_read_u(struct view raw, size_t i)
{
	long v = 0;
	size_t k;

	if (i + 6 > raw.n || raw.p[i] != '\\' || raw.p[i + 1] != 'u') {
		return -1;
	}
	for (k = i + 2; k < i + 6; k++) {
		int h = ref_hex_val(raw.p[k]);

		if (h < 0) {
			return -1;
		}
		v = v * 16 + h;
	}
	return v;
}

static size_t
ref_utf8_put(unsigned long cp, unsigned char *b)
{
	if (cp < 0x80) {
		b[0] = (unsigned char)cp;
		return 1;
	}
	if (cp < 0x800) {
		b[0] = (unsigned char)(0xc0 | (cp >> 6));
		b[1] = (unsigned char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		b[0] = (unsigned char)(0xe0 | (cp >> 12));
		b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
		b[2] = (unsigned char)(0x80 | (cp & 0x3f));
		return 3;
	}
	b[0] = (unsigned char)(0xf0 | (cp >> 18));
	b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
	b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
	b[3] = (unsigned char)(0x80 | (cp & 0x3f));
	return 4;
}

static long
ref_json_unescape(struct view raw, char *out, size_t cap)
{
	unsigned char b[4];
	size_t i = 0, o = 0, len;
	long hi, lo;
	unsigned long cp;

	if (cap > LONG_MAX) {
		cap = LONG_MAX;
	}
	while (i < raw.n) {
		if (raw.p[i] != '\\') {
			b[0] = (unsigned char)raw.p[i++];
			len = 1;
		} else if (i + 1 >= raw.n) {
			return -1;
		} else if (raw.p[i + 1] != 'u') {
			switch (raw.p[i + 1]) {
			case '"': b[0] = '"'; break;
			case '\\': b[0] = '\\'; break;
			case '/': b[0] = '/'; break;
			case 'b': b[0] = '\b'; break;
			case 'f': b[0] = '\f'; break;
			case 'n': b[0] = '\n'; break;
			case 'r': b[0] = '\r'; break;
			case 't': b[0] = '\t'; break;
			default: return -1;
			}
			i += 2;
			len = 1;
		} else {
			hi = ref_read_u(raw, i);
			if (hi < 0) {
				return -1;
			}
			i += 6;
			cp = (unsigned long)hi;
			/* UTF-16 surrogates (RFC 8259 section 7): a high
			 * one must be followed by an escaped low one. A lone
			 * half has no UTF-8 form, so it is refused. */
			if (hi >= 0xdc00 && hi <= 0xdfff) {
				return -1;
			}
			if (hi >= 0xd800 && hi <= 0xdbff) {
				lo = ref_read_u(raw, i);
				if (lo < 0xdc00 || lo > 0xdfff) {
					return -1;
				}
				i += 6;
				cp = 0x10000 + (((unsigned long)hi - 0xd800) <<
				    10) + ((unsigned long)lo - 0xdc00);
			}
			/* \u0000 decodes to a NUL byte inside the output;
			 * callers go by the returned length. */
			len = ref_utf8_put(cp, b);
		}
		if (cap - o <= len) {
			return -1;
		}
		memcpy(out + o, b, len);
		o += len;
	}
	if (o >= cap) {
		return -1;
	}
	out[o] = '\0';
	return (long)o;
}

/*
 * The comparison both differential tests use: the new json_scan_request
 * and json_top_string (for a few keys, the long one past KEY_MAX) against
 * the reference on s[0..n). Returns NULL when every result code and every
 * field agrees (views by address, so by offset into s), else what
 * differs first.
 */
static const char *
ref_diff(const char *s, size_t n)
{
	static const char *const keys[] = {
		"model", "id", "status", "amount", "note", "stream",
		"include_usage", "", "a_key_longer_than_the_32_byte_buffer",
	};
	struct json_request a, b;
	struct view va, vb;
	size_t i;

	memset(&a, 0x5a, sizeof a);
	memset(&b, 0xa5, sizeof b);
	if (json_scan_request(s, n, &a) != ref_json_scan_request(s, n, &b)) {
		return "json_scan_request result";
	}
#define REF_SAME(f) if (a.f != b.f) return "json_request." #f
	REF_SAME(model.p);
	REF_SAME(model.n);
	REF_SAME(model_off);
	REF_SAME(model_len);
	REF_SAME(stream);
	REF_SAME(has_max_tokens);
	REF_SAME(max_tokens);
	REF_SAME(has_stream_options);
	REF_SAME(include_usage);
	REF_SAME(stream_options_off);
	REF_SAME(stream_options_len);
	REF_SAME(object_end);
#undef REF_SAME
	for (i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		va.p = "x";
		va.n = 1;
		vb = va;
		if (json_top_string(s, n, keys[i], &va) !=
		    ref_json_top_string(s, n, keys[i], &vb)) {
			return "json_top_string result";
		}
		if (va.p != vb.p || va.n != vb.n) {
			return "json_top_string view";
		}
	}
	return NULL;
}
