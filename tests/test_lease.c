/* test_lease.c - unit tests: at-least-once receiving (mq_recv_lease, mq_peek, mq_ack, mq_nack). */
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

#define TEST_TAG "lease"
#include "testapi.h"

/* Every test loops over the two geometries (_i bit 0, testapi.h). */

/* lease_ok: lease the next message of Q at once; it must be TEXT. */
static mq_lease_t lease_ok(mq_t *q, const char *text)
{
	char buf[256];
	mq_lease_t l;
	memset(&l, 0xa5, sizeof(l));
	ssize_t n = mq_recv_lease(q, buf, sizeof(buf), 0, &l);
	ck_assert_msg(n == (ssize_t)strlen(text), "mq_recv_lease: %zd, expected \"%s\" (%s)", n,
	              text, n < 0 ? mq_errdetail() : "");
	ck_assert_msg(memcmp(buf, text, (size_t)n) == 0, "leased \"%.*s\", expected \"%s\"", (int)n,
	              buf, text);
	ck_assert_uint_eq(l.len, (uint32_t)n);
	return l;
}

static void ack_ok(mq_t *q, const mq_lease_t *l)
{
	ck_assert_msg(mq_ack(q, l) == 0, "mq_ack(id %llu): %s", (unsigned long long)l->id,
	              mq_errdetail());
}

static void nack_ok(mq_t *q, const mq_lease_t *l)
{
	ck_assert_msg(mq_nack(q, l) == 0, "mq_nack(id %llu): %s", (unsigned long long)l->id,
	              mq_errdetail());
}

/* The figures a failed ack or nack must leave alone. */
struct snapshot {
	struct mq_stats st;
	struct mq_inspection in;
};

static struct snapshot snap(mq_t *q)
{
	struct snapshot s = {stats_of(q), inspect_of(q)};
	return s;
}

static void assert_unchanged(const struct snapshot *a, mq_t *q, const char *what)
{
	struct snapshot b = snap(q);
#define SAME(f)                                                                                    \
	ck_assert_msg(a->f == b.f, "%s changed " #f ": %llu -> %llu", what,                        \
	              (unsigned long long)a->f, (unsigned long long)b.f)
	SAME(st.depth);
	SAME(st.in_flight);
	SAME(st.acked_total);
	SAME(st.nacked_total);
	SAME(st.redelivered_total);
	SAME(st.enqueued_total);
	SAME(st.dequeued_total);
	SAME(st.bytes_dequeued_total);
	SAME(in.head);
	SAME(in.tail);
	SAME(in.requeue_head);
	SAME(in.requeue_tail);
	SAME(in.pool_head);
	SAME(in.pool_tail);
	SAME(in.chunks_free);
	SAME(in.chunks_queued);
	SAME(in.chunks_requeued);
	SAME(in.chunks_leased);
	SAME(in.sound);
#undef SAME
}

/* my_entry: Q's own entry in the client table (the one holding LEASES leases
 * is told apart by pid only when it is the only one; tests pass the index). */
static struct mq_client_info client_at(mq_t *q, int index)
{
	struct mq_client_info info[8];
	int n = mq_clients(q, info, 8);
	ck_assert_int_gt(n, index);
	return info[index];
}

/* ------------------------------------------------------------------- basics */

START_TEST(test_lease_then_ack)
{
	mq_t *q = create_geo(_i, 4);
	send_text(q, "m1");
	send_text(q, "m2");
	mq_lease_t l = lease_ok(q, "m1");
	ck_assert_uint_ne(l.id, 0);
	ck_assert_uint_eq(l.deliveries, 1);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.in_flight, 1);
	ck_assert_uint_eq(s.depth, 1);
	ck_assert_uint_eq(s.dequeued_total, 0); /* leased, not retired */
	ck_assert_uint_eq(inspect_of(q).chunks_leased, 1);
	ack_ok(q, &l);
	s = stats_of(q);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.acked_total, 1);
	ck_assert_uint_eq(s.dequeued_total, 1);
	ck_assert_uint_eq(s.bytes_dequeued_total, 2);
	ck_assert_uint_eq(inspect_of(q).chunks_leased, 0);
	expect_text(q, "m2");
	expect_empty(q);
	assert_sound(q);
	destroy(q);
}
END_TEST

/* A leased message is invisible to other consumers, in this process or
 * another, until it is acked or nacked. */
START_TEST(test_leased_message_invisible_to_others)
{
	char buf[16];
	mq_t *a = create_geo(_i, 4);
	mq_t *b = attach_ok();
	send_text(a, "m1");
	send_text(a, "m2");
	mq_lease_t l1 = lease_ok(a, "m1");

	/* Another process sees only m2 (and leaves it). */
	pid_t pid = fork_child();
	if (pid == 0) {
		mq_t *c = mq_attach(qname);
		mq_lease_t cl;
		if (!c)
			_exit(10);
		ssize_t n = mq_recv_lease(c, buf, sizeof(buf), 0, &cl);
		if (n != 2 || memcmp(buf, "m2", 2) != 0)
			_exit(11);
		if (mq_nack(c, &cl) != 0)
			_exit(12);
		mq_detach(c);
		_exit(0);
	}
	ck_assert_int_eq(wait_child(pid), 0);

	expect_text(b, "m2");
	expect_empty(b);
	mq_lease_t lb;
	EXPECT_ERR(mq_recv_lease(b, buf, sizeof(buf), 20, &lb), ETIMEDOUT, "still empty");
	size_t len;
	EXPECT_NULL(mq_peek(b, &len, 20, &lb), ETIMEDOUT, "still empty");
	EXPECT_ERR(mq_recv(b, buf, sizeof(buf), 20), ETIMEDOUT, "still empty");

	/* Given back: the other handle gets it, same id, second delivery. */
	nack_ok(a, &l1);
	mq_lease_t l2 = lease_ok(b, "m1");
	ck_assert_uint_eq(l2.id, l1.id);
	ck_assert_uint_eq(l2.deliveries, 2);
	ack_ok(b, &l2);
	expect_empty(a);
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(a);
}
END_TEST

