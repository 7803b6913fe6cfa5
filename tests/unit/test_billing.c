/* Unit tests for billing: the ledger opened from a config in a temp
 * directory, the one cost function (exact nano amounts, half-even
 * conversion, overflow), holds (refused with the 402 text when balance
 * minus holds plus overdraft cannot cover them, unlimited in open mode,
 * adding up and given back), the exact charge line in the file, and the
 * group commit: who waits, who is handed back, and the rule that lets a
 * busy pass defer its lines by one pass. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "billing.h"
#include "conf.h"
#include "ledger.h"
#include "metrics.h"
#include "t_rt.h"
#include "util.h"

static char err[512];

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

static struct conf *
billing_conf(const char *ledger, const char *sync)
{
	return t_conf("ledger %s sync=%s\n"
	    "currency CNY rate=7.2000\n"
	    "holds max_tokens=1000\n"
	    "provider p base=http://127.0.0.1:9/v1\n"
	    "credential p env:T_BILL_K\n"
	    "model m text 1.75 14.00 p/x\n"
	    "model free text - - p/y\n"
	    "model outonly embeddings 0.019 - p/z\n"
	    "wallet acme key=sha256:%s\n"
	    "wallet edge key=sha256:%s\n"
	    "wallet other key=sha256:%s overdraft=1.00\n",
	    ledger, sync, key_hash("k-acme"), key_hash("k-edge"),
	    key_hash("k-other"));
}

static const struct conf_model *
model(const struct conf *c, const char *alias)
{
	return conf_find_model(c, alias, strlen(alias));
}

/* billing_cost of in input and out output tokens only. */
static int
cost2(const struct conf *c, const struct conf_model *m, uint64_t in,
    uint64_t out, uint64_t *usd, uint64_t *cur)
{
	struct billing_tokens t = { in, 0, 0, out };

	return billing_cost(c, m, &t, usd, cur);
}

