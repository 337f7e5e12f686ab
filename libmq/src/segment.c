/* segment.c - lay out, checksum and validate the shared-memory segment. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "atomics.h"
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
	h = fnv1a(h, &s->slot_size, sizeof(s->slot_size));
	h = fnv1a(h, &s->slots_offset, sizeof(s->slots_offset));
	h = fnv1a(h, &s->total_size, sizeof(s->total_size));
	h = fnv1a(h, &s->clients_max, sizeof(s->clients_max));
	h = fnv1a(h, &s->created_unix_ns, sizeof(s->created_unix_ns));
	return h;
}

uint64_t segment_size(uint64_t capacity, uint64_t max_msg)
{
	if (capacity == 0 || capacity > MQ_CAPACITY_LIMIT || max_msg == 0 ||
	    max_msg > MQ_MAX_MSG_LIMIT)
		return 0;
	uint64_t slot = segment_slot_size(max_msg);
	if (capacity > (UINT64_MAX - sizeof(struct mq_shm)) / slot)
		return 0;
	return sizeof(struct mq_shm) + capacity * slot;
}

static int init_robust_mutex(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;
	int rc = pthread_mutexattr_init(&a);
	if (rc)
		return rc;
	/* Process-shared: the lock lives in the segment. Robust: when a holder
	 * dies, the kernel hands the lock to the next locker with EOWNERDEAD
	 * instead of wedging everyone (queue.c repairs and carries on). */
	rc = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED);
	if (!rc)
		rc = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST);
	if (!rc)
		rc = pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
	return rc;
}

int segment_init(struct mq_shm *s, uint64_t capacity, uint64_t max_msg, uint64_t total_size)
{
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);

	s->version = MQ_LAYOUT_VERSION;
	s->header_size = sizeof(struct mq_shm);
	s->capacity = capacity;
	s->max_msg = max_msg;
	s->slot_size = segment_slot_size(max_msg);
	s->slots_offset = sizeof(struct mq_shm);
	s->total_size = total_size;
	s->clients_max = MQ_CLIENTS_MAX;
	s->created_unix_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
	s->geometry_check = segment_geometry_check(s);

	int rc = init_robust_mutex(&s->send_lock);
	if (!rc)
		rc = init_robust_mutex(&s->recv_lock);
	if (rc)
		return rc;
	/* Publish: pairs with the acquire load of the magic in segment_validate,
	 * so an attacher that sees the magic sees a complete header. */
	mq_store_release(&s->magic, MQ_MAGIC);
	return 0;
}

#define BAD(...) (snprintf(detail, len, __VA_ARGS__), EPROTO)

