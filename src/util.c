/* util: small helpers shared by every layer.
 *
 * Views are borrowed (pointer, length) pairs and are never assumed to be
 * NUL-terminated. Number parsing is bounded and rejects overflow instead of
 * wrapping; money never goes through floating point. Nothing here keeps
 * state but util_request_id()'s seed and counter; util_grow() is the only
 * allocation, and util_random(), util_open() and util_write_all() the
 * only I/O. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "sha256.h"
#include "util.h"

int
util_view_eq(struct view v, const char *s)
{
	size_t i;

	/* One pass, no strlen: s may end (NUL) before v does. */
	for (i = 0; i < v.n; i++) {
		if (v.p[i] != s[i] || s[i] == '\0') {
			return 0;
		}
	}
	return s[i] == '\0';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Eight bytes with 'A'-'Z' made lower case, others unchanged: bit 7 of
 * each byte of ge_a and gt_z tells c >= 'A' and c > 'Z' for the byte's
 * low seven bits, and bytes with bit 7 set are no letters. */
static uint64_t
lower8(uint64_t x)
{
	const uint64_t ones = 0x0101010101010101u;
	uint64_t low7 = x & 0x7f * ones;
	uint64_t ge_a = low7 + (0x80 - 'A') * ones;
	uint64_t gt_z = low7 + (0x80 - 'Z' - 1) * ones;
	uint64_t upper = (ge_a ^ gt_z) & ~x & 0x80 * ones;

	return x | upper >> 2;
}

static uint64_t
load8(const char *p)
{
	uint64_t x;

	memcpy(&x, p, 8);
	return x;
}

int
util_mem_ieq(const char *a, const char *b, size_t n)
{
	size_t i;

	if (n < 8) {
		/* Bytes into words one by one: a memcpy of n bytes would be
		 * a call. */
		uint64_t x = 0, y = 0;

		for (i = 0; i < n; i++) {
			x = x << 8 | (unsigned char)a[i];
			y = y << 8 | (unsigned char)b[i];
		}
		return x == y || lower8(x) == lower8(y);
	}
	for (i = 0; i + 8 < n; i += 8) {
		uint64_t x = load8(a + i), y = load8(b + i);

		if (x != y && lower8(x) != lower8(y)) {
			return 0;
		}
	}
	/* The last eight bytes, overlapping what was compared. */
	{
		uint64_t x = load8(a + n - 8), y = load8(b + n - 8);

		return x == y || lower8(x) == lower8(y);
	}
}

int
util_view_ieq(struct view v, const char *s)
{
	/* s ends at its NUL: a NUL in v there must not walk on past it. */
	return strlen(s) == v.n && util_mem_ieq(v.p, s, v.n);
}

struct view
util_view_trim(struct view v)
{
	while (v.n > 0 && (v.p[0] == ' ' || v.p[0] == '\t')) {
		v.p++;
		v.n--;
	}
	while (v.n > 0 && (v.p[v.n - 1] == ' ' || v.p[v.n - 1] == '\t')) {
		v.n--;
	}
	return v;
}

/* Append one decimal digit to *acc, or fail on overflow. */
static int
push_digit(uint64_t *acc, unsigned d)
{
	if (*acc > (UINT64_MAX - d) / 10) {
		return -1;
	}
	*acc = *acc * 10 + d;
	return 0;
}

int
util_parse_u64(const char *p, size_t n, uint64_t *out)
{
	uint64_t v = 0;
	size_t i;

	if (n == 0) {
		return -1;
	}
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9' ||
		    push_digit(&v, (unsigned)(p[i] - '0')) < 0) {
			return -1;
		}
	}
	*out = v;
	return 0;
}

int
util_parse_fixed(const char *p, size_t n, unsigned max_frac,
    unsigned scale, uint64_t *out)
{
	uint64_t v = 0;
	size_t i = 0, nint = 0;
	unsigned nfrac = 0;

	if (scale < max_frac) {
		return -1;
	}
	for (; i < n && p[i] >= '0' && p[i] <= '9'; i++, nint++) {
		if (push_digit(&v, (unsigned)(p[i] - '0')) < 0) {
			return -1;
		}
	}
	if (nint == 0) {
		return -1;
	}
	if (i < n) {
		/* "1." and ".5" are refused: a price is written in full. */
		if (p[i] != '.' || i + 1 == n) {
			return -1;
		}
		for (i++; i < n; i++, nfrac++) {
			if (p[i] < '0' || p[i] > '9' || nfrac == max_frac ||
			    push_digit(&v, (unsigned)(p[i] - '0')) < 0) {
				return -1;
			}
		}
	}
	for (; nfrac < scale; nfrac++) {
		if (push_digit(&v, 0) < 0) {
			return -1;
		}
	}
	*out = v;
	return 0;
}

