/* main.c - mqbench: options, the plan of runs, repetitions, progress and the final report. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <libmq.h>

#include "harness.h"
#include "report.h"
#include "transport.h"
#include "workloads.h"

/* clang-format off */
const struct transport *const transports[] = {
        &transport_libmq,
        &transport_libmq_nospin,
        &transport_libmq_notiq,
        &transport_libmq_batch32,
        &transport_libmq_lease,
        &transport_libmq_zcopy,
        &transport_libmq_epoll,
        &transport_mqueue,
        &transport_pipe,
        &transport_socketpair,
        &transport_textbook10,
        &transport_textbook,
        &transport_zmq,
        &transport_spsc,
        &transport_spsc_batch32,
        NULL,
};
/* clang-format on */

/* The limits: rows that are not transports. */
static const struct {
	const char *key;
	enum limit limit;
	enum workload w;
	const char *title;
} limits[] = {
        {"memcpy", L_MEMCPY, W_TPUT1M, "limit: memcpy, 1 MiB blocks, 2 x 64 MiB"},
        {"memcpy-hot", L_MEMCPY_HOT, W_TPUT1M, "limit: memcpy, one 1 MiB block (cache-hot)"},
        {"cacheline", L_CACHELINE, W_RTT64, "limit: cache-line ping-pong"},
};
#define NLIMITS (int)(sizeof(limits) / sizeof(limits[0]))

#define MAXCELLS 64

struct options {
	int pin;
	int reps;
	double seconds;
	uint64_t messages;
	size_t capacity, capacity_1m;
	unsigned spin_us;
	int json, smoke, quiet;
	int cpu_given, cpu[2];
	int capacity_given, capacity_1m_given;
	char only[512];
	char workloads[256];
	char queue[MQ_NAME_MAX + 1]; /* --queue: an existing queue, or "" */
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqbench [OPTION]...\n"
	        "Benchmark libmq against POSIX mqueue, a pipe, a Unix socketpair, the textbook\n"
	        "three-semaphore queue and ZeroMQ, with separate producer and consumer processes;\n"
	        "every message is stamped with a sequence number and checked on receipt.\n"
	        "Prints a Markdown table (or JSON) with the median of the repetitions, their\n"
	        "spread and the ratios to the targets of DESIGN.md. Progress goes to stderr.\n"
	        "\n"
	        "Options:\n"
	        "  --pin              pin producers (and the pinger) to one CPU and consumers "
	        "(and\n"
	        "                     the ponger) to another (the default)\n"
	        "  --no-pin           let the scheduler place the processes\n"
	        "  --cpus A,B         the two CPUs to pin to (default: the first two allowed)\n"
	        "  --reps N           repetitions of every run (default 5, at most %d)\n"
	        "  --seconds S        measure each run for S seconds (default 0.5)\n"
	        "  --messages N       measure each run over N messages instead (round trips for\n"
	        "                     rtt64, 1 MiB blocks for memcpy; 4+4 splits N over "
	        "producers)\n"
	        "  --capacity N       queue depth in messages for 64 B and 4 KiB (default 1024)\n"
	        "  --capacity-1m N    queue depth for 1 MiB messages (default 64)\n"
	        "  --spin-us N        libmq spin before sleeping, for the \"libmq\" rows (default "
	        "%u;\n"
	        "                     \"libmq-nospin\" always uses 0)\n"
	        "  --only T[,T...]    only these transports / limits (default: all):\n",
	        REPORT_MAXREPS, (unsigned)MQ_DEFAULT_SPIN_US);
	for (int i = 0; transports[i]; i++)
		fprintf(f, "                     %-13s %s%s\n", transports[i]->name,
		        transports[i]->title,
		        transports[i] == &transport_textbook ? ", at libmq's capacity" : "");
	for (int i = 0; i < NLIMITS; i++)
		fprintf(f, "                     %-13s %s\n", limits[i].key, limits[i].title);
	fprintf(f, "  --workload W[,W...] only these workloads (default: all):\n");
	for (int w = 0; w < W_COUNT; w++)
		fprintf(f, "                     %-8s %s\n", workloads[w].name, workloads[w].title);
	fprintf(f,
	        "  --queue NAME       the libmq rows attach to the existing queue NAME (made by\n"
	        "                     a running mqbroker) instead of creating their own; needs\n"
	        "                     --only with libmq and/or libmq-nospin only, and --workload\n"
	        "                     without rtt64 (which needs two queues); the queue must be\n"
	        "                     empty, have no other producer or consumer, and take the\n"
	        "                     workload's messages; its capacity replaces --capacity.\n"
	        "                     E.g. --queue /q --only libmq --workload tput64\n"
	        "  --json             print JSON instead of the Markdown table\n"
	        "  --quiet            no progress lines on stderr\n"
	        "  --smoke            correctness only: every transport and workload once with\n"
	        "                     tiny counts and small queues (wrap-around, blocking); does\n"
	        "                     not write /proc/sys; exits 1 on any error (for ctest)\n"
	        "  --help             this text\n"
	        "\n"
	        "POSIX mqueue: when root (and not --smoke), /proc/sys/fs/mqueue/msg_max and\n"
	        "msgsize_max are raised for the run if lower than needed and restored at exit;\n"
	        "RLIMIT_MSGQUEUE is raised for mqbench itself. Where a limit still refuses the\n"
	        "depth asked for, the deepest queue allowed is used and its depth reported; where\n"
	        "it refuses the message size, that run is reported as skipped.\n"
	        "\n"
	        "Exit status: 0 all runs checked out (targets missed are reported, not failed),\n"
	        "1 a run failed (a lost, duplicated, reordered or corrupt message, a crash, a\n"
	        "timeout), 2 usage error (or a --queue that is missing or cannot carry the\n"
	        "workload).\n");
}

