/* test_segment.c - unit tests: queue lifecycle, bad input, corrupt segments (layout 2), stats,
 * clients. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
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
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "handle.h"
#include "libmq.h"
#include "libmq_admin.h"
#include "segment.h"
#include "testcheck.h"

static char qname[64];
static char qpath[128];

static void setup_name(void)
{
	new_name(qname, "seg");
	test_shm_path(qpath, qname);
}

static void teardown_name(void)
{
	shm_unlink(qname);
}

static int64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static mq_t *create_queue(const char *name, size_t capacity, size_t max_msg)
{
	mq_t *q = mq_create(name, capacity, max_msg, 0600);
	ck_assert_msg(q != NULL, "mq_create(%s, %zu, %zu): %s (%s)", name, capacity, max_msg,
	              strerror(errno), mq_errdetail());
	return q;
}

static mq_t *attach_ok(const char *name)
{
	mq_t *q = mq_attach(name);
	ck_assert_msg(q != NULL, "mq_attach(%s): %s (%s)", name, strerror(errno), mq_errdetail());
	return q;
}

static struct mq_stats get_stats(mq_t *q)
{
	struct mq_stats s;
	memset(&s, 0xa5, sizeof(s));
	ck_assert_int_eq(mq_stats(q, &s), 0);
	return s;
}

/* geometry: the layout mq_create gives CAPACITY x MAX_MSG. */
static struct mq_geometry geometry(uint64_t capacity, uint64_t max_msg)
{
	struct mq_geometry g;
	ck_assert_int_eq(segment_geometry(capacity, max_msg, &g), 0);
	return g;
}

/* detail_has: mq_errdetail()-like string D contains WANT. */
#define ck_assert_detail_has(d, want)                                                              \
	ck_assert_msg(strstr((d), (want)) != NULL, "detail \"%s\" does not say \"%s\"", (d), (want))

/* ---------------------------------------------------------------- lifecycle */

START_TEST(test_create_attach_detach_remove)
{
	struct stat st;
	char buf[64];

	mq_t *q = create_queue(qname, 8, 64);
	ck_assert_int_eq(stat(qpath, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_eq(st.st_size, (off_t)geometry(8, 64).total_size);
	ck_assert_int_ge(st.st_size, (off_t)(sizeof(struct mq_shm) + 8 * (64 + 64)));

	mq_t *q2 = attach_ok(qname);
	ck_assert_ptr_ne(q, q2);

	/* Both handles see the same queue. */
	ck_assert_int_eq(mq_send(q, "hello", 5, 0), 0);
	ck_assert_int_eq(mq_recv(q2, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "hello", 5);

	ck_assert_int_eq(mq_detach(q2), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(stat(qpath, &st), 0); /* detach never removes */

	ck_assert_int_eq(mq_remove(qname), 0);
	errno = 0;
	ck_assert_int_eq(stat(qpath, &st), -1);
	ck_assert_int_eq(errno, ENOENT);

	errno = 0;
	ck_assert_ptr_null(mq_attach(qname));
	ck_assert_int_eq(errno, ENOENT);
	errno = 0;
	ck_assert_int_eq(mq_remove(qname), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_create_mode_exact_umask_ignored)
{
	static const mode_t modes[] = {0640, 0660, 0600, 0604, 0620, 0400};
	mode_t old = umask(0077);
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		struct stat st;
		mq_t *q = mq_create(qname, 2, 16, modes[i]);
		ck_assert_msg(q != NULL, "mq_create mode %o: %s", (unsigned)modes[i],
		              strerror(errno));
		ck_assert_int_eq(stat(qpath, &st), 0);
		ck_assert_msg((st.st_mode & 07777) == modes[i], "mode %o: file has %o",
		              (unsigned)modes[i], (unsigned)(st.st_mode & 07777));
		ck_assert_int_eq(mq_detach(q), 0);
		ck_assert_int_eq(mq_remove(qname), 0);
		ck_assert_int_eq(access(qpath, F_OK), -1);
	}
	umask(old);
}
END_TEST

START_TEST(test_remove_keeps_attached_mapping)
{
	char buf[16];
	mq_t *q = create_queue(qname, 4, 16);
	ck_assert_int_eq(mq_send(q, "before", 6, 0), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
	ck_assert_int_eq(access(qpath, F_OK), -1);

	/* The removed queue still works for the process attached to it... */
	ck_assert_int_eq(mq_send(q, "after", 5, 0), 0);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 6);
	ck_assert_mem_eq(buf, "before", 6);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "after", 5);

	/* ...and a new queue of the same name is a different one. */
	mq_t *q2 = create_queue(qname, 4, 16);
	ck_assert_int_eq(mq_send(q, "old", 3, 0), 0);
	errno = 0;
	ck_assert_int_eq(mq_recv(q2, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_int_eq(mq_detach(q2), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_messages_survive_detach)
{
	char buf[16];
	mq_t *q = create_queue(qname, 4, 16);
	ck_assert_int_eq(mq_send(q, "one", 3, 0), 0);
	ck_assert_int_eq(mq_send(q, "two", 3, 0), 0);
	ck_assert_int_eq(mq_detach(q), 0);

	q = attach_ok(qname);
	ck_assert_uint_eq(get_stats(q).depth, 2);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "one", 3);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "two", 3);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* A lease held at detach is given back: the next attacher gets it again. */
START_TEST(test_lease_given_back_at_detach)
{
	char buf[16];
	mq_lease_t lease;
	mq_t *q = create_queue(qname, 4, 16);
	ck_assert_int_eq(mq_send(q, "held", 4, 0), 0);
	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &lease), 4);
	ck_assert_uint_eq(lease.deliveries, 1);
	ck_assert_uint_eq(get_stats(q).depth, 0);
	ck_assert_int_eq(mq_detach(q), 0);

	q = attach_ok(qname);
	struct mq_stats s = get_stats(q);
	ck_assert_uint_eq(s.depth, 1);
	ck_assert_uint_eq(s.in_flight, 0);
	mq_lease_t again;
	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &again), 4);
	ck_assert_mem_eq(buf, "held", 4);
	ck_assert_uint_eq(again.id, lease.id);
	ck_assert_uint_eq(again.deliveries, 2);
	ck_assert_int_eq(mq_ack(q, &again), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* The real default queue is never created or removed here: only looked at. */
START_TEST(test_attach_null_means_default_name)
{
	char path[128];
	test_shm_path(path, MQ_DEFAULT_NAME);
	int existed = access(path, F_OK) == 0;

	errno = 0;
	mq_t *q = mq_attach(NULL);
	int err = errno;
	if (q != NULL) {
		ck_assert_msg(existed || access(path, F_OK) == 0,
		              "mq_attach(NULL) succeeded but %s does not exist", path);
		ck_assert_int_eq(mq_detach(q), 0);
	} else if (!existed) {
		ck_assert_msg(err == ENOENT, "mq_attach(NULL) without %s: errno %d (%s)", path, err,
		              strerror(err));
		ck_assert_detail_has(mq_errdetail(), "messagequeue");
	} else {
		/* Someone else's default queue: it may be refused, but never as missing. */
		ck_assert_msg(err != ENOENT && err != EINVAL, "mq_attach(NULL): errno %d (%s)", err,
		              strerror(err));
	}
}
END_TEST

START_TEST(test_second_create_is_eexist)
{
	char buf[16];
	mq_t *q = create_queue(qname, 4, 16);
	ck_assert_int_eq(mq_send(q, "keep", 4, 0), 0);

	errno = 0;
	ck_assert_ptr_null(mq_create(qname, 4, 16, 0600));
	ck_assert_int_eq(errno, EEXIST);
	errno = 0;
	ck_assert_ptr_null(mq_create(qname, 100, 1000, 0660)); /* other geometry: same answer */
	ck_assert_int_eq(errno, EEXIST);
	errno = 0;
	ck_assert_ptr_null(mq_create_observed(qname, 4, 16, 0600));
	ck_assert_int_eq(errno, EEXIST);

	/* The existing queue is untouched. */
	struct mq_stats s = get_stats(q);
	ck_assert_uint_eq(s.capacity, 4);
	ck_assert_uint_eq(s.max_msg_size, 16);
	ck_assert_uint_eq(s.depth, 1);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 4);
	ck_assert_mem_eq(buf, "keep", 4);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_create_over_foreign_file_is_eexist)
{
	int fd = open(qpath, O_CREAT | O_EXCL | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(write(fd, "not a queue", 11), 11);
	close(fd);

	errno = 0;
	ck_assert_ptr_null(mq_create(qname, 4, 16, 0600));
	ck_assert_int_eq(errno, EEXIST);

	struct stat st;
	ck_assert_int_eq(stat(qpath, &st), 0);
	ck_assert_int_eq(st.st_size, 11); /* not truncated or reinitialised */
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/* A creator killed halfway through mq_create (here by SIGXFSZ while it
 * allocates the queue's memory, as a SIGKILL could at any point) leaves no
 * file behind: a half-made one would be refused as corrupt by every attach
 * and broker start until someone recreated it. */
START_TEST(test_create_killed_midway_leaves_nothing)
{
	pid_t pid = fork_child();
	if (pid == 0) {
		struct rlimit lim = {64 * 1024, 64 * 1024};
		if (setrlimit(RLIMIT_FSIZE, &lim) != 0)
			_exit(2);
		signal(SIGXFSZ, SIG_DFL);
		mq_create(qname, 1024, 4096, 0600); /* 4 MiB: killed in posix_fallocate */
		_exit(3);
	}
	ck_assert_int_eq(wait_child(pid), 1000 + SIGXFSZ);
	struct stat st;
	errno = 0;
	ck_assert_msg(stat(qpath, &st) != 0 && errno == ENOENT,
	              "the killed creator left %s behind (%lld bytes)", qpath,
	              (long long)st.st_size);
	mq_t *q = mq_create(qname, 4, 16, 0600);
	ck_assert_ptr_nonnull(q);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_missing_queue_is_enoent)
{
	errno = 0;
	ck_assert_ptr_null(mq_attach(qname));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_detail_has(mq_errdetail(), qname + 1);
	ck_assert_detail_has(mq_errdetail(), "is mqbroker running?");

	errno = 0;
	ck_assert_ptr_null(mq_observe(qname));
	ck_assert_int_eq(errno, ENOENT);

	errno = 0;
	ck_assert_int_eq(mq_remove(qname), -1);
	ck_assert_int_eq(errno, ENOENT);
}
END_TEST

START_TEST(test_longest_name_is_valid)
{
	char name[300], path[320];
	struct stat st;

	/* "/" + exactly 250 characters */
	test_queue_name(name, "long");
	size_t n = strlen(name);
	memset(name + n, 'x', MQ_NAME_MAX - n);
	name[MQ_NAME_MAX] = '\0';
	ck_assert_uint_eq(strlen(name), 251);
	registry_add(name);
	snprintf(path, sizeof(path), "/dev/shm%s", name);

	mq_t *q = mq_create(name, 2, 8, 0600);
	ck_assert_msg(q != NULL, "mq_create with a 250-char name: %s (%s)", strerror(errno),
	              mq_errdetail());
	ck_assert_int_eq(stat(path, &st), 0);
	mq_t *q2 = attach_ok(name);
	ck_assert_int_eq(mq_detach(q2), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(name), 0);
	ck_assert_int_eq(stat(path, &st), -1);
}
END_TEST

/* Below MQ_LIFO_MIN_MSG the pool is a FIFO ring, from it on a stack: both
 * geometries work the same from the outside. */
START_TEST(test_fifo_and_lifo_geometry)
{
	static const size_t maxes[] = {MQ_LIFO_MIN_MSG - 1, MQ_LIFO_MIN_MSG};
	static char big[MQ_LIFO_MIN_MSG], got[MQ_LIFO_MIN_MSG];
	for (size_t i = 0; i < 2; i++) {
		mq_t *q = create_queue(qname, 3, maxes[i]);
		struct mq_inspection in;
		ck_assert_int_eq(mq_inspect(q, &in), 0);
		ck_assert_uint_eq(in.lifo, i);
		ck_assert_uint_eq(in.version, MQ_LAYOUT_VERSION);
		ck_assert_uint_eq(in.capacity, 3);
		ck_assert_uint_eq(in.max_msg_size, maxes[i]);
		ck_assert_uint_eq(in.ring_size, 4);
		ck_assert_uint_eq(in.chunks_free, 3);
		ck_assert_int_eq(in.sound, 1);
		memset(big, 'a' + (int)i, sizeof(big));
		for (int k = 0; k < 3; k++)
			ck_assert_int_eq(mq_send(q, big, maxes[i] - (size_t)k, 0), 0);
		errno = 0;
		ck_assert_int_eq(mq_send(q, big, 1, 0), -1);
		ck_assert_int_eq(errno, EAGAIN);
		for (int k = 0; k < 3; k++) {
			ck_assert_int_eq(mq_recv(q, got, sizeof(got), 0), (ssize_t)(maxes[i] - k));
			ck_assert_int_eq(got[0], 'a' + (int)i);
		}
		ck_assert_int_eq(mq_detach(q), 0);
		ck_assert_int_eq(mq_remove(qname), 0);
	}
}
END_TEST

/* write_file: PATH holds exactly the LEN bytes at DATA. */
static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)len), 0);
	if (len)
		ck_assert_int_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	close(fd);
}

