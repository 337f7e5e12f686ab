/* prog_chaos.c - SIGKILL producers and consumers at random: no wedge, duplicate or corruption. */
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
#define CAPACITY      32
#define MAX_MSG       512
#define SEQ_MAX       (1u << 16) /* messages per producer incarnation; then it idles */
#define SEQ_WORDS     (SEQ_MAX / 64)
#define DEFAULT_KILLS 400
#define MIN_KILLS     200
#ifndef DEADLINE_S
#define DEADLINE_S 240 /* the whole test */
#endif
#define STOP_DEADLINE_S  20 /* producers or consumers to stop once told */
#define DRAIN_DEADLINE_S 30 /* consumers to empty the queue */
#define SEND_TIMEOUT_MS  100
#define RECV_TIMEOUT_MS  50

enum role { PRODUCER, CONSUMER };

/* struct shared: flags and counters of the results area, mapped before any fork. */
struct shared {
	_Atomic int stop_producers;
	_Atomic int stop_consumers;
	_Atomic uint64_t received; /* messages recorded by consumers (progress only) */
	_Atomic uint64_t corrupt;
	_Atomic uint64_t duplicates;
	_Atomic uint64_t order_errors;
	_Atomic uint64_t errors; /* unexpected libmq failures in children */
	_Atomic uint64_t attach_failures;
	_Atomic int have_detail;
	char detail[256]; /* first failure seen by a child */
	_Atomic uint64_t short_recv[HDR];
};

/* struct child: one live child process. */
struct child {
	enum role role; /* (its pid is tp.kids[] of the same index) */
	uint32_t id;    /* producer incarnation id (producers only) */
};

static struct shared *sh;
static _Atomic int64_t *confirmed; /* [max_ids]: last seq whose mq_send returned 0, or -1 */
static _Atomic uint64_t *seen;     /* [max_ids][SEQ_WORDS]: bitmap of received seqs */
static size_t confirmed_size, seen_size;
static uint32_t max_ids, next_id;
static uint64_t seed;
static struct child kids[NCHILD];

/* size_rng: the PRNG state that draws the message sizes of producer incarnation ID. */
static uint64_t size_rng(uint32_t id)
{
	uint64_t s = seed ^ (UINT64_C(0xa0761d6478bd642f) * ((uint64_t)id + 1));
	return splitmix64(&s);
}

/* next_len: the size of a producer's next message: often 0, the maximum or short. */
static size_t next_len(uint64_t *rng)
{
	uint64_t r = splitmix64(rng);
	switch (r & 7) {
	case 0:
		return 0;
	case 1:
		return MAX_MSG;
	case 2:
		return (size_t)((r >> 3) % HDR);
	default:
		return (size_t)((r >> 3) % (MAX_MSG + 1));
	}
}

/* record_detail: keep the first failure description of any process (printf-style). */
static void record_detail(const char *fmt, ...)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&sh->have_detail, &expected, 1)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(sh->detail, sizeof(sh->detail), fmt, ap);
		va_end(ap);
	}
}

/* child_setup: common start of a child: default signals, die with the parent. */
static void child_setup(void)
{
	tp_child_setup();
	/* The parent must keep its kill schedule while 8 children compete for the CPUs. */
	if (nice(5) < 0) {
		/* not essential */
	}
}

/* child_attach: attach by name, as an independent program would; exits on failure. */
static mq_t *child_attach(const char *who, uint32_t n)
{
	mq_t *q = mq_attach(tp.qname);
	if (!q) {
		atomic_fetch_add(&sh->attach_failures, 1);
		record_detail("%s %u: mq_attach(%s): %s (%s)", who, n, tp.qname, strerror(errno),
		              mq_errdetail());
		_exit(3);
	}
	return q;
}

/* producer: incarnation ID sends seq 0, 1, ... until told to stop, publishing each
 * confirmed seq; never returns. */
