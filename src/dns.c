/* dns: a stub resolver for the poll() loop.
 *
 * Three layers, top to bottom: dns_lookup() answers from literals, hosts,
 * "localhost" and the cache, or starts an A and an AAAA query for the
 * name; dns_step() moves queries on (answers, retransmits, timeouts) and
 * finishes a cache entry when both of its queries are done; the pure code
 * below them (dns_parse.c) builds queries and parses answers, names,
 * resolv.conf and hosts.
 *
 * What it deliberately does not do: search domains and ndots (the relay
 * resolves fully qualified names from its config), TCP fallback on a
 * truncated answer (answers for API hosts fit easily in 512 bytes; a
 * truncated answer that still carries addresses is used, one without is a
 * failure), EDNS (glibc and musl do not send it either, and some home
 * routers answer FORMERR to it), DNSSEC, and re-reading resolv.conf (read
 * once at startup; /etc/hosts is re-read when it changes).
 *
 * Ownership: everything lives inside struct dns; no allocation at all.
 * The two UDP sockets are owned here, opened when a query is sent and
 * closed when no query is in flight. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dns.h"
#include "log.h"
#include "util.h"

/* Says what a cache slot holds. */
enum entry_state {
	E_FREE,		/* unused */
	E_NEW,		/* no data; the first queries are in flight */
	E_OK,		/* addresses (maybe stale; a refresh may be in flight) */
	E_NEG		/* a failure, cached until refresh_ms */
};

enum query_outcome {
	Q_WAIT,		/* no answer yet */
	Q_ANSWER,	/* NOERROR (ans holds 0 or more addresses) */
	Q_NXDOMAIN,
	Q_RCODE,	/* SERVFAIL, REFUSED or another error code */
	Q_TIMEOUT,	/* no answer after every try */
	Q_SENDERR,	/* no try could be sent */
	Q_TRUNC		/* TC set and no address in what came */
};

enum {
	QUERY_BUF = 512,
	RECV_BUF = 4096,
	RECV_BURST = 64,	/* datagrams read per socket per step, so a
				 * flood cannot hold the loop */
	HOSTS_CHECK_MS = 1000
};

/* ---- files ---- */

/* Open path for reading: 0 with *fd set (-1 when the file does not
 * exist), or -1 with "cannot read PATH: reason" in err. */
static int
open_file(const char *path, int *fd, char *err, size_t errlen)
{
	*fd = util_open(path, O_RDONLY | O_CLOEXEC, 0);
	if (*fd < 0 && errno != ENOENT) {
		return util_errf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
	}
	return 0;
}

/* read(2) of up to n bytes, again after a signal: the count (0 at the
 * end of the file), or -1 with "cannot read PATH: reason" in err. */
static ssize_t
read_part(int fd, char *buf, size_t n, const char *path, char *err,
    size_t errlen)
{
	ssize_t r;

	do {
		r = read(fd, buf, n);
	} while (r < 0 && errno == EINTR);
	if (r < 0) {
		return util_errf(err, errlen, "cannot read %s: %s", path,
		    strerror(errno));
	}
	return r;
}

/* Read resolv.conf (tiny; 8 KB is plenty, the rest is ignored). A
 * missing file means the defaults. 0, or -1 with err. */
static int
load_resolv(struct dns *d, char *err, size_t errlen)
{
	char buf[8192];
	size_t have = 0;
	ssize_t r = 0;
	int fd;

	if (open_file(d->resolv_path, &fd, err, errlen) < 0) {
		return -1;
	}
	while (fd >= 0 && have < sizeof(buf) && (r = read_part(fd,
	    buf + have, sizeof(buf) - have, d->resolv_path, err, errlen)) > 0) {
		have += (size_t)r;
	}
	if (fd >= 0) {
		(void)close(fd);
	}
	if (r < 0) {
		return -1;
	}
	if (have == sizeof(buf)) {
		/* Cut at the last full line. */
		while (have > 0 && buf[have - 1] != '\n') {
			have--;
		}
	}
	d->ns_default = dns_parse_resolv_conf(buf, have, &d->conf) == 0;
	return 0;
}

