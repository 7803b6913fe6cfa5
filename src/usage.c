/* usage: a streaming JSON scanner that reads usage by meaning (see
 * usage.h). One byte at a time through a validating grammar, except
 * inside strings, which are skipped in a tight loop: most of a response
 * is text. The key path of the current value is kept for the first eight
 * levels (deeper values never matter), and each value's role (a count, a
 * content string, a field the relay reads) is decided once, when it
 * starts. */
#include <string.h>

#include "json.h"
#include "usage.h"
#include "util.h"

enum {
	MAX_DEPTH = 64,		/* deeper documents are refused (bit stack) */
	KEY_DEPTH = 8		/* levels whose keys are kept */
};

/* Where in the grammar. */
enum {
	ST_VALUE,		/* a value must start */
	ST_ARR_FIRST,		/* after '[': a value or ']' */
	ST_OBJ_FIRST,		/* after '{': a key or '}' */
	ST_KEY_NEXT,		/* after ',' in an object: a key */
	ST_KEY,			/* inside a key string */
	ST_COLON,		/* after a key */
	ST_AFTER,		/* a value ended */
	ST_STR,			/* inside a string value */
	ST_NUM,			/* inside a number */
	ST_LIT,			/* inside true, false or null */
	ST_ERROR
};

/* String sub-states. */
enum { SUB_NONE, SUB_ESC, SUB_U };

/* Number sub-states: what the last byte was. */
enum { N_MINUS, N_ZERO, N_INT, N_DOT, N_FRAC, N_E, N_ESIGN, N_EXP };

/* Keys the relay knows; everything else is K_OTHER. */
enum {
	K_OTHER, K_ELEM, K_USAGE, K_CHOICES, K_TYPE, K_ID, K_STATUS,
	K_MESSAGE, K_RESPONSE, K_DELTA, K_CONTENT, K_TEXT,
	K_REASONING_CONTENT, K_REASONING, K_REFUSAL, K_TOOL_CALLS,
	K_FUNCTION, K_ARGUMENTS, K_PARTIAL_JSON, K_THINKING, K_OUTPUT,
	K_PROMPT_TOKENS, K_COMPLETION_TOKENS, K_INPUT_TOKENS, K_OUTPUT_TOKENS,
	K_PROMPT_DETAILS, K_INPUT_DETAILS, K_CACHED_TOKENS, K_CACHE_READ,
	K_CACHE_CREATION, K_CACHE_HIT
};

/* (Sorted by length: the search stops at the first longer name.) */
#define KEY(s, id) { s, sizeof(s) - 1, id }
static const struct {
	const char *name;
	unsigned char len;
	unsigned char id;
} known_keys[] = {
	KEY("id", K_ID),
	KEY("type", K_TYPE),
	KEY("text", K_TEXT),
	KEY("delta", K_DELTA),
	KEY("usage", K_USAGE),
	KEY("output", K_OUTPUT),
	KEY("status", K_STATUS),
	KEY("choices", K_CHOICES),
	KEY("message", K_MESSAGE),
	KEY("content", K_CONTENT),
	KEY("refusal", K_REFUSAL),
	KEY("response", K_RESPONSE),
	KEY("function", K_FUNCTION),
	KEY("thinking", K_THINKING),
	KEY("reasoning", K_REASONING),
	KEY("arguments", K_ARGUMENTS),
	KEY("tool_calls", K_TOOL_CALLS),
	KEY("partial_json", K_PARTIAL_JSON),
	KEY("input_tokens", K_INPUT_TOKENS),
	KEY("prompt_tokens", K_PROMPT_TOKENS),
	KEY("output_tokens", K_OUTPUT_TOKENS),
	KEY("cached_tokens", K_CACHED_TOKENS),
	KEY("completion_tokens", K_COMPLETION_TOKENS),
	KEY("reasoning_content", K_REASONING_CONTENT),
	KEY("input_tokens_details", K_INPUT_DETAILS),
	KEY("prompt_tokens_details", K_PROMPT_DETAILS),
	KEY("cache_read_input_tokens", K_CACHE_READ),
	KEY("prompt_cache_hit_tokens", K_CACHE_HIT),
	KEY("cache_creation_input_tokens", K_CACHE_CREATION),
};
#undef KEY

