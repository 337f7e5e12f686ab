/* pollfd.h - mq_pollfd's hooks in the rest of libmq (pollfd.c). */
#ifndef LIBMQ_POLLFD_H
#define LIBMQ_POLLFD_H

#include "handle.h"

/* pollfd_rearm: a call on Q with timeout 0 found the queue empty (EVENTS
 * MQ_POLLIN) or full (MQ_POLLOUT): its descriptors stop being readable for
 * that until the condition holds again. One load when nobody polls. */
void pollfd_rearm_slow(struct mq *q, int events);
static inline void pollfd_rearm(struct mq *q, int events)
{
	if (atomic_load_explicit(&q->poll, memory_order_relaxed))
		pollfd_rearm_slow(q, events);
}

/* pollfd_free: stop Q's watcher threads and close its descriptors (mq_detach,
 * before the mapping goes). */
void pollfd_free(struct mq *q);

#endif /* LIBMQ_POLLFD_H */
