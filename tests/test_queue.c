/* test_queue.c - unit tests: mq_send/mq_recv (order, sizes, timeouts, EINTR, threads), spin. */
#include <check.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "handle.h"
#include "libmq.h"
#include "segment.h"
#include "testcheck.h"

static char qname[64];

static void setup_name(void)
{
	new_name(qname, "queue");
}

static void teardown_name(void)
{
	shm_unlink(qname);
}

static mq_t *create_queue(size_t capacity, size_t max_msg)
{
	mq_t *q = mq_create(qname, capacity, max_msg, 0600);
	ck_assert_msg(q != NULL, "mq_create(%s, %zu, %zu): %s (%s)", qname, capacity, max_msg,
	              strerror(errno), mq_errdetail());
	return q;
}

static void destroy_queue(mq_t *q)
{
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}

static uint64_t depth(mq_t *q)
{
	struct mq_stats s;
	ck_assert_int_eq(mq_stats(q, &s), 0);
	return s.depth;
}

static uint64_t enqueued(mq_t *q)
{
	struct mq_stats s;
	ck_assert_int_eq(mq_stats(q, &s), 0);
	return s.enqueued_total;
}

/* Message I of the FIFO tests: 4 + I % 60 bytes, the index then a pattern. */
static size_t make_msg(unsigned char *buf, uint32_t i)
{
	size_t len = 4 + i % 60;
	memcpy(buf, &i, 4);
	for (size_t j = 4; j < len; j++)
		buf[j] = (unsigned char)(i * 7 + j);
	return len;
}

static void expect_msg(mq_t *q, uint32_t i)
{
	unsigned char want[64], got[64];
	size_t len = make_msg(want, i);
	memset(got, 0xee, sizeof(got));
	ssize_t n = mq_recv(q, got, sizeof(got), 0);
	ck_assert_msg(n == (ssize_t)len, "message %u: length %zd, expected %zu (errno %d)", i, n,
	              len, errno);
	ck_assert_msg(memcmp(got, want, len) == 0, "message %u: wrong content (got index %u)", i,
	              *(uint32_t *)got);
}

/* ------------------------------------------------------------------- basics */

START_TEST(test_fifo_order_1000_messages)
{
	unsigned char buf[64];
	mq_t *q = create_queue(1024, 64);
	for (uint32_t i = 0; i < 1000; i++) {
		size_t len = make_msg(buf, i);
		ck_assert_int_eq(mq_send(q, buf, len, 0), 0);
	}
	ck_assert_uint_eq(depth(q), 1000);
	for (uint32_t i = 0; i < 1000; i++)
		expect_msg(q, i);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	destroy_queue(q);
}
END_TEST

/* A ring of 3 slots wrapped around hundreds of times, with uneven bursts. */
START_TEST(test_fifo_order_wraps_around)
{
	unsigned char buf[64];
	mq_t *q = create_queue(3, 64);
	uint32_t sent = 0, received = 0;
	for (unsigned round = 0; received < 1000; round++) {
		unsigned burst = round % 3 + 1;
		while (burst-- > 0 && sent < 1000 && sent - received < 3) {
			size_t len = make_msg(buf, sent);
			ck_assert_int_eq(mq_send(q, buf, len, 0), 0);
			sent++;
		}
		if (sent - received == 3) {
			errno = 0;
			ck_assert_int_eq(mq_send(q, buf, 4, 0), -1);
			ck_assert_int_eq(errno, EAGAIN);
		}
		unsigned take = round % 2 + 1;
		while (take-- > 0 && received < sent)
			expect_msg(q, received++);
		ck_assert_uint_eq(depth(q), sent - received);
	}
	destroy_queue(q);
}
END_TEST

START_TEST(test_binary_safe)
{
	unsigned char all[256], got[300];
	for (int i = 0; i < 256; i++)
		all[i] = (unsigned char)i;
	static const unsigned char nuls[] = {0, 'a', 0, 'b', 0};
	unsigned char zeros[100] = {0};

	mq_t *q = create_queue(8, 300);
	ck_assert_int_eq(mq_send(q, all, sizeof(all), 0), 0);
	ck_assert_int_eq(mq_send(q, nuls, sizeof(nuls), 0), 0);
	ck_assert_int_eq(mq_send(q, zeros, sizeof(zeros), 0), 0);

	memset(got, 0x55, sizeof(got));
	ck_assert_int_eq(mq_recv(q, got, sizeof(got), 0), 256);
	ck_assert_mem_eq(got, all, 256);
	ck_assert_uint_eq(got[256], 0x55); /* nothing written past the message */
	ck_assert_int_eq(mq_recv(q, got, sizeof(got), 0), (ssize_t)sizeof(nuls));
	ck_assert_mem_eq(got, nuls, sizeof(nuls));
	memset(got, 0x55, sizeof(got));
	ck_assert_int_eq(mq_recv(q, got, sizeof(got), 0), 100);
	ck_assert_mem_eq(got, zeros, 100);
	destroy_queue(q);
}
END_TEST

