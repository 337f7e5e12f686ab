/*
 * queue.c - mq_send, mq_recv, mq_send_batch, mq_recv_batch: the copying calls.
 *
 * The queue is a ring of 8-byte entries naming chunks (segment.h). A message
 * is written into a free chunk, and the chunk's number is committed at ring
 * position tail; a consumer takes the chunk named at head and gives the chunk
 * back to the pool. Producers serialize on the send lock and only they write
 * tail, fhead and the ring; consumers serialize on the receive lock and only
 * they write head, ftail, the pool and the requeue ring. So a producer and a
 * consumer never contend for a lock, and, because every entry carries the
 * seq32 of the position it commits, neither reads the other's index on the
 * fast path: a producer finds a free chunk by the pool entry at fhead being
 * committed for that position, a consumer finds a message by the ring entry
 * at head being committed for that position.
 *
 * Small chunks (FIFO segments, below MQ_LIFO_MIN_MSG): the whole send, copy
 * included, happens under the send lock and the whole receive under the
 * receive lock, one lock round per batch. Large chunks (LIFO segments): the
 * pool is a stack under the receive lock so the chunk freed last (still in
 * the cache) is written next, and the payload is copied outside the locks:
 * the chunk is WRITING (sender's) or TAKING (receiver's) meanwhile.
 *
 * Crash contract, point by point:
 *  - No wedge: the side locks are taken over from a holder that died (its
 *    OFD liveness lock is gone), and garbage in a lock word is treated the
 *    same way (lock.h). Sleeps are on futex words that are never counts of
 *    record and are cut into slices (wait.h): a lost or scribbled wake-up
 *    costs a slice, never a wedge.
 *  - No torn message: a producer writes the payload and the chunk's header
 *    and only then commits the ring entry (one release store). Dying before
 *    it leaves the chunk in the pool (repair.c puts its header back); dying
 *    after it leaves a whole message, which the next holder of the send lock
 *    accounts for (tail and fhead, from the intent record).
 *  - No duplicate: a consumer copies the message out, then commits the take
 *    with one release store of head (or rhead). Dying before it leaves the
 *    message queued (this mq_recv never returned); dying after it loses only
 *    the message mq_recv had taken, which the contract allows for mq_recv
 *    (leases, lease.c, lose nothing). The chunk goes back to the pool after
 *    the commit; the next holder of the receive lock finishes that from the
 *    intent record, so no chunk leaks.
 *  - In LIFO segments the chunk a dead sender was WRITING, or a dead
 *    receiver was TAKING, has an owner token that is no longer live: reap.c
 *    gives it back to the pool. Nothing else holds space.
 *  - A peer that scribbles: every entry, chunk number, state, back-reference
 *    and length is checked where it is used (ops.c), and a waiter checks the
 *    indices between its sleep slices, so the damage is reported as EPROTO
 *    rather than taken for "full" or "empty". A send whose lock was taken
 *    from it after it committed still counts what it committed as sent
 *    (sending it again would duplicate it; prog_sweep checks).
 */
#include <errno.h>
#include <inttypes.h>
#include <string.h>

#include "error.h"
#include "lock.h"
#include "ops.h"
#include "tiq.h"
#include "pollfd.h"

/* Messages taken in one round of the receive lock by mq_recv_batch (at
 * most), and committed together by a round of the send lock (send_fifo). */
#define RECV_ROUND 64
#define SEND_BURST 64

/* send_fifo: with the pool a FIFO, send up to N messages under one round of
 * the send lock. Returns how many (0: no free chunk), or -1 with errno. */