/* A nacked message comes back first, same id, deliveries + 1 each time. */
START_TEST(test_nack_redelivers_first_same_id)
{
	mq_t *q = create_geo(_i, 4);
	send_text(q, "m1");
	send_text(q, "m2");
	send_text(q, "m3");
	mq_lease_t l = lease_ok(q, "m1");
	uint64_t id = l.id;
	for (uint32_t d = 1; d <= 3; d++) {
		ck_assert_uint_eq(l.id, id);
		ck_assert_uint_eq(l.deliveries, d);
		nack_ok(q, &l);
		ck_assert_uint_eq(stats_of(q).depth, 3);
		l = lease_ok(q, "m1");
	}
	ck_assert_uint_eq(l.deliveries, 4);
	ack_ok(q, &l);
	mq_lease_t l2 = lease_ok(q, "m2");
	ck_assert_uint_eq(l2.deliveries, 1);
	ck_assert_uint_ne(l2.id, id);
	ack_ok(q, &l2);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.nacked_total, 3);
	ck_assert_uint_eq(s.redelivered_total, 3);
	ck_assert_uint_eq(s.acked_total, 2);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.depth, 1);
	expect_text(q, "m3");
	destroy(q);
}
END_TEST

/* Several given back: in the order they were given back, before the ring,
 * through mq_recv as well as leases. */
START_TEST(test_nacked_in_nack_order_before_ring)
{
	mq_t *q = create_geo(_i, 8);
	send_text(q, "m1");
	send_text(q, "m2");
	send_text(q, "m3");
	mq_lease_t l1 = lease_ok(q, "m1"), l2 = lease_ok(q, "m2"), l3 = lease_ok(q, "m3");
	send_text(q, "m4");
	nack_ok(q, &l3);
	nack_ok(q, &l1);
	mq_lease_t r3 = lease_ok(q, "m3");
	ck_assert_uint_eq(r3.id, l3.id);
	ck_assert_uint_eq(r3.deliveries, 2);
	expect_text(q, "m1"); /* a plain mq_recv takes the requeued one too */
	mq_lease_t l4 = lease_ok(q, "m4");
	ck_assert_uint_eq(l4.deliveries, 1);
	ack_ok(q, &l2);
	ack_ok(q, &r3);
	ack_ok(q, &l4);
	expect_empty(q);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.redelivered_total, 2);
	ck_assert_uint_eq(s.dequeued_total, 4);
	ck_assert_uint_eq(s.in_flight, 0);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------- settling wrongly */

/* A lease taken through another handle (in the same process) is refused,
 * even with the owner field forged, and nothing changes. */
START_TEST(test_ack_of_other_handles_lease_is_einval)
{
	mq_t *a = create_geo(_i, 4);
	mq_t *b = attach_ok();
	send_text(a, "ma");
	send_text(a, "mb");
	mq_lease_t la = lease_ok(a, "ma");
	mq_lease_t lb = lease_ok(b, "mb");
	ck_assert_uint_ne(la.owner, lb.owner);
	struct snapshot before = snap(a);

	EXPECT_ERR(mq_ack(b, &la), EINVAL, "was not taken through this handle");
	EXPECT_ERR(mq_nack(b, &la), EINVAL, "was not taken through this handle");
	EXPECT_ERR(mq_ack(a, &lb), EINVAL, "was not taken through this handle");
	/* The owner field says b, the chunk says a. */
	mq_lease_t forged = la;
	forged.owner = lb.owner;
	EXPECT_ERR(mq_ack(b, &forged), EINVAL, "is not leased to this handle");
	EXPECT_ERR(mq_nack(b, &forged), EINVAL, "is not leased to this handle");
	/* b's own lease with a's chunk. */
	forged = lb;
	forged.slot = la.slot;
	EXPECT_ERR(mq_ack(b, &forged), EINVAL, "is not leased to this handle");
	assert_unchanged(&before, a, "a refused ack");
	ck_assert_uint_eq(client_at(a, 0).in_flight, 1);
	ck_assert_uint_eq(client_at(a, 1).in_flight, 1);

	ack_ok(a, &la);
	ack_ok(b, &lb);
	struct mq_stats s = stats_of(a);
	ck_assert_uint_eq(s.acked_total, 2);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(a);
}
END_TEST

