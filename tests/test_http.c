/* test_http.c - unit tests: mqbroker's HTTP server (routes, errors, limits, static files) over raw
 * sockets. */
#include <arpa/inet.h>
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "broker.h"
#include "web_assets.h"
#include "testcheck.h"
#include "teststatus.h"

/* Queue names go to the registry of testcheck.h. The web root is made
 * once, by main(). */

static char web_root[64]; /* a temporary dashboard directory */
static char outside[128]; /* a secret file next to it, never to be served */
#define SECRET "TOP-SECRET-CONTENT"

static char qname[64];
static struct broker broker;
static struct bqueue bq, *bqs[1] = {&bq};
static struct http_server *server;
static int port;

/* setup: a fresh queue with one message sent, a broker over it, a server on a free port. */
static void setup(void)
{
	new_name(qname, "http");

	memset(&broker, 0, sizeof(broker));
	memset(&bq, 0, sizeof(bq));
	bq.q = mq_create(qname, 8, 256, 0600);
	ck_assert_msg(bq.q != NULL, "mq_create %s: %s", qname, mq_errdetail());
	snprintf(bq.name, sizeof(bq.name), "%s", qname);
	broker.queues = bqs;
	broker.nqueues = 1;
	broker.started = broker_now();
	pthread_mutex_init(&broker.lock, NULL);
	ck_assert_int_eq(mq_send(bq.q, "hello", 5, 0), 0);

	char err[256] = "";
	server = http_start(&broker, "127.0.0.1:0", web_root, err, sizeof(err));
	ck_assert_msg(server != NULL, "http_start: %s", err);
	port = http_port(server);
	ck_assert_int_gt(port, 0);
}

static void teardown(void)
{
	http_stop(server);
	server = NULL;
	mq_detach(bq.q);
	mq_remove(qname);
	pthread_mutex_destroy(&broker.lock);
}

/* ---- a tiny HTTP client ---- */

struct response {
	int status; /* 0: the server closed without answering */
	char *raw;  /* the whole response */
	size_t len;
	char *body; /* inside raw */
};

static int connect_to(int p)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ck_assert_int_ge(fd, 0);
	struct timeval tv = {5, 0};
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_msg(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0, "connect: %s",
	              strerror(errno));
	return fd;
}

/* send_all: write REQ; errors (the server may close early) are ignored. */
static void send_all(int fd, const char *req, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, req, len, MSG_NOSIGNAL);
		if (n <= 0)
			return;
		req += n;
		len -= (size_t)n;
	}
}

/* read_response: read until the server closes (or 5 s pass) and parse the status line. */
static struct response read_response(int fd)
{
	struct response r = {0};
	size_t cap = 4096;
	r.raw = malloc(cap + 1);
	for (;;) {
		if (r.len == cap)
			r.raw = realloc(r.raw, (cap *= 2) + 1);
		ssize_t n = recv(fd, r.raw + r.len, cap - r.len, 0);
		if (n <= 0)
			break;
		r.len += (size_t)n;
	}
	r.raw[r.len] = '\0';
	if (sscanf(r.raw, "HTTP/1.%*d %d", &r.status) != 1)
		r.status = 0;
	char *end = strstr(r.raw, "\r\n\r\n");
	r.body = end ? end + 4 : r.raw + r.len;
	return r;
}

/* request: send REQ (LEN bytes) on a new connection and read the answer. */
static struct response request_n(const char *req, size_t len)
{
	int fd = connect_to(port);
	send_all(fd, req, len);
	struct response r = read_response(fd);
	close(fd);
	return r;
}

static struct response request(const char *req)
{
	return request_n(req, strlen(req));
}

/* get: METHOD PATH with Connection: close. */
static struct response get(const char *method, const char *path)
{
	char req[1024];
	snprintf(req, sizeof(req), "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
	         method, path);
	return request(req);
}

/* header: the value of header NAME in R (copied into BUF, 256 bytes), or NULL. */
static const char *header(const struct response *r, const char *name, char *buf)
{
	size_t n = strlen(name);
	for (const char *l = strstr(r->raw, "\r\n"); l && l + 2 < r->body;
	     l = strstr(l + 2, "\r\n")) {
		const char *h = l + 2;
		if (strncasecmp(h, name, n) == 0 && h[n] == ':') {
			h += n + 1;
			while (*h == ' ')
				h++;
			size_t vl = strcspn(h, "\r");
			snprintf(buf, 256, "%.*s", (int)vl, h);
			return buf;
		}
	}
	return NULL;
}

