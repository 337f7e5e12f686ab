/* cmd_watch.c - mqctl watch: live top-like view of one or more queues on a terminal, plain lines
 * when not one. */
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
#include "libmq_admin.h"
#include "mqctl.h"

#define INTERVAL_DEFAULT_MS 1000
#define INTERVAL_MIN_MS     100
#define INTERVAL_MAX_MS     3600000
#define TIQ_ROLLING_S       60 /* the terminal's time-in-queue window */

void watch_usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqctl watch [-q NAME]... [--interval MS] [--count N]\n"
	        "Watch queues live: a depth bar, enqueue and dequeue rates, how long the\n"
	        "oldest waiting message has waited, time in queue (p50, p90, p99, max),\n"
	        "totals, the broker and the attached clients, redrawn every interval (mqctl\n"
	        "does not attach as a client). -q may be given several times. Without -q,\n"
	        "the queue named by $MQ_QUEUE; without that, every queue a live mqbroker\n"
	        "serves (the libmq queues in /dev/shm whose broker lock a live process\n"
	        "holds, as found at the start); if none is served, %s.\n"
	        "On a terminal it takes the screen like top, one block per queue, time in\n"
	        "queue over the last %d s; press q or Ctrl-C to quit (the terminal is\n"
	        "restored, exit 0; SIGTERM too). When stdout is not a terminal it prints a\n"
	        "header, then every interval one plain line per queue, until SIGINT or\n"
	        "SIGTERM (exit 0); time in queue there covers the messages measured during the\n"
	        "interval (\"-\" when none was), in seconds, as is the oldest message's age:\n"
	        "  time queue depth/capacity enq/s deq/s producers consumers oldest_s p50_s p90_s "
	        "p99_s max_s\n"
	        "  19:40:01 /orders 3/1024 12.0 11.0 1 1 0.052 0.010240 0.020480 0.030720 "
	        "0.031000\n"
	        "Spaces, control characters and backslashes in a name are shown as \\xHH.\n"
	        "\n"
	        "  -q, --queue NAME     a queue to watch (repeatable)\n"
	        "  -i, --interval MS    time between redraws (default %d, at least %d);\n"
	        "                       rates are measured over it\n"
	        "  -c, --count N        stop after N redraws (N lines per queue)\n"
	        "  -h, --help           this help\n"
	        "\n" MQCTL_EXIT_HELP,
	        MQ_DEFAULT_NAME, TIQ_ROLLING_S, INTERVAL_DEFAULT_MS, INTERVAL_MIN_MS);
}

/* One watched queue: its handle, its readings and what they measure. */
struct watched {
	char name[MQ_NAME_MAX + 1];
	mq_t *q;
	struct sample prev, cur; /* the reading of the last interval's end, and the newest */
	int measured;            /* enq, deq and tick hold a measurement */
	double enq, deq;         /* rates over the last interval */
	struct tiq_summary tick; /* time in queue of what was taken in the last interval */
	struct tiq_history hist; /* readings at least a second apart: the rolling window */
	double hist_t;           /* when the newest of them was taken */
};

/* watched_start: W's first reading. */
static void watched_start(struct watched *w)
{
	sample_take(w->q, &w->prev);
	w->cur = w->prev;
	if (w->prev.have_tiq) {
		tiq_history_add(&w->hist, w->prev.t, &w->prev.tiq);
		w->hist_t = w->prev.t;
	}
}

/* watched_read: a new reading of W (a redraw on resize: nothing measured). */
static void watched_read(struct watched *w)
{
	sample_take(w->q, &w->cur);
}

/* watched_tick: the end of an interval: a new reading of W, measured
 * against the one at the interval's start. */
