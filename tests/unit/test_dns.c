/* Unit tests for dns: query building, answer parsing on hand-made and
 * hostile packets (behind a PROT_NONE guard page), resolv.conf and hosts
 * parsing, lookups from files, and whole lookups against fake nameservers
 * on loopback UDP driven through dns_fds/dns_step. Time is injected as
 * now_ms; nothing sleeps (poll only waits for datagrams already sent). */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "t.h"

/* ---- packet building ---- */

struct pkt {
	unsigned char b[2048];
	size_t n;
};

static void
p8(struct pkt *p, unsigned v)
{
	p->b[p->n++] = (unsigned char)v;
}

static void
p16(struct pkt *p, unsigned v)
{
	p8(p, v >> 8);
	p8(p, v & 0xFF);
}

static void
p32(struct pkt *p, uint32_t v)
{
	p16(p, v >> 16);
	p16(p, v & 0xFFFF);
}

static void
pbytes(struct pkt *p, const void *v, size_t n)
{
	memcpy(p->b + p->n, v, n);
	p->n += n;
}

/* Labels of a dotted name, without the final zero (so that a pointer or
 * a zero can follow). */
static void
plabels(struct pkt *p, const char *name)
{
	const char *dot;
	size_t len;

	while (*name != '\0') {
		dot = strchr(name, '.');
		len = dot != NULL ? (size_t)(dot - name) : strlen(name);
		p8(p, (unsigned)len);
		pbytes(p, name, len);
		name += len + (dot != NULL);
	}
}

static void
pname(struct pkt *p, const char *name)
{
	plabels(p, name);
	p8(p, 0);
}

static void
pptr(struct pkt *p, size_t off)
{
	p16(p, 0xC000 | (unsigned)off);
}

static void
phdr(struct pkt *p, unsigned id, unsigned flags, unsigned qd, unsigned an)
{
	p->n = 0;
	p16(p, id);
	p16(p, flags);
	p16(p, qd);
	p16(p, an);
	p16(p, 0);
	p16(p, 0);
}

static void
pquestion(struct pkt *p, const char *name, unsigned type)
{
	pname(p, name);
	p16(p, type);
	p16(p, 1);
}

/* Type, class IN, ttl and rdlength (the owner is written before). */
static void
prr(struct pkt *p, unsigned type, uint32_t ttl, unsigned rdlen)
{
	p16(p, type);
	p16(p, 1);
	p32(p, ttl);
	p16(p, rdlen);
}

static void
pa(struct pkt *p, uint32_t ttl, const char *ip)
{
	unsigned char a[4];

	inet_pton(AF_INET, ip, a);
	prr(p, DNS_QTYPE_A, ttl, 4);
	pbytes(p, a, 4);
}

static void
paaaa(struct pkt *p, uint32_t ttl, const char *ip)
{
	unsigned char a[16];

	inet_pton(AF_INET6, ip, a);
	prr(p, DNS_QTYPE_AAAA, ttl, 16);
	pbytes(p, a, 16);
}

/* dns_parse_answer on a copy that ends right at a PROT_NONE page, so any
 * over-read crashes the test (picohttpparser's trick). */
static int
parse_guarded(const unsigned char *msg, size_t len, uint16_t id,
    const char *qname, int qtype, struct dns_answer *out)
{
	static unsigned char *page;
	static size_t pg;

	if (page == NULL) {
		pg = (size_t)sysconf(_SC_PAGESIZE);
		page = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (page == MAP_FAILED || mprotect(page + pg, pg,
		    PROT_NONE) < 0) {
			perror("mmap");
			exit(2);
		}
	}
	if (len > pg) {
		return -2;
	}
	memcpy(page + pg - len, msg, len);
	return dns_parse_answer(page + pg - len, len, id, qname, qtype, out);
}

static const char *
ipstr(const struct dns_ip *ip)
{
	static char buf[4][INET6_ADDRSTRLEN];
	static int k;

	k = (k + 1) % 4;
	inet_ntop(ip->family, ip->a, buf[k], sizeof(buf[k]));
	return buf[k];
}

static const char *
addrstr(const struct net_addr *a)
{
	static char buf[4][64];
	static int k;
	char ip[INET6_ADDRSTRLEN];
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;

	k = (k + 1) % 4;
	if (a->ss.ss_family == AF_INET) {
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		snprintf(buf[k], sizeof(buf[k]), "%s:%u", ip,
		    ntohs(s4->sin_port));
	} else if (a->ss.ss_family == AF_INET6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		snprintf(buf[k], sizeof(buf[k]), "[%s]:%u", ip,
		    ntohs(s6->sin6_port));
	} else {
		snprintf(buf[k], sizeof(buf[k]), "family %d",
		    a->ss.ss_family);
	}
	return buf[k];
}

/* ---- building queries ---- */

static void
test_build_query(void)
{
	static const unsigned char want[] = {
		0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0,
		3, 'a', 'p', 'i', 6, 'o', 'p', 'e', 'n', 'a', 'i',
		3, 'c', 'o', 'm', 0, 0, 1, 0, 1
	};
	unsigned char b[600];
	char name[300];
	int n;

	n = dns_build_query(b, sizeof(b), 0x1234, "api.openai.com",
	    DNS_QTYPE_A);
	ok(n == (int)sizeof(want) && memcmp(b, want, sizeof(want)) == 0,
	    "query bytes for api.openai.com A (n=%d)", n);
	n = dns_build_query(b, sizeof(b), 0x1234, "API.OpenAI.com.",
	    DNS_QTYPE_A);
	ok(n == (int)sizeof(want) && memcmp(b, want, sizeof(want)) == 0,
	    "query lowercases and drops the trailing dot");
	n = dns_build_query(b, sizeof(b), 0xBEEF, "x", DNS_QTYPE_AAAA);
	ok(n == 12 + 3 + 4 && b[0] == 0xBE && b[1] == 0xEF &&
	    b[n - 3] == 28, "one-label AAAA query");
	ok_int(dns_build_query(b, sizeof(b), 1, "", 1), -1, "empty name");
	ok_int(dns_build_query(b, sizeof(b), 1, ".", 1), -1, "root name");
	ok_int(dns_build_query(b, sizeof(b), 1, "a..b", 1), -1,
	    "empty label");
	ok_int(dns_build_query(b, sizeof(b), 1, ".a", 1), -1,
	    "leading dot");
	ok_int(dns_build_query(b, sizeof(b), 1, "a b.com", 1), -1,
	    "space in name");
	ok_int(dns_build_query(b, sizeof(b), 1, "a\001.com", 1), -1,
	    "control byte in name");
	memset(name, 'a', 63);
	strcpy(name + 63, ".com");
	ok(dns_build_query(b, sizeof(b), 1, name, 1) > 0, "63-byte label");
	memset(name, 'a', 64);
	strcpy(name + 64, ".com");
	ok_int(dns_build_query(b, sizeof(b), 1, name, 1), -1,
	    "64-byte label");
	/* 4 labels of 63 plus dots = 255 chars: too long; 253 is the max. */
	memset(name, 'a', 255);
	name[63] = name[127] = name[191] = '.';
	name[255] = '\0';
	ok_int(dns_build_query(b, sizeof(b), 1, name, 1), -1,
	    "255-character name");
	name[253] = '\0';
	ok(dns_build_query(b, sizeof(b), 1, name, 1) > 0,
	    "253-character name");
	ok_int(dns_build_query(b, 20, 1, "api.openai.com", 1), -1,
	    "cap too small");
}

