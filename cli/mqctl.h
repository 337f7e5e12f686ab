/*
 * mqctl.h - the modules of mqctl, the command-line tool, and what they share.
 *
 *   main.c       the command table, --help, --version
 *   common.c     exit codes, one-line errors, option values, opening the
 *                queue, liveness of the broker, stop signals
 *   encode.c     hex, base64 and JSON text for `recv --format`
 *   cmd_send.c   send: arguments, lines of stdin or a file, or all of it
 *   cmd_recv.c   recv: one, N or a stream of messages in four formats
 *   cmd_stats.c  stats, and the sampling that watch shares
 *   cmd_watch.c  watch: the live view of one or more queues on a terminal,
 *                plain lines elsewhere
 *   cmd_check.c  check: the offline health check of a segment
 *   cmd_list.c   list: every libmq queue in /dev/shm and who serves it
 *
 * mqctl talks to the segment through libmq (no broker needed). send and recv
 * attach as clients; stats, watch, check and list open it as observers
 * (mq_observe, libmq_admin.h), so looking at a queue never shows up in its
 * client table.
 */
#ifndef MQCTL_H
#define MQCTL_H

#include <signal.h>
#include <stdint.h>
#include <stdio.h>

#include "libmq.h"
#include "libmq_admin.h"
#include "status.h"

#define MQCTL_VERSION LIBMQ_VERSION

/* Exit codes, documented in --help and mqctl(1). */
enum mqctl_exit {
	MQCTL_OK = 0,
	MQCTL_RUNTIME = 1, /* any other runtime error */
	MQCTL_USAGE = 2,   /* bad command, flag or value */
	MQCTL_MISSING = 3, /* the queue does not exist */
	MQCTL_EMPTY = 4,   /* timeout: queue empty (recv) or full (send) */
	MQCTL_TOOBIG = 5,  /* message larger than the queue's maximum */
	MQCTL_DAMAGED = 6, /* segment corrupt or of another layout version */
	MQCTL_STALE = 7,   /* valid segment, no live broker (check only) */
};

/* The exit status table every --help ends with. */
#define MQCTL_EXIT_HELP                                                                            \
	"Exit status: 0 ok; 1 other runtime error; 2 usage error; 3 queue missing;\n"              \
	"4 timeout or queue empty (recv) / full (send); 5 message too large;\n"                    \
	"6 damaged or incompatible segment; 7 stale segment (valid, no live broker;\n"             \
	"check only); 128+N stopped by signal N before finishing (130 for Ctrl-C).\n"

/* One subcommand: its entry point and its help. ARGV[0] is the command name. */
struct mqctl_cmd {
	const char *name;
	int (*run)(int argc, char **argv);
	void (*usage)(FILE *f);
	const char *summary;
};

/* cmd_send, cmd_recv, cmd_stats, cmd_watch, cmd_check, cmd_list: run the
 * command (ARGV[0] is its name, the options follow); every error is printed
 * as one line. Return the exit status (enum mqctl_exit, or 128 + a stop
 * signal). */
