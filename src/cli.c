/* cli: argument parsing and the subcommands that do not serve. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "cli.h"
#include "conf.h"
#include "ledger.h"
#include "log.h"
#include "loop.h"
#include "store_rebuild.h"
#include "tls.h"
#include "util.h"

static const char usage[] =
"usage: relay [-c FILE] [-l ADDR:PORT] [--ledger-allow-broken]\n"
"                                        serve (no -c: the embedded default config;\n"
"                                        -l replaces its listen lines)\n"
"       relay check [-c FILE]           validate and print the compiled config\n"
"       relay models [-c FILE]          print the catalog as a table\n"
"       relay key                       print a new client key and its sha256 word\n"
"       relay ledger verify FILE        check a ledger's hash chain\n"
"       relay ledger report FILE... [--by wallet|model|day|node] [--since DATE]\n"
"       relay store rebuild [-c FILE] LEDGER...\n"
"                                        set the store's balances from the ledgers\n"
"       relay version | relay -h\n";

static struct conf *
load(const char *path)
{
	char err[1024];
	struct conf *c;

	c = path ? conf_load(path, err, sizeof(err)) :
	    conf_load_default(err, sizeof(err));
	if (c == NULL) {
		fprintf(stderr, "%s\n", err);
	}
	return c;
}

static const char *listen_override;	/* -l ADDR:PORT, serve only */
static int allow_broken;		/* --ledger-allow-broken */

/* Accept "-c FILE" (or "--config FILE") anywhere in argv[from..], and
 * "-l ADDR:PORT" when serving. */
static int
config_arg(int argc, char **argv, int from, const char **path)
{
	int i;

	*path = NULL;
	for (i = from; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) {
			if (i + 1 >= argc) {
				fprintf(stderr, "relay: -c needs a FILE\n");
				return -1;
			}
			*path = argv[++i];
		} else if (from == 1 &&
		    strcmp(argv[i], "--ledger-allow-broken") == 0) {
			allow_broken = 1;
		} else if (from == 1 && (strcmp(argv[i], "-l") == 0 ||
		    strcmp(argv[i], "--listen") == 0)) {
			if (i + 1 >= argc) {
				fprintf(stderr, "relay: -l needs ADDR:PORT\n");
				return -1;
			}
			listen_override = argv[++i];
		} else {
			fprintf(stderr, "relay: unexpected argument '%s'\n%s",
			    argv[i], usage);
			return -1;
		}
	}
	return 0;
}

static void
print_models(const struct conf *c)
{
	size_t i, j;

	fprintf(stdout, "%-26s %-10s %-12s %10s %10s %11s %11s  %s\n", "alias",
	    "modality", "family", "in $/1M", "out $/1M", "cached $/1M",
	    "write $/1M", "routes");
	for (i = 0; i < c->nmodels; i++) {
		const struct conf_model *m = &c->models[i];

		/* Cache reads and writes cost the input price unless the
		 * model says otherwise: the price in force is shown. */
		fprintf(stdout, "%-26s %-10s %-12s %10s %10s %11s %11s  ", m->alias,
		    conf_modality_name(m->modality), m->family, m->in_text,
		    m->out_text, m->cached_text ? m->cached_text : m->in_text,
		    m->cache_write_text ? m->cache_write_text : m->in_text);
		for (j = 0; j < m->nroutes; j++) {
			fprintf(stdout, "%s%s", j ? " " : "", m->routes[j].text);
		}
		fprintf(stdout, "\n");
	}
}

