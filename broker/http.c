/* http.c - the HTTP server of mqbroker and mqbridge (libmicrohttpd): limits, log, replies. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>
#include <microhttpd.h>

#include "http.h"

/*
 * Limits, so that slow or abusive clients cannot stall the server.
 *
 * The requests are cheap (a snapshot of counters), so one epoll thread serves
 * them all. What a slow client can hold is a connection, so:
 *  - the process's descriptor limit is raised to its hard limit, and the
 *    connection limit set from it (up to HTTP_MAX_CONNECTIONS), far above
 *    what a browser, a scraper and a health check need;
 *  - there is no per-address limit: every local client comes from 127.0.0.1,
 *    so a per-address limit is one any local process fills for all (a
 *    trickling client once locked /healthz out that way);
 *  - a request header must be complete within HTTP_HEADER_DEADLINE_S of the
 *    connection's start (or of the previous request's end, on a kept-alive
 *    connection), however slowly it trickles: the idle timeout alone
 *    (HTTP_TIMEOUT_S) never fires on a client that sends a byte now and then;
 *  - when the connections come within HTTP_EVICT_MARGIN of the limit, each
 *    new one evicts the oldest connection still sending its header, so a new
 *    client always gets in.
 * The deadline and eviction work on a dup() of each connection's socket
 * (conn_track): shutdown() on it ends the connection for libmicrohttpd, which
 * then closes it as any other; the dup is closed only when libmicrohttpd says
 * the connection is gone, so it never names another socket. Headers that do
 * not fit in HTTP_CONN_MEMORY get 431 from libmicrohttpd (a request line that
 * does not, 414), a malformed request 400.
 */
#define HTTP_MAX_CONNECTIONS   8192u
#define HTTP_EVICT_MARGIN      64u
#define HTTP_HEADER_DEADLINE_S 5.0
#define HTTP_TIMEOUT_S         10u
#define HTTP_THREADS           2 /* epoll threads: one may serve while the other accepts */
#define HTTP_CONN_MEMORY       ((size_t)32 * 1024)
#define HTTP_LOG_PER_SECOND    20 /* error-log lines; more are counted, not printed */

#define ALLOW_METHODS "GET, HEAD"

/* conn_track: one open connection, oldest first in http_server.conns. */
struct conn_track {
	struct conn_track *prev, *next;
	int fd;           /* our dup of its socket, for shutdown() */
	double since;     /* when its current request header began (monotonic s) */
	bool header_done; /* the current request's header is in */
	bool cut;         /* shut down by us (deadline or eviction) */
};

struct http_server {
	struct MHD_Daemon *daemon;
	pthread_mutex_t conns_lock; /* conns, nconns, the tracks' fields */
	struct conn_track *oldest, *newest;
	unsigned nconns, conn_limit;
	unsigned long cut_deadline, cut_evicted; /* counted, for the log */
	pthread_t sweeper;
	bool sweeper_started;
	int stop_pipe[2];       /* the sweeper's stop signal */
	struct http_config cfg; /* the program's name and routes */
	int port;
	pthread_mutex_t log_lock; /* the rate limit of http_log */
	time_t log_second;
	unsigned log_lines, log_suppressed;
};

/* now_s: CLOCK_MONOTONIC in seconds (the header deadline's clock). */
static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/*
 * http_log: libmicrohttpd's error log, one line on stderr per message, at
 * most HTTP_LOG_PER_SECOND a second (a flood of bad clients must not flood
 * the journal); how many were dropped is said with the next message logged
 * in a later second.
 */
__attribute__((format(printf, 2, 0))) static void http_log(void *cls, const char *fmt, va_list ap)
{
	struct http_server *s = cls;
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	/* "... code is 431 ('<html>...</html>')). Closing ...": the page is noise here. */
	char *page = strstr(line, " ('<html>"), *page_end = page ? strstr(page, "</html>')") : NULL;
	if (page_end)
		memmove(page, page_end + 9, strlen(page_end + 9) + 1);
	size_t n = strlen(line);
	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';

	pthread_mutex_lock(&s->log_lock);
	time_t now = time(NULL);
	if (now != s->log_second) {
		if (s->log_suppressed)
			fprintf(stderr, "%s: http: (%u more messages suppressed)\n", s->cfg.prog,
			        s->log_suppressed);
		s->log_second = now;
		s->log_lines = 0;
		s->log_suppressed = 0;
	}
	if (s->log_lines < HTTP_LOG_PER_SECOND) {
		s->log_lines++;
		fprintf(stderr, "%s: http: %s\n", s->cfg.prog, line);
	} else {
		s->log_suppressed++;
	}
	pthread_mutex_unlock(&s->log_lock);
}

