/* cmd_watch.c - mqctl watch: live top-like view on a terminal, plain lines when not one. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "status.h"
#include "mqctl.h"

#define INTERVAL_DEFAULT_MS 1000
#define INTERVAL_MIN_MS     100
#define INTERVAL_MAX_MS     3600000

void watch_usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqctl watch [-q NAME] [--interval MS] [--count N]\n"
	        "Watch a queue live: a depth bar, enqueue and dequeue rates, totals, the\n"
	        "broker and the attached clients, redrawn every interval (mqctl does not\n"
	        "attach as a client). On a terminal it takes the screen like top; press q\n"
	        "or Ctrl-C to quit (the terminal is restored, exit 0; SIGTERM too).\n"
	        "When stdout is not a terminal it prints a header, then one plain line per\n"
	        "interval until SIGINT or SIGTERM (exit 0):\n"
	        "  time depth/capacity enq/s deq/s producers consumers\n"
	        "  19:40:01 3/1024 12.0 11.0 1 1\n"
	        "\n"
	        "  -q, --queue NAME     queue (default $MQ_QUEUE, else %s)\n"
	        "  -i, --interval MS    time between redraws (default %d, at least %d);\n"
	        "                       rates are measured over it\n"
	        "  -c, --count N        stop after N redraws or lines\n"
	        "  -h, --help           this help\n"
	        "\n" MQCTL_EXIT_HELP,
	        MQ_DEFAULT_NAME, INTERVAL_DEFAULT_MS, INTERVAL_MIN_MS);
}

/* The terminal as we found it, to put back on every way out. */
struct term {
	int raw; /* stdin is a terminal we put in raw mode */
	struct termios saved;
};

static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

static void term_enter(struct term *t)
{
	/* Raw input (no echo, no line buffering, no signal keys): q and Ctrl-C
	 * arrive as bytes the moment they are typed, and a stray key does not
	 * scribble over the view. */
	if (isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0) {
		struct termios raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO | ISIG | IEXTEN);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		t->raw = tcsetattr(STDIN_FILENO, TCSANOW, &raw) == 0;
	}
	/* alternate screen, cursor hidden, cleared */
	fputs("\033[?1049h\033[?25l\033[H\033[2J", stdout);
	fflush(stdout);
}

