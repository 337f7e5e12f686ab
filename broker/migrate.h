/* migrate.h - move the messages of a layout 1 queue (libmq 0.1) into a current (layout 3) one. */
#ifndef MQBROKER_MIGRATE_H
#define MQBROKER_MIGRATE_H

#include <stddef.h>
#include <sys/types.h>

/* migrate_is_v1: whether the file of queue NAME says "libmq layout 1" (its
 * magic and version; nothing else is trusted yet). */
int migrate_is_v1(const char *name);

/*
 * migrate_v1: replace the layout 1 queue NAME by a queue of the current layout (3) of the same
 * capacity and maximum message size, owner and MODE, holding its queued
 * messages in order. Refused (nothing changed) while a libmq 1 process (a
 * client or a broker) still has it open (errno EBUSY: try again later), or if
 * anything in it does not check out; the reason, naming the file, goes to
 * ERR. Returns the number of messages moved, or -1.
 */
long migrate_v1(const char *name, mode_t mode, char *err, size_t errlen);

#endif /* MQBROKER_MIGRATE_H */
