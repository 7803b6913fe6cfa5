/* test_tls: trust anchors (system bundle, embedded roots, broken files),
 * server certificate loading, and in-process handshakes between
 * tls_client_new and tls_server_new over a non-blocking socketpair driven
 * by poll(), with certificates made by the openssl CLI at test time:
 * success with data both ways and session resumption, and one distinct
 * reason per failure (untrusted, wrong name, expired, plain HTTP, closed,
 * alert). A hang fails the test after a few seconds instead of blocking. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "t.h"
#include "tls.h"

#define SYSTEM_BUNDLE "/etc/ssl/certs/ca-certificates.crt"

static char dir[64];
static char path_buf[8][256];
static int path_next;

/* A path inside the temp dir (a few live at once). */
static const char *
P(const char *name)
{
	char *p = path_buf[path_next++ % 8];

	snprintf(p, 256, "%s/%s", dir, name);
	return p;
}

/* tls_writev of one buffer. */
static ssize_t
write_plain(struct tls_conn *t, int fd, const void *buf, size_t n)
{
	struct iovec v;

	v.iov_base = (void *)(uintptr_t)buf;
	v.iov_len = n;
	return tls_writev(t, fd, &v, 1);
}

static void
write_text(const char *name, const char *text)
{
	FILE *f = fopen(P(name), "w");

	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
}

/* Throwaway PKI. OpenSSL 3.0's req/x509 cannot set a notBefore in the
 * past, so the expired certificate goes through `openssl ca`, which takes
 * explicit -startdate/-enddate. */
static const char gen_script[] =
	"set -e\n"
	"exec 2>gen.log >&2\n"
	"ca() {\n"
	"  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	"-nodes -keyout $1.key -out $1.pem -days 3 -subj \"/CN=$2\" "
	"-addext basicConstraints=critical,CA:TRUE "
	"-addext keyUsage=critical,keyCertSign,cRLSign\n"
	"}\n"
	"leaf() {\n"
	"  openssl req -new -key $1 -subj /CN=$2 -out $5.csr\n"
	"  printf 'subjectAltName=DNS:%s\\nkeyUsage=critical,"
	"digitalSignature\\n' $2 > $5.ext\n"
	"  openssl x509 -req -in $5.csr -CA $3.pem -CAkey $3.key "
	"-set_serial $4 -days 3 -extfile $5.ext -out $5\n"
	"}\n"
	"ca ca 'Relay Test CA'\n"
	"ca other 'Relay Other CA'\n"
	"openssl ecparam -name prime256v1 -genkey -noout -out ec.key\n"
	"openssl ecparam -name prime256v1 -genkey -noout -out ec2.key\n"
	"openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 "
	"-out rsa.key\n"
	"openssl pkey -in ec.key -aes128 -passout pass:x -out enc.key\n"
	"{ echo '# Issuer: Relay Test CA'; cat ca.pem; "
	"echo '# Issuer: Relay Other CA'; printf %s \"$(cat other.pem)\"; "
	"} > bundle.pem\n"
	"leaf ec.key localhost ca 11 ec-leaf.pem\n"
	"cat ec-leaf.pem ca.pem > ec-chain.pem\n"
	"leaf rsa.key localhost ca 12 rsa-chain.pem\n"
	"leaf ec.key wrong.example ca 13 wrong.pem\n"
	"leaf ec.key localhost other 14 other-leaf.pem\n"
	"cat > ca.cnf <<EOF\n"
	"[ca]\n"
	"default_ca = d\n"
	"[d]\n"
	"database = index.txt\n"
	"new_certs_dir = .\n"
	"serial = serial\n"
	"default_md = sha256\n"
	"policy = p\n"
	"unique_subject = no\n"
	"[p]\n"
	"commonName = supplied\n"
	"[leaf]\n"
	"subjectAltName = DNS:localhost\n"
	"keyUsage = critical,digitalSignature\n"
	"EOF\n"
	": > index.txt\n"
	"echo 1000 > serial\n"
	"openssl req -new -key ec.key -subj /CN=localhost -out exp.csr\n"
	"openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key "
	"-in exp.csr -out expired.pem -startdate 20200101000000Z "
	"-enddate 20200201000000Z -extensions leaf -notext\n";

static int
make_pki(void)
{
	char cmd[256];

	write_text("gen.sh", gen_script);
	snprintf(cmd, sizeof cmd, "cd %s && sh gen.sh", dir);
	if (system(cmd) != 0) {
		snprintf(cmd, sizeof cmd, "cat %s/gen.log", dir);
		if (system(cmd) != 0) {
			printf("(no log)\n");
		}
		return -1;
	}
	return 0;
}

