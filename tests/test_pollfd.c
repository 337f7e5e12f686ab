/* test_pollfd.c - unit tests: mq_pollfd, the descriptor for event loops. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/select.h>
#include <unistd.h>

#define TEST_TAG "pollfd"
#include "testapi.h"

/* Every test that makes a queue loops over the two geometries (_i bit 0). */

/* readable_within: whether FD becomes readable within MS (poll(2)). */
static int readable_within(int fd, int ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int r;
	while ((r = poll(&p, 1, ms)) < 0 && errno == EINTR)
		;
	ck_assert_int_ge(r, 0);
	return r == 1 && (p.revents & POLLIN);
}

static int pollfd_ok(mq_t *q, int events)
{
	int fd = mq_pollfd(q, events);
	ck_assert_msg(fd > 2, "mq_pollfd(%d): %d, %s (%s)", events, fd, strerror(errno),
	              mq_errdetail());
	return fd;
}

/* epoll_of: an epoll set watching Q's MQ_POLLIN descriptor for EVENTS
 * (EPOLLIN, maybe | EPOLLET); -1 if mq_pollfd or epoll fails (children and
 * threads say so their own way). */
static int epoll_of(mq_t *q, uint32_t events)
{
	int fd = mq_pollfd(q, MQ_POLLIN);
	int ep = fd < 0 ? -1 : epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = events};
	if (ep >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
		close(ep);
		ep = -1;
	}
	return ep;
}

/* drain: take every message with timeout 0 until EAGAIN; returns how many. */
static int drain(mq_t *q)
{
	unsigned char buf[GEO_LIFO_MSG];
	int n = 0;
	ssize_t r;
	while ((r = mq_recv(q, buf, sizeof(buf), 0)) >= 0)
		n++;
	ck_assert_msg(errno == EAGAIN, "draining: %s", mq_errdetail());
	return n;
}

/* sender_after: a child that attaches and sends TEXT after MS. */
static pid_t sender_after(int ms, const char *text)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *q = mq_attach(qname);
		sleep_ms(ms);
		_exit(q && mq_send(q, text, strlen(text), 1000) == 0 ? 0 : 1);
	}
	return pid;
}

/* --------------------------------------------------------------- arguments */

START_TEST(test_bad_arguments)
{
	mq_t *q = create_geo(_i, 4);
	EXPECT_ERR(mq_pollfd(NULL, MQ_POLLIN), EINVAL, "no queue handle");
	int bad[] = {0, 2, 8, MQ_POLLIN | 8, -1};
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++)
		EXPECT_ERR(mq_pollfd(q, bad[k]), EINVAL, "want MQ_POLLIN, MQ_POLLOUT or both");
	mq_t *o = mq_observe(qname);
	ck_assert_ptr_nonnull(o);
	EXPECT_ERR(mq_pollfd(o, MQ_POLLIN), EINVAL, "only observes");
	mq_detach(o);
	destroy(q);
}
END_TEST

