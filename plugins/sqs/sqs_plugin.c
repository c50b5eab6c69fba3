/* The SQS sink: descriptor, configuration, and the delivery of one batch as
 * one or more SendMessageBatch calls (more when max_request_bytes cuts it).
 * The request builder is sqs_request.c, the answer reader sqs_response.c;
 * credentials, signing, error classes and the turning of batches into calls
 * and answers into reports come from plugins/aws (aws_sink.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqs.h"

#define SQS_PLUGIN_VERSION "0.1.0"

typedef struct sqs {
    evbus_aws_sink sink;
    sqs_opts o;
} sqs;

static evbus_aws_sized sqs_size(void *plugin, const evbus_sink_event *e, evbus_aws_buf *encoded,
                                uint64_t *size, char *why, size_t whylen) {
    (void)encoded;
    *size = sqs_message_size(&((sqs *)plugin)->o, e, why, whylen);
    return *size ? EVBUS_AWS_SIZED_OK : EVBUS_AWS_SIZED_REFUSED;
}

static int sqs_build(void *plugin, const evbus_aws_call *c, evbus_aws_buf *body,
                     const char **target) {
    *target = "AmazonSQS.SendMessageBatch";
    return sqs_build_request(&((sqs *)plugin)->o, c->b, c->idx, c->n, body);
}

static void sqs_read(void *plugin, const evbus_aws_call *c, const evbus_aws_result *r,
                     evbus_aws_entry *res) {
    (void)plugin;
    sqs_read_response(r->body, r->body_len, c->n, res);
}

/* SQS says which message failed only for some errors: a whole call refused
 * for its content is sent again one message per call. */
static const evbus_aws_sink_ops sqs_ops = {
    .sent_counter = "messages_sent",
    .refused_counter = "messages_refused",
    .retried_counter = "messages_retried",
    .size = sqs_size,
    .build = sqs_build,
    .read = sqs_read,
};

static evbus_err sqs_init(const evbus_host_api *api, evbus_host *host, void **out) {
    sqs *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *out = s;
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
    return evbus_aws_sink_init(&s->sink, api, host, &evbus_aws_sqs, &sqs_ops, s, SQS_MAX_ENTRIES,
                               s->o.max_request_bytes);
}

static evbus_err sqs_submit(void *st, const evbus_batch *b) {
    return evbus_aws_sink_submit(&((sqs *)st)->sink, b);
}

static void sqs_shutdown(void *st) {
    sqs *s = st;
    if (!s)
        return;
    evbus_aws_sink_shutdown(&s->sink);
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