START_TEST(test_zero_length_message)
{
	unsigned char buf[16];
	mq_t *q = create_queue(4, 16);
	ck_assert_int_eq(mq_send(q, NULL, 0, 0), 0);
	ck_assert_int_eq(mq_send(q, "ignored", 0, 0), 0);
	ck_assert_int_eq(mq_send(q, "after", 5, 0), 0);
	ck_assert_uint_eq(depth(q), 3);

	memset(buf, 0x55, sizeof(buf));
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 0);
	ck_assert_uint_eq(buf[0], 0x55);
	/* CAP 0 (and BUF NULL) is enough for an empty message. */
	ck_assert_int_eq(mq_recv(q, NULL, 0, 0), 0);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "after", 5);

	struct mq_stats s;
	ck_assert_int_eq(mq_stats(q, &s), 0);
	ck_assert_uint_eq(s.enqueued_total, 3);
	ck_assert_uint_eq(s.dequeued_total, 3);
	ck_assert_uint_eq(s.bytes_enqueued_total, 5);
	ck_assert_uint_eq(s.bytes_dequeued_total, 5);
	destroy_queue(q);
}
END_TEST

START_TEST(test_max_size_message)
{
	unsigned char msg[101], got[200];
	for (int i = 0; i < 101; i++)
		msg[i] = (unsigned char)(255 - i);
	mq_t *q = create_queue(4, 100);

	ck_assert_int_eq(mq_send(q, msg, 100, 0), 0);
	ck_assert_uint_eq(depth(q), 1);

	errno = 0;
	ck_assert_int_eq(mq_send(q, msg, 101, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	errno = 0;
	ck_assert_int_eq(mq_send(q, msg, SIZE_MAX, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(depth(q), 1);
	ck_assert_uint_eq(enqueued(q), 1);

	/* On a full queue too: a message that can never fit is not waited for. */
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(mq_send(q, msg, i, 0), 0);
	errno = 0;
	ck_assert_int_eq(mq_send(q, msg, 101, 2000), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(depth(q), 4);

	ck_assert_int_eq(mq_recv(q, got, sizeof(got), 0), 100);
	ck_assert_mem_eq(got, msg, 100);
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(mq_recv(q, got, sizeof(got), 0), i);
	ck_assert_uint_eq(depth(q), 0);
	destroy_queue(q);
}
END_TEST

START_TEST(test_recv_buffer_too_small_keeps_message)
{
	unsigned char got[16];
	mq_t *q = create_queue(4, 16);
	ck_assert_int_eq(mq_send(q, "0123456789", 10, 0), 0);
	ck_assert_int_eq(mq_send(q, "next", 4, 0), 0);

	memset(got, 0x55, sizeof(got));
	errno = 0;
	ck_assert_int_eq(mq_recv(q, got, 9, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(depth(q), 2);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, NULL, 0, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, got, 9, 2000), -1); /* a message is there: no waiting */
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(depth(q), 2);

	ck_assert_int_eq(mq_recv(q, got, 10, 0), 10);
	ck_assert_mem_eq(got, "0123456789", 10);
	ck_assert_int_eq(mq_recv(q, got, 4, 0), 4);
	ck_assert_mem_eq(got, "next", 4);

	struct mq_stats s;
	ck_assert_int_eq(mq_stats(q, &s), 0);
	ck_assert_uint_eq(s.dequeued_total, 2);
	ck_assert_uint_eq(s.bytes_dequeued_total, 14);
	destroy_queue(q);
}
END_TEST

/* ---------------------------------------------------------------- bad input */

START_TEST(test_null_queue_is_einval)
{
	char buf[8];
	errno = 0;
	ck_assert_int_eq(mq_send(NULL, "x", 1, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_send(NULL, NULL, 0, -1), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_recv(NULL, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_recv(NULL, buf, sizeof(buf), -1), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_null_buffers_are_einval)
{
	char buf[8];
	mq_t *q = create_queue(4, 8);
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), 0);

	errno = 0;
	ck_assert_int_eq(mq_send(q, NULL, 1, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(depth(q), 1);

	errno = 0;
	ck_assert_int_eq(mq_recv(q, NULL, 3, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_uint_eq(depth(q), 1); /* the message was not taken */

	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	destroy_queue(q);
}
END_TEST

START_TEST(test_bad_timeouts_are_einval)
{
	static const int bad[] = {-2, -1000, INT_MIN};
	char buf[8];
	mq_t *q = create_queue(4, 8);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_int_eq(mq_send(q, "a", 1, bad[i]), -1);
		ck_assert_msg(errno == EINVAL, "mq_send timeout %d: errno %d", bad[i], errno);
		ck_assert_uint_eq(depth(q), 0);

		errno = 0;
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), bad[i]), -1);
		ck_assert_msg(errno == EINVAL, "mq_recv timeout %d on empty: errno %d", bad[i],
		              errno);
	}

	/* With a message queued: still EINVAL, and the message stays. */
	ck_assert_int_eq(mq_send(q, "m", 1, 0), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), bad[i]), -1);
		ck_assert_msg(errno == EINVAL, "mq_recv timeout %d: errno %d", bad[i], errno);
		ck_assert_uint_eq(depth(q), 1);
	}
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	destroy_queue(q);
}
END_TEST

/* ----------------------------------------------------------------- timeouts */

/* Loop tests over the spin setting: 0 = the default (spinning), 1 = mq_set_spin(q, 0). */
static void apply_spin(mq_t *q, int variant)
{
	if (variant == 1)
		ck_assert_int_eq(mq_set_spin(q, 0), 0);
}

START_TEST(test_recv_nowait_on_empty_is_eagain)
{
	char buf[8];
	mq_t *q = create_queue(4, 8);
	apply_spin(q, _i);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, 1, 0), -1); /* no message, so nothing is too big */
	ck_assert_int_eq(errno, EAGAIN);
	destroy_queue(q);
}
END_TEST

START_TEST(test_send_nowait_on_full_is_eagain)
{
	char buf[8];
	mq_t *q = create_queue(2, 8);
	apply_spin(q, _i);
	ck_assert_int_eq(mq_send(q, "a", 1, 0), 0);
	ck_assert_int_eq(mq_send(q, "b", 1, 0), 0);
	errno = 0;
	ck_assert_int_eq(mq_send(q, "c", 1, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(depth(q), 2);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	ck_assert_int_eq(buf[0], 'a');
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	ck_assert_int_eq(buf[0], 'b');
	destroy_queue(q);
}
END_TEST

START_TEST(test_recv_timeout_on_empty)
{
	char buf[8];
	mq_t *q = create_queue(4, 8);
	apply_spin(q, _i);
	double t0 = now_ms();
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 50), -1);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_msg(elapsed >= 49.0, "returned after %.1f ms, before the 50 ms timeout", elapsed);
	ck_assert_msg(elapsed < 5000.0, "returned after %.1f ms", elapsed);
	ck_assert_uint_eq(depth(q), 0);
	destroy_queue(q);
}
END_TEST

START_TEST(test_send_timeout_on_full)
{
	char buf[8];
	mq_t *q = create_queue(1, 8);
	apply_spin(q, _i);
	ck_assert_int_eq(mq_send(q, "a", 1, 0), 0);
	double t0 = now_ms();
	errno = 0;
	ck_assert_int_eq(mq_send(q, "b", 1, 50), -1);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_msg(elapsed >= 49.0, "returned after %.1f ms, before the 50 ms timeout", elapsed);
	ck_assert_msg(elapsed < 5000.0, "returned after %.1f ms", elapsed);
	ck_assert_uint_eq(depth(q), 1);
	ck_assert_uint_eq(enqueued(q), 1);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	ck_assert_int_eq(buf[0], 'a');
	destroy_queue(q);
}
END_TEST

/* The spin is bounded by the deadline: a long spin and a short timeout still time out. */
START_TEST(test_long_spin_respects_timeouts)
{
	char buf[8];
	mq_t *q = create_queue(1, 8);
	ck_assert_int_eq(mq_set_spin(q, 1000000), 0);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	double t0 = now_ms();
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 50), -1);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(errno, ETIMEDOUT);
	ck_assert_msg(elapsed >= 49.0 && elapsed < 5000.0, "ETIMEDOUT after %.1f ms", elapsed);
	destroy_queue(q);
}
END_TEST

