/* test_zcopy.c - unit tests: zero-copy sending (mq_reserve, mq_commit, mq_cancel). */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_TAG "zcopy"
#include "testapi.h"

/* Every test loops over the two geometries (_i bit 0, testapi.h). */

static unsigned char *reserve_ok(mq_t *q, size_t len)
{
	unsigned char *p = mq_reserve(q, len, 0);
	ck_assert_msg(p != NULL, "mq_reserve(%zu): %s (%s)", len, strerror(errno), mq_errdetail());
	ck_assert_msg(((uintptr_t)p & 63) == 0, "mq_reserve: buffer %p is not 64-byte aligned",
	              (void *)p);
	return p;
}

static void commit_ok(mq_t *q, void *p, size_t len)
{
	ck_assert_msg(mq_commit(q, p, len) == 0, "mq_commit(%zu): %s", len, mq_errdetail());
}

static void cancel_ok(mq_t *q, void *p)
{
	ck_assert_msg(mq_cancel(q, p) == 0, "mq_cancel: %s", mq_errdetail());
}

/* The figures a refused commit or cancel must leave alone. */
static void assert_same_chunks(const struct mq_inspection *a, mq_t *q, const char *what)
{
	struct mq_inspection b = inspect_of(q);
	ck_assert_msg(a->tail == b.tail && a->head == b.head && a->chunks_free == b.chunks_free &&
	                      a->chunks_queued == b.chunks_queued &&
	                      a->chunks_writing == b.chunks_writing,
	              "%s changed the queue: tail %llu -> %llu, free %llu -> %llu, writing %llu -> "
	              "%llu",
	              what, (unsigned long long)a->tail, (unsigned long long)b.tail,
	              (unsigned long long)a->chunks_free, (unsigned long long)b.chunks_free,
	              (unsigned long long)a->chunks_writing, (unsigned long long)b.chunks_writing);
}

/* ------------------------------------------------------------------- basics */

START_TEST(test_reserve_write_commit)
{
	size_t max = geo_max_msg(_i);
	unsigned char *got = malloc(max);
	ck_assert_ptr_nonnull(got);
	mq_t *q = create_geo(_i, 4);

	unsigned char *p = reserve_ok(q, max);
	fill(p, max, 1);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 0); /* not before the commit */
	ck_assert_uint_eq(inspect_of(q).chunks_writing, 1);
	commit_ok(q, p, max);
	ck_assert_int_eq(mq_recv(q, got, max, 0), (ssize_t)max);
	ck_assert(pattern_ok(got, max, 1));

	/* Fewer bytes than reserved: the first LEN. */
	p = reserve_ok(q, 100);
	fill(p, 100, 2);
	commit_ok(q, p, 50);
	ck_assert_int_eq(mq_recv(q, got, max, 0), 50);
	ck_assert(pattern_ok(got, 50, 2));

	/* Empty. */
	p = reserve_ok(q, 0);
	commit_ok(q, p, 0);
	ck_assert_int_eq(mq_recv(q, got, max, 0), 0);

	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.enqueued_total, 3);
	ck_assert_uint_eq(s.bytes_enqueued_total, max + 50);
	ck_assert_uint_eq(s.producers, 1);
	struct mq_client_info c;
	ck_assert_int_eq(mq_clients(q, &c, 1), 1);
	ck_assert_uint_eq(c.sent_total, 3);
	ck_assert_uint_eq(c.bytes_sent_total, max + 50);
	ck_assert(c.role & MQ_ROLE_PRODUCER);
	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_writing, 0);
	ck_assert_uint_eq(in.chunks_free, 4);
	free(got);
	destroy(q);
}
END_TEST

/* Committed in commit order: a reservation holds no place in the queue. */
START_TEST(test_commit_order_is_queue_order)
{
	mq_t *a = create_geo(_i, 4);
	mq_t *b = attach_ok();
	unsigned char *pa = reserve_ok(a, 8), *pb = reserve_ok(b, 8);
	memcpy(pa, "from a", 6);
	memcpy(pb, "from b", 6);
	send_text(a, "sent");
	commit_ok(b, pb, 6);
	commit_ok(a, pa, 6);
	expect_text(a, "sent");
	expect_text(a, "from b");
	expect_text(a, "from a");
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(a);
}
END_TEST

