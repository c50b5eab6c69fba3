/* The DynamoDB sink: descriptor, configuration, and the delivery of one
 * batch as PutItem calls (conditional mode, one per event) or BatchWriteItem
 * calls of up to 25 items (batch mode). Items are built by
 * dynamodb_item.c, requests by dynamodb_request.c, answers read by
 * dynamodb_response.c; credentials, signing and error classes come from
 * plugins/aws. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamodb.h"

#define DDB_PLUGIN_VERSION "0.1.0"
#define DDB_MAX_REQUEST    16777216

typedef struct ddb {
    const evbus_host_api *api;
    evbus_host *host;
    evbus_aws_client *aws;
    ddb_opts o;
} ddb;

/* One PutItem or BatchWriteItem call: which events of the batch it
 * carries, and their items until the request is built. */
typedef struct call {
    ddb *d;
    const evbus_batch *b;
    size_t idx[DDB_BATCH_MAX];
    evbus_aws_buf items[DDB_BATCH_MAX];
    size_t n, bytes;
} call;

static void call_free(call *c) {
    for (size_t k = 0; k < c->n; k++)
        evbus_aws_buf_free(&c->items[k]);
    free(c);
}

/* Attribute names the item writes itself: the key and the expiry must not
 * take one of them. */
static const char *const envelope_names[] = {"source",  "detail-type", "time",  "region",
                                             "account", "resources",   "detail"};

static bool is_envelope_name(const char *s) {
    for (size_t i = 0; i < sizeof envelope_names / sizeof envelope_names[0]; i++)
        if (strcmp(s, envelope_names[i]) == 0)
            return true;
    return false;
}

static evbus_err ddb_init(const evbus_host_api *api, evbus_host *host, void **out) {
    ddb *d = calloc(1, sizeof *d);
    if (!d)
        return EVBUS_ENOMEM;
    *out = d;
    d->api = api;
    d->host = host;
    const char *mode = "conditional";
    d->o.key = "id";
    d->o.max_request_bytes = DDB_MAX_REQUEST;
    if (api->config_string(host, "table", &d->o.table) != EVBUS_OK || !*d->o.table) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "table is required");
        return EVBUS_ECONFIG;
    }
    api->config_string(host, "key", &d->o.key);
    api->config_string(host, "mode", &mode);
    api->config_number(host, "max_request_bytes", &d->o.max_request_bytes);
    bool has_ttl_attr =
        api->config_string(host, "ttl_attribute", &d->o.ttl_attribute) == EVBUS_OK &&
        *d->o.ttl_attribute;
    bool has_ttl = api->config_number(host, "ttl", &d->o.ttl_ms) == EVBUS_OK;
    if (!has_ttl_attr)
        d->o.ttl_attribute = NULL;
    if (strcmp(mode, "conditional") == 0) {
        d->o.mode = DDB_CONDITIONAL;
    } else if (strcmp(mode, "batch") == 0) {
        d->o.mode = DDB_BATCH;
    } else {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "mode is '%s'; it takes conditional or batch", mode);
        return EVBUS_ECONFIG;
    }
    if (!*d->o.key || is_envelope_name(d->o.key)) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR,
                 "key '%s' is empty or names an attribute the item holds already (source, "
                 "detail-type, time, region, account, resources, detail): choose another",
                 d->o.key);
        return EVBUS_ECONFIG;
    }
    if (has_ttl_attr != has_ttl) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR,
                 "ttl_attribute and ttl go together: set both (the attribute the table's TTL "
                 "reads, and how long an item lives) or neither");
        return EVBUS_ECONFIG;
    }
    if (has_ttl_attr && (is_envelope_name(d->o.ttl_attribute) ||
                         strcmp(d->o.ttl_attribute, d->o.key) == 0 || d->o.ttl_ms < 1000)) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR,
                 "ttl_attribute '%s' names an attribute the item holds already, or ttl is under "
                 "1s",
                 d->o.ttl_attribute);
        return EVBUS_ECONFIG;
    }
    if (d->o.max_request_bytes < 1048576 || d->o.max_request_bytes > DDB_MAX_REQUEST) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR,
                 "max_request_bytes is %llu; DynamoDB takes 1 MiB to 16 MiB (16777216)",
                 (unsigned long long)d->o.max_request_bytes);
        return EVBUS_ECONFIG;
    }
    return evbus_aws_client_new(api, host, &evbus_aws_dynamodb, &d->aws);
}

static void send_call(call *c);

/* The whole BatchWriteItem was refused because of one of its items
 * (DynamoDB does not say which): write each on its own, so that only the
 * one it refuses is dead-lettered. */