/* Parse buf[0..n) of hosts into the table. */
static void
add_hosts(struct dns *d, const char *buf, size_t n)
{
	d->nhosts += dns_parse_hosts(buf, n, d->hosts + d->nhosts,
	    DNS_HOSTS_MAX - d->nhosts);
}

/* Read the hosts file through a 4 KB window, so a big file costs no
 * memory; lines longer than the window are skipped. A local file read
 * does not wait on the network, so this is allowed in the loop (and runs
 * only when the file changed). 0, or -1 with err. */
static int
load_hosts(struct dns *d, char *err, size_t errlen)
{
	char buf[4096];
	size_t have = 0, k, drop;
	ssize_t r;
	int fd, skipping = 0;
	const char *nl;

	d->nhosts = 0;
	if (open_file(d->hosts_path, &fd, err, errlen) < 0) {
		return -1;
	}
	if (fd < 0) {
		return 0;
	}
	while (d->nhosts < DNS_HOSTS_MAX) {
		r = read_part(fd, buf + have, sizeof(buf) - have,
		    d->hosts_path, err, errlen);
		if (r < 0) {
			(void)close(fd);
			return -1;
		}
		if (r == 0) {
			if (!skipping) {
				add_hosts(d, buf, have);
			}
			break;
		}
		have += (size_t)r;
		if (skipping) {
			nl = memchr(buf, '\n', have);
			if (nl == NULL) {
				have = 0;
				continue;
			}
			drop = (size_t)(nl - buf) + 1;
			memmove(buf, buf + drop, have - drop);
			have -= drop;
			skipping = 0;
		}
		for (k = have; k > 0 && buf[k - 1] != '\n'; k--) {
		}
		if (k > 0) {
			add_hosts(d, buf, k);
			memmove(buf, buf + k, have - k);
			have -= k;
		} else if (have == sizeof(buf)) {
			skipping = 1;
			have = 0;
		}
	}
	(void)close(fd);
	if (d->nhosts == DNS_HOSTS_MAX) {
		log_warn("dns: only the first %d names of %s are used",
		    DNS_HOSTS_MAX, d->hosts_path);
	}
	return 0;
}

/* Re-read hosts when its identity, size or mtime changed, checking at
 * most once a second (force: now). The stat comes before the read, so a
 * write racing with the read leaves a new mtime, picked up next time.
 * 0, or -1 with err when the file exists but cannot be read. */
static int
hosts_check(struct dns *d, uint64_t now_ms, int force, char *err,
    size_t errlen)
{
	struct stat st;

	if (!force && d->hosts_checked_ms != 0 &&
	    now_ms < d->hosts_checked_ms + HOSTS_CHECK_MS) {
		return 0;
	}
	d->hosts_checked_ms = now_ms;
	if (stat(d->hosts_path, &st) < 0) {
		d->nhosts = 0;
		d->hosts_present = 0;
		return 0;
	}
	if (!force && d->hosts_present &&
	    st.st_mtim.tv_sec == d->hosts_mtime.tv_sec &&
	    st.st_mtim.tv_nsec == d->hosts_mtime.tv_nsec &&
	    st.st_size == d->hosts_size && st.st_ino == d->hosts_ino &&
	    st.st_dev == d->hosts_dev) {
		return 0;
	}
	d->hosts_present = 1;
	d->hosts_mtime = st.st_mtim;
	d->hosts_size = st.st_size;
	d->hosts_ino = st.st_ino;
	d->hosts_dev = st.st_dev;
	return load_hosts(d, err, errlen);
}

/* ---- lookups ---- */

/* Addresses of name in hosts, IPv4 first. */
static int
hosts_find(const struct dns *d, const char *name, struct dns_ip *out,
    int max)
{
	int i, pass, n = 0;

	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < d->nhosts && n < max; i++) {
			if ((d->hosts[i].ip.family == AF_INET) == (pass == 0) &&
			    strcmp(d->hosts[i].name, name) == 0) {
				out[n++] = d->hosts[i].ip;
			}
		}
	}
	return n;
}

