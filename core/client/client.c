/* libevbus: the producer side of the wire format. One DEALER socket per
 * router (router_set.c); requests are kept, encoded, until acked so they can
 * be resent after a reconnect, or to another router. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/curve_keys.h"
#include "common/util.h"
#include "evbus.pb-c.h"
#include "evbus/evbus.h"
#include "router_set.h"

#define MAX_EVENTS_PER_PUBLISH 10000

typedef struct request {
    bool in_use;
    uint64_t id;
    unsigned char *frame;
    size_t frame_len;
    size_t n;
    int64_t first_sent_ms, last_sent_ms; /* first: when submitted */
    bool sent;           /* false while the socket refused it; retried every 20 ms */
    size_t router;       /* where it was last sent (or is waiting to be) */
    int64_t assigned_ms; /* when it was given to that router */
    evbus_ack_fn fn;
    void *arg;
    /* Synchronous requests: where the result goes instead of a callback. */
    bool is_sync, done;
    evbus_err sync_err;
    evbus_ack *sync_acks;
} request;

struct evbus_client {
    void *ctx;
    evbus__router_set routers;
    const char *answered_by; /* endpoint of the last router whose ack was delivered */
    evbus_client_opts opts;
    uint64_t next_id;
    request *reqs; /* max_in_flight + 1: one spare for a synchronous call */
    size_t nreqs;
    unsigned in_flight;
    /* The last synchronous ack stays unpacked until the next call, because
     * the caller's evbus_ack strings point into it. */
    Evbus__V1__Ack *sync_keep;
    evbus__uuid_gen uuids;
    char last_error[512];
};

void evbus_client_opts_init(evbus_client_opts *opts) {
    memset(opts, 0, sizeof *opts);
    opts->size = sizeof *opts;
    opts->timeout_ms = 30000;
    opts->resend_ms = 2000;
    opts->max_in_flight = 64;
    opts->policy = EVBUS_ROUTER_FAILOVER;
    opts->probe_ms = 1000;
}

evbus_err evbus_router_policy_parse(const char *name, evbus_router_policy *out) {
    if (!name || !out)
        return EVBUS_EINVAL;
    if (strcmp(name, "failover") == 0)
        *out = EVBUS_ROUTER_FAILOVER;
    else if (strcmp(name, "spread") == 0)
        *out = EVBUS_ROUTER_SPREAD;
    else
        return EVBUS_EINVAL;
    return EVBUS_OK;
}

const char *evbus_router_policy_name(evbus_router_policy policy) {
    switch (policy) {
    case EVBUS_ROUTER_FAILOVER: return "failover";
    case EVBUS_ROUTER_SPREAD: return "spread";
    }
    return "unknown";
}

const char *evbus_ack_status_name(evbus_ack_status status) {
    switch (status) {
    case EVBUS_ACK_ACCEPTED: return "accepted";
    case EVBUS_ACK_DUPLICATE: return "duplicate";
    case EVBUS_ACK_REJECTED: return "rejected";
    case EVBUS_ACK_RETRY_LATER: return "retry_later";
    }
    return "unknown";
}

/* All three CURVE keys or none, each 40 Z85 characters. */
static bool curve_keys_ok(const evbus_client_opts *o) {
    const char *k[3] = {o->curve_server_key, o->curve_public_key, o->curve_secret_key};
    if (!k[0] && !k[1] && !k[2])
        return true;
    for (int i = 0; i < 3; i++)
        if (!k[i] || !evbus__curve_key_decode(k[i], strlen(k[i]), NULL))
            return false;
    return zmq_has("curve");
}

evbus_err evbus_curve_keyfile_read(const char *path, char public_key[41], char secret_key[41],
                                   char *err, size_t errlen) {
    char buf[512];
    if (!path || !public_key || !secret_key)
        return EVBUS_EINVAL;
    evbus_err rc = evbus__curve_keyfile_read(path, public_key, secret_key, err ? err : buf,
                                             err ? errlen : sizeof buf);
    return rc;
}

