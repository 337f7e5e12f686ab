/* main.c - mqbridge's main: options, HTTP endpoints, NATS, the routes; stopped by a signal. */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bridge.h"
#include "http.h"
#include "stats.h"

/* Publishes in flight when stopping: how long to wait for their acks before
 * giving their leases back (they are published again by the next run). */
#define STOP_GRACE_MS 5000

/* What the routes and the connection count, and the endpoints show (static:
 * a latency histogram per route makes it large). */
static struct bridge_stats stats;

int main(int argc, char **argv)
{
	struct bridge_opts o;
	int rc = bridge_parse_args(&o, argc, argv);
	if (rc < 0)
		return BRIDGE_EXIT_OK; /* --help */
	if (rc)
		return rc;

	/* SIGTERM and SIGINT are blocked in every thread (the library's too,
	 * which inherit this mask) and taken by sigwaitinfo below (and by
	 * sigtimedwait in conn_open, while it waits to connect). */
	sigset_t sigs;
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* The queues first: a name that is wrong is said before any waiting
	 * for NATS. */
	for (unsigned i = 0; i < o.nroutes; i++) {
		mq_t *q = mq_attach(o.routes[i].queue);
		if (!q) {
			bridge_log("%s", mq_errdetail());
			return BRIDGE_EXIT_ERROR;
		}
		mq_detach(q);
	}

	/* The endpoints before NATS: /healthz says why while we wait for it.
	 * Their threads inherit the blocked signals. */
	stats_init(&stats, &o);
	char err[512];
	struct http_server *http = endpoints_start(&stats, o.listen, err, sizeof(err));
	if (!http) {
		bridge_log("http: %s", err);
		stats_destroy(&stats);
		return errno == EINVAL ? BRIDGE_EXIT_USAGE : BRIDGE_EXIT_ERROR;
	}
	char shown[160];
	bridge_log("http: listening on http://%s",
	           http_listen_shown(o.listen, http_port(http), shown, sizeof(shown)));

	if (nats_Open(-1) != NATS_OK) {
		bridge_log("cannot initialise the NATS library");
		http_stop(http);
		stats_destroy(&stats);
		return BRIDGE_EXIT_ERROR;
	}
	natsConnection *nc = conn_open(&o, &sigs, &stats);
	if (!nc) {
		http_stop(http);
		stats_destroy(&stats);
		nats_CloseAndWait(2000);
		return atomic_load(&bridge_stopping) ? BRIDGE_EXIT_OK : BRIDGE_EXIT_ERROR;
	}
	jsCtx *js = NULL;
	struct export_route *ex[BRIDGE_ROUTES_MAX] = {0};
	struct import_route *im[BRIDGE_ROUTES_MAX] = {0};
	rc = BRIDGE_EXIT_OK;
	if (natsConnection_JetStream(&js, nc, NULL) != NATS_OK || conn_ensure_stream(js, &o) < 0) {
		rc = BRIDGE_EXIT_ERROR;
	}
	for (unsigned i = 0; i < o.nroutes && rc == BRIDGE_EXIT_OK; i++) {
		const struct route *r = &o.routes[i];
		if (r->dir == ROUTE_EXPORT)
			ex[i] = export_start(r, nc, o.window, &stats.routes[i]);
		else
			im[i] = import_start(r, nc, o.stream, o.batch, o.ack_wait_s,
			                     &stats.routes[i]);
		if (!ex[i] && !im[i])
			rc = BRIDGE_EXIT_ERROR;
	}
	if (rc == BRIDGE_EXIT_OK) {
		bridge_log("running %u routes through stream %s (pid %d)", o.nroutes, o.stream,
		           (int)getpid());
		int sig;
		while ((sig = sigwaitinfo(&sigs, NULL)) < 0 && errno == EINTR)
			;
		bridge_log("stopping on %s", strsignal(sig));
	}
	atomic_store(&bridge_stopping, 1);
	for (unsigned i = 0; i < o.nroutes; i++) {
		if (ex[i])
			export_stop(ex[i], STOP_GRACE_MS);
		if (im[i])
			import_stop(im[i]);
	}
	/* No callback runs after this, so the routes may be freed. */
	natsConnection_Close(nc);
	/* The endpoints ask the connection its state: stopped before it goes. */
	http_stop(http);
	for (unsigned i = 0; i < o.nroutes; i++)
		import_free(im[i]);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(5000);
	for (unsigned i = 0; i < o.nroutes; i++)
		export_free(ex[i]);
	stats_destroy(&stats);
	return rc;
}
