/* client.c - the client table: claim, release, liveness (OFD locks) and reaping. */
#include <errno.h>
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

/* take_entry: with entry I's lock held, make it ours. An entry still ACTIVE
 * under a lock we could take belonged to a process that died attached. */
static void take_entry(struct mq *q, unsigned i)
{
	struct mq_client_slot *c = &q->shm->clients[i];
	if (mq_load_relaxed(&c->state) == MQ_CLIENT_ACTIVE)
		mq_add_relaxed(&q->shm->recoveries, 1);
	mq_store_relaxed(&c->pid, (int32_t)getpid());
	mq_store_relaxed(&c->role, 0);
	mq_store_relaxed(&c->sent, 0);
	mq_store_relaxed(&c->received, 0);
	mq_store_relaxed(&c->bytes_sent, 0);
	mq_store_relaxed(&c->bytes_received, 0);
	mq_store_relaxed(&c->attached_unix_ns, now_unix_ns());
	/* Pairs with the acquire load in readers of the table (mq_clients). */
	mq_store_release(&c->state, MQ_CLIENT_ACTIVE);
	q->client = (int)i;
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

int client_reap(struct mq *q)
{
	int reaped = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		struct mq_client_slot *c = &q->shm->clients[i];
		if ((int)i == q->client || mq_load_relaxed(&c->state) != MQ_CLIENT_ACTIVE)
			continue;
		int rc = lock_entry(q, i, F_WRLCK);
		if (rc == EAGAIN || rc == EACCES)
			continue; /* alive */
		if (rc)
			return -1;
		/* Re-check under the lock: the owner may have detached meanwhile. */
		if (mq_load_relaxed(&c->state) == MQ_CLIENT_ACTIVE) {
			mq_store_release(&c->state, MQ_CLIENT_DEAD);
			mq_add_relaxed(&q->shm->recoveries, 1);
			reaped++;
		}
		lock_entry(q, i, F_UNLCK);
	}
	return reaped;
}
