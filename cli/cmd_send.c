/* cmd_send.c - mqctl send: arguments, lines of stdin or a file, or all of it, as messages. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mqctl.h"

void send_usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqctl send [-q NAME] [--timeout MS] [MESSAGE]...\n"
	        "       mqctl send [-q NAME] [--timeout MS] [--whole] [-f FILE | -]\n"
	        "Send messages to a queue. Each MESSAGE argument is one message. Without one\n"
	        "(or for the argument -), messages come from stdin: one per line, the line\n"
	        "without its \"\\n\" (an empty line is an empty message; a last line without\n"
	        "\"\\n\" counts). Lines go out as they are read, so a line too large stops the\n"
	        "run with the lines before it sent and nothing after it.\n"
	        "\n"
	        "  -q, --queue NAME   queue (default $MQ_QUEUE, else %s)\n"
	        "  -t, --timeout MS   how long to wait for space when the queue is full:\n"
	        "                     -1 waits as long as it takes (default), 0 never waits\n"
	        "  -w, --whole        all of stdin (or FILE) is one message, byte for byte\n"
	        "                     (binary-safe; empty input is an empty message)\n"
	        "  -f, --file FILE    read messages from FILE instead of stdin (- is stdin)\n"
	        "  -h, --help         this help\n"
	        "\n"
	        "A message may have 0 up to the queue's maximum size (mqctl stats shows it).\n"
	        "MESSAGE arguments are all checked before the first is sent: one too large\n"
	        "and nothing is sent. Start a message with -? Put -- before it.\n"
	        "\n"
	        "Examples:\n"
	        "  mqctl send hello world                   two messages\n"
	        "  printf 'a\\nb\\n' | mqctl send             two messages, \"a\" and \"b\"\n"
	        "  head -c 1000 /dev/urandom | mqctl send --whole   one binary message\n"
	        "\n" MQCTL_EXIT_HELP,
	        MQ_DEFAULT_NAME);
}

struct sender {
	mq_t *q;
	const char *name;
	size_t max;
	int timeout;
	int whole;
};

/* The advice for a queue that stays full. */
#define FULL_HINT " — is a consumer running?"

/*
 * refuse: report that item K of a run of UNITs ("line", "message") from
 * LABEL ("" or "FILE: ") was not sent because of PROBLEM, and that the K-1
 * before it were; returns CODE. One line: "lines 1-3 sent, line 4 too long
 * (...); nothing after it sent", and the advice for a full queue.
 */
static int refuse(int code, const char *label, const char *unit, unsigned long long k,
                  const char *problem)
{
	char done[96] = "";
	if (k == 2)
		snprintf(done, sizeof(done), "%s 1 sent, ", unit);
	else if (k > 2)
		snprintf(done, sizeof(done), "%ss 1-%llu sent, ", unit, k - 1);
	return fail(code, "%s%s%s %llu %s; %s%s", label, done, unit, k, problem,
	            k > 1 ? "nothing after it sent" : "nothing sent",
	            code == MQCTL_EMPTY ? FULL_HINT : "");
}

/* too_long: PROBLEM text for a message of LEN bytes. */
static void too_long(const struct sender *s, size_t len, char *buf, size_t n)
{
	snprintf(buf, n, "too long (%zu > %zu bytes, the maximum of queue %s)", len, s->max,
	         s->name);
}

/* send_one: send LEN bytes at P. Returns MQCTL_OK, or the exit code with
 * PROBLEM (N bytes) saying why it was not sent. */
static int send_one(const struct sender *s, const void *p, size_t len, char *problem, size_t n)
{
	if (mq_send(s->q, p, len, s->timeout) == 0)
		return MQCTL_OK;
	int err = errno;
	if (err == EINTR && stop_signal) {
		snprintf(problem, n, "not sent: interrupted by %s", strsignal(stop_signal));
		return 128 + stop_signal;
	}
	if (err == EAGAIN)
		snprintf(problem, n, "not sent: queue %s is full (--timeout 0)", s->name);
	else if (err == ETIMEDOUT)
		snprintf(problem, n, "not sent: queue %s still full after %d ms", s->name,
		         s->timeout);
	else if (err == EMSGSIZE)
		too_long(s, len, problem, n);
	else
		snprintf(problem, n, "not sent: %s", mq_errdetail());
	return exit_for_errno(err);
}

/* send_lines: one message per line of F (named LABEL in errors). */
static int send_lines(const struct sender *s, FILE *f, const char *label)
{
	char *line = NULL, problem[512];
	size_t cap = 0;
	unsigned long long k = 0;
	int rc = MQCTL_OK;
	ssize_t len;
	errno = 0;
	while (rc == MQCTL_OK && (len = getline(&line, &cap, f)) >= 0) {
		k++;
		if (len > 0 && line[len - 1] == '\n')
			len--;
		if ((size_t)len > s->max) {
			too_long(s, (size_t)len, problem, sizeof(problem));
			rc = refuse(MQCTL_TOOBIG, label, "line", k, problem);
		} else if ((rc = send_one(s, line, (size_t)len, problem, sizeof(problem))) != 0) {
			rc = refuse(rc, label, "line", k, problem);
		}
		errno = 0;
	}
	if (rc == MQCTL_OK && ferror(f)) {
		int err = errno;
		if (err == EINTR && stop_signal)
			rc = refuse(128 + stop_signal, label, "line", k + 1,
			            "not read: interrupted by a signal");
		else
			rc = fail(MQCTL_RUNTIME, "%scannot read line %llu: %s", label, k + 1,
			          strerror(err));
	}
	free(line);
	return rc;
}

