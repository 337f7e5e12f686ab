/* report.c - the DESIGN.md targets, and the Markdown table and JSON document of a bench run. */
#include <stdio.h>
#include <string.h>

#include "report.h"
#include "stats.h"

/* ---- figures ---- */

const char *report_unit(const struct cell *c)
{
	if (c->w == W_RTT64)
		return "us";
	if (c->w == W_TPUT64 || c->w == W_MPMC64)
		return "msgs/s";
	return "MB/s";
}

void report_format(char *buf, size_t len, double v, const char *unit)
{
	if (!strcmp(unit, "msgs/s")) {
		stats_format_rate(buf, len, v);
	} else if (!strcmp(unit, "MB/s")) {
		snprintf(buf, len, v >= 100 ? "%.0f" : "%.1f", v);
	} else {
		snprintf(buf, len,
		         v >= 100  ? "%.0f"
		         : v >= 10 ? "%.1f"
		         : v >= 1  ? "%.2f"
		                   : "%.3f",
		         v);
	}
}

static const struct cell *find(const struct cell *cells, int n, enum workload w, const char *key)
{
	for (int i = 0; i < n; i++)
		if (cells[i].w == w && !strcmp(cells[i].key, key))
			return cells[i].n > 0 ? &cells[i] : NULL;
	return NULL;
}

static double median(const struct cell *c)
{
	return stats_median(c->v, c->n);
}

/* ---- targets ---- */

enum verdict { V_NA = -1, V_MISS = 0, V_PASS = 1 };

struct target {
	const char *id;
	const char *what;    /* the target, as DESIGN.md puts it */
	enum workload w;     /* the libmq row it judges */
	const char *subject; /* its transport key */
	enum workload ref_w; /* the row it compares with */
	char ref_key[32];
	char ref_title[96];
	char subj_text[96], ref_text[160]; /* the two figures compared, for the table */
	double need;                       /* the ratio needed (ratio >= need passes) */
	double ratio;                      /* as defined by the target, larger is better */
	enum verdict verdict;
	int npaired;       /* repetitions with both figures */
	double pmin, pmax; /* the same ratio within each repetition: range */
};

#define NTARGETS 13

static void judge(struct target *t, double ratio)
{
	t->ratio = ratio;
	t->verdict = ratio >= t->need ? V_PASS : V_MISS;
}

/* figure_text: "WORKLOAD TITLE MEDIAN UNIT" of cell C (p50 for round trips). */
static void figure_text(char *buf, size_t len, const struct cell *c, const char *prefix)
{
	char v[32];
	const char *unit = report_unit(c);
	report_format(v, sizeof(v), median(c), unit);
	if (snprintf(buf, len, "%s%s %s: %s %s", prefix, workloads[c->w].name, c->title, v, unit) >=
	    (int)len)
		buf[len - 1] = '\0'; /* cut short: a label, still terminated */
}

/* at_rep: the figure of C in repetition REP, or 0 if it has none. */
static double at_rep(const struct cell *c, int rep)
{
	for (int k = 0; c && k < c->n; k++)
		if (c->rep[k] == rep)
			return c->v[k];
	return 0;
}

/* paired: the target's ratio within each repetition (S against R, or the
 * better of R and R2 for round trips), to show how much it moves. */
static void paired(struct target *x, const struct cell *s, const struct cell *r,
                   const struct cell *r2, int rtt)
{
	int maxrep = 0;
	for (int k = 0; k < s->n; k++)
		maxrep = s->rep[k] > maxrep ? s->rep[k] : maxrep;
	for (int rep = 0; rep <= maxrep; rep++) {
		double a = at_rep(s, rep), b = at_rep(r, rep), b2 = at_rep(r2, rep);
		if (b2 > 0 && (b <= 0 || b2 < b))
			b = b2;
		if (a <= 0 || b <= 0)
			continue;
		double q = rtt ? b / a : a / b;
		if (!x->npaired++ || q < x->pmin)
			x->pmin = q;
		if (x->npaired == 1 || q > x->pmax)
			x->pmax = q;
	}
}