/* ---- parsing answers ---- */

/* api.openai.com A: two A records owned through a pointer to the
 * question (the usual compression). */
static void
simple_answer(struct pkt *p, unsigned id, unsigned flags)
{
	phdr(p, id, flags, 1, 2);
	pquestion(p, "api.openai.com", DNS_QTYPE_A);
	pptr(p, 12);
	pa(p, 300, "1.2.3.4");
	pptr(p, 12);
	pa(p, 60, "5.6.7.8");
}

static void
test_parse_simple(void)
{
	struct pkt p;
	struct dns_answer a;
	size_t n;
	int rc, bad;

	simple_answer(&p, 0x1234, 0x8180);
	rc = parse_guarded(p.b, p.n, 0x1234, "api.openai.com", DNS_QTYPE_A,
	    &a);
	ok_int(rc, 0, "simple answer parses");
	ok_int(a.rcode, 0, "simple rcode");
	ok_int(a.naddr, 2, "simple naddr");
	ok_int(a.ttl_s, 60, "simple min ttl");
	ok_int(a.truncated, 0, "simple not truncated");
	ok_str(ipstr(&a.addr[0]), "1.2.3.4", "simple addr 0");
	ok_str(ipstr(&a.addr[1]), "5.6.7.8", "simple addr 1");
	ok_int(parse_guarded(p.b, p.n, 0x1234, "API.OPENAI.COM.",
	    DNS_QTYPE_A, &a), 0, "qname compared without case");

	ok_int(parse_guarded(p.b, p.n, 0x1235, "api.openai.com",
	    DNS_QTYPE_A, &a), -1, "wrong id rejected");
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.org",
	    DNS_QTYPE_A, &a), -1, "other question rejected");
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.com",
	    DNS_QTYPE_AAAA, &a), -1, "other qtype rejected");
	simple_answer(&p, 0x1234, 0x0180);
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.com",
	    DNS_QTYPE_A, &a), -1, "a query (QR clear) rejected");
	simple_answer(&p, 0x1234, 0x8180 | (2 << 11));
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.com",
	    DNS_QTYPE_A, &a), -1, "opcode STATUS rejected");
	simple_answer(&p, 0x1234, 0x8180);
	p.b[5] = 0;
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.com",
	    DNS_QTYPE_A, &a), -1, "qdcount 0 rejected");
	simple_answer(&p, 0x1234, 0x8180);
	p.b[5] = 2;
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.com",
	    DNS_QTYPE_A, &a), -1, "qdcount 2 rejected");
	simple_answer(&p, 0x1234, 0x8180);
	p.b[12 + 16 + 3] = 3;	/* qclass CH */
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.com",
	    DNS_QTYPE_A, &a), -1, "qclass CH rejected");
	simple_answer(&p, 0x1234, 0x8180);
	p.b[7] = 3;	/* ancount larger than what follows */
	ok_int(parse_guarded(p.b, p.n, 0x1234, "api.openai.com",
	    DNS_QTYPE_A, &a), -1, "ancount past the end rejected");

	/* Every strict prefix is malformed. */
	simple_answer(&p, 0x1234, 0x8180);
	bad = 0;
	for (n = 0; n < p.n; n++) {
		if (parse_guarded(p.b, n, 0x1234, "api.openai.com",
		    DNS_QTYPE_A, &a) != -1) {
			bad++;
		}
	}
	ok_int(bad, 0, "every prefix rejected");

	/* TTL with the top bit set counts as 0 (RFC 2181). */
	phdr(&p, 7, 0x8180, 1, 1);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	pptr(&p, 12);
	pa(&p, 0x80000001u, "1.1.1.1");
	ok(parse_guarded(p.b, p.n, 7, "a.test", DNS_QTYPE_A, &a) == 0 &&
	    a.ttl_s == 0, "negative ttl means 0");
}

static void
test_parse_cname(void)
{
	struct pkt p;
	struct dns_answer a;
	size_t tgt, sfx;

	/* api.openai.com CNAME edge.cdn.example.net; edge... A 9.9.9.9 and
	 * 9.9.9.8; an unrelated A; the min TTL covers the chain. */
	phdr(&p, 1, 0x8180, 1, 4);
	pquestion(&p, "api.openai.com", DNS_QTYPE_A);
	pptr(&p, 12);
	prr(&p, DNS_QTYPE_CNAME, 100, 22);
	tgt = p.n;
	pname(&p, "edge.cdn.example.net");
	pptr(&p, tgt);
	pa(&p, 50, "9.9.9.9");
	pname(&p, "other.example");
	pa(&p, 1, "6.6.6.6");
	pptr(&p, tgt);
	pa(&p, 70, "9.9.9.8");
	ok_int(parse_guarded(p.b, p.n, 1, "api.openai.com", DNS_QTYPE_A, &a),
	    0, "cname answer parses");
	ok_int(a.naddr, 2, "cname naddr");
	ok_str(ipstr(&a.addr[0]), "9.9.9.9", "cname addr 0");
	ok_str(ipstr(&a.addr[1]), "9.9.9.8", "cname addr 1");
	ok_int(a.ttl_s, 50, "cname min ttl");

	/* Two hops, compressed targets, addresses listed first. */
	phdr(&p, 2, 0x8180, 1, 3);
	pquestion(&p, "a.example.net", DNS_QTYPE_AAAA);
	sfx = 12 + 2;	/* "example.net" inside the question */
	plabels(&p, "c");
	pptr(&p, sfx);
	paaaa(&p, 40, "2001:db8::7");
	pptr(&p, 12);
	prr(&p, DNS_QTYPE_CNAME, 30, 4);
	tgt = p.n;
	plabels(&p, "b");
	pptr(&p, sfx);
	pptr(&p, tgt);
	prr(&p, DNS_QTYPE_CNAME, 20, 4);
	plabels(&p, "c");
	pptr(&p, sfx);
	ok_int(parse_guarded(p.b, p.n, 2, "a.example.net", DNS_QTYPE_AAAA,
	    &a), 0, "two-hop cname parses");
	ok(a.naddr == 1 && strcmp(ipstr(&a.addr[0]), "2001:db8::7") == 0,
	    "two-hop cname address (naddr %d)", a.naddr);
	ok_int(a.ttl_s, 20, "two-hop min ttl");

	/* a -> b -> a: no address, no hang. */
	phdr(&p, 3, 0x8180, 1, 2);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	pptr(&p, 12);
	prr(&p, DNS_QTYPE_CNAME, 5, 4);
	tgt = p.n;
	plabels(&p, "b");
	pptr(&p, 14);
	pptr(&p, tgt);
	prr(&p, DNS_QTYPE_CNAME, 5, 2);
	pptr(&p, 12);
	ok(parse_guarded(p.b, p.n, 3, "a.test", DNS_QTYPE_A, &a) == 0 &&
	    a.naddr == 0, "cname loop ends with no address");

	/* An address for the question name is not used once it has a
	 * CNAME: only the chain's end counts. The malformed CNAME target
	 * makes the whole answer malformed. */
	phdr(&p, 4, 0x8180, 1, 1);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	pptr(&p, 12);
	prr(&p, DNS_QTYPE_CNAME, 5, 3);
	p8(&p, 1);
	p8(&p, 'b');
	p8(&p, 5);	/* label runs past the rdata and the packet */
	ok_int(parse_guarded(p.b, p.n, 4, "a.test", DNS_QTYPE_A, &a), -1,
	    "bad cname target rejected");
}

