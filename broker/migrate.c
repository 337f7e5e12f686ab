/*
 * migrate.c - move the messages of a layout 1 queue (libmq 0.1) into a
 * current one, so that an upgraded mqbroker keeps serving the queue it
 * served before, with its messages.
 *
 * Crash contract, point by point:
 *  - The old file is only read (pread, every field checked against the file
 *    and the others), never mapped or written, so a broken one is refused,
 *    not followed.
 *  - While the move runs, this broker holds the old file's broker lock byte
 *    (the same OFD lock libmq 1's broker took): no libmq 1 broker starts on
 *    it meanwhile. A libmq 1 client or broker that has it open (its liveness
 *    lock held) refuses the move: its messages would go on into a file no
 *    one serves.
 *  - The new queue is built complete under a temporary name
 *    (/mqmove-PID-N), then renamed over the old name in one rename(2): a
 *    broker killed before the rename leaves the old queue intact (and a
 *    temporary file the next start removes, its pid being dead); killed
 *    after, the new queue is whole. Never neither, never half.
 *  - The totals (enqueued, dequeued) restart at 0 in the new queue; the log
 *    says how many messages moved.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "libmq.h"
#include "libmq_admin.h"
#include "migrate.h"
#include "owner.h"

/* Layout 1, as libmq 0.1 wrote it (its segment.h). */
#define V1_MAGIC       UINT64_C(0x314745534d51424c)
#define V1_HEADER      17408u
#define V1_CLIENTS     256u
#define V1_LOCK_CLIENT (INT64_C(1) << 40)
#define V1_LOCK_BROKER (INT64_C(1) << 41)
#define V1_OFF_MAGIC   0
#define V1_OFF_VERSION 8
#define V1_OFF_HSIZE   12
#define V1_OFF_CAP     16
#define V1_OFF_MAXMSG  24
#define V1_OFF_SLOT    32
#define V1_OFF_SLOTS   40
#define V1_OFF_TOTAL   48
/* tail and head: each in its own 128-byte section (offsetof in 0.1) */
#define V1_OFF_TAIL 256
#define V1_OFF_HEAD 512

static uint64_t ld64(const unsigned char *b, size_t off)
{
	uint64_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static uint32_t ld32(const unsigned char *b, size_t off)
{
	uint32_t v;
	memcpy(&v, b + off, sizeof(v));
	return v;
}

static void shm_path(const char *name, char *path, size_t len)
{
	snprintf(path, len, "/dev/shm%s", name);
}

int migrate_is_v1(const char *name)
{
	char path[PATH_MAX];
	shm_path(name, path, sizeof(path));
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return 0;
	unsigned char h[16];
	int v1 = pread(fd, h, sizeof(h), 0) == (ssize_t)sizeof(h) &&
	         ld64(h, V1_OFF_MAGIC) == V1_MAGIC && ld32(h, V1_OFF_VERSION) == 1;
	close(fd);
	return v1;
}

/* held_by_other: whether byte OFF of FD is locked (OFD) by anyone. */
static int held_by_other(int fd, off_t off, pid_t *pid)
{
	struct flock fl = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = off, .l_len = 1};
	if (fcntl(fd, F_OFD_GETLK, &fl) != 0)
		return 1; /* cannot tell: do not move */
	*pid = fl.l_pid;
	return fl.l_type != F_UNLCK;
}

/* remove_stale_moves: temporary queues of moves whose broker died. */
static void remove_stale_moves(void)
{
	DIR *d = opendir("/dev/shm");
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		int pid;
		unsigned n;
		if (sscanf(e->d_name, "mqmove-%d-%u", &pid, &n) != 2 || pid <= 0)
			continue;
		if (pid != getpid() && kill(pid, 0) != 0 && errno == ESRCH) {
			char name[300];
			snprintf(name, sizeof(name), "/%s", e->d_name);
			if (mq_remove(name) == 0)
				broker_log("removed %s, left by a move that did not finish (pid %d "
				           "is gone)",
				           name, pid);
		}
	}
	closedir(d);
}