static void assert_header(const struct response *r, const char *name, const char *want)
{
	char buf[256];
	const char *v = header(r, name, buf);
	ck_assert_msg(v != NULL, "no %s header in:\n%s", name, r->raw);
	ck_assert_msg(strcmp(v, want) == 0, "%s: %s, want %s", name, v, want);
}

/* assert_json_error: R is STATUS with a JSON body {"error": ..., "path": PATH}. */
static void assert_json_error(const struct response *r, int status, const char *path)
{
	ck_assert_msg(r->status == status, "want %d, got:\n%s", status, r->raw);
	assert_header(r, "Content-Type", "application/json");
	cJSON *j = cJSON_Parse(r->body);
	ck_assert_msg(j != NULL, "error body is not JSON: %s", r->body);
	ck_assert(cJSON_IsString(cJSON_GetObjectItem(j, "error")));
	if (path) {
		const cJSON *p = cJSON_GetObjectItem(j, "path");
		ck_assert(cJSON_IsString(p));
		ck_assert_str_eq(p->valuestring, path);
	}
	cJSON_Delete(j);
}

static void assert_alive(void)
{
	struct response r = get("GET", "/healthz");
	ck_assert_msg(r.status == 200, "the server stopped answering:\n%s", r.raw);
	free(r.raw);
}

/* ---- the API ---- */

START_TEST(test_status)
{
	struct response r = get("GET", "/status");
	ck_assert_msg(r.status == 200, "%s", r.raw);
	assert_header(&r, "Content-Type", "application/json");
	assert_header(&r, "Cache-Control", "no-store");
	assert_header(&r, "X-Content-Type-Options", "nosniff");
	cJSON *j = cJSON_Parse(r.body);
	ck_assert_msg(j != NULL, "not JSON: %s", r.body);
	const cJSON *b = cJSON_GetObjectItem(j, "broker");
	ck_assert_str_eq(cJSON_GetObjectItem(b, "version")->valuestring, BROKER_VERSION);
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(b, "pid")));
	ck_assert(cJSON_IsNumber(cJSON_GetObjectItem(b, "uptime_s")));
	const cJSON *q = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "queues"), 0);
	ck_assert_ptr_nonnull(q);
	for (size_t i = 0; i < STATUS_QUEUE_KEYS; i++)
		ck_assert_msg(cJSON_GetObjectItem(q, status_queue_keys[i]) != NULL,
		              "no \"%s\" in %s", status_queue_keys[i], r.body);
	ck_assert_str_eq(cJSON_GetObjectItem(q, "name")->valuestring, qname);
	ck_assert_int_eq(cJSON_GetObjectItem(q, "capacity")->valueint, 8);
	ck_assert_int_eq(cJSON_GetObjectItem(q, "max_msg_size")->valueint, 256);
	ck_assert_int_eq(cJSON_GetObjectItem(q, "depth")->valueint, 1);
	ck_assert_int_eq(cJSON_GetObjectItem(q, "enqueued_total")->valueint, 1);
	ck_assert_int_eq(cJSON_GetObjectItem(q, "bytes_enqueued_total")->valueint, 5);
	/* this process created the queue and sent: it is a producer client */
	const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItem(q, "clients"), 0);
	ck_assert_ptr_nonnull(c);
	ck_assert_int_eq(cJSON_GetObjectItem(c, "pid")->valueint, getpid());
	ck_assert_str_eq(cJSON_GetObjectItem(c, "role")->valuestring, "producer");
	ck_assert(cJSON_IsTrue(cJSON_GetObjectItem(c, "alive")));
	cJSON_Delete(j);
	free(r.raw);
}
END_TEST