evbus_err evbus_client_new(const char *endpoint, const evbus_client_opts *opts,
                           evbus_client_t **out) {
    if (!out)
        return EVBUS_EINVAL;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    if (opts) {
        /* Copy only what the caller's (possibly older, smaller) struct has. */
        size_t n = opts->size < sizeof o ? opts->size : sizeof o;
        if (n < sizeof(size_t))
            return EVBUS_EINVAL;
        memcpy(&o, opts, n);
        o.size = sizeof o;
    }
    if (o.timeout_ms <= 0 || o.resend_ms <= 0 || o.max_in_flight == 0 || o.max_in_flight > 65536 ||
        o.probe_ms <= 0 || (o.policy != EVBUS_ROUTER_FAILOVER && o.policy != EVBUS_ROUTER_SPREAD))
        return EVBUS_EINVAL;
    /* One endpoint or a list, never both: which would come first is a
     * question better not asked. */
    const char *const *endpoints = o.endpoints;
    size_t n_endpoints = o.n_endpoints;
    if (endpoint) {
        if (n_endpoints)
            return EVBUS_EINVAL;
        endpoints = &endpoint;
        n_endpoints = 1;
    }
    if (n_endpoints == 0 || n_endpoints > EVBUS_ROUTERS_MAX || !endpoints)
        return EVBUS_EINVAL;
    for (size_t i = 0; i < n_endpoints; i++)
        if (!endpoints[i])
            return EVBUS_EINVAL;
    if (!curve_keys_ok(&o))
        return EVBUS_EINVAL;
    evbus_client_t *c = calloc(1, sizeof *c);
    if (!c)
        return EVBUS_ENOMEM;
    c->opts = o;
    c->nreqs = (size_t)o.max_in_flight + 1;
    c->reqs = calloc(c->nreqs, sizeof *c->reqs);
    c->ctx = zmq_ctx_new();
    evbus_err rc = EVBUS_ENOMEM;
    if (!c->reqs || !c->ctx)
        goto fail;
    rc = evbus__router_set_open(&c->routers, c->ctx, endpoints, n_endpoints, &o);
    if (rc != EVBUS_OK)
        goto fail;
    /* The caller's strings are not kept. */
    c->opts.curve_server_key = c->opts.curve_public_key = c->opts.curve_secret_key = NULL;
    c->opts.endpoints = NULL;
    c->opts.n_endpoints = 0;
    c->answered_by = "";
    /* Request ids only need to be unique per connection; starting from the
     * clock keeps a restarted producer from reusing recent ones. */
    c->next_id = (uint64_t)evbus__now_wall_ms() << 16;
    evbus__uuid_gen_init(&c->uuids);
    *out = c;
    return EVBUS_OK;

fail:
    if (c->ctx)
        zmq_ctx_term(c->ctx);
    free(c->reqs);
    free(c);
    return rc;
}

static void finish(evbus_client_t *c, request *r, evbus_err err, const evbus_ack *acks, size_t n) {
    free(r->frame);
    r->frame = NULL;
    r->in_use = false;
    c->in_flight--;
    if (r->is_sync) {
        r->done = true;
        r->sync_err = err;
        return;
    }
    r->fn(r->arg, err, acks, n);
}

void evbus_client_destroy(evbus_client_t **cp) {
    if (!cp || !*cp)
        return;
    evbus_client_t *c = *cp;
    for (size_t i = 0; i < c->nreqs; i++)
        if (c->reqs[i].in_use)
            finish(c, &c->reqs[i], EVBUS_ECLOSED, NULL, 0);
    if (c->sync_keep)
        evbus__v1__ack__free_unpacked(c->sync_keep, NULL);
    evbus__router_set_close(&c->routers);
    zmq_ctx_term(c->ctx);
    free(c->reqs);
    free(c);
    *cp = NULL;
}

unsigned evbus_client_in_flight(const evbus_client_t *c) {
    return c ? c->in_flight : 0;
}

const char *evbus_client_last_error(const evbus_client_t *c) {
    return c ? c->last_error : "";
}

