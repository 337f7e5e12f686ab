/* libmq.h - the public interface of libmq, a message queue in POSIX shared memory. */
#ifndef LIBMQ_H
#define LIBMQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Every call is exported under a "libmq_" symbol name (see MQ_SYMBOL), so a
 * program that links libmq and also uses glibc's POSIX message queues
 * (<mqueue.h>, whose mq_send has another signature) in another source file
 * still gets glibc's mq_send there. (The library is built with hidden
 * symbols; only these declarations are exported.) Do not include <mqueue.h> and <libmq.h>
 * in the same source file: both declare mq_send.
 *
 * Errors follow the POSIX convention: -1 (or NULL) is returned and errno is
 * set. mq_errdetail() gives a one-line description of the last failure in
 * the calling thread, naming the queue and what is wrong. The comments below
 * give each call's errors of its own; libmq(3) lists every errno, including
 * those of the system resources underneath (EMFILE, ENOMEM, ENOLCK, ...).
 */
#if defined(__GNUC__) || defined(__clang__)
#define MQ_SYMBOL(name) __asm__(#name) __attribute__((visibility("default")))
#else
#error "libmq needs a compiler with GNU asm labels (gcc, clang)"
#endif

#define LIBMQ_VERSION       "0.2.0"
#define MQ_DEFAULT_NAME     "/messagequeue"
#define MQ_DEFAULT_CAPACITY 1024
#define MQ_DEFAULT_MAX_MSG  4096
#define MQ_NAME_MAX         251        /* "/" + up to 250 characters */
#define MQ_CAPACITY_LIMIT   (1u << 24) /* messages */
#define MQ_MAX_MSG_LIMIT    (1u << 30) /* bytes per message */
#define MQ_CLIENTS_MAX      256

/* mq_t: an attached queue. One handle may be used by many threads at once. */
typedef struct mq mq_t;

/* struct mq_stats: a snapshot of a queue, read without taking its locks. */
struct mq_stats {
	uint64_t capacity;             /* messages the queue holds */
	uint64_t max_msg_size;         /* largest message, bytes */
	uint64_t depth;                /* messages queued now */
	uint64_t high_water;           /* largest depth seen */
	uint64_t enqueued_total;       /* messages accepted by mq_send */
	uint64_t dequeued_total;       /* messages taken by mq_recv */
	uint64_t bytes_enqueued_total; /* payload bytes accepted */
	uint64_t bytes_dequeued_total; /* payload bytes taken */
	uint64_t blocked_sends_total;  /* mq_send calls that had to wait for space */
	uint64_t blocked_recvs_total;  /* mq_recv calls that had to wait for a message */
	uint64_t full_total;           /* mq_send calls that found the queue full */
	uint64_t empty_total;          /* mq_recv calls that found the queue empty */
	uint64_t recoveries_total;     /* dead clients detected and cleaned up */
	uint64_t lock_repairs_total;   /* queue locks taken over from a dead holder */
	uint32_t producers;            /* live attached clients that have sent */
	uint32_t consumers;            /* live attached clients that have received */
	uint32_t clients;              /* live attached clients */
	int32_t broker_pid;            /* pid recorded by the broker, 0 if none */
	int64_t created_unix_ns;       /* when the segment was created (CLOCK_REALTIME) */
	int64_t broker_heartbeat_ns;   /* last broker heartbeat (CLOCK_MONOTONIC), 0 if none */
	uint64_t in_flight;            /* messages leased and not yet acked or nacked */
	uint64_t acked_total;          /* leases acked (the message retired) */
	uint64_t nacked_total;         /* leases nacked (the message given back) */
	uint64_t redelivered_total;    /* deliveries of messages given back (nack, dead holder) */
	uint64_t oldest_age_ns; /* how long the oldest waiting message has waited (0: none) */
	uint64_t reserved[11];
};

/* Roles reported in struct mq_client_info.role (a bit set). */
#define MQ_ROLE_PRODUCER 1u
#define MQ_ROLE_CONSUMER 2u
#define MQ_ROLE_BRIDGE   4u /* declared with mq_declare_role (libmq_admin.h): mqbridge */

/* struct mq_client_info: one entry of a queue's table of attached clients. */
struct mq_client_info {
	int32_t pid;             /* process that attached */
	uint32_t role;           /* MQ_ROLE_* bits: what the client has done so far */
	int alive;               /* 1 while the client is attached, 0 once found dead */
	uint64_t sent_total;     /* messages it sent */
	uint64_t received_total; /* messages it received */
	uint64_t bytes_sent_total;
	uint64_t bytes_received_total;
	int64_t attached_unix_ns;    /* when it attached (CLOCK_REALTIME) */
	uint64_t in_flight;          /* messages it holds leased now */
	uint64_t acked_total;        /* leases it acked */
	uint64_t nacked_total;       /* leases it nacked */
	int64_t oldest_lease_age_ns; /* age of its oldest lease (4 ms steps), 0 if none */
	uint64_t reserved[4];
};

