/*
 * t_libmq.c - the libmq transport: mq_create in the parent, mq_attach by name
 * in each child; or, with --queue, an existing queue (made by a running
 * mqbroker) that every child attaches to and that mqbench leaves in place.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <libmq.h>

#include "harness.h"
#include "payload.h"
#include "workloads.h"
#include "transport.h"

int libmq_queue_probe(const char *name, size_t *capacity, size_t *max_msg, char *err, size_t errlen)
{
	mq_t *q = mq_attach(name);
	if (!q) {
		int e = errno;
		snprintf(err, errlen, "cannot attach to queue %s: %s%s", name, mq_errdetail(),
		         e == ENOENT ? " (start one with: mqbroker --name QUEUE)" : "");
		return -1;
	}
	struct mq_stats st;
	int rc = mq_stats(q, &st);
	if (rc == 0) {
		*capacity = (size_t)st.capacity;
		*max_msg = (size_t)st.max_msg_size;
	} else {
		snprintf(err, errlen, "mq_stats on queue %s: %s", name, mq_errdetail());
	}
	mq_detach(q);
	return rc;
}

/* lq_adopt: before a run on the existing queue C->queue: it must take the
 * run's messages, be empty (a stray message would fail the checks) and have
 * no other client that sends or receives (it would take or add messages). */
static int lq_adopt(struct chan *c, char *err, size_t errlen)
{
	mq_t *q = mq_attach(c->queue);
	if (!q) {
		snprintf(err, errlen, "cannot attach to queue %s: %s", c->queue, mq_errdetail());
		return -1;
	}
	struct mq_stats st;
	static struct mq_client_info cl[MQ_CLIENTS_MAX];
	int rc = -1, n = 0;
	if (mq_stats(q, &st) != 0 || (n = mq_clients(q, cl, MQ_CLIENTS_MAX)) < 0) {
		snprintf(err, errlen, "reading queue %s: %s", c->queue, mq_errdetail());
		goto out;
	}
	if (st.max_msg_size < c->msg_size) {
		snprintf(
		        err, errlen,
		        "queue %s takes messages of up to %llu bytes; this workload sends %zu-byte "
		        "messages (start mqbroker with --max-msg %zu or more)",
		        c->queue, (unsigned long long)st.max_msg_size, c->msg_size, c->msg_size);
		goto out;
	}
	if (st.capacity != c->capacity) {
		snprintf(err, errlen, "queue %s holds %llu messages, the run expected %zu",
		         c->queue, (unsigned long long)st.capacity, c->capacity);
		goto out;
	}
	if (st.depth != 0) {
		snprintf(err, errlen,
		         "queue %s is not empty (%llu message%s queued): mqbench checks every "
		         "message it receives, so it needs an empty queue",
		         c->queue, (unsigned long long)st.depth, st.depth == 1 ? "" : "s");
		goto out;
	}
	for (int i = 0; i < n && i < MQ_CLIENTS_MAX; i++) {
		pid_t pid = (pid_t)cl[i].pid;
		if (!cl[i].alive || !cl[i].role || pid == getpid())
			continue;
		if (kill(pid, 0) != 0 && errno == ESRCH)
			continue; /* dead, not yet swept by the broker */
		snprintf(err, errlen,
		         "queue %s has another %s attached (pid %d): it would take or add "
		         "messages; stop it first",
		         c->queue, (cl[i].role & MQ_ROLE_CONSUMER) ? "consumer" : "producer",
		         (int)pid);
		goto out;
	}
	c->depth = (size_t)st.capacity;
	rc = 0;
out:
	mq_detach(q);
	return rc;
}

static int lq_create(struct chan *c, char *err, size_t errlen)
{
	if (c->queue)
		return lq_adopt(c, err, errlen);
	mq_t *q = mq_create(c->name, c->capacity, c->msg_size, 0600);
	if (!q) {
		snprintf(err, errlen, "mq_create: %s", mq_errdetail());
		return -1;
	}
	char path[128];
	snprintf(path, sizeof(path), "/dev/shm%s", c->name);
	c->ck[0] = cleanup_add(CK_UNLINK, path, NULL);
	/* The children attach by name; the parent keeps no handle across fork. */
	mq_detach(q);
	c->depth = c->capacity;
	return 0;
}

