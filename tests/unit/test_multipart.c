/* Unit tests for multipart: bodies as the official SDKs and curl write
 * them (captured on a loopback listener, see below), fed whole, one byte
 * at a time and split at every byte; the model value read and replaced
 * by a longer and a shorter one, the output read again; every refusal
 * with its reason; Content-Disposition read by meaning; the boundary of
 * a Content-Type; a 50 MiB upload through a 16 KiB buffer in constant
 * memory. Each piece is fed from right before a PROT_NONE page, or right
 * after one, so a read outside it crashes.
 *
 * The captured bodies: a Python listener on 127.0.0.1 saved the raw
 * request bodies (chunked ones decoded) sent by
 *   - Node 20.20's own FormData + fetch (undici),
 *   - the openai Node SDK 6.49.0 of tests/clients: toFile() (a FormData,
 *     keys in the order the caller wrote them), fs.createReadStream()
 *     (the SDK's own streaming encoder, chunked, file first as in its
 *     README) and images.edit with two images (image[]),
 *   - httpx 0.23.3 (Debian's python3-httpx) called as the Python openai
 *     SDK calls it: data= the non-file fields, files= the files (it
 *     writes the data fields first),
 *   - curl 7.88.1 -F.
 * The file bytes hold CR, LF, "--" and NUL on purpose. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "multipart.h"
#include "t.h"

/* node_fd_model_first: 394 bytes */
static const char node_fd_model_first_ct[] =
    "multipart/form-data; boundary=----formdata-undici-037120154681";
static const char node_fd_model_first[] =
	    "------formdata-undici-037120154681\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "whisper-1\r\n"
	    "------formdata-undici-037120154681\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename="
	    "\"speech %221%22.mp3\"\r\n"
	    "Content-Type: audio/mpeg\r\n"
	    "\r\n"
	    "ID3\x03\x00\r\n"
	    "--\r\n"
	    "\x00\xff\xfe-- \n"
	    "--x\r\n"
	    "\r\n"
	    "END\r\n"
	    "------formdata-undici-037120154681\r\n"
	    "Content-Disposition: form-data; name=\"language\"\r\n"
	    "\r\n"
	    "en\r\n"
	    "------formdata-undici-037120154681--\r\n";

/* node_fd_file_first: 289 bytes */
static const char node_fd_file_first_ct[] =
    "multipart/form-data; boundary=----formdata-undici-080288099755";
static const char node_fd_file_first[] =
	    "------formdata-undici-080288099755\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename="
	    "\"otter\xc3\xa9.png\"\r\n"
	    "Content-Type: image/png\r\n"
	    "\r\n"
	    "\x89PNG\r\n"
	    "\x1a\n"
	    "\x00\x00\x00\rIHDR--\r\n"
	    "\r\n"
	    "------formdata-undici-080288099755\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "gpt-image-1\r\n"
	    "------formdata-undici-080288099755--\r\n";

/* node_sdk_tofile: 309 bytes */
static const char node_sdk_tofile_ct[] =
    "multipart/form-data; boundary=----formdata-undici-077996100897";
static const char node_sdk_tofile[] =
	    "------formdata-undici-077996100897\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "whisper-1\r\n"
	    "------formdata-undici-077996100897\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename="
	    "\"speech.mp3\"\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "\r\n"
	    "ID3\x03\x00\r\n"
	    "--\r\n"
	    "\x00\xff\xfe-- \n"
	    "--x\r\n"
	    "\r\n"
	    "END\r\n"
	    "------formdata-undici-077996100897--\r\n";

/* node_sdk_stream: 267 bytes */
static const char node_sdk_stream_ct[] =
    "multipart/form-data; boundary=openai-bvku76q0ldd";
static const char node_sdk_stream[] =
	    "--openai-bvku76q0ldd\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename="
	    "\"speech.mp3\"\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "\r\n"
	    "ID3\x03\x00\r\n"
	    "--\r\n"
	    "\x00\xff\xfe-- \n"
	    "--x\r\n"
	    "\r\n"
	    "END\r\n"
	    "--openai-bvku76q0ldd\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "whisper-1\r\n"
	    "--openai-bvku76q0ldd--\r\n";

/* node_sdk_edit: 538 bytes */
static const char node_sdk_edit_ct[] =
    "multipart/form-data; boundary=----formdata-undici-088198729935";
static const char node_sdk_edit[] =
	    "------formdata-undici-088198729935\r\n"
	    "Content-Disposition: form-data; name=\"image[]\"; filena"
	    "me=\"a.png\"\r\n"
	    "Content-Type: image/png\r\n"
	    "\r\n"
	    "\x89PNG\r\n"
	    "\x1a\n"
	    "\x00\x00\x00\rIHDR--\r\n"
	    "\r\n"
	    "------formdata-undici-088198729935\r\n"
	    "Content-Disposition: form-data; name=\"image[]\"; filena"
	    "me=\"b.png\"\r\n"
	    "Content-Type: image/png\r\n"
	    "\r\n"
	    "\x89PNG\r\n"
	    "\x1a\n"
	    "\x00\x00\x00\rIHDR--\r\n"
	    "\r\n"
	    "------formdata-undici-088198729935\r\n"
	    "Content-Disposition: form-data; name=\"prompt\"\r\n"
	    "\r\n"
	    "A \"cute\" otter\r\n"
	    "------formdata-undici-088198729935\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "gpt-image-1\r\n"
	    "------formdata-undici-088198729935--\r\n";

/* httpx_transcribe: 395 bytes */
static const char httpx_transcribe_ct[] =
    "multipart/form-data; boundary=0ed6328cee09679c484978d35e02110e";
static const char httpx_transcribe[] =
	    "--0ed6328cee09679c484978d35e02110e\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "whisper-1\r\n"
	    "--0ed6328cee09679c484978d35e02110e\r\n"
	    "Content-Disposition: form-data; name=\"response_format\""
	    "\r\n"
	    "\r\n"
	    "json\r\n"
	    "--0ed6328cee09679c484978d35e02110e\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename="
	    "\"speech.mp3\"\r\n"
	    "Content-Type: audio/mpeg\r\n"
	    "\r\n"
	    "ID3\x03\x00\r\n"
	    "--\r\n"
	    "\x00\xff\xfe-- \n"
	    "--x\r\n"
	    "\r\n"
	    "END\r\n"
	    "--0ed6328cee09679c484978d35e02110e--\r\n";

/* httpx_edit: 621 bytes */
static const char httpx_edit_ct[] =
    "multipart/form-data; boundary=2d6103638ddd4c4a5affa006890d5ac9";
static const char httpx_edit[] =
	    "--2d6103638ddd4c4a5affa006890d5ac9\r\n"
	    "Content-Disposition: form-data; name=\"prompt\"\r\n"
	    "\r\n"
	    "A \"cute\" otter\r\n"
	    "--2d6103638ddd4c4a5affa006890d5ac9\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "gpt-image-1\r\n"
	    "--2d6103638ddd4c4a5affa006890d5ac9\r\n"
	    "Content-Disposition: form-data; name=\"n\"\r\n"
	    "\r\n"
	    "1\r\n"
	    "--2d6103638ddd4c4a5affa006890d5ac9\r\n"
	    "Content-Disposition: form-data; name=\"image[]\"; filena"
	    "me=\"a.png\"\r\n"
	    "Content-Type: image/png\r\n"
	    "\r\n"
	    "\x89PNG\r\n"
	    "\x1a\n"
	    "\x00\x00\x00\rIHDR--\r\n"
	    "\r\n"
	    "--2d6103638ddd4c4a5affa006890d5ac9\r\n"
	    "Content-Disposition: form-data; name=\"image[]\"; filena"
	    "me=\"b.png\"\r\n"
	    "Content-Type: image/png\r\n"
	    "\r\n"
	    "\x89PNG\r\n"
	    "\x1a\n"
	    "\x00\x00\x00\rIHDR--\r\n"
	    "\r\n"
	    "--2d6103638ddd4c4a5affa006890d5ac9--\r\n";

