/* A sink that makes the mistakes plugin authors make, to test that evbusd
 * survives them. It appends "target seq id\n" to the file named by `path`
 * for every event it reports DELIVERED, and takes its mistakes from each
 * event's detail:
 *   "mistake":"late"   reported DELIVERED, then again from a timer 50 ms
 *                      later, when its batch has long finished;
 *   "mistake":"twice"  reported DELIVERED twice in a row;
 *   "mistake":"never"  never reported.
 * Other events are reported DELIVERED at once. */
#include <evbus/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct late late;

typedef struct state {
    const evbus_host_api *api;
    evbus_host *host;
    FILE *out;
    late *pending; /* late reports whose timer has not fired */
} state;

struct late {
    late *next;
    state *s;
    const evbus_batch *batch; /* kept past the batch's end: the bug */
    size_t index;
    uint64_t timer;
};

static evbus_err buggy_init(const evbus_host_api *api, evbus_host *host, void **out) {
    state *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->api = api;
    s->host = host;
    *out = s;
    const char *path;
    if (api->config_string(host, "path", &path) != EVBUS_OK || !(s->out = fopen(path, "a")))
        return EVBUS_EIO;
    return EVBUS_OK;
}

static void report_late(void *arg) {
    late *l = arg;
    state *s = l->s;
    for (late **p = &s->pending; *p; p = &(*p)->next) {
        if (*p == l) {
            *p = l->next;
            break;
        }
    }
    s->api->report(s->host, l->batch, l->index, EVBUS_RESULT_DELIVERED, 0, "");
    free(l);
}

static const char *mistake(const evbus_sink_event *e) {
    const char *m = strstr(e->detail, "\"mistake\":\"");
    return m ? m + strlen("\"mistake\":\"") : "";
}

static evbus_err buggy_submit(void *st, const evbus_batch *b) {
    state *s = st;
    size_t n = b->n_events;
    for (size_t i = 0; i < n; i++) {
        const evbus_sink_event *e = &b->events[i];
        if (strncmp(mistake(e), "never\"", 6) != 0)
            fprintf(s->out, "%s %llu %s\n", b->target, (unsigned long long)e->sequence, e->id);
        if (strncmp(mistake(e), "late\"", 5) == 0) {
            late *l = calloc(1, sizeof *l);
            if (l) {
                *l = (late){s->pending, s, b, i, 0};
                l->timer = s->api->timer_add(s->host, 50, report_late, l);
                s->pending = l;
            }
        }
    }
    fflush(s->out);
    /* Decide everything before the first report: the batch may be gone
     * after the last one. */
    char what[1024];
    for (size_t i = 0; i < n && i < sizeof what; i++)
        what[i] = mistake(&b->events[i])[0];
    for (size_t i = 0; i < n && i < sizeof what; i++) {
        if (what[i] == 'n')
            continue;
        s->api->report(s->host, b, i, EVBUS_RESULT_DELIVERED, 0, "");
        if (what[i] == 't')
            s->api->report(s->host, b, i, EVBUS_RESULT_DELIVERED, 0, "");
    }
    return EVBUS_OK;
}

static void buggy_shutdown(void *st) {
    state *s = st;
    if (!s)
        return;
    while (s->pending) {
        late *l = s->pending;
        s->pending = l->next;
        s->api->timer_cancel(s->host, l->timer);
        free(l);
    }
    if (s->out)
        fclose(s->out);
    free(s);
}

static const evbus_config_key keys[] = {
    {"path", EVBUS_CONFIG_STRING, NULL, 1, "file to append delivered events to"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "test-buggy",
    .version = "1",
    .description = "reports late, twice, or never, as asked",
    .config_keys = keys,
    .max_batch_events = 10,
    .init = buggy_init,
    .submit = buggy_submit,
    .shutdown = buggy_shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
