/* hist.h - latency histograms: fixed log-spaced buckets, lock-free recording, p50/p99 estimates. */
#ifndef MQBRIDGE_HIST_H
#define MQBRIDGE_HIST_H

/*
 * A histogram of durations in whole microseconds. Buckets are fixed, so
 * recording is one relaxed atomic add per bucket and one to the sum, from
 * any thread, never a lock; readers take a snapshot (each counter read once,
 * so a snapshot taken while others record may be a few samples apart from
 * the sum, never torn).
 *
 * Bucket i holds the values in (upper(i-1), upper(i)]: 0, 1, 2, 3 and 4 µs
 * exactly, then four buckets per doubling, (2^k, 2^k * 1.25], ...,
 * (2^k * 1.75, 2^(k+1)], up to 2^38 µs (76 hours; longer ones count in the
 * last bucket). Every power of two is a bucket's upper bound, so the
 * Prometheus buckets le = 2^k µs are exact sums of ours. A quantile is
 * interpolated inside the bucket that holds it: off by at most a quarter of
 * the value (the bucket's width), usually far less.
 */
#include <stdatomic.h>
#include <stdint.h>

#define HIST_BUCKETS 149 /* 5 exact (0..4 µs) + 4 per doubling from 4 µs to 2^38 µs */

struct hist {
	atomic_uint_least64_t bucket[HIST_BUCKETS];
	atomic_uint_least64_t sum_us;
};

/* struct hist_snap: a copy of a histogram's counters. */
struct hist_snap {
	uint64_t bucket[HIST_BUCKETS];
	uint64_t count; /* the buckets' sum */
	uint64_t sum_us;
};

/* hist_bucket: the bucket that holds US microseconds. */
unsigned hist_bucket(uint64_t us);

/* hist_upper_us: bucket I's upper bound (inclusive), in microseconds. */
uint64_t hist_upper_us(unsigned i);

/* hist_record: count one duration of US microseconds in H (any thread). */
void hist_record(struct hist *h, uint64_t us);

/* hist_snapshot: H's counters into *OUT. */
void hist_snapshot(struct hist *h, struct hist_snap *out);

/* hist_quantile: the Q-quantile (0 < Q <= 1) of S in microseconds,
 * interpolated in its bucket; -1 if S is empty. */
double hist_quantile(const struct hist_snap *s, double q);

/* hist_count_le: how many of S's durations are at most UPPER microseconds,
 * where UPPER is a bucket's upper bound (exact then; else the buckets wholly
 * below UPPER). */
uint64_t hist_count_le(const struct hist_snap *s, uint64_t upper);

#endif /* MQBRIDGE_HIST_H */
