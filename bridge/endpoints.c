/* endpoints.c - mqbridge's HTTP endpoints: /healthz, /status (JSON), /metrics (Prometheus). */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "bridge.h"
#include "http.h"
#include "libmq.h"
#include "stats.h"

/* The Prometheus buckets of the latency histogram: le = 2^k µs for k in
 * LE_FIRST..LE_LAST (16 µs .. 67 s), each an exact sum of hist.h's buckets. */
#define LE_FIRST 4
#define LE_LAST  26

/* What the latency of each direction measures (/status says it too). */
static const char *latency_measures(enum route_dir dir)
{
	return dir == ROUTE_EXPORT ? "publish to JetStream's PubAck"
	                           : "fetch from JetStream to our ack (after mq_send)";
}

static double uptime_s(const struct bridge_stats *st)
{
	return (double)(bridge_now_ms() - st->started_ms) / 1000.0;
}

/* add_u64: KEY = V into O; NULL if out of memory. */
static cJSON *add_u64(cJSON *o, const char *key, uint64_t v)
{
	return cJSON_AddNumberToObject(o, key, (double)v);
}

/* add_last_error: KEY: {"text", "time" (unix s)} of E, or null if none yet. */
static cJSON *add_last_error(cJSON *o, const char *key, struct last_error *e)
{
	char text[sizeof(e->text)];
	int64_t t = stats_last_error(e, text, sizeof(text));
	if (!t)
		return cJSON_AddNullToObject(o, key);
	cJSON *le = cJSON_AddObjectToObject(o, key);
	if (!le || !cJSON_AddStringToObject(le, "text", text) ||
	    !cJSON_AddNumberToObject(le, "time", (double)t))
		return NULL;
	return le;
}

/* add_route: one element of "routes" for RS into ARR; 0, or -1 if out of memory. */
static int add_route(cJSON *arr, struct route_stats *rs)
{
	char name[MQ_NAME_MAX + BRIDGE_SUBJECT_MAX + 2];
	const struct route *r = &rs->r;
	bool ex = r->dir == ROUTE_EXPORT;
	cJSON *o = cJSON_CreateObject();
	if (!o || !cJSON_AddItemToArray(arr, o)) {
		cJSON_Delete(o);
		return -1;
	}
	bool ok = cJSON_AddStringToObject(o, "route", stats_route_name(r, name, sizeof(name))) &&
	          cJSON_AddStringToObject(o, "direction", ex ? "export" : "import") &&
	          cJSON_AddStringToObject(o, "queue", r->queue) &&
	          cJSON_AddStringToObject(o, "subject", r->subject) &&
	          cJSON_AddStringToObject(o, "state", route_state_name(atomic_load(&rs->state))) &&
	          add_u64(o, "forwarded_total", atomic_load(&rs->forwarded)) &&
	          cJSON_AddNumberToObject(o, "in_flight", (double)atomic_load(&rs->in_flight)) &&
	          add_u64(o, "errors_total", atomic_load(&rs->errors)) &&
	          add_last_error(o, "last_error", &rs->last);
	if (ok && ex)
		ok = add_u64(o, "duplicates_total", atomic_load(&rs->duplicates)) &&
		     add_u64(o, "republished_total", atomic_load(&rs->republished));
	if (ok && !ex)
		ok = add_u64(o, "redelivered_total", atomic_load(&rs->redelivered)) &&
		     add_u64(o, "skipped_total", atomic_load(&rs->skipped)) &&
		     add_u64(o, "terminated_total", atomic_load(&rs->terminated));
	struct hist_snap h;
	hist_snapshot(&rs->latency, &h);
	cJSON *lat = ok ? cJSON_AddObjectToObject(o, "latency_s") : NULL;
	ok = lat && cJSON_AddStringToObject(lat, "measures", latency_measures(r->dir)) &&
	     add_u64(lat, "count", h.count);
	if (ok && h.count)
		ok = cJSON_AddNumberToObject(lat, "p50", hist_quantile(&h, 0.50) / 1e6) &&
		     cJSON_AddNumberToObject(lat, "p99", hist_quantile(&h, 0.99) / 1e6);
	else if (ok)
		ok = cJSON_AddNullToObject(lat, "p50") && cJSON_AddNullToObject(lat, "p99");
	return ok ? 0 : -1;
}

