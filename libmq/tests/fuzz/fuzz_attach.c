/* fuzz_attach.c - libFuzzer target: mq_attach, then the queue calls, on untrusted segment files. */
/*
 * Input: byte 0 holds flags, the rest depends on the mode.
 *
 *   flags bit 0 clear: raw mode. The rest of the input is the whole segment
 *     file, written to /dev/shm/mqfuzz-<pid>-<n> (mode 0600) before mq_attach.
 *   flags bit 0 set: patch mode. A valid queue is made with mq_create and
 *     left in a chosen state by handles of this process (fuzz_attach.h: A
 *     creates and sends, B leases and reserves):
 *     byte 1: bit 7 set: a LIFO segment (max message >= MQ_LIFO_MIN_MSG,
 *       flag MQ_SEG_LIFO), capacity 1 + (b & 3); clear: FIFO, capacity
 *       1 + (b & 7);
 *     byte 2: max message: FIFO 16 + b, LIFO MQ_LIFO_MIN_MSG + b;
 *     byte 3: bits 0-2 rounds A sends and takes first (mq_recv, or lease and
 *       ack: the positions do not start at 0); bits 3-5 messages A leaves
 *       queued (at most the capacity, less one if B reserves); bit 6: B
 *       reserves a message's room and does not commit;
 *     byte 4: bits 0-2 messages B leases (some with mq_peek), bits 3-4 how
 *       many of those B nacks (they go to the requeue ring); bits 5-6 what
 *       becomes of B: 0 or 3 stays attached holding the rest, 1 detaches
 *       (its leases are requeued, its reservation freed), 2 dies (its
 *       descriptor and mapping go: its leases and reservation are orphans
 *       until a reap);
 *     byte 5: seeds the message lengths;
 *     byte 6: n, the number of operations (0: the default script below),
 *       then n operation bytes: low nibble the call, high nibble its argument
 *       (fuzz_ops.c, op_run: send, recv, lease, peek, ack, nack, reserve,
 *       commit, cancel, send_batch, recv_batch, stats/clients/inspect, B
 *       settles, B commits or cancels, reap, refused and odd calls);
 *     then the rest is a list of patches applied to the file, each
 *     [offset u24 LE][length u8][length bytes]: the offset is taken modulo
 *     (file length + 64), so a patch may also grow the file; a length of 0
 *     truncates the file to offset % (file length + 1) instead. B, if still
 *     attached, sees the patches in its mapping (and a truncation as SIGBUS,
 *     which libmq's guard turns into EPROTO).
 *   flags bit 1: recompute the header's geometry_check afterwards, so that
 *     patched geometry gets past the checksum to the deeper checks.
 *   flags bit 2 (patch mode): rebase before patching: every position (head,
 *     tail, the requeue and pool positions, chunk positions and ids, B's
 *     lease ids) moves by a multiple of the ring size, and every ring and
 *     pool entry's seq32 with it, so the queue stays valid, with its highest
 *     position at L - 1 - (flags >> 3 & 3), L = 2^64, or 2^63 (MQ_INDEX_LIMIT)
 *     if flags bit 5 is set. Near 2^64 mq_attach must refuse it; just below
 *     2^63 it must take it, and the calls cross 2^63 (EPROTO from there).
 *
 * The file never starts with an all-zero magic: mq_attach waits 200 ms on
 * such a young file (a creator mid-initialization), so a file shorter than 8
 * bytes is padded to 8 and an all-zero magic gets byte 0 = 1. Lock words and
 * operation records are fuzzed like everything else: libmq takes a lock over
 * from a holder that is not alive, and repairs what its record says.
 *
 * Then handle C attaches: mq_attach must take the file or refuse it with
 * EPROTO (or EUSERS, ENOMEM, ENOLCK). If it took it, C runs the operations
 * (every call with timeout 0: nothing may wait), detaches, B detaches if it
 * is still attached, and D attaches: it must not crash, and must take what C
 * left unless that is damaged; D reaps, takes every message left, checks the
 * state and detaches. The oracles (fuzz_ops.c says each): no crash and no
 * sanitizer report; every failing call's errno is one libmq.h documents for
 * it; every message delivered is byte for byte one we sent (our messages
 * carry a fresh nonce, sequence, length and checksum: tests/testmsg.h) or
 * what a chunk of the file held at attach, and none of ours is delivered
 * twice (bar a nack or its holder's detach) or after its send failed. With no
 * byte patched (exact mode) every result is predicted by a model of the
 * queue: each queued or leased message delivered exactly once (redelivered
 * after a nack or its holder's death, with deliveries + 1), first deliveries
 * in FIFO order, requeued ones first; the counters of mq_stats, the entries
 * of mq_clients and mq_inspect's census; and the queue empty and sound at the
 * end. A rebase next to 2^64 must be refused.
 *
 * Known libmq bugs this target steps around unless FUZZ_ATTACH_STRICT is
 * set (then it hangs on them, and the watchdog aborts naming the lock):
 *   W. A lock word that names a live handle which holds nothing never comes
 *      free. The image can name the token C will get (lock.c, token_live
 *      counts q->token as live; handle.h's holds_send/holds_recv, meant to
 *      catch such a forgery, are never set): every locking call of C with
 *      timeout 0 waits forever (mq_ack, mq_commit and a LIFO send's commit
 *      step ignore mq_interrupt as well). Naming B, a live peer, has the same
 *      effect on C. The run notes it and skips the calls that lock.
 *   R. An operation record that the image scribbled on is trusted as far as
 *      its positions go, whatever state the chunk it names is in. A record
 *      keeps the fields of its last operation when it ends (intent_end
 *      clears op only), so setting op alone revives that operation: with op
 *      = MQ_OP_LEASE, repair.c, repair_lease, finds head == pos + 1 and makes
 *      the chunk HELD by the old owner again, although it was nacked (its
 *      REQUEUED state is overwritten): the holder's second settle succeeds
 *      (repair_commit, repair_reserve and repair_pop likewise rewrite a
 *      chunk's state unchecked). The run notes it, and stops judging
 *      unknown bytes delivered after it.
 * Whatever the mode, a watchdog aborts a run that takes more than 5 s.
 *
 * FUZZ_ATTACH_VERBOSE set: say what each input came to (for checking seeds).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "fuzz_attach.h"
#include "handle.h"
#include "segment.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FLAG_PATCH      1u
#define FLAG_FIX_CHECK  2u
#define FLAG_REBASE     4u
#define FLAG_REBASE_LOW 32u

#define SHM_DIR      "/dev/shm"
#define NAME_PREFIX  "/mqfuzz-"
#define SHM_HDR      sizeof(struct mq_shm)
#define PATCH_ROOM   8192 /* bytes a patch list may grow the file by */
#define OPS_MAX      64   /* operations one input may ask for */
#define WATCHDOG_SEC 5
#define ULL(x)       ((unsigned long long)(x))

