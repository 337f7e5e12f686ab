/*
 * export.c - an export route: lease each message of a local queue, publish it
 * to JetStream, ack the lease only after JetStream's publish ack.
 *
 * One thread per route leases messages (mq_peek: zero copy, the bytes stay
 * put until ack or nack), publishes each with js_PublishMsgAsync and message
 * id "<queue_id>-<lease.id>" (queue_id: 16 hex digits, the random identity of
 * this creation of the queue, from mq_inspect; lease.id: the message's id,
 * unique for the queue's life and the same on every delivery), and keeps at
 * most `window` publishes awaiting their ack in a table (inflight.c) keyed
 * by the published natsMsg, which the library hands back to on_ack.
 * The library calls on_ack (in its own thread) for each: a positive PubAck
 * acks the lease (mq_ack); an error or a timeout (MaxWait) nacks it (mq_nack),
 * so it is delivered again, ahead of newer messages, and published again
 * under the same id; the route backs off meanwhile.
 *
 * Crash contract (the bridge may be SIGKILLed at any instruction; the stream
 * is JetStream with a duplicate window, BRIDGE_DUP_WINDOW_S when we create it):
 *  - Nothing is lost. A message leaves the local queue only through mq_ack,
 *    and mq_ack is called only in on_ack with a positive PubAck for that
 *    message's id: JetStream has stored it (or had it already, Duplicate).
 *    Every other path ends in mq_nack (publish refused, error, timeout) or in
 *    the lease staying held: until the bridge dies or detaches, then libmq
 *    delivers it again (its liveness lock tells; DESIGN.md, promise 3).
 *  - The stream holds each message once. A message is published more than
 *    once only after it was delivered again: after a nack, or after the
 *    bridge died holding it. Every delivery carries the same lease.id, and
 *    the queue's queue_id does not change while the queue exists, so every
 *    publish of it carries the same Nats-Msg-Id; JetStream drops a publish
 *    whose id it stored within the duplicate window (answering Duplicate,
 *    which we ack like a new one). Two messages never share an id: lease ids
 *    are unique in one queue, and queue ids are random 64-bit per queue
 *    creation (a queue removed and made again gets a new one).
 *  - Killed between JetStream storing a message and our mq_ack: the lease
 *    comes back, is published again, is dropped as a duplicate, and is acked
 *    then. Killed after mq_ack: the message is retired, and stored.
 *  - The window: the duplicate window must outlast the time from the first
 *    publish of a message to its last republish (a bridge down longer than
 *    that, holding leases, may store a message twice: mqbridge warns at start
 *    when an existing stream's window is under 30 s). The queue's messages
 *    are not affected: they wait, leased or queued, however long NATS is gone.
 *  - on_ack and the route thread share the table under `mu`; on_ack takes
 *    the lease out of the table before acking it, so a lease is acked or
 *    nacked once. After export_stop detached the queue (giving back what is
 *    still leased), `closed` makes a late on_ack touch nothing.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bridge.h"
#include "inflight.h"
#include "libmq_admin.h"
#include "stats.h"

#define PUBLISH_MAX_WAIT_MS 10000 /* no PubAck by then: nack, publish again */
#define BACKOFF_MIN_MS      100
#define BACKOFF_MAX_MS      5000
#define LOG_EVERY_MS        5000 /* repeated errors: one line at most this often */

struct export_route {
	struct route r;
	struct route_stats *st; /* counters, state, latency: the endpoints read them */
	mq_t *q;
	uint64_t queue_id;
	natsConnection *nc;
	jsCtx *js;
	pthread_t thread;
	int started;

	pthread_mutex_t mu;           /* guards everything below */
	pthread_cond_t cv;            /* a quarter of the window is free, or an error */
	struct inflight_table window; /* published, awaiting the PubAck */
	int closed;                   /* the queue is detached: on_ack only frees */
	int64_t pause_until_ms;       /* back off after an error until then */
	unsigned errors_in_row;
	int64_t last_log_ms;
	uint64_t suppressed;

	/* The route thread's own: whether NATS was connected when it last
	 * looked (conn_up takes the connection's mutex: once a millisecond,
	 * not once a message). */
	int64_t up_checked_ms;
	int up;
};

/* route_error: count an error (the last one kept for /status), back off, log
 * it (at most every LOG_EVERY_MS). Called with mu held. */
