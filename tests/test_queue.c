/* test_queue.c - unit tests: the copying calls (mq_send, mq_recv, the batches): order, sizes,
 * timeouts, EINTR, threads, counters. */
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
#include <sys/uio.h>
#include <unistd.h>

#define TEST_TAG "queue"
#include "testapi.h"

/*
 * Every behaviour runs in both geometries: _i bit 0 picks FIFO (512-byte
 * messages) or LIFO (64 KiB) segments; tests that also vary the spin or the
 * timeout use bit 1 (spin_off, blocking_timeout).
 */

/* spin_off: bit 1 of _i turns spinning off (mq_set_spin(q, 0)): the waits
 * then go straight to sleep. */
static void apply_spin(mq_t *q, int i)
{
	if (i & 2)
		ck_assert_int_eq(mq_set_spin(q, 0), 0);
}

static uint64_t depth(mq_t *q)
{
	return stats_of(q).depth;
}

/* Message I of the order tests: 4 + I % 60 bytes, the index then a pattern. */
static size_t make_msg(unsigned char *buf, uint32_t i)
{
	size_t len = 4 + i % 60;
	memcpy(buf, &i, 4);
	fill(buf + 4, len - 4, i);
	return len;
}

static void expect_msg(mq_t *q, uint32_t i)
{
	unsigned char want[64], got[64];
	size_t len = make_msg(want, i);
	memset(got, 0xee, sizeof(got));
	ssize_t n = mq_recv(q, got, sizeof(got), 0);
	ck_assert_msg(n == (ssize_t)len, "message %u: length %zd, expected %zu (%s)", i, n, len,
	              n < 0 ? mq_errdetail() : "");
	uint32_t idx;
	memcpy(&idx, got, 4);
	ck_assert_msg(memcmp(got, want, len) == 0, "message %u: wrong content (got index %u)", i,
	              idx);
}

/* ------------------------------------------------------------------- basics */

START_TEST(test_fifo_order_1000_messages)
{
	unsigned char buf[64];
	mq_t *q = create_geo(_i, 1024);
	for (uint32_t i = 0; i < 1000; i++) {
		size_t len = make_msg(buf, i);
		ck_assert_int_eq(mq_send(q, buf, len, 0), 0);
	}
	ck_assert_uint_eq(depth(q), 1000);
	for (uint32_t i = 0; i < 1000; i++)
		expect_msg(q, i);
	expect_empty(q);
	assert_sound(q);
	destroy(q);
}
END_TEST

/* A queue of 3 messages wrapped around hundreds of times, with uneven bursts. */
START_TEST(test_fifo_order_wraps_around)
{
	unsigned char buf[64];
	mq_t *q = create_geo(_i, 3);
	uint32_t sent = 0, received = 0;
	for (unsigned round = 0; received < 1000; round++) {
		unsigned burst = round % 3 + 1;
		while (burst-- > 0 && sent < 1000 && sent - received < 3) {
			size_t len = make_msg(buf, sent);
			ck_assert_int_eq(mq_send(q, buf, len, 0), 0);
			sent++;
		}
		if (sent - received == 3)
			EXPECT_ERR(mq_send(q, buf, 4, 0), EAGAIN, "queue full (3 messages)");
		unsigned take = round % 2 + 1;
		while (take-- > 0 && received < sent)
			expect_msg(q, received++);
		ck_assert_uint_eq(depth(q), sent - received);
	}
	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_free, 3);
	destroy(q);
}
END_TEST

/* Every length from 0 to the maximum that matters (cache lines, the ends),
 * every byte value, and nothing written past the message in the buffer. */
START_TEST(test_binary_safe_all_sizes)
{
	size_t max = geo_max_msg(_i);
	const size_t lens[] = {0,   1,   2,   63,      64,      65,      127, 128,
	                       255, 256, 257, max / 2, max - 1, max - 1, max};
	const size_t nlens = sizeof(lens) / sizeof(lens[0]);
	unsigned char *msg = malloc(max), *got = malloc(max + 64);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(got);
	mq_t *q = create_geo(_i, nlens + 1);
	for (size_t k = 0; k < nlens; k++) {
		fill(msg, lens[k], (uint32_t)k);
		ck_assert_int_eq(mq_send(q, msg, lens[k], 0), 0);
	}
	/* All 256 byte values, NULs included. */
	for (size_t j = 0; j < 256; j++)
		msg[j] = (unsigned char)j;
	ck_assert_int_eq(mq_send(q, msg, 256, 0), 0);

	for (size_t k = 0; k < nlens; k++) {
		memset(got, 0x5a, max + 64);
		ssize_t n = mq_recv(q, got, max + 64, 0);
		ck_assert_msg(n == (ssize_t)lens[k], "message %zu: length %zd, expected %zu", k, n,
		              lens[k]);
		ck_assert_msg(pattern_ok(got, lens[k], (uint32_t)k), "message %zu: wrong bytes", k);
		for (size_t j = lens[k]; j < lens[k] + 64; j++)
			ck_assert_msg(got[j] == 0x5a, "message %zu: byte %zu past its end written",
			              k, j);
	}
	ck_assert_int_eq(mq_recv(q, got, 256, 0), 256);
	for (size_t j = 0; j < 256; j++)
		ck_assert_uint_eq(got[j], j);

	struct mq_stats s = stats_of(q);
	size_t total = 256;
	for (size_t k = 0; k < nlens; k++)
		total += lens[k];
	ck_assert_uint_eq(s.bytes_enqueued_total, total);
	ck_assert_uint_eq(s.bytes_dequeued_total, total);
	free(msg);
	free(got);
	destroy(q);
}
END_TEST

START_TEST(test_zero_length_message)
{
	unsigned char buf[16];
	mq_t *q = create_geo(_i, 4);
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

	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.enqueued_total, 3);
	ck_assert_uint_eq(s.dequeued_total, 3);
	ck_assert_uint_eq(s.bytes_enqueued_total, 5);
	ck_assert_uint_eq(s.bytes_dequeued_total, 5);
	destroy(q);
}
END_TEST

START_TEST(test_max_size_message)
{
	size_t max = geo_max_msg(_i);
	unsigned char *msg = malloc(max + 1), *got = malloc(max);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(got);
	fill(msg, max + 1, 99);
	mq_t *q = create_geo(_i, 4);
	char want[96];
	snprintf(want, sizeof(want), "message of %zu bytes, the maximum is %zu", max + 1, max);

	ck_assert_int_eq(mq_send(q, msg, max, 0), 0);
	EXPECT_ERR(mq_send(q, msg, max + 1, 0), EMSGSIZE, want);
	EXPECT_ERR(mq_send(q, msg, SIZE_MAX, 0), EMSGSIZE, "the maximum is");
	ck_assert_uint_eq(depth(q), 1);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 1);

	/* On a full queue too: a message that can never fit is not waited for. */
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(mq_send(q, msg, (size_t)i, 0), 0);
	double t0 = now_ms();
	EXPECT_ERR(mq_send(q, msg, max + 1, 2000), EMSGSIZE, want);
	EXPECT_ERR(mq_send(q, msg, max + 1, -1), EMSGSIZE, want);
	ck_assert_msg(now_ms() - t0 < 1000, "EMSGSIZE after %.0f ms of waiting", now_ms() - t0);
	ck_assert_uint_eq(depth(q), 4);

	ck_assert_int_eq(mq_recv(q, got, max, 0), (ssize_t)max);
	ck_assert(pattern_ok(got, max, 99));
	for (int i = 1; i < 4; i++)
		ck_assert_int_eq(mq_recv(q, got, max, 0), i);
	ck_assert_uint_eq(depth(q), 0);
	free(msg);
	free(got);
	destroy(q);
}
END_TEST

