/*
 * client.h - the segment's table of attached clients.
 *
 * An entry is owned by the process holding the fcntl OFD write lock on byte
 * MQ_LOCK_CLIENT_BASE + index of the segment file. The kernel drops that lock
 * when the process dies, however it dies, so "lock free but entry ACTIVE"
 * means "died without detaching". Whoever finds such an entry (the broker's
 * sweep, an attacher, a waiter) takes the lock before touching it, so a
 * reaper and a new client can never both own one entry. Every claim bumps
 * the entry's generation: the owner token of the new client (segment.h)
 * differs from the dead one's, so what the dead one held stays recognisably
 * orphaned until reap.c gives it back.
 */
#ifndef LIBMQ_CLIENT_H
#define LIBMQ_CLIENT_H

#include "handle.h"

/* client_claim: take a free entry for Q (sets q->client and q->token).
 * Returns 0 or an errno (EUSERS: table full). */
int client_claim(struct mq *q);

/* client_release: give Q's entry back (clean detach). */
void client_release(struct mq *q);

/* client_alive: whether entry I is held by a live process. */
int client_alive(struct mq *q, unsigned i);

/* client_mark_dead: entry I, found ACTIVE with its owner gone, becomes
 * DEAD (under its liveness lock, so a claimer cannot race us); counts a
 * recovery. Returns 1 if it was marked, 0 if someone else got there first. */
int client_mark_dead(struct mq *q, unsigned i);

/* client_token: the owner token of entry I as it stands. */
uint32_t client_token(struct mq *q, unsigned i);

#endif /* LIBMQ_CLIENT_H */
