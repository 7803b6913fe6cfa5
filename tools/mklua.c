/* mklua: build-time tool. Writes C source with the shared store's Lua
 * scripts (src/store_scripts.c, included below with their texts) packed
 * by tools/lz.h: store_lua_lz[] holds the helpers every script starts
 * with, then each script's body in enum store_script order;
 * store_lua_end[k] is where body k ends in the unpacked text (the helpers
 * end at store_lua_start). The relay unpacks them on first use
 * (store_script_lua()), so the binary carries a third of their bytes.
 * Built with the host's compiler: the output does not depend on the
 * target.
 *
 * Usage: mklua > store_lua.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lz.h"

#define STORE_SCRIPTS_TEXTS
#include "../src/store_scripts.c"

int
main(void)
{
	size_t n = sizeof(prelude) - 1, k, outlen = 0, end[STORE_NSCRIPTS];
	unsigned char *in, *out;

	for (k = 0; k < STORE_NSCRIPTS; k++) {
		n += texts[k].len;
	}
	if ((in = malloc(n)) == NULL) {
		fprintf(stderr, "mklua: out of memory\n");
		return 1;
	}
	memcpy(in, prelude, sizeof(prelude) - 1);
	n = sizeof(prelude) - 1;
	for (k = 0; k < STORE_NSCRIPTS; k++) {
		memcpy(in + n, texts[k].body, texts[k].len);
		n += texts[k].len;
		end[k] = n;
	}
	if ((out = lz_pack(in, n, &outlen)) == NULL) {
		fprintf(stderr, "mklua: out of memory\n");
		return 1;
	}
	printf("/* generated from src/store_scripts.c by tools/mklua; do not "
	    "edit */\n#include <stddef.h>\n#include \"store_scripts.h\"\n"
	    "const unsigned char store_lua_lz[] = {");
	for (k = 0; k < outlen; k++) {
		printf("%s0x%02x,", k % 12 ? "" : "\n\t", out[k]);
	}
	printf("\n};\nconst size_t store_lua_lz_len = %zu;\n"
	    "const size_t store_lua_start = %zu;\n"
	    "const size_t store_lua_end[STORE_NSCRIPTS] = {", outlen,
	    sizeof(prelude) - 1);
	for (k = 0; k < STORE_NSCRIPTS; k++) {
		printf(" %zu,", end[k]);
	}
	printf(" };\n");
	free(in);
	free(out);
	return ferror(stdout) ? 1 : 0;
}
