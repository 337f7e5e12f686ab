/* test_render.c - unit tests: the /status JSON and the /metrics text rendered from a broker_view.
 */
#include <check.h>
#include <ctype.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "status.h"
#include "teststatus.h"

/* ONE: a single view as the array render_status and render_metrics take. */
#define ONE(v) ((const struct broker_view *const[]){(v)})

#define BIG_ENQ   ((UINT64_C(1) << 40) + 3)  /* beyond 32 bits */
#define BIG_BYTES UINT64_C(1000000000000000) /* 1e15: cJSON alone would print "1e+15" */
#define HUGE_CTR  UINT64_MAX                 /* beyond 2^53: a double cannot hold it */

/* A queue name with the characters JSON and Prometheus labels must escape. */
static const char weird_name[] = "/q\"uo\\te";

/* fill_view: V with known, distinct numbers, queue NAME and four clients. */
static void fill_view(struct broker_view *v, const char *name)
{
	memset(v, 0, sizeof(*v));
	snprintf(v->name, sizeof(v->name), "%s", name);
	v->stats = (struct mq_stats){
	        .capacity = 1024,
	        .max_msg_size = 4096,
	        .depth = 3,
	        .high_water = 17,
	        .enqueued_total = BIG_ENQ,
	        .dequeued_total = 997,
	        .bytes_enqueued_total = BIG_BYTES,
	        .bytes_dequeued_total = HUGE_CTR,
	        .blocked_sends_total = 2,
	        .blocked_recvs_total = 40,
	        .full_total = 5,
	        .empty_total = 6,
	        .recoveries_total = 1,
	        .lock_repairs_total = 7,
	        .in_flight = 2,
	        .acked_total = 900,
	        .nacked_total = 4,
	        .redelivered_total = 5,
	        .producers = 1,
	        .consumers = 2,
	        .clients = 3,
	        .broker_pid = 4242,
	        .created_unix_ns = INT64_C(1700000000123000000),
	};
	v->clients[0] = (struct mq_client_info){4300, MQ_ROLE_PRODUCER, 1, 1000, 0, 64000, 0, 0};
	v->clients[1] = (struct mq_client_info){4301, MQ_ROLE_CONSUMER, 1, 0, 997, 0, 63808, 0};
	v->clients[2] = (struct mq_client_info){
	        4302, MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER, 0, BIG_ENQ, 5, 0, 0, 0};
	v->clients[3] = (struct mq_client_info){4303, 0, 1, 0, 0, 0, 0, 0};
	v->clients[1].in_flight = 2;
	v->clients[1].acked_total = 900;
	v->clients[1].nacked_total = 4;
	v->clients[1].oldest_lease_age_ns = INT64_C(1500000000);
	v->nclients = 4;
	v->enq_rate[0] = 0;
	v->enq_rate[1] = 12.5;
	v->enq_rate[2] = 3.14159;
	v->deq_rate[0] = NAN; /* not a number must never reach the JSON */
	v->deq_rate[1] = 12.4;
	v->deq_rate[2] = 3.1;
	v->broker_pid = 4242;
	v->uptime_s = 12.54;
	v->version = "0.1.0";
}

/* ---- /status ---- */

static cJSON *parse_status(const struct broker_view *v, char **text)
{
	char *s = render_status(ONE(v), 1);
	ck_assert_ptr_nonnull(s);
	cJSON *doc = cJSON_Parse(s);
	ck_assert_msg(doc != NULL, "render_status is not JSON: %s", s);
	if (text)
		*text = s;
	else
		free(s);
	return doc;
}

static const cJSON *get(const cJSON *o, const char *key)
{
	const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, key);
	ck_assert_msg(x != NULL, "key \"%s\" missing", key);
	return x;
}

static double num(const cJSON *o, const char *key)
{
	const cJSON *x = get(o, key);
	ck_assert_msg(cJSON_IsNumber(x), "key \"%s\" is not a number", key);
	return x->valuedouble;
}

static const char *str(const cJSON *o, const char *key)
{
	const cJSON *x = get(o, key);
	ck_assert_msg(cJSON_IsString(x), "key \"%s\" is not a string", key);
	return x->valuestring;
}