struct delayed_send {
	mq_t *q;
	int delay_ms;
	int rc;
};

static void *delayed_send_thread(void *arg)
{
	struct delayed_send *d = arg;
	sleep_ms(d->delay_ms);
	d->rc = mq_send(d->q, "late", 4, 0);
	return NULL;
}

START_TEST(test_timed_recv_gets_message_sent_meanwhile)
{
	char buf[8];
	mq_t *q = create_queue(4, 8);
	apply_spin(q, _i);
	struct delayed_send d = {q, 50, -2};
	pthread_t t;
	double t0 = now_ms();
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_send_thread, &d), 0);
	ssize_t n = mq_recv(q, buf, sizeof(buf), 4000);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(d.rc, 0);
	ck_assert_msg(n == 4, "mq_recv: %zd errno %d", n, errno);
	ck_assert_mem_eq(buf, "late", 4);
	ck_assert_msg(elapsed >= 45.0, "got the message after %.1f ms, before it was sent",
	              elapsed);
	destroy_queue(q);
}
END_TEST

/* ---------------------------------------------------- blocking across processes */

START_TEST(test_blocking_recv_woken_by_other_process)
{
	char buf[16];
	mq_t *q = create_queue(4, 16);
	apply_spin(q, _i);

	double t0 = now_ms();
	pid_t pid = fork_child();
	if (pid == 0) {
		sleep_ms(100);
		mq_t *c = mq_attach(qname);
		if (c == NULL)
			_exit(10);
		if (mq_send(c, "wake up", 7, 0) != 0)
			_exit(11);
		mq_detach(c);
		_exit(0);
	}
	ssize_t n = mq_recv(q, buf, sizeof(buf), -1);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(wait_child(pid), 0);
	ck_assert_msg(n == 7, "mq_recv: %zd errno %d", n, errno);
	ck_assert_mem_eq(buf, "wake up", 7);
	ck_assert_msg(elapsed >= 90.0, "mq_recv returned after %.1f ms, before the send", elapsed);

	struct mq_stats s;
	ck_assert_int_eq(mq_stats(q, &s), 0);
	ck_assert_uint_eq(s.blocked_recvs_total, 1);
	ck_assert_uint_eq(s.depth, 0);
	destroy_queue(q);
}
END_TEST

