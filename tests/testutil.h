/* testutil.h - helpers shared by the tests: unique queue names, cleanup. */
#ifndef MQ_TESTUTIL_H
#define MQ_TESTUTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* test_queue_name: a queue name unique to this process and call, so test runs
 * can overlap. BUF needs 64 bytes. */
static inline const char *test_queue_name(char *buf, const char *tag)
{
	static unsigned counter;
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	snprintf(buf, 64, "/mqtest-%s-%d-%u-%ld", tag, (int)getpid(), counter++,
	         (long)(ts.tv_nsec % 100000));
	return buf;
}

/* test_shm_path: "/dev/shm" + NAME into BUF (128 bytes). */
static inline const char *test_shm_path(char *buf, const char *name)
{
	snprintf(buf, 128, "/dev/shm%s", name);
	return buf;
}

#endif /* MQ_TESTUTIL_H */
