/*
 * json_scan: json_scan_request in a loop over a 295-byte chat body, to
 * count the instructions one scan costs (not part of make bench):
 *
 *   make relay
 *   musl-gcc -std=c99 -Os -Isrc -static -o build/json_scan \
 *       bench/json_scan.c build/json.o build/util.o build/sha256.o \
 *       build/libbearssl.a
 *   for k in 1000 2000; do valgrind --tool=callgrind \
 *       --callgrind-out-file=/dev/null build/json_scan $k 2>&1 | grep refs; done
 *
 * (refs at 2000 - refs at 1000) / 1000 is the cost of one scan.
 */
#include <stdio.h>
#include <stdlib.h>

#include "json.h"

static const char body[] =
    "{\"model\":\"bench-model\",\"messages\":[{\"role\":\"system\","
    "\"content\":\"You are a concise assistant.\"},{\"role\":\"user\","
    "\"content\":\"In two sentences, explain why an API relay keeps "
    "upstream connections alive between requests, and what it costs in "
    "memory.\"}],\"max_tokens\":64,\"temperature\":0.2,\"stream\":false}";

int
main(int argc, char **argv)
{
	long iter = argc > 1 ? atol(argv[1]) : 1000, i;
	struct json_request r;
	int sum = 0;

	for (i = 0; i < iter; i++) {
		sum += json_scan_request(body, sizeof body - 1, &r);
	}
	printf("%zu bytes, %ld scans, result %d, model %.*s, max_tokens %d/%llu\n",
	    sizeof body - 1, iter, sum, (int)r.model.n, r.model.p,
	    r.has_max_tokens, (unsigned long long)r.max_tokens);
	return 0;
}
