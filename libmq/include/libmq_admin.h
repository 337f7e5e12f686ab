/* libmq_admin.h - inspecting and administering libmq queues (mqbroker, mqctl, tests). */
#ifndef LIBMQ_ADMIN_H
#define LIBMQ_ADMIN_H

/*
 * Applications need only <libmq.h>. These calls are for the programs that
 * look after queues: they open a queue without joining its client table,
 * take the role of its broker, give back what dead clients held, and report
 * how a segment stands, reasons included. Same conventions as libmq.h: -1
 * (or NULL) and errno, with mq_errdetail() saying what is wrong.
 */
#include <libmq.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * mq_observe: open the queue NAME (NULL: MQ_DEFAULT_NAME) to look at it,
 * without joining its client table: mq_stats, mq_clients, mq_inspect and the
 * broker calls work, sending and receiving fail with EINVAL. Unlike
 * mq_attach it opens a world-writable segment (mq_inspect reports it).
 * Errors as mq_attach.
 */
mq_t *mq_observe(const char *name) MQ_SYMBOL(libmq_observe);

/*
 * mq_create_observed: mq_create without joining the client table (the
 * broker creates its queues so). Errors as mq_create.
 */
mq_t *mq_create_observed(const char *name, size_t capacity, size_t max_msg, mode_t mode)
        MQ_SYMBOL(libmq_create_observed);

/* mq_fd: the descriptor of Q's segment file (for fstat, fchmod, fchown; Q
 * owns it: do not close it), or -1 with errno EINVAL. */
int mq_fd(mq_t *q) MQ_SYMBOL(libmq_fd);

/* mq_name: Q's queue name, or NULL (errno EINVAL). */
const char *mq_name(mq_t *q) MQ_SYMBOL(libmq_name);

/*
 * mq_broker_lock: make Q the queue's broker: take the broker lock (an OFD
 * lock on the segment file that dies with its holder, so a second broker is
 * refused and a dead one's lock is never stale), record our pid and give Q
 * the broker's token, with which mq_reap may take the queue's locks. Held
 * until mq_detach. Returns 0, or -1 with errno: EAGAIN another live process
 * holds it (its pid: mq_stats().broker_pid); EINVAL Q is NULL.
 */
int mq_broker_lock(mq_t *q) MQ_SYMBOL(libmq_broker_lock);

/* mq_broker_beat: record the broker's heartbeat (and pid) in the segment.
 * Returns 0, or -1 with errno EINVAL (Q NULL or not holding the broker lock). */
int mq_broker_beat(mq_t *q) MQ_SYMBOL(libmq_broker_beat);

/* mq_broker_unlock: clear the broker's pid and heartbeat (a clean stop); the
 * lock itself goes with mq_detach. Returns 0 or -1 (EINVAL). */
int mq_broker_unlock(mq_t *q) MQ_SYMBOL(libmq_broker_unlock);

/* mq_broker_alive: 1 if a live process other than this handle holds Q's
 * broker lock, 0 if none, -1 with errno if it cannot be told. */
int mq_broker_alive(mq_t *q) MQ_SYMBOL(libmq_broker_alive);

/*
 * mq_declare_role: add ROLE to this handle's entry in Q's client table, so
 * that inspection (mq_clients, /status, mqctl) shows what the client is when
 * sending and receiving do not say it: MQ_ROLE_BRIDGE (mqbridge, which sends
 * or receives on behalf of another host). The roles sending and receiving
 * record stay. Returns 0, or -1 with errno EINVAL: Q NULL or without a client
 * entry (mq_observe's), or ROLE not MQ_ROLE_BRIDGE.
 */
int mq_declare_role(mq_t *q, uint32_t role) MQ_SYMBOL(libmq_declare_role);

/* struct mq_reaped: a client found dead by mq_reap. */
struct mq_reaped {
	int32_t pid;
	uint32_t role;           /* MQ_ROLE_* bits */
	uint64_t sent_total;     /* what it had sent */
	uint64_t received_total; /* and received */
};

/*
 * mq_reap: find clients that died attached; deliver again the messages they
 * held leased, free what they had reserved or were copying out, and mark
 * their table entries dead. Needs the broker lock (mq_broker_lock) or a
 * client handle; waits at most TIMEOUT_MS for the queue's locks. Fills up to
 * N entries of OUT (may be NULL) and returns how many clients it found dead,
 * or -1 with errno: EINVAL Q cannot take locks; ETIMEDOUT; EINTR; EPROTO.
 */
int mq_reap(mq_t *q, struct mq_reaped *out, size_t n, int timeout_ms) MQ_SYMBOL(libmq_reap);

/* struct mq_lock_info: one of the queue's two locks, as found. */
struct mq_lock_info {
	uint32_t word;        /* the raw lock word (0: free) */
	int32_t holder_pid;   /* who it names (0: nobody, -1: garbage) */
	int32_t holder_alive; /* whether that holder is alive */
	uint32_t op;          /* the operation its holder recorded (0: none) */
};

