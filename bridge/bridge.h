/* bridge.h - mqbridge's modules: options, the NATS connection, export and import routes, HTTP
 * endpoints. */
#ifndef MQBRIDGE_H
#define MQBRIDGE_H

/*
 * mqbridge carries messages between local libmq queues and NATS JetStream.
 * main.c wires the modules: options.c reads the command line and the config
 * file into struct bridge_opts; conn.c connects to NATS (reconnecting with
 * back-off) and makes sure the stream exists; export.c runs one thread per
 * QUEUE=SUBJECT route (lease, publish, ack after JetStream's ack); import.c
 * one per SUBJECT=QUEUE route (fetch, mq_send, ack to JetStream). Every
 * module logs through bridge_log, one line per event, naming the route.
 * stats.h holds what they count (per route: messages, errors, latency in
 * hist.h's histograms; the connection's events), and endpoints.c serves it
 * over HTTP (--listen, loopback by default) through the broker's server
 * (mq_http, broker/http.h): /healthz, /status (JSON), /metrics (Prometheus).
 */
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <nats/nats.h>

#include "libmq.h"

#define BRIDGE_ROUTES_MAX     64
#define BRIDGE_SUBJECT_MAX    256
#define BRIDGE_STREAM_MAX     64
#define BRIDGE_DEFAULT_STREAM "MQBRIDGE"
#define BRIDGE_DEFAULT_LISTEN "127.0.0.1:8081" /* the HTTP endpoints */

/* Exit statuses, as mqbridge(8) will list them. */
enum bridge_exit {
	BRIDGE_EXIT_OK = 0,    /* stopped by SIGTERM/SIGINT */
	BRIDGE_EXIT_ERROR = 1, /* a queue, NATS, the stream or --listen could not be set up */
	BRIDGE_EXIT_USAGE = 2  /* bad command line or config file */
};

enum route_dir { ROUTE_EXPORT, ROUTE_IMPORT };

/* struct route: one --export QUEUE=SUBJECT or --import SUBJECT=QUEUE. */
struct route {
	enum route_dir dir;
	char queue[MQ_NAME_MAX + 1];
	char subject[BRIDGE_SUBJECT_MAX];
};

/* struct bridge_opts: everything the command line and config file say. */
struct bridge_opts {
	char nats_url[1024];
	char stream[BRIDGE_STREAM_MAX];
	char listen[128]; /* the HTTP endpoints' ADDR:PORT (checked by http_parse_listen) */
	char creds[1024];
	char user[256], password[256];
	char tls_ca[1024];
	struct route routes[BRIDGE_ROUTES_MAX];
	unsigned nroutes;
	unsigned window;     /* export: publishes awaiting JetStream's ack, per route */
	unsigned batch;      /* import: messages per fetch */
	unsigned ack_wait_s; /* import: AckWait of the consumers we create */
};

/*
 * bridge_parse_args: fill O from ARGV (and the --config FILE it names).
 * Returns BRIDGE_EXIT_OK to run, -1 after printing the help (exit 0), or
 * BRIDGE_EXIT_USAGE after printing what is wrong to stderr.
 */
int bridge_parse_args(struct bridge_opts *o, int argc, char **argv);

/* bridge_log: one line "mqbridge: ..." on stderr (lines of several threads
 * never mix: one write each). */
__attribute__((format(printf, 1, 2))) void bridge_log(const char *fmt, ...);

/* bridge_stopping: set once SIGTERM or SIGINT arrived; every loop watches it. */
extern atomic_int bridge_stopping;

/* bridge_now_ms: CLOCK_MONOTONIC in milliseconds. */
int64_t bridge_now_ms(void);

/* bridge_now_us: CLOCK_MONOTONIC in microseconds (latencies). */
int64_t bridge_now_us(void);

/* bridge_sleep_ms: sleep MS milliseconds, in steps of at most 100 ms, returning
 * early once bridge_stopping is set. */
void bridge_sleep_ms(int64_t ms);

/* bridge_sleep_raw_ms: sleep MS milliseconds whatever bridge_stopping says. */
void bridge_sleep_raw_ms(int64_t ms);

struct bridge_stats;
struct route_stats;

