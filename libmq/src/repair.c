/*
 * repair.c - finishing or undoing the operation of a lock holder that died.
 *
 * Every operation under a side lock records what it is about to do (struct
 * mq_intent: the positions it starts from, the chunk, its new owner) before
 * its first store, and has exactly one commit store. Whoever takes the lock
 * over (lock.c) reads the record and looks at the commit: not made, the
 * operation is undone (the stores before the commit only touched things
 * nobody else can see yet); made, it is finished (the stores after the
 * commit are repeated; each one sets a value, so doing it twice is harmless).
 *
 * Each operation, its commit store, and what happens to it:
 *   SEND      ring entry j, for each j  the committed prefix stays, tail and
 *                                       fhead are set after it; chunks filled
 *                                       but not committed are put back free
 *   RESERVE   fhead                     made: the chunk is WRITING (reap.c
 *                                       frees it); not: it is free again
 *   COMMIT    the ring entry            made: tail moves; not: the chunk is
 *                                       WRITING again (reap.c frees it)
 *   TAKE      head or rhead             made: the chunks go to the pool; not:
 *                                       nothing was stored
 *   LEASE,    head or rhead             made: the chunk is HELD (TAKING) by the
 *   TAKE_COPY                           dead owner (reap.c requeues, frees)
 *   FREE      the pool entry            finished
 *   REQUEUE   rtail                     finished
 *   POP       ftail (the stack top)     made: the chunk is WRITING; not: free
 *
 * A record that does not fit the segment (a scribble) is reported as EPROTO
 * and left in place, so every later holder reports it too.
 */
#include <inttypes.h>

#include "ops.h"
#include "repair.h"

/* BAD: the record (the local IN) does not fit; SIDE and WHAT name it. */
#define BAD(q, side, what)                                                                         \
	damaged(q, "the %s side's record of an unfinished operation does not fit (%s, op %u)",     \
	        side, what, (unsigned)mq_load_relaxed(&in->op))

/* as_recorded: whether chunk IDX is still in the state IN recorded before the
 * operation (intent_expect): the operation has not moved it yet. */
static bool as_recorded(struct mq *q, struct mq_intent *in, uint32_t idx)
{
	return mq_load_relaxed(&handle_chunk(q, idx)->state) ==
	       MQ_CHUNK_STATE(mq_load_relaxed(&in->deliveries), mq_load_relaxed(&in->owner));
}

static int repair_send(struct mq *q, struct mq_intent *in)
{
	struct mq_shm *s = q->shm;
	uint64_t n = mq_load_relaxed(&in->n), pos0 = mq_load_relaxed(&in->pos),
	         fpos0 = mq_load_relaxed(&in->fpos);
	/* A batch records what it was asked to send; no round sends more than
	 * the capacity. */
	if (n > q->capacity)
		n = q->capacity;
	if (n == 0 || pos0 >= MQ_INDEX_LIMIT || fpos0 >= MQ_INDEX_LIMIT)
		return damaged(q,
		               "the send side's record of an unfinished send does not fit (%" PRIu64
		               " messages)",
		               n);
	uint64_t m = 0;
	for (; m < n; m++) {
		uint64_t pe = mq_load_acquire(&q->pool[(fpos0 + m) & q->ring_mask]);
		if (!entry_ready(pe, fpos0 + m))
			break;
		uint64_t re = mq_load_acquire(&q->ring[(pos0 + m) & q->ring_mask]);
		if (re != entry_make(pos0 + m, entry_idx(pe)))
			break;
	}
	uint64_t tail = mq_load_relaxed(&s->tail), fhead = mq_load_relaxed(&s->fhead);
	if ((tail > pos0 + n && tail < MQ_INDEX_LIMIT) ||
	    (fhead > fpos0 + n && fhead < MQ_INDEX_LIMIT))
		return 0; /* the positions went on past it: a record long finished */
	if ((tail != pos0 && tail != pos0 + m) || (fhead != fpos0 && fhead != fpos0 + m))
		return damaged(
		        q,
		        "the send side's record of an unfinished send does not fit (tail %" PRIu64
		        ", fhead %" PRIu64 ", record %" PRIu64 "/%" PRIu64 " + %" PRIu64 ")",
		        tail, fhead, pos0, fpos0, m);
	/* Chunks taken from the pool but not committed are still in the pool
	 * (fhead has not passed them): give them their free header back. */
	for (uint64_t j = m; j < n; j++) {
		uint64_t f = fpos0 + j;
		uint64_t pe = mq_load_acquire(&q->pool[f & q->ring_mask]);
		if (!entry_ready(pe, f) || entry_idx(pe) >= q->capacity)
			break;
		struct mq_chunk *c = handle_chunk(q, entry_idx(pe));
		mq_store_relaxed(&c->pos, f);
		mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0));
	}
	mq_store_release(&s->tail, pos0 + m);
	mq_store_relaxed(&s->fhead, fpos0 + m);
	if (m)
		wake_consumers(q);
	return 0;
}

