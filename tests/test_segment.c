/* test_segment.c - unit tests: queue lifecycle, bad input, corrupt segments, stats, clients. */
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
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libmq.h"
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

static struct mq_stats get_stats(mq_t *q)
{
	struct mq_stats s;
	memset(&s, 0xa5, sizeof(s));
	ck_assert_int_eq(mq_stats(q, &s), 0);
	return s;
}

/* ---------------------------------------------------------------- lifecycle */

START_TEST(test_create_attach_detach_remove)
{
	struct stat st;
	char buf[64];

	mq_t *q = create_queue(qname, 8, 64);
	ck_assert_int_eq(stat(qpath, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_int_ge(st.st_size, (off_t)(sizeof(struct mq_shm) + 8 * segment_slot_size(64)));

	mq_t *q2 = mq_attach(qname);
	ck_assert_msg(q2 != NULL, "mq_attach: %s (%s)", strerror(errno), mq_errdetail());
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
	static const mode_t modes[] = {0640, 0660, 0600, 0604};
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

	q = mq_attach(qname);
	ck_assert_ptr_nonnull(q);
	ck_assert_uint_eq(get_stats(q).depth, 2);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "one", 3);
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 3);
	ck_assert_mem_eq(buf, "two", 3);
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
		ck_assert_ptr_nonnull(strstr(mq_errdetail(), "messagequeue"));
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
	const char *d = mq_errdetail();
	ck_assert_ptr_nonnull(d);
	ck_assert_msg(strstr(d, qname + 1) != NULL, "mq_errdetail() \"%s\" does not name %s", d,
	              qname);

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
	mq_t *q2 = mq_attach(name);
	ck_assert_ptr_nonnull(q2);
	ck_assert_int_eq(mq_detach(q2), 0);
	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(name), 0);
	ck_assert_int_eq(stat(path, &st), -1);
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
	} bad[] = {
	        {0, 16, 0600},
	        {(size_t)MQ_CAPACITY_LIMIT + 1, 16, 0600},
	        {SIZE_MAX, 16, 0600},
	        {4, 0, 0600},
	        {4, (size_t)MQ_MAX_MSG_LIMIT + 1, 0600},
	        {4, SIZE_MAX, 0600},
	        {4, 16, 01777},
	        {4, 16, 04660},
	        {4, 16, 02660},
	        {4, 16, S_IFREG | 0600},
	        {4, 16, (mode_t)-1},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		errno = 0;
		mq_t *q = mq_create(qname, bad[i].capacity, bad[i].max_msg, bad[i].mode);
		int err = errno;
		if (q != NULL) {
			mq_detach(q);
			mq_remove(qname);
		}
		ck_assert_msg(q == NULL && err == EINVAL,
		              "mq_create(capacity %zu, max_msg %zu, mode %o): %p errno %d",
		              bad[i].capacity, bad[i].max_msg, (unsigned)bad[i].mode, (void *)q,
		              err);
		ck_assert_msg(access(qpath, F_OK) == -1, "case %zu left %s behind", i, qpath);
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
		errno = 0;
		if (mq_remove(qname) != -1)
			_exit(13);
		if (errno != EACCES)
			_exit(14);
		_exit(0);
	}
	int code = wait_child(pid);
	ck_assert_msg(code != 10, "could not drop privileges to 65534");
	ck_assert_msg(code != 11, "mq_attach of a 0600 root queue succeeded as uid 65534");
	ck_assert_msg(code != 12, "mq_attach as uid 65534: errno was not EACCES");
	ck_assert_msg(code != 13, "mq_remove of a root queue succeeded as uid 65534");
	ck_assert_msg(code != 14, "mq_remove as uid 65534: errno was not EACCES");
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
	ck_assert_msg(strstr(mq_errdetail(), qname + 1) != NULL, "mq_errdetail() \"%s\"",
	              mq_errdetail());

	/* A detach frees an entry for the next client. */
	ck_assert_int_eq(mq_detach(h[MQ_CLIENTS_MAX - 1]), 0);
	h[MQ_CLIENTS_MAX - 1] = mq_attach(qname);
	ck_assert_ptr_nonnull(h[MQ_CLIENTS_MAX - 1]);

	for (int i = MQ_CLIENTS_MAX - 1; i >= 0; i--)
		ck_assert_int_eq(mq_detach(h[i]), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

/* ---------------------------------------------------------- corrupt segments */

/*
 * expect_eproto: mq_attach(NAME) must refuse the file with EPROTO and a detail
 * naming the queue, and leave the file as it was.
 */
static void expect_eproto(const char *name, const char *what)
{
	char path[128];
	struct stat before, after;
	test_shm_path(path, name);
	ck_assert_int_eq(stat(path, &before), 0);

	double t0 = now_ms();
	errno = 0;
	mq_t *q = mq_attach(name);
	int err = errno;
	const char *d = mq_errdetail();
	char detail[512];
	snprintf(detail, sizeof(detail), "%s", d ? d : "(null)");
	double elapsed = now_ms() - t0;
	if (q != NULL)
		mq_detach(q);

	ck_assert_msg(q == NULL, "%s: mq_attach accepted the segment", what);
	ck_assert_msg(err == EPROTO, "%s: errno %d (%s), expected EPROTO; detail \"%s\"", what, err,
	              strerror(err), detail);
	ck_assert_msg(detail[0] != '\0', "%s: mq_errdetail() is empty", what);
	ck_assert_msg(strstr(detail, name + 1) != NULL,
	              "%s: mq_errdetail() \"%s\" does not name %s", what, detail, name);
	ck_assert_msg(strchr(detail, '\n') == NULL, "%s: mq_errdetail() is not one line", what);
	ck_assert_msg(elapsed < 5000, "%s: mq_attach took %.0f ms", what, elapsed);

	ck_assert_msg(stat(path, &after) == 0, "%s: the corrupt file was deleted", what);
	ck_assert_int_eq(after.st_size, before.st_size);
}

/* make_segment: create a valid queue, detach, and map its file for editing. */
static struct mq_shm *make_segment(const char *name, size_t capacity, size_t max_msg, size_t *size)
{
	char path[128];
	struct stat st;
	mq_t *q = create_queue(name, capacity, max_msg);
	ck_assert_int_eq(mq_detach(q), 0);

	test_shm_path(path, name);
	int fd = open(path, O_RDWR);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	void *p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(p, MAP_FAILED);
	close(fd);
	*size = st.st_size;

	struct mq_shm *s = p;
	ck_assert_uint_eq(atomic_load(&s->magic), MQ_MAGIC);
	ck_assert_uint_eq(s->version, MQ_LAYOUT_VERSION);
	ck_assert_uint_eq(s->capacity, capacity);
	ck_assert_uint_eq(s->max_msg, max_msg);
	return s;
}

static void unmap_segment(struct mq_shm *s, size_t size)
{
	ck_assert_int_eq(munmap(s, size), 0);
}

static void write_file(const char *path, const void *data, size_t len)
{
	int fd = open(path, O_CREAT | O_RDWR | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, data, len, 0), (ssize_t)len);
	close(fd);
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
	expect_eproto(qname, "zero-length file");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_all_zero_file)
{
	size_t size = segment_size(4, 64);
	ck_assert_uint_gt(size, sizeof(struct mq_shm));
	unsigned char *zero = calloc(1, size);
	ck_assert_ptr_nonnull(zero);
	write_file(qpath, zero, size);
	free(zero);
	/* A young all-zero file may be a creator at work: allowed to wait a little. */
	expect_eproto(qname, "all-zero file");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_truncated_file)
{
	size_t header = sizeof(struct mq_shm);
	size_t slot = segment_slot_size(64);
	size_t total = header + 4 * slot;
	struct {
		off_t size;
		const char *what;
	} cut[] = {
	        {100, "truncated to 100 bytes"},
	        {(off_t)header - 1, "truncated to header - 1"},
	        {(off_t)header, "truncated to the header alone"},
	        {(off_t)header + slot, "truncated to header + 1 slot"},
	        {(off_t)(total - slot), "truncated by one slot"},
	        {(off_t)(total - 1), "truncated by one byte"},
	};
	for (size_t i = 0; i < sizeof(cut) / sizeof(cut[0]); i++) {
		size_t size;
		struct mq_shm *s = make_segment(qname, 4, 64, &size);
		ck_assert_uint_eq(s->total_size, total);
		ck_assert_uint_ge(size, total);
		unmap_segment(s, size);
		ck_assert_int_eq(truncate(qpath, cut[i].size), 0);
		expect_eproto(qname, cut[i].what);
		ck_assert_int_eq(unlink(qpath), 0);
	}
}
END_TEST