START_TEST(test_blocking_send_woken_by_other_process)
{
	char buf[16];
	mq_t *q = create_queue(2, 16);
	apply_spin(q, _i);
	ck_assert_int_eq(mq_send(q, "m0", 2, 0), 0);
	ck_assert_int_eq(mq_send(q, "m1", 2, 0), 0);

	double t0 = now_ms();
	pid_t pid = fork_child();
	if (pid == 0) {
		char cbuf[16];
		sleep_ms(100);
		mq_t *c = mq_attach(qname);
		if (c == NULL)
			_exit(10);
		if (mq_recv(c, cbuf, sizeof(cbuf), 5000) != 2 || memcmp(cbuf, "m0", 2) != 0)
			_exit(11);
		mq_detach(c);
		_exit(0);
	}
	int rc = mq_send(q, "m2", 2, -1);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(wait_child(pid), 0);
	ck_assert_msg(rc == 0, "mq_send: errno %d", errno);
	ck_assert_msg(elapsed >= 90.0, "mq_send returned after %.1f ms, before the recv", elapsed);

	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 2);
	ck_assert_mem_eq(buf, "m1", 2);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 2);
	ck_assert_mem_eq(buf, "m2", 2);

	struct mq_stats s;
	ck_assert_int_eq(mq_stats(q, &s), 0);
	ck_assert_uint_eq(s.blocked_sends_total, 1);
	ck_assert_uint_eq(s.depth, 0);
	destroy_queue(q);
}
END_TEST

/* -------------------------------------------------------------------- EINTR */

static atomic_int sigusr1_count;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigusr1_count, 1);
}

struct blocked_call {
	mq_t *q;
	int is_send;
	int timeout_ms;
	atomic_int done;
	ssize_t ret;
	int err;
};

static void *blocked_call_thread(void *arg)
{
	struct blocked_call *c = arg;
	char buf[16];
	errno = 0;
	if (c->is_send)
		c->ret = mq_send(c->q, "blocked", 7, c->timeout_ms);
	else
		c->ret = mq_recv(c->q, buf, sizeof(buf), c->timeout_ms);
	c->err = errno;
	atomic_store(&c->done, 1);
	return NULL;
}

/*
 * run_interrupted: start the call in a thread, signal it with SIGUSR1 (handler
 * without SA_RESTART) after ~100 ms, and again a few times should the first
 * signal have arrived before it slept. Returns 1 if it returned on its own,
 * 0 if it had to be unblocked by the queue (the test then fails).
 */
static int run_interrupted(struct blocked_call *c)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigusr1;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART */
	ck_assert_int_eq(sigaction(SIGUSR1, &sa, NULL), 0);
	atomic_store(&sigusr1_count, 0);

	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, blocked_call_thread, c), 0);
	for (int attempt = 0; attempt < 10 && !atomic_load(&c->done); attempt++) {
		sleep_ms(100);
		if (atomic_load(&c->done))
			break;
		ck_assert_int_eq(pthread_kill(t, SIGUSR1), 0);
		for (int w = 0; w < 20 && !atomic_load(&c->done); w++)
			sleep_ms(10);
	}
	int on_its_own = atomic_load(&c->done);
	if (!on_its_own) {
		/* Unblock it through the queue so the thread can be joined. */
		char buf[16];
		if (c->is_send)
			mq_recv(c->q, buf, sizeof(buf), 0);
		else
			mq_send(c->q, "unblock", 7, 0);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_ge(atomic_load(&sigusr1_count), 1);
	return on_its_own;
}