const char *evbus_client_ack_router(const evbus_client_t *c) {
    return c ? c->answered_by : "";
}

size_t evbus_client_router_count(const evbus_client_t *c) {
    return c ? c->routers.n : 0;
}

evbus_err evbus_client_router(const evbus_client_t *c, size_t i, evbus_router_info *info) {
    if (!c || !info || i >= c->routers.n || info->size < offsetof(evbus_router_info, changed_ms))
        return EVBUS_EINVAL;
    const evbus__router *r = &c->routers.r[i];
    evbus_router_info full = {.size = info->size,
                              .endpoint = r->endpoint,
                              .up = r->up,
                              .changed_ms = r->changed_wall_ms,
                              .requests_sent = r->requests_sent,
                              .answers = r->answers,
                              .region = r->region};
    memcpy(info, &full, info->size < sizeof full ? info->size : sizeof full);
    return EVBUS_OK;
}

static void try_send(evbus_client_t *c, request *r, int64_t now) {
    r->sent = evbus__router_set_send(&c->routers, r->router, r->frame, r->frame_len, now);
    r->last_sent_ms = now;
}

/* Gives a request to another router (or the same one when none is better)
 * and sends it there now. */
static void move_request(evbus_client_t *c, request *r, int64_t now) {
    r->router = evbus__router_set_pick(&c->routers, r->router);
    r->assigned_ms = now;
    try_send(c, r, now);
}

/* Encodes events into a Publish frame. Ids missing from the caller's events
 * are generated here, so that a resend carries the same ids. */
static evbus_err encode(evbus_client_t *c, const evbus_event *evs, size_t n, request *r) {
    evbus_err rc = EVBUS_ENOMEM;
    Evbus__V1__Event *pe = calloc(n, sizeof *pe);
    Evbus__V1__Event **pp = calloc(n, sizeof *pp);
    char(*ids)[37] = calloc(n, 37);
    size_t n_attrs = 0;
    for (size_t i = 0; i < n; i++)
        n_attrs += evs[i].n_attributes;
    Evbus__V1__Attribute *attrs = calloc(n_attrs ? n_attrs : 1, sizeof *attrs);
    Evbus__V1__Attribute **attr_ptrs = calloc(n_attrs ? n_attrs : 1, sizeof *attr_ptrs);
    if (!pe || !pp || !ids || !attrs || !attr_ptrs)
        goto out;
    rc = EVBUS_EINVAL;
    size_t ai = 0;
    for (size_t i = 0; i < n; i++) {
        const evbus_event *e = &evs[i];
        Evbus__V1__Event *p = &pe[i];
        evbus__v1__event__init(p);
        if ((e->n_resources && !e->resources) || (e->n_attributes && !e->attributes))
            goto out;
        if (e->id && e->id[0]) {
            p->id = (char *)e->id;
        } else {
            evbus__uuid_next(&c->uuids, ids[i]);
            p->id = ids[i];
        }
#define STR(field) (e->field ? (char *)e->field : (char *)"")
        p->source = STR(source);
        p->detail_type = STR(detail_type);
        p->detail = STR(detail);
        p->time = STR(time);
        p->partition_key = STR(partition_key);
        p->origin_region = STR(origin_region);
#undef STR
        p->resources = (char **)e->resources;
        p->n_resources = e->n_resources;
        p->attributes = attr_ptrs + ai;
        p->n_attributes = e->n_attributes;
        for (size_t j = 0; j < e->n_attributes; j++, ai++) {
            evbus__v1__attribute__init(&attrs[ai]);
            attrs[ai].key = (char *)(e->attributes[j].key ? e->attributes[j].key : "");
            attrs[ai].value = (char *)(e->attributes[j].value ? e->attributes[j].value : "");
            attr_ptrs[ai] = &attrs[ai];
        }
        pp[i] = p;
    }
    Evbus__V1__Publish pub = EVBUS__V1__PUBLISH__INIT;
    pub.request_id = c->next_id++;
    pub.events = pp;
    pub.n_events = n;
    pub.version = 1;
    r->frame_len = evbus__v1__publish__get_packed_size(&pub);
    r->frame = malloc(r->frame_len ? r->frame_len : 1);
    rc = EVBUS_ENOMEM;
    if (!r->frame)
        goto out;
    evbus__v1__publish__pack(&pub, r->frame);
    r->id = pub.request_id;
    r->n = n;
    rc = EVBUS_OK;
out:
    free(pe);
    free(pp);
    free(ids);
    free(attrs);
    free(attr_ptrs);
    return rc;
}

