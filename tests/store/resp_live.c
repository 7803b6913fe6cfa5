/* resp_live PORT: the RESP2 codec (src/resp.c) against a real Redis or
 * Valkey on 127.0.0.1:PORT, started by tests/store/test_scripts.py.
 *
 * One write sends a pipeline of commands (every reply type, binary data,
 * nested arrays from EVAL, errors, a 1 MiB value); the replies are read
 * in small pieces of changing sizes and parsed as they come, each
 * compared with what it must be. Then the store's scripts are loaded
 * (SCRIPT LOAD) and HOLD is called with EVALSHA, keys from store_key();
 * an unknown sha gives NOSCRIPT. Last, the limits against a real server:
 * a reply over max_reply and a reply over the node array are refused.
 * Uses blocking sockets: a test tool, not the relay. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "t.h"
#include "resp_t.h"
#include "store_scripts.h"

#define BIG (1024 * 1024)
#define IN_CAP (4 * 1024 * 1024)

static int port;
static char in[IN_CAP];
static size_t in_len;
static struct resp_node nodes[256];
static struct resp_parser ps;
static unsigned piece;

static int
dial(void)
{
	struct sockaddr_in a;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_port = htons((unsigned short)port);
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
		perror("resp_live: connect");
		exit(2);
	}
	in_len = 0;
	return fd;
}

static void
send_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);

		if (w <= 0) {
			perror("resp_live: write");
			exit(2);
		}
		p += w;
		n -= (size_t)w;
	}
}

/* The next reply: read in pieces of 1, 7, 61, 4093 bytes by turns until
 * resp_parse() gives it. Returns what resp_parse() returned (RESP_BAD,
 * or the bytes the reply took at in[0]). */
static ssize_t
next_reply(int fd)
{
	static const size_t sizes[] = { 1, 7, 61, 4093 };

	for (;;) {
		ssize_t r = resp_parse(&ps, in, in_len);
		size_t want;

		if (r != RESP_PARTIAL) {
			return r;
		}
		want = sizes[piece++ % 4];
		if (want > IN_CAP - in_len) {
			want = IN_CAP - in_len;
		}
		r = read(fd, in + in_len, want);
		if (r <= 0) {
			fprintf(stderr, "resp_live: the server closed\n");
			exit(2);
		}
		in_len += (size_t)r;
	}
}

/* Drop the reply of n bytes: the next one moves to in[0]. */
static void
consume(size_t n)
{
	memmove(in, in + n, in_len - n);
	in_len -= n;
}

/* The next reply as text. */
static const char *
text(int fd)
{
	static char t[2 * BIG + 64];
	struct rt_out o = { t, sizeof(t) - 1, 0, 0 };
	ssize_t r = next_reply(fd);

	if (r < 0) {
		snprintf(t, sizeof(t), "BAD(%s)",
		    resp_strerror(resp_parser_error(&ps)));
		return t;
	}
	rt_text(&o, nodes, 0);
	t[o.len] = '\0';
	consume((size_t)r);
	return t;
}

