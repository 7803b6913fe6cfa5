/* libFuzzer harness for the pure message code of src/dns.c:
 * dns_parse_answer (the input as a UDP answer), dns_parse_resolv_conf and
 * dns_parse_hosts (the input as file text), and dns_build_query.
 *
 * So that answers get past the question check, the wanted id is the
 * message's own and the wanted name is read from its question when that
 * is a plain (uncompressed) name; both A and AAAA are asked.
 *
 * Invariants checked besides memory safety:
 *  - an accepted answer has at most DNS_ADDR_MAX addresses, all of the
 *    asked family, and an rcode that fits in 4 bits (12 with EDNS);
 *  - a query built for a name is not accepted as an answer, and the same
 *    bytes with QR set and no records are, with no address: the name
 *    encoder and decoder agree;
 *  - resolv.conf parsing always leaves 1..DNS_MAX_NS nameservers and the
 *    options in glibc's ranges;
 *  - hosts parsing is a prefix operation: with room for k entries it
 *    returns the first k of what it returns with room for all, and every
 *    name is lower-case, without a trailing dot. */
#include <arpa/inet.h>
#include <ctype.h>
#include <sys/socket.h>

#include "dns.h"
#include "fuzz.h"

/* The first question's name as dotted text, or -1 when it is compressed,
 * malformed or too long. */
static int
question_name(const unsigned char *m, size_t n, char *out, size_t cap)
{
	size_t off = 12, o = 0, l;

	if (n < 12) {
		return -1;
	}
	for (;;) {
		if (off >= n) {
			return -1;
		}
		l = m[off++];
		if (l == 0) {
			break;
		}
		if (l > 63 || off + l > n || o + l + 2 > cap) {
			return -1;
		}
		if (o > 0) {
			out[o++] = '.';
		}
		memcpy(out + o, m + off, l);
		o += l;
		off += l;
	}
	if (o == 0 || memchr(out, '\0', o) != NULL) {
		return -1;
	}
	out[o] = '\0';
	return 0;
}

static void
check_answer(const unsigned char *m, size_t n, const char *qname, int qtype)
{
	struct dns_answer a;
	uint16_t id = n >= 2 ? (uint16_t)(m[0] << 8 | m[1]) : 0;
	int r, i;

	r = dns_parse_answer(m, n, id, qname, qtype, &a);
	CHECK(r == 0 || r == -1);
	if (r == 0) {
		CHECK(a.rcode >= 0 && a.rcode <= 0xfff);
		CHECK(a.naddr >= 0 && a.naddr <= DNS_ADDR_MAX);
		for (i = 0; i < a.naddr; i++) {
			CHECK(a.addr[i].family == (qtype == DNS_QTYPE_A ?
			    AF_INET : AF_INET6));
		}
	}
}

static void
check_query_roundtrip(const char *qname, int qtype)
{
	unsigned char q[600];
	struct dns_answer a;
	int n;

	n = dns_build_query(q, sizeof q, 0x1234, qname, qtype);
	if (n < 0) {
		return;
	}
	CHECK(n >= 12 + 4 + 1 && (size_t)n <= sizeof q);
	CHECK(dns_parse_answer(q, (size_t)n, 0x1234, qname, qtype, &a) == -1);
	q[2] |= 0x80;		/* QR: this is a response */
	CHECK(dns_parse_answer(q, (size_t)n, 0x1234, qname, qtype, &a) == 0);
	CHECK(a.rcode == 0 && a.naddr == 0);
	CHECK(dns_parse_answer(q, (size_t)n, 0x4321, qname, qtype, &a) == -1);
}

static void
check_resolv(const char *t, size_t n)
{
	struct dns_resolv r;
	int found;

	found = dns_parse_resolv_conf(t, n, &r);
	CHECK(found >= 0 && found <= DNS_MAX_NS);
	CHECK(r.nns >= 1 && r.nns <= DNS_MAX_NS);
	CHECK(found == 0 || r.nns == found);
	CHECK(r.timeout_ms >= 1000 && r.timeout_ms <= 30000);
	CHECK(r.attempts >= 1 && r.attempts <= 5);
}

static struct dns_host all[DNS_HOSTS_MAX], some[DNS_HOSTS_MAX];

static void
check_hosts(const char *t, size_t n, unsigned k)
{
	int na, ns, i;
	size_t j, len;

	na = dns_parse_hosts(t, n, all, DNS_HOSTS_MAX);
	CHECK(na >= 0 && na <= DNS_HOSTS_MAX);
	for (i = 0; i < na; i++) {
		len = strnlen(all[i].name, DNS_NAME_MAX);
		CHECK(len > 0 && len < DNS_NAME_MAX);
		CHECK(all[i].name[len - 1] != '.');
		for (j = 0; j < len; j++) {
			CHECK(!isupper((unsigned char)all[i].name[j]));
		}
		CHECK(all[i].ip.family == AF_INET ||
		    all[i].ip.family == AF_INET6);
	}
	ns = dns_parse_hosts(t, n, some, (int)k);
	CHECK(ns == (na < (int)k ? na : (int)k));
	for (i = 0; i < ns; i++) {
		CHECK(strcmp(some[i].name, all[i].name) == 0);
		CHECK(memcmp(&some[i].ip, &all[i].ip, sizeof all[i].ip) == 0);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	unsigned char *m = (unsigned char *)fuzz_dup(data, size);
	char qname[300];

	if (question_name(m, size, qname, sizeof qname) < 0) {
		strcpy(qname, "example.com");
	}
	check_answer(m, size, qname, DNS_QTYPE_A);
	check_answer(m, size, qname, DNS_QTYPE_AAAA);
	check_query_roundtrip(qname, DNS_QTYPE_A);
	check_query_roundtrip(qname, DNS_QTYPE_AAAA);

	check_resolv((const char *)m, size);
	check_hosts((const char *)m, size, size ? m[size - 1] % 8 : 0);
	free(m);
	return 0;
}
