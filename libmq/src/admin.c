/* admin.c - the calls of libmq_admin.h: observing, the broker's role, reaping, inspection. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client.h"
#include "error.h"
#include "interrupt.h"
#include "libmq_admin.h"
#include "lock.h"
#include "ops.h"

mq_t *mq_observe(const char *name)
{
	return attach_open(name, MQ_OPEN_OBSERVE);
}

mq_t *mq_create_observed(const char *name, size_t capacity, size_t max_msg, mode_t mode)
{
	return attach_create(name, capacity, max_msg, mode, MQ_OPEN_OBSERVE);
}

int mq_fd(mq_t *q)
{
	if (!q)
		return error_set(EINVAL, "mq_fd: no queue handle");
	return q->fd;
}

const char *mq_name(mq_t *q)
{
	if (!q)
		return error_null(EINVAL, "mq_name: no queue handle");
	return q->name;
}

static int broker_lock_op(mq_t *q, short type, int cmd, struct flock *fl)
{
	memset(fl, 0, sizeof(*fl));
	fl->l_type = type;
	fl->l_whence = SEEK_SET;
	fl->l_start = MQ_LOCK_BROKER;
	fl->l_len = 1;
	return fcntl(q->fd, cmd, fl);
}

int mq_broker_lock(mq_t *q)
{
	if (!q)
		return error_set(EINVAL, "mq_broker_lock: no queue handle");
	struct flock fl;
	if (broker_lock_op(q, F_WRLCK, F_OFD_SETLK, &fl) != 0) {
		int err = errno;
		if (err == EAGAIN || err == EACCES)
			return error_set(EAGAIN, "queue %s is already served by mqbroker pid %d",
			                 q->name, (int)mq_load_relaxed(&q->shm->broker_pid));
		return error_set(err, "queue %s: cannot take the broker lock: %s", q->name,
		                 strerror(err));
	}
	/* A new generation: a lock word or chunk that names a broker before us
	 * names a dead one. */
	uint32_t gen = (mq_load_relaxed(&q->shm->broker_gen) + 1) & MQ_TOKEN_GEN_MASK;
	mq_store_relaxed(&q->shm->broker_gen, gen);
	q->token = mq_token(MQ_TOKEN_BROKER_SLOT, gen);
	return mq_broker_beat(q);
}

int mq_broker_beat(mq_t *q)
{
	if (!q || (q->token & MQ_TOKEN_SLOT_MASK) != MQ_TOKEN_BROKER_SLOT)
		return error_set(EINVAL, "mq_broker_beat: %s",
		                 q ? "not the broker" : "no queue handle");
	if (handle_check(q, false))
		return -1;
	mq_store_relaxed(&q->shm->broker_pid, (int32_t)getpid());
	mq_store_relaxed(&q->shm->broker_heartbeat_ns, wait_now_ns());
	return 0;
}

int mq_broker_unlock(mq_t *q)
{
	if (!q || (q->token & MQ_TOKEN_SLOT_MASK) != MQ_TOKEN_BROKER_SLOT)
		return error_set(EINVAL, "mq_broker_unlock: %s",
		                 q ? "not the broker" : "no queue handle");
	if (handle_check(q, false))
		return -1;
	mq_store_relaxed(&q->shm->broker_pid, 0);
	mq_store_relaxed(&q->shm->broker_heartbeat_ns, 0);
	return 0;
}

int mq_broker_alive(mq_t *q)
{
	if (!q)
		return error_set(EINVAL, "mq_broker_alive: no queue handle");
	struct flock fl;
	if (broker_lock_op(q, F_WRLCK, F_OFD_GETLK, &fl) != 0)
		return error_set(errno, "queue %s: cannot test the broker lock: %s", q->name,
		                 strerror(errno));
	return fl.l_type != F_UNLCK;
}

int mq_declare_role(mq_t *q, uint32_t role)
{
	if (!q)
		return error_set(EINVAL, "mq_declare_role: no queue handle");
	if (role != MQ_ROLE_BRIDGE)
		return error_set(EINVAL,
		                 "mq_declare_role on %s: role %#x is not one to declare "
		                 "(MQ_ROLE_BRIDGE)",
		                 q->name, (unsigned)role);
	if (q->client < 0)
		return error_set(EINVAL, "mq_declare_role on %s: this handle has no client entry",
		                 q->name);
	mark_role(q, role);
	return 0;
}