static int send_fifo(struct mq *q, const struct iovec *msgs, unsigned n, const struct timespec *dl,
                     uint32_t intr0)
{
	struct mq_shm *s = q->shm;
	if (lock_take(q, &s->send, dl, intr0))
		return -1;
	uint64_t tail = mq_load_relaxed(&s->tail);
	uint64_t fhead = mq_load_relaxed(&s->fhead);
	/* The ring entry's line is the one consumers poll: ask for it now, so
	 * its transfer overlaps the copy instead of following it. */
	__builtin_prefetch(&q->ring[tail & q->ring_mask], 1, 3);
	struct mq_intent *in = &s->send.intent;
	if (n > q->capacity)
		n = (unsigned)q->capacity; /* no round sends more (and repair checks it) */
	mq_store_relaxed(&in->n, n);
	mq_store_relaxed(&in->pos, tail);
	mq_store_relaxed(&in->fpos, fhead);
	intent_begin(in, MQ_OP_SEND);
	uint64_t stamp = tiq_send_stamp(q); /* the round's: the clock, or 0 */
	unsigned m = 0;
	uint64_t bytes = 0;
	int bad = 0;
	/* The entries are committed a burst at a time, in order, after every
	 * message of the burst is written: a consumer polling the ring sees the
	 * burst at once instead of chasing it entry by entry (every line the
	 * two would share moved twice). Dying in between leaves a prefix
	 * committed, which repair_send accounts for. */
	while (m < n) {
		uint32_t idx[SEND_BURST];
		unsigned k = 0, want = n - m < SEND_BURST ? n - m : SEND_BURST;
		uint64_t burst_bytes = 0;
		for (; k < want; k++) {
			uint32_t i = pool_peek_fifo(q, fhead + m + k);
			if (i == OP_NONE)
				break;
			if (i == OP_DAMAGED || !ring_slot_free(q, tail + m + k)) {
				bad = 1;
				break;
			}
			size_t len = msgs[m + k].iov_len;
			if (len)
				memcpy(handle_payload(q, i), msgs[m + k].iov_base, len);
			chunk_fill(q, i, tail + m + k, (uint32_t)len, stamp);
			idx[k] = i;
			burst_bytes += len;
		}
		if (k && !lock_mine(q, &s->send)) {
			/* Not committed: the burst's chunks are still the pool's;
			 * give them their free header back, as repair_send would. */
			for (unsigned j = 0; j < k; j++) {
				struct mq_chunk *c = handle_chunk(q, idx[j]);
				mq_store_relaxed(&c->pos, fhead + m + j);
				mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0));
			}
			bad = 1;
			break;
		}
		for (unsigned j = 0; j < k; j++)
			ring_commit(q, idx[j], tail + m + j);
		m += k;
		bytes += burst_bytes;
		if (k < want)
			break; /* the pool is empty (or bad is set) */
	}
	if (m) {
		/* tail after the entries it passes (check_consumer relies on it). */
		mq_store_release(&s->tail, tail + m);
		mq_store_relaxed(&s->fhead, fhead + m);
		mq_store_relaxed(&s->bytes_enqueued, mq_load_relaxed(&s->bytes_enqueued) + bytes);
		high_water(s, tail + m);
		if (q->client >= 0) {
			struct mq_client_slot *c = &s->clients[q->client];
			/* Under the send lock: every sending thread of ours is
			 * serialized here, so plain load-and-store suffices. */
			mq_store_relaxed(&c->sent, mq_load_relaxed(&c->sent) + m);
			mq_store_relaxed(&c->bytes_sent, mq_load_relaxed(&c->bytes_sent) + bytes);
		}
		/* Own the lines of the free chunks the next round will write (as
		 * many as this one sent, up to a burst) while our caller builds
		 * it. */
		for (unsigned j = 0; j < m && j < SEND_BURST; j++) {
			uint64_t f = fhead + m + j;
			uint64_t e = mq_load_relaxed(&q->pool[f & q->ring_mask]);
			if (!entry_ready(e, f) || entry_idx(e) >= q->capacity)
				break;
			prefetch_own(handle_chunk(q, entry_idx(e)));
			prefetch_own(handle_payload(q, entry_idx(e)));
		}
	}
	intent_end(in);
	int err = bad ? errno : 0; /* the detail of what was bad, past the release */
	/* A failed release (the lock taken from us: a scribbled word) after m
	 * messages were committed still reports them sent: they are in the
	 * ring, and a caller that sent them again would duplicate them. */
	if (lock_release(q, &s->send) != 0 && m == 0)
		return -1;
	if (bad && m == 0) {
		errno = err;
		return -1;
	}
	if (m)
		mark_role(q, MQ_ROLE_PRODUCER);
	return (int)m;
}

