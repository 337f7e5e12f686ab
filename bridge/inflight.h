/* inflight.h - the export window: leases published and awaiting JetStream's ack, by a key. */
#ifndef MQBRIDGE_INFLIGHT_H
#define MQBRIDGE_INFLIGHT_H

/*
 * An open-addressed hash table (linear probing, deletion without tombstones)
 * of at most `window` leases, sized to a power of two at least twice that, so
 * a lookup stays short however the ids fall. Not thread-safe: export.c holds
 * its route's mutex around every call. A slot is free when its lease's
 * deliveries is 0 (libmq never hands out a lease with 0 deliveries).
 */
#include <stddef.h>
#include <stdint.h>

#include "libmq.h"

struct inflight_table {
	mq_lease_t *slots;
	int64_t *stamps; /* each slot's stamp (when it was published) */
	uint64_t *keys;  /* each slot's key (export.c: its natsMsg's address) */
	size_t size;     /* power of two */
	unsigned window; /* most entries held */
	unsigned count;  /* entries held */
};

/* inflight_init: an empty table for up to WINDOW (>= 1) leases. Returns 0, or
 * -1 with errno ENOMEM or EINVAL. */
int inflight_init(struct inflight_table *t, unsigned window);

/* inflight_free: release T's memory. */
void inflight_free(struct inflight_table *t);

/* inflight_put: hold a copy of LEASE under KEY, with STAMP (the caller's:
 * export.c keeps when it published). Returns 0, or -1 with errno: ENOSPC the
 * window is full; EEXIST an entry of the same key is held; EINVAL deliveries 0. */
int inflight_put(struct inflight_table *t, uint64_t key, const mq_lease_t *lease, int64_t stamp);

/* inflight_take: remove the lease held under KEY into *OUT, and its stamp
 * into *STAMP (if not NULL). Returns 0, or -1 with errno ENOENT if none is. */
int inflight_take(struct inflight_table *t, uint64_t key, mq_lease_t *out, int64_t *stamp);

/* inflight_find_lease: the key under which the lease of id ID is held, into
 * *KEY (a scan of the whole table: for the rare lookup by lease). Returns 0,
 * or -1 with errno ENOENT. */
int inflight_find_lease(const struct inflight_table *t, uint64_t id, uint64_t *key);

#endif /* MQBRIDGE_INFLIGHT_H */
