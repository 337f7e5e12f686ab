/*
 * queue.c - mq_send and mq_recv: the ring, its two robust locks, waiting.
 *
 * The ring is CAPACITY fixed-size slots. Two 64-bit positions, never reset
 * and never wrapping in practice, count what happened: tail (messages ever
 * committed) and head (messages ever taken); depth is tail - head. Producers
 * serialize on send_lock and only they write tail and the slots; consumers
 * serialize on recv_lock and only they write head. So a producer and a
 * consumer never contend for a lock. Each slot carries a commit word, seq:
 * pos + 1 once the message at position pos is complete. Consumers look at
 * the seq of slot[head], never at tail, so taking a message touches only the
 * lines its bytes are in; producers read head only when their cached copy
 * says the ring is full.
 *
 * Crash contract, point by point:
 *  - No wedge: both locks are robust. If a holder dies, the kernel hands the
 *    lock to the next locker with EOWNERDEAD; lock_side() repairs and carries
 *    on. Sleeping is on futex wake-up words that are never counts of record
 *    (wait.h): a waiter always re-checks the ring, so a wake-up lost or
 *    doubled by a death costs time, never a wedge.
 *  - No torn message: a producer copies the length and payload into
 *    slot[tail] and only then publishes it with one release store of its seq.
 *    Dying before that store leaves the slot uncommitted and invisible; tail
 *    is unchanged and the next producer overwrites it. Dying after it but
 *    before tail is advanced leaves a whole message; the next producer
 *    advances tail (lock_side).
 *  - No duplicate: a consumer copies slot[head] out and only then retires it
 *    with one release store of head + 1. Dying before that store leaves the
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

/* The longest pause run between two looks while spinning (a power of two). */
#define SPIN_BACKOFF_MAX 32

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
		/* The previous holder died inside its critical section. Its
		 * commit point is a single store (a slot's seq for a producer,
		 * head for a consumer), so the ring holds either the whole
		 * message or none of it. A producer that died between committing
		 * slot[tail] and advancing tail is caught up by the next send
		 * (catch_up_tail); here head_cache is reset to head, which is
		 * always safe. */
		struct mq_shm *s = q->shm;
		if (m == &s->send_lock)
			mq_store_relaxed(&s->head_cache, mq_load_acquire(&s->head));
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

/* catch_up_tail: the position to write next, with the send lock held. A
 * producer that died after committing slot[tail] (its seq store) but before
 * advancing tail left a whole message there; step over it rather than
 * overwrite it. Checked on every send, not only after EOWNERDEAD, so a
 * segment found in that state any other way heals too; the slot's line is
 * the one this send writes anyway. At most CAPACITY steps on a scribbled
 * segment. */
static uint64_t catch_up_tail(struct mq *q)
{
	struct mq_shm *s = q->shm;
	uint64_t tail = mq_load_relaxed(&s->tail);
	uint64_t start = tail;
	while (tail - start < q->capacity &&
	       mq_load_relaxed(&handle_slot(q, tail)->seq) == tail + 1)
		tail++;
	if (tail != start)
		mq_store_relaxed(&s->tail, tail);
	return tail;
}

/* has_space: whether a producer should take the lock and look. Unlocked, so
 * only a hint; head may pass a stale tail by one until a producer repairs a
 * dead one's tail (lock_side), and that must send us to the lock too. */
static bool has_space(const struct mq *q)
{
	int64_t depth = (int64_t)(mq_load_relaxed(&q->shm->tail) - mq_load_acquire(&q->shm->head));
	return depth < (int64_t)q->capacity;
}

/* has_message: whether the slot at head is committed. Pairs with the release
 * store of the slot's seq in mq_send. */
static bool has_message(const struct mq *q)
{
	uint64_t head = mq_load_relaxed(&q->shm->head);
	return mq_load_acquire(&handle_slot(q, head)->seq) == head + 1;
}

/* wait_for: wait until READY(q) may hold, DL passes (ETIMEDOUT) or a signal
 * handler runs (EINTR): spin for the handle's spin time, then sleep on WORD.
 * Returns 0 when the caller should look again. */
static int wait_for(struct mq *q, _Atomic uint32_t *word, bool (*ready)(const struct mq *),
                    const struct timespec *dl)
{
	unsigned spin_us = mq_load_relaxed(&q->spin_us);
	if (spin_us) {
		/* Poll with exponential backoff (1, 2, 4 ... SPIN_BACKOFF_MAX
		 * pauses between looks). Every look at the other side's index
		 * pulls its cache line over and makes the other side's next
		 * store wait for it back; looking less often lets a producer
		 * commit a few messages that the consumer then takes in one go. */
		struct timespec start, now;
		clock_gettime(CLOCK_MONOTONIC, &start);
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
			return error_set(ETIMEDOUT,
			                 "mq_send on %s: %d ms passed waiting for the send lock "
			                 "(another sender holds it)",
			                 q->name, timeout_ms);
		if (rc)
			return -1;
		uint64_t tail = catch_up_tail(q);
		uint64_t head = mq_load_relaxed(&s->head_cache);
		/* head is the consumers' hot line: read it only when the cached
		 * copy says the ring is full, or that the depth passes the
		 * high-water mark (which must be exact). The latter costs at most
		 * one read per high_water sends once the mark has settled. */
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
			/* Commit point. Pairs with the acquire load of the seq in
			 * mq_recv (and has_message): the bytes are visible first. */
			mq_store_release(&slot->seq, tail + 1);
			mq_store_relaxed(&s->tail, tail + 1);
			mq_store_relaxed(&s->bytes_enqueued,
			                 mq_load_relaxed(&s->bytes_enqueued) + len);
			mq_max_u64(&s->high_water, tail + 1 - head);
			if (q->client >= 0)
				count_client(&s->clients[q->client].sent,
				             &s->clients[q->client].bytes_sent, len);
			/* Own the next slot's lines before the next send needs them,
			 * if it is known free (a consumer may still read it otherwise). */
			if (tail + 1 - head < q->capacity)
				__builtin_prefetch(handle_slot(q, tail + 1), 1, 3);
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
	int rc;
	for (;;) {
		/* Empty at a glance (the head slot is not committed): go straight
		 * to waiting, without taking and releasing the lock to find out. */
		if (timeout_ms != 0 && !has_message(q))
			goto empty;
		rc = lock_side(q, &s->recv_lock, dl);
		if (rc == ETIMEDOUT)
			return error_set(ETIMEDOUT,
			                 "mq_recv on %s: %d ms passed waiting for the receive lock "
			                 "(another receiver holds it)",
			                 q->name, timeout_ms);
		if (rc)
			return -1;
		uint64_t head = mq_load_relaxed(&s->head);
		struct mq_slot *slot = handle_slot(q, head);
		/* Pairs with the release store of the seq in mq_send. */
		if (mq_load_acquire(&slot->seq) == head + 1) {
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
	empty:
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
