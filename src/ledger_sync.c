/* ledger_sync: the fsync helper of sync=batch.
 *
 * The relay's loop must not wait for the disk, so with sync=batch one
 * child process does the fsyncs: the loop writes a byte to its socket
 * (ledger_tick(), at most every LEDGER_BATCH_MS) and the child fsyncs the
 * same open file. ledger.c forks it LEDGER_SYNCER_DELAY_MS after open (or
 * at the first write, if sooner), not during start-up: the fork and the
 * copy-on-write faults after it cost ~1.7 ms of start-up on a VM whose
 * page tables are costly to change, and it should come while the relay is
 * still small. If it cannot start, or dies, batch syncs run inline
 * (logged): slower, not less durable.
 *
 * What it does not do: decide when to sync (ledger.c's tick does) or
 * count the syncs.
 *
 * Ownership: the caller owns the pid and our end of the socket, and
 * gives both back to ledger_sync_stop(). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "ledger_sync.h"
#include "log.h"

/* The helper's whole life: an fsync for each wake-up, until the socket
 * closes (ledger_close, or the relay is gone). Signals meant for the
 * relay (a terminal's ^C reaches the whole process group) leave it be:
 * the relay still syncs through it while it drains. */
static void
helper_main(int fd, int wake)
{
	static const int mine[] = { SIGINT, SIGTERM, SIGHUP, SIGUSR1,
	    SIGUSR2 };
	char b[64];
	ssize_t r;
	sigset_t block;
	size_t i;

	/* Blocked, they stay pending and are never delivered: one syscall
	 * instead of a sigaction each, while the helper shares the CPU with
	 * the relay's start. */
	sigemptyset(&block);
	for (i = 0; i < sizeof mine / sizeof mine[0]; i++) {
		sigaddset(&block, mine[i]);
	}
	(void)sigprocmask(SIG_BLOCK, &block, NULL);
	/* Its waking must not take the CPU from the loop mid-request: an
	 * fsync for sync=batch can wait a moment, an answer should not. */
	(void)setpriority(PRIO_PROCESS, 0, 19);
	for (;;) {
		r = read(wake, b, sizeof b);
		if (r < 0 && errno == EINTR) {
			continue;
		}
		if (r <= 0) {
			_exit(0);
		}
		/* Same open file as the relay's: this syncs the ledger. */
		if (fsync(fd) < 0) {
			log_error("ledger: fsync: %s", strerror(errno));
		}
	}
}

/* The helper is forked while the relay serves: it must not keep the
 * relay's sockets open (a connection the relay closes would not end
 * while the helper held it). Close every descriptor but stdin, stdout,
 * stderr and keep_a/keep_b; poll() finds them, marking a number that is
 * not open POLLNVAL, a chunk of numbers per call. */
static void
close_all_but(int keep_a, int keep_b)
{
	enum { CHUNK = 256 };
	struct pollfd p[CHUNK];
	struct rlimit rl;
	rlim_t max = 65536;
	rlim_t base;
	int i, n;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur != RLIM_INFINITY) {
		max = rl.rlim_cur;
	}
	for (base = 3; base < max; base += CHUNK) {
		n = max - base < CHUNK ? (int)(max - base) : CHUNK;
		for (i = 0; i < n; i++) {
			p[i].fd = (int)base + i;
			p[i].events = 0;
		}
		if (poll(p, (nfds_t)n, 0) < 0) {
			continue;
		}
		for (i = 0; i < n; i++) {
			if (!(p[i].revents & POLLNVAL) && p[i].fd != keep_a &&
			    p[i].fd != keep_b) {
				close(p[i].fd);
			}
		}
	}
}

/* A process, not a thread: while the relay has one thread, the kernel
 * skips reference counting the file on each of its socket calls and musl
 * skips its locks (about 1% of the relay's CPU under load). */
pid_t
ledger_sync_start(int fd, const char *path, int *wake)
{
	int p[2];
	pid_t pid;

	*wake = -1;
	/* A socket pair rather than a pipe: send() with MSG_NOSIGNAL
	 * cannot raise SIGPIPE in whichever program embeds the ledger. */
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, p) < 0) {
		log_warn("ledger %s: no sync helper (socketpair: %s); fsync "
		    "runs inline", path, strerror(errno));
		return 0;
	}
	pid = fork();
	if (pid < 0) {
		log_warn("ledger %s: no sync helper (fork: %s); fsync runs "
		    "inline", path, strerror(errno));
		close(p[0]);
		close(p[1]);
		return 0;
	}
	if (pid == 0) {
		close_all_but(fd, p[0]);
		helper_main(fd, p[0]);
	}
	close(p[0]);
	/* A wake-up that finds the socket full is one already asked for. */
	(void)fcntl(p[1], F_SETFL, fcntl(p[1], F_GETFL) | O_NONBLOCK);
	*wake = p[1];
	return pid;
}

int
ledger_sync_wake(int wake, const char *path)
{
	ssize_t w;

	do {
		w = send(wake, "s", 1, MSG_NOSIGNAL);
	} while (w < 0 && errno == EINTR);
	if (w == 1 || errno == EAGAIN || errno == EWOULDBLOCK) {
		return 0;
	}
	log_warn("ledger %s: sync helper gone (%s); fsync runs inline", path,
	    strerror(errno));
	return -1;
}

/* Its end closes only as it exits, so the wait is short. */
void
ledger_sync_stop(pid_t pid, int wake)
{
	int st;

	close(wake);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
}
