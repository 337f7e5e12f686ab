/* cmd_check.c - mqctl check: offline health check of a segment (healthy/damaged/stale/missing). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomics.h"
#include "client.h"
#include "handle.h"
#include "broker.h"
#include "mqctl.h"
#include "segment.h"

void check_usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqctl check [-q NAME] [--unlink-stale]\n"
	        "Check a queue's segment without using it (mqctl does not attach as a\n"
	        "client): the file, magic, layout version, geometry, indices and slots, the\n"
	        "attached processes (alive or dead) and the broker (alive or not). Prints\n"
	        "one line per finding, then a verdict line, and exits with it:\n"
	        "  healthy   valid, and a live mqbroker serves it                    exit 0\n"
	        "  missing   no such queue                                           exit 3\n"
	        "  damaged   corrupt, truncated, not a libmq queue or of another\n"
	        "            layout version (the line says which)                    exit 6\n"
	        "  stale     valid, but no live mqbroker (clients may still use it;\n"
	        "            'mqbroker -n NAME' adopts it with its messages)          exit 7\n"
	        "\n"
	        "  -q, --queue NAME    queue (default $MQ_QUEUE, else %s)\n"
	        "  -u, --unlink-stale  remove the queue if it is stale and no live process\n"
	        "                      has it attached (its messages are lost; exit 0);\n"
	        "                      otherwise say why not and remove nothing. A healthy\n"
	        "                      or damaged queue is never removed\n"
	        "  -h, --help          this help\n"
	        "\n" MQCTL_EXIT_HELP,
	        MQ_DEFAULT_NAME);
}

/* check_header: findings from the first bytes of the file, readable even when
 * the segment as a whole is not: magic and version. */
static void check_header(int fd, off_t size)
{
	uint64_t magic;
	uint32_t version;
	if (size < (off_t)(sizeof(magic) + sizeof(version)) ||
	    pread(fd, &magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
	    pread(fd, &version, sizeof(version), 8) != (ssize_t)sizeof(version)) {
		printf("header: %lld bytes, too short for a header of %zu bytes\n", (long long)size,
		       sizeof(struct mq_shm));
		return;
	}
	if (magic != MQ_MAGIC) {
		printf("magic: 0x%016" PRIx64 ", not a libmq queue (want 0x%016" PRIx64 ")\n",
		       magic, MQ_MAGIC);
		return;
	}
	printf("magic: ok\n");
	if (version == MQ_LAYOUT_VERSION)
		printf("version: %u (ok)\n", version);
	else
		printf("version: %u, this mqctl reads layout version %u\n", version,
		       MQ_LAYOUT_VERSION);
}

/* check_clients: one finding per entry of the client table; returns how many
 * live processes have the queue attached. */
static int check_clients(mq_t *q)
{
	struct mq_shm *s = q->shm;
	int alive = 0, listed = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		struct mq_client_slot *c = &s->clients[i];
		uint32_t st = mq_load_acquire(&c->state);
		if (st == MQ_CLIENT_FREE)
			continue;
		int pid = mq_load_relaxed(&c->pid);
		const char *state;
		if (st == MQ_CLIENT_DEAD) {
			state = "dead, cleaned up";
		} else if (client_alive(q, i)) {
			state = "alive";
			alive++;
		} else {
			state = "dead, died attached (the broker's sweep cleans it up)";
		}
		printf("client: pid %d (%s, %" PRIu64 " sent, %" PRIu64 " received): %s\n", pid,
		       render_role(mq_load_relaxed(&c->role)), (uint64_t)mq_load_relaxed(&c->sent),
		       (uint64_t)mq_load_relaxed(&c->received), state);
		listed++;
	}
	if (!listed)
		printf("clients: none attached\n");
	return alive;
}

/* unlink_stale: remove the stale queue Q (NAME) unless a process uses it. */
static int unlink_stale(mq_t *q, const char *name, uint64_t depth)
{
	/* Hold the broker lock while we decide: no mqbroker can adopt the
	 * queue between our look and the unlink. (Clients need no broker; one
	 * attaching in that instant keeps its mapping of the removed queue.) */
	struct flock fl = {
	        .l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = MQ_LOCK_BROKER, .l_len = 1};
	if (fcntl(q->fd, F_OFD_SETLK, &fl) != 0) {
		if (errno == EAGAIN || errno == EACCES) {
			printf("not removed: an mqbroker started serving queue %s meanwhile\n",
			       name);
			return MQCTL_OK;
		}
		return fail(MQCTL_RUNTIME, "queue %s: cannot take the broker lock: %s", name,
		            strerror(errno));
	}
	char live[256] = "";
	int alive = 0;
	for (unsigned i = 0; i < MQ_CLIENTS_MAX; i++) {
		struct mq_client_slot *c = &q->shm->clients[i];
		if (mq_load_acquire(&c->state) != MQ_CLIENT_ACTIVE || !client_alive(q, i))
			continue;
		size_t used = strlen(live);
		snprintf(live + used, sizeof(live) - used, "%s%d", alive ? ", " : "",
		         (int)mq_load_relaxed(&c->pid));
		alive++;
	}
	if (alive) {
		printf("not removed: %d live process%s still use%s queue %s (pid %s) — stop "
		       "%s first\n",
		       alive, alive > 1 ? "es" : "", alive > 1 ? "" : "s", name, live,
		       alive > 1 ? "them" : "it");
		return MQCTL_STALE;
	}
	if (mq_remove(name) != 0)
		return fail(errno == ENOENT ? MQCTL_MISSING : MQCTL_RUNTIME, "%s", mq_errdetail());
	printf("removed: stale queue %s (%" PRIu64 " message%s lost)\n", name, depth,
	       depth == 1 ? "" : "s");
	return MQCTL_OK;
}

