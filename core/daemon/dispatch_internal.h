/* What the delivery thread (dispatch.c) and the host services it offers
 * plugins (dispatch_host.c) share. Private to those two files. */
#ifndef EVBUS_DISPATCH_INTERNAL_H
#define EVBUS_DISPATCH_INTERNAL_H

#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "batch_table.h"
#include "dispatch.h"
#include "evbus/plugin.h"
#include "id_index.h"
#include "plugin_load.h"

/* A plugin's misuses of `report`, each logged once and then at most once a
 * minute with a count, so that a bug in a hot path cannot flood the log. */
typedef enum evbus__misuse {
    EVBUS__MISUSE_UNKNOWN_BATCH,
    EVBUS__MISUSE_FINISHED_BATCH,
    EVBUS__MISUSE_OTHER_TARGET,
    EVBUS__MISUSE_BAD_INDEX,
    EVBUS__MISUSE_BAD_RESULT,
    EVBUS__MISUSE_DUPLICATE,
    EVBUS__MISUSE_AFTER_SHUTDOWN,
    EVBUS__MISUSE_TIMEOUT, /* not a report, but the same treatment: no result in time */
    EVBUS__MISUSE_KINDS
} evbus__misuse;

typedef struct evbus__retry {
    int64_t due_ms; /* wall clock */
    uint64_t seq;
    uint32_t attempts;
} evbus__retry;

typedef struct evbus__target evbus__target;
typedef struct evbus__instance evbus__instance;

struct evbus_host {
    evbus__dispatch *d;
    evbus__target *t;      /* NULL for the selector's host */
    evbus__instance *inst; /* NULL for the selector's host */
    bool selector;         /* the selector's host: the region services answer */
    char prefix[160];
};

/* A region of the router (dispatch_regions.c): the top-level regions:, or
 * the router's own region when there is no list. */
typedef struct evbus__region_rt {
    const char *name;
    const evbus__region_cfg *cfg; /* NULL: the router's own region, no list */
    bool control_on;              /* the routing control (operators') */
    evbus_region_health health;   /* the selector's verdict */
    evbus__check_ring recent;     /* its check, or a calculated check's verdicts */
    /* A calculated check: each child check's own results, in the order of
     * `checks:` (n_children of them; NULL and 0 otherwise). */
    evbus__check_ring *children;
    size_t n_children;
} evbus__region_rt;

/* One plugin instance of a target: the target's plugin in one of its
 * regions, with that region's settings. */
struct evbus__instance {
    const evbus__target_region *region; /* one of t->cfg->delivery_regions */
    size_t rindex;                      /* its index in d->regions; SIZE_MAX: none */
    void *state;
    bool started; /* init succeeded */
    struct evbus_host host;
};

struct evbus__target {
    uint32_t index;
    const evbus__target_cfg *cfg;
    evbus__cfg_pos at; /* of the target in the configuration */
    evbus__plugin_lib *lib;
    /* One per region, in the configuration's order of preference. Pending
     * entries belong to the target: each batch goes to instances[active],
     * so a region selector changes `active`, and nothing in the store. */
    evbus__instance *instances;
    size_t n_instances, active;
    /* The region selector's view (dispatch_regions.c). pref[p]: the instance
     * at position p of the target's order of preference (primary: first);
     * pref_region[p] its region's index. The route is the selector's last
     * decision; `held` and `route_inst` / `eff_weight` are derived from it,
     * the routing controls and the application state whenever one of them
     * changes, so that a batch costs one read of them. */
    size_t *pref;
    uint32_t *pref_region;
    uint8_t *weights; /* per position, from weights: (1 each without) */
    evbus_route route;
    char route_why[256]; /* the selector's reason for its route, as it last said */
    evbus_app_state app;
    char app_prev[16]; /* fenced: what unfence returns to */
    /* An operator's failback stored before a restart, never told to the
     * selector (a crash between its commit and its application). */
    bool failback_unapplied;
    char failback_by[128]; /* who asked for it ("" unknown: stored before evbus 0.3) */
    bool held;             /* nothing is dispatched: fenced, or no region on */
    size_t route_inst;     /* ROUTE_ONE: the instance every batch goes to */
    uint32_t eff_weight[EVBUS_ROUTE_MAX_REGIONS]; /* WEIGHTED: per position, 0 when off */
    int64_t wrr[EVBUS_ROUTE_MAX_REGIONS];         /* smooth weighted round robin state */
    bool live;                                    /* every instance started */
    uint64_t cursor;                              /* highest sequence taken from pending so far */
    int64_t linger_since; /* monotonic ms a partial batch started waiting; 0: none */
    /* Batches submitted to a plugin and not finished (in_flight), and
     * finished batches whose results the writer has not yet made durable
     * (unconfirmed). A finished batch gives its request slot back at once, so
     * that requests stay max_in_flight deep while the writer commits; both
     * together stay within 2 x max_in_flight (evbus__target_has_room), which
     * is what a crash can deliver again. */
    unsigned in_flight, unconfirmed, max_in_flight;
    size_t batch_max_events, batch_max_bytes;
    evbus__retry *retries; /* sorted by due_ms */
    size_t n_retries, retries_cap;
    evbus__id_index *scheduled; /* seqs in `retries`, so scans skip them */
    evbus__target_counters k;   /* k.plugin holds the plugin's own counters */
    uint32_t fault_streak;      /* batches with target faults since the last delivery */
    struct {
        uint64_t count, logged; /* occurrences; how many the log has told */
        int64_t last_log_ms;
    } misuse[EVBUS__MISUSE_KINDS];
    /* Events dead-lettered (durably) and told in the log (evbus__note_dead). */
    struct {
        uint64_t count, logged;
        int64_t last_log_ms;
    } dead_log;
    /* Policy replicate (dispatch_replicate.c): the target dispatches nothing
     * itself; each of its regions has a lane, a copy of the target with its
     * own cursor, retries and in-flight window that delivers to one instance
     * the entries still owed to that region. `lanes`: the target's, one per
     * instance (NULL for other policies); `lane_of`: a lane's target, `lane`
     * its instance + 1 (0: not a lane); `rescan`: go over the owed entries
     * from the start once idle (after a replayed dead letter). */
    evbus__target *lanes, *lane_of;
    uint32_t lane;
    bool rescan;
};