static void usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "mqbench: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\nTry 'mqbench --help' for the options.\n");
	exit(2);
}

static uint64_t parse_u64(const char *opt, const char *s, uint64_t min, uint64_t max)
{
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-' || v < min || v > max) {
		char msg[160];
		snprintf(msg, sizeof(msg),
		         "%s wants a whole number from %" PRIu64 " to %" PRIu64 ", not '%%s'", opt,
		         min, max);
		usage_error(msg, s);
	}
	return v;
}

static int in_list(const char *list, const char *name)
{
	if (!list[0])
		return 1;
	size_t n = strlen(name);
	for (const char *p = list; *p;) {
		const char *comma = strchr(p, ',');
		size_t len = comma ? (size_t)(comma - p) : strlen(p);
		if (len == n && !strncmp(p, name, n))
			return 1;
		p += len + (comma != NULL);
	}
	return 0;
}

/* check_list: every name in LIST must be one of the known ones. */
static void check_list(const char *opt, const char *list, int transports_too)
{
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", list);
	for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		int ok = 0;
		if (transports_too) {
			for (int i = 0; transports[i]; i++)
				ok |= !strcmp(tok, transports[i]->name);
			for (int i = 0; i < NLIMITS; i++)
				ok |= !strcmp(tok, limits[i].key);
		} else {
			for (int w = 0; w < W_COUNT; w++)
				ok |= !strcmp(tok, workloads[w].name);
		}
		if (!ok) {
			char msg[96];
			snprintf(msg, sizeof(msg), "%s: unknown name '%%s'", opt);
			usage_error(msg, tok);
		}
	}
}

/* check_queue_selection: --queue drives the libmq transports only, and one
 * queue cannot carry a round trip. */
static void check_queue_selection(const struct options *o)
{
	if (!o->only[0])
		usage_error("%s", "--queue needs --only libmq (or libmq-nospin): the other "
		                  "transports cannot use a libmq queue");
	char copy[512];
	snprintf(copy, sizeof(copy), "%s", o->only);
	for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save))
		if (strcmp(tok, transport_libmq.name) && strcmp(tok, transport_libmq_nospin.name))
			usage_error("--queue: '%s' cannot use a libmq queue; --only may name "
			            "libmq and libmq-nospin only",
			            tok);
	if (!o->workloads[0])
		usage_error("%s", "--queue needs --workload (tput64, tput4k, tput1m or mpmc64; "
		                  "not rtt64, which needs two queues)");
	if (in_list(o->workloads, workloads[W_RTT64].name))
		usage_error("%s", "--queue: rtt64 needs two queues (one each way); choose "
		                  "tput64, tput4k, tput1m or mpmc64");
}

/* adopt_queue: with --queue, read the queue's geometry once, refuse a queue
 * that cannot carry the selected workloads, and run at its capacity. */