static void
test_parse_misc(void)
{
	struct pkt p;
	struct dns_answer a;
	int i;

	phdr(&p, 9, 0x8183, 1, 0);
	pquestion(&p, "nx.test", DNS_QTYPE_A);
	ok(parse_guarded(p.b, p.n, 9, "nx.test", DNS_QTYPE_A, &a) == 0 &&
	    a.rcode == DNS_RCODE_NXDOMAIN && a.naddr == 0, "NXDOMAIN");
	phdr(&p, 9, 0x8182, 1, 0);
	pquestion(&p, "sf.test", DNS_QTYPE_A);
	ok(parse_guarded(p.b, p.n, 9, "sf.test", DNS_QTYPE_A, &a) == 0 &&
	    a.rcode == DNS_RCODE_SERVFAIL, "SERVFAIL");

	/* AAAA with the wrong rdlength is malformed. */
	phdr(&p, 9, 0x8180, 1, 1);
	pquestion(&p, "v6.test", DNS_QTYPE_AAAA);
	pptr(&p, 12);
	prr(&p, DNS_QTYPE_AAAA, 60, 4);
	p32(&p, 0x01020304);
	ok_int(parse_guarded(p.b, p.n, 9, "v6.test", DNS_QTYPE_AAAA, &a), -1,
	    "AAAA with rdlength 4 rejected");
	phdr(&p, 9, 0x8180, 1, 1);
	pquestion(&p, "v4.test", DNS_QTYPE_A);
	pptr(&p, 12);
	prr(&p, DNS_QTYPE_A, 60, 5);
	p32(&p, 0x01020304);
	p8(&p, 0);
	ok_int(parse_guarded(p.b, p.n, 9, "v4.test", DNS_QTYPE_A, &a), -1,
	    "A with rdlength 5 rejected");

	/* TC: a message cut inside its second record still yields the
	 * first; without TC the same bytes are malformed. */
	phdr(&p, 9, 0x8380, 1, 2);
	pquestion(&p, "tc.test", DNS_QTYPE_A);
	pptr(&p, 12);
	pa(&p, 60, "1.2.3.4");
	pptr(&p, 12);
	p16(&p, 1);
	ok(parse_guarded(p.b, p.n, 9, "tc.test", DNS_QTYPE_A, &a) == 0 &&
	    a.truncated && a.naddr == 1, "truncated answer keeps records");
	p.b[2] = 0x81;
	ok_int(parse_guarded(p.b, p.n, 9, "tc.test", DNS_QTYPE_A, &a), -1,
	    "same bytes without TC rejected");

	/* Records of other classes and types are skipped. */
	phdr(&p, 9, 0x8180, 1, 2);
	pquestion(&p, "c.test", DNS_QTYPE_A);
	pptr(&p, 12);
	p16(&p, DNS_QTYPE_A);
	p16(&p, 3);
	p32(&p, 60);
	p16(&p, 4);
	p32(&p, 0x01010101);
	pptr(&p, 12);
	prr(&p, 16, 60, 3);
	p8(&p, 2);
	p16(&p, 0x6869);
	ok(parse_guarded(p.b, p.n, 9, "c.test", DNS_QTYPE_A, &a) == 0 &&
	    a.naddr == 0, "CH class and TXT skipped");

	/* More records than DNS_ADDR_MAX: the first ones are kept. */
	phdr(&p, 9, 0x8180, 1, 12);
	pquestion(&p, "many.test", DNS_QTYPE_A);
	for (i = 0; i < 12; i++) {
		pptr(&p, 12);
		prr(&p, DNS_QTYPE_A, 60, 4);
		p32(&p, 0x0A000000u + (uint32_t)i);
	}
	ok(parse_guarded(p.b, p.n, 9, "many.test", DNS_QTYPE_A, &a) == 0 &&
	    a.naddr == DNS_ADDR_MAX &&
	    strcmp(ipstr(&a.addr[0]), "10.0.0.0") == 0, "addresses capped");
}

static void
test_parse_hostile(void)
{
	struct pkt p;
	struct dns_answer a;
	size_t x, y, prev;
	int i;

	/* The question name is a pointer to itself. */
	phdr(&p, 5, 0x8180, 1, 0);
	pptr(&p, 12);
	p16(&p, 1);
	p16(&p, 1);
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "self pointer rejected");

	/* A label, then a pointer back to that label: a loop. */
	phdr(&p, 5, 0x8180, 1, 0);
	p8(&p, 1);
	p8(&p, 'a');
	pptr(&p, 12);
	p16(&p, 1);
	p16(&p, 1);
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "label-then-loop rejected");

	/* Two owners pointing at each other. */
	phdr(&p, 5, 0x8180, 1, 1);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	x = p.n;
	pptr(&p, x + 2);
	pptr(&p, x);
	pa(&p, 1, "1.1.1.1");
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "forward pointer rejected");
	phdr(&p, 5, 0x8180, 1, 2);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	x = p.n;
	p8(&p, 1);
	p8(&p, 'q');
	y = p.n;
	pptr(&p, y + 2 + 10 + 4);	/* forward: to the next owner */
	pa(&p, 1, "1.1.1.1");
	pptr(&p, x);
	pa(&p, 1, "1.1.1.1");
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "mutual pointers rejected");

	/* Pointer past the end, label past the end, reserved label types. */
	phdr(&p, 5, 0x8180, 1, 1);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	pptr(&p, 0x3FFF);
	pa(&p, 1, "1.1.1.1");
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "pointer past the end rejected");
	phdr(&p, 5, 0x8180, 1, 0);
	p8(&p, 60);
	p8(&p, 'a');
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "label past the end rejected");
	phdr(&p, 5, 0x8180, 1, 1);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	p8(&p, 0x41);
	p8(&p, 0);
	pa(&p, 1, "1.1.1.1");
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "label type 01 rejected");
	phdr(&p, 5, 0x8180, 1, 1);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	p8(&p, 0x81);
	p8(&p, 0);
	pa(&p, 1, "1.1.1.1");
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "label type 10 rejected");

	/* An owner name over 255 bytes. */
	phdr(&p, 5, 0x8180, 1, 1);
	pquestion(&p, "a.test", DNS_QTYPE_A);
	for (i = 0; i < 4; i++) {
		p8(&p, 63);
		memset(p.b + p.n, 'x', 63);
		p.n += 63;
	}
	p8(&p, 0);
	pa(&p, 1, "1.1.1.1");
	ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a), -1,
	    "256-byte owner rejected");

	/* A long chain of legal backward pointers: each name is "a" plus a
	 * pointer to the previous one, inside an unrelated record's rdata.
	 * An owner deep in the chain exceeds the jump limit. */
	for (i = 0; i < 2; i++) {
		int depth = i == 0 ? 20 : 100, k;
		size_t rd;

		phdr(&p, 5, 0x8180, 1, 2);
		pquestion(&p, "a.test", DNS_QTYPE_A);
		pptr(&p, 12);
		rd = p.n + 10;
		prr(&p, 99, 1, (unsigned)(depth * 4 + 1));
		prev = p.n;
		p8(&p, 0);
		for (k = 0; k < depth; k++) {
			size_t here = p.n;

			p8(&p, 1);
			p8(&p, 'a');
			pptr(&p, prev);
			prev = here;
		}
		ok_int(p.n - rd, depth * 4 + 1, "chain rdata length");
		pptr(&p, prev);
		pa(&p, 1, "1.1.1.1");
		ok_int(parse_guarded(p.b, p.n, 5, "a.test", DNS_QTYPE_A, &a),
		    i == 0 ? 0 : -1, i == 0 ? "20 jumps allowed" :
		    "100 jumps rejected");
	}
}

