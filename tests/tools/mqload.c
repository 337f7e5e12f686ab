/* mqload.c - load and fault tool for the broker integration tests in tests/broker. */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "handle.h"
#include "libmq.h"

/*
 * Every message mqload sends carries a 24-byte header and a payload pattern
 * derived from it, so any receiver can check it is whole and unaltered:
 *
 *   u32 magic 'MQLD' | u32 producer id | u64 sequence | u32 length | u32 checksum
 *
 * length is the whole message's; checksum is FNV-1a over the header (without
 * the checksum) and the payload; payload byte i is (id * 31 + seq * 7 + i).
 */
#define MSG_MAGIC      0x444c514du /* "MQLD" */
#define HDR_SIZE       24
#define MAX_IDS        1024 /* producer ids 0..MAX_IDS-1 */
#define FLUSH_MS       100  /* how often produce/consume publish their counts */
#define DEFAULT_TMO_MS 5000
#define DEFAULT_SECS   60 /* produce, consume and hold never outlive this */

enum exit_code {
	EXIT_OK = 0,
	EXIT_ERROR = 1,   /* libmq or system error (attach failed, ...) */
	EXIT_USAGE = 2,   /* bad command line */
	EXIT_TIMEOUT = 3, /* send/recv timed out (or EAGAIN) before COUNT messages */
	EXIT_DATA = 4     /* a corrupt, foreign, duplicated or out-of-order message */
};

static const char usage_text[] =
        "Usage: mqload COMMAND NAME [ARGS] [OPTIONS]\n"
        "Load and fault tool for the mqbroker integration tests. Every message carries\n"
        "a producer id, a sequence number and a checksum; receivers verify them.\n"
        "\n"
        "  send NAME COUNT [--size N] [--id P] [--start S] [--timeout MS]\n"
        "        send COUNT messages of N bytes (default 64, at least 24), sequence\n"
        "        numbers S.. (default 0), each waiting at most MS (default 5000) for space\n"
        "  recv NAME COUNT [--timeout MS] [--log FILE]\n"
        "        receive and verify COUNT messages, each waiting at most MS; append\n"
        "        \"ID SEQ\" per message to FILE\n"
        "  produce NAME --id P --confirm FILE [--seconds S] [--size N] [--rate R]\n"
        "        send sequence numbers 0, 1, 2... until S seconds pass (default 60) or\n"
        "        SIGTERM/SIGINT, at most R messages a second (default: unlimited); FILE\n"
        "        always holds (replaced atomically every 100 ms and at exit) the number\n"
        "        of messages whose mq_send returned 0: exactly sequences 0..N-1 were sent\n"
        "  consume NAME --log FILE [--count FILE] [--seconds S] [--idle-exit MS]\n"
        "        receive and verify until S seconds pass (default 60), SIGTERM/SIGINT,\n"
        "        or, with --idle-exit, the queue stayed empty MS; append \"ID SEQ\" per\n"
        "        message to the log (flushed every 100 ms and at exit); --count FILE\n"
        "        holds the number received, replaced like produce's --confirm\n"
        "  hold NAME [--send N] [--recv N] [--size N] [--id P] [--lock send|recv]\n"
        "            [--ready FILE] [--seconds S]\n"
        "        attach, send then receive N messages (each waiting at most --timeout),\n"
        "        optionally take the queue's send or receive lock and keep it, print\n"
        "        \"holding NAME pid PID\" (and write PID to FILE), then sleep until S\n"
        "        seconds pass (default 60) or SIGTERM/SIGINT: SIGKILL it to get a client\n"
        "        that died attached (with --lock: one killed in mid-operation)\n"
        "  info\n"
        "        print facts about this build: \"lock_deadlines yes\" (or no: under\n"
        "        ThreadSanitizer, waits for a queue's lock ignore the timeout)\n"
        "\n"
        "Receivers check each message's header, checksum and payload, and that each\n"
        "producer's sequence numbers rise (a queue is FIFO: one consumer never sees a\n"
        "producer's messages out of order or twice). mqload dies with its parent\n"
        "(PR_SET_PDEATHSIG), so a killed test leaves no strays.\n"
        "\n"
        "Exit status: 0 success; 1 libmq or system error; 2 usage; 3 timed out (or the\n"
        "queue was full/empty with --timeout 0) before COUNT messages; 4 a corrupt,\n"
        "foreign, duplicated or out-of-order message was received.\n";

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "mqload: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 16777619u;
	return h;
}

