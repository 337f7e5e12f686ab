/* test_stats.c - mqbridge's statistics and endpoints (bridge/stats.c, bridge/endpoints.c):
 * credentials kept out of URLs, the /status, /healthz and /metrics documents of known counters. */
#include <check.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "bridge.h"
#include "stats.h"

static struct bridge_stats st;

START_TEST(test_strip_credentials)
{
	static const char *const cases[][2] = {
	        {"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
	        {"nats://alice:secret@h:4222", "nats://h:4222"},
	        {"tls://tok3n@h", "tls://h"},
	        {"nats://u:p@ss@h:1,nats://h2:2,x:y@h3:3", "nats://h:1,nats://h2:2,h3:3"},
	        {"h:4222", "h:4222"},
	        {"nats://h:1/p@th", "nats://h:1/p@th"},
	        {"", ""},
	};
	char out[128];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		ck_assert_str_eq(stats_strip_credentials(cases[i][0], out, sizeof(out)),
		                 cases[i][1]);
	char tiny[8];
	ck_assert_str_eq(stats_strip_credentials("nats://a:b@hostname", tiny, sizeof(tiny)),
	                 "nats://");
}
END_TEST

/* Two routes with known counters, as the routes' threads would leave them. */
static void setup(void)
{
	struct bridge_opts o;
	memset(&o, 0, sizeof(o));
	strcpy(o.stream, "S");
	strcpy(o.nats_url, "nats://bob:pw@127.0.0.1:4222");
	o.nroutes = 2;
	o.routes[0] = (struct route){.dir = ROUTE_EXPORT, .queue = "/qa", .subject = "a.b"};
	o.routes[1] = (struct route){.dir = ROUTE_IMPORT, .queue = "/q\"b", .subject = "a.>"};
	stats_init(&st, &o);
	struct route_stats *ex = &st.routes[0], *im = &st.routes[1];
	stats_state(ex, ROUTE_RUNNING);
	stats_count(&ex->forwarded, 5);
	stats_count(&ex->duplicates, 1);
	stats_in_flight(ex, 2);
	for (int i = 0; i < 5; i++)
		hist_record(&ex->latency, 1000);
	stats_state(im, ROUTE_WAITING_ROOM);
	stats_count(&im->forwarded, 7);
	stats_count(&im->errors, 1);
	stats_error(&im->last, "fetch failed: timeout");
}

static void teardown(void)
{
	stats_destroy(&st);
}

START_TEST(test_status)
{
	char *body = endpoints_status(&st);
	ck_assert_ptr_nonnull(body);
	cJSON *d = cJSON_Parse(body);
	ck_assert_ptr_nonnull(d);
	cJSON *b = cJSON_GetObjectItem(d, "bridge"), *n = cJSON_GetObjectItem(d, "nats");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "stream")->valuestring, "S");
	ck_assert_str_eq(cJSON_GetObjectItem(n, "state")->valuestring, "connecting");
	ck_assert_str_eq(cJSON_GetObjectItem(n, "url")->valuestring, "nats://127.0.0.1:4222");
	ck_assert_ptr_null(strstr(body, "pw")); /* no password anywhere */
	cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "routes"), 0);
	cJSON *r1 = cJSON_GetArrayItem(cJSON_GetObjectItem(d, "routes"), 1);
	ck_assert_str_eq(cJSON_GetObjectItem(r0, "route")->valuestring, "/qa=a.b");
	ck_assert_str_eq(cJSON_GetObjectItem(r0, "direction")->valuestring, "export");
	ck_assert_str_eq(cJSON_GetObjectItem(r0, "state")->valuestring, "running");
	ck_assert_int_eq(cJSON_GetObjectItem(r0, "forwarded_total")->valueint, 5);
	ck_assert_int_eq(cJSON_GetObjectItem(r0, "in_flight")->valueint, 2);
	ck_assert_int_eq(cJSON_GetObjectItem(r0, "duplicates_total")->valueint, 1);
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(r0, "last_error")));
	cJSON *lat = cJSON_GetObjectItem(r0, "latency_s");
	ck_assert_int_eq(cJSON_GetObjectItem(lat, "count")->valueint, 5);
	double p50 = cJSON_GetObjectItem(lat, "p50")->valuedouble;
	ck_assert_msg(p50 > 0.00075 && p50 <= 0.00125, "p50 %f", p50);
	ck_assert_str_eq(cJSON_GetObjectItem(r1, "route")->valuestring, "a.>=/q\"b");
	ck_assert_str_eq(cJSON_GetObjectItem(r1, "state")->valuestring, "waiting_for_room");
	ck_assert_ptr_nonnull(cJSON_GetObjectItem(r1, "skipped_total"));
	ck_assert_ptr_null(cJSON_GetObjectItem(r1, "duplicates_total"));
	ck_assert_str_eq(
	        cJSON_GetObjectItem(cJSON_GetObjectItem(r1, "last_error"), "text")->valuestring,
	        "fetch failed: timeout");
	ck_assert(cJSON_IsNull(cJSON_GetObjectItem(cJSON_GetObjectItem(r1, "latency_s"), "p99")));
	cJSON_Delete(d);
	free(body);
}
END_TEST

