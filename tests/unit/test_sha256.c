/* Unit tests for sha256: the NIST vectors on both paths, every length
 * 0..1100 of pseudo-random bytes at every alignment against BearSSL's
 * own br_sha256 (fed in pieces), and a check that a CPU whose kernel
 * reports the SHA instructions really gets the accelerated code. Prints
 * which code ran. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bearssl_hash.h"
#include "sha256.h"
#include "t.h"

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#elif defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_SHA2
#define HWCAP_SHA2 (1UL << 6)
#endif
#endif

#define MAXLEN 1100
#define SHIFTS 16

static char *
hex(const unsigned char h[32])
{
	static char s[65];
	int i;

	for (i = 0; i < 32; i++)
		snprintf(s + 2 * i, 3, "%02x", h[i]);
	return s;
}

/* BearSSL in uneven pieces, so its buffering is exercised too. */
static void
ref(const unsigned char *p, size_t n, unsigned char out[32])
{
	br_sha256_context c;
	size_t k, step = 1;

	br_sha256_init(&c);
	while (n > 0) {
		k = step < n ? step : n;
		br_sha256_update(&c, p, k);
		p += k;
		n -= k;
		step = step * 3 + 1;
	}
	br_sha256_out(&c, out);
}

/* What the CPU offers, asked independently of sha256.c. On x86-64 the
 * kernel's flags in /proc/cpuinfo, and cpuid as this process sees it:
 * valgrind and some emulators hide SHA from cpuid, and then the portable
 * code is the right answer. On aarch64 the kernel's HWCAP. Returns the
 * name sha256_impl() should report, or "portable". */
static const char *
expected_impl(void)
{
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
	static char line[8192];
	FILE *f = fopen("/proc/cpuinfo", "r");
	unsigned a, b, c, d;
	int kernel = -1, cpuid;

	if (f != NULL) {
		while (fgets(line, sizeof line, f) != NULL) {
			if (strncmp(line, "flags", 5) != 0)
				continue;
			kernel = strstr(line, " sha_ni") != NULL &&
			    strstr(line, " ssse3") != NULL &&
			    strstr(line, " sse4_1") != NULL;
			break;
		}
		fclose(f);
	}
	cpuid = __get_cpuid(1, &a, &b, &c, &d) && (c >> 9 & 1) &&
	    (c >> 19 & 1) && __get_cpuid_count(7, 0, &a, &b, &c, &d) &&
	    (b >> 29 & 1);
	if (kernel == 1 && !cpuid)
		printf("sha256: /proc/cpuinfo has sha_ni but cpuid hides it "
		    "(valgrind? an emulator?)\n");
	return cpuid && kernel != 0 ? "sha-ni" : "portable";
#elif defined(__aarch64__) && defined(__linux__)
	return getauxval(AT_HWCAP) & HWCAP_SHA2 ? "armv8-sha2" : "portable";
#else
	return "portable";
#endif
}

static const struct {
	const char *msg, *want;
} nist[] = {
	{ "", "e3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855" },
	{ "abc", "ba7816bf8f01cfea414140de5dae2223"
	    "b00361a396177a9cb410ff61f20015ad" },
	{ "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
	    "248d6a61d20638b8e5c026930c3e6039"
	    "a33ce45964ff2167f6ecedd419db06c1" },
	{ "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmn"
	    "hijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
	    "cf5b16a778af8380036ce59e7b049237"
	    "0b249b11e8f07a51afac45037afee9d1" },
};

static void
test_nist(const char *path)
{
	unsigned char h[32];
	unsigned char *m;
	size_t i;

	for (i = 0; i < sizeof nist / sizeof nist[0]; i++) {
		sha256(nist[i].msg, strlen(nist[i].msg), h);
		ok_str(hex(h), nist[i].want, path);
	}
	/* One million 'a', in one call. */
	m = malloc(1000000);
	ok(m != NULL, "malloc");
	if (m == NULL)
		return;
	memset(m, 'a', 1000000);
	sha256(m, 1000000, h);
	ok_str(hex(h), "cdc76e5c9914fb9281a1c7e284d73e67"
	    "f1809a48a497200e046d39ccc7112cd0", path);
	free(m);
}

/* Every length at every alignment against BearSSL. */
static void
test_lengths(const char *path)
{
	static unsigned char buf[MAXLEN + SHIFTS + 64];
	unsigned char want[32], got[32];
	uint32_t x = 0x12345678;
	size_t n, i, bad_n = 0, bad_s = 0;
	int s, bad = 0;

	for (i = 0; i < sizeof buf; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		buf[i] = (unsigned char)(x >> 11);
	}
	for (n = 0; n <= MAXLEN; n++) {
		for (s = 0; s < SHIFTS; s++) {
			ref(buf + s, n, want);
			sha256(buf + s, n, got);
			if (memcmp(got, want, 32) != 0) {
				if (bad++ == 0) {
					bad_n = n;
					bad_s = (size_t)s;
				}
			}
		}
	}
	ok(bad == 0, "%s: %d of %d (length, offset) pairs differ from "
	    "BearSSL, first length %zu offset %zu", path, bad,
	    (MAXLEN + 1) * SHIFTS, bad_n, bad_s);
	/* The input is only read, and nothing past n. */
	memset(buf, 0xA5, sizeof buf);
	ref(buf + 3, 200, want);
	buf[203] = 0x5A;
	sha256(buf + 3, 200, got);
	ok(memcmp(got, want, 32) == 0, "%s: bytes past n ignored", path);
	ok(buf[203] == 0x5A && buf[202] == 0xA5, "%s: input untouched", path);
}

int
main(void)
{
	const char *want = expected_impl(), *impl = sha256_impl();

	printf("sha256: code in use: %s (CPU offers: %s)\n", impl, want);
	if (strcmp(want, "portable") != 0)
		ok_str(impl, want, "the CPU's SHA instructions are used");
	test_nist(impl);
	test_lengths(impl);

	sha256_force_portable(1);
	ok_str(sha256_impl(), "portable", "forced portable");
	test_nist("portable");
	test_lengths("portable");
	sha256_force_portable(0);
	ok_str(sha256_impl(), impl, "back to detection");
	printf("sha256: both paths tested: %s and portable\n", impl);
	return t_done("sha256");
}
