/* t_libmq.c - the libmq transport: mq_create in the parent, mq_attach by name in each child. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <libmq.h>

#include "harness.h"
#include "transport.h"

static int lq_create(struct chan *c, char *err, size_t errlen)
{
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
	mq_t *q = mq_attach(c->name);
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
