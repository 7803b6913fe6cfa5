/* lzpack: build-time tool. Packs a file with tools/lz.h (util_unlz in
 * src/util.h says the format) and writes C source defining NAME_lz[] (the
 * packed bytes), NAME_lz_len and NAME_len (the file's length), for data
 * the relay unpacks when it needs it (the embedded default config).
 * Built with the host's compiler: the output does not depend on the
 * target.
 *
 * Usage: lzpack FILE NAME > out.c */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lz.h"

int
main(int argc, char **argv)
{
	unsigned char *in = NULL, *out = NULL, *np = NULL;
	size_t n = 0, cap = 0, k, outlen = 0;
	FILE *f = NULL;

	if (argc != 3) {
		fprintf(stderr, "usage: lzpack FILE NAME > out.c\n");
		return 2;
	}
	f = fopen(argv[1], "rb");
	if (f == NULL) {
		perror(argv[1]);
		return 1;
	}
	for (;;) {
		if (n == cap) {
			cap = cap ? 2 * cap : 4096;
			np = realloc(in, cap);
			if (np == NULL) {
				fprintf(stderr, "lzpack: out of memory\n");
				return 1;
			}
			in = np;
		}
		k = fread(in + n, 1, cap - n, f);
		if (k == 0) {
			break;
		}
		n += k;
	}
	if (ferror(f)) {
		fprintf(stderr, "lzpack: %s: read error\n", argv[1]);
		return 1;
	}
	fclose(f);
	out = lz_pack(in, n, &outlen);
	if (out == NULL) {
		fprintf(stderr, "lzpack: out of memory\n");
		return 1;
	}
	printf("/* generated from %s by tools/lzpack; do not edit */\n"
	    "#include <stddef.h>\nconst unsigned char %s_lz[] = {", argv[1],
	    argv[2]);
	for (k = 0; k < outlen; k++) {
		printf("%s0x%02x,", k % 12 ? "" : "\n\t", out[k]);
	}
	printf("%s};\nconst size_t %s_lz_len = %zu;\n"
	    "const size_t %s_len = %zu;\n", outlen ? "\n" : "0", argv[2],
	    outlen, argv[2], n);
	free(in);
	free(out);
	return ferror(stdout) ? 1 : 0;
}