typedef struct evbus__timer {
    uint64_t id;
    int64_t due_ms; /* monotonic */
    evbus_timer_fn fn;
    void *arg;
} evbus__timer;

typedef struct evbus__transfer {
    struct evbus__transfer *prev, *next;
    void *easy;
    void (*done)(void *arg, void *easy, int curl_code);
    void *arg;
} evbus__transfer;

/* Doubly linked lists with a head pointer, for flights and transfers. */
#define LIST_PUSH(head, x)                                                                         \
    do {                                                                                           \
        (x)->prev = NULL;                                                                          \
        (x)->next = (head);                                                                        \
        if (head)                                                                                  \
            (head)->prev = (x);                                                                    \
        (head) = (x);                                                                              \
    } while (0)
#define LIST_UNLINK(head, x)                                                                       \
    do {                                                                                           \
        if ((x)->prev)                                                                             \
            (x)->prev->next = (x)->next;                                                           \
        else                                                                                       \
            (head) = (x)->next;                                                                    \
        if ((x)->next)                                                                             \
            (x)->next->prev = (x)->prev;                                                           \
    } while (0)

struct evbus__dispatch {
    const evbus__config *cfg;
    evbus__store *store;
    void *zctx;
    void *results; /* PUSH to the writer */
    void *wake;    /* PULL from the writer */
    CURLM *multi;
    evbus__target *targets;
    size_t n_targets;
    evbus_host_api api;
    evbus__timer *timers;
    size_t n_timers, timers_cap;
    uint64_t next_timer_id;
    struct evbus__flight *flights; /* batches in flight (dispatch.c) */
    struct evbus__flight *spare;   /* finished ones kept for reuse (dispatch.c) */
    size_t n_spare;
    evbus__batch_table *batches; /* the headers of flights, looked up by reports */
    int64_t next_sweep_ms;       /* monotonic: a flight's deadline or apply_due_ms */
    bool closing;                /* plugins are being shut down: reports are ignored */
    bool curl_inited;
    evbus__transfer *transfers;
    pthread_t thread;
    bool running;
    atomic_int stop;
    bool scan_due;
    int64_t last_scan_ms;
    /* Copies of the targets' counters for other threads. */
    pthread_mutex_t snap_lock;
    evbus__target_counters *snap;
    /* Regions and the selector (dispatch_regions.c). */
    evbus__region_rt *regions, *rsnap; /* rsnap: the copy other threads read */
    size_t n_regions;
    evbus__plugin_lib *selector_lib;
    void *selector_state;
    struct evbus_host selector_host;
    bool selector_started;
    /* While the selector answers an operator's change (notify): who made
     * it, from the change's audit event ("" otherwise), and what it was
     * about: the target whose application state it set, or the region
     * whose routing control (-1: not that kind). */
    char asked_by[128];
    long asked_target, asked_region;
};

/* True when t may submit one more batch: fewer than max_in_flight requests
 * out, and requests plus batches whose results are not durable yet below
 * twice that. A crash (kill -9) therefore delivers again at most
 * 2 x max_in_flight batches of the target (of each lane for policy
 * replicate). */
static inline bool evbus__target_has_room(const evbus__target *t) {
    return t->in_flight < t->max_in_flight && t->in_flight + t->unconfirmed < 2 * t->max_in_flight;
}

/* The table of host services handed to every plugin's init; `report` is the
 * delivery thread's (dispatch.c). */
void evbus__dispatch_host_api(evbus_host_api *api,
                              void (*report)(evbus_host *, const evbus_batch *, size_t,
                                             evbus_result, uint32_t, const char *));

/* Logs a plugin's misuse of `kind` the first time, then at most once a
 * minute with how many there were since; the host's prefix names the plugin
 * and the target. */
void evbus__host_misuse(evbus_host *h, evbus__misuse kind, evbus_log_level level, const char *fmt,
                        ...) __attribute__((format(printf, 4, 5)));

