/* segment.c - lay out, checksum and validate the shared-memory segment. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/random.h>
#include <time.h>

#include "atomics.h"
#include "handle.h"
#include "tiq.h"
#include "segment.h"

static uint32_t fnv1a(uint32_t h, const void *p, size_t n)
{
	const unsigned char *b = p;
	for (size_t i = 0; i < n; i++)
		h = (h ^ b[i]) * 16777619u;
	return h;
}

uint32_t segment_geometry_check(const struct mq_shm *s)
{
	uint32_t h = 2166136261u;
	h = fnv1a(h, &s->version, sizeof(s->version));
	h = fnv1a(h, &s->header_size, sizeof(s->header_size));
	h = fnv1a(h, &s->capacity, sizeof(s->capacity));
	h = fnv1a(h, &s->max_msg, sizeof(s->max_msg));
	h = fnv1a(h, &s->chunk_size, sizeof(s->chunk_size));
	h = fnv1a(h, &s->ring_size, sizeof(s->ring_size));
	h = fnv1a(h, &s->ring_offset, sizeof(s->ring_offset));
	h = fnv1a(h, &s->pool_offset, sizeof(s->pool_offset));
	h = fnv1a(h, &s->requeue_offset, sizeof(s->requeue_offset));
	h = fnv1a(h, &s->chunks_offset, sizeof(s->chunks_offset));
	h = fnv1a(h, &s->total_size, sizeof(s->total_size));
	h = fnv1a(h, &s->clients_max, sizeof(s->clients_max));
	h = fnv1a(h, &s->flags, sizeof(s->flags));
	h = fnv1a(h, &s->queue_id, sizeof(s->queue_id));
	h = fnv1a(h, &s->created_unix_ns, sizeof(s->created_unix_ns));
	return h;
}

static uint64_t round_line(uint64_t n)
{
	return (n + MQ_CACHELINE - 1) & ~(uint64_t)(MQ_CACHELINE - 1);
}

int segment_geometry(uint64_t capacity, uint64_t max_msg, struct mq_geometry *g)
{
	if (capacity == 0 || capacity > MQ_CAPACITY_LIMIT || max_msg == 0 ||
	    max_msg > MQ_MAX_MSG_LIMIT)
		return -1;
	g->chunk_size = round_line(sizeof(struct mq_chunk) + max_msg);
	uint64_t rs = 2;
	while (rs <= capacity)
		rs <<= 1;
	g->ring_size = rs;
	g->ring_offset = sizeof(struct mq_shm);
	g->pool_offset = g->ring_offset + rs * sizeof(uint64_t);
	g->requeue_offset = g->pool_offset + rs * sizeof(uint64_t);
	g->chunks_offset = round_line(g->requeue_offset + rs * sizeof(uint32_t));
	if (capacity > (UINT64_MAX - g->chunks_offset) / g->chunk_size)
		return -1;
	/* Its own pair of lines (the creator's and the consumers'). */
	g->tiq_offset = (g->chunks_offset + capacity * g->chunk_size + 127) & ~(uint64_t)127;
	if (g->tiq_offset > UINT64_MAX - sizeof(struct mq_tiq))
		return -1;
	g->total_size = g->tiq_offset + sizeof(struct mq_tiq);
	g->flags = max_msg >= MQ_LIFO_MIN_MSG ? MQ_SEG_LIFO : 0;
	return 0;
}

static uint64_t random64(void)
{
	uint64_t v = 0;
	if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v)) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		v = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15u ^ (uint64_t)ts.tv_sec;
	}
	return v;
}