START_TEST(test_recv_buffer_too_small_keeps_message)
{
	unsigned char got[16];
	mq_t *q = create_geo(_i, 4);
	send_text(q, "0123456789");
	send_text(q, "next");

	memset(got, 0x55, sizeof(got));
	EXPECT_ERR(mq_recv(q, got, 9, 0), EMSGSIZE,
	           "message of 10 bytes, buffer of 9 (the message stays queued)");
	ck_assert_uint_eq(got[0], 0x55); /* nothing copied */
	ck_assert_uint_eq(depth(q), 2);
	EXPECT_ERR(mq_recv(q, NULL, 0, 0), EMSGSIZE, "buffer of 0");
	double t0 = now_ms();
	EXPECT_ERR(mq_recv(q, got, 9, 2000), EMSGSIZE, "stays queued"); /* no waiting */
	EXPECT_ERR(mq_recv(q, got, 9, -1), EMSGSIZE, "stays queued");
	ck_assert_msg(now_ms() - t0 < 1000, "EMSGSIZE after %.0f ms", now_ms() - t0);
	ck_assert_uint_eq(depth(q), 2);

	expect_text(q, "0123456789");
	expect_text(q, "next");

	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.dequeued_total, 2);
	ck_assert_uint_eq(s.bytes_dequeued_total, 14);
	destroy(q);
}
END_TEST

/* ---------------------------------------------------------------- bad input */

START_TEST(test_null_queue_is_einval)
{
	char buf[8];
	struct iovec iov = {buf, sizeof(buf)};
	EXPECT_ERR(mq_send(NULL, "x", 1, 0), EINVAL, "mq_send: no queue handle");
	EXPECT_ERR(mq_send(NULL, NULL, 0, -1), EINVAL, "no queue handle");
	EXPECT_ERR(mq_recv(NULL, buf, sizeof(buf), 0), EINVAL, "mq_recv: no queue handle");
	EXPECT_ERR(mq_recv(NULL, buf, sizeof(buf), -1), EINVAL, "no queue handle");
	EXPECT_ERR(mq_send_batch(NULL, &iov, 1, 0), EINVAL, "no queue handle");
	EXPECT_ERR(mq_send_batch(NULL, NULL, 0, 0), EINVAL, "no queue handle");
	EXPECT_ERR(mq_recv_batch(NULL, &iov, 1, -1), EINVAL, "no queue handle");
	EXPECT_ERR(mq_recv_batch(NULL, NULL, 0, 0), EINVAL, "no queue handle");
}
END_TEST

START_TEST(test_null_buffers_are_einval)
{
	char buf[8];
	mq_t *q = create_geo(_i, 4);
	send_text(q, "abc");

	EXPECT_ERR(mq_send(q, NULL, 1, 0), EINVAL, "NULL message of 1 bytes");
	ck_assert_uint_eq(depth(q), 1);

	EXPECT_ERR(mq_recv(q, NULL, 3, 0), EINVAL, "NULL buffer of 3 bytes");
	ck_assert_uint_eq(depth(q), 1); /* the message was not taken */

	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 1);
	destroy(q);
}
END_TEST

START_TEST(test_bad_timeouts_are_einval)
{
	static const int bad[] = {-2, -1000, INT_MIN};
	char buf[8], want[64];
	struct iovec iov = {buf, sizeof(buf)};
	mq_t *q = create_geo(_i, 4);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(want, sizeof(want), "timeout %d ms (use -1, 0 or > 0)", bad[i]);
		EXPECT_ERR(mq_send(q, "a", 1, bad[i]), EINVAL, want);
		EXPECT_ERR(mq_send_batch(q, &iov, 1, bad[i]), EINVAL, want);
		ck_assert_uint_eq(depth(q), 0);
		EXPECT_ERR(mq_recv(q, buf, sizeof(buf), bad[i]), EINVAL, want);
		EXPECT_ERR(mq_recv_batch(q, &iov, 1, bad[i]), EINVAL, want);
	}

	/* With a message queued: still EINVAL, and the message stays. */
	send_text(q, "m");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_ERR(mq_recv(q, buf, sizeof(buf), bad[i]), EINVAL, "timeout");
		EXPECT_ERR(mq_recv_batch(q, &iov, 1, bad[i]), EINVAL, "timeout");
		ck_assert_uint_eq(depth(q), 1);
	}
	expect_text(q, "m");
	destroy(q);
}
END_TEST

/* A handle from mq_observe looks only: every data call is EINVAL. */
START_TEST(test_observer_cannot_send_or_recv)
{
	char buf[8];
	struct iovec iov = {buf, sizeof(buf)};
	mq_t *q = create_geo(_i, 4);
	send_text(q, "kept");
	mq_t *o = mq_observe(qname);
	ck_assert_ptr_nonnull(o);
	EXPECT_ERR(mq_send(o, "x", 1, 0), EINVAL, "this handle only observes the queue");
	EXPECT_ERR(mq_send_batch(o, &iov, 1, 0), EINVAL, "only observes");
	EXPECT_ERR(mq_recv(o, buf, sizeof(buf), 0), EINVAL, "only observes");
	EXPECT_ERR(mq_recv_batch(o, &iov, 1, 0), EINVAL, "only observes");
	ck_assert_uint_eq(stats_of(o).depth, 1);
	ck_assert_uint_eq(stats_of(o).clients, 1); /* the observer is not a client */
	ck_assert_int_eq(mq_detach(o), 0);
	expect_text(q, "kept");
	destroy(q);
}
END_TEST

/* ----------------------------------------------------------------- timeouts */

START_TEST(test_recv_nowait_on_empty_is_eagain)
{
	char buf[8];
	mq_t *q = create_geo(_i, 4);
	apply_spin(q, _i);
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 0), EAGAIN, "queue empty");
	/* No message, so nothing is too big. */
	EXPECT_ERR(mq_recv(q, buf, 1, 0), EAGAIN, "queue empty");
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.empty_total, 2);
	ck_assert_uint_eq(s.blocked_recvs_total, 0);
	destroy(q);
}
END_TEST

START_TEST(test_send_nowait_on_full_is_eagain)
{
	mq_t *q = create_geo(_i, 2);
	apply_spin(q, _i);
	send_text(q, "a");
	send_text(q, "b");
	EXPECT_ERR(mq_send(q, "c", 1, 0), EAGAIN, "queue full (2 messages)");
	ck_assert_uint_eq(depth(q), 2);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.full_total, 1);
	ck_assert_uint_eq(s.blocked_sends_total, 0);
	expect_text(q, "a");
	expect_text(q, "b");
	destroy(q);
}
END_TEST

START_TEST(test_recv_timeout_on_empty)
{
	char buf[8];
	mq_t *q = create_geo(_i, 4);
	apply_spin(q, _i);
	double t0 = now_ms();
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 50), ETIMEDOUT, "still empty after 50 ms");
	double elapsed = now_ms() - t0;
	ck_assert_msg(elapsed >= 49.0, "returned after %.1f ms, before the 50 ms timeout", elapsed);
	ck_assert_msg(elapsed < 1000.0, "returned after %.1f ms", elapsed);
	ck_assert_uint_eq(depth(q), 0);
	ck_assert_uint_eq(stats_of(q).blocked_recvs_total, 1);
	destroy(q);
}
END_TEST

