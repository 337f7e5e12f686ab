/* main.c - mqbroker: options, config file, signals and the once-a-second tick. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "broker.h"
#include "config.h"
#include "owner.h"

/* struct qspec: one queue asked for (--queue, or a "queue" line). */
struct qspec {
	char name[MQ_NAME_MAX + 1];
	size_t capacity, max_msg;
	int capacity_set, max_msg_set, mode_set, group_set;
	mode_t mode;
	char group[256];
	int from_config;
};
#define MAX_QUEUES 256

struct options {
	struct owner_opts own;
	struct qspec specs[MAX_QUEUES];
	int nspecs;
	char listen[128];
	char web_root[PATH_MAX];
	int verbose;
	/* which came from the command line (the config file does not override) */
	int set_name, set_listen, set_web_root, set_group, set_verbose, set_recreate, set_trust;
	char name_buf[MQ_NAME_MAX + 1];
	char group_buf[256];
};

static void usage(FILE *f)
{
	fprintf(f,
	        "Usage: mqbroker [OPTION]...\n"
	        "Create (or adopt) libmq message queues in POSIX shared memory, watch their\n"
	        "clients, and serve their statistics over HTTP. Runs in the foreground; stop\n"
	        "it with SIGTERM or Ctrl-C (the queues and their messages stay).\n"
	        "\n"
	        "  -n, --name NAME       the one queue to serve (default %s)\n"
	        "  -q, --queue NAME[:CAPACITY[:MAX_MSG]]  serve queue NAME (repeat for more;\n"
	        "                        instead of --name); CAPACITY and MAX_MSG default to\n"
	        "                        --capacity and --max-msg (or an existing queue's)\n"
	        "  -c, --capacity N      messages the queue holds (default %d; 1..%u)\n"
	        "  -m, --max-msg BYTES   largest message (default %d; 1..%u; K and M suffixes)\n"
	        "  -l, --listen ADDR:PORT  HTTP address (default 127.0.0.1:8080; [::1]:8080)\n"
	        "      --mode MODE       octal permissions of a new queue (default 0660)\n"
	        "  -g, --group GROUP     give the queue to GROUP (its members may use it)\n"
	        "      --recreate        replace an existing queue that is corrupt, of another\n"
	        "                        version, or of another geometry (its messages are lost)\n"
	        "      --trust-owner USER  also adopt queues owned by USER (e.g. root adopting\n"
	        "                        the service user's queue); others' are refused\n"
	        "      --web-root DIR    serve the dashboard from DIR instead of the copy built\n"
	        "                        into mqbroker (for working on web/)\n"
	        "      --config FILE     read options from FILE: one \"option = value\" per line\n"
	        "                        (long names without --, # comments); flags win;\n"
	        "                        \"queue = NAME [capacity N] [max_msg N] [mode M]\n"
	        "                        [group G]\" lines add queues; SIGHUP re-reads them\n"
	        "  -v, --verbose         log client arrivals and a stats line a minute\n"
	        "  -h, --help            this help\n"
	        "  -V, --version         print the version\n"
	        "\n"
	        "An existing compatible queue is adopted with its messages and counters;\n"
	        "--capacity and --max-msg left out take its geometry, given ones must match.\n"
	        "A queue that cannot be served (damaged, another user's) is shown as such\n"
	        "while the others are served; it is tried again every 5 seconds.\n"
	        "\n"
	        "HTTP: GET /status (JSON), /status/queues/NAME (NAME without its \"/\"),\n"
	        "/metrics (Prometheus), /healthz, / (dashboard).\n"
	        "\n"
	        "Exit status: 0 stopped cleanly; 1 runtime error; 2 usage or config error;\n"
	        "3 another mqbroker serves the queue; 4 the existing queue is incompatible or\n"
	        "corrupt (see --recreate); 5 cannot listen on the address; 6 permission denied.\n"
	        "With several queues, 3, 4 and 6 only when no queue at all could be served\n"
	        "(the first queue's reason).\n",
	        MQ_DEFAULT_NAME, MQ_DEFAULT_CAPACITY, MQ_CAPACITY_LIMIT, MQ_DEFAULT_MAX_MSG,
	        MQ_MAX_MSG_LIMIT);
}

static int bad(const char *where, const char *fmt, const char *val)
{
	char shown[512];
	fprintf(stderr, "mqbroker: %s", where);
	fprintf(stderr, fmt, config_escape(val, shown, sizeof(shown)));
	fprintf(stderr, "\nTry 'mqbroker --help'.\n");
	return -1;
}

/* parse_size: a whole number in [1, MAX], with an optional K or M (binary)
 * suffix if SUFFIX. */
