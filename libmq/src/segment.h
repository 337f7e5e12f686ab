/*
 * segment.h - the layout of a libmq shared-memory segment (layout version 3).
 *
 * A segment is: one struct mq_shm (identity, geometry, the producer and
 * consumer sides with their locks, the wake-up words, the counters and the
 * client table), then four arrays, then one struct mq_tiq (the time-in-queue
 * clock and histogram, at total_size - sizeof(struct mq_tiq)):
 *
 *   ring     ring_size x uint64  the queue: entry p holds (seq32, chunk) once
 *                                position p is committed; seq32 = p + 1
 *   pool     ring_size x uint64  the free chunks, same entry format
 *   requeue  ring_size x uint32  chunks given back (nack, dead holder),
 *                                delivered ahead of the ring
 *   chunks   capacity x chunk_size  a struct mq_chunk header, then max_msg
 *                                payload bytes (cache-line aligned)
 *
 * ring_size is a power of two above capacity, so a position's entry is
 * p & (ring_size - 1) and a position from one lap before has another seq32.
 * A message lives in one chunk from send to retirement: the ring and the
 * requeue ring only pass chunk numbers around, so a leased or reserved chunk
 * stays put while the queue moves on (leases, zero-copy, out-of-order frees).
 *
 * Every reference is checked both ways where it is used: an entry names a
 * chunk, and the chunk says where it is referenced from (pos) and in what
 * state, so a scribbled index or entry is caught as EPROTO instead of being
 * followed. Everything a process reads from the segment is untrusted input.
 *
 * Ownership of the words:
 *   send.*, tail, fhead, head_cache, bytes_enqueued, high_water, ring entries
 *                         written under the send lock
 *   recv.*, head, ftail, rhead, rtail, retired..., requeue entries, pool entries
 *                         written under the receive lock (in a LIFO segment the
 *                         pool's top is ftail and pops happen there too)
 *   chunk headers         by whoever holds the chunk (its state says who)
 *   tiq.count/sum/bucket  under the receive lock (plain load-and-store)
 *   clients[i]            by client i (counters under the lock of their side),
 *                         state by claim/release/reap under its liveness lock
 *   wake words            futexes, any process
 *   everything else       written once by the creator (broker_* by the broker)
 *
 * Any change to these structs changes MQ_LAYOUT_VERSION; the static
 * assertions at the end catch a change that forgot to.
 */
#ifndef LIBMQ_SEGMENT_H
#define LIBMQ_SEGMENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "libmq.h"
#include "libmq_admin.h"

#define MQ_MAGIC          UINT64_C(0x314745534d51424c) /* "LBQMSEG1" little-endian, every version */
#define MQ_LAYOUT_VERSION 3u
#define MQ_CACHELINE      64
/* Liveness locks (fcntl OFD locks) live at these byte offsets of the segment
 * file, far beyond its end, so they never touch data: one byte per client
 * table entry, and one for the broker. */
#define MQ_LOCK_CLIENT_BASE (INT64_C(1) << 40)
#define MQ_LOCK_BROKER      (INT64_C(1) << 41)

/* Positions are refused from here on: they never get near it (2^63 messages
 * is centuries at a billion a second). */
#define MQ_INDEX_LIMIT (UINT64_C(1) << 63)

/* Chunks of at least this many payload bytes make a LIFO segment: the free
 * pool is a stack under the receive lock (the chunk freed last, still in the
 * cache, is reused first) and payloads are copied outside the locks. Below
 * it, the pool is a FIFO ring producers pop under the send lock, with no
 * line shared by the two sides on the fast path. */
#define MQ_LIFO_MIN_MSG (64u * 1024)

#define MQ_ALIGNED __attribute__((aligned(MQ_CACHELINE)))
/* Sections written by different sides sit 128 bytes apart: the adjacent-line
 * prefetcher of x86 pulls cache lines in pairs. */
