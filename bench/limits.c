/* limits.c - memcpy bandwidth and a cross-core cache-line ping-pong, beside the transports. */
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "limits.h"
#include "payload.h"
#include "stats.h"

int limit_memcpy(struct ctl *ctl, int idx, void *arg)
{
	const struct run_spec *s = arg;
	size_t bs = s->msg_size, nblk = s->memcpy_ws / bs;
	if (nblk == 0)
		nblk = 1;
	unsigned char *src = msg_alloc(nblk * bs), *dst = msg_alloc(nblk * bs);
	if (!src || !dst)
		return child_fail(ctl, idx, "out of memory (2 x %zu bytes)", nblk * bs);
	for (size_t b = 0; b < nblk; b++)
		msg_stamp(src + b * bs, bs, MSG_DATA, 0, b);
	for (size_t b = 0; b < nblk; b++) /* warm-up: every page of both once */
		memcpy(dst + b * bs, src + b * bs, bs);
	if (barrier_wait(ctl, 1))
		return -1;
	int64_t t0 = atomic_load(&ctl->t0), stop = t0 + (int64_t)(s->seconds * 1e9), t;
	uint64_t i = 0;
	for (;;) {
		size_t b = i % nblk;
		memcpy(dst + b * bs, src + b * bs, bs);
		i++;
		t = now_ns();
		if (s->messages ? i >= s->messages : t >= stop)
			break;
	}
	char err[200];
	for (size_t b = 0; b < nblk; b++) {
		uint32_t kind, from;
		uint64_t seq;
		if (msg_check(dst + b * bs, bs, &kind, &from, &seq, err, sizeof(err)) || seq != b)
			return child_fail(ctl, idx, "memcpy produced a wrong block %zu", b);
	}
	ctl->res[idx].msgs = i;
	ctl->res[idx].value = (double)i * (double)bs / ((double)(t - t0) / 1e9) / 1e6;
	free(src);
	free(dst);
	return 0;
}

/* The cache line: the pinger writes 2i+1 and waits for 2i+2, the ponger
 * answers each odd value with the next even one; UINT64_MAX ends it. */
static int wait_line(struct ctl *ctl, uint64_t v)
{
	unsigned spins = 0;
	while (atomic_load_explicit(&ctl->line, memory_order_acquire) != v) {
		cpu_relax();
		if (++spins % 65536 == 0) { /* both on one CPU (--no-pin, one CPU) */
			if (atomic_load(&ctl->abort))
				return -1;
			sched_yield();
		}
	}
	return 0;
}

int limit_line_pinger(struct ctl *ctl, int idx, void *arg)
{
	const struct run_spec *s = arg;
	size_t cap = s->messages ? s->messages : 1 << 20, n = 0;
	uint32_t *rtt = malloc(cap * sizeof(*rtt));
	if (!rtt)
		return child_fail(ctl, idx, "out of memory");
	if (barrier_wait(ctl, 2))
		return -1;
	uint64_t i = 0;
	for (; i < s->warm; i++) {
		atomic_store_explicit(&ctl->line, 2 * i + 1, memory_order_release);
		if (wait_line(ctl, 2 * i + 2))
			return -1;
	}
	int64_t stop = now_ns() + (int64_t)(s->seconds * 1e9), prev = now_ns();
	for (uint64_t k = 0; !s->messages || k < s->messages; k++, i++) {
		atomic_store_explicit(&ctl->line, 2 * i + 1, memory_order_release);
		if (wait_line(ctl, 2 * i + 2))
			return -1;
		int64_t t = now_ns();
		if (n == cap) {
			uint32_t *more = realloc(rtt, 2 * cap * sizeof(*rtt));
			if (!more)
				return child_fail(ctl, idx, "out of memory");
			rtt = more;
			cap *= 2;
		}
		rtt[n++] = (uint32_t)(t - prev > (int64_t)UINT32_MAX ? UINT32_MAX : t - prev);
		prev = t;
		if (!s->messages && t >= stop)
			break;
	}
	atomic_store_explicit(&ctl->line, UINT64_MAX, memory_order_release);
	struct child_result *r = &ctl->res[idx];
	r->msgs = n;
	r->p50_us = stats_percentile(rtt, n, 50) / 1e3;
	r->p99_us = stats_percentile(rtt, n, 99) / 1e3;
	free(rtt);
	return 0;
}

int limit_line_ponger(struct ctl *ctl, int idx, void *arg)
{
	(void)arg;
	if (barrier_wait(ctl, 2))
		return -1;
	uint64_t v = 0;
	unsigned spins = 0;
	for (;;) {
		uint64_t seen = atomic_load_explicit(&ctl->line, memory_order_acquire);
		if (seen == v) {
			cpu_relax();
			if (++spins % 65536 == 0) {
				if (atomic_load(&ctl->abort))
					return -1;
				sched_yield();
			}
			continue;
		}
		if (seen == UINT64_MAX)
			return 0;
		if (seen != v + 1)
			return child_fail(ctl, idx,
			                  "cache line held %" PRIu64 ", expected %" PRIu64, seen,
			                  v + 1);
		v = seen + 1;
		atomic_store_explicit(&ctl->line, v, memory_order_release);
	}
}