/* targets_eval: fill T[NTARGETS] from the medians of CELLS. */
static void targets_eval(struct target *t, const struct cell *cells, int n)
{
	static const struct {
		const char *id, *what, *subject, *ref;
		enum workload w, ref_w;
		double need;
	} defs[NTARGETS] = {
	        {"tput64_vs_mqueue", "64 B msgs/s >= 10x POSIX mqueue", "libmq", "mqueue", W_TPUT64,
	         W_TPUT64, 10},
	        {"tput64_vs_textbook", "64 B msgs/s >= 10x textbook queue at libmq's capacity",
	         "libmq", "textbook-cap", W_TPUT64, W_TPUT64, 10},
	        {"tput64_vs_zmq", "64 B msgs/s >= 3x ZeroMQ ipc", "libmq", "zmq", W_TPUT64,
	         W_TPUT64, 3},
	        {"tput1m_vs_memcpy", "1 MiB MB/s >= 70% of single-thread memcpy", "libmq", "memcpy",
	         W_TPUT1M, W_TPUT1M, 0.70},
	        {"rtt64_spin",
	         "64 B round trip p50 <= 1/5 of the best of mqueue and pipe (spin on)", "libmq", "",
	         W_RTT64, W_RTT64, 5},
	        {"rtt64_nospin", "64 B round trip p50 no worse than a pipe (spin off)",
	         "libmq-nospin", "pipe", W_RTT64, W_RTT64, 1},
	        {"mpmc64_vs_1to1", "4+4 msgs/s >= half of 1+1", "libmq", "libmq", W_MPMC64,
	         W_TPUT64, 0.5},
	        {"tput64_batch32", "64 B in batches of 32 >= 3x the plain path's msgs/s",
	         "libmq-batch32", "libmq", W_TPUT64, W_TPUT64, 3},
	        {"tput64_lease", "64 B mq_recv_lease + mq_ack >= 1/2 of plain mq_recv",
	         "libmq-lease", "libmq", W_TPUT64, W_TPUT64, 0.5},
	        {"rtt64_epoll",
	         "64 B round trip through an epoll loop (mq_pollfd) no worse than a pipe",
	         "libmq-epoll", "pipe", W_RTT64, W_RTT64, 1},
	        {"tput1m_zcopy",
	         "1 MiB zero-copy (reserve/commit, peek/ack) >= 2x the copying path", "libmq-zcopy",
	         "libmq", W_TPUT1M, W_TPUT1M, 2},
	        {"tput64_tiq_cost",
	         "64 B msgs/s with time in queue measured >= 95% of without (MQ_TIME_IN_QUEUE=0)",
	         "libmq", "libmq-notiq", W_TPUT64, W_TPUT64, 0.95},
	        {"mpmc64_no_starvation",
	         "4+4: no process starves (each gets >= half an even share, every repetition)",
	         "libmq", "", W_MPMC64, W_MPMC64, 0.5},
	};
	for (int i = 0; i < NTARGETS; i++) {
		struct target *x = &t[i];
		memset(x, 0, sizeof(*x));
		x->id = defs[i].id;
		x->what = defs[i].what;
		x->w = defs[i].w;
		x->subject = defs[i].subject;
		x->ref_w = defs[i].ref_w;
		x->need = defs[i].need;
		x->verdict = V_NA;
		snprintf(x->ref_key, sizeof(x->ref_key), "%s", defs[i].ref);
		const struct cell *s = find(cells, n, x->w, x->subject);
		const struct cell *r =
		        defs[i].ref[0] ? find(cells, n, x->ref_w, defs[i].ref) : NULL;
		if (r)
			snprintf(x->ref_title, sizeof(x->ref_title), "%s", r->title);
		if (!s)
			continue;
		figure_text(x->subj_text, sizeof(x->subj_text), s, "");
		if (r)
			figure_text(x->ref_text, sizeof(x->ref_text), r, "");
		if (!strcmp(x->id, "rtt64_spin")) {
			/* The best (lowest p50) of POSIX mqueue and the pipe. */
			const struct cell *mq = find(cells, n, W_RTT64, "mqueue");
			const struct cell *pp = find(cells, n, W_RTT64, "pipe");
			r = !mq ? pp : !pp ? mq : median(mq) <= median(pp) ? mq : pp;
			if (!r)
				continue;
			snprintf(x->ref_key, sizeof(x->ref_key), "%s", r->key);
			snprintf(x->ref_title, sizeof(x->ref_title), "%s", r->title);
			figure_text(x->ref_text, sizeof(x->ref_text), r, "best of mqueue, pipe: ");
			judge(x, median(r) / median(s));
			paired(x, s, mq, pp, 1);
		} else if (!strcmp(x->id, "rtt64_nospin") || !strcmp(x->id, "rtt64_epoll")) {
			if (r) {
				judge(x, median(r) / median(s));
				paired(x, s, r, NULL, 1);
			}
		} else if (!strcmp(x->id, "mpmc64_no_starvation")) {
			double worst = s->sh[0], best = s->sh[0];
			for (int k = 1; k < s->n; k++) {
				worst = s->sh[k] < worst ? s->sh[k] : worst;
				best = s->sh[k] > best ? s->sh[k] : best;
			}
			x->npaired = s->n;
			x->pmin = worst;
			x->pmax = best;
			snprintf(x->ref_text, sizeof(x->ref_text),
			         "an even share (least-served producer or consumer, worst "
			         "repetition)");
			judge(x, worst);
		} else if (r) {
			judge(x, median(s) / median(r));
			paired(x, s, r, NULL, 0);
		}
	}
}