START_TEST(test_send_timeout_on_full)
{
	mq_t *q = create_geo(_i, 1);
	apply_spin(q, _i);
	send_text(q, "a");
	double t0 = now_ms();
	EXPECT_ERR(mq_send(q, "b", 1, 50), ETIMEDOUT, "still full after 50 ms");
	double elapsed = now_ms() - t0;
	ck_assert_msg(elapsed >= 49.0, "returned after %.1f ms, before the 50 ms timeout", elapsed);
	ck_assert_msg(elapsed < 1000.0, "returned after %.1f ms", elapsed);
	ck_assert_uint_eq(depth(q), 1);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.enqueued_total, 1);
	ck_assert_uint_eq(s.blocked_sends_total, 1);
	expect_text(q, "a");
	destroy(q);
}
END_TEST

/* The spin is bounded by the deadline: a long spin and a short timeout still
 * time out on time, receiving and sending. */
START_TEST(test_long_spin_respects_timeouts)
{
	char buf[8];
	mq_t *q = create_geo(_i, 1);
	ck_assert_int_eq(mq_set_spin(q, 1000000), 0);
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 0), EAGAIN, "queue empty");
	double t0 = now_ms();
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 50), ETIMEDOUT, "still empty");
	double recv_ms = now_ms() - t0;
	send_text(q, "x");
	t0 = now_ms();
	EXPECT_ERR(mq_send(q, "y", 1, 50), ETIMEDOUT, "still full");
	double send_ms = now_ms() - t0;
	ck_assert_msg(recv_ms >= 49.0 && recv_ms < 500.0 && send_ms >= 49.0 && send_ms < 500.0,
	              "with a 1 s spin, a 50 ms timeout: mq_recv ETIMEDOUT after %.1f ms, mq_send "
	              "after %.1f ms",
	              recv_ms, send_ms);
	destroy(q);
}
END_TEST

struct delayed {
	mq_t *q;
	int delay_ms;
	int rc;
};

static void *delayed_send_thread(void *arg)
{
	struct delayed *d = arg;
	sleep_ms(d->delay_ms);
	d->rc = mq_send(d->q, "late", 4, 0);
	return NULL;
}

static void *delayed_recv_thread(void *arg)
{
	struct delayed *d = arg;
	char buf[16];
	sleep_ms(d->delay_ms);
	d->rc = (int)mq_recv(d->q, buf, sizeof(buf), 0);
	return NULL;
}

START_TEST(test_timed_recv_gets_message_sent_meanwhile)
{
	char buf[8];
	mq_t *q = create_geo(_i, 4);
	apply_spin(q, _i);
	struct delayed d = {q, 50, -2};
	pthread_t t;
	double t0 = now_ms();
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_send_thread, &d), 0);
	ssize_t n = mq_recv(q, buf, sizeof(buf), 4000);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(d.rc, 0);
	ck_assert_msg(n == 4, "mq_recv: %zd (%s)", n, mq_errdetail());
	ck_assert_mem_eq(buf, "late", 4);
	ck_assert_msg(elapsed >= 45.0, "got the message after %.1f ms, before it was sent",
	              elapsed);
	ck_assert_msg(elapsed < 2000.0, "woken only after %.1f ms", elapsed);
	destroy(q);
}
END_TEST

START_TEST(test_timed_send_gets_room_made_meanwhile)
{
	mq_t *q = create_geo(_i, 1);
	apply_spin(q, _i);
	send_text(q, "first");
	struct delayed d = {q, 50, -2};
	pthread_t t;
	double t0 = now_ms();
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_recv_thread, &d), 0);
	int rc = mq_send(q, "second", 6, 4000);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(d.rc, 5);
	ck_assert_msg(rc == 0, "mq_send: %s", mq_errdetail());
	ck_assert_msg(elapsed >= 45.0, "sent after %.1f ms, before there was room", elapsed);
	ck_assert_msg(elapsed < 2000.0, "woken only after %.1f ms", elapsed);
	expect_text(q, "second");
	destroy(q);
}
END_TEST

/* ---------------------------------------------------- blocking across processes */

START_TEST(test_blocking_recv_woken_by_other_process)
{
	char buf[16];
	mq_t *q = create_geo(_i, 4);
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
	ck_assert_msg(n == 7, "mq_recv: %zd (%s)", n, mq_errdetail());
	ck_assert_mem_eq(buf, "wake up", 7);
	ck_assert_msg(elapsed >= 90.0, "mq_recv returned after %.1f ms, before the send", elapsed);

	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.blocked_recvs_total, 1);
	ck_assert_uint_eq(s.depth, 0);
	destroy(q);
}
END_TEST

START_TEST(test_blocking_send_woken_by_other_process)
{
	mq_t *q = create_geo(_i, 2);
	apply_spin(q, _i);
	send_text(q, "m0");
	send_text(q, "m1");

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
	ck_assert_msg(rc == 0, "mq_send: %s", mq_errdetail());
	ck_assert_msg(elapsed >= 90.0, "mq_send returned after %.1f ms, before the recv", elapsed);

	expect_text(q, "m1");
	expect_text(q, "m2");
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.blocked_sends_total, 1);
	ck_assert_uint_eq(s.depth, 0);
	destroy(q);
}
END_TEST

/* -------------------------------------------------------------------- EINTR */

static atomic_int sigusr1_count;

static void on_sigusr1(int sig)
{
	(void)sig;
	atomic_fetch_add(&sigusr1_count, 1);
}

enum call_kind { CALL_RECV, CALL_SEND, CALL_RECV_BATCH, CALL_SEND_BATCH };

struct blocked_call {
	mq_t *q;
	enum call_kind kind;
	int timeout_ms;
	atomic_int done;
	ssize_t ret;
	int err;
	char detail[256];
};

static void *blocked_call_thread(void *arg)
{
	struct blocked_call *c = arg;
	char buf[16];
	struct iovec iov[2] = {{buf, 8}, {buf + 8, 8}};
	struct iovec out[2] = {iov_text("blocked"), iov_text("again")};
	errno = 0;
	switch (c->kind) {
	case CALL_RECV:
		c->ret = mq_recv(c->q, buf, sizeof(buf), c->timeout_ms);
		break;
	case CALL_SEND:
		c->ret = mq_send(c->q, "blocked", 7, c->timeout_ms);
		break;
	case CALL_RECV_BATCH:
		c->ret = mq_recv_batch(c->q, iov, 2, c->timeout_ms);
		break;
	case CALL_SEND_BATCH:
		c->ret = mq_send_batch(c->q, out, 2, c->timeout_ms);
		break;
	}
	c->err = errno;
	snprintf(c->detail, sizeof(c->detail), "%s", mq_errdetail());
	atomic_store(&c->done, 1);
	return NULL;
}

/*
 * run_interrupted: start the call in a thread, signal it with SIGUSR1 (a
 * handler without SA_RESTART) after ~100 ms, and again a few times should a
 * signal have arrived before it slept. Returns 1 if it returned on its own,
 * 0 if it had to be unblocked through the queue (the test then fails).
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
		if (c->kind == CALL_SEND || c->kind == CALL_SEND_BATCH)
			mq_recv(c->q, buf, sizeof(buf), 0);
		else
			mq_send(c->q, "unblock", 7, 0);
	}
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_ge(atomic_load(&sigusr1_count), 1);
	return on_its_own;
}

/* The timeout of the EINTR tests: bit 1 of _i: wait forever (-1) or at most 5 s. */
static int blocking_timeout(int i)
{
	return (i & 2) ? 5000 : -1;
}

