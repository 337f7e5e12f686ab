/* options.c - mqbridge's command line and config file, checked before anything starts. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"
#include "http.h"

static const char usage_text[] =
        "Usage: mqbridge --nats URL [--stream NAME] [--listen ADDR:PORT]\n"
        "                [--export QUEUE=SUBJECT]... [--import SUBJECT=QUEUE]...\n"
        "                [--config FILE] [--creds FILE | --user U --password P] [--tls-ca FILE]\n"
        "                [--window N] [--batch N] [--ack-wait SECONDS]\n"
        "Carry messages between local libmq queues and NATS JetStream.\n"
        "\n"
        "  --nats URL              NATS server(s): nats://HOST:PORT or tls://HOST:PORT,\n"
        "                          several separated by commas\n"
        "  --stream NAME           JetStream stream (default " BRIDGE_DEFAULT_STREAM
        "); created if\n"
        "                          missing with the routes' subjects, file storage and a\n"
        "                          duplicate window of 120 s; an existing one is used as is\n"
        "  --export QUEUE=SUBJECT  lease each message of the local QUEUE (/name), publish it\n"
        "                          to SUBJECT (no wildcards) and ack it after JetStream's\n"
        "                          ack: exactly once into the stream\n"
        "  --import SUBJECT=QUEUE  a durable pull consumer of SUBJECT (wildcards allowed)\n"
        "                          into the local QUEUE, acked after mq_send: at least once\n"
        "  --config FILE           read options from FILE: one \"OPTION VALUE\" (or\n"
        "                          \"OPTION = VALUE\") a line, OPTION without its dashes,\n"
        "                          # comments\n"
        "  --creds FILE            NATS user credentials file (JWT and NKey seed)\n"
        "  --user U --password P   NATS user and password\n"
        "  --tls-ca FILE           CA certificates to verify the server (implies TLS)\n"
        "  --listen ADDR:PORT      serve /healthz, /status (JSON) and /metrics (Prometheus)\n"
        "                          on ADDR:PORT (default " BRIDGE_DEFAULT_LISTEN
        "; [::1]:PORT for\n"
        "                          IPv6; port 0 picks a free one, logged)\n"
        "  --window N              export: publishes awaiting JetStream's ack per route\n"
        "                          (1..65536, default 256)\n"
        "  --batch N               import: messages per fetch (1..1024, default 64)\n"
        "  --ack-wait SECONDS      import: how long JetStream waits for our ack before it\n"
        "                          delivers again, for consumers we create (1..3600,\n"
        "                          default 30; an existing consumer keeps its own)\n"
        "  --help                  this text\n"
        "\n"
        "Exit status: 0 stopped by SIGTERM/SIGINT; 1 a queue, NATS, the stream or the\n"
        "--listen address could not be set up; 2 bad command line or config file.\n";

/* bad: print "mqbridge: WHAT" and the hint; returns BRIDGE_EXIT_USAGE. */
__attribute__((format(printf, 1, 2))) static int bad(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mqbridge: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputs("\n(mqbridge --help lists the options)\n", stderr);
	va_end(ap);
	return BRIDGE_EXIT_USAGE;
}

/* copy: VALUE into DST of LEN bytes; -1 if it does not fit or is empty. */
static int copy(char *dst, size_t len, const char *value)
{
	size_t n = strlen(value);
	if (n == 0 || n >= len)
		return -1;
	memcpy(dst, value, n + 1);
	return 0;
}

/* queue_name_ok: "/" + 1..250 characters, no other "/" (as mq_attach wants).
 * Returns NULL or why not. */
static const char *queue_name_ok(const char *q)
{
	size_t n = strlen(q);
	if (q[0] != '/')
		return "a queue name starts with '/'";
	if (n < 2 || n > MQ_NAME_MAX)
		return "a queue name is '/' and 1..250 characters";
	if (strchr(q + 1, '/'))
		return "a queue name has no '/' after the first";
	return NULL;
}