/* Loop: 0 waits forever (-1), 1 waits at most 5000 ms. */
START_TEST(test_recv_interrupted_by_signal_is_eintr)
{
	char buf[16];
	mq_t *q = create_queue(4, 16);
	ck_assert_int_eq(mq_set_spin(q, 0), 0);
	struct blocked_call c = {.q = q, .is_send = 0, .timeout_ms = _i == 0 ? -1 : 5000};
	double t0 = now_ms();
	int on_its_own = run_interrupted(&c);
	double elapsed = now_ms() - t0;
	ck_assert_msg(on_its_own, "mq_recv(timeout %d) was not interrupted by SIGUSR1",
	              c.timeout_ms);
	ck_assert_msg(c.ret == -1 && c.err == EINTR, "mq_recv(timeout %d): %zd errno %d (%s)",
	              c.timeout_ms, c.ret, c.err, strerror(c.err));
	ck_assert_msg(elapsed < 4500.0, "EINTR only after %.0f ms", elapsed);

	/* The queue still works and nothing was lost or invented. */
	ck_assert_uint_eq(depth(q), 0);
	ck_assert_int_eq(mq_send(q, "after", 5, 0), 0);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "after", 5);
	destroy_queue(q);
}
END_TEST

START_TEST(test_send_interrupted_by_signal_is_eintr)
{
	char buf[16];
	mq_t *q = create_queue(1, 16);
	ck_assert_int_eq(mq_set_spin(q, 0), 0);
	ck_assert_int_eq(mq_send(q, "first", 5, 0), 0);
	struct blocked_call c = {.q = q, .is_send = 1, .timeout_ms = _i == 0 ? -1 : 5000};
	double t0 = now_ms();
	int on_its_own = run_interrupted(&c);
	double elapsed = now_ms() - t0;
	ck_assert_msg(on_its_own, "mq_send(timeout %d) was not interrupted by SIGUSR1",
	              c.timeout_ms);
	ck_assert_msg(c.ret == -1 && c.err == EINTR, "mq_send(timeout %d): %zd errno %d (%s)",
	              c.timeout_ms, c.ret, c.err, strerror(c.err));
	ck_assert_msg(elapsed < 4500.0, "EINTR only after %.0f ms", elapsed);

	/* Nothing was queued by the interrupted send. */
	ck_assert_uint_eq(depth(q), 1);
	ck_assert_uint_eq(enqueued(q), 1);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "first", 5);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	destroy_queue(q);
}
END_TEST

/* ------------------------------------------------------------------ threads */

#define MT_SENDERS   4
#define MT_RECEIVERS 4
#define MT_PER       20000
#define MT_STOP      0xffffffffu

struct mt_msg {
	uint32_t sender;
	uint32_t seq;
};

struct mt_state {
	mq_t *q;
	_Atomic unsigned char *seen; /* [MT_SENDERS][MT_PER] */
	atomic_int errors;
	atomic_int duplicates;
	atomic_int order_violations;
	atomic_long received;
	char first_error[128];
};

struct mt_arg {
	struct mt_state *st;
	uint32_t id;
};

static void mt_error(struct mt_state *st, const char *what, long a, long b)
{
	if (atomic_fetch_add(&st->errors, 1) == 0)
		snprintf(st->first_error, sizeof(st->first_error), "%s (%ld, %ld)", what, a, b);
}

static void *mt_sender(void *arg)
{
	struct mt_arg *a = arg;
	for (uint32_t seq = 0; seq < MT_PER; seq++) {
		struct mt_msg m = {a->id, seq};
		if (mq_send(a->st->q, &m, sizeof(m), -1) != 0) {
			mt_error(a->st, "mq_send failed: errno, seq", errno, seq);
			break;
		}
	}
	return NULL;
}

