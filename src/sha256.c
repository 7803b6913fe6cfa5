/* sha256: SHA-256 with the CPU's SHA instructions, BearSSL otherwise.
 *
 * The accelerated code is compiled for its instruction set function by
 * function (a target attribute, as BearSSL does for AES-NI), so the rest
 * of the build keeps its flags, and it only runs after the CPU said it
 * has the instructions (cpuid on x86-64, the kernel's HWCAP on aarch64).
 * Both paths compress whole 64-byte blocks straight from the caller's
 * bytes and pad the tail in a local block; the padding is FIPS 180-4's.
 * Other targets and compilers get BearSSL's br_sha256, nothing else. */
#include <stdint.h>
#include <string.h>

#include "bearssl_hash.h"
#include "sha256.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define SHA_X86 1
#include <cpuid.h>
#include <immintrin.h>
#elif defined(__aarch64__) && defined(__linux__) && defined(__GNUC__) && \
    (!defined(__clang__) || defined(__ARM_FEATURE_CRYPTO) || \
    defined(__ARM_FEATURE_SHA2))
/* clang before 16 declares the SHA intrinsics only when the whole file
 * is compiled for them, so with clang this needs -march=...+crypto. */
#define SHA_ARM 1
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1UL << 6)
#endif
#endif

#if defined(SHA_X86) || defined(SHA_ARM)
#define SHA_ACCEL 1

static const uint32_t K[64] = {
	0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5,
	0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
	0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
	0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
	0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc,
	0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
	0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
	0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
	0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
	0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
	0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3,
	0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
	0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5,
	0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
	0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
	0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2
};
#endif

#if defined(SHA_X86)
/* Four rounds at a time, sixteen times; the message schedule runs as a
 * window of four 4-word vectors (m0 = W[i..i+3], ...). SHA256RNDS2 wants
 * the state as ABEF/CDGH, so it is reordered on the way in and out. */
__attribute__((target("sha,sse4.1"))) static void
blocks_x86(uint32_t st[8], const unsigned char *p, size_t nb)
{
	const __m128i bswap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL,
	    0x0405060700010203LL);
	__m128i s0, s1, t, a0, a1, m0, m1, m2, m3, m4;
	int i;

	t = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)st), 0xB1);
	s1 = _mm_shuffle_epi32(_mm_loadu_si128((const __m128i *)(st + 4)),
	    0x1B);
	s0 = _mm_alignr_epi8(t, s1, 8);		/* ABEF */
	s1 = _mm_blend_epi16(s1, t, 0xF0);	/* CDGH */
	for (; nb > 0; nb--, p += 64) {
		a0 = s0;
		a1 = s1;
		m0 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)p),
		    bswap);
		m1 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)
		    (p + 16)), bswap);
		m2 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)
		    (p + 32)), bswap);
		m3 = _mm_shuffle_epi8(_mm_loadu_si128((const __m128i *)
		    (p + 48)), bswap);
		for (i = 0; i < 16; i++) {
			t = _mm_add_epi32(m0,
			    _mm_loadu_si128((const __m128i *)(K + 4 * i)));
			s1 = _mm_sha256rnds2_epu32(s1, s0, t);
			s0 = _mm_sha256rnds2_epu32(s0, s1,
			    _mm_shuffle_epi32(t, 0x0E));
			if (i < 12) {	/* W[4i+16..4i+19] */
				m4 = _mm_add_epi32(_mm_sha256msg1_epu32(m0,
				    m1), _mm_alignr_epi8(m3, m2, 4));
				m4 = _mm_sha256msg2_epu32(m4, m3);
			}
			m0 = m1;
			m1 = m2;
			m2 = m3;
			m3 = m4;
		}
		s0 = _mm_add_epi32(s0, a0);
		s1 = _mm_add_epi32(s1, a1);
	}
	t = _mm_shuffle_epi32(s0, 0x1B);		/* FEBA */
	s1 = _mm_shuffle_epi32(s1, 0xB1);		/* DCHG */
	_mm_storeu_si128((__m128i *)st, _mm_blend_epi16(t, s1, 0xF0));
	_mm_storeu_si128((__m128i *)(st + 4), _mm_alignr_epi8(s1, t, 8));
}

