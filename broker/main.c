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

struct options {
	struct owner_opts own;
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
	        "Create (or adopt) a libmq message queue in POSIX shared memory, watch its\n"
	        "clients, and serve its statistics over HTTP. Runs in the foreground; stop it\n"
	        "with SIGTERM or Ctrl-C (the queue and its messages stay).\n"
	        "\n"
	        "  -n, --name NAME       queue name (default %s)\n"
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
	        "                        (long names without --, # comments); flags win\n"
	        "  -v, --verbose         log client arrivals and a stats line a minute\n"
	        "  -h, --help            this help\n"
	        "  -V, --version         print the version\n"
	        "\n"
	        "An existing compatible queue is adopted with its messages and counters;\n"
	        "--capacity and --max-msg left out take its geometry, given ones must match.\n"
	        "\n"
	        "HTTP: GET /status (JSON), /metrics (Prometheus), /healthz, / (dashboard).\n"
	        "\n"
	        "Exit status: 0 stopped cleanly; 1 runtime error; 2 usage or config error;\n"
	        "3 another mqbroker serves the queue; 4 the existing queue is incompatible or\n"
	        "corrupt (see --recreate); 5 cannot listen on the address; 6 permission denied.\n",
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

/* set_option: apply long option KEY = VAL; FROM_FILE says whether it comes
 * from the config file (then flags already given win). WHERE prefixes errors. */
static int set_option(struct options *o, const char *key, const char *val, int from_file,
                      const char *where)
{
	size_t n;
	if (!strcmp(key, "name")) {
		if (from_file && o->set_name)
			return 0;
		if (strlen(val) > MQ_NAME_MAX || val[0] != '/' || !val[1] || strchr(val + 1, '/'))
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
		for (size_t j = 0; j < i; j++)
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

/* log_arrivals: with --verbose, log clients that attached since the last
 * call; SEEN holds the pids known so far (MQ_CLIENTS_MAX entries). */
static void log_arrivals(struct broker *b, int32_t *seen)
{
	static struct mq_client_info now[MQ_CLIENTS_MAX];
	int n = mq_clients(b->q, now, MQ_CLIENTS_MAX);
	int32_t next[MQ_CLIENTS_MAX] = {0};
	for (int i = 0; i < n && i < MQ_CLIENTS_MAX; i++) {
		if (!now[i].alive)
			continue;
		next[i] = now[i].pid;
		int known = 0;
		for (int j = 0; j < MQ_CLIENTS_MAX && !known; j++)
			known = seen[j] == now[i].pid;
		if (!known)
			broker_log("client pid %d attached to %s", now[i].pid, b->name);
	}
	memcpy(seen, next, sizeof(next));
}

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
	stop_signal = sig;
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
	while ((c = getopt_long(argc, argv, ":n:c:m:l:g:vhV", longopts, NULL)) != -1) {
		int rc = 0;
		switch (c) {
		case 'n':
			rc = set_option(&o, "name", optarg, 0, "");
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
	if (config && read_config(&o, config))
		return BROKER_EXIT_USAGE;
	/* Checked before the queue is touched: a usage error leaves nothing. */
	struct sockaddr_storage listen_addr;
	socklen_t listen_len;
	char listen_err[256];
	if (http_parse_listen(o.listen, &listen_addr, &listen_len, listen_err,
	                      sizeof(listen_err)) != 0) {
		broker_log("%s", listen_err);
		fprintf(stderr, "Try 'mqbroker --help'.\n");
		return BROKER_EXIT_USAGE;
	}
	if (o.own.group && !getgrnam(o.own.group)) {
		broker_log("queue %s: no such group '%s' (see --group)", o.own.name, o.own.group);
		return BROKER_EXIT_USAGE;
	}

	/* Signals: SIGTERM/SIGINT stop us; a dead HTTP peer must not. */
	struct sigaction sa = {.sa_handler = on_stop};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	static struct broker b;
	char err[1024] = "";
	int created = 0;
	int rc, waited = 0;
	/* A libmq 0.1 queue still in use by 0.1 programs (an upgrade while they
	 * run): wait for them rather than fail, so that a service restarted by
	 * the package upgrade does not run into its restart limit. */
	while ((rc = owner_open(&o.own, &b.q, &created, err, sizeof(err))) == BROKER_EXIT_SEGMENT &&
	       errno == EBUSY && !stop_signal) {
		if (!waited++)
			broker_log("%s; waiting (looking again every second)", err);
		sleep(1); /* a stop signal cuts it short */
	}
	if (rc != BROKER_EXIT_OK) {
		if (waited && stop_signal) {
			broker_log("stopping on %s while waiting for the layout 1 queue %s",
			           strsignal(stop_signal), o.own.name);
			return BROKER_EXIT_OK;
		}
		broker_log("%s", err);
		return rc;
	}
	snprintf(b.name, sizeof(b.name), "%s", o.own.name);
	b.started = broker_now();
	pthread_mutex_init(&b.lock, NULL);
	owner_beat(b.q);
	owner_sweep(b.q);
	struct mq_stats st;
	mq_stats(b.q, &st);
	rates_add(&b.rates, broker_now(), st.enqueued_total, st.dequeued_total);

	/* The HTTP thread inherits a mask without the stop signals, so they
	 * reach the main thread and cut its tick short. */
	sigset_t stops, old_mask;
	sigemptyset(&stops);
	sigaddset(&stops, SIGTERM);
	sigaddset(&stops, SIGINT);
	pthread_sigmask(SIG_BLOCK, &stops, &old_mask);
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
		if (created)
			owner_discard(b.q, b.name);
		else
			owner_close(b.q);
		return why == EADDRINUSE || why == EACCES || why == EADDRNOTAVAIL
		               ? BROKER_EXIT_LISTEN
		               : (why == EINVAL ? BROKER_EXIT_USAGE : BROKER_EXIT_RUNTIME);
	}
	char shown[160];
	snprintf(shown, sizeof(shown), "%s", o.listen);
	char *colon = strrchr(shown, ':');
	if (colon && !strcmp(colon, ":0")) /* port 0: say which one we got */
		snprintf(colon + 1, sizeof(shown) - (size_t)(colon + 1 - shown), "%d",
		         http_port(http));
	broker_log("serving %s on http://%s/ (pid %d)", b.name, shown, (int)getpid());
	static int32_t seen[MQ_CLIENTS_MAX];
	if (o.verbose)
		log_arrivals(&b, seen);

	health_check(&b);
	double next_minute = broker_now() + 60;
	while (!stop_signal) {
		/* One tick a second; a signal cuts the sleep short. */
		struct timespec tick = {1, 0};
		nanosleep(&tick, NULL);
		owner_beat(b.q);
		owner_sweep(b.q);
		health_check(&b);
		mq_stats(b.q, &st);
		double now = broker_now();
		pthread_mutex_lock(&b.lock);
		rates_add(&b.rates, now, st.enqueued_total, st.dequeued_total);
		pthread_mutex_unlock(&b.lock);
		if (o.verbose)
			log_arrivals(&b, seen);
		if (o.verbose && now >= next_minute) {
			next_minute = now + 60;
			broker_log(
			        "%s: depth %llu/%llu, %llu enqueued, %llu dequeued, %u producers, "
			        "%u consumers",
			        b.name, (unsigned long long)st.depth,
			        (unsigned long long)st.capacity,
			        (unsigned long long)st.enqueued_total,
			        (unsigned long long)st.dequeued_total, st.producers, st.consumers);
		}
	}
	mq_stats(b.q, &st);
	broker_log("stopping on %s; %s stays with %llu messages", strsignal(stop_signal), b.name,
	           (unsigned long long)st.depth);
	http_stop(http);
	owner_close(b.q);
	pthread_mutex_destroy(&b.lock);
	return BROKER_EXIT_OK;
}