static int parse_size(const char *s, size_t max, int suffix, size_t *out)
{
	if (!s || !*s || *s == '-' || *s == '+')
		return -1;
	char *end;
	errno = 0;
	unsigned long long v = strtoull(s, &end, 10);
	if (errno || end == s)
		return -1;
	if (suffix && (*end == 'K' || *end == 'k')) {
		if (v > (1ULL << 50))
			return -1;
		v *= 1024, end++;
	} else if (suffix && (*end == 'M' || *end == 'm')) {
		if (v > (1ULL << 40))
			return -1;
		v *= 1024 * 1024, end++;
	}
	if (*end || v < 1 || v > max)
		return -1;
	*out = (size_t)v;
	return 0;
}

static int name_ok(const char *val)
{
	return strlen(val) <= MQ_NAME_MAX && val[0] == '/' && val[1] && !strchr(val + 1, '/');
}

/* add_spec: the queue of a --queue flag ("NAME[:CAPACITY[:MAX_MSG]]", the
 * name ends at the first ':') or of a config "queue" line ("NAME [capacity
 * N] [max_msg N] [mode M] [group G]", FROM_FILE). */
static int add_spec(struct options *o, const char *val, int from_file, const char *where)
{
	if (o->nspecs >= MAX_QUEUES)
		return bad(where, "too many queues at '%s' (at most 256)", val);
	struct qspec q;
	memset(&q, 0, sizeof(q));
	q.from_config = from_file;
	char buf[CONFIG_MAX_LINE + 1];
	if (strlen(val) >= sizeof(buf))
		return bad(where, "bad queue '%s' (too long)", val);
	strcpy(buf, val);
	char *save = NULL, *name, *tok;
	if (!from_file) {
		char *cap = strchr(buf, ':'), *max = NULL;
		if (cap) {
			*cap++ = '\0';
			max = strchr(cap, ':');
			if (max)
				*max++ = '\0';
		}
		if (cap && parse_size(cap, MQ_CAPACITY_LIMIT, 0, &q.capacity))
			return bad(where,
			           "bad --queue '%s' (want NAME[:CAPACITY[:MAX_MSG]]; CAPACITY "
			           "1..16777216 messages)",
			           val);
		if (max && parse_size(max, MQ_MAX_MSG_LIMIT, 1, &q.max_msg))
			return bad(where,
			           "bad --queue '%s' (want NAME[:CAPACITY[:MAX_MSG]]; MAX_MSG "
			           "1..1073741824 bytes, e.g. 4096 or 64K)",
			           val);
		q.capacity_set = cap != NULL;
		q.max_msg_set = max != NULL;
		name = buf;
	} else {
		name = strtok_r(buf, " \t", &save);
		while (name && (tok = strtok_r(NULL, " \t", &save)) != NULL) {
			char *arg = strtok_r(NULL, " \t", &save);
			if (!arg)
				return bad(where, "queue line: '%s' needs a value", tok);
			if (!strcmp(tok, "capacity")) {
				if (parse_size(arg, MQ_CAPACITY_LIMIT, 0, &q.capacity))
					return bad(
					        where,
					        "queue line: bad capacity '%s' (want 1..16777216 "
					        "messages)",
					        arg);
				q.capacity_set = 1;
			} else if (!strcmp(tok, "max_msg") || !strcmp(tok, "max-msg")) {
				if (parse_size(arg, MQ_MAX_MSG_LIMIT, 1, &q.max_msg))
					return bad(
					        where,
					        "queue line: bad max_msg '%s' (want 1..1073741824 "
					        "bytes, e.g. 4096 or 64K)",
					        arg);
				q.max_msg_set = 1;
			} else if (!strcmp(tok, "mode")) {
				char *end;
				errno = 0;
				long m = strtol(arg, &end, 8);
				if (errno || end == arg || *end || m < 0 || m > 0777)
					return bad(where,
					           "queue line: bad mode '%s' (want octal "
					           "permissions, "
					           "e.g. 0660)",
					           arg);
				q.mode = (mode_t)m;
				q.mode_set = 1;
			} else if (!strcmp(tok, "group")) {
				if (strlen(arg) >= sizeof(q.group))
					return bad(where, "queue line: bad group '%s'", arg);
				strcpy(q.group, arg);
				q.group_set = 1;
			} else {
				return bad(
				        where,
				        "queue line: unknown setting '%s' (want capacity, max_msg, "
				        "mode or group)",
				        tok);
			}
		}
		if (!name)
			return bad(where,
			           "queue line '%s' names no queue (want \"queue = NAME "
			           "[capacity N] [max_msg N] [mode M] [group G]\")",
			           val);
	}
	if (!name_ok(name))
		return bad(where,
		           "bad queue name '%s' (want \"/\" and 1..250 characters, no other \"/\")",
		           name);
	for (int i = 0; i < o->nspecs; i++)
		if (!strcmp(o->specs[i].name, name))
			return bad(where, "queue %s is given twice", name);
	strcpy(q.name, name);
	o->specs[o->nspecs++] = q;
	return 0;
}

