/* libFuzzer harness for src/conf.c: conf_parse on every input, then the
 * lookups on what it built, and conf_free (LeakSanitizer checks that it
 * releases everything, on success and on every error path).
 *
 * conf_parse reads env: and file: secrets and checks that ca_file, cert
 * and key paths open: FUZZ_KEY is set to a known secret for env:, and an
 * input naming anything with "dev" in it is skipped so that the fuzzer
 * never opens a device file.
 *
 * Invariants checked besides memory safety:
 *  - an error is one line "fuzz.conf:LINE: message" or "fuzz.conf: ..."
 *    inside the buffer, and so is every warning;
 *  - the secret behind env:FUZZ_KEY appears in no error or warning (when
 *    the input does not itself contain it);
 *  - models are sorted strictly by alias and conf_find_model finds each
 *    one; every route names an existing provider; the rate denominator
 *    is a power of ten; open mode means no wallets. */
#define _GNU_SOURCE
#include <stdlib.h>

#include "conf.h"
#include "fuzz.h"

#define NAME "fuzz.conf"
#define SECRET "sk-FUZZ-secret-0123456789"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	setenv("FUZZ_KEY", SECRET, 1);
	setenv("FUZZ_EMPTY", "", 1);
	return 0;
}

static void
check_message(const char *m, int secret_in_input)
{
	CHECK(m != NULL);
	CHECK(strncmp(m, NAME ":", sizeof NAME) == 0);
	CHECK(strchr(m, '\n') == NULL);
	if (!secret_in_input) {
		CHECK(strstr(m, SECRET) == NULL);
	}
}

static void
check_conf(const struct conf *c, int secret_in_input)
{
	uint64_t d;
	size_t i, k;
	unsigned char zero[32] = { 0 };
	long w;

	CHECK(c->nlistens >= 1);
	for (i = 0; i < c->nlistens; i++) {
		CHECK(c->listens[i].host != NULL && c->listens[i].port != NULL);
	}
	CHECK(c->ledger_path != NULL && c->ledger_path[0] != '\0');
	CHECK(c->rate_den > 0);
	for (d = c->rate_den; d % 10 == 0; d /= 10) {
	}
	CHECK(d == 1);
	CHECK(strlen(c->currency) == strlen(c->currency_lower));
	for (i = 0; i < c->nproviders; i++) {
		const struct conf_provider *p = &c->providers[i];

		CHECK(p->name && p->base && p->host && p->port &&
		    p->host_header && p->path);
		CHECK(conf_auth_name(p->auth) != NULL);
		for (k = 0; k < p->ncreds; k++) {
			CHECK(p->creds[k].label && p->creds[k].secret &&
			    p->creds[k].source);
			CHECK(strstr(p->creds[k].source, SECRET) == NULL ||
			    secret_in_input);
		}
	}
	for (i = 0; i < c->nmodels; i++) {
		const struct conf_model *m = &c->models[i];

		CHECK(m->alias != NULL && m->family != NULL);
		if (i > 0) {
			CHECK(strcmp(c->models[i - 1].alias, m->alias) < 0);
		}
		CHECK(conf_find_model(c, m->alias, strlen(m->alias)) == m);
		CHECK(conf_modality_name(m->modality) != NULL);
		for (k = 0; k < m->nroutes; k++) {
			CHECK(m->routes[k].provider < c->nproviders);
			CHECK(m->routes[k].upstream_model != NULL &&
			    m->routes[k].text != NULL);
		}
	}
	CHECK(conf_find_model(c, "", 0) == NULL);
	CHECK(conf_open_mode(c) == (c->nwallets == 0));
	w = conf_find_wallet(c, zero);
	CHECK(w >= -1 && w < (long)c->nwallets);
	for (i = 0; i < c->nwarnings; i++) {
		check_message(c->warnings[i], secret_in_input);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512], *text;
	struct conf *c;
	int secret_in_input;

	if (memmem(data, size, "dev", 3) != NULL) {
		return 0;
	}
	secret_in_input = memmem(data, size, SECRET, sizeof SECRET - 1) !=
	    NULL;
	text = fuzz_dup(data, size);
	memset(err, 'x', sizeof err);
	err[sizeof err - 1] = '\0';
	c = conf_parse(text, size, NAME, err, sizeof err);
	if (c == NULL) {
		check_message(err, secret_in_input);
	} else {
		check_conf(c, secret_in_input);
		conf_free(c);
	}
	free(text);
	return 0;
}
