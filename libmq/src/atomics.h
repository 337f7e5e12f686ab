/*
 * atomics.h - every memory-ordering primitive the shared ring uses, in one place.
 *
 * The segment is shared between processes, so all cross-process words are
 * C11 atomics (lock-free, address-free on every target we build for; see the
 * static assertions in segment.h). Each call site says what its acquire or
 * release pairs with.
 */
#ifndef LIBMQ_ATOMICS_H
#define LIBMQ_ATOMICS_H

#include <stdatomic.h>
#include <stdint.h>

#define mq_load_relaxed(p)     atomic_load_explicit((p), memory_order_relaxed)
#define mq_load_acquire(p)     atomic_load_explicit((p), memory_order_acquire)
#define mq_store_relaxed(p, v) atomic_store_explicit((p), (v), memory_order_relaxed)
#define mq_store_release(p, v) atomic_store_explicit((p), (v), memory_order_release)
#define mq_add_relaxed(p, v)   atomic_fetch_add_explicit((p), (v), memory_order_relaxed)
#define mq_cas(p, expp, v)                                                                         \
	atomic_compare_exchange_strong_explicit((p), (expp), (v), memory_order_seq_cst,            \
	                                        memory_order_seq_cst)

/* mq_cpu_relax: tell the CPU we are spinning (frees the sibling hyperthread). */
static inline void mq_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/*
 * mq_max_u64: raise *P to at least V (relaxed; used for the high-water mark,
 * which only one lock holder at a time writes, but readers read it unlocked).
 */
static inline void mq_max_u64(_Atomic uint64_t *p, uint64_t v)
{
	if (mq_load_relaxed(p) < v)
		mq_store_relaxed(p, v);
}

/*
 * mq_spread_bad: whether two positions of a running queue, LO and HI (each
 * only grows), are out of their invariant LO - BELOW <= HI <= LO + ABOVE
 * (and below 2^63). Read without a lock, so each bound is judged on reads in
 * the order that cannot produce a false alarm: HI before LO for the upper
 * bound (LO can only have grown since), LO before HI for the lower one.
 */
static inline int mq_spread_bad(_Atomic uint64_t *lo, _Atomic uint64_t *hi, uint64_t below,
                                uint64_t above)
{
	uint64_t lo1 = atomic_load_explicit(lo, memory_order_acquire);
	uint64_t h = atomic_load_explicit(hi, memory_order_acquire);
	uint64_t lo2 = atomic_load_explicit(lo, memory_order_acquire);
	if (lo2 >= (UINT64_C(1) << 63) || h >= (UINT64_C(1) << 63))
		return 1;
	return (h > lo2 && h - lo2 > above) || (lo1 > h && lo1 - h > below);
}

#endif /* LIBMQ_ATOMICS_H */
