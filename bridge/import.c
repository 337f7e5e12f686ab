/*
 * import.c - an import route: a durable JetStream pull consumer whose
 * messages are mq_send-ed to a local queue, and acked to JetStream only then.
 *
 * Delivery contract: at least once into the queue.
 *  - Nothing is lost: a message is acked to JetStream (natsMsg_Ack) only
 *    after mq_send returned 0, i.e. the message is whole in the queue
 *    (DESIGN.md, promise 2). Killed before the ack, or the ack lost on the
 *    way, JetStream delivers it again after AckWait (--ack-wait, 30 s): to this bridge
 *    restarted, under the same durable consumer, which remembers what was
 *    acked.
 *  - Duplicates, within one run: JetStream delivers a message again when
 *    our ack was lost, or when nats-server restarted and its consumer state
 *    was older than our acks (its file store writes that state behind: after
 *    a kill -9 of the server, it delivers again messages we acked, with
 *    NumDelivered 1). So the route remembers the stream sequences (and
 *    timestamps, so a stream made again does not match) it has put into the
 *    queue or terminated, the last SEEN_SLOTS of them direct-mapped: a
 *    message found there is acked again and not sent ("skipped" in the stop
 *    line). A slot overwritten by a newer sequence can only let a duplicate
 *    through, never drop a message.
 *  - Duplicates across runs: killed between mq_send and the server taking
 *    the ack, the restarted bridge gets the message again and sends it
 *    again (its memory is gone). Those are counted when JetStream says it
 *    delivered the message before (NumDelivered > 1, "redelivered").
 *    Exactly once would need that memory kept with the queue, written
 *    atomically with the message (a cursor of stream sequences committed):
 *    not done yet.
 *  - The queue full: mq_send waits (200 ms at a time, watching for a stop),
 *    telling JetStream the message is in progress every 10 s so it is not
 *    delivered again meanwhile; JetStream keeps everything else.
 *  - A message larger than the queue's max_msg_size can never be sent: it is
 *    logged, counted and terminated (natsMsg_Term: not delivered again), and
 *    the messages after it go on.
 *  - Stopping: the messages of the batch not yet sent are nak-ed, so a
 *    restarted bridge gets them at once rather than after AckWait.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bridge.h"
#include "libmq_admin.h"
#include "stats.h"

#define FETCH_TIMEOUT_MS 1000
#define LOG_EVERY_MS     5000
#define SEEN_SLOTS       32768 /* stream sequences remembered (power of two) */

/* struct seen: a stream message this run has put into the queue (or terminated). */
struct seen {
	uint64_t seq;
	int64_t ts; /* its stream timestamp: a stream made again reuses sequences */
};

struct import_route {
	struct route r;
	struct route_stats *st; /* counters, state, latency: the endpoints read them */
	natsConnection *nc;
	mq_t *q;
	uint64_t max_msg;
	jsCtx *js;
	natsSubscription *sub;
	char consumer[128];
	unsigned batch;
	unsigned ack_wait_s;    /* for a consumer we create */
	int64_t in_progress_ms; /* a third of the consumer's AckWait */
	pthread_t thread;
	int started;
	struct seen *seen; /* SEEN_SLOTS, indexed by seq */
	uint64_t fetch_errors;
};

