/*
 * pollfd.c - mq_pollfd: a descriptor an event loop (epoll, poll, select,
 * libuv, ...) can wait on for a queue.
 *
 * The mechanism: an eventfd fed by a watcher thread. A queue's producers and
 * consumers wake sleepers through the segment's futex words (not_empty,
 * not_full; wait.h), and only when bit 0 says someone sleeps there; a futex
 * cannot be put into an epoll set, and an eventfd belongs to one process, so
 * the bridge between the two is a thread of the polling process that sleeps
 * on the futex word like any blocked mq_recv would, and writes the eventfd
 * when the condition holds. Then it stops watching the segment (it waits on a
 * process-local condition variable) until the program says it has drained
 * the queue: a call on this handle with timeout 0 that found it empty (or
 * full, for MQ_POLLOUT) re-arms the descriptor, emptying the eventfd, and the
 * thread looks at the queue again before it sleeps. Level-triggered: the
 * eventfd stays readable from the moment the condition was seen until that
 * re-arm, however many messages come and go meanwhile; each new edge is a new
 * write, so edge-triggered epoll works too.
 *
 * Why this and not a FIFO per poller registered in the client table: the
 * producers' fast path stays exactly what it was (one load of the futex word,
 * no system call unless bit 0 is set), and a FIFO written by other processes
 * would let any peer make our descriptor readable or fill its pipe.
 *
 * What a poll costs: nothing until mq_pollfd is called (no thread). While
 * the program drains, the thread is off the segment, so producers make no
 * system call for it; while the queue stays empty and the program waits, the
 * thread sleeps with bit 0 set and the first message pays one FUTEX_WAKE (as
 * for any blocked consumer).
 *
 * Crash contract, point by point:
 *  - A poller that dies: its thread dies with it; the bit 0 it left on the
 *    word costs the next producer one spurious wake-up (wait.h). Nothing else
 *    of it is in the segment.
 *  - A producer or consumer that dies: the thread sleeps in slices of
 *    WAIT_SLICE_MS and, between them, checks the segment and gives back what
 *    dead clients held (as every waiter does, ops.c wait_for), so messages a
 *    dead consumer had leased make the descriptor readable within a slice.
 *  - A damaged segment: the thread makes the descriptor readable, so that the
 *    program's next call reports EPROTO instead of its loop waiting forever.
 *  - mq_detach stops and joins the thread before the mapping goes away, and
 *    closes the descriptors.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "error.h"
#include "interrupt.h"
#include "ops.h"
#include "pollfd.h"

enum { DIR_IN = 0, DIR_OUT = 1 };
/* Descriptor slots: MQ_POLLIN, MQ_POLLOUT, both. */
enum { FD_IN = 0, FD_OUT = 1, FD_BOTH = 2 };

struct mq_poll;

struct watcher {
	struct mq_poll *p;
	int dir;
	int started;
	pthread_t thread;
};

struct mq_poll {
	struct mq *q;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd[3];         /* eventfds, -1 until asked for */
	bool signaled[2];  /* the direction's condition was posted, not re-armed yet */
	_Atomic bool stop; /* mq_detach: the watchers end */
	struct watcher w[2];
};

/* post: make the descriptors of direction D readable (mu held). */
static void post(struct mq_poll *p, int d)
{
	uint64_t one = 1;
	int fds[2] = {p->fd[d], p->fd[FD_BOTH]};
	for (int i = 0; i < 2; i++)
		if (fds[i] >= 0 && write(fds[i], &one, sizeof(one)) < 0 && errno != EAGAIN) {
			/* An eventfd write fails only on counter overflow (EAGAIN: it
			 * is readable anyway). */
		}
}

/* drain: make eventfd FD unreadable (mu held). */
static void drain(int fd)
{
	uint64_t v;
	if (fd >= 0)
		(void)!read(fd, &v, sizeof(v)); /* EAGAIN: it was empty */
}

