/* dns_parse: the pure code of the resolver (dns.h): DNS messages (build a
 * query, check and read an answer, RFC 1035), host names and address
 * literals, and the text of resolv.conf and /etc/hosts. Bytes in, result
 * out: no I/O, no clock, no state; dns.c does the rest.
 *
 * Answers are hostile input: every read is bounds-checked and every loop
 * is bounded (compression jumps, CNAME hops). Names are kept in lowercase
 * wire form for comparing. */
#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "dns.h"
#include "util.h"

enum {
	WIRE_MAX = 255,		/* a name in wire form, root label included */
	LABEL_MAX = 63,
	PTR_MAX = 64,		/* compression jumps in one name */
	CNAME_MAX = 8,		/* CNAME hops followed inside one answer */
	CLASS_IN = 1,
	HDR_LEN = 12,
	FLAG_QR = 0x8000,
	FLAG_TC = 0x0200,
	FLAG_RD = 0x0100
};

/* ---- names and messages ---- */

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Host name characters. Stricter than DNS allows, on purpose: names come
 * from the config and from /etc/hosts, and anything else is a typo. */
static int
name_char(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || c == '-' || c == '_';
}

static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void
put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* Dotted name (optional trailing dot) to lowercase wire form. Returns the
 * wire length, or -1 for an empty label, a label over 63 bytes, a name
 * over 255 bytes or a character outside name_char(). */
static int
name_to_wire(const char *name, unsigned char *out)
{
	const char *p = name, *dot;
	size_t n = 0, len, i;

	for (;;) {
		dot = strchr(p, '.');
		len = dot != NULL ? (size_t)(dot - p) : strlen(p);
		if (len == 0) {
			/* Only the end after a trailing dot may be empty. */
			if (dot == NULL && n > 0) {
				break;
			}
			return -1;
		}
		if (len > LABEL_MAX || n + 1 + len + 1 > WIRE_MAX) {
			return -1;
		}
		out[n++] = (unsigned char)len;
		for (i = 0; i < len; i++) {
			if (!name_char((unsigned char)p[i])) {
				return -1;
			}
			out[n++] = (unsigned char)lower((unsigned char)p[i]);
		}
		if (dot == NULL) {
			break;
		}
		p = dot + 1;
	}
	out[n++] = 0;
	return (int)n;
}

int
dns_norm_name(const char *name, char *out)
{
	unsigned char wire[WIRE_MAX];
	size_t n, i;

	if (name_to_wire(name, wire) < 0) {
		return -1;
	}
	n = strlen(name);
	if (name[n - 1] == '.') {
		n--;
	}
	/* name_to_wire bounds the name to 253 characters here. */
	for (i = 0; i < n; i++) {
		out[i] = (char)lower((unsigned char)name[i]);
	}
	out[n] = '\0';
	return 0;
}

/* Read the possibly compressed name at *off of msg into out in lowercase
 * wire form and move *off past it. Returns the wire length, or -1.
 * Hostile input: every read is bounds-checked, and each pointer must go
 * strictly before the place the previous jump landed (the name's start
 * before any jump), so targets strictly decrease and no loop is possible;
 * PTR_MAX and WIRE_MAX bound the work anyway. Label types 01 and 10
 * (RFC 6891's extended labels, never used) are rejected. */
static int
read_name(const unsigned char *msg, size_t len, size_t *off,
    unsigned char *out)
{
	size_t pos = *off, limit = *off, after = 0, n = 0, ptr, i;
	unsigned c;
	int jumps = 0;

	for (;;) {
		if (pos >= len) {
			return -1;
		}
		c = msg[pos];
		if ((c & 0xC0) == 0xC0) {
			if (pos + 1 >= len) {
				return -1;
			}
			ptr = (size_t)(c & 0x3F) << 8 | msg[pos + 1];
			if (ptr >= limit || ++jumps > PTR_MAX) {
				return -1;
			}
			if (jumps == 1) {
				after = pos + 2;
			}
			pos = limit = ptr;
			continue;
		}
		if ((c & 0xC0) != 0) {
			return -1;
		}
		if (c == 0) {
			out[n++] = 0;
			pos++;
			break;
		}
		if (pos + 1 + c > len || n + 1 + c + 1 > WIRE_MAX) {
			return -1;
		}
		out[n++] = (unsigned char)c;
		for (i = 0; i < c; i++) {
			out[n++] = (unsigned char)lower(msg[pos + 1 + i]);
		}
		pos += 1 + c;
	}
	*off = jumps > 0 ? after : pos;
	return (int)n;
}

static int
same_wire(const unsigned char *a, int an, const unsigned char *b, int bn)
{
	return an == bn && memcmp(a, b, (size_t)an) == 0;
}

