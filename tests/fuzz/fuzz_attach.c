/* fuzz_attach.c - libFuzzer target: mq_attach, then the queue calls, on untrusted segment files. */
/*
 * Input: byte 0 holds flags, the rest depends on the mode.
 *
 *   flags bit 0 clear: raw mode. The rest of the input is the whole segment
 *     file, written to /dev/shm/mqfuzz-<pid>-<n> before mq_attach.
 *   flags bit 0 set: patch mode. A valid queue is made with mq_create:
 *     byte 1: capacity 1 + (b & 7); byte 2: max message 1 + b;
 *     byte 3: bits 0-1 messages left queued (0..3), bits 2-4 send/receive
 *     rounds first (0..7, so head and tail do not start at 0);
 *     byte 4: seeds the message lengths.
 *     Then the rest is a list of patches applied to the file, each
 *     [offset u16 LE][length u8][length bytes]: the offset is taken modulo
 *     (file length + 64), so a patch may also grow the file; a length of 0
 *     truncates the file to offset % (file length + 1) instead.
 *   flags bit 1: recompute header->geometry_check afterwards, so that
 *     patched geometry gets past the checksum to the deeper checks.
 *   flags bit 2: rebase the ring: head, tail and head_cache move by one
 *     amount, so that tail becomes L - 1 - (flags >> 3 & 3), where L is 2^64,
 *     or 2^63 (MQ_INDEX_LIMIT) if flags bit 5 is set. If the header's
 *     geometry fits the file, the slots move with their positions (the ring
 *     rotates, and every non-zero slot seq moves by the same amount), so a
 *     valid ring stays valid. Near 2^64 mq_attach must refuse the indices;
 *     just below 2^63 it must take them, and our sends cross 2^63.
 *
 * Never changed, in either mode: the two pthread mutexes (send_lock,
 * recv_lock). The locks are trusted once the segment is validated (a writer
 * who can scribble on them can always stall the queue), and a garbage futex
 * word would make the fuzzer hang instead of finding bugs. In raw mode they
 * get the bytes of freshly initialized locks (taken from a real segment).
 * Nor does the file start with an all-zero magic: mq_attach waits 200 ms on
 * such a young file (a creator mid-initialization), so a file shorter than 8
 * bytes is padded to 8 and an all-zero magic gets byte 0 = 1.
 *
 * If mq_attach succeeds, the target checks the header and the indices
 * against the rules of segment_validate (head <= tail + 1; exactly the slots
 * of [head, end) committed, end being tail, or tail + 1 when a producer died
 * between committing slot(tail) and advancing tail; slot(end) not committed
 * unless the ring is full), then simulates the ring from the bytes it wrote:
 * head, tail, head_cache, high_water and the counters from the header, and a
 * copy of the slots, each tagged with where its message came from (the
 * window [head, end) of the image, one of our sends, or stale bytes outside
 * the window). mq_recv takes slot(head) if its seq is head + 1 (EPROTO, and
 * the slot retired, if its length passes max_msg); mq_send writes slot(tail)
 * if tail - head < capacity, reading head only as queue.c does (when
 * head_cache says full, or that high_water would move). Every result
 * (length, bytes, errno) and every mq_stats field the calls move must be the
 * simulation's; messages come out in order (the window, then our sends), none
 * twice, none from stale bytes; after mq_detach the file must hold exactly
 * the simulated indices, counters and slots, and mq_attach must take it
 * again. Anything else, or a sanitizer report, is an abort().
 *
 * What the fuzzer cannot reproduce is a lock whose owner died: the locks are
 * always fresh. So the legal state slot(tail).seq == tail + 1 (a producer
 * died between its commit and advancing tail) is healed by the next send
 * (queue.c, catch_up_tail), which steps tail over it; the model does the same.
 * This holds with or without EOWNERDEAD, which the fuzzer never produces.
 *
 * Two libmq bugs this target found are fixed and now abort if they return:
 *   A. segment_validate refused head == tail + 1, the legal state a consumer
 *      leaves when it takes a dead producer's message before tail catches up.
 *   B. segment_validate looked for a stray commit only in slot(end), not in
 *      every free slot, so a consumer could later take it for a message.
 * FUZZ_ATTACH_LENIENT set: tolerate A and B again (to fuzz an old libmq).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libmq.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_PATCH      1u
#define FLAG_FIX_CHECK  2u
#define FLAG_REBASE     4u
#define FLAG_REBASE_LOW 32u

#define SHM_DIR     "/dev/shm"
#define NAME_PREFIX "/mqfuzz-"
#define HDR         sizeof(struct mq_shm)
#define SLOT_HDR    sizeof(struct mq_slot)
#define SEQ_OFF     offsetof(struct mq_slot, seq)
#define LEN_OFF     offsetof(struct mq_slot, len)
#define LOCK_LEN    sizeof(pthread_mutex_t)
#define PATCH_ROOM  4096 /* bytes a patch list may grow the file by */
#define DRAIN_MAX   32   /* at most this many receives while draining */
#define SETUP_MAX   3    /* messages left queued in patch mode */
#define ULL(x)      ((unsigned long long)(x))