static int lq_open(struct chan *c, int dir, char *err, size_t errlen)
{
	(void)dir;
	mq_t *q = mq_attach(c->queue ? c->queue : c->name);
	if (!q) {
		snprintf(err, errlen, "mq_attach: %s", mq_errdetail());
		return -1;
	}
	if (mq_set_spin(q, c->spin_us) != 0) {
		snprintf(err, errlen, "mq_set_spin(%u): %s", c->spin_us, mq_errdetail());
		mq_detach(q);
		return -1;
	}
	c->priv = q;
	return 0;
}

static int lq_send(struct chan *c, const void *msg, size_t len)
{
	return mq_send(c->priv, msg, len, -1);
}

static ssize_t lq_recv(struct chan *c, void *buf, size_t cap)
{
	return mq_recv(c->priv, buf, cap, -1);
}

static void lq_close(struct chan *c)
{
	if (c->priv)
		mq_detach(c->priv);
	c->priv = NULL;
}

static void lq_destroy(struct chan *c)
{
	if (c->queue)
		return; /* not ours: it stays with its broker */
	mq_remove(c->name);
	cleanup_forget(c->ck[0]);
}

const char *libmq_version_note(void)
{
	return "libmq " LIBMQ_VERSION " (static)";
}

const struct transport transport_libmq = {
        .name = "libmq",
        .title = "libmq",
        .fifo_shared = 1,
        .create = lq_create,
        .open = lq_open,
        .send = lq_send,
        .recv = lq_recv,
        .close = lq_close,
        .destroy = lq_destroy,
};

const struct transport transport_libmq_nospin = {
        .name = "libmq-nospin",
        .title = "libmq, spin off",
        .flags = T_NOSPIN,
        .fifo_shared = 1,
        .create = lq_create,
        .open = lq_open,
        .send = lq_send,
        .recv = lq_recv,
        .close = lq_close,
        .destroy = lq_destroy,
};

/* Time in queue off: the same calls, from processes that neither stamp nor
 * measure (MQ_TIME_IN_QUEUE=0, read by mq_attach): the row the
 * time-in-queue cost is measured against. */
static int lq_open_notiq(struct chan *c, int dir, char *err, size_t errlen)
{
	setenv("MQ_TIME_IN_QUEUE", "0", 1);
	int rc = lq_open(c, dir, err, errlen);
	unsetenv("MQ_TIME_IN_QUEUE");
	return rc;
}

const struct transport transport_libmq_notiq = {
        .name = "libmq-notiq",
        .title = "libmq, time in queue off",
        .only_w = 1u << W_TPUT64,
        .fifo_shared = 1,
        .create = lq_create,
        .open = lq_open_notiq,
        .send = lq_send,
        .recv = lq_recv,
        .close = lq_close,
        .destroy = lq_destroy,
};

/* ---- batches of 32: mq_send_batch / mq_recv_batch ------------------------- */

#define BATCH 32

/* The producer stages up to BATCH messages and sends them in one call (at
 * once for a control message: warm-up end, run end, which the other side
 * waits for); the consumer takes up to BATCH in one call and hands them out
 * one by one. */
struct batch {
	mq_t *q;
	size_t size;
	unsigned n, next; /* staged (send) or taken and next to hand out (recv) */
	struct iovec iov[BATCH];
	unsigned char *buf; /* BATCH x size */
};

static int lb_open(struct chan *c, int dir, char *err, size_t errlen)
{
	if (lq_open(c, dir, err, errlen))
		return -1;
	struct batch *b = calloc(1, sizeof(*b));
	unsigned char *buf = b ? msg_alloc(BATCH * c->msg_size) : NULL;
	if (!buf) {
		free(b);
		snprintf(err, errlen, "out of memory");
		lq_close(c);
		return -1;
	}
	b->q = c->priv;
	b->size = c->msg_size;
	b->buf = buf;
	for (unsigned i = 0; i < BATCH; i++)
		b->iov[i].iov_base = buf + i * c->msg_size;
	c->priv = b;
	return 0;
}

