/* tls: BearSSL engines driven by the caller's poll() loop, and the
 * client session cache. Trust anchors and server certificates are read
 * in tls_certs.c.
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
 * server certificate (for its life). The client session cache is module
 * state: fixed slots, no allocation.
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
#include "tls_int.h"
#include "util.h"

enum {
	TLS_SESSION_SLOTS = 32,		/* client sessions, LRU by name */
	TLS_SNIFF = 5			/* one record header */
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
		util_wipe(s, sizeof *s);
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
	util_wipe(sessions, sizeof sessions);
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

/* A zeroed connection with an iolen-byte record buffer, or NULL with
 * err set.
 *
 * Not calloc(): for a block of 4 KiB or more musl's reads each page to
 * see whether it must clear it, which maps a page never used to the
 * shared zero page; the engine's first write to it then copies that page
 * and flushes the TLB. Two faults a page instead of one: about half the
 * CPU a stream's upstream TLS connection cost on this VM (its page
 * faults and TLB flushes are dear). Only the contexts are cleared; the
 * record buffer's pages are touched when records first reach them. */
static struct tls_conn *
conn_new(size_t iolen, char *err, size_t errlen)
{
	struct tls_conn *t = malloc(sizeof *t + iolen);

	if (t == NULL) {
		util_errf(err, errlen, "out of memory");
		return NULL;
	}
	memset(t, 0, sizeof *t);
	t->iolen = iolen;
	return t;
}

/* Feed the engine 32 bytes of entropy. Returns 0, or -1 with err set. */
static int
seed_engine(br_ssl_engine_context *eng, char *err, size_t errlen)
{
	unsigned char rnd[32];

	/* BearSSL 0.6 seeds itself from RDRAND or /dev/urandom only, and a
	 * FROM-scratch container may lack /dev; getrandom(2) needs no
	 * file. Without entropy the engine fails closed (error 8). */
	if (util_random(rnd, sizeof rnd) < 0) {
		return util_errf(err, errlen, "no entropy (getrandom and "
		    "/dev/urandom both failed)");
	}
	br_ssl_engine_inject_entropy(eng, rnd, sizeof rnd);
	util_wipe(rnd, sizeof rnd);
	return 0;
}

/* Seed the engine of t and reset it for its first handshake (a client
 * offering to resume the session it was given when resume is 1).
 * Returns t, or NULL (t freed) with err set. */
static struct tls_conn *
conn_start(struct tls_conn *t, int resume, char *err, size_t errlen)
{
	int ok;

	if (seed_engine(t->eng, err, errlen) < 0) {
		tls_free(t);
		return NULL;
	}
	ok = t->is_client ? br_ssl_client_reset(&t->u.cc, t->name, resume)
	    : br_ssl_server_reset(&t->u.sc);
	if (!ok) {
		util_errf(err, errlen, "TLS %s setup failed (BearSSL error %d)",
		    t->is_client ? "client" : "server",
		    br_ssl_engine_last_error(t->eng));
		tls_free(t);
		return NULL;
	}
	return t;
}

/* AES-GCM as br_ssl_engine_set_default_aes_gcm() sets it, which asks
 * the CPU (cpuid) for AES-NI and PCLMUL on every call: a trap to the
 * hypervisor on a VM, about 1% of an upstream TLS connection's setup
 * here. The CPU does not change: the first call's choice is kept. */