START_TEST(test_recv_interrupted_by_signal_is_eintr)
{
	for (enum call_kind kind = CALL_RECV; kind <= CALL_RECV_BATCH; kind += 2) {
		mq_t *q = create_geo(_i, 4);
		ck_assert_int_eq(mq_set_spin(q, 0), 0);
		struct blocked_call c = {.q = q, .kind = kind, .timeout_ms = blocking_timeout(_i)};
		double t0 = now_ms();
		int on_its_own = run_interrupted(&c);
		double elapsed = now_ms() - t0;
		const char *call = kind == CALL_RECV ? "mq_recv" : "mq_recv_batch";
		ck_assert_msg(on_its_own, "%s(timeout %d) was not interrupted by SIGUSR1", call,
		              c.timeout_ms);
		ck_assert_msg(c.ret == -1 && c.err == EINTR, "%s(timeout %d): %zd errno %d (%s)",
		              call, c.timeout_ms, c.ret, c.err, c.detail);
		ck_assert_msg(strstr(c.detail, "interrupted"), "%s: detail \"%s\"", call, c.detail);
		ck_assert_msg(elapsed < 4500.0, "EINTR only after %.0f ms", elapsed);

		/* The queue still works and nothing was lost or invented. */
		ck_assert_uint_eq(depth(q), 0);
		send_text(q, "after");
		expect_text(q, "after");
		destroy(q);
		setup_name();
	}
}
END_TEST

START_TEST(test_send_interrupted_by_signal_is_eintr)
{
	for (enum call_kind kind = CALL_SEND; kind <= CALL_SEND_BATCH; kind += 2) {
		mq_t *q = create_geo(_i, 1);
		ck_assert_int_eq(mq_set_spin(q, 0), 0);
		send_text(q, "first");
		struct blocked_call c = {.q = q, .kind = kind, .timeout_ms = blocking_timeout(_i)};
		double t0 = now_ms();
		int on_its_own = run_interrupted(&c);
		double elapsed = now_ms() - t0;
		const char *call = kind == CALL_SEND ? "mq_send" : "mq_send_batch";
		ck_assert_msg(on_its_own, "%s(timeout %d) was not interrupted by SIGUSR1", call,
		              c.timeout_ms);
		ck_assert_msg(c.ret == -1 && c.err == EINTR, "%s(timeout %d): %zd errno %d (%s)",
		              call, c.timeout_ms, c.ret, c.err, c.detail);
		ck_assert_msg(strstr(c.detail, "interrupted"), "%s: detail \"%s\"", call, c.detail);
		ck_assert_msg(elapsed < 4500.0, "EINTR only after %.0f ms", elapsed);

		/* Nothing was queued by the interrupted send. */
		ck_assert_uint_eq(depth(q), 1);
		ck_assert_uint_eq(stats_of(q).enqueued_total, 1);
		expect_text(q, "first");
		expect_empty(q);
		destroy(q);
		setup_name();
	}
}
END_TEST

/* ------------------------------------------------------------------ threads */

#define MT_SENDERS   4
#define MT_RECEIVERS 4
#define MT_PER       10000
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
	char first_error[160];
};

struct mt_arg {
	struct mt_state *st;
	uint32_t id;
};

static void mt_error(struct mt_state *st, const char *what, long a, long b)
{
	if (atomic_fetch_add(&st->errors, 1) == 0)
		snprintf(st->first_error, sizeof(st->first_error), "%s (%ld, %ld): %s", what, a, b,
		         mq_errdetail());
}

/* Senders alternate between mq_send and batches of 3. */
static void *mt_sender(void *arg)
{
	struct mt_arg *a = arg;
	struct mt_msg m[3];
	for (uint32_t seq = 0; seq < MT_PER;) {
		if (seq % 2 == 0 || seq + 3 > MT_PER) {
			m[0] = (struct mt_msg){a->id, seq};
			if (mq_send(a->st->q, &m[0], sizeof(m[0]), -1) != 0) {
				mt_error(a->st, "mq_send failed: errno, seq", errno, seq);
				break;
			}
			seq++;
			continue;
		}
		struct iovec iov[3];
		for (int k = 0; k < 3; k++) {
			m[k] = (struct mt_msg){a->id, seq + (uint32_t)k};
			iov[k] = (struct iovec){&m[k], sizeof(m[k])};
		}
		int k = mq_send_batch(a->st->q, iov, 3, -1);
		if (k < 1 || k > 3) {
			mt_error(a->st, "mq_send_batch failed: k, errno", k, errno);
			break;
		}
		seq += (uint32_t)k;
	}
	return NULL;
}

static int mt_take(struct mt_state *st, const unsigned char *buf, ssize_t n, int64_t *last)
{
	struct mt_msg m;
	if (n != (ssize_t)sizeof(m)) {
		mt_error(st, "received length, errno", (long)n, errno);
		return -1;
	}
	memcpy(&m, buf, sizeof(m));
	if (m.sender == MT_STOP)
		return 1;
	if (m.sender >= MT_SENDERS || m.seq >= MT_PER) {
		mt_error(st, "bad message", m.sender, m.seq);
		return 0;
	}
	if (atomic_fetch_add(&st->seen[m.sender * MT_PER + m.seq], 1) != 0)
		atomic_fetch_add(&st->duplicates, 1);
	if ((int64_t)m.seq <= last[m.sender])
		atomic_fetch_add(&st->order_violations, 1);
	last[m.sender] = m.seq;
	atomic_fetch_add(&st->received, 1);
	return 0;
}

/* Receivers alternate between mq_recv and batches of up to 4. */
static void *mt_receiver(void *arg)
{
	struct mt_arg *a = arg;
	struct mt_state *st = a->st;
	int64_t last[MT_SENDERS];
	for (int i = 0; i < MT_SENDERS; i++)
		last[i] = -1;
	for (unsigned round = 0;; round++) {
		unsigned char buf[4][32];
		if (round % 2 == 0) {
			ssize_t n = mq_recv(st->q, buf[0], sizeof(buf[0]), -1);
			int r = mt_take(st, buf[0], n, last);
			if (r)
				return NULL;
			continue;
		}
		struct iovec iov[4];
		for (int k = 0; k < 4; k++)
			iov[k] = (struct iovec){buf[k], sizeof(buf[k])};
		int k = mq_recv_batch(st->q, iov, 4, -1);
		if (k < 1 || k > 4) {
			mt_error(st, "mq_recv_batch: k, errno", k, errno);
			return NULL;
		}
		int stop = 0;
		for (int j = 0; j < k; j++) {
			int r = mt_take(st, buf[j], (ssize_t)iov[j].iov_len, last);
			if (r < 0)
				return NULL;
			stop |= r;
		}
		if (stop) {
			/* A batch may take a second stop message meant for another
			 * receiver: give it back. */
			struct mt_msg m;
			for (int j = 0, seen_stop = 0; j < k; j++) {
				memcpy(&m, buf[j], sizeof(m));
				if (m.sender == MT_STOP && seen_stop++)
					mq_send(st->q, &m, sizeof(m), -1);
			}
			return NULL;
		}
	}
}

START_TEST(test_threads_share_one_handle)
{
	static struct mt_state st;
	memset(&st, 0, sizeof(st));
	st.q = create_geo(_i, 64);
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

	struct mq_stats s = stats_of(st.q);
	ck_assert_uint_eq(s.depth, 0);
	ck_assert_uint_ge(s.enqueued_total, MT_SENDERS * MT_PER + MT_RECEIVERS);
	ck_assert_uint_eq(s.enqueued_total, s.dequeued_total);
	ck_assert_uint_le(s.high_water, 64);
	assert_sound(st.q);
	ck_assert_uint_eq(inspect_of(st.q).chunks_free, 64);
	free((void *)st.seen);
	destroy(st.q);
}
END_TEST