/* Twice, ack after nack, nack after ack, an old delivery's lease: EINVAL. */
START_TEST(test_settle_twice_is_einval)
{
	mq_t *q = create_geo(_i, 4);
	send_text(q, "m1");
	send_text(q, "m2");
	mq_lease_t l1 = lease_ok(q, "m1");
	ack_ok(q, &l1);
	struct snapshot before = snap(q);
	EXPECT_ERR(mq_ack(q, &l1), EINVAL, "acked or nacked already");
	EXPECT_ERR(mq_nack(q, &l1), EINVAL, "acked or nacked already");
	assert_unchanged(&before, q, "settling an acked lease");

	mq_lease_t l2 = lease_ok(q, "m2");
	nack_ok(q, &l2);
	before = snap(q);
	EXPECT_ERR(mq_nack(q, &l2), EINVAL, "acked or nacked already");
	EXPECT_ERR(mq_ack(q, &l2), EINVAL, "acked or nacked already");
	assert_unchanged(&before, q, "settling a nacked lease");

	/* Delivered again to the same handle: the first delivery's lease is
	 * stale, the second's is good. */
	mq_lease_t l2b = lease_ok(q, "m2");
	ck_assert_uint_eq(l2b.id, l2.id);
	ck_assert_uint_eq(l2b.slot, l2.slot);
	ck_assert_uint_eq(l2b.deliveries, 2);
	before = snap(q);
	EXPECT_ERR(mq_ack(q, &l2), EINVAL, "acked or nacked already");
	EXPECT_ERR(mq_nack(q, &l2), EINVAL, "acked or nacked already");
	assert_unchanged(&before, q, "settling the first delivery's lease");
	ack_ok(q, &l2b);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.acked_total, 2);
	ck_assert_uint_eq(s.nacked_total, 1);
	ck_assert_uint_eq(s.in_flight, 0);
	destroy(q);
}
END_TEST

/* A lease whose chunk now holds another message (capacity 1: the same
 * chunk every time) is stale. */
START_TEST(test_stale_lease_after_chunk_reuse_is_einval)
{
	mq_t *q = create_geo(_i, 1);
	send_text(q, "first");
	mq_lease_t l1 = lease_ok(q, "first");
	ack_ok(q, &l1);
	send_text(q, "second");
	mq_lease_t l2 = lease_ok(q, "second");
	ck_assert_uint_eq(l2.slot, l1.slot);
	ck_assert_uint_ne(l2.id, l1.id);
	ck_assert_uint_eq(l2.deliveries, 1);
	struct snapshot before = snap(q);
	EXPECT_ERR(mq_ack(q, &l1), EINVAL, "acked or nacked already");
	EXPECT_ERR(mq_nack(q, &l1), EINVAL, "acked or nacked already");
	assert_unchanged(&before, q, "a stale lease");
	ack_ok(q, &l2);
	destroy(q);
}
END_TEST

/* Garbage: NULL, random fields, and near misses; EINVAL, nothing changes. */
START_TEST(test_garbage_leases_are_einval)
{
	mq_t *q = create_geo(_i, 4);
	send_text(q, "held");
	send_text(q, "queued");
	mq_lease_t good = lease_ok(q, "held");
	struct snapshot before = snap(q);

	EXPECT_ERR(mq_ack(q, NULL), EINVAL, "NULL lease");
	EXPECT_ERR(mq_nack(q, NULL), EINVAL, "NULL lease");
	EXPECT_ERR(mq_ack(NULL, &good), EINVAL, "no queue handle");
	EXPECT_ERR(mq_nack(NULL, &good), EINVAL, "no queue handle");

	unsigned seed = 12345u + (unsigned)_i;
	for (int k = 0; k < 2000; k++) {
		mq_lease_t g;
		unsigned char *p = (unsigned char *)&g;
		for (size_t j = 0; j < sizeof(g); j++)
			p[j] = (unsigned char)rand_r(&seed);
		if (k % 4 == 1)
			g.owner = good.owner; /* past the owner check */
		if (k % 4 == 2) {
			g.owner = good.owner;
			g.slot = (uint32_t)rand_r(&seed) % 4; /* an existing chunk */
		}
		errno = 0;
		int rc = k % 2 ? mq_ack(q, &g) : mq_nack(q, &g);
		ck_assert_msg(rc == -1 && errno == EINVAL, "garbage lease %d: %d errno %d (%s)", k,
		              rc, errno, mq_errdetail());
	}
	/* Near misses of the good lease: each field off. */
	mq_lease_t m;
	m = good, m.id++;
	EXPECT_ERR(mq_ack(q, &m), EINVAL, "is not leased to this handle");
	m = good, m.id = 0;
	EXPECT_ERR(mq_ack(q, &m), EINVAL, "is not leased to this handle");
	m = good, m.deliveries++;
	EXPECT_ERR(mq_ack(q, &m), EINVAL, "is not leased to this handle");
	m = good, m.deliveries = 0;
	EXPECT_ERR(mq_nack(q, &m), EINVAL, "is not leased to this handle");
	m = good, m.slot = 4; /* the capacity */
	EXPECT_ERR(mq_ack(q, &m), EINVAL, "was not taken through this handle");
	m = good, m.slot = UINT32_MAX;
	EXPECT_ERR(mq_nack(q, &m), EINVAL, "was not taken through this handle");
	m = good, m.owner = 0;
	EXPECT_ERR(mq_ack(q, &m), EINVAL, "was not taken through this handle");
	m = good, m.owner ^= 1u << 9; /* another generation of our entry */
	EXPECT_ERR(mq_ack(q, &m), EINVAL, "was not taken through this handle");
	/* The queued message's chunk, with our owner: not leased. */
	for (uint32_t s = 0; s < 4; s++) {
		if (s == good.slot)
			continue;
		m = good, m.slot = s;
		EXPECT_ERR(mq_ack(q, &m), EINVAL, "is not leased to this handle");
	}
	assert_unchanged(&before, q, "a garbage lease");

	ack_ok(q, &good);
	expect_text(q, "queued");
	assert_sound(q);
	destroy(q);
}
END_TEST

/* ----------------------------------------------------------------- mq_peek */

/* The bytes mq_peek points at stay valid and unchanged until the ack, while
 * every other chunk is written over and over. */
