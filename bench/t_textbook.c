/* t_textbook.c - the seed's textbook queue: a shm ring guarded by three named semaphores. */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "transport.h"

/*
 * The seed's SharedQueue and its enqueue/dequeue, kept as they are: a
 * "mutex" semaphore (1) around the ring, "items" (0) counting messages and
 * "spaces" (QUEUE_SIZE) counting free slots; dequeue waits on items with a
 * 1 s CLOCK_REALTIME sem_timedwait and retries. Only what a benchmark needs
 * changed: the capacity and slot size are the run's (read from the header)
 * instead of QUEUE_SIZE 10 x MESSAGE_SIZE 256, each slot records its length
 * and is copied with memcpy (binary messages) instead of strncpy, and the
 * names are unique per run.
 */

#define TB_MAGIC 0x4D51534D /* "MQSM", as in the seed */

struct tb_shared {
	uint32_t magic;
	uint32_t version;
	uint32_t head;  /* consumer reads from here */
	uint32_t tail;  /* producer writes here */
	uint32_t count; /* current message count */
	uint32_t capacity;
	uint64_t slot_size;
	unsigned char slots[]; /* capacity x (uint64_t length + slot_size bytes) */
};

struct tb {
	struct tb_shared *q;
	size_t map_size;
	sem_t *mutex, *items, *spaces;
};

static void sem_names(const struct chan *c, char mutex[], char items[], char spaces[], size_t n)
{
	snprintf(mutex, n, "%s-mutex", c->name);
	snprintf(items, n, "%s-items", c->name);
	snprintf(spaces, n, "%s-spaces", c->name);
}

static size_t tb_size(size_t capacity, size_t msg_size)
{
	return sizeof(struct tb_shared) + capacity * (sizeof(uint64_t) + msg_size);
}

static int tb_create(struct chan *c, char *err, size_t errlen)
{
	char mutex[128], items[128], spaces[128], path[160];
	sem_names(c, mutex, items, spaces, sizeof(mutex));
	size_t size = tb_size(c->capacity, c->msg_size);
	struct tb_shared *q = shm_make(c->name, size, &c->ck[0], err, errlen);
	if (!q)
		return -1;
	q->version = 1;
	q->head = q->tail = q->count = 0;
	q->capacity = (uint32_t)c->capacity;
	q->slot_size = c->msg_size;
	q->magic = TB_MAGIC;
	munmap(q, size);

	const char *names[3] = {mutex, items, spaces};
	unsigned values[3] = {1, 0, (unsigned)c->capacity};
	for (int i = 0; i < 3; i++) {
		sem_t *s = sem_open(names[i], O_CREAT | O_EXCL, 0600, values[i]);
		if (s == SEM_FAILED) {
			snprintf(err, errlen, "sem_open %s: %s", names[i], strerror(errno));
			return -1;
		}
		snprintf(path, sizeof(path), "/dev/shm/sem.%s", names[i] + 1);
		c->ck[1 + i] = cleanup_add(CK_UNLINK, path, NULL);
		sem_close(s);
	}
	c->depth = c->capacity;
	return 0;
}

static int tb_open(struct chan *c, int dir, char *err, size_t errlen)
{
	(void)dir;
	static struct tb tbs[4]; /* a process opens at most two channels */
	struct tb *t = NULL;
	for (int i = 0; i < 4 && !t; i++)
		if (!tbs[i].q)
			t = &tbs[i];
	if (!t) {
		snprintf(err, errlen, "too many textbook queues open");
		return -1;
	}
	size_t map_size;
	void *p = shm_map(c->name, &map_size, err, errlen);
	if (!p)
		return -1;
	struct tb_shared *q = p;
	if (q->magic != TB_MAGIC || map_size < tb_size(q->capacity, q->slot_size)) {
		snprintf(err, errlen, "%s: invalid shared memory (magic or size)", c->name);
		munmap(p, map_size);
		return -1;
	}
	char mutex[128], items[128], spaces[128];
	sem_names(c, mutex, items, spaces, sizeof(mutex));
	t->mutex = sem_open(mutex, 0);
	t->items = sem_open(items, 0);
	t->spaces = sem_open(spaces, 0);
	if (t->mutex == SEM_FAILED || t->items == SEM_FAILED || t->spaces == SEM_FAILED) {
		snprintf(err, errlen, "sem_open (existing) %s-*: %s", c->name, strerror(errno));
		munmap(p, map_size);
		return -1;
	}
	t->q = q;
	t->map_size = map_size;
	c->priv = t;
	return 0;
}