int mq_reap(mq_t *q, struct mq_reaped *out, size_t n, int timeout_ms)
{
	struct timespec deadline;
	const struct timespec *dl;
	uint32_t intr0;
	if (call_start(q, "mq_reap", timeout_ms, &deadline, &dl, &intr0))
		return -1;
	if (!q->token)
		return error_set(EINVAL, "mq_reap on %s: needs the broker lock or a client handle",
		                 q->name);
	if (!reap_needed(q))
		return 0;
	/* timeout 0: do not wait for the locks at all beyond a short spin. */
	if (timeout_ms == 0) {
		wait_deadline(&deadline, 1);
		dl = &deadline;
	}
	return reap_dead(q, dl, intr0, out, n);
}

/* lock_info: the lock word W with its record IN, and whether its holder is
 * alive, into OUT. */
static void lock_info(struct mq *q, struct mq_side *side, struct mq_lock_info *out)
{
	uint32_t w = mq_load_acquire(&side->lock);
	out->word = w;
	out->op = mq_load_relaxed(&side->intent.op);
	uint32_t token = w & MQ_TOKEN_MASK;
	unsigned slot = token & MQ_TOKEN_SLOT_MASK;
	out->holder_pid = 0;
	if (token == 0)
		out->holder_pid = 0;
	else if (slot == MQ_TOKEN_BROKER_SLOT)
		out->holder_pid = mq_load_relaxed(&q->shm->broker_pid);
	else if (slot >= 1 && slot <= MQ_CLIENTS_MAX)
		out->holder_pid = mq_load_relaxed(&q->shm->clients[slot - 1].pid);
	else
		out->holder_pid = -1;
	out->holder_alive = token != 0 && token_live(q, token);
}

/* lock_problem: a problem with lock INFO of side NAME, into BUF, or 0. */
static int lock_problem(const struct mq_lock_info *info, const char *name, char *buf, size_t len)
{
	if (info->word && !info->holder_alive) {
		snprintf(buf, len,
		         "the %s lock is held by %s (word 0x%08x); the next %s takes it over and "
		         "finishes what was left",
		         name,
		         info->holder_pid > 0 ? "a process that is gone"
		                              : "nobody (a garbage value)",
		         info->word, !strcmp(name, "send") ? "sender" : "receiver");
		return 1;
	}
	if (!info->word && info->op) {
		snprintf(buf, len,
		         "the %s side records an operation (%u) but nobody holds its lock: the "
		         "record was overwritten",
		         name, info->op);
		return 1;
	}
	return 0;
}

