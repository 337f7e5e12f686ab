/* harness.c - fork, pin, barrier, deadline and reaping of a run's processes; exit clean-up. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <mqueue.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

/* ---- control block and barrier ---- */

struct ctl *ctl_new(void)
{
	void *p = mmap(NULL, sizeof(struct ctl), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
	               -1, 0);
	return p == MAP_FAILED ? NULL : p; /* anonymous mappings come zeroed */
}

void ctl_free(struct ctl *ctl)
{
	if (ctl)
		munmap(ctl, sizeof(*ctl));
}

static void futex_wake_all(_Atomic uint32_t *w)
{
	/* Not FUTEX_PRIVATE: the word is shared between processes. */
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

int barrier_wait(struct ctl *ctl, unsigned n)
{
	uint32_t gen = atomic_load(&ctl->bar_gen);
	if (atomic_load(&ctl->abort))
		return -1;
	if (atomic_fetch_add(&ctl->bar_count, 1) + 1 == n) {
		/* Last to arrive: reset for the next use, stamp the start, open. */
		atomic_store(&ctl->bar_count, 0);
		atomic_store(&ctl->t0, now_ns());
		atomic_fetch_add(&ctl->bar_gen, 1);
		futex_wake_all(&ctl->bar_gen);
		return 0;
	}
	while (atomic_load(&ctl->bar_gen) == gen) {
		if (atomic_load(&ctl->abort))
			return -1;
		struct timespec ts = {0, 50 * 1000000L}; /* re-check abort now and then */
		syscall(SYS_futex, &ctl->bar_gen, FUTEX_WAIT, gen, &ts, NULL, 0);
	}
	return atomic_load(&ctl->abort) ? -1 : 0;
}

int child_fail(struct ctl *ctl, int idx, const char *fmt, ...)
{
	struct child_result *r = &ctl->res[idx];
	if (!r->failed) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(r->err, sizeof(r->err), fmt, ap);
		va_end(ap);
		r->failed = 1;
	}
	atomic_store(&ctl->abort, 1);
	atomic_fetch_add(&ctl->bar_gen, 1);
	futex_wake_all(&ctl->bar_gen);
	return -1;
}

int wait_count(struct ctl *ctl, _Atomic uint32_t *word, uint32_t n)
{
	while (atomic_load(word) < n) {
		if (atomic_load(&ctl->abort))
			return -1;
		nanosleep(&(struct timespec){0, 1000000L}, NULL);
	}
	return 0;
}

/* ---- children ---- */

static pid_t parent_pid;
static volatile sig_atomic_t n_kids;
static volatile pid_t kids[HARNESS_MAXPROC];

int harness_cpus(int cpu[2])
{
	cpu_set_t set;
	cpu[0] = cpu[1] = 0;
	if (sched_getaffinity(0, sizeof(set), &set) != 0)
		return 1;
	int found = 0;
	for (int i = 0; i < CPU_SETSIZE && found < 2; i++)
		if (CPU_ISSET(i, &set))
			cpu[found++] = i;
	if (found < 2)
		cpu[1] = cpu[0];
	return found < 2 ? 1 : 2;
}

int harness_cpu_allowed(int cpu)
{
	cpu_set_t set;
	return cpu >= 0 && cpu < CPU_SETSIZE && sched_getaffinity(0, sizeof(set), &set) == 0 &&
	       CPU_ISSET(cpu, &set);
}

static void kill_all(void)
{
	for (int i = 0; i < n_kids; i++)
		if (kids[i] > 0)
			kill(kids[i], SIGKILL);
}

/* reap_all: after kill_all, wait for every child (from a signal handler too). */
static void reap_all(void)
{
	for (int i = 0; i < n_kids; i++)
		if (kids[i] > 0)
			while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
				;
	n_kids = 0;
}

