/* Unit tests for tasks: recording a created task in the ledger, settling
 * it (charged once when it succeeded, closed with a zero line when it
 * failed, nothing while it runs), finding where a task lives (unknown,
 * another wallet's, gone from the config), and the relay's own poll: a
 * GET to the provider on the task's own credential, answered by a
 * loopback listener in this test acting as the provider, that charges
 * the task. Time is injected; the ledger lives in a temp directory. */
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "billing.h"
#include "conf.h"
#include "gen.h"
#include "ledger.h"
#include "metrics.h"
#include "pool.h"
#include "tasks.h"
#include "usage.h"
#include "t_rt.h"
#include "upstream.h"
#include "util.h"

static char err[512];
static int provider_port;
static const char *ledger_path;

static const char *
key_hash(const char *key)
{
	static char hex[3][65];
	static int k;
	unsigned char h[32];

	k = (k + 1) % 3;
	util_sha256(key, strlen(key), h);
	util_hex(h, 32, hex[k]);
	return hex[k];
}

/* The test config; extra replaces the ark credentials and model lines
 * when set (a config without them). */
static struct conf *
tasks_conf(const char *ark_lines)
{
	return t_conf("ledger %s sync=always\n"
	    "currency CNY rate=7.2000\n"
	    "provider ark base=http://127.0.0.1:%d/api/v3 auth=bearer\n"
	    "provider other base=http://127.0.0.1:%d/v1 auth=bearer\n"
	    "credential other env:T_TASK_K1\n"
	    "%s"
	    "wallet acme key=sha256:%s\n"
	    "wallet beta key=sha256:%s\n",
	    ledger_path, provider_port, provider_port, ark_lines,
	    key_hash("k-acme"), key_hash("k-beta"));
}

static const char ARK_FULL[] =
    "credential ark env:T_TASK_K1\n"
    "credential ark env:T_TASK_K2\n"
    "model seedance video - 6.40 ark/doubao-seedance\n"
    "model text1 text 1.00 2.00 other/t\n"
    "provider local base=http://127.0.0.1:1/v1 auth=none\n"
    "model vlocal video - 1.00 local/v\n";

static int
ledger_nlines(void)
{
	char *text = t_slurp(ledger_path, NULL);
	int n = t_nlines(text);

	free(text);
	return n;
}

/* The last line of the ledger, without "ts" and "prev". */
static const char *
last_line(char *out, size_t cap)
{
	char *text = t_slurp(ledger_path, NULL), line[2048];
	const char *p;
	int n = t_nlines(text);

	out[0] = '\0';
	if (text != NULL && n > 0 && t_line(text, n, line, sizeof(line)) &&
	    (p = strstr(line, ",\"prev\":")) != NULL &&
	    strlen(line) > 32) {
		snprintf(out, cap, "{%.*s}", (int)(p - (line + 33)), line + 33);
	}
	free(text);
	return out;
}

static void
commit(void)
{
	struct billing_wait *w = billing_commit();

	while (w != NULL) {
		w = billing_take(w);
	}
	billing_settle();
}

static void
record(const char *req, const char *body, const char *wallet,
    const char *cred)
{
	struct usage_doc d;

	usage_scan_all(body, strlen(body), &d);
	tasks_record(req, &d, LEDGER_OBJ_TASK, wallet, "seedance",
	    "ark/doubao-seedance", cred);
}

static void
settle(const char *id, const struct conf *c, const char *req, const char *body)
{
	struct usage_doc d;

	usage_scan_all(body, strlen(body), &d);
	tasks_settle(id, c, req, 200, &d);
	commit();
}

