/* rewrite: the request and response heads the relay writes, and the
 * edits to a client's body (see rewrite.h). Every piece is sized before
 * it is written, then copied field by field with memcpy: this runs for
 * every request. */
#include <stdint.h>
#include <string.h>

#include "buf.h"
#include "conf.h"
#include "json.h"
#include "rewrite.h"

int
rewrite_provider_lines(const struct conf_provider *p, const char *secret,
    char *out, size_t cap)
{
	const char *name = NULL;
	size_t pos = 0, i, need = strlen(secret) + 32;

	for (i = 0; i < p->nheaders; i++) {
		need += strlen(p->headers[i].name) +
		    strlen(p->headers[i].value) + 4;
	}
	if (need >= cap) {
		return -1;
	}
	switch (p->auth) {
	case CONF_AUTH_BEARER:
		name = "Authorization: Bearer ";
		break;
	case CONF_AUTH_X_API_KEY:
		name = "x-api-key: ";
		break;
	case CONF_AUTH_API_KEY:
		name = "api-key: ";
		break;
	case CONF_AUTH_NONE:
		break;
	}
#define ADD(s) do { size_t l_ = strlen(s); memcpy(out + pos, (s), l_); \
	pos += l_; } while (0)
	if (name != NULL) {
		ADD(name);
		ADD(secret);
		ADD("\r\n");
	}
	for (i = 0; i < p->nheaders; i++) {
		ADD(p->headers[i].name);
		ADD(": ");
		ADD(p->headers[i].value);
		ADD("\r\n");
	}
#undef ADD
	out[pos] = '\0';
	return (int)pos;
}

struct view
rewrite_find_header(const struct http_header *h, size_t n, const char *name)
{
	struct view none = { "", 0 };
	size_t i, len = strlen(name);

	for (i = 0; i < n; i++) {
		if (h[i].name.n == len && util_view_ieq(h[i].name, name)) {
			return h[i].value;
		}
	}
	return none;
}

/* Client request fields the relay does not forward: hop-by-hop ones, the
 * client's credentials and framing (replaced), Accept-Encoding (usage must
 * be readable), and names the provider sets itself. Dispatch on the first
 * letter: this runs for every field of every request. */
static int
header_dropped(const struct view name, const struct conf_provider *p,
    const struct view connection)
{
	size_t i;
	int hit = 0;

	if (name.n == 0) {
		return 1;
	}
	switch (name.p[0] | 0x20) {
	case 'a':
		hit = VIEW_IEQ(name, "authorization") ||
		    VIEW_IEQ(name, "api-key") ||
		    VIEW_IEQ(name, "accept-encoding");
		break;
	case 'c':
		hit = VIEW_IEQ(name, "connection") ||
		    VIEW_IEQ(name, "content-length");
		break;
	case 'e':
		hit = VIEW_IEQ(name, "expect");
		break;
	case 'h':
		hit = VIEW_IEQ(name, "host");
		break;
	case 'k':
	case 'p':
	case 't':
	case 'u':
		hit = http_is_hop_by_hop(name);
		break;
	case 'o':
		/* They choose the provider account the relay's credential
		 * bills (SPEC §10); a provider may set them with header=. */
		hit = VIEW_IEQ(name, "openai-organization") ||
		    VIEW_IEQ(name, "openai-project");
		break;
	case 'x':
		hit = VIEW_IEQ(name, "x-api-key");
		break;
	default:
		break;
	}
	if (hit || (connection.n > 0 &&
	    http_connection_lists(connection, name))) {
		return 1;
	}
	for (i = 0; i < p->nheaders; i++) {
		if (util_view_ieq(name, p->headers[i].name)) {
			return 1;
		}
	}
	return 0;
}

static int
path_ends(const struct view p, const char *s)
{
	size_t n = strlen(s);

	return p.n >= n && memcmp(p.p + p.n - n, s, n) == 0;
}