/* One resource record, as read_rr() found it. */
struct rr {
	unsigned char owner[WIRE_MAX];
	int ownern;
	unsigned type, class;
	uint32_t ttl;
	size_t rdoff, rdlen;
};

static int
read_rr(const unsigned char *msg, size_t len, size_t *off, struct rr *rr)
{
	rr->ownern = read_name(msg, len, off, rr->owner);
	if (rr->ownern < 0 || *off + 10 > len) {
		return -1;
	}
	rr->type = get16(msg + *off);
	rr->class = get16(msg + *off + 2);
	rr->ttl = get32(msg + *off + 4);
	/* RFC 2181 section 8: a TTL with the top bit set means zero. */
	if (rr->ttl & 0x80000000u) {
		rr->ttl = 0;
	}
	rr->rdlen = get16(msg + *off + 8);
	rr->rdoff = *off + 10;
	if (rr->rdoff + rr->rdlen > len) {
		return -1;
	}
	*off = rr->rdoff + rr->rdlen;
	return 0;
}

int
dns_msg_id(const unsigned char *msg, size_t len, uint16_t *id)
{
	if (len < HDR_LEN) {
		return -1;
	}
	*id = get16(msg);
	return 0;
}

int
dns_build_query(unsigned char *out, size_t cap, uint16_t id,
    const char *name, int qtype)
{
	unsigned char wire[WIRE_MAX];
	int n;

	n = name_to_wire(name, wire);
	if (n < 0 || cap < (size_t)HDR_LEN + (size_t)n + 4) {
		return -1;
	}
	memset(out, 0, HDR_LEN);
	put16(out, id);
	put16(out + 2, FLAG_RD);
	put16(out + 4, 1);
	memcpy(out + HDR_LEN, wire, (size_t)n);
	put16(out + HDR_LEN + n, (unsigned)qtype);
	put16(out + HDR_LEN + n + 2, CLASS_IN);
	return HDR_LEN + n + 4;
}

int
dns_parse_answer(const unsigned char *msg, size_t len, uint16_t want_id,
    const char *qname, int qtype, struct dns_answer *out)
{
	unsigned char want[WIRE_MAX], cur[WIRE_MAX], name[WIRE_MAX];
	struct rr rr;
	size_t off, an_off, t;
	unsigned flags, an, i, good;
	uint32_t ttl = UINT32_MAX;
	int wantn, curn, n, hops, found;
	size_t alen = qtype == DNS_QTYPE_A ? 4 : 16;

	memset(out, 0, sizeof(*out));
	wantn = name_to_wire(qname, want);
	if (wantn < 0 || len < HDR_LEN || get16(msg) != want_id) {
		return -1;
	}
	flags = get16(msg + 2);
	/* A response (QR) to a standard query (opcode 0). A server that
	 * does not echo the question (allowed for some errors) gets ignored
	 * and the try times out: without the echo we cannot tell it from a
	 * spoof that guessed the id. */
	if (!(flags & FLAG_QR) || ((flags >> 11) & 0xF) != 0 ||
	    get16(msg + 4) != 1) {
		return -1;
	}
	an = get16(msg + 6);
	off = HDR_LEN;
	n = read_name(msg, len, &off, name);
	if (n < 0 || off + 4 > len || !same_wire(name, n, want, wantn) ||
	    get16(msg + off) != (unsigned)qtype ||
	    get16(msg + off + 2) != CLASS_IN) {
		return -1;
	}
	off += 4;
	an_off = off;
	out->rcode = (int)(flags & 0xF);
	out->truncated = (flags & FLAG_TC) != 0;

	/* Every answer record must be well-formed, except that a truncated
	 * message may end inside one: then only the complete ones count. */
	for (good = 0; good < an; good++) {
		if (read_rr(msg, len, &off, &rr) < 0) {
			if (out->truncated) {
				break;
			}
			return -1;
		}
	}
	an = good;

	/* Follow the CNAME chain from the question. Records may come in any
	 * order, so each hop scans the whole section; a loop (a -> b -> a)
	 * just stops after CNAME_MAX hops with no address found. */
	memcpy(cur, want, (size_t)wantn);
	curn = wantn;
	for (hops = 0; hops < CNAME_MAX; hops++) {
		found = 0;
		off = an_off;
		for (i = 0; i < an && !found; i++) {
			(void)read_rr(msg, len, &off, &rr);
			if (rr.type != DNS_QTYPE_CNAME || rr.class != CLASS_IN ||
			    !same_wire(rr.owner, rr.ownern, cur, curn)) {
				continue;
			}
			t = rr.rdoff;
			n = read_name(msg, len, &t, name);
			if (n < 0 || t != rr.rdoff + rr.rdlen) {
				return -1;
			}
			memcpy(cur, name, (size_t)n);
			curn = n;
			if (rr.ttl < ttl) {
				ttl = rr.ttl;
			}
			found = 1;
		}
		if (!found) {
			break;
		}
	}

	off = an_off;
	for (i = 0; i < an; i++) {
		(void)read_rr(msg, len, &off, &rr);
		if (rr.type != (unsigned)qtype || rr.class != CLASS_IN ||
		    !same_wire(rr.owner, rr.ownern, cur, curn)) {
			continue;
		}
		if (rr.rdlen != alen) {
			return -1;
		}
		if (rr.ttl < ttl) {
			ttl = rr.ttl;
		}
		if (out->naddr < DNS_ADDR_MAX) {
			out->addr[out->naddr].family =
			    qtype == DNS_QTYPE_A ? AF_INET : AF_INET6;
			memcpy(out->addr[out->naddr].a, msg + rr.rdoff, alen);
			out->naddr++;
		}
	}
	out->ttl_s = out->naddr > 0 ? ttl : 0;
	return 0;
}