/* send_whole: all of FD (named WHAT in errors) as one message. */
static int send_whole(const struct sender *s, int fd, const char *what)
{
	/* Read at most one byte more than fits, whatever the input's size. */
	size_t cap = s->max + 1, len = 0;
	unsigned char *buf = malloc(cap);
	if (!buf)
		return fail(MQCTL_RUNTIME, "out of memory for a %zu-byte message", s->max);
	int rc = MQCTL_OK;
	while (len < cap) {
		ssize_t r = read(fd, buf + len, cap - len);
		if (r == 0)
			break;
		if (r < 0 && errno == EINTR && !stop_signal)
			continue;
		if (r < 0) {
			rc = stop_signal ? fail(128 + stop_signal, "%s not sent: interrupted by %s",
			                        what, strsignal(stop_signal))
			                 : fail(MQCTL_RUNTIME, "cannot read %s: %s", what,
			                        strerror(errno));
			break;
		}
		len += (size_t)r;
	}
	char problem[512];
	struct stat st;
	if (rc == MQCTL_OK && len > s->max) {
		if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode))
			rc = fail(MQCTL_TOOBIG,
			          "%s too long (%lld > %zu bytes, the maximum of queue %s); "
			          "nothing sent",
			          what, (long long)st.st_size, s->max, s->name);
		else
			rc = fail(MQCTL_TOOBIG,
			          "%s too long (more than %zu bytes, the maximum of queue %s); "
			          "nothing sent",
			          what, s->max, s->name);
	} else if (rc == MQCTL_OK) {
		rc = send_one(s, buf, len, problem, sizeof(problem));
		if (rc != MQCTL_OK)
			fail(rc, "%s %s%s", what, problem, rc == MQCTL_EMPTY ? FULL_HINT : "");
	}
	free(buf);
	return rc;
}

/* send_stream: the messages of F (stdin if FILE is NULL or "-"). */
static int send_stream(const struct sender *s, const char *file)
{
	int is_stdin = !file || !strcmp(file, "-");
	FILE *f = is_stdin ? stdin : fopen(file, "rb");
	if (!f)
		return fail(MQCTL_RUNTIME, "cannot open %s: %s", file, strerror(errno));
	if (isatty(fileno(f)) && !s->whole)
		fprintf(stderr,
		        "mqctl: reading messages from the terminal, one per line; Ctrl-D ends\n");
	char label[PATH_MAX + 8] = "";
	if (!is_stdin)
		snprintf(label, sizeof(label), "%s: ", file);
	int rc = s->whole ? send_whole(s, fileno(f), is_stdin ? "stdin" : file)
	                  : send_lines(s, f, label);
	if (!is_stdin)
		fclose(f);
	return rc;
}

int cmd_send(int argc, char **argv)
{
	static const struct option longopts[] = {
	        {"queue", required_argument, NULL, 'q'}, {"timeout", required_argument, NULL, 't'},
	        {"whole", no_argument, NULL, 'w'},       {"file", required_argument, NULL, 'f'},
	        {"help", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0}};
	struct sender s = {.name = queue_default(), .timeout = -1};
	const char *name_from = getenv("MQ_QUEUE") && *getenv("MQ_QUEUE") ? "$MQ_QUEUE" : "-q";
	const char *file = NULL;
	long long v;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":q:t:wf:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			s.name = optarg;
			name_from = "-q";
			break;
		case 't':
			if (parse_ll(optarg, -1, INT_MAX, &v))
				return usage_fail("send",
				                  "bad --timeout '%s' (want -1, 0 or milliseconds)",
				                  optarg);
			s.timeout = (int)v;
			break;
		case 'w':
			s.whole = 1;
			break;
		case 'f':
			file = optarg;
			break;
		case 'h':
			send_usage(stdout);
			return MQCTL_OK;
		default:
			return opt_fail("send", c, argv);
		}
	}
	if (queue_name_check("send", s.name, name_from))
		return MQCTL_USAGE;
	int nargs = argc - optind, dashes = 0;
	for (int i = optind; i < argc; i++)
		dashes += !strcmp(argv[i], "-");
	if (file && nargs > 0)
		return usage_fail("send", "give MESSAGE arguments or -f FILE, not both");
	if (dashes > 1)
		return usage_fail("send", "stdin (-) can be read only once");
	if (s.whole && nargs > dashes)
		return usage_fail("send", "--whole reads stdin or -f FILE, not MESSAGE arguments");

	int rc = queue_open(s.name, 0, &s.q);
	if (rc)
		return rc;
	struct mq_stats st;
	mq_stats(s.q, &st);
	s.max = (size_t)st.max_msg_size;
	stop_signals_catch(s.q);

	if (nargs == 0) {
		rc = send_stream(&s, file);
	} else {
		/* All arguments are known now: refuse before sending any. */
		for (int i = optind; i < argc && rc == MQCTL_OK; i++) {
			size_t len = strlen(argv[i]);
			if (strcmp(argv[i], "-") && len > s.max)
				rc = fail(MQCTL_TOOBIG,
				          "message %d too long (%zu > %zu bytes, the maximum of "
				          "queue "
				          "%s); nothing sent",
				          i - optind + 1, len, s.max, s.name);
		}
		char problem[512];
		for (int i = optind; i < argc && rc == MQCTL_OK; i++) {
			if (!strcmp(argv[i], "-")) {
				rc = send_stream(&s, NULL);
				continue;
			}
			rc = send_one(&s, argv[i], strlen(argv[i]), problem, sizeof(problem));
			if (rc != MQCTL_OK)
				refuse(rc, "", "message", (unsigned long long)(i - optind + 1),
				       problem);
		}
	}
	queue_close(s.q);
	return rc;
}
