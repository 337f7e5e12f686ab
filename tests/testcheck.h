/*
 * testcheck.h - what the check suites share: a registry of the queue names
 * they make (so nothing is left in /dev/shm even when a test fails), time
 * helpers, and children that die with the test.
 *
 * Every queue name a test makes is recorded in memory shared with the runner
 * process: a failing check test exits at once (no teardown), so main() calls
 * registry_cleanup() to unlink whatever is left once all tests have run.
 */
#ifndef MQ_TESTCHECK_H
#define MQ_TESTCHECK_H

#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "testutil.h"

#define REGISTRY_MAX 1024
struct name_registry {
	_Atomic unsigned count;
	char names[REGISTRY_MAX][256];
};
static struct name_registry *registry;

/* registry_init: map the registry; call once in main() before the runner. */
static inline void registry_init(void)
{
	registry = mmap(NULL, sizeof(*registry), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	                -1, 0);
	if (registry == MAP_FAILED) {
		perror("mmap registry");
		exit(2);
	}
}

/* registry_add: remember NAME for registry_cleanup. */
static inline void registry_add(const char *name)
{
	unsigned i = atomic_fetch_add(&registry->count, 1);
	if (i < REGISTRY_MAX)
		snprintf(registry->names[i], sizeof(registry->names[i]), "%s", name);
}

/* registry_cleanup: unlink every queue name recorded (missing ones are fine). */
static inline void registry_cleanup(void)
{
	unsigned n = atomic_load(&registry->count);
	for (unsigned i = 0; i < n && i < REGISTRY_MAX; i++)
		if (registry->names[i][0])
			shm_unlink(registry->names[i]);
}

/* new_name: a unique queue name (BUF: 64 bytes), removed at exit whatever happens. */
static inline const char *new_name(char *buf, const char *tag)
{
	test_queue_name(buf, tag);
	registry_add(buf);
	return buf;
}

static inline double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static inline void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* fork_child: fork; the child dies with the test process (no strays). */
static inline pid_t fork_child(void)
{
	pid_t pid = fork();
	ck_assert_int_ne(pid, -1);
	if (pid == 0)
		prctl(PR_SET_PDEATHSIG, SIGKILL);
	return pid;
}

/* wait_child: the child's exit status, or 1000 + signal if it was killed. */
static inline int wait_child(pid_t pid)
{
	int st;
	pid_t r;
	while ((r = waitpid(pid, &st, 0)) == -1 && errno == EINTR)
		;
	ck_assert_int_eq(r, pid);
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 1000 + WTERMSIG(st);
}

#endif /* MQ_TESTCHECK_H */