static void
set_aes_gcm(br_ssl_engine_context *eng)
{
	static const br_block_ctr_class *ctr;
	static br_ghash ghash;

	if (ctr == NULL) {
		br_ssl_engine_set_default_aes_gcm(eng);
		ctr = eng->iaes_ctr;
		ghash = eng->ighash;
		return;
	}
	br_ssl_engine_set_gcm(eng, &br_sslrec_in_gcm_vtable,
	    &br_sslrec_out_gcm_vtable);
	br_ssl_engine_set_aes_ctr(eng, ctr);
	br_ssl_engine_set_ghash(eng, ghash);
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
	set_aes_gcm(eng);
#if defined(__x86_64__)
	/* What br_ssl_engine_set_default_chapol() picks on x86-64 (SSE2 and
	 * the 64x64 multiply are part of the ABI, so its _get() calls
	 * always return these), without linking the portable fallbacks
	 * it would also reference: ~3 KB. */
	br_ssl_engine_set_chapol(eng, &br_sslrec_in_chapol_vtable,
	    &br_sslrec_out_chapol_vtable);
	br_ssl_engine_set_chacha20(eng, &br_chacha20_sse2_run);
	br_ssl_engine_set_poly1305(eng, &br_poly1305_ctmulq_run);
#else
	br_ssl_engine_set_default_chapol(eng);
#endif
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
	const br_x509_trust_anchor *anchors = NULL;
	struct tls_session *s = NULL;
	size_t i;
	int resume = 0;

	if (ta == NULL || ta->n == 0) {
		util_errf(err, errlen, "no trust anchors loaded (set ca_file)");
		return NULL;
	}
	if (server_name == NULL || server_name[0] == 0
	    || strlen(server_name) >= sizeof t->name) {
		util_errf(err, errlen, "bad TLS server name");
		return NULL;
	}
	if (is_ip_literal(server_name)) {
		util_errf(err, errlen, "%s: BearSSL cannot verify certificates "
		    "for IP addresses; use a host name", server_name);
		return NULL;
	}
	t = conn_new(TLS_CLIENT_IOBUF, err, errlen);
	if (t == NULL) {
		return NULL;
	}
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
	 * (SAN dNSName, wildcards in the first label). The embedded roots
	 * are unpacked on the first call (tls_anchors_get). */
	t->xc = malloc(sizeof *t->xc);
	anchors = tls_anchors_get(ta);
	if (t->xc == NULL || anchors == NULL) {
		util_errf(err, errlen, "out of memory");
		goto fail;
	}
	br_x509_minimal_init(t->xc, &br_sha256_vtable, anchors, ta->n);
	br_x509_minimal_set_rsa(t->xc, br_ssl_engine_get_rsavrfy(eng));
	br_x509_minimal_set_ecdsa(t->xc, br_ssl_engine_get_ec(eng),
	    br_ssl_engine_get_ecdsa(eng));
	for (i = 0; i < sizeof hashes / sizeof hashes[0]; i++) {
		br_x509_minimal_set_hash(t->xc,
		    (int)((hashes[i]->desc >> BR_HASHDESC_ID_OFF)
		    & BR_HASHDESC_ID_MASK), hashes[i]);
	}
	br_ssl_engine_set_x509(eng, &t->xc->vtable);

	s = session_find(server_name);
	if (s != NULL) {
		br_ssl_engine_set_session_parameters(eng, &s->params);
		memcpy(t->offered_id, s->params.session_id,
		    s->params.session_id_len);
		t->offered_len = s->params.session_id_len;
		s->last_use = ++session_clock;
		resume = 1;
	}
	return conn_start(t, resume, err, errlen);
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
		util_errf(err, errlen, "no server certificate loaded");
		return NULL;
	}
	t = conn_new(TLS_SERVER_IOBUF, err, errlen);
	if (t == NULL) {
		return NULL;
	}
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
	br_ssl_server_set_cache(&t->u.sc, &sc->cache->vtable);
	return conn_start(t, 0, err, errlen);
}

void
tls_free(struct tls_conn *t)
{
	if (t == NULL) {
		return;
	}
	drop_validator(t);
	util_wipe(t, sizeof *t + t->iolen);
	free(t);
}

size_t
tls_conn_memory(int server)
{
	return sizeof(struct tls_conn) + (server ? TLS_SERVER_IOBUF
	    : TLS_CLIENT_IOBUF);
}

