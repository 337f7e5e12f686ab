/*
 * segment.h - the layout of a libmq shared-memory segment (layout version 1).
 *
 * A segment is: one struct mq_shm (header, the producer and consumer sides,
 * the wake-up words, the counters and the client table), then CAPACITY slots
 * of slot_size bytes, each a struct mq_slot followed by max_msg payload bytes.
 *
 * Everything a process other than the creator reads is validated by
 * segment_validate() before use: a file in /dev/shm is untrusted input. Any
 * change to this struct changes MQ_LAYOUT_VERSION; the static assertions at
 * the end catch a change that forgot to.
 *
 * Ownership of the words:
 *   tail, head_cache, bytes_enqueued, high_water  written under send_lock
 *   head, bytes_dequeued                          written under recv_lock
 *   slot seq, len, data                           written under send_lock
 *   clients[i].sent, bytes_sent                   written by client i under send_lock
 *   clients[i].received, bytes_received           written by client i under recv_lock
 *   not_empty, not_full                           futex words, any process
 *   everything else in the header                 written once by the creator
 *                                                 (broker_* by the broker)
 */
#ifndef LIBMQ_SEGMENT_H
#define LIBMQ_SEGMENT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "libmq.h"

#define MQ_MAGIC          UINT64_C(0x314745534d51424c) /* "LBQMSEG1" little-endian */
#define MQ_LAYOUT_VERSION 1u
#define MQ_CACHELINE      64
/* Liveness locks (fcntl OFD locks) live at these byte offsets of the segment
 * file, far beyond its end, so they never touch data: one byte per client
 * table entry, and one for the broker. */
#define MQ_LOCK_CLIENT_BASE (INT64_C(1) << 40)
#define MQ_LOCK_BROKER      (INT64_C(1) << 41)

/* Indices are refused from here on: positions never get near it (2^63
 * messages is centuries at a billion a second), and so the ring never meets
 * the discontinuity of pos % capacity at 2^64. */
#define MQ_INDEX_LIMIT (UINT64_C(1) << 63)

#define MQ_ALIGNED __attribute__((aligned(MQ_CACHELINE)))
/* Sections written by different sides sit 128 bytes apart: the adjacent-line
 * prefetcher of x86 pulls cache lines in pairs. */
#define MQ_SECTION __attribute__((aligned(2 * MQ_CACHELINE)))

enum mq_client_state { MQ_CLIENT_FREE = 0, MQ_CLIENT_ACTIVE = 1, MQ_CLIENT_DEAD = 2 };

/* struct mq_client_slot: one attached process; its owner holds the OFD lock
 * on byte MQ_LOCK_CLIENT_BASE + index while the entry is ACTIVE. */
struct mq_client_slot {
	_Atomic uint32_t state; /* enum mq_client_state */
	_Atomic uint32_t role;  /* MQ_ROLE_* bits */
	_Atomic int32_t pid;
	uint32_t pad;
	_Atomic int64_t attached_unix_ns;
	_Atomic uint64_t sent;
	_Atomic uint64_t received;
	_Atomic uint64_t bytes_sent;
	_Atomic uint64_t bytes_received;
	uint64_t reserved;
} MQ_ALIGNED;

/* struct mq_slot: one message; payload of max_msg bytes follows. */
/* struct mq_slot: one message; payload of max_msg bytes follows. seq is the
 * slot's commit word: it holds pos + 1 once the message at position pos is
 * complete (stored last, with release), and anything else while the slot is
 * free or being written. Consumers read it instead of tail, so a message
 * costs them one cache line, the one its bytes are in anyway. */
struct mq_slot {
	_Atomic uint64_t seq;
	uint64_t len; /* payload length, checked against max_msg on read */
	unsigned char data[];
};

struct mq_shm {
	/* Identity and geometry: written once by mq_create before the magic. */
	_Atomic uint64_t magic; /* stored last (release) by the creator */
	uint32_t version;
	uint32_t header_size;    /* sizeof(struct mq_shm) */
	uint64_t capacity;       /* messages */
	uint64_t max_msg;        /* payload bytes per message */
	uint64_t slot_size;      /* sizeof(struct mq_slot) + max_msg, cache-line rounded */
	uint64_t slots_offset;   /* == header_size */
	uint64_t total_size;     /* slots_offset + capacity * slot_size */
	uint32_t clients_max;    /* MQ_CLIENTS_MAX */
	uint32_t geometry_check; /* segment_geometry_check() of the fields above */
	int64_t created_unix_ns;
	_Atomic int32_t broker_pid;
	uint32_t pad0;
	_Atomic int64_t broker_heartbeat_ns; /* CLOCK_MONOTONIC */
	_Atomic uint64_t recoveries;         /* dead clients cleaned up */
	_Atomic uint64_t lock_repairs;       /* locks taken over from a dead holder */

