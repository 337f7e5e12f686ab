/* t_zmq.c - the ZeroMQ transport: PUSH/PULL over ipc:// (libzmq), one endpoint per receiver. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "harness.h"
#include "transport.h"

/* Each receiver binds its own endpoint (PULL); each sender connects a PUSH
 * to all of them, so with several receivers PUSH deals messages round robin
 * (there is no shared FIFO: fifo_shared is 0). High-water marks are the
 * run's capacity, like the other queues' depth. */

#if defined(__SANITIZE_THREAD__)
/* libzmq is not built with TSan: its threads hand messages over through
 * lock-free pipes TSan cannot see, so every copy it makes looks like a race.
 * Ignore what happens inside libzmq (and only there). */
const char *__tsan_default_suppressions(void);
const char *__tsan_default_suppressions(void)
{
	return "called_from_lib:libzmq.so.5\nrace:libzmq.so.5\n";
}
#endif

static void *ctx;     /* one context per process */
static int ctx_users; /* sockets open on it */

static void endpoint(const struct chan *c, int i, char *buf, size_t len)
{
	/* name is "/mqbench-..."; the directory is private to this run. */
	snprintf(buf, len, "%s%s-%d.ipc", harness_tmpdir(), c->name, i);
}

static int zq_create(struct chan *c, char *err, size_t errlen)
{
	if (!harness_tmpdir()) {
		snprintf(err, errlen, "cannot make a directory for the ipc sockets: %s",
		         strerror(errno));
		return -1;
	}
	for (int i = 0; i < c->nrecv && i < 8; i++) {
		char path[160];
		endpoint(c, i, path, sizeof(path));
		c->ck[i] = cleanup_add(CK_UNLINK, path, NULL);
	}
	c->depth = c->capacity;
	return 0;
}

static int set_int(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof(v));
}

static int zq_open(struct chan *c, int dir, char *err, size_t errlen)
{
	if (!ctx && !(ctx = zmq_ctx_new())) {
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		return -1;
	}
	void *s = zmq_socket(ctx, dir == CHAN_SEND ? ZMQ_PUSH : ZMQ_PULL);
	if (!s) {
		snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
		return -1;
	}
	ctx_users++;
	c->priv = s;
	int hwm = c->capacity > 1000000 ? 1000000 : (int)c->capacity;
	if (set_int(s, ZMQ_SNDHWM, hwm) || set_int(s, ZMQ_RCVHWM, hwm) ||
	    (c->recv_timeout_ms > 0 && set_int(s, ZMQ_RCVTIMEO, c->recv_timeout_ms))) {
		snprintf(err, errlen, "zmq_setsockopt: %s", zmq_strerror(errno));
		return -1;
	}
	char ep[200], path[160];
	if (dir == CHAN_RECV) {
		endpoint(c, c->index, path, sizeof(path));
		snprintf(ep, sizeof(ep), "ipc://%s", path);
		if (zmq_bind(s, ep) != 0) {
			snprintf(err, errlen, "zmq_bind %s: %s", ep, zmq_strerror(errno));
			return -1;
		}
		return 0;
	}
	for (int i = 0; i < c->nrecv; i++) {
		endpoint(c, i, path, sizeof(path));
		snprintf(ep, sizeof(ep), "ipc://%s", path);
		if (zmq_connect(s, ep) != 0) {
			snprintf(err, errlen, "zmq_connect %s: %s", ep, zmq_strerror(errno));
			return -1;
		}
	}
	return 0;
}

static int zq_send(struct chan *c, const void *msg, size_t len)
{
	int n;
	while ((n = zmq_send(c->priv, msg, len, 0)) < 0 && errno == EINTR)
		;
	return n < 0 ? -1 : 0;
}

static ssize_t zq_recv(struct chan *c, void *buf, size_t cap)
{
	int n;
	while ((n = zmq_recv(c->priv, buf, cap, 0)) < 0 && errno == EINTR)
		;
	if (n > (int)cap) {
		errno = EMSGSIZE; /* zmq truncated it */
		return -1;
	}
	return n;
}

static void zq_close(struct chan *c)
{
	if (!c->priv)
		return;
	zmq_close(c->priv); /* default linger: queued messages still go out */
	c->priv = NULL;
	if (--ctx_users == 0) {
		zmq_ctx_term(ctx);
		ctx = NULL;
	}
}

static void zq_destroy(struct chan *c)
{
	for (int i = 0; i < c->nrecv && i < 8; i++) {
		char path[160];
		endpoint(c, i, path, sizeof(path));
		unlink(path);
		cleanup_forget(c->ck[i]);
	}
}

const char *zmq_version_note(void)
{
	static char buf[48];
	int major, minor, patch;
	zmq_version(&major, &minor, &patch);
	snprintf(buf, sizeof(buf), "libzmq %d.%d.%d", major, minor, patch);
	return buf;
}

const struct transport transport_zmq = {
        .name = "zmq",
        .title = "ZeroMQ ipc PUSH/PULL",
        .fifo_shared = 0,
        .create = zq_create,
        .open = zq_open,
        .send = zq_send,
        .recv = zq_recv,
        .close = zq_close,
        .destroy = zq_destroy,
};