static void
test_record(void)
{
	const struct ledger_task *t;
	char line[1024];
	size_t mark = t_log_mark();
	int n0 = ledger_nlines();

	record("req_1", "{\"id\":\"cgt-1\",\"status\":\"queued\"}", "acme",
	    "ark#2");
	ok_int(ledger_nlines(), n0 + 1, "a task line is written at once");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"task\",\"id\":"
	    "\"cgt-1\",\"wallet\":\"acme\",\"model\":\"seedance\",\"route\":"
	    "\"ark/doubao-seedance\",\"cred\":\"ark#2\"}", "the task line");
	t = ledger_task_find(billing_ledger(), "cgt-1");
	ok(t != NULL && !t->charged && strcmp(t->cred, "ark#2") == 0,
	    "the task is known and open");
	ok(t_log_has(mark, "INFO req_1 task cgt-1 recorded (wallet=acme "
	    "route=ark/doubao-seedance key=ark#2)"), "logged");

	/* Escapes in the id are decoded. */
	record("req_2", "{\"status\":\"queued\",\"id\":\"cgt\\u002d2\"}",
	    "acme", "ark#1");
	ok(ledger_task_find(billing_ledger(), "cgt-2") != NULL,
	    "id read after decoding");

	/* No id in the answer: logged, nothing recorded. */
	mark = t_log_mark();
	n0 = ledger_nlines();
	record("req_3", "{\"status\":\"queued\"}", "acme", "ark#1");
	ok_int(ledger_nlines(), n0, "no id: no line");
	ok(t_log_has(mark, "ERROR req_3 task created but its id could not be "
	    "read from the answer: it cannot be charged"), "logged");
	record("req_4", "{\"id\":42}", "acme", "ark#1");
	record("req_5", "not json", "acme", "ark#1");
	record("req_6", "{\"id\":\"\"}", "acme", "ark#1");
	record("req_7", "{\"id\":\"a\\u0000b\"}", "acme", "ark#1");
	ok_int(ledger_nlines(), n0, "a number, no JSON, an empty id, a NUL "
	    "in the id: nothing recorded");
	ok(t_log_has(mark, "ERROR req_7 task created but its id could not"),
	    "each one logged");

	/* The same id twice: the second is refused. */
	mark = t_log_mark();
	record("req_8", "{\"id\":\"cgt-1\"}", "beta", "ark#1");
	ok_int(ledger_nlines(), n0, "a known id is not recorded again");
	ok(t_log_has(mark, "ERROR req_8 task cgt-1 not recorded: ledger task "
	    "cgt-1 is already recorded"), "logged");
	t = ledger_task_find(billing_ledger(), "cgt-1");
	ok(t != NULL && strcmp(t->wallet, "acme") == 0, "still acme's");
}

