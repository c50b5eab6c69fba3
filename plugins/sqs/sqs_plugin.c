/* The SQS sink: descriptor, configuration, and the delivery of one batch as
 * one or more SendMessageBatch calls (more when max_request_bytes cuts it).
 * The request builder is sqs_request.c, the answer reader sqs_response.c;
 * credentials, signing and error classes come from plugins/aws. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqs.h"

#define SQS_PLUGIN_VERSION "0.1.0"

typedef struct sqs {
    const evbus_host_api *api;
    evbus_host *host;
    evbus_aws_client *aws;
    sqs_opts o;
} sqs;

/* One SendMessageBatch call: which events of the batch it carries. */
typedef struct call {
    sqs *s;
    const evbus_batch *b;
    size_t idx[SQS_MAX_ENTRIES];
    size_t n;
} call;

static evbus_err sqs_init(const evbus_host_api *api, evbus_host *host, void **out) {
    sqs *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *out = s;
    s->api = api;
    s->host = host;
    const char *group = "partition_key";
    int attrs = 1;
    s->o.max_request_bytes = 1048576;
    if (api->config_string(host, "queue_url", &s->o.queue_url) != EVBUS_OK) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "queue_url is required");
        return EVBUS_ECONFIG;
    }
    api->config_string(host, "message_group_id", &group);
    api->config_bool(host, "message_attributes", &attrs);
    api->config_number(host, "max_request_bytes", &s->o.max_request_bytes);
    s->o.message_attributes = attrs != 0;
    size_t ql = strlen(s->o.queue_url);
    s->o.fifo = ql > 5 && strcmp(s->o.queue_url + ql - 5, ".fifo") == 0;
    if (strcmp(group, "partition_key") == 0) {
        s->o.group = SQS_GROUP_PARTITION_KEY;
    } else if (strcmp(group, "source") == 0) {
        s->o.group = SQS_GROUP_SOURCE;
    } else {
        s->o.group = SQS_GROUP_CONSTANT;
        s->o.group_constant = group;
    }
    if (s->o.max_request_bytes < 1024 || s->o.max_request_bytes > 1048576) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR,
                 "max_request_bytes is %llu; SQS takes 1 KiB to 1 MiB (1048576)",
                 (unsigned long long)s->o.max_request_bytes);
        return EVBUS_ECONFIG;
    }
    return evbus_aws_client_new(api, host, &evbus_aws_sqs, &s->aws);
}

static void send_call(call *c);

/* The whole call failed because of one of its messages (SQS says which
 * only for some errors): send each message on its own, so that only the
 * one SQS refuses is dead-lettered. */
static void isolate(call *c) {
    for (size_t k = 0; k < c->n; k++) {
        call *one = malloc(sizeof *one);
        if (!one) {
            c->s->api->report(c->s->host, c->b, c->idx[k], EVBUS_RESULT_RETRY, 0, "out of memory");
            continue;
        }
        *one = (call){.s = c->s, .b = c->b, .idx = {c->idx[k]}, .n = 1};
        send_call(one);
    }
}

static void on_answer(void *arg, const evbus_aws_result *r) {
    call *c = arg;
    sqs *s = c->s;
    char reason[600];
    if (r->fault == EVBUS_AWS_EVENT_FAULT && c->n > 1) {
        s->api->counter_add(s->host, "isolated_batches", 1);
        isolate(c);
        free(c);
        return;
    }
    evbus_result whole = evbus_aws_client_judge(s->aws, r, reason, sizeof reason);
    if (r->fault != EVBUS_AWS_OK) {
        for (size_t k = 0; k < c->n; k++)
            s->api->report(s->host, c->b, c->idx[k], whole, r->retry_after_ms, reason);
        free(c);
        return;
    }
    sqs_entry_result res[SQS_MAX_ENTRIES];
    sqs_read_response(r->body, r->body_len, c->n, res);
    uint64_t sent = 0, failed = 0, retried = 0;
    for (size_t k = 0; k < c->n; k++) {
        evbus_result er = evbus_aws_client_result_for(s->aws, res[k].fault);
        sent += er == EVBUS_RESULT_DELIVERED;
        failed += er == EVBUS_RESULT_FAILED;
        retried += er != EVBUS_RESULT_DELIVERED && er != EVBUS_RESULT_FAILED;
    }
    s->api->counter_add(s->host, "messages_sent", sent);
    if (failed)
        s->api->counter_add(s->host, "messages_refused", failed);
    if (retried)
        s->api->counter_add(s->host, "messages_retried", retried);
    /* The last report may release the batch: nothing touches c->b after. */
    for (size_t k = 0; k < c->n; k++)
        s->api->report(s->host, c->b, c->idx[k], evbus_aws_client_result_for(s->aws, res[k].fault),
                       0, res[k].reason);
    free(c);
}

