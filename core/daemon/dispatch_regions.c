/* Regions on the delivery thread: the router's regions with their routing
 * controls and health, each target's order of preference, application
 * state and route, the region selector plugin and the services it calls
 * (plugin.h: "Region selectors").
 *
 * The selector pushes a route per target when its decision changes; the
 * host folds the routing controls and the application state into it at
 * once (recompute) so that forming a batch reads one cached value. What
 * must survive a restart goes to the writer as EVBUS__STATE results
 * ("KEY=VALUE" in the state sub-database):
 *   control/REGION  on | off                     (operators)
 *   app/TARGET      active | failover | fenced:PREVIOUS   (operators)
 *   failback/TARGET TIME [by WHO]                (operators: when, and who asked;
 *                                                 " applied" once the selector was told)
 *   health/REGION   healthy | unhealthy | unknown (the selector)
 *   route/TARGET    MODE FIRST-REGION W1,W2,...   (the selector)
 * Operators' changes come back from the writer once durable and take
 * effect then (evbus__regions_apply_state), so what runs is what is
 * stored. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "common/util.h"
#include "dispatch_internal.h"
#include "dispatch_msg.h"

static const char *health_name(evbus_region_health h) {
    switch (h) {
    case EVBUS_HEALTH_HEALTHY: return "healthy";
    case EVBUS_HEALTH_UNHEALTHY: return "unhealthy";
    case EVBUS_HEALTH_UNKNOWN: break;
    }
    return "unknown";
}

const char *evbus__app_state_name(evbus_app_state a) {
    switch (a) {
    case EVBUS_APP_FENCED: return "fenced";
    case EVBUS_APP_FAILOVER: return "failover";
    case EVBUS_APP_ACTIVE: break;
    }
    return "active";
}

static long region_index(const evbus__dispatch *d, const char *name) {
    for (size_t i = 0; i < d->n_regions; i++)
        if (strcmp(d->regions[i].name, name) == 0)
            return (long)i;
    return -1;
}

static long target_index(const evbus__dispatch *d, const char *name) {
    for (size_t i = 0; i < d->n_targets; i++)
        if (strcmp(d->targets[i].cfg->name, name) == 0)
            return (long)i;
    return -1;
}

/* Hands "key=value" to the writer (its `state`), like delivery results: it
 * is durable with the writer's next commit, with an audit event committed in
 * the same transaction when audit_type is set (audit.h). A failure is
 * logged; the value is then lost at a restart, not now. */
static void persist_audited(evbus__dispatch *d, const char *key, const char *value,
                            const char *audit_type, const char *audit) {
    char kv[600];
    snprintf(kv, sizeof kv, "%s=%s", key, value);
    evbus__result_msg *m = evbus__result_msg_new(1);
    if (m) {
        m->target = EVBUS__MSG_NO_BATCH;
        evbus__store_result r = {.outcome = EVBUS__STATE};
        evbus__result_msg_add(m, &r, kv);
        if (audit_type && audit && !evbus__result_msg_audit(m, audit_type, audit))
            EVBUS_LOG_E("regions", "out of memory: no audit event for %s", kv);
        evbus__result_msg_seal(m);
    }
    if (!m || !evbus__result_msg_send(d->results, m)) {
        EVBUS_LOG_E("regions", "cannot hand %s to the writer: it is not stored", kv);
        evbus__result_msg_free(m);
    }
}

static void persist(evbus__dispatch *d, const char *key, const char *value) {
    persist_audited(d, key, value, NULL, NULL);
}

/* The route moved: events waiting for a retry were refused by the region
 * traffic left, so they go to the new one at the next dispatch, not after
 * their backoff, and their attempts there start again (attempts spent on a
 * failed region would otherwise dead-letter them during a failover). */
static void retry_in_new_region(evbus__target *t) {
    int64_t now = evbus__now_wall_ms();
    for (size_t i = 0; i < t->n_retries; i++) {
        t->retries[i].due_ms = now;
        t->retries[i].attempts = 0;
    }
    t->fault_streak = 0;
}

/* Folds the routing controls and the application state into the route:
 * called whenever one of the three changes. */