/* xorshift32: deterministic noise for the fuzz loops. */
static uint32_t
rnd(void)
{
	static uint32_t s = 2463534242u;

	s ^= s << 13;
	s ^= s >> 17;
	s ^= s << 5;
	return s;
}

static void
test_parse_fuzz(void)
{
	struct pkt p, m;
	struct dns_answer a;
	size_t i, n, tgt;
	int k, rc, bad = 0, parsed = 0;
	static const unsigned char vals[] = { 0, 1, 0x3F, 0x40, 0xC0, 0xFF };

	/* Random bodies behind a plausible header and question. */
	for (k = 0; k < 20000; k++) {
		phdr(&p, 0x4242, 0x8180, 1, rnd() % 8);
		pquestion(&p, "f.test", DNS_QTYPE_A);
		n = rnd() % 300;
		for (i = 0; i < n; i++) {
			p8(&p, rnd() % 4 == 0 ? 0xC0 | (rnd() & 1) :
			    rnd() & 0xFF);
		}
		rc = parse_guarded(p.b, p.n, 0x4242, "f.test", DNS_QTYPE_A,
		    &a);
		if (rc != 0 && rc != -1) {
			bad++;
		}
		if (rc == 0 && (a.naddr < 0 || a.naddr > DNS_ADDR_MAX)) {
			bad++;
		}
	}
	ok_int(bad, 0, "random bodies: clean results");

	/* Every byte of a CNAME answer set to edge values. */
	phdr(&p, 1, 0x8180, 1, 2);
	pquestion(&p, "api.openai.com", DNS_QTYPE_A);
	pptr(&p, 12);
	prr(&p, DNS_QTYPE_CNAME, 100, 11);
	tgt = p.n;
	plabels(&p, "edge.cdn");
	pptr(&p, 12 + 4 + 7);
	pptr(&p, tgt);
	pa(&p, 50, "9.9.9.9");
	ok_int(parse_guarded(p.b, p.n, 1, "api.openai.com", DNS_QTYPE_A, &a),
	    0, "fuzz seed parses");
	ok_int(a.naddr, 1, "fuzz seed address");
	for (i = 0; i < p.n; i++) {
		for (k = 0; k < (int)sizeof(vals); k++) {
			m = p;
			m.b[i] = vals[k];
			rc = parse_guarded(m.b, m.n, 1, "api.openai.com",
			    DNS_QTYPE_A, &a);
			if (rc == 0) {
				parsed++;
			} else if (rc != -1) {
				bad++;
			}
		}
	}
	ok_int(bad, 0, "mutations: clean results");
	ok(parsed > 0, "some mutations still parse (%d)", parsed);
}

/* ---- resolv.conf and hosts ---- */

static int
sa_port(const struct net_addr *a)
{
	if (a->ss.ss_family == AF_INET) {
		return ntohs(((const struct sockaddr_in *)&a->ss)->sin_port);
	}
	return ntohs(((const struct sockaddr_in6 *)&a->ss)->sin6_port);
}

static void
test_resolv_conf(void)
{
	static const char text[] =
	    "# comment\n"
	    "; comment\n"
	    "search example.com corp.example\n"
	    "nameserver 10.0.0.1\n"
	    "nameserver\t2001:db8::53   # trailing comment\r\n"
	    "nameserver bogus\n"
	    "nameserver 127.0.0.1:5353\n"
	    "nameserver 10.0.0.4\n"
	    "options ndots:5 timeout:3 attempts:4 rotate\n"
	    "nameserver 10.0.0.5";
	static const char odd[] =
	    "options timeout:0 attempts:99\n"
	    "nameserver [::1]:5300\nnameserver fe80::1%1\n"
	    "nameserver 1.2.3.4:0\nnameserver 1.2.3.4:99999\n"
	    "nameserver [::1]x\nnameserver 1.2.3\n";
	struct dns_resolv r;
	int n;

	n = dns_parse_resolv_conf(text, strlen(text), &r);
	ok_int(n, 3, "resolv nameservers found");
	ok_int(r.nns, 3, "resolv nns");
	ok_str(addrstr(&r.ns[0]), "10.0.0.1:53", "resolv ns 0");
	ok_str(addrstr(&r.ns[1]), "[2001:db8::53]:53", "resolv ns 1 (v6)");
	ok_str(addrstr(&r.ns[2]), "127.0.0.1:5353", "resolv ns 2 (port)");
	ok_int(r.timeout_ms, 3000, "resolv timeout");
	ok_int(r.attempts, 4, "resolv attempts");

	n = dns_parse_resolv_conf("", 0, &r);
	ok_int(n, 0, "empty resolv: none found");
	ok_int(r.nns, 1, "empty resolv: default nameserver");
	ok_str(addrstr(&r.ns[0]), "127.0.0.1:53", "default is 127.0.0.1");
	ok_int(r.timeout_ms, 1000, "default timeout 1 s");
	ok_int(r.attempts, 2, "default attempts 2");

	n = dns_parse_resolv_conf(odd, strlen(odd), &r);
	ok_int(n, 2, "odd resolv: found");
	ok_int(r.timeout_ms, 1000, "timeout clamped up to 1 s");
	ok_int(r.attempts, 5, "attempts clamped to 5");
	ok_str(addrstr(&r.ns[0]), "[::1]:5300", "bracketed v6 with port");
	ok(r.ns[1].ss.ss_family == AF_INET6 && sa_port(&r.ns[1]) == 53 &&
	    ((struct sockaddr_in6 *)&r.ns[1].ss)->sin6_scope_id == 1,
	    "v6 with a numeric scope");
}