/* subject_ok: a NATS subject: dot-separated non-empty tokens, no white space;
 * wildcards ('*' a whole token, '>' the last token) only if WILD. Returns NULL
 * or why not. */
static const char *subject_ok(const char *s, int wild)
{
	size_t n = strlen(s);
	if (n == 0)
		return "the subject is empty";
	if (n >= BRIDGE_SUBJECT_MAX)
		return "the subject is longer than 255 characters";
	const char *tok = s;
	for (;;) {
		const char *end = strchr(tok, '.');
		size_t tl = end ? (size_t)(end - tok) : strlen(tok);
		if (tl == 0)
			return "the subject has an empty token (leading, trailing or double '.')";
		for (size_t i = 0; i < tl; i++) {
			unsigned char c = (unsigned char)tok[i];
			if (c <= ' ' || c == 0x7f)
				return "the subject has white space or a control character";
			if (c == '*' || c == '>') {
				if (!wild)
					return "an export subject has no wildcards ('*', '>'): "
					       "messages are published to one subject";
				if (tl != 1)
					return "a wildcard ('*', '>') is a whole token";
				if (c == '>' && end)
					return "'>' is only the last token";
			}
		}
		if (!end)
			return NULL;
		tok = end + 1;
	}
}

/* add_route: parse the --export/--import VALUE into O's routes. */
static int add_route(struct bridge_opts *o, enum route_dir dir, const char *value)
{
	const char *opt = dir == ROUTE_EXPORT ? "--export" : "--import";
	const char *form = dir == ROUTE_EXPORT ? "QUEUE=SUBJECT" : "SUBJECT=QUEUE";
	/* Export splits at the first '=' (a subject may hold '='); import at the
	 * first "=/" (so may a queue name, but it starts with '/'). */
	const char *eq = dir == ROUTE_EXPORT ? strchr(value, '=') : strstr(value, "=/");
	if (!eq && dir == ROUTE_IMPORT)
		eq = strchr(value, '=');
	if (!eq)
		return bad("%s wants %s, got '%s' (no '=')", opt, form, value);
	if (o->nroutes == BRIDGE_ROUTES_MAX)
		return bad("more than %d routes", BRIDGE_ROUTES_MAX);
	struct route *r = &o->routes[o->nroutes];
	r->dir = dir;
	size_t left = (size_t)(eq - value);
	const char *queue = dir == ROUTE_EXPORT ? NULL : eq + 1;
	const char *subject = dir == ROUTE_EXPORT ? eq + 1 : NULL;
	char qbuf[MQ_NAME_MAX + 2], sbuf[BRIDGE_SUBJECT_MAX + 1];
	if (dir == ROUTE_EXPORT) {
		if (left >= sizeof(qbuf))
			return bad("%s %s: the queue name is longer than 250 characters", opt,
			           value);
		memcpy(qbuf, value, left);
		qbuf[left] = '\0';
		queue = qbuf;
	} else {
		if (left >= sizeof(sbuf))
			return bad("%s %s: the subject is longer than 255 characters", opt, value);
		memcpy(sbuf, value, left);
		sbuf[left] = '\0';
		subject = sbuf;
	}
	const char *why = queue_name_ok(queue);
	if (why)
		return bad("%s %s: bad queue name '%s': %s", opt, value, queue, why);
	why = subject_ok(subject, dir == ROUTE_IMPORT);
	if (why)
		return bad("%s %s: bad subject '%s': %s", opt, value, subject, why);
	strcpy(r->queue, queue);
	strcpy(r->subject, subject);
	for (unsigned i = 0; i < o->nroutes; i++) {
		const struct route *p = &o->routes[i];
		if (p->dir == dir && !strcmp(p->queue, r->queue) && !strcmp(p->subject, r->subject))
			return bad("%s %s is given twice", opt, value);
		if (p->dir == ROUTE_EXPORT && dir == ROUTE_EXPORT && !strcmp(p->queue, r->queue))
			return bad("--export %s: queue %s is already exported (to %s); one export "
			           "per queue",
			           value, r->queue, p->subject);
		if (p->dir != dir && !strcmp(p->subject, r->subject))
			return bad("%s %s: subject %s is both exported and imported by this "
			           "bridge: messages would loop",
			           opt, value, r->subject);
	}
	o->nroutes++;
	return 0;
}

