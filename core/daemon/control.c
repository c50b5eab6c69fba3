#include "control.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "auth.h"
#include "common/json_check.h"
#include "common/log.h"
#include "common/util.h"
#include "control_regions.h"
#include "dispatch_msg.h"
#include "endpoint.h"
#include "envelope.h"
#include "evbus.pb-c.h"
#include "evbus/plugin.h"
#include "http_ingest.h"

/* Largest control request (they are small JSON objects): read up to 64 KiB; up to twice that
 * (ZMQ_MAXMSGSIZE) they are answered "request too large"; a longer one makes ZeroMQ drop the
 * connection before reading it, and the client gets no answer (a REQ client
 * must time out, as `evbus` does). */
#define REQUEST_MAX (64 * 1024)

/* Every command, for messages that must name them all. */
#define COMMANDS                                                                                   \
    "status, dlq, dlq-show, dlq-replay, dlq-drop, replay, region-status, region-on, region-off, "  \
    "region-fence, region-unfence, region-failover, region-failback"

struct evbus__control {
    const evbus__config *cfg;
    evbus__store *store;
    evbus__ingest *ingest;
    evbus__dispatch *dispatch;
    evbus__auth *auth;
    /* Set from the main thread once, while this one may be reading it. */
    _Atomic(const struct evbus__http_counters *) http;
    void *sock;
    void *results; /* PUSH to the writer, for dead-letter replays and drops */
    evbus__control_regions *regions;
    pthread_t thread;
    bool running;
    atomic_int stop;
};

/* Policy replicate: per region, the pending entries it still owes. */
static json_t *owed_by_region(evbus__store *store, uint32_t target, const evbus__target_cfg *t) {
    size_t n = t->n_delivery_regions < 32 ? t->n_delivery_regions : 32;
    uint64_t counts[32];
    uint32_t all = n == 32 ? UINT32_MAX : (1u << n) - 1;
    json_t *owed = json_object();
    if (evbus__store_owed_counts(store, target, all, counts, n) == EVBUS_OK)
        for (size_t j = 0; j < n; j++)
            json_object_set_new(owed, t->delivery_regions[j].name,
                                json_integer((json_int_t)counts[j]));
    return owed;
}

