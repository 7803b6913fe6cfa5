/* net: thin wrappers over BSD sockets. Every socket the loop sees is
 * non-blocking and has TCP_NODELAY: without it small requests stall ~40 ms
 * on Nagle + delayed ACK. Listening addresses are literals (no
 * getaddrinfo: it would add ~15 KiB of libc resolver to ./relay, which
 * has its own in dns.c for upstream names). */
#define _GNU_SOURCE	/* accept4 (POSIX.1-2024; older musl hides it) */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include "net.h"
#include "util.h"

static void
set_nodelay(int fd)
{
	int one = 1;

	(void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

int
net_resolve(const char *host, const char *port, struct net_addr *out,
    int max, char *err, size_t errlen)
{
	struct sockaddr_in *v4 = (struct sockaddr_in *)&out->ss;
	struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&out->ss;
	uint64_t p;

	if (max < 1 || util_parse_u64(port, strlen(port), &p) < 0 ||
	    p > 65535) {
		return util_errf(err, errlen, "bad port '%s'", port);
	}
	memset(out, 0, sizeof(*out));
	if (strcmp(host, "localhost") == 0) {
		host = "127.0.0.1";
	}
	if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
		v4->sin_family = AF_INET;
		v4->sin_port = htons((uint16_t)p);
		out->len = sizeof(*v4);
	} else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
		v6->sin6_family = AF_INET6;
		v6->sin6_port = htons((uint16_t)p);
		out->len = sizeof(*v6);
	} else {
		return util_errf(err, errlen, "'%s' is not an IPv4 or IPv6 "
		    "address or localhost", host);
	}
	return 1;
}

int
net_listen(const struct net_addr *a)
{
	int fd, one = 1;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	(void)setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (a->ss.ss_family == AF_INET6) {
		(void)setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one,
		    sizeof(one));
	}
	if (bind(fd, (const struct sockaddr *)&a->ss, a->len) < 0 ||
	    listen(fd, 1024) < 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

int
net_local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) {
		return -1;
	}
	if (ss.ss_family == AF_INET6) {
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	}
	return ntohs(((struct sockaddr_in *)&ss)->sin_port);
}

int
net_accept(int lfd, unsigned char peer[16])
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	int fd;

	/* The socket's flags come with it: no fcntl calls per connection;
	 * the address too: no getpeername. */
	fd = accept4(lfd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK |
	    SOCK_CLOEXEC);
	if (fd < 0) {
		return -1;
	}
	set_nodelay(fd);
	if (peer != NULL) {
		memset(peer, 0, 16);
		if (ss.ss_family == AF_INET) {
			peer[10] = peer[11] = 0xff;
			memcpy(peer + 12, &((struct sockaddr_in *)&ss)->sin_addr,
			    4);
		} else if (ss.ss_family == AF_INET6) {
			memcpy(peer, &((struct sockaddr_in6 *)&ss)->sin6_addr,
			    16);
		}
	}
	return fd;
}

int
net_connect_start(const struct net_addr *a)
{
	int fd;

	fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0);
	if (fd < 0) {
		return -1;
	}
	set_nodelay(fd);
	if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0 &&
	    errno != EINPROGRESS) {
		goto fail;
	}
	return fd;
fail:
	{
		int e = errno;

		close(fd);
		errno = e;
	}
	return -1;
}

int
net_connect_result(int fd)
{
	int soerr = 0;
	socklen_t len = sizeof(soerr);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
		return -1;
	}
	if (soerr != 0) {
		errno = soerr;
		return -1;
	}
	return 0;
}

ssize_t
net_sendv(int fd, const struct iovec *iov, int n)
{
	/* One loop thread sends, and each call is done with it on return. */
	static char gather[NET_GATHER_MAX];
	struct msghdr m;
	size_t total = 0;
	int i;

	if (n == 1) {
		return send(fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
	}
	for (i = 0; i < n && total <= sizeof gather; i++) {
		total += iov[i].iov_len;
	}
	if (total <= sizeof gather) {
		/* A small message costs less copied once here than as an
		 * iovec the kernel imports and walks. */
		total = 0;
		for (i = 0; i < n; i++) {
			if (iov[i].iov_len > 0) {
				memcpy(gather + total, iov[i].iov_base,
				    iov[i].iov_len);
				total += iov[i].iov_len;
			}
		}
		return send(fd, gather, total, MSG_NOSIGNAL);
	}
	memset(&m, 0, sizeof m);
	m.msg_iov = (struct iovec *)(uintptr_t)iov;
	m.msg_iovlen = n;
	return sendmsg(fd, &m, MSG_NOSIGNAL);
}
