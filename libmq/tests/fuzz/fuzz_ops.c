/* fuzz_ops.c - the attach fuzzer's calls on a queue, and the oracles that judge them. */
/*
 * Every call is made with timeout 0 and judged one of two ways.
 *
 * Exact mode (the queue as setup left it, not a byte patched): a model of the
 * queue (struct model) predicts each result: which message comes next
 * (requeued ones first, then the ring in order), its bytes, length, lease id
 * (ring position + 1) and delivery count; EAGAIN when the model is empty or
 * has no free chunk; EMSGSIZE when the buffer is short; EINVAL for a settled
 * lease or a done reservation; the counters of mq_stats, the client table of
 * mq_clients and the chunk census of mq_inspect; both lock words free and no
 * operation recorded after every call. Detach and reap give back leases and
 * reservations in chunk order, as libmq scans them.
 *
 * Otherwise (damaged mode), every call must fail with one of its documented
 * errnos or succeed with something our messages allow: a delivered message is
 * byte for byte one we sent (id = the run's nonce, then sequence, length,
 * checksum, payload: tests/testmsg.h) or the contents of a chunk of the file
 * as C attached it (a patched payload or length is damage libmq cannot see;
 * it checks references, not bytes). Each message sent after the attach may be
 * delivered once, again only after a nack or its holder's detach, never if
 * its commit failed with EAGAIN or EINVAL. Messages from the image are not
 * counted: the damage may hand them out again.
 *
 * Near the index limit (a rebased queue) exact mode knows which position each
 * single call must use: one at or past 2^63 must fail with EPROTO, and exact
 * mode ends there (what a refused call changed is not predicted); a batch or
 * a reap near the limit may end it with EPROTO too.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#include "testmsg.h"
#include "atomics.h"
#include "fuzz_attach.h"
#include "guard.h"
#include "handle.h"
#include "libmq_admin.h"

#define ULL(x)    ((unsigned long long)(x))
#define RECV_MAX  8  /* buffers of one mq_recv_batch (one op) */
#define SEND_MAX  16 /* messages of one mq_send_batch */
#define ROUND_MAX 64 /* messages libmq takes in one round of the receive lock (queue.c) */

static const char *const state_name[] = {"never committed", "queued",  "maybe committed", "leased",
                                         "reserved",        "retired", "untracked"};

static struct mq *handle(struct run *r, int who)
{
	return r->act[who].q;
}

/* ---- errnos ---- */

/* want_errno: CALL failed with ERR; it must be one of the N errnos that follow
 * (EINTR too if an mq_interrupt of WHO is pending: it is then answered). */
static void want_errno(struct run *r, int who, const char *call, int err, int n, ...)
{
	fuzz_note("%c: %s: %s", r->act[who].name, call, err == EAGAIN ? "EAGAIN" : mq_errdetail());
	va_list ap;
	va_start(ap, n);
	for (int i = 0; i < n; i++) {
		if (va_arg(ap, int) == err) {
			va_end(ap);
			return;
		}
	}
	va_end(ap);
	if (err == EINTR && r->act[who].intr) {
		r->act[who].intr = 0;
		return;
	}
	errno = err;
	fuzz_die("%c: %s failed with errno %d (%s), not one of its documented errors",
	         r->act[who].name, call, err, strerror(err));
}

/* revived: libmq weakness R (fuzz_attach.c): an operation record the image
 * scribbled over revived a lease or a reservation already settled; strict:
 * abort, else note it (what the revived chunk then delivers is not judged). */
__attribute__((format(printf, 2, 3))) static void revived(struct run *r, const char *fmt, ...)
{
	char what[300];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (r->strict)
		fuzz_die("libmq bug R: %s", what);
	fuzz_note("known libmq bug R: %s", what);
	r->revived = 1;
}

/* ---- messages ---- */

/* msg_new: a message of LEN bytes, never committed yet; -1 if the run has
 * made MSG_MAX already. */
static int msg_new(struct run *r, size_t len)
{
	if (r->nmsgs == MSG_MAX)
		return -1;
	struct msg *m = &r->msgs[r->nmsgs];
	memset(m, 0, sizeof(*m));
	m->len = (uint32_t)len;
	return (int)r->nmsgs++;
}

static void msg_build(struct run *r, int i, unsigned char *buf)
{
	build_msg(buf, r->nonce, (uint32_t)i, r->msgs[i].len);
}

static int msg_equal(struct run *r, int i, const unsigned char *buf, size_t len)
{
	if (len != r->msgs[i].len)
		return 0;
	msg_build(r, i, r->scratch2);
	return memcmp(buf, r->scratch2, len) == 0;
}

size_t pick_len(struct run *r, unsigned v)
{
	uint32_t h = (uint32_t)(r->lseed + 1) * 2654435761u ^ (r->nlen++ + v * 977u) * 40503u;
	h ^= h >> 15;
	h *= 2246822519u;
	h ^= h >> 13;
	uint64_t max = r->max_msg;
	if (max < HDR)
		return h % (max + 1);
	switch (v < 12 ? h % 16 : v) {
	case 0:
	case 12:
		return 0;
	case 1:
	case 13:
		return max;
	case 2:
	case 14:
		return HDR;
	case 15:
		return max - 1;
	default: {
		uint64_t span = max - HDR + 1;
		return HDR + h % (span < 240 ? span : 240);
	}
	}
}

/* image_holds: whether some chunk of the file as C attached it held BUF. */
static int image_holds(struct run *r, const unsigned char *buf, size_t len)
{
	if (!r->img)
		return 0;
	for (uint64_t c = 0; c < r->cap; c++) {
		size_t off = r->chunks_off + (size_t)c * r->chunk_size + sizeof(struct mq_chunk);
		if (off + len <= r->img_len && memcmp(r->img + off, buf, len) == 0)
			return 1;
	}
	return 0;
}

/* identify: which of our messages BUF (LEN bytes, delivered by CALL) is: its
 * index; -2 one of ours too short to tell apart; -1 not ours but the bytes of
 * a chunk of the image. Anything else is an invented message: abort. */
static int identify(struct run *r, int who, const char *call, const unsigned char *buf, size_t len)
{
	if (len > r->max_msg)
		fuzz_die("%c: %s delivered %zu bytes, the maximum is %llu", r->act[who].name, call,
		         len, ULL(r->max_msg));
	if (len >= HDR) {
		uint32_t id, seq;
		memcpy(&id, buf, 4);
		memcpy(&seq, buf + 4, 4);
		if (id == r->nonce && seq < r->nmsgs && msg_equal(r, (int)seq, buf, len))
			return (int)seq;
	} else {
		for (unsigned i = 0; i < r->nmsgs; i++)
			if (r->msgs[i].len == len && r->msgs[i].state != MS_NONE &&
			    r->msgs[i].state != MS_RESERVED)
				return -2;
	}
	if (image_holds(r, buf, len))
		return -1;
	if (r->revived) {
		fuzz_note("%c: %s delivered %zu unknown bytes, after a revived record",
		          r->act[who].name, call, len);
		return -1;
	}
	fuzz_die("%c: %s delivered %zu bytes (first %02x %02x %02x %02x %02x %02x %02x %02x) "
	         "that are neither a message we sent nor what a chunk held at attach",
	         r->act[who].name, call, len, len > 0 ? buf[0] : 0, len > 1 ? buf[1] : 0,
	         len > 2 ? buf[2] : 0, len > 3 ? buf[3] : 0, len > 4 ? buf[4] : 0,
	         len > 5 ? buf[5] : 0, len > 6 ? buf[6] : 0, len > 7 ? buf[7] : 0);
}

/* delivered: our message I was delivered to WHO (leased if LEASE): it must
 * have been deliverable. */
static void delivered(struct run *r, int who, const char *call, int i, int lease)
{
	if (i < 0)
		return;
	struct msg *m = &r->msgs[i];
	if (m->state == MS_LOOSE)
		return;
	if (m->state != MS_QUEUED && m->state != MS_MAYBE)
		fuzz_die("%c: %s delivered message %d (%u bytes), which is %s%s", r->act[who].name,
		         call, i, m->len, state_name[m->state],
		         m->state == MS_HELD
		                 ? (m->holder == who ? " by this handle" : " by another")
		                 : "");
	m->state = lease ? MS_HELD : MS_RETIRED;
	m->holder = (uint8_t)who;
}

