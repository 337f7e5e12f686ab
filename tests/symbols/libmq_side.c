/* libmq_side.c - symbols test: the libmq half (<libmq.h> only) of a program using both. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#include <libmq.h>

int libmq_side_run(char *why, size_t len);

int libmq_side_run(char *why, size_t len)
{
	static const char msg[] = "libmq side \0 binary";
	char name[64], buf[128];
	int rc = -1;

	snprintf(name, sizeof(name), "/mqsym-libmq-%d", (int)getpid());
	mq_t *q = mq_create(name, 4, sizeof(buf), 0600);
	if (q == NULL) {
		snprintf(why, len, "mq_create(%s): %s (%s)", name, strerror(errno), mq_errdetail());
		return -1;
	}
	if (mq_send(q, msg, sizeof(msg), 0) != 0) {
		snprintf(why, len, "mq_send(%s): %s (%s)", name, strerror(errno), mq_errdetail());
		goto out;
	}
	memset(buf, 0, sizeof(buf));
	ssize_t n = mq_recv(q, buf, sizeof(buf), 1000);
	if (n < 0) {
		snprintf(why, len, "mq_recv(%s): %s (%s)", name, strerror(errno), mq_errdetail());
		goto out;
	}
	if (n != (ssize_t)sizeof(msg) || memcmp(buf, msg, sizeof(msg)) != 0) {
		snprintf(why, len, "mq_recv(%s) got %zd bytes, not what was sent", name, n);
		goto out;
	}
	rc = 0;
out:
	if (mq_detach(q) != 0 && rc == 0) {
		snprintf(why, len, "mq_detach(%s): %s", name, strerror(errno));
		rc = -1;
	}
	if (mq_remove(name) != 0 && rc == 0) {
		snprintf(why, len, "mq_remove(%s): %s", name, strerror(errno));
		rc = -1;
	}
	return rc;
}