/* curl_transcribe: 333 bytes */
static const char curl_transcribe_ct[] =
    "multipart/form-data; boundary=------------------------5440e4047f8b2eae";
static const char curl_transcribe[] =
	    "--------------------------5440e4047f8b2eae\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "whisper-1\r\n"
	    "--------------------------5440e4047f8b2eae\r\n"
	    "Content-Disposition: form-data; name=\"file\"; filename="
	    "\"speech.mp3\"\r\n"
	    "Content-Type: application/octet-stream\r\n"
	    "\r\n"
	    "ID3\x03\x00\r\n"
	    "--\r\n"
	    "\x00\xff\xfe-- \n"
	    "--x\r\n"
	    "\r\n"
	    "END\r\n"
	    "--------------------------5440e4047f8b2eae--\r\n";

/* curl_edit: 418 bytes */
static const char curl_edit_ct[] =
    "multipart/form-data; boundary=------------------------93a6720eff129798";
static const char curl_edit[] =
	    "--------------------------93a6720eff129798\r\n"
	    "Content-Disposition: form-data; name=\"image\"; filename"
	    "=\"otter.png\"\r\n"
	    "Content-Type: image/png\r\n"
	    "\r\n"
	    "\x89PNG\r\n"
	    "\x1a\n"
	    "\x00\x00\x00\rIHDR--\r\n"
	    "\r\n"
	    "--------------------------93a6720eff129798\r\n"
	    "Content-Disposition: form-data; name=\"prompt\"\r\n"
	    "\r\n"
	    "A \"cute\" otter\r\n"
	    "--------------------------93a6720eff129798\r\n"
	    "Content-Disposition: form-data; name=\"model\"\r\n"
	    "\r\n"
	    "dall-e-2\r\n"
	    "--------------------------93a6720eff129798--\r\n";


/* ---- guard pages ------------------------------------------------------ */

#define AREA (64 * 1024)

static char *area;	/* guard page, AREA bytes, guard page */

static void
guard_init(void)
{
	long pg = sysconf(_SC_PAGESIZE);
	size_t page = pg > 0 ? (size_t)pg : 4096;
	char *m = mmap(NULL, AREA + 2 * page, PROT_READ | PROT_WRITE,
	    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (m == MAP_FAILED || mprotect(m, page, PROT_NONE) != 0 ||
	    mprotect(m + page + AREA, page, PROT_NONE) != 0) {
		perror("mmap");
		exit(2);
	}
	area = m + page;
}

/* A copy of p[0..n) that ends at the upper guard page (odd pieces) or
 * starts at the lower one (even pieces). */
static const char *
place(const char *p, size_t n, size_t piece)
{
	char *at = piece % 2 ? area + AREA - n : area;

	if (n > AREA) {
		fprintf(stderr, "piece too large for the guard area\n");
		exit(2);
	}
	memmove(at, p, n);
	return at;
}

/* ---- reading a body into a summary ------------------------------------ */

#define PMAX 24

struct psum {
	char name[MULTIPART_NAME_MAX + 1];
	int name_len, name_cut;
	char filename[MULTIPART_FILENAME_MAX + 1];
	int has_filename, model;
	uint64_t head_off, body_off, end_off, dlen;
	uint32_t dhash;
};

struct sum {
	int err;		/* finish(), or the error of a failing feed */
	int nparts, done;
	uint64_t done_off;
	struct psum p[PMAX];
	char model[MULTIPART_MODEL_MAX + 1];
	uint64_t model_off, model_end, stop_off;
	int model_done;
	int bad;		/* events that do not match the input */
};

static uint32_t
hash(uint32_t h, const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		h = (h ^ (unsigned char)p[i]) * 16777619u;
	}
	return h;
}

static void
record(struct sum *s, const struct multipart *m,
    const struct multipart_ev *ev, const char *body)
{
	struct psum *p = s->nparts > 0 ? &s->p[s->nparts - 1] : NULL;

	switch (ev->type) {
	case MULTIPART_PART:
		if (s->nparts == PMAX) {
			s->bad++;
			return;
		}
		p = &s->p[s->nparts++];
		p->name_len = m->name_len;
		p->name_cut = m->name_cut;
		memcpy(p->name, m->name, m->name_len < MULTIPART_NAME_MAX ?
		    m->name_len : MULTIPART_NAME_MAX);
		p->has_filename = m->has_filename;
		memcpy(p->filename, m->filename,
		    m->filename_len < MULTIPART_FILENAME_MAX ?
		    m->filename_len : MULTIPART_FILENAME_MAX);
		p->head_off = ev->off;
		p->body_off = m->body_off;
		p->dhash = 2166136261u;
		s->bad += ev->off != m->head_off || m->body_off < ev->off;
		break;
	case MULTIPART_DATA:
		if (p == NULL || ev->len == 0 ||
		    ev->off != p->body_off + p->dlen ||
		    memcmp(ev->data, body + ev->off, ev->len) != 0) {
			s->bad++;
			return;
		}
		p->dlen += ev->len;
		p->dhash = hash(p->dhash, ev->data, ev->len);
		break;
	case MULTIPART_END:
		if (p == NULL || ev->off != p->body_off + p->dlen) {
			s->bad++;
			return;
		}
		p->end_off = ev->off;
		p->model = ev->model;
		if (ev->model && (m->model_len != p->dlen ||
		    m->model_off != p->body_off || m->model_end != ev->off ||
		    memcmp(m->model, body + p->body_off, p->dlen) != 0 ||
		    m->model[m->model_len] != '\0')) {
			s->bad++;
		}
		break;
	case MULTIPART_DONE:
		s->done = 1;
		s->done_off = ev->off;
		s->bad += ev->off < 2 || memcmp(body + ev->off - 2, "--", 2);
		break;
	default:
		s->bad++;
		break;
	}
}

/* Read body[0..n) with boundary b, in pieces: whole (step 0, split 0),
 * split in two at `split` (> 0), or of `step` bytes. */
