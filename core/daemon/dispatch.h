/* The dispatcher: the delivery thread. It reads pending entries, builds
 * batches within each target's limits, hands them to the target's sink
 * plugin, and sends every event's result to the writer, which applies it
 * durably (delivered: removed; retry: scheduled with backoff; failed or out
 * of attempts: dead-lettered). Every plugin callback runs on this thread. */
#ifndef EVBUS_DISPATCH_H
#define EVBUS_DISPATCH_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"
#include "store.h"

typedef struct evbus__dispatch evbus__dispatch;

/* Per-target counters, for status and metrics. */
#define EVBUS__PLUGIN_COUNTERS 16

/* A counter a plugin keeps through api->counter_add. */
typedef struct evbus__plugin_counter {
    char name[48]; /* "" for an unused slot */
    uint64_t value;
} evbus__plugin_counter;

typedef struct evbus__target_counters {
    uint64_t delivered, retried, dead, in_flight_events, batches;
    uint64_t in_flight_batches; /* including those whose results are not durable yet */
    uint64_t target_faults;     /* events answered EVBUS_RESULT_TARGET_FAULT */
    char target_fault[256];     /* the last such reason until a delivery; "" when none */
    size_t fault_region;        /* index in the target's delivery_regions of the region that gave
                                   target_fault; SIZE_MAX: not known */
    bool fault_left;            /* traffic has moved away from fault_region since (a route to one
                                   region): the fault is that region's, not where it delivers now */
    size_t region;       /* index in the target's delivery_regions of where it delivers now */
    char route[192];     /* where it delivers now: "us-west-2", "us-east-1 3, us-west-2 1",
                            "(held: fenced)" */
    char route_why[256]; /* why, now: the host's rules (fenced, routing controls) first, else
                            the selector's reason; "" when none */
    char app_state[16];  /* active, fenced, failover; "" for a target without regions */
    bool held;           /* nothing is dispatched now (fenced, or its regions switched off) */
    evbus__plugin_counter plugin[EVBUS__PLUGIN_COUNTERS];
} evbus__target_counters;

/* How many recent health checks of a region `evbus status` shows. */
#define EVBUS__RECENT_CHECKS 8

typedef struct evbus__check_record {
    int64_t at_ms; /* wall clock */
    bool ok;
    char detail[56];
} evbus__check_record;

/* The recent checks of one check: a ring, newest at `next` - 1. */
typedef struct evbus__check_ring {
    evbus__check_record v[EVBUS__RECENT_CHECKS];
    size_t n, next;
} evbus__check_ring;

/* A region as the delivery thread last saw it, for status. */
typedef struct evbus__region_status {
    char name[64];
    bool control_on;
    int health;                                       /* evbus_region_health */
    bool checked;                                     /* it has a health check, or passive health */
    evbus__check_record recent[EVBUS__RECENT_CHECKS]; /* oldest first; a calculated check's
                                                         verdicts */
    size_t n_recent;
    size_t n_children; /* a calculated check's child checks (evbus__dispatch_region_child) */
} evbus__region_status;

/* One child check of a calculated check, for status. */
typedef struct evbus__child_status {
    char check[160]; /* what it checks: its url (http://, https://, tcp://) */
    evbus__check_record recent[EVBUS__RECENT_CHECKS]; /* oldest first */
    size_t n_recent;
} evbus__child_status;

/* The router's regions (the top-level regions:, or its own region). */
size_t evbus__dispatch_region_count(evbus__dispatch *d);

/* Region i as of the delivery thread's last loop. Safe from any thread.
 * EVBUS_EINVAL for an unknown region. */
evbus_err evbus__dispatch_region_status(evbus__dispatch *d, size_t i, evbus__region_status *out);

/* Child check `c` < n_children of region i's calculated check, as of the
 * delivery thread's last loop. Safe from any thread. EVBUS_EINVAL for an
 * unknown region or child. */
evbus_err evbus__dispatch_region_child(evbus__dispatch *d, size_t i, size_t c,
                                       evbus__child_status *out);

/* Loads every target's plugin, checks its configuration against the keys the
 * plugin declares (every problem of every target, each naming the file,
 * line, column and key) and creates one instance per target and region it
 * delivers to (config.h: delivery_regions). Results go to the writer's `results_endpoint`
 * (inproc, PUSH/PULL); the writer wakes the dispatcher on `wake_endpoint`
 * after each commit that added pending entries. Does not start the thread.
 * The caller owns *out (evbus__dispatch_destroy()). */
evbus_err evbus__dispatch_new(const evbus__config *cfg, evbus__store *store, void *zctx,
                              const char *results_endpoint, const char *wake_endpoint,
                              evbus__dispatch **out, char *err, size_t errlen);

/* What --check-config does for delivery: loads every target's plugin and
 * checks its settings in each region against the keys it declares, without
 * starting anything. EVBUS_ECONFIG with err holding every problem, one a
 * line, each naming file, line, column and key. */
evbus_err evbus__dispatch_check(const evbus__config *cfg, char *err, size_t errlen);

/* A target's counters as of the delivery thread's last loop. Safe from any
 * thread. EVBUS_EINVAL for an unknown target. */
evbus_err evbus__dispatch_counters(evbus__dispatch *d, uint32_t target,
                                   evbus__target_counters *out);

/* The name of the plugin delivering for `target`, or NULL. */
const char *evbus__dispatch_plugin_name(const evbus__dispatch *d, uint32_t target);

/* Starts the delivery thread. */
evbus_err evbus__dispatch_start(evbus__dispatch *d);

/* Stops the thread: no more batches are submitted; batches the plugins have
 * not answered stay pending and are delivered again after a restart. Shuts
 * the instances down. Safe to call twice. */
void evbus__dispatch_stop(evbus__dispatch *d);

/* Stops if needed, unloads plugins, frees; NULLs *d; accepts NULL. */
void evbus__dispatch_destroy(evbus__dispatch **d);

#endif
