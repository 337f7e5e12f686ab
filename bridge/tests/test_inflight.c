/* test_inflight.c - the export window's lease table (bridge/inflight.c): put, take, full, and
 * deletion inside probe runs checked against a model (each lease keeping its stamp). */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "inflight.h"

static mq_lease_t lease(uint64_t id)
{
	mq_lease_t l;
	memset(&l, 0, sizeof(l));
	l.id = id;
	l.deliveries = 1;
	l.slot = (uint32_t)(id * 7);
	return l;
}

START_TEST(test_put_take)
{
	struct inflight_table t;
	ck_assert_int_eq(inflight_init(&t, 4), 0);
	ck_assert_uint_ge(t.size, 8);
	for (uint64_t id = 1; id <= 4; id++) {
		mq_lease_t l = lease(id);
		ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10), 0);
	}
	mq_lease_t l = lease(5), out;
	ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10),
	                 -1); /* the window is full */
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_int_eq(inflight_take(&t, 9, &out, NULL), -1);
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(inflight_take(&t, 3, &out, NULL), 0);
	ck_assert_uint_eq(out.id, 3);
	ck_assert_uint_eq(out.slot, 21);
	ck_assert_int_eq(inflight_take(&t, 3, &out, NULL), -1);              /* settled once */
	ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10), 0); /* room again */
	l = lease(2);
	ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10), -1);
	ck_assert_int_eq(errno, ENOSPC);
	ck_assert_uint_eq(t.count, 4);
	inflight_free(&t);
}
END_TEST

START_TEST(test_refuses_duplicates_and_unleased)
{
	struct inflight_table t;
	ck_assert_int_eq(inflight_init(&t, 8), 0);
	mq_lease_t l = lease(42);
	ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10), 0);
	ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10), -1);
	ck_assert_int_eq(errno, EEXIST);
	l.deliveries = 0;
	l.id = 43;
	ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10), -1);
	ck_assert_int_eq(errno, EINVAL);
	ck_assert_int_eq(inflight_init(&(struct inflight_table){0}, 0), -1);
	inflight_free(&t);
}
END_TEST

/* Keyed by addresses (as export.c keys by the natsMsg): a lease is found by
 * its key, not by its id; the scan by lease id finds its key. */
START_TEST(test_keys_are_not_ids)
{
	struct inflight_table t;
	ck_assert_int_eq(inflight_init(&t, 64), 0);
	for (uint64_t i = 0; i < 64; i++) {
		mq_lease_t l = lease(1000 + i);
		/* 16-byte aligned, as malloc's: the low bits carry nothing. */
		ck_assert_int_eq(
		        inflight_put(&t, UINT64_C(0x7f3a00001000) + 16 * i, &l, (int64_t)i), 0);
	}
	mq_lease_t out;
	int64_t stamp;
	ck_assert_int_eq(inflight_take(&t, 1005, &out, NULL), -1); /* an id is not a key */
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(inflight_take(&t, UINT64_C(0x7f3a00001000) + 16 * 7, &out, &stamp), 0);
	ck_assert_uint_eq(out.id, 1007);
	ck_assert_int_eq(stamp, 7);
	uint64_t key;
	ck_assert_int_eq(inflight_find_lease(&t, 1007, &key), -1); /* taken */
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_int_eq(inflight_find_lease(&t, 1063, &key), 0);
	ck_assert_uint_eq(key, UINT64_C(0x7f3a00001000) + 16 * 63);
	for (uint64_t i = 0; i < 64; i++) {
		int rc = inflight_take(&t, UINT64_C(0x7f3a00001000) + 16 * i, &out, &stamp);
		ck_assert_int_eq(rc, i == 7 ? -1 : 0);
		if (rc == 0) {
			ck_assert_uint_eq(out.id, 1000 + i);
			ck_assert_int_eq(stamp, (int64_t)i);
		}
	}
	ck_assert_uint_eq(t.count, 0);
	inflight_free(&t);
}
END_TEST

/* id_of: distinct ids of two shapes: consecutive (odd K) and multiples of 2^20. */
static uint64_t id_of(uint64_t k)
{
	return (k & 1) ? k : k << 20;
}

/* Random puts and takes of ids that collide (all multiples of a power of
 * two, and consecutive runs) against a plain array: every held id is found,
 * no taken one is. Deletion inside probe runs is where such tables break. */
START_TEST(test_model)
{
	enum { WINDOW = 256, IDS = 4096, ROUNDS = 200000 };
	struct inflight_table t;
	ck_assert_int_eq(inflight_init(&t, WINDOW), 0);
	static unsigned char held[IDS];
	memset(held, 0, sizeof(held));
	unsigned n = 0;
	srand(12345);
	for (int r = 0; r < ROUNDS; r++) {
		uint64_t k = (uint64_t)(rand() % IDS), id = id_of(k);
		mq_lease_t out;
		if (held[k]) {
			int64_t stamp = -1;
			ck_assert_int_eq(inflight_take(&t, id, &out, &stamp), 0);
			ck_assert_uint_eq(out.id, id);
			ck_assert_int_eq(stamp, (int64_t)id * 10); /* moved with its lease */
			held[k] = 0;
			n--;
		} else if (n < WINDOW) {
			mq_lease_t l = lease(id);
			ck_assert_int_eq(inflight_put(&t, l.id, &l, (int64_t)l.id * 10), 0);
			held[k] = 1;
			n++;
		} else {
			ck_assert_int_eq(inflight_take(&t, id, &out, NULL), -1);
		}
		ck_assert_uint_eq(t.count, n);
	}
	for (uint64_t k = 0; k < IDS; k++) {
		mq_lease_t out;
		ck_assert_int_eq(inflight_take(&t, id_of(k), &out, NULL), held[k] ? 0 : -1);
	}
	ck_assert_uint_eq(t.count, 0);
	inflight_free(&t);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("inflight");
	TCase *tc = tcase_create("table");
	tcase_add_test(tc, test_put_take);
	tcase_add_test(tc, test_refuses_duplicates_and_unleased);
	tcase_add_test(tc, test_keys_are_not_ids);
	tcase_add_test(tc, test_model);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
