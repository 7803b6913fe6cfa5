/* tls_certs: the certificates and keys of the tls module (tls.h): trust
 * anchors for upstream validation, from a PEM bundle or compiled in, and
 * the chain, private key and session cache of an inbound TLS listener.
 * Read at startup or on reload, never on the pumping path (tls.c).
 *
 * Everything read goes through one PEM loader, pem_load(): the file is
 * read into a blob, each PEM object is decoded into another, and both are
 * wiped before they are freed, since a key file passes through them.
 *
 * Ownership: anchors and server certificates own their bytes; a server
 * certificate's key blob and session cache are wiped when it is freed.
 * tools/mkroots includes this file to compile the embedded roots. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bearssl.h"
#include "tls.h"
#include "util.h"

/* The embedded roots, packed (tools/mkroots writes them in build/roots.c;
 * roots_unpack() says the form): the keys back to back, the rest
 * LZ-packed (util_unlz), and the sizes unpacking needs. */
#ifdef TLS_NO_EMBEDDED_ROOTS
/* tools/mkroots includes this file to produce the embedded roots, so it
 * cannot link against them. */
static const unsigned char tls_roots_lz[1], tls_roots_keys[1];
static const size_t tls_roots_lz_len = 0, tls_roots_meta_len = 0,
    tls_roots_keys_len = 0, tls_roots_dn_len = 0, tls_embedded_count = 0;
#else
extern const unsigned char tls_roots_lz[], tls_roots_keys[];
extern const size_t tls_roots_lz_len, tls_roots_meta_len,
    tls_roots_keys_len, tls_roots_dn_len, tls_embedded_count;
#endif

enum {
	TLS_MAX_FILE = 16 << 20,	/* larger PEM files are refused */
	TLS_SERVER_SESSIONS = 128,	/* per server certificate */
	TLS_LRU_ENTRY = 100,		/* bytes per br_ssl_session_cache_lru entry */
	/* The session cache's store, after its context in one block. */
	TLS_CACHE_STORE = TLS_SERVER_SESSIONS * TLS_LRU_ENTRY
};

/* ---- growable byte blob (loading only, never on the pumping path) ---- */

struct blob {
	unsigned char *p;		/* owned */
	size_t n, cap;
	int oom;
};

/* Grows by copy-then-wipe rather than realloc (so not with util_grow):
 * blobs hold private keys and realloc may leave a stale copy in freed
 * memory. Doubling from 2 KiB, overflow-checked. */
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
		ncap = b->cap ? b->cap : 2048;
		while (ncap - b->n < len && ncap <= SIZE_MAX / 2) {
			ncap *= 2;
		}
		np = ncap - b->n < len ? NULL : malloc(ncap);
		if (np == NULL) {
			b->oom = 1;
			return;
		}
		if (b->n > 0) {
			memcpy(np, b->p, b->n);
			util_wipe(b->p, b->n);
		}
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
	if (b->n > 0) {
		util_wipe(b->p, b->n);
	}
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
	int rc = -1;

	memset(b, 0, sizeof *b);
	f = fopen(path, "rb");
	if (f == NULL) {
		return util_errf(err, errlen, "%s: %s", path, strerror(errno));
	}
	while ((k = fread(tmp, 1, sizeof tmp, f)) > 0) {
		if (b->n + k > TLS_MAX_FILE) {
			util_errf(err, errlen, "%s: file too large", path);
			goto out;
		}
		blob_append(b, tmp, k);
		if (b->oom) {
			util_errf(err, errlen, "%s: out of memory", path);
			goto out;
		}
	}
	if (ferror(f)) {
		util_errf(err, errlen, "%s: read error", path);
		goto out;
	}
	rc = 0;
out:
	fclose(f);
	util_wipe(tmp, sizeof tmp);
	if (rc < 0) {
		blob_free(b);
	}
	return rc;
}

/* ---- PEM ---- */

/* The PEM file being read, for the messages of the pem_fn callbacks. */
struct pem_file {
	const char *path;
	char *err;
	size_t errlen;
};

/* Called for each PEM object of pf with its label and decoded bytes;
 * returns 0 to go on, -1 to stop (having written pf->err). */
typedef int pem_fn(void *ctx, const struct pem_file *pf, const char *label,
    const unsigned char *der, size_t len);

