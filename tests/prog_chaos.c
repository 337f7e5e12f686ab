/* prog_chaos.c - SIGKILL producers and consumers at random: no wedge, loss, duplicate or
 * corruption. */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libmq.h"
#include "libmq_admin.h"
#include "testmsg.h"
#include "testprog.h"

/*
 * Two modes, each in two geometries (FIFO: capacity 32 x 512 bytes; --lifo:
 * capacity 16 x 64 KiB, the large-message code path):
 *
 * plain (take and retire): producers mq_send, consumers mq_recv (--poll: every
 *   other consumer waits in epoll on mq_pollfd and takes with timeout 0). A message
 *   whose mq_send returned 0 is received once, intact, in each producer's
 *   order; one may be lost per consumer kill (taken by a consumer killed
 *   before it recorded it, as the contract allows for mq_recv).
 *
 * --lease (at-least-once): producers mq_send, mq_reserve/mq_commit (now and
 *   then mq_cancel) and mq_send_batch; consumers take one or two messages at
 *   a time with mq_recv_lease (copying) or mq_peek (in place), verify them,
 *   and mq_ack them (one in 16 is mq_nack'ed instead). Nothing may be lost:
 *   every message whose send, commit or batch returned success is acked by
 *   someone in the end. A consumer records a delivery (with the lease's
 *   deliveries and id) before it settles it, marks "acking" before mq_ack and
 *   "acked" once mq_ack returned 0, all in the parent's shared result area,
 *   so kills lose nothing of the record:
 *    - a delivery of a message already acked is a duplicate after ack;
 *    - deliveries must rise from one recorded delivery of a message to the
 *      next (two first deliveries, or a redelivery that did not count, fail);
 *      a message recorded more than once is a duplicate, allowed because its
 *      holder died or nacked, and it shows deliveries > 1;
 *    - a lease id is the same on every delivery of a message, and no two
 *      messages share one;
 *    - a message mq_peek returned must not change until it is settled;
 *    - when mq_ack returns 0, nobody else may have recorded a delivery of
 *      the message since ours (two live holders at once);
 *    - an ack whose consumer was killed between "acking" and "acked" is
 *      uncertain (there may be at most one per consumer kill): the message
 *      was acked or it came back and someone else acked it.
 *
 * Both modes: every call returns within its timeout + 1 s (scaled by
 * MQ_TEST_SCALE); the run ends (no wedge): producers and consumers stop when
 * told, the queue drains, a final send and receive work; at the end the
 * segment is sound (mq_inspect) with every chunk free. The kill schedule
 * (when, whom) comes from MQ_TEST_SEED; so do the sizes and the choices of
 * calls, per process incarnation.
 */

#define NPROD  4
#define NCONS  4
#define NCHILD (NPROD + NCONS)
_Static_assert(NCHILD <= TP_MAX_CHILDREN, "the harness tracks at most TP_MAX_CHILDREN");
#define FIFO_CAPACITY         32
#define FIFO_MAX_MSG          512
#define LIFO_CAPACITY         16
#define LIFO_MAX_MSG          65536      /* >= 64 KiB: a LIFO segment */
#define SEQ_MAX               (1u << 16) /* messages per producer incarnation; then it idles */
#define SEQ_WORDS             (SEQ_MAX / 64)
#define DEFAULT_KILLS         400
#define MIN_KILLS             200
#define DEFAULT_LEASE_SECONDS 6.0 /* the lease mode's kill phase (ctest asks for 20 s) */
#ifndef DEADLINE_S
#define DEADLINE_S 240 /* the whole test */
#endif
#define STOP_DEADLINE_S  20 /* producers or consumers to stop once told */
#define DRAIN_DEADLINE_S 30 /* consumers to empty the queue */
#define SEND_TIMEOUT_MS  100
#define RECV_TIMEOUT_MS  50
#define BATCH_MAX        8          /* lease mode: messages per mq_send_batch */
#define HOLD_MAX         2          /* lease mode: leases a consumer holds at once */
#define NACK_ONE_IN      16         /* lease mode: the share of deliveries nacked */
#define LID_MAX          (1u << 24) /* lease ids checked for uniqueness */
#define CALL_SLACK_MS    1000       /* a call returns within its timeout + this (x scale) */

enum role { PRODUCER, CONSUMER };

/* struct shared: flags and counters of the results area, mapped before any fork. */
struct shared {
	_Atomic int stop_producers;
	_Atomic int stop_consumers;
	_Atomic uint64_t received; /* messages recorded by consumers (progress only) */
	_Atomic uint64_t corrupt;
	_Atomic uint64_t duplicates;   /* plain: a second receipt; lease: recorded again */
	_Atomic uint64_t order_errors; /* plain mode */
	_Atomic uint64_t errors;       /* unexpected libmq failures in children */
	_Atomic uint64_t attach_failures;
	_Atomic uint64_t slow_calls; /* calls that overran their timeout + slack */
	_Atomic int64_t max_over_us; /* the largest overrun seen (may be negative) */
	/* Lease mode. */
	_Atomic uint64_t first_deliveries, redeliveries, acks, nacks, cancels;
	_Atomic uint64_t dup_after_ack;      /* delivered again after its ack was recorded */
	_Atomic uint64_t deliveries_regress; /* deliveries did not rise */
	_Atomic uint64_t lease_id_errors;    /* a message's lease id changed, or two share one */
	_Atomic uint64_t changed_while_leased;
	_Atomic uint64_t two_holders; /* recorded by another while our lease stood */
	_Atomic uint64_t bad_leases;  /* lease fields that do not fit the message */
	_Atomic uint32_t consumer_incarnations;
	_Atomic int have_detail;
	char detail[512]; /* first failure seen by any process */
	_Atomic uint64_t short_recv[HDR];
};

/* Lease mode: what happened to one message, in struct msgrec.st. */
#define MR_MAXD_MASK   0xffffu /* the highest deliveries recorded */
#define MR_COUNT_SHIFT 16      /* deliveries recorded (8 bits, saturating) */
#define MR_COUNT_ONE   (1u << MR_COUNT_SHIFT)
#define MR_COUNT_MASK  (0xffu << MR_COUNT_SHIFT)
#define MR_ACKING      (1u << 24) /* a consumer is about to call mq_ack */
#define MR_ACKED       (1u << 25) /* mq_ack returned 0 */
#define MR_NACKED      (1u << 26) /* mq_nack returned 0 (at least once) */

struct msgrec {
	_Atomic uint32_t st;
	_Atomic uint32_t lid; /* the lease id of its deliveries (low 32 bits), 0: none yet */
};

/* struct child: one live child process. */
struct child {
	enum role role; /* (its pid is tp.kids[] of the same index) */
	uint32_t id;    /* producer incarnation id (producers only) */
};

/* The run's parameters. */
static int lease_mode, lifo, poll_mode;
static size_t capacity, max_msg;
static int slack_ms;

