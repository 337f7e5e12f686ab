/* stats.c - median and range of repetitions, percentiles of latency samples. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

double stats_median(const double *v, int n)
{
	double tmp[n];
	memcpy(tmp, v, sizeof(double) * (size_t)n);
	qsort(tmp, (size_t)n, sizeof(double), cmp_double);
	return n % 2 ? tmp[n / 2] : (tmp[n / 2 - 1] + tmp[n / 2]) / 2;
}

void stats_range(const double *v, int n, double *min, double *max)
{
	*min = *max = v[0];
	for (int i = 1; i < n; i++) {
		if (v[i] < *min)
			*min = v[i];
		if (v[i] > *max)
			*max = v[i];
	}
}

uint32_t stats_percentile(uint32_t *v, size_t n, double p)
{
	if (n == 0)
		return 0;
	qsort(v, n, sizeof(*v), cmp_u32);
	double exact = p / 100.0 * (double)n;
	size_t rank = (size_t)exact;
	if ((double)rank < exact)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return v[rank - 1];
}

void stats_format_rate(char *out, size_t len, double v)
{
	if (v >= 1e6)
		snprintf(out, len, "%.2f M", v / 1e6);
	else if (v >= 1e3)
		snprintf(out, len, "%.1f k", v / 1e3);
	else
		snprintf(out, len, "%.0f", v);
}
