/*
 * wait.h - sleeping and waking on the segment's futex words, CLOCK_MONOTONIC
 * deadlines, and interrupts (mq_interrupt).
 *
 * A wake-up word is never a count of record (the ring is): bit 0 says
 * "someone may be asleep on me", the other bits change on every wake-up. A
 * waiter sets bit 0, re-checks the queue and sleeps only if the word is
 * unchanged; a waker clears bit 0, bumps the word and wakes all. A waiter
 * killed in its sleep leaves bit 0 set: that costs the next waker one
 * spurious wake-up, then the word is clean again. Nothing can leak.
 *
 * Every sleep is also cut into slices (WAIT_SLICE_MS at most), so that a
 * waiter looks at the world again on its own: whether the segment is still
 * sound, whether a lock holder or a lease holder died. A peer that scribbles
 * on a wake-up word can then cost a waiter at most one slice, never its
 * deadline.
 */
#ifndef LIBMQ_WAIT_H
#define LIBMQ_WAIT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* The longest a waiter sleeps before it looks at the segment again. */
#define WAIT_SLICE_MS 200

/* wait_deadline: the CLOCK_MONOTONIC instant TIMEOUT_MS (>0) from now. */
void wait_deadline(struct timespec *dl, int timeout_ms);

/* wait_expired: whether DL (may be NULL: never) has passed. */
int wait_expired(const struct timespec *dl);

/* wait_prepare: announce a sleeper on WORD; returns the value to sleep on.
 * The caller must re-check its condition after this and before wait_sleep. */
uint32_t wait_prepare(_Atomic uint32_t *word);

/* wait_sleep: sleep while *WORD == SEEN, until woken, DL (NULL: none) or
 * SLICE_MS milliseconds from now, whichever comes first. Returns 0 (woken,
 * the word changed, or the slice ended), ETIMEDOUT (DL passed) or EINTR (a
 * signal handler ran). */
int wait_sleep(_Atomic uint32_t *word, uint32_t seen, const struct timespec *dl, int slice_ms);

/* wait_wake_slow: wake every sleeper on WORD (called when bit 0 was seen). */
void wait_wake_slow(_Atomic uint32_t *word);

/* wait_kick: change WORD and wake every sleeper on it, whether or not bit 0
 * is set, so that a waiter between its last check and its sleep does not go
 * to sleep (mq_interrupt). Async-signal-safe. */
void wait_kick(_Atomic uint32_t *word);

/* wait_wake_word: wake N sleepers on the lock word WORD. Async-signal-safe. */
void wait_wake_word(_Atomic uint32_t *word, int n);

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

/* wait_wake_fenced: wait_wake for a caller whose last store to the segment
 * was followed by a locked RMW (the release of a side lock, which it has just
 * done). On x86 every locked instruction is a full barrier: the commit is
 * visible to all before this load is performed, so a plain load decides as
 * the RMW would (a sleeper's fetch_or either comes before it, and we see bit
 * 0, or after it, and the sleeper's re-check sees the commit), without a
 * second locked instruction per call and without pulling WORD's line out of
 * a sleeper's cache. Elsewhere it is wait_wake. */
static inline void wait_wake_fenced(_Atomic uint32_t *word)
{
#if defined(__x86_64__) || defined(__i386__)
	atomic_signal_fence(memory_order_seq_cst); /* the compiler keeps it after the release */
	if (atomic_load_explicit(word, memory_order_relaxed) & 1u)
		wait_wake_slow(word);
#else
	wait_wake(word);
#endif
}

/* wait_ms_left: milliseconds until DL (NULL: INT32_MAX), at least 0. */
int wait_ms_left(const struct timespec *dl);

/* wait_now_ns: CLOCK_MONOTONIC in nanoseconds. */
int64_t wait_now_ns(void);

/* wait_coarse_ns: CLOCK_MONOTONIC_COARSE in nanoseconds (a few ns, 4 ms steps). */
int64_t wait_coarse_ns(void);

#endif /* LIBMQ_WAIT_H */