json_t *evbus__control_status(evbus__control *c) {
    evbus__ingest_counters k;
    evbus__ingest_counters_get(c->ingest, &k);
    evbus__store_stats st;
    evbus__store_stats_get(c->store, &st);
    int64_t now = evbus__now_wall_ms();
    json_t *targets = json_array();
    for (size_t i = 0; i < c->cfg->targets.n; i++) {
        const evbus__target_cfg *t = evbus__config_target(c->cfg, i);
        evbus__target_counters tk = {0};
        evbus__dispatch_counters(c->dispatch, (uint32_t)i, &tk);
        uint64_t pending = 0;
        int64_t oldest = 0;
        evbus__store_target_backlog(c->store, (uint32_t)i, &pending, &oldest);
        const char *plugin = evbus__dispatch_plugin_name(c->dispatch, (uint32_t)i);
        /* The region it delivers to now, and every region it has, in order
         * of preference. */
        json_t *regions = json_array();
        for (size_t j = 0; j < t->n_delivery_regions; j++)
            json_array_append_new(regions, json_string(t->delivery_regions[j].name));
        const char *region =
            tk.region < t->n_delivery_regions ? t->delivery_regions[tk.region].name : NULL;
        /* A target with several regions says in which one the fault was;
         * once traffic has left that region, the fault is no longer the
         * target's now but that region's: previous_region_fault. */
        char fault[sizeof tk.target_fault + 80];
        snprintf(fault, sizeof fault, "%s", tk.target_fault);
        if (tk.target_fault[0] && t->n_delivery_regions > 1 &&
            tk.fault_region < t->n_delivery_regions)
            snprintf(fault, sizeof fault, "%.63s: %s", t->delivery_regions[tk.fault_region].name,
                     tk.target_fault);
        json_t *pc = json_object();
        for (int j = 0; j < EVBUS__PLUGIN_COUNTERS && tk.plugin[j].name[0]; j++)
            json_object_set_new(pc, tk.plugin[j].name,
                                json_integer((json_int_t)tk.plugin[j].value));
        json_t *entry = json_pack(
            "{s:s, s:s?, s:s?, s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:b, s:o, "
            "s:I, s:o?}",
            "name", t->name, "plugin", plugin, "region", region, "regions", regions, "pending",
            (json_int_t)pending, "in_flight", (json_int_t)tk.in_flight_events, "in_flight_batches",
            (json_int_t)tk.in_flight_batches, "delivered", (json_int_t)tk.delivered, "retried",
            (json_int_t)tk.retried, "dead_lettered", (json_int_t)tk.dead, "oldest_pending_age_ms",
            (json_int_t)(oldest ? now - oldest : 0), "max_pending", (json_int_t)t->max_pending,
            "refusing_events", t->max_pending && pending >= t->max_pending, "plugin_counters", pc,
            "target_faults", (json_int_t)tk.target_faults, "target_fault",
            fault[0] && !tk.fault_left ? evbus__control_text(fault) : NULL);
        if (entry && fault[0] && tk.fault_left)
            json_object_set_new(entry, "previous_region_fault", evbus__control_text(fault));
        /* Where the region selector sends it now, and why; for a target
         * without regions:, only while a routing control holds it. */
        if (entry && tk.route[0]) {
            json_object_set_new(entry, "route", json_string(tk.route));
            json_object_set_new(entry, "route_why", evbus__control_text(tk.route_why));
            json_object_set_new(entry, "held", json_boolean(tk.held));
            if (tk.app_state[0])
                json_object_set_new(entry, "app_state", json_string(tk.app_state));
        }
        if (entry && t->policy == EVBUS_POLICY_REPLICATE - 1)
            json_object_set_new(entry, "owed", owed_by_region(c->store, (uint32_t)i, t));
        json_array_append_new(targets, entry);
    }
    json_t *status = json_pack(
        "{s:b, s:s, s:s, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:{s:I, s:I, s:I, s:I, "
        "s:I, s:I, s:I}, s:o}",
        "ok", 1, "region", c->cfg->region, "version", EVBUS_VERSION, "ingest", "requests",
        (json_int_t)k.requests, "accepted", (json_int_t)k.accepted, "duplicates",
        (json_int_t)k.duplicates, "rejected", (json_int_t)k.rejected, "retry_later",
        (json_int_t)k.retry_later, "bad_frames", (json_int_t)k.bad_frames, "unmatched",
        (json_int_t)k.unmatched, "commits", (json_int_t)k.commits, "store", "events",
        (json_int_t)st.events, "pending", (json_int_t)st.pending, "ids", (json_int_t)st.ids,
        "map_size", (json_int_t)st.map_size, "map_used", (json_int_t)st.map_used,
        "ids_forgotten_early", (json_int_t)st.ids_forgotten_early, "dedup_window_effective_ms",
        (json_int_t)st.dedup_window_ms, "targets", targets);
    if (status && c->auth)
        json_object_set_new(status, "auth", evbus__auth_status(c->auth));
    const evbus__http_counters *http = atomic_load(&c->http);
    if (status && http)
        json_object_set_new(status, "http", evbus__http_counters_status(http));
    if (status && c->regions)
        json_object_set_new(status, "regions", evbus__control_regions_status(c->regions));
    return status;
}

void evbus__control_set_http(evbus__control *c, const evbus__http_counters *counters) {
    atomic_store(&c->http, counters);
}