static int repair_reserve(struct mq *q, struct mq_intent *in)
{
	struct mq_shm *s = q->shm;
	uint64_t f = mq_load_relaxed(&in->fpos), fhead = mq_load_relaxed(&s->fhead);
	uint32_t idx = mq_load_relaxed(&in->idx);
	if (idx >= q->capacity)
		return BAD(q, "send", "reserve");
	/* not made: the chunk is still the pool's (if the pool still says so);
	 * the pool gone on past it: a record long finished */
	if (fhead == f && mq_load_acquire(&q->pool[f & q->ring_mask]) == entry_make(f, idx))
		mq_store_relaxed(&handle_chunk(q, idx)->state, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0));
	return 0;
}

static int repair_commit(struct mq *q, struct mq_intent *in)
{
	struct mq_shm *s = q->shm;
	uint64_t t = mq_load_relaxed(&in->pos), tail = mq_load_relaxed(&s->tail);
	uint32_t idx = mq_load_relaxed(&in->idx);
	if (idx >= q->capacity)
		return BAD(q, "send", "commit");
	if (tail != t && tail != t + 1)
		return 0; /* the ring went on past it: a record long finished */
	if (mq_load_acquire(&q->ring[t & q->ring_mask]) == entry_make(t, idx)) {
		if (tail == t) {
			mq_store_release(&s->tail, t + 1);
			wake_consumers(q);
		}
	} else if (tail == t) {
		/* not made: the chunk goes back to its writer (the reaper frees it
		 * if the writer is gone), if it is still as the commit left it */
		struct mq_chunk *c = handle_chunk(q, idx);
		if (mq_load_relaxed(&c->state) == MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0) &&
		    mq_load_relaxed(&c->pos) == t)
			mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_WRITING,
			                                           mq_load_relaxed(&in->owner)));
	}
	return 0;
}

/* taken_at: the chunk the message at POS of SRC was in. */
static uint32_t taken_at(struct mq *q, uint32_t src, uint64_t pos)
{
	if (src == MQ_SRC_REQUEUE)
		return mq_load_relaxed(&q->requeue[pos & q->ring_mask]);
	return entry_idx(mq_load_relaxed(&q->ring[pos & q->ring_mask]));
}

/* pushed: whether chunk IDX was put into the pool at F already. */
static bool pushed(struct mq *q, uint32_t idx, uint64_t f)
{
	if (mq_load_acquire(&q->pool[f & q->ring_mask]) != entry_make(f, idx))
		return false;
	if (!handle_lifo(q))
		return true; /* FIFO positions are not reused within a lap */
	/* A stack position is reused: the entry may be from an earlier push of
	 * the same chunk; the chunk's own header tells. */
	struct mq_chunk *c = handle_chunk(q, idx);
	return mq_load_relaxed(&c->state) == MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0) &&
	       mq_load_relaxed(&c->pos) == f;
}

/* push_at: finish putting chunk IDX into the pool at F (== ftail). */
static int push_at(struct mq *q, uint32_t idx, uint64_t f)
{
	if (pushed(q, idx, f)) {
		mq_store_release(&q->shm->ftail, f + 1);
		return 0;
	}
	return pool_push(q, idx);
}