START_TEST(test_status_broker_object)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	cJSON *doc = parse_status(&v, NULL);
	const cJSON *b = get(doc, "broker");
	ck_assert(cJSON_IsObject(b));
	ck_assert_str_eq(str(b, "version"), "0.1.0");
	ck_assert_int_eq((int)num(b, "pid"), 4242);
	ck_assert_double_eq_tol(num(b, "uptime_s"), 12.5, 1e-9);
	const cJSON *qs = get(doc, "queues");
	ck_assert(cJSON_IsArray(qs));
	ck_assert_int_eq(cJSON_GetArraySize(qs), 1);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_status_version_defaults)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	v.version = NULL;
	cJSON *doc = parse_status(&v, NULL);
	ck_assert_str_eq(str(get(doc, "broker"), "version"), BROKER_VERSION);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_status_queue_keys_and_values)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	cJSON *doc = parse_status(&v, NULL);
	const cJSON *q = cJSON_GetArrayItem(get(doc, "queues"), 0);
	ck_assert(cJSON_IsObject(q));
	for (size_t i = 0; i < STATUS_QUEUE_KEYS; i++)
		get(q, status_queue_keys[i]);

	ck_assert_str_eq(str(q, "name"), "/messagequeue");
	ck_assert_double_eq(num(q, "capacity"), 1024);
	ck_assert_double_eq(num(q, "max_msg_size"), 4096);
	ck_assert_double_eq(num(q, "depth"), 3);
	ck_assert_double_eq(num(q, "high_water"), 17);
	ck_assert_double_eq(num(q, "enqueued_total"), (double)BIG_ENQ);
	ck_assert_double_eq(num(q, "dequeued_total"), 997);
	ck_assert_double_eq(num(q, "bytes_enqueued_total"), 1e15);
	ck_assert_double_eq(num(q, "blocked_sends_total"), 2);
	ck_assert_double_eq(num(q, "blocked_recvs_total"), 40);
	ck_assert_double_eq(num(q, "recoveries_total"), 1);
	ck_assert_double_eq(num(q, "producers"), 1);
	ck_assert_double_eq(num(q, "consumers"), 2);
	/* Extras beyond the fixed keys. */
	ck_assert_double_eq(num(q, "full_total"), 5);
	ck_assert_double_eq(num(q, "empty_total"), 6);
	ck_assert_double_eq(num(q, "lock_repairs_total"), 7);
	ck_assert_double_eq(num(q, "in_flight"), 2);
	ck_assert_double_eq(num(q, "acked_total"), 900);
	ck_assert_double_eq(num(q, "nacked_total"), 4);
	ck_assert_double_eq(num(q, "redelivered_total"), 5);
	ck_assert_str_eq(str(q, "state"), "ok");
	ck_assert_ptr_null(cJSON_GetObjectItemCaseSensitive(q, "error"));
	ck_assert_double_eq(num(q, "clients_attached"), 3);
	ck_assert_double_eq(num(q, "broker_pid"), 4242);
	ck_assert_double_eq_tol(num(q, "created_unix_s"), 1700000000.123, 1e-3);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_status_counters_are_integer_literals)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	char *text;
	cJSON *doc = parse_status(&v, &text);
	ck_assert_ptr_nonnull(strstr(text, "\"enqueued_total\":1099511627779,"));
	ck_assert_ptr_nonnull(strstr(text, "\"bytes_enqueued_total\":1000000000000000,"));
	ck_assert_ptr_nonnull(strstr(text, "\"bytes_dequeued_total\":18446744073709551615,"));
	ck_assert_ptr_nonnull(strstr(text, "\"capacity\":1024,"));
	ck_assert_ptr_nonnull(strstr(text, "\"sent_total\":1099511627779,"));
	ck_assert_msg(strstr(text, "e+") == NULL && strstr(text, "E+") == NULL,
	              "exponent notation in %s", text);
	ck_assert_msg(strchr(text, '\n') == NULL, "not compact: %s", text);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_status_rates_rounded)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	cJSON *doc = parse_status(&v, NULL);
	const cJSON *q = cJSON_GetArrayItem(get(doc, "queues"), 0);
	const cJSON *rates = get(q, "rates");
	const cJSON *enq = get(rates, "enqueue_per_s");
	const cJSON *deq = get(rates, "dequeue_per_s");
	ck_assert_double_eq(num(enq, "1s"), 0);
	ck_assert_double_eq_tol(num(enq, "10s"), 12.5, 1e-9);
	ck_assert_double_eq_tol(num(enq, "60s"), 3.14, 1e-9);
	ck_assert_double_eq(num(deq, "1s"), 0); /* NaN became 0 */
	ck_assert_double_eq_tol(num(deq, "10s"), 12.4, 1e-9);
	ck_assert_double_eq_tol(num(deq, "60s"), 3.1, 1e-9);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_status_clients)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	cJSON *doc = parse_status(&v, NULL);
	const cJSON *q = cJSON_GetArrayItem(get(doc, "queues"), 0);
	const cJSON *cl = get(q, "clients");
	ck_assert(cJSON_IsArray(cl));
	ck_assert_int_eq(cJSON_GetArraySize(cl), 4);
	static const char *const roles[] = {"producer", "consumer", "both", "idle"};
	static const bool alive[] = {true, true, false, true};
	for (int i = 0; i < 4; i++) {
		const cJSON *c = cJSON_GetArrayItem(cl, i);
		ck_assert_double_eq(num(c, "pid"), 4300 + i);
		ck_assert_str_eq(str(c, "role"), roles[i]);
		const cJSON *a = get(c, "alive");
		ck_assert(cJSON_IsBool(a));
		ck_assert_int_eq(cJSON_IsTrue(a), alive[i]);
		ck_assert_double_eq(num(c, "sent_total"), (double)v.clients[i].sent_total);
		ck_assert_double_eq(num(c, "received_total"), (double)v.clients[i].received_total);
	}
	ck_assert_double_eq(num(cJSON_GetArrayItem(cl, 0), "bytes_sent_total"), 64000);
	ck_assert_double_eq(num(cJSON_GetArrayItem(cl, 1), "bytes_received_total"), 63808);
	ck_assert_double_eq(num(cJSON_GetArrayItem(cl, 1), "in_flight"), 2);
	ck_assert_double_eq(num(cJSON_GetArrayItem(cl, 1), "acked_total"), 900);
	ck_assert_double_eq(num(cJSON_GetArrayItem(cl, 1), "nacked_total"), 4);
	ck_assert_double_eq(num(cJSON_GetArrayItem(cl, 1), "oldest_lease_age_s"), 1.5);
	ck_assert_double_eq(num(cJSON_GetArrayItem(cl, 0), "oldest_lease_age_s"), 0);
	cJSON_Delete(doc);
}
END_TEST

