/* A sink for tests, compiled several times with VARIANT_* defines into good
 * and deliberately broken plugins. The good one appends "target seq id\n" to
 * the file named by its `path` and reports DELIVERED, unless the event's
 * detail asks otherwise: "fail":"permanent" is reported FAILED,
 * "fail":"retry" always RETRY, "fail":"once" RETRY on its first attempt; and
 * while a file named like `path` plus ".down" exists, every event is RETRY
 * (a destination that is down); while `path` plus ".fault" exists, every
 * event is TARGET_FAULT (a destination misconfigured: wrong credentials). */
#include <evbus/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct state {
    const evbus_host_api *api;
    evbus_host *host;
    FILE *out;
    char down[512];
    char fault[512];
} state;

static evbus_err init(const evbus_host_api *api, evbus_host *host, void **out) {
#ifdef VARIANT_INIT_FAILS
    api->log(host, EVBUS_LOG_LEVEL_ERROR, "refusing to start, as asked");
    *out = NULL;
    return EVBUS_ECONFIG;
#else
    state *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->api = api;
    s->host = host;
    *out = s;
    const char *path;
    if (api->config_string(host, "path", &path) == EVBUS_OK)
        snprintf(s->down, sizeof s->down, "%s.down", path);
    if (api->config_string(host, "path", &path) == EVBUS_OK)
        snprintf(s->fault, sizeof s->fault, "%s.fault", path);
    if (api->config_string(host, "path", &path) != EVBUS_OK || !(s->out = fopen(path, "a"))) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "cannot open the output file");
        return EVBUS_EIO;
    }
    return EVBUS_OK;
#endif
}

static evbus_result outcome(const evbus_sink_event *e) {
    if (strstr(e->detail, "\"fail\":\"permanent\""))
        return EVBUS_RESULT_FAILED;
    if (strstr(e->detail, "\"fail\":\"retry\""))
        return EVBUS_RESULT_RETRY;
    if (strstr(e->detail, "\"fail\":\"once\"") && e->attempt == 1)
        return EVBUS_RESULT_RETRY;
    return EVBUS_RESULT_DELIVERED;
}

static evbus_err submit(void *st, const evbus_batch *b) {
    state *s = st;
    if (access(s->down, F_OK) == 0) {
        size_t n = b->n_events;
        for (size_t i = 0; i < n; i++)
            s->api->report(s->host, b, i, EVBUS_RESULT_RETRY, 0, "Unavailable: destination down");
        return EVBUS_OK;
    }
    if (access(s->fault, F_OK) == 0) {
        size_t n = b->n_events;
        for (size_t i = 0; i < n; i++)
            s->api->report(s->host, b, i, EVBUS_RESULT_TARGET_FAULT, 0,
                           "SignatureDoesNotMatch: check the target's secret key");
        return EVBUS_OK;
    }
    for (size_t i = 0; i < b->n_events; i++)
        if (outcome(&b->events[i]) == EVBUS_RESULT_DELIVERED)
            fprintf(s->out, "%s %llu %s\n", b->target, (unsigned long long)b->events[i].sequence,
                    b->events[i].id);
    fflush(s->out);
    size_t written = 0;
    for (size_t i = 0; i < b->n_events; i++)
        written += outcome(&b->events[i]) == EVBUS_RESULT_DELIVERED;
    s->api->counter_add(s->host, "events_written", written);
    s->api->counter_add(s->host, "batches", 1);
    /* The batch may be released by its last report: take n first. */
    size_t n = b->n_events;
    for (size_t i = 0; i < n; i++) {
        evbus_result r = outcome(&b->events[i]);
        s->api->report(s->host, b, i, r, 0,
                       r == EVBUS_RESULT_FAILED  ? "ValidationError: the test asked for it"
                       : r == EVBUS_RESULT_RETRY ? "Throttled: the test asked for it"
                                                 : "");
    }
    return EVBUS_OK;
}

static void shutdown(void *st) {
    state *s = st;
    if (!s)
        return;
    if (s->out)
        fclose(s->out);
    free(s);
}

static const evbus_config_key keys[] = {
    {"path", EVBUS_CONFIG_STRING, NULL, 1, "file to append delivered events to"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin descriptor = {
#ifdef VARIANT_BAD_MAGIC
    .magic = 0x12345678,
#else
    .magic = EVBUS_PLUGIN_MAGIC,
#endif
#ifdef VARIANT_FUTURE_MAJOR
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR + 1,
#elif defined(VARIANT_OLD_MAJOR)
    .abi_major = 0,
#else
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
#endif
#if defined(VARIANT_FUTURE_MAJOR) || defined(VARIANT_OLD_MAJOR)
    .abi_minor = 0, /* the messages the tests expect name x.0 */
#else
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
#endif
#ifdef VARIANT_SHORT
    .size = 24,
#else
    .size = sizeof(evbus_plugin),
#endif
    .kind = EVBUS_PLUGIN_SINK,
    .name = "test-sink",
    .version = "1",
    .description = "appends delivered events to a file",
    .config_keys = keys,
    .max_batch_events = 10,
    .init = init,
    .submit = submit,
    .shutdown = shutdown,
};

#ifndef VARIANT_NO_SYMBOL
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
#else
const evbus_plugin *other_name(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *other_name(void) {
    return &descriptor;
}
#endif