int mq_inspect(mq_t *q, struct mq_inspection *out)
{
	if (!q || !out)
		return error_set(EINVAL, "mq_inspect: %s is NULL", q ? "output" : "queue handle");
	if (handle_check(q, true))
		return -1;
	struct mq_shm *s = q->shm;
	memset(out, 0, sizeof(*out));
	out->version = s->version;
	out->lifo = handle_lifo(q);
	out->queue_id = s->queue_id;
	out->capacity = q->capacity;
	out->max_msg_size = q->max_msg;
	out->chunk_size = q->chunk_size;
	out->ring_size = q->ring_mask + 1;
	out->head = mq_load_acquire(&s->head);
	out->tail = mq_load_acquire(&s->tail);
	out->requeue_head = mq_load_acquire(&s->rhead);
	out->requeue_tail = mq_load_acquire(&s->rtail);
	out->pool_head = mq_load_acquire(&s->fhead);
	out->pool_tail = mq_load_acquire(&s->ftail);
	lock_info(q, &s->send, &out->send_lock);
	lock_info(q, &s->recv, &out->recv_lock);
	int alive = mq_broker_alive(q);
	out->broker_alive = alive > 0 || (q->token & MQ_TOKEN_SLOT_MASK) == MQ_TOKEN_BROKER_SLOT;
	out->broker_pid = mq_load_relaxed(&s->broker_pid);
	struct stat st;
	if (fstat(q->fd, &st) == 0) {
		out->file_mode = st.st_mode & 07777;
		out->file_uid = st.st_uid;
		out->file_gid = st.st_gid;
		out->unlinked = st.st_nlink == 0;
	}
	/* The chunks: one pass. */
	uint32_t live[MQ_CLIENTS_MAX];
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++)
		live[i] = mq_load_acquire(&s->clients[i].state) == MQ_CLIENT_ACTIVE &&
		                          client_alive(q, i)
		                  ? client_token(q, i)
		                  : 0;
	uint64_t invalid = 0;
	for (uint64_t idx = 0; idx < q->capacity; idx++) {
		uint64_t cst = mq_load_relaxed(&handle_chunk(q, idx)->state);
		uint32_t owner = MQ_CHUNK_OWNER(cst);
		unsigned slot = owner & MQ_TOKEN_SLOT_MASK;
		bool owned = false;
		switch (MQ_CHUNK_KIND(cst)) {
		case MQ_CHUNK_FREE:
			out->chunks_free++;
			break;
		case MQ_CHUNK_QUEUED:
			out->chunks_queued++;
			break;
		case MQ_CHUNK_REQUEUED:
			out->chunks_requeued++;
			break;
		case MQ_CHUNK_HELD:
			out->chunks_leased++, owned = true;
			break;
		case MQ_CHUNK_WRITING:
			out->chunks_writing++, owned = true;
			break;
		case MQ_CHUNK_TAKING:
			out->chunks_taking++, owned = true;
			break;
		default:
			invalid++;
		}
		if (owned && !(slot >= 1 && slot <= MQ_CLIENTS_MAX ? live[slot - 1] == owner
		                                                   : token_live(q, owner)))
			out->chunks_orphaned++;
	}
	out->sound = 1;
	char why[256] = "";
	if (out->file_mode & S_IWOTH)
		snprintf(why, sizeof(why),
		         "the file is world-writable (mode %04o): any local user could rewrite its "
		         "messages; clients and mqbroker refuse it",
		         out->file_mode);
	else if (lock_problem(&out->send_lock, "send", why, sizeof(why)) ||
	         lock_problem(&out->recv_lock, "receive", why, sizeof(why)))
		;
	else if (invalid)
		snprintf(why, sizeof(why), "%llu chunks are in no valid state",
		         (unsigned long long)invalid);
	else if (segment_validate(s, q->map_size, why, sizeof(why)) != 0)
		;
	else if (check_consumer(q) != 0 || check_producer(q) != 0)
		snprintf(why, sizeof(why), "%s", mq_errdetail());
	if (why[0]) {
		out->sound = 0;
		snprintf(out->problem, sizeof(out->problem), "%s", why);
	}
	return handle_check(q, false);
}

static int listed_cmp(const void *a, const void *b)
{
	return strcmp(((const struct mq_listed *)a)->name, ((const struct mq_listed *)b)->name);
}

int mq_list(struct mq_listed *out, size_t n)
{
	if (!out && n)
		return error_set(EINVAL, "mq_list: output is NULL");
	int dfd = open("/dev/shm", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = dfd < 0 ? NULL : fdopendir(dfd);
	if (!d) {
		int err = errno;
		if (dfd >= 0)
			close(dfd);
		return error_set(err, "mq_list: /dev/shm: %s", strerror(err));
	}
	size_t found = 0;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strlen(e->d_name) + 1 > MQ_NAME_MAX)
			continue;
		/* O_NONBLOCK: a FIFO planted in /dev/shm must not hang us. */
		int fd = openat(dfd, e->d_name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
		if (fd < 0)
			continue;
		struct stat st;
		uint64_t head[2] = {0, 0};
		int ok = fstat(fd, &st) == 0 && S_ISREG(st.st_mode) &&
		         pread(fd, head, sizeof(head), 0) == (ssize_t)sizeof(head) &&
		         head[0] == MQ_MAGIC;
		close(fd);
		if (!ok)
			continue;
		if (found < n) {
			struct mq_listed *l = &out[found];
			memset(l, 0, sizeof(*l));
			l->name[0] = '/';
			memcpy(l->name + 1, e->d_name, strlen(e->d_name) + 1);
			l->version = (uint32_t)head[1]; /* little-endian: the version word */
			l->size = (uint64_t)st.st_size;
			l->uid = st.st_uid;
			l->mode = st.st_mode & 07777;
		}
		found++;
	}
	closedir(d);
	if (out && found)
		qsort(out, found < n ? found : n, sizeof(*out), listed_cmp);
	return found > INT32_MAX ? INT32_MAX : (int)found;
}
