#ifndef RELAY_SSE_H
#define RELAY_SSE_H
/* Server-sent events as the WHATWG spec reads them, incrementally: lines
 * end in CRLF, LF or CR; a line starting with ':' is a comment; "name:
 * value" with one optional space after the colon, a line without a colon
 * is a field with an empty value; "data" lines of one event are joined
 * with a newline; a blank line ends the event. The reader keeps no line:
 * it hands out data bytes as they pass (to the usage scanner) and says
 * where each event ends in the raw bytes, so the relay can forward the
 * raw event as it came. Fixed size; pure. */
#include <stddef.h>
#include <stdint.h>

/* Called with the bytes of the current event's data, in order ("\n"
 * between two data lines). */
typedef void sse_data_fn(void *ctx, const char *p, size_t n);

struct sse {
	uint8_t st;		/* private */
	uint8_t field;		/* the field of the current line */
	uint8_t name_len;
	char name[8];		/* the field name so far (longer: other) */
	uint8_t after_cr;	/* the last byte was CR: a LF next is its end */
	uint8_t crlf;		/* the stream has used CRLF line ends */
	uint32_t data_lines;	/* data lines of the current event */
	uint8_t has_lines;	/* the current event has a line */
	uint8_t event_len;
	char event[48];		/* the event's "event" value (cut to 47) */
	sse_data_fn *data;	/* borrowed */
	void *ctx;
};

/* Start reading a stream; data (may be NULL) gets each event's data. */
void sse_init(struct sse *s, sse_data_fn *data, void *ctx);

/* Read from p[0..n) up to the end of the next event. Returns the bytes
 * taken; *ended is 1 when they end an event (its blank line taken): the
 * event's name is then in s->event (NUL-terminated, "" for none), and
 * the next call starts the next event. */
size_t sse_feed(struct sse *s, const char *p, size_t n, int *ended);

#endif