/*
 * mq_lease_t: a message taken with mq_recv_lease or mq_peek, until mq_ack or
 * mq_nack. id is the message's id, unique for the queue's life and the same
 * on every delivery; deliveries is 1 on the first delivery, 2 on the first
 * redelivery, ... The other fields are for the library (which chunk, whose).
 */
typedef struct mq_lease {
	uint64_t id;
	uint32_t deliveries;
	uint32_t slot;  /* the message's storage */
	uint32_t owner; /* the handle that took it */
	uint32_t len;   /* its length */
	uint64_t reserved[2];
} mq_lease_t;

/*
 * mq_create: create the queue NAME ("/" + 1..250 characters, no other "/")
 * holding CAPACITY messages (1..MQ_CAPACITY_LIMIT) of up to MAX_MSG bytes
 * (1..MQ_MAX_MSG_LIMIT), with permissions MODE (umask is not applied), and
 * attach to it. Returns the handle, or NULL with errno: EEXIST the queue
 * exists; EINVAL bad name, capacity, size or mode; ENOMEM/ENOSPC no room in
 * /dev/shm; EACCES permission denied.
 */
mq_t *mq_create(const char *name, size_t capacity, size_t max_msg, mode_t mode)
        MQ_SYMBOL(libmq_create);

/*
 * mq_attach: attach to the existing queue NAME (NULL means MQ_DEFAULT_NAME),
 * after validating its header, and register in its client table. Returns the
 * handle, or NULL with errno: ENOENT no such queue (is mqbroker running?);
 * EINVAL bad name; EACCES permission denied; EPROTO the segment is truncated,
 * corrupt, not a libmq queue or of another layout version; EUSERS the client
 * table is full. A forked child must attach its own handle: the client
 * table entry (and its liveness lock) belongs to the process that attached.
 */
mq_t *mq_attach(const char *name) MQ_SYMBOL(libmq_attach);

/*
 * mq_detach: leave the client table, unmap the queue and free Q. Messages
 * stay queued. Returns 0, or -1 with errno EINVAL if Q is NULL.
 */
int mq_detach(mq_t *q) MQ_SYMBOL(libmq_detach);

/*
 * mq_remove: unlink the queue NAME; processes attached keep their mapping.
 * Returns 0, or -1 with errno: EINVAL bad name; ENOENT no such queue;
 * EACCES permission denied.
 */
int mq_remove(const char *name) MQ_SYMBOL(libmq_remove);

/*
 * mq_send: copy the LEN bytes at MSG (0..max_msg_size; MSG may be NULL when
 * LEN is 0) into the queue as one message. TIMEOUT_MS: -1 waits for space,
 * 0 never waits for space (only, at most, for the microseconds another
 * sender holds the queue's send lock), >0 waits at most that long
 * (CLOCK_MONOTONIC; the deadline also bounds the wait for the lock). Returns 0
 * once the message is queued, or -1 with errno (nothing queued): EMSGSIZE LEN
 * too large; EINVAL bad argument or timeout below -1; EAGAIN full and
 * TIMEOUT_MS is 0; ETIMEDOUT still full at the deadline; EINTR a signal
 * handler interrupted the wait; EPROTO the segment is corrupt.
 */
int mq_send(mq_t *q, const void *msg, size_t len, int timeout_ms) MQ_SYMBOL(libmq_send);

/*
 * mq_recv: take the oldest message into BUF (CAP bytes) and return its
 * length, or -1 with errno: EMSGSIZE the message is larger than CAP (it stays
 * queued; mq_stats().max_msg_size always suffices); EINVAL bad argument or
 * timeout below -1; EAGAIN empty and TIMEOUT_MS is 0; ETIMEDOUT still empty
 * at the deadline; EINTR a signal handler interrupted the wait; EPROTO the
 * segment is corrupt. TIMEOUT_MS as for mq_send.
 */
ssize_t mq_recv(mq_t *q, void *buf, size_t cap, int timeout_ms) MQ_SYMBOL(libmq_recv);

