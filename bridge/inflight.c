/* inflight.c - the export window's table of leases awaiting their PubAck (inflight.h). */
#include <errno.h>
#include <stdlib.h>

#include "inflight.h"

static size_t home(const struct inflight_table *t, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 32) & (t->size - 1);
}

/* find: the slot holding KEY, or the free slot where it would go. */
static size_t find(const struct inflight_table *t, uint64_t key)
{
	size_t i = home(t, key);
	while (t->slots[i].deliveries && t->keys[i] != key)
		i = (i + 1) & (t->size - 1);
	return i;
}

int inflight_init(struct inflight_table *t, unsigned window)
{
	if (window == 0) {
		errno = EINVAL;
		return -1;
	}
	t->size = 2;
	while (t->size < 2 * (size_t)window)
		t->size *= 2;
	t->window = window;
	t->count = 0;
	t->slots = calloc(t->size, sizeof(*t->slots));
	t->stamps = calloc(t->size, sizeof(*t->stamps));
	t->keys = calloc(t->size, sizeof(*t->keys));
	if (t->slots && t->stamps && t->keys)
		return 0;
	inflight_free(t);
	errno = ENOMEM;
	return -1;
}

void inflight_free(struct inflight_table *t)
{
	free(t->slots);
	free(t->stamps);
	free(t->keys);
	t->slots = NULL;
	t->stamps = NULL;
	t->keys = NULL;
}

int inflight_put(struct inflight_table *t, uint64_t key, const mq_lease_t *lease, int64_t stamp)
{
	if (lease->deliveries == 0) {
		errno = EINVAL;
		return -1;
	}
	if (t->count >= t->window) {
		errno = ENOSPC;
		return -1;
	}
	size_t i = find(t, key);
	if (t->slots[i].deliveries) {
		errno = EEXIST;
		return -1;
	}
	t->slots[i] = *lease;
	t->stamps[i] = stamp;
	t->keys[i] = key;
	t->count++;
	return 0;
}

int inflight_take(struct inflight_table *t, uint64_t key, mq_lease_t *out, int64_t *stamp)
{
	size_t mask = t->size - 1, i = find(t, key), j = i;
	if (!t->slots[i].deliveries) {
		errno = ENOENT;
		return -1;
	}
	*out = t->slots[i];
	if (stamp)
		*stamp = t->stamps[i];
	t->slots[i].deliveries = 0;
	t->count--;
	/* Knuth's algorithm R: move back each later entry of the probe run whose
	 * home is not cyclically in (i, j], so no lookup stops at the hole. */
	for (;;) {
		j = (j + 1) & mask;
		if (!t->slots[j].deliveries)
			return 0;
		size_t h = home(t, t->keys[j]);
		if (i < j ? (h <= i || h > j) : (h <= i && h > j)) {
			t->slots[i] = t->slots[j];
			t->stamps[i] = t->stamps[j];
			t->keys[i] = t->keys[j];
			t->slots[j].deliveries = 0;
			i = j;
		}
	}
}

int inflight_find_lease(const struct inflight_table *t, uint64_t id, uint64_t *key)
{
	for (size_t i = 0; i < t->size; i++)
		if (t->slots[i].deliveries && t->slots[i].id == id) {
			*key = t->keys[i];
			return 0;
		}
	errno = ENOENT;
	return -1;
}
