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
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* The public headers only: mqload is a client like any other. */
#include "libmq.h"
#include "libmq_admin.h"

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
#define MAX_BATCH      64   /* --batch N: at most this many messages a call */
#define FLUSH_MS       100  /* how often produce/consume publish their counts */
#define DEFAULT_TMO_MS 5000
#define DEFAULT_SECS   60 /* produce, consume, churn and hold never outlive this */

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
        "  send NAME COUNT [--size N] [--max-size M] [--id P] [--start S] [--timeout MS]\n"
        "       [--rate R] [SENDMODE]\n"
        "        send COUNT messages of N bytes (default 64, at least 24), sequence\n"
        "        numbers S.. (default 0), each waiting at most MS (default 5000) for space,\n"
        "        at most R messages a second (default: unlimited)\n"
        "  recv NAME COUNT [--timeout MS] [--log FILE] [RECVMODE]\n"
        "        receive and verify COUNT messages, each waiting at most MS; append\n"
        "        \"ID SEQ\" per message to FILE (\"ID SEQ DELIVERIES\" with --lease/--peek)\n"
        "  produce NAME --id P --confirm FILE [--seconds S] [--size N] [--max-size M]\n"
        "          [--rate R] [SENDMODE]\n"
        "        send sequence numbers 0, 1, 2... until S seconds pass (default 60) or\n"
        "        SIGTERM/SIGINT, at most R messages a second (default: unlimited); FILE\n"
        "        always holds (replaced atomically every 100 ms and at exit) the number\n"
        "        of messages whose send returned success: exactly sequences 0..N-1 were sent\n"
        "  consume NAME --log FILE [--count FILE] [--seconds S] [--idle-exit MS]\n"
        "          [--delay-ms D] [RECVMODE]\n"
        "        receive and verify until S seconds pass (default 60), SIGTERM/SIGINT,\n"
        "        or, with --idle-exit, the queue stayed empty MS; append a line per\n"
        "        message to the log as recv does (flushed every 100 ms and at exit);\n"
        "        --count FILE holds the number received, replaced like produce's --confirm;\n"
        "        --delay-ms: one message at a time, sleeping D ms after each (a slow consumer)\n"
        "  hold NAME [--send N] [--recv N] [--reserved N] [--size N] [--id P] [--start S]\n"
        "            [--ready FILE] [--seconds S] [SENDMODE] [RECVMODE]\n"
        "        attach, send N messages, receive N messages (with --lease or --peek:\n"
        "        lease them and keep the leases, never acking), reserve room for N more\n"
        "        with mq_reserve and write a whole message (sequence numbers after the\n"
        "        sent ones) into each, never committing; print \"holding NAME pid PID\"\n"
        "        (and write PID to FILE), then sleep until S seconds pass (default 60) or\n"
        "        SIGTERM/SIGINT (then detach, which gives leases and reservations back):\n"
        "        SIGKILL it to get a client that died attached, holding what it took\n"
        "  churn NAME --id P [--size N] [--ready FILE] [--seconds S] [SENDMODE] [RECVMODE]\n"
        "        send and receive in a tight loop (one message, or a batch, each way) until\n"
        "        S seconds pass or SIGTERM/SIGINT, verifying what it receives; FILE gets\n"
        "        the pid once the loop runs: SIGKILL it at a random moment to kill a\n"
        "        client inside mq_send, mq_recv, mq_ack, mq_commit... holding a queue lock\n"
        "  stats NAME\n"
        "        print the queue's mq_stats as \"KEY VALUE\" lines (observing: does not\n"
        "        attach as a client)\n"
        "  inspect NAME\n"
        "        print mq_inspect's view as \"KEY VALUE\" lines (sound, problem, the chunk\n"
        "        census, the lock holders); exit 0 only if the segment is sound\n"
        "\n"
        "  --max-size M (commands that send): random sizes, N..M bytes, each drawn from\n"
        "            the producer id and sequence number (the same on every run)\n"
        "  SENDMODE: --reserve (zero-copy: mq_reserve, write in place, mq_commit) or\n"
        "            --batch N (mq_send_batch of up to N messages a call); default mq_send\n"
        "  RECVMODE: --lease (mq_recv_lease, then mq_ack), --peek (mq_peek: verified in\n"
        "            the queue's memory, then mq_ack) or --batch N (mq_recv_batch of up to\n"
        "            N a call); default mq_recv\n"
        "  --any-order (recv, consume): do not check the order of plain receives (messages\n"
        "            that crossed mqbridge, whose export may reorder around a restart);\n"
        "            every message is still verified, and --log shows any duplicate\n"
        "\n"
        "Receivers check each message's header, checksum and payload, and that each\n"
        "producer's sequence numbers rise (a queue is FIFO: one consumer never sees a\n"
        "producer's messages out of order or twice). A leased message delivered again\n"
        "(DELIVERIES > 1: its holder died or detached) is exempt from the order check.\n"
        "mqload dies with its parent (PR_SET_PDEATHSIG), so a killed test leaves no strays.\n"
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

