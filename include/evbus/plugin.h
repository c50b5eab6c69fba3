/**
 * @file plugin.h
 * @brief The evbus plugin ABI: how to write a sink that evbusd loads.
 *
 * @mainpage Writing an evbus sink plugin
 *
 * A sink delivers events to one kind of destination (an HTTP endpoint, a
 * queue, a table, a file). evbusd routes each accepted event to targets; a
 * target names the plugin that delivers for it and that plugin's settings:
 *
 * @code{.yaml}
 * targets:
 *   - name: audit-file
 *     plugin: /usr/lib/evbus/plugins/evbus_sink_jsonl.so
 *     config:
 *       path: /var/log/evbus/audit.jsonl
 * @endcode
 *
 * A plugin is a shared object that exports one function,
 * `evbus_plugin_entry` (see ::evbus_plugin_entry_fn), returning a constant
 * ::evbus_plugin descriptor. evbusd calls the descriptor's `init` once per
 * target that uses the plugin and region it delivers to (a target with
 * `regions:` has an instance per region, each seeing the target's `config:`
 * with that region's keys over it; without, one instance), `submit` with
 * batches of that target's events, and `shutdown` when the target goes
 * away. The plugin answers every event of every batch with a result
 * (delivered, retry, failed) through the host's `report` service; evbusd
 * applies results durably, retries with backoff, and dead-letters what
 * cannot be delivered. A plugin never retries by itself, never stores
 * events, and never exits the process.
 *
 * Build it against the installed headers only:
 * @code{.sh}
 * cc -shared -fPIC my_sink.c $(pkg-config --cflags evbus) -o my_sink.so
 * @endcode
 * `examples/sink-jsonl/` is a complete plugin to copy.
 *
 * @section threads Threads
 * evbusd calls every callback of every plugin from one delivery thread, and
 * the host services may only be called from inside those callbacks (or from
 * a timer or HTTP completion callback, which run on that thread too). A
 * plugin therefore needs no locks for its own state. It must not block: a
 * slow call stalls every target. Do I/O asynchronously, through the host's
 * HTTP service (libcurl) or a timer, and report results when they come.
 *
 * @section memory Memory
 * Whoever allocates frees; nothing crosses the boundary to be freed on the
 * other side. A batch, its events and every string in them belong to the
 * host and stay valid until the batch *finishes*: when the plugin has
 * reported a result for each of its events, or when the target's
 * `delivery_timeout` has passed (see ::evbus_host_api::report). The last
 * `report` call for a batch may release it, so the plugin must not touch the
 * batch's events after that call, nor after `delivery_timeout`. (The
 * ::evbus_batch struct itself stays readable, emptied: `n_events` 0, so a
 * loop over a finished batch's events does nothing; its events do not.)
 * Strings the plugin passes to the host (log lines, reasons) are copied
 * before the call returns.
 *
 * @section results Results and batches
 * Results are per event, and they count per batch: a batch takes one of its
 * target's `max_in_flight` places from `submit` until it finishes, so one
 * event left unreported holds back its whole batch, and enough such batches
 * stop the target. The target's `delivery_timeout` (default 30 s) bounds
 * that: events still unreported then count as RETRY (logged as a warning
 * naming the plugin and the target), the batch finishes, and a result
 * reported for it afterwards is ignored. Keep the plugin's own I/O timeouts
 * (e.g. CURLOPT_TIMEOUT_MS) below `delivery_timeout`. Results reported
 * before the batch finishes are applied within about a second, without
 * waiting for the others.
 *
 * A second result for one event, a result for a batch that has finished, for
 * an index outside the batch or with an invalid ::evbus_result is a bug in
 * the plugin: evbusd ignores it, keeps running, and logs it (the first time,
 * then at most once a minute with a count), naming the plugin and target.
 *
 * @section versions Versions
 * The descriptor starts with a magic number, the ABI major and minor version
 * the plugin was built against, and its own size. evbusd refuses a plugin
 * with the wrong magic, another major version, or a descriptor shorter than
 * the one of the minor version it claims, and says what it expected and what
 * it found. Within one major version, structs only grow at their end and
 * enums only gain values; the host service table is size-prefixed, and a
 * plugin checks `api->size` before using a service added in a later minor.
 *
 * ABI change log:
 *  - 1.0 (evbus 0.1): first version.
 *  - 1.1 (evbus 0.2): batches finish at the target's `delivery_timeout`
 *    (unreported events count as RETRY); late, duplicate and invalid
 *    reports are logged and ignored instead of being undefined; config_*
 *    answer EVBUS_ENOENT (new in error.h) for a declared key without a value
 *    (EVBUS_EINVAL for plugins built for 1.0). A plugin that relies on 1.1
 *    behaviour checks `api->abi_minor`.
 *  - 1.2 (evbus 0.2): result ::EVBUS_RESULT_TARGET_FAULT (retry without spending the
 *    event's attempts; shown in `evbus status`). A plugin checks
 *    `api->abi_minor >= 2` before reporting it, and reports RETRY otherwise.
 *  - 1.3 (evbus 0.3): region selectors (::EVBUS_PLUGIN_SELECTOR, the
 *    descriptor's `selector` field, which takes the place of the first
 *    reserved pointer) and the selector services at the end of
 *    ::evbus_host_api (`region_count` to `set_route`). Sinks are unchanged.
 *    ::evbus_region_info ends with the region's passive health settings.
 *  - 1.4 (evbus 0.3): calculated health checks: ::EVBUS_CHECK_CALCULATED,
 *    ::evbus_region_info's `calc_at_least` and `n_children`, and
 *    `region_child_info` at the end of ::evbus_host_api. A selector built
 *    for 1.3 sees such a region's check as an unknown type.
 *  - 1.5 (evbus 0.3): `region_child_check_result` at the end of
 *    ::evbus_host_api: a calculated check's child results, each kept and
 *    shown apart; `check_result` of such a region then records the
 *    calculated verdicts. A selector checks `api->abi_minor >= 5` first.
 *
 * @section selectors Region selectors
 * A target that lists several regions has a sink instance in each; a
 * *selector* decides which of them gets the target's events. evbusd loads
 * one selector (`selector:` in the configuration, by short name or path;
 * `region-health` by default, looked up like sinks as
 * `evbus_selector_NAME.so`), with kind ::EVBUS_PLUGIN_SELECTOR and a
 * ::evbus_selector_ops table in the descriptor's `selector` field; `submit`
 * is NULL. `init` runs once, after every sink's.
 *
 * The selector is never asked per event. It *pushes* each target's route
 * (::evbus_route) with `api->set_route` whenever its decision changes, and
 * the host reads the route it holds for every batch: the steady-state cost
 * is one load per batch. The host groups a target's pending events by the
 * region the route gives each of them (by weight, by origin region) and
 * hands each region's instance its own batches.
 *
 * Everything that must outlive a restart is the host's: routing controls
 * and application states (set by operators with `evbus region`), the last
 * health the selector reported (`set_health`) and its last route
 * (`set_route`) are stored by evbusd's writer and given back to the
 * selector after a restart through `region_info` and `target_info`. A
 * selector keeps no files of its own.
 *
 * The host, not the selector, enforces two rules on every route: a region
 * whose routing control is off gets nothing (its share goes to the next
 * region of the target's order that is on; when none is on, events wait),
 * and a target whose application state is `fenced` gets nothing dispatched
 * (events are accepted and stored, and wait). A selector does its own work
 * (health checks) with the timers and HTTP service, on the delivery thread,
 * like a sink; `tests/plugins/test_selector.c` is a complete small one.
 */
