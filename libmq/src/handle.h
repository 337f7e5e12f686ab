/*
 * handle.h - struct mq, the per-process handle behind mq_t, and the internal
 * calls shared by libmq's modules.
 *
 * A handle owns one open file description of the segment (the fd): client
 * liveness is an OFD lock on that description, so it dies with the process,
 * whatever the process's threads do. The fd is close-on-exec, and a handle is
 * not meant to be used across fork(): the child attaches its own.
 *
 * The geometry and the addresses of the arrays are copied into the handle
 * when the segment is validated: the data path never addresses memory through
 * a value another process could rewrite; every index read from the segment
 * is masked or checked against these copies before use.
 */
#ifndef LIBMQ_HANDLE_H
#define LIBMQ_HANDLE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "libmq.h"
#include "segment.h"

struct mq {
	struct mq_shm *shm;
	size_t map_size;
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t chunk_size;
	uint64_t ring_mask; /* ring_size - 1 */
	uint32_t flags;     /* MQ_SEG_* */
	_Atomic uint64_t *ring;
	_Atomic uint64_t *pool;
	_Atomic uint32_t *requeue;
	unsigned char *chunks;
	int fd;
	int client;     /* index in the client table, -1 for an observer */
	uint32_t token; /* lock/chunk owner token, 0 if this handle may not lock */
	_Atomic unsigned spin_us;
	/* Interrupts (mq_interrupt): bumped by each; intr_seen is the last one a
	 * call has answered with EINTR, so one that found no call waiting is
	 * still pending for the next wait. */
	_Atomic uint32_t intr;
	_Atomic uint32_t intr_seen;
	/* Set by the SIGBUS guard when the file shrank under the mapping. */
	_Atomic int damaged;
	/* Whether a thread of this process holds each side's lock: a lock word
	 * that shows our token while we hold nothing was forged. */
	_Atomic int holds_send, holds_recv;
	/* Per side: a lock word naming a live client that says it holds
	 * nothing, and since when this handle has seen it so (lock.c), kept
	 * across calls so that short timeouts do not restart the clock. */
	_Atomic uint32_t forged_word[2];
	_Atomic int64_t forged_since[2], forged_last[2];
	/* mq_pollfd's descriptors and watcher threads (pollfd.c), NULL until
	 * the first mq_pollfd. */
	_Atomic(struct mq_poll *) poll;
	/* Time in queue (tiq.h): the segment's section, its clock (0: not
	 * usable here), ns per tick, and whether this handle stamps and
	 * measures (MQ_TIME_IN_QUEUE=0 turns it off). */
	struct mq_tiq *tiq;
	uint32_t tiq_clock;
	int tiq_on;
	double tiq_ns_per_tick;
	/* Measurements not yet added to the histogram (tiq.h), under the
	 * receive lock: times in queue in ticks, and when the first was taken. */
	uint64_t tiq_pend[32];
	unsigned tiq_npend;
	uint64_t tiq_first, tiq_flush_ticks;
	/* Sends (under the send lock): rounds left unstamped before the next
	 * stamp, the period of stamps (1..16), the last stamp, and the ticks
	 * per message above which a producer counts as slow (1 us). */
	unsigned tiq_skip, tiq_period;
	uint64_t tiq_last, tiq_slow_ticks;
	char name[MQ_NAME_MAX + 1];
};

/* handle_chunk: chunk IDX (< capacity). */
static inline struct mq_chunk *handle_chunk(const struct mq *q, uint64_t idx)
{
	return (struct mq_chunk *)(q->chunks + idx * q->chunk_size);
}

/* handle_payload: the payload bytes of chunk IDX. */
static inline unsigned char *handle_payload(const struct mq *q, uint64_t idx)
{
	return q->chunks + idx * q->chunk_size + sizeof(struct mq_chunk);
}

/* handle_lifo: whether Q's pool is a stack under the receive lock. */
static inline bool handle_lifo(const struct mq *q)
{
	return q->flags & MQ_SEG_LIFO;
}

/* Ring entries: (seq32 << 32) | chunk. */
static inline uint64_t entry_make(uint64_t pos, uint32_t idx)
{
	return ((uint64_t)(uint32_t)(pos + 1) << 32) | idx;
}
static inline uint32_t entry_seq(uint64_t e)
{
	return (uint32_t)(e >> 32);
}
static inline uint32_t entry_idx(uint64_t e)
{
	return (uint32_t)e;
}
/* entry_ready: whether E commits position POS. */
static inline bool entry_ready(uint64_t e, uint64_t pos)
{
	return entry_seq(e) == (uint32_t)(pos + 1);
}

/* Flags for attach_open. */
#define MQ_OPEN_OBSERVE 1 /* do not register in the client table (broker, mqctl stats) */

/* attach_open: mq_attach with FLAGS; same errors. */
mq_t *attach_open(const char *name, int flags);

/* attach_create: mq_create with FLAGS; same errors. */
mq_t *attach_create(const char *name, size_t capacity, size_t max_msg, mode_t mode, int flags);

/* attach_name_valid: whether NAME is a valid queue name. */
int attach_name_valid(const char *name);

/* handle_damaged: if Q's mapping was found truncated (SIGBUS guard) or its
 * header no longer checks out, set errno EPROTO with the reason and return
 * -1; else 0. Costs a syscall (fstat) only with CHECK_FILE. */
int handle_check_slow(struct mq *q, bool check_file);
static inline int handle_check(struct mq *q, bool check_file)
{
	/* The fast path (no file check, nothing found): one load of our own. */
	if (!check_file && !atomic_load_explicit(&q->damaged, memory_order_relaxed))
		return 0;
	return handle_check_slow(q, check_file);
}

#endif /* LIBMQ_HANDLE_H */
