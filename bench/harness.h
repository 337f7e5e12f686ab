/*
 * harness.h - the process side of mqbench: the control block shared by the
 * processes of one run, the start barrier, forking, pinning and reaping the
 * children under a deadline, and the registry of names to remove at exit.
 *
 * A run is the parent plus up to HARNESS_MAXPROC children. The parent maps a
 * struct ctl (MAP_SHARED, anonymous) before forking; the children meet on its
 * barrier and write their results into it. A child that fails says why with
 * child_fail(), which also releases every process waiting on the barrier; the
 * parent then kills the others at once. A run that outlives its deadline is
 * killed whole. Every child is waited for.
 *
 * The cleanup registry holds what a run leaves in the file system (shm and
 * semaphore files, mqueue names, socket files, the temporary directory) and
 * the sysctl values to restore. It is emptied as runs tear down normally, and
 * run by atexit() and by the SIGINT/SIGTERM/SIGHUP handler otherwise, with
 * async-signal-safe calls only.
 */
#ifndef MQBENCH_HARNESS_H
#define MQBENCH_HARNESS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define HARNESS_MAXPROC 16
#define HARNESS_MAXPROD 8

/* struct child_result: what one child reports; written by that child only. */
struct child_result {
	int failed;
	char err[320];
	uint64_t msgs;                 /* data messages sent (producer) or received (consumer) */
	int64_t t_end;                 /* consumer: when it received its last data message (ns) */
	uint64_t cnt[HARNESS_MAXPROD]; /* consumer: messages per producer */
	uint64_t sum[HARNESS_MAXPROD]; /* ... sum of their sequence numbers */
	uint64_t sq[HARNESS_MAXPROD];  /* ... sum of their squares (mod 2^64) */
	double p50_us, p99_us;         /* round-trip percentiles (pinger) */
	double value;                  /* limits: MB/s */
};

/* struct ctl: the control block of one run, shared by all its processes. */
struct ctl {
	_Atomic uint32_t bar_count; /* arrivals at the barrier in this generation */
	_Atomic uint32_t bar_gen;   /* futex word: bumped when the barrier opens */
	_Atomic int abort;          /* a child failed: everybody stops */
	_Atomic int64_t t0;         /* CLOCK_MONOTONIC ns when the last barrier opened */
	_Atomic uint32_t warm_done; /* producers through their warm-up messages */
	_Atomic uint32_t prod_done; /* producers through their data messages */
	_Atomic uint32_t cons_done; /* receivers that have seen their last message */
	_Atomic uint64_t sent_total;
	_Atomic uint64_t recv_total;
	/* The cache-line ping-pong word, alone on its lines. */
	alignas(128) _Atomic uint64_t line;
	alignas(128) struct child_result res[HARNESS_MAXPROC];
};

/* now_ns: CLOCK_MONOTONIC in nanoseconds. */
static inline int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* cpu_relax: tell the CPU we are spinning. */
static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#endif
}

/* ctl_new: map a zeroed control block shared with future children; NULL on failure. */
struct ctl *ctl_new(void);

/* ctl_free: unmap CTL (NULL is fine). */
void ctl_free(struct ctl *ctl);

/* barrier_wait: wait until N processes have arrived; the last one records
 * ctl->t0. Returns 0, or -1 if the run was aborted by a failing child. */
int barrier_wait(struct ctl *ctl, unsigned n);

/* child_fail: record in ctl->res[IDX] why child IDX fails (printf format),
 * abort the run (releasing the barrier); returns -1 for the caller to return. */
int child_fail(struct ctl *ctl, int idx, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* wait_count: wait until *WORD >= N (polling every millisecond: for the end
 * of a run, not for anything timed). Returns 0, or -1 if the run was aborted. */
int wait_count(struct ctl *ctl, _Atomic uint32_t *word, uint32_t n);

/* struct proc: one child of a run: what it runs and where. */
struct proc {
	int (*fn)(struct ctl *ctl, int idx, void *arg); /* returns 0 on success */
	void *arg;
	int cpu; /* pin to this CPU, or -1 */
};

/* harness_run: fork one child per PROCS entry (index = position), wait for
 * them all, killing them when one fails or DEADLINE_S passes. Returns 0 if
 * every child exited 0; otherwise -1 with the first cause in ERR. */
int harness_run(struct ctl *ctl, const struct proc *procs, int n, double deadline_s, char *err,
                size_t errlen);

/* harness_cpus: the first two CPUs this process may run on (both the same
 * if there is only one). Returns how many distinct CPUs there are (1 or 2). */
int harness_cpus(int cpu[2]);

/* harness_cpu_allowed: whether this process may run on CPU. */
int harness_cpu_allowed(int cpu);

/* What a cleanup entry does. */
enum cleanup_kind {
	CK_UNLINK, /* unlink(2) the path A */
	CK_MQ,     /* mq_unlink the name A */
	CK_RMDIR,  /* rmdir(2) the path A */
	CK_WRITE,  /* write the text B into the file A (sysctl restore) */
};

/* cleanup_install: register the atexit hook and the signal handlers. */
void cleanup_install(void);

/* cleanup_add: remember to do KIND with A (and B) at exit; returns an id for
 * cleanup_forget, or -1 if the registry is full (then nothing is recorded). */
int cleanup_add(enum cleanup_kind kind, const char *a, const char *b);

/* cleanup_forget: drop entry ID (already done by its owner); -1 is ignored. */
void cleanup_forget(int id);

/* cleanup_now: do and drop every entry (the parent only; idempotent). */
void cleanup_now(void);

/* shm_make: create the POSIX shared-memory object NAME (exclusive, mode 0600)
 * of SIZE bytes, recorded for removal at exit (the entry's id in *CK, for
 * cleanup_forget), and map it. Returns the mapping (munmap it, SIZE bytes),
 * or NULL with the reason in ERR. */
void *shm_make(const char *name, size_t size, int *ck, char *err, size_t errlen);

/* shm_map: map the whole existing shared-memory object NAME, its size in
 * *SIZE. Returns the mapping, or NULL with the reason in ERR. */
void *shm_map(const char *name, size_t *size, char *err, size_t errlen);

/* harness_tmpdir: a private directory for socket files, made on first use and
 * removed at exit; NULL (errno set) if it cannot be made. */
const char *harness_tmpdir(void);

#endif /* MQBENCH_HARNESS_H */
