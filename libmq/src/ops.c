/* ops.c - the steps a message takes between pool, ring, requeue ring and holders; waiting. */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "client.h"
#include "error.h"
#include "interrupt.h"
#include "ops.h"
#include "tiq.h"

/* The longest pause run between two looks while spinning (a power of two). */
#define SPIN_BACKOFF_MAX 32

int damaged(struct mq *q, const char *fmt, ...)
{
	char why[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	return error_set(EPROTO, "queue %s: damaged: %s", q->name, why);
}

static const char *kind_name(uint32_t kind)
{
	static const char *const names[] = {"invalid",  "free",   "writing", "queued",
	                                    "requeued", "leased", "taking"};
	return kind < sizeof(names) / sizeof(names[0]) ? names[kind] : "invalid";
}

bool chunk_check_slow(struct mq *q, uint64_t idx, uint64_t want, uint64_t pos, const char *where)
{
	if (idx >= q->capacity) {
		damaged(q, "%s names chunk %" PRIu64 " of %" PRIu64, where, idx, q->capacity);
		return false;
	}
	struct mq_chunk *c = handle_chunk(q, idx);
	uint64_t st = mq_load_relaxed(&c->state);
	if (st != want) {
		damaged(q, "%s: chunk %" PRIu64 " is %s (owner 0x%x), expected %s", where, idx,
		        kind_name(MQ_CHUNK_KIND(st)), MQ_CHUNK_OWNER(st),
		        kind_name(MQ_CHUNK_KIND(want)));
		return false;
	}
	uint64_t at = mq_load_relaxed(&c->pos);
	if (pos != UINT64_MAX && at != pos) {
		damaged(q, "%s %" PRIu64 ": chunk %" PRIu64 " says it is at %" PRIu64, where, pos,
		        idx, at);
		return false;
	}
	return true;
}

int pool_push_slow(struct mq *q, uint32_t idx)
{
	struct mq_shm *s = q->shm;
	uint64_t f = mq_load_relaxed(&s->ftail);
	if (handle_lifo(q)) {
		if (f >= q->capacity)
			return damaged(q,
			               "pool top %" PRIu64 " is at capacity %" PRIu64
			               " with a chunk still to free",
			               f, q->capacity);
	} else {
		uint64_t old = mq_load_relaxed(&q->pool[f & q->ring_mask]);
		if (f >= MQ_INDEX_LIMIT || entry_seq(old) != (uint32_t)(f - q->ring_mask))
			return damaged(q, "pool position %" PRIu64 " is still in use", f);
	}
	struct mq_chunk *c = handle_chunk(q, idx);
	mq_store_relaxed(&c->pos, f);
	mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0));
	/* Commit: pairs with the acquire load in pool_peek_fifo; a producer may
	 * take the chunk from here on. */
	mq_store_release(&q->pool[f & q->ring_mask], entry_make(f, idx));
	mq_store_release(&s->ftail, f + 1);
	return 0;
}

uint32_t pool_top_lifo(struct mq *q)
{
	uint64_t top = mq_load_relaxed(&q->shm->ftail);
	if (top > q->capacity) {
		damaged(q, "pool top %" PRIu64 " beyond capacity %" PRIu64, top, q->capacity);
		return OP_DAMAGED;
	}
	if (top == 0)
		return OP_NONE;
	uint64_t e = mq_load_relaxed(&q->pool[(top - 1) & q->ring_mask]);
	if (!entry_ready(e, top - 1)) {
		damaged(q, "pool position %" PRIu64 " is not filled", top - 1);
		return OP_DAMAGED;
	}
	uint32_t idx = entry_idx(e);
	if (!chunk_check(q, idx, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0), top - 1, "pool position"))
		return OP_DAMAGED;
	return idx;
}

bool ring_slot_free_slow(struct mq *q, uint64_t t)
{
	uint64_t old = mq_load_relaxed(&q->ring[t & q->ring_mask]);
	/* The entry of the lap before has seq32 t + 1 - ring_size = t - mask. */
	if (t < MQ_INDEX_LIMIT && entry_seq(old) == (uint32_t)(t - q->ring_mask))
		return true;
	damaged(q, "ring position %" PRIu64 " is still in use (entry 0x%016" PRIx64 ")", t, old);
	return false;
}

