/* rates.c - enqueue/dequeue rates over 1 s, 10 s and 60 s from once-a-second samples. */
#include "status.h"

void rates_add(struct rates *r, double t, uint64_t enq, uint64_t deq)
{
	r->t[r->next] = t;
	r->enq[r->next] = enq;
	r->deq[r->next] = deq;
	r->next = (r->next + 1) % RATES_SAMPLES;
	if (r->count < RATES_SAMPLES)
		r->count++;
}

void rates_get(const struct rates *r, double window_s, double *enq_per_s, double *deq_per_s)
{
	*enq_per_s = *deq_per_s = 0;
	if (r->count < 2)
		return;
	unsigned newest = (r->next + RATES_SAMPLES - 1) % RATES_SAMPLES;
	/* The oldest sample at most WINDOW_S old (half a tick of slack for jitter). */
	unsigned pick = newest;
	for (unsigned k = 1; k < r->count; k++) {
		unsigned i = (newest + RATES_SAMPLES - k) % RATES_SAMPLES;
		if (r->t[newest] - r->t[i] > window_s + 0.5)
			break;
		pick = i;
	}
	double dt = r->t[newest] - r->t[pick];
	if (dt <= 0)
		return;
	/* Totals only grow; a segment recreated under us would make them
	 * shrink, which reads as no traffic rather than a negative rate. */
	if (r->enq[newest] >= r->enq[pick])
		*enq_per_s = (double)(r->enq[newest] - r->enq[pick]) / dt;
	if (r->deq[newest] >= r->deq[pick])
		*deq_per_s = (double)(r->deq[newest] - r->deq[pick]) / dt;
}
