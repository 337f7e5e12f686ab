/* prog_exactly_once.c - 4 producers, 4 consumers: each message arrives once, intact, in order. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libmq.h"
#include "testmsg.h"
#include "testprog.h"

#define NPROD  4
#define NCONS  4
#define NCHILD (NPROD + NCONS)
_Static_assert(NCHILD <= TP_MAX_CHILDREN, "the harness tracks at most TP_MAX_CHILDREN");
#define CAPACITY  64
#define MAX_MSG   512
#define DEFAULT_N 20000
#define MIN_N     200
#ifndef DEADLINE_S
#define DEADLINE_S 120
#endif
#define STALL_S         5 /* producers done, queue empty, no progress: messages were lost */
#define RECV_TIMEOUT_MS 200
#define SEND_TIMEOUT_MS 200

/* struct shared: the results area, mapped MAP_SHARED before the fork. */
struct shared {
	_Atomic uint64_t received; /* messages taken by all consumers */
	_Atomic uint64_t corrupt;
	_Atomic uint64_t duplicates;
	_Atomic uint64_t order_errors;
	_Atomic uint64_t errors; /* unexpected libmq failures in children */
	_Atomic int abort;       /* set by a child that failed: everyone stops */
	_Atomic int have_detail;
	char detail[256]; /* first failure seen by a child */
	_Atomic uint64_t short_recv[HDR];
	_Atomic uint8_t seen[]; /* [NPROD * n]: times (producer, seq) was received */
};

static struct shared *sh;
static size_t sh_size;
static uint32_t n_per_producer;
static uint64_t seed;

/* size_rng: the PRNG state that draws the message sizes of producer P. */
static uint64_t size_rng(uint32_t p)
{
	uint64_t s = seed ^ (UINT64_C(0xa0761d6478bd642f) * (p + 1));
	return splitmix64(&s);
}

/* next_len: the size of a producer's next message, uniform in 0..MAX_MSG. */
static size_t next_len(uint64_t *rng)
{
	return (size_t)(splitmix64(rng) % (MAX_MSG + 1));
}

/* child_fail: record the first failure of any child (printf-style) and make everyone stop. */
static void child_fail(const char *fmt, ...)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&sh->have_detail, &expected, 1)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(sh->detail, sizeof(sh->detail), fmt, ap);
		va_end(ap);
	}
	atomic_store(&sh->abort, 1);
}

/* producer: attach by name and send this producer's N messages; never returns. */
static _Noreturn void producer(uint32_t p)
{
	tp_child_setup();
	mq_t *q = mq_attach(tp.qname);
	if (!q) {
		child_fail("producer %u: mq_attach(%s): %s (%s)", p, tp.qname, strerror(errno),
		           mq_errdetail());
		_exit(3);
	}
	uint64_t rng = size_rng(p);
	unsigned char buf[MAX_MSG];
	for (uint32_t seq = 0; seq < n_per_producer; seq++) {
		size_t len = next_len(&rng);
		build_msg(buf, p, seq, len);
		for (;;) {
			if (atomic_load(&sh->abort))
				_exit(4);
			if (mq_send(q, buf, len, SEND_TIMEOUT_MS) == 0)
				break;
			if (errno == ETIMEDOUT || errno == EINTR)
				continue;
			atomic_fetch_add(&sh->errors, 1);
			child_fail("producer %u: mq_send(seq %u, %zu bytes): %s (%s)", p, seq, len,
			           strerror(errno), mq_errdetail());
			_exit(3);
		}
	}
	mq_detach(q);
	_exit(0);
}

/* check_msg: validate a received message of LEN bytes and record it; consumer C's
 * last sequence per producer is LAST. */
