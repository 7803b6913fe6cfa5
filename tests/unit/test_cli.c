/* Unit tests for cli: what a user sees from the command line (SPEC §1).
 * relay check, models, key, version and -h, the ledger subcommands'
 * argument checks and every argument error, as exit code, stdout and
 * stderr. Each case runs cli_main() in a child process, with stdout and
 * stderr sent to files: cli.c keeps -l and --ledger-allow-broken in
 * statics, and a case must not see the last one's. The runtime
 * (loop_run) and the ledger commands are stubs below that print what
 * they were given, so serving and ledger files are not needed. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cli.h"
#include "conf.h"
#include "ledger.h"
#include "loop.h"
#include "t.h"
#include "util.h"

static char tmpdir[] = "/tmp/test_cli.XXXXXX";

/* ---- stubs for what cli.c calls above its layer ---- */

int
loop_run(struct conf *conf, const char *config_path,
    int allow_broken_ledger)
{
	size_t i;

	printf("serve config=%s allow_broken=%d listen=",
	    config_path ? config_path : "(embedded)", allow_broken_ledger);
	for (i = 0; i < conf->nlistens; i++) {
		printf("%s%s:%s%s", i ? "," : "", conf->listens[i].host,
		    conf->listens[i].port, conf->listens[i].open ? " open" : "");
	}
	printf("\n");
	conf_free(conf);
	return 0;
}

int
ledger_verify_file(const char *path, FILE *out, char *err, size_t errlen)
{
	if (strstr(path, "broken") != NULL) {
		return util_errf(err, errlen, "line 2: prev does not match");
	}
	fprintf(out, "verify %s\n", path);
	return 0;
}

int
store_rebuild(const struct conf *c, const char *const *paths,
    size_t npaths, FILE *out, char *err, size_t errlen)
{
	size_t i;

	if (c->store == NULL) {
		return util_errf(err, errlen, "the config has no store line");
	}
	fprintf(out, "rebuild %s", c->store->url);
	for (i = 0; i < npaths; i++) {
		fprintf(out, " %s", paths[i]);
	}
	fprintf(out, "\n");
	return 0;
}

int
ledger_report_files(const char *const *paths, size_t npaths,
    const char *by, const char *since, FILE *out, size_t *bad, char *err,
    size_t errlen)
{
	size_t i;

	fprintf(out, "report");
	for (i = 0; i < npaths; i++) {
		fprintf(out, " %s", paths[i]);
		if (strstr(paths[i], "broken") != NULL) {
			*bad = i;
			return util_errf(err, errlen, "line 3: bad");
		}
	}
	fprintf(out, " by=%s since=%s\n", by, since ? since : "-");
	return 0;
}

/* ---- running the command line ---- */

struct run {
	int code;		/* exit code, or -1 when it did not exit */
	char out[16384];	/* stdout, NUL-terminated (cut if longer) */
	char err[16384];	/* stderr */
};

static void
slurp(const char *path, char *buf, size_t cap)
{
	size_t n = 0;
	FILE *f = fopen(path, "r");

	if (f != NULL) {
		n = fread(buf, 1, cap - 1, f);
		fclose(f);
	}
	buf[n] = '\0';
}

/* relay ARGS... (NULL-terminated) in a child; env: "NAME=VALUE" to set
 * there, or NULL. */
static void
run_env(struct run *r, const char *env, const char *const *args)
{
	char out[256], err[256], *argv[32], *e;
	int argc = 0, fd, status = 0;
	pid_t pid;

	snprintf(out, sizeof out, "%s/stdout", tmpdir);
	snprintf(err, sizeof err, "%s/stderr", tmpdir);
	argv[argc++] = (char *)(uintptr_t)"relay";
	while (*args != NULL && argc < 31) {
		argv[argc++] = (char *)(uintptr_t)*args++;
	}
	argv[argc] = NULL;
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		close(fd);
		fd = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 2);
		close(fd);
		unsetenv("RELAY_LOG");
		if (env != NULL && (e = strdup(env)) != NULL) {
			putenv(e);
		}
		exit(cli_main(argc, argv));
	}
	r->code = -1;
	if (pid > 0 && waitpid(pid, &status, 0) == pid &&
	    WIFEXITED(status)) {
		r->code = WEXITSTATUS(status);
	}
	slurp(out, r->out, sizeof r->out);
	slurp(err, r->err, sizeof r->err);
}

