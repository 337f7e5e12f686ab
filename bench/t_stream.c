/* t_stream.c - the byte-stream transports: a pipe and a Unix socketpair, one message per call. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "transport.h"

/* Every message of a run has the same size, so a stream needs no framing.
 * Writes up to PIPE_BUF (4096) bytes are atomic on a pipe, and a 64-byte
 * write is one skb on a Unix stream socket, so several processes may share
 * either end for 64-byte messages; a torn message would fail its check. */

static int pipe_create(struct chan *c, char *err, size_t errlen)
{
	int fd[2];
	if (pipe(fd) != 0) {
		snprintf(err, errlen, "pipe: %s", strerror(errno));
		return -1;
	}
	c->fd[0] = fd[1]; /* write end */
	c->fd[1] = fd[0]; /* read end */
	c->depth = 0;
	return 0;
}

static int sock_create(struct chan *c, char *err, size_t errlen)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) != 0) {
		snprintf(err, errlen, "socketpair: %s", strerror(errno));
		return -1;
	}
	/* One way only, like the pipe: [0] writes, [1] reads. */
	c->fd[0] = sv[0];
	c->fd[1] = sv[1];
	c->depth = 0;
	return 0;
}

static int stream_open(struct chan *c, int dir, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	/* Keep only our end, like a program that was handed one. */
	if (dir == CHAN_SEND) {
		close(c->fd[1]);
		c->fd[1] = -1;
	} else {
		close(c->fd[0]);
		c->fd[0] = -1;
	}
	return 0;
}

static int stream_send(struct chan *c, const void *msg, size_t len)
{
	const char *p = msg;
	while (len > 0) {
		ssize_t n = write(c->fd[0], p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static ssize_t stream_recv(struct chan *c, void *buf, size_t cap)
{
	/* CAP is the run's message size: read exactly one message. */
	char *p = buf;
	size_t got = 0;
	while (got < cap) {
		ssize_t n = read(c->fd[1], p + got, cap - got);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (n == 0) {
			errno = EPIPE; /* the writers are gone mid-run */
			return -1;
		}
		got += (size_t)n;
	}
	return (ssize_t)got;
}

static void stream_close(struct chan *c)
{
	for (int i = 0; i < 2; i++)
		if (c->fd[i] >= 0)
			close(c->fd[i]);
	c->fd[0] = c->fd[1] = -1;
}

static void stream_destroy(struct chan *c)
{
	stream_close(c); /* the parent's copies */
}

const struct transport transport_pipe = {
        .name = "pipe",
        .title = "pipe",
        .fifo_shared = 1,
        .create = pipe_create,
        .open = stream_open,
        .send = stream_send,
        .recv = stream_recv,
        .close = stream_close,
        .destroy = stream_destroy,
};

const struct transport transport_socketpair = {
        .name = "socketpair",
        .title = "Unix socketpair",
        .fifo_shared = 1,
        .create = sock_create,
        .open = stream_open,
        .send = stream_send,
        .recv = stream_recv,
        .close = stream_close,
        .destroy = stream_destroy,
};
