/*
 * lease.c - at-least-once receiving: mq_recv_lease, mq_peek, mq_ack, mq_nack.
 *
 * A lease takes a message off the ring (head moves on, so other consumers go
 * on with the next one) but leaves it in its chunk, in state HELD with the
 * holder's owner token. The chunk is retired only by mq_ack; mq_nack puts it
 * on the requeue ring, which every receive looks at before the ring, so it
 * is delivered again ahead of messages never delivered. When the holder dies
 * its token stops being live (its OFD liveness lock is gone), and reap.c
 * requeues the chunk the same way: no visibility timeout, nothing lost.
 *
 * Crash contract, point by point:
 *  - The take is committed by one store (head or rhead) after the intent
 *    record names the chunk, its new delivery count and its holder; the chunk
 *    is marked HELD right after. A holder of the receive lock that dies in
 *    between is rolled forward (repair.c), so the chunk is HELD by the dead
 *    token and reap.c requeues it: the message is delivered again.
 *  - An ack moves the chunk into the pool (a free, intent MQ_OP_FREE); a nack
 *    onto the requeue ring (MQ_OP_REQUEUE). Both are finished by repair.c if
 *    the holder dies midway: the message is then either retired (the ack had
 *    begun) or delivered again, never lost and never both.
 *  - deliveries counts takes with a lease: 1 on the first, + 1 on each
 *    redelivery, so a consumer can tell a possible duplicate.
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

/* take_leased: lease the next message (at most CAP bytes; bigger: EMSGSIZE,
 * it stays queued) into *LEASE; returns its chunk, or -1 with errno. */
