/* tls: BearSSL engines driven by the caller's poll() loop, plus trust
 * anchors, server certificates and session caches.
 *
 * This module is a pump: each call moves records between a non-blocking
 * socket and the engine until the caller's goal (plaintext to read, room
 * to write, records flushed, handshake done) is reached or the socket
 * says EAGAIN. It never blocks, never calls back and never logs; failures
 * are recorded in the connection (sticky, first one wins) as a readable
 * reason. br_sslio_* is not used: it loops until done, i.e. it blocks.
 *
 * Ownership: a tls_conn is one allocation (engine contexts plus the
 * record buffer); it borrows the anchors (until the handshake ends) or the
 * server certificate (for its life). Anchors and server certificates own
 * their bytes. The client session cache is module state: fixed slots, no
 * allocation.
 *
 * Record buffers: a server connection is full-duplex (BR_SSL_BUFSIZE_BIDI,
 * 33,178 bytes): a client may send its next request, or the rest of a body
 * the relay already answered, while a response goes out. A client
 * connection (to a provider) is half-duplex (BR_SSL_BUFSIZE_MONO, 16,709
 * bytes, still room for any record): BearSSL then cannot take plaintext
 * to send while a received record is not fully read, and cannot receive
 * while a record waits to be sent. HTTP/1.1 towards a provider is request
 * then response, and the pump below always sends what is queued before it
 * reads, so neither wait can close a loop: a pending record goes out as
 * soon as the peer reads, and the relay reads the whole response (or
 * closes the connection) before it writes the next request. The one
 * overlap, an answer that arrives while a request body is still going
 * out, is read between records (upstream.c then stops sending). */
#include <arpa/inet.h>
#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "bearssl.h"
#include "clock.h"
#include "tls.h"
#include "util.h"

#ifdef TLS_NO_EMBEDDED_ROOTS
/* tools/mkroots includes this file to produce the embedded roots, so it
 * cannot link against them. */
static const br_x509_trust_anchor tls_embedded_anchors[1];
static const size_t tls_embedded_count = 0;
#else
/* Generated at build time by tools/mkroots (build/roots.c). */
extern const br_x509_trust_anchor tls_embedded_anchors[];
extern const size_t tls_embedded_count;
#endif

enum {
	TLS_MAX_FILE = 16 << 20,	/* larger PEM files are refused */
	TLS_SESSION_SLOTS = 32,		/* client sessions, LRU by name */
	TLS_SERVER_SESSIONS = 128,	/* per server certificate */
	TLS_LRU_ENTRY = 100,		/* bytes per br_ssl_session_cache_lru entry */
	TLS_SNIFF = 5			/* one record header */
};

struct tls_cache {
	br_ssl_session_cache_lru lru;
	unsigned char store[TLS_SERVER_SESSIONS * TLS_LRU_ENTRY];
};

struct tls_conn {
	union {
		br_ssl_client_context cc;
		br_ssl_server_context sc;
	} u;
	br_ssl_engine_context *eng;	/* &u.cc.eng or &u.sc.eng */
	/* Client: the chain validator, needed only until the handshake ends
	 * (renegotiation is refused), so it is a separate allocation freed
	 * then: 3 KiB less per open connection. */
	br_x509_minimal_context *xc;
	int is_client;
	int hs_done;
	int resumed;
	int eof;			/* peer closed the socket */
	int truncated;			/* ... without a close_notify */
	int failed;			/* sticky: err_no and reason are set */
	int err_no;
	int closing;			/* we queued a close_notify */
	unsigned char offered_id[32];	/* session id we asked to resume */
	size_t offered_len;
	unsigned char sniff[TLS_SNIFF];	/* first bytes from the peer */
	size_t sniff_len;
	char name[256];			/* server name (client) */
	char reason[320];
	size_t iolen;			/* bytes in iobuf */
	unsigned char iobuf[];		/* MONO (client) or BIDI (server) */
};

/* The record buffer of each kind of connection (see the top comment). */
#define TLS_CLIENT_IOBUF BR_SSL_BUFSIZE_MONO
#define TLS_SERVER_IOBUF BR_SSL_BUFSIZE_BIDI

/* Clients cache one session per server name. BearSSL 0.6 has no session
 * tickets, so this is TLS 1.2 session-id resumption: it saves the
 * ECDHE and certificate work on reconnects to the same provider. */
struct tls_session {
	char name[256];			/* "" = free slot */
	uint64_t last_use;
	br_ssl_session_parameters params;
};

static struct tls_session sessions[TLS_SESSION_SLOTS];
static uint64_t session_clock;

static const char *alpn_names[] = { "http/1.1" };

/* ChaCha20 first: constant-time and fast without AES hardware; BearSSL's
 * full profiles use the same order. No CBC, no static RSA or ECDH. */
static const uint16_t client_suites[] = {
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
};

static const uint16_t server_suites_ec[] = {
	BR_TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384
};

static const uint16_t server_suites_rsa[] = {
	BR_TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
	BR_TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384
};

/* No MD5: TLS 1.2 does not need it and X.509 refuses it anyway. SHA-1 is
 * still seen in signature_algorithms and in old intermediate chains. */
static const br_hash_class *const hashes[] = {
	&br_sha1_vtable, &br_sha224_vtable, &br_sha256_vtable,
	&br_sha384_vtable, &br_sha512_vtable
};

/* memset through a volatile pointer so the compiler cannot drop it. */
static void *(*const volatile wipe_fn)(void *, int, size_t) = memset;

static void
wipe(void *p, size_t n)
{
	if (p != NULL && n > 0) {
		wipe_fn(p, 0, n);
	}
}

static void errf(char *err, size_t errlen, const char *fmt, ...)
    RELAY_PRINTF(3, 4);

static void
errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0) {
		return;
	}
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

/* ---- growable byte blob (loading only, never on the pumping path) ---- */

struct blob {
	unsigned char *p;		/* owned */
	size_t n, cap;
	int oom;
};

/* Grows by copy-then-wipe rather than realloc: blobs hold private keys and
 * realloc may leave a stale copy in freed memory. */
static void
blob_append(void *ctx, const void *data, size_t len)
{
	struct blob *b = ctx;
	unsigned char *np = NULL;
	size_t ncap;

	if (b->oom) {
		return;
	}
	if (len > b->cap - b->n) {
		ncap = b->cap ? b->cap * 2 : 2048;
		while (ncap - b->n < len) {
			ncap *= 2;
		}
		np = malloc(ncap);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		if (b->n > 0) {
			memcpy(np, b->p, b->n);
		}
		wipe(b->p, b->n);
		free(b->p);
		b->p = np;
		b->cap = ncap;
	}
	memcpy(b->p + b->n, data, len);
	b->n += len;
}

static void
blob_free(struct blob *b)
{
	wipe(b->p, b->n);
	free(b->p);
	b->p = NULL;
	b->n = b->cap = 0;
}

