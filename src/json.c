/*
 * json: the few JSON questions the relay asks.
 *
 * json_scan_request validates a whole request body and reports the
 * top-level fields routing and billing need (model, stream, max tokens,
 * stream_options) as offsets into the body, so the caller can splice in
 * the upstream model id without re-serialising anything; json_top_string
 * does the same validation for one named key. Both are one pass of a
 * validating scanner (scan() below): no tokens, no allocation, no
 * recursion. json_escape / json_unescape convert string contents. Usage
 * counts in responses are read by usage.c, not here.
 *
 * What it does not do: build a DOM, decode numbers other than the token
 * limits, or check that strings are valid UTF-8.
 *
 * The scanner replaced jsmn (a tokenizer that also needed a grammar walk
 * and a nesting pass over its tokens): jsmn stays as the reference the
 * scanner is checked against, token for token, in tests/unit/json_ref.c
 * and the json_diff fuzz target.
 *
 * Ownership: all views and offsets point into the caller's input; nothing
 * is kept between calls and nothing is allocated: the scanner's state is
 * a few words.
 */
#include <limits.h>
#include <string.h>

#include "json.h"

enum {
	/* Longest key we compare against, decoded, plus its NUL. */
	KEY_MAX = 32,
	/* Deepest request nesting accepted (RFC 8259 section 9 allows a
	 * limit); real tool schemas stay well under it. The scanner costs
	 * O(n) whatever the depth (it was the limit that kept jsmn's
	 * quadratic close walk in check), and one bit per level of a
	 * uint64_t records which open containers are objects. */
	MAX_DEPTH = 64
};

/* The classes of bytes the scanner skips runs of: blanks (RFC 8259
 * section 2: exactly these four) and digits. */
enum { C_WS = 1, C_DIGIT = 2 };

static const unsigned char CLASS[256] = {
	[' '] = C_WS, ['\t'] = C_WS, ['\n'] = C_WS, ['\r'] = C_WS,
	['0'] = C_DIGIT, ['1'] = C_DIGIT, ['2'] = C_DIGIT, ['3'] = C_DIGIT,
	['4'] = C_DIGIT, ['5'] = C_DIGIT, ['6'] = C_DIGIT, ['7'] = C_DIGIT,
	['8'] = C_DIGIT, ['9'] = C_DIGIT
};

static int
is_digit(char c)
{
	return CLASS[(unsigned char)c] & C_DIGIT;
}

/* The first index from pos on (below n) whose byte is not of class cls;
 * n when the run goes to the end. */
static size_t
skip_class(const char *s, size_t n, size_t pos, unsigned cls)
{
	while (pos < n && (CLASS[(unsigned char)s[pos]] & cls)) {
		pos++;
	}
	return pos;
}

/* RFC 8259 section 6, the number starting at p[i] (i < n):
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
 * Returns the index just past it, or 0 when there is no number there. */
static size_t
number_end(const char *p, size_t n, size_t i)
{
	if (p[i] == '-' && ++i >= n) {
		return 0;
	}
	if (p[i] == '0') {
		i++;
	} else if (p[i] >= '1' && p[i] <= '9') {
		i = skip_class(p, n, i + 1, C_DIGIT);
	} else {
		return 0;
	}
	if (i < n && p[i] == '.') {
		if (++i >= n || !is_digit(p[i])) {
			return 0;
		}
		i = skip_class(p, n, i, C_DIGIT);
	}
	if (i < n && (p[i] == 'e' || p[i] == 'E')) {
		if (++i < n && (p[i] == '+' || p[i] == '-')) {
			i++;
		}
		if (i >= n || !is_digit(p[i])) {
			return 0;
		}
		i = skip_class(p, n, i, C_DIGIT);
	}
	return i;
}

/* For the ledger's record parser; number_end() itself stays static, so
 * the scanner keeps it inline. */
size_t
json_number_end(const char *p, size_t n, size_t i)
{
	return number_end(p, n, i);
}

/* The literal (false, null, true) or number starting at s[i] (i < n):
 * returns the index just past it, or 0 when there is none. */