/* fail: set errno to E and ERR to the formatted reason; returns -1. */
__attribute__((format(printf, 4, 5))) static int fail(int e, char *err, size_t errlen,
                                                      const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
	errno = e;
	return -1;
}

/*
 * http_parse_listen: declared in http.h.
 */
int http_parse_listen(const char *spec, struct sockaddr_storage *sa, socklen_t *len, char *err,
                      size_t errlen)
{
	static const char want[] = "want ADDR:PORT, e.g. 127.0.0.1:8080 or [::1]:8080";
	char host[INET6_ADDRSTRLEN + 16];
	const char *colon;

	if (!spec)
		spec = "";
	if (spec[0] == '[') {
		const char *close = strchr(spec, ']');
		if (!close || close[1] != ':' || (size_t)(close - spec - 1) >= sizeof(host))
			return fail(EINVAL, err, errlen, "--listen '%s': %s", spec, want);
		memcpy(host, spec + 1, (size_t)(close - spec - 1));
		host[close - spec - 1] = '\0';
		colon = close + 1;
	} else {
		colon = strrchr(spec, ':');
		if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(host))
			return fail(EINVAL, err, errlen, "--listen '%s': %s", spec, want);
		memcpy(host, spec, (size_t)(colon - spec));
		host[colon - spec] = '\0';
	}

	const char *p = colon + 1;
	size_t digits = strspn(p, "0123456789");
	if (digits == 0 || p[digits] != '\0')
		return fail(EINVAL, err, errlen, "--listen '%s': %s", spec, want);
	if (digits > 5 || strtol(p, NULL, 10) > 65535)
		return fail(EINVAL, err, errlen, "--listen '%s': port %s out of range (0..65535)",
		            spec, p);
	uint16_t port = (uint16_t)strtol(p, NULL, 10);

	memset(sa, 0, sizeof(*sa));
	if (spec[0] == '[') {
		struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)sa;
		if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
			return fail(EINVAL, err, errlen,
			            "--listen '%s': '%s' is not an IPv6 address", spec, host);
		in6->sin6_family = AF_INET6;
		in6->sin6_port = htons(port);
		*len = sizeof(*in6);
		return 0;
	}
	struct sockaddr_in *in4 = (struct sockaddr_in *)sa;
	if (strcmp(host, "localhost") == 0)
		strcpy(host, "127.0.0.1");
	if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
		return fail(EINVAL, err, errlen,
		            "--listen '%s': '%s' is not an IPv4 address (IPv6 goes in brackets, "
		            "[::1]:8080); %s",
		            spec, host, want);
	in4->sin_family = AF_INET;
	in4->sin_port = htons(port);
	*len = sizeof(*in4);
	return 0;
}

/*
 * open_listener: a socket bound to SA and listening (SO_REUSEADDR, so a
 * restarted program rebinds at once). Bound here rather than inside
 * libmicrohttpd so that "address in use" is told apart from other failures.
 * Returns the socket, or -1 with errno and the reason (naming SPEC) in ERR.
 */
static int open_listener(const struct sockaddr_storage *sa, socklen_t len, const char *spec,
                         const char *prog, char *err, size_t errlen)
{
	int fd = socket(sa->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return fail(errno, err, errlen, "cannot listen on %s: socket: %s", spec,
		            strerror(errno));
	int on = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    bind(fd, (const struct sockaddr *)sa, len) != 0 || listen(fd, SOMAXCONN) != 0) {
		int e = errno;
		close(fd);
		if (e == EADDRINUSE)
			return fail(e, err, errlen,
			            "cannot listen on %s: address in use — is another %s "
			            "running? pick another --listen",
			            spec, prog);
		if (e == EADDRNOTAVAIL)
			return fail(e, err, errlen,
			            "cannot listen on %s: no such address on this host — pick "
			            "another --listen",
			            spec);
		if (e == EACCES)
			return fail(e, err, errlen,
			            "cannot listen on %s: permission denied (ports below 1024 need "
			            "privileges) — pick another --listen",
			            spec);
		return fail(e, err, errlen, "cannot listen on %s: %s", spec, strerror(e));
	}
	return fd;
}

/*
 * printable: URL cut to 200 bytes of printable ASCII (others become '?'), so
 * that an error body that echoes it is always valid UTF-8 JSON. OUT: 201 bytes.
 */
