/* Unit tests for peers: connections counted per address, against a plain
 * array model under random adds and removes (deletion keeps every other
 * address findable). */
#include <stdlib.h>
#include <string.h>

#include "peers.h"
#include "t.h"

static void
addr_of(unsigned n, unsigned char a[16])
{
	memset(a, 0, 16);
	a[10] = a[11] = 0xff;	/* v4-mapped */
	a[12] = 10;
	a[13] = (unsigned char)(n >> 16);
	a[14] = (unsigned char)(n >> 8);
	a[15] = (unsigned char)n;
}

int
main(void)
{
	static uint32_t model[3000];
	struct peers p;
	unsigned char a[16];
	unsigned i, step, bad = 0;

	memset(&p, 0, sizeof(p));
	addr_of(1, a);
	ok_int(peers_count(&p, a), 0, "empty: none");
	ok_int(peers_add(&p, a), 1, "first connection");
	ok_int(peers_add(&p, a), 2, "second from the same address");
	addr_of(2, a);
	ok_int(peers_add(&p, a), 1, "another address");
	addr_of(1, a);
	peers_del(&p, a);
	ok_int(peers_count(&p, a), 1, "one left");
	peers_del(&p, a);
	ok_int(peers_count(&p, a), 0, "gone with its last connection");
	ok_int(p.used, 1, "one address in the table");
	addr_of(2, a);
	peers_del(&p, a);
	ok_int(p.used, 0, "empty again");

	srand(7);
	for (step = 0; step < 200000; step++) {
		unsigned k = (unsigned)rand() % 3000;

		addr_of(k, a);
		if (model[k] > 0 && rand() % 2) {
			peers_del(&p, a);
			model[k]--;
		} else {
			model[k]++;
			if (peers_add(&p, a) != model[k]) {
				bad++;
			}
		}
	}
	for (i = 0; i < 3000; i++) {
		addr_of(i, a);
		bad += peers_count(&p, a) != model[i];
	}
	ok_int(bad, 0, "200,000 random adds and removes agree with the model");
	for (i = 0; i < 3000; i++) {
		addr_of(i, a);
		while (model[i]-- > 0) {
			peers_del(&p, a);
		}
	}
	ok_int(p.used, 0, "all removed");
	peers_free(&p);
	return t_done("peers");
}
