/* ledger_table: wallet balances, today's counters and async tasks, as
 * replay rebuilds them from the ledger's lines and the writers keep them
 * up to date.
 *
 * Wallets are an array sorted by name (a relay has a handful; a binary
 * search finds one per request). Tasks stay in ledger order, which is
 * the order ledger_task_next_open() hands them out in, with an
 * open-addressing hash index by id beside them.
 *
 * What it does not do: read or write the ledger file, or decide whether a
 * change is allowed (the callers check a task is charged once and a
 * balance stays in range).
 *
 * Ownership: the table owns the wallet and task arrays, each wallet's
 * name, each task's string block (task.mem) and the index;
 * ledger_table_free() is the single release site. */
#include <stdlib.h>
#include <string.h>

#include "ledger_table.h"
#include "util.h"

void
ledger_table_free(struct ledger_table *t)
{
	size_t i;

	for (i = 0; i < t->nwallets; i++) {
		free(t->wallets[i].name);
		free(t->wallets[i].recent);
	}
	for (i = 0; i < t->ntasks; i++) {
		free(t->tasks[i].mem);
	}
	free(t->wallets);
	free(t->tasks);
	free(t->task_slots);
	memset(t, 0, sizeof *t);
}

struct ledger_wallet *
ledger_table_wallet_add(struct ledger_table *t, const char *name)
{
	struct ledger_wallet *w;
	size_t i;
	char *copy;
	int found;

	i = ledger_table_wallet_pos(t, name, &found);
	w = util_grow(t->wallets, &t->cap_wallets, t->nwallets + 1, sizeof *w);
	if (w == NULL) {
		return NULL;
	}
	t->wallets = w;
	if ((copy = strdup(name)) == NULL) {
		return NULL;
	}
	memmove(&t->wallets[i + 1], &t->wallets[i],
	    (t->nwallets - i) * sizeof *t->wallets);
	t->nwallets++;
	w = &t->wallets[i];
	memset(w, 0, sizeof *w);
	w->name = copy;
	return w;
}

void
ledger_table_new_day(struct ledger_table *t, const char *day)
{
	size_t i;

	for (i = 0; i < t->nwallets; i++) {
		t->wallets[i].today_nano = 0;
		t->wallets[i].today_requests = 0;
	}
	memcpy(t->today, day, 10);
	t->today[10] = '\0';
}

/* FNV-1a: task ids come from the provider, but the table only ever holds
 * ids our own wallets created, so a simple hash is enough. */
static uint32_t
hash_id(const char *s)
{
	uint32_t h = 2166136261u;

	while (*s != '\0') {
		h = (h ^ (unsigned char)*s++) * 16777619u;
	}
	return h;
}

struct ledger_task *
ledger_table_task_find(const struct ledger_table *t, const char *id)
{
	size_t i, mask;

	if (t->cap_slots == 0) {
		return NULL;
	}
	mask = t->cap_slots - 1;
	for (i = hash_id(id) & mask; t->task_slots[i] != 0;
	    i = (i + 1) & mask) {
		if (strcmp(t->tasks[t->task_slots[i] - 1].id, id) == 0) {
			return &t->tasks[t->task_slots[i] - 1];
		}
	}
	return NULL;
}

/* Keep the index at most half full: linear probing stays short. */
static int
task_index_grow(struct ledger_table *t)
{
	size_t ncap = t->cap_slots ? t->cap_slots * 2 : 64, i, j;
	uint32_t *slots;

	if (ncap > UINT32_MAX) {
		return -1;
	}
	if ((slots = calloc(ncap, sizeof *slots)) == NULL) {
		return -1;
	}
	for (i = 0; i < t->ntasks; i++) {
		j = hash_id(t->tasks[i].id) & (ncap - 1);
		while (slots[j] != 0) {
			j = (j + 1) & (ncap - 1);
		}
		slots[j] = (uint32_t)(i + 1);
	}
	free(t->task_slots);
	t->task_slots = slots;
	t->cap_slots = ncap;
	return 0;
}

/* Put task i (its id) into the index, which has room. */
static void
index_put(struct ledger_table *t, size_t i)
{
	size_t j = hash_id(t->tasks[i].id) & (t->cap_slots - 1);

	while (t->task_slots[j] != 0) {
		j = (j + 1) & (t->cap_slots - 1);
	}
	t->task_slots[j] = (uint32_t)(i + 1);
}

int
ledger_table_task_add(struct ledger_table *t, const struct ledger_task *in,
    long day, uint64_t line)
{
	const char *src[5];
	const char **dst[5];
	struct ledger_task *k;
	size_t len[5], total = 0, i;
	char *mem, *p;

	if ((t->ntasks + 1) * 2 > t->cap_slots && task_index_grow(t) < 0) {
		return -1;
	}
	k = util_grow(t->tasks, &t->cap_tasks, t->ntasks + 1, sizeof *k);
	if (k == NULL) {
		return -1;
	}
	t->tasks = k;
	k = &t->tasks[t->ntasks];
	memset(k, 0, sizeof *k);
	src[0] = in->id;
	src[1] = in->wallet;
	src[2] = in->model != NULL ? in->model : "";
	src[3] = in->route;
	src[4] = in->cred != NULL ? in->cred : "";
	dst[0] = &k->id;
	dst[1] = &k->wallet;
	dst[2] = &k->model;
	dst[3] = &k->route;
	dst[4] = &k->cred;
	for (i = 0; i < 5; i++) {
		len[i] = strlen(src[i]) + 1;
		total += len[i];
	}
	if ((mem = malloc(total)) == NULL) {
		return -1;
	}
	for (p = mem, i = 0; i < 5; p += len[i], i++) {
		memcpy(p, src[i], len[i]);
		*dst[i] = p;
	}
	k->mem = mem;
	k->kind = in->kind;
	k->charged = in->kind == LEDGER_OBJ_PLAIN;
	k->day = day;
	k->line = line;
	index_put(t, t->ntasks++);
	return 0;
}

size_t
ledger_table_task_forget(struct ledger_table *t, long min_day, size_t max)
{
	size_t i, kept = 0, over = 0, gone;

	if (t->ntasks > max) {
		over = t->ntasks - max + max / 10;
	}
	for (i = 0; i < t->ntasks; i++) {
		struct ledger_task *k = &t->tasks[i];
		int go = k->charged && (k->day < min_day || over > 0);

		if (go) {
			if (over > 0) {
				over--;
			}
			free(k->mem);
		} else {
			t->tasks[kept++] = *k;
		}
	}
	gone = t->ntasks - kept;
	if (gone == 0) {
		return 0;
	}
	t->ntasks = kept;
	memset(t->task_slots, 0, t->cap_slots * sizeof *t->task_slots);
	for (i = 0; i < kept; i++) {
		index_put(t, i);
	}
	return gone;
}
