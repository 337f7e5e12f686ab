/* cmd_stats.c - mqctl stats (table or the /status JSON), and the sampling watch shares. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"
#include "libmq_admin.h"
#include "mqctl.h"

#define SAMPLE_DEFAULT_MS 1000

void stats_usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqctl stats [-q NAME] [--json] [--sample MS]\n"
	        "Show a queue's statistics, read from its segment (no broker needed; mqctl\n"
	        "does not attach as a client): depth, capacity, totals, rates, blocked and\n"
	        "recovery counts, how long the oldest waiting message has waited, how long\n"
	        "messages waited before they were taken (time in queue: p50, p90, p99,\n"
	        "max), the broker and the attached clients.\n"
	        "\n"
	        "  -q, --queue NAME   queue (default $MQ_QUEUE, else %s)\n"
	        "  -j, --json         print one JSON object: the queue's element of the\n"
	        "                     broker's GET /status \"queues\" list (same keys), plus\n"
	        "                     \"rates_sample_s\", the window the rates were measured on,\n"
	        "                     and \"time_in_queue_window\" (see below)\n"
	        "  -s, --sample MS    measure over MS milliseconds: two readings MS apart\n"
	        "                     (default %d; 0 = at once, rates 0). mqctl has no\n"
	        "                     history, so the \"1s\", \"10s\" and \"60s\" rates of\n"
	        "                     --json all hold this one measurement\n"
	        "  -h, --help         this help\n"
	        "\n"
	        "Time in queue covers the messages measured during the sample when there were\n"
	        "any (\"time_in_queue_window\": \"sample\", \"window_s\" the sample), else\n"
	        "every message measured since the queue was created (\"lifetime\", \"window_s\"\n"
	        "the queue's age); the table says which. Percentiles are read from a\n"
	        "histogram, within 25 %% of the truth.\n"
	        "\n"
	        "Examples:\n"
	        "  mqctl stats                      a table\n"
	        "  mqctl stats --json --sample 0    JSON at once, e.g. for jq\n"
	        "\n" MQCTL_EXIT_HELP,
	        MQ_DEFAULT_NAME, SAMPLE_DEFAULT_MS);
}

void sample_take(mq_t *q, struct sample *s)
{
	mq_stats(q, &s->st);
	s->have_tiq = mq_time_in_queue(q, &s->tiq) == 0;
	s->t = now_mono();
}

enum tiq_span sample_tiq(const struct sample *a, const struct sample *b, struct tiq_summary *out,
                         double *span_s)
{
	memset(out, 0, sizeof(*out));
	*span_s = 0;
	if (!b->have_tiq)
		return TIQ_NONE;
	if (a && a->have_tiq && b->tiq.count > a->tiq.count) {
		struct mq_time_in_queue w;
		tiq_diff(&b->tiq, &a->tiq, &w);
		tiq_summarize(&w, out);
		*span_s = b->t - a->t;
		return TIQ_WINDOW;
	}
	tiq_summarize(&b->tiq, out);
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	double age = (double)now.tv_sec + (double)now.tv_nsec / 1e9 -
	             (double)b->st.created_unix_ns / 1e9;
	*span_s = age > 0 ? age : 0;
	return TIQ_LIFETIME;
}

void tiq_text(const struct tiq_summary *sum, char *buf, size_t n)
{
	char p50[24], p90[24], p99[24], max[24];
	seconds_text(sum->p50, p50, sizeof(p50));
	seconds_text(sum->p90, p90, sizeof(p90));
	seconds_text(sum->p99, p99, sizeof(p99));
	seconds_text(sum->max, max, sizeof(max));
	snprintf(buf, n, "p50 %s  p90 %s  p99 %s  max %s", p50, p90, p99, max);
}

void sample_rates(const struct sample *a, const struct sample *b, double *enq, double *deq)
{
	double dt = b->t - a->t;
	*enq = *deq = 0;
	if (dt <= 0)
		return;
	*enq = (double)(b->st.enqueued_total - a->st.enqueued_total) / dt;
	*deq = (double)(b->st.dequeued_total - a->st.dequeued_total) / dt;
}

int broker_describe(mq_t *q, const struct mq_stats *st, char *buf, size_t n)
{
	int held = mq_broker_alive(q);
	if (held < 0) {
		snprintf(buf, n, "unknown (cannot test the broker lock: %s)", strerror(errno));
		return 0;
	}
	if (held) {
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		int64_t age_ns =
		        (int64_t)now.tv_sec * 1000000000 + now.tv_nsec - st->broker_heartbeat_ns;
		char pid[32] = "pid unknown";
		if (st->broker_pid > 0)
			snprintf(pid, sizeof(pid), "pid %d", (int)st->broker_pid);
		if (st->broker_heartbeat_ns > 0)
			snprintf(buf, n, "%s, alive, heartbeat %.1f s ago", pid,
			         (double)age_ns / 1e9);
		else
			snprintf(buf, n, "%s, alive", pid);
		return 1;
	}
	if (st->broker_pid > 0)
		snprintf(buf, n, "none running (pid %d recorded; it did not stop cleanly)",
		         (int)st->broker_pid);
	else
		snprintf(buf, n, "none running");
	return 0;
}

/* print_table: the readable form (SPAN: what v->tiq_window covers). */
static void print_table(mq_t *q, const char *name, const struct broker_view *v, double sample_s,
                        enum tiq_span span)
{
	const struct mq_stats *s = &v->stats;
	char broker[160], created[64] = "?";
	broker_describe(q, s, broker, sizeof(broker));
	time_t ct = (time_t)(s->created_unix_ns / 1000000000);
	struct tm tm;
	if (localtime_r(&ct, &tm))
		strftime(created, sizeof(created), "%Y-%m-%d %H:%M:%S %z", &tm);