/* send_lifo: with the pool a stack, send up to N messages one at a time:
 * pop a chunk (receive lock), copy outside the locks, commit (send lock).
 * Returns how many (0: no free chunk), or -1 with errno. */
static int send_lifo(struct mq *q, const struct iovec *msgs, unsigned n, const struct timespec *dl,
                     uint32_t intr0)
{
	struct mq_shm *s = q->shm;
	unsigned m = 0;
	for (; m < n; m++) {
		if (lock_take(q, &s->recv, dl, intr0))
			return m ? (int)m : -1;
		uint32_t idx = pool_pop_lifo(q);
		int err = errno;
		if (lock_release(q, &s->recv) != 0) {
			if (idx < q->capacity)
				release_chunk(q, idx, MQ_CHUNK_WRITING);
			return m ? (int)m : -1;
		}
		if (idx == OP_NONE)
			return (int)m;
		if (idx == OP_DAMAGED)
			return m ? (int)m : (errno = err, -1);
		size_t len = msgs[m].iov_len;
		mq_store_relaxed(&handle_chunk(q, idx)->len, (uint32_t)len);
		if (len)
			memcpy(handle_payload(q, idx), msgs[m].iov_base, len);
		/* The message is written; an interrupt or the deadline while we
		 * wait for the send lock gives the chunk back (not sent). */
		int rc = lock_take(q, &s->send, dl, intr0);
		if (rc == 0) {
			rc = commit_locked(q, idx, len);
			err = errno;
			int released = lock_release(q, &s->send) == 0;
			if (rc == 0 && !released) {
				/* Committed, but the lock was taken from us meanwhile
				 * (a scribbled word): the message is in the ring, so it
				 * counts as sent (a caller that sent it again would
				 * duplicate it); the batch stops here. */
				mark_role(q, MQ_ROLE_PRODUCER);
				return (int)m + 1;
			}
			if (!released)
				rc = -1, err = errno;
			errno = err;
		}
		if (rc != 0) {
			err = errno;
			release_chunk(q, idx, MQ_CHUNK_WRITING);
			errno = err;
			return m ? (int)m : -1;
		}
		mark_role(q, MQ_ROLE_PRODUCER);
	}
	return (int)m;
}

/* send_msgs: mq_send and mq_send_batch. Sends the first k of the N messages
 * (waiting, up to the timeout, only for room for the first). */