/* Read a whole file into an owned blob. */
static int
read_file(const char *path, struct blob *b, char *err, size_t errlen)
{
	unsigned char tmp[4096];
	FILE *f = NULL;
	size_t k;

	memset(b, 0, sizeof *b);
	f = fopen(path, "rb");
	if (f == NULL) {
		errf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
		if (b->n + k > TLS_MAX_FILE) {
			errf(err, errlen, "%s: file too large", path);
			goto fail;
		}
		blob_append(b, tmp, k);
		if (b->oom) {
			errf(err, errlen, "%s: out of memory", path);
			goto fail;
		}
	}
	if (ferror(f)) {
		errf(err, errlen, "%s: read error", path);
		goto fail;
	}
	fclose(f);
	wipe(tmp, sizeof tmp);
	return 0;
fail:
	fclose(f);
	wipe(tmp, sizeof tmp);
	blob_free(b);
	return -1;
}

/* ---- PEM ---- */

/* Called for each PEM object with its label and decoded bytes; returns 0
 * to go on, -1 to stop (having written err). */
typedef int pem_fn(void *ctx, const char *label, const unsigned char *der,
    size_t len);

static int
pem_each(const char *path, const unsigned char *buf, size_t len,
    pem_fn *fn, void *ctx, char *err, size_t errlen)
{
	br_pem_decoder_context pc;
	struct blob obj;
	char label[128];
	int inobj = 0, extra_nl = 1, rc = -1;
	size_t k;

	memset(&obj, 0, sizeof obj);
	label[0] = 0;
	br_pem_decoder_init(&pc);
	while (len > 0) {
		k = br_pem_decoder_push(&pc, buf, len);
		buf += k;
		len -= k;
		switch (br_pem_decoder_event(&pc)) {
		case BR_PEM_BEGIN_OBJ:
			snprintf(label, sizeof label, "%s",
			    br_pem_decoder_name(&pc));
			obj.n = 0;
			br_pem_decoder_setdest(&pc, blob_append, &obj);
			inobj = 1;
			break;
		case BR_PEM_END_OBJ:
			if (!inobj) {
				break;
			}
			inobj = 0;
			if (obj.oom) {
				errf(err, errlen, "%s: out of memory", path);
				goto out;
			}
			if (fn(ctx, label, obj.p, obj.n) < 0) {
				goto out;
			}
			wipe(obj.p, obj.n);
			obj.n = 0;
			break;
		case BR_PEM_ERROR:
			errf(err, errlen, "%s: invalid PEM encoding%s%s", path,
			    inobj ? " in " : "", inobj ? label : "");
			goto out;
		default:
			break;
		}
		/* Accept a last line without its newline, as BearSSL's
		 * tools do: such files exist in the wild. */
		if (len == 0 && extra_nl) {
			extra_nl = 0;
			buf = (const unsigned char *)"\n";
			len = 1;
		}
	}
	if (inobj) {
		errf(err, errlen, "%s: unterminated PEM block \"%s\"", path,
		    label);
		goto out;
	}
	rc = 0;
out:
	blob_free(&obj);
	return rc;
}

static int
is_cert_label(const char *label)
{
	return strcmp(label, "CERTIFICATE") == 0
	    || strcmp(label, "X509 CERTIFICATE") == 0;
}

/* ---- trust anchors ---- */

/* Turn one DER certificate into an anchor (DN, key, CA flag) stored in a
 * single owned block, as BearSSL's tools/certs.c does. Returns 0, or the
 * BearSSL X.509 error code. */
static int
cert_to_anchor(const unsigned char *der, size_t len, br_x509_trust_anchor *ta)
{
	br_x509_decoder_context dc;
	br_x509_pkey *pk = NULL;
	struct blob dn;
	unsigned char *block = NULL;
	size_t klen;
	int e;

	memset(&dn, 0, sizeof dn);
	br_x509_decoder_init(&dc, blob_append, &dn);
	br_x509_decoder_push(&dc, der, len);
	pk = br_x509_decoder_get_pkey(&dc);
	if (pk == NULL || dn.oom) {
		e = br_x509_decoder_last_error(&dc);
		blob_free(&dn);
		return e ? e : BR_ERR_X509_TRUNCATED;
	}
	switch (pk->key_type) {
	case BR_KEYTYPE_RSA:
		klen = pk->key.rsa.nlen + pk->key.rsa.elen;
		break;
	case BR_KEYTYPE_EC:
		klen = pk->key.ec.qlen;
		break;
	default:
		blob_free(&dn);
		return BR_ERR_X509_UNSUPPORTED;
	}
	block = malloc(dn.n + klen + 1);
	if (block == NULL) {
		blob_free(&dn);
		return BR_ERR_X509_LIMIT_EXCEEDED;
	}
	memcpy(block, dn.p, dn.n);
	memset(ta, 0, sizeof *ta);
	ta->dn.data = block;
	ta->dn.len = dn.n;
	ta->flags = br_x509_decoder_isCA(&dc) ? BR_X509_TA_CA : 0;
	ta->pkey.key_type = pk->key_type;
	if (pk->key_type == BR_KEYTYPE_RSA) {
		ta->pkey.key.rsa.n = block + dn.n;
		ta->pkey.key.rsa.nlen = pk->key.rsa.nlen;
		memcpy(ta->pkey.key.rsa.n, pk->key.rsa.n, pk->key.rsa.nlen);
		ta->pkey.key.rsa.e = block + dn.n + pk->key.rsa.nlen;
		ta->pkey.key.rsa.elen = pk->key.rsa.elen;
		memcpy(ta->pkey.key.rsa.e, pk->key.rsa.e, pk->key.rsa.elen);
	} else {
		ta->pkey.key.ec.curve = pk->key.ec.curve;
		ta->pkey.key.ec.q = block + dn.n;
		ta->pkey.key.ec.qlen = pk->key.ec.qlen;
		memcpy(ta->pkey.key.ec.q, pk->key.ec.q, pk->key.ec.qlen);
	}
	blob_free(&dn);
	return 0;
}

struct anchor_ctx {
	struct tls_anchors *ta;
	size_t cap;
	size_t index;			/* certificates seen, for messages */
	const char *path;
	char *err;
	size_t errlen;
};

static int
add_anchor(void *vctx, const char *label, const unsigned char *der,
    size_t len)
{
	struct anchor_ctx *c = vctx;
	struct tls_anchors *ta = c->ta;
	br_x509_trust_anchor a, *nv = NULL;
	size_t ncap;
	int e;

	if (!is_cert_label(label)) {
		return 0;
	}
	c->index++;
	e = cert_to_anchor(der, len, &a);
	if (e == BR_ERR_X509_UNSUPPORTED) {
		/* A key type BearSSL cannot use (e.g. Ed25519): skip it
		 * rather than refuse a whole system bundle. */
		ta->skipped++;
		return 0;
	}
	if (e != 0) {
		errf(c->err, c->errlen,
		    "%s: certificate #%zu: cannot decode (X.509 error %d)",
		    c->path, c->index, e);
		return -1;
	}
	if (ta->n == c->cap) {
		ncap = c->cap ? c->cap * 2 : 64;
		nv = realloc(ta->owned, ncap * sizeof *nv);
		if (nv == NULL) {
			free(a.dn.data);
			errf(c->err, c->errlen, "%s: out of memory", c->path);
			return -1;
		}
		ta->owned = nv;
		ta->v = nv;
		c->cap = ncap;
	}
	ta->owned[ta->n++] = a;
	return 0;
}