static int
pem_each(const struct pem_file *pf, const unsigned char *buf, size_t len,
    pem_fn *fn, void *ctx)
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
				util_errf(pf->err, pf->errlen, "%s: out of memory",
				    pf->path);
				goto out;
			}
			if (fn(ctx, pf, label, obj.p, obj.n) < 0) {
				goto out;
			}
			if (obj.n > 0) {
				util_wipe(obj.p, obj.n);
			}
			obj.n = 0;
			break;
		case BR_PEM_ERROR:
			util_errf(pf->err, pf->errlen, "%s: invalid PEM "
			    "encoding%s%s", pf->path, inobj ? " in " : "",
			    inobj ? label : "");
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
		util_errf(pf->err, pf->errlen, "%s: unterminated PEM block "
		    "\"%s\"", pf->path, label);
		goto out;
	}
	rc = 0;
out:
	blob_free(&obj);
	return rc;
}

/* The one PEM loader: read path and hand each object in it to fn. The
 * file's bytes are wiped before they are freed (it may hold a key).
 * Returns 0, or -1 with "PATH: reason" in err. */
static int
pem_load(const char *path, pem_fn *fn, void *ctx, char *err, size_t errlen)
{
	struct pem_file pf;
	struct blob file;
	int rc;

	if (read_file(path, &file, err, errlen) < 0) {
		return -1;
	}
	pf.path = path;
	pf.err = err;
	pf.errlen = errlen;
	rc = pem_each(&pf, file.p, file.n, fn, ctx);
	blob_free(&file);
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
	size_t cap;			/* of ta->owned */
	size_t index;			/* certificates seen, for messages */
};

static int
add_anchor(void *vctx, const struct pem_file *pf, const char *label,
    const unsigned char *der, size_t len)
{
	struct anchor_ctx *c = vctx;
	struct tls_anchors *ta = c->ta;
	br_x509_trust_anchor a, *nv = NULL;
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
		return util_errf(pf->err, pf->errlen, "%s: certificate #%zu: "
		    "cannot decode (X.509 error %d)", pf->path, c->index, e);
	}
	nv = util_grow(ta->owned, &c->cap, ta->n + 1, sizeof *nv);
	if (nv == NULL) {
		free(a.dn.data);
		return util_errf(pf->err, pf->errlen, "%s: out of memory",
		    pf->path);
	}
	ta->owned = nv;
	ta->v = nv;
	ta->owned[ta->n++] = a;
	return 0;
}

/* ---- embedded roots ---- */

/* The common RSA exponent, implied in the packed form. */
static const unsigned char rsa_e65537[] = { 0x01, 0x00, 0x01 };

/* A DER tag and length (short form, or 0x81/0x82 and 1 or 2 bytes). */
static unsigned char *
der_head(unsigned char *p, unsigned tag, size_t len)
{
	*p++ = (unsigned char)tag;
	if (len > 255) {
		*p++ = 0x82;
		*p++ = (unsigned char)(len >> 8);
	} else if (len > 127) {
		*p++ = 0x81;
	}
	*p++ = (unsigned char)len;
	return p;
}

/* The length of an attribute's DER in the packed form: OID (tag, one
 * length byte, the OID), string tag, one length byte, the string. */
static size_t
rdn_len(const unsigned char *a)
{
	size_t k = 2 + (size_t)a[1];

	return k + 2 + a[k + 1];
}

/* Rebuild at d the DN packed at *mp (advanced past it); returns d's new
 * end. Packed: 0, a 2-byte length and the DER as is; or the count of
 * RDNs (one attribute each, SET and SEQUENCE under 128 bytes) and each
 * attribute's DER as rdn_len() reads it. mkroots keeps the second form
 * only when this function gives back the very same bytes. */
static unsigned char *
dn_unpack(const unsigned char **mp, unsigned char *d)
{
	const unsigned char *m = *mp, *a = NULL;
	size_t n = *m++, i, len = 0, k;

	if (n == 0) {
		len = (size_t)m[0] << 8 | m[1];
		memcpy(d, m + 2, len);
		*mp = m + 2 + len;
		return d + len;
	}
	for (a = m, i = 0; i < n; i++, a += k) {
		k = rdn_len(a);
		len += k + 4;
	}
	d = der_head(d, 0x30, len);
	for (i = 0; i < n; i++, m += k) {
		k = rdn_len(m);
		*d++ = 0x31;
		*d++ = (unsigned char)(k + 2);
		*d++ = 0x30;
		*d++ = (unsigned char)k;
		memcpy(d, m, k);
		d += k;
	}
	*mp = m;
	return d;
}

