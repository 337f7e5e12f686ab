/*
 * broker.h - the modules of mqbroker and what they share.
 *
 *   main.c     options, config file, signals, the main loop (one tick a
 *              second: heartbeat, client sweep, rate sample)
 *   owner.c    create or adopt the segment; the one-broker-per-queue lock
 *   rates.c    enqueue/dequeue rates over 1 s, 10 s and 60 s from samples
 *   view.c     struct broker_view: one consistent snapshot for rendering
 *   render.c   the snapshot as /status JSON (cJSON) and /metrics text
 *   http.c     the embedded HTTP server (libmicrohttpd): routes, limits,
 *              static files of the dashboard
 */
#ifndef MQBROKER_BROKER_H
#define MQBROKER_BROKER_H

#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "libmq.h"

#define BROKER_VERSION LIBMQ_VERSION

/* Exit codes of mqbroker, documented in --help and mqbroker(8). */
enum broker_exit {
	BROKER_EXIT_OK = 0,
	BROKER_EXIT_RUNTIME = 1,   /* any other runtime error */
	BROKER_EXIT_USAGE = 2,     /* bad flag, bad value, bad config file */
	BROKER_EXIT_RUNNING = 3,   /* another mqbroker serves the queue */
	BROKER_EXIT_SEGMENT = 4,   /* existing segment incompatible/corrupt (no --recreate) */
	BROKER_EXIT_LISTEN = 5,    /* cannot listen on the address */
	BROKER_EXIT_PERMISSION = 6 /* permission denied on the queue */
};

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

/* view.c: everything /status and /metrics show, copied out at one moment. */
struct broker_view {
	char name[MQ_NAME_MAX + 1];
	struct mq_stats stats;
	struct mq_client_info clients[MQ_CLIENTS_MAX];
	int nclients;                    /* entries filled in clients */
	double enq_rate[3], deq_rate[3]; /* over 1 s, 10 s, 60 s */
	pid_t broker_pid;
	double uptime_s;
	const char *version;
	int damaged;       /* health_check found the segment damaged */
	char problem[256]; /* what, when damaged */
};

/* struct broker: the daemon's shared state; the HTTP threads read it. */
struct broker {
	mq_t *q; /* observer handle (not in the client table) */
	char name[MQ_NAME_MAX + 1];
	double started;       /* CLOCK_MONOTONIC seconds */
	pthread_mutex_t lock; /* guards rates and health (process-local; never the queue's) */
	struct rates rates;
	int damaged;       /* the verdict of the last health_check */
	char problem[256]; /* its reason */
	int suspect;       /* ticks in a row mq_inspect found a problem */
};

/* health_check: once a tick, look at B's segment (mq_inspect: the file,
 * positions, locks, chunks, without taking the queue's locks) and update
 * B->damaged and B->problem. A segment that cannot be read (truncated) is
 * damaged at once; a problem the next lock holder or the sweep repairs (a
 * dead holder's lock) counts only if it is still there a tick later. */
void health_check(struct broker *b);

/* broker_now: CLOCK_MONOTONIC in seconds. */
double broker_now(void);

/* view_take: fill V from B: mq_stats and mq_clients read the segment without
 * taking the queue's locks; the rates come from B under B->lock. */
void view_take(struct broker *b, struct broker_view *v);

/* render_status: the /status document (DESIGN.md keys) for V, as a
 * malloc'd JSON string, or NULL if out of memory. */
char *render_status(const struct broker_view *v);

/* render_queue: one element of "queues" for V (what `mqctl stats --json`
 * prints), malloc'd, or NULL. */
char *render_queue(const struct broker_view *v);

/* render_role: a client's MQ_ROLE_* bits as "producer", "consumer", "both"
 * or "idle" (the /status spelling; mqctl shows the same). */
const char *render_role(uint32_t role);

/* render_metrics: the /metrics page (Prometheus text format 0.0.4) for V,
 * malloc'd, or NULL. */
char *render_metrics(const struct broker_view *v);

/* http.c */
struct http_server;

/* http_start: serve B on LISTEN ("ADDR:PORT", IPv4 or [IPv6]:PORT) with the
 * dashboard files under WEB_ROOT. Returns the server, or NULL with a
 * one-line reason in ERR (ERRLEN bytes) and errno (EADDRINUSE, EINVAL...). */
struct http_server *http_start(struct broker *b, const char *listen, const char *web_root,
                               char *err, size_t errlen);

/* http_port: the TCP port S listens on (the one picked, if LISTEN said port 0),
 * or -1 if S is NULL. */
int http_port(const struct http_server *s);

/* http_parse_listen: SPEC ("A.B.C.D:PORT", "[IPV6]:PORT" or "localhost:PORT";
 * PORT 0..65535, 0 = any free port) into *SA and *LEN. Returns 0, or -1 with
 * errno EINVAL and a one-line reason in ERR (ERRLEN bytes). */
int http_parse_listen(const char *spec, struct sockaddr_storage *sa, socklen_t *len, char *err,
                      size_t errlen);

/* http_stop: stop serving and free S (NULL is fine). */
void http_stop(struct http_server *s);

#endif /* MQBROKER_BROKER_H */
