/*
 * fuzz_attach.h - what the two halves of the attach fuzzer share.
 *
 * fuzz_attach.c turns an input into a segment file (a valid queue in a chosen
 * state, then patched; or the raw bytes) and drives a run: attach, the calls,
 * detach, attach again. fuzz_ops.c makes each call and judges its result: in
 * exact mode (an unmodified queue) against a model of the queue that predicts
 * every result, counter and message; otherwise against the rules any result
 * must follow (documented errno, no invented or duplicated message).
 *
 * Actors are handles of this process: A creates the queue, B leases and
 * reserves and then stays attached, detaches or dies (its descriptor closed
 * without detaching: its liveness lock goes as if the process had died), C is
 * the attach under test and D the attach after C's detach.
 */
#ifndef FUZZ_ATTACH_H
#define FUZZ_ATTACH_H

#include <stddef.h>
#include <stdint.h>

#include "libmq.h"

#define MSG_MAX  2048 /* messages one input may make */
#define HOLD_MAX 128  /* leases, reservations one actor keeps track of */
#define QMAX     64   /* exact mode: messages in the model's ring or requeue ring */

/* Where each message of ours stands, as far as the run can tell. */
enum msg_state {
	MS_NONE,     /* never committed (EAGAIN, EMSGSIZE): delivering it is a bug */
	MS_QUEUED,   /* committed: may be delivered once */
	MS_MAYBE,    /* its commit reported EPROTO: may be delivered once */
	MS_HELD,     /* leased to actor msg.holder: not deliverable until settled */
	MS_RESERVED, /* written into a reservation, not committed */
	MS_RETIRED,  /* taken by mq_recv, or acked: never again */
	MS_LOOSE,    /* untracked: the image's damage may deliver it any number of times */
};

struct msg {
	uint32_t len;
	uint8_t state;  /* enum msg_state */
	uint8_t holder; /* actor index while MS_HELD */
	uint32_t deliveries;
	uint64_t pos; /* exact mode: the ring position it was committed at (lease id - 1) */
};

struct lease_rec {
	mq_lease_t l;
	int msg;                   /* message index, -1 if not one of ours */
	const unsigned char *peek; /* mq_peek's pointer, or NULL */
	int settled;               /* 1 acked, nacked or given back; 2 a settle failed */
};

struct resv {
	unsigned char *buf;
	size_t len;
	uint32_t idx; /* its chunk */
	int done;     /* 1 committed or cancelled; 2 a commit or cancel failed */
};

enum actor_state { ACT_NONE, ACT_LIVE, ACT_GONE, ACT_DEAD, ACT_REAPED };
enum actor_id { ACT_A, ACT_B, ACT_C, ACT_D, ACTORS };

struct actor {
	char name;
	mq_t *q;
	int state; /* enum actor_state */
	int slot;  /* client table entry while attached (or dead) */
	uint32_t token;
	uint32_t role;
	int intr; /* an mq_interrupt is pending: a call that waits returns EINTR */
	uint64_t sent, received, bytes_sent, bytes_received, acked, nacked, in_flight;
	struct lease_rec lease[HOLD_MAX];
	unsigned nlease;
	struct resv resv[HOLD_MAX];
	unsigned nresv;
};

/* struct model: the queue as exact mode predicts it. Positions as segment.h
 * defines them (in a LIFO segment ftail is the number of free chunks). */
struct model {
	uint64_t head, tail, rhead, rtail, fhead, ftail;
	uint64_t free; /* chunks in the pool */
	uint64_t retired, bytes_enq, bytes_ret, acked, nacked, redelivered;
	uint64_t full, empty, recoveries, high_water;
	int ring[QMAX], nring;       /* messages on the ring, oldest first */
	int requeue[QMAX], nrequeue; /* messages given back, oldest first */
};

