/*
 * natsbench.c - mqbridgebench: mqbridge's export throughput and added latency
 * against libnats used directly, in one run (bench/README.md, "mqbridge
 * against libnats"; bench/bridge.sh starts nats-server and mqbroker and runs
 * it). This file: the options, the plan (every row once per repetition, the
 * order reversed every other repetition), progress, and the report: the rows
 * with every repetition, then the targets of issue 16 with every
 * repetition's ratio. The runs themselves: natsruns.c.
 */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <nats/nats.h>

#include "natsbench.h"
#include "stats.h"

enum row_kind { R_BRIDGE, R_PEER, R_PEER_ID, R_COMPARE, R_NKINDS };
static const char *const tput_titles[R_NKINDS] = {
        "mqbridge --export (queue -> JetStream)",
        "peer: js_PublishAsync",
        "peer: js_PublishAsync + Nats-Msg-Id",
        "--compare: the other mqbridge --export",
};

/* nkinds: the throughput rows of this run (R_COMPARE only with --compare). */
static int nkinds(void)
{
	return nb_opt.compare ? R_NKINDS : R_COMPARE;
}
static const char *const lat_titles[2] = {
        "mq_send -> mqbridge export -> JetStream -> mqbridge import -> mq_recv",
        "peer: js_PublishAsync -> JetStream -> pull Fetch(1)",
};

static const size_t sizes[2] = {64, 4096};
static struct nb_tput tres[2][R_NKINDS][NB_MAXREPS];
static struct nb_lat lres[2][2][NB_MAXREPS];

static double median_of(const double *v, int n)
{
	return stats_median(v, n);
}

/* ratios_text: the N ratios at R, then their median in parentheses, into OUT. */
static void ratios_text(const double *r, int n, char *out, size_t len)
{
	size_t k = 0;
	out[0] = '\0';
	for (int i = 0; i < n && k < len; i++)
		k += (size_t)snprintf(out + k, len - k, "%s%.2f", i ? ", " : "", r[i]);
	if (k < len)
		snprintf(out + k, len - k, " (%.2f)", stats_median(r, n));
}

