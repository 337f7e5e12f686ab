/* lease_consumer.c - at-least-once: take each message with a lease, ack it
 * once it is handled. Killed halfway, nothing is lost: the message it held is
 * delivered again (deliveries says so) to whoever receives next.
 *   cc lease_consumer.c -lmq && MQ_QUEUE=/messagequeue ./a.out */
#include <libmq.h>
#include <stdio.h>
#include <stdlib.h>

int main(void)
{
	mq_t *q = mq_attach(getenv("MQ_QUEUE")); /* NULL: "/messagequeue" */
	if (!q) {
		fprintf(stderr, "%s\n", mq_errdetail());
		return 1;
	}
	char buf[4096];
	mq_lease_t lease;
	ssize_t n;
	/* Every message waiting now (timeout 0: stop at the first EAGAIN). */
	while ((n = mq_recv_lease(q, buf, sizeof(buf), 0, &lease)) >= 0) {
		/* Handle it: here, print it (a redelivery says so). */
		if (printf("%.*s%s\n", (int)n, buf, lease.deliveries > 1 ? " (again)" : "") < 0 ||
		    fflush(stdout) != 0) {
			mq_nack(q, &lease); /* not handled: give it back, now */
			break;
		}
		if (mq_ack(q, &lease) != 0) /* handled: retire it */
			fprintf(stderr, "mq_ack: %s\n", mq_errdetail());
	}
	mq_detach(q); /* a lease still held would go back to the queue here */
	return 0;
}
