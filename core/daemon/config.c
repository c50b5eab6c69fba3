#include "config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "endpoint.h"
#include "match/match.h"
#include "plugin_find.h"

#define F(field) offsetof(evbus__config, field)

static const char *const log_levels[] = {"error", "warn", "info", "debug", NULL};

static const evbus__cfg_field ingest_curve_fields[] = {
    {.key = "secret_key",
     .type = EVBUS__CFG_STRING,
     .offset = F(curve_secret_key),
     .pos_offset = F(curve_secret_key_pos),
     .help = "evbusd's CURVE key file (PATH.key from `evbus keygen PATH`)"},
    {.key = "authorized_keys",
     .type = EVBUS__CFG_STRING,
     .offset = F(curve_authorized_keys),
     .pos_offset = F(curve_authorized_keys_pos),
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
     .pos_offset = F(max_request_bytes_pos),
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
     .pos_offset = F(max_event_size_pos),
     .min = 256,
     .max = 16ull << 20,
     .help = "largest event (source, detail type, detail, time and resources together)"},
    {.key = "ack_send_timeout",
     .type = EVBUS__CFG_DURATION,
     .offset = F(ack_send_timeout_ms),
     .min = 1,
     .max = 60000,
     .help = "how long to wait for room in a slow producer's queue before dropping its ack"},
    {.key = "handshake_timeout",
     .type = EVBUS__CFG_DURATION,
     .offset = F(handshake_timeout_ms),
     .min = 100,
     .max = 600000,
     .help = "a connection that has not finished its ZeroMQ (and CURVE) handshake by then is "
             "closed"},
    {.key = "max_connections",
     .type = EVBUS__CFG_UINT,
     .offset = F(max_connections),
     .min = 1,
     .max = 1000000,
     .help = "producer connections open at once (at most half the open files evbusd may "
             "have); more are closed at once"},
    {.key = "curve",
     .type = EVBUS__CFG_SECTION,
     .section = ingest_curve_fields,
     .help = "CURVE authentication of producers"},
    {.key = "allow_unauthenticated",
     .type = EVBUS__CFG_BOOL,
     .offset = F(allow_unauthenticated),
     .help = "let anyone who reaches a non-loopback listener publish, without CURVE"},
    {.key = "http",
     .type = EVBUS__CFG_SECTION,
     .section = evbus__config_http_fields,
     .help = "the EventBridge PutEvents API over HTTP, for AWS SDKs and the AWS CLI"},
    {.key = NULL},
};

