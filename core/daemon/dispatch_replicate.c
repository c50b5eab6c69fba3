/* Policy replicate on the delivery thread: every region of the target gets
 * every event, and an entry is done when each region it is owed to has it.
 *
 * What is owed is in the store, per entry (store.h: the pending value's
 * owed set, a bit per instance of the target, i.e. per region in the order
 * of the top-level regions:; absent: every region). Each region has a *lane*:
 * a copy of the target with its own scan cursor, retries and in-flight
 * window, submitting to that region's instance the entries whose owed set
 * has its bit. A lane's results clear its bit (the writer removes the entry
 * when no bit is left), so regions progress independently: one that is down
 * holds only its own lane, and when it comes back its lane goes on from
 * where it stopped and catches up with exactly what it still owes. After a
 * crash each lane scans from the start: an entry is redelivered only to
 * regions whose result was not durable, at most each lane's in-flight
 * window.
 *
 * Which lanes run: the target's own hold (fenced, every control off) holds
 * them all; a region whose routing control is off, or that the selector
 * judges unhealthy, holds its lane, except that when no region that is on
 * is healthy, all of those run (fail open, as for failover).
 *  - Unhealthy: the region is still owed everything accepted meanwhile and
 *    catches up once healthy.
 *  - Routing control off: the region is excluded. Every result written while
 *    it is off settles the entry for it too (`settled`), so what the other
 *    regions deliver meanwhile is never owed to it, and entries owed only to
 *    regions that are off are settled by the next scan; back on, it gets
 *    what is still pending for it and everything accepted from then on. An
 *    operator switching a region off says "not there", and an outage of
 *    unknown length must not keep every event pending. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "dispatch_internal.h"
#include "dispatch_msg.h"

static uint32_t all_regions(const evbus__target *t) {
    return t->n_instances >= 32 ? UINT32_MAX : (1u << t->n_instances) - 1;
}

static const evbus__region_rt *region_of(const evbus__dispatch *d, const evbus__instance *in) {
    return in->rindex < d->n_regions ? &d->regions[in->rindex] : NULL;
}

/* The regions of t whose routing control is off. */
static uint32_t regions_off(const evbus__dispatch *d, const evbus__target *t) {
    uint32_t off = 0;
    for (size_t j = 0; j < t->n_instances && j < 32; j++) {
        const evbus__region_rt *r = region_of(d, &t->instances[j]);
        if (r && !r->control_on)
            off |= 1u << j;
    }
    return off;
}

evbus_err evbus__replicate_init(evbus__dispatch *d) {
    for (size_t i = 0; i < d->n_targets; i++) {
        evbus__target *t = &d->targets[i];
        if (!t->live || t->cfg->policy != EVBUS_POLICY_REPLICATE - 1 || t->n_instances > 32)
            continue;
        t->lanes = calloc(t->n_instances, sizeof *t->lanes);
        if (!t->lanes)
            return EVBUS_ENOMEM;
        for (size_t j = 0; j < t->n_instances; j++) {
            evbus__target *l = &t->lanes[j];
            *l = *t;
            l->lanes = NULL;
            l->lane_of = t;
            l->lane = (uint32_t)j + 1;
            l->pref = NULL; /* route_batch: every batch to route_inst */
            l->pref_region = NULL;
            l->weights = NULL;
            l->route_inst = l->active = j;
            l->cursor = 0;
            l->in_flight = l->unconfirmed = 0;
            l->linger_since = 0;
            l->retries = NULL;
            l->n_retries = l->retries_cap = 0;
            memset(&l->k, 0, sizeof l->k);
            memset(l->misuse, 0, sizeof l->misuse);
            if (!(l->scheduled = evbus__id_index_new()))
                return EVBUS_ENOMEM;
        }
    }
    return EVBUS_OK;
}

void evbus__replicate_free(evbus__dispatch *d) {
    for (size_t i = 0; d->targets && i < d->n_targets; i++) {
        evbus__target *t = &d->targets[i];
        for (size_t j = 0; t->lanes && j < t->n_instances; j++) {
            evbus__id_index_destroy(&t->lanes[j].scheduled);
            free(t->lanes[j].retries);
        }
        free(t->lanes);
        t->lanes = NULL;
    }
}

void evbus__replicate_dispatch(evbus__dispatch *d, evbus__target *t, int64_t now_wall, bool fresh) {
    if (!t->live)
        return;
    bool any_healthy = false;
    for (size_t j = 0; j < t->n_instances; j++) {
        const evbus__region_rt *r = region_of(d, &t->instances[j]);
        any_healthy |= !r || (r->control_on && r->health != EVBUS_HEALTH_UNHEALTHY);
    }
    t->linger_since = 0;
    for (size_t j = 0; j < t->n_instances; j++) {
        evbus__target *l = &t->lanes[j];
        const evbus__region_rt *r = region_of(d, &t->instances[j]);
        l->held = t->held ||
                  (r && (!r->control_on || (any_healthy && r->health == EVBUS_HEALTH_UNHEALTHY)));
        bool scan = fresh;
        if (l->rescan && l->in_flight == 0 && l->unconfirmed == 0) {
            /* Nothing of this lane is in flight or waiting for the writer,
             * so every entry it took has its result durable: going over all
             * again sends nothing twice. */
            l->rescan = false;
            l->cursor = 0;
            scan = true;
        }
        evbus__dispatch_lane(d, l, now_wall, scan);
        /* The main loop wakes for a lingering batch through the target. */
        if (l->linger_since && (!t->linger_since || l->linger_since < t->linger_since))
            t->linger_since = l->linger_since;
    }
}

