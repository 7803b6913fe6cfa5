#ifndef RELAY_MULTIPART_H
#define RELAY_MULTIPART_H
/* multipart/form-data bodies (RFC 7578 over RFC 2046 §5.1), read
 * incrementally for a relay that forwards them untouched but for the
 * value of the part named "model" (SPEC §9).
 *
 * The reader is fed the body in pieces of any size and consumes every
 * byte it is given: a delimiter split between two pieces is found,
 * because the bytes that might begin one are always a prefix of the
 * known "\r\n--boundary" and are kept as a match length, never copied.
 * It hands out events with stream offsets (counted from the first body
 * byte), so the caller can forward the raw bytes as they came:
 *
 *   MULTIPART_PART   a part's header block is complete: m->name,
 *                    m->filename, [m->head_off, m->body_off)
 *   MULTIPART_DATA   bytes of the current part's content
 *   MULTIPART_END    the part's content ended at ev->off; ev->model is
 *                    1 for the model part, whose value is then complete
 *                    (m->model, [m->model_off, m->model_end))
 *   MULTIPART_DONE   the closing delimiter was read
 *   MULTIPART_MORE   no event: every byte given was taken
 *
 * What it accepts: a preamble; delimiter lines "--boundary" at the body
 * start or after CRLF, or after a bare LF as robust readers take it (Go's
 * mime/multipart, python-multipart), with transport padding (RFC 2046
 * §5.1.1); header lines ending in CRLF or LF, at most
 * MULTIPART_HEAD_MAX bytes per block, no obs-fold; one
 * Content-Disposition per part, type "form-data", parameters read by
 * meaning (case-insensitive names, token or quoted-string values with
 * backslash escapes, OWS around ';' and '=', name*= and filename*= in
 * the RFC 8187 form with UTF-8 or ISO-8859-1); an epilogue.
 *
 * What it refuses, each with its own reason (multipart_strerror): see
 * enum multipart_err. Where readers are known to differ (a line that
 * starts with the delimiter but is not one, which RFC 2046 §5.1.1 says
 * must not occur in a part; a delimiter after the closing one; name=
 * and name*= that disagree; RFC 2231 continuations; a second
 * Content-Disposition; a second model part) the body is refused rather
 * than guessed, so that no part the upstream reads as "model" can pass
 * the relay unseen.
 *
 * How the relay drives it: multipart_boundary() on the request's
 * Content-Type, multipart_init(m, b, len, MULTIPART_WITHIN), then every
 * piece of the (de-chunked) body is fed whole before any of it is
 * forwarded:
 *  - until the END event with ev->model, the pieces are held (at most
 *    MULTIPART_WITHIN bytes: the reader refuses, MODEL_LATE, before it
 *    would need one more);
 *  - at that END, m->model picks the route; the upstream body is
 *    length - (m->model_end - m->model_off) + the new value's length,
 *    and the held bytes (contiguous in the request block) go out with
 *    [m->model_off, m->model_end) replaced (src/upload.c, as an edit of
 *    rewrite.c; multipart_splice() does the same for pieces);
 *  - after it, each piece goes out as it came, but for the last one,
 *    which waits for multipart_finish() to return MULTIPART_OK;
 *  - on a refusal the upstream connection (if any) is cut before its
 *    body is complete, so it never acts on it, and the client gets 400
 *    with multipart_strerror(); a body that ends with no model part
 *    (m->model_done unset) has no model to route by.
 *
 * Pure: no I/O, no allocation, fixed size (sizeof(struct multipart) is
 * under 1 KiB). */
#include <stddef.h>
#include <stdint.h>

enum {
	MULTIPART_BOUNDARY_MAX = 70,	/* RFC 2046 §5.1.1 */
	MULTIPART_HEAD_MAX = 8192,	/* a part's header block, bytes
					 * from the end of the boundary
					 * (padding and CRLF included) */
	MULTIPART_MODEL_MAX = 256,	/* the model value, bytes */
	MULTIPART_NAME_MAX = 128,	/* a part name kept (longer: cut) */
	MULTIPART_FILENAME_MAX = 255	/* a filename kept (longer: cut) */
};