/* A damaged queue: "state" says so, "error" says why (control characters
 * escaped by cJSON), and mq_queue_damaged is 1. */
START_TEST(test_status_damaged)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	v.damaged = 1;
	snprintf(v.problem, sizeof(v.problem), "queue /messagequeue: damaged: its file shrank\n");
	cJSON *doc = parse_status(&v, NULL);
	const cJSON *q = cJSON_GetArrayItem(get(doc, "queues"), 0);
	ck_assert_str_eq(str(q, "state"), "damaged");
	ck_assert_str_eq(str(q, "error"), "queue /messagequeue: damaged: its file shrank\n");
	cJSON_Delete(doc);
	char *m = render_metrics(ONE(&v), 1);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(strstr(m, "\nmq_queue_damaged{queue=\"/messagequeue\"} 1\n"), "%s", m);
	free(m);
}
END_TEST

START_TEST(test_status_no_clients)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	v.nclients = 0;
	char *text;
	cJSON *doc = parse_status(&v, &text);
	ck_assert_ptr_nonnull(strstr(text, "\"clients\":[]"));
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_status_escapes_name)
{
	struct broker_view v;
	fill_view(&v, weird_name);
	char *text;
	cJSON *doc = parse_status(&v, &text);
	ck_assert_ptr_nonnull(strstr(text, "\"name\":\"/q\\\"uo\\\\te\""));
	ck_assert_str_eq(str(cJSON_GetArrayItem(get(doc, "queues"), 0), "name"), weird_name);
	free(text);
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_status_name_invalid_utf8_replaced)
{
	struct broker_view v;
	fill_view(&v, "/a\xff"
	              "b\xc3\xa9"
	              "c\xe2\x82");
	cJSON *doc = parse_status(&v, NULL);
	/* the stray bytes become '?', the valid "é" stays */
	ck_assert_str_eq(str(cJSON_GetArrayItem(get(doc, "queues"), 0), "name"), "/a?b\xc3\xa9"
	                                                                         "c??");
	cJSON_Delete(doc);
}
END_TEST

START_TEST(test_queue_is_element_of_status)
{
	struct broker_view v;
	fill_view(&v, weird_name);
	cJSON *doc = parse_status(&v, NULL);
	char *qs = render_queue(&v);
	ck_assert_ptr_nonnull(qs);
	cJSON *q = cJSON_Parse(qs);
	ck_assert_msg(q != NULL, "render_queue is not JSON: %s", qs);
	ck_assert(cJSON_IsObject(q));
	ck_assert(cJSON_Compare(q, cJSON_GetArrayItem(get(doc, "queues"), 0), 1));
	ck_assert_ptr_nonnull(strstr(qs, "\"bytes_dequeued_total\":18446744073709551615"));
	free(qs);
	cJSON_Delete(q);
	cJSON_Delete(doc);
}
END_TEST

/* ---- /metrics: a small parser of the Prometheus text format 0.0.4 ---- */

#define MAX_SAMPLES  64
#define MAX_FAMILIES 64

struct sample {
	char name[128];
	char labels[8][2][256]; /* name, unescaped value */
	int nlabels;
	char value[64];
};

struct family {
	char name[128];
	char type[16];
	bool help, typed, sampled;
};

struct page {
	struct sample samples[MAX_SAMPLES];
	int nsamples;
	struct family families[MAX_FAMILIES];
	int nfamilies;
};

static bool name_ok(const char *s, size_t n, bool colon)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || (colon && s[0] == ':')))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || (colon && s[i] == ':')))
			return false;
	return true;
}

/* REQUIRE: in a parse_* function, fail with a message in parse_err unless COND. */
static char parse_err[1200];
#define REQUIRE(cond, ...)                                                                         \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			snprintf(parse_err, sizeof(parse_err), __VA_ARGS__);                       \
			return false;                                                              \
		}                                                                                  \
	} while (0)

static struct family *family(struct page *p, const char *name)
{
	for (int i = 0; i < p->nfamilies; i++)
		if (strcmp(p->families[i].name, name) == 0)
			return &p->families[i];
	if (p->nfamilies == MAX_FAMILIES)
		return NULL;
	struct family *f = &p->families[p->nfamilies++];
	memset(f, 0, sizeof(*f));
	memcpy(f->name, name, strnlen(name, sizeof(f->name) - 1)); /* zeroed: terminated */
	return f;
}

/* family_of_sample: the family of sample NAME (a histogram/summary's _bucket,
 * _sum and _count belong to the base name if that one is typed). */
static struct family *family_of_sample(struct page *p, const char *name)
{
	static const char *const sfx[] = {"_bucket", "_sum", "_count"};
	for (size_t i = 0; i < 3; i++) {
		size_t n = strlen(name), k = strlen(sfx[i]);
		if (n > k && strcmp(name + n - k, sfx[i]) == 0) {
			char base[128];
			snprintf(base, sizeof(base), "%.*s", (int)(n - k), name);
			for (int j = 0; j < p->nfamilies; j++)
				if (strcmp(p->families[j].name, base) == 0 && p->families[j].typed)
					return &p->families[j];
		}
	}
	return family(p, name);
}