json_t *evbus__control_text(const char *s) {
    size_t len = strlen(s);
    if (evbus__utf8_valid(s, len))
        return json_stringn(s, len);
    char *copy = malloc(len * 3 + 1), *o = copy;
    if (!copy)
        return json_string("");
    for (size_t i = 0; i < len;) {
        size_t n = 1;
        while (n <= 4 && i + n <= len && !evbus__utf8_valid(s + i, n))
            n++;
        if (n <= 4 && i + n <= len) {
            memcpy(o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
            i++;
        }
    }
    json_t *j = json_stringn(copy, (size_t)(o - copy));
    free(copy);
    return j;
}

typedef struct dlq_walk {
    evbus__control *c;
    json_t *entries;
    size_t limit;
    uint64_t *seqs;
    size_t n;
} dlq_walk;

static int on_dead(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t when,
                   const char *reason) {
    dlq_walk *w = arg;
    if (json_array_size(w->entries) >= w->limit)
        return 1;
    const char *tname =
        target < w->c->cfg->targets.n ? evbus__config_target(w->c->cfg, target)->name : "?";
    char at[21];
    evbus__format_time(when, at);
    json_array_append_new(w->entries,
                          json_pack("{s:s, s:I, s:i, s:s, s:o}", "target", tname, "sequence",
                                    (json_int_t)seq, "attempts", (int)attempts, "dead_at", at,
                                    "reason", evbus__control_text(reason)));
    w->seqs[w->n++] = seq;
    return 0;
}

static void add_event_ids(void *arg, size_t i, const void *record, size_t len) {
    json_t *entries = arg;
    Evbus__V1__Event *ev = evbus__v1__event__unpack(NULL, len, record);
    if (!ev)
        return;
    json_t *e = json_array_get(entries, i);
    json_object_set_new(e, "id", json_string(ev->id));
    json_object_set_new(e, "source", json_string(ev->source));
    json_object_set_new(e, "detail_type", json_string(ev->detail_type));
    evbus__v1__event__free_unpacked(ev, NULL);
}

static json_t *cmd_dlq(evbus__control *c, json_t *req) {
    const char *target = json_string_value(json_object_get(req, "target"));
    json_int_t limit = json_integer_value(json_object_get(req, "limit"));
    uint32_t t = UINT32_MAX;
    if (target) {
        long idx = evbus__config_target_index(c->cfg, target);
        if (idx < 0)
            return json_pack("{s:b, s:s}", "ok", 0, "error", "no such target");
        t = (uint32_t)idx;
    }
    dlq_walk w = {c, json_array(), limit > 0 && limit < 10000 ? (size_t)limit : 1000, NULL, 0};
    w.seqs = calloc(w.limit, sizeof *w.seqs);
    if (!w.seqs) {
        json_decref(w.entries);
        return json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
    }
    evbus__store_foreach_dead(c->store, t, on_dead, &w);
    evbus__store_read_events(c->store, w.seqs, w.n, add_event_ids, w.entries);
    free(w.seqs);
    return json_pack("{s:b, s:o}", "ok", 1, "dead_letters", w.entries);
}

typedef struct requeue_walk {
    evbus__result_msg *m;
    evbus__delivery outcome;
    int64_t now;
    uint32_t target; /* replay: the target to deliver to */
} requeue_walk;

static int on_dead_requeue(void *arg, uint32_t target, uint64_t seq, uint32_t attempts,
                           int64_t when, const char *reason) {
    (void)attempts;
    (void)when;
    (void)reason;
    requeue_walk *w = arg;
    if (w->m->n == w->m->cap)
        return 1;
    evbus__store_result r = {.target = target, .seq = seq, .outcome = w->outcome, .due_ms = w->now};
    evbus__result_msg_add(w->m, &r, "");
    return 0;
}

/* Replays (dead letters made pending again, delivered from the first
 * attempt) or drops a target's dead letters. The writer applies the change
 * in its next commit, like delivery results; the answer says how many. */
static json_t *cmd_dlq_change(evbus__control *c, json_t *req, evbus__delivery outcome) {
    const char *target = json_string_value(json_object_get(req, "target"));
    long idx = target ? evbus__config_target_index(c->cfg, target) : -1;
    if (idx < 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error",
                         target ? "no such target" : "name the target (-t TARGET)");
    requeue_walk w = {evbus__result_msg_new(100000), outcome, evbus__now_wall_ms(), 0};
    if (!w.m)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
    w.m->target = EVBUS__MSG_NO_BATCH;
    evbus__store_foreach_dead(c->store, (uint32_t)idx, on_dead_requeue, &w);
    size_t n = w.m->n;
    evbus__result_msg_seal(w.m);
    if (n && zmq_send(c->results, &w.m, sizeof w.m, 0) != (int)sizeof w.m) {
        evbus__result_msg_free(w.m);
        return json_pack("{s:b, s:s}", "ok", 0, "error", "cannot reach the writer");
    }
    if (!n)
        evbus__result_msg_free(w.m);
    return json_pack("{s:b, s:I}", "ok", 1, outcome == EVBUS__REQUEUE ? "replayed" : "dropped",
                     (json_int_t)n);
}

static int on_since(void *arg, uint64_t seq) {
    requeue_walk *w = arg;
    if (w->m->n == w->m->cap)
        return 1;
    evbus__store_result r = {
        .target = w->target, .seq = seq, .outcome = EVBUS__REPLAY, .due_ms = w->now};
    evbus__result_msg_add(w->m, &r, "");
    return 0;
}

/* Delivers stored events accepted since a time to a target again (they must
 * still be stored: see storage.retention). */
static json_t *cmd_replay(evbus__control *c, json_t *req) {
    const char *target = json_string_value(json_object_get(req, "target"));
    long idx = target ? evbus__config_target_index(c->cfg, target) : -1;
    if (idx < 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error",
                         target ? "no such target" : "name the target (--target TARGET)");
    requeue_walk w = {evbus__result_msg_new(100000), EVBUS__REPLAY, evbus__now_wall_ms(),
                      (uint32_t)idx};
    if (!w.m)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "out of memory");
    w.m->target = EVBUS__MSG_NO_BATCH;
    evbus__store_foreach_since(
        c->store, (int64_t)json_integer_value(json_object_get(req, "since_ms")), on_since, &w);
    size_t n = w.m->n;
    bool more = n == w.m->cap;
    evbus__result_msg_seal(w.m);
    if (n && zmq_send(c->results, &w.m, sizeof w.m, 0) != (int)sizeof w.m) {
        evbus__result_msg_free(w.m);
        return json_pack("{s:b, s:s}", "ok", 0, "error", "cannot reach the writer");
    }
    if (!n)
        evbus__result_msg_free(w.m);
    return json_pack("{s:b, s:I, s:b}", "ok", 1, "replayed", (json_int_t)n, "more", more);
}

