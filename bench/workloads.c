/* workloads.c - producer, consumer, pinger and ponger processes; one run end to end. */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "limits.h"
#include "payload.h"
#include "stats.h"
#include "workloads.h"

const struct workload_info workloads[W_COUNT] = {
        [W_TPUT64] = {"tput64", "throughput, 64 B", 64, 1, 1, 0},
        [W_TPUT4K] = {"tput4k", "throughput, 4 KiB", 4096, 1, 1, 0},
        [W_TPUT1M] = {"tput1m", "throughput, 1 MiB", 1 << 20, 1, 1, 0},
        [W_RTT64] = {"rtt64", "round trip, 64 B", 64, 1, 1, 1},
        [W_MPMC64] = {"mpmc64", "4 prod + 4 cons, 64 B", 64, 4, 4, 0},
};

/* Consumers of a transport without a shared FIFO (ZeroMQ with several
 * receivers) cannot be sent end markers; they poll with this timeout once
 * the producers are done, and give up after DRAIN_GIVE_UP_MS of no progress. */
#define DRAIN_POLL_MS    20
#define DRAIN_GIVE_UP_MS 3000

struct run_ctx {
	const struct run_spec *s;
	struct chan ch[2];
};

static const char *kind_name(uint32_t kind)
{
	switch (kind) {
	case MSG_DATA:
		return "data";
	case MSG_WARM:
		return "warm-up";
	case MSG_WARMEND:
		return "end-of-warm-up";
	case MSG_END:
		return "end";
	default:
		return "unknown";
	}
}

/* recv_one: receive one message of the run's size into BUF (or read it in
 * place, for a transport with rpeek) and check it. */
static int recv_one(struct ctl *ctl, int idx, struct chan *c, void *buf, size_t size,
                    uint32_t *kind, uint32_t *src, uint64_t *seq)
{
	char err[200];
	const struct transport *t = c->t;
	const void *m = buf;
	ssize_t n;
	if (t->rpeek) {
		size_t len = 0;
		m = t->rpeek(c, &len);
		n = m ? (ssize_t)len : -1;
	} else {
		n = t->recv(c, buf, size);
	}
	if (n < 0)
		return errno == EAGAIN && c->recv_timeout_ms > 0
		               ? 1
		               : child_fail(ctl, idx, "receive: %s", strerror(errno));
	if ((size_t)n != size)
		return child_fail(ctl, idx, "received a %zd-byte message, all were %zu bytes", n,
		                  size);
	if ((t->flags & T_ZCOPY ? msg_check_ends : msg_check)(m, size, kind, src, seq, err,
	                                                      sizeof(err)))
		return child_fail(ctl, idx, "%s", err);
	if (t->rdone && t->rdone(c) != 0)
		return child_fail(ctl, idx, "giving back a message read in place: %s",
		                  strerror(errno));
	return 0;
}

/* send_msg: stamp message SEQ into BUF (or build it in place, for a
 * transport with sbuf) and send it. */
static int send_msg(struct ctl *ctl, int idx, struct chan *c, void *buf, size_t size, uint32_t kind,
                    uint32_t src, uint64_t seq)
{
	const struct transport *t = c->t;
	void *m = buf;
	if (t->sbuf && !(m = t->sbuf(c, size)))
		return child_fail(ctl, idx, "room for %s message %" PRIu64 ": %s", kind_name(kind),
		                  seq, strerror(errno));
	if (t->flags & T_ZCOPY)
		memset(m, (int)(seq & 0xff), size); /* the whole payload, written in place */
	msg_stamp(m, size, kind, src, seq);
	if (t->send(c, m, size) != 0)
		return child_fail(ctl, idx, "send (%s message %" PRIu64 "): %s", kind_name(kind),
		                  seq, strerror(errno));
	return 0;
}

/* ---- throughput: producers and consumers ---- */

static int markers_reach_all(const struct run_spec *s)
{
	return s->t->fifo_shared || s->ncons == 1;
}