/* Every buffer 64-byte aligned, none overlapping another: all of them
 * written in full at once come out intact. */
START_TEST(test_reserve_buffers_aligned_and_apart)
{
	enum { CAP = 8 };
	size_t max = geo_max_msg(_i);
	unsigned char *got = malloc(max);
	ck_assert_ptr_nonnull(got);
	mq_t *q = create_geo(_i, CAP);
	for (int round = 0; round < 3; round++) {
		unsigned char *p[CAP];
		for (int k = 0; k < CAP; k++) {
			p[k] = reserve_ok(q, max - (size_t)k);
			for (int j = 0; j < k; j++) {
				uintptr_t x = (uintptr_t)p[k], y = (uintptr_t)p[j];
				ck_assert_msg((x > y ? x - y : y - x) >= max,
				              "buffers %d and %d are %zu bytes apart", j, k,
				              (size_t)(x > y ? x - y : y - x));
			}
		}
		for (int k = 0; k < CAP; k++)
			fill(p[k], max - (size_t)k, (uint32_t)(round * CAP + k));
		for (int k = CAP - 1; k >= 0; k--)
			commit_ok(q, p[k], max - (size_t)k);
		for (int k = CAP - 1; k >= 0; k--) {
			ck_assert_int_eq(mq_recv(q, got, max, 0), (ssize_t)(max - (size_t)k));
			ck_assert_msg(pattern_ok(got, max - (size_t)k, (uint32_t)(round * CAP + k)),
			              "round %d buffer %d overwritten", round, k);
		}
	}
	free(got);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------- committing wrongly */

START_TEST(test_commit_more_than_reserved_is_einval)
{
	mq_t *q = create_geo(_i, 4);
	unsigned char *p = reserve_ok(q, 100);
	fill(p, 100, 3);
	struct mq_inspection before = inspect_of(q);
	EXPECT_ERR(mq_commit(q, p, 101), EINVAL, "101 bytes, 100 were reserved");
	EXPECT_ERR(mq_commit(q, p, SIZE_MAX), EINVAL, "100 were reserved");
	assert_same_chunks(&before, q, "a commit of more than reserved");
	ck_assert_uint_eq(stats_of(q).enqueued_total, 0);
	/* The reservation stands. */
	commit_ok(q, p, 100);
	unsigned char got[100];
	ck_assert_int_eq(mq_recv(q, got, sizeof(got), 0), 100);
	ck_assert(pattern_ok(got, 100, 3));
	destroy(q);
}
END_TEST

/* Twice, or after a cancel, or a cancel after a commit: EINVAL, nothing changes. */
START_TEST(test_commit_cancel_twice_is_einval)
{
	mq_t *q = create_geo(_i, 4);
	unsigned char *p = reserve_ok(q, 8);
	memcpy(p, "once", 4);
	commit_ok(q, p, 4);
	struct mq_inspection before = inspect_of(q);
	EXPECT_ERR(mq_commit(q, p, 4), EINVAL, "already committed or cancelled");
	EXPECT_ERR(mq_cancel(q, p), EINVAL, "is not held by this handle");
	assert_same_chunks(&before, q, "settling a committed buffer");

	unsigned char *c = reserve_ok(q, 8);
	cancel_ok(q, c);
	before = inspect_of(q);
	EXPECT_ERR(mq_cancel(q, c), EINVAL, "is not held by this handle");
	EXPECT_ERR(mq_commit(q, c, 4), EINVAL, "already committed or cancelled");
	assert_same_chunks(&before, q, "settling a cancelled buffer");

	expect_text(q, "once");
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 1);
	destroy(q);
}
END_TEST

/* Pointers mq_reserve did not return: NULL, outside the queue, inside a
 * buffer, a header, another chunk's payload. */
