/* buf: bounded byte buffers. All bounds arithmetic for connection buffers
 * lives here; callers never index data[] past buf_room()/buf_len(). */
#include <stdlib.h>
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, unsigned char *storage, size_t cap)
{
	b->data = storage;
	b->cap = cap;
	b->start = 0;
	b->end = 0;
	b->max = 0;
	b->filled = 0;
}

void
buf_init_grow(struct buf *b, size_t max)
{
	buf_init(b, NULL, 0);
	b->max = max;
}

/* Move the live bytes to the front so that room is maximal. */
static void
buf_compact(struct buf *b)
{
	size_t n = buf_len(b);

	if (b->start == 0) {
		return;
	}
	if (n > 0) {
		memmove(b->data, b->data + b->start, n);
	}
	b->start = 0;
	b->end = n;
}

/* First-size blocks given back, kept for the next buffer that needs one:
 * a keep-alive request gives its buffers back and takes them again
 * (client input at the response, output at the wait, the upstream's when
 * it is parked), and malloc/free of each cost more than the rest of the
 * buffer work. At most BUF_STASH blocks (32 KiB) wait here. */
#define BUF_STASH 32
static unsigned char *stash[BUF_STASH];
static size_t nstash;

/* Growable: room for need bytes from data[0] (at most max; at least
 * BUF_FIRST; else the next power of two, as util_grow() would, but never
 * past max). Returns 0, or -1 with nothing changed (no memory).
 *
 * Not util_grow(): that zeroes the new part, and writing a byte makes a
 * page resident. A buffer given its whole room for a large read (a long
 * head, a body on its way) would then hold all of it in memory although
 * only the bytes written are ever read; realloc() leaves the rest
 * untouched. Sizes stay far from overflow: need <= max and the doubling
 * stops at max. */
static int
grow(struct buf *b, size_t need)
{
	size_t cap = b->cap > 0 ? b->cap : BUF_FIRST;
	unsigned char *p;

	if (need > b->max) {
		need = b->max;
	}
	while (cap < need && cap <= b->max / 2) {
		cap *= 2;
	}
	if (cap < need || cap > b->max) {
		cap = b->max;
	}
	if (cap <= b->cap) {
		return 0;
	}
	if (b->data == NULL && cap == BUF_FIRST && nstash > 0) {
		b->data = stash[--nstash];
		b->cap = cap;
		return 0;
	}
	if ((p = realloc(b->data, cap)) == NULL) {
		return -1;
	}
	b->data = p;
	b->cap = cap;
	return 0;
}

void
buf_set_max(struct buf *b, size_t max)
{
	buf_compact(b);
	if (max < b->end) {
		max = b->end;
	}
	b->max = max;
	if (b->cap > max) {
		b->cap = max;
	}
}

size_t
buf_reserve(struct buf *b, size_t n)
{
	if (buf_room(b) >= n) {
		return buf_room(b);
	}
	buf_compact(b);
	if (buf_room(b) < n && b->cap < b->max) {
		(void)grow(b, n > b->max - b->end ? b->max : b->end + n);
	}
	return buf_room(b);
}

size_t
buf_make_room(struct buf *b)
{
	if (b->cap < b->max && (b->filled || b->cap == 0 ||
	    (buf_room(b) == 0 && b->start == 0))) {
		/* None yet, or reads of this size fall behind. */
		(void)grow(b, b->cap > b->max / 2 ? b->max : b->cap * 2);
	}
	b->filled = 0;
	if (buf_room(b) == 0) {
		buf_compact(b);
	}
	return buf_room(b);
}

void
buf_release(struct buf *b)
{
	if (b->max != 0 && buf_len(b) == 0) {
		buf_free(b);
	}
}

void
buf_free(struct buf *b)
{
	if (b->max == 0) {
		return;
	}
	if (b->cap == BUF_FIRST && nstash < BUF_STASH) {
		stash[nstash++] = b->data;	/* holds at least cap bytes */
	} else {
		free(b->data);
	}
	buf_init_grow(b, b->max);
}

void
buf_consume(struct buf *b, size_t n)
{
	if (n >= buf_len(b)) {
		b->start = 0;
		b->end = 0;
		return;
	}
	b->start += n;
}

void
buf_produced(struct buf *b, size_t n)
{
	if (n > buf_room(b)) {
		n = buf_room(b);
	}
	b->end += n;
	if (b->end == b->cap && n > 0) {
		b->filled = 1;
	}
}


int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > buf_room(b) && buf_reserve(b, n) < n) {
		return -1;
	}
	if (n > 0) {
		memcpy(b->data + b->end, p, n);
	}
	b->end += n;
	return 0;
}

int
buf_puts(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}