/* set_option: apply long option KEY = VAL; FROM_FILE says whether it comes
 * from the config file (then flags already given win). WHERE prefixes errors. */
static int set_option(struct options *o, const char *key, const char *val, int from_file,
                      const char *where)
{
	size_t n;
	if (!strcmp(key, "queue")) {
		return add_spec(o, val, from_file, where);
	} else if (!strcmp(key, "name")) {
		if (from_file && o->set_name)
			return 0;
		if (!name_ok(val))
			return bad(
			        where,
			        "bad queue name '%s' (want \"/\" and 1..250 characters, no other "
			        "\"/\")",
			        val);
		strcpy(o->name_buf, val);
		o->own.name = o->name_buf;
		o->set_name = !from_file;
	} else if (!strcmp(key, "capacity")) {
		if (from_file && o->own.capacity_set == 1)
			return 0;
		if (parse_size(val, MQ_CAPACITY_LIMIT, 0, &n))
			return bad(where, "bad --capacity '%s' (want 1..16777216 messages)", val);
		o->own.capacity = n;
		o->own.capacity_set = from_file ? 2 : 1;
	} else if (!strcmp(key, "max-msg")) {
		if (from_file && o->own.max_msg_set == 1)
			return 0;
		if (parse_size(val, MQ_MAX_MSG_LIMIT, 1, &n))
			return bad(
			        where,
			        "bad --max-msg '%s' (want 1..1073741824 bytes, e.g. 4096 or 64K)",
			        val);
		o->own.max_msg = n;
		o->own.max_msg_set = from_file ? 2 : 1;
	} else if (!strcmp(key, "listen")) {
		if (from_file && o->set_listen)
			return 0;
		if (strlen(val) >= sizeof(o->listen) || !strchr(val, ':'))
			return bad(where, "bad --listen '%s' (want ADDR:PORT, e.g. 127.0.0.1:8080)",
			           val);
		strcpy(o->listen, val);
		o->set_listen = !from_file;
	} else if (!strcmp(key, "mode")) {
		if (from_file && o->own.mode_set == 1)
			return 0;
		char *end;
		errno = 0;
		long m = strtol(val, &end, 8);
		if (errno || end == val || *end || m < 0 || m > 0777)
			return bad(where, "bad --mode '%s' (want octal permissions, e.g. 0660)",
			           val);
		o->own.mode = (mode_t)m;
		o->own.mode_set = from_file ? 2 : 1;
	} else if (!strcmp(key, "group")) {
		if (from_file && o->set_group)
			return 0;
		if (!*val || strlen(val) >= sizeof(o->group_buf))
			return bad(where, "bad --group '%s'", val);
		strcpy(o->group_buf, val);
		o->own.group = o->group_buf;
		o->set_group = !from_file;
	} else if (!strcmp(key, "trust-owner")) {
		if (from_file && o->set_trust)
			return 0;
		struct passwd *pw = *val ? getpwnam(val) : NULL;
		if (!pw)
			return bad(where, "bad --trust-owner '%s' (no such user)", val);
		o->own.trust_uid = pw->pw_uid;
		o->own.trust_set = 1;
		o->set_trust = !from_file;
	} else if (!strcmp(key, "web-root")) {
		if (from_file && o->set_web_root)
			return 0;
		if (!*val || strlen(val) >= sizeof(o->web_root))
			return bad(where, "bad --web-root '%s'", val);
		strcpy(o->web_root, val);
		o->set_web_root = !from_file;
	} else if (!strcmp(key, "recreate") || !strcmp(key, "verbose")) {
		int on;
		if (!strcmp(val, "") || !strcmp(val, "yes") || !strcmp(val, "true") ||
		    !strcmp(val, "1"))
			on = 1;
		else if (!strcmp(val, "no") || !strcmp(val, "false") || !strcmp(val, "0"))
			on = 0;
		else
			return bad(where, "bad boolean '%s' (want yes or no)", val);
		if (!strcmp(key, "recreate")) {
			if (!(from_file && o->set_recreate))
				o->own.recreate = on, o->set_recreate = !from_file;
		} else if (!(from_file && o->set_verbose)) {
			o->verbose = on, o->set_verbose = !from_file;
		}
	} else {
		return bad(where, "unknown option '%s'", key);
	}
	return 0;
}