/* The default script (raw mode, and patch mode with no operations): every
 * call once or twice, in an order that gives each something to act on. */
static const uint8_t default_ops[] = {
        0x0b,                   /* stats, clients, inspect */
        0x01, 0x02, 0x03,       /* recv, lease, peek */
        0x00, 0x10,             /* send, send */
        0x29,                   /* send_batch of 3 */
        0x06, 0x07,             /* reserve, commit it */
        0x16, 0x08,             /* reserve, cancel it */
        0x0a,                   /* recv_batch of 1 */
        0x3a,                   /* recv_batch of 4 */
        0x15, 0x04,             /* nack the lease before the newest, ack the newest */
        0x02, 0x8c, 0x1c, 0x0d, /* lease; B nacks, acks, commits */
        0x0e,                   /* reap */
        0x0f, 0x1f, 0x2f, 0x3f, 0x4f, 0x5f, 0x6f, 0x7f, 0x8f,
        0x9f, 0xaf, 0xbf, 0xcf, 0x01, 0x01, 0x02, 0x01, 0x0b,
};

/* FUZZ_ATTACH_VERBOSE, FUZZ_ATTACH_STRICT (see the top). */
static int verbose = -1, strict = -1;

/* The segment file of the input being run, removed even when we abort. */
static char current_path[96];
static struct run *current_run;

void fuzz_die(const char *fmt, ...)
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

void fuzz_note(const char *fmt, ...)
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

/* ---- the watchdog ---- */

static timer_t watchdog;

/* on_watchdog: a run took WATCHDOG_SEC: some call waits for good. Say which
 * lock words name whom, remove the file, abort. */
