/*
 * client.h - the segment's table of attached clients.
 *
 * An entry is owned by the process holding the fcntl OFD write lock on byte
 * MQ_LOCK_CLIENT_BASE + index of the segment file. The kernel drops that lock
 * when the process dies, however it dies, so "lock free but entry ACTIVE"
 * means "died without detaching". Whoever finds such an entry (the broker's
 * sweep, an attacher, mq_stats) takes the lock before touching it, so a
 * reaper and a new client can never both own one entry.
 */
#ifndef LIBMQ_CLIENT_H
#define LIBMQ_CLIENT_H

#include "handle.h"

/* client_claim: take a free entry for Q (sets q->client). Returns 0 or an
 * errno (EUSERS: table full). */
int client_claim(struct mq *q);

/* client_release: give Q's entry back (clean detach). */
void client_release(struct mq *q);

/* client_alive: whether entry I is held by a live process. */
int client_alive(struct mq *q, unsigned i);

/* client_reap: mark every ACTIVE entry whose owner died as DEAD and count a
 * recovery for each. Returns how many were reaped, or -1 with errno. */
int client_reap(struct mq *q);

#endif /* LIBMQ_CLIENT_H */