	printf("queue %s%s\n", name,
	       queue_unlinked(q) ? " (removed from /dev/shm while we looked)" : "");
	printf("  depth        %" PRIu64 " of %" PRIu64 " messages (%.1f%%), high water %" PRIu64
	       "\n",
	       s->depth, s->capacity,
	       s->capacity ? 100.0 * (double)s->depth / (double)s->capacity : 0, s->high_water);
	printf("  max message  %" PRIu64 " bytes\n", s->max_msg_size);
	printf("  enqueued     %" PRIu64 " messages, %" PRIu64 " bytes\n", s->enqueued_total,
	       s->bytes_enqueued_total);
	printf("  dequeued     %" PRIu64 " messages, %" PRIu64 " bytes\n", s->dequeued_total,
	       s->bytes_dequeued_total);
	if (sample_s > 0)
		printf("  rates        %.1f enqueued/s, %.1f dequeued/s (over %.1f s)\n",
		       v->enq_rate[0], v->deq_rate[0], sample_s);
	else
		printf("  rates        not measured (--sample 0)\n");
	char age[24], tiq[128];
	seconds_text((double)s->oldest_age_ns / 1e9, age, sizeof(age));
	if (s->depth == 0)
		printf("  oldest       no message waiting\n");
	else if (s->oldest_age_ns == 0)
		printf("  oldest       age unknown (the oldest message carries no send time)\n");
	else
		printf("  oldest       %s waiting\n", age);
	const struct tiq_summary *w = &v->tiq_window;
	tiq_text(w, tiq, sizeof(tiq));
	if (span == TIQ_NONE)
		printf("  in queue     not measured (this machine cannot read the queue's "
		       "clock)\n");
	else if (span == TIQ_WINDOW)
		printf("  in queue     %s  (%" PRIu64
		       " message%s measured during the %.1f s sample)\n",
		       tiq, w->count, w->count == 1 ? "" : "s", v->tiq_window_s);
	else if (w->count > 0)
		printf("  in queue     %s  (%" PRIu64
		       " message%s measured since the queue was created; none during the sample)\n",
		       tiq, w->count, w->count == 1 ? "" : "s");
	else
		printf("  in queue     no message measured since the queue was created\n");
	printf("  waits        %" PRIu64 " blocked sends, %" PRIu64
	       " blocked receives; found full %" PRIu64 ", found empty %" PRIu64 "\n",
	       s->blocked_sends_total, s->blocked_recvs_total, s->full_total, s->empty_total);
	printf("  leases       %" PRIu64 " in flight; %" PRIu64 " acked, %" PRIu64
	       " nacked, %" PRIu64 " delivered again\n",
	       s->in_flight, s->acked_total, s->nacked_total, s->redelivered_total);
	printf("  recoveries   %" PRIu64 " dead clients cleaned up, %" PRIu64 " lock repairs\n",
	       s->recoveries_total, s->lock_repairs_total);
	printf("  broker       %s\n", broker);
	printf("  created      %s\n", created);
	printf("  clients      %u attached: %u producing, %u consuming\n", s->clients, s->producers,
	       s->consumers);
	if (v->nclients > 0)
		printf("  %8s  %-8s  %-5s  %12s  %12s  %9s  %10s\n", "PID", "ROLE", "ALIVE", "SENT",
		       "RECEIVED", "IN FLIGHT", "OLDEST");
	for (int i = 0; i < v->nclients; i++) {
		const struct mq_client_info *c = &v->clients[i];
		char oldest[32] = "-";
		if (c->in_flight)
			snprintf(oldest, sizeof(oldest), "%.1f s",
			         (double)c->oldest_lease_age_ns / 1e9);
		printf("  %8d  %-8s  %-5s  %12" PRIu64 "  %12" PRIu64 "  %9" PRIu64 "  %10s\n",
		       (int)c->pid, render_role(c->role), c->alive ? "yes" : "no", c->sent_total,
		       c->received_total, c->in_flight, oldest);
	}
}

