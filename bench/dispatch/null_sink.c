/* evbus_bench_null_sink: a sink that reports every event DELIVERED at once,
 * so that a benchmark measures evbusd's own delivery path and nothing
 * behind it. On the way it times each event from its publish call (the
 * stamp in its detail) to its arrival here, into a record it keeps in the
 * file `stats_path`, mapped shared: the benchmark maps the same file and
 * reads the counters while the run goes on, and the latencies once evbusd
 * has stopped. */
#include <errno.h>
#include <evbus/plugin.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "delivery_stats.h"

typedef struct sink {
    const evbus_host_api *api;
    evbus_host *host;
    dstats *st; /* the mapped stats_path; NULL until mapped */
} sink;

static const evbus_config_key keys[] = {
    {"stats_path", EVBUS_CONFIG_STRING, NULL, 1,
     "file the delivery counters and latencies are kept in (mapped shared)"},
    {NULL, 0, NULL, 0, NULL},
};

static evbus_err init(const evbus_host_api *api, evbus_host *host, void **state) {
    sink *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *state = s; /* shutdown() frees it even if the rest of init fails */
    s->api = api;
    s->host = host;
    const char *path;
    if (api->config_string(host, "stats_path", &path) != EVBUS_OK)
        return EVBUS_ECONFIG;
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || ftruncate(fd, sizeof(dstats)) != 0) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "cannot create %s: %s", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return EVBUS_EIO;
    }
    void *m = mmap(NULL, sizeof(dstats), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    /* The mapping keeps the file; the descriptor is not needed any more. */
    close(fd);
    if (m == MAP_FAILED) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "cannot map %s: %s", path, strerror(errno));
        return EVBUS_EIO;
    }
    s->st = m;
    dstats_init(s->st);
    api->log(host, EVBUS_LOG_LEVEL_INFO, "delivering nowhere; delivery times in %s", path);
    return EVBUS_OK;
}

static evbus_err submit(void *state, const evbus_batch *b) {
    sink *s = state;
    size_t n = b->n_events;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    /* One arrival time for the whole batch: it arrived in one call. */
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    for (size_t i = 0; i < n; i++)
        dstats_record(s->st, b->events[i].detail, now, b->events[i].attempt);
    /* The last report may release the batch: n was read before. */
    for (size_t i = 0; i < n; i++)
        s->api->report(s->host, b, i, EVBUS_RESULT_DELIVERED, 0, NULL);
    return EVBUS_OK;
}

static void shutdown(void *state) {
    sink *s = state;
    if (!s)
        return;
    if (s->st)
        munmap(s->st, sizeof(dstats));
    free(s);
}

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "bench-null",
    .version = "1.0",
    .description = "reports every event delivered at once and times it (benchmarks only)",
    .config_keys = keys,
    .max_batch_events = 1024,
    .max_batch_bytes = 0,
    .init = init,
    .submit = submit,
    .shutdown = shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