static void recompute(evbus__dispatch *d, evbus__target *t) {
    if (!t->pref)
        return;
    size_t n = t->n_instances, before = t->route_inst;
    bool was_held = t->held;
    t->held = t->app == EVBUS_APP_FENCED;
    const evbus_route *r = &t->route;
    if (r->mode == EVBUS_ROUTE_WEIGHTED) {
        uint32_t sum = 0;
        for (size_t p = 0; p < n; p++) {
            bool on = evbus__position_on(d, t, p);
            t->eff_weight[p] = on ? r->weight[p] : 0;
            sum += t->eff_weight[p];
        }
        if (sum == 0) /* every weighted region off: the first one on takes all */
            for (size_t p = 0; p < n && sum == 0; p++)
                if (evbus__position_on(d, t, p))
                    t->eff_weight[p] = sum = 1;
        if (sum == 0)
            t->held = true;
        memset(t->wrr, 0, sizeof t->wrr);
        for (size_t p = 0; p < n; p++)
            if (t->eff_weight[p]) {
                t->route_inst = t->pref[p];
                break;
            }
    } else {
        /* ONE (and ORIGIN's fallback): `first`, or the next region of the
         * target's order whose control is on. */
        size_t p = r->first < n ? r->first : 0, tries = 0;
        while (tries < n && !evbus__position_on(d, t, p)) {
            p = (p + 1) % n;
            tries++;
        }
        if (tries == n)
            t->held = true;
        else
            t->route_inst = t->pref[p];
        /* ORIGIN: the positions an event may go to when it came from there. */
        for (size_t q = 0; q < n && q < EVBUS_ROUTE_MAX_REGIONS; q++)
            t->eff_weight[q] =
                r->mode == EVBUS_ROUTE_ORIGIN && r->weight[q] && evbus__position_on(d, t, q);
    }
    t->active = t->route_inst;
    if (!t->held && (t->route_inst != before || was_held) && t->n_retries)
        retry_in_new_region(t);
}

size_t evbus__route_origin_position(const evbus__target *t, const char *origin) {
    for (size_t p = 0; p < t->n_instances && p < EVBUS_ROUTE_MAX_REGIONS; p++)
        if (t->eff_weight[p] && strcmp(t->instances[t->pref[p]].region->name, origin) == 0)
            return p;
    for (size_t p = 0; p < t->n_instances; p++)
        if (t->pref[p] == t->route_inst)
            return p;
    return 0;
}

size_t evbus__route_next_position(evbus__target *t) {
    int64_t total = 0;
    size_t best = 0;
    for (size_t p = 0; p < t->n_instances; p++) {
        if (!t->eff_weight[p])
            continue;
        t->wrr[p] += t->eff_weight[p];
        total += t->eff_weight[p];
        if (t->eff_weight[best] == 0 || t->wrr[p] > t->wrr[best])
            best = p;
    }
    t->wrr[best] -= total;
    return best;
}

/* ---- start-up ---- */

typedef struct loading {
    evbus__dispatch *d;
} loading;

static void parse_route(evbus__dispatch *d, evbus__target *t, const char *v) {
    int mode = 0, used = 0;
    char first[64];
    if (sscanf(v, "%d %63s %n", &mode, first, &used) < 2 || mode < EVBUS_ROUTE_ONE ||
        mode > EVBUS_ROUTE_ORIGIN)
        return;
    evbus_route r = {.mode = (evbus_route_mode)mode};
    long ri = region_index(d, first);
    for (size_t p = 0; p < t->n_instances; p++)
        if ((long)t->pref_region[p] == ri)
            r.first = (uint32_t)p;
    const char *w = v + used;
    for (size_t p = 0; p < t->n_instances && p < EVBUS_ROUTE_MAX_REGIONS && *w; p++) {
        r.weight[p] = (uint8_t)strtoul(w, (char **)&w, 10);
        if (*w == ',')
            w++;
    }
    t->route = r;
    snprintf(t->route_why, sizeof t->route_why, "as before the restart");
}

static void parse_app(evbus__target *t, const char *v) {
    if (strncmp(v, "fenced", 6) == 0) {
        t->app = EVBUS_APP_FENCED;
        snprintf(t->app_prev, sizeof t->app_prev, "%s", v[6] == ':' ? v + 7 : "active");
    } else {
        t->app = strcmp(v, "failover") == 0 ? EVBUS_APP_FAILOVER : EVBUS_APP_ACTIVE;
    }
}

