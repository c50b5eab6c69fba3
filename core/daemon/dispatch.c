#include "dispatch.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/util.h"
#include "dispatch_internal.h"
#include "dispatch_msg.h"
#include "envelope.h"
#include "evbus.pb-c.h"
#include "event_decode.h"
#include "plugin_config.h"
#include "wire.h"

/* How often pending entries are scanned even without a wake-up: a safety net
 * for a lost wake message, cheap when nothing is pending. */
#define SCAN_INTERVAL_MS 200

/* Results a plugin reported for a batch that is still waiting for others are
 * applied after at most this long (see apply_results). */
#define PARTIAL_APPLY_MS 1000

/* Finished batches kept for the next ones (flight_free): their arena chunk
 * and envelope buffer are reused instead of going back to malloc once per
 * batch (freeing a 64 KiB chunk also makes glibc consolidate its fast bins
 * each time). */
#define SPARE_FLIGHTS 64
/* At most one log line per target this often about dead-lettered events. */
#define DEAD_LOG_INTERVAL_MS 10000

/* A batch handed to a plugin, until every event has a result or its
 * delivery_timeout has passed. */
typedef struct evbus__flight {
    struct evbus__flight *prev, *next; /* the dispatcher's list of batches in flight */
    evbus_batch *b;                    /* the header the plugin sees, in d->batches */
    evbus__target *t;
    evbus__instance *inst; /* the region's instance it was submitted to */
    size_t n, reported, applied;
    bool in_submit;
    int64_t deadline_ms;  /* monotonic: unreported events count as RETRY then */
    int64_t apply_due_ms; /* monotonic: reported results waiting are applied then; 0: none */
    uint64_t *seqs;
    uint32_t *attempts;
    evbus_sink_event *events;
    evbus_result *results;
    bool *is_applied; /* the result went to the writer */
    uint32_t *retry_after;
    const char **reasons;
    bool *found; /* the event's record was read */
    evbus__arena arena;
    evbus__bytes envelopes;
} flight;

static void publish_counters(evbus__dispatch *d) {
    pthread_mutex_lock(&d->snap_lock);
    for (size_t i = 0; i < d->n_targets; i++) {
        d->snap[i] = d->targets[i].k;
        d->snap[i].in_flight_batches = d->targets[i].in_flight + d->targets[i].unconfirmed;
        d->snap[i].region = d->targets[i].active;
        if (d->targets[i].lanes)
            evbus__replicate_counters(&d->targets[i], &d->snap[i]);
    }
    if (d->regions)
        evbus__regions_snapshot(d);
    pthread_mutex_unlock(&d->snap_lock);
}

evbus_err evbus__dispatch_counters(evbus__dispatch *d, uint32_t target,
                                   evbus__target_counters *out) {
    if (target >= d->n_targets)
        return EVBUS_EINVAL;
    pthread_mutex_lock(&d->snap_lock);
    *out = d->snap[target];
    pthread_mutex_unlock(&d->snap_lock);
    return EVBUS_OK;
}

const char *evbus__dispatch_plugin_name(const evbus__dispatch *d, uint32_t target) {
    return target < d->n_targets && d->targets[target].lib ? d->targets[target].lib->desc->name
                                                           : NULL;
}

/* ---- configuration of plugins ---- */

static void finish_flight(evbus__dispatch *d, flight *f);
static void note_due(evbus__dispatch *d, int64_t due_ms);

static const char *result_name(evbus_result r) {
    switch (r) {
    case EVBUS_RESULT_DELIVERED: return "DELIVERED";
    case EVBUS_RESULT_RETRY: return "RETRY";
    case EVBUS_RESULT_FAILED: return "FAILED";
    case EVBUS_RESULT_TARGET_FAULT: return "TARGET_FAULT";
    }
    return "?";
}

/* Checks a report against the batch table before anything is read through
 * the batch pointer: a plugin may report for a batch that has finished (and
 * whose memory is gone), twice for one event, or nonsense. Such reports are
 * logged and ignored; evbusd keeps running. */
static void host_report(evbus_host *h, const evbus_batch *b, size_t index, evbus_result result,
                        uint32_t retry_after_ms, const char *reason) {
    if (!h || !h->t)
        return; /* a selector's host: it has no batches */
    evbus__dispatch *d = h->d;
    const char *plugin = h->t->lib->desc->name, *target = h->t->cfg->name;
    if (d->closing) {
        evbus__host_misuse(h, EVBUS__MISUSE_AFTER_SHUTDOWN, EVBUS_LOG_LEVEL_WARN,
                           "plugin %s reported a result for target %s while it was being shut down "
                           "(event %zu): ignored; the event stays pending",
                           plugin, target, index);
        return;
    }
    void *owner = NULL;
    switch (evbus__batch_table_find(d->batches, b, &owner)) {
    case EVBUS__BATCH_UNKNOWN:
        evbus__host_misuse(
            h, EVBUS__MISUSE_UNKNOWN_BATCH, EVBUS_LOG_LEVEL_ERROR,
            "plugin %s reported a result for target %s with a batch pointer evbusd never "
            "handed out (event %zu): ignored",
            plugin, target, index);
        return;
    case EVBUS__BATCH_FINISHED:
        evbus__host_misuse(h, EVBUS__MISUSE_FINISHED_BATCH, EVBUS_LOG_LEVEL_ERROR,
                           "plugin %s reported event %zu for target %s: batch already finished "
                           "(every event had its result, or its delivery_timeout had passed); the "
                           "late report is ignored",
                           plugin, index, target);
        return;
    case EVBUS__BATCH_LIVE: break;
    }
    flight *f = owner;
    if ((f->t->lane_of ? f->t->lane_of : f->t) != h->t) {
        evbus__host_misuse(h, EVBUS__MISUSE_OTHER_TARGET, EVBUS_LOG_LEVEL_ERROR,
                           "plugin %s reported, through target %s's host, a result for a batch of "
                           "target %s (event %zu): ignored",
                           plugin, target, f->t->cfg->name, index);
        return;
    }
    if (f->inst != h->inst) {
        evbus__host_misuse(h, EVBUS__MISUSE_OTHER_TARGET, EVBUS_LOG_LEVEL_ERROR,
                           "plugin %s reported, through target %s's host in region %s, a result "
                           "for a batch submitted in region %s (event %zu): ignored",
                           plugin, target, h->inst->region->name, f->inst->region->name, index);
        return;
    }
    if (index >= f->n) {
        evbus__host_misuse(
            h, EVBUS__MISUSE_BAD_INDEX, EVBUS_LOG_LEVEL_ERROR,
            "plugin %s reported event %zu of a batch of target %s that has %zu events "
            "(indexes 0 to %zu): ignored",
            plugin, index, target, f->n, f->n - 1);
        return;
    }
    if (result < EVBUS_RESULT_DELIVERED || result > EVBUS_RESULT_TARGET_FAULT) {
        evbus__host_misuse(
            h, EVBUS__MISUSE_BAD_RESULT, EVBUS_LOG_LEVEL_ERROR,
            "plugin %s reported an invalid result %d for event %zu of a batch of target "
            "%s (not DELIVERED, RETRY or FAILED): ignored",
            plugin, (int)result, index, target);
        return;
    }
    if (f->results[index] != 0) {
        evbus__host_misuse(h, EVBUS__MISUSE_DUPLICATE, EVBUS_LOG_LEVEL_ERROR,
                           "plugin %s reported event %zu (seq %llu) for target %s twice: already "
                           "reported %s; the second result (%s) is ignored",
                           plugin, index, (unsigned long long)f->seqs[index], target,
                           result_name(f->results[index]), result_name(result));
        return;
    }
    f->results[index] = result;
    f->retry_after[index] = retry_after_ms;
    f->reasons[index] =
        reason && *reason ? evbus__arena_strdup(&f->arena, reason, strnlen(reason, 1024)) : NULL;
    if (++f->reported == f->n) {
        if (!f->in_submit)
            finish_flight(d, f);
    } else if (!f->apply_due_ms) {
        f->apply_due_ms = evbus__now_mono_ms() + PARTIAL_APPLY_MS;
        note_due(d, f->apply_due_ms);
    }
}