static void
test_cost(const struct conf *c)
{
	const struct conf_model *m = model(c, "m");
	uint64_t usd = 0, cur = 0;
	struct conf *half;

	/* SPEC §6's example: 1234 in at 1.75/1M, 567 out at 14.00/1M. */
	ok_int(cost2(c, m, 1234, 567, &usd, &cur), 0, "cost");
	ok_int(usd, 10097500, "usd_nano = 1234*1750 + 567*14000");
	ok_int(cur, 72702000, "cny_nano = usd_nano * 7.2");
	ok_int(cost2(c, m, 0, 0, &usd, &cur), 0, "zero tokens");
	ok(usd == 0 && cur == 0, "cost nothing");
	ok_int(cost2(c, model(c, "free"), 1000000, 1000000, &usd, &cur),
	    0, "unpriced model");
	ok(usd == 0 && cur == 0, "'-' prices cost nothing: %llu %llu",
	    (unsigned long long)usd, (unsigned long long)cur);
	ok_int(cost2(c, model(c, "outonly"), 1000, 1000, &usd, &cur), 0,
	    "in priced, out not");
	ok(usd == 19000 && cur == 136800, "only the input counts: %llu %llu",
	    (unsigned long long)usd, (unsigned long long)cur);

	/* Overflow: the USD product, and a debit past INT64_MAX. */
	ok_int(cost2(c, m, UINT64_MAX, 0, &usd, &cur), -1,
	    "in * price overflows");
	ok_int(cost2(c, m, 0, UINT64_MAX / 14000 + 1, &usd, &cur), -1,
	    "out * price overflows");
	ok_int(cost2(c, m, 857142857142857ull, 0, &usd, &cur), -1,
	    "usd fits, the CNY debit does not fit in int64");
	ok_int(cost2(c, m, 100000000000000ull, 0, &usd, &cur), 0,
	    "1e14 tokens fit");
	ok(usd == 175000000000000000ull && cur == 1260000000000000000ull,
	    "exact at 1e14 tokens: %llu %llu", (unsigned long long)usd,
	    (unsigned long long)cur);

	/* Conversion rounds half to even: rate 0.5, 1 nano-USD per token. */
	half = t_conf("currency EUR rate=0.5\n"
	    "provider p base=http://127.0.0.1:9/v1\n"
	    "model cheap text 0.001 0.001 p/x\n");
	m = model(half, "cheap");
	ok(cost2(half, m, 1, 0, &usd, &cur) == 0 && usd == 1 &&
	    cur == 0, "0.5 -> 0: %llu", (unsigned long long)cur);
	ok(cost2(half, m, 3, 0, &usd, &cur) == 0 && cur == 2,
	    "1.5 -> 2: %llu", (unsigned long long)cur);
	ok(cost2(half, m, 5, 0, &usd, &cur) == 0 && cur == 2,
	    "2.5 -> 2: %llu", (unsigned long long)cur);
	ok(cost2(half, m, 4, 3, &usd, &cur) == 0 && usd == 7 &&
	    cur == 4, "3.5 -> 4: %llu", (unsigned long long)cur);
	conf_free(half);

	/* Each bucket at its own price (SPEC §8): Anthropic's 100,000-token
	 * cache write at 3.75, cache reads at 0.30; without the options they
	 * cost the input price. */
	half = t_conf("provider p base=http://127.0.0.1:9/v1\n"
	    "model claude text 3.00 15.00 cached=0.30 cache_write=3.75 p/x\n"
	    "model plain text 3.00 15.00 p/y\n");
	{
		struct billing_tokens tk = { 4, 2048, 100000, 9 };

		ok(billing_cost(half, model(half, "claude"), &tk, &usd,
		    &cur) == 0 && usd == 4 * 3000 + 2048 * 300 +
		    100000ull * 3750 + 9 * 15000, "claude buckets: %llu",
		    (unsigned long long)usd);
		ok(billing_cost(half, model(half, "plain"), &tk, &usd,
		    &cur) == 0 && usd == (4 + 2048 + 100000ull) * 3000 +
		    9 * 15000, "no cache prices: the input price: %llu",
		    (unsigned long long)usd);
		tk.cache_write = UINT64_MAX / 3750 + 1;
		ok(billing_cost(half, model(half, "claude"), &tk, &usd,
		    &cur) < 0, "a bucket that overflows is refused");
	}
	conf_free(half);
}

/* One hold of (in, out) tokens of model m. */
static enum billing_hold
hold(const struct conf *c, const char *wallet, int limited,
    uint64_t overdraft, uint64_t in, uint64_t out, int64_t *nano, char *msg,
    size_t cap)
{
	msg[0] = '\0';
	*nano = -1;
	return billing_hold(c, model(c, "m"), wallet, limited, overdraft, in,
	    out, nano, msg, cap);
}