static void
read_body(const char *body, size_t n, const char *b, uint64_t within,
    size_t step, size_t split, struct sum *s)
{
	struct multipart m;
	size_t off = 0, piece = 0;

	memset(s, 0, sizeof(*s));
	if (multipart_init(&m, b, strlen(b), within) != MULTIPART_OK) {
		s->err = -1;
		return;
	}
	while (off < n) {
		size_t len = n - off, at = 0;
		const char *p;

		if (split > 0) {
			len = off < split ? split : n - split;
		} else if (step > 0 && len > step) {
			len = step;
		}
		p = place(body + off, len, piece++);
		while (at < len) {
			struct multipart_ev ev;
			long r = multipart_feed(&m, p + at, len - at, &ev);

			if (r < 0) {
				s->err = m.err;
				s->stop_off = m.off;
				return;
			}
			if (r == 0 && ev.type == MULTIPART_MORE) {
				s->bad++;	/* no progress */
				return;
			}
			at += (size_t)r;
			if (ev.type != MULTIPART_MORE) {
				record(s, &m, &ev, body);
			}
		}
		off += len;
	}
	s->err = multipart_finish(&m);
	s->stop_off = m.off;
	s->model_done = m.model_done;
	if (m.model_done) {
		memcpy(s->model, m.model, m.model_len + 1);
		s->model_off = m.model_off;
		s->model_end = m.model_end;
	}
}

/* Whole, byte by byte, a few steps and every split give one summary;
 * returns the number of readings that differ from the whole one. */
static int
every_way(const char *body, size_t n, const char *b, uint64_t within,
    struct sum *whole)
{
	static const size_t steps[] = { 1, 2, 3, 7, 64 };
	struct sum s;
	size_t i;
	int differ = 0;

	read_body(body, n, b, within, 0, 0, whole);
	for (i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		read_body(body, n, b, within, steps[i], 0, &s);
		differ += memcmp(&s, whole, sizeof(s)) != 0;
	}
	for (i = 1; i < n; i++) {
		read_body(body, n, b, within, 0, i, &s);
		differ += memcmp(&s, whole, sizeof(s)) != 0;
	}
	return differ;
}

/* ---- the model value replaced ----------------------------------------- */

/* body with the model value replaced by v, through multipart_splice()
 * fed the pieces of a split at `split` (0: whole) into out; returns the
 * output length. */
static size_t
splice_body(const struct multipart *m, const char *body, size_t n,
    size_t split, const char *v, char *out)
{
	size_t off = 0, o = 0;

	while (off < n) {
		struct multipart_span sp[3];
		size_t len = split > 0 ? (off < split ? split : n - split) :
		    n, k, i;

		k = multipart_splice(m, off, body + off, len, v, strlen(v), sp);
		for (i = 0; i < k; i++) {
			memcpy(out + o, sp[i].p, sp[i].n);
			o += sp[i].n;
		}
		off += len;
	}
	return o;
}

/* Replace the model value of body by v at every split, check the bytes,
 * read the output again: the same parts, with only the model changed. */
static void
check_replace(const char *what, const char *body, size_t n, const char *b,
    const char *v)
{
	static char out[4096], want[4096];
	struct multipart m;
	struct multipart_ev ev;
	struct sum s0, s1;
	size_t split, wn, on = 0;
	int i, ok_parts = 1, bad_splits = 0;

	read_body(body, n, b, 0, 0, 0, &s0);
	/* a reader that has seen the whole body, for its model range */
	multipart_init(&m, b, strlen(b), 0);
	while (on < n) {
		long r = multipart_feed(&m, body + on, n - on, &ev);

		if (r < 0) {
			break;
		}
		on += (size_t)r;
	}
	ok(m.model_done, "%s: model read", what);
	if (!m.model_done || n + strlen(v) > sizeof(out)) {
		return;
	}
	wn = (size_t)m.model_off;
	memcpy(want, body, wn);
	memcpy(want + wn, v, strlen(v));
	memcpy(want + wn + strlen(v), body + m.model_end,
	    n - (size_t)m.model_end);
	wn = n - (size_t)(m.model_end - m.model_off) + strlen(v);
	for (split = 0; split < n; split++) {
		size_t o = splice_body(&m, body, n, split, v, out);

		bad_splits += o != wn || memcmp(out, want, wn) != 0;
	}
	ok_int(bad_splits, 0, "splice at every split gives the same bytes");
	read_body(out, wn, b, 0, 0, 0, &s1);
	ok_int(s1.err, MULTIPART_OK, "the output reads");
	ok_str(s1.model, v, "the output's model");
	ok_int(s1.nparts, s0.nparts, "the output's part count");
	for (i = 0; i < s0.nparts && i < s1.nparts; i++) {
		const struct psum *a = &s0.p[i], *c = &s1.p[i];

		if (strcmp(a->name, c->name) != 0 ||
		    strcmp(a->filename, c->filename) != 0 ||
		    a->has_filename != c->has_filename ||
		    a->model != c->model ||
		    (!a->model && (a->dlen != c->dlen ||
		    a->dhash != c->dhash))) {
			ok_parts = 0;
		}
	}
	ok(ok_parts, "%s: every part but the model as it came (-> %s)",
	    what, v);
}

/* ---- the SDKs' bodies ------------------------------------------------- */

struct sdk {
	const char *what, *ct, *body;
	size_t n;
	const char *model;
	const char *names[6];		/* each part's name, in order */
	const char *filenames[6];	/* "" for none */
};

#define BODY(x) x##_ct, x, sizeof(x) - 1

static const struct sdk sdks[] = {
	{ "Node FormData, model first", BODY(node_fd_model_first),
	    "whisper-1", { "model", "file", "language" },
	    { "", "speech %221%22.mp3", "" } },
	{ "Node FormData, file first", BODY(node_fd_file_first),
	    "gpt-image-1", { "file", "model" },
	    { "otter\xc3\xa9.png", "" } },
	{ "Node SDK toFile", BODY(node_sdk_tofile), "whisper-1",
	    { "model", "file" }, { "", "speech.mp3" } },
	{ "Node SDK createReadStream", BODY(node_sdk_stream), "whisper-1",
	    { "file", "model" }, { "speech.mp3", "" } },
	{ "Node SDK images.edit", BODY(node_sdk_edit), "gpt-image-1",
	    { "image[]", "image[]", "prompt", "model" },
	    { "a.png", "b.png", "", "" } },
	{ "httpx (Python SDK) transcription", BODY(httpx_transcribe),
	    "whisper-1", { "model", "response_format", "file" },
	    { "", "", "speech.mp3" } },
	{ "httpx (Python SDK) images.edit", BODY(httpx_edit), "gpt-image-1",
	    { "prompt", "model", "n", "image[]", "image[]" },
	    { "", "", "", "a.png", "b.png" } },
	{ "curl -F transcription", BODY(curl_transcribe), "whisper-1",
	    { "model", "file" }, { "", "speech.mp3" } },
	{ "curl -F images edit", BODY(curl_edit), "dall-e-2",
	    { "image", "prompt", "model" }, { "otter.png", "", "" } },
};

static void
test_sdks(void)
{
	size_t i;
	int j;

	for (i = 0; i < sizeof(sdks) / sizeof(sdks[0]); i++) {
		const struct sdk *c = &sdks[i];
		char b[MULTIPART_BOUNDARY_MAX + 1];
		size_t blen, nparts = 0;
		struct sum s;

		ok_int(multipart_boundary(c->ct, strlen(c->ct), b, &blen),
		    MULTIPART_OK, c->what);
		ok_int(every_way(c->body, c->n, b, MULTIPART_WITHIN, &s), 0,
		    "whole, byte by byte and every split read alike");
		ok_int(s.err, MULTIPART_OK, c->what);
		ok_int(s.bad, 0, "events match the input");
		ok(s.done && s.done_off + 2 == c->n, "%s: done at the end",
		    c->what);
		ok_str(s.model, c->model, c->what);
		while (nparts < 6 && c->names[nparts] != NULL) {
			nparts++;
		}
		ok_int(s.nparts, nparts, c->what);
		for (j = 0; j < s.nparts && j < (int)nparts; j++) {
			ok_str(s.p[j].name, c->names[j], c->what);
			ok_str(s.p[j].filename, c->filenames[j], c->what);
			ok_int(s.p[j].has_filename, c->filenames[j][0] != 0,
			    c->what);
			ok_int(s.p[j].model, strcmp(c->names[j], "model") == 0,
			    c->what);
		}
		check_replace(c->what, c->body, c->n, b, "w");
		check_replace(c->what, c->body, c->n, b,
		    "whisper-large-v3-turbo-2025-01-01");
	}
}