/* parse_sample: LINE ("name{l="v",...} value [timestamp]") into S. */
static bool parse_sample(const char *line, struct sample *s)
{
	memset(s, 0, sizeof(*s));
	const char *c = line;
	size_t n = strcspn(c, "{ ");
	REQUIRE(name_ok(c, n, true) && n < sizeof(s->name), "bad metric name: %s", line);
	memcpy(s->name, c, n);
	c += n;
	if (*c == '{') {
		c++;
		while (*c != '}') {
			REQUIRE(s->nlabels < 8, "too many labels: %s", line);
			size_t ln = strcspn(c, "=");
			REQUIRE(name_ok(c, ln, false) && ln < 256, "bad label name: %s", line);
			memcpy(s->labels[s->nlabels][0], c, ln);
			c += ln;
			REQUIRE(c[0] == '=' && c[1] == '"', "want =\" after a label name: %s",
			        line);
			c += 2;
			char *out = s->labels[s->nlabels][1];
			size_t o = 0;
			while (*c != '"') {
				REQUIRE(*c != '\0', "unterminated label value: %s", line);
				char ch = *c++;
				if (ch == '\\') {
					ch = *c++;
					REQUIRE(ch == '\\' || ch == '"' || ch == 'n',
					        "bad escape in a label value: %s", line);
					if (ch == 'n')
						ch = '\n';
				}
				REQUIRE(o < 255, "label value too long: %s", line);
				out[o++] = ch;
			}
			c++;
			s->nlabels++;
			if (*c == ',')
				c++;
			else
				REQUIRE(*c == '}', "want , or } after a label: %s", line);
		}
		c++;
	}
	REQUIRE(*c == ' ', "want one space before the value: %s", line);
	c++;
	size_t vn = strcspn(c, " ");
	REQUIRE(vn > 0 && vn < sizeof(s->value), "bad value: %s", line);
	memcpy(s->value, c, vn);
	if (strcmp(s->value, "+Inf") && strcmp(s->value, "-Inf") && strcmp(s->value, "NaN")) {
		char *end;
		strtod(s->value, &end);
		REQUIRE(*end == '\0', "bad value: %s", line);
	}
	c += vn;
	if (*c == ' ') { /* optional timestamp, an integer */
		c++;
		REQUIRE(*c && strspn(c, "-0123456789") == strlen(c), "bad timestamp: %s", line);
	}
	return true;
}

/* parse_page: TEXT, a whole text-format page, into P, checking the format's
 * rules. Returns false with the reason in parse_err. */
static bool parse_page(const char *text, struct page *p)
{
	memset(p, 0, sizeof(*p));
	size_t len = strlen(text);
	REQUIRE(len > 0 && text[len - 1] == '\n', "the last line must end with a newline");
	const char *line = text;
	while (*line) {
		const char *nl = strchr(line, '\n');
		char buf[1024];
		size_t n = (size_t)(nl - line);
		REQUIRE(n < sizeof(buf), "line too long");
		memcpy(buf, line, n);
		buf[n] = '\0';
		line = nl + 1;

		if (buf[0] == '\0')
			continue;
		if (strncmp(buf, "# HELP ", 7) == 0 || strncmp(buf, "# TYPE ", 7) == 0) {
			bool type = buf[2] == 'T';
			const char *name = buf + 7;
			size_t nn = strcspn(name, " ");
			REQUIRE(name_ok(name, nn, true) && name[nn] == ' ' && nn < 128,
			        "bad line: %s", buf);
			char fname[128];
			snprintf(fname, sizeof(fname), "%.*s", (int)nn, name);
			struct family *f = family(p, fname);
			REQUIRE(f, "too many metrics");
			const char *rest = name + nn + 1;
			if (type) {
				REQUIRE(!f->typed, "second TYPE for %s", fname);
				REQUIRE(!f->sampled, "TYPE after samples of %s", fname);
				REQUIRE(strcmp(rest, "counter") == 0 ||
				                strcmp(rest, "gauge") == 0 ||
				                strcmp(rest, "histogram") == 0 ||
				                strcmp(rest, "summary") == 0 ||
				                strcmp(rest, "untyped") == 0,
				        "bad type: %s", buf);
				snprintf(f->type, sizeof(f->type), "%s", rest);
				f->typed = true;
			} else {
				REQUIRE(!f->help, "second HELP for %s", fname);
				REQUIRE(*rest != '\0', "empty HELP for %s", fname);
				f->help = true;
			}
			continue;
		}
		if (buf[0] == '#')
			continue; /* a plain comment */
		REQUIRE(p->nsamples < MAX_SAMPLES, "too many samples");
		struct sample *s = &p->samples[p->nsamples++];
		if (!parse_sample(buf, s))
			return false;
		struct family *f = family_of_sample(p, s->name);
		REQUIRE(f, "too many metrics");
		REQUIRE(f->typed, "sample of %s without a preceding TYPE", s->name);
		f->sampled = true;
	}
	return true;
}