/* ---- batches ---- */

static void flight_destroy(flight *f) {
    evbus__arena_destroy(&f->arena);
    free(f->envelopes.data);
    free(f);
}

static void flight_free(evbus__dispatch *d, flight *f) {
    if (f->b)
        evbus__batch_table_release(d->batches, f->b, evbus__now_mono_ms());
    f->b = NULL;
    if (d->n_spare < SPARE_FLIGHTS) {
        evbus__arena_reset(&f->arena);
        f->envelopes.len = 0;
        f->next = d->spare;
        d->spare = f;
        d->n_spare++;
        return;
    }
    flight_destroy(f);
}

/* An empty flight: a spare one (its memory kept), or a new one. */
static flight *flight_alloc(evbus__dispatch *d) {
    flight *f = d->spare;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (f)
            evbus__arena_init(&f->arena, 64 * 1024);
        return f;
    }
    d->spare = f->next;
    d->n_spare--;
    evbus__arena arena = f->arena;
    evbus__bytes envelopes = f->envelopes;
    memset(f, 0, sizeof *f);
    f->arena = arena;
    f->envelopes = envelopes;
    return f;
}

/* Full jitter: a random delay in [0, min(max, base * 2^(attempt-1))]. */
static int64_t backoff_ms(const evbus__target_cfg *t, uint32_t attempts) {
    int64_t cap = t->retry_base_ms;
    for (uint32_t i = 1; i < attempts && cap < t->retry_max_ms; i++)
        cap *= 2;
    if (cap > t->retry_max_ms)
        cap = t->retry_max_ms;
    return (int64_t)((double)rand() / ((double)RAND_MAX + 1.0) * (double)(cap + 1));
}

static bool is_scheduled(const evbus__target *t, uint64_t seq) {
    size_t cursor = 0;
    uint64_t cand;
    uint64_t h = evbus__id_hash(&seq, sizeof seq);
    while (evbus__id_index_next(t->scheduled, h, &cursor, &cand))
        if (cand == seq)
            return true;
    return false;
}

static void schedule_retry(evbus__target *t, uint64_t seq, uint32_t attempts, int64_t due_ms) {
    if (t->n_retries == t->retries_cap) {
        size_t cap = t->retries_cap ? t->retries_cap * 2 : 64;
        evbus__retry *nr = realloc(t->retries, cap * sizeof *nr);
        if (!nr)
            return; /* stays pending: redelivered after a restart */
        t->retries = nr;
        t->retries_cap = cap;
    }
    size_t i = t->n_retries;
    while (i > 0 && t->retries[i - 1].due_ms > due_ms) {
        t->retries[i] = t->retries[i - 1];
        i--;
    }
    t->retries[i] = (evbus__retry){due_ms, seq, attempts};
    t->n_retries++;
    /* A retry taken for delivery stays marked until its result is durable
     * (see dispatch_target), so it may be marked already. */
    if (!is_scheduled(t, seq))
        evbus__id_index_put(t->scheduled, evbus__id_hash(&seq, sizeof seq), seq);
}

static void note_due(evbus__dispatch *d, int64_t due_ms) {
    if (due_ms < d->next_sweep_ms)
        d->next_sweep_ms = due_ms;
}

/* True when the batch went to a region the target no longer delivers to
 * (failover policy; weighted and replicate routes spread by design). */
static bool moved_away(const evbus__target *t, const flight *f) {
    return t->pref && !t->lanes && t->route.mode != EVBUS_ROUTE_WEIGHTED && f->inst &&
           f->inst != &t->instances[t->route_inst];
}

/* Sends the results reported since the last call to the writer, and
 * schedules retries.
 *
 * Results are applied before a batch's last report (`last` false) so that a
 * plugin that is slow to report, or never reports, one event does not hold
 * back the durable results of the others: delivered entries leave the store
 * instead of being delivered again after a crash. That is safe because the
 * batch still counts in the target's window (evbus__target_has_room) until
 * the message of its last results (`last`) has come back from the writer:
 * the writer commits messages in the order they were sent, so the batch
 * leaves the window only once every result of it is durable, and a crash
 * still redelivers at most the window's batches per target (fewer events,
 * as some of their results are already recorded). Early messages carry
 * EVBUS__MSG_NO_BATCH so that their return counts nothing out of the window.
 *
 * The last message gives the batch's request slot (in_flight, bounded by
 * max_in_flight) back at once: the batch counts as unconfirmed until the
 * writer hands the message back, so that a commit's fsync does not keep
 * requests from being sent. */
