/*
 * stats.h - the few statistics mqbench reports: the median and range of the
 * repetitions, and nearest-rank percentiles of round-trip samples.
 */
#ifndef MQBENCH_STATS_H
#define MQBENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

/* stats_median: the median of the N values at V (N > 0; V is not changed). */
double stats_median(const double *v, int n);

/* stats_range: the smallest and largest of the N values at V (N > 0). */
void stats_range(const double *v, int n, double *min, double *max);

/* stats_percentile: the nearest-rank P-th percentile (0 < P <= 100) of the N
 * samples at V, which it sorts in place; 0 if N is 0. */
uint32_t stats_percentile(uint32_t *v, size_t n, double p);

/* stats_format_rate: a rate V (per second) as the tables print it: "1.23 M",
 * "45.6 k" or "789". */
void stats_format_rate(char *out, size_t len, double v);

#endif /* MQBENCH_STATS_H */
