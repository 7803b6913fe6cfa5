#ifndef RELAY_BUF_H
#define RELAY_BUF_H
/* A byte buffer. Bytes live in data[start..end); room is cap - end.
 * Compaction moves the live bytes to the front, which invalidates views
 * into the buffer.
 *
 * Two kinds: fixed (buf_init: storage it does not own, cap bytes for
 * good) and growable (buf_init_grow: storage it owns, none until the
 * first byte, then BUF_FIRST bytes, doubled as bytes wait, never over max;
 * buf_release() gives it back when the buffer is empty: a first-size
 * block to a small stash the next buffer takes it from, a larger one to
 * the allocator). A growable buffer moves when it grows, which
 * invalidates views as compaction does. Its bound (buf_limit()) is max as a fixed one's is cap: the bytes
 * a buffer may hold, so backpressure is where it was; only the memory of
 * a buffer that holds little shrinks. */
#include <stddef.h>

struct buf {
	unsigned char *data;	/* storage of cap bytes (owned if growable) */
	size_t cap;
	size_t start;		/* first live byte */
	size_t end;		/* one past the last live byte */
	size_t max;		/* growable: cap grows up to this; 0: fixed */
	int filled;		/* growable: the last write reached cap */
};

#define BUF_FIRST 1024		/* a growable buffer's first size */

/* A fixed buffer over storage of cap bytes. Test hook: the relay's
 * connection buffers are growable; the unit tests use fixed ones over
 * their own storage. */
void buf_init(struct buf *b, unsigned char *storage, size_t cap);

/* An empty growable buffer of at most max bytes; nothing allocated yet. */
void buf_init_grow(struct buf *b, size_t max);

/* The most bytes it may hold: max when growable, else cap. */
static inline size_t
buf_limit(const struct buf *b)
{
	return b->max != 0 ? b->max : b->cap;
}

/* Growable: a new bound. A smaller one takes effect at once (the buffer
 * holds more only while those bytes are there: cap never drops below the
 * live bytes' end). */
void buf_set_max(struct buf *b, size_t max);

/* Room for n bytes at the tail: compacts, then (growable) grows as far
 * as max allows. Returns the room, which is below n when the bound (or
 * memory) says no. */
size_t buf_reserve(struct buf *b, size_t n);

/* Growable and empty: free the storage (the next byte allocates it
 * again). Otherwise nothing. */
void buf_release(struct buf *b);

/* Growable: free the storage, empty. */
void buf_free(struct buf *b);

static inline size_t
buf_len(const struct buf *b)
{
	return b->end - b->start;
}

/* Writable bytes at the tail without compacting. */
static inline size_t
buf_room(const struct buf *b)
{
	return b->cap - b->end;
}

static inline unsigned char *
buf_head(const struct buf *b)
{
	return b->data + b->start;
}

static inline unsigned char *
buf_tail(const struct buf *b)
{
	return b->data + b->end;
}

/* Drop n bytes from the front; an emptied buffer rewinds to offset 0. */
void buf_consume(struct buf *b, size_t n);

/* Mark n bytes written at the tail (a growable buffer notes when they
 * reach cap: see buf_make_room()). */
void buf_produced(struct buf *b, size_t n);

/* Room at the tail for a read. A growable buffer whose last read filled
 * it grows first (doubling, up to max: the peer sends more than one read
 * of this size takes, even when the bytes were taken out since). Without
 * room the live bytes move to the front. */
size_t buf_make_room(struct buf *b);

/* Append n bytes, compacting if needed. Returns 0, or -1 (nothing
 * written) when they do not fit. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Append a C string. Same contract as buf_append. */
int buf_puts(struct buf *b, const char *s);

#endif
