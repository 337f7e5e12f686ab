/*
 * queue.c - mq_send and mq_recv: the ring, its two robust locks, waiting.
 *
 * The ring is CAPACITY fixed-size slots. Two 64-bit indices, never reset and
 * never wrapping in practice, are the counts of record: tail (messages ever
 * committed) and head (messages ever taken); depth is tail - head. Producers
 * serialize on send_lock and only they write tail; consumers serialize on
 * recv_lock and only they write head. So a producer and a consumer never
 * contend for a lock, and each side reads the other's index only when its
 * cached copy says the ring is full (or empty).
 *
 * Crash contract, point by point:
 *  - No wedge: both locks are robust. If a holder dies, the kernel hands the
 *    lock to the next locker with EOWNERDEAD; lock_side() repairs and carries
 *    on. Sleeping is on futex wake-up words that are never counts of record
 *    (wait.h): a waiter always re-checks head and tail, so a wake-up lost or
 *    doubled by a death costs time, never a wedge.
 *  - No torn message: a producer copies the payload into slot[tail] and only
 *    then publishes it by one release store of tail + 1. Dying before that
 *    store leaves tail unchanged: the half-written slot is invisible and the
 *    next producer overwrites it.
 *  - No duplicate: a consumer copies slot[head] out and only then retires it
 *    by one release store of head + 1. Dying before that store leaves the
 *    message queued for the next consumer (this mq_recv never returned, so
 *    nobody saw it); dying after it loses only the message that mq_recv had
 *    taken, which the contract allows.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <string.h>

#include "atomics.h"
#include "error.h"
#include "handle.h"
#include "wait.h"

/* timed_lock: lock M, giving up at DL (CLOCK_MONOTONIC). */
static int timed_lock(pthread_mutex_t *m, const struct timespec *dl)
{
#if defined(__SANITIZE_THREAD__)
	/* GCC 12's TSan runtime does not intercept pthread_mutex_clocklock, and
	 * its pthread_mutex_timedlock misses EOWNERDEAD, so it would report bogus
	 * unlocks. In TSan builds only, the lock wait ignores the deadline (a
	 * holder keeps the lock for one copy; a dead one is recovered anyway). */
	(void)dl;
	return pthread_mutex_lock(m);
#else
	return pthread_mutex_clocklock(m, CLOCK_MONOTONIC, dl);
#endif
}

/* lock_side: take one side's lock (with DL, or without a deadline). Returns 0,
 * ETIMEDOUT, or EPROTO if the lock is unusable. */
static int lock_side(struct mq *q, pthread_mutex_t *m, const struct timespec *dl)
{
	int rc = pthread_mutex_trylock(m);
	if (rc == EBUSY)
		rc = dl ? timed_lock(m, dl) : pthread_mutex_lock(m);
	if (rc == 0)
		return 0;
	if (rc == EOWNERDEAD) {
		/* The previous holder died inside its critical section. Every
		 * shared word it could have been writing is a single aligned
		 * store, and the index it had not yet stored is the commit
		 * point, so the ring is already consistent. The caches are reset
		 * to values that are always safe: head_cache to head (<= head),
		 * tail_cache to head too (head <= tail, and head == tail_cache
		 * makes the next consumer reload tail). */
		struct mq_shm *s = q->shm;
		uint64_t head = mq_load_acquire(&s->head);
		if (m == &s->send_lock)
			mq_store_relaxed(&s->head_cache, head);
		else
			mq_store_relaxed(&s->tail_cache, head);
		mq_add_relaxed(&s->lock_repairs, 1);
		pthread_mutex_consistent(m);
		return 0;
	}
	if (rc == ETIMEDOUT)
		return rc;
	return error_set(EPROTO, "queue %s: its %s lock is unusable (%s); recreate the queue",
	                 q->name, m == &q->shm->send_lock ? "send" : "receive", strerror(rc)),
	       EPROTO;
}

/* count_client: add one message of LEN bytes to a client's counters. The
 * caller holds the side's lock, so every thread of the client is serialized
 * here and plain loads and stores suffice (readers only read them). */
static inline void count_client(_Atomic uint64_t *msgs, _Atomic uint64_t *bytes, uint64_t len)
{
	mq_store_relaxed(msgs, mq_load_relaxed(msgs) + 1);
	mq_store_relaxed(bytes, mq_load_relaxed(bytes) + len);
}