static int send_msgs(struct mq *q, const char *call, const struct iovec *msgs, unsigned n,
                     int timeout_ms)
{
	struct timespec deadline;
	const struct timespec *dl;
	uint32_t intr0;
	if (call_start(q, call, timeout_ms, &deadline, &dl, &intr0))
		return -1;
	if (!q->token)
		return error_set(EINVAL, "%s on %s: this handle only observes the queue", call,
		                 q->name);
	/* The first message must be sound; later ones end the batch before
	 * themselves if they are not. */
	unsigned ok = 0;
	for (; ok < n; ok++) {
		const struct iovec *m = &msgs[ok];
		if (m->iov_len > q->max_msg || (!m->iov_base && m->iov_len))
			break;
	}
	if (ok == 0) {
		if (msgs[0].iov_len > q->max_msg)
			return error_set(EMSGSIZE,
			                 "%s on %s: message of %zu bytes, the maximum is %" PRIu64,
			                 call, q->name, msgs[0].iov_len, q->max_msg);
		return error_set(EINVAL, "%s on %s: NULL message of %zu bytes", call, q->name,
		                 msgs[0].iov_len);
	}
	struct mq_shm *s = q->shm;
	int blocked = 0;
	for (;;) {
		int k = handle_lifo(q) ? send_lifo(q, msgs, ok, dl, intr0)
		                       : send_fifo(q, msgs, ok, dl, intr0);
		if (k < 0)
			return lock_busy(timeout_ms);
		if (k > 0) {
			/* A FIFO send ends with the release of the send lock. */
			if (handle_lifo(q))
				wake_consumers(q);
			else
				wake_consumers_released(q);
			if (handle_check(q, false))
				return -1; /* the file shrank under us: what we sent is lost */
			return k;
		}
		if (!blocked) {
			mq_add_relaxed(&s->full_events, 1);
			if (timeout_ms == 0) {
				pollfd_rearm(q, MQ_POLLOUT);
				return error_set(EAGAIN,
				                 "%s on %s: queue full (%" PRIu64 " messages)",
				                 call, q->name, q->capacity);
			}
			mq_add_relaxed(&s->blocked_sends, 1);
			blocked = 1;
		}
		int rc = wait_for(q, &s->not_full, ready_space, check_producer, dl, intr0);
		if (rc == EINTR)
			return error_set(EINTR, "%s on %s: interrupted", call, q->name);
		if (rc == ETIMEDOUT)
			return error_set(ETIMEDOUT, "%s on %s: still full after %d ms", call,
			                 q->name, timeout_ms);
		if (rc)
			return -1;
	}
}

int mq_send(mq_t *q, const void *msg, size_t len, int timeout_ms)
{
	struct iovec one = {.iov_base = (void *)msg, .iov_len = len};
	return send_msgs(q, "mq_send", &one, 1, timeout_ms) < 0 ? -1 : 0;
}

int mq_send_batch(mq_t *q, const struct iovec *msgs, unsigned n, int timeout_ms)
{
	if (q && (!msgs || n == 0))
		return error_set(EINVAL, "mq_send_batch on %s: %s", q->name,
		                 msgs ? "no messages (n is 0)" : "NULL message array");
	return send_msgs(q, "mq_send_batch", msgs, n, timeout_ms);
}

/* recv_fifo: with the pool a FIFO, take up to N messages (all from the
 * requeue ring, or all from the ring) under one round of the receive lock,
 * copy them into BUFS and give their chunks back. Returns how many (0: none
 * waiting), or -1 with errno (EMSGSIZE if the first does not fit: nothing
 * taken). */