/* RFC 6761 section 6.3: localhost and its subdomains are loopback. */
static int
is_localhost(const char *key)
{
	size_t n = strlen(key);

	return strcmp(key, "localhost") == 0 ||
	    (n > 10 && strcmp(key + n - 10, ".localhost") == 0);
}

static int
put_addrs(const struct dns_ip *ip, int n, uint16_t port,
    struct net_addr *out, int max)
{
	int i;

	for (i = 0; i < n && i < max; i++) {
		dns_ip_addr(&ip[i], port, &out[i]);
	}
	return i;
}

/* "10.0.0.1", or "10.0.0.1:5353" / "[::1]:5353" off port 53. */
static void
fmt_ns(const struct net_addr *a, char *out, size_t cap)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&a->ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&a->ss;
	char ip[INET6_ADDRSTRLEN];
	unsigned port;
	int v6 = a->ss.ss_family != AF_INET;

	if (v6) {
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
	} else {
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
	}
	if (port == DNS_PORT) {
		(void)snprintf(out, cap, "%s", ip);
	} else {
		(void)snprintf(out, cap, "%s%s%s:%u", v6 ? "[" : "", ip,
		    v6 ? "]" : "", port);
	}
}

/* Index of the configured nameserver that from is, or -1. */
static int
ns_index(const struct dns *d, const struct sockaddr_storage *from)
{
	const struct sockaddr_in *f4 = (const struct sockaddr_in *)from;
	const struct sockaddr_in6 *f6 = (const struct sockaddr_in6 *)from;
	const struct sockaddr_in *n4;
	const struct sockaddr_in6 *n6;
	int i;

	for (i = 0; i < d->conf.nns; i++) {
		if (d->conf.ns[i].ss.ss_family != from->ss_family) {
			continue;
		}
		n4 = (const struct sockaddr_in *)&d->conf.ns[i].ss;
		n6 = (const struct sockaddr_in6 *)&d->conf.ns[i].ss;
		if (from->ss_family == AF_INET &&
		    n4->sin_port == f4->sin_port &&
		    n4->sin_addr.s_addr == f4->sin_addr.s_addr) {
			return i;
		}
		if (from->ss_family == AF_INET6 &&
		    n6->sin6_port == f6->sin6_port &&
		    memcmp(&n6->sin6_addr, &f6->sin6_addr, 16) == 0) {
			return i;
		}
	}
	return -1;
}

static int
busy(const struct dns *d)
{
	int i;

	for (i = 0; i < DNS_QUERY_MAX; i++) {
		if (d->q[i].busy) {
			return 1;
		}
	}
	return 0;
}

/* Close the sockets when nothing is in flight: the next batch of
 * queries binds a new random source port, so a spoofer who learned this
 * one gains nothing lasting. */
static void
close_idle(struct dns *d)
{
	if (busy(d)) {
		return;
	}
	if (d->fd4 >= 0) {
		(void)close(d->fd4);
		d->fd4 = -1;
	}
	if (d->fd6 >= 0) {
		(void)close(d->fd6);
		d->fd6 = -1;
	}
}

