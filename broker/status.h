/*
 * status.h - one queue as mqbroker shows it: the snapshot (struct
 * broker_view), the rates and time-in-queue windows taken from samples, and
 * the rendering of snapshots as the /status document (cJSON) and the
 * /metrics page. A library of its own (mq_status): mqbroker links it with
 * its HTTP server, mqctl links it alone, so `mqctl stats --json` prints
 * exactly the element /status shows for the queue.
 *
 *   rates.c    enqueue/dequeue rates over 1 s, 10 s and 60 s from samples
 *   tiqwin.c   time-in-queue histograms over a window, and percentiles
 *   render.c   snapshots as /status JSON and /metrics text
 */
#ifndef MQBROKER_STATUS_H
#define MQBROKER_STATUS_H

#include <stdint.h>
#include <sys/types.h>

#include "libmq.h"
#include "libmq_admin.h"

#define BROKER_VERSION LIBMQ_VERSION

/* rates.c: counters sampled once a second, 61 samples kept. */
#define RATES_SAMPLES 61
struct rates {
	double t[RATES_SAMPLES]; /* CLOCK_MONOTONIC seconds */
	uint64_t enq[RATES_SAMPLES];
	uint64_t deq[RATES_SAMPLES];
	unsigned next, count;
};

/* rates_add: record the totals ENQ and DEQ seen at time T. */
void rates_add(struct rates *r, double t, uint64_t enq, uint64_t deq);

/* rates_get: messages per second over the last WINDOW_S seconds (or over what
 * is recorded, if less), into *ENQ_PER_S and *DEQ_PER_S; 0 before two samples. */
void rates_get(const struct rates *r, double window_s, double *enq_per_s, double *deq_per_s);

/* tiqwin.c: the queue's time-in-queue histogram (mq_time_in_queue) sampled
 * once a second; a window is the difference of two samples. */
#define TIQ_SAMPLES 61
struct tiq_history {
	double t[TIQ_SAMPLES];
	struct mq_time_in_queue h[TIQ_SAMPLES];
	unsigned next, count;
};

/* tiq_history_add: record histogram H seen at time T. */
void tiq_history_add(struct tiq_history *r, double t, const struct mq_time_in_queue *h);

/* tiq_history_window: what was measured over the last WINDOW_S seconds (or
 * over what is recorded, if less) into OUT; returns the seconds it covers
 * (0 before two samples: OUT is then the newest sample less itself, empty). */
double tiq_history_window(const struct tiq_history *r, double window_s,
                          struct mq_time_in_queue *out);

/* tiq_diff: NOW - THEN into OUT (a histogram that shrank, a queue recreated
 * under us, gives NOW itself). max_ns stays NOW's. */
void tiq_diff(const struct mq_time_in_queue *now, const struct mq_time_in_queue *then,
              struct mq_time_in_queue *out);

/* struct tiq_summary: percentiles of a histogram, in seconds (interpolated
 * within a bucket, so within its width: 25 % at most; none above max_ns). */
struct tiq_summary {
	uint64_t count;
	double p50, p90, p99, max;
};

/* tiq_summarize: H's percentiles; a max is the upper bound of the highest
 * bucket with a message, but not above H->max_ns. */
void tiq_summarize(const struct mq_time_in_queue *h, struct tiq_summary *out);

/* struct broker_view: everything /status and /metrics show of one queue,
 * copied out at one moment. */
struct broker_view {
	char name[MQ_NAME_MAX + 1];
	int no_stats; /* the queue is not open (refused, or could not be read):
	                 only name, state and problem mean anything */
	struct mq_stats stats;
	struct mq_client_info clients[MQ_CLIENTS_MAX];
	int nclients;                      /* entries filled in clients */
	double enq_rate[3], deq_rate[3];   /* over 1 s, 10 s, 60 s */
	int have_tiq;                      /* the time-in-queue figures below are valid */
	struct mq_time_in_queue tiq_total; /* since the queue was created (/metrics) */
	struct tiq_summary tiq_window;     /* over the last tiq_window_s (/status) */
	double tiq_window_s;
	pid_t broker_pid;
	double uptime_s;
	const char *version;
	int damaged; /* the segment is damaged (health_check, or it could not be opened) */
	int refused; /* the broker would not adopt it (another user's, another broker's...) */
	char problem[1024]; /* why, when damaged or refused */
};

/* render_status: the /status document for the N queues of V (broker fields
 * from V[0]; N may be 0: a broker with no queue open), as a malloc'd JSON
 * string, or NULL if out of memory. */
char *render_status(const struct broker_view *const *v, int n);

/* render_queue: one element of "queues" for V (what `mqctl stats --json`
 * prints, and GET /status/queues/NAME), malloc'd, or NULL. */
char *render_queue(const struct broker_view *v);

/* render_role: a client's MQ_ROLE_* bits as "bridge" (declared by mqbridge,
 * whatever else it did), "producer", "consumer", "both" or "idle" (the
 * /status spelling; mqctl shows the same). */
const char *render_role(uint32_t role);

/* render_state: "ok", "damaged" or "refused" for V. */
const char *render_state(const struct broker_view *v);

/* render_health: the /healthz document for the N queues of V, malloc'd (or
 * NULL), with *BAD set to how many are damaged or refused: {"status":"ok",
 * "pid","queues"} or {"status":"damaged",...,"damaged":[names],"errors":
 * {name: reason},"error": the first reason}. Names and reasons made valid
 * UTF-8 as in /status. */
char *render_health(const struct broker_view *const *v, int n, pid_t pid, int *bad);

/* render_metrics: the /metrics page (Prometheus text format 0.0.4) for the N
 * queues of V, each series once per queue (label "queue"), malloc'd, or
 * NULL. */
char *render_metrics(const struct broker_view *const *v, int n);

#endif /* MQBROKER_STATUS_H */