/* mark_role: record what a client does, once (the RMW is off the fast path). */
static inline void mark_role(struct mq_client_slot *c, uint32_t role)
{
	if (!(mq_load_relaxed(&c->role) & role))
		atomic_fetch_or_explicit(&c->role, role, memory_order_relaxed);
}

static bool has_space(const struct mq *q)
{
	return mq_load_relaxed(&q->shm->tail) - mq_load_acquire(&q->shm->head) < q->capacity;
}

static bool has_message(const struct mq *q)
{
	return mq_load_acquire(&q->shm->tail) != mq_load_relaxed(&q->shm->head);
}

/* wait_for: wait until READY(q) may hold, DL passes (ETIMEDOUT) or a signal
 * handler runs (EINTR): spin for the handle's spin time, then sleep on WORD.
 * Returns 0 when the caller should look again. */
static int wait_for(struct mq *q, _Atomic uint32_t *word, bool (*ready)(const struct mq *),
                    const struct timespec *dl)
{
	unsigned spin_us = mq_load_relaxed(&q->spin_us);
	if (spin_us) {
		struct timespec start, now;
		clock_gettime(CLOCK_MONOTONIC, &start);
		for (;;) {
			for (int i = 0; i < 64; i++) {
				if (ready(q))
					return 0;
				mq_cpu_relax();
			}
			clock_gettime(CLOCK_MONOTONIC, &now);
			long us = (now.tv_sec - start.tv_sec) * 1000000L +
			          (now.tv_nsec - start.tv_nsec) / 1000;
			if (us >= (long)spin_us)
				break;
		}
	}
	if (wait_expired(dl))
		return ETIMEDOUT;
	uint32_t seen = wait_prepare(word);
	if (ready(q))
		return 0;
	return wait_sleep(word, seen, dl);
}

static int check_timeout(const char *call, struct mq *q, int timeout_ms)
{
	if (timeout_ms < -1)
		return error_set(EINVAL, "%s on %s: timeout %d ms (use -1, 0 or > 0)", call,
		                 q->name, timeout_ms);
	return 0;
}

int mq_send(mq_t *q, const void *msg, size_t len, int timeout_ms)
{
	if (!q)
		return error_set(EINVAL, "mq_send: no queue handle");
	if (!msg && len)
		return error_set(EINVAL, "mq_send on %s: NULL message of %zu bytes", q->name, len);
	if (check_timeout("mq_send", q, timeout_ms))
		return -1;
	struct mq_shm *s = q->shm;
	if (len > q->max_msg)
		return error_set(EMSGSIZE,
		                 "mq_send on %s: message of %zu bytes, the maximum is %llu",
		                 q->name, len, (unsigned long long)q->max_msg);

	struct timespec deadline, *dl = NULL;
	if (timeout_ms > 0) {
		wait_deadline(&deadline, timeout_ms);
		dl = &deadline;
	}
	bool blocked = false;
	for (;;) {
		int rc = lock_side(q, &s->send_lock, dl);
		if (rc == ETIMEDOUT)
			break;
		if (rc)
			return -1;
		uint64_t tail = mq_load_relaxed(&s->tail);
		uint64_t head = mq_load_relaxed(&s->head_cache);
		if (tail - head >= q->capacity ||
		    tail + 1 - head > mq_load_relaxed(&s->high_water)) {
			/* Pairs with the release store of head in mq_recv: the
			 * consumer finished reading the slots below head. */
			head = mq_load_acquire(&s->head);
			mq_store_relaxed(&s->head_cache, head);
		}
		if (tail - head < q->capacity) {
			struct mq_slot *slot = handle_slot(q, tail);
			slot->len = len;
			if (len)
				memcpy(slot->data, msg, len);
			mq_store_relaxed(&s->bytes_enqueued,
			                 mq_load_relaxed(&s->bytes_enqueued) + len);
			mq_max_u64(&s->high_water, tail + 1 - head);
			if (q->client >= 0)
				count_client(&s->clients[q->client].sent,
				             &s->clients[q->client].bytes_sent, len);
			/* Commit point. Pairs with the acquire load of tail in
			 * mq_recv: the slot's bytes are visible before its index. */
			mq_store_release(&s->tail, tail + 1);
			pthread_mutex_unlock(&s->send_lock);
			if (q->client >= 0)
				mark_role(&s->clients[q->client], MQ_ROLE_PRODUCER);
			wait_wake(&s->not_empty);
			return 0;
		}
		pthread_mutex_unlock(&s->send_lock);
		if (!blocked) {
			mq_add_relaxed(&s->full_events, 1);
			if (timeout_ms == 0)
				return error_set(EAGAIN,
				                 "mq_send on %s: queue full (%llu messages)",
				                 q->name, (unsigned long long)q->capacity);
			mq_add_relaxed(&s->blocked_sends, 1);
			blocked = true;
		}
		rc = wait_for(q, &s->not_full, has_space, dl);
		if (rc == EINTR)
			return error_set(EINTR, "mq_send on %s: interrupted by a signal", q->name);
		if (rc == ETIMEDOUT)
			break;
	}
	return error_set(ETIMEDOUT, "mq_send on %s: still full after %d ms", q->name, timeout_ms);
}