/* The count fields, per place. */
enum {
	F_PROMPT, F_COMPLETION, F_INPUT, F_OUTPUT, F_DETAILS_CACHED,
	F_CACHE_READ, F_CACHE_CREATION, F_HIT, F_COUNT
};

/* Places of usage: the top level, message.usage, response.usage. */
enum { PLACE_TOP, PLACE_MESSAGE, PLACE_RESPONSE, PLACES };

/* Content families (usage_scan.content[]). */
enum { C_CHOICES, C_TOP_DELTA, C_DELTA, C_BODY };

/* Roles: what a value is for. */
enum {
	R_NONE = 0,
	R_TYPE, R_ID, R_STATUS,			/* captured strings */
	R_CHOICES,				/* top-level choices */
	R_USAGE_OBJ = 8,			/* + place */
	R_CONTENT = 16,				/* + family */
	R_COUNT = 32				/* + place * 8 + field */
};

static unsigned char
key_id(const char *raw, size_t n)
{
	char dec[64];
	const char *k = raw;
	long len = (long)n;
	size_t i;

	if (memchr(raw, '\\', n) != NULL) {
		len = json_unescape((struct view){ raw, n }, dec, sizeof(dec));
		if (len < 0) {
			return K_OTHER;
		}
		k = dec;
	}
	for (i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]) &&
	    known_keys[i].len <= len; i++) {
		if (known_keys[i].len == len && memcmp(known_keys[i].name, k,
		    (size_t)len) == 0) {
			return known_keys[i].id;
		}
	}
	return K_OTHER;
}

static int
count_field(unsigned char k)
{
	switch (k) {
	case K_PROMPT_TOKENS: return F_PROMPT;
	case K_COMPLETION_TOKENS: return F_COMPLETION;
	case K_INPUT_TOKENS: return F_INPUT;
	case K_OUTPUT_TOKENS: return F_OUTPUT;
	case K_CACHE_READ: return F_CACHE_READ;
	case K_CACHE_CREATION: return F_CACHE_CREATION;
	case K_CACHE_HIT: return F_HIT;
	default: return -1;
	}
}

static int
usage_place(unsigned char k)
{
	return k == K_MESSAGE ? PLACE_MESSAGE : k == K_RESPONSE ?
	    PLACE_RESPONSE : -1;
}

/* The role of a value inside a usage object at place pl: k are the keys
 * below "usage" (n of them). */
static unsigned char
usage_role(int pl, const unsigned char *k, int n)
{
	int f;

	if (n == 1 && (f = count_field(k[0])) >= 0) {
		return (unsigned char)(R_COUNT + pl * 8 + f);
	}
	if (n == 2 && (k[0] == K_PROMPT_DETAILS || k[0] == K_INPUT_DETAILS) &&
	    k[1] == K_CACHED_TOKENS) {
		return (unsigned char)(R_COUNT + pl * 8 + F_DETAILS_CACHED);
	}
	return R_NONE;
}

static int
is_text_key(unsigned char k)
{
	return k == K_CONTENT || k == K_REASONING_CONTENT ||
	    k == K_REASONING || k == K_REFUSAL;
}

/* Content strings: choices[].delta|message.{content, reasoning..} and
 * their tool-call arguments, choices[].text (completions),
 * content[].text (Anthropic), output[].content[].text (Responses). */