typedef struct show_walk {
    uint64_t seq;
    json_t *found;
} show_walk;

static int on_dead_show(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t when,
                        const char *reason) {
    (void)target;
    show_walk *w = arg;
    if (seq != w->seq)
        return 0;
    char at[21];
    evbus__format_time(when, at);
    w->found = json_pack("{s:I, s:i, s:s, s:o}", "sequence", (json_int_t)seq, "attempts",
                         (int)attempts, "dead_at", at, "reason", evbus__control_text(reason));
    return 1;
}

static void add_envelope(void *arg, size_t i, const void *record, size_t len) {
    (void)i;
    json_t *entry = arg;
    Evbus__V1__Event *ev = evbus__v1__event__unpack(NULL, len, record);
    if (!ev) {
        json_object_set_new(entry, "event_error", json_string("the stored record cannot be read"));
        return;
    }
    evbus__bytes env = {0};
    json_error_t jerr;
    /* A detail may hold an escaped NUL (legal JSON): without JSON_ALLOW_NUL
     * the event would silently be left out. Some legal JSON jansson cannot
     * hold at all (\u0000 inside a key, a number beyond a double such as
     * 1e400): then the envelope goes out as its text, under event_json, and
     * event_json_why says why it is not an object. */
    if (evbus__envelope_json(ev, &env) != 0) {
        json_object_set_new(entry, "event_error", json_string("out of memory"));
    } else {
        json_t *event = json_loadb((const char *)env.data, env.len, JSON_ALLOW_NUL, &jerr);
        if (event) {
            json_object_set_new(entry, "event", event);
        } else {
            json_object_set_new(entry, "event_json", json_stringn((const char *)env.data, env.len));
            json_object_set_new(entry, "event_json_why", json_string(jerr.text));
        }
    }
    free(env.data);
    evbus__v1__event__free_unpacked(ev, NULL);
}