static const char *printable(const char *url, char out[201])
{
	size_t i = 0;
	for (; url && url[i] && i < 200; i++)
		out[i] = url[i] >= 0x20 && url[i] < 0x7f ? url[i] : '?';
	out[i] = '\0';
	return out;
}

/* error_body: {"error": ERROR, "path": URL} (malloc'd), or NULL if out of memory. */
static char *error_body(const char *error, const char *url)
{
	char path[201];
	cJSON *o = cJSON_CreateObject();
	char *body = NULL;
	if (o && cJSON_AddStringToObject(o, "error", error) &&
	    cJSON_AddStringToObject(o, "path", printable(url, path)))
		body = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	return body;
}

/* struct http_request: the request a route answers (http.h). */
struct http_request {
	struct MHD_Connection *c;
	const char *url;
};

/*
 * reply: send STATUS with the malloc'd BODY (taken; NULL means out of memory,
 * answered 500), its Content-Type CTYPE, Cache-Control CACHE (may be NULL)
 * and, for a 405, the Allow header.
 */
static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *ctype,
                             const char *cache, char *body)
{
	static const char oom[] = "{\"error\":\"out of memory\"}";
	struct MHD_Response *r;
	if (body) {
		r = MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
		if (!r)
			free(body);
	} else {
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
		ctype = HTTP_CT_JSON;
		cache = "no-store";
		r = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
		                                    MHD_RESPMEM_PERSISTENT);
	}
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	if (cache)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
	if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, ALLOW_METHODS);
	enum MHD_Result ret = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ret;
}

/* reply_error: STATUS with the JSON error body {"error": ERROR, "path": URL}. */
static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *error,
                                   const char *url)
{
	return reply(c, status, HTTP_CT_JSON, "no-store", error_body(error, url));
}

int http_reply(struct http_request *rq, unsigned status, const char *ctype, const char *cache,
               char *body)
{
	return reply(rq->c, status, ctype, cache, body);
}

int http_reply_error(struct http_request *rq, unsigned status, const char *error)
{
	return reply_error(rq->c, status, error, rq->url);
}

/* reply_file: 200 with the response R (NULL: it could not be made; FD, if
 * not -1, is closed then), its CTYPE and CACHE. */
static int reply_file(struct http_request *rq, struct MHD_Response *r, int fd, const char *ctype,
                      const char *cache)
{
	if (!r) {
		if (fd >= 0)
			close(fd);
		return reply(rq->c, MHD_HTTP_INTERNAL_SERVER_ERROR, HTTP_CT_JSON, "no-store", NULL);
	}
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, cache);
	MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
	enum MHD_Result ret = MHD_queue_response(rq->c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

int http_reply_data(struct http_request *rq, const void *data, size_t len, const char *ctype,
                    const char *cache)
{
	return reply_file(
	        rq, MHD_create_response_from_buffer(len, (void *)data, MHD_RESPMEM_PERSISTENT), -1,
	        ctype, cache);
}

int http_reply_fd(struct http_request *rq, int fd, size_t len, const char *ctype, const char *cache)
{
	/* The response owns the descriptor from here on (libmicrohttpd closes it). */
	return reply_file(rq, MHD_create_response_from_fd(len, fd), fd, ctype, cache);
}

/* has_body: whether the request announces a body (Content-Length > 0 or chunked). */
static bool has_body(struct MHD_Connection *c)
{
	const char *len =
	        MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	return (len && strspn(len, "0") != strlen(len)) ||
	       MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

/*
 * on_request: libmicrohttpd's access handler. A request without a body is
 * answered on the second call, once it is fully received, which keeps the
 * connection alive for the next request (libmicrohttpd 0.9.75 closes a
 * connection answered on the first call). No route takes a body, so a
 * request with one is answered at once, and its body is never read.
 */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **req)
{
	struct http_server *s = cls;
	(void)version;
	(void)upload;
	if (!*req) {
		*req = s;
		/* The header is in: the deadline no longer applies. */
		const union MHD_ConnectionInfo *ci =
		        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		struct conn_track *t = ci ? ci->socket_context : NULL;
		if (t) {
			pthread_mutex_lock(&s->conns_lock);
			t->header_done = true;
			pthread_mutex_unlock(&s->conns_lock);
		}
		if (!has_body(c))
			return MHD_YES;
	} else if (*upload_size != 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	bool get = strcmp(method, MHD_HTTP_METHOD_GET) == 0 ||
	           strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	struct http_request rq = {.c = c, .url = url};
	return s->cfg.route(s->cfg.ctx, &rq, url, get) == MHD_YES ? MHD_YES : MHD_NO;
}

/* cut: end connection T (conns_lock held): libmicrohttpd sees the socket
 * shut and closes the connection. */
static void cut(struct conn_track *t)
{
	if (!t->cut && t->fd >= 0)
		shutdown(t->fd, SHUT_RDWR);
	t->cut = true;
}

/*
 * on_connection: libmicrohttpd's connection notifier (its thread): track a
 * new connection, evicting the oldest one still sending its header when near
 * the limit; forget a closed one.
 */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
	struct http_server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		struct conn_track *t = calloc(1, sizeof(*t));
		const union MHD_ConnectionInfo *ci =
		        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		if (!t)
			return; /* untracked: the idle timeout still applies */
		t->fd = ci ? fcntl(ci->connect_fd, F_DUPFD_CLOEXEC, 0) : -1;
		t->since = now_s();
		pthread_mutex_lock(&s->conns_lock);
		t->prev = s->newest;
		if (s->newest)
			s->newest->next = t;
		else
			s->oldest = t;
		s->newest = t;
		s->nconns++;
		if (s->nconns + HTTP_EVICT_MARGIN >= s->conn_limit) {
			for (struct conn_track *o = s->oldest; o && o != t; o = o->next) {
				if (!o->header_done && !o->cut) {
					cut(o);
					s->cut_evicted++;
					break;
				}
			}
		}
		pthread_mutex_unlock(&s->conns_lock);
		*socket_context = t;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
		struct conn_track *t = *socket_context;
		if (!t)
			return;
		pthread_mutex_lock(&s->conns_lock);
		if (t->prev)
			t->prev->next = t->next;
		else
			s->oldest = t->next;
		if (t->next)
			t->next->prev = t->prev;
		else
			s->newest = t->prev;
		s->nconns--;
		pthread_mutex_unlock(&s->conns_lock);
		if (t->fd >= 0)
			close(t->fd);
		free(t);
		*socket_context = NULL;
	}
}

