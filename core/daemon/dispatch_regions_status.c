/* What `evbus status` and `evbus region status` show of the regions: each
 * target's route and why, in words, and copies of the regions' and
 * targets' state for the control thread (under the dispatcher's
 * snap_lock). The decisions themselves are dispatch_regions.c's. */
#include <stdio.h>
#include <string.h>

#include "dispatch_internal.h"

/* The name of the region at position p of t's order. */
static const char *position_name(const evbus__target *t, size_t p) {
    return t->instances[t->pref[p]].region->name;
}

static void describe_route(const evbus__dispatch *d, const evbus__target *t, char *out,
                           size_t len) {
    if (t->lanes && !t->held) {
        evbus__replicate_describe(d, t, out, len);
        return;
    }
    if (t->held) {
        if (t->app == EVBUS_APP_FENCED)
            snprintf(out, len, "(held: fenced)");
        else if (!evbus__target_routed(t))
            snprintf(out, len, "(held: %s is switched off)", position_name(t, 0));
        else
            snprintf(out, len, "(held: every region's control is off)");
        return;
    }
    if (t->route.mode != EVBUS_ROUTE_WEIGHTED) {
        snprintf(out, len, "%s", t->instances[t->route_inst].region->name);
        return;
    }
    size_t used = 0;
    out[0] = '\0';
    for (size_t p = 0; p < t->n_instances && used + 1 < len; p++) {
        if (!t->eff_weight[p])
            continue;
        int w = snprintf(out + used, len - used, "%s%s %u", used ? ", " : "",
                         d->regions[t->pref_region[p]].name, t->eff_weight[p]);
        if (w > 0)
            used = used + (size_t)w < len ? used + (size_t)w : len - 1;
    }
}

/* Policy replicate: which regions get every event now, and why the others
 * do not. */
static void replicate_why(const evbus__dispatch *d, const evbus__target *t, char *out, size_t len) {
    int used = snprintf(out, len, "every event to each region that is on and healthy");
    for (size_t j = 0; j < t->n_instances && used > 0 && (size_t)used < len; j++) {
        const evbus__instance *in = &t->instances[j];
        if (!t->lanes[j].held || in->rindex == SIZE_MAX)
            continue;
        bool off = !d->regions[in->rindex].control_on;
        used += snprintf(out + used, len - (size_t)used, "; %s is %s", in->region->name,
                         off ? "switched off (not owed what is settled meanwhile)"
                             : "unhealthy (it catches up when healthy)");
    }
}

/* Why t delivers where describe_route says, now. The host's own rules come
 * first (a fenced target, regions switched off): they decide over the
 * selector's route, and what the selector last said may be older than
 * them. Otherwise the selector's reason, which it keeps current
 * (set_route). */
static void describe_why(const evbus__dispatch *d, const evbus__target *t, char *out, size_t len) {
    if (t->held && t->app == EVBUS_APP_FENCED) {
        snprintf(out, len,
                 "fenced: events are stored and wait for evbus region unfence, failover or "
                 "failback");
        return;
    }
    if (t->held && !evbus__target_routed(t)) {
        snprintf(out, len,
                 "no regions: it runs in the router's region %s, whose routing control is off: "
                 "events wait for evbus region on %s",
                 position_name(t, 0), position_name(t, 0));
        return;
    }
    if (t->held) {
        snprintf(out, len,
                 "every region of the target is switched off: events wait for evbus "
                 "region on");
        return;
    }
    if (t->lanes) {
        replicate_why(d, t, out, len);
        return;
    }
    const evbus_route *r = &t->route;
    for (size_t p = 0; p < t->n_instances; p++) {
        bool chosen = r->mode == EVBUS_ROUTE_WEIGHTED ? p < EVBUS_ROUTE_MAX_REGIONS && r->weight[p]
                                                      : p == r->first;
        if (!chosen || evbus__position_on(d, t, p))
            continue;
        snprintf(out, len, "%s is switched off: %s", position_name(t, p),
                 r->mode == EVBUS_ROUTE_WEIGHTED ? "its share goes to the other regions"
                                                 : "the next region of the target's order "
                                                   "that is on");
        return;
    }
    snprintf(out, len, "%s", t->route_why);
}