/* ---- the model ---- */

void op_leave_exact(struct run *r, const char *why)
{
	if (!r->exact)
		return;
	fuzz_note("exact mode ends: %s", why);
	r->exact = 0;
}

int op_beyond_limit(const struct run *r)
{
	const struct model *m = &r->m;
	return m->head >= MQ_INDEX_LIMIT || m->tail >= MQ_INDEX_LIMIT ||
	       m->rhead >= MQ_INDEX_LIMIT || m->rtail >= MQ_INDEX_LIMIT ||
	       (!r->lifo && (m->fhead >= MQ_INDEX_LIMIT || m->ftail >= MQ_INDEX_LIMIT));
}

/* near_limit: whether a position is close enough to 2^63 for the next call
 * to reach it. */
static int near_limit(struct run *r)
{
	const struct model *m = &r->m;
	uint64_t top = m->head > m->tail ? m->head : m->tail;
	if (m->rtail > top)
		top = m->rtail;
	if (!r->lifo && m->ftail > top)
		top = m->ftail;
	return top + 2 * QMAX + r->cap >= MQ_INDEX_LIMIT;
}

/* exact_miss: an exact prediction failed. Near the index limit an EPROTO ends
 * exact mode (returns: judge the call as damaged); anything else aborts. */
__attribute__((format(printf, 5, 6))) static void exact_miss(struct run *r, int risky, int failed,
                                                             int err, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (risky && failed && err == EPROTO) {
		fuzz_note("near the index limit: %s", what);
		op_leave_exact(r, "EPROTO near the index limit");
		return;
	}
	errno = err;
	fuzz_die("exact mode (an unmodified queue): %s", what);
}

/* past_limit: exact mode: a call that HIT a position >= 2^63 must fail
 * with EPROTO (what it changed then, the model no longer predicts: exact mode
 * ends, and 1 says to judge the call as damaged). */
static int past_limit(struct run *r, int who, const char *call, int hit, int failed, int err)
{
	if (!r->exact || !hit)
		return 0;
	if (failed && err == EPROTO) {
		op_leave_exact(r, "a call had to use a position past 2^63");
		return 1;
	}
	errno = err;
	fuzz_die("exact mode: %c: %s had to use a position at or past 2^63 and fail with EPROTO; "
	         "it %s",
	         r->act[who].name, call, failed ? "failed otherwise" : "succeeded");
}

static int model_next(struct run *r, int *from_requeue)
{
	*from_requeue = r->m.nrequeue > 0;
	if (r->m.nrequeue)
		return r->m.requeue[0];
	return r->m.nring ? r->m.ring[0] : -1;
}

static void list_pop(int *list, int *n)
{
	memmove(list, list + 1, sizeof(*list) * (size_t)(*n - 1));
	(*n)--;
}

static void list_push(int *list, int *n, int v)
{
	if (*n == QMAX)
		fuzz_die("model: more than %d messages in a list", QMAX);
	list[(*n)++] = v;
}

/* model_free, model_pop_free: a chunk goes into, or comes out of, the pool. */
static void model_free(struct run *r)
{
	r->m.free++;
	r->m.ftail++;
}

static void model_pop_free(struct run *r)
{
	r->m.free--;
	if (r->lifo)
		r->m.ftail--;
	else
		r->m.fhead++;
}

/* model_commit: message I is committed at the ring's tail by WHO. */
static void model_commit(struct run *r, struct actor *a, int i)
{
	struct msg *m = &r->msgs[i];
	m->state = MS_QUEUED;
	m->pos = r->m.tail++;
	list_push(r->m.ring, &r->m.nring, i);
	r->m.bytes_enq += m->len;
	a->sent++;
	a->bytes_sent += m->len;
}

/* model_took: the next message, I, was delivered to WHO (leased if LEASE). */
static void model_took(struct run *r, int who, int i, int from_requeue, int lease)
{
	struct actor *a = &r->act[who];
	struct msg *m = &r->msgs[i];
	if (from_requeue) {
		list_pop(r->m.requeue, &r->m.nrequeue);
		r->m.rhead++;
		r->m.redelivered++;
	} else {
		list_pop(r->m.ring, &r->m.nring);
		r->m.head++;
	}
	a->role |= MQ_ROLE_CONSUMER;
	if (lease) {
		m->deliveries++;
		m->state = MS_HELD;
		m->holder = (uint8_t)who;
		a->in_flight++;
		return;
	}
	m->state = MS_RETIRED;
	r->m.retired++;
	r->m.bytes_ret += m->len;
	a->received++;
	a->bytes_received += m->len;
	model_free(r);
}

/* give_back: WHO's leases go to the requeue ring and its reservations to the
 * pool, in chunk order (reap.c scans the chunks). In damaged mode only the
 * messages' states move. */
static void give_back(struct run *r, int who)
{
	struct actor *a = &r->act[who];
	for (uint64_t idx = 0; idx < r->cap; idx++) {
		for (unsigned i = 0; i < a->nlease; i++) {
			struct lease_rec *l = &a->lease[i];
			if (l->settled || l->l.slot != idx)
				continue;
			l->settled = 1;
			if (l->msg >= 0 && r->msgs[l->msg].state == MS_HELD)
				r->msgs[l->msg].state = MS_QUEUED;
			if (r->exact) {
				list_push(r->m.requeue, &r->m.nrequeue, l->msg);
				r->m.rtail++;
			}
		}
		for (unsigned i = 0; i < a->nresv; i++) {
			struct resv *v = &a->resv[i];
			if (v->done || v->idx != idx)
				continue;
			v->done = 1;
			if (r->exact)
				model_free(r);
		}
	}
	a->in_flight = 0;
}

void op_rebase(struct run *r, uint64_t delta)
{
	struct model *m = &r->m;
	m->head += delta;
	m->tail += delta;
	m->rhead += delta;
	m->rtail += delta;
	if (!r->lifo) {
		m->fhead += delta;
		m->ftail += delta;
	}
	for (unsigned i = 0; i < r->nmsgs; i++)
		r->msgs[i].pos += delta;
	for (unsigned i = 0; i < r->act[ACT_B].nlease; i++)
		r->act[ACT_B].lease[i].l.id += delta;
}

/* ---- lock words ---- */

void op_lockwords(struct run *r, uint32_t w[2])
{
	static const int order[] = {ACT_C, ACT_D, ACT_B, ACT_A};
	w[0] = w[1] = 0;
	for (unsigned i = 0; i < 4; i++) {
		struct actor *a = &r->act[order[i]];
		if (a->state != ACT_LIVE || mq_load_relaxed(&a->q->damaged))
			continue;
		w[0] = mq_load_relaxed(&a->q->shm->send.lock);
		w[1] = mq_load_relaxed(&a->q->shm->recv.lock);
		return;
	}
}

/* lock_watch: look at the lock words between calls (nothing of ours holds
 * a lock then). A word naming a live handle of ours: forged by the image
 * (unchanged since C attached) makes every locking call wait for a holder
 * that never lets go (r->wedged); left by a call that returned, it is a
 * lock libmq did not release. Exact mode: both words free, no operation
 * recorded. */
static void lock_watch(struct run *r, const char *after)
{
	uint32_t w[2];
	op_lockwords(r, w);
	for (int side = 0; side < 2; side++) {
		uint32_t tok = w[side] & MQ_TOKEN_MASK;
		if (r->exact && w[side])
			fuzz_die("exact mode: the %s lock word is 0x%08x after %s",
			         side ? "receive" : "send", w[side], after);
		if (!tok)
			continue;
		for (int i = 0; i < ACTORS; i++) {
			struct actor *a = &r->act[i];
			if (a->state != ACT_LIVE || a->token != tok)
				continue;
			if (w[side] != r->lockword0[side])
				fuzz_die("%s lock word 0x%08x names %c (token 0x%x) after %s "
				         "returned",
				         side ? "receive" : "send", w[side], a->name, tok, after);
			if (!r->wedged)
				fuzz_note("the %s lock word 0x%08x names live handle %c: it never "
				          "comes free (%s)",
				          side ? "receive" : "send", w[side], a->name,
				          r->strict ? "strict: calling anyway"
				                    : "skipping the calls that lock");
			r->wedged = 1;
		}
	}
	if (r->exact) {
		struct actor *a = NULL;
		for (int i = 0; i < ACTORS && !a; i++)
			if (r->act[i].state == ACT_LIVE)
				a = &r->act[i];
		if (a && (mq_load_relaxed(&a->q->shm->send.intent.op) ||
		          mq_load_relaxed(&a->q->shm->recv.intent.op)))
			fuzz_die("exact mode: an operation is still recorded after %s", after);
	}
}