/* One dead letter in full: why it died and the event itself. */
static json_t *cmd_dlq_show(evbus__control *c, json_t *req) {
    const char *target = json_string_value(json_object_get(req, "target"));
    long idx = target ? evbus__config_target_index(c->cfg, target) : -1;
    json_int_t seq = json_integer_value(json_object_get(req, "sequence"));
    if (idx < 0 || seq <= 0)
        return json_pack("{s:b, s:s}", "ok", 0, "error",
                         "name the target and the sequence (-t TARGET --seq N)");
    show_walk w = {(uint64_t)seq, NULL};
    evbus__store_foreach_dead(c->store, (uint32_t)idx, on_dead_show, &w);
    if (!w.found)
        return json_pack("{s:b, s:s}", "ok", 0, "error", "no such dead letter");
    uint64_t s = (uint64_t)seq;
    evbus__store_read_events(c->store, &s, 1, add_envelope, w.found);
    return json_pack("{s:b, s:o}", "ok", 1, "dead_letter", w.found);
}

/* Commands that change what evbusd stores or delivers. */
static bool changes_state(const char *cmd) {
    return strcmp(cmd, "dlq-replay") == 0 || strcmp(cmd, "dlq-drop") == 0 ||
           strcmp(cmd, "replay") == 0 || evbus__control_regions_changes_state(cmd);
}

static json_t *handle(evbus__control *c, const char *text, size_t len, bool may_operate,
                      const char *who) {
    json_error_t jerr;
    json_t *req = json_loadb(text, len, 0, &jerr);
    const char *cmd = req ? json_string_value(json_object_get(req, "cmd")) : NULL;
    json_t *answer;
    if (cmd && changes_state(cmd) && !may_operate)
        answer = json_pack(
            "{s:b, s:s}", "ok", 0, "error",
            "this command changes state: it is allowed only on the ipc:// control socket to "
            "evbusd's own user, or over tcp:// with CURVE to an operator listed in "
            "control.curve.operator_keys");
    else if (!cmd)
        answer = json_pack("{s:b, s:s}", "ok", 0, "error",
                           "expected a JSON object with a \"cmd\" (" COMMANDS ")");
    else if (strcmp(cmd, "status") == 0)
        answer = evbus__control_status(c);
    else if (strcmp(cmd, "dlq") == 0)
        answer = cmd_dlq(c, req);
    else if (strcmp(cmd, "dlq-replay") == 0)
        answer = cmd_dlq_change(c, req, EVBUS__REQUEUE);
    else if (strcmp(cmd, "dlq-drop") == 0)
        answer = cmd_dlq_change(c, req, EVBUS__DROP);
    else if (strcmp(cmd, "dlq-show") == 0)
        answer = cmd_dlq_show(c, req);
    else if (strcmp(cmd, "replay") == 0)
        answer = cmd_replay(c, req);
    else if (strcmp(cmd, "region-status") == 0)
        answer = evbus__control_status(c);
    else if (strncmp(cmd, "region-", 7) == 0 &&
             (answer = evbus__control_regions_handle(c->regions, cmd, req, who)) != NULL)
        ;
    else
        answer = json_pack("{s:b, s:s}", "ok", 0, "error", "unknown command (" COMMANDS ")");
    json_decref(req);
    return answer;
}

