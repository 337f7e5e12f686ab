/* t_mqueue.c - the POSIX message queue transport (glibc <mqueue.h>) and its kernel limits. */
#include <errno.h>
#include <fcntl.h>
#include <mqueue.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "harness.h"
#include "transport.h"

#define MSG_MAX_PATH     "/proc/sys/fs/mqueue/msg_max"
#define MSGSIZE_MAX_PATH "/proc/sys/fs/mqueue/msgsize_max"

static char limits_note[640] = "not used";

static long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;
	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

/* raise_sysctl: set PATH to at least WANT; note what happened in NOTE. */
static void raise_sysctl(const char *path, const char *label, long want, int write_sysctl,
                         char *note, size_t len)
{
	long cur = read_long(path);
	if (cur < 0) {
		snprintf(note, len, "%s unreadable", label);
		return;
	}
	if (cur >= want || !write_sysctl || geteuid() != 0) {
		snprintf(note, len, "%s %ld", label, cur);
		return;
	}
	char old[32], val[32];
	snprintf(old, sizeof(old), "%ld\n", cur);
	snprintf(val, sizeof(val), "%ld\n", want);
	FILE *f = fopen(path, "w");
	int ok = f && fputs(val, f) >= 0;
	if (f && fclose(f) != 0)
		ok = 0;
	long now = read_long(path);
	if (ok && now == want) {
		cleanup_add(CK_WRITE, path, old);
		snprintf(note, len, "%s %ld raised to %ld for the run (restored at exit)", label,
		         cur, want);
	} else {
		if (now != cur && now >= 0) {
			/* Partly written? Put it back now and at exit. */
			cleanup_add(CK_WRITE, path, old);
		}
		snprintf(note, len, "%s %ld (raising to %ld not permitted: %s)", label, cur, want,
		         strerror(errno));
	}
}

/* has_sys_resource: whether we hold CAP_SYS_RESOURCE (bit 24 of CapEff). */
static int has_sys_resource(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	unsigned long long caps = 0;
	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "CapEff: %llx", &caps) == 1)
			break;
	if (f)
		fclose(f);
	return (caps >> 24) & 1;
}