/* ---- bodies written by hand ------------------------------------------- */

struct hand {
	const char *what, *body;
	const char *model;	/* NULL: no model part */
	int nparts;
	const char *last_name;	/* the last part's name */
	const char *last_data;	/* its content */
};

static const struct hand hands[] = {
	{ "bare LF everywhere",
	    "--b\nContent-Disposition: form-data; name=\"model\"\n\nm-1\n"
	    "--b\nContent-Disposition: form-data; name=x\n\nxx\n--b--\n",
	    "m-1", 2, "x", "xx" },
	{ "mixed CRLF and LF",
	    "--b\r\nContent-Disposition: form-data; name=model\n\r\nm-1\n"
	    "--b\nContent-Disposition: form-data; name=x\r\n\nx\r\n--b--",
	    "m-1", 2, "x", "x" },
	{ "preamble, padding, epilogue",
	    "This is a preamble.\r\n--a\r\n-b\r\n--b \t\r\n"
	    "Content-Disposition: form-data; name=model\r\n\r\nm-1\r\n"
	    "--b  \r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n"
	    "--b-- \r\nepilogue\r\n--a\r\n",
	    "m-1", 2, "x", "" },
	{ "a part with no content",
	    "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n\r\n--b\r\n"
	    "Content-Disposition: form-data; name=model\r\n\r\nm\r\n--b--",
	    "m", 2, "model", "m" },
	{ "content that starts with the delimiter (as Go reads it)",
	    "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n--b\r\n"
	    "Content-Disposition: form-data; name=y\r\n\r\ny\r\n--b--",
	    NULL, 2, "y", "y" },
	{ "no parts at all", "--b--\r\n", NULL, 0, NULL, NULL },
	{ "near misses in content",
	    "--b\r\nContent-Disposition: form-data; name=x\r\n\r\n"
	    "\r\n-\r\n--\r\r\n\n-b\r\n-\n--\r\n\r\n\r\r\n--\r--b\r\n--b--",
	    NULL, 1, "x",
	    "\r\n-\r\n--\r\r\n\n-b\r\n-\n--\r\n\r\n\r\r\n--\r--b" },
	{ "other header fields kept out of the way",
	    "--b\r\nContent-Type: text/plain; charset=utf-8\r\n"
	    "X-Thing:\r\ncontent-disposition:form-data;name=model\r\n"
	    "Content-Length: 3\r\n\r\nm-1\r\n--b--",
	    "m-1", 1, "model", "m-1" },
};

static void
test_hand(void)
{
	size_t i;

	for (i = 0; i < sizeof(hands) / sizeof(hands[0]); i++) {
		const struct hand *h = &hands[i];
		struct sum s;

		ok_int(every_way(h->body, strlen(h->body), "b", 0, &s), 0,
		    h->what);
		ok_int(s.err, MULTIPART_OK, h->what);
		ok_int(s.bad, 0, h->what);
		ok(s.done, "%s: done", h->what);
		ok_int(s.model_done, h->model != NULL, h->what);
		if (h->model != NULL) {
			ok_str(s.model, h->model, h->what);
		}
		ok_int(s.nparts, h->nparts, h->what);
		if (h->last_name != NULL && s.nparts > 0) {
			const struct psum *p = &s.p[s.nparts - 1];

			ok_str(p->name, h->last_name, h->what);
			ok(p->dlen == strlen(h->last_data) &&
			    memcmp(h->body + p->body_off, h->last_data,
			    p->dlen) == 0, "%s: content", h->what);
		}
	}
}

/* ---- refusals ---------------------------------------------------------- */

#define CD "Content-Disposition: "
#define PART(cd, v) "--b\r\n" cd "\r\n\r\n" v "\r\n"
#define MODEL PART(CD "form-data; name=\"model\"", "m-1")

struct bad {
	const char *what, *body;
	enum multipart_err err;
};