static request *find(evbus_client_t *c, uint64_t id) {
    for (size_t i = 0; i < c->nreqs; i++)
        if (c->reqs[i].in_use && c->reqs[i].id == id)
            return &c->reqs[i];
    return NULL;
}

/* Hands one received Ack to its request. Unknown request ids are answers to
 * an earlier send of a request that has completed since: ignored. */
static void handle_ack(evbus_client_t *c, size_t from, const void *data, size_t len) {
    Evbus__V1__Ack *ack = evbus__v1__ack__unpack(NULL, len, data);
    if (!ack)
        return;
    int64_t now = evbus__now_mono_ms();
    evbus__router_set_answered(&c->routers, from, now, ack->stopping,
                               ack->n_results ? ack->results[0]->region : NULL);
    request *r = find(c, ack->request_id);
    /* A router shutting down stored none of it: while another router is up,
     * the request goes there instead of coming back RETRY_LATER. An answer
     * to an earlier send, from a router the request has already left, is
     * not waited for. */
    if (r && ack->stopping && evbus__router_set_other_up(&c->routers, from)) {
        if (r->router == from)
            move_request(c, r, now);
        r = NULL;
    }
    if (!r) {
        evbus__v1__ack__free_unpacked(ack, NULL);
        return;
    }
    c->answered_by = c->routers.r[from].endpoint;
    if (ack->error && ack->error[0]) {
        snprintf(c->last_error, sizeof c->last_error, "%s", ack->error);
        finish(c, r, EVBUS_EREMOTE, NULL, 0);
        evbus__v1__ack__free_unpacked(ack, NULL);
        return;
    }
    if (ack->n_results != r->n) {
        snprintf(c->last_error, sizeof c->last_error, "router answered %zu results for %zu events",
                 ack->n_results, r->n);
        finish(c, r, EVBUS_EPROTO, NULL, 0);
        evbus__v1__ack__free_unpacked(ack, NULL);
        return;
    }
    evbus_ack stack_acks[64];
    evbus_ack *acks = r->is_sync   ? r->sync_acks
                      : r->n <= 64 ? stack_acks
                                   : malloc(r->n * sizeof *acks);
    if (!acks) {
        finish(c, r, EVBUS_ENOMEM, NULL, 0);
        evbus__v1__ack__free_unpacked(ack, NULL);
        return;
    }
    for (size_t i = 0; i < r->n; i++) {
        const Evbus__V1__EventAck *a = ack->results[i];
        acks[i].status = (evbus_ack_status)a->status;
        acks[i].sequence = a->sequence;
        acks[i].event_id = a->event_id;
        acks[i].reason = a->reason;
        acks[i].region = a->region;
    }
    bool sync = r->is_sync;
    finish(c, r, EVBUS_OK, acks, r->n);
    if (sync) {
        if (c->sync_keep)
            evbus__v1__ack__free_unpacked(c->sync_keep, NULL);
        c->sync_keep = ack;
        return;
    }
    if (acks != stack_acks)
        free(acks);
    evbus__v1__ack__free_unpacked(ack, NULL);
}

/* Resends what is due and expires what is past its deadline. A request
 * left unanswered for resend_ms by a router that has answered nothing for
 * resend_ms takes that router down; requests held by a router that is down
 * move to one that is up. Returns the soonest time something will be due,
 * for the poll timeout. */