/*
 * mq_recv_lease: as mq_recv, but the message is leased, not taken: it stays
 * in the queue's memory, invisible to other consumers, until mq_ack retires
 * it or mq_nack gives it back; if this process dies (or detaches) first, it
 * is delivered again, with deliveries + 1, as soon as the broker or a waiting
 * consumer notices (no timeout: the holder's liveness lock tells). Fills
 * *LEASE and returns the length, or -1 with errno as mq_recv (EMSGSIZE: the
 * message stays queued; EINVAL also for a NULL LEASE or an observer handle).
 * Leased messages count toward the capacity: a consumer that never acks
 * makes producers wait. Ordering: first deliveries are FIFO; a message
 * delivered again (nack, dead holder) comes before those never delivered, so
 * it may arrive after newer ones.
 */
ssize_t mq_recv_lease(mq_t *q, void *buf, size_t cap, int timeout_ms, mq_lease_t *lease)
        MQ_SYMBOL(libmq_recv_lease);

/*
 * mq_peek: zero-copy mq_recv_lease: returns a pointer to the message in the
 * queue's memory and its length in *LEN; the bytes stay valid and unchanged
 * until mq_ack or mq_nack of *LEASE (or mq_detach). NULL with errno as
 * mq_recv_lease (no EMSGSIZE).
 */
const void *mq_peek(mq_t *q, size_t *len, int timeout_ms, mq_lease_t *lease) MQ_SYMBOL(libmq_peek);

/*
 * mq_ack: the leased message is done with: retire it (its space is free).
 * mq_nack: give it back: it is delivered again (deliveries + 1) ahead of
 * messages never delivered. Both return 0, or -1 with errno: EINVAL the lease
 * was not taken through Q, is already acked or nacked, or is garbage
 * (nothing changes); EINTR interrupted waiting for the receive lock (the
 * lease stands; call again); EPROTO the segment is damaged.
 */
int mq_ack(mq_t *q, const mq_lease_t *lease) MQ_SYMBOL(libmq_ack);
int mq_nack(mq_t *q, const mq_lease_t *lease) MQ_SYMBOL(libmq_nack);

/*
 * mq_reserve: zero-copy send: room for a message of LEN bytes, to be written
 * in place and published with mq_commit (or dropped with mq_cancel). The
 * buffer is the caller's until then, 64-byte aligned. A reservation holds one
 * message of capacity, not a place in the queue: other producers' messages go
 * on past it; if the process dies before committing, the space comes back
 * and nothing is sent. Returns the buffer, or NULL with errno as mq_send
 * (EMSGSIZE, EAGAIN, ETIMEDOUT, EINTR, EINVAL, EPROTO).
 */
void *mq_reserve(mq_t *q, size_t len, int timeout_ms) MQ_SYMBOL(libmq_reserve);

/*
 * mq_commit: publish the first LEN bytes (LEN <= the reserved length) of the
 * buffer BUF from mq_reserve as one message. mq_cancel: drop the
 * reservation. Return 0, or -1 with errno: EINVAL BUF is not a reservation
 * of Q (or already committed or cancelled), or LEN is more than reserved;
 * EINTR interrupted waiting for a lock (the reservation stands); EPROTO.
 */
int mq_commit(mq_t *q, void *buf, size_t len) MQ_SYMBOL(libmq_commit);
int mq_cancel(mq_t *q, void *buf) MQ_SYMBOL(libmq_cancel);

/*
 * mq_send_batch: send the first k of the N messages MSGS[0..N-1] in order,
 * under one round of the queue's lock (1 <= k <= N: it waits, up to
 * TIMEOUT_MS, only for room for the first; it stops before a message that is
 * too large). Returns k, or -1 with errno as mq_send if none was sent
 * (EINVAL also for N = 0 or MSGS NULL).
 */
int mq_send_batch(mq_t *q, const struct iovec *msgs, unsigned n, int timeout_ms)
        MQ_SYMBOL(libmq_send_batch);

/*
 * mq_recv_batch: take up to N messages (waiting only for the first) into the
 * buffers BUFS[0..N-1], setting each iov_len to its message's length, under
 * one round of the queue's lock. Returns k >= 1, or -1 with errno as mq_recv:
 * EMSGSIZE if the first message is larger than BUFS[0] (nothing taken); a
 * later one that does not fit its buffer ends the batch before it. It may take
 * fewer than are waiting (one call takes at most 64 from a queue whose
 * max_msg is under 64 KiB): call again for the rest.
 */
int mq_recv_batch(mq_t *q, struct iovec *bufs, unsigned n, int timeout_ms)
        MQ_SYMBOL(libmq_recv_batch);

/*
 * mq_interrupt: make every call blocked on Q (spinning, about to sleep, or
 * asleep, in any thread) return -1 with errno EINTR promptly. If no call is
 * waiting, the interrupt stays pending: the next call on Q that would wait
 * returns EINTR at once (a call that can finish without waiting is not
 * affected, and leaves it pending). Async-signal-safe: call it from a signal
 * handler to stop a wait. Returns 0, or -1 with errno EINVAL if Q is NULL.
 */