static void isolate(call *c) {
    for (size_t k = 0; k < c->n; k++) {
        call *one = calloc(1, sizeof *one);
        if (!one) {
            c->d->api->report(c->d->host, c->b, c->idx[k], EVBUS_RESULT_RETRY, 0, "out of memory");
            continue;
        }
        *one = (call){.d = c->d, .b = c->b, .idx = {c->idx[k]}, .n = 1};
        char why[600];
        size_t size;
        ddb_conv rc =
            ddb_item(&c->d->o, &c->b->events[c->idx[k]], &one->items[0], &size, why, sizeof why);
        if (rc != DDB_CONV_OK) { /* it was built once: only memory can fail now */
            c->d->api->report(c->d->host, c->b, c->idx[k], EVBUS_RESULT_RETRY, 0, "out of memory");
            call_free(one);
            continue;
        }
        send_call(one);
    }
}

static void on_answer(void *arg, const evbus_aws_result *r) {
    call *c = arg;
    ddb *d = c->d;
    const evbus_host_api *api = d->api;
    char reason[700];
    if (r->fault == EVBUS_AWS_EVENT_FAULT && d->o.mode == DDB_CONDITIONAL &&
        strcmp(r->code, "ConditionalCheckFailedException") == 0) {
        /* The item is there: an earlier delivery of this event wrote it. */
        evbus_aws_result ok = *r;
        ok.fault = EVBUS_AWS_OK;
        evbus_aws_client_judge(d->aws, &ok, reason, sizeof reason);
        api->counter_add(d->host, "items_already_present", 1);
        api->report(d->host, c->b, c->idx[0], EVBUS_RESULT_DELIVERED, 0, "");
        free(c);
        return;
    }
    if (r->fault == EVBUS_AWS_EVENT_FAULT && c->n > 1) {
        api->counter_add(d->host, "isolated_batches", 1);
        isolate(c);
        free(c);
        return;
    }
    evbus_result whole = evbus_aws_client_judge(d->aws, r, reason, sizeof reason);
    if (r->fault != EVBUS_AWS_OK) {
        if (whole == EVBUS_RESULT_FAILED)
            api->counter_add(d->host, "items_refused", c->n);
        for (size_t k = 0; k < c->n; k++)
            api->report(d->host, c->b, c->idx[k], whole, r->retry_after_ms, reason);
        free(c);
        return;
    }
    bool unprocessed[DDB_BATCH_MAX] = {false};
    if (d->o.mode == DDB_BATCH) {
        const char *ids[DDB_BATCH_MAX];
        for (size_t k = 0; k < c->n; k++)
            ids[k] = c->b->events[c->idx[k]].id;
        ddb_read_batch_response(&d->o, r->body, r->body_len, ids, c->n, unprocessed);
    }
    uint64_t retried = 0;
    for (size_t k = 0; k < c->n; k++)
        retried += unprocessed[k];
    api->counter_add(d->host, "items_written", c->n - retried);
    if (retried)
        api->counter_add(d->host, "items_unprocessed", retried);
    /* The last report may release the batch: nothing touches c->b after. */
    for (size_t k = 0; k < c->n; k++)
        api->report(d->host, c->b, c->idx[k],
                    unprocessed[k] ? EVBUS_RESULT_RETRY : EVBUS_RESULT_DELIVERED, 0,
                    unprocessed[k] ? "UnprocessedItems: DynamoDB did not write the item "
                                     "(throughput or internal limits); retried with backoff"
                                   : "");
    free(c);
}

static void send_call(call *c) {
    ddb *d = c->d;
    evbus_aws_buf body = {0};
    int bad = d->o.mode == DDB_CONDITIONAL
                  ? ddb_put_request(&d->o, c->items[0].data, c->items[0].len, &body)
                  : ddb_batch_request(&d->o, c->items, c->n, &body);
    for (size_t k = 0; k < c->n; k++)
        evbus_aws_buf_free(&c->items[k]);
    if (bad)
        evbus_aws_buf_free(&body);
    else if (evbus_aws_client_post(d->aws, c->b->region,
                                   d->o.mode == DDB_CONDITIONAL
                                       ? "DynamoDB_20120810.PutItem"
                                       : "DynamoDB_20120810.BatchWriteItem",
                                   body.data, body.len, on_answer, c) == EVBUS_OK)
        return; /* the client owns the body now */
    for (size_t k = 0; k < c->n; k++)
        d->api->report(d->host, c->b, c->idx[k], EVBUS_RESULT_RETRY, 0, "out of memory");
    free(c);
}

/* Whether the call already carries an event with this id: BatchWriteItem
 * refuses a request that puts one key twice. */
static bool has_id(const call *c, const char *id) {
    for (size_t k = 0; k < c->n; k++)
        if (strcmp(c->b->events[c->idx[k]].id, id) == 0)
            return true;
    return false;
}

