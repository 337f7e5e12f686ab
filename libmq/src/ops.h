/*
 * ops.h - the moves a message makes between the ring, the pool, the requeue
 * ring and its holders, shared by the data-path modules:
 *
 *   queue.c    mq_send, mq_recv and the batches; waiting
 *   lease.c    mq_recv_lease, mq_peek, mq_ack, mq_nack
 *   zcopy.c    mq_reserve, mq_commit, mq_cancel
 *   reap.c     giving back what dead clients held
 *   repair.c   finishing or undoing a dead lock holder's operation
 *
 * Each call here is made with the named lock held and does one step; the
 * callers write the side's intent record before the first store and clear it
 * after the last, so that repair.c can tell how far a dead holder got. Every
 * value read from the segment is checked where it is used; a check that fails
 * sets errno EPROTO with the detail and the call returns -1 (or
 * OP_DAMAGED), changing nothing.
 */
#ifndef LIBMQ_OPS_H
#define LIBMQ_OPS_H

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "atomics.h"
#include "handle.h"
#include "interrupt.h"
#include "wait.h"

#define OP_NONE    UINT32_MAX       /* nothing there (empty, full) */
#define OP_DAMAGED (UINT32_MAX - 1) /* a check failed: errno EPROTO, the detail set */

/* damaged: record "queue NAME: damaged: WHY" as errno EPROTO; returns -1. */
int damaged(struct mq *q, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* intent_begin: record OP (fields already stored) on SIDE. */
static inline void intent_begin(struct mq_intent *in, uint32_t op)
{
	/* Pairs with the acquire load in repair_side: the fields come first. */
	mq_store_release(&in->op, op);
}

/* intent_end: the operation on SIDE is complete. */
static inline void intent_end(struct mq_intent *in)
{
	mq_store_release(&in->op, MQ_OP_NONE);
}

/* chunk_check: whether chunk IDX exists and is in state WANT (kind and owner)
 * at position POS (UINT64_MAX: any). Sets the EPROTO detail (naming WHERE)
 * and returns false if not. */
bool chunk_check_slow(struct mq *q, uint64_t idx, uint64_t want, uint64_t pos, const char *where);
static inline bool chunk_check(struct mq *q, uint64_t idx, uint64_t want, uint64_t pos,
                               const char *where)
{
	if (idx < q->capacity) {
		struct mq_chunk *c = handle_chunk(q, idx);
		if (mq_load_relaxed(&c->state) == want &&
		    (pos == UINT64_MAX || mq_load_relaxed(&c->pos) == pos))
			return true;
	}
	return chunk_check_slow(q, idx, want, pos, where); /* says what is wrong */
}

/* prefetch_own: ask for the line at P with the intent to write it: it
 * arrives exclusive, in one transfer, instead of shared and then upgraded
 * (the write waiting for the other core's copy to be invalidated). x86-64:
 * PREFETCHW, a hint that CPUs without it execute as a NOP (0F 0D); GCC
 * emits it for __builtin_prefetch(p, 1) only with -mprfchw. */
static inline void prefetch_own(const void *p)
{
#if defined(__x86_64__)
	__asm__ volatile("prefetchw %0" ::"m"(*(const char *)p));
#else
	__builtin_prefetch(p, 1, 3);
#endif
}

/* pool_peek_fifo (send lock, FIFO): the free chunk at pool position F, or
 * OP_NONE if none is there yet (the pool is empty), or OP_DAMAGED. */
static inline uint32_t pool_peek_fifo(struct mq *q, uint64_t f)
{
	/* Pairs with the release store of the entry in pool_push: the chunk's
	 * header (state, pos) is visible. */
	uint64_t e = mq_load_acquire(&q->pool[f & q->ring_mask]);
	if (!entry_ready(e, f))
		return OP_NONE;
	uint32_t idx = entry_idx(e);
	if (!chunk_check(q, idx, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0), f, "pool position"))
		return OP_DAMAGED;
	return idx;
}

/* pool_push (receive lock): put chunk IDX into the pool at ftail and advance
 * it. Returns 0 or -1 (EPROTO). FIFO: the entry's store (release) hands the
 * chunk to producers. */
int pool_push_slow(struct mq *q, uint32_t idx);
static inline int pool_push(struct mq *q, uint32_t idx)
{
	struct mq_shm *s = q->shm;
	uint64_t f = mq_load_relaxed(&s->ftail);
	if (handle_lifo(q) || f >= MQ_INDEX_LIMIT ||
	    entry_seq(mq_load_relaxed(&q->pool[f & q->ring_mask])) != (uint32_t)(f - q->ring_mask))
		return pool_push_slow(q, idx); /* the stack, or a position still in use */
	struct mq_chunk *c = handle_chunk(q, idx);
	mq_store_relaxed(&c->pos, f);
	mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0));
	/* Commit: pairs with the acquire load in pool_peek_fifo; a producer may
	 * take the chunk from here on. */
	mq_store_release(&q->pool[f & q->ring_mask], entry_make(f, idx));
	mq_store_release(&s->ftail, f + 1);
	return 0;
}

