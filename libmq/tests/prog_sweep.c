/*
 * prog_sweep.c - a buggy peer scribbles on the segment header: every 8-byte
 * word of it (and of the entries of the attached clients) is overwritten with
 * each of a few hostile values while producers and consumers run with
 * timeouts, then restored. Passes if, in every case:
 *   - every call returned within its timeout + 1 s, no process crashed;
 *   - every call reported success, EPROTO or a timeout (nothing else);
 *   - no message was torn, and none taken twice with mq_recv or with a first
 *     delivery of a lease (redeliveries say so in deliveries);
 *   - after the restore the queue moves again within 2 s, or mq_inspect
 *     reports it damaged (then it is recreated and the sweep goes on).
 * Usage: prog_sweep [lifo]   (MQ_TEST_SCALE > 1 sweeps every other value)
 */
#include <fcntl.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/mman.h>
#include <sys/uio.h>

#include "libmq_admin.h"
#include "segment.h"
#include "testmsg.h"
#include "testprog.h"

#define PRODUCERS  2
#define CONSUMERS  2
#define TIMEOUT_MS 150
#define SEQS       (1u << 24)
#define HOSTILE_MS 25

struct shared {
	_Atomic int stop;
	_Atomic uint64_t ok[PRODUCERS + CONSUMERS];
	_Atomic uint64_t eproto, etimedout, other, overruns, corrupt, dup_plain;
	_Atomic int64_t worst_overrun_ms;
	char first_other[256];
	char last_err[PRODUCERS + CONSUMERS][160];
	char first_corrupt[256];
	char first_dup[256];
	_Atomic uint64_t case_off, case_val;    /* the case running, for the reports */
	_Atomic uint8_t taken[PRODUCERS][SEQS]; /* mq_recv or first deliveries per message */
};

static struct shared *sh;
static size_t max_msg;

static int64_t now_ms(void)
{
	return (int64_t)(tp_now_s() * 1000);
}

/* outcome: classify one call's result RC (errno ERR) that took ELAPSED ms. */
static void outcome(int who, int ok, int err, int64_t elapsed, const char *call)
{
	if (elapsed > TIMEOUT_MS + 1000) {
		atomic_fetch_add(&sh->overruns, 1);
		int64_t over = elapsed - TIMEOUT_MS, w = atomic_load(&sh->worst_overrun_ms);
		while (over > w && !atomic_compare_exchange_weak(&sh->worst_overrun_ms, &w, over))
			;
	}
	if (!ok)
		snprintf(sh->last_err[who], sizeof(sh->last_err[who]), "%s: %s", call,
		         mq_errdetail());
	if (ok)
		atomic_fetch_add(&sh->ok[who], 1);
	else if (err == EPROTO)
		atomic_fetch_add(&sh->eproto, 1),
		        usleep(1000); /* no busy loop on a damaged queue */
	else if (err == ETIMEDOUT)
		atomic_fetch_add(&sh->etimedout, 1);
	else if (atomic_fetch_add(&sh->other, 1) == 0)
		snprintf(sh->first_other, sizeof(sh->first_other),
		         "%s: %s (%s), during the case offset %llu value 0x%llx", call,
		         strerror(err), mq_errdetail(),
		         (unsigned long long)atomic_load(&sh->case_off),
		         (unsigned long long)atomic_load(&sh->case_val));
}