/* may_lock: whether WHO may make a call that takes a lock (not while wedged,
 * unless strict; not on a handle that is not attached). */
static int may_lock(struct run *r, int who)
{
	if (r->act[who].state != ACT_LIVE)
		return 0;
	lock_watch(r, "the last call");
	return !r->wedged || r->strict;
}

/* ---- attach, detach, death ---- */

void run_buffers(struct run *r)
{
	free(r->scratch);
	free(r->scratch2);
	r->scratch = malloc((size_t)r->max_msg + 64);
	r->scratch2 = malloc((size_t)r->max_msg + 64);
	if (!r->scratch || !r->scratch2)
		fuzz_die("out of memory for messages of %llu bytes", ULL(r->max_msg));
}

int op_attach(struct run *r, int who, int expect)
{
	struct actor *a = &r->act[who];
	mq_t *q = mq_attach(r->name);
	int err = errno;
	fuzz_note("%c: mq_attach: %s", a->name, q ? "attached" : mq_errdetail());
	if (!q) {
		if (expect == 1)
			fuzz_die("%c: mq_attach of an unmodified valid queue failed", a->name);
		want_errno(r, who, "mq_attach", err, 4, EPROTO, EUSERS, ENOMEM, ENOLCK);
		return 0;
	}
	if (expect == 0)
		fuzz_die("%c: mq_attach accepted a queue with positions at or past 2^63", a->name);
	memset(a, 0, sizeof(*a));
	a->name = (char)('A' + who);
	a->q = q;
	a->state = ACT_LIVE;
	a->slot = q->client;
	a->token = q->token;
	if (!r->scratch || r->max_msg != q->max_msg || r->cap != q->capacity) {
		if (r->exact && r->scratch)
			fuzz_die("%c: geometry %llu x %llu, setup made %llu x %llu", a->name,
			         ULL(q->capacity), ULL(q->max_msg), ULL(r->cap), ULL(r->max_msg));
		r->cap = q->capacity;
		r->max_msg = q->max_msg;
		r->lifo = (q->flags & MQ_SEG_LIFO) != 0;
		run_buffers(r);
	}
	return 1;
}

void op_detach(struct run *r, int who)
{
	struct actor *a = &r->act[who];
	if (a->state != ACT_LIVE)
		return;
	if (r->wedged && !r->strict) {
		/* Giving back takes both locks: a wedged lock would cost a 2 s wait. */
		op_kill(r, who);
		return;
	}
	give_back(r, who);
	if (mq_load_relaxed(&a->q->damaged))
		fuzz_note("%c: its mapping lost pages (the SIGBUS guard): EPROTO from here",
		          a->name);
	if (mq_detach(a->q) != 0)
		fuzz_die("%c: mq_detach failed", a->name);
	a->q = NULL;
	a->state = ACT_GONE;
	lock_watch(r, "mq_detach");
}

void op_kill(struct run *r, int who)
{
	struct actor *a = &r->act[who];
	if (a->state != ACT_LIVE)
		return;
	struct mq *q = a->q;
	/* What the kernel does when a process dies: its descriptors close
	 * (and with them its liveness lock), its mappings go. */
	guard_remove(q);
	munmap(q->shm, q->map_size);
	close(q->fd);
	free(q);
	a->q = NULL;
	a->state = ACT_DEAD;
	for (unsigned i = 0; i < a->nlease; i++)
		if (!a->lease[i].settled && a->lease[i].msg >= 0 &&
		    r->msgs[a->lease[i].msg].state == MS_HELD)
			r->msgs[a->lease[i].msg].state = MS_QUEUED; /* the next reap */
}

/* ---- sending ---- */

/* send_n: WHO sends N messages of length variants V (batch: mq_send_batch).
 * Returns the first message's index, or -1. */
static int send_n(struct run *r, int who, unsigned n, const unsigned *v, int batch)
{
	struct actor *a = &r->act[who];
	const char *call = batch ? "mq_send_batch" : "mq_send";
	if (!may_lock(r, who) || r->nmsgs + n > MSG_MAX)
		return -1;
	struct iovec iov[SEND_MAX];
	size_t total = 0;
	int first = (int)r->nmsgs;
	for (unsigned j = 0; j < n; j++) {
		size_t len = pick_len(r, v[j]);
		msg_new(r, len);
		total += len;
	}
	unsigned char *arena = malloc(total + 1);
	if (!arena)
		fuzz_die("out of memory");
	size_t off = 0;
	for (unsigned j = 0; j < n; j++) {
		msg_build(r, first + (int)j, arena + off);
		iov[j].iov_base = arena + off;
		iov[j].iov_len = r->msgs[first + j].len;
		off += iov[j].iov_len;
	}
	/* A ring position from 2^63 on is refused: a batch stops before it. */
	int hit = r->m.free > 0 && r->m.tail >= MQ_INDEX_LIMIT;
	int rc = batch ? mq_send_batch(a->q, iov, n, 0)
	               : mq_send(a->q, iov[0].iov_base, iov[0].iov_len, 0);
	int err = errno;
	free(arena);
	int k = rc < 0 ? -1 : batch ? rc : 1;
	past_limit(r, who, call, hit, rc < 0, err);
	if (r->exact) {
		uint64_t want = r->m.free < n ? r->m.free : n;
		if (want > MQ_INDEX_LIMIT - r->m.tail)
			want = MQ_INDEX_LIMIT - r->m.tail;
		if (want == 0 && rc == -1 && err == EAGAIN) {
			r->m.full++;
			lock_watch(r, call);
			return -1;
		}
		if (want > 0 && k == (int)want) {
			for (int j = 0; j < k; j++) {
				model_pop_free(r);
				model_commit(r, a, first + j);
			}
			a->role |= MQ_ROLE_PRODUCER;
			lock_watch(r, call);
			return first;
		}
		exact_miss(
		        r, 0, rc < 0, err,
		        "%c: %s of %u (%llu chunks free) returned %d (errno %d), expected %s%llu",
		        a->name, call, n, ULL(r->m.free), rc, rc < 0 ? err : 0,
		        want ? "" : "EAGAIN, not ", ULL(want));
	}
	if (rc < 0) {
		want_errno(r, who, call, err, 2, EAGAIN, EPROTO);
		for (unsigned j = 0; j < n; j++)
			r->msgs[first + j].state = err == EAGAIN ? MS_NONE : MS_MAYBE;
	} else {
		if (k < 1 || k > (int)n)
			fuzz_die("%c: %s of %u messages returned %d", a->name, call, n, rc);
		for (int j = 0; j < k; j++)
			r->msgs[first + j].state = MS_QUEUED;
	}
	lock_watch(r, call);
	return first;
}

int op_send(struct run *r, int who, unsigned v)
{
	return send_n(r, who, 1, &v, 0);
}

/* ---- receiving ---- */

