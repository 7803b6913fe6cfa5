/* Unit tests for loop: loop_run() in a forked child on a config in a temp
 * directory, listening on 127.0.0.1 port 0 (the port is read from its
 * log line on stderr, a pipe here), and this process as its clients and
 * as the provider behind it: requests are served, max_conns gets the 503
 * server_busy answer, SIGHUP reloads (and refuses a bad config), SIGTERM
 * closes idle keep-alive clients at once, drains an in-flight request,
 * and exits 0 with the ledger intact. All of it twice: with the epoll
 * backend (the default on Linux), then with the portable poll() set
 * (RELAY_POLL=1), each seen in use in the relay's descriptors. Every wait
 * is a poll() on the relay's log pipe or a socket, bounded so only a
 * broken test hits it. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "clock.h"
#include "conf.h"
#include "ledger.h"
#include "loop.h"
#include "t_rt.h"
#include "util.h"

static struct t_provider prov;
static const char *conf_path, *ledger_path;
static pid_t relay_pid = -1;
static int relay_log = -1;	/* the read end of its stderr */
static char *logbuf;		/* everything it logged */
static size_t loglen, logcap;
static int relay_port;

static const char *
key_hash(const char *key)
{
	static char hex[2][65];
	static int k;
	unsigned char h[32];

	k = !k;
	util_sha256(key, strlen(key), h);
	util_hex(h, 32, hex[k]);
	return hex[k];
}

static void
write_conf(const char *models)
{
	char text[4096];

	snprintf(text, sizeof(text), "listen 127.0.0.1:0\n"
	    "ledger %s sync=always\n"
	    "currency CNY rate=7.2000\n"
	    "limits max_conns=3\n"
	    "timeouts keepalive=60s total=60s\n"
	    "admin_key sha256:%s\n"
	    "provider p base=http://127.0.0.1:%d/v1\n"
	    "credential p env:T_LOOP_K\n"
	    "%s"
	    "wallet acme key=sha256:%s\n",
	    ledger_path, key_hash("adm"), prov.port, models,
	    key_hash("k-acme"));
	t_spit(conf_path, text);
}

/* Read what the relay logged, waiting up to ms for something. */
static void
log_drain(int ms)
{
	ssize_t r;

	if (relay_log < 0 || !t_ready(relay_log, POLLIN, ms)) {
		return;
	}
	for (;;) {
		if (loglen + 4096 + 1 > logcap) {
			logcap = logcap * 2 + 65536;
			logbuf = realloc(logbuf, logcap);
		}
		r = read(relay_log, logbuf + loglen, logcap - loglen - 1);
		if (r <= 0) {
			if (r == 0) {
				close(relay_log);
				relay_log = -1;
			}
			break;
		}
		loglen += (size_t)r;
		logbuf[loglen] = '\0';
		if (!t_ready(relay_log, POLLIN, 0)) {
			break;
		}
	}
}

/* Wait until the log (from offset from) has needle. */
static int
wait_log(size_t from, const char *needle)
{
	uint64_t end = clock_mono_ms() + T_WAIT_MS;

	for (;;) {
		if (logbuf != NULL && loglen >= from &&
		    strstr(logbuf + from, needle) != NULL) {
			return 1;
		}
		if (relay_log < 0 || clock_mono_ms() > end) {
			return 0;
		}
		log_drain(10);
		t_provider_step(&prov);
	}
}

static void
relay_start(void)
{
	int p[2];

	fflush(stdout);
	if (pipe(p) < 0) {
		perror("pipe");
		exit(2);
	}
	relay_pid = fork();
	if (relay_pid == 0) {
		struct conf *c;
		char e[512];

		close(p[0]);
		dup2(p[1], 2);
		close(p[1]);
		close(prov.lfd);
		setenv("RELAY_LOG", "debug", 1);
		c = conf_load(conf_path, e, sizeof(e));
		if (c == NULL) {
			fprintf(stderr, "config: %s\n", e);
			_exit(3);
		}
		_exit(loop_run(c, conf_path, 0));
	}
	close(p[1]);
	relay_log = p[0];
	loglen = 0;
	if (wait_log(0, "listening on http://127.0.0.1:")) {
		relay_port = atoi(strstr(logbuf, "listening on http://127.0.0.1:")
		    + 30);
	}
}

