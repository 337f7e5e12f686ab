/* uv_consumer.c - libmq example: the epoll_consumer of this directory on
 * libuv: a uv_poll_t on the queue's descriptor (mq_pollfd) beside a TCP echo
 * server, in one uv loop. Each message is printed on a line ("queue: TEXT");
 * whatever a TCP client sends is echoed back. SIGINT or SIGTERM stops it.
 * Build: cc uv_consumer.c $(pkg-config --cflags --libs libmq libuv) -o uv_consumer
 *        (Debian: apt-get install libuv1-dev)
 * Run:   ./uv_consumer [PORT]   (default 7777 on 127.0.0.1; queue $MQ_QUEUE,
 *        else /messagequeue) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* the POSIX declarations libuv needs, also under -std=c11 */
#endif
#include <errno.h>
#include <libmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static mq_t *q;
static char *buf;
static size_t cap;
static uv_loop_t *loop;
static uv_poll_t qpoll;
static uv_tcp_t server;
static uv_signal_t sigint, sigterm;
static int status;

/* drain: take every waiting message with timeout 0 until EAGAIN, which
 * re-arms the descriptor (see mq_pollfd in libmq.h). */
static void drain(void)
{
	ssize_t n;
	while ((n = mq_recv(q, buf, cap, 0)) >= 0)
		printf("queue: %.*s\n", (int)n, buf);
	fflush(stdout);
	if (errno != EAGAIN) {
		fprintf(stderr, "uv_consumer: %s\n", mq_errdetail());
		status = 1;
		uv_stop(loop);
	}
}

static void on_queue(uv_poll_t *h, int st, int events)
{
	(void)h;
	(void)events;
	if (st < 0) {
		fprintf(stderr, "uv_consumer: poll: %s\n", uv_strerror(st));
		status = 1;
		uv_stop(loop);
		return;
	}
	drain();
}

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
	(void)h;
	b->base = malloc(want);
	b->len = b->base ? want : 0;
}

static void on_close(uv_handle_t *h)
{
	free(h);
}

static void on_written(uv_write_t *w, int st)
{
	(void)st;
	free(w->data);
	free(w);
}

static void on_read(uv_stream_t *c, ssize_t n, const uv_buf_t *b)
{
	if (n > 0) {
		uv_write_t *w = malloc(sizeof(*w));
		uv_buf_t out = uv_buf_init(b->base, (unsigned)n);
		if (w) {
			w->data = b->base; /* freed once written */
			if (uv_write(w, c, &out, 1, on_written) == 0)
				return;
			free(w);
		}
	}
	free(b->base);
	if (n < 0)
		uv_close((uv_handle_t *)c, on_close);
}

static void on_connection(uv_stream_t *s, int st)
{
	uv_tcp_t *c = malloc(sizeof(*c));
	if (st < 0 || !c || uv_tcp_init(loop, c) != 0) {
		free(c);
		return;
	}
	if (uv_accept(s, (uv_stream_t *)c) != 0 ||
	    uv_read_start((uv_stream_t *)c, on_alloc, on_read))
		uv_close((uv_handle_t *)c, on_close);
}

static void on_signal(uv_signal_t *h, int sig)
{
	(void)h;
	(void)sig;
	uv_stop(loop);
}

static void close_any(uv_handle_t *h, void *arg)
{
	(void)arg;
	if (!uv_is_closing(h))
		uv_close(h, (h->type == UV_TCP && h != (uv_handle_t *)&server) ? on_close : NULL);
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 7777;
	struct mq_stats st;
	q = mq_attach(getenv("MQ_QUEUE"));
	if (!q || mq_stats(q, &st) != 0) {
		fprintf(stderr, "uv_consumer: %s\n", mq_errdetail());
		return 1;
	}
	cap = st.max_msg_size;
	buf = malloc(cap);
	int qfd = mq_pollfd(q, MQ_POLLIN); /* the handle's: never close it */
	if (!buf || qfd < 0) {
		fprintf(stderr, "uv_consumer: %s\n", buf ? mq_errdetail() : "out of memory");
		return 1;
	}
	loop = uv_default_loop();
	struct sockaddr_in addr;
	uv_ip4_addr("127.0.0.1", port, &addr);
	int rc;
	if ((rc = uv_poll_init(loop, &qpoll, qfd)) ||
	    (rc = uv_poll_start(&qpoll, UV_READABLE, on_queue)) ||
	    (rc = uv_tcp_init(loop, &server)) ||
	    (rc = uv_tcp_bind(&server, (const struct sockaddr *)&addr, 0)) ||
	    (rc = uv_listen((uv_stream_t *)&server, 16, on_connection)) ||
	    (rc = uv_signal_init(loop, &sigint)) ||
	    (rc = uv_signal_start(&sigint, on_signal, SIGINT)) ||
	    (rc = uv_signal_init(loop, &sigterm)) ||
	    (rc = uv_signal_start(&sigterm, on_signal, SIGTERM))) {
		fprintf(stderr, "uv_consumer: %s\n", uv_strerror(rc));
		return 1;
	}
	printf("uv_consumer: queue %s and tcp 127.0.0.1:%d in one loop\n",
	       getenv("MQ_QUEUE") ? getenv("MQ_QUEUE") : MQ_DEFAULT_NAME, port);
	drain(); /* messages sent before we started; arms the descriptor */
	if (status == 0)
		uv_run(loop, UV_RUN_DEFAULT);
	/* Close every handle (the poll handle before mq_detach closes its fd). */
	uv_walk(loop, close_any, NULL);
	uv_run(loop, UV_RUN_DEFAULT);
	uv_loop_close(loop);
	printf("uv_consumer: stopped\n");
	free(buf);
	mq_detach(q);
	return status;
}