static int
cmd_check(const char *path)
{
	struct conf *c = load(path);
	size_t i, j;

	if (c == NULL) {
		return 1;
	}
	for (i = 0; i < c->nwarnings; i++) {
		fprintf(stderr, "%s\n", c->warnings[i]);
	}
	fprintf(stdout, "config %s: ok\n", c->source);
	for (i = 0; i < c->nlistens; i++) {
		fprintf(stdout, "listen     %s:%s%s%s\n", c->listens[i].host,
		    c->listens[i].port, c->listens[i].tls ? " tls" : "",
		    c->listens[i].open ? " open=yes" : "");
	}
	fprintf(stdout, "mode       %s\n", conf_open_mode(c) ?
	    "open (no wallet: requests need no key, metered to 'default')" :
	    "wallets (requests need a client key)");
	fprintf(stdout, "ledger     %s sync=%s\n", c->ledger_path,
	    c->ledger_sync == CONF_SYNC_ALWAYS ? "always" :
	    c->ledger_sync == CONF_SYNC_BATCH ? "batch" : "none");
	fprintf(stdout, "currency   %s rate=%llu/%llu\n", c->currency,
	    (unsigned long long)c->rate_num, (unsigned long long)c->rate_den);
	{
		struct tls_anchors ta;
		char err[512];

		if (tls_anchors_load(&ta, c->ca_file, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			conf_free(c);
			return 1;
		}
		fprintf(stdout, "trust      %zu anchors from %s\n",
		    tls_anchors_count(&ta), tls_anchors_source(&ta));
		tls_anchors_free(&ta);
	}
	fprintf(stdout, "timeouts   header=%llums keepalive=%llums connect=%llums "
	    "first_byte=%llums idle=%llums total=%llums\n",
	    (unsigned long long)c->header_timeout_ms,
	    (unsigned long long)c->keepalive_timeout_ms,
	    (unsigned long long)c->connect_timeout_ms,
	    (unsigned long long)c->first_byte_timeout_ms,
	    (unsigned long long)c->idle_timeout_ms,
	    (unsigned long long)c->total_timeout_ms);
	fprintf(stdout, "limits     max_body=%llu max_header=%llu max_conns=%llu\n",
	    (unsigned long long)c->max_body, (unsigned long long)c->max_header,
	    (unsigned long long)c->max_conns);
	for (i = 0; i < c->nproviders; i++) {
		const struct conf_provider *p = &c->providers[i];

		fprintf(stdout, "provider   %s %s auth=%s credentials:", p->name, p->base,
		    conf_auth_name(p->auth));
		if (p->ncreds == 0) {
			fprintf(stdout, " (none)");
		}
		for (j = 0; j < p->ncreds; j++) {
			fprintf(stdout, " %s(%s)", p->creds[j].label, p->creds[j].source);
		}
		fprintf(stdout, "\n");
	}
	for (i = 0; i < c->nwallets; i++) {
		fprintf(stdout, "wallet     %s keys=%zu\n", c->wallets[i].name,
		    c->wallets[i].nkeys);
	}
	fprintf(stdout, "models     %zu\n", c->nmodels);
	print_models(c);
	conf_free(c);
	return 0;
}

static int
cmd_key(void)
{
	static const char b62[] =
	    "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
	unsigned char raw[128], hash[32];
	char hex[65], key[40];
	size_t i, k = 3;

	if (util_random(raw, sizeof(raw)) < 0) {
		fprintf(stderr, "relay: no randomness available\n");
		return 1;
	}
	memcpy(key, "rk-", 3);
	/* Rejection sampling keeps every symbol equally likely. */
	for (i = 0; i < sizeof(raw) && k < 35; i++) {
		if (raw[i] < 248) {
			key[k++] = b62[raw[i] % 62];
		}
	}
	if (k < 35) {
		fprintf(stderr, "relay: not enough randomness\n");
		return 1;
	}
	key[k] = '\0';
	util_sha256(key, k, hash);
	util_hex(hash, 32, hex);
	fprintf(stdout, "key: %s\n", key);
	fprintf(stdout, "key=sha256:%s\n", hex);
	return 0;
}

static int
cmd_ledger(int argc, char **argv)
{
	const char *by = "wallet", *since = NULL, **files;
	char err[512];
	size_t nfiles = 0, bad = 0;
	int i;

	if (argc < 4 || (strcmp(argv[2], "verify") != 0 &&
	    strcmp(argv[2], "report") != 0)) {
		fputs(usage, stderr);
		return 2;
	}
	if (strcmp(argv[2], "verify") == 0) {
		if (argc != 4) {
			fputs(usage, stderr);
			return 2;
		}
		if (ledger_verify_file(argv[3], stdout, err, sizeof(err)) < 0) {
			fprintf(stderr, "%s: %s\n", argv[3], err);
			return 1;
		}
		return 0;
	}
	/* The files, then the options (in any order among them). */
	files = (const char **)calloc((size_t)argc, sizeof(*files));
	if (files == NULL) {
		fprintf(stderr, "relay: out of memory\n");
		return 1;
	}
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--by") == 0 && i + 1 < argc) {
			by = argv[++i];
		} else if (strcmp(argv[i], "--since") == 0 && i + 1 < argc) {
			since = argv[++i];
		} else if (argv[i][0] == '-' && argv[i][1] == '-') {
			fprintf(stderr, "relay: unexpected argument '%s'\n%s",
			    argv[i], usage);
			free(files);
			return 2;
		} else {
			files[nfiles++] = argv[i];
		}
	}
	if (strcmp(by, "wallet") != 0 && strcmp(by, "model") != 0 &&
	    strcmp(by, "day") != 0 && strcmp(by, "node") != 0) {
		fprintf(stderr, "relay: --by wallet|model|day|node\n");
		free(files);
		return 2;
	}
	if (nfiles == 0) {
		fputs(usage, stderr);
		free(files);
		return 2;
	}
	if (ledger_report_files(files, nfiles, by, since, stdout, &bad, err,
	    sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", files[bad], err);
		free(files);
		return 1;
	}
	free(files);
	return 0;
}

