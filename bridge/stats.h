/* stats.h - mqbridge's statistics, per route and for the NATS connection (read by endpoints.c). */
#ifndef MQBRIDGE_STATS_H
#define MQBRIDGE_STATS_H

/*
 * The routes' threads, the library's callbacks (PubAck, connection events)
 * and the HTTP threads share one struct bridge_stats. Counters and states
 * are relaxed atomics: the hot path pays an uncontended atomic add per
 * message, never a lock; a reader sees each counter whole, though two
 * counters read one after the other may be a message apart. Only the last
 * error's text has a mutex, taken when an error happens and when a
 * document is rendered.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <nats/nats.h>

#include "bridge.h"
#include "hist.h"

/* enum route_state: what a route is doing now (route_state_name: its name). */
enum route_state {
	ROUTE_STARTING,     /* "starting": not connected yet, or setting up */
	ROUTE_RUNNING,      /* "running": carrying messages (or idle, ready) */
	ROUTE_WAITING_NATS, /* "waiting_for_nats": NATS is down */
	ROUTE_WAITING_ROOM, /* "waiting_for_room": import, the local queue is full */
	ROUTE_BACKING_OFF,  /* "backing_off": after a publish or fetch error */
	ROUTE_QUEUE_ERROR,  /* "queue_error": the local queue refuses (damaged...) */
	ROUTE_STOPPED,      /* "stopped" */
	ROUTE_STATES
};
const char *route_state_name(enum route_state s);

/* struct last_error: an error's text and when it happened (unix seconds; 0: none yet). */
struct last_error {
	pthread_mutex_t mu;
	char text[512];
	int64_t time;
};

/* struct route_stats: one route's statistics. */
struct route_stats {
	struct route r;
	atomic_int state; /* enum route_state */
	atomic_uint_least64_t
	        forwarded; /* export: acked by JetStream; import: mq_send-ed and acked */
	atomic_int_least64_t
	        in_flight; /* export: published, PubAck awaited; import: fetched, not acked */
	atomic_uint_least64_t errors;     /* publish, fetch, queue errors; imports terminated */
	atomic_uint_least64_t duplicates; /* export: PubAcks saying "Duplicate" */
	atomic_uint_least64_t
	        republished; /* export: nacked after a failed publish, published again */
	atomic_uint_least64_t
	        redelivered; /* import: delivered before by JetStream (NumDelivered > 1) */
	atomic_uint_least64_t skipped;    /* import: delivered again, already in the queue */
	atomic_uint_least64_t terminated; /* import: larger than the queue takes */
	struct hist latency;              /* export: publish to PubAck; import: fetch to ack */
	struct last_error last;
};

/* struct bridge_stats: everything the endpoints show. */
struct bridge_stats {
	int64_t started_ms; /* bridge_now_ms() at start */
	int64_t started_at; /* unix seconds at start */
	char stream[BRIDGE_STREAM_MAX];
	char nats_url[1024];          /* --nats, without credentials */
	_Atomic(natsConnection *) nc; /* set once connected (conn_open) */
	atomic_int closed;            /* the connection was closed */
	atomic_uint_least64_t reconnects, disconnects;
	struct last_error nats_last; /* the last failure to connect */
	unsigned nroutes;
	struct route_stats routes[BRIDGE_ROUTES_MAX];
};

/* stats_init: ST for the options O (routes "starting", counters 0). */
void stats_init(struct bridge_stats *st, const struct bridge_opts *o);

/* stats_destroy: release ST's mutexes. */
void stats_destroy(struct bridge_stats *st);

/* stats_count: add N to counter C. */
static inline void stats_count(atomic_uint_least64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* stats_state: set route RS's state to S. */
static inline void stats_state(struct route_stats *rs, enum route_state s)
{
	atomic_store_explicit(&rs->state, (int)s, memory_order_relaxed);
}

/* stats_in_flight: set route RS's messages in flight to N. */
static inline void stats_in_flight(struct route_stats *rs, int64_t n)
{
	atomic_store_explicit(&rs->in_flight, n, memory_order_relaxed);
}

/* stats_error: note TEXT as E's last error, now (counting is the caller's). */
void stats_error(struct last_error *e, const char *text);

/* stats_last_error: a copy of E's text into OUT (LEN bytes); returns its
 * time (unix seconds), 0 if there was none. */
int64_t stats_last_error(struct last_error *e, char *out, size_t len);

/* stats_nats_state: the connection's state: "connecting", "connected",
 * "reconnecting", "disconnected", "draining" or "closed". */
const char *stats_nats_state(struct bridge_stats *st);

/* stats_strip_credentials: URL (maybe several, comma-separated) without any
 * "user:password@" or "token@" into OUT (LEN bytes). Returns OUT. */
const char *stats_strip_credentials(const char *url, char *out, size_t len);

/* stats_route_name: R as its option spells it ("QUEUE=SUBJECT" for an
 * export, "SUBJECT=QUEUE" for an import) into OUT. Returns OUT. */
const char *stats_route_name(const struct route *r, char *out, size_t len);

#endif /* MQBRIDGE_STATS_H */