static int
cpu_has_sha(void)
{
	unsigned a, b, c, d;

	/* Leaf 1 ECX: SSSE3 (bit 9), SSE4.1 (19); leaf 7 EBX: SHA (29). */
	if (!__get_cpuid(1, &a, &b, &c, &d) ||
	    (c & (1u << 9)) == 0 || (c & (1u << 19)) == 0)
		return 0;
	if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
		return 0;
	return (b >> 29) & 1;
}
#define blocks_accel blocks_x86
#define ACCEL_NAME "sha-ni"
#endif

#if defined(SHA_ARM)
/* SHA256H/SHA256H2 do four rounds on ABCD/EFGH; SHA256SU0/SU1 extend
 * the message schedule four words at a time. */
#if defined(__clang__)
__attribute__((target("crypto")))
#else
__attribute__((target("+crypto")))
#endif
static void
blocks_arm(uint32_t st[8], const unsigned char *p, size_t nb)
{
	uint32x4_t abcd, efgh, a0, e0, t, x, m0, m1, m2, m3, m4;
	int i;

	abcd = vld1q_u32(st);
	efgh = vld1q_u32(st + 4);
	for (; nb > 0; nb--, p += 64) {
		a0 = abcd;
		e0 = efgh;
		m0 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p)));
		m1 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 16)));
		m2 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 32)));
		m3 = vreinterpretq_u32_u8(vrev32q_u8(vld1q_u8(p + 48)));
		for (i = 0; i < 16; i++) {
			t = vaddq_u32(m0, vld1q_u32(K + 4 * i));
			x = abcd;
			abcd = vsha256hq_u32(abcd, efgh, t);
			efgh = vsha256h2q_u32(efgh, x, t);
			if (i < 12)	/* W[4i+16..4i+19] */
				m4 = vsha256su1q_u32(vsha256su0q_u32(m0, m1),
				    m2, m3);
			m0 = m1;
			m1 = m2;
			m2 = m3;
			m3 = m4;
		}
		abcd = vaddq_u32(abcd, a0);
		efgh = vaddq_u32(efgh, e0);
	}
	vst1q_u32(st, abcd);
	vst1q_u32(st + 4, efgh);
}

static int
cpu_has_sha(void)
{
	return (getauxval(AT_HWCAP) & HWCAP_SHA2) != 0;
}
#define blocks_accel blocks_arm
#define ACCEL_NAME "armv8-sha2"
#endif

static int force_portable;

#if defined(SHA_ACCEL)
/* -1: not asked yet. Racing first callers store the same answer. */
static int have_accel = -1;

static int
use_accel(void)
{
	if (force_portable)
		return 0;
	if (have_accel < 0)
		have_accel = cpu_has_sha();
	return have_accel;
}
#endif

void
sha256_force_portable(int on)
{
	force_portable = on != 0;
}

const char *
sha256_impl(void)
{
#if defined(SHA_ACCEL)
	if (use_accel())
		return ACCEL_NAME;
#endif
	return "portable";
}

void
sha256(const void *data, size_t n, unsigned char out[32])
{
#if defined(SHA_ACCEL)
	static const uint32_t iv[8] = {
		0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
		0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19
	};
	const unsigned char *p = data;
	unsigned char tail[128];
	uint32_t st[8];
	uint64_t bits;
	size_t full, r, nb, i;

	if (use_accel()) {
		memcpy(st, iv, sizeof st);
		full = n / 64;
		if (full > 0)
			blocks_accel(st, p, full);
		/* The rest, 0x80, zeros, the bit length: one or two blocks. */
		r = n % 64;
		nb = r < 56 ? 1 : 2;
		if (r > 0)
			memcpy(tail, p + 64 * full, r);
		tail[r] = 0x80;
		memset(tail + r + 1, 0, 64 * nb - 8 - r - 1);
		bits = (uint64_t)n << 3;
		for (i = 1; i <= 8; i++, bits >>= 8)
			tail[64 * nb - i] = (unsigned char)bits;
		blocks_accel(st, tail, nb);
		for (i = 0; i < 8; i++) {
			out[4 * i] = (unsigned char)(st[i] >> 24);
			out[4 * i + 1] = (unsigned char)(st[i] >> 16);
			out[4 * i + 2] = (unsigned char)(st[i] >> 8);
			out[4 * i + 3] = (unsigned char)st[i];
		}
		return;
	}
#endif
	{
		br_sha256_context ctx;

		br_sha256_init(&ctx);
		br_sha256_update(&ctx, data, n);
		br_sha256_out(&ctx, out);
	}
}