uint32_t message_at_slow(struct mq *q, uint32_t src, uint64_t pos)
{
	struct mq_shm *s = q->shm;
	uint32_t idx;
	if (pos >= MQ_INDEX_LIMIT) {
		damaged(q, "position %" PRIu64 " out of range", pos);
		return OP_DAMAGED;
	}
	if (src == MQ_SRC_REQUEUE) {
		uint64_t rhead = mq_load_relaxed(&s->rhead);
		uint64_t rtail = mq_load_relaxed(&s->rtail);
		if (rtail < rhead || rtail - rhead > q->capacity) {
			damaged(q,
			        "requeue positions %" PRIu64 "..%" PRIu64 " (capacity %" PRIu64 ")",
			        rhead, rtail, q->capacity);
			return OP_DAMAGED;
		}
		if (pos >= rtail)
			return OP_NONE;
		idx = mq_load_relaxed(&q->requeue[pos & q->ring_mask]);
		if (!chunk_check(q, idx, MQ_CHUNK_STATE(MQ_CHUNK_REQUEUED, 0), pos,
		                 "requeue position"))
			return OP_DAMAGED;
	} else {
		/* Pairs with the release store of the entry in chunk_queue. */
		uint64_t e = mq_load_acquire(&q->ring[pos & q->ring_mask]);
		if (!entry_ready(e, pos))
			return OP_NONE;
		idx = entry_idx(e);
		/* The payload's first line, while the header is fetched: the two
		 * misses overlap instead of following each other. */
		if (idx < q->capacity)
			__builtin_prefetch(handle_payload(q, idx), 0, 3);
		if (!chunk_check(q, idx, MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0), pos, "ring position"))
			return OP_DAMAGED;
		uint64_t id = mq_load_relaxed(&handle_chunk(q, idx)->id);
		if (id != pos + 1) {
			damaged(q, "ring position %" PRIu64 ": chunk %u holds message %" PRIu64,
			        pos, idx, id);
			return OP_DAMAGED;
		}
	}
	uint32_t len = mq_load_relaxed(&handle_chunk(q, idx)->len);
	if (len > q->max_msg) {
		damaged(q, "chunk %u holds %u bytes, the maximum is %" PRIu64, idx, len,
		        q->max_msg);
		return OP_DAMAGED;
	}
	return idx;
}

int requeue_push(struct mq *q, uint32_t idx)
{
	struct mq_shm *s = q->shm;
	uint64_t r = mq_load_relaxed(&s->rtail);
	uint64_t rhead = mq_load_relaxed(&s->rhead);
	if (r < rhead || r - rhead >= q->capacity || r >= MQ_INDEX_LIMIT)
		return damaged(q,
		               "requeue positions %" PRIu64 "..%" PRIu64 " (capacity %" PRIu64 ")",
		               rhead, r, q->capacity);
	struct mq_chunk *c = handle_chunk(q, idx);
	mq_store_relaxed(&c->pos, r);
	mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_REQUEUED, 0));
	mq_store_relaxed(&q->requeue[r & q->ring_mask], idx);
	mq_store_release(&s->rtail, r + 1);
	return 0;
}

bool lock_lost(struct mq *q, struct mq_side *side)
{
	damaged(q,
	        "the %s lock was taken from this process while it held it (its word was "
	        "overwritten); nothing was committed",
	        side == &q->shm->send ? "send" : "receive");
	return true;
}

void lease_take(struct mq *q, uint32_t op, uint32_t src, uint64_t pos, uint32_t idx, uint32_t owner)
{
	struct mq_shm *s = q->shm;
	if (!lock_mine(q, &s->recv))
		return; /* the release that follows fails too: EPROTO */
	struct mq_intent *in = &s->recv.intent;
	struct mq_chunk *c = handle_chunk(q, idx);
	uint32_t d = mq_load_relaxed(&c->deliveries) + (op == MQ_OP_LEASE);
	int64_t ns = op == MQ_OP_LEASE ? wait_coarse_ns() : 0;
	mq_store_relaxed(&in->src, src);
	mq_store_relaxed(&in->pos, pos);
	mq_store_relaxed(&in->idx, idx);
	mq_store_relaxed(&in->owner, owner);
	mq_store_relaxed(&in->deliveries, d);
	mq_store_relaxed(&in->ns, ns);
	intent_begin(in, op);
	if (!lock_mine(q, &s->recv))
		return;
	take_commit(q, src, pos, 1);
	if (src == MQ_SRC_RING) {
		uint64_t now = 0;
		tiq_take(q, mq_load_relaxed(&c->sent), &now);
	}
	mq_store_relaxed(&c->deliveries, d);
	mq_store_relaxed(&c->lease_ns, ns);
	mq_store_relaxed(
	        &c->state,
	        MQ_CHUNK_STATE(op == MQ_OP_LEASE ? MQ_CHUNK_HELD : MQ_CHUNK_TAKING, owner));
	if (src == MQ_SRC_REQUEUE)
		mq_store_relaxed(&s->redelivered, mq_load_relaxed(&s->redelivered) + 1);
	intent_end(in);
}