/* read_config: apply FILE's options that the command line did not give. The
 * whole file is read and checked first (config.c); then every entry is
 * checked as its flag would be; only if all pass is anything applied (a
 * refused file exits 2 before the queue is touched, so nothing is
 * half-applied). An option given twice in the file is refused. */
static int read_config(struct options *o, const char *file)
{
	struct config c;
	char err[PATH_MAX + 256], shown[sizeof(err) + 64];
	if (config_read(file, &c, err, sizeof(err)) != 0) {
		fprintf(stderr, "mqbroker: config: %s\n", config_escape(err, shown, sizeof(shown)));
		return -1;
	}
	char where[PATH_MAX + 64], path[PATH_MAX + 32];
	config_escape(file, path, sizeof(path));
	int rc = 0;
	for (size_t i = 0; i < c.n && rc == 0; i++) {
		snprintf(where, sizeof(where), "%s:%u: ", path, c.entries[i].line);
		for (size_t j = 0; j < i && strcmp(c.entries[i].key, "queue") != 0; j++)
			if (!strcmp(c.entries[j].key, c.entries[i].key)) {
				char key[128];
				fprintf(stderr,
				        "mqbroker: %s'%s' is given twice (first on line %u)\n",
				        where, config_escape(c.entries[i].key, key, sizeof(key)),
				        c.entries[j].line);
				rc = -1;
				break;
			}
		if (rc == 0)
			rc = set_option(o, c.entries[i].key, c.entries[i].value, 1, where);
	}
	config_free(&c);
	return rc;
}

/* log_arrivals: with --verbose, log clients that attached to BQ since the
 * last call. */
static void log_arrivals(struct bqueue *bq)
{
	static struct mq_client_info now[MQ_CLIENTS_MAX];
	int n = mq_clients(bq->q, now, MQ_CLIENTS_MAX);
	int32_t next[MQ_CLIENTS_MAX] = {0};
	for (int i = 0; i < n && i < MQ_CLIENTS_MAX; i++) {
		if (!now[i].alive)
			continue;
		next[i] = now[i].pid;
		int known = 0;
		for (int j = 0; j < MQ_CLIENTS_MAX && !known; j++)
			known = bq->seen[j] == now[i].pid;
		if (!known)
			broker_log("client pid %d attached to %s", now[i].pid, bq->name);
	}
	memcpy(bq->seen, next, sizeof(next));
}

static volatile sig_atomic_t stop_signal, reload_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
}

static void on_reload(int sig)
{
	(void)sig;
	reload_signal = 1;
}

/* bqueue_new: the queue of spec Q, with O's settings where Q gives none. */
static struct bqueue *bqueue_new(const struct options *o, const struct qspec *q)
{
	struct bqueue *bq = calloc(1, sizeof(*bq));
	if (!bq)
		return NULL;
	bq->own = o->own;
	snprintf(bq->name, sizeof(bq->name), "%s", q->name);
	bq->own.name = bq->name;
	if (q->capacity_set)
		bq->own.capacity = q->capacity, bq->own.capacity_set = 1;
	if (q->max_msg_set)
		bq->own.max_msg = q->max_msg, bq->own.max_msg_set = 1;
	bq->own.geometry_per_queue = q->capacity_set || q->max_msg_set;
	if (q->mode_set)
		bq->own.mode = q->mode, bq->own.mode_set = 1;
	if (q->group_set || o->own.group) {
		snprintf(bq->group, sizeof(bq->group), "%s",
		         q->group_set ? q->group : o->own.group);
		bq->own.group = bq->group;
	}
	bq->from_config = q->from_config;
	return bq;
}

/* queue_open: try to create or adopt BQ (not open); on failure, record why
 * (logged when the reason is new). Returns BROKER_EXIT_OK or the failure's
 * code (errno EBUSY: a libmq 0.1 queue still in use, worth waiting for). */
