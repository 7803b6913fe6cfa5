/* libFuzzer harness: the multipart/form-data reader (src/multipart.c).
 *
 * Byte 0 picks the boundary (low 3 bits) and a piece size (the rest);
 * the other bytes are the body. Invariants besides memory safety (each
 * piece is an exact-size heap copy, so a read past it is caught):
 *  - read whole, one byte at a time and in pieces of the picked size,
 *    the body gives the same summary: the result, each part's name,
 *    filename, header range, content range, length and checksum, the
 *    model value and range;
 *  - DATA events are contiguous and equal the input at their offsets,
 *    END is where the content ended, DONE follows "--"; a call that
 *    takes no byte hands out an event;
 *  - a bound on the bytes before the model changes nothing but for
 *    MODEL_LATE, given exactly at the bound and only when the model
 *    part had not ended by then;
 *  - a body read with a model, its value replaced through
 *    multipart_splice() by a shorter and a longer one, reads again with
 *    the same parts, every other content as it came;
 *  - read as a Content-Type value, the input's boundary, when there is
 *    one, is 1-70 bchars that multipart_init() takes, and written back
 *    quoted it reads the same. */
#include "fuzz.h"
#include "multipart.h"

#define PMAX 32

static const char *const boundaries[8] = {
	"b", "-", "a b", "boundary", "----formdata-undici-037120154681",
	"------------------------5440e4047f8b2eae",
	"0ed6328cee09679c484978d35e02110e",
	("0123456789012345678901234567890123456789012345678901234567890123"
	"456789")
};

struct part {
	char name[MULTIPART_NAME_MAX], filename[MULTIPART_FILENAME_MAX];
	uint16_t name_len, filename_len;
	int has_filename, model, ended;
	uint64_t head_off, body_off, end_off, dlen, dsum;
};

struct sum {
	int err, done;
	size_t nparts;
	struct part p[PMAX];
	uint64_t done_off, stop_off, model_ready;
	int model_done;
	char model[MULTIPART_MODEL_MAX + 1];
	uint64_t model_off, model_end;
};

static uint64_t
mix(uint64_t h, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h = (h ^ (unsigned char)p[i]) * 1099511628211u;
	}
	return h;
}

static void
record(struct sum *s, const struct multipart *m,
    const struct multipart_ev *ev, const char *body, size_t n)
{
	struct part *p = s->nparts > 0 && s->nparts <= PMAX ?
	    &s->p[s->nparts - 1] : NULL;

	switch (ev->type) {
	case MULTIPART_PART:
		CHECK(ev->off == m->head_off && m->body_off > ev->off &&
		    m->body_off <= n);
		if (s->nparts++ >= PMAX) {
			return;
		}
		p = &s->p[s->nparts - 1];
		p->name_len = m->name_len;
		memcpy(p->name, m->name, m->name_len < MULTIPART_NAME_MAX ?
		    m->name_len : MULTIPART_NAME_MAX);
		p->filename_len = m->filename_len;
		memcpy(p->filename, m->filename,
		    m->filename_len < MULTIPART_FILENAME_MAX ?
		    m->filename_len : MULTIPART_FILENAME_MAX);
		p->has_filename = m->has_filename;
		p->head_off = ev->off;
		p->body_off = m->body_off;
		p->dsum = 14695981039346656037u;
		break;
	case MULTIPART_DATA:
		CHECK(ev->len > 0 && ev->off + ev->len <= n);
		CHECK(memcmp(ev->data, body + ev->off, ev->len) == 0);
		if (p != NULL) {
			CHECK(!p->ended && ev->off == p->body_off + p->dlen);
			p->dlen += ev->len;
			p->dsum = mix(p->dsum, ev->data, ev->len);
		}
		break;
	case MULTIPART_END:
		if (p != NULL) {
			CHECK(!p->ended && ev->off == p->body_off + p->dlen);
			p->ended = 1;
			p->end_off = ev->off;
			p->model = ev->model;
		}
		if (ev->model) {
			CHECK(m->model_done && m->model_end == ev->off &&
			    m->model_end - m->model_off == m->model_len &&
			    m->model_len > 0 &&
			    memcmp(m->model, body + m->model_off,
			    m->model_len) == 0);
			s->model_ready = m->off;
		}
		break;
	case MULTIPART_DONE:
		CHECK(ev->off >= 2 && ev->off <= n &&
		    memcmp(body + ev->off - 2, "--", 2) == 0);
		s->done = 1;
		s->done_off = ev->off;
		break;
	default:
		CHECK(0);
	}
}

/* The body was refused. The events before are the same in every
 * split but for how much of the last part's content was handed out:
 * only what is sure is kept. */
static void
refused(struct sum *s, const struct multipart *m)
{
	s->err = m->err;
	if (s->nparts > 0 && s->nparts <= PMAX &&
	    !s->p[s->nparts - 1].ended) {
		s->p[s->nparts - 1].dlen = 0;
		s->p[s->nparts - 1].dsum = 0;
	}
	if (m->err == MULTIPART_ERR_MODEL_LATE) {
		s->stop_off = m->off;	/* exactly the bound */
	}
}