static const char *verdict_name(enum verdict v)
{
	return v == V_PASS ? "PASS" : v == V_MISS ? "MISS" : "n/a";
}

static void ratio_text(char *buf, size_t len, const struct target *t)
{
	if (t->need < 1)
		snprintf(buf, len, "%.2f (need >= %.2f)", t->ratio, t->need);
	else
		snprintf(buf, len, "%.1fx (need >= %gx)", t->ratio, t->need);
}

/* ---- Markdown ---- */

static void md_text(FILE *f, const char *s)
{
	for (; *s; s++)
		fputc(*s == '|' ? '/' : *s == '\n' ? ' ' : *s, f);
}

/* row_targets: the "vs target" and "verdict" cells of row C (P99: the p99 row). */
static void row_targets(char *vs, size_t vslen, char *verdict, size_t vdlen, const struct cell *c,
                        int p99, const struct target *t)
{
	vs[0] = verdict[0] = '\0';
	if (p99)
		return;
	int any = 0, miss = 0, na = 0;
	size_t used = 0;
	for (int i = 0; i < NTARGETS; i++) {
		const struct target *x = &t[i];
		char r[64], item[200];
		int subject = x->w == c->w && !strcmp(x->subject, c->key);
		int reference = x->ref_w == c->w && !strcmp(x->ref_key, c->key) && !subject;
		if (!subject && !reference)
			continue;
		if (x->verdict == V_NA) {
			if (!subject || c->n == 0) {
				na += subject;
				any |= subject;
				continue;
			}
			snprintf(item, sizeof(item), "%s: not measured",
			         x->ref_key[0] ? x->ref_key : "mqueue and pipe");
			na++;
		} else {
			ratio_text(r, sizeof(r), x);
			if (!strcmp(x->id, "mpmc64_no_starvation"))
				snprintf(item, sizeof(item),
				         "least-served process: %s of an even share", r);
			else if (!strcmp(x->id, "mpmc64_vs_1to1") && subject)
				snprintf(item, sizeof(item), "%s of libmq 1+1", r);
			else if (!strcmp(x->id, "mpmc64_vs_1to1"))
				snprintf(item, sizeof(item), "libmq 4+4 is %s of this", r);
			else if (subject)
				snprintf(item, sizeof(item), "%s vs %s", r, x->ref_title);
			else
				snprintf(item, sizeof(item), "%s: %s", x->subject, r);
		}
		if (subject) {
			any = 1;
			miss += x->verdict == V_MISS;
		}
		used += (size_t)snprintf(vs + used, used < vslen ? vslen - used : 0, "%s%s",
		                         used ? "; " : "", item);
		if (used >= vslen)
			used = vslen - 1;
	}
	if (any)
		snprintf(verdict, vdlen, "%s", miss ? "MISS" : na ? "n/a" : "PASS");
}