static int lb_flush(struct batch *b)
{
	unsigned done = 0;
	while (done < b->n) {
		int k = mq_send_batch(b->q, b->iov + done, b->n - done, -1);
		if (k < 0)
			return -1;
		done += (unsigned)k;
	}
	b->n = 0;
	return 0;
}

/* lb_sbuf: the producer stamps each message straight into its staging
 * buffer, as a program building a batch would. */
static void *lb_sbuf(struct chan *c, size_t len)
{
	struct batch *b = c->priv;
	(void)len; /* every message of a run has the size the buffers were made for */
	return b->iov[b->n].iov_base;
}

static int lb_send(struct chan *c, const void *msg, size_t len)
{
	struct batch *b = c->priv;
	if (msg != b->iov[b->n].iov_base) /* not built in place (lb_sbuf) */
		memcpy(b->iov[b->n].iov_base, msg, len);
	b->iov[b->n++].iov_len = len;
	uint32_t kind;
	memcpy(&kind, (const unsigned char *)msg + 12, sizeof(kind)); /* payload.h's header */
	if (b->n == BATCH || kind != MSG_DATA)
		return lb_flush(b);
	return 0;
}

/* lb_rpeek: the next message of the batch taken last, read where
 * mq_recv_batch put it (one call per BATCH messages). */
static const void *lb_rpeek(struct chan *c, size_t *len)
{
	struct batch *b = c->priv;
	if (b->next == b->n) {
		for (unsigned i = 0; i < BATCH; i++)
			b->iov[i].iov_len = b->size;
		int k = mq_recv_batch(b->q, b->iov, BATCH, -1);
		if (k < 0)
			return NULL;
		b->n = (unsigned)k;
		b->next = 0;
	}
	struct iovec *m = &b->iov[b->next++];
	*len = m->iov_len;
	return m->iov_base;
}

static void lb_close(struct chan *c)
{
	struct batch *b = c->priv;
	if (!b)
		return;
	lb_flush(b);
	c->priv = b->q;
	free(b->buf);
	free(b);
	lq_close(c);
}

const struct transport transport_libmq_batch32 = {
        .name = "libmq-batch32",
        .title = "libmq, batches of 32",
        .only_w = 1u << W_TPUT64,
        .fifo_shared = 1,
        .create = lq_create,
        .open = lb_open,
        .send = lb_send,
        .close = lb_close,
        .destroy = lq_destroy,
        .sbuf = lb_sbuf,
        .rpeek = lb_rpeek,
};

/* ---- leases: mq_recv_lease, then mq_ack ------------------------------------ */

static ssize_t ll_recv(struct chan *c, void *buf, size_t cap)
{
	mq_lease_t l;
	ssize_t n = mq_recv_lease(c->priv, buf, cap, -1, &l);
	if (n >= 0 && mq_ack(c->priv, &l) != 0)
		return -1;
	return n;
}

const struct transport transport_libmq_lease = {
        .name = "libmq-lease",
        .title = "libmq, lease + ack",
        .only_w = 1u << W_TPUT64,
        .fifo_shared = 1,
        .create = lq_create,
        .open = lq_open,
        .send = lq_send,
        .recv = ll_recv,
        .close = lq_close,
        .destroy = lq_destroy,
};

/* ---- zero-copy: mq_reserve / mq_commit, mq_peek / mq_ack ------------------ */

/* The producer reserves a chunk, writes the whole payload in it and commits
 * it; the consumer peeks at the message in place, checks both ends and acks
 * it. Nothing is copied by libmq. */
struct zc {
	mq_t *q;
	mq_lease_t lease;
};

static int lz_open(struct chan *c, int dir, char *err, size_t errlen)
{
	if (lq_open(c, dir, err, errlen))
		return -1;
	struct zc *z = calloc(1, sizeof(*z));
	if (!z) {
		snprintf(err, errlen, "out of memory");
		lq_close(c);
		return -1;
	}
	z->q = c->priv;
	c->priv = z;
	return 0;
}

