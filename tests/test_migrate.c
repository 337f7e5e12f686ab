/* test_migrate.c - mqbroker moves the messages of a layout 1 queue (libmq 0.1) into a current
 * (layout 3) one (broker/migrate.c). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "libmq.h"
#include "migrate.h"

/* Layout 1 as libmq 0.1 wrote it: header 17408 bytes; capacity at 16,
 * max_msg 24, slot size 32, slots offset 40, total 48, tail 256, head 512;
 * slots of {u64 seq, u64 len, payload} rounded to 64 bytes. */
#define V1_HEADER 17408u

static char qname[64], qpath[96];

static void setup(void)
{
	snprintf(qname, sizeof(qname), "/mqtest-migrate-%d-%d", (int)getpid(), rand() % 100000);
	snprintf(qpath, sizeof(qpath), "/dev/shm%s", qname);
}

static void teardown(void)
{
	unlink(qpath);
}

static void put64(unsigned char *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, 8);
}

/* v1_write: a layout 1 queue of CAP x MAX holding the messages MSGS[0..N-1]
 * at positions START.. (head START, tail START + N). Returns its size. */
static size_t v1_write(uint64_t cap, uint64_t max, const char *const *msgs, const size_t *lens,
                       unsigned n, uint64_t start)
{
	uint64_t slot = (16 + max + 63) & ~(uint64_t)63;
	size_t size = V1_HEADER + cap * slot;
	unsigned char *img = calloc(1, size);
	ck_assert_ptr_nonnull(img);
	put64(img, 0, UINT64_C(0x314745534d51424c));
	uint32_t version = 1, hsize = V1_HEADER;
	memcpy(img + 8, &version, 4);
	memcpy(img + 12, &hsize, 4);
	put64(img, 16, cap);
	put64(img, 24, max);
	put64(img, 32, slot);
	put64(img, 40, V1_HEADER);
	put64(img, 48, size);
	put64(img, 256, start + n); /* tail */
	put64(img, 512, start);     /* head */
	for (uint64_t p = start; p < start + n; p++) {
		unsigned char *s = img + V1_HEADER + (p % cap) * slot;
		put64(s, 0, p + 1);
		put64(s, 8, lens[p - start]);
		memcpy(s + 16, msgs[p - start], lens[p - start]);
	}
	int fd = open(qpath, O_RDWR | O_CREAT | O_EXCL, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, img, size), (ssize_t)size);
	close(fd);
	free(img);
	return size;
}

START_TEST(test_messages_moved_in_order)
{
	static char big[200];
	memset(big, 'z', sizeof(big));
	const char *msgs[] = {"first", "", big, "last"};
	const size_t lens[] = {5, 0, sizeof(big), 4};
	/* positions past one lap of the ring: the slots wrap */
	v1_write(4, 200, msgs, lens, 4, 10);
	ck_assert_int_eq(migrate_is_v1(qname), 1);
	char err[512];
	ck_assert_int_eq(migrate_v1(qname, 0600, err, sizeof(err)), 4);
	ck_assert_int_eq(migrate_is_v1(qname), 0);
	mq_t *q = mq_attach(qname);
	ck_assert_msg(q != NULL, "%s", mq_errdetail());
	struct mq_stats st;
	ck_assert_int_eq(mq_stats(q, &st), 0);
	ck_assert_uint_eq(st.capacity, 4);
	ck_assert_uint_eq(st.max_msg_size, 200);
	char buf[256];
	for (int i = 0; i < 4; i++) {
		ssize_t n = mq_recv(q, buf, sizeof(buf), 0);
		ck_assert_int_eq(n, (ssize_t)lens[i]);
		ck_assert(memcmp(buf, msgs[i], lens[i]) == 0);
	}
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	mq_detach(q);
}
END_TEST

START_TEST(test_empty_queue_moved)
{
	v1_write(8, 64, NULL, NULL, 0, 0);
	char err[512];
	ck_assert_int_eq(migrate_v1(qname, 0600, err, sizeof(err)), 0);
	mq_t *q = mq_attach(qname);
	ck_assert_ptr_nonnull(q);
	mq_detach(q);
}
END_TEST

/* A queue that does not check out is refused and left as it was. */
START_TEST(test_bad_queue_refused)
{
	const char *msgs[] = {"a", "b"};
	const size_t lens[] = {1, 1};
	size_t size = v1_write(4, 64, msgs, lens, 2, 0);
	/* the second slot's seq scribbled */
	int fd = open(qpath, O_RDWR);
	uint64_t bad = 77;
	ck_assert_int_eq(pwrite(fd, &bad, 8, V1_HEADER + 1 * 128), 8);
	close(fd);
	char err[512];
	ck_assert_int_eq(migrate_v1(qname, 0600, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "position 1 does not check out"), "%s", err);
	ck_assert_int_eq(migrate_is_v1(qname), 1);
	struct stat st;
	ck_assert_int_eq(stat(qpath, &st), 0);
	ck_assert_uint_eq((size_t)st.st_size, size);
	/* a size that does not fit its geometry */
	ck_assert_int_eq(truncate(qpath, (off_t)size - 64), 0);
	ck_assert_int_eq(migrate_v1(qname, 0600, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "does not check out"), "%s", err);
}
END_TEST

/* A libmq 1 client still attached (its liveness lock held): refused. */
START_TEST(test_refused_while_in_use)
{
	const char *msgs[] = {"kept"};
	const size_t lens[] = {4};
	v1_write(4, 64, msgs, lens, 1, 0);
	int ready[2];
	ck_assert_int_eq(pipe(ready), 0);
	pid_t pid = fork();
	if (pid == 0) {
		int fd = open(qpath, O_RDWR);
		struct flock fl = {.l_type = F_WRLCK,
		                   .l_whence = SEEK_SET,
		                   .l_start = (INT64_C(1) << 40) + 3,
		                   .l_len = 1};
		if (fd < 0 || fcntl(fd, F_OFD_SETLK, &fl) != 0)
			_exit(1);
		(void)!write(ready[1], "x", 1);
		pause();
		_exit(0);
	}
	char c;
	ck_assert_int_eq(read(ready[0], &c, 1), 1);
	char err[512];
	ck_assert_int_eq(migrate_v1(qname, 0600, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, "still in use by 1 libmq 1 process"), "%s", err);
	ck_assert_int_eq(errno, EBUSY);
	ck_assert_int_eq(migrate_is_v1(qname), 1);
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	ck_assert_int_eq(migrate_v1(qname, 0600, err, sizeof(err)), 1);
	close(ready[0]);
	close(ready[1]);
}
END_TEST

int main(void)
{
	srand((unsigned)getpid());
	Suite *s = suite_create("migrate");
	TCase *tc = tcase_create("v1");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_messages_moved_in_order);
	tcase_add_test(tc, test_empty_queue_moved);
	tcase_add_test(tc, test_bad_queue_refused);
	tcase_add_test(tc, test_refused_while_in_use);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
