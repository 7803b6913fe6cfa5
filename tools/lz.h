/* lz.h: the build-time packer of util_unlz (src/util.h says the format).
 * Included by the tools that generate C source (tools/mkroots.c). The
 * parse is optimal for the format: a copy costs the same bits at any
 * distance, so from each position only the longest match matters, and a
 * backward pass picks, for every position, the cheapest way to the end
 * (a literal, or a copy of any length from 3 up to that longest match).
 * Brute-force matching over the 8 KiB window: fine for tens of KiB. */
#include <stdlib.h>
#include <string.h>

#include "util.h"

struct lz_out {
	unsigned char *p;
	size_t n, cap;			/* bytes; cap fixed up front */
	unsigned acc;			/* bits not yet stored */
	int nacc;
};

static void
lz_put(struct lz_out *o, unsigned v, int n)
{
	while (n-- > 0) {
		o->acc = o->acc << 1 | (v >> n & 1);
		if (++o->nacc == 8) {
			o->p[o->n++] = (unsigned char)o->acc;
			o->acc = 0;
			o->nacc = 0;
		}
	}
}

/* Pack in[0..n) into a malloc'd block; its length in *outlen. NULL when
 * out of memory. */
static unsigned char *
lz_pack(const unsigned char *in, size_t n, size_t *outlen)
{
	const size_t window = (size_t)1 << UTIL_LZ_DIST_BITS;
	const size_t maxlen = ((size_t)1 << UTIL_LZ_LEN_BITS) - 1 + UTIL_LZ_MIN;
	const size_t copy_bits = 1 + UTIL_LZ_DIST_BITS + UTIL_LZ_LEN_BITS;
	size_t *cost = NULL, *mlen = NULL, *mdist = NULL, *take = NULL;
	size_t i, j, l, c;
	struct lz_out o;

	memset(&o, 0, sizeof o);
	cost = calloc(n + 1, sizeof *cost);
	mlen = calloc(n + 1, sizeof *mlen);
	mdist = calloc(n + 1, sizeof *mdist);
	take = calloc(n + 1, sizeof *take);
	o.cap = n + n / 8 + 8;
	o.p = calloc(o.cap, 1);
	if (cost == NULL || mlen == NULL || mdist == NULL || take == NULL
	    || o.p == NULL) {
		free(o.p);
		o.p = NULL;
		goto out;
	}
	/* The longest match at each position (the nearest one of that
	 * length). */
	for (i = 0; i < n; i++) {
		for (j = i; j > 0 && i - j < window; j--) {
			for (l = 0; l < maxlen && i + l < n
			    && in[j - 1 + l] == in[i + l]; l++) {
			}
			if (l > mlen[i]) {
				mlen[i] = l;
				mdist[i] = i - (j - 1);
			}
		}
	}
	/* cost[i]: fewest bits from i to the end; take[i]: 0 for a literal
	 * or the copy length. */
	for (i = n; i-- > 0;) {
		cost[i] = 9 + cost[i + 1];
		take[i] = 0;
		for (l = UTIL_LZ_MIN; l <= mlen[i]; l++) {
			c = copy_bits + cost[i + l];
			if (c < cost[i]) {
				cost[i] = c;
				take[i] = l;
			}
		}
	}
	for (i = 0; i < n; i += take[i] ? take[i] : 1) {
		if (take[i] == 0) {
			lz_put(&o, in[i], 9);	/* flag 0, then the byte */
			continue;
		}
		lz_put(&o, 1, 1);
		lz_put(&o, (unsigned)(mdist[i] - 1), UTIL_LZ_DIST_BITS);
		lz_put(&o, (unsigned)(take[i] - UTIL_LZ_MIN), UTIL_LZ_LEN_BITS);
	}
	if (o.nacc > 0) {
		lz_put(&o, 0, 8 - o.nacc);
	}
	o.n += 3;			/* zero padding: see util.h */
	*outlen = o.n;
out:
	free(cost);
	free(mlen);
	free(mdist);
	free(take);
	return o.p;
}
