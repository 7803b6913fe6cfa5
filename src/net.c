/* net: thin wrappers over BSD sockets. Every socket the loop sees is
 * non-blocking and has TCP_NODELAY: without it small requests stall ~40 ms
 * on Nagle + delayed ACK. Name resolution here is getaddrinfo() and may
 * block, so it is only called before the loop starts. */
#define _GNU_SOURCE	/* accept4 (POSIX.1-2024; older musl hides it) */
#include <errno.h>
#include <netdb.h>
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
	struct addrinfo hints, *res = NULL, *ai;
	int rc, n = 0;

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	rc = getaddrinfo(host, port, &hints, &res);
	if (rc != 0) {
		return util_errf(err, errlen, "cannot resolve %s: %s", host,
		    gai_strerror(rc));
	}
	for (ai = res; ai != NULL && n < max; ai = ai->ai_next) {
		if (ai->ai_addrlen > sizeof(out[n].ss)) {
			continue;
		}
		memcpy(&out[n].ss, ai->ai_addr, ai->ai_addrlen);
		out[n].len = ai->ai_addrlen;
		n++;
	}
	freeaddrinfo(res);
	if (n == 0) {
		return util_errf(err, errlen, "cannot resolve %s: no address",
		    host);
	}
	return n;
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
