/* wait.c - futex sleep/wake on the segment's wake-up words, CLOCK_MONOTONIC deadlines. */
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

int wait_expired(const struct timespec *dl)
{
	if (!dl)
		return 0;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return now.tv_sec > dl->tv_sec || (now.tv_sec == dl->tv_sec && now.tv_nsec >= dl->tv_nsec);
}

uint32_t wait_prepare(_Atomic uint32_t *word)
{
	/* Always an RMW, even when bit 0 is already set: it is what pairs with
	 * the RMW in wait_wake (see wait.h), and orders the caller's re-check of
	 * the queue after it. */
	return atomic_fetch_or_explicit(word, 1u, memory_order_seq_cst) | 1u;
}

int wait_sleep(_Atomic uint32_t *word, uint32_t seen, const struct timespec *dl)
{
	/* Not FUTEX_PRIVATE: the word is shared between processes. The bitset
	 * variant takes an absolute CLOCK_MONOTONIC deadline, so a retry after
	 * a spurious wake-up does not stretch the timeout. */
	long rc =
	        syscall(SYS_futex, word, FUTEX_WAIT_BITSET, seen, dl, NULL, FUTEX_BITSET_MATCH_ANY);
	if (rc == 0)
		return 0;
	if (errno == ETIMEDOUT || errno == EINTR)
		return errno;
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