static void apply_results(evbus__dispatch *d, flight *f, bool last) {
    evbus__target *t = f->t;
    int64_t now = evbus__now_wall_ms();
    evbus__result_msg *m = evbus__result_msg_new(f->reported - f->applied);
    if (m) {
        m->target = last ? t->index : EVBUS__MSG_NO_BATCH;
        m->lane = t->lane;
    }
    size_t applied = 0;
    bool faulted = false;
    for (size_t i = 0; i < f->n; i++) {
        if (!f->results[i] || f->is_applied[i])
            continue;
        f->is_applied[i] = true;
        applied++;
        evbus__store_result r = {.target = t->index, .seq = f->seqs[i], .attempts = f->attempts[i]};
        const char *reason = f->reasons[i] ? f->reasons[i] : "";
        char why[1100];
        switch (f->results[i]) {
        case EVBUS_RESULT_DELIVERED:
            r.outcome = EVBUS__DELIVERED;
            t->fault_streak = 0;
            t->k.target_fault[0] = '\0';
            break;
        case EVBUS_RESULT_TARGET_FAULT:
            /* The target, not the event, failed: the attempt is given back
             * so a long outage never dead-letters, and the backoff grows per
             * target instead of per event. */
            r.outcome = EVBUS__RETRY;
            r.attempts = f->attempts[i] ? f->attempts[i] - 1 : 0;
            r.due_ms = now + (f->retry_after[i] ? (int64_t)f->retry_after[i]
                                                : backoff_ms(t->cfg, t->fault_streak + 1));
            /* A fault of a region traffic has since left (a call that
             * timed out there): retried in the new one at once, as RETRY
             * below, and no backoff streak for the new region. */
            if (moved_away(t, f))
                r.due_ms = now;
            else
                faulted = true;
            t->k.target_faults++;
            snprintf(t->k.target_fault, sizeof t->k.target_fault, "%s",
                     *reason ? reason : "target fault");
            /* Whose fault it is, for status after traffic moves on. */
            t->k.fault_region = f->inst ? (size_t)(f->inst - t->instances) : SIZE_MAX;
            schedule_retry(t, f->seqs[i], r.attempts, r.due_ms);
            break;
        case EVBUS_RESULT_FAILED:
            r.outcome = EVBUS__DEAD;
            r.due_ms = now;
            break;
        default:
            if (moved_away(t, f)) {
                /* Refused by a region traffic has since left: retried in
                 * the new one at once, the attempt given back (see
                 * retry_in_new_region in dispatch_regions.c). */
                r.outcome = EVBUS__RETRY;
                r.attempts = f->attempts[i] ? f->attempts[i] - 1 : 0;
                r.due_ms = now;
                schedule_retry(t, f->seqs[i], r.attempts, r.due_ms);
            } else if (f->attempts[i] >= t->cfg->retry_max_attempts) {
                snprintf(why, sizeof why, "gave up after %u attempts: %s", f->attempts[i],
                         *reason ? reason : "retryable failure");
                reason = why;
                r.outcome = EVBUS__DEAD;
                r.due_ms = now;
            } else {
                int64_t delay = f->retry_after[i] ? (int64_t)f->retry_after[i]
                                                  : backoff_ms(t->cfg, f->attempts[i]);
                r.outcome = EVBUS__RETRY;
                r.due_ms = now + delay;
                schedule_retry(t, f->seqs[i], f->attempts[i], r.due_ms);
            }
        }
        char region_why[1200];
        if (t->lane)
            reason = evbus__replicate_result(d, t, &r, reason, region_why, sizeof region_why);
        if (m)
            evbus__result_msg_add(m, &r, reason);
    }
    if (faulted && t->fault_streak < 32)
        t->fault_streak++;
    f->applied += applied;
    t->k.in_flight_events -= applied;
    f->apply_due_ms = 0;
    if (m)
        evbus__result_msg_seal(m);
    bool sent = m && evbus__result_msg_send(d->results, m);
    if (!sent) {
        /* The entries stay pending and are delivered again after a restart. */
        EVBUS_LOG_E("dispatch", "cannot hand results to the writer: %s",
                    m ? zmq_strerror(errno) : "out of memory");
        evbus__result_msg_free(m);
    }
    /* A sent batch stays counted as unconfirmed until the writer has made
     * its last results durable (see dispatch_msg.h). */
    if (last) {
        t->in_flight--;
        t->unconfirmed += sent;
    }
}

/* Turns a finished batch into durable results for the writer and retries. */
static void finish_flight(evbus__dispatch *d, flight *f) {
    size_t ok = 0, failed = 0;
    for (size_t i = 0; i < f->n; i++) {
        ok += f->results[i] == EVBUS_RESULT_DELIVERED;
        failed += f->results[i] == EVBUS_RESULT_RETRY || f->results[i] == EVBUS_RESULT_TARGET_FAULT;
    }
    evbus__regions_delivery(d, f->t, f->inst, ok, failed);
    apply_results(d, f, true);
    LIST_UNLINK(d->flights, f);
    flight_free(d, f);
}

