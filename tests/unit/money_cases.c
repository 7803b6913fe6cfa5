/* Driver for money_ref.py: reads lines
 *   in_tokens in_price out_tokens out_price rate_num rate_den
 * (decimal, one blank between; a price of 18446744073709551615 is
 * CONF_PRICE_NONE) and prints "usd_nano cur_nano", or "overflow" when
 * money_cost_add() or money_convert() refuses. A line it cannot
 * read prints "bad" so the reference sees the mismatch. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "money.h"
#include "util.h"

enum { NFIELDS = 6, INPUT_MAX = 256 };

/* Split line into NFIELDS unsigned numbers. */
static int
read_fields(const char *line, uint64_t v[NFIELDS])
{
	const char *p = line, *sp;
	size_t i, n;

	for (i = 0; i < NFIELDS; i++) {
		sp = strchr(p, i + 1 < NFIELDS ? ' ' : '\n');
		n = sp != NULL ? (size_t)(sp - p) : strlen(p);
		if (util_parse_u64(p, n, &v[i]) < 0) {
			return -1;
		}
		p += n + (sp != NULL);
	}
	return *p == '\0' ? 0 : -1;
}

int
main(void)
{
	char line[INPUT_MAX];
	uint64_t v[NFIELDS], usd, cur;

	while (fgets(line, sizeof line, stdin) != NULL) {
		if (read_fields(line, v) < 0) {
			puts("bad");
		} else if ((usd = 0, money_cost_add(v[0], v[1], &usd)) < 0 ||
		    money_cost_add(v[2], v[3], &usd) < 0 ||
		    money_convert(usd, v[4], v[5], &cur) < 0) {
			puts("overflow");
		} else {
			printf("%" PRIu64 " %" PRIu64 "\n", usd, cur);
		}
	}
	return ferror(stdout) || fflush(stdout) != 0;
}
