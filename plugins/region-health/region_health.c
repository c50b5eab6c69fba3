/* region-health: evbus's default region selector. Route 53 health-check
 * semantics, faster: each region with a health_check is probed every
 * interval (1 s or more); failure_threshold consecutive failures make it
 * unhealthy, recovery_threshold consecutive passes healthy again. A region
 * without a check is always healthy; one whose routing control is off
 * counts as unhealthy (ARC). A calculated check runs each child check on
 * its own (own thresholds, own verdict) and is healthy while at least
 * calc_at_least of them are (Route 53's CALCULATED). With passive_health, a region is also
 * unhealthy once min_failures sink calls in a row failed (no event
 * delivered; RETRY, TARGET_FAULT or a timeout), the first of them at most
 * `window` before the last: an outage is noticed between probes, or
 * without any health endpoint. It is usable again once a whole window
 * passes without a failure (it then gets traffic back, after failback_hold
 * under failover), or as soon as a call to it delivers.
 *
 * Per target, by its policy:
 *  - failover: the first usable region of its order. Leaving an unusable
 *    region is immediate; going back to a better one (failback) waits until
 *    it has been healthy for failback_hold (automatic), or for
 *    `evbus region failback` (manual). Any failed check, even one below
 *    failure_threshold, restarts the hold. Thresholds plus the hold are the
 *    hysteresis: a flapping region never gets traffic back while it flaps.
 *    When no region is usable, the primary (Route 53: fail open); if it is
 *    down too, batches fail and events wait durably in the store.
 *  - weighted: the configured weights over the usable regions; zero-weight
 *    regions only when every weighted one is unusable.
 *  - home: events go to their origin region while usable, else failover.
 *  - replicate: no route; the host delivers to every region that is on and
 *    not unhealthy by the verdicts this selector sets.
 * The decision is pushed to the host (set_route) only when it changes. */
#include "region_health.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct rh rh;
typedef struct region region;

/* One child check of a calculated check: a simple check with its own
 * thresholds and verdict (as a Route 53 child health check is). */
typedef struct child {
    region *r;
    size_t index;
    evbus_region_info info; /* the check fields only */
    evbus_region_health health;
    uint32_t passes, failures;
    uint64_t timer;
    probe p;
} child;

struct region {
    rh *owner;
    size_t index;
    evbus_region_info info;
    evbus_region_health health; /* the health check's verdict (HEALTHY without one) */
    uint32_t passes, failures;  /* consecutive */
    int64_t healthy_since;      /* monotonic ms; valid while usable() health is HEALTHY */
    uint64_t timer;
    probe p;
    /* Passive health: the current streak of failed sink calls. */
    uint32_t passive_fails;
    int64_t passive_first_ms, passive_last_ms;
    bool passive_down;
    uint64_t passive_timer;
    /* A calculated check: its children (none for a simple check). */
    child *children;
    size_t n_children;
};

typedef struct target {
    evbus_target_info info;
    uint32_t first;     /* the position it delivers to (ONE) */
    bool failback_once; /* an operator asked: go back now if usable */
    bool started;
    char why[160]; /* the reason last given with set_route: re-sent when it changes */
} target;

struct rh {
    const evbus_host_api *api;
    evbus_host *host;
    region *regions;
    size_t n_regions;
    target *targets;
    size_t n_targets;
    /* A decision waiting for time alone (a failback hold ending): without
     * health checks nothing else would run it. */
    uint64_t wake_timer;
    int64_t wake_at;
};

static void decide_all(rh *s);

static void on_wake(void *arg) {
    rh *s = arg;
    s->wake_timer = 0;
    decide_all(s);
}

/* Runs decide_all at `at` (monotonic ms), or earlier if already due. */
static void wake_at(rh *s, int64_t at) {
    if (s->wake_timer && s->wake_at <= at)
        return;
    if (s->wake_timer)
        s->api->timer_cancel(s->host, s->wake_timer);
    int64_t delay = at - s->api->now_ms(s->host);
    s->wake_at = at;
    s->wake_timer = s->api->timer_add(s->host, delay > 0 ? delay : 0, on_wake, s);
}

/* The health the host is told: the check's verdict, unless passive health
 * says the region's sinks keep failing. */
static evbus_region_health combined(const region *r) {
    return r->passive_down ? EVBUS_HEALTH_UNHEALTHY : r->health;
}

static bool usable(const region *r) {
    return r->info.routing_control_on && combined(r) != EVBUS_HEALTH_UNHEALTHY;
}