START_TEST(test_metrics)
{
	struct response r = get("GET", "/metrics");
	ck_assert_msg(r.status == 200, "%s", r.raw);
	assert_header(&r, "Content-Type", "text/plain; version=0.0.4; charset=utf-8");
	assert_header(&r, "Cache-Control", "no-store");
	char line[256];
	snprintf(line, sizeof(line), "\nmq_queue_depth{queue=\"%s\"} 1\n", qname);
	ck_assert_msg(strstr(r.body, line) != NULL, "no depth sample in:\n%s", r.body);
	ck_assert_ptr_nonnull(strstr(r.body, "# TYPE mq_messages_enqueued_total counter\n"));
	ck_assert_ptr_nonnull(strstr(r.body, "mq_build_info{version=\"" BROKER_VERSION "\"} 1\n"));
	free(r.raw);
}
END_TEST

START_TEST(test_healthz)
{
	struct response r = get("GET", "/healthz");
	ck_assert_msg(r.status == 200, "%s", r.raw);
	assert_header(&r, "Content-Type", "application/json");
	cJSON *j = cJSON_Parse(r.body);
	ck_assert_ptr_nonnull(j);
	ck_assert_str_eq(cJSON_GetObjectItem(j, "status")->valuestring, "ok");
	ck_assert_int_eq(cJSON_GetObjectItem(j, "pid")->valueint, getpid());
	cJSON_Delete(j);
	free(r.raw);
}
END_TEST

START_TEST(test_head_has_no_body)
{
	struct response r = get("HEAD", "/status");
	ck_assert_msg(r.status == 200, "%s", r.raw);
	assert_header(&r, "Content-Type", "application/json");
	char buf[256];
	ck_assert_ptr_nonnull(header(&r, "Content-Length", buf));
	ck_assert_int_gt(atoi(buf), 0);
	ck_assert_str_eq(r.body, "");
	free(r.raw);
}
END_TEST

START_TEST(test_keep_alive)
{
	/* two requests on one connection, both answered */
	int fd = connect_to(port);
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
	                  "GET /status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	send_all(fd, req, strlen(req));
	struct response r = read_response(fd);
	close(fd);
	ck_assert_int_eq(r.status, 200);
	ck_assert_msg(strstr(r.body, "HTTP/1.1 200 OK\r\n") != NULL, "one answer only:\n%s", r.raw);
	ck_assert_ptr_nonnull(strstr(r.body, "\"queues\""));
	free(r.raw);
}
END_TEST

START_TEST(test_unknown_path_404)
{
	struct response r = get("GET", "/nope");
	assert_json_error(&r, 404, "/nope");
	assert_header(&r, "X-Content-Type-Options", "nosniff");
	free(r.raw);
	r = get("POST", "/nope");
	assert_json_error(&r, 404, "/nope");
	free(r.raw);
}
END_TEST

START_TEST(test_wrong_method_405)
{
	struct response r = request("POST /status HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
	                            "Connection: close\r\n\r\nhello");
	assert_json_error(&r, 405, "/status");
	assert_header(&r, "Allow", "GET, HEAD");
	free(r.raw);

	static const char *const cases[][2] = {
	        {"DELETE", "/"}, {"PUT", "/metrics"}, {"OPTIONS", "/healthz"}, {"POST", "/app.js"}};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		r = get(cases[i][0], cases[i][1]);
		assert_json_error(&r, 405, cases[i][1]);
		assert_header(&r, "Allow", "GET, HEAD");
		free(r.raw);
	}
	assert_alive();
}
END_TEST

/* ---- bad input ---- */