int
util_ct_equal(const void *a, const void *b, size_t n)
{
	const unsigned char *x = a, *y = b;
	unsigned diff = 0;
	size_t i;

	/* No early exit: the time taken says nothing about where a
	 * mismatch is. */
	for (i = 0; i < n; i++) {
		diff |= (unsigned)(x[i] ^ y[i]);
	}
	return (int)(1 & ((diff - 1) >> 8));
}

void
util_sha256(const void *data, size_t n, unsigned char out[32])
{
	sha256(data, n, out);
}

void
util_hex(const unsigned char *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

int
util_hex_digit(int c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	c = lower(c);
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

int
util_unhex32(const char *p, size_t n, unsigned char out[32])
{
	unsigned char tmp[32];
	size_t i;
	int hi, lo;

	if (n != 64) {
		return -1;
	}
	for (i = 0; i < 32; i++) {
		hi = util_hex_digit((unsigned char)p[2 * i]);
		lo = util_hex_digit((unsigned char)p[2 * i + 1]);
		if (hi < 0 || lo < 0) {
			return -1;
		}
		tmp[i] = (unsigned char)(hi << 4 | lo);
	}
	memcpy(out, tmp, 32);
	return 0;
}

/* /dev/urandom, for kernels older than getrandom(2) (Linux < 3.17). */
static int
urandom(unsigned char *p, size_t n)
{
	ssize_t r;
	int fd;

	fd = util_open("/dev/urandom", O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	while (n > 0) {
		r = read(fd, p, n);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			close(fd);
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
	close(fd);
	return 0;
}

int
util_random(void *buf, size_t n)
{
	unsigned char *p = buf;
	long r;

#ifdef SYS_getrandom
	while (n > 0) {
		r = syscall(SYS_getrandom, p, n, 0);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0 && errno == ENOSYS) {
			break;
		}
		if (r <= 0) {
			return -1;
		}
		p += r;
		n -= (size_t)r;
	}
#else
	(void)r;
#endif
	return n > 0 ? urandom(p, n) : 0;
}

int
util_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, k, len;
	uint32_t cp, min;

	while (i < n) {
		unsigned char c = p[i];

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			len = 2, cp = c & 0x1f, min = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			len = 3, cp = c & 0x0f, min = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			len = 4, cp = c & 0x07, min = 0x10000;
		} else {
			return 0;
		}
		if (n - i < len) {
			return 0;
		}
		for (k = 1; k < len; k++) {
			if ((p[i + k] & 0xc0) != 0x80) {
				return 0;
			}
			cp = cp << 6 | (p[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp < 0xe000)) {
			return 0;
		}
		i += len;
	}
	return 1;
}

int
util_errf(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)util_verrf(err, errlen, fmt, ap);
	va_end(ap);
	return -1;
}

int
util_verrf(char *err, size_t errlen, const char *fmt, va_list ap)
{
	if (err != NULL && errlen > 0) {
		(void)vsnprintf(err, errlen, fmt, ap);
	}
	return -1;
}

void *
util_grow(void *arr, size_t *cap, size_t need, size_t elem)
{
	size_t ncap = *cap ? *cap : 8;
	char *p;

	if (need <= *cap) {
		return arr;
	}
	if (elem == 0) {
		return NULL;
	}
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2) {
			return NULL;
		}
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem || (p = realloc(arr, ncap * elem)) == NULL) {
		return NULL;
	}
	memset(p + *cap * elem, 0, (ncap - *cap) * elem);
	*cap = ncap;
	return p;
}

/* Unpacking runs once per process for each packed blob: built for size
 * (cold), not at util.c's -O2. */
#if defined(__GNUC__)
#define LZ_COLD __attribute__((cold))
#else
#define LZ_COLD
#endif

/* An MSB-first bit reader over the packed bytes; bad once it ran past
 * the end or met a too long gamma code. */
struct lz_in {
	const unsigned char *p;
	size_t n, bit;
	int bad;
};