__attribute__((format(printf, 2, 3))) static void route_error(struct export_route *e,
                                                              const char *fmt, ...)
{
	int64_t now = bridge_now_ms();
	int64_t wait = BACKOFF_MIN_MS;
	for (unsigned i = 0; i < e->errors_in_row && wait < BACKOFF_MAX_MS; i++)
		wait *= 2;
	if (wait > BACKOFF_MAX_MS)
		wait = BACKOFF_MAX_MS;
	e->errors_in_row++;
	e->pause_until_ms = now + wait;
	char text[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	stats_count(&e->st->errors, 1);
	stats_error(&e->st->last, text);
	if (e->last_log_ms && now - e->last_log_ms < LOG_EVERY_MS) {
		e->suppressed++;
		return;
	}
	bridge_log("export %s -> %s: %s; the message stays in the queue and is published "
	           "again in %lld ms%s",
	           e->r.queue, e->r.subject, text, (long long)wait,
	           e->suppressed ? " (more errors since the last line)" : "");
	e->suppressed = 0;
	e->last_log_ms = now;
}

/* settle: ack (OK) or nack the lease, retrying an interrupted call. With mu held. */
static void settle(struct export_route *e, const mq_lease_t *lease, int ok)
{
	int rc;
	do
		rc = ok ? mq_ack(e->q, lease) : mq_nack(e->q, lease);
	while (rc < 0 && errno == EINTR);
	if (rc < 0)
		bridge_log("export %s: mq_%s of message %" PRIu64 " failed: %s", e->r.queue,
		           ok ? "ack" : "nack", lease->id, mq_errdetail());
}

/* on_ack: JetStream's answer (or the library's timeout) for one publish; in
 * the library's thread. Acks the lease only for a positive PubAck. */
static void on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae, void *closure)
{
	struct export_route *e = closure;
	(void)js;
	mq_lease_t lease;
	int64_t published_us;
	/* The table is keyed by the natsMsg's address: the library hands back
	 * the message it was given (nats.h), alive until we destroy it below,
	 * so no other publish in flight has that address. Should it ever hand
	 * back another object, the message id finds the lease (a scan). */
	uint64_t key = (uintptr_t)msg;
	const char *msgid = NULL;
	pthread_mutex_lock(&e->mu);
	int found = !e->closed && inflight_take(&e->window, key, &lease, &published_us) == 0;
	if (!found && !e->closed && natsMsgHeader_Get(msg, "Nats-Msg-Id", &msgid) == NATS_OK &&
	    msgid && strchr(msgid, '-') &&
	    inflight_find_lease(&e->window, strtoull(strchr(msgid, '-') + 1, NULL, 10), &key) == 0)
		found = inflight_take(&e->window, key, &lease, &published_us) == 0;
	if (found) {
		stats_in_flight(e->st, e->window.count);
		if (pa) {
			settle(e, &lease, 1);
			hist_record(&e->st->latency, (uint64_t)(bridge_now_us() - published_us));
			stats_count(&e->st->forwarded, 1);
			if (pa->Duplicate)
				stats_count(&e->st->duplicates, 1);
			e->errors_in_row = 0;
		} else {
			/* The library's text repeats the status for a timeout. */
			const char *st = natsStatus_GetText(pae ? pae->Err : NATS_ERR);
			const char *text = pae && pae->ErrText && strcmp(pae->ErrText, st)
			                           ? pae->ErrText
			                           : NULL;
			char idtext[64];
			snprintf(idtext, sizeof(idtext), "%016" PRIx64 "-%" PRIu64, e->queue_id,
			         lease.id);
			settle(e, &lease, 0);
			stats_count(&e->st->republished, 1);
			route_error(e, "publish of message %s failed: %s%s%s (JetStream error %d)",
			            idtext, st, text ? ": " : "", text ? text : "",
			            pae ? (int)pae->ErrCode : 0);
		}
		/* Wake the route thread (waiting on a full window) only once a
		 * quarter of the window is free, or on an error: it then publishes
		 * that many in one go instead of one per wake-up (bench/README.md). */
		if (!pa || e->window.count <= e->window.window - e->window.window / 4)
			pthread_cond_signal(&e->cv);
	}
	pthread_mutex_unlock(&e->mu);
	natsMsg_Destroy(msg);
}

/* wait_room: wait until the window has room, NATS is up and no back-off is
 * pending. Returns 0, or -1 once stopping. */