static void *mt_receiver(void *arg)
{
	struct mt_arg *a = arg;
	struct mt_state *st = a->st;
	int64_t last[MT_SENDERS];
	for (int i = 0; i < MT_SENDERS; i++)
		last[i] = -1;
	for (;;) {
		struct mt_msg m;
		unsigned char buf[32];
		ssize_t n = mq_recv(st->q, buf, sizeof(buf), -1);
		if (n != (ssize_t)sizeof(m)) {
			mt_error(st, "mq_recv: length, errno", (long)n, errno);
			break;
		}
		memcpy(&m, buf, sizeof(m));
		if (m.sender == MT_STOP)
			break;
		if (m.sender >= MT_SENDERS || m.seq >= MT_PER) {
			mt_error(st, "bad message", m.sender, m.seq);
			continue;
		}
		if (atomic_fetch_add(&st->seen[m.sender * MT_PER + m.seq], 1) != 0)
			atomic_fetch_add(&st->duplicates, 1);
		if ((int64_t)m.seq <= last[m.sender])
			atomic_fetch_add(&st->order_violations, 1);
		last[m.sender] = m.seq;
		atomic_fetch_add(&st->received, 1);
	}
	return NULL;
}

/* Loop: 0 with the default spin, 1 with spinning off. */
START_TEST(test_threads_share_one_handle)
{
	static struct mt_state st;
	memset(&st, 0, sizeof(st));
	st.q = create_queue(64, 16);
	apply_spin(st.q, _i);
	st.seen = calloc(MT_SENDERS * MT_PER, 1);
	ck_assert_ptr_nonnull(st.seen);

	pthread_t snd[MT_SENDERS], rcv[MT_RECEIVERS];
	struct mt_arg sa[MT_SENDERS], ra[MT_RECEIVERS];
	for (uint32_t i = 0; i < MT_RECEIVERS; i++) {
		ra[i] = (struct mt_arg){&st, i};
		ck_assert_int_eq(pthread_create(&rcv[i], NULL, mt_receiver, &ra[i]), 0);
	}
	for (uint32_t i = 0; i < MT_SENDERS; i++) {
		sa[i] = (struct mt_arg){&st, i};
		ck_assert_int_eq(pthread_create(&snd[i], NULL, mt_sender, &sa[i]), 0);
	}
	for (int i = 0; i < MT_SENDERS; i++)
		ck_assert_int_eq(pthread_join(snd[i], NULL), 0);
	/* FIFO: the stop messages come after every data message. */
	for (int i = 0; i < MT_RECEIVERS; i++) {
		struct mt_msg stop = {MT_STOP, 0};
		ck_assert_int_eq(mq_send(st.q, &stop, sizeof(stop), -1), 0);
	}
	for (int i = 0; i < MT_RECEIVERS; i++)
		ck_assert_int_eq(pthread_join(rcv[i], NULL), 0);

	ck_assert_msg(atomic_load(&st.errors) == 0, "%d errors, first: %s", atomic_load(&st.errors),
	              st.first_error);
	ck_assert_int_eq(atomic_load(&st.duplicates), 0);
	ck_assert_int_eq(atomic_load(&st.order_violations), 0);
	ck_assert_int_eq(atomic_load(&st.received), MT_SENDERS * MT_PER);
	for (int i = 0; i < MT_SENDERS * MT_PER; i++)
		ck_assert_msg(atomic_load(&st.seen[i]) == 1, "sender %d seq %d received %d times",
		              i / MT_PER, i % MT_PER, atomic_load(&st.seen[i]));

	struct mq_stats s;
	ck_assert_int_eq(mq_stats(st.q, &s), 0);
	ck_assert_uint_eq(s.depth, 0);
	ck_assert_uint_eq(s.enqueued_total, MT_SENDERS * MT_PER + MT_RECEIVERS);
	ck_assert_uint_eq(s.dequeued_total, MT_SENDERS * MT_PER + MT_RECEIVERS);
	ck_assert_uint_le(s.high_water, 64);
	free((void *)st.seen);
	destroy_queue(st.q);
}
END_TEST

/* --------------------------------------------------------------------- spin */

START_TEST(test_set_spin_rejects_bad_arguments)
{
	mq_t *q = create_queue(4, 8);
	errno = 0;
	ck_assert_int_eq(mq_set_spin(NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_set_spin(NULL, 50), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_set_spin(q, 1000001), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_set_spin(q, UINT_MAX), -1);
	ck_assert_int_eq(errno, EINVAL);
	destroy_queue(q);
}
END_TEST

START_TEST(test_set_spin_accepts_range)
{
	static const unsigned ok[] = {0, 1, MQ_DEFAULT_SPIN_US, 1000000};
	char buf[8];
	mq_t *q = create_queue(4, 8);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(mq_set_spin(q, ok[i]), 0);
		ck_assert_int_eq(mq_send(q, "s", 1, 0), 0);
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	}
	destroy_queue(q);
}
END_TEST

/* ----------------------------------------------------------- crash windows */
/*
 * A child attaches, takes one side's lock and dies at a chosen point inside
 * the critical section, still holding it, as a SIGKILL could make it. The
 * robust lock passes to the next locker with EOWNERDEAD. These pin down each
 * window of the crash contract deterministically (prog_chaos hits them at
 * random).
 */
