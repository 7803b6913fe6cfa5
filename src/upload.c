/* upload: a multipart/form-data body relayed as it arrives (see
 * upload.h). */
#include <stdio.h>
#include <string.h>

#include "http.h"
#include "rewrite.h"
#include "server.h"
#include "upload.h"
#include "util.h"

/* Where the data of a piece starts in u->piece: room for a chunk size
 * line ("<16 hex>\r\n") before it. */
#define DATA_AT 18

static enum upload_status
refuse(struct upload *u, int status, const char *why)
{
	u->status = status;
	snprintf(u->why, sizeof(u->why), "%s", why);
	return UPLOAD_BAD;
}

static enum upload_status
refuse_form(struct upload *u, enum multipart_err e)
{
	u->status = 400;
	snprintf(u->why, sizeof(u->why), "multipart/form-data body refused: "
	    "%s", multipart_strerror(e));
	return UPLOAD_BAD;
}

const char *
upload_code(const struct upload *u)
{
	return u->status == 413 ? "request_too_large" : u->status == 503 ?
	    "server_busy" : "bad_request";
}

enum multipart_err
upload_begin(struct upload *u, const struct http_request *h, int by_model)
{
	struct view ct = rewrite_find_header(h->headers, h->nheaders,
	    "content-type");
	char b[MULTIPART_BOUNDARY_MAX + 1];
	size_t blen;
	enum multipart_err e;

	memset(u, 0, offsetof(struct upload, piece));
	e = multipart_boundary(ct.p, ct.n, b, &blen);
	if (e != MULTIPART_OK) {
		return e;
	}
	/* Only a call routed by its model holds bytes to find it. */
	e = multipart_init(&u->mp, b, blen, by_model ? MULTIPART_WITHIN : 0);
	if (e != MULTIPART_OK) {
		return e;
	}
	u->on = 1;
	u->by_model = by_model;
	return MULTIPART_OK;
}

/* Read p[0..n) with the form reader: every byte is taken (events carry
 * nothing to act on here; the model is read from u->mp once it ended).
 * Returns 0, or -1 when the form was refused (u->mp.err). */
static int
feed(struct upload *u, const char *p, size_t n)
{
	struct multipart_ev ev;
	long r;

	do {
		r = multipart_feed(&u->mp, p, n, &ev);
		if (r == MULTIPART_BAD) {
			return -1;
		}
		p += r;
		n -= (size_t)r;
	} while (n > 0 || ev.type != MULTIPART_MORE);
	return 0;
}

/* The body ended: the form must have ended with it. */
static int
check_end(struct upload *u)
{
	return multipart_finish(&u->mp) == MULTIPART_OK ? 0 : -1;
}

enum upload_status
upload_hold(struct upload *u, struct server_conn *sc)
{
	struct server_request *rq = &sc->req;
	long n;
	int end = 0;

	if (!u->by_model) {
		u->chunked = rq->head.chunked;
		return UPLOAD_READY;
	}
	for (;;) {
		if (server_body_room(sc, UPLOAD_PIECE) < 0) {
			return refuse(u, 503, "out of memory");
		}
		n = server_body_take(sc, rq->mem + rq->head_len + rq->body_len,
		    UPLOAD_PIECE, &end);
		if (n < 0) {
			return refuse(u, sc->body_error_status,
			    sc->body_error);
		}
		rq->body_len += (size_t)n;
		if (feed(u, rq->mem + rq->head_len + rq->body_len - n,
		    (size_t)n) < 0) {
			return refuse_form(u, u->mp.err);
		}
		if (end) {
			if (check_end(u) < 0) {
				return refuse_form(u, u->mp.err);
			}
			u->whole = 1;
			u->ended = 1;
			return UPLOAD_READY;
		}
		if (u->mp.model_done) {
			u->chunked = rq->head.chunked;
			return UPLOAD_READY;
		}
		if (n == 0) {
			return UPLOAD_WAIT;
		}
	}
}

enum upload_status
upload_next(struct upload *u, struct server_conn *sc, const char **p,
    size_t *n)
{
	char *data = u->piece + DATA_AT, *at = data;
	long got;
	int end = 0;
	size_t len;

	*p = data;
	*n = 0;
	if (u->ended) {
		return UPLOAD_LAST;
	}
	got = server_body_take(sc, data, UPLOAD_PIECE, &end);
	if (got < 0) {
		return refuse(u, sc->body_error_status, sc->body_error);
	}
	if (got == 0 && !end) {
		return UPLOAD_WAIT;
	}
	len = (size_t)got;
	if (feed(u, data, len) < 0 || (end && check_end(u) < 0)) {
		return refuse_form(u, u->mp.err);
	}
	if (u->chunked) {
		if (len > 0) {
			char size[16];
			size_t k = util_u64_hex(len, size);

			at = data - k - 2;
			memcpy(at, size, k);
			memcpy(data - 2, "\r\n", 2);
			memcpy(data + len, "\r\n", 2);
			len += 2;
		}
		if (end) {
			memcpy(data + len, "0\r\n\r\n", 5);
			len += 5;
		}
		len += (size_t)(data - at);
	}
	*p = at;
	*n = len;
	u->ended = end;
	return end ? UPLOAD_LAST : UPLOAD_PIECE_OUT;
}
