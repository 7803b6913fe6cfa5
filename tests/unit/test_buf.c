/* Unit tests for buf: fixed buffers, and growable ones (small at first,
 * grown while bytes wait, never past their bound, given back when
 * empty). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "t.h"

/* Bytes 0, 1, 2, ... (mod 251) from offset at. */
static void
pattern(unsigned char *p, size_t n, size_t at)
{
	size_t i;

	for (i = 0; i < n; i++) {
		p[i] = (unsigned char)((at + i) % 251);
	}
}

static int
is_pattern(const unsigned char *p, size_t n, size_t at)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] != (unsigned char)((at + i) % 251)) {
			return 0;
		}
	}
	return 1;
}

static void
test_fixed(void)
{
	unsigned char store[64], src[128];
	struct buf b;

	pattern(src, sizeof(src), 0);
	buf_init(&b, store, sizeof(store));
	ok(buf_limit(&b) == 64 && buf_room(&b) == 64, "fixed: limit = room = cap");
	ok_int(buf_append(&b, src, 40), 0, "fixed: 40 bytes fit");
	buf_consume(&b, 30);
	ok_int(buf_append(&b, src + 40, 30), 0,
	    "fixed: 30 more fit after compaction");
	ok(buf_len(&b) == 40 && is_pattern(buf_head(&b), 40, 30),
	    "fixed: the live bytes, in order, after compaction");
	ok_int(buf_append(&b, src, 25), -1, "fixed: over cap refused");
	ok(buf_len(&b) == 40 && b.data == store && b.cap == 64,
	    "fixed: a refusal changes nothing; storage never moves");
	ok(buf_reserve(&b, 40) == 24 && buf_make_room(&b) == 24,
	    "fixed: reserve and make_room never grow it");
	buf_consume(&b, 40);
	buf_release(&b);
	buf_free(&b);
	ok(b.data == store && b.cap == 64,
	    "fixed: release and free leave borrowed storage alone");
}

static void
test_grow(void)
{
	static unsigned char src[40000];
	struct buf b;

	pattern(src, sizeof(src), 0);
	buf_init_grow(&b, 32768);
	ok(b.data == NULL && b.cap == 0 && buf_len(&b) == 0 &&
	    buf_limit(&b) == 32768, "grow: nothing allocated before a byte");
	ok_int(buf_append(&b, src, 100), 0, "grow: a first append");
	ok(b.cap == BUF_FIRST && is_pattern(buf_head(&b), 100, 0),
	    "grow: the first size is BUF_FIRST (%zu)", b.cap);
	ok_int(buf_append(&b, src + 100, 3000), 0, "grow: 3,000 more");
	ok(b.cap == 4096 && buf_len(&b) == 3100 &&
	    is_pattern(buf_head(&b), 3100, 0),
	    "grow: doubled as far as needed, bytes kept (cap %zu)", b.cap);
	ok_int(buf_append(&b, src + 3100, 32768 - 3100), 0,
	    "grow: filled to the bound");
	ok(b.cap == 32768 && buf_len(&b) == 32768 &&
	    is_pattern(buf_head(&b), 32768, 0), "grow: at the bound, whole");
	ok_int(buf_append(&b, src, 1), -1, "grow: past the bound refused");
	ok(buf_reserve(&b, 100) == 0 && buf_make_room(&b) == 0,
	    "grow: no room past the bound (backpressure)");
	buf_consume(&b, 1000);
	ok(buf_make_room(&b) == 1000 && b.cap == 32768 &&
	    is_pattern(buf_head(&b), 31768, 1000),
	    "grow: at the bound, room comes from compaction only");
	buf_release(&b);
	ok(b.data != NULL, "grow: release keeps a buffer that holds bytes");
	buf_consume(&b, buf_len(&b));
	buf_release(&b);
	ok(b.data == NULL && b.cap == 0 && buf_limit(&b) == 32768,
	    "grow: an empty buffer is given back, its bound kept");
	ok_int(buf_append(&b, src, 10), 0, "grow: usable again after release");
	ok(b.cap == BUF_FIRST, "grow: small again (%zu)", b.cap);
	buf_free(&b);
	ok(b.data == NULL && buf_len(&b) == 0, "grow: free");
}

/* A read that fills the buffer makes the next make_room double it, even
 * when the bytes were taken out since; reads that do not fill it leave it
 * small. */
