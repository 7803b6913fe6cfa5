/* lz.h: the build-time packer of util_unlz (src/util.h says the format).
 * Included by the tools that generate C source (tools/mkroots.c,
 * tools/lzpack.c). The parse is optimal for the format: a backward pass
 * picks, for every position, the cheapest way to the end, a literal or a
 * copy of any length the data allows, each length from its nearest
 * source (a nearer copy never costs more bits). Brute-force matching over
 * all the data before: fine for tens of KiB. */
#include <stdlib.h>
#include <string.h>

struct lz_out {
	unsigned char *p;
	size_t n;			/* bytes stored */
	unsigned acc;			/* bits not yet stored */
	int nacc;
};

static void
lz_put(struct lz_out *o, size_t v, int n)
{
	while (n-- > 0) {
		o->acc = o->acc << 1 | (unsigned)(v >> n & 1);
		if (++o->nacc == 8) {
			o->p[o->n++] = (unsigned char)o->acc;
			o->acc = 0;
			o->nacc = 0;
		}
	}
}

/* Bits of v >= 1 after its first. */
static int
lz_log2(size_t v)
{
	int k = 0;

	while (v >> (k + 1)) {
		k++;
	}
	return k;
}

static void
lz_put_gamma(struct lz_out *o, size_t v)
{
	int k = lz_log2(v);

	lz_put(o, 0, k);
	lz_put(o, v, k + 1);
}

/* Bits of a copy of len bytes from dist back. */
static size_t
lz_copy_bits(size_t len, size_t dist)
{
	return 1 + 2 * (size_t)lz_log2((dist - 1) / 128 + 1) + 1 + 7
	    + 2 * (size_t)lz_log2(len - 1) + 1;
}

/* Pack in[0..n) into a malloc'd block; its length in *outlen. NULL when
 * out of memory. */
static unsigned char *
lz_pack(const unsigned char *in, size_t n, size_t *outlen)
{
	size_t *cost = NULL, *tlen = NULL, *tdist = NULL;
	size_t i, j, l, best, c;
	struct lz_out o;

	memset(&o, 0, sizeof o);
	cost = calloc(n + 1, sizeof *cost);
	tlen = calloc(n + 1, sizeof *tlen);
	tdist = calloc(n + 1, sizeof *tdist);
	/* At worst 9 bits a byte, and the last byte's padding. */
	o.p = calloc(n + n / 8 + 2, 1);
	if (cost == NULL || tlen == NULL || tdist == NULL || o.p == NULL) {
		free(o.p);
		o.p = NULL;
		goto out;
	}
	/* cost[i]: fewest bits from i to the end; tlen[i]: 0 for a literal
	 * or the copy's length, from tdist[i] back. */
	for (i = n; i-- > 0;) {
		cost[i] = 9 + cost[i + 1];
		best = 1;
		for (j = i; j-- > 0;) {
			for (l = 0; i + l < n && in[j + l] == in[i + l]; l++) {
			}
			/* Lengths best+1..l come nearest from here. */
			for (; best < l; best++) {
				c = lz_copy_bits(best + 1, i - j) + cost[i + best + 1];
				if (c < cost[i]) {
					cost[i] = c;
					tlen[i] = best + 1;
					tdist[i] = i - j;
				}
			}
			if (i + best >= n) {
				break;
			}
		}
	}
	for (i = 0; i < n; i += tlen[i] ? tlen[i] : 1) {
		if (tlen[i] == 0) {
			lz_put(&o, in[i], 9);	/* 0, then the byte */
			continue;
		}
		lz_put(&o, 1, 1);
		lz_put_gamma(&o, (tdist[i] - 1) / 128 + 1);
		lz_put(&o, (tdist[i] - 1) % 128, 7);
		lz_put_gamma(&o, tlen[i] - 1);
	}
	if (o.nacc > 0) {
		lz_put(&o, 0, 8 - o.nacc);
	}
	*outlen = o.n;
out:
	free(cost);
	free(tlen);
	free(tdist);
	return o.p;
}