static void child_start(struct ctl *ctl, const struct proc *p, int idx, const sigset_t *mask)
{
	/* The parent's exit hooks and handlers are not ours: a child leaves
	 * with _exit and dies with its parent. */
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	sigprocmask(SIG_SETMASK, mask, NULL);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent_pid)
		_exit(3);
	n_kids = 0;
	if (p->cpu >= 0) {
		cpu_set_t set;
		CPU_ZERO(&set);
		CPU_SET(p->cpu, &set);
		if (sched_setaffinity(0, sizeof(set), &set) != 0) {
			child_fail(ctl, idx, "cannot pin to CPU %d: %s", p->cpu, strerror(errno));
			_exit(1);
		}
	}
	int rc = p->fn(ctl, idx, p->arg);
	_exit(rc ? 1 : 0);
}

static void describe_status(char *buf, size_t len, int st)
{
	if (WIFSIGNALED(st))
		snprintf(buf, len, "killed by signal %d (%s)", WTERMSIG(st),
		         strsignal(WTERMSIG(st)));
	else
		snprintf(buf, len, "exit status %d", WEXITSTATUS(st));
}

int harness_run(struct ctl *ctl, const struct proc *procs, int n, double deadline_s, char *err,
                size_t errlen)
{
	err[0] = '\0';
	if (n > HARNESS_MAXPROC) {
		snprintf(err, errlen, "too many processes (%d)", n);
		return -1;
	}
	sigset_t chld, old;
	sigemptyset(&chld);
	sigaddset(&chld, SIGCHLD);
	sigprocmask(SIG_BLOCK, &chld, &old);
	parent_pid = getpid();
	fflush(stdout);
	fflush(stderr);

	int status[HARNESS_MAXPROC] = {0};
	int done[HARNESS_MAXPROC] = {0};
	int started = 0, rc = 0;
	for (int i = 0; i < n; i++) {
		pid_t pid = fork();
		if (pid == 0)
			child_start(ctl, &procs[i], i, &old);
		if (pid < 0) {
			snprintf(err, errlen, "fork: %s", strerror(errno));
			atomic_store(&ctl->abort, 1);
			rc = -1;
			break;
		}
		kids[i] = pid;
		n_kids = ++started;
	}
	if (rc)
		kill_all();

	int64_t deadline = now_ns() + (int64_t)(deadline_s * 1e9);
	int left = started, killed = 0, first_bad = -1, timed_out = 0;
	while (left > 0) {
		int reaped = 0;
		for (int i = 0; i < started; i++) {
			if (done[i])
				continue;
			int st;
			pid_t w = waitpid(kids[i], &st, WNOHANG);
			if (w == 0)
				continue;
			if (w < 0 && errno == EINTR)
				continue;
			done[i] = 1;
			status[i] = w < 0 ? (127 << 8) : st;
			left--;
			reaped++;
			if (!(WIFEXITED(status[i]) && WEXITSTATUS(status[i]) == 0) && !killed) {
				if (first_bad < 0)
					first_bad = i;
				kill_all(); /* the others could wait forever for it */
				killed = 1;
			}
		}
		if (left == 0 || reaped)
			continue;
		int64_t rest = deadline - now_ns();
		if (rest <= 0) {
			if (!killed) {
				timed_out = 1;
				kill_all();
				killed = 1;
			}
			rest = 100 * 1000000L; /* SIGKILLed children are reaped within this */
		}
		if (rest > 1000000000L)
			rest = 1000000000L;
		struct timespec ts = {rest / 1000000000L, rest % 1000000000L};
		sigtimedwait(&chld, NULL, &ts);
	}
	n_kids = 0;
	sigprocmask(SIG_SETMASK, &old, NULL);
	if (rc)
		return rc;

	/* The first reason a child gave wins; then the first bad exit. */
	for (int i = 0; i < started; i++)
		if (ctl->res[i].failed) {
			snprintf(err, errlen, "process %d: %s", i, ctl->res[i].err);
			return -1;
		}
	if (timed_out) {
		snprintf(err, errlen, "did not finish within %.0f s (processes killed)",
		         deadline_s);
		return -1;
	}
	if (first_bad >= 0) {
		char how[96];
		describe_status(how, sizeof(how), status[first_bad]);
		snprintf(err, errlen, "process %d: %s", first_bad, how);
		return -1;
	}
	return 0;
}