static _Noreturn void producer(uint32_t id)
{
	child_setup();
	mq_t *q = child_attach("producer", id);
	uint64_t rng = size_rng(id);
	unsigned char buf[MAX_MSG];
	uint32_t seq = 0;
	size_t len = next_len(&rng);
	build_msg(buf, id, seq, len);
	while (!atomic_load(&sh->stop_producers)) {
		if (seq == SEQ_MAX) { /* sent all it may: idle until killed or stopped */
			struct timespec ts = {0, 1000 * 1000};
			nanosleep(&ts, NULL);
			continue;
		}
		if (mq_send(q, buf, len, SEND_TIMEOUT_MS) != 0) {
			if (errno == ETIMEDOUT || errno == EINTR)
				continue; /* nothing was queued: send the same message again */
			atomic_fetch_add(&sh->errors, 1);
			record_detail("producer %u: mq_send(seq %u, %zu bytes): %s (%s)", id, seq,
			              len, strerror(errno), mq_errdetail());
			_exit(3);
		}
		atomic_store(&confirmed[id], (int64_t)seq);
		if (++seq < SEQ_MAX) {
			len = next_len(&rng);
			build_msg(buf, id, seq, len);
		}
	}
	mq_detach(q);
	_exit(0);
}

/* record_msg: validate a received message of LEN bytes and record it in the shared
 * results; WHO names the receiver, LAST is its last seq per producer id. */
static void record_msg(const char *who, const unsigned char *buf, size_t len, int32_t *last)
{
	if (len < HDR) {
		for (size_t i = 0; i < len; i++) {
			if (buf[i] != short_byte(len, i)) {
				atomic_fetch_add(&sh->corrupt, 1);
				record_detail("%s: short message of %zu bytes: byte %zu is 0x%02x",
				              who, len, i, buf[i]);
				return;
			}
		}
		atomic_fetch_add(&sh->short_recv[len], 1);
		atomic_fetch_add(&sh->received, 1);
		return;
	}
	uint32_t id, seq, l;
	const char *why = msg_verify(buf, len, max_ids, SEQ_MAX, &id, &seq, &l);
	if (why) {
		atomic_fetch_add(&sh->corrupt, 1);
		record_detail("%s: corrupt message (%zu bytes, header id %u seq %u len %u): %s",
		              who, len, id, seq, l, why);
		return;
	}
	uint64_t bit = UINT64_C(1) << (seq % 64);
	if (atomic_fetch_or(&seen[(size_t)id * SEQ_WORDS + seq / 64], bit) & bit) {
		atomic_fetch_add(&sh->duplicates, 1);
		record_detail("%s: duplicate message id %u seq %u", who, id, seq);
	}
	if ((int64_t)seq <= (int64_t)last[id]) {
		atomic_fetch_add(&sh->order_errors, 1);
		record_detail("%s: id %u seq %u received after seq %d", who, id, seq, last[id]);
	}
	last[id] = (int32_t)seq;
	atomic_fetch_add(&sh->received, 1);
}

/* new_last: a per-id "last seq seen" table, all -1. */
static int32_t *new_last(void)
{
	int32_t *last = malloc(sizeof(*last) * max_ids);
	if (!last) {
		record_detail("malloc failed");
		_exit(3);
	}
	for (uint32_t i = 0; i < max_ids; i++)
		last[i] = -1;
	return last;
}

/* consumer: receive and record messages until told to stop; never returns. */
static _Noreturn void consumer(uint32_t n)
{
	child_setup();
	int32_t *last = new_last();
	mq_t *q = child_attach("consumer", n);
	char who[32];
	snprintf(who, sizeof(who), "consumer %u", n);
	unsigned char buf[MAX_MSG];
	while (!atomic_load(&sh->stop_consumers)) {
		ssize_t r = mq_recv(q, buf, sizeof(buf), RECV_TIMEOUT_MS);
		if (r < 0) {
			if (errno == ETIMEDOUT || errno == EINTR)
				continue;
			atomic_fetch_add(&sh->errors, 1);
			record_detail("%s: mq_recv: %s (%s)", who, strerror(errno), mq_errdetail());
			_exit(3);
		}
		if ((size_t)r > sizeof(buf)) {
			atomic_fetch_add(&sh->corrupt, 1);
			record_detail("%s: mq_recv returned %zd > capacity %zu", who, r,
			              sizeof(buf));
			_exit(3);
		}
		record_msg(who, buf, (size_t)r, last);
	}
	mq_detach(q);
	_exit(0);
}

/* sleep_us: sleep US microseconds. */
static void sleep_us(long us)
{
	struct timespec ts = {us / 1000000, (us % 1000000) * 1000};
	nanosleep(&ts, NULL);
}