static int parse_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	errno = 0;
	if (!*s || *s == '-' || *s == '+')
		return -1;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < lo || v > hi)
		return -1;
	*out = (unsigned)v;
	return 0;
}

/* readable: whether PATH (named by OPT) can be read; prints why not. */
static int readable(const char *opt, const char *path)
{
	if (access(path, R_OK) == 0)
		return 0;
	bad("%s %s: cannot read it: %s", opt, path, strerror(errno));
	return -1;
}

static int parse_config(struct bridge_opts *o, const char *file, int depth);

/* set_option: apply the option NAME (without dashes) with VALUE. */
static int set_option(struct bridge_opts *o, const char *name, const char *value, int depth)
{
	if (!strcmp(name, "nats")) {
		const char *scheme = strstr(value, "://");
		if (scheme && strncmp(value, "nats://", 7) && strncmp(value, "tls://", 6))
			return bad("--nats %s: the URL's scheme is nats:// or tls://", value);
		if (copy(o->nats_url, sizeof(o->nats_url), value) || (scheme && !scheme[3]))
			return bad("--nats '%s': want nats://HOST:PORT", value);
	} else if (!strcmp(name, "stream")) {
		size_t n = strlen(value);
		if (n == 0 || n >= BRIDGE_STREAM_MAX || strpbrk(value, " \t.*>/\\"))
			return bad("--stream '%s': a stream name is 1..63 characters without "
			           "white space, '.', '*', '>', '/' or '\\'",
			           value);
		strcpy(o->stream, value);
	} else if (!strcmp(name, "listen")) {
		/* The HTTP server's own parser: what passes here, it binds. */
		struct sockaddr_storage sa;
		socklen_t salen;
		char why[256];
		if (http_parse_listen(value, &sa, &salen, why, sizeof(why)) != 0)
			return bad("%s", why);
		if (copy(o->listen, sizeof(o->listen), value))
			return bad("--listen '%s': too long", value);
	} else if (!strcmp(name, "export") || !strcmp(name, "import")) {
		return add_route(o, name[0] == 'e' ? ROUTE_EXPORT : ROUTE_IMPORT, value);
	} else if (!strcmp(name, "config")) {
		return parse_config(o, value, depth + 1);
	} else if (!strcmp(name, "creds")) {
		if (copy(o->creds, sizeof(o->creds), value))
			return bad("--creds: want a file name");
		if (readable("--creds", value))
			return BRIDGE_EXIT_USAGE;
	} else if (!strcmp(name, "user")) {
		if (copy(o->user, sizeof(o->user), value))
			return bad("--user: want a user name (1..255 characters)");
	} else if (!strcmp(name, "password")) {
		if (copy(o->password, sizeof(o->password), value))
			return bad("--password: want a password (1..255 characters)");
	} else if (!strcmp(name, "tls-ca")) {
		if (copy(o->tls_ca, sizeof(o->tls_ca), value))
			return bad("--tls-ca: want a file name");
		if (readable("--tls-ca", value))
			return BRIDGE_EXIT_USAGE;
	} else if (!strcmp(name, "window")) {
		if (parse_uint(value, 1, 65536, &o->window))
			return bad("--window '%s': want 1..65536", value);
	} else if (!strcmp(name, "ack-wait")) {
		if (parse_uint(value, 1, 3600, &o->ack_wait_s))
			return bad("--ack-wait '%s': want 1..3600 seconds", value);
	} else if (!strcmp(name, "batch")) {
		if (parse_uint(value, 1, 1024, &o->batch))
			return bad("--batch '%s': want 1..1024", value);
	} else {
		return bad("unknown option '%s'", name);
	}
	return 0;
}