static const struct family *find_family(const struct page *p, const char *name)
{
	for (int i = 0; i < p->nfamilies; i++)
		if (strcmp(p->families[i].name, name) == 0)
			return &p->families[i];
	return NULL;
}

static const char *label(const struct sample *s, const char *name)
{
	for (int i = 0; i < s->nlabels; i++)
		if (strcmp(s->labels[i][0], name) == 0)
			return s->labels[i][1];
	return NULL;
}

/* find_sample: the sample NAME whose label LNAME is LVALUE (LNAME NULL: the first one). */
static const struct sample *find_sample(const struct page *p, const char *name, const char *lname,
                                        const char *lvalue)
{
	for (int i = 0; i < p->nsamples; i++) {
		const struct sample *s = &p->samples[i];
		if (strcmp(s->name, name) != 0)
			continue;
		if (!lname)
			return s;
		const char *l = label(s, lname);
		if (l && strcmp(l, lvalue) == 0)
			return s;
	}
	return NULL;
}

static void render_page(const struct broker_view *v, struct page *p, char **text)
{
	char *t = render_metrics(ONE(v), 1);
	ck_assert_ptr_nonnull(t);
	ck_assert_msg(parse_page(t, p), "not Prometheus text format: %s\n%s", parse_err, t);
	if (text)
		*text = t;
	else
		free(t);
}

/* The per-queue metrics, their types and the values fill_view gives them. */
static const struct {
	const char *name, *type, *value;
} queue_metrics[] = {
        {"mq_queue_depth", "gauge", "3"},
        {"mq_queue_capacity", "gauge", "1024"},
        {"mq_queue_high_water", "gauge", "17"},
        {"mq_messages_enqueued_total", "counter", "1099511627779"},
        {"mq_messages_dequeued_total", "counter", "997"},
        {"mq_bytes_enqueued_total", "counter", "1000000000000000"},
        {"mq_bytes_dequeued_total", "counter", "18446744073709551615"},
        {"mq_blocked_sends_total", "counter", "2"},
        {"mq_blocked_receives_total", "counter", "40"},
        {"mq_client_recoveries_total", "counter", "1"},
        /* extras */
        {"mq_queue_max_message_bytes", "gauge", "4096"},
        {"mq_queue_full_total", "counter", "5"},
        {"mq_queue_empty_total", "counter", "6"},
        {"mq_lock_repairs_total", "counter", "7"},
        {"mq_clients_attached", "gauge", "3"},
        {"mq_messages_in_flight", "gauge", "2"},
        {"mq_messages_acked_total", "counter", "900"},
        {"mq_messages_nacked_total", "counter", "4"},
        {"mq_messages_redelivered_total", "counter", "5"},
        {"mq_queue_damaged", "gauge", "0"},
};

START_TEST(test_metrics_queue_families)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	struct page *p = malloc(sizeof(*p));
	render_page(&v, p, NULL);
	for (size_t i = 0; i < sizeof(queue_metrics) / sizeof(queue_metrics[0]); i++) {
		const struct family *f = find_family(p, queue_metrics[i].name);
		ck_assert_msg(f != NULL, "metric %s missing", queue_metrics[i].name);
		ck_assert_msg(f->help, "no HELP for %s", f->name);
		ck_assert_str_eq(f->type, queue_metrics[i].type);
		const struct sample *s = find_sample(p, f->name, "queue", "/messagequeue");
		ck_assert_msg(s != NULL, "no sample of %s for the queue", f->name);
		ck_assert_msg(strcmp(s->value, queue_metrics[i].value) == 0, "%s is %s, want %s",
		              f->name, s->value, queue_metrics[i].value);
	}
	free(p);
}
END_TEST

/* render_role: mqbridge shows as "bridge" whichever way it carries messages. */
START_TEST(test_role_names)
{
	ck_assert_str_eq(render_role(0), "idle");
	ck_assert_str_eq(render_role(MQ_ROLE_PRODUCER), "producer");
	ck_assert_str_eq(render_role(MQ_ROLE_CONSUMER), "consumer");
	ck_assert_str_eq(render_role(MQ_ROLE_PRODUCER | MQ_ROLE_CONSUMER), "both");
	ck_assert_str_eq(render_role(MQ_ROLE_BRIDGE), "bridge");
	ck_assert_str_eq(render_role(MQ_ROLE_BRIDGE | MQ_ROLE_PRODUCER), "bridge");
	ck_assert_str_eq(render_role(MQ_ROLE_BRIDGE | MQ_ROLE_CONSUMER), "bridge");
}
END_TEST

START_TEST(test_metrics_clients_by_role)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	struct page *p = malloc(sizeof(*p));
	render_page(&v, p, NULL);
	const struct family *f = find_family(p, "mq_clients");
	ck_assert_ptr_nonnull(f);
	ck_assert(f->help);
	ck_assert_str_eq(f->type, "gauge");
	const struct sample *prod = find_sample(p, "mq_clients", "role", "producer");
	const struct sample *cons = find_sample(p, "mq_clients", "role", "consumer");
	ck_assert_ptr_nonnull(prod);
	ck_assert_ptr_nonnull(cons);
	ck_assert_str_eq(prod->value, "1");
	ck_assert_str_eq(cons->value, "2");
	ck_assert_str_eq(label(prod, "queue"), "/messagequeue");
	ck_assert_str_eq(label(cons, "queue"), "/messagequeue");
	free(p);
}
END_TEST

