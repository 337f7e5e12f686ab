/* attach.c - mq_create, mq_attach, mq_detach, mq_remove, mq_stats, mq_clients, mq_interrupt. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "client.h"
#include "error.h"
#include "guard.h"
#include "handle.h"
#include "tiq.h"
#include "ops.h"
#include "pollfd.h"
#include "wait.h"

/* A creator publishes the magic last; an attacher that finds an all-zero
 * header on a young file waits this long for it before calling it corrupt. */
#define YOUNG_FILE_WAIT_MS 200
#define MQ_XSTR(x)         #x
#define MQ_STR(x)          MQ_XSTR(x)

int attach_name_valid(const char *name)
{
	if (!name || name[0] != '/')
		return 0;
	size_t n = strlen(name);
	return n >= 2 && n <= MQ_NAME_MAX && !strchr(name + 1, '/');
}

static const char *errno_hint(int err)
{
	switch (err) {
	case ENOENT:
		return " — is mqbroker running?";
	case EACCES:
		return " (check the queue's mode and group: ls -l /dev/shm)";
	default:
		return "";
	}
}

static struct mq *handle_new(const char *name, int fd)
{
	struct mq *q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	q->fd = fd;
	q->client = -1;
	strcpy(q->name, name);
	unsigned spin = MQ_DEFAULT_SPIN_US;
	const char *env = getenv("MQ_SPIN_US");
	if (env && *env) {
		char *end;
		unsigned long v = strtoul(env, &end, 10);
		if (!*end && v <= 1000000)
			spin = (unsigned)v;
	}
	atomic_init(&q->spin_us, spin);
	return q;
}

/* handle_geometry: copy the (validated) geometry of Q's segment into Q. */
static void handle_geometry(struct mq *q)
{
	struct mq_shm *s = q->shm;
	unsigned char *base = (unsigned char *)s;
	q->capacity = s->capacity;
	q->max_msg = s->max_msg;
	q->chunk_size = s->chunk_size;
	q->ring_mask = s->ring_size - 1;
	q->flags = s->flags;
	q->ring = (_Atomic uint64_t *)(base + s->ring_offset);
	q->pool = (_Atomic uint64_t *)(base + s->pool_offset);
	q->requeue = (_Atomic uint32_t *)(base + s->requeue_offset);
	q->chunks = base + s->chunks_offset;
	tiq_attach(q);
}

/* handle_map: map FD's SIZE bytes into Q, watched by the SIGBUS guard.
 * Returns 0 or an errno. */
static int handle_map(struct mq *q, size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, q->fd, 0);
	if (p == MAP_FAILED)
		return errno;
	q->shm = p;
	q->map_size = size;
	guard_add(q);
	return 0;
}

static void handle_free(struct mq *q)
{
	if (q->shm) {
		guard_remove(q);
		munmap(q->shm, q->map_size);
	}
	close(q->fd);
	free(q);
}

int handle_check_slow(struct mq *q, bool check_file)
{
	if (mq_load_relaxed(&q->damaged))
		return error_set(EPROTO,
		                 "queue %s: damaged: its file shrank under this process (another "
		                 "process truncated it); 'mqbroker --recreate' replaces it",
		                 q->name);
	if (!check_file)
		return 0;
	struct stat st;
	if (fstat(q->fd, &st) == 0 && (uint64_t)st.st_size < q->map_size) {
		mq_store_relaxed(&q->damaged, 1);
		return error_set(
		        EPROTO,
		        "queue %s: damaged: its file has %lld bytes, it had %zu (truncated by "
		        "another process); 'mqbroker --recreate' replaces it",
		        q->name, (long long)st.st_size, q->map_size);
	}
	struct mq_shm *s = q->shm;
	if (mq_load_acquire(&s->magic) != MQ_MAGIC || s->version != MQ_LAYOUT_VERSION ||
	    s->geometry_check != segment_geometry_check(s) || s->capacity != q->capacity ||
	    s->max_msg != q->max_msg || s->chunk_size != q->chunk_size ||
	    s->ring_size != q->ring_mask + 1 || s->flags != q->flags)
		return error_set(EPROTO,
		                 "queue %s: damaged: its header was overwritten (magic, version or "
		                 "geometry no longer check out)",
		                 q->name);
	return 0;
}