/*
 * struct mq_inspection: how a segment stands, for mqctl check and tests.
 * The chunk census is one pass over the message storage, not atomic with
 * respect to a running queue.
 */
struct mq_inspection {
	uint32_t version;  /* layout version */
	uint32_t lifo;     /* 1: large-message segment (LIFO pool, copies outside locks) */
	uint64_t queue_id; /* random identity of this creation of the queue */
	uint64_t capacity, max_msg_size, chunk_size, ring_size;
	uint64_t head, tail;                 /* ring positions taken, committed */
	uint64_t requeue_head, requeue_tail; /* requeue ring positions */
	uint64_t pool_head, pool_tail;       /* pool positions (LIFO: tail = stack top) */
	uint64_t chunks_free, chunks_queued, chunks_requeued, chunks_leased, chunks_writing,
	        chunks_taking;
	uint64_t chunks_orphaned; /* held by a client that is gone (the next reap frees them) */
	struct mq_lock_info send_lock, recv_lock;
	int32_t broker_alive; /* a live mqbroker holds the broker lock */
	int32_t broker_pid;   /* the pid it recorded */
	uint32_t file_mode;   /* permission bits of the file */
	uint32_t file_uid, file_gid;
	int32_t unlinked; /* removed from /dev/shm (mappings still work) */
	int32_t sound;    /* 1: nothing below; 0: PROBLEM says what does not check out */
	char problem[256];
	uint64_t reserved[8];
};

/*
 * mq_inspect: look at Q's segment without changing it: the file, the
 * positions, the locks and their holders, the chunks. Sets out->sound to 0
 * and writes the first problem found (a lock or an operation record left by
 * a holder that is gone or that is garbage, positions that do not fit, a
 * reference that does not point back, a world-writable file) to
 * out->problem. Returns 0, or -1 with errno (EINVAL, EPROTO: the mapping is
 * gone, the file shrank).
 */
int mq_inspect(mq_t *q, struct mq_inspection *out) MQ_SYMBOL(libmq_inspect);

/*
 * Time in queue: every message is stamped when sent and measured when first
 * taken from the queue (mq_recv, mq_recv_batch, mq_recv_lease, mq_peek; a
 * redelivery is not measured again), into a histogram kept in the segment
 * since the queue was created. Bucket 0 counts [0, 1024 ns); bucket i counts
 * [mq_tiq_bucket_upper_ns(i - 1), mq_tiq_bucket_upper_ns(i)): four buckets
 * an octave, so a percentile read from it is within 25 % of the truth; the
 * last bucket is open above (upper bound UINT64_MAX). Counters only grow:
 * the difference of two snapshots is the histogram of what was taken
 * between them.
 */
#define MQ_TIQ_NBUCKETS 128
struct mq_time_in_queue {
	uint64_t count;  /* messages measured */
	uint64_t sum_ns; /* their total time in queue */
	uint64_t max_ns; /* the longest, since the queue was created */
	uint64_t bucket[MQ_TIQ_NBUCKETS];
};

/* mq_time_in_queue: Q's histogram, read without taking the queue's locks.
 * Returns 0, or -1 with errno EINVAL (Q or OUT NULL), ENOTSUP (the queue's
 * clock cannot be read on this machine), EPROTO (damaged). */
int mq_time_in_queue(mq_t *q, struct mq_time_in_queue *out) MQ_SYMBOL(libmq_time_in_queue);

/* mq_tiq_bucket_upper_ns: the upper bound of bucket I (exclusive), in
 * nanoseconds; UINT64_MAX for the last. */
uint64_t mq_tiq_bucket_upper_ns(unsigned i) MQ_SYMBOL(libmq_tiq_bucket_upper_ns);

/* struct mq_listed: a libmq queue found in /dev/shm by mq_list. */
struct mq_listed {
	char name[MQ_NAME_MAX + 1]; /* "/orders" */
	uint32_t version;           /* its layout version (mq_attach reads MQ_LAYOUT_CURRENT) */
	uint64_t size;              /* file size, bytes */
	uint32_t uid, mode;         /* owner and permission bits */
};
#define MQ_LAYOUT_CURRENT 3u

/*
 * mq_list: the libmq queues in /dev/shm (files that begin with libmq's magic,
 * of any layout version), sorted by name, up to N into OUT. Files this
 * process may not read are not listed (nor are other programs' objects).
 * Returns how many were found (may be more than N), or -1 with errno
 * (EINVAL: OUT NULL with N > 0; or why /dev/shm cannot be read).
 */
int mq_list(struct mq_listed *out, size_t n) MQ_SYMBOL(libmq_list);

#ifdef __cplusplus
}
#endif

#endif /* LIBMQ_ADMIN_H */
