/* evbusd's configuration: defaults, the YAML schema, and checks that span
 * several keys. See the README's "Configuration" section for the file. */
#ifndef EVBUS_CONFIG_H
#define EVBUS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include "config_schema.h"

/* A region of the top-level `regions:` list: one targets can deliver to.
 * The region selector adds its settings (health checks, ...) here, and to
 * region_fields in config.c. */
typedef struct evbus__region_cfg {
    char *name;
    evbus__cfg_pos name_pos;
    /* health_check: (check_pos.line 0: none, the region is always healthy) */
    evbus__cfg_pos check_pos, check_url_pos, check_timeout_pos, check_match_pos;
    char *check_url;
    int check_type; /* evbus_check_type once loaded; -1 until then: from the url's scheme */
    int64_t check_interval_ms, check_timeout_ms;
    uint64_t check_failure_threshold, check_recovery_threshold;
    char *check_match; /* NULL: none */
    bool check_inverted;
    /* health_check.calculated: (calc_pos.line 0: a simple check). The
     * children are evbus__region_cfg with only the check_* fields set. */
    evbus__cfg_pos calc_pos, calc_at_least_pos, calc_checks_pos;
    uint64_t calc_at_least;
    evbus__cfg_list calc_checks;
    /* passive_health: (passive_pos.line 0: off) */
    evbus__cfg_pos passive_pos;
    int64_t passive_window_ms;
    uint64_t passive_min_failures;
} evbus__region_cfg;

/* A region a target delivers to: the host runs one plugin instance for each.
 * Everything points into the loaded configuration. */
typedef struct evbus__target_region {
    const char *name;
    const evbus__cfg_map *config; /* this region's keys, which override the target's
                                     config:; NULL for a target without regions: */
    evbus__cfg_pos at;            /* of the region's name under the target, else the target */
} evbus__target_region;

/* A delivery target: a name rules route to, and the sink plugin that
 * delivers its pending entries (none: entries wait). */
typedef struct evbus__target_cfg {
    char *name;
    char *plugin;              /* path of the .so, absolute once loaded; NULL: none */
    evbus__cfg_map config;     /* the plugin's settings, checked against its keys */
    evbus__cfg_maps regions;   /* region name -> the plugin's settings there */
    uint64_t batch_max_events; /* 0: the plugin's own limit */
    uint64_t batch_max_bytes;  /* of envelopes; 0: the plugin's own limit */
    int64_t batch_linger_ms;   /* wait this long for a partial batch to fill; 0: send */
    uint64_t max_in_flight;    /* batches submitted and not yet answered (a crash
                                  redelivers at most twice this many) */
    uint64_t retry_max_attempts;
    int64_t retry_base_ms, retry_max_ms;
    /* How long a plugin has to report a batch: later, unreported events
     * count as RETRY. */
    int64_t delivery_timeout_ms;
    uint64_t max_pending; /* beyond it, events routed here get RETRY_LATER; 0: no limit */
    /* How the selector spreads it over its regions (plugin.h: evbus_route_policy,
     * stored as the choice's index: 0 failover, 1 weighted, 2 home, 3 replicate). */
    int policy;
    int failback; /* 0 automatic, 1 manual */
    int64_t failback_hold_ms;
    char *primary;          /* a region of its own, first in its order; NULL: the list's */
    evbus__cfg_map weights; /* region -> 0..255 (policy weighted) */
    evbus__cfg_pos policy_pos, primary_pos, weights_pos;
    /* Where these values are in the file, for errors found after loading. */
    evbus__cfg_pos name_pos, plugin_pos, retry_base_pos;
    /* The regions it delivers to, filled by evbus__config_load(): the names
     * of its regions: in the order of the top-level regions: list (the order
     * of preference), or, without regions:, the router's own region alone.
     * Pending entries belong to the target, not to a region; until a region
     * selector exists it delivers to the first. */
    evbus__target_region *delivery_regions;
    size_t n_delivery_regions;
} evbus__target_cfg;

/* A routing rule: an EventBridge event pattern and the targets it feeds. */
typedef struct evbus__rule_cfg {
    char *name;
    char *pattern; /* JSON text */
    evbus__cfg_strings targets;
    bool enabled;
    evbus__cfg_pos name_pos, pattern_pos; /* where they are in the file */
} evbus__rule_cfg;