#define RUN(r, ...) do { \
	const char *a_[] = { __VA_ARGS__, NULL }; \
	run_env((r), NULL, a_); \
} while (0)

#define RUN_ENV(r, env, ...) do { \
	const char *a_[] = { __VA_ARGS__, NULL }; \
	run_env((r), (env), a_); \
} while (0)

/* Write text to tmpdir/name and return the path (static storage). */
static const char *
file_with(const char *name, const char *text)
{
	static char path[4][256];
	static int slot;
	char *p = path[slot++ % 4];
	FILE *f;

	snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	if (f != NULL) {
		fputs(text, f);
		fclose(f);
	}
	return p;
}

static int
has(const char *hay, const char *needle)
{
	return strstr(hay, needle) != NULL;
}

/* The command failed as a usage error should: exit 2, nothing on
 * stdout, the message and then the usage text on stderr. */
static void
want_usage_error(const struct run *r, const char *msg, const char *name)
{
	ok_int(r->code, 2, name);
	ok_str(r->out, "", name);
	ok(strncmp(r->err, msg, strlen(msg)) == 0 &&
	    has(r->err + strlen(msg), "usage: relay"),
	    "%s: stderr \"%s\", want \"%s\" then the usage", name, r->err,
	    msg);
}

static const char usage_start[] = "usage: relay [-c FILE] [-l ADDR:PORT] "
    "[--ledger-allow-broken]\n";

/* A small config: one provider with one credential from the
 * environment and one that is not set, two models, a wallet. */
static const char cfg[] =
    "listen 127.0.0.1:9000\n"
    "ledger t-ledger.jsonl sync=always\n"
    "currency USD rate=1\n"
    "provider p base=https://api.example.com/v1 auth=bearer\n"
    "credential p env:CLI_TEST_KEY\n"
    "credential p env:CLI_TEST_UNSET\n"
    "model b-model text 1.5 3 p/b-upstream\n"
    "model a-model embeddings 0.02 - p/a-upstream p/a-other\n"
    "wallet team key=sha256:"
    "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\n";

/* relay models for cfg; relay check ends with it too. */
/* Cache reads and writes show the price in force (the input price when
 * the model sets none). */
static const char models_table[] =
    "alias                      modality   family          in $/1M   "
    "out $/1M cached $/1M  write $/1M  routes\n"
    "a-model                    embeddings a-model            0.02      "
    "    -        0.02        0.02  p/a-upstream p/a-other\n"
    "b-model                    text       b-model             1.5      "
    "    3         1.5         1.5  p/b-upstream\n";

/* ---- cases ---- */

static void
test_version_help(void)
{
	struct run r;
	char want[64];

	snprintf(want, sizeof want, "relay %s\n", RELAY_VERSION);
	RUN(&r, "version");
	ok_int(r.code, 0, "version: exit");
	ok_str(r.out, want, "version: stdout");
	ok_str(r.err, "", "version: stderr");
	RUN(&r, "--version");
	ok_str(r.out, want, "--version: stdout");

	RUN(&r, "-h");
	ok_int(r.code, 0, "-h: exit");
	ok(strncmp(r.out, usage_start, strlen(usage_start)) == 0,
	    "-h: usage on stdout: \"%.60s\"", r.out);
	ok(has(r.out, "relay check [-c FILE]") &&
	    has(r.out, "relay models [-c FILE]") &&
	    has(r.out, "relay key ") &&
	    has(r.out, "relay ledger verify FILE") &&
	    has(r.out, "relay ledger report FILE... [--by wallet|model|day|node]") &&
	    has(r.out, "relay version | relay -h\n"),
	    "-h: every command listed");
	ok_str(r.err, "", "-h: stderr");
	RUN(&r, "--help");
	ok(r.code == 0 && strncmp(r.out, usage_start,
	    strlen(usage_start)) == 0, "--help: usage");
	RUN(&r, "help");
	ok(r.code == 0 && strncmp(r.out, usage_start,
	    strlen(usage_start)) == 0, "help: usage");
}