static void put32(unsigned char *p, uint32_t v)
{
	memcpy(p, &v, 4);
}

static uint32_t get32(const unsigned char *p)
{
	uint32_t v;
	memcpy(&v, p, 4);
	return v;
}

static uint32_t checksum(const unsigned char *m, size_t len)
{
	return fnv1a(fnv1a(2166136261u, m, 20), m + HDR_SIZE, len - HDR_SIZE);
}

/* build: message (ID, SEQ) of LEN bytes into M. */
static void build(unsigned char *m, size_t len, uint32_t id, uint64_t seq)
{
	put32(m, MSG_MAGIC);
	put32(m + 4, id);
	memcpy(m + 8, &seq, 8);
	put32(m + 16, (uint32_t)len);
	for (size_t i = HDR_SIZE; i < len; i++)
		m[i] = (unsigned char)(id * 31u + seq * 7u + i);
	put32(m + 20, checksum(m, len));
}

/* struct verifier: what one receiving process has seen, per producer. */
struct verifier {
	int64_t last[MAX_IDS]; /* last sequence seen, -1 if none */
	uint64_t count;
};

static void verifier_init(struct verifier *v)
{
	for (int i = 0; i < MAX_IDS; i++)
		v->last[i] = -1;
	v->count = 0;
}

/* verify: check the LEN-byte message M; on success set *ID and *SEQ. Returns 0,
 * or -1 after saying what is wrong. */
static int verify(struct verifier *v, const unsigned char *m, ssize_t len, uint32_t *id,
                  uint64_t *seq)
{
	uint64_t n = v->count + 1;
	if (len < HDR_SIZE) {
		say("message %" PRIu64 ": %zd bytes, shorter than the %d-byte header", n, len,
		    HDR_SIZE);
		return -1;
	}
	if (get32(m) != MSG_MAGIC) {
		say("message %" PRIu64 ": not an mqload message (magic 0x%08x)", n, get32(m));
		return -1;
	}
	*id = get32(m + 4);
	memcpy(seq, m + 8, 8);
	if (get32(m + 16) != (uint32_t)len) {
		say("message %" PRIu64 " (producer %u seq %" PRIu64
		    "): %zd bytes received, %u sent (torn or truncated)",
		    n, *id, *seq, len, get32(m + 16));
		return -1;
	}
	if (get32(m + 20) != checksum(m, (size_t)len)) {
		say("message %" PRIu64 " (producer %u seq %" PRIu64 "): bad checksum", n, *id,
		    *seq);
		return -1;
	}
	for (ssize_t i = HDR_SIZE; i < len; i++) {
		if (m[i] != (unsigned char)(*id * 31u + *seq * 7u + (size_t)i)) {
			say("message %" PRIu64 " (producer %u seq %" PRIu64
			    "): payload byte %zd is wrong",
			    n, *id, *seq, i);
			return -1;
		}
	}
	if (*id >= MAX_IDS) {
		say("message %" PRIu64 ": producer id %u out of range (0..%d)", n, *id,
		    MAX_IDS - 1);
		return -1;
	}
	if (*seq > (uint64_t)INT64_MAX || (int64_t)*seq <= v->last[*id]) {
		say("message %" PRIu64 ": producer %u seq %" PRIu64 " after seq %" PRId64
		    " (duplicated or out of order)",
		    n, *id, *seq, v->last[*id]);
		return -1;
	}
	v->last[*id] = (int64_t)*seq;
	v->count++;
	return 0;
}