int cmd_stats(int argc, char **argv)
{
	static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
	                                         {"json", no_argument, NULL, 'j'},
	                                         {"sample", required_argument, NULL, 's'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *name = queue_default();
	const char *name_from = getenv("MQ_QUEUE") && *getenv("MQ_QUEUE") ? "$MQ_QUEUE" : "-q";
	long long sample_ms = SAMPLE_DEFAULT_MS;
	int json = 0, c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":q:js:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			name = optarg;
			name_from = "-q";
			break;
		case 'j':
			json = 1;
			break;
		case 's':
			if (parse_ll(optarg, 0, 60000, &sample_ms))
				return usage_fail("stats", "bad --sample '%s' (want 0..60000 ms)",
				                  optarg);
			break;
		case 'h':
			stats_usage(stdout);
			return MQCTL_OK;
		default:
			return opt_fail("stats", c, argv);
		}
	}
	if (optind < argc)
		return usage_fail("stats", "unexpected argument '%s'", argv[optind]);
	if (queue_name_check("stats", name, name_from))
		return MQCTL_USAGE;

	mq_t *q;
	int rc = queue_open(name, 1, &q);
	if (rc)
		return rc;
	struct sample a, b;
	sample_take(q, &a);
	if (sample_ms > 0) {
		struct timespec ts = {sample_ms / 1000, (sample_ms % 1000) * 1000000L};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	sample_take(q, &b);

	static struct broker_view v; /* 20 KB of client table: not on the stack */
	snprintf(v.name, sizeof(v.name), "%s", name);
	v.stats = b.st;
	int n = mq_clients(q, v.clients, MQ_CLIENTS_MAX);
	v.nclients = n < 0 ? 0 : (n > MQ_CLIENTS_MAX ? MQ_CLIENTS_MAX : n);
	double enq = 0, deq = 0;
	if (sample_ms > 0)
		sample_rates(&a, &b, &enq, &deq);
	for (int i = 0; i < 3; i++) {
		v.enq_rate[i] = enq;
		v.deq_rate[i] = deq;
	}
	v.broker_pid = b.st.broker_pid;
	v.version = MQCTL_VERSION;
	/* Time in queue over the sample when messages were taken in it, else
	 * since the queue was created: a one-shot command has no history. */
	enum tiq_span span =
	        sample_tiq(sample_ms > 0 ? &a : NULL, &b, &v.tiq_window, &v.tiq_window_s);
	v.have_tiq = span != TIQ_NONE;
	if (v.have_tiq)
		v.tiq_total = b.tiq;
	static const char *const span_json[] = {"null", "\"lifetime\"", "\"sample\""};

	if (json) {
		char *doc = render_queue(&v);
		size_t len = doc ? strlen(doc) : 0;
		if (!doc || len < 2 || doc[len - 1] != '}') {
			free(doc);
			mq_detach(q);
			return fail(MQCTL_RUNTIME, "out of memory rendering the JSON of queue %s",
			            name);
		}
		/* Keys beyond the broker's: the window the rates stand for, and
		 * what time_in_queue_s covers. */
		doc[len - 1] = '\0';
		printf("%s,\"rates_sample_s\":%g,\"time_in_queue_window\":%s}\n", doc,
		       (double)sample_ms / 1000, span_json[span + 1]);
		free(doc);
	} else {
		print_table(q, name, &v, (double)sample_ms / 1000, span);
	}
	mq_detach(q);
	if (fflush(stdout) != 0)
		return fail(MQCTL_RUNTIME, "cannot write to stdout: %s", strerror(errno));
	return MQCTL_OK;
}
