#ifndef RELAY_SHA256_H
#define RELAY_SHA256_H
/* SHA-256 for the ledger's hash chain and the client-key checks, on every
 * request's path: with the CPU's SHA instructions when it has them
 * (x86-64 SHA-NI, ARMv8 SHA2; checked once at first use), else BearSSL's
 * portable code. The digest is the same either way. TLS hashes with
 * BearSSL's own code and does not come here. */
#include <stddef.h>

/* SHA-256 of n bytes into out. */
void sha256(const void *data, size_t n, unsigned char out[32]);

/* Test hooks (the tests compare both paths): on != 0 forces the portable
 * code, 0 goes back to what the CPU offers; sha256_impl names the code
 * sha256() runs now: "sha-ni", "armv8-sha2" or "portable". */
void sha256_force_portable(int on);
const char *sha256_impl(void);

#endif
