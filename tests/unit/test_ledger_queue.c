/* Unit tests for ledger_queue: making, mapping and starting over the
 * queue file; placing queued lines against a ledger's last hash wherever
 * a write stopped (none written, some, all, a torn or foreign queue);
 * recovery at start-up (the append callback sees exactly the missing
 * lines, unplaceable or unappendable ones go to .queue-unplaced, an
 * unreadable queue stops the start); and what verify is told. Files live
 * in a fresh directory under /tmp. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ledger_queue.h"
#include "ledger_rec.h"
#include "log.h"
#include "t.h"
#include "ledger_t.h"

static char logged[4096];	/* what the last captured call logged */

/* A charge line id chained to prev, into out; returns its length. */
static size_t
charge_line(char *out, size_t cap, const char *id, const char *prev)
{
	return (size_t)snprintf(out, cap, "{\"ts\":\"2026-11-20T10:00:00.000Z\","
	    "\"type\":\"charge\",\"id\":\"%s\",\"wallet\":\"w\",\"model\":\"m\","
	    "\"route\":\"p/m\",\"status\":200,\"in\":1,\"out\":2,"
	    "\"usd_nano\":3,\"cny_nano\":10,\"prev\":\"%s\"}", id, prev);
}

/* q: n chained charge lines after a ledger whose last hash is h[0];
 * h[i] is the hash of line i (1-based). Returns the length. */
static size_t
build_queue(char *q, size_t cap, int n, char h[][65])
{
	char id[16];
	size_t len = 0, k;
	int i;

	for (i = 1; i <= n; i++) {
		snprintf(id, sizeof id, "req_%d", i);
		k = charge_line(q + len, cap - len, id, h[i - 1]);
		ledger_rec_hash(q + len, k, h[i]);
		len += k;
		q[len++] = '\n';
	}
	q[len] = '\0';
	return len;
}

static void
test_place(void)
{
	static struct ledger_queue_lines ql;
	char q[4096], other[4096], h[4][65], oh[3][65];
	const char *why = NULL;
	size_t len, olen;

	memcpy(h[0], ledger_rec_zero_hash, 65);
	len = build_queue(q, sizeof q, 3, h);
	ok(ledger_queue_place(q, len, h[0], &ql, &why) == 0 && ql.n == 3 &&
	    ql.first == 0, "nothing written: all three missing");
	ok(ql.at[0] == 0 && ql.at[1] == ql.len[0] + 1 && q[ql.at[2] - 1] ==
	    '\n' && q[ql.at[2] + ql.len[2]] == '\n', "line offsets");
	ok(ledger_queue_place(q, len, h[2], &ql, &why) == 0 && ql.first == 2,
	    "two written: the third missing");
	ok(ledger_queue_place(q, len, h[3], &ql, &why) == 0 && ql.first == 3,
	    "all written: none missing");
	ok(ledger_queue_place(q, len - 10, h[0], &ql, &why) < 0 &&
	    strcmp(why, "are not whole lines") == 0, "a torn queue");
	ok(ledger_queue_place(q, 0, h[0], &ql, &why) < 0 &&
	    strcmp(why, "are not whole lines") == 0, "an empty queue");
	ok(ledger_queue_place(q, len, "0123456789abcdef0123456789abcdef"
	    "0123456789abcdef0123456789abcdef", &ql, &why) < 0 &&
	    strcmp(why, "do not continue the ledger's chain") == 0,
	    "the ledger moved on without the queue");

	/* Line 2 dropped: line 3 does not chain to line 1. */
	memcpy(other, q, ql.at[1]);
	olen = ql.at[1];
	memcpy(other + olen, q + ql.at[2], len - ql.at[2]);
	olen += len - ql.at[2];
	ok(ledger_queue_place(other, olen, h[0], &ql, &why) < 0 &&
	    strcmp(why, "are not a chain of charge lines") == 0,
	    "a gap in the chain");
	/* A credit line where a charge line should be. */
	memcpy(oh[0], ledger_rec_zero_hash, 65);
	olen = (size_t)snprintf(other, sizeof other, "{\"ts\":"
	    "\"2026-11-20T10:00:00.000Z\",\"type\":\"credit\",\"wallet\":\"w\","
	    "\"cny_nano\":5,\"prev\":\"%s\"}\n", oh[0]);
	ok(ledger_queue_place(other, olen, oh[0], &ql, &why) < 0 &&
	    strcmp(why, "are not a chain of charge lines") == 0,
	    "only charge lines are queued");
	olen = (size_t)snprintf(other, sizeof other, "garbage\n");
	ok(ledger_queue_place(other, olen, oh[0], &ql, &why) < 0 &&
	    strcmp(why, "do not continue the ledger's chain") == 0,
	    "not a record");
}

