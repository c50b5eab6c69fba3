#include "config.h"

#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "endpoint.h"

#define F(field) offsetof(evbus__config, field)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

static const evbus__cfg_field ingest_curve_fields[] = {
    {.key = "secret_key",
     .type = EVBUS__CFG_STRING,
     .offset = F(curve_secret_key),
     .help = "evbusd's CURVE key file (PATH.key from `evbus keygen PATH`)"},
    {.key = "authorized_keys",
     .type = EVBUS__CFG_STRING,
     .offset = F(curve_authorized_keys),
     .help = "producers allowed to publish: lines NAME Z85-PUBLIC-KEY [SOURCE-OR-PREFIX* ...]"},
    {.key = NULL},
};

static const evbus__cfg_field ingest_fields[] = {
    {.key = "listen",
     .type = EVBUS__CFG_STRING_LIST,
     .offset = F(listen),
     .help = "ZeroMQ endpoints to bind, e.g. tcp://127.0.0.1:5555 or ipc:///run/evbus.sock"},
    {.key = "max_request_bytes",
     .type = EVBUS__CFG_SIZE,
     .offset = F(max_request_bytes),
     .min = 1024,
     .max = 1ull << 30,
     .help = "largest Publish frame accepted"},
    {.key = "max_events_per_request",
     .type = EVBUS__CFG_UINT,
     .offset = F(max_events_per_request),
     .min = 1,
     .max = 100000,
     .help = "most events in one Publish"},
    {.key = "max_event_size",
     .type = EVBUS__CFG_SIZE,
     .offset = F(max_event_size),
     .min = 256,
     .max = 16ull << 20,
     .help = "largest event (source, detail type, detail, time and resources together)"},
    {.key = "ack_send_timeout",
     .type = EVBUS__CFG_DURATION,
     .offset = F(ack_send_timeout_ms),
     .min = 1,
     .max = 60000,
     .help = "how long to wait for room in a slow producer's queue before dropping its ack"},
    {.key = "curve",
     .type = EVBUS__CFG_SECTION,
     .section = ingest_curve_fields,
     .help = "CURVE authentication of producers"},
    {.key = "allow_unauthenticated",
     .type = EVBUS__CFG_BOOL,
     .offset = F(allow_unauthenticated),
     .help = "let anyone who reaches a non-loopback listener publish, without CURVE"},
    {.key = NULL},
};

static const evbus__cfg_field storage_fields[] = {
    {.key = "data_dir",
     .type = EVBUS__CFG_STRING,
     .offset = F(data_dir),
     .help = "directory of the LMDB store; relative to the configuration file"},
    {.key = "map_size",
     .type = EVBUS__CFG_SIZE,
     .offset = F(map_size),
     .min = 1ull << 20,
     .max = 1ull << 44,
     .help = "largest size the store may reach"},
    {.key = "max_backlog",
     .type = EVBUS__CFG_UINT,
     .offset = F(max_backlog),
     .min = 0,
     .max = UINT64_MAX,
     .help = "stored events beyond which producers get RETRY_LATER; 0 for no limit"},
    {.key = "dedup_window",
     .type = EVBUS__CFG_DURATION,
     .offset = F(dedup_window_ms),
     .min = 1000,
     .max = 366ull * 86400000,
     .help = "how long an event id is remembered for deduplication"},
    {.key = "commit_max_events",
     .type = EVBUS__CFG_UINT,
     .offset = F(commit_max_events),
     .min = 1,
     .max = 1000000,
     .help = "most events written in one group commit"},
    {.key = "retention",
     .type = EVBUS__CFG_DURATION,
     .offset = F(retention_ms),
     .min = 0,
     .max = 3660ull * 86400000,
     .help = "how long delivered events stay stored for evbus replay (0: removed once every "
             "target has them)"},
    {.key = "commit_max_bytes",
     .type = EVBUS__CFG_SIZE,
     .offset = F(commit_max_bytes),
     .min = 64 * 1024,
     .max = 1ull << 30,
     .help = "most bytes of events written in one group commit"},
    {.key = NULL},
};

#define T(field) offsetof(evbus__target_cfg, field)

