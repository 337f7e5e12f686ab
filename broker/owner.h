/*
 * owner.h - the broker's hold on its queue: create or adopt the segment,
 * the one-broker-per-queue lock, heartbeat and the sweep for dead clients.
 *
 * The broker lock is an OFD lock on byte MQ_LOCK_BROKER of the segment file:
 * it dies with the broker however the broker dies, so a restarted broker (or
 * mqctl check) can always tell a live broker from a stale pid.
 */
#ifndef MQBROKER_OWNER_H
#define MQBROKER_OWNER_H

#include <stddef.h>
#include <sys/types.h>

#include "libmq.h"

struct owner_opts {
	const char *name;
	size_t capacity;
	int capacity_set; /* given by the user (else: adopt what is there) */
	size_t max_msg;
	int max_msg_set;
	mode_t mode;
	int mode_set;
	const char *group; /* NULL: leave the group alone */
	int recreate;      /* replace an incompatible or corrupt segment */
	/* Besides our own user, the user whose queues we adopt (root adopting
	 * the service user's queues), if trust_set. */
	uid_t trust_uid;
	int trust_set;
	/* The geometry was given per queue (--queue NAME:CAP:MAX or a queue
	 * line), not by --capacity/--max-msg: messages say so. */
	int geometry_per_queue;
};

/* owner_open: create or adopt the queue of O and take the broker lock.
 * Returns BROKER_EXIT_OK with *Q set (an observer handle) and *CREATED
 * saying whether this call made the queue, or another BROKER_EXIT_* with a
 * one-line message in ERR (ERRLEN bytes). Notable events (created, adopted
 * with N messages, recreated) go to the log. A queue owned by a user other
 * than ours (or the trusted one), or whose mode grants more than O->mode, is
 * refused (BROKER_EXIT_PERMISSION): another user may have planted it. A
 * libmq 0.1 (layout 1) queue is moved into a current (layout 3) one first; while libmq
 * 0.1 processes still use it, BROKER_EXIT_SEGMENT with errno EBUSY (the
 * caller may wait and call again). A sound queue of another geometry than O
 * asks for (and no recreate): BROKER_EXIT_SEGMENT with errno EEXIST (the
 * broker shows it refused, not damaged). */
int owner_open(const struct owner_opts *o, mq_t **q, int *created, char *err, size_t errlen);

/* owner_discard: undo a start-up that failed after owner_open created Q:
 * remove the queue again (it holds nothing) and close Q. */
void owner_discard(mq_t *q, const char *name);

/* owner_beat: record the broker's heartbeat in the segment. */
void owner_beat(mq_t *q);

/* owner_sweep: find clients that died attached, deliver again what they held
 * leased, free what they reserved, mark them dead and log their pids.
 * Returns how many were found, or -1 (logged). */
int owner_sweep(mq_t *q);

/* owner_close: clear the broker pid, drop the lock and detach. The segment
 * and its messages stay. */
void owner_close(mq_t *q);

/* broker_log: one line to stderr, prefixed "mqbroker: " (journald-friendly). */
void broker_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* MQBROKER_OWNER_H */
