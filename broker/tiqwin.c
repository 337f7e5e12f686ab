/* tiqwin.c - time-in-queue histograms over a window (differences of once-a-second samples), and
 * their percentiles. */
#include <string.h>

#include "status.h"

void tiq_history_add(struct tiq_history *r, double t, const struct mq_time_in_queue *h)
{
	r->t[r->next] = t;
	r->h[r->next] = *h;
	r->next = (r->next + 1) % TIQ_SAMPLES;
	if (r->count < TIQ_SAMPLES)
		r->count++;
}

void tiq_diff(const struct mq_time_in_queue *now, const struct mq_time_in_queue *then,
              struct mq_time_in_queue *out)
{
	*out = *now;
	if (!then || then->count > now->count)
		return;
	for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++)
		if (then->bucket[i] > now->bucket[i])
			return; /* not the same histogram */
	out->count = now->count - then->count;
	out->sum_ns = now->sum_ns >= then->sum_ns ? now->sum_ns - then->sum_ns : 0;
	for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++)
		out->bucket[i] = now->bucket[i] - then->bucket[i];
}

double tiq_history_window(const struct tiq_history *r, double window_s,
                          struct mq_time_in_queue *out)
{
	memset(out, 0, sizeof(*out));
	if (r->count == 0)
		return 0;
	unsigned newest = (r->next + TIQ_SAMPLES - 1) % TIQ_SAMPLES;
	/* The oldest sample at most WINDOW_S old (half a tick of slack). */
	unsigned pick = newest;
	for (unsigned k = 1; k < r->count; k++) {
		unsigned i = (newest + TIQ_SAMPLES - k) % TIQ_SAMPLES;
		if (r->t[newest] - r->t[i] > window_s + 0.5)
			break;
		pick = i;
	}
	if (pick == newest) {
		out->max_ns = r->h[newest].max_ns;
		return 0;
	}
	tiq_diff(&r->h[newest], &r->h[pick], out);
	return r->t[newest] - r->t[pick];
}

/* upper_ns: the upper bound of bucket I, or MAX_NS for the open last one. */
static double upper_ns(unsigned i, uint64_t max_ns)
{
	uint64_t u = mq_tiq_bucket_upper_ns(i);
	return u == UINT64_MAX ? (double)max_ns : (double)u;
}

/* quantile: the value below which a fraction Q of H's messages fall. */
static double quantile(const struct mq_time_in_queue *h, uint64_t total, double q)
{
	double rank = q * (double)total, below = 0;
	for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++) {
		double n = (double)h->bucket[i];
		if (n > 0 && below + n >= rank) {
			double lo = i ? upper_ns(i - 1, h->max_ns) : 0, hi = upper_ns(i, h->max_ns);
			if (hi < lo)
				hi = lo;
			double v = lo + (hi - lo) * ((rank - below) / n);
			return v;
		}
		below += n;
	}
	return (double)h->max_ns;
}

void tiq_summarize(const struct mq_time_in_queue *h, struct tiq_summary *out)
{
	memset(out, 0, sizeof(*out));
	uint64_t total = 0;
	unsigned top = 0;
	for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++) {
		total += h->bucket[i];
		if (h->bucket[i])
			top = i;
	}
	out->count = total;
	if (!total)
		return;
	double cap = h->max_ns ? (double)h->max_ns : upper_ns(top, 0);
	double mx = upper_ns(top, h->max_ns);
	if (cap > 0 && mx > cap)
		mx = cap;
	out->max = mx / 1e9;
	const double qs[3] = {0.5, 0.9, 0.99};
	double *dst[3] = {&out->p50, &out->p90, &out->p99};
	for (int k = 0; k < 3; k++) {
		double v = quantile(h, total, qs[k]);
		*dst[k] = (v > mx ? mx : v) / 1e9;
	}
}