/* A stored failback request ("TIME [by WHO]", " applied" once the selector
 * was told): whether it still waits, and who asked, so that the route
 * change it makes after a restart is audited as theirs. */
static void parse_failback(evbus__target *t, const char *value) {
    t->failback_unapplied = !strstr(value, " applied");
    const char *by = strstr(value, " by ");
    snprintf(t->failback_by, sizeof t->failback_by, "%s",
             t->failback_unapplied && by ? by + 4 : "");
}

static void on_state(void *arg, const char *key, const char *value) {
    evbus__dispatch *d = ((loading *)arg)->d;
    const char *slash = strchr(key, '/');
    if (!slash)
        return;
    const char *name = slash + 1;
    long ri = region_index(d, name), ti = target_index(d, name);
    if (strncmp(key, "control/", 8) == 0 && ri >= 0)
        d->regions[ri].control_on = strcmp(value, "off") != 0;
    else if (strncmp(key, "health/", 7) == 0 && ri >= 0)
        d->regions[ri].health = strcmp(value, "healthy") == 0     ? EVBUS_HEALTH_HEALTHY
                                : strcmp(value, "unhealthy") == 0 ? EVBUS_HEALTH_UNHEALTHY
                                                                  : EVBUS_HEALTH_UNKNOWN;
    else if (strncmp(key, "app/", 4) == 0 && ti >= 0 && evbus__target_routed(&d->targets[ti]))
        parse_app(&d->targets[ti], value);
    else if (strncmp(key, "route/", 6) == 0 && ti >= 0 && evbus__target_routed(&d->targets[ti]))
        parse_route(d, &d->targets[ti], value);
    else if (strncmp(key, "failback/", 9) == 0 && ti >= 0 && evbus__target_routed(&d->targets[ti]))
        parse_failback(&d->targets[ti], value);
}

/* A target's order of preference: its primary:, then the top-level list's
 * order (which its instances already follow). */
static evbus_err order_target(evbus__target *t) {
    size_t n = t->n_instances;
    t->pref = calloc(n ? n : 1, sizeof *t->pref);
    t->pref_region = calloc(n ? n : 1, sizeof *t->pref_region);
    t->weights = calloc(n ? n : 1, sizeof *t->weights);
    if (!t->pref || !t->pref_region || !t->weights)
        return EVBUS_ENOMEM;
    size_t k = 0;
    const char *primary = t->cfg->primary;
    for (size_t j = 0; primary && j < n; j++)
        if (strcmp(t->instances[j].region->name, primary) == 0)
            t->pref[k++] = j;
    for (size_t j = 0; j < n; j++)
        if (!primary || strcmp(t->instances[j].region->name, primary) != 0)
            t->pref[k++] = j;
    for (size_t p = 0; p < n; p++) {
        evbus__instance *in = &t->instances[t->pref[p]];
        t->pref_region[p] = in->rindex == SIZE_MAX ? 0 : (uint32_t)in->rindex;
        t->weights[p] = 1;
        for (size_t w = 0; w < t->cfg->weights.n; w++)
            if (strcmp(t->cfg->weights.v[w].key, in->region->name) == 0)
                t->weights[p] = (uint8_t)strtoul(t->cfg->weights.v[w].value, NULL, 10);
    }
    t->app = EVBUS_APP_ACTIVE;
    t->route = (evbus_route){.mode = EVBUS_ROUTE_ONE, .first = 0};
    return EVBUS_OK;
}