/* read_file: the whole of PATH (malloc'd), its length in *LEN. */
static unsigned char *read_file(const char *path, size_t *len)
{
	struct stat st;
	int fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	unsigned char *buf = malloc((size_t)st.st_size + 1);
	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(pread(fd, buf, (size_t)st.st_size, 0), (ssize_t)st.st_size);
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* A creator publishes the magic last. An attacher that finds a young file
 * whose magic is still zero waits a little for it: here the "creator" (a
 * child) fills in a real queue's bytes 50 ms after the file appeared, magic
 * last, and the attach succeeds with the queue's message. */
START_TEST(test_young_file_published_during_wait)
{
	char src[64];
	new_name(src, "src");
	mq_t *q = create_queue(src, 4, 32);
	ck_assert_int_eq(mq_send(q, "young", 5, 0), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	char srcpath[128];
	size_t len;
	unsigned char *img = read_file(test_shm_path(srcpath, src), &len);
	ck_assert_int_eq(mq_remove(src), 0);

	unsigned char *zero = calloc(1, len);
	ck_assert_ptr_nonnull(zero);
	write_file(qpath, zero, len);
	free(zero);
	pid_t pid = fork_child();
	if (pid == 0) {
		sleep_ms(50);
		int fd = open(qpath, O_RDWR);
		if (fd < 0 || pwrite(fd, img + 8, len - 8, 8) != (ssize_t)(len - 8) ||
		    pwrite(fd, img, 8, 0) != 8)
			_exit(1);
		_exit(0);
	}
	double t0 = now_ms();
	q = mq_attach(qname);
	double waited = now_ms() - t0;
	ck_assert_int_eq(wait_child(pid), 0);
	ck_assert_msg(q != NULL, "mq_attach of a file published during the wait: %s",
	              mq_errdetail());
	ck_assert_msg(waited >= 40, "mq_attach returned after %.0f ms, before the header was there",
	              waited);
	char buf[32];
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "young", 5);
	ck_assert_int_eq(mq_detach(q), 0);
	free(img);
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/* ---------------------------------------------------------------- bad input */

START_TEST(test_bad_names_are_einval)
{
	char too_long[300];
	/* "/" + 251 characters */
	too_long[0] = '/';
	memset(too_long + 1, 'y', 251);
	too_long[252] = '\0';

	const char *bad[] = {"", "/", "noslash", "/a/b", "//a", "/a/", too_long};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		mq_t *q = mq_create(bad[i], 4, 16, 0600);
		int err = errno;
		if (q != NULL) {
			mq_detach(q);
			mq_remove(bad[i]);
		}
		ck_assert_msg(q == NULL && err == EINVAL,
		              "mq_create(\"%.20s\") len %zu: %p errno %d", bad[i], strlen(bad[i]),
		              (void *)q, err);

		errno = 0;
		q = mq_attach(bad[i]);
		err = errno;
		if (q != NULL)
			mq_detach(q);
		ck_assert_msg(q == NULL && err == EINVAL,
		              "mq_attach(\"%.20s\") len %zu: %p errno %d", bad[i], strlen(bad[i]),
		              (void *)q, err);

		errno = 0;
		q = mq_observe(bad[i]);
		err = errno;
		if (q != NULL)
			mq_detach(q);
		ck_assert_msg(q == NULL && err == EINVAL,
		              "mq_observe(\"%.20s\") len %zu: %p errno %d", bad[i], strlen(bad[i]),
		              (void *)q, err);

		errno = 0;
		int r = mq_remove(bad[i]);
		ck_assert_msg(r == -1 && errno == EINVAL,
		              "mq_remove(\"%.20s\") len %zu: %d errno %d", bad[i], strlen(bad[i]),
		              r, errno);
	}

	errno = 0;
	ck_assert_ptr_null(mq_create(NULL, 4, 16, 0600));
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_remove(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_bad_geometry_is_einval)
{
	struct {
		size_t capacity, max_msg;
		mode_t mode;
		const char *says;
	} bad[] = {
	        {0, 16, 0600, "capacity 0"},
	        {(size_t)MQ_CAPACITY_LIMIT + 1, 16, 0600, "capacity"},
	        {SIZE_MAX, 16, 0600, "capacity"},
	        {4, 0, 0600, "maximum message size 0"},
	        {4, (size_t)MQ_MAX_MSG_LIMIT + 1, 0600, "maximum message size"},
	        {4, SIZE_MAX, 0600, "maximum message size"},
	        {4, 16, 01777, "beyond 0777"},
	        {4, 16, 04660, "beyond 0777"},
	        {4, 16, 02660, "beyond 0777"},
	        {4, 16, S_IFREG | 0600, "beyond 0777"},
	        {4, 16, (mode_t)-1, "beyond 0777"},
	        {4, 16, 0666, "world-writable"},
	        {4, 16, 0602, "world-writable"},
	        {4, 16, 0622, "world-writable"},
	        {4, 16, 0777, "world-writable"},
	        {4, 16, 0002, "world-writable"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		for (int observed = 0; observed < 2; observed++) {
			errno = 0;
			mq_t *q = observed ? mq_create_observed(qname, bad[i].capacity,
			                                        bad[i].max_msg, bad[i].mode)
			                   : mq_create(qname, bad[i].capacity, bad[i].max_msg,
			                               bad[i].mode);
			int err = errno;
			if (q != NULL) {
				mq_detach(q);
				mq_remove(qname);
			}
			ck_assert_msg(
			        q == NULL && err == EINVAL,
			        "mq_create%s(capacity %zu, max_msg %zu, mode %o): %p errno %d",
			        observed ? "_observed" : "", bad[i].capacity, bad[i].max_msg,
			        (unsigned)bad[i].mode, (void *)q, err);
			ck_assert_detail_has(mq_errdetail(), bad[i].says);
			ck_assert_detail_has(mq_errdetail(), qname + 1);
			ck_assert_msg(access(qpath, F_OK) == -1, "case %zu left %s behind", i,
			              qpath);
		}
	}

	/* The smallest geometry is valid. */
	mq_t *q = create_queue(qname, 1, 1);
	ck_assert_int_eq(mq_send(q, "z", 1, 0), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* Valid limits whose product no machine holds: an error, and no file left. */
START_TEST(test_huge_geometry_fails_cleanly)
{
	errno = 0;
	mq_t *q = mq_create(qname, MQ_CAPACITY_LIMIT, MQ_MAX_MSG_LIMIT, 0600);
	int err = errno;
	if (q != NULL) {
		mq_detach(q);
		mq_remove(qname);
	}
	ck_assert_ptr_null(q);
	ck_assert_msg(err == ENOMEM || err == ENOSPC, "errno %d (%s), expected ENOMEM or ENOSPC",
	              err, strerror(err));
	ck_assert_msg(access(qpath, F_OK) == -1, "failed mq_create left %s behind", qpath);
}
END_TEST

START_TEST(test_null_handles_are_einval)
{
	struct mq_stats s;
	struct mq_client_info ci[2];
	struct mq_inspection in;
	mq_t *q = create_queue(qname, 4, 16);

	errno = 0;
	ck_assert_int_eq(mq_detach(NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_stats(NULL, &s), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_stats(q, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_clients(NULL, ci, 2), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_clients(NULL, NULL, 0), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_clients(q, NULL, 1), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_inspect(NULL, &in), -1);
	ck_assert_int_eq(errno, EINVAL);
	errno = 0;
	ck_assert_int_eq(mq_inspect(q, NULL), -1);
	ck_assert_int_eq(errno, EINVAL);

	/* OUT may be NULL when N is 0: just the count. */
	ck_assert_int_eq(mq_clients(q, NULL, 0), 1);

	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_permission_denied_is_eacces)
{
	if (geteuid() != 0) {
		fprintf(stderr, "test_permission_denied_is_eacces: skipped, needs root\n");
		return;
	}
	mq_t *q = mq_create(qname, 4, 16, 0600);
	ck_assert_ptr_nonnull(q);

	pid_t pid = fork_child();
	if (pid == 0) {
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0)
			_exit(10);
		errno = 0;
		mq_t *c = mq_attach(qname);
		if (c != NULL)
			_exit(11);
		if (errno != EACCES)
			_exit(12);
		if (!strstr(mq_errdetail(), qname + 1))
			_exit(17);
		errno = 0;
		if (mq_remove(qname) != -1)
			_exit(13);
		if (errno != EACCES)
			_exit(14);
		errno = 0;
		if (mq_observe(qname) != NULL || errno != EACCES)
			_exit(15);
		errno = 0;
		if (mq_create(qname, 4, 16, 0600) != NULL || errno != EEXIST)
			_exit(16);
		_exit(0);
	}
	int code = wait_child(pid);
	ck_assert_msg(code != 10, "could not drop privileges to 65534");
	ck_assert_msg(code != 11, "mq_attach of a 0600 root queue succeeded as uid 65534");
	ck_assert_msg(code != 12, "mq_attach as uid 65534: errno was not EACCES");
	ck_assert_msg(code != 17, "mq_attach as uid 65534: the detail does not name the queue");
	ck_assert_msg(code != 13, "mq_remove of a root queue succeeded as uid 65534");
	ck_assert_msg(code != 14, "mq_remove as uid 65534: errno was not EACCES");
	ck_assert_msg(code != 15, "mq_observe as uid 65534: not EACCES");
	ck_assert_msg(code != 16, "mq_create over a root queue as uid 65534: not EEXIST");
	ck_assert_int_eq(code, 0);

	ck_assert_int_eq(access(qpath, F_OK), 0);
	ck_assert_int_eq(mq_send(q, "ok", 2, 0), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_client_table_full_is_eusers)
{
	static mq_t *h[MQ_CLIENTS_MAX];
	h[0] = create_queue(qname, 2, 8);
	for (int i = 1; i < MQ_CLIENTS_MAX; i++) {
		h[i] = mq_attach(qname);
		ck_assert_msg(h[i] != NULL, "attach %d: %s (%s)", i, strerror(errno),
		              mq_errdetail());
	}
	ck_assert_uint_eq(get_stats(h[0]).clients, MQ_CLIENTS_MAX);

	errno = 0;
	mq_t *extra = mq_attach(qname);
	int err = errno;
	if (extra)
		mq_detach(extra);
	ck_assert_ptr_null(extra);
	ck_assert_int_eq(err, EUSERS);
	ck_assert_detail_has(mq_errdetail(), qname + 1);
	ck_assert_detail_has(mq_errdetail(), "client table full");

	/* An observer needs no entry. */
	mq_t *obs = mq_observe(qname);
	ck_assert_ptr_nonnull(obs);
	ck_assert_int_eq(mq_clients(obs, NULL, 0), MQ_CLIENTS_MAX);
	ck_assert_int_eq(mq_detach(obs), 0);

	/* A detach frees an entry for the next client. */
	ck_assert_int_eq(mq_detach(h[MQ_CLIENTS_MAX - 1]), 0);
	h[MQ_CLIENTS_MAX - 1] = attach_ok(qname);

	for (int i = MQ_CLIENTS_MAX - 1; i >= 0; i--)
		ck_assert_int_eq(mq_detach(h[i]), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* A segment anyone may write is refused by mq_attach (its messages could be
 * anybody's), but an observer may open it to report it. */
START_TEST(test_world_writable_segment_refused)
{
	static const mode_t modes[] = {0666, 0602, 0662};
	for (size_t i = 0; i < sizeof(modes) / sizeof(modes[0]); i++) {
		char mode[8];
		snprintf(mode, sizeof(mode), "%04o", (unsigned)modes[i]);
		mq_t *q = create_queue(qname, 4, 16);
		ck_assert_int_eq(mq_send(q, "kept", 4, 0), 0);
		ck_assert_int_eq(mq_detach(q), 0);
		ck_assert_int_eq(chmod(qpath, modes[i]), 0);

		errno = 0;
		q = mq_attach(qname);
		int err = errno;
		if (q)
			mq_detach(q);
		ck_assert_msg(q == NULL, "mq_attach took a segment of mode %s", mode);
		ck_assert_int_eq(err, EACCES);
		ck_assert_detail_has(mq_errdetail(), qname + 1);
		ck_assert_detail_has(mq_errdetail(), "world-writable");
		ck_assert_detail_has(mq_errdetail(), mode);

		mq_t *obs = mq_observe(qname);
		ck_assert_msg(obs != NULL, "mq_observe of mode %s: %s", mode, mq_errdetail());
		struct mq_inspection in;
		ck_assert_int_eq(mq_inspect(obs, &in), 0);
		ck_assert_int_eq(in.sound, 0);
		ck_assert_uint_eq(in.file_mode, modes[i]);
		ck_assert_detail_has(in.problem, "world-writable");
		ck_assert_uint_eq(get_stats(obs).depth, 1);
		/* Looking is all an observer does. */
		char buf[16];
		errno = 0;
		ck_assert_int_eq(mq_recv(obs, buf, sizeof(buf), 0), -1);
		ck_assert_int_eq(errno, EINVAL);
		errno = 0;
		ck_assert_int_eq(mq_send(obs, "x", 1, 0), -1);
		ck_assert_int_eq(errno, EINVAL);
		ck_assert_int_eq(mq_detach(obs), 0);

		/* Nothing was changed: mode, message. */
		struct stat st;
		ck_assert_int_eq(stat(qpath, &st), 0);
		ck_assert_uint_eq(st.st_mode & 07777, modes[i]);
		ck_assert_int_eq(chmod(qpath, 0600), 0);
		q = attach_ok(qname);
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 4);
		ck_assert_mem_eq(buf, "kept", 4);
		ck_assert_int_eq(mq_detach(q), 0);
		ck_assert_int_eq(mq_remove(qname), 0);
	}
}
END_TEST

/* ---------------------------------------------------------- corrupt segments */

static char refused_detail[512];

/*
 * expect_refused: mq_attach(NAME) must fail with ERR and a one-line detail
 * naming the queue and saying WANT (if not NULL), within 5 s, and leave the
 * file exactly as it was. mq_observe must refuse it the same way. The
 * detail is kept in refused_detail.
 */
static void expect_refused(const char *name, int want_err, const char *what, const char *want)
{
	char path[128];
	test_shm_path(path, name);
	size_t len_before, len_after;
	unsigned char *before = read_file(path, &len_before);

	for (int observe = 0; observe < 2; observe++) {
		double t0 = now_ms();
		errno = 0;
		mq_t *q = observe ? mq_observe(name) : mq_attach(name);
		int err = errno;
		snprintf(refused_detail, sizeof(refused_detail), "%s", mq_errdetail());
		double elapsed = now_ms() - t0;
		if (q != NULL)
			mq_detach(q);
		const char *call = observe ? "mq_observe" : "mq_attach";
		ck_assert_msg(q == NULL, "%s: %s accepted the segment", what, call);
		ck_assert_msg(err == want_err, "%s: %s errno %d (%s), expected %s; detail \"%s\"",
		              what, call, err, strerror(err), strerror(want_err), refused_detail);
		ck_assert_msg(strstr(refused_detail, name + 1) != NULL,
		              "%s: mq_errdetail() \"%s\" does not name %s", what, refused_detail,
		              name);
		if (want)
			ck_assert_msg(strstr(refused_detail, want) != NULL,
			              "%s: mq_errdetail() \"%s\" does not say \"%s\"", what,
			              refused_detail, want);
		ck_assert_msg(strchr(refused_detail, '\n') == NULL,
		              "%s: mq_errdetail() is not one line", what);
		ck_assert_msg(elapsed < 5000, "%s: %s took %.0f ms", what, call, elapsed);
	}

	unsigned char *after = read_file(path, &len_after);
	ck_assert_msg(len_after == len_before, "%s: the file went from %zu to %zu bytes", what,
	              len_before, len_after);
	ck_assert_msg(memcmp(before, after, len_before) == 0, "%s: the refused file was written",
	              what);
	free(before);
	free(after);
}

static void expect_eproto(const char *name, const char *what, const char *want)
{
	expect_refused(name, EPROTO, what, want);
}

/* map_file: map NAME's whole file for editing; its size in *SIZE. */
static struct mq_shm *map_file(const char *name, size_t *size)
{
	char path[128];
	struct stat st;
	test_shm_path(path, name);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	close(fd);
	*size = (size_t)st.st_size;
	return p;
}

/* make_segment: create a valid queue, detach, and map its file for editing. */
static struct mq_shm *make_segment(const char *name, size_t capacity, size_t max_msg, size_t *size)
{
	mq_t *q = create_queue(name, capacity, max_msg);
	ck_assert_int_eq(mq_detach(q), 0);
	struct mq_shm *s = map_file(name, size);
	ck_assert_uint_eq(atomic_load(&s->magic), MQ_MAGIC);
	ck_assert_uint_eq(s->version, MQ_LAYOUT_VERSION);
	ck_assert_uint_eq(s->capacity, capacity);
	ck_assert_uint_eq(s->max_msg, max_msg);
	ck_assert_uint_eq(s->total_size, *size);
	return s;
}

static void unmap_segment(struct mq_shm *s, size_t size)
{
	ck_assert_int_eq(munmap(s, size), 0);
}

static _Atomic uint64_t *seg_ring(struct mq_shm *s)
{
	return (_Atomic uint64_t *)((unsigned char *)s + s->ring_offset);
}

static _Atomic uint64_t *seg_pool(struct mq_shm *s)
{
	return (_Atomic uint64_t *)((unsigned char *)s + s->pool_offset);
}

static _Atomic uint32_t *seg_requeue(struct mq_shm *s)
{
	return (_Atomic uint32_t *)((unsigned char *)s + s->requeue_offset);
}

static struct mq_chunk *seg_chunk(struct mq_shm *s, uint64_t i)
{
	return (struct mq_chunk *)((unsigned char *)s + s->chunks_offset + i * s->chunk_size);
}

/* remake: a fresh name for the next case of a table-driven test. */
static void remake(void)
{
	ck_assert_int_eq(unlink(qpath), 0);
	setup_name();
}

static void fill_random(unsigned char *p, size_t len, uint64_t seed)
{
	uint64_t x = seed | 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		p[i] = (unsigned char)(x >> 24);
	}
}

START_TEST(test_corrupt_zero_length_file)
{
	int fd = open(qpath, O_CREAT | O_EXCL | O_RDWR, 0600);
	ck_assert_int_ge(fd, 0);
	close(fd);
	char want[96];
	snprintf(want, sizeof(want), "truncated: 0 bytes, smaller than the %zu-byte header",
	         sizeof(struct mq_shm));
	expect_eproto(qname, "zero-length file", want);
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/* A young all-zero file may be a creator at work: mq_attach waits for its
 * magic a little (about 200 ms), then calls it what it is. */
START_TEST(test_corrupt_all_zero_file)
{
	size_t size = geometry(4, 64).total_size;
	unsigned char *zero = calloc(1, size);
	ck_assert_ptr_nonnull(zero);
	write_file(qpath, zero, size);
	free(zero);
	double t0 = now_ms();
	errno = 0;
	ck_assert_ptr_null(mq_attach(qname));
	double waited = now_ms() - t0;
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_msg(waited >= 150 && waited < 2000,
	              "mq_attach of a young all-zero file returned after %.0f ms", waited);
	expect_eproto(qname, "all-zero file", "not a libmq queue (magic 0x0000000000000000)");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_truncated_file)
{
	struct mq_geometry g = geometry(4, 64);
	size_t header = sizeof(struct mq_shm);
	struct {
		off_t size;
		const char *what;
	} cut[] = {
	        {8, "truncated to the magic"},
	        {100, "truncated to 100 bytes"},
	        {(off_t)header - 1, "truncated to header - 1"},
	        {(off_t)header, "truncated to the header alone"},
	        {(off_t)g.pool_offset, "truncated inside the ring"},
	        {(off_t)g.chunks_offset, "truncated before the chunks"},
	        {(off_t)(g.total_size - g.chunk_size), "truncated by one chunk"},
	        {(off_t)(g.total_size - 1), "truncated by one byte"},
	};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		size_t size;
		char want[128];
		struct mq_shm *s = make_segment(qname, 4, 64, &size);
		ck_assert_uint_eq(s->total_size, g.total_size);
		unmap_segment(s, size);
		ck_assert_int_eq(truncate(qpath, cut[i].size), 0);
		if ((size_t)cut[i].size < header)
			snprintf(want, sizeof(want), "truncated: %lld bytes, smaller than the",
			         (long long)cut[i].size);
		else
			snprintf(want, sizeof(want),
			         "truncated: file has %lld bytes, its header "
			         "says %llu",
			         (long long)cut[i].size, (unsigned long long)g.total_size);
		expect_eproto(qname, cut[i].what, want);
		remake();
	}
}
END_TEST

START_TEST(test_corrupt_grown_file)
{
	struct mq_geometry g = geometry(4, 64);
	static const size_t extra[] = {1, 4096, 1 << 20};
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		size_t size;
		char want[128];
		struct mq_shm *s = make_segment(qname, 4, 64, &size);
		unmap_segment(s, size);
		ck_assert_int_eq(truncate(qpath, (off_t)(g.total_size + extra[i])), 0);
		snprintf(want, sizeof(want), "corrupt: file has %llu bytes, its header says %llu",
		         (unsigned long long)(g.total_size + extra[i]),
		         (unsigned long long)g.total_size);
		expect_eproto(qname, "grown file", want);
		remake();
	}
}
END_TEST

START_TEST(test_corrupt_garbage_file)
{
	size_t size = geometry(4, 64).total_size;
	unsigned char *junk = malloc(size);
	ck_assert_ptr_nonnull(junk);
	for (uint64_t seed = 1; seed <= 5; seed++) {
		fill_random(junk, size, seed * 0x9e3779b97f4a7c15u);
		write_file(qpath, junk, size);
		expect_eproto(qname, "random bytes", "not a libmq queue (magic 0x");
		/* mq_remove deletes whatever is there under the name, corrupt or not. */
		ck_assert_int_eq(mq_remove(qname), 0);
		ck_assert_int_eq(access(qpath, F_OK), -1);
	}
	free(junk);
}
END_TEST

START_TEST(test_corrupt_garbage_with_valid_magic)
{
	size_t size = geometry(4, 64).total_size;
	unsigned char *junk = malloc(size);
	ck_assert_ptr_nonnull(junk);
	fill_random(junk, size, 42);
	uint64_t magic = MQ_MAGIC;
	uint32_t version = MQ_LAYOUT_VERSION;
	memcpy(junk + offsetof(struct mq_shm, magic), &magic, sizeof(magic));
	memcpy(junk + offsetof(struct mq_shm, version), &version, sizeof(version));
	write_file(qpath, junk, size);
	free(junk);
	expect_eproto(qname, "random bytes behind a valid magic and version",
	              "corrupt header (geometry checksum mismatch)");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_foreign_magic)
{
	size_t size;
	struct mq_shm *s = make_segment(qname, 4, 64, &size);
	atomic_store(&s->magic, UINT64_C(0x0123456789abcdef));
	unmap_segment(s, size);
	expect_eproto(qname, "foreign magic", "not a libmq queue (magic 0x0123456789abcdef)");
	remake();

	/* Off by one bit is just as foreign. */
	s = make_segment(qname, 4, 64, &size);
	atomic_store(&s->magic, MQ_MAGIC ^ 1);
	unmap_segment(s, size);
	expect_eproto(qname, "magic with one bit flipped", "not a libmq queue (magic 0x");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_other_version)
{
	static const struct {
		uint32_t version;
		const char *says;
	} v[] = {
	        {0, "(made by an older libmq"},
	        {MQ_LAYOUT_VERSION + 1, "(made by a newer libmq)"},
	        {0xffffffffu, "(made by a newer libmq)"},
	};
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t size;
		char what[64], want[96];
		struct mq_shm *s = make_segment(qname, 4, 64, &size);
		s->version = v[i].version;
		unmap_segment(s, size);
		snprintf(what, sizeof(what), "layout version %u", v[i].version);
		snprintf(want, sizeof(want), "layout version %u, this libmq reads version %u",
		         v[i].version, MQ_LAYOUT_VERSION);
		expect_eproto(qname, what, want);
		ck_assert_detail_has(refused_detail, v[i].says);
		remake();
	}
}
END_TEST

/*
 * v1_image: the file layout version 1 of libmq made for CAPACITY x MAX_MSG
 * (one ring of slots with inline payloads: a 17408-byte header, then slots
 * of a 16-byte header + payload, cache-line rounded), holding one message.
 * Only the fields a reader of another version may look at are filled in:
 * the magic (the same in every version), the version and the geometry.
 */
static unsigned char *v1_image(uint64_t capacity, uint64_t max_msg, size_t *len)
{
	const uint64_t header = 17408, slot = (16 + max_msg + 63) & ~(uint64_t)63;
	const uint64_t total = header + capacity * slot;
	unsigned char *img = calloc(1, (size_t)total);
	ck_assert_ptr_nonnull(img);
	uint64_t magic = MQ_MAGIC, seq = 1, mlen = 5;
	uint32_t version = 1, hsize = (uint32_t)header, clients = 256;
	memcpy(img + 0, &magic, 8);
	memcpy(img + 8, &version, 4);
	memcpy(img + 12, &hsize, 4);
	memcpy(img + 16, &capacity, 8);
	memcpy(img + 24, &max_msg, 8);
	memcpy(img + 32, &slot, 8);
	memcpy(img + 40, &header, 8);
	memcpy(img + 48, &total, 8);
	memcpy(img + 56, &clients, 4);
	memcpy(img + header, &seq, 8);
	memcpy(img + header + 8, &mlen, 8);
	memcpy(img + header + 16, "hello", 5);
	*len = (size_t)total;
	return img;
}

/* A queue made by libmq 0.1 (layout 1), as mqbroker's default geometry
 * made it: the message says so, and how to move on. */
START_TEST(test_corrupt_version_1_file)
{
	size_t len;
	unsigned char *img = v1_image(MQ_DEFAULT_CAPACITY, MQ_DEFAULT_MAX_MSG, &len);
	ck_assert_uint_gt(len, sizeof(struct mq_shm));
	write_file(qpath, img, len);
	free(img);
	expect_eproto(qname, "layout 1 file",
	              "layout version 1, this libmq reads version 3 (made by an older libmq, 0.1");
	ck_assert_detail_has(refused_detail, "made by an older libmq");
	ck_assert_detail_has(refused_detail, "'mqbroker' moves its messages into a new queue");
	ck_assert_detail_has(refused_detail, "'mqbroker --recreate' replaces it");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_geometry_checksum)
{
	/* Each checksummed field changed alone, geometry_check left as it was. */
	for (int field = 0; field < 15; field++) {
		size_t size;
		struct mq_shm *s = make_segment(qname, 8, 64, &size);
		const char *what = "";
		switch (field) {
		case 0:
			s->capacity = 4, what = "capacity";
			break;
		case 1:
			s->max_msg = 32, what = "max_msg";
			break;
		case 2:
			s->chunk_size += MQ_CACHELINE, what = "chunk_size";
			break;
		case 3:
			s->ring_size *= 2, what = "ring_size";
			break;
		case 4:
			s->ring_offset += 64, what = "ring_offset";
			break;
		case 5:
			s->pool_offset += 8, what = "pool_offset";
			break;
		case 6:
			s->requeue_offset += 8, what = "requeue_offset";
			break;
		case 7:
			s->chunks_offset += 64, what = "chunks_offset";
			break;
		case 8:
			s->total_size -= 1, what = "total_size";
			break;
		case 9:
			s->clients_max = 1, what = "clients_max";
			break;
		case 10:
			s->flags ^= MQ_SEG_LIFO, what = "flags";
			break;
		case 11:
			s->queue_id ^= 1, what = "queue_id";
			break;
		case 12:
			s->created_unix_ns += 1, what = "created_unix_ns";
			break;
		case 13:
			s->header_size += 64, what = "header_size";
			break;
		case 14:
			s->geometry_check ^= 0x10, what = "geometry_check";
			break;
		}
		unmap_segment(s, size);
		expect_eproto(qname, what, "corrupt header (geometry checksum mismatch)");
		remake();
	}
}
END_TEST

/* set_geometry: S's geometry fields as segment_geometry(CAPACITY, MAX_MSG)
 * gives them (a consistent header for another queue). */
static void set_geometry(struct mq_shm *s, uint64_t capacity, uint64_t max_msg)
{
	struct mq_geometry g = geometry(capacity, max_msg);
	s->capacity = capacity;
	s->max_msg = max_msg;
	s->chunk_size = g.chunk_size;
	s->ring_size = g.ring_size;
	s->ring_offset = g.ring_offset;
	s->pool_offset = g.pool_offset;
	s->requeue_offset = g.requeue_offset;
	s->chunks_offset = g.chunks_offset;
	s->total_size = g.total_size;
	s->flags = g.flags;
}

/* Geometry edited with the checksum recomputed: each field that does not
 * follow from capacity and max_msg is caught by itself. */
START_TEST(test_corrupt_geometry_fields)
{
	for (int field = 0; field < 17; field++) {
		size_t size;
		struct mq_shm *s = make_segment(qname, 8, 64, &size);
		const char *what = "";
		switch (field) {
		case 0:
			s->capacity = 4, what = "capacity alone (ring size no longer fits)";
			break;
		case 1:
			s->max_msg = 200, what = "max_msg alone (chunk size no longer fits)";
			break;
		case 2:
			s->chunk_size += MQ_CACHELINE, what = "chunk_size";
			break;
		case 3:
			s->ring_size *= 2, what = "ring_size";
			break;
		case 4:
			s->ring_size = 8, what = "ring_size == capacity";
			break;
		case 5:
			s->ring_offset = 64, what = "ring_offset inside the header";
			break;
		case 6:
			s->pool_offset = s->ring_offset, what = "pool_offset over the ring";
			break;
		case 7:
			s->requeue_offset += 8, what = "requeue_offset";
			break;
		case 8:
			s->chunks_offset -= 64, what = "chunks_offset";
			break;
		case 9:
			s->total_size -= 1, what = "total_size";
			break;
		case 10:
			s->clients_max = 128, what = "clients_max";
			break;
		case 11:
			s->flags = MQ_SEG_LIFO, what = "LIFO flag on small chunks";
			break;
		case 12:
			s->flags = 0x80, what = "unknown flag";
			break;
		case 13:
			s->header_size = 17408, what = "header_size of layout 1";
			break;
		case 14:
			s->capacity = 0, what = "capacity 0";
			break;
		case 15:
			s->max_msg = 0, what = "max_msg 0";
			break;
		case 16:
			s->capacity = (uint64_t)MQ_CAPACITY_LIMIT + 1,
			what = "capacity over the limit";
			break;
		}
		s->geometry_check = segment_geometry_check(s);
		unmap_segment(s, size);
		expect_eproto(qname, what, "corrupt geometry (capacity ");
		remake();
	}

	/* A consistent geometry of other sizes: the file size tells. */
	size_t size;
	struct mq_shm *s = make_segment(qname, 8, 64, &size);
	set_geometry(s, 16, 64);
	s->geometry_check = segment_geometry_check(s);
	char want[128];
	snprintf(want, sizeof(want), "truncated: file has %zu bytes, its header says %llu", size,
	         (unsigned long long)s->total_size);
	unmap_segment(s, size);
	expect_eproto(qname, "geometry of a bigger queue", want);
	remake();

	s = make_segment(qname, 8, 64, &size);
	set_geometry(s, 2, 64);
	s->geometry_check = segment_geometry_check(s);
	snprintf(want, sizeof(want), "corrupt: file has %zu bytes, its header says %llu", size,
	         (unsigned long long)s->total_size);
	unmap_segment(s, size);
	expect_eproto(qname, "geometry of a smaller queue", want);
	remake();

	/* LIFO geometry claimed by a FIFO queue of the same size is impossible;
	 * a large-message header over small chunks: */
	s = make_segment(qname, 8, 64, &size);
	s->max_msg = MQ_LIFO_MIN_MSG;
	s->geometry_check = segment_geometry_check(s);
	unmap_segment(s, size);
	expect_eproto(qname, "max_msg of a LIFO queue over FIFO chunks", "corrupt geometry");
	remake();

	/* Identity is checksummed but is not geometry: a consistent edit of it is
	 * a queue like any other (this is what makes the cases above count). */
	s = make_segment(qname, 8, 64, &size);
	s->queue_id ^= 0xffff;
	s->created_unix_ns -= 1000000000;
	s->geometry_check = segment_geometry_check(s);
	unmap_segment(s, size);
	mq_t *q = attach_ok(qname);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/* make_busy_fifo: a FIFO queue of capacity 8 that has seen NROUNDS send and
 * receive pairs, then holds NMSG messages; mapped for editing. */
static struct mq_shm *make_busy_fifo(size_t nrounds, size_t nmsg, size_t *size)
{
	mq_t *q = create_queue(qname, 8, 64);
	char buf[64];
	for (size_t i = 0; i < nrounds; i++) {
		ck_assert_int_eq(mq_send(q, "r", 1, 0), 0);
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	}
	for (size_t i = 0; i < nmsg; i++) {
		int n = snprintf(buf, sizeof(buf), "message %zu", i);
		ck_assert_int_eq(mq_send(q, buf, (size_t)n, 0), 0);
	}
	ck_assert_int_eq(mq_detach(q), 0);
	return map_file(qname, size);
}

START_TEST(test_corrupt_indices)
{
	static const struct {
		uint64_t head, tail;
		const char *what;
	} c[] = {
	        {0, 9, "tail - head > capacity"},
	        {100, 109, "tail - head > capacity, both advanced"},
	        {20, 9, "head after tail by more than capacity"},
	        {UINT64_MAX, 0, "head far after tail"},
	        {0, UINT64_MAX, "tail far after head"},
	        {MQ_INDEX_LIMIT, MQ_INDEX_LIMIT, "both at 2^63"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char want[128];
		struct mq_shm *s = make_busy_fifo(0, 0, &size);
		atomic_store(&s->head, c[i].head);
		atomic_store(&s->tail, c[i].tail);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt indices (head %llu, tail %llu, capacity 8)",
		         (unsigned long long)c[i].head, (unsigned long long)c[i].tail);
		expect_eproto(qname, c[i].what, want);
		remake();
	}

	/* A queue that holds messages: head 5, tail 8; head moved past tail + 8. */
	size_t size;
	struct mq_shm *s = make_busy_fifo(5, 3, &size);
	ck_assert_uint_eq(atomic_load(&s->head), 5);
	ck_assert_uint_eq(atomic_load(&s->tail), 8);
	atomic_store(&s->head, 17);
	unmap_segment(s, size);
	expect_eproto(qname, "head 17, tail 8", "corrupt indices (head 17, tail 8, capacity 8)");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_requeue_indices)
{
	static const struct {
		uint64_t rhead, rtail;
		const char *what;
	} c[] = {
	        {1, 0, "requeue head after its tail"},
	        {0, 9, "requeue ring fuller than capacity"},
	        {50, 59, "requeue ring fuller than capacity, both advanced"},
	        {MQ_INDEX_LIMIT, MQ_INDEX_LIMIT, "requeue positions at 2^63"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char want[128];
		struct mq_shm *s = make_busy_fifo(2, 1, &size);
		atomic_store(&s->rhead, c[i].rhead);
		atomic_store(&s->rtail, c[i].rtail);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt requeue indices (%llu..%llu, capacity 8)",
		         (unsigned long long)c[i].rhead, (unsigned long long)c[i].rtail);
		expect_eproto(qname, c[i].what, want);
		remake();
	}
}
END_TEST

START_TEST(test_corrupt_pool_indices)
{
	/* FIFO: fhead .. ftail holds the free chunks (8 when idle). */
	static const struct {
		uint64_t fhead, ftail;
		const char *what;
	} c[] = {
	        {0, 17, "more than twice the capacity in the pool"},
	        {9, 0, "pool taken past its end by more than capacity"},
	        {MQ_INDEX_LIMIT, MQ_INDEX_LIMIT + 8, "pool positions at 2^63"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char want[128];
		struct mq_shm *s = make_busy_fifo(0, 0, &size);
		ck_assert_uint_eq(atomic_load(&s->fhead), 0);
		ck_assert_uint_eq(atomic_load(&s->ftail), 8);
		atomic_store(&s->fhead, c[i].fhead);
		atomic_store(&s->ftail, c[i].ftail);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt pool indices (%llu..%llu, capacity 8)",
		         (unsigned long long)c[i].fhead, (unsigned long long)c[i].ftail);
		expect_eproto(qname, c[i].what, want);
		remake();
	}

	/* LIFO: ftail is the stack's top (<= capacity) and fhead stays 0. */
	static const struct {
		uint64_t fhead, ftail;
		const char *what;
	} l[] = {
	        {0, 3, "stack top above capacity"},
	        {1, 2, "fhead used in a LIFO segment"},
	        {0, UINT64_MAX, "stack top far above capacity"},
	};
	for (size_t i = 0; i < sizeof(l) / sizeof(l[0]); i++) {
		size_t size;
		char want[128];
		struct mq_shm *s = make_segment(qname, 2, MQ_LIFO_MIN_MSG, &size);
		ck_assert_uint_eq(s->flags, MQ_SEG_LIFO);
		ck_assert_uint_eq(atomic_load(&s->ftail), 2);
		atomic_store(&s->fhead, l[i].fhead);
		atomic_store(&s->ftail, l[i].ftail);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt pool indices (%llu..%llu, capacity 2)",
		         (unsigned long long)l[i].fhead, (unsigned long long)l[i].ftail);
		expect_eproto(qname, l[i].what, want);
		remake();
	}
}
END_TEST

/* An operation record (intent) names one of the known operations or none. */
START_TEST(test_corrupt_intent_op)
{
	static const struct {
		int recv;
		uint32_t op;
	} c[] = {
	        {0, MQ_OP_TAKE_COPY + 1},
	        {1, MQ_OP_TAKE_COPY + 1},
	        {0, 0x80000000u},
	        {1, UINT32_MAX},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char want[96];
		struct mq_shm *s = make_busy_fifo(1, 2, &size);
		atomic_store(c[i].recv ? &s->recv.intent.op : &s->send.intent.op, c[i].op);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt %s side (operation record %u)",
		         c[i].recv ? "receive" : "send", c[i].op);
		expect_eproto(qname, want, want);
		remake();
	}
}
END_TEST

START_TEST(test_corrupt_client_table)
{
	static const struct {
		unsigned entry;
		uint32_t state, role;
	} c[] = {
	        {0, MQ_CLIENT_DEAD + 1, 0},
	        {7, UINT32_MAX, MQ_ROLE_PRODUCER},
	        {200, MQ_CLIENT_ACTIVE, 8},
	        {MQ_CLIENTS_MAX - 1, MQ_CLIENT_FREE, UINT32_MAX},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char want[64];
		struct mq_shm *s = make_busy_fifo(0, 1, &size);
		atomic_store(&s->clients[c[i].entry].state, c[i].state);
		atomic_store(&s->clients[c[i].entry].role, c[i].role);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt client table (entry %u)", c[i].entry);
		expect_eproto(qname, want, want);
		remake();
	}
}
END_TEST

/* Every chunk is in one of the known states and holds at most max_msg bytes. */
START_TEST(test_corrupt_chunk_states)
{
	static const struct {
		unsigned chunk;
		uint64_t state;
		uint32_t len;
		const char *want;
	} c[] = {
	        {2, 0, 0, "corrupt chunk 2 in state 0 holds 0 bytes"},
	        {0, MQ_CHUNK_STATE(MQ_CHUNK_TAKING + 1, 0), 0,
	         "corrupt chunk 0 in state 7 holds 0 bytes"},
	        {7, MQ_CHUNK_STATE(0xff, 0x123), 3, "corrupt chunk 7 in state 255 holds 3 bytes"},
	        {5, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0), 65,
	         "corrupt chunk 5 in state 1 holds 65 bytes"},
	        {0, MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0), UINT32_MAX,
	         "corrupt chunk 0 in state 3 holds 4294967295 bytes"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		struct mq_shm *s = make_busy_fifo(0, 1, &size);
		struct mq_chunk *ch = seg_chunk(s, c[i].chunk);
		atomic_store(&ch->state, c[i].state);
		atomic_store(&ch->len, c[i].len);
		unmap_segment(s, size);
		expect_eproto(qname, c[i].want, c[i].want);
		remake();
	}
}
END_TEST

/*
 * On a quiet queue (no operation recorded) every reference is checked
 * against the chunk it names: kind, position and (for the ring) seq32. The
 * queue below: FIFO, capacity 8, 5 rounds done, then 3 messages: ring
 * positions 5, 6, 7 name chunks 5, 6, 7 (QUEUED at 5, 6, 7); pool positions
 * 8 .. 12 name chunks 0 .. 4 (FREE there, entries (p + 1) << 32 | chunk).
 */
START_TEST(test_corrupt_ring_reference)
{
	enum { ENTRY, STATE, POS };
	static const struct {
		int kind;
		uint64_t pos; /* the ring position edited */
		uint64_t v;   /* the new entry, state or pos */
		const char *what;
	} c[] = {
	        {ENTRY, 6, (UINT64_C(7) << 32) | 0, "entry names a FREE chunk"},
	        {ENTRY, 6, (UINT64_C(7) << 32) | 8, "entry names chunk 8 of 8"},
	        {ENTRY, 6, (UINT64_C(7) << 32) | UINT32_MAX, "entry names chunk 2^32 - 1"},
	        {ENTRY, 6, (UINT64_C(6) << 32) | 6, "entry of the position before"},
	        {ENTRY, 6, (UINT64_C(15) << 32) | 6, "entry of the next lap"},
	        {ENTRY, 5, (UINT64_C(6) << 32) | 6, "entry names the next position's chunk"},
	        {STATE, 6, MQ_CHUNK_STATE(MQ_CHUNK_HELD, 0x201), "chunk leased, still in ring"},
	        {STATE, 7, MQ_CHUNK_STATE(MQ_CHUNK_REQUEUED, 0), "chunk requeued, still in ring"},
	        {POS, 6, 14, "chunk says it is at another position"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char want[96];
		struct mq_shm *s = make_busy_fifo(5, 3, &size);
		ck_assert_uint_eq(atomic_load(&s->head), 5);
		ck_assert_uint_eq(atomic_load(&s->tail), 8);
		_Atomic uint64_t *ring = seg_ring(s);
		uint64_t mask = s->ring_size - 1;
		for (uint64_t p = 5; p < 8; p++)
			ck_assert_uint_eq(atomic_load(&ring[p & mask]), entry_make(p, (uint32_t)p));
		uint64_t entry = atomic_load(&ring[c[i].pos & mask]);
		if (c[i].kind == ENTRY)
			atomic_store(&ring[c[i].pos & mask], entry = c[i].v);
		else if (c[i].kind == STATE)
			atomic_store(&seg_chunk(s, c[i].pos)->state, c[i].v);
		else
			atomic_store(&seg_chunk(s, c[i].pos)->pos, c[i].v);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt ring position %llu (entry 0x%016llx)",
		         (unsigned long long)c[i].pos, (unsigned long long)entry);
		expect_eproto(qname, c[i].what, want);
		remake();
	}
}
END_TEST

START_TEST(test_corrupt_pool_reference)
{
	/* FIFO: pool positions 8 .. 12 name chunks 0 .. 4 (see above). */
	static const struct {
		uint64_t pos, entry;
		unsigned chunk;
		uint64_t state, cpos;
		const char *what;
	} c[] = {
	        {9, (UINT64_C(10) << 32) | 6, 1, 0, 0, "entry names a QUEUED chunk"},
	        {9, (UINT64_C(10) << 32) | 8, 1, 0, 0, "entry names chunk 8 of 8"},
	        {9, (UINT64_C(2) << 32) | 1, 1, 0, 0, "entry of the lap before"},
	        {12, (UINT64_C(13) << 32) | 0, 4, 0, 0, "entry names another free chunk"},
	        {10, 0, 2, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0x201), 10, "free chunk with an owner"},
	        {10, 0, 2, MQ_CHUNK_STATE(MQ_CHUNK_WRITING, 0x201), 10, "chunk reserved in pool"},
	        {11, 0, 3, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0), 3, "chunk at another position"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char want[96];
		struct mq_shm *s = make_busy_fifo(5, 3, &size);
		ck_assert_uint_eq(atomic_load(&s->fhead), 8);
		ck_assert_uint_eq(atomic_load(&s->ftail), 13);
		_Atomic uint64_t *pool = seg_pool(s);
		uint64_t mask = s->ring_size - 1;
		for (uint64_t p = 8; p < 13; p++)
			ck_assert_uint_eq(atomic_load(&pool[p & mask]),
			                  entry_make(p, (uint32_t)(p - 8)));
		ck_assert_uint_eq(atomic_load(&seg_chunk(s, c[i].chunk)->pos), c[i].pos);
		uint64_t entry = atomic_load(&pool[c[i].pos & mask]);
		if (c[i].entry)
			atomic_store(&pool[c[i].pos & mask], entry = c[i].entry);
		else {
			atomic_store(&seg_chunk(s, c[i].chunk)->state, c[i].state);
			atomic_store(&seg_chunk(s, c[i].chunk)->pos, c[i].cpos);
		}
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt pool position %llu (entry 0x%016llx)",
		         (unsigned long long)c[i].pos, (unsigned long long)entry);
		expect_eproto(qname, c[i].what, want);
		remake();
	}

	/* LIFO: capacity 4, one message sent: the stack holds chunks 0, 1, 2 at
	 * positions 0, 1, 2; chunk 3 is queued at ring position 0. */
	for (int k = 0; k < 3; k++) {
		size_t size;
		char want[96];
		mq_t *q = create_queue(qname, 4, MQ_LIFO_MIN_MSG);
		ck_assert_int_eq(mq_send(q, "big", 3, 0), 0);
		ck_assert_int_eq(mq_detach(q), 0);
		struct mq_shm *s = map_file(qname, &size);
		ck_assert_uint_eq(atomic_load(&s->ftail), 3);
		_Atomic uint64_t *pool = seg_pool(s);
		uint64_t entry = atomic_load(&pool[1]);
		ck_assert_uint_eq(entry, entry_make(1, 1));
		if (k == 0)
			atomic_store(&pool[1], entry = entry_make(1, 3)); /* the queued chunk */
		else if (k == 1)
			atomic_store(&seg_chunk(s, 1)->state,
			             MQ_CHUNK_STATE(MQ_CHUNK_WRITING, 0x201));
		else
			atomic_store(&seg_chunk(s, 1)->pos, 2);
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt pool position 1 (entry 0x%016llx)",
		         (unsigned long long)entry);
		expect_eproto(qname, "LIFO pool reference", want);
		remake();
	}
}
END_TEST

START_TEST(test_corrupt_requeue_reference)
{
	/* Capacity 8, 3 messages (chunks 0, 1, 2 at ring positions 0, 1, 2);
	 * the first two leased and nacked: requeue positions 0, 1 name chunks
	 * 0, 1 (REQUEUED there), the ring holds chunk 2. */
	static const struct {
		uint64_t pos;
		uint32_t chunk; /* new requeue entry, or UINT32_MAX */
		unsigned which;
		uint64_t state, cpos;
		const char *what;
	} c[] = {
	        {0, 2, 0, 0, 0, "entry names a QUEUED chunk"},
	        {1, 3, 0, 0, 0, "entry names a FREE chunk"},
	        {1, 8, 0, 0, 0, "entry names chunk 8 of 8"},
	        {0, 1, 0, 0, 0, "entry names the next position's chunk"},
	        {1, UINT32_MAX, 1, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0), 1, "requeued chunk freed"},
	        {0, UINT32_MAX, 0, MQ_CHUNK_STATE(MQ_CHUNK_HELD, 0x201), 0, "requeued chunk held"},
	        {1, UINT32_MAX, 1, MQ_CHUNK_STATE(MQ_CHUNK_REQUEUED, 0), 7, "at another position"},
	};
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		size_t size;
		char buf[64], want[96];
		mq_lease_t l1, l2;
		mq_t *q = create_queue(qname, 8, 64);
		for (int m = 0; m < 3; m++)
			ck_assert_int_eq(mq_send(q, "m", 1, 0), 0);
		ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &l1), 1);
		ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &l2), 1);
		ck_assert_int_eq(mq_nack(q, &l1), 0);
		ck_assert_int_eq(mq_nack(q, &l2), 0);
		ck_assert_int_eq(mq_detach(q), 0);
		struct mq_shm *s = map_file(qname, &size);
		_Atomic uint32_t *rq = seg_requeue(s);
		ck_assert_uint_eq(atomic_load(&s->rhead), 0);
		ck_assert_uint_eq(atomic_load(&s->rtail), 2);
		ck_assert_uint_eq(atomic_load(&rq[0]), 0);
		ck_assert_uint_eq(atomic_load(&rq[1]), 1);
		uint32_t named = atomic_load(&rq[c[i].pos]);
		if (c[i].chunk != UINT32_MAX) {
			atomic_store(&rq[c[i].pos], c[i].chunk);
			named = c[i].chunk;
		} else {
			atomic_store(&seg_chunk(s, c[i].which)->state, c[i].state);
			atomic_store(&seg_chunk(s, c[i].which)->pos, c[i].cpos);
		}
		unmap_segment(s, size);
		snprintf(want, sizeof(want), "corrupt requeue position %llu (chunk %u)",
		         (unsigned long long)c[i].pos, named);
		expect_eproto(qname, c[i].what, want);
		remake();
	}
}
END_TEST