int chunk_free_locked(struct mq *q, uint32_t idx)
{
	struct mq_intent *in = &q->shm->recv.intent;
	intent_expect(q, in, idx);
	mq_store_relaxed(&in->fpos, mq_load_relaxed(&q->shm->ftail));
	intent_begin(in, MQ_OP_FREE);
	int rc = pool_push(q, idx);
	intent_end(in);
	return rc;
}

int call_start_slow(struct mq *q, const char *call, int timeout_ms)
{
	if (!q)
		return error_set(EINVAL, "%s: no queue handle", call);
	if (timeout_ms < -1)
		return error_set(EINVAL, "%s on %s: timeout %d ms (use -1, 0 or > 0)", call,
		                 q->name, timeout_ms);
	return handle_check(q, false);
}

bool ready_message(struct mq *q)
{
	struct mq_shm *s = q->shm;
	if (mq_load_relaxed(&s->rhead) != mq_load_relaxed(&s->rtail))
		return true;
	uint64_t head = mq_load_relaxed(&s->head);
	return entry_ready(mq_load_acquire(&q->ring[head & q->ring_mask]), head);
}

bool ready_space(struct mq *q)
{
	struct mq_shm *s = q->shm;
	if (handle_lifo(q))
		return mq_load_relaxed(&s->ftail) != 0;
	uint64_t f = mq_load_relaxed(&s->fhead);
	return entry_ready(mq_load_acquire(&q->pool[f & q->ring_mask]), f);
}

int check_consumer(struct mq *q)
{
	struct mq_shm *s = q->shm;
	for (int attempt = 0;; attempt++) {
		const char *what = NULL;
		if (mq_spread_bad(&s->head, &s->tail, q->capacity, q->capacity)) {
			what = "head and tail";
		} else if (mq_spread_bad(&s->rhead, &s->rtail, 0, q->capacity)) {
			what = "the requeue positions";
		} else {
			/* tail is stored after the entries it passes are committed
			 * (release), so an entry below it must be committed. */
			uint64_t head = mq_load_acquire(&s->head);
			uint64_t tail = mq_load_acquire(&s->tail);
			if (tail > head &&
			    !entry_ready(mq_load_acquire(&q->ring[head & q->ring_mask]), head) &&
			    mq_load_acquire(&s->head) == head)
				what = "the ring entry at head (tail is past it, it is not "
				       "committed)";
		}
		if (!what)
			return 0;
		if (attempt == 2)
			return damaged(q,
			               "%s do not fit (head %" PRIu64 ", tail %" PRIu64
			               ", requeue %" PRIu64 "..%" PRIu64 ", capacity %" PRIu64 ")",
			               what, (uint64_t)mq_load_relaxed(&s->head),
			               (uint64_t)mq_load_relaxed(&s->tail),
			               (uint64_t)mq_load_relaxed(&s->rhead),
			               (uint64_t)mq_load_relaxed(&s->rtail), q->capacity);
	}
}

int check_producer(struct mq *q)
{
	struct mq_shm *s = q->shm;
	for (int attempt = 0;; attempt++) {
		bool bad;
		if (handle_lifo(q)) {
			bad = mq_load_acquire(&s->ftail) > q->capacity;
		} else {
			/* A chunk a dead producer committed but did not pop (fhead) may be
			 * back in the pool meanwhile: counted twice until repaired. */
			bad = mq_spread_bad(&s->fhead, &s->ftail, q->capacity, 2 * q->capacity);
			uint64_t fhead = mq_load_acquire(&s->fhead);
			uint64_t ftail = mq_load_acquire(&s->ftail);
			bad = bad || (ftail > fhead &&
			              !entry_ready(mq_load_acquire(&q->pool[fhead & q->ring_mask]),
			                           fhead) &&
			              mq_load_acquire(&s->fhead) == fhead);
		}
		if (mq_load_acquire(&s->tail) >= MQ_INDEX_LIMIT ||
		    mq_spread_bad(&s->head, &s->tail, q->capacity, q->capacity))
			bad = true;
		/* No free chunk in the pool, yet one is FREE: a chunk the pool
		 * lost (its entry overwritten), which would keep the queue "full"
		 * for ever. A free in progress (chunk_free_locked: state, then the
		 * pool) is seen as such only for a moment: three looks. */
		const char *lost = NULL;
		uint64_t free_idx = 0;
		/* Only with the receive side at rest: a free in progress, or left
		 * half done by a holder that died (which the next holder finishes),
		 * is not a loss. */
		bool rest = mq_load_acquire(&s->recv.lock) == 0 &&
		            mq_load_acquire(&s->recv.intent.op) == MQ_OP_NONE;
		uint64_t ftail0 = mq_load_acquire(&s->ftail);
		if (!bad && rest && !ready_space(q)) {
			for (uint64_t i = 0; i < q->capacity; i++)
				if (MQ_CHUNK_KIND(mq_load_relaxed(&handle_chunk(q, i)->state)) ==
				    MQ_CHUNK_FREE) {
					free_idx = i;
					lost = "a free chunk is in no pool position";
					break;
				}
			if (lost && (ready_space(q) || mq_load_acquire(&s->recv.lock) != 0 ||
			             mq_load_acquire(&s->recv.intent.op) != MQ_OP_NONE ||
			             mq_load_acquire(&s->ftail) != ftail0))
				lost = NULL;
		}
		if (!bad && !lost)
			return 0;
		if (attempt == 2 && lost)
			return damaged(q, "%s (chunk %" PRIu64 "): its space is lost", lost,
			               free_idx);
		if (attempt == 2)
			return damaged(q,
			               "the positions do not fit (ring %" PRIu64 "..%" PRIu64
			               ", pool taken %" PRIu64 ", filled %" PRIu64
			               ", capacity %" PRIu64 ")",
			               (uint64_t)mq_load_relaxed(&s->head),
			               (uint64_t)mq_load_relaxed(&s->tail),
			               (uint64_t)mq_load_relaxed(&s->fhead),
			               (uint64_t)mq_load_relaxed(&s->ftail), q->capacity);
	}
}