static void
test_holds(const struct conf *c)
{
	struct ledger *l = billing_ledger();
	int64_t h1, h2, h3, h4, n;
	uint64_t refused = metrics.refused_402;
	char msg[400];
	int i;

	/* acme has 0.20 CNY; a hold of 1000 in + 1000 out is 0.1134 CNY. */
	ok_int(ledger_credit(l, "acme", 200000000, "top-up", err, sizeof(err)),
	    0, "credit acme 0.20");
	ok_int(hold(c, "acme", 1, 0, 1000, 1000, &h1, msg, sizeof(msg)),
	    BILLING_HELD, "first hold fits");
	ok_int(h1, 113400000, "hold = cost of the estimate");
	ok_int(billing_held("acme"), 113400000, "held");
	ok_int(hold(c, "acme", 1, 0, 1000, 1000, &h2, msg, sizeof(msg)),
	    BILLING_REFUSED, "second hold does not fit beside the first");
	ok_str(msg, "wallet 'acme' has 0.20 CNY (0.11 held by running "
	    "requests) and cannot cover this request's hold of 0.11 CNY; top "
	    "it up or lower max_tokens", "the 402 message");
	ok_int(h2, -1, "a refused hold sets nothing");
	ok_int(billing_held("acme"), 113400000, "a refusal holds nothing");
	ok_int(metrics.refused_402, refused + 1, "refusal counted");

	/* Holds add up. */
	ok_int(hold(c, "acme", 1, 0, 100, 100, &h3, msg, sizeof(msg)),
	    BILLING_HELD, "a small one fits");
	ok_int(h3, 11340000, "100 in + 100 out");
	ok_int(billing_held("acme"), 113400000 + 11340000, "holds add up");
	ok_int(billing_held("edge"), 0, "other wallets hold nothing");

	/* Release gives back; then the big one fits again. */
	billing_release("acme", h1);
	ok_int(billing_held("acme"), 11340000, "released");
	ok_int(hold(c, "acme", 1, 0, 1000, 1000, &h2, msg, sizeof(msg)),
	    BILLING_HELD, "fits after the release");
	billing_release("acme", h2);
	billing_release("acme", h3);
	ok_int(billing_held("acme"), 0, "all given back");

	/* Exactly the balance fits; one token more does not. */
	ok_int(ledger_credit(l, "edge", 113400000, NULL, err, sizeof(err)), 0,
	    "credit edge 0.1134");
	ok_int(hold(c, "edge", 1, 0, 1000, 1000, &h1, msg, sizeof(msg)),
	    BILLING_HELD, "a hold of exactly the balance");
	ok_int(hold(c, "edge", 1, 0, 0, 1, &h2, msg, sizeof(msg)),
	    BILLING_REFUSED, "nothing more");
	ok_str(msg, "wallet 'edge' has 0.11 CNY (0.11 held by running "
	    "requests) and cannot cover this request's hold of 0.00 CNY; top "
	    "it up or lower max_tokens", "a hold that rounds to 0.00");
	billing_release("edge", h1);

	/* Overdraft: 'other' has nothing and may go to -1.00. */
	for (i = 0; i < 8; i++) {
		if (hold(c, "other", 1, 1000000000, 1000, 1000, &h4, msg,
		    sizeof(msg)) != BILLING_HELD) {
			break;
		}
	}
	ok_int(i, 8, "eight holds of 0.1134 fit in an overdraft of 1.00");
	ok_int(hold(c, "other", 1, 1000000000, 1000, 1000, &h4, msg,
	    sizeof(msg)), BILLING_REFUSED, "the ninth does not");
	ok_str(msg, "wallet 'other' has 0.00 CNY (0.91 held by running "
	    "requests) and cannot cover this request's hold of 0.11 CNY; top "
	    "it up or lower max_tokens", "overdraft refusal message");
	ok_int(hold(c, "other", 1, 1000000000, 0, 60, &h4, msg, sizeof(msg)),
	    BILLING_HELD, "a smaller one still fits (0.9072 + 0.006048)");
	n = billing_held("other");
	ok_int(n, 8 * 113400000 + 6048000, "held in overdraft");
	billing_release("other", n);

	/* Open mode (not limited): no balance, any hold. */
	ok_int(hold(c, "default", 0, 0, 1000000, 1000000, &h1, msg,
	    sizeof(msg)), BILLING_HELD, "open mode holds without a balance");
	ok_int(h1, (int64_t)(1000000ull * 15750 * 72 / 10),
	    "open-mode hold is still the cost");
	ok_int(billing_held("default"), h1, "and is counted");
	billing_release("default", h1);
	ok_int(billing_held("default"), 0, "given back");

	/* An estimate whose cost does not fit in 64 bits is held at a
	 * quarter of INT64_MAX, which no balance covers. */
	ok_int(hold(c, "acme", 1, 0, UINT64_MAX, 0, &h1, msg, sizeof(msg)),
	    BILLING_REFUSED, "an overflowing estimate is refused");
	ok_int(hold(c, "default", 0, 0, UINT64_MAX, 0, &h1, msg, sizeof(msg)),
	    BILLING_HELD, "open mode holds it");
	ok_int(h1, INT64_MAX / 4, "capped");
	billing_release("default", h1);
}

/* The ledger's lines, and line k of it. */
static int
ledger_nlines(const char *path)
{
	char *text = t_slurp(path, NULL);
	int n = t_nlines(text);

	free(text);
	return n;
}