static unsigned char
content_role(const unsigned char *k, int d)
{
	int fam;

	if (k[0] == K_CHOICES && k[1] == K_ELEM) {
		if (d == 3 && k[2] == K_TEXT) {
			return R_CONTENT + C_CHOICES;
		}
		fam = k[2] == K_DELTA ? C_CHOICES : C_BODY;
		if (k[2] != K_DELTA && k[2] != K_MESSAGE) {
			return R_NONE;
		}
		if (d == 4 && is_text_key(k[3])) {
			return (unsigned char)(R_CONTENT + fam);
		}
		if (d == 7 && k[3] == K_TOOL_CALLS && k[4] == K_ELEM &&
		    k[5] == K_FUNCTION && k[6] == K_ARGUMENTS) {
			return (unsigned char)(R_CONTENT + fam);
		}
		return R_NONE;
	}
	if (d == 3 && k[0] == K_CONTENT && k[1] == K_ELEM &&
	    (k[2] == K_TEXT || k[2] == K_THINKING)) {
		return R_CONTENT + C_BODY;
	}
	if (d == 5 && k[0] == K_OUTPUT && k[1] == K_ELEM &&
	    k[2] == K_CONTENT && k[3] == K_ELEM && k[4] == K_TEXT) {
		return R_CONTENT + C_BODY;
	}
	return R_NONE;
}

/* Decided once per value, when it starts. */
static unsigned char
classify(const struct usage_scan *s)
{
	const unsigned char *k = s->keys;
	int d = s->depth, pl;

	if (d == 0 || d > KEY_DEPTH) {
		return R_NONE;
	}
	if (d == 1) {
		switch (k[0]) {
		case K_TYPE: return R_TYPE;
		case K_ID: return R_ID;
		case K_STATUS: return R_STATUS;
		case K_CHOICES: return R_CHOICES;
		case K_USAGE: return R_USAGE_OBJ + PLACE_TOP;
		case K_DELTA: return R_CONTENT + C_TOP_DELTA;
		default: return R_NONE;
		}
	}
	if (k[0] == K_USAGE) {
		return usage_role(PLACE_TOP, k + 1, d - 1);
	}
	if (d == 2 && k[0] == K_RESPONSE && (k[1] == K_ID ||
	    k[1] == K_STATUS)) {
		/* A Responses stream event's response object (SPEC §9). */
		return k[1] == K_ID ? R_ID : R_STATUS;
	}
	if ((pl = usage_place(k[0])) >= 0 && k[1] == K_USAGE) {
		return d == 2 ? (unsigned char)(R_USAGE_OBJ + pl) :
		    usage_role(pl, k + 2, d - 2);
	}
	if (d == 2 && k[0] == K_DELTA && (k[1] == K_TEXT ||
	    k[1] == K_PARTIAL_JSON || k[1] == K_THINKING)) {
		return R_CONTENT + C_DELTA;
	}
	return content_role(k, d);
}

void
usage_scan_start(struct usage_scan *s)
{
	memset(s, 0, offsetof(struct usage_scan, key));
	memset(&s->uni, 0, sizeof(*s) - offsetof(struct usage_scan, uni));
	s->st = ST_VALUE;
}

static void
fail(struct usage_scan *s)
{
	s->st = ST_ERROR;
}

/* A value ended: back to the container, or the document is done. */
static void
value_done(struct usage_scan *s)
{
	s->st = ST_AFTER;
	s->role = R_NONE;
}

static void
push(struct usage_scan *s, int array)
{
	if (s->depth >= MAX_DEPTH) {
		fail(s);
		return;
	}
	if (array) {
		s->arrays |= (uint64_t)1 << s->depth;
		if (s->depth < KEY_DEPTH) {
			s->keys[s->depth] = K_ELEM;
		}
	} else {
		s->arrays &= ~((uint64_t)1 << s->depth);
	}
	if (s->depth == 1 && array && s->keys[0] == K_CHOICES) {
		s->arr_empty = 1;
	}
	s->depth++;
	s->st = array ? ST_ARR_FIRST : ST_OBJ_FIRST;
}

static void
pop(struct usage_scan *s, int array)
{
	if (s->depth == 0 ||
	    (int)((s->arrays >> (s->depth - 1)) & 1) != array) {
		fail(s);
		return;
	}
	s->depth--;
	if (s->depth == 1 && array && s->keys[0] == K_CHOICES) {
		s->choices_empty = s->arr_empty;
		s->arr_empty = 0;
	}
	value_done(s);
}

