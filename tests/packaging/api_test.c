/* api_test.c - every libmq call once through the public header alone, plus
 * the errno of a few bad inputs. The same file is compiled as C11 (with
 * -pedantic) and as C++17, in the build tree (ctest api_c, api_cxx) and
 * against the installed packages (test_packages.sh). Exit 0 = pass. */
#include <libmq.h> /* first: the header must be self-contained */

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef __cplusplus
#define LANG "C++"
#else
#define LANG "C"
#endif

static int failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "api_test (%s): %s:%d: %s (errno %d, %s)\n", LANG,         \
			        __FILE__, __LINE__, #cond, errno, mq_errdetail());                 \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

int main(void)
{
	char name[64];
	snprintf(name, sizeof(name), "/libmq-api-%s-%ld", LANG[1] ? "cxx" : "c", (long)getpid());

	mq_t *q = mq_create(name, 4, 64, 0600);
	CHECK(q != NULL);
	if (!q)
		return 1;
	errno = 0;
	CHECK(mq_create(name, 4, 64, 0600) == NULL && errno == EEXIST);

	mq_t *q2 = mq_attach(name);
	CHECK(q2 != NULL);
	CHECK(mq_send(q, "hello", 5, 0) == 0);
	CHECK(mq_send(q2, NULL, 0, -1) == 0); /* an empty message is a message */
	char big[65];
	memset(big, 'x', sizeof(big));
	errno = 0;
	CHECK(mq_send(q, big, sizeof(big), 0) == -1 && errno == EMSGSIZE);

	struct mq_stats st;
	CHECK(mq_stats(q, &st) == 0);
	CHECK(st.capacity == 4 && st.max_msg_size == 64 && st.depth == 2);
	CHECK(st.enqueued_total == 2 && st.bytes_enqueued_total == 5);

	char buf[64];
	errno = 0;
	CHECK(mq_recv(q, buf, 4, 0) == -1 && errno == EMSGSIZE); /* and it stays */
	CHECK(mq_recv(q2, buf, sizeof(buf), 0) == 5 && memcmp(buf, "hello", 5) == 0);
	CHECK(mq_recv(q, buf, sizeof(buf), 100) == 0);
	errno = 0;
	CHECK(mq_recv(q, buf, sizeof(buf), 0) == -1 && errno == EAGAIN);
	errno = 0;
	CHECK(mq_recv(q, buf, sizeof(buf), 10) == -1 && errno == ETIMEDOUT);
	errno = 0;
	CHECK(mq_recv(q, buf, sizeof(buf), -2) == -1 && errno == EINVAL);

	struct mq_client_info who[MQ_CLIENTS_MAX];
	int n = mq_clients(q, who, MQ_CLIENTS_MAX);
	int mine = 0;
	for (int i = 0; i < n && i < MQ_CLIENTS_MAX; i++)
		mine += who[i].pid == (int32_t)getpid() && who[i].alive;
	CHECK(n >= 2 && mine == 2);

	CHECK(mq_set_spin(q, 0) == 0);
	errno = 0;
	CHECK(mq_set_spin(q, 2000000) == -1 && errno == EINVAL);
	errno = 0;
	CHECK(mq_attach("no-slash") == NULL && errno == EINVAL);
	CHECK(strstr(mq_errdetail(), "no-slash") != NULL);

	CHECK(mq_detach(q2) == 0);
	CHECK(mq_detach(q) == 0);
	CHECK(mq_remove(name) == 0);
	errno = 0;
	CHECK(mq_attach(name) == NULL && errno == ENOENT);
	errno = 0;
	CHECK(mq_remove(name) == -1 && errno == ENOENT);
	errno = 0;
	CHECK(mq_detach(NULL) == -1 && errno == EINVAL);

	if (failures) {
		fprintf(stderr, "api_test (%s): %d check(s) failed\n", LANG, failures);
		return 1;
	}
	printf("api_test (%s): libmq %s, all checks passed\n", LANG, LIBMQ_VERSION);
	return 0;
}
