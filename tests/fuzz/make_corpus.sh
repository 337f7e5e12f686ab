#!/bin/sh
# make_corpus.sh - regenerates the fuzz_attach seed corpus from real segments made by libmq.
#
# usage: tests/fuzz/make_corpus.sh [OUTPUT_DIR]   (default: tests/fuzz/corpus)
#
# Compiles a small generator against the library sources (segment.h gives the
# offsets), makes real queues in /dev/shm, and writes the seeds: raw-mode
# inputs (flags byte + a whole segment file, intact or damaged) and
# patch-mode inputs (flags, geometry bytes, then [offset u16][len u8][bytes]
# patches; see the top of fuzz_attach.c). No seed may make the target abort
# (with FUZZ_ATTACH_STRICT set, the patch-seq-dead-producer*, raw-dead-producer
# and patch-seq-stray-commit* seeds do: they show the known libmq bugs A and B
# described there).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${1:-$here/corpus}
cc=${CC:-cc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cat >"$tmp/gen.c" <<'EOF'
/* gen.c - writes the fuzz_attach seed corpus (see make_corpus.sh). */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libmq.h"
#include "segment.h"

#define OFF(f)  offsetof(struct mq_shm, f)
#define HDR     sizeof(struct mq_shm)
#define SEQ_OFF offsetof(struct mq_slot, seq)
#define LEN_OFF offsetof(struct mq_slot, len)

static const char *outdir;
static unsigned char in[65536];
static size_t in_len;

static void fail(const char *what)
{
	fprintf(stderr, "gen: %s: %s (%s)\n", what, strerror(errno), mq_errdetail());
	exit(1);
}

static void emit(const char *name)
{
	char path[4096];
	snprintf(path, sizeof(path), "%s/%s", outdir, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(in, 1, in_len, f) != in_len || fclose(f) != 0)
		fail(path);
}

/* segment: a real queue's file, RECV_ROUNDS send/receive pairs done, then
 * NMSG messages "msg<i>" left queued. Returns its length. */
static size_t segment(unsigned char *buf, size_t cap, size_t max, unsigned rounds, unsigned nmsg)
{
	char name[64], path[96];
	snprintf(name, sizeof(name), "/mqfuzz-gen-%d", (int)getpid());
	snprintf(path, sizeof(path), "/dev/shm%s", name);
	mq_t *q = mq_create(name, cap, max, 0600);
	if (!q)
		fail("mq_create");
	char got[4096];
	for (unsigned r = 0; r < rounds; r++)
		if (mq_send(q, "r", 1, 0) != 0 || mq_recv(q, got, sizeof(got), 0) != 1)
			fail("round");
	for (unsigned i = 0; i < nmsg; i++) {
		char m[16];
		int n = snprintf(m, sizeof(m), "msg%u", i);
		if (mq_send(q, m, (size_t)n < max ? (size_t)n : max, 0) != 0)
			fail("mq_send");
	}
	mq_detach(q);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, buf, 65536);
	if (n < 0)
		fail("read segment");
	close(fd);
	mq_remove(name);
	return (size_t)n;
}