/* The relay's exit status (-1: it did not exit in time). */
static int
relay_wait(void)
{
	uint64_t end = clock_mono_ms() + T_WAIT_MS;
	int st;

	while (clock_mono_ms() < end) {
		pid_t r = waitpid(relay_pid, &st, WNOHANG);

		if (r == relay_pid) {
			relay_pid = -1;
			while (relay_log >= 0) {
				log_drain(100);
			}
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 +
			    WTERMSIG(st);
		}
		log_drain(10);
		t_provider_step(&prov);
	}
	return -1;
}

/* A client connection's bytes. */
struct cli {
	int fd;
	char buf[65536];
	size_t len;
	int eof;
};

static int
cli_open(struct cli *k)
{
	memset(k, 0, sizeof(*k));
	k->fd = t_connect(relay_port);
	return k->fd;
}

/* Wait for a whole response (or the close) on k, playing the provider
 * meanwhile. */
static const char *
cli_await(struct cli *k)
{
	uint64_t end = clock_mono_ms() + T_WAIT_MS;

	while (t_http_complete(k->buf, k->len) == 0 && !k->eof &&
	    clock_mono_ms() < end) {
		struct pollfd pf[2];

		pf[0].fd = k->fd;
		pf[0].events = POLLIN;
		pf[1].fd = relay_log;
		pf[1].events = POLLIN;
		(void)poll(pf, relay_log >= 0 ? 2 : 1, 10);
		t_drain(k->fd, k->buf, sizeof(k->buf), &k->len, &k->eof);
		t_provider_step(&prov);
		log_drain(0);
	}
	return k->buf;
}

static const char *
cli_request(struct cli *k, const char *text)
{
	k->len = 0;
	k->buf[0] = '\0';
	t_send(k->fd, text);
	return cli_await(k);
}

/* Wait until the relay closes k (1) or the time is up (0). */
static int
cli_closed(struct cli *k, int ms)
{
	uint64_t end = clock_mono_ms() + (uint64_t)ms;

	while (!k->eof && clock_mono_ms() < end) {
		(void)t_ready(k->fd, POLLIN, 10);
		t_drain(k->fd, k->buf, sizeof(k->buf), &k->len, &k->eof);
		t_provider_step(&prov);
		log_drain(0);
	}
	return k->eof;
}

/* Wait until the relay logged n client closes after mark: the loop
 * has then freed their slots (max_conns). */
static int
wait_closes(size_t mark, int n)
{
	uint64_t end = clock_mono_ms() + T_WAIT_MS;

	while (loglen < mark || t_count(logbuf + mark, " closed: client "
	    "closed") < n) {
		if (relay_log < 0 || clock_mono_ms() > end) {
			return 0;
		}
		log_drain(10);
	}
	return 1;
}

static const char *
chat(void)
{
	static char text[1024];
	const char *body = "{\"model\":\"m1\",\"messages\":[],"
	    "\"max_tokens\":5}";

	snprintf(text, sizeof(text), "POST /v1/chat/completions HTTP/1.1\r\n"
	    "Host: relay\r\nAuthorization: Bearer k-acme\r\nContent-Length: "
	    "%zu\r\n\r\n%s", strlen(body), body);
	return text;
}

#define HEALTHZ "GET /healthz HTTP/1.1\r\nHost: relay\r\n\r\n"
#define MODELS "GET /v1/models HTTP/1.1\r\nHost: relay\r\n\r\n"

static int
ledger_charges(void)
{
	char *text = t_slurp(ledger_path, NULL);
	int n = t_count(text, "\"type\":\"charge\"");

	free(text);
	return n;
}

