#ifndef RELAY_UTIL_H
#define RELAY_UTIL_H
/* Small helpers for every layer: length-carrying views, bounded number
 * parsing, constant-time compare, SHA-256 and hex; the one way to grow an
 * array (util_grow, the only allocation here), to format an error
 * (util_errf) and to wipe a secret (util_wipe); random bytes, open and a
 * whole-buffer write. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#if defined(__GNUC__)
#define RELAY_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define RELAY_PRINTF(f, a)
#endif

/* A static helper of a per-request loop that shares code between two
 * callers: inlined into both, where the compiler would otherwise keep a
 * function used twice out of line and call it on every turn. */
#if defined(__GNUC__)
#define RELAY_INLINE inline __attribute__((always_inline))
#else
#define RELAY_INLINE inline
#endif

/* A borrowed byte range; never assumed NUL-terminated. */
struct view {
	const char *p;
	size_t n;
};

/* 1 when v equals the C string s exactly (case-sensitive). */
int util_view_eq(struct view v, const char *s);
/* 1 when v equals s ignoring ASCII case. */
int util_view_ieq(struct view v, const char *s);
/* 1 when a[0..n) equals b[0..n) ignoring ASCII case; 8 bytes a step. */
int util_mem_ieq(const char *a, const char *b, size_t n);
/* util_view_ieq() against a string literal: lengths are compared first,
 * so most mismatches cost one compare. v is evaluated twice. */
#define VIEW_IEQ(v, lit) \
	((v).n == sizeof(lit) - 1 && util_mem_ieq((v).p, (lit), (v).n))

/* Trim SP/HTAB on both ends. */
struct view util_view_trim(struct view v);

/* Parse plain decimal digits (no sign, no blanks, at least one digit) into
 * *out. Returns 0, or -1 on any other character or on overflow. */
int util_parse_u64(const char *p, size_t n, uint64_t *out);

/* Parse a decimal "123", "1.5", "0.019" with at most max_frac fractional
 * digits into an integer scaled by 10^scale (scale >= max_frac):
 * ("1.75", 3, 3) -> 1750. Returns 0, or -1 on bad syntax, too many
 * decimals or overflow. No floating point. */
int util_parse_fixed(const char *p, size_t n, unsigned max_frac,
    unsigned scale, uint64_t *out);

/* Decimal digits of v into out (room for 20), no NUL. Returns the count.
 * Cheaper than printf on the per-request path. */
size_t util_u64_dec(uint64_t v, char *out);

/* Lower-case hex digits of v into out (room for 16), no NUL, no leading
 * zeros (a chunk size line). Returns the count. */
size_t util_u64_hex(uint64_t v, char *out);

/* 1 when p[0..n) is valid UTF-8 (RFC 3629: shortest forms, no
 * surrogates, at most U+10FFFF). */
int util_utf8_valid(const char *p, size_t n);

/* Make room for need elements of elem bytes in the array arr of *cap
 * elements: doubling from 8, every size checked for overflow; the new
 * elements are zeroed. Returns the (maybe moved) array with *cap updated,
 * or NULL with arr and *cap unchanged (no memory, or the size overflows).
 * The one way the relay grows an array. */
void *util_grow(void *arr, size_t *cap, size_t need, size_t elem);

/* snprintf a reason into err[errlen] (nothing when err is NULL or errlen
 * 0); a long one is cut, which is fine for text meant for people.
 * Returns -1, so a failing function can end with
 * `return util_errf(err, errlen, ...)`. The one error formatter. */
int util_errf(char *err, size_t errlen, const char *fmt, ...)
    RELAY_PRINTF(3, 4);
/* util_errf() for a formatter that takes its own arguments (...): the
 * caller owns ap (va_start/va_end). Returns -1. */
int util_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
    RELAY_PRINTF(3, 0);

/* Zero n bytes in a way the compiler may not drop (secrets). */
void util_wipe(void *p, size_t n);

/* Constant-time equality of two n-byte blocks: 1 when equal. */
int util_ct_equal(const void *a, const void *b, size_t n);

/* SHA-256 of n bytes (sha256.c: SHA instructions when the CPU has them). */
void util_sha256(const void *data, size_t n, unsigned char out[32]);

/* Lower-case hex of n bytes into out (2n chars plus a NUL). */
void util_hex(const unsigned char *in, size_t n, char *out);

/* Value of one hex digit (either case), or -1. */
int util_hex_digit(int c);

/* Parse 64 hex digits into 32 bytes. Returns 0 or -1. */
int util_unhex32(const char *p, size_t n, unsigned char out[32]);

/* Fill buf with n random bytes from getrandom(2) or /dev/urandom.
 * Returns 0 or -1. */
int util_random(void *buf, size_t n);

/* A request id "req_" + 22 hex digits (out: at least 27 bytes, else
 * nothing is written): splitmix64 of a random seed and a counter, unique
 * in the process and unguessable enough for a correlation id. */
void util_request_id(char *out, size_t cap);

/* open(2), made with openat(): musl's open() follows O_CLOEXEC with an
 * fcntl for kernels older than 2.6.23, openat() does not (one syscall
 * less per file). */
int util_open(const char *path, int flags, mode_t mode);

/* write(2) all of p[0..n) to fd, again after EINTR and after a short
 * write. Returns 0, or -1 with errno set (EIO when write returns 0);
 * *done is the count of bytes written either way. Blocks as fd does. */
int util_write_all(int fd, const void *p, size_t n, size_t *done);

/* Bytes compressed at build time (tools/lz.h), for data cold enough to
 * unpack when needed: the embedded trust anchors, the default config.
 * LZ77 in MSB-first bits: 0 and a literal byte (8 bits), or 1 and a copy
 * of LEN bytes from DIST back: DIST - 1 as G((DIST - 1) / 128 + 1) and
 * 7 bits of (DIST - 1) % 128, then G(LEN - 1), LEN >= 2, where G(v),
 * v >= 1, is Elias gamma: as many 0 bits as v has bits after its first,
 * then v's bits. */
/* Unpack in[0..inlen) into exactly outlen bytes of out. Returns 0, or -1
 * when the input ends early or is not well formed. */
int util_unlz(const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outlen);

#endif