START_TEST(test_huge_header)
{
	size_t big = 64 * 1024;
	char *req = malloc(big + 256);
	int n = snprintf(req, 256, "GET /status HTTP/1.1\r\nHost: x\r\nX-Big: ");
	memset(req + n, 'a', big);
	strcpy(req + n + big, "\r\nConnection: close\r\n\r\n");
	struct response r = request(req);
	/* libmicrohttpd answers 431 Request Header Fields Too Large */
	ck_assert_msg(r.status >= 400 && r.status < 500, "got:\n%.300s", r.raw);
	free(r.raw);

	/* a request line that does not fit: 414 URI Too Long */
	n = snprintf(req, 256, "GET /");
	memset(req + n, 'a', big);
	strcpy(req + n + big, " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
	r = request(req);
	ck_assert_msg(r.status >= 400 && r.status < 500, "got:\n%.300s", r.raw);
	free(r.raw);
	free(req);
	assert_alive();
}
END_TEST

START_TEST(test_malformed_requests)
{
	/* libmicrohttpd closes at once, without a response, on a request line with
	 * no space at all; what matters is that nothing succeeds and the server lives */
	struct response r = request("GARBAGE\r\n\r\n");
	ck_assert_msg(r.status == 0 || r.status == 400, "got:\n%s", r.raw);
	free(r.raw);
	assert_alive();

	static const char *const bad[] = {
	        "GARBAGE X\r\n\r\n",
	        "GET  HTTP/1.1\r\nHost: x\r\n\r\n",
	        "GET /healthz HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
	        "GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		r = request(bad[i]);
		ck_assert_msg(r.status == 400, "%s -> %s", bad[i], r.raw);
		free(r.raw);
	}
	/* binary junk (e.g. TLS spoken to a plain HTTP port) */
	static const char tls[] = "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n";
	r = request_n(tls, sizeof(tls) - 1);
	ck_assert_msg(r.status == 0 || r.status == 400, "got:\n%s", r.raw);
	free(r.raw);
	assert_alive();
}
END_TEST

START_TEST(test_idle_connection_does_not_block)
{
	/* a client that connects and sends half a request must not stall others */
	int idle = connect_to(port);
	send_all(idle, "GET /status HTTP/1.1\r\n", 22);
	assert_alive();
	close(idle);
}
END_TEST

START_TEST(test_path_traversal)
{
	static const char *const paths[] = {
	        "/../../etc/passwd",
	        "/%2e%2e/%2e%2e/etc/passwd",
	        "/..%2f..%2fetc%2fpasswd",
	        "/../secret.txt",
	        "/%2e%2e/secret.txt",
	        "/sub/../../secret.txt",
	        "/link.txt",
	        "/.hidden",
	        "/sub/%2e%2e/%2e%2e/secret.txt",
	        "//etc/passwd",
	        "/sub",
	        "/fifo",
	        "/sublink/data.json", /* a symbolic link to a directory inside: not followed */
	};
	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
		struct response r = get("GET", paths[i]);
		ck_assert_msg(r.status == 404, "%s -> %s", paths[i], r.raw);
		ck_assert_msg(strstr(r.raw, SECRET) == NULL, "%s leaked the secret", paths[i]);
		ck_assert_msg(strstr(r.raw, "root:") == NULL, "%s leaked /etc/passwd", paths[i]);
		free(r.raw);
	}
	assert_alive();
}
END_TEST

/* ---- the dashboard ---- */

static void assert_file(const char *path, const char *ctype, const char *cache, const char *body)
{
	struct response r = get("GET", path);
	ck_assert_msg(r.status == 200, "%s -> %s", path, r.raw);
	assert_header(&r, "Content-Type", ctype);
	assert_header(&r, "Cache-Control", cache);
	assert_header(&r, "X-Content-Type-Options", "nosniff");
	ck_assert_str_eq(r.body, body);
	free(r.raw);
}

START_TEST(test_static_files)
{
	assert_file("/", "text/html; charset=utf-8", "no-cache", "<h1>dashboard</h1>\n");
	assert_file("/index.html", "text/html; charset=utf-8", "no-cache", "<h1>dashboard</h1>\n");
	assert_file("/app.js", "text/javascript; charset=utf-8", "max-age=300", "let x = 1;\n");
	assert_file("/style.css", "text/css; charset=utf-8", "max-age=300", "body {}\n");
	assert_file("/sub/data.json", "application/json", "max-age=300", "{}\n");
	assert_file("/sub/icon.svg", "image/svg+xml", "max-age=300", "<svg/>\n");
	assert_file("/sub/", "text/html; charset=utf-8", "no-cache", "<p>sub</p>\n");
	assert_file("/app.js?v=3", "text/javascript; charset=utf-8", "max-age=300", "let x = 1;\n");

	struct response r = get("HEAD", "/app.js");
	ck_assert_int_eq(r.status, 200);
	assert_header(&r, "Content-Length", "11");
	ck_assert_str_eq(r.body, "");
	free(r.raw);
}
END_TEST