static void format_ms(char *buf, size_t len, int64_t ms) {
    if (ms % 1000 == 0)
        snprintf(buf, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(buf, len, "%lldms", (long long)ms);
}

/* The plugin has not reported every event within the target's
 * delivery_timeout: the rest count as RETRY (an attempt like any other, so
 * an event the plugin never answers ends in the dead-letter store after
 * retry_max_attempts), and the batch finishes, which frees its request slot
 * at once and its place in the window once its results are durable. */
static void time_out_flight(evbus__dispatch *d, flight *f) {
    evbus__target *t = f->t;
    char limit[32], reason[160];
    format_ms(limit, sizeof limit, t->cfg->delivery_timeout_ms);
    snprintf(reason, sizeof reason, "no result from plugin %s within delivery_timeout (%s)",
             t->lib->desc->name, limit);
    size_t missing = f->n - f->reported;
    for (size_t i = 0; i < f->n; i++) {
        if (!f->results[i]) {
            f->results[i] = EVBUS_RESULT_RETRY;
            f->reasons[i] = reason;
            f->reported++;
        }
    }
    evbus__host_misuse(&f->inst->host, EVBUS__MISUSE_TIMEOUT, EVBUS_LOG_LEVEL_WARN,
                       "plugin %s reported no result for %zu of %zu events of a batch of target %s "
                       "within its delivery_timeout (%s): they count as RETRY",
                       t->lib->desc->name, missing, f->n, t->cfg->name, limit);
    finish_flight(d, f);
}

/* Times batches out and applies results that have waited PARTIAL_APPLY_MS;
 * runs when the earliest of those moments has come. */
static void sweep_flights(evbus__dispatch *d, int64_t now) {
    if (now < d->next_sweep_ms)
        return;
    int64_t next = INT64_MAX;
    for (flight *f = d->flights, *nx; f; f = nx) {
        nx = f->next;
        if (now >= f->deadline_ms) {
            time_out_flight(d, f);
            continue;
        }
        if (f->apply_due_ms && now >= f->apply_due_ms)
            apply_results(d, f, false);
        if (f->deadline_ms < next)
            next = f->deadline_ms;
        if (f->apply_due_ms && f->apply_due_ms < next)
            next = f->apply_due_ms;
    }
    d->next_sweep_ms = next;
}

/* Decodes one stored record into event i of f (its memory in f's arena). */
static void read_into(flight *f, size_t i, const void *record, size_t len) {
    Evbus__V1__Event *ev = evbus__event_decode(&f->arena, record, len);
    if (!ev)
        return;
    size_t off = f->envelopes.len;
    if (evbus__envelope_json(ev, &f->envelopes))
        return;
    evbus_sink_event *se = &f->events[i];
    se->sequence = f->seqs[i];
    se->id = ev->id;
    se->source = ev->source;
    se->detail_type = ev->detail_type;
    se->detail = ev->detail;
    se->time = ev->time;
    se->origin_region = ev->origin_region;
    se->partition_key = ev->partition_key;
    se->resources = (const char *const *)ev->resources;
    se->n_resources = ev->n_resources;
    se->envelope_len = f->envelopes.len - off;
    se->envelope_json = (const char *)(uintptr_t)off; /* fixed once all are built */
    se->attempt = f->attempts[i];
    if (ev->n_attributes) {
        evbus_attr *a = evbus__arena_alloc(&f->arena, ev->n_attributes * sizeof *a);
        for (size_t j = 0; a && j < ev->n_attributes; j++) {
            a[j].key = ev->attributes[j]->key;
            a[j].value = ev->attributes[j]->value;
        }
        se->attributes = a;
        se->n_attributes = a ? ev->n_attributes : 0;
    }
    f->found[i] = true;
}

static void on_record(void *arg, size_t i, const void *record, size_t len) {
    read_into(arg, i, record, len);
}

/* A batch of target t with room for `cap` events, none in it yet: fill
 * seqs, attempts and n, read the records, then flight_submit. NULL when
 * out of memory. */
static flight *flight_new(evbus__dispatch *d, evbus__target *t, size_t cap) {
    flight *f = flight_alloc(d);
    if (!f)
        return NULL;
    f->t = t;
    f->seqs = evbus__arena_alloc(&f->arena, cap * sizeof *f->seqs);
    f->attempts = evbus__arena_alloc(&f->arena, cap * sizeof *f->attempts);
    f->events = evbus__arena_alloc(&f->arena, cap * sizeof *f->events);
    f->results = evbus__arena_alloc(&f->arena, cap * sizeof *f->results);
    f->retry_after = evbus__arena_alloc(&f->arena, cap * sizeof *f->retry_after);
    f->reasons = evbus__arena_alloc(&f->arena, cap * sizeof *f->reasons);
    f->is_applied = evbus__arena_alloc(&f->arena, cap * sizeof *f->is_applied);
    f->found = evbus__arena_alloc(&f->arena, cap * sizeof *f->found);
    if (!f->seqs || !f->attempts || !f->events || !f->results || !f->retry_after || !f->reasons ||
        !f->is_applied || !f->found ||
        !(f->b = evbus__batch_table_take(d->batches, f, evbus__now_mono_ms()))) {
        flight_free(d, f);
        return NULL;
    }
    /* Results the host fills in itself (missing records, a refused batch, a
     * timeout) have no retry_after hint and no reason of the plugin's. */
    memset(f->is_applied, 0, cap * sizeof *f->is_applied);
    memset(f->retry_after, 0, cap * sizeof *f->retry_after);
    memset(f->reasons, 0, cap * sizeof *f->reasons);
    memset(f->events, 0, cap * sizeof *f->events);
    memset(f->results, 0, cap * sizeof *f->results);
    memset(f->found, 0, cap * sizeof *f->found);
    return f;
}

/* Hands a filled and read batch to one region's instance. */
static void flight_submit(evbus__dispatch *d, flight *f, evbus__instance *inst) {
    evbus__target *t = f->t;
    size_t n = f->n;
    f->inst = inst;
    for (size_t i = 0; i < n; i++)
        if (f->found[i])
            f->events[i].envelope_json =
                (const char *)f->envelopes.data + (uintptr_t)f->events[i].envelope_json;
    /* The byte limit is only known once the events are read: cut the batch
     * there (never below one event) and hand the rest back as due now. */
    if (t->batch_max_bytes) {
        size_t total = 0, keep = n;
        for (size_t i = 0; i < n; i++) {
            total += f->events[i].envelope_len;
            if (total > t->batch_max_bytes && i > 0) {
                keep = i;
                break;
            }
        }
        int64_t now = evbus__now_wall_ms();
        for (size_t i = keep; i < n; i++)
            schedule_retry(t, f->seqs[i], f->attempts[i] - 1, now);
        n = keep;
        f->n = keep;
    }
    f->b->target = t->cfg->name;
    f->b->region = f->inst->region->name;
    f->b->events = f->events;
    f->b->n_events = n;
    f->deadline_ms = evbus__now_mono_ms() + t->cfg->delivery_timeout_ms;
    note_due(d, f->deadline_ms);
    LIST_PUSH(d->flights, f);
    t->in_flight++;
    t->k.batches++;
    t->k.in_flight_events += n;
    /* An event whose record is gone cannot be delivered by anyone. */
    for (size_t i = 0; i < n; i++) {
        if (!f->found[i]) {
            f->results[i] = EVBUS_RESULT_FAILED;
            f->reasons[i] = "event record missing from the store";
            f->reported++;
        }
    }
    if (f->reported == n) {
        finish_flight(d, f);
        return;
    }
    f->in_submit = true;
    evbus_err rc = t->lib->desc->submit(f->inst->state, f->b);
    f->in_submit = false;
    if (rc != EVBUS_OK) {
        for (size_t i = 0; i < n; i++) {
            if (!f->results[i]) {
                f->results[i] = EVBUS_RESULT_RETRY;
                f->reasons[i] = "plugin refused the batch";
                f->reported++;
            }
        }
    }
    if (f->reported == n)
        finish_flight(d, f);
}

/* Builds and submits one batch of `n` sequences to one region's instance. */
static void submit_batch(evbus__dispatch *d, evbus__target *t, evbus__instance *inst,
                         const uint64_t *seqs, const uint32_t *attempts, size_t n) {
    flight *f = flight_new(d, t, n);
    if (!f)
        return;
    f->n = n;
    memcpy(f->seqs, seqs, n * sizeof *seqs);
    memcpy(f->attempts, attempts, n * sizeof *attempts);
    evbus__store_read_events(d->store, seqs, n, on_record, f);
    flight_submit(d, f, inst);
}

/* ORIGIN routes (policy home): one batch per region, each event in the
 * batch of the position evbus__route_origin_position gives its origin
 * region. The batch key is read from the record's bytes in the same read
 * transaction that decodes the record into that batch, so grouping costs
 * no second read: a scan of the record's field tags. */
typedef struct by_origin {
    evbus__dispatch *d;
    evbus__target *t;
    const uint64_t *seqs;
    const uint32_t *attempts;
    size_t n;
    bool *seen;                         /* per event: its record was read */
    flight *g[EVBUS_ROUTE_MAX_REGIONS]; /* per position, created on first use */
} by_origin;

/* The record's origin_region (field 9 of evbus.v1.Event) into out. */
static void peek_origin(const void *record, size_t len, char *out, size_t outlen) {
    evbus__wire w;
    evbus__wire_field fl;
    evbus__wire_init(&w, record, len);
    out[0] = '\0';
    while (evbus__wire_next(&w, &fl) == 1)
        if (fl.number == 9 && fl.type == EVBUS_WIRE_LEN) {
            snprintf(out, outlen, "%.*s", (int)fl.len, (const char *)fl.data);
            return;
        }
}

static flight *group_of(by_origin *o, size_t p) {
    if (!o->g[p])
        o->g[p] = flight_new(o->d, o->t, o->n);
    return o->g[p];
}

static void on_origin_record(void *arg, size_t i, const void *record, size_t len) {
    by_origin *o = arg;
    char origin[64];
    peek_origin(record, len, origin, sizeof origin);
    size_t p = evbus__route_origin_position(o->t, origin);
    flight *f = group_of(o, p);
    if (!f)
        return; /* out of memory: the entry is scanned again later */
    size_t k = f->n++;
    o->seen[i] = true;
    f->seqs[k] = o->seqs[i];
    f->attempts[k] = o->attempts[i];
    read_into(f, k, record, len);
}

static void route_by_origin(evbus__dispatch *d, evbus__target *t, const uint64_t *seqs,
                            const uint32_t *attempts, size_t n) {
    bool seen[1024]; /* dispatch_target's largest batch */
    if (n > sizeof seen / sizeof seen[0])
        n = sizeof seen / sizeof seen[0];
    memset(seen, 0, n * sizeof *seen);
    by_origin o = {.d = d, .t = t, .seqs = seqs, .attempts = attempts, .n = n, .seen = seen};
    evbus__store_read_events(d->store, seqs, n, on_origin_record, &o);
    /* A record that is gone has no origin: its batch is the fallback's,
     * where it is answered "missing" like in any other batch. */
    size_t fb = evbus__route_origin_position(t, "");
    for (size_t i = 0; i < n; i++) {
        flight *f = seen[i] ? NULL : group_of(&o, fb);
        if (f) {
            f->seqs[f->n] = seqs[i];
            f->attempts[f->n++] = attempts[i];
        }
    }
    for (size_t p = 0; p < EVBUS_ROUTE_MAX_REGIONS; p++)
        if (o.g[p])
            flight_submit(d, o.g[p], &t->instances[t->pref[p]]);
}

typedef struct scan {
    evbus__target *t;
    uint64_t *seqs;
    size_t n, max;
} scan;

static int on_pending(void *arg, uint64_t seq) {
    scan *s = arg;
    s->t->cursor = seq;
    if (!is_scheduled(s->t, seq))
        s->seqs[s->n++] = seq;
    return s->n == s->max;
}

/* Hands the events to the region(s) the target's route gives them. The
 * route is the selector's last decision with the routing controls folded
 * in (dispatch_regions.c): for one region, a read of t->route_inst; for a
 * weighted route, a position per event and a batch per region; for an
 * origin route, a batch per origin region (route_by_origin). */
static void route_batch(evbus__dispatch *d, evbus__target *t, const uint64_t *seqs,
                        const uint32_t *attempts, size_t n) {
    if (t->pref && t->route.mode == EVBUS_ROUTE_ORIGIN) {
        route_by_origin(d, t, seqs, attempts, n);
        return;
    }
    if (!t->pref || t->route.mode != EVBUS_ROUTE_WEIGHTED) {
        submit_batch(d, t, &t->instances[t->route_inst], seqs, attempts, n);
        return;
    }
    uint64_t gs[EVBUS_ROUTE_MAX_REGIONS][64];
    uint32_t ga[EVBUS_ROUTE_MAX_REGIONS][64];
    size_t gn[EVBUS_ROUTE_MAX_REGIONS] = {0};
    for (size_t i = 0; i < n; i++) {
        size_t p = evbus__route_next_position(t);
        gs[p][gn[p]] = seqs[i];
        ga[p][gn[p]++] = attempts[i];
        if (gn[p] == 64) {
            submit_batch(d, t, &t->instances[t->pref[p]], gs[p], ga[p], gn[p]);
            gn[p] = 0;
        }
    }
    for (size_t p = 0; p < t->n_instances && p < EVBUS_ROUTE_MAX_REGIONS; p++)
        if (gn[p])
            submit_batch(d, t, &t->instances[t->pref[p]], gs[p], ga[p], gn[p]);
}

/* Submits batches to one target while it has room: due retries first, then
 * entries that became pending since the last scan. A held target (fenced,
 * or every region's control off) gets nothing: its entries wait. */
static void dispatch_target(evbus__dispatch *d, evbus__target *t, int64_t now_wall,
                            bool scan_fresh) {
    if (t->held)
        return;
    size_t max = t->batch_max_events;
    uint64_t seqs[1024];
    uint32_t attempts[1024];
    if (max > 1024)
        max = 1024;
    while (evbus__target_has_room(t)) {
        size_t n = 0;
        while (n < max && t->n_retries > 0 && t->retries[0].due_ms <= now_wall) {
            evbus__retry r = t->retries[0];
            memmove(t->retries, t->retries + 1, (t->n_retries - 1) * sizeof *t->retries);
            t->n_retries--;
            seqs[n] = r.seq;
            attempts[n++] = r.attempts + 1;
        }
        size_t retried = n;
        uint64_t cursor_before = t->cursor;
        if (n < max && scan_fresh) {
            /* Retries taken stay marked scheduled until their results are
             * durable (the writer hands them back): after a restart the
             * cursor is behind them, and a scan before then, in this pass or
             * a later one, would deliver them a second time. */
            scan s = {t, seqs + n, 0, max - n};
            if (t->lane)
                s.n = evbus__replicate_scan(d, t, seqs + n, max - n);
            else
                evbus__store_foreach_pending(d->store, t->index, t->cursor, on_pending, &s);
            for (size_t i = 0; i < s.n; i++)
                attempts[n + i] = 1;
            if (s.n < max - n)
                scan_fresh = false; /* caught up */
            n += s.n;
        }
        if (n == 0)
            return;
        /* batch_linger: a partial batch of new events waits a little for
         * company, up to the linger time since it was first seen. */
        int64_t linger = t->cfg->batch_linger_ms, now = evbus__now_mono_ms();
        if (n < max && retried == 0 && linger > 0) {
            if (!t->linger_since)
                t->linger_since = now;
            if (now - t->linger_since < linger) {
                t->cursor = cursor_before; /* scan them again next time */
                return;
            }
        }
        t->linger_since = 0;
        route_batch(d, t, seqs, attempts, n);
    }
}

void evbus__dispatch_lane(evbus__dispatch *d, evbus__target *lane, int64_t now_wall, bool fresh) {
    dispatch_target(d, lane, now_wall, fresh);
}

/* ---- the thread ---- */

static void run_timers(evbus__dispatch *d) {
    int64_t now = evbus__now_mono_ms();
    for (size_t i = 0; i < d->n_timers;) {
        if (d->timers[i].due_ms <= now) {
            evbus__timer t = d->timers[i];
            d->timers[i] = d->timers[--d->n_timers];
            t.fn(t.arg);
        } else {
            i++;
        }
    }
}

static void run_transfers(evbus__dispatch *d) {
    int running;
    curl_multi_perform(d->multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(d->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode code = msg->data.result;
        evbus__transfer *tr = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&tr);
        curl_multi_remove_handle(d->multi, easy);
        if (tr) {
            LIST_UNLINK(d->transfers, tr);
            tr->done(tr->arg, easy, (int)code);
            free(tr);
        }
    }
}

static int64_t next_wait_ms(const evbus__dispatch *d) {
    int64_t wait = SCAN_INTERVAL_MS, now = evbus__now_mono_ms(), wall = evbus__now_wall_ms();
    for (size_t i = 0; i < d->n_timers; i++)
        if (d->timers[i].due_ms - now < wait)
            wait = d->timers[i].due_ms - now;
    for (size_t i = 0; i < d->n_targets; i++) {
        const evbus__target *t = &d->targets[i];
        if (t->live && !t->held && t->n_retries && evbus__target_has_room(t) &&
            t->retries[0].due_ms - wall < wait)
            wait = t->retries[0].due_ms - wall;
        if (t->live && t->linger_since && t->linger_since + t->cfg->batch_linger_ms - now < wait)
            wait = t->linger_since + t->cfg->batch_linger_ms - now;
        if (t->lanes)
            evbus__replicate_wait(t, now, wall, &wait);
    }
    if (d->next_sweep_ms - now < wait)
        wait = d->next_sweep_ms - now;
    return wait < 0 ? 0 : wait;
}

/* Tells the log that target t dead-lettered an event (durably, for
 * `reason`): the first at once, then at most one line per interval with how
 * many there were since the last line, so that an operator learns events
 * are leaving delivery without a line per event. t is the target as
 * configured (a replicate target's lane reports for its target). */
static void note_dead(evbus__target *t, const char *reason, int64_t now) {
    uint64_t n = ++t->dead_log.count;
    if (n > 1 && now - t->dead_log.last_log_ms < DEAD_LOG_INTERVAL_MS)
        return;
    uint64_t told = n - t->dead_log.logged;
    EVBUS_LOG_W("dispatch",
                "target %s: %llu event(s) moved to the dead-letter store%s (the last: %s); "
                "`evbus dlq list -t %s` shows them, `evbus dlq replay -t %s` delivers them again",
                t->cfg->name, (unsigned long long)told,
                t->dead_log.logged ? " since the last such line" : "",
                reason && *reason ? reason : "no reason given", t->cfg->name, t->cfg->name);
    t->dead_log.logged = n;
    t->dead_log.last_log_ms = now;
}

/* Logs the dead letters told only in part once their interval is over (or
 * at once when `now` is INT64_MAX, at a stop), so that the last of a burst is
 * not left untold. */
static void flush_dead_notes(evbus__dispatch *d, int64_t now) {
    for (size_t i = 0; i < d->n_targets; i++) {
        evbus__target *t = &d->targets[i];
        uint64_t untold = t->dead_log.count - t->dead_log.logged;
        if (untold && now - t->dead_log.last_log_ms >= DEAD_LOG_INTERVAL_MS) {
            EVBUS_LOG_W("dispatch",
                        "target %s: %llu more event(s) moved to the dead-letter store since the "
                        "last such line; `evbus dlq list -t %s` shows them",
                        t->cfg->name, (unsigned long long)untold, t->cfg->name);
            t->dead_log.logged = t->dead_log.count;
            t->dead_log.last_log_ms = now;
        }
    }
}

/* The writer's messages: an empty one after a commit added pending entries,
 * or a result message coming back once its results are durable. */
static void take_wakes(evbus__dispatch *d) {
    evbus__result_msg *m;
    int n;
    while ((n = zmq_recv(d->wake, &m, sizeof m, ZMQ_DONTWAIT)) >= 0) {
        if (n == (int)sizeof m) {
            if (m->target < d->n_targets) {
                evbus__target *mt = &d->targets[m->target];
                (m->lane && mt->lanes ? &mt->lanes[m->lane - 1] : mt)->unconfirmed--;
            }
            /* Replayed dead letters are pending again, below the targets'
             * scan cursors: deliver them as retries due now. */
            for (size_t i = 0; i < m->n; i++) {
                const evbus__store_result *r = &m->v[i];
                /* Counted once durable, so that what `evbus status` says
                 * was delivered or dead-lettered is what the store (and
                 * `evbus dlq list`) holds. */
                if (r->target < d->n_targets) {
                    /* A replicate target's results belong to the lane (the
                     * region) the message names. */
                    evbus__target *t = &d->targets[r->target];
                    if (m->lane && t->lanes)
                        t = &t->lanes[m->lane - 1];
                    t->k.delivered += r->outcome == EVBUS__DELIVERED;
                    t->k.retried += r->outcome == EVBUS__RETRY;
                    t->k.dead += r->outcome == EVBUS__DEAD;
                    if (r->outcome == EVBUS__DEAD)
                        note_dead(&d->targets[r->target], r->reason, evbus__now_mono_ms());
                    /* Its pending entry is gone now: scans may not find it,
                     * so the mark a retry kept while in flight can go. */
                    if (t->scheduled &&
                        (r->outcome == EVBUS__DELIVERED || r->outcome == EVBUS__DEAD))
                        evbus__id_index_del(t->scheduled, evbus__id_hash(&r->seq, sizeof r->seq),
                                            r->seq);
                }
                if (r->outcome == EVBUS__STATE && d->regions) {
                    evbus__regions_apply_state(d, r->reason, m->audit_detail);
                    continue;
                }
                if ((r->outcome == EVBUS__REQUEUE || r->outcome == EVBUS__REPLAY) &&
                    r->target < d->n_targets && d->targets[r->target].lanes) {
                    for (size_t j = 0; j < d->targets[r->target].n_instances; j++)
                        d->targets[r->target].lanes[j].rescan = true;
                    continue;
                }
                if ((r->outcome == EVBUS__REQUEUE || r->outcome == EVBUS__REPLAY) &&
                    r->target < d->n_targets && d->targets[r->target].live &&
                    !is_scheduled(&d->targets[r->target], r->seq))
                    schedule_retry(&d->targets[r->target], r->seq, 0, r->due_ms);
            }
            evbus__result_msg_free(m);
        }
        d->scan_due = true;
    }
}

static void *dispatch_main(void *arg) {
    evbus__dispatch *d = arg;
    /* A name for top -H, perf and gdb: the delivery thread. */
    pthread_setname_np(pthread_self(), "evbus-deliver");
    int fd;
    size_t fdlen = sizeof fd;
    zmq_getsockopt(d->wake, ZMQ_FD, &fd, &fdlen);
    d->scan_due = true;
    while (!atomic_load(&d->stop)) {
        struct curl_waitfd extra = {fd, CURL_WAIT_POLLIN, 0};
        int numfds;
        curl_multi_poll(d->multi, &extra, 1, (int)next_wait_ms(d), &numfds);
        if (atomic_load(&d->stop))
            break;
        /* ZMQ_FD only says "look": drain the wake socket until it is empty. */
        take_wakes(d);
        run_transfers(d);
        run_timers(d);
        int64_t now = evbus__now_mono_ms();
        sweep_flights(d, now);
        flush_dead_notes(d, now);
        if (now - d->last_scan_ms >= SCAN_INTERVAL_MS)
            d->scan_due = true;
        for (size_t i = 0; i < d->n_targets; i++)
            if (d->targets[i].linger_since &&
                now - d->targets[i].linger_since >= d->targets[i].cfg->batch_linger_ms)
                d->scan_due = true; /* a lingering batch is due */
        bool fresh = d->scan_due;
        d->scan_due = false;
        if (fresh)
            d->last_scan_ms = now;
        int64_t wall = evbus__now_wall_ms();
        for (size_t i = 0; i < d->n_targets; i++) {
            if (d->targets[i].lanes)
                evbus__replicate_dispatch(d, &d->targets[i], wall, fresh);
            else if (d->targets[i].live)
                dispatch_target(d, &d->targets[i], wall, fresh);
        }
        publish_counters(d);
    }
    take_wakes(d);
    flush_dead_notes(d, INT64_MAX);
    return NULL;
}

/* ---- life cycle ---- */

static int load_retry(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t due_ms) {
    evbus__dispatch *d = arg;
    /* A replicate target's lanes find their entries by what they owe. */
    if (target < d->n_targets && d->targets[target].live && !d->targets[target].lanes)
        schedule_retry(&d->targets[target], seq, attempts, due_ms);
    return 0;
}

/* Loads target i's plugin and checks its settings in each of its regions.
 * Returns the library, or NULL after adding the problems to `e`. */
static evbus__plugin_lib *open_checked(const evbus__config *cfg, size_t i, evbus__cfg_errors *e) {
    const evbus__target_cfg *tc = evbus__config_target(cfg, i);
    char key[300], why[1024];
    snprintf(key, sizeof key, "targets[%zu] (%s)", i, tc->name);
    evbus__plugin_lib *lib = NULL;
    if (evbus__plugin_open(tc->plugin, &lib, why, sizeof why) != EVBUS_OK) {
        evbus__cfg_error(e, tc->plugin_pos.line ? tc->plugin_pos : cfg->targets.pos[i], key, "%s",
                         why);
        return NULL;
    }
    if (tc->n_delivery_regions == 0) {
        evbus__cfg_error(e, cfg->targets.pos[i], key, "out of memory");
        evbus__plugin_close(&lib);
        return NULL;
    }
    if (lib->desc->kind != EVBUS_PLUGIN_SINK) {
        evbus__cfg_error(e, cfg->targets.pos[i], key,
                         "%s: plugin %s is a region selector, not a sink (name it under "
                         "selector:)",
                         lib->path, lib->desc->name);
        evbus__plugin_close(&lib);
        return NULL;
    }
    if (evbus__plugin_config_check(e, i, cfg->targets.pos[i], tc, lib->desc))
        evbus__plugin_close(&lib);
    return lib;
}

/* Starts one instance of the target's plugin per region it delivers to. A
 * target without regions: keeps the log prefix it always had. */
static evbus_err start_target(evbus__dispatch *d, evbus__target *t, char *err, size_t errlen) {
    const evbus_plugin *p = t->lib->desc;
    t->batch_max_events = p->max_batch_events;
    if (t->cfg->batch_max_events && t->cfg->batch_max_events < t->batch_max_events)
        t->batch_max_events = t->cfg->batch_max_events;
    t->batch_max_bytes = p->max_batch_bytes;
    if (t->cfg->batch_max_bytes &&
        (!t->batch_max_bytes || t->cfg->batch_max_bytes < t->batch_max_bytes))
        t->batch_max_bytes = t->cfg->batch_max_bytes;
    t->instances = calloc(t->cfg->n_delivery_regions, sizeof *t->instances);
    if (!t->instances)
        return EVBUS_ENOMEM;
    for (size_t j = 0; j < t->cfg->n_delivery_regions; j++) {
        evbus__instance *in = &t->instances[j];
        in->region = &t->cfg->delivery_regions[j];
        in->host = (struct evbus_host){.d = d, .t = t, .inst = in};
        if (t->cfg->regions.n)
            snprintf(in->host.prefix, sizeof in->host.prefix, "sink:%s:%s-%s", p->name,
                     t->cfg->name, in->region->name);
        else
            snprintf(in->host.prefix, sizeof in->host.prefix, "sink:%s:%s", p->name, t->cfg->name);
        t->n_instances = j + 1; /* shut down from here on, even if init fails */
        if (p->init(&d->api, &in->host, &in->state) != EVBUS_OK) {
            snprintf(err, errlen,
                     "%s:%u:%u: targets[%u] (%s): plugin %s failed to start in region %s (its "
                     "log says why)",
                     d->cfg->path, t->at.line, t->at.column, t->index, t->cfg->name, p->name,
                     in->region->name);
            return EVBUS_ECONFIG;
        }
    }
    /* The first region in the order of preference delivers until the
     * routes are loaded (evbus__regions_init) and the selector says. */
    t->active = 0;
    t->route_inst = 0;
    t->live = true;
    return EVBUS_OK;
}

evbus_err evbus__dispatch_new(const evbus__config *cfg, evbus__store *store, void *zctx,
                              const char *results_endpoint, const char *wake_endpoint,
                              evbus__dispatch **out, char *err, size_t errlen) {
    evbus__dispatch *d = calloc(1, sizeof *d);
    if (!d)
        return EVBUS_ENOMEM;
    evbus_err rc = EVBUS_ENOMEM;
    d->cfg = cfg;
    d->store = store;
    d->zctx = zctx;
    evbus__dispatch_host_api(&d->api, host_report);
    evbus__regions_host_api(&d->api);
    d->n_targets = cfg->targets.n;
    d->targets = calloc(d->n_targets ? d->n_targets : 1, sizeof *d->targets);
    d->snap = calloc(d->n_targets ? d->n_targets : 1, sizeof *d->snap);
    pthread_mutex_init(&d->snap_lock, NULL);
    d->next_sweep_ms = INT64_MAX;
    /* Before any plugin's init, which may create easy handles; plugins call
     * neither this nor the cleanup (plugin.h). Reference counted by libcurl. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto fail;
    d->curl_inited = true;
    d->batches = evbus__batch_table_new();
    if (!d->snap || !d->batches)
        goto fail;
    d->multi = curl_multi_init();
    if (!d->targets || !d->multi)
        goto fail;
    d->results = zmq_socket(zctx, ZMQ_PUSH);
    d->wake = zmq_socket(zctx, ZMQ_PULL);
    int unlimited = 0;
    if (d->wake)
        zmq_setsockopt(d->wake, ZMQ_RCVHWM, &unlimited, sizeof unlimited);
    if (!d->results || !d->wake || zmq_connect(d->results, results_endpoint) ||
        zmq_bind(d->wake, wake_endpoint)) {
        snprintf(err, errlen, "dispatcher: cannot create its sockets: %s", zmq_strerror(errno));
        rc = EVBUS_EZMQ;
        goto fail;
    }
    if (errlen)
        err[0] = '\0';
    evbus__cfg_errors e;
    evbus__cfg_errors_init(&e, cfg->path, err, errlen);
    for (size_t i = 0; i < d->n_targets; i++) {
        evbus__target *t = &d->targets[i];
        t->index = (uint32_t)i;
        t->cfg = evbus__config_target(cfg, i);
        t->at = cfg->targets.pos[i];
        t->max_in_flight = (unsigned)t->cfg->max_in_flight;
        t->scheduled = evbus__id_index_new();
        if (!t->scheduled)
            goto fail;
        /* Without a plugin, entries wait until one is configured. */
        if (t->cfg->plugin)
            t->lib = open_checked(cfg, i, &e);
    }
    /* Every target's problems are reported before any plugin starts. */
    rc = EVBUS_ECONFIG;
    if (e.count)
        goto fail;
    for (size_t i = 0; i < d->n_targets; i++) {
        evbus__target *t = &d->targets[i];
        if (t->lib && (rc = start_target(d, t, err, errlen)) != EVBUS_OK)
            goto fail;
    }
    if ((rc = evbus__regions_init(d)) != EVBUS_OK || (rc = evbus__replicate_init(d)) != EVBUS_OK ||
        (rc = evbus__regions_start_selector(d, err, errlen)) != EVBUS_OK)
        goto fail;
    evbus__store_foreach_retry(store, load_retry, d);
    *out = d;
    return EVBUS_OK;
fail:
    evbus__dispatch_destroy(&d);
    return rc;
}