static void
test_hosts(void)
{
	static const char text[] =
	    "127.0.0.1 localhost\n"
	    "::1 localhost ip6-localhost\n"
	    "# 10.0.0.1 commented.test\n"
	    "10.1.2.3   Provider.Test  alias.test. # comment\r\n"
	    "bogus line here\n"
	    "fe80::1%eth0 scoped.test\n"
	    "192.168.0.1\n"
	    "10.2.2.2 bad_but_ok.test not!valid.test\n"
	    "  10.9.9.9\ttabbed.test";
	struct dns_host h[16];
	int n;

	n = dns_parse_hosts(text, strlen(text), h, 16);
	ok_int(n, 7, "hosts entries");
	ok(n >= 7 && strcmp(h[0].name, "localhost") == 0 &&
	    strcmp(ipstr(&h[0].ip), "127.0.0.1") == 0, "hosts 0");
	ok(n >= 7 && strcmp(h[1].name, "localhost") == 0 &&
	    strcmp(ipstr(&h[1].ip), "::1") == 0, "hosts 1");
	ok(n >= 7 && strcmp(h[2].name, "ip6-localhost") == 0, "hosts 2");
	ok(n >= 7 && strcmp(h[3].name, "provider.test") == 0 &&
	    strcmp(ipstr(&h[3].ip), "10.1.2.3") == 0, "hosts lowercased");
	ok(n >= 7 && strcmp(h[4].name, "alias.test") == 0,
	    "hosts alias without trailing dot");
	ok(n >= 7 && strcmp(h[5].name, "bad_but_ok.test") == 0,
	    "hosts underscore kept, bad name skipped");
	ok(n >= 7 && strcmp(h[6].name, "tabbed.test") == 0 &&
	    strcmp(ipstr(&h[6].ip), "10.9.9.9") == 0, "hosts tabs");
	ok_int(dns_parse_hosts(text, strlen(text), h, 3), 3, "hosts max");
	ok_int(dns_parse_hosts("", 0, h, 16), 0, "hosts empty");
}

/* ---- lookups from files ---- */

static char tmpdir[64];

static void
write_file(const char *name, const char *text, char *path, size_t cap)
{
	FILE *f;

	snprintf(path, cap, "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	if (f == NULL) {
		perror(path);
		exit(2);
	}
	fputs(text, f);
	fclose(f);
}

/* Set the file's mtime to a fixed second, so change detection does not
 * depend on the file system's timestamp granularity. */
static void
set_mtime(const char *path, time_t t)
{
	struct timespec ts[2];

	ts[0].tv_sec = ts[1].tv_sec = t;
	ts[0].tv_nsec = ts[1].tv_nsec = 0;
	utimensat(AT_FDCWD, path, ts, 0);
}

static struct dns d;	/* about 90 KB: static, as in the relay */

static void
test_files(void)
{
	char rpath[128], hpath[128], err[256];
	struct net_addr out[8];
	int n = 0, rc;

	write_file("resolv.conf", "nameserver 127.0.0.1:9\n", rpath,
	    sizeof(rpath));
	write_file("hosts", "127.0.0.77 provider.test\n::77 provider.test\n"
	    "10.0.0.5 Mixed.Case\n", hpath, sizeof(hpath));
	set_mtime(hpath, 1000000);
	ok_int(dns_init(&d, rpath, hpath, err, sizeof(err)), 0, "init");
	ok_int(d.nhosts, 3, "init read hosts");
	ok_int(d.ns_default, 0, "init nameserver given");
	{
		/* The cache and query tables (most of the struct's ~90 KB)
		 * are left as zeros: in the relay's static storage their
		 * pages are not even touched until a name is looked up. */
		static const struct dns zero;

		ok(memcmp(d.cache, zero.cache, sizeof d.cache) == 0 &&
		    memcmp(d.q, zero.q, sizeof d.q) == 0,
		    "init writes nothing into the cache and query tables");
	}

	rc = dns_lookup(&d, "provider.test", 443, 5000, out, 8, &n, err,
	    sizeof(err));
	ok_int(rc, DNS_DONE, "hosts lookup done at once");
	ok_int(n, 2, "hosts lookup count");
	ok_str(addrstr(&out[0]), "127.0.0.77:443", "hosts v4 first");
	ok_str(addrstr(&out[1]), "[::77]:443", "hosts v6 second");
	rc = dns_lookup(&d, "PROVIDER.test.", 80, 5000, out, 1, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 1 &&
	    strcmp(addrstr(&out[0]), "127.0.0.77:80") == 0,
	    "hosts lookup case and dot, max 1");
	rc = dns_lookup(&d, "mixed.case", 80, 5000, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 1, "hosts name lowercased");
	rc = dns_lookup(&d, "localhost", 8080, 5000, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 2 &&
	    strcmp(addrstr(&out[0]), "127.0.0.1:8080") == 0 &&
	    strcmp(addrstr(&out[1]), "[::1]:8080") == 0, "builtin localhost");
	rc = dns_lookup(&d, "x.localhost", 1, 5000, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 2, "subdomain of localhost");
	rc = dns_lookup(&d, "192.0.2.1", 443, 5000, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 1 &&
	    strcmp(addrstr(&out[0]), "192.0.2.1:443") == 0, "v4 literal");
	rc = dns_lookup(&d, "[2001:db8::1]", 443, 5000, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 1 &&
	    strcmp(addrstr(&out[0]), "[2001:db8::1]:443") == 0,
	    "bracketed v6 literal");
	rc = dns_lookup(&d, "::1", 443, 5000, out, 8, &n, err, sizeof(err));
	ok(rc == DNS_DONE && n == 1, "v6 literal");
	rc = dns_lookup(&d, "bad name!", 443, 5000, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_FAILED && strstr(err, "not a valid host name") != NULL,
	    "invalid name: %s", err);
	ok_int(dns_deadline(&d), 0, "no query for local answers");
	{
		struct pollfd pf[2];

		ok_int(dns_fds(&d, pf, 2), 0, "no socket for local answers");
	}

	/* hosts changes are seen after at most a second. */
	write_file("hosts", "127.0.0.88 provider.test\n", hpath,
	    sizeof(hpath));
	set_mtime(hpath, 1000010);
	rc = dns_lookup(&d, "provider.test", 443, 5999, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && strcmp(addrstr(&out[0]), "127.0.0.77:443") == 0,
	    "hosts not re-checked within a second");
	rc = dns_lookup(&d, "provider.test", 443, 6000, out, 8, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 1 &&
	    strcmp(addrstr(&out[0]), "127.0.0.88:443") == 0,
	    "hosts re-read after a change");
	dns_free(&d);

	/* Missing files are fine; a directory is not a readable file. */
	snprintf(rpath, sizeof(rpath), "%s/missing", tmpdir);
	ok_int(dns_init(&d, rpath, rpath, err, sizeof(err)), 0,
	    "missing files");
	ok_int(d.ns_default, 1, "missing resolv.conf: default nameserver");
	ok_int(d.nhosts, 0, "missing hosts: empty");
	dns_free(&d);
	err[0] = '\0';
	ok_int(dns_init(&d, tmpdir, NULL, err, sizeof(err)), -1,
	    "unreadable resolv.conf fails");
	ok(strstr(err, "cannot read") != NULL, "unreadable: %s", err);
	dns_free(&d);
}

/* ---- lookups against fake nameservers ---- */

struct fake {
	int fd;
	int spoof_fd;	/* sends from another port */
	int family;
	uint16_t port;
	int silent;	/* drop every query */
	int servfail;	/* SERVFAIL every query */
	int alt;	/* answer A 198.51.100.7 only */
	int nq;		/* queries received */
};

