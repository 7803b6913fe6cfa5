/* sse: an incremental server-sent events reader (see sse.h). */
#include <string.h>

#include "sse.h"

/* Where in a line. */
enum {
	L_START,	/* at the start of a line */
	L_NAME,		/* in the field name */
	L_VALUE_FIRST,	/* just after the colon: one space is skipped */
	L_VALUE,	/* in the value */
	L_COMMENT	/* in a comment line */
};

enum { F_OTHER, F_DATA, F_EVENT };

void
sse_init(struct sse *s, sse_data_fn *data, void *ctx)
{
	memset(s, 0, sizeof(*s));
	s->data = data;
	s->ctx = ctx;
}

static void
emit(struct sse *s, const char *p, size_t n)
{
	if (n > 0 && s->data != NULL) {
		s->data(s->ctx, p, n);
	}
}

/* The field name is complete: which field. A data line after another one
 * of the same event starts with the newline that joins them. */
static void
name_done(struct sse *s)
{
	s->field = F_OTHER;
	if (s->name_len == 4 && memcmp(s->name, "data", 4) == 0) {
		s->field = F_DATA;
		if (s->data_lines++ > 0) {
			emit(s, "\n", 1);
		}
	} else if (s->name_len == 5 && memcmp(s->name, "event", 5) == 0) {
		s->field = F_EVENT;
		s->event_len = 0;
	}
}

/* A line ended. Returns 1 when it was blank and ends an event. */
static int
line_done(struct sse *s)
{
	if (s->st == L_START) {
		if (!s->has_lines) {
			return 0;	/* blank lines between events */
		}
		s->event[s->event_len] = '\0';
		s->event_len = 0;	/* the next event names itself */
		s->has_lines = 0;
		s->data_lines = 0;
		return 1;
	}
	if (s->st == L_NAME) {
		name_done(s);	/* "data" alone: an empty data line */
	}
	s->st = L_START;
	return 0;
}

size_t
sse_feed(struct sse *s, const char *p, size_t n, int *ended)
{
	size_t i = 0;

	*ended = 0;
	while (i < n) {
		char c = p[i];

		if (s->after_cr) {
			s->after_cr = 0;
			if (c == '\n') {
				s->crlf = 1;
				i++;	/* the LF of a CRLF */
				continue;
			}
		}
		if (c == '\r' || c == '\n') {
			i++;
			s->after_cr = c == '\r';
			if (line_done(s)) {
				/* The LF of a CRLF that ends the event belongs
				 * to it, when it is here already. */
				if (s->after_cr && i < n && p[i] == '\n') {
					i++;
					s->after_cr = 0;
					s->crlf = 1;
				}
				*ended = 1;
				return i;
			}
			continue;
		}
		switch (s->st) {
		case L_START:
			s->has_lines = 1;
			if (c == ':') {
				s->st = L_COMMENT;
				i++;
				break;
			}
			s->st = L_NAME;
			s->name_len = 0;
			/* fall through */
		case L_NAME:
			i++;
			if (c == ':') {
				name_done(s);
				s->st = L_VALUE_FIRST;
			} else if (s->name_len < sizeof(s->name)) {
				s->name[s->name_len++] = c;
			} else {
				s->name_len = sizeof(s->name);
			}
			break;
		case L_VALUE_FIRST:
			s->st = L_VALUE;
			if (c == ' ') {
				i++;
				break;
			}
			/* fall through */
		case L_VALUE: {
			size_t j = i;

			while (j < n && p[j] != '\r' && p[j] != '\n') {
				j++;
			}
			if (s->field == F_DATA) {
				emit(s, p + i, j - i);
			} else if (s->field == F_EVENT) {
				size_t k = j - i, room = sizeof(s->event) - 1 -
				    s->event_len;

				k = k < room ? k : room;
				memcpy(s->event + s->event_len, p + i, k);
				s->event_len = (uint8_t)(s->event_len + k);
			}
			i = j;
			break;
		}
		default:	/* L_COMMENT */
			while (i < n && p[i] != '\r' && p[i] != '\n') {
				i++;
			}
			break;
		}
	}
	return i;
}
