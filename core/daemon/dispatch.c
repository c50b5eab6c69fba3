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
#include "dispatch_msg.h"
#include "envelope.h"
#include "evbus.pb-c.h"
#include "id_index.h"
#include "plugin_load.h"

/* How often pending entries are scanned even without a wake-up: a safety net
 * for a lost wake message, cheap when nothing is pending. */
#define SCAN_INTERVAL_MS 200

typedef struct retry_entry {
    int64_t due_ms; /* wall clock */
    uint64_t seq;
    uint32_t attempts;
} retry_entry;

typedef struct target_rt target_rt;

struct evbus_host {
    evbus__dispatch *d;
    target_rt *t;
    char prefix[160];
};

struct target_rt {
    uint32_t index;
    const evbus__target_cfg *cfg;
    unsigned line; /* of the target in the configuration */
    evbus__plugin_lib *lib;
    void *state;
    bool live; /* init succeeded */
    struct evbus_host host;
    uint64_t cursor;      /* highest sequence taken from pending so far */
    int64_t linger_since; /* monotonic ms a partial batch started waiting; 0: none */
    unsigned in_flight, max_in_flight;
    size_t batch_max_events, batch_max_bytes;
    retry_entry *retries; /* sorted by due_ms */
    size_t n_retries, retries_cap;
    evbus__id_index *scheduled; /* seqs in `retries`, so scans skip them */
    evbus__target_counters k;   /* k.plugin holds the plugin's own counters */
    uint32_t fault_streak;      /* batches with target faults since the last delivery */
};

/* A batch handed to a plugin, until every event has a result. */
typedef struct flight {
    struct flight *prev, *next; /* the dispatcher's list of batches in flight */
    evbus_batch b;
    target_rt *t;
    size_t n, reported;
    bool in_submit;
    uint64_t *seqs;
    uint32_t *attempts;
    evbus_sink_event *events;
    evbus_result *results;
    uint32_t *retry_after;
    const char **reasons;
    evbus__arena arena;
    ProtobufCAllocator pb_alloc;
    evbus__bytes envelopes;
} flight;

typedef struct timer {
    uint64_t id;
    int64_t due_ms; /* monotonic */
    evbus_timer_fn fn;
    void *arg;
} timer;

typedef struct transfer {
    struct transfer *prev, *next;
    void *easy;
    void (*done)(void *arg, void *easy, int curl_code);
    void *arg;
} transfer;

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
    target_rt *targets;
    size_t n_targets;
    evbus_host_api api;
    timer *timers;
    size_t n_timers, timers_cap;
    uint64_t next_timer_id;
    flight *flights;
    transfer *transfers;
    pthread_t thread;
    bool running;
    atomic_int stop;
    bool scan_due;
    int64_t last_scan_ms;
    /* Copies of the targets' counters for other threads. */
    pthread_mutex_t snap_lock;
    evbus__target_counters *snap;
};