#define MQ_SECTION __attribute__((aligned(2 * MQ_CACHELINE)))

/* Segment flags. */
#define MQ_SEG_LIFO 1u

enum mq_client_state { MQ_CLIENT_FREE = 0, MQ_CLIENT_ACTIVE = 1, MQ_CLIENT_DEAD = 2 };

/*
 * Owner tokens name who holds a lock or a chunk: (gen << 9) | (slot + 1) for
 * client table entry SLOT claimed with generation GEN (22 bits), or
 * MQ_TOKEN_BROKER_SLOT with the broker's generation. A token is live while
 * its entry is ACTIVE with the same generation and its liveness lock is held.
 * Lock words are a token, plus MQ_LOCK_WAITERS when someone may sleep on it.
 */
#define MQ_TOKEN_SLOT_MASK   0x1ffu
#define MQ_TOKEN_BROKER_SLOT 0x1ffu
#define MQ_TOKEN_GEN_SHIFT   9
#define MQ_TOKEN_GEN_MASK    0x3fffffu
#define MQ_LOCK_WAITERS      0x80000000u
#define MQ_TOKEN_MASK        0x7fffffffu

static inline uint32_t mq_token(unsigned slot_plus_1, uint32_t gen)
{
	return ((gen & MQ_TOKEN_GEN_MASK) << MQ_TOKEN_GEN_SHIFT) |
	       (slot_plus_1 & MQ_TOKEN_SLOT_MASK);
}

/* struct mq_client_slot: one attached process; its owner holds the OFD lock
 * on byte MQ_LOCK_CLIENT_BASE + index while the entry is ACTIVE. */
struct mq_client_slot {
	_Atomic uint32_t state; /* enum mq_client_state */
	_Atomic uint32_t role;  /* MQ_ROLE_* bits */
	_Atomic int32_t pid;
	_Atomic uint32_t gen; /* bumped by every claim: the entry's token generation */
	_Atomic int64_t attached_unix_ns;
	_Atomic uint64_t sent;
	_Atomic uint64_t received;
	_Atomic uint64_t bytes_sent;
	_Atomic uint64_t bytes_received;
	_Atomic uint64_t in_flight; /* chunks it holds with a lease (under the recv lock) */
	/* Chunks it owns in any way: held + held_send (mod 2^64; either may
	 * wrap: a chunk reserved under the send lock may be given back under
	 * the receive lock). Each word is written only under its lock, with
	 * plain loads and stores: a locked add here drained the store buffer
	 * (the ring and chunk stores still on their way to the other core) and
	 * was half the cost of a lease and of its ack. */
	_Atomic uint64_t held; /* counted under the receive lock */
	_Atomic uint64_t acked;
	_Atomic uint64_t nacked;
	/* gen again, in another word: a peer scribbling one word of the entry
	 * cannot make its occupant's tokens look foreign (token_live accepts a
	 * token matching either copy, while the liveness lock is held). */
	_Atomic uint32_t gen_copy;
	/* Whether it holds the send [0] / receive [1] lock now, set just after
	 * taking it and cleared just before letting go: a lock word naming a
	 * live client that holds nothing (written there by a peer) is taken
	 * over once this stays clear for 200 ms of continuous sightings. */
	_Atomic uint8_t holding[2];
	uint8_t pad[2];
	_Atomic uint64_t held_send; /* counted under the send lock (see held) */
	uint64_t reserved[2];
} MQ_ALIGNED;

/* client_held: how many chunks client entry C holds (held + held_send). */
static inline uint64_t client_held(struct mq_client_slot *c)
{
	return atomic_load_explicit(&c->held, memory_order_relaxed) +
	       atomic_load_explicit(&c->held_send, memory_order_relaxed);
}

