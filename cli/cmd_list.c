/* cmd_list.c - mqctl list: every libmq queue in /dev/shm, its figures and who serves it (table or
 * JSON). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "libmq_admin.h"
#include "mqctl.h"

void list_usage(FILE *f)
{
	fprintf(f, "Usage: mqctl list [--json]\n"
	           "List every libmq queue in /dev/shm (files that begin with libmq's magic and\n"
	           "that this user may read), sorted by name, with its depth, capacity, maximum\n"
	           "message size, attached clients, the age of its oldest waiting message, and\n"
	           "its status (mqctl does not attach as a client):\n"
	           "  mqbroker pid N          a live mqbroker holds the queue's broker lock\n"
	           "  no broker               none does (a broker that was killed or stopped;\n"
	           "                          clients can still use the queue)\n"
	           "  damaged: REASON         corrupt, truncated, world-writable, or a lock or\n"
	           "                          record left by a holder that is gone\n"
	           "  layout N (older libmq)  a queue of another layout version, not opened\n"
	           "  layout N (newer libmq)  ('mqbroker -n NAME' moves an older one's messages)\n"
	           "  not readable: REASON    this user may not open it\n"
	           "'mqctl check -q NAME' tells more about one queue.\n"
	           "\n"
	           "  -j, --json   print one JSON array, an object per queue, always with the\n"
	           "               keys name, layout, size_bytes, uid, mode (\"0660\"), state\n"
	           "               (\"ok\", \"damaged\", \"incompatible\", \"unreadable\" or\n"
	           "               \"error\"), status (the table's text), error (null when\n"
	           "               ok), depth, capacity, max_msg_size, clients_attached,\n"
	           "               oldest_age_s, broker_alive, broker_pid (null when not\n"
	           "               known: the queue was not opened, or no live broker)\n"
	           "  -h, --help   this help\n"
	           "\n"
	           "With no queue it prints nothing (--json: []) and exits 0. A damaged or\n"
	           "incompatible queue is listed as such: the exit status is 0 whenever the list\n"
	           "could be made (1 when /dev/shm cannot be read).\n"
	           "\n" MQCTL_EXIT_HELP);
}

/* One queue as listed. */
struct row {
	const struct mq_listed *l;
	const char *state;  /* "ok", "damaged", "incompatible", "unreadable" or "error" */
	int have_stats;     /* st was read */
	struct mq_stats st; /* its figures */
	int broker_alive;   /* 1, 0, or -1: not known */
	int32_t broker_pid; /* the live broker's pid (0: not known) */
	char status[640];   /* the table's last column */
	char error[512];    /* the problem, "" if none */
};

/* reason: mq_errdetail() without its "queue NAME: " (the row names it). */
static const char *reason(const char *name)
{
	const char *d = mq_errdetail();
	size_t k = strlen(name);
	if (!strncmp(d, "queue ", 6) && !strncmp(d + 6, name, k) && !strncmp(d + 6 + k, ": ", 2))
		d += 8 + k;
	return d;
}

/* row_fill: look at queue L into R without changing it. Returns 0, or -1
 * when the queue went away meanwhile (not listed). */