static const evbus__cfg_field target_fields[] = {
    {.key = "name",
     .type = EVBUS__CFG_STRING,
     .offset = T(name),
     .required = true,
     .help = "the target's name, used by rules"},
    {.key = "plugin",
     .type = EVBUS__CFG_STRING,
     .offset = T(plugin),
     .help = "sink plugin (.so) that delivers to it; relative to the configuration file"},
    {.key = "config", .type = EVBUS__CFG_MAP, .offset = T(config), .help = "the plugin's settings"},
    {.key = "batch_max_events",
     .type = EVBUS__CFG_UINT,
     .offset = T(batch_max_events),
     .min = 1,
     .max = 100000,
     .help = "most events per batch (at most the plugin's own limit)"},
    {.key = "batch_max_bytes",
     .type = EVBUS__CFG_SIZE,
     .offset = T(batch_max_bytes),
     .min = 1,
     .max = 1ull << 30,
     .help = "most bytes of event envelopes per batch (at most the plugin's own limit)"},
    {.key = "batch_linger",
     .type = EVBUS__CFG_DURATION,
     .offset = T(batch_linger_ms),
     .min = 0,
     .max = 60000,
     .help = "how long a partial batch of new events waits to fill up (0: sent at once)"},
    {.key = "max_in_flight",
     .type = EVBUS__CFG_UINT,
     .offset = T(max_in_flight),
     .min = 1,
     .max = 4096,
     .help = "batches submitted to the plugin and not yet answered"},
    {.key = "retry_max_attempts",
     .type = EVBUS__CFG_UINT,
     .offset = T(retry_max_attempts),
     .min = 1,
     .max = 1000,
     .help = "delivery attempts before an event is dead-lettered"},
    {.key = "retry_base_delay",
     .type = EVBUS__CFG_DURATION,
     .offset = T(retry_base_ms),
     .min = 1,
     .max = 3600000,
     .help = "first retry delay; doubles per attempt, with full jitter"},
    {.key = "retry_max_delay",
     .type = EVBUS__CFG_DURATION,
     .offset = T(retry_max_ms),
     .min = 1,
     .max = 86400000,
     .help = "longest retry delay"},
    {.key = "max_pending",
     .type = EVBUS__CFG_UINT,
     .offset = T(max_pending),
     .min = 0,
     .max = UINT64_MAX,
     .help = "pending deliveries beyond which producers get RETRY_LATER for events routed "
             "here; 0 for no limit"},
    {.key = NULL},
};

static void target_init(void *elem) {
    evbus__target_cfg *t = elem;
    /* A batch counts in flight until its results are durable, so this also
     * bounds redeliveries after a crash: max_in_flight x batch size. Each
     * commit cycle (an fsync) carries at most that many results per target,
     * so a sink limited to batches of 10 (SQS, EventBridge) needs a deep
     * window: bench/dispatch measured 25-66k events/s at 16 and 208k at 128. */
    t->max_in_flight = 128;
    t->retry_max_attempts = 8;
    t->retry_base_ms = 200;
    t->retry_max_ms = 60000;
}

static const evbus__cfg_field rule_fields[] = {
    {.key = "name",
     .type = EVBUS__CFG_STRING,
     .offset = offsetof(evbus__rule_cfg, name),
     .required = true,
     .help = "the rule's name, used in messages and metrics"},
    {.key = "pattern",
     .type = EVBUS__CFG_JSON,
     .offset = offsetof(evbus__rule_cfg, pattern),
     .required = true,
     .help = "an EventBridge event pattern, as YAML or as a string of JSON"},
    {.key = "targets",
     .type = EVBUS__CFG_STRING_LIST,
     .offset = offsetof(evbus__rule_cfg, targets),
     .required = true,
     .help = "names of the targets that receive matching events"},
    {.key = "enabled",
     .type = EVBUS__CFG_BOOL,
     .offset = offsetof(evbus__rule_cfg, enabled),
     .help = "false keeps the rule but matches nothing with it"},
    {.key = NULL},
};

static void rule_init(void *elem) {
    ((evbus__rule_cfg *)elem)->enabled = true;
}