int segment_init(struct mq_shm *s, uint64_t capacity, uint64_t max_msg, const struct mq_geometry *g)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);

	s->version = MQ_LAYOUT_VERSION;
	s->header_size = sizeof(struct mq_shm);
	s->capacity = capacity;
	s->max_msg = max_msg;
	s->chunk_size = g->chunk_size;
	s->ring_size = g->ring_size;
	s->ring_offset = g->ring_offset;
	s->pool_offset = g->pool_offset;
	s->requeue_offset = g->requeue_offset;
	s->chunks_offset = g->chunks_offset;
	s->total_size = g->total_size;
	s->clients_max = MQ_CLIENTS_MAX;
	s->flags = g->flags;
	s->queue_id = random64();
	s->created_unix_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	s->geometry_check = segment_geometry_check(s);

	/* Token generations start at random values, so that a number written
	 * into a lock word by accident (a pid, say) is not taken for a live
	 * holder's token. */
	uint64_t r = random64();
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		r = r * 6364136223846793005u + 1442695040888963407u;
		mq_store_relaxed(&s->clients[i].gen, (uint32_t)(r >> 40) & MQ_TOKEN_GEN_MASK);
	}
	mq_store_relaxed(&s->broker_gen, (uint32_t)random64() & MQ_TOKEN_GEN_MASK);

	uint64_t mask = g->ring_size - 1;
	_Atomic uint64_t *ring = (_Atomic uint64_t *)((unsigned char *)s + g->ring_offset);
	_Atomic uint64_t *pool = (_Atomic uint64_t *)((unsigned char *)s + g->pool_offset);
	unsigned char *chunks = (unsigned char *)s + g->chunks_offset;
	/* Every ring position starts out as if its lap before had been taken;
	 * the pool holds every chunk, at positions 0..capacity-1. */
	for (uint64_t i = 0; i < g->ring_size; i++) {
		mq_store_relaxed(&ring[i], ((uint64_t)(uint32_t)(i - mask) << 32) | UINT32_MAX);
		if (i < capacity)
			mq_store_relaxed(&pool[i], entry_make(i, (uint32_t)i));
		else
			mq_store_relaxed(&pool[i],
			                 ((uint64_t)(uint32_t)(i - mask) << 32) | UINT32_MAX);
	}
	for (uint64_t i = 0; i < capacity; i++) {
		struct mq_chunk *c = (struct mq_chunk *)(chunks + i * g->chunk_size);
		mq_store_relaxed(&c->pos, i);
		mq_store_relaxed(&c->state, MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0));
	}
	mq_store_relaxed(&s->ftail, capacity);
	tiq_init((struct mq_tiq *)((unsigned char *)s + g->tiq_offset));
	/* Publish: pairs with the acquire load of the magic in segment_validate,
	 * so an attacher that sees the magic sees a complete segment. */
	mq_store_release(&s->magic, MQ_MAGIC);
	return 0;
}

#define BAD(...) (snprintf(detail, len, __VA_ARGS__), EPROTO)

/* validate_indices: the positions' invariants. They hold at every instant
 * (each position only grows, and is read before the ones that bound it from
 * above), so they are checked on a running queue too. */
static int validate_indices(struct mq_shm *w, char *detail, size_t len)
{
	uint64_t cap = w->capacity;
	/* head may pass tail (consumers took what a dead producer committed
	 * before the next producer accounts for it), by at most a batch; the
	 * pool may hold, until the next producer repairs it, a chunk twice: one a
	 * dead producer committed but did not pop, freed again meanwhile. */
	if (mq_spread_bad(&w->head, &w->tail, cap, cap))
		return BAD("corrupt indices (head %" PRIu64 ", tail %" PRIu64 ", capacity %" PRIu64
		           ")",
		           (uint64_t)mq_load_relaxed(&w->head), (uint64_t)mq_load_relaxed(&w->tail),
		           cap);
	if (mq_spread_bad(&w->rhead, &w->rtail, 0, cap))
		return BAD("corrupt requeue indices (%" PRIu64 "..%" PRIu64 ", capacity %" PRIu64
		           ")",
		           (uint64_t)mq_load_relaxed(&w->rhead),
		           (uint64_t)mq_load_relaxed(&w->rtail), cap);
	uint64_t fhead = mq_load_acquire(&w->fhead), ftail = mq_load_acquire(&w->ftail);
	if (w->flags & MQ_SEG_LIFO ? ftail > cap || fhead != 0
	                           : mq_spread_bad(&w->fhead, &w->ftail, cap, 2 * cap))
		return BAD("corrupt pool indices (%" PRIu64 "..%" PRIu64 ", capacity %" PRIu64 ")",
		           fhead, ftail, cap);
	return 0;
}