START_TEST(test_descriptor_belongs_to_handle)
{
	mq_t *q = create_geo(_i, 4);
	int in = pollfd_ok(q, MQ_POLLIN), out = pollfd_ok(q, MQ_POLLOUT);
	int both = pollfd_ok(q, MQ_POLLIN | MQ_POLLOUT);
	ck_assert_int_eq(mq_pollfd(q, MQ_POLLIN), in); /* the same one again */
	ck_assert_int_ne(in, out);
	ck_assert_int_ne(in, both);
	ck_assert_int_ne(out, both);
	ck_assert_int_ne(fcntl(in, F_GETFD) & FD_CLOEXEC, 0);
	ck_assert_int_eq(mq_detach(q), 0);
	/* mq_detach closed all three. */
	ck_assert_int_eq(fcntl(in, F_GETFD), -1);
	ck_assert_int_eq(fcntl(out, F_GETFD), -1);
	ck_assert_int_eq(fcntl(both, F_GETFD), -1);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* ----------------------------------------------------------------- waking */

START_TEST(test_message_wakes_epoll)
{
	mq_t *q = create_geo(_i, 4);
	int fd = pollfd_ok(q, MQ_POLLIN);
	int ep = epoll_of(q, EPOLLIN);
	struct epoll_event got;
	ck_assert_int_ge(ep, 0);
	ck_assert_int_eq(epoll_wait(ep, &got, 1, 100), 0); /* empty: nothing */

	/* A message sent by another process while the loop sleeps wakes it. */
	pid_t pid = sender_after(100, "hello");
	double t0 = now_ms();
	ck_assert_int_eq(epoll_wait(ep, &got, 1, 5000), 1);
	double woke = now_ms() - t0;
	fprintf(stderr,
	        "test_message_wakes_epoll (%s): woke %.1f ms after the wait began "
	        "(the message was sent ~100 ms in)\n",
	        geo_name(_i), woke);
	ck_assert_int_eq(wait_child(pid), 0);
	expect_text(q, "hello");
	expect_empty(q); /* EAGAIN: re-armed */

	/* Drained and empty: no wake-up for 200 ms. */
	ck_assert_int_eq(epoll_wait(ep, &got, 1, 200), 0);
	ck_assert(!readable_within(fd, 0));
	close(ep);
	destroy(q);
}
END_TEST

START_TEST(test_level_triggered)
{
	mq_t *q = create_geo(_i, 8);
	int fd = pollfd_ok(q, MQ_POLLIN);
	send_text(q, "a");
	send_text(q, "b");
	send_text(q, "c");
	ck_assert(readable_within(fd, 2000));
	expect_text(q, "a");
	/* Not drained: still readable, without any new message. */
	ck_assert(readable_within(fd, 0));
	expect_text(q, "b");
	expect_text(q, "c");
	ck_assert(readable_within(fd, 0)); /* no EAGAIN seen yet */
	expect_empty(q);
	ck_assert(!readable_within(fd, 200));
	/* A message from this very handle counts too. */
	send_text(q, "d");
	ck_assert(readable_within(fd, 2000));
	/* A blocking receive does not re-arm: only a call with timeout 0
	 * that finds the queue empty does. */
	char buf[8];
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 100), 1);
	ck_assert(readable_within(fd, 0));
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 50), ETIMEDOUT, "still empty");
	ck_assert(readable_within(fd, 0));
	ck_assert_int_eq(drain(q), 0);
	ck_assert(!readable_within(fd, 100));
	destroy(q);
}
END_TEST

START_TEST(test_edge_triggered)
{
	mq_t *q = create_geo(_i, 8);
	int ep = epoll_of(q, EPOLLIN | EPOLLET);
	struct epoll_event got;
	ck_assert_int_ge(ep, 0);
	send_text(q, "one");
	ck_assert_int_eq(epoll_wait(ep, &got, 1, 2000), 1);
	/* No new edge until the queue was drained and a message came again. */
	send_text(q, "two");
	ck_assert_int_eq(epoll_wait(ep, &got, 1, 100), 0);
	ck_assert_int_eq(drain(q), 2);
	pid_t pid = sender_after(50, "three");
	ck_assert_int_eq(epoll_wait(ep, &got, 1, 5000), 1);
	ck_assert_int_eq(wait_child(pid), 0);
	expect_text(q, "three");
	close(ep);
	destroy(q);
}
END_TEST

START_TEST(test_poll_and_select)
{
	mq_t *q = create_geo(_i, 4);
	int fd = pollfd_ok(q, MQ_POLLIN);
	pid_t pid = sender_after(50, "x");
	ck_assert(readable_within(fd, 5000)); /* poll(2) */
	ck_assert_int_eq(wait_child(pid), 0);
	fd_set set;
	FD_ZERO(&set);
	FD_SET(fd, &set);
	struct timeval tv = {1, 0};
	ck_assert_int_eq(select(fd + 1, &set, NULL, NULL, &tv), 1);
	ck_assert(FD_ISSET(fd, &set));
	expect_text(q, "x");
	expect_empty(q);
	FD_ZERO(&set);
	FD_SET(fd, &set);
	tv = (struct timeval){0, 200000};
	ck_assert_int_eq(select(fd + 1, &set, NULL, NULL, &tv), 0);
	destroy(q);
}
END_TEST