static const evbus__cfg_field routing_fields[] = {
    {.key = "catch_all_target",
     .type = EVBUS__CFG_STRING,
     .offset = F(catch_all_target),
     .help = "target that receives events no rule matches"},
    {.key = NULL},
};

static const evbus__cfg_field control_curve_fields[] = {
    {.key = "secret_key",
     .type = EVBUS__CFG_STRING,
     .offset = F(control_curve_secret_key),
     .help = "evbusd's CURVE key file for the control socket (PATH.key from `evbus keygen`)"},
    {.key = "operator_keys",
     .type = EVBUS__CFG_STRING,
     .offset = F(control_curve_operator_keys),
     .help = "operators allowed to use the control socket: lines NAME Z85-PUBLIC-KEY"},
    {.key = NULL},
};

static const evbus__cfg_field control_fields[] = {
    {.key = "listen",
     .type = EVBUS__CFG_STRING,
     .offset = F(control_listen),
     .help =
         "ZeroMQ endpoint for evbus status and evbus dlq (default ipc://DATA_DIR/control.sock)"},
    {.key = "curve",
     .type = EVBUS__CFG_SECTION,
     .section = control_curve_fields,
     .help = "CURVE authentication of operators on a tcp:// control socket"},
    {.key = NULL},
};

static const evbus__cfg_field metrics_fields[] = {
    {.key = "listen",
     .type = EVBUS__CFG_STRING,
     .offset = F(metrics_listen),
     .help = "HOST:PORT serving Prometheus text at /metrics and status at / (off if unset)"},
    {.key = "allow_unauthenticated",
     .type = EVBUS__CFG_BOOL,
     .offset = F(metrics_allow_unauthenticated),
     .help = "serve metrics on a non-loopback address, readable by anyone who reaches it"},
    {.key = NULL},
};

static const evbus__cfg_field top_fields[] = {
    {.key = "region",
     .type = EVBUS__CFG_STRING,
     .offset = F(region),
     .help = "the region this router runs in"},
    {.key = "log_level",
     .type = EVBUS__CFG_ENUM,
     .offset = F(log_level),
     .choices = log_levels,
     .help = "log verbosity"},
    {.key = "ingest",
     .type = EVBUS__CFG_SECTION,
     .section = ingest_fields,
     .help = "where producers publish"},
    {.key = "storage",
     .type = EVBUS__CFG_SECTION,
     .section = storage_fields,
     .help = "the durable store"},
    {.key = "targets",
     .type = EVBUS__CFG_LIST,
     .offset = F(targets),
     .section = target_fields,
     .elem_size = sizeof(evbus__target_cfg),
     .elem_init = target_init,
     .help = "where events are delivered"},
    {.key = "rules",
     .type = EVBUS__CFG_LIST,
     .offset = F(rules),
     .section = rule_fields,
     .elem_size = sizeof(evbus__rule_cfg),
     .elem_init = rule_init,
     .help = "routing rules: event patterns and their targets"},
    {.key = "routing",
     .type = EVBUS__CFG_SECTION,
     .section = routing_fields,
     .help = "routing settings"},
    {.key = "control",
     .type = EVBUS__CFG_SECTION,
     .section = control_fields,
     .help = "the operators' control socket"},
    {.key = "metrics",
     .type = EVBUS__CFG_SECTION,
     .section = metrics_fields,
     .help = "the Prometheus endpoint"},
    {.key = NULL},
};

long evbus__config_target_index(const evbus__config *c, const char *name) {
    for (size_t i = 0; i < c->targets.n; i++)
        if (strcmp(evbus__config_target(c, i)->name, name) == 0)
            return (long)i;
    return -1;
}

/* Names must be unique and rules may only name targets that exist. Errors
 * point at the element's line. */