static void
test_pipeline(void)
{
	static char out[BIG + 4096], big[BIG];
	static const char *want[] = {
		"+PONG", "+OK", "$6\"a\\x0d\\x0ab\\x00c\"", "$-1", ":-5",
		":3", "*3[$1\"a\",$1\"b\",$1\"c\"]",
		"*5[:1,$3\"two\",*2[:3,*0[]],$-1,+FINE]", "-RELAY oops",
		NULL, "+OK", NULL,
		"*1[*1[*1[*1[*1[*1[*1[*1[*1[*1[:1]]]]]]]]]]",
	};
	struct resp_cmd c;
	size_t len = 0, k;
	const char *t;
	int fd = dial();

#define CMD(n, ...) do { \
	const char *a_[] = { __VA_ARGS__ }; \
	size_t i_; \
	resp_cmd_begin(&c, out + len, sizeof(out) - len, n); \
	for (i_ = 0; i_ < n; i_++) { \
		resp_cmd_arg(&c, a_[i_], strlen(a_[i_])); \
	} \
	len += (size_t)resp_cmd_end(&c); \
} while (0)

	for (k = 0; k < BIG; k++) {
		big[k] = (char)(k * 7 + k / 251);
	}
	CMD(5, "DEL", "live:k", "live:n", "live:l", "live:big");
	CMD(1, "PING");
	resp_cmd_begin(&c, out + len, sizeof(out) - len, 3);
	resp_cmd_arg(&c, "SET", 3);
	resp_cmd_arg(&c, "live:k", 6);
	resp_cmd_arg(&c, "a\r\nb\0c", 6);
	len += (size_t)resp_cmd_end(&c);
	CMD(2, "GET", "live:k");
	CMD(2, "GET", "live:missing");
	resp_cmd_begin(&c, out + len, sizeof(out) - len, 3);
	resp_cmd_arg(&c, "INCRBY", 6);
	resp_cmd_arg(&c, "live:n", 6);
	resp_cmd_i64(&c, -5);
	len += (size_t)resp_cmd_end(&c);
	CMD(5, "RPUSH", "live:l", "a", "b", "c");
	CMD(4, "LRANGE", "live:l", "0", "-1");
	CMD(3, "EVAL", "return {1, 'two', {3, {}}, false, "
	    "redis.status_reply('FINE')}", "0");
	CMD(3, "EVAL", "return redis.error_reply('RELAY oops')", "0");
	CMD(1, "NOSUCHCOMMAND");
	resp_cmd_begin(&c, out + len, sizeof(out) - len, 3);
	resp_cmd_arg(&c, "SET", 3);
	resp_cmd_arg(&c, "live:big", 8);
	resp_cmd_arg(&c, big, BIG);
	len += (size_t)resp_cmd_end(&c);
	CMD(2, "GET", "live:big");
	CMD(3, "EVAL", "return {{{{{{{{{{1}}}}}}}}}}", "0");
	send_all(fd, out, len);

	resp_parser_init(&ps, nodes, 256, 2 * BIG);
	t = text(fd);
	ok(t[0] == ':', "pipeline: DEL: %s", t);
	for (k = 0; k < sizeof(want) / sizeof(want[0]); k++) {
		if (k == 9) {
			t = text(fd);
			ok(strncmp(t, "-ERR unknown command", 20) == 0,
			    "pipeline: unknown command: %s", t);
			continue;
		}
		if (k == 11) {
			ssize_t r = next_reply(fd);

			ok(r > 0 && nodes[0].type == RESP_BULK &&
			    nodes[0].str.n == BIG &&
			    memcmp(nodes[0].str.p, big, BIG) == 0,
			    "pipeline: 1 MiB value back whole");
			if (r > 0) {
				consume((size_t)r);
			}
			continue;
		}
		ok_str(text(fd), want[k], "pipeline");
	}
	ok_int(in_len, 0, "pipeline: nothing left over");
	close(fd);
#undef CMD
}

