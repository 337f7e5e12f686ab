/* producer.c - libmq example: send each argument as one message.
 * Build: cc producer.c $(pkg-config --cflags --libs libmq) -o producer
 * Run:   ./producer hello world   (queue $MQ_QUEUE, else /messagequeue) */
#include <libmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv)
{
	mq_t *q = mq_attach(getenv("MQ_QUEUE")); /* NULL: MQ_DEFAULT_NAME */
	if (!q) {
		fprintf(stderr, "producer: %s\n", mq_errdetail());
		return 1;
	}
	for (int i = 1; i < argc; i++) {
		if (mq_send(q, argv[i], strlen(argv[i]), -1) != 0) { /* -1: wait for space */
			fprintf(stderr, "producer: %s\n", mq_errdetail());
			mq_detach(q);
			return 1;
		}
	}
	mq_detach(q);
	return 0;
}