/* on_completed: a request was answered; on a kept-alive connection the next
 * request's header gets a deadline of its own. */
static void on_completed(void *cls, struct MHD_Connection *c, void **req,
                         enum MHD_RequestTerminationCode toe)
{
	struct http_server *s = cls;
	(void)req;
	(void)toe;
	const union MHD_ConnectionInfo *ci =
	        MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	struct conn_track *t = ci ? ci->socket_context : NULL;
	if (!t)
		return;
	pthread_mutex_lock(&s->conns_lock);
	t->header_done = false;
	t->since = now_s();
	pthread_mutex_unlock(&s->conns_lock);
}

/* sweeper: four times a second, cut the connections whose request header is
 * overdue; say how many were cut, at most once a minute. */
static void *sweeper(void *arg)
{
	struct http_server *s = arg;
	double next_report = now_s() + 60;
	for (;;) {
		struct pollfd pfd = {.fd = s->stop_pipe[0], .events = POLLIN};
		if (poll(&pfd, 1, 250) != 0)
			break; /* stop (or an error: stop too) */
		double now = now_s();
		pthread_mutex_lock(&s->conns_lock);
		for (struct conn_track *t = s->oldest; t; t = t->next) {
			if (!t->header_done && !t->cut && now - t->since > HTTP_HEADER_DEADLINE_S) {
				cut(t);
				s->cut_deadline++;
			}
		}
		unsigned long deadline = s->cut_deadline, evicted = s->cut_evicted;
		if (now >= next_report && (deadline || evicted)) {
			s->cut_deadline = s->cut_evicted = 0;
			next_report = now + 60;
		} else {
			deadline = evicted = 0;
		}
		pthread_mutex_unlock(&s->conns_lock);
		if (deadline || evicted)
			fprintf(stderr,
			        "%s: http: closed %lu connections whose request header took "
			        "over %.0f s, and %lu evicted near the connection limit\n",
			        s->cfg.prog, deadline, HTTP_HEADER_DEADLINE_S, evicted);
	}
	return NULL;
}

/* raise_fd_limit: the descriptor limit up to the hard one; the connection
 * limit that fits it (each connection takes two descriptors: its socket and
 * our dup), at most HTTP_MAX_CONNECTIONS. */
static unsigned raise_fd_limit(void)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return 256;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t want = rl.rlim_max == RLIM_INFINITY ? 65536 : rl.rlim_max;
		struct rlimit up = {.rlim_cur = want, .rlim_max = rl.rlim_max};
		if (setrlimit(RLIMIT_NOFILE, &up) == 0)
			rl.rlim_cur = want;
	}
	rlim_t avail = rl.rlim_cur > 128 ? (rl.rlim_cur - 128) / 2 : 32;
	return avail > HTTP_MAX_CONNECTIONS ? HTTP_MAX_CONNECTIONS : (unsigned)avail;
}

