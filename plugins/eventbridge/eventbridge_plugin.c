/* The EventBridge sink: descriptor, configuration, and the delivery of one
 * batch as one or more PutEvents calls (more when max_request_bytes cuts
 * it). The request builder is eventbridge_request.c, the answer reader
 * eventbridge_response.c; credentials, signing and error classes come from
 * plugins/aws. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eventbridge.h"

#define EB_PLUGIN_VERSION "0.1.0"

typedef struct eb {
    const evbus_host_api *api;
    evbus_host *host;
    evbus_aws_client *aws;
    eb_opts o;
} eb;

/* One PutEvents call: which events of the batch it carries. */
typedef struct call {
    eb *s;
    const evbus_batch *b;
    size_t idx[EB_MAX_ENTRIES];
    size_t n;
} call;

static evbus_err eb_init(const evbus_host_api *api, evbus_host *host, void **out) {
    eb *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *out = s;
    s->api = api;
    s->host = host;
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
    return evbus_aws_client_new(api, host, &evbus_aws_eventbridge, &s->aws);
}

static void send_call(call *c);

/* The whole call was refused because of its content (a ValidationException
 * names no entry): send each entry on its own, so that only the one
 * EventBridge refuses is dead-lettered. */
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
    eb *s = c->s;
    char reason[600];
    if (r->fault == EVBUS_AWS_EVENT_FAULT && c->n > 1) {
        s->api->counter_add(s->host, "isolated_batches", 1);
        isolate(c);
        free(c);
        return;
    }
    /* Whole-call faults (an unknown bus is ResourceNotFoundException, a
     * wrong secret SignatureDoesNotMatch) apply to every entry alike. */
    evbus_result whole = evbus_aws_client_judge(s->aws, r, reason, sizeof reason);
    if (r->fault != EVBUS_AWS_OK) {
        for (size_t k = 0; k < c->n; k++)
            s->api->report(s->host, c->b, c->idx[k], whole, r->retry_after_ms, reason);
        free(c);
        return;
    }
    eb_entry_result res[EB_MAX_ENTRIES];
    eb_read_response(r->body, r->body_len, c->n, res);
    uint64_t sent = 0, failed = 0, retried = 0;
    for (size_t k = 0; k < c->n; k++) {
        evbus_result er = evbus_aws_client_result_for(s->aws, res[k].fault);
        sent += er == EVBUS_RESULT_DELIVERED;
        failed += er == EVBUS_RESULT_FAILED;
        retried += er != EVBUS_RESULT_DELIVERED && er != EVBUS_RESULT_FAILED;
    }
    s->api->counter_add(s->host, "entries_sent", sent);
    if (failed)
        s->api->counter_add(s->host, "entries_refused", failed);
    if (retried)
        s->api->counter_add(s->host, "entries_retried", retried);
    /* Accepted entries are reported DELIVERED, so the host resends only the
     * others. The last report may release the batch: nothing touches c->b
     * after. */
    for (size_t k = 0; k < c->n; k++)
        s->api->report(s->host, c->b, c->idx[k], evbus_aws_client_result_for(s->aws, res[k].fault),
                       0, res[k].reason);
    free(c);
}

static void send_call(call *c) {
    eb *s = c->s;
    evbus_aws_buf body = {0};
    if (eb_build_request(&s->o, c->b, c->idx, c->n, &body) != 0)
        evbus_aws_buf_free(&body);
    else if (evbus_aws_client_post(s->aws, c->b->region, "AWSEvents.PutEvents", body.data, body.len,
                                   on_answer, c) == EVBUS_OK)
        return; /* the client owns the body now */
    for (size_t k = 0; k < c->n; k++)
        s->api->report(s->host, c->b, c->idx[k], EVBUS_RESULT_RETRY, 0, "out of memory");
    free(c);
}

static evbus_err eb_submit(void *st, const evbus_batch *b) {
    eb *s = st;
    size_t n = b->n_events;
    char why[400];
    if (n > 1024) /* the host keeps to max_batch_events (10) */
        return EVBUS_EINVAL;
    /* Plan every call before reporting anything: the last report may
     * release the batch. */
    call *calls[EB_MAX_ENTRIES * 16];
    size_t n_calls = 0, bytes = 0;
    size_t refused[1024], n_refused = 0;
    char(*reasons)[400] = NULL;
    for (size_t i = 0; i < n; i++) {
        size_t size = eb_entry_size(&s->o, &b->events[i], why, sizeof why);
        if (size == 0) {
            if (!reasons && !(reasons = calloc(n, sizeof *reasons)))
                return EVBUS_ENOMEM;
            snprintf(reasons[n_refused], sizeof reasons[0], "%s", why);
            refused[n_refused++] = i;
            continue;
        }
        call *c = n_calls ? calls[n_calls - 1] : NULL;
        if (!c || c->n == EB_MAX_ENTRIES || bytes + size > s->o.max_request_bytes) {
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
        s->api->counter_add(s->host, "entries_refused", n_refused);
    for (size_t k = 0; k < n_refused; k++)
        s->api->report(s->host, b, refused[k], EVBUS_RESULT_FAILED, 0, reasons[k]);
    free(reasons);
    for (size_t k = 0; k < n_calls; k++)
        send_call(calls[k]);
    return EVBUS_OK;
}

static void eb_shutdown(void *st) {
    eb *s = st;
    if (!s)
        return;
    /* The host has taken the transfers back, so their answers never come:
     * the client hands each open call's record back to be freed. */
    evbus_aws_client_destroy(&s->aws, free);
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