static int64_t run_timers(evbus_client_t *c, int64_t now) {
    int64_t next = now + c->opts.resend_ms;
    bool several = c->routers.n > 1;
    for (size_t i = 0; i < c->nreqs; i++) {
        request *r = &c->reqs[i];
        if (!r->in_use)
            continue;
        if (now - r->first_sent_ms >= c->opts.timeout_ms) {
            finish(c, r, EVBUS_ETIMEDOUT, NULL, 0);
            continue;
        }
        evbus__router *rt = &c->routers.r[r->router];
        /* resend_ms of silence is the verdict on a router: a request it
         * holds is overdue and it has answered nothing for resend_ms; before
         * a send, a socket that has refused every send (with several routers
         * it queues nothing while not connected). Not "nothing since this
         * request was sent": a pipelining producer's router answers earlier
         * requests after later ones went out, right up to the moment it
         * hangs; that rule resent to the hung router first and left it only
         * at twice resend_ms. */
        bool overdue = r->sent ? now - r->last_sent_ms >= c->opts.resend_ms
                               : now - r->assigned_ms >= c->opts.resend_ms;
        bool silent = now - rt->last_answer_ms >= c->opts.resend_ms;
        if (r->sent ? overdue && silent
                    : rt->refused_since_ms && now - rt->refused_since_ms >= c->opts.resend_ms)
            evbus__router_set_silent(&c->routers, r->router, now, c->opts.resend_ms);
        /* An overdue request whose router answered since it was sent, but
         * not since it became due, waits for the verdict (at most resend_ms
         * after that answer) instead of being resent to the same router:
         * a router answering again proves it alive, and the request lost,
         * and then it is resent; silence moves it elsewhere. */
        int64_t verdict = rt->last_answer_ms + c->opts.resend_ms;
        bool await_verdict = r->sent && overdue && rt->up && !silent &&
                             rt->last_answer_ms < r->last_sent_ms + c->opts.resend_ms &&
                             !(several && c->routers.policy == EVBUS_ROUTER_SPREAD);
        if (several && !rt->up && evbus__router_set_other_up(&c->routers, r->router)) {
            move_request(c, r, now);
        } else if (await_verdict) {
            if (verdict < next)
                next = verdict;
            continue;
        } else if (overdue) {
            /* spread: another router; failover: the first one up */
            if (several && (c->routers.policy == EVBUS_ROUTER_SPREAD || !rt->up))
                move_request(c, r, now);
            else
                try_send(c, r, now);
        } else if (!r->sent && r->last_sent_ms + 20 <= now) {
            try_send(c, r, now);
        }
        int64_t due = r->sent ? r->last_sent_ms + c->opts.resend_ms : now + 20;
        if (due < next)
            next = due;
    }
    int64_t probe = evbus__router_set_probe(&c->routers, now, &c->next_id);
    return probe < next ? probe : next;
}

static evbus_err recv_available(evbus_client_t *c) {
    /* Connection news first: a router whose connection dropped is down
     * before run_timers() looks at the requests it holds. */
    evbus__router_set_read_monitors(&c->routers, evbus__now_mono_ms());
    for (size_t i = 0; i < c->routers.n; i++) {
        for (;;) {
            zmq_msg_t msg;
            zmq_msg_init(&msg);
            if (zmq_msg_recv(&msg, c->routers.r[i].sock, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&msg);
                if (errno == EAGAIN || errno == EINTR)
                    break;
                return EVBUS_EZMQ;
            }
            handle_ack(c, i, zmq_msg_data(&msg), zmq_msg_size(&msg));
            zmq_msg_close(&msg);
        }
    }
    return EVBUS_OK;
}

/* Waits for acks until `until` (monotonic ms, -1: until `stop` says so). */
static evbus_err wait_for(evbus_client_t *c, int64_t until, bool (*stop)(void *), void *arg) {
    for (;;) {
        evbus_err rc = recv_available(c);
        if (rc)
            return rc;
        int64_t now = evbus__now_mono_ms();
        int64_t next = run_timers(c, now);
        if (stop(arg))
            return EVBUS_OK;
        if (until >= 0 && now >= until)
            return EVBUS_ETIMEDOUT;
        int64_t wake = until >= 0 && until < next ? until : next;
        long wait = (long)(wake - now);
        zmq_pollitem_t items[2 * EVBUS_ROUTERS_MAX];
        int n_items = evbus__router_set_poll_items(&c->routers, items);
        if (zmq_poll(items, n_items, wait < 0 ? 0 : wait) < 0 && errno != EINTR)
            return EVBUS_EZMQ;
    }
}

