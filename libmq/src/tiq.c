/* tiq.c - time in queue: choosing and calibrating the clock, the age of the oldest message, the
 * histogram snapshot. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "error.h"
#include "handle.h"
#include "libmq_admin.h"
#include "lock.h"
#include "tiq.h"
#include "wait.h"

static uint64_t mono_ns(void)
{
	return tiq_clock_now(MQ_CLOCK_MONO);
}

/* tsc_usable: whether the kernel itself keeps time with the TSC (it then
 * trusts it to be constant-rate and the same on every CPU). Read once per
 * process (mq_attach and mq_create ask): 0 unknown, 1 yes, 2 no. */
static int tsc_usable(void)
{
#if defined(__x86_64__)
	static _Atomic int known;
	int v = atomic_load_explicit(&known, memory_order_relaxed);
	if (!v) {
		FILE *f = fopen("/sys/devices/system/clocksource/clocksource0/current_clocksource",
		                "re");
		char cs[32] = "";
		v = f && fgets(cs, sizeof(cs), f) && !strcmp(cs, "tsc\n") ? 1 : 2;
		if (f)
			fclose(f);
		atomic_store_explicit(&known, v, memory_order_relaxed);
	}
	return v == 1;
#else
	return 0;
#endif
}

/* tsc_sample: a TSC reading and the CLOCK_MONOTONIC time it was taken at:
 * the middle of two clock reads around it, retried (up to 100 times) while
 * they are more than 2 us apart, so that a preemption between the reads
 * cannot skew the rate measured from two samples. */
static void tsc_sample(uint64_t *mono, uint64_t *tsc)
{
	for (int i = 0;; i++) {
		uint64_t a = mono_ns(), t = tiq_clock_now(MQ_CLOCK_TSC), b = mono_ns();
		if (b - a <= 2000 || i == 99) {
			*mono = a + (b - a) / 2;
			*tsc = t;
			return;
		}
	}
}

/* tsc_hz: the TSC's ticks per second, measured against CLOCK_MONOTONIC over
 * 2 ms once per process, between two bracketed samples (tsc_sample): an
 * error of ~1e-5 typically, at most ~1e-3 (1 us at each end of 2 ms). */
static uint64_t tsc_hz(void)
{
	static _Atomic uint64_t hz;
	uint64_t v = atomic_load_explicit(&hz, memory_order_relaxed);
	if (v)
		return v;
	uint64_t c0, t0, c1, t1;
	tsc_sample(&c0, &t0);
	do
		tsc_sample(&c1, &t1);
	while (c1 - c0 < 2000000);
	v = (uint64_t)((double)(t1 - t0) * 1e9 / (double)(c1 - c0));
	atomic_store_explicit(&hz, v, memory_order_relaxed);
	return v;
}

void tiq_init(struct mq_tiq *t)
{
	if (tsc_usable()) {
		uint64_t hz = tsc_hz();
		if (hz >= 1000000) {
			t->clock = MQ_CLOCK_TSC;
			t->hz = hz;
			return;
		}
	}
	t->clock = MQ_CLOCK_MONO;
	t->hz = 1000000000u;
}

void tiq_attach(struct mq *q)
{
	struct mq_geometry g;
	q->tiq = NULL;
	q->tiq_clock = 0;
	q->tiq_on = 0;
	if (segment_geometry(q->capacity, q->max_msg, &g) != 0)
		return;
	struct mq_tiq *t = (struct mq_tiq *)((unsigned char *)q->shm + g.tiq_offset);
	/* Written once by the creator, but read as untrusted: an unknown clock
	 * or an absurd rate turns the measurement off for this handle. */
	uint32_t clock = t->clock;
	uint64_t hz = t->hz;
	if (clock == MQ_CLOCK_TSC && !tsc_usable())
		clock = 0; /* not here: a queue made where the TSC was trusted */
	if ((clock != MQ_CLOCK_TSC && clock != MQ_CLOCK_MONO) || hz < 1000000 ||
	    hz > UINT64_C(100000000000))
		return;
	q->tiq = t;
	q->tiq_clock = clock;
	q->tiq_ns_per_tick = 1e9 / (double)hz;
	q->tiq_flush_ticks = hz / 1000; /* a millisecond */
	q->tiq_npend = 0;
	q->tiq_slow_ticks = hz / 1000000; /* a microsecond */
	q->tiq_period = 1;
	q->tiq_skip = 0;
	q->tiq_last = 0;
	const char *env = getenv("MQ_TIME_IN_QUEUE");
	q->tiq_on = !(env && !strcmp(env, "0"));
}

/* sent_of: the stamp of chunk IDX if IDX is a chunk, else 0. */
static uint64_t sent_of(struct mq *q, uint64_t idx)
{
	if (idx >= q->capacity)
		return 0;
	return mq_load_relaxed(&handle_chunk(q, idx)->sent);
}

/* first_stamp: the stamp of the first stamped message at positions
 * FROM .. END - 1 (at most 64 looked at) of the ring (REQUEUE 0) or the
 * requeue ring, 0 if none. Read without a lock: a message may be taken as
 * we look; the caller checks the start position did not move. */