/* write_count: replace FILE with "N\n" atomically (write a temporary, rename). */
static int write_count(const char *file, uint64_t n)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp%d", file, (int)getpid()) >= (int)sizeof(tmp))
		return -1;
	FILE *f = fopen(tmp, "w");
	if (!f) {
		say("cannot write %s: %s", tmp, strerror(errno));
		return -1;
	}
	fprintf(f, "%" PRIu64 "\n", n);
	if (fclose(f) != 0 || rename(tmp, file) != 0) {
		say("cannot write %s: %s", file, strerror(errno));
		unlink(tmp);
		return -1;
	}
	return 0;
}

/* Options shared by the commands; each uses the ones its usage lists. */
struct opts {
	const char *cmd, *name;
	uint64_t count;
	int have_count;
	size_t size;
	uint32_t id;
	int have_id;
	uint64_t start;
	int timeout_ms;
	const char *log, *confirm, *count_file, *ready;
	double seconds;
	double rate;
	int idle_exit_ms;
	uint64_t send_n, recv_n;
	const char *lock; /* "send", "recv" or NULL */
};

static int parse_u64(const char *s, uint64_t max, uint64_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || *end || v > max)
		return -1;
	*out = v;
	return 0;
}

static int parse_pos_double(const char *s, double *out)
{
	if (!s || !*s)
		return -1;
	char *end;
	errno = 0;
	double v = strtod(s, &end);
	if (errno || *end || !(v > 0) || v > 1e9)
		return -1;
	*out = v;
	return 0;
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "mqload: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'mqload --help'.\n");
	return EXIT_USAGE;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	memset(o, 0, sizeof(*o));
	o->size = 64;
	o->timeout_ms = DEFAULT_TMO_MS;
	o->seconds = DEFAULT_SECS;
	if (argc < 3)
		return usage_error("%s", argc < 2 ? "missing COMMAND" : "missing queue NAME");
	o->cmd = argv[1];
	o->name = argv[2];
	int i = 3;
	bool counted = !strcmp(o->cmd, "send") || !strcmp(o->cmd, "recv");
	if (counted) {
		if (i >= argc || parse_u64(argv[i], UINT32_MAX, &o->count))
			return usage_error("%s: want a message COUNT after NAME", o->cmd);
		o->have_count = 1;
		i++;
	}
	for (; i < argc; i += 2) { /* every option takes a value */
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		uint64_t n;
		if (!strncmp(a, "--", 2) && !v)
			return usage_error("option %s needs a value", a);
		if (!strcmp(a, "--size")) {
			if (parse_u64(v, MQ_MAX_MSG_LIMIT, &n) || n < HDR_SIZE)
				return usage_error("bad --size '%s' (want 24..1073741824)", v);
			o->size = (size_t)n;
		} else if (!strcmp(a, "--id")) {
			if (parse_u64(v, MAX_IDS - 1, &n))
				return usage_error("bad --id '%s' (want 0..1023)", v);
			o->id = (uint32_t)n;
			o->have_id = 1;
		} else if (!strcmp(a, "--start")) {
			if (parse_u64(v, INT64_MAX / 2, &o->start))
				return usage_error("bad --start '%s'", v);
		} else if (!strcmp(a, "--timeout")) {
			if (parse_u64(v, INT_MAX, &n))
				return usage_error("bad --timeout '%s' (want milliseconds, 0..)",
				                   v);
			o->timeout_ms = (int)n;
		} else if (!strcmp(a, "--log")) {
			o->log = v;
		} else if (!strcmp(a, "--confirm")) {
			o->confirm = v;
		} else if (!strcmp(a, "--count")) {
			o->count_file = v;
		} else if (!strcmp(a, "--ready")) {
			o->ready = v;
		} else if (!strcmp(a, "--seconds")) {
			if (parse_pos_double(v, &o->seconds))
				return usage_error("bad --seconds '%s'", v);
		} else if (!strcmp(a, "--rate")) {
			if (parse_pos_double(v, &o->rate))
				return usage_error("bad --rate '%s'", v);
		} else if (!strcmp(a, "--idle-exit")) {
			if (parse_u64(v, INT_MAX, &n) || n == 0)
				return usage_error("bad --idle-exit '%s' (want milliseconds, 1..)",
				                   v);
			o->idle_exit_ms = (int)n;
		} else if (!strcmp(a, "--send")) {
			if (parse_u64(v, UINT32_MAX, &o->send_n))
				return usage_error("bad --send '%s'", v);
		} else if (!strcmp(a, "--recv")) {
			if (parse_u64(v, UINT32_MAX, &o->recv_n))
				return usage_error("bad --recv '%s'", v);
		} else if (!strcmp(a, "--lock")) {
			if (strcmp(v, "send") && strcmp(v, "recv"))
				return usage_error("bad --lock '%s' (want send or recv)", v);
			o->lock = v;
		} else {
			return usage_error("unknown argument '%s'", a);
		}
	}
	if (!strcmp(o->cmd, "produce") && (!o->have_id || !o->confirm))
		return usage_error("%s: needs --id and --confirm", o->cmd);
	if (!strcmp(o->cmd, "consume") && !o->log)
		return usage_error("%s: needs --log", o->cmd);
	return EXIT_OK;
}

