/* test_tiq.c - unit tests: time in queue (the oldest message's age, the histogram), mq_list, and
 * the status library's windows and percentiles. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define TEST_TAG "tiq"

/* AT_LEAST(NS): a lower bound for a wait of NS slept on CLOCK_MONOTONIC, as
 * the queue's clock reads it: that may be the TSC, converted at a rate
 * measured once per process (tiq.c's tsc_hz: typically within 1e-5, at
 * most 1e-3), so a wait may read a little shorter than it was. */
#define AT_LEAST(ns) ((uint64_t)(ns) - (uint64_t)(ns) / 100)
#include "status.h"
#include "testapi.h"

static struct mq_time_in_queue tiq_of(mq_t *q)
{
	struct mq_time_in_queue h;
	memset(&h, 0xa5, sizeof(h));
	ck_assert_msg(mq_time_in_queue(q, &h) == 0, "mq_time_in_queue: %s", mq_errdetail());
	return h;
}

/* find_empty: Q's consumer looks once more and finds the queue empty: its
 * pending measurements reach the histogram (as they do after 32 takes, a
 * millisecond, or at mq_detach). */
static void find_empty(mq_t *q)
{
	char b[8];
	errno = 0;
	ck_assert_int_eq(mq_recv(q, b, sizeof(b), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
}

/* bucket_of: the bucket NS falls in, by the public bounds. */
static unsigned bucket_of(uint64_t ns)
{
	unsigned i = 0;
	while (i + 1 < MQ_TIQ_NBUCKETS && ns >= mq_tiq_bucket_upper_ns(i))
		i++;
	return i;
}

/* The bounds: 1024 ns first, four buckets an octave, rising, the last open. */
START_TEST(test_bucket_bounds)
{
	ck_assert_uint_eq(mq_tiq_bucket_upper_ns(0), 1024);
	ck_assert_uint_eq(mq_tiq_bucket_upper_ns(1), 1280);
	ck_assert_uint_eq(mq_tiq_bucket_upper_ns(3), 1792);
	ck_assert_uint_eq(mq_tiq_bucket_upper_ns(4), 2048);
	ck_assert_uint_eq(mq_tiq_bucket_upper_ns(8), 4096);
	for (unsigned i = 1; i + 1 < MQ_TIQ_NBUCKETS; i++) {
		uint64_t lo = mq_tiq_bucket_upper_ns(i - 1), hi = mq_tiq_bucket_upper_ns(i);
		ck_assert_msg(hi > lo, "bucket %u: [%llu, %llu)", i, (unsigned long long)lo,
		              (unsigned long long)hi);
		/* no wider than a quarter of an octave: 25 % of its lower bound */
		ck_assert_msg(hi - lo <= lo / 4 + 1, "bucket %u is %llu wide from %llu", i,
		              (unsigned long long)(hi - lo), (unsigned long long)lo);
	}
	ck_assert_uint_eq(mq_tiq_bucket_upper_ns(MQ_TIQ_NBUCKETS - 1), UINT64_MAX);
	ck_assert_uint_eq(mq_tiq_bucket_upper_ns(MQ_TIQ_NBUCKETS + 5), UINT64_MAX);
	/* an hour is still inside the last bounded bucket or the open one */
	ck_assert_uint_ge(bucket_of(UINT64_C(3600000000000)), MQ_TIQ_NBUCKETS - 2);
}
END_TEST

/* A message that waited ~200 ms lands in the bucket of 200 ms (within the
 * width of one bucket either side: the clock is read once per lock round),
 * counted once; sum and max say the same. */
START_TEST(test_measured_wait)
{
	mq_t *q = create_geo(_i, 8);
	struct mq_time_in_queue h = tiq_of(q);
	ck_assert_uint_eq(h.count, 0);
	ck_assert_uint_eq(h.sum_ns, 0);
	ck_assert_uint_eq(h.max_ns, 0);
	for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++)
		ck_assert_uint_eq(h.bucket[i], 0);
	ck_assert_int_eq(mq_send(q, "x", 1, 0), 0);
	sleep_ms(200);
	char buf[8];
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	find_empty(q);
	h = tiq_of(q);
	ck_assert_uint_eq(h.count, 1);
	ck_assert_msg(h.sum_ns >= AT_LEAST(200000000) && h.sum_ns < 400000000, "%s: waited %llu ns",
	              geo_name(_i), (unsigned long long)h.sum_ns);
	ck_assert_uint_eq(h.max_ns, h.sum_ns);
	unsigned b = bucket_of(h.sum_ns);
	ck_assert_uint_eq(h.bucket[b], 1);
	uint64_t total = 0;
	for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++)
		total += h.bucket[i];
	ck_assert_uint_eq(total, 1);
	destroy(q);
}
END_TEST

