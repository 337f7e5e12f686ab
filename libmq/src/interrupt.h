/*
 * interrupt.h - mq_interrupt's bookkeeping in the handle.
 *
 * mq_interrupt bumps q->intr. A call takes intr_seen as its starting point
 * (intr_start), so it answers both an interrupt that arrives while it runs and
 * one that arrived while no call was waiting (still pending); whichever call
 * answers with EINTR marks it seen (intr_answer). Loads are seq_cst: the
 * check a waiter makes after announcing itself on a wake-up word pairs with
 * the kick mq_interrupt gives that word (wait.h).
 */
#ifndef LIBMQ_INTERRUPT_H
#define LIBMQ_INTERRUPT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "handle.h"

static inline uint32_t intr_start(struct mq *q)
{
	return atomic_load(&q->intr_seen);
}

static inline bool intr_pending(struct mq *q, uint32_t intr0)
{
	return atomic_load(&q->intr) != intr0;
}

static inline void intr_answer(struct mq *q)
{
	atomic_store(&q->intr_seen, atomic_load(&q->intr));
}

#endif /* LIBMQ_INTERRUPT_H */
