/* test_config.c - mqbroker's config file reader (broker/config.c): what it takes, what it refuses
 * and how it says so. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include "config.h"

static char dir[64], path[128];

static void setup(void)
{
	snprintf(dir, sizeof(dir), "/tmp/mqtest-config-%d-XXXXXX", (int)getpid());
	ck_assert_ptr_nonnull(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/mqbroker.conf", dir);
}

static void teardown(void)
{
	unlink(path);
	rmdir(dir);
}

/* write_conf: PATH holds the LEN bytes at TEXT. */
static void write_conf(const char *text, size_t len)
{
	FILE *f = fopen(path, "w");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fwrite(text, 1, len, f), len);
	ck_assert_int_eq(fclose(f), 0);
}

/* refused: reading FILE fails, and the reason contains WANT. */
static void refused(const char *file, const char *want)
{
	struct config c;
	char err[512] = "";
	ck_assert_int_eq(config_read(file, &c, err, sizeof(err)), -1);
	ck_assert_msg(strstr(err, want), "reason \"%s\" lacks \"%s\"", err, want);
	ck_assert_ptr_null(c.entries);
	ck_assert_uint_eq(c.n, 0);
}

START_TEST(test_good_file)
{
	const char text[] = "# mqbroker\n"
	                    "\n"
	                    "name = /orders   # the queue\n"
	                    "capacity=64\r\n"
	                    "  max-msg   4K\n"
	                    "\tverbose\n"
	                    "listen = 127.0.0.1:0"; /* no final newline */
	write_conf(text, sizeof(text) - 1);
	struct config c;
	char err[256];
	ck_assert_int_eq(config_read(path, &c, err, sizeof(err)), 0);
	ck_assert_uint_eq(c.n, 5);
	const char *want[][2] = {{"name", "/orders"},
	                         {"capacity", "64"},
	                         {"max-msg", "4K"},
	                         {"verbose", ""},
	                         {"listen", "127.0.0.1:0"}};
	const unsigned lines[] = {3, 4, 5, 6, 7};
	for (size_t i = 0; i < 5; i++) {
		ck_assert_str_eq(c.entries[i].key, want[i][0]);
		ck_assert_str_eq(c.entries[i].value, want[i][1]);
		ck_assert_uint_eq(c.entries[i].line, lines[i]);
	}
	config_free(&c);
	config_free(&c); /* a freed config may be freed again */
}
END_TEST

/* The finding: a comment longer than the old 1023-byte buffer had its tail
 * read as a line of its own ("# xxx...xxx mode = 0666" made the queue
 * world-writable). Now the whole line is refused with its number. */
START_TEST(test_long_comment_refused_whole)
{
	char text[2048];
	size_t n = (size_t)snprintf(text, sizeof(text), "name = /q\n# ");
	memset(text + n, 'x', 1100);
	n += 1100;
	n += (size_t)snprintf(text + n, sizeof(text) - n, " mode = 0666\ncapacity = 8\n");
	write_conf(text, n);
	char want[256];
	snprintf(want, sizeof(want), "%s:2: line of %d bytes, longer than 1024", path,
	         1100 + 2 + 12);
	refused(path, want);
}
END_TEST

/* A line of exactly the limit is fine; one byte more is not. */
START_TEST(test_line_limit)
{
	char text[1100];
	memset(text, ' ', sizeof(text));
	memcpy(text, "name = /q", 9);
	text[CONFIG_MAX_LINE] = '\n';
	write_conf(text, CONFIG_MAX_LINE + 1);
	struct config c;
	char err[256];
	ck_assert_int_eq(config_read(path, &c, err, sizeof(err)), 0);
	ck_assert_str_eq(c.entries[0].value, "/q");
	config_free(&c);
	text[CONFIG_MAX_LINE] = ' ';
	text[CONFIG_MAX_LINE + 1] = '\n';
	write_conf(text, CONFIG_MAX_LINE + 2);
	refused(path, ":1: line of 1025 bytes, longer than 1024");
}
END_TEST

