/* mkroots: build-time tool. Reads a PEM CA bundle and writes C source
 * defining the roots that tls_anchors_load(NULL) uses, so a FROM-scratch
 * container verifies real providers without a ca_file.
 *
 * It parses the bundle with the very code the relay runs for ca_file
 * (src/tls_certs.c, included below), so the embedded set and a loaded file
 * never disagree. Only the DN and public key of each root are kept: that
 * is all BearSSL's minimal X.509 engine reads from an anchor. They are
 * written packed (roots_unpack in src/tls_certs.c says the form): the
 * keys back to back, the rest (key sizes, DNs without their SET and
 * SEQUENCE wrappers) LZ-packed with tools/lz.h. A key met before (the
 * same root twice in the bundle) is stored once. Before writing anything
 * mkroots unpacks its output with roots_unpack and compares every anchor
 * with the parsed bundle.
 *
 * Usage: mkroots [BUNDLE] > roots.c (default
 * /etc/ssl/certs/ca-certificates.crt). A missing bundle gives zero anchors
 * and a warning (the binary then needs ca_file); a broken one fails. The
 * output does not depend on the target, so cross builds can reuse a
 * natively generated file. */
#define TLS_NO_EMBEDDED_ROOTS
#include "../src/tls_certs.c"
#include "lz.h"

/* A growable byte buffer (exits when out of memory: a build tool). */
struct buf {
	unsigned char *p;
	size_t n, cap;
};

static void
put(struct buf *b, const void *p, size_t n)
{
	unsigned char *np = NULL;

	if (n > b->cap - b->n) {
		np = util_grow(b->p, &b->cap, b->n + n, 1);
		if (np == NULL) {
			fprintf(stderr, "mkroots: out of memory\n");
			exit(1);
		}
		b->p = np;
	}
	memcpy(b->p + b->n, p, n);
	b->n += n;
}

static void
put1(struct buf *b, size_t v)
{
	unsigned char c = (unsigned char)v;

	put(b, &c, 1);
}

static void
put2(struct buf *b, size_t v)
{
	put1(b, v >> 8);
	put1(b, v);
}

/* One DER length at p (short form, or 0x81/0x82); its value in *len.
 * Returns the bytes it takes, or 0 for another form. */
static size_t
der_len(const unsigned char *p, size_t avail, size_t *len)
{
	if (avail >= 1 && p[0] < 0x80) {
		*len = p[0];
		return 1;
	}
	if (avail >= 2 && p[0] == 0x81) {
		*len = p[1];
		return 2;
	}
	if (avail >= 3 && p[0] == 0x82) {
		*len = (size_t)p[1] << 8 | p[2];
		return 3;
	}
	return 0;
}

/* Append dn in the RDN form of dn_unpack when it fits that form and comes
 * back byte for byte; in the raw form otherwise. */
static void
put_dn(struct buf *meta, const unsigned char *dn, size_t dnlen)
{
	struct buf f;
	const unsigned char *m = NULL;
	unsigned char *back = NULL;
	size_t i, h, len, set, seq, n = 0;
	int ok = 0;

	memset(&f, 0, sizeof f);
	put1(&f, 0);			/* the count, set below */
	h = dnlen > 0 && dn[0] == 0x30 ? der_len(dn + 1, dnlen - 1, &len) : 0;
	if (h > 0 && 1 + h + len == dnlen) {
		ok = 1;
		for (i = 1 + h; ok && i < dnlen; i += 4 + seq) {
			/* SET (one SEQUENCE) of SEQUENCE, short lengths. */
			ok = dnlen - i >= 4 && dn[i] == 0x31 && dn[i + 2] == 0x30
			    && dn[i + 1] < 0x80 && dn[i + 3] < 0x80;
			set = ok ? dn[i + 1] : 0;
			seq = ok ? dn[i + 3] : 0;
			ok = ok && set == seq + 2 && seq >= 4
			    && i + 4 + seq <= dnlen && n < 255;
			if (ok) {
				put(&f, dn + i + 4, seq);
				n++;
			}
		}
	}
	if (ok && n > 0) {
		f.p[0] = (unsigned char)n;
		back = malloc(dnlen + 8);
		m = f.p;
		/* rdn_len() reads what the SEQUENCE holds, or it differs. */
		ok = back != NULL && dn_unpack(&m, back) == back + dnlen
		    && m == f.p + f.n && memcmp(back, dn, dnlen) == 0;
		free(back);
	}
	if (ok && n > 0) {
		put(meta, f.p, f.n);
	} else {
		put1(meta, 0);
		put2(meta, dnlen);
		put(meta, dn, dnlen);
	}
	free(f.p);
}

static void
emit(const char *name, const unsigned char *p, size_t n)
{
	size_t k;

	printf("const unsigned char %s[] = {", name);
	for (k = 0; k < n; k++) {
		printf("%s0x%02x%s", k % 12 ? "" : "\n\t", p[k],
		    k + 1 < n ? "," : "");
	}
	printf("\n};\n");
}

