/* teststatus.h - the /status document's fixed keys, for the tests that check it
 * (test_render.c renders it, test_http.c fetches it over HTTP). */
#ifndef MQ_TESTSTATUS_H
#define MQ_TESTSTATUS_H

#include <stddef.h>

/* The keys DESIGN.md fixes for one element of "queues" (more may be added,
 * none renamed). */
static const char *const status_queue_keys[] = {
        "name",
        "capacity",
        "max_msg_size",
        "depth",
        "high_water",
        "enqueued_total",
        "dequeued_total",
        "bytes_enqueued_total",
        "bytes_dequeued_total",
        "blocked_sends_total",
        "blocked_recvs_total",
        "recoveries_total",
        "rates",
        "producers",
        "consumers",
        "clients",
};
#define STATUS_QUEUE_KEYS (sizeof(status_queue_keys) / sizeof(status_queue_keys[0]))

#endif /* MQ_TESTSTATUS_H */