/*
 * A lock holder that died mid-operation leaves its record (and its token in
 * the lock word): the references may not agree yet, and that is not
 * corruption. Here a sender died after committing ring position 2 and before
 * advancing tail and fhead: attach takes the queue, the message is delivered
 * once, and the next sender finishes the dead one's operation.
 */
START_TEST(test_dead_holders_record_is_not_corruption)
{
	size_t size;
	char buf[64];
	struct mq_shm *s = make_busy_fifo(0, 2, &size);
	uint64_t t = atomic_load(&s->tail), f = atomic_load(&s->fhead);
	ck_assert_uint_eq(t, 2);
	ck_assert_uint_eq(f, 2);
	uint64_t mask = s->ring_size - 1;
	uint64_t pe = atomic_load(&seg_pool(s)[f & mask]);
	uint32_t idx = (uint32_t)pe;
	struct mq_chunk *c = seg_chunk(s, idx);
	memcpy((unsigned char *)c + sizeof(*c), "orphan", 6);
	atomic_store(&c->len, 6);
	atomic_store(&c->id, t + 1);
	atomic_store(&c->pos, t);
	atomic_store(&c->deliveries, 0);
	atomic_store(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0));
	atomic_store(&seg_ring(s)[t & mask], entry_make(t, idx));
	/* The dead holder's token: entry 9 (free, its lock not held). */
	uint32_t dead = mq_token(10, atomic_load(&s->clients[9].gen));
	atomic_store(&s->send.intent.n, 1);
	atomic_store(&s->send.intent.pos, t);
	atomic_store(&s->send.intent.fpos, f);
	atomic_store(&s->send.intent.op, MQ_OP_SEND);
	atomic_store(&s->send.lock, dead);
	unmap_segment(s, size);

	mq_t *q = attach_ok(qname);
	struct mq_inspection in;
	ck_assert_int_eq(mq_inspect(q, &in), 0);
	ck_assert_uint_eq(in.send_lock.word, dead);
	ck_assert_int_eq(in.send_lock.holder_alive, 0);
	ck_assert_uint_eq(in.send_lock.op, MQ_OP_SEND);
	ck_assert_int_eq(in.sound, 0); /* reported, not refused */
	ck_assert_detail_has(in.problem, "the send lock is held by");

	for (int i = 0; i < 2; i++) {
		int n = snprintf(buf, sizeof(buf), "message %d", i);
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), n);
	}
	ck_assert_int_eq(mq_send(q, "after", 5, 1000), 0); /* takes the lock over */
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 6);
	ck_assert_mem_eq(buf, "orphan", 6);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 5);
	ck_assert_mem_eq(buf, "after", 5);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	struct mq_stats st = get_stats(q);
	ck_assert_uint_eq(st.enqueued_total, 4);
	ck_assert_uint_eq(st.lock_repairs_total, 1);
	ck_assert_uint_eq(st.depth, 0);
	ck_assert_int_eq(mq_inspect(q, &in), 0);
	ck_assert_msg(in.sound, "not sound after the repair: %s", in.problem);
	ck_assert_uint_eq(in.chunks_free, 8);
	ck_assert_int_eq(mq_detach(q), 0);
	q = attach_ok(qname);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/* The geometry is copied at attach: a process that rewrites it in the segment
 * afterwards cannot make this one address memory outside the mapping; the
 * calls that look at the header report it. */