/* The oldest waiting message's age grows while nobody takes it, follows the
 * head as messages are taken, and is 0 on an empty queue. */
START_TEST(test_oldest_age)
{
	mq_t *q = create_geo(_i, 8);
	ck_assert_uint_eq(stats_of(q).oldest_age_ns, 0);
	ck_assert_int_eq(mq_send(q, "a", 1, 0), 0);
	sleep_ms(300);
	ck_assert_int_eq(mq_send(q, "b", 1, 0), 0);
	uint64_t a1 = stats_of(q).oldest_age_ns;
	ck_assert_msg(a1 >= AT_LEAST(300000000) && a1 < 2000000000, "age %llu",
	              (unsigned long long)a1);
	sleep_ms(100);
	uint64_t a2 = stats_of(q).oldest_age_ns;
	ck_assert_msg(a2 >= a1 + AT_LEAST(100000000), "age %llu then %llu", (unsigned long long)a1,
	              (unsigned long long)a2);
	char buf[8];
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1); /* "a" */
	uint64_t b = stats_of(q).oldest_age_ns;
	ck_assert_msg(b >= AT_LEAST(100000000) && b < a2, "after taking the first: %llu (was %llu)",
	              (unsigned long long)b, (unsigned long long)a2);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	ck_assert_uint_eq(stats_of(q).oldest_age_ns, 0);
	destroy(q);
}
END_TEST

/* Leases: the first delivery is measured, a redelivery (nack) is not again;
 * a message given back counts as waiting (its age from its first send). */
START_TEST(test_lease_measured_once)
{
	mq_t *q = create_geo(_i, 8);
	ck_assert_int_eq(mq_send(q, "m", 1, 0), 0);
	sleep_ms(50);
	char buf[8];
	mq_lease_t l;
	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &l), 1);
	find_empty(q);
	ck_assert_uint_eq(tiq_of(q).count, 1);
	ck_assert_uint_eq(stats_of(q).oldest_age_ns, 0); /* leased: not waiting */
	ck_assert_int_eq(mq_nack(q, &l), 0);
	uint64_t age = stats_of(q).oldest_age_ns;
	ck_assert_msg(age >= AT_LEAST(50000000), "a nacked message's age: %llu",
	              (unsigned long long)age);
	size_t len;
	ck_assert_ptr_nonnull(mq_peek(q, &len, 0, &l));
	ck_assert_uint_eq(l.deliveries, 2);
	ck_assert_int_eq(mq_ack(q, &l), 0);
	find_empty(q);
	ck_assert_uint_eq(tiq_of(q).count, 1);
	destroy(q);
}
END_TEST

/* Batches and zero-copy sends are measured (stamped at the round, at the
 * commit); back to back they are a fast producer's: sampled, the first
 * always. */
