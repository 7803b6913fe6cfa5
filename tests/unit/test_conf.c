/* Unit tests for conf: the embedded catalog, every directive, and one case
 * per error message checking the exact "FILE:LINE: message" text. Configs
 * are inline strings; secret and cert files are made in a temp dir. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"
#include "t.h"
#include "util.h"

#define OPENAI "provider openai base=https://api.openai.com/v1\n"

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

static struct conf *
parse(const char *text, char *err, size_t errlen)
{
	return conf_parse(text, strlen(text), "t.conf", err, errlen);
}

/* The config must fail with exactly this message. */
static void
want_err(const char *text, const char *want)
{
	char err[512] = "";
	struct conf *c = parse(text, err, sizeof err);

	ok(c == NULL && strcmp(err, want) == 0,
	    "error: got \"%s\", want \"%s\"", c ? "(parsed)" : err, want);
	conf_free(c);
}

/* The config must parse; the error is printed when it does not. */
static struct conf *
want_ok(const char *text)
{
	char err[512] = "";
	struct conf *c = parse(text, err, sizeof err);

	ok(c != NULL, "parse: unexpected error \"%s\"", err);
	return c;
}

/* Write text to tmpdir/name and return the path (static storage). */
static const char *
tmpfile_with(const char *name, const char *text)
{
	static char path[4][256];
	static int slot;
	char *p = path[slot++ % 4];
	FILE *f;

	snprintf(p, sizeof path[0], "%s/%s", tmpdir, name);
	f = fopen(p, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
	return p;
}

/* got must be "(embedded):N: warning: msg" where N is the line of the
 * embedded config holding `where` (so catalog edits do not break it). */
static void
want_warning(const char *got, const char *where, const char *msg)
{
	size_t len = 0;
	char *text = conf_default_text(&len);
	const char *p = text ? strstr(text, where) : NULL, *q;
	char want[512];
	int line = 1;

	ok(text != NULL && strlen(text) == len, "default text unpacked");
	for (q = text; p && q < p; q++) {
		line += *q == '\n';
	}
	snprintf(want, sizeof want, "(embedded):%d: warning: %s", line, msg);
	ok_str(got, want, where);
	free(text);
}

/* The embedded default (packed at build time) unpacks to the file's
 * bytes. Run from the repository root, as tests/run.sh does. */
static void
same_as_file(const char *path)
{
	static char file[64 << 10];
	size_t len = 0, n = 0;
	char *text = conf_default_text(&len);
	FILE *f = fopen(path, "rb");

	ok(f != NULL, "%s: open (run from the repository root)", path);
	if (f != NULL) {
		n = fread(file, 1, sizeof file, f);
		fclose(f);
	}
	ok(text != NULL && len == n && memcmp(text, file, n) == 0,
	    "embedded default = %s (%zu bytes, file %zu)", path, len, n);
	free(text);
}

static void
test_default(void)
{
	static const struct {
		const char *alias, *family;
		enum conf_modality modality;
		uint64_t in, out;
	} want[] = {
		{ "claude-3-5-sonnet", "claude", CONF_TEXT, 3000, 15000 },
		{ "deepseek-v4-flash", "deepseek-v", CONF_TEXT, 140, 281 },
		{ "deepseek-v4-pro", "deepseek-v", CONF_TEXT, 435, 869 },
		{ "doubao-seedance-2-0-pro", "doubao-seedance", CONF_VIDEO,
		    CONF_PRICE_NONE, 6400 },
		{ "gpt-4.1-mini", "gpt", CONF_TEXT, 150, 600 },
		{ "gpt-5.2", "gpt", CONF_TEXT, 1750, 14000 },
		{ "gpt-5.3-codex", "gpt", CONF_TEXT, 1750, 14000 },
		{ "gpt-5.3-codex-spark", "gpt", CONF_TEXT, CONF_PRICE_NONE,
		    CONF_PRICE_NONE },
		{ "gpt-5.4", "gpt", CONF_TEXT, 2500, 15000 },
		{ "gpt-5.4-mini", "gpt", CONF_TEXT, 700, 4200 },
		{ "gpt-5.4-openai-compact", "gpt", CONF_TEXT, 2500, 15000 },
		{ "gpt-5.4-xhigh-fast", "gpt", CONF_TEXT, 2500, 15000 },
		{ "gpt-5.5", "gpt", CONF_TEXT, 5000, 30000 },
		{ "gpt-5.5-openai-compact", "gpt", CONF_TEXT, 5000, 30000 },
		{ "gpt-5.5-xhigh-fast", "gpt", CONF_TEXT, 5000, 30000 },
		{ "gpt-image-2", "gpt-image", CONF_IMAGE, CONF_PRICE_NONE,
		    CONF_PRICE_NONE },
		{ "text-embedding-3-small", "text-embedding", CONF_EMBEDDINGS,
		    19, CONF_PRICE_NONE },
	};
	const struct conf_provider *pr;
	const struct conf_model *m;
	struct conf *c;
	char err[512] = "";
	size_t i;

	unsetenv("OPENAI_API_KEY");
	unsetenv("ANTHROPIC_API_KEY");
	unsetenv("DEEPSEEK_API_KEY");
	unsetenv("ARK_API_KEY");
	c = conf_load_default(err, sizeof err);
	ok(c != NULL, "default config parses: %s", err);
	if (c == NULL) {
		return;
	}
	ok_str(c->source, "(embedded)", "default source");
	same_as_file("configs/relay.conf");
	ok_int(c->nmodels, 17, "default models");
	ok_int(c->nproviders, 4, "default providers");
	for (i = 0; i < 17 && i < c->nmodels; i++) {
		m = &c->models[i];
		ok_str(m->alias, want[i].alias, "sorted alias");
		ok_str(m->family, want[i].family, want[i].alias);
		ok_int(m->modality, want[i].modality, want[i].alias);
		ok(m->in_nano_usd == want[i].in, "%s in: %" PRIu64,
		    want[i].alias, m->in_nano_usd);
		ok(m->out_nano_usd == want[i].out, "%s out: %" PRIu64,
		    want[i].alias, m->out_nano_usd);
		ok_int(m->nroutes, 1, want[i].alias);
	}
	m = conf_find_model(c, "deepseek-v4-flash", 17);
	ok(m && strcmp(m->in_text, "0.140") == 0 &&
	    strcmp(m->out_text, "0.281") == 0, "price text kept as written");
	m = conf_find_model(c, "gpt-image-2", 11);
	ok(m && strcmp(m->in_text, "-") == 0, "'-' price text");
	m = conf_find_model(c, "claude-3-5-sonnet", 17);
	ok(m && strcmp(m->routes[0].upstream_model,
	    "claude-3-5-sonnet-20241022") == 0 &&
	    strcmp(c->providers[m->routes[0].provider].name, "anthropic") == 0,
	    "claude route");

	pr = &c->providers[1];
	ok_str(pr->name, "anthropic", "provider order");
	ok_int(pr->auth, CONF_AUTH_X_API_KEY, "anthropic auth");
	ok(pr->nheaders == 1 &&
	    strcmp(pr->headers[0].name, "anthropic-version") == 0 &&
	    strcmp(pr->headers[0].value, "2023-06-01") == 0,
	    "anthropic header");
	ok_int(pr->https, 1, "anthropic https");
	ok_str(pr->host, "api.anthropic.com", "anthropic host");
	ok_str(pr->port, "443", "anthropic port");
	ok_str(pr->host_header, "api.anthropic.com", "anthropic Host");
	ok_str(pr->path, "/v1", "anthropic path");
	ok_int(pr->ncreds, 0, "unset env: no credential");
	ok_str(c->providers[3].path, "/api/v3", "ark path");

	ok_int(c->nwarnings, 8, "default warnings");
	if (c->nwarnings == 8) {
		want_warning(c->warnings[0], "env:OPENAI_API_KEY",
		    "environment variable OPENAI_API_KEY is not set; "
		    "credential skipped");
		want_warning(c->warnings[4], "model doubao-seedance-2-0-pro ",
		    "model 'doubao-seedance-2-0-pro' has no input price: its "
		    "input tokens are metered, not debited; output is "
		    "debited");
		want_warning(c->warnings[5], "model gpt-5.3-codex-spark ",
		    "model 'gpt-5.3-codex-spark' has no input or output price; "
		    "it is metered, never debited");
		want_warning(c->warnings[7], "model text-embedding-3-small ",
		    "model 'text-embedding-3-small' has no output price: its "
		    "output tokens are metered, not debited; input is "
		    "debited");
	}

	ok_int(conf_open_mode(c), 1, "default is open mode");
	ok(c->nlistens == 1 && strcmp(c->listens[0].host, "127.0.0.1") == 0 &&
	    strcmp(c->listens[0].port, "8080") == 0, "default listen");
	ok_str(c->currency, "CNY", "currency");
	ok_str(c->currency_lower, "cny", "currency lower");
	ok(c->rate_num == 72000 && c->rate_den == 10000, "rate 7.2000");
	ok_int(c->cooldown_failures, 3, "cooldown failures");
	ok_int(c->cooldown_ms, 60000, "cooldown ms");
	ok_int(c->hold_max_tokens, 4096, "holds");
	ok_int(c->header_timeout_ms, 10000, "header timeout");
	ok_int(c->total_timeout_ms, 600000, "total timeout");
	ok_int(c->max_body, 32 << 20, "max_body");
	ok_int(c->max_header, 16 << 10, "max_header");
	ok_int(c->max_conns, 4096, "max_conns");
	ok_str(c->ledger_path, "relay-ledger.jsonl", "default ledger");
	ok_int(c->ledger_sync, CONF_SYNC_BATCH, "default sync");
	ok(c->ca_file == NULL && !c->has_admin_key, "no ca_file, admin_key");
	conf_free(c);

	setenv("OPENAI_API_KEY", "sk-test-openai", 1);
	c = conf_load_default(err, sizeof err);
	ok(c && c->providers[0].ncreds == 1 &&
	    strcmp(c->providers[0].creds[0].label, "openai#1") == 0 &&
	    strcmp(c->providers[0].creds[0].secret, "sk-test-openai") == 0 &&
	    strcmp(c->providers[0].creds[0].source,
	    "env:OPENAI_API_KEY") == 0 && c->nwarnings == 7,
	    "env credential resolved");
	conf_free(c);
	unsetenv("OPENAI_API_KEY");
}

static void
test_errors(void)
{
	const char *secret = tmpfile_with("empty", "\n");

	want_err("listen 127.0.0.1:80\nfoo bar\n",
	    "t.conf:2: unknown directive 'foo'");
	want_err(OPENAI "model a text 1 2 openai/a\n"
	    "model a text 1 2 openai/b\n",
	    "t.conf:3: duplicate model alias 'a' (first on line 2)");
	want_err(OPENAI "model a text 1 2 openai/a nope/b\n",
	    "t.conf:2: route 'nope/b' names undefined provider 'nope'");
	want_err(OPENAI "model a text 1.2345 2 openai/a\n",
	    "t.conf:2: bad input price '1.2345' (USD per 1M tokens, at most "
	    "3 decimals and 1000000, or -)");
	want_err(OPENAI "model a text 1 1000000.001 openai/a\n",
	    "t.conf:2: bad output price '1000000.001' (USD per 1M tokens, at "
	    "most 3 decimals and 1000000, or -)");
	want_err(OPENAI "model a audio 1 2 openai/a\n",
	    "t.conf:2: unknown modality 'audio' (text, image, video or "
	    "embeddings)");
	want_err(OPENAI "model a text 1 2\n",
	    "t.conf:2: model is written model ALIAS MODALITY INPRICE "
	    "OUTPRICE ROUTE...");
	want_err(OPENAI "model a text 1 2 openai\n",
	    "t.conf:2: route 'openai' is not provider/upstream-model");
	want_err(OPENAI "credential openai sk-SECRET123\n",
	    "t.conf:2: secrets are written env:NAME or file:PATH");
	want_err(OPENAI "credential openai env:sk-SECRET123\n",
	    "t.conf:2: secrets are written env:NAME or file:PATH");
	want_err(OPENAI "credential openai file:/nonexistent/key\n",
	    "t.conf:2: cannot read secret file '/nonexistent/key': No such "
	    "file or directory");
	want_err(OPENAI "credential openai file:/\n",
	    "t.conf:2: cannot read secret file '/': Is a directory");
	{
		char text[512], want[512];

		snprintf(text, sizeof text, OPENAI
		    "credential openai file:%s\n", secret);
		snprintf(want, sizeof want, "t.conf:2: secret file '%s' is "
		    "empty", secret);
		want_err(text, want);
	}
	want_err("\nca_file /nonexistent/ca.pem\n",
	    "t.conf:2: cannot read ca_file '/nonexistent/ca.pem': No such "
	    "file or directory");
	want_err("timeouts header=10\n",
	    "t.conf:1: bad duration '10' for header (write e.g. 500ms, 10s or "
	    "5m)");
	want_err("timeouts idle=0s\n", "t.conf:1: idle must be more than zero");
	want_err("timeouts total=25h\n",
	    "t.conf:1: bad duration '25h' for total (write e.g. 500ms, 10s or "
	    "5m)");
	want_err("timeouts total=1441m\n",
	    "t.conf:1: total is longer than a day");
	want_err("limits max_header=512\n",
	    "t.conf:1: max_header must be between 1024 and 1048576");
	want_err("limits max_body=0\n",
	    "t.conf:1: max_body must be more than zero");
	want_err("limits max_body=1g\n",
	    "t.conf:1: bad size '1g' for max_body (write e.g. 4096, 16k or "
	    "32m)");
	want_err("# comment\nlisten 0.0.0.0:8080\n",
	    "t.conf:2: open mode (no wallet lines) serves loopback only; "
	    "write open=yes on the listen line to accept other addresses");
	want_err("provider p base=http://example.com/v1\n",
	    "t.conf:1: plain http to 'example.com' is only allowed for "
	    "loopback (write insecure=yes to allow it)");
	want_err("credential openai env:OPENAI_API_KEY\n" OPENAI,
	    "t.conf:1: credential for undefined provider 'openai'");
	want_err(OPENAI "provider openai base=https://x/\n",
	    "t.conf:2: duplicate provider 'openai' (first on line 1)");
	want_err("provider p base=ftp://x/\n",
	    "t.conf:1: base must be an http:// or https:// URL");
	want_err("provider p base=https://user:SECRET@x/\n",
	    "t.conf:1: base must not hold user:password@ (write a credential "
	    "line)");
	want_err("provider p base=https://x:99999/\n",
	    "t.conf:1: bad host or port in base 'https://x:99999/'");
	want_err("provider p base=https://x/ auth=basic\n",
	    "t.conf:1: auth must be bearer, x-api-key, api-key or none");
	want_err("provider p base=https://x/ header=Authorization:Bearer "
	    "sk-SECRET\n", "t.conf:1: word 5 is not an option (options are "
	    "written name=value)");
	want_err("provider p base=https://x/ header=Authorization:x\n",
	    "t.conf:1: header 'Authorization' cannot be set with header=");
	want_err("provider p base=https://x/ colour=red\n",
	    "t.conf:1: unknown option 'colour' for provider");
	want_err("provider p auth=none\n", "t.conf:1: provider 'p' needs "
	    "base=URL");
	want_err("ledger x.jsonl sync=often\n",
	    "t.conf:1: sync must be always, batch or none");
	want_err("ledger a\nledger b\n",
	    "t.conf:2: duplicate 'ledger' directive (first on line 1)");
	want_err("admin_key rk-SECRET\n", "t.conf:1: admin_key is written "
	    "sha256:<64 hex digits> (the SHA-256 of the key; see relay key)");
	want_err("currency cny rate=7\n", "t.conf:1: currency needs a CODE of "
	    "three capital letters (e.g. CNY)");
	want_err("currency EUR rate=0.1234567\n",
	    "t.conf:1: bad rate '0.1234567' (a decimal with at most 6 "
	    "decimals)");
	want_err("currency EUR rate=0.000\n",
	    "t.conf:1: rate must be more than zero and at most 1000000");
	want_err("currency EUR\n",
	    "t.conf:1: currency needs rate=DECIMAL (EUR per USD)");
	want_err("cooldown failures=0\n",
	    "t.conf:1: failures must be a number from 1 to 1000000");
	want_err("listen 127.0.0.1:65536\n",
	    "t.conf:1: bad port in '127.0.0.1:65536' (0 to 65535)");
	want_err("listen example.com:80\n",
	    "t.conf:1: bad listen address 'example.com:80' (write IPv4:PORT, "
	    "[IPv6]:PORT or localhost:PORT)");
	want_err("listen 127.0.0.1:8443 tls cert=/nonexistent/c.pem "
	    "key=/nonexistent/k.pem\n", "t.conf:1: cannot read cert file "
	    "'/nonexistent/c.pem': No such file or directory");
	want_err("listen 127.0.0.1:8443 tls\n",
	    "t.conf:1: tls needs cert=PATH and key=PATH");
	want_err("listen 127.0.0.1:8443 open=maybe\n",
	    "t.conf:1: open must be yes or no");
	want_err("wallet w key=sha256:abc\n", "t.conf:1: a wallet key is "
	    "written key=sha256:<64 hex digits> (see relay key)");
	want_err("wallet w overdraft=1\n",
	    "t.conf:1: wallet 'w' needs at least one key=sha256:<hex>");
	want_err("wallet w key=sha256:" "0000000000000000000000000000000000000"
	    "000000000000000000000000001\nwallet w key=sha256:000000000000000"
	    "0000000000000000000000000000000000000000000000002\n",
	    "t.conf:2: duplicate wallet 'w' (first on line 1)");
	want_err("wallet a key=sha256:" "0000000000000000000000000000000000000"
	    "000000000000000000000000001\nwallet b key=sha256:000000000000000"
	    "0000000000000000000000000000000000000000000000001\n",
	    "t.conf:2: a key of wallet 'b' is already a key of wallet 'a' "
	    "(line 1)");
	want_err("listen 127.0.0.1:80 x\r\n",
	    "t.conf:1: word 3 is not an option (options are written "
	    "name=value)");
	want_err("listen 127.0.0.1:80\rx\n",
	    "t.conf:1: control character in line");
	{
		char text[5000];

		memset(text, 'x', 4097);
		text[4097] = '\0';
		want_err(text, "t.conf:1: line longer than 4096 bytes");
		strcpy(text, "listen 127.0.0.1:80");
		while (strlen(text) < 4000) {
			strcat(text, " a=b");
		}
		want_err(text, "t.conf:1: more than 64 words");
	}
}

static void
test_no_secret_in_errors(void)
{
	char err[512];
	struct conf *c;

	c = parse(OPENAI "credential openai sk-SECRET123 extra\n", err,
	    sizeof err);
	ok(c == NULL && strstr(err, "SECRET") == NULL, "no secret: %s", err);
	c = parse("provider p base=https://u:SECRET@h/\n", err, sizeof err);
	ok(c == NULL && strstr(err, "SECRET") == NULL, "no secret: %s", err);
	c = parse("admin_key SECRET\n", err, sizeof err);
	ok(c == NULL && strstr(err, "SECRET") == NULL, "no secret: %s", err);
}

static void
test_credentials(void)
{
	const struct conf_provider *pr;
	const char *path;
	char text[512];
	struct conf *c;

	path = tmpfile_with("key", "sk-from-file \t\r\nsecond line\n");
	unsetenv("TEST_CONF_UNSET");
	setenv("TEST_CONF_EMPTY", "", 1);
	setenv("TEST_CONF_SET", "sk-from-env", 1);
	snprintf(text, sizeof text, OPENAI
	    "credential openai env:TEST_CONF_UNSET\n"
	    "credential openai file:%s\n"
	    "credential openai env:TEST_CONF_EMPTY\n"
	    "credential openai env:TEST_CONF_SET\n", path);
	c = want_ok(text);
	if (c == NULL) {
		return;
	}
	pr = &c->providers[0];
	ok_int(pr->ncreds, 2, "two credentials kept");
	if (pr->ncreds == 2) {
		ok_str(pr->creds[0].label, "openai#2", "file label");
		ok_str(pr->creds[0].secret, "sk-from-file", "file secret");
		ok_int(pr->creds[0].line, 3, "file line");
		ok_str(pr->creds[1].label, "openai#4", "env label");
		ok_str(pr->creds[1].secret, "sk-from-env", "env secret");
		ok_str(pr->creds[1].source, "env:TEST_CONF_SET", "env source");
	}
	ok_int(c->nwarnings, 2, "skipped credentials warn");
	if (c->nwarnings == 2) {
		ok_str(c->warnings[1], "t.conf:4: warning: environment "
		    "variable TEST_CONF_EMPTY is not set; credential skipped",
		    "empty env warning");
	}
	conf_free(c);

	path = tmpfile_with("nonl", "sk-no-newline");
	snprintf(text, sizeof text, OPENAI "credential openai file:%s\n",
	    path);
	c = want_ok(text);
	ok(c && c->providers[0].ncreds == 1 &&
	    strcmp(c->providers[0].creds[0].secret, "sk-no-newline") == 0,
	    "file without newline");
	conf_free(c);
}

static void
test_providers_routes(void)
{
	const struct conf_provider *pr;
	const struct conf_model *m;
	struct conf *c;

	c = want_ok("model claude text 3 15 openrouter/anthropic/claude-3.5-"
	    "sonnet local/claude\n"
	    "provider local base=http://127.0.0.1:9000/v1/ auth=none\n"
	    "provider openrouter base=https://openrouter.ai/api/v1 "
	    "auth=bearer header=HTTP-Referer:https://x.example/#top\n"
	    "provider v6 base=http://[::1]:9001\n"
	    "provider ext base=http://example.com:8000/ insecure=yes "
	    "auth=api-key\n");
	if (c == NULL) {
		return;
	}
	m = conf_find_model(c, "claude", 6);
	ok(m && m->nroutes == 2, "two routes");
	if (m && m->nroutes == 2) {
		ok_str(m->routes[0].text,
		    "openrouter/anthropic/claude-3.5-sonnet", "route text");
		ok_str(m->routes[0].upstream_model,
		    "anthropic/claude-3.5-sonnet", "split at the first '/'");
		ok_str(c->providers[m->routes[0].provider].name, "openrouter",
		    "route provider");
		ok_str(c->providers[m->routes[1].provider].name, "local",
		    "second route provider");
		ok_str(m->family, "claude", "family of alias without digit");
	}
	pr = &c->providers[0];
	ok(pr->https == 0 && strcmp(pr->host, "127.0.0.1") == 0 &&
	    strcmp(pr->port, "9000") == 0 &&
	    strcmp(pr->host_header, "127.0.0.1:9000") == 0 &&
	    strcmp(pr->path, "/v1") == 0 && pr->auth == CONF_AUTH_NONE,
	    "loopback http provider");
	pr = &c->providers[1];
	ok(pr->nheaders == 1 &&
	    strcmp(pr->headers[0].value, "https://x.example/#top") == 0,
	    "'#' inside a word is not a comment");
	ok_str(pr->path, "/api/v1", "openrouter path");
	pr = &c->providers[2];
	ok(strcmp(pr->host, "::1") == 0 && strcmp(pr->port, "9001") == 0 &&
	    strcmp(pr->host_header, "[::1]:9001") == 0 &&
	    strcmp(pr->path, "") == 0 && pr->auth == CONF_AUTH_BEARER,
	    "IPv6 loopback provider");
	pr = &c->providers[3];
	ok(pr->insecure && strcmp(pr->port, "8000") == 0 &&
	    strcmp(pr->path, "") == 0 && pr->auth == CONF_AUTH_API_KEY,
	    "insecure=yes allows plain http");
	ok_str(conf_auth_name(pr->auth), "api-key", "auth name");
	ok_str(conf_modality_name(CONF_EMBEDDINGS), "embeddings",
	    "modality name");
	conf_free(c);
}

/* 257 models written in a scrambled order (aliases of mixed lengths, so
 * strcmp order is not the numeric one) come out sorted by alias and each
 * is found where it sits. */
static void
test_many_models(void)
{
	enum { N = 257 };
	static char text[N * 64 + 128];
	const struct conf_model *m;
	struct conf *c;
	char alias[32];
	size_t i, k, len, bad = 0;

	len = (size_t)snprintf(text, sizeof text,
	    "provider p base=http://127.0.0.1:1/v1 auth=none\n");
	for (i = 0; i < N; i++) {
		k = i * 100 % N;	/* 100 is prime to 257: a permutation */
		len += (size_t)snprintf(text + len, sizeof text - len,
		    "model m%zu%s text 1 1 p/x\n", k, k % 3 ? "" : "-b");
	}
	c = want_ok(text);
	if (c == NULL) {
		return;
	}
	ok_int(c->nmodels, N, "many models");
	for (i = 1; i < c->nmodels; i++) {
		bad += strcmp(c->models[i - 1].alias, c->models[i].alias) >= 0;
	}
	ok(bad == 0, "%zu models out of strcmp order", bad);
	for (i = 0, bad = 0; i < N; i++) {
		snprintf(alias, sizeof alias, "m%zu%s", i, i % 3 ? "" : "-b");
		m = conf_find_model(c, alias, strlen(alias));
		bad += m == NULL || strcmp(m->alias, alias) != 0;
	}
	ok(bad == 0, "%zu of %d models not found", bad, N);
	conf_free(c);
}

static void
test_find_model(void)
{
	struct conf *c;
	char err[256];

	c = conf_load_default(err, sizeof err);
	if (c == NULL) {
		ok(0, "default: %s", err);
		return;
	}
	ok(conf_find_model(c, "gpt-5.2", 7) == &c->models[5], "find gpt-5.2");
	ok(conf_find_model(c, "claude-3-5-sonnet", 17) == &c->models[0],
	    "find first");
	ok(conf_find_model(c, "text-embedding-3-small", 22) ==
	    &c->models[16], "find last");
	ok(conf_find_model(c, "gpt-5.2xyz", 7) == &c->models[5],
	    "find honours n");
	ok(conf_find_model(c, "gpt-5", 5) == NULL, "prefix misses");
	ok(conf_find_model(c, "gpt-5.22", 8) == NULL, "longer misses");
	ok(conf_find_model(c, "zzz", 3) == NULL, "after last misses");
	ok(conf_find_model(c, "aaa", 3) == NULL, "before first misses");
	ok(conf_find_model(c, "", 0) == NULL, "empty misses");
	conf_free(c);

	test_many_models();
}

static void
test_wallets(void)
{
	unsigned char k1[32], k2[32], k3[32], k4[32];
	char h1[65], h2[65], h3[65], text[512];
	struct conf *c;

	util_sha256("rk-one", 6, k1);
	util_sha256("rk-two", 6, k2);
	util_sha256("rk-three", 8, k3);
	util_sha256("rk-four", 7, k4);
	util_hex(k1, 32, h1);
	util_hex(k2, 32, h2);
	util_hex(k3, 32, h3);
	snprintf(text, sizeof text, "listen 0.0.0.0:8080\n"
	    "wallet acme key=sha256:%s key=sha256:%s overdraft=5.00\n"
	    "wallet beta key=sha256:%s\n", h1, h2, h3);
	c = want_ok(text);
	if (c == NULL) {
		return;
	}
	ok_int(conf_open_mode(c), 0, "wallets: not open mode");
	ok_int(c->wallets[0].nkeys, 2, "acme keys");
	ok(c->wallets[0].overdraft_nano == 5000000000ull, "overdraft 5.00");
	ok_int(c->wallets[1].overdraft_nano, 0, "default overdraft");
	ok_int(conf_find_wallet(c, k1), 0, "key one");
	ok_int(conf_find_wallet(c, k2), 0, "key two");
	ok_int(conf_find_wallet(c, k3), 1, "key three");
	ok_int(conf_find_wallet(c, k4), -1, "unknown key");
	conf_free(c);
}

/* Wallet limits, store and node (SPEC §12). */
static void
test_fleet(void)
{
	char text[1024], err[512];
	const char *h = "0000000000000000000000000000000000000000000000000000"
	    "000000000001";
	struct conf *c;

	snprintf(text, sizeof text, "wallet acme key=sha256:%s rpm=60 "
	    "tpm=100000 max_streams=4 budget_day=12.50\n"
	    "store redis://127.0.0.1:6390/2 password=env:RELAY_T_STORE_PW "
	    "prefix=t1: timeout=500ms\nnode relay-a\n", h);
	setenv("RELAY_T_STORE_PW", "s3cret-pw", 1);
	c = want_ok(text);
	if (c != NULL) {
		ok_int(c->wallets[0].rpm, 60, "rpm");
		ok_int(c->wallets[0].tpm, 100000, "tpm");
		ok_int(c->wallets[0].max_streams, 4, "max_streams");
		ok(c->wallets[0].budget_day_nano == 12500000000ull,
		    "budget_day 12.50");
		ok(c->store != NULL, "store");
		if (c->store != NULL) {
			ok_str(c->store->host, "127.0.0.1", "store host");
			ok_str(c->store->port, "6390", "store port");
			ok_int(c->store->db, 2, "store db");
			ok_str(c->store->password, "s3cret-pw", "password");
			ok_str(c->store->prefix, "t1:", "prefix");
			ok_int(c->store->timeout_ms, 500, "timeout");
		}
		ok_str(c->node, "relay-a", "node");
		conf_free(c);
	}
	snprintf(text, sizeof text, "wallet acme key=sha256:%s\n", h);
	if ((c = want_ok(text)) != NULL) {
		ok(c->wallets[0].rpm == 0 && c->wallets[0].tpm == 0 &&
		    c->wallets[0].max_streams == 0 &&
		    c->wallets[0].budget_day_nano == 0, "no limits: all 0");
		ok(c->store == NULL && c->node == NULL, "no store, no node");
		conf_free(c);
	}
	snprintf(text, sizeof text, "wallet acme key=sha256:%s rpm=0\n", h);
	c = parse(text, err, sizeof err);
	ok(c == NULL && strstr(err, "rpm") != NULL, "rpm=0: %s", err);
	conf_free(c);
	snprintf(text, sizeof text, "wallet acme key=sha256:%s "
	    "budget_day=0\n", h);
	c = parse(text, err, sizeof err);
	ok(c == NULL && strstr(err, "budget_day") != NULL, "budget_day=0: %s",
	    err);
	conf_free(c);
	c = parse("store redis://user:hunter2@127.0.0.1:6379\n", err,
	    sizeof err);
	ok(c == NULL && strstr(err, "hunter2") == NULL &&
	    strstr(err, "password=env:NAME") != NULL,
	    "a password in the URL: refused, not echoed: %s", err);
	conf_free(c);
	c = parse("store rediss://127.0.0.1:6379\n", err, sizeof err);
	ok(c == NULL && strstr(err, "TLS") != NULL, "rediss: %s", err);
	conf_free(c);
	c = parse("store redis://127.0.0.1:6379 password=sk-plain\n", err,
	    sizeof err);
	ok(c == NULL && strstr(err, "sk-plain") == NULL,
	    "a bare password: refused, not echoed: %s", err);
	conf_free(c);
	c = parse("store redis://127.0.0.1:0\n", err, sizeof err);
	ok(c == NULL && strstr(err, "bad host or port") != NULL, "port 0");
	conf_free(c);
	want_err("node a/b\n", "t.conf:1: node is written node NAME "
	    "(letters, digits, '.', '_', '-'; at most 100)");
}

static void
test_settings(void)
{
	const char *cert = tmpfile_with("cert.pem", "cert\n");
	const char *key = tmpfile_with("key.pem", "key\n");
	char text[1024];
	struct conf *c;

	snprintf(text, sizeof text,
	    "# settings\r\n"
	    "listen [::1]:0 # any port\r\n"
	    "listen localhost:8443 tls cert=%s key=%s\n"
	    "listen 10.0.0.1:80 open=yes\n"
	    "admin_key sha256:BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9C"
	    "B410FF61F20015AD\n"
	    "ledger /var/lib/relay/l.jsonl sync=always\n"
	    "currency USD rate=1\n"
	    "cooldown seconds=0\n"
	    "holds max_tokens=100\n"
	    "timeouts header=500ms total=2m\n"
	    "limits max_body=1k max_header=1m max_conns=10\n"
	    "ca_file %s\n", cert, key, cert);
	c = want_ok(text);
	if (c == NULL) {
		return;
	}
	ok_int(c->nlistens, 3, "three listens");
	ok(strcmp(c->listens[0].host, "::1") == 0 &&
	    strcmp(c->listens[0].port, "0") == 0 && c->listens[0].line == 2,
	    "IPv6 listen");
	ok(strcmp(c->listens[1].host, "127.0.0.1") == 0 && c->listens[1].tls &&
	    strcmp(c->listens[1].cert_path, cert) == 0 &&
	    strcmp(c->listens[1].key_path, key) == 0, "tls listen");
	ok(c->listens[2].open == 1, "open=yes");
	ok_int(c->has_admin_key, 1, "admin key");
	util_sha256("abc", 3, (unsigned char *)text);
	ok(memcmp(c->admin_key_hash, text, 32) == 0, "admin key hash");
	ok_str(c->ledger_path, "/var/lib/relay/l.jsonl", "ledger path");
	ok_int(c->ledger_sync, CONF_SYNC_ALWAYS, "sync always");
	ok(strcmp(c->currency, "USD") == 0 &&
	    strcmp(c->currency_lower, "usd") == 0 && c->rate_num == 1 &&
	    c->rate_den == 1, "currency USD");
	ok_int(c->cooldown_failures, 3, "cooldown failures kept");
	ok_int(c->cooldown_ms, 0, "cooldown seconds=0");
	ok_int(c->hold_max_tokens, 100, "holds");
	ok_int(c->header_timeout_ms, 500, "header=500ms");
	ok_int(c->total_timeout_ms, 120000, "total=2m");
	ok_int(c->idle_timeout_ms, 300000, "idle kept");
	ok_int(c->max_body, 1024, "max_body=1k");
	ok_int(c->max_header, 1048576, "max_header=1m");
	ok_int(c->max_conns, 10, "max_conns");
	ok_str(c->ca_file, cert, "ca_file");
	conf_free(c);

	c = want_ok("currency EUR rate=0.921456\n");
	ok(c && c->rate_num == 921456 && c->rate_den == 1000000, "rate 6dp");
	conf_free(c);

	/* The v2 settings and their defaults (SPEC §8, §10). */
	c = want_ok("");
	ok(c && c->body_timeout_ms == 60000 && c->max_conns_per_ip == 256 &&
	    c->cooldown_max_ms == 300000 && !c->disconnect_drain &&
	    !c->metrics_admin, "v2 defaults: body 60s, 256 per ip, cooldown "
	    "max 300s, disconnect close, metrics open");
	conf_free(c);
	c = want_ok("timeouts body=5s\nlimits max_conns_per_ip=3\n"
	    "cooldown max=30\ndisconnect drain\nmetrics auth=admin\n");
	ok(c && c->body_timeout_ms == 5000 && c->max_conns_per_ip == 3 &&
	    c->cooldown_max_ms == 30000 && c->disconnect_drain &&
	    c->metrics_admin, "v2 settings read");
	conf_free(c);
	want_err("disconnect later\n", "t.conf:1: disconnect is written "
	    "disconnect close|drain");
	want_err("metrics auth=guest\n", "t.conf:1: metrics is written "
	    "metrics auth=none|auth=admin");

	/* access_log PATH|stderr|off (SPEC §11): off unless set. */
	c = want_ok("");
	ok(c && c->access_log == NULL, "no access log by default");
	conf_free(c);
	c = want_ok("access_log /var/log/relay/access.log\n");
	ok(c && c->access_log != NULL &&
	    strcmp(c->access_log, "/var/log/relay/access.log") == 0,
	    "access_log PATH");
	conf_free(c);
	want_err("access_log\n", "t.conf:1: access_log is written access_log "
	    "PATH|stderr|off");
	want_err("access_log a b\n", "t.conf:1: access_log is written "
	    "access_log PATH|stderr|off");
	want_err("passthrough p=q\n", "t.conf:1: passthrough is written "
	    "passthrough PROVIDER");

	/* Cache prices anywhere after the two prices (SPEC §8); without
	 * them cache tokens cost the input price. */
	c = want_ok(OPENAI "model c text 3.00 15.00 openai/x cached=0.30 "
	    "openai/y cache_write=3.75\nmodel p text 2 8 openai/z\n");
	if (c != NULL) {
		const struct conf_model *m = conf_find_model(c, "c", 1);

		ok(m && m->nroutes == 2 && m->cached_nano_usd == 300 &&
		    m->cache_write_nano_usd == 3750 &&
		    strcmp(m->cached_text, "0.30") == 0 &&
		    strcmp(m->cache_write_text, "3.75") == 0,
		    "cached= and cache_write= between routes");
		m = conf_find_model(c, "p", 1);
		ok(m && m->cached_nano_usd == 2000 &&
		    m->cache_write_nano_usd == 2000 && m->cached_text == NULL &&
		    m->cache_write_text == NULL, "unset: the input price");
	}
	conf_free(c);
	want_err(OPENAI "model c text 3 15 cached=0.3001 openai/x\n",
	    "t.conf:2: bad cached price '0.3001' (USD per 1M tokens, at most "
	    "3 decimals and 1000000, or -)");
	want_err(OPENAI "model c text 3 15 cached=1 cached=2 openai/x\n",
	    "t.conf:2: cached given twice");
	want_err(OPENAI "model c text 3 15 cache_write=1\n",
	    "t.conf:2: model 'c' has no route");
	c = want_ok("");
	ok(c && c->nmodels == 0 && c->nlistens == 1, "empty config");
	conf_free(c);
}

static void
test_load(void)
{
	char err[512];
	struct conf *c;
	const char *path;

	c = conf_load("/nonexistent/relay.conf", err, sizeof err);
	ok(c == NULL && strcmp(err, "/nonexistent/relay.conf: No such file "
	    "or directory") == 0, "load missing: %s", err);
	path = tmpfile_with("relay.conf", OPENAI "bogus\n");
	c = conf_load(path, err, sizeof err);
	ok(c == NULL && strncmp(err, path, strlen(path)) == 0 &&
	    strcmp(err + strlen(path), ":2: unknown directive 'bogus'") == 0,
	    "load names the file: %s", err);
	path = tmpfile_with("relay.conf", OPENAI "model m text 1 2 openai/m\n");
	c = conf_load(path, err, sizeof err);
	ok(c && c->nmodels == 1 && strcmp(c->source, path) == 0,
	    "load parses");
	conf_free(c);
}

int
main(void)
{
	static const char *const names[] = { "empty", "key", "nonl",
	    "cert.pem", "key.pem", "relay.conf" };
	char path[256];
	size_t i;

	if (mkdtemp(tmpdir) == NULL) {
		perror("mkdtemp");
		return 1;
	}
	test_default();
	test_errors();
	test_no_secret_in_errors();
	test_credentials();
	test_providers_routes();
	test_find_model();
	test_wallets();
	test_fleet();
	test_settings();
	test_load();
	for (i = 0; i < sizeof names / sizeof names[0]; i++) {
		snprintf(path, sizeof path, "%s/%s", tmpdir, names[i]);
		unlink(path);
	}
	rmdir(tmpdir);
	return t_done("conf");
}
