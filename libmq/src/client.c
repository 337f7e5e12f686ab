/* client.c - the client table: claim, release and liveness (OFD locks). */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "client.h"

static int lock_entry(struct mq *q, unsigned i, short type)
{
	struct flock fl = {.l_type = type,
	                   .l_whence = SEEK_SET,
	                   .l_start = MQ_LOCK_CLIENT_BASE + (off_t)i,
	                   .l_len = 1};
	return fcntl(q->fd, F_OFD_SETLK, &fl) == 0 ? 0 : errno;
}

static int64_t now_unix_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

uint32_t client_token(struct mq *q, unsigned i)
{
	return mq_token(i + 1, mq_load_relaxed(&q->shm->clients[i].gen));
}

/* take_entry: with entry I's lock held, make it ours. An entry still ACTIVE
 * under a lock we could take belonged to a process that died attached; what
 * it held is given back by the next reap (its token is no longer live). */
static void take_entry(struct mq *q, unsigned i)
{
	struct mq_client_slot *c = &q->shm->clients[i];
	if (mq_load_relaxed(&c->state) == MQ_CLIENT_ACTIVE)
		mq_add_relaxed(&q->shm->recoveries, 1);
	uint32_t gen = (mq_load_relaxed(&c->gen) + 1) & MQ_TOKEN_GEN_MASK;
	mq_store_relaxed(&c->gen, gen ? gen : 1);
	mq_store_relaxed(&c->gen_copy, gen ? gen : 1);
	mq_store_relaxed(&c->pid, (int32_t)getpid());
	mq_store_relaxed(&c->role, 0);
	mq_store_relaxed(&c->sent, 0);
	mq_store_relaxed(&c->received, 0);
	mq_store_relaxed(&c->bytes_sent, 0);
	mq_store_relaxed(&c->bytes_received, 0);
	mq_store_relaxed(&c->in_flight, 0);
	mq_store_relaxed(&c->held, 0);
	mq_store_relaxed(&c->held_send, 0);
	mq_store_relaxed(&c->acked, 0);
	mq_store_relaxed(&c->nacked, 0);
	mq_store_relaxed(&c->attached_unix_ns, now_unix_ns());
	/* Pairs with the acquire load in readers of the table (mq_clients,
	 * token_live). */
	mq_store_release(&c->state, MQ_CLIENT_ACTIVE);
	q->client = (int)i;
	q->token = client_token(q, i);
}

/* entry_clean: whether nothing names entry I's occupant any more: no chunk
 * counted as its own, no lock word with its slot. A dead client's entry is
 * reused only then (after the broker's or a waiter's reap), so a token never
 * outlives its entry's occupant (token_live trusts the liveness lock alone). */
static bool entry_clean(struct mq *q, unsigned i)
{
	struct mq_shm *s = q->shm;
	struct mq_client_slot *c = &s->clients[i];
	uint32_t send = mq_load_relaxed(&s->send.lock), recv = mq_load_relaxed(&s->recv.lock);
	return client_held(c) == 0 && mq_load_relaxed(&c->in_flight) == 0 &&
	       (send & MQ_TOKEN_SLOT_MASK) != i + 1 && (recv & MQ_TOKEN_SLOT_MASK) != i + 1;
}

int client_claim(struct mq *q)
{
	/* Free entries first, so the records of dead clients stay visible in
	 * the stats for as long as there is room. */
	for (int pass = 0; pass < 2; pass++) {
		for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
			uint32_t st = mq_load_relaxed(&q->shm->clients[i].state);
			if ((pass == 0) != (st == MQ_CLIENT_FREE))
				continue;
			if (pass == 1 && !entry_clean(q, i))
				continue; /* its dead occupant still holds something: reap first */
			int rc = lock_entry(q, i, F_WRLCK);
			if (rc == EAGAIN || rc == EACCES)
				continue; /* a live owner, or a reaper looking at it */
			if (rc)
				return rc;
			take_entry(q, i);
			return 0;
		}
	}
	return EUSERS;
}

void client_release(struct mq *q)
{
	if (q->client < 0)
		return;
	mq_store_release(&q->shm->clients[q->client].state, MQ_CLIENT_FREE);
	lock_entry(q, (unsigned)q->client, F_UNLCK);
	q->client = -1;
	q->token = 0;
}

int client_alive(struct mq *q, unsigned i)
{
	if ((int)i == q->client)
		return 1; /* our own lock does not conflict with our own probe */
	struct flock fl = {.l_type = F_WRLCK,
	                   .l_whence = SEEK_SET,
	                   .l_start = MQ_LOCK_CLIENT_BASE + (off_t)i,
	                   .l_len = 1};
	if (fcntl(q->fd, F_OFD_GETLK, &fl) != 0)
		return 1; /* cannot tell: do not declare anyone dead */
	return fl.l_type != F_UNLCK;
}

int client_mark_dead(struct mq *q, unsigned i)
{
	struct mq_client_slot *c = &q->shm->clients[i];
	if (lock_entry(q, i, F_WRLCK) != 0)
		return 0; /* alive after all, or another reaper or a claimer has it */
	int marked = 0;
	/* Re-check under the lock: the owner may have detached meanwhile. */
	if (mq_load_relaxed(&c->state) == MQ_CLIENT_ACTIVE) {
		mq_store_relaxed(&c->in_flight, 0);
		mq_store_relaxed(&c->held, 0);
		mq_store_relaxed(&c->held_send, 0);
		mq_store_release(&c->state, MQ_CLIENT_DEAD);
		mq_add_relaxed(&q->shm->recoveries, 1);
		marked = 1;
	}
	lock_entry(q, i, F_UNLCK);
	return marked;
}
