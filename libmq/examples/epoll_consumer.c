/* epoll_consumer.c - libmq example: one epoll loop that serves a TCP echo
 * socket and drains a queue, with no thread of its own blocked in mq_recv.
 * Each message is printed on a line ("queue: TEXT"); whatever a TCP client
 * sends is echoed back to it. SIGINT or SIGTERM ends the loop (a signalfd
 * in the same epoll set).
 * Build: cc epoll_consumer.c $(pkg-config --cflags --libs libmq) -o epoll_consumer
 * Run:   ./epoll_consumer [PORT]   (default 7777 on 127.0.0.1; queue $MQ_QUEUE,
 *        else /messagequeue), then: mqctl send hello; nc 127.0.0.1 7777 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, signalfd, and POSIX under -std=c11 */
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <libmq.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

/* fail: say what failed; returns -1. */
static int fail(const char *what)
{
	fprintf(stderr, "epoll_consumer: %s: %s\n", what, strerror(errno));
	return -1;
}

/* drain: take every waiting message with timeout 0, until EAGAIN (which
 * also tells libmq the loop has seen the queue empty: the descriptor stops
 * being readable until the next message). */
static int drain(mq_t *q, char *buf, size_t cap)
{
	ssize_t n;
	while ((n = mq_recv(q, buf, cap, 0)) >= 0)
		printf("queue: %.*s\n", (int)n, buf);
	fflush(stdout);
	if (errno != EAGAIN) {
		fprintf(stderr, "epoll_consumer: %s\n", mq_errdetail());
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	int port = argc > 1 ? atoi(argv[1]) : 7777;
	struct mq_stats st;
	mq_t *q = mq_attach(getenv("MQ_QUEUE"));
	if (!q || mq_stats(q, &st) != 0) {
		fprintf(stderr, "epoll_consumer: %s\n", mq_errdetail());
		return 1;
	}
	char *buf = malloc(st.max_msg_size); /* always enough for one message */
	int qfd = mq_pollfd(q, MQ_POLLIN);   /* the handle's: never close it */
	if (!buf || qfd < 0) {
		fprintf(stderr, "epoll_consumer: %s\n", buf ? mq_errdetail() : "out of memory");
		return 1;
	}

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) != 0 ||
	    listen(lfd, 16) != 0)
		return -fail("listen on 127.0.0.1");

	sigset_t stop;
	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	sigprocmask(SIG_BLOCK, &stop, NULL);
	int sfd = signalfd(-1, &stop, SFD_CLOEXEC);

	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN};
	int fds[] = {qfd, lfd, sfd};
	for (int i = 0; i < 3; i++) {
		ev.data.fd = fds[i];
		if (sfd < 0 || ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, fds[i], &ev) != 0)
			return -fail("epoll");
	}
	printf("epoll_consumer: queue %s and tcp 127.0.0.1:%d in one loop\n",
	       getenv("MQ_QUEUE") ? getenv("MQ_QUEUE") : MQ_DEFAULT_NAME, port);
	fflush(stdout);
	/* Messages sent before we started: take them now (this also arms the
	 * descriptor for the first one after). rc: 0 running, 1 stopped by a
	 * signal, -1 failed. */
	int rc = drain(q, buf, st.max_msg_size);
	while (rc == 0) {
		struct epoll_event got[16];
		int n = epoll_wait(ep, got, 16, -1);
		if (n < 0 && errno != EINTR)
			rc = fail("epoll_wait");
		for (int i = 0; rc == 0 && i < n; i++) {
			int fd = got[i].data.fd;
			if (fd == qfd) {
				rc = drain(q, buf, st.max_msg_size);
			} else if (fd == sfd) {
				rc = 1; /* SIGINT or SIGTERM: leave the loop */
			} else if (fd == lfd) {
				int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
				ev.data.fd = c;
				if (c >= 0 && epoll_ctl(ep, EPOLL_CTL_ADD, c, &ev) != 0)
					close(c);
			} else {
				char tcp[4096];
				ssize_t r = read(fd, tcp, sizeof(tcp));
				if (r <= 0 || write(fd, tcp, (size_t)r) != r)
					close(fd); /* leaves the epoll set with it */
			}
		}
	}
	printf("epoll_consumer: stopped\n");
	close(ep);
	free(buf);
	mq_detach(q); /* closes qfd */
	return rc < 0 ? 1 : 0;
}