char *endpoints_status(struct bridge_stats *st)
{
	cJSON *d = cJSON_CreateObject();
	cJSON *b = d ? cJSON_AddObjectToObject(d, "bridge") : NULL;
	cJSON *n = d ? cJSON_AddObjectToObject(d, "nats") : NULL;
	cJSON *routes = d ? cJSON_AddArrayToObject(d, "routes") : NULL;
	bool ok = b && n && routes && cJSON_AddStringToObject(b, "version", LIBMQ_VERSION) &&
	          cJSON_AddNumberToObject(b, "pid", (double)getpid()) &&
	          cJSON_AddNumberToObject(b, "uptime_s", uptime_s(st)) &&
	          cJSON_AddNumberToObject(b, "started_at", (double)st->started_at) &&
	          cJSON_AddStringToObject(b, "stream", st->stream);
	natsConnection *nc = atomic_load(&st->nc);
	char url[256] = "", shown[256];
	if (nc && natsConnection_GetConnectedUrl(nc, url, sizeof(url)) != NATS_OK)
		url[0] = '\0';
	ok = ok && cJSON_AddStringToObject(n, "state", stats_nats_state(st)) &&
	     cJSON_AddStringToObject(n, "url", st->nats_url) &&
	     (url[0] ? cJSON_AddStringToObject(n, "connected_url",
	                                       stats_strip_credentials(url, shown, sizeof(shown)))
	             : cJSON_AddNullToObject(n, "connected_url")) &&
	     add_u64(n, "reconnects_total", atomic_load(&st->reconnects)) &&
	     add_u64(n, "disconnects_total", atomic_load(&st->disconnects)) &&
	     add_last_error(n, "last_error", &st->nats_last);
	for (unsigned i = 0; ok && i < st->nroutes; i++)
		ok = add_route(routes, &st->routes[i]) == 0;
	char *body = ok ? cJSON_PrintUnformatted(d) : NULL;
	cJSON_Delete(d);
	return body;
}

char *endpoints_health(struct bridge_stats *st, int *bad)
{
	char name[MQ_NAME_MAX + BRIDGE_SUBJECT_MAX + 2], why[MQ_NAME_MAX + BRIDGE_SUBJECT_MAX + 64];
	cJSON *d = cJSON_CreateObject();
	cJSON *reasons = cJSON_CreateArray();
	bool ok = d && reasons;
	const char *ns = stats_nats_state(st);
	*bad = 0;
	if (ok && strcmp(ns, "connected")) {
		snprintf(why, sizeof(why), "NATS is %s", ns);
		ok = cJSON_AddItemToArray(reasons, cJSON_CreateString(why));
		++*bad;
	}
	for (unsigned i = 0; ok && i < st->nroutes; i++) {
		struct route_stats *rs = &st->routes[i];
		int s = atomic_load(&rs->state);
		if (s == ROUTE_RUNNING)
			continue;
		snprintf(why, sizeof(why), "%s %s: %s",
		         rs->r.dir == ROUTE_EXPORT ? "export" : "import",
		         stats_route_name(&rs->r, name, sizeof(name)), route_state_name(s));
		ok = cJSON_AddItemToArray(reasons, cJSON_CreateString(why));
		++*bad;
	}
	ok = ok && cJSON_AddStringToObject(d, "status", *bad ? "unavailable" : "ok");
	if (ok && *bad) {
		ok = cJSON_AddItemToObject(d, "reasons", reasons);
		reasons = NULL;
	}
	char *body = ok ? cJSON_PrintUnformatted(d) : NULL;
	cJSON_Delete(reasons);
	cJSON_Delete(d);
	return body;
}