static int repair_take(struct mq *q, struct mq_intent *in)
{
	struct mq_shm *s = q->shm;
	uint32_t src = mq_load_relaxed(&in->src);
	uint64_t n = mq_load_relaxed(&in->n), pos0 = mq_load_relaxed(&in->pos),
	         f0 = mq_load_relaxed(&in->fpos);
	uint64_t cur = mq_load_relaxed(src == MQ_SRC_RING ? &s->head : &s->rhead);
	uint64_t ftail = mq_load_relaxed(&s->ftail);
	if (src > MQ_SRC_REQUEUE || n == 0 || n > q->capacity)
		return BAD(q, "receive", "take");
	if ((cur != pos0 && cur != pos0 + n) || ftail < f0 || ftail > f0 + n)
		return 0; /* the positions went on past it: a record long finished */
	if (cur == pos0)
		return 0; /* not made: nothing was stored */
	for (uint64_t j = ftail - f0; j < n; j++) {
		uint32_t idx = taken_at(q, src, pos0 + j);
		if (idx >= q->capacity)
			return BAD(q, "receive", "take");
		/* Still as taken (queued at its position), or its push begun (its
		 * pool position written, then its free state: pool_push's two
		 * stores, either or both done, the entry not yet): into the pool;
		 * anything else: the record is stale, leave it. */
		struct mq_chunk *c = handle_chunk(q, idx);
		uint32_t kind = src == MQ_SRC_RING ? MQ_CHUNK_QUEUED : MQ_CHUNK_REQUEUED;
		uint64_t st = mq_load_relaxed(&c->state), at = mq_load_relaxed(&c->pos);
		bool taken = st == MQ_CHUNK_STATE(kind, 0) && (at == pos0 + j || at == f0 + j);
		if (!pushed(q, idx, f0 + j) && !taken &&
		    !(st == MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0) && at == f0 + j))
			return 0;
		if (push_at(q, idx, f0 + j) != 0)
			return -1;
	}
	wake_producers(q);
	return 0;
}

static int repair_lease(struct mq *q, struct mq_intent *in, uint32_t op)
{
	struct mq_shm *s = q->shm;
	uint32_t src = mq_load_relaxed(&in->src), idx = mq_load_relaxed(&in->idx);
	uint64_t pos0 = mq_load_relaxed(&in->pos);
	uint64_t cur = mq_load_relaxed(src == MQ_SRC_RING ? &s->head : &s->rhead);
	if (src > MQ_SRC_REQUEUE || idx >= q->capacity)
		return BAD(q, "receive", "lease");
	if (cur != pos0 + 1)
		return 0; /* not made (nothing was stored), or a record long finished */
	/* Made: the chunk becomes the holder's, if it is still as taken (queued
	 * or requeued at that position); held already, or moved on since
	 * (acked, nacked): nothing to do. */
	struct mq_chunk *c = handle_chunk(q, idx);
	uint32_t kind = src == MQ_SRC_RING ? MQ_CHUNK_QUEUED : MQ_CHUNK_REQUEUED;
	if (mq_load_relaxed(&c->state) != MQ_CHUNK_STATE(kind, 0) ||
	    mq_load_relaxed(&c->pos) != pos0)
		return 0;
	mq_store_relaxed(&c->deliveries, mq_load_relaxed(&in->deliveries));
	mq_store_relaxed(&c->lease_ns, mq_load_relaxed(&in->ns));
	mq_store_relaxed(&c->state,
	                 MQ_CHUNK_STATE(op == MQ_OP_LEASE ? MQ_CHUNK_HELD : MQ_CHUNK_TAKING,
	                                mq_load_relaxed(&in->owner)));
	return 0;
}

static int repair_free(struct mq *q, struct mq_intent *in)
{
	uint32_t idx = mq_load_relaxed(&in->idx);
	uint64_t f = mq_load_relaxed(&in->fpos), ftail = mq_load_relaxed(&q->shm->ftail);
	if (idx >= q->capacity)
		return BAD(q, "receive", "free");
	if (ftail == f && pushed(q, idx, f)) {
		mq_store_release(&q->shm->ftail, f + 1); /* pushed, ftail not yet moved */
	} else if (ftail == f && (as_recorded(q, in, idx) ||
	                          (mq_load_relaxed(&handle_chunk(q, idx)->state) ==
	                                   MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0) &&
	                           mq_load_relaxed(&handle_chunk(q, idx)->pos) == f))) {
		/* not pushed yet, or its push begun (free at f, no entry yet) */
		if (pool_push(q, idx) != 0)
			return -1;
	} else {
		return 0; /* done, or a record long finished */
	}
	wake_producers(q);
	return 0;
}