evbus_err evbus__regions_init(evbus__dispatch *d) {
    const evbus__config *cfg = d->cfg;
    bool list = cfg->regions_pos.line != 0;
    d->asked_target = d->asked_region = -1;
    d->n_regions = list ? cfg->regions.n : 1;
    d->regions = calloc(d->n_regions ? d->n_regions : 1, sizeof *d->regions);
    d->rsnap = calloc(d->n_regions ? d->n_regions : 1, sizeof *d->rsnap);
    if (!d->regions || !d->rsnap)
        return EVBUS_ENOMEM;
    for (size_t i = 0; i < d->n_regions; i++) {
        evbus__region_rt *r = &d->regions[i];
        r->cfg = list ? evbus__config_region(cfg, i) : NULL;
        r->name = r->cfg ? r->cfg->name : cfg->region;
        r->control_on = true;
        /* A calculated check's children each have their recent results,
         * in both copies: the snapshot copies the rings, never the arrays. */
        size_t kids =
            r->cfg && r->cfg->check_pos.line && r->cfg->calc_pos.line ? r->cfg->calc_checks.n : 0;
        if (kids) {
            r->children = calloc(kids, sizeof *r->children);
            d->rsnap[i].children = calloc(kids, sizeof *r->children);
            if (!r->children || !d->rsnap[i].children)
                return EVBUS_ENOMEM;
            r->n_children = d->rsnap[i].n_children = kids;
        }
    }
    for (size_t i = 0; i < d->n_targets; i++) {
        evbus__target *t = &d->targets[i];
        if (!t->lib || t->n_instances != t->cfg->n_delivery_regions)
            continue;
        for (size_t j = 0; j < t->n_instances; j++) {
            long ri = region_index(d, t->instances[j].region->name);
            t->instances[j].rindex = ri < 0 ? SIZE_MAX : (size_t)ri;
        }
        if (order_target(t) != EVBUS_OK)
            return EVBUS_ENOMEM;
    }
    loading l = {d};
    evbus__store_foreach_state(d->store, on_state, &l);
    for (size_t i = 0; i < d->n_targets; i++)
        recompute(d, &d->targets[i]);
    return EVBUS_OK;
}

static evbus_err open_selector(const char *path, evbus__plugin_lib **lib, char *why, size_t len) {
    evbus_err rc = evbus__plugin_open(path, lib, why, len);
    if (rc == EVBUS_OK && (*lib)->desc->kind != EVBUS_PLUGIN_SELECTOR) {
        snprintf(why, len, "%s: plugin %s is a sink, not a region selector", path,
                 (*lib)->desc->name);
        evbus__plugin_close(lib);
        rc = EVBUS_ECONFIG;
    }
    return rc;
}

evbus_err evbus__regions_check_selector(const evbus__config *cfg, char *err, size_t errlen) {
    if (!cfg->selector)
        return EVBUS_OK;
    evbus__plugin_lib *lib = NULL;
    char why[1024];
    if (open_selector(cfg->selector, &lib, why, sizeof why) != EVBUS_OK) {
        size_t used = strnlen(err, errlen);
        snprintf(err + used, errlen - used, "%s%s:%u:%u: selector: %s", used ? "\n" : "", cfg->path,
                 cfg->selector_pos.line, cfg->selector_pos.column, why);
        return EVBUS_ECONFIG;
    }
    evbus__plugin_close(&lib);
    return EVBUS_OK;
}

static void failback_applied(evbus__dispatch *d, evbus__target *t);

evbus_err evbus__regions_start_selector(evbus__dispatch *d, char *err, size_t errlen) {
    const evbus__config *cfg = d->cfg;
    if (!cfg->selector)
        return EVBUS_OK;
    char why[1024];
    if (open_selector(cfg->selector, &d->selector_lib, why, sizeof why) != EVBUS_OK) {
        snprintf(err, errlen, "%s:%u:%u: selector: %s", cfg->path, cfg->selector_pos.line,
                 cfg->selector_pos.column, why);
        return EVBUS_ECONFIG;
    }
    const evbus_plugin *p = d->selector_lib->desc;
    d->selector_host = (struct evbus_host){.d = d, .selector = true};
    snprintf(d->selector_host.prefix, sizeof d->selector_host.prefix, "selector:%s", p->name);
    d->selector_started = true; /* shut down from here on, even if init fails */
    if (p->init(&d->api, &d->selector_host, &d->selector_state) != EVBUS_OK) {
        snprintf(err, errlen, "%s:%u:%u: selector: %s failed to start (its log says why)",
                 cfg->path, cfg->selector_pos.line, cfg->selector_pos.column, p->name);
        return EVBUS_ECONFIG;
    }
    /* A failback an operator was told was accepted, stored, but never
     * handed to the selector (evbusd stopped in between): with failback:
     * manual nothing else would ever move the target back. */
    for (size_t i = 0; i < d->n_targets; i++)
        if (d->targets[i].failback_unapplied) {
            EVBUS_LOG_W("regions",
                        "target %s: the failback an operator asked for before the restart was "
                        "not applied then: applying it now",
                        d->targets[i].cfg->name);
            /* As when the change came back from the writer: the route it
             * makes is audited as the operator's (route_audit). */
            snprintf(d->asked_by, sizeof d->asked_by, "%s", d->targets[i].failback_by);
            d->asked_target = (long)i;
            failback_applied(d, &d->targets[i]);
            d->asked_by[0] = '\0';
            d->asked_target = -1;
        }
    return EVBUS_OK;
}