static void send_call(call *c) {
    sqs *s = c->s;
    evbus_aws_buf body = {0};
    if (sqs_build_request(&s->o, c->b, c->idx, c->n, &body) != 0)
        evbus_aws_buf_free(&body);
    else if (evbus_aws_client_post(s->aws, c->b->region, "AmazonSQS.SendMessageBatch", body.data,
                                   body.len, on_answer, c) == EVBUS_OK)
        return; /* the client owns the body now */
    for (size_t k = 0; k < c->n; k++)
        s->api->report(s->host, c->b, c->idx[k], EVBUS_RESULT_RETRY, 0, "out of memory");
    free(c);
}

static evbus_err sqs_submit(void *st, const evbus_batch *b) {
    sqs *s = st;
    size_t n = b->n_events;
    char why[400];
    if (n > 1024) /* the host keeps to max_batch_events (10) */
        return EVBUS_EINVAL;
    /* Plan every call before reporting anything: the last report may
     * release the batch. */
    call *calls[SQS_MAX_ENTRIES * 16];
    size_t n_calls = 0, bytes = 0;
    size_t refused[1024], n_refused = 0;
    char(*reasons)[400] = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t size = sqs_message_size(&s->o, &b->events[i], why, sizeof why);
        if (size == 0) {
            if (!reasons && !(reasons = calloc(n, sizeof *reasons)))
                return EVBUS_ENOMEM;
            snprintf(reasons[n_refused], sizeof reasons[0], "%s", why);
            refused[n_refused++] = i;
            continue;
        }
        call *c = n_calls ? calls[n_calls - 1] : NULL;
        if (!c || c->n == SQS_MAX_ENTRIES || bytes + size > s->o.max_request_bytes) {
            if (n_calls == sizeof calls / sizeof calls[0] || !(c = calloc(1, sizeof *c))) {
                for (size_t k = 0; k < n_calls; k++)
                    free(calls[k]);
                free(reasons);
                return EVBUS_ENOMEM;
            }
            c->s = s;
            c->b = b;
            calls[n_calls++] = c;
            bytes = 0;
        }
        c->idx[c->n++] = i;
        bytes += size;
    }
    if (n_refused)
        s->api->counter_add(s->host, "messages_refused", n_refused);
    for (size_t k = 0; k < n_refused; k++)
        s->api->report(s->host, b, refused[k], EVBUS_RESULT_FAILED, 0, reasons[k]);
    free(reasons);
    for (size_t k = 0; k < n_calls; k++)
        send_call(calls[k]);
    return EVBUS_OK;
}

static void sqs_shutdown(void *st) {
    sqs *s = st;
    if (!s)
        return;
    /* The host has taken the transfers back, so their answers never come:
     * the client hands each open call's record back to be freed. */
    evbus_aws_client_destroy(&s->aws, free);
    free(s);
}

static const evbus_config_key sqs_keys[] = {
    EVBUS_AWS_COMMON_KEYS,
    {"max_request_bytes", EVBUS_CONFIG_SIZE, "1MiB", 0,
     "largest message and request, as SQS counts them (queues made before Aug 2025 may hold "
     "256KiB)"},
    {"queue_url", EVBUS_CONFIG_STRING, NULL, 1, "URL of the queue (.fifo for a FIFO queue)"},
    {"message_group_id", EVBUS_CONFIG_STRING, "partition_key", 0,
     "FIFO group id: partition_key (the source when it is empty), source, or a constant"},
    {"message_attributes", EVBUS_CONFIG_BOOL, "true", 0,
     "send the event's attributes as String message attributes"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "sqs",
    .version = SQS_PLUGIN_VERSION,
    .description = "Amazon SQS: SendMessageBatch of event envelopes, FIFO-aware",
    .config_keys = sqs_keys,
    .max_batch_events = SQS_MAX_ENTRIES,
    .max_batch_bytes = 1048576,
    .init = sqs_init,
    .submit = sqs_submit,
    .shutdown = sqs_shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