static void report(int reps)
{
	char date[64];
	time_t tnow = time(NULL);
	strftime(date, sizeof(date), "%Y-%m-%d %H:%M:%S +0000", gmtime(&tnow));
	struct utsname u;
	uname(&u);
	printf("- command: mqbridgebench (bench/bridge.sh) --reps %d --n64 %" PRIu64
	       " --n4k %" PRIu64 " --lat-msgs %d --gap-ms %d --window %u\n",
	       reps, nb_opt.n64, nb_opt.n4k, nb_opt.lat_msgs, nb_opt.gap_ms, nb_opt.window);
	printf("- date: %s\n", date);
	if (nb_opt.compare)
		printf("- --compare: %s (mqbridge: %s)\n", nb_opt.compare, nb_opt.bridge);
	printf("- machine: %ld CPUs (nproc), Linux %s %s; libnats %s; mqbridge --window %u\n",
	       sysconf(_SC_NPROCESSORS_ONLN), u.release, u.machine, nats_GetVersion(),
	       nb_opt.window);
	printf("- figure = median of %d repetitions, spread = min .. max; every row of a "
	       "repetition in turn, the order reversed every other repetition\n\n",
	       reps);
	printf("| workload | row | median | spread | unit | per repetition | stream's own "
	       "figure (median) | CPU µs/msg: publisher, nats-server (medians) |\n"
	       "|---|---|--:|--:|---|---|--:|--:|\n");
	for (int z = 0; z < 2 && !nb_opt.lat_only; z++) {
		for (int k = 0; k < nkinds(); k++) {
			double v[NB_MAXREPS], sv[NB_MAXREPS], cpu[NB_MAXREPS], srv[NB_MAXREPS], lo,
			        hi;
			char per[1024] = "", a[32], b[32], c[32], d[32];
			for (int r = 0; r < reps; r++) {
				v[r] = tres[z][k][r].rate;
				sv[r] = tres[z][k][r].stream_rate;
				cpu[r] = tres[z][k][r].cpu_us;
				srv[r] = tres[z][k][r].server_us;
				stats_format_rate(a, sizeof(a), v[r]);
				snprintf(per + strlen(per), sizeof(per) - strlen(per), "%s%s",
				         r ? ", " : "", a);
			}
			stats_range(v, reps, &lo, &hi);
			stats_format_rate(a, sizeof(a), median_of(v, reps));
			stats_format_rate(b, sizeof(b), lo);
			stats_format_rate(c, sizeof(c), hi);
			stats_format_rate(d, sizeof(d), median_of(sv, reps));
			printf("| export %s | %s | %s (%.1f MB/s) | %s .. %s | msgs/s | %s | %s | "
			       "%.1f, %.1f |\n",
			       z ? "4 KiB" : "64 B", tput_titles[k], a,
			       median_of(v, reps) * (double)sizes[z] / 1e6, b, c, per, d,
			       median_of(cpu, reps), median_of(srv, reps));
		}
	}
	for (int z = 0; z < 2 && !nb_opt.tput_only; z++) {
		for (int k = 0; k < 2; k++) {
			double p50[NB_MAXREPS], p99[NB_MAXREPS], lo, hi;
			char per[1024] = "";
			for (int r = 0; r < reps; r++) {
				p50[r] = lres[z][k][r].p50_us;
				p99[r] = lres[z][k][r].p99_us;
				snprintf(per + strlen(per), sizeof(per) - strlen(per),
				         "%s%.0f / %.0f", r ? ", " : "", p50[r], p99[r]);
			}
			stats_range(p50, reps, &lo, &hi);
			printf("| latency %s | %s | p50 %.0f, p99 %.0f | p50 %.0f .. %.0f | µs | "
			       "%s "
			       "(p50 / p99) | - | - |\n",
			       z ? "4 KiB" : "64 B", lat_titles[k], median_of(p50, reps),
			       median_of(p99, reps), lo, hi, per);
		}
	}
	printf("\n| target (issue 16) | mqbridge | peer | ratio (medians) | per repetition (their "
	       "median) | "
	       "need | verdict |\n|---|--:|--:|--:|---|---|---|\n");
	for (int z = 0; z < 2 && !nb_opt.lat_only; z++) {
		double v[NB_MAXREPS], p[NB_MAXREPS], pi[NB_MAXREPS], ratio[NB_MAXREPS];
		char per[256];
		for (int r = 0; r < reps; r++) {
			v[r] = tres[z][R_BRIDGE][r].rate;
			p[r] = tres[z][R_PEER][r].rate;
			pi[r] = tres[z][R_PEER_ID][r].rate;
			ratio[r] = v[r] / p[r];
		}
		ratios_text(ratio, reps, per, sizeof(per));
		double rm = median_of(v, reps) / median_of(p, reps);
		char a[32], b[32];
		stats_format_rate(a, sizeof(a), median_of(v, reps));
		stats_format_rate(b, sizeof(b), median_of(p, reps));
		printf("| export throughput, %s: >= 80 %% of the plain peer | %s msgs/s | %s "
		       "msgs/s "
		       "| %.2f | %s | >= 0.80 | %s |\n",
		       z ? "4 KiB" : "64 B", a, b, rm, per, rm >= 0.80 ? "PASS" : "MISS");
		for (int r = 0; r < reps; r++)
			ratio[r] = v[r] / pi[r];
		ratios_text(ratio, reps, per, sizeof(per));
		rm = median_of(v, reps) / median_of(pi, reps);
		stats_format_rate(b, sizeof(b), median_of(pi, reps));
		printf("| (for information) %s: against the peer with Nats-Msg-Id | %s msgs/s | %s "
		       "msgs/s | %.2f | %s | - | - |\n",
		       z ? "4 KiB" : "64 B", a, b, rm, per);
		/* On 2 shared CPUs the run is CPU-bound: what a message costs the
		 * publisher and nats-server together predicts the ratio, with less
		 * noise than the rates. */
		double cb[NB_MAXREPS], cp[NB_MAXREPS];
		for (int r = 0; r < reps; r++) {
			cb[r] = tres[z][R_BRIDGE][r].cpu_us + tres[z][R_BRIDGE][r].server_us;
			cp[r] = tres[z][R_PEER][r].cpu_us + tres[z][R_PEER][r].server_us;
			ratio[r] = cb[r] > 0 ? cp[r] / cb[r] : 0;
		}
		ratios_text(ratio, reps, per, sizeof(per));
		double mb = median_of(cb, reps), mp = median_of(cp, reps);
		printf("| (for information) %s: CPU per message, publisher + nats-server: plain "
		       "peer / mqbridge | %.1f µs | %.1f µs | %.2f | %s | - | - |\n",
		       z ? "4 KiB" : "64 B", mb, mp, mb > 0 ? mp / mb : 0, per);
		if (!nb_opt.compare)
			continue;
		for (int r = 0; r < reps; r++) {
			pi[r] = tres[z][R_COMPARE][r].rate;
			ratio[r] = pi[r] / p[r];
		}
		ratios_text(ratio, reps, per, sizeof(per));
		rm = median_of(pi, reps) / median_of(p, reps);
		stats_format_rate(a, sizeof(a), median_of(pi, reps));
		stats_format_rate(b, sizeof(b), median_of(p, reps));
		printf("| (for information) %s: --compare against the plain peer | %s msgs/s | %s "
		       "msgs/s | %.2f | %s | >= 0.80 | %s |\n",
		       z ? "4 KiB" : "64 B", a, b, rm, per, rm >= 0.80 ? "PASS" : "MISS");
	}
	for (int z = 0; z < 2 && !nb_opt.tput_only; z++) {
		double v[NB_MAXREPS], p[NB_MAXREPS], ratio[NB_MAXREPS];
		char per[256];
		for (int r = 0; r < reps; r++) {
			v[r] = lres[z][0][r].p50_us;
			p[r] = lres[z][1][r].p50_us;
			ratio[r] = v[r] / p[r];
		}
		ratios_text(ratio, reps, per, sizeof(per));
		double rm = median_of(v, reps) / median_of(p, reps);
		printf("| added latency, %s: p50 mq_send -> mq_recv <= 2x the peer's p50 | %.0f µs "
		       "| "
		       "%.0f µs | %.2f | %s | <= 2.00 | %s |\n",
		       z ? "4 KiB" : "64 B", median_of(v, reps), median_of(p, reps), rm, per,
		       rm <= 2.0 ? "PASS" : "MISS");
	}
	printf("\nThroughput: messages / time from the start of publishing (the bridge's "
	       "\"export ...: running\" line; the peer's first js_PublishAsync) to the last "
	       "PubAck (the bridge: queue A's acked_total reached N; the peer: "
	       "js_PublishAsyncComplete returned), connection setup excluded for both. "
	       "\"Stream's own figure\": (N - 1) / (LastTime - FirstTime) of the stored "
	       "messages. CPU: user + system time over the timed part, over N: the "
	       "publisher's (mqbridge's from /proc, the peer's from getrusage) and "
	       "nats-server's (/proc; 10 ms ticks). Latency: microseconds from send to receipt, "
	       "one message at a time, "
	       "%d ms between messages, %d warm-up messages not counted.\n",
	       nb_opt.gap_ms, NB_WARMUP_MSGS);
}

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqbridgebench --nats URL --bridge MQBRIDGE --q64 QUEUE --q4k QUEUE\n"
	        "                     --qa QUEUE --qb QUEUE [OPTION]...\n"
	        "mqbridge's export throughput and added latency against libnats used directly\n"
	        "(normally run by bench/bridge.sh, which starts nats-server and mqbroker).\n"
	        "  --q64 Q, --q4k Q  empty queues taking N messages of 64 B / 4 KiB (throughput)\n"
	        "  --qa Q, --qb Q    empty queues taking 4 KiB (latency: host A, host B)\n"
	        "  --reps N          repetitions (default 5, at most %d)\n"
	        "  --n64 N, --n4k N  messages per throughput run (default 200000, 50000)\n"
	        "  --lat-msgs N      timed messages per latency run (default 500)\n"
	        "  --gap-ms N        pause between latency messages (default 2)\n"
	        "  --window N        mqbridge --window and the peer's MaxPending (default 256)\n"
	        "  --nats-pid PID    nats-server's pid: report its CPU time per message\n"
	        "  --compare EXE     another mqbridge binary: one more export row, alternated\n"
	        "                    with the others (an A/B of a change to the bridge)\n"
	        "  --tput-only, --lat-only   one half of the runs\n"
	        "  --smoke           one repetition, tiny counts: correctness only\n",
	        NB_MAXREPS);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(a, name) && v && (i++, 1))
		if (ARG("--nats"))
			nb_opt.nats_url = v;
		else if (ARG("--bridge"))
			nb_opt.bridge = v;
		else if (ARG("--q64"))
			nb_opt.q64 = v;
		else if (ARG("--q4k"))
			nb_opt.q4k = v;
		else if (ARG("--qa"))
			nb_opt.qa = v;
		else if (ARG("--qb"))
			nb_opt.qb = v;
		else if (ARG("--reps"))
			nb_opt.reps = atoi(v);
		else if (ARG("--n64"))
			nb_opt.n64 = strtoull(v, NULL, 10);
		else if (ARG("--n4k"))
			nb_opt.n4k = strtoull(v, NULL, 10);
		else if (ARG("--lat-msgs"))
			nb_opt.lat_msgs = atoi(v);
		else if (ARG("--gap-ms"))
			nb_opt.gap_ms = atoi(v);
		else if (ARG("--compare"))
			nb_opt.compare = v;
		else if (ARG("--nats-pid"))
			nb_opt.nats_pid = atoi(v);
		else if (ARG("--window"))
			nb_opt.window = (unsigned)atoi(v);
		else if (!strcmp(a, "--smoke"))
			nb_opt.smoke = 1;
		else if (!strcmp(a, "--tput-only"))
			nb_opt.tput_only = 1;
		else if (!strcmp(a, "--lat-only"))
			nb_opt.lat_only = 1;
		else if (!strcmp(a, "--help")) {
			usage(stdout);
			return 0;
		} else {
			fprintf(stderr, "mqbridgebench: bad argument '%s'\n", a);
			usage(stderr);
			return 2;
		}