static int row_fill(const struct mq_listed *l, struct row *r)
{
	memset(r, 0, sizeof(*r));
	r->l = l;
	r->broker_alive = -1;
	if (l->version != MQ_LAYOUT_CURRENT) {
		/* Another libmq's queue: its layout is not ours to read. */
		r->state = "incompatible";
		snprintf(r->status, sizeof(r->status), "layout %u (%s libmq)", l->version,
		         l->version < MQ_LAYOUT_CURRENT ? "older" : "newer");
		snprintf(r->error, sizeof(r->error),
		         "layout version %u, this libmq reads version %u", l->version,
		         MQ_LAYOUT_CURRENT);
		return 0;
	}
	mq_t *q = mq_observe(l->name);
	if (!q) {
		int err = errno;
		if (err == ENOENT)
			return -1;
		snprintf(r->error, sizeof(r->error), "%s", reason(l->name));
		if (err == EPROTO) {
			r->state = "damaged";
			snprintf(r->status, sizeof(r->status), "damaged: %s", r->error);
		} else if (err == EACCES || err == EPERM) {
			r->state = "unreadable";
			snprintf(r->status, sizeof(r->status), "not readable: %s", strerror(err));
		} else {
			r->state = "error";
			snprintf(r->status, sizeof(r->status), "cannot open: %s", r->error);
		}
		return 0;
	}
	struct mq_inspection in;
	r->have_stats = mq_stats(q, &r->st) == 0;
	if (!r->have_stats || mq_inspect(q, &in) != 0) {
		r->state = "damaged";
		snprintf(r->error, sizeof(r->error), "%s", reason(l->name));
		snprintf(r->status, sizeof(r->status), "damaged: %s", r->error);
	} else {
		r->broker_alive = in.broker_alive ? 1 : 0;
		r->broker_pid = in.broker_alive ? in.broker_pid : 0;
		if (!in.sound) {
			r->state = "damaged";
			snprintf(r->error, sizeof(r->error), "%s", in.problem);
			snprintf(r->status, sizeof(r->status), "damaged: %s", r->error);
		} else if (in.broker_alive && in.broker_pid > 0) {
			r->state = "ok";
			snprintf(r->status, sizeof(r->status), "mqbroker pid %d",
			         (int)in.broker_pid);
		} else {
			r->state = "ok";
			snprintf(r->status, sizeof(r->status),
			         in.broker_alive ? "mqbroker (pid unknown)" : "no broker");
		}
	}
	mq_detach(q);
	return 0;
}

/* columns: how wide TEXT shows on a terminal (UTF-8: continuation bytes take no column). */
static int columns(const char *text)
{
	int n = 0;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++)
		n += (*p & 0xc0) != 0x80;
	return n;
}

/* print_table: the rows, a header first (nothing when there are none). */
static void print_table(const struct row *rows, int n)
{
	if (n == 0)
		return;
	char pn[4 * MQ_NAME_MAX + 8];
	int width = 5;
	for (int i = 0; i < n; i++) {
		name_printable(rows[i].l->name, pn, sizeof(pn));
		int len = columns(pn);
		width = len > width ? len : width;
	}
	width = width > 60 ? 60 : width;
	printf("%-*s  %7s  %8s  %8s  %7s  %9s  %s\n", width, "QUEUE", "DEPTH", "CAPACITY",
	       "MAX MSG", "CLIENTS", "OLDEST", "STATUS");
	for (int i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		name_printable(r->l->name, pn, sizeof(pn));
		char depth[24] = "-", cap[24] = "-", max[24] = "-", clients[24] = "-",
		     age[24] = "-";
		if (r->have_stats) {
			snprintf(depth, sizeof(depth), "%" PRIu64, r->st.depth);
			snprintf(cap, sizeof(cap), "%" PRIu64, r->st.capacity);
			snprintf(max, sizeof(max), "%" PRIu64, r->st.max_msg_size);
			snprintf(clients, sizeof(clients), "%u", r->st.clients);
			if (r->st.depth > 0 && r->st.oldest_age_ns > 0)
				seconds_text((double)r->st.oldest_age_ns / 1e9, age, sizeof(age));
		}
		int pad = width - columns(pn);
		printf("%s%*s  %7s  %8s  %8s  %7s  %9s  %s\n", pn, pad > 0 ? pad : 0, "", depth,
		       cap, max, clients, age, r->status);
	}
}

/* json_name: NAME as JSON text can carry it: as it is when it is valid UTF-8
 * without control characters, else with every other byte as '?'. */
static void json_name(const char *name, char *buf, size_t n)
{
	snprintf(buf, n, "%s", name);
	if (json_text_ok((const unsigned char *)buf, strlen(buf)))
		return;
	for (char *p = buf; *p; p++)
		if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
			*p = '?';
}

/* add_count: KEY as V, or null without stats. */
static bool add_count(cJSON *o, const char *key, int have, double v)
{
	return have ? cJSON_AddNumberToObject(o, key, v) != NULL
	            : cJSON_AddNullToObject(o, key) != NULL;
}

