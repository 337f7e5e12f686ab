/* owner.c - create or adopt the segment, the one-broker lock, heartbeat, dead-client sweep. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "atomics.h"
#include "broker.h"
#include "client.h"
#include "handle.h"
#include "owner.h"

void broker_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "mqbroker: %s\n", line);
}

static int lock_broker(mq_t *q)
{
	struct flock fl = {
	        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = MQ_LOCK_BROKER, .l_len = 1};
	return fcntl(q->fd, F_OFD_SETLK, &fl) == 0 ? 0 : errno;
}

static int exit_for(int err)
{
	switch (err) {
	case EACCES:
	case EPERM:
		return BROKER_EXIT_PERMISSION;
	case EPROTO:
		return BROKER_EXIT_SEGMENT;
	case EINVAL:
		return BROKER_EXIT_USAGE;
	default:
		return BROKER_EXIT_RUNTIME;
	}
}

/* apply_access: give the segment the mode and group asked for. */
static int apply_access(const struct owner_opts *o, mq_t *q, char *err, size_t errlen)
{
	if (o->mode_set && fchmod(q->fd, o->mode) != 0) {
		snprintf(err, errlen, "queue %s: cannot set mode 0%o: %s", o->name,
		         (unsigned)o->mode, strerror(errno));
		return exit_for(errno);
	}
	if (o->group) {
		struct group *g = getgrnam(o->group);
		if (!g) {
			snprintf(err, errlen, "queue %s: no such group '%s' (see --group)", o->name,
			         o->group);
			return BROKER_EXIT_USAGE;
		}
		if (fchown(q->fd, (uid_t)-1, g->gr_gid) != 0) {
			snprintf(err, errlen, "queue %s: cannot give it to group %s: %s", o->name,
			         o->group, strerror(errno));
			return exit_for(errno);
		}
	}
	return BROKER_EXIT_OK;
}

static int create(const struct owner_opts *o, mq_t **q, char *err, size_t errlen)
{
	*q = attach_create(o->name, o->capacity, o->max_msg, o->mode, MQ_OPEN_OBSERVE);
	if (!*q) {
		snprintf(err, errlen, "%s", mq_errdetail());
		return exit_for(errno);
	}
	if (lock_broker(*q) != 0) { /* another broker created and locked it first? */
		snprintf(err, errlen, "queue %s: cannot take the broker lock: %s", o->name,
		         strerror(errno));
		mq_detach(*q);
		return BROKER_EXIT_RUNNING;
	}
	broker_log("created %s: capacity %zu messages of up to %zu bytes, mode 0%o", o->name,
	           o->capacity, o->max_msg, (unsigned)o->mode);
	return BROKER_EXIT_OK;
}

/* geometry_differs: the user asked for a geometry the existing queue has
 * not; says which in ERR. */
static int geometry_differs(const struct owner_opts *o, const struct mq_stats *st, char *err,
                            size_t errlen)
{
	if (o->capacity_set && st->capacity != o->capacity) {
		snprintf(err, errlen,
		         "queue %s exists with capacity %llu, --capacity asks for %zu; drop the "
		         "flag to adopt it, or add --recreate to replace it (its %llu messages are "
		         "lost)",
		         o->name, (unsigned long long)st->capacity, o->capacity,
		         (unsigned long long)st->depth);
		return 1;
	}
	if (o->max_msg_set && st->max_msg_size != o->max_msg) {
		snprintf(
		        err, errlen,
		        "queue %s exists with max message size %llu bytes, --max-msg asks for "
		        "%zu; drop the flag to adopt it, or add --recreate to replace it (its %llu "
		        "messages are lost)",
		        o->name, (unsigned long long)st->max_msg_size, o->max_msg,
		        (unsigned long long)st->depth);
		return 1;
	}
	return 0;
}