/* ---- a poll() driver for two ends of a socketpair ---- */

enum raw_mode {
	RAW_NONE,		/* a tls_conn end */
	RAW_HTTP400,		/* answer the ClientHello like an HTTP server */
	RAW_CLOSE,		/* hang up after the ClientHello */
	RAW_ALERT,		/* answer with a fatal handshake_failure alert */
	RAW_GET			/* talk plain HTTP to a TLS server */
};

struct end {
	struct tls_conn *t;
	int fd;
	enum raw_mode raw;
	int raw_sent;
	const unsigned char *out;	/* plaintext to send */
	size_t out_len, out_off;
	unsigned char *in;		/* plaintext received */
	size_t in_cap, in_len, want;
	int eof;
	int err;
};

static void
raw_step(struct end *e)
{
	static const char http400[] = "HTTP/1.1 400 Bad Request\r\n"
	    "Content-Length: 0\r\nConnection: close\r\n\r\n";
	static const unsigned char alert[] = { 0x15, 0x03, 0x03, 0x00, 0x02,
	    0x02, 0x28 };
	static const char get[] = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
	unsigned char tmp[4096];
	ssize_t r;
	int got = 0;

	if (e->fd < 0) {
		return;
	}
	if (e->raw == RAW_GET && !e->raw_sent) {
		e->raw_sent = write(e->fd, get, sizeof get - 1) > 0;
	}
	while ((r = read(e->fd, tmp, sizeof tmp)) > 0) {
		got = 1;
	}
	if (!got || e->raw_sent) {
		return;
	}
	switch (e->raw) {
	case RAW_HTTP400:
		e->raw_sent = write(e->fd, http400, sizeof http400 - 1) > 0;
		break;
	case RAW_ALERT:
		e->raw_sent = write(e->fd, alert, sizeof alert) > 0;
		break;
	case RAW_CLOSE:
		close(e->fd);
		e->fd = -1;
		e->raw_sent = 1;
		break;
	default:
		break;
	}
}

static void
tls_step(struct end *e)
{
	ssize_t r;

	if (e->err) {
		return;
	}
	if (!tls_handshake_done(e->t)) {
		if (tls_handshake(e->t, e->fd) < 0) {
			e->err = errno != EAGAIN;
			return;
		}
	}
	if (e->out_off < e->out_len) {
		r = write_plain(e->t, e->fd, e->out + e->out_off,
		    e->out_len - e->out_off);
		if (r > 0) {
			e->out_off += (size_t)r;
		} else if (errno != EAGAIN) {
			e->err = 1;
			return;
		}
	}
	if (tls_interest(e->t, POLLIN | POLLOUT) & POLLOUT) {
		if (tls_flush_pending(e->t, e->fd) < 0 && errno != EAGAIN) {
			e->err = 1;
			return;
		}
	}
	/* Read until EAGAIN: decrypted bytes can wait inside the engine
	 * with nothing left on the socket to wake poll(). */
	while (e->in_len < e->in_cap) {
		r = tls_read(e->t, e->fd, e->in + e->in_len,
		    e->in_cap - e->in_len);
		if (r > 0) {
			e->in_len += (size_t)r;
			continue;
		}
		if (r == 0) {
			e->eof = 1;
		} else if (errno != EAGAIN) {
			e->err = 1;
		}
		break;
	}
}

static int
end_done(const struct end *e)
{
	if (e->raw != RAW_NONE) {
		return 1;
	}
	return e->err || (e->out_off == e->out_len && e->in_len >= e->want
	    && tls_handshake_done(e->t) && !(tls_interest(e->t, POLLIN | POLLOUT) & POLLOUT));
}

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Run both ends until both are done or one fails. Returns 0, or -1 after
 * 10 s (a hang, or a busy loop). */
static int
run(struct end *a, struct end *b)
{
	struct end *ends[2];
	struct pollfd pfd[2];
	long long deadline = now_ms() + 10000;
	int i;

	ends[0] = a;
	ends[1] = b;
	for (;;) {
		for (i = 0; i < 2; i++) {
			if (ends[i]->raw != RAW_NONE) {
				raw_step(ends[i]);
			} else {
				tls_step(ends[i]);
			}
		}
		if (a->err || b->err || (end_done(a) && end_done(b))) {
			return 0;
		}
		for (i = 0; i < 2; i++) {
			pfd[i].fd = ends[i]->fd;
			pfd[i].events = ends[i]->raw != RAW_NONE ? POLLIN
			    : tls_interest(ends[i]->t, POLLIN | POLLOUT);
			pfd[i].revents = 0;
		}
		if (poll(pfd, 2, 100) < 0 || now_ms() > deadline) {
			return -1;
		}
	}
}

