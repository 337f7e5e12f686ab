/* testprog.h - the parent's harness of the multi-process test programs
 * (prog_*.c): the children it forks, the queue it creates, and a cleanup that
 * leaves neither behind on any way out (exit, SIGINT/SIGTERM/SIGHUP, the
 * deadline alarm). One harness per program: the state is static. */
#ifndef MQ_TESTPROG_H
#define MQ_TESTPROG_H

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "libmq.h"
#include "testutil.h"

#define TP_MAX_CHILDREN 16

static struct {
	const char *prog;            /* "prog_chaos": starts every message */
	pid_t parent;                /* the harness's process (children skip cleanup) */
	pid_t kids[TP_MAX_CHILDREN]; /* the running children, 0 in a free entry */
	char qname[64];              /* the test's queue, "" once removed */
	char shm_path[128];          /* its file, for the signal handler's unlink */
	mq_t *q;                     /* the parent's handle */
	const char *volatile phase;  /* what the parent is doing, for failure messages */
	const char *alarm_means;     /* what a SIGALRM says, e.g. "wedged: ..." */
} tp;

/* tp_kill_children: SIGKILL and reap every child still running (async-signal-safe). */
static void tp_kill_children(void)
{
	for (int i = 0; i < TP_MAX_CHILDREN; i++) {
		if (tp.kids[i] > 0) {
			kill(tp.kids[i], SIGKILL);
			waitpid(tp.kids[i], NULL, 0);
			tp.kids[i] = 0;
		}
	}
}

/* tp_cleanup: atexit path of the parent: no child and no /dev/shm object survives. */
static void tp_cleanup(void)
{
	if (getpid() != tp.parent)
		return;
	tp_kill_children();
	if (tp.q) {
		mq_detach(tp.q);
		tp.q = NULL;
	}
	if (tp.qname[0]) {
		mq_remove(tp.qname);
		tp.qname[0] = '\0';
	}
}

static void tp_write(const char *s)
{
	if (write(STDOUT_FILENO, s, strlen(s)) < 0) {
		/* nothing more to do */
	}
}

/* tp_on_signal: the deadline alarm fired or the parent was told to stop: kill
 * every child, remove the queue and fail (async-signal-safe). A child just exits. */
static void tp_on_signal(int sig)
{
	if (getpid() != tp.parent)
		_exit(9);
	tp_kill_children();
	if (tp.shm_path[0])
		unlink(tp.shm_path);
	tp_write(tp.prog);
	tp_write(": FAIL: ");
	tp_write(sig == SIGALRM ? tp.alarm_means : "stopped by a signal");
	if (tp.phase) {
		tp_write(", in phase: ");
		tp_write(tp.phase);
	}
	tp_write(" (all children SIGKILLed, queue removed)\n");
	_exit(1);
}

/* tp_child_setup: the start of every child: default signal actions (the
 * harness's handlers are the parent's), and death with the parent. */
static void tp_child_setup(void)
{
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != tp.parent)
		_exit(9);
}

/* tp_start: become the harness of PROG: a unique queue (name tagged TAG) of
 * CAPACITY messages of up to MAX_MSG bytes, cleanup on exit and on signals,
 * and a SIGALRM after DEADLINE_S seconds that fails the test, saying
 * ALARM_MEANS. Returns the parent's handle, or NULL (reported) on failure. */
static mq_t *tp_start(const char *prog, const char *tag, size_t capacity, size_t max_msg,
                      unsigned deadline_s, const char *alarm_means)
{
	tp.prog = prog;
	tp.alarm_means = alarm_means;
	tp.parent = getpid();
	test_queue_name(tp.qname, tag);
	test_shm_path(tp.shm_path, tp.qname);
	atexit(tp_cleanup);
	signal(SIGINT, tp_on_signal);
	signal(SIGTERM, tp_on_signal);
	signal(SIGHUP, tp_on_signal);
	signal(SIGALRM, tp_on_signal);
	alarm(deadline_s);
	tp.q = mq_create(tp.qname, capacity, max_msg, 0600);
	if (!tp.q) {
		fprintf(stderr, "%s: FAIL: mq_create(%s): %s (%s)\n", prog, tp.qname,
		        strerror(errno), mq_errdetail());
		tp.qname[0] = '\0';
	}
	return tp.q;
}

/* tp_now_s: CLOCK_MONOTONIC in seconds. */
static double tp_now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* tp_scale_factor: MQ_TEST_SCALE as a factor: a value >= 1 divides, one in
 * (0,1) multiplies (sanitizer builds run smaller). */
static double tp_scale_factor(void)
{
	const char *s = getenv("MQ_TEST_SCALE");
	if (!s || !*s)
		return 1.0;
	double v = strtod(s, NULL);
	if (!(v > 0))
		return 1.0;
	return v >= 1 ? 1.0 / v : v;
}

#endif /* MQ_TESTPROG_H */