/* ---- resolv.conf and hosts ---- */

static int
is_blank(int c)
{
	return c == ' ' || c == '\t' || c == '\r';
}

/* Next blank-separated token of p[0..n) from *pos. 0, or -1 at the end. */
static int
next_token(const char *p, size_t n, size_t *pos, struct view *tok)
{
	size_t i = *pos;

	while (i < n && is_blank((unsigned char)p[i])) {
		i++;
	}
	if (i == n) {
		*pos = i;
		return -1;
	}
	tok->p = p + i;
	while (i < n && !is_blank((unsigned char)p[i])) {
		i++;
	}
	tok->n = (size_t)(p + i - tok->p);
	*pos = i;
	return 0;
}

/* A numeric IPv4 or IPv6 address (no scope id) into ip. 0 or -1. */
static int
parse_ip(const char *p, size_t n, struct dns_ip *ip)
{
	char buf[64];

	if (n == 0 || n >= sizeof(buf)) {
		return -1;
	}
	memcpy(buf, p, n);
	buf[n] = '\0';
	memset(ip, 0, sizeof(*ip));
	if (inet_pton(AF_INET, buf, ip->a) == 1) {
		ip->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, buf, ip->a) == 1) {
		ip->family = AF_INET6;
		return 0;
	}
	return -1;
}

void
dns_ip_addr(const struct dns_ip *ip, uint16_t port, struct net_addr *out)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&out->ss;

	memset(out, 0, sizeof(*out));
	if (ip->family == AF_INET) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, ip->a, 4);
		out->len = sizeof(*s4);
	} else {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		memcpy(&s6->sin6_addr, ip->a, 16);
		out->len = sizeof(*s6);
	}
}

/* A nameserver: "1.2.3.4", "::1", "fe80::1%eth0", and for tests
 * "1.2.3.4:5353" and "[::1]:5353". 0 or -1. */
static int
parse_ns(struct view tok, struct net_addr *a)
{
	struct view host = tok, scope = { NULL, 0 }, port = { NULL, 0 };
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&a->ss;
	struct dns_ip ip;
	uint64_t pn = DNS_PORT, sc = 0;
	const char *c;
	char ifname[IF_NAMESIZE + 1];
	size_t colons = 0, i;

	if (tok.n > 0 && tok.p[0] == '[') {
		c = memchr(tok.p, ']', tok.n);
		if (c == NULL) {
			return -1;
		}
		host.p = tok.p + 1;
		host.n = (size_t)(c - host.p);
		if (c + 1 < tok.p + tok.n) {
			if (c[1] != ':') {
				return -1;
			}
			port.p = c + 2;
			port.n = (size_t)(tok.p + tok.n - port.p);
		}
	} else {
		for (i = 0; i < tok.n; i++) {
			colons += tok.p[i] == ':';
		}
		if (colons == 1) {
			c = memchr(tok.p, ':', tok.n);
			host.n = (size_t)(c - tok.p);
			port.p = c + 1;
			port.n = (size_t)(tok.p + tok.n - port.p);
		}
	}
	c = memchr(host.p, '%', host.n);
	if (c != NULL) {
		scope.p = c + 1;
		scope.n = (size_t)(host.p + host.n - scope.p);
		host.n = (size_t)(c - host.p);
	}
	if (parse_ip(host.p, host.n, &ip) < 0) {
		return -1;
	}
	if (port.p != NULL && (util_parse_u64(port.p, port.n, &pn) < 0 ||
	    pn == 0 || pn > 65535)) {
		return -1;
	}
	if (scope.p != NULL) {
		if (ip.family != AF_INET6 || scope.n == 0 ||
		    scope.n > IF_NAMESIZE) {
			return -1;
		}
		if (util_parse_u64(scope.p, scope.n, &sc) < 0) {
			memcpy(ifname, scope.p, scope.n);
			ifname[scope.n] = '\0';
			sc = if_nametoindex(ifname);
			if (sc == 0) {
				return -1;
			}
		}
	}
	dns_ip_addr(&ip, (uint16_t)pn, a);
	if (ip.family == AF_INET6) {
		s6->sin6_scope_id = (uint32_t)sc;
	}
	return 0;
}

