/* The delivery of a batch as calls, and of each call's answer as reports,
 * shared by the AWS sinks (aws_sink.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_sink.h"

#define MAX_BATCH_EVENTS 1024

evbus_err evbus_aws_sink_init(evbus_aws_sink *s, const evbus_host_api *api, evbus_host *host,
                              const evbus_aws_service *svc, const evbus_aws_sink_ops *ops,
                              void *plugin, size_t max_entries, uint64_t max_bytes) {
    if (max_entries == 0 || max_entries > EVBUS_AWS_MAX_CALL_ENTRIES)
        return EVBUS_EINVAL;
    *s = (evbus_aws_sink){.api = api,
                          .host = host,
                          .ops = ops,
                          .plugin = plugin,
                          .max_entries = max_entries,
                          .max_bytes = max_bytes};
    return evbus_aws_client_new(api, host, svc, &s->client);
}

static void call_free(evbus_aws_call *c) {
    for (size_t k = 0; k < c->n; k++)
        evbus_aws_buf_free(&c->encoded[k]);
    free(c);
}

/* Reports every entry of c alike and frees c. The last report may release
 * the batch: nothing touches c->b after. */
static void report_all(evbus_aws_call *c, evbus_result result, uint32_t retry_after_ms,
                       const char *reason) {
    evbus_aws_sink *s = c->sink;
    for (size_t k = 0; k < c->n; k++)
        s->api->report(s->host, c->b, c->idx[k], result, retry_after_ms, reason);
    call_free(c);
}

static void send_call(evbus_aws_call *c);

/* The whole call was refused because of its content, and the service did
 * not say which entry (a ValidationException, a 413): each entry is sent on
 * its own, so that only the one the service refuses fails. */
static void isolate(evbus_aws_call *c) {
    evbus_aws_sink *s = c->sink;
    for (size_t k = 0; k < c->n; k++) {
        evbus_aws_call *one = calloc(1, sizeof *one);
        char why[600];
        uint64_t size;
        /* It was sized once already: only memory can fail now. */
        if (one && s->ops->size(s->plugin, &c->b->events[c->idx[k]], &one->encoded[0], &size, why,
                                sizeof why) == EVBUS_AWS_SIZED_OK) {
            one->sink = s;
            one->b = c->b;
            one->idx[0] = c->idx[k];
            one->n = 1;
            one->bytes = size;
            send_call(one);
            continue;
        }
        if (one)
            evbus_aws_buf_free(&one->encoded[0]);
        free(one);
        s->api->report(s->host, c->b, c->idx[k], EVBUS_RESULT_RETRY, 0, "out of memory");
    }
}

/* A 200: each entry as the service says, counted. */
static void per_entry(evbus_aws_call *c, const evbus_aws_result *r) {
    evbus_aws_sink *s = c->sink;
    evbus_aws_entry res[EVBUS_AWS_MAX_CALL_ENTRIES];
    evbus_result er[EVBUS_AWS_MAX_CALL_ENTRIES];
    s->ops->read(s->plugin, c, r, res);
    uint64_t sent = 0, failed = 0, retried = 0;
    for (size_t k = 0; k < c->n; k++) {
        er[k] = evbus_aws_client_result_for(s->client, res[k].fault);
        sent += er[k] == EVBUS_RESULT_DELIVERED;
        failed += er[k] == EVBUS_RESULT_FAILED;
        retried += er[k] != EVBUS_RESULT_DELIVERED && er[k] != EVBUS_RESULT_FAILED;
    }
    s->api->counter_add(s->host, s->ops->sent_counter, sent);
    if (failed)
        s->api->counter_add(s->host, s->ops->refused_counter, failed);
    if (retried)
        s->api->counter_add(s->host, s->ops->retried_counter, retried);
    for (size_t k = 0; k < c->n; k++)
        s->api->report(s->host, c->b, c->idx[k], er[k], 0, res[k].reason);
    call_free(c);
}