static int producer(struct ctl *ctl, int idx, void *arg)
{
	struct run_ctx *x = arg;
	const struct run_spec *s = x->s;
	struct chan *c = &x->ch[0];
	unsigned nproc = (unsigned)(s->nprod + s->ncons);
	uint32_t src = (uint32_t)idx;
	char err[256];
	void *buf = msg_alloc(s->msg_size);
	if (!buf)
		return child_fail(ctl, idx, "out of memory");
	if (barrier_wait(ctl, nproc)) /* the receivers are open */
		return -1;
	if (c->t->open(c, CHAN_SEND, err, sizeof(err)))
		return child_fail(ctl, idx, "%s", err);

	/* Warm-up: every slot once, so no page fault or first touch is timed. */
	for (uint64_t i = 0; i < s->warm; i++)
		if (send_msg(ctl, idx, c, buf, s->msg_size, MSG_WARM, src, i))
			return -1;
	if (s->warm && atomic_fetch_add(&ctl->warm_done, 1) + 1 == (uint32_t)s->nprod)
		for (int k = 0; k < s->ncons; k++)
			if (send_msg(ctl, idx, c, buf, s->msg_size, MSG_WARMEND, src, (uint64_t)k))
				return -1;
	if (barrier_wait(ctl, nproc)) /* the clock starts */
		return -1;

	int64_t stop = atomic_load(&ctl->t0) + (int64_t)(s->seconds * 1e9);
	uint64_t n = UINT64_MAX;
	if (s->messages)
		n = s->messages / (uint64_t)s->nprod +
		    ((uint64_t)idx < s->messages % (uint64_t)s->nprod);
	uint64_t mask = s->msg_size >= 4096 ? 0 : 255; /* how often to look at the clock */
	uint64_t seq;
	for (seq = 0; seq < n; seq++) {
		if (!s->messages && (seq & mask) == 0 && now_ns() >= stop)
			break;
		if (send_msg(ctl, idx, c, buf, s->msg_size, MSG_DATA, src, seq))
			return -1;
	}
	ctl->res[idx].msgs = seq;
	/* sent_total before prod_done: whoever sees all producers done sees the total. */
	atomic_fetch_add(&ctl->sent_total, seq);
	if (atomic_fetch_add(&ctl->prod_done, 1) + 1 == (uint32_t)s->nprod && markers_reach_all(s))
		for (int k = 0; k < s->ncons; k++)
			if (send_msg(ctl, idx, c, buf, s->msg_size, MSG_END, src, (uint64_t)k))
				return -1;
	/* Stay connected until every receiver is done: libzmq may drop what
	 * is still in flight when a sender closes (zeromq/libzmq#4660). */
	if (wait_count(ctl, &ctl->cons_done, (uint32_t)s->ncons))
		return -1;
	c->t->close(c);
	free(buf);
	return 0;
}

/* drained: for consumers without end markers, after a receive timed out:
 * 1 if every message sent has been received, 0 to keep receiving, -1 failed. */
static int drained(struct ctl *ctl, int idx, const struct run_spec *s, const struct tally *tl,
                   uint64_t *flushed, uint64_t *last_total, int *idle)
{
	atomic_fetch_add(&ctl->recv_total, tl->total - *flushed);
	*flushed = tl->total;
	if (atomic_load(&ctl->prod_done) != (uint32_t)s->nprod)
		return 0;
	uint64_t sent = atomic_load(&ctl->sent_total), got = atomic_load(&ctl->recv_total);
	if (got == sent)
		return 1;
	if (got > sent)
		return child_fail(ctl, idx, "%" PRIu64 " messages received, %" PRIu64 " sent", got,
		                  sent);
	if (got != *last_total) {
		*last_total = got;
		*idle = 0;
	} else if (++*idle * DRAIN_POLL_MS >= DRAIN_GIVE_UP_MS) {
		return child_fail(ctl, idx, "%" PRIu64 " of %" PRIu64 " messages never arrived",
		                  sent - got, sent);
	}
	return 0;
}