/* SCRIPT LOAD each script, then HOLD by EVALSHA. */
static void
test_scripts(void)
{
	static char out[64 * 1024];
	char sha[STORE_NSCRIPTS][41], key[STORE_NKEYS][128];
	struct resp_cmd c;
	size_t k, len = 0;
	ssize_t r;
	const char *t;
	int fd = dial();

	for (k = 0; k < STORE_NSCRIPTS; k++) {
		resp_cmd_begin(&c, out + len, sizeof(out) - len, 3);
		resp_cmd_arg(&c, "SCRIPT", 6);
		resp_cmd_arg(&c, "LOAD", 4);
		size_t n = 0;
		const char *lua = store_script_lua((enum store_script)k, &n);

		/* NULL (out of memory): an empty script, whose checks below
		 * then fail. */
		resp_cmd_arg(&c, lua != NULL ? lua : "", n);
		r = resp_cmd_end(&c);
		ok(r > 0, "script load %s: encoded", store_scripts[k].name);
		len += r > 0 ? (size_t)r : 0;
	}
	send_all(fd, out, len);
	resp_parser_init(&ps, nodes, 256, 1 << 16);
	for (k = 0; k < STORE_NSCRIPTS; k++) {
		r = next_reply(fd);
		ok(r > 0 && nodes[0].type == RESP_BULK && nodes[0].str.n == 40,
		    "script load %s: a sha1", store_scripts[k].name);
		sha[k][0] = '\0';
		if (r > 0) {
			snprintf(sha[k], sizeof(sha[k]), "%.*s",
			    (int)nodes[0].str.n, nodes[0].str.p);
			consume((size_t)r);
		}
	}
	for (k = 0; k < STORE_NKEYS; k++) {
		ok(store_key(key[k], sizeof(key[k]), "live:", "acme",
		    (enum store_key)k) > 0, "key %zu", k);
	}
	ok_str(key[STORE_K_HOLDS], "live:{acme}:holds", "key name");
	/* A fresh wallet, a credit, then a hold of 1.5 against 2.0. */
	resp_cmd_begin(&c, out, sizeof(out), 1 + STORE_NKEYS);
	resp_cmd_arg(&c, "DEL", 3);
	for (k = 0; k < STORE_NKEYS; k++) {
		resp_cmd_arg(&c, key[k], strlen(key[k]));
	}
	r = resp_cmd_end(&c);
	len = r > 0 ? (size_t)r : 0;
	resp_cmd_begin(&c, out + len, sizeof(out) - len, 3 + STORE_NKEYS + 4);
	resp_cmd_arg(&c, "EVALSHA", 7);
	resp_cmd_arg(&c, sha[STORE_CREDIT], 40);
	resp_cmd_u64(&c, STORE_NKEYS);
	for (k = 0; k < STORE_NKEYS; k++) {
		resp_cmd_arg(&c, key[k], strlen(key[k]));
	}
	resp_cmd_u64(&c, 1000);
	resp_cmd_arg(&c, "live-credit-1", 13);
	resp_cmd_u64(&c, 2000000000);
	resp_cmd_u64(&c, 0);
	r = resp_cmd_end(&c);
	len += r > 0 ? (size_t)r : 0;
	resp_cmd_begin(&c, out + len, sizeof(out) - len, 3 + STORE_NKEYS + 11);
	resp_cmd_arg(&c, "EVALSHA", 7);
	resp_cmd_arg(&c, sha[STORE_HOLD], 40);
	resp_cmd_u64(&c, STORE_NKEYS);
	for (k = 0; k < STORE_NKEYS; k++) {
		resp_cmd_arg(&c, key[k], strlen(key[k]));
	}
	resp_cmd_u64(&c, 1000);			/* now_ms */
	resp_cmd_arg(&c, "req_live1", 9);	/* id */
	resp_cmd_u64(&c, 1500000000);		/* amount */
	resp_cmd_u64(&c, 100);			/* tokens */
	resp_cmd_u64(&c, 1);			/* stream */
	resp_cmd_u64(&c, 660000);		/* ttl_ms */
	resp_cmd_u64(&c, 0);			/* overdraft */
	resp_cmd_u64(&c, 0);
	resp_cmd_u64(&c, 0);
	resp_cmd_u64(&c, 0);
	resp_cmd_u64(&c, 0);
	r = resp_cmd_end(&c);
	len += r > 0 ? (size_t)r : 0;
	resp_cmd_begin(&c, out + len, sizeof(out) - len, 3);
	resp_cmd_arg(&c, "EVALSHA", 7);
	resp_cmd_arg(&c, "0000000000000000000000000000000000000000", 40);
	resp_cmd_u64(&c, 0);
	r = resp_cmd_end(&c);
	len += r > 0 ? (size_t)r : 0;
	send_all(fd, out, len);
	t = text(fd);
	ok(t[0] == ':', "del: %s", t);
	ok_str(text(fd), "*2[$2\"ok\",$10\"2000000000\"]", "credit");
	ok_str(text(fd), "*3[$2\"ok\",$10\"2000000000\",$10\"1500000000\"]",
	    "hold");
	t = text(fd);
	ok(strncmp(t, "-NOSCRIPT", 9) == 0, "unknown sha: %s", t);
	close(fd);
}

/* Limits against real replies: the connection is closed after each. */
static void
test_limits(void)
{
	static const char many[] = "local t = {} for i = 1, 300 do "
	    "t[i] = i end return t";
	static char out[4096];
	struct resp_cmd c;
	ssize_t r;
	int fd = dial();

	resp_cmd_begin(&c, out, sizeof(out), 2);
	resp_cmd_arg(&c, "GET", 3);
	resp_cmd_arg(&c, "live:big", 8);
	r = resp_cmd_end(&c);
	send_all(fd, out, (size_t)r);
	resp_parser_init(&ps, nodes, 256, 1000);
	ok_str(text(fd), "BAD(reply too large)", "max_reply");
	close(fd);

	fd = dial();
	resp_cmd_begin(&c, out, sizeof(out), 3);
	resp_cmd_arg(&c, "EVAL", 4);
	resp_cmd_arg(&c, many, strlen(many));
	resp_cmd_arg(&c, "0", 1);
	r = resp_cmd_end(&c);
	send_all(fd, out, (size_t)r);
	resp_parser_init(&ps, nodes, 256, 1 << 16);
	ok_str(text(fd), "BAD(too many elements)", "nodes");
	close(fd);
}

int
main(int argc, char **argv)
{
	if (argc != 2 || (port = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: resp_live PORT\n");
		return 2;
	}
	test_pipeline();
	test_scripts();
	test_limits();
	return t_done("resp_live");
}