static int isalnum_ascii(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

void import_consumer_name(const char *subject, const char *queue, char *out, size_t len)
{
	/* FNV-1a over "subject\0queue": two routes never share a consumer even
	 * when their readable parts below come out the same. */
	uint64_t h = 14695981039346656037ull;
	for (const char *p = subject;; p++) {
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
		if (!*p)
			break;
	}
	for (const char *p = queue; *p; p++)
		h = (h ^ (unsigned char)*p) * 1099511628211ull;
	char readable[64];
	size_t n = 0;
	for (const char *p = subject; *p && n < 24; p++)
		readable[n++] = (isalnum_ascii(*p) || *p == '-') ? *p : '_';
	readable[n++] = '_';
	for (const char *p = queue + 1; *p && n < 48; p++)
		readable[n++] = (isalnum_ascii(*p) || *p == '-') ? *p : '_';
	readable[n] = '\0';
	snprintf(out, len, "mqbridge_%s_%016" PRIx64, readable, h);
}

/* ensure_consumer: the durable pull consumer M->consumer on STREAM, created
 * if missing. Returns 0, or -1 after logging why. */
static int ensure_consumer(struct import_route *m, const char *stream)
{
	jsConsumerInfo *ci = NULL;
	jsErrCode jerr = 0;
	char why[512];
	natsStatus s = js_GetConsumerInfo(&ci, m->js, stream, m->consumer, NULL, &jerr);
	if (s == NATS_NOT_FOUND) {
		jsConsumerConfig cc;
		jsConsumerConfig_Init(&cc);
		cc.Durable = m->consumer;
		cc.Description = "mqbridge import";
		cc.AckPolicy = js_AckExplicit;
		cc.DeliverPolicy = js_DeliverAll;
		cc.FilterSubject = m->r.subject;
		cc.AckWait = (int64_t)m->ack_wait_s * 1000000000LL;
		s = js_AddConsumer(&ci, m->js, stream, &cc, NULL, &jerr);
		if (s != NATS_OK) {
			bridge_log("import %s -> %s: cannot create consumer %s on stream %s: %s "
			           "(JetStream error %d)",
			           m->r.subject, m->r.queue, m->consumer, stream,
			           bridge_nats_error(s, why, sizeof(why)), (int)jerr);
			return -1;
		}
		bridge_log("import %s -> %s: created durable consumer %s", m->r.subject, m->r.queue,
		           m->consumer);
	} else if (s != NATS_OK) {
		bridge_log("import %s -> %s: cannot look up consumer %s on stream %s: %s "
		           "(JetStream error %d)",
		           m->r.subject, m->r.queue, m->consumer, stream,
		           bridge_nats_error(s, why, sizeof(why)), (int)jerr);
		return -1;
	} else {
		bridge_log("import %s -> %s: resuming durable consumer %s (%" PRIu64
		           " messages pending)",
		           m->r.subject, m->r.queue, m->consumer, ci->NumPending);
	}
	/* While the queue is full, say "in progress" well before AckWait. */
	m->in_progress_ms = ci->Config->AckWait / 3000000;
	if (m->in_progress_ms < 100)
		m->in_progress_ms = 100;
	jsConsumerInfo_Destroy(ci);
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = m->consumer;
	s = js_PullSubscribe(&m->sub, m->js, m->r.subject, m->consumer, NULL, &so, &jerr);
	if (s != NATS_OK) {
		bridge_log("import %s -> %s: cannot subscribe to consumer %s: %s (JetStream "
		           "error %d)",
		           m->r.subject, m->r.queue, m->consumer,
		           bridge_nats_error(s, why, sizeof(why)), (int)jerr);
		return -1;
	}
	return 0;
}

/* deliver: mq_send MSG (fetched at FETCHED_US) into the queue (waiting while
 * it is full) and ack it. Returns 0, or -1 if stopping came first (MSG is
 * nak-ed then). */
static int deliver(struct import_route *m, natsMsg *msg, int64_t fetched_us)
{
	const char *data = natsMsg_GetData(msg);
	int len = natsMsg_GetDataLength(msg);
	jsMsgMetaData *meta = NULL;
	uint64_t seq = 0, delivered = 1;
	int64_t ts = 0;
	if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
		seq = meta->Sequence.Stream;
		delivered = meta->NumDelivered;
		ts = meta->Timestamp;
		jsMsgMetaData_Destroy(meta);
	}
	struct seen *slot = &m->seen[seq & (SEEN_SLOTS - 1)];
	if (seq && slot->seq == seq && slot->ts == ts) {
		/* In the queue already: only the ack was missing. */
		stats_count(&m->st->skipped, 1);
		natsMsg_Ack(msg, NULL);
		return 0;
	}
	if ((uint64_t)len > m->max_msg) {
		char why[256];
		snprintf(why, sizeof(why),
		         "stream message %" PRIu64 " is %d bytes, more than the queue's maximum of "
		         "%" PRIu64 ": terminated (not delivered again)",
		         seq, len, m->max_msg);
		stats_count(&m->st->terminated, 1);
		stats_count(&m->st->errors, 1);
		stats_error(&m->st->last, why);
		bridge_log("import %s -> %s: %s; %" PRIu64 " so far", m->r.subject, m->r.queue, why,
		           atomic_load(&m->st->terminated));
		natsMsg_Term(msg, NULL);
		*slot = (struct seen){seq, ts};
		return 0;
	}
	int64_t progress_at = bridge_now_ms() + m->in_progress_ms;
	int said_full = 0;
	for (;;) {
		if (mq_send(m->q, data, (size_t)len, 200) == 0)
			break;
		int e = errno;
		if (atomic_load(&bridge_stopping)) {
			natsMsg_Nak(msg, NULL);
			return -1;
		}
		if (e != ETIMEDOUT && e != EINTR && e != EAGAIN) {
			/* EPROTO (damaged) or worse: keep the message in JetStream. */
			char why[512];
			snprintf(why, sizeof(why), "mq_send failed: %s", mq_errdetail());
			stats_state(m->st, ROUTE_QUEUE_ERROR);
			stats_count(&m->st->errors, 1);
			stats_error(&m->st->last, why);
			bridge_log("import %s -> %s: %s; retrying in 1 s", m->r.subject, m->r.queue,
			           why);
			bridge_sleep_ms(1000);
		} else {
			stats_state(m->st, ROUTE_WAITING_ROOM);
			if (!said_full++)
				bridge_log("import %s -> %s: the queue is full; waiting (JetStream "
				           "keeps the messages)",
				           m->r.subject, m->r.queue);
		}
		if (bridge_now_ms() >= progress_at) {
			natsMsg_InProgress(msg, NULL);
			progress_at = bridge_now_ms() + m->in_progress_ms;
		}
	}
	*slot = (struct seen){seq, ts};
	natsMsg_Ack(msg, NULL);
	hist_record(&m->st->latency, (uint64_t)(bridge_now_us() - fetched_us));
	stats_state(m->st, ROUTE_RUNNING);
	stats_count(&m->st->forwarded, 1);
	if (delivered > 1)
		stats_count(&m->st->redelivered, 1);
	return 0;
}