static int repair_requeue(struct mq *q, struct mq_intent *in)
{
	uint32_t idx = mq_load_relaxed(&in->idx);
	uint64_t r = mq_load_relaxed(&in->pos), rtail = mq_load_relaxed(&q->shm->rtail);
	if (idx >= q->capacity)
		return BAD(q, "receive", "requeue");
	struct mq_chunk *c = handle_chunk(q, idx);
	if (rtail == r && mq_load_relaxed(&q->requeue[r & q->ring_mask]) == idx &&
	    mq_load_relaxed(&c->state) == MQ_CHUNK_STATE(MQ_CHUNK_REQUEUED, 0) &&
	    mq_load_relaxed(&c->pos) == r) {
		mq_store_release(&q->shm->rtail, r + 1); /* placed, rtail not yet moved */
	} else if (rtail == r &&
	           (as_recorded(q, in, idx) ||
	            (mq_load_relaxed(&c->state) == MQ_CHUNK_STATE(MQ_CHUNK_REQUEUED, 0) &&
	             mq_load_relaxed(&c->pos) == r))) {
		/* not placed yet, or its placing begun (requeued at r, no entry) */
		if (requeue_push(q, idx) != 0)
			return -1;
	} else {
		return 0; /* done, or a record long finished */
	}
	wake_consumers(q);
	return 0;
}

static int repair_pop(struct mq *q, struct mq_intent *in)
{
	uint32_t idx = mq_load_relaxed(&in->idx);
	uint64_t top0 = mq_load_relaxed(&in->fpos), top = mq_load_relaxed(&q->shm->ftail);
	if (idx >= q->capacity || top0 == 0)
		return BAD(q, "receive", "pop");
	/* not made: still the pool's, if the stack still holds it there */
	if (top == top0 &&
	    mq_load_acquire(&q->pool[(top0 - 1) & q->ring_mask]) == entry_make(top0 - 1, idx)) {
		struct mq_chunk *c = handle_chunk(q, idx);
		mq_store_relaxed(&c->pos, top0 - 1);
		mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0));
	}
	return 0;
}

int repair_side(struct mq *q, struct mq_side *side)
{
	struct mq_intent *in = &side->intent;
	/* Pairs with the release store in intent_begin. */
	uint32_t op = mq_load_acquire(&in->op);
	bool send = side == &q->shm->send;
	int rc;
	switch (op) {
	case MQ_OP_NONE:
		return 0;
	case MQ_OP_SEND:
		rc = send ? repair_send(q, in) : BAD(q, "receive", "send");
		break;
	case MQ_OP_RESERVE:
		rc = send ? repair_reserve(q, in) : BAD(q, "receive", "reserve");
		break;
	case MQ_OP_COMMIT:
		rc = send ? repair_commit(q, in) : BAD(q, "receive", "commit");
		break;
	case MQ_OP_TAKE:
		rc = !send ? repair_take(q, in) : BAD(q, "send", "take");
		break;
	case MQ_OP_LEASE:
	case MQ_OP_TAKE_COPY:
		rc = !send ? repair_lease(q, in, op) : BAD(q, "send", "lease");
		break;
	case MQ_OP_FREE:
		rc = !send ? repair_free(q, in) : BAD(q, "send", "free");
		break;
	case MQ_OP_REQUEUE:
		rc = !send ? repair_requeue(q, in) : BAD(q, "send", "requeue");
		break;
	case MQ_OP_POP:
		rc = !send && handle_lifo(q) ? repair_pop(q, in)
		                             : BAD(q, send ? "send" : "receive", "pop");
		break;
	default:
		rc = BAD(q, send ? "send" : "receive", "unknown operation");
	}
	if (rc == 0)
		intent_end(in);
	return rc;
}
