/*
 * t_libmq.c - the libmq transport: mq_create in the parent, mq_attach by name
 * in each child; or, with --queue, an existing queue (made by a running
 * mqbroker) that every child attaches to and that mqbench leaves in place.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <libmq.h>

#include "harness.h"
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