START_TEST(test_peek_pointer_stable_until_ack)
{
	size_t max = geo_max_msg(_i);
	unsigned char *msg = malloc(max), *want = malloc(max), *got = malloc(max);
	ck_assert_ptr_nonnull(msg);
	ck_assert_ptr_nonnull(want);
	ck_assert_ptr_nonnull(got);
	mq_t *q = create_geo(_i, 4);
	mq_t *other = attach_ok();
	fill(want, max, 7);
	ck_assert_int_eq(mq_send(q, want, max, 0), 0);
	size_t len = 0;
	mq_lease_t l;
	const unsigned char *p = mq_peek(q, &len, 0, &l);
	ck_assert_msg(p != NULL, "mq_peek: %s", mq_errdetail());
	ck_assert_uint_eq(len, max);
	ck_assert_uint_eq(l.len, max);
	ck_assert_uint_eq(l.deliveries, 1);
	ck_assert(memcmp(p, want, max) == 0);

	for (uint32_t round = 0; round < 20; round++) {
		for (uint32_t k = 0; k < 3; k++) {
			fill(msg, max, 100 + round * 3 + k);
			ck_assert_int_eq(mq_send(round % 2 ? other : q, msg, max, 0), 0);
		}
		EXPECT_ERR(mq_send(q, msg, 1, 0), EAGAIN, "queue full");
		for (uint32_t k = 0; k < 3; k++) {
			ck_assert_int_eq(mq_recv(round % 2 ? q : other, got, max, 0), (ssize_t)max);
			ck_assert(pattern_ok(got, max, 100 + round * 3 + k));
		}
		ck_assert_msg(memcmp(p, want, max) == 0, "peeked bytes changed in round %u", round);
	}
	ck_assert_uint_eq(len, max);
	ack_ok(q, &l);
	ck_assert_uint_eq(stats_of(q).in_flight, 0);
	ck_assert_int_eq(mq_detach(other), 0);
	free(msg);
	free(want);
	free(got);
	destroy(q);
}
END_TEST

START_TEST(test_peek_zero_length_and_nack)
{
	mq_t *q = create_geo(_i, 4);
	ck_assert_int_eq(mq_send(q, NULL, 0, 0), 0);
	size_t len = 99;
	mq_lease_t l;
	const void *p = mq_peek(q, &len, 0, &l);
	ck_assert_msg(p != NULL, "mq_peek of an empty message: %s", mq_errdetail());
	ck_assert_uint_eq(len, 0);
	nack_ok(q, &l);
	p = mq_peek(q, &len, -1, &l);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(l.deliveries, 2);
	ack_ok(q, &l);
	destroy(q);
}
END_TEST

START_TEST(test_lease_bad_arguments)
{
	char buf[16];
	size_t len;
	mq_lease_t l;
	mq_t *q = create_geo(_i, 4);
	send_text(q, "stays");
	EXPECT_ERR(mq_recv_lease(NULL, buf, sizeof(buf), 0, &l), EINVAL, "no queue handle");
	EXPECT_ERR(mq_recv_lease(q, buf, sizeof(buf), 0, NULL), EINVAL, "NULL lease");
	EXPECT_ERR(mq_recv_lease(q, NULL, 5, 0, &l), EINVAL, "NULL buffer of 5 bytes");
	EXPECT_ERR(mq_recv_lease(q, buf, sizeof(buf), -2, &l), EINVAL, "timeout -2 ms");
	EXPECT_NULL(mq_peek(NULL, &len, 0, &l), EINVAL, "no queue handle");
	EXPECT_NULL(mq_peek(q, NULL, 0, &l), EINVAL, "NULL length");
	EXPECT_NULL(mq_peek(q, &len, 0, NULL), EINVAL, "NULL lease");
	EXPECT_NULL(mq_peek(q, &len, -5, &l), EINVAL, "timeout -5 ms");
	/* Too small a buffer: EMSGSIZE, the message stays, no delivery counted. */
	EXPECT_ERR(mq_recv_lease(q, buf, 4, 0, &l), EMSGSIZE,
	           "message of 5 bytes, buffer of 4 (the message stays queued)");
	EXPECT_ERR(mq_recv_lease(q, buf, 4, 1000, &l), EMSGSIZE, "stays queued");
	/* An observer does not lease. */
	mq_t *o = mq_observe(qname);
	ck_assert_ptr_nonnull(o);
	EXPECT_ERR(mq_recv_lease(o, buf, sizeof(buf), 0, &l), EINVAL, "only observes");
	EXPECT_NULL(mq_peek(o, &len, 0, &l), EINVAL, "only observes");
	ck_assert_int_eq(mq_detach(o), 0);

	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.depth, 1);
	ck_assert_uint_eq(s.in_flight, 0);
	mq_lease_t ok = lease_ok(q, "stays");
	ck_assert_uint_eq(ok.deliveries, 1);
	ack_ok(q, &ok);
	destroy(q);
}
END_TEST

static void *delayed_send(void *arg)
{
	sleep_ms(50);
	mq_send(arg, "late", 4, 0);
	return NULL;
}