static void producer(int id)
{
	tp_child_setup();
	mq_t *q = mq_attach(tp.qname);
	if (!q)
		_exit(3);
	unsigned char buf[4][256];
	uint64_t rnd = (uint64_t)id * 7919 + 1;
	for (uint32_t seq = 0; !atomic_load(&sh->stop) && seq + 4 < SEQS;) {
		size_t len = HDR + splitmix64(&rnd) % (sizeof(buf[0]) - HDR);
		int how = (int)(splitmix64(&rnd) % 3);
		int64_t t0 = now_ms();
		int ok, err = 0;
		if (how == 0) {
			build_msg(buf[0], (uint32_t)id, seq, len);
			ok = mq_send(q, buf[0], len, TIMEOUT_MS) == 0;
			err = errno;
			seq++;
			outcome(id, ok, err, now_ms() - t0, "mq_send");
		} else if (how == 1) {
			struct iovec v[4];
			for (int i = 0; i < 4; i++) {
				build_msg(buf[i], (uint32_t)id, seq + (uint32_t)i, len);
				v[i].iov_base = buf[i];
				v[i].iov_len = len;
			}
			int k = mq_send_batch(q, v, 4, TIMEOUT_MS);
			err = errno;
			seq += k > 0 ? (uint32_t)k : 4;
			outcome(id, k > 0, err, now_ms() - t0, "mq_send_batch");
		} else {
			void *p = mq_reserve(q, len, TIMEOUT_MS);
			err = errno;
			if (p) {
				build_msg(p, (uint32_t)id, seq, len);
				ok = mq_commit(q, p, len) == 0;
				err = errno;
				/* A reservation stands until committed or cancelled: a
				 * program that keeps going must settle it. */
				for (int tries = 0; !ok && tries < 50; tries++) {
					if (mq_cancel(q, p) == 0 || errno == EINVAL)
						break;
					usleep(10000);
				}
			} else {
				ok = 0;
			}
			seq++;
			outcome(id, ok, err, now_ms() - t0, "mq_reserve/mq_commit");
		}
	}
	mq_detach(q);
	_exit(0);
}

/* delivered: record a verified delivery; FIRST: an mq_recv or a lease's first delivery. */
static void delivered(const unsigned char *buf, size_t len, int first)
{
	uint32_t id, seq, hlen;
	const char *why = len < HDR ? "shorter than a header"
	                            : msg_verify(buf, len, PRODUCERS, SEQS, &id, &seq, &hlen);
	if (why) {
		if (atomic_fetch_add(&sh->corrupt, 1) == 0)
			snprintf(sh->first_corrupt, sizeof(sh->first_corrupt), "%s (%zu bytes)",
			         why, len);
		return;
	}
	if (first && atomic_fetch_add(&sh->taken[id][seq], 1) != 0 &&
	    atomic_fetch_add(&sh->dup_plain, 1) == 0)
		snprintf(sh->first_dup, sizeof(sh->first_dup),
		         "message %u/%u taken twice, during the case offset %llu value 0x%llx", id,
		         seq, (unsigned long long)atomic_load(&sh->case_off),
		         (unsigned long long)atomic_load(&sh->case_val));
}

static void consumer(int who)
{
	tp_child_setup();
	mq_t *q = mq_attach(tp.qname);
	if (!q)
		_exit(3);
	unsigned char *buf = malloc(max_msg);
	for (unsigned n = 0; !atomic_load(&sh->stop); n++) {
		int64_t t0 = now_ms();
		if (n % 2 == 0) {
			ssize_t len = mq_recv(q, buf, max_msg, TIMEOUT_MS);
			int err = errno;
			if (len >= 0)
				delivered(buf, (size_t)len, 1);
			outcome(who, len >= 0, err, now_ms() - t0, "mq_recv");
		} else {
			mq_lease_t l;
			ssize_t len = mq_recv_lease(q, buf, max_msg, TIMEOUT_MS, &l);
			int err = errno;
			if (len >= 0) {
				int acked = mq_ack(q, &l) == 0;
				err = errno;
				/* A lease stands until acked or nacked: a program that
				 * keeps going must settle it (if the ack never works, the
				 * message comes back when we detach). */
				for (int tries = 0; !acked && err == EPROTO && tries < 50;
				     tries++) {
					usleep(10000);
					acked = mq_ack(q, &l) == 0;
					if (!acked && errno == EINVAL)
						break;
				}
				if (acked)
					delivered(buf, (size_t)len, l.deliveries == 1);
				outcome(who, acked, err, now_ms() - t0, "mq_recv_lease/mq_ack");
			} else {
				outcome(who, 0, err, now_ms() - t0, "mq_recv_lease");
			}
		}
	}
	free(buf);
	mq_detach(q);
	_exit(0);
}