START_TEST(test_health)
{
	int bad = -1;
	char *body = endpoints_health(&st, &bad);
	ck_assert_int_eq(bad, 2); /* not connected; the import waits for room */
	ck_assert_ptr_nonnull(strstr(body, "\"status\":\"unavailable\""));
	ck_assert_ptr_nonnull(strstr(body, "NATS is connecting"));
	ck_assert_ptr_nonnull(strstr(body, "import a.>=/q\\\"b: waiting_for_room"));
	free(body);
}
END_TEST

START_TEST(test_metrics)
{
	char *m = endpoints_metrics(&st);
	ck_assert_ptr_nonnull(m);
	const char *want[] = {
	        "# TYPE mq_bridge_messages_forwarded_total counter\n",
	        "mq_bridge_messages_forwarded_total{route=\"/qa=a.b\",direction=\"export\","
	        "queue=\"/qa\",subject=\"a.b\"} 5\n",
	        "mq_bridge_messages_forwarded_total{route=\"a.>=/q\\\"b\",direction=\"import\","
	        "queue=\"/q\\\"b\",subject=\"a.>\"} 7\n",
	        "mq_bridge_nats_connected 0\n",
	        "mq_bridge_nats_state{state=\"connecting\"} 1\n",
	        "mq_bridge_ack_latency_seconds_bucket{route=\"/qa=a.b\",direction=\"export\","
	        "queue=\"/qa\",subject=\"a.b\",le=\"0.001024\"} 5\n",
	        "mq_bridge_ack_latency_seconds_bucket{route=\"/qa=a.b\",direction=\"export\","
	        "queue=\"/qa\",subject=\"a.b\",le=\"0.000512\"} 0\n",
	        "mq_bridge_ack_latency_seconds_count{route=\"/qa=a.b\",direction=\"export\","
	        "queue=\"/qa\",subject=\"a.b\"} 5\n",
	        "mq_bridge_ack_latency_seconds_sum{route=\"/qa=a.b\",direction=\"export\","
	        "queue=\"/qa\",subject=\"a.b\"} 0.005000\n",
	        "mq_bridge_route_running{route=\"a.>=/q\\\"b\",direction=\"import\","
	        "queue=\"/q\\\"b\",subject=\"a.>\"} 0\n",
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		ck_assert_msg(strstr(m, want[i]), "no %s in:\n%s", want[i], m);
	/* Export-only counters have no import samples. */
	ck_assert_ptr_null(strstr(m, "mq_bridge_messages_duplicate_total{route=\"a.>"));
	free(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("stats");
	TCase *tc = tcase_create("strip");
	tcase_add_test(tc, test_strip_credentials);
	suite_add_tcase(s, tc);
	tc = tcase_create("endpoints");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_health);
	tcase_add_test(tc, test_metrics);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