/* ----------------------------------------------------------------- counters */

static const struct mq_client_info *find_role(const struct mq_client_info *info, int n,
                                              uint32_t role)
{
	const struct mq_client_info *found = NULL;
	for (int i = 0; i < n; i++) {
		if (info[i].role == role && info[i].alive) {
			ck_assert_msg(found == NULL, "two live clients with role %u", role);
			found = &info[i];
		}
	}
	ck_assert_msg(found != NULL, "no live client with role %u", role);
	return found;
}

/* Each client's own counters, by handle, in one process and from a child. */
START_TEST(test_per_client_counters)
{
	unsigned char buf[16];
	mq_t *q = create_geo(_i, 8); /* attached, never sends or receives */
	mq_t *p = attach_ok(), *c = attach_ok();
	for (size_t len = 1; len <= 3; len++)
		ck_assert_int_eq(mq_send(p, "xyz", len, 0), 0);
	struct iovec two[2] = {iov_text("abcd"), iov_text("efghi")};
	ck_assert_int_eq(mq_send_batch(p, two, 2, 0), 2);
	ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 1);
	ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 2);
	struct iovec one = {buf, sizeof(buf)};
	ck_assert_int_eq(mq_recv_batch(c, &one, 1, 0), 1);
	ck_assert_uint_eq(one.iov_len, 3);

	struct mq_client_info info[8];
	ck_assert_int_eq(mq_clients(q, info, 8), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_int_eq(info[i].pid, getpid());
		ck_assert_int_eq(info[i].alive, 1);
		ck_assert_uint_eq(info[i].in_flight, 0);
	}
	const struct mq_client_info *none = find_role(info, 3, 0);
	ck_assert_uint_eq(none->sent_total + none->received_total, 0);
	const struct mq_client_info *prod = find_role(info, 3, MQ_ROLE_PRODUCER);
	ck_assert_uint_eq(prod->sent_total, 5);
	ck_assert_uint_eq(prod->bytes_sent_total, 1 + 2 + 3 + 4 + 5);
	ck_assert_uint_eq(prod->received_total, 0);
	const struct mq_client_info *cons = find_role(info, 3, MQ_ROLE_CONSUMER);
	ck_assert_uint_eq(cons->received_total, 3);
	ck_assert_uint_eq(cons->bytes_received_total, 1 + 2 + 3);
	ck_assert_uint_eq(cons->sent_total, 0);

	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.clients, 3);
	ck_assert_uint_eq(s.producers, 1);
	ck_assert_uint_eq(s.consumers, 1);
	ck_assert_uint_eq(s.enqueued_total, 5);
	ck_assert_uint_eq(s.dequeued_total, 3);
	ck_assert_uint_eq(s.bytes_enqueued_total, 15);
	ck_assert_uint_eq(s.bytes_dequeued_total, 6);
	ck_assert_uint_eq(s.depth, 2);

	/* A child that sends two and dies attached: listed, not alive, its
	 * counters kept; not counted among the live clients. */
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *k = mq_attach(qname);
		if (!k || mq_send(k, "c1", 2, 0) != 0 || mq_send(k, "c2", 2, 0) != 0)
			_exit(10);
		_exit(0); /* no mq_detach */
	}
	ck_assert_int_eq(wait_child(pid), 0);
	int n = mq_clients(q, info, 8);
	ck_assert_int_eq(n, 4);
	int found = 0;
	for (int i = 0; i < n; i++) {
		if (info[i].pid != pid)
			continue;
		found++;
		ck_assert_int_eq(info[i].alive, 0);
		ck_assert_uint_eq(info[i].role, MQ_ROLE_PRODUCER);
		ck_assert_uint_eq(info[i].sent_total, 2);
		ck_assert_uint_eq(info[i].bytes_sent_total, 4);
	}
	ck_assert_int_eq(found, 1);
	s = stats_of(q);
	ck_assert_uint_eq(s.clients, 3);
	ck_assert_uint_eq(s.producers, 1);

	/* A reap finds it: one dead client, what it had done. */
	struct mq_reaped r[4];
	ck_assert_int_eq(mq_reap(q, r, 4, 1000), 1);
	ck_assert_int_eq(r[0].pid, pid);
	ck_assert_uint_eq(r[0].role, MQ_ROLE_PRODUCER);
	ck_assert_uint_eq(r[0].sent_total, 2);
	ck_assert_uint_eq(stats_of(q).recoveries_total, 1);
	ck_assert_int_eq(mq_reap(q, r, 4, 1000), 0);

	/* A client that detaches leaves the table. */
	ck_assert_int_eq(mq_detach(c), 0);
	s = stats_of(q);
	ck_assert_uint_eq(s.clients, 2);
	ck_assert_uint_eq(s.consumers, 0);
	ck_assert_int_eq(mq_detach(p), 0);
	destroy(q);
}
END_TEST

/* mqbridge declares itself: the bit is added to what sending and receiving
 * record, is seen by inspection and by a reap; bad declarations change nothing. */
START_TEST(test_declare_role)
{
	mq_t *q = create_geo(_i, 8);
	mq_t *b = attach_ok();
	ck_assert_int_eq(mq_declare_role(b, MQ_ROLE_BRIDGE), 0);
	ck_assert_int_eq(mq_declare_role(b, MQ_ROLE_BRIDGE), 0); /* again: no change */
	send_text(b, "x");
	struct mq_client_info info[4];
	ck_assert_int_eq(mq_clients(q, info, 4), 2);
	const struct mq_client_info *br = find_role(info, 2, MQ_ROLE_BRIDGE | MQ_ROLE_PRODUCER);
	ck_assert_uint_eq(br->sent_total, 1);
	find_role(info, 2, 0); /* the creator: untouched */
	/* It still counts as the queue's producer. */
	ck_assert_uint_eq(stats_of(q).producers, 1);

	EXPECT_ERR(mq_declare_role(NULL, MQ_ROLE_BRIDGE), EINVAL, "no queue handle");
	EXPECT_ERR(mq_declare_role(b, 0), EINVAL, "role 0 is not one to declare");
	EXPECT_ERR(mq_declare_role(b, MQ_ROLE_PRODUCER), EINVAL, "role 0x1 is not one to declare");
	EXPECT_ERR(mq_declare_role(b, MQ_ROLE_BRIDGE | MQ_ROLE_CONSUMER), EINVAL,
	           "role 0x6 is not");
	EXPECT_ERR(mq_declare_role(b, 8), EINVAL, "role 0x8 is not");
	mq_t *o = mq_observe(qname);
	ck_assert_ptr_nonnull(o);
	EXPECT_ERR(mq_declare_role(o, MQ_ROLE_BRIDGE), EINVAL, "has no client entry");
	ck_assert_int_eq(mq_detach(o), 0);
	ck_assert_int_eq(mq_clients(q, info, 4), 2);
	br = find_role(info, 2, MQ_ROLE_BRIDGE | MQ_ROLE_PRODUCER);

	/* A bridge that dies attached is reaped with its role. */
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *k = mq_attach(qname);
		_exit(!k || mq_declare_role(k, MQ_ROLE_BRIDGE) != 0 ? 10 : 0);
	}
	ck_assert_int_eq(wait_child(pid), 0);
	struct mq_reaped r[2];
	ck_assert_int_eq(mq_reap(q, r, 2, 1000), 1);
	ck_assert_uint_eq(r[0].role, MQ_ROLE_BRIDGE);
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(q);
}
END_TEST

