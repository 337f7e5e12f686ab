/*
 * repair.h - finishing or undoing a dead lock holder's operation from its
 * side's intent record (see repair.c for each operation's commit point).
 */
#ifndef LIBMQ_REPAIR_H
#define LIBMQ_REPAIR_H

#include "handle.h"

/* repair_side: with SIDE's lock just taken over from a dead holder, finish or
 * undo what its record says, and clear the record. Returns 0, or EPROTO with
 * the detail set if the record does not fit the segment (it is left). */
int repair_side(struct mq *q, struct mq_side *side);

#endif /* LIBMQ_REPAIR_H */