START_TEST(test_metrics_broker_families)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	struct page *p = malloc(sizeof(*p));
	render_page(&v, p, NULL);
	const struct family *up = find_family(p, "mq_broker_uptime_seconds");
	ck_assert_ptr_nonnull(up);
	ck_assert(up->help);
	ck_assert_str_eq(up->type, "gauge");
	const struct sample *s = find_sample(p, "mq_broker_uptime_seconds", NULL, NULL);
	ck_assert_ptr_nonnull(s);
	ck_assert_double_eq_tol(strtod(s->value, NULL), 12.54, 1e-6);

	const struct family *bi = find_family(p, "mq_build_info");
	ck_assert_ptr_nonnull(bi);
	ck_assert(bi->help);
	ck_assert_str_eq(bi->type, "gauge");
	s = find_sample(p, "mq_build_info", "version", "0.1.0");
	ck_assert_ptr_nonnull(s);
	ck_assert_str_eq(s->value, "1");
	free(p);
}
END_TEST

START_TEST(test_metrics_counters_named_total)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	struct page *p = malloc(sizeof(*p));
	render_page(&v, p, NULL);
	for (int i = 0; i < p->nfamilies; i++) {
		const struct family *f = &p->families[i];
		size_t n = strlen(f->name);
		bool total = n > 6 && strcmp(f->name + n - 6, "_total") == 0;
		ck_assert_msg(strncmp(f->name, "mq_", 3) == 0, "%s lacks the mq_ prefix", f->name);
		ck_assert_msg(total == (strcmp(f->type, "counter") == 0),
		              "%s: counters and only counters end in _total", f->name);
		ck_assert_msg(f->sampled, "%s has HELP/TYPE but no sample", f->name);
	}
	free(p);
}
END_TEST

START_TEST(test_metrics_integers_without_exponent)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	char *text;
	struct page *p = malloc(sizeof(*p));
	render_page(&v, p, &text);
	ck_assert_ptr_nonnull(strstr(
	        text, "\nmq_bytes_dequeued_total{queue=\"/messagequeue\"} 18446744073709551615\n"));
	ck_assert_ptr_nonnull(strstr(
	        text, "\nmq_bytes_enqueued_total{queue=\"/messagequeue\"} 1000000000000000\n"));
	ck_assert_msg(strstr(text, "e+") == NULL, "exponent notation in:\n%s", text);
	free(text);
	free(p);
}
END_TEST

START_TEST(test_metrics_label_escaping)
{
	struct broker_view v;
	fill_view(&v, weird_name);
	char *text;
	struct page *p = malloc(sizeof(*p));
	render_page(&v, p, &text);
	ck_assert_ptr_nonnull(strstr(text, "mq_queue_depth{queue=\"/q\\\"uo\\\\te\"} 3\n"));
	const struct sample *s = find_sample(p, "mq_queue_depth", "queue", weird_name);
	ck_assert_ptr_nonnull(s);
	free(text);

	/* a newline in a name (legal in POSIX) must not break the line */
	fill_view(&v, "/a\nb");
	render_page(&v, p, &text);
	ck_assert_ptr_nonnull(strstr(text, "mq_queue_depth{queue=\"/a\\nb\"} 3\n"));
	ck_assert_ptr_nonnull(find_sample(p, "mq_messages_enqueued_total", "queue", "/a\nb"));
	ck_assert_ptr_nonnull(find_sample(p, "mq_clients", "queue", "/a\nb"));
	free(text);
	free(p);
}
END_TEST

START_TEST(test_metrics_version_label_escaped)
{
	struct broker_view v;
	fill_view(&v, "/messagequeue");
	v.version = "1.0\"x";
	struct page *p = malloc(sizeof(*p));
	render_page(&v, p, NULL);
	ck_assert_ptr_nonnull(find_sample(p, "mq_build_info", "version", "1.0\"x"));
	free(p);
}
END_TEST

/* The parser must reject what the format forbids, or the tests above prove little. */
START_TEST(test_parser_rejects_invalid_pages)
{
	static const char *const bad[] = {
	        "# HELP x_total a\nx_total 1\n",          /* no TYPE */
	        "# TYPE x gauge\nx{q=\"a\\tb\"} 1\n",     /* bad escape */
	        "# TYPE 1x gauge\n1x 1\n",                /* bad name */
	        "# TYPE x gauge\nx 1",                    /* no final newline */
	        "# TYPE x gauge\nx{q=\"a\"}  1\n",        /* two spaces */
	        "# TYPE x gauge\nx{q=\"a} 1\n",           /* unterminated value */
	        "# TYPE x gauge\nx 1e\n",                 /* bad value */
	        "# TYPE x gauge\nx 1\n# TYPE x gauge\n",  /* second TYPE */
	        "# TYPE x gauge\nx{q=\"a\" r=\"b\"} 1\n", /* no comma */
	        "# TYPE x nonsense\nx 1\n",               /* bad type */
	};
	struct page *p = malloc(sizeof(*p));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!parse_page(bad[i], p), "accepted: %s", bad[i]);
	free(p);
}
END_TEST