int
tls_anchors_load(struct tls_anchors *ta, const char *ca_file,
    char *err, size_t errlen)
{
	struct anchor_ctx c;
	struct blob file;

	memset(ta, 0, sizeof *ta);
	if (ca_file == NULL) {
		ta->v = tls_embedded_anchors;
		ta->n = tls_embedded_count;
		snprintf(ta->source, sizeof ta->source,
		    "embedded (%zu roots from the build machine's CA bundle)",
		    ta->n);
		return 0;
	}
	if (read_file(ca_file, &file, err, errlen) < 0) {
		return -1;
	}
	memset(&c, 0, sizeof c);
	c.ta = ta;
	c.path = ca_file;
	c.err = err;
	c.errlen = errlen;
	if (pem_each(ca_file, file.p, file.n, add_anchor, &c, err,
	    errlen) < 0) {
		goto fail;
	}
	if (ta->n == 0) {
		if (c.index > 0) {
			errf(err, errlen, "%s: no certificate with an RSA or "
			    "EC key", ca_file);
		} else {
			errf(err, errlen, "%s: no PEM \"BEGIN CERTIFICATE\" "
			    "block found", ca_file);
		}
		goto fail;
	}
	snprintf(ta->source, sizeof ta->source, "%s", ca_file);
	blob_free(&file);
	return 0;
fail:
	blob_free(&file);
	tls_anchors_free(ta);
	return -1;
}

void
tls_anchors_free(struct tls_anchors *ta)
{
	size_t i;

	if (ta->owned != NULL) {
		for (i = 0; i < ta->n; i++) {
			free(ta->owned[i].dn.data);
		}
		free(ta->owned);
	}
	memset(ta, 0, sizeof *ta);
}

size_t
tls_anchors_count(const struct tls_anchors *ta)
{
	return ta->n;
}

const char *
tls_anchors_source(const struct tls_anchors *ta)
{
	return ta->source;
}

/* ---- server certificate ---- */

struct chain_ctx {
	struct tls_server_cert *sc;
	size_t cap;
	const char *path;
	char *err;
	size_t errlen;
};

static int
add_chain_cert(void *vctx, const char *label, const unsigned char *der,
    size_t len)
{
	struct chain_ctx *c = vctx;
	struct tls_server_cert *sc = c->sc;
	br_x509_certificate *nv = NULL;
	unsigned char *copy = NULL;
	size_t ncap;

	if (!is_cert_label(label)) {
		return 0;
	}
	if (sc->chain_len == c->cap) {
		ncap = c->cap ? c->cap * 2 : 4;
		nv = realloc(sc->chain, ncap * sizeof *nv);
		if (nv == NULL) {
			goto oom;
		}
		sc->chain = nv;
		c->cap = ncap;
	}
	copy = malloc(len ? len : 1);
	if (copy == NULL) {
		goto oom;
	}
	memcpy(copy, der, len);
	sc->chain[sc->chain_len].data = copy;
	sc->chain[sc->chain_len].data_len = len;
	sc->chain_len++;
	return 0;
oom:
	errf(c->err, c->errlen, "%s: out of memory", c->path);
	return -1;
}

struct key_ctx {
	br_skey_decoder_context dc;
	int found;
	const char *path;
	char *err;
	size_t errlen;
};

static int
add_key(void *vctx, const char *label, const unsigned char *der, size_t len)
{
	struct key_ctx *c = vctx;

	if (c->found) {
		return 0;
	}
	if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0) {
		errf(c->err, c->errlen, "%s: encrypted private keys are not "
		    "supported (decrypt it with openssl pkey)", c->path);
		return -1;
	}
	if (strcmp(label, "RSA PRIVATE KEY") != 0
	    && strcmp(label, "EC PRIVATE KEY") != 0
	    && strcmp(label, "PRIVATE KEY") != 0) {
		return 0;
	}
	c->found = 1;
	br_skey_decoder_init(&c->dc);
	br_skey_decoder_push(&c->dc, der, len);
	if (br_skey_decoder_last_error(&c->dc) != 0) {
		errf(c->err, c->errlen, "%s: cannot decode the private key "
		    "(RSA or EC P-256/P-384/P-521 expected; BearSSL error %d)",
		    c->path, br_skey_decoder_last_error(&c->dc));
		return -1;
	}
	return 0;
}

/* Big-endian integers equal, ignoring leading zeros. */
static int
int_eq(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
	while (alen > 0 && *a == 0) {
		a++;
		alen--;
	}
	while (blen > 0 && *b == 0) {
		b++;
		blen--;
	}
	return alen == blen && memcmp(a, b, alen) == 0;
}

/* Copy the decoded key into one owned blob and check it against the
 * leaf's public key: a key that does not match the certificate is a
 * common operator error, and BearSSL would only show it as handshake
 * failures on the client side. */
