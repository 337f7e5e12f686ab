/* lock.c - the side locks: take (spin, sleep in slices, take over from the dead), release. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "atomics.h"
#include "client.h"
#include "error.h"
#include "interrupt.h"
#include "lock.h"
#include "repair.h"
#include "wait.h"

/* How long a lock waiter sleeps between looks at the holder: short at first
 * (a dead holder is found in about a millisecond), then longer. Never more
 * than LOCK_SLICE_MAX_MS, which also bounds how late an mq_interrupt that
 * lands just before the sleep is seen (the lock word cannot be kicked). */
#define LOCK_SLICE_MIN_MS 1
#define LOCK_SLICE_MAX_MS 10

/* How long a lock word may name a live client that says it holds nothing
 * before a waiter takes the lock over. */
#define LOCK_FORGED_MS 200

/* The longest gap between two sightings of such a word that still counts as
 * one continuous sighting (a waiter looks at least every LOCK_SLICE_MAX_MS
 * while it waits; calls with short timeouts come back within this). */
#define LOCK_FORGED_GAP_MS 50

const char *side_name(const struct mq *q, const struct mq_side *side)
{
	return side == &q->shm->send ? "send" : "receive";
}

static int broker_lock_held(struct mq *q)
{
	struct flock fl = {
	        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = MQ_LOCK_BROKER, .l_len = 1};
	if (fcntl(q->fd, F_OFD_GETLK, &fl) != 0)
		return 1; /* cannot tell: do not declare anyone dead */
	return fl.l_type != F_UNLCK;
}

int token_live(struct mq *q, uint32_t token)
{
	token &= MQ_TOKEN_MASK;
	if (token == 0)
		return 0;
	if (token == q->token)
		return 1;
	unsigned slot = token & MQ_TOKEN_SLOT_MASK;
	uint32_t gen = (token >> MQ_TOKEN_GEN_SHIFT) & MQ_TOKEN_GEN_MASK;
	if (slot == MQ_TOKEN_BROKER_SLOT)
		return (mq_load_relaxed(&q->shm->broker_gen) & MQ_TOKEN_GEN_MASK) == gen &&
		       broker_lock_held(q);
	if (slot == 0 || slot > MQ_CLIENTS_MAX)
		return 0;
	/* The kernel's word is the liveness lock: held, someone alive occupies
	 * the entry; the token is that occupant's if its generation matches
	 * either copy of the entry's. The entry's state is not looked at, and
	 * one scribbled word cannot change both copies: a peer that scribbles
	 * the table must not make a live client's chunks and locks look
	 * abandoned (they would be delivered twice). */
	struct mq_client_slot *c = &q->shm->clients[slot - 1];
	if ((mq_load_acquire(&c->gen) & MQ_TOKEN_GEN_MASK) != gen &&
	    (mq_load_acquire(&c->gen_copy) & MQ_TOKEN_GEN_MASK) != gen)
		return 0;
	return client_alive(q, slot - 1);
}

void token_describe(struct mq *q, uint32_t token, char *buf, size_t len)
{
	token &= MQ_TOKEN_MASK;
	unsigned slot = token & MQ_TOKEN_SLOT_MASK;
	if (token == 0)
		snprintf(buf, len, "nobody");
	else if (slot == MQ_TOKEN_BROKER_SLOT)
		snprintf(buf, len, "mqbroker pid %d", (int)mq_load_relaxed(&q->shm->broker_pid));
	else if (slot >= 1 && slot <= MQ_CLIENTS_MAX)
		snprintf(buf, len, "pid %d", (int)mq_load_relaxed(&q->shm->clients[slot - 1].pid));
	else
		snprintf(buf, len, "nobody (garbage 0x%x)", token);
}

/* holder_says_held: whether the live holder named by TOKEN says it holds
 * SIDE's lock (OWN: it is us). The broker does not say: taken as held. */
static bool holder_says_held(struct mq *q, struct mq_side *side, uint32_t token, bool own)
{
	if (own)
		return mq_load_relaxed(lock_holds(q, side)) != 0;
	unsigned slot = token & MQ_TOKEN_SLOT_MASK;
	if (slot == 0 || slot > MQ_CLIENTS_MAX)
		return true;
	return mq_load_relaxed(&q->shm->clients[slot - 1].holding[side != &q->shm->send]) != 0;
}