/* The first usable position of t's order at or after `from`; -1: none. */
static long first_usable(const rh *s, const target *t, size_t from) {
    for (size_t p = from; p < t->info.n_regions; p++)
        if (usable(&s->regions[t->info.regions[p]]))
            return (long)p;
    return -1;
}

/* What region r is now, as a reason names it: "healthy", "unhealthy",
 * "switched off", ... */
static const char *region_state(const region *r) {
    if (!r->info.routing_control_on)
        return "switched off";
    if (r->passive_down)
        return "unhealthy (its sinks' calls keep failing)";
    if (r->info.check == EVBUS_CHECK_NONE)
        return "not checked (always healthy)";
    switch (r->health) {
    case EVBUS_HEALTH_HEALTHY: return "healthy";
    case EVBUS_HEALTH_UNHEALTHY: return "unhealthy";
    case EVBUS_HEALTH_UNKNOWN: break;
    }
    return "not checked yet";
}

static const char *name_at(const rh *s, const target *t, size_t p) {
    return s->regions[t->info.regions[p]].info.name;
}

/* "30s", "1500ms": a duration as the configuration writes it. */
static void duration_text(int64_t ms, char *out, size_t len) {
    if (ms % 1000 == 0)
        snprintf(out, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, len, "%lldms", (long long)ms);
}

/* Sends t's route, and again whenever only its reason changed, so that
 * `evbus status` always says why the target is where it is now (the host
 * stores, logs and audits only a change of the route itself). */
static void push_route(rh *s, size_t ti, evbus_route *r, bool changed) {
    target *t = &s->targets[ti];
    const char *why = r->why ? r->why : "";
    if (!changed && strcmp(why, t->why) == 0)
        return;
    snprintf(t->why, sizeof t->why, "%s", why);
    s->api->set_route(s->host, ti, r);
}

/* Failover (and home's fallback): the first usable region of the order,
 * with failback after the hold. `home`: the route is ORIGIN, each event to
 * its origin region while that one is usable, else to the failover choice.
 * Every branch says why, so that the reason shown is the current one (a
 * route kept after a fail-open, a failback waiting for its hold). */
static void decide_failover(rh *s, size_t ti, int64_t now, bool home) {
    target *t = &s->targets[ti];
    size_t n = t->info.n_regions;
    /* Application state failover: keep off the primary. */
    size_t from = t->info.app_state == EVBUS_APP_FAILOVER && n > 1 ? 1 : 0;
    long best = first_usable(s, t, from);
    uint32_t cur = t->first < n ? t->first : 0;
    const region *rc = &s->regions[t->info.regions[cur]];
    bool cur_ok = usable(rc) && cur >= from;
    uint32_t next = cur;
    char why[160], hold[32];
    if (best < 0) {
        next = (uint32_t)from; /* fail open, as Route 53 does */
        snprintf(why, sizeof why, "no region healthy: failing open to %s", name_at(s, t, from));
    } else if (!cur_ok) {
        next = (uint32_t)best;
        snprintf(why, sizeof why, "%s is %s", rc->info.name,
                 !rc->info.routing_control_on ? "switched off"
                 : cur < from                 ? "left (application state failover)"
                                              : "unhealthy");
    } else if ((uint32_t)best < cur) {
        const region *rb = &s->regions[t->info.regions[best]];
        bool held = combined(rb) != EVBUS_HEALTH_HEALTHY ||
                    now - rb->healthy_since < t->info.failback_hold_ms;
        if (held && combined(rb) == EVBUS_HEALTH_HEALTHY && !t->info.failback_manual)
            wake_at(s, rb->healthy_since + t->info.failback_hold_ms);
        duration_text(t->info.failback_hold_ms, hold, sizeof hold);
        if (t->failback_once || (!t->info.failback_manual && !held)) {
            next = (uint32_t)best;
            snprintf(why, sizeof why, "failback: %s is healthy%s", rb->info.name,
                     t->failback_once ? " (asked by an operator)" : "");
        } else if (t->info.failback_manual) {
            snprintf(why, sizeof why,
                     "%s is %s again; failback: manual waits for evbus region failback",
                     rb->info.name, region_state(rb));
        } else {
            snprintf(why, sizeof why,
                     "%s is %s again; failback once it has passed every check for %s "
                     "(failback_hold)",
                     rb->info.name, region_state(rb), hold);
        }
    } else if (cur > from) {
        /* Where it should be, after the better regions: why not those. */
        const region *rf = &s->regions[t->info.regions[from]];
        snprintf(why, sizeof why, "%s is %s", rf->info.name, region_state(rf));
    } else if (from > 0) {
        snprintf(why, sizeof why, "application state failover: off the primary %s",
                 name_at(s, t, 0));
    } else if (home) {
        snprintf(why, sizeof why, "each event to its origin region while usable, else %s",
                 rc->info.name);
    } else {
        snprintf(why, sizeof why, "%s, the first region of the order, is %s", rc->info.name,
                 region_state(rc));
    }
    t->failback_once = false;
    bool changed = next != cur || !t->started;
    t->first = next;
    t->started = true;
    evbus_route r = {
        .mode = home ? EVBUS_ROUTE_ORIGIN : EVBUS_ROUTE_ONE, .first = next, .why = why};
    if (home) {
        /* Which origin regions keep their events changes with health alone:
         * the host skips a route equal to the one it has, so no churn. */
        for (size_t p = 0; p < n && p < EVBUS_ROUTE_MAX_REGIONS; p++)
            r.weight[p] = usable(&s->regions[t->info.regions[p]]);
        changed = true;
    }
    push_route(s, ti, &r, changed);
}

