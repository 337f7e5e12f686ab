/* payload.c - stamping and checking benchmark messages; exactly-once accounting. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "payload.h"

#define K_SEQ UINT64_C(0xd6e8feb86659fd93)
#define K_POS UINT64_C(0x9e3779b97f4a7c15)

struct msg_hdr {
	uint64_t seq;
	uint32_t src;
	uint32_t kind;
};

static inline uint64_t get64(const unsigned char *p)
{
	uint64_t v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void put64(unsigned char *p, uint64_t v)
{
	memcpy(p, &v, sizeof(v));
}

static inline uint64_t stamp_base(uint32_t kind, uint32_t src, uint64_t seq)
{
	return ((seq + 1) * K_SEQ) ^ ((uint64_t)src << 48) ^ kind;
}

/* The word expected at byte offset OFF (a multiple of 8, or LEN - 8). */
static inline uint64_t stamp_at(uint64_t base, size_t off)
{
	return base + (uint64_t)(off / 8 + 1) * K_POS;
}

static inline size_t stride_for(size_t len)
{
	return len <= 256 ? 8 : len <= 65536 ? 64 : 4096;
}

void *msg_alloc(size_t len)
{
	size_t n = (len + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, n ? n : 64);
	if (p)
		memset(p, 0x5a, n);
	return p;
}

void msg_stamp(void *buf, size_t len, uint32_t kind, uint32_t src, uint64_t seq)
{
	unsigned char *p = buf;
	struct msg_hdr h = {seq, src, kind};
	memcpy(p, &h, sizeof(h));
	uint64_t base = stamp_base(kind, src, seq);
	size_t stride = stride_for(len);
	put64(p + 16, stamp_at(base, 16));
	for (size_t off = stride > 24 ? stride : 24; off + 8 <= len; off += stride)
		put64(p + off, stamp_at(base, off));
	put64(p + len - 8, stamp_at(base, len - 8));
}

static int check(const void *buf, size_t len, int all, uint32_t *kind, uint32_t *src, uint64_t *seq,
                 char *err, size_t errlen)
{
	const unsigned char *p = buf;
	if (len < MSG_MIN_SIZE) {
		snprintf(err, errlen, "message of %zu bytes is too short", len);
		return -1;
	}
	struct msg_hdr h;
	memcpy(&h, p, sizeof(h));
	if (h.kind < MSG_DATA || h.kind > MSG_END) {
		snprintf(err, errlen, "corrupt message header (kind 0x%08" PRIx32 ")", h.kind);
		return -1;
	}
	uint64_t base = stamp_base(h.kind, h.src, h.seq);
	size_t stride = stride_for(len), off = 16;
	if (get64(p + 16) != stamp_at(base, 16))
		goto bad;
	for (off = stride > 24 ? stride : 24; all && off + 8 <= len; off += stride)
		if (get64(p + off) != stamp_at(base, off))
			goto bad;
	off = len - 8;
	if (get64(p + off) != stamp_at(base, off))
		goto bad;
	*kind = h.kind;
	*src = h.src;
	*seq = h.seq;
	return 0;
bad:
	snprintf(err, errlen,
	         "corrupt message: producer %" PRIu32 " seq %" PRIu64
	         ", the word at byte %zu of %zu belongs to another message",
	         h.src, h.seq, off, len);
	return -1;
}

int msg_check(const void *buf, size_t len, uint32_t *kind, uint32_t *src, uint64_t *seq, char *err,
              size_t errlen)
{
	return check(buf, len, 1, kind, src, seq, err, errlen);
}

int msg_check_ends(const void *buf, size_t len, uint32_t *kind, uint32_t *src, uint64_t *seq,
                   char *err, size_t errlen)
{
	return check(buf, len, 0, kind, src, seq, err, errlen);
}

void tally_init(struct tally *t, int nprod, int next_only)
{
	memset(t, 0, sizeof(*t));
	t->nprod = nprod;
	t->next_only = next_only;
}

int tally_add(struct tally *t, uint32_t src, uint64_t seq, char *err, size_t errlen)
{
	if (src >= (uint32_t)t->nprod) {
		snprintf(err, errlen, "message from producer %" PRIu32 " (there are %d)", src,
		         t->nprod);
		return -1;
	}
	if (t->next_only ? seq != (t->seen[src] ? t->last[src] + 1 : 0)
	                 : t->seen[src] && seq <= t->last[src]) {
		if (t->seen[src] && seq == t->last[src])
			snprintf(err, errlen,
			         "duplicate: producer %" PRIu32 " seq %" PRIu64 " twice", src, seq);
		else if (!t->seen[src])
			snprintf(err, errlen,
			         "out of order: first message from producer %" PRIu32
			         " is seq %" PRIu64 ", expected 0",
			         src, seq);
		else
			snprintf(err, errlen,
			         "out of order: producer %" PRIu32 " seq %" PRIu64
			         " after %" PRIu64,
			         src, seq, t->last[src]);
		return -1;
	}
	t->seen[src] = 1;
	t->last[src] = seq;
	t->cnt[src]++;
	t->sum[src] += seq;
	t->sq[src] += seq * seq;
	t->total++;
	return 0;
}

void tally_store(const struct tally *t, struct child_result *r)
{
	memcpy(r->cnt, t->cnt, sizeof(r->cnt));
	memcpy(r->sum, t->sum, sizeof(r->sum));
	memcpy(r->sq, t->sq, sizeof(r->sq));
	r->msgs = t->total;
}

int tally_verify(const uint64_t *sent, int nprod, const struct child_result *const *cons, int ncons,
                 char *err, size_t errlen)
{
	for (int p = 0; p < nprod; p++) {
		uint64_t cnt = 0, sum = 0, sq = 0, esum = 0, esq = 0;
		for (int c = 0; c < ncons; c++) {
			cnt += cons[c]->cnt[p];
			sum += cons[c]->sum[p];
			sq += cons[c]->sq[p];
		}
		for (uint64_t s = 0; s < sent[p]; s++) {
			esum += s;
			esq += s * s;
		}
		if (cnt != sent[p]) {
			snprintf(err, errlen,
			         "producer %d sent %" PRIu64 " messages, %" PRIu64
			         " were received (%s)",
			         p, sent[p], cnt, cnt < sent[p] ? "lost" : "duplicated");
			return -1;
		}
		if (sum != esum || sq != esq) {
			snprintf(err, errlen,
			         "producer %d: the %" PRIu64
			         " sequence numbers received are not 0..%" PRIu64
			         " once each (some lost, some duplicated)",
			         p, cnt, sent[p] - 1);
			return -1;
		}
	}
	return 0;
}
