/*
 * testapi.h - what the API suites (test_queue, test_lease, test_zcopy,
 * test_lock) share: the two segment geometries every behaviour runs in, one
 * queue per test, errno-and-detail assertions, stats and inspection at a
 * glance, and a pipe to hear from a child.
 *
 * Geometry: segments with max_msg >= 64 KiB are "LIFO" segments (the free
 * pool is a stack under the receive lock, payloads are copied outside the
 * locks), a different code path from the small-message "FIFO" segments. Loop
 * tests pick the geometry from bit 0 of _i (geo_max_msg(_i)); a test that
 * loops over something else as well uses the bits above.
 */
#ifndef MQ_TESTAPI_H
#define MQ_TESTAPI_H

#include <check.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/select.h>
#include <sys/uio.h>
#include <unistd.h>

#include "libmq.h"
#include "libmq_admin.h"
#include "testcheck.h"

#define GEO_FIFO_MSG 512u
#define GEO_LIFO_MSG 65536u

/* geo_max_msg: the maximum message size of geometry bit 0 of I. */
static inline size_t geo_max_msg(int i)
{
	return (i & 1) ? GEO_LIFO_MSG : GEO_FIFO_MSG;
}

/* geo_name: "fifo" or "lifo", for messages. */
static inline const char *geo_name(int i)
{
	return (i & 1) ? "lifo (64 KiB)" : "fifo (512 B)";
}

/* The queue of the running test: setup_name gives it a fresh name (tagged
 * TEST_TAG, which the suite defines before including this file). */
static char qname[64];

static void setup_name(void)
{
	new_name(qname, TEST_TAG);
}

static void teardown_name(void)
{
	shm_unlink(qname);
}

/* new_tcase: a test case of S whose tests each get a fresh queue name. */
static inline TCase *new_tcase(Suite *s, const char *name)
{
	TCase *tc = tcase_create(name);
	tcase_add_checked_fixture(tc, setup_name, teardown_name);
	tcase_add_unchecked_fixture(tc, NULL, registry_cleanup);
	tcase_set_timeout(tc, 60);
	suite_add_tcase(s, tc);
	return tc;
}

/* run_suite: main() of a suite: run it, unlink every queue it made. */
static inline int run_suite(Suite *s)
{
	registry_init();
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	registry_cleanup();
	return failed == 0 ? 0 : 1;
}

static inline mq_t *create_geo(int i, size_t capacity)
{
	size_t max_msg = geo_max_msg(i);
	mq_t *q = mq_create(qname, capacity, max_msg, 0600);
	ck_assert_msg(q != NULL, "mq_create(%s, %zu, %zu): %s (%s)", qname, capacity, max_msg,
	              strerror(errno), mq_errdetail());
	struct mq_inspection in;
	ck_assert_int_eq(mq_inspect(q, &in), 0);
	ck_assert_msg(in.lifo == (unsigned)(i & 1), "%s: mq_inspect says lifo=%u", geo_name(i),
	              in.lifo);
	return q;
}

static inline mq_t *attach_ok(void)
{
	mq_t *q = mq_attach(qname);
	ck_assert_msg(q != NULL, "mq_attach(%s): %s (%s)", qname, strerror(errno), mq_errdetail());
	return q;
}

static inline void destroy(mq_t *q)
{
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}

static inline struct mq_stats stats_of(mq_t *q)
{
	struct mq_stats s;
	memset(&s, 0xa5, sizeof(s));
	ck_assert_msg(mq_stats(q, &s) == 0, "mq_stats: %s", mq_errdetail());
	return s;
}

static inline struct mq_inspection inspect_of(mq_t *q)
{
	struct mq_inspection in;
	memset(&in, 0xa5, sizeof(in));
	ck_assert_msg(mq_inspect(q, &in) == 0, "mq_inspect: %s", mq_errdetail());
	return in;
}

/* assert_sound: mq_inspect finds nothing wrong with Q's segment. */
static inline void assert_sound(mq_t *q)
{
	struct mq_inspection in = inspect_of(q);
	ck_assert_msg(in.sound == 1, "mq_inspect: not sound: %s", in.problem);
}

/* check_detail: mq_errdetail() of the failed CALL contains PHRASE. */
static inline void check_detail(const char *call, const char *phrase)
{
	const char *d = mq_errdetail();
	ck_assert_msg(strstr(d, phrase) != NULL, "%s: detail \"%s\" lacks \"%s\"", call, d, phrase);
}