static const evbus__cfg_field storage_fields[] = {
    {.key = "data_dir",
     .type = EVBUS__CFG_STRING,
     .offset = F(data_dir),
     .pos_offset = F(data_dir_pos),
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

static const char *const policies[] = {"failover", "weighted", "home", "replicate", NULL};
static const char *const failbacks[] = {"automatic", "manual", NULL};

static const evbus__cfg_field target_fields[] = {
    {.key = "name",
     .type = EVBUS__CFG_STRING,
     .offset = T(name),
     .pos_offset = T(name_pos),
     .required = true,
     .help = "the target's name, used by rules"},
    {.key = "plugin",
     .type = EVBUS__CFG_STRING,
     .offset = T(plugin),
     .pos_offset = T(plugin_pos),
     .help = "sink plugin that delivers to it: a short name (sqs) found in plugin_dir and then "
             "lib/evbus/plugins, or the path of a .so, relative to the configuration file"},
    {.key = "config", .type = EVBUS__CFG_MAP, .offset = T(config), .help = "the plugin's settings"},
    {.key = "regions",
     .type = EVBUS__CFG_MAPS,
     .offset = T(regions),
     .help = "the regions it delivers to, each with the plugin's settings there (they override "
             "config:)"},
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
     .help = "batches submitted to the plugin and not yet answered; a crash delivers again at "
             "most twice this many"},
    {.key = "delivery_timeout",
     .type = EVBUS__CFG_DURATION,
     .offset = T(delivery_timeout_ms),
     .min = 10,
     .max = 86400000,
     .help = "how long the plugin has to report a batch's results; events it has not "
             "reported by then count as RETRY"},
    {.key = "retry_max_attempts",
     .type = EVBUS__CFG_UINT,
     .offset = T(retry_max_attempts),
     .min = 1,
     .max = 1000,
     .help = "delivery attempts before an event is dead-lettered"},
    {.key = "retry_base_delay",
     .type = EVBUS__CFG_DURATION,
     .offset = T(retry_base_ms),
     .pos_offset = T(retry_base_pos),
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
    {.key = "policy",
     .type = EVBUS__CFG_ENUM,
     .offset = T(policy),
     .pos_offset = T(policy_pos),
     .choices = policies,
     .help = "how events spread over its regions"},
    {.key = "failback",
     .type = EVBUS__CFG_ENUM,
     .offset = T(failback),
     .choices = failbacks,
     .help = "automatic: back to a better region once it recovered; manual: by evbus region "
             "failback"},
    {.key = "failback_hold",
     .type = EVBUS__CFG_DURATION,
     .offset = T(failback_hold_ms),
     .min = 0,
     .max = 86400000,
     .help = "automatic failback only after the better region stayed healthy this long"},
    {.key = "primary",
     .type = EVBUS__CFG_STRING,
     .offset = T(primary),
     .pos_offset = T(primary_pos),
     .help = "the region it prefers, over the order of the top-level regions:"},
    {.key = "weights",
     .type = EVBUS__CFG_MAP,
     .offset = T(weights),
     .pos_offset = T(weights_pos),
     .help = "policy weighted: a weight 0-255 per region"},
    {.key = NULL},
};

static void target_init(void *elem) {
    evbus__target_cfg *t = elem;
    /* A batch counts in the target's window until its results are durable:
     * max_in_flight with the plugin, and as many more answered and waiting
     * for the writer (dispatch_internal.h), so this also bounds
     * redeliveries after a crash: 2 x max_in_flight x batch size. A sink
     * limited to batches of 10 (SQS, EventBridge) needs a deep window:
     * bench/dispatch measured 25-66k events/s at 16 and 208k at 128. */
    t->max_in_flight = 128;
    t->delivery_timeout_ms = 30000;
    t->retry_max_attempts = 8;
    t->retry_base_ms = 200;
    t->retry_max_ms = 60000;
    t->failback_hold_ms = 30000;
}

static const evbus__cfg_field rule_fields[] = {
    {.key = "name",
     .type = EVBUS__CFG_STRING,
     .offset = offsetof(evbus__rule_cfg, name),
     .pos_offset = offsetof(evbus__rule_cfg, name_pos),
     .required = true,
     .help = "the rule's name, used in messages and metrics"},
    {.key = "pattern",
     .type = EVBUS__CFG_JSON,
     .offset = offsetof(evbus__rule_cfg, pattern),
     .pos_offset = offsetof(evbus__rule_cfg, pattern_pos),
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
     .pos_offset = F(catch_all_pos),
     .help = "target that receives events no rule matches"},
    {.key = NULL},
};

static const evbus__cfg_field control_curve_fields[] = {
    {.key = "secret_key",
     .type = EVBUS__CFG_STRING,
     .offset = F(control_curve_secret_key),
     .pos_offset = F(control_curve_secret_key_pos),
     .help = "evbusd's CURVE key file for the control socket (PATH.key from `evbus keygen`)"},
    {.key = "operator_keys",
     .type = EVBUS__CFG_STRING,
     .offset = F(control_curve_operator_keys),
     .pos_offset = F(control_curve_operator_keys_pos),
     .help = "operators allowed to use the control socket: lines NAME Z85-PUBLIC-KEY"},
    {.key = NULL},
};

static const evbus__cfg_field control_fields[] = {
    {.key = "listen",
     .type = EVBUS__CFG_STRING,
     .offset = F(control_listen),
     .pos_offset = F(control_listen_pos),
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
     .pos_offset = F(metrics_listen_pos),
     .help = "HOST:PORT serving Prometheus text at /metrics and status at / (off if unset)"},
    {.key = "connection_timeout",
     .type = EVBUS__CFG_DURATION,
     .offset = F(metrics_timeout_ms),
     .min = 1000,
     .max = 3600000,
     .help = "an idle or half-sent HTTP connection is closed after this long (whole seconds)"},
    {.key = "max_connections",
     .type = EVBUS__CFG_UINT,
     .offset = F(metrics_max_connections),
     .min = 1,
     .max = 100000,
     .help = "HTTP connections open at once; more are closed at once"},
    {.key = "max_connections_per_ip",
     .type = EVBUS__CFG_UINT,
     .offset = F(metrics_max_connections_per_ip),
     .min = 1,
     .max = 100000,
     .help = "HTTP connections open at once from one address, so that one client cannot "
             "crowd out the scrapers"},
    {.key = "allow_unauthenticated",
     .type = EVBUS__CFG_BOOL,
     .offset = F(metrics_allow_unauthenticated),
     .help = "serve metrics on a non-loopback address, readable by anyone who reaches it"},
    {.key = NULL},
};

#define R(field) offsetof(evbus__region_cfg, field)

static const char *const check_types[] = {"http", "https", "tcp", NULL};

/* The keys of one simple check: a region's health_check, or one child of a
 * calculated one. */
#define SIMPLE_CHECK_FIELDS                                                                        \
    {.key = "url",                                                                                 \
     .type = EVBUS__CFG_STRING,                                                                    \
     .offset = R(check_url),                                                                       \
     .pos_offset = R(check_url_pos),                                                               \
     .help = "what is checked: http://..., https://... or tcp://HOST:PORT (required unless "       \
             "calculated)"},                                                                       \
        {.key = "type",                                                                            \
         .type = EVBUS__CFG_ENUM,                                                                  \
         .offset = R(check_type),                                                                  \
         .choices = check_types,                                                                   \
         .help = "http, https or tcp (default: the url's scheme)"},                                \
        {.key = "interval",                                                                        \
         .type = EVBUS__CFG_DURATION,                                                              \
         .offset = R(check_interval_ms),                                                           \
         .min = 1000,                                                                              \
         .max = 3600000,                                                                           \
         .help = "time between two checks, 1s or more"},                                           \
        {.key = "timeout",                                                                         \
         .type = EVBUS__CFG_DURATION,                                                              \
         .offset = R(check_timeout_ms),                                                            \
         .pos_offset = R(check_timeout_pos),                                                       \
         .min = 10,                                                                                \
         .max = 60000,                                                                             \
         .help = "a check that has no answer by then fails; shorter than interval (default 2s, "   \
                 "or half the interval when that is shorter)"},                                    \
        {.key = "failure_threshold",                                                               \
         .type = EVBUS__CFG_UINT,                                                                  \
         .offset = R(check_failure_threshold),                                                     \
         .min = 1,                                                                                 \
         .max = 10,                                                                                \
         .help = "consecutive failed checks that make a healthy region unhealthy"},                \
        {.key = "recovery_threshold",                                                              \
         .type = EVBUS__CFG_UINT,                                                                  \
         .offset = R(check_recovery_threshold),                                                    \
         .min = 1,                                                                                 \
         .max = 10,                                                                                \
         .help = "consecutive passed checks that make an unhealthy region healthy"},               \
        {.key = "match",                                                                           \
         .type = EVBUS__CFG_STRING,                                                                \
         .offset = R(check_match),                                                                 \
         .pos_offset = R(check_match_pos),                                                         \
         .help = "text the answer's first 5,120 bytes must hold (http and https)"},                \
        {.key = "inverted",                                                                        \
         .type = EVBUS__CFG_BOOL,                                                                  \
         .offset = R(check_inverted),                                                              \
         .help = "true: the region is healthy when the check fails"},

/* A calculated check's children: simple checks; the keys a child leaves out
 * (interval, timeout, thresholds) are the calculated check's own. */
static const evbus__cfg_field child_check_fields[] = {SIMPLE_CHECK_FIELDS{.key = NULL}};

static void child_check_init(void *elem) {
    evbus__region_cfg *c = elem;
    c->check_type = -1; /* from the url's scheme */
    /* 0: inherited from the calculated check (config_regions.c) */
}

static const evbus__cfg_field calculated_fields[] = {
    {.key = "at_least",
     .type = EVBUS__CFG_UINT,
     .offset = R(calc_at_least),
     .pos_offset = R(calc_at_least_pos),
     .min = 0,
     .max = 256,
     .help = "healthy when at least this many child checks are (0: always healthy; more than "
             "there are: never)"},
    {.key = "checks",
     .type = EVBUS__CFG_LIST,
     .offset = R(calc_checks),
     .pos_offset = R(calc_checks_pos),
     .section = child_check_fields,
     .elem_size = sizeof(evbus__region_cfg),
     .elem_init = child_check_init,
     .help = "the child checks, each with url: and the other keys of a health_check"},
    {.key = NULL},
};

static const evbus__cfg_field health_check_fields[] = {
    SIMPLE_CHECK_FIELDS{.key = "calculated",
                        .type = EVBUS__CFG_SECTION,
                        .section = calculated_fields,
                        .pos_offset = R(calc_pos),
                        .help = "Route 53's calculated check: healthy when at least at_least of "
                                "its child checks are"},
    {.key = NULL},
};

static const evbus__cfg_field passive_health_fields[] = {
    {.key = "window",
     .type = EVBUS__CFG_DURATION,
     .offset = R(passive_window_ms),
     .min = 100,
     .max = 3600000,
     .help = "failures count within this window; the region is usable again once a window "
             "passes without one"},
    {.key = "min_failures",
     .type = EVBUS__CFG_UINT,
     .offset = R(passive_min_failures),
     .min = 1,
     .max = 100000,
     .help = "failed sink calls in a row (none delivered) within the window that make the "
             "region unhealthy"},
    {.key = NULL},
};

static const evbus__cfg_field region_fields[] = {
    {.key = "name",
     .type = EVBUS__CFG_STRING,
     .offset = R(name),
     .pos_offset = R(name_pos),
     .required = true,
     .help = "the region's name, such as us-east-1, used by targets' regions:"},
    {.key = "health_check",
     .type = EVBUS__CFG_SECTION,
     .section = health_check_fields,
     .pos_offset = R(check_pos),
     .help = "how the selector checks the region's health (none: always healthy)"},
    {.key = "passive_health",
     .type = EVBUS__CFG_SECTION,
     .section = passive_health_fields,
     .pos_offset = R(passive_pos),
     .help = "the region also counts as unhealthy while its sinks' calls keep failing "
             "(connection errors, 5xx, target faults, timeouts)"},
    {.key = NULL},
};

static void region_init(void *elem) {
    evbus__region_cfg *r = elem;
    r->check_type = -1;
    r->check_interval_ms = 10000;
    r->check_timeout_ms = 0; /* unset: from the interval (config_regions.c) */
    r->check_failure_threshold = 3;
    r->check_recovery_threshold = 3;
    r->passive_window_ms = 10000;
    r->passive_min_failures = 5;
}

static const evbus__cfg_field routing_controls_fields[] = {
    {.key = "at_least_on",
     .type = EVBUS__CFG_UINT,
     .offset = F(controls_at_least_on),
     .pos_offset = F(at_least_on_pos),
     .min = 0,
     .max = 1000,
     .help = "the assertion rule: evbus region off is refused (unless --force) when it would "
             "leave fewer regions on"},
    {.key = "wait_period",
     .type = EVBUS__CFG_DURATION,
     .offset = F(controls_wait_ms),
     .min = 0,
     .max = 86400000,
     .help = "the gating rule: a routing control change is refused (unless --force) this soon "
             "after the last one"},
    {.key = NULL},
};

static const evbus__cfg_field top_fields[] = {
    {.key = "plugin_dir",
     .type = EVBUS__CFG_STRING,
     .offset = F(plugin_dir),
     .help = "directory searched first for plugins named by short name; relative to the "
             "configuration file"},
    {.key = "region",
     .type = EVBUS__CFG_STRING,
     .offset = F(region),
     .help = "the region this router runs in"},
    {.key = "regions",
     .type = EVBUS__CFG_LIST,
     .offset = F(regions),
     .pos_offset = F(regions_pos),
     .section = region_fields,
     .elem_size = sizeof(evbus__region_cfg),
     .elem_init = region_init,
     .help = "the regions targets can deliver to, in order of preference"},
    {.key = "selector",
     .type = EVBUS__CFG_STRING,
     .offset = F(selector),
     .pos_offset = F(selector_pos),
     .help = "the region selector plugin: a short name (region-health, the default) or a path"},
    {.key = "routing_controls",
     .type = EVBUS__CFG_SECTION,
     .section = routing_controls_fields,
     .help = "safety rules of evbus region on|off"},
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
    for (size_t i = 0; i < c->targets.n; i++) {
        const char *t = evbus__config_target(c, i)->name;
        if (t && strcmp(t, name) == 0)
            return (long)i;
    }
    return -1;
}

int evbus__config_host_port(const char *s, struct sockaddr_in *out, const char **why) {
    const char *colon = strrchr(s, ':');
    char host[64], *end;
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof host) {
        *why = "expected HOST:PORT such as 127.0.0.1:9464";
        return -1;
    }
    errno = 0;
    unsigned long port = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || errno || port == 0 || port > 65535) {
        *why = "the port must be a number from 1 to 65535";
        return -1;
    }
    memcpy(host, s, (size_t)(colon - s));
    host[colon - s] = '\0';
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, host, &a.sin_addr) != 1) {
        *why = "the host must be an IPv4 address such as 127.0.0.1";
        return -1;
    }
    *out = a;
    return 0;
}

