/* ledger_rec: the grammar of one ledger line (SPEC §6).
 *
 * Records are flat objects, so they are read by a small strict parser
 * rather than jsmn: jsmn is a tokenizer that accepts missing commas and
 * half-written literals, and a billing file should be held to the exact
 * grammar without a token array or a second validation walk. One pass
 * scans the keys and values into a table (views into the line), then
 * check_fields() holds them to what the record's type needs.
 *
 * What it does not do: read files, follow the hash chain or the currency
 * from line to line (ledger_replay.c does), or write lines (ledger.c
 * does, on the request path).
 *
 * Ownership: nothing is allocated. A parsed record's ts and prev point
 * into the caller's line; its names are copies in the record. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "ledger_rec.h"
#include "util.h"

const char ledger_rec_zero_hash[65] =
    "0000000000000000000000000000000000000000000000000000000000000000";

enum field {
	F_TS, F_TYPE, F_ID, F_TASK, F_WALLET, F_MODEL, F_ROUTE, F_CRED,
	F_STATUS, F_IN, F_OUT, F_USD, F_CUR, F_EST, F_NOTE, F_PREV,
	F_CACHED, F_CACHE_WRITE, F_CUT, F_KIND, F_NODE, F_COUNT
};

enum kind {
	K_NONE,		/* key absent */
	K_STR,
	K_INT,		/* -?(0|[1-9][0-9]*) within 64 bits of magnitude */
	K_BIG,		/* an integer beyond that */
	K_BOOL,
	K_OTHER		/* null, or a number with a fraction or exponent */
};

/* F_CUR has no fixed name: it is "<cur>_nano" for the wallet currency. */
static const char *const field_names[F_COUNT] = {
	"ts", "type", "id", "task", "wallet", "model", "route", "cred",
	"status", "in", "out", "usd_nano", NULL, "estimated", "note", "prev",
	"cached", "cache_write", "cut", "kind", "node"
};

static const enum kind field_kinds[F_COUNT] = {
	K_STR, K_STR, K_STR, K_STR, K_STR, K_STR, K_STR, K_STR,
	K_INT, K_INT, K_INT, K_INT, K_INT, K_BOOL, K_STR, K_STR,
	K_INT, K_INT, K_STR, K_STR, K_STR
};

#define B(f) (1u << (f))
#define COMMON (B(F_TS) | B(F_TYPE) | B(F_WALLET) | B(F_PREV))
/* Any record may say which relay of a fleet wrote it (SPEC §12). */
#define MAY (COMMON | B(F_NODE))
#define ROUTED (B(F_ID) | B(F_MODEL) | B(F_ROUTE))

/* Indexed by enum ledger_rec_type. */
static const struct {
	const char *name;
	unsigned need;		/* fields that must be present */
	unsigned allow;		/* fields that may be present */
} rec_types[] = {
	{ "charge", COMMON | ROUTED | B(F_STATUS) | B(F_IN) | B(F_OUT) |
	    B(F_USD), MAY | ROUTED | B(F_STATUS) | B(F_IN) | B(F_OUT) |
	    B(F_USD) | B(F_CUR) | B(F_TASK) | B(F_CRED) | B(F_EST) |
	    B(F_CACHED) | B(F_CACHE_WRITE) | B(F_CUT) },
	/* The amount is <cur>_nano, or usd_nano when the currency is USD. */
	{ "credit", COMMON, MAY | B(F_CUR) | B(F_USD) | B(F_NOTE) },
	/* An object created upstream: a video task (no "kind"), a
	 * background response or a plain object, kept for affinity; a plain
	 * object made without a model has none. */
	{ "task", COMMON | B(F_ID) | B(F_ROUTE), MAY | ROUTED | B(F_CRED) |
	    B(F_KIND) }
};

/* One value as scanned: views into the line. */
struct val {
	enum kind kind;
	struct view s;		/* K_STR: raw contents, view into the line */
	int neg;		/* K_INT: a '-' was written */
	uint64_t mag;		/* K_INT: magnitude */
	int b;			/* K_BOOL */
};

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static int
is_lower(char c)
{
	return c >= 'a' && c <= 'z';
}

static int
is_hex(char c)
{
	return is_digit(c) || (c >= 'a' && c <= 'f') ||
	    (c >= 'A' && c <= 'F');
}

static size_t
skip_ws(const char *p, size_t n, size_t i)
{
	/* RFC 8259 section 2: exactly these four. */
	while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == '\n' ||
	    p[i] == '\r')) {
		i++;
	}
	return i;
}

/* p[*ip] is the opening quote. On success *ip is past the closing quote
 * and *out holds the raw contents. Escapes are checked for shape only;
 * json_unescape() decodes the ones we need. */