static size_t
scalar_end(const char *s, size_t n, size_t i)
{
	const char *lit;
	size_t k;
	char c = s[i];

	if (c == 'f' || c == 'n' || c == 't') {
		lit = c == 'f' ? "false" : c == 'n' ? "null" : "true";
		k = 4 + (c == 'f');
		return n - i >= k && memcmp(s + i, lit, k) == 0 ? i + k : 0;
	}
	return number_end(s, n, i);
}

/* A key's text for comparing: its raw contents p[0..n) (between the
 * quotes), or when it holds a backslash (esc) its decoded form in buf.
 * Comparing raw bytes would let {"model":"cheap","mod\u0065l":"dear"}
 * route and bill by the first key while the provider, which decodes,
 * obeys the second. Returns the length, or -1 when it does not decode
 * (a lone surrogate) or is too long to be any key we look for. */
static long
key_text(const char *p, size_t n, int esc, char *buf, const char **out)
{
	struct view raw;

	*out = p;
	if (!esc) {
		return (long)n;
	}
	raw.p = p;
	raw.n = n;
	*out = buf;
	return json_unescape(raw, buf, KEY_MAX);
}

/*
 * The request scanner: one pass over the body that checks all of RFC
 * 8259 (what jsmn + check_value + the depth pass did between them) and
 * notes the top-level members it is asked about as it passes them.
 * Iterative, with no tokens: its whole memory is the depth and one bit
 * per open container, so a hostile body costs O(n) time and a few words
 * of stack whatever its shape.
 */

/* What a key means to the scanner: a top-level member json_scan_request
 * reads (K_MODEL...K_OPTIONS) or json_top_string's key (K_WANT), or
 * "include_usage" directly inside a top-level "stream_options" object
 * (K_USAGE). */
enum { K_OTHER, K_MODEL, K_STREAM, K_MAX, K_OPTIONS, K_USAGE, K_WANT, K_N,
    K_STORE, K_BACKGROUND, K_PREV };

enum { SEEN_MAX = 64 };		/* other top-level names checked for twins */

struct scan {
	struct json_request *req;	/* json_scan_request: filled */
	unsigned known;		/* bit per name the relay reads, once seen */
	uint64_t seen[SEEN_MAX];	/* hashes of the other names seen */
	size_t nseen;
	const char *want;		/* json_top_string: the key, else NULL */
	size_t want_n;
	struct view *val;		/* json_top_string: its value */
	int res;	/* JSON_OK while the last "model" (or wanted key) seen
			 * holds a string, else JSON_NO_MODEL */
};

#define ONES ((uint64_t)0x0101010101010101)

/* Skip blanks from i, with their usual case, no blank at all, inline. */
#define SKIP_WS(i) ((i) < n && (unsigned char)s[i] <= ' ' ? \
	skip_class(s, n, (i), C_WS) : (i))

/* The first index at or after i where s[] holds '"', '\\' or a control
 * character, or n. Eight bytes at a time while eight remain: the
 * has-zero-byte test (x - 1) & ~x & 0x80 per byte, applied to w < 0x20,
 * w ^ '"' and w ^ '\\', flags a word iff it holds such a byte (bytes
 * >= 0x80 never fire: ~w masks them, and '"' and '\\' are ASCII). Borrows
 * only carry upwards, so the lowest flagged byte is a real one: on a
 * little-endian machine it is found from the trailing zero count, else
 * the word is finished a byte at a time. Never reads s[n]. */
static size_t
plain_run(const char *s, size_t n, size_t i)
{
	uint64_t w, hit;

	while (n - i >= 8) {
		memcpy(&w, s + i, 8);
		hit = ((w - ONES * 0x20) | ((w ^ ONES * '"') - ONES) |
		    ((w ^ ONES * '\\') - ONES)) & ~w & ONES * 0x80;
		if (hit != 0) {
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
			return i + (size_t)__builtin_ctzll(hit) / 8;
#else
			break;
#endif
		}
		i += 8;
	}
	while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' &&
	    s[i] != '\\') {
		i++;
	}
	return i;
}