START_TEST(test_parser_accepts_valid_page)
{
	struct page *p = malloc(sizeof(*p));
	ck_assert_msg(parse_page("# HELP a_total x\n# TYPE a_total counter\n"
	                         "a_total{q=\"\\\\\\\"\\n\",r=\"\"} 1.5e3 123\n"
	                         "# a comment\n\n# TYPE b gauge\nb NaN\n",
	                         p),
	              "%s", parse_err);
	ck_assert_int_eq(p->nsamples, 2);
	ck_assert_str_eq(label(&p->samples[0], "q"), "\\\"\n");
	ck_assert_str_eq(label(&p->samples[0], "r"), "");
	free(p);
}
END_TEST

/* ---- many queues, time in queue ---- */

/* Several views: "queues" in order; one not open has only name, state and
 * error; every series of /metrics once per open queue, the damaged gauge
 * for all; the histogram's buckets cumulative, +Inf equal to _count. */
START_TEST(test_many_queues)
{
	static struct broker_view a, b, c;
	fill_view(&a, "/orders");
	fill_view(&b, "/refunds");
	fill_view(&c, "/broken");
	b.stats.depth = 9;
	b.stats.oldest_age_ns = UINT64_C(2500000000);
	b.have_tiq = 1;
	b.tiq_total.bucket[0] = 5;  /* < 1.024 us */
	b.tiq_total.bucket[41] = 7; /* [2^20, 1.25 * 2^20) ns */
	b.tiq_total.count = 12;
	b.tiq_total.sum_ns = UINT64_C(9000000);
	b.tiq_total.max_ns = 1200000;
	b.tiq_window = (struct tiq_summary){
	        .count = 7, .p50 = 0.001, .p90 = 0.0011, .p99 = 0.0012, .max = 0.0012};
	b.tiq_window_s = 60;
	memset(&c, 0, sizeof(c));
	snprintf(c.name, sizeof(c.name), "/broken");
	c.no_stats = 1;
	c.damaged = 1;
	snprintf(c.problem, sizeof(c.problem), "queue /broken: not a libmq queue");
	const struct broker_view *all[3] = {&a, &b, &c};
	char *text = render_status(all, 3);
	ck_assert_ptr_nonnull(text);
	cJSON *doc = cJSON_Parse(text);
	ck_assert_ptr_nonnull(doc);
	const cJSON *qs = get(doc, "queues");
	ck_assert_int_eq(cJSON_GetArraySize(qs), 3);
	const cJSON *qa = cJSON_GetArrayItem(qs, 0), *qb = cJSON_GetArrayItem(qs, 1),
	            *qc = cJSON_GetArrayItem(qs, 2);
	ck_assert_str_eq(str(qa, "name"), "/orders");
	ck_assert_str_eq(str(qb, "name"), "/refunds");
	ck_assert_int_eq((int)num(qb, "depth"), 9);
	ck_assert_double_eq_tol(num(qb, "oldest_age_s"), 2.5, 1e-9);
	const cJSON *t = get(qb, "time_in_queue_s");
	ck_assert_double_eq_tol(num(t, "p50"), 0.001, 1e-12);
	ck_assert_double_eq_tol(num(t, "p99"), 0.0012, 1e-12);
	ck_assert_double_eq_tol(num(t, "max"), 0.0012, 1e-12);
	ck_assert_int_eq((int)num(t, "count"), 7);
	/* a queue without figures: null percentiles, count 0 */
	const cJSON *ta = get(qa, "time_in_queue_s");
	ck_assert(cJSON_IsNull(get(ta, "p50")) && cJSON_IsNull(get(ta, "max")));
	ck_assert_int_eq((int)num(ta, "count"), 0);
	ck_assert_str_eq(str(qc, "state"), "damaged");
	ck_assert_str_eq(str(qc, "error"), "queue /broken: not a libmq queue");
	ck_assert_int_eq(cJSON_GetArraySize(qc), 3); /* name, state, error: nothing else */
	cJSON_Delete(doc);
	free(text);

	char *m = render_metrics(all, 3);
	ck_assert_ptr_nonnull(m);
	ck_assert_msg(strstr(m, "mq_queue_depth{queue=\"/orders\"} "
	                        "3\nmq_queue_depth{queue=\"/refunds\"} 9\n# HELP"),
	              "%.3000s", m);
	ck_assert_msg(!strstr(m, "mq_queue_depth{queue=\"/broken\"}"), "%.3000s", m);
	ck_assert_msg(strstr(m, "mq_queue_damaged{queue=\"/orders\"} "
	                        "0\nmq_queue_damaged{queue=\"/refunds\"} "
	                        "0\nmq_queue_damaged{queue=\"/broken\"} 1\n"),
	              "%.3000s", m);
	ck_assert_msg(
	        strstr(m, "mq_queue_oldest_message_age_seconds{queue=\"/refunds\"} 2.500000\n"),
	        "%.3000s", m);
	ck_assert_msg(strstr(m, "# TYPE mq_message_time_in_queue_seconds histogram\n"), "%.3000s",
	              m);
	ck_assert_msg(strstr(m, "mq_message_time_in_queue_seconds_bucket{queue=\"/"
	                        "refunds\",le=\"1.024e-06\"} 5\n"),
	              "%.3000s", m);
	/* below le 2^20 ns there are 5, below 2^22 all 12 */
	ck_assert_msg(strstr(m, "mq_message_time_in_queue_seconds_bucket{queue=\"/"
	                        "refunds\",le=\"0.001048576\"} 5\n"),
	              "%.3000s", m);
	ck_assert_msg(strstr(m, "mq_message_time_in_queue_seconds_bucket{queue=\"/"
	                        "refunds\",le=\"0.004194304\"} 12\n"),
	              "%.3000s", m);
	ck_assert_msg(
	        strstr(m, "mq_message_time_in_queue_seconds_bucket{queue=\"/refunds\",le=\"+Inf\"} "
	                  "12\n"
	                  "mq_message_time_in_queue_seconds_sum{queue=\"/refunds\"} 0.009000000\n"
	                  "mq_message_time_in_queue_seconds_count{queue=\"/refunds\"} 12\n"),
	        "%.3000s", m);
	ck_assert_msg(!strstr(m, "mq_message_time_in_queue_seconds_count{queue=\"/orders\"}"), "%s",
	              m);
	free(m);

	/* no queue at all: a valid, empty list */
	text = render_status(all, 0);
	ck_assert_ptr_nonnull(text);
	ck_assert_ptr_nonnull(strstr(text, "\"queues\":[]"));
	free(text);
}
END_TEST