int cmd_send(int argc, char **argv);
int cmd_recv(int argc, char **argv);
int cmd_stats(int argc, char **argv);
int cmd_watch(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_list(int argc, char **argv);
/* send_usage ... list_usage: the command's --help, exit codes included, to F. */
void send_usage(FILE *f);
void recv_usage(FILE *f);
void stats_usage(FILE *f);
void watch_usage(FILE *f);
void check_usage(FILE *f);
void list_usage(FILE *f);

/* common.c */

/* fail: print "mqctl: MESSAGE" as one line on stderr; returns CODE. */
int fail(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* usage_fail: a usage error of command CMD (NULL: mqctl itself) as one line
 * pointing at its --help; returns MQCTL_USAGE. */
int usage_fail(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* opt_fail: the usage error for getopt's answer C (':' or '?') in CMD. */
int opt_fail(const char *cmd, int c, char **argv);

/* queue_default: the queue to use without -q: $MQ_QUEUE, else MQ_DEFAULT_NAME. */
const char *queue_default(void);

/* queue_name_check: 0 if NAME is a valid queue name, else MQCTL_USAGE with
 * the error printed (FROM says where the name came from, e.g. "-q"). */
int queue_name_check(const char *cmd, const char *name, const char *from);

/* parse_ll: S as a whole decimal number in [MIN, MAX] into *OUT; -1 if not. */
int parse_ll(const char *s, long long min, long long max, long long *out);

/* exit_for_errno: the exit code for a libmq errno. */
int exit_for_errno(int err);

/* queue_open: attach to NAME as a client, or as an observer if OBSERVE.
 * Returns MQCTL_OK with *Q set, or the exit code with the error printed. */
int queue_open(const char *name, int observe, mq_t **q);

/* stop_signal: SIGINT or SIGTERM once one arrived after stop_signals_catch(). */
extern volatile sig_atomic_t stop_signal;

/* stop_signals_catch: SIGINT and SIGTERM set stop_signal and, with
 * mq_interrupt(Q) (Q may be NULL), make a call blocked on Q return EINTR
 * instead of killing us, so we detach cleanly. SIGPIPE is ignored (write
 * errors are reported). */
void stop_signals_catch(mq_t *q);

/* stop_fd: a descriptor that becomes readable when a stop signal arrived
 * after stop_signals_catch() (a self-pipe), for poll(2) beside a queue's
 * mq_pollfd; -1 if it could not be made. */
int stop_fd(void);

/* queue_close: mq_detach(Q), taking it out of the stop signals' reach first. */
int queue_close(mq_t *q);

/* now_mono: CLOCK_MONOTONIC in seconds. */
double now_mono(void);

/* seconds_text: S seconds as short readable text into BUF ("850 us",
 * "12.3 ms", "1.52 s", "95 s"), ASCII only, so it lines up in columns. */
void seconds_text(double s, char *buf, size_t n);

/* name_printable: queue NAME for a terminal or a line of fields into BUF:
 * spaces, control characters and backslashes as \xHH (a file in /dev/shm
 * may be named anything), other bytes as they are. */
void name_printable(const char *name, char *buf, size_t n);

/* queue_list: the libmq queues in /dev/shm (mq_list, all of them, sorted by
 * name) into a malloc'd array *OUT (NULL when none); returns how many, or -1
 * with errno (/dev/shm cannot be read, out of memory). */
int queue_list(struct mq_listed **out);

/* encode.c: each writes to F and returns 0, or -1 on a write error. */

/* hex_write: N bytes at P as lowercase hex. */
int hex_write(FILE *f, const unsigned char *p, size_t n);

/* base64_write: N bytes at P as base64 (RFC 4648, padded, no line breaks). */
int base64_write(FILE *f, const unsigned char *p, size_t n);

/* json_text_ok: whether the N bytes at P are valid UTF-8 without control
 * characters (U+0000..U+001F, U+007F..U+009F), so they can be shown as JSON
 * text. */
int json_text_ok(const unsigned char *p, size_t n);

/* json_text_write: N bytes at P (json_text_ok) as a JSON string body
 * (without quotes): only '"' and '\' need escaping. */
int json_text_write(FILE *f, const unsigned char *p, size_t n);

/* cmd_stats.c: the sampling stats and watch share. */
struct sample {
	double t; /* CLOCK_MONOTONIC seconds */
	struct mq_stats st;
	int have_tiq;                /* tiq holds the queue's histogram */
	struct mq_time_in_queue tiq; /* time in queue since the queue was created */
};

/* sample_take: read Q's stats and time-in-queue histogram now into S. */
void sample_take(mq_t *q, struct sample *s);

/* What sample_tiq measured. */
enum tiq_span {
	TIQ_NONE = -1,    /* no histogram (the queue's clock cannot be read here) */
	TIQ_LIFETIME = 0, /* since the queue was created */
	TIQ_WINDOW = 1,   /* between the two samples */
};

/* sample_tiq: time-in-queue percentiles into *OUT: of the messages taken
 * between samples A and B if there were any (A may be NULL: none), else of
 * B's whole histogram, since the queue was created. *SPAN_S gets the
 * seconds it covers (the queue's age for the lifetime). */
enum tiq_span sample_tiq(const struct sample *a, const struct sample *b, struct tiq_summary *out,
                         double *span_s);

/* tiq_text: SUM's percentiles as "p50 1.02 s  p90 ...  max 1.1 s" into BUF. */
void tiq_text(const struct tiq_summary *sum, char *buf, size_t n);

/* sample_rates: enqueue and dequeue rates between samples A and B (0 if
 * they are not apart). */
void sample_rates(const struct sample *a, const struct sample *b, double *enq, double *deq);

/* broker_describe: the broker of Q in words into BUF ("pid 4242, alive,
 * heartbeat 0.4 s ago" / "none running (pid 4242 recorded)"); returns 1 if a
 * live broker holds the queue, 0 if not. */
int broker_describe(mq_t *q, const struct mq_stats *st, char *buf, size_t n);

/* queue_unlinked: whether Q's segment has been removed from /dev/shm
 * (mappings keep working; nobody new can attach). */
int queue_unlinked(mq_t *q);

#endif /* MQCTL_H */
