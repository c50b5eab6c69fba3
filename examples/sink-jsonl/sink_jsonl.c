/* evbus_sink_jsonl: an example sink plugin that appends each delivered event,
 * as the JSON envelope Amazon EventBridge delivers, to a file, one per line.
 *
 * It is the template for your own sink: one descriptor, three callbacks, and
 * a result reported for every event. Copy this folder, rename, and replace
 * the body of jsonl_submit(). The callbacks carry the sink's name as a
 * prefix: plain init/submit/shutdown would collide with shutdown(2) as soon
 * as a header such as <curl/curl.h> brings in <sys/socket.h>. */
#include <errno.h>
#include <evbus/plugin.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

typedef struct sink {
    const evbus_host_api *api; /* host services; valid until shutdown */
    evbus_host *host;
    int fd;
    int fsync; /* fdatasync before reporting DELIVERED */
} sink;

/* Settings the target's `config:` may hold. evbusd checks them (unknown
 * keys, types, required ones) before init, and errors name file and line. */
static const evbus_config_key keys[] = {
    {"path", EVBUS_CONFIG_STRING, NULL, 1, "file the events are appended to"},
    {"fsync", EVBUS_CONFIG_BOOL, "true", 0,
     "make each batch durable on disk before it counts as delivered"},
    {NULL, 0, NULL, 0, NULL},
};

static evbus_err jsonl_init(const evbus_host_api *api, evbus_host *host, void **state) {
    sink *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *state = s; /* jsonl_shutdown() frees it even if the rest of init fails */
    s->api = api;
    s->host = host;
    s->fd = -1;
    const char *path;
    if (api->config_string(host, "path", &path) != EVBUS_OK ||
        api->config_bool(host, "fsync", &s->fsync) != EVBUS_OK)
        return EVBUS_ECONFIG;
    s->fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (s->fd < 0) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "cannot open %s: %s", path, strerror(errno));
        return EVBUS_EIO;
    }
    api->log(host, EVBUS_LOG_LEVEL_INFO, "appending events to %s%s", path,
             s->fsync ? " (fsync per batch)" : "");
    return EVBUS_OK;
}

/* Writes the whole batch with one writev: a line per event. Appends of a
 * few hundred KiB to a local file are quick; a sink that talks to a network
 * service must not block here, and uses api->http_start instead. */
static evbus_err jsonl_submit(void *state, const evbus_batch *b) {
    sink *s = state;
    size_t n = b->n_events;
    evbus_result result = EVBUS_RESULT_DELIVERED;
    const char *reason = "";
    char why[256];
    struct iovec iov[2 * 64];
    for (size_t first = 0; first < n && result == EVBUS_RESULT_DELIVERED; first += 64) {
        size_t k = n - first < 64 ? n - first : 64, total = 0;
        for (size_t i = 0; i < k; i++) {
            const evbus_sink_event *e = &b->events[first + i];
            iov[2 * i] = (struct iovec){(void *)e->envelope_json, e->envelope_len};
            iov[2 * i + 1] = (struct iovec){"\n", 1};
            total += e->envelope_len + 1;
        }
        ssize_t w = writev(s->fd, iov, (int)(2 * k));
        if (w != (ssize_t)total) {
            /* A short write leaves a partial line; the retry appends the
             * events again, which at-least-once delivery allows. */
            snprintf(why, sizeof why, "write failed: %s", w < 0 ? strerror(errno) : "short write");
            result = EVBUS_RESULT_RETRY;
            reason = why;
        }
    }
    if (result == EVBUS_RESULT_DELIVERED && s->fsync && fdatasync(s->fd) != 0) {
        snprintf(why, sizeof why, "fdatasync failed: %s", strerror(errno));
        result = EVBUS_RESULT_RETRY;
        reason = why;
    }
    if (result == EVBUS_RESULT_DELIVERED)
        s->api->counter_add(s->host, "lines_written", n);
    /* One result per event. The last report may release the batch: n was
     * read before, and b is not touched after the loop. */
    for (size_t i = 0; i < n; i++)
        s->api->report(s->host, b, i, result, 0, reason);
    return EVBUS_OK;
}

static void jsonl_shutdown(void *state) {
    sink *s = state;
    if (!s)
        return;
    if (s->fd >= 0)
        close(s->fd);
    free(s);
}

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "jsonl",
    .version = "1.0",
    .description = "appends events as JSON Lines to a file",
    .config_keys = keys,
    .max_batch_events = 256,
    .max_batch_bytes = 0,
    .init = jsonl_init,
    .submit = jsonl_submit,
    .shutdown = jsonl_shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