/* above_stdio: FD moved to 3 or above (closing FD) if it is 0, 1 or 2: a
 * program started with stdout closed must not have its printf land in a
 * queue's file. Returns the descriptor, or -1 (FD closed, errno set). */
static int above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int hi = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int err = errno;
	close(fd);
	errno = err;
	return hi;
}

/* The directory glibc's shm_open keeps POSIX shared memory in, on Linux. */
#define SHM_DIR "/dev/shm"

/* create_file: the file of a new queue NAME, owner-only (the requested mode
 * is applied once the header is complete). Normally an unnamed file in
 * SHM_DIR (O_TMPFILE) that publish_file names once the queue is complete, so
 * a creator killed halfway leaves nothing behind: a half-made file would be
 * refused as corrupt by every attach and broker start. Where O_TMPFILE or
 * /proc is missing, shm_open(O_EXCL) names it at once (*NAMED = 1). Returns the
 * descriptor, or -1 with errno (EEXIST: the name is taken). */
static int create_file(const char *name, int *named)
{
	char path[sizeof(SHM_DIR) + MQ_NAME_MAX];
	struct stat st;
	snprintf(path, sizeof(path), SHM_DIR "%s", name);
	/* Fail early, before the memory is allocated; publish_file decides. */
	if (stat(path, &st) == 0) {
		errno = EEXIST;
		return -1;
	}
	*named = 0;
	if (access("/proc/self/fd", X_OK) == 0) { /* publish_file needs it */
		int fd = open(SHM_DIR, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (fd >= 0 || (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL))
			return above_stdio(fd);
	}
	*named = 1;
	return above_stdio(shm_open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600));
}

/* publish_file: give the unnamed file FD the queue's NAME, atomically: the
 * queue appears whole or not at all. Returns 0 or an errno (EEXIST: another
 * process took NAME meanwhile). linkat through /proc/self/fd is the
 * unprivileged way to name an O_TMPFILE file (see open(2)). */
static int publish_file(int fd, const char *name)
{
	char proc[32], path[sizeof(SHM_DIR) + MQ_NAME_MAX];
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	snprintf(path, sizeof(path), SHM_DIR "%s", name);
	if (linkat(AT_FDCWD, proc, AT_FDCWD, path, AT_SYMLINK_FOLLOW) != 0)
		return errno;
	return 0;
}

mq_t *attach_create(const char *name, size_t capacity, size_t max_msg, mode_t mode, int flags)
{
	if (!attach_name_valid(name))
		return error_null(EINVAL,
		                  "mq_create: bad queue name \"%s\" (want \"/\" and 1..250 "
		                  "characters, no other \"/\")",
		                  name ? name : "(null)");
	if (capacity == 0 || capacity > MQ_CAPACITY_LIMIT)
		return error_null(EINVAL, "mq_create %s: capacity %zu (want 1..%u messages)", name,
		                  capacity, MQ_CAPACITY_LIMIT);
	if (max_msg == 0 || max_msg > MQ_MAX_MSG_LIMIT)
		return error_null(EINVAL,
		                  "mq_create %s: maximum message size %zu (want 1..%u bytes)", name,
		                  max_msg, MQ_MAX_MSG_LIMIT);
	if (mode & ~(mode_t)0777)
		return error_null(EINVAL, "mq_create %s: mode 0%o has bits beyond 0777", name,
		                  (unsigned)mode);
	if (mode & S_IWOTH)
		return error_null(
		        EINVAL,
		        "mq_create %s: mode 0%o is world-writable: any local user could "
		        "rewrite its messages (give the users a group instead, e.g. 0660)",
		        name, (unsigned)mode);
	struct mq_geometry geo;
	if (segment_geometry(capacity, max_msg, &geo) != 0 ||
	    geo.total_size > (uint64_t)SIZE_MAX / 2)
		return error_null(EINVAL, "mq_create %s: %zu x %zu bytes does not fit in memory",
		                  name, capacity, max_msg);
	uint64_t size = geo.total_size;

	int named;
	int fd = create_file(name, &named);
	if (fd < 0) {
		int err = errno;
		return error_null(err, "mq_create %s: %s%s", name, strerror(err),
		                  err == EEXIST ? " (mq_remove it, or attach to it)" : "");
	}
	struct mq *q = handle_new(name, fd);
	int err = q ? 0 : ENOMEM;
	/* posix_fallocate, not just ftruncate: a full /dev/shm must fail here
	 * with ENOSPC, not later with SIGBUS in some process's memcpy. */
	if (!err)
		err = posix_fallocate(fd, 0, (off_t)size);
	if (!err)
		err = handle_map(q, size);
	if (!err)
		err = segment_init(q->shm, capacity, max_msg, &geo);
	if (!err)
		handle_geometry(q);
	if (!err && fchmod(fd, mode) != 0)
		err = errno;
	if (!err && !(flags & MQ_OPEN_OBSERVE))
		err = client_claim(q);
	if (!err && !named)
		err = publish_file(fd, name);
	if (err) {
		if (named)
			shm_unlink(name);
		if (q)
			handle_free(q);
		else
			close(fd);
		return error_null(err, "mq_create %s: %s%s", name, strerror(err),
		                  err == EEXIST ? " (mq_remove it, or attach to it)" : "");
	}
	return q;
}