static void check_msg(int c, const unsigned char *buf, size_t len, int64_t *last)
{
	if (len < HDR) {
		for (size_t i = 0; i < len; i++) {
			if (buf[i] != short_byte(len, i)) {
				atomic_fetch_add(&sh->corrupt, 1);
				child_fail("consumer %d: short message of %zu bytes: byte %zu is "
				           "0x%02x",
				           c, len, i, buf[i]);
				return;
			}
		}
		atomic_fetch_add(&sh->short_recv[len], 1);
		return;
	}
	uint32_t id, seq, l;
	const char *why = msg_verify(buf, len, NPROD, n_per_producer, &id, &seq, &l);
	if (why) {
		atomic_fetch_add(&sh->corrupt, 1);
		child_fail(
		        "consumer %d: corrupt message (%zu bytes, header id %u seq %u len %u): %s",
		        c, len, id, seq, l, why);
		return;
	}
	if (atomic_fetch_add(&sh->seen[(size_t)id * n_per_producer + seq], 1) != 0) {
		atomic_fetch_add(&sh->duplicates, 1);
		child_fail("consumer %d: duplicate message producer %u seq %u", c, id, seq);
	}
	if ((int64_t)seq <= last[id]) {
		atomic_fetch_add(&sh->order_errors, 1);
		child_fail("consumer %d: producer %u seq %u after seq %" PRId64, c, id, seq,
		           last[id]);
	}
	last[id] = seq;
}

/* consumer: attach by name and receive until all messages are in; never returns. */
static _Noreturn void consumer(int c)
{
	tp_child_setup();
	mq_t *q = mq_attach(tp.qname);
	if (!q) {
		child_fail("consumer %d: mq_attach(%s): %s (%s)", c, tp.qname, strerror(errno),
		           mq_errdetail());
		_exit(3);
	}
	uint64_t total = (uint64_t)NPROD * n_per_producer;
	int64_t last[NPROD];
	for (int i = 0; i < NPROD; i++)
		last[i] = -1;
	unsigned char buf[MAX_MSG];
	while (atomic_load(&sh->received) < total) {
		if (atomic_load(&sh->abort))
			_exit(4);
		ssize_t r = mq_recv(q, buf, sizeof(buf), RECV_TIMEOUT_MS);
		if (r < 0) {
			if (errno == ETIMEDOUT || errno == EINTR)
				continue;
			atomic_fetch_add(&sh->errors, 1);
			child_fail("consumer %d: mq_recv: %s (%s)", c, strerror(errno),
			           mq_errdetail());
			_exit(3);
		}
		if ((size_t)r > sizeof(buf)) {
			atomic_fetch_add(&sh->corrupt, 1);
			child_fail("consumer %d: mq_recv returned %zd > capacity %zu", c, r,
			           sizeof(buf));
			_exit(3);
		}
		check_msg(c, buf, (size_t)r, last);
		atomic_fetch_add(&sh->received, 1);
	}
	mq_detach(q);
	_exit(0);
}

/* spawn: fork a child that runs FN(ARG); returns its pid (exits the test on failure). */
static pid_t spawn(void (*fn)(int), int arg)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("prog_exactly_once: fork");
		exit(1);
	}
	if (pid == 0)
		fn(arg);
	return pid;
}

/* run_producer, run_consumer: adapters for spawn. */
static void run_producer(int p)
{
	producer((uint32_t)p);
}