START_TEST(test_lease_timeouts)
{
	char buf[16];
	size_t len;
	mq_lease_t l;
	mq_t *q = create_geo(_i, 4);
	double t0 = now_ms();
	EXPECT_ERR(mq_recv_lease(q, buf, sizeof(buf), 50, &l), ETIMEDOUT,
	           "still empty after 50 ms");
	double e1 = now_ms() - t0;
	t0 = now_ms();
	EXPECT_NULL(mq_peek(q, &len, 50, &l), ETIMEDOUT, "still empty after 50 ms");
	double e2 = now_ms() - t0;
	ck_assert_msg(e1 >= 49 && e1 < 1000 && e2 >= 49 && e2 < 1000,
	              "ETIMEDOUT after %.1f and %.1f ms", e1, e2);

	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_send, q), 0);
	t0 = now_ms();
	ssize_t n = mq_recv_lease(q, buf, sizeof(buf), -1, &l);
	double e3 = now_ms() - t0;
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(n == 4, "mq_recv_lease(-1): %zd (%s)", n, mq_errdetail());
	ck_assert_msg(e3 >= 45, "leased after %.1f ms, before the send", e3);
	ack_ok(q, &l);
	ck_assert_int_eq(pthread_create(&t, NULL, delayed_send, q), 0);
	const void *p = mq_peek(q, &len, 5000, &l);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_msg(p != NULL && len == 4, "mq_peek(5000): %s", mq_errdetail());
	ack_ok(q, &l);
	destroy(q);
}
END_TEST

/* --------------------------------------------------- holders that go away */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* mq_detach with leases outstanding gives them back for redelivery. */
START_TEST(test_detach_returns_leases)
{
	mq_t *q = create_geo(_i, 4);
	mq_t *b = attach_ok();
	send_text(q, "d1");
	send_text(q, "d2");
	send_text(q, "d3");
	uint64_t ids[2];
	mq_lease_t l1 = lease_ok(b, "d1");
	size_t len;
	mq_lease_t l2;
	ck_assert_ptr_nonnull(mq_peek(b, &len, 0, &l2));
	ids[0] = l1.id, ids[1] = l2.id;
	ck_assert_uint_eq(stats_of(q).in_flight, 2);
	ck_assert_int_eq(mq_detach(b), 0);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.depth, 3);
	ck_assert_uint_eq(inspect_of(q).chunks_requeued, 2);

	/* Both come back (before d3), second delivery, same ids. */
	char buf[16];
	uint64_t got[2];
	for (int k = 0; k < 2; k++) {
		mq_lease_t l;
		ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &l), 2);
		ck_assert_msg(buf[0] == 'd' && (buf[1] == '1' || buf[1] == '2'), "got %.2s", buf);
		ck_assert_uint_eq(l.deliveries, 2);
		got[k] = l.id;
		ack_ok(q, &l);
	}
	qsort(ids, 2, sizeof(ids[0]), cmp_u64);
	qsort(got, 2, sizeof(got[0]), cmp_u64);
	ck_assert_uint_eq(got[0], ids[0]);
	ck_assert_uint_eq(got[1], ids[1]);
	expect_text(q, "d3");
	s = stats_of(q);
	ck_assert_uint_eq(s.redelivered_total, 2);
	ck_assert_uint_eq(s.acked_total, 2);
	assert_sound(q);
	destroy(q);
}
END_TEST

/* What a consumer child reports once it holds its leases. */
struct held {
	int n;
	uint64_t ids[4];
	uint64_t acked_id;
};

/* consumer_child: attach, lease every message but one (the first, which it
 * acks), tell the parent, wait to be killed. */
static void consumer_child(struct chan *ch, int n_msgs)
{
	mq_t *c = mq_attach(qname);
	if (!c)
		_exit(10);
	struct held h = {0};
	char buf[16];
	mq_lease_t l;
	if (mq_recv_lease(c, buf, sizeof(buf), 0, &l) < 0 || mq_ack(c, &l) != 0)
		_exit(11);
	h.acked_id = l.id;
	for (int k = 1; k < n_msgs; k++) {
		if (k % 2) {
			if (mq_recv_lease(c, buf, sizeof(buf), 0, &l) < 0)
				_exit(12);
		} else {
			size_t len;
			if (!mq_peek(c, &len, 0, &l))
				_exit(13);
		}
		h.ids[h.n++] = l.id;
	}
	chan_say(ch, &h, sizeof(h));
	for (;;)
		pause();
}

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

/* take_redelivered: lease H->n messages (waiting up to TIMEOUT_MS for the
 * first); they must be H's, each on its second delivery. */
static void take_redelivered(mq_t *q, const struct held *h, int timeout_ms)
{
	uint64_t got[4];
	for (int k = 0; k < h->n; k++) {
		char buf[16];
		mq_lease_t l;
		ssize_t n = mq_recv_lease(q, buf, sizeof(buf), k == 0 ? timeout_ms : 0, &l);
		ck_assert_msg(n == 2, "redelivery %d: %zd (%s)", k, n, mq_errdetail());
		ck_assert_uint_eq(l.deliveries, 2);
		ck_assert_uint_ne(l.id, h->acked_id);
		got[k] = l.id;
		ack_ok(q, &l);
	}
	uint64_t want[4];
	memcpy(want, h->ids, sizeof(want));
	qsort(want, (size_t)h->n, sizeof(want[0]), cmp_u64);
	qsort(got, (size_t)h->n, sizeof(got[0]), cmp_u64);
	for (int k = 0; k < h->n; k++)
		ck_assert_uint_eq(got[k], want[k]);
	expect_empty(q); /* the acked one never comes back */
}

/* A consumer SIGKILLed holding leases: a consumer waiting for a message gets
 * them again (deliveries 2) within a second or two — it looks for dead
 * holders between its sleep slices. */