static int
take_key(struct tls_server_cert *sc, const br_skey_decoder_context *dc,
    const char *cert_path, const char *key_path, char *err, size_t errlen)
{
	br_x509_decoder_context xd;
	const br_rsa_private_key *rk = NULL;
	const br_ec_private_key *ek = NULL;
	br_x509_pkey *pk = NULL;
	br_ec_public_key pub;
	unsigned char tmp[BR_EC_KBUF_PUB_MAX_SIZE + 520];
	unsigned char *p = NULL;
	size_t n;
	int match = 0;

	br_x509_decoder_init(&xd, NULL, NULL);
	br_x509_decoder_push(&xd, sc->chain[0].data, sc->chain[0].data_len);
	pk = br_x509_decoder_get_pkey(&xd);
	if (pk == NULL) {
		errf(err, errlen, "%s: cannot decode the first certificate "
		    "(X.509 error %d)", cert_path,
		    br_x509_decoder_last_error(&xd));
		return -1;
	}
	sc->key_type = br_skey_decoder_key_type(dc);
	if (sc->key_type == BR_KEYTYPE_RSA) {
		rk = br_skey_decoder_get_rsa(dc);
		n = rk->plen + rk->qlen + rk->dplen + rk->dqlen + rk->iqlen;
		p = sc->key_blob = malloc(n);
		if (p == NULL) {
			goto oom;
		}
		sc->rsa = *rk;
		sc->rsa.p = p;
		memcpy(p, rk->p, rk->plen);
		p += rk->plen;
		sc->rsa.q = p;
		memcpy(p, rk->q, rk->qlen);
		p += rk->qlen;
		sc->rsa.dp = p;
		memcpy(p, rk->dp, rk->dplen);
		p += rk->dplen;
		sc->rsa.dq = p;
		memcpy(p, rk->dq, rk->dqlen);
		p += rk->dqlen;
		sc->rsa.iq = p;
		memcpy(p, rk->iq, rk->iqlen);
		if (pk->key_type == BR_KEYTYPE_RSA
		    && br_rsa_compute_modulus_get_default()(NULL, &sc->rsa)
		    <= sizeof tmp) {
			n = br_rsa_compute_modulus_get_default()(tmp, &sc->rsa);
			match = n > 0 && int_eq(tmp, n, pk->key.rsa.n,
			    pk->key.rsa.nlen);
		}
	} else if (sc->key_type == BR_KEYTYPE_EC) {
		ek = br_skey_decoder_get_ec(dc);
		p = sc->key_blob = malloc(ek->xlen ? ek->xlen : 1);
		if (p == NULL) {
			goto oom;
		}
		sc->ec = *ek;
		sc->ec.x = p;
		memcpy(p, ek->x, ek->xlen);
		if (pk->key_type == BR_KEYTYPE_EC
		    && pk->key.ec.curve == ek->curve
		    && br_ec_compute_pub(br_ec_get_default(), &pub, tmp,
		    &sc->ec) > 0) {
			match = pub.qlen == pk->key.ec.qlen
			    && memcmp(pub.q, pk->key.ec.q, pub.qlen) == 0;
		}
	} else {
		errf(err, errlen, "%s: unsupported key type", key_path);
		return -1;
	}
	wipe(tmp, sizeof tmp);
	if (!match) {
		errf(err, errlen, "%s: private key does not match the "
		    "certificate in %s", key_path, cert_path);
		return -1;
	}
	return 0;
oom:
	errf(err, errlen, "%s: out of memory", key_path);
	return -1;
}

int
tls_server_cert_load(struct tls_server_cert *sc, const char *cert_path,
    const char *key_path, char *err, size_t errlen)
{
	struct chain_ctx cc;
	struct key_ctx *kc = NULL;
	struct blob file;

	memset(sc, 0, sizeof *sc);
	memset(&file, 0, sizeof file);
	if (read_file(cert_path, &file, err, errlen) < 0) {
		goto fail;
	}
	memset(&cc, 0, sizeof cc);
	cc.sc = sc;
	cc.path = cert_path;
	cc.err = err;
	cc.errlen = errlen;
	if (pem_each(cert_path, file.p, file.n, add_chain_cert, &cc, err,
	    errlen) < 0) {
		goto fail;
	}
	blob_free(&file);
	if (sc->chain_len == 0) {
		errf(err, errlen, "%s: no PEM \"BEGIN CERTIFICATE\" block "
		    "found", cert_path);
		goto fail;
	}

	/* The skey decoder context holds the decoded key: heap, wiped. */
	kc = calloc(1, sizeof *kc);
	if (kc == NULL) {
		errf(err, errlen, "%s: out of memory", key_path);
		goto fail;
	}
	kc->path = key_path;
	kc->err = err;
	kc->errlen = errlen;
	if (read_file(key_path, &file, err, errlen) < 0) {
		goto fail;
	}
	if (pem_each(key_path, file.p, file.n, add_key, kc, err,
	    errlen) < 0) {
		goto fail;
	}
	blob_free(&file);
	if (!kc->found) {
		errf(err, errlen, "%s: no PEM private key block found",
		    key_path);
		goto fail;
	}
	if (take_key(sc, &kc->dc, cert_path, key_path, err, errlen) < 0) {
		goto fail;
	}
	wipe(kc, sizeof *kc);
	free(kc);
	kc = NULL;

	sc->cache = calloc(1, sizeof *sc->cache);
	if (sc->cache == NULL) {
		errf(err, errlen, "%s: out of memory", cert_path);
		goto fail;
	}
	br_ssl_session_cache_lru_init(&sc->cache->lru, sc->cache->store,
	    sizeof sc->cache->store);
	return 0;
fail:
	blob_free(&file);
	if (kc != NULL) {
		wipe(kc, sizeof *kc);
		free(kc);
	}
	tls_server_cert_free(sc);
	return -1;
}

void
tls_server_cert_free(struct tls_server_cert *sc)
{
	size_t i;

	for (i = 0; i < sc->chain_len; i++) {
		free(sc->chain[i].data);
	}
	free(sc->chain);
	if (sc->key_blob != NULL) {
		if (sc->key_type == BR_KEYTYPE_RSA) {
			wipe(sc->key_blob, sc->rsa.plen + sc->rsa.qlen
			    + sc->rsa.dplen + sc->rsa.dqlen + sc->rsa.iqlen);
		} else {
			wipe(sc->key_blob, sc->ec.xlen);
		}
		free(sc->key_blob);
	}
	if (sc->cache != NULL) {
		wipe(sc->cache, sizeof *sc->cache);
		free(sc->cache);
	}
	wipe(sc, sizeof *sc);
}

/* ---- client session cache ---- */

static struct tls_session *
session_find(const char *name)
{
	size_t i;

	for (i = 0; i < TLS_SESSION_SLOTS; i++) {
		if (sessions[i].name[0] != 0
		    && strcmp(sessions[i].name, name) == 0) {
			return &sessions[i];
		}
	}
	return NULL;
}

static void
session_drop(const char *name)
{
	struct tls_session *s = session_find(name);

	if (s != NULL) {
		wipe(s, sizeof *s);
	}
}

static void
session_save(const char *name, const br_ssl_session_parameters *p)
{
	struct tls_session *s = session_find(name);
	size_t i;

	if (s == NULL) {
		/* Free slots have last_use 0, so they go first. */
		s = &sessions[0];
		for (i = 1; i < TLS_SESSION_SLOTS; i++) {
			if (sessions[i].last_use < s->last_use) {
				s = &sessions[i];
			}
		}
		snprintf(s->name, sizeof s->name, "%s", name);
	}
	s->params = *p;
	s->last_use = ++session_clock;
}

void
tls_sessions_forget(void)
{
	wipe(sessions, sizeof sessions);
}

/* ---- connections ---- */

/* Free the chain validator of a client connection: once the handshake is
 * over BearSSL never calls it again (no renegotiation), so the engine's
 * pointer is cleared rather than left dangling. */
static void
drop_validator(struct tls_conn *t)
{
	if (t->xc == NULL) {
		return;
	}
	br_ssl_engine_set_x509(t->eng, NULL);
	free(t->xc);
	t->xc = NULL;
}

static int
seed_engine(br_ssl_engine_context *eng)
{
	unsigned char rnd[32];

	/* BearSSL 0.6 seeds itself from RDRAND or /dev/urandom only, and a
	 * FROM-scratch container may lack /dev; getrandom(2) needs no
	 * file. Without entropy the engine fails closed (error 8). */
	if (util_random(rnd, sizeof rnd) < 0) {
		return -1;
	}
	br_ssl_engine_inject_entropy(eng, rnd, sizeof rnd);
	wipe(rnd, sizeof rnd);
	return 0;
}

