#include "config.h"

#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"

#define F(field) offsetof(evbus__config, field)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

static const evbus__cfg_field ingest_fields[] = {
    {"listen", EVBUS__CFG_STRING_LIST, F(listen), 0, 0, NULL, NULL,
     "ZeroMQ endpoints to bind, e.g. tcp://127.0.0.1:5555 or ipc:///run/evbus.sock"},
    {"max_request_bytes", EVBUS__CFG_SIZE, F(max_request_bytes), 1024, 1ull << 30, NULL, NULL,
     "largest Publish frame accepted"},
    {"max_events_per_request", EVBUS__CFG_UINT, F(max_events_per_request), 1, 100000, NULL, NULL,
     "most events in one Publish"},
    {"max_event_size", EVBUS__CFG_SIZE, F(max_event_size), 256, 16ull << 20, NULL, NULL,
     "largest event (source, detail type, detail, time and resources together)"},
    {"ack_send_timeout", EVBUS__CFG_DURATION, F(ack_send_timeout_ms), 1, 60000, NULL, NULL,
     "how long to wait for room in a slow producer's queue before dropping its ack"},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

static const evbus__cfg_field storage_fields[] = {
    {"data_dir", EVBUS__CFG_STRING, F(data_dir), 0, 0, NULL, NULL,
     "directory of the LMDB store; relative to the configuration file"},
    {"map_size", EVBUS__CFG_SIZE, F(map_size), 1ull << 20, 1ull << 44, NULL, NULL,
     "largest size the store may reach"},
    {"max_backlog", EVBUS__CFG_UINT, F(max_backlog), 0, UINT64_MAX, NULL, NULL,
     "stored events beyond which producers get RETRY_LATER; 0 for no limit"},
    {"dedup_window", EVBUS__CFG_DURATION, F(dedup_window_ms), 1000, 366ull * 86400000, NULL, NULL,
     "how long an event id is remembered for deduplication"},
    {"commit_max_events", EVBUS__CFG_UINT, F(commit_max_events), 1, 1000000, NULL, NULL,
     "most events written in one group commit"},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

static const evbus__cfg_field top_fields[] = {
    {"region", EVBUS__CFG_STRING, F(region), 0, 0, NULL, NULL, "the region this router runs in"},
    {"log_level", EVBUS__CFG_ENUM, F(log_level), 0, 0, log_levels, NULL, "log verbosity"},
    {"ingest", EVBUS__CFG_SECTION, 0, 0, 0, NULL, ingest_fields, "where producers publish"},
    {"storage", EVBUS__CFG_SECTION, 0, 0, 0, NULL, storage_fields, "the durable store"},
    {NULL, 0, 0, 0, 0, NULL, NULL, NULL},
};

void evbus__config_defaults(evbus__config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->region = strdup("local");
    cfg->log_level = EVBUS_LOG_INFO;
    cfg->listen.v = calloc(1, sizeof(char *));
    cfg->listen.v[0] = strdup("tcp://127.0.0.1:5555");
    cfg->listen.n = 1;
    cfg->max_request_bytes = 32ull << 20;
    cfg->max_events_per_request = 10000;
    cfg->max_event_size = 256 * 1024;
    cfg->ack_send_timeout_ms = 1000;
    cfg->data_dir = strdup("evbus-data");
    cfg->map_size = 1ull << 30;
    cfg->max_backlog = 0;
    cfg->dedup_window_ms = 24ll * 3600 * 1000;
    cfg->commit_max_events = 16384;
}

/* data_dir relative to the configuration file, so that the same file works
 * from any working directory. */
static int absolutize_data_dir(evbus__config *cfg) {
    if (cfg->data_dir[0] == '/')
        return 0;
    char *copy = strdup(cfg->path);
    char base[PATH_MAX];
    if (!copy || !realpath(dirname(copy), base)) {
        free(copy);
        return -1;
    }
    free(copy);
    size_t n = strlen(base) + 1 + strlen(cfg->data_dir) + 1;
    char *abs = malloc(n);
    if (!abs)
        return -1;
    snprintf(abs, n, "%s/%s", base, cfg->data_dir);
    free(cfg->data_dir);
    cfg->data_dir = abs;
    return 0;
}

evbus_err evbus__config_load(evbus__config *cfg, const char *path, char *err, size_t errlen) {
    free(cfg->path);
    cfg->path = strdup(path);
    evbus_err rc = evbus__cfg_load(path, top_fields, cfg, err, errlen);
    if (rc != EVBUS_OK)
        return rc;
    if (cfg->listen.n == 0) {
        snprintf(err, errlen, "%s: ingest.listen: at least one endpoint is needed", path);
        return EVBUS_ECONFIG;
    }
    for (size_t i = 0; i < cfg->listen.n; i++) {
        const char *ep = cfg->listen.v[i];
        if (strncmp(ep, "tcp://", 6) != 0 && strncmp(ep, "ipc://", 6) != 0) {
            snprintf(err, errlen, "%s: ingest.listen: '%s' is not a tcp:// or ipc:// endpoint",
                     path, ep);
            return EVBUS_ECONFIG;
        }
    }
    if (cfg->max_event_size > cfg->max_request_bytes) {
        snprintf(err, errlen,
                 "%s: ingest.max_event_size (%llu) is larger than ingest.max_request_bytes (%llu)",
                 path, (unsigned long long)cfg->max_event_size,
                 (unsigned long long)cfg->max_request_bytes);
        return EVBUS_ECONFIG;
    }
    if (absolutize_data_dir(cfg)) {
        snprintf(err, errlen, "%s: storage.data_dir: cannot resolve the configuration's directory",
                 path);
        return EVBUS_ECONFIG;
    }
    return EVBUS_OK;
}

void evbus__config_free(evbus__config *cfg) {
    evbus__cfg_free(top_fields, cfg);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}