/* A queue file for ledger path holding q[0..len), stored length slen. */
static void
write_queue(const char *path, const char *q, size_t len, uint64_t slen)
{
	char *m = ledger_queue_map(path);

	ok(m != NULL, "map %s", path);
	if (m != NULL) {
		memcpy(m + LEDGER_QUEUE_HEAD, q, len);
		ledger_queue_set_len(m, slen);
		ledger_queue_unmap(m);
	}
}

static uint64_t
stored_len(const char *path)
{
	char qp[160];
	uint64_t n = UINT64_MAX;
	int fd;

	snprintf(qp, sizeof qp, "%s.queue", path);
	fd = open(qp, O_RDONLY);
	if (fd < 0 || pread(fd, &n, sizeof n, LEDGER_QUEUE_LEN_AT) !=
	    (ssize_t)sizeof n) {
		n = UINT64_MAX;
	}
	if (fd >= 0) {
		close(fd);
	}
	return n;
}

static void
test_map(void)
{
	const char *p = path_of("map.jsonl");
	char qp[160], head[LEDGER_QUEUE_HEAD], *m;
	struct stat st;
	int fd;

	snprintf(qp, sizeof qp, "%s.queue", p);
	m = ledger_queue_map(p);
	ok(m != NULL && stat(qp, &st) == 0 &&
	    st.st_size == LEDGER_QUEUE_FILE_SIZE &&
	    (st.st_mode & 0777) == 0600, "a new queue file, mode 0600");
	ok(m != NULL && memcmp(m, "relay queue v1\n", 15) == 0,
	    "it starts with the magic");
	ledger_queue_set_len(m, 1234);
	ok_int(stored_len(p), 1234, "the length is in the file at once");
	memcpy(m + LEDGER_QUEUE_HEAD, "x\n", 2);
	ledger_queue_unmap(m);
	m = ledger_queue_map(p);
	ok(m != NULL && stored_len(p) == 0, "mapped again: emptied");
	ledger_queue_unmap(m);

	fd = open(qp, O_WRONLY | O_TRUNC);
	ok(fd >= 0 && write(fd, "junk", 4) == 4, "overwrite with junk");
	close(fd);
	capture_stderr();
	m = ledger_queue_map(p);
	captured(logged, sizeof logged);
	ok(m == NULL && strstr(logged, "is not a relay queue file") != NULL,
	    "junk is never overwritten (not mapped): %s", logged);
	fd = open(qp, O_RDONLY);
	ok(pread(fd, head, 4, 0) == 4 && memcmp(head, "junk", 4) == 0,
	    "the junk is still there");
	close(fd);

	snprintf(qp, sizeof qp, "%s.queue", path_of("dirq.jsonl"));
	ok(mkdir(qp, 0700) == 0, "a directory where the queue goes");
	capture_stderr();
	m = ledger_queue_map(path_of("dirq.jsonl"));
	captured(logged, sizeof logged);
	ok(m == NULL && strstr(logged, "answers wait for their charge line's "
	    "write") != NULL, "cannot map: NULL, logged: %s", logged);
	rmdir(qp);
}

/* What the append callback was given. */
static struct {
	int calls, fail;
	size_t first, n, bytes;
	char text[4096];
} got;

static int
record_append(void *arg, const char *q, size_t len,
    struct ledger_queue_lines *ql)
{
	(void)arg;
	got.calls++;
	got.first = ql->first;
	got.n = ql->n;
	got.bytes = len - ql->at[ql->first];
	snprintf(got.text, sizeof got.text, "%.*s", (int)got.bytes,
	    q + ql->at[ql->first]);
	return got.fail ? -1 : 0;
}

static int
recover(const char *path, const char *last_hash)
{
	int rc;

	err[0] = '\0';
	capture_stderr();
	rc = ledger_queue_recover(path, last_hash, record_append, NULL, err,
	    sizeof err);
	captured(logged, sizeof logged);
	return rc;
}

/* The file at path is exactly text. */
static int
holds(const char *path, const char *text)
{
	char *in = slurp(path, NULL);
	int same = in != NULL && strcmp(in, text) == 0;

	free(in);
	return same;
}

