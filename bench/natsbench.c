/*
 * natsbench.c - mqbridgebench: mqbridge's export throughput and added latency,
 * each against a plain C program using libnats' JetStream API directly (the
 * "peer"), in the same run; bench/bridge.sh starts nats-server and mqbroker
 * and runs it (bench/README.md, "mqbridge against libnats").
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
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmq.h>
#include <nats/nats.h>

#include "stats.h"

#define MAXREPS     20
#define DUP_WINDOW  (120 * 1000000000LL) /* as mqbridge creates its stream */
#define LOGCAP      65536
#define WARMUP_MSGS 20

struct options {
	const char *nats_url, *bridge, *q64, *q4k, *qa, *qb;
	const char *compare; /* a second mqbridge: one more export row (A/B), or NULL */
	int reps;
	uint64_t n64, n4k;
	int lat_msgs, gap_ms;
	unsigned window;
	int smoke, lat_only, tput_only;
	int nats_pid; /* for its CPU time, 0: not measured */
};
static struct options opt = {
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

__attribute__((format(printf, 1, 2))) static void progress(const char *fmt, ...)
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
		progress("cannot delete stream %s: %s (JetStream error %d)", stream_name,
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
		progress("cannot create stream %s: %s (JetStream error %d)", stream_name,
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
		progress("cannot read stream %s: %s", stream_name, nats_err(s));
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

static void kill_live(void)
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

/* bridge_start: run mqbridge with ARGS (after --nats and --stream) and wait
 * until its log says WANT. Returns 0, or -1 after printing its log. */
static int bridge_start(struct bridge_proc *b, const char *exe, const char *want, const char *a1,
                        const char *a2)
{
	char window[16];
	snprintf(window, sizeof(window), "%u", opt.window);
	const char *argv[] = {exe,        "--nats", opt.nats_url, "--stream", stream_name,
	                      "--window", window,   a1,           a2,         NULL};
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
			progress("mqbridge %s %s did not say \"%s\":\n%s", a1, a2, want, b->log);
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
		progress("mqbridge exited with status 0x%x:\n%s", st, b->log);
		return -1;
	}
	return 0;
}

/* ---- throughput ---- */

struct tput {
	double rate;        /* msgs/s, our clock */
	double stream_rate; /* msgs/s, the stored messages' timestamps */
	double cpu_us;      /* the publisher's CPU time per message */
	double server_us;   /* nats-server's CPU time per message (0: not measured) */
};

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
	return proc_cpu_s(opt.nats_pid);
}

static void stamp(char *buf, size_t size, uint64_t seq, int64_t t)
{
	memset(buf, 'a' + (int)(seq % 26), size);
	memcpy(buf, &seq, sizeof(seq));
	if (size >= 16)
		memcpy(buf + 8, &t, sizeof(t));
}

/* finish: check the stream holds N and fill T's stream rate. */
static int finish(uint64_t n, struct tput *t)
{
	uint64_t msgs;
	int64_t first, last;
	if (stream_state(&msgs, &first, &last) < 0)
		return -1;
	if (msgs != n) {
		progress("the stream holds %" PRIu64 " messages, want %" PRIu64, msgs, n);
		return -1;
	}
	t->stream_rate = last > first ? (double)(n - 1) * 1e9 / (double)(last - first) : 0;
	return 0;
}

static int tput_bridge(const char *exe, const char *qname, size_t size, uint64_t n, struct tput *t)
{
	if (stream_fresh() < 0)
		return -1;
	mq_t *q = mq_attach(qname);
	if (!q) {
		progress("%s: %s", qname, mq_errdetail());
		return -1;
	}
	struct mq_stats st;
	mq_stats(q, &st);
	if (st.depth || st.in_flight || st.capacity < n) {
		progress("%s: want an empty queue of capacity >= %" PRIu64 " (depth %" PRIu64
		         ", capacity %" PRIu64 ")",
		         qname, n, st.depth, st.capacity);
		mq_detach(q);
		return -1;
	}
	char *buf = malloc(size);
	for (uint64_t i = 0; i < n; i++) {
		stamp(buf, size, i, 0);
		if (mq_send(q, buf, size, 5000) < 0) {
			progress("%s: mq_send: %s", qname, mq_errdetail());
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
		progress("export %zu B: mqbridge pid %d", size, (int)b.pid);
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
			progress("export stalled at %" PRIu64 " of %" PRIu64 ":\n%s",
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
	if (rc == 0) {
		t->rate = (double)n * 1e9 / (double)(t1 - t0);
		t->cpu_us = (cpu1 - cpu0) * 1e6 / (double)n;
		t->server_us = (srv1 - srv0) * 1e6 / (double)n;
		rc = finish(n, t);
	}
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
	natsStatus s = natsConnection_ConnectTo(&nc, opt.nats_url);
	if (s != NATS_OK)
		progress("cannot connect to %s: %s", opt.nats_url, nats_err(s));
	return nc;
}

static int tput_peer(size_t size, uint64_t n, int with_id, struct tput *t)
{
	if (stream_fresh() < 0)
		return -1;
	natsConnection *nc = new_connection();
	if (!nc)
		return -1;
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = opt.window;
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
		progress("peer publish: %s, %" PRIu64 " errors", nats_err(s),
		         (uint64_t)peer_errors);
		rc = -1;
	}
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	if (rc == 0) {
		t->rate = (double)n * 1e9 / (double)(t1 - t0);
		t->cpu_us = (cpu1 - cpu0) * 1e6 / (double)n;
		t->server_us = (srv1 - srv0) * 1e6 / (double)n;
		rc = finish(n, t);
	}
	stream_drop();
	return rc;
}

/* ---- latency ---- */

struct lat {
	double p50_us, p99_us;
};

static int lat_result(uint32_t *ns, int m, struct lat *l)
{
	l->p50_us = stats_percentile(ns, (size_t)m, 50) / 1000.0;
	l->p99_us = stats_percentile(ns, (size_t)m, 99) / 1000.0;
	return 0;
}

static int lat_bridge(size_t size, int m, struct lat *l)
{
	if (stream_fresh() < 0)
		return -1;
	mq_t *qa = mq_attach(opt.qa), *qb = qa ? mq_attach(opt.qb) : NULL;
	if (!qa || !qb) {
		progress("%s / %s: %s", opt.qa, opt.qb, mq_errdetail());
		if (qa)
			mq_detach(qa);
		return -1;
	}
	static struct bridge_proc ba, bb;
	char ra[256], rb[256];
	snprintf(ra, sizeof(ra), "%s=%s", opt.qa, subject);
	snprintf(rb, sizeof(rb), "%s=%s", subject, opt.qb);
	int rc = bridge_start(&bb, opt.bridge, "mqbridge: running ", "--import", rb);
	if (rc == 0)
		rc = bridge_start(&ba, opt.bridge, "mqbridge: running ", "--export", ra);
	char *buf = malloc(size), *rbuf = malloc(size);
	uint32_t *ns = calloc((size_t)m, sizeof(*ns));
	for (int i = 0; rc == 0 && i < WARMUP_MSGS + m; i++) {
		int64_t t0 = now_ns();
		stamp(buf, size, (uint64_t)i, t0);
		if (mq_send(qa, buf, size, 5000) < 0) {
			progress("%s: mq_send: %s", opt.qa, mq_errdetail());
			rc = -1;
			break;
		}
		ssize_t got = mq_recv(qb, rbuf, size, 10000);
		int64_t t1 = now_ns();
		uint64_t seq = UINT64_MAX;
		if (got == (ssize_t)size)
			memcpy(&seq, rbuf, sizeof(seq));
		if (got != (ssize_t)size || seq != (uint64_t)i) {
			progress("%s: message %d: mq_recv %zd (%s)", opt.qb, i, got,
			         got < 0 ? mq_errdetail() : "wrong message");
			rc = -1;
			break;
		}
		if (i >= WARMUP_MSGS)
			ns[i - WARMUP_MSGS] = (uint32_t)(t1 - t0);
		bridge_read(&ba, 0);
		bridge_read(&bb, 0);
		sleep_ms(opt.gap_ms);
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
			progress("peer fetch: %s", nats_err(s));
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

static int lat_peer(size_t size, int m, struct lat *l)
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
		progress("peer consumer: %s (JetStream error %d)", nats_err(s), (int)jerr);
	char *buf = malloc(size);
	uint32_t *ns = calloc((size_t)m, sizeof(*ns));
	sleep_ms(50); /* the first fetch is waiting */
	for (int i = 0; rc == 0 && i < WARMUP_MSGS + m; i++) {
		int64_t t0 = now_ns();
		stamp(buf, size, (uint64_t)i, t0);
		s = js_PublishAsync(jsa, subject, buf, (int)size, NULL);
		if (s != NATS_OK) {
			progress("peer publish: %s", nats_err(s));
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
			progress("peer: message %d did not arrive", i);
			rc = -1;
		} else if (i >= WARMUP_MSGS) {
			ns[i - WARMUP_MSGS] = (uint32_t)r.lat_ns;
		}
		pthread_mutex_unlock(&r.mu);
		sleep_ms(opt.gap_ms);
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

/* ---- the plan and the report ---- */

enum row_kind { R_BRIDGE, R_PEER, R_PEER_ID, R_COMPARE, R_NKINDS };
static const char *const tput_titles[R_NKINDS] = {
        "mqbridge --export (queue -> JetStream)",
        "peer: js_PublishAsync",
        "peer: js_PublishAsync + Nats-Msg-Id",
        "--compare: the other mqbridge --export",
};

/* nkinds: the throughput rows of this run (R_COMPARE only with --compare). */
static int nkinds(void)
{
	return opt.compare ? R_NKINDS : R_COMPARE;
}
static const char *const lat_titles[2] = {
        "mq_send -> mqbridge export -> JetStream -> mqbridge import -> mq_recv",
        "peer: js_PublishAsync -> JetStream -> pull Fetch(1)",
};

static const size_t sizes[2] = {64, 4096};
static struct tput tres[2][R_NKINDS][MAXREPS];
static struct lat lres[2][2][MAXREPS];

static double median_of(const double *v, int n)
{
	return stats_median(v, n);
}

static void fmt_rate(char *out, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(out, len, "%.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, len, "%.1f k", v / 1e3);
	else
		snprintf(out, len, "%.0f", v);
}

/* ratios_text: the N ratios at R, then their median in parentheses, into OUT. */
static void ratios_text(const double *r, int n, char *out, size_t len)
{
	size_t k = 0;
	out[0] = '\0';
	for (int i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(out + k, len - k, "%s%.2f", i ? ", " : "", r[i]);
	if (k < len)
		snprintf(out + k, len - k, " (%.2f)", stats_median(r, n));
}

static void report(int reps)
{
	char date[64];
	time_t tnow = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S +0000", gmtime(&tnow));
	struct utsname u;
	uname(&u);
	printf("- command: mqbridgebench (bench/bridge.sh) --reps %d --n64 %" PRIu64
	       " --n4k %" PRIu64 " --lat-msgs %d --gap-ms %d --window %u\n",
	       reps, opt.n64, opt.n4k, opt.lat_msgs, opt.gap_ms, opt.window);
	printf("- date: %s\n", date);
	if (opt.compare)
		printf("- --compare: %s (mqbridge: %s)\n", opt.compare, opt.bridge);
	printf("- machine: %ld CPUs (nproc), Linux %s %s; libnats %s; mqbridge --window %u\n",
	       sysconf(_SC_NPROCESSORS_ONLN), u.release, u.machine, nats_GetVersion(), opt.window);
	printf("- figure = median of %d repetitions, spread = min .. max; every row of a "
	       "repetition in turn, the order reversed every other repetition\n\n",
	       reps);
	printf("| workload | row | median | spread | unit | per repetition | stream's own "
	       "figure (median) | CPU µs/msg: publisher, nats-server (medians) |\n"
	       "|---|---|--:|--:|---|---|--:|--:|\n");
	for (int z = 0; z < 2 && !opt.lat_only; z++) {
		for (int k = 0; k < nkinds(); k++) {
			double v[MAXREPS], sv[MAXREPS], cpu[MAXREPS], srv[MAXREPS], lo, hi;
			char per[1024] = "", a[32], b[32], c[32], d[32];
			for (int r = 0; r < reps; r++) {
				v[r] = tres[z][k][r].rate;
				sv[r] = tres[z][k][r].stream_rate;
				cpu[r] = tres[z][k][r].cpu_us;
				srv[r] = tres[z][k][r].server_us;
				fmt_rate(a, sizeof(a), v[r]);
				snprintf(per + strlen(per), sizeof(per) - strlen(per), "%s%s",
				         r ? ", " : "", a);
			}
			stats_range(v, reps, &lo, &hi);
			fmt_rate(a, sizeof(a), median_of(v, reps));
			fmt_rate(b, sizeof(b), lo);
			fmt_rate(c, sizeof(c), hi);
			fmt_rate(d, sizeof(d), median_of(sv, reps));
			printf("| export %s | %s | %s (%.1f MB/s) | %s .. %s | msgs/s | %s | %s | "
			       "%.1f, %.1f |\n",
			       z ? "4 KiB" : "64 B", tput_titles[k], a,
			       median_of(v, reps) * (double)sizes[z] / 1e6, b, c, per, d,
			       median_of(cpu, reps), median_of(srv, reps));
		}
	}
	for (int z = 0; z < 2 && !opt.tput_only; z++) {
		for (int k = 0; k < 2; k++) {
			double p50[MAXREPS], p99[MAXREPS], lo, hi;
			char per[1024] = "";
			for (int r = 0; r < reps; r++) {
				p50[r] = lres[z][k][r].p50_us;
				p99[r] = lres[z][k][r].p99_us;
				snprintf(per + strlen(per), sizeof(per) - strlen(per),
				         "%s%.0f / %.0f", r ? ", " : "", p50[r], p99[r]);
			}
			stats_range(p50, reps, &lo, &hi);
			printf("| latency %s | %s | p50 %.0f, p99 %.0f | p50 %.0f .. %.0f | µs | "
			       "%s "
			       "(p50 / p99) | - | - |\n",
			       z ? "4 KiB" : "64 B", lat_titles[k], median_of(p50, reps),
			       median_of(p99, reps), lo, hi, per);
		}
	}
	printf("\n| target (issue 16) | mqbridge | peer | ratio (medians) | per repetition (their "
	       "median) | "
	       "need | verdict |\n|---|--:|--:|--:|---|---|---|\n");
	for (int z = 0; z < 2 && !opt.lat_only; z++) {
		double v[MAXREPS], p[MAXREPS], pi[MAXREPS], ratio[MAXREPS];
		char per[256];
		for (int r = 0; r < reps; r++) {
			v[r] = tres[z][R_BRIDGE][r].rate;
			p[r] = tres[z][R_PEER][r].rate;
			pi[r] = tres[z][R_PEER_ID][r].rate;
			ratio[r] = v[r] / p[r];
		}
		ratios_text(ratio, reps, per, sizeof(per));
		double rm = median_of(v, reps) / median_of(p, reps);
		char a[32], b[32];
		fmt_rate(a, sizeof(a), median_of(v, reps));
		fmt_rate(b, sizeof(b), median_of(p, reps));
		printf("| export throughput, %s: >= 80 %% of the plain peer | %s msgs/s | %s "
		       "msgs/s "
		       "| %.2f | %s | >= 0.80 | %s |\n",
		       z ? "4 KiB" : "64 B", a, b, rm, per, rm >= 0.80 ? "PASS" : "MISS");
		for (int r = 0; r < reps; r++)
			ratio[r] = v[r] / pi[r];
		ratios_text(ratio, reps, per, sizeof(per));
		rm = median_of(v, reps) / median_of(pi, reps);
		fmt_rate(b, sizeof(b), median_of(pi, reps));
		printf("| (for information) %s: against the peer with Nats-Msg-Id | %s msgs/s | %s "
		       "msgs/s | %.2f | %s | - | - |\n",
		       z ? "4 KiB" : "64 B", a, b, rm, per);
		/* On 2 shared CPUs the run is CPU-bound: what a message costs the
		 * publisher and nats-server together predicts the ratio, with less
		 * noise than the rates. */
		double cb[MAXREPS], cp[MAXREPS];
		for (int r = 0; r < reps; r++) {
			cb[r] = tres[z][R_BRIDGE][r].cpu_us + tres[z][R_BRIDGE][r].server_us;
			cp[r] = tres[z][R_PEER][r].cpu_us + tres[z][R_PEER][r].server_us;
			ratio[r] = cb[r] > 0 ? cp[r] / cb[r] : 0;
		}
		ratios_text(ratio, reps, per, sizeof(per));
		double mb = median_of(cb, reps), mp = median_of(cp, reps);
		printf("| (for information) %s: CPU per message, publisher + nats-server: plain "
		       "peer / mqbridge | %.1f µs | %.1f µs | %.2f | %s | - | - |\n",
		       z ? "4 KiB" : "64 B", mb, mp, mb > 0 ? mp / mb : 0, per);
		if (!opt.compare)
			continue;
		for (int r = 0; r < reps; r++) {
			pi[r] = tres[z][R_COMPARE][r].rate;
			ratio[r] = pi[r] / p[r];
		}
		ratios_text(ratio, reps, per, sizeof(per));
		rm = median_of(pi, reps) / median_of(p, reps);
		fmt_rate(a, sizeof(a), median_of(pi, reps));
		fmt_rate(b, sizeof(b), median_of(p, reps));
		printf("| (for information) %s: --compare against the plain peer | %s msgs/s | %s "
		       "msgs/s | %.2f | %s | >= 0.80 | %s |\n",
		       z ? "4 KiB" : "64 B", a, b, rm, per, rm >= 0.80 ? "PASS" : "MISS");
	}
	for (int z = 0; z < 2 && !opt.tput_only; z++) {
		double v[MAXREPS], p[MAXREPS], ratio[MAXREPS];
		char per[256];
		for (int r = 0; r < reps; r++) {
			v[r] = lres[z][0][r].p50_us;
			p[r] = lres[z][1][r].p50_us;
			ratio[r] = v[r] / p[r];
		}
		ratios_text(ratio, reps, per, sizeof(per));
		double rm = median_of(v, reps) / median_of(p, reps);
		printf("| added latency, %s: p50 mq_send -> mq_recv <= 2x the peer's p50 | %.0f µs "
		       "| "
		       "%.0f µs | %.2f | %s | <= 2.00 | %s |\n",
		       z ? "4 KiB" : "64 B", median_of(v, reps), median_of(p, reps), rm, per,
		       rm <= 2.0 ? "PASS" : "MISS");
	}
	printf("\nThroughput: messages / time from the start of publishing (the bridge's "
	       "\"export ...: running\" line; the peer's first js_PublishAsync) to the last "
	       "PubAck (the bridge: queue A's acked_total reached N; the peer: "
	       "js_PublishAsyncComplete returned), connection setup excluded for both. "
	       "\"Stream's own figure\": (N - 1) / (LastTime - FirstTime) of the stored "
	       "messages. CPU: user + system time over the timed part, over N: the "
	       "publisher's (mqbridge's from /proc, the peer's from getrusage) and "
	       "nats-server's (/proc; 10 ms ticks). Latency: microseconds from send to receipt, "
	       "one message at a time, "
	       "%d ms between messages, %d warm-up messages not counted.\n",
	       opt.gap_ms, WARMUP_MSGS);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqbridgebench --nats URL --bridge MQBRIDGE --q64 QUEUE --q4k QUEUE\n"
	        "                     --qa QUEUE --qb QUEUE [OPTION]...\n"
	        "mqbridge's export throughput and added latency against libnats used directly\n"
	        "(normally run by bench/bridge.sh, which starts nats-server and mqbroker).\n"
	        "  --q64 Q, --q4k Q  empty queues taking N messages of 64 B / 4 KiB (throughput)\n"
	        "  --qa Q, --qb Q    empty queues taking 4 KiB (latency: host A, host B)\n"
	        "  --reps N          repetitions (default 5, at most %d)\n"
	        "  --n64 N, --n4k N  messages per throughput run (default 200000, 50000)\n"
	        "  --lat-msgs N      timed messages per latency run (default 500)\n"
	        "  --gap-ms N        pause between latency messages (default 2)\n"
	        "  --window N        mqbridge --window and the peer's MaxPending (default 256)\n"
	        "  --nats-pid PID    nats-server's pid: report its CPU time per message\n"
	        "  --compare EXE     another mqbridge binary: one more export row, alternated\n"
	        "                    with the others (an A/B of a change to the bridge)\n"
	        "  --tput-only, --lat-only   one half of the runs\n"
	        "  --smoke           one repetition, tiny counts: correctness only\n",
	        MAXREPS);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
		if (ARG("--nats"))
			opt.nats_url = v;
		else if (ARG("--bridge"))
			opt.bridge = v;
		else if (ARG("--q64"))
			opt.q64 = v;
		else if (ARG("--q4k"))
			opt.q4k = v;
		else if (ARG("--qa"))
			opt.qa = v;
		else if (ARG("--qb"))
			opt.qb = v;
		else if (ARG("--reps"))
			opt.reps = atoi(v);
		else if (ARG("--n64"))
			opt.n64 = strtoull(v, NULL, 10);
		else if (ARG("--n4k"))
			opt.n4k = strtoull(v, NULL, 10);
		else if (ARG("--lat-msgs"))
			opt.lat_msgs = atoi(v);
		else if (ARG("--gap-ms"))
			opt.gap_ms = atoi(v);
		else if (ARG("--compare"))
			opt.compare = v;
		else if (ARG("--nats-pid"))
			opt.nats_pid = atoi(v);
		else if (ARG("--window"))
			opt.window = (unsigned)atoi(v);
		else if (!strcmp(a, "--smoke"))
			opt.smoke = 1;
		else if (!strcmp(a, "--tput-only"))
			opt.tput_only = 1;
		else if (!strcmp(a, "--lat-only"))
			opt.lat_only = 1;
		else if (!strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "mqbridgebench: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
#undef ARG
	}
	if (!opt.nats_url || !opt.bridge || !opt.q64 || !opt.q4k || !opt.qa || !opt.qb ||
	    opt.reps < 1 || opt.reps > MAXREPS || !opt.n64 || !opt.n4k || opt.lat_msgs < 1 ||
	    opt.gap_ms < 0 || opt.window < 1 || (opt.tput_only && opt.lat_only)) {
		usage(stderr);
		return 2;
	}
	if (opt.smoke) {
		opt.reps = 1;
		opt.n64 = 2000;
		opt.n4k = 500;
		opt.lat_msgs = 20;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(kill_live);
	srand((unsigned)getpid() ^ (unsigned)time(NULL));
	snprintf(stream_name, sizeof(stream_name), "MQBENCH%d", (int)getpid());
	snprintf(subject, sizeof(subject), "mqbench.%d", (int)getpid());
	if (nats_Open(-1) != NATS_OK)
		return 1;
	ctl_nc = new_connection();
	if (!ctl_nc || natsConnection_JetStream(&ctl_js, ctl_nc, NULL) != NATS_OK)
		return 1;
	int failed = 0;
	for (int r = 0; r < opt.reps && !failed; r++) {
		int rev = r % 2;
		for (int zi = 0; zi < 2 && !failed && !opt.lat_only; zi++) {
			int z = rev ? 1 - zi : zi;
			const char *q = z ? opt.q4k : opt.q64;
			uint64_t n = z ? opt.n4k : opt.n64;
			for (int ki = 0; ki < nkinds() && !failed; ki++) {
				int k = rev ? nkinds() - 1 - ki : ki;
				struct tput *t = &tres[z][k][r];
				if (k == R_BRIDGE || k == R_COMPARE)
					failed = tput_bridge(k == R_BRIDGE ? opt.bridge
					                                   : opt.compare,
					                     q, sizes[z], n, t);
				else
					failed = tput_peer(sizes[z], n, k == R_PEER_ID, t);
				progress("rep %d: export %zu B, %s: %.0f msgs/s (stream %.0f); CPU "
				         "per message: publisher %.1f us, nats-server %.1f us%s",
				         r + 1, sizes[z], tput_titles[k], t->rate, t->stream_rate,
				         t->cpu_us, t->server_us, failed ? " FAILED" : "");
			}
		}
		for (int zi = 0; zi < 2 && !failed && !opt.tput_only; zi++) {
			int z = rev ? 1 - zi : zi;
			for (int ki = 0; ki < 2 && !failed; ki++) {
				int k = rev ? 1 - ki : ki;
				struct lat *l = &lres[z][k][r];
				failed = k == 0 ? lat_bridge(sizes[z], opt.lat_msgs, l)
				                : lat_peer(sizes[z], opt.lat_msgs, l);
				progress("rep %d: latency %zu B, %s: p50 %.0f us, p99 %.0f us%s",
				         r + 1, sizes[z], lat_titles[k], l->p50_us, l->p99_us,
				         failed ? " FAILED" : "");
			}
		}
	}
	jsCtx_Destroy(ctl_js);
	natsConnection_Destroy(ctl_nc);
	nats_CloseAndWait(2000);
	if (failed) {
		progress("a run failed: no report");
		return 1;
	}
	report(opt.reps);
	return 0;
}
