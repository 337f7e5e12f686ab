/*
 * tiq.h - time in queue: the queue's clock, the stamp a producer puts on
 * each message, and the histogram a consumer adds it to.
 *
 * What it costs, and why it is cheap enough to be always on: a producer reads
 * the clock once per lock round (one rdtsc, ~10 ns, on the TSC clock; a
 * vDSO clock_gettime, ~25 ns, otherwise) and stores the stamp into the chunk
 * header line it writes anyway; a consumer reads the clock once per lock
 * round and, per message taken from the ring, does one multiply, one
 * count-leading-zeros and three plain load-and-store increments in lines
 * only consumers write (under the receive lock: no atomic read-modify-write,
 * no line shared with producers). Nothing is sampled: every message is
 * measured, so the histogram's count is the number of messages taken. A
 * process started with MQ_TIME_IN_QUEUE=0 stamps and measures nothing (its
 * messages count as not stamped: they are not measured and a waiting one
 * shows an age of 0); the benchmark's "time in queue off" row uses it.
 */
#ifndef LIBMQ_TIQ_H
#define LIBMQ_TIQ_H

#include <stdint.h>
#include <time.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "atomics.h"
#include "handle.h"

/* tiq_clock_now: the time on clock CLOCK (MQ_CLOCK_*), 0 for another value. */
static inline uint64_t tiq_clock_now(uint32_t clock)
{
#if defined(__x86_64__)
	if (clock == MQ_CLOCK_TSC)
		return __rdtsc();
#endif
	if (clock == MQ_CLOCK_MONO) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	}
	return 0;
}

/* tiq_stamp: the stamp for messages Q sends now (0 if it does not stamp). */
static inline uint64_t tiq_stamp(const struct mq *q)
{
	return q->tiq_on ? tiq_clock_now(q->tiq_clock) : 0;
}

/* tiq_ns: clock ticks as nanoseconds. */
static inline uint64_t tiq_ns(const struct mq *q, uint64_t ticks)
{
	double ns = (double)ticks * q->tiq_ns_per_tick;
	return ns < 1.8e19 ? (uint64_t)ns : UINT64_MAX / 2;
}

/* tiq_bucket: the histogram bucket of NS (see struct mq_tiq). */
static inline unsigned tiq_bucket(uint64_t ns)
{
	if (ns < 1024)
		return 0;
	unsigned o = 63u - (unsigned)__builtin_clzll(ns); /* >= 10 */
	unsigned i = 1 + 4 * (o - 10) + ((unsigned)(ns >> (o - 2)) & 3u);
	return i < MQ_TIQ_BUCKETS ? i : MQ_TIQ_BUCKETS - 1;
}

/* tiq_record (receive lock): a message stamped SENT was taken at NOW. */
static inline void tiq_record(struct mq *q, uint64_t sent, uint64_t now)
{
	if (!sent || !q->tiq)
		return;
	struct mq_tiq *t = q->tiq;
	uint64_t ns = now > sent ? tiq_ns(q, now - sent) : 0;
	_Atomic uint64_t *b = &t->bucket[tiq_bucket(ns)];
	mq_store_relaxed(b, mq_load_relaxed(b) + 1);
	mq_store_relaxed(&t->sum_ns, mq_load_relaxed(&t->sum_ns) + ns);
	if (ns > mq_load_relaxed(&t->max_ns))
		mq_store_relaxed(&t->max_ns, ns);
	/* count last: a reader that sees it sees the bucket (roughly; stats). */
	mq_store_release(&t->count, mq_load_relaxed(&t->count) + 1);
}

/* tiq_init (creator): choose the clock of a new segment's section T. */
void tiq_init(struct mq_tiq *t);

/* tiq_attach: set Q's clock fields from its segment (validated geometry). */
void tiq_attach(struct mq *q);

/* tiq_oldest_ns (no lock): how long the oldest message waiting in Q (ring or
 * requeue) has waited, 0 if none or not stamped. */
uint64_t tiq_oldest_ns(struct mq *q);

#endif /* LIBMQ_TIQ_H */