/* The string whose opening quote is just before s[i]: returns the index
 * just past its closing quote, or 0 when it is not a valid string (a raw
 * control character, a bad escape, no closing quote). Sets *esc when it
 * holds an escape. */
static size_t
string_end(const char *s, size_t n, size_t i, int *esc)
{
	int k;

	for (;;) {
		i = plain_run(s, n, i);
		if (i >= n) {
			return 0;
		}
		if (s[i] == '"') {
			return i + 1;
		}
		if (s[i] != '\\' || n - i < 2) {
			return 0;
		}
		*esc = 1;
		switch (s[i + 1]) {
		case '"': case '\\': case '/': case 'b': case 'f': case 'n':
		case 'r': case 't':
			i += 2;
			break;
		case 'u':
			if (n - i < 6) {
				return 0;
			}
			for (k = 2; k < 6; k++) {
				if (util_hex_digit((unsigned char)s[i + k]) < 0) {
					return 0;
				}
			}
			i += 6;
			break;
		default:
			return 0;
		}
	}
}

/* What the key with raw contents p[0..n) means (see enum above). A
 * key is looked for by its decoded text, so "mod\u0065l" is "model". */
static int
key_id(const struct scan *sc, const char *p, size_t n, int esc)
{
	static const struct {
		const char *name;
		unsigned char len, id;
	} keys[] = {
		{ "n", 1, K_N }, { "model", 5, K_MODEL }, { "store", 5, K_STORE },
		{ "stream", 6, K_STREAM }, { "max_tokens", 10, K_MAX },
		{ "background", 10, K_BACKGROUND },
		{ "include_usage", 13, K_USAGE },
		{ "stream_options", 14, K_OPTIONS },
		{ "max_output_tokens", 17, K_MAX },
		{ "previous_response_id", 20, K_PREV },
		{ "max_completion_tokens", 21, K_MAX }
	};
	char buf[KEY_MAX];
	long len = key_text(p, n, esc, buf, &p);
	size_t i;

	if (len < 0) {
		return K_OTHER;
	}
	n = (size_t)len;
	if (sc->want != NULL) {
		return n == sc->want_n && memcmp(p, sc->want, n) == 0 ?
		    K_WANT : K_OTHER;
	}
	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (keys[i].len == n && memcmp(p, keys[i].name, n) == 0) {
			return keys[i].id;
		}
	}
	return K_OTHER;
}

/* The value s[v..end) of a top-level member whose key is key. Duplicate
 * keys: the last one wins. */
static void
member(struct scan *sc, const char *s, int key, size_t v, size_t end)
{
	struct json_request *r = sc->req;
	int str = s[v] == '"';
	uint64_t mt;

	switch (key) {
	case K_WANT:
		/* A later value that is not a string makes it JSON_NO_MODEL
		 * but leaves *val at the earlier string, as the jsmn version
		 * did: callers read *val on JSON_OK only. */
		sc->res = str ? JSON_OK : JSON_NO_MODEL;
		if (str) {
			sc->val->p = s + v + 1;
			sc->val->n = end - v - 2;
		}
		break;
	case K_MODEL:
		/* The range is noted whatever the value; only a string is
		 * a model. */
		sc->res = str ? JSON_OK : JSON_NO_MODEL;
		r->model.p = s + v + str;
		r->model.n = end - v - 2 * (size_t)str;
		r->model_off = v;
		r->model_len = end - v;
		break;
	case K_STREAM:
		r->stream = s[v] == 't';
		break;
	case K_MAX:
		/* Several limits: hold the largest, so a budget check never
		 * under-reserves. */
		if (util_parse_u64(s + v, end - v, &mt) == 0 &&
		    (!r->has_max_tokens || mt > r->max_tokens)) {
			r->has_max_tokens = 1;
			r->max_tokens = mt;
		}
		break;
	case K_OPTIONS:
		r->has_stream_options = 1;
		r->stream_options_off = v;
		r->stream_options_len = end - v;
		break;
	case K_STORE:
		r->store = s[v] == 't' ? 1 : s[v] == 'f' ? 0 : -1;
		break;
	case K_BACKGROUND:
		r->background = s[v] == 't';
		break;
	case K_PREV:
		r->previous.p = str ? s + v + 1 : NULL;
		r->previous.n = str ? end - v - 2 : 0;
		break;
	case K_N:
		if (util_parse_u64(s + v, end - v, &mt) < 0 || mt == 0) {
			mt = 1;
		}
		r->n = mt;
		break;
	}
}

