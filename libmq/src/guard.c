/*
 * guard.c - surviving a segment file that shrinks under our mapping.
 *
 * Any process that can write a queue's file can truncate it, and then every
 * process touching the mapping past the new end gets SIGBUS, whose default
 * action kills it. Wayland compositors face the same with client buffers;
 * they prefer memfds sealed with F_SEAL_SHRINK, passed over a socket, and
 * fall back to what libwayland-server does for unsealed pools: a SIGBUS
 * handler that, when the faulting address is in a pool, maps anonymous
 * memory over it (MAP_FIXED) so the access completes, and marks the pool
 * broken. Seals do not fit a named queue: a file opened in /dev/shm by name
 * comes with F_SEAL_SEAL set (only memfd_create(MFD_ALLOW_SEALING) files
 * can be sealed), and passing an fd over a socket needs a broker at every
 * attach, which would break "clients keep working while the broker is
 * down". So libmq does what libwayland-server does: the handler below
 * replaces the whole mapping of a handle with anonymous zero pages and sets
 * the handle's damaged flag, and every call on that handle then fails with
 * EPROTO. A fault outside our mappings goes to the handler that was there
 * before us (or the default action).
 *
 * The handler is installed on the first attach, once per process, unless
 * MQ_SIGBUS_GUARD=0 is in the environment; a program that installs its own
 * SIGBUS handler afterwards replaces it (libmq(3) says so).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "atomics.h"
#include "guard.h"

#define GUARD_SLOTS 1024

struct guard_slot {
	_Atomic int used;
	_Atomic uintptr_t base; /* stored last: the handler trusts len and q then */
	_Atomic size_t len;
	struct mq *_Atomic q;
};

static struct guard_slot slots[GUARD_SLOTS];
static struct sigaction previous;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static _Atomic int enabled;

static void on_sigbus(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;
	uintptr_t a = (uintptr_t)si->si_addr;
	for (unsigned i = 0; i < GUARD_SLOTS; i++) {
		uintptr_t base = mq_load_acquire(&slots[i].base);
		size_t len = mq_load_relaxed(&slots[i].len);
		if (!base || a < base || a - base >= len)
			continue;
		void *p = mmap((void *)base, len, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED, -1, 0);
		if (p != MAP_FAILED) {
			mq_store_relaxed(&mq_load_relaxed(&slots[i].q)->damaged, 1);
			errno = saved;
			return; /* the access is repeated on the zero pages */
		}
		break;
	}
	/* Not ours: what was there before us. */
	if (previous.sa_flags & SA_SIGINFO) {
		previous.sa_sigaction(sig, si, ctx);
	} else if (previous.sa_handler != SIG_DFL && previous.sa_handler != SIG_IGN) {
		previous.sa_handler(sig);
	} else {
		/* The default action: restore it and let the fault (or the signal)
		 * happen again when we return. */
		signal(SIGBUS, SIG_DFL);
		if (si->si_code <= 0)
			raise(SIGBUS);
	}
	errno = saved;
}

static void install(void)
{
	const char *env = getenv("MQ_SIGBUS_GUARD");
	if (env && strcmp(env, "0") == 0)
		return;
	struct sigaction sa;
	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigbus;
	sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGBUS, &sa, &previous) == 0)
		mq_store_relaxed(&enabled, 1);
}

void guard_add(struct mq *q)
{
	pthread_once(&once, install);
	if (!mq_load_relaxed(&enabled) || !q->shm)
		return;
	for (unsigned i = 0; i < GUARD_SLOTS; i++) {
		int free_slot = 0;
		if (!mq_cas(&slots[i].used, &free_slot, 1))
			continue;
		mq_store_relaxed(&slots[i].len, q->map_size);
		mq_store_relaxed(&slots[i].q, q);
		/* Pairs with the acquire load in on_sigbus. */
		mq_store_release(&slots[i].base, (uintptr_t)q->shm);
		return;
	}
	/* More than GUARD_SLOTS handles at once: this one goes unguarded. */
}

void guard_remove(struct mq *q)
{
	for (unsigned i = 0; i < GUARD_SLOTS; i++) {
		if (mq_load_relaxed(&slots[i].base) != (uintptr_t)q->shm ||
		    mq_load_relaxed(&slots[i].q) != q)
			continue;
		mq_store_release(&slots[i].base, 0);
		mq_store_release(&slots[i].used, 0);
		return;
	}
}