static int
scan_string(const char *p, size_t n, size_t *ip, struct view *out)
{
	size_t i = *ip + 1, start = i, k;

	while (i < n && p[i] != '"') {
		if ((unsigned char)p[i] < 0x20) {
			return -1;	/* RFC 8259 section 7 */
		}
		if (p[i] != '\\') {
			i++;
			continue;
		}
		if (i + 1 >= n) {
			return -1;
		}
		if (p[i + 1] == 'u') {
			for (k = 2; k < 6; k++) {
				if (i + k >= n || !is_hex(p[i + k])) {
					return -1;
				}
			}
			i += 6;
		} else if (strchr("\"\\/bfnrt", p[i + 1]) != NULL &&
		    p[i + 1] != '\0') {
			i += 2;
		} else {
			return -1;
		}
	}
	if (i >= n) {
		return -1;
	}
	out->p = p + start;
	out->n = i - start;
	*ip = i + 1;
	return 0;
}

/* A number at p[*ip] (a '-' or a digit): K_INT when it is a plain
 * integer within 64 bits, K_BIG beyond, K_OTHER with a fraction or an
 * exponent. */
static int
scan_number(const char *p, size_t n, size_t *ip, struct val *v)
{
	size_t end = json_number_end(p, n, *ip), d, k;

	if (end == 0) {
		return -1;
	}
	v->neg = p[*ip] == '-';
	d = *ip + (size_t)v->neg;
	for (k = d; k < end && is_digit(p[k]); k++) {
	}
	if (k != end) {
		v->kind = K_OTHER;
	} else {
		v->kind = util_parse_u64(p + d, k - d, &v->mag) < 0 ? K_BIG :
		    K_INT;
	}
	*ip = end;
	return 0;
}

/* One JSON value at p[*ip]; objects and arrays are not part of the
 * format and are refused. */
static int
scan_value(const char *p, size_t n, size_t *ip, struct val *v)
{
	size_t i = *ip;

	memset(v, 0, sizeof *v);
	if (i >= n) {
		return -1;
	}
	if (p[i] == '"') {
		v->kind = K_STR;
		return scan_string(p, n, ip, &v->s);
	}
	if (p[i] == '-' || is_digit(p[i])) {
		return scan_number(p, n, ip, v);
	}
	if (n - i >= 4 && memcmp(p + i, "true", 4) == 0) {
		v->kind = K_BOOL;
		v->b = 1;
		*ip = i + 4;
		return 0;
	}
	if (n - i >= 5 && memcmp(p + i, "false", 5) == 0) {
		v->kind = K_BOOL;
		*ip = i + 5;
		return 0;
	}
	if (n - i >= 4 && memcmp(p + i, "null", 4) == 0) {
		v->kind = K_OTHER;
		*ip = i + 4;
		return 0;
	}
	return -1;
}

/* The field a key names, or -1. "xyz_nano" (three lower-case letters,
 * not usd) is the wallet-currency amount; its code goes to cur. */
static int
match_key(struct view k, char cur[4])
{
	int f;

	for (f = 0; f < F_COUNT; f++) {
		if (field_names[f] != NULL &&
		    util_view_eq(k, field_names[f])) {
			return f;
		}
	}
	if (k.n == 8 && is_lower(k.p[0]) && is_lower(k.p[1]) &&
	    is_lower(k.p[2]) && memcmp(k.p + 3, "_nano", 5) == 0) {
		memcpy(cur, k.p, 3);
		cur[3] = '\0';
		return F_CUR;
	}
	return -1;
}

/* "2026-11-24T22:10:00.123Z", as clock_iso8601() writes it. */
static int
valid_ts(struct view v)
{
	static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	size_t i;

	if (v.n != sizeof shape - 1) {
		return 0;
	}
	for (i = 0; i < v.n; i++) {
		if (shape[i] == 'd' ? !is_digit(v.p[i]) : v.p[i] != shape[i]) {
			return 0;
		}
	}
	return 1;
}

static int
valid_hash(struct view v)
{
	size_t i;

	if (v.n != 64) {
		return 0;
	}
	for (i = 0; i < 64; i++) {
		if (!is_digit(v.p[i]) && !(v.p[i] >= 'a' && v.p[i] <= 'f')) {
			return 0;
		}
	}
	return 1;
}

/* Decode a string field into out (LEDGER_NAME_MAX + 1 bytes); an absent
 * one becomes "". A NUL inside would cut the name short, so it is
 * refused like a bad escape. */
static int
decode(const struct val *v, char *out)
{
	long k;

	out[0] = '\0';
	if (v->kind != K_STR) {
		return 0;
	}
	k = json_unescape(v->s, out, LEDGER_NAME_MAX + 1);
	return k < 0 || strlen(out) != (size_t)k ? -1 : 0;
}

