/* peers: connections per client address (see peers.h). */
#include <stdlib.h>
#include <string.h>

#include "peers.h"

static size_t
hash(const unsigned char a[16], size_t mask)
{
	uint64_t h = 0xcbf29ce484222325ull;
	int i;

	for (i = 0; i < 16; i++) {
		h = (h ^ a[i]) * 0x100000001b3ull;
	}
	return (size_t)(h ^ (h >> 29)) & mask;
}

/* The slot of addr, or the empty slot where it would go. */
static struct peers_slot *
find(const struct peers *p, const unsigned char a[16])
{
	size_t mask = p->cap - 1, i = hash(a, mask);

	while (p->slots[i].count != 0 &&
	    memcmp(p->slots[i].addr, a, 16) != 0) {
		i = (i + 1) & mask;
	}
	return &p->slots[i];
}

/* Double the table (at least 64 slots), keeping at most half full. */
static int
grow(struct peers *p)
{
	struct peers old = *p;
	size_t ncap = p->cap ? p->cap * 2 : 64, i;

	if ((p->slots = calloc(ncap, sizeof(*p->slots))) == NULL) {
		*p = old;
		return -1;
	}
	p->cap = ncap;
	for (i = 0; i < old.cap; i++) {
		if (old.slots[i].count != 0) {
			*find(p, old.slots[i].addr) = old.slots[i];
		}
	}
	free(old.slots);
	return 0;
}

uint32_t
peers_add(struct peers *p, const unsigned char addr[16])
{
	struct peers_slot *s;

	if ((p->used + 1) * 2 > p->cap && grow(p) < 0) {
		return 0;
	}
	s = find(p, addr);
	if (s->count == 0) {
		memcpy(s->addr, addr, 16);
		p->used++;
	}
	return ++s->count;
}

uint32_t
peers_count(const struct peers *p, const unsigned char addr[16])
{
	return p->cap == 0 ? 0 : find(p, addr)->count;
}

void
peers_del(struct peers *p, const unsigned char addr[16])
{
	size_t mask, i, j, k;
	struct peers_slot *s;

	if (p->cap == 0 || (s = find(p, addr))->count == 0 ||
	    --s->count != 0) {
		return;
	}
	p->used--;
	/* Backward-shift deletion: later slots of the same probe run move
	 * up, so no search stops early at the hole. */
	mask = p->cap - 1;
	i = (size_t)(s - p->slots);
	j = i;
	for (;;) {
		j = (j + 1) & mask;
		if (p->slots[j].count == 0) {
			break;
		}
		k = hash(p->slots[j].addr, mask);
		/* Move j into the hole at i unless its home k lies
		 * cyclically in (i, j]. */
		if ((i <= j) ? (i < k && k <= j) : (i < k || k <= j)) {
			continue;
		}
		p->slots[i] = p->slots[j];
		i = j;
	}
	p->slots[i].count = 0;
}

void
peers_free(struct peers *p)
{
	free(p->slots);
	memset(p, 0, sizeof(*p));
}