static void adopt_queue(struct options *o)
{
	char err[600], msg[800];
	size_t capacity, max_msg;
	if (libmq_queue_probe(o->queue, &capacity, &max_msg, err, sizeof(err))) {
		fprintf(stderr, "mqbench: --queue: %s\n", err);
		exit(2);
	}
	for (int w = 0; w < W_COUNT; w++) {
		if (!in_list(o->workloads, workloads[w].name) || workloads[w].msg_size <= max_msg)
			continue;
		snprintf(msg, sizeof(msg),
		         "--queue: queue %%s takes messages of up to %zu bytes, workload %s sends "
		         "%zu-byte messages (start mqbroker with --max-msg %zu or more)",
		         max_msg, workloads[w].name, workloads[w].msg_size, workloads[w].msg_size);
		usage_error(msg, o->queue);
	}
	const char *opt = NULL;
	size_t want = 0;
	if (o->capacity_given && o->capacity != capacity)
		opt = "--capacity", want = o->capacity;
	else if (o->capacity_1m_given && o->capacity_1m != capacity)
		opt = "--capacity-1m", want = o->capacity_1m;
	if (opt) {
		snprintf(msg, sizeof(msg),
		         "--queue: queue %%s holds %zu messages, not the %zu of %s (its broker "
		         "sets the capacity: leave %s out, or start mqbroker with --capacity %zu)",
		         capacity, want, opt, opt, want);
		usage_error(msg, o->queue);
	}
	o->capacity = o->capacity_1m = capacity;
}

static void parse_options(int argc, char **argv, struct options *o)
{
	enum {
		O_PIN = 256,
		O_NOPIN,
		O_CPUS,
		O_REPS,
		O_SECONDS,
		O_MESSAGES,
		O_CAP,
		O_CAP1M,
		O_SPIN,
		O_ONLY,
		O_WORKLOAD,
		O_QUEUE,
		O_JSON,
		O_QUIET,
		O_SMOKE,
		O_HELP
	};
	static const struct option longopts[] = {
	        {"pin", no_argument, NULL, O_PIN},
	        {"no-pin", no_argument, NULL, O_NOPIN},
	        {"cpus", required_argument, NULL, O_CPUS},
	        {"reps", required_argument, NULL, O_REPS},
	        {"seconds", required_argument, NULL, O_SECONDS},
	        {"messages", required_argument, NULL, O_MESSAGES},
	        {"capacity", required_argument, NULL, O_CAP},
	        {"capacity-1m", required_argument, NULL, O_CAP1M},
	        {"spin-us", required_argument, NULL, O_SPIN},
	        {"only", required_argument, NULL, O_ONLY},
	        {"workload", required_argument, NULL, O_WORKLOAD},
	        {"queue", required_argument, NULL, O_QUEUE},
	        {"json", no_argument, NULL, O_JSON},
	        {"quiet", no_argument, NULL, O_QUIET},
	        {"smoke", no_argument, NULL, O_SMOKE},
	        {"help", no_argument, NULL, O_HELP},
	        {NULL, 0, NULL, 0},
	};
	int seconds_given = 0;
	opterr = 0;
	for (;;) {
		int idx = optind, c = getopt_long(argc, argv, ":", longopts, NULL);
		if (c == -1)
			break;
		char *end;
		switch (c) {
		case O_PIN:
			o->pin = 1;
			break;
		case O_NOPIN:
			o->pin = 0;
			break;
		case O_CPUS:
			if (sscanf(optarg, "%d,%d", &o->cpu[0], &o->cpu[1]) != 2 || o->cpu[0] < 0 ||
			    o->cpu[1] < 0)
				usage_error("--cpus wants two CPU numbers, A,B, not '%s'", optarg);
			o->cpu_given = 1;
			break;
		case O_REPS:
			o->reps = (int)parse_u64("--reps", optarg, 1, REPORT_MAXREPS);
			break;
		case O_SECONDS:
			errno = 0;
			o->seconds = strtod(optarg, &end);
			if (errno || end == optarg || *end ||
			    !(o->seconds > 0 && o->seconds <= 3600))
				usage_error("--seconds wants a number of seconds above 0 (at most "
				            "3600), not '%s'",
				            optarg);
			seconds_given = 1;
			break;
		case O_MESSAGES:
			o->messages = parse_u64("--messages", optarg, 1, UINT64_C(1) << 40);
			break;
		case O_CAP:
			o->capacity = parse_u64("--capacity", optarg, 1, 1u << 20);
			o->capacity_given = 1;
			break;
		case O_CAP1M:
			o->capacity_1m = parse_u64("--capacity-1m", optarg, 1, 1024);
			o->capacity_1m_given = 1;
			break;
		case O_SPIN:
			o->spin_us = (unsigned)parse_u64("--spin-us", optarg, 0, 1000000);
			break;
		case O_ONLY:
			check_list("--only", optarg, 1);
			snprintf(o->only, sizeof(o->only), "%s", optarg);
			break;
		case O_WORKLOAD:
			check_list("--workload", optarg, 0);
			snprintf(o->workloads, sizeof(o->workloads), "%s", optarg);
			break;
		case O_QUEUE:
			if (optarg[0] != '/' || !optarg[1] || strchr(optarg + 1, '/') ||
			    strlen(optarg) > MQ_NAME_MAX)
				usage_error(
				        "--queue wants a queue name, \"/\" and 1..250 characters "
				        "with no other \"/\", not '%s'",
				        optarg);
			snprintf(o->queue, sizeof(o->queue), "%s", optarg);
			break;
		case O_JSON:
			o->json = 1;
			break;
		case O_QUIET:
			o->quiet = 1;
			break;
		case O_SMOKE:
			o->smoke = 1;
			break;
		case O_HELP:
			usage(stdout);
			exit(0);
		case ':':
			usage_error("option '%s' needs a value", argv[idx]);
			break;
		default:
			usage_error("unknown option '%s'", argv[idx]);
		}
	}
	if (optind < argc)
		usage_error("unexpected argument '%s' (mqbench takes options only)", argv[optind]);
	if (seconds_given && o->messages)
		usage_error("%s", "--seconds and --messages exclude each other");
	if (o->queue[0])
		check_queue_selection(o);
}