/* spawn: fork the child of slot I with ROLE; a producer gets a fresh incarnation id. */
static void spawn(int i, enum role role)
{
	uint32_t id = 0;
	if (role == PRODUCER) {
		if (next_id >= max_ids) {
			fprintf(stderr, "prog_chaos: FAIL: out of producer ids (%u)\n", max_ids);
			exit(1);
		}
		id = next_id++;
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("prog_chaos: fork");
		exit(1);
	}
	if (pid == 0) {
		if (role == PRODUCER)
			producer(id);
		consumer((uint32_t)i);
	}
	tp.kids[i] = pid;
	kids[i].role = role;
	kids[i].id = id;
}

/* describe_status: "exited with status N" or "killed by signal N" into BUF. */
static const char *describe_status(char *buf, size_t len, int st)
{
	if (WIFEXITED(st))
		snprintf(buf, len, "exited with status %d", WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d", WTERMSIG(st));
	else
		snprintf(buf, len, "status 0x%x", st);
	return buf;
}

/* struct tally: the outcome of the run, filled by the parent. */
struct tally {
	uint64_t kills[2], attach_kills, unexpected_deaths;
	uint64_t confirmed, delivered, losses, long_losses, short_losses;
	uint64_t inflight_delivered, phantoms, parent_drained;
	char first_loss[128], first_phantom[128], first_death[160];
};

/* reap_unexpected: reap children that died without being killed by us; count and
 * replace them (they should never exit during the kill phase). */
static void reap_unexpected(struct tally *t)
{
	int st;
	pid_t pid;
	while ((pid = waitpid(-1, &st, WNOHANG)) > 0) {
		for (int i = 0; i < NCHILD; i++) {
			if (tp.kids[i] != pid)
				continue;
			char s[48];
			t->unexpected_deaths++;
			if (!t->first_death[0])
				snprintf(t->first_death, sizeof(t->first_death),
				         "%s (pid %d) %s during the kill phase",
				         kids[i].role == PRODUCER ? "producer" : "consumer",
				         (int)pid, describe_status(s, sizeof(s), st));
			tp.kids[i] = 0;
			spawn(i, kids[i].role);
		}
	}
}

/* kill_one: SIGKILL the child of slot I, reap it and fork a replacement. */
static void kill_one(struct tally *t, int i)
{
	int st = 0;
	pid_t pid = tp.kids[i];
	kill(pid, SIGKILL);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
	}
	if (!(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL)) {
		char s[48];
		t->unexpected_deaths++;
		if (!t->first_death[0])
			snprintf(t->first_death, sizeof(t->first_death),
			         "%s (pid %d) %s before it was killed",
			         kids[i].role == PRODUCER ? "producer" : "consumer", (int)pid,
			         describe_status(s, sizeof(s), st));
	}
	t->kills[kids[i].role]++;
	tp.kids[i] = 0;
	spawn(i, kids[i].role);
}

/* wait_role: wait until every child of ROLE has exited (status 0 expected), at most
 * SECS seconds. Returns 0, or -1 on the deadline. */
static int wait_role(struct tally *t, enum role role, double secs)
{
	double end = tp_now_s() + secs;
	for (;;) {
		int live = 0;
		for (int i = 0; i < NCHILD; i++) {
			if (tp.kids[i] <= 0 || kids[i].role != role)
				continue;
			int st;
			pid_t pid = waitpid(tp.kids[i], &st, WNOHANG);
			if (pid == 0) {
				live++;
				continue;
			}
			if (pid > 0 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0)) {
				char s[48];
				t->unexpected_deaths++;
				if (!t->first_death[0])
					snprintf(t->first_death, sizeof(t->first_death),
					         "%s (pid %d) %s when told to stop",
					         role == PRODUCER ? "producer" : "consumer",
					         (int)tp.kids[i],
					         describe_status(s, sizeof(s), st));
			}
			tp.kids[i] = 0;
		}
		if (!live)
			return 0;
		if (tp_now_s() > end)
			return -1;
		sleep_us(2000);
	}
}