static uint64_t first_stamp(struct mq *q, int requeue, uint64_t from, uint64_t end)
{
	for (uint64_t p = from; p < end && p - from < 64 && p < MQ_INDEX_LIMIT; p++) {
		uint64_t sent = 0;
		if (requeue) {
			sent = sent_of(q, mq_load_relaxed(&q->requeue[p & q->ring_mask]));
		} else {
			uint64_t e = mq_load_acquire(&q->ring[p & q->ring_mask]);
			if (!entry_ready(e, p))
				break;
			sent = sent_of(q, entry_idx(e));
		}
		if (sent)
			return sent;
	}
	return 0;
}

uint64_t tiq_oldest_ns(struct mq *q)
{
	if (!q->tiq)
		return 0;
	struct mq_shm *s = q->shm;
	uint64_t oldest = 0;
	/* The head may move (and its chunk be reused) as we look: a start
	 * position read again unchanged says the stamps were those messages';
	 * else look again (a few times at most). */
	for (int requeue = 0; requeue < 2; requeue++) {
		_Atomic uint64_t *hp = requeue ? &s->rhead : &s->head;
		_Atomic uint64_t *tp = requeue ? &s->rtail : &s->tail;
		for (int tries = 0; tries < 4; tries++) {
			uint64_t h = mq_load_acquire(hp), t = mq_load_acquire(tp);
			uint64_t sent = h < t ? first_stamp(q, requeue, h, t) : 0;
			if (mq_load_acquire(hp) == h) {
				if (sent && (!oldest || sent < oldest))
					oldest = sent;
				break;
			}
		}
	}
	uint64_t now = tiq_clock_now(q->tiq_clock);
	return oldest && now > oldest ? tiq_ns(q, now - oldest) : 0;
}

uint64_t mq_tiq_bucket_upper_ns(unsigned i)
{
	if (i == 0)
		return 1024;
	if (i >= MQ_TIQ_NBUCKETS - 1)
		return UINT64_MAX;
	/* the upper bound of bucket i is the lower bound of bucket i + 1 */
	unsigned o = 10 + i / 4, part = i % 4;
	return ((uint64_t)1 << o) / 4 * (4 + part);
}

int mq_time_in_queue(mq_t *q, struct mq_time_in_queue *out)
{
	if (!q || !out)
		return error_set(EINVAL, "mq_time_in_queue: %s is NULL",
		                 q ? "output" : "queue handle");
	if (handle_check(q, false))
		return -1;
	memset(out, 0, sizeof(*out));
	struct mq_tiq *t = q->tiq;
	if (!t)
		return error_set(ENOTSUP,
		                 "mq_time_in_queue on %s: the queue's clock is not usable here",
		                 q->name);
	out->count = mq_load_acquire(&t->count);
	for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++)
		out->bucket[i] = mq_load_relaxed(&t->bucket[i]);
	out->sum_ns = mq_load_relaxed(&t->sum_ns);
	out->max_ns = mq_load_relaxed(&t->max_ns);
	return handle_check(q, false);
}

void tiq_flush(struct mq *q)
{
	struct mq_tiq *t = q->tiq;
	unsigned n = q->tiq_npend;
	q->tiq_npend = 0;
	if (!t || !n)
		return;
	uint64_t sum = 0, max = mq_load_relaxed(&t->max_ns);
	for (unsigned i = 0; i < n; i++) {
		uint64_t ns = tiq_ns(q, q->tiq_pend[i]);
		_Atomic uint64_t *b = &t->bucket[tiq_bucket(ns)];
		mq_store_relaxed(b, mq_load_relaxed(b) + 1);
		sum += ns;
		if (ns > max)
			max = ns;
	}
	mq_store_relaxed(&t->sum_ns, mq_load_relaxed(&t->sum_ns) + sum);
	mq_store_relaxed(&t->max_ns, max);
	/* count last: a reader that sees it sees the buckets (stats: roughly). */
	mq_store_release(&t->count, mq_load_relaxed(&t->count) + n);
}

void tiq_detach(struct mq *q)
{
	if (!q->tiq_npend || !q->token)
		return;
	struct timespec dl;
	wait_deadline(&dl, 100);
	if (lock_take(q, &q->shm->recv, &dl, LOCK_NO_INTR) != 0) {
		q->tiq_npend = 0; /* the queue is busy or stuck: the figures, not a message, go */
		return;
	}
	tiq_flush(q);
	lock_release(q, &q->shm->recv);
}

uint64_t tiq_send_sample(struct mq *q)
{
	uint64_t now = tiq_clock_now(q->tiq_clock);
	/* The period's rounds took (now - last): slower than a microsecond a
	 * round, stamp every one; faster, stamp half as often (down to 1 in 16). */
	unsigned p = q->tiq_period ? q->tiq_period : 1;
	if (!q->tiq_last || now - q->tiq_last > (uint64_t)p * q->tiq_slow_ticks)
		p = 1;
	else if (p < 16)
		p *= 2;
	q->tiq_period = p;
	q->tiq_skip = p - 1;
	q->tiq_last = now;
	return now;
}