static void row_notes(char *buf, size_t len, const struct cell *c, const struct report_cfg *cfg)
{
	buf[0] = '\0';
	size_t used = 0;
#define NOTE(...)                                                                                  \
	do {                                                                                       \
		if (used < len)                                                                    \
			used += (size_t)snprintf(buf + used, len - used, used ? "; " : "");        \
		if (used < len)                                                                    \
			used += (size_t)snprintf(buf + used, len - used, __VA_ARGS__);             \
	} while (0)
	if (c->failed)
		NOTE("FAILED: %s", c->why);
	else if (c->skipped)
		NOTE("skipped: %s", c->why);
	if (c->t && (c->t->flags & T_NOSPIN))
		NOTE("spin 0");
	else if (c->t && !strcmp(c->t->name, "libmq"))
		NOTE("spin %u us", cfg->spin_us);
	if (c->t && c->depth_max) {
		if (c->depth_min != c->depth_max)
			NOTE("depth %zu..%zu", c->depth_min, c->depth_max);
		else
			NOTE("depth %zu", c->depth_max);
	}
	if (c->w == W_MPMC64 && c->n > 0) {
		double lo = c->cmin[0], hi = c->cmax[0];
		for (int k = 1; k < c->n; k++) {
			lo = c->cmin[k] < lo ? c->cmin[k] : lo;
			hi = c->cmax[k] > hi ? c->cmax[k] : hi;
		}
		NOTE("consumer shares %.1f..%.1f %%", 100 * lo, 100 * hi);
	}
#undef NOTE
}

static void md_row(FILE *f, const struct cell *c, int p99, const struct target *t,
                   const struct report_cfg *cfg)
{
	char med[32] = "-", lo[32] = "", hi[32] = "", spread[80] = "-", vs[700], verdict[16],
	     notes[700];
	const char *unit = report_unit(c);
	const double *v = p99 ? c->v2 : c->v;
	if (c->n > 0) {
		double mn, mx;
		stats_range(v, c->n, &mn, &mx);
		report_format(med, sizeof(med), stats_median(v, c->n), unit);
		report_format(lo, sizeof(lo), mn, unit);
		report_format(hi, sizeof(hi), mx, unit);
		snprintf(spread, sizeof(spread), "%s .. %s", lo, hi);
	}
	row_targets(vs, sizeof(vs), verdict, sizeof(verdict), c, p99, t);
	row_notes(notes, sizeof(notes), c, cfg);
	const char *wname = workloads[c->w].name;
	fprintf(f, "| %s%s | %s | %s | %s | %s | ", wname,
	        c->w == W_RTT64 ? (p99 ? " p99" : " p50") : "", c->title, med, spread, unit);
	md_text(f, vs);
	fprintf(f, " | %s | ", verdict[0] ? verdict : "");
	md_text(f, notes);
	fprintf(f, " |\n");
}