mq_t *mq_create(const char *name, size_t capacity, size_t max_msg, mode_t mode)
{
	return attach_create(name, capacity, max_msg, mode, 0);
}

/* all_zero_young: whether FD is a just-created file whose creator has not
 * published the header yet (empty, or magic still zero, and made < 2 s ago). */
static int all_zero_young(int fd, const struct stat *st)
{
	uint64_t magic = 0;
	if (st->st_size >= (off_t)sizeof(magic) && pread(fd, &magic, sizeof(magic), 0) != 8)
		return 0;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	return magic == 0 && now.tv_sec - st->st_ctim.tv_sec < 2;
}

mq_t *attach_open(const char *name, int flags)
{
	if (!name)
		name = MQ_DEFAULT_NAME;
	if (!attach_name_valid(name))
		return error_null(EINVAL,
		                  "mq_attach: bad queue name \"%s\" (want \"/\" and 1..250 "
		                  "characters, no other \"/\")",
		                  name);
	int fd = above_stdio(shm_open(name, O_RDWR | O_CLOEXEC, 0));
	if (fd < 0) {
		int err = errno;
		return error_null(err, "queue %s: %s%s", name,
		                  err == ENOENT ? "not found" : strerror(err), errno_hint(err));
	}
	struct stat st;
	for (int waited = 0;; waited += 10) {
		if (fstat(fd, &st) != 0) {
			int err = errno;
			close(fd);
			return error_null(err, "queue %s: fstat: %s", name, strerror(err));
		}
		if (waited >= YOUNG_FILE_WAIT_MS || !all_zero_young(fd, &st))
			break;
		nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
	}
	if ((st.st_mode & S_IWOTH) && !(flags & MQ_OPEN_OBSERVE)) {
		close(fd);
		return error_null(
		        EACCES,
		        "queue %s: refused: it is world-writable (mode %04o, owner uid %u), "
		        "so any local user could rewrite its messages; its owner should "
		        "'chmod o-w /dev/shm%s' (mqbroker refuses it too)",
		        name, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid, name);
	}
	struct mq *q = handle_new(name, fd);
	if (!q) {
		close(fd);
		return error_null(ENOMEM, "queue %s: out of memory", name);
	}
	char why[256] = "";
	int err = 0;
	if ((size_t)st.st_size < sizeof(struct mq_shm)) {
		/* Too small for this header: its magic and version still say
		 * whether it is an older libmq's queue or a truncated one. */
		static const struct mq_shm zero;
		struct mq_shm *head = malloc(sizeof(*head));
		if (!head) {
			err = ENOMEM;
			snprintf(why, sizeof(why), "out of memory");
		} else {
			*head = zero;
			if (pread(fd, head, 16, 0) != 16)
				*head = zero; /* shrank meanwhile: judged by its size */
			err = segment_validate(head, (uint64_t)st.st_size, why, sizeof(why));
			free(head);
		}
	} else if ((err = handle_map(q, (size_t)st.st_size)) != 0) {
		snprintf(why, sizeof(why), "mmap: %s", strerror(err));
	} else {
		err = segment_validate(q->shm, (uint64_t)st.st_size, why, sizeof(why));
		if (!err && mq_load_relaxed(&q->damaged)) {
			err = EPROTO;
			snprintf(why, sizeof(why), "truncated while being read");
		}
	}
	if (!err)
		handle_geometry(q);
	if (!err && !(flags & MQ_OPEN_OBSERVE)) {
		err = client_claim(q);
		if (err)
			snprintf(why, sizeof(why), "%s",
			         err == EUSERS ? "client table full (" MQ_STR(
			                                 MQ_CLIENTS_MAX) " clients attached)"
			                       : strerror(err));
	}
	if (err) {
		handle_free(q);
		return error_null(err, "queue %s: %s", name, why);
	}
	return q;
}