/* errname: "EAGAIN" for errno E; errnos without a name (0 included) as a number. */
static const char *errname(int e)
{
	static char buf[32];
	const char *n = strerrorname_np(e);
	if (n)
		return n;
	snprintf(buf, sizeof(buf), "%d (not an errno)", e);
	return buf;
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
	/* Plain receives (mq_recv, batches) cannot tell a redelivered message
	 * from a first delivery: among lease holders that die (churn), their
	 * order is not checked. */
	bool plain_any_order;
};

static void verifier_init(struct verifier *v)
{
	for (int i = 0; i < MAX_IDS; i++)
		v->last[i] = -1;
	v->count = 0;
}

/* verify: check the LEN-byte message M, delivered for the DELIVERIES-th time
 * (1 for a message not taken with a lease); on success set *ID and *SEQ.
 * Returns 0, or -1 after saying what is wrong. */
static int verify(struct verifier *v, const unsigned char *m, size_t len, uint32_t deliveries,
                  bool leased, uint32_t *id, uint64_t *seq)
{
	uint64_t n = v->count + 1;
	if (len < HDR_SIZE) {
		say("message %" PRIu64 ": %zu bytes, shorter than the %d-byte header", n, len,
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
		    "): %zu bytes received, %u sent (torn or truncated)",
		    n, *id, *seq, len, get32(m + 16));
		return -1;
	}
	if (get32(m + 20) != checksum(m, len)) {
		say("message %" PRIu64 " (producer %u seq %" PRIu64 "): bad checksum", n, *id,
		    *seq);
		return -1;
	}
	for (size_t i = HDR_SIZE; i < len; i++) {
		if (m[i] != (unsigned char)(*id * 31u + *seq * 7u + i)) {
			say("message %" PRIu64 " (producer %u seq %" PRIu64
			    "): payload byte %zu is wrong",
			    n, *id, *seq, i);
			return -1;
		}
	}
	if (*id >= MAX_IDS) {
		say("message %" PRIu64 ": producer id %u out of range (0..%d)", n, *id,
		    MAX_IDS - 1);
		return -1;
	}
	if (deliveries == 0) {
		say("message %" PRIu64 " (producer %u seq %" PRIu64 "): leased with deliveries 0",
		    n, *id, *seq);
		return -1;
	}
	/* A message delivered again (its holder died or detached) comes back
	 * ahead of newer ones: only first deliveries must be in order. */
	if (deliveries == 1 && !(v->plain_any_order && !leased) &&
	    (*seq > (uint64_t)INT64_MAX || (int64_t)*seq <= v->last[*id])) {
		say("message %" PRIu64 ": producer %u seq %" PRIu64 " after seq %" PRId64
		    " (duplicated or out of order)",
		    n, *id, *seq, v->last[*id]);
		return -1;
	}
	if ((int64_t)*seq > v->last[*id])
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

/* How messages move: the send and receive calls a command uses. */
enum recv_mode { RECV_COPY, RECV_LEASE, RECV_PEEK };

/* Options shared by the commands; each uses the ones its usage lists. */
struct opts {
	const char *cmd, *name;
	uint64_t count;
	int have_count;
	size_t size;
	size_t max_size; /* --max-size: sizes size..max_size (0: all are size) */
	uint32_t id;
	int have_id;
	uint64_t start;
	int timeout_ms;
	const char *log, *confirm, *count_file, *ready;
	double seconds;
	double rate;
	int idle_exit_ms;
	int delay_ms; /* consume: sleep this long after each message */
	uint64_t send_n, recv_n, reserved_n;
	int reserve;         /* SENDMODE --reserve */
	enum recv_mode recv; /* RECVMODE --lease, --peek */
	unsigned batch;      /* --batch N (0: one message a call) */
	bool any_order;      /* --any-order: plain receives in any order */
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

/* check_modes: the SENDMODE and RECVMODE options fit command O->cmd. */
static int check_modes(const struct opts *o)
{
	const char *c = o->cmd;
	bool sends = !strcmp(c, "send") || !strcmp(c, "produce") || !strcmp(c, "hold") ||
	             !strcmp(c, "churn");
	bool recvs = !strcmp(c, "recv") || !strcmp(c, "consume") || !strcmp(c, "hold") ||
	             !strcmp(c, "churn");
	if (o->reserve && !sends)
		return usage_error("%s: --reserve is for commands that send", c);
	if (o->recv != RECV_COPY && !recvs)
		return usage_error("%s: --lease and --peek are for commands that receive", c);
	if (o->batch && !sends && !recvs)
		return usage_error("%s: --batch is for commands that send or receive", c);
	if (o->batch && (o->reserve || o->recv != RECV_COPY))
		return usage_error("%s: --batch goes with neither --reserve, --lease nor --peek",
		                   c);
	return EXIT_OK;
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
	while (i < argc) {
		const char *a = argv[i];
		/* The mode flags take no value; every other option takes one. */
		if (!strcmp(a, "--any-order")) {
			o->any_order = true;
			i++;
			continue;
		}
		if (!strcmp(a, "--reserve") || !strcmp(a, "--lease") || !strcmp(a, "--peek")) {
			if (a[2] == 'r')
				o->reserve = 1;
			else if (o->recv != RECV_COPY)
				return usage_error("%s: give one of --lease and --peek", o->cmd);
			else
				o->recv = a[2] == 'l' ? RECV_LEASE : RECV_PEEK;
			i++;
			continue;
		}
		const char *v = i + 1 < argc ? argv[i + 1] : NULL;
		i += 2;
		uint64_t n;
		if (!strncmp(a, "--", 2) && !v)
			return usage_error("option %s needs a value", a);
		if (!strcmp(a, "--size")) {
			if (parse_u64(v, MQ_MAX_MSG_LIMIT, &n) || n < HDR_SIZE)
				return usage_error("bad --size '%s' (want 24..1073741824)", v);
			o->size = (size_t)n;
		} else if (!strcmp(a, "--max-size")) {
			if (parse_u64(v, MQ_MAX_MSG_LIMIT, &n) || n < HDR_SIZE)
				return usage_error("bad --max-size '%s' (want 24..1073741824)", v);
			o->max_size = (size_t)n;
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
		} else if (!strcmp(a, "--delay-ms")) {
			if (parse_u64(v, 60000, &n) || n == 0)
				return usage_error(
				        "bad --delay-ms '%s' (want milliseconds, 1..60000)", v);
			o->delay_ms = (int)n;
		} else if (!strcmp(a, "--send")) {
			if (parse_u64(v, UINT32_MAX, &o->send_n))
				return usage_error("bad --send '%s'", v);
		} else if (!strcmp(a, "--recv")) {
			if (parse_u64(v, UINT32_MAX, &o->recv_n))
				return usage_error("bad --recv '%s'", v);
		} else if (!strcmp(a, "--reserved")) {
			if (parse_u64(v, MQ_CAPACITY_LIMIT, &o->reserved_n))
				return usage_error("bad --reserved '%s'", v);
		} else if (!strcmp(a, "--batch")) {
			if (parse_u64(v, MAX_BATCH, &n) || n == 0)
				return usage_error("bad --batch '%s' (want 1..64)", v);
			o->batch = (unsigned)n;
		} else {
			return usage_error("unknown argument '%s'", a);
		}
	}
	if (o->max_size && o->max_size < o->size)
		return usage_error("%s: --max-size is below --size", o->cmd);
	if (!strcmp(o->cmd, "produce") && (!o->have_id || !o->confirm))
		return usage_error("%s: needs --id and --confirm", o->cmd);
	if (!strcmp(o->cmd, "churn") && !o->have_id)
		return usage_error("%s: needs --id", o->cmd);
	if (!strcmp(o->cmd, "consume") && !o->log)
		return usage_error("%s: needs --log", o->cmd);
	return check_modes(o);
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
		say("cannot attach: %s (errno %s)", mq_errdetail(), errname(errno));
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

/* struct sender: a producer's buffers: room for a batch of messages. */
struct sender {
	unsigned char *buf; /* max(batch, 1) messages of size bytes */
	struct iovec iov[MAX_BATCH];
};

/* msg_size: the size of message (ID, SEQ): O->size, or with --max-size one
 * drawn from ID and SEQ (splitmix64), so a rerun sends the same sizes. */
static size_t msg_size(const struct opts *o, uint32_t id, uint64_t seq)
{
	if (o->max_size <= o->size)
		return o->size;
	uint64_t z = seq * 0x9e3779b97f4a7c15ull + ((uint64_t)id << 40) + 0x632be59bd9b4e019ull;
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	z ^= z >> 31;
	return o->size + (size_t)(z % (o->max_size - o->size + 1));
}

/* buf_size: the largest message O sends. */
static size_t buf_size(const struct opts *o)
{
	return o->max_size > o->size ? o->max_size : o->size;
}

static int sender_init(struct sender *s, const struct opts *o)
{
	unsigned n = o->batch ? o->batch : 1;
	s->buf = malloc(buf_size(o) * n);
	if (!s->buf) {
		say("out of memory for %u messages of %zu bytes", n, buf_size(o));
		return -1;
	}
	return 0;
}

/* send_some: send up to WANT (>= 1) messages of producer O->id, sequence
 * numbers SEQ.., the way O says, each call waiting at most TIMEOUT_MS. Returns
 * how many were sent (>= 1), or -1 with errno (nothing sent). */
static int send_some(mq_t *q, const struct opts *o, struct sender *s, uint64_t seq, uint64_t want,
                     int timeout_ms)
{
	if (o->reserve) {
		size_t len = msg_size(o, o->id, seq);
		unsigned char *m = mq_reserve(q, len, timeout_ms);
		if (!m)
			return -1;
		build(m, len, o->id, seq);
		/* EINTR leaves the reservation standing: commit it all the same. */
		int rc;
		while ((rc = mq_commit(q, m, len)) != 0 && errno == EINTR) {
		}
		if (rc != 0) {
			int e = errno;
			mq_cancel(q, m);
			errno = e;
			return -1;
		}
		return 1;
	}
	if (o->batch) {
		unsigned n = want < o->batch ? (unsigned)want : o->batch;
		for (unsigned i = 0; i < n; i++) {
			size_t len = msg_size(o, o->id, seq + i);
			build(s->buf + i * buf_size(o), len, o->id, seq + i);
			s->iov[i].iov_base = s->buf + i * buf_size(o);
			s->iov[i].iov_len = len;
		}
		return mq_send_batch(q, s->iov, n, timeout_ms);
	}
	size_t len = msg_size(o, o->id, seq);
	build(s->buf, len, o->id, seq);
	return mq_send(q, s->buf, len, timeout_ms) == 0 ? 1 : -1;
}

/* send_fail: what a failed send says and the exit code it means. */
static int send_fail(const char *what, int e)
{
	say("%s: %s (errno %s)", what, mq_errdetail(), errname(e));
	return e == ETIMEDOUT || e == EAGAIN ? EXIT_TIMEOUT : EXIT_ERROR;
}

/* struct receiver: a consumer's buffers, its verifier and log, and the
 * leases it keeps when it holds them (hold). */
struct receiver {
	unsigned char *buf; /* max(batch, 1) buffers of cap bytes (none for --peek) */
	size_t cap;
	struct iovec iov[MAX_BATCH];
	struct verifier v;
	FILE *log;
	mq_lease_t *kept; /* NULL: ack each lease; else room for the leases kept */
	size_t nkept;
};

static int receiver_init(struct receiver *r, mq_t *q, const struct opts *o)
{
	struct mq_stats st;
	memset(r, 0, sizeof(*r));
	verifier_init(&r->v);
	r->v.plain_any_order = o->any_order;
	if (mq_stats(q, &st) != 0) {
		say("mq_stats: %s", mq_errdetail());
		return -1;
	}
	r->cap = (size_t)st.max_msg_size;
	if (o->recv == RECV_PEEK)
		return 0;
	unsigned n = o->batch ? o->batch : 1;
	r->buf = malloc((r->cap ? r->cap : 1) * n);
	if (!r->buf) {
		say("out of memory for %u buffers of %zu bytes", n, r->cap);
		return -1;
	}
	return 0;
}

/* settle: ack lease L (or keep it, when the receiver keeps them). */
static int settle(mq_t *q, struct receiver *r, const mq_lease_t *l)
{
	if (r->kept) {
		r->kept[r->nkept++] = *l;
		return EXIT_OK;
	}
	int rc;
	while ((rc = mq_ack(q, l)) != 0 && errno == EINTR) {
	}
	if (rc != 0) {
		say("ack of message %" PRIu64 ": %s (errno %s)", l->id, mq_errdetail(),
		    errname(errno));
		return EXIT_ERROR;
	}
	return EXIT_OK;
}

/* take: verify and log one received message M of LEN bytes. */
static int take(struct receiver *r, const unsigned char *m, size_t len, uint32_t deliveries,
                bool leased)
{
	uint32_t id;
	uint64_t seq;
	if (verify(&r->v, m, len, deliveries, leased, &id, &seq))
		return EXIT_DATA;
	if (r->log && leased)
		fprintf(r->log, "%u %" PRIu64 " %u\n", id, seq, deliveries);
	else if (r->log)
		fprintf(r->log, "%u %" PRIu64 "\n", id, seq);
	return EXIT_OK;
}

/* recv_some: receive up to WANT (>= 1) messages the way O says within
 * TIMEOUT_MS, verify and log them (and ack or keep the leases). *GOT counts
 * those taken. Returns EXIT_OK, EXIT_TIMEOUT (errno ETIMEDOUT/EAGAIN/EINTR
 * kept), EXIT_DATA or EXIT_ERROR. */
static int recv_some(mq_t *q, const struct opts *o, struct receiver *r, uint64_t want,
                     int timeout_ms, uint64_t *got)
{
	int rc = EXIT_OK, e;
	*got = 0;
	if (o->recv == RECV_PEEK) {
		mq_lease_t l;
		size_t len;
		const unsigned char *m = mq_peek(q, &len, timeout_ms, &l);
		if (!m)
			goto failed;
		rc = take(r, m, len, l.deliveries, true);
		if (rc == EXIT_OK)
			rc = settle(q, r, &l);
		*got = rc == EXIT_OK;
		return rc;
	}
	if (o->recv == RECV_LEASE) {
		mq_lease_t l;
		ssize_t n = mq_recv_lease(q, r->buf, r->cap, timeout_ms, &l);
		if (n < 0)
			goto failed;
		rc = take(r, r->buf, (size_t)n, l.deliveries, true);
		if (rc == EXIT_OK)
			rc = settle(q, r, &l);
		*got = rc == EXIT_OK;
		return rc;
	}
	if (o->batch) {
		unsigned n = want < o->batch ? (unsigned)want : o->batch;
		for (unsigned i = 0; i < n; i++) {
			r->iov[i].iov_base = r->buf + i * r->cap;
			r->iov[i].iov_len = r->cap;
		}
		int k = mq_recv_batch(q, r->iov, n, timeout_ms);
		if (k < 0)
			goto failed;
		if (k == 0 || (unsigned)k > n) {
			say("mq_recv_batch of %u returned %d", n, k);
			return EXIT_ERROR;
		}
		for (int i = 0; i < k && rc == EXIT_OK; i++) {
			rc = take(r, r->iov[i].iov_base, r->iov[i].iov_len, 1, false);
			*got += rc == EXIT_OK;
		}
		return rc;
	}
	ssize_t n = mq_recv(q, r->buf, r->cap, timeout_ms);
	if (n < 0)
		goto failed;
	rc = take(r, r->buf, (size_t)n, 1, false);
	*got = rc == EXIT_OK;
	return rc;
failed:
	e = errno;
	if (e == ETIMEDOUT || e == EAGAIN || e == EINTR)
		return EXIT_TIMEOUT;
	say("recv: %s (errno %s)", mq_errdetail(), errname(e));
	errno = e;
	return EXIT_ERROR;
}

static void sleep_s(double s)
{
	if (s <= 0)
		return;
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL); /* a signal cuts it short: the caller looks at stop */
}

static int cmd_send(const struct opts *o)
{
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	struct sender s;
	int rc = sender_init(&s, o) ? EXIT_ERROR : EXIT_OK;
	uint64_t sent = 0;
	double start = now_s();
	while (rc == EXIT_OK && sent < o->count) {
		uint64_t allowed = o->count - sent;
		if (o->rate > 0) {
			double t = now_s(), due = start + (double)sent / o->rate;
			if (due > t) {
				sleep_s(due - t < 0.01 ? due - t : 0.01);
				continue;
			}
			uint64_t ahead = (uint64_t)((t - start) * o->rate) + 1 - sent;
			allowed = ahead < allowed ? ahead : allowed;
		}
		int k = send_some(q, o, &s, o->start + sent, allowed, o->timeout_ms);
		if (k > 0) {
			sent += (uint64_t)k;
			continue;
		}
		int e = errno;
		char what[64];
		snprintf(what, sizeof(what), "send %" PRIu64 " of %" PRIu64, sent + 1, o->count);
		rc = send_fail(what, e);
	}
	free(s.buf);
	mq_detach(q);
	return rc;
}

static int cmd_recv(const struct opts *o)
{
	static struct receiver r;
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	int rc = receiver_init(&r, q, o) || log_open(o->log, &r.log) ? EXIT_ERROR : EXIT_OK;
	uint64_t done = 0;
	while (rc == EXIT_OK && done < o->count) {
		uint64_t got;
		rc = recv_some(q, o, &r, o->count - done, o->timeout_ms, &got);
		done += got;
		if (rc == EXIT_TIMEOUT) {
			int e = errno;
			say("recv %" PRIu64 " of %" PRIu64 ": %s (errno %s)", done + 1, o->count,
			    mq_errdetail(), errname(e));
		}
	}
	free(r.buf);
	mq_detach(q);
	if (log_close(r.log, o->log) && rc == EXIT_OK)
		rc = EXIT_ERROR;
	return rc;
}

static int cmd_produce(const struct opts *o)
{
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	struct sender s;
	if (sender_init(&s, o)) {
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
		uint64_t allowed = UINT64_MAX;
		if (o->rate > 0) {
			double due = start + (double)confirmed / o->rate;
			if (due > t) {
				sleep_s(due - t < 0.01 ? due - t : 0.01);
				continue;
			}
			allowed = (uint64_t)((t - start) * o->rate) + 1 - confirmed;
		}
		int k = send_some(q, o, &s, confirmed, allowed, 200);
		if (k > 0) {
			confirmed += (uint64_t)k; /* the send returned success: they are in */
			continue;
		}
		int e = errno;
		if (e == ETIMEDOUT || e == EINTR)
			continue; /* not sent: the same sequence numbers go again */
		say("produce %u: send of seq %" PRIu64 ": %s (errno %s)", o->id, confirmed,
		    mq_errdetail(), errname(e));
		rc = EXIT_ERROR;
	}
	if (write_count(o->confirm, confirmed))
		rc = EXIT_ERROR;
	free(s.buf);
	mq_detach(q);
	return rc;
}

static int cmd_consume(const struct opts *o)
{
	static struct receiver r;
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	int rc = receiver_init(&r, q, o) || log_open(o->log, &r.log) ? EXIT_ERROR : EXIT_OK;
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
			if (fflush(r.log) != 0 ||
			    (o->count_file && write_count(o->count_file, r.v.count)))
				rc = EXIT_ERROR;
		}
		uint64_t got;
		int x = recv_some(q, o, &r, o->delay_ms ? 1 : MAX_BATCH, 50, &got);
		if (got)
			last_msg = now_s();
		if (got && o->delay_ms) {
			struct timespec d = {o->delay_ms / 1000,
			                     (long)(o->delay_ms % 1000) * 1000000};
			nanosleep(&d, NULL);
		}
		if (x != EXIT_OK && x != EXIT_TIMEOUT)
			rc = x;
	}
	if (o->count_file && write_count(o->count_file, r.v.count) && rc == EXIT_OK)
		rc = EXIT_ERROR;
	free(r.buf);
	mq_detach(q);
	if (log_close(r.log, o->log) && rc == EXIT_OK)
		rc = EXIT_ERROR;
	return rc;
}