static int consumer(struct ctl *ctl, int idx, void *arg)
{
	struct run_ctx *x = arg;
	const struct run_spec *s = x->s;
	struct chan *c = &x->ch[0];
	unsigned nproc = (unsigned)(s->nprod + s->ncons);
	char err[256];
	uint32_t kind, src;
	uint64_t seq;
	void *buf = msg_alloc(s->msg_size);
	if (!buf)
		return child_fail(ctl, idx, "out of memory");
	c->index = idx - s->nprod;
	if (c->t->open(c, CHAN_RECV, err, sizeof(err)))
		return child_fail(ctl, idx, "%s", err);
	if (barrier_wait(ctl, nproc))
		return -1;
	if (s->warm) {
		for (;;) {
			if (recv_one(ctl, idx, c, buf, s->msg_size, &kind, &src, &seq))
				return -1;
			if (kind == MSG_WARMEND)
				break;
			if (kind != MSG_WARM)
				return child_fail(ctl, idx, "a %s message during the warm-up",
				                  kind_name(kind));
		}
	}
	if (barrier_wait(ctl, nproc))
		return -1;

	struct tally tl;
	tally_init(&tl, s->nprod, s->nprod == 1 && s->ncons == 1);
	int timed = c->recv_timeout_ms > 0, idle = 0;
	uint64_t flushed = 0, last_total = 0;
	int64_t t_last = 0;
	for (;;) {
		int rc = recv_one(ctl, idx, c, buf, s->msg_size, &kind, &src, &seq);
		if (rc < 0)
			return -1;
		if (rc > 0) { /* timed out: are we done? */
			rc = drained(ctl, idx, s, &tl, &flushed, &last_total, &idle);
			if (rc < 0)
				return -1;
			if (rc > 0)
				break;
			continue;
		}
		if (kind == MSG_END)
			break;
		if (kind != MSG_DATA)
			return child_fail(ctl, idx, "a %s message while measuring",
			                  kind_name(kind));
		if (tally_add(&tl, src, seq, err, sizeof(err)))
			return child_fail(ctl, idx, "%s", err);
		if (timed)
			t_last = now_ns();
	}
	ctl->res[idx].t_end = timed ? t_last : now_ns();
	tally_store(&tl, &ctl->res[idx]);
	atomic_fetch_add(&ctl->cons_done, 1);
	c->t->close(c);
	free(buf);
	return 0;
}

/* ---- round trip: pinger and ponger ---- */

static int pinger(struct ctl *ctl, int idx, void *arg)
{
	struct run_ctx *x = arg;
	const struct run_spec *s = x->s;
	struct chan *out = &x->ch[0], *in = &x->ch[1];
	char err[256];
	uint32_t kind, src;
	uint64_t seq;
	void *buf = msg_alloc(s->msg_size);
	size_t cap = s->messages ? s->messages : 1 << 16, n = 0;
	uint32_t *rtt = malloc(cap * sizeof(*rtt));
	if (!buf || !rtt)
		return child_fail(ctl, idx, "out of memory");
	if (in->t->open(in, CHAN_RECV, err, sizeof(err)))
		return child_fail(ctl, idx, "%s", err);
	if (barrier_wait(ctl, 2))
		return -1;
	if (out->t->open(out, CHAN_SEND, err, sizeof(err)))
		return child_fail(ctl, idx, "%s", err);
	for (uint64_t i = 0; i < s->warm; i++) {
		if (send_msg(ctl, idx, out, buf, s->msg_size, MSG_WARM, 0, i) ||
		    recv_one(ctl, idx, in, buf, s->msg_size, &kind, &src, &seq))
			return -1;
		if (kind != MSG_WARM || seq != i)
			return child_fail(ctl, idx,
			                  "warm-up round trip %" PRIu64 " came back as %s %" PRIu64,
			                  i, kind_name(kind), seq);
	}
	if (send_msg(ctl, idx, out, buf, s->msg_size, MSG_WARMEND, 0, 0) || barrier_wait(ctl, 2))
		return -1;

	int64_t stop = atomic_load(&ctl->t0) + (int64_t)(s->seconds * 1e9);
	int64_t prev = now_ns();
	for (uint64_t i = 0; !s->messages || i < s->messages; i++) {
		if (send_msg(ctl, idx, out, buf, s->msg_size, MSG_DATA, 0, i) ||
		    recv_one(ctl, idx, in, buf, s->msg_size, &kind, &src, &seq))
			return -1;
		int64_t t = now_ns();
		if (kind != MSG_DATA || src != 0 || seq != i)
			return child_fail(ctl, idx,
			                  "round trip %" PRIu64 " came back as %s %" PRIu64, i,
			                  kind_name(kind), seq);
		if (n == cap) {
			uint32_t *more = realloc(rtt, 2 * cap * sizeof(*rtt));
			if (!more)
				return child_fail(ctl, idx, "out of memory");
			rtt = more;
			cap *= 2;
		}
		int64_t d = t - prev;
		rtt[n++] = d > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		prev = t;
		if (!s->messages && t >= stop)
			break;
	}
	if (send_msg(ctl, idx, out, buf, s->msg_size, MSG_END, 0, 0) ||
	    wait_count(ctl, &ctl->cons_done, 1)) /* as in producer() */
		return -1;
	struct child_result *r = &ctl->res[idx];
	r->msgs = n;
	r->p50_us = stats_percentile(rtt, n, 50) / 1e3;
	r->p99_us = stats_percentile(rtt, n, 99) / 1e3;
	out->t->close(out);
	in->t->close(in);
	free(rtt);
	free(buf);
	return 0;
}