START_TEST(test_batch_and_zero_copy)
{
	mq_t *q = create_geo(_i, 8);
	char abc[] = "abc";
	struct iovec m[3] = {{abc, 1}, {abc + 1, 1}, {abc + 2, 1}};
	ck_assert_int_eq(mq_send_batch(q, m, 3, 0), 3);
	void *r = mq_reserve(q, 1, 0);
	ck_assert_ptr_nonnull(r);
	memcpy(r, "d", 1);
	sleep_ms(100); /* reserved, not sent: does not count */
	ck_assert_int_eq(mq_commit(q, r, 1), 0);
	char b[4][8];
	struct iovec in[4] = {{b[0], 8}, {b[1], 8}, {b[2], 8}, {b[3], 8}};
	int n = mq_recv_batch(q, in, 4, 0);
	ck_assert_int_eq(n, 4);
	ck_assert_uint_eq(tiq_of(q).count, 0); /* pending: under a millisecond old */
	find_empty(q);
	struct mq_time_in_queue h = tiq_of(q);
	ck_assert_msg(h.count >= 1 && h.count <= 4, "%llu measured", (unsigned long long)h.count);
	/* "d" waited less than the others: the time before its commit is not time in queue */
	ck_assert_msg(h.max_ns >= AT_LEAST(100000000) && h.max_ns < 1000000000, "max %llu",
	              (unsigned long long)h.max_ns);
	ck_assert_msg(h.sum_ns < 4 * h.max_ns, "sum %llu, max %llu", (unsigned long long)h.sum_ns,
	              (unsigned long long)h.max_ns);
	destroy(q);
}
END_TEST

/* MQ_TIME_IN_QUEUE=0: that process neither stamps nor measures. */
START_TEST(test_switched_off)
{
	mq_t *q = create_geo(_i, 8);
	setenv("MQ_TIME_IN_QUEUE", "0", 1);
	mq_t *off = attach_ok();
	unsetenv("MQ_TIME_IN_QUEUE");
	ck_assert_int_eq(mq_send(off, "x", 1, 0), 0); /* not stamped */
	ck_assert_int_eq(mq_send(q, "y", 1, 0), 0);   /* stamped */
	sleep_ms(20);
	char buf[8];
	/* the head ("x") is not stamped: the oldest stamped waiting one, "y" */
	uint64_t age = stats_of(q).oldest_age_ns;
	ck_assert_msg(age >= AT_LEAST(20000000) && age < 1000000000, "age %llu",
	              (unsigned long long)age);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	ck_assert_uint_eq(tiq_of(q).count, 0); /* "x" is not stamped: nothing to measure */
	ck_assert_uint_ge(stats_of(q).oldest_age_ns, 20000000);
	ck_assert_int_eq(mq_recv(off, buf, sizeof(buf), 0), 1); /* stamped, but not measured */
	find_empty(off);
	ck_assert_uint_eq(tiq_of(q).count, 0);
	mq_detach(off);
	destroy(q);
}
END_TEST

/* Pending measurements reach the segment after 32 takes, once the first is
 * a millisecond old, and at mq_detach. */
START_TEST(test_flush_points)
{
	mq_t *q = create_geo(_i, 64);
	mq_t *c = attach_ok();
	char buf[8];
	for (int i = 0; i < 40; i++) {
		usleep(5); /* a producer slower than a message a microsecond: every one stamped */
		ck_assert_int_eq(mq_send(q, "m", 1, 0), 0);
	}
	for (int i = 0; i < 31; i++)
		ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 1);
	uint64_t before = tiq_of(q).count;
	ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 1); /* the 32nd */
	uint64_t after = tiq_of(q).count;
	ck_assert_msg(after == 32 && before < 32, "count %llu before the 32nd take, %llu after",
	              (unsigned long long)before, (unsigned long long)after);
	ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 1); /* pending */
	sleep_ms(3);
	ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 1); /* the first pending is old */
	ck_assert_uint_eq(tiq_of(q).count, 34);
	ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 1); /* pending again */
	ck_assert_uint_eq(tiq_of(q).count, 34);
	ck_assert_int_eq(mq_detach(c), 0);
	ck_assert_uint_eq(tiq_of(q).count, 35);
	destroy(q);
}
END_TEST

/* Sampling: a producer faster than ~1 M messages a second has 1 in up to 16
 * of its messages measured; one slower than a message a microsecond has
 * every one. The oldest age stays close to the truth either way. */