typedef struct lane_scan {
    evbus__dispatch *d;
    evbus__target *lane;
    uint32_t bit, off;
    uint64_t *seqs;
    size_t n, max;
    evbus__result_msg *settle; /* entries owed only to regions switched off */
} lane_scan;

static bool scheduled(const evbus__target *l, uint64_t seq) {
    size_t cursor = 0;
    uint64_t cand;
    uint64_t h = evbus__id_hash(&seq, sizeof seq);
    while (evbus__id_index_next(l->scheduled, h, &cursor, &cand))
        if (cand == seq)
            return true;
    return false;
}

static int on_owed(void *arg, uint64_t seq, uint32_t owed) {
    lane_scan *s = arg;
    s->lane->cursor = seq;
    if (owed & s->bit) {
        if (!scheduled(s->lane, seq))
            s->seqs[s->n++] = seq;
    } else if (owed && !(owed & ~s->off)) {
        if (!s->settle && (s->settle = evbus__result_msg_new(256)))
            s->settle->target = EVBUS__MSG_NO_BATCH;
        evbus__store_result r = {.target = s->lane->index,
                                 .seq = seq,
                                 .outcome = EVBUS__DELIVERED,
                                 .settled = owed,
                                 .regions_all = all_regions(s->lane->lane_of)};
        if (s->settle)
            evbus__result_msg_add(s->settle, &r, "");
        if (s->settle && s->settle->n == s->settle->cap)
            return 1; /* the rest next time */
    }
    return s->n == s->max;
}

size_t evbus__replicate_scan(evbus__dispatch *d, evbus__target *lane, uint64_t *seqs, size_t max) {
    const evbus__target *t = lane->lane_of;
    lane_scan s = {.d = d,
                   .lane = lane,
                   .bit = 1u << (lane->lane - 1),
                   .off = regions_off(d, t),
                   .seqs = seqs,
                   .max = max};
    evbus__store_foreach_owed(d->store, lane->index, lane->cursor, all_regions(t), on_owed, &s);
    if (s.settle) {
        evbus__result_msg_seal(s.settle);
        if (!evbus__result_msg_send(d->results, s.settle)) {
            EVBUS_LOG_E("dispatch", "cannot hand settled entries of %s to the writer: %s",
                        t->cfg->name, zmq_strerror(errno));
            evbus__result_msg_free(s.settle);
        }
    }
    return s.n;
}

const char *evbus__replicate_result(evbus__dispatch *d, const evbus__target *lane,
                                    evbus__store_result *r, const char *reason, char *buf,
                                    size_t len) {
    const evbus__target *t = lane->lane_of;
    r->regions = 1u << (lane->lane - 1);
    r->settled = regions_off(d, t) & ~r->regions;
    r->regions_all = all_regions(t);
    if (r->outcome != EVBUS__DEAD)
        return reason;
    snprintf(buf, len, "region %s: %.1024s", t->instances[lane->lane - 1].region->name, reason);
    return buf;
}

void evbus__replicate_wait(const evbus__target *t, int64_t now_mono, int64_t now_wall,
                           int64_t *wait) {
    (void)now_mono;
    for (size_t j = 0; j < t->n_instances; j++) {
        const evbus__target *l = &t->lanes[j];
        if (!l->held && l->n_retries && evbus__target_has_room(l) &&
            l->retries[0].due_ms - now_wall < *wait)
            *wait = l->retries[0].due_ms - now_wall;
    }
}

void evbus__replicate_counters(const evbus__target *t, evbus__target_counters *k) {
    for (size_t j = 0; j < t->n_instances; j++) {
        const evbus__target_counters *lk = &t->lanes[j].k;
        k->delivered += lk->delivered;
        k->retried += lk->retried;
        k->dead += lk->dead;
        k->in_flight_events += lk->in_flight_events;
        k->batches += lk->batches;
        k->in_flight_batches += t->lanes[j].in_flight + t->lanes[j].unconfirmed;
        k->target_faults += lk->target_faults;
        if (lk->target_fault[0])
            snprintf(k->target_fault, sizeof k->target_fault, "%.63s: %.180s",
                     t->instances[j].region->name, lk->target_fault);
    }
}

void evbus__replicate_describe(const evbus__dispatch *d, const evbus__target *t, char *out,
                               size_t len) {
    (void)d;
    size_t used = 0;
    out[0] = '\0';
    for (size_t j = 0; j < t->n_instances && used + 1 < len; j++) {
        const evbus__target *l = &t->lanes[j];
        int w = snprintf(out + used, len - used, "%s%s%s", used ? ", " : "",
                         t->instances[j].region->name, l->held ? " (held)" : "");
        if (w > 0)
            used = used + (size_t)w < len ? used + (size_t)w : len - 1;
    }
}