/* validate_chunks: every reference agrees with the chunk it names, and every
 * chunk is in a known state. Only meaningful on a quiet queue: the caller
 * reports a mismatch only if the positions stood still meanwhile. */
static void validate_chunks(struct mq_shm *w, char *why, size_t len, bool whole)
{
	uint64_t cap = w->capacity, mask = w->ring_size - 1;
	_Atomic uint64_t *ring = (_Atomic uint64_t *)((unsigned char *)w + w->ring_offset);
	_Atomic uint64_t *pool = (_Atomic uint64_t *)((unsigned char *)w + w->pool_offset);
	_Atomic uint32_t *requeue = (_Atomic uint32_t *)((unsigned char *)w + w->requeue_offset);
	unsigned char *chunks = (unsigned char *)w + w->chunks_offset;
#define CHUNK(i) ((struct mq_chunk *)(chunks + (uint64_t)(i)*w->chunk_size))
	/* How many chunks are in each listed state: every one must be named by
	 * its list (a chunk named by nothing is lost space, and would make the
	 * queue look full before it is). */
	uint64_t n_free = 0, n_queued = 0, n_requeued = 0;
	unsigned char *named = calloc(cap / 8 + 1, 1); /* a bit per chunk a list names */
#define NAME(i) (named ? (void)(named[(i) / 8] |= (unsigned char)(1u << ((i) % 8))) : (void)0)
	for (uint64_t i = 0; i < cap; i++) {
		uint64_t st = mq_load_relaxed(&CHUNK(i)->state);
		uint32_t kind = MQ_CHUNK_KIND(st);
		n_free += kind == MQ_CHUNK_FREE;
		n_queued += kind == MQ_CHUNK_QUEUED;
		n_requeued += kind == MQ_CHUNK_REQUEUED;
		if (kind < MQ_CHUNK_FREE || kind > MQ_CHUNK_TAKING ||
		    mq_load_relaxed(&CHUNK(i)->len) > w->max_msg) {
			snprintf(why, len, "chunk %" PRIu64 " in state %u holds %u bytes", i, kind,
			         (unsigned)mq_load_relaxed(&CHUNK(i)->len));
			goto out;
		}
	}
	uint64_t head = mq_load_acquire(&w->head), tail = mq_load_acquire(&w->tail);
	for (uint64_t p = head; p < tail; p++) {
		uint64_t e = mq_load_relaxed(&ring[p & mask]);
		uint32_t idx = (uint32_t)e;
		if ((uint32_t)(e >> 32) != (uint32_t)(p + 1) || idx >= cap ||
		    MQ_CHUNK_KIND(mq_load_relaxed(&CHUNK(idx)->state)) != MQ_CHUNK_QUEUED ||
		    mq_load_relaxed(&CHUNK(idx)->pos) != p) {
			snprintf(why, len, "ring position %" PRIu64 " (entry 0x%016" PRIx64 ")", p,
			         e);
			goto out;
		}
		NAME(idx);
	}
	uint64_t rhead = mq_load_acquire(&w->rhead), rtail = mq_load_acquire(&w->rtail);
	for (uint64_t p = rhead; p < rtail; p++) {
		uint32_t idx = mq_load_relaxed(&requeue[p & mask]);
		if (idx >= cap ||
		    MQ_CHUNK_KIND(mq_load_relaxed(&CHUNK(idx)->state)) != MQ_CHUNK_REQUEUED ||
		    mq_load_relaxed(&CHUNK(idx)->pos) != p) {
			snprintf(why, len, "requeue position %" PRIu64 " (chunk %u)", p, idx);
			goto out;
		}
		NAME(idx);
	}
	uint64_t fhead = mq_load_acquire(&w->fhead), ftail = mq_load_acquire(&w->ftail);
	for (uint64_t p = fhead; p < ftail; p++) {
		uint64_t e = mq_load_relaxed(&pool[p & mask]);
		uint32_t idx = (uint32_t)e;
		if ((uint32_t)(e >> 32) != (uint32_t)(p + 1) || idx >= cap ||
		    mq_load_relaxed(&CHUNK(idx)->state) != MQ_CHUNK_STATE(MQ_CHUNK_FREE, 0) ||
		    mq_load_relaxed(&CHUNK(idx)->pos) != p) {
			snprintf(why, len, "pool position %" PRIu64 " (entry 0x%016" PRIx64 ")", p,
			         e);
			goto out;
		}
		NAME(idx);
	}
	/* Each position above names a different chunk (its pos is the
	 * position), so equal counts mean every chunk is named once. */
	/* That every chunk is named is judged only on a queue nobody is
	 * attached to: a running one moves chunks between the lists faster
	 * than this loop looks (a stack top that goes down and up again looks
	 * unmoved). On a running queue a producer finds a lost chunk itself
	 * (check_producer). */
	if (!whole)
		goto out;
	for (uint64_t i = 0; named && i < cap; i++) {
		uint32_t kind = MQ_CHUNK_KIND(mq_load_relaxed(&CHUNK(i)->state));
		if ((kind == MQ_CHUNK_FREE || kind == MQ_CHUNK_QUEUED ||
		     kind == MQ_CHUNK_REQUEUED) &&
		    !(named[i / 8] & (1u << (i % 8)))) {
			snprintf(why, len,
			         "chunk lists: chunk %" PRIu64 " is %s but no list names it (its "
			         "space is lost)",
			         i,
			         kind == MQ_CHUNK_FREE     ? "free"
			         : kind == MQ_CHUNK_QUEUED ? "queued"
			                                   : "requeued");
			goto out;
		}
	}
	if (n_free != ftail - fhead || n_queued != tail - head || n_requeued != rtail - rhead)
		snprintf(why, len,
		         "chunk lists: %" PRIu64 " free chunks for %" PRIu64
		         " pool positions, %" PRIu64 " queued for %" PRIu64
		         " ring positions, %" PRIu64 " requeued for %" PRIu64,
		         n_free, ftail - fhead, n_queued, tail - head, n_requeued, rtail - rhead);
out:
	free(named);
#undef NAME
#undef CHUNK
}

