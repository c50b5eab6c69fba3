/*
 * What the AWS sinks (sqs, eventbridge, dynamodb) do alike with a batch:
 * cut it into calls by entry count and bytes, fail at once the entries the
 * service would refuse, send each call through the plugin's client, and turn
 * its answer into one report per event:
 *  - a call refused for its content (an event fault naming no entry) is sent
 *    again one entry per call, so that only the entry at fault fails;
 *  - any other whole-call outcome (a target fault, throttling, 5xx) applies
 *    to every entry alike (evbus_aws_client_judge), with its Retry-After;
 *  - a 200 is read entry by entry by the plugin; accepted entries are
 *    reported DELIVERED, so that the host resends only the others.
 * It keeps the plugin's counters on the way: isolated_batches and the three
 * the plugin names (sent, refused, retried).
 *
 * Each plugin keeps only what is its own, in evbus_aws_sink_ops: how its
 * service sizes an entry, how a request is built, how a 200 answer is read.
 *
 * Threads and lifetimes: as the plugin's callbacks (the delivery thread). A
 * batch is the host's until its last report: nothing here touches a batch
 * after reporting its last event.
 */
#ifndef EVBUS_AWS_SINK_H
#define EVBUS_AWS_SINK_H

#include <stdbool.h>

#include "aws.h"

/* The most entries one call may carry (BatchWriteItem's 25). */
#define EVBUS_AWS_MAX_CALL_ENTRIES 25

typedef struct evbus_aws_sink evbus_aws_sink;

/* One call to the service: events idx[0..n) of batch b. */
typedef struct evbus_aws_call {
    evbus_aws_sink *sink;
    const evbus_batch *b;
    size_t n;
    size_t idx[EVBUS_AWS_MAX_CALL_ENTRIES];
    /* Entry k's encoded form, when the plugin made it while sizing it
     * (DynamoDB's items); empty otherwise. Freed once the request is built. */
    evbus_aws_buf encoded[EVBUS_AWS_MAX_CALL_ENTRIES];
    uint64_t bytes; /* the sizes of its entries, summed */
} evbus_aws_call;

/* One entry's outcome in a 200 answer. */
typedef struct evbus_aws_entry {
    evbus_aws_fault fault; /* OK, or how the service's code for it is classified */
    char reason[400];      /* "Code: Message" when not OK */
} evbus_aws_entry;

/* What sizing an entry gives. */
typedef enum evbus_aws_sized {
    EVBUS_AWS_SIZED_OK = 0,
    EVBUS_AWS_SIZED_REFUSED = 1, /* the service would refuse the event itself */
    EVBUS_AWS_SIZED_NOMEM = -1,
} evbus_aws_sized;

/* What a plugin tells the shared code. `plugin` is the pointer given to
 * evbus_aws_sink_init(). */
typedef struct evbus_aws_sink_ops {
    /* The plugin's counters: entries the service took, entries that failed
     * for themselves (dead-lettered), entries to be sent again. */
    const char *sent_counter, *refused_counter, *retried_counter;
    /* Sizes event e the way the service counts it against max_bytes, into
     * *size. May encode it into `encoded` (empty on entry; kept with the
     * call and freed once the request is built). REFUSED, with `why`
     * filled ("Code: what"), when the service would refuse the event
     * itself: it fails at once, before any call. Called again for an entry
     * sent on its own after its call was refused. */
    evbus_aws_sized (*size)(void *plugin, const evbus_sink_event *e, evbus_aws_buf *encoded,
                            uint64_t *size, char *why, size_t whylen);
    /* Optional: false when e must not join call c (DynamoDB: a key twice in
     * one BatchWriteItem). */
    bool (*fits)(void *plugin, const evbus_aws_call *c, const evbus_sink_event *e);
    /* Appends the request for call c to body and sets *target to its
     * X-Amz-Target (a static string). Returns 0, or -1 when out of memory. */
    int (*build)(void *plugin, const evbus_aws_call *c, evbus_aws_buf *body, const char **target);
    /* Reads a 200 answer (r->body) into res[0..c->n), in the call's order.
     * An entry the answer does not account for must not be OK. */
    void (*read)(void *plugin, const evbus_aws_call *c, const evbus_aws_result *r,
                 evbus_aws_entry *res);
    /* Optional: true when this whole-call event fault means the entries are
     * stored already (DynamoDB conditional mode's ConditionalCheckFailed):
     * they are DELIVERED and counted under already_counter. */
    bool (*already_there)(void *plugin, const evbus_aws_result *r);
    const char *already_counter;
} evbus_aws_sink_ops;

/* Filled by evbus_aws_sink_init(); the plugin may read every field. */
struct evbus_aws_sink {
    const evbus_host_api *api;
    evbus_host *host;
    evbus_aws_client *client;
    const evbus_aws_sink_ops *ops;
    void *plugin;
    size_t max_entries; /* per call, 1 .. EVBUS_AWS_MAX_CALL_ENTRIES */
    uint64_t max_bytes; /* summed entry sizes per call */
};

/*
 * Sets up `s` (storage owned by the caller, usually inside the plugin's
 * state) and creates its client for `svc` (evbus_aws_client_new: reads the
 * common keys, logs a bad one). `ops` must outlive the sink. Returns
 * EVBUS_OK; EVBUS_ECONFIG or EVBUS_ENOMEM from the client; EVBUS_EINVAL
 * when max_entries is 0 or above EVBUS_AWS_MAX_CALL_ENTRIES.
 */
evbus_err evbus_aws_sink_init(evbus_aws_sink *s, const evbus_host_api *api, evbus_host *host,
                              const evbus_aws_service *svc, const evbus_aws_sink_ops *ops,
                              void *plugin, size_t max_entries, uint64_t max_bytes);

/*
 * Delivers batch b: sizes every event (refused ones are reported FAILED at
 * once, counted under refused_counter), cuts the rest into calls of at most
 * max_entries and max_bytes, and sends them; every event gets exactly one
 * report, now or when its call's answer is in. Returns EVBUS_OK;
 * EVBUS_EINVAL for more than 1024 events; EVBUS_ENOMEM before anything was
 * reported or sent (the host retries the batch).
 */
evbus_err evbus_aws_sink_submit(evbus_aws_sink *s, const evbus_batch *b);

/* Frees the calls still open (the host has taken their transfers back, so
 * their answers never come) and the client. Accepts a sink whose init
 * failed or never ran (zeroed). */
void evbus_aws_sink_shutdown(evbus_aws_sink *s);

#endif