static void *lz_sbuf(struct chan *c, size_t len)
{
	struct zc *z = c->priv;
	return mq_reserve(z->q, len, -1);
}

static int lz_send(struct chan *c, const void *msg, size_t len)
{
	struct zc *z = c->priv;
	return mq_commit(z->q, (void *)msg, len);
}

static const void *lz_rpeek(struct chan *c, size_t *len)
{
	struct zc *z = c->priv;
	return mq_peek(z->q, len, -1, &z->lease);
}

static int lz_rdone(struct chan *c)
{
	struct zc *z = c->priv;
	return mq_ack(z->q, &z->lease);
}

static void lz_close(struct chan *c)
{
	struct zc *z = c->priv;
	if (!z)
		return;
	c->priv = z->q;
	free(z);
	lq_close(c);
}

const struct transport transport_libmq_zcopy = {
        .name = "libmq-zcopy",
        .title = "libmq, zero-copy",
        .flags = T_ZCOPY,
        .only_w = 1u << W_TPUT1M,
        .fifo_shared = 1,
        .create = lq_create,
        .open = lz_open,
        .send = lz_send,
        .close = lz_close,
        .destroy = lq_destroy,
        .sbuf = lz_sbuf,
        .rpeek = lz_rpeek,
        .rdone = lz_rdone,
};

/* ---- an event loop: mq_pollfd in epoll ----------------------------------- */

/* The receiver waits in epoll_wait on the queue's descriptor and takes
 * messages with timeout 0 until EAGAIN (libmq.h, mq_pollfd); the sender is
 * plain mq_send. */
struct ep {
	mq_t *q;
	int ep; /* receiver: its epoll set; sender: -1 */
};

static int le_open(struct chan *c, int dir, char *err, size_t errlen)
{
	if (lq_open(c, dir, err, errlen))
		return -1;
	struct ep *e = calloc(1, sizeof(*e));
	if (!e) {
		snprintf(err, errlen, "out of memory");
		lq_close(c);
		return -1;
	}
	e->q = c->priv;
	e->ep = -1;
	if (dir == CHAN_RECV) {
		int fd = mq_pollfd(e->q, MQ_POLLIN);
		struct epoll_event ev = {.events = EPOLLIN};
		if (fd < 0 || (e->ep = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    epoll_ctl(e->ep, EPOLL_CTL_ADD, fd, &ev) != 0) {
			snprintf(err, errlen, "mq_pollfd/epoll: %s",
			         fd < 0 ? mq_errdetail() : strerror(errno));
			if (e->ep >= 0)
				close(e->ep);
			free(e);
			lq_close(c);
			return -1;
		}
	}
	c->priv = e;
	return 0;
}

static int le_send(struct chan *c, const void *msg, size_t len)
{
	struct ep *e = c->priv;
	return mq_send(e->q, msg, len, -1);
}

static ssize_t le_recv(struct chan *c, void *buf, size_t cap)
{
	struct ep *e = c->priv;
	for (;;) {
		ssize_t n = mq_recv(e->q, buf, cap, 0);
		if (n >= 0 || errno != EAGAIN)
			return n;
		struct epoll_event got;
		int r = epoll_wait(e->ep, &got, 1, c->recv_timeout_ms ? c->recv_timeout_ms : -1);
		if (r == 0) {
			errno = EAGAIN; /* the harness's drain timeout (several receivers) */
			return -1;
		}
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

static void le_close(struct chan *c)
{
	struct ep *e = c->priv;
	if (!e)
		return;
	if (e->ep >= 0)
		close(e->ep); /* before mq_detach closes the descriptor in it */
	c->priv = e->q;
	free(e);
	lq_close(c);
}

const struct transport transport_libmq_epoll = {
        .name = "libmq-epoll",
        .title = "libmq, epoll on mq_pollfd",
        .fifo_shared = 1,
        .create = lq_create,
        .open = le_open,
        .send = le_send,
        .recv = le_recv,
        .close = le_close,
        .destroy = lq_destroy,
};