static int queue_open(struct broker *b, struct bqueue *bq)
{
	char err[1024] = "";
	mq_t *q = NULL;
	int created = 0;
	int rc = owner_open(&bq->own, &q, &created, err, sizeof(err));
	int busy = rc == BROKER_EXIT_SEGMENT && errno == EBUSY;
	int other = rc == BROKER_EXIT_SEGMENT && errno == EEXIST; /* another geometry */
	if (rc == BROKER_EXIT_OK) {
		owner_beat(q);
		owner_sweep(q);
		struct mq_stats st;
		mq_stats(q, &st);
		struct mq_time_in_queue h;
		int have_h = mq_time_in_queue(q, &h) == 0;
		pthread_mutex_lock(&b->lock);
		bq->q = q;
		bq->created = created;
		bq->refused = bq->damaged = 0;
		bq->problem[0] = '\0';
		bq->open_rc = BROKER_EXIT_OK;
		rates_add(&bq->rates, broker_now(), st.enqueued_total, st.dequeued_total);
		if (have_h)
			tiq_history_add(&bq->tiq, broker_now(), &h);
		pthread_mutex_unlock(&b->lock);
		return rc;
	}
	int again = !strcmp(err, bq->problem);
	pthread_mutex_lock(&b->lock);
	bq->open_rc = rc;
	bq->damaged = rc == BROKER_EXIT_SEGMENT && !busy && !other;
	bq->refused = !bq->damaged;
	snprintf(bq->problem, sizeof(bq->problem), "%s", err);
	bq->next_try = broker_now() + 5;
	pthread_mutex_unlock(&b->lock);
	if (!again)
		broker_log("%s%s", err,
		           b->nqueues > 1 ? "; serving the other queues, trying it again every 5 s"
		                          : "");
	if (busy)
		errno = EBUSY;
	return rc;
}

/* queue_close: stop serving BQ (the segment and its messages stay). */
static void queue_close(struct bqueue *bq)
{
	if (bq->q)
		owner_close(bq->q);
	bq->q = NULL;
}

/* queue_tick: once a second for an open BQ: heartbeat, sweep, health, samples. */
static void queue_tick(struct broker *b, struct bqueue *bq, int verbose, int minute)
{
	owner_beat(bq->q);
	owner_sweep(bq->q);
	health_check(b, bq);
	struct mq_stats st;
	mq_stats(bq->q, &st);
	struct mq_time_in_queue h;
	int have_h = mq_time_in_queue(bq->q, &h) == 0;
	double now = broker_now();
	pthread_mutex_lock(&b->lock);
	rates_add(&bq->rates, now, st.enqueued_total, st.dequeued_total);
	if (have_h)
		tiq_history_add(&bq->tiq, now, &h);
	pthread_mutex_unlock(&b->lock);
	if (verbose)
		log_arrivals(bq);
	if (verbose && minute)
		broker_log("%s: depth %llu/%llu, %llu enqueued, %llu dequeued, %u producers, "
		           "%u consumers, oldest message %.3f s",
		           bq->name, (unsigned long long)st.depth, (unsigned long long)st.capacity,
		           (unsigned long long)st.enqueued_total,
		           (unsigned long long)st.dequeued_total, st.producers, st.consumers,
		           (double)st.oldest_age_ns / 1e9);
}

/* build_specs: the queues O asks for: its --queue flags and queue lines, or
 * else the one queue of --name (default MQ_DEFAULT_NAME). Returns 0, or -1
 * (logged) when both --name and queues are given. */
static int build_specs(struct options *o)
{
	if (o->nspecs > 0 && (o->set_name || o->own.name == o->name_buf)) {
		fprintf(stderr,
		        "mqbroker: --name %s and --queue (or queue lines) both name queues: give "
		        "every queue with --queue (or a queue line)\nTry 'mqbroker --help'.\n",
		        o->own.name);
		return -1;
	}
	if (o->nspecs == 0) {
		struct qspec *q = &o->specs[o->nspecs++];
		memset(q, 0, sizeof(*q));
		snprintf(q->name, sizeof(q->name), "%s", o->own.name);
	}
	return 0;
}

/* reload: SIGHUP: read the config file again; open the queues it adds,
 * release (never delete) the config queues it no longer lists, refuse a
 * changed geometry of a live queue. Flags given at start stay as they were. */