static int open_attempt(const struct owner_opts *o, mq_t **q, char *err, size_t errlen, int attempt)
{
	*q = attach_open(o->name, MQ_OPEN_OBSERVE);
	if (!*q && errno == ENOENT) {
		int rc = create(o, q, err, errlen);
		if (rc != BROKER_EXIT_OK && errno == EEXIST && attempt == 0) /* lost a race */
			return open_attempt(o, q, err, errlen, 1);
		if (rc != BROKER_EXIT_OK || !*q)
			return rc;
		return apply_access(o, *q, err, errlen);
	}
	if (!*q && errno == EPROTO) {
		if (!o->recreate) {
			snprintf(err, errlen,
			         "%s; start with --recreate to replace it (whatever it holds is "
			         "lost)",
			         mq_errdetail());
			return BROKER_EXIT_SEGMENT;
		}
		/* Unusable, so nobody can be using it through libmq: replace it. */
		broker_log("replacing %s as asked (--recreate): %s", o->name, mq_errdetail());
		if (mq_remove(o->name) != 0 && errno != ENOENT) {
			snprintf(err, errlen, "%s", mq_errdetail());
			return exit_for(errno);
		}
		int rc = create(o, q, err, errlen);
		return rc != BROKER_EXIT_OK ? rc : apply_access(o, *q, err, errlen);
	}
	if (!*q) {
		snprintf(err, errlen, "%s", mq_errdetail());
		return exit_for(errno);
	}

	/* It exists and is a sound libmq queue: is another broker serving it? */
	int lerr = lock_broker(*q);
	if (lerr) {
		int pid = mq_load_relaxed(&(*q)->shm->broker_pid);
		if (lerr == EAGAIN || lerr == EACCES)
			snprintf(err, errlen,
			         "queue %s is already served by mqbroker pid %d; stop it first, or "
			         "use --name for another queue",
			         o->name, pid);
		else
			snprintf(err, errlen, "queue %s: cannot take the broker lock: %s", o->name,
			         strerror(lerr));
		mq_detach(*q);
		*q = NULL;
		return lerr == EAGAIN || lerr == EACCES ? BROKER_EXIT_RUNNING : BROKER_EXIT_RUNTIME;
	}
	struct mq_stats st;
	mq_stats(*q, &st);
	if (geometry_differs(o, &st, err, errlen)) {
		if (!o->recreate) {
			mq_detach(*q);
			*q = NULL;
			return BROKER_EXIT_SEGMENT;
		}
		broker_log("replacing %s as asked (--recreate): capacity %llu -> %zu, max message "
		           "%llu -> %zu bytes, %llu messages dropped",
		           o->name, (unsigned long long)st.capacity,
		           o->capacity_set ? o->capacity : (size_t)st.capacity,
		           (unsigned long long)st.max_msg_size,
		           o->max_msg_set ? o->max_msg : (size_t)st.max_msg_size,
		           (unsigned long long)st.depth);
		if (st.clients)
			broker_log("%u clients still attached to the old %s keep using it until "
			           "they re-attach",
			           st.clients, o->name);
		err[0] = 0;
		/* What the user left out keeps the old queue's value. */
		struct owner_opts keep = *o;
		if (!keep.capacity_set)
			keep.capacity = (size_t)st.capacity;
		if (!keep.max_msg_set)
			keep.max_msg = (size_t)st.max_msg_size;
		mq_remove(o->name);
		mq_detach(*q);
		int rc = create(&keep, q, err, errlen);
		return rc != BROKER_EXIT_OK ? rc : apply_access(o, *q, err, errlen);
	}
	if (st.broker_pid)
		broker_log("adopted %s: %llu messages queued, %u clients attached (previous broker "
		           "pid %d is gone)",
		           o->name, (unsigned long long)st.depth, st.clients, st.broker_pid);
	else
		broker_log("adopted %s: %llu messages queued, %u clients attached", o->name,
		           (unsigned long long)st.depth, st.clients);
	return apply_access(o, *q, err, errlen);
}

int owner_open(const struct owner_opts *o, mq_t **q, char *err, size_t errlen)
{
	return open_attempt(o, q, err, errlen, 0);
}

void owner_beat(mq_t *q)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	mq_store_relaxed(&q->shm->broker_pid, (int32_t)getpid());
	mq_store_relaxed(&q->shm->broker_heartbeat_ns,
	                 (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec);
}

int owner_sweep(mq_t *q)
{
	int32_t pids[MQ_CLIENTS_MAX];
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++)
		pids[i] = mq_load_relaxed(&q->shm->clients[i].state) == MQ_CLIENT_ACTIVE
		                  ? mq_load_relaxed(&q->shm->clients[i].pid)
		                  : 0;
	int n = client_reap(q);
	if (n <= 0)
		return n;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++)
		if (pids[i] && mq_load_relaxed(&q->shm->clients[i].state) == MQ_CLIENT_DEAD)
			broker_log(
			        "client pid %d of %s died attached; cleaned up (%llu sent, %llu "
			        "received)",
			        pids[i], q->name,
			        (unsigned long long)mq_load_relaxed(&q->shm->clients[i].sent),
			        (unsigned long long)mq_load_relaxed(&q->shm->clients[i].received));
	return n;
}

void owner_close(mq_t *q)
{
	if (!q)
		return;
	mq_store_relaxed(&q->shm->broker_pid, 0);
	mq_store_relaxed(&q->shm->broker_heartbeat_ns, 0);
	mq_detach(q); /* closing the fd drops the broker lock */
}