/* ---- errors ---- */

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
		(void)util_verrf(t->reason, sizeof t->reason, fmt, ap);
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
		    tls_alert_text(e - BR_ERR_SEND_FATAL_ALERT));
	}
	if (e >= BR_ERR_RECV_FATAL_ALERT) {
		return fail(t, EPROTO, "%s: peer sent alert %d (%s)", what,
		    e - BR_ERR_RECV_FATAL_ALERT,
		    tls_alert_text(e - BR_ERR_RECV_FATAL_ALERT));
	}
	if (e > BR_ERR_X509_OK) {
		return fail(t, EPROTO, "certificate rejected: %s (X.509 "
		    "error %d)", tls_br_error_text(e), e);
	}
	return fail(t, EPROTO, "%s: %s (BearSSL error %d)", what,
	    tls_br_error_text(e), e);
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
	util_wipe(&p, sizeof p);
}

/* Move records between fd and the engine: the ones it has queued to
 * send (sending 1), or bytes from the peer into it (sending 0). Returns 1
 * when bytes moved, the peer's EOF was noted or a signal interrupted
 * (call again), 0 when the socket would block, -1 on a failure recorded
 * in t. */
static int
move_records(struct tls_conn *t, int fd, int sending)
{
	unsigned char *buf = NULL;
	size_t len;
	ssize_t r;
	int e;

	if (sending) {
		buf = br_ssl_engine_sendrec_buf(t->eng, &len);
		/* MSG_NOSIGNAL: a peer that hung up must give EPIPE, not
		 * kill the process. */
		r = send(fd, buf, len, MSG_NOSIGNAL);
	} else {
		buf = br_ssl_engine_recvrec_buf(t->eng, &len);
		r = recv(fd, buf, len, 0);
	}
	if (r > 0 && sending) {
		br_ssl_engine_sendrec_ack(t->eng, (size_t)r);
		return 1;
	}
	if (r > 0) {
		if (t->sniff_len < TLS_SNIFF && !t->hs_done
		    && sniff(t, buf, (size_t)r) < 0) {
			return -1;
		}
		br_ssl_engine_recvrec_ack(t->eng, (size_t)r);
		return 1;
	}
	if (r == 0 && !sending) {
		if (!t->hs_done) {
			return fail(t, ECONNRESET, "connection closed during "
			    "TLS handshake");
		}
		/* Many HTTPS servers close after the response without a
		 * close_notify; HTTP framing tells the caller whether the
		 * body was complete. */
		t->eof = 1;
		t->truncated = 1;
		return 1;
	}
	if (r < 0 && errno == EINTR) {
		return 1;
	}
	if (r < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
		e = errno;
		if (!t->hs_done && sending && (e == EPIPE || e == ECONNRESET)) {
			return fail(t, ECONNRESET, "connection closed during "
			    "TLS handshake");
		}
		if (!t->hs_done && e == ECONNRESET) {
			return fail(t, ECONNRESET, "connection reset during "
			    "TLS handshake");
		}
		return fail(t, e, "socket %s failed: %s", sending ? "write" :
		    "read", strerror(e));
	}
	return 0;
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
	unsigned st;
	int wblocked = 0, may_read, r, e;

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
			util_errf(t->reason, sizeof t->reason,
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
			r = move_records(t, fd, 1);
			if (r < 0) {
				return -1;
			}
			if (r > 0) {
				continue;
			}
			wblocked = 1;
		}

		may_read = goal == GOAL_RECVAPP || !t->hs_done;
		if (goal == GOAL_FLUSH) {
			may_read = 0;
		}
		if ((st & BR_SSL_RECVREC) && may_read && !t->eof) {
			r = move_records(t, fd, 0);
			if (r < 0) {
				return -1;
			}
			if (r > 0) {
				continue;
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
		util_errf(t->reason, sizeof t->reason,
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
tls_interest(const struct tls_conn *t, short want)
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
	if ((st & BR_SSL_RECVREC) && !t->eof &&
	    ((want & POLLIN) || !t->hs_done)) {
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