static void
test_serve(void)
{
	struct cli k;
	char line[256];
	size_t mark;

	ok(relay_port > 0, "the relay logged its port: %d", relay_port);
	ok(wait_log(0, "relay " RELAY_VERSION " serving 1 models from "),
	    "the start is logged");
	ok(cli_open(&k) >= 0, "connect");
	cli_request(&k, HEALTHZ);
	ok(t_status(k.buf) == 200 && strstr(k.buf, "{\"status\":\"ok\"}"),
	    "/healthz answered");
	cli_request(&k, "POST /admin/wallets/acme/credit HTTP/1.1\r\n"
	    "Host: relay\r\nAuthorization: Bearer adm\r\nContent-Length: 18"
	    "\r\n\r\n{\"amount\":\"10.00\"}");
	ok(t_status(k.buf) == 200 && strstr(k.buf, "\"balance\":\"10.00\""),
	    "admin credit on the same connection");

	/* A relayed request through the real loop: the provider is us. */
	t_provider_json(&prov, 200, NULL, "{\"usage\":{\"prompt_tokens\":4,"
	    "\"completion_tokens\":6}}");
	cli_request(&k, chat());
	ok_int(t_status(k.buf), 200, "relayed");
	ok(strstr(k.buf, "x-relay-route: p/up1\r\n") != NULL, "by route p/up1");
	ok_int(k.eof, 0, "the connection stays open");
	ok(prov.nreqs == 1 && strncmp(prov.req[0], "POST /v1/chat/completions "
	    "HTTP/1.1\r\n", 36) == 0 && strstr(prov.req[0],
	    "\"model\":\"up1\""), "the provider got it");
	ok_int(ledger_charges(), 1, "one charge in the ledger");
	snprintf(line, sizeof(line), "%s", strstr(k.buf, "x-request-id: ") ?
	    strstr(k.buf, "x-request-id: ") + 14 : "?");
	line[26] = '\0';
	ok(wait_log(0, line) && wait_log(0, "model=m1 route=p/up1 key=p#1 -> "
	    "200 attempts=1 in=4 out=6"), "the request is logged");
	mark = loglen;
	close(k.fd);
	ok(wait_closes(mark, 1), "closed");
}

static void
test_busy(void)
{
	struct cli k[4], extra;
	char want[512];
	size_t mark;
	int i;

	/* max_conns=3: three connections are served ... */
	for (i = 0; i < 3; i++) {
		ok(cli_open(&k[i]) >= 0, "connection %d", i + 1);
		cli_request(&k[i], HEALTHZ);
		ok_int(t_status(k[i].buf), 200, "served");
	}
	/* ... the fourth gets 503 server_busy and the close. */
	ok(cli_open(&k[3]) >= 0, "a fourth connects");
	cli_await(&k[3]);
	/* Its Content-Length is the body's (it said 105 for these 93
	 * bytes). */
	snprintf(want, sizeof(want), "HTTP/1.1 503 Service Unavailable\r\n"
	    "Content-Type: application/json\r\nContent-Length: 93\r\n"
	    "Retry-After: 1\r\nConnection: close\r\n\r\n{\"error\":{\"message\":"
	    "\"too many open connections\",\"type\":\"server_error\",\"code\":"
	    "\"server_busy\"}}\n");
	ok_str(k[3].buf, want, "503 server_busy");
	ok_int(strlen(t_body(k[3].buf)), 93, "93 bytes of body");
	ok(cli_closed(&k[3], T_WAIT_MS), "and closed");
	close(k[3].fd);

	/* The first three still work. */
	cli_request(&k[1], HEALTHZ);
	ok_int(t_status(k[1].buf), 200, "the others are still served");

	/* One leaves: there is room again. */
	mark = loglen;
	close(k[0].fd);
	ok(wait_log(mark, " closed: client closed"), "the relay saw it go");
	ok(cli_open(&extra) >= 0, "connect again");
	cli_request(&extra, MODELS);
	ok_int(t_status(extra.buf), 200, "served again");
	mark = loglen;
	close(extra.fd);
	close(k[1].fd);
	close(k[2].fd);
	ok(wait_closes(mark, 3), "all three closes seen");
}

static void
test_reload(void)
{
	struct cli old, k;
	size_t mark;

	/* A keep-alive connection opened before the reload. */
	ok(cli_open(&old) >= 0, "connect");
	cli_request(&old, MODELS);
	ok(strstr(t_body(old.buf), "\"id\":\"m1\"") != NULL &&
	    strstr(t_body(old.buf), "\"id\":\"m2\"") == NULL, "m1 only");

	/* SIGHUP: the new catalog on new connections. */
	write_conf("model m1 text 1.00 2.00 p/up1\n"
	    "model m2 text 3.00 4.00 p/up2\n");
	mark = loglen;
	kill(relay_pid, SIGHUP);
	ok(wait_log(mark, "INFO config reloaded: 2 models, 1 providers "
	    "(listeners unchanged)"), "the reload is logged");
	ok(cli_open(&k) >= 0, "connect");
	cli_request(&k, MODELS);
	ok(strstr(t_body(k.buf), "\"id\":\"m2\"") != NULL,
	    "a new connection sees m2");
	mark = loglen;
	close(k.fd);
	ok(wait_closes(mark, 1), "closed");

	/* A keep-alive connection opened before the reload gets the new
	 * config on its next request (SPEC §10; it used to keep the old
	 * one for as long as it lived). */
	cli_request(&old, MODELS);
	ok(t_status(old.buf) == 200 && strstr(t_body(old.buf),
	    "\"id\":\"m2\"") != NULL, "the old connection has the new "
	    "catalog");

	/* A bad config is refused and logged; the running one stays. */
	t_spit(conf_path, "model broken\n");
	mark = loglen;
	kill(relay_pid, SIGHUP);
	ok(wait_log(mark, "ERROR reload refused, keeping the running config: ")
	    && wait_log(mark, conf_path), "the refusal is logged with the "
	    "file");
	ok(cli_open(&k) >= 0, "connect");
	cli_request(&k, MODELS);
	ok(t_status(k.buf) == 200 && strstr(t_body(k.buf), "\"id\":\"m2\""),
	    "still serving the last good config");
	mark = loglen;
	close(k.fd);
	close(old.fd);
	ok(wait_closes(mark, 2), "closed");
	write_conf("model m1 text 1.00 2.00 p/up1\n"
	    "model m2 text 3.00 4.00 p/up2\n");
}

