/*
 * handle.h - struct mq, the per-process handle behind mq_t, and the internal
 * calls the project's own programs (broker, mqctl, tests) use beyond libmq.h.
 *
 * A handle owns one open file description of the segment (the fd): client
 * liveness is an OFD lock on that description, so it dies with the process,
 * whatever the process's threads do. The fd is close-on-exec, and a handle is
 * not meant to be used across fork(): the child attaches its own.
 */
#ifndef LIBMQ_HANDLE_H
#define LIBMQ_HANDLE_H

#include <stdatomic.h>
#include <stddef.h>

#include "libmq.h"
#include "segment.h"

struct mq {
	struct mq_shm *shm;
	size_t map_size;
	/* The geometry, copied when the segment was validated: the data path
	 * never addresses memory through a value another process could rewrite. */
	uint64_t capacity;
	uint64_t max_msg;
	uint64_t slot_size;
	unsigned char *slots;
	int fd;
	int client; /* index in the client table, -1 for an observer */
	_Atomic unsigned spin_us;
	char name[MQ_NAME_MAX + 1];
};

/* handle_slot: the slot that holds position POS. */
static inline struct mq_slot *handle_slot(const struct mq *q, uint64_t pos)
{
	return (struct mq_slot *)(q->slots + (pos % q->capacity) * q->slot_size);
}

/* Flags for attach_open. */
#define MQ_OPEN_OBSERVE 1 /* do not register in the client table (broker, mqctl stats) */

/* attach_open: mq_attach with FLAGS; same errors. */
mq_t *attach_open(const char *name, int flags);

/* attach_create: mq_create with FLAGS; same errors. */
mq_t *attach_create(const char *name, size_t capacity, size_t max_msg, mode_t mode, int flags);

/* attach_name_valid: whether NAME is a valid queue name. */
int attach_name_valid(const char *name);

#endif /* LIBMQ_HANDLE_H */