/* A count's place and field from its role. */
static void
count_done(struct usage_scan *s, int good)
{
	int pl = (s->role - R_COUNT) / 8, f = (s->role - R_COUNT) % 8;

	if (good) {
		s->raw[pl][f] = s->num;
		s->raw_has[pl] |= 1u << f;
	} else {
		s->raw_bad[pl] = 1;
	}
}

/* A value starts with byte c. Returns 1 when c was taken. */
static int
value_start(struct usage_scan *s, char c)
{
	unsigned char role = classify(s);

	if (s->depth == 2 && s->keys[0] == K_CHOICES) {
		s->arr_empty = 0;	/* a choice */
	}
	s->role = role;
	if (role >= R_USAGE_OBJ && role < R_CONTENT) {
		int pl = role - R_USAGE_OBJ;

		s->usage_obj[pl] = c == '{';
		s->raw_has[pl] = 0;
		s->raw_bad[pl] = 0;
	}
	if (role == R_CHOICES) {
		s->choices_empty = 0;
	} else if (role == R_TYPE) {
		s->type[0] = '\0';	/* a later duplicate key wins */
	} else if (role == R_ID) {
		s->id[0] = '\0';
	} else if (role == R_STATUS) {
		s->status[0] = '\0';
	}
	if (role >= R_COUNT && c != '-' && (c < '0' || c > '9') && c != 'n') {
		count_done(s, 0);	/* a count that is not a number */
		s->role = R_NONE;
	}
	switch (c) {
	case '{':
		s->role = R_NONE;
		push(s, 0);
		return 1;
	case '[':
		s->role = R_NONE;
		push(s, 1);
		return 1;
	case '"':
		s->st = ST_STR;
		s->sub = SUB_NONE;
		s->str_len = 0;
		s->str_bytes = 0;
		return 1;
	case 't':
	case 'f':
	case 'n':
		if (s->role >= R_COUNT) {
			s->role = R_NONE;	/* null: not reported */
		}
		s->st = ST_LIT;
		s->lit = (unsigned char)(c == 't' ? 0 : c == 'f' ? 1 : 2);
		s->sub = 1;
		return 1;
	default:
		break;
	}
	if (c == '-' || (c >= '0' && c <= '9')) {
		s->st = ST_NUM;
		s->num = 0;
		s->num_bad = c == '-';
		s->sub = c == '-' ? N_MINUS : c == '0' ? N_ZERO : N_INT;
		if (c >= '1') {
			s->num = (uint64_t)(c - '0');
		}
		return 1;
	}
	fail(s);
	return 1;
}

/* The number ended (the byte after it is not taken here). */
static void
number_done(struct usage_scan *s)
{
	if (s->sub == N_MINUS || s->sub == N_DOT || s->sub == N_E ||
	    s->sub == N_ESIGN) {
		fail(s);
		return;
	}
	if (s->role >= R_COUNT) {
		count_done(s, !s->num_bad);
	}
	value_done(s);
}

/* One byte of a number. Returns 1 when taken, 0 when it ends it. */
static int
number_byte(struct usage_scan *s, char c)
{
	int digit = c >= '0' && c <= '9';

	switch (s->sub) {
	case N_MINUS:
		if (!digit) {
			return 0;
		}
		s->sub = c == '0' ? N_ZERO : N_INT;
		return 1;
	case N_INT:
		if (digit) {
			s->num = s->num * 10 + (uint64_t)(c - '0');
			if (s->num > USAGE_COUNT_MAX) {
				s->num_bad = 1;
				s->num = USAGE_COUNT_MAX + 1;
			}
			return 1;
		}
		/* fall through */
	case N_ZERO:
		if (c == '.') {
			s->sub = N_DOT;
		} else if (c == 'e' || c == 'E') {
			s->sub = N_E;
		} else {
			return 0;
		}
		s->num_bad = 1;
		return 1;
	case N_DOT:
	case N_FRAC:
		if (digit) {
			s->sub = N_FRAC;
			return 1;
		}
		if (s->sub == N_FRAC && (c == 'e' || c == 'E')) {
			s->sub = N_E;
			return 1;
		}
		return 0;
	case N_E:
		if (c == '+' || c == '-') {
			s->sub = N_ESIGN;
			return 1;
		}
		/* fall through */
	case N_ESIGN:
	case N_EXP:
		if (digit) {
			s->sub = N_EXP;
			return 1;
		}
		return 0;
	default:
		return 0;
	}
}