START_TEST(test_commit_cancel_foreign_pointers_are_einval)
{
	mq_t *q = create_geo(_i, 4);
	send_text(q, "queued");
	unsigned char *p = reserve_ok(q, 64);
	uint64_t cs = inspect_of(q).chunk_size;
	unsigned char local[64];
	struct mq_inspection before = inspect_of(q);

	EXPECT_ERR(mq_commit(NULL, p, 1), EINVAL, "mq_commit: no queue handle");
	EXPECT_ERR(mq_cancel(NULL, p), EINVAL, "mq_cancel: no queue handle");
	EXPECT_ERR(mq_commit(q, NULL, 0), EINVAL, "is not a buffer mq_reserve returned");
	EXPECT_ERR(mq_cancel(q, NULL), EINVAL, "is not a buffer mq_reserve returned");
	EXPECT_ERR(mq_commit(q, local, 1), EINVAL, "is not a buffer mq_reserve returned");
	EXPECT_ERR(mq_cancel(q, local), EINVAL, "is not a buffer mq_reserve returned");
	void *off[] = {p + 1, p + 63, p + 64, p - 1, p - 64};
	for (size_t k = 0; k < sizeof(off) / sizeof(off[0]); k++) {
		EXPECT_ERR(mq_commit(q, off[k], 0), EINVAL, "is not a buffer mq_reserve returned");
		EXPECT_ERR(mq_cancel(q, off[k]), EINVAL, "is not a buffer mq_reserve returned");
	}
	/* The neighbouring chunks (free or queued, not ours): the state check. */
	int state_checked = 0;
	for (int dir = -1; dir <= 1; dir += 2) {
		unsigned char *other = p + dir * (ptrdiff_t)cs;
		EXPECT_ERR(mq_commit(q, other, 1), EINVAL, "mq_commit on");
		state_checked += strstr(mq_errdetail(), "not reserved by this handle") != NULL;
		EXPECT_ERR(mq_cancel(q, other), EINVAL, "mq_cancel on");
	}
	ck_assert_msg(state_checked >= 1, "no neighbouring chunk reached the state check");
	assert_same_chunks(&before, q, "a foreign pointer");

	commit_ok(q, p, 0);
	expect_text(q, "queued");
	expect_text(q, "");
	destroy(q);
}
END_TEST

/* A buffer another handle reserved (same process): refused, through either
 * handle's address of it; the reserver still commits it. */
START_TEST(test_commit_cancel_other_handles_buffer_is_einval)
{
	mq_t *a = create_geo(_i, 2);
	mq_t *b = attach_ok();
	unsigned char *pa = reserve_ok(a, 16);
	memcpy(pa, "a's message", 11);
	unsigned char *pb = reserve_ok(b, 16);
	uint64_t cs = inspect_of(b).chunk_size;
	struct mq_inspection before = inspect_of(a);

	/* a's address: not in b's mapping. */
	EXPECT_ERR(mq_commit(b, pa, 11), EINVAL, "is not a buffer mq_reserve returned");
	EXPECT_ERR(mq_cancel(b, pa), EINVAL, "is not a buffer mq_reserve returned");
	/* b's address of a's chunk (the other of the two). */
	int state_checked = 0;
	for (int dir = -1; dir <= 1; dir += 2) {
		unsigned char *other = pb + dir * (ptrdiff_t)cs;
		EXPECT_ERR(mq_commit(b, other, 11), EINVAL, "mq_commit on");
		state_checked += strstr(mq_errdetail(), "not reserved by this handle") != NULL;
		EXPECT_ERR(mq_cancel(b, other), EINVAL, "mq_cancel on");
	}
	ck_assert_int_eq(state_checked, 1);
	/* And b's buffer through a. */
	EXPECT_ERR(mq_commit(a, pb, 1), EINVAL, "is not a buffer mq_reserve returned");
	assert_same_chunks(&before, a, "another handle's buffer");
	ck_assert_uint_eq(stats_of(a).enqueued_total, 0);

	commit_ok(a, pa, 11);
	cancel_ok(b, pb);
	expect_text(b, "a's message");
	expect_empty(b);
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(a);
}
END_TEST