/* struct text: a growing malloc'd string; OOM once any append failed. */
struct text {
	char *p;
	size_t len, cap;
	bool oom;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
	for (int tries = 0; tries < 2 && !t->oom; tries++) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = true;
			return;
		}
		if (t->p && (size_t)n < t->cap - t->len) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap : 4096;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *p = realloc(t->p, cap);
		if (!p) {
			t->oom = true;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

/* label: V escaped as a Prometheus label value (\\, \", \n) into OUT. */
static const char *label(const char *v, char *out, size_t len)
{
	size_t o = 0;
	for (; *v && o + 3 < len; v++) {
		if (*v == '\\' || *v == '"' || *v == '\n') {
			out[o++] = '\\';
			out[o++] = *v == '\n' ? 'n' : *v;
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
	return out;
}

/* route_labels: route="...",direction="...",queue="...",subject="..." of R into OUT. */
static const char *route_labels(const struct route *r, char *out, size_t len)
{
	char name[MQ_NAME_MAX + BRIDGE_SUBJECT_MAX + 2];
	char ename[2 * sizeof(name)], eq[2 * (MQ_NAME_MAX + 1)], es[2 * BRIDGE_SUBJECT_MAX];
	snprintf(out, len, "route=\"%s\",direction=\"%s\",queue=\"%s\",subject=\"%s\"",
	         label(stats_route_name(r, name, sizeof(name)), ename, sizeof(ename)),
	         r->dir == ROUTE_EXPORT ? "export" : "import", label(r->queue, eq, sizeof(eq)),
	         label(r->subject, es, sizeof(es)));
	return out;
}

static void family(struct text *t, const char *name, const char *type, const char *help)
{
	put(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* A per-route counter or gauge: its name, type, help, which directions have
 * it, and where its value is. */
struct route_metric {
	const char *name, *type, *help;
	int dirs; /* 1 export, 2 import, 3 both */
	double (*value)(struct route_stats *rs);
};

#define U64(field)                                                                                 \
	static double v_##field(struct route_stats *rs)                                            \
	{                                                                                          \
		return (double)atomic_load(&rs->field);                                            \
	}
U64(forwarded)
U64(in_flight)
U64(errors)
U64(duplicates)
U64(republished)
U64(redelivered)
U64(skipped)
U64(terminated)
#undef U64

static double v_running(struct route_stats *rs)
{
	return atomic_load(&rs->state) == ROUTE_RUNNING;
}

static double v_last_error_time(struct route_stats *rs)
{
	char text[sizeof(rs->last.text)];
	return (double)stats_last_error(&rs->last, text, sizeof(text));
}

static const struct route_metric route_metrics[] = {
        {"mq_bridge_route_running", "gauge",
         "1 while the route runs, 0 while it waits (for NATS, room, a back-off) or is stopped", 3,
         v_running},
        {"mq_bridge_messages_forwarded_total", "counter",
         "Messages carried: export, acked by JetStream; import, sent to the queue and acked", 3,
         v_forwarded},
        {"mq_bridge_messages_in_flight", "gauge",
         "Export: published, awaiting JetStream's ack; import: fetched, not yet acked", 3,
         v_in_flight},
        {"mq_bridge_route_errors_total", "counter",
         "Publish, fetch and queue errors, and imports terminated as too large", 3, v_errors},
        {"mq_bridge_route_last_error_timestamp_seconds", "gauge",
         "Unix time of the route's last error (0: none)", 3, v_last_error_time},
        {"mq_bridge_messages_duplicate_total", "counter",
         "Export: publishes JetStream already held (acked as stored)", 1, v_duplicates},
        {"mq_bridge_messages_republished_total", "counter",
         "Export: failed publishes, given back to the queue and published again", 1, v_republished},
        {"mq_bridge_messages_redelivered_total", "counter",
         "Import: messages JetStream had delivered before (possible duplicates)", 2, v_redelivered},
        {"mq_bridge_messages_skipped_total", "counter",
         "Import: messages delivered again that were already in the queue (acked, not sent)", 2,
         v_skipped},
        {"mq_bridge_messages_terminated_total", "counter",
         "Import: messages larger than the queue takes, terminated in JetStream", 2, v_terminated},
};

char *endpoints_metrics(struct bridge_stats *st)
{
	struct text t = {0};
	char labels[4 * (MQ_NAME_MAX + BRIDGE_SUBJECT_MAX) + 128];
	int dirs = 0;
	for (unsigned i = 0; i < st->nroutes; i++)
		dirs |= st->routes[i].r.dir == ROUTE_EXPORT ? 1 : 2;

	family(&t, "mq_bridge_build_info", "gauge", "mqbridge's version (always 1)");
	put(&t, "mq_bridge_build_info{version=\"%s\"} 1\n", LIBMQ_VERSION);
	family(&t, "mq_bridge_uptime_seconds", "gauge", "Seconds since mqbridge started");
	put(&t, "mq_bridge_uptime_seconds %.3f\n", uptime_s(st));
	const char *ns = stats_nats_state(st);
	family(&t, "mq_bridge_nats_connected", "gauge", "1 while connected to NATS, else 0");
	put(&t, "mq_bridge_nats_connected %d\n", !strcmp(ns, "connected"));
	static const char *const states[] = {"connecting",   "connected", "reconnecting",
	                                     "disconnected", "draining",  "closed"};
	family(&t, "mq_bridge_nats_state", "gauge",
	       "The NATS connection's state: 1 for the current one");
	for (size_t i = 0; i < sizeof(states) / sizeof(states[0]); i++)
		put(&t, "mq_bridge_nats_state{state=\"%s\"} %d\n", states[i],
		    !strcmp(ns, states[i]));
	family(&t, "mq_bridge_nats_reconnects_total", "counter",
	       "Reconnections to NATS after the connection was lost");
	put(&t, "mq_bridge_nats_reconnects_total %llu\n",
	    (unsigned long long)atomic_load(&st->reconnects));
	family(&t, "mq_bridge_nats_disconnects_total", "counter", "Losses of the NATS connection");
	put(&t, "mq_bridge_nats_disconnects_total %llu\n",
	    (unsigned long long)atomic_load(&st->disconnects));

	for (size_t m = 0; m < sizeof(route_metrics) / sizeof(route_metrics[0]); m++) {
		const struct route_metric *rm = &route_metrics[m];
		if (!(rm->dirs & dirs))
			continue;
		family(&t, rm->name, rm->type, rm->help);
		for (unsigned i = 0; i < st->nroutes; i++) {
			struct route_stats *rs = &st->routes[i];
			if (rm->dirs & (rs->r.dir == ROUTE_EXPORT ? 1 : 2))
				put(&t, "%s{%s} %.17g\n", rm->name,
				    route_labels(&rs->r, labels, sizeof(labels)), rm->value(rs));
		}
	}

	if (st->nroutes)
		family(&t, "mq_bridge_ack_latency_seconds", "histogram",
		       "Export: from publish to JetStream's PubAck; import: from fetch to our ack "
		       "(after mq_send)");
	for (unsigned i = 0; i < st->nroutes; i++) {
		struct route_stats *rs = &st->routes[i];
		struct hist_snap h;
		hist_snapshot(&rs->latency, &h);
		route_labels(&rs->r, labels, sizeof(labels));
		for (unsigned k = LE_FIRST; k <= LE_LAST; k++) {
			uint64_t le = (uint64_t)1 << k;
			put(&t, "mq_bridge_ack_latency_seconds_bucket{%s,le=\"%.6f\"} %llu\n",
			    labels, (double)le / 1e6, (unsigned long long)hist_count_le(&h, le));
		}
		put(&t, "mq_bridge_ack_latency_seconds_bucket{%s,le=\"+Inf\"} %llu\n", labels,
		    (unsigned long long)h.count);
		put(&t, "mq_bridge_ack_latency_seconds_sum{%s} %.6f\n", labels,
		    (double)h.sum_us / 1e6);
		put(&t, "mq_bridge_ack_latency_seconds_count{%s} %llu\n", labels,
		    (unsigned long long)h.count);
	}
	if (t.oom) {
		free(t.p);
		return NULL;
	}
	return t.p;
}

/* route: mqbridge's http_route_fn. */
static int route(void *ctx, struct http_request *rq, const char *url, bool get)
{
	struct bridge_stats *st = ctx;
	bool known =
	        !strcmp(url, "/healthz") || !strcmp(url, "/status") || !strcmp(url, "/metrics");
	if (!known)
		return http_reply_error(rq, 404, "not found");
	if (!get)
		return http_reply_error(rq, 405, "method not allowed");
	if (!strcmp(url, "/status"))
		return http_reply(rq, 200, HTTP_CT_JSON, "no-store", endpoints_status(st));
	if (!strcmp(url, "/metrics"))
		return http_reply(rq, 200, HTTP_CT_METRICS, "no-store", endpoints_metrics(st));
	int bad = 0;
	char *body = endpoints_health(st, &bad);
	return http_reply(rq, bad ? 503 : 200, HTTP_CT_JSON, "no-store", body);
}

struct http_server *endpoints_start(struct bridge_stats *st, const char *listen, char *err,
                                    size_t errlen)
{
	struct http_config cfg = {.prog = "mqbridge", .route = route, .ctx = st};
	return http_server_start(&cfg, listen, err, errlen);
}