/* parse_config: apply FILE's "OPTION VALUE" lines, in order, as if given
 * where --config was. */
static int parse_config(struct bridge_opts *o, const char *file, int depth)
{
	if (depth > 4)
		return bad("--config %s: config files include each other too deep", file);
	FILE *f = fopen(file, "r");
	if (!f)
		return bad("--config %s: cannot open it: %s", file, strerror(errno));
	char line[4096];
	int lineno = 0, rc = 0;
	while (!rc && fgets(line, sizeof(line), f)) {
		lineno++;
		size_t n = strlen(line);
		if (n == sizeof(line) - 1 && line[n - 1] != '\n') {
			rc = bad("%s:%d: line longer than %zu characters", file, lineno,
			         sizeof(line) - 2);
			break;
		}
		char *hash = strchr(line, '#');
		if (hash)
			*hash = '\0';
		char *p = line;
		while (*p == ' ' || *p == '\t')
			p++;
		char *e = p + strlen(p);
		while (e > p && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
			*--e = '\0';
		if (!*p)
			continue;
		char *name = p;
		p += strcspn(p, " \t=");
		if (!*p) {
			rc = bad("%s:%d: '%s' has no value (want OPTION VALUE)", file, lineno,
			         name);
			break;
		}
		int had_eq = *p == '=';
		*p++ = '\0';
		p += strspn(p, " \t");
		if (!had_eq && *p == '=')
			p += 1 + strspn(p + 1, " \t");
		if (!*p) {
			rc = bad("%s:%d: '%s' has no value (want OPTION VALUE)", file, lineno,
			         name);
			break;
		}
		if (!strcmp(name, "help")) {
			rc = bad("%s:%d: help is not a config file option", file, lineno);
			break;
		}
		rc = set_option(o, name, p, depth);
		if (rc)
			fprintf(stderr, "mqbridge: (in %s, line %d)\n", file, lineno);
	}
	fclose(f);
	return rc;
}

int bridge_parse_args(struct bridge_opts *o, int argc, char **argv)
{
	memset(o, 0, sizeof(*o));
	strcpy(o->stream, BRIDGE_DEFAULT_STREAM);
	strcpy(o->listen, BRIDGE_DEFAULT_LISTEN);
	o->window = 256;
	o->batch = 64;
	o->ack_wait_s = 30;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			fputs(usage_text, stdout);
			return -1;
		}
		if (strncmp(a, "--", 2) || !a[2])
			return bad("unexpected argument '%s'", a);
		char name[32];
		const char *value = strchr(a, '=');
		size_t nl = value ? (size_t)(value - a - 2) : strlen(a + 2);
		if (nl >= sizeof(name))
			return bad("unknown option '%s'", a);
		memcpy(name, a + 2, nl);
		name[nl] = '\0';
		if (value) {
			value++; /* --opt=value */
		} else {
			if (i + 1 >= argc)
				return bad("option %s needs a value", a);
			value = argv[++i];
		}
		int rc = set_option(o, name, value, 0);
		if (rc)
			return rc;
	}
	if (!o->nats_url[0])
		return bad("--nats URL is required (e.g. --nats nats://127.0.0.1:4222)");
	if (o->nroutes == 0)
		return bad("nothing to carry: give at least one --export QUEUE=SUBJECT or "
		           "--import SUBJECT=QUEUE");
	if (o->creds[0] && (o->user[0] || o->password[0]))
		return bad("--creds and --user/--password: give one way to log in");
	if (!o->user[0] != !o->password[0])
		return bad("--user and --password go together");
	return 0;
}
