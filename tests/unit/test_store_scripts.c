/* Unit tests for store_scripts: the key names, and that each script's
 * text agrees with its table entry (length, the ARGV it reads: exactly
 * ARGV[1..nargs]). The scripts themselves run against a real server in
 * tests/store/test_scripts.py (make test-store). */
#include <stdio.h>

#include "t.h"
#include "store_scripts.h"

static void
test_keys(void)
{
	static const char *const want[STORE_NKEYS] = {
		"relay:{acme}", "relay:{acme}:holds", "relay:{acme}:hexp",
		"relay:{acme}:rpm", "relay:{acme}:tpm", "relay:{acme}:done",
		"relay:{acme}:credits",
	};
	char out[64];
	size_t k;

	for (k = 0; k < STORE_NKEYS; k++) {
		ok_int(store_key(out, sizeof(out), "relay:", "acme",
		    (enum store_key)k), strlen(want[k]), "key length");
		ok_str(out, want[k], "key");
	}
	ok_int(store_key(out, sizeof(out), "", "w", STORE_K_WALLET), 3,
	    "empty prefix");
	ok_str(out, "{w}", "empty prefix");
	ok_int(store_key(out, sizeof(out), "p:", "", STORE_K_WALLET), -1,
	    "empty wallet");
	ok_int(store_key(out, sizeof(out), "p:", "a{b", STORE_K_WALLET), -1,
	    "brace in wallet");
	ok_int(store_key(out, sizeof(out), "p:", "a}b", STORE_K_WALLET), -1,
	    "closing brace in wallet");
	ok_int(store_key(out, sizeof(out), "p:", "w", STORE_NKEYS), -1,
	    "no such key");
	/* "p:{w}:tpm" is 9 bytes: room for 10 with the NUL. */
	ok_int(store_key(out, 10, "p:", "w", STORE_K_TPM), 9, "exact fit");
	ok_int(store_key(out, 9, "p:", "w", STORE_K_TPM), -1, "one short");
}

static void
test_scripts(void)
{
	static const char *const marks[STORE_NSCRIPTS] = {
		"amount(ARGV[3], 'amount')", "amount(ARGV[3], 'charge')",
		"local cid = id(ARGV[2])", "fail('bad balance')",
		"'HMGET', KEYS[1], 'bal', 'held', 'htok'",
	};
	char arg[32];
	size_t k;

	for (k = 0; k < STORE_NSCRIPTS; k++) {
		const struct store_script_def *s = &store_scripts[k];
		size_t len = 0;
		const char *lua = store_script_lua((enum store_script)k, &len);

		ok(s->name != NULL && lua != NULL, "script %zu", k);
		if (lua == NULL) {
			continue;
		}
		ok_int(strlen(lua), len, s->name);
		/* Unpacked from the build's packed texts: the helpers, then
		 * this script's own body and no other's. */
		ok(strstr(lua, marks[k]) != NULL, "%s: its own body", s->name);
		ok(k == 0 || strstr(lua, marks[0]) == NULL,
		    "%s: not hold's body", s->name);
		ok(store_script_lua((enum store_script)k, &len) == lua,
		    "%s: built once", s->name);
		ok(strncmp(lua, "local B = ", 10) == 0 &&
		    lua[len - 1] == '\n', "%s: prelude, last line",
		    s->name);
		ok(strstr(lua, "KEYS[8]") == NULL, "%s: seven keys",
		    s->name);
		snprintf(arg, sizeof(arg), "ARGV[%u]", s->nargs);
		ok(strstr(lua, arg) != NULL, "%s reads %s", s->name, arg);
		snprintf(arg, sizeof(arg), "ARGV[%u]", s->nargs + 1);
		ok(strstr(lua, arg) == NULL, "%s does not read %s", s->name,
		    arg);
		/* Redis Lua may not make globals; a tab or a double quote
		 * would say the text was not written as the others. */
		ok(strchr(lua, '\t') == NULL && strchr(lua, '"') == NULL,
		    "%s: plain text", s->name);
	}
	{
		size_t len;

		ok(store_script_lua(STORE_NSCRIPTS, &len) == NULL,
		    "no such script");
	}
	ok_str(store_scripts[STORE_HOLD].name, "hold", "hold");
	ok_str(store_scripts[STORE_SETTLE].name, "settle", "settle");
	ok_str(store_scripts[STORE_CREDIT].name, "credit", "credit");
	ok_str(store_scripts[STORE_REBUILD].name, "rebuild", "rebuild");
}

int
main(void)
{
	test_keys();
	test_scripts();
	return t_done("store_scripts");
}