mq_t *mq_attach(const char *name)
{
	return attach_open(name, 0);
}

int mq_detach(mq_t *q)
{
	if (!q)
		return error_set(EINVAL, "mq_detach: no queue handle");
	pollfd_free(q); /* its threads use the mapping */
	if (!mq_load_relaxed(&q->damaged))
		tiq_detach(q); /* measurements still pending */
	if (!mq_load_relaxed(&q->damaged))
		give_back_own(q); /* leases are delivered again, reservations freed */
	if (!mq_load_relaxed(&q->damaged))
		client_release(q);
	handle_free(q);
	return 0;
}

int mq_interrupt(mq_t *q)
{
	/* Async-signal-safe: atomics and futex calls only (no error detail). */
	if (!q) {
		errno = EINVAL;
		return -1;
	}
	atomic_fetch_add(&q->intr, 1);
	wait_kick(&q->shm->not_empty);
	wait_kick(&q->shm->not_full);
	wait_wake_word(&q->shm->send.lock, INT_MAX);
	wait_wake_word(&q->shm->recv.lock, INT_MAX);
	return 0;
}

int mq_remove(const char *name)
{
	if (!attach_name_valid(name))
		return error_set(EINVAL, "mq_remove: bad queue name \"%s\"",
		                 name ? name : "(null)");
	if (shm_unlink(name) != 0) {
		int err = errno;
		return error_set(err, "mq_remove %s: %s", name,
		                 err == ENOENT ? "no such queue" : strerror(err));
	}
	return 0;
}

int mq_stats(mq_t *q, struct mq_stats *out)
{
	if (!q || !out)
		return error_set(EINVAL, "mq_stats: %s is NULL", q ? "output" : "queue handle");
	if (handle_check(q, false))
		return -1;
	struct mq_shm *s = q->shm;
	memset(out, 0, sizeof(*out));
	/* Each position read before the one that bounds it from above: every
	 * position only grows, so the differences are not negative but for the
	 * dead-producer case below. */
	uint64_t head = mq_load_acquire(&s->head);
	uint64_t tail = mq_load_acquire(&s->tail);
	uint64_t rhead = mq_load_acquire(&s->rhead);
	uint64_t rtail = mq_load_acquire(&s->rtail);
	/* head may pass tail until the next sender accounts for messages a
	 * dead one committed (repair.c): those are gone already. */
	uint64_t depth = (head > tail ? 0 : tail - head) + (rtail > rhead ? rtail - rhead : 0);
	out->capacity = q->capacity;
	out->max_msg_size = q->max_msg;
	out->depth = depth > q->capacity ? q->capacity : depth;
	out->high_water = mq_load_relaxed(&s->high_water);
	out->enqueued_total = tail;
	out->dequeued_total = mq_load_relaxed(&s->retired);
	out->bytes_enqueued_total = mq_load_relaxed(&s->bytes_enqueued);
	out->bytes_dequeued_total = mq_load_relaxed(&s->bytes_retired);
	out->blocked_sends_total = mq_load_relaxed(&s->blocked_sends);
	out->blocked_recvs_total = mq_load_relaxed(&s->blocked_recvs);
	out->full_total = mq_load_relaxed(&s->full_events);
	out->empty_total = mq_load_relaxed(&s->empty_events);
	out->recoveries_total = mq_load_relaxed(&s->recoveries);
	out->lock_repairs_total = mq_load_relaxed(&s->lock_repairs);
	out->broker_pid = mq_load_relaxed(&s->broker_pid);
	out->created_unix_ns = s->created_unix_ns;
	out->broker_heartbeat_ns = mq_load_relaxed(&s->broker_heartbeat_ns);
	out->acked_total = mq_load_relaxed(&s->acked);
	out->nacked_total = mq_load_relaxed(&s->nacked);
	out->redelivered_total = mq_load_relaxed(&s->redelivered);
	out->oldest_age_ns = tiq_oldest_ns(q);
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		struct mq_client_slot *c = &s->clients[i];
		if (mq_load_acquire(&c->state) != MQ_CLIENT_ACTIVE)
			continue;
		uint64_t in_flight = mq_load_relaxed(&c->in_flight);
		out->in_flight += in_flight <= q->capacity ? in_flight : 0;
		if (!client_alive(q, i))
			continue;
		uint32_t role = mq_load_relaxed(&c->role);
		out->clients++;
		out->producers += !!(role & MQ_ROLE_PRODUCER);
		out->consumers += !!(role & MQ_ROLE_CONSUMER);
	}
	return handle_check(q, false);
}

