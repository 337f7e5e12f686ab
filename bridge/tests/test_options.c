/* test_options.c - mqbridge's command line and config file (bridge/options.c), and the import
 * consumer's name (bridge/import.c): what they take, what they refuse. */
#include <check.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

/* parse: run bridge_parse_args on the NULL-terminated arguments (stderr
 * silenced), returning its result. */
static int parse(struct bridge_opts *o, ...)
{
	static char name[] = "mqbridge";
	char *argv[64] = {name};
	int argc = 1;
	va_list ap;
	va_start(ap, o);
	char *a;
	while ((a = va_arg(ap, char *)) != NULL)
		argv[argc++] = a;
	va_end(ap);
	fflush(stderr);
	fflush(stdout);
	FILE *saved = freopen("/dev/null", "w", stderr);
	saved = freopen("/dev/null", "w", stdout); /* --help; each test is forked */
	(void)saved;
	return bridge_parse_args(o, argc, argv);
}

static struct bridge_opts o;

START_TEST(test_routes_and_defaults)
{
	ck_assert_int_eq(parse(&o, "--nats", "nats://h:4222", "--export", "/a=s.a", "--import",
	                       "s.*.b=/b", "--import=x.>=/c", NULL),
	                 0);
	ck_assert_str_eq(o.nats_url, "nats://h:4222");
	ck_assert_str_eq(o.stream, BRIDGE_DEFAULT_STREAM);
	ck_assert_uint_eq(o.window, 256);
	ck_assert_uint_eq(o.batch, 64);
	ck_assert_uint_eq(o.nroutes, 3);
	ck_assert_int_eq(o.routes[0].dir, ROUTE_EXPORT);
	ck_assert_str_eq(o.routes[0].queue, "/a");
	ck_assert_str_eq(o.routes[0].subject, "s.a");
	ck_assert_int_eq(o.routes[1].dir, ROUTE_IMPORT);
	ck_assert_str_eq(o.routes[1].subject, "s.*.b");
	ck_assert_str_eq(o.routes[1].queue, "/b");
	ck_assert_str_eq(o.routes[2].subject, "x.>");
	ck_assert_str_eq(o.routes[2].queue, "/c");
}
END_TEST

/* A subject may hold '=' (export splits at the first '='); a queue name may
 * too (import splits at the first "=/"). */
START_TEST(test_equals_signs)
{
	ck_assert_int_eq(
	        parse(&o, "--nats", "h:1", "--export", "/a=s=1", "--import", "k=v=/q=2", NULL), 0);
	ck_assert_str_eq(o.routes[0].subject, "s=1");
	ck_assert_str_eq(o.routes[1].subject, "k=v");
	ck_assert_str_eq(o.routes[1].queue, "/q=2");
}
END_TEST

START_TEST(test_refused)
{
	static const char *bad[][6] = {
	        {"--export", "/a=s", NULL}, /* no --nats */
	        {"--nats", "h:1", NULL},    /* no route */
	        {"--nats", "h:1", "--export", "/a=s.*", NULL},
	        {"--nats", "h:1", "--export", "/a=>", NULL},
	        {"--nats", "h:1", "--export", "a=s", NULL},
	        {"--nats", "h:1", "--export", "/=s", NULL},
	        {"--nats", "h:1", "--export", "/a/b=s", NULL},
	        {"--nats", "h:1", "--export", "/a", NULL},
	        {"--nats", "h:1", "--import", "s.b*=/q", NULL},
	        {"--nats", "h:1", "--import", ".s=/q", NULL},
	        {"--nats", "h:1", "--import", "s =/q", NULL},
	        {"--nats", "h:1", "--export", "/a=s", "--export", "/a=t"},
	        {"--nats", "h:1", "--export", "/a=s", "--import", "s=/b"},
	        {"--nats", "ws://h:1", "--export", "/a=s", NULL},
	        {"--nats", "h:1", "--window", "0", "--export", "/a=s"},
	        {"--nats", "h:1", "--batch", "2000", "--export", "/a=s"},
	        {"--nats", "h:1", "--stream", "a.b", "--export", "/a=s"},
	        {"--nats", "h:1", "--listen", "1.2.3.4", "--export", "/a=s"},
	        {"--nats", "h:1", "--password", "p", "--export", "/a=s"},
	        {"--nats", "h:1", "--export", "/a=s", "--nope", "1"},
	        {"--nats", "h:1", "--export", NULL},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		const char *const *b = bad[i];
		int rc = parse(&o, b[0], b[1], b[2], b[3], b[4], b[5], NULL);
		ck_assert_msg(rc == BRIDGE_EXIT_USAGE, "case %zu (%s %s %s %s) gave %d", i, b[0],
		              b[1], b[2] ? b[2] : "", b[3] ? b[3] : "", rc);
	}
	ck_assert_int_eq(parse(&o, "--help", NULL), -1);
}
END_TEST