void report_markdown(FILE *f, const struct report_cfg *cfg, const struct cell *cells, int n)
{
	struct target t[NTARGETS];
	targets_eval(t, cells, n);
	fprintf(f, "## mqbench results%s\n\n",
	        cfg->smoke ? " (smoke run: tiny counts, no meaning)" : "");
	fprintf(f, "- command: `%s`\n", cfg->command);
	fprintf(f, "- date: %s\n", cfg->date);
	fprintf(f, "- machine: %s\n", cfg->machine);
	fprintf(f, "- versions: %s\n", cfg->versions);
	if (cfg->messages)
		fprintf(f, "- each run: %llu messages (round trips, blocks); ", cfg->messages);
	else
		fprintf(f, "- each run: %.2f s of measuring; ", cfg->seconds);
	fprintf(f, "%d repetition%s, figure = median, spread = min .. max\n", cfg->reps,
	        cfg->reps == 1 ? "" : "s");
	if (cfg->queue)
		fprintf(f,
		        "- queue: the existing queue %s (attached, not created; its broker's "
		        "geometry), capacity %zu messages; libmq spin %u us\n",
		        cfg->queue, cfg->capacity, cfg->spin_us);
	else
		fprintf(f,
		        "- queues: capacity %zu messages (1 MiB messages: %zu); libmq spin %u "
		        "us\n",
		        cfg->capacity, cfg->capacity_1m, cfg->spin_us);
	if (cfg->pinned)
		fprintf(f,
		        "- pinning: producers / pinger on CPU %d, consumers / ponger on CPU %d\n",
		        cfg->cpu[0], cfg->cpu[1]);
	else
		fprintf(f, "- pinning: none (--no-pin)\n");
	fprintf(f, "- POSIX mqueue limits: %s\n\n", cfg->mq_note);

	fprintf(f, "| workload | transport | median | spread | unit | vs target | verdict | notes "
	           "|\n");
	fprintf(f, "|---|---|--:|--:|---|---|---|---|\n");
	for (int w = 0; w < W_COUNT; w++)
		for (int p99 = 0; p99 < (w == W_RTT64 ? 2 : 1); p99++)
			for (int i = 0; i < n; i++)
				if (cells[i].w == (enum workload)w)
					md_row(f, &cells[i], p99, t, cfg);

	fprintf(f, "\n### Targets (DESIGN.md, Performance)\n\n");
	fprintf(f, "| target | libmq | compared with | ratio | per repetition | need | verdict "
	           "|\n");
	fprintf(f, "|---|---|---|--:|--:|--:|---|\n");
	for (int i = 0; i < NTARGETS; i++) {
		const char *fmt = t[i].need < 1 ? "%.2f" : "%.2fx";
		char r[32] = "-", lo[32], hi[32], per[80] = "-", need[32];
		if (t[i].verdict != V_NA)
			snprintf(r, sizeof(r), fmt, t[i].ratio);
		if (t[i].npaired) {
			snprintf(lo, sizeof(lo), fmt, t[i].pmin);
			snprintf(hi, sizeof(hi), fmt, t[i].pmax);
			snprintf(per, sizeof(per), "%s .. %s", lo, hi);
		}
		snprintf(need, sizeof(need), t[i].need < 1 ? ">= %.2f" : ">= %gx", t[i].need);
		fprintf(f, "| %s | %s | %s | %s | %s | %s | %s |\n", t[i].what, t[i].subj_text,
		        t[i].ref_text[0] ? t[i].ref_text : "-", r, per, need,
		        verdict_name(t[i].verdict));
	}
	fprintf(f, "\nRatios: throughput = libmq / other; round trip = other p50 / libmq p50, so "
	           "larger is better everywhere. The ratio and the verdict use the medians; "
	           "\"per repetition\" is the range of the same ratio taken within each "
	           "repetition (the two figures measured seconds apart), to show how firm the "
	           "verdict is. Round-trip figures are microseconds per round trip (lower is "
	           "better).\n");
}

/* ---- JSON ---- */

static void js_str(FILE *f, const char *s)
{
	fputc('"', f);
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		if (ch == '"' || ch == '\\')
			fprintf(f, "\\%c", ch);
		else if (ch < 0x20)
			fprintf(f, "\\u%04x", ch);
		else
			fputc(ch, f);
	}
	fputc('"', f);
}

static void js_stats(FILE *f, const double *v, int n)
{
	if (n == 0) {
		fprintf(f, "null");
		return;
	}
	double mn, mx;
	stats_range(v, n, &mn, &mx);
	fprintf(f, "{\"median\": %.6g, \"min\": %.6g, \"max\": %.6g, \"reps\": [",
	        stats_median(v, n), mn, mx);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s%.6g", i ? ", " : "", v[i]);
	fprintf(f, "]}");
}

