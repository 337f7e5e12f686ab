/* consumer.c - libmq example: print messages, one per line, until the queue
 * has stayed empty for a second.
 * Build: cc consumer.c $(pkg-config --cflags --libs libmq) -o consumer
 * Run:   ./consumer   (queue $MQ_QUEUE, else /messagequeue) */
#include <errno.h>
#include <libmq.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	struct mq_stats st;
	mq_t *q = mq_attach(getenv("MQ_QUEUE"));
	if (!q || mq_stats(q, &st) != 0) {
		fprintf(stderr, "consumer: %s\n", mq_errdetail());
		return 1;
	}
	char *buf = malloc(st.max_msg_size); /* always enough for one message */
	ssize_t n;
	while (buf && (n = mq_recv(q, buf, st.max_msg_size, 1000)) >= 0)
		printf("%.*s\n", (int)n, buf);
	int ok = buf && errno == ETIMEDOUT;
	if (!ok)
		fprintf(stderr, "consumer: %s\n", buf ? mq_errdetail() : "out of memory");
	free(buf);
	mq_detach(q);
	return ok ? 0 : 1;
}
