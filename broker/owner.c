/* owner.c - create or adopt the segment (with its ownership checked), the broker lock, heartbeat,
 * sweep. */
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "broker.h"
#include "libmq_admin.h"
#include "config.h"
#include "migrate.h"
#include "owner.h"

void broker_log(const char *fmt, ...)
{
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* Names and errors may carry what a user typed: no control characters
	 * reach the log raw. */
	char shown[4 * sizeof(line)];
	fprintf(stderr, "mqbroker: %s\n", config_escape(line, shown, sizeof(shown)));
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
	case EAGAIN:
		return BROKER_EXIT_RUNNING;
	default:
		return BROKER_EXIT_RUNTIME;
	}
}

/* user_name: the name of UID into BUF ("uid N" if it has none). */
static const char *user_name(uid_t uid, char *buf, size_t len)
{
	struct passwd *pw = getpwuid(uid);
	if (pw)
		snprintf(buf, len, "%s (uid %u)", pw->pw_name, (unsigned)uid);
	else
		snprintf(buf, len, "uid %u", (unsigned)uid);
	return buf;
}

/* check_ownership: refuse an existing queue another user could have
 * planted or can still write: owned by someone else than us (or the
 * trusted user), or with more permissions than we were told to give. A
 * chmod now would not help: whoever had it open keeps their mapping. */
static int check_ownership(const struct owner_opts *o, mq_t *q, char *err, size_t errlen)
{
	struct stat st;
	if (fstat(mq_fd(q), &st) != 0) {
		snprintf(err, errlen, "queue %s: fstat: %s", o->name, strerror(errno));
		return BROKER_EXIT_RUNTIME;
	}
	char owner[64], me[64];
	if (st.st_uid != geteuid() && !(o->trust_set && st.st_uid == o->trust_uid)) {
		snprintf(err, errlen,
		         "queue %s is owned by %s, not by this broker's user %s: another user may "
		         "have planted it; check it ('mqctl check -q %s') and remove it ('rm "
		         "/dev/shm%s'), or run mqbroker as its owner%s",
		         o->name, user_name(st.st_uid, owner, sizeof(owner)),
		         user_name(geteuid(), me, sizeof(me)), o->name, o->name,
		         geteuid() == 0 ? " (or with --trust-owner USER for the service user)"
		                        : "");
		return BROKER_EXIT_PERMISSION;
	}
	mode_t extra = (st.st_mode & 0777) & ~o->mode;
	if (extra) {
		snprintf(err, errlen,
		         "queue %s has mode %04o, which grants more than this broker's mode %04o "
		         "(%s): whoever has it open keeps that access; check it ('mqctl check -q "
		         "%s') "
		         "and remove it ('rm /dev/shm%s'), or give --mode %04o",
		         o->name, (unsigned)(st.st_mode & 0777), (unsigned)o->mode,
		         (extra & S_IWOTH) ? "world-writable" : "extra bits", o->name, o->name,
		         (unsigned)(st.st_mode & 0777));
		return BROKER_EXIT_PERMISSION;
	}
	return BROKER_EXIT_OK;
}

/* apply_access: give the segment the mode and group asked for. */
static int apply_access(const struct owner_opts *o, mq_t *q, char *err, size_t errlen)
{
	if (o->mode_set && fchmod(mq_fd(q), o->mode) != 0) {
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
		if (fchown(mq_fd(q), (uid_t)-1, g->gr_gid) != 0) {
			snprintf(err, errlen, "queue %s: cannot give it to group %s: %s", o->name,
			         o->group, strerror(errno));
			return exit_for(errno);
		}
	}
	return BROKER_EXIT_OK;
}

