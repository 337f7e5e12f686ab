/*
 * lock.h - the two side locks (send, receive): crash-proof, interruptible,
 * with deadlines, and safe against scribbled lock words.
 *
 * A lock word holds 0 or its holder's owner token (segment.h), plus
 * MQ_LOCK_WAITERS once someone may sleep on it. Taking it is one CAS;
 * releasing it is one CAS back to 0 that also proves the word was still ours,
 * and a futex wake only if the waiters bit was set.
 *
 * Why not a robust pthread mutex (layout version 1 used them): its word holds
 * a thread id that only the kernel's robust list can vouch for, so a peer
 * that writes a live process's tid into it wedges every locker in a wait no
 * signal or deadline ends. Here a waiter sleeps in slices; after each it asks
 * whether the token in the word is still live (the client table entry it
 * names is ACTIVE with that generation, and its OFD liveness lock is held):
 * if not, the holder died or the word is garbage, and the waiter takes the
 * lock over with a CAS from exactly the value it judged, counts a lock
 * repair, and finishes or undoes the dead holder's operation from the side's
 * intent record (repair.c) before going on.
 */
#ifndef LIBMQ_LOCK_H
#define LIBMQ_LOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "handle.h"
#include "segment.h"

/* LOCK_NO_INTR: for lock_take's INTR0, a wait no mq_interrupt cuts short
 * (finishing what a call started: returning a chunk it took). */
#define LOCK_NO_INTR ((int64_t)-1)

/* lock_take: take SIDE's lock for Q, waiting until DL (CLOCK_MONOTONIC, NULL:
 * no deadline) unless an interrupt newer than INTR0 arrives (LOCK_NO_INTR:
 * none counts). Returns 0 with the lock held and the side's state sound, or
 * ETIMEDOUT, EINTR, or EPROTO (the detail says why; the lock is not held). */
int lock_take_slow(struct mq *q, struct mq_side *side, const struct timespec *dl, int64_t intr0);
int lock_taken(struct mq *q, struct mq_side *side, bool takeover);

static inline _Atomic int *lock_holds(struct mq *q, struct mq_side *side)
{
	return side == &q->shm->send ? &q->holds_send : &q->holds_recv;
}

/* lock_mark: say (V 1) or unsay (V 0) that this handle holds SIDE's lock: in
 * the process (a forged own token) and in its client entry (for waiters in
 * other processes). Plain stores to lines this handle writes anyway. */
static inline void lock_mark(struct mq *q, struct mq_side *side, int v)
{
	atomic_store_explicit(lock_holds(q, side), v, memory_order_relaxed);
	if (q->client >= 0)
		atomic_store_explicit(&q->shm->clients[q->client].holding[side != &q->shm->send],
		                      (uint8_t)v, memory_order_relaxed);
}

static inline int lock_take(struct mq *q, struct mq_side *side, const struct timespec *dl,
                            int64_t intr0)
{
	uint32_t cur = 0;
	/* The uncontended case inline: one CAS (pairs with the release CAS in
	 * lock_release), our flag, and a look at the operation record. */
	if (q->token &&
	    atomic_compare_exchange_strong_explicit(&side->lock, &cur, q->token,
	                                            memory_order_acquire, memory_order_relaxed)) {
		lock_mark(q, side, 1);
		if (atomic_load_explicit(&side->intent.op, memory_order_acquire) == 0)
			return 0;
		return lock_taken(q, side, false);
	}
	return lock_take_slow(q, side, dl, intr0);
}

/* lock_release: release SIDE's lock. Returns 0, or EPROTO if the word no
 * longer held our token: another process took it while we held it, so what
 * we just did may have been overwritten. */
int lock_release_slow(struct mq *q, struct mq_side *side);

static inline int lock_release(struct mq *q, struct mq_side *side)
{
	lock_mark(q, side, 0);
	uint32_t cur = q->token;
	/* Nobody waits and nobody took it from us: one CAS (pairs with the
	 * acquire CAS in lock_take). */
	if (atomic_compare_exchange_strong_explicit(&side->lock, &cur, 0, memory_order_release,
	                                            memory_order_relaxed))
		return 0;
	return lock_release_slow(q, side);
}

/* token_live: whether TOKEN names a live holder (see segment.h). */
int token_live(struct mq *q, uint32_t token);

/* token_describe: a few words on who TOKEN is ("pid 4242", "the broker",
 * "nobody (garbage 0x1)") into BUF. */
void token_describe(struct mq *q, uint32_t token, char *buf, size_t len);

/* side_name: "send" or "receive". */
const char *side_name(const struct mq *q, const struct mq_side *side);

#endif /* LIBMQ_LOCK_H */