static int recv_fifo(struct mq *q, struct iovec *bufs, unsigned n, const struct timespec *dl,
                     uint32_t intr0)
{
	struct mq_shm *s = q->shm;
	if (lock_take(q, &s->recv, dl, intr0))
		return -1;
	struct mq_intent *in = &s->recv.intent;
	uint32_t src, idx[RECV_ROUND];
	uint64_t pos0;
	unsigned k = 0;
	uint64_t bytes = 0;
	int err = 0;
	uint32_t first = next_message(q, &src, &pos0);
	if (first == OP_NONE)
		tiq_idle(q);
	for (uint32_t i = first; k < n && k < RECV_ROUND;) {
		if (i == OP_NONE)
			break;
		if (i == OP_DAMAGED) {
			err = EPROTO;
			break;
		}
		uint32_t len = mq_load_relaxed(&handle_chunk(q, i)->len);
		if (len > bufs[k].iov_len) {
			if (k == 0) {
				err = EMSGSIZE;
				error_set(EMSGSIZE,
				          "mq_recv on %s: message of %u bytes, buffer of %zu (the "
				          "message stays queued)",
				          q->name, len, bufs[0].iov_len);
			}
			break;
		}
		if (len)
			memcpy(bufs[k].iov_base, handle_payload(q, i), len);
		bufs[k].iov_len = len;
		bytes += len;
		idx[k++] = i;
		if (k < n && k < RECV_ROUND)
			i = message_at(q, src, pos0 + k);
	}
	if (k) {
		mq_store_relaxed(&in->n, k);
		mq_store_relaxed(&in->src, src);
		mq_store_relaxed(&in->pos, pos0);
		mq_store_relaxed(&in->fpos, mq_load_relaxed(&s->ftail));
		intent_begin(in, MQ_OP_TAKE);
		if (!lock_mine(q, &s->recv)) {
			int e = errno;
			lock_release(q, &s->recv); /* fails: not ours; says so */
			errno = e;
			return -1;
		}
		take_commit(q, src, pos0, k);
		if (src == MQ_SRC_RING) {
			uint64_t now = 0;
			for (unsigned j = 0; j < k; j++)
				tiq_take(q, mq_load_relaxed(&handle_chunk(q, idx[j])->sent), &now);
		}
		for (unsigned j = 0; j < k; j++) {
			if (pool_push(q, idx[j]) != 0) {
				/* Only a scribbled pool gets here: the record stays, so
				 * every later holder reports the damage too. */
				err = errno;
				lock_release(q, &s->recv);
				errno = err;
				return -1;
			}
		}
		mq_store_relaxed(&s->retired, mq_load_relaxed(&s->retired) + k);
		mq_store_relaxed(&s->bytes_retired, mq_load_relaxed(&s->bytes_retired) + bytes);
		if (src == MQ_SRC_REQUEUE)
			mq_store_relaxed(&s->redelivered, mq_load_relaxed(&s->redelivered) + k);
		if (q->client >= 0) {
			struct mq_client_slot *c = &s->clients[q->client];
			mq_store_relaxed(&c->received, mq_load_relaxed(&c->received) + k);
			mq_store_relaxed(&c->bytes_received,
			                 mq_load_relaxed(&c->bytes_received) + bytes);
		}
		intent_end(in);
	}
	int lerr = err ? errno : 0;
	if (lock_release(q, &s->recv) != 0)
		return -1;
	if (k == 0 && err) {
		errno = lerr;
		return -1;
	}
	if (k)
		mark_role(q, MQ_ROLE_CONSUMER);
	return (int)k;
}

/* recv_lifo: with the pool a stack, take up to N messages one at a time:
 * take (receive lock), copy outside the locks, give the chunk back (receive
 * lock). Returns how many, or -1 with errno as recv_fifo. */
static int recv_lifo(struct mq *q, struct iovec *bufs, unsigned n, const struct timespec *dl,
                     uint32_t intr0)
{
	struct mq_shm *s = q->shm;
	unsigned k = 0;
	for (; k < n; k++) {
		if (lock_take(q, &s->recv, dl, intr0))
			return k ? (int)k : -1;
		uint32_t src;
		uint64_t pos;
		uint32_t idx = next_message(q, &src, &pos);
		if (idx == OP_NONE)
			tiq_idle(q);
		uint32_t len = 0;
		int too_big = 0;
		if (idx < q->capacity) {
			len = mq_load_relaxed(&handle_chunk(q, idx)->len);
			too_big = len > bufs[k].iov_len;
			if (!too_big) {
				lease_take(q, MQ_OP_TAKE_COPY, src, pos, idx, q->token);
				client_add(q, held, 1);
			}
		}
		int err = errno;
		if (lock_release(q, &s->recv) != 0)
			return k ? (int)k : -1;
		if (idx == OP_NONE)
			return (int)k;
		if (idx == OP_DAMAGED)
			return k ? (int)k : (errno = err, -1);
		if (too_big) {
			if (k)
				return (int)k;
			return error_set(EMSGSIZE,
			                 "mq_recv on %s: message of %u bytes, buffer of %zu (the "
			                 "message stays queued)",
			                 q->name, len, bufs[0].iov_len);
		}
		if (len)
			memcpy(bufs[k].iov_base, handle_payload(q, idx), len);
		bufs[k].iov_len = len;
		/* The message is ours now, whatever happens to the chunk. */
		release_chunk(q, idx, MQ_CHUNK_TAKING);
		mark_role(q, MQ_ROLE_CONSUMER);
	}
	return (int)k;
}