/* "key: rk-" and 32 base-62 characters, then the sha256 word of it. */
static void
check_key_output(const char *out, char key[64])
{
	char hex[65], want[128];
	unsigned char hash[32];
	size_t i;
	int good = strncmp(out, "key: rk-", 8) == 0;

	key[0] = '\0';
	for (i = 8; good && i < 8 + 32; i++) {
		good = (out[i] >= '0' && out[i] <= '9') ||
		    (out[i] >= 'a' && out[i] <= 'z') ||
		    (out[i] >= 'A' && out[i] <= 'Z');
	}
	good = good && out[40] == '\n';
	ok(good, "key: \"key: rk-\" and 32 base-62 characters: \"%s\"", out);
	if (!good) {
		return;
	}
	memcpy(key, out + 5, 35);
	key[35] = '\0';
	util_sha256(key, 35, hash);
	util_hex(hash, 32, hex);
	snprintf(want, sizeof want, "key=sha256:%s\n", hex);
	ok_str(out + 41, want, "key: the sha256 word of the key");
}

static void
test_key(void)
{
	struct run r;
	char k1[64], k2[64];

	RUN(&r, "key");
	ok_int(r.code, 0, "key: exit");
	ok_str(r.err, "", "key: stderr");
	check_key_output(r.out, k1);
	RUN(&r, "key");
	check_key_output(r.out, k2);
	ok(k1[0] != '\0' && strcmp(k1, k2) != 0, "key: a new one each time");
}

static void
test_check(void)
{
	const char *path = file_with("relay.conf", cfg);
	char want[512];
	struct run r;

	RUN_ENV(&r, "CLI_TEST_KEY=sk-cli-secret-value", "check", "-c", path);
	ok_int(r.code, 0, "check: exit");
	snprintf(want, sizeof want, "config %s: ok\n"
	    "listen     127.0.0.1:9000\n"
	    "mode       wallets (requests need a client key)\n"
	    "ledger     t-ledger.jsonl sync=always\n"
	    "currency   USD rate=1/1\n"
	    "trust      ", path);
	ok(strncmp(r.out, want, strlen(want)) == 0,
	    "check: head of the summary: got \"%s\"", r.out);
	ok(has(r.out, " anchors from embedded ("), "check: trust anchors");
	ok(has(r.out, "\ntimeouts   header=10000ms keepalive=60000ms "
	    "connect=5000ms first_byte=120000ms idle=300000ms "
	    "total=600000ms\n"), "check: timeouts");
	ok(has(r.out, "\nlimits     max_body=33554432 max_header=16384 "
	    "max_conns=4096\n"), "check: limits");
	ok(has(r.out, "\nprovider   p https://api.example.com/v1 auth=bearer "
	    "credentials: p#1(env:CLI_TEST_KEY)\n"), "check: provider");
	ok(has(r.out, "\nwallet     team keys=1\nmodels     2\n"),
	    "check: wallet and model count");
	ok(has(r.out, models_table), "check: models table, sorted by alias");
	snprintf(want, sizeof want, "%s:6: warning: environment variable "
	    "CLI_TEST_UNSET is not set; credential skipped\n"
	    "%s:8: warning: model 'a-model' has no output price: its output "
	    "tokens are metered, not debited; input is debited\n", path,
	    path);
	ok_str(r.err, want, "check: the warnings on stderr");
	ok(!has(r.out, "sk-cli-secret-value") &&
	    !has(r.err, "sk-cli-secret-value"), "check: secret never shown");

	RUN_ENV(&r, "CLI_TEST_KEY=x", "check", "--config", path);
	ok(r.code == 0 && has(r.out, "config ") && has(r.out, ": ok\n"),
	    "check --config: same as -c");

	RUN(&r, "check");
	ok_int(r.code, 0, "check (embedded): exit");
	snprintf(want, sizeof want, "config (embedded): ok\n"
	    "listen     127.0.0.1:8080\n"
	    "mode       open (no wallet: requests need no key, metered to "
	    "'default')\n");
	ok(strncmp(r.out, want, strlen(want)) == 0,
	    "check (embedded): summary: \"%.100s\"", r.out);
	ok(has(r.err, "(embedded):16: warning: environment variable "
	    "OPENAI_API_KEY is not set") || has(r.out, "openai#1"),
	    "check (embedded): warnings on stderr");
}