START_TEST(test_corrupt_garbage_file)
{
	size_t size = segment_size(4, 64);
	unsigned char *junk = malloc(size);
	ck_assert_ptr_nonnull(junk);
	for (uint64_t seed = 1; seed <= 5; seed++) {
		fill_random(junk, size, seed * 0x9e3779b97f4a7c15u);
		write_file(qpath, junk, size);
		expect_eproto(qname, "random bytes");
		/* mq_remove deletes whatever is there under the name, corrupt or not. */
		ck_assert_int_eq(mq_remove(qname), 0);
		ck_assert_int_eq(access(qpath, F_OK), -1);
	}
	free(junk);
}
END_TEST

START_TEST(test_corrupt_garbage_with_valid_magic)
{
	size_t size = segment_size(4, 64);
	unsigned char *junk = malloc(size);
	ck_assert_ptr_nonnull(junk);
	fill_random(junk, size, 42);
	uint64_t magic = MQ_MAGIC;
	uint32_t version = MQ_LAYOUT_VERSION;
	memcpy(junk + offsetof(struct mq_shm, magic), &magic, sizeof(magic));
	memcpy(junk + offsetof(struct mq_shm, version), &version, sizeof(version));
	write_file(qpath, junk, size);
	free(junk);
	expect_eproto(qname, "random bytes behind a valid magic and version");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_foreign_magic)
{
	size_t size;
	struct mq_shm *s = make_segment(qname, 4, 64, &size);
	atomic_store(&s->magic, UINT64_C(0x0123456789abcdef));
	unmap_segment(s, size);
	expect_eproto(qname, "foreign magic");
	ck_assert_int_eq(unlink(qpath), 0);

	/* Off by one bit is just as foreign. */
	s = make_segment(new_name(qname, "seg"), 4, 64, &size);
	test_shm_path(qpath, qname);
	atomic_store(&s->magic, MQ_MAGIC ^ 1);
	unmap_segment(s, size);
	expect_eproto(qname, "magic with one bit flipped");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

START_TEST(test_corrupt_wrong_version)
{
	static const uint32_t versions[] = {0, MQ_LAYOUT_VERSION + 1, 0xffffffffu};
	for (size_t i = 0; i < sizeof(versions) / sizeof(versions[0]); i++) {
		size_t size;
		char what[64];
		struct mq_shm *s = make_segment(qname, 4, 64, &size);
		s->version = versions[i];
		unmap_segment(s, size);
		snprintf(what, sizeof(what), "layout version %u", versions[i]);
		expect_eproto(qname, what);
		ck_assert_int_eq(unlink(qpath), 0);
	}
}
END_TEST

START_TEST(test_corrupt_geometry_field_changed)
{
	/* Each field changed alone, geometry_check left as it was. */
	for (int field = 0; field < 6; field++) {
		size_t size;
		struct mq_shm *s = make_segment(qname, 8, 64, &size);
		const char *what = "";
		switch (field) {
		case 0:
			s->capacity = 4; /* still fits in the file */
			what = "capacity changed";
			break;
		case 1:
			s->max_msg = 32;
			what = "max_msg changed";
			break;
		case 2:
			s->slot_size += MQ_CACHELINE;
			what = "slot_size changed";
			break;
		case 3:
			s->total_size -= 1;
			what = "total_size changed";
			break;
		case 4:
			s->clients_max = 1;
			what = "clients_max changed";
			break;
		case 5:
			s->geometry_check ^= 0x10;
			what = "geometry_check changed";
			break;
		}
		unmap_segment(s, size);
		expect_eproto(qname, what);
		ck_assert_int_eq(unlink(qpath), 0);
	}
}
END_TEST

/* Geometry edited consistently (checksum recomputed) but not matching reality. */
START_TEST(test_corrupt_geometry_rechecked)
{
	for (int field = 0; field < 5; field++) {
		size_t size;
		struct mq_shm *s = make_segment(qname, 8, 64, &size);
		const char *what = "";
		switch (field) {
		case 0: /* twice the capacity: the file is too small */
			s->capacity = 16;
			s->total_size = s->slots_offset + 16 * s->slot_size;
			what = "capacity doubled beyond the file";
			break;
		case 1: /* slots too small for their payload */
			s->slot_size = sizeof(struct mq_slot);
			s->total_size = s->slots_offset + s->capacity * s->slot_size;
			what = "slot_size smaller than max_msg";
			break;
		case 2: /* slots overlapping the header */
			s->slots_offset = 64;
			s->total_size = s->slots_offset + s->capacity * s->slot_size;
			what = "slots_offset inside the header";
			break;
		case 3:
			s->header_size = 64;
			what = "header_size of another layout";
			break;
		case 4:
			s->capacity = 0;
			s->total_size = s->slots_offset;
			what = "capacity 0";
			break;
		}
		s->geometry_check = segment_geometry_check(s);
		unmap_segment(s, size);
		expect_eproto(qname, what);
		ck_assert_int_eq(unlink(qpath), 0);
	}
}
END_TEST

static void corrupt_indices(uint64_t head, uint64_t tail, const char *what)
{
	size_t size;
	struct mq_shm *s = make_segment(qname, 8, 64, &size);
	atomic_store(&s->head, head);
	atomic_store(&s->tail, tail);
	unmap_segment(s, size);
	expect_eproto(qname, what);
	ck_assert_int_eq(unlink(qpath), 0);
}

START_TEST(test_corrupt_indices)
{
	corrupt_indices(5, 3, "head after tail");
	corrupt_indices(0, 9, "tail - head > capacity");
	corrupt_indices(100, 109, "tail - head > capacity, both advanced");
	corrupt_indices(UINT64_MAX, 0, "head far after tail");
}
END_TEST

START_TEST(test_corrupt_indices_with_messages)
{
	/* A queue that holds messages: head 0, tail 3. */
	mq_t *q = create_queue(qname, 8, 64);
	for (int i = 0; i < 3; i++)
		ck_assert_int_eq(mq_send(q, "m", 1, 0), 0);
	ck_assert_int_eq(mq_detach(q), 0);

	int fd = open(qpath, O_RDWR);
	ck_assert_int_ge(fd, 0);
	uint64_t tail = 0, head = 4;
	ck_assert_int_eq(pread(fd, &tail, 8, offsetof(struct mq_shm, tail)), 8);
	ck_assert_uint_eq(tail, 3);
	ck_assert_int_eq(pwrite(fd, &head, 8, offsetof(struct mq_shm, head)), 8);
	close(fd);
	expect_eproto(qname, "head one past tail");
	ck_assert_int_eq(unlink(qpath), 0);
}
END_TEST

/* A slot whose recorded length exceeds max_msg: mq_recv refuses, never overreads. */
/* The geometry is copied at attach: a process that rewrites it in the segment
 * afterwards cannot make this one address memory outside the mapping. */
START_TEST(test_geometry_rewritten_after_attach)
{
	char buf[64];
	mq_t *q = create_queue(qname, 4, 32);
	int fd = open(qpath, O_RDWR);
	ck_assert_int_ge(fd, 0);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	struct mq_shm *s = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(s, MAP_FAILED);
	close(fd);
	s->slot_size = UINT64_C(1) << 32;
	s->capacity = UINT64_C(1) << 40;
	s->max_msg = UINT64_C(1) << 40;
	s->slots_offset = UINT64_C(1) << 36;
	for (int i = 0; i < 8; i++) {
		ck_assert_int_eq(mq_send(q, "abcd", 4, 0), i < 4 ? 0 : -1);
		if (i >= 4)
			ck_assert_int_eq(errno, EAGAIN);
	}
	ck_assert_int_eq(mq_send(q, buf, 33, 0), -1);
	ck_assert_int_eq(errno, EMSGSIZE);
	for (int i = 0; i < 4; i++)
		ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), 4);
	munmap(s, st.st_size);
	mq_detach(q);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_corrupt_slot_length_on_recv)
{
	char buf[64];
	mq_t *q = create_queue(qname, 4, 32);
	ck_assert_int_eq(mq_send(q, "abc", 3, 0), 0);

	int fd = open(qpath, O_RDWR);
	ck_assert_int_ge(fd, 0);
	struct stat st;
	ck_assert_int_eq(fstat(fd, &st), 0);
	struct mq_shm *s = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	ck_assert_ptr_ne(s, MAP_FAILED);
	close(fd);
	((struct mq_slot *)((unsigned char *)s + s->slots_offset))->len = UINT64_C(1) << 40;

	errno = 0;
	ck_assert_int_eq(mq_recv(q, buf, sizeof(buf), 0), -1);
	ck_assert_int_eq(errno, EPROTO);
	ck_assert_str_ne(mq_errdetail(), "");

	munmap(s, st.st_size);
	mq_detach(q);
	ck_assert_int_eq(mq_remove(qname), 0);
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

	ck_assert_int_eq(mq_detach(q), 0);
	ck_assert_int_eq(mq_remove(qname), 0);
}
END_TEST

