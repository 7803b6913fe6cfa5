#ifndef RELAY_RESP_T_H
#define RELAY_RESP_T_H
/* Shared by tests/unit/test_resp.c and tests/fuzz/fuzz_resp.c: a parsed
 * reply as one line of text (to compare two parses and print both), and
 * written back as RESP (every reply the parser accepts is canonical, so
 * this gives back exactly the bytes it took). */
#include <stdio.h>
#include <string.h>

#include "resp.h"

/* Text appended to a fixed buffer; what does not fit is cut (and the
 * mark rt->cut set, so two long texts are never taken as equal). */
struct rt_out {
	char *p;
	size_t cap, len;
	int cut;
};

static inline void
rt_put(struct rt_out *o, const char *s, size_t n)
{
	if (n > o->cap - o->len) {
		o->cut = 1;
		n = o->cap - o->len;
	}
	memcpy(o->p + o->len, s, n);
	o->len += n;
}

static inline void
rt_puts(struct rt_out *o, const char *s)
{
	rt_put(o, s, strlen(s));
}

static inline void
rt_esc(struct rt_out *o, struct view v)
{
	size_t k;
	char b[8];

	for (k = 0; k < v.n; k++) {
		unsigned char c = (unsigned char)v.p[k];

		if (c >= 0x20 && c < 0x7f && c != '\\' && c != '"') {
			rt_put(o, v.p + k, 1);
		} else {
			snprintf(b, sizeof(b), "\\x%02x", c);
			rt_puts(o, b);
		}
	}
}

/* Node i of a complete reply (and its subtree) as text:
 * +OK  -ERR x  :5  $3"abc"  $-1  *-1  *2[:1,$0""] */
static inline void
rt_text(struct rt_out *o, const struct resp_node *nodes, size_t i)
{
	const struct resp_node *nd = &nodes[i];
	char b[48];
	size_t k;

	switch (nd->type) {
	case RESP_STRING:
	case RESP_ERROR:
		rt_put(o, nd->type == RESP_STRING ? "+" : "-", 1);
		rt_esc(o, nd->str);
		break;
	case RESP_INTEGER:
		snprintf(b, sizeof(b), ":%lld", (long long)nd->i);
		rt_puts(o, b);
		break;
	case RESP_BULK:
		if (nd->null) {
			rt_puts(o, "$-1");
			break;
		}
		snprintf(b, sizeof(b), "$%zu\"", nd->str.n);
		rt_puts(o, b);
		rt_esc(o, nd->str);
		rt_puts(o, "\"");
		break;
	case RESP_ARRAY:
		if (nd->null) {
			rt_puts(o, "*-1");
			break;
		}
		snprintf(b, sizeof(b), "*%zu[", nd->n);
		rt_puts(o, b);
		for (k = 0; k < nd->n; k++) {
			if (k > 0) {
				rt_puts(o, ",");
			}
			rt_text(o, nodes, resp_child(nodes, i, k));
		}
		rt_puts(o, "]");
		break;
	}
}

/* Node i (and its subtree) written back as RESP. */
static inline void
rt_wire(struct rt_out *o, const struct resp_node *nodes, size_t i)
{
	const struct resp_node *nd = &nodes[i];
	char b[48];
	size_t k;

	switch (nd->type) {
	case RESP_STRING:
	case RESP_ERROR:
		rt_put(o, nd->type == RESP_STRING ? "+" : "-", 1);
		rt_put(o, nd->str.p, nd->str.n);
		rt_puts(o, "\r\n");
		break;
	case RESP_INTEGER:
		snprintf(b, sizeof(b), ":%lld\r\n", (long long)nd->i);
		rt_puts(o, b);
		break;
	case RESP_BULK:
		if (nd->null) {
			rt_puts(o, "$-1\r\n");
			break;
		}
		snprintf(b, sizeof(b), "$%zu\r\n", nd->str.n);
		rt_puts(o, b);
		rt_put(o, nd->str.p, nd->str.n);
		rt_puts(o, "\r\n");
		break;
	case RESP_ARRAY:
		if (nd->null) {
			rt_puts(o, "*-1\r\n");
			break;
		}
		snprintf(b, sizeof(b), "*%zu\r\n", nd->n);
		rt_puts(o, b);
		for (k = 0; k < nd->n; k++) {
			rt_wire(o, nodes, resp_child(nodes, i, k));
		}
		break;
	}
}

#endif