/* The bound the relay holds a body to before its model is known: the
 * model part, with the delimiter after it, must lie within the first
 * MULTIPART_WITHIN bytes (a 32,000-character image prompt written
 * before it, as the Python SDK does, fits). */
#define MULTIPART_WITHIN ((uint64_t)256 * 1024)

#define MULTIPART_BAD (-1)

/* Why a Content-Type or a body was refused. */
enum multipart_err {
	MULTIPART_OK = 0,
	MULTIPART_ERR_NOT_FORM,		/* the media type is not
					 * multipart/form-data */
	MULTIPART_ERR_CT_SYNTAX,	/* the Content-Type does not parse */
	MULTIPART_ERR_NO_BOUNDARY,	/* no boundary parameter */
	MULTIPART_ERR_BAD_BOUNDARY,	/* not 1-70 chars of RFC 2046's set,
					 * or given twice */
	MULTIPART_ERR_NO_DELIMITER,	/* the body holds no delimiter */
	MULTIPART_ERR_DELIMITER_LINE,	/* a line starts with the delimiter
					 * but is not one */
	MULTIPART_ERR_HEAD_LONG,	/* a header block over HEAD_MAX */
	MULTIPART_ERR_HEAD_SYNTAX,	/* a header line that does not parse */
	MULTIPART_ERR_NO_DISPOSITION,	/* a part without Content-Disposition */
	MULTIPART_ERR_DISPOSITION_TWICE,
	MULTIPART_ERR_NOT_FORM_DATA,	/* a disposition other than form-data */
	MULTIPART_ERR_DISPOSITION,	/* its parameters do not parse */
	MULTIPART_ERR_PARAM_TWICE,	/* a parameter given twice */
	MULTIPART_ERR_CONTINUATION,	/* name*0= and the like (RFC 2231) */
	MULTIPART_ERR_CHARSET,		/* name*= in a charset not read */
	MULTIPART_ERR_NAME_MISMATCH,	/* name= and name*= differ */
	MULTIPART_ERR_NO_NAME,		/* a part without a name */
	MULTIPART_ERR_TRUNCATED,	/* the body ended before the closing
					 * delimiter */
	MULTIPART_ERR_AFTER_CLOSE,	/* a delimiter after the closing one */
	MULTIPART_ERR_MODEL_TWICE,	/* two parts named model */
	MULTIPART_ERR_MODEL_FILE,	/* the model part has a filename */
	MULTIPART_ERR_MODEL_ENCODED,	/* ... a Content-Transfer-Encoding */
	MULTIPART_ERR_MODEL_EMPTY,	/* ... an empty value */
	MULTIPART_ERR_MODEL_LONG,	/* ... over MODEL_MAX bytes */
	MULTIPART_ERR_MODEL_LATE	/* no whole model part within the
					 * first `within` bytes */
};

/* Event types. */
enum {
	MULTIPART_MORE,
	MULTIPART_PART,
	MULTIPART_DATA,
	MULTIPART_END,
	MULTIPART_DONE
};

struct multipart_ev {
	int type;
	uint64_t off;		/* PART: head_off; DATA: the first byte's
				 * offset; END: where the content ended (the
				 * delimiter's CR or LF); DONE: the offset
				 * after "--boundary--" */
	const char *data;	/* DATA: a view into the piece fed, or into
				 * m itself for bytes held back as a possible
				 * delimiter; valid until the next call */
	size_t len;		/* DATA: its length (> 0) */
	int model;		/* END: this was the model part */
};

/* Reader state: fields are read-only for callers; those marked private
 * are not to be read at all. */
