/* routes.c - mqbroker's HTTP routes: /status[/queues/NAME], /metrics, /healthz, the dashboard. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <microhttpd.h>

#include "broker.h"
#include "web_assets.h"

/* struct broker_web: what the routes serve (the server's context). */
struct broker_web {
	struct broker *b;
	int web_dirfd;       /* --web-root, opened; -1: the built-in dashboard */
	bool web_root_given; /* --web-root given (files come from web_dirfd only) */
};

/* Content types of the dashboard's files; "no-cache" keeps HTML fresh after an upgrade. */
static const struct {
	const char *ext, *ctype, *cache;
} static_types[] = {
        {".html", "text/html; charset=utf-8", "no-cache"},
        {".htm", "text/html; charset=utf-8", "no-cache"},
        {".css", "text/css; charset=utf-8", "max-age=300"},
        {".js", "text/javascript; charset=utf-8", "max-age=300"},
        {".mjs", "text/javascript; charset=utf-8", "max-age=300"},
        {".json", "application/json", "max-age=300"},
        {".svg", "image/svg+xml", "max-age=300"},
        {".png", "image/png", "max-age=300"},
        {".ico", "image/x-icon", "max-age=300"},
        {".txt", "text/plain; charset=utf-8", "max-age=300"},
};

/* A dashboard file found for a URL: built in (DATA) or opened under
 * --web-root (FD), with its Content-Type and Cache-Control. */
struct static_file {
	int fd; /* -1: built in */
	const unsigned char *data;
	size_t len;
	const char *ctype, *cache;
};

/* static_path: URL as a path relative to the dashboard ("/" and ".../" mean
 * index.html) into OUT (LEN bytes, with a leading "/"), or -1 if it names no
 * file: any path segment starting with "." (so "..", and hidden files). */
static int static_path(const char *url, char *out, size_t len)
{
	if (url[0] != '/')
		return -1;
	for (const char *p = url; (p = strchr(p, '/')) != NULL;)
		if (*++p == '.')
			return -1;
	size_t n = strlen(url);
	int w = snprintf(out, len, "%s%s", url, url[n - 1] == '/' ? "index.html" : "");
	return w < 0 || (size_t)w >= len ? -1 : 0;
}

/*
 * open_beneath: open PATH (relative) beneath the directory DIRFD, as
 * openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS |
 * RESOLVE_NO_MAGICLINKS: the kernel resolves every component inside the
 * directory and refuses any symbolic link on the way, in one step, so no
 * rename or symlink swapped in meanwhile can lead it outside (checking a
 * path and then opening it could be raced). Returns the descriptor or -1.
 */
static int open_beneath(int dirfd, const char *path)
{
	struct open_how how = {
	        .flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
	        .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
	};
	return (int)syscall(SYS_openat2, dirfd, path, &how, sizeof(how));
}

/*
 * find_static: the dashboard file for URL: from --web-root if the broker was
 * given one (a regular file, opened beneath it), else built in. Returns 0
 * with *F filled (the caller owns F->fd), or -1 (answer 404).
 */
static int find_static(const struct broker_web *s, const char *url, struct static_file *f)
{
	char path[PATH_MAX];
	if (static_path(url, path, sizeof(path)) != 0)
		return -1;
	f->fd = -1;
	if (s->web_root_given) {
		int fd = s->web_dirfd >= 0 ? open_beneath(s->web_dirfd, path + 1) : -1;
		struct stat st;
		if (fd < 0)
			return -1;
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return -1;
		}
		f->fd = fd;
		f->len = (size_t)st.st_size;
	} else {
		size_t i = 0;
		while (i < web_assets_count && strcmp(web_assets[i].path, path) != 0)
			i++;
		if (i == web_assets_count)
			return -1;
		f->data = web_assets[i].data;
		f->len = web_assets[i].len;
	}
	f->ctype = "application/octet-stream";
	f->cache = "max-age=300";
	const char *dot = strrchr(path, '.');
	for (size_t i = 0; dot && i < sizeof(static_types) / sizeof(static_types[0]); i++) {
		if (strcasecmp(dot, static_types[i].ext) == 0) {
			f->ctype = static_types[i].ctype;
			f->cache = static_types[i].cache;
			break;
		}
	}
	return 0;
}

/* serve_static: answer GET/HEAD URL with a dashboard file, or 404. */
static int serve_static(const struct broker_web *s, struct http_request *rq, const char *url)
{
	struct static_file f;
	if (find_static(s, url, &f) != 0)
		return http_reply_error(rq, MHD_HTTP_NOT_FOUND, "not found");
	/* A file's response owns its descriptor; a built-in one points at the
	 * binary's own bytes. */
	if (f.fd >= 0)
		return http_reply_fd(rq, f.fd, f.len, f.ctype, f.cache);
	return http_reply_data(rq, f.data, f.len, f.ctype, f.cache);
}

enum route { ROUTE_STATUS, ROUTE_QUEUE, ROUTE_METRICS, ROUTE_HEALTHZ, ROUTE_STATIC };

#define QUEUE_PREFIX "/status/queues/"

/* render_view: take snapshots of B's queues and render them with RENDER
 * (malloc'd), or NULL. */
static char *render_view(struct broker *b, char *(*render)(const struct broker_view *const *, int))
{
	int n;
	struct broker_view **v = view_take(b, NULL, &n);
	if (!v)
		return NULL;
	char *body = render((const struct broker_view *const *)v, n);
	view_free(v, n);
	return body;
}