/* pool_top_lifo (receive lock, LIFO): the chunk on top of the pool, or
 * OP_NONE if it is empty, or OP_DAMAGED. */
uint32_t pool_top_lifo(struct mq *q);

/* ring_slot_free (send lock): whether ring position T may be written (its
 * entry is from the lap before). Sets the detail if not. */
bool ring_slot_free_slow(struct mq *q, uint64_t t);
static inline bool ring_slot_free(struct mq *q, uint64_t t)
{
	uint64_t old = mq_load_relaxed(&q->ring[t & q->ring_mask]);
	/* The entry of the lap before has seq32 t + 1 - ring_size = t - mask. */
	if (t < MQ_INDEX_LIMIT && entry_seq(old) == (uint32_t)(t - q->ring_mask))
		return true;
	return ring_slot_free_slow(q, t); /* says what is wrong */
}

/* chunk_fill (send lock): fill chunk IDX's header as the message at ring
 * position T of LEN bytes sent at STAMP (tiq.h). Not yet committed: until
 * ring_commit, the chunk is still the pool's (repair_send gives it its free
 * header back if we die). */
static inline void chunk_fill(struct mq *q, uint32_t idx, uint64_t t, uint32_t len, uint64_t stamp)
{
	struct mq_chunk *c = handle_chunk(q, idx);
	mq_store_relaxed(&c->len, len);
	mq_store_relaxed(&c->sent, stamp);
	mq_store_relaxed(&c->id, t + 1);
	mq_store_relaxed(&c->pos, t);
	mq_store_relaxed(&c->deliveries, 0);
	mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0));
}

/* ring_commit (send lock): commit chunk IDX, filled, at ring position T (the
 * entry's release store). */
static inline void ring_commit(struct mq *q, uint32_t idx, uint64_t t)
{
	/* Commit: pairs with the acquire load in next_message (and
	 * ready_message): the payload and the header are visible first. */
	mq_store_release(&q->ring[t & q->ring_mask], entry_make(t, idx));
}

/* chunk_queue (send lock): chunk_fill, then ring_commit. */
static inline void chunk_queue(struct mq *q, uint32_t idx, uint64_t t, uint32_t len, uint64_t stamp)
{
	chunk_fill(q, idx, t, len, stamp);
	ring_commit(q, idx, t);
}

/* message_at (receive lock): the chunk of the message at position POS of
 * SRC (MQ_SRC_RING or MQ_SRC_REQUEUE), OP_NONE if none is there (not
 * committed yet, or past the requeue ring's end), or OP_DAMAGED. Checks the
 * chunk's state, back-reference and length. */
uint32_t message_at_slow(struct mq *q, uint32_t src, uint64_t pos);
static inline uint32_t message_at(struct mq *q, uint32_t src, uint64_t pos)
{
	if (src == MQ_SRC_RING && pos < MQ_INDEX_LIMIT) {
		/* Pairs with the release store of the entry in chunk_queue. */
		uint64_t e = mq_load_acquire(&q->ring[pos & q->ring_mask]);
		if (!entry_ready(e, pos))
			return OP_NONE;
		uint32_t idx = entry_idx(e);
		if (idx < q->capacity) {
			struct mq_chunk *c = handle_chunk(q, idx);
			/* Every take writes the header (free, lease): have its line
			 * come exclusive, not shared and then upgraded. */
			prefetch_own(c);
			if (mq_load_relaxed(&c->state) == MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0) &&
			    mq_load_relaxed(&c->pos) == pos && mq_load_relaxed(&c->id) == pos + 1 &&
			    mq_load_relaxed(&c->len) <= q->max_msg)
				return idx;
		}
	}
	return message_at_slow(q, src, pos); /* the requeue, or says what is wrong */
}

/* next_message (receive lock): where the next message is: *SRC and *POS
 * (requeued ones first), its chunk. Returns the chunk, OP_NONE if the
 * queue is empty, or OP_DAMAGED. Checks the chunk's state, back-reference and
 * length. */
static inline uint32_t next_message(struct mq *q, uint32_t *src, uint64_t *pos)
{
	struct mq_shm *s = q->shm;
	uint64_t rhead = mq_load_relaxed(&s->rhead);
	if (rhead != mq_load_relaxed(&s->rtail)) {
		*src = MQ_SRC_REQUEUE;
		*pos = rhead;
	} else {
		*src = MQ_SRC_RING;
		*pos = mq_load_relaxed(&s->head);
	}
	return message_at(q, *src, *pos);
}

