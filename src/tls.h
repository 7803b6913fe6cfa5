#ifndef RELAY_TLS_H
#define RELAY_TLS_H
/* TLS over BearSSL, as a pump: the caller owns the non-blocking socket and
 * the poll() loop; these functions move records between the socket and the
 * engine and hand out plaintext with read()/writev()-like calls. Nothing
 * here blocks, sleeps or calls back. TLS 1.2 only, ECDHE with AEAD suites
 * only, ALPN "http/1.1". Errors carry a readable reason (tls_error).
 * Anchors and server certificates are read in tls_certs.c, connections
 * run in tls.c. */
#include <stddef.h>
#include <sys/types.h>

#include "bearssl_ssl.h"

struct iovec;
struct tls_conn;

/* Trust anchors for upstream certificate validation. Callers embed the
 * struct; its fields are private. */
struct tls_anchors {
	const br_x509_trust_anchor *v;	/* == owned, or NULL: the embedded
					 * roots (tls_anchors_get) */
	br_x509_trust_anchor *owned;	/* owned array or NULL (embedded); each
					 * dn.data is one owned block that also
					 * holds the key bytes */
	size_t n;
	size_t skipped;			/* certificates with unsupported keys */
	char source[320];		/* "embedded (...)" or the file path */
};

/* Load anchors from a PEM bundle (ca_file), or the roots compiled in at
 * build time when ca_file is NULL. Returns 0, or -1 with "PATH: reason" in
 * err. On failure *ta is left empty (safe to free). The caller keeps the
 * old set alive until no connection started with it is still in its
 * handshake, then frees it: x509 validation reads the anchors then. */
int tls_anchors_load(struct tls_anchors *ta, const char *ca_file,
    char *err, size_t errlen);
void tls_anchors_free(struct tls_anchors *ta);
/* The anchors as BearSSL takes them (tls_anchors_count of them). The
 * embedded roots are stored packed and unpacked on first use, once per
 * process (about 24 KiB of heap, kept: only a relay with a TLS upstream
 * and no ca_file pays it). NULL when out of memory. */
const br_x509_trust_anchor *tls_anchors_get(const struct tls_anchors *ta);
size_t tls_anchors_count(const struct tls_anchors *ta);
/* "embedded (N roots from the build machine's CA bundle)" or the path. */
const char *tls_anchors_source(const struct tls_anchors *ta);
/* 1 when two public keys are the same key; two anchors when flags, DN
 * bytes and key are the same. For tools/mkroots, which shares keys
 * between the roots it packs and checks them unpacked, and for the tests
 * of the embedded set against the bundle (the relay does not call them). */
int tls_pkey_eq(const br_x509_pkey *a, const br_x509_pkey *b);
int tls_anchor_eq(const br_x509_trust_anchor *a,
    const br_x509_trust_anchor *b);

/* Certificate chain and private key for an inbound TLS listener. */
struct tls_server_cert {
	br_x509_certificate *chain;	/* owned array of owned DER blobs */
	size_t chain_len;
	int key_type;			/* BR_KEYTYPE_RSA or BR_KEYTYPE_EC */
	br_rsa_private_key rsa;		/* RSA: points into key_blob */
	br_ec_private_key ec;		/* EC: points into key_blob */
	unsigned char *key_blob;	/* owned, wiped on free */
	size_t key_len;			/* bytes in key_blob */
	br_ssl_session_cache_lru *cache;	/* owned server session cache,
					 * its store after it in the same
					 * allocation */
};

/* Load a PEM chain (leaf first) and an RSA or EC private key (PKCS#1,
 * SEC1 or unencrypted PKCS#8 PEM), and check that they match. Returns 0,
 * or -1 with "FILE: reason" in err. Connections made with tls_server_new
 * borrow *sc: free it only after they are all freed. */
int tls_server_cert_load(struct tls_server_cert *sc, const char *cert_path,
    const char *key_path, char *err, size_t errlen);
void tls_server_cert_free(struct tls_server_cert *sc);

/* A client connection to server_name: SNI, certificate chain and host name
 * checked against ta (borrowed until the handshake ends), session resumed
 * from an earlier connection to the same name when possible. server_name
 * must be a DNS name: BearSSL cannot match IP addresses in certificates.
 * Returns a connection (one allocation of tls_conn_memory(0) bytes) or
 * NULL with a reason in err. No I/O happens until the first call below.
 *
 * Client connections are half-duplex (one 16.3 KiB record buffer): while
 * a record waits to be sent nothing is received, and while a received
 * record is not fully read nothing can be sent. A request-then-response
 * protocol never needs both at once; read the answer to the end (or
 * close) before writing the next request. */