/* A client that hangs up while its request is with the provider: the
 * loop notices (busy clients are polled for that every 100 ms) and
 * closes the upstream connection. */
static void
test_hangup(void)
{
	struct cli k;
	uint64_t end;
	size_t mark;
	int n0 = prov.nreqs, charges = ledger_charges();

	for (end = clock_mono_ms() + T_WAIT_MS; prov.nconns > 0 &&
	    clock_mono_ms() < end;) {
		log_drain(10);
		t_provider_step(&prov);
	}
	ok_int(prov.nconns, 0, "no upstream connection open");
	ok(cli_open(&k) >= 0, "connect");
	t_send(k.fd, chat());
	for (end = clock_mono_ms() + T_WAIT_MS; prov.nreqs == n0 &&
	    clock_mono_ms() < end;) {
		log_drain(10);
		t_provider_step(&prov);
	}
	ok(prov.nreqs == n0 + 1 && prov.nconns == 1, "the request is with "
	    "the provider");
	mark = loglen;
	close(k.fd);
	ok(wait_closes(mark, 1), "the relay saw the client go");
	for (end = clock_mono_ms() + T_WAIT_MS; prov.nconns > 0 &&
	    clock_mono_ms() < end;) {
		log_drain(10);
		t_provider_step(&prov);
	}
	ok_int(prov.nconns, 0, "and closed the upstream connection");
	ok_int(ledger_charges(), charges, "no answer, no charge");
}

static void
test_stop(void)
{
	struct cli idle, busy, late;
	char out[512], e[512], *buf = NULL;
	size_t mark, n = 0;
	FILE *f;
	int i, rc, charges = ledger_charges();

	/* An idle keep-alive client (one answer, nothing since). */
	ok(cli_open(&idle) >= 0, "connect");
	cli_request(&idle, HEALTHZ);
	ok_int(t_status(idle.buf), 200, "idle client served once");

	/* A request in flight: the provider has it and holds the answer. */
	t_provider_reset(&prov);
	ok(cli_open(&busy) >= 0, "connect");
	busy.len = 0;
	t_send(busy.fd, chat());
	for (i = 0; i < 500 && prov.nreqs < 1; i++) {
		log_drain(10);
		t_provider_step(&prov);
	}
	ok_int(prov.nreqs, 1, "the request is with the provider");

	/* SIGTERM: stop accepting, close the idle client at once. */
	mark = loglen;
	kill(relay_pid, SIGTERM);
	ok(wait_log(mark, "INFO stopping: no new connections, draining 2"),
	    "the drain is logged");
	ok(cli_closed(&idle, 1000), "the idle client is closed at once");
	late.fd = t_connect(relay_port);
	ok(late.fd < 0, "new connections are refused (%s)", strerror(errno));
	if (late.fd >= 0) {
		close(late.fd);
	}
	ok(!cli_closed(&busy, 50), "the busy one is not");

	/* The provider answers: the in-flight request completes, then the
	 * relay exits 0. */
	t_provider_json(&prov, 200, NULL, "{\"usage\":{\"prompt_tokens\":7,"
	    "\"completion_tokens\":8}}");
	cli_await(&busy);
	ok_int(t_status(busy.buf), 200, "the in-flight request is answered");
	ok(strstr(t_body(busy.buf), "\"completion_tokens\":8") != NULL,
	    "whole");
	/* Once its answer is out, a keep-alive client has nothing in
	 * flight: its answer says Connection: close and the connection
	 * ends, so the stop does not wait out the drain timeout (it used
	 * to, with every SDK client). */
	ok(strstr(busy.buf, "Connection: close\r\n") != NULL,
	    "an answer during the drain says Connection: close");
	ok(cli_closed(&busy, 1000), "the drained client is closed once its "
	    "answer is out");
	close(busy.fd);
	close(idle.fd);
	rc = relay_wait();
	ok_int(rc, 0, "exit 0");
	ok(wait_log(mark, "INFO stopped"), "stopped is logged");

	/* The ledger: its charge is there and the chain verifies. */
	ok_int(ledger_charges(), charges + 1, "the drained request is charged");
	f = open_memstream(&buf, &n);
	e[0] = '\0';
	ok_int(ledger_verify_file(ledger_path, f, e, sizeof(e)), 0,
	    "the ledger verifies");
	fclose(f);
	snprintf(out, sizeof(out), "%s", buf ? buf : "");
	free(buf);
	/* 10.00 credited, two charges of 0.0001152 (4 in, 6 out; 7 in,
	 * 8 out: 0.0001584), shown with two decimals. */
	ok_str(out, "acme CNY 10.00\n", "acme's balance is printed");
}

