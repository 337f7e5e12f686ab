/* hist.c - latency histograms with fixed log-spaced buckets (hist.h). */
#include "hist.h"

#define EXACT    5  /* buckets 0..4 hold 0..4 µs exactly */
#define TOP_LOG2 38 /* the last bucket's upper bound is 2^38 µs */

unsigned hist_bucket(uint64_t us)
{
	if (us < EXACT)
		return (unsigned)us;
	/* (2^k + s * 2^(k-2), 2^k + (s+1) * 2^(k-2)]: by us - 1, whose leading
	 * bit is k and next two bits s. */
	uint64_t x = us - 1;
	unsigned k = 63u - (unsigned)__builtin_clzll(x);
	if (k >= TOP_LOG2)
		return HIST_BUCKETS - 1;
	unsigned s = (unsigned)(x >> (k - 2)) & 3u;
	return EXACT + (k - 2) * 4 + s;
}

uint64_t hist_upper_us(unsigned i)
{
	if (i < EXACT)
		return i;
	unsigned k = (i - EXACT) / 4 + 2, s = (i - EXACT) % 4;
	return ((uint64_t)1 << k) + (uint64_t)(s + 1) * ((uint64_t)1 << (k - 2));
}

void hist_record(struct hist *h, uint64_t us)
{
	atomic_fetch_add_explicit(&h->bucket[hist_bucket(us)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

void hist_snapshot(struct hist *h, struct hist_snap *out)
{
	out->count = 0;
	for (unsigned i = 0; i < HIST_BUCKETS; i++) {
		out->bucket[i] = atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
		out->count += out->bucket[i];
	}
	out->sum_us = atomic_load_explicit(&h->sum_us, memory_order_relaxed);
}

double hist_quantile(const struct hist_snap *s, double q)
{
	if (s->count == 0)
		return -1;
	/* The rank of the quantile, 1-based; then the bucket that holds it. */
	double rank = q * (double)s->count;
	if (rank < 1)
		rank = 1;
	uint64_t below = 0;
	unsigned i = 0;
	while (i < HIST_BUCKETS - 1 && (double)(below + s->bucket[i]) < rank)
		below += s->bucket[i++];
	double hi = (double)hist_upper_us(i);
	if (i < EXACT)
		return hi;
	double lo = (double)hist_upper_us(i - 1);
	return lo + (hi - lo) * (rank - (double)below) / (double)s->bucket[i];
}

uint64_t hist_count_le(const struct hist_snap *s, uint64_t upper)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < HIST_BUCKETS && hist_upper_us(i) <= upper; i++)
		n += s->bucket[i];
	return n;
}