static int
fake_open(struct fake *f, int family)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t len;
	int i;

	memset(f, 0, sizeof(*f));
	f->family = family;
	for (i = 0; i < 2; i++) {
		int fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK, 0);

		memset(&ss, 0, sizeof(ss));
		if (family == AF_INET) {
			s4->sin_family = AF_INET;
			s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
			len = sizeof(*s4);
		} else {
			s6->sin6_family = AF_INET6;
			s6->sin6_addr = in6addr_loopback;
			len = sizeof(*s6);
		}
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len) < 0) {
			if (fd >= 0) {
				close(fd);
			}
			return -1;
		}
		if (i == 0) {
			f->fd = fd;
		} else {
			f->spoof_fd = fd;
		}
	}
	len = sizeof(ss);
	getsockname(f->fd, (struct sockaddr *)&ss, &len);
	f->port = ntohs(family == AF_INET ? s4->sin_port : s6->sin6_port);
	return 0;
}

static void
fake_close(struct fake *f)
{
	close(f->fd);
	close(f->spoof_fd);
}

/* An answer to query q (qn bytes): id, first address of A answers and
 * whether to mangle the echoed question. Returns its length, or 0 to
 * stay silent. */
static size_t
fake_reply(const struct fake *f, const unsigned char *q, size_t qn,
    unsigned id, const char *a1, int mangle, struct pkt *p)
{
	char name[256];
	size_t off = 12, nl = 0, qend;
	unsigned qtype, rcode = 0, flags = 0x8180, an = 0;

	while (off < qn && q[off] != 0 && nl + q[off] + 1 < sizeof(name)) {
		memcpy(name + nl, q + off + 1, q[off]);
		nl += q[off];
		name[nl++] = '.';
		off += 1 + q[off];
	}
	name[nl] = '\0';
	qend = off + 5;
	if (qend > qn) {
		return 0;
	}
	qtype = (unsigned)(q[off + 1] << 8 | q[off + 2]);
	if (strncmp(name, "silent.", 7) == 0) {
		return 0;
	}
	if (f->servfail || strncmp(name, "sf.", 3) == 0) {
		rcode = 2;
	} else if (strncmp(name, "nx.", 3) == 0) {
		rcode = 3;
	} else if (strncmp(name, "tc.", 3) == 0) {
		flags |= 0x0200;
	}
	phdr(p, id, flags | rcode, 1, 0);
	pbytes(p, q + 12, qend - 12);
	if (mangle) {
		p->b[13] ^= 0x01;
	}
	if (rcode == 0 && !(flags & 0x0200)) {
		if (qtype == DNS_QTYPE_A) {
			pptr(p, 12);
			pa(p, 60, f->alt ? "198.51.100.7" : a1);
			an++;
			if (!f->alt) {
				pptr(p, 12);
				pa(p, 60, "192.0.2.2");
				an++;
			}
		} else if (qtype == DNS_QTYPE_AAAA &&
		    strncmp(name, "v4only.", 7) != 0) {
			pptr(p, 12);
			paaaa(p, 30, "2001:db8::1");
			an++;
		}
	}
	p->b[7] = (unsigned char)an;
	return p->n;
}

/* Answer every query waiting on f. "spoof." names first get three fake
 * answers (wrong id; right id from another port; right id with another
 * question), then the real one. */
static void
fake_serve(struct fake *f)
{
	unsigned char q[512];
	struct sockaddr_storage from;
	struct pkt p;
	socklen_t fl;
	ssize_t r;
	unsigned id;

	for (;;) {
		fl = sizeof(from);
		r = recvfrom(f->fd, q, sizeof(q), 0, (struct sockaddr *)&from,
		    &fl);
		if (r < 12) {
			break;
		}
		f->nq++;
		if (f->silent) {
			continue;
		}
		id = (unsigned)(q[0] << 8 | q[1]);
		if (r > 19 && memcmp(q + 13, "spoof", 5) == 0) {
			if (fake_reply(f, q, (size_t)r, id ^ 0x5555,
			    "203.0.113.66", 0, &p) > 0) {
				sendto(f->fd, p.b, p.n, 0,
				    (struct sockaddr *)&from, fl);
			}
			if (fake_reply(f, q, (size_t)r, id, "203.0.113.67", 0,
			    &p) > 0) {
				sendto(f->spoof_fd, p.b, p.n, 0,
				    (struct sockaddr *)&from, fl);
			}
			if (fake_reply(f, q, (size_t)r, id, "203.0.113.68", 1,
			    &p) > 0) {
				sendto(f->fd, p.b, p.n, 0,
				    (struct sockaddr *)&from, fl);
			}
		}
		if (fake_reply(f, q, (size_t)r, id, "192.0.2.1", 0, &p) > 0) {
			sendto(f->fd, p.b, p.n, 0, (struct sockaddr *)&from,
			    fl);
		}
	}
}

static struct fake *fakes[4];
static int nfakes;

/* Run the loop at a fixed now_ms until a lookup finishes: poll returns
 * as soon as a datagram (already sent) is there. False after 20 empty
 * rounds. */
static int
pump(struct dns *r, uint64_t now_ms)
{
	struct pollfd pf[8];
	unsigned gen = dns_generation(r);
	int n, i, round;

	for (round = 0; round < 20; round++) {
		n = dns_fds(r, pf, 2);
		for (i = 0; i < nfakes; i++) {
			pf[n].fd = fakes[i]->fd;
			pf[n].events = POLLIN;
			n++;
		}
		(void)poll(pf, (nfds_t)n, 50);
		for (i = 0; i < nfakes; i++) {
			fake_serve(fakes[i]);
		}
		dns_step(r, now_ms);
		if (dns_generation(r) != gen) {
			return 1;
		}
	}
	return 0;
}

/* Let the fakes drain (and drop) what is queued, then step at now_ms. */
static void
drain_step(struct dns *r, uint64_t now_ms)
{
	int i;

	for (i = 0; i < nfakes; i++) {
		fake_serve(fakes[i]);
	}
	dns_step(r, now_ms);
}

static int
look(struct dns *r, const char *name, uint64_t now_ms, struct net_addr *out,
    int *n, char *err, size_t errlen)
{
	err[0] = '\0';
	return dns_lookup(r, name, 443, now_ms, out, 8, n, err, errlen);
}

