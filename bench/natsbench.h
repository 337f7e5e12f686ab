/* natsbench.h - mqbridgebench's runs (natsruns.c), as its main and report (natsbench.c) use them.
 */
#ifndef MQBRIDGEBENCH_H
#define MQBRIDGEBENCH_H

/*
 * A run is one row of one repetition: a fresh stream, then mqbridge or the
 * libnats peer moving N messages (throughput) or one message at a time
 * (latency), measured; natsruns.c's top comment says how. Every run returns
 * 0, or -1 after saying why on stderr.
 */
#include <stddef.h>
#include <stdint.h>

#define NB_MAXREPS     20
#define NB_WARMUP_MSGS 20 /* latency: messages sent before the timed ones */

/* struct nb_options: the command line (natsbench.c fills it; defaults in natsruns.c). */
struct nb_options {
	const char *nats_url, *bridge, *q64, *q4k, *qa, *qb;
	const char *compare; /* a second mqbridge: one more export row (A/B), or NULL */
	int reps;
	uint64_t n64, n4k;
	int lat_msgs, gap_ms;
	unsigned window;
	int smoke, lat_only, tput_only;
	int nats_pid; /* for its CPU time, 0: not measured */
};
extern struct nb_options nb_opt;

/* struct nb_tput: one throughput run. */
struct nb_tput {
	double rate;        /* msgs/s, our clock */
	double stream_rate; /* msgs/s, the stored messages' timestamps */
	double cpu_us;      /* the publisher's CPU time per message */
	double server_us;   /* nats-server's CPU time per message (0: not measured) */
};

/* struct nb_lat: one latency run, in microseconds. */
struct nb_lat {
	double p50_us, p99_us;
};

/* nb_open: initialise libnats and connect the control connection (through
 * which every run's stream is made, read and deleted); -1 after saying why.
 * nb_close: close it. */
int nb_open(void);
void nb_close(void);

/* nb_kill_bridges: SIGKILL and reap the mqbridge processes still running
 * (for atexit: a run that failed half-way). */
void nb_kill_bridges(void);

/*
 * nb_tput_bridge: N messages of SIZE bytes into QUEUE, then `EXE --export
 * QUEUE=SUBJECT`, timed until all are acked. nb_tput_peer: the same N
 * published with js_PublishAsync (WITH_ID: with a Nats-Msg-Id header).
 * nb_lat_bridge, nb_lat_peer: M messages of SIZE one at a time, through two
 * bridges and queues qa, qb, or through libnats alone.
 */
int nb_tput_bridge(const char *exe, const char *queue, size_t size, uint64_t n, struct nb_tput *t);
int nb_tput_peer(size_t size, uint64_t n, int with_id, struct nb_tput *t);
int nb_lat_bridge(size_t size, int m, struct nb_lat *l);
int nb_lat_peer(size_t size, int m, struct nb_lat *l);

/* nb_progress: one line "mqbridgebench: ..." on stderr. */
__attribute__((format(printf, 1, 2))) void nb_progress(const char *fmt, ...);

#endif /* MQBRIDGEBENCH_H */