static void watched_tick(struct watched *w)
{
	sample_take(w->q, &w->cur);
	sample_rates(&w->prev, &w->cur, &w->enq, &w->deq);
	memset(&w->tick, 0, sizeof(w->tick));
	if (w->prev.have_tiq && w->cur.have_tiq) {
		struct mq_time_in_queue d;
		tiq_diff(&w->cur.tiq, &w->prev.tiq, &d);
		tiq_summarize(&d, &w->tick);
	}
	/* At most a reading a second into the history, so that its slots
	 * cover the rolling window whatever the interval. */
	if (w->cur.have_tiq && w->cur.t - w->hist_t >= 0.95) {
		tiq_history_add(&w->hist, w->cur.t, &w->cur.tiq);
		w->hist_t = w->cur.t;
	}
	w->prev = w->cur;
	w->measured = 1;
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

/* The lines of a block without its client rows: the queue's name (when
 * several are watched), depth, high water, rates, oldest, in queue, totals,
 * waits, repairs, broker, clients, and a blank line. */
#define BLOCK_LINES 12

/* draw_block: W's block into FR; NAMED: begin with the queue's name;
 * ROWS_END: the row the client rows must stop before. */
static void draw_block(struct frame *fr, const struct watched *w, int named, int rows_end)
{
	const struct mq_stats *s = &w->cur.st;
	static struct mq_client_info clients[MQ_CLIENTS_MAX];
	int n = mq_clients(w->q, clients, MQ_CLIENTS_MAX);
	n = n < 0 ? 0 : (n > MQ_CLIENTS_MAX ? MQ_CLIENTS_MAX : n);
	char broker[160], bar[64], name[4 * MQ_NAME_MAX + 8];
	broker_describe(w->q, s, broker, sizeof(broker));
	name_printable(w->name, name, sizeof(name));

	int width = fr->cols - 40;
	width = width < 10 ? 10 : (width > 60 ? 60 : width);
	int fill = s->capacity ? (int)((s->depth * (uint64_t)width + s->capacity - 1) / s->capacity)
	                       : 0;
	for (int i = 0; i < width; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[width] = '\0';

	if (named)
		line(fr, "queue    %s%s", name,
		     queue_unlinked(w->q) ? " (removed from /dev/shm)" : "");
	line(fr, "depth    [%s] %" PRIu64 " / %" PRIu64 " (%.1f%%)", bar, s->depth, s->capacity,
	     s->capacity ? 100.0 * (double)s->depth / (double)s->capacity : 0);
	line(fr, "         high water %" PRIu64 ", max message %" PRIu64 " bytes", s->high_water,
	     s->max_msg_size);
	if (w->measured)
		line(fr, "rates    enqueue %10.1f/s   dequeue %10.1f/s", w->enq, w->deq);
	else
		line(fr, "rates    (measuring)");
	char age[24], tiq[128];
	seconds_text((double)s->oldest_age_ns / 1e9, age, sizeof(age));
	if (s->depth == 0)
		line(fr, "oldest   no message waiting");
	else if (s->oldest_age_ns == 0)
		line(fr, "oldest   age unknown (the oldest message carries no send time)");
	else
		line(fr, "oldest   %s waiting", age);
	struct mq_time_in_queue h;
	struct tiq_summary sum;
	double span = tiq_history_window(&w->hist, TIQ_ROLLING_S, &h);
	tiq_summarize(&h, &sum);
	tiq_text(&sum, tiq, sizeof(tiq));
	if (!w->cur.have_tiq)
		line(fr, "in queue not measured (this machine cannot read the queue's clock)");
	else if (span <= 0)
		line(fr, "in queue (measuring)");
	else if (sum.count == 0)
		line(fr, "in queue no message measured in the last %.0f s", span);
	else
		line(fr, "in queue %s   (%" PRIu64 " measured in the last %.0f s)", tiq, sum.count,
		     span);
	line(fr,
	     "totals   enqueued %" PRIu64 " (%" PRIu64 " bytes), dequeued %" PRIu64 " (%" PRIu64
	     " bytes)",
	     s->enqueued_total, s->bytes_enqueued_total, s->dequeued_total,
	     s->bytes_dequeued_total);
	line(fr,
	     "waits    %" PRIu64 " blocked sends, %" PRIu64 " blocked receives, full %" PRIu64
	     ", empty %" PRIu64,
	     s->blocked_sends_total, s->blocked_recvs_total, s->full_total, s->empty_total);
	line(fr, "repairs  %" PRIu64 " dead clients cleaned up, %" PRIu64 " lock repairs",
	     s->recoveries_total, s->lock_repairs_total);
	line(fr, "broker   %s", broker);
	line(fr, "clients  %u attached: %u producing, %u consuming", s->clients, s->producers,
	     s->consumers);
	int room = rows_end - fr->lines - 1; /* the blank line after the block stays */
	if (n > 0 && room >= 2) {
		line(fr, "  %8s  %-8s  %-5s  %12s  %12s", "PID", "ROLE", "ALIVE", "SENT",
		     "RECEIVED");
		room--;
		for (int i = 0; i < n && room > 0; i++, room--) {
			const struct mq_client_info *c = &clients[i];
			if (room == 1 && i + 1 < n) {
				line(fr, "  ... %d more", n - i);
				break;
			}
			line(fr, "  %8d  %-8s  %-5s  %12" PRIu64 "  %12" PRIu64, (int)c->pid,
			     render_role(c->role), c->alive ? "yes" : "no", c->sent_total,
			     c->received_total);
		}
	}
	line(fr, "%s", "");
}

/* draw: one frame of the view: a title, then a block per queue of WS[N]. */
static void draw(const struct watched *ws, int n, long interval_ms)
{
	struct winsize win;
	struct frame fr = {.rows = 24, .cols = 80};
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &win) == 0 && win.ws_row > 0 && win.ws_col > 0) {
		fr.rows = win.ws_row;
		fr.cols = win.ws_col < 511 ? win.ws_col : 511;
	}
	char *text = NULL;
	size_t len = 0;
	fr.f = open_memstream(&text, &len);
	if (!fr.f)
		return;
	char now[16];
	clock_text(now, sizeof(now));

	fputs("\033[H", fr.f);
	if (n == 1) {
		char name[4 * MQ_NAME_MAX + 8];
		name_printable(ws[0].name, name, sizeof(name));
		line(&fr, "mqctl watch %s%s   every %.1f s   %s   (q: quit)", name,
		     queue_unlinked(ws[0].q) ? " (removed from /dev/shm)" : "",
		     (double)interval_ms / 1000, now);
	} else {
		line(&fr, "mqctl watch   %d queues   every %.1f s   %s   (q: quit)", n,
		     (double)interval_ms / 1000, now);
	}
	line(&fr, "%s", "");
	for (int i = 0; i < n; i++) {
		int later = n - 1 - i; /* blocks still to come: their room is kept */
		if (i > 0 && fr.rows - fr.lines < BLOCK_LINES + (later ? 1 : 0)) {
			line(&fr, "... %d more queue%s (a taller terminal shows them)", n - i,
			     n - i == 1 ? "" : "s");
			break;
		}
		draw_block(&fr, &ws[i], n > 1, fr.rows - later * BLOCK_LINES);
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
static void watch_terminal(struct watched *ws, int n, long interval_ms, long long count)
{
	struct term t = {0};
	struct sigaction sa = {.sa_handler = on_winch};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL);
	term_enter(&t);

	for (int i = 0; i < n; i++)
		watched_start(&ws[i]);
	double start = now_mono();
	draw(ws, n, interval_ms);
	for (long long frames = 1; count == 0 || frames < count;) {
		enum wake w = wait_until(start + (double)interval_ms / 1000, t.raw);
		if (w == WAKE_QUIT || w == WAKE_SIGNAL)
			break;
		/* A resize redraws, but the rates keep their interval. */
		if (w == WAKE_TIME) {
			start = now_mono();
			frames++;
		}
		for (int i = 0; i < n; i++) {
			if (w == WAKE_TIME)
				watched_tick(&ws[i]);
			else
				watched_read(&ws[i]);
		}
		draw(ws, n, interval_ms);
	}
	term_leave(&t);
}

/* seconds_field: S seconds as a plain-line field ("-" when not HAVE). */
static void seconds_field(double s, int have, char *buf, size_t n)
{
	if (have)
		snprintf(buf, n, "%.6f", s);
	else
		snprintf(buf, n, "-");
}

/* watch_lines: every interval one plain line per queue, until a signal or COUNT intervals. */
static int watch_lines(struct watched *ws, int n, long interval_ms, long long count)
{
	for (int i = 0; i < n; i++)
		watched_start(&ws[i]);
	double start = now_mono();
	printf("time queue depth/capacity enq/s deq/s producers consumers oldest_s p50_s p90_s "
	       "p99_s max_s\n");
	for (long long lines = 0; count == 0 || lines < count; lines++) {
		if (fflush(stdout) != 0)
			return fail(MQCTL_RUNTIME, "cannot write to stdout: %s", strerror(errno));
		if (wait_until(start + (double)interval_ms / 1000, 0) != WAKE_TIME)
			break;
		start = now_mono();
		char now[16];
		clock_text(now, sizeof(now));
		for (int i = 0; i < n; i++) {
			struct watched *w = &ws[i];
			watched_tick(w);
			const struct mq_stats *s = &w->cur.st;
			const struct tiq_summary *t = &w->tick;
			char name[4 * MQ_NAME_MAX + 8], p50[32], p90[32], p99[32], max[32];
			name_printable(w->name, name, sizeof(name));
			seconds_field(t->p50, t->count > 0, p50, sizeof(p50));
			seconds_field(t->p90, t->count > 0, p90, sizeof(p90));
			seconds_field(t->p99, t->count > 0, p99, sizeof(p99));
			seconds_field(t->max, t->count > 0, max, sizeof(max));
			printf("%s %s %" PRIu64 "/%" PRIu64 " %.1f %.1f %u %u %.3f %s %s %s %s\n",
			       now, name, s->depth, s->capacity, w->enq, w->deq, s->producers,
			       s->consumers, (double)s->oldest_age_ns / 1e9, p50, p90, p99, max);
		}
	}
	if (fflush(stdout) != 0)
		return fail(MQCTL_RUNTIME, "cannot write to stdout: %s", strerror(errno));
	return MQCTL_OK;
}

/* watch_served: open every queue a live mqbroker serves (the libmq queues of
 * this layout in /dev/shm whose broker lock a live process holds) into WS
 * (room for all of them: from queue_list); returns how many. */
static int watch_served(const struct mq_listed *l, int nl, struct watched *ws)
{
	int k = 0;
	for (int i = 0; i < nl; i++) {
		if (l[i].version != MQ_LAYOUT_CURRENT)
			continue; /* not ours to open: mqctl list says what it is */
		mq_t *q = mq_observe(l[i].name);
		if (!q)
			continue; /* gone, damaged or not ours: mqctl list tells */
		if (mq_broker_alive(q) != 1) {
			mq_detach(q);
			continue;
		}
		snprintf(ws[k].name, sizeof(ws[k].name), "%s", l[i].name);
		ws[k++].q = q;
	}
	return k;
}

/* watch_close: detach the N queues of WS and free it. */
static void watch_close(struct watched *ws, int n)
{
	for (int i = 0; i < n; i++)
		if (ws[i].q)
			mq_detach(ws[i].q);
	free(ws);
}

int cmd_watch(int argc, char **argv)
{
	static const struct option longopts[] = {{"queue", required_argument, NULL, 'q'},
	                                         {"interval", required_argument, NULL, 'i'},
	                                         {"count", required_argument, NULL, 'c'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	/* The -q names, in order, each once (argc bounds how many). */
	const char **names = calloc((size_t)argc + 1, sizeof(*names));
	if (!names)
		return fail(MQCTL_RUNTIME, "out of memory");
	int nnames = 0;
	long long interval_ms = INTERVAL_DEFAULT_MS, count = 0;
	int c, rc = MQCTL_OK;
	opterr = 0;
	while (rc == MQCTL_OK && (c = getopt_long(argc, argv, ":q:i:c:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q': {
			int seen = 0;
			for (int i = 0; i < nnames; i++)
				seen |= !strcmp(names[i], optarg);
			if (!seen)
				names[nnames++] = optarg;
			break;
		}
		case 'i':
			if (parse_ll(optarg, INTERVAL_MIN_MS, INTERVAL_MAX_MS, &interval_ms))
				rc = usage_fail("watch", "bad --interval '%s' (want %d..%d ms)",
				                optarg, INTERVAL_MIN_MS, INTERVAL_MAX_MS);
			break;
		case 'c':
			if (parse_ll(optarg, 1, 1000000000, &count))
				rc = usage_fail("watch", "bad --count '%s' (want 1 or more)",
				                optarg);
			break;
		case 'h':
			watch_usage(stdout);
			free(names);
			return MQCTL_OK;
		default:
			rc = opt_fail("watch", c, argv);
			break;
		}
	}
	if (rc == MQCTL_OK && optind < argc)
		rc = usage_fail("watch", "unexpected argument '%s'", argv[optind]);
	for (int i = 0; rc == MQCTL_OK && i < nnames; i++)
		rc = queue_name_check("watch", names[i], "-q");
	const char *env = getenv("MQ_QUEUE");
	if (rc == MQCTL_OK && nnames == 0 && env && *env) {
		names[nnames++] = env;
		rc = queue_name_check("watch", env, "$MQ_QUEUE");
	}
	if (rc != MQCTL_OK) {
		free(names);
		return rc;
	}

	/* Without a name: every queue a live broker serves, else the default
	 * queue (whose absence is then the error). */
	struct watched *ws = NULL;
	int n = 0;
	if (nnames == 0) {
		struct mq_listed *l = NULL;
		int nl = queue_list(&l);
		if (nl > 0 && (ws = calloc((size_t)nl, sizeof(*ws))) != NULL)
			n = watch_served(l, nl, ws);
		free(l);
		if (n == 0)
			names[nnames++] = MQ_DEFAULT_NAME;
	}
	if (n == 0) {
		free(ws);
		ws = calloc((size_t)nnames, sizeof(*ws));
		if (!ws) {
			free(names);
			return fail(MQCTL_RUNTIME, "out of memory");
		}
		for (; n < nnames; n++) {
			rc = queue_open(names[n], 1, &ws[n].q);
			if (rc) {
				watch_close(ws, n);
				free(names);
				return rc;
			}
			snprintf(ws[n].name, sizeof(ws[n].name), "%s", names[n]);
		}
	}
	free(names);
	/* Keep catching: a second signal must also restore the terminal, and
	 * every wait here looks at the flag at least once an interval. (No
	 * call here blocks on a queue: nothing for mq_interrupt to cut short.) */
	stop_signals_catch(NULL);
	if (isatty(STDOUT_FILENO))
		watch_terminal(ws, n, (long)interval_ms, count);
	else
		rc = watch_lines(ws, n, (long)interval_ms, count);
	watch_close(ws, n);
	return rc;
}
