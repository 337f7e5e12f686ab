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

#include "status.h"
#include "libmq_admin.h"
#include "mqctl.h"

/* The first bytes of every libmq segment: "LBQMSEG1" (little-endian) and the
 * layout version this mqctl's libmq reads (a layout change bumps it). */
#define SEG_MAGIC      UINT64_C(0x314745534d51424c)
#define SEG_HEADER_MIN 64

void check_usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqctl check [-q NAME] [--unlink-stale]\n"
	        "Check a queue's segment without using it (mqctl does not attach as a\n"
	        "client): the file, magic, layout version, geometry, positions and chunks,\n"
	        "the queue's two locks and their holders, the attached processes (alive or\n"
	        "dead) and the broker (alive or not). Prints one line per finding, then a\n"
	        "verdict line, and exits with it:\n"
	        "  healthy   valid, and a live mqbroker serves it                    exit 0\n"
	        "  missing   no such queue                                           exit 3\n"
	        "  damaged   corrupt, truncated, not a libmq queue, of another layout\n"
	        "            version, world-writable, or a lock or operation record\n"
	        "            left by a holder that is gone or is garbage (the line\n"
	        "            says which)                                             exit 6\n"
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
	if (size < SEG_HEADER_MIN ||
	    pread(fd, &magic, sizeof(magic), 0) != (ssize_t)sizeof(magic) ||
	    pread(fd, &version, sizeof(version), 8) != (ssize_t)sizeof(version)) {
		printf("header: %lld bytes, too short for a header\n", (long long)size);
		return;
	}
	if (magic != SEG_MAGIC) {
		printf("magic: 0x%016" PRIx64 ", not a libmq queue (want 0x%016" PRIx64 ")\n",
		       magic, SEG_MAGIC);
		return;
	}
	printf("magic: ok\n");
	printf("version: %u\n", version);
}

/* check_clients: one finding per entry of the client table; returns how many
 * live processes have the queue attached, their pids in LIVE (LEN bytes). */
static int check_clients(mq_t *q, char *live, size_t len)
{
	static struct mq_client_info c[MQ_CLIENTS_MAX];
	int n = mq_clients(q, c, MQ_CLIENTS_MAX);
	int alive = 0;
	live[0] = 0;
	for (int i = 0; i < n && i < MQ_CLIENTS_MAX; i++) {
		char leases[64] = "";
		if (c[i].in_flight)
			snprintf(leases, sizeof(leases), ", %" PRIu64 " leased", c[i].in_flight);
		printf("client: pid %d (%s, %" PRIu64 " sent, %" PRIu64 " received%s): %s\n",
		       c[i].pid, render_role(c[i].role), c[i].sent_total, c[i].received_total,
		       leases,
		       c[i].alive ? "alive" : "dead (the broker's sweep gives back what it held)");
		if (c[i].alive) {
			size_t used = strlen(live);
			snprintf(live + used, len - used, "%s%d", alive ? ", " : "", (int)c[i].pid);
			alive++;
		}
	}
	if (n <= 0)
		printf("clients: none attached\n");
	return alive;
}