/* ---- the plan ---- */

static int plan(const struct options *o, struct cell *cells)
{
	int n = 0;
	for (int w = 0; w < W_COUNT; w++) {
		if (!in_list(o->workloads, workloads[w].name))
			continue;
		for (int i = 0; transports[i]; i++) {
			const struct transport *t = transports[i];
			if (!in_list(o->only, t->name) || (t->only_w && !(t->only_w & (1u << w))))
				continue;
			struct cell *c = &cells[n++];
			memset(c, 0, sizeof(*c));
			c->w = (enum workload)w;
			c->t = t;
			c->key = t->name;
			size_t cap = (t->flags & T_CAP10) ? 10
			             : w == W_TPUT1M      ? o->capacity_1m
			                                  : o->capacity;
			if (t == &transport_textbook)
				snprintf(c->title, sizeof(c->title), "%s, cap %zu", t->title, cap);
			else
				snprintf(c->title, sizeof(c->title), "%s", t->title);
		}
		for (int i = 0; i < NLIMITS; i++) {
			if (limits[i].w != (enum workload)w || !in_list(o->only, limits[i].key))
				continue;
			struct cell *c = &cells[n++];
			memset(c, 0, sizeof(*c));
			c->w = (enum workload)w;
			c->limit = limits[i].limit;
			c->key = limits[i].key;
			snprintf(c->title, sizeof(c->title), "%s", limits[i].title);
		}
	}
	return n;
}

/* Smoke counts: enough to wrap small queues many times, little enough for
 * sanitizer builds. */
static uint64_t smoke_messages(const struct cell *c)
{
	if (c->limit == L_MEMCPY || c->limit == L_MEMCPY_HOT)
		return 8;
	if (c->limit == L_CACHELINE)
		return 2000;
	switch (c->w) {
	case W_TPUT64:
	case W_MPMC64:
		return 2000;
	case W_TPUT4K:
		return 300;
	case W_TPUT1M:
		return 12;
	case W_RTT64:
		return 200;
	default:
		return 100;
	}
}

static void make_spec(const struct options *o, const struct cell *c, int run_id, int cpus[2],
                      struct run_spec *s)
{
	/* c->w < W_COUNT (cells are made from the table); the bound is for
	 * gcc's -Warray-bounds, which cannot see that through the inlining. */
	const struct workload_info *wi = &workloads[c->w < W_COUNT ? c->w : W_TPUT64];
	memset(s, 0, sizeof(*s));
	s->w = c->w;
	s->t = c->t;
	s->limit = c->limit;
	s->msg_size = wi->msg_size;
	s->nprod = wi->nprod;
	s->ncons = wi->ncons;
	s->capacity = c->t && (c->t->flags & T_CAP10) ? 10
	              : c->w == W_TPUT1M              ? o->capacity_1m
	                                              : o->capacity;
	s->spin_us = c->t && (c->t->flags & T_NOSPIN) ? 0 : o->spin_us;
	s->seconds = o->seconds;
	s->messages = o->messages ? o->messages : o->smoke ? smoke_messages(c) : 0;
	s->warm = wi->rtt ? (o->smoke ? 10 : 1000) : s->capacity;
	if (c->limit == L_CACHELINE)
		s->warm = o->smoke ? 100 : 10000;
	s->cpu[0] = o->pin ? cpus[0] : -1;
	s->cpu[1] = o->pin ? cpus[1] : -1;
	s->deadline_s = o->smoke ? 20 : (o->messages ? 600 : 4 * o->seconds + 30);
	s->run_id = run_id;
	s->queue = o->queue[0] ? o->queue : NULL;
	s->memcpy_ws = c->limit == L_MEMCPY_HOT ? wi->msg_size
	               : o->smoke               ? 4 * wi->msg_size
	                                        : (size_t)64 << 20;
}