START_TEST(test_reserve_bad_arguments)
{
	size_t max = geo_max_msg(_i);
	char want[96];
	snprintf(want, sizeof(want), "%zu bytes, the maximum is %zu", max + 1, max);
	mq_t *q = create_geo(_i, 2);
	EXPECT_NULL(mq_reserve(NULL, 1, 0), EINVAL, "mq_reserve: no queue handle");
	EXPECT_NULL(mq_reserve(q, 1, -2), EINVAL, "timeout -2 ms");
	EXPECT_NULL(mq_reserve(q, max + 1, 0), EMSGSIZE, want);
	EXPECT_NULL(mq_reserve(q, SIZE_MAX, -1), EMSGSIZE, "the maximum is");
	mq_t *o = mq_observe(qname);
	ck_assert_ptr_nonnull(o);
	EXPECT_NULL(mq_reserve(o, 1, 0), EINVAL, "only observes");
	ck_assert_int_eq(mq_detach(o), 0);
	/* Full: a message that never fits is still EMSGSIZE, at once. */
	send_text(q, "1");
	send_text(q, "2");
	double t0 = now_ms();
	EXPECT_NULL(mq_reserve(q, max + 1, 2000), EMSGSIZE, want);
	ck_assert_msg(now_ms() - t0 < 1000, "EMSGSIZE after %.0f ms", now_ms() - t0);
	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_writing, 0);
	ck_assert_uint_eq(in.chunks_queued, 2);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------------------ capacity */

/* A reservation holds one message of capacity until it is committed or
 * cancelled; a cancel gives the space back and sends nothing. */
START_TEST(test_reservations_count_toward_capacity)
{
	mq_t *q = create_geo(_i, 3);
	unsigned char *p1 = reserve_ok(q, 8), *p2 = reserve_ok(q, 8);
	send_text(q, "m");
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full (3 messages)");
	EXPECT_ERR(mq_send(q, "x", 1, 20), ETIMEDOUT, "still full after 20 ms");
	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_writing, 2);
	ck_assert_uint_eq(in.chunks_free, 0);
	ck_assert_uint_eq(stats_of(q).depth, 1);

	cancel_ok(q, p1);
	send_text(q, "n");
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full");
	cancel_ok(q, p2);
	in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_writing, 0);
	ck_assert_uint_eq(in.chunks_free, 1);
	expect_text(q, "m");
	expect_text(q, "n");
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 2);
	destroy(q);
}
END_TEST

/* Full (with messages or reservations), timeout 0: EAGAIN, like mq_send. */
START_TEST(test_reserve_on_full_is_eagain)
{
	mq_t *q = create_geo(_i, 2);
	unsigned char *p = reserve_ok(q, 8);
	send_text(q, "m");
	EXPECT_NULL(mq_reserve(q, 8, 0), EAGAIN, "queue full (2 messages)");
	cancel_ok(q, p);
	send_text(q, "n");
	EXPECT_NULL(mq_reserve(q, 8, 0), EAGAIN, "queue full (2 messages)");
	ck_assert_uint_eq(stats_of(q).full_total, 2);
	destroy(q);
}
END_TEST

START_TEST(test_reserve_timeout_on_full)
{
	mq_t *q = create_geo(_i, 1);
	send_text(q, "m");
	double t0 = now_ms();
	EXPECT_NULL(mq_reserve(q, 8, 50), ETIMEDOUT, "still full after 50 ms");
	double elapsed = now_ms() - t0;
	ck_assert_msg(elapsed >= 49 && elapsed < 1000, "ETIMEDOUT after %.1f ms", elapsed);
	ck_assert_uint_eq(stats_of(q).blocked_sends_total, 1);
	destroy(q);
}
END_TEST

static void *delayed_recv(void *arg)
{
	char buf[16];
	sleep_ms(50);
	return (void *)(intptr_t)mq_recv(arg, buf, sizeof(buf), 0);
}

START_TEST(test_reserve_waits_for_room)
{
	mq_t *q = create_geo(_i, 1);
	send_text(q, "m");
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_recv, q), 0);
	double t0 = now_ms();
	unsigned char *p = mq_reserve(q, 8, -1);
	double elapsed = now_ms() - t0;
	void *rc;
	ck_assert_int_eq(pthread_join(t, &rc), 0);
	ck_assert_int_eq((intptr_t)rc, 1);
	ck_assert_msg(p != NULL, "mq_reserve(-1) on a full queue: errno %d (%s), detail \"%s\"",
	              errno, strerror(errno), mq_errdetail());
	ck_assert_msg(elapsed >= 45, "reserved after %.1f ms, before there was room", elapsed);
	memcpy(p, "z", 1);
	commit_ok(q, p, 1);
	expect_text(q, "z");
	destroy(q);
}
END_TEST