/* Unpack the anchors: one block with count anchors and, after them, their
 * DNs (dn_len bytes); the keys stay where they are (keys[], read-only).
 * The description (meta_len bytes once unpacked) has per anchor one byte
 * (bit 0: BR_X509_TA_CA; bits 1-2: the key, 0 RSA with exponent 65537
 * and the modulus length, 2 bytes; 1 RSA, modulus length (2 bytes) and
 * exponent length (1); 2 EC, the curve and the point length (1 byte
 * each); 3 the key of an earlier anchor, its index in 2 bytes), then
 * the DN (dn_unpack). Lengths are big-endian. mkroots checks its output
 * with this very function. Returns NULL when out of memory or when the
 * sizes do not add up. */
static br_x509_trust_anchor *
roots_unpack(const unsigned char *lz, size_t lz_len, size_t meta_len,
    const unsigned char *keys, size_t keys_len, size_t count, size_t dn_len)
{
	br_x509_trust_anchor *v = NULL, *a = NULL;
	unsigned char *meta = NULL, *d = NULL;
	unsigned char *k = (unsigned char *)(uintptr_t)keys;	/* read only */
	const unsigned char *m = NULL;
	size_t i, len;
	unsigned t;

	v = malloc(count * sizeof *v + dn_len);
	meta = malloc(meta_len);
	if (v == NULL || meta == NULL
	    || util_unlz(lz, lz_len, meta, meta_len) < 0) {
		goto fail;
	}
	d = (unsigned char *)(v + count);
	for (m = meta, i = 0; i < count; i++) {
		a = &v[i];
		memset(a, 0, sizeof *a);
		t = *m++;
		a->flags = t & BR_X509_TA_CA;
		a->pkey.key_type = BR_KEYTYPE_RSA;
		len = (size_t)m[0] << 8 | m[1];
		switch (t >> 1) {
		case 0:
		case 1:
			a->pkey.key.rsa.n = k;
			a->pkey.key.rsa.nlen = len;
			k += len;
			m += 2;
			a->pkey.key.rsa.e = (unsigned char *)(uintptr_t)rsa_e65537;
			a->pkey.key.rsa.elen = sizeof rsa_e65537;
			if (t >> 1) {
				a->pkey.key.rsa.e = k;
				a->pkey.key.rsa.elen = *m;
				k += *m++;
			}
			break;
		case 2:
			a->pkey.key_type = BR_KEYTYPE_EC;
			a->pkey.key.ec.curve = m[0];
			a->pkey.key.ec.q = k;
			a->pkey.key.ec.qlen = m[1];
			k += m[1];
			m += 2;
			break;
		default:
			if (len >= i) {
				goto fail;
			}
			a->pkey = v[len].pkey;
			m += 2;
		}
		a->dn.data = d;
		d = dn_unpack(&m, d);
		a->dn.len = (size_t)(d - a->dn.data);
	}
	if (m != meta + meta_len || k != keys + keys_len
	    || d != (unsigned char *)(v + count) + dn_len) {
		goto fail;
	}
	free(meta);
	return v;
fail:
	free(meta);
	free(v);
	return NULL;
}

const br_x509_trust_anchor *
tls_anchors_get(const struct tls_anchors *ta)
{
	/* Unpacked on first use, once per process, and kept: every set
	 * loaded without a ca_file shares it. */
	static br_x509_trust_anchor *embedded;

	if (ta->v != NULL || ta->n == 0) {
		return ta->v;
	}
	if (embedded == NULL) {
		embedded = roots_unpack(tls_roots_lz, tls_roots_lz_len,
		    tls_roots_meta_len, tls_roots_keys, tls_roots_keys_len,
		    tls_embedded_count, tls_roots_dn_len);
	}
	return embedded;
}

/* ---- loading ---- */

int
tls_anchors_load(struct tls_anchors *ta, const char *ca_file,
    char *err, size_t errlen)
{
	struct anchor_ctx c;

	memset(ta, 0, sizeof *ta);
	if (ca_file == NULL) {
		/* ta->v stays NULL: tls_anchors_get() unpacks them. */
		ta->n = tls_embedded_count;
		snprintf(ta->source, sizeof ta->source,
		    "embedded (%zu roots from the build machine's CA bundle)",
		    ta->n);
		return 0;
	}
	memset(&c, 0, sizeof c);
	c.ta = ta;
	if (pem_load(ca_file, add_anchor, &c, err, errlen) < 0) {
		goto fail;
	}
	if (ta->n == 0) {
		if (c.index > 0) {
			util_errf(err, errlen, "%s: no certificate with an RSA "
			    "or EC key", ca_file);
		} else {
			util_errf(err, errlen, "%s: no PEM \"BEGIN "
			    "CERTIFICATE\" block found", ca_file);
		}
		goto fail;
	}
	snprintf(ta->source, sizeof ta->source, "%s", ca_file);
	return 0;
fail:
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
	size_t cap;			/* of sc->chain */
};