static int64_t take_leased(struct mq *q, const char *call, size_t cap, int timeout_ms,
                           mq_lease_t *lease)
{
	struct timespec deadline;
	const struct timespec *dl;
	uint32_t intr0;
	if (call_start(q, call, timeout_ms, &deadline, &dl, &intr0))
		return -1;
	if (!lease)
		return error_set(EINVAL, "%s on %s: NULL lease", call, q->name);
	if (!q->token)
		return error_set(EINVAL, "%s on %s: this handle only observes the queue", call,
		                 q->name);
	struct mq_shm *s = q->shm;
	int blocked = 0;
	for (;;) {
		if (timeout_ms == 0 || ready_message(q)) {
			if (lock_take(q, &s->recv, dl, intr0))
				return lock_busy(timeout_ms);
			uint32_t src;
			uint64_t pos;
			uint32_t idx = next_message(q, &src, &pos);
			if (idx == OP_NONE)
				tiq_idle(q);
			struct mq_chunk *c = idx < q->capacity ? handle_chunk(q, idx) : NULL;
			uint32_t len = c ? mq_load_relaxed(&c->len) : 0;
			if (c && len <= cap) {
				lease_take(q, MQ_OP_LEASE, src, pos, idx, q->token);
				client_add(q, held, 1);
				client_add(q, in_flight, 1);
				memset(lease, 0, sizeof(*lease));
				lease->id = mq_load_relaxed(&c->id);
				lease->deliveries = mq_load_relaxed(&c->deliveries);
				lease->slot = idx;
				lease->owner = q->token;
				lease->len = len;
			}
			int err = errno;
			if (lock_release(q, &s->recv) != 0)
				return -1;
			if (c && len > cap)
				return error_set(
				        EMSGSIZE,
				        "%s on %s: message of %u bytes, buffer of %zu (the "
				        "message stays queued)",
				        call, q->name, len, cap);
			if (c) {
				mark_role(q, MQ_ROLE_CONSUMER);
				return idx;
			}
			if (idx == OP_DAMAGED)
				return errno = err, -1;
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

ssize_t mq_recv_lease(mq_t *q, void *buf, size_t cap, int timeout_ms, mq_lease_t *lease)
{
	if (q && !buf && cap)
		return error_set(EINVAL, "mq_recv_lease on %s: NULL buffer of %zu bytes", q->name,
		                 cap);
	int64_t idx = take_leased(q, "mq_recv_lease", cap, timeout_ms, lease);
	if (idx < 0)
		return -1;
	/* The chunk is ours until we ack or nack it: copy outside the lock. */
	if (lease->len)
		memcpy(buf, handle_payload(q, (uint64_t)idx), lease->len);
	if (handle_check(q, false))
		return -1;
	return (ssize_t)lease->len;
}

const void *mq_peek(mq_t *q, size_t *len, int timeout_ms, mq_lease_t *lease)
{
	if (q && !len)
		return error_null(EINVAL, "mq_peek on %s: NULL length", q->name);
	int64_t idx = take_leased(q, "mq_peek", SIZE_MAX, timeout_ms, lease);
	if (idx < 0)
		return NULL;
	*len = lease->len;
	return handle_payload(q, (uint64_t)idx);
}

enum settle { SETTLE_ACK, SETTLE_NACK };

/* settle: mq_ack and mq_nack. */
static int settle(struct mq *q, const mq_lease_t *lease, enum settle how)
{
	const char *call = how == SETTLE_ACK ? "mq_ack" : "mq_nack";
	if (!q)
		return error_set(EINVAL, "%s: no queue handle", call);
	if (!lease)
		return error_set(EINVAL, "%s on %s: NULL lease", call, q->name);
	if (handle_check(q, false))
		return -1;
	if (!q->token || lease->owner != q->token || lease->slot >= q->capacity)
		return error_set(EINVAL,
		                 "%s on %s: lease of message %" PRIu64
		                 " was not taken through this handle",
		                 call, q->name, lease->id);
	struct mq_shm *s = q->shm;
	if (lock_take(q, &s->recv, NULL, intr_start(q)))
		return -1;
	struct mq_chunk *c = handle_chunk(q, lease->slot);
	int rc = 0;
	if (mq_load_relaxed(&c->state) != MQ_CHUNK_STATE(MQ_CHUNK_HELD, q->token) ||
	    mq_load_relaxed(&c->id) != lease->id ||
	    mq_load_relaxed(&c->deliveries) != lease->deliveries) {
		rc = error_set(EINVAL,
		               "%s on %s: message %" PRIu64
		               " is not leased to this handle (acked or nacked already?)",
		               call, q->name, lease->id);
	} else if (how == SETTLE_ACK) {
		uint32_t len = mq_load_relaxed(&c->len);
		rc = chunk_free_locked(q, lease->slot);
		if (rc == 0) {
			mq_store_relaxed(&s->acked, mq_load_relaxed(&s->acked) + 1);
			mq_store_relaxed(&s->retired, mq_load_relaxed(&s->retired) + 1);
			mq_store_relaxed(&s->bytes_retired,
			                 mq_load_relaxed(&s->bytes_retired) + len);
			if (q->client >= 0) {
				struct mq_client_slot *cl = &s->clients[q->client];
				mq_store_relaxed(&cl->received, mq_load_relaxed(&cl->received) + 1);
				mq_store_relaxed(&cl->bytes_received,
				                 mq_load_relaxed(&cl->bytes_received) + len);
			}
			client_add(q, acked, 1);
		}
	} else {
		struct mq_intent *in = &s->recv.intent;
		intent_expect(q, in, lease->slot);
		mq_store_relaxed(&in->pos, mq_load_relaxed(&s->rtail));
		intent_begin(in, MQ_OP_REQUEUE);
		rc = requeue_push(q, lease->slot);
		intent_end(in);
		if (rc == 0) {
			mq_store_relaxed(&s->nacked, mq_load_relaxed(&s->nacked) + 1);
			client_add(q, nacked, 1);
		}
	}
	if (rc == 0) {
		client_add(q, held, (uint64_t)-1);
		client_add(q, in_flight, (uint64_t)-1);
	}
	int err = errno;
	if (lock_release(q, &s->recv) != 0)
		return -1;
	if (rc)
		return errno = err, -1;
	if (how == SETTLE_ACK)
		wake_producers(q);
	else
		wake_consumers(q);
	return 0;
}

int mq_ack(mq_t *q, const mq_lease_t *lease)
{
	return settle(q, lease, SETTLE_ACK);
}

int mq_nack(mq_t *q, const mq_lease_t *lease)
{
	return settle(q, lease, SETTLE_NACK);
}