static int wait_room(struct export_route *e, natsConnection *nc)
{
	int said_down = 0;
	for (;;) {
		if (atomic_load(&bridge_stopping))
			return -1;
		pthread_mutex_lock(&e->mu);
		int64_t pause = e->pause_until_ms - bridge_now_ms();
		int full = e->window.count >= e->window.window;
		if (full) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts); /* cv waits on it */
			ts.tv_nsec += 100 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&e->cv, &e->mu, &ts);
		}
		pthread_mutex_unlock(&e->mu);
		if (full)
			continue;
		if (pause > 0) {
			stats_state(e->st, ROUTE_BACKING_OFF);
			bridge_sleep_ms(pause < 100 ? pause : 100);
			continue;
		}
		int64_t now = bridge_now_ms();
		if (now != e->up_checked_ms) {
			e->up = conn_up(nc);
			e->up_checked_ms = now;
		}
		if (!e->up) {
			stats_state(e->st, ROUTE_WAITING_NATS);
			if (!said_down++)
				bridge_log("export %s -> %s: waiting for NATS", e->r.queue,
				           e->r.subject);
			bridge_sleep_ms(100);
			continue;
		}
		stats_state(e->st, ROUTE_RUNNING);
		return 0;
	}
}

/* publish: send the leased message (DATA, LEN) with its id; on a refusal the
 * lease is nacked at once. */
static void publish(struct export_route *e, const mq_lease_t *lease, const void *data, size_t len)
{
	char msgid[64];
	snprintf(msgid, sizeof(msgid), "%016" PRIx64 "-%" PRIu64, e->queue_id, lease->id);
	natsMsg *m = NULL;
	natsStatus s = natsMsg_Create(&m, e->r.subject, NULL, data, (int)len);
	uint64_t key = (uintptr_t)m; /* on_ack gets M back (0: not created, refused below) */
	/* In the table before publishing: the ack may come before we return. */
	pthread_mutex_lock(&e->mu);
	int put = inflight_put(&e->window, key, lease, bridge_now_us()); /* wait_room made room */
	stats_in_flight(e->st, e->window.count);
	pthread_mutex_unlock(&e->mu);
	if (put < 0) {
		bridge_log("export %s: message %s: cannot track it (%s); given back", e->r.queue,
		           msgid, strerror(errno));
		natsMsg_Destroy(m);
		pthread_mutex_lock(&e->mu);
		settle(e, lease, 0);
		pthread_mutex_unlock(&e->mu);
		return;
	}
	if (s == NATS_OK) {
		jsPubOptions po;
		jsPubOptions_Init(&po);
		po.MsgId = msgid;
		po.MaxWait = PUBLISH_MAX_WAIT_MS;
		s = js_PublishMsgAsync(e->js, &m, &po);
	}
	natsMsg_Destroy(m); /* NULL if the library took it */
	if (s == NATS_OK)
		return;
	char why[512];
	bridge_nats_error(s, why, sizeof(why));
	mq_lease_t held;
	pthread_mutex_lock(&e->mu);
	if (inflight_take(&e->window, key, &held, NULL) == 0) { /* else on_ack settled it */
		stats_in_flight(e->st, e->window.count);
		settle(e, lease, 0);
		stats_count(&e->st->republished, 1);
		route_error(e, "cannot publish message %s (%zu bytes): %s", msgid, len, why);
	}
	pthread_mutex_unlock(&e->mu);
}

static void *export_thread(void *arg)
{
	struct export_route *e = arg;
	int64_t last_queue_log = 0;
	while (wait_room(e, e->nc) == 0) {
		mq_lease_t lease;
		size_t len;
		const void *data = mq_peek(e->q, &len, 200, &lease);
		if (!data) {
			if (errno == ETIMEDOUT || errno == EAGAIN || errno == EINTR)
				continue;
			int64_t now = bridge_now_ms();
			char why[512];
			snprintf(why, sizeof(why), "cannot take a message: %s", mq_errdetail());
			stats_state(e->st, ROUTE_QUEUE_ERROR);
			stats_count(&e->st->errors, 1);
			stats_error(&e->st->last, why);
			if (now - last_queue_log >= LOG_EVERY_MS) {
				bridge_log("export %s: %s", e->r.queue, why);
				last_queue_log = now;
			}
			bridge_sleep_ms(1000);
			continue;
		}
		publish(e, &lease, data, len);
	}
	return NULL;
}