START_TEST(test_geometry_rewritten_after_attach)
{
	char buf[64];
	mq_t *q = create_queue(qname, 4, 32);
	size_t size;
	struct mq_shm *s = map_file(qname, &size);
	s->chunk_size = UINT64_C(1) << 32;
	s->capacity = UINT64_C(1) << 40;
	s->max_msg = UINT64_C(1) << 40;
	s->chunks_offset = UINT64_C(1) << 36;
	s->ring_size = UINT64_C(1) << 20;
	s->geometry_check = segment_geometry_check(s);
	for (int i = 0; i < 8; i++) {
		errno = 0;
		ck_assert_int_eq(mq_send(q, "abcd", 4, 0), i < 4 ? 0 : -1);
		if (i >= 4)
			ck_assert_int_eq(errno, EAGAIN);
	}
	errno = 0;
	ck_assert_int_eq(mq_send(q, buf, 33, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(get_stats(q).capacity, 4);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 4);

	struct mq_inspection in;
	errno = 0;
	ck_assert_int_eq(mq_inspect(q, &in), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_detail_has(mq_errdetail(), "its header was overwritten");
	/* A waiter looks at the header between its sleep slices: damage, not
	 * "empty" for the whole timeout. */
	double t0 = now_ms();
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 5000), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_double_lt(now_ms() - t0, 4000);
	munmap(s, size);
	mq_detach(q);
	expect_eproto(qname, "rewritten geometry", "corrupt geometry");
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* Another process truncates the file under an attached handle: the SIGBUS
 * guard turns the fault into EPROTO on that handle, never a crash. */
START_TEST(test_truncated_under_attached_handle)
{
	char buf[64];
	mq_t *q = create_queue(qname, 4, 32);
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), 0);
	/* Only the first page is left: the ring and the chunks are gone. */
	ck_assert_int_eq(truncate(qpath, 4096), 0);

	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EPROTO);
	errno = 0;
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_detail_has(mq_errdetail(), "shrank");
	struct mq_stats st;
	errno = 0;
	ck_assert_int_eq(mq_stats(q, &st), -1);
	ck_assert_int_eq(errno, EPROTO);
	struct mq_inspection in;
	errno = 0;
	ck_assert_int_eq(mq_inspect(q, &in), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_int_eq(mq_detach(q), 0);
	expect_eproto(qname, "truncated to one page", "truncated: 4096 bytes, smaller than");
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* Truncated inside a page: the rest of that page reads as zeros (no SIGBUS),
 * so the queue looks empty; a waiter still finds out between its sleep
 * slices, long before its timeout. */
START_TEST(test_truncated_inside_a_page_found_by_waiter)
{
	char buf[64];
	mq_t *q = create_queue(qname, 4, 32);
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), 0);
	ck_assert_int_eq(truncate(qpath, (off_t)sizeof(struct mq_shm)), 0);
	double t0 = now_ms();
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 10000), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_double_lt(now_ms() - t0, 5000);
	ck_assert_detail_has(mq_errdetail(), "truncated by another process");
	errno = 0;
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* ---------------------------------------------------------- known libmq bugs */