START_TEST(test_sampling)
{
	mq_t *q = create_geo(0, 4096);
	char buf[8];
	/* once through, so that no page fault slows the timed sends */
	for (int i = 0; i < 4000; i++)
		ck_assert_int_eq(mq_send(q, "w", 1, 0), 0);
	for (int i = 0; i < 4000; i++)
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	find_empty(q);
	uint64_t warm = tiq_of(q).count;
	double t0 = now_ms();
	for (int i = 0; i < 4000; i++)
		ck_assert_int_eq(mq_send(q, "f", 1, 0), 0);
	double took = now_ms() - t0;
	uint64_t age = stats_of(q).oldest_age_ns;
	ck_assert_msg(age > 0, "no age for 4000 fast messages");
	for (int i = 0; i < 4000; i++)
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	find_empty(q);
	uint64_t fast = tiq_of(q).count - warm;
	ck_assert_msg(fast >= 4000 / 16, "%llu of 4000 messages measured (want at least 1 in 16)",
	              (unsigned long long)fast);
	/* Sampled only if the sends were fast: under a sanitizer or a loaded
	 * machine they may not be (then every one is measured, as it should). */
	if (took < 4000 * 0.0002)
		ck_assert_msg(fast < 4000,
		              "4000 sends in %.2f ms (%.0f ns each): all measured, want a sample",
		              took, took * 1e6 / 4000);
	for (int i = 0; i < 20; i++) {
		sleep_ms(1);
		ck_assert_int_eq(mq_send(q, "s", 1, 0), 0);
	}
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	find_empty(q);
	uint64_t slow = tiq_of(q).count - fast;
	/* the first few may still be sampled while the period falls back */
	ck_assert_msg(slow >= 16, "a slow producer: %llu of 20 messages measured",
	              (unsigned long long)slow);
	destroy(q);
}
END_TEST