typedef struct evbus__config {
    char *path;                /* the file read, for messages */
    char *region;              /* the region this router runs in */
    evbus__cfg_list regions;   /* evbus__region_cfg: where targets may deliver, by preference */
    int log_level;             /* evbus__log_level */
    evbus__cfg_strings listen; /* ingest endpoints (tcp://, ipc://) */
    uint64_t max_request_bytes;
    uint64_t max_events_per_request;
    uint64_t max_event_size;
    uint64_t ack_send_timeout_ms;
    uint64_t handshake_timeout_ms; /* unfinished ingest handshakes are dropped after it */
    uint64_t max_connections;      /* ingest connections open at once */
    char *data_dir;                /* absolute once loaded */
    uint64_t map_size;
    uint64_t max_backlog; /* stored events before RETRY_LATER; 0 = no limit */
    int64_t dedup_window_ms;
    uint64_t commit_max_events;       /* most events in one group commit */
    uint64_t commit_max_bytes;        /* most bytes of events in one group commit */
    int64_t retention_ms;             /* keep delivered events this long, for replay */
    evbus__cfg_list targets;          /* evbus__target_cfg */
    evbus__cfg_list rules;            /* evbus__rule_cfg */
    char *catch_all_target;           /* events no rule matches go here; NULL: nowhere */
    char *control_listen;             /* operators' socket; default ipc://DATA_DIR/control.sock */
    char *metrics_listen;             /* HOST:PORT for /metrics; NULL: off */
    int64_t metrics_timeout_ms;       /* an idle or half-sent HTTP connection is closed after it */
    uint64_t metrics_max_connections; /* open at once, from everyone */
    uint64_t metrics_max_connections_per_ip; /* open at once, from one address */
    char *plugin_dir;                        /* looked in first for plugins named by short name */
    char *selector;                /* the region selector: a path once loaded; NULL: none needed */
    bool selector_given;           /* written in the file (else region-health, when needed) */
    uint64_t controls_at_least_on; /* routing_controls.at_least_on: the assertion rule */
    int64_t controls_wait_ms;      /* routing_controls.wait_period: between two changes */
    /* Who may publish and who may operate (see core/daemon/auth.h). Paths are
     * absolute once loaded; NULL: not configured. */
    char *curve_secret_key;             /* ingest.curve.secret_key */
    char *curve_authorized_keys;        /* ingest.curve.authorized_keys */
    bool allow_unauthenticated;         /* ingest.allow_unauthenticated */
    char *control_curve_secret_key;     /* control.curve.secret_key */
    char *control_curve_operator_keys;  /* control.curve.operator_keys */
    bool metrics_allow_unauthenticated; /* metrics.allow_unauthenticated */
    /* ingest.http: the EventBridge PutEvents API over HTTP (http_ingest.h).
     * http_listen NULL: off. Paths are absolute once loaded. */
    char *http_listen;      /* HOST:PORT */
    char *http_credentials; /* lines NAME ACCESS-KEY-ID SECRET [SOURCE-OR-PREFIX* ...] */
    bool http_allow_unsigned;
    char *http_tls_cert, *http_tls_key; /* PEM files; both or neither */
    uint64_t http_max_connections;      /* open at once; more are refused */
    uint64_t http_max_connections_per_ip;
    int64_t http_timeout_ms; /* a connection must send a whole request within this */
    /* Where these values are in the file, for errors found after loading. */
    evbus__cfg_pos regions_pos, max_request_bytes_pos, max_event_size_pos, data_dir_pos,
        catch_all_pos, control_listen_pos, metrics_listen_pos, plugin_dir_pos, selector_pos,
        at_least_on_pos, curve_secret_key_pos, curve_authorized_keys_pos,
        control_curve_secret_key_pos, control_curve_operator_keys_pos, http_listen_pos,
        http_credentials_pos, http_allow_unsigned_pos, http_tls_cert_pos, http_tls_key_pos;
} evbus__config;

/* The i-th target / rule of a loaded configuration. */
static inline const evbus__target_cfg *evbus__config_target(const evbus__config *c, size_t i) {
    return &((const evbus__target_cfg *)c->targets.v)[i];
}
static inline const evbus__rule_cfg *evbus__config_rule(const evbus__config *c, size_t i) {
    return &((const evbus__rule_cfg *)c->rules.v)[i];
}

static inline const evbus__region_cfg *evbus__config_region(const evbus__config *c, size_t i) {
    return &((const evbus__region_cfg *)c->regions.v)[i];
}

/* Index of the target named `name`, or -1. */
long evbus__config_target_index(const evbus__config *c, const char *name);

/* Parses metrics.listen's form, an IPv4 HOST:PORT such as 127.0.0.1:9464,
 * into *out (in network order). Returns 0, or -1 with *why saying what is
 * wrong (a static string). */
struct sockaddr_in;
int evbus__config_host_port(const char *s, struct sockaddr_in *out, const char **why);

/* Checks the top-level regions: (names well formed and listed once) and each
 * target's regions: (only listed regions, or the router's own region when
 * there is no list), adding every problem to `e`; then fills each target's
 * delivery_regions. In config_regions.c. */
void evbus__config_regions(evbus__config *cfg, evbus__cfg_errors *e);

/* The keys of ingest.http (config_http.c). */
extern const evbus__cfg_field evbus__config_http_fields[];

/* Checks ingest.http once the file is loaded and its paths are absolute:
 * the listen address, allow_unsigned only on loopback, credentials or
 * allow_unsigned when listening, TLS files in pairs, and the credentials
 * file's lines (http_keys.h). Adds each problem to `e`. In config_http.c. */
void evbus__config_http_check(const evbus__config *cfg, evbus__cfg_errors *e);

/* Sets every field to its default. */
void evbus__config_defaults(evbus__config *cfg);

/* Loads `path` over the defaults and checks it: the schema, then what spans
 * several keys (endpoints, names used twice, rules' targets, the catch-all
 * target, regions, every enabled rule's pattern), all of it even when some part is
 * wrong, so that one run reports every problem. A relative data_dir is taken
 * relative to the directory of `path`. On failure err holds one line per
 * problem, each "file:line:col: key: what is wrong". */
evbus_err evbus__config_load(evbus__config *cfg, const char *path, char *err, size_t errlen);

/* Frees what the config owns; leaves it at zero. Accepts a zeroed config. */
void evbus__config_free(evbus__config *cfg);

#endif