/* take_commit (receive lock): the message(s) at POS .. POS+N-1 of SRC are
 * taken: advance head or rhead. */
static inline void take_commit(struct mq *q, uint32_t src, uint64_t pos, uint32_t n)
{
	/* Commit of a take: stats and waiters read head and rhead unlocked. */
	mq_store_release(src == MQ_SRC_RING ? &q->shm->head : &q->shm->rhead, pos + n);
}

/* requeue_push (receive lock): chunk IDX goes to the requeue ring (its
 * state becomes REQUEUED). Returns 0 or -1 (EPROTO). */
int requeue_push(struct mq *q, uint32_t idx);

/* lease_take (receive lock): take the message at SRC/POS in chunk IDX for
 * OWNER: HELD with deliveries + 1 (lease), or TAKING (copy out, LIFO).
 * Writes the intent, commits, ends it. */
void lease_take(struct mq *q, uint32_t op, uint32_t src, uint64_t pos, uint32_t idx,
                uint32_t owner);

/* lock_mine: whether SIDE's lock word still names this handle. Looked at just
 * before a commit store: a peer that zeroed the word while we held it lets a
 * second holder in, and the two must not both commit (one line we own: the
 * look costs nothing). Sets the EPROTO detail if not. */
bool lock_lost(struct mq *q, struct mq_side *side);
static inline bool lock_mine(struct mq *q, struct mq_side *side)
{
	return (mq_load_relaxed(&side->lock) & MQ_TOKEN_MASK) == q->token || !lock_lost(q, side);
}

/* intent_expect (receive lock): record in IN the state chunk IDX is in now,
 * before a free or a requeue moves it: repair.c finishes such an operation
 * only while the chunk is still in that state (a record revived from an
 * operation long finished, by a scribble, changes nothing). */
static inline void intent_expect(struct mq *q, struct mq_intent *in, uint32_t idx)
{
	uint64_t st = mq_load_relaxed(&handle_chunk(q, idx)->state);
	mq_store_relaxed(&in->idx, idx);
	mq_store_relaxed(&in->deliveries, MQ_CHUNK_KIND(st));
	mq_store_relaxed(&in->owner, MQ_CHUNK_OWNER(st));
}

/* chunk_free_locked (receive lock): intent MQ_OP_FREE, chunk IDX back into
 * the pool, intent end. Returns 0 or -1 (EPROTO). */
int chunk_free_locked(struct mq *q, uint32_t idx);

/* client_add: add V to client Q's counter FIELD (its own entry), under the
 * lock that guards FIELD (segment.h): a plain load and store, no locked
 * instruction on the fast path. */
#define client_add(q, field, v)                                                                    \
	do {                                                                                       \
		if ((q)->client >= 0) {                                                            \
			_Atomic uint64_t *f_ = &(q)->shm->clients[(q)->client].field;              \
			mq_store_relaxed(f_, mq_load_relaxed(f_) + (uint64_t)(v));                 \
		}                                                                                  \
	} while (0)

/* mark_role: record what a client does, once (the RMW is off the fast path). */
static inline void mark_role(struct mq *q, uint32_t role)
{
	if (q->client < 0)
		return;
	struct mq_client_slot *c = &q->shm->clients[q->client];
	if (!(mq_load_relaxed(&c->role) & role))
		atomic_fetch_or_explicit(&c->role, role, memory_order_relaxed);
}

/* high_water: raise the high-water mark for a ring now ending at END (send
 * lock held). head is the consumers' hot line: read it only when the cached
 * copy says the depth passes the mark, which costs at most one read per
 * high_water sends once the mark has settled. */
static inline void high_water(struct mq_shm *s, uint64_t end)
{
	uint64_t head = mq_load_relaxed(&s->head_cache);
	if (end > head && end - head > mq_load_relaxed(&s->high_water)) {
		/* Pairs with the release store of head in take_commit. */
		head = mq_load_acquire(&s->head);
		mq_store_relaxed(&s->head_cache, head);
		if (end > head)
			mq_max_u64(&s->high_water, end - head);
	}
}

/* call_start: the checks every data call makes first: a handle, a sound
 * mapping, a valid timeout. Fills *DL (NULL if none) and *INTR0. Returns 0
 * or -1 with errno. */
/* How long a call with timeout 0 waits for a side lock held by someone else. */
#define NOWAIT_LOCK_MS 20