/* The queue-wide event counters: high water, full and empty events, blocked calls. */
START_TEST(test_queue_counters)
{
	char buf[8];
	mq_t *q = create_geo(_i, 4);
	for (int i = 0; i < 3; i++)
		send_text(q, "h");
	expect_text(q, "h");
	for (int i = 0; i < 2; i++)
		send_text(q, "h");
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full");
	EXPECT_ERR(mq_send(q, "x", 1, 10), ETIMEDOUT, "still full");
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.high_water, 4);
	ck_assert_uint_eq(s.full_total, 2);
	ck_assert_uint_eq(s.blocked_sends_total, 1);
	for (int i = 0; i < 4; i++)
		expect_text(q, "h");
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 0), EAGAIN, "queue empty");
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 10), ETIMEDOUT, "still empty");
	s = stats_of(q);
	ck_assert_uint_eq(s.empty_total, 2);
	ck_assert_uint_eq(s.blocked_recvs_total, 1);
	ck_assert_uint_eq(s.high_water, 4);
	ck_assert_uint_eq(s.enqueued_total, 5);
	ck_assert_uint_eq(s.dequeued_total, 5);
	ck_assert_uint_eq(s.depth, 0);
	ck_assert_uint_eq(s.capacity, 4);
	ck_assert_uint_eq(s.max_msg_size, geo_max_msg(_i));
	destroy(q);
}
END_TEST

/* --------------------------------------------------------------- send batch */

START_TEST(test_send_batch_sends_all_in_order)
{
	mq_t *q = create_geo(_i, 8);
	struct iovec m[5] = {
	        iov_text("a"), iov_text(""), iov_text("ccc"), {NULL, 0}, iov_text("eeeee")};
	ck_assert_int_eq(mq_send_batch(q, m, 5, 0), 5);
	expect_text(q, "a");
	expect_text(q, "");
	expect_text(q, "ccc");
	expect_text(q, "");
	expect_text(q, "eeeee");
	expect_empty(q);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.enqueued_total, 5);
	ck_assert_uint_eq(s.bytes_enqueued_total, 9);
	destroy(q);
}
END_TEST

/* A batch longer than the entries a send commits together (64) is still
 * sent whole when there is room for it, in order; receiving takes what is
 * there, up to n a call. */
START_TEST(test_send_batch_longer_than_a_burst)
{
	enum { N = 200 };
	mq_t *q = create_geo(_i, 256);
	static uint32_t out[N], in[N];
	struct iovec m[N];
	for (uint32_t i = 0; i < N; i++) {
		out[i] = i * 2654435761u;
		m[i] = (struct iovec){&out[i], sizeof(out[i])};
	}
	ck_assert_int_eq(mq_send_batch(q, m, N, 0), N);
	ck_assert_uint_eq(depth(q), N);
	unsigned got = 0, calls = 0;
	while (got < N) {
		struct iovec b[N];
		for (unsigned i = 0; i < N - got; i++)
			b[i] = (struct iovec){&in[got + i], sizeof(in[0])};
		int k = mq_recv_batch(q, b, N - got, 0);
		ck_assert_msg(k >= 1, "mq_recv_batch after %u of %u: %d (%s)", got, N, k,
		              mq_errdetail());
		for (int i = 0; i < k; i++)
			ck_assert_uint_eq(b[i].iov_len, sizeof(in[0]));
		got += (unsigned)k;
		calls++;
	}
	ck_assert_uint_le(calls, 4);
	ck_assert_mem_eq(in, out, sizeof(out));
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).enqueued_total, N);
	destroy(q);
}
END_TEST

/* Room for k of n: the first k are sent at once, the rest are not. */
START_TEST(test_send_batch_sends_first_k)
{
	mq_t *q = create_geo(_i, 4);
	send_text(q, "old1");
	send_text(q, "old2");
	struct iovec m[5] = {iov_text("b0"), iov_text("b1"), iov_text("b2"), iov_text("b3"),
	                     iov_text("b4")};
	ck_assert_int_eq(mq_send_batch(q, m, 5, 0), 2);
	ck_assert_uint_eq(depth(q), 4);
	/* Full: the timeouts apply to the first message. */
	EXPECT_ERR(mq_send_batch(q, m + 2, 3, 0), EAGAIN, "queue full (4 messages)");
	double t0 = now_ms();
	EXPECT_ERR(mq_send_batch(q, m + 2, 3, 50), ETIMEDOUT, "still full after 50 ms");
	double elapsed = now_ms() - t0;
	ck_assert_msg(elapsed >= 49 && elapsed < 1000, "ETIMEDOUT after %.1f ms", elapsed);
	expect_text(q, "old1");
	expect_text(q, "old2");
	expect_text(q, "b0");
	expect_text(q, "b1");
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 4);
	destroy(q);
}
END_TEST

/* A full queue: the batch waits for room for its first message only, and
 * sends what fits then (one message, as only one is ever taken). */
START_TEST(test_send_batch_waits_only_for_first)
{
	mq_t *q = create_geo(_i, 2);
	send_text(q, "f0");
	send_text(q, "f1");
	struct delayed d = {q, 100, -2};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_recv_thread, &d), 0);
	struct iovec m[3] = {iov_text("w0"), iov_text("w1"), iov_text("w2")};
	double t0 = now_ms();
	int k = mq_send_batch(q, m, 3, -1);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(d.rc, 2);
	ck_assert_msg(k == 1, "mq_send_batch: %d (%s)", k, k < 0 ? mq_errdetail() : "");
	ck_assert_msg(elapsed >= 90, "returned after %.1f ms, before there was room", elapsed);
	expect_text(q, "f1");
	expect_text(q, "w0");
	expect_empty(q);
	destroy(q);
}
END_TEST

/* A message too large (or NULL with a length) ends the batch before itself. */
START_TEST(test_send_batch_stops_before_bad_message)
{
	size_t max = geo_max_msg(_i);
	unsigned char *big = calloc(1, max + 1);
	ck_assert_ptr_nonnull(big);
	mq_t *q = create_geo(_i, 8);
	struct iovec m[4] = {iov_text("s0"), {big, max}, {big, max + 1}, iov_text("s3")};
	ck_assert_int_eq(mq_send_batch(q, m, 4, 0), 2);
	struct iovec nul[3] = {iov_text("n0"), {NULL, 5}, iov_text("n2")};
	ck_assert_int_eq(mq_send_batch(q, nul, 3, 0), 1);
	expect_text(q, "s0");
	ck_assert_int_eq(mq_recv(q, big, max, 0), (ssize_t)max);
	expect_text(q, "n0");
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 3);
	free(big);
	destroy(q);
}
END_TEST

/* The first message bad: EMSGSIZE or EINVAL, nothing sent, even with room. */
START_TEST(test_send_batch_first_bad)
{
	size_t max = geo_max_msg(_i);
	unsigned char *big = calloc(1, max + 1);
	ck_assert_ptr_nonnull(big);
	char want[192];
	snprintf(want, sizeof(want),
	         "mq_send_batch on %s: message of %zu bytes, the maximum is %zu", qname, max + 1,
	         max);
	mq_t *q = create_geo(_i, 4);
	struct iovec m[2] = {{big, max + 1}, iov_text("ok")};
	EXPECT_ERR(mq_send_batch(q, m, 2, 0), EMSGSIZE, want);
	EXPECT_ERR(mq_send_batch(q, m, 2, -1), EMSGSIZE, want);
	struct iovec nul[2] = {{NULL, 1}, iov_text("ok")};
	EXPECT_ERR(mq_send_batch(q, nul, 2, 0), EINVAL, "NULL message of 1 bytes");
	/* And on a full queue, at once. */
	for (int i = 0; i < 4; i++)
		send_text(q, "full");
	double t0 = now_ms();
	EXPECT_ERR(mq_send_batch(q, m, 2, 2000), EMSGSIZE, want);
	ck_assert_msg(now_ms() - t0 < 1000, "EMSGSIZE after %.0f ms", now_ms() - t0);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.enqueued_total, 4);
	free(big);
	destroy(q);
}
END_TEST