static void publish_counters(evbus__dispatch *d) {
    pthread_mutex_lock(&d->snap_lock);
    for (size_t i = 0; i < d->n_targets; i++) {
        d->snap[i] = d->targets[i].k;
        d->snap[i].in_flight_batches = d->targets[i].in_flight;
    }
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

static const evbus_config_key *find_key(const evbus_plugin *p, const char *name) {
    for (const evbus_config_key *k = p->config_keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

static const evbus__cfg_kv *find_value(const evbus__target_cfg *t, const char *name) {
    for (size_t i = 0; i < t->config.n; i++)
        if (strcmp(t->config.v[i].key, name) == 0)
            return &t->config.v[i];
    return NULL;
}

static int parse_value(evbus_config_type type, const char *s, int64_t *num) {
    char *end;
    uint64_t u;
    switch (type) {
    case EVBUS_CONFIG_STRING: return 0;
    case EVBUS_CONFIG_INT:
        errno = 0;
        *num = strtoll(s, &end, 10);
        return errno || end == s || *end ? -1 : 0;
    case EVBUS_CONFIG_BOOL:
        if (strcmp(s, "true") && strcmp(s, "false"))
            return -1;
        *num = s[0] == 't';
        return 0;
    case EVBUS_CONFIG_SIZE:
        if (evbus__cfg_parse_size(s, &u) || u > INT64_MAX)
            return -1;
        *num = (int64_t)u;
        return 0;
    case EVBUS_CONFIG_DURATION: return evbus__cfg_parse_duration(s, num);
    }
    return -1;
}

static const char *type_name(evbus_config_type type) {
    switch (type) {
    case EVBUS_CONFIG_STRING: return "a string";
    case EVBUS_CONFIG_INT: return "a whole number";
    case EVBUS_CONFIG_BOOL: return "true or false";
    case EVBUS_CONFIG_SIZE: return "a size such as 4096 or 512KiB";
    case EVBUS_CONFIG_DURATION: return "a duration such as 250ms or 30s";
    }
    return "?";
}

/* The target's config: mapping against the keys its plugin declares. */
static int check_plugin_config(const evbus__dispatch *d, const target_rt *t, char *err,
                               size_t errlen) {
    const evbus_plugin *p = t->lib->desc;
    const evbus__target_cfg *tc = t->cfg;
    for (size_t i = 0; i < tc->config.n; i++) {
        const evbus__cfg_kv *kv = &tc->config.v[i];
        const evbus_config_key *k = find_key(p, kv->key);
        if (!k) {
            char known[256] = "";
            size_t used = 0;
            for (const evbus_config_key *q = p->config_keys; q && q->name; q++) {
                int n =
                    snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", q->name);
                if (n > 0 && used + (size_t)n < sizeof known)
                    used += (size_t)n;
            }
            snprintf(err, errlen,
                     "%s:%u:%u: targets[%u].config.%s: unknown key for plugin %s (known: %s)",
                     d->cfg->path, kv->line, kv->column, t->index, kv->key, p->name,
                     used ? known : "none");
            return -1;
        }
        int64_t num;
        if (parse_value(k->type, kv->value, &num)) {
            snprintf(err, errlen, "%s:%u:%u: targets[%u].config.%s: expected %s, got '%s' (%s)",
                     d->cfg->path, kv->line, kv->column, t->index, kv->key, type_name(k->type),
                     kv->value, k->help ? k->help : "");
            return -1;
        }
    }
    for (const evbus_config_key *k = p->config_keys; k && k->name; k++) {
        if (k->required && !find_value(tc, k->name)) {
            snprintf(err, errlen, "%s:%u: targets[%u] (%s): plugin %s needs config key '%s' (%s)",
                     d->cfg->path, t->line, t->index, tc->name, p->name, k->name,
                     k->help ? k->help : "");
            return -1;
        }
    }
    return 0;
}

/* ---- host services ---- */

static void host_log(evbus_host *h, evbus_log_level level, const char *fmt, ...) {
    if ((int)level > (int)evbus__log_threshold)
        return;
    va_list ap;
    va_start(ap, fmt);
    evbus__log_vwrite((evbus__log_level)level, h->prefix, fmt, ap);
    va_end(ap);
}

static int host_log_enabled(evbus_host *h, evbus_log_level level) {
    (void)h;
    return (int)level <= (int)evbus__log_threshold;
}

static const char *lookup(evbus_host *h, const char *key, evbus_config_type want,
                          const evbus_config_key **kout) {
    const evbus_config_key *k = find_key(h->t->lib->desc, key);
    if (!k || k->type != want)
        return NULL;
    *kout = k;
    const evbus__cfg_kv *kv = find_value(h->t->cfg, key);
    return kv ? kv->value : k->default_value;
}

static evbus_err host_config_string(evbus_host *h, const char *key, const char **out) {
    const evbus_config_key *k;
    const char *v = lookup(h, key, EVBUS_CONFIG_STRING, &k);
    if (!v)
        return EVBUS_EINVAL;
    *out = v;
    return EVBUS_OK;
}

static evbus_err host_config_num(evbus_host *h, const char *key, evbus_config_type type,
                                 int64_t *out) {
    const evbus_config_key *k;
    const char *v = lookup(h, key, type, &k);
    return v && parse_value(type, v, out) == 0 ? EVBUS_OK : EVBUS_EINVAL;
}

static evbus_err host_config_int(evbus_host *h, const char *key, int64_t *out) {
    return host_config_num(h, key, EVBUS_CONFIG_INT, out);
}

static evbus_err host_config_bool(evbus_host *h, const char *key, int *out) {
    int64_t v;
    evbus_err rc = host_config_num(h, key, EVBUS_CONFIG_BOOL, &v);
    if (rc == EVBUS_OK)
        *out = (int)v;
    return rc;
}

static evbus_err host_config_number(evbus_host *h, const char *key, uint64_t *out) {
    int64_t v;
    evbus_err rc = host_config_num(h, key, EVBUS_CONFIG_SIZE, &v);
    if (rc != EVBUS_OK)
        rc = host_config_num(h, key, EVBUS_CONFIG_DURATION, &v);
    if (rc == EVBUS_OK)
        *out = (uint64_t)v;
    return rc;
}

static int64_t host_now_ms(evbus_host *h) {
    (void)h;
    return evbus__now_mono_ms();
}

static uint64_t host_timer_add(evbus_host *h, int64_t delay_ms, evbus_timer_fn fn, void *arg) {
    evbus__dispatch *d = h->d;
    if (d->n_timers == d->timers_cap) {
        size_t cap = d->timers_cap ? d->timers_cap * 2 : 16;
        timer *nt = realloc(d->timers, cap * sizeof *nt);
        if (!nt)
            return 0;
        d->timers = nt;
        d->timers_cap = cap;
    }
    timer *t = &d->timers[d->n_timers++];
    t->id = ++d->next_timer_id;
    t->due_ms = evbus__now_mono_ms() + (delay_ms > 0 ? delay_ms : 0);
    t->fn = fn;
    t->arg = arg;
    return t->id;
}

static void host_timer_cancel(evbus_host *h, uint64_t id) {
    evbus__dispatch *d = h->d;
    for (size_t i = 0; i < d->n_timers; i++) {
        if (d->timers[i].id == id) {
            d->timers[i] = d->timers[--d->n_timers];
            return;
        }
    }
}

static void finish_flight(evbus__dispatch *d, flight *f);

static void host_report(evbus_host *h, const evbus_batch *b, size_t index, evbus_result result,
                        uint32_t retry_after_ms, const char *reason) {
    flight *f = b->host_private;
    if (!f || f->t != h->t || index >= f->n || f->results[index] != 0 ||
        result < EVBUS_RESULT_DELIVERED || result > EVBUS_RESULT_TARGET_FAULT) {
        host_log(h, EVBUS_LOG_LEVEL_ERROR,
                 "plugin reported an invalid result (event %zu, result %d): ignored", index,
                 (int)result);
        return;
    }
    f->results[index] = result;
    f->retry_after[index] = retry_after_ms;
    f->reasons[index] =
        reason && *reason ? evbus__arena_strdup(&f->arena, reason, strnlen(reason, 1024)) : NULL;
    if (++f->reported == f->n && !f->in_submit)
        finish_flight(h->d, f);
}

static evbus_err host_http_start(evbus_host *h, void *easy,
                                 void (*done)(void *arg, void *easy, int curl_code), void *arg) {
    if (!easy || !done)
        return EVBUS_EINVAL;
    transfer *tr = malloc(sizeof *tr);
    if (!tr)
        return EVBUS_ENOMEM;
    tr->easy = easy;
    tr->done = done;
    tr->arg = arg;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, tr);
    if (curl_multi_add_handle(h->d->multi, easy) != CURLM_OK) {
        free(tr);
        return EVBUS_EINVAL;
    }
    LIST_PUSH(h->d->transfers, tr);
    return EVBUS_OK;
}

/* Names become part of a Prometheus metric name: [a-z0-9_] only. */
static bool counter_name_ok(const char *name) {
    if (!*name || strlen(name) >= sizeof((evbus__plugin_counter *)0)->name)
        return false;
    for (; *name; name++)
        if (!((*name >= 'a' && *name <= 'z') || (*name >= '0' && *name <= '9') || *name == '_'))
            return false;
    return true;
}

static void host_counter_add(evbus_host *h, const char *name, uint64_t delta) {
    if (!name || !counter_name_ok(name)) {
        host_log(h, EVBUS_LOG_LEVEL_WARN, "counter name '%s' is not [a-z0-9_]+: ignored",
                 name ? name : "(null)");
        return;
    }
    evbus__plugin_counter *c = h->t->k.plugin;
    for (int i = 0; i < EVBUS__PLUGIN_COUNTERS; i++) {
        if (!c[i].name[0])
            snprintf(c[i].name, sizeof c[i].name, "%s", name);
        if (strcmp(c[i].name, name) == 0) {
            c[i].value += delta;
            return;
        }
    }
}

/* ---- batches ---- */

static void *arena_alloc(void *data, size_t size) {
    return evbus__arena_alloc(data, size);
}

static void arena_free(void *data, void *ptr) {
    (void)data;
    (void)ptr;
}

static void flight_free(flight *f) {
    evbus__arena_destroy(&f->arena);
    free(f->envelopes.data);
    free(f);
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

static void schedule_retry(target_rt *t, uint64_t seq, uint32_t attempts, int64_t due_ms) {
    if (t->n_retries == t->retries_cap) {
        size_t cap = t->retries_cap ? t->retries_cap * 2 : 64;
        retry_entry *nr = realloc(t->retries, cap * sizeof *nr);
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
    t->retries[i] = (retry_entry){due_ms, seq, attempts};
    t->n_retries++;
    evbus__id_index_put(t->scheduled, evbus__id_hash(&seq, sizeof seq), seq);
}

static bool is_scheduled(const target_rt *t, uint64_t seq) {
    size_t cursor = 0;
    uint64_t cand;
    uint64_t h = evbus__id_hash(&seq, sizeof seq);
    while (evbus__id_index_next(t->scheduled, h, &cursor, &cand))
        if (cand == seq)
            return true;
    return false;
}

/* Turns a finished batch into durable results for the writer and retries. */
static void finish_flight(evbus__dispatch *d, flight *f) {
    target_rt *t = f->t;
    int64_t now = evbus__now_wall_ms();
    evbus__result_msg *m = evbus__result_msg_new(f->n);
    if (m)
        m->target = t->index;
    bool faulted = false;
    for (size_t i = 0; i < f->n; i++) {
        evbus__store_result r = {.target = t->index, .seq = f->seqs[i], .attempts = f->attempts[i]};
        const char *reason = f->reasons[i] ? f->reasons[i] : "";
        char why[1100];
        switch (f->results[i]) {
        case EVBUS_RESULT_DELIVERED:
            r.outcome = EVBUS__DELIVERED;
            t->k.delivered++;
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
            t->k.retried++;
            t->k.target_faults++;
            snprintf(t->k.target_fault, sizeof t->k.target_fault, "%s",
                     *reason ? reason : "target fault");
            schedule_retry(t, f->seqs[i], r.attempts, r.due_ms);
            faulted = true;
            break;
        case EVBUS_RESULT_FAILED:
            r.outcome = EVBUS__DEAD;
            r.due_ms = now;
            t->k.dead++;
            break;
        default:
            if (f->attempts[i] >= t->cfg->retry_max_attempts) {
                snprintf(why, sizeof why, "gave up after %u attempts: %s", f->attempts[i],
                         *reason ? reason : "retryable failure");
                reason = why;
                r.outcome = EVBUS__DEAD;
                r.due_ms = now;
                t->k.dead++;
            } else {
                int64_t delay = f->retry_after[i] ? (int64_t)f->retry_after[i]
                                                  : backoff_ms(t->cfg, f->attempts[i]);
                r.outcome = EVBUS__RETRY;
                r.due_ms = now + delay;
                t->k.retried++;
                schedule_retry(t, f->seqs[i], f->attempts[i], r.due_ms);
            }
        }
        if (m)
            evbus__result_msg_add(m, &r, reason);
    }
    if (faulted && t->fault_streak < 32)
        t->fault_streak++;
    if (m)
        evbus__result_msg_seal(m);
    if (!m || zmq_send(d->results, &m, sizeof m, 0) != (int)sizeof m) {
        /* The entries stay pending and are delivered again after a restart. */
        EVBUS_LOG_E("dispatch", "cannot hand results to the writer: %s",
                    m ? zmq_strerror(errno) : "out of memory");
        evbus__result_msg_free(m);
        t->in_flight--;
    }
    /* Otherwise the batch stays counted in flight until the writer has made
     * its results durable (see dispatch_msg.h). */
    t->k.in_flight_events -= f->n;
    LIST_UNLINK(d->flights, f);
    flight_free(f);
}

typedef struct reading {
    flight *f;
    bool *found;
} reading;

static void on_record(void *arg, size_t i, const void *record, size_t len) {
    reading *rd = arg;
    flight *f = rd->f;
    Evbus__V1__Event *ev = evbus__v1__event__unpack(&f->pb_alloc, len, record);
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
    rd->found[i] = true;
}

/* Builds and submits one batch of `n` sequences. */
static void submit_batch(evbus__dispatch *d, target_rt *t, const uint64_t *seqs,
                         const uint32_t *attempts, size_t n) {
    flight *f = calloc(1, sizeof *f);
    if (!f)
        return;
    evbus__arena_init(&f->arena, 64 * 1024);
    f->pb_alloc = (ProtobufCAllocator){arena_alloc, arena_free, &f->arena};
    f->t = t;
    f->n = n;
    f->seqs = evbus__arena_alloc(&f->arena, n * sizeof *f->seqs);
    f->attempts = evbus__arena_alloc(&f->arena, n * sizeof *f->attempts);
    f->events = evbus__arena_alloc(&f->arena, n * sizeof *f->events);
    f->results = evbus__arena_alloc(&f->arena, n * sizeof *f->results);
    f->retry_after = evbus__arena_alloc(&f->arena, n * sizeof *f->retry_after);
    f->reasons = evbus__arena_alloc(&f->arena, n * sizeof *f->reasons);
    bool *found = evbus__arena_alloc(&f->arena, n * sizeof *found);
    if (!f->seqs || !f->attempts || !f->events || !f->results || !f->retry_after || !f->reasons ||
        !found) {
        flight_free(f);
        return;
    }
    memcpy(f->seqs, seqs, n * sizeof *seqs);
    memcpy(f->attempts, attempts, n * sizeof *attempts);
    memset(f->events, 0, n * sizeof *f->events);
    memset(f->results, 0, n * sizeof *f->results);
    memset(found, 0, n * sizeof *found);
    reading rd = {f, found};
    evbus__store_read_events(d->store, seqs, n, on_record, &rd);
    for (size_t i = 0; i < n; i++)
        if (found[i])
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
            schedule_retry(t, seqs[i], attempts[i] - 1, now);
        n = keep;
        f->n = keep;
    }
    f->b.target = t->cfg->name;
    f->b.region = d->cfg->region;
    f->b.events = f->events;
    f->b.n_events = n;
    f->b.host_private = f;
    LIST_PUSH(d->flights, f);
    t->in_flight++;
    t->k.batches++;
    t->k.in_flight_events += n;
    /* An event whose record is gone cannot be delivered by anyone. */
    for (size_t i = 0; i < n; i++) {
        if (!found[i]) {
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
    evbus_err rc = t->lib->desc->submit(t->state, &f->b);
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

typedef struct scan {
    target_rt *t;
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

/* Submits batches to one target while it has room: due retries first, then
 * entries that became pending since the last scan. */
static void dispatch_target(evbus__dispatch *d, target_rt *t, int64_t now_wall, bool scan_fresh) {
    size_t max = t->batch_max_events;
    uint64_t seqs[1024];
    uint32_t attempts[1024];
    if (max > 1024)
        max = 1024;
    while (t->in_flight < t->max_in_flight) {
        size_t n = 0;
        while (n < max && t->n_retries > 0 && t->retries[0].due_ms <= now_wall) {
            retry_entry r = t->retries[0];
            memmove(t->retries, t->retries + 1, (t->n_retries - 1) * sizeof *t->retries);
            t->n_retries--;
            seqs[n] = r.seq;
            attempts[n++] = r.attempts + 1;
        }
        size_t retried = n;
        uint64_t cursor_before = t->cursor;
        if (n < max && scan_fresh) {
            /* The retries just taken stay marked scheduled during the scan:
             * after a restart the cursor is behind them, and the scan would
             * put them into this batch a second time. */
            scan s = {t, seqs + n, 0, max - n};
            evbus__store_foreach_pending(d->store, t->index, t->cursor, on_pending, &s);
            for (size_t i = 0; i < s.n; i++)
                attempts[n + i] = 1;
            if (s.n < max - n)
                scan_fresh = false; /* caught up */
            n += s.n;
        }
        for (size_t i = 0; i < retried; i++)
            evbus__id_index_del(t->scheduled, evbus__id_hash(&seqs[i], sizeof seqs[i]), seqs[i]);
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
        submit_batch(d, t, seqs, attempts, n);
    }
}

/* ---- the thread ---- */

static void run_timers(evbus__dispatch *d) {
    int64_t now = evbus__now_mono_ms();
    for (size_t i = 0; i < d->n_timers;) {
        if (d->timers[i].due_ms <= now) {
            timer t = d->timers[i];
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
        transfer *tr = NULL;
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
        const target_rt *t = &d->targets[i];
        if (t->live && t->n_retries && t->in_flight < t->max_in_flight &&
            t->retries[0].due_ms - wall < wait)
            wait = t->retries[0].due_ms - wall;
        if (t->live && t->linger_since && t->linger_since + t->cfg->batch_linger_ms - now < wait)
            wait = t->linger_since + t->cfg->batch_linger_ms - now;
    }
    return wait < 0 ? 0 : wait;
}

/* The writer's messages: an empty one after a commit added pending entries,
 * or a result message coming back once its results are durable. */
static void take_wakes(evbus__dispatch *d) {
    evbus__result_msg *m;
    int n;
    while ((n = zmq_recv(d->wake, &m, sizeof m, ZMQ_DONTWAIT)) >= 0) {
        if (n == (int)sizeof m) {
            if (m->target < d->n_targets)
                d->targets[m->target].in_flight--;
            /* Replayed dead letters are pending again, below the targets'
             * scan cursors: deliver them as retries due now. */
            for (size_t i = 0; i < m->n; i++) {
                const evbus__store_result *r = &m->v[i];
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
        for (size_t i = 0; i < d->n_targets; i++)
            if (d->targets[i].live)
                dispatch_target(d, &d->targets[i], wall, fresh);
        publish_counters(d);
    }
    return NULL;
}

/* ---- life cycle ---- */

static int load_retry(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t due_ms) {
    evbus__dispatch *d = arg;
    if (target < d->n_targets && d->targets[target].live)
        schedule_retry(&d->targets[target], seq, attempts, due_ms);
    return 0;
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
    d->api = (evbus_host_api){
        .size = sizeof(evbus_host_api),
        .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
        .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
        .log = host_log,
        .log_enabled = host_log_enabled,
        .config_string = host_config_string,
        .config_int = host_config_int,
        .config_bool = host_config_bool,
        .config_number = host_config_number,
        .now_ms = host_now_ms,
        .timer_add = host_timer_add,
        .timer_cancel = host_timer_cancel,
        .report = host_report,
        .http_start = host_http_start,
        .counter_add = host_counter_add,
    };
    d->n_targets = cfg->targets.n;
    d->targets = calloc(d->n_targets ? d->n_targets : 1, sizeof *d->targets);
    d->snap = calloc(d->n_targets ? d->n_targets : 1, sizeof *d->snap);
    pthread_mutex_init(&d->snap_lock, NULL);
    if (!d->snap)
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
    rc = EVBUS_ECONFIG;
    for (size_t i = 0; i < d->n_targets; i++) {
        target_rt *t = &d->targets[i];
        t->index = (uint32_t)i;
        t->cfg = evbus__config_target(cfg, i);
        t->line = cfg->targets.lines[i];
        t->host.d = d;
        t->host.t = t;
        t->max_in_flight = (unsigned)t->cfg->max_in_flight;
        t->scheduled = evbus__id_index_new();
        if (!t->scheduled) {
            rc = EVBUS_ENOMEM;
            goto fail;
        }
        if (!t->cfg->plugin)
            continue; /* entries wait until a plugin is configured */
        char why[1024];
        if (evbus__plugin_open(t->cfg->plugin, &t->lib, why, sizeof why) != EVBUS_OK) {
            snprintf(err, errlen, "%s:%u: targets[%zu] (%s): %s", cfg->path, t->line, i,
                     t->cfg->name, why);
            goto fail;
        }
        if (check_plugin_config(d, t, err, errlen))
            goto fail;
        const evbus_plugin *p = t->lib->desc;
        snprintf(t->host.prefix, sizeof t->host.prefix, "sink:%s:%s", p->name, t->cfg->name);
        t->batch_max_events = p->max_batch_events;
        if (t->cfg->batch_max_events && t->cfg->batch_max_events < t->batch_max_events)
            t->batch_max_events = t->cfg->batch_max_events;
        t->batch_max_bytes = p->max_batch_bytes;
        if (t->cfg->batch_max_bytes &&
            (!t->batch_max_bytes || t->cfg->batch_max_bytes < t->batch_max_bytes))
            t->batch_max_bytes = t->cfg->batch_max_bytes;
        if (p->init(&d->api, &t->host, &t->state) != EVBUS_OK) {
            snprintf(err, errlen,
                     "%s:%u: targets[%zu] (%s): plugin %s failed to start (its log says why)",
                     cfg->path, t->line, i, t->cfg->name, p->name);
            goto fail;
        }
        t->live = true;
    }
    evbus__store_foreach_retry(store, load_retry, d);
    *out = d;
    return EVBUS_OK;
fail:
    evbus__dispatch_destroy(&d);
    return rc;
}

evbus_err evbus__dispatch_check(const evbus__config *cfg, char *err, size_t errlen) {
    evbus__dispatch d = {.cfg = cfg};
    for (size_t i = 0; i < cfg->targets.n; i++) {
        target_rt t = {.index = (uint32_t)i,
                       .cfg = evbus__config_target(cfg, i),
                       .line = cfg->targets.lines[i]};
        if (!t.cfg->plugin)
            continue;
        char why[1024];
        if (evbus__plugin_open(t.cfg->plugin, &t.lib, why, sizeof why) != EVBUS_OK) {
            snprintf(err, errlen, "%s:%u: targets[%zu] (%s): %s", cfg->path, t.line, i, t.cfg->name,
                     why);
            return EVBUS_ECONFIG;
        }
        int bad = check_plugin_config(&d, &t, err, errlen);
        evbus__plugin_close(&t.lib);
        if (bad)
            return EVBUS_ECONFIG;
    }
    return EVBUS_OK;
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
        transfer *tr = d->transfers;
        LIST_UNLINK(d->transfers, tr);
        curl_multi_remove_handle(d->multi, tr->easy);
        free(tr);
    }
    for (size_t i = 0; i < d->n_targets; i++) {
        target_rt *t = &d->targets[i];
        /* Shutdown also after a failed init, as the ABI promises. */
        if (t->lib) {
            t->lib->desc->shutdown(t->state);
            evbus__plugin_close(&t->lib);
        }
        evbus__id_index_destroy(&t->scheduled);
        free(t->retries);
    }
    if (d->wake)
        take_wakes(d); /* frees result messages the writer sent back */
    while (d->flights) {
        flight *f = d->flights;
        LIST_UNLINK(d->flights, f);
        flight_free(f);
    }
    if (d->multi)
        curl_multi_cleanup(d->multi);
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