/* Read body[0..n) in pieces of step bytes (0: whole). */
static void
read_body(const char *body, size_t n, const char *b, uint64_t within,
    size_t step, struct sum *s)
{
	struct multipart m;
	size_t off = 0, have = 0;
	char *piece = NULL;

	memset(s, 0, sizeof(*s));
	CHECK(multipart_init(&m, b, strlen(b), within) == MULTIPART_OK);
	while (off < n) {
		size_t len = step == 0 || n - off < step ? n - off : step;
		size_t at = 0;

		/* an exact-size block per piece size, reused */
		if (len != have) {
			free(piece);
			piece = fuzz_dup(body + off, len);
			have = len;
		} else {
			memcpy(piece, body + off, len);
		}
		while (at < len) {
			struct multipart_ev ev;
			long r = multipart_feed(&m, piece + at, len - at, &ev);

			if (r < 0) {
				CHECK(m.err != MULTIPART_OK);
				refused(s, &m);
				free(piece);
				return;
			}
			CHECK((size_t)r <= len - at);
			CHECK(r > 0 || ev.type != MULTIPART_MORE);
			CHECK(within == 0 || m.model_done || m.off <= within);
			at += (size_t)r;
			if (ev.type != MULTIPART_MORE) {
				record(s, &m, &ev, body, n);
			}
		}
		off += len;
	}
	free(piece);
	if (multipart_finish(&m) != MULTIPART_OK) {
		refused(s, &m);
		return;
	}
	CHECK(s->done);
	s->model_done = m.model_done;
	if (m.model_done) {
		memcpy(s->model, m.model, sizeof(s->model));
		s->model_off = m.model_off;
		s->model_end = m.model_end;
	}
}

/* The model value of body replaced by v, through multipart_splice() in
 * pieces of step bytes: read again, the same parts. */
static void
replace(const char *body, size_t n, const char *b, const struct sum *s0,
    const char *v, size_t step)
{
	struct multipart m;
	struct multipart_span sp[3];
	size_t vlen = strlen(v), o = 0, off = 0, k, i;
	size_t out_n = n - (size_t)(s0->model_end - s0->model_off) + vlen;
	char *out = malloc(out_n ? out_n : 1);
	struct sum s1;

	CHECK(out != NULL);
	memset(&m, 0, sizeof(m));
	m.model_off = s0->model_off;
	m.model_end = s0->model_end;
	m.model_done = 1;
	while (off < n) {
		size_t len = step == 0 || n - off < step ? n - off : step;

		k = multipart_splice(&m, off, body + off, len, v, vlen, sp);
		for (i = 0; i < k; i++) {
			CHECK(o + sp[i].n <= out_n);
			memcpy(out + o, sp[i].p, sp[i].n);
			o += sp[i].n;
		}
		off += len;
	}
	CHECK(o == out_n);
	CHECK(memcmp(out, body, (size_t)s0->model_off) == 0);
	CHECK(memcmp(out + s0->model_off, v, vlen) == 0);
	CHECK(memcmp(out + s0->model_off + vlen, body + s0->model_end,
	    n - (size_t)s0->model_end) == 0);
	read_body(out, out_n, b, 0, 0, &s1);
	CHECK(s1.err == MULTIPART_OK && s1.model_done);
	CHECK(strcmp(s1.model, v) == 0);
	CHECK(s1.nparts == s0->nparts);
	for (i = 0; i < s0->nparts && i < PMAX; i++) {
		const struct part *a = &s0->p[i], *c = &s1.p[i];

		CHECK(a->name_len == c->name_len &&
		    memcmp(a->name, c->name, sizeof(a->name)) == 0);
		CHECK(a->has_filename == c->has_filename &&
		    a->filename_len == c->filename_len &&
		    memcmp(a->filename, c->filename, sizeof(a->filename)) == 0);
		CHECK(a->model == c->model);
		if (!a->model) {
			CHECK(a->dlen == c->dlen && a->dsum == c->dsum);
		}
	}
	free(out);
}

/* body[0..n) as a Content-Type value. */
static void
content_type(const char *v, size_t n)
{
	char out[MULTIPART_BOUNDARY_MAX + 1], again[MULTIPART_BOUNDARY_MAX + 1];
	char ct[128];
	size_t len, len2;
	struct multipart m;
	int k;

	if (multipart_boundary(v, n, out, &len) != MULTIPART_OK) {
		CHECK(len == 0 && out[0] == '\0');
		return;
	}
	CHECK(len >= 1 && len <= MULTIPART_BOUNDARY_MAX && strlen(out) == len);
	CHECK(multipart_init(&m, out, len, 0) == MULTIPART_OK);
	k = snprintf(ct, sizeof(ct), "multipart/form-data; boundary=\"%s\"",
	    out);
	CHECK(k > 0 && (size_t)k < sizeof(ct));
	CHECK(multipart_boundary(ct, (size_t)k, again, &len2) ==
	    MULTIPART_OK && len2 == len && memcmp(again, out, len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sum whole, s;
	const char *b, *body;
	size_t n, step;
	uint64_t within;
	char *copy;

	if (size < 1) {
		return 0;
	}
	b = boundaries[data[0] & 7];
	step = 2 + (data[0] >> 3);
	copy = fuzz_dup(data + 1, size - 1);
	body = copy;
	n = size - 1;

	content_type(body, n);
	read_body(body, n, b, 0, 0, &whole);
	read_body(body, n, b, 0, 1, &s);
	CHECK(memcmp(&s, &whole, sizeof(s)) == 0);
	read_body(body, n, b, 0, step, &s);
	CHECK(memcmp(&s, &whole, sizeof(s)) == 0);

	/* a bound somewhere in the body */
	within = 1 + (n > 0 ? (uint64_t)data[size - 1] * n / 256 : 0);
	read_body(body, n, b, within, step, &s);
	if (s.err == MULTIPART_ERR_MODEL_LATE) {
		CHECK(s.stop_off == within && n > within);
		CHECK(!whole.model_done || whole.model_ready > within);
	} else {
		CHECK(memcmp(&s, &whole, sizeof(s)) == 0);
	}

	if (whole.err == MULTIPART_OK && whole.model_done) {
		replace(body, n, b, &whole, "m", 0);
		replace(body, n, b, &whole,
		    "a-longer-replacement-model-id-0123456789", step);
	}
	free(copy);
	return 0;
}