static void term_leave(struct term *t)
{
	fputs("\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
}

/* clock_text: the wall-clock time now as HH:MM:SS. */
static void clock_text(char *buf, size_t n)
{
	time_t now = time(NULL);
	struct tm tm;
	if (!localtime_r(&now, &tm) || !strftime(buf, n, "%H:%M:%S", &tm))
		snprintf(buf, n, "??:??:??");
}

/* A frame is built line by line, each cut to the terminal's width. */
struct frame {
	FILE *f;
	int rows, cols, lines;
};

static void line(struct frame *fr, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void line(struct frame *fr, const char *fmt, ...)
{
	if (fr->lines >= fr->rows)
		return;
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((int)strlen(buf) > fr->cols)
		buf[fr->cols] = '\0';
	/* Erase the rest of each line; no newline after the last row (it
	 * would scroll the screen). */
	fprintf(fr->f, "%s%s\033[K", fr->lines ? "\r\n" : "", buf);
	fr->lines++;
}

/* draw: one frame of the view (RATES: whether ENQ/DEQ were measured yet). */
static void draw(mq_t *q, const char *name, const struct sample *cur, int rates, double enq,
                 double deq, long interval_ms)
{
	struct winsize ws;
	struct frame fr = {.rows = 24, .cols = 80};
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row > 0 && ws.ws_col > 0) {
		fr.rows = ws.ws_row;
		fr.cols = ws.ws_col < 511 ? ws.ws_col : 511;
	}
	char *text = NULL;
	size_t len = 0;
	fr.f = open_memstream(&text, &len);
	if (!fr.f)
		return;
	const struct mq_stats *s = &cur->st;
	static struct mq_client_info clients[MQ_CLIENTS_MAX];
	int n = mq_clients(q, clients, MQ_CLIENTS_MAX);
	n = n < 0 ? 0 : (n > MQ_CLIENTS_MAX ? MQ_CLIENTS_MAX : n);
	char now[16], broker[160], bar[64];
	clock_text(now, sizeof(now));
	broker_describe(q, s, broker, sizeof(broker));

	int width = fr.cols - 40;
	width = width < 10 ? 10 : (width > 60 ? 60 : width);
	int fill = s->capacity ? (int)((s->depth * (uint64_t)width + s->capacity - 1) / s->capacity)
	                       : 0;
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';

	fputs("\033[H", fr.f);
	line(&fr, "mqctl watch %s%s   every %.1f s   %s   (q: quit)", name,
	     queue_unlinked(q) ? " (removed from /dev/shm)" : "", (double)interval_ms / 1000, now);
	line(&fr, "%s", "");
	line(&fr, "depth    [%s] %" PRIu64 " / %" PRIu64 " (%.1f%%)", bar, s->depth, s->capacity,
	     s->capacity ? 100.0 * (double)s->depth / (double)s->capacity : 0);
	line(&fr, "         high water %" PRIu64 ", max message %" PRIu64 " bytes", s->high_water,
	     s->max_msg_size);
	if (rates)
		line(&fr, "rates    enqueue %10.1f/s   dequeue %10.1f/s", enq, deq);
	else
		line(&fr, "rates    (measuring)");
	line(&fr,
	     "totals   enqueued %" PRIu64 " (%" PRIu64 " bytes), dequeued %" PRIu64 " (%" PRIu64
	     " bytes)",
	     s->enqueued_total, s->bytes_enqueued_total, s->dequeued_total,
	     s->bytes_dequeued_total);
	line(&fr,
	     "waits    %" PRIu64 " blocked sends, %" PRIu64 " blocked receives, full %" PRIu64
	     ", empty %" PRIu64,
	     s->blocked_sends_total, s->blocked_recvs_total, s->full_total, s->empty_total);
	line(&fr, "repairs  %" PRIu64 " dead clients cleaned up, %" PRIu64 " lock repairs",
	     s->recoveries_total, s->lock_repairs_total);
	line(&fr, "broker   %s", broker);
	line(&fr, "clients  %u attached: %u producing, %u consuming", s->clients, s->producers,
	     s->consumers);
	line(&fr, "%s", "");
	if (n > 0)
		line(&fr, "  %8s  %-8s  %-5s  %12s  %12s", "PID", "ROLE", "ALIVE", "SENT",
		     "RECEIVED");
	int room = fr.rows - fr.lines;
	for (int i = 0; i < n && room > 0; i++, room--) {
		const struct mq_client_info *c = &clients[i];
		if (room == 1 && i + 1 < n) {
			line(&fr, "  ... %d more", n - i);
			break;
		}
		line(&fr, "  %8d  %-8s  %-5s  %12" PRIu64 "  %12" PRIu64, (int)c->pid,
		     render_role(c->role), c->alive ? "yes" : "no", c->sent_total,
		     c->received_total);
	}
	fputs("\033[J", fr.f); /* clear what the last frame left below */
	if (fclose(fr.f) == 0) {
		fwrite(text, 1, len, stdout);
		fflush(stdout);
	}
	free(text);
}

enum wake { WAKE_TIME, WAKE_QUIT, WAKE_RESIZE, WAKE_SIGNAL };

/* wait_until: sleep until CLOCK_MONOTONIC time DEADLINE, a quit key (when
 * KEYS), a resize or a stop signal. */
static enum wake wait_until(double deadline, int keys)
{
	for (;;) {
		if (stop_signal)
			return WAKE_SIGNAL;
		if (resized) {
			resized = 0;
			return WAKE_RESIZE;
		}
		double left = deadline - now_mono();
		if (left <= 0)
			return WAKE_TIME;
		struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
		int r = poll(&p, keys ? 1 : 0, (int)(left * 1000) + 1);
		if (r <= 0)
			continue; /* timeout, or EINTR: the loop looks at the flags */
		if (p.revents & (POLLHUP | POLLERR | POLLNVAL))
			return WAKE_QUIT; /* the terminal went away */
		char keybuf[64];
		ssize_t got = read(STDIN_FILENO, keybuf, sizeof(keybuf));
		for (ssize_t i = 0; i < got; i++)
			if (keybuf[i] == 'q' || keybuf[i] == 'Q' || keybuf[i] == 3 /* Ctrl-C */)
				return WAKE_QUIT;
	}
}

/* watch_terminal: the full-screen view until q, a signal or COUNT frames. */
static void watch_terminal(mq_t *q, const char *name, long interval_ms, long long count)
{
	struct term t = {0};
	struct sigaction sa = {.sa_handler = on_winch};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
	term_enter(&t);

	struct sample prev, cur;
	double enq = 0, deq = 0;
	int rates = 0;
	sample_take(q, &prev);
	draw(q, name, &prev, rates, enq, deq, interval_ms);
	for (long long frames = 1; count == 0 || frames < count;) {
		enum wake w = wait_until(prev.t + (double)interval_ms / 1000, t.raw);
		if (w == WAKE_QUIT || w == WAKE_SIGNAL)
			break;
		sample_take(q, &cur);
		if (w == WAKE_TIME) { /* a resize redraws, but the rates keep their interval */
			sample_rates(&prev, &cur, &enq, &deq);
			rates = 1;
			prev = cur;
			frames++;
		}
		draw(q, name, &cur, rates, enq, deq, interval_ms);
	}
	term_leave(&t);
}

/* watch_lines: one plain line per interval until a signal or COUNT lines. */
static int watch_lines(mq_t *q, long interval_ms, long long count)
{
	struct sample prev, cur;
	sample_take(q, &prev);
	printf("time depth/capacity enq/s deq/s producers consumers\n");
	for (long long lines = 0; count == 0 || lines < count; lines++) {
		if (fflush(stdout) != 0)
			return fail(MQCTL_RUNTIME, "cannot write to stdout: %s", strerror(errno));
		if (wait_until(prev.t + (double)interval_ms / 1000, 0) != WAKE_TIME)
			break;
		sample_take(q, &cur);
		double enq, deq;
		sample_rates(&prev, &cur, &enq, &deq);
		prev = cur;
		char now[16];
		clock_text(now, sizeof(now));
		printf("%s %" PRIu64 "/%" PRIu64 " %.1f %.1f %u %u\n", now, cur.st.depth,
		       cur.st.capacity, enq, deq, cur.st.producers, cur.st.consumers);
	}
	if (fflush(stdout) != 0)
		return fail(MQCTL_RUNTIME, "cannot write to stdout: %s", strerror(errno));
	return MQCTL_OK;
}

int cmd_watch(int argc, char **argv)
{
	static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
	                                         {"interval", required_argument, NULL, 'i'},
	                                         {"count", required_argument, NULL, 'c'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	const char *name = queue_default();
	const char *name_from = getenv("MQ_QUEUE") && *getenv("MQ_QUEUE") ? "$MQ_QUEUE" : "-q";
	long long interval_ms = INTERVAL_DEFAULT_MS, count = 0;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":q:i:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			name = optarg;
			name_from = "-q";
			break;
		case 'i':
			if (parse_ll(optarg, INTERVAL_MIN_MS, INTERVAL_MAX_MS, &interval_ms))
				return usage_fail("watch", "bad --interval '%s' (want %d..%d ms)",
				                  optarg, INTERVAL_MIN_MS, INTERVAL_MAX_MS);
			break;
		case 'c':
			if (parse_ll(optarg, 1, 1000000000, &count))
				return usage_fail("watch", "bad --count '%s' (want 1 or more)",
				                  optarg);
			break;
		case 'h':
			watch_usage(stdout);
			return MQCTL_OK;
		default:
			return opt_fail("watch", c, argv);
		}
	}
	if (optind < argc)
		return usage_fail("watch", "unexpected argument '%s'", argv[optind]);
	if (queue_name_check("watch", name, name_from))
		return MQCTL_USAGE;

	mq_t *q;
	int rc = queue_open(name, 1, &q);
	if (rc)
		return rc;
	/* Keep catching: a second signal must also restore the terminal, and
	 * every wait here looks at the flag at least once an interval. */
	stop_signals_catch(q);
	if (isatty(STDOUT_FILENO))
		watch_terminal(q, name, (long)interval_ms, count);
	else
		rc = watch_lines(q, (long)interval_ms, count);
	queue_close(q);
	return rc;
}