static void on_watchdog(int sig)
{
	(void)sig;
	char buf[512];
	int n = snprintf(buf, sizeof(buf),
	                 "fuzz_attach: watchdog: the run did not end within %d s: a call with "
	                 "timeout 0 waits for good",
	                 WATCHDOG_SEC);
	struct run *r = current_run;
	if (r) {
		uint32_t w[2];
		op_lockwords(r, w);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n,
		              " (send lock 0x%08x, receive lock 0x%08x;", w[0], w[1]);
		for (int i = 0; i < ACTORS && n < (int)sizeof(buf) - 40; i++)
			if (r->act[i].state == ACT_LIVE)
				n += snprintf(buf + n, sizeof(buf) - (size_t)n, " %c token 0x%x",
				              r->act[i].name, r->act[i].token);
		n += snprintf(buf + n, sizeof(buf) - (size_t)n, ")");
	}
	if (n > (int)sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	if (write(2, buf, (size_t)n) < 0)
		n = 0;
	if (current_path[0])
		unlink(current_path);
	abort();
}

static void watchdog_arm(int on)
{
	static int made;
	if (!made) {
		struct sigaction sa;
		memset(&sa, 0, sizeof(sa));
		sa.sa_handler = on_watchdog;
		sigemptyset(&sa.sa_mask);
		/* A real-time signal: libFuzzer's -timeout has SIGALRM. */
		struct sigevent ev;
		memset(&ev, 0, sizeof(ev));
		ev.sigev_notify = SIGEV_SIGNAL;
		ev.sigev_signo = SIGRTMIN + 5;
		if (sigaction(SIGRTMIN + 5, &sa, NULL) != 0 ||
		    timer_create(CLOCK_MONOTONIC, &ev, &watchdog) != 0)
			fuzz_die("cannot make the watchdog timer");
		made = 1;
	}
	struct itimerspec its;
	memset(&its, 0, sizeof(its));
	its.it_value.tv_sec = on ? WATCHDOG_SEC : 0;
	if (timer_settime(watchdog, 0, &its, NULL) != 0)
		fuzz_die("timer_settime");
}

/* ---- files ---- */

static void write_all(int fd, const unsigned char *buf, size_t len)
{
	size_t done = 0;
	while (done < len) {
		ssize_t n = pwrite(fd, buf + done, len - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fuzz_die("pwrite of the segment file");
		done += (size_t)n;
	}
}

/* image_alloc: a zeroed buffer of LEN bytes aligned as a mapping is (the
 * segment's structs are cache-line aligned). */
static unsigned char *image_alloc(size_t len)
{
	size_t n = (len + 4095) & ~(size_t)4095;
	unsigned char *p = aligned_alloc(4096, n ? n : 4096);
	if (!p)
		fuzz_die("out of memory for a %zu-byte image", len);
	memset(p, 0, n ? n : 4096);
	return p;
}

/* read_image: PATH's LEN bytes (its size) into a buffer with ROOM spare. */
static unsigned char *read_image(const char *path, size_t *len, size_t room)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0)
		fuzz_die("open %s", path);
	unsigned char *buf = image_alloc((size_t)st.st_size + room);
	size_t done = 0;
	while (done < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			fuzz_die("read %s", path);
		done += (size_t)n;
	}
	close(fd);
	*len = done;
	return buf;
}

/* finish_image: the fix-up flags, and the young-file guard (see the top). */
static void finish_image(unsigned char *img, size_t *len, unsigned flags)
{
	struct mq_shm *s = (struct mq_shm *)img;
	if ((flags & FLAG_FIX_CHECK) && *len >= offsetof(struct mq_shm, geometry_check) + 4) {
		/* The fields the checksum covers end before it; beyond the file
		 * the buffer is zero, as a short file reads. */
		s->geometry_check = segment_geometry_check(s);
	}
	if (*len < 8)
		*len = 8;
	uint64_t magic;
	memcpy(&magic, img, 8);
	if (magic == 0)
		img[0] = 1;
}

/* ---- patch mode: the queue before the patches ---- */

struct params {
	int lifo;
	size_t cap, max;
	unsigned rounds, nqueue, reserve, nlease, nnack, fate;
	uint8_t lseed;
	const uint8_t *ops;
	size_t nops;
};