static void
literal_byte(struct usage_scan *s, char c)
{
	static const char *const lits[] = { "true", "false", "null" };
	const char *l = lits[s->lit];

	if (c != l[s->sub]) {
		fail(s);
		return;
	}
	if (l[++s->sub] == '\0') {
		if (s->role >= R_COUNT) {
			count_done(s, 0);	/* true/false as a count */
		}
		value_done(s);
	}
}

/* Bytes a \u escape stands for in UTF-8 (surrogate halves: 2 each). */
static unsigned
utf8_len(uint32_t u)
{
	return u < 0x80 ? 1 : u < 0x800 ? 2 : (u >= 0xd800 && u < 0xe000) ?
	    2 : 3;
}

/* The string (key or value) ended. */
static void
string_done(struct usage_scan *s, int key)
{
	if (key) {
		if (s->depth <= KEY_DEPTH) {
			s->keys[s->depth - 1] = s->key_len <= sizeof(s->key) ?
			    key_id(s->key, s->key_len) : K_OTHER;
		}
		s->st = ST_COLON;
		return;
	}
	if (s->role >= R_CONTENT && s->role < R_COUNT) {
		s->content[s->role - R_CONTENT] += s->str_bytes;
	} else if (s->role >= R_TYPE && s->role <= R_STATUS &&
	    s->str_len <= sizeof(s->str)) {
		char *dst = s->role == R_TYPE ? s->type : s->role == R_ID ?
		    s->id : s->status;
		size_t cap = s->role == R_TYPE ? sizeof(s->type) :
		    s->role == R_ID ? sizeof(s->id) : sizeof(s->status);
		long n = json_unescape((struct view){ s->str, s->str_len },
		    dst, cap);

		if (n < 0 || strlen(dst) != (size_t)n) {
			dst[0] = '\0';	/* too long, or a NUL inside */
		}
	}
	value_done(s);
}

/* Keep raw bytes of a key or captured value (a count past the buffer
 * marks it too long). */
static void
keep(struct usage_scan *s, int key, const char *p, size_t n)
{
	char *buf = key ? s->key : s->str;
	size_t cap = key ? sizeof(s->key) : sizeof(s->str);
	uint16_t *len = key ? &s->key_len : &s->str_len;

	if (*len + n <= cap) {
		memcpy(buf + *len, p, n);
		*len = (uint16_t)(*len + n);
	} else {
		*len = (uint16_t)(cap + 1);
	}
}