void evbus__regions_free(evbus__dispatch *d) {
    if (d->selector_started)
        d->selector_lib->desc->shutdown(d->selector_state);
    d->selector_started = false;
    evbus__plugin_close(&d->selector_lib);
    for (size_t i = 0; i < d->n_targets; i++) {
        free(d->targets[i].pref);
        free(d->targets[i].pref_region);
        free(d->targets[i].weights);
        d->targets[i].pref = NULL;
    }
    for (size_t i = 0; i < d->n_regions; i++) {
        if (d->regions)
            free(d->regions[i].children);
        if (d->rsnap)
            free(d->rsnap[i].children);
    }
    free(d->regions);
    free(d->rsnap);
    d->regions = d->rsnap = NULL;
}

static void notify(evbus__dispatch *d, evbus_selector_event ev, size_t index) {
    if (d->selector_started && d->selector_state && d->selector_lib)
        d->selector_lib->desc->selector->notify(d->selector_state, ev, index);
}

/* Who made the change an audit detail records ({"by": ...}), into out; ""
 * when none. */
static void asker_of(const char *audit_detail, char *out, size_t len) {
    out[0] = '\0';
    json_t *j = audit_detail ? json_loads(audit_detail, 0, NULL) : NULL;
    const char *by = json_string_value(json_object_get(j, "by"));
    if (by)
        snprintf(out, len, "%s", by);
    json_decref(j);
}

static void apply_state(evbus__dispatch *d, const char *kv);

/* Tells the selector of an operator's failback, then marks the stored
 * request applied, so that a restart replays only one it was never told. */
static void failback_applied(evbus__dispatch *d, evbus__target *t) {
    t->failback_unapplied = false;
    notify(d, EVBUS_SELECTOR_FAILBACK, t->index);
    char key[300], value[64];
    snprintf(key, sizeof key, "failback/%s", t->cfg->name);
    snprintf(value, sizeof value, "%lld applied", (long long)evbus__now_wall_ms());
    persist(d, key, value);
}

void evbus__regions_apply_state(evbus__dispatch *d, const char *kv, const char *audit_detail) {
    /* A route the selector changes while it answers this change (inside
     * notify) was asked for by the operator who made it: a failback, a
     * failover, traffic leaving a region switched off. Its audit event
     * says so (route_audit). */
    asker_of(audit_detail, d->asked_by, sizeof d->asked_by);
    apply_state(d, kv);
    d->asked_by[0] = '\0';
    d->asked_target = d->asked_region = -1;
}

/* Whether a route change of t now answers the operator's change being
 * applied: the change was about t, or about a region t delivers to. A
 * decision the selector takes for another target meanwhile (a hold that
 * ended) is its own. */
static bool asked_for(const evbus__dispatch *d, const evbus__target *t) {
    if (!d->asked_by[0])
        return false;
    if (d->asked_target == (long)t->index)
        return true;
    for (size_t p = 0; d->asked_region >= 0 && p < t->n_instances; p++)
        if (t->instances[t->pref[p]].rindex == (size_t)d->asked_region)
            return true;
    return false;
}

