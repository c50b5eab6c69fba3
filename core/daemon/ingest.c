#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "audit.h"
#include "auth.h"
#include "common/arena.h"
#include "common/log.h"
#include "common/util.h"
#include "conn_guard.h"
#include "dispatch_msg.h"
#include "evbus.pb-c.h"
#include "frame.h"
#include "proto_encode.h"

/* Most requests taken into one batch, so that a burst of tiny requests cannot
 * make a commit (and the acks waiting for it) arbitrarily late. */
#define BATCH_MAX_REQUESTS 4096
/* Batches in circulation: one being filled (receiving, decoding, validating)
 * while the other is being committed is what overlaps that work with the
 * fsync. */
#define NBATCHES  2
#define NO_ITEM   ((size_t)-1)
#define WRITER_EP "inproc://evbus-ingest-writer"
/* Longest time spent answering queued requests with RETRY_LATER at shutdown. */
#define DRAIN_MAX_MS 1000

/* How often delivery results that did not fit in the store are tried again
 * when no batch comes to carry them. */
#define RESULTS_RETRY_MS 250

/* A commit of delivery results alone may leave its meta page unsynced
 * (store.h: may_undo) until the next commit; with nothing more to commit for
 * this long, the writer syncs it, so that an idle evbusd holds nothing a
 * power loss could undo. */
#define SYNC_IDLE_MS 100

typedef struct request {
    void *sock; /* the socket it came from, where its ack goes */
    zmq_msg_t identity;
    bool delimited; /* REQ-style empty frame between identity and payload */
    uint64_t request_id;
    Evbus__V1__Publish *pub;   /* NULL when the whole request is refused */
    evbus__wire_check *checks; /* per event of pub, in the batch's arena */
    const char *error;         /* whole-request refusal, static or in err_buf */
    char err_buf[160];
    size_t first_slot, n_slots;
    /* With CURVE: who sent it (valid while the batch is being filled) and
     * their counters (valid until evbusd stops). */
    const evbus__principal *principal;
    evbus__producer_stats *producer;
} request;

/* One event of a batch, from validation to its ack. */
typedef struct slot {
    Evbus__V1__AckStatus status; /* decided without the store, or UNSPECIFIED */
    const char *reason;          /* static, or heap when reason_owned */
    bool reason_owned;
    size_t item;             /* index in items when handed to the store */
    size_t rec_off, rec_len; /* the encoded record in the batch's records */
    /* Points into the request; NULL when evbusd made the id up, in gen_id
     * (read it with slot_id(): a pointer to gen_id would dangle once the
     * slots array grows for the next request of the batch). */
    const char *id;
    char gen_id[37];
    size_t first_target, n_targets; /* in the batch's targets */
} slot;

/* Everything one group commit needs, filled by the receiver, committed by
 * the writer, acked and recycled by the receiver. Only one thread touches a
 * batch at a time; ownership moves with the pointer sent over the pipe. */
typedef struct batch {
    request *reqs;
    size_t nreq, reqs_cap;
    slot *slots;
    size_t nslots, slots_cap;
    evbus__store_item *items;
    size_t nitems, items_cap;
    evbus__bytes records;
    uint32_t *targets; /* routing decisions of the batch's events */
    size_t ntargets, targets_cap;
    evbus__arena arena; /* decoded requests */
    ProtobufCAllocator pb_alloc;
    int64_t now_ms;
    evbus_err result; /* set by the writer */
    bool closing;     /* filled while stopping: acks say so (Ack.stopping) */
} batch;

struct evbus__ingest {
    const evbus__config *cfg;
    evbus__store *store;
    const evbus__router *router;
    evbus__route_scratch *route; /* receiver thread's */
    uint64_t *pending;           /* per target, as of the batch's start */
    bool any_max_pending;
    void *zctx;
    void *sock;         /* ROUTER, receiver thread */
    void *http;         /* ROUTER for the HTTP ingest (inproc), receiver thread */
    int turn;           /* which socket fill_batch reads first, so neither starves */
    void *pipe, *wpipe; /* PAIR ends: receiver's and writer's */
    void *results;      /* writer's: delivery results from the dispatcher (PULL) */
    void *wake;         /* writer's: tells the dispatcher of new pending entries */
    evbus__result_msg **msgs;
    size_t n_msgs, msgs_cap;
    evbus__store_result *res;
    size_t res_cap;
    size_t msgs_done; /* leading results of msgs[0] already durable */
    pthread_t writer;
    bool writer_running;
    batch batches[NBATCHES];
    batch *free_list[NBATCHES];
    int nfree;
    evbus__ingest_counters counters;
    /* A copy of `counters` for other threads, refreshed after every batch. */
    pthread_mutex_t snap_lock;
    evbus__ingest_counters snap;
    Evbus__V1__EventAck *acks;
    Evbus__V1__EventAck **ack_ptrs;
    size_t acks_cap, ack_ptrs_cap;
    int64_t last_drop_log_ms;
    evbus__uuid_gen uuids;
    evbus__auth *auth;
    evbus__conn_guard *guard;          /* keeps connections from using up descriptors */
    const evbus__producers *producers; /* held by the receiver; NULL without CURVE */
    evbus__audit *audit;               /* the writer's: audit events of state changes */
};