/* Presence and kind of every field for the record's type. */
static int
check_kinds(const struct val *v, const char *curkey, unsigned t, int credit,
    char *why, size_t whylen)
{
	const char *fn;
	int f;

	for (f = 0; f < F_COUNT; f++) {
		fn = f == F_CUR ? curkey : field_names[f];
		if (v[f].kind == K_NONE) {
			if (rec_types[t].need & B(f)) {
				return util_errf(why, whylen, "missing \"%s\"",
				    fn);
			}
			continue;
		}
		if (!(rec_types[t].allow & B(f))) {
			return util_errf(why, whylen, "\"%s\" does not belong "
			    "in a %s record", fn, rec_types[t].name);
		}
		if (field_kinds[f] == K_INT && v[f].kind == K_BIG) {
			return util_errf(why, whylen, "\"%s\" is out of range",
			    fn);
		}
		if (v[f].kind != field_kinds[f]) {
			return util_errf(why, whylen, "\"%s\" must be %s", fn,
			    field_kinds[f] == K_STR ? "a string" :
			    field_kinds[f] == K_INT ? "an integer" :
			    "true or false");
		}
		/* Only a credit amount may be negative (a correction). */
		if (field_kinds[f] == K_INT && v[f].neg && v[f].mag != 0 &&
		    !credit) {
			return util_errf(why, whylen, "\"%s\" is negative",
			    fn);
		}
	}
	return 0;
}

/* Type, presence, kind and range checks once the syntax is known good;
 * fills r from v. */
static int
check_fields(const struct val *v, struct ledger_rec *r, char *why,
    size_t whylen)
{
	static const int names[] = { F_ID, F_TASK, F_WALLET, F_MODEL,
	    F_ROUTE, F_CRED, F_NODE };
	char *const dst[] = { r->id, r->task, r->wallet, r->model, r->route,
	    r->cred, r->node };
	char curkey[16];
	const struct val *a;
	unsigned t;

	snprintf(curkey, sizeof curkey, "%s_nano", r->cur);
	if (v[F_TYPE].kind != K_STR) {
		return util_errf(why, whylen, "missing \"type\"");
	}
	for (t = 0; t < sizeof rec_types / sizeof rec_types[0]; t++) {
		if (util_view_eq(v[F_TYPE].s, rec_types[t].name)) {
			break;
		}
	}
	if (t == sizeof rec_types / sizeof rec_types[0]) {
		return util_errf(why, whylen, "unknown record type \"%.*s\"",
		    (int)(v[F_TYPE].s.n > 32 ? 32 : v[F_TYPE].s.n),
		    v[F_TYPE].s.p);
	}
	r->type = (enum ledger_rec_type)t;
	if (check_kinds(v, curkey, t, r->type == LEDGER_REC_CREDIT, why,
	    whylen) < 0) {
		return -1;
	}
	if (!valid_ts(v[F_TS].s)) {
		return util_errf(why, whylen, "\"ts\" is not a UTC time like "
		    "2026-11-24T22:10:00.123Z");
	}
	if (!valid_hash(v[F_PREV].s)) {
		return util_errf(why, whylen, "\"prev\" is not 64 lower-case "
		    "hex digits");
	}
	if (r->type == LEDGER_REC_CHARGE && v[F_STATUS].mag > 999) {
		return util_errf(why, whylen, "\"status\" is out of range");
	}
	if (r->type == LEDGER_REC_CREDIT && (v[F_CUR].kind == K_NONE) ==
	    (v[F_USD].kind == K_NONE)) {
		return util_errf(why, whylen, "a credit needs exactly one "
		    "amount (\"<currency>_nano\")");
	}
	r->cur_keyed = 0;
	r->amount = 0;
	if (r->type != LEDGER_REC_TASK) {
		/* Without a "<cur>_nano" key the currency is USD and
		 * usd_nano is the wallet amount too. */
		r->cur_keyed = v[F_CUR].kind != K_NONE;
		a = r->cur_keyed ? &v[F_CUR] : &v[F_USD];
		if (!r->cur_keyed) {
			memcpy(r->cur, "usd", 4);
		}
		if (a->mag > (uint64_t)INT64_MAX) {
			return util_errf(why, whylen, "the amount is out of "
			    "range");
		}
		r->amount = a->neg ? -(int64_t)a->mag : (int64_t)a->mag;
	}
	for (t = 0; t < sizeof names / sizeof names[0]; t++) {
		if (decode(&v[names[t]], dst[t]) < 0) {
			return util_errf(why, whylen, "\"%s\" is not a valid "
			    "string of at most %d bytes",
			    field_names[names[t]], LEDGER_NAME_MAX);
		}
	}
	if (r->wallet[0] == '\0') {
		return util_errf(why, whylen, "\"wallet\" is empty");
	}
	if (r->type != LEDGER_REC_CREDIT && r->id[0] == '\0') {
		return util_errf(why, whylen, "\"id\" is empty");
	}
	return 0;
}