/* verify: compare what every producer incarnation confirmed with what was received. */
static void verify(struct tally *t)
{
	uint64_t short_confirmed[HDR] = {0}, short_maybe[HDR] = {0};
	for (uint32_t id = 0; id < next_id; id++) {
		int64_t c = atomic_load(&confirmed[id]);
		_Atomic uint64_t *bits = &seen[(size_t)id * SEQ_WORDS];
		uint64_t rng = size_rng(id);
		t->confirmed += (uint64_t)(c + 1);
		for (int64_t seq = 0; seq <= c + 1 && seq < SEQ_MAX; seq++) {
			size_t len = next_len(&rng);
			int got = (atomic_load(&bits[seq / 64]) >> (seq % 64)) & 1;
			if (len < HDR) {
				if (seq <= c)
					short_confirmed[len]++;
				else
					short_maybe[len]++;
			} else if (seq <= c && !got) {
				t->long_losses++;
				if (!t->first_loss[0])
					snprintf(t->first_loss, sizeof(t->first_loss),
					         "id %u seq %" PRId64
					         " (%zu bytes, confirmed up to "
					         "%" PRId64 ")",
					         id, seq, len, c);
			} else if (seq == c + 1 && got) {
				t->inflight_delivered++;
			}
		}
		/* Anything beyond seq c+1 was never sent. */
		for (uint32_t w = 0; w < SEQ_WORDS; w++) {
			uint64_t word = atomic_load(&bits[w]);
			t->delivered += (uint64_t)__builtin_popcountll(word);
			for (uint32_t b = 0; word && b < 64; b++) {
				int64_t seq = (int64_t)w * 64 + b;
				if (!((word >> b) & 1) || seq <= c + 1)
					continue;
				t->phantoms++;
				if (!t->first_phantom[0])
					snprintf(t->first_phantom, sizeof(t->first_phantom),
					         "id %u seq %" PRId64
					         " delivered, but only seq %" PRId64
					         " was confirmed",
					         id, seq, c);
			}
		}
	}
	for (int l = 0; l < HDR; l++) {
		uint64_t got = atomic_load(&sh->short_recv[l]);
		t->delivered += got;
		if (got < short_confirmed[l])
			t->short_losses += short_confirmed[l] - got;
		if (got > short_confirmed[l] + short_maybe[l]) {
			t->phantoms += got - short_confirmed[l] - short_maybe[l];
			if (!t->first_phantom[0])
				snprintf(t->first_phantom, sizeof(t->first_phantom),
				         "%" PRIu64
				         " messages of %d bytes received, at most %" PRIu64 " sent",
				         got, l, short_confirmed[l] + short_maybe[l]);
		}
	}
	t->losses = t->long_losses + t->short_losses;
}

/* final_roundtrip: after the chaos, a fresh send and receive through the parent's handle
 * must work within 1000 ms each. Returns 0, or -1 with a description in WHY. */
static int final_roundtrip(char *why, size_t len)
{
	static const char marker[] = "prog_chaos final round trip";
	unsigned char buf[MAX_MSG];
	if (mq_send(tp.q, marker, sizeof(marker), 1000) != 0) {
		snprintf(why, len, "final mq_send: %s (%s)", strerror(errno), mq_errdetail());
		return -1;
	}
	ssize_t r = mq_recv(tp.q, buf, sizeof(buf), 1000);
	if (r < 0) {
		snprintf(why, len, "final mq_recv: %s (%s)", strerror(errno), mq_errdetail());
		return -1;
	}
	if ((size_t)r != sizeof(marker) || memcmp(buf, marker, sizeof(marker)) != 0) {
		snprintf(why, len, "final mq_recv returned %zd bytes, not the marker", r);
		return -1;
	}
	return 0;
}