static void on_signals(void)
{
	/* No SA_RESTART: a signal must cut a wait short (mq_send/mq_recv give
	 * EINTR, nanosleep returns), so the loops see the stop flag. */
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
}

static mq_t *attach(const char *name)
{
	mq_t *q = mq_attach(name);
	if (!q)
		say("cannot attach: %s (errno %s)", mq_errdetail(), strerrorname_np(errno));
	return q;
}

/* log_open: FILE for appending "ID SEQ" lines, or NULL for no log (FILE NULL). */
static int log_open(const char *file, FILE **out)
{
	*out = NULL;
	if (!file)
		return 0;
	*out = fopen(file, "a");
	if (!*out) {
		say("cannot open log %s: %s", file, strerror(errno));
		return -1;
	}
	return 0;
}

static int log_close(FILE *f, const char *file)
{
	if (f && fclose(f) != 0) {
		say("cannot write log %s: %s", file, strerror(errno));
		return -1;
	}
	return 0;
}

static int cmd_send(const struct opts *o)
{
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	unsigned char *m = malloc(o->size);
	int rc = m ? EXIT_OK : EXIT_ERROR;
	uint64_t sent = 0;
	for (; rc == EXIT_OK && sent < o->count; sent++) {
		build(m, o->size, o->id, o->start + sent);
		if (mq_send(q, m, o->size, o->timeout_ms) == 0)
			continue;
		int e = errno;
		say("send %" PRIu64 " of %" PRIu64 ": %s (errno %s)", sent + 1, o->count,
		    mq_errdetail(), strerrorname_np(e));
		rc = e == ETIMEDOUT || e == EAGAIN ? EXIT_TIMEOUT : EXIT_ERROR;
		break;
	}
	free(m);
	mq_detach(q);
	return rc;
}

/* recv_one: receive one message within TIMEOUT_MS into BUF (CAP bytes), verify it
 * and log it. Returns EXIT_OK, EXIT_TIMEOUT (errno ETIMEDOUT/EAGAIN/EINTR kept),
 * EXIT_DATA or EXIT_ERROR. */
static int recv_one(mq_t *q, unsigned char *buf, size_t cap, int timeout_ms, struct verifier *v,
                    FILE *log)
{
	ssize_t n = mq_recv(q, buf, cap, timeout_ms);
	if (n < 0) {
		int e = errno;
		if (e == ETIMEDOUT || e == EAGAIN || e == EINTR)
			return EXIT_TIMEOUT;
		say("recv: %s (errno %s)", mq_errdetail(), strerrorname_np(e));
		return EXIT_ERROR;
	}
	uint32_t id;
	uint64_t seq;
	if (verify(v, buf, n, &id, &seq))
		return EXIT_DATA;
	if (log)
		fprintf(log, "%u %" PRIu64 "\n", id, seq);
	return EXIT_OK;
}