START_TEST(test_pollout_wakes_producer)
{
	mq_t *q = create_geo(_i, 2);
	send_text(q, "1");
	send_text(q, "2");
	EXPECT_ERR(mq_send(q, "3", 1, 0), EAGAIN, "queue full");
	int fd = pollfd_ok(q, MQ_POLLOUT);
	ck_assert(!readable_within(fd, 200)); /* full: no room */
	/* A consumer in another process makes room. */
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *c = mq_attach(qname);
		char buf[8];
		sleep_ms(100);
		_exit(c && mq_recv(c, buf, sizeof(buf), 1000) == 1 ? 0 : 1);
	}
	ck_assert(readable_within(fd, 5000));
	ck_assert_int_eq(wait_child(pid), 0);
	send_text(q, "3");
	EXPECT_ERR(mq_send(q, "4", 1, 0), EAGAIN, "queue full"); /* re-armed */
	ck_assert(!readable_within(fd, 200));
	/* MQ_POLLIN | MQ_POLLOUT: readable while either holds (messages wait). */
	int both = pollfd_ok(q, MQ_POLLIN | MQ_POLLOUT);
	ck_assert(readable_within(both, 2000));
	destroy(q);
}
END_TEST

/* ------------------------------------------------------- dead peers, load */

START_TEST(test_dead_lease_holder_wakes_poller)
{
	mq_t *q = create_geo(_i, 4);
	int fd = pollfd_ok(q, MQ_POLLIN);
	send_text(q, "leased");
	struct chan ch;
	chan_open(&ch);
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *c = mq_attach(qname);
		char buf[16];
		mq_lease_t l;
		if (!c || mq_recv_lease(c, buf, sizeof(buf), 1000, &l) != 6)
			_exit(1);
		chan_say(&ch, "L", 1);
		pause(); /* killed holding the lease */
		_exit(2);
	}
	char c;
	ck_assert_int_eq(chan_hear(&ch, &c, 1, 5000), 0);
	ck_assert_int_eq(drain(q), 0); /* its one message is leased: EAGAIN */
	ck_assert(!readable_within(fd, 100));
	ck_assert_int_eq(kill_child(pid), 1000 + SIGKILL);
	/* The dead holder's message comes back: the descriptor says so, with
	 * nobody else calling into the queue. */
	double t0 = now_ms();
	ck_assert(readable_within(fd, 5000));
	fprintf(stderr,
	        "test_dead_lease_holder_wakes_poller (%s): readable %.0f ms after the kill\n",
	        geo_name(_i), now_ms() - t0);
	char buf[16];
	mq_lease_t l;
	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &l), 6);
	ck_assert_uint_eq(l.deliveries, 2);
	ck_assert_int_eq(mq_ack(q, &l), 0);
	chan_close(&ch);
	destroy(q);
}
END_TEST

#define LOAD_PRODUCERS 4
#define LOAD_PER       20000u
struct load {
	_Atomic uint32_t seen[LOAD_PRODUCERS][LOAD_PER];
	_Atomic uint64_t total;
	_Atomic int stop;
	_Atomic int bad;
};

static void load_producer(uint32_t id)
{
	mq_t *q = mq_attach(qname);
	if (!q)
		_exit(3);
	for (uint32_t s = 0; s < LOAD_PER; s++) {
		uint32_t m[2] = {id, s};
		if (mq_send(q, m, sizeof(m), 10000) != 0)
			_exit(4);
	}
	mq_detach(q);
	_exit(0);
}

static void took(struct load *L, const uint32_t *m, ssize_t n)
{
	if (n != 8 || m[0] >= LOAD_PRODUCERS || m[1] >= LOAD_PER)
		atomic_store(&L->bad, 1);
	else
		atomic_fetch_add(&L->seen[m[0]][m[1]], 1);
	atomic_fetch_add(&L->total, 1);
}

