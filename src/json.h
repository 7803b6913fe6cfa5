#ifndef RELAY_JSON_H
#define RELAY_JSON_H
/* JSON helpers: find the fields of a request body the relay needs (one
 * validating pass), escape strings for output. The scanner is our own
 * single-pass one; jsmn is not linked in, it is only the reference the
 * scanner is tested against (tests/unit/json_ref.c). Usage counts in
 * responses are read by usage.h. Pure: no I/O, no allocation. */
#include <stddef.h>
#include <stdint.h>
#include "util.h"

enum json_result {
	JSON_OK = 0,
	JSON_INVALID = -1,	/* not well-formed JSON */
	JSON_NOT_OBJECT = -2,	/* top level is not an object */
	JSON_NO_MODEL = -3,	/* no top-level "model" string */
	JSON_NOMEM = -4		/* a body of INT_MAX bytes or more */
};

/* What the relay reads from a request body. Offsets are into the body. */
struct json_request {
	struct view model;	/* the "model" string's raw contents (between
				 * the quotes, escapes not decoded) */
	size_t model_off;	/* offset of the value's opening quote */
	size_t model_len;	/* length of the value including both quotes */
	int stream;		/* top-level "stream": true */
	int has_max_tokens;	/* max_tokens, max_completion_tokens or
				 * max_output_tokens is a non-negative integer */
	uint64_t max_tokens;
	int has_stream_options;	/* top-level "stream_options" present */
	int include_usage;	/* stream_options.include_usage is true */
	size_t stream_options_off;	/* value range of "stream_options" */
	size_t stream_options_len;
	size_t object_end;	/* offset of the top-level closing '}' */
	uint64_t n;		/* top-level "n" (choices), 1 when absent or
				 * not a positive integer */
	int store;		/* top-level "store": 1 true, 0 false, -1
				 * absent or not a boolean */
	int background;		/* top-level "background": true */
	struct view previous;	/* "previous_response_id" string's raw
				 * contents, or { NULL, 0 } */
	int duplicate;		/* a top-level member name appears twice
				 * (names compared decoded; I-JSON, RFC 7493,
				 * refuses that) */
};

/* Validate body[0..n) as one JSON value (RFC 8259, blanks around it
 * allowed, at most 64 levels of nesting; strings need not be valid UTF-8)
 * and fill *out (all zero unless the result is JSON_OK or JSON_NO_MODEL).
 * Only top-level keys count ("model" inside "messages" is not the model),
 * matched after decoding escapes ("mod\u0065l" is "model"). A duplicate
 * top-level key: the last one wins (max token keys: the largest), and
 * out->duplicate is set: names the relay reads are always compared; of
 * the others, names up to 32 bytes by their decoded text and longer ones
 * by their raw bytes, for the first 64 of them. Returns a json_result. */
int json_scan_request(const char *body, size_t n, struct json_request *out);

/* Validate body as a JSON object and find the top-level string value of
 * key (the last one wins). Returns JSON_OK with *out the raw contents (a
 * view into body, escapes not decoded), JSON_NO_MODEL when the key is
 * absent or not a string, or another json_result. */
int json_top_string(const char *body, size_t n, const char *key,
    struct view *out);

/* RFC 8259 section 6: the number that starts at p[i] (i < n),
 * -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?
 * Returns the index just past it, or 0 when there is no number there. */
size_t json_number_end(const char *p, size_t n, size_t i);

/* Decode a JSON string's raw contents (escapes included, no quotes) into
 * out, NUL-terminated, UTF-8 for \u escapes (surrogate pairs joined).
 * Returns the decoded length, or -1 on a bad escape or when cap is too
 * small. */
long json_unescape(struct view raw, char *out, size_t cap);

/* Escape n bytes as the contents of a JSON string (quotes not added) into
 * out, NUL-terminated: '"', '\\' and control characters are escaped.
 * Returns the length written, or -1 when cap is too small. */
long json_escape(const char *in, size_t n, char *out, size_t cap);

#endif
