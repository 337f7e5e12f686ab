/*
 * natsruns.c - mqbridgebench's runs: the stream of each run, the mqbridge
 * processes, and the four kinds of run (natsbench.h), each against a plain C
 * program using libnats' JetStream API directly (the "peer").
 *
 * Throughput, for 64 B and 4 KiB:
 *  - bridge: N messages are put into local queue A first; then mqbridge
 *    --export A=SUBJ starts. The clock runs from the bridge's "export ...:
 *    running" line (it connected to NATS, found the stream and started the
 *    route: connection setup is not timed) until queue A's acked_total grew by
 *    N: the bridge acks a lease only after its PubAck, so by then JetStream
 *    stored every message. The stream must then hold exactly N.
 *  - peer: js_PublishAsync of the same N messages with at most WINDOW
 *    publishes awaiting their ack (jsOptions.PublishAsync.MaxPending = the
 *    bridge's --window), then js_PublishAsyncComplete. The clock runs from the
 *    first publish to the return of js_PublishAsyncComplete (connected
 *    before). Plain, and with a Nats-Msg-Id header as the bridge sets.
 *  - Both also give the stream's own figure, (N - 1) / (LastTime - FirstTime)
 *    of the stored messages' timestamps (the server's clock), as a check.
 * Latency, one message at a time (the next sent GAP ms after the previous
 * arrived), each carrying its send time (CLOCK_MONOTONIC: one machine):
 *  - bridge: mq_send on queue "host A" -> mqbridge --export -> JetStream ->
 *    a second mqbridge --import -> mq_recv on queue "host B";
 *  - peer: js_PublishAsync on one connection -> JetStream -> a pull
 *    consumer's natsSubscription_Fetch(1) on another, waiting already.
 * Every run has a fresh stream (deleted and made again: file storage, a
 * duplicate window of 120 s, as mqbridge makes it); the rows alternate their
 * order from one repetition to the next. Beside the rates: the CPU time per
 * message of the publisher and of nats-server (on 2 shared CPUs the runs are
 * CPU-bound). --compare adds a second mqbridge binary as one more export row.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmq.h>
#include <nats/nats.h>

#include "natsbench.h"
#include "stats.h"

#define DUP_WINDOW (120 * 1000000000LL) /* as mqbridge creates its stream */
#define LOGCAP     65536

struct nb_options nb_opt = {
        .reps = 5,
        .n64 = 200000,
        .n4k = 50000,
        .lat_msgs = 500,
        .gap_ms = 2,
        .window = 256,
};

static natsConnection *ctl_nc; /* streams are made, read and deleted through it */
static jsCtx *ctl_js;
static char stream_name[64], subject[64];

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

void nb_progress(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mqbridgebench: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static const char *nats_err(natsStatus s)
{
	static char buf[512];
	natsStatus last = NATS_OK;
	const char *text = nats_GetLastError(&last);
	snprintf(buf, sizeof(buf), "%s%s%s", natsStatus_GetText(s), text && *text ? ": " : "",
	         text ? text : "");
	return buf;
}

/* ---- the stream ---- */

/* stream_fresh: delete the run's stream if it exists and make it again, empty. */
static int stream_fresh(void)
{
	jsErrCode jerr = 0;
	natsStatus s = js_DeleteStream(ctl_js, stream_name, NULL, &jerr);
	if (s != NATS_OK && s != NATS_NOT_FOUND) {
		nb_progress("cannot delete stream %s: %s (JetStream error %d)", stream_name,
		            nats_err(s), (int)jerr);
		return -1;
	}
	const char *subjects[1] = {subject};
	jsStreamConfig cfg;
	jsStreamConfig_Init(&cfg);
	cfg.Name = stream_name;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Duplicates = DUP_WINDOW;
	jsStreamInfo *si = NULL;
	s = js_AddStream(&si, ctl_js, &cfg, NULL, &jerr);
	if (s != NATS_OK) {
		nb_progress("cannot create stream %s: %s (JetStream error %d)", stream_name,
		            nats_err(s), (int)jerr);
		return -1;
	}
	jsStreamInfo_Destroy(si);
	return 0;
}

/* stream_state: the messages the stream holds, and the first and last one's
 * timestamps (ns, the server's clock). */
static int stream_state(uint64_t *msgs, int64_t *first, int64_t *last)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	natsStatus s = js_GetStreamInfo(&si, ctl_js, stream_name, NULL, &jerr);
	if (s != NATS_OK) {
		nb_progress("cannot read stream %s: %s", stream_name, nats_err(s));
		return -1;
	}
	*msgs = si->State.Msgs;
	*first = si->State.FirstTime;
	*last = si->State.LastTime;
	jsStreamInfo_Destroy(si);
	return 0;
}