int op_recv(struct run *r, int who, size_t cap)
{
	struct actor *a = &r->act[who];
	if (!may_lock(r, who))
		return NOTHING;
	int rq = 0, want = r->exact ? model_next(r, &rq) : -1;
	int hit =
	        (rq ? r->m.rhead : r->m.head) >= MQ_INDEX_LIMIT ||
	        (want >= 0 && r->msgs[want].len <= cap && !r->lifo && r->m.ftail >= MQ_INDEX_LIMIT);
	ssize_t n = mq_recv(a->q, r->scratch, cap, 0);
	int err = errno;
	past_limit(r, who, "mq_recv", hit, n < 0, err);
	if (r->exact) {
		const int risky = 0;
		if (want < 0) {
			if (n == -1 && err == EAGAIN) {
				r->m.empty++;
				lock_watch(r, "mq_recv");
				return NOTHING;
			}
			exact_miss(
			        r, risky, n < 0, err,
			        "%c: mq_recv on an empty queue returned %zd (errno %d), expected "
			        "EAGAIN",
			        a->name, n, n < 0 ? err : 0);
		} else if (r->msgs[want].len > cap) {
			if (n == -1 && err == EMSGSIZE) {
				lock_watch(r, "mq_recv");
				return NOTHING;
			}
			exact_miss(r, risky, n < 0, err,
			           "%c: mq_recv into %zu bytes of message %d (%u bytes) returned "
			           "%zd (errno %d), expected EMSGSIZE",
			           a->name, cap, want, r->msgs[want].len, n, n < 0 ? err : 0);
		} else if (n >= 0 && msg_equal(r, want, r->scratch, (size_t)n)) {
			model_took(r, who, want, rq, 0);
			lock_watch(r, "mq_recv");
			return want;
		} else {
			exact_miss(r, risky, n < 0, err,
			           "%c: mq_recv returned %zd (errno %d), expected message %d (%u "
			           "bytes%s)",
			           a->name, n, n < 0 ? err : 0, want, r->msgs[want].len,
			           rq ? ", requeued" : "");
		}
	}
	if (n < 0) {
		if (cap < r->max_msg)
			want_errno(r, who, "mq_recv", err, 3, EAGAIN, EPROTO, EMSGSIZE);
		else
			want_errno(r, who, "mq_recv", err, 2, EAGAIN, EPROTO);
		lock_watch(r, "mq_recv");
		return NOTHING;
	}
	if ((size_t)n > cap)
		fuzz_die("%c: mq_recv returned %zd bytes into a buffer of %zu", a->name, n, cap);
	int i = identify(r, who, "mq_recv", r->scratch, (size_t)n);
	delivered(r, who, "mq_recv", i, 0);
	lock_watch(r, "mq_recv");
	return i;
}

/* check_payload_ptr: P must be the payload of chunk IDX of WHO's mapping. */
static void check_payload_ptr(struct run *r, int who, const char *call, const void *p, uint64_t idx)
{
	struct mq *q = handle(r, who);
	if (idx >= q->capacity || p != handle_payload(q, idx))
		fuzz_die("%c: %s returned %p for chunk %llu; its payload is at %p",
		         r->act[who].name, call, p, ULL(idx),
		         idx < q->capacity ? (void *)handle_payload(q, idx) : NULL);
}

int op_lease(struct run *r, int who, int peek, size_t cap)
{
	struct actor *a = &r->act[who];
	const char *call = peek ? "mq_peek" : "mq_recv_lease";
	if (!may_lock(r, who) || a->nlease == HOLD_MAX)
		return NOTHING;
	int rq = 0, want = r->exact ? model_next(r, &rq) : -1;
	int hit = (rq ? r->m.rhead : r->m.head) >= MQ_INDEX_LIMIT;
	mq_lease_t l;
	memset(&l, 0xa5, sizeof(l));
	const unsigned char *p = NULL;
	ssize_t n;
	if (peek) {
		size_t len = 0;
		p = mq_peek(a->q, &len, 0, &l);
		n = p ? (ssize_t)len : -1;
		cap = SIZE_MAX;
	} else {
		n = mq_recv_lease(a->q, r->scratch, cap, 0, &l);
		p = r->scratch;
	}
	int err = errno;
	if (n >= 0 && peek)
		check_payload_ptr(r, who, call, p, l.slot);
	past_limit(r, who, call, hit, n < 0, err);
	if (r->exact) {
		const int risky = 0;
		if (want < 0) {
			if (n == -1 && err == EAGAIN) {
				r->m.empty++;
				lock_watch(r, call);
				return NOTHING;
			}
			exact_miss(r, risky, n < 0, err,
			           "%c: %s on an empty queue returned %zd (errno %d), expected "
			           "EAGAIN",
			           a->name, call, n, n < 0 ? err : 0);
		} else if (r->msgs[want].len > cap) {
			if (n == -1 && err == EMSGSIZE) {
				lock_watch(r, call);
				return NOTHING;
			}
			exact_miss(r, risky, n < 0, err,
			           "%c: %s into %zu bytes of message %d (%u bytes) returned %zd "
			           "(errno %d), expected EMSGSIZE",
			           a->name, call, cap, want, r->msgs[want].len, n, n < 0 ? err : 0);
		} else if (n >= 0 && msg_equal(r, want, p, (size_t)n) &&
		           l.id == r->msgs[want].pos + 1 &&
		           l.deliveries == r->msgs[want].deliveries + 1 && l.len == (uint32_t)n &&
		           l.owner == a->token) {
			model_took(r, who, want, rq, 1);
			struct lease_rec *rec = &a->lease[a->nlease++];
			memset(rec, 0, sizeof(*rec));
			rec->l = l;
			rec->msg = want;
			rec->peek = peek ? p : NULL;
			lock_watch(r, call);
			return want;
		} else {
			exact_miss(r, risky, n < 0, err,
			           "%c: %s returned %zd (errno %d), lease id %llu, deliveries %u; "
			           "expected message %d (%u bytes%s), id %llu, deliveries %u",
			           a->name, call, n, n < 0 ? err : 0, ULL(l.id), l.deliveries, want,
			           r->msgs[want].len, rq ? ", requeued" : "",
			           ULL(r->msgs[want].pos + 1), r->msgs[want].deliveries + 1);
		}
	}
	if (n < 0) {
		if (!peek && cap < r->max_msg)
			want_errno(r, who, call, err, 3, EAGAIN, EPROTO, EMSGSIZE);
		else
			want_errno(r, who, call, err, 2, EAGAIN, EPROTO);
		lock_watch(r, call);
		return NOTHING;
	}
	/* Not deliveries: the chunk's count is not checked (a scribbled one
	 * may wrap to 0), as payload bytes are not. */
	if ((size_t)n > cap || l.len != (uint32_t)n || l.owner != a->token)
		fuzz_die("%c: %s returned %zd bytes (buffer %zu), lease len %u, owner 0x%x (ours "
		         "0x%x)",
		         a->name, call, n, cap, l.len, l.owner, a->token);
	int i = identify(r, who, call, p, (size_t)n);
	delivered(r, who, call, i, 1);
	struct lease_rec *rec = &a->lease[a->nlease++];
	memset(rec, 0, sizeof(*rec));
	rec->l = l;
	rec->msg = i;
	rec->peek = peek ? p : NULL;
	a->in_flight++;
	a->role |= MQ_ROLE_CONSUMER;
	lock_watch(r, call);
	return i;
}

/* recv_batch: mq_recv_batch of N buffers of max_msg bytes (buffer SMALL, if
 * below N, of 15). */
