#ifndef RELAY_DNS_H
#define RELAY_DNS_H
/* dns: a small stub resolver that never blocks the loop.
 *
 * Names resolve from, in this order: numeric literals, /etc/hosts,
 * "localhost", the cache, then A and AAAA queries over UDP to the
 * nameservers of /etc/resolv.conf. No NSS, no getaddrinfo, no threads: it
 * works in a static binary inside an empty root that only has those two
 * files. The process has one struct dns; it is about 90 KB, so keep it
 * static or inside a heap-allocated owner, not on a small stack.
 *
 * Loop integration: a lookup that returns DNS_PENDING is retried by its
 * caller after dns_generation() changes. Each loop pass adds dns_fds() to
 * the poll set, takes dns_deadline() into the poll timeout, and calls
 * dns_step() after poll returns (calling it on every pass is fine; it only
 * does non-blocking reads). */
#include <poll.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "net.h"

enum dns_result {
	DNS_FAILED = -1,	/* message in err; a retryable upstream failure */
	DNS_DONE = 0,		/* addresses written */
	DNS_PENDING = 1		/* queries in flight: retry on a new generation */
};

enum {
	DNS_NAME_MAX = 254,	/* 253 characters plus the NUL */
	DNS_MAX_NS = 3,		/* nameservers kept from resolv.conf (glibc) */
	DNS_ADDR_MAX = 8,	/* addresses kept per name, both families */
	DNS_CACHE_MAX = 64,	/* names cached */
	DNS_QUERY_MAX = 32,	/* queries in flight: one A + one AAAA per name */
	DNS_HOSTS_MAX = 128,	/* (name, address) pairs kept from /etc/hosts */
	DNS_WHY_MAX = 160,	/* failure reason text */
	DNS_TTL_MIN_S = 5,	/* answer TTLs are clamped to [min, max] */
	DNS_TTL_MAX_S = 3600,
	DNS_NEG_TTL_S = 5,	/* failures are cached this long */
	DNS_RETRY_S = 5,	/* a failing refresh is retried this often */
	DNS_STALE_MAX_S = 86400, /* stale data is served this long at most
				 * while refreshes fail (RFC 8767 suggests
				 * 1 to 3 days) */
	DNS_PORT = 53,
	DNS_QTYPE_A = 1,
	DNS_QTYPE_CNAME = 5,
	DNS_QTYPE_AAAA = 28,
	DNS_RCODE_NOERROR = 0,
	DNS_RCODE_SERVFAIL = 2,
	DNS_RCODE_NXDOMAIN = 3,
	DNS_RCODE_REFUSED = 5
};

/* One address without a port. */
struct dns_ip {
	int family;		/* AF_INET (a[0..3]) or AF_INET6 */
	unsigned char a[16];
};

/* What dns_parse_answer() found for one question. */
struct dns_answer {
	int rcode;		/* DNS_RCODE_* or another RFC 1035 code */
	int truncated;		/* TC bit */
	uint32_t ttl_s;		/* minimum TTL of the CNAME and address
				 * records used; 0 when there are none */
	int naddr;
	struct dns_ip addr[DNS_ADDR_MAX];
};

/* The parts of resolv.conf we use. */
struct dns_resolv {
	struct net_addr ns[DNS_MAX_NS];	/* with the port (53 by default) */
	int nns;
	unsigned timeout_ms;	/* per try; "options timeout:N" (default 1 s) */
	unsigned attempts;	/* rounds over all nameservers (default 2) */
};

struct dns_host {
	char name[DNS_NAME_MAX];	/* lowercase, no trailing dot */
	struct dns_ip ip;
};

/* A cache slot. Fields are private. */
struct dns_entry {
	char name[DNS_NAME_MAX];	/* key: lowercase, no trailing dot;
					 * "" when the slot is free */
	int state;		/* enum entry_state in dns.c */
	int naddr;
	struct dns_ip addr[DNS_ADDR_MAX];	/* IPv4 first, then IPv6 */
	uint64_t refresh_ms;	/* OK: fresh until then, refreshed after;
				 * NEG: the failure is cached until then */
	uint64_t expire_ms;	/* OK: stale data is dropped after this */
	uint64_t used_ms;	/* last lookup, for LRU eviction */
	int q[2];		/* query slots (A, AAAA) in flight, or -1 */
	char why[DNS_WHY_MAX];	/* NEG: the reason, for the error text */
};

/* An in-flight query. Fields are private. */
struct dns_query {
	int busy;		/* the slot is in use (0 in a zeroed struct) */
	int entry;		/* cache slot it fills, while busy */
	int done;		/* outcome is set; waits for its sibling */
	uint16_t id;
	uint16_t qtype;
	int ns;			/* nameserver of the latest try */
	unsigned tries;		/* tries made so far */
	unsigned sent;		/* tries whose datagram left */
	uint64_t deadline_ms;	/* the latest try times out then */
	int outcome;		/* enum query_outcome in dns.c */
	struct dns_answer ans;
	char why[DNS_WHY_MAX];
};

struct dns {
	/* Configuration. Tests may change conf after dns_init (small
	 * timeouts, the port of a fake nameserver). */
	struct dns_resolv conf;
	int ns_default;		/* 1: resolv.conf named no nameserver */
	char resolv_path[256];
	char hosts_path[256];