/*
 * Each test here fails with the libmq of commit 1d79310 (layout 2); the
 * comment says what is wrong. They assert what the contract (DESIGN.md,
 * libmq.h) promises.
 */

/*
 * BUG 1: a layout-1 queue smaller than the layout-2 header (33664 bytes) is
 * called "truncated" instead of "made by an older libmq": segment_validate
 * looks at the file size before the magic and version. A default layout-1
 * queue is 4 MiB, but any with capacity x slot below 16 KiB (e.g. 8 x 64, or
 * mqctl's small test queues) gets the misleading message, and the advice to
 * run 'mqbroker' to move its messages is lost.
 */
START_TEST(test_bug_small_version_1_file_called_truncated)
{
	size_t len;
	unsigned char *img = v1_image(8, 64, &len);
	ck_assert_uint_lt(len, sizeof(struct mq_shm));
	write_file(qpath, img, len);
	free(img);
	expect_eproto(qname, "small layout 1 file",
	              "layout version 1, this libmq reads version 3 (made by an older libmq, 0.1");
	ck_assert_detail_has(refused_detail, "made by an older libmq");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/*
 * BUG 2: a chunk that no reference names (here: FREE, but the pool entry
 * that held it overwritten with a stale one, ftail pulled back over it) is
 * not noticed: mq_attach takes the quiet segment, mq_inspect calls it sound,
 * and mq_send says "queue full (4 messages)" at depth 3 -- damage taken for
 * "full", and a blocking send waits out its timeout (ETIMEDOUT). The
 * validator checks every reference against its chunk, but not that every
 * chunk is referenced.
 */
START_TEST(test_bug_unreferenced_chunk_taken_for_full)
{
	size_t size;
	struct mq_shm *s = make_segment(qname, 4, 16, &size);
	uint64_t mask = s->ring_size - 1;
	atomic_store(&seg_pool(s)[3], ((uint64_t)(uint32_t)(3 - mask) << 32) | UINT32_MAX);
	atomic_store(&s->ftail, 3);
	unmap_segment(s, size);

	errno = 0;
	mq_t *q = mq_attach(qname);
	if (q) {
		struct mq_inspection in;
		ck_assert_int_eq(mq_inspect(q, &in), 0);
		int sends = 0;
		while (sends < 5 && mq_send(q, "x", 1, 0) == 0)
			sends++;
		int err = errno;
		struct mq_stats st = get_stats(q);
		mq_detach(q);
		ck_assert_msg(0,
		              "a segment whose chunk 3 is referenced by nothing was accepted; "
		              "mq_inspect says sound=%d, %d sends went in, then errno %d (%s) at "
		              "depth %llu of %llu",
		              in.sound, sends, err, strerror(err), (unsigned long long)st.depth,
		              (unsigned long long)st.capacity);
	}
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_detail_has(mq_errdetail(), "chunk 3");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/*
 * BUG 3: mq_send with timeout 0 waits forever for a send lock whose word
 * names a live token that does not hold it (a scribble, or the word of a
 * holder whose entry was reused). lock_take gets no deadline for timeout 0
 * (call_start leaves it NULL), and a token that is live never gets taken
 * over. libmq.h: "0 never waits for space (only, at most, for the
 * microseconds another sender holds the queue's send lock)"; DESIGN.md: a
 * scribble must never make a process hang past its timeout. The same wedge
 * with the receive lock hangs mq_recv(..., 0). Here the live token is the
 * caller's own (the word is forged with it): the child must come back
 * within 2 s.
 */
START_TEST(test_bug_timeout_0_hangs_on_forged_lock_word)
{
	for (int side = 0; side < 2; side++) {
		mq_t *q = create_queue(qname, 4, 16);
		ck_assert_int_eq(mq_send(q, "m", 1, 0), 0);
		struct mq *h = q;
		pid_t pid = fork_child();
		if (pid == 0) {
			mq_t *c = mq_attach(qname);
			if (!c)
				_exit(3);
			struct mq *ch = c;
			_Atomic uint32_t *w = side ? &ch->shm->recv.lock : &ch->shm->send.lock;
			atomic_store(w, ch->token);
			signal(SIGALRM, SIG_DFL); /* not check's handler */
			alarm(2);
			char buf[16];
			int rc =
			        side ? (int)mq_recv(c, buf, sizeof(buf), 0) : mq_send(c, "x", 1, 0);
			_exit(rc == 0 || rc == 1 || errno == EAGAIN || errno == EPROTO ||
			                      errno == ETIMEDOUT
			              ? 0
			              : 4);
		}
		int code = wait_child(pid);
		ck_assert_msg(code != 1000 + SIGALRM,
		              "%s with timeout 0 still waited for the %s lock after 2 s",
		              side ? "mq_recv" : "mq_send", side ? "receive" : "send");
		ck_assert_int_eq(code, 0);
		(void)h;
		ck_assert_int_eq(mq_detach(q), 0);
		ck_assert_int_eq(mq_remove(qname), 0);
	}
}
END_TEST

/*
 * BUG 4: a sender killed inside mq_send_batch of more messages than the
 * queue's capacity leaves the queue damaged for good. send_fifo records
 * n = the batch size in its intent; repair_send refuses a record with
 * n > capacity ("the send side's record of an unfinished send does not fit"), and the record stays,
 * so every later sender gets EPROTO. The state below is exactly what a
 * SIGKILL right after intent_begin in send_fifo leaves for
 * mq_send_batch(q, msgs, 8, 0) on a full queue of capacity 2 (the lock word
 * naming the dead sender, the record, nothing else changed).
 */
START_TEST(test_bug_killed_batch_sender_damages_queue)
{
	char buf[16];
	mq_t *q = create_queue(qname, 2, 16);
	ck_assert_int_eq(mq_send(q, "a", 1, 0), 0);
	ck_assert_int_eq(mq_send(q, "b", 1, 0), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	size_t size;
	struct mq_shm *s = map_file(qname, &size);
	uint32_t dead = mq_token(10, atomic_load(&s->clients[9].gen));
	atomic_store(&s->send.intent.n, 8);
	atomic_store(&s->send.intent.pos, atomic_load(&s->tail));
	atomic_store(&s->send.intent.fpos, atomic_load(&s->fhead));
	atomic_store(&s->send.intent.op, MQ_OP_SEND);
	atomic_store(&s->send.lock, dead);
	unmap_segment(s, size);

	q = attach_ok(qname);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 1);
	int rc = mq_send(q, "c", 1, 1000);
	ck_assert_msg(rc == 0, "mq_send after a batch sender died: errno %d (%s)", errno,
	              mq_errdetail());
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/*
 * BUG 5: damage the data path finds is reported as "empty" or "full".
 * ops.h defines OP_DAMAGED as UINT32_MAX, the same value message_at,
 * next_message, pool_peek_fifo, pool_top_lifo, pool_pop_lifo and
 * reserve_fifo return for "nothing there"; so recv_fifo, recv_lifo,
 * send_lifo, take_leased and mq_reserve take every EPROTO they detect for
 * an empty queue or a full pool. Here a queued chunk's length is scribbled
 * past max_msg after attach: mq_recv(..., 0) says EAGAIN ("queue empty")
 * with one message queued, and with a timeout it spins at full CPU until
 * ETIMEDOUT (ready_message says "there is one", the take says "none").
 * Expected: EPROTO, the message left where it is (it is: restoring the
 * length makes it receivable).
 */
START_TEST(test_bug_damage_reported_as_empty)
{
	char buf[64];
	mq_lease_t lease;
	size_t len;
	mq_t *q = create_queue(qname, 4, 32);
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), 0);

	size_t size;
	struct mq_shm *s = map_file(qname, &size);
	struct mq_chunk *c = seg_chunk(s, 0);
	ck_assert_uint_eq(atomic_load(&c->state), MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0));
	atomic_store(&c->len, 33);

	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_detail_has(mq_errdetail(), "damaged: chunk 0 holds 33 bytes, the maximum is 32");
	errno = 0;
	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &lease), -1);
	ck_assert_int_eq(errno, EPROTO);
	errno = 0;
	ck_assert_ptr_null(mq_peek(q, &len, 0, &lease));
	ck_assert_int_eq(errno, EPROTO);
	struct iovec iov = {buf, sizeof(buf)};
	errno = 0;
	ck_assert_int_eq(mq_recv_batch(q, &iov, 1, 0), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_uint_eq(get_stats(q).depth, 1);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 300), -1);
	ck_assert_int_eq(errno, EPROTO);

	atomic_store(&c->len, 3);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "abc", 3);
	munmap(s, size);
	mq_detach(q);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* BUG 5, the sending side: a pool entry scribbled after attach (it names a
 * queued chunk) makes mq_send say "queue full" instead of EPROTO. */