/* "timeout:N" and "attempts:N"; others are ignored. */
static void
parse_option(struct view tok, struct dns_resolv *out)
{
	uint64_t v;

	if (tok.n > 8 && memcmp(tok.p, "timeout:", 8) == 0 &&
	    util_parse_u64(tok.p + 8, tok.n - 8, &v) == 0) {
		/* glibc caps timeout at 30 s and attempts at 5. */
		v = v < 1 ? 1 : v > 30 ? 30 : v;
		out->timeout_ms = (unsigned)v * 1000;
	} else if (tok.n > 9 && memcmp(tok.p, "attempts:", 9) == 0 &&
	    util_parse_u64(tok.p + 9, tok.n - 9, &v) == 0) {
		v = v < 1 ? 1 : v > 5 ? 5 : v;
		out->attempts = (unsigned)v;
	}
}

int
dns_parse_resolv_conf(const char *text, size_t n, struct dns_resolv *out)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&out->ns[0].ss;
	struct view tok, kw;
	size_t i = 0, eol, k, pos;
	int found = 0;

	memset(out, 0, sizeof(*out));
	out->timeout_ms = 1000;
	out->attempts = 2;
	while (i < n) {
		eol = i;
		while (eol < n && text[eol] != '\n') {
			eol++;
		}
		/* '#' and ';' start comments; neither occurs in a value. */
		for (k = i; k < eol && text[k] != '#' && text[k] != ';'; k++) {
		}
		pos = 0;
		if (next_token(text + i, k - i, &pos, &kw) == 0) {
			if (util_view_eq(kw, "nameserver") &&
			    next_token(text + i, k - i, &pos, &tok) == 0 &&
			    out->nns < DNS_MAX_NS &&
			    parse_ns(tok, &out->ns[out->nns]) == 0) {
				out->nns++;
				found++;
			} else if (util_view_eq(kw, "options")) {
				while (next_token(text + i, k - i, &pos,
				    &tok) == 0) {
					parse_option(tok, out);
				}
			}
		}
		i = eol + 1;
	}
	if (out->nns == 0) {
		/* glibc and musl: no nameserver means the local one. */
		memset(&out->ns[0], 0, sizeof(out->ns[0]));
		s4->sin_family = AF_INET;
		s4->sin_port = htons(DNS_PORT);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		out->ns[0].len = sizeof(*s4);
		out->nns = 1;
	}
	return found;
}

static int
hosts_line(const char *p, size_t n, struct dns_host *out, int max)
{
	struct view tok;
	struct dns_ip ip;
	char buf[DNS_NAME_MAX];
	size_t pos = 0, k;
	int count = 0;

	for (k = 0; k < n && p[k] != '#'; k++) {
	}
	n = k;
	if (next_token(p, n, &pos, &tok) < 0 ||
	    parse_ip(tok.p, tok.n, &ip) < 0) {
		return 0;
	}
	while (count < max && next_token(p, n, &pos, &tok) == 0) {
		if (tok.n >= sizeof(buf)) {
			continue;
		}
		memcpy(buf, tok.p, tok.n);
		buf[tok.n] = '\0';
		if (dns_norm_name(buf, out[count].name) < 0) {
			continue;
		}
		out[count].ip = ip;
		count++;
	}
	return count;
}

int
dns_parse_hosts(const char *text, size_t n, struct dns_host *out, int max)
{
	size_t i = 0, eol;
	int count = 0;

	while (i < n && count < max) {
		eol = i;
		while (eol < n && text[eol] != '\n') {
			eol++;
		}
		count += hosts_line(text + i, eol - i, out + count,
		    max - count);
		i = eol + 1;
	}
	return count;
}

int
dns_literal(const char *name, struct dns_ip *ip)
{
	size_t n = strlen(name);

	if (n >= 2 && name[0] == '[' && name[n - 1] == ']') {
		return parse_ip(name + 1, n - 2, ip) == 0 &&
		    ip->family == AF_INET6;
	}
	return parse_ip(name, n, ip) == 0;
}