static void
set_common(br_ssl_engine_context *eng, unsigned char *iobuf, size_t iolen,
    int bidi)
{
	size_t i;

	br_ssl_engine_set_versions(eng, BR_TLS12, BR_TLS12);
	for (i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
		br_ssl_engine_set_hash(eng,
		    (int)((hashes[i]->desc >> BR_HASHDESC_ID_OFF)
		    & BR_HASHDESC_ID_MASK), hashes[i]);
	}
	br_ssl_engine_set_prf_sha256(eng, &br_tls12_sha256_prf);
	br_ssl_engine_set_prf_sha384(eng, &br_tls12_sha384_prf);
	br_ssl_engine_set_default_aes_gcm(eng);
	br_ssl_engine_set_default_chapol(eng);
	/* Renegotiation buys nothing for an HTTP relay and is an old
	 * source of attacks. */
	br_ssl_engine_add_flags(eng, BR_OPT_NO_RENEGOTIATION);
	br_ssl_engine_set_protocol_names(eng, alpn_names, 1);
	br_ssl_engine_set_buffer(eng, iobuf, iolen, bidi);
}

static int
is_ip_literal(const char *name)
{
	unsigned char a[16];

	return inet_pton(AF_INET, name, a) == 1
	    || inet_pton(AF_INET6, name, a) == 1;
}

struct tls_conn *
tls_client_new(const struct tls_anchors *ta, const char *server_name,
    char *err, size_t errlen)
{
	struct tls_conn *t = NULL;
	br_ssl_engine_context *eng = NULL;
	struct tls_session *s = NULL;
	size_t i;
	int resume = 0;

	if (ta == NULL || ta->n == 0) {
		errf(err, errlen, "no trust anchors loaded (set ca_file)");
		return NULL;
	}
	if (server_name == NULL || server_name[0] == 0
	    || strlen(server_name) >= sizeof t->name) {
		errf(err, errlen, "bad TLS server name");
		return NULL;
	}
	if (is_ip_literal(server_name)) {
		errf(err, errlen, "%s: BearSSL cannot verify certificates "
		    "for IP addresses; use a host name", server_name);
		return NULL;
	}
	t = calloc(1, sizeof *t + TLS_CLIENT_IOBUF);
	if (t == NULL) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	t->iolen = TLS_CLIENT_IOBUF;
	t->is_client = 1;
	eng = t->eng = &t->u.cc.eng;
	snprintf(t->name, sizeof t->name, "%s", server_name);

	br_ssl_client_zero(&t->u.cc);
	set_common(eng, t->iobuf, t->iolen, 0);
	br_ssl_engine_set_suites(eng, client_suites,
	    sizeof client_suites / sizeof client_suites[0]);
	br_ssl_engine_set_default_rsavrfy(eng);
	br_ssl_engine_set_default_ecdsa(eng);

	/* Full chain validation: the minimal engine checks signatures up
	 * to an anchor, validity dates against time(), and the server name
	 * (SAN dNSName, wildcards in the first label). */
	t->xc = malloc(sizeof *t->xc);
	if (t->xc == NULL) {
		errf(err, errlen, "out of memory");
		goto fail;
	}
	br_x509_minimal_init(t->xc, &br_sha256_vtable, ta->v, ta->n);
	br_x509_minimal_set_rsa(t->xc, br_ssl_engine_get_rsavrfy(eng));
	br_x509_minimal_set_ecdsa(t->xc, br_ssl_engine_get_ec(eng),
	    br_ssl_engine_get_ecdsa(eng));
	for (i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
		br_x509_minimal_set_hash(t->xc,
		    (int)((hashes[i]->desc >> BR_HASHDESC_ID_OFF)
		    & BR_HASHDESC_ID_MASK), hashes[i]);
	}
	br_ssl_engine_set_x509(eng, &t->xc->vtable);

	if (seed_engine(eng) < 0) {
		errf(err, errlen, "no entropy (getrandom and /dev/urandom "
		    "both failed)");
		goto fail;
	}
	s = session_find(server_name);
	if (s != NULL) {
		br_ssl_engine_set_session_parameters(eng, &s->params);
		memcpy(t->offered_id, s->params.session_id,
		    s->params.session_id_len);
		t->offered_len = s->params.session_id_len;
		s->last_use = ++session_clock;
		resume = 1;
	}
	if (!br_ssl_client_reset(&t->u.cc, server_name, resume)) {
		errf(err, errlen, "TLS client setup failed (BearSSL error %d)",
		    br_ssl_engine_last_error(eng));
		goto fail;
	}
	return t;
fail:
	tls_free(t);
	return NULL;
}

struct tls_conn *
tls_server_new(const struct tls_server_cert *sc, char *err, size_t errlen)
{
	struct tls_conn *t = NULL;
	br_ssl_engine_context *eng = NULL;

	if (sc == NULL || sc->chain_len == 0 || sc->key_blob == NULL) {
		errf(err, errlen, "no server certificate loaded");
		return NULL;
	}
	t = calloc(1, sizeof *t + TLS_SERVER_IOBUF);
	if (t == NULL) {
		errf(err, errlen, "out of memory");
		return NULL;
	}
	t->iolen = TLS_SERVER_IOBUF;
	eng = t->eng = &t->u.sc.eng;
	br_ssl_server_zero(&t->u.sc);
	set_common(eng, t->iobuf, t->iolen, 1);
	br_ssl_engine_set_default_ec(eng);
	if (sc->key_type == BR_KEYTYPE_RSA) {
		br_ssl_engine_set_suites(eng, server_suites_rsa,
		    sizeof server_suites_rsa / sizeof server_suites_rsa[0]);
		br_ssl_server_set_single_rsa(&t->u.sc, sc->chain,
		    sc->chain_len, &sc->rsa, BR_KEYTYPE_SIGN,
		    br_rsa_private_get_default(),
		    br_rsa_pkcs1_sign_get_default());
	} else {
		/* The issuer key type only matters for static ECDH suites,
		 * which are not offered. */
		br_ssl_engine_set_suites(eng, server_suites_ec,
		    sizeof server_suites_ec / sizeof server_suites_ec[0]);
		br_ssl_server_set_single_ec(&t->u.sc, sc->chain,
		    sc->chain_len, &sc->ec, BR_KEYTYPE_SIGN, BR_KEYTYPE_EC,
		    br_ssl_engine_get_ec(eng),
		    br_ecdsa_sign_asn1_get_default());
	}
	br_ssl_server_set_cache(&t->u.sc, &sc->cache->lru.vtable);
	if (seed_engine(eng) < 0) {
		errf(err, errlen, "no entropy (getrandom and /dev/urandom "
		    "both failed)");
		goto fail;
	}
	if (!br_ssl_server_reset(&t->u.sc)) {
		errf(err, errlen, "TLS server setup failed (BearSSL error %d)",
		    br_ssl_engine_last_error(eng));
		goto fail;
	}
	return t;
fail:
	tls_free(t);
	return NULL;
}

