#ifndef RELAY_NET_H
#define RELAY_NET_H
/* Sockets: listen, accept, non-blocking connect, options, addresses.
 * Functions return 0 / an fd, or -1 with errno set. */
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

struct net_addr {
	struct sockaddr_storage ss;
	socklen_t len;
};

/* The address of host:port, host being an IPv4 or IPv6 literal or
 * "localhost" (127.0.0.1), port a decimal number: one address into out
 * (max must be at least 1). Returns 1, or -1 with a message in err. Names
 * are not resolved: listen addresses are literals. */
int net_resolve(const char *host, const char *port, struct net_addr *out,
    int max, char *err, size_t errlen);

/* Bind and listen (non-blocking, SO_REUSEADDR). */
int net_listen(const struct net_addr *a);

/* Port a bound socket listens on. */
int net_local_port(int fd);

/* Accept one connection, non-blocking with TCP_NODELAY. -1 with EAGAIN
 * when none is pending.
 * peer (may be NULL) gets the client's address as 16 bytes, IPv4 as a
 * v4-mapped IPv6 address (all zero for other families). */
int net_accept(int lfd, unsigned char peer[16]);

/* Start a non-blocking connect. Returns the fd (connect may still be in
 * progress: wait for POLLOUT then net_connect_result) or -1. */
int net_connect_start(const struct net_addr *a);

/* After POLLOUT on a connecting socket: 0, or -1 with errno = the
 * connect error. */
int net_connect_result(int fd);

/* writev() for a connected socket, without the VFS write path and with
 * MSG_NOSIGNAL: send() when the pieces fit NET_GATHER_MAX bytes (copied
 * into one), sendmsg() otherwise. Bytes written, as writev(). */
#define NET_GATHER_MAX 4096
ssize_t net_sendv(int fd, const struct iovec *iov, int n);

#endif
