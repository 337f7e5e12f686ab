/* cmd_recv.c - mqctl recv: take one, N or a stream of messages; print raw, line, hex or JSON. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mqctl.h"

enum format { FORMAT_RAW, FORMAT_LINE, FORMAT_HEX, FORMAT_JSON };

void recv_usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqctl recv [-q NAME] [-n COUNT] [--timeout MS] [--follow] [--format FMT]\n"
	        "                  [--no-lease | --nack]\n"
	        "Take messages from a queue (oldest first) and print them on stdout. Each\n"
	        "message is taken with a lease and acknowledged only once it is written and\n"
	        "flushed: a message whose output fails (a closed pipe) stays in the queue and\n"
	        "is delivered again, and so is one held when mqctl is killed.\n"
	        "\n"
	        "  -q, --queue NAME    queue (default $MQ_QUEUE, else %s)\n"
	        "  -n, --count COUNT   how many messages to take (default 1)\n"
	        "  -t, --timeout MS    how long to wait for each message: -1 waits as long as\n"
	        "                      it takes (default), 0 never waits\n"
	        "  -F, --follow        keep taking messages until SIGINT or SIGTERM (exit 0);\n"
	        "                      ignores -n; with --timeout, stop (exit 4) once no\n"
	        "                      message came for MS\n"
	        "  -o, --format FMT    how to print each message:\n"
	        "                        raw   the bytes exactly and nothing else: one\n"
	        "                              message only (refused with -n above 1 or\n"
	        "                              --follow: the messages would run together)\n"
	        "                        line  the bytes and a newline (newlines inside are\n"
	        "                              printed as they are: hex and json keep any\n"
	        "                              message on one line)\n"
	        "                        hex   lowercase hex and a newline\n"
	        "                        json  one object per line: {\"len\":N,\"text\":\"...\"}\n"
	        "                              when the message is UTF-8 without control\n"
	        "                              characters (\" and \\ escaped), else\n"
	        "                              {\"len\":N,\"data\":\"BASE64\"}\n"
	        "                      default: line when stdout is a terminal, raw when not\n"
	        "                      and one message is taken (-n 1 without --follow),\n"
	        "                      else line; json adds \"deliveries\":N to a message\n"
	        "                      delivered again\n"
	        "      --no-lease      take each message for good before printing it (plain\n"
	        "                      mq_recv): one whose output fails is lost\n"
	        "      --nack          print the first COUNT messages and give them all back\n"
	        "                      (a look at the queue that changes nothing but the\n"
	        "                      messages' delivery counts); not with --follow\n"
	        "  -h, --help          this help\n"
	        "\n"
	        "With -n COUNT and too few messages, the ones received are printed, then the\n"
	        "exit status is 4.\n"
	        "\n"
	        "Examples:\n"
	        "  mqctl recv                       wait for one message, print it\n"
	        "  mqctl recv -n 10 --timeout 0     up to 10 messages already queued\n"
	        "  mqctl recv --format raw > msg.bin   one message, byte for byte\n"
	        "  mqctl recv --follow --format json   a stream, one JSON object per line\n"
	        "\n" MQCTL_EXIT_HELP,
	        MQ_DEFAULT_NAME);
}

/* print_message: the N bytes at P on stdout in FORMAT (JSON says DELIVERIES
 * when above 1); 0, or -1 on a write error. */
static int print_message(enum format format, const unsigned char *p, size_t n, uint32_t deliveries)
{
	char extra[32] = "";
	if (deliveries > 1)
		snprintf(extra, sizeof(extra), ",\"deliveries\":%u", deliveries);
	int rc = 0;
	switch (format) {
	case FORMAT_RAW:
		rc = fwrite(p, 1, n, stdout) == n ? 0 : -1;
		break;
	case FORMAT_LINE:
		rc = fwrite(p, 1, n, stdout) == n && putchar('\n') != EOF ? 0 : -1;
		break;
	case FORMAT_HEX:
		rc = hex_write(stdout, p, n) == 0 && putchar('\n') != EOF ? 0 : -1;
		break;
	case FORMAT_JSON:
		if (json_text_ok(p, n))
			rc = printf("{\"len\":%zu,\"text\":\"", n) < 0 ||
			                     json_text_write(stdout, p, n) ||
			                     printf("\"%s}\n", extra) < 0
			             ? -1
			             : 0;
		else
			rc = printf("{\"len\":%zu,\"data\":\"", n) < 0 ||
			                     base64_write(stdout, p, n) ||
			                     printf("\"%s}\n", extra) < 0
			             ? -1
			             : 0;
		break;
	}
	/* Flush each message: whoever reads the pipe gets it now, and a write
	 * error is seen at the message it concerns. */
	if (fflush(stdout) != 0)
		rc = -1;
	return rc;
}

