/* test_hist.c - the latency histogram (bridge/hist.c): bucket bounds, quantile estimates within
 * their stated error, the Prometheus buckets, recording from several threads. */
#include <check.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "hist.h"

/* Every value falls in the bucket whose bounds hold it; bounds rise. */
START_TEST(test_buckets)
{
	ck_assert_uint_eq(hist_bucket(0), 0);
	ck_assert_uint_eq(hist_bucket(4), 4);
	ck_assert_uint_eq(hist_upper_us(4), 4);
	ck_assert_uint_eq(hist_upper_us(5), 5); /* (4, 5] */
	ck_assert_uint_eq(hist_upper_us(8), 8); /* (7, 8] */
	ck_assert_uint_eq(hist_upper_us(HIST_BUCKETS - 1), (uint64_t)1 << 38);
	for (unsigned i = 1; i < HIST_BUCKETS; i++)
		ck_assert_uint_gt(hist_upper_us(i), hist_upper_us(i - 1));
	for (uint64_t v = 0; v < 100000; v += 1 + v / 50) {
		unsigned b = hist_bucket(v);
		ck_assert_uint_le(v, hist_upper_us(b));
		if (b > 0)
			ck_assert_uint_gt(v, hist_upper_us(b - 1));
	}
	/* Every power of two ends a bucket (the Prometheus le bounds). */
	for (unsigned k = 0; k <= 38; k++) {
		uint64_t p = (uint64_t)1 << k;
		ck_assert_uint_eq(hist_upper_us(hist_bucket(p)), p);
	}
	/* Beyond the last bound: counted in the last bucket. */
	ck_assert_uint_eq(hist_bucket((uint64_t)1 << 50), HIST_BUCKETS - 1);
	ck_assert_uint_eq(hist_bucket(UINT64_MAX), HIST_BUCKETS - 1);
}
END_TEST

static double rel_err(double got, double want)
{
	return fabs(got - want) / want;
}

/* 1..10000 µs once each: p50 ~ 5000, p99 ~ 9900, within a bucket's width. */
START_TEST(test_quantiles_uniform)
{
	static struct hist h;
	struct hist_snap s;
	memset(&h, 0, sizeof(h));
	hist_snapshot(&h, &s);
	ck_assert(hist_quantile(&s, 0.5) < 0); /* empty */
	for (uint64_t v = 1; v <= 10000; v++)
		hist_record(&h, v);
	hist_snapshot(&h, &s);
	ck_assert_uint_eq(s.count, 10000);
	ck_assert_uint_eq(s.sum_us, 10000 * 10001 / 2);
	ck_assert_msg(rel_err(hist_quantile(&s, 0.5), 5000) < 0.05, "p50 %f",
	              hist_quantile(&s, 0.5));
	ck_assert_msg(rel_err(hist_quantile(&s, 0.99), 9900) < 0.05, "p99 %f",
	              hist_quantile(&s, 0.99));
	ck_assert(hist_quantile(&s, 1.0) <= 10240);
}
END_TEST

/* A constant: every quantile within a quarter of it; a 1% tail moves p99, not p50. */
START_TEST(test_quantiles_skewed)
{
	static struct hist h;
	struct hist_snap s;
	memset(&h, 0, sizeof(h));
	for (int i = 0; i < 990; i++)
		hist_record(&h, 1500);
	hist_snapshot(&h, &s);
	ck_assert_msg(rel_err(hist_quantile(&s, 0.5), 1500) <= 0.25, "p50 %f",
	              hist_quantile(&s, 0.5));
	ck_assert_msg(rel_err(hist_quantile(&s, 0.99), 1500) <= 0.25, "p99 %f",
	              hist_quantile(&s, 0.99));
	for (int i = 0; i < 20; i++)
		hist_record(&h, 200000);
	hist_snapshot(&h, &s);
	ck_assert_msg(rel_err(hist_quantile(&s, 0.5), 1500) <= 0.25, "p50 %f",
	              hist_quantile(&s, 0.5));
	ck_assert_msg(rel_err(hist_quantile(&s, 0.99), 200000) <= 0.25, "p99 %f",
	              hist_quantile(&s, 0.99));
	/* Tiny values are exact. */
	memset(&h, 0, sizeof(h));
	hist_record(&h, 3);
	hist_snapshot(&h, &s);
	ck_assert(hist_quantile(&s, 0.5) == 3.0);
	ck_assert(hist_quantile(&s, 0.99) == 3.0);
}
END_TEST

/* hist_count_le at powers of two is exact and cumulative. */
START_TEST(test_count_le)
{
	static struct hist h;
	struct hist_snap s;
	memset(&h, 0, sizeof(h));
	uint64_t vals[] = {0, 1, 2, 100, 128, 129, 1000, 4096, 5000, 1u << 20};
	for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
		hist_record(&h, vals[i]);
	hist_snapshot(&h, &s);
	for (unsigned k = 0; k <= 38; k++) {
		uint64_t le = (uint64_t)1 << k, want = 0;
		for (size_t i = 0; i < sizeof(vals) / sizeof(vals[0]); i++)
			want += vals[i] <= le;
		ck_assert_uint_eq(hist_count_le(&s, le), want);
	}
}
END_TEST

static struct hist shared;

static void *recorder(void *arg)
{
	(void)arg;
	for (uint64_t v = 0; v < 100000; v++)
		hist_record(&shared, v % 1000);
	return NULL;
}

/* Four threads record at once: nothing is lost. */
START_TEST(test_threads)
{
	pthread_t t[4];
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, recorder, NULL), 0);
	for (int i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	struct hist_snap s;
	hist_snapshot(&shared, &s);
	ck_assert_uint_eq(s.count, 400000);
	ck_assert_uint_eq(s.sum_us, 4ull * 100 * (999 * 1000 / 2));
}
END_TEST

int main(void)
{
	Suite *s = suite_create("hist");
	TCase *tc = tcase_create("hist");
	tcase_add_test(tc, test_buckets);
	tcase_add_test(tc, test_quantiles_uniform);
	tcase_add_test(tc, test_quantiles_skewed);
	tcase_add_test(tc, test_count_le);
	tcase_add_test(tc, test_threads);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