/* Inside a string: take bytes from p[0..n). Returns the count taken. */
static size_t
string_bytes(struct usage_scan *s, const char *p, size_t n, int key)
{
	int capture = key || (s->role >= R_TYPE && s->role <= R_STATUS);
	size_t i = 0;

	while (i < n) {
		unsigned char c = (unsigned char)p[i];

		if (s->sub == SUB_NONE) {
			size_t j = i;

			/* The tight loop: plain string bytes. */
			while (j < n && (unsigned char)p[j] >= 0x20 &&
			    p[j] != '"' && p[j] != '\\') {
				j++;
			}
			s->str_bytes += j - i;
			if (capture) {
				keep(s, key, p + i, j - i);
			}
			if (j == n) {
				return n;
			}
			c = (unsigned char)p[j];
			i = j + 1;
			if (c == '"') {
				string_done(s, key);
				return i;
			}
			if (c < 0x20) {
				fail(s);
				return i;
			}
			s->sub = SUB_ESC;
			if (capture) {
				keep(s, key, p + j, 1);
			}
			continue;
		} else if (s->sub == SUB_ESC) {
			i++;
			if (c == 'u') {
				s->sub = SUB_U;
				s->uni = 0;
				s->uni_n = 0;
			} else if (strchr("\"\\/bfnrt", c) != NULL && c != 0) {
				s->sub = SUB_NONE;
				s->str_bytes++;
			} else {
				fail(s);
				return i;
			}
		} else {
			int h = util_hex_digit(c);

			i++;
			if (h < 0) {
				fail(s);
				return i;
			}
			s->uni = s->uni * 16 + (uint32_t)h;
			if (++s->uni_n == 4) {
				s->sub = SUB_NONE;
				s->str_bytes += utf8_len(s->uni);
			}
		}
		if (capture) {
			keep(s, key, (const char *)&p[i - 1], 1);
		}
	}
	return i;
}

static int
is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* One structural byte (outside strings, numbers and literals). */
static void
structural(struct usage_scan *s, char c)
{
	int array;

	if (is_ws(c)) {
		return;
	}
	switch (s->st) {
	case ST_ARR_FIRST:
		if (c == ']') {
			pop(s, 1);
			return;
		}
		s->st = ST_VALUE;
		/* fall through */
	case ST_VALUE:
		(void)value_start(s, c);
		return;
	case ST_OBJ_FIRST:
		if (c == '}') {
			pop(s, 0);
			return;
		}
		/* fall through */
	case ST_KEY_NEXT:
		if (c != '"') {
			fail(s);
			return;
		}
		s->st = ST_KEY;
		s->sub = SUB_NONE;
		s->key_len = 0;
		return;
	case ST_COLON:
		s->st = c == ':' ? ST_VALUE : ST_ERROR;
		return;
	case ST_AFTER:
		if (s->depth == 0) {
			fail(s);	/* bytes after the document */
			return;
		}
		array = (s->arrays >> (s->depth - 1)) & 1;
		if (c == ',') {
			s->st = array ? ST_VALUE : ST_KEY_NEXT;
		} else if (c == ']' || c == '}') {
			pop(s, c == ']');
		} else {
			fail(s);
		}
		return;
	default:
		fail(s);
		return;
	}
}

void
usage_scan_feed(struct usage_scan *s, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n && s->st != ST_ERROR) {
		switch (s->st) {
		case ST_STR:
		case ST_KEY:
			i += string_bytes(s, p + i, n - i, s->st == ST_KEY);
			break;
		case ST_NUM:
			if (number_byte(s, p[i])) {
				i++;
			} else {
				number_done(s);	/* p[i] is read again */
			}
			break;
		case ST_LIT:
			literal_byte(s, p[i++]);
			break;
		default:
			structural(s, p[i++]);
			break;
		}
	}
}

/* Raw fields of one place into billing buckets (usage.h). Returns 0, or
 * -1 when they contradict each other. */
static int
buckets(const struct usage_scan *s, int pl, struct usage *u)
{
	const uint64_t *r = s->raw[pl];
	unsigned h = s->raw_has[pl];
	uint64_t prompt = 0, cached = 0;

	memset(u, 0, sizeof(*u));
	if (h & (1u << F_PROMPT)) {
		prompt = r[F_PROMPT];
	} else if (h & (1u << F_INPUT)) {
		prompt = r[F_INPUT];
	}
	if (h & ((1u << F_PROMPT) | (1u << F_INPUT))) {
		u->has |= USAGE_HAS_IN;
	}
	if (h & (1u << F_DETAILS_CACHED)) {
		cached = r[F_DETAILS_CACHED];
	} else if (h & (1u << F_HIT)) {
		cached = r[F_HIT];
	}
	if (cached > prompt) {
		return -1;
	}
	u->in = prompt - cached;
	u->cached = cached;
	if (h & (1u << F_CACHE_READ)) {
		u->cached += r[F_CACHE_READ];
	}
	if (h & ((1u << F_DETAILS_CACHED) | (1u << F_HIT) |
	    (1u << F_CACHE_READ))) {
		u->has |= USAGE_HAS_CACHED | USAGE_HAS_IN;
	}
	if (h & (1u << F_CACHE_CREATION)) {
		u->cache_write = r[F_CACHE_CREATION];
		u->has |= USAGE_HAS_CACHE_WRITE;
	}
	if (h & (1u << F_COMPLETION)) {
		u->out = r[F_COMPLETION];
		u->has |= USAGE_HAS_OUT;
	} else if (h & (1u << F_OUTPUT)) {
		u->out = r[F_OUTPUT];
		u->has |= USAGE_HAS_OUT;
	}
	return 0;
}