static void recv_batch(struct run *r, int who, unsigned n, unsigned small)
{
	struct actor *a = &r->act[who];
	if (!may_lock(r, who))
		return;
	size_t bsize = (size_t)r->max_msg;
	unsigned char *mem = malloc(bsize * n + 1);
	struct iovec *iov = calloc(n, sizeof(*iov));
	if (!mem || !iov)
		fuzz_die("out of memory");
	for (unsigned j = 0; j < n; j++) {
		iov[j].iov_base = mem + bsize * j;
		iov[j].iov_len = j == small ? 15 : bsize;
	}
	int risky = r->exact && near_limit(r);
	int rq = 0, want = r->exact ? model_next(r, &rq) : -1;
	int k = mq_recv_batch(a->q, iov, n, 0);
	int err = errno;
	if (r->exact) {
		const char *bad = NULL;
		if (want < 0) {
			if (k == -1 && err == EAGAIN)
				r->m.empty++;
			else
				bad = "expected EAGAIN (empty)";
		} else if (r->msgs[want].len > (small == 0 ? 15 : bsize)) {
			if (k != -1 || err != EMSGSIZE)
				bad = "expected EMSGSIZE (the first message does not fit)";
		} else if (k < 1 || k > (int)n) {
			bad = "expected 1..n messages";
		} else {
			int from_requeue = rq;
			for (int j = 0; j < k && !bad; j++) {
				int w = model_next(r, &rq);
				if (w < 0 || !msg_equal(r, w, iov[j].iov_base, iov[j].iov_len) ||
				    (!r->lifo && rq != from_requeue))
					bad = "a message other than the model's next";
				else
					model_took(r, who, w, rq, 0);
			}
			/* It may stop early only where libmq does: nothing left, the
			 * next does not fit, the end of the requeue ring (small chunks
			 * take from one ring per round), or a full round. */
			int w = model_next(r, &rq);
			if (!bad && k < (int)n && w >= 0 && r->msgs[w].len <= iov[k].iov_len &&
			    (r->lifo || rq == from_requeue) && k < ROUND_MAX)
				bad = "it stopped before a message that fits";
		}
		if (bad)
			exact_miss(r, risky, k < 0, err,
			           "%c: mq_recv_batch of %u returned %d (errno %d): %s", a->name, n,
			           k, k < 0 ? err : 0, bad);
		else {
			free(mem);
			free(iov);
			lock_watch(r, "mq_recv_batch");
			return;
		}
	}
	if (k < 0) {
		if (small == 0)
			want_errno(r, who, "mq_recv_batch", err, 3, EAGAIN, EPROTO, EMSGSIZE);
		else
			want_errno(r, who, "mq_recv_batch", err, 2, EAGAIN, EPROTO);
	} else {
		if (k < 1 || k > (int)n)
			fuzz_die("%c: mq_recv_batch of %u returned %d", a->name, n, k);
		for (int j = 0; j < k; j++) {
			if (iov[j].iov_len > (j == (int)small ? 15 : bsize))
				fuzz_die(
				        "%c: mq_recv_batch: message %d of %zu bytes in a buffer of "
				        "%zu",
				        a->name, j, iov[j].iov_len, j == (int)small ? 15 : bsize);
			int i = identify(r, who, "mq_recv_batch", iov[j].iov_base, iov[j].iov_len);
			delivered(r, who, "mq_recv_batch", i, 0);
		}
	}
	free(mem);
	free(iov);
	lock_watch(r, "mq_recv_batch");
}

/* ---- settling ---- */

/* pick_lease: lease ARG of WHO: 0 the newest, 1 the one before, ... */
static struct lease_rec *pick_lease(struct actor *a, unsigned arg)
{
	if (!a->nlease)
		return NULL;
	return &a->lease[arg < a->nlease ? a->nlease - 1 - arg : arg % a->nlease];
}

void op_settle(struct run *r, int who, unsigned i, int nack)
{
	struct actor *a = &r->act[who];
	const char *call = nack ? "mq_nack" : "mq_ack";
	struct lease_rec *rec = pick_lease(a, i);
	if (!rec || !may_lock(r, who))
		return;
	int hit = !rec->settled &&
	          (nack ? r->m.rtail >= MQ_INDEX_LIMIT : !r->lifo && r->m.ftail >= MQ_INDEX_LIMIT);
	if (r->exact && rec->peek && !rec->settled &&
	    !msg_equal(r, rec->msg, rec->peek, rec->l.len))
		fuzz_die("%c: the bytes mq_peek gave for message %d changed before its %s", a->name,
		         rec->msg, call);
	int rc = nack ? mq_nack(a->q, &rec->l) : mq_ack(a->q, &rec->l);
	int err = errno;
	past_limit(r, who, call, hit, rc < 0, err);
	if (r->exact) {
		const int risky = 0;
		if (rec->settled) {
			if (rc == -1 && err == EINVAL) {
				lock_watch(r, call);
				return;
			}
			exact_miss(r, risky, rc < 0, err,
			           "%c: %s of a settled lease (id %llu) returned %d (errno %d), "
			           "expected EINVAL",
			           a->name, call, ULL(rec->l.id), rc, rc < 0 ? err : 0);
		} else if (rc == 0) {
			struct msg *m = &r->msgs[rec->msg];
			rec->settled = 1;
			a->in_flight--;
			if (nack) {
				m->state = MS_QUEUED;
				list_push(r->m.requeue, &r->m.nrequeue, rec->msg);
				r->m.rtail++;
				r->m.nacked++;
				a->nacked++;
			} else {
				m->state = MS_RETIRED;
				model_free(r);
				r->m.retired++;
				r->m.bytes_ret += m->len;
				r->m.acked++;
				a->acked++;
				a->received++;
				a->bytes_received += m->len;
			}
			lock_watch(r, call);
			return;
		} else {
			exact_miss(r, risky, 1, err, "%c: %s of lease id %llu failed (errno %d)",
			           a->name, call, ULL(rec->l.id), err);
		}
	}
	if (rc == 0) {
		/* After a failed settle the lease may still stand (EPROTO from a
		 * push the damage refused changes nothing): once more. */
		if (rec->settled == 1)
			revived(r,
			        "%c: %s of a lease settled already (id %llu, deliveries %u) "
			        "succeeded",
			        a->name, call, ULL(rec->l.id), rec->l.deliveries);
		if (a->in_flight)
			a->in_flight--;
		if (rec->msg >= 0 && r->msgs[rec->msg].state != MS_LOOSE)
			r->msgs[rec->msg].state = nack ? MS_QUEUED : MS_RETIRED;
		rec->settled = 1;
	} else {
		want_errno(r, who, call, err, 2, EINVAL, EPROTO);
		if (!rec->settled && rec->msg >= 0)
			r->msgs[rec->msg].state = MS_LOOSE;
		if (!rec->settled)
			rec->settled = 2;
	}
	lock_watch(r, call);
}

/* ---- zero-copy sending ---- */

void op_reserve(struct run *r, int who, size_t len)
{
	struct actor *a = &r->act[who];
	if (!may_lock(r, who) || a->nresv == HOLD_MAX)
		return;
	const int risky = 0; /* taking a chunk checks no position */
	unsigned char *p = mq_reserve(a->q, len, 0);
	int err = errno;
	if (p) {
		struct mq *q = a->q;
		uint64_t off = (uint64_t)(p - handle_payload(q, 0));
		if (p < handle_payload(q, 0) || off % q->chunk_size ||
		    off / q->chunk_size >= q->capacity || (uintptr_t)p % 64)
			fuzz_die("%c: mq_reserve returned %p, not the payload of a chunk", a->name,
			         (void *)p);
		/* It must be ours to write: a reservation outside the mapping
		 * faults here, not in a later reader. */
		memset(p, 0xee, len);
		struct resv *v = &a->resv[a->nresv++];
		v->buf = p;
		v->len = len;
		v->idx = (uint32_t)(off / q->chunk_size);
		v->done = 0;
		a->role |= MQ_ROLE_PRODUCER;
	}
	if (r->exact) {
		int want = len > r->max_msg ? EMSGSIZE : r->m.free == 0 ? EAGAIN : 0;
		if (!p && err == want) {
			if (want == EAGAIN)
				r->m.full++;
			lock_watch(r, "mq_reserve");
			return;
		}
		if (p && !want) {
			model_pop_free(r);
			lock_watch(r, "mq_reserve");
			return;
		}
		exact_miss(r, risky, !p, err,
		           "%c: mq_reserve of %zu bytes (%llu chunks free) returned %p (errno %d), "
		           "expected errno %d",
		           a->name, len, ULL(r->m.free), (void *)p, p ? 0 : err, want);
	}
	if (!p) {
		if (len > r->max_msg)
			want_errno(r, who, "mq_reserve", err, 2, EMSGSIZE, EPROTO);
		else
			want_errno(r, who, "mq_reserve", err, 2, EAGAIN, EPROTO);
	}
	lock_watch(r, "mq_reserve");
}

/* pick_resv: reservation ARG of WHO (0 the newest). A done one whose chunk
 * this actor has reserved again (same buffer), or holds in doubt, stands for
 * that one: both calls would act on it, and its bytes are not a message. */
static struct resv *pick_resv(struct actor *a, unsigned arg)
{
	if (!a->nresv)
		return NULL;
	struct resv *v = &a->resv[arg < a->nresv ? a->nresv - 1 - arg : arg % a->nresv];
	if (v->done == 1) /* a standing one (or one in doubt) on the same chunk */
		for (unsigned i = a->nresv; i-- > 0;)
			if (a->resv[i].done != 1 && a->resv[i].buf == v->buf)
				return &a->resv[i];
	return v;
}

/* still_ours: whether reservation V's chunk is still WRITING by WHO (in a
 * damaged queue, a dead holder's repaired record may have taken it away:
 * then writing into it would scribble on whatever it holds now). */