static void decide_weighted(rh *s, size_t ti) {
    target *t = &s->targets[ti];
    size_t n =
        t->info.n_regions < EVBUS_ROUTE_MAX_REGIONS ? t->info.n_regions : EVBUS_ROUTE_MAX_REGIONS;
    char why[160];
    int used = snprintf(why, sizeof why, "weights over the healthy regions");
    evbus_route r = {.mode = EVBUS_ROUTE_WEIGHTED, .why = why};
    uint32_t sum = 0;
    for (size_t p = 0; p < n; p++) {
        const region *rp = &s->regions[t->info.regions[p]];
        sum += r.weight[p] = usable(rp) ? t->info.weights[p] : 0;
        if (!usable(rp) && used > 0 && (size_t)used < sizeof why)
            used += snprintf(why + used, sizeof why - (size_t)used, "; %s is %s", rp->info.name,
                             region_state(rp));
    }
    /* Route 53: a zero weight gets traffic only when every non-zero one is
     * unhealthy; when all are unhealthy, all count as healthy. */
    for (size_t p = 0; p < n && sum == 0; p++)
        if (usable(&s->regions[t->info.regions[p]]))
            r.weight[p] = 1;
    for (size_t p = 0; p < n; p++)
        sum += r.weight[p];
    if (sum == 0) {
        r.why = "no region healthy: failing open to the configured weights";
        for (size_t p = 0; p < n; p++)
            sum += r.weight[p] = t->info.weights[p];
        for (size_t p = 0; p < n && sum == 0; p++)
            r.weight[p] = 1;
    }
    for (size_t p = 0; p < n; p++)
        if (r.weight[p]) {
            r.first = (uint32_t)p;
            break;
        }
    push_route(s, ti, &r, true);
}

static void decide(rh *s, size_t ti, int64_t now) {
    target *t = &s->targets[ti];
    if (t->info.n_regions == 0)
        return;
    switch (t->info.policy) {
    case EVBUS_POLICY_WEIGHTED: decide_weighted(s, ti); return;
    case EVBUS_POLICY_REPLICATE: return; /* the host sends to every healthy region */
    case EVBUS_POLICY_HOME: decide_failover(s, ti, now, true); return;
    default: decide_failover(s, ti, now, false); return;
    }
}

static void decide_all(rh *s) {
    int64_t now = s->api->now_ms(s->host);
    for (size_t i = 0; i < s->n_targets; i++)
        decide(s, i, now);
}

/* Tells the host when the combined health changed from `before`. */
static void publish_health(region *r, evbus_region_health before) {
    rh *s = r->owner;
    evbus_region_health now = combined(r);
    if (now == EVBUS_HEALTH_HEALTHY && before != EVBUS_HEALTH_HEALTHY)
        r->healthy_since = s->api->now_ms(s->host);
    if (now != before)
        s->api->set_health(s->host, r->index, now);
}

static void set_health(region *r, evbus_region_health h) {
    evbus_region_health before = combined(r);
    r->health = h;
    publish_health(r, before);
}