static void
test_settle(const struct conf *c)
{
	const struct ledger_task *t;
	char line[1024];
	int n0;
	uint64_t charges;
	int64_t bal;
	size_t mark;

	record("req_s", "{\"id\":\"cgt-s\"}", "acme", "ark#1");
	record("req_f", "{\"id\":\"cgt-f\"}", "acme", "ark#1");
	record("req_c", "{\"id\":\"cgt-c\"}", "beta", "ark#1");
	record("req_e", "{\"id\":\"cgt-e\"}", "beta", "ark#2");
	n0 = ledger_nlines();
	charges = metrics.charges;
	bal = ledger_balance(billing_ledger(), "acme");

	/* Still running: nothing. */
	settle("cgt-s", c, "req_r1", "{\"id\":\"cgt-s\",\"status\":\"running\"}");
	settle("cgt-s", c, "req_r2", "{\"id\":\"cgt-s\",\"status\":\"queued\","
	    "\"usage\":{\"completion_tokens\":5}}");
	settle("cgt-s", c, "req_r3", "{\"id\":\"cgt-s\"}");
	ok_int(ledger_nlines(), n0, "running, queued, no status: no line");
	ok(!ledger_task_find(billing_ledger(), "cgt-s")->charged, "still open");

	/* Succeeded: charged once, from the usage, on the task's route and
	 * credential; 1000 out at 6.40/1M = 6,400,000 nano-USD. */
	settle("cgt-s", c, "req_g1", "{\"id\":\"cgt-s\",\"status\":"
	    "\"succeeded\",\"usage\":{\"completion_tokens\":1000,"
	    "\"total_tokens\":1000}}");
	ok_int(ledger_nlines(), n0 + 1, "one charge line");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"charge\",\"id\":"
	    "\"req_g1\",\"task\":\"cgt-s\",\"wallet\":\"acme\",\"model\":"
	    "\"seedance\",\"route\":\"ark/doubao-seedance\",\"cred\":\"ark#1\","
	    "\"status\":200,\"in\":0,\"out\":1000,\"usd_nano\":6400000,"
	    "\"cny_nano\":46080000}", "the charge line");
	ok_int(ledger_balance(billing_ledger(), "acme"), bal - 46080000,
	    "debited");
	ok_int(metrics.charges, charges + 1, "counted");
	t = ledger_task_find(billing_ledger(), "cgt-s");
	ok(t != NULL && t->charged, "charged");

	/* A second settle does nothing, whatever it says. */
	settle("cgt-s", c, "req_g2", "{\"id\":\"cgt-s\",\"status\":"
	    "\"succeeded\",\"usage\":{\"completion_tokens\":2000}}");
	settle("cgt-s", c, "req_g3", "{\"id\":\"cgt-s\",\"status\":\"failed\"}");
	ok_int(ledger_nlines(), n0 + 1, "charged exactly once");

	/* Failed, cancelled, expired: closed with a zero line, not counted
	 * as a charge. */
	settle("cgt-f", c, "req_f1", "{\"id\":\"cgt-f\",\"status\":\"failed\","
	    "\"usage\":{\"completion_tokens\":1000}}");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"charge\",\"id\":"
	    "\"req_f1\",\"task\":\"cgt-f\",\"wallet\":\"acme\",\"model\":"
	    "\"seedance\",\"route\":\"ark/doubao-seedance\",\"cred\":\"ark#1\","
	    "\"status\":200,\"in\":0,\"out\":0,\"usd_nano\":0,\"cny_nano\":0}",
	    "a failed task's zero line (its usage ignored)");
	settle("cgt-c", c, "req_c1", "{\"status\":\"cancelled\"}");
	settle("cgt-e", c, "req_e1", "{\"status\":\"expired\"}");
	ok_int(ledger_nlines(), n0 + 4, "cancelled and expired closed too");
	ok(ledger_task_find(billing_ledger(), "cgt-c")->charged &&
	    ledger_task_find(billing_ledger(), "cgt-e")->charged &&
	    ledger_task_find(billing_ledger(), "cgt-f")->charged,
	    "all three closed");
	ok_int(metrics.charges, charges + 1, "only the success counts");
	ok_int(ledger_balance(billing_ledger(), "acme"), bal - 46080000,
	    "a failed task costs nothing");
	settle("cgt-f", c, "req_f2", "{\"status\":\"succeeded\",\"usage\":"
	    "{\"completion_tokens\":1}}");
	ok_int(ledger_nlines(), n0 + 4, "a closed task is never charged "
	    "later");

	/* An unknown task: nothing. */
	settle("cgt-nope", c, "req_u", "{\"status\":\"succeeded\",\"usage\":"
	    "{\"completion_tokens\":1}}");
	ok_int(ledger_nlines(), n0 + 4, "unknown id: nothing");

	/* Succeeded without usage: logged, left open. */
	record("req_nu", "{\"id\":\"cgt-nu\"}", "acme", "ark#1");
	n0 = ledger_nlines();
	mark = t_log_mark();
	settle("cgt-nu", c, "req_nu1", "{\"status\":\"succeeded\"}");
	ok_int(ledger_nlines(), n0, "no usage: no line");
	ok(t_log_has(mark, "ERROR task cgt-nu succeeded but no usage came with "
	    "it: left open"), "logged");
	ok(!ledger_task_find(billing_ledger(), "cgt-nu")->charged,
	    "still open");
}

