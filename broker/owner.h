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
};

/* owner_open: create or adopt the queue of O and take the broker lock.
 * Returns BROKER_EXIT_OK with *Q set (an observer handle), or another
 * BROKER_EXIT_* with a one-line message in ERR (ERRLEN bytes). Notable
 * events (created, adopted with N messages, recreated) go to the log. */
int owner_open(const struct owner_opts *o, mq_t **q, char *err, size_t errlen);

/* owner_beat: record the broker's heartbeat in the segment. */
void owner_beat(mq_t *q);

/* owner_sweep: find clients that died attached, mark them dead, count a
 * recovery for each and log their pids. Returns how many were found. */
int owner_sweep(mq_t *q);

/* owner_close: clear the broker pid, drop the lock and detach. The segment
 * and its messages stay. */
void owner_close(mq_t *q);

/* broker_log: one line to stderr, prefixed "mqbroker: " (journald-friendly). */
void broker_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif /* MQBROKER_OWNER_H */