static void reload(struct broker *b, const struct options *base, const char *config)
{
	if (!config) {
		broker_log("SIGHUP: no --config file to read again; nothing changed");
		return;
	}
	static struct options o;
	o = *base;
	o.nspecs = 0;
	for (int i = 0; i < base->nspecs; i++)
		if (!base->specs[i].from_config)
			o.specs[o.nspecs++] = base->specs[i];
	if (read_config(&o, config) != 0) {
		broker_log("SIGHUP: %s refused (the reason is above); nothing changed", config);
		return;
	}
	int from_file = 0;
	for (int j = 0; j < o.nspecs; j++)
		from_file += o.specs[j].from_config;
	if (from_file && (base->set_name || o.own.name == o.name_buf)) {
		broker_log("SIGHUP: %s: queue lines and a queue name (--name or a name line) both "
		           "name queues; nothing changed",
		           config);
		return;
	}
	int added = 0, dropped = 0;
	/* Released: config queues no longer listed. */
	for (int i = 0; i < b->nqueues;) {
		struct bqueue *bq = b->queues[i];
		int listed = 0;
		for (int j = 0; j < o.nspecs && !listed; j++)
			listed = !strcmp(o.specs[j].name, bq->name);
		if (listed || !bq->from_config) {
			i++;
			continue;
		}
		if (b->nqueues == 1) {
			broker_log("SIGHUP: %s is no longer listed, but it is the last queue: kept",
			           bq->name);
			i++;
			continue;
		}
		pthread_mutex_lock(&b->lock);
		memmove(&b->queues[i], &b->queues[i + 1],
		        sizeof(b->queues[0]) * (size_t)(b->nqueues - i - 1));
		b->nqueues--;
		pthread_mutex_unlock(&b->lock);
		struct mq_stats st = {0};
		if (bq->q)
			mq_stats(bq->q, &st);
		queue_close(bq);
		broker_log("SIGHUP: released %s (no longer listed); it stays with %llu messages",
		           bq->name, (unsigned long long)st.depth);
		free(bq);
		dropped++;
	}
	for (int j = 0; j < o.nspecs; j++) {
		const struct qspec *q = &o.specs[j];
		struct bqueue *bq = NULL;
		for (int i = 0; i < b->nqueues && !bq; i++)
			if (!strcmp(b->queues[i]->name, q->name))
				bq = b->queues[i];
		if (bq && !bq->q) {
			/* Listed before but not served: its new settings from now on,
			 * tried again at once. */
			struct bqueue *fresh = bqueue_new(&o, q);
			if (fresh) {
				pthread_mutex_lock(&b->lock);
				bq->own = fresh->own;
				memcpy(bq->group, fresh->group, sizeof(bq->group));
				if (bq->own.group)
					bq->own.group = bq->group;
				bq->own.name = bq->name;
				bq->from_config = q->from_config;
				pthread_mutex_unlock(&b->lock);
				free(fresh);
			}
			queue_open(b, bq);
			continue;
		}
		if (bq) {
			/* Listed before: a live queue keeps its geometry. */
			struct mq_stats st;
			if (bq->q && mq_stats(bq->q, &st) == 0 &&
			    ((q->capacity_set && q->capacity != st.capacity) ||
			     (q->max_msg_set && q->max_msg != st.max_msg_size)))
				broker_log(
				        "SIGHUP: %s: capacity %zu, max_msg %zu asked, the live "
				        "queue "
				        "has %llu and %llu: refused (its messages would be lost; "
				        "stop the broker and start it with --recreate to change "
				        "it)",
				        q->name,
				        q->capacity_set ? q->capacity : (size_t)st.capacity,
				        q->max_msg_set ? q->max_msg : (size_t)st.max_msg_size,
				        (unsigned long long)st.capacity,
				        (unsigned long long)st.max_msg_size);
			bq->from_config = q->from_config;
			continue;
		}
		if (b->nqueues >= MAX_QUEUES) {
			broker_log("SIGHUP: %s and the queues after it not added: %d queues is the "
			           "most one broker serves",
			           q->name, MAX_QUEUES);
			break;
		}
		bq = bqueue_new(&o, q);
		if (!bq)
			break;
		pthread_mutex_lock(&b->lock);
		b->queues[b->nqueues++] = bq;
		pthread_mutex_unlock(&b->lock);
		queue_open(b, bq);
		added++;
	}
	int served = 0;
	for (int i = 0; i < b->nqueues; i++)
		served += b->queues[i]->q != NULL;
	broker_log("SIGHUP: re-read %s: %d queue%s added, %d released, %d of %d served", config,
	           added, added == 1 ? "" : "s", dropped, served, b->nqueues);
}

