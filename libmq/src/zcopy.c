/*
 * zcopy.c - zero-copy sending (mq_reserve, mq_commit, mq_cancel) and the
 * chunk moves it shares with the copying calls of LIFO segments.
 *
 * A reservation is a chunk taken from the pool into state WRITING with the
 * reserver's token: it holds one message's worth of capacity, nothing else.
 * The ring position is only taken by mq_commit, so a slow reserver delays
 * nobody's messages; at worst it holds its chunk until it commits, cancels,
 * detaches or dies (then reap.c gives the chunk back: its token is no
 * longer live). A commit is the same ring commit as a send's (ops.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "error.h"
#include "interrupt.h"
#include "lock.h"
#include "ops.h"
#include "tiq.h"
#include "pollfd.h"

uint32_t pool_pop_lifo(struct mq *q)
{
	uint32_t idx = pool_top_lifo(q);
	if (idx >= q->capacity)
		return idx;
	struct mq_shm *s = q->shm;
	uint64_t top = mq_load_relaxed(&s->ftail);
	struct mq_intent *in = &s->recv.intent;
	mq_store_relaxed(&in->idx, idx);
	mq_store_relaxed(&in->fpos, top);
	mq_store_relaxed(&in->owner, q->token);
	intent_begin(in, MQ_OP_POP);
	mq_store_relaxed(&handle_chunk(q, idx)->state, MQ_CHUNK_STATE(MQ_CHUNK_WRITING, q->token));
	client_add(q, held, 1);
	mq_store_release(&s->ftail, top - 1);
	intent_end(in);
	return idx;
}

uint32_t reserve_fifo(struct mq *q)
{
	struct mq_shm *s = q->shm;
	uint64_t f = mq_load_relaxed(&s->fhead);
	uint32_t idx = pool_peek_fifo(q, f);
	if (idx >= q->capacity)
		return idx;
	struct mq_intent *in = &s->send.intent;
	mq_store_relaxed(&in->idx, idx);
	mq_store_relaxed(&in->fpos, f);
	mq_store_relaxed(&in->owner, q->token);
	intent_begin(in, MQ_OP_RESERVE);
	mq_store_relaxed(&handle_chunk(q, idx)->state, MQ_CHUNK_STATE(MQ_CHUNK_WRITING, q->token));
	client_add(q, held_send, 1);
	mq_store_release(&s->fhead, f + 1);
	intent_end(in);
	return idx;
}

int commit_locked(struct mq *q, uint32_t idx, size_t len)
{
	struct mq_shm *s = q->shm;
	struct mq_chunk *c = handle_chunk(q, idx);
	if (mq_load_relaxed(&c->state) != MQ_CHUNK_STATE(MQ_CHUNK_WRITING, q->token))
		return error_set(
		        EINVAL,
		        "mq_commit on %s: the buffer is not reserved by this handle (already "
		        "committed or cancelled?)",
		        q->name);
	uint32_t reserved = mq_load_relaxed(&c->len);
	if (len > reserved)
		return error_set(EINVAL, "mq_commit on %s: %zu bytes, %u were reserved", q->name,
		                 len, reserved);
	uint64_t t = mq_load_relaxed(&s->tail);
	if (!ring_slot_free(q, t))
		return -1;
	struct mq_intent *in = &s->send.intent;
	mq_store_relaxed(&in->idx, idx);
	mq_store_relaxed(&in->pos, t);
	mq_store_relaxed(&in->owner, q->token);
	intent_begin(in, MQ_OP_COMMIT);
	if (!lock_mine(q, &s->send))
		return -1;
	chunk_queue(q, idx, t, (uint32_t)len, tiq_send_stamp(q));
	mq_store_release(&s->tail, t + 1);
	client_add(q, held_send, (uint64_t)-1);
	mq_store_relaxed(&s->bytes_enqueued, mq_load_relaxed(&s->bytes_enqueued) + len);
	high_water(s, t + 1);
	if (q->client >= 0) {
		struct mq_client_slot *cl = &s->clients[q->client];
		mq_store_relaxed(&cl->sent, mq_load_relaxed(&cl->sent) + 1);
		mq_store_relaxed(&cl->bytes_sent, mq_load_relaxed(&cl->bytes_sent) + len);
	}
	intent_end(in);
	return 0;
}

/* free_held: with the receive lock held, give back chunk IDX that Q holds in
 * state KIND. Returns 0, or -1 with errno (EINVAL: not held so). */
static int free_held(struct mq *q, uint32_t idx, uint32_t kind, const char *call)
{
	struct mq_shm *s = q->shm;
	struct mq_chunk *c = handle_chunk(q, idx);
	if (mq_load_relaxed(&c->state) != MQ_CHUNK_STATE(kind, q->token))
		return error_set(EINVAL, "%s on %s: chunk %u is not held by this handle", call,
		                 q->name, idx);
	uint32_t len = mq_load_relaxed(&c->len);
	if (chunk_free_locked(q, idx) != 0)
		return -1;
	client_add(q, held, (uint64_t)-1);
	if (kind == MQ_CHUNK_TAKING) {
		mq_store_relaxed(&s->retired, mq_load_relaxed(&s->retired) + 1);
		mq_store_relaxed(&s->bytes_retired, mq_load_relaxed(&s->bytes_retired) + len);
		if (q->client >= 0) {
			struct mq_client_slot *cl = &s->clients[q->client];
			mq_store_relaxed(&cl->received, mq_load_relaxed(&cl->received) + 1);
			mq_store_relaxed(&cl->bytes_received,
			                 mq_load_relaxed(&cl->bytes_received) + len);
		}
	}
	return 0;
}

