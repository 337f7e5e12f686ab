/* main.c - symbols test: glibc POSIX mq_send and libmq mq_send in one program; both must work. */
#include <stdio.h>
#include <stdlib.h>

/* Defined in posix_side.c and libmq_side.c: 0 on success, else a reason in WHY. */
int posix_side_run(char *why, size_t len);
int libmq_side_run(char *why, size_t len);

int main(void)
{
	char why[256];
	int failed = 0;

	why[0] = '\0';
	if (posix_side_run(why, sizeof(why)) != 0) {
		fprintf(stderr, "FAIL: glibc POSIX message queue side: %s\n", why);
		failed = 1;
	} else {
		printf("ok: glibc mq_open/mq_send/mq_receive work\n");
	}

	why[0] = '\0';
	if (libmq_side_run(why, sizeof(why)) != 0) {
		fprintf(stderr, "FAIL: libmq side: %s\n", why);
		failed = 1;
	} else {
		printf("ok: libmq mq_create/mq_send/mq_recv work\n");
	}
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