static const char *
ledger_line(const char *path, int k, char *out, size_t cap)
{
	char *text = t_slurp(path, NULL);
	const char *r = text ? t_line(text, k, out, cap) : NULL;

	free(text);
	if (r == NULL) {
		out[0] = '\0';
	}
	return out;
}

/* line without its "ts" value and "prev" hash; *prev gets the hash. */
static const char *
strip(const char *line, char *out, size_t cap, char prev[65])
{
	static const char shape[] = "{\"ts\":\"dddd-dd-ddTdd:dd:dd.dddZ\"";
	const char *p = strstr(line, "\"prev\":\"");
	size_t i;
	int bad = strlen(line) < 32 || p == NULL;

	for (i = 0; !bad && i < sizeof(shape) - 1; i++) {
		bad = shape[i] == 'd' ? !(line[i] >= '0' && line[i] <= '9') :
		    line[i] != shape[i];
	}
	prev[0] = '\0';
	if (bad) {
		snprintf(out, cap, "(bad line) %s", line);
		return out;
	}
	snprintf(prev, 65, "%.64s", p + 8);
	/* {"ts":"2026-11-24T22:10:00.123Z", ... ,"prev":"..."} */
	snprintf(out, cap, "{\"ts\":\"T\"%.*s\"prev\":\"P\"}",
	    (int)(p - (line + 32)), line + 32);
	return out;
}

static int
chained(const char *path, int k)
{
	char a[2048], b[2048], h[65], prev[65], tmp[2048];
	unsigned char d[32];

	ledger_line(path, k - 1, a, sizeof(a));
	ledger_line(path, k, b, sizeof(b));
	util_sha256(a, strlen(a), d);
	util_hex(d, 32, h);
	strip(b, tmp, sizeof(tmp), prev);
	return strcmp(h, prev) == 0;
}

static struct ledger_charge
charge(const char *id, const char *wallet, uint64_t in, uint64_t out)
{
	struct ledger_charge ch;

	memset(&ch, 0, sizeof(ch));
	ch.id = id;
	ch.wallet = wallet;
	ch.model = "m";
	ch.route = "p/x";
	ch.cred = "p#1";
	ch.status = 200;
	ch.in = in;
	ch.out = out;
	return ch;
}

