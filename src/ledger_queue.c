/* ledger_queue: the mapped queue file, "<ledger>.queue".
 *
 * With group commit and sync=batch or none, ledger.c stores each charge
 * line in a shared mapping of this file and its answer leaves before the
 * line is written to the ledger: a queued line is in the kernel's page
 * cache at once and outlives the process, like a written one. A relay
 * that died between answer and write leaves its lines here, and the next
 * start (ledger_queue_recover()) appends those the ledger lacks, wherever
 * the write stopped, exactly once: the queue is placed against the
 * ledger's last line by hash.
 *
 * What it does not do: write the ledger or apply charges (its caller
 * does, through a callback), or fsync the queue (its lines only need to
 * outlive the process, like the ledger's with sync=batch).
 *
 * Ownership: a mapping from ledger_queue_map() belongs to the caller
 * until ledger_queue_unmap(). Everything else is released before each
 * function returns. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "ledger_queue.h"
#include "ledger_rec.h"
#include "log.h"
#include "util.h"

static const char QUEUE_MAGIC[LEDGER_QUEUE_LEN_AT] = "relay queue v1\n";

static char *
path_with(const char *path, const char *suffix)
{
	size_t a = strlen(path), b = strlen(suffix);
	char *p = malloc(a + b + 1);

	if (p != NULL) {
		memcpy(p, path, a);
		memcpy(p + a, suffix, b + 1);
	}
	return p;
}

/* Keep bytes the ledger cannot take in <path>.queue-unplaced. Returns 0,
 * or -1 (logged). */