START_TEST(test_bug_damage_reported_as_full)
{
	mq_t *q = create_queue(qname, 4, 32);
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), 0);
	size_t size;
	struct mq_shm *s = map_file(qname, &size);
	uint64_t f = atomic_load(&s->fhead), mask = s->ring_size - 1;
	ck_assert_uint_eq(f, 1);
	atomic_store(&seg_pool(s)[f & mask], entry_make(f, 0)); /* chunk 0 is queued */
	errno = 0;
	ck_assert_int_eq(mq_send(q, "def", 3, 0), -1);
	ck_assert_msg(errno == EPROTO, "mq_send over a scribbled pool: errno %d (%s)", errno,
	              mq_errdetail());
	munmap(s, size);
	mq_detach(q);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/*
 * BUG 6: on an empty queue, mq_recv_lease and mq_peek with timeout 0 return
 * -1 without setting errno (not EAGAIN): take_leased's "if (idx ==
 * OP_DAMAGED) return errno = err, -1" runs for "empty" too (BUG 5's cause).
 * On a full queue mq_reserve returns NULL at once with errno unset, whatever
 * the timeout (same cause): it neither says EAGAIN nor waits.
 */
START_TEST(test_bug_lease_and_reserve_errno)
{
	static const size_t maxes[] = {64, MQ_LIFO_MIN_MSG};
	for (size_t i = 0; i < 2; i++) {
		static char buf[MQ_LIFO_MIN_MSG];
		mq_lease_t lease;
		size_t len;
		mq_t *q = create_queue(qname, 2, maxes[i]);
		errno = 0;
		ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &lease), -1);
		ck_assert_msg(errno == EAGAIN, "mq_recv_lease on an empty queue: errno %d", errno);
		errno = 0;
		ck_assert_ptr_null(mq_peek(q, &len, 0, &lease));
		ck_assert_msg(errno == EAGAIN, "mq_peek on an empty queue: errno %d", errno);
		ck_assert_int_eq(mq_send(q, "a", 1, 0), 0);
		ck_assert_int_eq(mq_send(q, "b", 1, 0), 0);
		errno = 0;
		ck_assert_ptr_null(mq_reserve(q, 1, 0));
		ck_assert_msg(errno == EAGAIN, "mq_reserve on a full queue: errno %d", errno);
		double t0 = now_ms();
		errno = 0;
		ck_assert_ptr_null(mq_reserve(q, 1, 200));
		ck_assert_msg(errno == ETIMEDOUT && now_ms() - t0 >= 150,
		              "mq_reserve(200 ms) on a full queue: errno %d after %.0f ms", errno,
		              now_ms() - t0);
		ck_assert_int_eq(mq_detach(q), 0);
		ck_assert_int_eq(mq_remove(qname), 0);
	}
}
END_TEST

