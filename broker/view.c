/* view.c - one snapshot of the queue and the broker for /status and /metrics. */
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"

double broker_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void view_take(struct broker *b, struct broker_view *v)
{
	memset(v, 0, sizeof(*v));
	strcpy(v->name, b->name);
	/* Both read the segment with plain loads: never the queue's locks. */
	mq_stats(b->q, &v->stats);
	int n = mq_clients(b->q, v->clients, MQ_CLIENTS_MAX);
	v->nclients = n < 0 ? 0 : (n > MQ_CLIENTS_MAX ? MQ_CLIENTS_MAX : n);
	static const double windows[3] = {1, 10, 60};
	pthread_mutex_lock(&b->lock);
	for (int i = 0; i < 3; i++)
		rates_get(&b->rates, windows[i], &v->enq_rate[i], &v->deq_rate[i]);
	pthread_mutex_unlock(&b->lock);
	v->broker_pid = getpid();
	v->uptime_s = broker_now() - b->started;
	v->version = BROKER_VERSION;
}