static request *free_slot(evbus_client_t *c) {
    for (size_t i = 0; i < c->nreqs; i++)
        if (!c->reqs[i].in_use)
            return &c->reqs[i];
    return NULL;
}

static bool has_room(void *arg) {
    evbus_client_t *c = arg;
    return c->in_flight < c->opts.max_in_flight;
}

static bool sync_done(void *arg) {
    return ((request *)arg)->done;
}

static bool all_done(void *arg) {
    return ((evbus_client_t *)arg)->in_flight == 0;
}

static evbus_err submit(evbus_client_t *c, const evbus_event *evs, size_t n, request **out) {
    request *r = free_slot(c);
    if (!r)
        return EVBUS_EAGAIN;
    memset(r, 0, sizeof *r);
    evbus_err rc = encode(c, evs, n, r);
    if (rc)
        return rc;
    r->in_use = true;
    c->in_flight++;
    int64_t now = evbus__now_mono_ms();
    r->first_sent_ms = now;
    r->router = evbus__router_set_pick(&c->routers, SIZE_MAX);
    r->assigned_ms = now;
    try_send(c, r, now);
    *out = r;
    return EVBUS_OK;
}

evbus_err evbus_publish(evbus_client_t *c, const evbus_event *evs, size_t n, evbus_ack *acks) {
    if (!c || !evs || !acks || n == 0 || n > MAX_EVENTS_PER_PUBLISH)
        return EVBUS_EINVAL;
    c->last_error[0] = '\0';
    if (c->sync_keep) {
        evbus__v1__ack__free_unpacked(c->sync_keep, NULL);
        c->sync_keep = NULL;
    }
    request *r;
    evbus_err rc = submit(c, evs, n, &r);
    if (rc)
        return rc;
    r->is_sync = true;
    r->sync_acks = acks;
    rc = wait_for(c, -1, sync_done, r);
    if (rc)
        return rc;
    return r->sync_err;
}

evbus_err evbus_publish_async(evbus_client_t *c, const evbus_event *evs, size_t n, evbus_ack_fn fn,
                              void *arg) {
    if (!c || !evs || !fn || n == 0 || n > MAX_EVENTS_PER_PUBLISH)
        return EVBUS_EINVAL;
    if (!has_room(c)) {
        evbus_err rc = wait_for(c, evbus__now_mono_ms() + c->opts.timeout_ms, has_room, c);
        if (rc)
            return rc;
    }
    request *r;
    evbus_err rc = submit(c, evs, n, &r);
    if (rc)
        return rc;
    r->fn = fn;
    r->arg = arg;
    return EVBUS_OK;
}

typedef struct progress {
    evbus_client_t *c;
    unsigned start;
} progress;

static bool any_completed(void *arg) {
    progress *p = arg;
    return p->c->in_flight < p->start || p->c->in_flight == 0;
}

evbus_err evbus_client_poll(evbus_client_t *c, int timeout_ms) {
    if (!c)
        return EVBUS_EINVAL;
    progress p = {c, c->in_flight};
    int64_t until = timeout_ms < 0 ? -1 : evbus__now_mono_ms() + timeout_ms;
    evbus_err rc = wait_for(c, until, any_completed, &p);
    return rc == EVBUS_ETIMEDOUT ? EVBUS_OK : rc;
}

evbus_err evbus_client_flush(evbus_client_t *c, int timeout_ms) {
    if (!c)
        return EVBUS_EINVAL;
    int64_t until = timeout_ms < 0 ? -1 : evbus__now_mono_ms() + timeout_ms;
    return wait_for(c, until, all_done, c);
}