static void stream_drop(void)
{
	js_DeleteStream(ctl_js, stream_name, NULL, NULL);
}

/* ---- mqbridge processes ---- */

struct bridge_proc {
	pid_t pid;
	int fd; /* its stderr */
	char log[LOGCAP];
	size_t len;
};

static struct bridge_proc *live[4]; /* killed at exit */

void nb_kill_bridges(void)
{
	for (int i = 0; i < 4; i++)
		if (live[i] && live[i]->pid > 0) {
			kill(live[i]->pid, SIGKILL);
			waitpid(live[i]->pid, NULL, 0);
			live[i]->pid = 0;
		}
}

/* bridge_read: read what the bridge wrote within TIMEOUT_MS; -1 at EOF. */
static int bridge_read(struct bridge_proc *b, int timeout_ms)
{
	struct pollfd p = {.fd = b->fd, .events = POLLIN};
	if (poll(&p, 1, timeout_ms) <= 0)
		return 0;
	char tmp[4096];
	ssize_t n = read(b->fd, tmp, sizeof(tmp));
	if (n <= 0)
		return -1;
	size_t room = LOGCAP - 1 - b->len;
	size_t k = (size_t)n < room ? (size_t)n : room;
	memcpy(b->log + b->len, tmp, k);
	b->len += k;
	b->log[b->len] = '\0';
	return 1;
}

/* bridge_start: run mqbridge with ARGS (after --nats, --stream, --window and --listen) and wait
 * until its log says WANT. Returns 0, or -1 after printing its log. */