static void on_answer(void *arg, const evbus_aws_result *r) {
    evbus_aws_call *c = arg;
    evbus_aws_sink *s = c->sink;
    char reason[700];
    if (r->fault == EVBUS_AWS_EVENT_FAULT && s->ops->already_there &&
        s->ops->already_there(s->plugin, r)) {
        /* An earlier delivery of these events stored them. */
        evbus_aws_result ok = *r;
        ok.fault = EVBUS_AWS_OK;
        evbus_aws_client_judge(s->client, &ok, reason, sizeof reason);
        s->api->counter_add(s->host, s->ops->already_counter, c->n);
        report_all(c, EVBUS_RESULT_DELIVERED, 0, "");
        return;
    }
    if (r->fault == EVBUS_AWS_EVENT_FAULT && c->n > 1) {
        s->api->counter_add(s->host, "isolated_batches", 1);
        isolate(c);
        call_free(c);
        return;
    }
    if (r->fault == EVBUS_AWS_OK) {
        evbus_aws_client_judge(s->client, r, reason, sizeof reason); /* a recovery is logged */
        per_entry(c, r);
        return;
    }
    /* Whole-call faults (an unknown queue, bus or table, a wrong secret,
     * throttling, no answer) apply to every entry alike. */
    evbus_result whole = evbus_aws_client_judge(s->client, r, reason, sizeof reason);
    if (whole == EVBUS_RESULT_FAILED)
        s->api->counter_add(s->host, s->ops->refused_counter, c->n);
    report_all(c, whole, r->retry_after_ms, reason);
}

static void send_call(evbus_aws_call *c) {
    evbus_aws_sink *s = c->sink;
    evbus_aws_buf body = {0};
    const char *target = NULL;
    /* Room for the entries as sized, escaped, and the JSON around them:
     * the body is built without growing (and copying) it on the way. */
    int bad = evbus_aws_buf_reserve(&body, c->bytes + c->bytes / 8 + 256 + 160 * c->n) ||
              s->ops->build(s->plugin, c, &body, &target);
    for (size_t k = 0; k < c->n; k++) /* in the body now */
        evbus_aws_buf_free(&c->encoded[k]);
    if (bad)
        evbus_aws_buf_free(&body);
    else if (evbus_aws_client_post(s->client, c->b->region, target, body.data, body.len, on_answer,
                                   c) == EVBUS_OK)
        return; /* the client owns the body now */
    report_all(c, EVBUS_RESULT_RETRY, 0, "out of memory");
}

/* Whether event e starts a new call after `c` (NULL: none yet). */
static bool needs_new_call(const evbus_aws_sink *s, const evbus_aws_call *c,
                           const evbus_sink_event *e, uint64_t size) {
    return !c || c->n == s->max_entries || c->bytes + size > s->max_bytes ||
           (s->ops->fits && !s->ops->fits(s->plugin, c, e));
}

evbus_err evbus_aws_sink_submit(evbus_aws_sink *s, const evbus_batch *b) {
    size_t n = b->n_events;
    if (n > MAX_BATCH_EVENTS) /* the host keeps to the plugin's max_batch_events */
        return EVBUS_EINVAL;
    /* Plan every call before reporting anything: the last report may
     * release the batch. */
    evbus_aws_call **calls = calloc(n ? n : 1, sizeof *calls);
    size_t *refused = calloc(n ? n : 1, sizeof *refused);
    char(*reasons)[600] = NULL;
    size_t n_calls = 0, n_refused = 0;
    if (!calls || !refused)
        goto nomem;
    for (size_t i = 0; i < n; i++) {
        const evbus_sink_event *e = &b->events[i];
        evbus_aws_buf encoded = {0};
        char why[600];
        uint64_t size = 0;
        evbus_aws_sized rc = s->ops->size(s->plugin, e, &encoded, &size, why, sizeof why);
        if (rc != EVBUS_AWS_SIZED_OK) {
            evbus_aws_buf_free(&encoded);
            if (rc == EVBUS_AWS_SIZED_NOMEM)
                goto nomem;
            if (!reasons && !(reasons = calloc(n, sizeof *reasons)))
                goto nomem;
            snprintf(reasons[n_refused], sizeof reasons[0], "%s", why);
            refused[n_refused++] = i;
            continue;
        }
        evbus_aws_call *c = n_calls ? calls[n_calls - 1] : NULL;
        if (needs_new_call(s, c, e, size)) {
            if (!(c = calloc(1, sizeof *c))) {
                evbus_aws_buf_free(&encoded);
                goto nomem;
            }
            c->sink = s;
            c->b = b;
            calls[n_calls++] = c;
        }
        c->encoded[c->n] = encoded;
        c->idx[c->n++] = i;
        c->bytes += size;
    }
    if (n_refused)
        s->api->counter_add(s->host, s->ops->refused_counter, n_refused);
    for (size_t k = 0; k < n_refused; k++)
        s->api->report(s->host, b, refused[k], EVBUS_RESULT_FAILED, 0, reasons[k]);
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
    call_free(arg);
}

void evbus_aws_sink_shutdown(evbus_aws_sink *s) {
    /* Each open call's record comes back from the client to be freed. */
    evbus_aws_client_destroy(&s->client, drop_call);
}