static int
sock_for(struct dns *d, int family)
{
	int *fdp = family == AF_INET6 ? &d->fd6 : &d->fd4;
	struct sockaddr_storage ss;
	socklen_t len;
	int fd;

	if (*fdp >= 0) {
		return *fdp;
	}
	fd = socket(family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	/* Port 0: the kernel picks a random ephemeral port, 16 more bits a
	 * spoofer must guess besides the id. */
	memset(&ss, 0, sizeof(ss));
	ss.ss_family = (sa_family_t)family;
	len = family == AF_INET6 ? sizeof(struct sockaddr_in6) :
	    sizeof(struct sockaddr_in);
	if (bind(fd, (struct sockaddr *)&ss, len) < 0) {
		(void)close(fd);
		return -1;
	}
	*fdp = fd;
	return fd;
}

/* A random id no query in flight uses. */
static uint16_t
new_id(struct dns *d)
{
	uint16_t id;
	int i, clash;

	do {
		if (util_random(&id, sizeof(id)) < 0) {
			/* xorshift64: only if getrandom and urandom both
			 * fail, which they do not on Linux. */
			d->rng ^= d->rng << 13;
			d->rng ^= d->rng >> 7;
			d->rng ^= d->rng << 17;
			id = (uint16_t)(d->rng >> 24);
		}
		clash = 0;
		for (i = 0; i < DNS_QUERY_MAX; i++) {
			if (d->q[i].busy && d->q[i].id == id) {
				clash = 1;
			}
		}
	} while (clash);
	return id;
}

static void entry_finish(struct dns *d, int ei, uint64_t now_ms);

/* Mark query qi done; finish its entry once the sibling is done too. */
static void
query_finish(struct dns *d, int qi, int outcome, uint64_t now_ms)
{
	struct dns_query *q = &d->q[qi];
	struct dns_entry *e = &d->cache[q->entry];
	int sib = e->q[0] == qi ? e->q[1] : e->q[0];

	q->done = 1;
	q->outcome = outcome;
	if (d->q[sib].done) {
		entry_finish(d, q->entry, now_ms);
	}
}

/* Send one try of q to its nameserver. 0, or -1 with q->why set. */
static int
send_try(struct dns *d, struct dns_query *q)
{
	const struct net_addr *ns = &d->conf.ns[q->ns];
	unsigned char msg[QUERY_BUF];
	char nsb[64];
	int n, fd, e;

	n = dns_build_query(msg, sizeof(msg), q->id, d->cache[q->entry].name,
	    q->qtype);
	fd = sock_for(d, ns->ss.ss_family);
	if (n < 0 || fd < 0 || (sendto(fd, msg, (size_t)n, 0,
	    (const struct sockaddr *)&ns->ss, ns->len) < 0 &&
	    errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
		/* EAGAIN and EINTR count as sent: the try times out and
		 * the next one goes out. An error code a nameserver gave
		 * earlier says more than this, so it is kept. */
		e = errno;
		if (q->outcome != Q_RCODE) {
			fmt_ns(ns, nsb, sizeof(nsb));
			util_errf(q->why, sizeof(q->why),
			    "cannot send to nameserver %s: %s", nsb,
			    n < 0 ? "bad name" : strerror(e));
		}
		return -1;
	}
	return 0;
}

/* "no answer from nameserver 10.0.0.1 after 2 tries", listing every
 * nameserver; with the default one, say that resolv.conf had none. */
static void
why_timeout(const struct dns *d, const struct dns_query *q, char *out,
    size_t cap)
{
	char list[3 * 56], nsb[56];
	size_t len = 0;
	int i;

	list[0] = '\0';
	for (i = 0; i < d->conf.nns; i++) {
		fmt_ns(&d->conf.ns[i], nsb, sizeof(nsb));
		len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
		    i > 0 ? ", " : "", nsb);
		if (len >= sizeof(list)) {
			break;
		}
	}
	if (d->ns_default) {
		util_errf(out, cap, "no nameserver in %s, and no answer from "
		    "%s after %u %s", d->resolv_path, list, q->sent,
		    q->sent == 1 ? "try" : "tries");
	} else {
		util_errf(out, cap, "no answer from nameserver%s %s after "
		    "%u %s", d->conf.nns > 1 ? "s" : "", list, q->sent,
		    q->sent == 1 ? "try" : "tries");
	}
}

/* Send the next try, rotating through the nameservers; a send that fails
 * moves on at once. With no tries left, the query is done: with the error
 * code a nameserver gave, else with a timeout, else with the send error. */
static void
query_next(struct dns *d, int qi, uint64_t now_ms)
{
	struct dns_query *q = &d->q[qi];
	unsigned attempts = d->conf.attempts > 0 ? d->conf.attempts : 1;
	unsigned total = attempts * (unsigned)d->conf.nns;

	while (q->tries < total) {
		q->ns = (int)(q->tries % (unsigned)d->conf.nns);
		q->tries++;
		if (send_try(d, q) == 0) {
			q->sent++;
			q->deadline_ms = now_ms + d->conf.timeout_ms;
			return;
		}
	}
	if (q->outcome == Q_RCODE) {
		query_finish(d, qi, Q_RCODE, now_ms);
	} else if (q->sent > 0) {
		why_timeout(d, q, q->why, sizeof(q->why));
		query_finish(d, qi, Q_TIMEOUT, now_ms);
	} else {
		query_finish(d, qi, Q_SENDERR, now_ms);
	}
}

static void
handle_answer(struct dns *d, int qi, int ns, const struct dns_answer *ans,
    uint64_t now_ms)
{
	struct dns_query *q = &d->q[qi];
	char nsb[64];

	fmt_ns(&d->conf.ns[ns], nsb, sizeof(nsb));
	if (ans->rcode == DNS_RCODE_NOERROR && ans->truncated &&
	    ans->naddr == 0) {
		util_errf(q->why, sizeof(q->why), "truncated answer from "
		    "nameserver %s (no TCP fallback)", nsb);
		query_finish(d, qi, Q_TRUNC, now_ms);
	} else if (ans->rcode == DNS_RCODE_NOERROR) {
		q->ans = *ans;
		query_finish(d, qi, Q_ANSWER, now_ms);
	} else if (ans->rcode == DNS_RCODE_NXDOMAIN) {
		util_errf(q->why, sizeof(q->why), "NXDOMAIN (no such name)");
		query_finish(d, qi, Q_NXDOMAIN, now_ms);
	} else {
		if (ans->rcode == DNS_RCODE_SERVFAIL) {
			util_errf(q->why, sizeof(q->why),
			    "SERVFAIL from nameserver %s", nsb);
		} else if (ans->rcode == DNS_RCODE_REFUSED) {
			util_errf(q->why, sizeof(q->why),
			    "REFUSED by nameserver %s", nsb);
		} else {
			util_errf(q->why, sizeof(q->why),
			    "error code %d from nameserver %s", ans->rcode,
			    nsb);
		}
		q->outcome = Q_RCODE;
		/* Another nameserver may do better (glibc moves on too);
		 * once each has been asked, the error stands. */
		if (q->tries < (unsigned)d->conf.nns) {
			query_next(d, qi, now_ms);
		} else {
			query_finish(d, qi, Q_RCODE, now_ms);
		}
	}
}

static uint32_t
clamp_ttl(uint32_t s)
{
	return s < DNS_TTL_MIN_S ? DNS_TTL_MIN_S :
	    s > DNS_TTL_MAX_S ? DNS_TTL_MAX_S : s;
}

/* Both queries of entry ei are done: store addresses or a failure, free
 * the query slots and bump the generation. */
static void
entry_finish(struct dns *d, int ei, uint64_t now_ms)
{
	struct dns_entry *e = &d->cache[ei];
	struct dns_query *q4 = &d->q[e->q[0]], *q6 = &d->q[e->q[1]];
	int n4 = q4->outcome == Q_ANSWER ? q4->ans.naddr : 0;
	int n6 = q6->outcome == Q_ANSWER ? q6->ans.naddr : 0;
	int t4, t6, i, final;
	uint32_t ttl = UINT32_MAX;
	const char *why;

	if (n4 + n6 > 0) {
		/* IPv4 first, but keep room for some IPv6. */
		t6 = n6 < DNS_ADDR_MAX / 2 ? n6 : DNS_ADDR_MAX / 2;
		t4 = n4 < DNS_ADDR_MAX - t6 ? n4 : DNS_ADDR_MAX - t6;
		t6 = n6 < DNS_ADDR_MAX - t4 ? n6 : DNS_ADDR_MAX - t4;
		for (i = 0; i < t4; i++) {
			e->addr[i] = q4->ans.addr[i];
		}
		for (i = 0; i < t6; i++) {
			e->addr[t4 + i] = q6->ans.addr[i];
		}
		e->naddr = t4 + t6;
		if (n4 > 0) {
			ttl = q4->ans.ttl_s;
		}
		if (n6 > 0 && q6->ans.ttl_s < ttl) {
			ttl = q6->ans.ttl_s;
		}
		ttl = clamp_ttl(ttl);
		e->state = E_OK;
		e->refresh_ms = now_ms + (uint64_t)ttl * 1000;
		e->expire_ms = e->refresh_ms + (uint64_t)DNS_STALE_MAX_S * 1000;
		e->why[0] = '\0';
		log_debug("dns: %s: %d address(es), ttl %u s", e->name,
		    e->naddr, (unsigned)ttl);
	} else {
		/* NXDOMAIN and an empty NOERROR for both types are the
		 * name's owner speaking; anything else may be a blip. */
		final = 1;
		if (q4->outcome == Q_NXDOMAIN || q6->outcome == Q_NXDOMAIN) {
			why = "NXDOMAIN (no such name)";
		} else if (q4->outcome == Q_ANSWER &&
		    q6->outcome == Q_ANSWER) {
			why = "no A or AAAA record (NODATA)";
		} else {
			final = 0;
			why = q4->outcome != Q_ANSWER ? q4->why : q6->why;
		}
		if (!final && e->state == E_OK && now_ms < e->expire_ms) {
			/* Stale-while-revalidate: keep the old addresses and
			 * try again in a while instead of flapping. */
			e->refresh_ms = now_ms + (uint64_t)DNS_RETRY_S * 1000;
			log_warn("dns: refreshing %s failed (%s); using the "
			    "previous addresses", e->name, why);
		} else {
			e->state = E_NEG;
			e->naddr = 0;
			e->refresh_ms = now_ms + (uint64_t)DNS_NEG_TTL_S * 1000;
			util_errf(e->why, sizeof(e->why), "%s", why);
			log_debug("dns: %s: %s", e->name, why);
		}
	}
	q4->busy = 0;
	q6->busy = 0;
	e->q[0] = e->q[1] = -1;
	d->generation++;
}

/* Start the A and AAAA queries of entry ei. 0, or -1 with no free slot.
 * Both may finish before this returns (every send failed). */
static int
start_queries(struct dns *d, int ei, uint64_t now_ms)
{
	static const uint16_t types[2] = { DNS_QTYPE_A, DNS_QTYPE_AAAA };
	struct dns_entry *e = &d->cache[ei];
	int slot[2], i, k = 0;

	for (i = 0; i < DNS_QUERY_MAX && k < 2; i++) {
		if (!d->q[i].busy) {
			slot[k++] = i;
		}
	}
	if (k < 2) {
		return -1;
	}
	for (k = 0; k < 2; k++) {
		memset(&d->q[slot[k]], 0, sizeof(d->q[slot[k]]));
		d->q[slot[k]].id = new_id(d);
		d->q[slot[k]].busy = 1;
		d->q[slot[k]].entry = ei;
		d->q[slot[k]].qtype = types[k];
		d->q[slot[k]].outcome = Q_WAIT;
		e->q[k] = slot[k];
	}
	query_next(d, slot[0], now_ms);
	query_next(d, slot[1], now_ms);
	return 0;
}

static int
cache_find(const struct dns *d, const char *key)
{
	int i;

	for (i = 0; i < DNS_CACHE_MAX; i++) {
		if (d->cache[i].state != E_FREE &&
		    strcmp(d->cache[i].name, key) == 0) {
			return i;
		}
	}
	return -1;
}

/* A free slot, else the least recently used one with nothing in flight
 * (there is one: DNS_CACHE_MAX exceeds the names DNS_QUERY_MAX can
 * serve). */
static int
cache_alloc(struct dns *d, const char *key, uint64_t now_ms)
{
	int i, best = -1;

	for (i = 0; i < DNS_CACHE_MAX; i++) {
		if (d->cache[i].state == E_FREE) {
			best = i;
			break;
		}
		if (d->cache[i].q[0] < 0 && (best < 0 ||
		    d->cache[i].used_ms < d->cache[best].used_ms)) {
			best = i;
		}
	}
	if (best < 0) {
		return -1;
	}
	memset(&d->cache[best], 0, sizeof(d->cache[best]));
	memcpy(d->cache[best].name, key, strlen(key) + 1);
	d->cache[best].state = E_NEW;
	d->cache[best].q[0] = d->cache[best].q[1] = -1;
	d->cache[best].used_ms = now_ms;
	return best;
}

int
dns_lookup(struct dns *d, const char *name, uint16_t port,
    uint64_t now_ms, struct net_addr *out, int max, int *count, char *err,
    size_t errlen)
{
	static const unsigned char lo4[4] = { 127, 0, 0, 1 };
	struct dns_ip ip[DNS_ADDR_MAX];
	struct dns_entry *e;
	char key[DNS_NAME_MAX];
	int n, ei, rc;

	*count = 0;
	if (dns_literal(name, &ip[0])) {
		*count = put_addrs(ip, 1, port, out, max);
		return DNS_DONE;
	}
	if (dns_norm_name(name, key) < 0) {
		util_errf(err, errlen, "cannot resolve \"%.64s\": not a valid "
		    "host name", name);
		return DNS_FAILED;
	}
	if (hosts_check(d, now_ms, 0, err, errlen) < 0) {
		/* Keep going with what was read: hosts is optional. */
		log_warn("dns: %s", err);
	}
	n = hosts_find(d, key, ip, DNS_ADDR_MAX);
	if (n == 0 && is_localhost(key)) {
		/* After hosts, which may say otherwise (glibc order). */
		memset(ip, 0, 2 * sizeof(ip[0]));
		ip[0].family = AF_INET;
		memcpy(ip[0].a, lo4, 4);
		ip[1].family = AF_INET6;
		ip[1].a[15] = 1;
		n = 2;
	}
	if (n > 0) {
		*count = put_addrs(ip, n, port, out, max);
		return DNS_DONE;
	}

	ei = cache_find(d, key);
	if (ei < 0) {
		ei = cache_alloc(d, key, now_ms);
	}
	if (ei < 0) {
		util_errf(err, errlen, "cannot resolve %s: too many lookups in "
		    "flight", key);
		return DNS_FAILED;
	}
	e = &d->cache[ei];
	e->used_ms = now_ms;
	if (e->state == E_OK && now_ms >= e->expire_ms) {
		/* Too stale to serve: wait for the refresh. */
		e->naddr = 0;
		e->state = E_NEW;
	}
	if (e->state == E_NEG && now_ms >= e->refresh_ms) {
		e->state = E_NEW;
	}
	if (e->q[0] < 0 && (e->state == E_NEW ||
	    (e->state == E_OK && now_ms >= e->refresh_ms))) {
		if (start_queries(d, ei, now_ms) < 0 && e->state == E_NEW) {
			e->state = E_FREE;
			e->name[0] = '\0';
			util_errf(err, errlen, "cannot resolve %s: too many "
			    "lookups in flight", key);
			close_idle(d);
			return DNS_FAILED;
		}
		/* A refresh that cannot start now is tried on the next
		 * lookup; the stale addresses are served meanwhile. */
	}
	close_idle(d);
	switch (e->state) {
	case E_OK:
		*count = put_addrs(e->addr, e->naddr, port, out, max);
		rc = DNS_DONE;
		break;
	case E_NEG:
		util_errf(err, errlen, "cannot resolve %s: %s", key, e->why);
		rc = DNS_FAILED;
		break;
	default:
		rc = DNS_PENDING;
		break;
	}
	return rc;
}

/* ---- event loop ---- */

static void
handle_datagram(struct dns *d, const unsigned char *msg, size_t len,
    const struct sockaddr_storage *from, uint64_t now_ms)
{
	struct dns_answer ans;
	uint16_t id;
	int i, ns;

	if (dns_msg_id(msg, len, &id) < 0) {
		return;
	}
	ns = ns_index(d, from);
	if (ns < 0) {
		return;
	}
	for (i = 0; i < DNS_QUERY_MAX; i++) {
		if (!d->q[i].busy || d->q[i].done || d->q[i].id != id) {
			continue;
		}
		/* A failed parse is a spoof, a late answer or garbage:
		 * ignore it and keep waiting for the real one. */
		if (dns_parse_answer(msg, len, id,
		    d->cache[d->q[i].entry].name, d->q[i].qtype, &ans) == 0) {
			handle_answer(d, i, ns, &ans, now_ms);
		}
		return;
	}
}

static void
recv_all(struct dns *d, int fd, uint64_t now_ms)
{
	unsigned char buf[RECV_BUF];
	struct sockaddr_storage from;
	socklen_t flen;
	ssize_t r;
	int i;

	for (i = 0; fd >= 0 && i < RECV_BURST; i++) {
		flen = sizeof(from);
		r = recvfrom(fd, buf, sizeof(buf), 0,
		    (struct sockaddr *)&from, &flen);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r < 0) {
			/* EAGAIN: drained. Anything else (an ICMP error
			 * surfacing) is not tied to a query: the try
			 * simply times out. */
			break;
		}
		handle_datagram(d, buf, (size_t)r, &from, now_ms);
	}
}