int segment_validate(const struct mq_shm *s, uint64_t file_size, char *detail, size_t len)
{
	if (file_size < sizeof(struct mq_shm))
		return BAD("truncated: %" PRIu64 " bytes, smaller than the %zu-byte header",
		           file_size, sizeof(struct mq_shm));
	uint64_t magic = mq_load_acquire(&((struct mq_shm *)s)->magic);
	if (magic != MQ_MAGIC)
		return BAD("not a libmq queue (magic 0x%016" PRIx64 ")", magic);
	if (s->version != MQ_LAYOUT_VERSION)
		return BAD("layout version %u, this libmq reads version %u", s->version,
		           MQ_LAYOUT_VERSION);
	if (s->geometry_check != segment_geometry_check(s))
		return BAD("corrupt header (geometry checksum mismatch)");
	if (s->header_size != sizeof(struct mq_shm) || s->slots_offset != sizeof(struct mq_shm) ||
	    s->clients_max != MQ_CLIENTS_MAX)
		return BAD("corrupt header (header size %u, slots at %" PRIu64 ")", s->header_size,
		           s->slots_offset);
	uint64_t want = segment_size(s->capacity, s->max_msg);
	if (want == 0 || s->slot_size != segment_slot_size(s->max_msg) || s->total_size != want)
		return BAD("corrupt geometry (capacity %" PRIu64 ", max message %" PRIu64
		           " bytes, size %" PRIu64 ")",
		           s->capacity, s->max_msg, s->total_size);
	if (file_size != want)
		return BAD("%s: file has %" PRIu64 " bytes, its header says %" PRIu64,
		           file_size < want ? "truncated" : "corrupt", file_size, want);

	/* Indices. At rest head_cache <= head <= tail, tail - head <= capacity,
	 * and exactly the slots of positions head..tail-1 are committed. A
	 * producer that died between committing a slot and advancing tail leaves
	 * the slot at tail committed too: legal, the next producer repairs it.
	 * The queue may be running while we look and every index only grows, so
	 * each is read before the ones that bound it from above, and head again
	 * after tail for the capacity check. The slot scan is only meaningful on
	 * a quiet queue; on a running one a mismatch there is not reported. */
	struct mq_shm *w = (struct mq_shm *)s;
	uint64_t head_cache = mq_load_acquire(&w->head_cache);
	uint64_t head = mq_load_acquire(&w->head);
	uint64_t tail = mq_load_acquire(&w->tail);
	uint64_t head2 = mq_load_acquire(&w->head);
	if (tail >= MQ_INDEX_LIMIT || head > tail + 1 ||
	    (head2 <= tail && tail - head2 > s->capacity))
		return BAD("corrupt indices (head %" PRIu64 ", tail %" PRIu64 ", capacity %" PRIu64
		           ")",
		           head, tail, s->capacity);
	if (head_cache > head)
		return BAD("corrupt index cache (head %" PRIu64 " cached %" PRIu64 ")", head,
		           head_cache);
	const unsigned char *slots = (const unsigned char *)s + s->slots_offset;
#define SEQ_AT(pos)                                                                                \
	mq_load_acquire(&((struct mq_slot *)(slots + ((pos) % s->capacity) * s->slot_size))->seq)
	/* end: one past the last committed position. A producer that died
	 * between committing slot[tail] and advancing tail leaves end = tail + 1;
	 * a consumer may even have taken that message already (head = tail + 1).
	 * Both are legal: the next send steps tail over it. */
	uint64_t end = tail;
	if ((head == tail + 1 || tail - head < s->capacity) && SEQ_AT(tail) == tail + 1)
		end = tail + 1;
	/* head = tail + 1 with slot[tail] no longer committed is a corrupt
	 * segment only if the queue stood still while we looked: on a running
	 * one, producers may have stepped over that slot and refilled it (a
	 * whole lap) between our reads of tail and of its seq. */
	if (head > end && mq_load_acquire(&w->head) == head && mq_load_acquire(&w->tail) == tail)
		return BAD("corrupt indices (head %" PRIu64 " beyond tail %" PRIu64 ")", head,
		           tail);
	/* The slots are judged only if the queue was quiet all along (head and
	 * tail the same after the scan): on a running queue, producers commit
	 * slots as we look, and the processes using it are the evidence. Every
	 * queued position must be committed with a sane length; every free one
	 * must not look committed, or a consumer would take it for a message
	 * once head gets there. */
	char why[160] = "";
	for (uint64_t pos = head; !why[0] && pos < head + s->capacity; pos++) {
		const struct mq_slot *slot =
		        (const struct mq_slot *)(slots + (pos % s->capacity) * s->slot_size);
		uint64_t seq = SEQ_AT(pos);
		if (pos < end && seq != pos + 1)
			snprintf(why, sizeof(why),
			         "position %" PRIu64 " holds sequence %" PRIu64 ", want %" PRIu64,
			         pos, seq, pos + 1);
		else if (pos < end && slot->len > s->max_msg)
			snprintf(why, sizeof(why),
			         "position %" PRIu64 " holds %" PRIu64 " bytes, maximum %" PRIu64,
			         pos, slot->len, s->max_msg);
		else if (pos >= end && seq == pos + 1)
			snprintf(why, sizeof(why),
			         "free position %" PRIu64 " (tail %" PRIu64 ") is marked committed",
			         pos, tail);
	}
	if (why[0] && mq_load_acquire(&w->head) == head && mq_load_acquire(&w->tail) == tail)
		return BAD("corrupt slot (%s)", why);
#undef SEQ_AT
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		uint32_t st = mq_load_relaxed(&w->clients[i].state);
		uint32_t role = mq_load_relaxed(&w->clients[i].role);
		if (st > MQ_CLIENT_DEAD || role > (MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER))
			return BAD("corrupt client table (entry %u)", i);
	}
	return 0;
}