struct run {
	uint32_t nonce; /* our messages' id field: fresh per input, unknown to the image */
	int lifo;
	uint64_t cap, max_msg;
	uint8_t lseed;         /* message lengths */
	unsigned nlen;         /* messages whose length was picked */
	int exact;             /* the model is exact (see fuzz_ops.c) */
	int wedged;            /* a lock word names a live handle of ours that holds nothing */
	int strict;            /* FUZZ_ATTACH_STRICT: do not step around known libmq bugs */
	int revived;           /* known bug R happened: unknown bytes are not judged */
	uint32_t lockword0[2]; /* the lock words when C attached (send, receive) */
	const char *name;
	/* The segment as C attached it, for messages that are not ours. */
	const unsigned char *img;
	size_t img_len;
	size_t chunks_off, chunk_size;
	struct actor act[ACTORS];
	struct msg msgs[MSG_MAX];
	unsigned nmsgs;
	struct model m;
	unsigned char *scratch; /* max_msg + 64 bytes */
	unsigned char *scratch2;
};

/* fuzz_die: report an oracle failure and abort (the segment file is removed). */
__attribute__((noreturn, format(printf, 1, 2))) void fuzz_die(const char *fmt, ...);
/* fuzz_note: say what happened, with FUZZ_ATTACH_VERBOSE set. */
__attribute__((format(printf, 1, 2))) void fuzz_note(const char *fmt, ...);

/* run_setup_buffers: allocate R's scratch buffers for its max_msg. */
void run_buffers(struct run *r);

/* pick_len: the length of the next message made with length variant V. */
size_t pick_len(struct run *r, unsigned v);

/* op_attach: attach actor WHO (C or D) to R->name and check the result.
 * EXPECT: 1 must attach, 0 must refuse (EPROTO), -1 either. Returns 1 if
 * attached. */
int op_attach(struct run *r, int who, int expect);

/* op_detach: detach WHO (its leases given back, reservations freed). */
void op_detach(struct run *r, int who);

/* op_kill: WHO dies: its descriptor and mapping go without detaching. */
void op_kill(struct run *r, int who);

/* op_run: one fuzzer-chosen operation OP (see fuzz_attach.c) by actor WHO. */
void op_run(struct run *r, int who, uint8_t op);

/* op_send: WHO sends one message of length variant V (setup helper);
 * returns the message index or -1. */
int op_send(struct run *r, int who, unsigned v);

/* op_recv, op_lease, op_settle, op_reserve: the setup's calls. op_recv and
 * op_lease return the message's index, -1 (not ours) or -2 (ours, too short
 * to tell which), or NOTHING if the call failed or was not made. */
#define NOTHING (-3)
int op_recv(struct run *r, int who, size_t cap);
int op_lease(struct run *r, int who, int peek, size_t cap);
void op_settle(struct run *r, int who, unsigned i, int nack);
void op_reserve(struct run *r, int who, size_t len);

/* op_check_state: exact mode: mq_stats, mq_clients and mq_inspect through
 * WHO against the model. Otherwise: their errno and sanity. */
void op_check_state(struct run *r, int who);

/* op_reap: mq_reap through WHO, timeout 0. */
void op_reap(struct run *r, int who);

/* op_drain: WHO takes everything (mq_recv) until the queue says empty;
 * exact mode: exactly the model's messages, then EAGAIN. */
void op_drain(struct run *r, int who);

/* op_leave_exact: the model stops being exact (WHY for the notes). */
void op_leave_exact(struct run *r, const char *why);

/* op_rebase: the model's positions move by DELTA (fuzz_attach.c moved the
 * segment's); B's leases carry the moved ids. */
void op_rebase(struct run *r, uint64_t delta);

/* op_beyond_limit: whether a position of the model has reached 2^63 (then
 * libmq calls the queue corrupt: mq_attach refuses it). */
int op_beyond_limit(const struct run *r);

/* op_lockwords: the two side lock words as C (or any attached actor) sees
 * them; 0 if no actor is attached. */
void op_lockwords(struct run *r, uint32_t w[2]);

#endif /* FUZZ_ATTACH_H */
