#ifndef RELAY_RESP_H
#define RELAY_RESP_H
/* RESP2, the Redis serialization protocol, from the client's side: the
 * codec the store client (SPEC §12, issue 18) speaks to Redis or Valkey.
 * Pure: bytes in, result out; no I/O, no allocation, no clock.
 *
 * Commands go out as an array of bulk strings (the only form a server
 * must accept). Replies come back as a small tree of nodes in an array
 * the caller gives, whose string fields are views into the caller's
 * bytes. RESP3 (HELLO 3: maps, sets, doubles, pushes...) is a later step:
 * the client never sends HELLO 3, and a RESP3 type byte is refused with
 * its own error.
 *
 * Parser contract (picohttpparser's, as http.h): > 0 is the number of
 * bytes one complete reply took, RESP_PARTIAL means more bytes are needed,
 * RESP_BAD means malformed. RESP has no way to find the next reply after
 * a bad one: the connection must be closed. */
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include "util.h"

#define RESP_BAD (-1)
#define RESP_PARTIAL (-2)
/* Non-empty arrays open at once, at most (nested replies: EVAL results). */
#define RESP_MAX_DEPTH 64

/* The type of a node: its RESP2 type byte. */
enum resp_type {
	RESP_STRING = '+',	/* simple string: str */
	RESP_ERROR = '-',	/* error: str, e.g. "NOSCRIPT No matching..." */
	RESP_INTEGER = ':',	/* integer: i */
	RESP_BULK = '$',	/* bulk string: str (binary-safe), or null */
	RESP_ARRAY = '*'	/* array of n nodes, or null */
};

/* One value of a reply. The nodes of a reply are in pre-order: nodes[0]
 * is the reply; an array's first element is the node right after it, and
 * each element's next names the one after that (see resp_child()). */
struct resp_node {
	enum resp_type type;
	int null;		/* 1 for a null bulk ($-1) or null array (*-1) */
	int64_t i;		/* RESP_INTEGER: the value */
	struct view str;	/* STRING, ERROR, BULK: view into the bytes
				 * given to resp_parse() (empty for null) */
	size_t n;		/* ARRAY: number of elements (0 for null) */
	size_t next;		/* index of the first node after this one's
				 * subtree (nodes[0].next: the reply's count) */
	size_t off;		/* private: str's offset while parsing */
};

/* Why a reply was refused: the parser's sticky error. */
enum resp_err {
	RESP_OK = 0,
	RESP_E_TYPE,		/* a type byte that is not + - : $ * */
	RESP_E_RESP3,		/* a RESP3 type byte (_ , # ( ! = % ~ | >) */
	RESP_E_CRLF,		/* a line or bulk not ended by CRLF, a bare
				 * CR or LF in a line */
	RESP_E_INTEGER,		/* an integer that is not -?[1-9][0-9]*|0 */
	RESP_E_OVERFLOW,	/* an integer or length beyond 64 bits */
	RESP_E_LENGTH,		/* a bulk or array length that is not a
				 * plain count or -1 */
	RESP_E_DEPTH,		/* arrays nested deeper than RESP_MAX_DEPTH */
	RESP_E_NODES,		/* more values than the caller's nodes */
	RESP_E_SIZE		/* a reply longer than max_reply bytes */
};

/* The parser's state between calls; fields are private. */
struct resp_parser {
	struct resp_node *nodes;	/* borrowed: the caller's array */
	size_t cap;			/* its size in nodes */
	size_t max_reply;		/* bytes one reply may take */
	size_t nnodes;			/* nodes of the reply so far */
	size_t pos;			/* its bytes parsed so far */
	size_t scan;			/* where the search for the end of
					 * the current line goes on */
	unsigned depth;			/* arrays open */
	size_t open[RESP_MAX_DEPTH];	/* node index of each open array */
	size_t left[RESP_MAX_DEPTH];	/* elements it still waits for */
	enum resp_err err;		/* sticky: RESP_OK until refused */
};

/* Start parsing replies into nodes[0..cap) (cap >= 1). A reply may take
 * at most max_reply bytes (the caller's buffer: a longer one could never
 * complete) and cap nodes. Never fails. */
void resp_parser_init(struct resp_parser *ps, struct resp_node *nodes,
    size_t cap, size_t max_reply);

/* Parse the reply that starts at buf[0], with len bytes of it (and maybe
 * of the replies after it) at hand. Returns:
 *  > 0           the reply is complete and took that many bytes: nodes[0]
 *                is its root; its views point into buf. They stay valid
 *                until buf changes or the next call, which starts the next
 *                reply (at the bytes after these: pipelined replies come
 *                in order).
 *  RESP_PARTIAL  more bytes are needed: call again with the same bytes at
 *                the start of buf (it may have moved) and more after them.
 *                The work done is kept: each byte is looked at about once.
 *  RESP_BAD      malformed: resp_parser_error() says why; every later
 *                call returns RESP_BAD too.
 * A piece may end anywhere, even inside a CRLF. */
ssize_t resp_parse(struct resp_parser *ps, const char *buf, size_t len);

/* The sticky error (RESP_OK while none). */
enum resp_err resp_parser_error(const struct resp_parser *ps);

/* A fixed English phrase for e, e.g. "bad type byte". */
const char *resp_strerror(enum resp_err e);

/* The index of element k (k < nodes[i].n) of the array at nodes[i], in
 * the nodes of a complete reply. O(k). */
size_t resp_child(const struct resp_node *nodes, size_t i, size_t k);

/* A command being written into a caller's buffer: begin with the number
 * of arguments, add each (bytes or a decimal integer), then end. Fields
 * are private. */
struct resp_cmd {
	char *out;		/* borrowed: the caller's buffer */
	size_t cap;
	size_t len;		/* bytes written so far */
	size_t want, have;	/* arguments announced, given */
	int full;		/* 1 once something did not fit */
};

/* Start a command of argc arguments in out[0..cap). */
void resp_cmd_begin(struct resp_cmd *c, char *out, size_t cap,
    size_t argc);
/* Add the argument p[0..n) (any bytes). */
void resp_cmd_arg(struct resp_cmd *c, const char *p, size_t n);
/* Add v as a decimal argument ("-12"); nano-units, ids, times. */
void resp_cmd_u64(struct resp_cmd *c, uint64_t v);
void resp_cmd_i64(struct resp_cmd *c, int64_t v);
/* The command's length, or -1 when it did not fit in cap bytes or the
 * arguments given are not the argc announced (out[0..cap) then holds no
 * usable command). */
ssize_t resp_cmd_end(struct resp_cmd *c);

/* The command argv[0..argc) in out[0..cap) at once: its length, or -1
 * when it does not fit. */
ssize_t resp_encode(char *out, size_t cap, const struct view *argv,
    size_t argc);

#endif