/* reply_queue: GET /status/queues/NAME (URL already unescaped by
 * libmicrohttpd): the element of queue "/NAME", or 404. */
static int reply_queue(struct broker_web *s, struct http_request *rq, const char *url)
{
	char name[MQ_NAME_MAX + 2];
	const char *rest = url + strlen(QUEUE_PREFIX);
	if (strlen(rest) + 1 > MQ_NAME_MAX || !*rest || strchr(rest, '/'))
		return http_reply_error(rq, MHD_HTTP_NOT_FOUND, "no such queue");
	snprintf(name, sizeof(name), "/%s", rest);
	int n;
	struct broker_view **v = view_take(s->b, name, &n);
	if (!v)
		return http_reply(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, HTTP_CT_JSON, "no-store",
		                  NULL);
	char *body = n == 1 ? render_queue(v[0]) : NULL;
	view_free(v, n);
	if (n != 1)
		return http_reply_error(rq, MHD_HTTP_NOT_FOUND, "no such queue");
	return http_reply(rq, MHD_HTTP_OK, HTTP_CT_JSON, "no-store", body);
}

/*
 * set_web_root: open WEB_ROOT (--web-root) as the directory files are served
 * from, beneath it. A missing directory is not fatal (the API is what
 * scrapers need): it is reported on stderr and "/" answers 404.
 */
static void set_web_root(struct broker_web *s, const char *web_root)
{
	if (!web_root)
		return;
	s->web_root_given = true;
	s->web_dirfd = open(web_root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->web_dirfd < 0)
		fprintf(stderr,
		        "mqbroker: http: dashboard directory %s: %s; serving the API only\n",
		        web_root, strerror(errno));
}

/*
 * route: the broker's http_route_fn. 405 where a GET would have found
 * something (an API path, "/", a dashboard file), 404 elsewhere.
 */
static int route(void *ctx, struct http_request *rq, const char *url, bool get)
{
	struct broker_web *s = ctx;
	enum route route = strcmp(url, "/status") == 0                             ? ROUTE_STATUS
	                   : strncmp(url, QUEUE_PREFIX, strlen(QUEUE_PREFIX)) == 0 ? ROUTE_QUEUE
	                   : strcmp(url, "/metrics") == 0                          ? ROUTE_METRICS
	                   : strcmp(url, "/healthz") == 0                          ? ROUTE_HEALTHZ
	                                                                           : ROUTE_STATIC;
	if (!get) {
		bool known = route != ROUTE_STATIC || strcmp(url, "/") == 0;
		if (!known) {
			struct static_file f;
			known = find_static(s, url, &f) == 0;
			if (known && f.fd >= 0)
				close(f.fd);
		}
		if (known)
			return http_reply_error(rq, MHD_HTTP_METHOD_NOT_ALLOWED,
			                        "method not allowed");
		return http_reply_error(rq, MHD_HTTP_NOT_FOUND, "not found");
	}

	switch (route) {
	case ROUTE_STATUS:
		return http_reply(rq, MHD_HTTP_OK, HTTP_CT_JSON, "no-store",
		                  render_view(s->b, render_status));
	case ROUTE_QUEUE:
		return reply_queue(s, rq, url);
	case ROUTE_METRICS:
		return http_reply(rq, MHD_HTTP_OK, HTTP_CT_METRICS, "no-store",
		                  render_view(s->b, render_metrics));
	case ROUTE_HEALTHZ: {
		/* 503 while a queue is damaged or refused: their names, and each
		 * one's reason ("errors", by name; "error": the first, as before). */
		int n;
		struct broker_view **v = view_take(s->b, NULL, &n);
		if (!v)
			return http_reply(rq, MHD_HTTP_INTERNAL_SERVER_ERROR, HTTP_CT_JSON,
			                  "no-store", NULL);
		int bad = 0;
		char *body = render_health((const struct broker_view *const *)v, n, getpid(), &bad);
		view_free(v, n);
		return http_reply(rq, bad ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK,
		                  HTTP_CT_JSON, "no-store", body);
	}
	case ROUTE_STATIC:
		break;
	}
	return serve_static(s, rq, url);
}

/* free_web: the server's context, once it stopped. */
static void free_web(void *ctx)
{
	struct broker_web *s = ctx;
	if (s->web_dirfd >= 0)
		close(s->web_dirfd);
	free(s);
}

struct http_server *http_start(struct broker *b, const char *listen_spec, const char *web_root,
                               char *err, size_t errlen)
{
	struct broker_web *s = calloc(1, sizeof(*s));
	if (!s) {
		snprintf(err, errlen, "cannot listen on %s: out of memory", listen_spec);
		errno = ENOMEM;
		return NULL;
	}
	s->b = b;
	s->web_dirfd = -1;
	struct http_config cfg = {
	        .prog = "mqbroker", .route = route, .ctx = s, .free_ctx = free_web};
	/* The listen address first: a bad one is a usage error, said alone. */
	struct sockaddr_storage sa;
	socklen_t salen;
	if (http_parse_listen(listen_spec, &sa, &salen, err, errlen) != 0) {
		free_web(s);
		return NULL;
	}
	set_web_root(s, web_root);
	return http_server_start(&cfg, listen_spec, err, errlen);
}
