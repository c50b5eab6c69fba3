/* The DynamoDB sink: descriptor, configuration, and the delivery of one
 * batch as PutItem calls (conditional mode, one per event) or BatchWriteItem
 * calls of up to 25 items (batch mode). Items are built by
 * dynamodb_item.c, requests by dynamodb_request.c, answers read by
 * dynamodb_response.c; credentials, signing, error classes and the turning
 * of batches into calls and answers into reports come from plugins/aws
 * (aws_sink.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamodb.h"

#define DDB_PLUGIN_VERSION "0.1.0"
#define DDB_MAX_REQUEST    16777216

typedef struct ddb {
    evbus_aws_sink sink;
    ddb_opts o;
    size_t room; /* max_request_bytes less what a request adds around its items */
} ddb;

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

/* Each item is built once, while it is sized (it is what DynamoDB
 * counts), and kept with its call until the request is built. */
static evbus_aws_sized ddb_size(void *plugin, const evbus_sink_event *e, evbus_aws_buf *encoded,
                                uint64_t *size, char *why, size_t whylen) {
    ddb *d = plugin;
    size_t item_size;
    ddb_conv rc = ddb_item(&d->o, e, encoded, &item_size, why, whylen);
    if (rc == DDB_CONV_OK && encoded->len + 20 > d->room) {
        snprintf(why, whylen,
                 "RequestTooLarge: the item's request is %zu bytes; max_request_bytes is %llu",
                 encoded->len, (unsigned long long)d->o.max_request_bytes);
        rc = DDB_CONV_REFUSED;
    }
    *size = encoded->len + 20; /* the PutRequest around it */
    return rc == DDB_CONV_OK      ? EVBUS_AWS_SIZED_OK
           : rc == DDB_CONV_NOMEM ? EVBUS_AWS_SIZED_NOMEM
                                  : EVBUS_AWS_SIZED_REFUSED;
}

/* BatchWriteItem refuses a request that puts one key twice. */
static bool ddb_fits(void *plugin, const evbus_aws_call *c, const evbus_sink_event *e) {
    (void)plugin;
    for (size_t k = 0; k < c->n; k++)
        if (strcmp(c->b->events[c->idx[k]].id, e->id) == 0)
            return false;
    return true;
}

static int ddb_build(void *plugin, const evbus_aws_call *c, evbus_aws_buf *body,
                     const char **target) {
    ddb *d = plugin;
    if (d->o.mode == DDB_CONDITIONAL) {
        *target = "DynamoDB_20120810.PutItem";
        return ddb_put_request(&d->o, c->encoded[0].data, c->encoded[0].len, body);
    }
    *target = "DynamoDB_20120810.BatchWriteItem";
    return ddb_batch_request(&d->o, c->encoded, c->n, body);
}

/* A PutItem's 200 wrote its item; a BatchWriteItem's lists what it did not
 * write in UnprocessedItems: retried with backoff. */
static void ddb_read(void *plugin, const evbus_aws_call *c, const evbus_aws_result *r,
                     evbus_aws_entry *res) {
    ddb *d = plugin;
    static const char left[] = "UnprocessedItems: DynamoDB did not write the item (throughput "
                               "or internal limits); retried with backoff";
    _Static_assert(sizeof left <= sizeof res[0].reason, "the reason fits");
    bool unprocessed[DDB_BATCH_MAX] = {false};
    if (d->o.mode == DDB_BATCH) {
        const char *ids[DDB_BATCH_MAX];
        for (size_t k = 0; k < c->n; k++)
            ids[k] = c->b->events[c->idx[k]].id;
        ddb_read_batch_response(&d->o, r->body, r->body_len, ids, c->n, unprocessed);
    }
    for (size_t k = 0; k < c->n; k++) {
        res[k].fault = unprocessed[k] ? EVBUS_AWS_TRANSIENT : EVBUS_AWS_OK;
        if (unprocessed[k])
            memcpy(res[k].reason, left, sizeof left);
        else
            res[k].reason[0] = '\0';
    }
}

/* Conditional mode: the item is there, an earlier delivery of this event
 * wrote it. */
static bool ddb_already_there(void *plugin, const evbus_aws_result *r) {
    return ((ddb *)plugin)->o.mode == DDB_CONDITIONAL &&
           strcmp(r->code, "ConditionalCheckFailedException") == 0;
}

/* DynamoDB does not say which item made it refuse a whole BatchWriteItem:
 * such a call is written again one item per call. */
static const evbus_aws_sink_ops ddb_ops = {
    .sent_counter = "items_written",
    .refused_counter = "items_refused",
    .retried_counter = "items_unprocessed",
    .size = ddb_size,
    .fits = ddb_fits,
    .build = ddb_build,
    .read = ddb_read,
    .already_there = ddb_already_there,
    .already_counter = "items_already_present",
};

static evbus_err ddb_init(const evbus_host_api *api, evbus_host *host, void **out) {
    ddb *d = calloc(1, sizeof *d);
    if (!d)
        return EVBUS_ENOMEM;
    *out = d;
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
    d->room = d->o.max_request_bytes - ddb_request_overhead(&d->o);
    return evbus_aws_sink_init(&d->sink, api, host, &evbus_aws_dynamodb, &ddb_ops, d,
                               d->o.mode == DDB_CONDITIONAL ? 1 : DDB_BATCH_MAX, d->room);
}

static evbus_err ddb_submit(void *st, const evbus_batch *b) {
    return evbus_aws_sink_submit(&((ddb *)st)->sink, b);
}

static void ddb_shutdown(void *st) {
    ddb *d = st;
    if (!d)
        return;
    evbus_aws_sink_shutdown(&d->sink);
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
