/*
 * payload.h - what every benchmark message carries, and how receivers prove
 * they got each message exactly once, intact and in order.
 *
 * A message starts with its sequence number, its producer and its kind; the
 * rest is stamped with words derived from those three: every word of a
 * message up to 256 bytes, one word per 64-byte line up to 64 KiB, one per
 * 4 KiB page beyond, and always the last word. A torn, stale, truncated or
 * misdirected message fails msg_check.
 *
 * Receivers keep a struct tally: per producer, the last sequence number
 * (which must grow: FIFO per producer), the count, the sum and the sum of
 * squares of the numbers seen. tally_verify then proves, across all
 * receivers, that each producer's 0..n-1 arrived once each.
 */
#ifndef MQBENCH_PAYLOAD_H
#define MQBENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "harness.h"

#define MSG_MIN_SIZE 24 /* header (16) + one stamped word */

enum msg_kind {
	MSG_DATA = 0x6d710a01, /* a measured message */
	MSG_WARM,              /* a warm-up message (before the clock starts) */
	MSG_WARMEND,           /* end of the warm-up, one per receiver */
	MSG_END,               /* end of the run, one per receiver */
};

/* msg_alloc: a cache-line aligned, pre-faulted buffer of LEN bytes, or NULL. */
void *msg_alloc(size_t len);

/* msg_stamp: write a message of LEN (>= MSG_MIN_SIZE) bytes into BUF. */
void msg_stamp(void *buf, size_t len, uint32_t kind, uint32_t src, uint64_t seq);

/* msg_check_ends: verify only the header, the first stamped word and the last
 * word of the LEN bytes at BUF (a zero-copy reader that looks at both ends
 * of a message it reads in place); as msg_check otherwise. */
int msg_check_ends(const void *buf, size_t len, uint32_t *kind, uint32_t *src, uint64_t *seq,
                   char *err, size_t errlen);

/* msg_check: verify the LEN bytes at BUF form an intact message; fill KIND,
 * SRC and SEQ from it. Returns 0, or -1 with a description in ERR. */
int msg_check(const void *buf, size_t len, uint32_t *kind, uint32_t *src, uint64_t *seq, char *err,
              size_t errlen);

/* struct tally: one receiver's record of the data messages it took. */
struct tally {
	int nprod;
	int next_only; /* one producer, one consumer: each number must be the next */
	uint64_t last[HARNESS_MAXPROD];
	int seen[HARNESS_MAXPROD];
	uint64_t cnt[HARNESS_MAXPROD], sum[HARNESS_MAXPROD], sq[HARNESS_MAXPROD];
	uint64_t total;
};

/* tally_init: start a tally for NPROD producers; NEXT_ONLY as above. */
void tally_init(struct tally *t, int nprod, int next_only);

/* tally_add: record message SEQ of producer SRC. Returns 0, or -1 with ERR
 * (unknown producer, out of order, duplicate in this receiver). */
int tally_add(struct tally *t, uint32_t src, uint64_t seq, char *err, size_t errlen);

/* tally_store: copy T into a child's result block. */
void tally_store(const struct tally *t, struct child_result *r);

/* tally_verify: with SENT[p] messages sent by each of NPROD producers and the
 * NCONS receivers' results, check every message was received exactly once.
 * Returns 0, or -1 with ERR. */
int tally_verify(const uint64_t *sent, int nprod, const struct child_result *const *cons, int ncons,
                 char *err, size_t errlen);

#endif /* MQBENCH_PAYLOAD_H */