struct multipart {
	/* the delimiter: "\r\n--" boundary (private) */
	char pat[4 + MULTIPART_BOUNDARY_MAX];
	uint8_t pat_len;
	uint8_t st, sub;		/* private: where in the body */
	uint8_t cr, virt, k;		/* private: a delimiter match held */
	uint64_t within;		/* 0: no bound */
	uint64_t off;			/* stream offset of the next byte */
	uint64_t hold_off;		/* private: where the held bytes start */
	enum multipart_err err;		/* sticky */
	uint32_t parts;			/* parts whose headers were read */
	/* the current part's header block (private) */
	uint16_t head_len;		/* bytes since the delimiter */
	uint8_t sub2;			/* where in Content-Disposition */
	uint8_t hname_len, seen, param, pname_len, pname_long, cs_len, pct;
	char hname[28], pname[12], cs[12];
	uint8_t cd_seen, cte_seen, latin1, name_x_cut;
	uint16_t name_x_len;
	char name_x[MULTIPART_NAME_MAX];	/* name*= decoded */
	/* the current part: from its PART event to the next delimiter */
	uint64_t head_off, body_off;
	uint16_t name_len;			/* full length */
	uint8_t name_cut;			/* longer than NAME_MAX: the
						 * first NAME_MAX bytes kept */
	char name[MULTIPART_NAME_MAX];		/* not NUL-terminated */
	uint8_t has_filename, filename_cut;
	uint16_t filename_len;			/* full length, as name_len */
	char filename[MULTIPART_FILENAME_MAX];	/* filename= or filename*=,
						 * the first given */
	uint8_t in_model;			/* the current part is model */
	/* the model part: value complete once model_done is set */
	uint8_t model_seen, model_done;
	uint16_t model_len;
	char model[MULTIPART_MODEL_MAX + 1];	/* NUL-terminated */
	uint64_t model_off, model_end;		/* the value's stream range */
};

/* The boundary of a Content-Type field value v[0..n): the media type
 * must be multipart/form-data (case-insensitive, other parameters
 * allowed) with exactly one boundary parameter, token or quoted-string,
 * of 1-70 characters of RFC 2046's bchars not ending in a space. On
 * success copies it, unescaped and NUL-terminated, into out (room for
 * MULTIPART_BOUNDARY_MAX + 1) with its length in *len and returns
 * MULTIPART_OK; else the reason (NOT_FORM: answer 415), with out "" and
 * *len 0. */
enum multipart_err multipart_boundary(const char *v, size_t n, char *out,
    size_t *len);

/* Start reading a body delimited by boundary[0..len) (checked again:
 * MULTIPART_ERR_BAD_BOUNDARY when it is not one). within: fail with
 * MULTIPART_ERR_MODEL_LATE rather than take a byte at offset `within`
 * or beyond before the model part has ended (0: no bound; the relay
 * uses MULTIPART_WITHIN). */
enum multipart_err multipart_init(struct multipart *m, const char *boundary,
    size_t len, uint64_t within);

/* Read from in[0..n) up to the next event. Returns the bytes taken and
 * the event in *ev (MULTIPART_MORE: none, every byte was taken), or
 * MULTIPART_BAD with m->err set (sticky: every later call is BAD).
 * Bytes held back as a possible delimiter are handed out later as DATA
 * with a view into m; a call may take 0 bytes when it hands them out.
 * Call again with the rest until it is taken. */
long multipart_feed(struct multipart *m, const char *in, size_t n,
    struct multipart_ev *ev);

/* The body ended after the bytes fed. Returns MULTIPART_OK when the
 * closing delimiter was read (the form is complete; whether it had a
 * model part is m->model_done), else the reason (NO_DELIMITER,
 * TRUNCATED, or the sticky error), which it also records. */
enum multipart_err multipart_finish(struct multipart *m);

/* A fixed English sentence for a reason (for the client's 400). */
const char *multipart_strerror(enum multipart_err e);

struct multipart_span {
	const char *p;
	size_t n;
};

/* Test hook: the relay edits its held bytes with rewrite.c; the unit
 * tests and the fuzz target check with this that a form whose model value
 * is replaced reads back with the new value and every other part intact.
 * What to forward of the piece p[0..n), which starts at stream offset
 * off, so that the model value becomes v[0..vlen) and every other byte
 * passes as it came: up to three spans into out[] in order (bytes
 * before the value, v, bytes after it); returns their count. v is given
 * out once over the whole body, with the piece that holds the byte at
 * m->model_end (the delimiter after the value: there always is one).
 * Needs m->model_done; v must hold no CR or LF (it could end the part
 * early). */
size_t multipart_splice(const struct multipart *m, uint64_t off,
    const char *p, size_t n, const char *v, size_t vlen,
    struct multipart_span out[3]);

#endif