/* The object's members into v (each key once); *ip ends past the '}'. */
static int
scan_members(const char *p, size_t n, size_t *ip, struct val *v,
    char cur[4], char *why, size_t whylen)
{
	struct view key;
	struct val one;
	char kcur[4];
	size_t i = skip_ws(p, n, *ip);
	int f;

	if (i < n && p[i] == '}') {
		*ip = i + 1;
		return 0;
	}
	for (;;) {
		if (i >= n || p[i] != '"' || scan_string(p, n, &i, &key) < 0) {
			return util_errf(why, whylen, "bad JSON at byte %zu "
			    "(expected a key)", i + 1);
		}
		i = skip_ws(p, n, i);
		if (i >= n || p[i] != ':') {
			return util_errf(why, whylen, "bad JSON at byte %zu "
			    "(expected ':')", i + 1);
		}
		i = skip_ws(p, n, i + 1);
		if (scan_value(p, n, &i, &one) < 0) {
			return util_errf(why, whylen, "bad JSON at byte %zu "
			    "(expected a string, number or literal)", i + 1);
		}
		if ((f = match_key(key, kcur)) < 0) {
			return util_errf(why, whylen, "unknown key \"%.*s\"",
			    (int)(key.n > 32 ? 32 : key.n), key.p);
		}
		if (v[f].kind != K_NONE) {
			return util_errf(why, whylen, "duplicate key \"%.*s\"",
			    (int)key.n, key.p);
		}
		v[f] = one;
		if (f == F_CUR) {
			memcpy(cur, kcur, 4);
		}
		i = skip_ws(p, n, i);
		if (i < n && p[i] == ',') {
			i = skip_ws(p, n, i + 1);
			continue;
		}
		if (i < n && p[i] == '}') {
			*ip = i + 1;
			return 0;
		}
		return util_errf(why, whylen, "bad JSON at byte %zu (expected "
		    "',' or '}')", i + 1);
	}
}

int
ledger_rec_parse(const char *p, size_t n, struct ledger_rec *r, char *why,
    size_t whylen)
{
	struct val v[F_COUNT];
	size_t i;

	memset(v, 0, sizeof v);
	r->cur[0] = '\0';
	i = skip_ws(p, n, 0);
	if (i >= n || p[i] != '{') {
		return util_errf(why, whylen, "not a JSON object");
	}
	i++;
	if (scan_members(p, n, &i, v, r->cur, why, whylen) < 0) {
		return -1;
	}
	if ((i = skip_ws(p, n, i)) != n) {
		return util_errf(why, whylen, "bad JSON at byte %zu (bytes "
		    "after the object)", i + 1);
	}
	if (check_fields(v, r, why, whylen) < 0) {
		return -1;
	}
	r->ts = v[F_TS].s.p;
	r->prev = v[F_PREV].s.p;
	r->status = r->in = r->out = r->usd_nano = 0;
	r->cached = r->cache_write = 0;
	r->estimated = 0;
	r->cut[0] = '\0';
	r->kind = LEDGER_OBJ_TASK;
	if (r->type == LEDGER_REC_TASK && v[F_KIND].kind == K_STR) {
		if (util_view_eq(v[F_KIND].s, "response")) {
			r->kind = LEDGER_OBJ_RESPONSE;
		} else if (util_view_eq(v[F_KIND].s, "object")) {
			r->kind = LEDGER_OBJ_PLAIN;
		} else {
			return util_errf(why, whylen, "\"kind\" must be "
			    "\"response\" or \"object\"");
		}
	}
	if (r->type == LEDGER_REC_TASK && r->kind != LEDGER_OBJ_PLAIN &&
	    r->model[0] == '\0') {
		return util_errf(why, whylen, "a task that is charged needs "
		    "a \"model\"");
	}
	if (r->type == LEDGER_REC_CHARGE) {
		r->status = v[F_STATUS].mag;
		r->in = v[F_IN].mag;
		r->cached = v[F_CACHED].mag;
		r->cache_write = v[F_CACHE_WRITE].mag;
		r->out = v[F_OUT].mag;
		r->usd_nano = v[F_USD].mag;
		r->estimated = v[F_EST].b;
		if (v[F_CUT].kind == K_STR) {
			if (!util_view_eq(v[F_CUT].s, "client") &&
			    !util_view_eq(v[F_CUT].s, "upstream")) {
				return util_errf(why, whylen, "\"cut\" must be "
				    "\"client\" or \"upstream\"");
			}
			memcpy(r->cut, v[F_CUT].s.p, v[F_CUT].s.n);
			r->cut[v[F_CUT].s.n] = '\0';
		}
	}
	return 0;
}