/* ---------------------------------------------------------- stats and clients */

START_TEST(test_stats_fresh_queue)
{
	int64_t before = realtime_ns();
	mq_t *q = create_queue(qname, 5, 100);
	int64_t after = realtime_ns();
	struct mq_stats s = get_stats(q);

	ck_assert_uint_eq(s.capacity, 5);
	ck_assert_uint_eq(s.max_msg_size, 100);
	ck_assert_uint_eq(s.depth, 0);
	ck_assert_uint_eq(s.high_water, 0);
	ck_assert_uint_eq(s.enqueued_total, 0);
	ck_assert_uint_eq(s.dequeued_total, 0);
	ck_assert_uint_eq(s.bytes_enqueued_total, 0);
	ck_assert_uint_eq(s.bytes_dequeued_total, 0);
	ck_assert_uint_eq(s.blocked_sends_total, 0);
	ck_assert_uint_eq(s.blocked_recvs_total, 0);
	ck_assert_uint_eq(s.full_total, 0);
	ck_assert_uint_eq(s.empty_total, 0);
	ck_assert_uint_eq(s.recoveries_total, 0);
	ck_assert_uint_eq(s.lock_repairs_total, 0);
	ck_assert_uint_eq(s.clients, 1);
	ck_assert_uint_eq(s.producers, 0);
	ck_assert_uint_eq(s.consumers, 0);
	ck_assert_int_eq(s.broker_pid, 0);
	ck_assert_int_eq(s.broker_heartbeat_ns, 0);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.acked_total, 0);
	ck_assert_uint_eq(s.nacked_total, 0);
	ck_assert_uint_eq(s.redelivered_total, 0);
	ck_assert_int_ge(s.created_unix_ns, before - 1000000000);
	ck_assert_int_le(s.created_unix_ns, after + 1000000000);

	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_stats_count_traffic)
{
	char buf[128];
	memset(buf, 'x', sizeof(buf));
	mq_t *q = create_queue(qname, 4, 100);
	struct mq_stats s;

	/* 3 messages of 10, 20, 30 bytes. */
	for (int i = 1; i <= 3; i++)
		ck_assert_int_eq(mq_send(q, buf, 10 * i, 0), 0);
	s = get_stats(q);
	ck_assert_uint_eq(s.depth, 3);
	ck_assert_uint_eq(s.enqueued_total, 3);
	ck_assert_uint_eq(s.bytes_enqueued_total, 60);
	ck_assert_uint_eq(s.high_water, 3);
	ck_assert_uint_eq(s.dequeued_total, 0);
	ck_assert_uint_eq(s.producers, 1);
	ck_assert_uint_eq(s.consumers, 0);

	/* A rejected message counts nowhere. */
	errno = 0;
	ck_assert_int_eq(mq_send(q, buf, 101, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);

	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 10);
	s = get_stats(q);
	ck_assert_uint_eq(s.depth, 2);
	ck_assert_uint_eq(s.dequeued_total, 1);
	ck_assert_uint_eq(s.bytes_dequeued_total, 10);
	ck_assert_uint_eq(s.consumers, 1);
	ck_assert_uint_eq(s.enqueued_total, 3);

	/* Fill up (40, 50), then one send too many. */
	ck_assert_int_eq(mq_send(q, buf, 40, 0), 0);
	ck_assert_int_eq(mq_send(q, buf, 50, 0), 0);
	s = get_stats(q);
	ck_assert_uint_eq(s.depth, 4);
	ck_assert_uint_eq(s.high_water, 4);
	ck_assert_uint_eq(s.full_total, 0);
	errno = 0;
	ck_assert_int_eq(mq_send(q, buf, 1, 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	s = get_stats(q);
	ck_assert_uint_eq(s.full_total, 1);
	ck_assert_uint_eq(s.enqueued_total, 5);
	ck_assert_uint_eq(s.bytes_enqueued_total, 150);
	ck_assert_uint_eq(s.depth, 4);

	/* Drain, then one recv too many. */
	for (int i = 2; i <= 5; i++)
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 10 * i);
	s = get_stats(q);
	ck_assert_uint_eq(s.depth, 0);
	ck_assert_uint_eq(s.empty_total, 0);
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EAGAIN);
	s = get_stats(q);
	ck_assert_uint_eq(s.empty_total, 1);
	ck_assert_uint_eq(s.dequeued_total, 5);
	ck_assert_uint_eq(s.bytes_dequeued_total, 150);
	ck_assert_uint_eq(s.high_water, 4);
	ck_assert_uint_eq(s.blocked_recvs_total, 0);

	/* A recv that waits and times out is a blocked recv. */
	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 20), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	s = get_stats(q);
	ck_assert_uint_eq(s.blocked_recvs_total, 1);
	ck_assert_uint_ge(s.empty_total, 1);
	ck_assert_uint_eq(s.capacity, 4);
	ck_assert_uint_eq(s.max_msg_size, 100);

	/* So is a send that waits. */
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(mq_send(q, buf, 1, 0), 0);
	errno = 0;
	ck_assert_int_eq(mq_send(q, buf, 1, 20), -1);
	ck_assert_int_eq(errno, ETIMEDOUT);
	s = get_stats(q);
	ck_assert_uint_eq(s.blocked_sends_total, 1);
	ck_assert_uint_eq(s.full_total, 2);

	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* Leases: in flight while held, acked or nacked, redelivered; the zero-copy
 * and batch calls count like the copying ones. */