static unsigned char *recv_buffer(mq_t *q, size_t *cap)
{
	struct mq_stats st;
	mq_stats(q, &st);
	*cap = (size_t)st.max_msg_size;
	unsigned char *b = malloc(*cap ? *cap : 1);
	if (!b)
		say("out of memory for a %zu-byte buffer", *cap);
	return b;
}

static int cmd_recv(const struct opts *o)
{
	static struct verifier v;
	verifier_init(&v);
	FILE *log;
	if (log_open(o->log, &log))
		return EXIT_ERROR;
	mq_t *q = attach(o->name);
	if (!q) {
		log_close(log, o->log);
		return EXIT_ERROR;
	}
	size_t cap;
	unsigned char *buf = recv_buffer(q, &cap);
	int rc = buf ? EXIT_OK : EXIT_ERROR;
	while (rc == EXIT_OK && v.count < o->count) {
		rc = recv_one(q, buf, cap, o->timeout_ms, &v, log);
		if (rc == EXIT_TIMEOUT) {
			int e = errno;
			say("recv %" PRIu64 " of %" PRIu64 ": %s (errno %s)", v.count + 1, o->count,
			    mq_errdetail(), strerrorname_np(e));
		}
	}
	free(buf);
	mq_detach(q);
	if (log_close(log, o->log) && rc == EXIT_OK)
		rc = EXIT_ERROR;
	return rc;
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL); /* a signal cuts it short: the caller looks at stop */
}

static int cmd_produce(const struct opts *o)
{
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	unsigned char *m = malloc(o->size);
	if (!m) {
		mq_detach(q);
		return EXIT_ERROR;
	}
	uint64_t confirmed = 0;
	int rc = write_count(o->confirm, 0) ? EXIT_ERROR : EXIT_OK;
	double start = now_s(), end = start + o->seconds, next_flush = start + FLUSH_MS / 1e3;
	while (rc == EXIT_OK && !stop) {
		double t = now_s();
		if (t >= end)
			break;
		if (t >= next_flush) {
			next_flush = t + FLUSH_MS / 1e3;
			if (write_count(o->confirm, confirmed))
				rc = EXIT_ERROR;
		}
		if (o->rate > 0) {
			double due = start + (double)confirmed / o->rate;
			if (due > t) {
				sleep_s(due - t < 0.01 ? due - t : 0.01);
				continue;
			}
		}
		build(m, o->size, o->id, confirmed);
		if (mq_send(q, m, o->size, 200) == 0) {
			confirmed++; /* mq_send returned 0: the message is in */
			continue;
		}
		int e = errno;
		if (e == ETIMEDOUT || e == EINTR)
			continue; /* not sent: the same sequence number goes again */
		say("produce %u: send of seq %" PRIu64 ": %s (errno %s)", o->id, confirmed,
		    mq_errdetail(), strerrorname_np(e));
		rc = EXIT_ERROR;
	}
	if (write_count(o->confirm, confirmed))
		rc = EXIT_ERROR;
	free(m);
	mq_detach(q);
	return rc;
}

static int cmd_consume(const struct opts *o)
{
	static struct verifier v;
	verifier_init(&v);
	FILE *log;
	if (log_open(o->log, &log))
		return EXIT_ERROR;
	mq_t *q = attach(o->name);
	if (!q) {
		log_close(log, o->log);
		return EXIT_ERROR;
	}
	size_t cap;
	unsigned char *buf = recv_buffer(q, &cap);
	int rc = buf ? EXIT_OK : EXIT_ERROR;
	if (rc == EXIT_OK && o->count_file && write_count(o->count_file, 0))
		rc = EXIT_ERROR;
	double start = now_s(), end = start + o->seconds, last_msg = start;
	double next_flush = start + FLUSH_MS / 1e3;
	while (rc == EXIT_OK && !stop) {
		double t = now_s();
		if (t >= end)
			break;
		if (o->idle_exit_ms && t - last_msg >= o->idle_exit_ms / 1e3)
			break;
		if (t >= next_flush) {
			next_flush = t + FLUSH_MS / 1e3;
			if (fflush(log) != 0 ||
			    (o->count_file && write_count(o->count_file, v.count)))
				rc = EXIT_ERROR;
		}
		int r = recv_one(q, buf, cap, 50, &v, log);
		if (r == EXIT_OK)
			last_msg = now_s();
		else if (r != EXIT_TIMEOUT)
			rc = r;
	}
	if (o->count_file && write_count(o->count_file, v.count) && rc == EXIT_OK)
		rc = EXIT_ERROR;
	free(buf);
	mq_detach(q);
	if (log_close(log, o->log) && rc == EXIT_OK)
		rc = EXIT_ERROR;
	return rc;
}