#undef ARG
	}
	if (!nb_opt.nats_url || !nb_opt.bridge || !nb_opt.q64 || !nb_opt.q4k || !nb_opt.qa ||
	    !nb_opt.qb || nb_opt.reps < 1 || nb_opt.reps > NB_MAXREPS || !nb_opt.n64 ||
	    !nb_opt.n4k || nb_opt.lat_msgs < 1 || nb_opt.gap_ms < 0 || nb_opt.window < 1 ||
	    (nb_opt.tput_only && nb_opt.lat_only)) {
		usage(stderr);
		return 2;
	}
	if (nb_opt.smoke) {
		nb_opt.reps = 1;
		nb_opt.n64 = 2000;
		nb_opt.n4k = 500;
		nb_opt.lat_msgs = 20;
	}
	signal(SIGPIPE, SIG_IGN);
	atexit(nb_kill_bridges);
	if (nb_open() < 0)
		return 1;
	int failed = 0;
	for (int r = 0; r < nb_opt.reps && !failed; r++) {
		int rev = r % 2;
		for (int zi = 0; zi < 2 && !failed && !nb_opt.lat_only; zi++) {
			int z = rev ? 1 - zi : zi;
			const char *q = z ? nb_opt.q4k : nb_opt.q64;
			uint64_t n = z ? nb_opt.n4k : nb_opt.n64;
			for (int ki = 0; ki < nkinds() && !failed; ki++) {
				int k = rev ? nkinds() - 1 - ki : ki;
				struct nb_tput *t = &tres[z][k][r];
				if (k == R_BRIDGE || k == R_COMPARE)
					failed = nb_tput_bridge(k == R_BRIDGE ? nb_opt.bridge
					                                      : nb_opt.compare,
					                        q, sizes[z], n, t);
				else
					failed = nb_tput_peer(sizes[z], n, k == R_PEER_ID, t);
				nb_progress(
				        "rep %d: export %zu B, %s: %.0f msgs/s (stream %.0f); CPU "
				        "per message: publisher %.1f us, nats-server %.1f us%s",
				        r + 1, sizes[z], tput_titles[k], t->rate, t->stream_rate,
				        t->cpu_us, t->server_us, failed ? " FAILED" : "");
			}
		}
		for (int zi = 0; zi < 2 && !failed && !nb_opt.tput_only; zi++) {
			int z = rev ? 1 - zi : zi;
			for (int ki = 0; ki < 2 && !failed; ki++) {
				int k = rev ? 1 - ki : ki;
				struct nb_lat *l = &lres[z][k][r];
				failed = k == 0 ? nb_lat_bridge(sizes[z], nb_opt.lat_msgs, l)
				                : nb_lat_peer(sizes[z], nb_opt.lat_msgs, l);
				nb_progress("rep %d: latency %zu B, %s: p50 %.0f us, p99 %.0f us%s",
				            r + 1, sizes[z], lat_titles[k], l->p50_us, l->p99_us,
				            failed ? " FAILED" : "");
			}
		}
	}
	nb_close();
	if (failed) {
		nb_progress("a run failed: no report");
		return 1;
	}
	report(nb_opt.reps);
	return 0;
}