START_TEST(test_stats_leases_and_batches)
{
	char buf[64];
	mq_lease_t a, b;
	mq_t *q = create_queue(qname, 8, 64);
	struct iovec msgs[3] = {{(void *)"one", 3}, {(void *)"three", 5}, {(void *)"seven!!", 7}};
	ck_assert_int_eq(mq_send_batch(q, msgs, 3, 0), 3);
	void *r = mq_reserve(q, 10, 0);
	ck_assert_ptr_nonnull(r);
	memcpy(r, "zerocopy", 8);
	struct mq_stats s = get_stats(q);
	ck_assert_uint_eq(s.depth, 3);
	ck_assert_uint_eq(s.enqueued_total, 3);
	ck_assert_int_eq(mq_commit(q, r, 8), 0);
	s = get_stats(q);
	ck_assert_uint_eq(s.depth, 4);
	ck_assert_uint_eq(s.enqueued_total, 4);
	ck_assert_uint_eq(s.bytes_enqueued_total, 23);

	ck_assert_int_eq(mq_recv_lease(q, buf, sizeof(buf), 0, &a), 3);
	size_t len;
	const void *p = mq_peek(q, &len, 0, &b);
	ck_assert_ptr_nonnull(p);
	ck_assert_uint_eq(len, 5);
	ck_assert_mem_eq(p, "three", 5);
	s = get_stats(q);
	ck_assert_uint_eq(s.depth, 2);
	ck_assert_uint_eq(s.in_flight, 2);
	ck_assert_uint_eq(s.dequeued_total, 0);

	struct mq_client_info ci[2];
	sleep_ms(30);
	ck_assert_int_eq(mq_clients(q, ci, 2), 1);
	ck_assert_uint_eq(ci[0].in_flight, 2);
	ck_assert_int_ge(ci[0].oldest_lease_age_ns, 10 * 1000000);
	ck_assert_int_lt(ci[0].oldest_lease_age_ns, 10 * 1000000000LL);

	ck_assert_int_eq(mq_ack(q, &a), 0);
	ck_assert_int_eq(mq_nack(q, &b), 0);
	errno = 0;
	ck_assert_int_eq(mq_ack(q, &a), -1); /* settled already */
	ck_assert_int_eq(errno, EINVAL);
	s = get_stats(q);
	ck_assert_uint_eq(s.in_flight, 0);
	ck_assert_uint_eq(s.acked_total, 1);
	ck_assert_uint_eq(s.nacked_total, 1);
	ck_assert_uint_eq(s.dequeued_total, 1);
	ck_assert_uint_eq(s.bytes_dequeued_total, 3);
	ck_assert_uint_eq(s.depth, 3);
	ck_assert_int_eq(mq_clients(q, ci, 2), 1);
	ck_assert_uint_eq(ci[0].in_flight, 0);
	ck_assert_int_eq(ci[0].oldest_lease_age_ns, 0);
	ck_assert_uint_eq(ci[0].acked_total, 1);
	ck_assert_uint_eq(ci[0].nacked_total, 1);

	/* The nacked message comes first, then the rest in order. */
	char b0[64], b1[64], b2[64];
	struct iovec in[3] = {{b0, sizeof(b0)}, {b1, sizeof(b1)}, {b2, sizeof(b2)}};
	ck_assert_int_eq(mq_recv_batch(q, in, 3, 0), 1); /* a batch comes from one ring */
	ck_assert_uint_eq(in[0].iov_len, 5);
	ck_assert_mem_eq(b0, "three", 5);
	in[0].iov_len = in[1].iov_len = in[2].iov_len = 64;
	ck_assert_int_eq(mq_recv_batch(q, in, 3, 0), 2);
	ck_assert_uint_eq(in[0].iov_len, 7);
	ck_assert_mem_eq(b0, "seven!!", 7);
	ck_assert_uint_eq(in[1].iov_len, 8);
	ck_assert_mem_eq(b1, "zerocopy", 8);
	s = get_stats(q);
	ck_assert_uint_eq(s.depth, 0);
	ck_assert_uint_eq(s.redelivered_total, 1);
	ck_assert_uint_eq(s.dequeued_total, 4);
	ck_assert_uint_eq(s.bytes_dequeued_total, 23);
	ck_assert_uint_eq(s.high_water, 4);
	ck_assert_int_eq(mq_clients(q, ci, 2), 1);
	ck_assert_uint_eq(ci[0].sent_total, 4);
	ck_assert_uint_eq(ci[0].received_total, 4);
	ck_assert_uint_eq(ci[0].bytes_sent_total, 23);
	ck_assert_uint_eq(ci[0].bytes_received_total, 23);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_stats_roles_per_handle)
{
	char buf[16];
	mq_t *a = create_queue(qname, 4, 8);
	mq_t *b = attach_ok(qname);
	mq_t *c = attach_ok(qname);

	struct mq_stats s = get_stats(a);
	ck_assert_uint_eq(s.clients, 3);
	ck_assert_uint_eq(s.producers, 0);
	ck_assert_uint_eq(s.consumers, 0);

	/* A failed send does not make a producer. */
	errno = 0;
	ck_assert_int_eq(mq_send(b, buf, 9, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	ck_assert_uint_eq(get_stats(a).producers, 0);

	ck_assert_int_eq(mq_send(a, "1", 1, 0), 0);
	ck_assert_int_eq(mq_send(b, "2", 1, 0), 0);
	ck_assert_int_eq(mq_recv(c, buf, sizeof(buf), 0), 1);
	s = get_stats(c);
	ck_assert_uint_eq(s.clients, 3);
	ck_assert_uint_eq(s.producers, 2);
	ck_assert_uint_eq(s.consumers, 1);

	ck_assert_int_eq(mq_detach(b), 0);
	s = get_stats(a);
	ck_assert_uint_eq(s.clients, 2);
	ck_assert_uint_eq(s.producers, 1);
	ck_assert_uint_eq(s.consumers, 1);

	ck_assert_int_eq(mq_detach(c), 0);
	s = get_stats(a);
	ck_assert_uint_eq(s.clients, 1);
	ck_assert_uint_eq(s.producers, 1);
	ck_assert_uint_eq(s.consumers, 0);

	ck_assert_int_eq(mq_detach(a), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* An observer reads the same figures and is not a client. */
START_TEST(test_stats_observer_is_not_a_client)
{
	mq_t *a = create_queue(qname, 4, 8);
	ck_assert_int_eq(mq_send(a, "1", 1, 0), 0);
	mq_t *o = mq_observe(qname);
	ck_assert_ptr_nonnull(o);
	struct mq_stats sa = get_stats(a), so = get_stats(o);
	ck_assert_uint_eq(so.clients, 1);
	ck_assert_uint_eq(so.producers, 1);
	ck_assert_uint_eq(so.depth, sa.depth);
	ck_assert_uint_eq(so.enqueued_total, 1);
	ck_assert_int_eq(so.created_unix_ns, sa.created_unix_ns);
	struct mq_client_info ci[4];
	ck_assert_int_eq(mq_clients(o, ci, 4), 1);
	ck_assert_int_eq(ci[0].pid, getpid());
	ck_assert_int_eq(mq_detach(o), 0);
	ck_assert_int_eq(mq_clients(a, ci, 4), 1);

	mq_t *created = mq_create_observed(qname, 4, 8, 0600);
	ck_assert_ptr_null(created); /* exists */
	char other[64];
	new_name(other, "obs");
	created = mq_create_observed(other, 4, 8, 0600);
	ck_assert_ptr_nonnull(created);
	ck_assert_uint_eq(get_stats(created).clients, 0);
	ck_assert_int_eq(mq_clients(created, NULL, 0), 0);
	ck_assert_int_eq(mq_detach(created), 0);
	ck_assert_int_eq(mq_remove(other), 0);
	ck_assert_int_eq(mq_detach(a), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

static const struct mq_client_info *find_client(const struct mq_client_info *ci, int n, pid_t pid)
{
	for (int i = 0; i < n; i++)
		if (ci[i].pid == pid)
			return &ci[i];
	return NULL;
}

START_TEST(test_clients_lists_self)
{
	char buf[64];
	struct mq_client_info ci[8];
	int64_t before = realtime_ns();
	mq_t *q = create_queue(qname, 8, 64);
	int64_t after = realtime_ns();

	ck_assert_int_eq(mq_send(q, "aaaa", 4, 0), 0);
	ck_assert_int_eq(mq_send(q, "bbbbbb", 6, 0), 0);
	ck_assert_int_eq(mq_send(q, "cc", 2, 0), 0);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 4);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 6);

	memset(ci, 0, sizeof(ci));
	int n = mq_clients(q, ci, 8);
	ck_assert_int_eq(n, 1);
	const struct mq_client_info *me = find_client(ci, n, getpid());
	ck_assert_ptr_nonnull(me);
	ck_assert_int_eq(me->alive, 1);
	ck_assert_uint_eq(me->role, MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER);
	ck_assert_uint_eq(me->sent_total, 3);
	ck_assert_uint_eq(me->received_total, 2);
	ck_assert_uint_eq(me->bytes_sent_total, 12);
	ck_assert_uint_eq(me->bytes_received_total, 10);
	ck_assert_uint_eq(me->in_flight, 0);
	ck_assert_int_ge(me->attached_unix_ns, before - 1000000000);
	ck_assert_int_le(me->attached_unix_ns, after + 1000000000);

	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_clients_count_and_truncation)
{
	struct mq_client_info ci[4];
	mq_t *a = create_queue(qname, 4, 8);
	mq_t *b = attach_ok(qname);
	ck_assert_int_eq(mq_send(b, "x", 1, 0), 0);

	memset(ci, 0x5a, sizeof(ci));
	ck_assert_int_eq(mq_clients(a, ci, 1), 2); /* returns how many exist */
	ck_assert_int_eq(ci[0].pid, getpid());
	unsigned char pattern[sizeof(ci[1])];
	memset(pattern, 0x5a, sizeof(pattern));
	ck_assert_msg(memcmp(&ci[1], pattern, sizeof(pattern)) == 0,
	              "mq_clients wrote beyond N entries");

	memset(ci, 0, sizeof(ci));
	ck_assert_int_eq(mq_clients(a, ci, 4), 2);
	int producers = 0;
	for (int i = 0; i < 2; i++) {
		ck_assert_int_eq(ci[i].pid, getpid());
		ck_assert_int_eq(ci[i].alive, 1);
		producers += (ci[i].role & MQ_ROLE_PRODUCER) != 0;
		ck_assert_uint_eq(ci[i].role & MQ_ROLE_CONSUMER, 0);
	}
	ck_assert_int_eq(producers, 1);

	ck_assert_int_eq(mq_detach(b), 0);
	ck_assert_int_eq(mq_clients(a, ci, 4), 1); /* a detached client's entry is free */
	ck_assert_int_eq(mq_detach(a), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/*
 * A child attaches, sends one message and dies without mq_detach: by SIGKILL
 * (loop 0) or by _exit(0) (loop 1). The survivors' view must stop counting it.
 */
START_TEST(test_clients_dead_client_detected)
{
	int sync_pipe[2], go_pipe[2];
	char c;
	mq_t *q = create_queue(qname, 4, 16);
	ck_assert_int_eq(pipe(sync_pipe), 0);
	ck_assert_int_eq(pipe(go_pipe), 0);

	pid_t pid = fork_child();
	if (pid == 0) {
		close(sync_pipe[0]);
		close(go_pipe[1]);
		mq_t *cq = mq_attach(qname);
		if (cq == NULL || mq_send(cq, "orphan", 6, 0) != 0)
			_exit(20);
		if (write(sync_pipe[1], "a", 1) != 1 || read(go_pipe[0], &c, 1) != 1)
			_exit(21);
		if (_i == 0)
			raise(SIGKILL);
		_exit(0);
	}
	close(sync_pipe[1]);
	close(go_pipe[0]);
	ck_assert_int_eq(read(sync_pipe[0], &c, 1), 1);

	struct mq_stats s = get_stats(q);
	ck_assert_uint_eq(s.clients, 2);
	ck_assert_uint_eq(s.producers, 1);
	struct mq_client_info ci[8];
	int n = mq_clients(q, ci, 8);
	ck_assert_int_eq(n, 2);
	const struct mq_client_info *child = find_client(ci, n, pid);
	ck_assert_ptr_nonnull(child);
	ck_assert_int_eq(child->alive, 1);
	ck_assert_uint_eq(child->sent_total, 1);

	ck_assert_int_eq(write(go_pipe[1], "g", 1), 1);
	int code = wait_child(pid);
	ck_assert_int_eq(code, _i == 0 ? 1000 + SIGKILL : 0);
	close(sync_pipe[0]);
	close(go_pipe[1]);

	/* Liveness is re-checked by mq_stats / mq_clients: allow a little time. */
	double t0 = now_ms();
	do {
		s = get_stats(q);
		if (s.clients == 1)
			break;
		sleep_ms(10);
	} while (now_ms() - t0 < 5000);
	ck_assert_uint_eq(s.clients, 1);
	ck_assert_uint_eq(s.producers, 0);
	ck_assert_uint_eq(s.consumers, 0);

	n = mq_clients(q, ci, 8);
	ck_assert_int_ge(n, 1);
	ck_assert_int_le(n, 2);
	child = find_client(ci, n, pid);
	if (child != NULL) {
		ck_assert_int_eq(child->alive, 0);
		ck_assert_uint_eq(child->sent_total, 1);
	}
	const struct mq_client_info *me = find_client(ci, n, getpid());
	ck_assert_ptr_nonnull(me);
	ck_assert_int_eq(me->alive, 1);

	/* A new client sees the same, and the dead client's message is still there. */
	mq_t *q2 = attach_ok(qname);
	n = mq_clients(q2, ci, 8);
	child = find_client(ci, n, pid);
	ck_assert_msg(child == NULL || child->alive == 0, "dead child still listed alive");
	ck_assert_uint_eq(get_stats(q2).clients, 2);
	char buf[16];
	ck_assert_int_eq(mq_recv(q2, buf, sizeof(buf), 0), 6);
	ck_assert_mem_eq(buf, "orphan", 6);

	ck_assert_int_eq(mq_detach(q2), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* ---------------------------------------------------------------- errdetail */

static void *errdetail_thread(void *arg)
{
	const char **out = arg;
	*out = strdup(mq_errdetail());
	return NULL;
}

START_TEST(test_errdetail_per_thread)
{
	/* A failure in this thread... */
	errno = 0;
	ck_assert_ptr_null(mq_attach(qname));
	ck_assert_int_eq(errno, ENOENT);
	ck_assert_str_ne(mq_errdetail(), "");

	/* ...is not another thread's last failure. */
	const char *other = NULL;
	pthread_t t;
	ck_assert_int_eq(pthread_create(&t, NULL, errdetail_thread, &other), 0);
	ck_assert_int_eq(pthread_join(t, NULL), 0);
	ck_assert_ptr_nonnull(other);
	ck_assert_str_eq(other, "");
	free((void *)other);

	ck_assert_detail_has(mq_errdetail(), qname + 1);
	ck_assert_ptr_null(strchr(mq_errdetail(), '\n'));
}
END_TEST

START_TEST(test_errdetail_names_bad_geometry)
{
	errno = 0;
	ck_assert_ptr_null(mq_create(qname, 0, 16, 0600));
	ck_assert_int_eq(errno, EINVAL);
	const char *d = mq_errdetail();
	ck_assert_str_ne(d, "");
	ck_assert_detail_has(d, qname + 1);
	ck_assert_detail_has(d, "capacity 0");
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

static Suite *segment_suite(void)
{
	Suite *s = suite_create("segment");
	TCase *tc;

	tc = new_tcase(s, "lifecycle");
	tcase_add_test(tc, test_create_attach_detach_remove);
	tcase_add_test(tc, test_create_mode_exact_umask_ignored);
	tcase_add_test(tc, test_remove_keeps_attached_mapping);
	tcase_add_test(tc, test_messages_survive_detach);
	tcase_add_test(tc, test_lease_given_back_at_detach);
	tcase_add_test(tc, test_attach_null_means_default_name);
	tcase_add_test(tc, test_second_create_is_eexist);
	tcase_add_test(tc, test_create_over_foreign_file_is_eexist);
	tcase_add_test(tc, test_create_killed_midway_leaves_nothing);
	tcase_add_test(tc, test_missing_queue_is_enoent);
	tcase_add_test(tc, test_longest_name_is_valid);
	tcase_add_test(tc, test_fifo_and_lifo_geometry);
	tcase_add_test(tc, test_young_file_published_during_wait);

	tc = new_tcase(s, "bad_input");
	tcase_add_test(tc, test_bad_names_are_einval);
	tcase_add_test(tc, test_bad_geometry_is_einval);
	tcase_add_test(tc, test_huge_geometry_fails_cleanly);
	tcase_add_test(tc, test_null_handles_are_einval);
	tcase_add_test(tc, test_permission_denied_is_eacces);
	tcase_add_test(tc, test_client_table_full_is_eusers);
	tcase_add_test(tc, test_world_writable_segment_refused);

	tc = new_tcase(s, "corrupt");
	tcase_add_test(tc, test_corrupt_zero_length_file);
	tcase_add_test(tc, test_corrupt_all_zero_file);
	tcase_add_test(tc, test_corrupt_truncated_file);
	tcase_add_test(tc, test_corrupt_grown_file);
	tcase_add_test(tc, test_corrupt_garbage_file);
	tcase_add_test(tc, test_corrupt_garbage_with_valid_magic);
	tcase_add_test(tc, test_corrupt_foreign_magic);
	tcase_add_test(tc, test_corrupt_other_version);
	tcase_add_test(tc, test_corrupt_version_1_file);
	tcase_add_test(tc, test_corrupt_geometry_checksum);
	tcase_add_test(tc, test_corrupt_geometry_fields);
	tcase_add_test(tc, test_corrupt_indices);
	tcase_add_test(tc, test_corrupt_requeue_indices);
	tcase_add_test(tc, test_corrupt_pool_indices);
	tcase_add_test(tc, test_corrupt_intent_op);
	tcase_add_test(tc, test_corrupt_client_table);
	tcase_add_test(tc, test_corrupt_chunk_states);
	tcase_add_test(tc, test_corrupt_ring_reference);
	tcase_add_test(tc, test_corrupt_pool_reference);
	tcase_add_test(tc, test_corrupt_requeue_reference);
	tcase_add_test(tc, test_dead_holders_record_is_not_corruption);
	tcase_add_test(tc, test_geometry_rewritten_after_attach);
	tcase_add_test(tc, test_truncated_under_attached_handle);
	tcase_add_test(tc, test_truncated_inside_a_page_found_by_waiter);

	tc = new_tcase(s, "stats");
	tcase_add_test(tc, test_stats_fresh_queue);
	tcase_add_test(tc, test_stats_count_traffic);
	tcase_add_test(tc, test_stats_leases_and_batches);
	tcase_add_test(tc, test_stats_roles_per_handle);
	tcase_add_test(tc, test_stats_observer_is_not_a_client);
	tcase_add_test(tc, test_clients_lists_self);
	tcase_add_test(tc, test_clients_count_and_truncation);
	tcase_add_loop_test(tc, test_clients_dead_client_detected, 0, 2);
	tcase_add_test(tc, test_errdetail_per_thread);
	tcase_add_test(tc, test_errdetail_names_bad_geometry);

	/* Known libmq bugs (see above): these fail until libmq is fixed. */
	tc = new_tcase(s, "libmq_bugs");
	tcase_add_test(tc, test_bug_small_version_1_file_called_truncated);
	tcase_add_test(tc, test_bug_unreferenced_chunk_taken_for_full);
	tcase_add_test(tc, test_bug_timeout_0_hangs_on_forged_lock_word);
	tcase_add_test(tc, test_bug_killed_batch_sender_damages_queue);
	tcase_add_test(tc, test_bug_damage_reported_as_empty);
	tcase_add_test(tc, test_bug_damage_reported_as_full);
	tcase_add_test(tc, test_bug_lease_and_reserve_errno);
	return s;
}

int main(void)
{
	registry_init();
	SRunner *sr = srunner_create(segment_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	registry_cleanup();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