/* ---- regions and the selector (dispatch_regions.c) ---- */

/* Builds d->regions and each target's order of preference, and loads what
 * the store holds (routing controls, application states, health, routes).
 * After the targets' instances exist, before the selector starts. */
evbus_err evbus__regions_init(evbus__dispatch *d);

/* Loads and starts the configured selector, if any. err says why not. */
evbus_err evbus__regions_start_selector(evbus__dispatch *d, char *err, size_t errlen);

/* Loads the configured selector and checks it is one (--check-config). */
evbus_err evbus__regions_check_selector(const evbus__config *cfg, char *err, size_t errlen);

/* Shuts the selector down; frees the regions. */
void evbus__regions_free(evbus__dispatch *d);

/* A "KEY=VALUE" the writer made durable: applies what operators changed
 * (routing controls, application states, failback requests) and tells the
 * selector. The dispatcher's own keys (health, routes) are ignored.
 * `audit_detail`: the JSON detail of the audit event committed with the
 * change (dispatch_msg.h; NULL: none); a route the selector changes in
 * answer to the change is audited as by the operator named there. */
void evbus__regions_apply_state(evbus__dispatch *d, const char *kv, const char *audit_detail);

/* Passive health: a finished batch's outcome, for the selector. */
void evbus__regions_delivery(evbus__dispatch *d, evbus__target *t, evbus__instance *inst, size_t ok,
                             size_t failed);

/* WEIGHTED routes: the position of the next event (smooth weighted round
 * robin over eff_weight: exact over every sum(eff_weight) events). */
size_t evbus__route_next_position(evbus__target *t);

/* ORIGIN routes: the position of an event from region `origin` (its own
 * region while the route allows it and its control is on), else the
 * position of route_inst. A loop over at most EVBUS_ROUTE_MAX_REGIONS
 * names. */
size_t evbus__route_origin_position(const evbus__target *t, const char *origin);

/* A target the selector routes: one with regions: and running instances. */
static inline bool evbus__target_routed(const evbus__target *t) {
    return t->cfg->regions.n > 0 && t->pref && t->n_instances == t->cfg->n_delivery_regions;
}

/* Whether the region at position p of t's order is switched on. An
 * instance outside the router's regions (a target without regions: in a
 * router whose own region is not listed) has no routing control, so none
 * holds it. */
static inline bool evbus__position_on(const evbus__dispatch *d, const evbus__target *t, size_t p) {
    return t->instances[t->pref[p]].rindex == SIZE_MAX || d->regions[t->pref_region[p]].control_on;
}

/* "active", "fenced" or "failover" (a static string). */
const char *evbus__app_state_name(evbus_app_state a);

/* A ring's records, oldest first, into out (EVBUS__RECENT_CHECKS of room);
 * returns how many. */
size_t evbus__check_ring_copy(const evbus__check_ring *g, evbus__check_record *out);

/* The selector services of the host table (region_count ... set_route). */
void evbus__regions_host_api(evbus_host_api *api);

/* Copies regions and routes for other threads; under d->snap_lock. */
void evbus__regions_snapshot(evbus__dispatch *d);

/* ---- policy replicate (dispatch_replicate.c) ---- */

/* Gives every target with policy replicate a lane per region. After
 * evbus__regions_init. */
evbus_err evbus__replicate_init(evbus__dispatch *d);

/* Frees the lanes (after every flight's results came back or were freed). */
void evbus__replicate_free(evbus__dispatch *d);

/* Dispatches a replicate target: each lane whose region takes events now
 * (routing control on; healthy, or no region of the target is). */
void evbus__replicate_dispatch(evbus__dispatch *d, evbus__target *t, int64_t now_wall, bool fresh);

/* A lane's scan: takes up to `max` entries above its cursor still owed to its
 * region and not scheduled for a retry; settles entries owed only to regions
 * switched off. Returns how many it took. */
size_t evbus__replicate_scan(evbus__dispatch *d, evbus__target *lane, uint64_t *seqs, size_t max);

/* Marks a lane's result as one for its region (and regions switched off);
 * names the region in the reason of a dead letter (written to `buf`).
 * Returns the reason to record. */
const char *evbus__replicate_result(evbus__dispatch *d, const evbus__target *lane,
                                    evbus__store_result *r, const char *reason, char *buf,
                                    size_t len);

/* Lowers *wait to the earliest due retry or lingering batch of t's lanes. */
void evbus__replicate_wait(const evbus__target *t, int64_t now_mono, int64_t now_wall,
                           int64_t *wait);

/* Adds the lanes' counters into the target's snapshot. */
void evbus__replicate_counters(const evbus__target *t, evbus__target_counters *k);

/* Where a replicate target delivers now, for status. */
void evbus__replicate_describe(const evbus__dispatch *d, const evbus__target *t, char *out,
                               size_t len);

/* dispatch.c's dispatch_target, for a lane. */
void evbus__dispatch_lane(evbus__dispatch *d, evbus__target *lane, int64_t now_wall, bool fresh);

#endif