static void
test_charges(const struct conf *c, const char *path)
{
	struct billing_wait w1, w2, w3, *list, *w;
	struct ledger_charge ch;
	char line[2048], got[2048], prev[65];
	int o1, o2, o3, n0, seen1 = 0, seen2 = 0, seen3 = 0, count = 0, i;
	int64_t bal = ledger_balance(billing_ledger(), "acme");
	uint64_t charges = metrics.charges;
	size_t mark;

	n0 = ledger_nlines(path);
	ok_int(billing_busy(), 0, "nothing queued yet");
	ok_int(billing_must_wait(), 0, "nothing to wait for");

	/* A charge is priced and queued (group commit is on): it counts at
	 * once, and reaches the file with the commit. */
	ch = charge("req_t1", "acme", 1234, 567);
	ok_int(billing_charge(c, model(c, "m"), &ch), 0, "charge");
	ok(ch.usd_nano == 10097500 && ch.cur_nano == 72702000,
	    "priced: %llu %llu", (unsigned long long)ch.usd_nano,
	    (unsigned long long)ch.cur_nano);
	ok_int(ledger_balance(billing_ledger(), "acme"), bal - 72702000,
	    "debited at once");
	ok_int(metrics.charges, charges + 1, "counted");
	ok_int(ledger_nlines(path), n0, "queued, not yet in the file");
	ok_int(billing_busy(), 1, "a line waits: the loop must not sleep");
	ok_int(billing_must_wait(), 1, "sync=always: answers wait for the "
	    "write");

	/* Three answers wait; one goes away before the commit. */
	memset(&w1, 0, sizeof(w1));
	memset(&w2, 0, sizeof(w2));
	memset(&w3, 0, sizeof(w3));
	billing_wait(&w1, &o1);
	billing_wait(&w2, &o2);
	billing_wait(&w1, &o1);	/* twice: still once on the list */
	billing_wait(&w3, &o3);
	ok(w1.waiting && w2.waiting && w3.waiting, "three wait");
	billing_unwait(&w2);
	ok(!w2.waiting, "w2 left");
	billing_unwait(&w2);	/* twice: nothing happens */

	list = billing_commit();
	ok_int(ledger_nlines(path), n0 + 1, "the commit wrote the line");
	for (w = list; w != NULL && count < 10; count++) {
		struct billing_wait *cur = w;

		seen1 += cur->owner == &o1;
		seen2 += cur->owner == &o2;
		seen3 += cur->owner == &o3;
		w = billing_take(w);
		ok(!cur->waiting && cur->next == NULL, "taken off");
	}
	ok(count == 2 && seen1 == 1 && seen3 == 1 && seen2 == 0,
	    "handed back exactly w1 and w3: %d entries, o1 %d o2 %d o3 %d",
	    count, seen1, seen2, seen3);
	ok(billing_commit() == NULL, "nobody waits any more");
	ok_int(billing_busy(), 0, "idle after the commit");
	billing_settle();

	/* The line, field by field in order. */
	ledger_line(path, n0 + 1, line, sizeof(line));
	ok_str(strip(line, got, sizeof(got), prev),
	    "{\"ts\":\"T\",\"type\":\"charge\",\"id\":\"req_t1\","
	    "\"wallet\":\"acme\",\"model\":\"m\",\"route\":\"p/x\","
	    "\"cred\":\"p#1\",\"status\":200,\"in\":1234,\"out\":567,"
	    "\"usd_nano\":10097500,\"cny_nano\":72702000,\"prev\":\"P\"}",
	    "charge line");
	ok(chained(path, n0 + 1), "prev is the hash of the line before");

	/* An estimate without a credential: no "cred", "estimated":true. */
	ch = charge("req_t2", "acme", 10, 20);
	ch.cred = NULL;
	ch.estimated = 1;
	ch.status = 201;
	ok_int(billing_charge(c, model(c, "m"), &ch), 0, "estimated charge");
	list = billing_commit();
	ok(list == NULL, "no waiter");
	ledger_line(path, n0 + 2, line, sizeof(line));
	ok_str(strip(line, got, sizeof(got), prev),
	    "{\"ts\":\"T\",\"type\":\"charge\",\"id\":\"req_t2\","
	    "\"wallet\":\"acme\",\"model\":\"m\",\"route\":\"p/x\","
	    "\"status\":201,\"in\":10,\"out\":20,\"usd_nano\":297500,"
	    "\"cny_nano\":2142000,\"estimated\":true,\"prev\":\"P\"}",
	    "estimated line");
	billing_settle();
	ok(chained(path, n0 + 2), "chained");

	/* A charge that does not fit in 64 bits: logged, not written. */
	mark = t_log_mark();
	ch = charge("req_t3", "acme", UINT64_MAX, 1);
	charges = metrics.charges;
	ok_int(billing_charge(c, model(c, "m"), &ch), -1, "overflow refused");
	ok(t_log_has(mark, "ERROR req_t3 charge overflows 64 bits "
	    "(in=18446744073709551615 cached=0 cache_write=0 out=1): not written"),
	    "logged");
	ok_int(billing_busy(), 0, "nothing queued");
	ok_int(metrics.charges, charges, "not counted");
	ok_int(ledger_nlines(path), n0 + 2, "not written");

	/* billing_defer: a busy pass (4+ events) with a few lines waiting
	 * defers them once; the next pass commits. */
	ok_int(billing_defer(10), 0, "nothing queued: nothing to defer");
	ch = charge("req_t4", "acme", 1, 1);
	(void)billing_charge(c, model(c, "m"), &ch);
	ok_int(billing_defer(3), 0, "a quiet pass commits at once");
	ok_int(billing_defer(4), 1, "a busy pass defers");
	ok_int(billing_defer(4), 0, "but one pass only");
	(void)billing_commit();
	ok_int(billing_defer(4), 0, "committed: nothing to defer");
	for (i = 0; i < 32; i++) {
		char id[16];

		snprintf(id, sizeof(id), "req_b%d", i);
		ch = charge(id, "acme", 1, 1);
		(void)billing_charge(c, model(c, "m"), &ch);
	}
	ok_int(ledger_pending(billing_ledger()), 32, "32 lines queued");
	ok_int(billing_defer(100), 0, "a full batch never waits");
	(void)billing_commit();
	billing_settle();
	ok_int(ledger_nlines(path), n0 + 3 + 32, "all written");
	ok(chained(path, n0 + 3 + 32), "the last one chained");
}