int
dns_init(struct dns *d, const char *resolv_conf_path,
    const char *hosts_path, char *err, size_t errlen)
{
	/* All zeros is an empty cache and no query in flight: nothing of
	 * the tables is written (or, in static storage, even paged in)
	 * until it is used. */
	d->fd4 = d->fd6 = -1;
	if (resolv_conf_path == NULL) {
		resolv_conf_path = "/etc/resolv.conf";
	}
	if (hosts_path == NULL) {
		hosts_path = "/etc/hosts";
	}
	if (strlen(resolv_conf_path) >= sizeof(d->resolv_path) ||
	    strlen(hosts_path) >= sizeof(d->hosts_path)) {
		util_errf(err, errlen, "dns: path too long");
		return -1;
	}
	memcpy(d->resolv_path, resolv_conf_path, strlen(resolv_conf_path));
	memcpy(d->hosts_path, hosts_path, strlen(hosts_path));
	if (util_random(&d->rng, sizeof(d->rng)) < 0 || d->rng == 0) {
		d->rng = 0x9E3779B97F4A7C15ull ^ (uint64_t)(uintptr_t)d;
	}
	if (load_resolv(d, err, errlen) < 0) {
		return -1;
	}
	if (hosts_check(d, 0, 1, err, errlen) < 0) {
		return -1;
	}
	d->hosts_checked_ms = 0;
	return 0;
}