static int cmd_hold(const struct opts *o)
{
	static struct verifier v;
	verifier_init(&v);
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	int rc = EXIT_OK;
	unsigned char *m = malloc(o->size);
	if (!m)
		rc = EXIT_ERROR;
	for (uint64_t i = 0; rc == EXIT_OK && i < o->send_n; i++) {
		build(m, o->size, o->id, o->start + i);
		if (mq_send(q, m, o->size, o->timeout_ms) != 0) {
			int e = errno;
			say("hold: send: %s (errno %s)", mq_errdetail(), strerrorname_np(e));
			rc = e == ETIMEDOUT || e == EAGAIN ? EXIT_TIMEOUT : EXIT_ERROR;
		}
	}
	free(m);
	size_t cap;
	unsigned char *buf = rc == EXIT_OK && o->recv_n ? recv_buffer(q, &cap) : NULL;
	if (o->recv_n && !buf)
		rc = EXIT_ERROR;
	while (rc == EXIT_OK && v.count < o->recv_n) {
		rc = recv_one(q, buf, cap, o->timeout_ms, &v, NULL);
		if (rc == EXIT_TIMEOUT) {
			int e = errno;
			say("hold: recv: %s (errno %s)", mq_errdetail(), strerrorname_np(e));
		}
	}
	free(buf);
	pthread_mutex_t *lock = NULL;
	if (rc == EXIT_OK && o->lock) {
		/* The library's own lock, taken from outside the library: this
		 * process now looks like one killed inside mq_send or mq_recv. */
		lock = !strcmp(o->lock, "send") ? &q->shm->send_lock : &q->shm->recv_lock;
		int e = pthread_mutex_lock(lock);
		if (e == EOWNERDEAD)
			e = pthread_mutex_consistent(lock);
		if (e) {
			say("hold: cannot take the %s lock: %s", o->lock, strerror(e));
			lock = NULL;
			rc = EXIT_ERROR;
		}
	}
	if (rc == EXIT_OK) {
		if (o->ready && write_count(o->ready, (uint64_t)getpid()))
			rc = EXIT_ERROR;
		printf("holding %s pid %d\n", o->name, (int)getpid());
		fflush(stdout);
	}
	double end = now_s() + o->seconds;
	while (rc == EXIT_OK && !stop && now_s() < end)
		sleep_s(0.2);
	if (lock)
		pthread_mutex_unlock(lock);
	mq_detach(q);
	return rc;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (argc == 2 && !strcmp(argv[1], "info")) {
#if defined(__SANITIZE_THREAD__)
		puts("lock_deadlines no"); /* see timed_lock in libmq/src/queue.c */
#else
		puts("lock_deadlines yes");
#endif
		return EXIT_OK;
	}
	struct opts o;
	int rc = parse_args(argc, argv, &o);
	if (rc != EXIT_OK)
		return rc;
	on_signals();
	/* Die with the test script that started us: no strays. */
	pid_t parent = getppid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		return EXIT_ERROR; /* the parent died before prctl took effect */
	if (!strcmp(o.cmd, "send"))
		return cmd_send(&o);
	if (!strcmp(o.cmd, "recv"))
		return cmd_recv(&o);
	if (!strcmp(o.cmd, "produce"))
		return cmd_produce(&o);
	if (!strcmp(o.cmd, "consume"))
		return cmd_consume(&o);
	if (!strcmp(o.cmd, "hold"))
		return cmd_hold(&o);
	return usage_error("unknown command '%s'", o.cmd);
}