START_TEST(test_killed_consumer_redelivered_to_waiting_consumer)
{
	mq_t *q = create_geo(_i, 4);
	for (int k = 0; k < 3; k++)
		send_text(q, k == 0 ? "k0" : k == 1 ? "k1" : "k2");
	struct chan ch;
	chan_open(&ch);
	pid_t pid = fork_child();
	if (pid == 0)
		consumer_child(&ch, 3);
	struct held h;
	ck_assert_int_eq(chan_hear(&ch, &h, sizeof(h), 5000), 0);
	ck_assert_int_eq(h.n, 2);
	expect_empty(q);
	ck_assert_uint_eq(stats_of(q).in_flight, 2);

	struct killer k = {pid, 100, 0};
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, killer_thread, &k), 0);
	char buf[16];
	mq_lease_t l;
	ssize_t n = mq_recv_lease(q, buf, sizeof(buf), 5000, &l);
	double returned_at = now_ms();
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_int_eq(wait_child(pid), 1000 + SIGKILL);
	ck_assert_msg(n == 2, "the waiting consumer got %zd (%s)", n, mq_errdetail());
	ck_assert_msg(returned_at > k.killed_at,
	              "the waiting consumer got a message before the kill");
	ck_assert_msg(returned_at - k.killed_at < 2000, "redelivered %.0f ms after the kill",
	              returned_at - k.killed_at);
	ck_assert_uint_eq(l.deliveries, 2);
	ack_ok(q, &l);
	/* The other one is there too, and nothing else. */
	struct held rest = h;
	rest.n = 0;
	for (int j = 0; j < h.n; j++)
		if (h.ids[j] != l.id)
			rest.ids[rest.n++] = h.ids[j];
	ck_assert_int_eq(rest.n, 1);
	take_redelivered(q, &rest, 0);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.recoveries_total, 1);
	ck_assert_uint_eq(s.acked_total, 3);
	assert_sound(q);
	chan_close(&ch);
	destroy(q);
}
END_TEST

/* The same found by the broker's reap (an observer with the broker lock). */
START_TEST(test_killed_consumer_reaped_by_broker)
{
	mq_t *q = create_geo(_i, 8);
	for (int k = 0; k < 4; k++)
		send_text(q, "kk");
	mq_t *broker = mq_observe(qname);
	ck_assert_ptr_nonnull(broker);
	struct mq_reaped r[4];
	EXPECT_ERR(mq_reap(broker, r, 4, 0), EINVAL, "needs the broker lock or a client handle");
	ck_assert_int_eq(mq_broker_lock(broker), 0);

	struct chan ch;
	chan_open(&ch);
	pid_t pid = fork_child();
	if (pid == 0)
		consumer_child(&ch, 4);
	struct held h;
	ck_assert_int_eq(chan_hear(&ch, &h, sizeof(h), 5000), 0);
	ck_assert_int_eq(h.n, 3);
	ck_assert_int_eq(kill_child(pid), 1000 + SIGKILL);

	struct mq_inspection in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_leased, 3);
	ck_assert_uint_eq(in.chunks_orphaned, 3);
	ck_assert_uint_eq(stats_of(q).in_flight, 3); /* until the reap */
	expect_empty(q);

	ck_assert_int_eq(mq_reap(broker, r, 4, 1000), 1);
	ck_assert_int_eq(r[0].pid, pid);
	ck_assert_uint_eq(r[0].role, MQ_ROLE_CONSUMER);
	ck_assert_uint_eq(r[0].received_total, 1); /* the one it acked */
	in = inspect_of(q);
	ck_assert_uint_eq(in.chunks_leased, 0);
	ck_assert_uint_eq(in.chunks_orphaned, 0);
	ck_assert_uint_eq(in.chunks_requeued, 3);
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.recoveries_total, 1);
	ck_assert_uint_eq(s.depth, 3);
	ck_assert_int_eq(mq_reap(broker, r, 4, 1000), 0);

	take_redelivered(q, &h, 0);
	ck_assert_uint_eq(stats_of(q).redelivered_total, 3);
	assert_sound(q);
	chan_close(&ch);
	ck_assert_int_eq(mq_detach(broker), 0);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------- capacity, stats */

static void *blocked_send(void *arg)
{
	mq_t *q = arg;
	intptr_t rc = mq_send(q, "waited", 6, 5000);
	return (void *)rc;
}

/* Leases hold their space: a consumer that never acks makes producers wait;
 * an ack makes room (and wakes a waiting producer), a nack does not. */
START_TEST(test_leases_count_toward_capacity)
{
	mq_t *q = create_geo(_i, 4);
	mq_lease_t l[4];
	for (int k = 0; k < 4; k++)
		send_text(q, "cap");
	for (int k = 0; k < 4; k++)
		l[k] = lease_ok(q, "cap");
	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.depth, 0);
	ck_assert_uint_eq(s.in_flight, 4);
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full (4 messages)");
	EXPECT_ERR(mq_send(q, "x", 1, 30), ETIMEDOUT, "still full after 30 ms");
	expect_empty(q);

	nack_ok(q, &l[0]); /* back in the queue: still no room */
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full");

	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, blocked_send, q), 0);
	sleep_ms(50);
	ack_ok(q, &l[1]);
	void *rc;
	ck_assert_int_eq(pthread_join(t, &rc), 0);
	ck_assert_msg(rc == 0, "the producer waiting for room was not let in by the ack");
	EXPECT_ERR(mq_send(q, "x", 1, 0), EAGAIN, "queue full");
	s = stats_of(q);
	ck_assert_uint_eq(s.depth, 2);
	ck_assert_uint_eq(s.in_flight, 2);
	ck_assert_uint_ge(s.blocked_sends_total, 1);
	ack_ok(q, &l[2]);
	ack_ok(q, &l[3]);
	expect_text(q, "cap");
	expect_text(q, "waited");
	ck_assert_uint_eq(inspect_of(q).chunks_free, 4);
	destroy(q);
}
END_TEST