int segment_validate(const struct mq_shm *s, uint64_t file_size, char *detail, size_t len)
{
	struct mq_shm *w = (struct mq_shm *)s;
	/* magic and version first (both in the first 16 bytes, which the caller
	 * has): an older queue is smaller than this header, and must be told
	 * apart from a truncated one. */
	if (file_size < 16)
		return BAD("truncated: %" PRIu64 " bytes, smaller than the %zu-byte header",
		           file_size, sizeof(struct mq_shm));
	uint64_t magic = mq_load_acquire(&w->magic);
	if (magic != MQ_MAGIC)
		return BAD("not a libmq queue (magic 0x%016" PRIx64 ")", magic);
	if (s->version != MQ_LAYOUT_VERSION)
		return BAD("layout version %u, this libmq reads version %u%s", s->version,
		           MQ_LAYOUT_VERSION,
		           s->version == 1 ? " (made by an older libmq, 0.1: 'mqbroker' moves its "
		                             "messages into a new queue, or 'mqbroker --recreate' "
		                             "replaces it)"
		           : s->version == 2
		                   ? " (made by an older libmq, a development build of 0.2 from "
		                     "before time in queue: 'mqbroker --recreate' replaces it)"
		           : s->version < MQ_LAYOUT_VERSION
		                   ? " (made by an older libmq: 'mqbroker --recreate' replaces it)"
		                   : " (made by a newer libmq)");
	if (file_size < sizeof(struct mq_shm))
		return BAD("truncated: %" PRIu64 " bytes, smaller than the %zu-byte header",
		           file_size, sizeof(struct mq_shm));
	if (s->geometry_check != segment_geometry_check(s))
		return BAD("corrupt header (geometry checksum mismatch)");
	struct mq_geometry g;
	if (s->header_size != sizeof(struct mq_shm) || s->clients_max != MQ_CLIENTS_MAX ||
	    segment_geometry(s->capacity, s->max_msg, &g) != 0 || s->chunk_size != g.chunk_size ||
	    s->ring_size != g.ring_size || s->ring_offset != g.ring_offset ||
	    s->pool_offset != g.pool_offset || s->requeue_offset != g.requeue_offset ||
	    s->chunks_offset != g.chunks_offset || s->total_size != g.total_size ||
	    s->flags != g.flags)
		return BAD("corrupt geometry (capacity %" PRIu64 ", max message %" PRIu64
		           " bytes, size %" PRIu64 ")",
		           s->capacity, s->max_msg, s->total_size);
	if (file_size != g.total_size)
		return BAD("%s: file has %" PRIu64 " bytes, its header says %" PRIu64,
		           file_size < g.total_size ? "truncated" : "corrupt", file_size,
		           g.total_size);
	int rc = validate_indices(w, detail, len);
	if (rc)
		return rc;
	int busy = 0;
	for (int side = 0; side < 2; side++) {
		uint32_t op = mq_load_relaxed(side ? &w->recv.intent.op : &w->send.intent.op);
		if (op > MQ_OP_TAKE_COPY)
			return BAD("corrupt %s side (operation record %u)",
			           side ? "receive" : "send", op);
		busy |= op != MQ_OP_NONE;
	}
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		uint32_t st = mq_load_relaxed(&w->clients[i].state);
		uint32_t role = mq_load_relaxed(&w->clients[i].role);
		if (st > MQ_CLIENT_DEAD ||
		    role > (MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER | MQ_ROLE_BRIDGE))
			return BAD("corrupt client table (entry %u)", i);
	}
	/* The references, judged only if the queue was quiet all along: on a
	 * running one, chunks change hands as we look, and the processes using it
	 * are the evidence. An operation a dead lock holder left half done is
	 * finished by the next holder (repair.c): not a corruption either. */
	if (busy)
		return 0;
	uint64_t before[6] = {mq_load_acquire(&w->head),  mq_load_acquire(&w->tail),
	                      mq_load_acquire(&w->rhead), mq_load_acquire(&w->rtail),
	                      mq_load_acquire(&w->fhead), mq_load_acquire(&w->ftail)};
	char why[200] = "";
	bool attached = false;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX && !attached; i++)
		attached = mq_load_relaxed(&w->clients[i].state) == MQ_CLIENT_ACTIVE;
	validate_chunks(w, why, sizeof(why), !attached);
	if (why[0]) {
		/* A second look a moment later, with the locks free at both ends:
		 * a chunk that was between two lists (a free or a pop under way,
		 * even one done by a reaper that is no client) is in its list by
		 * then; what is still wrong is wrong. */
		char again[sizeof(why)] = "";
		bool quiet =
		        mq_load_acquire(&w->send.lock) == 0 && mq_load_acquire(&w->recv.lock) == 0;
		usleep(2000);
		validate_chunks(w, again, sizeof(again), !attached);
		quiet = quiet && mq_load_acquire(&w->send.lock) == 0 &&
		        mq_load_acquire(&w->recv.lock) == 0;
		if (!quiet || strcmp(why, again) != 0)
			why[0] = '\0';
	}
	uint64_t after[6] = {mq_load_acquire(&w->head),  mq_load_acquire(&w->tail),
	                     mq_load_acquire(&w->rhead), mq_load_acquire(&w->rtail),
	                     mq_load_acquire(&w->fhead), mq_load_acquire(&w->ftail)};
	if (why[0] && memcmp(before, after, sizeof(before)) == 0)
		return BAD("corrupt %s", why);
	return 0;
}