/* Where the message in a slot came from (struct model, tag). */
#define TAG_STALE 0u /* bytes outside the window the image committed */
#define TAG_IMAGE 1u /* the window [head, end) of the image */
#define TAG_SENT  2u /* TAG_SENT + k: our k-th successful mq_send */

/* What mq_attach must do with a file. */
enum expect { EXPECT_ANY, EXPECT_ATTACH, EXPECT_REFUSE };

/* What the simulation says one mq_recv finds. */
enum sim { SIM_EMPTY, SIM_MESSAGE, SIM_CORRUPT };

static const size_t lock_off[2] = {offsetof(struct mq_shm, send_lock),
                                   offsetof(struct mq_shm, recv_lock)};

/* FUZZ_ATTACH_VERBOSE set: say what each input came to (for checking seeds).
 * FUZZ_ATTACH_LENIENT set: tolerate the fixed bugs A and B (see the top). */
static int verbose = -1, strict = -1;

/* The segment file of the input being run, removed even when we abort. */
static char current_path[96];

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
	int err = errno;
	va_list ap;
	fprintf(stderr, "fuzz_attach: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, " [errno %d %s; last libmq error: %s]\n", err, strerror(err),
	        mq_errdetail());
	if (current_path[0])
		unlink(current_path);
	abort();
}