static int
add_chain_cert(void *vctx, const struct pem_file *pf, const char *label,
    const unsigned char *der, size_t len)
{
	struct chain_ctx *c = vctx;
	struct tls_server_cert *sc = c->sc;
	br_x509_certificate *nv = NULL;
	unsigned char *copy = NULL;

	if (!is_cert_label(label)) {
		return 0;
	}
	nv = util_grow(sc->chain, &c->cap, sc->chain_len + 1, sizeof *nv);
	if (nv == NULL) {
		goto oom;
	}
	sc->chain = nv;
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
	return util_errf(pf->err, pf->errlen, "%s: out of memory", pf->path);
}

struct key_ctx {
	br_skey_decoder_context dc;
	int found;
};

static int
add_key(void *vctx, const struct pem_file *pf, const char *label,
    const unsigned char *der, size_t len)
{
	struct key_ctx *c = vctx;

	if (c->found) {
		return 0;
	}
	if (strcmp(label, "ENCRYPTED PRIVATE KEY") == 0) {
		return util_errf(pf->err, pf->errlen, "%s: encrypted private "
		    "keys are not supported (decrypt it with openssl pkey)",
		    pf->path);
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
		return util_errf(pf->err, pf->errlen, "%s: cannot decode the "
		    "private key (RSA or EC P-256/P-384/P-521 expected; "
		    "BearSSL error %d)", pf->path,
		    br_skey_decoder_last_error(&c->dc));
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

/* Copy the RSA key rk into one owned blob (sc->key_blob) that sc->rsa
 * points into. Returns 0, or -1 when out of memory. */
static int
copy_rsa_key(struct tls_server_cert *sc, const br_rsa_private_key *rk)
{
	unsigned char **dst[5] = { &sc->rsa.p, &sc->rsa.q, &sc->rsa.dp,
	    &sc->rsa.dq, &sc->rsa.iq };
	const unsigned char *src[5] = { rk->p, rk->q, rk->dp, rk->dq, rk->iq };
	const size_t len[5] = { rk->plen, rk->qlen, rk->dplen, rk->dqlen,
	    rk->iqlen };
	unsigned char *p = NULL;
	size_t i;

	sc->rsa = *rk;
	sc->key_len = 0;
	for (i = 0; i < 5; i++) {
		sc->key_len += len[i];
	}
	p = sc->key_blob = malloc(sc->key_len);
	if (p == NULL) {
		return -1;
	}
	for (i = 0; i < 5; i++) {
		*dst[i] = p;
		memcpy(p, src[i], len[i]);
		p += len[i];
	}
	return 0;
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
	const br_ec_private_key *ek = NULL;
	br_x509_pkey *pk = NULL;
	br_ec_public_key pub;
	unsigned char tmp[BR_EC_KBUF_PUB_MAX_SIZE + 520];
	size_t n;
	int match = 0;

	br_x509_decoder_init(&xd, NULL, NULL);
	br_x509_decoder_push(&xd, sc->chain[0].data, sc->chain[0].data_len);
	pk = br_x509_decoder_get_pkey(&xd);
	if (pk == NULL) {
		return util_errf(err, errlen, "%s: cannot decode the first "
		    "certificate (X.509 error %d)", cert_path,
		    br_x509_decoder_last_error(&xd));
	}
	sc->key_type = br_skey_decoder_key_type(dc);
	if (sc->key_type == BR_KEYTYPE_RSA) {
		if (copy_rsa_key(sc, br_skey_decoder_get_rsa(dc)) < 0) {
			goto oom;
		}
		if (pk->key_type == BR_KEYTYPE_RSA
		    && br_rsa_compute_modulus_get_default()(NULL, &sc->rsa)
		    <= sizeof tmp) {
			n = br_rsa_compute_modulus_get_default()(tmp, &sc->rsa);
			match = n > 0 && int_eq(tmp, n, pk->key.rsa.n,
			    pk->key.rsa.nlen);
		}
	} else if (sc->key_type == BR_KEYTYPE_EC) {
		ek = br_skey_decoder_get_ec(dc);
		sc->key_len = ek->xlen;
		sc->key_blob = malloc(ek->xlen ? ek->xlen : 1);
		if (sc->key_blob == NULL) {
			goto oom;
		}
		sc->ec = *ek;
		sc->ec.x = sc->key_blob;
		memcpy(sc->ec.x, ek->x, ek->xlen);
		if (pk->key_type == BR_KEYTYPE_EC
		    && pk->key.ec.curve == ek->curve
		    && br_ec_compute_pub(br_ec_get_default(), &pub, tmp,
		    &sc->ec) > 0) {
			match = pub.qlen == pk->key.ec.qlen
			    && memcmp(pub.q, pk->key.ec.q, pub.qlen) == 0;
		}
	} else {
		return util_errf(err, errlen, "%s: unsupported key type",
		    key_path);
	}
	util_wipe(tmp, sizeof tmp);
	if (!match) {
		return util_errf(err, errlen, "%s: private key does not match "
		    "the certificate in %s", key_path, cert_path);
	}
	return 0;
oom:
	return util_errf(err, errlen, "%s: out of memory", key_path);
}

int
tls_server_cert_load(struct tls_server_cert *sc, const char *cert_path,
    const char *key_path, char *err, size_t errlen)
{
	struct chain_ctx cc;
	struct key_ctx *kc = NULL;

	memset(sc, 0, sizeof *sc);
	memset(&cc, 0, sizeof cc);
	cc.sc = sc;
	if (pem_load(cert_path, add_chain_cert, &cc, err, errlen) < 0) {
		goto fail;
	}
	if (sc->chain_len == 0) {
		util_errf(err, errlen, "%s: no PEM \"BEGIN CERTIFICATE\" block "
		    "found", cert_path);
		goto fail;
	}

	/* The skey decoder context holds the decoded key: heap, wiped. */
	kc = calloc(1, sizeof *kc);
	if (kc == NULL) {
		util_errf(err, errlen, "%s: out of memory", key_path);
		goto fail;
	}
	if (pem_load(key_path, add_key, kc, err, errlen) < 0) {
		goto fail;
	}
	if (!kc->found) {
		util_errf(err, errlen, "%s: no PEM private key block found",
		    key_path);
		goto fail;
	}
	if (take_key(sc, &kc->dc, cert_path, key_path, err, errlen) < 0) {
		goto fail;
	}
	util_wipe(kc, sizeof *kc);
	free(kc);
	kc = NULL;

	sc->cache = calloc(1, sizeof *sc->cache + TLS_CACHE_STORE);
	if (sc->cache == NULL) {
		util_errf(err, errlen, "%s: out of memory", cert_path);
		goto fail;
	}
	br_ssl_session_cache_lru_init(sc->cache,
	    (unsigned char *)(sc->cache + 1), TLS_CACHE_STORE);
	return 0;
fail:
	if (kc != NULL) {
		util_wipe(kc, sizeof *kc);
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
		util_wipe(sc->key_blob, sc->key_len);
		free(sc->key_blob);
	}
	if (sc->cache != NULL) {
		util_wipe(sc->cache, sizeof *sc->cache + TLS_CACHE_STORE);
		free(sc->cache);
	}
	util_wipe(sc, sizeof *sc);
}

int
tls_pkey_eq(const br_x509_pkey *a, const br_x509_pkey *b)
{
	if (a->key_type != b->key_type) {
		return 0;
	}
	if (a->key_type == BR_KEYTYPE_RSA) {
		return a->key.rsa.nlen == b->key.rsa.nlen
		    && a->key.rsa.elen == b->key.rsa.elen
		    && memcmp(a->key.rsa.n, b->key.rsa.n, a->key.rsa.nlen) == 0
		    && memcmp(a->key.rsa.e, b->key.rsa.e, a->key.rsa.elen) == 0;
	}
	return a->key_type == BR_KEYTYPE_EC
	    && a->key.ec.curve == b->key.ec.curve
	    && a->key.ec.qlen == b->key.ec.qlen
	    && memcmp(a->key.ec.q, b->key.ec.q, a->key.ec.qlen) == 0;
}

int
tls_anchor_eq(const br_x509_trust_anchor *a, const br_x509_trust_anchor *b)
{
	return a->flags == b->flags && a->dn.len == b->dn.len
	    && memcmp(a->dn.data, b->dn.data, a->dn.len) == 0
	    && tls_pkey_eq(&a->pkey, &b->pkey);
}