static int bridge_start(struct bridge_proc *b, const char *exe, const char *want, const char *a1,
                        const char *a2)
{
	char window[16];
	snprintf(window, sizeof(window), "%u", nb_opt.window);
	/* --listen 127.0.0.1:0: its HTTP server on a free port, so that two
	 * bridges (and one the user runs on 8081) never collide. */
	const char *argv[] = {exe,        "--nats", nb_opt.nats_url, "--stream",    stream_name,
	                      "--window", window,   "--listen",      "127.0.0.1:0", a1,
	                      a2,         NULL};
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		return -1;
	b->len = 0;
	b->log[0] = '\0';
	b->pid = fork();
	if (b->pid < 0)
		return -1;
	if (b->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(p[1], STDERR_FILENO);
		int devnull = open("/dev/null", O_WRONLY);
		dup2(devnull, STDOUT_FILENO);
		execv(exe, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	b->fd = p[0];
	for (int i = 0; i < 4; i++)
		if (!live[i]) {
			live[i] = b;
			break;
		}
	int64_t deadline = now_ns() + 30 * 1000000000LL;
	while (!strstr(b->log, want)) {
		if (now_ns() > deadline || bridge_read(b, 100) < 0) {
			nb_progress("mqbridge %s %s did not say \"%s\":\n%s", a1, a2, want, b->log);
			return -1;
		}
	}
	return 0;
}

/* bridge_stop: SIGTERM, read its log to the end, reap it. Returns 0 if it
 * exited 0, else -1 after printing its log. */
static int bridge_stop(struct bridge_proc *b)
{
	kill(b->pid, SIGTERM);
	int64_t deadline = now_ns() + 20 * 1000000000LL;
	while (now_ns() < deadline && bridge_read(b, 100) >= 0)
		;
	int st = 0;
	waitpid(b->pid, &st, 0);
	b->pid = 0;
	close(b->fd);
	for (int i = 0; i < 4; i++)
		if (live[i] == b)
			live[i] = NULL;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		nb_progress("mqbridge exited with status 0x%x:\n%s", st, b->log);
		return -1;
	}
	return 0;
}

/* ---- throughput ---- */

/* self_cpu_s: this process's CPU time (user + system), all threads. */
static double self_cpu_s(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	       ru.ru_stime.tv_usec / 1e6;
}

/* proc_cpu_s: process PID's CPU time (user + system) from /proc, 0 if unknown. */
static double proc_cpu_s(int pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	FILE *f = pid > 0 ? fopen(path, "r") : NULL;
	if (!f)
		return 0;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	const char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return 0;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static double server_cpu_s(void)
{
	return proc_cpu_s(nb_opt.nats_pid);
}

static void stamp(char *buf, size_t size, uint64_t seq, int64_t t)
{
	memset(buf, 'a' + (int)(seq % 26), size);
	memcpy(buf, &seq, sizeof(seq));
	if (size >= 16)
		memcpy(buf + 8, &t, sizeof(t));
}

/* finish: fill T with the figures of N messages sent in NS nanoseconds using
 * CPU_S seconds of the publisher's CPU and SRV_S of nats-server's, then check
 * the stream holds N and fill T's stream rate. */
static int finish(uint64_t n, int64_t ns, double cpu_s, double srv_s, struct nb_tput *t)
{
	t->rate = (double)n * 1e9 / (double)ns;
	t->cpu_us = cpu_s * 1e6 / (double)n;
	t->server_us = srv_s * 1e6 / (double)n;
	uint64_t msgs;
	int64_t first, last;
	if (stream_state(&msgs, &first, &last) < 0)
		return -1;
	if (msgs != n) {
		nb_progress("the stream holds %" PRIu64 " messages, want %" PRIu64, msgs, n);
		return -1;
	}
	t->stream_rate = last > first ? (double)(n - 1) * 1e9 / (double)(last - first) : 0;
	return 0;
}

int nb_tput_bridge(const char *exe, const char *qname, size_t size, uint64_t n, struct nb_tput *t)
{
	if (stream_fresh() < 0)
		return -1;
	mq_t *q = mq_attach(qname);
	if (!q) {
		nb_progress("%s: %s", qname, mq_errdetail());
		return -1;
	}
	struct mq_stats st;
	mq_stats(q, &st);
	if (st.depth || st.in_flight || st.capacity < n) {
		nb_progress("%s: want an empty queue of capacity >= %" PRIu64 " (depth %" PRIu64
		            ", capacity %" PRIu64 ")",
		            qname, n, st.depth, st.capacity);
		mq_detach(q);
		return -1;
	}
	char *buf = malloc(size);
	for (uint64_t i = 0; i < n; i++) {
		stamp(buf, size, i, 0);
		if (mq_send(q, buf, size, 5000) < 0) {
			nb_progress("%s: mq_send: %s", qname, mq_errdetail());
			free(buf);
			mq_detach(q);
			return -1;
		}
	}
	free(buf);
	mq_stats(q, &st);
	uint64_t acked0 = st.acked_total;
	char route[256];
	snprintf(route, sizeof(route), "%s=%s", qname, subject);
	char want[300];
	snprintf(want, sizeof(want), "export %s -> %s: running", qname, subject);
	static struct bridge_proc b;
	double srv0 = server_cpu_s();
	int rc = bridge_start(&b, exe, want, "--export", route);
	int64_t t0 = now_ns(), t1 = 0, last_change = t0;
	double cpu0 = rc == 0 ? proc_cpu_s(b.pid) : 0, cpu1 = 0;
	if (rc == 0 && getenv("MQBRIDGEBENCH_PIDS"))
		nb_progress("export %zu B: mqbridge pid %d", size, (int)b.pid);
	uint64_t last_acked = acked0;
	while (rc == 0) {
		mq_stats(q, &st);
		int64_t now = now_ns();
		if (st.acked_total - acked0 >= n) {
			t1 = now;
			cpu1 = proc_cpu_s(b.pid);
			break;
		}
		if (st.acked_total != last_acked) {
			last_acked = st.acked_total;
			last_change = now;
		} else if (now - last_change > 30 * 1000000000LL) {
			nb_progress("export stalled at %" PRIu64 " of %" PRIu64 ":\n%s",
			            st.acked_total - acked0, n, b.log);
			rc = -1;
		}
		bridge_read(&b, 0); /* keep its pipe drained */
		sleep_ms(1);
	}
	double srv1 = server_cpu_s();
	if (b.pid > 0 && bridge_stop(&b) < 0)
		rc = -1;
	mq_detach(q);
	if (rc == 0)
		rc = finish(n, t1 - t0, cpu1 - cpu0, srv1 - srv0, t);
	stream_drop();
	return rc;
}

static _Atomic uint64_t peer_errors;

static void peer_err(jsCtx *js, jsPubAckErr *pae, void *closure)
{
	(void)js;
	(void)pae;
	(void)closure;
	peer_errors++;
}

/* connect: a new connection to the server (its setup is never timed). */
static natsConnection *new_connection(void)
{
	natsConnection *nc = NULL;
	natsStatus s = natsConnection_ConnectTo(&nc, nb_opt.nats_url);
	if (s != NATS_OK)
		nb_progress("cannot connect to %s: %s", nb_opt.nats_url, nats_err(s));
	return nc;
}

int nb_tput_peer(size_t size, uint64_t n, int with_id, struct nb_tput *t)
{
	if (stream_fresh() < 0)
		return -1;
	natsConnection *nc = new_connection();
	if (!nc)
		return -1;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = nb_opt.window;
	jo.PublishAsync.StallWait = 30000;
	jo.PublishAsync.ErrHandler = peer_err;
	jsCtx *js = NULL;
	natsStatus s = natsConnection_JetStream(&js, nc, &jo);
	char *buf = malloc(size);
	uint64_t qid = ((uint64_t)rand() << 32) ^ (uint64_t)rand();
	peer_errors = 0;
	double cpu0 = self_cpu_s(), srv0 = server_cpu_s();
	int64_t t0 = now_ns();
	for (uint64_t i = 0; i < n && s == NATS_OK; i++) {
		stamp(buf, size, i, 0);
		if (with_id) {
			char msgid[64];
			jsPubOptions po;
			jsPubOptions_Init(&po);
			snprintf(msgid, sizeof(msgid), "%016" PRIx64 "-%" PRIu64, qid, i + 1);
			po.MsgId = msgid;
			s = js_PublishAsync(js, subject, buf, (int)size, &po);
		} else {
			s = js_PublishAsync(js, subject, buf, (int)size, NULL);
		}
	}
	if (s == NATS_OK) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MaxWait = 120000;
		s = js_PublishAsyncComplete(js, &po);
	}
	int64_t t1 = now_ns();
	double cpu1 = self_cpu_s(), srv1 = server_cpu_s();
	free(buf);
	int rc = 0;
	if (s != NATS_OK || peer_errors) {
		nb_progress("peer publish: %s, %" PRIu64 " errors", nats_err(s),
		            (uint64_t)peer_errors);
		rc = -1;
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	if (rc == 0)
		rc = finish(n, t1 - t0, cpu1 - cpu0, srv1 - srv0, t);
	stream_drop();
	return rc;
}

/* ---- latency ---- */

static int lat_result(uint32_t *ns, int m, struct nb_lat *l)
{
	l->p50_us = stats_percentile(ns, (size_t)m, 50) / 1000.0;
	l->p99_us = stats_percentile(ns, (size_t)m, 99) / 1000.0;
	return 0;
}

int nb_lat_bridge(size_t size, int m, struct nb_lat *l)
{
	if (stream_fresh() < 0)
		return -1;
	mq_t *qa = mq_attach(nb_opt.qa), *qb = qa ? mq_attach(nb_opt.qb) : NULL;
	if (!qa || !qb) {
		nb_progress("%s / %s: %s", nb_opt.qa, nb_opt.qb, mq_errdetail());
		if (qa)
			mq_detach(qa);
		return -1;
	}
	static struct bridge_proc ba, bb;
	char ra[256], rb[256];
	snprintf(ra, sizeof(ra), "%s=%s", nb_opt.qa, subject);
	snprintf(rb, sizeof(rb), "%s=%s", subject, nb_opt.qb);
	int rc = bridge_start(&bb, nb_opt.bridge, "mqbridge: running ", "--import", rb);
	if (rc == 0)
		rc = bridge_start(&ba, nb_opt.bridge, "mqbridge: running ", "--export", ra);
	char *buf = malloc(size), *rbuf = malloc(size);
	uint32_t *ns = calloc((size_t)m, sizeof(*ns));
	for (int i = 0; rc == 0 && i < NB_WARMUP_MSGS + m; i++) {
		int64_t t0 = now_ns();
		stamp(buf, size, (uint64_t)i, t0);
		if (mq_send(qa, buf, size, 5000) < 0) {
			nb_progress("%s: mq_send: %s", nb_opt.qa, mq_errdetail());
			rc = -1;
			break;
		}
		ssize_t got = mq_recv(qb, rbuf, size, 10000);
		int64_t t1 = now_ns();
		uint64_t seq = UINT64_MAX;
		if (got == (ssize_t)size)
			memcpy(&seq, rbuf, sizeof(seq));
		if (got != (ssize_t)size || seq != (uint64_t)i) {
			nb_progress("%s: message %d: mq_recv %zd (%s)", nb_opt.qb, i, got,
			            got < 0 ? mq_errdetail() : "wrong message");
			rc = -1;
			break;
		}
		if (i >= NB_WARMUP_MSGS)
			ns[i - NB_WARMUP_MSGS] = (uint32_t)(t1 - t0);
		bridge_read(&ba, 0);
		bridge_read(&bb, 0);
		sleep_ms(nb_opt.gap_ms);
	}
	if (ba.pid > 0 && bridge_stop(&ba) < 0)
		rc = -1;
	if (bb.pid > 0 && bridge_stop(&bb) < 0)
		rc = -1;
	mq_detach(qa);
	mq_detach(qb);
	if (rc == 0)
		lat_result(ns, m, l);
	free(buf);
	free(rbuf);
	free(ns);
	stream_drop();
	return rc;
}

/* The peer's receiving side: a thread fetching one message at a time. */
struct receiver {
	natsSubscription *sub;
	size_t size;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int done;
	int64_t got_seq; /* -1 none yet */
	int64_t lat_ns;
	int error;
};

static void *receiver_thread(void *arg)
{
	struct receiver *r = arg;
	for (;;) {
		pthread_mutex_lock(&r->mu);
		int done = r->done;
		pthread_mutex_unlock(&r->mu);
		if (done)
			return NULL;
		natsMsgList list = {0};
		jsErrCode jerr = 0;
		natsStatus s = natsSubscription_Fetch(&list, r->sub, 1, 1000, &jerr);
		int64_t t1 = now_ns();
		if (s == NATS_TIMEOUT)
			continue;
		if (s != NATS_OK || list.Count != 1 ||
		    natsMsg_GetDataLength(list.Msgs[0]) != (int)r->size) {
			nb_progress("peer fetch: %s", nats_err(s));
			pthread_mutex_lock(&r->mu);
			r->error = 1;
			pthread_cond_signal(&r->cv);
			pthread_mutex_unlock(&r->mu);
			natsMsgList_Destroy(&list);
			return NULL;
		}
		const char *d = natsMsg_GetData(list.Msgs[0]);
		uint64_t seq;
		int64_t t0;
		memcpy(&seq, d, sizeof(seq));
		memcpy(&t0, d + 8, sizeof(t0));
		natsMsg_Ack(list.Msgs[0], NULL);
		natsMsgList_Destroy(&list);
		pthread_mutex_lock(&r->mu);
		r->got_seq = (int64_t)seq;
		r->lat_ns = t1 - t0;
		pthread_cond_signal(&r->cv);
		pthread_mutex_unlock(&r->mu);
	}
}

int nb_lat_peer(size_t size, int m, struct nb_lat *l)
{
	if (stream_fresh() < 0)
		return -1;
	natsConnection *nca = new_connection(), *ncb = nca ? new_connection() : NULL;
	if (!ncb) {
		if (nca)
			natsConnection_Destroy(nca);
		return -1;
	}
	jsCtx *jsa = NULL, *jsb = NULL;
	natsStatus s = natsConnection_JetStream(&jsa, nca, NULL);
	if (s == NATS_OK)
		s = natsConnection_JetStream(&jsb, ncb, NULL);
	/* The consumer as mqbridge's import makes it. */
	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = "peer";
	cc.AckPolicy = js_AckExplicit;
	cc.DeliverPolicy = js_DeliverAll;
	cc.FilterSubject = subject;
	cc.AckWait = 30 * 1000000000LL;
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	if (s == NATS_OK)
		s = js_AddConsumer(&ci, jsb, stream_name, &cc, NULL, &jerr);
	jsConsumerInfo_Destroy(ci);
	struct receiver r = {.size = size, .got_seq = -1};
	pthread_mutex_init(&r.mu, NULL);
	pthread_cond_init(&r.cv, NULL);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream_name;
	so.Consumer = "peer";
	if (s == NATS_OK)
		s = js_PullSubscribe(&r.sub, jsb, subject, "peer", NULL, &so, &jerr);
	pthread_t th;
	int started = s == NATS_OK && pthread_create(&th, NULL, receiver_thread, &r) == 0;
	int rc = started ? 0 : -1;
	if (!started)
		nb_progress("peer consumer: %s (JetStream error %d)", nats_err(s), (int)jerr);
	char *buf = malloc(size);
	uint32_t *ns = calloc((size_t)m, sizeof(*ns));
	sleep_ms(50); /* the first fetch is waiting */
	for (int i = 0; rc == 0 && i < NB_WARMUP_MSGS + m; i++) {
		int64_t t0 = now_ns();
		stamp(buf, size, (uint64_t)i, t0);
		s = js_PublishAsync(jsa, subject, buf, (int)size, NULL);
		if (s != NATS_OK) {
			nb_progress("peer publish: %s", nats_err(s));
			rc = -1;
			break;
		}
		struct timespec dl;
		clock_gettime(CLOCK_REALTIME, &dl);
		dl.tv_sec += 10;
		pthread_mutex_lock(&r.mu);
		while (r.got_seq != i && !r.error)
			if (pthread_cond_timedwait(&r.cv, &r.mu, &dl) == ETIMEDOUT)
				break;
		if (r.got_seq != i) {
			nb_progress("peer: message %d did not arrive", i);
			rc = -1;
		} else if (i >= NB_WARMUP_MSGS) {
			ns[i - NB_WARMUP_MSGS] = (uint32_t)r.lat_ns;
		}
		pthread_mutex_unlock(&r.mu);
		sleep_ms(nb_opt.gap_ms);
	}
	if (started) {
		pthread_mutex_lock(&r.mu);
		r.done = 1;
		pthread_mutex_unlock(&r.mu);
		pthread_join(th, NULL);
	}
	if (jsa)
		js_PublishAsyncComplete(jsa, NULL);
	if (r.sub)
		natsSubscription_Destroy(r.sub);
	jsCtx_Destroy(jsa);
	jsCtx_Destroy(jsb);
	natsConnection_Destroy(nca);
	natsConnection_Destroy(ncb);
	if (rc == 0)
		lat_result(ns, m, l);
	free(buf);
	free(ns);
	stream_drop();
	return rc;
}

int nb_open(void)
{
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	snprintf(stream_name, sizeof(stream_name), "MQBENCH%d", (int)getpid());
	snprintf(subject, sizeof(subject), "mqbench.%d", (int)getpid());
	if (nats_Open(-1) != NATS_OK) {
		nb_progress("cannot initialise the NATS library");
		return -1;
	}
	ctl_nc = new_connection();
	natsStatus s = ctl_nc ? natsConnection_JetStream(&ctl_js, ctl_nc, NULL) : NATS_ERR;
	if (s != NATS_OK) {
		if (ctl_nc)
			nb_progress("no JetStream context: %s", nats_err(s));
		return -1;
	}
	return 0;
}

void nb_close(void)
{
	jsCtx_Destroy(ctl_js);
	natsConnection_Destroy(ctl_nc);
	nats_CloseAndWait(2000);
}