/* parse: the header bytes of a patch-mode input; advances *DATA, *SIZE. */
static void parse(struct params *p, const uint8_t **data, size_t *size)
{
	uint8_t b[6] = {0};
	size_t h = *size < 6 ? *size : 6;
	memcpy(b, *data, h);
	*data += h;
	*size -= h;
	p->lifo = (b[0] & 0x80) != 0;
	p->cap = p->lifo ? 1 + (b[0] & 3u) : 1 + (b[0] & 7u);
	p->max = p->lifo ? MQ_LIFO_MIN_MSG + (size_t)b[1] : 16 + (size_t)b[1];
	p->rounds = b[2] & 7u;
	p->nqueue = b[2] >> 3 & 7u;
	p->reserve = b[2] >> 6 & 1u;
	p->nlease = b[3] & 7u;
	p->nnack = b[3] >> 3 & 3u;
	p->fate = b[3] >> 5 & 3u;
	p->lseed = b[4];
	size_t n = b[5];
	if (n > *size)
		n = *size;
	p->ops = *data;
	p->nops = n > OPS_MAX ? OPS_MAX : n;
	*data += n;
	*size -= n;
	if (!p->nops) {
		p->ops = default_ops;
		p->nops = sizeof(default_ops);
	}
}

/* setup: the valid queue of P, made and left in its state by A and B (all
 * in exact mode: any surprise is a libmq bug on a valid queue). */
static void setup(struct run *r, const struct params *p)
{
	struct actor *a = &r->act[ACT_A];
	mq_t *q = mq_create(r->name, p->cap, p->max, 0600);
	if (!q)
		fuzz_die("mq_create %s (capacity %zu, max %zu)", r->name, p->cap, p->max);
	a->name = 'A';
	a->q = q;
	a->state = ACT_LIVE;
	a->slot = q->client;
	a->token = q->token;
	r->cap = p->cap;
	r->max_msg = p->max;
	r->lifo = (q->flags & MQ_SEG_LIFO) != 0;
	if (r->lifo != p->lifo)
		fuzz_die("mq_create of max %zu made a %s segment", p->max,
		         r->lifo ? "LIFO" : "FIFO");
	r->lseed = p->lseed;
	run_buffers(r);
	r->m.free = p->cap;
	r->m.ftail = p->cap;

	for (unsigned i = 0; i < p->rounds; i++) {
		op_send(r, ACT_A, i);
		if (i & 1) {
			op_lease(r, ACT_A, 0, p->max);
			op_settle(r, ACT_A, 0, 0);
		} else {
			op_recv(r, ACT_A, p->max);
		}
	}
	size_t nq = p->nqueue;
	if (nq > p->cap - p->reserve)
		nq = p->cap - p->reserve;
	for (unsigned i = 0; i < nq; i++)
		op_send(r, ACT_A, 3 * i + 1);
	op_attach(r, ACT_B, 1);
	unsigned nl = p->nlease < nq ? p->nlease : (unsigned)nq;
	for (unsigned i = 0; i < nl; i++)
		op_lease(r, ACT_B, i & 1, p->max);
	for (unsigned i = 0; i < p->nnack && i < nl; i++)
		op_settle(r, ACT_B, nl - 1 - i, 1); /* lease i */
	if (p->reserve)
		op_reserve(r, ACT_B, pick_len(r, 5));
	op_check_state(r, ACT_A);
	op_detach(r, ACT_A);
	if (p->fate == 1)
		op_detach(r, ACT_B);
	else if (p->fate == 2)
		op_kill(r, ACT_B);
	else
		op_check_state(r, ACT_B);
}

/* check_positions: the image's positions are the model's. */
static void check_positions(struct run *r, const unsigned char *img)
{
	const struct mq_shm *s = (const struct mq_shm *)img;
	const struct model *m = &r->m;
	uint64_t got[6] = {s->head, s->tail, s->rhead, s->rtail, s->fhead, s->ftail};
	uint64_t want[6] = {m->head, m->tail, m->rhead, m->rtail, m->fhead, m->ftail};
	if (memcmp(got, want, sizeof(got)) != 0)
		fuzz_die("setup left positions %llu..%llu requeue %llu..%llu pool %llu..%llu; the "
		         "model has %llu..%llu %llu..%llu %llu..%llu",
		         ULL(got[0]), ULL(got[1]), ULL(got[2]), ULL(got[3]), ULL(got[4]),
		         ULL(got[5]), ULL(want[0]), ULL(want[1]), ULL(want[2]), ULL(want[3]),
		         ULL(want[4]), ULL(want[5]));
}