static void start_children(void)
{
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
		pid_t pid = fork();
		if (pid == 0) {
			if (i < PRODUCERS)
				producer(i);
			consumer(i);
		}
		tp.kids[i] = pid;
	}
}

/* stop_children: let the children finish their calls and exit; fail on a crash. */
static int stop_children(void)
{
	atomic_store(&sh->stop, 1);
	int bad = 0;
	for (int i = 0; i < PRODUCERS + CONSUMERS; i++) {
		int st;
		if (tp.kids[i] <= 0)
			continue;
		waitpid(tp.kids[i], &st, 0);
		tp.kids[i] = 0;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			printf("%s: child %d %s %d\n", tp.prog, i,
			       WIFSIGNALED(st) ? "killed by signal" : "exited with",
			       WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st));
			bad = 1;
		}
	}
	atomic_store(&sh->stop, 0);
	return bad;
}

static uint64_t progress(int from, int to)
{
	uint64_t n = UINT64_MAX;
	for (int i = from; i < to; i++) {
		uint64_t v = atomic_load(&sh->ok[i]);
		n = v < n ? v : n;
	}
	return n;
}

/* moves_again: whether producers and consumers both make progress within MS. */
static int moves_again(int ms)
{
	uint64_t p0 = progress(0, PRODUCERS), c0 = progress(PRODUCERS, PRODUCERS + CONSUMERS);
	for (int64_t end = now_ms() + ms; now_ms() < end;) {
		if (progress(0, PRODUCERS) > p0 && progress(PRODUCERS, PRODUCERS + CONSUMERS) > c0)
			return 1;
		usleep(2000);
	}
	return 0;
}

