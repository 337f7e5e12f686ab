/* view.c - one snapshot of the queue and the broker for /status and /metrics. */
#include <stdio.h>
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
	v->damaged = b->damaged;
	memcpy(v->problem, b->problem, sizeof(v->problem));
	pthread_mutex_unlock(&b->lock);
	v->broker_pid = getpid();
	v->uptime_s = broker_now() - b->started;
	v->version = BROKER_VERSION;
}

void health_check(struct broker *b)
{
	struct mq_inspection in;
	int damaged = 0;
	char problem[sizeof(b->problem)] = "";
	if (mq_inspect(b->q, &in) != 0) {
		damaged = 1;
		snprintf(problem, sizeof(problem), "%s", mq_errdetail());
	} else if (!in.sound) {
		snprintf(problem, sizeof(problem), "%s", in.problem);
	}
	pthread_mutex_lock(&b->lock);
	b->suspect = problem[0] && !damaged ? b->suspect + 1 : 0;
	if (b->suspect >= 2)
		damaged = 1;
	int was = b->damaged;
	b->damaged = damaged;
	if (damaged)
		memcpy(b->problem, problem, sizeof(b->problem));
	else
		b->problem[0] = '\0';
	pthread_mutex_unlock(&b->lock);
	if (damaged && !was)
		broker_log("%s is damaged: %s", b->name, problem);
	else if (!damaged && was)
		broker_log("%s is sound again", b->name);
}