enum crash_point {
	PRODUCER_BEFORE_COMMIT, /* slot written, seq not stored */
	PRODUCER_AFTER_COMMIT,  /* seq stored, tail not advanced */
	CONSUMER_BEFORE_COMMIT, /* message copied out, head not stored */
	CONSUMER_AFTER_COMMIT,  /* head stored, lock not released */
};

static void die_in_critical_section(enum crash_point point)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *c = mq_attach(qname);
		if (!c)
			_exit(2);
		struct mq_shm *s = c->shm;
		int producer = point == PRODUCER_BEFORE_COMMIT || point == PRODUCER_AFTER_COMMIT;
		if (pthread_mutex_lock(producer ? &s->send_lock : &s->recv_lock) != 0)
			_exit(3);
		if (producer) {
			uint64_t tail = mq_load_relaxed(&s->tail);
			struct mq_slot *slot = handle_slot(c, tail);
			slot->len = 5;
			memcpy(slot->data, "dying", 5);
			if (point == PRODUCER_AFTER_COMMIT)
				mq_store_release(&slot->seq, tail + 1);
		} else {
			uint64_t head = mq_load_relaxed(&s->head);
			char copy[64];
			memcpy(copy, handle_slot(c, head)->data, sizeof(copy));
			if (point == CONSUMER_AFTER_COMMIT)
				mq_store_release(&s->head, head + 1);
		}
		_exit(0); /* holding the lock: the kernel marks it owner-dead */
	}
	ck_assert_int_eq(wait_child(pid), 0);
}

static void expect_text(mq_t *q, const char *want)
{
	char buf[64];
	ssize_t n = mq_recv(q, buf, sizeof(buf), 0);
	ck_assert_msg(n == (ssize_t)strlen(want), "expected \"%s\", got length %zd (%s)", want, n,
	              n < 0 ? mq_errdetail() : "");
	ck_assert_int_eq(memcmp(buf, want, (size_t)n), 0);
}

static struct mq_stats stats_of(mq_t *q)
{
	struct mq_stats st;
	ck_assert_int_eq(mq_stats(q, &st), 0);
	return st;
}