static void apply_state(evbus__dispatch *d, const char *kv) {
    char key[256];
    const char *eq = strchr(kv, '=');
    if (!eq || (size_t)(eq - kv) >= sizeof key)
        return;
    memcpy(key, kv, (size_t)(eq - kv));
    key[eq - kv] = '\0';
    const char *value = eq + 1, *name = strchr(key, '/');
    if (!name)
        return;
    name++;
    if (strncmp(key, "control/", 8) == 0) {
        long ri = region_index(d, name);
        if (ri < 0)
            return;
        d->regions[ri].control_on = strcmp(value, "off") != 0;
        d->asked_region = ri;
        EVBUS_LOG_I("regions", "routing control of %s is %s", name, value);
        for (size_t i = 0; i < d->n_targets; i++)
            recompute(d, &d->targets[i]);
        notify(d, EVBUS_SELECTOR_CONTROL, (size_t)ri);
        return;
    }
    long ti = target_index(d, name);
    if (ti < 0 || !evbus__target_routed(&d->targets[ti]))
        return;
    evbus__target *t = &d->targets[ti];
    d->asked_target = ti;
    if (strncmp(key, "app/", 4) == 0) {
        parse_app(t, value);
        EVBUS_LOG_I("regions", "target %s: application state %s", name,
                    evbus__app_state_name(t->app));
        recompute(d, t);
        notify(d, EVBUS_SELECTOR_APP_STATE, (size_t)ti);
    } else if (strncmp(key, "failback/", 9) == 0 && !strstr(value, " applied")) {
        failback_applied(d, t);
    }
}

void evbus__regions_delivery(evbus__dispatch *d, evbus__target *t, evbus__instance *inst, size_t ok,
                             size_t failed) {
    if (!d->selector_started || !d->selector_state || inst->rindex == SIZE_MAX)
        return;
    const evbus_selector_ops *ops = d->selector_lib->desc->selector;
    if (ops->size > offsetof(evbus_selector_ops, delivery) && ops->delivery)
        ops->delivery(d->selector_state, t->index, inst->rindex, ok, failed);
}

/* ---- the services a selector calls ---- */

static size_t host_region_count(evbus_host *h) {
    return h->selector ? h->d->n_regions : 0;
}

static size_t host_target_count(evbus_host *h) {
    return h->selector ? h->d->n_targets : 0;
}

/* Copies at most out->size bytes of `full` into out, keeping out->size. */
#define FILL_SIZED(out, full)                                                                      \
    do {                                                                                           \
        size_t want_ = (out)->size < sizeof(full) ? (out)->size : sizeof(full);                    \
        (full).size = (out)->size;                                                                 \
        memcpy((out), &(full), want_);                                                             \
    } while (0)

static evbus_err host_region_info(evbus_host *h, size_t index, evbus_region_info *out) {
    if (!h->selector || index >= h->d->n_regions || !out || out->size < sizeof(size_t))
        return EVBUS_EINVAL;
    const evbus__region_rt *r = &h->d->regions[index];
    const evbus__region_cfg *c = r->cfg;
    bool checked = c && c->check_pos.line;
    evbus_region_info full = {
        .name = r->name,
        .check = checked ? (evbus_check_type)c->check_type : EVBUS_CHECK_NONE,
        .url = checked ? c->check_url : NULL,
        .interval_ms = checked ? c->check_interval_ms : 0,
        .timeout_ms = checked ? c->check_timeout_ms : 0,
        .failure_threshold = checked ? (uint32_t)c->check_failure_threshold : 0,
        .recovery_threshold = checked ? (uint32_t)c->check_recovery_threshold : 0,
        .match = checked ? c->check_match : NULL,
        .inverted = checked && c->check_inverted,
        .routing_control_on = r->control_on,
        .last_health = r->health,
        .passive_window_ms = c && c->passive_pos.line ? c->passive_window_ms : 0,
        .passive_min_failures = c && c->passive_pos.line ? (uint32_t)c->passive_min_failures : 0,
        .calc_at_least = checked && c->calc_pos.line ? (uint32_t)c->calc_at_least : 0,
        .n_children = checked && c->calc_pos.line ? c->calc_checks.n : 0,
    };
    if (full.check == EVBUS_CHECK_CALCULATED)
        full.url = NULL;
    FILL_SIZED(out, full);
    return EVBUS_OK;
}

static evbus_err host_region_child_info(evbus_host *h, size_t index, size_t child,
                                        evbus_region_info *out) {
    if (!h->selector || index >= h->d->n_regions || !out || out->size < sizeof(size_t))
        return EVBUS_EINVAL;
    const evbus__region_cfg *c = h->d->regions[index].cfg;
    if (!c || !c->check_pos.line || !c->calc_pos.line || child >= c->calc_checks.n)
        return EVBUS_EINVAL;
    const evbus__region_cfg *k = (const evbus__region_cfg *)c->calc_checks.v + child;
    evbus_region_info full = {
        .name = h->d->regions[index].name,
        .check = (evbus_check_type)k->check_type,
        .url = k->check_url,
        .interval_ms = k->check_interval_ms,
        .timeout_ms = k->check_timeout_ms,
        .failure_threshold = (uint32_t)k->check_failure_threshold,
        .recovery_threshold = (uint32_t)k->check_recovery_threshold,
        .match = k->check_match,
        .inverted = k->check_inverted,
    };
    FILL_SIZED(out, full);
    return EVBUS_OK;
}