static int ponger(struct ctl *ctl, int idx, void *arg)
{
	struct run_ctx *x = arg;
	const struct run_spec *s = x->s;
	struct chan *in = &x->ch[0], *out = &x->ch[1];
	char err[256];
	uint32_t kind, src;
	uint64_t seq;
	void *buf = msg_alloc(s->msg_size);
	if (!buf)
		return child_fail(ctl, idx, "out of memory");
	if (in->t->open(in, CHAN_RECV, err, sizeof(err)))
		return child_fail(ctl, idx, "%s", err);
	if (barrier_wait(ctl, 2))
		return -1;
	if (out->t->open(out, CHAN_SEND, err, sizeof(err)))
		return child_fail(ctl, idx, "%s", err);
	/* Echo every message back unchanged; the warm-up ends with WARMEND
	 * (not echoed) and the barrier, the run with END. (Transports that read
	 * in place, rpeek, run throughput workloads only: their only_w.) */
	for (int phase = 0; phase < 2; phase++) {
		uint32_t last = phase ? MSG_END : MSG_WARMEND, want = phase ? MSG_DATA : MSG_WARM;
		for (uint64_t expect = 0;; expect++) {
			if (recv_one(ctl, idx, in, buf, s->msg_size, &kind, &src, &seq))
				return -1;
			if (kind == last)
				break;
			if (kind != want || src != 0 || seq != expect)
				return child_fail(ctl, idx,
				                  "expected %s message %" PRIu64
				                  ", got %s %" PRIu64,
				                  kind_name(want), expect, kind_name(kind), seq);
			if (out->t->send(out, buf, s->msg_size) != 0)
				return child_fail(ctl, idx, "send (echo %" PRIu64 "): %s", seq,
				                  strerror(errno));
		}
		if (phase == 0 && barrier_wait(ctl, 2))
			return -1;
	}
	atomic_fetch_add(&ctl->cons_done, 1);
	out->t->close(out);
	in->t->close(in);
	free(buf);
	return 0;
}

/* ---- one run ---- */

static void chan_init(struct chan *c, const struct run_spec *s, int nrecv, char tag)
{
	memset(c, 0, sizeof(*c));
	c->t = s->t;
	c->msg_size = s->msg_size;
	c->capacity = s->capacity;
	c->spin_us = s->spin_us;
	c->nrecv = nrecv;
	c->recv_timeout_ms = !s->t->fifo_shared && nrecv > 1 ? DRAIN_POLL_MS : 0;
	c->queue = s->queue;
	c->fd[0] = c->fd[1] = -1;
	for (int i = 0; i < 8; i++)
		c->ck[i] = -1;
	snprintf(c->name, sizeof(c->name), "/mqbench-%d-%d-%c", (int)getpid(), s->run_id, tag);
}

