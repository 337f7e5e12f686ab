/* conn.c - mqbridge's NATS connection (back-off, reconnects, logging) and its stream. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "stats.h"

/* Reconnect back-off: 100 ms doubling to 5 s, with the library's jitter. The
 * library calls reconnect_delay between attempts on each server; never 0, so
 * a server that refuses at once is not hammered. */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

const char *bridge_nats_error(natsStatus s, char *buf, size_t len)
{
	natsStatus last = NATS_OK;
	const char *text = nats_GetLastError(&last);
	if (text && *text && last == s)
		snprintf(buf, len, "%s (%s)", natsStatus_GetText(s), text);
	else
		snprintf(buf, len, "%s", natsStatus_GetText(s));
	return buf;
}

static int64_t backoff_ms(int attempts)
{
	int64_t d = BACKOFF_MIN_MS;
	for (int i = 1; i < attempts && d < BACKOFF_MAX_MS; i++)
		d *= 2;
	return d < BACKOFF_MAX_MS ? d : BACKOFF_MAX_MS;
}

static int64_t reconnect_delay(natsConnection *nc, int attempts, void *closure)
{
	(void)nc;
	(void)closure;
	return backoff_ms(attempts);
}

/* The callbacks' closure is the struct bridge_stats that counts them. */
static void on_disconnected(natsConnection *nc, void *closure)
{
	struct bridge_stats *st = closure;
	(void)nc;
	stats_count(&st->disconnects, 1);
	if (!atomic_load(&bridge_stopping))
		bridge_log("NATS: disconnected; reconnecting with back-off (%d ms to %d ms); "
		           "exports keep their leases, imports wait",
		           BACKOFF_MIN_MS, BACKOFF_MAX_MS);
}

static void on_reconnected(natsConnection *nc, void *closure)
{
	struct bridge_stats *st = closure;
	char url[256] = "", shown[256];
	stats_count(&st->reconnects, 1);
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	bridge_log("NATS: reconnected to %s", stats_strip_credentials(url, shown, sizeof(shown)));
}

static void on_closed(natsConnection *nc, void *closure)
{
	struct bridge_stats *st = closure;
	(void)nc;
	atomic_store(&st->closed, 1);
	if (!atomic_load(&bridge_stopping))
		bridge_log("NATS: connection closed");
}

static void on_async_error(natsConnection *nc, natsSubscription *sub, natsStatus err, void *closure)
{
	(void)nc;
	(void)sub;
	(void)closure;
	bridge_log("NATS: asynchronous error: %s", natsStatus_GetText(err));
}

int conn_up(natsConnection *nc)
{
	return natsConnection_Status(nc) == NATS_CONN_STATUS_CONNECTED;
}

/* make_options: natsOptions for O, its events counted in ST; NULL after
 * logging why. */
static natsOptions *make_options(const struct bridge_opts *o, struct bridge_stats *st)
{
	natsOptions *no = NULL;
	char why[512];
	natsStatus s = natsOptions_Create(&no);
	if (s == NATS_OK)
		s = natsOptions_SetURL(no, o->nats_url);
	if (s == NATS_OK)
		s = natsOptions_SetName(no, "mqbridge");
	/* Forever: leases wait for NATS, they are never dropped. */
	if (s == NATS_OK)
		s = natsOptions_SetMaxReconnect(no, -1);
	if (s == NATS_OK)
		s = natsOptions_SetCustomReconnectDelay(no, reconnect_delay, NULL);
	if (s == NATS_OK)
		s = natsOptions_SetTimeout(no, 2000);
	if (s == NATS_OK)
		s = natsOptions_SetDisconnectedCB(no, on_disconnected, st);
	if (s == NATS_OK)
		s = natsOptions_SetReconnectedCB(no, on_reconnected, st);
	if (s == NATS_OK)
		s = natsOptions_SetClosedCB(no, on_closed, st);
	if (s == NATS_OK)
		s = natsOptions_SetErrorHandler(no, on_async_error, NULL);
	if (s == NATS_OK && o->user[0])
		s = natsOptions_SetUserInfo(no, o->user, o->password);
	if (s == NATS_OK && o->creds[0]) {
		s = natsOptions_SetUserCredentialsFromFiles(no, o->creds, NULL);
		if (s != NATS_OK) {
			bridge_log("--creds %s: %s", o->creds,
			           bridge_nats_error(s, why, sizeof(why)));
			natsOptions_Destroy(no);
			return NULL;
		}
	}
	if (s == NATS_OK && o->tls_ca[0]) {
		s = natsOptions_SetSecure(no, true);
		if (s == NATS_OK)
			s = natsOptions_LoadCATrustedCertificates(no, o->tls_ca);
		if (s != NATS_OK) {
			bridge_log("--tls-ca %s: %s", o->tls_ca,
			           bridge_nats_error(s, why, sizeof(why)));
			natsOptions_Destroy(no);
			return NULL;
		}
	}
	if (s != NATS_OK) {
		bridge_log("--nats %s: %s", st->nats_url, /* without credentials */
		           bridge_nats_error(s, why, sizeof(why)));
		natsOptions_Destroy(no);
		return NULL;
	}
	return no;
}

