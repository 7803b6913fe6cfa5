/* dnsprobe: resolve names with the relay's dns module, the way the relay's
 * loop does (dns_lookup, then poll on dns_fds until dns_deadline, then
 * dns_step, and again when the generation changes), and print
 *
 *	NAME ADDR [ADDR...]
 *
 * one line per name; failures go to stderr and make the exit status 1.
 * Built static, it proves resolution needs nothing but /etc/resolv.conf and
 * /etc/hosts (tests/e2e/chroot_dns.sh runs it in an empty root).
 *
 *	dnsprobe [-t TIMEOUT_MS] NAME...
 *	dnsprobe -s PORTFILE
 *
 * -t sets the per-try timeout (default: resolv.conf's). -s runs a tiny
 * nameserver on 127.0.0.1 (port written to PORTFILE) for the test: any
 * A query gets 127.0.0.88, AAAA gets no record, names starting with "nx."
 * get NXDOMAIN. It exits after 30 s or on SIGTERM. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clock.h"
#include "dns.h"
#include "log.h"

static struct dns d;

static int
resolve(const char *name)
{
	struct net_addr out[DNS_ADDR_MAX];
	struct pollfd pf[4];
	char err[256], ip[INET6_ADDRSTRLEN];
	uint64_t now, dl, until;
	unsigned gen;
	int rc, n = 0, i, nfd, timeout;

	now = clock_mono_ms();
	until = now + 30000;
	for (;;) {
		gen = dns_generation(&d);
		rc = dns_lookup(&d, name, 443, now, out, DNS_ADDR_MAX, &n, err,
		    sizeof(err));
		if (rc != DNS_PENDING) {
			break;
		}
		/* Loop until the generation moves: then retry the lookup. */
		while (dns_generation(&d) == gen) {
			if (now >= until) {
				fprintf(stderr, "dnsprobe: %s: gave up\n", name);
				return -1;
			}
			nfd = dns_fds(&d, pf, 4);
			dl = dns_deadline(&d);
			timeout = dl == 0 ? 1000 : dl <= now ? 0 :
			    (int)(dl - now);
			(void)poll(pf, (nfds_t)nfd, timeout);
			now = clock_mono_ms();
			dns_step(&d, now);
		}
	}
	if (rc == DNS_FAILED) {
		fprintf(stderr, "dnsprobe: %s\n", err);
		return -1;
	}
	printf("%s", name);
	for (i = 0; i < n; i++) {
		if (out[i].ss.ss_family == AF_INET) {
			inet_ntop(AF_INET, &((struct sockaddr_in *)
			    &out[i].ss)->sin_addr, ip, sizeof(ip));
		} else {
			inet_ntop(AF_INET6, &((struct sockaddr_in6 *)
			    &out[i].ss)->sin6_addr, ip, sizeof(ip));
		}
		printf(" %s", ip);
	}
	printf("\n");
	return 0;
}

/* The test nameserver: blocking is fine here, it is its own process. */
static int
serve(const char *portfile)
{
	struct sockaddr_in sa, from;
	socklen_t len;
	unsigned char q[512], a[600];
	size_t off, n;
	ssize_t r;
	FILE *f;
	char tmp[300];
	int fd, nx;
	uint64_t end = clock_mono_ms() + 30000;
	struct timeval tv = { 1, 0 };

	fd = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	len = sizeof(sa);
	if (fd < 0 || bind(fd, (struct sockaddr *)&sa, len) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sa, &len) < 0) {
		perror("dnsprobe: serve");
		return 1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	snprintf(tmp, sizeof(tmp), "%s.tmp", portfile);
	f = fopen(tmp, "w");
	if (f == NULL) {
		perror(tmp);
		return 1;
	}
	fprintf(f, "%u\n", (unsigned)ntohs(sa.sin_port));
	fclose(f);
	rename(tmp, portfile);
	while (clock_mono_ms() < end) {
		len = sizeof(from);
		r = recvfrom(fd, q, sizeof(q), 0, (struct sockaddr *)&from,
		    &len);
		if (r < 17) {
			continue;
		}
		n = (size_t)r;
		for (off = 12; off < n && q[off] != 0; off += 1u + q[off]) {
		}
		if (off + 5 > n) {
			continue;
		}
		nx = q[12] == 2 && q[13] == 'n' && q[14] == 'x';
		memcpy(a, q, off + 5);
		a[2] = 0x81;
		a[3] = nx ? 0x83 : 0x80;
		a[6] = a[7] = a[8] = a[9] = a[10] = a[11] = 0;
		n = off + 5;
		if (!nx && q[off + 2] == 1) {
			static const unsigned char rr[] = {
				0xC0, 0x0C, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4,
				127, 0, 0, 88
			};
			memcpy(a + n, rr, sizeof(rr));
			n += sizeof(rr);
			a[7] = 1;
		}
		(void)sendto(fd, a, n, 0, (struct sockaddr *)&from, len);
	}
	return 0;
}

int
main(int argc, char **argv)
{
	char err[256];
	long timeout_ms = 0;
	int i = 1, failed = 0;

	if (argc == 3 && strcmp(argv[1], "-s") == 0) {
		return serve(argv[2]);
	}
	if (argc > 2 && strcmp(argv[1], "-t") == 0) {
		timeout_ms = strtol(argv[2], NULL, 10);
		i = 3;
	}
	if (i >= argc) {
		fprintf(stderr, "usage: dnsprobe [-t TIMEOUT_MS] NAME...\n"
		    "       dnsprobe -s PORTFILE\n");
		return 2;
	}
	if (dns_init(&d, NULL, NULL, err, sizeof(err)) < 0) {
		fprintf(stderr, "dnsprobe: %s\n", err);
		return 1;
	}
	if (timeout_ms > 0) {
		d.conf.timeout_ms = (unsigned)timeout_ms;
	}
	for (; i < argc; i++) {
		if (resolve(argv[i]) < 0) {
			failed = 1;
		}
	}
	dns_free(&d);
	return failed;
}