evbus_err evbus__dispatch_check(const evbus__config *cfg, char *err, size_t errlen) {
    if (errlen)
        err[0] = '\0';
    evbus__cfg_errors e;
    evbus__cfg_errors_init(&e, cfg->path, err, errlen);
    for (size_t i = 0; i < cfg->targets.n; i++) {
        if (!evbus__config_target(cfg, i)->plugin)
            continue;
        evbus__plugin_lib *lib = open_checked(cfg, i, &e);
        evbus__plugin_close(&lib);
    }
    if (evbus__regions_check_selector(cfg, err, errlen) != EVBUS_OK)
        return EVBUS_ECONFIG;
    return e.count ? EVBUS_ECONFIG : EVBUS_OK;
}

evbus_err evbus__dispatch_start(evbus__dispatch *d) {
    if (pthread_create(&d->thread, NULL, dispatch_main, d) != 0)
        return EVBUS_ENOMEM;
    d->running = true;
    return EVBUS_OK;
}

void evbus__dispatch_stop(evbus__dispatch *d) {
    if (!d || !d->running)
        return;
    atomic_store(&d->stop, 1);
    curl_multi_wakeup(d->multi);
    pthread_join(d->thread, NULL);
    d->running = false;
}

void evbus__dispatch_destroy(evbus__dispatch **dp) {
    if (!dp || !*dp)
        return;
    evbus__dispatch *d = *dp;
    evbus__dispatch_stop(d);
    /* Transfers and batches still out stay pending in the store: they are
     * delivered again after a restart. */
    while (d->transfers) {
        evbus__transfer *tr = d->transfers;
        LIST_UNLINK(d->transfers, tr);
        curl_multi_remove_handle(d->multi, tr->easy);
        free(tr);
    }
    d->closing = true; /* a report from shutdown() is ignored */
    evbus__regions_free(d);
    for (size_t i = 0; i < d->n_targets; i++) {
        evbus__target *t = &d->targets[i];
        /* Shutdown also after a failed init, as the ABI promises. */
        for (size_t j = 0; j < t->n_instances; j++)
            t->lib->desc->shutdown(t->instances[j].state);
        free(t->instances);
        evbus__plugin_close(&t->lib);
        evbus__id_index_destroy(&t->scheduled);
        t->live = false; /* take_wakes below schedules nothing for it */
        free(t->retries);
    }
    if (d->wake)
        take_wakes(d); /* frees result messages the writer sent back */
    flush_dead_notes(d, INT64_MAX);
    while (d->flights) {
        flight *f = d->flights;
        LIST_UNLINK(d->flights, f);
        flight_free(d, f);
    }
    while (d->spare) {
        flight *f = d->spare;
        d->spare = f->next;
        flight_destroy(f);
    }
    evbus__replicate_free(d);
    evbus__batch_table_destroy(&d->batches);
    if (d->multi)
        curl_multi_cleanup(d->multi);
    if (d->curl_inited)
        curl_global_cleanup(); /* after the last shutdown and dlclose */
    if (d->results)
        zmq_close(d->results);
    if (d->wake)
        zmq_close(d->wake);
    free(d->targets);
    free(d->timers);
    free(d->snap);
    pthread_mutex_destroy(&d->snap_lock);
    free(d);
    *dp = NULL;
}