static int still_ours(struct run *r, int who, const struct resv *v)
{
	struct actor *a = &r->act[who];
	if (v->done == 1 || mq_load_relaxed(&a->q->damaged))
		return 0;
	uint64_t st = mq_load_relaxed(&handle_chunk(a->q, v->idx)->state);
	return st == MQ_CHUNK_STATE(MQ_CHUNK_WRITING, a->token);
}

/* commit: WHO commits reservation ARG & 3: bits 2-3 of ARG: 0 its whole
 * length, 1 a shorter message, 2 one byte more than reserved (EINVAL), 3
 * whole, then the same buffer again (EINVAL). */
static void commit(struct run *r, int who, unsigned arg)
{
	struct actor *a = &r->act[who];
	struct resv *v = pick_resv(a, arg & 3);
	unsigned how = arg >> 2 & 3;
	if (!v || !may_lock(r, who) || r->nmsgs == MSG_MAX)
		return;
	size_t len = v->len;
	if (how == 1)
		len = len ? pick_len(r, 0) % (len + 1) : 0;
	else if (how == 2)
		len = v->len + 1;
	int i = msg_new(r, len);
	int wrote = 0;
	if (len <= v->len && still_ours(r, who, v)) {
		msg_build(r, i, v->buf);
		r->msgs[i].state = MS_RESERVED;
		wrote = 1;
	}
	int hit = !v->done && len <= v->len && r->m.tail >= MQ_INDEX_LIMIT;
	int rc = mq_commit(a->q, v->buf, len);
	int err = errno;
	if (past_limit(r, who, "mq_commit", hit, rc < 0, err))
		v->done = 2; /* refused: the reservation stands */
	if (r->exact) {
		const int risky = 0;
		int ok = !v->done && len <= v->len;
		if (ok && rc == 0) {
			v->done = 1;
			model_commit(r, a, i);
		} else if (!ok && rc == -1 && err == EINVAL) {
			r->msgs[i].state = MS_NONE;
		} else {
			exact_miss(r, risky, rc < 0, err,
			           "%c: mq_commit of %zu bytes (%zu reserved%s) returned %d (errno "
			           "%d)",
			           a->name, len, v->len, v->done ? ", done already" : "", rc,
			           rc < 0 ? err : 0);
		}
	}
	if (!r->exact) {
		if (rc == 0) {
			if (!wrote)
				revived(r,
				        "%c: mq_commit of a buffer that is not reserved by this "
				        "handle "
				        "(%s) succeeded",
				        a->name, v->done ? "done already" : "taken away");
			v->done = 1;
			r->msgs[i].state = MS_QUEUED;
		} else {
			want_errno(r, who, "mq_commit", err, 2, EINVAL, EPROTO);
			r->msgs[i].state = err == EPROTO && wrote ? MS_MAYBE : MS_NONE;
			if (err == EPROTO && !v->done)
				v->done = 2; /* it may stand still */
		}
	}
	lock_watch(r, "mq_commit");
	if (how == 3 && rc == 0) {
		rc = mq_commit(a->q, v->buf, len);
		err = errno;
		if (rc == 0)
			fuzz_die("%c: mq_commit of a buffer committed already succeeded", a->name);
		if (r->exact && err != EINVAL)
			exact_miss(r, 0, 1, err, "%c: second mq_commit: errno %d, expected EINVAL",
			           a->name, err);
		want_errno(r, who, "mq_commit", err, 2, EINVAL, EPROTO);
		lock_watch(r, "mq_commit");
	}
}

/* cancel: WHO cancels reservation ARG & 7 (twice if ARG & 8). */
static void cancel(struct run *r, int who, unsigned arg)
{
	struct actor *a = &r->act[who];
	struct resv *v = pick_resv(a, arg & 7);
	if (!v || !may_lock(r, who))
		return;
	for (int round = 0; round < (arg & 8 ? 2 : 1); round++) {
		int hit = !v->done && !r->lifo && r->m.ftail >= MQ_INDEX_LIMIT;
		int rc = mq_cancel(a->q, v->buf);
		int err = errno;
		past_limit(r, who, "mq_cancel", hit, rc < 0, err);
		if (r->exact) {
			const int risky = 0;
			if (!v->done && rc == 0) {
				v->done = 1;
				model_free(r);
			} else if (!(v->done && rc == -1 && err == EINVAL)) {
				exact_miss(r, risky, rc < 0, err,
				           "%c: mq_cancel (%s) returned %d (errno %d)", a->name,
				           v->done ? "done already" : "reserved", rc,
				           rc < 0 ? err : 0);
			}
		}
		if (!r->exact) {
			if (rc == 0 && v->done == 1)
				revived(r, "%c: mq_cancel of a reservation done already succeeded",
				        a->name);
			if (rc != 0)
				want_errno(r, who, "mq_cancel", err, 2, EINVAL, EPROTO);
			if (rc == 0 || !v->done)
				v->done = rc == 0 || err == EINVAL ? 1 : 2;
		}
		lock_watch(r, "mq_cancel");
	}
}

/* ---- the state: stats, clients, chunks ---- */

static void check_stats_exact(struct run *r, int who, const struct mq_stats *st)
{
	uint64_t depth = (uint64_t)r->m.nring + (uint64_t)r->m.nrequeue;
	uint64_t in_flight = 0;
	uint32_t clients = 0, producers = 0, consumers = 0;
	for (int i = 0; i < ACTORS; i++) {
		struct actor *a = &r->act[i];
		if (a->state == ACT_LIVE || a->state == ACT_DEAD)
			in_flight += a->in_flight;
		if (a->state != ACT_LIVE)
			continue;
		clients++;
		producers += !!(a->role & MQ_ROLE_PRODUCER);
		consumers += !!(a->role & MQ_ROLE_CONSUMER);
	}
#define FIELD(f, want)                                                                             \
	do {                                                                                       \
		if ((uint64_t)st->f != (uint64_t)(want))                                           \
			fuzz_die("exact mode: %c: mq_stats: " #f " is %llu, expected %llu",        \
			         r->act[who].name, ULL(st->f), ULL(want));                         \
	} while (0)
	FIELD(capacity, r->cap);
	FIELD(max_msg_size, r->max_msg);
	FIELD(depth, depth > r->cap ? r->cap : depth);
	FIELD(enqueued_total, r->m.tail);
	FIELD(dequeued_total, r->m.retired);
	FIELD(bytes_enqueued_total, r->m.bytes_enq);
	FIELD(bytes_dequeued_total, r->m.bytes_ret);
	FIELD(blocked_sends_total, 0);
	FIELD(blocked_recvs_total, 0);
	FIELD(full_total, r->m.full);
	FIELD(empty_total, r->m.empty);
	FIELD(recoveries_total, r->m.recoveries);
	FIELD(lock_repairs_total, 0);
	FIELD(producers, producers);
	FIELD(consumers, consumers);
	FIELD(clients, clients);
	FIELD(broker_pid, 0);
	FIELD(in_flight, in_flight);
	FIELD(acked_total, r->m.acked);
	FIELD(nacked_total, r->m.nacked);
	FIELD(redelivered_total, r->m.redelivered);
#undef FIELD
	if (st->high_water > r->cap || st->high_water < r->m.high_water)
		fuzz_die("exact mode: %c: mq_stats: high water %llu (before %llu, capacity %llu)",
		         r->act[who].name, ULL(st->high_water), ULL(r->m.high_water), ULL(r->cap));
	r->m.high_water = st->high_water;
}

