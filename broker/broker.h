/*
 * broker.h - the modules of mqbroker and what they share.
 *
 *   main.c     options, config file, signals, the main loop (one tick a
 *              second: heartbeat, client sweep, rate sample)
 *   owner.c    create or adopt the segment; the one-broker-per-queue lock
 *   view.c     the queues' snapshots for rendering, and their health checks
 *   status.h   (a library of its own, shared with mqctl) rates, time in
 *              queue, and snapshots as /status JSON and /metrics text
 *   routes.c   the HTTP routes: /status, /metrics, /healthz, the
 *              dashboard's static files
 *   http.h     (a library of its own, shared with mqbridge) the embedded
 *              HTTP server (libmicrohttpd) and its limits
 */
#ifndef MQBROKER_BROKER_H
#define MQBROKER_BROKER_H

#include <pthread.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

#include "http.h"
#include "libmq.h"
#include "owner.h"
#include "status.h"

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

/* struct bqueue: one queue the broker serves (or tries to). */
struct bqueue {
	struct owner_opts own; /* how to create or adopt it (own.name is name) */
	char name[MQ_NAME_MAX + 1];
	char group[256];
	int from_config; /* a "queue" line of the config file (SIGHUP may drop it) */
	mq_t *q;         /* observer handle (not in the client table); NULL: not open */
	int created;     /* this run made it */
	int refused;     /* the last open was refused (problem says why) */
	int damaged;     /* the last open failed on the segment, or health_check found it damaged */
	int open_rc;     /* BROKER_EXIT_* of the last failed open */
	char problem[1024];
	int suspect;     /* ticks in a row mq_inspect found a problem */
	double next_try; /* CLOCK_MONOTONIC seconds: when to try a failed open again */
	struct rates rates;
	struct tiq_history tiq;
	int32_t seen[MQ_CLIENTS_MAX]; /* pids known to --verbose's arrival log */
};

/* struct broker: the daemon's shared state; the HTTP threads read it. */
struct broker {
	double started;       /* CLOCK_MONOTONIC seconds */
	pthread_mutex_t lock; /* guards queues[], nqueues and every bqueue
	                         (process-local; never a queue's lock) */
	struct bqueue **queues;
	int nqueues;
};

/* health_check: once a tick, look at BQ's segment (mq_inspect: the file,
 * positions, locks, chunks, without taking the queue's locks) and update
 * BQ->damaged and BQ->problem (under B->lock). A segment that cannot be read
 * (truncated) is damaged at once; a problem the next lock holder or the
 * sweep repairs (a dead holder's lock) counts only if it is still there a
 * tick later. */
void health_check(struct broker *b, struct bqueue *bq);

/* broker_now: CLOCK_MONOTONIC in seconds. */
double broker_now(void);

/* view_take: snapshots of all of B's queues (mq_stats and mq_clients read
 * the segments without taking the queues' locks), in B's order, into a
 * malloc'd array of *N malloc'd views (free with view_free); with NAME, only
 * that queue's (*N 0 if B has no such queue). NULL if out of memory. */
struct broker_view **view_take(struct broker *b, const char *name, int *n);

/* view_free: free what view_take returned. */
void view_free(struct broker_view **v, int n);

/* routes.c */

/* http_start: serve B on LISTEN ("ADDR:PORT", IPv4 or [IPv6]:PORT) with the
 * dashboard files under WEB_ROOT (NULL: the built-in ones), through the
 * server of http.h (http_port, http_stop). Returns the server, or NULL with
 * a one-line reason in ERR (ERRLEN bytes) and errno (EADDRINUSE, EINVAL...). */
struct http_server *http_start(struct broker *b, const char *listen, const char *web_root,
                               char *err, size_t errlen);

#endif /* MQBROKER_BROKER_H */