static evbus_err ddb_submit(void *st, const evbus_batch *b) {
    ddb *d = st;
    size_t n = b->n_events;
    if (n > 1024) /* the host keeps to max_batch_events (25) */
        return EVBUS_EINVAL;
    /* Build every item and plan every call before reporting anything: the
     * last report may release the batch. */
    call **calls = calloc(n ? n : 1, sizeof *calls);
    char(*reasons)[600] = NULL;
    size_t *refused = calloc(n ? n : 1, sizeof *refused);
    size_t n_calls = 0, n_refused = 0;
    size_t room = d->o.max_request_bytes - ddb_request_overhead(&d->o);
    if (!calls || !refused)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const evbus_sink_event *e = &b->events[i];
        evbus_aws_buf item = {0};
        char why[600];
        size_t size;
        ddb_conv rc = ddb_item(&d->o, e, &item, &size, why, sizeof why);
        if (rc == DDB_CONV_OK && item.len + 20 > room) {
            snprintf(why, sizeof why,
                     "RequestTooLarge: the item's request is %zu bytes; max_request_bytes is %llu",
                     item.len, (unsigned long long)d->o.max_request_bytes);
            rc = DDB_CONV_REFUSED;
        }
        if (rc != DDB_CONV_OK) {
            evbus_aws_buf_free(&item);
            if (rc == DDB_CONV_NOMEM)
                goto nomem;
            if (!reasons && !(reasons = calloc(n, sizeof *reasons)))
                goto nomem;
            snprintf(reasons[n_refused], sizeof reasons[0], "%s", why);
            refused[n_refused++] = i;
            continue;
        }
        call *c = n_calls ? calls[n_calls - 1] : NULL;
        if (!c || d->o.mode == DDB_CONDITIONAL || c->n == DDB_BATCH_MAX ||
            c->bytes + item.len + 20 > room || has_id(c, e->id)) {
            if (!(c = calloc(1, sizeof *c))) {
                evbus_aws_buf_free(&item);
                goto nomem;
            }
            c->d = d;
            c->b = b;
            calls[n_calls++] = c;
        }
        c->bytes += item.len + 20; /* the PutRequest around it */
        c->items[c->n] = item;
        c->idx[c->n++] = i;
    }
    if (n_refused)
        d->api->counter_add(d->host, "items_refused", n_refused);
    for (size_t k = 0; k < n_refused; k++)
        d->api->report(d->host, b, refused[k], EVBUS_RESULT_FAILED, 0, reasons[k]);
    for (size_t k = 0; k < n_calls; k++)
        send_call(calls[k]);
    free(calls);
    free(refused);
    free(reasons);
    return EVBUS_OK;
nomem:
    for (size_t k = 0; calls && k < n_calls; k++)
        call_free(calls[k]);
    free(calls);
    free(refused);
    free(reasons);
    return EVBUS_ENOMEM;
}

static void drop_call(void *arg) {
    free(arg); /* its items were freed when the request was built */
}

static void ddb_shutdown(void *st) {
    ddb *d = st;
    if (!d)
        return;
    /* The host has taken the transfers back, so their answers never come:
     * the client hands each open call's record back to be freed. */
    evbus_aws_client_destroy(&d->aws, drop_call);
    free(d);
}

static const evbus_config_key ddb_keys[] = {
    EVBUS_AWS_COMMON_KEYS,
    {"max_request_bytes", EVBUS_CONFIG_SIZE, "16MiB", 0,
     "largest request body (1MiB to 16MiB, DynamoDB's limit)"},
    {"table", EVBUS_CONFIG_STRING, NULL, 1, "the table (name or ARN)"},
    {"key", EVBUS_CONFIG_STRING, "id", 0,
     "the table's partition key attribute (type S); it holds the event id"},
    {"mode", EVBUS_CONFIG_STRING, "conditional", 0,
     "conditional: PutItem if the key is absent (a redelivery writes nothing); batch: "
     "BatchWriteItem of up to 25 items"},
    {"ttl_attribute", EVBUS_CONFIG_STRING, NULL, 0,
     "attribute for the expiry in epoch seconds (the table's TTL attribute); with ttl"},
    {"ttl", EVBUS_CONFIG_DURATION, NULL, 0,
     "how long after the event's time an item expires; with ttl_attribute"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "dynamodb",
    .version = DDB_PLUGIN_VERSION,
    .description = "Amazon DynamoDB: one item per event, conditional PutItem or BatchWriteItem",
    .config_keys = ddb_keys,
    .max_batch_events = DDB_BATCH_MAX,
    .max_batch_bytes = DDB_MAX_REQUEST,
    .init = ddb_init,
    .submit = ddb_submit,
    .shutdown = ddb_shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