static struct shared *sh;
static _Atomic int64_t *confirmed;  /* [max_ids]: last seq whose send returned success, or -1 */
static _Atomic int64_t *attempted;  /* [max_ids]: highest seq handed to a send call, or -1 */
static _Atomic int64_t *highest;    /* [max_ids] lease mode: highest seq recorded */
static _Atomic uint64_t *seen;      /* [max_ids][SEQ_WORDS] plain mode: bitmap of received seqs */
static struct msgrec *recs;         /* [max_ids][SEQ_MAX] lease mode */
static _Atomic uint32_t *lid_owner; /* [LID_MAX] lease mode: 1 + the message with that lease id */
static size_t ids_size, seen_size, recs_size, lid_size;
static uint32_t max_ids, next_id;
static uint64_t seed;
static struct child kids[NCHILD];
static mq_t *volatile child_q; /* a child's handle, for its SIGUSR1 handler */

/* ---- shared by both modes ---------------------------------------------------- */

/* size_rng: the PRNG state that draws the message sizes of producer incarnation ID. */
static uint64_t size_rng(uint32_t id)
{
	uint64_t s = seed ^ (UINT64_C(0xa0761d6478bd642f) * ((uint64_t)id + 1));
	return splitmix64(&s);
}

/* next_len: plain mode: the size of a producer's next message: often 0, the
 * maximum or short, and in a LIFO segment mostly up to 4 KiB. */
static size_t next_len(uint64_t *rng)
{
	uint64_t r = splitmix64(rng);
	size_t common = lifo ? 4096 : max_msg;
	switch (r & 7) {
	case 0:
		return 0;
	case 1:
		return max_msg;
	case 2:
		return (size_t)((r >> 3) % HDR);
	case 3:
		return (size_t)((r >> 3) % (max_msg + 1));
	default:
		return (size_t)((r >> 3) % (common + 1));
	}
}

/* record_detail: keep the first failure description of any process (printf-style). */
__attribute__((format(printf, 1, 2))) static void record_detail(const char *fmt, ...)
{
	int expected = 0;
	if (atomic_compare_exchange_strong(&sh->have_detail, &expected, 1)) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(sh->detail, sizeof(sh->detail), fmt, ap);
		va_end(ap);
	}
}

/* child_error: an unexpected libmq failure of call CALL in child WHO: record it and exit. */
static _Noreturn void child_error(const char *who, const char *call, int e)
{
	const char *name = strerrorname_np(e);
	atomic_fetch_add(&sh->errors, 1);
	record_detail("%s: %s: errno %d %s (%s)", who, call, e, name ? name : "(not an errno)",
	              mq_errdetail());
	_exit(3);
}

/* benign: a failure a chaos child expects and retries (nothing happened). */
static int benign(int e)
{
	return e == ETIMEDOUT || e == EAGAIN || e == EINTR;
}

/* check_time: a call CALL of WHO that started at T0 (tp_now_s) with TIMEOUT_MS must
 * have returned within its timeout (0 for calls without one) + slack_ms. */
static void check_time(const char *who, const char *call, int timeout_ms, double t0)
{
	double ms = (tp_now_s() - t0) * 1e3;
	int64_t over_us = (int64_t)((ms - (timeout_ms > 0 ? timeout_ms : 0)) * 1e3);
	int64_t cur = atomic_load(&sh->max_over_us);
	while (over_us > cur && !atomic_compare_exchange_weak(&sh->max_over_us, &cur, over_us)) {
	}
	if (over_us > (int64_t)slack_ms * 1000) {
		atomic_fetch_add(&sh->slow_calls, 1);
		record_detail("%s: %s with timeout %d ms returned after %.0f ms", who, call,
		              timeout_ms, ms);
	}
}

static void on_usr1(int sig)
{
	(void)sig;
	mq_t *q = child_q;
	if (q)
		mq_interrupt(q); /* async-signal-safe: the blocked call returns EINTR */
}

/* child_setup: common start of a child: default signals, die with the parent,
 * SIGUSR1 (blocked in the parent, so none is lost before this) interrupts its calls. */
static void child_setup(void)
{
	tp_child_setup();
	/* The parent must keep its kill schedule while 8 children compete for the CPUs. */
	if (nice(5) < 0) {
		/* not essential */
	}
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_usr1; /* no SA_RESTART: a signal cuts a wait short */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_UNBLOCK, &usr1, NULL);
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
	child_q = q;
	return q;
}

/* xmalloc: malloc or exit (in a child: counted as an error). */
static void *xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p) {
		record_detail("malloc(%zu) failed", n);
		_exit(3);
	}
	return p;
}

/* raise_attempted: the producer of ID (the only writer) is about to hand seq LAST to a call. */
static void raise_attempted(uint32_t id, int64_t last)
{
	if (last > atomic_load(&attempted[id]))
		atomic_store(&attempted[id], last);
}

/* child_detach: detach Q with SIGUSR1 blocked and the handler's handle gone
 * first: a stop signal landing in or after mq_detach must not mq_interrupt a
 * freed handle. */
static void child_detach(mq_t *q)
{
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);
	child_q = NULL;
	mq_detach(q);
}