static void on_check(void *owner, bool ok, const char *detail) {
    region *r = owner;
    rh *s = r->owner;
    if (r->info.inverted)
        ok = !ok;
    s->api->check_result(s->host, r->index, ok, detail);
    if (ok) {
        r->passes++;
        r->failures = 0;
        if (r->health != EVBUS_HEALTH_HEALTHY && r->passes >= r->info.recovery_threshold)
            set_health(r, EVBUS_HEALTH_HEALTHY);
    } else {
        r->failures++;
        r->passes = 0;
        /* A failure below failure_threshold leaves the region healthy, but
         * it restarts the failback hold: traffic goes back only to a
         * primary that passed every check for the whole hold. */
        r->healthy_since = s->api->now_ms(s->host);
        if (r->health != EVBUS_HEALTH_UNHEALTHY && r->failures >= r->info.failure_threshold) {
            s->api->log(s->host, EVBUS_LOG_LEVEL_WARN,
                        "region %s failed %u checks in a row (last: %s): unhealthy", r->info.name,
                        r->failures, detail);
            set_health(r, EVBUS_HEALTH_UNHEALTHY);
        }
    }
    decide_all(s);
}

/* A calculated check's verdict: at least calc_at_least children not
 * unhealthy (a child without a verdict yet counts as healthy, as in Route 53). */
static evbus_region_health calculated(const region *r) {
    size_t healthy = 0;
    for (size_t c = 0; c < r->n_children; c++)
        healthy += r->children[c].health != EVBUS_HEALTH_UNHEALTHY;
    return healthy >= r->info.calc_at_least ? EVBUS_HEALTH_HEALTHY : EVBUS_HEALTH_UNHEALTHY;
}

/* Whether the host keeps a calculated check's child results apart (ABI 1.5). */
static bool child_results_apart(const rh *s) {
    return s->api->abi_minor >= 5 &&
           s->api->size >= offsetof(evbus_host_api, region_child_check_result) + sizeof(void *) &&
           s->api->region_child_check_result;
}

/* Records one evaluation of r's calculated check, after a child's result. */
static void record_calculated(region *r) {
    rh *s = r->owner;
    size_t healthy = 0;
    for (size_t c = 0; c < r->n_children; c++)
        healthy += r->children[c].health != EVBUS_HEALTH_UNHEALTHY;
    char line[80];
    snprintf(line, sizeof line, "%zu of %zu child checks healthy, at least %u", healthy,
             r->n_children, r->info.calc_at_least);
    s->api->check_result(s->host, r->index, healthy >= r->info.calc_at_least, line);
}

static void on_child_check(void *owner, bool ok, const char *detail) {
    child *k = owner;
    region *r = k->r;
    rh *s = r->owner;
    if (k->info.inverted)
        ok = !ok;
    if (child_results_apart(s)) {
        s->api->region_child_check_result(s->host, r->index, k->index, ok, detail);
    } else { /* an older evbusd: one list, each result labelled */
        char line[120];
        snprintf(line, sizeof line, "%.60s: %s", k->info.url, detail);
        s->api->check_result(s->host, r->index, ok, line);
    }
    evbus_region_health before = k->health;
    if (ok) {
        k->passes++;
        k->failures = 0;
        if (k->health != EVBUS_HEALTH_HEALTHY && k->passes >= k->info.recovery_threshold)
            k->health = EVBUS_HEALTH_HEALTHY;
    } else {
        k->failures++;
        k->passes = 0;
        if (k->health != EVBUS_HEALTH_UNHEALTHY && k->failures >= k->info.failure_threshold)
            k->health = EVBUS_HEALTH_UNHEALTHY;
    }
    if (child_results_apart(s))
        record_calculated(r);
    if (k->health == before)
        return;
    evbus_region_health verdict = calculated(r);
    s->api->log(s->host, EVBUS_LOG_LEVEL_INFO,
                "region %s: child check %s is %s (last: %s); calculated: %s", r->info.name,
                k->info.url, k->health == EVBUS_HEALTH_HEALTHY ? "healthy" : "unhealthy", detail,
                verdict == EVBUS_HEALTH_HEALTHY ? "healthy" : "unhealthy");
    if (verdict != r->health)
        set_health(r, verdict);
    decide_all(s);
}

static void on_child_timer(void *arg) {
    child *k = arg;
    rh *s = k->r->owner;
    k->timer = s->api->timer_add(s->host, k->info.interval_ms, on_child_timer, k);
    if (rh_probe_start(&k->p, s->api, s->host) != EVBUS_OK)
        on_child_check(k, false, "cannot start the check");
}

/* Sets up region r's child checks and its first verdict; returns how many
 * were started, or -1. */