/* The lease figures: queue-wide and per client, including the age of the
 * oldest lease. */
START_TEST(test_lease_stats_and_client_counters)
{
	mq_t *q = create_geo(_i, 8); /* client 0 */
	mq_t *b = attach_ok();       /* client 1: takes nothing */
	for (int k = 0; k < 4; k++)
		send_text(q, "st");
	mq_lease_t l1 = lease_ok(q, "st");
	sleep_ms(60);
	mq_lease_t l2 = lease_ok(q, "st");
	mq_lease_t l3 = lease_ok(q, "st");

	struct mq_client_info c = client_at(q, 0);
	ck_assert_uint_eq(c.in_flight, 3);
	ck_assert_msg(c.oldest_lease_age_ns > 40000000 && c.oldest_lease_age_ns < 10000000000,
	              "oldest lease age %lld ns, 60 ms after it was taken",
	              (long long)c.oldest_lease_age_ns);
	ck_assert_uint_eq(client_at(q, 1).in_flight, 0);
	ck_assert_int_eq(client_at(q, 1).oldest_lease_age_ns, 0);

	ack_ok(q, &l1); /* the oldest goes: the age is the next one's */
	c = client_at(q, 0);
	ck_assert_msg(c.oldest_lease_age_ns < 40000000, "oldest lease age %lld ns after its ack",
	              (long long)c.oldest_lease_age_ns);
	nack_ok(q, &l2);
	mq_lease_t l2b = lease_ok(q, "st");
	ck_assert_uint_eq(l2b.deliveries, 2);

	struct mq_stats s = stats_of(q);
	ck_assert_uint_eq(s.in_flight, 2);
	ck_assert_uint_eq(s.acked_total, 1);
	ck_assert_uint_eq(s.nacked_total, 1);
	ck_assert_uint_eq(s.redelivered_total, 1);
	ck_assert_uint_eq(s.dequeued_total, 1);
	ck_assert_uint_eq(s.depth, 1);
	ck_assert_uint_eq(s.consumers, 1);
	c = client_at(q, 0);
	ck_assert_uint_eq(c.in_flight, 2);
	ck_assert_uint_eq(c.acked_total, 1);
	ck_assert_uint_eq(c.nacked_total, 1);
	ck_assert_uint_eq(c.received_total, 1);
	ck_assert_uint_eq(c.bytes_received_total, 2);
	ck_assert_uint_eq(c.role, MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER);

	ack_ok(q, &l3);
	ack_ok(q, &l2b);
	c = client_at(q, 0);
	ck_assert_uint_eq(c.in_flight, 0);
	ck_assert_int_eq(c.oldest_lease_age_ns, 0);
	ck_assert_uint_eq(c.acked_total, 3);
	ck_assert_uint_eq(stats_of(q).in_flight, 0);
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(q);
}
END_TEST

/* Message ids: unique for the queue's life (chunks are reused, ids are not),
 * the same on every delivery. */
START_TEST(test_ids_unique_and_stable)
{
	enum { N = 300 };
	static uint64_t ids[N];
	mq_t *q = create_geo(_i, 2);
	mq_t *b = attach_ok();
	char buf[16];
	for (int k = 0; k < N; k++) {
		snprintf(buf, sizeof(buf), "id%d", k);
		send_text(k % 2 ? q : b, buf);
		mq_lease_t l = lease_ok(k % 3 ? q : b, buf);
		ck_assert_uint_eq(l.deliveries, 1);
		if (k % 5 == 0) {
			nack_ok(k % 3 ? q : b, &l);
			mq_lease_t again = lease_ok(k % 3 ? b : q, buf);
			ck_assert_uint_eq(again.id, l.id);
			ck_assert_uint_eq(again.deliveries, 2);
			l = again;
			ack_ok(k % 3 ? b : q, &l);
		} else {
			ack_ok(k % 3 ? q : b, &l);
		}
		ids[k] = l.id;
		if (k % 7 == 0) { /* messages taken by mq_recv use up ids too */
			send_text(q, "plain");
			expect_text(b, "plain");
		}
	}
	qsort(ids, N, sizeof(ids[0]), cmp_u64);
	for (int k = 1; k < N; k++)
		ck_assert_msg(ids[k] != ids[k - 1], "id %llu given twice",
		              (unsigned long long)ids[k]);
	ck_assert_int_eq(mq_detach(b), 0);
	destroy(q);
}
END_TEST

/* ------------------------------------------------------ nothing to lease */

/* Timeout 0 on an empty queue: EAGAIN, like mq_recv. */
START_TEST(test_lease_nowait_on_empty_is_eagain)
{
	char buf[16];
	size_t len;
	mq_lease_t l;
	mq_t *q = create_geo(_i, 4);
	EXPECT_ERR(mq_recv_lease(q, buf, sizeof(buf), 0, &l), EAGAIN, "mq_recv_lease on");
	EXPECT_ERR(mq_recv_lease(q, buf, sizeof(buf), 0, &l), EAGAIN, "queue empty");
	EXPECT_NULL(mq_peek(q, &len, 0, &l), EAGAIN, "mq_peek on");
	/* All leased: empty too. */
	send_text(q, "only");
	mq_lease_t held = lease_ok(q, "only");
	EXPECT_ERR(mq_recv_lease(q, buf, sizeof(buf), 0, &l), EAGAIN, "queue empty");
	EXPECT_NULL(mq_peek(q, &len, 0, &l), EAGAIN, "queue empty");
	ack_ok(q, &held);
	ck_assert_uint_eq(stats_of(q).empty_total, 5); /* one per EAGAIN above */
	destroy(q);
}
END_TEST