static void check_clients_exact(struct run *r, int who, const struct mq_client_info *info, int n)
{
	/* Entries are listed in table order: live and dead ones, not free ones. */
	int want = 0;
	for (int s = 0; s < MQ_CLIENTS_MAX; s++) {
		for (int i = 0; i < ACTORS; i++) {
			struct actor *a = &r->act[i];
			if (a->slot != s || (a->state != ACT_LIVE && a->state != ACT_DEAD &&
			                     a->state != ACT_REAPED))
				continue;
			if (want >= n)
				fuzz_die("exact mode: %c: mq_clients lists %d entries, %c is "
				         "missing",
				         r->act[who].name, n, a->name);
			const struct mq_client_info *o = &info[want++];
			uint64_t in_flight = a->state == ACT_REAPED ? 0 : a->in_flight;
			if (o->pid != (int32_t)getpid() || o->alive != (a->state == ACT_LIVE) ||
			    o->role != a->role || o->sent_total != a->sent ||
			    o->received_total != a->received ||
			    o->bytes_sent_total != a->bytes_sent ||
			    o->bytes_received_total != a->bytes_received ||
			    o->in_flight != in_flight || o->acked_total != a->acked ||
			    o->nacked_total != a->nacked)
				fuzz_die("exact mode: %c: mq_clients entry of %c: alive %d role %u "
				         "sent "
				         "%llu/%llu B received %llu/%llu B in flight %llu acked "
				         "%llu "
				         "nacked %llu; expected %d %u %llu/%llu %llu/%llu %llu "
				         "%llu %llu",
				         r->act[who].name, a->name, o->alive, o->role,
				         ULL(o->sent_total), ULL(o->bytes_sent_total),
				         ULL(o->received_total), ULL(o->bytes_received_total),
				         ULL(o->in_flight), ULL(o->acked_total),
				         ULL(o->nacked_total), a->state == ACT_LIVE, a->role,
				         ULL(a->sent), ULL(a->bytes_sent), ULL(a->received),
				         ULL(a->bytes_received), ULL(in_flight), ULL(a->acked),
				         ULL(a->nacked));
		}
	}
	if (n != want)
		fuzz_die("exact mode: %c: mq_clients lists %d entries, expected %d",
		         r->act[who].name, n, want);
}

static void check_inspect_exact(struct run *r, int who, const struct mq_inspection *in)
{
	uint64_t leased = 0, writing = 0, orphaned = 0;
	for (int i = 0; i < ACTORS; i++) {
		struct actor *a = &r->act[i];
		if (a->state != ACT_LIVE && a->state != ACT_DEAD)
			continue;
		uint64_t l = 0, w = 0;
		for (unsigned j = 0; j < a->nlease; j++)
			l += !a->lease[j].settled;
		for (unsigned j = 0; j < a->nresv; j++)
			w += !a->resv[j].done;
		leased += l;
		writing += w;
		if (a->state == ACT_DEAD)
			orphaned += l + w;
	}
	const char *bad = NULL;
	if (!in->sound && !op_beyond_limit(r)) /* from 2^63 on the queue is refused */
		bad = in->problem;
	else if (in->chunks_free != r->m.free || in->chunks_queued != (uint64_t)r->m.nring ||
	         in->chunks_requeued != (uint64_t)r->m.nrequeue || in->chunks_leased != leased ||
	         in->chunks_writing != writing || in->chunks_taking != 0 ||
	         in->chunks_orphaned != orphaned)
		bad = "chunk census";
	else if (in->head != r->m.head || in->tail != r->m.tail || in->requeue_head != r->m.rhead ||
	         in->requeue_tail != r->m.rtail || in->pool_head != r->m.fhead ||
	         in->pool_tail != r->m.ftail)
		bad = "positions";
	else if (in->send_lock.word || in->recv_lock.word || in->send_lock.op || in->recv_lock.op)
		bad = "locks";
	if (bad)
		fuzz_die("exact mode: %c: mq_inspect: %s: free %llu queued %llu requeued %llu "
		         "leased "
		         "%llu writing %llu taking %llu orphaned %llu, positions %llu..%llu "
		         "requeue %llu..%llu pool %llu..%llu; the model: %llu %d %d %llu %llu 0 "
		         "%llu, %llu..%llu %llu..%llu %llu..%llu",
		         r->act[who].name, bad, ULL(in->chunks_free), ULL(in->chunks_queued),
		         ULL(in->chunks_requeued), ULL(in->chunks_leased), ULL(in->chunks_writing),
		         ULL(in->chunks_taking), ULL(in->chunks_orphaned), ULL(in->head),
		         ULL(in->tail), ULL(in->requeue_head), ULL(in->requeue_tail),
		         ULL(in->pool_head), ULL(in->pool_tail), ULL(r->m.free), r->m.nring,
		         r->m.nrequeue, ULL(leased), ULL(writing), ULL(orphaned), ULL(r->m.head),
		         ULL(r->m.tail), ULL(r->m.rhead), ULL(r->m.rtail), ULL(r->m.fhead),
		         ULL(r->m.ftail));
}

void op_check_state(struct run *r, int who)
{
	struct actor *a = &r->act[who];
	if (a->state != ACT_LIVE)
		return;
	struct mq_stats st;
	int rc = mq_stats(a->q, &st);
	int err = errno;
	if (rc != 0) {
		if (r->exact)
			fuzz_die("exact mode: %c: mq_stats failed", a->name);
		want_errno(r, who, "mq_stats", err, 1, EPROTO);
	} else if (r->exact) {
		check_stats_exact(r, who, &st);
	} else if (st.capacity != r->cap || st.max_msg_size != r->max_msg || st.depth > r->cap ||
	           st.clients > MQ_CLIENTS_MAX) {
		fuzz_die("%c: mq_stats: capacity %llu, max %llu, depth %llu, clients %u; the "
		         "handle has %llu, %llu",
		         a->name, ULL(st.capacity), ULL(st.max_msg_size), ULL(st.depth), st.clients,
		         ULL(r->cap), ULL(r->max_msg));
	}

	static struct mq_client_info info[MQ_CLIENTS_MAX];
	int n = mq_clients(a->q, info, MQ_CLIENTS_MAX);
	err = errno;
	if (n < 0) {
		if (r->exact)
			fuzz_die("exact mode: %c: mq_clients failed", a->name);
		want_errno(r, who, "mq_clients", err, 1, EPROTO);
	} else if (r->exact) {
		check_clients_exact(r, who, info, n);
	} else if (n < 1 || n > MQ_CLIENTS_MAX) {
		fuzz_die("%c: mq_clients returned %d entries, and we are attached", a->name, n);
	} else if (mq_clients(a->q, NULL, 0) != n) {
		fuzz_die("%c: mq_clients(NULL, 0) disagrees with mq_clients", a->name);
	}

	struct mq_inspection in;
	rc = mq_inspect(a->q, &in);
	err = errno;
	if (rc != 0) {
		if (r->exact)
			fuzz_die("exact mode: %c: mq_inspect failed", a->name);
		want_errno(r, who, "mq_inspect", err, 1, EPROTO);
	} else if (r->exact) {
		check_inspect_exact(r, who, &in);
	} else if (in.capacity != r->cap || in.max_msg_size != r->max_msg) {
		fuzz_die("%c: mq_inspect: capacity %llu, max %llu", a->name, ULL(in.capacity),
		         ULL(in.max_msg_size));
	}
}

/* ---- reaping, draining ---- */

void op_reap(struct run *r, int who)
{
	struct actor *a = &r->act[who];
	if (!may_lock(r, who))
		return;
	struct mq_reaped out[4];
	int risky = r->exact && near_limit(r);
	int rc = mq_reap(a->q, out, 4, 0);
	int err = errno;
	if (r->exact) {
		int dead = 0;
		for (int i = 0; i < ACTORS; i++)
			dead += r->act[i].state == ACT_DEAD;
		if (rc == dead && (!dead || out[0].pid == (int32_t)getpid())) {
			for (int i = 0; i < ACTORS; i++) {
				if (r->act[i].state != ACT_DEAD)
					continue;
				give_back(r, i);
				r->act[i].state = ACT_REAPED;
				r->m.recoveries++;
			}
			lock_watch(r, "mq_reap");
			return;
		}
		exact_miss(r, risky, rc < 0, err,
		           "%c: mq_reap returned %d (errno %d), %d clients are dead", a->name, rc,
		           rc < 0 ? err : 0, dead);
	}
	if (rc < 0) {
		want_errno(r, who, "mq_reap", err, 3, EINVAL, ETIMEDOUT, EPROTO);
	} else if (rc > 0) {
		for (int i = 0; i < ACTORS; i++)
			if (r->act[i].state == ACT_DEAD)
				r->act[i].state = ACT_REAPED;
	}
	lock_watch(r, "mq_reap");
}

void op_drain(struct run *r, int who)
{
	/* Exact mode: op_recv aborts unless it gets the model's next message,
	 * or EAGAIN once the model is empty. */
	for (uint64_t i = 0; i < r->cap + 2 * QMAX; i++)
		if (op_recv(r, who, (size_t)r->max_msg) == NOTHING)
			return;
	if (r->exact)
		fuzz_die("exact mode: %c: the queue did not drain", r->act[who].name);
}