/* Without a web root, the dashboard built into the broker (web_assets.c,
 * made from web/ by the build) is what "/" serves. */
START_TEST(test_builtin_dashboard)
{
	char err[256];
	struct http_server *s = http_start(&broker, "127.0.0.1:0", NULL, err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	int saved = port;
	port = http_port(s);
	const struct web_asset *index = NULL;
	for (size_t i = 0; i < web_assets_count; i++)
		if (!strcmp(web_assets[i].path, "/index.html"))
			index = &web_assets[i];
	ck_assert_ptr_nonnull(index);
	struct response r = get("GET", "/");
	ck_assert_msg(r.status == 200, "GET / -> %s", r.raw);
	assert_header(&r, "Content-Type", "text/html; charset=utf-8");
	ck_assert_uint_eq(strlen(r.body), index->len);
	ck_assert(memcmp(r.body, index->data, index->len) == 0);
	free(r.raw);
	r = get("GET", "/dashboard.js");
	ck_assert_int_eq(r.status, 200);
	assert_header(&r, "Content-Type", "text/javascript; charset=utf-8");
	free(r.raw);
	r = get("GET", "/app.js"); /* only what web/ holds */
	assert_json_error(&r, 404, "/app.js");
	free(r.raw);
	http_stop(s);
	port = saved;
}
END_TEST

/* A --web-root that does not exist: the API still works, "/" is 404 (never
 * the built-in copy: the operator asked for another one). */
START_TEST(test_missing_web_root)
{
	char err[256];
	struct http_server *s =
	        http_start(&broker, "127.0.0.1:0", "/nonexistent/mqbroker-web", err, sizeof(err));
	ck_assert_ptr_nonnull(s);
	int saved = port;
	port = http_port(s);
	struct response r = get("GET", "/");
	assert_json_error(&r, 404, "/");
	free(r.raw);
	r = get("GET", "/healthz");
	ck_assert_int_eq(r.status, 200);
	free(r.raw);
	http_stop(s);
	port = saved;
}
END_TEST

/* ---- starting and stopping ---- */

START_TEST(test_port_in_use)
{
	char spec[64], err[256] = "";
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", port);
	errno = 0;
	struct http_server *s = http_start(&broker, spec, web_root, err, sizeof(err));
	ck_assert_ptr_null(s);
	ck_assert_int_eq(errno, EADDRINUSE);
	ck_assert_msg(strstr(err, spec) && strstr(err, "address in use"), "err: %s", err);
	assert_alive();
}
END_TEST

START_TEST(test_bad_listen_spec)
{
	static const char *const bad[] = {
	        "abc",           "127.0.0.1",       "127.0.0.1:",
	        ":8080",         "127.0.0.1:65536", "127.0.0.1:-1",
	        "127.0.0.1:8x",  "1.2.3:80",        "[::1]8080",
	        "[nonsense]:80", "::1:8080",        "",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char err[256] = "";
		errno = 0;
		ck_assert_ptr_null(http_start(&broker, bad[i], web_root, err, sizeof(err)));
		ck_assert_msg(errno == EINVAL, "%s: errno %d", bad[i], errno);
		char quoted[80];
		snprintf(quoted, sizeof(quoted), "'%s'", bad[i]);
		ck_assert_msg(strstr(err, quoted) != NULL, "%s: err does not name it: %s", bad[i],
		              err);
	}
	char err[256];
	errno = 0;
	ck_assert_ptr_null(http_start(&broker, NULL, web_root, err, sizeof(err)));
	ck_assert_int_eq(errno, EINVAL);
}
END_TEST

START_TEST(test_ipv6_loopback)
{
	int probe = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 lo = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
	bool v6 = probe >= 0 && bind(probe, (struct sockaddr *)&lo, sizeof(lo)) == 0;
	if (probe >= 0)
		close(probe);
	if (!v6)
		return; /* no IPv6 on this machine */

	char err[256];
	struct http_server *s = http_start(&broker, "[::1]:0", NULL, err, sizeof(err));
	ck_assert_msg(s != NULL, "%s", err);
	int fd = socket(AF_INET6, SOCK_STREAM, 0);
	lo.sin6_port = htons((uint16_t)http_port(s));
	ck_assert_int_eq(connect(fd, (struct sockaddr *)&lo, sizeof(lo)), 0);
	const char *req = "GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
	send_all(fd, req, strlen(req));
	struct response r = read_response(fd);
	close(fd);
	ck_assert_int_eq(r.status, 200);
	free(r.raw);
	http_stop(s);
}
END_TEST

START_TEST(test_stop_frees_port)
{
	int p = port;
	http_stop(server);
	server = NULL;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)p)};
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	ck_assert_int_ne(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);

	/* and a new server can take the same port at once (SO_REUSEADDR) */
	char spec[64], err[256];
	snprintf(spec, sizeof(spec), "127.0.0.1:%d", p);
	server = http_start(&broker, spec, NULL, err, sizeof(err));
	ck_assert_msg(server != NULL, "%s", err);
	ck_assert_int_eq(http_port(server), p);
	assert_alive();
	http_stop(NULL); /* a no-op */
}
END_TEST