START_TEST(test_producer_dies_before_commit)
{
	mq_t *q = create_queue(4, 64);
	ck_assert_int_eq(mq_send(q, "first", 5, 0), 0);
	die_in_critical_section(PRODUCER_BEFORE_COMMIT);
	/* The half-written message is invisible; the next send reuses its slot. */
	ck_assert_int_eq(mq_send(q, "after", 5, 0), 0);
	expect_text(q, "first");
	expect_text(q, "after");
	ck_assert_int_eq(mq_recv(q, (char[8]){0}, 8, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	struct mq_stats st = stats_of(q);
	ck_assert_uint_eq(st.enqueued_total, 2);
	ck_assert_uint_eq(st.lock_repairs_total, 1);
	destroy_queue(q);
}
END_TEST

/* Variant 0: a consumer takes the orphaned message before any producer
 * repairs tail (head passes tail by one); variant 1: a producer comes first. */
START_TEST(test_producer_dies_after_commit)
{
	mq_t *q = create_queue(4, 64);
	die_in_critical_section(PRODUCER_AFTER_COMMIT);
	if (_i == 0) {
		expect_text(q, "dying");
		ck_assert_int_eq(mq_send(q, "after", 5, 0), 0);
	} else {
		ck_assert_int_eq(mq_send(q, "after", 5, 0), 0);
		expect_text(q, "dying");
	}
	expect_text(q, "after");
	struct mq_stats st = stats_of(q);
	ck_assert_uint_eq(st.enqueued_total, 2);
	ck_assert_uint_eq(st.dequeued_total, 2);
	ck_assert_uint_eq(st.depth, 0);
	ck_assert_uint_eq(st.lock_repairs_total, 1);
	/* The ring keeps its capacity: exactly 4 more fit. */
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(mq_send(q, "fill", 4, 0), 0);
	ck_assert_int_eq(mq_send(q, "over", 4, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	destroy_queue(q);
}
END_TEST

START_TEST(test_consumer_dies_before_commit)
{
	mq_t *q = create_queue(4, 64);
	ck_assert_int_eq(mq_send(q, "keep", 4, 0), 0);
	die_in_critical_section(CONSUMER_BEFORE_COMMIT);
	/* It never returned from mq_recv: the message is still there, once. */
	expect_text(q, "keep");
	ck_assert_int_eq(mq_recv(q, (char[8]){0}, 8, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	struct mq_stats st = stats_of(q);
	ck_assert_uint_eq(st.dequeued_total, 1);
	ck_assert_uint_eq(st.lock_repairs_total, 1);
	destroy_queue(q);
}
END_TEST

START_TEST(test_consumer_dies_after_commit)
{
	mq_t *q = create_queue(4, 64);
	ck_assert_int_eq(mq_send(q, "taken", 5, 0), 0);
	ck_assert_int_eq(mq_send(q, "next", 4, 0), 0);
	die_in_critical_section(CONSUMER_AFTER_COMMIT);
	/* The dead consumer had taken "taken" (the one loss the contract
	 * allows); "next" is delivered once, and the lock works. */
	expect_text(q, "next");
	struct mq_stats st = stats_of(q);
	ck_assert_uint_eq(st.dequeued_total, 2);
	ck_assert_uint_eq(st.depth, 0);
	ck_assert_uint_eq(st.lock_repairs_total, 1);
	destroy_queue(q);
}
END_TEST

/* A segment found with a whole message committed at tail but tail not
 * advanced, and no dead lock holder to trigger a repair (scribbled, or a
 * crafted file): the next send steps over the message instead of losing it. */
START_TEST(test_committed_slot_at_tail_heals_without_dead_lock)
{
	mq_t *q = create_queue(4, 64);
	struct mq_shm *s = q->shm;
	uint64_t tail = mq_load_relaxed(&s->tail);
	struct mq_slot *slot = handle_slot(q, tail);
	slot->len = 6;
	memcpy(slot->data, "orphan", 6);
	mq_store_release(&slot->seq, tail + 1);
	ck_assert_int_eq(mq_send(q, "after", 5, 0), 0);
	expect_text(q, "orphan");
	expect_text(q, "after");
	struct mq_stats st = stats_of(q);
	ck_assert_uint_eq(st.enqueued_total, 2);
	ck_assert_uint_eq(st.depth, 0);
	ck_assert_uint_eq(st.lock_repairs_total, 0);
	destroy_queue(q);
}
END_TEST

static TCase *new_tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, setup_name, teardown_name);
	tcase_add_unchecked_fixture(tc, NULL, registry_cleanup);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

static Suite *queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc;

	tc = new_tcase(s, "basics");
	tcase_add_test(tc, test_fifo_order_1000_messages);
	tcase_add_test(tc, test_fifo_order_wraps_around);
	tcase_add_test(tc, test_binary_safe);
	tcase_add_test(tc, test_zero_length_message);
	tcase_add_test(tc, test_max_size_message);
	tcase_add_test(tc, test_recv_buffer_too_small_keeps_message);

	tc = new_tcase(s, "bad_input");
	tcase_add_test(tc, test_null_queue_is_einval);
	tcase_add_test(tc, test_null_buffers_are_einval);
	tcase_add_test(tc, test_bad_timeouts_are_einval);

	tc = new_tcase(s, "timeouts");
	tcase_add_loop_test(tc, test_recv_nowait_on_empty_is_eagain, 0, 2);
	tcase_add_loop_test(tc, test_send_nowait_on_full_is_eagain, 0, 2);
	tcase_add_loop_test(tc, test_recv_timeout_on_empty, 0, 2);
	tcase_add_loop_test(tc, test_send_timeout_on_full, 0, 2);
	tcase_add_test(tc, test_long_spin_respects_timeouts);
	tcase_add_loop_test(tc, test_timed_recv_gets_message_sent_meanwhile, 0, 2);

	tc = new_tcase(s, "blocking");
	tcase_add_loop_test(tc, test_blocking_recv_woken_by_other_process, 0, 2);
	tcase_add_loop_test(tc, test_blocking_send_woken_by_other_process, 0, 2);

	tc = new_tcase(s, "eintr");
	tcase_add_loop_test(tc, test_recv_interrupted_by_signal_is_eintr, 0, 2);
	tcase_add_loop_test(tc, test_send_interrupted_by_signal_is_eintr, 0, 2);

	tc = new_tcase(s, "threads");
	tcase_add_loop_test(tc, test_threads_share_one_handle, 0, 2);

	tc = new_tcase(s, "crash_windows");
	tcase_add_test(tc, test_producer_dies_before_commit);
	tcase_add_loop_test(tc, test_producer_dies_after_commit, 0, 2);
	tcase_add_test(tc, test_consumer_dies_before_commit);
	tcase_add_test(tc, test_consumer_dies_after_commit);
	tcase_add_test(tc, test_committed_slot_at_tail_heals_without_dead_lock);

	tc = new_tcase(s, "spin");
	tcase_add_test(tc, test_set_spin_rejects_bad_arguments);
	tcase_add_test(tc, test_set_spin_accepts_range);
	return s;
}

int main(void)
{
	registry_init();
	SRunner *sr = srunner_create(queue_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	registry_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
