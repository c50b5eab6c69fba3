/* evbusd's configuration: defaults, the YAML schema, and checks that span
 * several keys. See the README's "Configuration" section for the file. */
#ifndef EVBUS_CONFIG_H
#define EVBUS_CONFIG_H

#include <stdint.h>

#include "config_schema.h"

typedef struct evbus__config {
    char *path;                /* the file read, for messages */
    char *region;              /* the region this router runs in */
    int log_level;             /* evbus__log_level */
    evbus__cfg_strings listen; /* ingest endpoints (tcp://, ipc://) */
    uint64_t max_request_bytes;
    uint64_t max_events_per_request;
    uint64_t max_event_size;
    uint64_t ack_send_timeout_ms;
    char *data_dir; /* absolute once loaded */
    uint64_t map_size;
    uint64_t max_backlog; /* stored events before RETRY_LATER; 0 = no limit */
    int64_t dedup_window_ms;
    uint64_t commit_max_events; /* most events in one group commit */
} evbus__config;

/* Sets every field to its default. */
void evbus__config_defaults(evbus__config *cfg);

/* Loads `path` over the defaults and checks it; a relative data_dir is taken
 * relative to the directory of `path`. On failure err holds one line per
 * problem, each naming file, line and key. */
evbus_err evbus__config_load(evbus__config *cfg, const char *path, char *err, size_t errlen);

/* Frees what the config owns; leaves it at zero. Accepts a zeroed config. */
void evbus__config_free(evbus__config *cfg);

#endif