START_TEST(test_send_batch_bad_arguments)
{
	struct iovec m[1] = {iov_text("x")};
	mq_t *q = create_geo(_i, 4);
	EXPECT_ERR(mq_send_batch(q, m, 0, 0), EINVAL, "no messages (n is 0)");
	EXPECT_ERR(mq_send_batch(q, NULL, 1, 0), EINVAL, "NULL message array");
	EXPECT_ERR(mq_send_batch(q, NULL, 0, -1), EINVAL, "NULL message array");
	ck_assert_uint_eq(stats_of(q).enqueued_total, 0);
	destroy(q);
}
END_TEST

/* --------------------------------------------------------------- recv batch */

START_TEST(test_recv_batch_up_to_n_sets_lengths)
{
	char b[6][16];
	struct iovec iov[6];
	mq_t *q = create_geo(_i, 8);
	const char *texts[5] = {"one", "", "three", "four", "fifteen chars.."};
	for (int i = 0; i < 5; i++)
		send_text(q, texts[i]);
	for (int i = 0; i < 3; i++)
		iov[i] = (struct iovec){b[i], sizeof(b[i])};
	ck_assert_int_eq(mq_recv_batch(q, iov, 3, 0), 3);
	for (int i = 0; i < 3; i++) {
		ck_assert_uint_eq(iov[i].iov_len, strlen(texts[i]));
		ck_assert_mem_eq(b[i], texts[i], strlen(texts[i]));
	}
	/* Fewer than asked for: what there is. */
	for (int i = 0; i < 6; i++)
		iov[i] = (struct iovec){b[i], sizeof(b[i])};
	iov[5].iov_len = 1234; /* untouched: past what was taken */
	ck_assert_int_eq(mq_recv_batch(q, iov, 6, 0), 2);
	ck_assert_uint_eq(iov[0].iov_len, 4);
	ck_assert_mem_eq(b[0], "four", 4);
	ck_assert_uint_eq(iov[1].iov_len, 15);
	ck_assert_mem_eq(b[1], "fifteen chars..", 15);
	ck_assert_uint_eq(iov[2].iov_len, sizeof(b[2]));
	ck_assert_uint_eq(iov[5].iov_len, 1234);
	EXPECT_ERR(mq_recv_batch(q, iov, 6, 0), EAGAIN, "queue empty");
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.dequeued_total, 5);
	ck_assert_uint_eq(s.bytes_dequeued_total, 3 + 0 + 5 + 4 + 15);
	destroy(q);
}
END_TEST

START_TEST(test_recv_batch_first_too_large_takes_nothing)
{
	char b[2][8];
	mq_t *q = create_geo(_i, 4);
	send_text(q, "0123456789");
	send_text(q, "ok");
	struct iovec iov[2] = {{b[0], 9}, {b[1], 8}};
	EXPECT_ERR(mq_recv_batch(q, iov, 2, 0), EMSGSIZE,
	           "message of 10 bytes, buffer of 9 (the message stays queued)");
	EXPECT_ERR(mq_recv_batch(q, iov, 2, 2000), EMSGSIZE, "stays queued");
	ck_assert_uint_eq(iov[0].iov_len, 9);
	ck_assert_uint_eq(depth(q), 2);
	ck_assert_uint_eq(stats_of(q).dequeued_total, 0);
	expect_text(q, "0123456789");
	expect_text(q, "ok");
	destroy(q);
}
END_TEST

START_TEST(test_recv_batch_stops_before_later_too_large)
{
	char b[3][8];
	mq_t *q = create_geo(_i, 4);
	send_text(q, "small");
	send_text(q, "much too large");
	send_text(q, "tiny");
	struct iovec iov[3] = {{b[0], 8}, {b[1], 8}, {b[2], 8}};
	ck_assert_int_eq(mq_recv_batch(q, iov, 3, 0), 1);
	ck_assert_uint_eq(iov[0].iov_len, 5);
	ck_assert_mem_eq(b[0], "small", 5);
	ck_assert_uint_eq(iov[1].iov_len, 8); /* not touched */
	ck_assert_uint_eq(depth(q), 2);
	expect_text(q, "much too large");
	expect_text(q, "tiny");
	destroy(q);
}
END_TEST

/* Messages given back (nack) come before those never delivered. */
START_TEST(test_recv_batch_requeued_first)
{
	char b[8][16];
	struct iovec iov[8];
	mq_t *q = create_geo(_i, 8);
	send_text(q, "r1");
	send_text(q, "r2");
	mq_lease_t l1, l2;
	ck_assert_int_eq(mq_recv_lease(q, b[0], 16, 0, &l1), 2);
	ck_assert_int_eq(mq_recv_lease(q, b[0], 16, 0, &l2), 2);
	send_text(q, "n3");
	send_text(q, "n4");
	ck_assert_int_eq(mq_nack(q, &l2), 0);
	ck_assert_int_eq(mq_nack(q, &l1), 0);
	/* In the order given back, then the ring: r2 r1 n3 n4. */
	const char *want[4] = {"r2", "r1", "n3", "n4"};
	int got = 0;
	while (got < 4) {
		for (int i = 0; i < 8; i++)
			iov[i] = (struct iovec){b[i], sizeof(b[i])};
		int k = mq_recv_batch(q, iov, 8, 0);
		ck_assert_msg(k >= 1 && k <= 4 - got, "mq_recv_batch: %d (%s)", k,
		              k < 0 ? mq_errdetail() : "");
		for (int i = 0; i < k; i++, got++) {
			ck_assert_uint_eq(iov[i].iov_len, 2);
			ck_assert_msg(memcmp(b[i], want[got], 2) == 0,
			              "message %d: %.2s, expected %s", got, b[i], want[got]);
		}
	}
	expect_empty(q);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.redelivered_total, 2);
	ck_assert_uint_eq(s.dequeued_total, 4);
	ck_assert_uint_eq(s.in_flight, 0);
	destroy(q);
}
END_TEST

START_TEST(test_recv_batch_waits_for_first)
{
	char b[4][8];
	struct iovec iov[4];
	for (int i = 0; i < 4; i++)
		iov[i] = (struct iovec){b[i], sizeof(b[i])};
	mq_t *q = create_geo(_i, 4);
	struct delayed d = {q, 50, -2};
	pthread_t t;
	double t0 = now_ms();
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_send_thread, &d), 0);
	int k = mq_recv_batch(q, iov, 4, -1);
	double elapsed = now_ms() - t0;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(k == 1, "mq_recv_batch: %d (%s)", k, k < 0 ? mq_errdetail() : "");
	ck_assert_uint_eq(iov[0].iov_len, 4);
	ck_assert_mem_eq(b[0], "late", 4);
	ck_assert_msg(elapsed >= 45, "returned after %.1f ms, before the send", elapsed);
	t0 = now_ms();
	EXPECT_ERR(mq_recv_batch(q, iov, 4, 50), ETIMEDOUT, "still empty after 50 ms");
	elapsed = now_ms() - t0;
	ck_assert_msg(elapsed >= 49 && elapsed < 1000, "ETIMEDOUT after %.1f ms", elapsed);
	destroy(q);
}
END_TEST

