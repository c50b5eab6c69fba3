/* A sink for the regions tests: it shows what each instance was given. At
 * init it appends "init queue_url=Q endpoint=E message_group_id=G\n" to the
 * file named by `path` (its settings in its region: that region's keys over
 * the target's config:), and for every event it delivers
 * "deliver TARGET BATCH_REGION queue_url=Q SEQ ID\n", so that a test sees
 * which instance delivered and what region the host named in the batch.
 *
 * `fail_flag` names a file: while it exists, its first word says how every
 * event fails instead ("retry": RETRY as after a 5xx, "fault": TARGET_FAULT
 * as for a connection refused, "hang": no answer, so the batch times out),
 * and each attempt is written "fail TARGET REGION MODE SEQ ID MONO_MS\n" (MONO_MS:
 * CLOCK_MONOTONIC in ms, which the tests' tr_now_ms() reads too). */
#include <evbus/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct state {
    const evbus_host_api *api;
    evbus_host *host;
    FILE *out;
    const char *queue_url;
    const char *fail_flag; /* NULL: never fails */
} state;

static evbus_err init(const evbus_host_api *api, evbus_host *host, void **out) {
    state *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->api = api;
    s->host = host;
    *out = s;
    const char *path, *endpoint, *group = "(unset)";
    if (api->config_string(host, "path", &path) != EVBUS_OK ||
        api->config_string(host, "queue_url", &s->queue_url) != EVBUS_OK ||
        api->config_string(host, "endpoint", &endpoint) != EVBUS_OK)
        return EVBUS_EINVAL;
    api->config_string(host, "message_group_id", &group); /* optional, no default */
    api->config_string(host, "fail_flag", &s->fail_flag); /* optional, no default */
    if (!(s->out = fopen(path, "a"))) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "cannot open %s", path);
        return EVBUS_EIO;
    }
    fprintf(s->out, "init queue_url=%s endpoint=%s message_group_id=%s\n", s->queue_url, endpoint,
            group);
    fflush(s->out);
    api->log(host, EVBUS_LOG_LEVEL_INFO, "sending to %s", s->queue_url);
    return EVBUS_OK;
}

/* How this instance fails now: "" when it does not. */
static void failing(const state *s, char mode[16]) {
    mode[0] = '\0';
    FILE *f = s->fail_flag ? fopen(s->fail_flag, "r") : NULL;
    if (f) {
        if (fscanf(f, "%15s", mode) != 1)
            mode[0] = '\0';
        fclose(f);
    }
}

static evbus_err submit(void *st, const evbus_batch *b) {
    state *s = st;
    char mode[16];
    failing(s, mode);
    if (mode[0]) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        long long mono_ms = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
        for (size_t i = 0; i < b->n_events; i++)
            fprintf(s->out, "fail %s %s %s %llu %s %lld\n", b->target, b->region, mode,
                    (unsigned long long)b->events[i].sequence, b->events[i].id, mono_ms);
        fflush(s->out);
        if (strcmp(mode, "hang") == 0)
            return EVBUS_OK; /* never answered: the host's delivery_timeout ends it */
        evbus_result r =
            strcmp(mode, "fault") == 0 ? EVBUS_RESULT_TARGET_FAULT : EVBUS_RESULT_RETRY;
        size_t n = b->n_events;
        for (size_t i = 0; i < n; i++)
            s->api->report(s->host, b, i, r, 0, mode);
        return EVBUS_OK;
    }
    for (size_t i = 0; i < b->n_events; i++)
        fprintf(s->out, "deliver %s %s queue_url=%s %llu %s\n", b->target, b->region, s->queue_url,
                (unsigned long long)b->events[i].sequence, b->events[i].id);
    fflush(s->out);
    size_t n = b->n_events; /* the last report may release the batch */
    for (size_t i = 0; i < n; i++)
        s->api->report(s->host, b, i, EVBUS_RESULT_DELIVERED, 0, "");
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
    {"path", EVBUS_CONFIG_STRING, NULL, 1, "file to append to"},
    {"queue_url", EVBUS_CONFIG_STRING, NULL, 1, "where this region's instance sends"},
    {"endpoint", EVBUS_CONFIG_STRING, "https://default.invalid", 0, "the service's endpoint"},
    {"message_group_id", EVBUS_CONFIG_STRING, NULL, 0, "optional, no default"},
    {"fail_flag", EVBUS_CONFIG_STRING, NULL, 0, "a file whose presence makes every event fail"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "test-sink-regions",
    .version = "1",
    .description = "writes what each region's instance was given",
    .config_keys = keys,
    .max_batch_events = 10,
    .init = init,
    .submit = submit,
    .shutdown = shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
