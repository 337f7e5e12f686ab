#!/bin/sh
# make_corpus.sh - regenerates the fuzz_attach seed corpus from real segments made by libmq.
#
# usage: libmq/tests/fuzz/make_corpus.sh [OUTPUT_DIR]   (default: libmq/tests/fuzz/corpus)
#
# Compiles a small generator against the library sources (segment.h gives the
# offsets), makes real queues in /dev/shm for the raw-mode seeds (flags byte +
# a whole segment file, intact or damaged), and writes patch-mode seeds
# (flags, the state bytes, operations, then [offset u24][len u8][bytes]
# patches; see the top of fuzz_attach.c). Patch-mode seeds name chunks by
# where the target's setup puts messages: in a FIFO segment round i and queued
# message j use chunks i % capacity and (rounds + j) % capacity, in a LIFO one
# rounds use the top chunk (capacity - 1) and queued message j chunk
# capacity - 1 - j. Inputs the fuzzer found are kept as found-* (this script
# leaves them). No seed may make the target abort; with FUZZ_ATTACH_STRICT
# set, the *-own-token seeds hang on libmq bug W (the watchdog aborts), and
# patch-record-revived-lease and found-record-revived-lease abort on bug R.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
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
#include <sys/wait.h>
#include <unistd.h>

#include "libmq.h"
#include "segment.h"

#define OFF(f) offsetof(struct mq_shm, f)
#define COFF(f) offsetof(struct mq_chunk, f)

/* Patch-mode bytes 1..4: geometry and state (see fuzz_attach.c). */
#define FIFO(cap)      ((unsigned)(cap) - 1)
#define LIFO(cap)      (0x80u | ((unsigned)(cap) - 1))
#define STATE3(rounds, queued, reserve) ((rounds) | (queued) << 3 | (reserve) << 6)
#define STATE4(leased, nacked, fate)    ((leased) | (nacked) << 3 | (fate) << 5)
#define LIVE 0
#define GONE 1
#define DEAD 2

static const char *outdir;
static unsigned char in[1 << 20];
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