static void run_consumer(int c)
{
	consumer(c);
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	n_per_producer = (uint32_t)(DEFAULT_N * tp_scale_factor());
	if (argc > 1)
		n_per_producer = (uint32_t)strtoul(argv[1], NULL, 0);
	if (n_per_producer < MIN_N)
		n_per_producer = MIN_N;
	const char *seed_env = getenv("MQ_TEST_SEED");
	seed = seed_env ? strtoull(seed_env, NULL, 0)
	                : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	uint64_t total = (uint64_t)NPROD * n_per_producer;

	sh_size = sizeof(struct shared) + (size_t)total;
	sh = mmap(NULL, sh_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		perror("prog_exactly_once: mmap");
		return 1;
	}

	if (!tp_start("prog_exactly_once", "eo", CAPACITY, MAX_MSG, DEADLINE_S + 60,
	              "wedged: the parent hung in a call (backstop alarm)"))
		return 1;
	printf("prog_exactly_once: queue %s, %d producers x %u messages, %d consumers, "
	       "capacity %d, max_msg %d, seed 0x%" PRIx64 "\n",
	       tp.qname, NPROD, n_per_producer, NCONS, CAPACITY, MAX_MSG, seed);

	double t0 = tp_now_s();
	for (int c = 0; c < NCONS; c++)
		tp.kids[NPROD + c] = spawn(run_consumer, c);
	for (int p = 0; p < NPROD; p++)
		tp.kids[p] = spawn(run_producer, p);

	/* Wait for every child, with a deadline. */
	char reason[512] = "";
	int live = NCHILD, producers_live = NPROD, wedged = 0, stalled = 0;
	uint64_t last_received = 0;
	double last_progress = t0;
	while (live > 0) {
		int st;
		pid_t pid = waitpid(-1, &st, WNOHANG);
		if (pid > 0) {
			for (int i = 0; i < NCHILD; i++) {
				if (tp.kids[i] != pid)
					continue;
				tp.kids[i] = 0;
				live--;
				producers_live -= i < NPROD;
				if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0) && !reason[0]) {
					snprintf(reason, sizeof(reason), "%s %d (pid %d) %s %d",
					         i < NPROD ? "producer" : "consumer",
					         i < NPROD ? i : i - NPROD, (int)pid,
					         WIFEXITED(st) ? "exited with status"
					                       : "killed by signal",
					         WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
					atomic_store(&sh->abort, 1);
				}
			}
			continue;
		}
		double now = tp_now_s();
		if (now - t0 > DEADLINE_S) {
			wedged = 1;
			break;
		}
		uint64_t got = atomic_load(&sh->received);
		if (got != last_received) {
			last_received = got;
			last_progress = now;
		} else if (!stalled && producers_live == 0 && now - last_progress > STALL_S) {
			struct mq_stats cur;
			if (mq_stats(tp.q, &cur) == 0 && cur.depth == 0) {
				stalled = 1;
				if (!reason[0])
					snprintf(reason, sizeof(reason),
					         "%" PRIu64
					         " messages never arrived: producers done, "
					         "queue empty, no progress for %d s",
					         total - got, STALL_S);
				atomic_store(&sh->abort, 1); /* consumers stop */
			}
		}
		struct timespec ts = {0, 5 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	double secs = tp_now_s() - t0;
	struct mq_stats st;
	memset(&st, 0, sizeof(st));
	int stats_rc = mq_stats(tp.q, &st);
	if (wedged) {
		tp_kill_children();
		printf("prog_exactly_once: messages=%" PRIu64 "/%" PRIu64 " seconds=%.2f FAIL: "
		       "wedged: children still running after %d s (depth %" PRIu64
		       ", enqueued %" PRIu64 ", dequeued %" PRIu64 "); all SIGKILLed\n",
		       atomic_load(&sh->received), total, secs, DEADLINE_S, st.depth,
		       st.enqueued_total, st.dequeued_total);
		return 1;
	}

	/* Regenerate what was sent and compare with what was received. */
	uint64_t bytes = 0, short_sent[HDR] = {0}, missing = 0, bad_seen = 0;
	char first_bad[128] = "";
	for (uint32_t p = 0; p < NPROD; p++) {
		uint64_t rng = size_rng(p);
		for (uint32_t seq = 0; seq < n_per_producer; seq++) {
			size_t len = next_len(&rng);
			uint8_t seen = atomic_load(&sh->seen[(size_t)p * n_per_producer + seq]);
			bytes += len;
			if (len < HDR) {
				short_sent[len]++;
				if (seen)
					bad_seen++;
				continue;
			}
			if (seen != 1) {
				missing += seen == 0;
				if (!first_bad[0])
					snprintf(first_bad, sizeof(first_bad),
					         "producer %u seq %u (%zu bytes) received %u times",
					         p, seq, len, seen);
			}
		}
	}
	uint64_t short_mismatch = 0;
	char short_detail[128] = "";
	for (int l = 0; l < HDR; l++) {
		uint64_t got = atomic_load(&sh->short_recv[l]);
		if (got != short_sent[l]) {
			short_mismatch++;
			if (!short_detail[0])
				snprintf(short_detail, sizeof(short_detail),
				         "%d-byte messages: sent %" PRIu64 ", received %" PRIu64, l,
				         short_sent[l], got);
		}
	}

	uint64_t received = atomic_load(&sh->received);
	uint64_t dup = atomic_load(&sh->duplicates), corrupt = atomic_load(&sh->corrupt);
	uint64_t order = atomic_load(&sh->order_errors);
	if (!reason[0] && sh->have_detail)
		snprintf(reason, sizeof(reason), "%s", sh->detail);
	else if (reason[0] && sh->have_detail) {
		size_t n = strlen(reason);
		snprintf(reason + n, sizeof(reason) - n, "; first child failure: %s", sh->detail);
	}
	if (!reason[0] && received != total)
		snprintf(reason, sizeof(reason), "received %" PRIu64 " messages, expected %" PRIu64,
		         received, total);
	if (stalled && first_bad[0]) {
		size_t n = strlen(reason);
		snprintf(reason + n, sizeof(reason) - n, "; first: %s", first_bad);
	}
	if (!reason[0] && (missing || first_bad[0]))
		snprintf(reason, sizeof(reason), "%" PRIu64 " missing; first: %s", missing,
		         first_bad);
	if (!reason[0] && bad_seen)
		snprintf(reason, sizeof(reason), "%" PRIu64 " short sequences marked as seen",
		         bad_seen);
	if (!reason[0] && short_mismatch)
		snprintf(reason, sizeof(reason), "short-message counts differ: %s", short_detail);
	if (!reason[0] && (dup || corrupt || order))
		snprintf(reason, sizeof(reason),
		         "duplicates %" PRIu64 ", corrupt %" PRIu64 ", order errors %" PRIu64, dup,
		         corrupt, order);
	if (!reason[0] && stats_rc != 0)
		snprintf(reason, sizeof(reason), "mq_stats: %s", strerror(errno));
	if (!reason[0] &&
	    (st.enqueued_total != total || st.dequeued_total != total || st.depth != 0 ||
	     st.bytes_enqueued_total != bytes || st.bytes_dequeued_total != bytes))
		snprintf(reason, sizeof(reason),
		         "stats: enqueued %" PRIu64 " dequeued %" PRIu64 " depth %" PRIu64
		         " bytes in %" PRIu64 " out %" PRIu64 ", expected %" PRIu64
		         " messages, %" PRIu64 " bytes, depth 0",
		         st.enqueued_total, st.dequeued_total, st.depth, st.bytes_enqueued_total,
		         st.bytes_dequeued_total, total, bytes);
	if (!reason[0] && st.capacity != CAPACITY)
		snprintf(reason, sizeof(reason), "stats: capacity %" PRIu64 ", expected %d",
		         st.capacity, CAPACITY);

	/* Clean up now, and check that nothing is left in /dev/shm. */
	mq_detach(tp.q);
	tp.q = NULL;
	if (mq_remove(tp.qname) != 0 && !reason[0])
		snprintf(reason, sizeof(reason), "mq_remove(%s): %s", tp.qname, strerror(errno));
	tp.qname[0] = '\0';
	if (access(tp.shm_path, F_OK) == 0 && !reason[0])
		snprintf(reason, sizeof(reason), "%s still exists after mq_remove", tp.shm_path);

	printf("prog_exactly_once: messages=%" PRIu64 " bytes=%" PRIu64 " seconds=%.2f "
	       "(%.0f msg/s; blocked sends %" PRIu64 ", blocked recvs %" PRIu64
	       ", high water %" PRIu64 ") %s%s\n",
	       received, bytes, secs, secs > 0 ? (double)received / secs : 0.0,
	       st.blocked_sends_total, st.blocked_recvs_total, st.high_water,
	       reason[0] ? "FAIL: " : "PASS", reason);
	if (reason[0])
		printf("prog_exactly_once: reproduce with MQ_TEST_SEED=0x%" PRIx64 " %s %u\n", seed,
		       argv[0], n_per_producer);
	munmap(sh, sh_size);
	return reason[0] ? 1 : 0;
}