/* rebase: move every position of the valid image IMG by a multiple of the
 * ring size, so its highest lands just below L (see the top). Returns the
 * amount. */
static uint64_t rebase(struct run *r, unsigned char *img, unsigned flags)
{
	struct mq_shm *s = (struct mq_shm *)img;
	uint64_t mask = s->ring_size - 1;
	uint64_t top = s->head > s->tail ? s->head : s->tail;
	if (s->rtail > top)
		top = s->rtail;
	if (!r->lifo && s->ftail > top)
		top = s->ftail;
	uint64_t limit = (flags & FLAG_REBASE_LOW) ? MQ_INDEX_LIMIT : 0; /* 0: 2^64 */
	uint64_t delta = (limit - 1 - (flags >> 3 & 3u) - top) & ~mask;
	_Atomic uint64_t *moved[] = {&s->head,  &s->tail,  &s->head_cache, &s->rhead,
	                             &s->rtail, &s->fhead, &s->ftail};
	for (size_t i = 0; i < sizeof(moved) / sizeof(moved[0]); i++)
		if (i < 5 || !r->lifo)
			*moved[i] += delta;
	/* Entries carry the low 32 bits of their position + 1 (the lap before
	 * for free ones): all move alike. */
	_Atomic uint64_t *ring = (_Atomic uint64_t *)(img + s->ring_offset);
	_Atomic uint64_t *pool = (_Atomic uint64_t *)(img + s->pool_offset);
	for (uint64_t i = 0; i <= mask; i++) {
		ring[i] += (uint64_t)(uint32_t)delta << 32;
		if (!r->lifo)
			pool[i] += (uint64_t)(uint32_t)delta << 32;
	}
	for (uint64_t i = 0; i < s->capacity; i++) {
		struct mq_chunk *c =
		        (struct mq_chunk *)(img + s->chunks_offset + i * s->chunk_size);
		uint32_t kind = MQ_CHUNK_KIND(c->state);
		if (kind != MQ_CHUNK_FREE && kind != MQ_CHUNK_WRITING ? 1 : !r->lifo)
			c->pos += delta;
		if (c->id)
			c->id += delta;
	}
	op_rebase(r, delta);
	fuzz_note("rebased by %llu: tail %llu", ULL(delta), ULL((uint64_t)s->tail));
	return delta;
}

/* apply_patches: the patch list DATA (SIZE bytes) on IMG (*LEN bytes, room
 * for ROOM). */
static void apply_patches(unsigned char *img, size_t *len, size_t room, const uint8_t *data,
                          size_t size)
{
	size_t cur = *len;
	while (size >= 4) {
		size_t off = (size_t)data[0] | (size_t)data[1] << 8 | (size_t)data[2] << 16;
		size_t n = data[3];
		data += 4;
		size -= 4;
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
			img[off + i] = data[i];
			if (off + i >= cur)
				cur = off + i + 1;
		}
		data += n;
		size -= n;
	}
	*len = cur;
}

/* ---- the run ---- */

/* exercise: C attaches to the file (IMG, LEN bytes) and runs the operations;
 * then C and B leave and D attaches, reaps and drains. EXPECT as
 * op_attach's. */
static void exercise(struct run *r, const unsigned char *img, size_t len, int expect,
                     const uint8_t *ops, size_t nops)
{
	if (!op_attach(r, ACT_C, expect)) {
		/* B is still mapped: the damage (lost pages, even) must come to
		 * it as EPROTO, not as a crash. */
		op_check_state(r, ACT_B);
		op_settle(r, ACT_B, 0, 0);
		op_detach(r, ACT_B);
		return;
	}
	struct mq *q = r->act[ACT_C].q;
	r->img = img;
	r->img_len = len;
	r->chunks_off = (size_t)(q->chunks - (unsigned char *)q->shm);
	r->chunk_size = (size_t)q->chunk_size;
	op_lockwords(r, r->lockword0);
	if (r->exact)
		op_check_state(r, ACT_C);
	for (size_t i = 0; i < nops; i++)
		op_run(r, ACT_C, ops[i]);
	op_check_state(r, ACT_C);
	op_detach(r, ACT_C);
	op_detach(r, ACT_B);

	if (!op_attach(r, ACT_D, r->exact ? !op_beyond_limit(r) : -1))
		return;
	op_check_state(r, ACT_D);
	op_reap(r, ACT_D);
	op_drain(r, ACT_D);
	op_check_state(r, ACT_D);
	if (r->exact)
		for (unsigned i = 0; i < r->nmsgs; i++)
			if (r->msgs[i].state != MS_RETIRED && r->msgs[i].state != MS_NONE)
				fuzz_die("exact mode: message %u (%u bytes) was never taken: it is "
				         "%s",
				         i, r->msgs[i].len,
				         r->msgs[i].state == MS_HELD ? "leased" : "queued");
	fuzz_note("%u messages made, %s", r->nmsgs, r->exact ? "all accounted for" : "damaged");
	op_detach(r, ACT_D);
}

