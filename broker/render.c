/* render.c - a broker_view as the /status JSON document (cJSON) and the /metrics text page. */
#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "broker.h"

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
	bool ok = cJSON_AddStringToObject(o, "name", name) &&
	          cJSON_AddStringToObject(o, "state", v->damaged ? "damaged" : "ok") &&
	          (!v->damaged || cJSON_AddStringToObject(o, "error", problem)) &&
	          add_u64(o, "capacity", s->capacity) &&
	          add_u64(o, "max_msg_size", s->max_msg_size) && add_u64(o, "depth", s->depth) &&
	          add_u64(o, "high_water", s->high_water) &&
	          add_u64(o, "enqueued_total", s->enqueued_total) &&
	          add_u64(o, "dequeued_total", s->dequeued_total) &&
	          add_u64(o, "bytes_enqueued_total", s->bytes_enqueued_total) &&
	          add_u64(o, "bytes_dequeued_total", s->bytes_dequeued_total) &&
	          add_u64(o, "blocked_sends_total", s->blocked_sends_total) &&
	          add_u64(o, "blocked_recvs_total", s->blocked_recvs_total) &&
	          add_u64(o, "recoveries_total", s->recoveries_total) &&
	          add_u64(o, "in_flight", s->in_flight) &&
	          add_u64(o, "acked_total", s->acked_total) &&
	          add_u64(o, "nacked_total", s->nacked_total) &&
	          add_u64(o, "redelivered_total", s->redelivered_total);
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

char *render_status(const struct broker_view *v)
{
	cJSON *doc = cJSON_CreateObject();
	cJSON *broker = doc ? cJSON_AddObjectToObject(doc, "broker") : NULL;
	bool ok = broker &&
	          cJSON_AddStringToObject(broker, "version",
	                                  v->version ? v->version : BROKER_VERSION) &&
	          add_num(broker, "pid", v->broker_pid) &&
	          add_num(broker, "uptime_s", round_to(v->uptime_s, 10));
	cJSON *queues = ok ? cJSON_AddArrayToObject(doc, "queues") : NULL;
	cJSON *q = queues ? queue_json(v) : NULL;
	if (!q || !cJSON_AddItemToArray(queues, q)) {
		cJSON_Delete(q);
		cJSON_Delete(doc);
		return NULL;
	}
	return print_and_free(doc);
}

char *render_queue(const struct broker_view *v)
{
	return print_and_free(queue_json(v));
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

/* One metric family with a single sample per queue (so far, one queue). */
struct metric {
	const char *name, *type, *help;
	uint64_t value;
};

char *render_metrics(const struct broker_view *v)
{
	const struct mq_stats *s = &v->stats;
	char clean[sizeof(v->name)], q[2 * sizeof(clean)];
	utf8_clean(v->name, clean, sizeof(clean));
	prom_label(clean, q, sizeof(q));

	const struct metric per_queue[] = {
	        {"mq_queue_depth", "gauge", "Messages in the queue now.", s->depth},
	        {"mq_queue_capacity", "gauge", "Messages the queue can hold.", s->capacity},
	        {"mq_queue_max_message_bytes", "gauge",
	         "Largest message the queue accepts, in bytes.", s->max_msg_size},
	        {"mq_queue_high_water", "gauge", "Largest depth seen since the queue was created.",
	         s->high_water},
	        {"mq_messages_enqueued_total", "counter", "Messages accepted by mq_send.",
	         s->enqueued_total},
	        {"mq_messages_dequeued_total", "counter", "Messages taken by mq_recv.",
	         s->dequeued_total},
	        {"mq_bytes_enqueued_total", "counter", "Payload bytes accepted by mq_send.",
	         s->bytes_enqueued_total},
	        {"mq_bytes_dequeued_total", "counter", "Payload bytes taken by mq_recv.",
	         s->bytes_dequeued_total},
	        {"mq_blocked_sends_total", "counter", "mq_send calls that had to wait for space.",
	         s->blocked_sends_total},
	        {"mq_blocked_receives_total", "counter",
	         "mq_recv calls that had to wait for a message.", s->blocked_recvs_total},
	        {"mq_queue_full_total", "counter", "mq_send calls that found the queue full.",
	         s->full_total},
	        {"mq_queue_empty_total", "counter", "mq_recv calls that found the queue empty.",
	         s->empty_total},
	        {"mq_client_recoveries_total", "counter", "Dead clients detected and cleaned up.",
	         s->recoveries_total},
	        {"mq_lock_repairs_total", "counter", "Queue locks taken over from a dead holder.",
	         s->lock_repairs_total},
	        {"mq_clients_attached", "gauge", "Live clients attached to the queue.", s->clients},
	        {"mq_messages_in_flight", "gauge",
	         "Messages leased (mq_recv_lease, mq_peek) and not yet acked or nacked.",
	         s->in_flight},
	        {"mq_messages_acked_total", "counter", "Leased messages acked (retired).",
	         s->acked_total},
	        {"mq_messages_nacked_total", "counter", "Leased messages nacked (given back).",
	         s->nacked_total},
	        {"mq_messages_redelivered_total", "counter",
	         "Deliveries of messages given back (nacked, or their holder died).",
	         s->redelivered_total},
	        {"mq_queue_damaged", "gauge",
	         "1 while the queue's segment is damaged (see /status for why), else 0.",
	         (uint64_t)(v->damaged != 0)},
	};

	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);
	if (!f)
		return NULL;
	for (size_t i = 0; i < sizeof(per_queue) / sizeof(per_queue[0]); i++) {
		const struct metric *m = &per_queue[i];
		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s{queue=\"%s\"} %" PRIu64 "\n", m->name,
		        m->help, m->name, m->type, m->name, q, m->value);
	}
	fprintf(f,
	        "# HELP mq_clients Live clients by role (one that both sends and receives counts "
	        "in both).\n# TYPE mq_clients gauge\n"
	        "mq_clients{queue=\"%s\",role=\"producer\"} %" PRIu32 "\n"
	        "mq_clients{queue=\"%s\",role=\"consumer\"} %" PRIu32 "\n",
	        q, s->producers, q, s->consumers);
	fprintf(f,
	        "# HELP mq_broker_uptime_seconds Seconds since mqbroker started.\n"
	        "# TYPE mq_broker_uptime_seconds gauge\nmq_broker_uptime_seconds %.3f\n",
	        isfinite(v->uptime_s) ? v->uptime_s : 0.0);
	char version[64];
	prom_label(v->version ? v->version : BROKER_VERSION, version, sizeof(version));
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
