/*
 * workloads.h - what one run of mqbench measures, and how.
 *
 * A run is one (workload, transport) pair, or one limit, measured once in
 * fresh processes over a fresh channel. Throughput runs: producers send
 * stamped messages for a time (or a count), then end markers; consumers
 * check every message and its order; the clock runs from the barrier that
 * starts everybody (after a warm-up pass through every slot) to the last
 * consumer's end. Round-trip runs: a pinger and a ponger over two channels,
 * each round trip timed. Limits: memcpy bandwidth in one process, and a
 * cache line bounced between two processes on the two CPUs.
 */
#ifndef MQBENCH_WORKLOADS_H
#define MQBENCH_WORKLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "transport.h"

enum workload { W_TPUT64, W_TPUT4K, W_TPUT1M, W_RTT64, W_MPMC64, W_COUNT };

/* struct workload_info: the fixed shape of each workload. */
struct workload_info {
	const char *name;  /* as given to --workload */
	const char *title; /* in the table */
	size_t msg_size;
	int nprod, ncons; /* 1 and 1 for round trips: pinger and ponger */
	int rtt;          /* a ping-pong, not a stream */
};

extern const struct workload_info workloads[W_COUNT];

enum limit { L_NONE, L_MEMCPY, L_MEMCPY_HOT, L_CACHELINE };

/* struct run_spec: everything one run needs. */
struct run_spec {
	enum workload w;
	const struct transport *t; /* NULL for a limit */
	enum limit limit;
	size_t msg_size;
	size_t capacity; /* queue depth (and ZeroMQ high-water mark) */
	unsigned spin_us;
	int nprod, ncons;
	double seconds;    /* measuring time, when messages is 0 */
	uint64_t messages; /* messages (all producers), round trips or blocks; 0: timed */
	uint64_t warm;     /* warm-up messages per producer, or round trips */
	int cpu[2];        /* producers/pinger, consumers/ponger; -1: not pinned */
	double deadline_s; /* the run is killed after this */
	int run_id;        /* makes the channel names unique in this process */
	size_t memcpy_ws;  /* memcpy limit: bytes of the source (and of the destination) */
	const char *queue; /* libmq: an existing queue to use (--queue), or NULL */
};

enum run_status { RUN_OK, RUN_SKIPPED, RUN_FAILED };

/* struct run_result: what one run measured. */
struct run_result {
	enum run_status status;
	char why[480]; /* skipped or failed: why */
	double msgs_per_s, mb_per_s;
	double p50_us, p99_us;
	double share_min, share_max;   /* consumers' fractions of the messages */
	double pshare_min, pshare_max; /* producers' fractions */
	uint64_t msgs;
	double seconds;
	size_t depth; /* queue depth obtained */
};

/* run_once: do run S. Returns 0 when R holds figures, -1 when R says why not
 * (R->status RUN_SKIPPED or RUN_FAILED). */
int run_once(const struct run_spec *s, struct run_result *r);

#endif /* MQBENCH_WORKLOADS_H */