int wait_for(struct mq *q, _Atomic uint32_t *word, bool (*ready)(struct mq *),
             int (*check)(struct mq *), const struct timespec *dl, uint32_t intr0)
{
	unsigned spin_us = mq_load_relaxed(&q->spin_us);
	int64_t start = wait_now_ns();
	if (spin_us) {
		/* Poll with exponential backoff (1, 2, 4 ... SPIN_BACKOFF_MAX
		 * pauses between looks). Every look at the other side's line pulls
		 * it over and makes the other side's next store wait for it back;
		 * looking less often lets a producer commit a few messages that
		 * the consumer then takes in one go. */
		unsigned backoff = 1;
		for (;;) {
			for (int i = 0; i < 16; i++) {
				if (ready(q))
					return 0;
				for (unsigned j = 0; j < backoff; j++)
					mq_cpu_relax();
				if (backoff < SPIN_BACKOFF_MAX)
					backoff <<= 1;
			}
			if (intr_pending(q, intr0))
				goto interrupted;
			if (wait_now_ns() - start >= (int64_t)spin_us * 1000)
				break;
			if (wait_expired(dl))
				goto timed_out;
		}
	}
	/* Between slices, look at the world: a waiter that has slept a whole
	 * slice checks that the segment is sound and gives back what dead
	 * clients held (a dead lease holder's messages, a dead reserver's
	 * chunks) — which may be exactly what it waits for. */
	int64_t next_look = start + (int64_t)WAIT_SLICE_MS * 1000000;
	for (;;) {
		if (intr_pending(q, intr0))
			goto interrupted;
		if (wait_expired(dl))
			goto timed_out;
		int64_t now = wait_now_ns();
		if (now >= next_look) {
			next_look = now + (int64_t)WAIT_SLICE_MS * 1000000;
			if (handle_check(q, true) || check(q))
				return EPROTO;
			if (q->token && reap_needed(q)) {
				int n = reap_dead(q, dl, intr0, NULL, 0);
				if (n < 0)
					return errno;
				if (ready(q))
					return 0;
			}
		}
		uint32_t seen = wait_prepare(word);
		if (ready(q))
			return 0;
		if (intr_pending(q, intr0))
			goto interrupted;
		int rc = wait_sleep(word, seen, dl, WAIT_SLICE_MS);
		if (rc == EINTR)
			return rc;
		if (rc == ETIMEDOUT)
			goto timed_out;
		if (ready(q))
			return 0;
	}
timed_out:
	/* A wait shorter than a slice never looked at the world: look once
	 * before calling it empty or full, so damage is not reported as either. */
	if (handle_check(q, true) || check(q))
		return EPROTO;
	/* Nor did it give back what dead clients held, which may be exactly
	 * what it waits for (callers that poll with short timeouts would never
	 * see a dead lease holder's messages again, without a broker). */
	if (q->token && reap_needed(q)) {
		struct timespec rdl;
		wait_deadline(&rdl, NOWAIT_LOCK_MS);
		if (reap_dead(q, &rdl, intr0, NULL, 0) > 0 && ready(q))
			return 0;
	}
	return ETIMEDOUT;
interrupted:
	intr_answer(q);
	return EINTR;
}