/* /healthz: ok with every queue sound; damaged naming the bad ones with
 * their reasons, names made valid UTF-8 (the document stays JSON). */
START_TEST(test_health)
{
	static struct broker_view a, b;
	fill_view(&a, "/good");
	fill_view(&b, "/bad\xff");
	const struct broker_view *all[2] = {&a, &b};
	int bad = -1;
	char *t = render_health(all, 2, 77, &bad);
	ck_assert_int_eq(bad, 0);
	ck_assert_str_eq(t, "{\"status\":\"ok\",\"pid\":77,\"queues\":2}");
	free(t);
	b.refused = 1;
	snprintf(b.problem, sizeof(b.problem), "owned by uid 5\xfe");
	t = render_health(all, 2, 77, &bad);
	ck_assert_int_eq(bad, 1);
	cJSON *d = cJSON_Parse(t);
	ck_assert_msg(d != NULL, "not JSON: %s", t);
	ck_assert_str_eq(str(d, "status"), "damaged");
	const cJSON *names = get(d, "damaged");
	ck_assert_int_eq(cJSON_GetArraySize(names), 1);
	ck_assert_str_eq(cJSON_GetArrayItem(names, 0)->valuestring, "/bad?");
	ck_assert_str_eq(str(get(d, "errors"), "/bad?"), "owned by uid 5?");
	ck_assert_str_eq(str(d, "error"), "owned by uid 5?");
	cJSON_Delete(d);
	free(t);
}
END_TEST

/* A refused queue: "state":"refused" with its reason. */
START_TEST(test_refused_queue)
{
	static struct broker_view v;
	memset(&v, 0, sizeof(v));
	snprintf(v.name, sizeof(v.name), "/theirs");
	v.no_stats = 1;
	v.refused = 1;
	snprintf(v.problem, sizeof(v.problem), "queue /theirs is owned by nobody (uid 65534)");
	char *text = render_queue(&v);
	ck_assert_ptr_nonnull(text);
	ck_assert_str_eq(text,
	                 "{\"name\":\"/theirs\",\"state\":\"refused\",\"error\":\"queue /theirs is "
	                 "owned by nobody (uid 65534)\"}");
	free(text);
}
END_TEST

static Suite *render_suite(void)
{
	Suite *s = suite_create("render");
	TCase *tc = tcase_create("status");
	tcase_add_test(tc, test_status_broker_object);
	tcase_add_test(tc, test_status_version_defaults);
	tcase_add_test(tc, test_status_queue_keys_and_values);
	tcase_add_test(tc, test_status_counters_are_integer_literals);
	tcase_add_test(tc, test_status_rates_rounded);
	tcase_add_test(tc, test_status_clients);
	tcase_add_test(tc, test_status_no_clients);
	tcase_add_test(tc, test_status_damaged);
	tcase_add_test(tc, test_status_escapes_name);
	tcase_add_test(tc, test_status_name_invalid_utf8_replaced);
	tcase_add_test(tc, test_queue_is_element_of_status);
	tcase_add_test(tc, test_many_queues);
	tcase_add_test(tc, test_refused_queue);
	tcase_add_test(tc, test_health);
	suite_add_tcase(s, tc);

	tc = tcase_create("metrics");
	tcase_add_test(tc, test_metrics_queue_families);
	tcase_add_test(tc, test_metrics_clients_by_role);
	tcase_add_test(tc, test_role_names);
	tcase_add_test(tc, test_metrics_broker_families);
	tcase_add_test(tc, test_metrics_counters_named_total);
	tcase_add_test(tc, test_metrics_integers_without_exponent);
	tcase_add_test(tc, test_metrics_label_escaping);
	tcase_add_test(tc, test_metrics_version_label_escaped);
	suite_add_tcase(s, tc);

	tc = tcase_create("parser");
	tcase_add_test(tc, test_parser_accepts_valid_page);
	tcase_add_test(tc, test_parser_rejects_invalid_pages);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(render_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
