/* The EventBridge sink: descriptor, configuration, and the delivery of one
 * batch as one or more PutEvents calls (more when max_request_bytes cuts
 * it). The request builder is eventbridge_request.c, the answer reader
 * eventbridge_response.c; credentials, signing, error classes and the
 * turning of batches into calls and answers into reports come from
 * plugins/aws (aws_sink.h). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbridge.h"

#define EB_PLUGIN_VERSION "0.1.0"

typedef struct eb {
    evbus_aws_sink sink;
    eb_opts o;
} eb;

static evbus_aws_sized eb_size(void *plugin, const evbus_sink_event *e, evbus_aws_buf *encoded,
                               uint64_t *size, char *why, size_t whylen) {
    (void)encoded;
    *size = eb_entry_size(&((eb *)plugin)->o, e, why, whylen);
    return *size ? EVBUS_AWS_SIZED_OK : EVBUS_AWS_SIZED_REFUSED;
}

static int eb_build(void *plugin, const evbus_aws_call *c, evbus_aws_buf *body,
                    const char **target) {
    *target = "AWSEvents.PutEvents";
    return eb_build_request(&((eb *)plugin)->o, c->b, c->idx, c->n, body);
}

static void eb_read(void *plugin, const evbus_aws_call *c, const evbus_aws_result *r,
                    evbus_aws_entry *res) {
    (void)plugin;
    eb_read_response(r->body, r->body_len, c->n, res);
}

/* A whole call refused for its content is a ValidationException naming no
 * entry (sent again one entry per call); an unknown bus is
 * ResourceNotFoundException, a wrong secret SignatureDoesNotMatch (target
 * faults). Accepted entries are reported delivered, so the host resends
 * only the others. */
static const evbus_aws_sink_ops eb_ops = {
    .sent_counter = "entries_sent",
    .refused_counter = "entries_refused",
    .retried_counter = "entries_retried",
    .size = eb_size,
    .build = eb_build,
    .read = eb_read,
};

static evbus_err eb_init(const evbus_host_api *api, evbus_host *host, void **out) {
    eb *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *out = s;
    s->o.event_bus = "default";
    s->o.max_request_bytes = 262144;
    api->config_string(host, "event_bus", &s->o.event_bus);
    api->config_number(host, "max_request_bytes", &s->o.max_request_bytes);
    size_t bl = strlen(s->o.event_bus);
    if (bl < 1 || bl > 1600) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR,
                 "event_bus is %zu characters; EventBridge takes a name or ARN of 1 to 1600", bl);
        return EVBUS_ECONFIG;
    }
    /* 256 KiB is PutEvents' documented limit; AWS announced 1 MiB in 2026,
     * so a target may raise it that far where its region has it. */
    if (s->o.max_request_bytes < 1024 || s->o.max_request_bytes > 1048576) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR,
                 "max_request_bytes is %" PRIu64 "; EventBridge takes 1 KiB to 1 MiB (1048576)",
                 s->o.max_request_bytes);
        return EVBUS_ECONFIG;
    }
    return evbus_aws_sink_init(&s->sink, api, host, &evbus_aws_eventbridge, &eb_ops, s,
                               EB_MAX_ENTRIES, s->o.max_request_bytes);
}

static evbus_err eb_submit(void *st, const evbus_batch *b) {
    return evbus_aws_sink_submit(&((eb *)st)->sink, b);
}

static void eb_shutdown(void *st) {
    eb *s = st;
    if (!s)
        return;
    evbus_aws_sink_shutdown(&s->sink);
    free(s);
}

static const evbus_config_key eb_keys[] = {
    EVBUS_AWS_COMMON_KEYS,
    {"max_request_bytes", EVBUS_CONFIG_SIZE, "256KiB", 0,
     "largest PutEvents call, summing entry sizes as EventBridge counts them (up to 1MiB where "
     "the region takes it)"},
    {"event_bus", EVBUS_CONFIG_STRING, "default", 0, "the event bus: a name or an ARN"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "eventbridge",
    .version = EB_PLUGIN_VERSION,
    .description = "Amazon EventBridge: PutEvents onto an event bus",
    .config_keys = eb_keys,
    .max_batch_events = EB_MAX_ENTRIES,
    /* Envelopes are larger than entries as EventBridge counts them; the
     * plugin cuts calls by entry size itself. */
    .max_batch_bytes = 1048576,
    .init = eb_init,
    .submit = eb_submit,
    .shutdown = eb_shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
