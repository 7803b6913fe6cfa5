#ifndef RELAY_USAGE_H
#define RELAY_USAGE_H
/* Usage by JSON meaning (SPEC §8). One JSON document (a response body,
 * or the data of one SSE event) is scanned as it passes, in pieces of any
 * size, with a fixed-size state: the key path of every value is tracked,
 * so a count is taken only from the documented place of each shape and a
 * "usage" nested anywhere else (a tool schema, echoed input, metadata) is
 * ignored, whatever the white space, escapes, field order or size.
 *
 * Documented places:
 *   usage.*                   a response object, an OpenAI stream chunk,
 *                             Anthropic's message_delta
 *   message.usage.*           Anthropic's message_start (partial: the
 *                             output count comes later)
 *   response.usage.*          a Responses stream's response.completed and
 *                             response.incomplete
 * Counts: prompt_tokens / input_tokens, completion_tokens / output_tokens,
 * {prompt,input}_tokens_details.cached_tokens and DeepSeek's
 * prompt_cache_hit_tokens (part of the prompt), Anthropic's
 * cache_read_input_tokens and cache_creation_input_tokens (on top of it).
 *
 * The scan also notes what the relay needs besides usage: the top-level
 * "type", "id" and "status" strings, whether "choices" is an empty array
 * beside a "usage" object (the usage-only chunk of an OpenAI stream), and
 * the bytes of content delivered (text, tool-call arguments, reasoning),
 * for the estimate of a cut stream. Pure: no I/O, no allocation. */
#include <stddef.h>
#include <stdint.h>

#define USAGE_COUNT_MAX ((uint64_t)1 << 40)	/* larger is invalid */

/* Token counts in billing buckets. */
struct usage {
	uint64_t in;		/* billed at the input price */
	uint64_t cached;	/* cache reads, at the cached price */
	uint64_t cache_write;	/* cache writes, at the cache-write price */
	uint64_t out;		/* output (reasoning included) */
	unsigned has;		/* USAGE_HAS_* bits: what was reported */
};

enum {
	USAGE_HAS_IN = 1,	/* a prompt/input count */
	USAGE_HAS_CACHED = 2,
	USAGE_HAS_CACHE_WRITE = 4,
	USAGE_HAS_OUT = 8
};

/* What one document said. */
struct usage_doc {
	int valid;		/* one well-formed JSON value */
	int found;		/* usage in the place the document's shape
				 * names (see above) */
	int final;		/* that usage is the provider's last word (not
				 * message_start's) */
	int invalid;		/* found, but a count is not an integer from 0
				 * to 2^40, or cached > prompt: usage_why */
	const char *usage_why;	/* static text, when invalid */
	struct usage usage;
	int usage_only;		/* "choices": [] and a "usage" object: the
				 * usage-only chunk of an OpenAI stream */
	uint64_t content_bytes;	/* content delivered by this document */
	char type[48];		/* top-level "type" ("" when none or long) */
	char id[129];		/* top-level "id", or "response"."id" of a
				 * Responses stream event */
	char status[32];	/* top-level "status", or "response"."status" */
};

/* Scanner state; fixed size, no pointers to the input. */
struct usage_scan {
	uint8_t st, sub;	/* where in the grammar */
	uint8_t depth;		/* open containers */
	uint8_t after_value;	/* a value ended: ',' or a close is next */
	uint64_t arrays;	/* bit d: container d+1 is an array */
	uint8_t keys[8];	/* key id per depth 1..8 */
	uint8_t role;		/* what the current value is for */
	uint8_t lit;		/* literal: which one, how far */
	uint16_t key_len;	/* raw bytes of the key being read */
	char key[192];		/* its raw bytes (escaped keys up to 6x) */
	uint16_t str_len;	/* raw bytes of a captured string value */
	char str[160];
	uint32_t uni;		/* \u escape: value so far */
	uint8_t uni_n;		/* its hex digits seen */
	uint64_t num;		/* a count being read */
	uint8_t num_bad;	/* not a plain integer in range */
	uint8_t arr_empty;	/* top-level choices array has no element yet */
	uint64_t str_bytes;	/* content bytes of the string being read */
	/* What was seen, per place (0 top usage, 1 message.usage, 2
	 * response.usage) and per field. */
	uint64_t raw[3][8];
	unsigned raw_has[3];
	uint8_t raw_bad[3];
	uint8_t usage_obj[3];
	uint8_t choices_empty;
	uint64_t content[4];	/* per family: choices, top delta, delta.*,
				 * whole-body content */
	char type[48], id[129], status[32];
};

/* Start a new document. */
void usage_scan_start(struct usage_scan *s);

/* Scan the next n bytes of the document. */
void usage_scan_feed(struct usage_scan *s, const char *p, size_t n);

/* The document is complete: what it said into *d. */
void usage_scan_end(struct usage_scan *s, struct usage_doc *d);

/* One call for a whole document. Test hook: the relay scans as bytes
 * pass; the tests and fuzz targets take whole documents. */
void usage_scan_all(const char *p, size_t n, struct usage_doc *d);

/* Merge the usage of a later document into *total: each bucket the later
 * one reports replaces the earlier value (Anthropic's message_delta
 * carries cumulative counts; an OpenAI stream's last usage is its
 * total). */
void usage_merge(struct usage *total, const struct usage *later);

#endif