static bool interrupted(struct mq *q, int64_t intr0)
{
	return intr0 != LOCK_NO_INTR && intr_pending(q, (uint32_t)intr0);
}

/* taken: the lock is ours; make sure the side is sound. TAKEOVER: we took it
 * from a dead holder. Either way, an operation record still set means an
 * operation was left half done (its holder died, or hit a damaged segment
 * and could not finish): finish or undo it first (repair.c), so that a queue
 * whose damage has gone (a scribbled word restored) heals by itself. */
int lock_taken(struct mq *q, struct mq_side *side, bool takeover)
{
	/* A plain store, no read-modify-write: the fast path stays as it was. */
	lock_mark(q, side, 1);
	if (takeover)
		mq_add_relaxed(&q->shm->lock_repairs, 1);
	uint32_t op = mq_load_acquire(&side->intent.op);
	if (op != MQ_OP_NONE) {
		/* An operation in progress: taken from a holder that looked dead
		 * or forged, or found free with a record a holder never ended (a
		 * peer zeroed its word). Either way the holder may in fact still
		 * be at work, and then its operation finishes within
		 * microseconds. Look again after a moment before finishing it
		 * ourselves, so that it is not done twice. */
		uint64_t pos = mq_load_relaxed(&side->intent.pos);
		struct timespec pause = {0, 2 * 1000 * 1000};
		nanosleep(&pause, NULL);
		if (mq_load_acquire(&side->intent.op) != op ||
		    mq_load_relaxed(&side->intent.pos) != pos)
			op = MQ_OP_NONE; /* finished (or moved on) by its live holder */
	}
	if (op == MQ_OP_NONE || repair_side(q, side) == 0)
		return 0;
	int err = errno;
	lock_release(q, side);
	errno = err;
	return EPROTO;
}