int
rewrite_usage_edit(const struct json_request *jr, const char *body,
    struct view path, struct rewrite_edit *e)
{
	if (!jr->stream || jr->include_usage ||
	    !path_ends(path, "/chat/completions")) {
		return 0;
	}
	if (jr->has_stream_options && jr->stream_options_len >= 2 &&
	    body[jr->stream_options_off] == '{') {
		size_t close = jr->stream_options_off + jr->stream_options_len - 1;
		size_t k = jr->stream_options_off + 1;

		while (k < close && (body[k] == ' ' || body[k] == '\t' ||
		    body[k] == '\n' || body[k] == '\r')) {
			k++;
		}
		/* A later duplicate key wins in every common parser. */
		e->off = close;
		e->del = 0;
		e->ins = k == close ? "\"include_usage\":true" :
		    ",\"include_usage\":true";
	} else if (jr->has_stream_options) {
		e->off = jr->stream_options_off;
		e->del = jr->stream_options_len;
		e->ins = "{\"include_usage\":true}";
	} else {
		e->off = jr->object_end;
		e->del = 0;
		e->ins = ",\"stream_options\":{\"include_usage\":true}";
	}
	e->ins_len = strlen(e->ins);
	return 1;
}

size_t
rewrite_request_need(const struct rewrite_request *r)
{
	size_t need = 96 + r->method.n + r->base_path.n + r->path.n +
	    r->query.n + r->fixed.n, i;

	for (i = 0; i < r->nheaders; i++) {
		need += r->headers[i].name.n + r->headers[i].value.n + 4;
	}
	return need;
}

int
rewrite_request(const struct rewrite_request *r, char *o, struct iovec *iov)
{
	size_t new_body_len = r->body_len, pos = 0, at = 0, i;
	int niov = 1;

	for (i = 0; i < (size_t)r->nedits; i++) {
		new_body_len = new_body_len - r->edits[i].del +
		    r->edits[i].ins_len;
	}
	/* Field by field with memcpy: rewrite_request_need() covers every
	 * piece. */
#define PUTV(ptr, len) do { memcpy(o + pos, (ptr), (len)); \
	pos += (len); } while (0)
#define PUTS(lit) PUTV((lit), sizeof(lit) - 1)
	PUTV(r->method.p, r->method.n);
	PUTS(" ");
	/* The client's path starts with "/v1"; the base path replaces it. */
	PUTV(r->base_path.p, r->base_path.n);
	PUTV(r->path.p + 3, r->path.n - 3);
	PUTV(r->query.p, r->query.n);
	PUTS(" HTTP/1.1\r\n");
	PUTV(r->fixed.p, r->fixed.n);
	for (i = 0; i < r->nheaders; i++) {
		const struct http_header *f = &r->headers[i];

		if (header_dropped(f->name, r->provider, r->connection)) {
			continue;
		}
		memcpy(o + pos, f->name.p, f->name.n);
		pos += f->name.n;
		o[pos++] = ':';
		o[pos++] = ' ';
		memcpy(o + pos, f->value.p, f->value.n);
		pos += f->value.n;
		o[pos++] = '\r';
		o[pos++] = '\n';
	}
	if (r->chunked) {
		PUTS("Transfer-Encoding: chunked\r\n\r\n");
		if (new_body_len > 0) {
			pos += util_u64_hex(new_body_len, o + pos);
			PUTS("\r\n");
		}
	} else {
		PUTS("Content-Length: ");
		pos += util_u64_dec(new_body_len + r->body_more, o + pos);
		PUTS("\r\n\r\n");
	}
#undef PUTS
#undef PUTV
	iov[0].iov_base = o;
	iov[0].iov_len = pos;
	for (i = 0; i < (size_t)r->nedits; i++) {
		const struct rewrite_edit *e = &r->edits[i];

		iov[niov].iov_base = (void *)(uintptr_t)(r->body + at);
		iov[niov++].iov_len = e->off - at;
		iov[niov].iov_base = (void *)(uintptr_t)e->ins;
		iov[niov++].iov_len = e->ins_len;
		at = e->off + e->del;
	}
	iov[niov].iov_base = (void *)(uintptr_t)(r->body + at);
	iov[niov++].iov_len = r->body_len - at;
	if (r->chunked && new_body_len > 0) {
		iov[niov].iov_base = (void *)(uintptr_t)"\r\n";
		iov[niov++].iov_len = 2;
	}
	return niov;
}