static long start_children(rh *s, region *r) {
    r->children = calloc(r->info.n_children ? r->info.n_children : 1, sizeof *r->children);
    if (!r->children)
        return -1;
    r->n_children = r->info.n_children;
    /* Before the first results the children keep the region's last verdict,
     * so a restart does not flip it. */
    evbus_region_health start = r->info.last_health == EVBUS_HEALTH_UNHEALTHY
                                    ? EVBUS_HEALTH_UNHEALTHY
                                    : EVBUS_HEALTH_HEALTHY;
    for (size_t c = 0; c < r->n_children; c++) {
        child *k = &r->children[c];
        k->r = r;
        k->index = c;
        k->info.size = sizeof k->info;
        if (s->api->region_child_info(s->host, r->index, c, &k->info) != EVBUS_OK)
            return -1;
        k->health = start;
        k->p = (probe){.owner = k,
                       .done = on_child_check,
                       .type = k->info.check,
                       .url = k->info.url,
                       .match = k->info.match,
                       .timeout_ms = k->info.timeout_ms};
        k->timer = s->api->timer_add(s->host, 0, on_child_timer, k);
    }
    r->health = calculated(r);
    s->api->set_health(s->host, r->index, r->health);
    return (long)r->n_children;
}

static void on_timer(void *arg) {
    region *r = arg;
    rh *s = r->owner;
    r->timer = s->api->timer_add(s->host, r->info.interval_ms, on_timer, r);
    if (rh_probe_start(&r->p, s->api, s->host) != EVBUS_OK)
        on_check(r, false, "cannot start the check");
}

/* Passive health's way back: once a whole window has passed without a
 * failure, the region may get traffic again. */
static void on_passive_timer(void *arg) {
    region *r = arg;
    rh *s = r->owner;
    r->passive_timer = 0;
    int64_t now = s->api->now_ms(s->host), quiet = now - r->passive_last_ms;
    if (!r->passive_down)
        return;
    if (quiet < r->info.passive_window_ms) {
        r->passive_timer =
            s->api->timer_add(s->host, r->info.passive_window_ms - quiet, on_passive_timer, r);
        return;
    }
    s->api->log(s->host, EVBUS_LOG_LEVEL_INFO,
                "region %s: no failed sink call for %lld ms: usable again (passive health)",
                r->info.name, (long long)quiet);
    r->passive_down = false;
    r->passive_fails = 0;
    publish_health(r, EVBUS_HEALTH_UNHEALTHY);
    decide_all(s);
}

/* The host's report of a finished batch (plugin.h: passive health). */
static void delivery(void *state, size_t ti, size_t ri, size_t ok, size_t failed) {
    (void)ti;
    rh *s = state;
    if (ri >= s->n_regions || !s->regions[ri].info.passive_min_failures || (!ok && !failed))
        return;
    region *r = &s->regions[ri];
    int64_t now = s->api->now_ms(s->host), window = r->info.passive_window_ms;
    if (ok) { /* it delivers: whatever failed before, it works now */
        r->passive_fails = 0;
        if (r->passive_down) {
            s->api->log(s->host, EVBUS_LOG_LEVEL_INFO,
                        "region %s: a sink call delivered: usable again (passive health)",
                        r->info.name);
            r->passive_down = false;
            publish_health(r, EVBUS_HEALTH_UNHEALTHY);
            decide_all(s);
        }
        return;
    }
    if (r->passive_fails == 0 || now - r->passive_first_ms > window) {
        r->passive_fails = 0; /* a new streak: the old one was too slow to count */
        r->passive_first_ms = now;
    }
    r->passive_fails++;
    r->passive_last_ms = now;
    if (r->passive_down || r->passive_fails < r->info.passive_min_failures)
        return;
    evbus_region_health before = combined(r);
    r->passive_down = true;
    s->api->log(s->host, EVBUS_LOG_LEVEL_WARN,
                "region %s: %u sink calls in a row failed within %lld ms: unhealthy (passive "
                "health)",
                r->info.name, r->passive_fails, (long long)(now - r->passive_first_ms));
    if (!r->passive_timer)
        r->passive_timer = s->api->timer_add(s->host, window, on_passive_timer, r);
    publish_health(r, before);
    decide_all(s);
}

static void refresh(rh *s) {
    for (size_t i = 0; i < s->n_regions; i++) {
        evbus_region_info fresh = {.size = sizeof fresh};
        if (s->api->region_info(s->host, i, &fresh) == EVBUS_OK)
            s->regions[i].info.routing_control_on = fresh.routing_control_on;
    }
    for (size_t i = 0; i < s->n_targets; i++) {
        evbus_target_info fresh = {.size = sizeof fresh};
        if (s->api->target_info(s->host, i, &fresh) == EVBUS_OK)
            s->targets[i].info.app_state = fresh.app_state;
    }
}

