#ifndef RELAY_LEDGER_T_H
#define RELAY_LEDGER_T_H
/* Helpers the ledger's unit tests share: a fresh directory under /tmp and
 * files in it, hand-written records chained like the relay chains them,
 * and stderr captured around a call; with ledger_report.h included
 * first, verify() and report() as the CLI runs them. Static inline, so a
 * test program uses what it needs; include after t.h. */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

static const char ZEROS[] =
    "0000000000000000000000000000000000000000000000000000000000000000";

static char dir[64];
static char err[512];		/* the last refusal's message */

/* Make the test's directory /tmp/<name>.XXXXXX; exits on failure. */
static inline void
make_dir(const char *name)
{
	snprintf(dir, sizeof dir, "/tmp/%s.XXXXXX", name);
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		exit(2);
	}
}

/* dir/name, in one of eight buffers used in turn. */
static inline const char *
path_of(const char *name)
{
	static char p[8][128];
	static int k;

	k = (k + 1) % 8;
	snprintf(p[k], sizeof p[k], "%s/%s", dir, name);
	return p[k];
}

/* Remove the directory and the files in it. */
static inline void
remove_dir(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	while (d != NULL && (e = readdir(d)) != NULL) {
		if (e->d_name[0] != '.') {
			unlink(path_of(e->d_name));
		}
	}
	if (d != NULL) {
		closedir(d);
	}
	rmdir(dir);
}

/* Whole file into a malloc'd NUL-terminated buffer (caller frees). */
static inline char *
slurp(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, n = 0;
	ssize_t r;
	int fd = open(path, O_RDONLY);

	if (fd < 0) {
		return NULL;
	}
	for (;;) {
		if (n + 4096 + 1 > cap) {
			cap = cap * 2 + 8192;
			buf = realloc(buf, cap);
		}
		r = read(fd, buf + n, cap - n - 1);
		if (r <= 0) {
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	if (len != NULL) {
		*len = n;
	}
	return buf;
}

static inline void
spit(const char *path, const char *data, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

	if (fd < 0 || write(fd, data, n) != (ssize_t)n) {
		perror(path);
		exit(2);
	}
	close(fd);
}

/* Line k (1-based) of text, without its newline, into out. */
static inline const char *
line_of(const char *text, int k, char *out, size_t cap)
{
	const char *p = text, *nl;

	while (--k > 0 && (p = strchr(p, '\n')) != NULL) {
		p++;
	}
	if (p == NULL || *p == '\0') {
		return NULL;
	}
	nl = strchr(p, '\n');
	snprintf(out, cap, "%.*s", (int)(nl ? nl - p : (long)strlen(p)), p);
	return out;
}

static inline void
hex_sha(const char *p, size_t n, char out[65])
{
	unsigned char h[32];

	util_sha256(p, n, h);
	util_hex(h, 32, out);
}

/* Append body + ,"prev":"<hash of the file's last line>"}\n to path:
 * hand-written records that are correctly chained. */
static inline void
append_raw(const char *path, const char *body)
{
	char *text = slurp(path, NULL), prev[65], *line;
	const char *last = NULL, *p;
	size_t n = 0, cap = strlen(body) + 128;
	int fd;

	memcpy(prev, ZEROS, sizeof ZEROS);
	if (text != NULL && text[0] != '\0') {
		for (p = text; *p != '\0'; p = strchr(p, '\n') + 1) {
			last = p;
			n = (size_t)(strchr(p, '\n') - p);
		}
		hex_sha(last, n, prev);
	}
	free(text);
	line = malloc(cap);
	snprintf(line, cap, "%s,\"prev\":\"%s\"}\n", body, prev);
	fd = open(path, O_WRONLY | O_CREAT | O_APPEND, 0600);
	if (fd < 0 || write(fd, line, strlen(line)) !=
	    (ssize_t)strlen(line)) {
		perror(path);
		exit(2);
	}
	close(fd);
	free(line);
}

/* append_raw() body ("{..." without its closing brace) padded with
 * blanks after the "{", which JSON allows, to a line of len bytes
 * without its newline. */
static inline void
append_padded(const char *path, const char *body, size_t len)
{
	size_t fixed = strlen(body) + 75;	/* ,"prev":"<64>"} */
	char *pad = malloc(len + 1);

	pad[0] = '{';
	memset(pad + 1, ' ', len - fixed);
	strcpy(pad + 1 + len - fixed, body + 1);
	append_raw(path, pad);
	free(pad);
}

/* How often needle occurs in the file at path. */
static inline int
count_in(const char *path, const char *needle)
{
	size_t n;
	char *text = slurp(path, &n), *p = text;
	int k = 0;

	while (p != NULL && (p = strstr(p, needle)) != NULL) {
		k++;
		p += strlen(needle);
	}
	free(text);
	return k;
}

/* Capture what is written to stderr from capture_stderr() on; captured()
 * ends it and puts the text in out. */
static int capture_saved = -1, capture_fd = -1;

static inline void
capture_stderr(void)
{
	char p[96];

	snprintf(p, sizeof p, "%s/.stderr", dir);
	fflush(stderr);
	capture_saved = dup(2);
	capture_fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	dup2(capture_fd, 2);
}

static inline void
captured(char *out, size_t cap)
{
	char p[96];
	ssize_t n;

	fflush(stderr);
	dup2(capture_saved, 2);
	close(capture_saved);
	n = pread(capture_fd, out, cap - 1, 0);
	out[n > 0 ? n : 0] = '\0';
	close(capture_fd);
	snprintf(p, sizeof p, "%s/.stderr", dir);
	unlink(p);
}

#ifdef RELAY_LEDGER_REPORT_H
/* `relay ledger verify` of path: its output into out, its message (if
 * it refuses) into err. */
static inline int
verify(const char *path, char *out, size_t cap)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	int rc;

	err[0] = '\0';
	rc = ledger_verify_file(path, f, err, sizeof err);
	fclose(f);
	snprintf(out, cap, "%s", buf);
	free(buf);
	return rc;
}

/* `relay ledger report` of path, as verify(). */
static inline int
report(const char *path, const char *by, const char *since, char *out,
    size_t cap)
{
	char *buf = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&buf, &n);
	size_t bad;
	int rc;

	err[0] = '\0';
	rc = ledger_report_files(&path, 1, by, since, f, &bad, err,
	    sizeof err);
	fclose(f);
	snprintf(out, cap, "%s", buf);
	free(buf);
	return rc;
}
#endif

#endif
