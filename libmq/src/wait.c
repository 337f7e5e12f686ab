/* wait.c - futex sleep/wake on the segment's words, CLOCK_MONOTONIC deadlines, slices. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "atomics.h"
#include "wait.h"

void wait_deadline(struct timespec *dl, int timeout_ms)
{
	clock_gettime(CLOCK_MONOTONIC, dl);
	dl->tv_sec += timeout_ms / 1000;
	dl->tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
	if (dl->tv_nsec >= 1000000000L) {
		dl->tv_sec++;
		dl->tv_nsec -= 1000000000L;
	}
}

static int before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

int wait_expired(const struct timespec *dl)
{
	if (!dl)
		return 0;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return !before(&now, dl);
}

int wait_ms_left(const struct timespec *dl)
{
	if (!dl)
		return INT_MAX;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!before(&now, dl))
		return 0;
	int64_t ms =
	        (int64_t)(dl->tv_sec - now.tv_sec) * 1000 + (dl->tv_nsec - now.tv_nsec) / 1000000;
	return ms > INT_MAX ? INT_MAX : (int)ms;
}

int64_t wait_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t wait_coarse_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t wait_prepare(_Atomic uint32_t *word)
{
	/* Always an RMW, even when bit 0 is already set: it is what pairs with
	 * the RMW in wait_wake (see wait.h), and orders the caller's re-check of
	 * the queue after it. */
	return atomic_fetch_or_explicit(word, 1u, memory_order_seq_cst) | 1u;
}

int wait_sleep(_Atomic uint32_t *word, uint32_t seen, const struct timespec *dl, int slice_ms)
{
	/* Not FUTEX_PRIVATE: the word is shared between processes. The bitset
	 * variant takes an absolute CLOCK_MONOTONIC deadline: the earlier of DL
	 * and the end of this slice. */
	struct timespec until;
	wait_deadline(&until, slice_ms > 0 ? slice_ms : 1);
	int slice_first = !dl || before(&until, dl);
	const struct timespec *abs = slice_first ? &until : dl;
	long rc = syscall(SYS_futex, word, FUTEX_WAIT_BITSET, seen, abs, NULL,
	                  FUTEX_BITSET_MATCH_ANY);
	if (rc == 0)
		return 0;
	if (errno == EINTR)
		return EINTR;
	if (errno == ETIMEDOUT)
		return slice_first ? 0 : ETIMEDOUT;
	return 0; /* EAGAIN: the word changed before we slept */
}

void wait_wake_slow(_Atomic uint32_t *word)
{
	uint32_t v = mq_load_relaxed(word);
	while (v & 1u) {
		if (mq_cas(word, &v, (v + 2u) & ~1u)) {
			syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
			return;
		}
	}
	/* Another waker cleared the flag first and woke everyone. */
}

void wait_kick(_Atomic uint32_t *word)
{
	/* A seq_cst RMW that changes the value: a waiter whose fetch_or came
	 * before it sleeps on a stale value and returns at once; one whose
	 * fetch_or comes after it sees, in its re-check, what our caller stored
	 * before calling us. */
	atomic_fetch_add_explicit(word, 2u, memory_order_seq_cst);
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void wait_wake_word(_Atomic uint32_t *word, int n)
{
	syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
}
