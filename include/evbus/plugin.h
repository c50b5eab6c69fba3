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
#define EVBUS_PLUGIN_ABI_MINOR 2
/** Name of the one symbol a plugin exports. */
#define EVBUS_PLUGIN_ENTRY_SYMBOL "evbus_plugin_entry"

/** Marks the entry function as exported even under -fvisibility=hidden. */
#if defined(__GNUC__)
#define EVBUS_PLUGIN_EXPORT __attribute__((visibility("default")))
#else
#define EVBUS_PLUGIN_EXPORT
#endif

/** What a plugin is. Only sinks are loaded today. */
typedef enum evbus_plugin_kind {
    EVBUS_PLUGIN_SINK = 1,
    EVBUS_PLUGIN_SELECTOR = 2, /**< region selectors (reserved) */
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
     * Creates one instance for one target. `api` and `host` stay valid until
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
     * same as reporting RETRY for every event not yet reported.
     */
    evbus_err (*submit)(void *state, const evbus_batch *batch);

    /**
     * Ends an instance: the host has stopped submitting, and has taken back
     * its HTTP transfers and its batches (events not yet reported stay
     * pending and are delivered again after a restart; do not report them).
     * Must be safe after a failed init, and with NULL.
     */
    void (*shutdown)(void *state);

    /** Reserved for growth; zero. */
    void *reserved[8];
} evbus_plugin;

/** The type of the one exported function. */
typedef const evbus_plugin *(*evbus_plugin_entry_fn)(void);

#ifdef __cplusplus
}
#endif

#endif /* EVBUS_PLUGIN_H */
