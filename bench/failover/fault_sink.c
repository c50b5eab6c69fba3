/* evbus_bench_fault_sink: the endpoint of one simulated region for
 * bench/failover. Each region's instance answers at once, like the null
 * sink of bench/dispatch, so that what the benchmark measures is evbusd
 * moving traffic, not a remote service. A fault switch per region, in the
 * record the benchmark maps (record.h), makes an instance refuse every
 * event: TARGET_FAULT, as the AWS sinks report a refused connection, or
 * (fault_result: retry) RETRY, as they report a 5xx answer; the
 * benchmark flips it at the moment the region's health endpoint goes down.
 *
 * Config: `record` (the file, created by the benchmark) and, per region,
 * `slot` (0 or 1: where that region's figures go). */
#include <errno.h>
#include <evbus/plugin.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "record.h"

typedef struct sink {
    const evbus_host_api *api;
    evbus_host *host;
    fo_record *rec;
    unsigned slot;
    int result; /* what a fault answers: RETRY or TARGET_FAULT */
} sink;

static const evbus_config_key keys[] = {
    {"record", EVBUS_CONFIG_STRING, NULL, 1, "the benchmark's record file (mapped shared)"},
    {"slot", EVBUS_CONFIG_INT, NULL, 1, "this region's slot in the record: 0 or 1"},
    {"fault_result", EVBUS_CONFIG_STRING, "target_fault", 0,
     "what a fault answers: target_fault (connection refused, as the AWS sinks report it) or "
     "retry (a 5xx answer)"},
    {NULL, 0, NULL, 0, NULL},
};

static evbus_err init(const evbus_host_api *api, evbus_host *host, void **state) {
    sink *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *state = s; /* shutdown() frees it even if the rest of init fails */
    s->api = api;
    s->host = host;
    const char *path, *fr;
    int64_t slot;
    if (api->config_string(host, "record", &path) != EVBUS_OK ||
        api->config_int(host, "slot", &slot) != EVBUS_OK ||
        api->config_string(host, "fault_result", &fr) != EVBUS_OK)
        return EVBUS_ECONFIG;
    if (slot < 0 || slot >= FO_REGIONS) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "slot %lld: expected 0 to %d", (long long)slot,
                 FO_REGIONS - 1);
        return EVBUS_ECONFIG;
    }
    s->slot = (unsigned)slot;
    if (strcmp(fr, "retry") == 0) {
        s->result = EVBUS_RESULT_RETRY;
    } else if (strcmp(fr, "target_fault") == 0 && api->abi_minor >= 2) {
        s->result = EVBUS_RESULT_TARGET_FAULT;
    } else {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "fault_result '%s': expected retry or target_fault",
                 fr);
        return EVBUS_ECONFIG;
    }
    /* The benchmark made the file and its header; this only maps it, so
     * that both regions' instances share one record. */
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "cannot open %s: %s", path, strerror(errno));
        return EVBUS_EIO;
    }
    void *m = mmap(NULL, sizeof(fo_record), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (m == MAP_FAILED) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "cannot map %s: %s", path, strerror(errno));
        return EVBUS_EIO;
    }
    s->rec = m;
    if (s->rec->magic != FO_MAGIC || s->rec->size != sizeof(fo_record)) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "%s is not a record of this build", path);
        return EVBUS_ECONFIG;
    }
    return EVBUS_OK;
}

/* N of an id "fo-NONCE-N"; -1 for another id. */
static long long event_number(const char *id) {
    if (strncmp(id, "fo-", 3) != 0)
        return -1;
    const char *dash = strrchr(id, '-');
    char *end;
    errno = 0;
    long long n = strtoll(dash + 1, &end, 10);
    if (dash == id + 2 || *end || errno || n < 0 || n >= FO_MAX_EVENTS)
        return -1;
    return n;
}

static void count(_Atomic uint32_t *bucket, uint32_t n) {
    if (bucket)
        atomic_fetch_add_explicit(bucket, n, memory_order_relaxed);
}

static evbus_err submit(void *state, const evbus_batch *b) {
    sink *s = state;
    fo_record *r = s->rec;
    size_t n = b->n_events;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    uint64_t t0 = atomic_load_explicit(&r->t0_ns, memory_order_relaxed);
    uint64_t ms = t0 && now >= t0 ? (now - t0) / 1000000u : FO_MAX_MS;
    int in_range = ms < FO_MAX_MS;
    if (atomic_load_explicit(&r->fault[s->slot], memory_order_relaxed)) {
        atomic_fetch_add_explicit(&r->refused[s->slot], n, memory_order_relaxed);
        count(in_range ? &r->refused_ms[s->slot][ms] : NULL, (uint32_t)n);
        for (size_t i = 0; i < n; i++)
            s->api->report(s->host, b, i, (evbus_result)s->result, 0,
                           s->result == EVBUS_RESULT_RETRY ? "fault injected: 503"
                                                           : "fault injected: connection refused");
        return EVBUS_OK;
    }
    uint32_t first = 0;
    for (size_t i = 0; i < n; i++) {
        long long k = event_number(b->events[i].id);
        if (k < 0) {
            atomic_fetch_add_explicit(&r->foreign, 1, memory_order_relaxed);
            continue;
        }
        _Atomic uint8_t *seen = &r->seen[k][s->slot];
        uint8_t before = atomic_load_explicit(seen, memory_order_relaxed);
        if (before < 255)
            atomic_store_explicit(seen, (uint8_t)(before + 1), memory_order_relaxed);
        if (before == 0 &&
            atomic_load_explicit(&r->seen[k][s->slot ^ 1], memory_order_relaxed) == 0) {
            first++;
            if (in_range)
                atomic_store_explicit(&r->first_at[k], (uint32_t)ms + 1, memory_order_relaxed);
        }
    }
    count(in_range ? &r->ok_ms[s->slot][ms] : NULL, (uint32_t)n);
    count(in_range ? &r->first_ms[ms] : NULL, first);
    atomic_fetch_add_explicit(&r->unique, first, memory_order_relaxed);
    /* Released last, so that whoever reads `delivered` sees the rest. */
    atomic_fetch_add_explicit(&r->delivered[s->slot], n, memory_order_release);
    /* The last report may release the batch: n was read before. */
    for (size_t i = 0; i < n; i++)
        s->api->report(s->host, b, i, EVBUS_RESULT_DELIVERED, 0, NULL);
    return EVBUS_OK;
}

static void shutdown(void *state) {
    sink *s = state;
    if (!s)
        return;
    if (s->rec)
        munmap(s->rec, sizeof(fo_record));
    free(s);
}

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "bench-fault",
    .version = "1.0",
    .description = "one simulated region per instance: delivers at once, or refuses every event "
                   "while the benchmark's fault switch is on (benchmarks only)",
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