static void
test_fake_v4(void)
{
	struct fake f;
	struct net_addr out[8];
	struct pollfd pf[4];
	char rpath[128], hpath[128], text[128], err[256], want[256];
	const uint64_t t0 = 1000000;
	uint64_t t1;
	int n = 0, rc, nq, i;

	if (fake_open(&f, AF_INET) < 0) {
		ok(0, "fake nameserver: %s", strerror(errno));
		return;
	}
	fakes[0] = &f;
	nfakes = 1;
	snprintf(text, sizeof(text), "nameserver 127.0.0.1:%u\n",
	    (unsigned)f.port);
	write_file("resolv.conf", text, rpath, sizeof(rpath));
	write_file("hosts", "127.0.0.1 localhost\n", hpath, sizeof(hpath));
	ok_int(dns_init(&d, rpath, hpath, err, sizeof(err)), 0, "init fake");
	d.conf.timeout_ms = 200;	/* the test knob */

	/* A + AAAA. */
	rc = look(&d, "api.example.test", t0, out, &n, err, sizeof(err));
	ok_int(rc, DNS_PENDING, "first lookup pending");
	ok_int(dns_fds(&d, pf, 4), 1, "one socket polled");
	ok(pf[0].events == POLLIN, "polled for input");
	ok(dns_deadline(&d) == t0 + 200, "deadline is one try");
	ok(pump(&d, t0), "answers arrive");
	rc = look(&d, "api.example.test", t0, out, &n, err, sizeof(err));
	ok_int(rc, DNS_DONE, "lookup done after answers");
	ok_int(n, 3, "three addresses");
	ok_str(addrstr(&out[0]), "192.0.2.1:443", "A first");
	ok_str(addrstr(&out[1]), "192.0.2.2:443", "A second");
	ok_str(addrstr(&out[2]), "[2001:db8::1]:443", "AAAA last");
	ok_int(f.nq, 2, "two queries sent");
	ok_int(dns_fds(&d, pf, 4), 0, "socket closed when idle");
	ok_int(dns_deadline(&d), 0, "no deadline when idle");

	/* Cache hit, case and trailing dot folded. */
	rc = look(&d, "API.Example.Test.", t0 + 10000, out, &n, err,
	    sizeof(err));
	fake_serve(&f);
	ok(rc == DNS_DONE && n == 3 && f.nq == 2 && dns_deadline(&d) == 0,
	    "cache hit sends nothing");
	rc = dns_lookup(&d, "api.example.test", 443, t0 + 10000, out, 1, &n,
	    err, sizeof(err));
	ok(rc == DNS_DONE && n == 1 &&
	    strcmp(addrstr(&out[0]), "192.0.2.1:443") == 0, "max 1: IPv4");

	/* TTL 30 (the AAAA's) passed: stale answer now, refresh behind. */
	f.alt = 1;
	rc = look(&d, "api.example.test", t0 + 30000, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 3 &&
	    strcmp(addrstr(&out[0]), "192.0.2.1:443") == 0,
	    "stale answer served at once");
	ok(dns_deadline(&d) == t0 + 30200, "refresh in flight");
	rc = look(&d, "api.example.test", t0 + 30000, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && f.nq == 2, "one refresh at a time");
	ok(pump(&d, t0 + 30000), "refresh answers arrive");
	ok_int(f.nq, 4, "refresh sent A and AAAA");
	rc = look(&d, "api.example.test", t0 + 30000, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 2 &&
	    strcmp(addrstr(&out[0]), "198.51.100.7:443") == 0,
	    "refreshed addresses");

	/* The refresh fails: the old addresses stay, retried after 5 s. */
	f.silent = 1;
	t1 = t0 + 70000;
	rc = look(&d, "api.example.test", t1, out, &n, err, sizeof(err));
	ok(rc == DNS_DONE && n == 2, "stale while refreshing");
	nq = f.nq;
	drain_step(&d, t1 + 199);
	ok(f.nq == nq + 2 && dns_deadline(&d) == t1 + 200,
	    "no retransmit before the timeout");
	drain_step(&d, t1 + 200);
	ok(dns_deadline(&d) == t1 + 400, "second try armed");
	drain_step(&d, t1 + 400);
	ok_int(f.nq, nq + 4, "two tries each for A and AAAA");
	ok_int(dns_deadline(&d), 0, "refresh gave up");
	rc = look(&d, "api.example.test", t1 + 400, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 2 &&
	    strcmp(addrstr(&out[0]), "198.51.100.7:443") == 0 &&
	    dns_deadline(&d) == 0, "failed refresh keeps the addresses");
	rc = look(&d, "api.example.test", t1 + 5400, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && dns_deadline(&d) != 0,
	    "refresh retried after 5 s");
	f.silent = 0;
	f.alt = 0;
	ok(pump(&d, t1 + 5400), "refresh recovers");
	rc = look(&d, "api.example.test", t1 + 5400, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 3, "fresh again");

	/* NXDOMAIN, cached for 5 s. */
	rc = look(&d, "nx.example.test", t0, out, &n, err, sizeof(err));
	ok_int(rc, DNS_PENDING, "nx pending");
	ok(pump(&d, t0), "nx answered");
	rc = look(&d, "nx.example.test", t0, out, &n, err, sizeof(err));
	ok_int(rc, DNS_FAILED, "nx failed");
	ok_str(err, "cannot resolve nx.example.test: NXDOMAIN (no such name)",
	    "nx message");
	nq = f.nq;
	rc = look(&d, "nx.example.test", t0 + 4999, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_FAILED && f.nq == nq && dns_deadline(&d) == 0,
	    "nx cached");
	rc = look(&d, "nx.example.test", t0 + 5000, out, &n, err,
	    sizeof(err));
	ok_int(rc, DNS_PENDING, "nx asked again after 5 s");
	ok(pump(&d, t0 + 5000), "nx answered again");

	/* No answer at all. */
	rc = look(&d, "silent.example.test", t0, out, &n, err, sizeof(err));
	ok_int(rc, DNS_PENDING, "silent pending");
	drain_step(&d, t0 + 199);
	ok_int(look(&d, "silent.example.test", t0 + 199, out, &n, err,
	    sizeof(err)), DNS_PENDING, "silent still pending");
	drain_step(&d, t0 + 200);
	drain_step(&d, t0 + 400);
	rc = look(&d, "silent.example.test", t0 + 400, out, &n, err,
	    sizeof(err));
	ok_int(rc, DNS_FAILED, "silent failed");
	snprintf(want, sizeof(want), "cannot resolve silent.example.test: no "
	    "answer from nameserver 127.0.0.1:%u after 2 tries",
	    (unsigned)f.port);
	ok_str(err, want, "timeout message");

	/* SERVFAIL (one nameserver: no one else to ask). */
	rc = look(&d, "sf.example.test", t0, out, &n, err, sizeof(err));
	ok(pump(&d, t0), "sf answered");
	rc = look(&d, "sf.example.test", t0, out, &n, err, sizeof(err));
	snprintf(want, sizeof(want), "cannot resolve sf.example.test: "
	    "SERVFAIL from nameserver 127.0.0.1:%u", (unsigned)f.port);
	ok(rc == DNS_FAILED, "sf failed");
	ok_str(err, want, "SERVFAIL message");

	/* Truncated without addresses. */
	rc = look(&d, "tc.example.test", t0, out, &n, err, sizeof(err));
	ok(pump(&d, t0), "tc answered");
	rc = look(&d, "tc.example.test", t0, out, &n, err, sizeof(err));
	ok(rc == DNS_FAILED && strstr(err, "truncated answer") != NULL,
	    "truncated: %s", err);

	/* AAAA NODATA. */
	rc = look(&d, "v4only.example.test", t0, out, &n, err, sizeof(err));
	ok(pump(&d, t0), "v4only answered");
	rc = look(&d, "v4only.example.test", t0, out, &n, err, sizeof(err));
	ok(rc == DNS_DONE && n == 2 && out[1].ss.ss_family == AF_INET,
	    "v4only: IPv4 addresses only");

	/* Spoofs: wrong id, wrong source port, wrong question. */
	rc = look(&d, "spoof.example.test", t0, out, &n, err, sizeof(err));
	ok(pump(&d, t0), "spoof answered");
	rc = look(&d, "spoof.example.test", t0, out, &n, err, sizeof(err));
	ok(rc == DNS_DONE && n == 3 &&
	    strcmp(addrstr(&out[0]), "192.0.2.1:443") == 0,
	    "spoofed answers ignored (got %s)", addrstr(&out[0]));

	/* Capacity: 16 names in flight, the 17th is refused. */
	f.silent = 1;
	for (i = 0; i < DNS_QUERY_MAX / 2; i++) {
		snprintf(text, sizeof(text), "n%d.example.test", i);
		rc = look(&d, text, t0, out, &n, err, sizeof(err));
		if (rc != DNS_PENDING) {
			break;
		}
	}
	ok_int(i, DNS_QUERY_MAX / 2, "16 lookups in flight");
	rc = look(&d, "n99.example.test", t0, out, &n, err, sizeof(err));
	ok(rc == DNS_FAILED && strstr(err, "too many lookups") != NULL,
	    "17th refused: %s", err);
	drain_step(&d, t0 + 200);
	drain_step(&d, t0 + 400);
	ok_int(dns_deadline(&d), 0, "all gave up");
	rc = look(&d, "n0.example.test", t0 + 400, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_FAILED && strstr(err, "no answer") != NULL,
	    "n0 failed: %s", err);
	f.silent = 0;

	/* hosts and localhost never query. */
	nq = f.nq;
	rc = look(&d, "localhost", t0, out, &n, err, sizeof(err));
	fake_serve(&f);
	ok(rc == DNS_DONE && n == 1 && f.nq == nq,
	    "localhost from hosts, no query");
	dns_free(&d);

	/* No nameserver line: 127.0.0.1 is used and the message says so.
	 * The test points the default at the fake's port. */
	write_file("resolv.conf", "options attempts:1\n", rpath,
	    sizeof(rpath));
	ok_int(dns_init(&d, rpath, hpath, err, sizeof(err)), 0,
	    "init without nameserver");
	ok_int(d.ns_default, 1, "default nameserver flagged");
	((struct sockaddr_in *)&d.conf.ns[0].ss)->sin_port = htons(f.port);
	d.conf.timeout_ms = 100;
	rc = look(&d, "silent.example.test", t0, out, &n, err, sizeof(err));
	drain_step(&d, t0 + 100);
	rc = look(&d, "silent.example.test", t0 + 100, out, &n, err,
	    sizeof(err));
	snprintf(want, sizeof(want), "cannot resolve silent.example.test: no "
	    "nameserver in %s, and no answer from 127.0.0.1:%u after 1 try",
	    rpath, (unsigned)f.port);
	ok_str(err, want, "no-nameserver message");
	dns_free(&d);
	fake_close(&f);
	nfakes = 0;
}