/*
 * conn_open: connect to O->nats_url with O's credentials and TLS settings,
 * retrying with back-off (logging each failure) until it works or a signal
 * in SIGS (blocked in every thread) arrives. Once connected the library
 * reconnects by itself, with back-off, forever; disconnections and
 * reconnections are logged and counted in ST, which gets the connection
 * (ST->nc) and the last failure to connect. Returns the connection, or NULL
 * (stopping, or logged: a setting that cannot work, credentials the server
 * refuses).
 */
natsConnection *conn_open(const struct bridge_opts *o, const void *sigs, struct bridge_stats *st);

/* conn_up: whether NC is connected now (not connecting, reconnecting or closed). */
int conn_up(natsConnection *nc);

/*
 * conn_ensure_stream: make sure O->stream exists: create it (the subjects of
 * every route, file storage, a duplicate window of BRIDGE_DUP_WINDOW_S) if
 * missing, use it as it is otherwise, warning about any route subject it
 * does not list. Returns 0, or -1 after logging why.
 */
#define BRIDGE_DUP_WINDOW_S 120
int conn_ensure_stream(jsCtx *js, const struct bridge_opts *o);

/* bridge_nats_error: "STATUS: last error text" for S, for log lines. */
const char *bridge_nats_error(natsStatus s, char *buf, size_t len);

/* struct export_route, struct import_route: opaque, one per route. */
struct export_route;
struct import_route;

/*
 * export_start: attach to R's queue and start its thread, publishing through
 * a JetStream context of NC with a window of WINDOW outstanding acks,
 * counting in ST (which must outlive E).
 * export_stop: stop leasing, wait at most GRACE_MS for the publishes in
 * flight to be acknowledged (what is left is given back to the queue),
 * join and detach (logging what it did). export_free: free E, once the
 * library's threads are gone (nats_CloseAndWait): its ack callback uses E.
 * export_start returns NULL after logging why.
 */
struct export_route *export_start(const struct route *r, natsConnection *nc, unsigned window,
                                  struct route_stats *st);
void export_stop(struct export_route *e, int grace_ms);
void export_free(struct export_route *e);

/*
 * import_start: attach to R's queue, create (or reuse) the durable pull
 * consumer of R's subject on STREAM (AckWait ACK_WAIT_S if we create it),
 * and start its thread, fetching BATCH messages at a time, counting in ST
 * (which must outlive M). import_stop: join (the thread ends
 * within about a second of bridge_stopping) and detach; import_free: free M (after
 * nats_CloseAndWait). import_start returns NULL after logging why.
 */
struct import_route *import_start(const struct route *r, natsConnection *nc, const char *stream,
                                  unsigned batch, unsigned ack_wait_s, struct route_stats *st);
void import_stop(struct import_route *m);
void import_free(struct import_route *m);

/* import_fetch: up to BATCH messages of the pull subscription SUB into LIST,
 * waiting at most about a second when none is available; asked so that
 * libnats 3.4.1's fetch cannot overflow (import.c). Returns
 * natsSubscription_Fetch's statuses (NATS_NOT_FOUND, NATS_TIMEOUT: none). */
natsStatus import_fetch(natsSubscription *sub, unsigned batch, natsMsgList *list);

/* import_consumer_name: the durable consumer's name for SUBJECT=QUEUE into
 * OUT: letters, digits, '_' and '-' only, stable across runs. */
void import_consumer_name(const char *subject, const char *queue, char *out, size_t len);

/*
 * endpoints_start: serve ST on LISTEN (ADDR:PORT) with mq_http: GET /healthz
 * (200 {"status": "ok"} while NATS is connected and every route runs, else
 * 503 {"status": "unavailable", "reasons": [...]}), /status (JSON) and
 * /metrics (Prometheus text, mq_bridge_*); 405 for another method on them,
 * 404 elsewhere. Returns the server (http_port, http_stop in http.h), or
 * NULL with a one-line reason in ERR (ERRLEN bytes) and errno (EINVAL,
 * EADDRINUSE, ...). ST must outlive the server.
 */
struct http_server;
struct http_server *endpoints_start(struct bridge_stats *st, const char *listen, char *err,
                                    size_t errlen);

/* endpoints_status, endpoints_metrics: ST's /status document and /metrics
 * text; endpoints_health: the /healthz document, with *BAD set to how many
 * reasons it gives (0: healthy). Each malloc'd, or NULL if out of memory. */
char *endpoints_status(struct bridge_stats *st);
char *endpoints_metrics(struct bridge_stats *st);
char *endpoints_health(struct bridge_stats *st, int *bad);

#endif /* MQBRIDGE_H */