/* A slow reserver delays nobody: other producers' messages go through the
 * queue past its reservation, again and again. */
START_TEST(test_slow_reserver_does_not_block_others)
{
	mq_t *a = create_geo(_i, 4);
	mq_t *b = attach_ok();
	unsigned char *p = reserve_ok(a, 32);
	memcpy(p, "slow", 4);
	char buf[16], want[16];
	for (int round = 0; round < 20; round++) {
		for (int k = 0; k < 3; k++) {
			snprintf(want, sizeof(want), "b%d.%d", round, k);
			ck_assert_msg(mq_send(b, want, strlen(want), 0) == 0, "round %d: %s", round,
			              mq_errdetail());
		}
		for (int k = 0; k < 3; k++) {
			snprintf(want, sizeof(want), "b%d.%d", round, k);
			ssize_t n = mq_recv(b, buf, sizeof(buf), 0);
			ck_assert_msg(n == (ssize_t)strlen(want) &&
			                      memcmp(buf, want, (size_t)n) == 0,
			              "round %d: got %zd", round, n);
		}
	}
	ck_assert_int_eq(memcmp(p, "slow", 4), 0); /* nobody wrote into it */
	send_text(b, "before");
	commit_ok(a, p, 4);
	send_text(b, "after");
	expect_text(b, "before");
	expect_text(b, "slow");
	expect_text(b, "after");
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(a);
}
END_TEST

/* ---------------------------------------------------- reservers that go away */

START_TEST(test_detach_cancels_reservations)
{
	mq_t *q = create_geo(_i, 3);
	mq_t *b = attach_ok();
	unsigned char *p1 = reserve_ok(b, 8), *p2 = reserve_ok(b, 8);
	memcpy(p1, "lost", 4);
	memcpy(p2, "lost", 4);
	ck_assert_uint_eq(inspect_of(q).chunks_writing, 2);
	ck_assert_int_eq(mq_detach(b), 0);
	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_writing, 0);
	ck_assert_uint_eq(in.chunks_free, 3);
	for (int k = 0; k < 3; k++)
		send_text(q, "mine");
	for (int k = 0; k < 3; k++)
		expect_text(q, "mine");
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 3);
	destroy(q);
}
END_TEST

/* reserver_child: attach, reserve N buffers and write into them, tell the
 * parent, wait to be killed. */
static void reserver_child(struct chan *ch, int n)
{
	mq_t *c = mq_attach(qname);
	if (!c)
		_exit(10);
	for (int k = 0; k < n; k++) {
		unsigned char *p = mq_reserve(c, 16, 0);
		if (!p)
			_exit(11);
		memcpy(p, "never sent", 10);
	}
	chan_say(ch, "R", 1);
	for (;;)
		pause();
}

/* A producer SIGKILLed between reserve and commit: after the reap, the full
 * capacity is usable and it sent nothing. */
START_TEST(test_killed_reserver_leaks_nothing)
{
	mq_t *q = create_geo(_i, 4);
	struct chan ch;
	chan_open(&ch);
	pid_t pid = fork_child();
	if (pid == 0)
		reserver_child(&ch, 3);
	char c;
	ck_assert_int_eq(chan_hear(&ch, &c, 1, 5000), 0);
	send_text(q, "m0");
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full");
	ck_assert_int_eq(kill_child(pid), 1000 + SIGKILL);

	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_writing, 3);
	ck_assert_uint_eq(in.chunks_orphaned, 3);
	struct mq_reaped r[2];
	ck_assert_int_eq(mq_reap(q, r, 2, 1000), 1);
	ck_assert_int_eq(r[0].pid, pid);
	ck_assert_uint_eq(r[0].role, MQ_ROLE_PRODUCER);
	ck_assert_uint_eq(r[0].sent_total, 0);
	in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_writing, 0);
	ck_assert_uint_eq(in.chunks_orphaned, 0);
	ck_assert_uint_eq(in.chunks_free, 3);
	ck_assert_uint_eq(in.chunks_queued, 1);

	for (int k = 1; k < 4; k++)
		send_text(q, k == 1 ? "m1" : k == 2 ? "m2" : "m3");
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full");
	expect_text(q, "m0");
	expect_text(q, "m1");
	expect_text(q, "m2");
	expect_text(q, "m3");
	expect_empty(q);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.enqueued_total, 4);
	ck_assert_uint_eq(s.recoveries_total, 1);
	assert_sound(q);
	chan_close(&ch);
	destroy(q);
}
END_TEST