static void put64(unsigned char *b, size_t off, uint64_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static void put32(unsigned char *b, size_t off, uint32_t v)
{
	memcpy(b + off, &v, sizeof(v));
}

static uint32_t get32(const unsigned char *b, size_t off)
{
	uint32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

/* ---- raw mode: real segment files ---- */

static unsigned char seg[1 << 20];

/* segment: a real queue's file: ROUNDS sends and receives, then NMSG
 * messages queued; a child process leases LEASED of them and dies holding
 * them. Returns its length. */
static size_t segment(size_t cap, size_t max, unsigned rounds, unsigned nmsg, unsigned leased)
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
	if (leased) {
		pid_t pid = fork();
		if (pid == 0) {
			mq_t *c = mq_attach(name);
			mq_lease_t l;
			for (unsigned i = 0; c && i < leased; i++)
				if (mq_recv_lease(c, got, sizeof(got), 0, &l) < 0)
					_exit(1);
			_exit(c ? 0 : 1); /* dies holding them */
		}
		int st;
		if (pid < 0 || waitpid(pid, &st, 0) != pid || !WIFEXITED(st) ||
		    WEXITSTATUS(st) != 0)
			fail("lease holder");
	}
	mq_detach(q);
	int fd = open(path, O_RDONLY);
	ssize_t n = fd < 0 ? -1 : read(fd, seg, sizeof(seg));
	if (n < 0)
		fail("read segment");
	close(fd);
	mq_remove(name);
	return (size_t)n;
}

static void raw(unsigned flags, const unsigned char *s, size_t len)
{
	in[0] = (unsigned char)flags;
	memcpy(in + 1, s, len);
	in_len = len + 1;
}

/* The raw image being built is in + 1. */
static unsigned char *img(void)
{
	return in + 1;
}

static size_t chunk_at(const unsigned char *s, uint64_t i)
{
	const struct mq_shm *h = (const void *)s;
	return (size_t)(h->chunks_offset + i * h->chunk_size);
}

static uint32_t rng = 12345;
static unsigned char rnd(void)
{
	rng = rng * 1103515245u + 12345u;
	return (unsigned char)(rng >> 16);
}

/* ---- patch mode ---- */

static size_t p_cap, p_max;
static int p_lifo;
static struct mq_geometry p_geo;

/* patched: start a patch-mode input: geometry byte GEO (FIFO() or LIFO()),
 * max byte MAXB, state bytes S3 and S4, length seed, then OPS (N bytes). */
static void patched(unsigned flags, unsigned geo, unsigned maxb, unsigned s3, unsigned s4,
                    unsigned lseed, const char *ops, size_t nops)
{
	in[0] = (unsigned char)(flags | 1u);
	in[1] = (unsigned char)geo;
	in[2] = (unsigned char)maxb;
	in[3] = (unsigned char)s3;
	in[4] = (unsigned char)s4;
	in[5] = (unsigned char)lseed;
	in[6] = (unsigned char)nops;
	memcpy(in + 7, ops, nops);
	in_len = 7 + nops;
	p_lifo = (geo & 0x80) != 0;
	p_cap = p_lifo ? 1 + (geo & 3) : 1 + (geo & 7);
	p_max = p_lifo ? MQ_LIFO_MIN_MSG + maxb : 16 + maxb;
	if (segment_geometry(p_cap, p_max, &p_geo) != 0)
		fail("segment_geometry");
}

static void patch(size_t off, const void *bytes, size_t n)
{
	in[in_len++] = (unsigned char)off;
	in[in_len++] = (unsigned char)(off >> 8);
	in[in_len++] = (unsigned char)(off >> 16);
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
	in[in_len++] = (unsigned char)off;
	in[in_len++] = (unsigned char)(off >> 8);
	in[in_len++] = (unsigned char)(off >> 16);
	in[in_len++] = 0;
}

static size_t chunk(uint64_t i)
{
	return (size_t)(p_geo.chunks_offset + i * p_geo.chunk_size);
}

static size_t ring(uint64_t pos)
{
	return (size_t)(p_geo.ring_offset + (pos & (p_geo.ring_size - 1)) * 8);
}

static size_t pool(uint64_t pos)
{
	return (size_t)(p_geo.pool_offset + (pos & (p_geo.ring_size - 1)) * 8);
}

static size_t requeue(uint64_t pos)
{
	return (size_t)(p_geo.requeue_offset + (pos & (p_geo.ring_size - 1)) * 4);
}

static size_t client(unsigned i)
{
	return OFF(clients) + i * sizeof(struct mq_client_slot);
}

/* Chunk of the setup's queued message J after R rounds (see make_corpus.sh). */
static uint64_t queued_chunk(unsigned r, unsigned j)
{
	return p_lifo ? p_cap - 1 - j : (r + j) % p_cap;
}

/* Operation bytes (fuzz_ops.c, op_run). */
static const char ops_all[] = {
        0x0b, 0x02, 0x03, 0x01, 0x00, 0x90, 0xd0, 0x29, 0x79, 0x06, 0x07, 0x16, 0x17, 0x26, 0x37,
        0x36, 0x48, 0x56, 0x88, 0x0a, 0x3a, 0x9a, 0x15, 0x04, 0x14, 0x45, 0x02, 0x8c, 0x1c,
        0x0c, 0x0d, 0x1d, 0x0e, 0x1f, 0x6f, 0xcf, 0x01, 0xc1, 0xd1, 0xe1, 0xf2, 0x02, 0x03,
        0x25, 0x0b, 0xef, 0xdf, 0x01, 0x01, 0x0b};
static const char ops_fill[] = {0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x06,
                                0x06, 0xf9, 0x0b, 0x02, 0x02, 0x05, 0x05, 0x0b};
static const char ops_peek[] = {0x03, 0x03, 0x03, 0x04, 0x15, 0x03, 0x03, 0x0b,
                                0x0e, 0x4f, 0x14, 0x24, 0x0b};
static const char ops_none[] = {0x0b};
static const char ops_cycle[] = {0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x01, 0x19, 0x3a, 0x00, 0x02,
                                 0x05, 0x02, 0x04, 0x00, 0x01, 0x06, 0x07, 0x01, 0x06, 0x08,
                                 0x00, 0x02, 0x05, 0x01, 0x0b};

int main(int argc, char **argv)
{
	outdir = argc > 1 ? argv[1] : ".";
	size_t n;

	/* ---- Raw mode: whole segment files (small FIFO ones). ---- */
	n = segment(2, 16, 0, 1, 0);
	raw(0, seg, n);
	emit("raw-valid-cap2-max16");
	raw(0, seg, 4000);
	emit("raw-truncated-header");
	raw(0, seg, n - 100);
	emit("raw-truncated-chunks");
	raw(2, seg, n);
	put64(img(), OFF(capacity), 4);
	emit("raw-capacity-fixcheck");
	raw(0, seg, n);
	put32(img(), chunk_at(seg, 0) + COFF(len), 17); /* the queued message's length > 16 */
	emit("raw-chunk-length");
	raw(0, seg, n);
	put32(img(), client(1), MQ_CLIENT_ACTIVE);
	put32(img(), client(1) + 8, 1);
	put32(img(), client(2), MQ_CLIENT_DEAD);
	emit("raw-dead-clients");
	n = segment(1, 1, 0, 0, 0);
	raw(0, seg, n);
	emit("raw-valid-cap1-max1-empty");
	n = segment(3, 8, 2, 2, 0);
	raw(2, seg, n);
	emit("raw-valid-cap3-fixcheck");
	/* A holder died with two leases: orphans, for the reap. */
	n = segment(4, 32, 3, 3, 2);
	raw(0, seg, n);
	emit("raw-dead-holder");
	/* The same, with a lock word naming a dead token and an operation
	 * record a dead holder of the receive lock left: taken over, repaired. */
	raw(0, seg, n);
	put32(img(), OFF(recv.lock), 0x7777u << 9 | 5);
	emit("raw-dead-holder-lock");
	raw(0, seg, n);
	{
		const struct mq_shm *h = (const void *)seg;
		put32(img(), OFF(send.lock), 0x1234u << 9 | 3);
		put32(img(), OFF(send.intent.n), 1);
		put64(img(), OFF(send.intent.pos), h->tail);
		put64(img(), OFF(send.intent.fpos), h->fhead);
		put32(img(), OFF(send.intent.op), 1); /* MQ_OP_SEND */
	}
	emit("raw-dead-sender-record");
	/* The lock word names the token C is about to get: its first free
	 * entry is 0, its generation one more than the one in the file (bug W). */
	raw(0, seg, n);
	put32(img(), OFF(send.lock), mq_token(1, get32(seg, client(0) + 12) + 1));
	emit("raw-lock-own-token");
	for (size_t i = 0; i < 512; i++)
		img()[i] = rnd();
	raw(0, img(), 512);
	emit("raw-garbage");
	put64(img(), 0, MQ_MAGIC);
	put32(img(), 8, MQ_LAYOUT_VERSION);
	raw(2, img(), 1000);
	emit("raw-magic-garbage");
	raw(0, (const unsigned char *)"abc", 3);
	emit("raw-short");

	/* ---- Patch mode: valid queues in every state (exact mode). ---- */
	patched(0, FIFO(4), 48, STATE3(0, 0, 0), STATE4(0, 0, LIVE), 1, "", 0);
	emit("patch-fifo-empty");
	patched(0, FIFO(4), 48, STATE3(3, 3, 0), STATE4(0, 0, LIVE), 2, "", 0);
	emit("patch-fifo-queued");
	patched(0, FIFO(2), 0, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 3, ops_fill, sizeof(ops_fill));
	emit("patch-fifo-full");
	patched(0, FIFO(6), 200, STATE3(5, 4, 1), STATE4(3, 1, LIVE), 4, ops_all, sizeof(ops_all));
	emit("patch-fifo-leased-live");
	patched(0, FIFO(6), 200, STATE3(5, 4, 1), STATE4(3, 1, GONE), 5, ops_all, sizeof(ops_all));
	emit("patch-fifo-leased-detached");
	patched(0, FIFO(6), 200, STATE3(5, 4, 1), STATE4(3, 1, DEAD), 6, ops_all, sizeof(ops_all));
	emit("patch-fifo-leased-dead");
	patched(0, FIFO(8), 255, STATE3(7, 7, 0), STATE4(2, 2, LIVE), 7, ops_peek, sizeof(ops_peek));
	emit("patch-fifo-peek");
	patched(0, LIFO(4), 16, STATE3(3, 2, 0), STATE4(0, 0, LIVE), 8, "", 0);
	emit("patch-lifo-queued");
	patched(0, LIFO(4), 16, STATE3(2, 3, 1), STATE4(2, 1, LIVE), 9, ops_all, sizeof(ops_all));
	emit("patch-lifo-leased-live");
	patched(0, LIFO(4), 16, STATE3(2, 3, 1), STATE4(2, 1, GONE), 10, ops_all, sizeof(ops_all));
	emit("patch-lifo-leased-detached");
	patched(0, LIFO(4), 16, STATE3(2, 3, 1), STATE4(2, 1, DEAD), 11, ops_all, sizeof(ops_all));
	emit("patch-lifo-leased-dead");
	patched(0, LIFO(1), 0, STATE3(1, 1, 0), STATE4(0, 0, LIVE), 12, ops_fill, sizeof(ops_fill));
	emit("patch-lifo-full");

	/* Rebased (flags bit 2): just below 2^63 (bit 5) the calls cross it;
	 * next to 2^64 mq_attach refuses. */
	patched(4 | 32, FIFO(3), 16, STATE3(2, 2, 0), STATE4(1, 0, DEAD), 13, ops_cycle,
	        sizeof(ops_cycle));
	emit("patch-rebase-low-fifo");
	patched(4 | 32 | 3 << 3, FIFO(5), 4, STATE3(7, 3, 1), STATE4(2, 1, LIVE), 14, ops_fill,
	        sizeof(ops_fill));
	emit("patch-rebase-low-fifo-full");
	patched(4 | 32, LIFO(2), 16, STATE3(1, 1, 0), STATE4(1, 1, GONE), 15, ops_all,
	        sizeof(ops_all));
	emit("patch-rebase-low-lifo");
	patched(4, FIFO(4), 8, STATE3(2, 2, 0), STATE4(0, 0, LIVE), 16, "", 0);
	emit("patch-rebase-wrap");

	/* ---- Patch mode: each header field (then with the checksum fixed). ---- */
	static const struct {
		const char *name;
		size_t off, size;
		uint64_t val;
	} fields[] = {
	        {"magic", OFF(magic), 8, 0x4242},
	        {"version", OFF(version), 4, 1},
	        {"header-size", OFF(header_size), 4, 4096},
	        {"capacity", OFF(capacity), 8, 5},
	        {"max-msg", OFF(max_msg), 8, 400},
	        {"chunk-size", OFF(chunk_size), 8, 64},
	        {"ring-size", OFF(ring_size), 8, 4},
	        {"ring-offset", OFF(ring_offset), 8, 0},
	        {"pool-offset", OFF(pool_offset), 8, 33680},
	        {"requeue-offset", OFF(requeue_offset), 8, 1},
	        {"chunks-offset", OFF(chunks_offset), 8, 40000},
	        {"total-size", OFF(total_size), 8, 0},
	        {"clients-max", OFF(clients_max), 4, 1},
	        {"flags", OFF(flags), 4, MQ_SEG_LIFO},
	        {"queue-id", OFF(queue_id), 8, 7},
	        {"geometry-check", OFF(geometry_check), 4, 0},
	};
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		char name[80];
		for (unsigned fix = 0; fix < 2; fix++) {
			if (fix && !strcmp(fields[i].name, "geometry-check"))
				continue;
			patched(fix ? 2 : 0, FIFO(4), 100, STATE3(2, 2, 0), STATE4(1, 0, LIVE),
			        (unsigned)i, "", 0);
			patch(fields[i].off, &fields[i].val, fields[i].size);
			snprintf(name, sizeof(name), "patch-header-%s%s", fields[i].name,
			         fix ? "-fixcheck" : "");
			emit(name);
		}
	}
	/* A consistent larger geometry, checksum fixed: the file is too short. */
	{
		struct mq_geometry g;
		patched(2, FIFO(2), 16, STATE3(0, 1, 0), STATE4(0, 0, LIVE), 0, "", 0);
		segment_geometry(3, 32, &g);
		patch64(OFF(capacity), 3);
		patch64(OFF(max_msg), 32);
		patch64(OFF(chunk_size), g.chunk_size);
		patch64(OFF(ring_size), g.ring_size);
		patch64(OFF(pool_offset), g.pool_offset);
		patch64(OFF(requeue_offset), g.requeue_offset);
		patch64(OFF(chunks_offset), g.chunks_offset);
		patch64(OFF(total_size), g.total_size);
		emit("patch-geometry-consistent-fixcheck");
	}

	/* ---- Positions and counters. ---- */
	patched(0, FIFO(4), 8, STATE3(5, 2, 0), STATE4(0, 0, LIVE), 2, "", 0);
	patch64(OFF(tail), 5 + 5);
	emit("patch-tail-beyond-capacity");
	patched(0, FIFO(4), 8, STATE3(5, 2, 0), STATE4(0, 0, LIVE), 2, "", 0);
	patch64(OFF(head), 5 + 2 + 1);
	emit("patch-head-beyond-tail");
	patched(0, FIFO(4), 8, STATE3(4, 3, 0), STATE4(0, 0, LIVE), 2, "", 0);
	patch64(OFF(head), 4 + 3);
	emit("patch-head-equals-tail");
	patched(0, FIFO(4), 8, STATE3(4, 3, 0), STATE4(0, 0, LIVE), 2, "", 0);
	patch64(OFF(fhead), 4 + 3 + 2);
	emit("patch-fhead");
	patched(0, FIFO(4), 8, STATE3(4, 3, 0), STATE4(0, 0, LIVE), 2, "", 0);
	patch64(OFF(ftail), 4 + 4 + 4);
	emit("patch-ftail");
	patched(0, LIFO(3), 8, STATE3(1, 1, 0), STATE4(0, 0, LIVE), 2, "", 0);
	patch64(OFF(ftail), 3);
	emit("patch-lifo-ftail");
	patched(0, FIFO(4), 8, STATE3(2, 3, 0), STATE4(2, 2, LIVE), 2, "", 0);
	patch64(OFF(rtail), 3);
	emit("patch-rtail");
	patched(0, FIFO(4), 8, STATE3(2, 3, 0), STATE4(2, 2, LIVE), 2, "", 0);
	patch64(OFF(rhead), 1);
	emit("patch-rhead");
	patched(0, FIFO(3), 16, STATE3(2, 1, 0), STATE4(0, 0, LIVE), 0, ops_all, sizeof(ops_all));
	patch64(OFF(high_water), UINT64_MAX);
	patch64(OFF(head_cache), 77);
	patch64(OFF(retired), UINT64_MAX - 1);
	patch32(OFF(not_empty), 1);
	patch32(OFF(not_full), 3);
	emit("patch-counters");

	/* ---- Locks and operation records. ---- */
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(1, 0, LIVE), 3, ops_all, sizeof(ops_all));
	patch32(OFF(send.lock), 0xdeadbeef);
	patch32(OFF(recv.lock), 0x200 | 7);
	emit("patch-lock-garbage");
	patched(0, LIFO(3), 32, STATE3(2, 2, 0), STATE4(1, 0, LIVE), 3, ops_all, sizeof(ops_all));
	patch32(OFF(send.lock), MQ_TOKEN_BROKER_SLOT | 5u << 9);
	patch32(OFF(recv.lock), MQ_LOCK_WAITERS | 2);
	emit("patch-lifo-lock-garbage");
	/* C takes entry 0 (A's, free again) and bumps its generation. */
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(1, 0, LIVE), 3, "", 0);
	patch32(client(0) + 12, 41);
	patch32(OFF(recv.lock), mq_token(1, 42));
	emit("patch-lock-own-token");
	/* Dead holders' records, each left half done. */
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(0, 0, LIVE), 3, ops_all, sizeof(ops_all));
	patch32(OFF(send.lock), 0x9999u << 9 | 9);
	patch32(OFF(send.intent.n), 1);
	patch64(OFF(send.intent.pos), 4);
	patch64(OFF(send.intent.fpos), 4);
	patch32(OFF(send.intent.op), 1);
	emit("patch-record-send");
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(0, 0, LIVE), 3, ops_all, sizeof(ops_all));
	patch32(OFF(recv.intent.n), 1);
	patch32(OFF(recv.intent.src), 0);
	patch64(OFF(recv.intent.pos), 1);
	patch64(OFF(recv.intent.fpos), 5);
	patch32(OFF(recv.intent.op), 4); /* MQ_OP_TAKE */
	emit("patch-record-take");
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(0, 0, LIVE), 3, ops_all, sizeof(ops_all));
	patch32(OFF(recv.intent.idx), 2);
	patch64(OFF(recv.intent.pos), 1);
	patch32(OFF(recv.intent.owner), 0x55u << 9 | 4);
	patch32(OFF(recv.intent.deliveries), 3);
	patch32(OFF(recv.intent.op), 5); /* MQ_OP_LEASE */
	emit("patch-record-lease");
	patched(0, LIFO(3), 32, STATE3(2, 2, 0), STATE4(1, 0, LIVE), 3, ops_all, sizeof(ops_all));
	patch32(OFF(recv.intent.idx), 0);
	patch64(OFF(recv.intent.fpos), 1);
	patch32(OFF(recv.intent.owner), 0x55u << 9 | 4);
	patch32(OFF(recv.intent.op), 8); /* MQ_OP_POP */
	emit("patch-lifo-record-pop");
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(0, 0, LIVE), 3, "", 0);
	patch32(OFF(recv.intent.op), 10);
	emit("patch-record-unknown");
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(0, 0, LIVE), 3, "", 0);
	patch32(OFF(send.intent.op), 3); /* MQ_OP_COMMIT, nonsense fields */
	patch32(OFF(send.intent.idx), 9);
	emit("patch-record-commit-garbage");

	/* A lock word naming the broker (its generation matched; no broker
	 * lock held: dead, taken over). */
	patched(0, FIFO(4), 32, STATE3(2, 2, 0), STATE4(1, 0, LIVE), 3, ops_all, sizeof(ops_all));
	patch32(OFF(broker_gen), 5);
	patch32(OFF(send.lock), mq_token(MQ_TOKEN_BROKER_SLOT, 5));
	patch32(OFF(recv.lock), mq_token(MQ_TOKEN_BROKER_SLOT, 5) | MQ_LOCK_WAITERS);
	emit("patch-lock-broker-token");
	/* Receive-side records of a free and a requeue, finished or not (the
	 * next holder of the lock completes them): a dead B's lease acked, or
	 * nacked, by its record. */
	patched(0, FIFO(4), 32, STATE3(2, 3, 0), STATE4(2, 0, DEAD), 3, ops_all, sizeof(ops_all));
	patch32(OFF(recv.intent.idx), (uint32_t)queued_chunk(2, 0));
	patch64(OFF(recv.intent.fpos), 4 + 2); /* ftail: capacity + rounds */
	patch32(OFF(recv.intent.op), 6);       /* MQ_OP_FREE */
	emit("patch-record-free");
	patched(0, FIFO(4), 32, STATE3(2, 3, 0), STATE4(2, 0, DEAD), 3, ops_all, sizeof(ops_all));
	patch32(OFF(recv.intent.idx), (uint32_t)queued_chunk(2, 1));
	patch64(OFF(recv.intent.pos), 0); /* rtail */
	patch32(OFF(recv.intent.op), 7);  /* MQ_OP_REQUEUE */
	emit("patch-record-requeue");
	patched(0, LIFO(3), 32, STATE3(2, 2, 0), STATE4(1, 0, DEAD), 3, ops_all, sizeof(ops_all));
	patch32(OFF(recv.intent.idx), (uint32_t)queued_chunk(2, 0));
	patch64(OFF(recv.intent.fpos), 3 - 2); /* the stack's top */
	patch32(OFF(recv.intent.op), 6);
	emit("patch-lifo-record-free");

	/* Bug R: B leased two messages and nacked both; a record's op set to
	 * MQ_OP_LEASE (and src to the ring) revives the last lease from its
	 * stale fields: repair_lease makes the nacked chunk HELD by B again,
	 * and B's ack of the nacked lease succeeds. */
	patched(0, FIFO(4), 16, STATE3(0, 2, 0), STATE4(2, 2, LIVE), 0, "\x01\x0c\x0b", 3);
	patch32(OFF(recv.intent.op), 5);
	patch32(OFF(recv.intent.src), 0);
	emit("patch-record-revived-lease");

	/* A finished record (a requeue whose rtail already moved: here position
	 * UINT64_MAX, rtail 0) makes the queue look busy: mq_attach then leaves
	 * the chunks to the checks the calls make as they go. */