void
tls_free(struct tls_conn *t)
{
	if (t == NULL) {
		return;
	}
	drop_validator(t);
	wipe(t, sizeof *t + t->iolen);
	free(t);
}

size_t
tls_conn_memory(int server)
{
	return sizeof(struct tls_conn) + (server ? TLS_SERVER_IOBUF
	    : TLS_CLIENT_IOBUF);
}

/* ---- errors ---- */

static const struct {
	int code;
	const char *text;
} br_errors[] = {
	{ BR_ERR_BAD_PARAM, "bad parameter" },
	{ BR_ERR_BAD_STATE, "bad engine state" },
	{ BR_ERR_UNSUPPORTED_VERSION, "peer does not speak TLS 1.2" },
	{ BR_ERR_BAD_VERSION, "wrong protocol version in a record" },
	{ BR_ERR_BAD_LENGTH, "bad record length" },
	{ BR_ERR_TOO_LARGE, "record too large" },
	{ BR_ERR_BAD_MAC, "record MAC check failed" },
	{ BR_ERR_NO_RANDOM, "no entropy" },
	{ BR_ERR_UNKNOWN_TYPE, "unknown record type" },
	{ BR_ERR_UNEXPECTED, "unexpected message" },
	{ BR_ERR_BAD_CCS, "bad ChangeCipherSpec" },
	{ BR_ERR_BAD_ALERT, "bad alert" },
	{ BR_ERR_BAD_HANDSHAKE, "malformed handshake message" },
	{ BR_ERR_OVERSIZED_ID, "oversized session id" },
	{ BR_ERR_BAD_CIPHER_SUITE, "no common cipher suite (need ECDHE "
	    "with AES-GCM or ChaCha20)" },
	{ BR_ERR_BAD_COMPRESSION, "bad compression method" },
	{ BR_ERR_BAD_FRAGLEN, "bad max fragment length" },
	{ BR_ERR_BAD_SECRENEG, "bad secure renegotiation" },
	{ BR_ERR_EXTRA_EXTENSION, "unexpected extension" },
	{ BR_ERR_BAD_SNI, "bad server name extension" },
	{ BR_ERR_BAD_HELLO_DONE, "bad ServerHelloDone" },
	{ BR_ERR_LIMIT_EXCEEDED, "engine limit exceeded" },
	{ BR_ERR_BAD_FINISHED, "Finished check failed" },
	{ BR_ERR_RESUME_MISMATCH, "session resumption mismatch" },
	{ BR_ERR_INVALID_ALGORITHM, "unsupported algorithm" },
	{ BR_ERR_BAD_SIGNATURE, "bad key exchange signature" },
	{ BR_ERR_WRONG_KEY_USAGE, "key usage forbids this key exchange" },
	{ BR_ERR_NO_CLIENT_AUTH, "no client certificate" },
	{ BR_ERR_IO, "I/O error" },
	{ BR_ERR_X509_EMPTY_CHAIN, "empty certificate chain" },
	{ BR_ERR_X509_BAD_SIGNATURE, "bad certificate signature" },
	{ BR_ERR_X509_TIME_UNKNOWN, "time unknown (set the system clock)" },
	{ BR_ERR_X509_DN_MISMATCH, "issuer/subject mismatch in the chain" },
	{ BR_ERR_X509_CRITICAL_EXTENSION, "unsupported critical "
	    "extension" },
	{ BR_ERR_X509_NOT_CA, "intermediate is not a CA" },
	{ BR_ERR_X509_FORBIDDEN_KEY_USAGE, "key usage forbids TLS server "
	    "use" },
	{ BR_ERR_X509_WEAK_PUBLIC_KEY, "public key too weak" },
	{ BR_ERR_X509_UNSUPPORTED, "unsupported algorithm or key" },
	{ BR_ERR_X509_LIMIT_EXCEEDED, "chain too long or too large" },
	{ BR_ERR_X509_WRONG_KEY_TYPE, "wrong key type" }
};

static const struct {
	int code;
	const char *text;
} alerts[] = {
	{ 10, "unexpected message" }, { 20, "bad record MAC" },
	{ 22, "record overflow" }, { 40, "handshake failure" },
	{ 42, "bad certificate" }, { 43, "unsupported certificate" },
	{ 44, "certificate revoked" }, { 45, "certificate expired" },
	{ 46, "certificate unknown" }, { 47, "illegal parameter" },
	{ 48, "unknown CA" }, { 49, "access denied" },
	{ 50, "decode error" }, { 51, "decrypt error" },
	{ 70, "protocol version: TLS 1.2 refused" }, { 71, "insufficient security" },
	{ 80, "internal error" }, { 90, "user canceled" },
	{ 100, "no renegotiation" }, { 110, "unsupported extension" },
	{ 112, "unrecognized name" }, { 120, "no application protocol" }
};

static const char *
br_error_text(int code)
{
	size_t i;

	for (i = 0; i < sizeof br_errors / sizeof br_errors[0]; i++) {
		if (br_errors[i].code == code) {
			return br_errors[i].text;
		}
	}
	return code > BR_ERR_X509_OK ? "malformed certificate"
	    : "protocol error";
}

static const char *
alert_text(int code)
{
	size_t i;

	for (i = 0; i < sizeof alerts / sizeof alerts[0]; i++) {
		if (alerts[i].code == code) {
			return alerts[i].text;
		}
	}
	return "unknown alert";
}

static int fail(struct tls_conn *t, int err_no, const char *fmt, ...)
    RELAY_PRINTF(3, 4);

/* Record the first failure (sticky) and return -1 with errno set. */
static int
fail(struct tls_conn *t, int err_no, const char *fmt, ...)
{
	va_list ap;

	if (!t->failed) {
		t->failed = 1;
		t->err_no = err_no;
		va_start(ap, fmt);
		vsnprintf(t->reason, sizeof t->reason, fmt, ap);
		va_end(ap);
		/* A cached session that led to a failure is not worth
		 * offering again. */
		if (t->is_client && !t->hs_done && t->offered_len > 0) {
			session_drop(t->name);
		}
	}
	errno = t->err_no;
	return -1;
}

/* A wall clock before this day has never been set: this code did not
 * exist yet. Routers without a battery-backed clock boot in 1970 (or at
 * their firmware's date) until NTP answers. */
#define TLS_CLOCK_FLOOR "2026-11-01"

/* Certificate dates are checked against the wall clock (BearSSL reads
 * time() at each handshake): name the clock and what it reads, so an
 * unset clock is told apart from a really expired certificate. */
