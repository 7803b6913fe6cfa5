/* libFuzzer harness for src/ledger_report.c and the record grammar and
 * replay under it: `relay ledger verify` and `relay ledger report`
 * (ledger_verify_file, ledger_report_files) on the input as a ledger
 * file. The file is a memfd made once per run, rewritten for each input
 * and opened by the ledger code as /proc/self/fd/N.
 *
 * The fuzzer cannot forge SHA-256 chains, so each input is verified
 * twice: as given, and "re-chained": every line ending in
 * "prev":"<64 chars>"} gets the real hash of the line before it, so that
 * mutated records reach the record checks after the chain check.
 *
 * Invariants checked besides memory safety:
 *  - a refusal comes with a message, "line N: ..." naming a line;
 *  - whatever verify accepts, report accepts for every grouping (unless
 *    its totals overflow, which is a report-only refusal);
 *  - a re-chained file in which every line was re-chained is never
 *    refused for a broken hash chain. */
#define _GNU_SOURCE
#include <sys/mman.h>
#include <unistd.h>

#include "fuzz.h"
#include "ledger_report.h"
#include "util.h"

static int fd_raw = -1, fd_chained = -1;
static char path_raw[64], path_chained[64];
static FILE *devnull;

static int
make_memfd(const char *name, char *path, size_t cap)
{
	int fd = memfd_create(name, MFD_CLOEXEC);

	CHECK(fd >= 0);
	snprintf(path, cap, "/proc/self/fd/%d", fd);
	return fd;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fd_raw = make_memfd("ledger-raw", path_raw, sizeof path_raw);
	fd_chained = make_memfd("ledger-chained", path_chained,
	    sizeof path_chained);
	devnull = fopen("/dev/null", "w");
	CHECK(devnull != NULL);
	return 0;
}

static void
put_file(int fd, const void *p, size_t n)
{
	CHECK(ftruncate(fd, 0) == 0);
	CHECK(n == 0 || pwrite(fd, p, n, 0) == (ssize_t)n);
}

static const char TAIL[] = "\"prev\":\"";	/* then 64 chars, then "} */
#define TAIL_LEN (sizeof TAIL - 1)

/* Re-chain text[0..n) in place. Returns 1 when every line (including a
 * last one without newline) had a "prev" tail to rewrite. */
static int
rechain(char *text, size_t n)
{
	char prev[65], *line = text, *nl, *at;
	unsigned char h[32];
	size_t len;
	int all = 1;

	memset(prev, '0', 64);
	prev[64] = '\0';
	while (line < text + n) {
		nl = memchr(line, '\n', (size_t)(text + n - line));
		len = nl ? (size_t)(nl - line) : (size_t)(text + n - line);
		if (len >= TAIL_LEN + 64 + 2 &&
		    memcmp(line + len - 2, "\"}", 2) == 0 &&
		    memcmp(line + len - 2 - 64 - TAIL_LEN, TAIL,
		    TAIL_LEN) == 0) {
			at = line + len - 2 - 64;
			memcpy(at, prev, 64);
		} else {
			all = 0;
		}
		util_sha256(line, len, h);
		util_hex(h, 32, prev);
		if (nl == NULL) {
			break;
		}
		line = nl + 1;
	}
	return all;
}

static int
verify(const char *path, char *err, size_t errlen)
{
	int r;

	err[0] = '\0';
	r = ledger_verify_file(path, devnull, err, errlen);
	CHECK(r == 0 || r == -1);
	if (r < 0) {
		CHECK(err[0] != '\0');
		CHECK(strncmp(err, "line ", 5) == 0);
	}
	return r;
}

static void
reports(const char *path)
{
	static const char *const by[] = { NULL, "model", "day", "node" };
	const char *paths[1];
	char err[512];
	size_t i, bad;

	paths[0] = path;
	for (i = 0; i < 4; i++) {
		err[0] = '\0';
		if (ledger_report_files(paths, 1, by[i], i == 2 ? "2026-11-20" :
		    NULL, devnull, &bad, err, sizeof err) != 0 &&
		    strstr(err, ": totals out of range") == NULL) {
			fprintf(stderr, "report by %s: %s\n",
			    by[i] ? by[i] : "wallet", err);
			CHECK(!"verify accepted a file that report refused");
		}
	}
}

/* err is "line N: hash chain broken: ..." (what, not a quoted key). */
static int
chain_broken(const char *err)
{
	const char *p = err + 5;

	while (*p >= '0' && *p <= '9') {
		p++;
	}
	return strncmp(p, ": hash chain broken: ", 21) == 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], *text;
	int all;

	put_file(fd_raw, data, size);
	if (verify(path_raw, err, sizeof err) == 0) {
		reports(path_raw);
	}

	text = fuzz_dup(data, size);
	all = rechain(text, size);
	put_file(fd_chained, text, size);
	free(text);
	if (verify(path_chained, err, sizeof err) == 0) {
		reports(path_chained);
	} else if (all && chain_broken(err)) {
		fprintf(stderr, "re-chained file refused: %s\n", err);
		CHECK(!"re-chained file has a broken chain");
	}
	return 0;
}