static void
pair(int fds[2])
{
	int i, small = 8192;

	if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) < 0) {
		perror("socketpair");
		exit(1);
	}
	for (i = 0; i < 2; i++) {
		fcntl(fds[i], F_SETFL, fcntl(fds[i], F_GETFL) | O_NONBLOCK);
		/* Small buffers force EAGAIN and partial record writes. */
		setsockopt(fds[i], SOL_SOCKET, SO_SNDBUF, &small,
		    sizeof small);
	}
}

static void
end_init(struct end *e, struct tls_conn *t, int fd, enum raw_mode raw)
{
	memset(e, 0, sizeof *e);
	e->t = t;
	e->fd = fd;
	e->raw = raw;
}

static char client_reason[320], server_reason[320];

/* One connection of a client for "localhost" (anchors ta) to a server with
 * certificate sc, or to a raw peer when sc is NULL; "ping" and "pong" are
 * exchanged. Returns 0 on success, else -1 with the reasons above. */
static int
attempt(const struct tls_anchors *ta, const struct tls_server_cert *sc,
    enum raw_mode raw, int *resumed)
{
	struct tls_conn *c = NULL, *s = NULL;
	struct end ce, se;
	char err[256];
	unsigned char cin[64], sin[64];
	int fds[2], rc;

	client_reason[0] = server_reason[0] = 0;
	pair(fds);
	c = tls_client_new(ta, "localhost", err, sizeof err);
	if (c == NULL) {
		snprintf(client_reason, sizeof client_reason, "new: %s", err);
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	if (sc != NULL) {
		s = tls_server_new(sc, err, sizeof err);
	}
	end_init(&ce, c, fds[0], RAW_NONE);
	end_init(&se, s, fds[1], sc != NULL ? RAW_NONE : raw);
	ce.out = (const unsigned char *)"ping";
	ce.out_len = 4;
	ce.in = cin;
	ce.in_cap = sizeof cin;
	ce.want = 4;
	se.out = (const unsigned char *)"pong";
	se.out_len = 4;
	se.in = sin;
	se.in_cap = sizeof sin;
	se.want = 4;
	rc = run(&ce, &se);
	if (rc < 0) {
		snprintf(client_reason, sizeof client_reason, "(hang)");
	} else if (tls_error(c) != NULL) {
		snprintf(client_reason, sizeof client_reason, "%s",
		    tls_error(c));
	}
	if (ce.err && s != NULL) {
		/* Let the server take in what the failing client sent. */
		close(fds[0]);
		fds[0] = -1;
		tls_step(&se);
	}
	if (s != NULL && tls_error(s) != NULL) {
		snprintf(server_reason, sizeof server_reason, "%s",
		    tls_error(s));
	}
	if (resumed != NULL) {
		*resumed = tls_resumed(c);
	}
	if (rc == 0 && !ce.err && !se.err && sc != NULL) {
		rc = ce.in_len == 4 && memcmp(cin, "pong", 4) == 0
		    && se.in_len == 4 && memcmp(sin, "ping", 4) == 0 ? 0 : -1;
		if (rc < 0) {
			snprintf(client_reason, sizeof client_reason,
			    "(data mismatch)");
		}
	} else {
		rc = -1;
	}
	tls_free(c);
	tls_free(s);
	if (se.fd >= 0) {
		close(se.fd);
	}
	if (fds[0] >= 0) {
		close(fds[0]);
	}
	return rc;
}

/* ---- tests ---- */

/* Roots the Debian bundle does not have, through tools/mkroots (which
 * unpacks its output with the relay's code and compares every anchor
 * with the bundle before writing, exiting 1 when they differ): a
 * multi-valued RDN (kept as raw DER), a DN over 255 bytes (a 2-byte DER
 * length), RSA exponent 3, and the same root twice (its key stored once).
 * Run from the repository root (build/mkroots), as tests/run.sh does. */
static void
test_mkroots_forms(void)
{
	static const char script[] =
	    "set -e\nexec 2>odd.log >&2\n"
	    "l=$(printf '%060d' 0)\n"
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 "
	    "-nodes -keyout m.key -out m.pem -days 3 -multivalue-rdn "
	    "-subj '/CN=multi+OU=valued/O=Relay Test'\n"
	    "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-384 "
	    "-nodes -keyout l.key -out l.pem -days 3 "
	    "-subj \"/C=US/O=o$l/OU=u$l/OU=v$l/CN=c$l/L=l$l\"\n"
	    "openssl req -x509 -newkey rsa:1024 -pkeyopt rsa_keygen_pubexp:3 "
	    "-nodes -keyout e.key -out e.pem -days 3 -subj /CN=exponent-3\n"
	    "cat m.pem l.pem e.pem m.pem > odd.pem\n";
	char cmd[512];
	FILE *f = NULL;
	char out[8192];
	size_t n = 0;

	write_text("odd.sh", script);
	snprintf(cmd, sizeof cmd, "cd %s && sh odd.sh", dir);
	ok(system(cmd) == 0, "openssl made the odd roots (%s/odd.log)", dir);
	snprintf(cmd, sizeof cmd, "build/mkroots %s > %s 2>&1", P("odd.pem"),
	    P("odd.c"));
	ok(system(cmd) == 0, "mkroots packs and unpacks the odd roots "
	    "(%s, run from the repository root)", P("odd.c"));
	f = fopen(P("odd.c"), "r");
	if (f != NULL) {
		n = fread(out, 1, sizeof out - 1, f);
		fclose(f);
	}
	out[n] = 0;
	ok(strstr(out, "tls_embedded_count = 4;") != NULL,
	    "4 odd roots packed");
}

/* The embedded roots (stored packed, unpacked on first use) are the
 * bundle's, anchor for anchor in its order: flags, DN bytes, key. */
static void
same_anchors(const struct tls_anchors *emb, const struct tls_anchors *file)
{
	const br_x509_trust_anchor *e = tls_anchors_get(emb);
	const br_x509_trust_anchor *f = tls_anchors_get(file);
	struct tls_anchors again;
	char err[256];
	size_t i, bad = 0, rsa = 0, ec = 0;

	ok(e != NULL && f != NULL, "anchors unpacked");
	if (e == NULL || f == NULL) {
		return;
	}
	for (i = 0; i < tls_anchors_count(file); i++) {
		if (!tls_anchor_eq(&e[i], &f[i])) {
			if (bad++ == 0) {
				ok(0, "embedded root #%zu differs from the "
				    "bundle's", i + 1);
			}
		}
		rsa += f[i].pkey.key_type == BR_KEYTYPE_RSA;
		ec += f[i].pkey.key_type == BR_KEYTYPE_EC;
	}
	ok(bad == 0, "%zu of %zu embedded roots differ from the bundle's", bad,
	    tls_anchors_count(file));
	ok(rsa > 0 && ec > 0, "both key types compared (RSA %zu, EC %zu)",
	    rsa, ec);
	/* Unpacked once per process: another embedded set shares it. */
	ok_int(tls_anchors_load(&again, NULL, err, sizeof err), 0,
	    "embedded again");
	ok(tls_anchors_get(&again) == e, "embedded roots unpacked once");
	tls_anchors_free(&again);
}

static void
test_anchors(void)
{
	struct tls_anchors ta, sys;
	char err[512], want[512];
	size_t n;

	ok_int(tls_anchors_load(&ta, NULL, err, sizeof err), 0, "embedded");
	n = tls_anchors_count(&ta);
	ok(n > 100, "embedded roots: %zu, want > 100", n);
	snprintf(want, sizeof want,
	    "embedded (%zu roots from the build machine's CA bundle)", n);
	ok_str(tls_anchors_source(&ta), want, "embedded source");

	ok_int(tls_anchors_load(&sys, SYSTEM_BUNDLE, err, sizeof err), 0,
	    "system bundle");
	ok_int(tls_anchors_count(&sys), n, "system bundle = embedded");
	ok_str(tls_anchors_source(&sys), SYSTEM_BUNDLE, "file source");
	same_anchors(&ta, &sys);
	tls_anchors_free(&sys);
	tls_anchors_free(&ta);
	ok_int(tls_anchors_count(&ta), 0, "freed");

	ok_int(tls_anchors_load(&ta, P("missing.pem"), err, sizeof err), -1,
	    "missing file");
	snprintf(want, sizeof want, "%s: No such file or directory",
	    P("missing.pem"));
	ok_str(err, want, "missing file reason");

	write_text("trunc.pem", "-----BEGIN CERTIFICATE-----\n"
	    "MIIBszCCAVmgAwIBAgIU\n");
	ok_int(tls_anchors_load(&ta, P("trunc.pem"), err, sizeof err), -1,
	    "truncated PEM");
	snprintf(want, sizeof want,
	    "%s: unterminated PEM block \"CERTIFICATE\"", P("trunc.pem"));
	ok_str(err, want, "truncated PEM reason");

	write_text("garbage.pem", "-----BEGIN CERTIFICATE-----\n"
	    "!!!! not base64 !!!!\n-----END CERTIFICATE-----\n");
	ok_int(tls_anchors_load(&ta, P("garbage.pem"), err, sizeof err), -1,
	    "bad base64");
	snprintf(want, sizeof want, "%s: invalid PEM encoding in CERTIFICATE",
	    P("garbage.pem"));
	ok_str(err, want, "bad base64 reason");

	/* Valid base64 that is not a certificate ("hello world"). */
	write_text("notcert.pem", "-----BEGIN CERTIFICATE-----\n"
	    "aGVsbG8gd29ybGQ=\n-----END CERTIFICATE-----\n");
	ok_int(tls_anchors_load(&ta, P("notcert.pem"), err, sizeof err), -1,
	    "not a certificate");
	ok(strstr(err, "certificate #1: cannot decode") != NULL,
	    "not a certificate reason: %s", err);

	ok_int(tls_anchors_load(&ta, P("ec.key"), err, sizeof err), -1,
	    "key file as bundle");
	snprintf(want, sizeof want,
	    "%s: no PEM \"BEGIN CERTIFICATE\" block found", P("ec.key"));
	ok_str(err, want, "key file as bundle reason");

	ok_int(tls_anchors_load(&ta, P("ca.pem"), err, sizeof err), 0,
	    "test CA");
	ok_int(tls_anchors_count(&ta), 1, "test CA count");
	tls_anchors_free(&ta);
	/* Comment lines between blocks, no newline at the very end. */
	ok_int(tls_anchors_load(&ta, P("bundle.pem"), err, sizeof err), 0,
	    "bundle with comments");
	ok_int(tls_anchors_count(&ta), 2, "bundle count");
	tls_anchors_free(&ta);
}

static void
test_server_cert(void)
{
	struct tls_server_cert sc;
	char err[512], want[512];

	ok_int(tls_server_cert_load(&sc, P("ec-chain.pem"), P("ec.key"), err,
	    sizeof err), 0, "EC chain + SEC1 key");
	ok_int(sc.chain_len, 2, "EC chain length");
	tls_server_cert_free(&sc);
	ok_int(tls_server_cert_load(&sc, P("rsa-chain.pem"), P("rsa.key"),
	    err, sizeof err), 0, "RSA cert + PKCS#8 key");
	tls_server_cert_free(&sc);

	ok_int(tls_server_cert_load(&sc, P("ec-chain.pem"), P("ec2.key"),
	    err, sizeof err), -1, "mismatched key");
	snprintf(want, sizeof want, "%s: private key does not match the "
	    "certificate in %s", P("ec2.key"), P("ec-chain.pem"));
	ok_str(err, want, "mismatched key reason");
	ok_int(tls_server_cert_load(&sc, P("rsa-chain.pem"), P("ec.key"),
	    err, sizeof err), -1, "EC key for RSA cert");
	ok_int(tls_server_cert_load(&sc, P("ec-chain.pem"), P("enc.key"),
	    err, sizeof err), -1, "encrypted key");
	ok(strstr(err, "encrypted private keys are not supported") != NULL,
	    "encrypted key reason: %s", err);
	ok_int(tls_server_cert_load(&sc, P("ec-chain.pem"), P("ca.pem"),
	    err, sizeof err), -1, "no key");
	snprintf(want, sizeof want, "%s: no PEM private key block found",
	    P("ca.pem"));
	ok_str(err, want, "no key reason");
	ok_int(tls_server_cert_load(&sc, P("ec.key"), P("ec.key"),
	    err, sizeof err), -1, "no cert");
}

static const char expired_reason[] = "certificate expired or not yet "
    "valid at this system's clock (20";

static void
test_handshakes(void)
{
	struct tls_anchors ca, other;
	struct tls_server_cert ec, rsa, wrong, expired, untrusted;
	char err[512];
	int resumed = -1;

	tls_anchors_load(&ca, P("ca.pem"), err, sizeof err);
	tls_anchors_load(&other, P("other.pem"), err, sizeof err);
	ok_int(tls_server_cert_load(&ec, P("ec-chain.pem"), P("ec.key"), err,
	    sizeof err), 0, "load ec");
	ok_int(tls_server_cert_load(&rsa, P("rsa-chain.pem"), P("rsa.key"),
	    err, sizeof err), 0, "load rsa");
	ok_int(tls_server_cert_load(&wrong, P("wrong.pem"), P("ec.key"), err,
	    sizeof err), 0, "load wrong");
	ok_int(tls_server_cert_load(&expired, P("expired.pem"), P("ec.key"),
	    err, sizeof err), 0, "load expired");
	ok_int(tls_server_cert_load(&untrusted, P("other-leaf.pem"), P("ec.key"),
	    err, sizeof err), 0, "load untrusted");

	ok_int(attempt(&ca, &ec, RAW_NONE, &resumed), 0, "EC handshake");
	ok_str(client_reason, "", "EC handshake client");
	ok_int(resumed, 0, "first connection is a full handshake");
	ok_int(attempt(&ca, &ec, RAW_NONE, &resumed), 0, "EC again");
	ok_int(resumed, 1, "second connection resumes");
	ok_int(attempt(&ca, &rsa, RAW_NONE, &resumed), 0, "RSA handshake");
	ok_str(client_reason, "", "RSA handshake client");
	ok_int(resumed, 0, "other server: no resumption");
	ok_int(attempt(&ca, &rsa, RAW_NONE, &resumed), 0, "RSA again");
	ok_int(resumed, 1, "RSA resumes");

	tls_sessions_forget();
	ok_int(attempt(&other, &ec, RAW_NONE, NULL), -1, "untrusted CA");
	ok_str(client_reason, "certificate not trusted (unknown issuer)",
	    "untrusted reason");
	ok(server_reason[0] != 0, "server saw the failure too");
	printf("# server side of an untrusted handshake: %s\n",
	    server_reason);
	ok_int(attempt(&ca, &untrusted, RAW_NONE, NULL), -1,
	    "leaf from another CA");
	ok_str(client_reason, "certificate not trusted (unknown issuer)",
	    "leaf from another CA reason");
	ok_int(attempt(&ca, &wrong, RAW_NONE, NULL), -1, "wrong name");
	ok_str(client_reason,
	    "certificate host name mismatch (wanted localhost)",
	    "wrong name reason");
	ok_int(attempt(&ca, &expired, RAW_NONE, NULL), -1, "expired");
	/* The reason names the clock and what it reads (this machine's
	 * clock is set: e2e test_clock_not_set fakes one that is not). */
	ok(strncmp(client_reason, expired_reason,
	    sizeof expired_reason - 1) == 0
	    && strstr(client_reason, " UTC; check the clock)") != NULL,
	    "expired reason names the clock");
	printf("# %s\n", client_reason);
	ok_int(attempt(&ca, NULL, RAW_HTTP400, NULL), -1, "plain HTTP");
	ok_str(client_reason, "not a TLS server (plain HTTP on an HTTPS "
	    "port?)", "plain HTTP reason");
	ok_int(attempt(&ca, NULL, RAW_CLOSE, NULL), -1, "peer hangs up");
	ok_str(client_reason, "connection closed during TLS handshake",
	    "hang up reason");
	ok_int(attempt(&ca, NULL, RAW_ALERT, NULL), -1, "alert");
	ok_str(client_reason, "TLS handshake failed: peer sent alert 40 "
	    "(handshake failure)", "alert reason");

	/* The same checks pass again once the failures are over: they did
	 * not poison the session cache. */
	ok_int(attempt(&ca, &ec, RAW_NONE, &resumed), 0, "EC after failures");

	tls_server_cert_free(&ec);
	tls_server_cert_free(&rsa);
	tls_server_cert_free(&wrong);
	tls_server_cert_free(&expired);
	tls_server_cert_free(&untrusted);
	tls_anchors_free(&ca);
	tls_anchors_free(&other);
}

static void
test_client_new_errors(void)
{
	struct tls_anchors ca, none;
	char err[256];

	memset(&none, 0, sizeof none);
	tls_anchors_load(&ca, P("ca.pem"), err, sizeof err);
	ok(tls_client_new(&none, "localhost", err, sizeof err) == NULL,
	    "no anchors");
	ok_str(err, "no trust anchors loaded (set ca_file)", "no anchors why");
	ok(tls_client_new(&ca, "127.0.0.1", err, sizeof err) == NULL,
	    "IP literal");
	ok(strstr(err, "IP addresses") != NULL, "IP literal why: %s", err);
	tls_anchors_free(&ca);
}

/* A plain-HTTP client on the TLS listener gets a distinct reason too. */
static void
test_server_plain_http(void)
{
	struct tls_server_cert sc;
	struct tls_conn *s = NULL;
	struct end ce, se;
	unsigned char sin[64];
	char err[256];
	int fds[2];

	tls_server_cert_load(&sc, P("ec-chain.pem"), P("ec.key"), err,
	    sizeof err);
	pair(fds);
	s = tls_server_new(&sc, err, sizeof err);
	end_init(&ce, NULL, fds[0], RAW_GET);
	end_init(&se, s, fds[1], RAW_NONE);
	se.in = sin;
	se.in_cap = sizeof sin;
	se.want = 1;
	ok_int(run(&ce, &se), 0, "plain HTTP client: no hang");
	ok_int(se.err, 1, "plain HTTP client fails");
	ok_str(tls_error(s), "not a TLS client (plain HTTP on an HTTPS "
	    "port?)", "plain HTTP client reason");
	tls_free(s);
	close(fds[0]);
	close(fds[1]);
	tls_server_cert_free(&sc);
}

/* Bulk data both ways through small socket buffers, then the two ways a
 * stream can end: close_notify, and a bare EOF (truncation). */
static void
test_bulk_and_close(void)
{
	struct tls_anchors ca;
	struct tls_server_cert sc;
	struct tls_conn *c = NULL, *s = NULL;
	struct end ce, se;
	unsigned char *big = NULL, *cin = NULL, *sin = NULL, b[16];
	size_t i, up = 65536 + 7, down = (1 << 20) + 3;
	char err[256];
	int fds[2];

	tls_anchors_load(&ca, P("ca.pem"), err, sizeof err);
	tls_server_cert_load(&sc, P("ec-chain.pem"), P("ec.key"), err,
	    sizeof err);
	big = malloc(down);
	cin = malloc(down);
	sin = malloc(up);
	for (i = 0; i < down; i++) {
		big[i] = (unsigned char)(i * 131 + (i >> 9));
	}

	pair(fds);
	c = tls_client_new(&ca, "localhost", err, sizeof err);
	s = tls_server_new(&sc, err, sizeof err);
	end_init(&ce, c, fds[0], RAW_NONE);
	end_init(&se, s, fds[1], RAW_NONE);
	ce.out = big;
	ce.out_len = up;
	ce.in = cin;
	ce.in_cap = down;
	ce.want = down;
	se.out = big;
	se.out_len = down;
	se.in = sin;
	se.in_cap = up;
	se.want = up;
	ok_int(run(&ce, &se), 0, "bulk: no hang");
	ok(!ce.err && !se.err, "bulk: no error (%s / %s)",
	    tls_error(c) ? tls_error(c) : "-", tls_error(s) ? tls_error(s)
	    : "-");
	ok(ce.in_len == down && memcmp(cin, big, down) == 0,
	    "bulk: 1 MiB server to client intact");
	ok(se.in_len == up && memcmp(sin, big, up) == 0,
	    "bulk: 64 KiB client to server intact");
	ok_str(tls_alpn(c), "http/1.1", "ALPN client");
	ok_str(tls_alpn(s), "http/1.1", "ALPN server");

	/* close_notify from the client: the server reads a clean 0. The
	 * socket buffers are empty after run(), so nothing waits here. */
	ok_int(tls_shutdown(c, fds[0]), 0, "shutdown flushed");
	ok_int(tls_read(s, fds[1], b, sizeof b), 0,
	    "server sees close_notify");
	ok_int(tls_truncated(s), 0, "clean close is not truncation");
	ok_int(write_plain(s, fds[1], "x", 1), -1, "write after close_notify");
	ok_int(errno, EPIPE, "write after close_notify errno");
	tls_free(c);
	tls_free(s);
	close(fds[0]);
	close(fds[1]);

	/* A bare EOF after the handshake: 0 with the truncation flag. */
	pair(fds);
	c = tls_client_new(&ca, "localhost", err, sizeof err);
	s = tls_server_new(&sc, err, sizeof err);
	end_init(&ce, c, fds[0], RAW_NONE);
	end_init(&se, s, fds[1], RAW_NONE);
	ok_int(run(&ce, &se), 0, "handshake for EOF test");
	ok_int(tls_handshake_done(s), 1, "server handshake done");
	close(fds[0]);
	ok_int(tls_read(s, fds[1], b, sizeof b), 0, "server sees EOF");
	ok_int(tls_truncated(s), 1, "EOF is truncation");
	ok_int(tls_read(s, fds[1], b, sizeof b), 0, "EOF is sticky");
	tls_free(c);
	tls_free(s);
	close(fds[1]);

	free(big);
	free(cin);
	free(sin);
	tls_server_cert_free(&sc);
	tls_anchors_free(&ca);
}

/* Client connections are half-duplex (one record buffer): while a record
 * from the server is not fully read the client cannot send, and
 * tls_quiet() says the connection is not parkable; once it is read,
 * sending works again. Server connections stay full-duplex. */
static void
test_half_duplex_client(void)
{
	struct tls_anchors ca;
	struct tls_server_cert sc;
	struct tls_conn *c = NULL, *s = NULL;
	struct end ce, se;
	unsigned char b[64];
	char err[256];
	int fds[2];
	ssize_t n;

	ok(tls_conn_memory(0) < 24 * 1024, "client connection under 24 KiB "
	    "(%zu bytes)", tls_conn_memory(0));
	ok(tls_conn_memory(1) > tls_conn_memory(0) + 16000, "server "
	    "connection keeps both record buffers (%zu bytes)",
	    tls_conn_memory(1));
	tls_anchors_load(&ca, P("ca.pem"), err, sizeof err);
	tls_server_cert_load(&sc, P("ec-chain.pem"), P("ec.key"), err,
	    sizeof err);
	pair(fds);
	c = tls_client_new(&ca, "localhost", err, sizeof err);
	s = tls_server_new(&sc, err, sizeof err);
	end_init(&ce, c, fds[0], RAW_NONE);
	end_init(&se, s, fds[1], RAW_NONE);
	ok_int(run(&ce, &se), 0, "half-duplex: handshake, no hang");
	ok_int(tls_quiet(c), 1, "quiet after the handshake");

	ok_int((int)write_plain(s, fds[1], "hello world", 11), 11,
	    "server sends a record");
	ok_int((int)tls_read(c, fds[0], b, 1), 1, "client reads one byte");
	ok_int((int)tls_pending(c), 10, "ten bytes wait in the engine");
	ok_int(tls_quiet(c), 0, "not quiet with bytes waiting");
	n = write_plain(c, fds[0], "x", 1);
	ok(n == -1 && errno == EAGAIN, "client cannot send before it has "
	    "read the record (%zd)", n);
	ok_int((int)tls_read(c, fds[0], b + 1, sizeof b - 1), 10,
	    "client reads the rest");
	ok(memcmp(b, "hello world", 11) == 0, "record intact");
	ok_int(tls_quiet(c), 1, "quiet again");
	ok_int((int)write_plain(c, fds[0], "x", 1), 1, "client sends again");
	ok_int((int)tls_read(s, fds[1], b, sizeof b), 1, "server gets it");

	/* The server in the same spot can send: full-duplex. */
	ok_int((int)write_plain(c, fds[0], "yy", 2), 2, "client sends");
	ok_int((int)tls_read(s, fds[1], b, 1), 1, "server reads one byte");
	ok_int((int)tls_pending(s), 1, "one byte waits in the server");
	ok_int((int)write_plain(s, fds[1], "z", 1), 1, "server sends anyway");
	ok_int((int)tls_read(s, fds[1], b, sizeof b), 1, "server reads the "
	    "rest");
	ok_int((int)tls_read(c, fds[0], b, sizeof b), 1, "client reads");
	tls_free(c);
	tls_free(s);
	close(fds[0]);
	close(fds[1]);
	tls_server_cert_free(&sc);
	tls_anchors_free(&ca);
}

int
main(void)
{
	char cmd[128];

	setvbuf(stdout, NULL, _IOLBF, 0);
	snprintf(dir, sizeof dir, "/tmp/relay-tls-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	if (make_pki() < 0) {
		ok(0, "openssl could not make the test PKI");
		return t_done("tls");
	}
	test_anchors();
	test_mkroots_forms();
	test_server_cert();
	test_client_new_errors();
	test_handshakes();
	test_server_plain_http();
	test_bulk_and_close();
	test_half_duplex_client();
	printf("tls_conn_memory: client %zu bytes, server %zu bytes\n",
	    tls_conn_memory(0), tls_conn_memory(1));

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0) {
		printf("could not remove %s\n", dir);
	}
	return t_done("tls");
}