long migrate_v1(const char *name, mode_t mode, char *err, size_t errlen)
{
	char path[PATH_MAX];
	shm_path(name, path, sizeof(path));
	remove_stale_moves();
	int fd = open(path, O_RDWR | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		snprintf(err, errlen, "layout 1 queue %s: %s", path, strerror(errno));
		return -1;
	}
	long moved = -1;
	int busy = 0; /* refused: libmq 1 processes still use it */
	unsigned char *h = malloc(V1_HEADER);
	unsigned char *msg = NULL;
	mq_t *nq = NULL;
	char tmp[64] = "";
	struct stat st;
	if (!h || fstat(fd, &st) != 0 || pread(fd, h, V1_HEADER, 0) != (ssize_t)V1_HEADER) {
		snprintf(err, errlen, "layout 1 queue %s: cannot read its header", path);
		goto out;
	}
	uint64_t cap = ld64(h, V1_OFF_CAP), max = ld64(h, V1_OFF_MAXMSG);
	uint64_t slot = ld64(h, V1_OFF_SLOT), slots = ld64(h, V1_OFF_SLOTS);
	uint64_t total = ld64(h, V1_OFF_TOTAL), tail = ld64(h, V1_OFF_TAIL);
	uint64_t head = ld64(h, V1_OFF_HEAD);
	uint64_t want_slot = (16 + max + 63) & ~(uint64_t)63;
	if (ld64(h, V1_OFF_MAGIC) != V1_MAGIC || ld32(h, V1_OFF_VERSION) != 1 ||
	    ld32(h, V1_OFF_HSIZE) != V1_HEADER || cap == 0 || cap > MQ_CAPACITY_LIMIT || max == 0 ||
	    max > MQ_MAX_MSG_LIMIT || slot != want_slot || slots != V1_HEADER ||
	    total != V1_HEADER + cap * slot || (uint64_t)st.st_size != total || head > tail + 1 ||
	    tail - head > cap || tail >= (UINT64_C(1) << 63)) {
		snprintf(err, errlen,
		         "layout 1 queue %s does not check out (capacity %" PRIu64
		         ", max message %" PRIu64 ", head %" PRIu64 ", tail %" PRIu64
		         ", %lld bytes); its messages cannot be moved: 'mqbroker --recreate' "
		         "replaces it",
		         path, cap, max, head, tail, (long long)st.st_size);
		goto out;
	}
	/* Nobody of libmq 1 may still use it: its clients and broker hold OFD
	 * locks on these bytes while they do. */
	pid_t pid = 0;
	unsigned users = 0;
	for (unsigned i = 0; i < V1_CLIENTS; i++)
		if (held_by_other(fd, V1_LOCK_CLIENT + (off_t)i, &pid))
			users++;
	if (users || held_by_other(fd, V1_LOCK_BROKER, &pid)) {
		/* An OFD lock has no owning process: F_OFD_GETLK reports pid -1 (or
		 * 0), which would name nobody. */
		char who[32] = "";
		if (pid > 0)
			snprintf(who, sizeof(who), " (e.g. pid %d)", (int)pid);
		snprintf(err, errlen,
		         "layout 1 queue %s is still in use by %u libmq 1 process%s%s: "
		         "its messages are moved once they have stopped",
		         path, users ? users : 1, users > 1 ? "es" : "", who);
		busy = 1;
		goto out;
	}
	struct flock lk = {
	        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = V1_LOCK_BROKER, .l_len = 1};
	if (fcntl(fd, F_OFD_SETLK, &lk) != 0) {
		snprintf(err, errlen, "layout 1 queue %s: another broker is starting on it", path);
		goto out;
	}
	/* The messages: [head, tail), and slot(tail) if a producer died between
	 * committing it and advancing tail. */
	msg = malloc(slot);
	static unsigned serial;
	snprintf(tmp, sizeof(tmp), "/mqmove-%d-%u", (int)getpid(), serial++);
	nq = mq_create(tmp, (size_t)cap, (size_t)max, mode & 0770);
	if (!msg || !nq) {
		snprintf(err, errlen, "moving layout 1 queue %s: cannot make its new queue: %s",
		         path, nq ? "out of memory" : mq_errdetail());
		goto out;
	}
	moved = 0;
	for (uint64_t p = head; p <= tail && (uint64_t)moved < cap; p++) {
		off_t off = (off_t)(V1_HEADER + (p % cap) * slot);
		if (pread(fd, msg, slot, off) != (ssize_t)slot) {
			snprintf(err, errlen, "layout 1 queue %s: cannot read position %" PRIu64,
			         path, p);
			moved = -1;
			goto out;
		}
		uint64_t seq = ld64(msg, 0), len = ld64(msg, 8);
		if (p == tail && seq != tail + 1)
			break; /* nothing committed past tail */
		if (seq != p + 1 || len > max) {
			snprintf(err, errlen,
			         "layout 1 queue %s: position %" PRIu64
			         " does not check out (seq %" PRIu64 ", %" PRIu64
			         " bytes); 'mqbroker --recreate' replaces it",
			         path, p, seq, len);
			moved = -1;
			goto out;
		}
		if (mq_send(nq, msg + 16, (size_t)len, 0) != 0) {
			snprintf(err, errlen, "moving layout 1 queue %s: %s", path, mq_errdetail());
			moved = -1;
			goto out;
		}
		moved++;
	}
	mq_detach(nq);
	nq = NULL;
	char tpath[PATH_MAX];
	shm_path(tmp, tpath, sizeof(tpath));
	/* The new queue takes the old one's owner where we may give it. */
	if (chown(tpath, st.st_uid, st.st_gid) != 0 && errno != EPERM) {
		snprintf(err, errlen, "moving layout 1 queue %s: chown: %s", path, strerror(errno));
		moved = -1;
		goto out;
	}
	if (rename(tpath, path) != 0) {
		snprintf(err, errlen, "moving layout 1 queue %s: rename: %s", path,
		         strerror(errno));
		moved = -1;
		goto out;
	}
	tmp[0] = '\0'; /* renamed: nothing to remove */
	broker_log("moved %ld message%s of layout 1 queue %s into a layout %u queue (its totals "
	           "restart at 0)",
	           moved, moved == 1 ? "" : "s", name, MQ_LAYOUT_CURRENT);
out:
	if (nq)
		mq_detach(nq);
	if (tmp[0] && moved < 0)
		mq_remove(tmp);
	free(msg);
	free(h);
	close(fd);
	if (busy)
		errno = EBUSY; /* the caller may wait and try again */
	return moved;
}