/* idle_until_stopped: a producer that sent all it may waits to be killed or stopped. */
static _Noreturn void idle_until_stopped(mq_t *q)
{
	while (!atomic_load(&sh->stop_producers)) {
		struct timespec ts = {0, 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	child_detach(q);
	_exit(0);
}

/* ---- plain mode: mq_send, mq_recv ------------------------------------------- */

/* producer: incarnation ID sends seq 0, 1, ... until told to stop, publishing each
 * confirmed seq; never returns. */
static _Noreturn void producer(uint32_t id)
{
	child_setup();
	mq_t *q = child_attach("producer", id);
	char who[32];
	snprintf(who, sizeof(who), "producer %u", id);
	uint64_t rng = size_rng(id);
	unsigned char *buf = xmalloc(max_msg);
	uint32_t seq = 0;
	size_t len = next_len(&rng);
	build_msg(buf, id, seq, len);
	while (!atomic_load(&sh->stop_producers)) {
		if (seq == SEQ_MAX) /* sent all it may */
			idle_until_stopped(q);
		raise_attempted(id, seq);
		double t0 = tp_now_s();
		int rc = mq_send(q, buf, len, SEND_TIMEOUT_MS);
		check_time(who, "mq_send", SEND_TIMEOUT_MS, t0);
		if (rc != 0) {
			if (benign(errno))
				continue; /* nothing was queued: send the same message again */
			child_error(who, "mq_send", errno);
		}
		atomic_store(&confirmed[id], (int64_t)seq);
		if (++seq < SEQ_MAX) {
			len = next_len(&rng);
			build_msg(buf, id, seq, len);
		}
	}
	child_detach(q);
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
	int32_t *last = xmalloc(sizeof(*last) * max_ids);
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
	unsigned char *buf = xmalloc(max_msg);
	/* --poll: odd consumers wait in epoll on mq_pollfd and drain with
	 * timeout 0 (killed too: their watcher threads die with them). */
	int ep = -1;
	if (poll_mode && (n & 1)) {
		int fd = mq_pollfd(q, MQ_POLLIN);
		struct epoll_event ev = {.events = EPOLLIN};
		if (fd < 0)
			child_error(who, "mq_pollfd", errno);
		if ((ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev))
			child_error(who, "epoll", errno);
	}
	while (!atomic_load(&sh->stop_consumers)) {
		double t0 = tp_now_s();
		ssize_t r = mq_recv(q, buf, max_msg, ep >= 0 ? 0 : RECV_TIMEOUT_MS);
		check_time(who, "mq_recv", RECV_TIMEOUT_MS, t0);
		if (r < 0 && ep >= 0 && errno == EAGAIN) {
			/* Drained: the descriptor wakes us for the next message. */
			struct epoll_event got;
			t0 = tp_now_s();
			if (epoll_wait(ep, &got, 1, RECV_TIMEOUT_MS) < 0 && errno != EINTR)
				child_error(who, "epoll_wait", errno);
			check_time(who, "epoll_wait", RECV_TIMEOUT_MS, t0);
			continue;
		}
		if (r < 0) {
			if (benign(errno))
				continue;
			child_error(who, "mq_recv", errno);
		}
		if ((size_t)r > max_msg) {
			atomic_fetch_add(&sh->corrupt, 1);
			record_detail("%s: mq_recv returned %zd > capacity %zu", who, r, max_msg);
			_exit(3);
		}
		record_msg(who, buf, (size_t)r, last);
	}
	child_detach(q);
	_exit(0);
}

/* ---- lease mode: send, reserve/commit, batches; leases, acks, nacks ----------- */

/* lease_len: the size of message SEQ of producer ID (at least HDR: every message
 * names itself); in a LIFO segment mostly up to 2 KiB, now and then the maximum. */
static size_t lease_len(uint32_t id, uint32_t seq)
{
	uint64_t s = seed ^ (((uint64_t)id << 32 | seq) * UINT64_C(0x9fb21c651e98df25));
	uint64_t r = splitmix64(&s);
	size_t span = max_msg - HDR, common = span < 2048 ? span : 2048;
	switch (r & 7) {
	case 0:
		return HDR;
	case 1:
		return max_msg;
	case 2:
		return HDR + (size_t)((r >> 3) % (span + 1));
	default:
		return HDR + (size_t)((r >> 3) % (common + 1));
	}
}

static const int send_timeouts[4] = {0, 20, 100, 300};

/* lease_producer: incarnation ID sends seq 0, 1, ... with mq_send, mq_reserve +
 * mq_commit (or mq_cancel) and mq_send_batch until told to stop; never returns. */
static _Noreturn void lease_producer(uint32_t id)
{
	child_setup();
	mq_t *q = child_attach("producer", id);
	char who[32];
	snprintf(who, sizeof(who), "producer %u", id);
	uint64_t rng = size_rng(id) ^ UINT64_C(0x3c6ef372fe94f82b);
	unsigned char *buf = xmalloc(BATCH_MAX * max_msg);
	struct iovec iov[BATCH_MAX];
	uint32_t seq = 0;
	while (!atomic_load(&sh->stop_producers)) {
		if (seq == SEQ_MAX)
			idle_until_stopped(q);
		uint64_t r = splitmix64(&rng);
		int tmo = send_timeouts[r & 3];
		unsigned how = (r >> 2) & 7;
		r >>= 5;
		double t0;
		if (how < 4) {
			size_t len = lease_len(id, seq);
			build_msg(buf, id, seq, len);
			raise_attempted(id, seq);
			t0 = tp_now_s();
			int rc = mq_send(q, buf, len, tmo);
			check_time(who, "mq_send", tmo, t0);
			if (rc != 0) {
				if (benign(errno))
					continue;
				child_error(who, "mq_send", errno);
			}
			atomic_store(&confirmed[id], (int64_t)seq++);
		} else if (how < 6) {
			/* Zero-copy: reserve a little more room than needed now and
			 * then, write the message in place, commit what is used. */
			size_t len = lease_len(id, seq);
			size_t room =
			        len + (size_t)(r % 64) < max_msg ? len + (size_t)(r % 64) : max_msg;
			raise_attempted(id, seq);
			t0 = tp_now_s();
			unsigned char *p = mq_reserve(q, room, tmo);
			check_time(who, "mq_reserve", tmo, t0);
			if (!p) {
				if (benign(errno))
					continue;
				child_error(who, "mq_reserve", errno);
			}
			if ((uintptr_t)p % 64 != 0) {
				atomic_fetch_add(&sh->errors, 1);
				record_detail("%s: mq_reserve returned %p, not 64-byte aligned",
				              who, (void *)p);
				_exit(3);
			}
			build_msg(p, id, seq, len);
			int rc, cancel = (r >> 6) % 16 == 0;
			t0 = tp_now_s();
			/* EINTR leaves the reservation standing: call again. */
			while ((rc = cancel ? mq_cancel(q, p) : mq_commit(q, p, len)) != 0 &&
			       errno == EINTR) {
			}
			check_time(who, cancel ? "mq_cancel" : "mq_commit", 0, t0);
			if (rc != 0)
				child_error(who, cancel ? "mq_cancel" : "mq_commit", errno);
			if (cancel)
				atomic_fetch_add(&sh->cancels, 1); /* not sent: seq goes again */
			else
				atomic_store(&confirmed[id], (int64_t)seq++);
		} else {
			unsigned n = 1 + (unsigned)(r % BATCH_MAX);
			if (n > SEQ_MAX - seq)
				n = SEQ_MAX - seq;
			for (unsigned i = 0; i < n; i++) {
				size_t len = lease_len(id, seq + i);
				build_msg(buf + i * max_msg, id, seq + i, len);
				iov[i].iov_base = buf + i * max_msg;
				iov[i].iov_len = len;
			}
			raise_attempted(id, (int64_t)seq + n - 1);
			t0 = tp_now_s();
			int k = mq_send_batch(q, iov, n, tmo);
			check_time(who, "mq_send_batch", tmo, t0);
			if (k < 0) {
				if (benign(errno))
					continue;
				child_error(who, "mq_send_batch", errno);
			}
			if (k == 0 || (unsigned)k > n) {
				atomic_fetch_add(&sh->errors, 1);
				record_detail("%s: mq_send_batch of %u returned %d", who, n, k);
				_exit(3);
			}
			seq += (uint32_t)k;
			atomic_store(&confirmed[id], (int64_t)seq - 1);
		}
	}
	child_detach(q);
	_exit(0);
}

/* struct held: a message a lease consumer holds. */
struct held {
	mq_lease_t lease;
	const unsigned char *msg; /* in our buffer, or in the queue's memory (peek) */
	size_t len;
	int peek;
	int known;        /* it verified: ID and SEQ name it */
	uint32_t id, seq; /* the message (when known) */
};

static struct msgrec *rec_of(uint32_t id, uint32_t seq)
{
	return &recs[(size_t)id * SEQ_MAX + seq];
}

/* record_delivery: WHO got H (verified: H->id, H->seq); check it against what was
 * recorded before and record it. */
static void record_delivery(const char *who, const struct held *h)
{
	struct msgrec *m = rec_of(h->id, h->seq);
	uint32_t d = h->lease.deliveries;
	/* One lease id per message, one message per lease id. */
	uint32_t lid = (uint32_t)h->lease.id, was = 0;
	if (!atomic_compare_exchange_strong(&m->lid, &was, lid) && was != lid) {
		atomic_fetch_add(&sh->lease_id_errors, 1);
		record_detail("%s: id %u seq %u delivered with lease id %" PRIu64
		              ", earlier with lease id %u",
		              who, h->id, h->seq, h->lease.id, was);
	}
	if (h->lease.id < LID_MAX) {
		uint32_t key = h->id * SEQ_MAX + h->seq + 1, owner = 0;
		if (!atomic_compare_exchange_strong(&lid_owner[h->lease.id], &owner, key) &&
		    owner != key) {
			atomic_fetch_add(&sh->lease_id_errors, 1);
			record_detail("%s: lease id %" PRIu64
			              " names id %u seq %u and id %u seq %u",
			              who, h->lease.id, h->id, h->seq, (owner - 1) / SEQ_MAX,
			              (owner - 1) % SEQ_MAX);
		}
	}
	uint32_t st = atomic_load(&m->st), nst;
	do {
		if (st & MR_ACKED) {
			atomic_fetch_add(&sh->dup_after_ack, 1);
			record_detail(
			        "%s: id %u seq %u delivered (deliveries %u) after its ack was "
			        "recorded",
			        who, h->id, h->seq, d);
			return;
		}
		if (d <= (st & MR_MAXD_MASK) || d > MR_MAXD_MASK) {
			atomic_fetch_add(&sh->deliveries_regress, 1);
			record_detail("%s: id %u seq %u delivered with deliveries %u after a "
			              "delivery with deliveries %u",
			              who, h->id, h->seq, d, st & MR_MAXD_MASK);
			return;
		}
		nst = (st & ~MR_MAXD_MASK) | d;
		if ((st & MR_COUNT_MASK) != MR_COUNT_MASK)
			nst += MR_COUNT_ONE;
	} while (!atomic_compare_exchange_weak(&m->st, &st, nst));
	if (st & MR_COUNT_MASK)
		atomic_fetch_add(&sh->duplicates, 1); /* allowed: its holder died or nacked */
	atomic_fetch_add(d == 1 ? &sh->first_deliveries : &sh->redeliveries, 1);
	atomic_fetch_add(&sh->received, 1);
	int64_t hi = atomic_load(&highest[h->id]);
	while ((int64_t)h->seq > hi &&
	       !atomic_compare_exchange_weak(&highest[h->id], &hi, h->seq)) {
	}
}

/* check_held: verify the message H holds (its bytes, the lease's fields); sets
 * H->known, H->id and H->seq when it names itself. */
static void check_held(const char *who, struct held *h)
{
	const mq_lease_t *l = &h->lease;
	if (l->len != h->len || l->deliveries == 0 || l->id == 0) {
		atomic_fetch_add(&sh->bad_leases, 1);
		record_detail("%s: lease of %zu bytes says len %u, deliveries %u, id %" PRIu64, who,
		              h->len, l->len, l->deliveries, l->id);
	}
	uint32_t hlen;
	const char *why =
	        h->len < HDR ? "shorter than a header"
	                     : msg_verify(h->msg, h->len, max_ids, SEQ_MAX, &h->id, &h->seq, &hlen);
	if (why) {
		atomic_fetch_add(&sh->corrupt, 1);
		record_detail("%s: corrupt message (%zu bytes, %s, lease id %" PRIu64
		              ", deliveries %u): %s",
		              who, h->len, h->peek ? "mq_peek" : "mq_recv_lease", l->id,
		              l->deliveries, why);
		return;
	}
	h->known = 1;
	record_delivery(who, h);
}

/* settle: ack H (or nack it when NACK), marking the record around mq_ack. */
static void settle(const char *who, mq_t *q, struct held *h, int nack)
{
	uint32_t id, seq, hlen;
	if (h->peek && h->known &&
	    msg_verify(h->msg, h->len, max_ids, SEQ_MAX, &id, &seq, &hlen) != NULL) {
		atomic_fetch_add(&sh->changed_while_leased, 1);
		record_detail("%s: id %u seq %u changed in the queue's memory while leased "
		              "(mq_peek)",
		              who, h->id, h->seq);
	}
	struct msgrec *m = h->known ? rec_of(h->id, h->seq) : NULL;
	if (m && !nack)
		atomic_fetch_or(&m->st, MR_ACKING);
	double t0 = tp_now_s();
	int rc;
	while ((rc = nack ? mq_nack(q, &h->lease) : mq_ack(q, &h->lease)) != 0 && errno == EINTR) {
	}
	check_time(who, nack ? "mq_nack" : "mq_ack", 0, t0);
	if (rc != 0)
		child_error(who, nack ? "mq_nack" : "mq_ack", errno);
	atomic_fetch_add(nack ? &sh->nacks : &sh->acks, 1);
	if (!m)
		return;
	if (nack) {
		atomic_fetch_or(&m->st, MR_NACKED);
		return;
	}
	uint32_t st = atomic_fetch_or(&m->st, MR_ACKED);
	if ((st & MR_ACKED) || (st & MR_MAXD_MASK) != h->lease.deliveries) {
		atomic_fetch_add(&sh->two_holders, 1);
		record_detail("%s: id %u seq %u acked (deliveries %u), but meanwhile %s", who,
		              h->id, h->seq, h->lease.deliveries,
		              (st & MR_ACKED) ? "someone else acked it"
		                              : "someone else recorded a delivery of it");
	}
}

static const int recv_timeouts[8] = {0, 20, 50, 50, 250, 250, 250, 700};

/* lease_consumer: take one or two messages at a time with mq_recv_lease or mq_peek,
 * verify and record them, ack (or now and then nack) them; never returns. */
static _Noreturn void lease_consumer(uint32_t n)
{
	child_setup();
	mq_t *q = child_attach("consumer", n);
	char who[32];
	snprintf(who, sizeof(who), "consumer %u", n);
	uint64_t rng = seed ^ (UINT64_C(0xd6e8feb86659fd93) * ((uint64_t)n + 1));
	unsigned char *bufs = xmalloc(HOLD_MAX * max_msg);
	while (!atomic_load(&sh->stop_consumers)) {
		struct held h[HOLD_MAX];
		uint64_t r = splitmix64(&rng);
		unsigned want = 1 + (unsigned)(r % HOLD_MAX), got = 0;
		r /= HOLD_MAX;
		for (; got < want; got++, r >>= 4) {
			struct held *x = &h[got];
			memset(x, 0, sizeof(*x));
			int tmo = recv_timeouts[r & 7];
			x->peek = (r >> 3) & 1;
			double t0 = tp_now_s();
			if (x->peek) {
				x->msg = mq_peek(q, &x->len, tmo, &x->lease);
			} else {
				ssize_t k = mq_recv_lease(q, bufs + got * max_msg, max_msg, tmo,
				                          &x->lease);
				x->msg = k >= 0 ? bufs + got * max_msg : NULL;
				x->len = k >= 0 ? (size_t)k : 0;
			}
			check_time(who, x->peek ? "mq_peek" : "mq_recv_lease", tmo, t0);
			if (!x->msg) {
				if (benign(errno))
					break;
				child_error(who, x->peek ? "mq_peek" : "mq_recv_lease", errno);
			}
			check_held(who, x);
		}
		for (unsigned i = 0; i < got; i++)
			settle(who, q, &h[i], splitmix64(&rng) % NACK_ONE_IN == 0);
	}
	child_detach(q);
	_exit(0);
}

/* ---- the parent: children, the kill schedule, the drain ---------------------- */

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
	} else {
		id = atomic_fetch_add(&sh->consumer_incarnations, 1);
	}
	pid_t pid = fork();
	if (pid < 0) {
		perror("prog_chaos: fork");
		exit(1);
	}
	if (pid == 0) {
		if (role == PRODUCER)
			lease_mode ? lease_producer(id) : producer(id);
		lease_mode ? lease_consumer(id) : consumer(id);
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
	uint64_t acked, uncertain, delivered_msgs; /* lease mode: messages */
	char first_loss[160], first_phantom[160], first_death[160];
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

/* tell_stop: tell every child of ROLE to stop (the flag, then SIGUSR1 to cut its wait). */
static void tell_stop(enum role role)
{
	atomic_store(role == PRODUCER ? &sh->stop_producers : &sh->stop_consumers, 1);
	for (int i = 0; i < NCHILD; i++)
		if (tp.kids[i] > 0 && kids[i].role == role)
			kill(tp.kids[i], SIGUSR1);
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

/* verify_plain: compare what every producer incarnation confirmed with what was received. */
static void verify_plain(struct tally *t)
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

/* verify_lease: every confirmed message, and every one delivered, was acked (or
 * its consumer died acking it); nothing was delivered that was never sent. */
static void verify_lease(struct tally *t)
{
	for (uint32_t id = 0; id < next_id; id++) {
		int64_t c = atomic_load(&confirmed[id]), a = atomic_load(&attempted[id]);
		int64_t hi = atomic_load(&highest[id]), end = c > a ? c : a;
		end = hi > end ? hi : end;
		t->confirmed += (uint64_t)(c + 1);
		for (int64_t seq = 0; seq <= end; seq++) {
			uint32_t st = atomic_load(&rec_of(id, (uint32_t)seq)->st);
			uint32_t times = (st & MR_COUNT_MASK) >> MR_COUNT_SHIFT;
			t->delivered += times;
			t->delivered_msgs += times != 0;
			t->acked += (st & MR_ACKED) != 0;
			if ((st & (MR_ACKED | MR_ACKING)) == MR_ACKING)
				t->uncertain++;
			if (seq > a && st) {
				t->phantoms++;
				if (!t->first_phantom[0])
					snprintf(t->first_phantom, sizeof(t->first_phantom),
					         "id %u seq %" PRId64
					         " delivered, but only seqs up to %" PRId64
					         " were handed to a send call",
					         id, seq, a);
			}
			if ((seq <= c || times) && !(st & (MR_ACKED | MR_ACKING))) {
				t->losses++;
				if (!t->first_loss[0])
					snprintf(t->first_loss, sizeof(t->first_loss),
					         "id %u seq %" PRId64 " (confirmed up to %" PRId64
					         "): delivered %u times (highest deliveries %u)%s, "
					         "never acked",
					         id, seq, c, times, st & MR_MAXD_MASK,
					         (st & MR_NACKED) ? ", nacked" : "");
			}
		}
	}
}

/* drain_lease: the parent takes what is left with leases, records and acks it. */
static int drain_lease(struct tally *t, char *why, size_t len)
{
	unsigned char *buf = xmalloc(max_msg);
	for (;;) {
		struct held h;
		memset(&h, 0, sizeof(h));
		ssize_t r = mq_recv_lease(tp.q, buf, max_msg, 0, &h.lease);
		if (r < 0) {
			int e = errno;
			free(buf);
			if (e == EAGAIN)
				return 0;
			snprintf(why, len, "parent drain: mq_recv_lease: errno %d %s (%s)", e,
			         strerrorname_np(e) ? strerrorname_np(e) : "(not an errno)",
			         mq_errdetail());
			return -1;
		}
		h.msg = buf;
		h.len = (size_t)r;
		check_held("parent drain", &h);
		settle("parent drain", tp.q, &h, 0);
		t->parent_drained++;
	}
}

/* wait_drained: wait until nothing is queued (plain mode), or until nothing is
 * queued or leased and every chunk is free (lease mode), twice in a row. A chunk a
 * killed consumer held leased, or a killed producer had reserved, is not counted
 * anywhere once its client table entry has been claimed again: the consumers'
 * waits find and give back such chunks (no broker runs here), so wait for them. */
static int wait_drained(char *why, size_t len)
{
	struct mq_stats st;
	struct mq_inspection in;
	memset(&st, 0, sizeof(st));
	memset(&in, 0, sizeof(in));
	double end = tp_now_s() + DRAIN_DEADLINE_S;
	for (int calm = 0; calm < 2;) {
		int empty = mq_stats(tp.q, &st) == 0 && st.depth == 0;
		if (empty && lease_mode)
			empty = st.in_flight == 0 && mq_inspect(tp.q, &in) == 0 &&
			        in.chunks_free == capacity;
		calm = empty ? calm + 1 : 0;
		if (tp_now_s() > end) {
			snprintf(why, len,
			         "wedged: consumers did not drain the queue within %d s (depth "
			         "%" PRIu64 ", in flight %" PRIu64 ", chunks free %" PRIu64
			         " of %zu, orphaned %" PRIu64 ")",
			         DRAIN_DEADLINE_S, st.depth, st.in_flight, in.chunks_free, capacity,
			         in.chunks_orphaned);
			return -1;
		}
		sleep_us(2000);
	}
	return 0;
}

/* final_roundtrip: after the chaos, a fresh send and receive (a lease and its ack in
 * lease mode) through the parent's handle must work within 1000 ms each. Returns 0,
 * or -1 with a description in WHY. */
static int final_roundtrip(char *why, size_t len)
{
	static const char marker[] = "prog_chaos final round trip";
	unsigned char *buf = xmalloc(max_msg);
	int rc = -1;
	mq_lease_t l;
	ssize_t r;
	if (mq_send(tp.q, marker, sizeof(marker), 1000) != 0) {
		snprintf(why, len, "final mq_send: %s (%s)", strerror(errno), mq_errdetail());
		goto out;
	}
	r = lease_mode ? mq_recv_lease(tp.q, buf, max_msg, 1000, &l)
	               : mq_recv(tp.q, buf, max_msg, 1000);
	if (r < 0) {
		snprintf(why, len, "final receive: %s (%s)", strerror(errno), mq_errdetail());
		goto out;
	}
	if ((size_t)r != sizeof(marker) || memcmp(buf, marker, sizeof(marker)) != 0) {
		snprintf(why, len, "final receive returned %zd bytes, not the marker", r);
		goto out;
	}
	if (lease_mode && mq_ack(tp.q, &l) != 0) {
		snprintf(why, len, "final mq_ack: %s (%s)", strerror(errno), mq_errdetail());
		goto out;
	}
	rc = 0;
out:
	free(buf);
	return rc;
}

/* dead_lease_returns: a consumer that leased a message and was SIGKILLed: the
 * message must come back (deliveries 2) to a consumer that polls with short
 * timeouts, as no broker runs here and the waiters are the ones to notice.
 * Returns 0, or -1 with a description in WHY. */
static int dead_lease_returns(char *why, size_t len)
{
	static const char marker[] = "prog_chaos dead holder";
	int pipefd[2];
	if (pipe(pipefd) != 0 || mq_send(tp.q, marker, sizeof(marker), 1000) != 0) {
		snprintf(why, len, "dead holder check: setup: %s", strerror(errno));
		return -1;
	}
	pid_t pid = fork();
	if (pid == 0) {
		tp_child_setup();
		mq_t *q = mq_attach(tp.qname);
		mq_lease_t l;
		char b[64];
		char ok = q && mq_recv_lease(q, b, sizeof(b), 1000, &l) >= 0 ? 'y' : 'n';
		if (write(pipefd[1], &ok, 1) != 1)
			_exit(3);
		pause();
		_exit(0);
	}
	tp.kids[0] = pid;
	char ok = 'n';
	if (read(pipefd[0], &ok, 1) != 1)
		ok = 'n';
	close(pipefd[0]);
	close(pipefd[1]);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	tp.kids[0] = 0;
	if (ok != 'y') {
		snprintf(why, len, "dead holder check: the child could not lease the marker");
		return -1;
	}
	unsigned char *buf = xmalloc(max_msg);
	double t0 = tp_now_s();
	int rc = -1;
	while (tp_now_s() - t0 < 3.0) {
		mq_lease_t l;
		ssize_t r = mq_recv_lease(tp.q, buf, max_msg, 50, &l);
		if (r >= 0) {
			if ((size_t)r != sizeof(marker) || l.deliveries != 2)
				snprintf(
				        why, len,
				        "dead holder check: got %zd bytes with deliveries %u, want "
				        "the marker, deliveries 2",
				        r, l.deliveries);
			else
				rc = 0;
			mq_ack(tp.q, &l);
			break;
		}
		if (errno != ETIMEDOUT) {
			snprintf(why, len, "dead holder check: mq_recv_lease: %s (%s)",
			         strerror(errno), mq_errdetail());
			break;
		}
	}
	if (rc != 0 && !why[0])
		snprintf(why, len,
		         "a message leased by a SIGKILLed consumer was not delivered again within "
		         "3 s to a consumer calling mq_recv_lease with 50 ms timeouts (no broker "
		         "runs: the waiters must give back what dead holders held)");
	free(buf);
	return rc;
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

static int usage(void)
{
	fprintf(stderr,
	        "usage: prog_chaos [--lease | --poll] [--lifo] [--seconds S] [--kills N | N]\n"
	        "  --lease      at-least-once: leases, acks and nacks; zero-copy sends, batches\n"
	        "  --poll       plain mode with every other consumer in an epoll loop on\n"
	        "               mq_pollfd (drained with timeout 0)\n"
	        "  --lifo       a large-message (LIFO) segment: capacity %d x %d bytes\n"
	        "  --seconds S  length of the kill phase (default: lease mode %.0f s, plain\n"
	        "               mode as long as the kills take, 0.5..5 ms apart)\n"
	        "  N            kills (default %d, or MQ_CHAOS_KILLS; at least %d)\n"
	        "MQ_TEST_SEED fixes the kill schedule; MQ_TEST_SCALE=K divides the defaults.\n",
	        LIFO_CAPACITY, LIFO_MAX_MSG, DEFAULT_LEASE_SECONDS, DEFAULT_KILLS, MIN_KILLS);
	return 2;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	double scale = tp_scale_factor();
	long kills = (long)(DEFAULT_KILLS * scale);
	const char *env_kills = getenv("MQ_CHAOS_KILLS");
	if (env_kills)
		kills = strtol(env_kills, NULL, 0);
	double seconds = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--lease"))
			lease_mode = 1;
		else if (!strcmp(argv[i], "--lifo"))
			lifo = 1;
		else if (!strcmp(argv[i], "--poll"))
			poll_mode = 1;
		else if (!strcmp(argv[i], "--seconds") && i + 1 < argc)
			seconds = strtod(argv[++i], NULL);
		else if (!strcmp(argv[i], "--kills") && i + 1 < argc)
			kills = strtol(argv[++i], NULL, 0);
		else if (argv[i][0] >= '0' && argv[i][0] <= '9')
			kills = strtol(argv[i], NULL, 0);
		else
			return usage();
	}
	if (lease_mode && poll_mode)
		return usage();
	if (kills < MIN_KILLS)
		kills = MIN_KILLS;
	if (lease_mode && seconds <= 0)
		seconds = DEFAULT_LEASE_SECONDS;
	seconds *= scale;
	capacity = lifo ? LIFO_CAPACITY : FIFO_CAPACITY;
	max_msg = lifo ? LIFO_MAX_MSG : FIFO_MAX_MSG;
	slack_ms = (int)(CALL_SLACK_MS / scale);
	const char *seed_env = getenv("MQ_TEST_SEED");
	seed = seed_env ? strtoull(seed_env, NULL, 0)
	                : (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
	uint64_t sched = seed ^ UINT64_C(0x243f6a8885a308d3); /* the kill schedule's PRNG */
	const char *mode = lease_mode  ? "lease"
	                   : poll_mode ? "plain, half the consumers polling"
	                               : "plain";

	max_ids = NPROD + (uint32_t)kills + 64; /* slack for replaced casualties */
	sh = map_shared(sizeof(*sh));
	atomic_store(&sh->max_over_us, INT64_MIN);
	ids_size = sizeof(*confirmed) * max_ids;
	confirmed = map_shared(ids_size);
	attempted = map_shared(ids_size);
	highest = map_shared(ids_size);
	for (uint32_t i = 0; i < max_ids; i++) {
		atomic_store(&confirmed[i], -1);
		atomic_store(&attempted[i], -1);
		atomic_store(&highest[i], -1);
	}
	if (lease_mode) {
		recs_size = sizeof(*recs) * SEQ_MAX * (size_t)max_ids;
		recs = map_shared(recs_size);
		lid_size = sizeof(*lid_owner) * LID_MAX;
		lid_owner = map_shared(lid_size);
	} else {
		seen_size = sizeof(*seen) * SEQ_WORDS * (size_t)max_ids;
		seen = map_shared(seen_size);
	}
	/* Children unblock SIGUSR1 once their handler is in place (child_setup). */
	sigset_t usr1;
	sigemptyset(&usr1);
	sigaddset(&usr1, SIGUSR1);
	sigprocmask(SIG_BLOCK, &usr1, NULL);

	tp.phase = "start";
	if (!tp_start("prog_chaos", "chaos", capacity, max_msg, DEADLINE_S,
	              "wedged: the test did not finish within its deadline"))
		return 1;
	printf("prog_chaos: %s mode, queue %s (%s), %d producers + %d consumers alive, capacity "
	       "%zu, max_msg %zu, %ld kills%s, seed 0x%" PRIx64 "\n",
	       mode, tp.qname, lifo ? "LIFO" : "FIFO", NPROD, NCONS, capacity, max_msg, kills,
	       seconds > 0 ? " spread over the kill phase" : "", seed);

	struct tally t;
	memset(&t, 0, sizeof(t));
	double t0 = tp_now_s();
	tp.phase = "kill phase";
	for (int i = 0; i < NCHILD; i++)
		spawn(i, i < NPROD ? PRODUCER : CONSUMER);
	/* Time-based: KILLS kills about SECONDS / KILLS apart (0.25x..1.75x). */
	long mean_us = seconds > 0 ? (long)(seconds * 1e6 / (double)kills) : 0;
	for (long k = 0; k < kills;) {
		uint64_t gap = splitmix64(&sched);
		sleep_us(mean_us ? mean_us / 4 + (long)(gap % (uint64_t)(mean_us * 3 / 2 + 1))
		                 : 500 + (long)(gap % 4500)); /* 0.5..5 ms */
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
	char reason[768] = "";
	tp.phase = "waiting for producers to stop";
	tell_stop(PRODUCER);
	if (wait_role(&t, PRODUCER, STOP_DEADLINE_S) != 0)
		snprintf(reason, sizeof(reason),
		         "wedged: producers did not stop within %d s of being told",
		         STOP_DEADLINE_S);
	tp.phase = "draining";
	if (!reason[0])
		wait_drained(reason, sizeof(reason));
	tp.phase = "waiting for consumers to stop";
	tell_stop(CONSUMER);
	if (wait_role(&t, CONSUMER, STOP_DEADLINE_S) != 0 && !reason[0])
		snprintf(reason, sizeof(reason),
		         "wedged: consumers did not stop within %d s of being told",
		         STOP_DEADLINE_S);
	tp_kill_children(); /* after a deadline above; a no-op otherwise */

	tp.phase = "final drain and round trip";
	if (!reason[0] && lease_mode) {
		drain_lease(&t, reason, sizeof(reason));
	} else if (!reason[0]) {
		int32_t *last = new_last();
		unsigned char *buf = xmalloc(max_msg);
		ssize_t r;
		while ((r = mq_recv(tp.q, buf, max_msg, 0)) >= 0) {
			record_msg("parent drain", buf, (size_t)r, last);
			t.parent_drained++;
		}
		if (errno != EAGAIN)
			snprintf(reason, sizeof(reason), "parent drain: mq_recv: %s (%s)",
			         strerror(errno), mq_errdetail());
		free(buf);
		free(last);
	}
	if (!reason[0])
		final_roundtrip(reason, sizeof(reason));
	double secs = tp_now_s() - t0;

	/* What dead producers had reserved (and, in plain mode, what dead consumers
	 * were copying out of a LIFO segment) comes back with a reap, the broker's
	 * job when one runs; then every chunk must be free and the segment sound. */
	tp.phase = "inspecting";
	struct mq_inspection in;
	memset(&in, 0, sizeof(in));
	struct mq_stats st;
	memset(&st, 0, sizeof(st));
	int reaped = mq_reap(tp.q, NULL, 0, 1000);
	if (reaped < 0 && !reason[0])
		snprintf(reason, sizeof(reason), "mq_reap: %s (%s)", strerror(errno),
		         mq_errdetail());
	if (mq_inspect(tp.q, &in) != 0 && !reason[0])
		snprintf(reason, sizeof(reason), "mq_inspect: %s (%s)", strerror(errno),
		         mq_errdetail());
	mq_stats(tp.q, &st);
	if (!reason[0] && (!in.sound || in.chunks_free != capacity))
		snprintf(reason, sizeof(reason),
		         "after the drain and a reap: segment %s%s, chunks free %" PRIu64
		         " of %zu (queued %" PRIu64 ", requeued %" PRIu64 ", leased %" PRIu64
		         ", writing %" PRIu64 ", taking %" PRIu64 ", orphaned %" PRIu64 ")",
		         in.sound ? "sound" : "unsound: ", in.sound ? "" : in.problem,
		         in.chunks_free, capacity, in.chunks_queued, in.chunks_requeued,
		         in.chunks_leased, in.chunks_writing, in.chunks_taking, in.chunks_orphaned);
	char dead_check[384] = "";
	tp.phase = "dead holder check";
	if (lease_mode && !reason[0])
		dead_lease_returns(dead_check, sizeof(dead_check));

	tp.phase = "verifying";
	if (lease_mode)
		verify_lease(&t);
	else
		verify_plain(&t);
	uint64_t dup = atomic_load(&sh->duplicates), corrupt = atomic_load(&sh->corrupt);
	uint64_t order = atomic_load(&sh->order_errors), errs = atomic_load(&sh->errors);
	uint64_t attach_failures = atomic_load(&sh->attach_failures);
	uint64_t slow = atomic_load(&sh->slow_calls);
	uint64_t dup_after_ack = atomic_load(&sh->dup_after_ack);
	uint64_t regress = atomic_load(&sh->deliveries_regress);
	uint64_t lid_errs = atomic_load(&sh->lease_id_errors);
	uint64_t changed = atomic_load(&sh->changed_while_leased);
	uint64_t two = atomic_load(&sh->two_holders), bad_leases = atomic_load(&sh->bad_leases);
	uint64_t all_kills = t.kills[PRODUCER] + t.kills[CONSUMER];
	if (!reason[0] && t.first_death[0])
		snprintf(reason, sizeof(reason),
		         "%" PRIu64 " unexpected child deaths; first: %s%s%s", t.unexpected_deaths,
		         t.first_death, sh->have_detail ? "; first error: " : "",
		         sh->have_detail ? sh->detail : "");
	if (!reason[0] && (dup_after_ack || regress || lid_errs || changed || two || bad_leases))
		snprintf(reason, sizeof(reason),
		         "duplicates after ack %" PRIu64 ", deliveries not rising %" PRIu64
		         ", lease id errors %" PRIu64 ", changed while leased %" PRIu64
		         ", two holders %" PRIu64 ", bad leases %" PRIu64 "; first: %s",
		         dup_after_ack, regress, lid_errs, changed, two, bad_leases, sh->detail);
	if (!reason[0] && ((!lease_mode && dup) || corrupt || order || errs || attach_failures))
		snprintf(reason, sizeof(reason),
		         "duplicates %" PRIu64 ", corrupt %" PRIu64 ", order errors %" PRIu64
		         ", libmq errors %" PRIu64 ", attach failures %" PRIu64 "; first: %s",
		         dup, corrupt, order, errs, attach_failures, sh->detail);
	if (!reason[0] && slow)
		snprintf(reason, sizeof(reason),
		         "%" PRIu64
		         " calls returned more than %d ms after their timeout; first: %s",
		         slow, slack_ms, sh->detail);
	if (!reason[0] && t.phantoms)
		snprintf(reason, sizeof(reason), "%" PRIu64 " phantom messages; first: %s",
		         t.phantoms, t.first_phantom);
	if (!reason[0] && lease_mode && t.losses)
		snprintf(reason, sizeof(reason),
		         "%" PRIu64
		         " messages lost (confirmed or delivered, never acked); first: %s",
		         t.losses, t.first_loss);
	if (!reason[0] && lease_mode && t.uncertain > t.kills[CONSUMER])
		snprintf(reason, sizeof(reason),
		         "%" PRIu64 " acks left uncertain, more than the %" PRIu64
		         " consumer kills",
		         t.uncertain, t.kills[CONSUMER]);
	if (!reason[0] && !lease_mode && t.losses > t.kills[CONSUMER])
		snprintf(reason, sizeof(reason),
		         "%" PRIu64 " confirmed messages lost (%" PRIu64 " long, %" PRIu64
		         " short), more than the %" PRIu64 " consumer kills; first: %s",
		         t.losses, t.long_losses, t.short_losses, t.kills[CONSUMER], t.first_loss);
	if (!reason[0] && (st.depth != 0 || st.in_flight != 0))
		snprintf(reason, sizeof(reason),
		         "stats: depth %" PRIu64 ", in flight %" PRIu64
		         " after the queue was emptied",
		         st.depth, st.in_flight);
	/* Counters a holder killed right after its commit store may miss: one per kill. */
	uint64_t drift = st.enqueued_total > st.dequeued_total
	                         ? st.enqueued_total - st.dequeued_total
	                         : st.dequeued_total - st.enqueued_total;
	if (!reason[0] && lease_mode && drift > t.kills[CONSUMER])
		snprintf(reason, sizeof(reason),
		         "stats: enqueued %" PRIu64 ", dequeued %" PRIu64
		         " with nothing left queued: off by more than the consumer kills",
		         st.enqueued_total, st.dequeued_total);
	if (!reason[0] && t.delivered == 0)
		snprintf(reason, sizeof(reason), "no message was delivered at all");
	if (!reason[0] && all_kills < MIN_KILLS)
		snprintf(reason, sizeof(reason), "only %" PRIu64 " kills", all_kills);
	if (!reason[0] && dead_check[0])
		snprintf(reason, sizeof(reason), "%s", dead_check);

	/* Clean up now, and check that nothing is left in /dev/shm. */
	mq_detach(tp.q);
	tp.q = NULL;
	if (mq_remove(tp.qname) != 0 && !reason[0])
		snprintf(reason, sizeof(reason), "mq_remove(%s): %s", tp.qname, strerror(errno));
	tp.qname[0] = '\0';
	if (access(tp.shm_path, F_OK) == 0 && !reason[0])
		snprintf(reason, sizeof(reason), "%s still exists after mq_remove", tp.shm_path);

	int64_t over_us = atomic_load(&sh->max_over_us);
	printf("prog_chaos: stats: enqueued %" PRIu64 ", dequeued %" PRIu64 ", depth %" PRIu64
	       ", in flight %" PRIu64 ", high water %" PRIu64 ", blocked sends %" PRIu64
	       ", blocked recvs %" PRIu64 ", acked %" PRIu64 ", nacked %" PRIu64
	       ", redelivered %" PRIu64 ", lock repairs %" PRIu64 ", recoveries %" PRIu64 "\n",
	       st.enqueued_total, st.dequeued_total, st.depth, st.in_flight, st.high_water,
	       st.blocked_sends_total, st.blocked_recvs_total, st.acked_total, st.nacked_total,
	       st.redelivered_total, st.lock_repairs_total, st.recoveries_total);
	if (lease_mode)
		printf("prog_chaos: lease: deliveries %" PRIu64 " (first %" PRIu64
		       ", again %" PRIu64 ") of %" PRIu64 " messages, duplicates %" PRIu64
		       " (allowed: holder died or nacked), acks %" PRIu64 " (recorded %" PRIu64
		       ", uncertain %" PRIu64 "), nacks %" PRIu64 ", cancels %" PRIu64
		       ", duplicates after ack %" PRIu64
		       ", slowest call %+.0f ms past its timeout\n",
		       t.delivered, atomic_load(&sh->first_deliveries),
		       atomic_load(&sh->redeliveries), t.delivered_msgs, dup,
		       atomic_load(&sh->acks), t.acked, t.uncertain, atomic_load(&sh->nacks),
		       atomic_load(&sh->cancels), dup_after_ack,
		       over_us == INT64_MIN ? 0.0 : (double)over_us / 1e3);
	printf("prog_chaos: %s%s kills=%" PRIu64 " (producers %" PRIu64 ", consumers %" PRIu64
	       ", while starting %" PRIu64 ") producer incarnations=%u confirmed=%" PRIu64
	       " delivered=%" PRIu64 " (%" PRIu64 " during the kill phase of %.2f s, %" PRIu64
	       " in flight at a kill, %" PRIu64 " drained by the parent) lost=%" PRIu64
	       " duplicates=%" PRIu64 " corrupt=%" PRIu64 " phantoms=%" PRIu64
	       " lock_repairs=%" PRIu64 " recoveries=%" PRIu64 " seconds=%.2f %s%s\n",
	       mode, lifo ? " lifo" : "", all_kills, t.kills[PRODUCER], t.kills[CONSUMER],
	       t.attach_kills, next_id, t.confirmed, t.delivered, recv_at_stop, kill_secs,
	       t.inflight_delivered, t.parent_drained, t.losses, dup, corrupt, t.phantoms,
	       st.lock_repairs_total, st.recoveries_total, secs, reason[0] ? "FAIL: " : "PASS",
	       reason);
	if (reason[0])
		printf("prog_chaos: at the end (after a reap that found %d dead): segment %s, ring "
		       "%" PRIu64 "..%" PRIu64 ", requeue %" PRIu64 "..%" PRIu64 ", pool %" PRIu64
		       "..%" PRIu64 ", chunks free %" PRIu64 " queued %" PRIu64 " requeued %" PRIu64
		       " leased %" PRIu64 " writing %" PRIu64 " taking %" PRIu64
		       " orphaned %" PRIu64 ", locks held by pid %d/%d\n",
		       reaped, in.sound ? "sound" : in.problem, in.head, in.tail, in.requeue_head,
		       in.requeue_tail, in.pool_head, in.pool_tail, in.chunks_free,
		       in.chunks_queued, in.chunks_requeued, in.chunks_leased, in.chunks_writing,
		       in.chunks_taking, in.chunks_orphaned, in.send_lock.holder_pid,
		       in.recv_lock.holder_pid);
	if (reason[0] && !strstr(reason, sh->detail) && sh->have_detail)
		printf("prog_chaos: first failure seen by a child: %s\n", sh->detail);
	if (reason[0])
		printf("prog_chaos: reproduce the schedule with MQ_TEST_SEED=0x%" PRIx64
		       " MQ_TEST_SCALE=%s %s%s%s --seconds %.2f %ld\n",
		       seed, getenv("MQ_TEST_SCALE") ? getenv("MQ_TEST_SCALE") : "1", argv[0],
		       lease_mode ? " --lease" : "", lifo ? " --lifo" : "", seconds / scale, kills);
	if (recs)
		munmap(recs, recs_size);
	if (lid_owner)
		munmap(lid_owner, lid_size);
	if (seen)
		munmap(seen, seen_size);
	munmap(highest, ids_size);
	munmap(attempted, ids_size);
	munmap(confirmed, ids_size);
	munmap(sh, sizeof(*sh));
	return reason[0] ? 1 : 0;
}