/* The form of each endpoint (endpoint.c); what the file system must hold
 * for them is checked once data_dir is known (check_files). */
static void check_endpoints(const evbus__config *cfg, evbus__cfg_errors *e) {
    if (cfg->listen.n == 0)
        evbus__cfg_error(e, cfg->listen.at, "ingest.listen", "at least one endpoint is needed");
    for (size_t i = 0; i < cfg->listen.n; i++) {
        char key[48];
        snprintf(key, sizeof key, "ingest.listen[%zu]", i);
        evbus__endpoint_check(e, cfg->listen.v[i],
                              cfg->listen.pos ? cfg->listen.pos[i] : cfg->listen.at, key, true);
    }
    if (cfg->control_listen)
        evbus__endpoint_check(e, cfg->control_listen, cfg->control_listen_pos, "control.listen",
                              false);
    struct sockaddr_in addr;
    const char *why;
    if (cfg->metrics_listen && evbus__config_host_port(cfg->metrics_listen, &addr, &why))
        evbus__cfg_error(e, cfg->metrics_listen_pos, "metrics.listen", "%s, got '%s'", why,
                         cfg->metrics_listen);
}

/* Names must be unique and rules may only name targets that exist. Each
 * error points at the name in question. */
static void check_routing(const evbus__config *cfg, evbus__cfg_errors *e) {
    char key[300];
    for (size_t i = 0; i < cfg->targets.n; i++) {
        const evbus__target_cfg *t = evbus__config_target(cfg, i);
        long first = t->name ? evbus__config_target_index(cfg, t->name) : (long)i;
        if (first != (long)i) {
            snprintf(key, sizeof key, "targets[%zu].name", i);
            evbus__cfg_error(e, t->name_pos, key,
                             "target name '%s' is used twice (first by targets[%ld], line %u)",
                             t->name, first,
                             evbus__config_target(cfg, (size_t)first)->name_pos.line);
        }
    }
    for (size_t i = 0; i < cfg->rules.n; i++) {
        const evbus__rule_cfg *r = evbus__config_rule(cfg, i);
        for (size_t j = 0; r->name && j < i; j++) {
            const evbus__rule_cfg *earlier = evbus__config_rule(cfg, j);
            if (earlier->name && strcmp(earlier->name, r->name) == 0) {
                snprintf(key, sizeof key, "rules[%zu].name", i);
                evbus__cfg_error(e, r->name_pos, key,
                                 "rule name '%s' is used twice (first by rules[%zu], line %u)",
                                 r->name, j, earlier->name_pos.line);
                break;
            }
        }
        /* A rule without targets (or naming one twice) is a slip, not a
         * way to disable it: that is enabled: false. */
        if (r->targets.v && r->targets.n == 0) {
            snprintf(key, sizeof key, "rules[%zu].targets", i);
            evbus__cfg_error(e, r->targets.at, key,
                             "lists no target (rule '%s'): name at least one, or set "
                             "enabled: false",
                             r->name ? r->name : "?");
        }
        for (size_t t = 0; t < r->targets.n; t++) {
            evbus__cfg_pos at = r->targets.pos ? r->targets.pos[t] : r->targets.at;
            snprintf(key, sizeof key, "rules[%zu].targets[%zu]", i, t);
            size_t first = 0;
            while (first < t && strcmp(r->targets.v[first], r->targets.v[t]) != 0)
                first++;
            if (first < t)
                evbus__cfg_error(e, at, key, "target '%s' is listed twice (first as targets[%zu])",
                                 r->targets.v[t], first);
            else if (evbus__config_target_index(cfg, r->targets.v[t]) < 0)
                evbus__cfg_error(e, at, key,
                                 "target '%s' is not defined under targets: (rule '%s')",
                                 r->targets.v[t], r->name ? r->name : "?");
        }
    }
    if (cfg->catch_all_target && evbus__config_target_index(cfg, cfg->catch_all_target) < 0)
        evbus__cfg_error(e, cfg->catch_all_pos, "routing.catch_all_target",
                         "target '%s' is not defined under targets:", cfg->catch_all_target);
}

