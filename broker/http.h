/* http.h - the embedded HTTP server shared by mqbroker and mqbridge (libmicrohttpd, with limits).
 */
#ifndef MQ_HTTP_H
#define MQ_HTTP_H

/*
 * A small GET/HEAD-only server for status documents, with the limits that
 * keep slow or flooding local clients from stalling it (http.c says which).
 * It knows nothing of what it serves: the program gives a route callback and
 * its context, and the program's name for the log lines ("mqbroker: http:
 * ...", "mqbridge: http: ..."). The callback answers each request with one
 * of the http_reply calls below; a request that announces a body never
 * reaches a route's payload (no route takes one), and error answers are
 * JSON: {"error": "...", "path": "..."}.
 *
 * Library mq_http (broker/CMakeLists.txt); mqbroker's routes are routes.c,
 * mqbridge's bridge/endpoints.c.
 */
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

struct http_server;
struct http_request; /* one request being answered; valid during the route call only */

/* Content types of the documents both programs serve. */
#define HTTP_CT_JSON    "application/json"
#define HTTP_CT_METRICS "text/plain; version=0.0.4; charset=utf-8"

/*
 * http_route_fn: answer the request RQ for URL (the path, unescaped) with
 * one http_reply call, and return what that returned. GET is true for GET
 * and HEAD (libmicrohttpd drops the body of a HEAD answer); for any other
 * method, answer http_reply_error 405 where a GET would have found
 * something, 404 elsewhere. Called in the server's threads, concurrently.
 */
typedef int (*http_route_fn)(void *ctx, struct http_request *rq, const char *url, bool get);

/* struct http_config: what a program serves. */
struct http_config {
	const char *prog; /* "mqbroker": log lines and error texts name it */
	http_route_fn route;
	void *ctx;                   /* the route's first argument */
	void (*free_ctx)(void *ctx); /* NULL, or frees CTX once no route call can run */
};

/*
 * http_server_start: serve CFG on LISTEN ("ADDR:PORT", see http_parse_listen).
 * Returns the server, or NULL with a one-line reason naming LISTEN in ERR
 * (ERRLEN bytes) and errno: EINVAL bad LISTEN, EADDRINUSE the address is
 * taken, EADDRNOTAVAIL not this host's, EACCES a privileged port, ENOMEM,
 * EIO libmicrohttpd failed to start. CFG->prog must outlive the server;
 * CFG->ctx is the server's from here on (given to CFG->free_ctx by
 * http_stop, or before http_server_start returns NULL).
 */
struct http_server *http_server_start(const struct http_config *cfg, const char *listen, char *err,
                                      size_t errlen);

/* http_port: the TCP port S listens on (the one picked, if LISTEN said port
 * 0), or -1 if S is NULL. */
int http_port(const struct http_server *s);

/* http_stop: stop serving (no route call runs after it returns) and free S
 * (NULL is fine). */
void http_stop(struct http_server *s);

/* http_parse_listen: SPEC ("A.B.C.D:PORT", "[IPV6]:PORT" or "localhost:PORT";
 * PORT 0..65535, 0 = any free port) into *SA and *LEN. Returns 0, or -1 with
 * errno EINVAL and a one-line reason in ERR (ERRLEN bytes). */
int http_parse_listen(const char *spec, struct sockaddr_storage *sa, socklen_t *len, char *err,
                      size_t errlen);

/* http_listen_shown: LISTEN as a log line shows it, its port 0 replaced by
 * PORT (the one picked), into OUT (LEN bytes). Returns OUT. */
const char *http_listen_shown(const char *listen, int port, char *out, size_t len);

/*
 * http_reply: answer RQ with STATUS and the malloc'd BODY (taken: freed
 * whatever happens; NULL means out of memory and is answered 500), of
 * Content-Type CTYPE, with Cache-Control CACHE (NULL: none). A 405 gets the
 * Allow header. Returns the route's result.
 */
int http_reply(struct http_request *rq, unsigned status, const char *ctype, const char *cache,
               char *body);

/* http_reply_error: STATUS with the JSON body {"error": ERROR, "path": the
 * request's path} and Cache-Control no-store. */
int http_reply_error(struct http_request *rq, unsigned status, const char *error);

/* http_reply_data: 200 with LEN bytes at DATA (not copied: they must live as
 * long as the program), of CTYPE with Cache-Control CACHE. */
int http_reply_data(struct http_request *rq, const void *data, size_t len, const char *ctype,
                    const char *cache);

/* http_reply_fd: 200 with the LEN bytes of the open file FD (taken: closed
 * once sent, or now on failure), of CTYPE with Cache-Control CACHE. */
int http_reply_fd(struct http_request *rq, int fd, size_t len, const char *ctype,
                  const char *cache);

#endif /* MQ_HTTP_H */