/* More messages than one round of the lock takes: all of them, in order. */
START_TEST(test_recv_batch_many)
{
	enum { N = 200 };
	static unsigned char b[N][64];
	static struct iovec iov[N];
	unsigned char msg[64];
	mq_t *q = create_geo(_i, N);
	for (uint32_t i = 0; i < N; i++) {
		size_t len = make_msg(msg, i);
		ck_assert_int_eq(mq_send(q, msg, len, 0), 0);
	}
	uint32_t got = 0;
	while (got < N) {
		for (int i = 0; i < N; i++)
			iov[i] = (struct iovec){b[i], sizeof(b[i])};
		int k = mq_recv_batch(q, iov, N, 0);
		ck_assert_msg(k >= 1 && (uint32_t)k <= N - got, "mq_recv_batch: %d (%s)", k,
		              k < 0 ? mq_errdetail() : "");
		for (int i = 0; i < k; i++, got++) {
			size_t len = make_msg(msg, got);
			ck_assert_uint_eq(iov[i].iov_len, len);
			ck_assert_msg(memcmp(b[i], msg, len) == 0, "message %u out of order", got);
		}
	}
	expect_empty(q);
	destroy(q);
}
END_TEST

START_TEST(test_recv_batch_bad_arguments)
{
	char b[8];
	struct iovec iov[2] = {{b, sizeof(b)}, {NULL, 4}};
	mq_t *q = create_geo(_i, 4);
	send_text(q, "stay");
	send_text(q, "too");
	EXPECT_ERR(mq_recv_batch(q, iov, 0, 0), EINVAL, "no buffers (n is 0)");
	EXPECT_ERR(mq_recv_batch(q, NULL, 2, 0), EINVAL, "NULL buffer array");
	EXPECT_ERR(mq_recv_batch(q, iov, 2, 0), EINVAL, "buffer 1 is NULL");
	ck_assert_uint_eq(depth(q), 2);
	/* A NULL buffer of length 0 takes an empty message only. */
	struct iovec z = {NULL, 0};
	EXPECT_ERR(mq_recv_batch(q, &z, 1, 0), EMSGSIZE, "stays queued");
	expect_text(q, "stay");
	expect_text(q, "too");
	destroy(q);
}
END_TEST

/* --------------------------------------------------------------------- spin */

START_TEST(test_set_spin_rejects_bad_arguments)
{
	mq_t *q = create_geo(0, 4);
	EXPECT_ERR(mq_set_spin(NULL, 0), EINVAL, "no queue handle");
	EXPECT_ERR(mq_set_spin(NULL, 50), EINVAL, "no queue handle");
	EXPECT_ERR(mq_set_spin(q, 1000001), EINVAL, "more than a second");
	EXPECT_ERR(mq_set_spin(q, UINT_MAX), EINVAL, "more than a second");
	destroy(q);
}
END_TEST

START_TEST(test_set_spin_accepts_range)
{
	static const unsigned ok[] = {0, 1, MQ_DEFAULT_SPIN_US, 1000000};
	mq_t *q = create_geo(_i, 4);
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		ck_assert_int_eq(mq_set_spin(q, ok[i]), 0);
		send_text(q, "s");
		expect_text(q, "s");
	}
	destroy(q);
}
END_TEST

static Suite *queue_suite(void)
{
	Suite *s = suite_create("queue");
	TCase *tc;

	tc = new_tcase(s, "basics");
	tcase_add_loop_test(tc, test_fifo_order_1000_messages, 0, 2);
	tcase_add_loop_test(tc, test_fifo_order_wraps_around, 0, 2);
	tcase_add_loop_test(tc, test_binary_safe_all_sizes, 0, 2);
	tcase_add_loop_test(tc, test_zero_length_message, 0, 2);
	tcase_add_loop_test(tc, test_max_size_message, 0, 2);
	tcase_add_loop_test(tc, test_recv_buffer_too_small_keeps_message, 0, 2);

	tc = new_tcase(s, "bad_input");
	tcase_add_test(tc, test_null_queue_is_einval);
	tcase_add_loop_test(tc, test_null_buffers_are_einval, 0, 2);
	tcase_add_loop_test(tc, test_bad_timeouts_are_einval, 0, 2);
	tcase_add_loop_test(tc, test_observer_cannot_send_or_recv, 0, 2);

	tc = new_tcase(s, "timeouts");
	tcase_add_loop_test(tc, test_recv_nowait_on_empty_is_eagain, 0, 4);
	tcase_add_loop_test(tc, test_send_nowait_on_full_is_eagain, 0, 4);
	tcase_add_loop_test(tc, test_recv_timeout_on_empty, 0, 4);
	tcase_add_loop_test(tc, test_send_timeout_on_full, 0, 4);
	tcase_add_loop_test(tc, test_long_spin_respects_timeouts, 0, 2);
	tcase_add_loop_test(tc, test_timed_recv_gets_message_sent_meanwhile, 0, 4);
	tcase_add_loop_test(tc, test_timed_send_gets_room_made_meanwhile, 0, 4);

	tc = new_tcase(s, "blocking");
	tcase_add_loop_test(tc, test_blocking_recv_woken_by_other_process, 0, 4);
	tcase_add_loop_test(tc, test_blocking_send_woken_by_other_process, 0, 4);

	tc = new_tcase(s, "eintr");
	tcase_add_loop_test(tc, test_recv_interrupted_by_signal_is_eintr, 0, 4);
	tcase_add_loop_test(tc, test_send_interrupted_by_signal_is_eintr, 0, 4);

	tc = new_tcase(s, "threads");
	tcase_add_loop_test(tc, test_threads_share_one_handle, 0, 4);

	tc = new_tcase(s, "counters");
	tcase_add_loop_test(tc, test_per_client_counters, 0, 2);
	tcase_add_loop_test(tc, test_declare_role, 0, 2);
	tcase_add_loop_test(tc, test_queue_counters, 0, 2);

	tc = new_tcase(s, "send_batch");
	tcase_add_loop_test(tc, test_send_batch_sends_all_in_order, 0, 2);
	tcase_add_loop_test(tc, test_send_batch_longer_than_a_burst, 0, 2);
	tcase_add_loop_test(tc, test_send_batch_sends_first_k, 0, 2);
	tcase_add_loop_test(tc, test_send_batch_waits_only_for_first, 0, 2);
	tcase_add_loop_test(tc, test_send_batch_stops_before_bad_message, 0, 2);
	tcase_add_loop_test(tc, test_send_batch_first_bad, 0, 2);
	tcase_add_loop_test(tc, test_send_batch_bad_arguments, 0, 2);

	tc = new_tcase(s, "recv_batch");
	tcase_add_loop_test(tc, test_recv_batch_up_to_n_sets_lengths, 0, 2);
	tcase_add_loop_test(tc, test_recv_batch_first_too_large_takes_nothing, 0, 2);
	tcase_add_loop_test(tc, test_recv_batch_stops_before_later_too_large, 0, 2);
	tcase_add_loop_test(tc, test_recv_batch_requeued_first, 0, 2);
	tcase_add_loop_test(tc, test_recv_batch_waits_for_first, 0, 2);
	tcase_add_loop_test(tc, test_recv_batch_many, 0, 2);
	tcase_add_loop_test(tc, test_recv_batch_bad_arguments, 0, 2);

	tc = new_tcase(s, "spin");
	tcase_add_test(tc, test_set_spin_rejects_bad_arguments);
	tcase_add_loop_test(tc, test_set_spin_accepts_range, 0, 2);
	return s;
}

int main(void)
{
	return run_suite(queue_suite());
}