/* ---- odd calls ---- */

/* misc: calls with a documented refusal (and mq_interrupt, mq_set_spin). */
static void misc(struct run *r, int who, unsigned arg)
{
	struct actor *a = &r->act[who];
	struct mq *q = a->q;
	unsigned char local[64];
	int rc, err;
	switch (arg) {
	case 0: /* one byte too many: refused before any lock */
		rc = mq_send(q, r->scratch, (size_t)r->max_msg + 1, 0);
		err = errno;
		if (rc != -1)
			fuzz_die("%c: mq_send of max + 1 bytes succeeded", a->name);
		want_errno(r, who, "mq_send", err, r->exact ? 1 : 2, EMSGSIZE, EPROTO);
		break;
	case 1:
		if (mq_reserve(q, (size_t)r->max_msg + 1, 0))
			fuzz_die("%c: mq_reserve of max + 1 bytes succeeded", a->name);
		want_errno(r, who, "mq_reserve", errno, r->exact ? 1 : 2, EMSGSIZE, EPROTO);
		break;
	case 2: /* not a buffer of the queue */
		rc = mq_commit(q, local, 1);
		err = errno;
		if (rc != -1)
			fuzz_die("%c: mq_commit of a stack buffer succeeded", a->name);
		want_errno(r, who, "mq_commit", err, r->exact ? 1 : 2, EINVAL, EPROTO);
		break;
	case 3: { /* a lease that names no chunk */
		mq_lease_t l = {
		        .id = 1, .deliveries = 1, .slot = (uint32_t)r->cap + 5, .owner = a->token};
		rc = mq_ack(q, &l);
		if (rc != -1)
			fuzz_die("%c: mq_ack of a lease of chunk %llu succeeded", a->name,
			         ULL(r->cap + 5));
		want_errno(r, who, "mq_ack", errno, r->exact ? 1 : 2, EINVAL, EPROTO);
		break;
	}
	case 4: /* inside a payload, not its start */
		rc = mq_cancel(q, handle_payload(q, 0) + 1);
		if (rc != -1)
			fuzz_die("%c: mq_cancel of a pointer into a payload succeeded", a->name);
		want_errno(r, who, "mq_cancel", errno, r->exact ? 1 : 2, EINVAL, EPROTO);
		break;
	case 5: /* a lease owned by nobody */
		if (r->act[who].nlease) {
			mq_lease_t l = r->act[who].lease[0].l;
			l.owner ^= 0x200;
			if (mq_nack(q, &l) != -1)
				fuzz_die("%c: mq_nack of a lease with another owner succeeded",
				         a->name);
			want_errno(r, who, "mq_nack", errno, r->exact ? 1 : 2, EINVAL, EPROTO);
		}
		break;
	case 6:
		op_recv(r, who, 0);
		break;
	case 7:
		if (mq_send_batch(q, NULL, 0, 0) != -1)
			fuzz_die("%c: mq_send_batch of no messages succeeded", a->name);
		want_errno(r, who, "mq_send_batch", errno, r->exact ? 1 : 2, EINVAL, EPROTO);
		break;
	case 8:
		if (mq_recv_batch(q, NULL, 1, 0) != -1)
			fuzz_die("%c: mq_recv_batch into NULL succeeded", a->name);
		want_errno(r, who, "mq_recv_batch", errno, r->exact ? 1 : 2, EINVAL, EPROTO);
		break;
	case 9:
		if (mq_recv(q, r->scratch, (size_t)r->max_msg, -2) != -1)
			fuzz_die("%c: mq_recv with timeout -2 succeeded", a->name);
		want_errno(r, who, "mq_recv", errno, r->exact ? 1 : 2, EINVAL, EPROTO);
		break;
	case 10: /* an empty message from a NULL pointer: legal */
		if (may_lock(r, who) && r->nmsgs < MSG_MAX) {
			int i = msg_new(r, 0);
			r->nlen++;
			int hit = r->m.free > 0 && r->m.tail >= MQ_INDEX_LIMIT;
			rc = mq_send(q, NULL, 0, 0);
			err = errno;
			past_limit(r, who, "mq_send", hit, rc < 0, err);
			if (r->exact) {
				const int risky = 0;
				if (r->m.free ? rc == 0 : rc == -1 && err == EAGAIN) {
					if (rc == 0) {
						model_pop_free(r);
						model_commit(r, a, i);
						a->role |= MQ_ROLE_PRODUCER;
					} else {
						r->m.full++;
					}
					lock_watch(r, "mq_send");
					break;
				}
				exact_miss(r, risky, rc < 0, err,
				           "%c: mq_send(NULL, 0) returned %d (errno %d)", a->name,
				           rc, rc < 0 ? err : 0);
			}
			if (rc < 0)
				want_errno(r, who, "mq_send", err, 2, EAGAIN, EPROTO);
			r->msgs[i].state = rc == 0 ? MS_QUEUED : MS_NONE;
			lock_watch(r, "mq_send");
		}
		break;
	case 11:
		if (mq_peek(q, NULL, 0, NULL) != NULL)
			fuzz_die("%c: mq_peek with a NULL length succeeded", a->name);
		want_errno(r, who, "mq_peek", errno, r->exact ? 1 : 2, EINVAL, EPROTO);
		break;
	case 12: /* pending: a call that need not wait is not affected */
		if (mq_interrupt(q) != 0)
			fuzz_die("%c: mq_interrupt failed", a->name);
		a->intr = 1;
		break;
	case 13:
		if (mq_set_spin(q, 1000001) != -1 || errno != EINVAL)
			fuzz_die("%c: mq_set_spin(1000001) did not fail with EINVAL", a->name);
		if (mq_set_spin(q, a->intr ? 0 : 5) != 0)
			fuzz_die("%c: mq_set_spin failed", a->name);
		break;
	case 14: /* more than one round of the receive lock takes */
		if (!r->lifo)
			recv_batch(r, who, ROUND_MAX + 6, ROUND_MAX + 6);
		break;
	default:
		op_reap(r, who);
		break;
	}
}

void op_run(struct run *r, int who, uint8_t op)
{
	unsigned kind = op & 15, arg = op >> 4;
	struct actor *a = &r->act[who];
	if (a->state != ACT_LIVE)
		return;
	switch (kind) {
	case 0:
		op_send(r, who, arg);
		break;
	case 1: {
		size_t cap = (size_t)r->max_msg;
		if (arg == 12)
			cap = 0;
		else if (arg == 13)
			cap = 15;
		else if (arg == 14)
			cap = (size_t)r->max_msg / 2;
		else if (arg == 15)
			cap = (size_t)r->max_msg + 64;
		op_recv(r, who, cap);
		break;
	}
	case 2:
		op_lease(r, who, 0, arg == 15 ? 15 : (size_t)r->max_msg);
		break;
	case 3:
		op_lease(r, who, 1, 0);
		break;
	case 4:
	case 5:
		op_settle(r, who, arg, kind == 5);
		break;
	case 6:
		op_reserve(r, who, pick_len(r, arg));
		break;
	case 7:
		commit(r, who, arg);
		break;
	case 8:
		cancel(r, who, arg);
		break;
	case 9: {
		unsigned v[SEND_MAX];
		for (unsigned j = 0; j <= arg; j++)
			v[j] = (arg * 7 + j * 3) % 16;
		send_n(r, who, arg + 1, v, 1);
		break;
	}
	case 10:
		recv_batch(r, who, 1 + (arg & 7), arg & 8 ? 1 : RECV_MAX);
		break;
	case 11:
		op_check_state(r, who);
		break;
	case 12: /* B settles one of its leases */
		if (r->act[ACT_B].state == ACT_LIVE)
			op_settle(r, ACT_B, arg & 7, arg >> 3);
		break;
	case 13: /* B commits or cancels its reservation */
		if (r->act[ACT_B].state == ACT_LIVE) {
			if (arg & 1)
				cancel(r, ACT_B, arg & 8);
			else
				commit(r, ACT_B, arg >> 1 & 0xc);
		}
		break;
	case 14:
		op_reap(r, who);
		break;
	default:
		misc(r, who, arg);
		break;
	}
}