__attribute__((format(printf, 1, 2))) static void note(const char *fmt, ...)
{
	if (!verbose)
		return;
	va_list ap;
	fprintf(stderr, "fuzz_attach: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static uint64_t ld64(const unsigned char *b, size_t off)
{
	uint64_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint32_t ld32(const unsigned char *b, size_t off)
{
	uint32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static void st64(unsigned char *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static void make_name(char *name, size_t nlen, char *path, size_t plen)
{
	static unsigned counter;
	snprintf(name, nlen, NAME_PREFIX "%d-%u", (int)getpid(), counter++);
	snprintf(path, plen, SHM_DIR "%s", name);
}

static int in_lock(size_t off)
{
	for (int i = 0; i < 2; i++)
		if (off >= lock_off[i] && off < lock_off[i] + LOCK_LEN)
			return 1;
	return 0;
}

static void write_all(int fd, const unsigned char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("pwrite of the segment file");
		done += (size_t)n;
	}
}

/* read_file: the whole of PATH, malloc'd with ROOM zeroed bytes spare. */
static unsigned char *read_file(const char *path, size_t *len, size_t room)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		die("open %s", path);
	unsigned char *buf = calloc(1, (size_t)st.st_size + room);
	if (!buf)
		die("out of memory");
	size_t done = 0;
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			die("read %s", path);
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return buf;
}

/* lock_template: the bytes of both locks as mq_create leaves them. */
static const unsigned char *lock_template(void)
{
	static unsigned char tmpl[HDR];
	static int have;
	if (have)
		return tmpl;
	char name[64], path[96];
	make_name(name, sizeof(name), path, sizeof(path));
	mq_t *q = mq_create(name, 1, 1, 0600);
	if (!q)
		die("mq_create %s for the lock template", name);
	if (mq_detach(q) != 0)
		die("mq_detach");
	size_t len;
	unsigned char *img = read_file(path, &len, 0);
	unlink(path);
	if (len < HDR)
		die("mq_create made a %zu-byte segment", len);
	for (int i = 0; i < 2; i++)
		memcpy(tmpl + lock_off[i], img + lock_off[i], LOCK_LEN);
	free(img);
	have = 1;
	return tmpl;
}

/* geometry_check_of: segment_geometry_check() of the image's header fields. */
static uint32_t geometry_check_of(const unsigned char *img, size_t len)
{
	static struct mq_shm hdr; /* aligned as the library expects */
	memset(&hdr, 0, sizeof(hdr));
	memcpy(&hdr, img, len < HDR ? len : HDR);
	return segment_geometry_check(&hdr);
}

/* rebase_slots: when the indices of IMG move by DELTA (FLAG_REBASE), move
 * the slots with their positions, if the header's geometry fits the file. */
static void rebase_slots(unsigned char *img, size_t len, uint64_t delta)
{
	uint64_t cap = ld64(img, offsetof(struct mq_shm, capacity));
	uint64_t max = ld64(img, offsetof(struct mq_shm, max_msg));
	uint64_t ss = ld64(img, offsetof(struct mq_shm, slot_size));
	if (cap == 0 || max == 0 || max > MQ_MAX_MSG_LIMIT || ss != segment_slot_size(max) ||
	    cap > (len - HDR) / ss)
		return;
	size_t n = (size_t)(cap * ss), shift = (size_t)(delta % cap);
	unsigned char *old = malloc(n);
	if (!old)
		die("out of memory");
	memcpy(old, img + HDR, n);
	for (size_t i = 0; i < cap; i++) {
		unsigned char *slot = img + HDR + (size_t)(((i + shift) % cap) * ss);
		memcpy(slot, old + i * ss, (size_t)ss);
		uint64_t seq = ld64(slot, SEQ_OFF);
		if (seq != 0) /* 0: never written */
			st64(slot, SEQ_OFF, seq + delta);
	}
	free(old);
}

/* finish_image: the fix-up flags, and the young-file guard (see the top). */
static void finish_image(unsigned char *img, size_t *len, unsigned flags)
{
	static const size_t index_off[] = {offsetof(struct mq_shm, head),
	                                   offsetof(struct mq_shm, tail),
	                                   offsetof(struct mq_shm, head_cache)};
	const size_t at = offsetof(struct mq_shm, geometry_check);
	if ((flags & FLAG_REBASE) && *len >= HDR) {
		uint64_t limit = (flags & FLAG_REBASE_LOW) ? MQ_INDEX_LIMIT : 0; /* 0: 2^64 */
		uint64_t to = limit - 1 - (flags >> 3 & 3u);
		uint64_t delta = to - ld64(img, offsetof(struct mq_shm, tail));
		for (size_t i = 0; i < sizeof(index_off) / sizeof(index_off[0]); i++)
			st64(img, index_off[i], ld64(img, index_off[i]) + delta);
		rebase_slots(img, *len, delta);
	}
	if ((flags & FLAG_FIX_CHECK) && *len >= at + 4) {
		uint32_t c = geometry_check_of(img, *len);
		memcpy(img + at, &c, sizeof(c));
	}
	if (*len < 8) {
		memset(img + *len, 0, 8 - *len);
		*len = 8;
	}
	if (ld64(img, 0) == 0)
		img[0] = 1;
}

/* struct model: the ring as the image says it is, run by the calls we make. */
struct model {
	const unsigned char *img; /* the file as we wrote it */
	unsigned char *ring;      /* the slots now: the image's, our sends written in */
	uint32_t *tag;            /* per slot, where its message came from (TAG_*) */
	uint64_t cap, max_msg, slot_size;
	uint64_t head0, end0; /* at attach: positions [head0, end0) committed */
	uint64_t head, tail, head_cache, high_water;
	uint64_t bytes_enq, bytes_deq, full_events, empty_events, blocked_sends, blocked_recvs;
	unsigned nsent;     /* our successful sends */
	unsigned next_sent; /* the next of them mq_recv should deliver */
	int tainted;        /* a send met the unrepaired slot(tail).seq == tail + 1 */
	int gap;            /* a free slot past end0 is committed (bug B) */
	/* In patch mode with nothing patched: the messages queued at setup. */
	unsigned nsetup;
	const size_t *setup_len;
	const unsigned char *setup; /* SETUP_MAX x 256 bytes */
};

static uint64_t slot_seq(const unsigned char *slots, uint64_t ss, uint64_t cap, uint64_t pos)
{
	return ld64(slots, (size_t)((pos % cap) * ss) + SEQ_OFF);
}

static uint64_t slot_len(const unsigned char *slots, uint64_t ss, uint64_t cap, uint64_t pos)
{
	return ld64(slots, (size_t)((pos % cap) * ss) + LEN_OFF);
}

/* check_accepted: what a segment that mq_attach accepted must satisfy (the
 * rules of segment_validate). Sets *END, the end of the committed window
 * [head, *END), and *GAP if a free slot past it is committed for its own
 * position (known bug B; an abort in strict mode). */
static void check_accepted(const unsigned char *img, size_t len, uint64_t *end_out, int *gap_out)
{
	if (len < HDR)
		die("mq_attach accepted a %zu-byte file", len);
	uint64_t cap = ld64(img, offsetof(struct mq_shm, capacity));
	uint64_t max = ld64(img, offsetof(struct mq_shm, max_msg));
	uint64_t want = segment_size(cap, max);
	if (ld64(img, 0) != MQ_MAGIC || ld32(img, 8) != MQ_LAYOUT_VERSION)
		die("mq_attach accepted a bad magic or version");
	if (ld32(img, offsetof(struct mq_shm, header_size)) != HDR ||
	    ld64(img, offsetof(struct mq_shm, slots_offset)) != HDR ||
	    ld32(img, offsetof(struct mq_shm, clients_max)) != MQ_CLIENTS_MAX)
		die("mq_attach accepted a bad header size, slot offset or client count");
	if (want == 0 || want != len || ld64(img, offsetof(struct mq_shm, total_size)) != want ||
	    ld64(img, offsetof(struct mq_shm, slot_size)) != segment_slot_size(max))
		die("mq_attach accepted bad geometry: capacity %llu, max %llu, %zu bytes", ULL(cap),
		    ULL(max), len);
	if (ld32(img, offsetof(struct mq_shm, geometry_check)) != geometry_check_of(img, len))
		die("mq_attach accepted a bad geometry checksum");
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		size_t c = offsetof(struct mq_shm, clients) + i * sizeof(struct mq_client_slot);
		if (ld32(img, c) > MQ_CLIENT_DEAD ||
		    ld32(img, c + 4) > (MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER))
			die("mq_attach accepted client table entry %u: state %u, role %u", i,
			    ld32(img, c), ld32(img, c + 4));
	}

	const unsigned char *slots = img + HDR;
	uint64_t ss = segment_slot_size(max);
	uint64_t head = ld64(img, offsetof(struct mq_shm, head));
	uint64_t tail = ld64(img, offsetof(struct mq_shm, tail));
	uint64_t hc = ld64(img, offsetof(struct mq_shm, head_cache));
	if (tail >= MQ_INDEX_LIMIT || head > tail + 1 || (head <= tail && tail - head > cap))
		die("mq_attach accepted head %llu, tail %llu, capacity %llu", ULL(head), ULL(tail),
		    ULL(cap));
	if (hc > head)
		die("mq_attach accepted head %llu with head_cache %llu", ULL(head), ULL(hc));
	uint64_t end = tail;
	if ((head == tail + 1 || tail - head < cap) && slot_seq(slots, ss, cap, tail) == tail + 1)
		end = tail + 1;
	if (head > end)
		die("mq_attach accepted head %llu past the committed end %llu (tail %llu)",
		    ULL(head), ULL(end), ULL(tail));
	for (uint64_t pos = head; pos < end; pos++)
		if (slot_seq(slots, ss, cap, pos) != pos + 1 || slot_len(slots, ss, cap, pos) > max)
			die("mq_attach accepted position %llu of [%llu, %llu): seq %llu, %llu "
			    "bytes",
			    ULL(pos), ULL(head), ULL(end), ULL(slot_seq(slots, ss, cap, pos)),
			    ULL(slot_len(slots, ss, cap, pos)));
	if (end - head < cap && slot_seq(slots, ss, cap, end) == end + 1)
		die("mq_attach accepted a committed slot at position %llu, past [%llu, %llu)",
		    ULL(end), ULL(head), ULL(end));
	*end_out = end;
	*gap_out = 0;
	for (uint64_t pos = end + 1; pos < head + cap; pos++) {
		if (slot_seq(slots, ss, cap, pos) != pos + 1)
			continue;
		if (strict)
			die("libmq bug B: mq_attach accepted a committed free slot: position %llu "
			    "holds seq %llu, past the window [%llu, %llu); mq_recv will deliver it "
			    "once tail reaches it",
			    ULL(pos), ULL(pos + 1), ULL(head), ULL(end));
		note("known bug B: free slot of position %llu committed, past [%llu, %llu)",
		     ULL(pos), ULL(head), ULL(end));
		*gap_out = 1;
		break;
	}
}

/* check_stats: mq_stats against the model. */
static void check_stats(mq_t *q, const struct model *m)
{
	struct mq_stats st;
	if (mq_stats(q, &st) != 0)
		die("mq_stats failed");
	/* As mq_stats computes it: head == tail + 1 (see the top) shows as full. */
	uint64_t depth =
	        m->head > m->tail ? 0 : (m->tail - m->head > m->cap ? m->cap : m->tail - m->head);
	if (st.capacity != m->cap || st.max_msg_size != m->max_msg)
		die("mq_stats: capacity %llu, max %llu; the header says %llu, %llu",
		    ULL(st.capacity), ULL(st.max_msg_size), ULL(m->cap), ULL(m->max_msg));
	if (st.enqueued_total != m->tail || st.dequeued_total != m->head || st.depth != depth)
		die("mq_stats: enqueued %llu, dequeued %llu, depth %llu; expected %llu, %llu, %llu",
		    ULL(st.enqueued_total), ULL(st.dequeued_total), ULL(st.depth), ULL(m->tail),
		    ULL(m->head), ULL(depth));
	if (st.high_water != m->high_water || st.bytes_enqueued_total != m->bytes_enq ||
	    st.bytes_dequeued_total != m->bytes_deq)
		die("mq_stats: high water %llu, bytes in %llu, out %llu; expected %llu, %llu, %llu",
		    ULL(st.high_water), ULL(st.bytes_enqueued_total), ULL(st.bytes_dequeued_total),
		    ULL(m->high_water), ULL(m->bytes_enq), ULL(m->bytes_deq));
	if (st.full_total != m->full_events || st.empty_total != m->empty_events ||
	    st.blocked_sends_total != m->blocked_sends ||
	    st.blocked_recvs_total != m->blocked_recvs)
		die("mq_stats: full %llu, empty %llu, blocked %llu/%llu; expected %llu, %llu, "
		    "%llu/%llu",
		    ULL(st.full_total), ULL(st.empty_total), ULL(st.blocked_sends_total),
		    ULL(st.blocked_recvs_total), ULL(m->full_events), ULL(m->empty_events),
		    ULL(m->blocked_sends), ULL(m->blocked_recvs));
	if (st.clients != 1)
		die("mq_stats: %u live clients, only this one is attached", st.clients);
}

/* check_clients: mq_clients against the client table we wrote. */
static void check_clients(mq_t *q, const unsigned char *img)
{
	static struct mq_client_info info[MQ_CLIENTS_MAX];
	int nonfree = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++)
		nonfree += ld32(img, offsetof(struct mq_shm, clients) +
		                             i * sizeof(struct mq_client_slot)) != MQ_CLIENT_FREE;
	int want = nonfree < MQ_CLIENTS_MAX ? nonfree + 1 : MQ_CLIENTS_MAX;
	int n = mq_clients(q, info, MQ_CLIENTS_MAX);
	if (n != want)
		die("mq_clients: %d entries, expected %d", n, want);
	if (mq_clients(q, NULL, 0) != n)
		die("mq_clients(NULL, 0) disagrees with mq_clients");
	int alive = 0, me = 0;
	for (int i = 0; i < n; i++) {
		alive += info[i].alive != 0;
		me += info[i].alive && info[i].pid == (int32_t)getpid();
	}
	if (alive != 1 || me != 1)
		die("mq_clients: %d live entries, %d of them this process; expected 1, 1", alive,
		    me);
}

/* check_delivery: the order rules for the message (or discarded slot) that
 * mq_recv took from position POS, whose slot was tagged TAG. */
static void check_delivery(struct model *m, uint64_t pos, uint32_t tag, const unsigned char *slot)
{
	if (tag == TAG_IMAGE) {
		if (pos < m->head0 || pos >= m->end0)
			die("model: an image message at position %llu, outside [%llu, %llu)",
			    ULL(pos), ULL(m->head0), ULL(m->end0));
		uint64_t k = pos - m->head0, len = ld64(slot, LEN_OFF);
		if (k < m->nsetup && (len != m->setup_len[k] ||
		                      memcmp(slot + SLOT_HDR, m->setup + 256 * k, (size_t)len)))
			die("segment position %llu does not hold setup message %llu as sent",
			    ULL(pos), ULL(k));
	} else if (tag >= TAG_SENT) {
		unsigned k = tag - TAG_SENT;
		if (k < m->next_sent)
			die("mq_recv delivered our message %u again (position %llu)", k, ULL(pos));
		if (k > m->next_sent && !m->tainted)
			die("mq_recv delivered our message %u before %u (position %llu)", k,
			    m->next_sent, ULL(pos));
		m->next_sent = k + 1;
	} else if (!m->gap) {
		die("mq_recv delivered stale bytes as a message (position %llu, window [%llu, "
		    "%llu))",
		    ULL(pos), ULL(m->head0), ULL(m->end0));
	} else {
		note("known bug B: mq_recv delivered the stray commit at position %llu", ULL(pos));
	}
}

/* model_recv: one mq_recv (timeout 0) into a buffer of exactly max_msg bytes. */
static enum sim model_recv(mq_t *q, struct model *m, unsigned char *buf)
{
	uint64_t pos = m->head;
	size_t i = (size_t)(pos % m->cap);
	const unsigned char *slot = m->ring + i * m->slot_size;
	uint64_t len = ld64(slot, LEN_OFF);
	enum sim want = ld64(slot, SEQ_OFF) != pos + 1 ? SIM_EMPTY
	                : len > m->max_msg             ? SIM_CORRUPT
	                                               : SIM_MESSAGE;
	ssize_t n = mq_recv(q, buf, (size_t)m->max_msg, 0);
	int err = errno;
	if (want == SIM_EMPTY) {
		if (n >= 0 || err != EAGAIN)
			die("mq_recv at position %llu (seq %llu, not committed) returned %zd, "
			    "expected EAGAIN",
			    ULL(pos), ULL(ld64(slot, SEQ_OFF)), n);
		m->empty_events++;
		return want;
	}
	if (want == SIM_CORRUPT) {
		/* The library discards a committed slot of a bad length. */
		if (n >= 0 || err != EPROTO)
			die("mq_recv at position %llu (length %llu > max %llu) returned %zd, "
			    "expected EPROTO",
			    ULL(pos), ULL(len), ULL(m->max_msg), n);
	} else {
		if (n < 0)
			die("mq_recv at position %llu (%llu bytes) failed", ULL(pos), ULL(len));
		if ((uint64_t)n != len || memcmp(buf, slot + SLOT_HDR, (size_t)len) != 0)
			die("mq_recv at position %llu: got %zd bytes, expected %llu (or other "
			    "content)",
			    ULL(pos), n, ULL(len));
		m->bytes_deq += len;
	}
	m->head = pos + 1;
	check_delivery(m, pos, m->tag[i], slot);
	return want;
}

/* model_send: one mq_send (timeout 0) of a small message. */
static void model_send(mq_t *q, struct model *m, unsigned i)
{
	size_t len = i == 0 ? (m->max_msg < 7 ? (size_t)m->max_msg : 7) : 0;
	unsigned char msg[8];
	for (size_t j = 0; j < len; j++)
		msg[j] = (unsigned char)(0xa0 + 16 * i + j);
	uint64_t tail = m->tail, head = m->head_cache;
	/* queue.c catch_up_tail: step over a message a dead producer committed
	 * at tail without advancing tail (at most capacity steps). */
	for (uint64_t k = 0; k < m->cap && ld64(m->ring + (size_t)(tail % m->cap) * m->slot_size,
	                                        SEQ_OFF) == tail + 1;
	     k++)
		tail++;
	if (tail != m->tail)
		note("send stepped tail %llu -> %llu over committed slots", ULL(m->tail),
		     ULL(tail));
	m->tail = tail;
	size_t idx = (size_t)(tail % m->cap);
	unsigned char *slot = m->ring + idx * m->slot_size;
	/* queue.c: head is read only when head_cache says full, or that the
	 * depth would pass the high-water mark. */
	if (tail - head >= m->cap || tail + 1 - head > m->high_water) {
		head = m->head;
		m->head_cache = head;
	}
	int room = tail - head < m->cap;
	if (!m->tainted && room != (m->head <= tail && tail - m->head < m->cap))
		die("model: head_cache %llu gives room %d with head %llu, tail %llu",
		    ULL(m->head_cache), room, ULL(m->head), ULL(tail));
	int rc = mq_send(q, msg, len, 0);
	if (!room) {
		if (rc != -1 || errno != EAGAIN)
			die("mq_send of %zu bytes, tail %llu, head %llu, capacity %llu: returned "
			    "%d, "
			    "expected EAGAIN",
			    len, ULL(tail), ULL(head), ULL(m->cap), rc);
		m->full_events++;
		return;
	}
	if (rc != 0)
		die("mq_send of %zu bytes, tail %llu, head %llu, capacity %llu failed", len,
		    ULL(tail), ULL(head), ULL(m->cap));
	st64(slot, LEN_OFF, len);
	memcpy(slot + SLOT_HDR, msg, len);
	st64(slot, SEQ_OFF, tail + 1);
	m->tag[idx] = TAG_SENT + m->nsent++;
	m->tail = tail + 1;
	m->bytes_enq += len;
	if (m->high_water < tail + 1 - head)
		m->high_water = tail + 1 - head;
}

/* check_file: after mq_detach, the file at PATH must hold the image with the
 * model's indices, counters and slots. */
static void check_file(const char *path, const struct model *m, size_t len)
{
	static const size_t field_off[] = {
	        offsetof(struct mq_shm, head),           offsetof(struct mq_shm, tail),
	        offsetof(struct mq_shm, head_cache),     offsetof(struct mq_shm, high_water),
	        offsetof(struct mq_shm, bytes_enqueued), offsetof(struct mq_shm, bytes_dequeued),
	        offsetof(struct mq_shm, full_events),    offsetof(struct mq_shm, empty_events),
	        offsetof(struct mq_shm, blocked_sends),  offsetof(struct mq_shm, blocked_recvs)};
	const uint64_t field_want[] = {
	        m->head,      m->tail,        m->head_cache,   m->high_water,    m->bytes_enq,
	        m->bytes_deq, m->full_events, m->empty_events, m->blocked_sends, m->blocked_recvs};
	size_t flen;
	unsigned char *f = read_file(path, &flen, 0);
	if (flen != len)
		die("the segment file has %zu bytes after the calls, %zu before", flen, len);
	if (memcmp(f, m->img, offsetof(struct mq_shm, broker_pid)) != 0)
		die("the calls changed the segment's identity or geometry");
	for (size_t i = 0; i < sizeof(field_off) / sizeof(field_off[0]); i++)
		if (ld64(f, field_off[i]) != field_want[i])
			die("the header word at offset %zu holds %llu after the calls, expected "
			    "%llu",
			    field_off[i], ULL(ld64(f, field_off[i])), ULL(field_want[i]));
	for (size_t i = 0; i < m->cap * m->slot_size; i++)
		if (f[HDR + i] != m->ring[i])
			die("slot %llu byte %llu holds 0x%02x after the calls, expected 0x%02x",
			    ULL(i / m->slot_size), ULL(i % m->slot_size), f[HDR + i], m->ring[i]);
	free(f);
}

/* check_reattach: mq_attach must take the segment the calls left. */
static void check_reattach(const char *name, const struct model *m)
{
	mq_t *q = mq_attach(name);
	if (m->tail >= MQ_INDEX_LIMIT) { /* our sends crossed 2^63 (FLAG_REBASE_LOW) */
		if (q || errno != EPROTO)
			die("mq_attach with tail %llu >= 2^63: expected EPROTO", ULL(m->tail));
		return;
	}
	if (!q) {
		if (errno != EPROTO)
			die("mq_attach of the segment the calls left failed with an undocumented "
			    "errno");
		if (m->head == m->tail + 1 && !strict) {
			note("known bug A: re-attach refused head %llu == tail + 1", ULL(m->head));
			return;
		}
		if (m->gap && !strict) {
			note("known bug B: re-attach refused what the stray commit left");
			return;
		}
		die("%smq_attach refused the segment the calls left (head %llu, tail %llu)",
		    m->head == m->tail + 1 ? "libmq bug A: " : "", ULL(m->head), ULL(m->tail));
	}
	check_stats(q, m);
	if (mq_detach(q) != 0)
		die("mq_detach failed");
}

/*
 * exercise: attach to NAME (whose file PATH holds IMG, LEN bytes) and check
 * the calls against the model. EXPECT: what mq_attach must do. NSETUP: the
 * file is an untouched valid segment whose first NSETUP messages are SETUP.
 */
static void exercise(const char *name, const char *path, const unsigned char *img, size_t len,
                     enum expect expect, unsigned nsetup, const size_t *setup_len,
                     const unsigned char *setup)
{
	mq_t *q = mq_attach(name);
	int err = errno;
	note("%zu-byte file: %s", len, q ? "attached" : mq_errdetail());
	if (!q) {
		errno = err;
		if (expect == EXPECT_ATTACH)
			die("mq_attach of an untouched valid segment failed");
		if (err != EPROTO && (err != EUSERS || expect == EXPECT_REFUSE))
			die("mq_attach failed with an undocumented errno");
		return;
	}
	if (expect == EXPECT_REFUSE)
		die("mq_attach accepted tail %llu >= 2^63",
		    ULL(ld64(img, offsetof(struct mq_shm, tail))));
	uint64_t end;
	int gap;
	check_accepted(img, len, &end, &gap);
	struct model m = {
	        .img = img,
	        .cap = ld64(img, offsetof(struct mq_shm, capacity)),
	        .max_msg = ld64(img, offsetof(struct mq_shm, max_msg)),
	        .slot_size = ld64(img, offsetof(struct mq_shm, slot_size)),
	        .head0 = ld64(img, offsetof(struct mq_shm, head)),
	        .end0 = end,
	        .head = ld64(img, offsetof(struct mq_shm, head)),
	        .tail = ld64(img, offsetof(struct mq_shm, tail)),
	        .head_cache = ld64(img, offsetof(struct mq_shm, head_cache)),
	        .high_water = ld64(img, offsetof(struct mq_shm, high_water)),
	        .bytes_enq = ld64(img, offsetof(struct mq_shm, bytes_enqueued)),
	        .bytes_deq = ld64(img, offsetof(struct mq_shm, bytes_dequeued)),
	        .full_events = ld64(img, offsetof(struct mq_shm, full_events)),
	        .empty_events = ld64(img, offsetof(struct mq_shm, empty_events)),
	        .blocked_sends = ld64(img, offsetof(struct mq_shm, blocked_sends)),
	        .blocked_recvs = ld64(img, offsetof(struct mq_shm, blocked_recvs)),
	        .gap = gap,
	        .nsetup = nsetup,
	        .setup_len = setup_len,
	        .setup = setup,
	};
	if (expect == EXPECT_ATTACH && (m.tail - m.head != nsetup || end != m.tail))
		die("valid segment holds [%llu, %llu) with tail %llu, %u messages were left queued",
		    ULL(m.head), ULL(end), ULL(m.tail), nsetup);
	/* The geometry was checked against LEN above, so these stay small. */
	size_t ring_len = (size_t)(m.cap * m.slot_size);
	m.ring = malloc(ring_len);
	m.tag = calloc((size_t)m.cap, sizeof(*m.tag));
	unsigned char *buf = malloc((size_t)m.max_msg + 1);
	if (!m.ring || !m.tag || !buf)
		die("out of memory");
	memcpy(m.ring, img + HDR, ring_len);
	for (uint64_t pos = m.head; pos < end; pos++)
		m.tag[pos % m.cap] = TAG_IMAGE;

	check_stats(q, &m);
	check_clients(q, img);
	for (int i = 0; i < 2; i++)
		model_recv(q, &m, buf);
	for (unsigned i = 0; i < 2; i++)
		model_send(q, &m, i);
	memset(buf, 0x5a, (size_t)m.max_msg + 1);
	if (mq_send(q, buf, (size_t)m.max_msg + 1, 0) != -1 || errno != EMSGSIZE)
		die("mq_send of max + 1 bytes: expected EMSGSIZE");
	enum sim r = SIM_MESSAGE;
	for (unsigned i = 0; i < DRAIN_MAX && r != SIM_EMPTY; i++)
		r = model_recv(q, &m, buf);
	if (r == SIM_EMPTY && !m.tainted && (m.next_sent != m.nsent || m.head < m.end0))
		die("queue drained at head %llu: %u of our %u messages delivered, window ended at "
		    "%llu",
		    ULL(m.head), m.next_sent, m.nsent, ULL(m.end0));
	check_stats(q, &m);
	note("%llu messages taken, %u sent%s", ULL(m.head - m.head0), m.nsent,
	     m.tainted ? " (tainted)" : "");
	if (mq_detach(q) != 0)
		die("mq_detach failed");
	check_file(path, &m, len);
	check_reattach(name, &m);
	free(buf);
	free(m.tag);
	free(m.ring);
}

static void run_raw(const char *name, const char *path, const uint8_t *data, size_t size,
                    unsigned flags)
{
	const unsigned char *tmpl = lock_template();
	unsigned char *img = malloc(size + 8);
	if (!img)
		die("out of memory");
	memcpy(img, data, size);
	for (int i = 0; i < 2; i++)
		for (size_t o = lock_off[i]; o < lock_off[i] + LOCK_LEN && o < size; o++)
			img[o] = tmpl[o];
	finish_image(img, &size, flags);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		die("create %s", path);
	write_all(fd, img, size);
	close(fd);
	exercise(name, path, img, size, EXPECT_ANY, 0, NULL, NULL);
	free(img);
}

static void run_patch(const char *name, const char *path, const uint8_t *data, size_t size,
                      unsigned flags)
{
	static unsigned char setup[SETUP_MAX][256];
	size_t setup_len[SETUP_MAX];
	uint8_t b[4] = {0};
	for (size_t i = 0; i < 4 && i < size; i++)
		b[i] = data[i];
	size_t cap = 1 + (b[0] & 7u), max = 1 + (size_t)b[1];
	unsigned nsend = b[2] & 3u, rounds = (b[2] >> 2) & 7u;
	data += size < 4 ? size : 4;
	size -= size < 4 ? size : 4;

	/* A valid queue, head and tail moved on by ROUNDS, NSEND messages in. */
	mq_t *q = mq_create(name, cap, max, 0600);
	if (!q)
		die("mq_create %s (capacity %zu, max %zu)", name, cap, max);
	unsigned char msg[256], got[256];
	for (unsigned r = 0; r < rounds; r++) {
		size_t len = (b[3] + 5u * r) % (max + 1);
		memset(msg, (int)(r + 1), len);
		if (mq_send(q, msg, len, 0) != 0 || mq_recv(q, got, max, 0) != (ssize_t)len ||
		    memcmp(msg, got, len) != 0)
			die("send/receive round %u on a valid queue", r);
	}
	unsigned nsetup = 0;
	for (unsigned i = 0; i < nsend; i++) {
		size_t len = (b[3] + 13u * i) % (max + 1);
		for (size_t j = 0; j < len; j++)
			msg[j] = (unsigned char)(b[3] ^ (59u * i + j));
		int rc = mq_send(q, msg, len, 0);
		if (i < cap && rc == 0) {
			memcpy(setup[nsetup], msg, len);
			setup_len[nsetup++] = len;
		} else if (i < cap || rc != -1 || errno != EAGAIN) {
			die("mq_send %u of %u on a valid queue of %zu", i, nsend, cap);
		}
	}
	if (mq_detach(q) != 0)
		die("mq_detach");

	size_t orig_len, cur;
	unsigned char *orig = read_file(path, &orig_len, 0);
	unsigned char *img = read_file(path, &cur, PATCH_ROOM);
	size_t room = orig_len + PATCH_ROOM;
	while (size >= 3) {
		size_t off = (size_t)data[0] | (size_t)data[1] << 8, n = data[2];
		data += 3;
		size -= 3;
		if (n == 0) {
			size_t keep = off % (cur + 1);
			memset(img + keep, 0, cur - keep);
			cur = keep;
			continue;
		}
		if (n > size)
			n = size;
		off %= cur + 64;
		for (size_t i = 0; i < n && off + i < room; i++) {
			if (!in_lock(off + i))
				img[off + i] = data[i];
			if (off + i >= cur)
				cur = off + i + 1;
		}
		data += n;
		size -= n;
	}
	/* A truncation then a growth leaves a hole over the locks: refill it. */
	for (int i = 0; i < 2; i++)
		for (size_t o = lock_off[i]; o < lock_off[i] + LOCK_LEN && o < cur; o++)
			img[o] = orig[o];
	/* Untouched by the patches: valid, unless rebased next to 2^64. */
	int untouched = cur == orig_len && memcmp(img, orig, cur) == 0;
	free(orig);
	finish_image(img, &cur, flags);

	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)cur) != 0)
		die("reopen %s", path);
	write_all(fd, img, cur);
	close(fd);
	if (!untouched)
		exercise(name, path, img, cur, EXPECT_ANY, 0, NULL, NULL);
	else if ((flags & FLAG_REBASE) && !(flags & FLAG_REBASE_LOW))
		exercise(name, path, img, cur, EXPECT_REFUSE, 0, NULL, NULL);
	else
		exercise(name, path, img, cur, EXPECT_ATTACH, nsetup, setup_len, &setup[0][0]);
	free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (verbose < 0)
		verbose = getenv("FUZZ_ATTACH_VERBOSE") != NULL;
	if (strict < 0) /* the known bugs A and B are fixed: strict unless told */
		strict = !getenv("FUZZ_ATTACH_LENIENT");
	if (size == 0)
		return 0;
	char name[64], path[96];
	make_name(name, sizeof(name), path, sizeof(path));
	memcpy(current_path, path, sizeof(current_path));
	unsigned flags = data[0];
	if (flags & FLAG_PATCH)
		run_patch(name, path, data + 1, size - 1, flags);
	else
		run_raw(name, path, data + 1, size - 1, flags);
	if (unlink(path) != 0 && errno != ENOENT)
		die("unlink %s", path);
	current_path[0] = 0;
	return 0;
}