static void run_raw(struct run *r, const char *path, const uint8_t *data, size_t size,
                    unsigned flags)
{
	unsigned char *img = image_alloc(size + 8);
	memcpy(img, data, size);
	finish_image(img, &size, flags);
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		fuzz_die("create %s", path);
	write_all(fd, img, size);
	close(fd);
	r->exact = 0;
	exercise(r, img, size, -1, default_ops, sizeof(default_ops));
	free(img);
}

static void run_patch(struct run *r, const char *path, const uint8_t *data, size_t size,
                      unsigned flags)
{
	struct params p;
	parse(&p, &data, &size);
	r->exact = 1;
	setup(r, &p);

	size_t len;
	unsigned char *img = read_image(path, &len, PATCH_ROOM);
	check_positions(r, img);
	if (flags & FLAG_REBASE)
		rebase(r, img, flags);
	unsigned char *orig = image_alloc(len);
	memcpy(orig, img, len);
	size_t cur = len;
	apply_patches(img, &cur, len + PATCH_ROOM, data, size);
	finish_image(img, &cur, flags);
	r->exact = cur == len && memcmp(img, orig, len) == 0;
	free(orig);
	if (!r->exact) {
		/* The damage may hand the setup's messages out again, or not. */
		for (unsigned i = 0; i < r->nmsgs; i++)
			r->msgs[i].state = MS_LOOSE;
	}
	fuzz_note("patch mode: %s capacity %zu max %zu, %u rounds, %u queued, %u leased "
	          "(%u nacked), reservation %u, B %s; %s",
	          p.lifo ? "LIFO" : "FIFO", p.cap, p.max, p.rounds, p.nqueue, p.nlease, p.nnack,
	          p.reserve, (const char *[]){"live", "detached", "dead", "live"}[p.fate],
	          r->exact ? "unmodified" : "patched");

	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)cur) != 0)
		fuzz_die("reopen %s", path);
	write_all(fd, img, cur);
	close(fd);
	int expect = !r->exact ? -1 : !op_beyond_limit(r);
	exercise(r, img, cur, expect, p.ops, p.nops);
	free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (verbose < 0)
		verbose = getenv("FUZZ_ATTACH_VERBOSE") != NULL;
	if (strict < 0)
		strict = getenv("FUZZ_ATTACH_STRICT") != NULL;
	if (size == 0)
		return 0;
	static unsigned counter;
	char name[64];
	snprintf(name, sizeof(name), NAME_PREFIX "%d-%u", (int)getpid(), counter++);
	snprintf(current_path, sizeof(current_path), SHM_DIR "%s", name);

	struct run *r = calloc(1, sizeof(*r));
	if (!r)
		fuzz_die("out of memory");
	r->name = name;
	r->strict = strict;
	if (getrandom(&r->nonce, sizeof(r->nonce), 0) != (ssize_t)sizeof(r->nonce))
		r->nonce = (uint32_t)time(NULL) ^ (uint32_t)counter * 2654435761u;
	for (int i = 0; i < ACTORS; i++)
		r->act[i].name = (char)('A' + i);
	current_run = r;
	watchdog_arm(1);

	unsigned flags = data[0];
	if (flags & FLAG_PATCH)
		run_patch(r, current_path, data + 1, size - 1, flags);
	else
		run_raw(r, current_path, data + 1, size - 1, flags);
	for (int i = 0; i < ACTORS; i++) /* a run cut short (D refused, ...) */
		op_detach(r, i);

	watchdog_arm(0);
	current_run = NULL;
	if (unlink(current_path) != 0 && errno != ENOENT)
		fuzz_die("unlink %s", current_path);
	current_path[0] = 0;
	free(r->scratch);
	free(r->scratch2);
	free(r);
	return 0;
}