static const struct bad bads[] = {
	{ "empty body", "", MULTIPART_ERR_NO_DELIMITER },
	{ "no delimiter in the body", "model=gpt-4o&x=1",
	    MULTIPART_ERR_NO_DELIMITER },
	{ "another boundary", "--a\r\n" CD "form-data; name=x\r\n\r\nx\r\n"
	    "--a--\r\n", MULTIPART_ERR_NO_DELIMITER },
	{ "the boundary followed by a letter", "--bc\r\n",
	    MULTIPART_ERR_DELIMITER_LINE },
	{ "a content line that starts with the boundary",
	    PART(CD "form-data; name=x", "x\r\n--bx") "--b--",
	    MULTIPART_ERR_DELIMITER_LINE },
	{ "one dash after the boundary", MODEL "--b-\r\n",
	    MULTIPART_ERR_DELIMITER_LINE },
	{ "text after padding", "--b  x\r\n", MULTIPART_ERR_DELIMITER_LINE },
	{ "padding before the closing dashes", MODEL "--b --\r\n",
	    MULTIPART_ERR_DELIMITER_LINE },
	{ "a bare CR ends the delimiter line", "--b\rx",
	    MULTIPART_ERR_DELIMITER_LINE },
	{ "white space before a colon", "--b\r\nContent-Disposition : "
	    "form-data; name=x\r\n\r\nx\r\n--b--", MULTIPART_ERR_HEAD_SYNTAX },
	{ "obs-fold", "--b\r\n" CD "form-data;\r\n name=x\r\n\r\n\r\n--b--",
	    MULTIPART_ERR_HEAD_SYNTAX },
	{ "a line without a colon", "--b\r\nContent-Disposition\r\n\r\n--b--",
	    MULTIPART_ERR_HEAD_SYNTAX },
	{ "a bare CR in a header line", "--b\r\nX: a\rb\r\n\r\n--b--",
	    MULTIPART_ERR_HEAD_SYNTAX },
	{ "a part without Content-Disposition",
	    PART("Content-Type: text/plain", "x") "--b--",
	    MULTIPART_ERR_NO_DISPOSITION },
	{ "two Content-Disposition fields", "--b\r\n" CD "form-data; name=x"
	    "\r\ncontent-disposition: form-data; name=model\r\n\r\nm\r\n--b--",
	    MULTIPART_ERR_DISPOSITION_TWICE },
	{ "attachment", PART(CD "attachment; name=model", "m") "--b--",
	    MULTIPART_ERR_NOT_FORM_DATA },
	{ "form-data with a tail", PART(CD "form-datax; name=model", "m")
	    "--b--", MULTIPART_ERR_NOT_FORM_DATA },
	{ "an empty disposition", PART(CD, "m") "--b--",
	    MULTIPART_ERR_DISPOSITION },
	{ "an unterminated quoted name", PART(CD "form-data; name=\"model",
	    "m") "--b--", MULTIPART_ERR_DISPOSITION },
	{ "no ';' before a parameter", PART(CD "form-data name=model", "m")
	    "--b--", MULTIPART_ERR_DISPOSITION },
	{ "a parameter without a value", PART(CD "form-data; name=", "m")
	    "--b--", MULTIPART_ERR_DISPOSITION },
	{ "a parameter without a name", PART(CD "form-data; =model", "m")
	    "--b--", MULTIPART_ERR_DISPOSITION },
	{ "a token value with a space", PART(CD "form-data; name=mo del",
	    "m") "--b--", MULTIPART_ERR_DISPOSITION },
	{ "a quoted ext-value", PART(CD "form-data; name*=\"UTF-8''model\"",
	    "m") "--b--", MULTIPART_ERR_DISPOSITION },
	{ "a bad percent escape", PART(CD "form-data; name*=UTF-8''%6x",
	    "m") "--b--", MULTIPART_ERR_DISPOSITION },
	{ "name given twice", PART(CD "form-data; name=x; NAME=model", "m")
	    "--b--", MULTIPART_ERR_PARAM_TWICE },
	{ "filename given twice", PART(CD "form-data; name=f; filename=a; "
	    "filename=b", "m") "--b--", MULTIPART_ERR_PARAM_TWICE },
	{ "RFC 2231 continuations", PART(CD "form-data; name*0=mo; "
	    "name*1=del", "m") "--b--", MULTIPART_ERR_CONTINUATION },
	{ "an encoded continuation", PART(CD "form-data; name=x; "
	    "filename*0*=UTF-8''a", "m") "--b--", MULTIPART_ERR_CONTINUATION },
	{ "a charset not read", PART(CD "form-data; name*=UTF-16''model",
	    "m") "--b--", MULTIPART_ERR_CHARSET },
	{ "name and name* differ", PART(CD "form-data; name=x; "
	    "name*=UTF-8''model", "m") "--b--", MULTIPART_ERR_NAME_MISMATCH },
	{ "a part without a name", PART(CD "form-data; filename=\"a.txt\"",
	    "m") "--b--", MULTIPART_ERR_NO_NAME },
	{ "cut in the content", MODEL "--b\r\n" CD "form-data; name=x\r\n\r\n"
	    "abc", MULTIPART_ERR_TRUNCATED },
	{ "cut inside the closing delimiter", MODEL "--b-",
	    MULTIPART_ERR_TRUNCATED },
	{ "cut in a header block", "--b\r\n" CD "form-data; name=x\r\n",
	    MULTIPART_ERR_TRUNCATED },
	{ "cut after a delimiter", MODEL "--b\r\n", MULTIPART_ERR_TRUNCATED },
	{ "cut in a held delimiter", MODEL "--b\r\n" CD "form-data; name=x"
	    "\r\n\r\nabc\r\n-", MULTIPART_ERR_TRUNCATED },
	{ "a part after the closing delimiter", MODEL "--b--\r\n"
	    PART(CD "form-data; name=model", "expensive") "--b--",
	    MULTIPART_ERR_AFTER_CLOSE },
	{ "two model parts", MODEL PART(CD "form-data; name=\"model\"", "m-2")
	    "--b--", MULTIPART_ERR_MODEL_TWICE },
	{ "two model parts, one as name*", MODEL PART(CD "form-data; "
	    "name*=UTF-8''%6Dodel", "m-2") "--b--", MULTIPART_ERR_MODEL_TWICE },
	{ "a model part with a filename", PART(CD "form-data; name=model; "
	    "filename=\"m.txt\"", "m") "--b--", MULTIPART_ERR_MODEL_FILE },
	{ "a model part with a Content-Transfer-Encoding", "--b\r\n"
	    CD "form-data; name=model\r\nContent-Transfer-Encoding: base64"
	    "\r\n\r\nbS0x\r\n--b--", MULTIPART_ERR_MODEL_ENCODED },
	{ "an empty model", PART(CD "form-data; name=model", "") "--b--",
	    MULTIPART_ERR_MODEL_EMPTY },
	{ "a model over 256 bytes", PART(CD "form-data; name=model",
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	    "X") "--b--", MULTIPART_ERR_MODEL_LONG },
};

static void
test_bad(void)
{
	static char big[MULTIPART_HEAD_MAX + 128];
	struct sum s;
	size_t i, n;

	for (i = 0; i < sizeof(bads) / sizeof(bads[0]); i++) {
		const struct bad *c = &bads[i];
		static const size_t steps[] = { 1, 2, 5 };
		size_t k;
		int same = 1;

		n = strlen(c->body);
		read_body(c->body, n, "b", MULTIPART_WITHIN, 0, 0, &s);
		ok(s.err == (int)c->err, "%s: got \"%s\", want \"%s\"",
		    c->what, multipart_strerror(s.err),
		    multipart_strerror(c->err));
		for (k = 0; k < sizeof(steps) / sizeof(steps[0]); k++) {
			read_body(c->body, n, "b", MULTIPART_WITHIN, steps[k], 0,
			    &s);
			same &= s.err == (int)c->err;
		}
		for (k = 1; k < n; k++) {
			read_body(c->body, n, "b", MULTIPART_WITHIN, 0, k, &s);
			same &= s.err == (int)c->err;
		}
		ok(same, "%s: the same reason in every split", c->what);
	}
	read_body("--b\r\nX: a\0b\r\n\r\n--b--", 20, "b", 0, 0, 0, &s);
	ok_int(s.err, MULTIPART_ERR_HEAD_SYNTAX, "a NUL in a header value");
	/* A model of exactly 256 bytes is read. */
	n = (size_t)snprintf(big, sizeof(big), "--b\r\n" CD "form-data; "
	    "name=model\r\n\r\n%0256d\r\n--b--", 7);
	read_body(big, n, "b", 0, 0, 0, &s);
	ok(s.err == MULTIPART_OK && strlen(s.model) == 256, "256-byte model");
	/* A header block of 8 KiB is read; one byte more is too long. */
	for (i = 0; i < 2; i++) {
		/* counted from the delimiter: its CRLF, 40 bytes of
		 * Content-Disposition, "X: ", the pad and two CRLFs */
		size_t pad = MULTIPART_HEAD_MAX - 49 + i;

		n = (size_t)snprintf(big, sizeof(big), "--b\r\n" CD
		    "form-data; name=x\r\nX: %0*d\r\n\r\n\r\n--b--",
		    (int)pad, 0);
		read_body(big, n, "b", 0, 0, 0, &s);
		ok_int(s.err, i ? MULTIPART_ERR_HEAD_LONG : MULTIPART_OK,
		    "a header block at the limit and one byte over");
		read_body(big, n, "b", 0, 1, 0, &s);
		ok_int(s.err, i ? MULTIPART_ERR_HEAD_LONG : MULTIPART_OK,
		    "the same, byte by byte");
	}
	/* Every reason has its own sentence. */
	for (i = 1; i <= MULTIPART_ERR_MODEL_LATE; i++) {
		const char *t = multipart_strerror((enum multipart_err)i);

		ok(strcmp(t, "the multipart body is malformed") != 0 &&
		    strcmp(t, "ok") != 0, "reason %zu has a sentence", i);
	}
}

