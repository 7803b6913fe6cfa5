/*
 * http_chunked: the resumable decoder of chunked bodies (RFC 9112 §7.1)
 * declared in http.h.
 *
 * It consumes framing bytes as they arrive, one at a time through a small
 * state machine, and hands out chunk data as views into the caller's
 * input without copying it; so a partial size line never has to stay in
 * the caller's buffer. Chunk extensions are skipped and trailer fields
 * are checked like head fields, then dropped.
 *
 * What it does not do: I/O, allocation, or decoding any other transfer
 * coding. Its whole state is struct http_chunked; it never looks again at
 * a byte it has consumed.
 */
#include <limits.h>
#include <string.h>

#include "http.h"

/* Limits (see the header). */
#define CHUNK_MAX_SIZE ((uint64_t)1 << 60)
#define CHUNK_MAX_LINE 4096
#define CHUNK_MAX_TRAILER (16 * 1024)

/* Chunked decoder states: what the next byte should be. */
enum {
	CH_SIZE = 0,		/* chunk-size hex digit, or what ends it */
	CH_SIZE_WS,		/* BWS after the size, before ';' */
	CH_EXT,			/* chunk-ext, skipped to the line end */
	CH_SIZE_LF,		/* CR of the size line seen */
	CH_DATA,		/* chunk data; remaining bytes left */
	CH_DATA_CR,		/* CRLF after the data */
	CH_DATA_LF,
	CH_TRAILER,		/* start of a trailer line or final CRLF */
	CH_TRAILER_NAME,
	CH_TRAILER_VALUE,
	CH_TRAILER_LF,		/* CR of a trailer line seen */
	CH_END_LF,		/* CR of the final empty line seen */
	CH_DONE,
	CH_BAD			/* sticky: every later call is HTTP_BAD */
};

void
http_chunked_init(struct http_chunked *d)
{
	memset(d, 0, sizeof(*d));
	d->state = CH_SIZE;
}

static int
is_ctl(unsigned char c)
{
	return (c < 0x20 && c != '\t') || c == 0x7f;
}

/* The size line ended: a zero size is the last chunk (RFC 9112 §7.1). */
static void
end_size_line(struct http_chunked *d)
{
	d->line_len = 0;
	d->digits = 0;
	d->state = d->remaining == 0 ? CH_TRAILER : CH_DATA;
}

/* A byte of a size line (CH_SIZE to CH_SIZE_LF): 0, or -1 when it is
 * malformed. */
static int
size_line_byte(struct http_chunked *d, unsigned char c)
{
	int v;

	switch (d->state) {
	case CH_SIZE:
		/* chunk-size = 1*HEXDIG */
		v = util_hex_digit(c);
		if (v >= 0) {
			if (d->remaining > CHUNK_MAX_SIZE >> 4) {
				return -1;
			}
			d->remaining = d->remaining * 16 + (unsigned)v;
			if (d->remaining > CHUNK_MAX_SIZE) {
				return -1;
			}
			d->digits++;
			return 0;
		}
		if (d->digits == 0) {
			return -1;
		}
		if (c == '\r') {
			d->state = CH_SIZE_LF;
		} else if (c == '\n') {
			end_size_line(d);
		} else if (c == ';') {
			d->state = CH_EXT;
		} else if (c == ' ' || c == '\t') {
			d->state = CH_SIZE_WS;
		} else {
			return -1;
		}
		return 0;
	case CH_SIZE_WS:
		/* chunk-ext = *( BWS ";" ...): white space only before ';'. */
		if (c == ';') {
			d->state = CH_EXT;
		} else if (c != ' ' && c != '\t') {
			return -1;
		}
		return 0;
	case CH_EXT:
		/* Extensions are ignored (RFC 9112 §7.1.1); only the line
		 * length and control characters are checked. */
		if (c == '\r') {
			d->state = CH_SIZE_LF;
		} else if (c == '\n') {
			end_size_line(d);
		} else if (is_ctl(c)) {
			return -1;
		}
		return 0;
	default:	/* CH_SIZE_LF */
		if (c != '\n') {
			return -1;
		}
		end_size_line(d);
		return 0;
	}
}

/* A byte of the trailer section (CH_TRAILER to CH_END_LF): 0, or -1
 * when it is malformed. */
static int
trailer_byte(struct http_chunked *d, unsigned char c)
{
	switch (d->state) {
	case CH_TRAILER:
		/* trailer-section = *( field-line CRLF ) CRLF (§7.1.2); the
		 * fields are dropped, but checked like head fields. */
		if (c == '\r') {
			d->state = CH_END_LF;
		} else if (c == '\n') {
			d->state = CH_DONE;
		} else if (http_is_tchar(c)) {
			d->state = CH_TRAILER_NAME;
		} else {
			return -1;
		}
		return 0;
	case CH_TRAILER_NAME:
		if (c == ':') {
			d->state = CH_TRAILER_VALUE;
		} else if (!http_is_tchar(c)) {
			return -1;
		}
		return 0;
	case CH_TRAILER_VALUE:
		if (c == '\r') {
			d->state = CH_TRAILER_LF;
		} else if (c == '\n') {
			d->state = CH_TRAILER;
		} else if (is_ctl(c)) {
			return -1;
		}
		return 0;
	case CH_TRAILER_LF:
		if (c != '\n') {
			return -1;
		}
		d->state = CH_TRAILER;
		return 0;
	default:	/* CH_END_LF */
		if (c != '\n') {
			return -1;
		}
		d->state = CH_DONE;
		return 0;
	}
}

/* Take one framing byte; returns 0, or -1 when it is malformed. */
static int
chunked_byte(struct http_chunked *d, unsigned char c)
{
	if (d->state <= CH_SIZE_LF) {
		if (c != '\r' && c != '\n' && ++d->line_len > CHUNK_MAX_LINE) {
			return -1;
		}
		return size_line_byte(d, c);
	}
	if (d->state >= CH_TRAILER && d->state <= CH_END_LF) {
		if (++d->trailer_bytes > CHUNK_MAX_TRAILER) {
			return -1;
		}
		return trailer_byte(d, c);
	}
	switch (d->state) {
	case CH_DATA_CR:
		/* The data must be followed by exactly CRLF (or LF): anything
		 * else means the size lied. */
		if (c == '\r') {
			d->state = CH_DATA_LF;
		} else if (c == '\n') {
			d->state = CH_SIZE;
		} else {
			return -1;
		}
		return 0;
	case CH_DATA_LF:
		if (c != '\n') {
			return -1;
		}
		d->state = CH_SIZE;
		return 0;
	default:
		return -1;
	}
}

long
http_chunked_step(struct http_chunked *d, const char *in, size_t n,
    size_t *data_off, size_t *data_len)
{
	size_t i = 0, take;

	*data_off = 0;
	*data_len = 0;
	if (d->state == CH_BAD) {
		return HTTP_BAD;
	}
	if (n > LONG_MAX) {
		n = LONG_MAX;
	}
	while (i < n && d->state != CH_DONE) {
		if (d->state == CH_DATA) {
			take = n - i;
			if (take > d->remaining) {
				take = (size_t)d->remaining;
			}
			d->remaining -= take;
			if (d->remaining == 0) {
				d->state = CH_DATA_CR;
			}
			*data_off = i;
			*data_len = take;
			return (long)(i + take);
		}
		if (chunked_byte(d, (unsigned char)in[i]) < 0) {
			d->state = CH_BAD;
			return HTTP_BAD;
		}
		i++;
	}
	if (d->state == CH_DONE) {
		d->done = 1;
	}
	return (long)i;
}
