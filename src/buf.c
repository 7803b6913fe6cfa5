/* buf: bounded byte buffers. All bounds arithmetic for connection buffers
 * lives here; callers never index data[] past buf_room()/buf_len(). */
#include <string.h>

#include "buf.h"

void
buf_init(struct buf *b, unsigned char *storage, size_t cap)
{
	b->data = storage;
	b->cap = cap;
	b->start = 0;
	b->end = 0;
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
}

void
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

int
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n > buf_room(b)) {
		if (n > b->cap - buf_len(b)) {
			return -1;
		}
		buf_compact(b);
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