struct tls_conn *tls_client_new(const struct tls_anchors *ta,
    const char *server_name, char *err, size_t errlen);

/* A server connection using sc (borrowed for the connection's life);
 * full-duplex, one allocation of tls_conn_memory(1) bytes. */
struct tls_conn *tls_server_new(const struct tls_server_cert *sc,
    char *err, size_t errlen);

/* Wipe and free; NULL is fine. Does not close the fd. */
void tls_free(struct tls_conn *t);

/* Test hook (the relay lets tls_read and tls_writev drive the handshake;
 * the tests drive it alone): drive the handshake. Returns 0 once
 * application data can flow, or -1 with errno EAGAIN (wait as
 * tls_interest says) or another errno (failed; reason in tls_error). */
int tls_handshake(struct tls_conn *t, int fd);

/* Like read(2) on the plaintext side (n > 0). Returns bytes (> 0); 0 at
 * end of stream: a close_notify, or a plain EOF from the peer after the
 * handshake (then tls_truncated() is 1); -1 with errno EAGAIN when the
 * socket must become ready (tls_interest); -1 with another errno on
 * failure: EPROTO (TLS or certificate error), ECONNRESET (closed during the
 * handshake) or the socket's errno; tls_error() says why. Decrypted bytes
 * may stay inside the engine with nothing left on the socket: keep calling
 * until EAGAIN, or check tls_pending(), before waiting for POLLIN. */
ssize_t tls_read(struct tls_conn *t, int fd, void *buf, size_t n);

/* Like writev(2): copy as much plaintext as the engine takes, close the
 * record and try to send it. Returns bytes accepted (> 0), 0 for an empty
 * write, or -1 as tls_read (EPIPE after the peer's close_notify).
 * Accepted bytes may still sit in the engine (socket full): while
 * tls_interest() has POLLOUT, call tls_flush_pending() on POLLOUT. */
ssize_t tls_writev(struct tls_conn *t, int fd, const struct iovec *iov,
    int iovcnt);

/* Send buffered records. Returns 0 when none are left, -1 with errno
 * EAGAIN (wait for POLLOUT) or another errno (failed). */
int tls_flush_pending(struct tls_conn *t, int fd);

/* Queue a close_notify and flush it (same returns as tls_flush_pending).
 * Does not wait for the peer's close_notify. */
int tls_shutdown(struct tls_conn *t, int fd);

/* What the engine needs from the socket: POLLOUT when records wait to be
 * sent, POLLIN when it can take records. 0 once closed or failed. want is
 * what the caller would ask of a plain socket: without POLLIN (no room
 * for plaintext: backpressure) records are not read either, but only
 * after the handshake, which must get exactly what it needs. */
short tls_interest(const struct tls_conn *t, short want);

/* Plaintext bytes already decrypted and waiting for tls_read. */
size_t tls_pending(const struct tls_conn *t);

/* 1 when the engine holds nothing in either direction and takes plaintext
 * to send: no decrypted bytes waiting, no record half received, none
 * waiting to be sent, not closed. A client connection parked for reuse
 * must be quiet (exact for client connections; a server's full-duplex
 * engine can hide a half-received record). */
int tls_quiet(const struct tls_conn *t);

int tls_handshake_done(const struct tls_conn *t);
/* Why the connection failed, or NULL if it has not. Points into *t. */
const char *tls_error(const struct tls_conn *t);

/* Test hooks (what the tests check of a connection; the relay does not
 * ask): 1 when this client connection resumed a cached session (client
 * only); 1 when the peer closed the socket without a close_notify; the
 * ALPN protocol agreed on, or NULL. */
int tls_resumed(const struct tls_conn *t);
int tls_truncated(const struct tls_conn *t);
const char *tls_alpn(const struct tls_conn *t);

/* Drop all cached client sessions (call after reloading trust anchors:
 * a resumed session skips certificate validation). */
void tls_sessions_forget(void);

/* Test hook (the tests hold it to a memory budget): bytes one connection
 * costs (the tls_conn allocation), a client connection (server 0) or a
 * server one (server 1). */
size_t tls_conn_memory(int server);

#endif