/* Chunk states (low 8 bits of mq_chunk.state; the owner token is above). */
enum mq_chunk_kind {
	MQ_CHUNK_FREE = 1,     /* in the pool at pos */
	MQ_CHUNK_WRITING = 2,  /* taken from the pool by its owner (reserve, large send) */
	MQ_CHUNK_QUEUED = 3,   /* referenced by ring position pos (id = pos + 1) */
	MQ_CHUNK_REQUEUED = 4, /* referenced by requeue position pos */
	MQ_CHUNK_HELD = 5,     /* leased by its owner (mq_recv_lease, mq_peek) */
	MQ_CHUNK_TAKING = 6,   /* being copied out by its owner's mq_recv (LIFO segments) */
};
#define MQ_CHUNK_KIND(s)            ((uint32_t)((s)&0xffu))
#define MQ_CHUNK_OWNER(s)           ((uint32_t)((s) >> 8))
#define MQ_CHUNK_STATE(kind, owner) ((uint64_t)(kind) | ((uint64_t)(owner) << 8))

/* struct mq_chunk: the header of one message's storage; max_msg payload bytes
 * follow, 64-byte aligned. */
struct mq_chunk {
	_Atomic uint64_t state;      /* MQ_CHUNK_STATE(kind, owner token) */
	_Atomic uint64_t id;         /* message id: ring position of its first send + 1 */
	_Atomic uint64_t pos;        /* where it is referenced from (see the kinds) */
	_Atomic uint32_t len;        /* payload bytes, checked against max_msg */
	_Atomic uint32_t deliveries; /* times taken with a lease */
	_Atomic uint64_t sent;       /* when sent, in the ticks of tiq.clock (0: not stamped) */
	_Atomic int64_t lease_ns;    /* CLOCK_MONOTONIC_COARSE when leased */
	uint64_t reserved[2];
};

/* Operations a lock holder records before its first store (struct mq_intent),
 * so that whoever takes the lock over from a dead holder finishes or undoes
 * exactly that operation (repair.c). */
enum mq_op {
	MQ_OP_NONE = 0,
	MQ_OP_SEND = 1,     /* send lock: pop n chunks at fpos, commit ring positions pos.. */
	MQ_OP_RESERVE = 2,  /* send lock: pop the chunk at fpos for owner */
	MQ_OP_COMMIT = 3,   /* send lock: commit chunk idx at ring position pos */
	MQ_OP_TAKE = 4,     /* recv lock: take n messages from pos (src), free them at fpos */
	MQ_OP_LEASE = 5,    /* recv lock: take one message from pos (src) for owner */
	MQ_OP_FREE = 6,     /* recv lock: put chunk idx into the pool at fpos */
	MQ_OP_REQUEUE = 7,  /* recv lock: put chunk idx into the requeue ring at pos */
	MQ_OP_POP = 8,      /* recv lock (LIFO): pop chunk idx at fpos for owner */
	MQ_OP_TAKE_COPY = 9 /* recv lock (LIFO): take one message from pos (src) to copy out */
};
#define MQ_SRC_RING    0u
#define MQ_SRC_REQUEUE 1u

/* struct mq_intent: the operation in progress under a lock; op is stored
 * last (release) when it starts and cleared (release) when it is done. */
struct mq_intent {
	_Atomic uint32_t op;
	_Atomic uint32_t n;     /* messages (MQ_OP_SEND, MQ_OP_TAKE) */
	_Atomic uint32_t src;   /* MQ_SRC_* */
	_Atomic uint32_t idx;   /* the chunk */
	_Atomic uint64_t pos;   /* ring or requeue position */
	_Atomic uint64_t fpos;  /* pool position */
	_Atomic uint32_t owner; /* token the chunk is taken for */
	_Atomic uint32_t deliveries;
	_Atomic int64_t ns;
};

/* struct mq_side: one side's lock word and its operation record. */
struct mq_side {
	_Atomic uint32_t lock; /* 0, or the holder's token (| MQ_LOCK_WAITERS) */
	uint32_t pad;
	struct mq_intent intent;
};