/*
 * import_fetch: up to BATCH messages of SUB into LIST, waiting at most FETCH_TIMEOUT_MS
 * when none is available. Returns as natsSubscription_Fetch.
 *
 * libnats 3.4.1 (Debian 12) has a heap overflow in its fetch (fixed upstream
 * by nats.c commit 8099b5c9, "Fix heap buffer overflow in _fetch"): when it
 * finds k messages already pending in the subscription (late answers to an
 * earlier request) with batch/2 < k < batch, it asks the server for
 * batch - k more but keeps collecting until it holds batch - k, past the end
 * of its batch-sized array. We ask so that this cannot happen: with
 * messages pending, for exactly min(pending, batch) (pending only grows
 * under us, so the library finds them all and asks for nothing); with none,
 * a no-wait request (the server answers at once, with an end marker, so no
 * late answers follow); with nothing to fetch, a waiting request for one
 * message (k <= 1 = batch). Late answers can then come only after a request
 * that timed out on our side (NATS down), and at most that request's batch.
 */
natsStatus import_fetch(natsSubscription *sub, unsigned batch, natsMsgList *list)
{
	int pending = 0;
	jsFetchRequest req;
	jsFetchRequest_Init(&req);
	natsSubscription_GetPending(sub, &pending, NULL);
	req.Batch = pending > 0 && pending < (int)batch ? pending : (int)batch;
	req.NoWait = true;
	req.Expires = (int64_t)FETCH_TIMEOUT_MS * 1000000; /* how long we wait for the answer */
	natsStatus s = natsSubscription_FetchRequest(list, sub, &req);
	if ((s == NATS_NOT_FOUND || s == NATS_TIMEOUT) && list->Count == 0) {
		natsMsgList_Destroy(list);
		jsFetchRequest_Init(&req);
		req.Batch = 1;
		req.Expires = (int64_t)FETCH_TIMEOUT_MS * 1000000;
		s = natsSubscription_FetchRequest(list, sub, &req);
	}
	return s;
}