static const char *slot_id(const slot *s) {
    return s->id ? s->id : s->gen_id;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 64;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

static void *arena_alloc(void *data, size_t size) {
    return evbus__arena_alloc(data, size);
}

/* Everything is released at once by evbus__arena_reset(). */
static void arena_free(void *data, void *ptr) {
    (void)data;
    (void)ptr;
}

static void batch_init(batch *b) {
    memset(b, 0, sizeof *b);
    evbus__arena_init(&b->arena, 1 << 20);
    b->pb_alloc.alloc = arena_alloc;
    b->pb_alloc.free = arena_free;
    b->pb_alloc.allocator_data = &b->arena;
}

static void batch_free(batch *b) {
    free(b->reqs);
    free(b->slots);
    free(b->items);
    free(b->records.data);
    free(b->targets);
    evbus__arena_destroy(&b->arena);
}

/* Releases what the batch's requests hold and makes it empty again. */
static void batch_reset(batch *b) {
    for (size_t i = 0; i < b->nreq; i++) {
        request *r = &b->reqs[i];
        for (size_t j = 0; j < r->n_slots; j++) {
            slot *s = &b->slots[r->first_slot + j];
            if (s->reason_owned)
                free((void *)s->reason);
        }
        zmq_msg_close(&r->identity);
    }
    b->nreq = b->nslots = b->nitems = b->ntargets = 0;
    b->records.len = 0;
    evbus__arena_reset(&b->arena);
}

/* The writer thread: commits each batch it is handed and hands it back. It
 * is the store's only writer. A NULL pointer tells it to stop. */
/* Hands a result message back to the dispatcher, which counts its batch out
 * of the target's window and frees it. Every message taken must come back
 * (or the dispatcher be gone): one lost would keep its batch unconfirmed,
 * holding a slot of the window for ever. The send blocks without a
 * high-water mark and is retried after a signal, so it fails only when the
 * context is ending (the dispatcher has stopped): then it is freed here. */
static void hand_back(evbus__ingest *ing, evbus__result_msg *m) {
    if (!evbus__result_msg_send(ing->wake, m))
        evbus__result_msg_free(m);
}

/* Takes every delivery result message waiting, without blocking. */
static void take_results(evbus__ingest *ing) {
    evbus__result_msg *m;
    while (zmq_recv(ing->results, &m, sizeof m, ZMQ_DONTWAIT) == (int)sizeof m) {
        if (ing->n_msgs == ing->msgs_cap) {
            size_t cap = ing->msgs_cap ? ing->msgs_cap * 2 : 16;
            evbus__result_msg **nm = realloc(ing->msgs, cap * sizeof *nm);
            if (!nm) {
                /* No room to keep it for the commit: handed back at once,
                 * unrecorded, so that its batch leaves the target's window
                 * (freed here it would hold a slot of it for ever). Its
                 * entries stay pending: delivered again later. */
                EVBUS_LOG_E("ingest",
                            "out of memory: %zu delivery results not recorded: "
                            "delivered again later",
                            m->n);
                hand_back(ing, m);
                continue;
            }
            ing->msgs = nm;
            ing->msgs_cap = cap;
        }
        /* Taken once per message, so a message kept for a later commit does
         * not queue its audit event twice. */
        if (m->audit_type && m->audit_detail)
            evbus__audit_add(ing->audit, m->audit_type, m->audit_detail);
        ing->msgs[ing->n_msgs++] = m;
    }
}

/* Flattens the waiting result messages into one array for the store. */
static int gather_results(evbus__ingest *ing, evbus__store_results *out) {
    size_t n = 0;
    for (size_t i = 0; i < ing->n_msgs; i++)
        n += ing->msgs[i]->n;
    n -= ing->msgs_done;
    if (n > ing->res_cap) {
        evbus__store_result *v = realloc(ing->res, n * sizeof *v);
        if (!v)
            return -1;
        ing->res = v;
        ing->res_cap = n;
    }
    size_t k = 0;
    for (size_t i = 0; i < ing->n_msgs; i++) {
        size_t skip = i == 0 ? ing->msgs_done : 0;
        memcpy(ing->res + k, ing->msgs[i]->v + skip, (ing->msgs[i]->n - skip) * sizeof *ing->res);
        k += ing->msgs[i]->n - skip;
    }
    out->v = ing->res;
    out->n = k;
    out->n_targets = (uint32_t)ing->cfg->targets.n;
    out->n_recorded = 0;
    return 0;
}

/* Hands committed result messages back to the dispatcher, which counts
 * their batches out of flight and frees them; when stopping (the dispatcher
 * is gone) frees them here. */
static void return_results(evbus__ingest *ing, bool stopping) {
    for (size_t i = 0; i < ing->n_msgs; i++) {
        evbus__result_msg *m = ing->msgs[i];
        if (stopping)
            evbus__result_msg_free(m);
        else
            hand_back(ing, m);
    }
    ing->n_msgs = 0;
    ing->msgs_done = 0;
}

/* After a commit that recorded only the first `recorded` results (the
 * store was short of space): hands back the messages whose results are all
 * durable and keeps the rest for the next commit. Kept messages keep their
 * batches in flight, so the dispatcher does not deliver those events again
 * while their results wait. */
static void return_recorded(evbus__ingest *ing, size_t recorded) {
    size_t kept = 0, at = 0;
    recorded += ing->msgs_done;
    ing->msgs_done = 0;
    for (size_t i = 0; i < ing->n_msgs; i++) {
        evbus__result_msg *m = ing->msgs[i];
        if (kept == 0 && at + m->n <= recorded) {
            hand_back(ing, m);
        } else {
            if (kept == 0)
                ing->msgs_done = recorded > at ? recorded - at : 0;
            ing->msgs[kept++] = m;
        }
        at += m->n;
    }
    ing->n_msgs = kept;
}

/* The writer thread: the store's only writer. Each commit takes the batch
 * the receiver handed over (if any) and every delivery result waiting, so
 * that results ride along with new events instead of costing an fsync of
 * their own under load. A NULL batch tells it to stop. */
static void *writer_main(void *arg) {
    evbus__ingest *ing = arg;
    /* A name for top -H, perf and gdb: the store's only writer. */
    pthread_setname_np(pthread_self(), "evbus-writer");
    for (;;) {
        zmq_pollitem_t items[2] = {{ing->wpipe, 0, ZMQ_POLLIN, 0},
                                   {ing->results, 0, ZMQ_POLLIN, 0}};
        /* Results and audit events waiting for space are tried again on
         * their own, too. */
        bool waiting = ing->n_msgs || evbus__audit_waiting(ing->audit);
        bool unsynced = evbus__store_unsynced(ing->store);
        int ready = zmq_poll(items, 2, waiting ? RESULTS_RETRY_MS : unsynced ? SYNC_IDLE_MS : -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            EVBUS_LOG_E("ingest", "writer poll failed: %s", zmq_strerror(errno));
            break;
        }
        if (ready == 0 && unsynced)
            evbus__store_sync(ing->store);
        batch *b = NULL;
        if ((items[0].revents & ZMQ_POLLIN) &&
            zmq_recv(ing->wpipe, &b, sizeof b, ZMQ_DONTWAIT) == (int)sizeof b && !b)
            break;
        take_results(ing);
        evbus__store_results res = {0};
        if (gather_results(ing, &res))
            res.n = 0;
        /* A commit of delivery results alone may be undone by a power loss
         * (the store checks that it holds nothing else): that only delivers
         * those events again, and it halves the flushes of the commits that
         * pace delivery when nothing is being published (their latency
         * bounds how fast the unconfirmed batches of a target's window come
         * back, dispatch_internal.h). */
        res.may_undo = true;
        evbus_err rc = EVBUS_OK;
        bool new_pending = false;
        int64_t now = b ? b->now_ms : evbus__now_wall_ms();
        size_t n_items = b ? b->nitems : 0, total;
        /* Audit events ride in the same transaction as the state changes
         * they describe (audit.h). */
        evbus__store_item *all =
            evbus__audit_items(ing->audit, b ? b->items : NULL, n_items, now, &total);
        if (total > 0 || res.n > 0) {
            rc = evbus__store_append(ing->store, all, total, &res, now,
                                     now - ing->cfg->dedup_window_ms, ing->cfg->max_backlog);
            if (rc == EVBUS_OK)
                new_pending = evbus__audit_done(ing->audit, b ? b->items : NULL, n_items);
            else
                evbus__audit_forget(ing->audit);
            for (size_t i = 0; b && rc == EVBUS_OK && i < b->nitems && !new_pending; i++)
                new_pending = b->items[i].outcome == EVBUS__STORED && b->items[i].n_targets;
        }
        if (rc != EVBUS_OK && res.n)
            EVBUS_LOG_E("ingest", "%zu delivery results not recorded (%s): delivered again later",
                        res.n, evbus_strerror(rc));
        if (rc == EVBUS_OK && res.n_recorded < res.n)
            return_recorded(ing, res.n_recorded); /* the store logged why */
        else
            return_results(ing, false);
        if (new_pending)
            zmq_send(ing->wake, "", 0, ZMQ_DONTWAIT); /* a lost wake is caught by the scan */
        if (b) {
            b->result = rc;
            while (zmq_send(ing->wpipe, &b, sizeof b, 0) < 0 && errno == EINTR) {
            }
        }
    }
    /* The dispatcher has stopped: record its last results, then free them. */
    take_results(ing);
    evbus__store_results res = {0};
    if (ing->n_msgs && gather_results(ing, &res) == 0) {
        int64_t now = evbus__now_wall_ms();
        size_t total;
        evbus__store_item *items = evbus__audit_items(ing->audit, NULL, 0, now, &total);
        if (evbus__store_append(ing->store, items, total, &res, now,
                                now - ing->cfg->dedup_window_ms, ing->cfg->max_backlog) == EVBUS_OK)
            evbus__audit_done(ing->audit, NULL, 0);
    }
    evbus__store_sync(ing->store); /* a clean stop leaves nothing to undo */
    return_results(ing, true);
    return NULL;
}

evbus_err evbus__ingest_new(const evbus__config *cfg, evbus__store *store,
                            const evbus__router *router, evbus__auth *auth, void *zctx,
                            evbus__ingest **out, char *err, size_t errlen) {
    evbus__ingest *ing = calloc(1, sizeof *ing);
    if (!ing)
        return EVBUS_ENOMEM;
    ing->cfg = cfg;
    ing->store = store;
    ing->router = router;
    ing->auth = auth;
    pthread_mutex_init(&ing->snap_lock, NULL);
    ing->pending = calloc(cfg->targets.n ? cfg->targets.n : 1, sizeof *ing->pending);
    if (!ing->pending || (router && evbus__route_scratch_new(router, &ing->route) != EVBUS_OK)) {
        free(ing->pending);
        free(ing);
        return EVBUS_ENOMEM;
    }
    for (size_t i = 0; i < cfg->targets.n; i++)
        ing->any_max_pending |= evbus__config_target(cfg, i)->max_pending > 0;
    if (!(ing->audit = evbus__audit_new(cfg, router))) {
        evbus__route_scratch_destroy(&ing->route);
        free(ing->pending);
        free(ing);
        return EVBUS_ENOMEM;
    }
    ing->zctx = zctx;
    evbus__uuid_gen_init(&ing->uuids);
    for (int i = 0; i < NBATCHES; i++) {
        batch_init(&ing->batches[i]);
        ing->free_list[ing->nfree++] = &ing->batches[i];
    }
    ing->sock = zmq_socket(zctx, ZMQ_ROUTER);
    ing->http = zmq_socket(zctx, ZMQ_ROUTER);
    ing->pipe = zmq_socket(zctx, ZMQ_PAIR);
    ing->wpipe = zmq_socket(zctx, ZMQ_PAIR);
    ing->results = zmq_socket(zctx, ZMQ_PULL);
    ing->wake = zmq_socket(zctx, ZMQ_PUSH);
    /* No high-water mark: result messages coming back must not be dropped
     * (their number is bounded by the targets' in-flight limits). */
    int zero = 0;
    if (ing->wake) {
        zmq_setsockopt(ing->wake, ZMQ_LINGER, &zero, sizeof zero);
        zmq_setsockopt(ing->wake, ZMQ_SNDHWM, &zero, sizeof zero);
    }
    if (!ing->sock || !ing->http || !ing->pipe || !ing->wpipe || !ing->results || !ing->wake ||
        zmq_bind(ing->http, EVBUS__HTTP_INGEST_ENDPOINT) != 0 ||
        zmq_bind(ing->pipe, WRITER_EP) != 0 || zmq_connect(ing->wpipe, WRITER_EP) != 0 ||
        zmq_bind(ing->results, EVBUS__RESULTS_ENDPOINT) != 0 ||
        zmq_connect(ing->wake, EVBUS__WAKE_ENDPOINT) != 0) {
        snprintf(err, errlen, "cannot create ingest sockets: %s", zmq_strerror(errno));
        goto fail;
    }
    /* An ack must never vanish silently: with ROUTER_MANDATORY a reply to a
     * peer that is gone fails with EHOSTUNREACH instead of being dropped, and
     * one to a full pipe waits up to ack_send_timeout, and is then counted
     * and logged. */
    int one = 1, hwm = 100000, linger = 2000, sndtimeo = (int)cfg->ack_send_timeout_ms;
    /* Frames far above the limit are cut off by ZeroMQ itself (the peer is
     * disconnected); frames just above it get a clear error ack. */
    int64_t maxmsg = 2 * ((int64_t)cfg->max_request_bytes + 4096);
    zmq_setsockopt(ing->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    /* The HTTP side holds at most one request per connection it accepts,
     * so its queues are bounded by ingest.http.max_connections. */
    zmq_setsockopt(ing->http, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(ing->http, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ing->http, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ing->http, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(ing->http, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    zmq_setsockopt(ing->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ing->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ing->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(ing->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    zmq_setsockopt(ing->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    int handshake = (int)cfg->handshake_timeout_ms;
    zmq_setsockopt(ing->sock, ZMQ_HANDSHAKE_IVL, &handshake, sizeof handshake);
    /* Watching connections starts before the first can be accepted. */
    if (evbus__conn_guard_start(zctx, ing->sock, cfg->max_connections, &ing->guard, err, errlen) !=
        EVBUS_OK)
        goto fail;
    if (evbus__auth_secure_ingest(auth, ing->sock, err, errlen) != EVBUS_OK)
        goto fail;
    for (size_t i = 0; i < cfg->listen.n; i++) {
        if (zmq_bind(ing->sock, cfg->listen.v[i]) != 0) {
            snprintf(err, errlen, "%s: ingest.listen: cannot bind %s: %s", cfg->path,
                     cfg->listen.v[i], zmq_strerror(errno));
            goto fail;
        }
        /* What was bound, not what was asked: the port of tcp://HOST:*. */
        char bound[512] = "";
        size_t blen = sizeof bound;
        zmq_getsockopt(ing->sock, ZMQ_LAST_ENDPOINT, bound, &blen);
        EVBUS_LOG_I("evbusd", "listening on %s%s", bound[0] ? bound : cfg->listen.v[i],
                    cfg->curve_secret_key ? " (CURVE: producers in ingest.curve.authorized_keys)"
                                          : "");
    }
    if (pthread_create(&ing->writer, NULL, writer_main, ing) != 0) {
        snprintf(err, errlen, "cannot start the writer thread");
        goto fail;
    }
    ing->writer_running = true;
    *out = ing;
    return EVBUS_OK;
fail:
    evbus__ingest_destroy(&ing);
    return EVBUS_EZMQ;
}

static void stop_writer(evbus__ingest *ing) {
    if (!ing->writer_running)
        return;
    batch *none = NULL;
    zmq_send(ing->pipe, &none, sizeof none, 0);
    pthread_join(ing->writer, NULL);
    ing->writer_running = false;
}

void evbus__ingest_destroy(evbus__ingest **ingp) {
    if (!ingp || !*ingp)
        return;
    evbus__ingest *ing = *ingp;
    stop_writer(ing);
    evbus__conn_guard_stop(&ing->guard);
    if (ing->sock)
        zmq_close(ing->sock);
    if (ing->http)
        zmq_close(ing->http);
    if (ing->pipe)
        zmq_close(ing->pipe);
    if (ing->wpipe)
        zmq_close(ing->wpipe);
    if (ing->results) {
        /* Results queued after the writer stopped stay pending: freed. */
        take_results(ing);
        return_results(ing, true);
        zmq_close(ing->results);
    }
    if (ing->wake)
        zmq_close(ing->wake);
    free(ing->msgs);
    free(ing->res);
    for (int i = 0; i < NBATCHES; i++) {
        batch_reset(&ing->batches[i]);
        batch_free(&ing->batches[i]);
    }
    free(ing->acks);
    free(ing->ack_ptrs);
    evbus__route_scratch_destroy(&ing->route);
    evbus__audit_destroy(&ing->audit);
    evbus__auth_producers_release(ing->auth, ing->producers);
    free(ing->pending);
    pthread_mutex_destroy(&ing->snap_lock);
    free(ing);
    *ingp = NULL;
}

void evbus__ingest_counters_get(evbus__ingest *ing, evbus__ingest_counters *out) {
    pthread_mutex_lock(&ing->snap_lock);
    *out = ing->snap;
    pthread_mutex_unlock(&ing->snap_lock);
}

static void publish_counters(evbus__ingest *ing) {
    pthread_mutex_lock(&ing->snap_lock);
    ing->snap = ing->counters;
    pthread_mutex_unlock(&ing->snap_lock);
}

/* With CURVE, only producers still listed are answered: one whose key was
 * revoked since it connected gets nothing back (as an unknown key gets no
 * connection). */
static bool admitted(evbus__ingest *ing, request *r, zmq_msg_t *frame) {
    r->principal = evbus__auth_admit(ing->auth, ing->producers, frame);
    r->producer = r->principal ? evbus__auth_stats_of(r->principal) : NULL;
    return r->principal != NULL;
}

/* Receives one multipart message into r. Returns 1 when a request was read,
 * 2 when one was read and dropped unanswered (its producer was revoked),
 * 0 when none is waiting, -1 on a socket error. Frame-level problems do not
 * fail: they become a refusal in r->error. */
static int recv_request(evbus__ingest *ing, void *sock, batch *b, request *r) {
    memset(r, 0, sizeof *r);
    r->sock = sock;
    zmq_msg_init(&r->identity);
    if (zmq_msg_recv(&r->identity, sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&r->identity);
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    /* Read every remaining frame, keeping at most three; anything but
     * [empty delimiter] payload is refused. */
    zmq_msg_t frames[3];
    int nframes = 0, extra = 0;
    while (zmq_msg_more(nframes ? &frames[nframes - 1] : &r->identity)) {
        zmq_msg_t *f = &frames[nframes < 3 ? nframes : 2];
        if (nframes >= 3) {
            zmq_msg_close(f);
            extra++;
        }
        zmq_msg_init(f);
        if (zmq_msg_recv(f, sock, 0) < 0)
            break;
        if (nframes < 3)
            nframes++;
    }
    zmq_msg_t *payload = NULL;
    if (extra == 0 && nframes == 1) {
        payload = &frames[0];
    } else if (extra == 0 && nframes == 2 && zmq_msg_size(&frames[0]) == 0) {
        r->delimited = true;
        payload = &frames[1];
    } else if (nframes >= 1 && zmq_msg_size(&frames[0]) == 0) {
        r->delimited = true;
    }
    if (ing->producers && sock == ing->sock && nframes >= 1 &&
        !admitted(ing, r, &frames[nframes - 1])) {
        for (int i = 0; i < nframes; i++)
            zmq_msg_close(&frames[i]);
        zmq_msg_close(&r->identity);
        return 2;
    }
    ing->counters.requests++;
    if (!payload) {
        snprintf(r->err_buf, sizeof r->err_buf,
                 "expected one frame (a serialized evbus.v1.Publish) after the identity, got %d",
                 nframes + extra);
        r->error = r->err_buf;
    } else {
        r->pub = evbus__frame_decode(ing->cfg, &b->pb_alloc, zmq_msg_data(payload),
                                     zmq_msg_size(payload), &r->request_id, &r->checks, r->err_buf,
                                     sizeof r->err_buf);
        if (!r->pub)
            r->error = r->err_buf;
    }
    if (r->error)
        ing->counters.bad_frames++;
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    return 1;
}

static const char OUT_OF_MEMORY[] = "evbusd is out of memory; send again later";

/* Validates and encodes the events of one request into the batch. */
/* Routes one prepared event: its targets are appended to the batch. Returns
 * 0, 1 when the matcher cannot read the detail (why is set), -1 when out of
 * memory. */
static int route_event(evbus__ingest *ing, batch *b, slot *s, const Evbus__V1__Event *filled,
                       char *why, size_t whylen) {
    s->first_target = b->ntargets;
    s->n_targets = 0;
    if (!ing->router)
        return 0;
    size_t max = evbus__router_target_count(ing->router);
    if (grow((void **)&b->targets, &b->targets_cap, b->ntargets + max, sizeof *b->targets))
        return -1;
    int matched;
    if (evbus__route(ing->router, ing->route, filled, b->targets + b->ntargets, max, &s->n_targets,
                     &matched) != EVBUS_OK) {
        snprintf(why, whylen, "detail cannot be read by the rule matcher (too deep or too long)");
        return 1;
    }
    if (!matched)
        ing->counters.unmatched++;
    /* A target over its backlog limit turns the event away (it is not
     * stored, so the producer's resend is the retry). */
    for (size_t i = 0; ing->any_max_pending && i < s->n_targets; i++) {
        uint32_t t = b->targets[b->ntargets + i];
        const evbus__target_cfg *tc = evbus__config_target(ing->cfg, t);
        if (tc->max_pending && ing->pending[t] >= tc->max_pending) {
            snprintf(why, whylen,
                     "target %s has %llu pending deliveries (its max_pending is %llu): send "
                     "again later",
                     tc->name, (unsigned long long)ing->pending[t],
                     (unsigned long long)tc->max_pending);
            s->n_targets = 0;
            return 2;
        }
    }
    b->ntargets += s->n_targets;
    return 0;
}

static void prepare_request(evbus__ingest *ing, batch *b, request *r, int64_t now_ms,
                            const char *now_text, bool closing) {
    r->first_slot = b->nslots;
    r->n_slots = r->pub->n_events;
    if (grow((void **)&b->slots, &b->slots_cap, b->nslots + r->n_slots, sizeof *b->slots) ||
        grow((void **)&b->items, &b->items_cap, b->nslots + r->n_slots, sizeof *b->items)) {
        r->error = OUT_OF_MEMORY;
        r->pub = NULL;
        r->n_slots = 0;
        return;
    }
    b->nslots += r->n_slots;
    for (size_t i = 0; i < r->n_slots; i++) {
        slot *s = &b->slots[r->first_slot + i];
        s->item = NO_ITEM;
        s->reason = NULL;
        s->reason_owned = false;
        s->status = EVBUS__V1__ACK_STATUS__ACK_STATUS_UNSPECIFIED;
        s->n_targets = 0;
        char why[256];
        Evbus__V1__Event filled;
        int rc = evbus__event_prepare(ing->cfg, r->pub->events[i], &r->checks[i], &ing->uuids,
                                      now_ms, now_text, s->gen_id, &filled, &b->records,
                                      &s->rec_off, &s->rec_len, why, sizeof why);
        s->id = filled.id == s->gen_id ? NULL : filled.id;
        if (rc == 0 && r->principal &&
            !evbus__auth_may_publish(r->principal, filled.source, why, sizeof why))
            rc = 1;
        if (rc == 0 && !closing)
            rc = route_event(ing, b, s, &filled, why, sizeof why);
        if (rc == 1 || rc == 2) {
            s->status =
                rc == 1 ? EVBUS__V1__ACK_STATUS__REJECTED : EVBUS__V1__ACK_STATUS__RETRY_LATER;
            s->reason = strdup(why);
            s->reason_owned = s->reason != NULL;
            if (!s->reason)
                s->reason = "rejected (out of memory describing why)";
        } else if (rc < 0) {
            s->status = EVBUS__V1__ACK_STATUS__RETRY_LATER;
            s->reason = OUT_OF_MEMORY;
        } else if (closing) {
            s->status = EVBUS__V1__ACK_STATUS__RETRY_LATER;
            s->reason = "evbusd is shutting down; send again later";
        } else {
            s->item = b->nitems++;
        }
    }
}

static bool batch_full(const evbus__ingest *ing, const batch *b) {
    return b->nreq >= BATCH_MAX_REQUESTS || b->nslots >= ing->cfg->commit_max_events ||
           b->records.len >= ing->cfg->commit_max_bytes;
}

/* Adds what is waiting on the socket to a batch, within the limits. Called
 * again and again while the writer is busy, so the batch grows until the
 * writer can take it. */
static void fill_batch(evbus__ingest *ing, batch *b, bool closing) {
    b->closing = closing;
    int64_t now = evbus__now_wall_ms();
    if (b->nreq == 0)
        b->now_ms = now;
    if (ing->any_max_pending)
        evbus__store_pending_counts(ing->store, ing->pending, ing->cfg->targets.n);
    char now_text[21];
    evbus__format_time(now, now_text);
    ing->producers = evbus__auth_producers(ing->auth, ing->producers);
    /* One request from each socket in turn while both have some: a flood on
     * one (HTTP, say) leaves the other its share of every batch. */
    void *socks[2] = {ing->sock, ing->http};
    bool dry[2] = {false, false};
    int at = ing->turn;
    ing->turn ^= 1;
    while (!batch_full(ing, b) && !(dry[0] && dry[1])) {
        if (grow((void **)&b->reqs, &b->reqs_cap, b->nreq + 1, sizeof *b->reqs))
            break;
        if (dry[at])
            at ^= 1;
        request *r = &b->reqs[b->nreq];
        int got = recv_request(ing, socks[at], b, r);
        if (got < 0)
            break;
        if (got == 0) {
            dry[at] = true;
            continue;
        }
        at ^= 1;
        if (got == 2)
            continue;
        b->nreq++;
        if (r->pub)
            prepare_request(ing, b, r, now, now_text, closing);
    }
}

/* Store items point into the records buffer, which may move while it grows,
 * so they are laid out only when the batch goes to the writer. */
static void layout_items(batch *b) {
    for (size_t i = 0; i < b->nslots; i++) {
        const slot *s = &b->slots[i];
        if (s->item == NO_ITEM)
            continue;
        evbus__store_item *it = &b->items[s->item];
        it->id = slot_id(s);
        it->id_len = strlen(it->id);
        it->record = b->records.data + s->rec_off;
        it->record_len = s->rec_len;
        it->targets = b->targets + s->first_target;
        it->n_targets = s->n_targets;
    }
}

static const char *outcome_reason(evbus__store_outcome o) {
    switch (o) {
    case EVBUS__FULL:
        return "storage full: storage.map_size is reached; send again later (delivery frees "
               "space, or raise storage.map_size)";
    case EVBUS__FULL_IDS:
        return "storage full of event ids kept for deduplication (storage.dedup_window): evbusd "
               "is forgetting the oldest early to make room; send again now (or raise "
               "storage.map_size to keep the whole window)";
    case EVBUS__BACKLOG:
        return "backlog limit reached (storage.max_backlog events are waiting); send again later";
    case EVBUS__DISK_FULL:
        return "disk full: the file system holding storage.data_dir has no space left; send again "
               "later (evbusd resumes once space is freed there)";
    case EVBUS__IO_ERROR:
        return "storage I/O error: evbusd could not write to storage.data_dir; send again later";
    default: return "";
    }
}

static void send_ack(evbus__ingest *ing, const batch *b, const request *r) {
    Evbus__V1__Ack ack = EVBUS__V1__ACK__INIT;
    ack.request_id = r->request_id;
    ack.version = EVBUS_WIRE_VERSION;
    ack.stopping = b->closing;
    if (r->error) {
        ack.error = (char *)r->error;
    } else if (grow((void **)&ing->acks, &ing->acks_cap, r->n_slots, sizeof *ing->acks) ||
               grow((void **)&ing->ack_ptrs, &ing->ack_ptrs_cap, r->n_slots,
                    sizeof *ing->ack_ptrs)) {
        ack.error = (char *)OUT_OF_MEMORY;
    } else {
        for (size_t i = 0; i < r->n_slots; i++) {
            const slot *s = &b->slots[r->first_slot + i];
            Evbus__V1__EventAck *a = &ing->acks[i];
            evbus__v1__event_ack__init(a);
            a->status = s->status;
            a->index = (uint32_t)i;
            a->event_id = (char *)slot_id(s); /* "" when it cannot be sent back as it came */
            a->reason = (char *)(s->reason ? s->reason : "");
            a->region = ing->cfg->region;
            if (s->item != NO_ITEM)
                a->sequence = b->items[s->item].seq;
            ing->ack_ptrs[i] = a;
        }
        ack.results = ing->ack_ptrs;
        ack.n_results = r->n_slots;
    }
    zmq_msg_t msg;
    size_t len = evbus__ack_size(&ack);
    if (zmq_msg_init_size(&msg, len) != 0)
        return;
    evbus__ack_encode(&ack, zmq_msg_data(&msg));
    zmq_msg_t identity;
    zmq_msg_init(&identity);
    zmq_msg_copy(&identity, (zmq_msg_t *)&r->identity);
    int rc = zmq_msg_send(&identity, r->sock, ZMQ_SNDMORE);
    if (rc < 0)
        zmq_msg_close(&identity);
    if (rc >= 0 && r->delimited)
        rc = zmq_send(r->sock, "", 0, ZMQ_SNDMORE);
    if (rc >= 0)
        rc = zmq_msg_send(&msg, r->sock, 0);
    if (rc < 0) {
        int e = errno;
        zmq_msg_close(&msg);
        ing->counters.acks_dropped++;
        int64_t now = evbus__now_mono_ms();
        if (now - ing->last_drop_log_ms >= 1000) {
            ing->last_drop_log_ms = now;
            EVBUS_LOG_W("ingest",
                        "ack for request %llu not delivered (%s): %s; the producer will resend "
                        "and get DUPLICATE (%llu acks dropped so far)",
                        (unsigned long long)r->request_id,
                        e == EHOSTUNREACH ? "producer disconnected" : "producer's queue full",
                        zmq_strerror(e), (unsigned long long)ing->counters.acks_dropped);
        }
    }
}

/* Adds each request's durable and rejected events to its producer's
 * counters. */
static void count_producers(const batch *b) {
    for (size_t i = 0; i < b->nreq; i++) {
        const request *r = &b->reqs[i];
        uint64_t durable = 0, rejected = 0;
        for (size_t j = 0; r->producer && j < r->n_slots; j++) {
            Evbus__V1__AckStatus st = b->slots[r->first_slot + j].status;
            durable +=
                st == EVBUS__V1__ACK_STATUS__ACCEPTED || st == EVBUS__V1__ACK_STATUS__DUPLICATE;
            rejected += st == EVBUS__V1__ACK_STATUS__REJECTED;
        }
        evbus__producer_count(r->producer, durable, rejected);
    }
}

/* Turns store outcomes into ack statuses, counts them, and acks every
 * request of a committed batch. */
static void ack_batch(evbus__ingest *ing, batch *b) {
    for (size_t i = 0; i < b->nslots; i++) {
        slot *s = &b->slots[i];
        if (s->item != NO_ITEM) {
            evbus__store_outcome o = b->items[s->item].outcome;
            s->status = o == EVBUS__STORED      ? EVBUS__V1__ACK_STATUS__ACCEPTED
                        : o == EVBUS__DUPLICATE ? EVBUS__V1__ACK_STATUS__DUPLICATE
                                                : EVBUS__V1__ACK_STATUS__RETRY_LATER;
            s->reason = outcome_reason(o);
        }
        switch (s->status) {
        case EVBUS__V1__ACK_STATUS__ACCEPTED: ing->counters.accepted++; break;
        case EVBUS__V1__ACK_STATUS__DUPLICATE: ing->counters.duplicates++; break;
        case EVBUS__V1__ACK_STATUS__REJECTED: ing->counters.rejected++; break;
        default: ing->counters.retry_later++; break;
        }
    }
    if (ing->producers)
        count_producers(b);
    for (size_t i = 0; i < b->nreq; i++)
        send_ack(ing, b, &b->reqs[i]);
    if (b->nitems)
        ing->counters.commits++;
    publish_counters(ing);
}

/* Answers every request of a batch that will not be committed (the store
 * failed): events that were waiting for the store get RETRY_LATER with `why`,
 * which claims nothing durable; the others keep the answer they already have
 * (a rejected event stays rejected). */
static void ack_uncommitted(evbus__ingest *ing, batch *b, const char *why) {
    for (size_t i = 0; i < b->nslots; i++) {
        slot *s = &b->slots[i];
        if (s->item == NO_ITEM)
            continue;
        s->item = NO_ITEM;
        s->status = EVBUS__V1__ACK_STATUS__RETRY_LATER;
        s->reason = why;
    }
    b->nitems = 0;
    ack_batch(ing, b);
}

static const char STORE_FAILED[] = "evbusd could not write to its store; send again later";

/* Takes a committed batch back from the writer: acks it (if the store
 * failed, nothing of it is durable and no ack may say otherwise: its events
 * get RETRY_LATER) and recycles it. Returns the batch's result. */
static evbus_err collect_batch(evbus__ingest *ing) {
    batch *b;
    while (zmq_recv(ing->pipe, &b, sizeof b, 0) != (int)sizeof b) {
        if (errno != EINTR)
            return EVBUS_EZMQ;
    }
    evbus_err rc = b->result;
    if (rc == EVBUS_OK)
        ack_batch(ing, b);
    else
        ack_uncommitted(ing, b, STORE_FAILED);
    batch_reset(b);
    ing->free_list[ing->nfree++] = b;
    return rc;
}

evbus_err evbus__ingest_run(evbus__ingest *ing, volatile sig_atomic_t *stop) {
    evbus_err rc = EVBUS_OK;
    int in_writer = 0;
    batch *cur = NULL; /* being filled */
    while (!*stop && rc == EVBUS_OK) {
        /* Read from producers only while there is room for their requests;
         * otherwise ZeroMQ queues them, which is the backpressure. */
        bool room = cur ? !batch_full(ing, cur) : ing->nfree > 0;
        zmq_pollitem_t items[3] = {{ing->pipe, 0, ZMQ_POLLIN, 0},
                                   {ing->sock, 0, ZMQ_POLLIN, 0},
                                   {ing->http, 0, ZMQ_POLLIN, 0}};
        int n = zmq_poll(items, room ? 3 : 1, 200);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            EVBUS_LOG_E("ingest", "poll failed: %s", zmq_strerror(errno));
            rc = EVBUS_EZMQ;
            break;
        }
        if (items[0].revents & ZMQ_POLLIN) {
            rc = collect_batch(ing);
            in_writer--;
        }
        if (room && ((items[1].revents | items[2].revents) & ZMQ_POLLIN)) {
            if (!cur)
                cur = ing->free_list[--ing->nfree];
            fill_batch(ing, cur, false);
        }
        /* The writer takes a batch only when it is idle: while it commits,
         * requests keep accumulating in `cur`, so the next commit is larger
         * and the decoding overlaps the fsync. */
        if (cur && in_writer == 0 && cur->nreq > 0 && rc == EVBUS_OK) {
            layout_items(cur);
            zmq_send(ing->pipe, &cur, sizeof cur, 0);
            in_writer++;
            cur = NULL;
        }
    }
    /* Every request read gets an answer: finish the commit in progress and
     * ack it, then commit and ack the batch that was filling behind it (its
     * requests were read, so they are not left to a producer's timeout); if
     * the store has failed, that batch is answered RETRY_LATER instead. */
    while (in_writer > 0 || cur) {
        if (in_writer == 0) {
            if (cur->nreq > 0 && rc == EVBUS_OK) {
                layout_items(cur);
                zmq_send(ing->pipe, &cur, sizeof cur, 0);
                in_writer++;
            } else {
                ack_uncommitted(ing, cur, STORE_FAILED);
                batch_reset(cur);
                ing->free_list[ing->nfree++] = cur;
            }
            cur = NULL;
            continue;
        }
        evbus_err r = collect_batch(ing);
        if (rc == EVBUS_OK)
            rc = r;
        in_writer--;
    }
    if (rc != EVBUS_OK)
        return rc;
    /* Answer what is already queued with RETRY_LATER so that no producer
     * waits for a timeout to learn it should send again. The endpoints stay
     * bound: zmq_unbind also closes the connections accepted through them
     * (libzmq issue 3317), which would drop these answers and the acks above
     * that are still queued for sending. The socket is closed, and its queue
     * flushed within its linger, by evbus__ingest_destroy(). Producers
     * resending at once could keep the queue from ever running dry, so the
     * drain is bounded in time; what it leaves was never read. */
    batch *b = ing->free_list[--ing->nfree];
    size_t answered = 0;
    int64_t deadline = evbus__now_mono_ms() + DRAIN_MAX_MS;
    while (evbus__now_mono_ms() < deadline) {
        fill_batch(ing, b, true);
        if (b->nreq == 0)
            break;
        answered += b->nreq;
        b->result = EVBUS_OK;
        ack_batch(ing, b);
        batch_reset(b);
    }
    ing->free_list[ing->nfree++] = b;
    if (answered)
        EVBUS_LOG_I("ingest", "answered %zu queued request(s) with RETRY_LATER while stopping",
                    answered);
    return EVBUS_OK;
}