struct mq_shm {
	/* Identity and geometry: written once by mq_create before the magic. */
	_Atomic uint64_t magic; /* stored last (release) by the creator */
	uint32_t version;
	uint32_t header_size;    /* sizeof(struct mq_shm) */
	uint64_t capacity;       /* messages (chunks) */
	uint64_t max_msg;        /* payload bytes per message */
	uint64_t chunk_size;     /* sizeof(struct mq_chunk) + max_msg, cache-line rounded */
	uint64_t ring_size;      /* power of two > capacity */
	uint64_t ring_offset;    /* == header_size */
	uint64_t pool_offset;    /* ring_offset + ring_size * 8 */
	uint64_t requeue_offset; /* pool_offset + ring_size * 8 */
	uint64_t chunks_offset;  /* requeue_offset + ring_size * 4, cache-line rounded */
	uint64_t total_size;     /* chunks_offset + capacity * chunk_size */
	uint32_t clients_max;    /* MQ_CLIENTS_MAX */
	uint32_t flags;          /* MQ_SEG_* */
	uint64_t queue_id;       /* random, per creation: names the queue beyond this host */
	int64_t created_unix_ns;
	uint32_t geometry_check; /* segment_geometry_check() of the fields above */
	uint32_t pad0;
	_Atomic int32_t broker_pid;
	_Atomic uint32_t broker_gen;         /* generation of the broker's token */
	_Atomic int64_t broker_heartbeat_ns; /* CLOCK_MONOTONIC */
	_Atomic uint64_t recoveries;         /* dead clients cleaned up */
	_Atomic uint64_t lock_repairs;       /* locks taken over from a dead holder */

	/* Producer side: private to producers (under the send lock). */
	struct mq_side send MQ_SECTION;
	_Atomic uint64_t tail;       /* ring positions ever committed */
	_Atomic uint64_t fhead;      /* pool positions ever popped (FIFO segments) */
	_Atomic uint64_t head_cache; /* producers' stale copy of head (high-water mark) */
	_Atomic uint64_t bytes_enqueued;
	_Atomic uint64_t high_water;

	/* Consumer side: private to consumers (under the receive lock). */
	struct mq_side recv MQ_SECTION;
	_Atomic uint64_t head;    /* ring positions ever taken */
	_Atomic uint64_t ftail;   /* pool positions ever pushed (LIFO: the stack's top) */
	_Atomic uint64_t rhead;   /* requeue positions ever taken */
	_Atomic uint64_t rtail;   /* requeue positions ever filled */
	_Atomic uint64_t retired; /* messages gone for good: mq_recv or acked */
	_Atomic uint64_t bytes_retired;
	_Atomic uint64_t acked;
	_Atomic uint64_t nacked;
	_Atomic uint64_t redelivered; /* deliveries from the requeue ring */