/* unlink_stale: remove the stale queue Q (NAME) unless a process uses it. */
static int unlink_stale(mq_t *q, const char *name, uint64_t depth)
{
	/* Hold the broker lock while we decide: no mqbroker can adopt the
	 * queue between our look and the unlink. (Clients need no broker; one
	 * attaching in that instant keeps its mapping of the removed queue.) */
	if (mq_broker_lock(q) != 0) {
		if (errno == EAGAIN) {
			printf("not removed: an mqbroker started serving queue %s meanwhile\n",
			       name);
			return MQCTL_OK;
		}
		return fail(MQCTL_RUNTIME, "%s", mq_errdetail());
	}
	char live[256];
	static struct mq_client_info c[MQ_CLIENTS_MAX];
	int n = mq_clients(q, c, MQ_CLIENTS_MAX);
	int alive = 0;
	live[0] = 0;
	for (int i = 0; i < n && i < MQ_CLIENTS_MAX; i++) {
		if (!c[i].alive)
			continue;
		size_t used = strlen(live);
		snprintf(live + used, sizeof(live) - used, "%s%d", alive ? ", " : "",
		         (int)c[i].pid);
		alive++;
	}
	if (alive) {
		mq_broker_unlock(q);
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
	close(fd);

	/* Then the whole segment, validated by libmq as any client would. */
	mq_t *q = mq_observe(name);
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
		printf("broker: none running (it refuses a damaged queue too)\n");
		printf("damaged: queue %s cannot be used — 'mqbroker -n %s --recreate' replaces it "
		       "(its messages are lost)\n",
		       name, name);
		if (unlink_it)
			printf("not removed: queue %s is damaged, not stale\n", name);
		return MQCTL_DAMAGED;
	}

	struct mq_stats stats;
	struct mq_inspection in;
	if (mq_stats(q, &stats) != 0 || mq_inspect(q, &in) != 0) {
		int err = errno;
		mq_detach(q);
		return fail(exit_for_errno(err), "%s", mq_errdetail());
	}
	printf("geometry: %" PRIu64 " messages of up to %" PRIu64 " bytes, %" PRIu64
	       "-byte chunks%s (ok)\n",
	       in.capacity, in.max_msg_size, in.chunk_size, in.lifo ? ", large-message pool" : "");
	printf("positions: head %" PRIu64 ", tail %" PRIu64 ", %" PRIu64 " queued, %" PRIu64
	       " leased\n",
	       in.head, in.tail, stats.depth, stats.in_flight);
	printf("chunks: %" PRIu64 " free, %" PRIu64 " queued, %" PRIu64 " requeued, %" PRIu64
	       " leased, %" PRIu64 " reserved, %" PRIu64 " being copied out\n",
	       in.chunks_free, in.chunks_queued, in.chunks_requeued, in.chunks_leased,
	       in.chunks_writing, in.chunks_taking);
	if (in.chunks_orphaned)
		printf("orphans: %" PRIu64 " chunks held by clients that are gone (the next sweep "
		       "gives them back)\n",
		       in.chunks_orphaned);
	const struct mq_lock_info *locks[2] = {&in.send_lock, &in.recv_lock};
	for (int i = 0; i < 2; i++) {
		const struct mq_lock_info *l = locks[i];
		if (!l->word)
			printf("%s lock: free\n", i ? "receive" : "send");
		else
			printf("%s lock: held by %s%d (%s)\n", i ? "receive" : "send",
			       l->holder_pid >= 0 ? "pid " : "garbage ",
			       l->holder_pid >= 0 ? l->holder_pid : (int)l->word,
			       l->holder_alive ? "alive" : "gone");
	}
	char live[256];
	int alive = check_clients(q, live, sizeof(live));
	char bdesc[160];
	int served = broker_describe(q, &stats, bdesc, sizeof(bdesc));
	printf("broker: %s\n", bdesc);

	if (!in.sound) {
		printf("segment: queue %s: %s\n", name, in.problem);
		if ((in.send_lock.word && !in.send_lock.holder_alive) ||
		    (in.recv_lock.word && !in.recv_lock.holder_alive))
			printf("damaged: queue %s — the next client call on that lock takes it "
			       "over "
			       "and repairs what was left; if the damage stays, 'mqbroker -n %s "
			       "--recreate' replaces it (its messages are lost)\n",
			       name, name);
		else
			printf("damaged: queue %s cannot be used — 'mqbroker -n %s --recreate' "
			       "replaces it (its messages are lost)\n",
			       name, name);
		if (unlink_it)
			printf("not removed: queue %s is damaged, not stale\n", name);
		mq_detach(q);
		return MQCTL_DAMAGED;
	}
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
