/* resp: the RESP2 codec of the store client (see resp.h).
 *
 * The parser is resumable: it keeps the position and the stack of open
 * arrays between calls, and each call goes on with the first value not
 * yet complete, so bytes that arrive one at a time cost no rescans (a
 * line whose end has not come yet is searched on from where the last
 * search stopped). Nodes record offsets while a reply is incomplete,
 * since the caller may move its bytes between calls; they become views
 * once the reply is complete.
 *
 * Strict on purpose: Redis and Valkey write lengths and integers in one
 * canonical form (no sign but a lone '-', no leading zero, no "-0"), and
 * lines end in CRLF, so anything else is refused rather than guessed at.
 * Every check depends only on the bytes at hand, in a fixed order, so a
 * reply split anywhere gives the same answer as the reply whole.
 *
 * Not here: the connection, RESP3 types, inline commands, and any
 * allocation (the caller owns the bytes and the nodes). */
#include <assert.h>
#include <limits.h>
#include <string.h>

#include "resp.h"

/* What one step of the parser did. */
enum step {
	STEP_BAD,
	STEP_PARTIAL,
	STEP_VALUE,		/* a value is complete */
	STEP_OPEN		/* a non-empty array has begun */
};

void
resp_parser_init(struct resp_parser *ps, struct resp_node *nodes,
    size_t cap, size_t max_reply)
{
	assert(nodes != NULL && cap >= 1);
	memset(ps, 0, sizeof(*ps));
	ps->nodes = nodes;
	ps->cap = cap;
	/* resp_parse() returns the length as a ssize_t. */
	ps->max_reply = max_reply > SSIZE_MAX ? SSIZE_MAX : max_reply;
}

enum resp_err
resp_parser_error(const struct resp_parser *ps)
{
	return ps->err;
}

const char *
resp_strerror(enum resp_err e)
{
	switch (e) {
	case RESP_OK:
		return "no error";
	case RESP_E_TYPE:
		return "bad type byte";
	case RESP_E_RESP3:
		return "RESP3 type byte (only RESP2 is spoken)";
	case RESP_E_CRLF:
		return "line or bulk string not ended by CRLF";
	case RESP_E_INTEGER:
		return "bad integer";
	case RESP_E_OVERFLOW:
		return "integer or length overflows 64 bits";
	case RESP_E_LENGTH:
		return "bad bulk or array length";
	case RESP_E_DEPTH:
		return "arrays nested too deep";
	case RESP_E_NODES:
		return "too many elements";
	case RESP_E_SIZE:
		return "reply too large";
	}
	return "unknown error";
}

/* p[0..n) as a canonical decimal int64: -?(0|[1-9][0-9]*), not "-0".
 * Syntax is checked before magnitude, so the error does not depend on
 * where a long number goes wrong. */
static enum resp_err
parse_i64(const char *p, size_t n, int64_t *out)
{
	uint64_t v = 0, lim = INT64_MAX;
	int neg = 0;
	size_t k;

	if (n > 0 && p[0] == '-') {
		neg = 1;
		p++;
		n--;
		lim = (uint64_t)INT64_MAX + 1;
	}
	if (n == 0 || (p[0] == '0' && (n > 1 || neg))) {
		return RESP_E_INTEGER;
	}
	for (k = 0; k < n; k++) {
		if (p[k] < '0' || p[k] > '9') {
			return RESP_E_INTEGER;
		}
	}
	for (k = 0; k < n; k++) {
		unsigned d = (unsigned)(p[k] - '0');

		if (v > (lim - d) / 10) {
			return RESP_E_OVERFLOW;
		}
		v = v * 10 + d;
	}
	if (!neg) {
		*out = (int64_t)v;
	} else if (v == (uint64_t)INT64_MAX + 1) {
		*out = INT64_MIN;
	} else {
		*out = -(int64_t)v;
	}
	return RESP_OK;
}

/* A bulk or array length: a count, or -1 for null. */
static enum resp_err
parse_len(const char *p, size_t n, int64_t *out)
{
	enum resp_err e = parse_i64(p, n, out);

	if (e == RESP_E_INTEGER || (e == RESP_OK && *out < -1)) {
		return RESP_E_LENGTH;
	}
	return e;
}

static enum step
fail(struct resp_parser *ps, enum resp_err e)
{
	ps->err = e;
	return STEP_BAD;
}

/* Where the line that starts at ps->pos ends (its CR), in *cr; the search
 * goes on from ps->scan. */