/* ---- Content-Disposition by meaning ------------------------------------ */

struct cd {
	const char *field;	/* the whole header line, without CRLF */
	const char *name;	/* NULL: refused (then err) */
	const char *filename;	/* NULL: none */
	enum multipart_err err;
};

static const struct cd cds[] = {
	{ CD "form-data; name=\"model\"", "model", NULL, 0 },
	{ CD "form-data; name=model", "model", NULL, 0 },
	{ "CONTENT-DISPOSITION: FORM-DATA; NAME=model", "model", NULL, 0 },
	{ CD "form-data ; name = \"model\" ; ", "model", NULL, 0 },
	{ "Content-Disposition:\tform-data;\tname=\"model\"\t", "model",
	    NULL, 0 },
	{ CD "form-data; name=\"mo\\del\"", "model", NULL, 0 },
	{ CD "form-data; name=\"a\\\"b\\\\c\"", "a\"b\\c", NULL, 0 },
	{ CD "form-data; name*=UTF-8''model", "model", NULL, 0 },
	{ CD "form-data; name*=utf-8'en'%6d%6F%64el", "model", NULL, 0 },
	{ CD "form-data; name=\"model\"; name*=UTF-8''model", "model", NULL,
	    0 },
	{ CD "form-data; name*=ISO-8859-1''caf%E9", "caf\xc3\xa9", NULL, 0 },
	{ CD "form-data; name=\"model\"; size=12; x=\"a;b\"", "model", NULL,
	    0 },
	{ CD "form-data; name=\"model%22\"", "model%22", NULL, 0 },
	{ CD "form-data; name=\"modelx\"", "modelx", NULL, 0 },
	{ CD "form-data; name=\"Model\"", "Model", NULL, 0 },
	{ CD "form-data; name=\"file\"; filename=\"a b.png\"", "file",
	    "a b.png", 0 },
	{ CD "form-data; name=\"file\"; filename=\"\"", "file", "", 0 },
	{ CD "form-data; name=f; filename*=UTF-8''%E2%82%AC.txt", "f",
	    "\xe2\x82\xac.txt", 0 },
	{ CD "form-data; name=f; filename=a.txt; filename*=UTF-8''b.txt",
	    "f", "a.txt", 0 },
	{ CD "form-data; name=f; filename=\"C:\\\\x\\\\y.png\"", "f",
	    "C:\\x\\y.png", 0 },
	{ CD "form-data; filename=m; name=model", NULL, NULL,
	    MULTIPART_ERR_MODEL_FILE },
	{ CD "form-data; name=\"mo\"del\"", NULL, NULL,
	    MULTIPART_ERR_DISPOSITION },
	{ CD "form-data; na\"me=model", NULL, NULL,
	    MULTIPART_ERR_DISPOSITION },
	{ CD "form-data;; name=model", NULL, NULL,
	    MULTIPART_ERR_DISPOSITION },
	{ CD "form-data; name=\"x\"; name*=UTF-8''y", NULL, NULL,
	    MULTIPART_ERR_NAME_MISMATCH },
	{ CD "form-data; name*=UTF-8'model", NULL, NULL,
	    MULTIPART_ERR_DISPOSITION },
	{ CD "form-data; name*=UTF-8''mo del", NULL, NULL,
	    MULTIPART_ERR_DISPOSITION },
	{ CD "form-data; name*=''model", NULL, NULL, MULTIPART_ERR_CHARSET },
};

static void
test_disposition(void)
{
	static char body[512];
	size_t i;

	for (i = 0; i < sizeof(cds) / sizeof(cds[0]); i++) {
		const struct cd *c = &cds[i];
		struct sum s;
		int n = snprintf(body, sizeof(body), "--b\r\n%s\r\n\r\nv\r\n"
		    "--b--", c->field);

		ok_int(every_way(body, (size_t)n, "b", 0, &s) == 0 ||
		    c->name == NULL, 1, c->field);
		if (c->name == NULL) {
			ok(s.err == (int)c->err, "%s: got \"%s\"", c->field,
			    multipart_strerror(s.err));
			continue;
		}
		ok_int(s.err, MULTIPART_OK, c->field);
		ok_int(s.nparts, 1, c->field);
		ok_str(s.p[0].name, c->name, c->field);
		ok_int(s.p[0].has_filename, c->filename != NULL, c->field);
		if (c->filename != NULL) {
			ok_str(s.p[0].filename, c->filename, c->field);
		}
		ok_int(s.model_done, strcmp(c->name, "model") == 0, c->field);
	}
}

/* ---- the boundary of a Content-Type ------------------------------------ */

struct ct {
	const char *v, *boundary;	/* boundary NULL: refused */
	enum multipart_err err;
};

static const struct ct cts[] = {
	{ "multipart/form-data; boundary=abc", "abc", 0 },
	{ "Multipart/Form-Data; BOUNDARY=abc", "abc", 0 },
	{ "multipart/form-data;boundary=\"a b:c?\"", "a b:c?", 0 },
	{ "  multipart/form-data ; charset=utf-8 ; boundary=\"x\\yz\" ; ",
	    "xyz", 0 },
	{ "multipart/form-data; boundary=------------------------5440e4047f8b2"
	    "eae", "------------------------5440e4047f8b2eae", 0 },
	{ "multipart/form-data; boundary=\"0123456789012345678901234567890123"
	    "456789012345678901234567890123456789\"",
	    "0123456789012345678901234567890123456789012345678901234567890123"
	    "456789", 0 },
	{ "multipart/form-data; boundary=0123456789012345678901234567890123"
	    "4567890123456789012345678901234567890", NULL,
	    MULTIPART_ERR_BAD_BOUNDARY },
	{ "multipart/form-data; boundary=\"ab \"", NULL,
	    MULTIPART_ERR_BAD_BOUNDARY },
	{ "multipart/form-data; boundary=\"a@b\"", NULL,
	    MULTIPART_ERR_BAD_BOUNDARY },
	{ "multipart/form-data; boundary=a*b", NULL,
	    MULTIPART_ERR_BAD_BOUNDARY },
	{ "multipart/form-data; boundary=\"\"", NULL,
	    MULTIPART_ERR_BAD_BOUNDARY },
	{ "multipart/form-data; boundary=a; boundary=a", NULL,
	    MULTIPART_ERR_BAD_BOUNDARY },
	{ "multipart/form-data", NULL, MULTIPART_ERR_NO_BOUNDARY },
	{ "multipart/form-data; charset=utf-8", NULL,
	    MULTIPART_ERR_NO_BOUNDARY },
	{ "multipart/form-data; boundary=", NULL, MULTIPART_ERR_CT_SYNTAX },
	{ "multipart/form-data; boundary=\"abc", NULL,
	    MULTIPART_ERR_CT_SYNTAX },
	{ "multipart/form-data boundary=abc", NULL, MULTIPART_ERR_CT_SYNTAX },
	{ "multipart/form-data; boundary", NULL, MULTIPART_ERR_CT_SYNTAX },
	{ "multipart/form-data; boundary=a b", NULL, MULTIPART_ERR_CT_SYNTAX },
	{ "multipart/mixed; boundary=abc", NULL, MULTIPART_ERR_NOT_FORM },
	{ "multipart/form-datax; boundary=abc", NULL,
	    MULTIPART_ERR_NOT_FORM },
	{ "application/json", NULL, MULTIPART_ERR_NOT_FORM },
	{ "", NULL, MULTIPART_ERR_NOT_FORM },
};