void report_json(FILE *f, const struct report_cfg *cfg, const struct cell *cells, int n)
{
	struct target t[NTARGETS];
	targets_eval(t, cells, n);
	fprintf(f, "{\"mqbench\": 1,\n \"command\": ");
	js_str(f, cfg->command);
	fprintf(f, ",\n \"date\": ");
	js_str(f, cfg->date);
	fprintf(f, ",\n \"machine\": ");
	js_str(f, cfg->machine);
	fprintf(f, ",\n \"versions\": ");
	js_str(f, cfg->versions);
	fprintf(f,
	        ",\n \"config\": {\"reps\": %d, \"seconds\": %g, \"messages\": %llu, "
	        "\"capacity\": %zu, \"capacity_1m\": %zu, \"spin_us\": %u, \"pinned\": %s, "
	        "\"cpus\": [%d, %d], \"smoke\": %s, \"queue\": ",
	        cfg->reps, cfg->seconds, cfg->messages, cfg->capacity, cfg->capacity_1m,
	        cfg->spin_us, cfg->pinned ? "true" : "false", cfg->cpu[0], cfg->cpu[1],
	        cfg->smoke ? "true" : "false");
	if (cfg->queue)
		js_str(f, cfg->queue);
	else
		fprintf(f, "null");
	fprintf(f, "},\n \"mqueue_limits\": ");
	js_str(f, cfg->mq_note);
	fprintf(f, ",\n \"results\": [");
	for (int i = 0; i < n; i++) {
		const struct cell *c = &cells[i];
		fprintf(f, "%s\n  {\"workload\": \"%s\", \"transport\": \"%s\", \"title\": ",
		        i ? "," : "", workloads[c->w].name, c->key);
		js_str(f, c->title);
		fprintf(f, ", \"status\": \"%s\"",
		        c->failed    ? "failed"
		        : c->skipped ? "skipped"
		                     : "ok");
		if (c->failed || c->skipped) {
			fprintf(f, ", \"why\": ");
			js_str(f, c->why);
		}
		fprintf(f, ", \"unit\": \"%s\", \"%s\": ", report_unit(c),
		        c->w == W_RTT64 ? "p50" : "figure");
		js_stats(f, c->v, c->n);
		if (c->w == W_RTT64) {
			fprintf(f, ", \"p99\": ");
			js_stats(f, c->v2, c->n);
		}
		if (c->w == W_MPMC64) {
			fprintf(f, ", \"consumer_share_min\": ");
			js_stats(f, c->cmin, c->n);
			fprintf(f, ", \"consumer_share_max\": ");
			js_stats(f, c->cmax, c->n);
			fprintf(f, ", \"least_share_vs_even\": ");
			js_stats(f, c->sh, c->n);
		}
		if (c->depth_max)
			fprintf(f, ", \"depth\": [%zu, %zu]", c->depth_min, c->depth_max);
		fprintf(f, "}");
	}
	fprintf(f, "\n ],\n \"targets\": [");
	for (int i = 0; i < NTARGETS; i++) {
		fprintf(f, "%s\n  {\"id\": \"%s\", \"what\": ", i ? "," : "", t[i].id);
		js_str(f, t[i].what);
		fprintf(f, ", \"subject\": \"%s %s\", \"compared_with\": ", workloads[t[i].w].name,
		        t[i].subject);
		js_str(f, t[i].ref_key);
		if (t[i].verdict == V_NA)
			fprintf(f, ", \"ratio\": null");
		else
			fprintf(f, ", \"ratio\": %.6g", t[i].ratio);
		if (t[i].npaired)
			fprintf(f, ", \"per_rep_min\": %.6g, \"per_rep_max\": %.6g", t[i].pmin,
			        t[i].pmax);
		fprintf(f, ", \"need\": %g, \"verdict\": \"%s\"}", t[i].need,
		        verdict_name(t[i].verdict));
	}
	fprintf(f, "\n ]}\n");
}