static int cmd_hold(const struct opts *o)
{
	static struct receiver r;
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	struct sender s;
	int rc = sender_init(&s, o) ? EXIT_ERROR : EXIT_OK;
	uint64_t sent = 0;
	while (rc == EXIT_OK && sent < o->send_n) {
		int k = send_some(q, o, &s, o->start + sent, o->send_n - sent, o->timeout_ms);
		if (k > 0)
			sent += (uint64_t)k;
		else
			rc = send_fail("hold: send", errno);
	}
	free(s.buf);
	if (rc == EXIT_OK && o->recv_n) {
		rc = receiver_init(&r, q, o) ? EXIT_ERROR : EXIT_OK;
		if (o->recv != RECV_COPY) {
			r.kept = calloc(o->recv_n, sizeof(*r.kept));
			if (!r.kept)
				rc = EXIT_ERROR;
		}
	}
	uint64_t done = 0;
	while (rc == EXIT_OK && done < o->recv_n) {
		uint64_t got;
		rc = recv_some(q, o, &r, o->recv_n - done, o->timeout_ms, &got);
		done += got;
		if (rc == EXIT_TIMEOUT) {
			int e = errno;
			say("hold: recv: %s (errno %s)", mq_errdetail(), errname(e));
		}
	}
	free(r.buf);
	/* Reservations: room taken, a whole message written in place, never
	 * committed. A holder killed now must not send them. */
	for (uint64_t i = 0; rc == EXIT_OK && i < o->reserved_n; i++) {
		uint64_t seq = o->start + o->send_n + i;
		unsigned char *m = mq_reserve(q, msg_size(o, o->id, seq), o->timeout_ms);
		if (m)
			build(m, msg_size(o, o->id, seq), o->id, seq);
		else
			rc = send_fail("hold: reserve", errno);
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
	/* A clean exit: mq_detach gives back the leases and reservations kept. */
	free(r.kept);
	mq_detach(q);
	return rc;
}

static int cmd_churn(const struct opts *o)
{
	static struct receiver r;
	mq_t *q = attach(o->name);
	if (!q)
		return EXIT_ERROR;
	struct sender s;
	int rc = sender_init(&s, o) || receiver_init(&r, q, o) ? EXIT_ERROR : EXIT_OK;
	r.v.plain_any_order = true; /* churners that lease are killed around us */
	uint64_t seq = o->start, rounds = 0;
	double end = now_s() + o->seconds;
	while (rc == EXIT_OK && !stop && now_s() < end) {
		/* Short waits: a full queue (what killed churners left) is drained
		 * by the receive that follows a send that timed out. */
		int k = send_some(q, o, &s, seq, o->batch ? o->batch : 1, 100);
		if (k < 0 && errno != ETIMEDOUT && errno != EINTR) {
			rc = send_fail("churn: send", errno);
			break;
		}
		seq += k > 0 ? (uint64_t)k : 0;
		uint64_t got;
		int x = recv_some(q, o, &r, k > 0 ? (uint64_t)k : 1, 100, &got);
		if (x != EXIT_OK && x != EXIT_TIMEOUT)
			rc = x;
		if (++rounds == 1 && rc == EXIT_OK && o->ready &&
		    write_count(o->ready, (uint64_t)getpid()))
			rc = EXIT_ERROR;
	}
	free(s.buf);
	free(r.buf);
	mq_detach(q);
	return rc;
}

static int cmd_stats(const struct opts *o)
{
	mq_t *q = mq_observe(o->name);
	struct mq_stats st;
	if (!q || mq_stats(q, &st) != 0) {
		say("stats: %s (errno %s)", mq_errdetail(), errname(errno));
		if (q)
			mq_detach(q);
		return EXIT_ERROR;
	}
	printf("capacity %" PRIu64 "\nmax_msg_size %" PRIu64 "\ndepth %" PRIu64
	       "\nin_flight %" PRIu64 "\nenqueued_total %" PRIu64 "\ndequeued_total %" PRIu64
	       "\nacked_total %" PRIu64 "\nnacked_total %" PRIu64 "\nredelivered_total %" PRIu64
	       "\nrecoveries_total %" PRIu64 "\nlock_repairs_total %" PRIu64 "\nclients %u\n",
	       st.capacity, st.max_msg_size, st.depth, st.in_flight, st.enqueued_total,
	       st.dequeued_total, st.acked_total, st.nacked_total, st.redelivered_total,
	       st.recoveries_total, st.lock_repairs_total, st.clients);
	mq_detach(q);
	return EXIT_OK;
}

static int cmd_inspect(const struct opts *o)
{
	mq_t *q = mq_observe(o->name);
	struct mq_inspection in;
	if (!q || mq_inspect(q, &in) != 0) {
		say("inspect: %s (errno %s)", mq_errdetail(), errname(errno));
		if (q)
			mq_detach(q);
		return EXIT_ERROR;
	}
	printf("sound %d\nproblem %s\nlifo %u\ncapacity %" PRIu64 "\nchunks_free %" PRIu64
	       "\nchunks_queued %" PRIu64 "\nchunks_requeued %" PRIu64 "\nchunks_leased %" PRIu64
	       "\nchunks_writing %" PRIu64 "\nchunks_taking %" PRIu64 "\nchunks_orphaned %" PRIu64
	       "\nsend_lock_pid %d\nrecv_lock_pid %d\n",
	       in.sound, in.sound ? "-" : in.problem, in.lifo, in.capacity, in.chunks_free,
	       in.chunks_queued, in.chunks_requeued, in.chunks_leased, in.chunks_writing,
	       in.chunks_taking, in.chunks_orphaned, in.send_lock.holder_pid,
	       in.recv_lock.holder_pid);
	mq_detach(q);
	return in.sound ? EXIT_OK : EXIT_ERROR;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
		fputs(usage_text, stdout);
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
	static const struct {
		const char *name;
		int (*fn)(const struct opts *);
	} cmds[] = {{"send", cmd_send},       {"recv", cmd_recv},      {"produce", cmd_produce},
	            {"consume", cmd_consume}, {"hold", cmd_hold},      {"churn", cmd_churn},
	            {"stats", cmd_stats},     {"inspect", cmd_inspect}};
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(o.cmd, cmds[i].name))
			return cmds[i].fn(&o);
	return usage_error("unknown command '%s'", o.cmd);
}