static enum step
find_line(struct resp_parser *ps, const char *buf, size_t len, size_t *cr)
{
	size_t e = ps->scan > ps->pos + 1 ? ps->scan : ps->pos + 1;

	while (e < len && buf[e] != '\r' && buf[e] != '\n') {
		e++;
	}
	/* The size check comes first: then a line cut by the limit is
	 * refused the same way whether its end has arrived or not. */
	if (ps->max_reply < 2 || e > ps->max_reply - 2) {
		return fail(ps, RESP_E_SIZE);
	}
	ps->scan = e;
	if (e == len) {
		return STEP_PARTIAL;
	}
	if (buf[e] == '\n') {
		return fail(ps, RESP_E_CRLF);	/* a bare LF */
	}
	if (e + 1 == len) {
		return STEP_PARTIAL;
	}
	if (buf[e + 1] != '\n') {
		return fail(ps, RESP_E_CRLF);	/* a bare CR */
	}
	*cr = e;
	return STEP_VALUE;
}

/* The head of an array of v elements, node nd, its line ending at next:
 * opened (an empty one is a complete value). */
static enum step
open_array(struct resp_parser *ps, struct resp_node *nd, int64_t v,
    size_t next)
{
	nd->n = (size_t)v;
	if (v == 0) {
		ps->nnodes++;
		ps->pos = next;
		return STEP_VALUE;
	}
	/* Each element takes a node: refuse now what cannot fit. */
	if ((uint64_t)v > ps->cap - ps->nnodes - 1) {
		return fail(ps, RESP_E_NODES);
	}
	if (ps->depth == RESP_MAX_DEPTH) {
		return fail(ps, RESP_E_DEPTH);
	}
	ps->open[ps->depth] = ps->nnodes;
	ps->left[ps->depth] = (size_t)v;
	ps->depth++;
	ps->nnodes++;
	ps->pos = next;
	return STEP_OPEN;
}

/* One value at ps->pos: a whole leaf (a line, a bulk string with its
 * payload), or the head of an array. */
static enum step
value(struct resp_parser *ps, const char *buf, size_t len)
{
	size_t start = ps->pos, cr = 0, next, room;
	struct resp_node *nd;
	enum resp_err e;
	enum step s;
	int64_t v = 0;
	char t;

	if (start == len) {
		return STEP_PARTIAL;
	}
	t = buf[start];
	switch (t) {
	case '+': case '-': case ':': case '$': case '*':
		break;
	case '_': case ',': case '#': case '(': case '!': case '=':
	case '%': case '~': case '|': case '>':
		return fail(ps, RESP_E_RESP3);
	default:
		return fail(ps, RESP_E_TYPE);
	}
	if (ps->nnodes == ps->cap) {
		return fail(ps, RESP_E_NODES);
	}
	s = find_line(ps, buf, len, &cr);
	if (s != STEP_VALUE) {
		return s;
	}
	next = cr + 2;
	nd = &ps->nodes[ps->nnodes];
	memset(nd, 0, sizeof(*nd));
	nd->type = (enum resp_type)t;
	switch (t) {
	case '+':
	case '-':
		nd->off = start + 1;
		nd->str.n = cr - start - 1;
		break;
	case ':':
		e = parse_i64(buf + start + 1, cr - start - 1, &nd->i);
		if (e != RESP_OK) {
			return fail(ps, e);
		}
		break;
	case '$':
	case '*':
		e = parse_len(buf + start + 1, cr - start - 1, &v);
		if (e != RESP_OK) {
			return fail(ps, e);
		}
		if (v < 0) {
			nd->null = 1;
			break;
		}
		if (buf[start] == '*') {
			return open_array(ps, nd, v, next);
		}
		/* next <= max_reply (find_line); the payload and its CRLF
		 * must fit in what is left. */
		room = ps->max_reply - next;
		if (room < 2 || (uint64_t)v > room - 2) {
			return fail(ps, RESP_E_SIZE);
		}
		if (len - next < (size_t)v + 2) {
			return STEP_PARTIAL;
		}
		if (buf[next + (size_t)v] != '\r' ||
		    buf[next + (size_t)v + 1] != '\n') {
			return fail(ps, RESP_E_CRLF);
		}
		nd->off = next;
		nd->str.n = (size_t)v;
		next += (size_t)v + 2;
		break;
	}
	ps->nnodes++;
	ps->pos = next;
	return STEP_VALUE;
}