static const char *rlimit_text(void)
{
	static char buf[32];
	struct rlimit rl;
	if (getrlimit(RLIMIT_MSGQUEUE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
		return "unlimited";
	snprintf(buf, sizeof(buf), "%llu bytes", (unsigned long long)rl.rlim_cur);
	return buf;
}

void mqueue_limits_prepare(size_t depth, size_t msg_size, int write_sysctl)
{
	char n1[160], n2[160], n3[160];
	raise_sysctl(MSG_MAX_PATH, "msg_max", (long)depth, write_sysctl, n1, sizeof(n1));
	raise_sysctl(MSGSIZE_MAX_PATH, "msgsize_max", (long)msg_size, write_sysctl, n2, sizeof(n2));
	/* RLIMIT_MSGQUEUE caps the bytes of all queues of a user, root
	 * included; it is per process, so raising it touches nothing else. */
	struct rlimit rl;
	getrlimit(RLIMIT_MSGQUEUE, &rl);
	struct rlimit want = {RLIM_INFINITY, RLIM_INFINITY};
	if (rl.rlim_cur != RLIM_INFINITY && setrlimit(RLIMIT_MSGQUEUE, &want) == 0) {
		snprintf(n3, sizeof(n3), "RLIMIT_MSGQUEUE %llu bytes raised to unlimited",
		         (unsigned long long)rl.rlim_cur);
	} else {
		struct rlimit soft = {rl.rlim_max, rl.rlim_max};
		setrlimit(RLIMIT_MSGQUEUE, &soft);
		snprintf(n3, sizeof(n3),
		         "RLIMIT_MSGQUEUE %s (hard limit; raising it needs "
		         "CAP_SYS_RESOURCE)",
		         rlimit_text());
	}
	int cap = has_sys_resource();
	snprintf(limits_note, sizeof(limits_note), "%s; %s; %s; %s", n1, n2, n3,
	         cap ? "CAP_SYS_RESOURCE held: msg_max and msgsize_max do not bind (the kernel "
	               "caps are 65536 messages, 16 MiB)"
	             : "no CAP_SYS_RESOURCE");
}

const char *mqueue_limits_note(void)
{
	return limits_note;
}

/* try_open: create the queue with DEPTH slots; 0 or an errno. KEEP: leave it. */
static int try_open(struct chan *c, size_t depth, int keep)
{
	struct mq_attr attr = {.mq_maxmsg = (long)depth, .mq_msgsize = (long)c->msg_size};
	mqd_t q = mq_open(c->name, O_CREAT | O_EXCL | O_RDWR, 0600, &attr);
	if (q == (mqd_t)-1)
		return errno;
	mq_close(q);
	if (!keep)
		mq_unlink(c->name);
	return 0;
}

static int mqt_create(struct chan *c, char *err, size_t errlen)
{
	/* Ask for the run's depth; where the limits refuse it (EINVAL: msg_max
	 * or msgsize_max; EMFILE: RLIMIT_MSGQUEUE), take the deepest queue they
	 * allow and report the depth obtained. */
	int rc = try_open(c, c->capacity, 1);
	size_t depth = c->capacity;
	if (rc == EINVAL || rc == EMFILE) {
		size_t ok = 0, bad = c->capacity; /* bisect: ok works (0: none yet), bad fails */
		int why = rc;
		while (bad - ok > 1) {
			size_t mid = ok + (bad - ok) / 2;
			int r = try_open(c, mid, 0);
			if (r == 0) {
				ok = mid;
			} else {
				bad = mid;
				why = r;
			}
		}
		if (ok == 0) {
			if (why == EMFILE)
				snprintf(err, errlen,
				         "not permitted here: even one %zu-byte message exceeds "
				         "RLIMIT_MSGQUEUE (%s)",
				         c->msg_size, rlimit_text());
			else
				snprintf(err, errlen,
				         "not permitted here: %zu-byte messages exceed msgsize_max "
				         "(%ld)",
				         c->msg_size, read_long(MSGSIZE_MAX_PATH));
			return 1;
		}
		depth = ok;
		rc = try_open(c, depth, 1);
	}
	if (rc) {
		snprintf(err, errlen, "mq_open %s: %s", c->name, strerror(rc));
		return -1;
	}
	c->ck[0] = cleanup_add(CK_MQ, c->name, NULL);
	c->depth = depth;
	return 0;
}

static int mqt_open(struct chan *c, int dir, char *err, size_t errlen)
{
	mqd_t q = mq_open(c->name, dir == CHAN_SEND ? O_WRONLY : O_RDONLY);
	if (q == (mqd_t)-1) {
		snprintf(err, errlen, "mq_open %s: %s", c->name, strerror(errno));
		return -1;
	}
	c->fd[0] = (int)q;
	return 0;
}

static int mqt_send(struct chan *c, const void *msg, size_t len)
{
	int rc;
	while ((rc = mq_send((mqd_t)c->fd[0], msg, len, 0)) != 0 && errno == EINTR)
		;
	return rc;
}

static ssize_t mqt_recv(struct chan *c, void *buf, size_t cap)
{
	ssize_t n;
	while ((n = mq_receive((mqd_t)c->fd[0], buf, cap, NULL)) < 0 && errno == EINTR)
		;
	return n;
}

static void mqt_close(struct chan *c)
{
	mq_close((mqd_t)c->fd[0]);
}

static void mqt_destroy(struct chan *c)
{
	mq_unlink(c->name);
	cleanup_forget(c->ck[0]);
}

const struct transport transport_mqueue = {
        .name = "mqueue",
        .title = "POSIX mqueue",
        .fifo_shared = 1,
        .create = mqt_create,
        .open = mqt_open,
        .send = mqt_send,
        .recv = mqt_recv,
        .close = mqt_close,
        .destroy = mqt_destroy,
};