int
main(int argc, char **argv)
{
	const char *path = "/etc/ssl/certs/ca-certificates.crt";
	struct tls_anchors ta;
	const br_x509_trust_anchor *a = NULL;
	const br_rsa_public_key *rk = NULL;
	br_x509_trust_anchor *back = NULL;
	struct buf meta, keys;
	unsigned char *lz = NULL;
	size_t i, j, lz_len = 0, dn_len = 0;
	char err[512];
	FILE *f = NULL;
	int e65537;

	if (argc > 2) {
		fprintf(stderr, "usage: mkroots [BUNDLE] > roots.c\n");
		return 2;
	}
	if (argc == 2) {
		path = argv[1];
	}
	memset(&ta, 0, sizeof ta);
	memset(&meta, 0, sizeof meta);
	memset(&keys, 0, sizeof keys);
	f = fopen(path, "rb");
	if (f == NULL && errno == ENOENT) {
		fprintf(stderr, "mkroots: warning: %s not found; embedding "
		    "no trust anchors (set ca_file at run time)\n", path);
	} else {
		if (f != NULL) {
			fclose(f);
		}
		if (tls_anchors_load(&ta, path, err, sizeof err) < 0) {
			fprintf(stderr, "mkroots: %s\n", err);
			return 1;
		}
	}
	for (i = 0; i < ta.n; i++) {
		a = &ta.v[i];
		dn_len += a->dn.len;
		for (j = 0; j < i && !tls_pkey_eq(&ta.v[j].pkey, &a->pkey);
		    j++) {
		}
		if (a->dn.len > 0xffff || j > 0xffff) {
			fprintf(stderr, "mkroots: %s: root #%zu: DN too long\n",
			    path, i + 1);
			return 1;
		}
		if (j < i) {
			put1(&meta, 6 | (a->flags & BR_X509_TA_CA));
			put2(&meta, j);
		} else if (a->pkey.key_type == BR_KEYTYPE_RSA) {
			rk = &a->pkey.key.rsa;
			e65537 = rk->elen == sizeof rsa_e65537
			    && memcmp(rk->e, rsa_e65537, rk->elen) == 0;
			if (rk->nlen > 0xffff || rk->elen > 0xff) {
				fprintf(stderr, "mkroots: %s: root #%zu: RSA "
				    "key too long\n", path, i + 1);
				return 1;
			}
			put1(&meta, (e65537 ? 0 : 2)
			    | (a->flags & BR_X509_TA_CA));
			put2(&meta, rk->nlen);
			put(&keys, rk->n, rk->nlen);
			if (!e65537) {
				put1(&meta, rk->elen);
				put(&keys, rk->e, rk->elen);
			}
		} else {
			if (a->pkey.key.ec.qlen > 0xff
			    || a->pkey.key.ec.curve > 0xff) {
				fprintf(stderr, "mkroots: %s: root #%zu: EC "
				    "key too long\n", path, i + 1);
				return 1;
			}
			put1(&meta, 4 | (a->flags & BR_X509_TA_CA));
			put1(&meta, (size_t)a->pkey.key.ec.curve);
			put1(&meta, a->pkey.key.ec.qlen);
			put(&keys, a->pkey.key.ec.q, a->pkey.key.ec.qlen);
		}
		put_dn(&meta, a->dn.data, a->dn.len);
	}
	if (ta.n > 0) {
		lz = lz_pack(meta.p, meta.n, &lz_len);
		back = lz == NULL ? NULL : roots_unpack(lz, lz_len, meta.n,
		    keys.p, keys.n, ta.n, dn_len);
		for (i = 0; back != NULL && i < ta.n; i++) {
			a = &ta.v[i];
			if (!tls_anchor_eq(&back[i], a)) {
				break;
			}
		}
		if (back == NULL || i < ta.n) {
			fprintf(stderr, "mkroots: %s: the packed roots do not "
			    "unpack to the bundle's (root #%zu)\n", path, i + 1);
			return 1;
		}
		free(back);
	}

	printf("/* Generated by tools/mkroots from %s: %zu trust anchors\n"
	    " * (DN and public key of each root), packed as roots_unpack in\n"
	    " * src/tls_certs.c reads them. Do not edit. */\n"
	    "#include <stddef.h>\n\n", path, ta.n);
	if (ta.n == 0) {
		printf("const unsigned char tls_roots_lz[1], "
		    "tls_roots_keys[1];\n");
	} else {
		emit("tls_roots_lz", lz, lz_len);
		emit("tls_roots_keys", keys.p, keys.n);
	}
	printf("const size_t tls_roots_lz_len = %zu;\n"
	    "const size_t tls_roots_meta_len = %zu;\n"
	    "const size_t tls_roots_keys_len = %zu;\n"
	    "const size_t tls_roots_dn_len = %zu;\n"
	    "const size_t tls_embedded_count = %zu;\n",
	    lz_len, meta.n, keys.n, dn_len, ta.n);
	if (ta.skipped > 0) {
		fprintf(stderr, "mkroots: %s: skipped %zu certificates with "
		    "keys BearSSL cannot use\n", path, ta.skipped);
	}
	free(lz);
	free(meta.p);
	free(keys.p);
	tls_anchors_free(&ta);
	return ferror(stdout) ? 1 : 0;
}
