/* mqpoke.c - read or scribble one word of a queue's header, for the hostile-peer tests. */
/*
 * Usage: mqpoke NAME FIELD [VALUE]
 *
 * Prints FIELD's value; with VALUE (decimal, 0x hex, or 2^N) stores it first,
 * with a plain atomic store and no lock, as a buggy or hostile peer would.
 * The segment is mapped MAP_SHARED straight from /dev/shm, not attached
 * through libmq: no client slot, nothing repaired on the way.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "segment.h"

struct field {
	const char *name;
	size_t off;
	size_t size;
};

#define F(n, member)                                                                               \
	{                                                                                          \
		n, offsetof(struct mq_shm, member), sizeof(((struct mq_shm *)0)->member)           \
	}
static const struct field fields[] = {
        F("send.lock", send.lock),
        F("recv.lock", recv.lock),
        F("send.op", send.intent.op),
        F("recv.op", recv.intent.op),
        F("head", head),
        F("tail", tail),
        F("fhead", fhead),
        F("ftail", ftail),
        F("rhead", rhead),
        F("rtail", rtail),
        F("capacity", capacity),
        F("version", version),
};
#undef F

static int parse(const char *s, uint64_t *v)
{
	char *end;
	errno = 0;
	if (!strncmp(s, "2^", 2)) {
		unsigned long e = strtoul(s + 2, &end, 10);
		if (*end || e > 63)
			return -1;
		*v = (uint64_t)1 << e;
		return 0;
	}
	*v = strtoull(s, &end, 0);
	return *s && !*end && !errno ? 0 : -1;
}

int main(int argc, char **argv)
{
	if (argc < 3 || argc > 4) {
		fprintf(stderr, "usage: mqpoke NAME FIELD [VALUE]\nfields:");
		for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
			fprintf(stderr, " %s", fields[i].name);
		fprintf(stderr, "\n");
		return 2;
	}
	const struct field *f = NULL;
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++)
		if (!strcmp(argv[2], fields[i].name))
			f = &fields[i];
	uint64_t v = 0;
	if (!f || (argc == 4 && parse(argv[3], &v))) {
		fprintf(stderr, "mqpoke: bad %s '%s'\n", f ? "value" : "field",
		        f ? argv[3] : argv[2]);
		return 2;
	}
	char path[300];
	snprintf(path, sizeof(path), "/dev/shm%s", argv[1]);
	int fd = open(path, argc == 4 ? O_RDWR : O_RDONLY);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		fprintf(stderr, "mqpoke: %s: %s\n", path, strerror(errno));
		return 1;
	}
	if ((size_t)st.st_size < sizeof(struct mq_shm)) {
		fprintf(stderr, "mqpoke: %s: %lld bytes, smaller than the header\n", path,
		        (long long)st.st_size);
		return 1;
	}
	void *p = mmap(NULL, sizeof(struct mq_shm), PROT_READ | (argc == 4 ? PROT_WRITE : 0),
	               MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) {
		fprintf(stderr, "mqpoke: mmap %s: %s\n", path, strerror(errno));
		return 1;
	}
	unsigned char *w = (unsigned char *)p + f->off;
	if (f->size == 8) {
		if (argc == 4)
			__atomic_store_n((uint64_t *)w, v, __ATOMIC_SEQ_CST);
		printf("%" PRIu64 "\n", __atomic_load_n((uint64_t *)w, __ATOMIC_SEQ_CST));
	} else {
		if (argc == 4)
			__atomic_store_n((uint32_t *)w, (uint32_t)v, __ATOMIC_SEQ_CST);
		printf("%" PRIu32 "\n", __atomic_load_n((uint32_t *)w, __ATOMIC_SEQ_CST));
	}
	munmap(p, sizeof(struct mq_shm));
	close(fd);
	return 0;
}