static void
test_content_type(void)
{
	char b[MULTIPART_BOUNDARY_MAX + 1];
	struct multipart m;
	size_t i, len;

	for (i = 0; i < sizeof(cts) / sizeof(cts[0]); i++) {
		const struct ct *c = &cts[i];
		const char *v = place(c->v, strlen(c->v), 1);
		enum multipart_err e = multipart_boundary(v, strlen(c->v), b,
		    &len);

		ok(e == (c->boundary ? MULTIPART_OK : c->err),
		    "%s: got \"%s\"", c->v, multipart_strerror(e));
		if (c->boundary != NULL) {
			ok_str(b, c->boundary, c->v);
			ok_int(len, strlen(c->boundary), c->v);
		} else {
			ok(b[0] == '\0' && len == 0, "%s: nothing out", c->v);
		}
	}
	ok_int(multipart_init(&m, "a b ", 4, 0), MULTIPART_ERR_BAD_BOUNDARY,
	    "init refuses a boundary ending in a space");
	ok_int(multipart_init(&m, "", 0, 0), MULTIPART_ERR_BAD_BOUNDARY,
	    "init refuses an empty boundary");
	ok_int(multipart_feed(&m, "--", 2, &(struct multipart_ev){ 0 }),
	    MULTIPART_BAD, "a reader with a bad boundary reads nothing");
}

/* ---- 50 MiB through a 16 KiB buffer ------------------------------------ */

#define BIG_FILE ((uint64_t)50 << 20)
#define BIG_B "relay-test-boundary-4f1c2e9a7b3d5c8e"

/* A body of two parts (the model first or last, by model_last) around
 * a 50 MiB file, written by pieces: the file repeats a block of 997
 * bytes (a prime, so its phase against the pieces keeps moving) that
 * starts with the delimiter but its last byte and goes on with xorshift
 * bytes, CR and LF among them. */
struct gen {
	uint64_t off, file_off, file_end, len;
	char head[512], tail[512];
	size_t head_len, tail_len;
};

#define BLOCK 997

static char block[BLOCK];

static const char model_part[] = "--" BIG_B "\r\n" CD "form-data; "
    "name=\"model\"\r\n\r\nwhisper-1\r\n";

static void
gen_init(struct gen *g, int model_last)
{
	static const char miss[] = "\r\n--" BIG_B;
	uint32_t x = 2463534242u;
	size_t i;

	for (i = 0; i < BLOCK; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		block[i] = (char)x;
	}
	memcpy(block, miss, sizeof(miss) - 2);
	block[sizeof(miss) - 2] = 'X';
	memset(g, 0, sizeof(*g));
	g->head_len = (size_t)snprintf(g->head, sizeof(g->head), "%s--" BIG_B
	    "\r\n" CD "form-data; name=\"file\"; filename=\"big.wav\"\r\n"
	    "Content-Type: audio/wav\r\n\r\n", model_last ? "" : model_part);
	g->tail_len = (size_t)snprintf(g->tail, sizeof(g->tail), "\r\n%s--"
	    BIG_B "--\r\n", model_last ? model_part : "");
	g->file_off = g->head_len;
	g->file_end = g->file_off + BIG_FILE;
	g->len = g->file_end + g->tail_len;
}

static size_t
gen_read(struct gen *g, char *buf, size_t cap)
{
	size_t n = 0;

	while (n < cap && g->off < g->len) {
		uint64_t o = g->off;
		size_t k;
		const char *src;

		if (o < g->file_off) {
			src = g->head + o;
			k = (size_t)(g->file_off - o);
		} else if (o < g->file_end) {
			src = block + (o - g->file_off) % BLOCK;
			k = BLOCK - (size_t)((o - g->file_off) % BLOCK);
			if (k > g->file_end - o) {
				k = (size_t)(g->file_end - o);
			}
		} else {
			src = g->tail + (o - g->file_end);
			k = (size_t)(g->len - o);
		}
		k = k < cap - n ? k : cap - n;
		memcpy(buf + n, src, k);
		n += k;
		g->off += k;
	}
	return n;
}

/* Stream the generated body through the reader from a 16 KiB buffer;
 * the file part's data are hashed as they pass, and so is the file as
 * generated. Returns the reader's final error; *cpu_ns the CPU time in
 * multipart_feed(). */
static int
stream_big(int model_last, uint64_t within, struct multipart *m,
    uint64_t *file_len, uint32_t *file_hash, uint32_t *want_hash,
    int *whole_pieces, long long *cpu_ns)
{
	static const size_t sizes[] = { 16384, 1, 4093, 77, 10000, 2 };
	static char buf[16384];
	struct gen g;
	size_t piece = 0, n;
	int in_file = 0;

	gen_init(&g, model_last);
	*file_len = 0;
	*file_hash = *want_hash = 2166136261u;
	*whole_pieces = 1;
	*cpu_ns = 0;
	multipart_init(m, BIG_B, strlen(BIG_B), within);
	while ((n = gen_read(&g, buf, sizes[piece++ % 6])) > 0) {
		size_t at = 0;
		uint64_t o = g.off - n;

		/* what the file should be: the generated bytes */
		if (o + n > g.file_off && o < g.file_end) {
			size_t s = o < g.file_off ? (size_t)(g.file_off - o) : 0;
			size_t e = o + n > g.file_end ?
			    (size_t)(g.file_end - o) : n;

			*want_hash = hash(*want_hash, buf + s, e - s);
		}
		while (at < n) {
			struct multipart_ev ev;
			struct timespec t0, t1;
			long r;

			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
			r = multipart_feed(m, buf + at, n - at, &ev);
			clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
			*cpu_ns += (t1.tv_sec - t0.tv_sec) * 1000000000LL +
			    (t1.tv_nsec - t0.tv_nsec);
			if (r < 0) {
				return m->err;
			}
			if (r == 0 && ev.type == MULTIPART_MORE) {
				*whole_pieces = 0;	/* would ask again */
				return -1;
			}
			at += (size_t)r;
			if (ev.type == MULTIPART_PART) {
				in_file = m->has_filename;
			} else if (ev.type == MULTIPART_DATA && in_file) {
				*file_len += ev.len;
				*file_hash = hash(*file_hash, ev.data, ev.len);
			}
		}
	}
	return multipart_finish(m);
}