int main(int argc, char **argv)
{
	static struct options o;
	o.own.name = MQ_DEFAULT_NAME;
	o.own.capacity = MQ_DEFAULT_CAPACITY;
	o.own.max_msg = MQ_DEFAULT_MAX_MSG;
	o.own.mode = 0660;
	snprintf(o.listen, sizeof(o.listen), "127.0.0.1:8080");

	enum { OPT_MODE = 256, OPT_RECREATE, OPT_WEB_ROOT, OPT_CONFIG, OPT_TRUST };
	static const struct option longopts[] = {
	        {"name", required_argument, NULL, 'n'},
	        {"queue", required_argument, NULL, 'q'},
	        {"capacity", required_argument, NULL, 'c'},
	        {"max-msg", required_argument, NULL, 'm'},
	        {"listen", required_argument, NULL, 'l'},
	        {"mode", required_argument, NULL, OPT_MODE},
	        {"group", required_argument, NULL, 'g'},
	        {"recreate", no_argument, NULL, OPT_RECREATE},
	        {"web-root", required_argument, NULL, OPT_WEB_ROOT},
	        {"config", required_argument, NULL, OPT_CONFIG},
	        {"trust-owner", required_argument, NULL, OPT_TRUST},
	        {"verbose", no_argument, NULL, 'v'},
	        {"help", no_argument, NULL, 'h'},
	        {"version", no_argument, NULL, 'V'},
	        {NULL, 0, NULL, 0}};
	const char *config = NULL;
	int c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":n:q:c:m:l:g:vhV", longopts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case 'n':
			rc = set_option(&o, "name", optarg, 0, "");
			break;
		case 'q':
			rc = set_option(&o, "queue", optarg, 0, "");
			break;
		case 'c':
			rc = set_option(&o, "capacity", optarg, 0, "");
			break;
		case 'm':
			rc = set_option(&o, "max-msg", optarg, 0, "");
			break;
		case 'l':
			rc = set_option(&o, "listen", optarg, 0, "");
			break;
		case OPT_MODE:
			rc = set_option(&o, "mode", optarg, 0, "");
			break;
		case 'g':
			rc = set_option(&o, "group", optarg, 0, "");
			break;
		case OPT_RECREATE:
			rc = set_option(&o, "recreate", "yes", 0, "");
			break;
		case OPT_WEB_ROOT:
			rc = set_option(&o, "web-root", optarg, 0, "");
			break;
		case OPT_CONFIG:
			config = optarg;
			break;
		case OPT_TRUST:
			rc = set_option(&o, "trust-owner", optarg, 0, "");
			break;
		case 'v':
			rc = set_option(&o, "verbose", "yes", 0, "");
			break;
		case 'h':
			usage(stdout);
			return BROKER_EXIT_OK;
		case 'V':
			printf("mqbroker %s\n", BROKER_VERSION);
			return BROKER_EXIT_OK;
		case ':':
			fprintf(stderr,
			        "mqbroker: option '%s' needs a value\nTry 'mqbroker --help'.\n",
			        argv[optind - 1]);
			return BROKER_EXIT_USAGE;
		default:
			fprintf(stderr, "mqbroker: unknown option '%s'\nTry 'mqbroker --help'.\n",
			        argv[optind - 1]);
			return BROKER_EXIT_USAGE;
		}
		if (rc)
			return BROKER_EXIT_USAGE;
	}
	if (optind < argc) {
		fprintf(stderr, "mqbroker: unexpected argument '%s'\nTry 'mqbroker --help'.\n",
		        argv[optind]);
		return BROKER_EXIT_USAGE;
	}
	/* The command line as given, for SIGHUP (the config file is read again
	 * on top of it). */
	static struct options flags;
	flags = o;
	if (config && read_config(&o, config))
		return BROKER_EXIT_USAGE;
	if (build_specs(&o))
		return BROKER_EXIT_USAGE;
	/* Checked before any queue is touched: a usage error leaves nothing. */
	struct sockaddr_storage listen_addr;
	socklen_t listen_len;
	char listen_err[256];
	if (http_parse_listen(o.listen, &listen_addr, &listen_len, listen_err,
	                      sizeof(listen_err)) != 0) {
		broker_log("%s", listen_err);
		fprintf(stderr, "Try 'mqbroker --help'.\n");
		return BROKER_EXIT_USAGE;
	}
	for (int i = 0; i < o.nspecs; i++) {
		const char *g = o.specs[i].group_set ? o.specs[i].group : o.own.group;
		if (g && !getgrnam(g)) {
			broker_log("queue %s: no such group '%s' (see --group)", o.specs[i].name,
			           g);
			return BROKER_EXIT_USAGE;
		}
	}

	/* Signals: SIGTERM/SIGINT stop us, SIGHUP re-reads the config file; a
	 * dead HTTP peer must not stop us. */
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	struct sigaction hup = {.sa_handler = on_reload};
	sigemptyset(&hup.sa_mask);
	sigaction(SIGHUP, &hup, NULL);
	signal(SIGPIPE, SIG_IGN);

	static struct broker b;
	pthread_mutex_init(&b.lock, NULL);
	b.started = broker_now();
	b.queues = calloc(MAX_QUEUES, sizeof(*b.queues));
	if (!b.queues) {
		broker_log("out of memory");
		return BROKER_EXIT_RUNTIME;
	}
	for (int i = 0; i < o.nspecs; i++) {
		struct bqueue *bq = bqueue_new(&o, &o.specs[i]);
		if (!bq) {
			broker_log("out of memory");
			return BROKER_EXIT_RUNTIME;
		}
		b.queues[b.nqueues++] = bq;
	}
	/* Open every queue. None served: a libmq 0.1 queue still in use by 0.1
	 * programs (an upgrade while they run) is waited for rather than failed,
	 * so that a service restarted by the package upgrade does not run into
	 * its restart limit; any other reason ends the start. */
	int served = 0, busy = 0, first_rc = BROKER_EXIT_OK, waited = 0;
	for (int i = 0; i < b.nqueues; i++) {
		int rc = queue_open(&b, b.queues[i]);
		if (rc == BROKER_EXIT_OK)
			served++;
		else if (rc == BROKER_EXIT_SEGMENT && errno == EBUSY)
			busy++;
		else if (first_rc == BROKER_EXIT_OK)
			first_rc = rc;
	}
	while (!served && busy && !stop_signal) {
		if (!waited++)
			broker_log(
			        "waiting for the libmq 0.1 programs (looking again every second)");
		sleep(1); /* a stop signal cuts it short */
		for (int i = 0; i < b.nqueues && !stop_signal; i++)
			if (!b.queues[i]->q && queue_open(&b, b.queues[i]) == BROKER_EXIT_OK)
				served++;
	}
	if (!served) {
		if (stop_signal) {
			broker_log("stopping on %s while waiting for the layout 1 queue%s",
			           strsignal(stop_signal), b.nqueues > 1 ? "s" : "");
			return BROKER_EXIT_OK;
		}
		if (b.nqueues > 1)
			broker_log("no queue could be served");
		return first_rc != BROKER_EXIT_OK ? first_rc : BROKER_EXIT_SEGMENT;
	}

	/* The HTTP thread inherits a mask without the stop and reload signals,
	 * so they reach the main thread and cut its tick short. */
	sigset_t stops, old_mask;
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	sigaddset(&stops, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &stops, &old_mask);
	char err[1024] = "";
	struct http_server *http =
	        http_start(&b, o.listen, o.web_root[0] ? o.web_root : NULL, err, sizeof(err));
	int http_errno = errno;
	pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
	errno = http_errno;
	if (!http) {
		int why = errno; /* before anything that may change it */
		broker_log("%s", err);
		/* A queue this run created holds nothing yet: take it away again,
		 * so a failed start leaves the system as it found it. */
		for (int i = 0; i < b.nqueues; i++) {
			struct bqueue *bq = b.queues[i];
			if (bq->q && bq->created)
				owner_discard(bq->q, bq->name);
			else
				queue_close(bq);
		}
		return why == EADDRINUSE || why == EACCES || why == EADDRNOTAVAIL
		               ? BROKER_EXIT_LISTEN
		               : (why == EINVAL ? BROKER_EXIT_USAGE : BROKER_EXIT_RUNTIME);
	}
	char shown[160];
	http_listen_shown(o.listen, http_port(http), shown, sizeof(shown));
	if (b.nqueues == 1)
		broker_log("serving %s on http://%s/ (pid %d)", b.queues[0]->name, shown,
		           (int)getpid());
	else
		broker_log("serving %d of %d queues on http://%s/ (pid %d)", served, b.nqueues,
		           shown, (int)getpid());
	for (int i = 0; i < b.nqueues; i++) {
		if (!b.queues[i]->q)
			continue;
		if (o.verbose)
			log_arrivals(b.queues[i]);
		health_check(&b, b.queues[i]);
	}

	double next_minute = broker_now() + 60;
	while (!stop_signal) {
		/* One tick a second; a signal cuts the sleep short. */
		struct timespec tick = {1, 0};
		nanosleep(&tick, NULL);
		if (stop_signal)
			break;
		if (reload_signal) {
			reload_signal = 0;
			reload(&b, &flags, config);
		}
		double now = broker_now();
		int minute = now >= next_minute;
		if (minute)
			next_minute = now + 60;
		for (int i = 0; i < b.nqueues; i++) {
			struct bqueue *bq = b.queues[i];
			if (bq->q)
				queue_tick(&b, bq, o.verbose, minute);
			else if (now >= bq->next_try)
				queue_open(&b, bq);
		}
	}
	for (int i = 0; i < b.nqueues; i++) {
		struct bqueue *bq = b.queues[i];
		struct mq_stats st;
		if (!bq->q)
			broker_log("stopping on %s; %s was not served (%s)", strsignal(stop_signal),
			           bq->name, bq->problem);
		else if (mq_stats(bq->q, &st) == 0)
			broker_log("stopping on %s; %s stays with %llu messages",
			           strsignal(stop_signal), bq->name, (unsigned long long)st.depth);
		else
			broker_log("stopping on %s; %s stays (it cannot be read: %s)",
			           strsignal(stop_signal), bq->name, mq_errdetail());
	}
	http_stop(http);
	for (int i = 0; i < b.nqueues; i++) {
		queue_close(b.queues[i]);
		free(b.queues[i]);
	}
	free(b.queues);
	pthread_mutex_destroy(&b.lock);
	return BROKER_EXIT_OK;
}