/* lock_busy: the failure of a call whose lock could not be had: with timeout
 * 0 that is EAGAIN (try again), not ETIMEDOUT. Returns -1. */
static inline int lock_busy(int timeout_ms)
{
	if (timeout_ms == 0 && errno == ETIMEDOUT)
		errno = EAGAIN;
	return -1;
}

int call_start_slow(struct mq *q, const char *call, int timeout_ms);
static inline int call_start(struct mq *q, const char *call, int timeout_ms,
                             struct timespec *deadline, const struct timespec **dl, uint32_t *intr0)
{
	if (!q || timeout_ms < -1 || atomic_load_explicit(&q->damaged, memory_order_relaxed))
		return call_start_slow(q, call, timeout_ms) < 0 ? -1 : -1; /* errno set */
	/* Timeout 0 does not wait for messages or room, and waits for a lock
	 * only as long as a live holder keeps it for one copy (a stopped or
	 * wedged holder: EAGAIN, see lock_busy). -1: no deadline. */
	*dl = NULL;
	if (timeout_ms >= 0) {
		wait_deadline(deadline, timeout_ms ? timeout_ms : NOWAIT_LOCK_MS);
		*dl = deadline;
	}
	*intr0 = intr_start(q);
	return 0;
}

/* wait_for: wait until READY(q) may hold, DL passes (ETIMEDOUT), an interrupt
 * newer than INTR0 arrives or a signal handler runs (EINTR), or the segment
 * turns out damaged (EPROTO): spin for the handle's spin time, then sleep on
 * WORD in slices, checking the segment (CHECK) and reaping dead clients
 * between them. Returns 0 when the caller should look again. */
int wait_for(struct mq *q, _Atomic uint32_t *word, bool (*ready)(struct mq *),
             int (*check)(struct mq *), const struct timespec *dl, uint32_t intr0);

/* ready_message, ready_space: unlocked hints for wait_for. */
bool ready_message(struct mq *q);
bool ready_space(struct mq *q);

/* check_consumer, check_producer: the consistency a waiter can check without
 * a lock: indices in range, and an entry committed where an index says one
 * must be. Return 0, or -1 with errno EPROTO. */
int check_consumer(struct mq *q);
int check_producer(struct mq *q);

/* reap_dead: give back what clients that died attached held, and mark them
 * DEAD (reap.c), describing up to N of them in OUT (may be NULL). Takes both
 * locks, send then receive. Returns how many clients were marked dead, or
 * -1 with errno. Needs a lock-capable handle. */
struct mq_reaped;
int reap_dead(struct mq *q, const struct timespec *dl, int64_t intr0, struct mq_reaped *out,
              size_t n);

/* reap_needed: a cheap look (no lock): whether reap_dead has work. */
bool reap_needed(struct mq *q);

/* give_back_own: detach-time cleanup: requeue our leases, free our
 * reservations and half-copied chunks. Returns how many chunks moved. */
int give_back_own(struct mq *q);

/* pool_pop_lifo (receive lock, LIFO): take the chunk on top of the pool for
 * Q (state WRITING, owner Q). Returns it, OP_NONE if the pool is empty, or
 * OP_DAMAGED. (zcopy.c) */
uint32_t pool_pop_lifo(struct mq *q);

/* reserve_fifo (send lock, FIFO): take the free chunk at fhead for Q (state
 * WRITING, owner Q). Returns it, OP_NONE if none, or OP_DAMAGED. (zcopy.c) */
uint32_t reserve_fifo(struct mq *q);

/* commit_locked (send lock): queue chunk IDX, which Q holds WRITING, as a
 * message of LEN bytes. Returns 0, or -1 with errno (EINVAL: not Q's chunk or
 * LEN more than reserved; EPROTO). (zcopy.c) */
int commit_locked(struct mq *q, uint32_t idx, size_t len);

/* release_chunk: give back chunk IDX that Q holds WRITING or TAKING (the
 * receive lock is taken here, with no interrupt and a bounded wait). Returns
 * 0 or -1 with errno. (zcopy.c) */
int release_chunk(struct mq *q, uint32_t idx, uint32_t kind);

/* wake_consumers, wake_producers: after making a message, or room, available. */
static inline void wake_consumers(struct mq *q)
{
	wait_wake(&q->shm->not_empty);
}
static inline void wake_producers(struct mq *q)
{
	wait_wake(&q->shm->not_full);
}
/* The same, right after a side lock's release (wait_wake_fenced). */
static inline void wake_consumers_released(struct mq *q)
{
	wait_wake_fenced(&q->shm->not_empty);
}
static inline void wake_producers_released(struct mq *q)
{
	wait_wake_fenced(&q->shm->not_full);
}

#endif /* LIBMQ_OPS_H */