/* ---- cleanup registry ---- */

#define CLEANUP_MAX 64

struct cleanup_entry {
	volatile sig_atomic_t used;
	enum cleanup_kind kind;
	char a[160];
	char b[64];
};

static struct cleanup_entry entries[CLEANUP_MAX];
static pid_t owner_pid;
static char tmpdir[64];

static void do_entry(struct cleanup_entry *e)
{
	switch (e->kind) {
	case CK_UNLINK:
		unlink(e->a);
		break;
	case CK_MQ:
		mq_unlink(e->a);
		break;
	case CK_RMDIR:
		rmdir(e->a);
		break;
	case CK_WRITE: {
		int fd = open(e->a, O_WRONLY | O_TRUNC);
		if (fd >= 0) {
			ssize_t w = write(fd, e->b, strlen(e->b));
			(void)w;
			close(fd);
		}
		break;
	}
	}
	e->used = 0;
}

void cleanup_now(void)
{
	if (getpid() != owner_pid)
		return; /* a child that called exit() must not remove the run's names */
	kill_all();
	reap_all();
	/* Files before directories: the socket files live in the temporary one. */
	for (int pass = 0; pass < 2; pass++)
		for (int i = 0; i < CLEANUP_MAX; i++)
			if (entries[i].used && (entries[i].kind == CK_RMDIR) == (pass == 1))
				do_entry(&entries[i]);
}

static void on_signal(int sig)
{
	cleanup_now();
	signal(sig, SIG_DFL);
	raise(sig);
}

void cleanup_install(void)
{
	owner_pid = getpid();
	atexit(cleanup_now);
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigfillset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
}

int cleanup_add(enum cleanup_kind kind, const char *a, const char *b)
{
	for (int i = 0; i < CLEANUP_MAX; i++) {
		struct cleanup_entry *e = &entries[i];
		if (e->used)
			continue;
		e->kind = kind;
		snprintf(e->a, sizeof(e->a), "%s", a);
		snprintf(e->b, sizeof(e->b), "%s", b ? b : "");
		e->used = 1;
		return i;
	}
	return -1;
}

void cleanup_forget(int id)
{
	if (id >= 0 && id < CLEANUP_MAX)
		entries[id].used = 0;
}

const char *harness_tmpdir(void)
{
	if (tmpdir[0])
		return tmpdir;
	char tmpl[] = "/tmp/mqbench-XXXXXX";
	if (!mkdtemp(tmpl))
		return NULL;
	snprintf(tmpdir, sizeof(tmpdir), "%s", tmpl);
	cleanup_add(CK_RMDIR, tmpdir, NULL);
	return tmpdir;
}

void *shm_make(const char *name, size_t size, int *ck, char *err, size_t errlen)
{
	char path[160];
	int fd = shm_open(name, O_CREAT | O_EXCL | O_RDWR, 0600);
	if (fd < 0) {
		snprintf(err, errlen, "shm_open %s: %s", name, strerror(errno));
		return NULL;
	}
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	*ck = cleanup_add(CK_UNLINK, path, NULL);
	if (ftruncate(fd, (off_t)size) != 0) {
		snprintf(err, errlen, "ftruncate %s: %s", name, strerror(errno));
		close(fd);
		return NULL;
	}
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap %s: %s", name, strerror(errno));
		return NULL;
	}
	return p;
}

void *shm_map(const char *name, size_t *size, char *err, size_t errlen)
{
	int fd = shm_open(name, O_RDWR, 0);
	if (fd < 0) {
		snprintf(err, errlen, "shm_open %s: %s", name, strerror(errno));
		return NULL;
	}
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(err, errlen, "fstat %s: %s", name, strerror(errno));
		close(fd);
		return NULL;
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		snprintf(err, errlen, "mmap %s: %s", name, strerror(errno));
		return NULL;
	}
	*size = (size_t)st.st_size;
	return p;
}