#ifndef EVBUS_PLUGIN_H
#define EVBUS_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include "evbus/evbus.h"

#ifdef __cplusplus
extern "C" {
#endif

/** First field of every descriptor: "EVBP". */
#define EVBUS_PLUGIN_MAGIC 0x45564250u
/** ABI version this header describes. */
#define EVBUS_PLUGIN_ABI_MAJOR 1
#define EVBUS_PLUGIN_ABI_MINOR 5
/** Name of the one symbol a plugin exports. */
#define EVBUS_PLUGIN_ENTRY_SYMBOL "evbus_plugin_entry"

/** Marks the entry function as exported even under -fvisibility=hidden. */
#if defined(__GNUC__)
#define EVBUS_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define EVBUS_PLUGIN_EXPORT
#endif

/** What a plugin is. */
typedef enum evbus_plugin_kind {
    EVBUS_PLUGIN_SINK = 1,
    EVBUS_PLUGIN_SELECTOR = 2, /**< a region selector (since ABI 1.3; see Region selectors) */
} evbus_plugin_kind;

/** Log levels for evbus_host_api::log. */
typedef enum evbus_log_level {
    EVBUS_LOG_LEVEL_ERROR = 0,
    EVBUS_LOG_LEVEL_WARN = 1,
    EVBUS_LOG_LEVEL_INFO = 2,
    EVBUS_LOG_LEVEL_DEBUG = 3,
} evbus_log_level;

/** The outcome of delivering one event. */
typedef enum evbus_result {
    /** The destination has the event. */
    EVBUS_RESULT_DELIVERED = 1,
    /** Not delivered now, may succeed later (throttling, 5xx, timeout,
     * connection refused): evbusd retries with backoff. */
    EVBUS_RESULT_RETRY = 2,
    /** Will never succeed as it is (the destination refused the event itself:
     * malformed, too large, forbidden): evbusd dead-letters it at once. */
    EVBUS_RESULT_FAILED = 3,
    /** Not delivered because the destination itself is at fault, not the
     * event (wrong or expired credentials, access denied, missing queue or
     * table, unreachable endpoint): evbusd retries with backoff like RETRY,
     * but the attempt does not count toward the target's retry limit, so a
     * misconfigured target never dead-letters good events. The reason is
     * shown in `evbus status` until the target delivers again; say what is
     * wrong and what to do, never a secret. Since ABI 1.1. */
    EVBUS_RESULT_TARGET_FAULT = 4,
} evbus_result;

/** Types of configuration keys a plugin declares. */
typedef enum evbus_config_type {
    EVBUS_CONFIG_STRING = 1,
    EVBUS_CONFIG_INT = 2,      /**< a whole number */
    EVBUS_CONFIG_BOOL = 3,     /**< true / false */
    EVBUS_CONFIG_SIZE = 4,     /**< bytes: 4096, 512KiB, 1GiB */
    EVBUS_CONFIG_DURATION = 5, /**< milliseconds: 250ms, 30s, 5m */
} evbus_config_type;

/**
 * One key a plugin accepts in its target's `config:` mapping. evbusd checks
 * the mapping against these before `init`: an unknown key, a value of the
 * wrong type or a missing required key is an error naming the file, line and
 * key, and evbusd does not start.
 */
typedef struct evbus_config_key {
    const char *name;
    evbus_config_type type;
    /** Default as it would be written in YAML; NULL for none. */
    const char *default_value;
    /** Non-zero: the target must set it. */
    int required;
    /** One line for error messages and `evbus plugin info`. */
    const char *help;
} evbus_config_key;

/** One event handed to a sink. Every pointer belongs to the host. */
typedef struct evbus_sink_event {
    uint64_t sequence; /**< the event's sequence in the router */
    const char *id;
    const char *source;
    const char *detail_type;
    const char *detail; /**< JSON object text */
    const char *time;   /**< RFC 3339 */
    const char *origin_region;
    const char *partition_key; /**< "" when none */
    const char *const *resources;
    size_t n_resources;
    const evbus_attr *attributes;
    size_t n_attributes;
    /** The whole event as Amazon EventBridge delivers it to its targets:
     * {"version":"0","id":...,"detail-type":...,"source":...,"account":"",
     * "time":...,"region":...,"resources":[...],"detail":{...}}. */
    const char *envelope_json;
    size_t envelope_len;
    /** 1 for the first delivery attempt of this event to this target. */
    uint32_t attempt;
} evbus_sink_event;

/** A batch of one target's events. Belongs to the host (see Memory). */
typedef struct evbus_batch {
    const char *target; /**< the target's name */
    const char *region; /**< the region the host selected for this batch:
                             the region of the instance it is submitted to */
    const evbus_sink_event *events;
    size_t n_events;
    void *host_private; /**< the host's; do not touch */
} evbus_batch;

/** The host's handle for one plugin instance (one target in one region).
 * Opaque. */
typedef struct evbus_host evbus_host;

/** Called when a timer fires. */
typedef void (*evbus_timer_fn)(void *arg);

/* ---- Region selectors (ABI 1.3) ---- */

/** Most regions one target can deliver to (a route has a weight per region). */
#define EVBUS_ROUTE_MAX_REGIONS 16

/** A region's health as a selector judged it. */
typedef enum evbus_region_health {
    EVBUS_HEALTH_UNKNOWN = 0, /**< no verdict yet (counts as healthy, as in Route 53) */
    EVBUS_HEALTH_HEALTHY = 1,
    EVBUS_HEALTH_UNHEALTHY = 2,
} evbus_region_health;

/** How a region's health is checked (`health_check:` of the region). */
typedef enum evbus_check_type {
    EVBUS_CHECK_NONE = 0, /**< no check: the region is always healthy */
    EVBUS_CHECK_HTTP = 1, /**< GET url: 2xx/3xx within the timeout (and `match`) */
    EVBUS_CHECK_HTTPS = 2,
    EVBUS_CHECK_TCP = 3, /**< a TCP connection to url's host:port within the timeout */
    /** Since ABI 1.4: Route 53's calculated check. The region has no url of
     * its own; it is healthy when at least `calc_at_least` of its
     * `n_children` child checks are (each a simple check, with its own
     * thresholds, given by `region_child_info`). 0: always healthy; more
     * than n_children: never. */
    EVBUS_CHECK_CALCULATED = 4,
} evbus_check_type;

/** A target's routing policy (`policy:` of the target). */
typedef enum evbus_route_policy {
    EVBUS_POLICY_FAILOVER = 1, /**< the first healthy region of the target's order */
    EVBUS_POLICY_WEIGHTED = 2, /**< split by `weights:` over the healthy regions */
    EVBUS_POLICY_HOME = 3,     /**< an event's origin region while healthy, else failover */
    /** Every event to every region whose routing control is on and whose
     * health (set_health) is not unhealthy (all of them when none is
     * healthy). The host forms this from the selector's health verdicts and
     * ignores routes set for such a target; an event stays pending until
     * each region it is owed to has it. */
    EVBUS_POLICY_REPLICATE = 4,
} evbus_route_policy;

/** A target's application state, set by operators (`evbus region fence|unfence|failover|
 * failback`). `failover` asks the selector to keep the target off its primary. */
typedef enum evbus_app_state {
    EVBUS_APP_ACTIVE = 1,
    EVBUS_APP_FENCED = 2, /**< events accepted and stored, nothing dispatched */
    EVBUS_APP_FAILOVER = 3,
} evbus_app_state;

/** One region of the router (the top-level `regions:` list, in its order), as
 * `region_info` gives it. Strings belong to the host and live until the
 * selector's `shutdown`. */
typedef struct evbus_region_info {
    size_t size; /**< set by the caller to sizeof(evbus_region_info) */
    const char *name;
    evbus_check_type check;
    const char *url; /**< http(s)://... or tcp://HOST:PORT; NULL without a check */
    int64_t interval_ms, timeout_ms;
    uint32_t failure_threshold, recovery_threshold; /**< consecutive results */
    const char *match;      /**< must appear in the first 5,120 bytes of the body; NULL: none */
    int inverted;           /**< non-zero: healthy when the check fails */
    int routing_control_on; /**< the operators' switch, now (non-zero: on) */
    evbus_region_health last_health; /**< as last reported with set_health (kept across
                                          restarts); UNKNOWN before any */
    /** Passive health (`passive_health:` of the region; 0 and 0 when not set):
     * the region counts as unhealthy once `passive_min_failures` batches in a
     * row, within `passive_window_ms`, ended with no event delivered and some
     * answered RETRY or TARGET_FAULT (or timed out), as told by
     * ::evbus_selector_ops::delivery. */
    int64_t passive_window_ms;
    uint32_t passive_min_failures;
    /** Since ABI 1.4, for a check of type ::EVBUS_CHECK_CALCULATED (else 0):
     * the child checks needed healthy, and how many there are. */
    uint32_t calc_at_least;
    size_t n_children;
} evbus_region_info;

/** One target (only targets with regions are listed), as `target_info` gives
 * it. Arrays and strings belong to the host and live until `shutdown`. */
typedef struct evbus_target_info {
    size_t size; /**< set by the caller to sizeof(evbus_target_info) */
    const char *name;
    evbus_route_policy policy;
    int failback_manual;      /**< `failback: manual`: never return to a better region alone */
    int64_t failback_hold_ms; /**< automatic failback only after this long healthy */
    /** The target's regions in its order of preference (its `primary:` first,
     * then the top-level order), as indices for region_info. A route's
     * positions (::evbus_route) are positions in this array. */
    const uint32_t *regions;
    size_t n_regions;
    const uint8_t *weights; /**< per position: `weights:` (policy weighted; else all 1) */
    evbus_app_state app_state;
    /** The route last set with set_route (kept across restarts): the position
     * of its first region; 0 before any. */
    uint32_t route_first;
} evbus_target_info;

/** How a route spreads a target's events over its regions. */
typedef enum evbus_route_mode {
    EVBUS_ROUTE_ONE = 1,      /**< every event to position `first` */
    EVBUS_ROUTE_WEIGHTED = 2, /**< events split by `weight`, exactly: of every
                                   sum(weight) consecutive events, weight[p] go to p */
    EVBUS_ROUTE_ORIGIN = 3,   /**< an event to the position of its origin region when
                                   weight[that position] is non-zero, else to `first` */
} evbus_route_mode;

/** A selector's decision for one target. Copied by set_route. */
typedef struct evbus_route {
    evbus_route_mode mode;
    uint32_t first;                          /**< a position in the target's regions */
    uint8_t weight[EVBUS_ROUTE_MAX_REGIONS]; /**< per position (WEIGHTED, ORIGIN) */
    /** A short reason for the log, the audit event and `evbus status` ("us-east-1 is
     * unhealthy"); may be NULL. `evbus status` shows the last one set, so keep it true
     * of the current decision: when the reason changes but the route does not, call
     * set_route again with the same route (the host then only takes the new text:
     * nothing is stored, logged or audited). */
    const char *why;
} evbus_route;

/** What changed, for ::evbus_selector_ops::notify. */
typedef enum evbus_selector_event {
    /** Region `index`'s routing control was switched (region_info says how). */
    EVBUS_SELECTOR_CONTROL = 1,
    /** Target `index`'s application state changed (target_info says to what). */
    EVBUS_SELECTOR_APP_STATE = 2,
    /** An operator asked target `index` to fail back to its first region
     * (`evbus region failback`): the way back for `failback: manual`. */
    EVBUS_SELECTOR_FAILBACK = 3,
} evbus_selector_event;

/** The callbacks of a selector, in its descriptor's `selector` field. */
typedef struct evbus_selector_ops {
    size_t size; /**< sizeof(evbus_selector_ops) */
    /** Something the selector decides on has changed (see
     * ::evbus_selector_event): read it through the host's services and call
     * set_route for targets whose route changes. Runs on the delivery
     * thread, never inside another callback of the selector's. */
    void (*notify)(void *state, evbus_selector_event event, size_t index);
    /** Passive health: a batch of target `target` to region `region`
     * (region_info index) ended with `ok` events delivered and `failed`
     * events answered RETRY or TARGET_FAULT. May be NULL. */
    void (*delivery)(void *state, size_t target, size_t region, size_t ok, size_t failed);
} evbus_selector_ops;

/**
 * The services evbusd offers a plugin instance, passed to `init`. The table
 * is the host's and stays valid until `shutdown` returns.
 */
typedef struct evbus_host_api {
    /** sizeof the table the host filled in: a service exists only if its
     * offset is below this size. */
    size_t size;
    /** The ABI version the host implements. */
    uint16_t abi_major, abi_minor;

    /** Writes a log line prefixed with "[sink:PLUGIN:TARGET]" (or
     * "[sink:PLUGIN:TARGET-REGION]" for a target with regions). Checks the
     * level first; arguments are formatted as printf does. */
    void (*log)(evbus_host *host, evbus_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
        __attribute__((format(printf, 3, 4)))
#endif
        ;
    /** Non-zero when `level` is enabled: check it before building an
     * expensive message. */
    int (*log_enabled)(evbus_host *host, evbus_log_level level);

    /** The value of a declared configuration key in this instance's region
     * (the region's own value, else the target's `config:` value, else the
     * key's default), already checked against its type. String
     * values belong to the host and live until `shutdown`. Returns EVBUS_OK
     * and sets *out; otherwise leaves *out untouched and returns:
     *  - EVBUS_ENOENT for an optional key declared without a default that
     *    the target leaves unset (a plugin built for ABI 1.0 gets
     *    EVBUS_EINVAL here, as 1.0 gave it);
     *  - EVBUS_EINVAL for a key the plugin did not declare, or declared with
     *    another type (a bug in the plugin). */
    evbus_err (*config_string)(evbus_host *host, const char *key, const char **out);
    evbus_err (*config_int)(evbus_host *host, const char *key, int64_t *out);
    evbus_err (*config_bool)(evbus_host *host, const char *key, int *out);
    /** SIZE keys in bytes, DURATION keys in milliseconds. */
    evbus_err (*config_number)(evbus_host *host, const char *key, uint64_t *out);

    /** Milliseconds on a monotonic clock. */
    int64_t (*now_ms)(evbus_host *host);

    /** Calls fn(arg) once, on the delivery thread, after `delay_ms`. Returns
     * a non-zero timer id, or 0 when out of memory. */
    uint64_t (*timer_add)(evbus_host *host, int64_t delay_ms, evbus_timer_fn fn, void *arg);
    /** Cancels a timer that has not fired; ignores unknown ids. */
    void (*timer_cancel)(evbus_host *host, uint64_t id);

    /**
     * Reports the result for event `index` of `batch`: `index` is the
     * event's position in `batch->events` (0 to n_events - 1), not its
     * sequence. Every event of every submitted batch gets exactly one
     * result, in any order, during `submit` or later, until the batch's
     * `delivery_timeout`. `retry_after_ms` (RETRY only; 0 for the host's
     * backoff) is a hint such as a Retry-After header. `reason` says what
     * happened (a service's error code and message); it is kept with dead
     * letters. The last result of a batch may release the batch (see
     * Memory). A report that breaks these rules is ignored and logged (see
     * Results and batches); it never harms evbusd or other batches.
     */
    void (*report)(evbus_host *host, const evbus_batch *batch, size_t index, evbus_result result,
                   uint32_t retry_after_ms, const char *reason);

    /**
     * Starts an HTTP transfer on the host's shared libcurl multi handle
     * (keep-alive connections across all targets). `easy` is a CURL * the
     * plugin created and configured; it stays the plugin's. When the transfer
     * ends, done(arg, easy, curl_code) runs on the delivery thread; the
     * plugin may then reuse or clean up `easy`. `done` never runs inside
     * `http_start` (nor inside `submit` or any other callback of the
     * plugin's): always later, from the host's delivery loop, so the plugin
     * may finish setting up its request after `http_start` returns. Returns
     * EVBUS_OK or EVBUS_ENOMEM / EVBUS_EINVAL (then done is not called).
     *
     * evbusd calls curl_global_init() once before the first `init` and
     * curl_global_cleanup() after the last `shutdown`; a plugin must call
     * neither (they are not safe while other threads use libcurl), and just
     * uses curl_easy_* on the delivery thread.
     */
    evbus_err (*http_start)(evbus_host *host, void *easy,
                            void (*done)(void *arg, void *easy, int curl_code), void *arg);

    /** Adds `delta` to the counter `name` of this target (Prometheus metric
     * evbus_sink_NAME_total{target="..."}). `name`: [a-z0-9_]+. */
    void (*counter_add)(evbus_host *host, const char *name, uint64_t delta);

    /* ---- Since ABI 1.3, for selectors (a sink's host answers EVBUS_EINVAL,
     * 0 for counts). Check `size` before using them. ---- */

    /** Regions of the router (top-level `regions:`), and targets with regions. */
    size_t (*region_count)(evbus_host *host);
    size_t (*target_count)(evbus_host *host);
    /** Fills `*out` (up to out->size bytes, which the caller sets) for region
     * `index` < region_count. EVBUS_EINVAL for another index. */
    evbus_err (*region_info)(evbus_host *host, size_t index, evbus_region_info *out);
    /** Fills `*out` for target `index` < target_count, as region_info does. */
    evbus_err (*target_info)(evbus_host *host, size_t index, evbus_target_info *out);
    /** Records one check of region `index`: `ok` non-zero when it passed,
     * `detail` ("200 in 3 ms", "connect timeout") copied. The host keeps the
     * recent ones for `evbus status`. For a calculated check (since ABI 1.5):
     * record each child's results with `region_child_check_result`, and
     * here each evaluation of the calculation ("2 of 3 child checks healthy,
     * at least 2"). EVBUS_EINVAL for a bad index. */
    evbus_err (*check_result)(evbus_host *host, size_t index, int ok, const char *detail);
    /** Sets region `index`'s health verdict. The host stores it durably (it is
     * region_info's last_health after a restart), logs a change and shows it
     * in `evbus status`. EVBUS_EINVAL for a bad index or health. */
    evbus_err (*set_health)(evbus_host *host, size_t index, evbus_region_health health);
    /** Sets target `index`'s route; batches formed from then on follow it
     * (batches in flight finish where they are; their retries follow the new
     * route). The host stores it durably, logs a change with `route->why`.
     * EVBUS_EINVAL for a bad index, mode or position, or a weighted route
     * whose weights are all 0. */
    evbus_err (*set_route)(evbus_host *host, size_t index, const evbus_route *route);

    /* ---- Since ABI 1.4 ---- */

    /** Fills `*out` (as region_info does) with child check `child` <
     * n_children of region `index`'s calculated check: its check fields
     * (check, url, interval_ms, timeout_ms, thresholds, match, inverted),
     * and the region's name; the other fields are 0. EVBUS_EINVAL for a bad
     * index or child. */
    evbus_err (*region_child_info)(evbus_host *host, size_t index, size_t child,
                                   evbus_region_info *out);

    /* ---- Since ABI 1.5 ---- */

    /** Records one check of child check `child` < n_children of region
     * `index`'s calculated check, as check_result does for a region: `ok`
     * non-zero when it passed (after `inverted`), `detail` copied. `evbus
     * region status` shows each child's recent results apart, under the
     * region, labelled by the child's url. EVBUS_EINVAL for a bad index or
     * child. */
    evbus_err (*region_child_check_result)(evbus_host *host, size_t index, size_t child, int ok,
                                           const char *detail);
} evbus_host_api;

/**
 * The descriptor a plugin exports. Constant; evbusd reads it once.
 */
typedef struct evbus_plugin {
    uint32_t magic;     /**< EVBUS_PLUGIN_MAGIC */
    uint16_t abi_major; /**< EVBUS_PLUGIN_ABI_MAJOR */
    uint16_t abi_minor; /**< EVBUS_PLUGIN_ABI_MINOR */
    uint32_t size;      /**< sizeof(evbus_plugin) */
    evbus_plugin_kind kind;
    const char *name;    /**< short, [a-z0-9_-]+; used in log prefixes */
    const char *version; /**< the plugin's own version */
    const char *description;
    /** Configuration keys, ended by an entry whose name is NULL; may be NULL
     * when the plugin takes none. */
    const evbus_config_key *config_keys;
    /** Largest batch the destination takes (e.g. 10 for SQS SendMessageBatch
     * and EventBridge PutEvents); a target may ask for less. */
    uint32_t max_batch_events;
    /** Largest batch in bytes of envelopes (e.g. 256 KiB for SQS); 0: none. */
    uint32_t max_batch_bytes;

    /**
     * Creates one instance for one target (for a selector: the one instance
     * of the router, with no configuration keys). `api` and `host` stay valid until
     * shutdown returns. Sets *state to the instance's state (may be NULL).
     * Returns EVBUS_OK; anything else makes evbusd refuse to start, after
     * logging why (log it through api->log first) — then shutdown is still
     * called with whatever *state holds.
     */
    evbus_err (*init)(const evbus_host_api *api, evbus_host *host, void **state);

    /**
     * Delivers a batch: report a result for every event, now or later (and
     * before the target's `delivery_timeout`). The host submits at most the
     * target's in-flight limit of batches at once. Returning an error is the
     * same as reporting RETRY for every event not yet reported. NULL for a
     * selector.
     */
    evbus_err (*submit)(void *state, const evbus_batch *batch);

    /**
     * Ends an instance: the host has stopped submitting, and has taken back
     * its HTTP transfers and its batches (events not yet reported stay
     * pending and are delivered again after a restart; do not report them).
     * Must be safe after a failed init, and with NULL.
     */
    void (*shutdown)(void *state);

    /** A selector's callbacks (kind ::EVBUS_PLUGIN_SELECTOR, since ABI 1.3);
     * NULL for a sink. */
    const evbus_selector_ops *selector;
    /** Reserved for growth; zero. */
    void *reserved[7];
} evbus_plugin;

/** The type of the one exported function. */
typedef const evbus_plugin *(*evbus_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* EVBUS_PLUGIN_H */