	/* Wake-up words (futexes). Bit 0 = "someone may sleep on me", bits 1.. count
	 * wake-ups. They are never the count of record: a waiter always re-checks
	 * the queue, so a lost or extra wake-up costs time, never correctness. */
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
_Static_assert(sizeof(struct mq_client_slot) == 128, "client slot is two cache lines");
_Static_assert(sizeof(struct mq_chunk) == 64, "chunk header is one cache line");
_Static_assert(sizeof(struct mq_intent) == 48, "intent record");
_Static_assert(offsetof(struct mq_shm, magic) == 0, "magic first");
_Static_assert(offsetof(struct mq_shm, version) == 8, "version after magic");
_Static_assert(offsetof(struct mq_shm, send) % 128 == 0, "producer section");
_Static_assert(offsetof(struct mq_shm, recv) % 128 == 0, "consumer section");
_Static_assert(offsetof(struct mq_shm, recv) - offsetof(struct mq_shm, send) >= 2 * MQ_CACHELINE,
               "producer and consumer state must not share a line (nor its adjacent pair)");
_Static_assert(offsetof(struct mq_shm, not_full) - offsetof(struct mq_shm, not_empty) >= 128,
               "the two wake-up words are written by different sides");
_Static_assert(sizeof(struct mq_shm) % MQ_CACHELINE == 0, "the arrays start on a line");
_Static_assert(sizeof(struct mq_shm) == 33664, "layout change: bump MQ_LAYOUT_VERSION");
_Static_assert(MQ_LAYOUT_CURRENT == MQ_LAYOUT_VERSION,
               "libmq_admin.h says which layout mq_attach reads");

/*
 * struct mq_tiq: time in queue, the last thing in the segment. Producers
 * stamp each message (mq_chunk.sent) with the queue's clock; whoever takes a
 * message from the ring under the receive lock adds now - sent to the
 * histogram. The clock is written once by the creator: MQ_CLOCK_TSC (the
 * x86-64 time-stamp counter, ~10 ns to read, chosen only when the kernel's
 * clocksource is "tsc", i.e. the kernel itself trusts it to agree across
 * CPUs) at hz ticks per second, calibrated against CLOCK_MONOTONIC at
 * creation; else MQ_CLOCK_MONO (CLOCK_MONOTONIC nanoseconds, ~25 ns).
 *
 * Buckets: 0 holds [0, 1024 ns); bucket i >= 1 the octave 2^(10 + (i-1)/4)
 * ns cut in four equal parts ((i-1) % 4 says which); the last one is open
 * above. Counters only grow (readers difference two snapshots for a window).
 */
#define MQ_CLOCK_TSC   1u
#define MQ_CLOCK_MONO  2u
#define MQ_TIQ_BUCKETS MQ_TIQ_NBUCKETS /* libmq_admin.h */
struct mq_tiq {
	uint32_t clock; /* MQ_CLOCK_*, written once by the creator */
	uint32_t pad;
	uint64_t hz; /* clock ticks per second */
	uint64_t reserved[6];
	_Atomic uint64_t count MQ_SECTION; /* messages measured */
	_Atomic uint64_t sum_ns;           /* their total time in queue */
	_Atomic uint64_t max_ns;           /* the longest (since creation) */
	uint64_t reserved2[5];
	_Atomic uint64_t bucket[MQ_TIQ_BUCKETS];
};
_Static_assert(sizeof(struct mq_tiq) == 1280, "tiq section: a change bumps MQ_LAYOUT_VERSION");

/* Geometry helpers: the layout of CAPACITY messages of MAX_MSG bytes. */
struct mq_geometry {
	uint64_t chunk_size, ring_size, ring_offset, pool_offset, requeue_offset, chunks_offset,
	        tiq_offset, total_size;
	uint32_t flags;
};

/* segment_geometry: fill G for CAPACITY and MAX_MSG; returns 0, or -1 if they
 * are out of range or the total overflows. */
int segment_geometry(uint64_t capacity, uint64_t max_msg, struct mq_geometry *g);

/* segment_geometry_check: a checksum of the immutable header fields, so that
 * a garbage file whose magic happens to match is still refused. */
uint32_t segment_geometry_check(const struct mq_shm *s);

/* segment_init: lay out a new segment (zero-filled, G's size) for CAPACITY x
 * MAX_MSG; publishes the magic last. Returns 0 or an errno. */
int segment_init(struct mq_shm *s, uint64_t capacity, uint64_t max_msg,
                 const struct mq_geometry *g);

/* segment_validate: check a mapped segment of FILE_SIZE bytes before use
 * (header, geometry, and the indices' invariants). Returns 0, or EPROTO with
 * the reason written to DETAIL (LEN bytes). S may be NULL when FILE_SIZE is
 * smaller than the header. */
int segment_validate(const struct mq_shm *s, uint64_t file_size, char *detail, size_t len);

#endif /* LIBMQ_SEGMENT_H */
