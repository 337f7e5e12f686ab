/* stats.c - mqbridge's statistics: setup, last errors, the connection's state (stats.h). */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "stats.h"

const char *route_state_name(enum route_state s)
{
	static const char *const names[ROUTE_STATES] = {
	        [ROUTE_STARTING] = "starting",
	        [ROUTE_RUNNING] = "running",
	        [ROUTE_WAITING_NATS] = "waiting_for_nats",
	        [ROUTE_WAITING_ROOM] = "waiting_for_room",
	        [ROUTE_BACKING_OFF] = "backing_off",
	        [ROUTE_QUEUE_ERROR] = "queue_error",
	        [ROUTE_STOPPED] = "stopped",
	};
	return (unsigned)s < ROUTE_STATES ? names[s] : "unknown";
}

void stats_init(struct bridge_stats *st, const struct bridge_opts *o)
{
	memset(st, 0, sizeof(*st));
	st->started_ms = bridge_now_ms();
	st->started_at = (int64_t)time(NULL);
	snprintf(st->stream, sizeof(st->stream), "%s", o->stream);
	stats_strip_credentials(o->nats_url, st->nats_url, sizeof(st->nats_url));
	pthread_mutex_init(&st->nats_last.mu, NULL);
	st->nroutes = o->nroutes;
	for (unsigned i = 0; i < o->nroutes; i++) {
		st->routes[i].r = o->routes[i];
		pthread_mutex_init(&st->routes[i].last.mu, NULL);
	}
}

void stats_destroy(struct bridge_stats *st)
{
	pthread_mutex_destroy(&st->nats_last.mu);
	for (unsigned i = 0; i < st->nroutes; i++)
		pthread_mutex_destroy(&st->routes[i].last.mu);
}

void stats_error(struct last_error *e, const char *text)
{
	pthread_mutex_lock(&e->mu);
	snprintf(e->text, sizeof(e->text), "%s", text);
	e->time = (int64_t)time(NULL);
	pthread_mutex_unlock(&e->mu);
}

int64_t stats_last_error(struct last_error *e, char *out, size_t len)
{
	pthread_mutex_lock(&e->mu);
	snprintf(out, len, "%s", e->text);
	int64_t t = e->time;
	pthread_mutex_unlock(&e->mu);
	return t;
}

const char *stats_nats_state(struct bridge_stats *st)
{
	if (atomic_load(&st->closed))
		return "closed";
	natsConnection *nc = atomic_load(&st->nc);
	if (!nc)
		return "connecting";
	switch (natsConnection_Status(nc)) {
	case NATS_CONN_STATUS_CONNECTED:
		return "connected";
	case NATS_CONN_STATUS_CONNECTING:
		return "connecting";
	case NATS_CONN_STATUS_RECONNECTING:
		return "reconnecting";
	case NATS_CONN_STATUS_DRAINING_SUBS:
	case NATS_CONN_STATUS_DRAINING_PUBS:
		return "draining";
	case NATS_CONN_STATUS_CLOSED:
		return "closed";
	case NATS_CONN_STATUS_DISCONNECTED:
	default:
		return "disconnected";
	}
}

const char *stats_strip_credentials(const char *url, char *out, size_t len)
{
	size_t o = 0;
	if (len == 0)
		return out;
	for (;;) {
		/* One URL of the list: [scheme://][userinfo@]host[:port][/...], up
		 * to a ','; the userinfo ends at the authority's last '@'. */
		const char *end = url + strcspn(url, ",");
		const char *scheme = strstr(url, "://");
		const char *host = scheme && scheme < end ? scheme + 3 : url;
		const char *auth_end = host + strcspn(host, "/,");
		const char *at = NULL;
		for (const char *p = host; p < auth_end; p++)
			if (*p == '@')
				at = p;
		for (const char *p = url; p < end && o + 1 < len; p++)
			if (p < host || !at || p > at)
				out[o++] = *p;
		if (!*end)
			break;
		if (o + 1 < len)
			out[o++] = ',';
		url = end + 1;
	}
	out[o] = '\0';
	return out;
}

const char *stats_route_name(const struct route *r, char *out, size_t len)
{
	if (r->dir == ROUTE_EXPORT)
		snprintf(out, len, "%s=%s", r->queue, r->subject);
	else
		snprintf(out, len, "%s=%s", r->subject, r->queue);
	return out;
}