static int
fail_clock(struct tls_conn *t)
{
	char now[32];

	clock_iso8601(now, sizeof now);
	if (strncmp(now, TLS_CLOCK_FLOOR, 10) < 0) {
		return fail(t, EPROTO, "certificate dates cannot be checked: "
		    "the system clock is not set (it reads %.10s %.8s UTC); "
		    "set it (NTP) and the next attempt will work", now,
		    now + 11);
	}
	return fail(t, EPROTO, "certificate expired or not yet valid at "
	    "this system's clock (%.10s %.8s UTC; check the clock)", now,
	    now + 11);
}

static int
fail_engine(struct tls_conn *t, int e)
{
	const char *what = t->hs_done ? "TLS error" : "TLS handshake failed";

	switch (e) {
	case BR_ERR_X509_NOT_TRUSTED:
		return fail(t, EPROTO,
		    "certificate not trusted (unknown issuer)");
	case BR_ERR_X509_BAD_SERVER_NAME:
		return fail(t, EPROTO,
		    "certificate host name mismatch (wanted %s)", t->name);
	case BR_ERR_X509_EXPIRED:
		return fail_clock(t);
	default:
		break;
	}
	if (e >= BR_ERR_SEND_FATAL_ALERT) {
		return fail(t, EPROTO, "%s: sent alert %d (%s)", what,
		    e - BR_ERR_SEND_FATAL_ALERT,
		    alert_text(e - BR_ERR_SEND_FATAL_ALERT));
	}
	if (e >= BR_ERR_RECV_FATAL_ALERT) {
		return fail(t, EPROTO, "%s: peer sent alert %d (%s)", what,
		    e - BR_ERR_RECV_FATAL_ALERT,
		    alert_text(e - BR_ERR_RECV_FATAL_ALERT));
	}
	if (e > BR_ERR_X509_OK) {
		return fail(t, EPROTO, "certificate rejected: %s (X.509 "
		    "error %d)", br_error_text(e), e);
	}
	return fail(t, EPROTO, "%s: %s (BearSSL error %d)", what,
	    br_error_text(e), e);
}

/* Look at the first bytes the peer sends. A TLS record starts with a
 * content type 20..23 and major version 3 (a server's first record is a
 * handshake or an alert; a client's a handshake, or an SSLv2-style hello
 * with the top bit set). A plain-HTTP peer sends ASCII instead: "HTTP/1.1
 * 400" from a server, "GET /" from a client. Failing here gives a clear
 * reason, where the engine would report a bad record or wait for a
 * 20 KB "record" that never comes. */
static int
sniff(struct tls_conn *t, const unsigned char *p, size_t n)
{
	const unsigned char *s = t->sniff;
	int bad;

	while (t->sniff_len < TLS_SNIFF && n > 0) {
		t->sniff[t->sniff_len++] = *p++;
		n--;
	}
	if (t->is_client) {
		bad = s[0] < 20 || s[0] > 23
		    || (t->sniff_len > 1 && s[1] != 3);
		if (!bad) {
			return 0;
		}
		if (memcmp(s, "HTTP/", t->sniff_len) == 0) {
			return fail(t, EPROTO, "not a TLS server (plain HTTP "
			    "on an HTTPS port?)");
		}
		return fail(t, EPROTO, "not a TLS server (it sent non-TLS "
		    "bytes)");
	}
	bad = !((s[0] == 22 && (t->sniff_len < 2 || s[1] == 3))
	    || (s[0] & 0x80) != 0);
	if (!bad) {
		return 0;
	}
	if (s[0] >= 'A' && s[0] <= 'Z') {
		return fail(t, EPROTO, "not a TLS client (plain HTTP on an "
		    "HTTPS port?)");
	}
	return fail(t, EPROTO, "not a TLS client (it sent non-TLS bytes)");
}

static void
handshake_finished(struct tls_conn *t)
{
	br_ssl_session_parameters p;

	t->hs_done = 1;
	if (!t->is_client) {
		return;
	}
	drop_validator(t);
	br_ssl_engine_get_session_parameters(t->eng, &p);
	/* BearSSL shows no resume flag; a server that resumes echoes the
	 * session id we offered (RFC 5246 section 7.4.1.3), a new session
	 * gets a new id. */
	t->resumed = t->offered_len > 0 && p.session_id_len == t->offered_len
	    && memcmp(p.session_id, t->offered_id, t->offered_len) == 0;
	if (p.session_id_len > 0) {
		session_save(t->name, &p);
	} else {
		session_drop(t->name);
	}
	wipe(&p, sizeof p);
}

enum pump_goal {
	GOAL_RECVAPP,			/* plaintext to read, or end of stream */
	GOAL_SENDAPP,			/* room for plaintext */
	GOAL_HANDSHAKE,			/* handshake complete */
	GOAL_FLUSH			/* no record waiting to be sent */
};

/* Move records between fd and the engine until the goal holds. Returns 0
 * when it does, 1 at end of stream (close_notify or EOF; GOAL_RECVAPP and
 * GOAL_FLUSH only), -1 with errno: EAGAIN (wait as tls_interest says) or
 * a failure recorded in t. Reads happen only where they can help: for
 * plaintext, and during the handshake. */