LZ_COLD static size_t
lz_bits(struct lz_in *r, int n)
{
	size_t v = 0;

	while (n-- > 0) {
		if ((r->bit >> 3) >= r->n) {
			r->bad = 1;
			return 0;
		}
		v = v << 1 | (r->p[r->bit >> 3] >> (7 - (r->bit & 7)) & 1);
		r->bit++;
	}
	return v;
}

LZ_COLD static size_t
lz_gamma(struct lz_in *r)
{
	int k = 0;

	while (!r->bad && lz_bits(r, 1) == 0) {
		if (++k > 24) {
			r->bad = 1;
		}
	}
	return (size_t)1 << k | lz_bits(r, k);
}

LZ_COLD int
util_unlz(const unsigned char *in, size_t inlen, unsigned char *out,
    size_t outlen)
{
	struct lz_in r = { in, inlen, 0, 0 };
	size_t o = 0, dist, len;

	while (o < outlen && !r.bad) {
		if (lz_bits(&r, 1) == 0) {
			out[o++] = (unsigned char)lz_bits(&r, 8);
			continue;
		}
		dist = (lz_gamma(&r) - 1) << 7;
		dist += lz_bits(&r, 7) + 1;
		len = lz_gamma(&r) + 1;
		if (dist > o || len > outlen - o) {
			return -1;
		}
		for (; len > 0; len--, o++) {
			out[o] = out[o - dist];
		}
	}
	return r.bad ? -1 : 0;
}

void
util_wipe(void *p, size_t n)
{
	memset(p, 0, n);
	/* The empty asm says p's memory is used, so the memset stays. */
	__asm__ __volatile__("" : : "r"(p) : "memory");
}

size_t
util_u64_hex(uint64_t v, char *out)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 1, i;

	while (n < 16 && (v >> (4 * n)) != 0) {
		n++;
	}
	for (i = 0; i < n; i++) {
		out[n - 1 - i] = hex[(v >> (4 * i)) & 15];
	}
	return n;
}

size_t
util_u64_dec(uint64_t v, char *out)
{
	/* Two digits per division: every ledger line has several numbers. */
	static const char pairs[] =
	    "00010203040506070809101112131415161718192021222324"
	    "25262728293031323334353637383940414243444546474849"
	    "50515253545556575859606162636465666768697071727374"
	    "75767778798081828384858687888990919293949596979899";
	char tmp[20];
	size_t n = sizeof tmp, len, i;

	while (v >= 100) {
		unsigned r = (unsigned)(v % 100);

		v /= 100;
		n -= 2;
		tmp[n] = pairs[2 * r];
		tmp[n + 1] = pairs[2 * r + 1];
	}
	if (v >= 10) {
		n -= 2;
		tmp[n] = pairs[2 * v];
		tmp[n + 1] = pairs[2 * v + 1];
	} else {
		tmp[--n] = (char)('0' + v);
	}
	len = sizeof tmp - n;
	for (i = 0; i < len; i++) {
		out[i] = tmp[n + i];
	}
	return len;
}

static uint64_t id_seed;
static uint64_t id_counter;

void
util_request_id(char *out, size_t cap)
{
	/* splitmix64 over a random seed: unique and unguessable enough for
	 * a correlation id, without a syscall per request. */
	uint64_t z;

	if (id_seed == 0) {
		if (util_random(&id_seed, sizeof(id_seed)) < 0) {
			id_seed = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
		}
		id_seed |= 1;
	}
	z = id_seed + 0x9e3779b97f4a7c15ull * ++id_counter;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	/* "req_" + 16 hex of z + 6 hex of the counter, without printf. */
	if (cap >= 27) {
		static const char hex[] = "0123456789abcdef";
		uint64_t c = id_counter;
		int i;

		memcpy(out, "req_", 4);
		for (i = 19; i >= 4; i--) {
			out[i] = hex[z & 15];
			z >>= 4;
		}
		for (i = 25; i >= 20; i--) {
			out[i] = hex[c & 15];
			c >>= 4;
		}
		out[26] = '\0';
	}
}

int
util_open(const char *path, int flags, mode_t mode)
{
	return openat(AT_FDCWD, path, flags, mode);
}

int
util_write_all(int fd, const void *p, size_t n, size_t *done)
{
	ssize_t w;

	*done = 0;
	while (*done < n) {
		w = write(fd, (const char *)p + *done, n - *done);
		if (w < 0 && errno == EINTR) {
			continue;
		}
		if (w <= 0) {
			if (w == 0) {
				errno = EIO;
			}
			return -1;
		}
		*done += (size_t)w;
	}
	return 0;
}
