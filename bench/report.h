/*
 * report.h - the results of a whole mqbench invocation, the DESIGN.md
 * targets judged on them, and their output as a Markdown table or JSON.
 *
 * A cell is one row of the table: one (workload, transport) pair, or one
 * limit, over all repetitions. Figures are medians of the repetitions; the
 * spread is their min..max. A target compares two medians (libmq against a
 * peer, a limit, or libmq itself) and passes when the ratio reaches its need.
 */
#ifndef MQBENCH_REPORT_H
#define MQBENCH_REPORT_H

#include <stdio.h>

#include "workloads.h"

#define REPORT_MAXREPS 100

/* struct cell: one row of the table. */
struct cell {
	enum workload w;
	const struct transport *t; /* NULL for a limit */
	enum limit limit;
	const char *key; /* transport or limit name, as --only takes it */
	char title[96];
	int n;                     /* repetitions with figures */
	double v[REPORT_MAXREPS];  /* the figure: msgs/s, MB/s or p50 us */
	double v2[REPORT_MAXREPS]; /* round trips: p99 us */
	int rep[REPORT_MAXREPS];   /* the repetition each figure comes from */
	double sh[REPORT_MAXREPS]; /* 4+4: smallest share of any process / an even share */
	double cmin[REPORT_MAXREPS], cmax[REPORT_MAXREPS]; /* 4+4: consumers' shares */
	int failed, skipped;
	char why[480];
	size_t depth_min, depth_max; /* queue depth obtained */
};

/* struct report_cfg: how the figures were made, for the header. */
struct report_cfg {
	const char *command;
	char machine[400];
	char date[64];
	int reps;
	double seconds;
	unsigned long long messages; /* 0: timed */
	size_t capacity, capacity_1m;
	unsigned spin_us;
	int pinned, cpu[2];
	int smoke;
	const char *mq_note;
	const char *queue; /* --queue: the existing queue the libmq rows used, or NULL */
	char versions[160];
};

/* report_markdown: print the header, the table, the targets and the notes. */
void report_markdown(FILE *f, const struct report_cfg *cfg, const struct cell *cells, int n);

/* report_json: the same as one JSON document. */
void report_json(FILE *f, const struct report_cfg *cfg, const struct cell *cells, int n);

/* report_unit: the unit of a cell's figure ("msgs/s", "MB/s", "us"). */
const char *report_unit(const struct cell *c);

/* report_format: VALUE as the table prints it in UNIT. */
void report_format(char *buf, size_t len, double value, const char *unit);

#endif /* MQBENCH_REPORT_H */