static void *control_main(void *arg) {
    evbus__control *c = arg;
    while (!atomic_load(&c->stop)) {
        zmq_pollitem_t item = {c->sock, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, 200) <= 0)
            continue;
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            continue;
        }
        /* Requests are small; a large one is refused before parsing. */
        json_t *answer = zmq_msg_size(&msg) > REQUEST_MAX
                             ? json_pack("{s:b, s:s}", "ok", 0, "error", "request too large")
                             : handle(c, zmq_msg_data(&msg), zmq_msg_size(&msg),
                                      evbus__auth_may_operate(&msg), zmq_msg_gets(&msg, "User-Id"));
        zmq_msg_close(&msg);
        char *out = answer ? json_dumps(answer, JSON_COMPACT) : NULL;
        json_decref(answer);
        const char *reply = out ? out : "{\"ok\":false,\"error\":\"out of memory\"}";
        zmq_send(c->sock, reply, strlen(reply), 0);
        free(out);
    }
    return NULL;
}

evbus_err evbus__control_start(const evbus__config *cfg, evbus__store *store, evbus__ingest *ingest,
                               evbus__dispatch *dispatch, evbus__auth *auth, void *zctx,
                               evbus__control **out, char *err, size_t errlen) {
    evbus__control *c = calloc(1, sizeof *c);
    if (!c)
        return EVBUS_ENOMEM;
    c->cfg = cfg;
    c->store = store;
    c->ingest = ingest;
    c->dispatch = dispatch;
    c->auth = auth;
    c->sock = zmq_socket(zctx, ZMQ_REP);
    int linger = 0;
    /* ZeroMQ itself cuts off a peer sending far more than a request can be,
     * before reading it whole (REQUEST_MAX and a little more get an answer). */
    int64_t maxmsg = 2 * REQUEST_MAX;
    if (c->sock) {
        zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof linger);
        zmq_setsockopt(c->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    }
    c->results = zmq_socket(zctx, ZMQ_PUSH);
    if (!c->results || zmq_connect(c->results, EVBUS__RESULTS_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot connect the control socket to the writer");
        evbus__control_destroy(&c);
        return EVBUS_EZMQ;
    }
    if (!(c->regions = evbus__control_regions_new(cfg, store, dispatch, c->results))) {
        snprintf(err, errlen, "out of memory");
        evbus__control_destroy(&c);
        return EVBUS_ENOMEM;
    }
    if (c->sock && evbus__auth_secure_control(auth, c->sock, err, errlen) != EVBUS_OK) {
        evbus__control_destroy(&c);
        return EVBUS_EZMQ;
    }
    if (!c->sock || zmq_bind(c->sock, cfg->control_listen) != 0) {
        snprintf(err, errlen,
                 "%s: control.listen: cannot bind %s: %s (an ipc:// path must be shorter than "
                 "about 100 characters)",
                 cfg->path, cfg->control_listen, zmq_strerror(errno));
        evbus__control_destroy(&c);
        return EVBUS_EZMQ;
    }
    /* Connecting to a unix socket needs write permission on it: 0600 keeps
     * other users out (the ZAP handler also checks the peer's uid). */
    if (evbus__ipc_restrict(cfg->control_listen) != 0) {
        snprintf(err, errlen, "%s: control.listen: cannot restrict %s to its owner: %s", cfg->path,
                 cfg->control_listen, strerror(errno));
        evbus__control_destroy(&c);
        return EVBUS_EIO;
    }
    if (pthread_create(&c->thread, NULL, control_main, c) != 0) {
        snprintf(err, errlen, "cannot start the control thread");
        evbus__control_destroy(&c);
        return EVBUS_ENOMEM;
    }
    c->running = true;
    *out = c;
    return EVBUS_OK;
}

void evbus__control_destroy(evbus__control **cp) {
    if (!cp || !*cp)
        return;
    evbus__control *c = *cp;
    if (c->running) {
        atomic_store(&c->stop, 1);
        pthread_join(c->thread, NULL);
    }
    if (c->sock)
        zmq_close(c->sock);
    if (c->results)
        zmq_close(c->results);
    evbus__control_regions_destroy(&c->regions);
    free(c);
    *cp = NULL;
}