/* create: a new queue for O, locked as ours. */
static int create(const struct owner_opts *o, mq_t **q, char *err, size_t errlen)
{
	*q = mq_create_observed(o->name, o->capacity, o->max_msg, o->mode);
	if (!*q) {
		snprintf(err, errlen, "%s", mq_errdetail());
		return exit_for(errno);
	}
	if (mq_broker_lock(*q) != 0) { /* another broker created and locked it first? */
		snprintf(err, errlen, "%s", mq_errdetail());
		mq_detach(*q);
		*q = NULL;
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
	const char *cap = o->geometry_per_queue ? "its --queue or queue line" : "--capacity";
	const char *max = o->geometry_per_queue ? "its --queue or queue line" : "--max-msg";
	const char *drop = o->geometry_per_queue ? "leave it out" : "drop the flag";
	if (o->capacity_set && st->capacity != o->capacity) {
		snprintf(err, errlen,
		         "queue %s exists with capacity %llu, %s asks for %zu; %s to adopt it, or "
		         "add --recreate to replace it (its %llu messages are lost)",
		         o->name, (unsigned long long)st->capacity, cap, o->capacity, drop,
		         (unsigned long long)st->depth);
		return 1;
	}
	if (o->max_msg_set && st->max_msg_size != o->max_msg) {
		snprintf(err, errlen,
		         "queue %s exists with max message size %llu bytes, %s asks for %zu; %s to "
		         "adopt it, or add --recreate to replace it (its %llu messages are lost)",
		         o->name, (unsigned long long)st->max_msg_size, max, o->max_msg, drop,
		         (unsigned long long)st->depth);
		return 1;
	}
	return 0;
}

static int open_attempt(const struct owner_opts *o, mq_t **q, int *created, char *err,
                        size_t errlen, int attempt)
{
	*created = 0;
	*q = mq_observe(o->name);
	if (!*q && errno == ENOENT) {
		int rc = create(o, q, err, errlen);
		if (rc != BROKER_EXIT_OK && errno == EEXIST && attempt == 0) /* lost a race */
			return open_attempt(o, q, created, err, errlen, 1);
		if (rc != BROKER_EXIT_OK || !*q)
			return rc;
		*created = 1;
		return apply_access(o, *q, err, errlen);
	}
	if (!*q && errno == EPROTO && !o->recreate && migrate_is_v1(o->name)) {
		/* A queue of libmq 0.1: move its messages into a new one, then
		 * adopt that (attempt 1: no second move). */
		char why[1024], path[PATH_MAX];
		struct stat st;
		snprintf(path, sizeof(path), "/dev/shm%s", o->name);
		if (stat(path, &st) == 0 && st.st_uid != geteuid() &&
		    !(o->trust_set && st.st_uid == o->trust_uid)) {
			snprintf(
			        err, errlen,
			        "layout 1 queue %s is owned by uid %u, not this broker's (%u): not "
			        "moving another user's queue (see --trust-owner)",
			        path, (unsigned)st.st_uid, (unsigned)geteuid());
			return BROKER_EXIT_PERMISSION;
		}
		if (attempt == 1 || migrate_v1(o->name, o->mode, why, sizeof(why)) < 0) {
			int e = attempt == 1 ? EPROTO : errno; /* EBUSY: still in use */
			snprintf(err, errlen, "%s",
			         attempt == 1
			                 ? "layout 1 queue: moved, but the new queue cannot be "
			                   "opened"
			                 : why);
			errno = e;
			return BROKER_EXIT_SEGMENT;
		}
		return open_attempt(o, q, created, err, errlen, 1);
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
		*created = rc == BROKER_EXIT_OK;
		return rc != BROKER_EXIT_OK ? rc : apply_access(o, *q, err, errlen);
	}
	if (!*q) {
		snprintf(err, errlen, "%s", mq_errdetail());
		return exit_for(errno);
	}

	/* It exists and is a sound libmq queue: is it ours to adopt, and is
	 * another broker serving it? */
	int rc = check_ownership(o, *q, err, errlen);
	struct mq_stats before; /* the previous broker's pid, before we take its place */
	if (mq_stats(*q, &before) != 0)
		before.broker_pid = 0;
	if (rc == BROKER_EXIT_OK && mq_broker_lock(*q) != 0) {
		int e = errno;
		if (e == EAGAIN)
			snprintf(err, errlen, "%s; stop it first, or serve another queue",
			         mq_errdetail());
		else
			snprintf(err, errlen, "%s", mq_errdetail());
		rc = e == EAGAIN ? BROKER_EXIT_RUNNING : BROKER_EXIT_RUNTIME;
	}
	if (rc != BROKER_EXIT_OK) {
		mq_detach(*q);
		*q = NULL;
		return rc;
	}
	struct mq_stats st;
	mq_stats(*q, &st);
	if (geometry_differs(o, &st, err, errlen)) {
		if (!o->recreate) {
			mq_detach(*q);
			*q = NULL;
			errno = EEXIST; /* sound, but not the queue asked for */
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
		rc = create(&keep, q, err, errlen);
		*created = rc == BROKER_EXIT_OK;
		return rc != BROKER_EXIT_OK ? rc : apply_access(o, *q, err, errlen);
	}
	if (before.broker_pid && before.broker_pid != (int32_t)getpid())
		broker_log("adopted %s: %llu messages queued, %llu leased, %u clients attached "
		           "(previous broker pid %d is gone)",
		           o->name, (unsigned long long)st.depth, (unsigned long long)st.in_flight,
		           st.clients, before.broker_pid);
	else
		broker_log("adopted %s: %llu messages queued, %llu leased, %u clients attached",
		           o->name, (unsigned long long)st.depth, (unsigned long long)st.in_flight,
		           st.clients);
	return apply_access(o, *q, err, errlen);
}

int owner_open(const struct owner_opts *o, mq_t **q, int *created, char *err, size_t errlen)
{
	return open_attempt(o, q, created, err, errlen, 0);
}

void owner_discard(mq_t *q, const char *name)
{
	if (!q)
		return;
	if (mq_remove(name) == 0)
		broker_log("removed %s again: this start failed before serving it", name);
	mq_detach(q);
}

void owner_beat(mq_t *q)
{
	mq_broker_beat(q);
}

int owner_sweep(mq_t *q)
{
	struct mq_reaped dead[MQ_CLIENTS_MAX];
	/* A short wait for the queue's locks: a busy queue is swept next tick. */
	int n = mq_reap(q, dead, MQ_CLIENTS_MAX, 100);
	if (n < 0) {
		if (errno != ETIMEDOUT && errno != EINTR)
			broker_log("sweep of %s: %s", mq_name(q), mq_errdetail());
		return -1;
	}
	for (int i = 0; i < n && i < MQ_CLIENTS_MAX; i++)
		broker_log(
		        "client pid %d of %s died attached; cleaned up (%llu sent, %llu received)",
		        (int)dead[i].pid, mq_name(q), (unsigned long long)dead[i].sent_total,
		        (unsigned long long)dead[i].received_total);
	return n;
}

void owner_close(mq_t *q)
{
	if (!q)
		return;
	mq_broker_unlock(q);
	mq_detach(q); /* closing the fd drops the broker lock */
}
