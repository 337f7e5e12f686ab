/*
 * wait.h - sleeping and waking on the segment's wake-up words (futexes).
 *
 * A wake-up word is never a count of record (that is head and tail): bit 0
 * says "someone may be asleep on me", the other bits change on every
 * wake-up. A waiter sets bit 0, re-checks the queue and sleeps only if the
 * word is unchanged; a waker clears bit 0, bumps the word and wakes all. A
 * waiter killed in its sleep leaves bit 0 set: that costs the next waker one
 * spurious wake-up, then the word is clean again. Nothing can leak.
 */
#ifndef LIBMQ_WAIT_H
#define LIBMQ_WAIT_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* wait_deadline: the CLOCK_MONOTONIC instant TIMEOUT_MS (>0) from now. */
void wait_deadline(struct timespec *dl, int timeout_ms);

/* wait_expired: whether DL (may be NULL: never) has passed. */
int wait_expired(const struct timespec *dl);

/* wait_prepare: announce a sleeper on WORD; returns the value to sleep on.
 * The caller must re-check its condition after this and before wait_sleep. */
uint32_t wait_prepare(_Atomic uint32_t *word);

/* wait_sleep: sleep while *WORD == SEEN, until woken or DL (NULL: forever).
 * Returns 0 (woken, or the word changed), ETIMEDOUT or EINTR. */
int wait_sleep(_Atomic uint32_t *word, uint32_t seen, const struct timespec *dl);

/* wait_wake_slow: wake every sleeper on WORD (called when bit 0 was seen). */
void wait_wake_slow(_Atomic uint32_t *word);

/* wait_wake: after a commit, wake sleepers on WORD if there may be any.
 * The read is an RMW (fetch_add 0) so it is ordered against the sleeper's
 * fetch_or in wait_prepare in WORD's modification order: if ours comes first,
 * the sleeper's fetch_or synchronizes with it and its re-check sees our
 * commit; if the sleeper's comes first, we see bit 0 and wake it. On the fast
 * path nobody else writes WORD, so its line stays in the writer's cache. */
static inline void wait_wake(_Atomic uint32_t *word)
{
	if (atomic_fetch_add_explicit(word, 0, memory_order_seq_cst) & 1u)
		wait_wake_slow(word);
}

#endif /* LIBMQ_WAIT_H */
