/*
 * testmsg.h - the self-checking message format of the multi-process tests.
 *
 * A message of HDR bytes or more carries (producer id, sequence, length,
 * checksum) as four u32, then a payload derived from (id, seq); the checksum
 * is FNV-1a over everything but itself. A shorter message cannot carry that,
 * so its bytes depend on its length only (the tests count those per length).
 */
#ifndef MQ_TESTMSG_H
#define MQ_TESTMSG_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define HDR      16 /* id, seq, len, checksum: four u32 */
#define FNV_INIT 2166136261u

/* splitmix64: the next value of the PRNG whose state is *S. */
static inline uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));
	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* fnv1a: FNV-1a over N bytes at P, continuing from hash H. */
static inline uint32_t fnv1a(uint32_t h, const unsigned char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		h ^= p[i];
		h *= 16777619u;
	}
	return h;
}

/* short_byte: byte I of every message of LEN < HDR bytes (depends on LEN only). */
static inline unsigned char short_byte(size_t len, size_t i)
{
	return (unsigned char)(0xa5u ^ (len * 37u + i * 11u));
}

/* fill_payload: bytes HDR..LEN-1 of message (ID, SEQ), derived from both. */
static inline void fill_payload(unsigned char *buf, uint32_t id, uint32_t seq, size_t len)
{
	uint64_t s = ((uint64_t)id << 32 | seq) ^ UINT64_C(0x5bd1e9955bd1e995);
	for (size_t i = HDR; i < len; i += 8) {
		uint64_t r = splitmix64(&s);
		memcpy(buf + i, &r, len - i < 8 ? len - i : 8);
	}
}

/* msg_checksum: FNV-1a over a message of LEN >= HDR bytes, except its checksum field. */
static inline uint32_t msg_checksum(const unsigned char *buf, size_t len)
{
	return fnv1a(fnv1a(FNV_INIT, buf, 12), buf + HDR, len - HDR);
}

/* build_msg: message SEQ of producer ID, LEN bytes, into BUF. */
static inline void build_msg(unsigned char *buf, uint32_t id, uint32_t seq, size_t len)
{
	if (len < HDR) {
		for (size_t i = 0; i < len; i++)
			buf[i] = short_byte(len, i);
		return;
	}
	uint32_t l = (uint32_t)len;
	memcpy(buf, &id, 4);
	memcpy(buf + 4, &seq, 4);
	memcpy(buf + 8, &l, 4);
	fill_payload(buf, id, seq, len);
	uint32_t sum = msg_checksum(buf, len);
	memcpy(buf + 12, &sum, 4);
}

/* msg_verify: check a received message of LEN >= HDR bytes (at most
 * MAX_LEN): its header, its id below IDS and sequence below SEQS, its checksum
 * and every payload byte. Returns NULL with *ID, *SEQ and *HLEN (the length
 * field) set, or what is wrong (the three are set as far as they were read). */
static inline const char *msg_verify(const unsigned char *buf, size_t len, uint32_t ids,
                                     uint32_t seqs, uint32_t *id, uint32_t *seq, uint32_t *hlen)
{
	uint32_t sum;
	memcpy(id, buf, 4);
	memcpy(seq, buf + 4, 4);
	memcpy(hlen, buf + 8, 4);
	memcpy(&sum, buf + 12, 4);
	if (*hlen != len)
		return "length field differs from the received length";
	if (*id >= ids || *seq >= seqs)
		return "producer id or sequence out of range";
	if (msg_checksum(buf, len) != sum)
		return "checksum mismatch";
	unsigned char want[8];
	uint64_t s = ((uint64_t)*id << 32 | *seq) ^ UINT64_C(0x5bd1e9955bd1e995);
	for (size_t i = HDR; i < len; i += 8) { /* the stream fill_payload wrote */
		uint64_t r = splitmix64(&s);
		size_t n = len - i < 8 ? len - i : 8;
		memcpy(want, &r, n);
		if (memcmp(want, buf + i, n) != 0)
			return "payload differs";
	}
	return NULL;
}

#endif /* MQ_TESTMSG_H */
