/*
 * limits.h - what no transport can beat on this machine, measured the way the
 * transports are (same harness, pinning, repetitions): the bandwidth of one
 * thread's memcpy of 1 MiB blocks (through two 64 MiB regions, or one hot
 * block), and the round trip of one cache line bounced between the two CPUs.
 * Each function is a child process of a run (struct proc), with the run's
 * struct run_spec as ARG; it reports in ctl->res[IDX].
 */
#ifndef MQBENCH_LIMITS_H
#define MQBENCH_LIMITS_H

#include "harness.h"
#include "workloads.h"

/* limit_memcpy: copy msg_size blocks through memcpy_ws bytes for the run's
 * time or count; MB/s in res.value. */
int limit_memcpy(struct ctl *ctl, int idx, void *arg);

/* limit_line_pinger, limit_line_ponger: the two ends of the cache-line
 * ping-pong; the pinger's round-trip p50/p99 in res. */
int limit_line_pinger(struct ctl *ctl, int idx, void *arg);
int limit_line_ponger(struct ctl *ctl, int idx, void *arg);

#endif /* MQBENCH_LIMITS_H */
