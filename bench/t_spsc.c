/* t_spsc.c - the floor: an unchecked single-producer single-consumer ring. */
#include <sched.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "harness.h"
#include "payload.h"
#include "transport.h"
#include "workloads.h"

/*
 * Not a queue anyone should use: one producer, one consumer, no lock, no
 * check of anything read from the segment, no crash safety, no wake-ups (a
 * waiter spins). It is what moving 64-byte messages between two cores
 * through shared memory costs at the least, measured the way every
 * transport is (same harness, same stamps and checks), so that libmq's rows
 * can be read against it: its slots hold the payload only (one line per
 * 64-byte message, where libmq also moves a chunk header and ring and pool
 * entries), and the two indices are published once per message (`spsc`) or
 * once per 32 messages (`spsc-batch32`: the producer publishes its tail
 * every 32 messages or at a control message, the consumer its head after
 * taking up to 32), which is the most batching can save.
 */

#define SP_BATCH 32

struct sp_shared {
	alignas(128) _Atomic uint64_t tail; /* producer: messages published */
	alignas(128) _Atomic uint64_t head; /* consumer: messages taken */
	alignas(128) uint64_t capacity;
	uint64_t slot_size; /* msg_size rounded up to 64 */
	alignas(128) unsigned char slots[];
};

struct sp {
	struct sp_shared *q;
	size_t map_size;
	unsigned batch;     /* 1 or SP_BATCH */
	uint64_t pos;       /* producer: next to write; consumer: next to take */
	uint64_t seen;      /* the other side's index as last read */
	uint64_t published; /* our index as last published */
	uint64_t slot;      /* pos modulo the capacity */
};

static size_t sp_slot(size_t msg_size)
{
	return (msg_size + 63) & ~(size_t)63;
}

static int sp_create(struct chan *c, char *err, size_t errlen)
{
	size_t size = sizeof(struct sp_shared) + c->capacity * sp_slot(c->msg_size);
	struct sp_shared *q = shm_make(c->name, size, &c->ck[0], err, errlen);
	if (!q)
		return -1;
	q->capacity = c->capacity;
	q->slot_size = sp_slot(c->msg_size);
	munmap(q, size);
	c->depth = c->capacity;
	return 0;
}

static int sp_open(struct chan *c, int dir, unsigned batch, char *err, size_t errlen)
{
	(void)dir;
	static struct sp sps[4]; /* a process opens at most two channels */
	struct sp *p = NULL;
	for (int i = 0; i < 4 && !p; i++)
		if (!sps[i].q)
			p = &sps[i];
	if (!p) {
		snprintf(err, errlen, "%s: too many rings open", c->name);
		return -1;
	}
	size_t map_size;
	void *m = shm_map(c->name, &map_size, err, errlen);
	if (!m)
		return -1;
	memset(p, 0, sizeof(*p));
	p->q = m;
	p->map_size = map_size;
	p->batch = batch;
	c->priv = p;
	return 0;
}

static int sp_open1(struct chan *c, int dir, char *err, size_t errlen)
{
	return sp_open(c, dir, 1, err, errlen);
}

static int sp_open32(struct chan *c, int dir, char *err, size_t errlen)
{
	return sp_open(c, dir, SP_BATCH, err, errlen);
}

/* sp_wait: spin until *IDX differs from OLD (yielding now and then, for a
 * run with both ends on one CPU); returns its value. */
static uint64_t sp_wait(_Atomic uint64_t *idx, uint64_t old)
{
	unsigned spins = 0;
	uint64_t v;
	while ((v = atomic_load_explicit(idx, memory_order_acquire)) == old)
		if (++spins % 65536 == 0)
			sched_yield();
		else
			cpu_relax();
	return v;
}

static int sp_send(struct chan *c, const void *msg, size_t len)
{
	struct sp *p = c->priv;
	struct sp_shared *q = p->q;
	while (p->pos - p->seen >= q->capacity) {
		if (p->published != p->pos) { /* the consumer waits for what we hold back */
			atomic_store_explicit(&q->tail, p->pos, memory_order_release);
			p->published = p->pos;
		}
		p->seen = sp_wait(&q->head, p->seen);
	}
	memcpy(q->slots + p->slot * q->slot_size, msg, len);
	p->pos++;
	if (++p->slot == q->capacity)
		p->slot = 0;
	uint32_t kind;
	memcpy(&kind, (const unsigned char *)msg + 12, sizeof(kind)); /* payload.h's header */
	if (p->pos - p->published >= p->batch || kind != MSG_DATA) {
		atomic_store_explicit(&q->tail, p->pos, memory_order_release);
		p->published = p->pos;
	}
	return 0;
}

static ssize_t sp_recv(struct chan *c, void *buf, size_t cap)
{
	struct sp *p = c->priv;
	struct sp_shared *q = p->q;
	if (p->pos == p->seen) {
		if (p->published != p->pos) { /* the producer may wait for this room */
			atomic_store_explicit(&q->head, p->pos, memory_order_release);
			p->published = p->pos;
		}
		p->seen = sp_wait(&q->tail, p->seen);
	}
	size_t len = c->msg_size < cap ? c->msg_size : cap;
	memcpy(buf, q->slots + p->slot * q->slot_size, len);
	p->pos++;
	if (++p->slot == q->capacity)
		p->slot = 0;
	if (p->pos - p->published >= p->batch) {
		atomic_store_explicit(&q->head, p->pos, memory_order_release);
		p->published = p->pos;
	}
	return (ssize_t)len;
}

static void sp_close(struct chan *c)
{
	struct sp *p = c->priv;
	if (!p)
		return;
	if (p->published != p->pos) /* the producer's last messages */
		atomic_store_explicit(&p->q->tail, p->pos, memory_order_release);
	munmap(p->q, p->map_size);
	p->q = NULL;
	c->priv = NULL;
}

static void sp_destroy(struct chan *c)
{
	shm_unlink(c->name);
	cleanup_forget(c->ck[0]);
}

const struct transport transport_spsc = {
        .name = "spsc",
        .title = "limit: unchecked SPSC ring",
        .only_w = 1u << W_TPUT64,
        .fifo_shared = 1,
        .create = sp_create,
        .open = sp_open1,
        .send = sp_send,
        .recv = sp_recv,
        .close = sp_close,
        .destroy = sp_destroy,
};

const struct transport transport_spsc_batch32 = {
        .name = "spsc-batch32",
        .title = "limit: unchecked SPSC ring, batches of 32",
        .only_w = 1u << W_TPUT64,
        .fifo_shared = 1,
        .create = sp_create,
        .open = sp_open32,
        .send = sp_send,
        .recv = sp_recv,
        .close = sp_close,
        .destroy = sp_destroy,
};