struct killer {
	pid_t pid;
	int delay_ms;
	double killed_at;
};

static void *killer_thread(void *arg)
{
	struct killer *k = arg;
	sleep_ms(k->delay_ms);
	k->killed_at = now_ms();
	kill(k->pid, SIGKILL);
	return NULL;
}

/* A producer waiting for room gets the dead reserver's space: it looks for
 * dead holders between its sleep slices. */
START_TEST(test_killed_reserver_space_goes_to_waiting_producer)
{
	mq_t *q = create_geo(_i, 2);
	struct chan ch;
	chan_open(&ch);
	pid_t pid = fork_child();
	if (pid == 0)
		reserver_child(&ch, 2);
	char c;
	ck_assert_int_eq(chan_hear(&ch, &c, 1, 5000), 0);
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full");
	struct killer k = {pid, 100, 0};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, killer_thread, &k), 0);
	int rc = mq_send(q, "waited", 6, 5000);
	double returned_at = now_ms();
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(wait_child(pid), 1000 + SIGKILL);
	ck_assert_msg(rc == 0, "the waiting producer: %s", mq_errdetail());
	ck_assert_msg(returned_at > k.killed_at && returned_at - k.killed_at < 2000,
	              "sent %.0f ms after the kill", returned_at - k.killed_at);
	send_text(q, "second");
	expect_text(q, "waited");
	expect_text(q, "second");
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).enqueued_total, 2);
	chan_close(&ch);
	destroy(q);
}
END_TEST

static Suite *zcopy_suite(void)
{
	Suite *s = suite_create("zcopy");
	TCase *tc;

	tc = new_tcase(s, "basics");
	tcase_add_loop_test(tc, test_reserve_write_commit, 0, 2);
	tcase_add_loop_test(tc, test_commit_order_is_queue_order, 0, 2);
	tcase_add_loop_test(tc, test_reserve_buffers_aligned_and_apart, 0, 2);

	tc = new_tcase(s, "wrongly");
	tcase_add_loop_test(tc, test_commit_more_than_reserved_is_einval, 0, 2);
	tcase_add_loop_test(tc, test_commit_cancel_twice_is_einval, 0, 2);
	tcase_add_loop_test(tc, test_commit_cancel_foreign_pointers_are_einval, 0, 2);
	tcase_add_loop_test(tc, test_commit_cancel_other_handles_buffer_is_einval, 0, 2);
	tcase_add_loop_test(tc, test_reserve_bad_arguments, 0, 2);

	tc = new_tcase(s, "capacity");
	tcase_add_loop_test(tc, test_reservations_count_toward_capacity, 0, 2);
	tcase_add_loop_test(tc, test_reserve_on_full_is_eagain, 0, 2);
	tcase_add_loop_test(tc, test_reserve_timeout_on_full, 0, 2);
	tcase_add_loop_test(tc, test_reserve_waits_for_room, 0, 2);
	tcase_add_loop_test(tc, test_slow_reserver_does_not_block_others, 0, 2);

	tc = new_tcase(s, "reservers_gone");
	tcase_add_loop_test(tc, test_detach_cancels_reservations, 0, 2);
	tcase_add_loop_test(tc, test_killed_reserver_leaks_nothing, 0, 2);
	tcase_add_loop_test(tc, test_killed_reserver_space_goes_to_waiting_producer, 0, 2);
	return s;
}

int main(void)
{
	return run_suite(zcopy_suite());
}