/* map_shared: an anonymous shared mapping of SIZE bytes (zero-filled); exits on failure. */
static void *map_shared(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
	               MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		perror("prog_chaos: mmap");
		exit(1);
	}
	return p;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	long kills = (long)(DEFAULT_KILLS * tp_scale_factor());
	const char *env_kills = getenv("MQ_CHAOS_KILLS");
	if (env_kills)
		kills = strtol(env_kills, NULL, 0);
	if (argc > 1)
		kills = strtol(argv[1], NULL, 0);
	if (kills < MIN_KILLS)
		kills = MIN_KILLS;
	const char *seed_env = getenv("MQ_TEST_SEED");
	seed = seed_env ? strtoull(seed_env, NULL, 0)
	                : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	uint64_t sched = seed ^ UINT64_C(0x243f6a8885a308d3); /* the kill schedule's PRNG */

	max_ids = NPROD + (uint32_t)kills + 64; /* slack for replaced casualties */
	sh = map_shared(sizeof(*sh));
	confirmed_size = sizeof(*confirmed) * max_ids;
	confirmed = map_shared(confirmed_size);
	for (uint32_t i = 0; i < max_ids; i++)
		atomic_store(&confirmed[i], -1);
	seen_size = sizeof(*seen) * SEQ_WORDS * (size_t)max_ids;
	seen = map_shared(seen_size);

	tp.phase = "start";
	if (!tp_start("prog_chaos", "chaos", CAPACITY, MAX_MSG, DEADLINE_S,
	              "wedged: the test did not finish within its deadline"))
		return 1;
	printf("prog_chaos: queue %s, %d producers + %d consumers alive, capacity %d, max_msg "
	       "%d, %ld kills, seed 0x%" PRIx64 "\n",
	       tp.qname, NPROD, NCONS, CAPACITY, MAX_MSG, kills, seed);

	struct tally t;
	memset(&t, 0, sizeof(t));
	double t0 = tp_now_s();
	tp.phase = "kill phase";
	for (int i = 0; i < NCHILD; i++)
		spawn(i, i < NPROD ? PRODUCER : CONSUMER);
	for (long k = 0; k < kills;) {
		sleep_us(500 + (long)(splitmix64(&sched) % 4500)); /* 0.5..5 ms */
		reap_unexpected(&t);
		uint64_t r = splitmix64(&sched);
		int i = (r & 1) ? (int)((r >> 8) % NPROD) : NPROD + (int)((r >> 8) % NCONS);
		kill_one(&t, i);
		k++;
		if ((r >> 32) % 8 == 0 && k < kills) {
			/* Kill the fresh replacement at once: it is starting or attaching. */
			sleep_us((long)((r >> 40) % 400));
			kill_one(&t, i);
			t.attach_kills++;
			k++;
		}
	}
	uint64_t recv_at_stop = atomic_load(&sh->received);
	double kill_secs = tp_now_s() - t0;

	/* Stop producers; consumers drain the queue; stop consumers; drain the rest here. */
	char reason[512] = "";
	tp.phase = "waiting for producers to stop";
	atomic_store(&sh->stop_producers, 1);
	if (wait_role(&t, PRODUCER, STOP_DEADLINE_S) != 0)
		snprintf(reason, sizeof(reason),
		         "wedged: producers did not stop within %d s of being told",
		         STOP_DEADLINE_S);
	tp.phase = "draining";
	struct mq_stats st;
	double drain_end = tp_now_s() + DRAIN_DEADLINE_S;
	while (!reason[0]) {
		if (mq_stats(tp.q, &st) == 0 && st.depth == 0)
			break;
		if (tp_now_s() > drain_end) {
			snprintf(reason, sizeof(reason),
			         "wedged: consumers did not drain the queue within %d s (depth "
			         "%" PRIu64 ")",
			         DRAIN_DEADLINE_S, st.depth);
			break;
		}
		sleep_us(2000);
	}
	tp.phase = "waiting for consumers to stop";
	atomic_store(&sh->stop_consumers, 1);
	if (wait_role(&t, CONSUMER, STOP_DEADLINE_S) != 0 && !reason[0])
		snprintf(reason, sizeof(reason),
		         "wedged: consumers did not stop within %d s of being told",
		         STOP_DEADLINE_S);
	tp_kill_children(); /* after a deadline above; a no-op otherwise */

	tp.phase = "final drain and round trip";
	if (!reason[0]) {
		int32_t *last = new_last();
		unsigned char buf[MAX_MSG];
		ssize_t r;
		while ((r = mq_recv(tp.q, buf, sizeof(buf), 0)) >= 0) {
			record_msg("parent drain", buf, (size_t)r, last);
			t.parent_drained++;
		}
		if (errno != EAGAIN)
			snprintf(reason, sizeof(reason), "parent drain: mq_recv: %s (%s)",
			         strerror(errno), mq_errdetail());
		free(last);
	}
	if (!reason[0])
		final_roundtrip(reason, sizeof(reason));
	double secs = tp_now_s() - t0;
	memset(&st, 0, sizeof(st));
	mq_stats(tp.q, &st);

	tp.phase = "verifying";
	verify(&t);
	uint64_t dup = atomic_load(&sh->duplicates), corrupt = atomic_load(&sh->corrupt);
	uint64_t order = atomic_load(&sh->order_errors), errs = atomic_load(&sh->errors);
	uint64_t attach_failures = atomic_load(&sh->attach_failures);
	if (!reason[0] && t.first_death[0])
		snprintf(reason, sizeof(reason),
		         "%" PRIu64 " unexpected child deaths; first: %s%s%s", t.unexpected_deaths,
		         t.first_death, sh->have_detail ? "; first error: " : "",
		         sh->have_detail ? sh->detail : "");
	if (!reason[0] && (dup || corrupt || order || errs || attach_failures))
		snprintf(reason, sizeof(reason),
		         "duplicates %" PRIu64 ", corrupt %" PRIu64 ", order errors %" PRIu64
		         ", libmq errors %" PRIu64 ", attach failures %" PRIu64 "; first: %s",
		         dup, corrupt, order, errs, attach_failures, sh->detail);
	if (!reason[0] && t.phantoms)
		snprintf(reason, sizeof(reason), "%" PRIu64 " phantom messages; first: %s",
		         t.phantoms, t.first_phantom);
	if (!reason[0] && t.losses > t.kills[CONSUMER])
		snprintf(reason, sizeof(reason),
		         "%" PRIu64 " confirmed messages lost (%" PRIu64 " long, %" PRIu64
		         " short), more than the %" PRIu64 " consumer kills; first: %s",
		         t.losses, t.long_losses, t.short_losses, t.kills[CONSUMER], t.first_loss);
	if (!reason[0] && st.depth != 0)
		snprintf(reason, sizeof(reason),
		         "stats: depth %" PRIu64 " after the queue was emptied", st.depth);
	if (!reason[0] && t.delivered == 0)
		snprintf(reason, sizeof(reason), "no message was delivered at all");

	/* Clean up now, and check that nothing is left in /dev/shm. */
	mq_detach(tp.q);
	tp.q = NULL;
	if (mq_remove(tp.qname) != 0 && !reason[0])
		snprintf(reason, sizeof(reason), "mq_remove(%s): %s", tp.qname, strerror(errno));
	tp.qname[0] = '\0';
	if (access(tp.shm_path, F_OK) == 0 && !reason[0])
		snprintf(reason, sizeof(reason), "%s still exists after mq_remove", tp.shm_path);

	printf("prog_chaos: stats: enqueued %" PRIu64 ", dequeued %" PRIu64 ", depth %" PRIu64
	       ", high water %" PRIu64 ", blocked sends %" PRIu64 ", blocked recvs %" PRIu64
	       ", lock repairs %" PRIu64 ", recoveries %" PRIu64 "\n",
	       st.enqueued_total, st.dequeued_total, st.depth, st.high_water,
	       st.blocked_sends_total, st.blocked_recvs_total, st.lock_repairs_total,
	       st.recoveries_total);
	printf("prog_chaos: kills=%" PRIu64 " (producers %" PRIu64 ", consumers %" PRIu64
	       ", while starting %" PRIu64 ") producer incarnations=%u confirmed=%" PRIu64
	       " delivered=%" PRIu64 " (%" PRIu64 " during the kill phase of %.2f s, %" PRIu64
	       " in flight at a kill, %" PRIu64 " drained by the parent) losses=%" PRIu64
	       " duplicates=%" PRIu64 " corrupt=%" PRIu64 " phantoms=%" PRIu64
	       " lock_repairs=%" PRIu64 " recoveries=%" PRIu64 " seconds=%.2f %s%s\n",
	       t.kills[PRODUCER] + t.kills[CONSUMER], t.kills[PRODUCER], t.kills[CONSUMER],
	       t.attach_kills, next_id, t.confirmed, t.delivered, recv_at_stop, kill_secs,
	       t.inflight_delivered, t.parent_drained, t.losses, dup, corrupt, t.phantoms,
	       st.lock_repairs_total, st.recoveries_total, secs, reason[0] ? "FAIL: " : "PASS",
	       reason);
	if (reason[0])
		printf("prog_chaos: reproduce the schedule with MQ_TEST_SEED=0x%" PRIx64
		       " %s %ld\n",
		       seed, argv[0], kills);
	munmap(seen, seen_size);
	munmap(confirmed, confirmed_size);
	munmap(sh, sizeof(*sh));
	return reason[0] ? 1 : 0;
}