void
dns_free(struct dns *d)
{
	int i;

	for (i = 0; i < DNS_QUERY_MAX; i++) {
		d->q[i].busy = 0;
	}
	close_idle(d);
	memset(d, 0, sizeof(*d));
}

int
dns_fds(const struct dns *d, struct pollfd *out, int max)
{
	const int fds[2] = { d->fd4, d->fd6 };
	int i, n = 0;

	if (!busy(d)) {
		return 0;
	}
	for (i = 0; i < 2 && n < max; i++) {
		if (fds[i] >= 0) {
			out[n].fd = fds[i];
			out[n].events = POLLIN;
			out[n].revents = 0;
			n++;
		}
	}
	return n;
}

void
dns_step(struct dns *d, uint64_t now_ms)
{
	int i;

	recv_all(d, d->fd4, now_ms);
	recv_all(d, d->fd6, now_ms);
	for (i = 0; i < DNS_QUERY_MAX; i++) {
		if (d->q[i].busy && !d->q[i].done &&
		    now_ms >= d->q[i].deadline_ms) {
			query_next(d, i, now_ms);
		}
	}
	close_idle(d);
}

uint64_t
dns_deadline(const struct dns *d)
{
	uint64_t best = 0;
	int i;

	for (i = 0; i < DNS_QUERY_MAX; i++) {
		if (d->q[i].busy && !d->q[i].done &&
		    (best == 0 || d->q[i].deadline_ms < best)) {
			best = d->q[i].deadline_ms;
		}
	}
	return best;
}

unsigned
dns_generation(const struct dns *d)
{
	return d->generation;
}