int cmd_check(int argc, char **argv)
{
	static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
	                                         {"unlink-stale", no_argument, NULL, 'u'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *name = queue_default();
	const char *name_from = getenv("MQ_QUEUE") && *getenv("MQ_QUEUE") ? "$MQ_QUEUE" : "-q";
	int unlink_it = 0, c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":q:uh", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			name = optarg;
			name_from = "-q";
			break;
		case 'u':
			unlink_it = 1;
			break;
		case 'h':
			check_usage(stdout);
			return MQCTL_OK;
		default:
			return opt_fail("check", c, argv);
		}
	}
	if (optind < argc)
		return usage_fail("check", "unexpected argument '%s'", argv[optind]);
	if (queue_name_check("check", name, name_from))
		return MQCTL_USAGE;

	/* The file first, read-only: what can be told of any file, even one
	 * that is no queue at all. */
	int fd = shm_open(name, O_RDONLY | O_CLOEXEC, 0);
	if (fd < 0 && errno == ENOENT) {
		printf("missing: queue %s not found — is mqbroker running?\n", name);
		return MQCTL_MISSING;
	}
	if (fd < 0)
		return fail(MQCTL_RUNTIME, "queue %s: cannot open /dev/shm%s: %s%s", name, name,
		            strerror(errno),
		            errno == EACCES
		                    ? " (check the queue's mode and group, or run as its owner)"
		                    : "");
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int err = errno;
		close(fd);
		return fail(MQCTL_RUNTIME, "queue %s: fstat: %s", name, strerror(err));
	}
	printf("file: /dev/shm%s, %lld bytes, mode %04o, uid %u, gid %u\n", name,
	       (long long)st.st_size, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
	       (unsigned)st.st_gid);
	check_header(fd, st.st_size);
	int broker = broker_lock_held(fd);
	close(fd);

	/* Then the whole segment, validated by libmq as any client would. */
	mq_t *q = attach_open(name, MQ_OPEN_OBSERVE);
	if (!q) {
		int err = errno;
		if (err == ENOENT) {
			printf("missing: queue %s was removed while we looked\n", name);
			return MQCTL_MISSING;
		}
		if (err != EPROTO)
			return fail(exit_for_errno(err) == MQCTL_USAGE ? MQCTL_RUNTIME
			                                               : exit_for_errno(err),
			            "%s", mq_errdetail());
		printf("segment: %s\n", mq_errdetail());
		printf("broker: %s\n",
		       broker > 0 ? "a live mqbroker holds the broker lock" : "none running");
		printf("damaged: queue %s cannot be used — 'mqbroker -n %s --recreate' replaces it "
		       "(its messages are lost)\n",
		       name, name);
		if (unlink_it)
			printf("not removed: queue %s is damaged, not stale\n", name);
		return MQCTL_DAMAGED;
	}

	struct mq_shm *s = q->shm;
	struct mq_stats stats;
	mq_stats(q, &stats);
	printf("geometry: %" PRIu64 " messages of up to %" PRIu64 " bytes, %" PRIu64
	       "-byte slots (ok)\n",
	       q->capacity, q->max_msg, q->slot_size);
	printf("indices: head %" PRIu64 ", tail %" PRIu64 ", %" PRIu64 " queued (ok)\n",
	       (uint64_t)mq_load_acquire(&s->head), (uint64_t)mq_load_acquire(&s->tail),
	       stats.depth);
	int alive = check_clients(q);
	char bdesc[160];
	int served = broker_describe(q, &stats, bdesc, sizeof(bdesc));
	printf("broker: %s\n", bdesc);

	int rc;
	if (served) {
		if (stats.broker_pid > 0)
			printf("healthy: queue %s is valid and served by mqbroker pid %d\n", name,
			       (int)stats.broker_pid);
		else
			printf("healthy: queue %s is valid and served by mqbroker\n", name);
		if (unlink_it)
			printf("not removed: queue %s is not stale\n", name);
		rc = MQCTL_OK;
	} else {
		printf("stale: queue %s is valid but no mqbroker serves it (%d live client%s) — "
		       "'mqbroker -n %s' adopts it, 'mqctl check -q %s --unlink-stale' removes "
		       "it\n",
		       name, alive, alive == 1 ? "" : "s", name, name);
		rc = unlink_it ? unlink_stale(q, name, stats.depth) : MQCTL_STALE;
	}
	mq_detach(q);
	return rc;
}