struct http_server *http_server_start(const struct http_config *cfg, const char *listen_spec,
                                      char *err, size_t errlen)
{
	struct sockaddr_storage sa;
	socklen_t salen = 0;
	int parsed = http_parse_listen(listen_spec, &sa, &salen, err, errlen);
	struct http_server *s = parsed == 0 ? calloc(1, sizeof(*s)) : NULL;
	if (!s) {
		if (parsed == 0)
			fail(ENOMEM, err, errlen, "cannot listen on %s: out of memory",
			     listen_spec);
		if (cfg->free_ctx)
			cfg->free_ctx(cfg->ctx);
		errno = parsed == 0 ? ENOMEM : EINVAL;
		return NULL;
	}
	s->cfg = *cfg;
	pthread_mutex_init(&s->log_lock, NULL);
	pthread_mutex_init(&s->conns_lock, NULL);
	s->stop_pipe[0] = s->stop_pipe[1] = -1;
	s->conn_limit = raise_fd_limit();

	int fd = open_listener(&sa, salen, listen_spec, cfg->prog, err, errlen);
	if (fd < 0) {
		int e = errno;
		http_stop(s);
		errno = e;
		return NULL;
	}
	struct sockaddr_storage bound;
	socklen_t boundlen = sizeof(bound);
	if (getsockname(fd, (struct sockaddr *)&bound, &boundlen) == 0)
		s->port = ntohs(bound.ss_family == AF_INET6
		                        ? ((struct sockaddr_in6 *)&bound)->sin6_port
		                        : ((struct sockaddr_in *)&bound)->sin_port);

	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (sa.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	s->daemon = MHD_start_daemon(
	        flags, 0, NULL, NULL, on_request, s, MHD_OPTION_EXTERNAL_LOGGER, http_log, s,
	        MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_CONNECTION_LIMIT, s->conn_limit,
	        MHD_OPTION_CONNECTION_TIMEOUT, HTTP_TIMEOUT_S, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
	        HTTP_CONN_MEMORY, MHD_OPTION_NOTIFY_CONNECTION, on_connection, s,
	        MHD_OPTION_NOTIFY_COMPLETED, on_completed, s, MHD_OPTION_THREAD_POOL_SIZE,
	        (unsigned)HTTP_THREADS, MHD_OPTION_END);
	if (!s->daemon) {
		/* libmicrohttpd closes a listening socket it was given on most of its
		 * failure paths, but not all: leaking one descriptor on a start that
		 * failed beats closing one twice. Its reason was logged above. */
		http_stop(s);
		fail(EIO, err, errlen,
		     "cannot listen on %s: the HTTP server (libmicrohttpd) failed to start",
		     listen_spec);
		return NULL;
	}
	if (pipe2(s->stop_pipe, O_CLOEXEC) != 0 ||
	    pthread_create(&s->sweeper, NULL, sweeper, s) != 0) {
		int e = errno;
		http_stop(s);
		fail(e, err, errlen, "cannot listen on %s: cannot start the header sweeper: %s",
		     listen_spec, strerror(e));
		return NULL;
	}
	s->sweeper_started = true;
	return s;
}

const char *http_listen_shown(const char *listen, int port, char *out, size_t len)
{
	snprintf(out, len, "%s", listen);
	char *colon = strrchr(out, ':');
	if (colon && !strcmp(colon, ":0")) /* port 0: say which one we got */
		snprintf(colon + 1, len - (size_t)(colon + 1 - out), "%d", port);
	return out;
}

int http_port(const struct http_server *s)
{
	return s ? s->port : -1;
}

void http_stop(struct http_server *s)
{
	if (!s)
		return;
	if (s->sweeper_started) {
		(void)!write(s->stop_pipe[1], "x", 1);
		pthread_join(s->sweeper, NULL);
	}
	for (int i = 0; i < 2; i++)
		if (s->stop_pipe[i] >= 0)
			close(s->stop_pipe[i]);
	if (s->daemon)
		MHD_stop_daemon(s->daemon); /* closes the listening socket and all connections */
	if (s->cfg.free_ctx)
		s->cfg.free_ctx(s->cfg.ctx); /* no route call runs any more */
	pthread_mutex_destroy(&s->conns_lock);
	pthread_mutex_destroy(&s->log_lock);
	free(s);
}