/* ---- the fixture's web root ---- */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[256];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
		perror(path);
		exit(2);
	}
}

static void make_web_root(void)
{
	snprintf(web_root, sizeof(web_root), "/tmp/mqtest-web-%d-XXXXXX", (int)getpid());
	if (!mkdtemp(web_root)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(outside, sizeof(outside), "%s-secret.txt", web_root);
	write_file("/", outside, SECRET "\n");
	write_file(web_root, "index.html", "<h1>dashboard</h1>\n");
	write_file(web_root, "app.js", "let x = 1;\n");
	write_file(web_root, "style.css", "body {}\n");
	write_file(web_root, ".hidden", SECRET "\n");
	char path[256];
	snprintf(path, sizeof(path), "%s/sub", web_root);
	mkdir(path, 0700);
	write_file(path, "data.json", "{}\n");
	write_file(path, "icon.svg", "<svg/>\n");
	write_file(path, "index.html", "<p>sub</p>\n");
	snprintf(path, sizeof(path), "%s/link.txt", web_root);
	if (symlink(outside, path) != 0)
		perror("symlink");
	snprintf(path, sizeof(path), "%s/fifo", web_root);
	if (mkfifo(path, 0600) != 0)
		perror("mkfifo");
	snprintf(path, sizeof(path), "%s/sublink", web_root);
	if (symlink("sub", path) != 0)
		perror("symlink");
}

static void remove_web_root(void)
{
	static const char *const files[] = {
	        "index.html",   "app.js",         "style.css", ".hidden", "sub/data.json",
	        "sub/icon.svg", "sub/index.html", "link.txt",  "fifo",    "sublink"};
	char path[256];
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", web_root, files[i]);
		unlink(path);
	}
	snprintf(path, sizeof(path), "%s/sub", web_root);
	rmdir(path);
	rmdir(web_root);
	unlink(outside);
}

static Suite *http_suite(void)
{
	Suite *s = suite_create("http");
	TCase *tc = tcase_create("api");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_status);
	tcase_add_test(tc, test_metrics);
	tcase_add_test(tc, test_healthz);
	tcase_add_test(tc, test_head_has_no_body);
	tcase_add_test(tc, test_keep_alive);
	tcase_add_test(tc, test_unknown_path_404);
	tcase_add_test(tc, test_wrong_method_405);
	suite_add_tcase(s, tc);

	tc = tcase_create("bad_input");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_huge_header);
	tcase_add_test(tc, test_malformed_requests);
	tcase_add_test(tc, test_idle_connection_does_not_block);
	tcase_add_test(tc, test_path_traversal);
	suite_add_tcase(s, tc);

	tc = tcase_create("dashboard");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_static_files);
	tcase_add_test(tc, test_builtin_dashboard);
	tcase_add_test(tc, test_missing_web_root);
	suite_add_tcase(s, tc);

	tc = tcase_create("lifecycle");
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_port_in_use);
	tcase_add_test(tc, test_bad_listen_spec);
	tcase_add_test(tc, test_ipv6_loopback);
	tcase_add_test(tc, test_stop_frees_port);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	registry_init();
	make_web_root();
	SRunner *sr = srunner_create(http_suite());
	srunner_run_all(sr, CK_NORMAL);
	int failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	registry_cleanup();
	remove_web_root();
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
