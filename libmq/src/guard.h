/*
 * guard.h - the SIGBUS guard: a handle's mapping whose file shrinks is
 * replaced by zero pages and the handle marked damaged (guard.c says why).
 */
#ifndef LIBMQ_GUARD_H
#define LIBMQ_GUARD_H

#include "handle.h"

/* guard_add: watch Q's mapping (installs the handler on first use). */
void guard_add(struct mq *q);

/* guard_remove: stop watching Q's mapping (before it is unmapped). */
void guard_remove(struct mq *q);

#endif /* LIBMQ_GUARD_H */