static int parse_format(const char *s, enum format *out)
{
	static const char *const names[] = {"raw", "line", "hex", "json"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(s, names[i])) {
			*out = (enum format)i;
			return 0;
		}
	return -1;
}

int cmd_recv(int argc, char **argv)
{
	static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
	                                         {"count", required_argument, NULL, 'n'},
	                                         {"timeout", required_argument, NULL, 't'},
	                                         {"follow", no_argument, NULL, 'F'},
	                                         {"format", required_argument, NULL, 'o'},
	                                         {"no-lease", no_argument, NULL, 'L'},
	                                         {"nack", no_argument, NULL, 'K'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *name = queue_default();
	const char *name_from = getenv("MQ_QUEUE") && *getenv("MQ_QUEUE") ? "$MQ_QUEUE" : "-q";
	long long count = 1, v;
	int timeout = -1, follow = 0, lease = 1, nack = 0, format_given = 0, c;
	enum format format = FORMAT_LINE;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":q:n:t:Fo:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			name = optarg;
			name_from = "-q";
			break;
		case 'n':
			if (parse_ll(optarg, 1, LLONG_MAX, &count))
				return usage_fail("recv", "bad -n '%s' (want a count of 1 or more)",
				                  optarg);
			break;
		case 't':
			if (parse_ll(optarg, -1, INT_MAX, &v))
				return usage_fail("recv",
				                  "bad --timeout '%s' (want -1, 0 or milliseconds)",
				                  optarg);
			timeout = (int)v;
			break;
		case 'F':
			follow = 1;
			break;
		case 'o':
			if (parse_format(optarg, &format))
				return usage_fail("recv",
				                  "bad --format '%s' (want raw, line, hex or json)",
				                  optarg);
			format_given = 1;
			break;
		case 'L':
			lease = 0;
			break;
		case 'K':
			nack = 1;
			break;
		case 'h':
			recv_usage(stdout);
			return MQCTL_OK;
		default:
			return opt_fail("recv", c, argv);
		}
	}
	if (optind < argc)
		return usage_fail("recv", "unexpected argument '%s'", argv[optind]);
	if (nack && !lease)
		return usage_fail("recv", "--nack gives leased messages back: not with --no-lease");
	if (nack && follow)
		return usage_fail("recv", "--nack holds what it printed until the end: not with "
		                          "--follow (use -n COUNT)");
	/* Raw output has no boundaries: it is for one message (`> msg.bin`).
	 * Refused here, before attaching, so that no message is taken. */
	int many = follow || count > 1;
	if (!format_given)
		format = many || isatty(STDOUT_FILENO) ? FORMAT_LINE : FORMAT_RAW;
	else if (format == FORMAT_RAW && many) {
		char what[48] = "--follow";
		if (!follow)
			snprintf(what, sizeof(what), "-n %lld", count);
		return usage_fail("recv",
		                  "--format raw would run the messages together: not with %s "
		                  "(use %s--format line, hex or json)",
		                  what, follow ? "" : "-n 1, or ");
	}
	if (queue_name_check("recv", name, name_from))
		return MQCTL_USAGE;

	mq_t *q;
	int rc = queue_open(name, 0, &q);
	if (rc)
		return rc;
	struct mq_stats st;
	mq_stats(q, &st);
	/* A buffer of the queue's maximum size: mq_recv never says EMSGSIZE. */
	size_t cap = (size_t)st.max_msg_size;
	unsigned char *buf = malloc(cap ? cap : 1);
	if (!buf) {
		queue_close(q);
		return fail(MQCTL_RUNTIME, "out of memory for a %zu-byte message buffer", cap);
	}
	stop_signals_catch(q);

	/* --nack: the leases held until the end (nacked at once, the first
	 * message would come back next). */
	mq_lease_t *held = NULL;
	long long nheld = 0;
	if (nack &&
	    !(held = calloc(
	              (size_t)(count < (long long)st.capacity ? count : (long long)st.capacity),
	              sizeof(*held)))) {
		free(buf);
		queue_close(q);
		return fail(MQCTL_RUNTIME, "out of memory");
	}
	/* --follow waits in one poll(2) for the queue (its mq_pollfd) and for a
	 * stop signal (stop_fd), and takes messages with timeout 0. */
	int qfd = follow ? mq_pollfd(q, MQ_POLLIN) : -1;
	if (follow && qfd < 0) {
		free(held);
		free(buf);
		int err = errno;
		queue_close(q);
		return fail(exit_for_errno(err), "%s", mq_errdetail());
	}
	double last = now_mono(); /* --follow --timeout: since the last message */
	long long got = 0;
	while ((follow || got < count) && !stop_signal) {
		mq_lease_t l;
		int t = follow ? 0 : timeout;
		ssize_t n = lease ? mq_recv_lease(q, buf, cap, t, &l) : mq_recv(q, buf, cap, t);
		if (n < 0 && follow && errno == EAGAIN) {
			/* Drained (which re-armed qfd): wait for the next message,
			 * a stop signal, or the end of --timeout. */
			int left = timeout < 0 ? -1 : timeout - (int)((now_mono() - last) * 1000);
			struct pollfd pf[2] = {{.fd = qfd, .events = POLLIN},
			                       {.fd = stop_fd(), .events = POLLIN}};
			int r = timeout >= 0 && left <= 0 ? 0 : poll(pf, 2, left);
			if (r > 0 || (r < 0 && errno == EINTR))
				continue; /* the loop looks at stop_signal, then the queue */
			n = -1;
			errno = r == 0 ? ETIMEDOUT : errno;
		}
		if (n < 0) {
			int err = errno;
			if (err == EINTR)
				continue; /* the loop looks at stop_signal */
			char done[64] = "";
			if (follow)
				snprintf(done, sizeof(done), " (%lld received)", got);
			else if (count > 1)
				snprintf(done, sizeof(done), " (%lld of %lld received)", got,
				         count);
			if (err == EAGAIN)
				rc = fail(MQCTL_EMPTY, "queue %s is empty%s%s", name,
				          nheld == (long long)st.capacity
				                  ? " (all it holds is printed)"
				                  : "",
				          done);
			else if (err == ETIMEDOUT)
				rc = fail(MQCTL_EMPTY, "queue %s: no message within %d ms%s", name,
				          timeout, done);
			else
				rc = fail(exit_for_errno(err), "%s%s", mq_errdetail(), done);
			break;
		}
		got++;
		last = now_mono();
		if (print_message(format, buf, (size_t)n, lease ? l.deliveries : 1) != 0) {
			int err = errno;
			if (!lease) {
				rc = fail(MQCTL_RUNTIME,
				          "cannot write message %lld (%zd bytes) to stdout: %s; it "
				          "has "
				          "left queue %s and is lost",
				          got, n, strerror(err), name);
			} else {
				int back = mq_nack(q, &l);
				rc = fail(
				        MQCTL_RUNTIME,
				        "cannot write message %lld (%zd bytes) to stdout: %s; %s",
				        got, n, strerror(err),
				        back == 0
				                ? "it stays in the queue and is delivered again"
				                : "it goes back to the queue when mqctl detaches");
			}
			break;
		}
		/* Written and flushed: now it may go. */
		if (nack) {
			held[nheld++] = l;
			if (nheld == (long long)st.capacity && got < count) {
				rc = fail(MQCTL_EMPTY,
				          "queue %s holds at most %llu messages: %lld printed, all "
				          "given "
				          "back",
				          name, (unsigned long long)st.capacity, got);
				break;
			}
		} else if (lease) {
			while (mq_ack(q, &l) != 0) {
				if (errno != EINTR) {
					rc = fail(exit_for_errno(errno),
					          "message %lld was printed but "
					          "not acknowledged: %s",
					          got, mq_errdetail());
					break;
				}
			}
			if (rc != MQCTL_OK)
				break;
		}
	}
	for (long long i = 0; i < nheld; i++)
		while (mq_nack(q, &held[i]) != 0 && errno == EINTR) {
		}
	free(held);
	if (rc == MQCTL_OK && stop_signal && !follow && got < count)
		rc = fail(128 + stop_signal, "interrupted by %s: %lld of %lld messages received",
		          strsignal(stop_signal), got, count);
	free(buf);
	queue_close(q);
	return rc;
}