static evbus_err check_routing(const evbus__config *cfg, char *err, size_t errlen) {
    for (size_t i = 0; i < cfg->targets.n; i++) {
        const char *name = evbus__config_target(cfg, i)->name;
        if (evbus__config_target_index(cfg, name) != (long)i) {
            snprintf(err, errlen, "%s:%u: targets[%zu]: target name '%s' is used twice", cfg->path,
                     cfg->targets.lines[i], i, name);
            return EVBUS_ECONFIG;
        }
    }
    for (size_t i = 0; i < cfg->rules.n; i++) {
        const evbus__rule_cfg *r = evbus__config_rule(cfg, i);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(evbus__config_rule(cfg, j)->name, r->name) == 0) {
                snprintf(err, errlen, "%s:%u: rules[%zu]: rule name '%s' is used twice", cfg->path,
                         cfg->rules.lines[i], i, r->name);
                return EVBUS_ECONFIG;
            }
        }
        for (size_t t = 0; t < r->targets.n; t++) {
            if (evbus__config_target_index(cfg, r->targets.v[t]) < 0) {
                snprintf(err, errlen,
                         "%s:%u: rules[%zu] (%s): target '%s' is not defined under targets:",
                         cfg->path, cfg->rules.lines[i], i, r->name, r->targets.v[t]);
                return EVBUS_ECONFIG;
            }
        }
    }
    if (cfg->catch_all_target && evbus__config_target_index(cfg, cfg->catch_all_target) < 0) {
        snprintf(err, errlen,
                 "%s: routing.catch_all_target: target '%s' is not defined under targets:",
                 cfg->path, cfg->catch_all_target);
        return EVBUS_ECONFIG;
    }
    return EVBUS_OK;
}

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
    /* Large commits amortise the fsync, but past a few MiB they only make
     * every ack in them wait longer (p99 of 1.3 s with 16 MiB commits of
     * 1 KiB events in bench/ingest). */
    cfg->commit_max_bytes = 4ull << 20;
}

/* Paths in the file are relative to the file, so that the same file works
 * from any working directory. */
static int absolutize(const evbus__config *cfg, char **path) {
    if ((*path)[0] == '/')
        return 0;
    char *copy = strdup(cfg->path);
    char base[PATH_MAX];
    if (!copy || !realpath(dirname(copy), base)) {
        free(copy);
        return -1;
    }
    free(copy);
    size_t n = strlen(base) + 1 + strlen(*path) + 1;
    char *abs = malloc(n);
    if (!abs)
        return -1;
    snprintf(abs, n, "%s/%s", base, *path);
    free(*path);
    *path = abs;
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
    if ((rc = check_routing(cfg, err, errlen)) != EVBUS_OK)
        return rc;
    for (size_t i = 0; i < cfg->targets.n; i++) {
        evbus__target_cfg *t = &((evbus__target_cfg *)cfg->targets.v)[i];
        if (t->plugin && absolutize(cfg, &t->plugin)) {
            snprintf(err, errlen, "%s: targets[%zu].plugin: cannot resolve the path", path, i);
            return EVBUS_ECONFIG;
        }
        if (t->retry_base_ms > t->retry_max_ms) {
            snprintf(err, errlen,
                     "%s:%u: targets[%zu] (%s): retry_base_delay is longer than retry_max_delay",
                     path, cfg->targets.lines[i], i, t->name);
            return EVBUS_ECONFIG;
        }
    }
    if (absolutize(cfg, &cfg->data_dir)) {
        snprintf(err, errlen, "%s: storage.data_dir: cannot resolve the configuration's directory",
                 path);
        return EVBUS_ECONFIG;
    }
    char **key_paths[] = {&cfg->curve_secret_key, &cfg->curve_authorized_keys,
                          &cfg->control_curve_secret_key, &cfg->control_curve_operator_keys};
    for (size_t i = 0; i < sizeof key_paths / sizeof key_paths[0]; i++) {
        if (*key_paths[i] && absolutize(cfg, key_paths[i])) {
            snprintf(err, errlen, "%s: cannot resolve the path %s", path, *key_paths[i]);
            return EVBUS_ECONFIG;
        }
    }
    if (!cfg->control_listen) {
        size_t n = strlen(cfg->data_dir) + 32;
        cfg->control_listen = malloc(n);
        if (!cfg->control_listen)
            return EVBUS_ENOMEM;
        snprintf(cfg->control_listen, n, "ipc://%s/control.sock", cfg->data_dir);
    }
    return evbus__endpoint_policy_check(cfg, err, errlen);
}

void evbus__config_free(evbus__config *cfg) {
    evbus__cfg_free(top_fields, cfg);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}