/* tasks_locate() on a request path. */
static enum tasks_where
where(const struct conf *c, const char *path, const char *wallet,
    const struct conf_model **m, size_t *cred, char *id, char *msg)
{
	struct view p = { path, strlen(path) };

	return tasks_locate(c, p, wallet, m, cred, id, msg, 300);
}

static void
test_locate(const struct conf *c)
{
	const struct conf_model *m = NULL;
	size_t cred = 99;
	struct conf *gone;
	char msg[300], id[TASKS_ID_MAX];

	msg[0] = '\0';
	ok_int(where(c, TASKS_PATH "/cgt-1", "acme", &m, &cred, id, msg),
	    TASKS_FOUND, "acme's task");
	ok(m != NULL && m->direct && strcmp(m->alias, "ark") == 0 &&
	    m->nroutes == 1 && cred == 1 && strcmp(id, "cgt-1") == 0,
	    "its provider's direct model and credential ark#2 (index 1)");
	ok_int(where(c, TASKS_PATH "/cgt-1", "beta", &m, &cred, id, msg),
	    TASKS_FOREIGN, "another wallet's task: foreign (404)");
	ok_int(where(c, TASKS_PATH "/cgt-zzz", "acme", &m, &cred, id, msg),
	    TASKS_UNKNOWN, "a made-up id");
	ok_int(where(c, "/v1/cgt-1/cancel", "acme", &m, &cred, id, msg),
	    TASKS_FOUND, "any segment that is a recorded id decides");
	ok_int(where(c, "/v1/responses", "acme", &m, &cred, id, msg),
	    TASKS_UNKNOWN, "no id in the path");

	/* Reads need the provider and the credential only: a model or
	 * route taken out of the config does not strand the object. */
	gone = tasks_conf("credential ark env:T_TASK_K1\n"
	    "credential ark env:T_TASK_K2\n"
	    "model text1 text 1.00 2.00 other/t\n");
	ok_int(where(gone, TASKS_PATH "/cgt-1", "acme", &m, &cred, id, msg),
	    TASKS_FOUND, "model gone: still found");
	conf_free(gone);

	gone = tasks_conf("credential ark env:T_TASK_K1\n"
	    "model seedance video - 6.40 ark/doubao-seedance\n");
	ok_int(where(gone, TASKS_PATH "/cgt-1", "acme", &m, &cred, id, msg),
	    TASKS_GONE, "credential gone");
	ok_str(msg, "credential ark#2 of cgt-1 is no longer configured",
	    "why");
	ok_int(where(gone, TASKS_PATH "/cgt-2", "acme", &m, &cred, id, msg),
	    TASKS_FOUND, "ark#1's task is still found there");
	conf_free(gone);

	gone = t_conf("ledger %s sync=always\n"
	    "provider other base=http://127.0.0.1:%d/v1 auth=bearer\n"
	    "credential other env:T_TASK_K1\n"
	    "wallet acme key=sha256:%s\n", ledger_path, provider_port,
	    key_hash("k-acme"));
	ok_int(where(gone, TASKS_PATH "/cgt-1", "acme", &m, &cred, id, msg),
	    TASKS_GONE, "provider gone");
	ok_str(msg, "provider ark of cgt-1 is no longer configured", "why");
	conf_free(gone);

	/* A task made through an auth=none provider: no credential is
	 * recorded (exchange.c passes none). It used to be recorded as
	 * "(none)", looked up among the provider's credentials and never
	 * found: never read, polled or charged. */
	{
		struct usage_doc d;

		usage_scan_all("{\"id\":\"cgt-none\"}", 17, &d);
		tasks_record("req_n", &d, LEDGER_OBJ_TASK, "acme", "vlocal",
		    "local/v", NULL);
	}
	msg[0] = '\0';
	cred = 99;
	ok(where(c, TASKS_PATH "/cgt-none", "acme", &m, &cred, id, msg) ==
	    TASKS_FOUND && cred == SIZE_MAX,
	    "an auth=none provider's task is found (got \"%s\")", msg);
	/* Close it: the poll test below counts the open tasks. */
	settle("cgt-none", c, "req_n2", "{\"status\":\"failed\"}");
}

