#ifndef RELAY_TEST_LOOPBACK_H
#define RELAY_TEST_LOOPBACK_H
/* Socket helpers for the unit tests that drive a connection module over
 * real sockets (test_server, test_upstream, test_stream): a loopback
 * listener that plays the provider, a socketpair end that plays the
 * client, reads and writes bounded by a short poll() (never a sleep),
 * the relay's log captured from stderr, and a config made from a few
 * lines of text. Every socket is non-blocking; a helper that waits says
 * how long. Functions are static inline so a test that uses some of them
 * only compiles without unused-function warnings. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf.h"
#include "log.h"
#include "net.h"

#define LB_WAIT_MS 2000	/* the longest a helper waits for bytes */

static inline void
lb_die(const char *what)
{
	perror(what);
	exit(2);
}

/* A config from text (the test's own input: it must be valid). The
 * caller conf_free()s it. */
static inline struct conf *
lb_conf(const char *text)
{
	char err[512];
	struct conf *c = conf_parse(text, strlen(text), "t.conf", err,
	    sizeof(err));

	if (c == NULL) {
		printf("config error: %s\n", err);
		exit(2);
	}
	return c;
}

/* A listener on 127.0.0.1 and a kernel-chosen port; *a is its address. */
static inline int
lb_listen(struct net_addr *a)
{
	char err[160];
	int fd;

	if (net_resolve("127.0.0.1", "0", a, 1, err, sizeof(err)) != 1) {
		printf("%s\n", err);
		exit(2);
	}
	if ((fd = net_listen(a)) < 0) {
		lb_die("listen");
	}
	((struct sockaddr_in *)&a->ss)->sin_port =
	    htons((unsigned short)net_local_port(fd));
	return fd;
}

/* An address on 127.0.0.1 where nothing listens (a port just freed). */
static inline void
lb_dead_addr(struct net_addr *a)
{
	int fd = lb_listen(a);

	close(fd);
}

/* Wait up to wait_ms for events on fd; returns revents (0 on timeout). */
static inline short
lb_poll(int fd, short events, int wait_ms)
{
	struct pollfd p;

	p.fd = fd;
	p.events = events;
	p.revents = 0;
	if (poll(&p, 1, wait_ms) < 0 && errno != EINTR) {
		lb_die("poll");
	}
	return p.revents;
}

/* Accept the one connection the code under test opened. */
static inline int
lb_accept(int lfd)
{
	int fd;

	(void)lb_poll(lfd, POLLIN, LB_WAIT_MS);
	if ((fd = net_accept(lfd, NULL)) < 0) {
		lb_die("accept");
	}
	return fd;
}

/* A connected pair: the return value goes to the code under test, *ours
 * is the test's end (the client). */
static inline int
lb_pair(int *ours)
{
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0,
	    sv) < 0) {
		lb_die("socketpair");
	}
	*ours = sv[1];
	return sv[0];
}

/* Read what has arrived into buf (NUL-terminated, cap - 1 bytes at
 * most): wait up to wait_ms for the first byte, then take what is there
 * without waiting. Returns the count; *eof (when not NULL) says the peer
 * closed. */
static inline size_t
lb_read(int fd, char *buf, size_t cap, int wait_ms, int *eof)
{
	size_t got = 0;
	ssize_t r;

	if (eof != NULL) {
		*eof = 0;
	}
	if (wait_ms > 0) {
		(void)lb_poll(fd, POLLIN, wait_ms);
	}
	while (got + 1 < cap) {
		r = recv(fd, buf + got, cap - 1 - got, 0);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r == 0 && eof != NULL) {
			*eof = 1;
		}
		if (r <= 0) {
			break;
		}
		got += (size_t)r;
	}
	buf[got] = '\0';
	return got;
}

/* Write as much of p as the socket takes now. */
static inline size_t
lb_write_some(int fd, const void *p, size_t n)
{
	ssize_t w;

	do {
		w = send(fd, p, n, MSG_NOSIGNAL);
	} while (w < 0 && errno == EINTR);
	return w < 0 ? 0 : (size_t)w;
}

/* Write all of p (waiting for room; the reader must be reading). */
static inline void
lb_write(int fd, const void *p, size_t n)
{
	const char *c = p;
	size_t done = 0;

	while (done < n) {
		size_t w = lb_write_some(fd, c + done, n - done);

		if (w == 0 && !(lb_poll(fd, POLLOUT, LB_WAIT_MS) & POLLOUT)) {
			printf("lb_write: peer not reading\n");
			exit(2);
		}
		done += w;
	}
}

static inline void
lb_puts(int fd, const char *s)
{
	lb_write(fd, s, strlen(s));
}

/* Close so that the peer sees a reset (RST), not an orderly end. */
static inline void
lb_reset(int fd)
{
	struct linger l;

	l.l_onoff = 1;
	l.l_linger = 0;
	(void)setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
	close(fd);
}

/* The relay's log lines (stderr) while a test step runs. */
struct lb_log {
	int fd[2];
	int saved_stderr;
	char text[65536];
};

static inline struct lb_log *
lb_log_state(void)
{
	static struct lb_log l;

	return &l;
}

static inline void
lb_log_begin(void)
{
	struct lb_log *l = lb_log_state();

	fflush(stderr);
	if (pipe(l->fd) < 0) {
		lb_die("pipe");
	}
	(void)fcntl(l->fd[0], F_SETFL, O_NONBLOCK);
	(void)fcntl(l->fd[1], F_SETFL, O_NONBLOCK);
	l->saved_stderr = dup(2);
	(void)dup2(l->fd[1], 2);
	log_set_level(LOG_DEBUG);
}

/* Stop capturing; the lines written since lb_log_begin(). */
static inline const char *
lb_log_end(void)
{
	struct lb_log *l = lb_log_state();
	ssize_t r;
	size_t got = 0;

	log_set_level(LOG_ERROR);
	(void)dup2(l->saved_stderr, 2);
	close(l->saved_stderr);
	close(l->fd[1]);
	while (got + 1 < sizeof(l->text) && (r = read(l->fd[0],
	    l->text + got, sizeof(l->text) - 1 - got)) > 0) {
		got += (size_t)r;
	}
	l->text[got] = '\0';
	close(l->fd[0]);
	return l->text;
}

#endif