/* FNV-1a of a name's text. */
static uint64_t
name_hash(const char *p, size_t n)
{
	uint64_t h = 0xcbf29ce484222325ull;
	size_t i;

	for (i = 0; i < n; i++) {
		h = (h ^ (unsigned char)p[i]) * 0x100000001b3ull;
	}
	return h;
}

/* A top-level name p[0..n) (id what it means): note a twin. Names the
 * relay reads are told apart exactly (by length within an id); the
 * others by a hash of their decoded text. */
static void
twin_check(struct scan *sc, const char *p, size_t n, int esc, int id)
{
	char buf[KEY_MAX];
	const char *t;
	long len;
	uint64_t h;
	size_t i;

	if (sc->req == NULL) {
		return;
	}
	if (id != K_OTHER) {
		/* K_MAX has three names: their lengths tell them apart. */
		unsigned bit = 1u << (id * 3);

		if (id == K_MAX) {
			len = key_text(p, n, esc, buf, &t);
			bit = 1u << (id * 3 + (len == 10 ? 0 : len == 17 ? 1 :
			    2));
		}
		sc->req->duplicate |= (sc->known & bit) != 0;
		sc->known |= bit;
		return;
	}
	len = key_text(p, n, esc, buf, &t);
	h = len >= 0 ? name_hash(t, (size_t)len) : name_hash(p, n) ^ 1;
	for (i = 0; i < sc->nseen; i++) {
		if (sc->seen[i] == h) {
			sc->req->duplicate = 1;
			return;
		}
	}
	if (sc->nseen < SEEN_MAX) {
		sc->seen[sc->nseen++] = h;
	}
}

/* A key with raw contents p[0..n) at depth: what it means goes to *key1
 * for a top-level member, to *key2 directly inside the top-level
 * "stream_options" object (a new top-level key clears *key2). */
static void
key_seen(struct scan *sc, const char *p, size_t n, int esc, unsigned depth,
    int *key1, int *key2)
{
	if (depth == 1) {
		*key1 = key_id(sc, p, n, esc);
		twin_check(sc, p, n, esc, *key1);
		*key2 = K_OTHER;
		if (*key1 == K_OPTIONS) {
			sc->req->include_usage = 0;
		}
	} else if (depth == 2 && *key1 == K_OPTIONS) {
		*key2 = key_id(sc, p, n, esc);
	}
}

/* A value that started at v1 (depth 1) or v2 (depth 2) ended at end,
 * directly inside the container at depth >= 1. */
static void
value_seen(struct scan *sc, const char *s, unsigned depth, int key1,
    int key2, size_t v1, size_t v2, size_t end)
{
	if (depth == 1) {
		member(sc, s, key1, v1, end);
	} else if (depth == 2 && key2 == K_USAGE) {
		/* The last include_usage of the last stream_options object
		 * wins. */
		sc->req->include_usage = s[v2] == 't';
	}
}

/*
 * Validate s[0..n) as one JSON value (blanks around it allowed) and feed
 * the members of a top-level object to member(). Returns JSON_OK (a valid
 * object; sc->res says whether the key was found), JSON_NOT_OBJECT,
 * JSON_INVALID or JSON_NOMEM.
 *
 * One token per turn of the loop, after the blanks before it; st says
 * what may come there. objs bit d is set when the container open at
 * depth d + 1 is an object; in_obj is the bit of the innermost one. key1
 * is what the key of the top-level member being read means, v1 where its
 * value starts; key2 and v2 the same one level down, looked at only
 * inside a top-level "stream_options" object.
 */