static void
scan_str(const char *body, struct usage_doc *d)
{
	usage_scan_all(body, strlen(body), d);
}

/* Background responses (SPEC §9) settle on completed or incomplete, close
 * on failed or cancelled; plain objects are recorded for affinity only
 * and never charged; an answer about another object settles nothing. */
static void
test_objects(const struct conf *c)
{
	const struct ledger_task *t;
	struct usage_doc d;
	char line[1024];
	int n0;

	scan_str("{\"id\":\"resp_1\",\"status\":\"queued\"}", &d);
	tasks_record("req_b1", &d, LEDGER_OBJ_RESPONSE, "acme", "text1",
	    "other/t", "other#1");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"task\",\"id\":"
	    "\"resp_1\",\"wallet\":\"acme\",\"model\":\"text1\",\"route\":"
	    "\"other/t\",\"cred\":\"other#1\",\"kind\":\"response\"}",
	    "a background response's line");
	n0 = ledger_nlines();
	settle("resp_1", c, "req_b2", "{\"id\":\"resp_1\",\"status\":"
	    "\"in_progress\"}");
	settle("resp_1", c, "req_b3", "{\"id\":\"resp_2\",\"status\":"
	    "\"completed\",\"usage\":{\"input_tokens\":1,\"output_tokens\":"
	    "1}}");
	settle("resp_1", c, "req_b4", "{\"id\":\"resp_1\",\"status\":"
	    "\"succeeded\",\"usage\":{\"input_tokens\":1,\"output_tokens\":"
	    "1}}");
	ok_int(ledger_nlines(), n0, "in progress, another id's answer, a "
	    "task's word: nothing");
	/* 1000 in (200 cached) at 1.00, 500 out at 2.00 (text1 has no
	 * cached price: the input price) = 2,000,000 nano-USD. */
	settle("resp_1", c, "req_b5", "{\"id\":\"resp_1\",\"object\":"
	    "\"response\",\"status\":\"completed\",\"usage\":{"
	    "\"input_tokens\":1000,\"input_tokens_details\":{"
	    "\"cached_tokens\":200},\"output_tokens\":500}}");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"charge\",\"id\":"
	    "\"req_b5\",\"task\":\"resp_1\",\"wallet\":\"acme\",\"model\":"
	    "\"text1\",\"route\":\"other/t\",\"cred\":\"other#1\","
	    "\"status\":200,\"in\":800,\"cached\":200,\"out\":500,"
	    "\"usd_nano\":2000000,\"cny_nano\":14400000}",
	    "completed: charged its usage once");
	settle("resp_1", c, "req_b6", "{\"id\":\"resp_1\",\"status\":"
	    "\"completed\",\"usage\":{\"input_tokens\":9,\"output_tokens\":"
	    "9}}");
	ok_int(ledger_nlines(), n0 + 1, "once");

	scan_str("{\"id\":\"resp_x\",\"status\":\"queued\"}", &d);
	tasks_record("req_x1", &d, LEDGER_OBJ_RESPONSE, "acme", "text1",
	    "other/t", "other#1");
	settle("resp_x", c, "req_x2", "{\"id\":\"resp_x\",\"status\":"
	    "\"cancelled\"}");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"charge\",\"id\":"
	    "\"req_x2\",\"task\":\"resp_x\",\"wallet\":\"acme\",\"model\":"
	    "\"text1\",\"route\":\"other/t\",\"cred\":\"other#1\","
	    "\"status\":200,\"in\":0,\"out\":0,\"usd_nano\":0,"
	    "\"cny_nano\":0}", "cancelled: closed without charge");

	/* Created already finished: charged at once. */
	scan_str("{\"id\":\"resp_now\",\"status\":\"incomplete\","
	    "\"usage\":{\"input_tokens\":10,\"output_tokens\":20}}", &d);
	n0 = ledger_nlines();
	tasks_record("req_n1", &d, LEDGER_OBJ_RESPONSE, "acme", "text1",
	    "other/t", "other#1");
	commit();
	ok_int(ledger_nlines(), n0 + 2, "recorded and charged (incomplete "
	    "is billed)");
	ok(ledger_task_find(billing_ledger(), "resp_now")->charged,
	    "settled");

	/* A plain object made without a model (passthrough). */
	scan_str("{\"id\":\"file-abc\",\"object\":\"file\"}", &d);
	tasks_record("req_p1", &d, LEDGER_OBJ_PLAIN, "beta", NULL, "other",
	    "other#1");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"task\",\"id\":"
	    "\"file-abc\",\"wallet\":\"beta\",\"route\":\"other\",\"cred\":"
	    "\"other#1\",\"kind\":\"object\"}", "a plain object's line: no "
	    "model");
	t = ledger_task_find(billing_ledger(), "file-abc");
	ok(t != NULL && t->charged && t->kind == LEDGER_OBJ_PLAIN,
	    "settled from the start: never polled or charged");
	n0 = ledger_nlines();
	settle("file-abc", c, "req_p2", "{\"id\":\"file-abc\",\"status\":"
	    "\"completed\",\"usage\":{\"input_tokens\":1}}");
	ok_int(ledger_nlines(), n0, "never charged");
	scan_str("{\"object\":\"list\",\"data\":[]}", &d);
	tasks_record("req_p3", &d, LEDGER_OBJ_PLAIN, "beta", NULL, "other",
	    "other#1");
	ok_int(ledger_nlines(), n0, "an answer without an id records nothing");
}

