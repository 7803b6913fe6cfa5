#ifndef RELAY_UPLOAD_H
#define RELAY_UPLOAD_H
/* upload: a multipart/form-data request body relayed as it arrives
 * (SPEC §9), in bounded memory. It drives multipart.c as multipart.h
 * says: the front holds the body's first bytes in the request block
 * until the model part has ended (upload_hold()), the route is picked
 * from it, and the exchange sends those held bytes with the model value
 * rewritten (rewrite.c's edit), then every later piece as it comes
 * (upload_next()): copied out of the connection's fixed input buffer
 * into one piece buffer here, read by the form reader, framed as a
 * chunk when the upstream body is chunked. The last piece goes out only
 * once the form is known complete, so an upstream never acts on a body
 * the relay refused.
 *
 * Calls without a model on their path (file uploads, a recorded
 * object's parts) are routed on the head alone: nothing is held, the
 * form is only checked as it passes. */
#include <stddef.h>
#include <stdint.h>

#include "multipart.h"

struct http_request;
struct server_conn;

#define UPLOAD_PIECE 16384

enum upload_status {
	UPLOAD_WAIT,	/* no body bytes now: call again when some came */
	UPLOAD_READY,	/* upload_hold(): route it now */
	UPLOAD_PIECE_OUT,	/* upload_next(): a piece to send */
	UPLOAD_LAST,	/* upload_next(): the piece that ends the body */
	UPLOAD_BAD	/* refused: status and why say how to answer */
};

struct upload {
	struct multipart mp;
	int on;			/* this request's body is a streamed form */
	int by_model;		/* its model field routes it */
	int whole;		/* the body was all held (and checked) before
				 * it was routed */
	int chunked;		/* the upstream body is chunked: the client
				 * sent it so and it was not held whole */
	int ended;		/* the last piece was handed out */
	int status;		/* UPLOAD_BAD: 400, 413 or 503 */
	char why[200];		/* ... and the message */
	size_t piece_len;
	char piece[18 + UPLOAD_PIECE + 2 + 5];	/* size line, data, CRLF,
						 * the last chunk */
};

/* Start on the request head h. by_model: the model field routes the
 * call. Returns MULTIPART_OK, or why the Content-Type was refused. */
enum multipart_err upload_begin(struct upload *u, const struct http_request *h,
    int by_model);

/* The error code of an UPLOAD_BAD status ("bad_request", ...). */
const char *upload_code(const struct upload *u);

/* Before routing: take the body's bytes into the request block
 * (sc->req.body_len of them) and read them, until the model part has
 * ended or the body has (by_model), or at once (else). */
enum upload_status upload_hold(struct upload *u, struct server_conn *sc);

/* After routing: the next piece to send, framed, in *p, *n (a view into
 * u, valid until the next call), UPLOAD_LAST for the one that ends the
 * body (it may be empty); UPLOAD_WAIT when the client has sent nothing
 * more yet. *p and *n are set on every return (empty but for a piece). */
enum upload_status upload_next(struct upload *u, struct server_conn *sc,
    const char **p, size_t *n);

#endif