/* "capacity = 10\0junk" was read as 10. */
START_TEST(test_nul_byte_refused)
{
	const char text[] = "name = /q\ncapacity = 10\0junk\n";
	write_conf(text, sizeof(text) - 1);
	refused(path, ":2: a NUL byte (column 14)");
}
END_TEST

START_TEST(test_control_characters_refused)
{
	const char text[] = "name = /q\x1b[31m\n";
	write_conf(text, sizeof(text) - 1);
	refused(path, ":1: control character 0x1b (column 10)");
	const char cr[] = "name = /q\rcapacity = 8\n";
	write_conf(cr, sizeof(cr) - 1);
	refused(path, ":1: a carriage return inside the line");
}
END_TEST

/* --config /etc was silently accepted; /dev/zero spun at 100 % CPU. */
START_TEST(test_not_regular_files_refused)
{
	refused("/etc", "/etc: not a regular file (a directory)");
	struct timeval t0, t1;
	gettimeofday(&t0, NULL);
	refused("/dev/zero", "/dev/zero: not a regular file (a character device)");
	gettimeofday(&t1, NULL);
	ck_assert_int_lt(t1.tv_sec - t0.tv_sec, 2);
	char fifo[160];
	snprintf(fifo, sizeof(fifo), "%s/fifo", dir);
	ck_assert_int_eq(mkfifo(fifo, 0600), 0);
	refused(fifo, "not a regular file (a FIFO)"); /* and does not block opening it */
	unlink(fifo);
	char missing[160];
	snprintf(missing, sizeof(missing), "%s/none", dir);
	refused(missing, "none: cannot open: No such file or directory");
}
END_TEST

START_TEST(test_oversized_file_refused)
{
	size_t n = CONFIG_MAX_BYTES + 1;
	char *text = malloc(n);
	ck_assert_ptr_nonnull(text);
	for (size_t i = 0; i < n; i++)
		text[i] = (i % 64 == 63) ? '\n' : '#';
	write_conf(text, n);
	free(text);
	refused(path, "65537 bytes, more than the 65536 a config file may have");
}
END_TEST

START_TEST(test_bad_keys_refused)
{
	const char text[] = "name = /q\nCapacity = 8\n";
	write_conf(text, sizeof(text) - 1);
	refused(path, ":2: expected an option name, found 'C'");
	const char text2[] = "max_msg = 8\n";
	write_conf(text2, sizeof(text2) - 1);
	refused(path, ":1: option names are lower-case letters, digits and '-' (found '_')");
}
END_TEST

START_TEST(test_escape)
{
	char out[64];
	ck_assert_str_eq(config_escape("/q\x1b[2J\n", out, sizeof(out)), "/q\\x1b[2J\\x0a");
	ck_assert_str_eq(config_escape("a\\b\x7f", out, sizeof(out)), "a\\\\b\\x7f");
	ck_assert_str_eq(config_escape("plain /queue-1", out, sizeof(out)), "plain /queue-1");
	char small[8];
	ck_assert_str_eq(config_escape("0123456789", small, sizeof(small)), "0123...");
	ck_assert_str_eq(config_escape("\x01\x02", small, sizeof(small)), "\\x01...");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("config");
	TCase *tc = tcase_create("reader");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_good_file);
	tcase_add_test(tc, test_long_comment_refused_whole);
	tcase_add_test(tc, test_line_limit);
	tcase_add_test(tc, test_nul_byte_refused);
	tcase_add_test(tc, test_control_characters_refused);
	tcase_add_test(tc, test_not_regular_files_refused);
	tcase_add_test(tc, test_oversized_file_refused);
	tcase_add_test(tc, test_bad_keys_refused);
	tcase_add_test(tc, test_escape);
	suite_add_tcase(s, tc);
	SRunner *sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