struct export_route *export_start(const struct route *r, natsConnection *nc, unsigned window,
                                  struct route_stats *st)
{
	struct export_route *e = calloc(1, sizeof(*e));
	if (!e) {
		bridge_log("export %s: out of memory", r->queue);
		return NULL;
	}
	e->r = *r;
	e->st = st;
	e->nc = nc;
	int room = inflight_init(&e->window, window);
	pthread_mutex_init(&e->mu, NULL);
	/* Waits measured on CLOCK_MONOTONIC: a clock set back does not stretch them. */
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&e->cv, &ca);
	pthread_condattr_destroy(&ca);
	e->q = room == 0 ? mq_attach(r->queue) : NULL;
	if (!e->q) {
		bridge_log("export %s -> %s: cannot attach to the queue: %s", r->queue, r->subject,
		           room == 0 ? mq_errdetail() : "out of memory");
		goto fail;
	}
	mq_declare_role(e->q, MQ_ROLE_BRIDGE); /* its client entry says "bridge" */
	struct mq_inspection in;
	if (mq_inspect(e->q, &in) < 0) {
		bridge_log("export %s: cannot read the queue's identity: %s", r->queue,
		           mq_errdetail());
		goto fail;
	}
	e->queue_id = in.queue_id;
	/* A message the server cannot take stays leased and is retried, backing
	 * off, for ever (it is never dropped): say so now rather than then. The
	 * headers (the message id) take about 60 bytes of max_payload. */
	int64_t max_payload = natsConnection_GetMaxPayload(nc);
	if (max_payload > 0 && in.max_msg_size + 64 > (uint64_t)max_payload)
		bridge_log("export %s -> %s: warning: the queue takes messages of up to %" PRIu64
		           " bytes, the NATS server at most %lld (max_payload): a larger message "
		           "would stop this route until max_payload is raised",
		           r->queue, r->subject, in.max_msg_size, (long long)max_payload);
	jsOptions jo;
	jsOptions_Init(&jo);
	jo.PublishAsync.AckHandler = on_ack;
	jo.PublishAsync.AckHandlerClosure = e;
	char why[512];
	natsStatus s = natsConnection_JetStream(&e->js, nc, &jo);
	if (s != NATS_OK) {
		bridge_log("export %s: no JetStream context: %s", r->queue,
		           bridge_nats_error(s, why, sizeof(why)));
		goto fail;
	}
	if (pthread_create(&e->thread, NULL, export_thread, e) != 0) {
		bridge_log("export %s: cannot start its thread", r->queue);
		goto fail;
	}
	e->started = 1;
	bridge_log("export %s -> %s: running (queue id %016" PRIx64 ", window %u)", r->queue,
	           r->subject, e->queue_id, window);
	return e;
fail:
	export_stop(e, 0);
	export_free(e);
	return NULL;
}

void export_stop(struct export_route *e, int grace_ms)
{
	if (e->started) {
		pthread_join(e->thread, NULL);
		e->started = 0;
	}
	/* Let the publishes in flight be acked; what is left goes back. */
	int64_t deadline = bridge_now_ms() + grace_ms;
	pthread_mutex_lock(&e->mu);
	while (e->window.count && bridge_now_ms() < deadline) {
		pthread_mutex_unlock(&e->mu);
		bridge_sleep_raw_ms(10);
		pthread_mutex_lock(&e->mu);
	}
	unsigned left = e->window.count;
	e->closed = 1;
	stats_state(e->st, ROUTE_STOPPED);
	stats_in_flight(e->st, 0);
	if (e->q)
		mq_detach(e->q); /* gives back what is still leased */
	e->q = NULL;
	pthread_mutex_unlock(&e->mu);
	/* Safe with an on_ack running (nats.h); E itself outlives it. */
	if (e->js)
		jsCtx_Destroy(e->js);
	e->js = NULL;
	if (e->queue_id)
		bridge_log("export %s -> %s: stopped: %" PRIu64 " forwarded (%" PRIu64
		           " already in the stream), %" PRIu64 " publish errors, %u given back "
		           "unacknowledged",
		           e->r.queue, e->r.subject, atomic_load(&e->st->forwarded),
		           atomic_load(&e->st->duplicates), atomic_load(&e->st->republished), left);
}

void export_free(struct export_route *e)
{
	if (!e)
		return;
	pthread_mutex_destroy(&e->mu);
	pthread_cond_destroy(&e->cv);
	inflight_free(&e->window);
	free(e);
}