int release_chunk(struct mq *q, uint32_t idx, uint32_t kind)
{
	/* Finishing what a call started: no interrupt stops it, and a lock
	 * held by a stopped process stops it only for a while (then the chunk
	 * waits for our detach, or for the reap after our death). */
	struct timespec dl;
	wait_deadline(&dl, 2000);
	int err = errno;
	if (lock_take(q, &q->shm->recv, &dl, LOCK_NO_INTR) != 0)
		return -1;
	int rc = free_held(q, idx, kind, kind == MQ_CHUNK_WRITING ? "mq_cancel" : "mq_recv");
	int ferr = errno;
	if (lock_release(q, &q->shm->recv) != 0)
		return -1;
	wake_producers(q);
	errno = rc ? ferr : err;
	return rc;
}

void *mq_reserve(mq_t *q, size_t len, int timeout_ms)
{
	struct timespec deadline;
	const struct timespec *dl;
	uint32_t intr0;
	if (call_start(q, "mq_reserve", timeout_ms, &deadline, &dl, &intr0))
		return NULL;
	if (!q->token)
		return error_null(EINVAL, "mq_reserve on %s: this handle only observes the queue",
		                  q->name);
	if (len > q->max_msg)
		return error_null(EMSGSIZE, "mq_reserve on %s: %zu bytes, the maximum is %" PRIu64,
		                  q->name, len, q->max_msg);
	struct mq_shm *s = q->shm;
	struct mq_side *side = handle_lifo(q) ? &s->recv : &s->send;
	int blocked = 0;
	for (;;) {
		if (lock_take(q, side, dl, intr0)) {
			lock_busy(timeout_ms);
			return NULL;
		}
		uint32_t idx = handle_lifo(q) ? pool_pop_lifo(q) : reserve_fifo(q);
		int err = errno;
		if (lock_release(q, side) != 0)
			return NULL;
		if (idx < q->capacity) {
			mq_store_relaxed(&handle_chunk(q, idx)->len, (uint32_t)len);
			mark_role(q, MQ_ROLE_PRODUCER);
			return handle_payload(q, idx);
		}
		if (idx == OP_DAMAGED) {
			errno = err;
			return NULL;
		}
		if (!blocked) {
			mq_add_relaxed(&s->full_events, 1);
			if (timeout_ms == 0) {
				pollfd_rearm(q, MQ_POLLOUT);
				return error_null(EAGAIN,
				                  "mq_reserve on %s: queue full (%" PRIu64
				                  " messages)",
				                  q->name, q->capacity);
			}
			mq_add_relaxed(&s->blocked_sends, 1);
			blocked = 1;
		}
		int rc = wait_for(q, &s->not_full, ready_space, check_producer, dl, intr0);
		if (rc == EINTR)
			return error_null(EINTR, "mq_reserve on %s: interrupted", q->name);
		if (rc == ETIMEDOUT)
			return error_null(ETIMEDOUT, "mq_reserve on %s: still full after %d ms",
			                  q->name, timeout_ms);
		if (rc)
			return NULL;
	}
}

/* buffer_chunk: the chunk whose payload starts at BUF, or -1 (EINVAL). */
static int64_t buffer_chunk(struct mq *q, const void *buf, const char *call)
{
	const unsigned char *first = handle_payload(q, 0);
	const unsigned char *p = buf;
	if (!p || p < first || (uint64_t)(p - first) % q->chunk_size != 0 ||
	    (uint64_t)(p - first) / q->chunk_size >= q->capacity)
		return error_set(EINVAL, "%s on %s: %p is not a buffer mq_reserve returned", call,
		                 q->name, buf);
	return (int64_t)((uint64_t)(p - first) / q->chunk_size);
}

int mq_commit(mq_t *q, void *buf, size_t len)
{
	if (!q)
		return error_set(EINVAL, "mq_commit: no queue handle");
	if (handle_check(q, false))
		return -1;
	int64_t idx = buffer_chunk(q, buf, "mq_commit");
	if (idx < 0)
		return -1;
	if (lock_take(q, &q->shm->send, NULL, intr_start(q)))
		return -1;
	int rc = commit_locked(q, (uint32_t)idx, len);
	int err = errno;
	/* Committed, the message counts as sent even if the lock was taken
	 * from us meanwhile (queue.c: sending it again would duplicate it). */
	if (lock_release(q, &q->shm->send) != 0 && rc)
		return -1;
	if (rc)
		return errno = err, -1;
	wake_consumers(q);
	return handle_check(q, false);
}

int mq_cancel(mq_t *q, void *buf)
{
	if (!q)
		return error_set(EINVAL, "mq_cancel: no queue handle");
	if (handle_check(q, false))
		return -1;
	int64_t idx = buffer_chunk(q, buf, "mq_cancel");
	if (idx < 0)
		return -1;
	if (lock_take(q, &q->shm->recv, NULL, intr_start(q)))
		return -1;
	int rc = free_held(q, (uint32_t)idx, MQ_CHUNK_WRITING, "mq_cancel");
	int err = errno;
	if (lock_release(q, &q->shm->recv) != 0)
		return -1;
	if (rc)
		return errno = err, -1;
	wake_producers(q);
	return 0;
}