static void
test_recover(void)
{
	const char *p = path_of("rec.jsonl");
	char q[4096], h[4][65], up[160], qp[160];
	size_t len, missing;
	const char *why;

	snprintf(up, sizeof up, "%s.queue-unplaced", p);
	snprintf(qp, sizeof qp, "%s.queue", p);
	memcpy(h[0], ledger_rec_zero_hash, 65);
	len = build_queue(q, sizeof q, 3, h);

	memset(&got, 0, sizeof got);
	ok(recover(p, h[0]) == 0 && got.calls == 0, "no queue file");

	write_queue(p, q, len, len);
	ok(ledger_queue_missing(p, h[1], &missing, &why) == 0 &&
	    missing == 2, "verify: two missing");
	ok(recover(p, h[1]) == 0 && got.calls == 1 && got.first == 1 &&
	    got.n == 3, "one written: append gets lines 2 and 3");
	ok(strncmp(got.text, strchr(q, '\n') + 1, got.bytes) == 0 &&
	    got.bytes == len - (size_t)(strchr(q, '\n') + 1 - q),
	    "the missing bytes, from the second line on");
	ok_int(stored_len(p), 0, "the queue is emptied");
	ok(ledger_queue_missing(p, h[1], &missing, &why) == 0 &&
	    missing == 0, "verify: nothing queued");

	memset(&got, 0, sizeof got);
	write_queue(p, q, len, len);
	ok(recover(p, h[3]) == 0 && got.calls == 0 && stored_len(p) == 0,
	    "all written: no append, emptied");

	/* The append fails: the whole queue is kept aside. */
	got.fail = 1;
	write_queue(p, q, len, len);
	ok(recover(p, h[0]) == 0 && got.calls == 1, "append fails: kept");
	ok(holds(up, q), "the queued bytes in .queue-unplaced");
	ok(strstr(logged, "queued bytes could not be appended: kept in") !=
	    NULL, "logged: %s", logged);
	ok_int(stored_len(p), 0, "emptied");
	unlink(up);
	got.fail = 0;

	/* Lines that do not continue the ledger. */
	got.calls = 0;
	write_queue(p, q, len, len);
	ok(ledger_queue_missing(p, "ffffffffffffffffffffffffffffffff"
	    "ffffffffffffffffffffffffffffffff", &missing, &why) < 0 &&
	    strcmp(why, "do not continue the ledger's chain") == 0,
	    "verify: unplaceable");
	ok(recover(p, "ffffffffffffffffffffffffffffffffffffffffffffffffffff"
	    "ffffffffffff") == 0 && got.calls == 0 &&
	    holds(up, q), "unplaceable: kept, not appended");
	ok(strstr(logged, "do not continue the ledger's chain: kept in") !=
	    NULL, "logged: %s", logged);
	unlink(up);

	/* A broken length: all the queue's room is kept. */
	write_queue(p, q, len, LEDGER_QUEUE_CAP + 1);
	ok(ledger_queue_missing(p, h[0], &missing, &why) < 0 &&
	    strcmp(why, "have a broken length") == 0, "verify: broken length");
	ok(recover(p, h[0]) == 0 && got.calls == 0, "broken length: kept");
	ok(strstr(logged, "65536 queued bytes have a broken length") != NULL,
	    "logged: %s", logged);
	unlink(up);

	/* Neither appended nor kept: the start must stop, the queue stays. */
	ok(mkdir(up, 0700) == 0, "a directory where .queue-unplaced goes");
	write_queue(p, q, len, len);
	ok(recover(p, "ffffffffffffffffffffffffffffffffffffffffffffffffffff"
	    "ffffffffffff") < 0 && strstr(err, "could neither be appended to "
	    "the ledger nor kept aside") != NULL, "refused: %s", err);
	ok_int(stored_len(p), len, "the queue is left as it was");
	rmdir(up);

	/* A queue file that cannot be read. */
	ok(unlink(qp) == 0 && symlink(qp, qp) == 0, "a queue file that loops");
	ok(recover(p, h[0]) < 0 && strstr(err, "cannot be read") != NULL &&
	    strstr(err, "does not start without them") != NULL, "refused: %s",
	    err);
	ok(ledger_queue_missing(p, h[0], &missing, &why) == 0 && missing == 0,
	    "verify says nothing of an unreadable queue");
	unlink(qp);

	/* A file that is not a queue file (here a link to one that is not
	 * ours) is left alone and stops the start. */
	ok(symlink("/dev/null", qp) == 0, "a queue that is not ours");
	ok(recover(p, h[0]) < 0 && got.calls == 0 && strstr(err,
	    "symbolic link") != NULL, "not ours: nothing done, refused: %s",
	    err);
	unlink(qp);
	{
		int fd = open(qp, O_WRONLY | O_CREAT, 0600);

		ok(fd >= 0 && write(fd, "not a queue", 11) == 11,
		    "junk in its place");
		close(fd);
	}
	ok(recover(p, h[0]) < 0 && got.calls == 0 && strstr(err,
	    "is not a relay queue file") != NULL, "junk: refused: %s", err);
	unlink(qp);
}

int
main(void)
{
	make_dir("test_ledger_queue");
	test_place();
	test_map();
	test_recover();
	if (t_fail == 0) {
		remove_dir();
	}
	return t_done("ledger_queue");
}