/* oldest_leases: the CLOCK_MONOTONIC_COARSE time of each client entry's
 * oldest lease (0: none) into OLDEST, by one pass over the chunks. */
static void oldest_leases(struct mq *q, int64_t *oldest)
{
	memset(oldest, 0, sizeof(int64_t) * MQ_CLIENTS_MAX);
	for (uint64_t idx = 0; idx < q->capacity; idx++) {
		struct mq_chunk *c = handle_chunk(q, idx);
		uint64_t st = mq_load_relaxed(&c->state);
		if (MQ_CHUNK_KIND(st) != MQ_CHUNK_HELD)
			continue;
		uint32_t owner = MQ_CHUNK_OWNER(st);
		unsigned slot = owner & MQ_TOKEN_SLOT_MASK;
		if (slot < 1 || slot > MQ_CLIENTS_MAX || client_token(q, slot - 1) != owner)
			continue;
		int64_t t = mq_load_relaxed(&c->lease_ns);
		if (t > 0 && (oldest[slot - 1] == 0 || t < oldest[slot - 1]))
			oldest[slot - 1] = t;
	}
}

int mq_clients(mq_t *q, struct mq_client_info *out, size_t n)
{
	if (!q || (!out && n))
		return error_set(EINVAL, "mq_clients: %s is NULL", q ? "output" : "queue handle");
	if (handle_check(q, false))
		return -1;
	struct mq_shm *s = q->shm;
	int64_t oldest[MQ_CLIENTS_MAX];
	int any_leases = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++)
		any_leases |= mq_load_acquire(&s->clients[i].state) == MQ_CLIENT_ACTIVE &&
		              mq_load_relaxed(&s->clients[i].in_flight) != 0;
	if (any_leases && n)
		oldest_leases(q, oldest);
	int64_t now = wait_coarse_ns();
	int count = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		struct mq_client_slot *c = &s->clients[i];
		uint32_t st = mq_load_acquire(&c->state);
		if (st == MQ_CLIENT_FREE)
			continue;
		if ((size_t)count < n) {
			struct mq_client_info *o = &out[count];
			memset(o, 0, sizeof(*o));
			o->pid = mq_load_relaxed(&c->pid);
			o->role = mq_load_relaxed(&c->role);
			o->alive = st == MQ_CLIENT_ACTIVE && client_alive(q, i);
			o->sent_total = mq_load_relaxed(&c->sent);
			o->received_total = mq_load_relaxed(&c->received);
			o->bytes_sent_total = mq_load_relaxed(&c->bytes_sent);
			o->bytes_received_total = mq_load_relaxed(&c->bytes_received);
			o->attached_unix_ns = mq_load_relaxed(&c->attached_unix_ns);
			o->in_flight = st == MQ_CLIENT_ACTIVE ? mq_load_relaxed(&c->in_flight) : 0;
			o->acked_total = mq_load_relaxed(&c->acked);
			o->nacked_total = mq_load_relaxed(&c->nacked);
			if (any_leases && o->in_flight && oldest[i] && now > oldest[i])
				o->oldest_lease_age_ns = now - oldest[i];
		}
		count++;
	}
	/* Our own entry must say so: a table that does not list us was
	 * overwritten (reported, not shown as the truth). */
	if (q->client >= 0 && mq_load_acquire(&s->clients[q->client].state) != MQ_CLIENT_ACTIVE)
		return damaged(q, "this process's entry %d of the client table was overwritten",
		               q->client);
	return handle_check(q, false) ? -1 : count;
}