int lock_take_slow(struct mq *q, struct mq_side *side, const struct timespec *dl, int64_t intr0)
{
	_Atomic uint32_t *w = &side->lock;
	uint32_t me = q->token;
	uint32_t cur = 0;
	/* Pairs with the release CAS in lock_release: the previous holder's
	 * stores are visible. */
	if (atomic_compare_exchange_strong_explicit(w, &cur, me, memory_order_acquire,
	                                            memory_order_relaxed))
		return lock_taken(q, side, false);
	if (!me) {
		error_set(EPROTO, "queue %s: this handle observes only and cannot lock", q->name);
		return EPROTO;
	}

	/* Spin a little: a live holder keeps the lock for one copy. Never
	 * past the deadline. */
	unsigned spin = mq_load_relaxed(&q->spin_us);
	if (spin) {
		int64_t end = wait_now_ns() + (int64_t)spin * 1000;
		if (dl) {
			int64_t d = (int64_t)dl->tv_sec * 1000000000 + dl->tv_nsec;
			if (d < end)
				end = d;
		}
		for (int i = 0;; i++) {
			cur = mq_load_relaxed(w);
			if (cur == 0 &&
			    atomic_compare_exchange_weak_explicit(w, &cur, me, memory_order_acquire,
			                                          memory_order_relaxed))
				return lock_taken(q, side, false);
			mq_cpu_relax();
			if ((i & 63) == 63 && (wait_now_ns() >= end || interrupted(q, intr0)))
				break;
		}
	}

	/* Sleep. Once we have slept we take the lock with the waiters bit set,
	 * so that our release wakes whoever else sleeps (the futex mutex of
	 * Drepper's "Futexes are tricky"). */
	int slice = LOCK_SLICE_MIN_MS;
	for (;;) {
		cur = mq_load_relaxed(w);
		if ((cur & MQ_TOKEN_MASK) == 0) {
			if (atomic_compare_exchange_weak_explicit(w, &cur, me | MQ_LOCK_WAITERS,
			                                          memory_order_acquire,
			                                          memory_order_relaxed))
				return lock_taken(q, side, false);
			continue;
		}
		if (!(cur & MQ_LOCK_WAITERS) && !atomic_compare_exchange_weak_explicit(
		                                        w, &cur, cur | MQ_LOCK_WAITERS,
		                                        memory_order_relaxed, memory_order_relaxed))
			continue;
		cur |= MQ_LOCK_WAITERS;
		if (interrupted(q, intr0)) {
			intr_answer(q);
			error_set(EINTR, "queue %s: interrupted waiting for the %s lock", q->name,
			          side_name(q, side));
			return EINTR;
		}
		if (wait_expired(dl)) {
			char who[64];
			token_describe(q, cur, who, sizeof(who));
			error_set(
			        ETIMEDOUT,
			        "queue %s: the timeout passed waiting for the %s lock (held by %s)",
			        q->name, side_name(q, side), who);
			return ETIMEDOUT;
		}
		uint32_t seen = cur;
		int rc = wait_sleep(w, seen, dl, slice);
		if (rc == EINTR) {
			error_set(EINTR,
			          "queue %s: interrupted by a signal waiting for the %s lock",
			          q->name, side_name(q, side));
			return EINTR;
		}
		if (mq_load_relaxed(w) != seen)
			continue; /* released or changed hands: look again */
		/* Still the same holder after a slice: is it alive, and does it
		 * say it holds the lock? (Our own token: only while a thread of
		 * ours does.) */
		bool own = (seen & MQ_TOKEN_MASK) == me;
		bool dead = !own && !token_live(q, seen);
		/* A live holder that does not say it holds the lock: a word
		 * written there by a peer (or restored after it was let go) --
		 * or a holder caught between its CAS and saying so. Only if that
		 * lasts LOCK_FORGED_MS with the word unchanged is it taken over
		 * (a holder robbed that way finds out at its commit: EPROTO). */
		int64_t now = wait_now_ns();
		int si = side != &q->shm->send;
		bool forged = false;
		if (!dead && !holder_says_held(q, side, seen, own)) {
			/* Timed across calls, our own word as another's: a thread
			 * of ours (or another client) may be between its CAS and
			 * saying so for a while on a busy machine. */
			if (mq_load_relaxed(&q->forged_word[si]) != (seen & MQ_TOKEN_MASK) ||
			    now - mq_load_relaxed(&q->forged_last[si]) >
			            (int64_t)LOCK_FORGED_GAP_MS * 1000000) {
				/* a new sighting, or not a continuous one: start over */
				mq_store_relaxed(&q->forged_since[si], now);
				mq_store_relaxed(&q->forged_word[si], seen & MQ_TOKEN_MASK);
			} else {
				forged = now - mq_load_relaxed(&q->forged_since[si]) >=
				         (int64_t)LOCK_FORGED_MS * 1000000;
			}
			mq_store_relaxed(&q->forged_last[si], now);
		} else {
			mq_store_relaxed(&q->forged_word[si], 0);
		}
		if (dead || forged) {
			mq_store_relaxed(&q->forged_word[si], 0);
			uint32_t expect = seen;
			if (atomic_compare_exchange_strong_explicit(
			            w, &expect, me | MQ_LOCK_WAITERS, memory_order_acquire,
			            memory_order_relaxed))
				return lock_taken(q, side, true);
			continue;
		}
		if (slice < LOCK_SLICE_MAX_MS)
			slice *= 2;
		if (handle_check(q, true) != 0)
			return EPROTO;
	}
}

int lock_release_slow(struct mq *q, struct mq_side *side)
{
	_Atomic uint32_t *w = &side->lock;
	lock_mark(q, side, 0);
	uint32_t cur = mq_load_relaxed(w);
	for (;;) {
		if ((cur & MQ_TOKEN_MASK) != q->token) {
			char who[64];
			token_describe(q, cur, who, sizeof(who));
			return error_set(
			               EPROTO,
			               "queue %s: damaged: the %s lock was taken from this process "
			               "while it held it (now %s); what it wrote may be lost",
			               q->name, side_name(q, side), who),
			       EPROTO;
		}
		/* Pairs with the acquire CAS in lock_take. */
		if (atomic_compare_exchange_weak_explicit(w, &cur, 0, memory_order_release,
		                                          memory_order_relaxed))
			break;
	}
	if (cur & MQ_LOCK_WAITERS)
		wait_wake_word(w, 1);
	return 0;
}