#define RACE_THREADS  4
#define RACE_MESSAGES 3000

struct race {
	mq_t *q;
	atomic_int taken;
	atomic_int failures;
	int first_errno;
	char first_detail[256];
};

static void *race_consumer(void *arg)
{
	struct race *r = arg;
	for (;;) {
		char buf[16];
		mq_lease_t l;
		size_t len = 0;
		int use_peek = atomic_load(&r->taken) % 2;
		errno = 0;
		const void *p = use_peek ? mq_peek(r->q, &len, -1, &l) : NULL;
		ssize_t n = use_peek ? (p ? (ssize_t)len : -1)
		                     : mq_recv_lease(r->q, buf, sizeof(buf), -1, &l);
		if (n < 0) {
			if (atomic_fetch_add(&r->failures, 1) == 0) {
				r->first_errno = errno;
				snprintf(r->first_detail, sizeof(r->first_detail), "%s",
				         mq_errdetail());
			}
			if (atomic_load(&r->failures) > 100)
				return NULL;
			continue;
		}
		if (mq_ack(r->q, &l) != 0)
			atomic_fetch_add(&r->failures, 1);
		if (n == 4) /* "stop" */
			return NULL;
		atomic_fetch_add(&r->taken, 1);
	}
}

/* Consumers waiting (-1) on one queue, messages trickling in one at a time:
 * the ones that lose the race for a message keep waiting; none returns -1. */
START_TEST(test_competing_lease_consumers_keep_waiting)
{
	static struct race r;
	memset(&r, 0, sizeof(r));
	r.q = create_geo(_i, 8);
	if (_i & 2)
		ck_assert_int_eq(mq_set_spin(r.q, 0), 0); /* all asleep, all woken */
	pthread_t t[RACE_THREADS];
	for (int k = 0; k < RACE_THREADS; k++)
		ck_assert_int_eq(pthread_create(&t[k], NULL, race_consumer, &r), 0);
	for (int k = 0; k < RACE_MESSAGES && atomic_load(&r.failures) <= 100; k++) {
		ck_assert_int_eq(mq_send(r.q, "m", 1, -1), 0);
		struct timespec pause = {0, 100000}; /* let every consumer go back to waiting */
		nanosleep(&pause, NULL);
	}
	for (int k = 0; k < RACE_THREADS; k++)
		ck_assert_int_eq(mq_send(r.q, "stop", 4, -1), 0);
	for (int k = 0; k < RACE_THREADS; k++)
		ck_assert_int_eq(pthread_join(t[k], NULL), 0);
	ck_assert_msg(atomic_load(&r.failures) == 0,
	              "%d waiting lease calls (timeout -1) failed; the first with errno %d (%s), "
	              "detail \"%s\"",
	              atomic_load(&r.failures), r.first_errno, strerror(r.first_errno),
	              r.first_detail);
	ck_assert_int_eq(atomic_load(&r.taken), RACE_MESSAGES);
	destroy(r.q);
}
END_TEST

static Suite *lease_suite(void)
{
	Suite *s = suite_create("lease");
	TCase *tc;

	tc = new_tcase(s, "basics");
	tcase_add_loop_test(tc, test_lease_then_ack, 0, 2);
	tcase_add_loop_test(tc, test_leased_message_invisible_to_others, 0, 2);
	tcase_add_loop_test(tc, test_nack_redelivers_first_same_id, 0, 2);
	tcase_add_loop_test(tc, test_nacked_in_nack_order_before_ring, 0, 2);

	tc = new_tcase(s, "nothing_to_lease");
	tcase_add_loop_test(tc, test_lease_nowait_on_empty_is_eagain, 0, 2);
	tcase_add_loop_test(tc, test_competing_lease_consumers_keep_waiting, 0, 4);

	tc = new_tcase(s, "settle_wrongly");
	tcase_add_loop_test(tc, test_ack_of_other_handles_lease_is_einval, 0, 2);
	tcase_add_loop_test(tc, test_settle_twice_is_einval, 0, 2);
	tcase_add_loop_test(tc, test_stale_lease_after_chunk_reuse_is_einval, 0, 2);
	tcase_add_loop_test(tc, test_garbage_leases_are_einval, 0, 2);

	tc = new_tcase(s, "peek_and_args");
	tcase_add_loop_test(tc, test_peek_pointer_stable_until_ack, 0, 2);
	tcase_add_loop_test(tc, test_peek_zero_length_and_nack, 0, 2);
	tcase_add_loop_test(tc, test_lease_bad_arguments, 0, 2);
	tcase_add_loop_test(tc, test_lease_timeouts, 0, 2);

	tc = new_tcase(s, "holders_gone");
	tcase_add_loop_test(tc, test_detach_returns_leases, 0, 2);
	tcase_add_loop_test(tc, test_killed_consumer_redelivered_to_waiting_consumer, 0, 2);
	tcase_add_loop_test(tc, test_killed_consumer_reaped_by_broker, 0, 2);

	tc = new_tcase(s, "capacity_and_stats");
	tcase_add_loop_test(tc, test_leases_count_toward_capacity, 0, 2);
	tcase_add_loop_test(tc, test_lease_stats_and_client_counters, 0, 2);
	tcase_add_loop_test(tc, test_ids_unique_and_stable, 0, 2);
	return s;
}

int main(void)
{
	return run_suite(lease_suite());
}
