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
 *   flags bit 2: rebase the ring (head, tail and both caches moved by one
 *     amount) so that tail becomes 2^64 - 1 - (flags >> 3 & 3): the sends
 *     then cross the wrap of the 64-bit indices.
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
 * If mq_attach succeeds the target checks the header independently, models
 * the ring from the bytes it wrote (head, tail, slot lengths and payloads),
 * and checks mq_stats, mq_clients, mq_recv and mq_send (timeout 0) against
 * the model; any undocumented errno or disagreement is an abort().
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

#define FLAG_PATCH     1u
#define FLAG_FIX_CHECK 2u
#define FLAG_REBASE    4u

#define SHM_DIR     "/dev/shm"
#define NAME_PREFIX "/mqfuzz-"
#define HDR         sizeof(struct mq_shm)
#define SLOT_HDR    sizeof(struct mq_slot)
#define LOCK_LEN    sizeof(pthread_mutex_t)
#define PATCH_ROOM  4096 /* bytes a patch list may grow the file by */
#define DRAIN_MAX   32   /* at most this many receives while draining */
#define SETUP_MAX   3    /* messages left queued in patch mode */

static const size_t lock_off[2] = {offsetof(struct mq_shm, send_lock),
                                   offsetof(struct mq_shm, recv_lock)};

/* FUZZ_ATTACH_VERBOSE set: say what each input came to (for checking seeds). */
static int verbose = -1;

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