static int
pump(struct tls_conn *t, int fd, enum pump_goal goal)
{
	br_ssl_engine_context *eng = t->eng;
	unsigned char *buf = NULL;
	unsigned st;
	size_t len;
	ssize_t r;
	int wblocked = 0, may_read;
	int e;

	for (;;) {
		if (t->failed) {
			errno = t->err_no;
			return -1;
		}
		st = br_ssl_engine_current_state(eng);
		if (st == BR_SSL_CLOSED) {
			e = br_ssl_engine_last_error(eng);
			if (e != BR_ERR_OK) {
				return fail_engine(t, e);
			}
			if (!t->hs_done) {
				return fail(t, ECONNRESET, "connection closed "
				    "during TLS handshake");
			}
			if (goal == GOAL_RECVAPP || goal == GOAL_FLUSH) {
				return 1;
			}
			snprintf(t->reason, sizeof t->reason,
			    "TLS connection closed (close_notify)");
			errno = EPIPE;
			return -1;
		}
		if (!t->hs_done && (st & (BR_SSL_SENDAPP | BR_SSL_RECVAPP))) {
			handshake_finished(t);
		}
		switch (goal) {
		case GOAL_RECVAPP:
			if (st & BR_SSL_RECVAPP) {
				return 0;
			}
			if (t->eof) {
				return 1;
			}
			break;
		case GOAL_SENDAPP:
			if (st & BR_SSL_SENDAPP) {
				return 0;
			}
			break;
		case GOAL_HANDSHAKE:
			if (t->hs_done) {
				return 0;
			}
			break;
		case GOAL_FLUSH:
			if (!(st & BR_SSL_SENDREC)) {
				return 0;
			}
			break;
		}

		if ((st & BR_SSL_SENDREC) && !wblocked) {
			buf = br_ssl_engine_sendrec_buf(eng, &len);
			/* MSG_NOSIGNAL: a peer that hung up must give EPIPE,
			 * not kill the process. */
			r = send(fd, buf, len, MSG_NOSIGNAL);
			if (r > 0) {
				br_ssl_engine_sendrec_ack(eng, (size_t)r);
				continue;
			}
			if (r < 0 && errno == EINTR) {
				continue;
			}
			if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
				e = errno;
				if (!t->hs_done && (e == EPIPE
				    || e == ECONNRESET)) {
					return fail(t, ECONNRESET,
					    "connection closed during TLS "
					    "handshake");
				}
				return fail(t, e, "socket write failed: %s",
				    strerror(e));
			}
			wblocked = 1;
		}

		may_read = goal == GOAL_RECVAPP || !t->hs_done;
		if (goal == GOAL_FLUSH) {
			may_read = 0;
		}
		if ((st & BR_SSL_RECVREC) && may_read && !t->eof) {
			buf = br_ssl_engine_recvrec_buf(eng, &len);
			r = recv(fd, buf, len, 0);
			if (r > 0) {
				if (t->sniff_len < TLS_SNIFF && !t->hs_done
				    && sniff(t, buf, (size_t)r) < 0) {
					return -1;
				}
				br_ssl_engine_recvrec_ack(eng, (size_t)r);
				continue;
			}
			if (r == 0) {
				if (!t->hs_done) {
					return fail(t, ECONNRESET,
					    "connection closed during TLS "
					    "handshake");
				}
				/* Many HTTPS servers close after the response
				 * without a close_notify; HTTP framing tells
				 * the caller whether the body was complete. */
				t->eof = 1;
				t->truncated = 1;
				continue;
			}
			if (errno == EINTR) {
				continue;
			}
			if (errno != EAGAIN && errno != EWOULDBLOCK) {
				e = errno;
				if (!t->hs_done && e == ECONNRESET) {
					return fail(t, ECONNRESET,
					    "connection reset during TLS "
					    "handshake");
				}
				return fail(t, e, "socket read failed: %s",
				    strerror(e));
			}
		}
		errno = EAGAIN;
		return -1;
	}
}

int
tls_handshake(struct tls_conn *t, int fd)
{
	if (pump(t, fd, GOAL_HANDSHAKE) != 0) {
		return -1;
	}
	/* After an abbreviated handshake the client's Finished may still be
	 * queued; push it now, or tls_interest asks for POLLOUT. */
	if (pump(t, fd, GOAL_FLUSH) < 0 && errno != EAGAIN) {
		return -1;
	}
	return 0;
}

ssize_t
tls_read(struct tls_conn *t, int fd, void *buf, size_t n)
{
	unsigned char *p = NULL;
	size_t len;
	int r;

	assert(n > 0);
	r = pump(t, fd, GOAL_RECVAPP);
	if (r < 0) {
		return -1;
	}
	if (r == 1) {
		return 0;
	}
	p = br_ssl_engine_recvapp_buf(t->eng, &len);
	if (len > n) {
		len = n;
	}
	memcpy(buf, p, len);
	br_ssl_engine_recvapp_ack(t->eng, len);
	return (ssize_t)len;
}

ssize_t
tls_writev(struct tls_conn *t, int fd, const struct iovec *iov, int iovcnt)
{
	unsigned char *p = NULL;
	size_t total = 0, off = 0, len, m;
	int i = 0, r;

	if (t->closing && !t->failed) {
		snprintf(t->reason, sizeof t->reason,
		    "write after tls_shutdown");
		errno = EPIPE;
		return -1;
	}
	while (i < iovcnt) {
		if (off == iov[i].iov_len) {
			i++;
			off = 0;
			continue;
		}
		r = pump(t, fd, GOAL_SENDAPP);
		if (r != 0) {
			if (r < 0 && errno == EAGAIN && total > 0) {
				break;
			}
			if (r > 0) {
				errno = EPIPE;
			}
			return -1;
		}
		p = br_ssl_engine_sendapp_buf(t->eng, &len);
		m = iov[i].iov_len - off;
		if (m > len) {
			m = len;
		}
		memcpy(p, (const unsigned char *)iov[i].iov_base + off, m);
		br_ssl_engine_sendapp_ack(t->eng, m);
		off += m;
		total += m;
	}
	if (total == 0) {
		return 0;
	}
	/* Close the record now: the relay streams tokens as they come, and
	 * BearSSL would otherwise hold them until its buffer fills. */
	br_ssl_engine_flush(t->eng, 0);
	if (pump(t, fd, GOAL_FLUSH) < 0 && errno != EAGAIN) {
		return -1;
	}
	return (ssize_t)total;
}

ssize_t
tls_write(struct tls_conn *t, int fd, const void *buf, size_t n)
{
	struct iovec v;

	v.iov_base = (void *)(uintptr_t)buf;
	v.iov_len = n;
	return tls_writev(t, fd, &v, 1);
}

int
tls_flush_pending(struct tls_conn *t, int fd)
{
	return pump(t, fd, GOAL_FLUSH) < 0 ? -1 : 0;
}

int
tls_shutdown(struct tls_conn *t, int fd)
{
	if (!t->closing && !t->failed) {
		t->closing = 1;
		br_ssl_engine_close(t->eng);
	}
	return tls_flush_pending(t, fd);
}

short
tls_interest(const struct tls_conn *t)
{
	unsigned st;
	short ev = 0;

	if (t->failed) {
		return 0;
	}
	st = br_ssl_engine_current_state(t->eng);
	if (st == BR_SSL_CLOSED) {
		return 0;
	}
	if (st & BR_SSL_SENDREC) {
		ev |= POLLOUT;
	}
	if ((st & BR_SSL_RECVREC) && !t->eof) {
		ev |= POLLIN;
	}
	return ev;
}

size_t
tls_pending(const struct tls_conn *t)
{
	size_t len = 0;

	if (t->failed) {
		return 0;
	}
	/* The engine is const in spirit here: *_buf only reports. */
	br_ssl_engine_recvapp_buf(t->eng, &len);
	return len;
}

int
tls_quiet(const struct tls_conn *t)
{
	unsigned st;

	if (t->failed || t->eof || t->closing) {
		return 0;
	}
	st = br_ssl_engine_current_state(t->eng);
	return st != BR_SSL_CLOSED && (st & BR_SSL_SENDAPP) != 0 &&
	    (st & (BR_SSL_RECVAPP | BR_SSL_SENDREC)) == 0;
}

int
tls_handshake_done(const struct tls_conn *t)
{
	return t->hs_done;
}

int
tls_resumed(const struct tls_conn *t)
{
	return t->resumed;
}

int
tls_truncated(const struct tls_conn *t)
{
	return t->truncated;
}

const char *
tls_alpn(const struct tls_conn *t)
{
	return t->hs_done ? br_ssl_engine_get_selected_protocol(t->eng)
	    : NULL;
}

const char *
tls_error(const struct tls_conn *t)
{
	return t->reason[0] != 0 ? t->reason : NULL;
}