static int
scan(const char *s, size_t n, struct scan *sc)
{
	enum { S_VALUE, S_KEY, S_COLON, S_AFTER, S_END } st = S_VALUE;
	uint64_t objs = 0;
	unsigned depth = 0, in_obj = 0;
	size_t i = 0, k, v1 = 0, v2 = 0, end = 0;
	int key1 = K_OTHER, key2 = K_OTHER, esc;
	char c;

	/* jsmn kept offsets in int, so bodies this large were refused; they
	 * still are (max_body is far below). */
	if (n >= INT_MAX) {
		return JSON_NOMEM;
	}
	for (;;) {
		i = SKIP_WS(i);
		if (i >= n) {
			break;
		}
		c = s[i];
		switch (st) {
		case S_AFTER:
			i++;
			if (c == ',') {
				st = in_obj ? S_KEY : S_VALUE;
				continue;
			}
			if (c != (in_obj ? '}' : ']')) {
				return JSON_INVALID;
			}
			goto close;
		case S_KEY:
			if (c != '"') {
				return JSON_INVALID;
			}
			break;
		case S_COLON:
			if (c != ':') {
				return JSON_INVALID;
			}
			i++;
			st = S_VALUE;
			continue;
		case S_END:
			return JSON_INVALID;
		case S_VALUE:
			if (depth == 1) {
				v1 = i;
			} else if (depth == 2) {
				v2 = i;
			}
			break;
		}
		if (c == '"') {
			/* A key or a string value: one call site, so the
			 * string scan is inlined here. */
			k = i + 1;
			esc = 0;
			i = string_end(s, n, k, &esc);
			if (i == 0) {
				return JSON_INVALID;
			}
			if (st == S_VALUE) {
				goto done;
			}
			key_seen(sc, s + k, i - 1 - k, esc, depth, &key1, &key2);
			st = S_COLON;
			continue;
		}
		if (c == '{' || c == '[') {
			if (depth == MAX_DEPTH) {
				return JSON_INVALID;
			}
			in_obj = c == '{';
			objs = (objs & ~((uint64_t)1 << depth)) |
			    (uint64_t)in_obj << depth;
			depth++;
			st = in_obj ? S_KEY : S_VALUE;
			i = SKIP_WS(i + 1);
			/* Empty: '}' and ']' follow '{' and '[' by two in
			 * ASCII. */
			if (i >= n || s[i] != c + 2) {
				continue;
			}
			i++;
			goto close;
		}
		if ((i = scalar_end(s, n, i)) == 0) {
			return JSON_INVALID;
		}
		goto done;
close:
		depth--;
		in_obj = depth > 0 && (objs >> (depth - 1) & 1);
done:
		/* A value ended at i, directly inside the container at
		 * depth (0: the whole document). */
		st = S_AFTER;
		if (depth > 0) {
			value_seen(sc, s, depth, key1, key2, v1, v2, i);
		} else {
			st = S_END;
			end = i;
		}
	}
	if (st != S_END) {
		return JSON_INVALID;
	}
	/* Only an object ends with '}'. */
	if (s[end - 1] != '}') {
		return JSON_NOT_OBJECT;
	}
	if (sc->req != NULL) {
		sc->req->object_end = end - 1;
	}
	return JSON_OK;
}

int
json_scan_request(const char *body, size_t n, struct json_request *out)
{
	struct scan sc;
	int res;

	memset(out, 0, sizeof *out);
	out->store = -1;
	sc.req = out;
	sc.want = NULL;
	sc.want_n = 0;
	sc.val = NULL;
	sc.known = 0;
	sc.nseen = 0;
	sc.res = JSON_NO_MODEL;
	res = scan(body, n, &sc);
	if (res != JSON_OK) {
		/* Nothing is reported unless the body is a valid object. */
		memset(out, 0, sizeof *out);
		return res;
	}
	if (out->n == 0) {
		out->n = 1;
	}
	return sc.res;
}

int
json_top_string(const char *body, size_t n, const char *key,
    struct view *out)
{
	struct scan sc;
	int res;

	memset(&sc, 0, sizeof sc);
	sc.want = key;
	sc.want_n = strlen(key);
	sc.val = out;
	sc.res = JSON_NO_MODEL;
	out->p = NULL;
	out->n = 0;
	res = scan(body, n, &sc);
	if (res != JSON_OK) {
		out->p = NULL;
		out->n = 0;
		return res;
	}
	return sc.res;
}