static long
maxrss_kib(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

static void
test_big(void)
{
	struct multipart m;
	uint64_t len;
	uint32_t got, want;
	int whole, e;
	long rss0 = maxrss_kib();
	long long ns;

	printf("# sizeof(struct multipart) = %zu bytes\n", sizeof(m));
	ok(sizeof(m) <= 1024, "the reader's state is under 1 KiB");
	e = stream_big(0, MULTIPART_WITHIN, &m, &len, &got, &want, &whole,
	    &ns);
	printf("# 50 MiB in pieces of 1 to 16384 bytes: %lld ms of CPU in "
	    "multipart_feed\n", ns / 1000000);
	ok_int(e, MULTIPART_OK, "50 MiB, model first");
	ok(whole, "every piece taken whole");
	ok(len == BIG_FILE, "the file's 50 MiB passed as data");
	ok(got == want, "the file's bytes as they came");
	ok_str(m.model, "whisper-1", "the model of a 50 MiB body");
	ok_int(m.parts, 2, "two parts");

	/* The model after the file: refused at 256 KiB, not one byte on. */
	e = stream_big(1, MULTIPART_WITHIN, &m, &len, &got, &want, &whole,
	    &ns);
	ok_int(e, MULTIPART_ERR_MODEL_LATE, "50 MiB, model last");
	ok(m.off == MULTIPART_WITHIN, "stopped at 256 KiB (%llu)",
	    (unsigned long long)m.off);
	/* Unbounded (a relay that spools the start): read. */
	e = stream_big(1, 0, &m, &len, &got, &want, &whole, &ns);
	ok_int(e, MULTIPART_OK, "50 MiB, model last, no bound");
	ok(whole && len == BIG_FILE && got == want, "the file as it came");
	ok_str(m.model, "whisper-1", "the model after 50 MiB");
	printf("# max RSS grew by %ld KiB over 150 MiB read\n",
	    maxrss_kib() - rss0);
	ok(maxrss_kib() - rss0 < 1024, "constant memory");
}

/* ---- the bound on the bytes before the model --------------------------- */

static void
test_within(void)
{
	static const char body[] = PART(CD "form-data; name=f; filename=a",
	    "0123456789") MODEL "--b--";
	size_t n = sizeof(body) - 1;
	/* where the delimiter after the model value ends */
	size_t end = (size_t)(strstr(body, "m-1\r\n--b") - body) + 8;
	struct sum s;

	ok_int(every_way(body, n, "b", end, &s), 0, "bound at the model");
	ok_int(s.err, MULTIPART_OK, "a model part ending at the bound");
	read_body(body, n, "b", end - 1, 0, 0, &s);
	ok_int(s.err, MULTIPART_ERR_MODEL_LATE, "one byte past the bound");
	ok(s.stop_off == end - 1, "nothing taken past the bound");
	read_body(body, n, "b", end - 1, 1, 0, &s);
	ok_int(s.err, MULTIPART_ERR_MODEL_LATE, "the same, byte by byte");
	read_body(body, n, "b", 20, 0, 0, &s);
	ok_int(s.err, MULTIPART_ERR_MODEL_LATE, "a small bound");
	ok_str(multipart_strerror(MULTIPART_ERR_MODEL_LATE),
	    "the model field must come within the first 256 KiB of a "
	    "multipart body (put it before the files)", "its message");
	/* a body without a model ends before the bound: no error */
	read_body(PART(CD "form-data; name=x", "x") "--b--",
	    sizeof(PART(CD "form-data; name=x", "x") "--b--") - 1, "b", 1000,
	    0, 0, &s);
	ok(s.err == MULTIPART_OK && !s.model_done, "no model, short body");
}

/* ---- splice at the edges ----------------------------------------------- */

static void
test_splice(void)
{
	struct multipart m;
	struct multipart_span sp[3];
	const char *p = "0123456789";

	memset(&m, 0, sizeof(m));
	m.model_off = 4;
	m.model_end = 6;
	m.model_done = 1;
	ok_int(multipart_splice(&m, 0, p, 10, "AB", 2, sp), 3, "3 spans");
	ok(sp[0].n == 4 && sp[1].n == 2 && sp[2].p == p + 6 && sp[2].n == 4,
	    "before, the value, after");
	ok_int(multipart_splice(&m, 0, p, 4, "AB", 2, sp), 1, "before only");
	ok(sp[0].n == 4, "all of it");
	ok_int(multipart_splice(&m, 4, p + 4, 2, "AB", 2, sp), 0,
	    "inside the value: nothing");
	ok_int(multipart_splice(&m, 5, p + 5, 3, "AB", 2, sp), 2,
	    "the byte after the value: v and the rest");
	ok(sp[0].n == 2 && sp[1].p == p + 6 && sp[1].n == 2, "v, then 6..8");
	ok_int(multipart_splice(&m, 6, p + 6, 4, "AB", 2, sp), 2,
	    "starting at the value's end");
	ok_int(multipart_splice(&m, 7, p + 7, 3, "AB", 2, sp), 1,
	    "after it: as it came");
	ok(sp[0].p == p + 7 && sp[0].n == 3, "the piece");
	ok_int(multipart_splice(&m, 3, p + 3, 0, "AB", 2, sp), 0,
	    "an empty piece");
}

/* ---- a sticky error; events of a simple body --------------------------- */

static void
test_events(void)
{
	static const char body[] = "--b\r\n" CD "form-data; name=model\r\n"
	    "\r\nm-1\r\n--b--";
	size_t n = sizeof(body) - 1;
	struct multipart m;
	struct multipart_ev ev;
	long r;

	multipart_init(&m, "b", 1, 0);
	r = multipart_feed(&m, body, n, &ev);
	ok(r == 51 && ev.type == MULTIPART_PART && ev.off == 5 &&
	    m.body_off == 51 && m.head_off == 5, "PART with its range");
	r = multipart_feed(&m, body + 51, n - 51, &ev);
	ok(r == 3 && ev.type == MULTIPART_DATA && ev.off == 51 &&
	    ev.len == 3 && ev.data == body + 51, "DATA, a view into the input");
	r = multipart_feed(&m, body + 54, n - 54, &ev);
	ok(r == 5 && ev.type == MULTIPART_END && ev.off == 54 && ev.model &&
	    m.model_off == 51 && m.model_end == 54, "END of the model part");
	r = multipart_feed(&m, body + 59, n - 59, &ev);
	ok(r == 2 && ev.type == MULTIPART_DONE && ev.off == 61 && n == 61,
	    "DONE");
	ok_int(multipart_finish(&m), MULTIPART_OK, "finish");
	r = multipart_feed(&m, "\r\n--b\r\n", 7, &ev);
	ok(r == MULTIPART_BAD && m.err == MULTIPART_ERR_AFTER_CLOSE,
	    "a delimiter after the close");
	ok(multipart_feed(&m, "x", 1, &ev) == MULTIPART_BAD &&
	    multipart_finish(&m) == MULTIPART_ERR_AFTER_CLOSE, "sticky");
	multipart_init(&m, "b", 1, 0);
	r = multipart_feed(&m, "--b\r\nX: 1\r\n", 11, &ev);
	ok(r == 11 && ev.type == MULTIPART_MORE, "MORE: every byte taken");
	ok_int(multipart_feed(&m, "", 0, &ev), 0, "an empty piece");
	/* held bytes are handed back from the reader itself */
	multipart_init(&m, "b", 1, 0);
	multipart_feed(&m, body, 51, &ev);
	r = multipart_feed(&m, "m\r\n-", 4, &ev);
	ok(r == 4 && ev.type == MULTIPART_DATA && ev.len == 1, "m, then held");
	r = multipart_feed(&m, "x\r\n--b--", 9, &ev);
	ok(r == 0 && ev.type == MULTIPART_DATA && ev.len == 3 &&
	    memcmp(ev.data, "\r\n-", 3) == 0 && ev.off == 52,
	    "the held \"\\r\\n-\" as DATA, nothing taken");
}

int
main(void)
{
	guard_init();
	test_events();
	test_content_type();
	test_sdks();
	test_hand();
	test_disposition();
	test_bad();
	test_within();
	test_splice();
	test_big();
	return t_done("multipart");
}