START_TEST(test_bad_arguments)
{
	struct mq_time_in_queue h;
	errno = 0;
	ck_assert_int_eq(mq_time_in_queue(NULL, &h), -1);
	ck_assert_int_eq(errno, EINVAL);
	mq_t *q = create_geo(0, 4);
	errno = 0;
	ck_assert_int_eq(mq_time_in_queue(q, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_ptr_nonnull(strstr(mq_errdetail(), "output is NULL"));
	errno = 0;
	ck_assert_int_eq(mq_list(NULL, 3), -1);
	ck_assert_int_eq(errno, EINVAL);
	destroy(q);
}
END_TEST

/* mq_list: our queues with their layout version, size and mode; a file of
 * another kind in /dev/shm is not listed; sorted by name. */
START_TEST(test_list)
{
	char a[80], b[80], junk[80];
	snprintf(a, sizeof(a), "%s-b", qname);
	snprintf(b, sizeof(b), "%s-a", qname);
	snprintf(junk, sizeof(junk), "/dev/shm%s-junk", qname);
	/* removed at exit whatever happens (the registry unlinks names) */
	registry_add(a);
	registry_add(b);
	registry_add(junk + strlen("/dev/shm"));
	mq_t *qa = mq_create(a, 4, 64, 0640);
	mq_t *qb = mq_create(b, 8, 64, 0600);
	ck_assert_ptr_nonnull(qa);
	ck_assert_ptr_nonnull(qb);
	FILE *f = fopen(junk, "w");
	ck_assert_ptr_nonnull(f);
	fputs("not a queue at all, just some bytes", f);
	fclose(f);
	int n = mq_list(NULL, 0);
	ck_assert_int_ge(n, 2);
	struct mq_listed *l = calloc((size_t)n + 16, sizeof(*l));
	int m = mq_list(l, (size_t)n + 16);
	ck_assert_int_ge(m, 2);
	int ia = -1, ib = -1;
	for (int i = 0; i < m && i < n + 16; i++) {
		if (i > 0)
			ck_assert_msg(strcmp(l[i - 1].name, l[i].name) < 0, "not sorted: %s, %s",
			              l[i - 1].name, l[i].name);
		ck_assert_msg(strstr(l[i].name, "-junk") == NULL ||
		                      strncmp(l[i].name, qname, strlen(qname)),
		              "a file that is not a queue was listed: %s", l[i].name);
		if (!strcmp(l[i].name, a))
			ia = i;
		if (!strcmp(l[i].name, b))
			ib = i;
	}
	ck_assert_int_ge(ia, 0);
	ck_assert_int_ge(ib, 0);
	ck_assert_int_lt(ib, ia); /* "-a" before "-b" */
	ck_assert_uint_eq(l[ia].version, MQ_LAYOUT_CURRENT);
	ck_assert_uint_eq(l[ia].mode, 0640);
	ck_assert_uint_eq(l[ib].mode, 0600);
	ck_assert_uint_eq(l[ia].uid, geteuid());
	struct stat st;
	ck_assert_int_eq(stat(junk, &st), 0);
	ck_assert_int_eq(unlink(junk), 0);
	char path[96];
	snprintf(path, sizeof(path), "/dev/shm%s", a);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq(l[ia].size, (uint64_t)st.st_size);
	free(l);
	mq_detach(qa);
	mq_detach(qb);
	mq_remove(a);
	mq_remove(b);
}
END_TEST

/* The status library: a window is the difference of two samples, and its
 * percentiles fall in the right buckets. */
START_TEST(test_window_and_percentiles)
{
	struct tiq_history r;
	memset(&r, 0, sizeof(r));
	struct mq_time_in_queue h, w;
	memset(&h, 0, sizeof(h));
	/* before: 1000 messages of ~1 ms (bucket of 1 ms) */
	unsigned ms1 = bucket_of(1000000);
	h.bucket[ms1] = 1000;
	h.count = 1000;
	h.sum_ns = 1000 * 1000000ull;
	h.max_ns = 1100000;
	tiq_history_add(&r, 100.0, &h);
	ck_assert(tiq_history_window(&r, 60, &w) == 0); /* one sample: no window yet */
	ck_assert_uint_eq(w.count, 0);
	/* then 90 of ~10 ms and 10 of ~100 ms */
	unsigned ms10 = bucket_of(10000000), ms100 = bucket_of(100000000);
	h.bucket[ms10] += 90;
	h.bucket[ms100] += 10;
	h.count += 100;
	h.max_ns = 110000000;
	tiq_history_add(&r, 101.0, &h);
	double span = tiq_history_window(&r, 60, &w);
	ck_assert(span > 0.99 && span < 1.01);
	ck_assert_uint_eq(w.count, 100);
	ck_assert_uint_eq(w.bucket[ms1], 0);
	struct tiq_summary s;
	tiq_summarize(&w, &s);
	ck_assert_uint_eq(s.count, 100);
	ck_assert_msg(s.p50 >= 0.008 && s.p50 <= 0.0125, "p50 %g", s.p50);
	ck_assert_msg(s.p90 >= 0.008 && s.p90 <= 0.0125, "p90 %g", s.p90);
	ck_assert_msg(s.p99 >= 0.08 && s.p99 <= 0.11, "p99 %g", s.p99);
	ck_assert_msg(s.max >= 0.1 && s.max <= 0.11, "max %g", s.max);
	/* an empty window: zeros (rendered as null) */
	tiq_history_add(&r, 162.0, &h);
	tiq_history_add(&r, 163.0, &h);
	tiq_history_window(&r, 60, &w);
	tiq_summarize(&w, &s);
	ck_assert_uint_eq(s.count, 0);
	/* a histogram that shrank (a queue made again): the newest alone */
	struct mq_time_in_queue small;
	memset(&small, 0, sizeof(small));
	small.bucket[ms1] = 3;
	small.count = 3;
	tiq_diff(&small, &h, &w);
	ck_assert_uint_eq(w.count, 3);
	ck_assert_uint_eq(w.bucket[ms1], 3);
}
END_TEST

static Suite *tiq_suite(void)
{
	Suite *s = suite_create("tiq");
	TCase *tc = new_tcase(s, "tiq");
	tcase_add_test(tc, test_bucket_bounds);
	tcase_add_loop_test(tc, test_measured_wait, 0, 2);
	tcase_add_loop_test(tc, test_oldest_age, 0, 2);
	tcase_add_loop_test(tc, test_lease_measured_once, 0, 2);
	tcase_add_loop_test(tc, test_batch_and_zero_copy, 0, 2);
	tcase_add_loop_test(tc, test_switched_off, 0, 2);
	tcase_add_loop_test(tc, test_flush_points, 0, 2);
	tcase_add_test(tc, test_sampling);
	tcase_add_test(tc, test_bad_arguments);
	tcase_add_test(tc, test_list);
	tcase_add_test(tc, test_window_and_percentiles);
	return s;
}

int main(void)
{
	return run_suite(tiq_suite());
}