/* EXPECT_ERR: CALL returns -1 with errno ERR and a detail containing PHRASE. */
#define EXPECT_ERR(call, err, phrase)                                                              \
	do {                                                                                       \
		errno = 0;                                                                         \
		long long r_ = (long long)(call);                                                  \
		int e_ = errno;                                                                    \
		ck_assert_msg(r_ == -1, "%s returned %lld, expected -1 with %s", #call, r_, #err); \
		ck_assert_msg(e_ == (err), "%s: errno %d (%s), expected %s; detail: %s", #call,    \
		              e_, strerror(e_), #err, mq_errdetail());                             \
		check_detail(#call, phrase);                                                       \
	} while (0)

/* EXPECT_NULL: CALL (returning a pointer) returns NULL with errno ERR and a
 * detail containing PHRASE. */
#define EXPECT_NULL(call, err, phrase)                                                             \
	do {                                                                                       \
		errno = 0;                                                                         \
		const void *p_ = (call);                                                           \
		int e_ = errno;                                                                    \
		ck_assert_msg(p_ == NULL, "%s returned %p, expected NULL with %s", #call, p_,      \
		              #err);                                                               \
		ck_assert_msg(e_ == (err), "%s: errno %d (%s), expected %s; detail: %s", #call,    \
		              e_, strerror(e_), #err, mq_errdetail());                             \
		check_detail(#call, phrase);                                                       \
	} while (0)

/* iov_text: an iovec of TEXT's characters (no NUL). */
static inline struct iovec iov_text(const char *text)
{
	return (struct iovec){(void *)text, strlen(text)};
}

/* fill: a recognisable pattern for message SEQ of LEN bytes. */
static inline void fill(unsigned char *buf, size_t len, uint32_t seq)
{
	for (size_t j = 0; j < len; j++)
		buf[j] = (unsigned char)(seq * 131 + j * 7 + (j >> 8));
}

/* pattern_ok: whether BUF holds fill(.., LEN, SEQ). */
static inline int pattern_ok(const unsigned char *buf, size_t len, uint32_t seq)
{
	for (size_t j = 0; j < len; j++)
		if (buf[j] != (unsigned char)(seq * 131 + j * 7 + (j >> 8)))
			return 0;
	return 1;
}

/* send_text, expect_text: a short text message, sent and received at once. */
static inline void send_text(mq_t *q, const char *text)
{
	ck_assert_msg(mq_send(q, text, strlen(text), 0) == 0, "mq_send(\"%s\"): %s", text,
	              mq_errdetail());
}

static inline void expect_text(mq_t *q, const char *want)
{
	char buf[256];
	ssize_t n = mq_recv(q, buf, sizeof(buf), 0);
	ck_assert_msg(n == (ssize_t)strlen(want), "expected \"%s\", got length %zd (%s)", want, n,
	              n < 0 ? mq_errdetail() : "");
	ck_assert_msg(memcmp(buf, want, (size_t)n) == 0, "expected \"%s\", got \"%.*s\"", want,
	              (int)n, buf);
}

/* expect_empty: Q has nothing to receive now. */
static inline void expect_empty(mq_t *q)
{
	char buf[8];
	EXPECT_ERR(mq_recv(q, buf, sizeof(buf), 0), EAGAIN, "queue empty");
}

/* A pipe for a child to say something to its parent: chan_open before the
 * fork; the child chan_say()s, the parent chan_hear()s (with a deadline). */
struct chan {
	int fd[2];
};

static inline void chan_open(struct chan *c)
{
	ck_assert_int_eq(pipe(c->fd), 0);
}

static inline void chan_say(struct chan *c, const void *buf, size_t len)
{
	if (write(c->fd[1], buf, len) != (ssize_t)len)
		_exit(99);
}

/* chan_hear: read exactly LEN bytes within TIMEOUT_MS; 0, or -1 on EOF/timeout. */
static inline int chan_hear(struct chan *c, void *buf, size_t len, int timeout_ms)
{
	double end = now_ms() + timeout_ms;
	size_t got = 0;
	while (got < len) {
		fd_set set;
		FD_ZERO(&set);
		FD_SET(c->fd[0], &set);
		double left = end - now_ms();
		if (left <= 0)
			return -1;
		struct timeval tv = {(time_t)(left / 1000),
		                     (suseconds_t)((long)left % 1000 * 1000)};
		int r = select(c->fd[0] + 1, &set, NULL, NULL, &tv);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		ssize_t n = read(c->fd[0], (char *)buf + got, len - got);
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static inline void chan_close(struct chan *c)
{
	close(c->fd[0]);
	close(c->fd[1]);
}

/* kill_child: SIGKILL PID and reap it; returns its wait_child status. */
static inline int kill_child(pid_t pid)
{
	kill(pid, SIGKILL);
	return wait_child(pid);
}

#endif /* MQ_TESTAPI_H */
