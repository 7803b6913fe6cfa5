/* store_dump: what src/store_scripts.c holds, for tests/store/ (which
 * test the very texts the relay sends).
 *   store_dump lua NAME          the script NAME's text
 *   store_dump nargs NAME        its ARGV count
 *   store_dump keys PREFIX WALLET  the seven keys of WALLET, one a line
 *   store_dump list              the scripts' names
 * Exits 2 on a bad use, 1 when store_key() refuses. */
#include <stdio.h>
#include <string.h>

#include "store_scripts.h"

static const struct store_script_def *
find(const char *name)
{
	size_t k;

	for (k = 0; k < STORE_NSCRIPTS; k++) {
		if (strcmp(store_scripts[k].name, name) == 0) {
			return &store_scripts[k];
		}
	}
	return NULL;
}

int
main(int argc, char **argv)
{
	const struct store_script_def *s = NULL;
	char key[512];
	size_t k;

	if (argc == 2 && strcmp(argv[1], "list") == 0) {
		for (k = 0; k < STORE_NSCRIPTS; k++) {
			printf("%s\n", store_scripts[k].name);
		}
		return 0;
	}
	if (argc == 3 && (s = find(argv[2])) != NULL) {
		if (strcmp(argv[1], "lua") == 0) {
			size_t n = 0;
			const char *lua = store_script_lua(
			    (enum store_script)(s - store_scripts), &n);

			if (lua == NULL) {
				fprintf(stderr, "store_dump: out of memory\n");
				return 1;
			}
			fwrite(lua, 1, n, stdout);
			return 0;
		}
		if (strcmp(argv[1], "nargs") == 0) {
			printf("%u\n", s->nargs);
			return 0;
		}
	}
	if (argc == 4 && strcmp(argv[1], "keys") == 0) {
		for (k = 0; k < STORE_NKEYS; k++) {
			if (store_key(key, sizeof(key), argv[2], argv[3],
			    (enum store_key)k) < 0) {
				return 1;
			}
			printf("%s\n", key);
		}
		return 0;
	}
	fprintf(stderr, "usage: store_dump lua|nargs NAME | keys PREFIX "
	    "WALLET | list\n");
	return 2;
}