/* recv_msgs: mq_recv and mq_recv_batch. */
static int recv_msgs(struct mq *q, const char *call, struct iovec *bufs, unsigned n, int timeout_ms)
{
	struct timespec deadline;
	const struct timespec *dl;
	uint32_t intr0;
	if (call_start(q, call, timeout_ms, &deadline, &dl, &intr0))
		return -1;
	if (!q->token)
		return error_set(EINVAL, "%s on %s: this handle only observes the queue", call,
		                 q->name);
	struct mq_shm *s = q->shm;
	int blocked = 0;
	for (;;) {
		/* Empty at a glance: go straight to waiting, without taking and
		 * releasing the lock to find out. */
		if (timeout_ms == 0 || ready_message(q)) {
			int k = handle_lifo(q) ? recv_lifo(q, bufs, n, dl, intr0)
			                       : recv_fifo(q, bufs, n, dl, intr0);
			if (k < 0)
				return lock_busy(timeout_ms);
			if (k > 0) {
				/* A FIFO receive ends with the release of the
				 * receive lock. */
				if (handle_lifo(q))
					wake_producers(q);
				else
					wake_producers_released(q);
				if (handle_check(q, false))
					return -1; /* the file shrank under us: the copy is garbage
					            */
				return k;
			}
		}
		if (!blocked) {
			mq_add_relaxed(&s->empty_events, 1);
			if (timeout_ms == 0) {
				pollfd_rearm(q, MQ_POLLIN);
				return error_set(EAGAIN, "%s on %s: queue empty", call, q->name);
			}
			mq_add_relaxed(&s->blocked_recvs, 1);
			blocked = 1;
		}
		int rc = wait_for(q, &s->not_empty, ready_message, check_consumer, dl, intr0);
		if (rc == EINTR)
			return error_set(EINTR, "%s on %s: interrupted", call, q->name);
		if (rc == ETIMEDOUT)
			return error_set(ETIMEDOUT, "%s on %s: still empty after %d ms", call,
			                 q->name, timeout_ms);
		if (rc)
			return -1;
	}
}

ssize_t mq_recv(mq_t *q, void *buf, size_t cap, int timeout_ms)
{
	if (q && !buf && cap)
		return error_set(EINVAL, "mq_recv on %s: NULL buffer of %zu bytes", q->name, cap);
	struct iovec one = {.iov_base = buf, .iov_len = cap};
	if (recv_msgs(q, "mq_recv", &one, 1, timeout_ms) < 0)
		return -1;
	return (ssize_t)one.iov_len;
}

int mq_recv_batch(mq_t *q, struct iovec *bufs, unsigned n, int timeout_ms)
{
	if (q && (!bufs || n == 0))
		return error_set(EINVAL, "mq_recv_batch on %s: %s", q->name,
		                 bufs ? "no buffers (n is 0)" : "NULL buffer array");
	for (unsigned i = 0; q && bufs && i < n; i++)
		if (!bufs[i].iov_base && bufs[i].iov_len)
			return error_set(EINVAL, "mq_recv_batch on %s: buffer %u is NULL", q->name,
			                 i);
	return recv_msgs(q, "mq_recv_batch", bufs, n, timeout_ms);
}

int mq_set_spin(mq_t *q, unsigned spin_us)
{
	if (!q)
		return error_set(EINVAL, "mq_set_spin: no queue handle");
	if (spin_us > 1000000)
		return error_set(EINVAL, "mq_set_spin on %s: %u us is more than a second", q->name,
		                 spin_us);
	mq_store_relaxed(&q->spin_us, spin_us);
	return 0;
}