void evbus__regions_snapshot(evbus__dispatch *d) {
    for (size_t i = 0; i < d->n_regions; i++) {
        /* The rings, not the arrays: each copy has its own. */
        evbus__check_ring *kids = d->rsnap[i].children;
        d->rsnap[i] = d->regions[i];
        d->rsnap[i].children = kids;
        if (kids)
            memcpy(kids, d->regions[i].children, d->regions[i].n_children * sizeof *kids);
    }
    for (size_t i = 0; i < d->n_targets; i++) {
        const evbus__target *t = &d->targets[i];
        evbus__target_counters *k = &d->snap[i];
        k->route[0] = k->route_why[0] = k->app_state[0] = '\0';
        k->held = t->pref && t->held;
        /* The last target fault came from a region the target has since
         * left: status attributes it to that region instead of showing it
         * as the target's fault now. It is cleared by the next delivery,
         * wherever that is. Only for a route to one region: weighted and
         * origin routes and replicate lanes deliver to several regions at
         * once, and there it stays a fault of the target. */
        k->fault_left = k->target_fault[0] && t->pref && !t->lanes && !t->held &&
                        t->route.mode == EVBUS_ROUTE_ONE && k->fault_region != SIZE_MAX &&
                        k->fault_region != t->route_inst;
        /* A target without regions: shows a route only while a routing
         * control holds it, so that `evbus status` says why it waits. */
        if (!t->pref || (!evbus__target_routed(t) && !t->held))
            continue;
        describe_route(d, t, k->route, sizeof k->route);
        describe_why(d, t, k->route_why, sizeof k->route_why);
        if (evbus__target_routed(t))
            snprintf(k->app_state, sizeof k->app_state, "%s", evbus__app_state_name(t->app));
    }
}

size_t evbus__dispatch_region_count(evbus__dispatch *d) {
    return d->n_regions;
}

evbus_err evbus__dispatch_region_status(evbus__dispatch *d, size_t i, evbus__region_status *out) {
    if (i >= d->n_regions)
        return EVBUS_EINVAL;
    pthread_mutex_lock(&d->snap_lock);
    const evbus__region_rt *r = &d->rsnap[i];
    memset(out, 0, sizeof *out);
    snprintf(out->name, sizeof out->name, "%s", r->name ? r->name : "");
    out->control_on = r->control_on;
    out->health = r->health;
    out->checked = r->cfg && (r->cfg->check_pos.line || r->cfg->passive_pos.line);
    out->n_recent = evbus__check_ring_copy(&r->recent, out->recent);
    out->n_children = r->n_children;
    pthread_mutex_unlock(&d->snap_lock);
    return EVBUS_OK;
}

evbus_err evbus__dispatch_region_child(evbus__dispatch *d, size_t i, size_t c,
                                       evbus__child_status *out) {
    if (i >= d->n_regions)
        return EVBUS_EINVAL;
    pthread_mutex_lock(&d->snap_lock);
    const evbus__region_rt *r = &d->rsnap[i];
    evbus_err rc = EVBUS_EINVAL;
    if (c < r->n_children) {
        memset(out, 0, sizeof *out);
        const evbus__region_cfg *k = (const evbus__region_cfg *)r->cfg->calc_checks.v + c;
        snprintf(out->check, sizeof out->check, "%s", k->check_url ? k->check_url : "?");
        out->n_recent = evbus__check_ring_copy(&r->children[c], out->recent);
        rc = EVBUS_OK;
    }
    pthread_mutex_unlock(&d->snap_lock);
    return rc;
}
