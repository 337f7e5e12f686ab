/*
 * tiq.h - time in queue: the queue's clock, the stamp a producer puts on
 * messages, and the histogram the consumers add their waits to.
 *
 * What it costs, and why it is cheap enough to be always on. Reading the
 * clock is what costs: rdtsc is ~10 ns of microcode on the 2-core test
 * machine (a vDSO clock_gettime ~25 ns, CLOCK_MONOTONIC_COARSE ~6 ns but in
 * 4 ms steps), and a 64-byte send takes ~65 ns: one clock read per message
 * on the producer, the side that limits 1+1 throughput, cost 15-20 % of it
 * (bench/, tput64 against libmq-notiq, MQ_TIME_IN_QUEUE=0), and so did the
 * arithmetic on the consumer's side, done per message between two cache
 * misses. So:
 *  - A producer stamps one send round in PERIOD (tiq_send_stamp, under the
 *    send lock); the others carry 0, "not measured". PERIOD adapts to the
 *    producer's rate, which the stamps themselves measure: it doubles (up to
 *    16) while stamps come less than PERIOD microseconds apart, i.e. above
 *    ~1 M messages a second, and falls back to 1 (every message stamped) as
 *    soon as the producer is slower than that. Below that rate the clock read
 *    is under 1 % of the time between sends, and every message is measured.
 *  - A consumer reads the clock only for a stamped message it takes from
 *    the ring (tiq_take, under the receive lock), stores the wait in its
 *    handle, and adds 32 at a time to the histogram (tiq_flush: a multiply, a
 *    count-leading-zeros, plain load-and-store increments in lines only
 *    consumers write). The pending ones reach the segment when 32 are
 *    pending, when the first is a millisecond old, when the consumer finds
 *    the queue empty, and at mq_detach; a consumer killed in between loses at
 *    most 31 measurements (under a millisecond of them), never a message.
 * The histogram is then a sample: every message at the rates where a wait
 * is long enough to matter, one in up to 16 of a producer's above ~1 M/s;
 * its count is the number measured. The age of the oldest waiting message
 * (tiq_oldest_ns) is the age of the oldest stamped one among the first 64
 * waiting: younger than the true oldest by at most 15 of one producer's
 * messages sent at over ~1 M/s (microseconds), or, right after a fast
 * producer slows down, by its first 15 slow messages at most. A process
 * started with MQ_TIME_IN_QUEUE=0 stamps and measures nothing: the
 * benchmark's "time in queue off" row.
 *
 * Crash contract of what this adds to layout 3, point by point:
 *  - A stamp is stored into the chunk header before the ring entry's release
 *    store commits the message (chunk_queue), so a committed message, and one
 *    a repair commits for a dead producer, carries its own stamp or 0.
 *  - The histogram is only statistics: a consumer killed inside tiq_flush
 *    leaves some counters added and others not (count is stored last); the
 *    next holder of the receive lock goes on from what is there. Nothing a
 *    take or a send decides reads it.
 *  - Everything here is read as untrusted: a clock or rate in the section
 *    that does not make sense turns measuring off for the handle (tiq_attach);
 *    the bucket written is the index this process computed (never one read
 *    from the segment); a scribbled stamp gives a wrong figure, never a wrong
 *    address (a stamp is a number, not an index).
 *  - The oldest age is read without a lock, from positions read again after
 *    the stamps (tiq_oldest_ns): a message taken meanwhile is looked at again.
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

/* tiq_send_sample (send lock): a stamp now, and the next period (tiq.c). */
uint64_t tiq_send_sample(struct mq *q);

/* tiq_send_stamp (send lock): the stamp for Q's send round now: the clock
 * once in a period, else 0 (not measured). */
static inline uint64_t tiq_send_stamp(struct mq *q)
{
	if (!q->tiq_on)
		return 0;
	if (q->tiq_skip) {
		q->tiq_skip--;
		return 0;
	}
	return tiq_send_sample(q);
}

/* tiq_flush (receive lock): add Q's pending measurements to the histogram. */
void tiq_flush(struct mq *q);

/* tiq_take (receive lock): a message stamped SENT was taken from the ring;
 * *NOW is the clock (read here on the first stamped message of the call,
 * 0 before). */
static inline void tiq_take(struct mq *q, uint64_t sent, uint64_t *now)
{
	if (!sent || !q->tiq_on)
		return;
	if (!*now)
		*now = tiq_clock_now(q->tiq_clock);
	uint64_t t = *now;
	if (q->tiq_npend == 0)
		q->tiq_first = t;
	q->tiq_pend[q->tiq_npend++] = t > sent ? t - sent : 0;
	if (q->tiq_npend == sizeof(q->tiq_pend) / sizeof(q->tiq_pend[0]) ||
	    t - q->tiq_first > q->tiq_flush_ticks)
		tiq_flush(q);
}

/* tiq_idle (receive lock): Q found the queue empty: nothing stays pending. */
static inline void tiq_idle(struct mq *q)
{
	if (q->tiq_npend)
		tiq_flush(q);
}

/* tiq_init (creator): choose the clock of a new segment's section T. */
void tiq_init(struct mq_tiq *t);

/* tiq_attach: set Q's clock fields from its segment (validated geometry). */
void tiq_attach(struct mq *q);

/* tiq_detach: flush what Q has pending (takes the receive lock briefly). */
void tiq_detach(struct mq *q);

/* tiq_oldest_ns (no lock): how long the oldest message waiting in Q (ring or
 * requeue) has waited, 0 if none or not stamped. */
uint64_t tiq_oldest_ns(struct mq *q);

#endif /* LIBMQ_TIQ_H */