static void load_poller(struct load *L)
{
	mq_t *q = mq_attach(qname);
	if (!q)
		_exit(3);
	int ep = epoll_of(q, EPOLLIN);
	struct epoll_event got;
	if (ep < 0)
		_exit(5);
	while (!atomic_load(&L->stop)) {
		if (epoll_wait(ep, &got, 1, 100) < 0 && errno != EINTR)
			_exit(6);
		uint32_t m[4];
		ssize_t n;
		while ((n = mq_recv(q, m, sizeof(m), 0)) >= 0)
			took(L, m, n);
		if (errno != EAGAIN)
			_exit(7);
	}
	mq_detach(q);
	_exit(0);
}

static void load_blocker(struct load *L)
{
	mq_t *q = mq_attach(qname);
	if (!q)
		_exit(3);
	while (!atomic_load(&L->stop)) {
		uint32_t m[4];
		ssize_t n = mq_recv(q, m, sizeof(m), 100);
		if (n >= 0)
			took(L, m, n);
		else if (errno != ETIMEDOUT)
			_exit(7);
	}
	mq_detach(q);
	_exit(0);
}

START_TEST(test_pollers_and_blockers_exactly_once)
{
	struct load *L =
	        mmap(NULL, sizeof(*L), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ck_assert_ptr_ne(L, MAP_FAILED);
	mq_t *q = create_geo(_i, 64);
	pid_t cons[4], prod[LOAD_PRODUCERS];
	for (int k = 0; k < 4; k++) {
		cons[k] = fork_child();
		if (cons[k] == 0) {
			if (k < 2)
				load_poller(L);
			load_blocker(L);
		}
	}
	for (uint32_t k = 0; k < LOAD_PRODUCERS; k++) {
		prod[k] = fork_child();
		if (prod[k] == 0)
			load_producer(k);
	}
	for (int k = 0; k < LOAD_PRODUCERS; k++)
		ck_assert_int_eq(wait_child(prod[k]), 0);
	uint64_t want = (uint64_t)LOAD_PRODUCERS * LOAD_PER;
	double end = now_ms() + 30000;
	while (atomic_load(&L->total) < want && now_ms() < end)
		sleep_ms(10);
	sleep_ms(200); /* anything more would be a duplicate */
	atomic_store(&L->stop, 1);
	for (int k = 0; k < 4; k++)
		ck_assert_int_eq(wait_child(cons[k]), 0);
	ck_assert_int_eq(atomic_load(&L->bad), 0);
	ck_assert_uint_eq(atomic_load(&L->total), want);
	for (int p = 0; p < LOAD_PRODUCERS; p++)
		for (uint32_t s = 0; s < LOAD_PER; s++)
			ck_assert_msg(atomic_load(&L->seen[p][s]) == 1,
			              "message %d/%u taken %u times", p, s,
			              atomic_load(&L->seen[p][s]));
	expect_empty(q);
	munmap(L, sizeof(*L));
	destroy(q);
}
END_TEST

START_TEST(test_killed_producer_leaves_no_poller_asleep)
{
	mq_t *q = create_geo(_i, 64);
	int fd = pollfd_ok(q, MQ_POLLIN);
	for (int round = 0; round < 5; round++) {
		pid_t pid = fork_child();
		if (pid == 0) {
			mq_t *p = mq_attach(qname);
			for (uint32_t s = 0; p; s++)
				(void)mq_send(p, &s, sizeof(s), 1000);
			_exit(1);
		}
		sleep_ms(20 + round * 17);
		kill_child(pid);
		/* Whatever it left queued, the descriptor says so. */
		int taken = 0;
		while (readable_within(fd, 500))
			taken += drain(q);
		struct mq_stats st = stats_of(q);
		ck_assert_msg(st.depth == 0,
		              "round %d: %llu messages queued while the poller slept (%d taken)",
		              round, (unsigned long long)st.depth, taken);
	}
	destroy(q);
}
END_TEST

/* Threads: two share one handle (and so its descriptor), a third has its
 * own; each waits in its own epoll set and drains with timeout 0. */
struct tload {
	mq_t *q;
	struct load *L;
};

static void *thread_poller(void *arg)
{
	struct tload *t = arg;
	int ep = epoll_of(t->q, EPOLLIN);
	struct epoll_event got;
	if (ep < 0) {
		atomic_store(&t->L->bad, 1);
		return NULL;
	}
	while (!atomic_load(&t->L->stop)) {
		(void)epoll_wait(ep, &got, 1, 50);
		uint32_t m[4];
		ssize_t n;
		while ((n = mq_recv(t->q, m, sizeof(m), 0)) >= 0)
			took(t->L, m, n);
		if (errno != EAGAIN)
			atomic_store(&t->L->bad, 2);
	}
	close(ep);
	return NULL;
}

START_TEST(test_threads_poll)
{
	struct load *L = calloc(1, sizeof(*L));
	ck_assert_ptr_nonnull(L);
	mq_t *q = create_geo(_i, 64);
	mq_t *own = attach_ok();
	struct tload shared = {q, L}, mine = {own, L};
	pthread_t th[3];
	ck_assert_int_eq(pthread_create(&th[0], NULL, thread_poller, &shared), 0);
	ck_assert_int_eq(pthread_create(&th[1], NULL, thread_poller, &shared), 0);
	ck_assert_int_eq(pthread_create(&th[2], NULL, thread_poller, &mine), 0);
	pid_t prod[2];
	for (uint32_t k = 0; k < 2; k++) {
		prod[k] = fork_child();
		if (prod[k] == 0)
			load_producer(k);
	}
	for (int k = 0; k < 2; k++)
		ck_assert_int_eq(wait_child(prod[k]), 0);
	uint64_t want = 2ull * LOAD_PER;
	double end = now_ms() + 30000;
	while (atomic_load(&L->total) < want && now_ms() < end)
		sleep_ms(10);
	sleep_ms(200);
	atomic_store(&L->stop, 1);
	for (int k = 0; k < 3; k++)
		pthread_join(th[k], NULL);
	ck_assert_int_eq(atomic_load(&L->bad), 0);
	ck_assert_uint_eq(atomic_load(&L->total), want);
	for (int p = 0; p < 2; p++)
		for (uint32_t s = 0; s < LOAD_PER; s++)
			ck_assert_msg(atomic_load(&L->seen[p][s]) == 1,
			              "message %d/%u taken %u times", p, s,
			              atomic_load(&L->seen[p][s]));
	ck_assert_int_eq(mq_detach(own), 0);
	free(L);
	destroy(q);
}
END_TEST

static Suite *pollfd_suite(void)
{
	Suite *s = suite_create("pollfd");
	TCase *tc = new_tcase(s, "api");
	tcase_add_loop_test(tc, test_bad_arguments, 0, 2);
	tcase_add_loop_test(tc, test_descriptor_belongs_to_handle, 0, 2);
	tc = new_tcase(s, "waking");
	tcase_add_loop_test(tc, test_message_wakes_epoll, 0, 2);
	tcase_add_loop_test(tc, test_level_triggered, 0, 2);
	tcase_add_loop_test(tc, test_edge_triggered, 0, 2);
	tcase_add_loop_test(tc, test_poll_and_select, 0, 2);
	tcase_add_loop_test(tc, test_pollout_wakes_producer, 0, 2);
	tc = new_tcase(s, "peers");
	tcase_add_loop_test(tc, test_dead_lease_holder_wakes_poller, 0, 2);
	tcase_add_loop_test(tc, test_pollers_and_blockers_exactly_once, 0, 2);
	tcase_add_loop_test(tc, test_killed_producer_leaves_no_poller_asleep, 0, 2);
	tcase_add_loop_test(tc, test_threads_poll, 0, 2);
	return s;
}

int main(void)
{
	return run_suite(pollfd_suite());
}