/* The reply is complete: offsets become views into buf. */
static void
finish(struct resp_parser *ps, const char *buf)
{
	size_t k;

	for (k = 0; k < ps->nnodes; k++) {
		struct resp_node *nd = &ps->nodes[k];

		switch (nd->type) {
		case RESP_STRING:
		case RESP_ERROR:
		case RESP_BULK:
			nd->str.p = nd->null ? "" : buf + nd->off;
			break;
		case RESP_INTEGER:
		case RESP_ARRAY:
			nd->str.p = "";
			break;
		}
	}
}

ssize_t
resp_parse(struct resp_parser *ps, const char *buf, size_t len)
{
	size_t took;

	if (ps->err != RESP_OK) {
		return RESP_BAD;
	}
	/* The bytes already parsed must still be there. */
	assert(len >= ps->pos);
	for (;;) {
		switch (value(ps, buf, len)) {
		case STEP_BAD:
			return RESP_BAD;
		case STEP_PARTIAL:
			return RESP_PARTIAL;
		case STEP_OPEN:
			continue;
		case STEP_VALUE:
			break;
		}
		/* A value is complete, and with it maybe the arrays it was
		 * the last element of. */
		ps->nodes[ps->nnodes - 1].next = ps->nnodes;
		while (ps->depth > 0 && --ps->left[ps->depth - 1] == 0) {
			ps->nodes[ps->open[ps->depth - 1]].next = ps->nnodes;
			ps->depth--;
		}
		if (ps->depth == 0) {
			break;
		}
	}
	finish(ps, buf);
	took = ps->pos;
	ps->nnodes = 0;
	ps->pos = 0;
	ps->scan = 0;
	return (ssize_t)took;
}

size_t
resp_child(const struct resp_node *nodes, size_t i, size_t k)
{
	size_t j = i + 1;

	assert(nodes[i].type == RESP_ARRAY && k < nodes[i].n);
	while (k-- > 0) {
		j = nodes[j].next;
	}
	return j;
}

/* ---- commands ------------------------------------------------------- */

static void
put(struct resp_cmd *c, const char *p, size_t n)
{
	if (c->full || n > c->cap - c->len) {
		c->full = 1;
		return;
	}
	if (n > 0) {
		memcpy(c->out + c->len, p, n);
		c->len += n;
	}
}

/* "*N\r\n" or "$N\r\n". */
static void
put_head(struct resp_cmd *c, char type, uint64_t n)
{
	char h[24];
	size_t k;

	h[0] = type;
	k = 1 + util_u64_dec(n, h + 1);
	h[k++] = '\r';
	h[k++] = '\n';
	put(c, h, k);
}

void
resp_cmd_begin(struct resp_cmd *c, char *out, size_t cap, size_t argc)
{
	c->out = out;
	c->cap = cap;
	c->len = 0;
	c->want = argc;
	c->have = 0;
	c->full = 0;
	put_head(c, '*', argc);
}

void
resp_cmd_arg(struct resp_cmd *c, const char *p, size_t n)
{
	c->have++;
	put_head(c, '$', n);
	put(c, p, n);
	put(c, "\r\n", 2);
}

void
resp_cmd_u64(struct resp_cmd *c, uint64_t v)
{
	char d[20];

	resp_cmd_arg(c, d, util_u64_dec(v, d));
}

void
resp_cmd_i64(struct resp_cmd *c, int64_t v)
{
	char d[21];
	size_t n;

	if (v >= 0) {
		n = util_u64_dec((uint64_t)v, d);
	} else {
		/* -(v + 1) + 1 cannot overflow, INT64_MIN included. */
		d[0] = '-';
		n = 1 + util_u64_dec((uint64_t)-(v + 1) + 1, d + 1);
	}
	resp_cmd_arg(c, d, n);
}

ssize_t
resp_cmd_end(struct resp_cmd *c)
{
	if (c->full || c->have != c->want || c->len > SSIZE_MAX) {
		return -1;
	}
	return (ssize_t)c->len;
}

ssize_t
resp_encode(char *out, size_t cap, const struct view *argv, size_t argc)
{
	struct resp_cmd c;
	size_t k;

	resp_cmd_begin(&c, out, cap, argc);
	for (k = 0; k < argc; k++) {
		resp_cmd_arg(&c, argv[k].p, argv[k].n);
	}
	return resp_cmd_end(&c);
}