static void put64(unsigned char *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static void put32(unsigned char *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static uint32_t rng = 12345;
static unsigned char rnd(void)
{
	rng = rng * 1103515245u + 12345u;
	return (unsigned char)(rng >> 16);
}

/* raw: start a raw-mode input of LEN bytes of SEG. */
static void raw(unsigned flags, const unsigned char *seg, size_t len)
{
	in[0] = (unsigned char)flags;
	memcpy(in + 1, seg, len);
	in_len = len + 1;
}

/* The geometry of the patch-mode input being built. */
static size_t p_cap, p_max;
static uint64_t p_head, p_tail;

/* patched: start a patch-mode input. CAP 1..8, MAX 1..256, NSEND 0..3, ROUNDS 0..7. */
static void patched(unsigned flags, size_t cap, size_t max, unsigned nsend, unsigned rounds,
		    unsigned lseed)
{
	in[0] = (unsigned char)(flags | 1u);
	in[1] = (unsigned char)(cap - 1);
	in[2] = (unsigned char)(max - 1);
	in[3] = (unsigned char)(nsend | rounds << 2);
	in[4] = (unsigned char)lseed;
	in_len = 5;
	p_cap = cap;
	p_max = max;
	p_head = rounds;
	p_tail = rounds + (nsend < cap ? nsend : cap);
}

static void patch(size_t off, const void *bytes, size_t n)
{
	in[in_len++] = (unsigned char)off;
	in[in_len++] = (unsigned char)(off >> 8);
	in[in_len++] = (unsigned char)n;
	memcpy(in + in_len, bytes, n);
	in_len += n;
}

static void patch64(size_t off, uint64_t v)
{
	patch(off, &v, 8);
}

static void patch32(size_t off, uint32_t v)
{
	patch(off, &v, 4);
}

static void truncate_to(size_t off)
{
	patch(off, "", 0);
}

static size_t slot_off(uint64_t pos)
{
	return HDR + (size_t)(pos % p_cap) * segment_slot_size(p_max);
}

/* patch_seq, patch_len: a slot's commit word and length, by position. */
static void patch_seq(uint64_t pos, uint64_t seq)
{
	patch64(slot_off(pos) + SEQ_OFF, seq);
}

static void patch_len(uint64_t pos, uint64_t len)
{
	patch64(slot_off(pos) + LEN_OFF, len);
}

static size_t client_off(unsigned i)
{
	return OFF(clients) + i * sizeof(struct mq_client_slot);
}

int main(int argc, char **argv)
{
	static unsigned char seg[65536], tmp[65536];
	outdir = argc > 1 ? argv[1] : ".";

	/* Raw mode: whole segment files. */
	size_t n = segment(seg, 2, 16, 0, 1);
	raw(0, seg, n);
	emit("raw-valid-cap2-max16");
	raw(0, seg, 4000);
	emit("raw-truncated-header");
	raw(0, seg, n - 100);
	emit("raw-truncated-slots");
	memcpy(tmp, seg, n);
	put64(tmp, OFF(capacity), 4);
	raw(2, tmp, n);
	emit("raw-capacity-fixcheck");
	memcpy(tmp, seg, n);
	put64(tmp, HDR + LEN_OFF, 17); /* the queued message's length, > max 16 */
	raw(0, tmp, n);
	emit("raw-slot-length");
	memcpy(tmp, seg, n);
	put32(tmp, client_off(1), MQ_CLIENT_ACTIVE);
	put32(tmp, client_off(1) + 8, 1);
	put32(tmp, client_off(2), MQ_CLIENT_DEAD);
	raw(0, tmp, n);
	emit("raw-dead-clients");
	n = segment(seg, 1, 1, 0, 0);
	raw(0, seg, n);
	emit("raw-valid-cap1-max1-empty");
	n = segment(seg, 3, 8, 2, 2);
	raw(2, seg, n);
	emit("raw-valid-cap3-fixcheck");
	for (size_t i = 0; i < 512; i++)
		tmp[i] = rnd();
	raw(0, tmp, 512);
	emit("raw-garbage");
	put64(tmp, 0, MQ_MAGIC);
	put32(tmp, 8, MQ_LAYOUT_VERSION);
	raw(2, tmp, 1000);
	emit("raw-magic-garbage");
	raw(0, (const unsigned char *)"abc", 3);
	emit("raw-short");
	/* A producer died between committing position 1 and advancing tail:
	 * legal, and the consumer takes it; the producer's lock is fresh here,
	 * so tail is never repaired (see fuzz_attach.c). */
	n = segment(seg, 2, 16, 0, 1);
	memcpy(tmp, seg, n);
	put64(tmp, HDR + segment_slot_size(16) + SEQ_OFF, 2);
	put64(tmp, HDR + segment_slot_size(16) + LEN_OFF, 4);
	memcpy(tmp + HDR + segment_slot_size(16) + sizeof(struct mq_slot), "dead", 4);
	raw(0, tmp, n);
	emit("raw-dead-producer");

	/* Patch mode. */
	patched(0, 3, 32, 2, 3, 5);
	emit("patch-none");
	patched(0, 1, 1, 3, 1, 0);
	emit("patch-none-full");
	patched(0, 4, 64, 1, 0, 9);
	patch32(OFF(version), 2);
	emit("patch-version");
	patched(2, 4, 64, 1, 0, 9);
	patch32(OFF(version), 2);
	emit("patch-version-fixcheck");
	patched(0, 2, 16, 1, 2, 3);
	patch64(OFF(capacity), 5);
	emit("patch-capacity");
	patched(2, 2, 16, 1, 2, 3);
	patch64(OFF(capacity), 5);
	emit("patch-capacity-fixcheck");
	patched(2, 8, 200, 2, 1, 1);
	patch64(OFF(max_msg), 400);
	emit("patch-max-msg-fixcheck");
	patched(2, 2, 100, 1, 1, 1);
	patch64(OFF(total_size), 0);
	patch64(OFF(slot_size), 64);
	emit("patch-sizes-fixcheck");
	patched(2, 4, 8, 2, 5, 2);
	patch64(OFF(tail), p_head + 5);
	emit("patch-tail-beyond-capacity");
	patched(0, 4, 8, 2, 5, 2);
	patch64(OFF(head), p_tail + 1);
	emit("patch-head-beyond-tail");
	patched(0, 4, 8, 3, 4, 2);
	patch64(OFF(head), p_tail);
	emit("patch-head-equals-tail");
	patched(0, 4, 8, 3, 4, 2);
	patch64(OFF(head_cache), p_head + 1);
	emit("patch-head-cache");
	patched(0, 3, 32, 2, 1, 7);
	patch_len(p_head, 33);
	emit("patch-slot-length");
	patched(2, 3, 32, 2, 1, 7);
	patch_len(p_head + 1, UINT64_C(1) << 63);
	emit("patch-slot-length-huge");
	patched(0, 5, 24, 3, 6, 4);
	patch(slot_off(p_head) + sizeof(struct mq_slot), "PATCHED", 7);
	emit("patch-payload");
	patched(0, 2, 16, 1, 0, 0);
	truncate_to(100);
	emit("patch-truncate");
	patched(0, 2, 16, 1, 0, 0);
	truncate_to(HDR + 10);
	patch(HDR + 40, "xyz", 3);
	emit("patch-truncate-grow");
	patched(0, 2, 16, 1, 0, 0);
	patch(HDR + 2 * segment_slot_size(16) + 10, "tail", 4);
	emit("patch-grow");
	patched(0, 6, 48, 2, 2, 2);
	patch32(client_off(3), MQ_CLIENT_ACTIVE);
	patch32(client_off(3) + 4, MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER);
	patch32(client_off(3) + 8, 1);
	patch32(client_off(0), MQ_CLIENT_DEAD);
	emit("patch-clients");
	patched(0, 6, 48, 2, 2, 2);
	patch32(client_off(7) + 4, 9);
	emit("patch-clients-bad-role");
	patched(0, 2, 8, 0, 0, 0);
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++)
		patch32(client_off(i), MQ_CLIENT_DEAD);
	emit("patch-clients-all-dead");
	patched(0, 2, 8, 1, 0, 0);
	patch64(OFF(magic), 0);
	emit("patch-magic-zero");
	{
		unsigned char ff[56];
		memset(ff, 0xff, sizeof(ff));
		/* Padding, then send_lock: the lock bytes are skipped. */
		patched(0, 2, 8, 1, 1, 0);
		patch(OFF(send_lock) - 16, ff, sizeof(ff));
		emit("patch-over-send-lock");
	}
	/* Indices rebased next to 2^64 (flags bit 2): refused. */
	patched(4, 4, 8, 2, 1, 3);
	emit("patch-rebase-wrap-cap4");
	/* Rebased just below 2^63 (flags bit 5; bits 3-4: 3 further down): taken,
	 * the ring rotated with its positions, and our sends cross 2^63. */
	patched(4 | 32, 3, 8, 2, 1, 3);
	emit("patch-rebase-low-cap3");
	patched(4 | 32 | 3 << 3, 5, 20, 3, 7, 1);
	emit("patch-rebase-low-cap5");

	/* Slot commit words (seq: pos + 1 once position pos is committed). */
	/* Committed past the window: slot(tail) (legal alone) and slot(tail+1). */
	patched(0, 4, 16, 0, 3, 0);
	patch_seq(p_tail, p_tail + 1);
	patch_seq(p_tail + 1, p_tail + 2);
	emit("patch-seq-past-tail");
	/* A queued message un-committed: refused. */
	patched(0, 4, 8, 3, 2, 6);
	patch_seq(p_head + 1, 0);
	emit("patch-seq-uncommit");
	patched(0, 4, 8, 3, 5, 6);
	patch_seq(p_head, p_head + 1 - 4); /* what the previous lap left */
	emit("patch-seq-uncommit-head");
	/* The legal dead-producer state: slot(tail) committed, tail not yet
	 * advanced. Taken; once the consumer has taken that message head is
	 * tail + 1, which the re-attach refuses (bug A), and, unrepaired, the
	 * sends find the queue full. */
	patched(2, 4, 16, 1, 2, 0);
	patch_len(p_tail, 4);
	patch(slot_off(p_tail) + sizeof(struct mq_slot), "dead", 4);
	patch_seq(p_tail, p_tail + 1);
	emit("patch-seq-dead-producer");
	/* The same with a high-water mark that spares the send its reload of
	 * head: it writes a message at a position the consumer has passed. */
	patched(2, 4, 16, 1, 2, 0);
	patch_len(p_tail, 4);
	patch(slot_off(p_tail) + sizeof(struct mq_slot), "dead", 4);
	patch_seq(p_tail, p_tail + 1);
	patch64(OFF(high_water), 4);
	emit("patch-seq-dead-producer-lost-send");
	/* Dead producer on a ring it fills (no past-the-window check). */
	patched(2, 2, 16, 1, 1, 3);
	patch_seq(p_tail, p_tail + 1);
	emit("patch-seq-dead-producer-full");
	/* Dead producer, and our sends come before the consumer reaches it: the
	 * unrepaired send writes over that message. */
	patched(2, 4, 16, 3, 0, 2);
	patch_len(p_tail, 2);
	patch_seq(p_tail, p_tail + 1);
	emit("patch-seq-dead-producer-overwrite");
	/* A free slot two past tail committed for its position (bug B): taken,
	 * and delivered after our two sends; then with a bad length (EPROTO). */
	patched(0, 4, 16, 0, 4, 0);
	patch_seq(p_tail + 2, p_tail + 3);
	emit("patch-seq-stray-commit");
	patched(0, 4, 16, 0, 4, 0);
	patch_seq(p_tail + 2, p_tail + 3);
	patch_len(p_tail + 2, 1000);
	emit("patch-seq-stray-commit-corrupt");

	/* Regressions. Indices next to 2^64 with a capacity that does not
	 * divide 2^64: refused (tail >= 2^63). */
	patched(4, 3, 1, 0, 0, 0);
	emit("regress-index-wrap");
	/* Once the consumers' cached tail could fall below head and send them
	 * reading past tail. The consumers' view of tail is now the slots' seq
	 * words: two committed past the one queued message, refused. */
	patched(0, 4, 8, 1, 4, 12);
	patch_seq(p_tail, p_tail + 1);
	patch_seq(p_tail + 1, p_tail + 2);
	emit("regress-tailcache-below-head");
	patched(0, 3, 16, 1, 2, 0);
	patch64(OFF(high_water), UINT64_MAX);
	patch32(OFF(not_empty), 1);
	patch32(OFF(not_full), 3);
	emit("patch-counters");
	return 0;
}
EOF

$cc -std=c11 -D_GNU_SOURCE -O1 -I"$root/libmq/include" -I"$root/libmq/src" -o "$tmp/gen" \
	"$tmp/gen.c" "$root"/libmq/src/*.c -lpthread
mkdir -p "$out"
"$tmp/gen" "$out"
echo "make_corpus: $(find "$out" -type f | wc -l) seeds in $out"
