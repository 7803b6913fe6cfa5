#ifndef RELAY_PEERS_H
#define RELAY_PEERS_H
/* Open connections per client address (SPEC §10: limits
 * max_conns_per_ip=). A hash table keyed by the 16-byte address (IPv4 as
 * v4-mapped IPv6), open addressing with linear probing; it grows with the
 * number of addresses, and an address leaves it with its last
 * connection. */
#include <stddef.h>
#include <stdint.h>

struct peers_slot {
	unsigned char addr[16];
	uint32_t count;		/* 0: empty */
};

struct peers {
	struct peers_slot *slots;	/* owned; cap a power of two, or 0 */
	size_t cap;
	size_t used;			/* slots with a count */
};

/* One more connection from addr. Returns its count now, or 0 when out of
 * memory (nothing counted). */
uint32_t peers_add(struct peers *p, const unsigned char addr[16]);

/* One fewer (addr must have been added). */
void peers_del(struct peers *p, const unsigned char addr[16]);

/* Open connections from addr. Test hook: the relay only adds and
 * removes (the count comes back from peers_add). */
uint32_t peers_count(const struct peers *p, const unsigned char addr[16]);

void peers_free(struct peers *p);

#endif