/* Every enabled rule's pattern, as the router will compile them. The
 * matcher stops at the first pattern it refuses, so a refused rule is
 * reported and left out, and the rest compiled again, until all that remain
 * compile: one compile when every pattern is good. */
static void check_patterns(const evbus__config *cfg, evbus__cfg_errors *e) {
    size_t n = 0;
    evbus__match_rule *rules = calloc(cfg->rules.n ? cfg->rules.n : 1, sizeof *rules);
    size_t *index = calloc(cfg->rules.n ? cfg->rules.n : 1, sizeof *index);
    if (!rules || !index) {
        evbus__cfg_error(e, (evbus__cfg_pos){0, 0}, "rules", "out of memory");
        goto out;
    }
    for (size_t i = 0; i < cfg->rules.n; i++) {
        const evbus__rule_cfg *r = evbus__config_rule(cfg, i);
        if (r->enabled && r->name && r->pattern) {
            rules[n] = (evbus__match_rule){.name = r->name, .pattern_json = r->pattern};
            index[n++] = i;
        }
    }
    while (n > 0) {
        char why[1024];
        size_t failed = n;
        evbus__match_opts opts = {.failed_rule = &failed};
        evbus__matcher *m = NULL;
        evbus_err rc = evbus__matcher_compile_opts(rules, n, &opts, &m, why, sizeof why);
        evbus__matcher_destroy(&m);
        if (rc == EVBUS_OK)
            break;
        if (rc != EVBUS_ECONFIG || failed >= n) {
            evbus__cfg_error(e, (evbus__cfg_pos){0, 0}, "rules", "cannot compile the rules: %s",
                             rc == EVBUS_ECONFIG ? why : evbus_strerror(rc));
            break;
        }
        /* The matcher names the rule on each line of its problems ("rule
         * \"r\": pattern.a: ..."): the key names it here. */
        const evbus__rule_cfg *r = evbus__config_rule(cfg, index[failed]);
        char prefix[300], key[300];
        snprintf(prefix, sizeof prefix, "rule \"%s\": ", r->name);
        snprintf(key, sizeof key, "rules[%zu] (%s)", index[failed], r->name);
        for (char *line = why, *next; line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            const char *what =
                strncmp(line, prefix, strlen(prefix)) == 0 ? line + strlen(prefix) : line;
            evbus__cfg_error(e, r->pattern_pos, key, "%s", what);
        }
        memmove(&rules[failed], &rules[failed + 1], (n - failed - 1) * sizeof *rules);
        memmove(&index[failed], &index[failed + 1], (n - failed - 1) * sizeof *index);
        n--;
    }
out:
    free(rules);
    free(index);
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
    /* libzmq's 30 s lets a flood of half-handshakes hold descriptors for
     * long; a real producer's handshake takes milliseconds. */
    cfg->handshake_timeout_ms = 5000;
    cfg->max_connections = 4096;
    cfg->data_dir = strdup("evbus-data");
    cfg->map_size = 1ull << 30;
    cfg->max_backlog = 0;
    cfg->dedup_window_ms = 24ll * 3600 * 1000;
    cfg->commit_max_events = 16384;
    /* Large commits amortise the fsync, but past a few MiB they only make
     * every ack in them wait longer (p99 of 1.3 s with 16 MiB commits of
     * 1 KiB events in bench/ingest). */
    cfg->commit_max_bytes = 4ull << 20;
    /* A scrape takes milliseconds; slow or silent clients must not hold the
     * listener's slots (1,100 of them made scrapes fail when kept forever). */
    cfg->metrics_timeout_ms = 10000;
    cfg->metrics_max_connections = 256;
    cfg->metrics_max_connections_per_ip = 16;
    /* An SDK keeps a pool of connections (10 in botocore, 50 in the Java
     * SDK) per client: a few hundred serve many producers, and bound what a
     * flood of connections can hold. */
    cfg->http_max_connections = 1024;
    cfg->http_max_connections_per_ip = 256;
    cfg->http_timeout_ms = 30000;
    cfg->controls_at_least_on = 1;
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

/* Whether something only a selector can do is configured: health checks,
 * or a policy other than failover. */
static bool selector_work(const evbus__config *cfg) {
    for (size_t i = 0; i < cfg->regions.n; i++)
        if (evbus__config_region(cfg, i)->check_pos.line ||
            evbus__config_region(cfg, i)->passive_pos.line)
            return true;
    for (size_t i = 0; i < cfg->targets.n; i++)
        if (evbus__config_target(cfg, i)->policy != 0)
            return true;
    return false;
}

/* A selector is loaded when one is named, or when something needs one: a
 * target with several regions, or a region with a health check or passive
 * health. */
static void resolve_selector(evbus__config *cfg, evbus__cfg_errors *e) {
    bool needed = cfg->selector != NULL;
    for (size_t i = 0; i < cfg->targets.n && !needed; i++)
        needed = evbus__config_target(cfg, i)->n_delivery_regions > 1;
    for (size_t i = 0; i < cfg->regions.n && !needed; i++)
        needed = evbus__config_region(cfg, i)->check_pos.line != 0 ||
                 evbus__config_region(cfg, i)->passive_pos.line != 0;
    if (!needed)
        return;
    cfg->selector_given = cfg->selector != NULL;
    if (!cfg->selector && !(cfg->selector = strdup("region-health"))) {
        evbus__cfg_error(e, cfg->selector_pos, "selector", "out of memory");
        return;
    }
    if (evbus__plugin_is_short_name(cfg->selector)) {
        char *found, why[1024];
        evbus_err frc = evbus__plugin_find_kind(cfg->selector, "evbus_selector_", cfg->plugin_dir,
                                                &found, why, sizeof why);
        if (frc == EVBUS_OK) {
            free(cfg->selector);
            cfg->selector = found;
        } else if (!cfg->selector_given && !selector_work(cfg)) {
            /* Nothing but the order of preference to decide: the host
             * routes to each target's first region and applies routing
             * controls and application states itself. */
            free(cfg->selector);
            cfg->selector = NULL;
        } else {
            evbus__cfg_error(e, cfg->selector_pos, "selector", "%s%s",
                             frc == EVBUS_ENOMEM ? "out of memory" : why,
                             cfg->selector_given ? ""
                                                 : " (the default selector, needed by targets "
                                                   "with several regions and by health checks)");
        }
    } else if (absolutize(cfg, &cfg->selector)) {
        evbus__cfg_error(e, cfg->selector_pos, "selector", "cannot resolve the path");
    }
}

static const char *const key_names[] = {"ingest.curve.secret_key",  "ingest.curve.authorized_keys",
                                        "control.curve.secret_key", "control.curve.operator_keys",
                                        "ingest.http.credentials",  "ingest.http.tls_cert",
                                        "ingest.http.tls_key"};

static evbus__cfg_pos *key_pos(evbus__config *cfg, size_t i) {
    evbus__cfg_pos *pos[] = {&cfg->curve_secret_key_pos,
                             &cfg->curve_authorized_keys_pos,
                             &cfg->control_curve_secret_key_pos,
                             &cfg->control_curve_operator_keys_pos,
                             &cfg->http_credentials_pos,
                             &cfg->http_tls_cert_pos,
                             &cfg->http_tls_key_pos};
    return pos[i];
}

/* A file the configuration names must be there to be read by evbusd; how
 * it reads is checked later (a plugin is loaded by --check-config and at
 * start, a key file is parsed by auth.c), but a missing one is reported
 * here, with every other problem. */
static void check_readable(evbus__cfg_errors *e, const char *path, evbus__cfg_pos at,
                           const char *key) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        evbus__cfg_error(e, at, key, "cannot open %s: %s", path, strerror(errno));
    else
        close(fd);
}