ssize_t mq_recv(mq_t *q, void *buf, size_t cap, int timeout_ms)
{
	if (!q)
		return error_set(EINVAL, "mq_recv: no queue handle");
	if (!buf && cap)
		return error_set(EINVAL, "mq_recv on %s: NULL buffer of %zu bytes", q->name, cap);
	if (check_timeout("mq_recv", q, timeout_ms))
		return -1;
	struct mq_shm *s = q->shm;

	struct timespec deadline, *dl = NULL;
	if (timeout_ms > 0) {
		wait_deadline(&deadline, timeout_ms);
		dl = &deadline;
	}
	bool blocked = false;
	for (;;) {
		int rc = lock_side(q, &s->recv_lock, dl);
		if (rc == ETIMEDOUT)
			break;
		if (rc)
			return -1;
		uint64_t head = mq_load_relaxed(&s->head);
		uint64_t tail = mq_load_relaxed(&s->tail_cache);
		if (head == tail) {
			/* Pairs with the release store of tail in mq_send. */
			tail = mq_load_acquire(&s->tail);
			mq_store_relaxed(&s->tail_cache, tail);
		}
		if (head != tail) {
			struct mq_slot *slot = handle_slot(q, head);
			uint64_t len = slot->len;
			if (len > q->max_msg) {
				/* Only a scribbled segment gets here: retire the slot so
				 * the queue moves on, and say so. */
				mq_store_release(&s->head, head + 1);
				pthread_mutex_unlock(&s->recv_lock);
				return error_set(EPROTO,
				                 "mq_recv on %s: corrupt message (length %llu, "
				                 "maximum %llu) discarded",
				                 q->name, (unsigned long long)len,
				                 (unsigned long long)q->max_msg);
			}
			if (len > cap) {
				pthread_mutex_unlock(&s->recv_lock);
				return error_set(
				        EMSGSIZE,
				        "mq_recv on %s: message of %llu bytes, buffer of %zu "
				        "(the message stays queued)",
				        q->name, (unsigned long long)len, cap);
			}
			if (len)
				memcpy(buf, slot->data, len);
			mq_store_relaxed(&s->bytes_dequeued,
			                 mq_load_relaxed(&s->bytes_dequeued) + len);
			if (q->client >= 0)
				count_client(&s->clients[q->client].received,
				             &s->clients[q->client].bytes_received, len);
			/* Commit point. Pairs with the acquire load of head in
			 * mq_send: we are done with the slot before it is reused. */
			mq_store_release(&s->head, head + 1);
			pthread_mutex_unlock(&s->recv_lock);
			if (q->client >= 0)
				mark_role(&s->clients[q->client], MQ_ROLE_CONSUMER);
			wait_wake(&s->not_full);
			return (ssize_t)len;
		}
		pthread_mutex_unlock(&s->recv_lock);
		if (!blocked) {
			mq_add_relaxed(&s->empty_events, 1);
			if (timeout_ms == 0)
				return error_set(EAGAIN, "mq_recv on %s: queue empty", q->name);
			mq_add_relaxed(&s->blocked_recvs, 1);
			blocked = true;
		}
		rc = wait_for(q, &s->not_empty, has_message, dl);
		if (rc == EINTR)
			return error_set(EINTR, "mq_recv on %s: interrupted by a signal", q->name);
		if (rc == ETIMEDOUT)
			break;
	}
	return error_set(ETIMEDOUT, "mq_recv on %s: still empty after %d ms", q->name, timeout_ms);
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
