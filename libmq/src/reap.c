/*
 * reap.c - giving back what dead clients held: their leased messages go to
 * the requeue ring (delivered again, deliveries + 1), their reservations and
 * half-copied chunks to the pool, and their table entries become DEAD.
 *
 * A chunk is orphaned when its owner token is not live (lock.c): its client
 * died (the OFD liveness lock is gone), detached without giving it back, or
 * its entry has been claimed again since (another generation). Finding the
 * orphans is a scan of the chunk headers, done with both locks held (send,
 * then receive: the only place that holds both) so that no chunk changes
 * hands meanwhile. It is done only when it has work: when an ACTIVE entry's
 * owner is gone, or when the chunks accounted for (free + queued + requeued
 * + held by live clients) fall short of the capacity.
 *
 * Who reaps: the broker once a second, a waiter between its sleep slices,
 * and mq_detach for its own chunks (give_back_own). No timeout is involved:
 * a dead holder's lease comes back as soon as one of them looks.
 */
#include <errno.h>

#include "client.h"
#include "libmq_admin.h"
#include "lock.h"
#include "ops.h"

/* accounted: chunks the indices account for (free, queued, requeued). */
static uint64_t accounted(struct mq *q)
{
	struct mq_shm *s = q->shm;
	uint64_t ftail = mq_load_acquire(&s->ftail), fhead = mq_load_acquire(&s->fhead);
	uint64_t head = mq_load_acquire(&s->head), tail = mq_load_acquire(&s->tail);
	uint64_t rhead = mq_load_acquire(&s->rhead), rtail = mq_load_acquire(&s->rtail);
	uint64_t n = handle_lifo(q) ? ftail : (ftail > fhead ? ftail - fhead : 0);
	n += tail > head ? tail - head : 0;
	n += rtail > rhead ? rtail - rhead : 0;
	return n;
}

bool reap_needed(struct mq *q)
{
	struct mq_shm *s = q->shm;
	uint64_t held = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		struct mq_client_slot *c = &s->clients[i];
		if (mq_load_acquire(&c->state) != MQ_CLIENT_ACTIVE)
			continue;
		if (!client_alive(q, i))
			return true;
		held += client_held(c);
	}
	return accounted(q) + held < q->capacity;
}

/* fix_orphan: give back chunk IDX in state ST (receive lock held). */
static int fix_orphan(struct mq *q, uint32_t idx, uint64_t st)
{
	if (MQ_CHUNK_KIND(st) == MQ_CHUNK_HELD) {
		struct mq_intent *in = &q->shm->recv.intent;
		intent_expect(q, in, idx);
		mq_store_relaxed(&in->pos, mq_load_relaxed(&q->shm->rtail));
		intent_begin(in, MQ_OP_REQUEUE);
		int rc = requeue_push(q, idx);
		intent_end(in);
		return rc;
	}
	return chunk_free_locked(q, idx);
}

/* scan: give back every chunk held (WRITING, HELD, TAKING) by a token that
 * is not in LIVE (live[i]: entry i's live token, 0 if none), or by exactly
 * ONLY if ONLY is not 0. Returns how many moved, or -1 (EPROTO). */
static int scan(struct mq *q, const uint32_t *live, uint32_t only)
{
	int moved = 0;
	for (uint64_t idx = 0; idx < q->capacity; idx++) {
		uint64_t st = mq_load_relaxed(&handle_chunk(q, idx)->state);
		uint32_t kind = MQ_CHUNK_KIND(st), owner = MQ_CHUNK_OWNER(st);
		if (kind != MQ_CHUNK_WRITING && kind != MQ_CHUNK_HELD && kind != MQ_CHUNK_TAKING)
			continue;
		if (only) {
			if (owner != only)
				continue;
		} else {
			unsigned slot = owner & MQ_TOKEN_SLOT_MASK;
			if (slot >= 1 && slot <= MQ_CLIENTS_MAX ? live[slot - 1] == owner
			                                        : token_live(q, owner))
				continue;
		}
		if (fix_orphan(q, (uint32_t)idx, st) != 0)
			return -1;
		moved++;
	}
	return moved;
}

/* both_locks: take the send lock, then the receive lock. */
static int both_locks(struct mq *q, const struct timespec *dl, int64_t intr0)
{
	if (lock_take(q, &q->shm->send, dl, intr0))
		return -1;
	if (lock_take(q, &q->shm->recv, dl, intr0)) {
		int err = errno;
		lock_release(q, &q->shm->send);
		errno = err;
		return -1;
	}
	return 0;
}

static int both_release(struct mq *q)
{
	int a = lock_release(q, &q->shm->recv);
	int b = lock_release(q, &q->shm->send);
	return a || b ? -1 : 0;
}

int reap_dead(struct mq *q, const struct timespec *dl, int64_t intr0, struct mq_reaped *out,
              size_t n)
{
	struct mq_shm *s = q->shm;
	if (both_locks(q, dl, intr0))
		return -1;
	uint32_t live[MQ_CLIENTS_MAX];
	unsigned dead[MQ_CLIENTS_MAX], nd = 0;
	uint64_t held = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		struct mq_client_slot *c = &s->clients[i];
		live[i] = 0;
		if (mq_load_acquire(&c->state) != MQ_CLIENT_ACTIVE)
			continue;
		if (client_alive(q, i)) {
			live[i] = client_token(q, i);
			held += client_held(c);
		} else {
			dead[nd++] = i;
		}
	}
	int moved = 0;
	if (nd || accounted(q) + held < q->capacity)
		moved = scan(q, live, 0);
	int err = errno;
	unsigned reported = 0;
	for (unsigned j = 0; moved >= 0 && j < nd; j++) {
		struct mq_client_slot *c = &s->clients[dead[j]];
		struct mq_reaped r = {.pid = mq_load_relaxed(&c->pid),
		                      .role = mq_load_relaxed(&c->role),
		                      .sent_total = mq_load_relaxed(&c->sent),
		                      .received_total = mq_load_relaxed(&c->received)};
		if (client_mark_dead(q, dead[j]) && out && reported < n)
			out[reported++] = r;
	}
	if (both_release(q) != 0)
		return -1;
	if (moved < 0)
		return errno = err, -1;
	if (moved) {
		wake_consumers(q);
		wake_producers(q);
	}
	return (int)nd;
}

int give_back_own(struct mq *q)
{
	if (!q->token || q->client < 0 || client_held(&q->shm->clients[q->client]) == 0)
		return 0;
	struct timespec dl;
	wait_deadline(&dl, 2000);
	if (both_locks(q, &dl, LOCK_NO_INTR))
		return -1; /* left for the reap once our token is gone */
	int moved = scan(q, NULL, q->token);
	if (moved > 0)
		mq_store_relaxed(&q->shm->clients[q->client].in_flight, 0);
	both_release(q);
	if (moved > 0) {
		wake_consumers(q);
		wake_producers(q);
	}
	return moved;
}