/* What the endpoints, plugins and key files need from the file system. */
static void check_files(evbus__config *cfg, evbus__cfg_errors *e) {
    for (size_t i = 0; i < cfg->listen.n; i++) {
        char key[48];
        snprintf(key, sizeof key, "ingest.listen[%zu]", i);
        evbus__cfg_pos at = cfg->listen.pos ? cfg->listen.pos[i] : cfg->listen.at;
        evbus__endpoint_check_ipc_dir(e, cfg->listen.v[i], at, key, cfg->data_dir);
        evbus__endpoint_check_tcp_host(e, cfg->listen.v[i], at, key);
    }
    if (cfg->control_listen) {
        evbus__cfg_pos at =
            cfg->control_listen_pos.line ? cfg->control_listen_pos : cfg->data_dir_pos;
        evbus__endpoint_check_ipc_dir(e, cfg->control_listen, at, "control.listen", cfg->data_dir);
        evbus__endpoint_check_tcp_host(e, cfg->control_listen, at, "control.listen");
    }
    for (size_t i = 0; i < cfg->targets.n; i++) {
        const evbus__target_cfg *t = evbus__config_target(cfg, i);
        char key[300];
        snprintf(key, sizeof key, "targets[%zu].plugin", i);
        if (t->plugin && t->plugin[0] == '/')
            check_readable(e, t->plugin, t->plugin_pos, key);
    }
    for (size_t i = 0; i < sizeof key_names / sizeof key_names[0]; i++) {
        char *const *paths[] = {&cfg->curve_secret_key,
                                &cfg->curve_authorized_keys,
                                &cfg->control_curve_secret_key,
                                &cfg->control_curve_operator_keys,
                                &cfg->http_credentials,
                                &cfg->http_tls_cert,
                                &cfg->http_tls_key};
        if (*paths[i] && (*paths[i])[0] == '/')
            check_readable(e, *paths[i], *key_pos(cfg, i), key_names[i]);
    }
}