static unsigned char *slot_at(struct tb_shared *q, uint32_t i)
{
	return q->slots + (size_t)i * (sizeof(uint64_t) + q->slot_size);
}

static int sem_wait_retry(sem_t *s)
{
	int rc;
	while ((rc = sem_wait(s)) != 0 && errno == EINTR)
		;
	return rc;
}

static int tb_send(struct chan *c, const void *msg, size_t len)
{
	struct tb *t = c->priv;
	struct tb_shared *q = t->q;
	if (len > q->slot_size) {
		errno = EMSGSIZE;
		return -1;
	}
	/* enqueue(): wait for space, lock, add, unlock, signal an item. */
	if (sem_wait_retry(t->spaces) || sem_wait_retry(t->mutex))
		return -1;
	unsigned char *slot = slot_at(q, q->tail);
	uint64_t n = len;
	memcpy(slot, &n, sizeof(n));
	memcpy(slot + sizeof(n), msg, len);
	q->tail = (q->tail + 1) % q->capacity;
	q->count++;
	sem_post(t->mutex);
	sem_post(t->items);
	return 0;
}

static ssize_t tb_recv(struct chan *c, void *buf, size_t cap)
{
	struct tb *t = c->priv;
	struct tb_shared *q = t->q;
	/* dequeue(): wait for an item (1 s timed waits, as in the seed), lock,
	 * take, unlock, signal a space. */
	for (;;) {
		struct timespec timeout;
		clock_gettime(CLOCK_REALTIME, &timeout);
		timeout.tv_sec += 1;
		if (sem_timedwait(t->items, &timeout) == 0)
			break;
		if (errno != ETIMEDOUT && errno != EINTR)
			return -1;
	}
	if (sem_wait_retry(t->mutex))
		return -1;
	unsigned char *slot = slot_at(q, q->head);
	uint64_t n;
	memcpy(&n, slot, sizeof(n));
	if (n > cap || n > q->slot_size) {
		sem_post(t->mutex);
		errno = EMSGSIZE;
		return -1;
	}
	memcpy(buf, slot + sizeof(n), n);
	q->head = (q->head + 1) % q->capacity;
	q->count--;
	sem_post(t->mutex);
	sem_post(t->spaces);
	return (ssize_t)n;
}

static void tb_close(struct chan *c)
{
	struct tb *t = c->priv;
	if (!t)
		return;
	sem_close(t->mutex);
	sem_close(t->items);
	sem_close(t->spaces);
	munmap(t->q, t->map_size);
	memset(t, 0, sizeof(*t));
	c->priv = NULL;
}

static void tb_destroy(struct chan *c)
{
	char mutex[128], items[128], spaces[128];
	sem_names(c, mutex, items, spaces, sizeof(mutex));
	shm_unlink(c->name);
	sem_unlink(mutex);
	sem_unlink(items);
	sem_unlink(spaces);
	for (int i = 0; i < 4; i++)
		cleanup_forget(c->ck[i]);
}

const struct transport transport_textbook10 = {
        .name = "textbook-10",
        .title = "textbook queue, cap 10",
        .flags = T_CAP10,
        .fifo_shared = 1,
        .create = tb_create,
        .open = tb_open,
        .send = tb_send,
        .recv = tb_recv,
        .close = tb_close,
        .destroy = tb_destroy,
};

const struct transport transport_textbook = {
        .name = "textbook-cap",
        .title = "textbook queue",
        .fifo_shared = 1,
        .create = tb_create,
        .open = tb_open,
        .send = tb_send,
        .recv = tb_recv,
        .close = tb_close,
        .destroy = tb_destroy,
};