/* relay store rebuild [-c FILE] LEDGER... */
static int
cmd_store(int argc, char **argv)
{
	const char *path = NULL, **files;
	char err[512];
	size_t n = 0;
	struct conf *c;
	int i, rc;

	if (argc < 3 || strcmp(argv[2], "rebuild") != 0) {
		fputs(usage, stderr);
		return 2;
	}
	if ((files = (const char **)calloc((size_t)argc,
	    sizeof(*files))) == NULL) {
		fprintf(stderr, "relay: out of memory\n");
		return 1;
	}
	for (i = 3; i < argc; i++) {
		if ((strcmp(argv[i], "-c") == 0 ||
		    strcmp(argv[i], "--config") == 0) && i + 1 < argc) {
			path = argv[++i];
		} else if (argv[i][0] == '-') {
			fprintf(stderr, "relay: unexpected argument '%s'\n%s",
			    argv[i], usage);
			free(files);
			return 2;
		} else {
			files[n++] = argv[i];
		}
	}
	if (n == 0) {
		fputs(usage, stderr);
		free(files);
		return 2;
	}
	if ((c = load(path)) == NULL) {
		free(files);
		return 1;
	}
	rc = store_rebuild(c, files, n, stdout, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "relay: store rebuild: %s\n", err);
	}
	conf_free(c);
	free(files);
	return rc < 0 ? 1 : 0;
}

/* -l replaces the config's listen lines with one plain listener; open
 * mode still keeps it to loopback unless the config said open=yes. */