int mq_interrupt(mq_t *q) MQ_SYMBOL(libmq_interrupt);

/*
 * mq_pollfd: a descriptor for an event loop (epoll, poll, select, libuv's
 * uv_poll_t, GLib, Boost.Asio ...) that becomes readable when the condition
 * in events may hold: MQ_POLLIN a message may be waiting, MQ_POLLOUT there
 * may be room, or both (readable when either may hold). Returns the
 * descriptor, or -1 with errno: EINVAL (Q NULL, events not one of those, an
 * observer handle), EMFILE/ENFILE, or the error of starting its thread.
 *
 * The descriptor belongs to the handle: the same one is returned for the
 * same events; mq_detach closes it (do not close it yourself, and take it
 * out of your epoll set before mq_detach). Only wait for it to be readable;
 * never read from or write to it.
 *
 * Level-triggered: once readable it stays readable until this handle makes
 * a call with timeout 0 that finds the queue empty (mq_recv, mq_recv_batch,
 * mq_recv_lease, mq_peek: EAGAIN, for MQ_POLLIN) or full (mq_send,
 * mq_send_batch, mq_reserve: EAGAIN, for MQ_POLLOUT). So after each wake-up:
 *
 *     while ((n = mq_recv(q, buf, cap, 0)) >= 0)   // timeout 0
 *             handle(buf, n);
 *     if (errno != EAGAIN) error();                 // EPROTO, EMSGSIZE ...
 *
 * A message that arrives at any time after that EAGAIN makes the descriptor
 * readable again: no wake-up is lost and an empty queue gives none. It works
 * with poll, select and epoll, level-triggered (EPOLLIN) or edge-triggered
 * (EPOLLET: each time the condition holds again is a new edge), from several
 * threads and processes at once (each with its own handle). Draining with
 * blocking calls, or stopping before EAGAIN, leaves it readable.
 *
 * How: the first mq_pollfd starts a thread in this process (one per
 * direction) that sleeps on the queue like a blocked mq_recv and writes an
 * eventfd when the condition holds; it blocks all signals. A producer pays a
 * system call only while such a thread actually sleeps (as for a blocked
 * consumer); nothing at all if nobody polls. A client that dies holding
 * leased messages makes the descriptor readable within 200 ms (they are
 * delivered again); a damaged queue makes it readable, so that the next call
 * reports EPROTO.
 */
#define MQ_POLLIN  0x1 /* a message may be waiting */
#define MQ_POLLOUT 0x4 /* there may be room */
int mq_pollfd(mq_t *q, int events) MQ_SYMBOL(libmq_pollfd);

/*
 * mq_stats: fill OUT with a snapshot of the queue, without taking its locks
 * (counters are read one by one, so a busy queue's figures may be a few
 * messages apart). Returns 0, or -1 with errno EINVAL if Q or OUT is NULL.
 */
#ifdef __cplusplus
/* In C++ the function hides struct mq_stats's implicit constructor (as stat()
 * does struct stat's); write "struct mq_stats" there. Keep -Wshadow quiet. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wshadow"
#endif
int mq_stats(mq_t *q, struct mq_stats *out) MQ_SYMBOL(libmq_stats);
#ifdef __cplusplus
#pragma GCC diagnostic pop
#endif

/*
 * mq_clients: copy up to N entries of the client table (live clients and
 * dead ones not yet reused) into OUT. Returns how many entries exist (may be
 * more than N), or -1 with errno EINVAL if Q is NULL or OUT is NULL with N>0.
 */
int mq_clients(mq_t *q, struct mq_client_info *out, size_t n) MQ_SYMBOL(libmq_clients);

/*
 * mq_set_spin: how long, in microseconds, mq_send and mq_recv spin checking
 * the queue before they sleep (0: sleep at once). The default is
 * MQ_DEFAULT_SPIN_US, or the environment variable MQ_SPIN_US (0..1000000; other
 * values are ignored) read when attaching.
 * Returns 0, or -1 with errno EINVAL if Q is NULL or SPIN_US > 1000000.
 */
#define MQ_DEFAULT_SPIN_US 50
int mq_set_spin(mq_t *q, unsigned spin_us) MQ_SYMBOL(libmq_set_spin);

/*
 * mq_errdetail: a one-line description of the last libmq failure in the
 * calling thread ("" if none). The string stays valid until the thread's
 * next libmq call.
 */
const char *mq_errdetail(void) MQ_SYMBOL(libmq_errdetail);

#ifdef __cplusplus
}
#endif

#endif /* LIBMQ_H */