	struct dns_host hosts[DNS_HOSTS_MAX];
	int nhosts;
	int hosts_present;	/* the file existed at the last stat */
	struct timespec hosts_mtime;
	off_t hosts_size;
	ino_t hosts_ino;
	dev_t hosts_dev;
	uint64_t hosts_checked_ms;	/* last stat; at most once a second */

	struct dns_entry cache[DNS_CACHE_MAX];
	struct dns_query q[DNS_QUERY_MAX];
	int fd4, fd6;		/* owned UDP sockets, -1 when closed; they
				 * are closed when idle so that each batch of
				 * queries gets a fresh random source port */
	unsigned generation;
	uint64_t rng;		/* fallback id generator if getrandom fails */
};

/* Read resolv.conf and hosts (NULL: "/etc/resolv.conf", "/etc/hosts").
 * A missing file is not an error (no nameserver means 127.0.0.1, as in
 * glibc and musl). Returns 0, or -1 with a message in err when a file
 * exists but cannot be read. Opens no socket. d must be all zeros on
 * the way in (static storage, memset, or after dns_free()): the empty
 * tables are not written, so their pages stay untouched until used. */
int dns_init(struct dns *d, const char *resolv_conf_path,
    const char *hosts_path, char *err, size_t errlen);

/* Close the sockets and zero d: it can be dns_init'ed again. */
void dns_free(struct dns *d);

/* Resolve name for port. DNS_DONE: up to max addresses written to out,
 * *count set, IPv4 first then IPv6 (not interleaved). Literals ("1.2.3.4",
 * "::1", "[::1]"), /etc/hosts, "localhost" and fresh cache entries answer
 * at once. A stale cache entry answers at once too while a refresh query
 * runs in the background (stale-while-revalidate). DNS_PENDING: A and AAAA
 * queries are in flight for this name; call again when dns_generation()
 * changes. DNS_FAILED: "cannot resolve NAME: REASON" in err; failures are
 * cached for DNS_NEG_TTL_S. Never blocks: it may stat /etc/hosts (at most
 * once a second) and send UDP datagrams. */
int dns_lookup(struct dns *d, const char *name, uint16_t port,
    uint64_t now_ms, struct net_addr *out, int max, int *count, char *err,
    size_t errlen);

/* Fill out with the sockets to poll for POLLIN (none when no query is in
 * flight). Returns how many were written. */
int dns_fds(const struct dns *d, struct pollfd *out, int max);

/* Read every pending answer, retransmit or fail timed-out tries, finish
 * lookups (bumping the generation). Never blocks. */
void dns_step(struct dns *d, uint64_t now_ms);

/* Nearest retransmit or timeout in monotonic ms; 0 when nothing waits. */
uint64_t dns_deadline(const struct dns *d);

/* Changes whenever a lookup finishes (with addresses or with a failure). */
unsigned dns_generation(const struct dns *d);

/* Pure code (dns_parse.c), for the resolver and for tests. */

/* Normalize a host name into out (DNS_NAME_MAX bytes): lowercase, no
 * trailing dot. Returns 0, or -1 when it is not a valid host name
 * (letters, digits, '-' and '_' in labels of 1 to 63, 253 in all). */
int dns_norm_name(const char *name, char *out);

/* An address literal "1.2.3.4", "::1" or "[::1]" (no scope id). Returns
 * 1 with ip set, or 0. */
int dns_literal(const char *name, struct dns_ip *ip);

/* The id of the DNS message msg[0..len): 0 with *id set, or -1 when it
 * is too short to be a message. */
int dns_msg_id(const unsigned char *msg, size_t len, uint16_t *id);

/* Write a recursive query (RD set, no EDNS) for name (dotted, an optional
 * trailing dot) and qtype into out. Returns its length, or -1 when the
 * name is not a valid domain name or cap is too small. */
int dns_build_query(unsigned char *out, size_t cap, uint16_t id,
    const char *name, int qtype);

/* Check that msg (hostile input, len bytes) answers our question: id,
 * QR, opcode, one question equal to (qname, qtype, IN). Then follow the
 * CNAME chain from qname inside the answer section and collect the
 * address records of type qtype (A: 4 bytes, AAAA: 16) for its end.
 * Returns 0 with out filled (out->rcode may be an error), or -1 when the
 * message is malformed or answers another question: ignore it. */
int dns_parse_answer(const unsigned char *msg, size_t len, uint16_t want_id,
    const char *qname, int qtype, struct dns_answer *out);

/* Parse resolv.conf text: "nameserver ADDR" (up to DNS_MAX_NS; IPv4,
 * IPv6, "fe80::1%eth0"; as a test-only extension "1.2.3.4:5353" and
 * "[::1]:5353") and "options timeout:N attempts:N" (other options, search
 * and domain are ignored: the relay resolves fully qualified names).
 * Without nameserver lines, 127.0.0.1:53 is used. Returns the number of
 * nameserver lines found (0 means the default). */
int dns_parse_resolv_conf(const char *text, size_t n, struct dns_resolv *out);

/* The socket address of ip and port (an IPv6 one with scope id 0). */
void dns_ip_addr(const struct dns_ip *ip, uint16_t port,
    struct net_addr *out);

/* Parse hosts text ("ADDR NAME [ALIAS...]", '#' comments) into at most
 * max (name, address) pairs. Returns how many were written; lines with a
 * bad address, with a scope id or past max are skipped. */
int dns_parse_hosts(const char *text, size_t n, struct dns_host *out,
    int max);

#endif
