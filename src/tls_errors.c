/* tls_errors: what BearSSL's error codes and TLS alerts mean to an
 * operator, for the reasons tls.c records (see tls_int.h). */
#include <stddef.h>

#include "bearssl.h"
#include "tls_int.h"

/* A code and what it means to an operator. */
struct code_text {
	int code;
	const char *text;
};

static const struct code_text br_errors[] = {
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

static const struct code_text alerts[] = {
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

/* The text of code in table t[0..n), or dflt. */
static const char *
code_text(const struct code_text *t, size_t n, int code, const char *dflt)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i].code == code) {
			return t[i].text;
		}
	}
	return dflt;
}

const char *
tls_br_error_text(int code)
{
	return code_text(br_errors, sizeof br_errors / sizeof br_errors[0],
	    code, code > BR_ERR_X509_OK ? "malformed certificate"
	    : "protocol error");
}

const char *
tls_alert_text(int code)
{
	return code_text(alerts, sizeof alerts / sizeof alerts[0], code,
	    "unknown alert");
}