/* JSON's two-character escapes (RFC 8259 section 7): "\\" followed by
 * ESC_CHARS[k] stands for the byte ESC_BYTES[k]. */
static const char ESC_CHARS[] = "\"\\/bfnrt";
static const char ESC_BYTES[] = "\"\\/\b\f\n\r\t";

#define ESC_N (sizeof ESC_CHARS - 1)

/* Where c stands in set (ESC_CHARS or ESC_BYTES), or ESC_N. A loop the
 * compiler inlines: no call for the few bytes that need it. */
static size_t
esc_index(const char *set, char c)
{
	size_t k;

	for (k = 0; k < ESC_N && set[k] != c; k++) {
	}
	return k;
}

/* Read "\uXXXX" at raw[i..]; returns the code unit or -1. */
static long
read_u(struct view raw, size_t i)
{
	long v = 0;
	size_t k;

	if (i + 6 > raw.n || raw.p[i] != '\\' || raw.p[i + 1] != 'u') {
		return -1;
	}
	for (k = i + 2; k < i + 6; k++) {
		int h = util_hex_digit((unsigned char)raw.p[k]);

		if (h < 0) {
			return -1;
		}
		v = v * 16 + h;
	}
	return v;
}

/* Append b[0..len) to out at *o, keeping room for the NUL. Returns 0,
 * or -1 when it does not fit in cap. */
static int
put(char *out, size_t cap, size_t *o, const void *b, size_t len)
{
	if (cap - *o <= len) {
		return -1;
	}
	memcpy(out + *o, b, len);
	*o += len;
	return 0;
}

/* NUL-terminate out[0..o): returns o, or -1 when cap has no room. */
static long
put_end(char *out, size_t cap, size_t o)
{
	if (o >= cap) {
		return -1;
	}
	out[o] = '\0';
	return (long)o;
}

static size_t
utf8_put(unsigned long cp, unsigned char *b)
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

long
json_unescape(struct view raw, char *out, size_t cap)
{
	unsigned char b[4];
	size_t i = 0, o = 0, len, k;
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
			k = esc_index(ESC_CHARS, raw.p[i + 1]);
			if (k == ESC_N) {
				return -1;
			}
			b[0] = (unsigned char)ESC_BYTES[k];
			i += 2;
			len = 1;
		} else {
			hi = read_u(raw, i);
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
				lo = read_u(raw, i);
				if (lo < 0xdc00 || lo > 0xdfff) {
					return -1;
				}
				i += 6;
				cp = 0x10000 + (((unsigned long)hi - 0xd800) <<
				    10) + ((unsigned long)lo - 0xdc00);
			}
			/* \u0000 decodes to a NUL byte inside the output;
			 * callers go by the returned length. */
			len = utf8_put(cp, b);
		}
		if (put(out, cap, &o, b, len) < 0) {
			return -1;
		}
	}
	return put_end(out, cap, o);
}

long
json_escape(const char *in, size_t n, char *out, size_t cap)
{
	static const char hex[] = "0123456789abcdef";
	char b[6];
	size_t i, o = 0, len, k;

	if (cap > LONG_MAX) {
		cap = LONG_MAX;
	}
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		/* DEL is legal raw JSON but not safe in every log viewer or
		 * terminal, so it is escaped too. Bytes >= 0x80 pass
		 * through: UTF-8 stays readable. '/' is never escaped. */
		if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) {
			b[0] = (char)c;
			len = 1;
		} else if ((k = esc_index(ESC_BYTES, (char)c)) < ESC_N) {
			b[0] = '\\';
			b[1] = ESC_CHARS[k];
			len = 2;
		} else {
			memcpy(b, "\\u00", 4);
			b[4] = hex[c >> 4];
			b[5] = hex[c & 0xf];
			len = 6;
		}
		if (put(out, cap, &o, b, len) < 0) {
			return -1;
		}
	}
	return put_end(out, cap, o);
}
