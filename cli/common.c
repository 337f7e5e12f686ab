/* common.c - shared by all commands: errors, exit codes, option values, opening, signals. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "libmq_admin.h"
#include "mqctl.h"

volatile sig_atomic_t stop_signal;

int fail(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("mqctl: ", stderr);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	return code;
}

int usage_fail(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "mqctl%s%s: ", cmd ? " " : "", cmd ? cmd : "");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, " (see 'mqctl%s%s --help')\n", cmd ? " " : "", cmd ? cmd : "");
	va_end(ap);
	return MQCTL_USAGE;
}

int opt_fail(const char *cmd, int c, char **argv)
{
	/* A missing value is always for the last word getopt looked at. An
	 * unknown short option may sit inside a cluster (-xq), where optind
	 * has not moved on: name it by its letter (optopt), and an unknown
	 * long option (optopt 0) by its word. */
	if (c == ':')
		return usage_fail(cmd, "option '%s' needs a value", argv[optind - 1]);
	if (optopt)
		return usage_fail(cmd, "unknown option '-%c'", optopt);
	return usage_fail(cmd, "unknown option '%s'", argv[optind - 1]);
}

const char *queue_default(void)
{
	const char *env = getenv("MQ_QUEUE");
	return env && *env ? env : MQ_DEFAULT_NAME;
}

/* name_valid: "/" and 1..250 characters, no other "/" (libmq's rule). */
static int name_valid(const char *name)
{
	size_t n = name ? strlen(name) : 0;
	return n >= 2 && n <= MQ_NAME_MAX && name[0] == '/' && !strchr(name + 1, '/');
}

int queue_name_check(const char *cmd, const char *name, const char *from)
{
	if (name_valid(name))
		return 0;
	return usage_fail(cmd,
	                  "bad queue name '%s' from %s (want \"/\" and 1..250 characters, no other "
	                  "\"/\", e.g. /messagequeue)",
	                  name, from);
}

int parse_ll(const char *s, long long min, long long max, long long *out)
{
	if (!s || !*s || *s == '+' || *s == ' ')
		return -1;
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int exit_for_errno(int err)
{
	switch (err) {
	case ENOENT:
		return MQCTL_MISSING;
	case EAGAIN:
	case ETIMEDOUT:
		return MQCTL_EMPTY;
	case EMSGSIZE:
		return MQCTL_TOOBIG;
	case EPROTO:
		return MQCTL_DAMAGED;
	case EINVAL:
		return MQCTL_USAGE;
	default:
		return MQCTL_RUNTIME;
	}
}

int queue_open(const char *name, int observe, mq_t **q)
{
	*q = observe ? mq_observe(name) : mq_attach(name);
	if (*q)
		return MQCTL_OK;
	int err = errno;
	switch (err) {
	case ENOENT:
		return fail(MQCTL_MISSING,
		            "queue %s not found — is mqbroker running? (mqbroker -n %s creates it)",
		            name, name);
	case EPROTO:
		return fail(MQCTL_DAMAGED, "%s — run 'mqctl check -q %s' for details",
		            mq_errdetail(), name);
	default:
		return fail(exit_for_errno(err), "%s", mq_errdetail());
	}
}

int queue_unlinked(mq_t *q)
{
	struct stat st;
	return fstat(mq_fd(q), &st) == 0 && st.st_nlink == 0;
}

/* The handle whose blocked calls a stop signal cuts short. */
static mq_t *volatile stop_queue;
/* A pipe the handler writes a byte to, for loops that wait in poll(2). */
static int stop_pipe[2] = {-1, -1};

static void on_stop(int sig)
{
	int err = errno;
	stop_signal = sig;
	if (stop_queue)
		mq_interrupt(stop_queue); /* async-signal-safe */
	if (stop_pipe[1] >= 0)
		(void)!write(stop_pipe[1], "", 1); /* async-signal-safe; full: it is readable */
	errno = err;
}

int stop_fd(void)
{
	return stop_pipe[0];
}

int queue_close(mq_t *q)
{
	/* First out of the handler's reach: a stop signal landing in or after
	 * mq_detach must not interrupt a freed handle. */
	if (stop_queue == q)
		stop_queue = NULL;
	return mq_detach(q);
}

void stop_signals_catch(mq_t *q)
{
	/* No SA_RESTART, and mq_interrupt in the handler: a call blocked on Q
	 * returns EINTR whether the signal lands while it sleeps, spins or is
	 * about to sleep, so the one signal always stops us cleanly. */
	stop_queue = q;
	if (stop_pipe[0] < 0 && pipe2(stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
		stop_pipe[0] = stop_pipe[1] = -1; /* then only the flag and mq_interrupt */
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
}

double now_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void seconds_text(double s, char *buf, size_t n)
{
	if (s < 0)
		s = 0;
	if (s < 0.001)
		snprintf(buf, n, "%.0f us", s * 1e6);
	else if (s < 1)
		snprintf(buf, n, "%.1f ms", s * 1e3);
	else if (s < 100)
		snprintf(buf, n, "%.2f s", s);
	else
		snprintf(buf, n, "%.0f s", s);
}

void name_printable(const char *name, char *buf, size_t n)
{
	size_t o = 0;
	for (const unsigned char *p = (const unsigned char *)name; *p && o + 5 < n; p++) {
		if (*p <= ' ' || *p == 0x7f || *p == '\\')
			o += (size_t)snprintf(buf + o, n - o, "\\x%02x", *p);
		else
			buf[o++] = (char)*p;
	}
	if (n)
		buf[o < n ? o : n - 1] = '\0';
}

int queue_list(struct mq_listed **out)
{
	/* Files come and go while we look: ask again until all fitted. */
	*out = NULL;
	size_t cap = 64;
	for (;;) {
		struct mq_listed *l = malloc(cap * sizeof(*l));
		if (!l) {
			errno = ENOMEM;
			return -1;
		}
		int found = mq_list(l, cap);
		if (found < 0) {
			int err = errno;
			free(l);
			errno = err;
			return -1;
		}
		if ((size_t)found <= cap) {
			if (found == 0)
				free(l);
			else
				*out = l;
			return found;
		}
		free(l);
		cap = (size_t)found + 16;
	}
}
