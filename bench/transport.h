/*
 * transport.h - the interface every mqbench transport implements, and the list of them.
 *
 * A transport moves fixed-size messages one way over a struct chan. The
 * parent makes the channel before forking (create: a named queue, a pipe, a
 * socket pair...) and removes it after the children are gone (destroy). Each
 * child opens the channel for one direction, by name where the transport has
 * names, like an independent program would; sends and receives one message
 * per call, blocking; and closes it. Receivers open before senders (the
 * harness puts a barrier between the two), so a transport may bind in
 * open(CHAN_RECV) and connect in open(CHAN_SEND).
 *
 * Errors: create returns 0, 1 if the transport cannot run this configuration
 * here (the reason in ERR; the run is reported as skipped), or -1 with ERR.
 * open returns 0 or -1 with ERR; send returns 0, recv the message length, or
 * -1 with errno.
 */
#ifndef MQBENCH_TRANSPORT_H
#define MQBENCH_TRANSPORT_H

#include <stddef.h>
#include <sys/types.h>

enum chan_dir { CHAN_SEND = 1, CHAN_RECV = 2 };

/* Transport flags. */
#define T_NOSPIN 1u /* libmq: spinning off (mq_set_spin 0) */
#define T_CAP10  2u /* textbook: the seed's QUEUE_SIZE 10, whatever --capacity says */
#define T_ZCOPY                                                                                    \
	4u /* zero-copy: the producer writes the whole payload in place (every                     \
	      byte, then the stamps); the consumer checks both ends in place */

/* struct chan: one one-way channel of a run. */
struct chan {
	const struct transport *t;
	size_t msg_size;     /* every message of the run has exactly this size */
	size_t capacity;     /* queue depth asked for, in messages */
	size_t depth;        /* depth obtained (mqueue may get less), set by create */
	unsigned spin_us;    /* libmq spin */
	int nrecv;           /* receiving processes (zmq: one endpoint each) */
	int index;           /* receivers: this process's index among them */
	int recv_timeout_ms; /* 0 blocks; > 0: recv fails with EAGAIN after this long */
	char name[96];       /* base name, unique per run: "/mqbench-PID-RUN-X" */
	const char *queue;   /* libmq: attach to this existing queue (--queue) instead of
	                        creating NAME; mqbench neither creates nor removes it */
	int fd[2];           /* pipe, socketpair: [0] write end, [1] read end */
	int ck[8];           /* cleanup registry ids */
	void *priv;          /* per-process state after open */
};

struct transport {
	const char *name;  /* as given to --only */
	const char *title; /* in the table */
	unsigned flags;    /* T_* */
	unsigned only_w;   /* 0: every workload; else the bits 1 << W_* it runs */
	int fifo_shared;   /* one FIFO shared by all receivers: end markers reach each */
	int (*create)(struct chan *c, char *err, size_t errlen);
	int (*open)(struct chan *c, int dir, char *err, size_t errlen);
	int (*send)(struct chan *c, const void *msg, size_t len);
	ssize_t (*recv)(struct chan *c, void *buf, size_t cap);
	void (*close)(struct chan *c);
	void (*destroy)(struct chan *c);
	/* Optional, for transports whose messages are built and read in place
	 * (batches, zero-copy). sbuf: where to build the next message of LEN
	 * bytes (NULL with errno); send is then called with that pointer.
	 * rpeek: the next message in place and its length in *LEN (NULL with
	 * errno), valid until rdone, which gives it back (0 or -1 with errno);
	 * recv is then not used (NULL). */
	void *(*sbuf)(struct chan *c, size_t len);
	const void *(*rpeek)(struct chan *c, size_t *len);
	int (*rdone)(struct chan *c);
};

extern const struct transport transport_libmq, transport_libmq_nospin, transport_libmq_notiq;
extern const struct transport transport_libmq_batch32, transport_libmq_lease;
extern const struct transport transport_libmq_zcopy, transport_libmq_epoll;
extern const struct transport transport_mqueue;
extern const struct transport transport_pipe, transport_socketpair;
extern const struct transport transport_textbook10, transport_textbook;
extern const struct transport transport_zmq;
extern const struct transport transport_spsc, transport_spsc_batch32;

/* transports: every transport, in table order, NULL-terminated. */
extern const struct transport *const transports[];

/* mqueue_limits_prepare: before any mqueue run, allow queues of DEPTH
 * messages of MSG_SIZE bytes where we may: raise RLIMIT_MSGQUEUE (this
 * process and its children) and, if WRITE_SYSCTL and root, raise
 * /proc/sys/fs/mqueue/msg_max and msgsize_max (restored at exit). */
void mqueue_limits_prepare(size_t depth, size_t msg_size, int write_sysctl);

/* mqueue_limits_note: one line on what the mqueue limits were and allowed. */
const char *mqueue_limits_note(void);

/* libmq_queue_probe: attach to the existing queue NAME once and read its
 * geometry into *CAPACITY and *MAX_MSG. Returns 0, or -1 with ERR (no such
 * queue, not a libmq queue, permission denied...). */
int libmq_queue_probe(const char *name, size_t *capacity, size_t *max_msg, char *err,
                      size_t errlen);

/* libmq_version_note, zmq_version_note: "libmq X", "libzmq X.Y.Z". */
const char *libmq_version_note(void);
const char *zmq_version_note(void);

#endif /* MQBENCH_TRANSPORT_H */