static int
keep_unplaced(const char *path, const char *p, size_t n, const char *why)
{
	char *kp = path_with(path, ".queue-unplaced");
	size_t done;
	int fd = kp == NULL ? -1 : util_open(kp, O_WRONLY | O_CREAT |
	    O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0600);

	if (fd < 0 || util_write_all(fd, p, n, &done) < 0 || fsync(fd) < 0) {
		log_error("ledger %s: %zu queued bytes (%s) cannot be kept in "
		    "%s: %s", path, n, why, kp != NULL ? kp : "a side file",
		    strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		free(kp);
		return -1;
	}
	log_error("ledger %s: %zu queued bytes %s: kept in %s, not applied",
	    path, n, why, kp);
	close(fd);
	free(kp);
	return 0;
}

int
ledger_queue_place(const char *q, size_t len, const char *last_hash,
    struct ledger_queue_lines *ql, const char **why)
{
	char hash[65], perr[LEDGER_REC_WHY_MAX];
	size_t off = 0, i, k = SIZE_MAX;

	ql->n = 0;
	while (off < len && ql->n < LEDGER_QUEUE_MAX_LINES) {
		const char *nl = memchr(q + off, '\n', len - off);

		if (nl == NULL) {
			break;
		}
		ql->at[ql->n] = off;
		ql->len[ql->n++] = (size_t)(nl - (q + off));
		off = (size_t)(nl - q) + 1;
	}
	if (off != len || ql->n == 0) {
		*why = "are not whole lines";
		return -1;
	}
	/* The newest line already in the file, if any, says how many. */
	for (i = ql->n; i-- > 0 && k == SIZE_MAX;) {
		ledger_rec_hash(q + ql->at[i], ql->len[i], hash);
		if (strcmp(hash, last_hash) == 0) {
			k = i + 1;
		}
	}
	if (k == SIZE_MAX && ledger_rec_parse(q, ql->len[0], &ql->rec, perr,
	    sizeof perr) == 0 && memcmp(ql->rec.prev, last_hash, 64) == 0) {
		k = 0;
	}
	if (k == SIZE_MAX) {
		*why = "do not continue the ledger's chain";
		return -1;
	}
	memcpy(hash, last_hash, sizeof hash);
	for (i = k; i < ql->n; i++) {
		if (ledger_rec_parse(q + ql->at[i], ql->len[i], &ql->rec, perr,
		    sizeof perr) < 0 || ql->rec.type != LEDGER_REC_CHARGE ||
		    memcmp(ql->rec.prev, hash, 64) != 0) {
			*why = "are not a chain of charge lines";
			return -1;
		}
		ledger_rec_hash(q + ql->at[i], ql->len[i], hash);
	}
	ql->first = k;
	return 0;
}

/* The relay died with lines q[0..len) queued: have append() put those
 * the ledger lacks in it. Returns 0, or -1 when the lines could neither
 * be placed nor kept (logged; the queue file must then stay as it is). */
static int
recover_lines(const char *path, const char *last_hash, const char *q,
    size_t len, ledger_queue_append_fn *append, void *arg)
{
	struct ledger_queue_lines *ql = malloc(sizeof *ql);
	const char *why = NULL;
	int rc;

	if (ql == NULL) {
		log_error("ledger %s: out of memory reading the queue", path);
		return -1;
	}
	if (ledger_queue_place(q, len, last_hash, ql, &why) < 0) {
		rc = keep_unplaced(path, q, len, why);
	} else if (ql->first == ql->n) {
		rc = 0;		/* all written before the relay stopped */
	} else if (append(arg, q, len, ql) < 0) {
		rc = keep_unplaced(path, q, len, "could not be appended");
	} else {
		rc = 0;
	}
	free(ql);
	return rc;
}

static const char not_ours[] = "it is not a relay queue file (the relay "
    "never overwrites a file it did not make: move it away)";

/* Map the queue file at qp if it is one of ours (a regular file of
 * LEDGER_QUEUE_FILE_SIZE bytes that starts with QUEUE_MAGIC; a symbolic
 * link is never followed). Returns the mapping, or MAP_FAILED: then *why
 * is NULL when there is no such file, not_ours when it is not ours, else
 * why it could not be read. */
static char *
file_map(const char *qp, int writable, const char **why)
{
	struct stat st;
	char *m = MAP_FAILED;
	int fd = util_open(qp, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC |
	    O_NOFOLLOW, 0);

	*why = NULL;
	if (fd < 0) {
		if (errno == ELOOP) {
			*why = "it is a symbolic link (never followed)";
		} else if (errno == EISDIR) {
			*why = not_ours;
		} else if (errno != ENOENT) {
			*why = strerror(errno);
		}
		return MAP_FAILED;
	}
	if (fstat(fd, &st) < 0) {
		*why = strerror(errno);
	} else if (S_ISREG(st.st_mode) &&
	    st.st_size == LEDGER_QUEUE_FILE_SIZE &&
	    (m = mmap(NULL, LEDGER_QUEUE_FILE_SIZE, PROT_READ | (writable ?
	    PROT_WRITE : 0), MAP_SHARED, fd, 0)) == MAP_FAILED) {
		*why = strerror(errno);
	} else if (m != MAP_FAILED && memcmp(m, QUEUE_MAGIC,
	    LEDGER_QUEUE_LEN_AT) != 0) {
		munmap(m, LEDGER_QUEUE_FILE_SIZE);
		m = MAP_FAILED;
		*why = not_ours;
	} else if (m == MAP_FAILED && (!S_ISREG(st.st_mode) ||
	    st.st_size != 0)) {
		*why = not_ours;	/* (an empty one is a new one) */
	}
	close(fd);
	return m;
}

static uint64_t
queued_len(const char *map)
{
	uint64_t len;

	memcpy(&len, map + LEDGER_QUEUE_LEN_AT, sizeof len);
	return len;
}

/* A queue left behind must not wait for a start that maps it, nor be
 * overtaken by new lines: recovered whatever this start's policy. */
int
ledger_queue_recover(const char *path, const char *last_hash,
    ledger_queue_append_fn *append, void *arg, char *err, size_t errlen)
{
	char *qp = path_with(path, ".queue"), *m;
	const char *why;
	uint64_t len;
	int rc = 0;

	if (qp == NULL) {
		return util_errf(err, errlen, "out of memory");
	}
	if ((m = file_map(qp, 1, &why)) == MAP_FAILED) {
		if (why == not_ours) {
			util_errf(err, errlen, "ledger %s: %s: %s", path, qp,
			    why);
			rc = -1;
		} else if (why != NULL) {
			util_errf(err, errlen, "ledger %s: its queue file %s "
			    "cannot be read (%s); it may hold charges that "
			    "were answered but not yet written, and the relay "
			    "does not start without them", path, qp, why);
			rc = -1;
		}
		free(qp);
		return rc;	/* none (or empty): ledger_queue_map() makes
				 * it */
	}
	len = queued_len(m);
	if (len > LEDGER_QUEUE_CAP) {
		rc = keep_unplaced(path, m + LEDGER_QUEUE_HEAD,
		    LEDGER_QUEUE_CAP, "have a broken length");
	} else if (len > 0) {
		rc = recover_lines(path, last_hash, m + LEDGER_QUEUE_HEAD,
		    (size_t)len, append, arg);
	}
	if (rc < 0) {
		util_errf(err, errlen, "ledger %s: the charge lines in %s "
		    "could neither be appended to the ledger nor kept aside "
		    "(see the log above); the relay does not start without "
		    "them", path, qp);
	} else {
		ledger_queue_set_len(m, 0);
	}
	munmap(m, LEDGER_QUEUE_FILE_SIZE);
	free(qp);
	return rc;
}

/* Map the open queue file fd (st: its status), making it when it is new
 * (empty). One that is not ours is never overwritten (ledger_queue_
 * recover() stopped the start already; this is one made since). Returns
 * the mapping, or MAP_FAILED with errno. */
static char *
map_fd(int fd, const struct stat *st, const char *path, const char *qp)
{
	char *m = MAP_FAILED;

	if (S_ISREG(st->st_mode) && st->st_size == LEDGER_QUEUE_FILE_SIZE &&
	    (m = mmap(NULL, LEDGER_QUEUE_FILE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0)) == MAP_FAILED) {
		return MAP_FAILED;
	}
	if (m != MAP_FAILED && memcmp(m, QUEUE_MAGIC,
	    LEDGER_QUEUE_LEN_AT) == 0) {
		return m;
	}
	/* New: make it. Its blocks are reserved now (where the file system
	 * can), so a store into the mapping later need not find space; no
	 * fsync: its lines only need to outlive the process, like the
	 * ledger's. */
	if (m != MAP_FAILED) {
		munmap(m, LEDGER_QUEUE_FILE_SIZE);
	}
	if (!S_ISREG(st->st_mode) || st->st_size > 0) {
		log_error("ledger %s: %s: %s", path, qp, not_ours);
		errno = EEXIST;
		return MAP_FAILED;
	}
	if (ftruncate(fd, LEDGER_QUEUE_FILE_SIZE) < 0) {
		return MAP_FAILED;
	}
	(void)posix_fallocate(fd, 0, LEDGER_QUEUE_FILE_SIZE);
	if (pwrite(fd, QUEUE_MAGIC, LEDGER_QUEUE_LEN_AT, 0) !=
	    LEDGER_QUEUE_LEN_AT) {
		return MAP_FAILED;
	}
	return mmap(NULL, LEDGER_QUEUE_FILE_SIZE, PROT_READ | PROT_WRITE,
	    MAP_SHARED, fd, 0);
}

char *
ledger_queue_map(const char *path)
{
	char *qp = path_with(path, ".queue"), *m = MAP_FAILED;
	struct stat st;
	int fd = qp == NULL ? -1 : util_open(qp, O_RDWR | O_CREAT | O_CLOEXEC |
	    O_NOFOLLOW, 0600);

	if (fd < 0 || fstat(fd, &st) < 0 ||
	    (m = map_fd(fd, &st, path, qp)) == MAP_FAILED) {
		log_warn("ledger %s: queue file %s: %s; answers wait for "
		    "their charge line's write", path, qp != NULL ? qp : "",
		    strerror(errno));
		if (fd >= 0) {
			close(fd);
		}
		free(qp);
		return NULL;
	}
	ledger_queue_set_len(m, 0);
	close(fd);
	free(qp);
	return m;
}

void
ledger_queue_unmap(char *map)
{
	munmap(map, LEDGER_QUEUE_FILE_SIZE);
}

int
ledger_queue_missing(const char *path, const char *last_hash,
    size_t *missing, const char **why)
{
	char *qp = path_with(path, ".queue"), *m = MAP_FAILED;
	struct ledger_queue_lines *ql = malloc(sizeof *ql);
	uint64_t len;
	int rc = 0;

	*missing = 0;
	*why = NULL;
	if (qp == NULL || ql == NULL ||
	    (m = file_map(qp, 0, why)) == MAP_FAILED) {
		*why = NULL;	/* unreadable: nothing to say */
		goto out;
	}
	len = queued_len(m);
	if (len > LEDGER_QUEUE_CAP) {
		*why = "have a broken length";
		rc = -1;
	} else if (len > 0 && ledger_queue_place(m + LEDGER_QUEUE_HEAD,
	    (size_t)len, last_hash, ql, why) < 0) {
		rc = -1;
	} else if (len > 0) {
		*missing = ql->n - ql->first;
	}
out:
	if (m != MAP_FAILED) {
		munmap(m, LEDGER_QUEUE_FILE_SIZE);
	}
	free(ql);
	free(qp);
	return rc;
}