/* The upstream's fields the client does not get: framing and hop-by-hop
 * ones (and those its Connection names), and our own x-relay-*. */
static int
response_field_dropped(const struct http_header *f, struct view connection)
{
	return http_is_hop_by_hop(f->name) ||
	    (connection.n && http_connection_lists(connection, f->name)) ||
	    VIEW_IEQ(f->name, "content-length") ||
	    VIEW_IEQ(f->name, "x-relay-route") ||
	    VIEW_IEQ(f->name, "x-relay-attempts");
}

int
rewrite_response_head(const struct rewrite_response *r, struct buf *o,
    struct rewrite_framing *f)
{
	const struct http_response *h = r->resp;
	struct view connection = h->connection;
	struct view ctype = rewrite_find_header(h->headers, h->nheaders,
	    "content-type");
	size_t i, need, route_len = strlen(r->route);
	size_t id_len = strlen(r->request_id);
	char *d, *start;
	int has_body;

	f->sse = ctype.n >= 17 && util_view_ieq((struct view){ ctype.p, 17 },
	    "text/event-stream");
	f->client_chunked = 0;
	has_body = !http_response_has_no_body(h->status, r->method);
	/* "Connection: keep-alive" names a field that is hop-by-hop anyway:
	 * no need to look up every field in it. */
	if (VIEW_IEQ(connection, "keep-alive")) {
		connection.n = 0;
	}
	/* Bound the head, make room once, then copy field by field. */
	need = 400 + route_len + id_len;
	for (i = 0; i < h->nheaders; i++) {
		need += h->headers[i].name.n + h->headers[i].value.n + 28;
	}
	if (buf_reserve(o, need) < need) {
		return -1;
	}
	d = (char *)buf_tail(o);
	start = d;
#define OUT(p, len) do { memcpy(d, (p), (len)); d += (len); } while (0)
#define OUTL(lit) OUT((lit), sizeof(lit) - 1)
	OUTL("HTTP/1.1 ");
	d += util_u64_dec((uint64_t)h->status, d);
	OUTL(" ");
	OUT(h->reason.p, h->reason.n > 100 ? 100 : h->reason.n);
	OUTL("\r\n");
	for (i = 0; i < h->nheaders; i++) {
		const struct http_header *fl = &h->headers[i];

		if (response_field_dropped(fl, connection)) {
			continue;
		}
		if (VIEW_IEQ(fl->name, "x-request-id")) {
			/* Ours names the request; keep theirs beside it. */
			OUTL("x-upstream-request-id");
		} else {
			OUT(fl->name.p, fl->name.n);
		}
		OUTL(": ");
		OUT(fl->value.p, fl->value.n);
		OUTL("\r\n");
	}
	if (!has_body) {
		if (h->status != 204 && h->status != 304) {
			OUTL("Content-Length: 0\r\n");
		}
	} else if (h->has_content_length && !h->chunked &&
	    !(f->sse && r->may_shrink)) {
		OUTL("Content-Length: ");
		d += util_u64_dec(h->content_length, d);
		OUTL("\r\n");
	} else if (r->minor_version >= 1) {
		f->client_chunked = 1;
		OUTL("Transfer-Encoding: chunked\r\n");
	} else {
		/* HTTP/1.0 has no chunked coding: the close ends the body. */
		f->close_after = 1;
	}
	OUTL("x-request-id: ");
	OUT(r->request_id, id_len);
	OUTL("\r\nx-relay-route: ");
	OUT(r->route, route_len);
	OUTL("\r\nx-relay-attempts: ");
	d += util_u64_dec(r->attempts, d);
	if (f->close_after) {
		OUTL("\r\nConnection: close\r\n\r\n");
	} else if (r->minor_version == 0) {
		OUTL("\r\nConnection: keep-alive\r\n\r\n");
	} else {
		OUTL("\r\n\r\n");
	}
#undef OUTL
#undef OUT
	buf_produced(o, (size_t)(d - start));
	return 0;
}