static void *import_thread(void *arg)
{
	struct import_route *m = arg;
	int64_t last_log = 0;
	unsigned errors_in_row = 0;
	while (!atomic_load(&bridge_stopping)) {
		/* NATS down: no fetch (it could only time out), the state says why. */
		if (!conn_up(m->nc)) {
			stats_state(m->st, ROUTE_WAITING_NATS);
			bridge_sleep_ms(100);
			continue;
		}
		natsMsgList list = {0};
		natsStatus s = import_fetch(m->sub, m->batch, &list);
		int64_t fetched_us = bridge_now_us();
		if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND) {
			char why[512], text[600];
			int64_t now = bridge_now_ms(), wait = 100;
			for (unsigned i = 0; i < errors_in_row && wait < 5000; i++)
				wait *= 2;
			wait = wait < 5000 ? wait : 5000;
			errors_in_row++;
			m->fetch_errors++;
			snprintf(text, sizeof(text), "fetch failed: %s",
			         bridge_nats_error(s, why, sizeof(why)));
			stats_state(m->st, conn_up(m->nc) ? ROUTE_BACKING_OFF : ROUTE_WAITING_NATS);
			stats_count(&m->st->errors, 1);
			stats_error(&m->st->last, text);
			if (now - last_log >= LOG_EVERY_MS) {
				bridge_log("import %s -> %s: %s; retrying in %lld ms", m->r.subject,
				           m->r.queue, text, (long long)wait);
				last_log = now;
			}
			natsMsgList_Destroy(&list);
			bridge_sleep_ms(wait);
			continue;
		}
		errors_in_row = 0;
		stats_state(m->st, ROUTE_RUNNING);
		int stopped = 0;
		for (int i = 0; i < list.Count; i++) {
			stats_in_flight(m->st, list.Count - i);
			if (stopped || atomic_load(&bridge_stopping)) {
				natsMsg_Nak(list.Msgs[i], NULL);
				stopped = 1;
				continue;
			}
			stopped = deliver(m, list.Msgs[i], fetched_us) < 0;
		}
		stats_in_flight(m->st, 0);
		natsMsgList_Destroy(&list);
	}
	return NULL;
}

struct import_route *import_start(const struct route *r, natsConnection *nc, const char *stream,
                                  unsigned batch, unsigned ack_wait_s, struct route_stats *rs)
{
	struct import_route *m = calloc(1, sizeof(*m));
	if (!m) {
		bridge_log("import %s: out of memory", r->subject);
		return NULL;
	}
	m->r = *r;
	m->st = rs;
	m->nc = nc;
	m->batch = batch;
	m->ack_wait_s = ack_wait_s;
	import_consumer_name(r->subject, r->queue, m->consumer, sizeof(m->consumer));
	m->seen = calloc(SEEN_SLOTS, sizeof(*m->seen));
	m->q = m->seen ? mq_attach(r->queue) : NULL;
	if (!m->q) {
		bridge_log("import %s -> %s: cannot attach to the queue: %s", r->subject, r->queue,
		           m->seen ? mq_errdetail() : "out of memory");
		goto fail;
	}
	mq_declare_role(m->q, MQ_ROLE_BRIDGE); /* its client entry says "bridge" */
	struct mq_stats st;
	mq_stats(m->q, &st);
	m->max_msg = st.max_msg_size;
	char why[512];
	natsStatus s = natsConnection_JetStream(&m->js, nc, NULL);
	if (s != NATS_OK) {
		bridge_log("import %s: no JetStream context: %s", r->subject,
		           bridge_nats_error(s, why, sizeof(why)));
		goto fail;
	}
	if (ensure_consumer(m, stream) < 0)
		goto fail;
	if (pthread_create(&m->thread, NULL, import_thread, m) != 0) {
		bridge_log("import %s: cannot start its thread", r->subject);
		goto fail;
	}
	m->started = 1;
	bridge_log("import %s -> %s: running (consumer %s, batches of %u)", r->subject, r->queue,
	           m->consumer, batch);
	return m;
fail:
	import_stop(m);
	import_free(m);
	return NULL;
}

void import_stop(struct import_route *m)
{
	if (m->started) {
		pthread_join(m->thread, NULL);
		m->started = 0;
		bridge_log("import %s -> %s: stopped: %" PRIu64 " imported (%" PRIu64
		           " delivered before by JetStream: possible duplicates), %" PRIu64
		           " skipped (delivered again, already in the queue), %" PRIu64
		           " oversized terminated, %" PRIu64 " fetch errors",
		           m->r.subject, m->r.queue, atomic_load(&m->st->forwarded),
		           atomic_load(&m->st->redelivered), atomic_load(&m->st->skipped),
		           atomic_load(&m->st->terminated), m->fetch_errors);
	}
	if (m->q)
		mq_detach(m->q);
	m->q = NULL;
	stats_state(m->st, ROUTE_STOPPED);
	stats_in_flight(m->st, 0);
}

void import_free(struct import_route *m)
{
	if (!m)
		return;
	/* Destroy, never unsubscribe: unsubscribing would delete the durable
	 * consumer if this subscription had created it. */
	if (m->sub)
		natsSubscription_Destroy(m->sub);
	if (m->js)
		jsCtx_Destroy(m->js);
	free(m->seen);
	free(m);
}