evbus_err evbus__config_load(evbus__config *cfg, const char *path, char *err, size_t errlen) {
    free(cfg->path);
    cfg->path = strdup(path);
    evbus_err rc = evbus__cfg_load(path, top_fields, cfg, err, errlen);
    if (rc != EVBUS_OK && rc != EVBUS_ECONFIG)
        return rc;
    /* The checks below go on after schema errors, so that one run reports
     * every problem; values in error have kept their defaults. */
    evbus__cfg_errors e;
    evbus__cfg_errors_init(&e, path, err, errlen);
    check_endpoints(cfg, &e);
    if (cfg->max_event_size > cfg->max_request_bytes)
        evbus__cfg_error(
            &e, cfg->max_event_size_pos.line ? cfg->max_event_size_pos : cfg->max_request_bytes_pos,
            "ingest.max_event_size", "%llu is larger than ingest.max_request_bytes (%llu)",
            (unsigned long long)cfg->max_event_size, (unsigned long long)cfg->max_request_bytes);
    check_routing(cfg, &e);
    evbus__config_regions(cfg, &e);
    check_patterns(cfg, &e);
    if (cfg->plugin_dir && absolutize(cfg, &cfg->plugin_dir))
        evbus__cfg_error(&e, cfg->plugin_dir_pos, "plugin_dir", "cannot resolve the path");
    for (size_t i = 0; i < cfg->targets.n; i++) {
        evbus__target_cfg *t = &((evbus__target_cfg *)cfg->targets.v)[i];
        char key[300];
        if (t->plugin && evbus__plugin_is_short_name(t->plugin)) {
            char *found, why[1024];
            evbus_err frc = evbus__plugin_find(t->plugin, cfg->plugin_dir, &found, why, sizeof why);
            snprintf(key, sizeof key, "targets[%zu].plugin", i);
            if (frc == EVBUS_OK) {
                free(t->plugin);
                t->plugin = found;
            } else {
                evbus__cfg_error(&e, t->plugin_pos, key, "%s",
                                 frc == EVBUS_ENOMEM ? "out of memory" : why);
            }
        } else if (t->plugin && absolutize(cfg, &t->plugin)) {
            snprintf(key, sizeof key, "targets[%zu].plugin", i);
            evbus__cfg_error(&e, t->plugin_pos, key, "cannot resolve the path");
        }
        if (t->retry_base_ms > t->retry_max_ms) {
            snprintf(key, sizeof key, "targets[%zu].retry_base_delay", i);
            evbus__cfg_error(&e, t->retry_base_pos.line ? t->retry_base_pos : cfg->targets.pos[i],
                             key, "is longer than retry_max_delay (target '%s')",
                             t->name ? t->name : "?");
        }
    }
    resolve_selector(cfg, &e);
    if (absolutize(cfg, &cfg->data_dir))
        evbus__cfg_error(&e, cfg->data_dir_pos, "storage.data_dir",
                         "cannot resolve the configuration's directory");
    char **key_paths[] = {&cfg->curve_secret_key,
                          &cfg->curve_authorized_keys,
                          &cfg->control_curve_secret_key,
                          &cfg->control_curve_operator_keys,
                          &cfg->http_credentials,
                          &cfg->http_tls_cert,
                          &cfg->http_tls_key};
    for (size_t i = 0; i < sizeof key_paths / sizeof key_paths[0]; i++) {
        if (*key_paths[i] && absolutize(cfg, key_paths[i]))
            evbus__cfg_error(&e, *key_pos(cfg, i), key_names[i], "cannot resolve the path %s",
                             *key_paths[i]);
    }
    if (!cfg->control_listen && cfg->data_dir[0] == '/') {
        size_t n = strlen(cfg->data_dir) + 32;
        cfg->control_listen = malloc(n);
        if (!cfg->control_listen)
            return EVBUS_ENOMEM;
        snprintf(cfg->control_listen, n, "ipc://%s/control.sock", cfg->data_dir);
        /* A long data_dir can make the default socket path too long. */
        evbus__endpoint_check(&e, cfg->control_listen, cfg->data_dir_pos,
                              "control.listen (default, in storage.data_dir)", false);
    }
    evbus__endpoint_policy_check(cfg, &e);
    check_files(cfg, &e);
    evbus__config_http_check(cfg, &e);
    return rc != EVBUS_OK || e.count ? EVBUS_ECONFIG : EVBUS_OK;
}

void evbus__config_free(evbus__config *cfg) {
    for (size_t i = 0; i < cfg->targets.n; i++)
        free(((evbus__target_cfg *)cfg->targets.v)[i].delivery_regions);
    evbus__cfg_free(top_fields, cfg);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}