START_TEST(test_stats_roles_per_handle)
{
	char buf[16];
	mq_t *a = create_queue(qname, 4, 8);
	mq_t *b = mq_attach(qname);
	mq_t *c = mq_attach(qname);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_nonnull(c);

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
	mq_t *b = mq_attach(qname);
	ck_assert_ptr_nonnull(b);
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
	mq_t *q2 = mq_attach(qname);
	ck_assert_ptr_nonnull(q2);
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

	ck_assert_msg(strstr(mq_errdetail(), qname + 1) != NULL, "detail \"%s\"", mq_errdetail());
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
	ck_assert_msg(strstr(d, qname + 1) != NULL, "detail \"%s\" does not name %s", d, qname);
}
END_TEST

static Suite *segment_suite(void)
{
	Suite *s = suite_create("segment");
	TCase *tc;

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup_name, teardown_name);
	tcase_add_unchecked_fixture(tc, NULL, registry_cleanup);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_create_attach_detach_remove);
	tcase_add_test(tc, test_create_mode_exact_umask_ignored);
	tcase_add_test(tc, test_remove_keeps_attached_mapping);
	tcase_add_test(tc, test_messages_survive_detach);
	tcase_add_test(tc, test_attach_null_means_default_name);
	tcase_add_test(tc, test_second_create_is_eexist);
	tcase_add_test(tc, test_create_over_foreign_file_is_eexist);
	tcase_add_test(tc, test_create_killed_midway_leaves_nothing);
	tcase_add_test(tc, test_missing_queue_is_enoent);
	tcase_add_test(tc, test_longest_name_is_valid);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_input");
	tcase_add_checked_fixture(tc, setup_name, teardown_name);
	tcase_add_unchecked_fixture(tc, NULL, registry_cleanup);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_bad_names_are_einval);
	tcase_add_test(tc, test_bad_geometry_is_einval);
	tcase_add_test(tc, test_huge_geometry_fails_cleanly);
	tcase_add_test(tc, test_null_handles_are_einval);
	tcase_add_test(tc, test_permission_denied_is_eacces);
	tcase_add_test(tc, test_client_table_full_is_eusers);
	suite_add_tcase(s, tc);

	tc = tcase_create("corrupt");
	tcase_add_checked_fixture(tc, setup_name, teardown_name);
	tcase_add_unchecked_fixture(tc, NULL, registry_cleanup);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_corrupt_zero_length_file);
	tcase_add_test(tc, test_corrupt_all_zero_file);
	tcase_add_test(tc, test_corrupt_truncated_file);
	tcase_add_test(tc, test_corrupt_garbage_file);
	tcase_add_test(tc, test_corrupt_garbage_with_valid_magic);
	tcase_add_test(tc, test_corrupt_foreign_magic);
	tcase_add_test(tc, test_corrupt_wrong_version);
	tcase_add_test(tc, test_corrupt_geometry_field_changed);
	tcase_add_test(tc, test_corrupt_geometry_rechecked);
	tcase_add_test(tc, test_corrupt_indices);
	tcase_add_test(tc, test_corrupt_indices_with_messages);
	tcase_add_test(tc, test_corrupt_slot_length_on_recv);
	tcase_add_test(tc, test_geometry_rewritten_after_attach);
	suite_add_tcase(s, tc);

	tc = tcase_create("stats");
	tcase_add_checked_fixture(tc, setup_name, teardown_name);
	tcase_add_unchecked_fixture(tc, NULL, registry_cleanup);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_stats_fresh_queue);
	tcase_add_test(tc, test_stats_count_traffic);
	tcase_add_test(tc, test_stats_roles_per_handle);
	tcase_add_test(tc, test_clients_lists_self);
	tcase_add_test(tc, test_clients_count_and_truncation);
	tcase_add_loop_test(tc, test_clients_dead_client_detected, 0, 2);
	tcase_add_test(tc, test_errdetail_per_thread);
	tcase_add_test(tc, test_errdetail_names_bad_geometry);
	suite_add_tcase(s, tc);
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
