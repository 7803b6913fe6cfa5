#ifndef RELAY_BUF_H
#define RELAY_BUF_H
/* A fixed-capacity byte buffer over storage it does not own. Bytes live in
 * data[start..end); room is cap - end. Compaction moves the live bytes to
 * the front, which invalidates views into the buffer. */
#include <stddef.h>

struct buf {
	unsigned char *data;	/* borrowed storage of cap bytes */
	size_t cap;
	size_t start;		/* first live byte */
	size_t end;		/* one past the last live byte */
};

void buf_init(struct buf *b, unsigned char *storage, size_t cap);

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

/* Mark n bytes written at the tail. */
void buf_produced(struct buf *b, size_t n);

/* Move live bytes to the front so that room is maximal. */
void buf_compact(struct buf *b);

/* Room at the tail, compacting first when there is none. */
static inline size_t
buf_make_room(struct buf *b)
{
	if (buf_room(b) == 0) {
		buf_compact(b);
	}
	return buf_room(b);
}

/* Append n bytes, compacting if needed. Returns 0, or -1 (nothing
 * written) when they do not fit. */
int buf_append(struct buf *b, const void *p, size_t n);

/* Append a C string. Same contract as buf_append. */
int buf_puts(struct buf *b, const char *s);

#endif