static evbus_err host_target_info(evbus_host *h, size_t index, evbus_target_info *out) {
    if (!h->selector || index >= h->d->n_targets || !out || out->size < sizeof(size_t))
        return EVBUS_EINVAL;
    const evbus__target *t = &h->d->targets[index];
    bool r = evbus__target_routed(t);
    evbus_target_info full = {
        .name = t->cfg->name,
        .policy = (evbus_route_policy)(t->cfg->policy + 1),
        .failback_manual = t->cfg->failback == 1,
        .failback_hold_ms = t->cfg->failback_hold_ms,
        .regions = r ? t->pref_region : NULL,
        .n_regions = r ? t->n_instances : 0,
        .weights = r ? t->weights : NULL,
        .app_state = r ? t->app : EVBUS_APP_ACTIVE,
        .route_first = r ? t->route.first : 0,
    };
    FILL_SIZED(out, full);
    return EVBUS_OK;
}

static void ring_add(evbus__check_ring *g, int ok, const char *detail) {
    evbus__check_record *c = &g->v[g->next];
    c->at_ms = evbus__now_wall_ms();
    c->ok = ok != 0;
    snprintf(c->detail, sizeof c->detail, "%s", detail ? detail : "");
    g->next = (g->next + 1) % EVBUS__RECENT_CHECKS;
    if (g->n < EVBUS__RECENT_CHECKS)
        g->n++;
}

size_t evbus__check_ring_copy(const evbus__check_ring *g, evbus__check_record *out) {
    size_t start = (g->next + EVBUS__RECENT_CHECKS - g->n) % EVBUS__RECENT_CHECKS;
    for (size_t k = 0; k < g->n; k++)
        out[k] = g->v[(start + k) % EVBUS__RECENT_CHECKS];
    return g->n;
}

static evbus_err host_check_result(evbus_host *h, size_t index, int ok, const char *detail) {
    if (!h->selector || index >= h->d->n_regions)
        return EVBUS_EINVAL;
    ring_add(&h->d->regions[index].recent, ok, detail);
    return EVBUS_OK;
}

static evbus_err host_child_check_result(evbus_host *h, size_t index, size_t child, int ok,
                                         const char *detail) {
    if (!h->selector || index >= h->d->n_regions || child >= h->d->regions[index].n_children)
        return EVBUS_EINVAL;
    ring_add(&h->d->regions[index].children[child], ok, detail);
    return EVBUS_OK;
}

static evbus_err host_set_health(evbus_host *h, size_t index, evbus_region_health health) {
    if (!h->selector || index >= h->d->n_regions || health < EVBUS_HEALTH_UNKNOWN ||
        health > EVBUS_HEALTH_UNHEALTHY)
        return EVBUS_EINVAL;
    evbus__region_rt *r = &h->d->regions[index];
    if (r->health == health)
        return EVBUS_OK;
    EVBUS_LOG_I("regions", "region %s is %s (was %s)", r->name, health_name(health),
                health_name(r->health));
    r->health = health;
    char key[96];
    snprintf(key, sizeof key, "health/%s", r->name);
    persist(h->d, key, health_name(health));
    return EVBUS_OK;
}

/* A route as people read it: "us-east-1", "weighted: us-east-1 200,
 * us-west-2 55", "origin region, else us-east-1". */
static void route_text(const evbus__dispatch *d, const evbus__target *t, const evbus_route *r,
                       char *out, size_t len) {
    const char *first = d->regions[t->pref_region[r->first]].name;
    if (r->mode == EVBUS_ROUTE_ONE) {
        snprintf(out, len, "%s", first);
        return;
    }
    if (r->mode == EVBUS_ROUTE_ORIGIN) {
        snprintf(out, len, "origin region, else %s", first);
        return;
    }
    int used = snprintf(out, len, "weighted:");
    for (size_t p = 0; p < t->n_instances && used > 0 && (size_t)used < len; p++)
        if (r->weight[p])
            used += snprintf(out + used, len - (size_t)used, "%s %s %u", used > 9 ? "," : "",
                             d->regions[t->pref_region[p]].name, r->weight[p]);
}

