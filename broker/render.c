/* render.c - a broker_view as the /status JSON document (cJSON) and the /metrics text page. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "status.h"

/*
 * Queue names are any bytes but "/" (POSIX), while JSON and the Prometheus
 * text format must be UTF-8: utf8_clean copies IN to OUT (OUTSZ bytes; the
 * copy is never longer than IN), replacing every byte that is not part of a valid
 * UTF-8 sequence by '?', so a strange name never makes the page unparseable.
 */
static void utf8_clean(const char *in, char *out, size_t outsz)
{
	const unsigned char *s = (const unsigned char *)in;
	size_t o = 0;
	while (*s && o + 1 < outsz) {
		unsigned c = s[0];
		size_t n = c < 0x80                 ? 1
		           : c >= 0xc2 && c <= 0xdf ? 2
		           : c >= 0xe0 && c <= 0xef ? 3
		           : c >= 0xf0 && c <= 0xf4 ? 4
		                                    : 0;
		bool ok = n > 0;
		for (size_t i = 1; ok && i < n; i++)
			ok = (s[i] & 0xc0) == 0x80;
		/* overlong 3/4-byte forms, UTF-16 surrogates, above U+10FFFF */
		if (ok && n == 3)
			ok = !(c == 0xe0 && s[1] < 0xa0) && !(c == 0xed && s[1] >= 0xa0);
		if (ok && n == 4)
			ok = !(c == 0xf0 && s[1] < 0x90) && !(c == 0xf4 && s[1] >= 0x90);
		if (!ok || o + n >= outsz) {
			out[o++] = '?';
			s++;
			continue;
		}
		memcpy(out + o, s, n);
		o += n;
		s += n;
	}
	out[o] = '\0';
}

/* round_to: X rounded to 1/SCALE (0 if X is not finite: JSON has no NaN). */
static double round_to(double x, double scale)
{
	if (!isfinite(x))
		return 0;
	return round(x * scale) / scale;
}

/*
 * cJSON keeps numbers as doubles and prints 1e15 as "1e+15": every uint64
 * counter is added as a raw integer literal instead, exact up to 2^64-1.
 * Each adder returns false when out of memory; callers AND the results.
 */
static bool add_u64(cJSON *o, const char *key, uint64_t v)
{
	char num[24];
	snprintf(num, sizeof(num), "%" PRIu64, v);
	return cJSON_AddRawToObject(o, key, num) != NULL;
}

static bool add_num(cJSON *o, const char *key, double v)
{
	return cJSON_AddNumberToObject(o, key, v) != NULL;
}

/* add_rates: {"1s": R[0], "10s": R[1], "60s": R[2]} as KEY, to 0.01/s. */
static bool add_rates(cJSON *o, const char *key, const double r[3])
{
	cJSON *w = cJSON_AddObjectToObject(o, key);
	return w && add_num(w, "1s", round_to(r[0], 100)) &&
	       add_num(w, "10s", round_to(r[1], 100)) && add_num(w, "60s", round_to(r[2], 100));
}

const char *render_role(uint32_t role)
{
	if (role & MQ_ROLE_BRIDGE)
		return "bridge"; /* whichever way it carries messages */
	switch (role & (MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER)) {
	case MQ_ROLE_PRODUCER:
		return "producer";
	case MQ_ROLE_CONSUMER:
		return "consumer";
	case MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER:
		return "both";
	default:
		return "idle";
	}
}

/* client_json: one entry of "clients", or NULL if out of memory. */
static cJSON *client_json(const struct mq_client_info *c)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	bool ok = add_num(o, "pid", c->pid) &&
	          cJSON_AddStringToObject(o, "role", render_role(c->role)) &&
	          cJSON_AddBoolToObject(o, "alive", c->alive != 0) &&
	          add_u64(o, "sent_total", c->sent_total) &&
	          add_u64(o, "received_total", c->received_total) &&
	          add_u64(o, "bytes_sent_total", c->bytes_sent_total) &&
	          add_u64(o, "bytes_received_total", c->bytes_received_total) &&
	          add_u64(o, "in_flight", c->in_flight) &&
	          add_u64(o, "acked_total", c->acked_total) &&
	          add_u64(o, "nacked_total", c->nacked_total) &&
	          add_num(o, "oldest_lease_age_s", round_to(c->oldest_lease_age_ns / 1e9, 1000)) &&
	          add_num(o, "attached_unix_s", round_to(c->attached_unix_ns / 1e9, 1000));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