static int
override_listen(struct conf *c)
{
	const char *colon = strrchr(listen_override, ':');
	char *host, *port;
	size_t hl;
	int open = 0;
	size_t i;

	if (colon == NULL || colon == listen_override || colon[1] == '\0') {
		fprintf(stderr, "relay: -l wants ADDR:PORT, got '%s'\n",
		    listen_override);
		return -1;
	}
	hl = (size_t)(colon - listen_override);
	if (listen_override[0] == '[' && hl > 2 && colon[-1] == ']') {
		host = strndup(listen_override + 1, hl - 2);
	} else {
		host = strndup(listen_override, hl);
	}
	port = strdup(colon + 1);
	if (host == NULL || port == NULL) {
		free(host);
		free(port);
		return -1;
	}
	for (i = 0; i < c->nlistens; i++) {
		open |= c->listens[i].open;
		free(c->listens[i].host);
		free(c->listens[i].port);
		free(c->listens[i].cert_path);
		free(c->listens[i].key_path);
	}
	if (conf_open_mode(c) && !open && strcmp(host, "127.0.0.1") != 0 &&
	    strcmp(host, "::1") != 0 && strcmp(host, "localhost") != 0) {
		fprintf(stderr, "relay: open mode (no wallet lines) serves "
		    "loopback only: -l %s refused\n", listen_override);
		free(host);
		free(port);
		c->nlistens = 0;
		return -1;
	}
	c->nlistens = 1;
	memset(&c->listens[0], 0, sizeof(c->listens[0]));
	c->listens[0].host = host;
	c->listens[0].port = port;
	c->listens[0].open = open;
	return 0;
}

/* The relay holds provider secrets and client keys in memory: no core
 * file and no ptrace by other users of the same uid (SPEC §10). Before
 * any secret is read. */
static void
no_core_dumps(void)
{
	struct rlimit rl = { 0, 0 };

	(void)setrlimit(RLIMIT_CORE, &rl);
#ifdef __linux__
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
#endif
}

int
cli_main(int argc, char **argv)
{
	const char *path = NULL;
	const char *cmd = argc > 1 ? argv[1] : NULL;
	struct conf *c;

	no_core_dumps();
	if (getenv("RELAY_LOG") != NULL) {
		const char *l = getenv("RELAY_LOG");

		log_set_level(strcmp(l, "debug") == 0 ? LOG_DEBUG :
		    strcmp(l, "warn") == 0 ? LOG_WARN :
		    strcmp(l, "error") == 0 ? LOG_ERROR : LOG_INFO);
	}
	if (cmd != NULL && (strcmp(cmd, "-h") == 0 ||
	    strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0)) {
		fputs(usage, stdout);
		return 0;
	}
	if (cmd != NULL && (strcmp(cmd, "version") == 0 ||
	    strcmp(cmd, "--version") == 0)) {
		fprintf(stdout, "relay %s\n", RELAY_VERSION);
		return 0;
	}
	if (cmd != NULL && strcmp(cmd, "check") == 0) {
		if (config_arg(argc, argv, 2, &path) < 0) {
			return 2;
		}
		return cmd_check(path);
	}
	if (cmd != NULL && strcmp(cmd, "models") == 0) {
		if (config_arg(argc, argv, 2, &path) < 0) {
			return 2;
		}
		c = load(path);
		if (c == NULL) {
			return 1;
		}
		print_models(c);
		conf_free(c);
		return 0;
	}
	if (cmd != NULL && strcmp(cmd, "key") == 0) {
		return cmd_key();
	}
	if (cmd != NULL && strcmp(cmd, "ledger") == 0) {
		return cmd_ledger(argc, argv);
	}
	if (cmd != NULL && strcmp(cmd, "store") == 0) {
		return cmd_store(argc, argv);
	}
	if (cmd != NULL && cmd[0] != '-') {
		fprintf(stderr, "relay: unknown command '%s'\n%s", cmd, usage);
		return 2;
	}
	if (config_arg(argc, argv, 1, &path) < 0) {
		return 2;
	}
	c = load(path);
	if (c == NULL) {
		return 1;
	}
	if (listen_override != NULL && override_listen(c) < 0) {
		conf_free(c);
		return 1;
	}
	for (size_t i = 0; i < c->nwarnings; i++) {
		log_warn("%s", c->warnings[i]);
	}
	return loop_run(c, path, allow_broken);
}