int
main(void)
{
	struct conf *c;
	const char *path, *path2;
	struct ledger_charge ch;
	int64_t acme;
	char msg[400];

	t_tmpdir("test_billing");
	t_log_capture();
	setenv("T_BILL_K", "sk-up", 1);
	path = t_path("ledger.jsonl");

	c = billing_conf(path, "always");
	test_cost(c);

	/* ---- open, holds, charges under sync=always ---- */
	ok_int(billing_open(c, 0, err, sizeof(err)), 0, "billing_open");
	ok_int(ledger_nlines(path), 0, "a new ledger is empty");
	ok_int(ledger_balance(billing_ledger(), "acme"), 0, "acme at 0");
	test_holds(c);
	test_charges(c, path);
	acme = ledger_balance(billing_ledger(), "acme");
	billing_close();

	/* ---- reopen: balances replayed, holds forgotten ---- */
	ok_int(billing_open(c, 0, err, sizeof(err)), 0, "reopen");
	ok_int(ledger_balance(billing_ledger(), "acme"), acme,
	    "balance replayed from the file");
	ok_int(ledger_balance(billing_ledger(), "edge"), 113400000, "edge");
	ok_int(billing_held("acme"), 0, "holds are not in the ledger");
	{
		int64_t h;

		ok_int(billing_hold(c, model(c, "m"), "acme", 1, 0, 0, 1, &h,
		    msg, sizeof(msg)), BILLING_HELD, "a hold after reopen");
		billing_release("acme", h);
	}
	billing_close();

	/* ---- a second relay cannot open the same ledger ---- */
	ok_int(billing_open(c, 0, err, sizeof(err)), 0, "open again");
	{
		pid_t pid;
		int st = 0;

		fflush(stdout);
		pid = fork();
		if (pid == 0) {
			char e[512];

			_exit(billing_open(c, 0, e, sizeof(e)) == -1 &&
			    strstr(e, "is locked by another relay") != NULL ?
			    0 : 1);
		}
		waitpid(pid, &st, 0);
		ok(WIFEXITED(st) && WEXITSTATUS(st) == 0,
		    "another process is refused the lock");
	}
	billing_close();
	conf_free(c);

	/* ---- sync=none: the queue file survives a crash, so answers do
	 * not wait for the write ---- */
	path2 = t_path("ledger2.jsonl");
	c = billing_conf(path2, "none");
	ok_int(billing_open(c, 0, err, sizeof(err)), 0, "open sync=none");
	ch = charge("req_n1", "acme", 1, 1);
	ok_int(billing_charge(c, model(c, "m"), &ch), 0, "charge");
	ok_int(ledger_pending(billing_ledger()), 1, "queued");
	ok_int(billing_must_wait(), 0, "the answer need not wait");
	ok_int(billing_busy(), 1, "but the loop commits soon");
	(void)billing_commit();
	billing_settle();
	ok_int(ledger_nlines(path2), 1, "written");
	billing_close();
	conf_free(c);

	/* A ledger that cannot be opened: billing_open says why. */
	c = billing_conf("/nonexistent-dir/x/ledger.jsonl", "always");
	ok_int(billing_open(c, 0, err, sizeof(err)), -1, "unopenable ledger");
	ok(strstr(err, "/nonexistent-dir/x/ledger.jsonl") != NULL,
	    "the error names the file: %s", err);
	conf_free(c);

	t_log_restore();
	if (t_fail) {
		t_log_show(0);
	}
	t_rmdir();
	return t_done("billing");
}