/* row_json: R as one object of the array (the keys of list_usage, in order), or NULL. */
static cJSON *row_json(const struct row *r)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	char name[MQ_NAME_MAX + 1], mode[16];
	json_name(r->l->name, name, sizeof(name));
	snprintf(mode, sizeof(mode), "%04o", (unsigned)r->l->mode);
	const struct mq_stats *s = &r->st;
	int h = r->have_stats;
	/* Whole microseconds, as /status rounds oldest_age_s. */
	double age = (double)(s->oldest_age_ns / 1000) / 1e6;
	bool ok = cJSON_AddStringToObject(o, "name", name) &&
	          cJSON_AddNumberToObject(o, "layout", r->l->version) &&
	          cJSON_AddNumberToObject(o, "size_bytes", (double)r->l->size) &&
	          cJSON_AddNumberToObject(o, "uid", r->l->uid) &&
	          cJSON_AddStringToObject(o, "mode", mode) &&
	          cJSON_AddStringToObject(o, "state", r->state) &&
	          cJSON_AddStringToObject(o, "status", r->status) &&
	          (r->error[0] ? cJSON_AddStringToObject(o, "error", r->error) != NULL
	                       : cJSON_AddNullToObject(o, "error") != NULL) &&
	          add_count(o, "depth", h, (double)s->depth) &&
	          add_count(o, "capacity", h, (double)s->capacity) &&
	          add_count(o, "max_msg_size", h, (double)s->max_msg_size) &&
	          add_count(o, "clients_attached", h, s->clients) &&
	          add_count(o, "oldest_age_s", h, age) &&
	          (r->broker_alive < 0
	                   ? cJSON_AddNullToObject(o, "broker_alive") != NULL
	                   : cJSON_AddBoolToObject(o, "broker_alive", r->broker_alive) != NULL) &&
	          add_count(o, "broker_pid", r->broker_alive == 1 && r->broker_pid > 0,
	                    r->broker_pid);
	if (!ok) {
		cJSON_Delete(o);
		return NULL;
	}
	return o;
}

/* print_json: the rows as one JSON array on one line; -1 if out of memory. */
static int print_json(const struct row *rows, int n)
{
	cJSON *a = cJSON_CreateArray();
	bool ok = a != NULL;
	for (int i = 0; ok && i < n; i++) {
		cJSON *o = row_json(&rows[i]);
		ok = o && cJSON_AddItemToArray(a, o);
		if (!ok)
			cJSON_Delete(o);
	}
	char *text = ok ? cJSON_PrintUnformatted(a) : NULL;
	cJSON_Delete(a);
	if (!text)
		return -1;
	printf("%s\n", text);
	free(text);
	return 0;
}

int cmd_list(int argc, char **argv)
{
	static const struct option longopts[] = {{"json", no_argument, NULL, 'j'},
	                                         {"queue", no_argument, NULL, 'q'},
	                                         {"help", no_argument, NULL, 'h'},
	                                         {NULL, 0, NULL, 0}};
	int json = 0, c;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":jqh", longopts, NULL)) != -1) {
		switch (c) {
		case 'j':
			json = 1;
			break;
		case 'h':
			list_usage(stdout);
			return MQCTL_OK;
		case 'q':
			return usage_fail("list",
			                  "option '-q' does not apply: list shows every queue "
			                  "in /dev/shm ('mqctl stats -q NAME' shows one)");
		default:
			if (optopt == 'q') /* --queue=NAME */
				return usage_fail("list",
				                  "option '--queue' does not apply: list shows "
				                  "every queue in /dev/shm ('mqctl stats -q NAME' "
				                  "shows one)");
			return opt_fail("list", c, argv);
		}
	}
	if (optind < argc)
		return usage_fail("list",
		                  "unexpected argument '%s' (list takes none: it shows "
		                  "every queue in /dev/shm)",
		                  argv[optind]);

	struct mq_listed *l = NULL;
	int nl = queue_list(&l);
	if (nl < 0)
		return fail(MQCTL_RUNTIME, "cannot list the queues in /dev/shm: %s",
		            strerror(errno));
	struct row *rows = nl ? calloc((size_t)nl, sizeof(*rows)) : NULL;
	if (nl && !rows) {
		free(l);
		return fail(MQCTL_RUNTIME, "out of memory listing %d queues", nl);
	}
	int n = 0;
	for (int i = 0; i < nl; i++)
		if (row_fill(&l[i], &rows[n]) == 0)
			n++;
	int rc = MQCTL_OK;
	if (json) {
		if (print_json(rows, n) != 0)
			rc = fail(MQCTL_RUNTIME, "out of memory rendering the JSON of %d queues",
			          n);
	} else {
		print_table(rows, n);
	}
	free(rows);
	free(l);
	if (rc == MQCTL_OK && fflush(stdout) != 0)
		return fail(MQCTL_RUNTIME, "cannot write to stdout: %s", strerror(errno));
	return rc;
}