static void notify(void *state, evbus_selector_event ev, size_t index) {
    rh *s = state;
    refresh(s);
    if (ev == EVBUS_SELECTOR_FAILBACK && index < s->n_targets)
        s->targets[index].failback_once = true;
    decide_all(s);
}

static void shutdown(void *state) {
    rh *s = state;
    if (!s)
        return;
    if (s->wake_timer)
        s->api->timer_cancel(s->host, s->wake_timer);
    for (size_t i = 0; i < s->n_regions; i++) {
        if (s->regions[i].timer)
            s->api->timer_cancel(s->host, s->regions[i].timer);
        if (s->regions[i].passive_timer)
            s->api->timer_cancel(s->host, s->regions[i].passive_timer);
        rh_probe_free(&s->regions[i].p);
        for (size_t c = 0; c < s->regions[i].n_children; c++) {
            if (s->regions[i].children[c].timer)
                s->api->timer_cancel(s->host, s->regions[i].children[c].timer);
            rh_probe_free(&s->regions[i].children[c].p);
        }
        free(s->regions[i].children);
    }
    free(s->regions);
    free(s->targets);
    free(s);
}

static evbus_err init(const evbus_host_api *api, evbus_host *host, void **out) {
    if (api->abi_minor < 3 || api->size < offsetof(evbus_host_api, set_route) + sizeof(void *)) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "this evbusd has no selector services (ABI 1.3)");
        return EVBUS_EINVAL;
    }
    rh *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *out = s;
    s->api = api;
    s->host = host;
    s->n_regions = api->region_count(host);
    s->n_targets = api->target_count(host);
    s->regions = calloc(s->n_regions ? s->n_regions : 1, sizeof *s->regions);
    s->targets = calloc(s->n_targets ? s->n_targets : 1, sizeof *s->targets);
    if (!s->regions || !s->targets)
        return EVBUS_ENOMEM;
    int64_t now = api->now_ms(host);
    size_t checked = 0;
    for (size_t i = 0; i < s->n_regions; i++) {
        region *r = &s->regions[i];
        r->owner = s;
        r->index = i;
        r->info.size = sizeof r->info;
        if (api->region_info(host, i, &r->info) != EVBUS_OK)
            return EVBUS_EINVAL;
        /* The last verdict survives a restart; a healthy region's hold
         * starts again, so a failback is never earlier than before it. */
        r->health = r->info.check == EVBUS_CHECK_NONE ? EVBUS_HEALTH_HEALTHY : r->info.last_health;
        r->healthy_since = now;
        if (r->info.check == EVBUS_CHECK_NONE) {
            api->set_health(host, i, EVBUS_HEALTH_HEALTHY);
            continue;
        }
        if (r->info.check == EVBUS_CHECK_CALCULATED) {
            if (api->abi_minor < 4 || start_children(s, r) < 0)
                return EVBUS_EINVAL;
            checked++;
            continue;
        }
        r->p = (probe){.owner = r,
                       .done = on_check,
                       .type = r->info.check,
                       .url = r->info.url,
                       .match = r->info.match,
                       .timeout_ms = r->info.timeout_ms};
        /* The first check at once: a restart learns the truth quickly. */
        r->timer = api->timer_add(host, 0, on_timer, r);
        checked++;
    }
    for (size_t i = 0; i < s->n_targets; i++) {
        target *t = &s->targets[i];
        t->info.size = sizeof t->info;
        if (api->target_info(host, i, &t->info) != EVBUS_OK)
            return EVBUS_EINVAL;
        t->first = t->info.route_first;
        t->started = true; /* the host already routes to route_first */
    }
    api->log(host, EVBUS_LOG_LEVEL_INFO, "%zu regions (%zu checked), %zu targets", s->n_regions,
             checked, s->n_targets);
    decide_all(s);
    return EVBUS_OK;
}

static const evbus_selector_ops ops = {
    .size = sizeof(evbus_selector_ops),
    .notify = notify,
    .delivery = delivery,
};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SELECTOR,
    .name = "region-health",
    .version = "0.3.0",
    .description = "routes each target to its regions by health checks, routing controls and "
                   "policy (failover, weighted, home, replicate)",
    .init = init,
    .shutdown = shutdown,
    .selector = &ops,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