natsConnection *conn_open(const struct bridge_opts *o, const void *sigs, struct bridge_stats *st)
{
	natsOptions *no = make_options(o, st);
	if (!no)
		return NULL;
	natsConnection *nc = NULL;
	char why[512];
	for (int attempt = 1;; attempt++) {
		natsStatus s = natsConnection_Connect(&nc, no);
		if (s == NATS_OK)
			break;
		/* Credentials are read once: refused, they never get better. A
		 * server that cannot be reached may come up: that is retried. */
		if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED) {
			bridge_log("NATS %s: the server refused our credentials: %s (check %s)",
			           st->nats_url, bridge_nats_error(s, why, sizeof(why)),
			           o->creds[0]  ? "--creds"
			           : o->user[0] ? "--user and --password"
			                        : "whether the server wants --user/--password "
			                          "or --creds");
			natsOptions_Destroy(no);
			return NULL;
		}
		int64_t wait = backoff_ms(attempt);
		char text[600];
		snprintf(text, sizeof(text), "cannot connect: %s",
		         bridge_nats_error(s, why, sizeof(why)));
		stats_error(&st->nats_last, text);
		bridge_log("NATS %s: %s; retrying in %lld ms", st->nats_url, text, (long long)wait);
		struct timespec ts = {wait / 1000, (wait % 1000) * 1000000L};
		int sig = sigtimedwait((const sigset_t *)sigs, NULL, &ts);
		if (sig > 0) {
			atomic_store(&bridge_stopping, 1);
			bridge_log("stopping on %s before connecting", strsignal(sig));
			natsOptions_Destroy(no);
			return NULL;
		}
	}
	natsOptions_Destroy(no); /* the connection keeps its own copy */
	atomic_store(&st->nc, nc);
	char url[256] = "", shown[256];
	natsConnection_GetConnectedUrl(nc, url, sizeof(url));
	bridge_log("NATS: connected to %s", stats_strip_credentials(url, shown, sizeof(shown)));
	return nc;
}

/* covers: whether stream subject PATTERN (maybe with wildcards) matches every
 * subject that SUBJECT (maybe with wildcards) matches. Token by token. */
static int covers(const char *pattern, const char *subject)
{
	const char *p = pattern, *s = subject;
	for (;;) {
		size_t pl = strcspn(p, "."), sl = strcspn(s, ".");
		if (pl == 1 && *p == '>')
			return 1;
		if (!(pl == 1 && *p == '*' && !(sl == 1 && *s == '>')) &&
		    (pl != sl || memcmp(p, s, pl)))
			return 0;
		p += pl;
		s += sl;
		if (!*p || !*s)
			return !*p && !*s;
		p++;
		s++;
	}
}

int conn_ensure_stream(jsCtx *js, const struct bridge_opts *o)
{
	jsStreamInfo *si = NULL;
	jsErrCode jerr = 0;
	char why[512];
	natsStatus s = js_GetStreamInfo(&si, js, o->stream, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		const char *subjects[BRIDGE_ROUTES_MAX];
		int n = 0;
		for (unsigned i = 0; i < o->nroutes; i++) {
			int dup = 0;
			for (int j = 0; j < n; j++)
				dup |= !strcmp(subjects[j], o->routes[i].subject);
			if (!dup)
				subjects[n++] = o->routes[i].subject;
		}
		jsStreamConfig cfg;
		jsStreamConfig_Init(&cfg);
		cfg.Name = o->stream;
		cfg.Subjects = subjects;
		cfg.SubjectsLen = n;
		cfg.Storage = js_FileStorage;
		cfg.Duplicates = (int64_t)BRIDGE_DUP_WINDOW_S * 1000000000LL;
		s = js_AddStream(&si, js, &cfg, NULL, &jerr);
		if (s != NATS_OK) {
			bridge_log("stream %s: cannot create it: %s (JetStream error %d); is "
			           "nats-server running with -js, do the subjects overlap another "
			           "stream's?",
			           o->stream, bridge_nats_error(s, why, sizeof(why)), (int)jerr);
			return -1;
		}
		bridge_log("stream %s: created (%d subjects, file storage, duplicate window %d s)",
		           o->stream, n, BRIDGE_DUP_WINDOW_S);
	} else if (s != NATS_OK) {
		bridge_log("stream %s: cannot look it up: %s (JetStream error %d); is JetStream "
		           "enabled on the server (nats-server -js)?",
		           o->stream, bridge_nats_error(s, why, sizeof(why)), (int)jerr);
		return -1;
	} else {
		jsStreamConfig *c = si->Config;
		bridge_log("stream %s: using it as it is (%" PRIu64 " messages, duplicate "
		           "window %lld s)",
		           o->stream, si->State.Msgs, (long long)(c->Duplicates / 1000000000LL));
		for (unsigned i = 0; i < o->nroutes; i++) {
			int ok = 0;
			for (int j = 0; j < c->SubjectsLen && !ok; j++)
				ok = covers(c->Subjects[j], o->routes[i].subject);
			if (!ok)
				bridge_log(
				        "stream %s: warning: its subjects do not cover %s (route "
				        "%s): %s",
				        o->stream, o->routes[i].subject, o->routes[i].queue,
				        o->routes[i].dir == ROUTE_EXPORT
				                ? "publishes will fail (no responders)"
				                : "the consumer cannot be created");
		}
		if (c->Duplicates < (int64_t)30 * 1000000000LL)
			bridge_log("stream %s: warning: duplicate window %lld ms: a bridge "
			           "restarted later than that may store a message twice",
			           o->stream, (long long)(c->Duplicates / 1000000));
	}
	jsStreamInfo_Destroy(si);
	return 0;
}