/* throughput_figures: check exactly-once delivery and compute the rates. */
static int throughput_figures(struct ctl *ctl, const struct run_spec *s, struct run_result *r)
{
	uint64_t sent[HARNESS_MAXPROD];
	const struct child_result *cons[HARNESS_MAXPROC];
	uint64_t total = 0;
	int64_t t_end = 0;
	for (int p = 0; p < s->nprod; p++) {
		sent[p] = ctl->res[p].msgs;
		total += sent[p];
	}
	for (int k = 0; k < s->ncons; k++) {
		cons[k] = &ctl->res[s->nprod + k];
		if (cons[k]->t_end > t_end)
			t_end = cons[k]->t_end;
	}
	if (tally_verify(sent, s->nprod, cons, s->ncons, r->why, sizeof(r->why)))
		return -1;
	if (total == 0) {
		snprintf(r->why, sizeof(r->why), "no message was sent");
		return -1;
	}
	r->msgs = total;
	r->seconds = (double)(t_end - atomic_load(&ctl->t0)) / 1e9;
	if (r->seconds <= 0)
		r->seconds = 1e-9;
	r->msgs_per_s = (double)total / r->seconds;
	r->mb_per_s = r->msgs_per_s * (double)s->msg_size / 1e6;
	r->share_min = r->pshare_min = 1;
	for (int k = 0; k < s->ncons; k++) {
		double f = (double)cons[k]->msgs / (double)total;
		r->share_min = f < r->share_min ? f : r->share_min;
		r->share_max = f > r->share_max ? f : r->share_max;
	}
	for (int p = 0; p < s->nprod; p++) {
		double f = (double)sent[p] / (double)total;
		r->pshare_min = f < r->pshare_min ? f : r->pshare_min;
		r->pshare_max = f > r->pshare_max ? f : r->pshare_max;
	}
	return 0;
}

int run_once(const struct run_spec *s, struct run_result *r)
{
	memset(r, 0, sizeof(*r));
	struct ctl *ctl = ctl_new();
	if (!ctl) {
		r->status = RUN_FAILED;
		snprintf(r->why, sizeof(r->why), "mmap of the control block: %s", strerror(errno));
		return -1;
	}
	struct run_ctx x = {.s = s};
	struct run_spec spec = *s;
	x.s = &spec;
	const struct workload_info *wi = &workloads[s->w];
	int nch = s->limit != L_NONE ? 0 : wi->rtt ? 2 : 1, created = 0;
	if (s->t && !markers_reach_all(s))
		spec.warm = 0; /* the warm-up ends with markers too */
	for (; created < nch; created++) {
		struct chan *c = &x.ch[created];
		chan_init(c, s, wi->rtt ? 1 : s->ncons, (char)('a' + created));
		int rc = s->t->create(c, r->why, sizeof(r->why));
		if (rc) {
			r->status = rc > 0 ? RUN_SKIPPED : RUN_FAILED;
			created++; /* destroy what it made before failing */
			goto out;
		}
		r->depth = c->depth;
	}

	struct proc procs[HARNESS_MAXPROC];
	int n = 0;
	int cpu_a = s->cpu[0], cpu_b = s->cpu[1];
	switch (s->limit) {
	case L_MEMCPY:
	case L_MEMCPY_HOT:
		procs[n++] = (struct proc){limit_memcpy, &spec, cpu_a};
		break;
	case L_CACHELINE:
		procs[n++] = (struct proc){limit_line_pinger, &spec, cpu_a};
		procs[n++] = (struct proc){limit_line_ponger, &spec, cpu_b};
		break;
	case L_NONE:
		if (wi->rtt) {
			procs[n++] = (struct proc){pinger, &x, cpu_a};
			procs[n++] = (struct proc){ponger, &x, cpu_b};
			break;
		}
		for (int p = 0; p < s->nprod; p++)
			procs[n++] = (struct proc){producer, &x, cpu_a};
		for (int k = 0; k < s->ncons; k++)
			procs[n++] = (struct proc){consumer, &x, cpu_b};
		break;
	}

	if (harness_run(ctl, procs, n, s->deadline_s, r->why, sizeof(r->why))) {
		r->status = RUN_FAILED;
		goto out;
	}
	if (s->limit == L_MEMCPY || s->limit == L_MEMCPY_HOT) {
		r->mb_per_s = ctl->res[0].value;
		r->msgs = ctl->res[0].msgs;
	} else if (s->limit == L_CACHELINE || wi->rtt) {
		r->p50_us = ctl->res[0].p50_us;
		r->p99_us = ctl->res[0].p99_us;
		r->msgs = ctl->res[0].msgs;
		if (r->msgs == 0) {
			r->status = RUN_FAILED;
			snprintf(r->why, sizeof(r->why), "no round trip was made");
		}
	} else if (throughput_figures(ctl, s, r)) {
		r->status = RUN_FAILED;
	}
out:
	for (int k = 0; k < created; k++)
		s->t->destroy(&x.ch[k]);
	ctl_free(ctl);
	return r->status == RUN_OK ? 0 : -1;
}