START_TEST(test_config_file)
{
	char path[] = "/tmp/mqbridge-test-XXXXXX";
	int fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	const char text[] = "# mqbridge\n"
	                    "nats = nats://127.0.0.1:4222   # the server\n"
	                    "\n"
	                    "  stream ORDERS\n"
	                    "export /orders=orders.eu\n"
	                    "window=16\n";
	ck_assert_int_eq(write(fd, text, sizeof(text) - 1), (int)sizeof(text) - 1);
	close(fd);
	/* The command line after --config adds to it and overrides it. */
	ck_assert_int_eq(
	        parse(&o, "--config", path, "--import", "orders.us=/us", "--window", "32", NULL),
	        0);
	ck_assert_str_eq(o.nats_url, "nats://127.0.0.1:4222");
	ck_assert_str_eq(o.stream, "ORDERS");
	ck_assert_uint_eq(o.nroutes, 2);
	ck_assert_str_eq(o.routes[0].queue, "/orders");
	ck_assert_uint_eq(o.window, 32);
	FILE *f = fopen(path, "w");
	fputs("nats nats://h:1\nexport\n", f);
	fclose(f);
	ck_assert_int_eq(parse(&o, "--config", path, NULL), BRIDGE_EXIT_USAGE);
	f = fopen(path, "w");
	fputs("nats nats://h:1\nconfig ", f);
	fputs(path, f); /* includes itself */
	fputs("\n", f);
	fclose(f);
	ck_assert_int_eq(parse(&o, "--config", path, NULL), BRIDGE_EXIT_USAGE);
	unlink(path);
	ck_assert_int_eq(parse(&o, "--config", path, NULL), BRIDGE_EXIT_USAGE);
}
END_TEST

START_TEST(test_consumer_name)
{
	char a[128], b[128], c[128];
	import_consumer_name("orders.*", "/orders", a, sizeof(a));
	import_consumer_name("orders.*", "/orders", b, sizeof(b));
	import_consumer_name("orders.>", "/orders", c, sizeof(c));
	ck_assert_str_eq(a, b); /* stable */
	ck_assert_str_ne(a, c); /* '*' and '>' read alike, the hash tells them apart */
	ck_assert_str_eq(strchr(a, '_') ? "" : "no prefix", "");
	for (const char *p = a; *p; p++)
		ck_assert_msg(strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
		                     "0123456789_-",
		                     *p),
		              "'%c' in consumer name %s", *p, a);
	char long_subject[256];
	memset(long_subject, 'x', 255);
	long_subject[255] = '\0';
	import_consumer_name(long_subject, "/q", a, sizeof(a));
	ck_assert_uint_lt(strlen(a), 100);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("options");
	TCase *tc = tcase_create("parse");
	tcase_add_test(tc, test_routes_and_defaults);
	tcase_add_test(tc, test_equals_signs);
	tcase_add_test(tc, test_refused);
	tcase_add_test(tc, test_config_file);
	tcase_add_test(tc, test_consumer_name);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