static void
test_check_errors(void)
{
	const char *bad = file_with("bad.conf", "listen 127.0.0.1:9000\n"
	    "bogus directive\n");
	const char *notpem = file_with("notpem.crt", "not a certificate\n");
	char conf[512], want[512];
	struct run r;

	RUN(&r, "check", "-c", "/nonexistent/relay.conf");
	ok_int(r.code, 1, "check missing file: exit");
	ok_str(r.out, "", "check missing file: stdout");
	ok_str(r.err, "/nonexistent/relay.conf: No such file or directory\n",
	    "check missing file: stderr");

	RUN(&r, "check", "-c", bad);
	ok_int(r.code, 1, "check bad config: exit");
	snprintf(want, sizeof want, "%s:2: unknown directive 'bogus'\n", bad);
	ok_str(r.err, want, "check bad config: stderr");
	ok_str(r.out, "", "check bad config: stdout");

	/* A ca_file that opens but holds no certificate: the config parses,
	 * the trust anchors do not load. */
	snprintf(conf, sizeof conf, "ca_file %s\n", notpem);
	RUN(&r, "check", "-c", file_with("ca.conf", conf));
	ok_int(r.code, 1, "check bad ca_file: exit");
	snprintf(want, sizeof want, "%s: no PEM \"BEGIN CERTIFICATE\" block "
	    "found\n", notpem);
	ok_str(r.err, want, "check bad ca_file: stderr");

	RUN(&r, "check", "-c");
	ok_int(r.code, 2, "check -c without FILE: exit");
	ok_str(r.err, "relay: -c needs a FILE\n",
	    "check -c without FILE: stderr");
	RUN(&r, "check", "extra");
	want_usage_error(&r, "relay: unexpected argument 'extra'\n",
	    "check extra");
	RUN(&r, "check", "-l", "127.0.0.1:1");
	want_usage_error(&r, "relay: unexpected argument '-l'\n",
	    "check -l (serve only)");
	RUN(&r, "models", "--ledger-allow-broken");
	want_usage_error(&r,
	    "relay: unexpected argument '--ledger-allow-broken'\n",
	    "models --ledger-allow-broken (serve only)");
}

static void
test_models(void)
{
	const char *path = file_with("relay.conf", cfg);
	struct run r;

	RUN_ENV(&r, "CLI_TEST_KEY=x", "models", "-c", path);
	ok_int(r.code, 0, "models: exit");
	ok_str(r.out, models_table, "models: the table");
	ok_str(r.err, "", "models: no warnings");

	RUN(&r, "models");
	ok(r.code == 0 && strncmp(r.out, "alias ", 6) == 0 &&
	    has(r.out, "\ngpt-5.2 "), "models (embedded): the catalog");

	RUN(&r, "models", "-c", "/nonexistent/relay.conf");
	ok_int(r.code, 1, "models missing file: exit");
	ok_str(r.err, "/nonexistent/relay.conf: No such file or directory\n",
	    "models missing file: stderr");
	RUN(&r, "models", "x");
	want_usage_error(&r, "relay: unexpected argument 'x'\n", "models x");
}

static void
test_serve_args(void)
{
	const char *path = file_with("relay.conf", cfg);
	const char *open = file_with("open.conf", "listen 127.0.0.1:9001\n");
	const char *none[] = { NULL };
	char want[512];
	struct run r;

	RUN_ENV(&r, "CLI_TEST_KEY=x", "-c", path);
	ok_int(r.code, 0, "serve: exit of the runtime");
	snprintf(want, sizeof want, "serve config=%s allow_broken=0 "
	    "listen=127.0.0.1:9000\n", path);
	ok_str(r.out, want, "serve: the runtime gets the config");
	ok(has(r.err, " WARN ") && has(r.err, "CLI_TEST_UNSET is not set"),
	    "serve: config warnings are logged: \"%s\"", r.err);

	RUN_ENV(&r, "CLI_TEST_KEY=x", "--ledger-allow-broken", "-l",
	    "0.0.0.0:7000", "--config", path);
	snprintf(want, sizeof want, "serve config=%s allow_broken=1 "
	    "listen=0.0.0.0:7000\n", path);
	ok_str(r.out, want, "serve -l --ledger-allow-broken");

	RUN(&r, "--listen", "[::1]:7001", "-c", open);
	snprintf(want, sizeof want, "serve config=%s allow_broken=0 "
	    "listen=::1:7001\n", open);
	ok_str(r.out, want, "serve --listen [::1]:PORT");

	run_env(&r, NULL, none);
	ok(r.code == 0 && has(r.out, "serve config=(embedded) allow_broken=0 "
	    "listen=127.0.0.1:8080\n"), "serve: the embedded config");

	RUN(&r, "-l", "0.0.0.0:7000", "-c", open);
	ok_int(r.code, 1, "serve open mode -l 0.0.0.0: exit");
	ok_str(r.out, "", "serve open mode -l 0.0.0.0: not served");
	ok_str(r.err, "relay: open mode (no wallet lines) serves loopback "
	    "only: -l 0.0.0.0:7000 refused\n",
	    "serve open mode -l 0.0.0.0: stderr");

	RUN(&r, "-l", "7000", "-c", open);
	ok_int(r.code, 1, "serve -l PORT only: exit");
	ok_str(r.err, "relay: -l wants ADDR:PORT, got '7000'\n",
	    "serve -l PORT only: stderr");
	RUN(&r, "-l");
	ok_int(r.code, 2, "serve -l without value: exit");
	ok_str(r.err, "relay: -l needs ADDR:PORT\n",
	    "serve -l without value: stderr");
	RUN(&r, "-c", "/nonexistent/relay.conf");
	ok_int(r.code, 1, "serve missing config: exit");
	ok_str(r.out, "", "serve missing config: not served");

	RUN(&r, "--bogus");
	want_usage_error(&r, "relay: unexpected argument '--bogus'\n",
	    "serve --bogus");
	RUN(&r, "frobnicate");
	want_usage_error(&r, "relay: unknown command 'frobnicate'\n",
	    "unknown command");
}