int main(int argc, char **argv)
{
	int lifo = argc > 1 && !strcmp(argv[1], "lifo");
	max_msg = lifo ? 65536 : 256;
	size_t capacity = lifo ? 8 : 64;
	sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED)
		return 2;
	if (!tp_start("prog_sweep", lifo ? "sweepl" : "sweep", capacity, max_msg, 900,
	              "wedged: the sweep did not finish in 900 s"))
		return 1;
	mq_detach(tp.q);
	tp.q = NULL;
	int step = tp_scale_factor() < 1 ? 2 : 1;
	const uint64_t values[] = {0, ~UINT64_C(0), UINT64_C(1) << 62, (uint64_t)getpid()};
	/* The header up to the client table, and the entries the children use. */
	size_t words_end = offsetof(struct mq_shm, clients) +
	                   (PRODUCERS + CONSUMERS) * sizeof(struct mq_client_slot);
	unsigned cases = 0, recovered = 0, damaged_after = 0, failures = 0;
	int fd = -1;
	_Atomic uint64_t *map = NULL;
	int need_queue = 0;

	fd = open(tp.shm_path, O_RDWR);
	map = mmap(NULL, words_end, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	start_children();
	if (!moves_again(3000)) {
		printf("prog_sweep: FAIL: the queue does not move before any scribble\n");
		return 1;
	}
	const char *only = getenv("MQ_SWEEP_OFFSET"); /* one offset, to debug */
	for (size_t off = only ? (size_t)atoi(only) : 0; off < words_end;
	     off += only ? words_end : 8) {
		for (size_t v = 0; v < sizeof(values) / sizeof(values[0]); v += (size_t)step) {
			if (need_queue) {
				/* Left damaged: a new queue for the rest of the sweep. */
				failures += stop_children();
				munmap((void *)map, words_end);
				close(fd);
				mq_remove(tp.qname);
				mq_t *q = mq_create(tp.qname, capacity, max_msg, 0600);
				if (!q)
					return 1;
				mq_detach(q);
				fd = open(tp.shm_path, O_RDWR);
				map = mmap(NULL, words_end, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
				           0);
				memset((void *)sh->taken, 0, sizeof(sh->taken));
				start_children();
				need_queue = 0;
				if (!moves_again(3000)) {
					printf("prog_sweep: FAIL: a new queue does not move\n");
					return 1;
				}
			}
			_Atomic uint64_t *w = &map[off / 8];
			uint64_t hostile = values[v];
			atomic_store(&sh->case_off, off);
			atomic_store(&sh->case_val, hostile);
			uint64_t saved = atomic_exchange(w, hostile);
			usleep(HOSTILE_MS * 1000);
			/* Restore it unless a process changed it meanwhile (a lock word
			 * taken over, say). */
			atomic_compare_exchange_strong(w, &hostile, saved);
			cases++;
			if (moves_again(2000)) {
				recovered++;
				continue;
			}
			mq_t *o = mq_observe(tp.qname);
			struct mq_inspection in;
			int sound = o && mq_inspect(o, &in) == 0 && in.sound;
			if (o)
				mq_detach(o);
			if (sound) {
				printf("prog_sweep: FAIL: offset %zu, value 0x%016" PRIx64
				       ": the queue neither moves nor reports damage after the "
				       "restore\n",
				       off, values[v]);
				if (o)
					printf("prog_sweep:   chunks %" PRIu64 " free %" PRIu64
					       " queued %" PRIu64 " requeued %" PRIu64
					       " leased %" PRIu64 " writing %" PRIu64
					       " taking %" PRIu64 " orphaned; head %" PRIu64
					       " tail %" PRIu64 " pool %" PRIu64 "..%" PRIu64 "\n",
					       in.chunks_free, in.chunks_queued, in.chunks_requeued,
					       in.chunks_leased, in.chunks_writing,
					       in.chunks_taking, in.chunks_orphaned, in.head,
					       in.tail, in.pool_head, in.pool_tail);
				for (int i = 0; i < PRODUCERS + CONSUMERS; i++)
					printf("prog_sweep:   %s %d: %" PRIu64
					       " ok, last error %s\n",
					       i < PRODUCERS ? "producer" : "consumer", i,
					       atomic_load(&sh->ok[i]), sh->last_err[i]);
				failures++;
			} else {
				damaged_after++;
				printf("prog_sweep: offset %zu value 0x%016" PRIx64
				       ": left damaged after the restore: %s\n",
				       off, values[v], o ? in.problem : mq_errdetail());
			}
			need_queue = 1;
		}
	}
	failures += stop_children();
	munmap((void *)map, words_end);
	close(fd);
	printf("prog_sweep: %s: %u cases (%zu words x %zu values), %u moved again, %u left "
	       "damaged (reported); calls: %" PRIu64 " EPROTO, %" PRIu64 " timed out, %" PRIu64
	       " other, %" PRIu64 " over their timeout + 1 s (worst +%" PRId64 " ms), %" PRIu64
	       " corrupt, %" PRIu64 " taken twice\n",
	       lifo ? "lifo" : "fifo", cases, words_end / 8,
	       sizeof(values) / sizeof(values[0]) / step, recovered, damaged_after,
	       atomic_load(&sh->eproto), atomic_load(&sh->etimedout), atomic_load(&sh->other),
	       atomic_load(&sh->overruns), atomic_load(&sh->worst_overrun_ms),
	       atomic_load(&sh->corrupt), atomic_load(&sh->dup_plain));
	if (atomic_load(&sh->other))
		printf("prog_sweep: first unexpected outcome: %s\n", sh->first_other);
	if (atomic_load(&sh->corrupt))
		printf("prog_sweep: first corrupt message: %s\n", sh->first_corrupt);
	if (atomic_load(&sh->dup_plain))
		printf("prog_sweep: first duplicate: %s\n", sh->first_dup);
	int pass = !failures && !atomic_load(&sh->other) && !atomic_load(&sh->overruns) &&
	           !atomic_load(&sh->corrupt) && !atomic_load(&sh->dup_plain);
	printf("prog_sweep: %s\n", pass ? "PASS" : "FAIL");
	return pass ? 0 : 1;
}
