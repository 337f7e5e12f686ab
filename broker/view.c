/* view.c - snapshots of the broker's queues for /status and /metrics, and their health checks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "libmq_admin.h"
#include "owner.h"

double broker_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* view_one: fill V from BQ (B->lock held). */
static void view_one(struct broker *b, struct bqueue *bq, struct broker_view *v)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", bq->name);
	v->broker_pid = getpid();
	v->uptime_s = broker_now() - b->started;
	v->version = BROKER_VERSION;
	v->damaged = bq->damaged;
	v->refused = bq->refused;
	memcpy(v->problem, bq->problem, sizeof(v->problem));
	if (!bq->q) {
		v->no_stats = 1;
		return;
	}
	/* All read the segment with plain loads: never the queue's locks. */
	mq_stats(bq->q, &v->stats);
	int n = mq_clients(bq->q, v->clients, MQ_CLIENTS_MAX);
	v->nclients = n < 0 ? 0 : (n > MQ_CLIENTS_MAX ? MQ_CLIENTS_MAX : n);
	static const double windows[3] = {1, 10, 60};
	for (int i = 0; i < 3; i++)
		rates_get(&bq->rates, windows[i], &v->enq_rate[i], &v->deq_rate[i]);
	if (mq_time_in_queue(bq->q, &v->tiq_total) == 0) {
		struct mq_time_in_queue w;
		v->have_tiq = 1;
		v->tiq_window_s = tiq_history_window(&bq->tiq, 60, &w);
		tiq_summarize(&w, &v->tiq_window);
	}
}

struct broker_view **view_take(struct broker *b, const char *name, int *n)
{
	*n = 0;
	pthread_mutex_lock(&b->lock);
	/* A view holds a whole client table (~25 KiB): on the heap. */
	struct broker_view **v = calloc((size_t)b->nqueues + 1, sizeof(*v));
	for (int i = 0; v && i < b->nqueues; i++) {
		if (name && strcmp(name, b->queues[i]->name) != 0)
			continue;
		struct broker_view *one = malloc(sizeof(*one));
		if (!one) {
			view_free(v, *n);
			v = NULL;
			break;
		}
		view_one(b, b->queues[i], one);
		v[(*n)++] = one;
	}
	pthread_mutex_unlock(&b->lock);
	if (!v)
		*n = 0;
	return v;
}

void view_free(struct broker_view **v, int n)
{
	if (!v)
		return;
	for (int i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

void health_check(struct broker *b, struct bqueue *bq)
{
	if (!bq->q)
		return; /* not open: its problem stands until it opens */
	struct mq_inspection in;
	int damaged = 0;
	char problem[sizeof(bq->problem)] = "";
	if (mq_inspect(bq->q, &in) != 0) {
		damaged = 1;
		snprintf(problem, sizeof(problem), "%s", mq_errdetail());
	} else if (!in.sound) {
		snprintf(problem, sizeof(problem), "%s", in.problem);
	}
	pthread_mutex_lock(&b->lock);
	bq->suspect = problem[0] && !damaged ? bq->suspect + 1 : 0;
	if (bq->suspect >= 2)
		damaged = 1;
	int was = bq->damaged;
	bq->damaged = damaged;
	if (damaged)
		memcpy(bq->problem, problem, sizeof(bq->problem));
	else
		bq->problem[0] = '\0';
	pthread_mutex_unlock(&b->lock);
	if (damaged && !was)
		broker_log("%s is damaged: %s", bq->name, problem);
	else if (!damaged && was)
		broker_log("%s is sound again", bq->name);
}