/* Two nameservers: a silent or failing first one hands over to the
 * second; one of them over IPv6 when the host has ::1. */
static void
test_fake_two(void)
{
	struct fake a, b;
	struct net_addr out[8];
	char rpath[128], hpath[128], text[160], err[256];
	const uint64_t t0 = 5000000;
	int n = 0, rc, have6;

	have6 = fake_open(&b, AF_INET6) == 0;
	if (!have6 && fake_open(&b, AF_INET) < 0) {
		ok(0, "fake b: %s", strerror(errno));
		return;
	}
	if (fake_open(&a, AF_INET) < 0) {
		ok(0, "fake a: %s", strerror(errno));
		fake_close(&b);
		return;
	}
	fakes[0] = &a;
	fakes[1] = &b;
	nfakes = 2;
	snprintf(text, sizeof(text), "nameserver 127.0.0.1:%u\n"
	    "nameserver %s:%u\n", (unsigned)a.port,
	    have6 ? "[::1]" : "127.0.0.1", (unsigned)b.port);
	write_file("resolv.conf", text, rpath, sizeof(rpath));
	write_file("hosts", "", hpath, sizeof(hpath));
	ok_int(dns_init(&d, rpath, hpath, err, sizeof(err)), 0, "init two");
	ok_int(d.conf.nns, 2, "two nameservers");
	d.conf.timeout_ms = 200;

	a.silent = 1;
	rc = look(&d, "api.example.test", t0, out, &n, err, sizeof(err));
	ok_int(rc, DNS_PENDING, "two: pending");
	drain_step(&d, t0 + 200);
	ok(a.nq == 2 && b.nq == 0, "first try to the first nameserver");
	ok(pump(&d, t0 + 200), "second nameserver answers");
	ok(b.nq == 2, "second try to the second nameserver");
	rc = look(&d, "api.example.test", t0 + 200, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_DONE && n == 3, "two: done after rotation");

	a.silent = 0;
	a.servfail = 1;
	rc = look(&d, "other.example.test", t0, out, &n, err, sizeof(err));
	ok(pump(&d, t0), "servfail then answer");
	rc = look(&d, "other.example.test", t0, out, &n, err, sizeof(err));
	ok(rc == DNS_DONE && n == 3, "SERVFAIL moves to the next server");

	b.silent = 1;
	rc = look(&d, "third.example.test", t0, out, &n, err, sizeof(err));
	drain_step(&d, t0);
	drain_step(&d, t0 + 200);
	drain_step(&d, t0 + 400);
	drain_step(&d, t0 + 600);
	rc = look(&d, "third.example.test", t0 + 600, out, &n, err,
	    sizeof(err));
	ok(rc == DNS_FAILED && strstr(err, ": SERVFAIL from nameserver "
	    "127.0.0.1:") != NULL, "SERVFAIL reported over silence: %s", err);
	if (!have6) {
		printf("# no IPv6 loopback: second nameserver on IPv4\n");
	}
	dns_free(&d);
	fake_close(&a);
	fake_close(&b);
	nfakes = 0;
}

/* A send that fails at once (broadcast without SO_BROADCAST: EACCES)
 * fails the lookup inside dns_lookup, with the reason. */
static void
test_send_error(void)
{
	struct net_addr out[8];
	char rpath[128], hpath[128], err[256];
	int n = 0, rc;

	write_file("resolv.conf", "nameserver 255.255.255.255\n", rpath,
	    sizeof(rpath));
	write_file("hosts", "", hpath, sizeof(hpath));
	ok_int(dns_init(&d, rpath, hpath, err, sizeof(err)), 0,
	    "init broadcast");
	rc = look(&d, "api.example.test", 1000, out, &n, err, sizeof(err));
	ok_int(rc, DNS_FAILED, "send error fails at once");
	ok(strstr(err, "cannot resolve api.example.test: cannot send to "
	    "nameserver 255.255.255.255: ") != NULL, "send error: %s", err);
	ok_int(dns_deadline(&d), 0, "send error: nothing in flight");
	ok(d.fd4 < 0, "send error: socket closed");
	dns_free(&d);
}

int
main(void)
{
	char path[128];

	log_set_level(LOG_ERROR);
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_dns.XXXXXX");
	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 2;
	}
	test_build_query();
	test_parse_simple();
	test_parse_cname();
	test_parse_misc();
	test_parse_hostile();
	test_parse_fuzz();
	test_resolv_conf();
	test_hosts();
	test_files();
	test_fake_v4();
	test_fake_two();
	test_send_error();
	snprintf(path, sizeof(path), "%s/resolv.conf", tmpdir);
	unlink(path);
	snprintf(path, sizeof(path), "%s/hosts", tmpdir);
	unlink(path);
	rmdir(tmpdir);
	return t_done("dns");
}