/* The audit event of a route the selector changed (audit.h): "by" the
 * selector, "why" its reason. A change the selector makes in answer to an
 * operator's (a failback asked for, a region switched off) is by that
 * operator, as the operator's own change is, and "via" the selector.
 * Caller frees. */
static char *route_audit(const evbus__dispatch *d, const evbus__target *t, const evbus_route *from,
                         const evbus_route *to, const char *why) {
    char at[32], a[300], b[300], selector[120];
    evbus__format_time(evbus__now_wall_ms(), at);
    route_text(d, t, from, a, sizeof a);
    route_text(d, t, to, b, sizeof b);
    snprintf(selector, sizeof selector, "selector:%s",
             d->selector_lib && d->selector_lib->desc->name ? d->selector_lib->desc->name : "?");
    bool asked = asked_for(d, t);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "target", t->cfg->name, "from", a, "to",
                          b, "by", asked ? d->asked_by : selector, "why",
                          why && *why ? why : "(no reason given)", "time", at);
    if (j && asked)
        json_object_set_new(j, "via", json_string(selector));
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    return text;
}

static evbus_err host_set_route(evbus_host *h, size_t index, const evbus_route *route) {
    if (!h->selector || index >= h->d->n_targets || !route ||
        !evbus__target_routed(&h->d->targets[index]))
        return EVBUS_EINVAL;
    evbus__target *t = &h->d->targets[index];
    size_t n = t->n_instances;
    if (route->mode < EVBUS_ROUTE_ONE || route->mode > EVBUS_ROUTE_ORIGIN || route->first >= n ||
        n > EVBUS_ROUTE_MAX_REGIONS)
        return EVBUS_EINVAL;
    evbus_route r = {.mode = route->mode, .first = route->first};
    uint32_t sum = 0;
    if (route->mode != EVBUS_ROUTE_ONE)
        for (size_t p = 0; p < n; p++)
            sum += r.weight[p] = route->weight[p];
    if (route->mode == EVBUS_ROUTE_WEIGHTED && sum == 0)
        return EVBUS_EINVAL;
    snprintf(t->route_why, sizeof t->route_why, "%s", route->why ? route->why : "");
    if (memcmp(&r, &t->route, sizeof r) == 0)
        return EVBUS_OK;
    evbus_route before = t->route;
    t->route = r;
    recompute(h->d, t);
    char key[300], value[300];
    int used = snprintf(value, sizeof value, "%d %s ", (int)r.mode,
                        h->d->regions[t->pref_region[r.first]].name);
    for (size_t p = 0; p < n && used > 0 && (size_t)used < sizeof value; p++)
        used +=
            snprintf(value + used, sizeof value - (size_t)used, "%s%u", p ? "," : "", r.weight[p]);
    snprintf(key, sizeof key, "route/%s", t->cfg->name);
    /* A failover or failback the selector decided is audited like an
     * operator's change, committed with the route it records. */
    char *audit = route_audit(h->d, t, &before, &r, route->why);
    persist_audited(h->d, key, value, "Region Route Changed", audit);
    free(audit);
    EVBUS_LOG_I("regions", "target %s now delivers to %s%s%s%s%s", t->cfg->name,
                r.mode == EVBUS_ROUTE_ONE ? "" : "weighted regions from ",
                h->d->regions[t->pref_region[r.first]].name, route->why ? " (" : "",
                route->why ? route->why : "", route->why ? ")" : "");
    return EVBUS_OK;
}

void evbus__regions_host_api(evbus_host_api *api) {
    api->region_count = host_region_count;
    api->target_count = host_target_count;
    api->region_info = host_region_info;
    api->target_info = host_target_info;
    api->check_result = host_check_result;
    api->set_health = host_set_health;
    api->set_route = host_set_route;
    api->region_child_info = host_region_child_info;
    api->region_child_check_result = host_child_check_result;
}