	/* Producer side: private to producers (under send_lock). */
	pthread_mutex_t send_lock MQ_SECTION; /* robust, process-shared */
	_Atomic uint64_t head_cache;          /* producers' stale copy of head (<= head) */
	_Atomic uint64_t bytes_enqueued;
	_Atomic uint64_t high_water;
	/* Messages ever committed: the next position to write. Producers
	 * advance it right after a slot's commit (slot seq); consumers never
	 * read it on the data path (only stats and attach validation do). */
	_Atomic uint64_t tail MQ_SECTION;

	/* Consumer side: private to consumers (under recv_lock). */
	pthread_mutex_t recv_lock MQ_SECTION;
	_Atomic uint64_t bytes_dequeued;
	/* Messages ever taken; written by consumers, read by producers. */
	_Atomic uint64_t head MQ_SECTION;

	/* Wake-up words (futexes). Bit 0 = "someone may sleep on me", bits 1.. count
	 * wake-ups. They are never the count of record: a waiter always re-checks
	 * head and tail, so a lost or extra wake-up costs time, never correctness. */
	_Atomic uint32_t not_empty MQ_SECTION;
	_Atomic uint32_t not_full MQ_SECTION;

	/* Event counters, bumped with relaxed atomic adds off the fast path. */
	_Atomic uint64_t blocked_sends MQ_SECTION;
	_Atomic uint64_t blocked_recvs;
	_Atomic uint64_t full_events;
	_Atomic uint64_t empty_events;

	struct mq_client_slot clients[MQ_CLIENTS_MAX];
};

_Static_assert(sizeof(_Atomic uint64_t) == 8 && sizeof(_Atomic uint32_t) == 4,
               "shared atomics must have their plain size");
_Static_assert(sizeof(struct mq_client_slot) == 64, "client slot is one cache line");
_Static_assert(sizeof(struct mq_slot) == 16, "slot header: seq and len");
_Static_assert(offsetof(struct mq_shm, magic) == 0, "magic first");
_Static_assert(offsetof(struct mq_shm, version) == 8, "version after magic");
_Static_assert(offsetof(struct mq_shm, send_lock) % MQ_CACHELINE == 0, "producer line");
_Static_assert(offsetof(struct mq_shm, recv_lock) % MQ_CACHELINE == 0, "consumer line");
_Static_assert(offsetof(struct mq_shm, recv_lock) - offsetof(struct mq_shm, send_lock) >=
                       2 * MQ_CACHELINE,
               "producer and consumer state must not share a line (nor its adjacent pair)");
_Static_assert(sizeof(pthread_mutex_t) == 40, "x86_64/aarch64 glibc pthread_mutex_t");
_Static_assert(sizeof(struct mq_shm) % MQ_CACHELINE == 0, "slots start on a line");
_Static_assert(sizeof(struct mq_shm) == 17408, "layout change: bump MQ_LAYOUT_VERSION");
_Static_assert(offsetof(struct mq_shm, not_full) - offsetof(struct mq_shm, not_empty) >= 128,
               "the two wake-up words are written by different sides");

/* segment_slot_size: bytes per slot for MAX_MSG payload bytes. */
static inline uint64_t segment_slot_size(uint64_t max_msg)
{
	uint64_t n = sizeof(struct mq_slot) + max_msg;
	return (n + MQ_CACHELINE - 1) & ~(uint64_t)(MQ_CACHELINE - 1);
}

/* segment_geometry_check: a checksum of the immutable header fields, so that
 * a garbage file whose magic happens to match is still refused. */
uint32_t segment_geometry_check(const struct mq_shm *s);

/* segment_init: lay out a new segment of S->total_size bytes (zero-filled)
 * with the given geometry; publishes the magic last. Returns 0 or an errno. */
int segment_init(struct mq_shm *s, uint64_t capacity, uint64_t max_msg, uint64_t total_size);

/* segment_validate: check a mapped segment of FILE_SIZE bytes before use.
 * Returns 0, or EPROTO with the reason written to DETAIL (LEN bytes). */
int segment_validate(const struct mq_shm *s, uint64_t file_size, char *detail, size_t len);

/* segment_size: total bytes for a geometry, or 0 if it overflows. */
uint64_t segment_size(uint64_t capacity, uint64_t max_msg);

#endif /* LIBMQ_SEGMENT_H */