#define BUSY()                                                                                     	do {                                                                                       		patch64(OFF(recv.intent.pos), UINT64_MAX);                                         		patch32(OFF(recv.intent.op), 7);                                                   	} while (0)
	patched(0, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, ops_all, sizeof(ops_all));
	BUSY();
	patch32(chunk(queued_chunk(1, 0)) + COFF(len), 49);
	emit("patch-busy-chunk-length");
	patched(0, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, ops_all, sizeof(ops_all));
	BUSY();
	patch64(chunk(queued_chunk(1, 1)) + COFF(pos), 0);
	patch64(chunk(2) + COFF(state), MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0));
	emit("patch-busy-chunk-refs");
	patched(0, LIFO(3), 16, STATE3(2, 1, 0), STATE4(0, 0, LIVE), 6, ops_all, sizeof(ops_all));
	BUSY();
	patch64(pool(1), 0);
	emit("patch-busy-lifo-pool-entry");
	patched(0, FIFO(4), 16, STATE3(2, 1, 0), STATE4(0, 0, LIVE), 6, ops_fill, sizeof(ops_fill));
	BUSY();
	patch64(pool(4 + 2 - 1), 0x00000000ffffffffu);
	emit("patch-busy-pool-entry");
	patched(0, FIFO(4), 16, STATE3(2, 3, 0), STATE4(2, 2, LIVE), 6, ops_all, sizeof(ops_all));
	patch64(OFF(recv.intent.pos), 1); /* rtail is 2: finished */
	patch32(OFF(recv.intent.op), 7);
	patch32(requeue(1), 1);
	emit("patch-busy-requeue-entry");

	/* ---- Ring, pool and requeue entries. ---- */
	patched(0, FIFO(4), 16, STATE3(2, 3, 0), STATE4(0, 0, LIVE), 6, "", 0);
	patch64(ring(2 + 1), 0);
	emit("patch-ring-uncommit");
	patched(0, FIFO(4), 16, STATE3(2, 3, 0), STATE4(0, 0, LIVE), 6, "", 0);
	patch64(ring(2), (uint64_t)(2 + 1) << 32 | queued_chunk(2, 1));
	emit("patch-ring-wrong-chunk");
	patched(0, FIFO(4), 16, STATE3(2, 1, 0), STATE4(0, 0, LIVE), 6, "", 0);
	patch64(ring(3), (uint64_t)(3 + 1) << 32 | queued_chunk(2, 1));
	emit("patch-ring-stray-commit");
	patched(0, FIFO(4), 16, STATE3(2, 1, 0), STATE4(0, 0, LIVE), 6, ops_fill, sizeof(ops_fill));
	patch64(pool(3), 0x00000000ffffffffu);
	emit("patch-pool-entry");
	patched(0, FIFO(4), 16, STATE3(2, 3, 0), STATE4(2, 2, LIVE), 6, ops_all, sizeof(ops_all));
	patch32(requeue(1), 7);
	emit("patch-requeue-entry");
	patched(0, LIFO(3), 16, STATE3(2, 1, 0), STATE4(0, 0, LIVE), 6, ops_fill, sizeof(ops_fill));
	patch64(pool(0), 0);
	emit("patch-lifo-pool-entry");

	/* ---- Chunks: length, state, back-reference, id, owner, payload. ---- */
	patched(0, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, "", 0);
	patch32(chunk(queued_chunk(1, 0)) + COFF(len), 33);
	emit("patch-chunk-length");
	patched(2, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, "", 0);
	patch32(chunk(queued_chunk(1, 1)) + COFF(len), 0xffffffffu);
	emit("patch-chunk-length-huge");
	patched(0, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, "", 0);
	patch32(chunk(queued_chunk(1, 0)) + COFF(len), 3);
	emit("patch-chunk-length-shorter");
	patched(0, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, "", 0);
	patch64(chunk(queued_chunk(1, 1)) + COFF(state), 9);
	emit("patch-chunk-state");
	patched(0, FIFO(3), 32, STATE3(1, 1, 0), STATE4(0, 0, LIVE), 7, ops_all, sizeof(ops_all));
	patch64(chunk(2) + COFF(state), MQ_CHUNK_STATE(MQ_CHUNK_QUEUED, 0));
	emit("patch-chunk-free-as-queued");
	patched(0, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, "", 0);
	patch64(chunk(queued_chunk(1, 0)) + COFF(pos), 2);
	emit("patch-chunk-pos");
	patched(0, FIFO(3), 32, STATE3(1, 2, 0), STATE4(0, 0, LIVE), 7, "", 0);
	patch64(chunk(queued_chunk(1, 0)) + COFF(id), 99);
	emit("patch-chunk-id");
	/* B's leases and reservation handed to a dead owner: the reap takes them. */
	patched(0, FIFO(4), 32, STATE3(1, 3, 1), STATE4(2, 0, LIVE), 7, ops_all, sizeof(ops_all));
	patch64(chunk(queued_chunk(1, 0)) + COFF(state),
	        MQ_CHUNK_STATE(MQ_CHUNK_HELD, 0x31u << 9 | 6));
	patch64(chunk(queued_chunk(1, 3)) + COFF(state),
	        MQ_CHUNK_STATE(MQ_CHUNK_WRITING, 0x31u << 9 | 6));
	emit("patch-chunk-owner-dead");
	patched(0, LIFO(4), 32, STATE3(1, 3, 1), STATE4(2, 1, LIVE), 7, ops_all, sizeof(ops_all));
	patch64(chunk(queued_chunk(1, 1)) + COFF(state),
	        MQ_CHUNK_STATE(MQ_CHUNK_TAKING, 0x31u << 9 | 6));
	emit("patch-lifo-chunk-taking-dead");
	patched(0, FIFO(5), 24, STATE3(6, 3, 0), STATE4(0, 0, LIVE), 4, "", 0);
	patch(chunk(queued_chunk(6, 0)) + sizeof(struct mq_chunk) + 16, "PATCHED", 7);
	emit("patch-payload");

	/* ---- The client table. ---- */
	patched(0, FIFO(6), 48, STATE3(2, 2, 0), STATE4(1, 0, LIVE), 2, ops_all, sizeof(ops_all));
	patch32(client(1), MQ_CLIENT_DEAD); /* B's entry, B still attached */
	patch32(client(3), MQ_CLIENT_ACTIVE);
	patch32(client(3) + 4, MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER);
	patch32(client(3) + 8, 1);
	emit("patch-clients");
	patched(0, FIFO(6), 48, STATE3(2, 2, 0), STATE4(2, 0, LIVE), 2, ops_all, sizeof(ops_all));
	patch32(client(1) + 12, 12345); /* B's generation: its token is not live */
	emit("patch-clients-generation");
	patched(0, FIFO(6), 48, STATE3(2, 2, 0), STATE4(0, 0, LIVE), 2, "", 0);
	patch32(client(7) + 4, 9);
	emit("patch-clients-bad-role");
	patched(0, FIFO(2), 8, STATE3(0, 1, 0), STATE4(0, 0, LIVE), 0, "", 0);
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++)
		patch32(client(i), MQ_CLIENT_ACTIVE);
	emit("patch-clients-all-active");
	patched(0, FIFO(2), 8, STATE3(0, 1, 0), STATE4(1, 0, DEAD), 0, ops_all, sizeof(ops_all));
	patch64(client(1) + offsetof(struct mq_client_slot, in_flight), UINT64_MAX);
	patch64(client(1) + offsetof(struct mq_client_slot, held), 1u << 20);
	emit("patch-clients-counters");

	/* ---- Truncation and growth (B still attached: its mapping faults). ---- */
	patched(0, FIFO(2), 16, STATE3(0, 1, 0), STATE4(1, 0, LIVE), 0, ops_all, sizeof(ops_all));
	truncate_to(100);
	emit("patch-truncate");
	patched(0, FIFO(2), 16, STATE3(0, 1, 0), STATE4(1, 0, LIVE), 0, ops_all, sizeof(ops_all));
	truncate_to(p_geo.chunks_offset + 10);
	patch(p_geo.chunks_offset + 40, "xyz", 3);
	emit("patch-truncate-grow");
	/* Whole pages go: B's next touch of them is a SIGBUS, which libmq's
	 * guard turns into EPROTO for B. */
	patched(0, LIFO(2), 16, STATE3(0, 2, 0), STATE4(1, 0, LIVE), 0, ops_all, sizeof(ops_all));
	truncate_to(p_geo.chunks_offset + 64);
	emit("patch-lifo-truncate-chunks");
	patched(0, FIFO(4), 16, STATE3(0, 3, 1), STATE4(2, 1, LIVE), 0, ops_all, sizeof(ops_all));
	truncate_to(32768);
	emit("patch-fifo-truncate-page");
	patched(0, FIFO(2), 16, STATE3(0, 1, 0), STATE4(0, 0, LIVE), 0, "", 0);
	patch(p_geo.total_size + 10, "tail", 4);
	emit("patch-grow");
	patched(0, FIFO(2), 16, STATE3(0, 1, 0), STATE4(0, 0, LIVE), 0, ops_none, sizeof(ops_none));
	truncate_to(4);
	emit("patch-truncate-tiny");
	return 0;
}
EOF

$cc -std=c11 -D_GNU_SOURCE -O1 -I"$root/libmq/include" -I"$root/libmq/src" -o "$tmp/gen" \
	"$tmp/gen.c" "$root"/libmq/src/*.c -lpthread
mkdir -p "$out"
# found-*: inputs the fuzzer found (minimized), kept across regenerations.
find "$out" -maxdepth 1 -type f ! -name 'found-*' -exec rm -f {} +
"$tmp/gen" "$out"
echo "make_corpus: $(find "$out" -type f | wc -l) seeds in $out"