static void *watch(void *arg)
{
	struct watcher *w = arg;
	struct mq_poll *p = w->p;
	struct mq *q = p->q;
	int d = w->dir;
	_Atomic uint32_t *word = d == DIR_IN ? &q->shm->not_empty : &q->shm->not_full;
	bool (*ready)(struct mq *) = d == DIR_IN ? ready_message : ready_space;
	int (*check)(struct mq *) = d == DIR_IN ? check_consumer : check_producer;
	int64_t next_look = wait_now_ns() + (int64_t)WAIT_SLICE_MS * 1000000;

	pthread_mutex_lock(&p->mu);
	while (!atomic_load(&p->stop)) {
		if (p->signaled[d]) {
			/* Posted: nothing to watch until the program drains. */
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		pthread_mutex_unlock(&p->mu);
		bool fire = ready(q);
		int64_t now = wait_now_ns();
		if (!fire && now >= next_look) {
			/* Between slices, as every waiter: is the segment sound, and
			 * did a client die holding what we wait for? */
			next_look = now + (int64_t)WAIT_SLICE_MS * 1000000;
			if (handle_check(q, true) || check(q)) {
				fire = true; /* the program's next call says EPROTO */
			} else if (reap_needed(q)) {
				struct timespec dl;
				wait_deadline(&dl, WAIT_SLICE_MS);
				(void)reap_dead(q, &dl, intr_start(q), NULL, 0);
				fire = ready(q);
			}
		}
		if (!fire) {
			uint32_t seen = wait_prepare(word);
			if (ready(q))
				fire = true;
			else if (!atomic_load(&p->stop))
				(void)wait_sleep(word, seen, NULL, WAIT_SLICE_MS);
		}
		pthread_mutex_lock(&p->mu);
		if (fire && !p->signaled[d]) {
			p->signaled[d] = true;
			post(p, d);
		}
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

/* start: run direction D's watcher (mu held). Returns 0 or an errno. */
static int start(struct mq_poll *p, int d)
{
	struct watcher *w = &p->w[d];
	if (w->started)
		return 0;
	w->p = p;
	w->dir = d;
	/* Signals go to the program's threads, never to ours. */
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int rc = pthread_create(&w->thread, NULL, watch, w);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc == 0)
		w->started = 1;
	return rc;
}

/* poll_get: Q's poll state, made on first use. NULL with errno ENOMEM. */
static struct mq_poll *poll_get(struct mq *q)
{
	struct mq_poll *p = atomic_load_explicit(&q->poll, memory_order_acquire);
	if (p)
		return p;
	p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	p->q = q;
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->cv, NULL);
	for (int i = 0; i < 3; i++)
		p->fd[i] = -1;
	struct mq_poll *none = NULL;
	if (!atomic_compare_exchange_strong_explicit(&q->poll, &none, p, memory_order_acq_rel,
	                                             memory_order_acquire)) {
		/* Another thread of ours made it first. */
		pthread_mutex_destroy(&p->mu);
		pthread_cond_destroy(&p->cv);
		free(p);
		return none;
	}
	return p;
}

int mq_pollfd(mq_t *q, int events)
{
	if (!q)
		return error_set(EINVAL, "mq_pollfd: no queue handle");
	if (events != MQ_POLLIN && events != MQ_POLLOUT && events != (MQ_POLLIN | MQ_POLLOUT))
		return error_set(EINVAL,
		                 "mq_pollfd on %s: events 0x%x: want MQ_POLLIN, MQ_POLLOUT or both",
		                 q->name, (unsigned)events);
	if (!q->token)
		return error_set(EINVAL, "mq_pollfd on %s: this handle only observes the queue",
		                 q->name);
	if (handle_check(q, false))
		return -1;
	struct mq_poll *p = poll_get(q);
	if (!p)
		return error_set(ENOMEM, "mq_pollfd on %s: out of memory", q->name);
	int slot = events == MQ_POLLIN ? FD_IN : events == MQ_POLLOUT ? FD_OUT : FD_BOTH;
	pthread_mutex_lock(&p->mu);
	int fd = p->fd[slot];
	if (fd >= 0)
		goto out;
	fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (fd >= 0 && fd <= 2) { /* keep clear of stdio (attach.c says why) */
		int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		close(fd);
		fd = hi;
	}
	if (fd < 0) {
		int e = errno;
		pthread_mutex_unlock(&p->mu);
		return error_set(e, "mq_pollfd on %s: eventfd: %s", q->name, strerror(e));
	}
	int rc = 0;
	if (slot != FD_OUT)
		rc = start(p, DIR_IN);
	if (rc == 0 && slot != FD_IN)
		rc = start(p, DIR_OUT);
	if (rc != 0) {
		close(fd);
		pthread_mutex_unlock(&p->mu);
		return error_set(rc, "mq_pollfd on %s: cannot start its watcher thread: %s",
		                 q->name, strerror(rc));
	}
	p->fd[slot] = fd;
	/* A condition already posted holds for the new descriptor too. */
	uint64_t one = 1;
	if ((slot != FD_OUT && p->signaled[DIR_IN]) || (slot != FD_IN && p->signaled[DIR_OUT]))
		(void)!write(fd, &one, sizeof(one));
out:
	pthread_mutex_unlock(&p->mu);
	return fd;
}

void pollfd_rearm_slow(struct mq *q, int events)
{
	struct mq_poll *p = atomic_load_explicit(&q->poll, memory_order_acquire);
	int d = events == MQ_POLLIN ? DIR_IN : DIR_OUT;
	pthread_mutex_lock(&p->mu);
	if (p->signaled[d]) {
		p->signaled[d] = false;
		drain(p->fd[d]);
		if (!p->signaled[!d])
			drain(p->fd[FD_BOTH]); /* still readable for the other direction */
		pthread_cond_broadcast(&p->cv);
	}
	pthread_mutex_unlock(&p->mu);
}

void pollfd_free(struct mq *q)
{
	struct mq_poll *p = atomic_load_explicit(&q->poll, memory_order_acquire);
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, true);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	/* A watcher asleep on the segment: change its word and wake it (other
	 * sleepers on the word wake once for nothing, which costs them a look). */
	if (p->w[DIR_IN].started)
		wait_kick(&q->shm->not_empty);
	if (p->w[DIR_OUT].started)
		wait_kick(&q->shm->not_full);
	for (int d = 0; d < 2; d++)
		if (p->w[d].started)
			pthread_join(p->w[d].thread, NULL);
	for (int i = 0; i < 3; i++)
		if (p->fd[i] >= 0)
			close(p->fd[i]);
	pthread_mutex_destroy(&p->mu);
	pthread_cond_destroy(&p->cv);
	atomic_store(&q->poll, NULL);
	free(p);
}