/* The backend in use: an epoll instance among the relay's descriptors
 * exactly when epoll is wanted. */
static void
test_backend(int epoll)
{
	char dir[64], path[320], link[128];
	struct dirent *d;
	DIR *fds;
	int found = 0;
	ssize_t n;

	snprintf(dir, sizeof(dir), "/proc/%d/fd", (int)relay_pid);
	fds = opendir(dir);
	ok(fds != NULL, "the relay's descriptors can be listed");
	while (fds != NULL && (d = readdir(fds)) != NULL) {
		snprintf(path, sizeof(path), "%s/%s", dir, d->d_name);
		n = readlink(path, link, sizeof(link) - 1);
		if (n > 0) {
			link[n] = '\0';
			found |= strstr(link, "eventpoll") != NULL;
		}
	}
	if (fds != NULL) {
		closedir(fds);
	}
	ok_int(found, epoll, epoll ? "epoll: an epoll instance is open" :
	    "RELAY_POLL=1: no epoll instance, the poll() set");
}

/* Every test of the loop against the backend RELAY_POLL selects, on a
 * ledger of its own. */
static void
run_all(int epoll)
{
	ledger_path = t_path(epoll ? "ledger.jsonl" : "ledger-poll.jsonl");
	if (!epoll) {
		setenv("RELAY_POLL", "1", 1);
		t_provider_close(&prov);	/* a provider that saw nothing */
		t_provider_open(&prov);
	}
	write_conf("model m1 text 1.00 2.00 p/up1\n");
	if (logbuf != NULL) {
		logbuf[0] = '\0';	/* the last relay's log is not this one's */
	}
	relay_start();
	test_backend(epoll);
	test_serve();
	test_busy();
	test_reload();
	test_hangup();
	test_stop();
	if (relay_pid > 0) {
		kill(relay_pid, SIGKILL);
		waitpid(relay_pid, NULL, 0);
		relay_pid = -1;
	}
	if (relay_log >= 0) {
		close(relay_log);
		relay_log = -1;
	}
}

int
main(void)
{
	signal(SIGPIPE, SIG_IGN);
	t_tmpdir("test_loop");
	setenv("T_LOOP_K", "sk-up", 1);
	conf_path = t_path("relay.conf");
	ledger_path = t_path("ledger.jsonl");
	t_provider_open(&prov);
	write_conf("model m1 text 1.00 2.00 p/up1\n");

	/* A relay that cannot start says so and returns 1. */
	t_spit(conf_path, "listen 127.0.0.1:0\nledger /nonexistent/x/l.jsonl\n"
	    "provider p base=http://127.0.0.1:1/v1\nmodel m text 1 1 p/x\n");
	relay_start();
	ok_int(relay_wait(), 1, "a ledger that cannot be opened: exit 1");
	ok(logbuf != NULL && strstr(logbuf, "/nonexistent/x/l.jsonl") != NULL,
	    "the error names the ledger");

	run_all(1);
	run_all(0);
	if (t_fail && logbuf != NULL) {
		printf("--- relay log ---\n%s--- end ---\n", logbuf);
	}
	free(logbuf);
	t_provider_close(&prov);
	t_rmdir();
	return t_bugs_done("loop");
}