static void
test_reads(void)
{
	struct buf b;
	size_t room;

	buf_init_grow(&b, 16384);
	room = buf_make_room(&b);
	ok(room == BUF_FIRST && b.data != NULL,
	    "reads: make_room allocates the first size");
	buf_produced(&b, 100);
	buf_consume(&b, 100);
	ok(buf_make_room(&b) == BUF_FIRST, "reads: a short read: no growth");
	buf_produced(&b, BUF_FIRST);
	buf_consume(&b, BUF_FIRST);
	ok(buf_make_room(&b) == 2 * BUF_FIRST,
	    "reads: a read that filled it: doubled (%zu)", b.cap);
	buf_produced(&b, 2 * BUF_FIRST);
	ok(buf_make_room(&b) == 2 * BUF_FIRST && buf_len(&b) == 2 * BUF_FIRST,
	    "reads: full and unread: doubled again, bytes kept");
	buf_produced(&b, buf_room(&b));
	buf_produced(&b, buf_room(&b));
	while (buf_make_room(&b) > 0) {
		buf_produced(&b, buf_room(&b));
	}
	ok(b.cap == 16384 && buf_len(&b) == 16384,
	    "reads: never past the bound (%zu)", b.cap);
	buf_free(&b);
}

/* A bound that is not a power of two, and a bound that shrinks. */
static void
test_bounds(void)
{
	static unsigned char src[20000];
	struct buf b;

	pattern(src, sizeof(src), 0);
	buf_init_grow(&b, 20000);
	ok_int(buf_append(&b, src, 20000), 0, "bounds: 20,000 of 20,000");
	ok(b.cap == 20000 && buf_room(&b) == 0 &&
	    is_pattern(buf_head(&b), 20000, 0),
	    "bounds: cap stops at the bound (%zu)", b.cap);
	ok_int(buf_append(&b, src, 1), -1, "bounds: one more refused");
	buf_consume(&b, 15000);
	buf_set_max(&b, 4096);
	ok(buf_limit(&b) == 5000 && b.cap == 5000 && b.start == 0 &&
	    is_pattern(buf_head(&b), 5000, 15000),
	    "bounds: a smaller bound keeps the live bytes (%zu)", b.cap);
	buf_consume(&b, 5000);
	buf_set_max(&b, 4096);
	ok(buf_limit(&b) == 4096 && b.cap == 4096 && buf_reserve(&b, 8000) ==
	    4096, "bounds: then holds (%zu)", b.cap);
	buf_set_max(&b, 20000);
	ok(buf_reserve(&b, 8000) >= 8000 && b.cap <= 20000,
	    "bounds: a larger bound lets it grow again (%zu)", b.cap);
	buf_free(&b);
}

/* A first-size block given back is the next buffer's first block; a
 * larger one goes back to the allocator. */
static void
test_stash(void)
{
	struct buf a, b, c;
	unsigned char *first;

	buf_init_grow(&a, 32768);
	buf_init_grow(&b, 32768);
	buf_init_grow(&c, 32768);
	ok_int(buf_append(&a, "x", 1), 0, "stash: a's first byte");
	first = a.data;
	buf_consume(&a, 1);
	buf_release(&a);
	ok(a.data == NULL, "stash: a gave its block back");
	ok_int(buf_append(&b, "yz", 2), 0, "stash: b's first bytes");
	ok(b.data == first && b.cap == BUF_FIRST &&
	    memcmp(buf_head(&b), "yz", 2) == 0,
	    "stash: b took a's block, first size");
	ok(buf_reserve(&b, 5000) >= 5000 && b.cap == 8192,
	    "stash: and grows from it (%zu)", b.cap);
	buf_consume(&b, 2);
	buf_release(&b);
	ok_int(buf_append(&c, "w", 1), 0, "stash: c's first byte");
	ok(c.cap == BUF_FIRST && memcmp(buf_head(&c), "w", 1) == 0,
	    "stash: c starts at the first size after a larger block went "
	    "back (%zu)", c.cap);
	buf_free(&a);
	buf_free(&b);
	buf_free(&c);
}

int
main(void)
{
	test_fixed();
	test_grow();
	test_reads();
	test_bounds();
	test_stash();
	return t_done("buf");
}
