#ifndef RELAY_LEDGER_REC_H
#define RELAY_LEDGER_REC_H
/* The grammar of one ledger line (SPEC §6): a flat JSON object whose keys,
 * types and ranges depend on its "type" (charge, credit, task), ending in
 * "prev", the hex SHA-256 of the line before it. Pure: no I/O, no
 * allocation, no clock. */
#include <stddef.h>
#include <stdint.h>

#include "util.h"

enum {
	LEDGER_LINE_MAX = 65536,	/* longest line replay accepts, without
					 * its newline */
	LEDGER_RECORD_MAX = 8192,	/* longest line the relay writes */
	LEDGER_NAME_MAX = 256,		/* longest string field, in bytes */
	LEDGER_REC_WHY_MAX = LEDGER_NAME_MAX + 128	/* room for any reason
					 * ledger_rec_parse() gives */
};

enum ledger_rec_type {
	LEDGER_REC_CHARGE,	/* a finished request, debited */
	LEDGER_REC_CREDIT,	/* money added to (or taken from) a wallet */
	LEDGER_REC_TASK		/* an object created upstream (a task, a
				 * background response, any other) */
};

/* What a task line records (its "kind"). */
enum ledger_obj_kind {
	LEDGER_OBJ_TASK,	/* an async (video) task, charged once when
				 * it succeeds (no "kind") */
	LEDGER_OBJ_RESPONSE,	/* a background response, charged once when
				 * it completes ("response") */
	LEDGER_OBJ_PLAIN	/* any other object, only for affinity; never
				 * charged ("object") */
};

/* One parsed line. The strings are decoded copies ("" when absent); ts
 * and prev point into the parsed line and live as long as it does. */
struct ledger_rec {
	enum ledger_rec_type type;
	const char *ts;		/* 24 bytes "2026-11-24T22:10:00.123Z", no
				 * NUL: the first 10 are the UTC day */
	const char *prev;	/* 64 lower-case hex digits, no NUL */
	char cur[4];		/* currency of the amount, lower-case: the
				 * "<cur>" of "<cur>_nano", else "usd"; "" in
				 * a task */
	int cur_keyed;		/* the amount came from a "<cur>_nano" key */
	int64_t amount;		/* charge: the debit (>= 0); credit: signed
				 * (negative: a correction); task: 0 */
	uint64_t status;	/* charge: HTTP status 0..999; else 0 */
	uint64_t in, out;	/* charge: tokens; else 0 */
	uint64_t cached;	/* charge: cache reads ("cached"), or 0 */
	uint64_t cache_write;	/* charge: cache writes, or 0 */
	char cut[9];		/* charge: "client", "upstream" or "" */
	enum ledger_obj_kind kind;	/* task: what it is */
	uint64_t usd_nano;	/* charge: the cost in nano-USD; else 0 */
	int estimated;		/* charge: "estimated":true */
	char id[LEDGER_NAME_MAX + 1];
	char task[LEDGER_NAME_MAX + 1];
	char wallet[LEDGER_NAME_MAX + 1];	/* never "" */
	char model[LEDGER_NAME_MAX + 1];
	char route[LEDGER_NAME_MAX + 1];
	char cred[LEDGER_NAME_MAX + 1];
	char node[LEDGER_NAME_MAX + 1];	/* the relay of a fleet that wrote
					 * it, or "" */
};

/* Parse and check one line p[0..n) (without its newline; not read past
 * n, need not be NUL-terminated) into *r: the exact JSON grammar (RFC
 * 8259, no objects or arrays as values), known keys only and each once,
 * the keys its type needs and no others, integers within 64 bits and
 * non-negative (but a credit's amount), "status" at most 999, "ts" shaped
 * like 2026-11-24T22:10:00.123Z, "prev" 64 lower-case hex digits, one
 * amount in a credit, names at most LEDGER_NAME_MAX bytes decoded and
 * without NUL, a wallet always and an id in charges and tasks. Whether
 * the currency is the ledger's and prev matches the line before is the
 * caller's to check. Returns 0, or -1 with the reason in why (the first
 * problem found, e.g. "\"in\" is negative"; LEDGER_REC_WHY_MAX bytes
 * hold any). */
int ledger_rec_parse(const char *p, size_t n, struct ledger_rec *r,
    char *why, size_t whylen);

/* "prev" of the first line: 64 zeros. */
extern const char ledger_rec_zero_hash[65];

/* The chain's hash of a line p[0..n) (without its newline): its SHA-256
 * as 64 lower-case hex digits and a NUL, the next line's "prev". Inline:
 * the relay hashes each charge line on the request path. */
static inline void
ledger_rec_hash(const char *p, size_t n, char out[65])
{
	unsigned char h[32];

	util_sha256(p, n, h);
	util_hex(h, 32, out);
}

#endif