static void record(struct cell *c, int rep, const struct run_result *r)
{
	if (r->status == RUN_FAILED) {
		if (!c->failed)
			snprintf(c->why, sizeof(c->why), "%s", r->why);
		c->failed = 1;
		return;
	}
	if (r->status == RUN_SKIPPED) {
		if (!c->skipped && !c->failed)
			snprintf(c->why, sizeof(c->why), "%s", r->why);
		c->skipped = 1;
		return;
	}
	int k = c->n++;
	c->rep[k] = rep;
	if (c->w == W_RTT64) {
		c->v[k] = r->p50_us;
		c->v2[k] = r->p99_us;
	} else if (c->w == W_TPUT64 || c->w == W_MPMC64) {
		c->v[k] = r->msgs_per_s;
	} else {
		c->v[k] = r->mb_per_s;
	}
	if (c->w == W_MPMC64) {
		const struct workload_info *wi = &workloads[c->w];
		double cons = r->share_min * wi->ncons, prod = r->pshare_min * wi->nprod;
		c->sh[k] = cons < prod ? cons : prod;
		c->cmin[k] = r->share_min;
		c->cmax[k] = r->share_max;
	}
	if (c->t && r->depth) {
		if (!c->depth_max || r->depth < c->depth_min)
			c->depth_min = r->depth;
		if (r->depth > c->depth_max)
			c->depth_max = r->depth;
	}
}

static void progress(const struct options *o, int rep, const struct cell *c,
                     const struct run_result *r)
{
	if (o->quiet)
		return;
	char a[32], b[32];
	fprintf(stderr, "mqbench: rep %d/%d %-7s %-40s ", rep + 1, o->reps, workloads[c->w].name,
	        c->title);
	if (r->status == RUN_FAILED)
		fprintf(stderr, "FAILED: %s\n", r->why);
	else if (r->status == RUN_SKIPPED)
		fprintf(stderr, "skipped: %s\n", r->why);
	else if (c->w == W_RTT64) {
		report_format(a, sizeof(a), r->p50_us, "us");
		report_format(b, sizeof(b), r->p99_us, "us");
		fprintf(stderr, "p50 %s us, p99 %s us (%" PRIu64 " round trips)\n", a, b, r->msgs);
	} else if (c->limit != L_NONE) {
		fprintf(stderr, "%.0f MB/s\n", r->mb_per_s);
	} else {
		report_format(a, sizeof(a), r->msgs_per_s, "msgs/s");
		fprintf(stderr, "%s msgs/s, %.0f MB/s (%" PRIu64 " messages in %.3f s)\n", a,
		        r->mb_per_s, r->msgs, r->seconds);
	}
}

/* ---- the header ---- */

static void describe_machine(char *buf, size_t len)
{
	char model[160] = "unknown CPU";
	FILE *f = fopen("/proc/cpuinfo", "r");
	if (f) {
		char line[512];
		while (fgets(line, sizeof(line), f)) {
			char *colon = strchr(line, ':');
			if (!strncmp(line, "model name", 10) && colon) {
				colon += 1 + (colon[1] == ' ');
				colon[strcspn(colon, "\n")] = '\0';
				snprintf(model, sizeof(model), "%s", colon);
				break;
			}
		}
		fclose(f);
	}
	struct utsname u;
	uname(&u);
	long mem = sysconf(_SC_PHYS_PAGES) / 1024 * (sysconf(_SC_PAGESIZE) / 1024);
	snprintf(buf, len, "%ld CPUs (nproc), %s, %ld MiB RAM, %s %s %s",
	         sysconf(_SC_NPROCESSORS_ONLN), model, mem, u.sysname, u.release, u.machine);
}