/* ---- the relay's own poll ---------------------------------------------- */

/* Step every pooled connection that has news, as loop.c does, and free
 * what closed. */
static void
drive(uint64_t now, int ms)
{
	struct pollfd pf[16];
	struct upstream *us[16];
	size_t i, n = 0;

	for (i = 0; i < pool_count() && n < 16; i++) {
		struct upstream *u = pool_at(i);

		if (u->state == UPSTREAM_CLOSED) {
			continue;
		}
		pf[n].fd = u->fd;
		pf[n].events = upstream_interest(u);
		pf[n].revents = 0;
		us[n++] = u;
	}
	if (n > 0 && poll(pf, n, ms) > 0) {
		for (i = 0; i < n; i++) {
			struct pool_owner *o;

			if (pf[i].revents == 0) {
				continue;
			}
			upstream_step(us[i], pf[i].revents, now);
			o = us[i]->owner;
			if (o != NULL && o->kind == POOL_OWNER_TASK_POLL) {
				tasks_on_upstream((struct task_poll *)o, us[i],
				    now);
			}
		}
	}
	commit();
	pool_sweep();
}

/* Drive until the provider (lfd) has a connection and a whole request
 * on it; returns the connection with *req filled, or -1. */
static int
provider_take(int lfd, uint64_t now, char *req, size_t cap)
{
	int fd = -1, i;

	for (i = 0; i < 100 && fd < 0; i++) {
		drive(now, 10);
		if (t_ready(lfd, POLLIN, 0)) {
			fd = accept(lfd, NULL, NULL);
		}
	}
	if (fd < 0) {
		return -1;
	}
	for (i = 0; i < 100; i++) {
		drive(now, 0);
		if (t_ready(fd, POLLIN, 10)) {
			break;
		}
	}
	if (t_read_message(fd, req, cap, T_WAIT_MS) == 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static void
answer(int fd, int status, const char *body)
{
	char head[256];

	snprintf(head, sizeof(head), "HTTP/1.1 %d X\r\nContent-Type: "
	    "application/json\r\nContent-Length: %zu\r\n\r\n", status,
	    strlen(body));
	t_send(fd, head);
	t_send(fd, body);
}

/* Drive until task id is charged (or closed), or give up. */
static int
wait_charged(const char *id, uint64_t now)
{
	int i;

	for (i = 0; i < 200; i++) {
		const struct ledger_task *t = ledger_task_find(billing_ledger(),
		    id);

		if (t != NULL && t->charged) {
			return 1;
		}
		drive(now, 10);
	}
	return 0;
}

static void
test_poll(int lfd)
{
	uint64_t now = 1000000;
	char reqa[4096], reqb[4096], want[512], line[1024];
	const char *req1, *req2;
	const struct ledger_task *t;
	size_t cursor = 0, mark, open_before = 0;
	int fda, fdb, fd1, fd2, n0, i;

	/* Close every open task but cgt-1 (ark#2) and cgt-nu (ark#1):
	 * exactly these two are polled. */
	for (;;) {
		t = ledger_task_next_open(billing_ledger(), &cursor);
		if (t == NULL) {
			break;
		}
		open_before++;
		if (strcmp(t->id, "cgt-1") != 0 && strcmp(t->id, "cgt-nu") != 0) {
			struct usage_doc d;

			usage_scan_all("{\"status\":\"failed\"}", 19, &d);
			tasks_settle(t->id, gen_current()->conf, "req_x", 200,
			    &d);
		}
	}
	commit();
	ok_int(open_before, 3, "cgt-1, cgt-2 and cgt-nu were open");

	tasks_init(now);
	ok_int(tasks_due_ms(), now + 30000, "the first poll is a period away");
	tasks_tick(now + 29999, 0);
	ok_int(pool_count(), 0, "not due yet: no connection");
	tasks_tick(now + 30000, 1);
	ok_int(pool_count(), 0, "stopping: no poll");
	now += 30000;
	tasks_tick(now, 0);
	ok_int(pool_count(), 2, "one connection per open task");
	ok_int(tasks_due_ms(), now + 30000, "next round a period later");

	/* The provider sees two GETs, each on its task's own credential. */
	fda = provider_take(lfd, now, reqa, sizeof(reqa));
	fdb = provider_take(lfd, now, reqb, sizeof(reqb));
	ok(fda >= 0 && fdb >= 0, "two poll requests arrived");
	if (fda < 0 || fdb < 0) {
		return;
	}
	if (strstr(reqa, "/cgt-1 ") != NULL) {
		fd1 = fda, req1 = reqa, fd2 = fdb, req2 = reqb;
	} else {
		fd1 = fdb, req1 = reqb, fd2 = fda, req2 = reqa;
	}
	snprintf(want, sizeof(want), "GET /api/v3/contents/generations/tasks/"
	    "cgt-1 HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer "
	    "sk-ark-2\r\nContent-Length: 0\r\n\r\n", provider_port);
	ok_str(req1, want, "cgt-1 polled on its own credential (ark#2)");
	snprintf(want, sizeof(want), "GET /api/v3/contents/generations/tasks/"
	    "cgt-nu HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer "
	    "sk-ark-1\r\nContent-Length: 0\r\n\r\n", provider_port);
	ok_str(req2, want, "cgt-nu polled on ark#1");

	/* A round while both polls are in flight asks nothing more. */
	tasks_tick(tasks_due_ms(), 0);
	ok_int(pool_count(), 2, "no second poll of a task being polled");

	/* Success with usage: the poll charges the task. */
	n0 = ledger_nlines();
	answer(fd1, 200, "{\"id\":\"cgt-1\",\"status\":\"succeeded\","
	    "\"usage\":{\"completion_tokens\":2500,\"total_tokens\":2500}}");
	ok(wait_charged("cgt-1", now), "charged by the poll");
	ok_int(ledger_nlines(), n0 + 1, "one line");
	ok_str(last_line(line, sizeof(line)), "{\"type\":\"charge\",\"id\":"
	    "\"relay-poll\",\"task\":\"cgt-1\",\"wallet\":\"acme\","
	    "\"model\":\"seedance\",\"route\":\"ark/doubao-seedance\","
	    "\"cred\":\"ark#2\",\"status\":200,\"in\":0,\"out\":2500,"
	    "\"usd_nano\":16000000,\"cny_nano\":115200000}",
	    "the poll's charge line");

	/* A 404: logged, the task stays open, the connection is closed. */
	mark = t_log_mark();
	answer(fd2, 404, "{\"error\":\"gone\"}");
	for (i = 0; i < 200 && !t_log_has(mark, "poll answered 404"); i++) {
		drive(now, 10);
	}
	ok(t_log_has(mark, "INFO task cgt-nu: poll answered 404"),
	    "a 404 is logged");
	ok(!ledger_task_find(billing_ledger(), "cgt-nu")->charged,
	    "and leaves the task open");
	close(fd2);
	drive(now, 0);
	ok_int(pool_count(), 1, "the 404's connection is closed");
	ok_int(pool_idle(), 1, "the success's connection is parked");

	/* The next round polls the one task still open, on the parked
	 * connection (same provider, same config). */
	now = tasks_due_ms();
	tasks_tick(now, 0);
	ok_int(pool_count(), 1, "the parked connection is reused");
	ok_int(pool_idle(), 0, "and busy");
	for (i = 0; i < 50 && !t_ready(fd1, POLLIN, 0); i++) {
		drive(now, 10);
	}
	ok(t_read_message(fd1, reqa, sizeof(reqa), T_WAIT_MS) > 0 &&
	    strcmp(reqa, want) == 0, "cgt-nu polled again on ark#1: %s", reqa);
	answer(fd1, 200, "{\"status\":\"succeeded\",\"usage\":"
	    "{\"completion_tokens\":10}}");
	ok(wait_charged("cgt-nu", now), "cgt-nu charged");
	ok(strstr(last_line(line, sizeof(line)), "\"task\":\"cgt-nu\"") &&
	    strstr(line, "\"out\":10,"), "its line: %s", line);
	close(fd1);

	/* Nothing is open: a round starts no poll. */
	for (i = 0; i < 20 && pool_count() > 0; i++) {
		drive(now, 10);
	}
	now = tasks_due_ms();
	tasks_tick(now, 0);
	ok_int(pool_count(), 0, "no open task, no poll");
}

int
main(void)
{
	struct conf *c;
	int lfd;

	t_tmpdir("test_tasks");
	t_log_capture();
	setenv("T_TASK_K1", "sk-ark-1", 1);
	setenv("T_TASK_K2", "sk-ark-2", 1);
	ledger_path = t_path("ledger.jsonl");
	lfd = t_listen(&provider_port);

	c = tasks_conf(ARK_FULL);
	ok_int(billing_open(c, 0, err, sizeof(err)), 0, "billing_open");
	ok_int(gen_start(c), 0, "gen_start");
	ok_int(pool_init(err, sizeof(err)), 0, "pool_init");

	test_record();
	test_settle(c);
	test_locate(c);
	test_objects(c);
	test_poll(lfd);

	/* The ledger replays: the tasks and their charges survive. */
	billing_close();
	ok_int(billing_open(c, 0, err, sizeof(err)), 0, "reopen");
	{
		size_t cursor = 0;

		ok(ledger_task_find(billing_ledger(), "cgt-1") != NULL &&
		    ledger_task_find(billing_ledger(), "cgt-1")->charged &&
		    ledger_task_find(billing_ledger(), "cgt-nu")->charged,
		    "tasks replayed with their state");
		ok(ledger_task_next_open(billing_ledger(), &cursor) == NULL,
		    "none open after the replay");
	}

	tasks_free();
	pool_free();
	billing_close();
	gen_free_all();
	close(lfd);
	t_log_restore();
	if (t_fail) {
		t_log_show(0);
	}
	t_rmdir();
	return t_bugs_done("tasks");
}