/* Which place the document's shape puts usage in, and whether that is
 * the last word; -1: none (other typed events). */
static int
shape_place(const char *type, int *final)
{
	*final = 1;
	if (type[0] == '\0' || strcmp(type, "message") == 0 ||
	    strcmp(type, "message_delta") == 0) {
		return PLACE_TOP;
	}
	if (strcmp(type, "message_start") == 0) {
		*final = 0;
		return PLACE_MESSAGE;
	}
	if (strcmp(type, "response.completed") == 0 ||
	    strcmp(type, "response.incomplete") == 0) {
		return PLACE_RESPONSE;
	}
	return -1;
}

static int
ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* Content delivered, by the document's shape. */
static uint64_t
shape_content(const struct usage_scan *s)
{
	if (s->type[0] == '\0' || strcmp(s->type, "message") == 0) {
		return s->content[C_CHOICES] + s->content[C_BODY];
	}
	if (strcmp(s->type, "content_block_delta") == 0) {
		return s->content[C_DELTA];
	}
	if (strncmp(s->type, "response.", 9) == 0 &&
	    ends_with(s->type, ".delta")) {
		return s->content[C_TOP_DELTA];
	}
	return 0;
}

void
usage_scan_end(struct usage_scan *s, struct usage_doc *d)
{
	int pl;

	memset(d, 0, sizeof(*d));
	if (s->st == ST_NUM && s->depth == 0) {
		number_done(s);
	}
	if (s->st != ST_AFTER || s->depth != 0) {
		return;		/* not one complete JSON value */
	}
	d->valid = 1;
	memcpy(d->type, s->type, sizeof(d->type));
	memcpy(d->id, s->id, sizeof(d->id));
	memcpy(d->status, s->status, sizeof(d->status));
	d->usage_only = s->choices_empty && s->usage_obj[PLACE_TOP];
	d->content_bytes = shape_content(s);
	pl = shape_place(s->type, &d->final);
	if (pl < 0 || !s->usage_obj[pl] ||
	    (s->raw_has[pl] == 0 && !s->raw_bad[pl])) {
		d->final = 0;
		return;
	}
	d->found = 1;
	if (s->raw_bad[pl]) {
		d->invalid = 1;
		d->usage_why = "a usage count is not an integer from 0 to 2^40";
	} else if (buckets(s, pl, &d->usage) < 0) {
		d->invalid = 1;
		d->usage_why = "cached tokens exceed the prompt tokens";
	}
}

void
usage_scan_all(const char *p, size_t n, struct usage_doc *d)
{
	struct usage_scan s;

	usage_scan_start(&s);
	usage_scan_feed(&s, p, n);
	usage_scan_end(&s, d);
}

void
usage_merge(struct usage *total, const struct usage *later)
{
	if (later->has & USAGE_HAS_IN) {
		total->in = later->in;
	}
	if (later->has & USAGE_HAS_CACHED) {
		total->cached = later->cached;
	}
	if (later->has & USAGE_HAS_CACHE_WRITE) {
		total->cache_write = later->cache_write;
	}
	if (later->has & USAGE_HAS_OUT) {
		total->out = later->out;
	}
	total->has |= later->has;
}