static char *join_args(int argc, char **argv)
{
	size_t len = 1;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 3;
	char *s = malloc(len), *p = s;
	if (!s)
		return NULL;
	for (int i = 0; i < argc; i++) {
		const char *a = i == 0 ? "mqbench" : argv[i];
		int quote = strpbrk(a, " \t'\"") != NULL;
		p += sprintf(p, "%s%s%s%s", i ? " " : "", quote ? "'" : "", a, quote ? "'" : "");
	}
	return s;
}

int main(int argc, char **argv)
{
	struct options o = {.pin = 1,
	                    .reps = 5,
	                    .seconds = 0.5,
	                    .capacity = 1024,
	                    .capacity_1m = 64,
	                    .spin_us = MQ_DEFAULT_SPIN_US};
	parse_options(argc, argv, &o);
	if (o.smoke) {
		o.reps = 1;
		if (o.capacity == 1024)
			o.capacity = 8;
		if (o.capacity_1m == 64)
			o.capacity_1m = 4;
	}
	if (o.queue[0])
		adopt_queue(&o);
	cleanup_install();

	static struct cell cells[MAXCELLS];
	int ncells = plan(&o, cells);
	if (ncells == 0)
		usage_error("%s", "nothing to run: --only and --workload select no row");

	int cpus[2], ncpu = harness_cpus(cpus);
	if (o.cpu_given) {
		char cpu[16];
		for (int k = 0; k < 2; k++)
			if (!harness_cpu_allowed(o.cpu[k])) {
				snprintf(cpu, sizeof(cpu), "%d", o.cpu[k]);
				usage_error("--cpus: CPU %s is not one this process may run on",
				            cpu);
			}
		cpus[0] = o.cpu[0];
		cpus[1] = o.cpu[1];
	} else if (o.pin && ncpu < 2) {
		fprintf(stderr, "mqbench: only one CPU available: both sides pinned to CPU %d\n",
		        cpus[0]);
	}

	int want_mq = 0;
	size_t mq_size = 64;
	for (int i = 0; i < ncells; i++)
		if (cells[i].t == &transport_mqueue) {
			want_mq = 1;
			if (workloads[cells[i].w].msg_size > mq_size)
				mq_size = workloads[cells[i].w].msg_size;
		}
	if (want_mq) {
		size_t depth = o.capacity > o.capacity_1m ? o.capacity : o.capacity_1m;
		mqueue_limits_prepare(depth, mq_size, !o.smoke);
	}

	struct report_cfg cfg = {0};
	cfg.command = join_args(argc, argv);
	describe_machine(cfg.machine, sizeof(cfg.machine));
	time_t now = time(NULL);
	strftime(cfg.date, sizeof(cfg.date), "%Y-%m-%d %H:%M:%S %z", localtime(&now));
	cfg.reps = o.reps;
	cfg.seconds = o.seconds;
	cfg.messages = o.smoke && !o.messages ? 0 : o.messages;
	cfg.capacity = o.capacity;
	cfg.capacity_1m = o.capacity_1m;
	cfg.spin_us = o.spin_us;
	cfg.pinned = o.pin;
	cfg.cpu[0] = cpus[0];
	cfg.cpu[1] = cpus[1];
	cfg.smoke = o.smoke;
	cfg.mq_note = mqueue_limits_note();
	cfg.queue = o.queue[0] ? o.queue : NULL;
	snprintf(cfg.versions, sizeof(cfg.versions), "%s; %s", libmq_version_note(),
	         zmq_version_note());

	/* Repetitions outermost, so a drift of the machine spreads over every row. */
	int run_id = 0, failures = 0;
	for (int rep = 0; rep < o.reps; rep++) {
		for (int i = 0; i < ncells; i++) {
			struct run_spec s;
			struct run_result r;
			make_spec(&o, &cells[i], run_id++, cpus, &s);
			run_once(&s, &r);
			failures += r.status == RUN_FAILED;
			record(&cells[i], rep, &r);
			progress(&o, rep, &cells[i], &r);
		}
	}

	if (o.json)
		report_json(stdout, &cfg, cells, ncells);
	else
		report_markdown(stdout, &cfg, cells, ncells);
	fflush(stdout);
	if (failures) {
		fprintf(stderr, "mqbench: %d run%s failed:\n", failures, failures == 1 ? "" : "s");
		for (int i = 0; i < ncells; i++)
			if (cells[i].failed)
				fprintf(stderr, "  %s %s: %s\n", workloads[cells[i].w].name,
				        cells[i].title, cells[i].why);
	}
	free((void *)cfg.command);
	return failures ? 1 : 0;
}