/* finish_image: the fix-up flags, and the young-file guard (see the top). */
static void finish_image(unsigned char *img, size_t *len, unsigned flags)
{
	static const size_t index_off[] = {
	        offsetof(struct mq_shm, head), offsetof(struct mq_shm, tail),
	        offsetof(struct mq_shm, head_cache), offsetof(struct mq_shm, tail_cache)};
	const size_t at = offsetof(struct mq_shm, geometry_check);
	if ((flags & FLAG_REBASE) && *len >= HDR) {
		uint64_t to = UINT64_MAX - (flags >> 3 & 3u);
		uint64_t delta = to - ld64(img, offsetof(struct mq_shm, tail));
		for (size_t i = 0; i < sizeof(index_off) / sizeof(index_off[0]); i++) {
			uint64_t v = ld64(img, index_off[i]) + delta;
			memcpy(img + index_off[i], &v, sizeof(v));
		}
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

/* struct model: the ring as the image says it is, plus what we sent since. */
struct model {
	const unsigned char *img;
	uint64_t cap, max_msg, slot_size, head, tail;
	uint64_t taken; /* messages received (or discarded as corrupt) so far */
	unsigned nsent;
	size_t sent_len[2];
	unsigned char sent[2][8];
	/* In patch mode with nothing patched: the messages queued at setup. */
	unsigned nsetup;
	const size_t *setup_len;
	const unsigned char *setup; /* SETUP_MAX x 256 bytes */
};

static uint64_t model_depth(const struct model *m)
{
	return m->tail - m->head + m->nsent - m->taken;
}

/* check_header: what a segment that mq_attach accepted must satisfy. */
static void check_header(const unsigned char *img, size_t len)
{
	if (len < HDR)
		die("mq_attach accepted a %zu-byte file", len);
	uint64_t cap = ld64(img, offsetof(struct mq_shm, capacity));
	uint64_t max = ld64(img, offsetof(struct mq_shm, max_msg));
	uint64_t want = segment_size(cap, max);
	uint64_t head = ld64(img, offsetof(struct mq_shm, head));
	uint64_t tail = ld64(img, offsetof(struct mq_shm, tail));
	if (ld64(img, 0) != MQ_MAGIC || ld32(img, 8) != MQ_LAYOUT_VERSION)
		die("mq_attach accepted a bad magic or version");
	if (ld32(img, offsetof(struct mq_shm, header_size)) != HDR ||
	    ld64(img, offsetof(struct mq_shm, slots_offset)) != HDR ||
	    ld32(img, offsetof(struct mq_shm, clients_max)) != MQ_CLIENTS_MAX)
		die("mq_attach accepted a bad header size, slot offset or client count");
	if (want == 0 || want != len || ld64(img, offsetof(struct mq_shm, total_size)) != want ||
	    ld64(img, offsetof(struct mq_shm, slot_size)) != segment_slot_size(max))
		die("mq_attach accepted bad geometry: capacity %llu, max %llu, %zu bytes",
		    (unsigned long long)cap, (unsigned long long)max, len);
	if (ld32(img, offsetof(struct mq_shm, geometry_check)) != geometry_check_of(img, len))
		die("mq_attach accepted a bad geometry checksum");
	if (head > tail || tail - head > cap)
		die("mq_attach accepted head %llu, tail %llu, capacity %llu",
		    (unsigned long long)head, (unsigned long long)tail, (unsigned long long)cap);
}

/* check_stats: mq_stats against the model. */
static void check_stats(mq_t *q, const struct model *m)
{
	struct mq_stats st;
	if (mq_stats(q, &st) != 0)
		die("mq_stats failed");
	if (st.capacity != m->cap || st.max_msg_size != m->max_msg)
		die("mq_stats: capacity %llu, max %llu; the header says %llu, %llu",
		    (unsigned long long)st.capacity, (unsigned long long)st.max_msg_size,
		    (unsigned long long)m->cap, (unsigned long long)m->max_msg);
	if (st.depth != model_depth(m))
		die("mq_stats: depth %llu, expected %llu", (unsigned long long)st.depth,
		    (unsigned long long)model_depth(m));
	if (st.enqueued_total != m->tail + m->nsent || st.dequeued_total != m->head + m->taken)
		die("mq_stats: enqueued %llu, dequeued %llu; expected %llu, %llu",
		    (unsigned long long)st.enqueued_total, (unsigned long long)st.dequeued_total,
		    (unsigned long long)(m->tail + m->nsent),
		    (unsigned long long)(m->head + m->taken));
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

/* model_recv: one mq_recv (timeout 0) into a buffer of exactly max_msg bytes. */
static void model_recv(mq_t *q, struct model *m, unsigned char *buf)
{
	ssize_t n = mq_recv(q, buf, (size_t)m->max_msg, 0);
	int err = errno;
	uint64_t k = m->taken;
	if (k >= m->tail - m->head + m->nsent) {
		if (n >= 0)
			die("mq_recv on an empty queue returned %zd bytes (head %llu, tail %llu, "
			    "%llu taken, %u sent)",
			    n, (unsigned long long)m->head, (unsigned long long)m->tail,
			    (unsigned long long)m->taken, m->nsent);
		if (err != EAGAIN)
			die("mq_recv on an empty queue: expected EAGAIN");
		return;
	}
	uint64_t len;
	const unsigned char *want;
	if (k < m->tail - m->head) {
		uint64_t pos = m->head + k;
		size_t off = HDR + (size_t)((pos % m->cap) * m->slot_size);
		len = ld64(m->img, off);
		want = m->img + off + SLOT_HDR;
		if (k < m->nsetup &&
		    (len != m->setup_len[k] || memcmp(want, m->setup + 256 * k, len)))
			die("segment slot %llu does not hold message %llu as sent",
			    (unsigned long long)(pos % m->cap), (unsigned long long)k);
	} else {
		len = m->sent_len[k - (m->tail - m->head)];
		want = m->sent[k - (m->tail - m->head)];
	}
	if (n < 0) {
		/* A corrupt slot length: the library discards the slot. */
		if (len > m->max_msg && err == EPROTO) {
			m->taken++;
			return;
		}
		die("mq_recv of message %llu (%llu bytes, max %llu) failed", (unsigned long long)k,
		    (unsigned long long)len, (unsigned long long)m->max_msg);
	}
	if (len > m->max_msg)
		die("mq_recv returned %zd bytes for a slot of length %llu > max %llu", n,
		    (unsigned long long)len, (unsigned long long)m->max_msg);
	if ((uint64_t)n != len || memcmp(buf, want, len) != 0)
		die("mq_recv of message %llu: got %zd bytes, expected %llu (or other content)",
		    (unsigned long long)k, n, (unsigned long long)len);
	m->taken++;
}

/* model_send: one mq_send (timeout 0) of a small message, remembered in M. */
static void model_send(mq_t *q, struct model *m, unsigned i)
{
	size_t len = i == 0 ? (m->max_msg < 7 ? (size_t)m->max_msg : 7) : 0;
	unsigned char msg[8];
	for (size_t j = 0; j < len; j++)
		msg[j] = (unsigned char)(0xa0 + 16 * i + j);
	int full = model_depth(m) >= m->cap;
	int rc = mq_send(q, msg, len, 0);
	if (rc == 0 && !full) {
		memcpy(m->sent[m->nsent], msg, len);
		m->sent_len[m->nsent++] = len;
		return;
	}
	if (rc != 0 && full && errno == EAGAIN)
		return;
	die("mq_send of %zu bytes with depth %llu of %llu returned %d", len,
	    (unsigned long long)model_depth(m), (unsigned long long)m->cap, rc);
}

/*
 * exercise: attach to NAME (whose file holds IMG, LEN bytes) and check the
 * calls against the model. MUST_ATTACH: the file is a valid segment, and the
 * first NSETUP messages are SETUP.
 */
static void exercise(const char *name, const unsigned char *img, size_t len, int must_attach,
                     unsigned nsetup, const size_t *setup_len, const unsigned char *setup)
{
	mq_t *q = mq_attach(name);
	if (verbose)
		fprintf(stderr, "fuzz_attach: %zu-byte file: %s\n", len,
		        q ? "attached" : mq_errdetail());
	if (!q) {
		if (must_attach)
			die("mq_attach of an untouched valid segment failed");
		if (errno != EPROTO && errno != EUSERS)
			die("mq_attach failed with an undocumented errno");
		return;
	}
	check_header(img, len);
	struct model m = {
	        .img = img,
	        .cap = ld64(img, offsetof(struct mq_shm, capacity)),
	        .max_msg = ld64(img, offsetof(struct mq_shm, max_msg)),
	        .slot_size = ld64(img, offsetof(struct mq_shm, slot_size)),
	        .head = ld64(img, offsetof(struct mq_shm, head)),
	        .tail = ld64(img, offsetof(struct mq_shm, tail)),
	        .nsetup = nsetup,
	        .setup_len = setup_len,
	        .setup = setup,
	};
	if (must_attach && m.tail - m.head != nsetup)
		die("valid segment holds %llu messages, %u were left queued",
		    (unsigned long long)(m.tail - m.head), nsetup);
	check_stats(q, &m);
	check_clients(q, img);

	/* max_msg <= len (checked above), so these stay small. */
	unsigned char *buf = malloc((size_t)m.max_msg + 1);
	if (!buf)
		die("out of memory");
	for (int i = 0; i < 2; i++)
		model_recv(q, &m, buf);
	for (unsigned i = 0; i < 2; i++)
		model_send(q, &m, i);
	memset(buf, 0x5a, (size_t)m.max_msg + 1);
	if (mq_send(q, buf, (size_t)m.max_msg + 1, 0) != -1 || errno != EMSGSIZE)
		die("mq_send of max + 1 bytes: expected EMSGSIZE");
	uint64_t left = model_depth(&m);
	for (uint64_t i = 0; i <= left && i < DRAIN_MAX; i++)
		model_recv(q, &m, buf);
	free(buf);
	check_stats(q, &m);
	if (verbose)
		fprintf(stderr, "fuzz_attach: %llu messages taken, %u sent\n",
		        (unsigned long long)m.taken, m.nsent);
	if (mq_detach(q) != 0)
		die("mq_detach failed");
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
	exercise(name, img, size, 0, 0, NULL, NULL);
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
	finish_image(img, &cur, flags);
	int unchanged = cur == orig_len && memcmp(img, orig, cur) == 0;
	free(orig);

	int fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd < 0 || ftruncate(fd, (off_t)cur) != 0)
		die("reopen %s", path);
	write_all(fd, img, cur);
	close(fd);
	if (unchanged)
		exercise(name, img, cur, 1, nsetup, setup_len, &setup[0][0]);
	else
		exercise(name, img, cur, 0, 0, NULL, NULL);
	free(img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (verbose < 0)
		verbose = getenv("FUZZ_ATTACH_VERBOSE") != NULL;
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