const char *render_state(const struct broker_view *v)
{
	return v->refused ? "refused" : v->damaged ? "damaged" : "ok";
}

/* add_seconds: KEY as seconds (to the nanosecond), or null if not HAVE. */
static bool add_seconds(cJSON *o, const char *key, double s, bool have)
{
	if (!have)
		return cJSON_AddNullToObject(o, key) != NULL;
	return add_num(o, key, round_to(s, 1e9));
}

/* tiq_json: "time_in_queue_s" of V: percentiles over the window, null
 * values when nothing was taken in it. */
static bool tiq_json(cJSON *o, const struct broker_view *v)
{
	cJSON *t = cJSON_AddObjectToObject(o, "time_in_queue_s");
	const struct tiq_summary *w = &v->tiq_window;
	bool have = v->have_tiq && w->count > 0;
	return t && add_seconds(t, "p50", w->p50, have) && add_seconds(t, "p90", w->p90, have) &&
	       add_seconds(t, "p99", w->p99, have) && add_seconds(t, "max", w->max, have) &&
	       add_u64(t, "count", v->have_tiq ? w->count : 0) &&
	       add_num(t, "window_s", round_to(v->have_tiq ? v->tiq_window_s : 0, 10));
}

/* queue_json: one element of "queues" (the DESIGN.md keys, then extras), or NULL. */
static cJSON *queue_json(const struct broker_view *v)
{
	const struct mq_stats *s = &v->stats;
	char name[sizeof(v->name)];
	utf8_clean(v->name, name, sizeof(name));

	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	char problem[sizeof(v->problem)];
	utf8_clean(v->problem, problem, sizeof(problem));
	bool bad = v->damaged || v->refused;
	bool ok = cJSON_AddStringToObject(o, "name", name) &&
	          cJSON_AddStringToObject(o, "state", render_state(v)) &&
	          (!bad || cJSON_AddStringToObject(o, "error", problem));
	if (!ok || v->no_stats) {
		/* Not open: nothing else is known. */
		if (!ok) {
			cJSON_Delete(o);
			return NULL;
		}
		return o;
	}
	ok = add_u64(o, "capacity", s->capacity) && add_u64(o, "max_msg_size", s->max_msg_size) &&
	     add_u64(o, "depth", s->depth) && add_u64(o, "high_water", s->high_water) &&
	     add_u64(o, "enqueued_total", s->enqueued_total) &&
	     add_u64(o, "dequeued_total", s->dequeued_total) &&
	     add_u64(o, "bytes_enqueued_total", s->bytes_enqueued_total) &&
	     add_u64(o, "bytes_dequeued_total", s->bytes_dequeued_total) &&
	     add_u64(o, "blocked_sends_total", s->blocked_sends_total) &&
	     add_u64(o, "blocked_recvs_total", s->blocked_recvs_total) &&
	     add_u64(o, "recoveries_total", s->recoveries_total) &&
	     add_u64(o, "in_flight", s->in_flight) && add_u64(o, "acked_total", s->acked_total) &&
	     add_u64(o, "nacked_total", s->nacked_total) &&
	     add_u64(o, "redelivered_total", s->redelivered_total) &&
	     add_num(o, "oldest_age_s", round_to(s->oldest_age_ns / 1e9, 1e6)) && tiq_json(o, v);
	cJSON *rates = ok ? cJSON_AddObjectToObject(o, "rates") : NULL;
	ok = rates && add_rates(rates, "enqueue_per_s", v->enq_rate) &&
	     add_rates(rates, "dequeue_per_s", v->deq_rate) &&
	     add_num(o, "producers", s->producers) && add_num(o, "consumers", s->consumers);
	cJSON *clients = ok ? cJSON_AddArrayToObject(o, "clients") : NULL;
	ok = clients != NULL;
	for (int i = 0; ok && i < v->nclients && i < MQ_CLIENTS_MAX; i++) {
		cJSON *c = client_json(&v->clients[i]);
		ok = c && cJSON_AddItemToArray(clients, c);
	}
	/* Extras beyond the fixed keys. */
	ok = ok && add_num(o, "clients_attached", s->clients) &&
	     add_u64(o, "full_total", s->full_total) && add_u64(o, "empty_total", s->empty_total) &&
	     add_u64(o, "lock_repairs_total", s->lock_repairs_total) &&
	     add_num(o, "broker_pid", s->broker_pid) &&
	     add_num(o, "created_unix_s", round_to(s->created_unix_ns / 1e9, 1000));
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* print_and_free: O as compact JSON (malloc'd), or NULL; O is deleted either way. */
static char *print_and_free(cJSON *o)
{
	char *s = o ? cJSON_PrintUnformatted(o) : NULL;
	cJSON_Delete(o);
	return s;
}

char *render_status(const struct broker_view *const *v, int n)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *broker = doc ? cJSON_AddObjectToObject(doc, "broker") : NULL;
	const char *version = n > 0 && v[0]->version ? v[0]->version : BROKER_VERSION;
	bool ok = broker && cJSON_AddStringToObject(broker, "version", version) &&
	          add_num(broker, "pid", n > 0 ? v[0]->broker_pid : 0) &&
	          add_num(broker, "uptime_s", round_to(n > 0 ? v[0]->uptime_s : 0, 10));
	cJSON *queues = ok ? cJSON_AddArrayToObject(doc, "queues") : NULL;
	ok = queues != NULL;
	for (int i = 0; ok && i < n; i++) {
		cJSON *q = queue_json(v[i]);
		ok = q && cJSON_AddItemToArray(queues, q);
		if (!ok)
			cJSON_Delete(q);
	}
	if (!ok) {
		cJSON_Delete(doc);
		return NULL;
	}
	return print_and_free(doc);
}

char *render_queue(const struct broker_view *v)
{
	return print_and_free(queue_json(v));
}

char *render_health(const struct broker_view *const *v, int n, pid_t pid, int *bad)
{
	*bad = 0;
	for (int i = 0; i < n; i++)
		*bad += v[i]->damaged || v[i]->refused;
	cJSON *o = cJSON_CreateObject();
	bool ok = o && cJSON_AddStringToObject(o, "status", *bad ? "damaged" : "ok") &&
	          add_num(o, "pid", pid) && add_num(o, "queues", n);
	cJSON *names = ok && *bad ? cJSON_AddArrayToObject(o, "damaged") : NULL;
	cJSON *errors = names ? cJSON_AddObjectToObject(o, "errors") : NULL;
	ok = ok && (!*bad || errors);
	for (int i = 0; ok && *bad && i < n; i++) {
		if (!v[i]->damaged && !v[i]->refused)
			continue;
		char name[sizeof(v[i]->name)], why[sizeof(v[i]->problem)];
		utf8_clean(v[i]->name, name, sizeof(name));
		utf8_clean(v[i]->problem, why, sizeof(why));
		cJSON *item = cJSON_CreateString(name);
		ok = item && cJSON_AddItemToArray(names, item);
		if (!ok) {
			cJSON_Delete(item);
			break;
		}
		/* Two names may clean to the same text: the first one's reason. */
		ok = (cJSON_GetObjectItemCaseSensitive(errors, name) ||
		      cJSON_AddStringToObject(errors, name, why)) &&
		     (cJSON_GetObjectItemCaseSensitive(o, "error") ||
		      cJSON_AddStringToObject(o, "error", why));
	}
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return print_and_free(o);
}

/* prom_label: V escaped as a Prometheus label value (\\, \", \n) into OUT. */
static void prom_label(const char *v, char *out, size_t outsz)
{
	size_t o = 0;
	for (; *v && o + 3 < outsz; v++) {
		if (*v == '\\' || *v == '"') {
			out[o++] = '\\';
			out[o++] = *v;
		} else if (*v == '\n') {
			out[o++] = '\\';
			out[o++] = 'n';
		} else {
			out[o++] = *v;
		}
	}
	out[o] = '\0';
}

/* One metric family with a single sample per queue. */
struct metric {
	const char *name, *type, *help;
};

static const struct metric per_queue[] = {
        {"mq_queue_depth", "gauge", "Messages in the queue now."},
        {"mq_queue_capacity", "gauge", "Messages the queue can hold."},
        {"mq_queue_max_message_bytes", "gauge", "Largest message the queue accepts, in bytes."},
        {"mq_queue_high_water", "gauge", "Largest depth seen since the queue was created."},
        {"mq_messages_enqueued_total", "counter", "Messages accepted by mq_send."},
        {"mq_messages_dequeued_total", "counter", "Messages taken by mq_recv."},
        {"mq_bytes_enqueued_total", "counter", "Payload bytes accepted by mq_send."},
        {"mq_bytes_dequeued_total", "counter", "Payload bytes taken by mq_recv."},
        {"mq_blocked_sends_total", "counter", "mq_send calls that had to wait for space."},
        {"mq_blocked_receives_total", "counter", "mq_recv calls that had to wait for a message."},
        {"mq_queue_full_total", "counter", "mq_send calls that found the queue full."},
        {"mq_queue_empty_total", "counter", "mq_recv calls that found the queue empty."},
        {"mq_client_recoveries_total", "counter", "Dead clients detected and cleaned up."},
        {"mq_lock_repairs_total", "counter", "Queue locks taken over from a dead holder."},
        {"mq_clients_attached", "gauge", "Live clients attached to the queue."},
        {"mq_messages_in_flight", "gauge",
         "Messages leased (mq_recv_lease, mq_peek) and not yet acked or nacked."},
        {"mq_messages_acked_total", "counter", "Leased messages acked (retired)."},
        {"mq_messages_nacked_total", "counter", "Leased messages nacked (given back)."},
        {"mq_messages_redelivered_total", "counter",
         "Deliveries of messages given back (nacked, or their holder died)."},
};
#define N_PER_QUEUE (sizeof(per_queue) / sizeof(per_queue[0]))

/* metric_values: V's value of each of per_queue, in order. */
static void metric_values(const struct broker_view *v, uint64_t *out)
{
	const struct mq_stats *s = &v->stats;
	const uint64_t vals[] = {s->depth,
	                         s->capacity,
	                         s->max_msg_size,
	                         s->high_water,
	                         s->enqueued_total,
	                         s->dequeued_total,
	                         s->bytes_enqueued_total,
	                         s->bytes_dequeued_total,
	                         s->blocked_sends_total,
	                         s->blocked_recvs_total,
	                         s->full_total,
	                         s->empty_total,
	                         s->recoveries_total,
	                         s->lock_repairs_total,
	                         s->clients,
	                         s->in_flight,
	                         s->acked_total,
	                         s->nacked_total,
	                         s->redelivered_total};
	_Static_assert(sizeof(vals) / sizeof(vals[0]) == N_PER_QUEUE, "a value per metric");
	memcpy(out, vals, sizeof(vals));
}

/* label_of: V's name as a Prometheus label value, into OUT (OUTSZ bytes). */
static void label_of(const struct broker_view *v, char *out, size_t outsz)
{
	char clean[sizeof(v->name)];
	utf8_clean(v->name, clean, sizeof(clean));
	prom_label(clean, out, outsz);
}

/* Histogram buckets of /metrics: every other octave of libmq's (exact
 * counts, since each is a bucket edge): 1.024 us, 4.096 us, ... 1100 s. */
#define TIQ_PROM_STEP 8

static void metrics_tiq(FILE *f, const struct broker_view *const *v, int n)
{
	int any = 0;
	for (int k = 0; k < n; k++)
		any |= !v[k]->no_stats && v[k]->have_tiq;
	if (!any)
		return; /* a family without samples says nothing */
	fprintf(f, "# HELP mq_message_time_in_queue_seconds Time from mq_send to the first "
	           "receive of a message, since the queue was created.\n"
	           "# TYPE mq_message_time_in_queue_seconds histogram\n");
	for (int k = 0; k < n; k++) {
		if (v[k]->no_stats || !v[k]->have_tiq)
			continue;
		char q[2 * MQ_NAME_MAX + 8];
		label_of(v[k], q, sizeof(q));
		const struct mq_time_in_queue *h = &v[k]->tiq_total;
		uint64_t cum = 0, total = 0;
		for (unsigned i = 0; i < MQ_TIQ_NBUCKETS; i++)
			total += h->bucket[i];
		for (unsigned i = 0; i + 1 < MQ_TIQ_NBUCKETS; i++) {
			cum += h->bucket[i];
			if (i % TIQ_PROM_STEP == 0)
				fprintf(f,
				        "mq_message_time_in_queue_seconds_bucket{queue=\"%s\",le="
				        "\"%.9g\"} "
				        "%" PRIu64 "\n",
				        q, (double)mq_tiq_bucket_upper_ns(i) / 1e9, cum);
		}
		fprintf(f,
		        "mq_message_time_in_queue_seconds_bucket{queue=\"%s\",le=\"+Inf\"} %" PRIu64
		        "\n"
		        "mq_message_time_in_queue_seconds_sum{queue=\"%s\"} %.9f\n"
		        "mq_message_time_in_queue_seconds_count{queue=\"%s\"} %" PRIu64 "\n",
		        q, total, q, (double)h->sum_ns / 1e9, q, total);
	}
}

char *render_metrics(const struct broker_view *const *v, int n)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	char q[2 * MQ_NAME_MAX + 8];
	uint64_t vals[N_PER_QUEUE];
	for (size_t i = 0; i < N_PER_QUEUE; i++) {
		const struct metric *m = &per_queue[i];
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
		for (int k = 0; k < n; k++) {
			if (v[k]->no_stats)
				continue;
			label_of(v[k], q, sizeof(q));
			metric_values(v[k], vals);
			fprintf(f, "%s{queue=\"%s\"} %" PRIu64 "\n", m->name, q, vals[i]);
		}
	}
	fprintf(f, "# HELP mq_queue_damaged 1 while the queue's segment is damaged or the broker "
	           "refused it (see /status for why), else 0.\n# TYPE mq_queue_damaged gauge\n");
	for (int k = 0; k < n; k++) {
		label_of(v[k], q, sizeof(q));
		fprintf(f, "mq_queue_damaged{queue=\"%s\"} %d\n", q,
		        v[k]->damaged || v[k]->refused);
	}
	fprintf(f, "# HELP mq_queue_oldest_message_age_seconds How long the oldest message "
	           "waiting in the queue has waited (0: none waits).\n"
	           "# TYPE mq_queue_oldest_message_age_seconds gauge\n");
	for (int k = 0; k < n; k++) {
		if (v[k]->no_stats)
			continue;
		label_of(v[k], q, sizeof(q));
		fprintf(f, "mq_queue_oldest_message_age_seconds{queue=\"%s\"} %.6f\n", q,
		        (double)v[k]->stats.oldest_age_ns / 1e9);
	}
	metrics_tiq(f, v, n);
	fprintf(f, "# HELP mq_clients Live clients by role (one that both sends and receives "
	           "counts in both).\n# TYPE mq_clients gauge\n");
	for (int k = 0; k < n; k++) {
		if (v[k]->no_stats)
			continue;
		label_of(v[k], q, sizeof(q));
		fprintf(f,
		        "mq_clients{queue=\"%s\",role=\"producer\"} %" PRIu32 "\n"
		        "mq_clients{queue=\"%s\",role=\"consumer\"} %" PRIu32 "\n",
		        q, v[k]->stats.producers, q, v[k]->stats.consumers);
	}
	double uptime = n > 0 && isfinite(v[0]->uptime_s) ? v[0]->uptime_s : 0.0;
	fprintf(f,
	        "# HELP mq_broker_uptime_seconds Seconds since mqbroker started.\n"
	        "# TYPE mq_broker_uptime_seconds gauge\nmq_broker_uptime_seconds %.3f\n",
	        uptime);
	char version[64];
	prom_label(n > 0 && v[0]->version ? v[0]->version : BROKER_VERSION, version,
	           sizeof(version));
	fprintf(f,
	        "# HELP mq_build_info The mqbroker version, as a label.\n"
	        "# TYPE mq_build_info gauge\nmq_build_info{version=\"%s\"} 1\n",
	        version);
	bool failed = ferror(f) != 0;
	if (fclose(f) != 0 || failed) {
		free(buf);
		return NULL;
	}
	return buf;
}