static void
test_ledger_args(void)
{
	struct run r;

	RUN(&r, "ledger", "verify", "l.jsonl");
	ok(r.code == 0 && strcmp(r.out, "verify l.jsonl\n") == 0,
	    "ledger verify FILE: \"%s\"", r.out);
	RUN(&r, "ledger", "verify", "broken.jsonl");
	ok_int(r.code, 1, "ledger verify failing: exit");
	ok_str(r.err, "broken.jsonl: line 2: prev does not match\n",
	    "ledger verify failing: stderr");
	RUN(&r, "ledger", "report", "l.jsonl");
	ok_str(r.out, "report l.jsonl by=wallet since=-\n",
	    "ledger report: by wallet by default");
	RUN(&r, "ledger", "report", "l.jsonl", "--since", "2026-01-01",
	    "--by", "day");
	ok_str(r.out, "report l.jsonl by=day since=2026-01-01\n",
	    "ledger report --by --since");

	RUN(&r, "ledger");
	ok(r.code == 2 && strncmp(r.err, usage_start,
	    strlen(usage_start)) == 0, "ledger alone: usage, exit 2");
	RUN(&r, "ledger", "verify");
	ok(r.code == 2 && strncmp(r.err, usage_start,
	    strlen(usage_start)) == 0, "ledger verify without FILE: usage");
	RUN(&r, "ledger", "verify", "a", "b");
	ok(r.code == 2 && r.out[0] == '\0', "ledger verify two files: exit 2");
	RUN(&r, "ledger", "audit", "l.jsonl");
	ok(r.code == 2 && strncmp(r.err, usage_start,
	    strlen(usage_start)) == 0, "ledger audit: usage");
	RUN(&r, "ledger", "report", "l.jsonl", "--by", "hour");
	ok_int(r.code, 2, "ledger report --by hour: exit");
	ok_str(r.err, "relay: --by wallet|model|day|node\n",
	    "ledger report --by hour: stderr");
	RUN(&r, "ledger", "report", "a.jsonl", "b.jsonl", "--by", "node",
	    "c.jsonl");
	ok_str(r.out, "report a.jsonl b.jsonl c.jsonl by=node since=-\n",
	    "ledger report of three files by node");
	RUN(&r, "ledger", "report", "a.jsonl", "broken.jsonl");
	ok_int(r.code, 1, "ledger report, a bad second file: exit");
	ok_str(r.err, "broken.jsonl: line 3: bad\n",
	    "ledger report names the bad file");
	RUN(&r, "ledger", "report", "--by", "day");
	ok_int(r.code, 2, "ledger report without a file");
	RUN(&r, "ledger", "report", "l.jsonl", "--by");
	want_usage_error(&r, "relay: unexpected argument '--by'\n",
	    "ledger report --by without value");
}

int
main(void)
{
	char cmd[512];

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_version_help();
	test_key();
	test_check();
	test_check_errors();
	test_models();
	test_serve_args();
	test_ledger_args();
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0) {
		printf("# could not remove %s\n", tmpdir);
	}
	return t_done("cli");
}
