/* prog_fetch.c - import_fetch against a real nats-server with late answers pending: the case
 * where libnats 3.4.1's own fetch overflows its array. Run by tests/bridge/fetch.sh. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bridge.h"

#define TOTAL    300
#define BATCH    64
#define STRAGGLE 48 /* pending before the fetch: BATCH/2 < 48 < BATCH */

static void check(natsStatus s, const char *what)
{
	if (s != NATS_OK) {
		fprintf(stderr, "FAIL: prog_fetch: %s: %s\n", what, natsStatus_GetText(s));
		nats_PrintLastErrorStack(stderr);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2) {
		fprintf(stderr, "usage: prog_fetch NATS_URL\n");
		return 2;
	}
	char stream[64], subject[64], next[256];
	snprintf(stream, sizeof(stream), "FETCH%d", (int)getpid());
	snprintf(subject, sizeof(subject), "fetch.%d", (int)getpid());
	natsConnection *nc = NULL;
	jsCtx *js = NULL;
	check(natsConnection_ConnectTo(&nc, argv[1]), "connect");
	check(natsConnection_JetStream(&js, nc, NULL), "JetStream context");
	jsStreamConfig sc;
	jsStreamConfig_Init(&sc);
	sc.Name = stream;
	sc.Subjects = (const char *[1]){subject};
	sc.SubjectsLen = 1;
	sc.Storage = js_MemoryStorage;
	check(js_AddStream(NULL, js, &sc, NULL, NULL), "add stream");
	for (int i = 0; i < TOTAL; i++)
		check(js_PublishAsync(js, subject, &i, sizeof(i), NULL), "publish");
	check(js_PublishAsyncComplete(js, NULL), "publish complete");

	jsConsumerConfig cc;
	jsConsumerConfig_Init(&cc);
	cc.Durable = "fetchtest";
	cc.AckPolicy = js_AckExplicit;
	check(js_AddConsumer(NULL, js, stream, &cc, NULL, NULL), "add consumer");
	jsSubOptions so;
	jsSubOptions_Init(&so);
	so.Stream = stream;
	so.Consumer = "fetchtest";
	natsSubscription *sub = NULL;
	check(js_PullSubscribe(&sub, js, subject, "fetchtest", NULL, &so, NULL), "pull subscribe");

	/* Late answers: a pull request of our own to the subscription's inbox,
	 * as one left behind by a fetch that gave up (NATS down, a timeout). */
	snprintf(next, sizeof(next), "$JS.API.CONSUMER.MSG.NEXT.%s.fetchtest", stream);
	char req[64];
	snprintf(req, sizeof(req), "{\"batch\":%d,\"no_wait\":true}", STRAGGLE);
	check(natsConnection_PublishRequestString(nc, next, natsSubscription_GetSubject(sub), req),
	      "pull request");
	int pending = 0;
	for (int i = 0; i < 200 && pending < STRAGGLE; i++) {
		usleep(10000);
		natsSubscription_GetPending(sub, &pending, NULL);
	}
	if (pending != STRAGGLE) {
		fprintf(stderr, "FAIL: prog_fetch: %d messages pending, want %d\n", pending,
		        STRAGGLE);
		return 1;
	}

	static int seen[TOTAL];
	int total = 0, first = -1, rounds = 0;
	while (total < TOTAL && rounds++ < 100) {
		natsMsgList list = {0};
		natsStatus s = import_fetch(sub, BATCH, &list);
		if (s != NATS_OK && s != NATS_TIMEOUT && s != NATS_NOT_FOUND)
			check(s, "import_fetch");
		if (list.Count > BATCH) {
			fprintf(stderr, "FAIL: prog_fetch: %d messages for a batch of %d\n",
			        list.Count, BATCH);
			return 1;
		}
		if (first < 0)
			first = list.Count;
		for (int i = 0; i < list.Count; i++) {
			int v;
			memcpy(&v, natsMsg_GetData(list.Msgs[i]), sizeof(v));
			if (v < 0 || v >= TOTAL || seen[v]++) {
				fprintf(stderr, "FAIL: prog_fetch: message %d twice or foreign\n",
				        v);
				return 1;
			}
			natsMsg_Ack(list.Msgs[i], NULL);
			total++;
		}
		natsMsgList_Destroy(&list);
	}
	if (total != TOTAL || first != STRAGGLE) {
		fprintf(stderr,
		        "FAIL: prog_fetch: %d of %d messages, the first fetch gave %d (want %d)\n",
		        total, TOTAL, first, STRAGGLE);
		return 1;
	}
	printf("prog_fetch: %d messages pending before the first fetch (batch %d): it returned "
	       "them; all %d fetched once in %d fetches\n",
	       STRAGGLE, BATCH, TOTAL, rounds);
	natsSubscription_Destroy(sub);
	js_DeleteStream(js, stream, NULL, NULL);
	jsCtx_Destroy(js);
	natsConnection_Destroy(nc);
	nats_CloseAndWait(2000);
	return 0;
}
