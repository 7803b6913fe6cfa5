/* libFuzzer harness: the RESP2 codec (src/resp.c).
 *
 * The first two bytes pick the limits (nodes, max_reply) and a seed for
 * piece sizes; the rest is what a server sent. It is parsed as a client
 * reads it, reply after reply: whole, split in two at a point, in pieces
 * of random sizes, and (when short) one byte at a time. Every way must
 * give the same replies (tree and bytes taken) and the same end (bytes
 * left over, or the same error). Each piece is an exact-size heap copy,
 * moved before every call, so a read past its end or a pointer kept
 * between calls shows. Every accepted reply is canonical: written back,
 * it is exactly the bytes it took, and its views lie inside them.
 *
 * Then the input, cut into arguments at each 0xff byte, is encoded as a
 * command: it parses back to an array of the same bulk strings, and a
 * buffer one byte short gives -1. */
#include "fuzz.h"
#include "resp.h"
#include "../unit/resp_t.h"

#define TEXT_MAX (64 * 1024)
#define NODES_MAX 256
#define ARGS_MAX 64

struct lim {
	size_t nodes, max_reply;
};

static struct resp_node nodes[NODES_MAX];
static char wire[TEXT_MAX];

/* Check that the views of the reply in p[0..took) lie inside it and that
 * it writes back to its own bytes. */
static void
check_reply(const char *p, size_t took)
{
	struct rt_out w = { wire, sizeof(wire), 0, 0 };
	size_t k;

	CHECK(nodes[0].next >= 1 && nodes[0].next <= NODES_MAX);
	for (k = 0; k < nodes[0].next; k++) {
		CHECK(nodes[k].str.p != NULL);
		CHECK(fuzz_inside(nodes[k].str.p, nodes[k].str.n, p, took));
		CHECK(nodes[k].next > k && nodes[k].next <= nodes[0].next);
	}
	rt_wire(&w, nodes, 0);
	CHECK(w.cut || (w.len == took && memcmp(wire, p, took) == 0));
}

/* Feed in[0..len) in pieces: the bytes at hand grow by step(s) (or all at
 * once when step is NULL); the text of the outcome goes to out. */
static void
feed(const char *in, size_t len, struct lim lm, size_t (*step)(unsigned *),
    unsigned seed, char *out, size_t cap)
{
	struct resp_parser ps;
	struct rt_out o = { out, cap - 1, 0, 0 };
	size_t have = 0, used = 0;
	char b[48];

	resp_parser_init(&ps, nodes, lm.nodes, lm.max_reply);
	while (have < len) {
		size_t s = step ? step(&seed) : len;

		have = s > len - have ? len : have + s;
		for (;;) {
			char *p = fuzz_dup(in + used, have - used);
			ssize_t r = resp_parse(&ps, p, have - used);

			if (r == RESP_PARTIAL) {
				free(p);
				break;
			}
			if (r == RESP_BAD) {
				CHECK(resp_parser_error(&ps) != RESP_OK);
				CHECK(resp_parse(&ps, p, have - used) ==
				    RESP_BAD);
				free(p);
				rt_puts(&o, "BAD(");
				rt_puts(&o, resp_strerror(
				    resp_parser_error(&ps)));
				rt_puts(&o, ")");
				out[o.len] = '\0';
				return;
			}
			CHECK(r > 0 && (size_t)r <= have - used);
			CHECK((size_t)r <= lm.max_reply);
			CHECK(nodes[0].next <= lm.nodes);
			check_reply(p, (size_t)r);
			snprintf(b, sizeof(b), "%zd:", r);
			rt_puts(&o, b);
			rt_text(&o, nodes, 0);
			rt_puts(&o, " ");
			free(p);
			used += (size_t)r;
		}
	}
	snprintf(b, sizeof(b), "left=%zu", len - used);
	rt_puts(&o, b);
	out[o.len] = '\0';
}

static size_t split_at;

static size_t
step_split(unsigned *seed)
{
	size_t s = split_at;

	(void)seed;
	split_at = (size_t)-1;	/* then the rest */
	return s;
}

static size_t
step_random(unsigned *seed)
{
	*seed = *seed * 1103515245u + 12345u;
	return 1 + (*seed >> 16) % 17;
}

static size_t
step_one(unsigned *seed)
{
	(void)seed;
	return 1;
}

static void
round_trip(const char *in, size_t len)
{
	struct view argv[ARGS_MAX];
	struct resp_node back[ARGS_MAX + 1];
	struct resp_parser ps;
	size_t argc = 0, start = 0, k, cap;
	char *out;
	ssize_t r;

	for (k = 0; k <= len && argc < ARGS_MAX; k++) {
		if (k == len || (unsigned char)in[k] == 0xff) {
			argv[argc].p = in + start;
			argv[argc].n = k - start;
			argc++;
			start = k + 1;
		}
	}
	cap = len + 32 * (argc + 1);
	out = malloc(cap);
	CHECK(out != NULL);
	r = resp_encode(out, cap, argv, argc);
	CHECK(r > 0);
	CHECK(resp_encode(out, (size_t)r - 1, argv, argc) == -1);
	CHECK(resp_encode(out, (size_t)r, argv, argc) == r);
	resp_parser_init(&ps, back, ARGS_MAX + 1, (size_t)r);
	CHECK(resp_parse(&ps, out, (size_t)r) == r);
	CHECK(back[0].type == RESP_ARRAY && back[0].n == argc);
	for (k = 0; k < argc; k++) {
		const struct resp_node *e = &back[resp_child(back, 0, k)];

		CHECK(e->type == RESP_BULK && !e->null);
		CHECK(e->str.n == argv[k].n);
		CHECK(e->str.n == 0 ||
		    memcmp(e->str.p, argv[k].p, e->str.n) == 0);
	}
	free(out);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char whole[TEXT_MAX], other[TEXT_MAX];
	struct lim lm;
	const char *in;
	size_t len;
	unsigned seed;

	if (size < 2) {
		return 0;
	}
	/* Limits: 1 to 256 nodes (mostly plenty), max_reply from 0 to
	 * whole (mostly plenty). */
	lm.nodes = data[0] < 200 ? NODES_MAX : (size_t)(data[0] - 199);
	lm.max_reply = data[1] < 128 ? 1u << 20 : (size_t)(data[1] - 128) * 4;
	seed = (unsigned)data[0] << 8 | data[1];
	in = (const char *)data + 2;
	len = size - 2;

	feed(in, len, lm, NULL, 0, whole, sizeof(whole));
	split_at = len ? 1 + seed % len : 0;
	feed(in, len, lm, step_split, 0, other, sizeof(other));
	CHECK(strcmp(whole, other) == 0);
	feed(in, len, lm, step_random, seed, other, sizeof(other));
	CHECK(strcmp(whole, other) == 0);
	if (len <= 512) {
		feed(in, len, lm, step_one, 0, other, sizeof(other));
		CHECK(strcmp(whole, other) == 0);
	}
	round_trip(in, len);
	return 0;
}
