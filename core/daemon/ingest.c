#include "ingest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/arena.h"
#include "common/log.h"
#include "common/util.h"
#include "evbus.pb-c.h"
#include "validate.h"

/* Most requests taken in one drain, so that one burst of tiny requests cannot
 * make a commit (and the acks waiting for it) arbitrarily late. */
#define DRAIN_MAX_REQUESTS 4096
#define WIRE_VERSION       1
#define NO_ITEM            ((size_t)-1)

typedef struct request {
    zmq_msg_t identity;
    bool delimited; /* REQ-style empty frame between identity and payload */
    uint64_t request_id;
    Evbus__V1__Publish *pub; /* NULL when the whole request is refused */
    const char *error;       /* whole-request refusal, static or in err_buf */
    char err_buf[160];
    size_t first_slot, n_slots;
} request;

/* One event of a drain, from validation to its ack. */
typedef struct slot {
    Evbus__V1__AckStatus status; /* set when decided without the store */
    const char *reason;          /* static, or owned when reason_owned */
    bool reason_owned;
    size_t item;             /* index in items when handed to the store */
    size_t rec_off, rec_len; /* the encoded record in the record buffer */
    const char *id;          /* points into the request or gen_id */
    char gen_id[37];
} slot;

struct evbus__ingest {
    const evbus__config *cfg;
    evbus__store *store;
    void *sock;
    evbus__ingest_counters counters;
    request *reqs;
    size_t reqs_cap;
    slot *slots;
    size_t slots_cap;
    evbus__store_item *items;
    size_t items_cap;
    unsigned char *recbuf;
    size_t recbuf_len, recbuf_cap;
    Evbus__V1__EventAck *acks;
    Evbus__V1__EventAck **ack_ptrs;
    size_t acks_cap, ack_ptrs_cap;
    int64_t last_drop_log_ms;
    evbus__uuid_gen uuids;
    /* Decoded requests live in this arena until their drain is acked. */
    evbus__arena arena;
    ProtobufCAllocator pb_alloc;
};

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

evbus_err evbus__ingest_new(const evbus__config *cfg, evbus__store *store, void *zctx,
                            evbus__ingest **out, char *err, size_t errlen) {
    evbus__ingest *ing = calloc(1, sizeof *ing);
    if (!ing)
        return EVBUS_ENOMEM;
    ing->cfg = cfg;
    ing->store = store;
    evbus__arena_init(&ing->arena, 1 << 20);
    evbus__uuid_gen_init(&ing->uuids);
    ing->pb_alloc.alloc = arena_alloc;
    ing->pb_alloc.free = arena_free;
    ing->pb_alloc.allocator_data = &ing->arena;
    ing->sock = zmq_socket(zctx, ZMQ_ROUTER);
    if (!ing->sock) {
        snprintf(err, errlen, "cannot create ingest socket: %s", zmq_strerror(errno));
        free(ing);
        return EVBUS_EZMQ;
    }
    /* An ack must never vanish silently: with ROUTER_MANDATORY a reply to a
     * peer that is gone fails with EHOSTUNREACH instead of being dropped, and
     * one to a full pipe waits up to ack_send_timeout, and is then counted
     * and logged. */
    int one = 1, hwm = 100000, linger = 2000, sndtimeo = (int)cfg->ack_send_timeout_ms;
    int64_t maxmsg = (int64_t)cfg->max_request_bytes + 4096;
    zmq_setsockopt(ing->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(ing->sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ing->sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(ing->sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(ing->sock, ZMQ_SNDTIMEO, &sndtimeo, sizeof sndtimeo);
    /* Frames far above the limit are cut off by ZeroMQ itself (the peer is
     * disconnected); frames just above it get a clear error ack. */
    maxmsg = maxmsg * 2;
    zmq_setsockopt(ing->sock, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    for (size_t i = 0; i < cfg->listen.n; i++) {
        if (zmq_bind(ing->sock, cfg->listen.v[i]) != 0) {
            snprintf(err, errlen, "%s: ingest.listen: cannot bind %s: %s", cfg->path,
                     cfg->listen.v[i], zmq_strerror(errno));
            zmq_close(ing->sock);
            free(ing);
            return EVBUS_EZMQ;
        }
    }
    *out = ing;
    return EVBUS_OK;
}

void evbus__ingest_destroy(evbus__ingest **ingp) {
    if (!ingp || !*ingp)
        return;
    evbus__ingest *ing = *ingp;
    zmq_close(ing->sock);
    free(ing->reqs);
    free(ing->slots);
    free(ing->items);
    free(ing->recbuf);
    free(ing->acks);
    free(ing->ack_ptrs);
    evbus__arena_destroy(&ing->arena);
    free(ing);
    *ingp = NULL;
}

void evbus__ingest_counters_get(const evbus__ingest *ing, evbus__ingest_counters *out) {
    *out = ing->counters;
}

__attribute__((format(printf, 2, 3))) static void refuse(request *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err_buf, sizeof r->err_buf, fmt, ap);
    va_end(ap);
    r->error = r->err_buf;
}

/* Receives one multipart message into r. Returns 1 when a request was read,
 * 0 when none is waiting, -1 on a socket error. Frame-level problems do not
 * fail: they become a refusal in r->error. */
static int recv_request(evbus__ingest *ing, request *r) {
    memset(r, 0, sizeof *r);
    zmq_msg_init(&r->identity);
    if (zmq_msg_recv(&r->identity, ing->sock, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&r->identity);
        return errno == EAGAIN || errno == EINTR ? 0 : -1;
    }
    /* Read every remaining frame, keeping the last one as the payload;
     * anything but [empty delimiter] payload is refused. */
    zmq_msg_t frames[3];
    int nframes = 0, extra = 0;
    while (zmq_msg_more(nframes ? &frames[nframes - 1] : &r->identity)) {
        zmq_msg_t *f = nframes < 3 ? &frames[nframes] : &frames[2];
        if (nframes >= 3) {
            zmq_msg_close(f);
            extra++;
        }
        zmq_msg_init(f);
        if (zmq_msg_recv(f, ing->sock, 0) < 0)
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
    ing->counters.requests++;
    if (!payload) {
        refuse(r, "expected one frame (a serialized evbus.v1.Publish) after the identity, got %d",
               nframes + extra);
    } else if (zmq_msg_size(payload) > ing->cfg->max_request_bytes) {
        refuse(r, "request is %zu bytes; the limit is %llu (ingest.max_request_bytes)",
               zmq_msg_size(payload), (unsigned long long)ing->cfg->max_request_bytes);
    } else {
        r->pub = evbus__v1__publish__unpack(&ing->pb_alloc, zmq_msg_size(payload),
                                            zmq_msg_data(payload));
        if (!r->pub) {
            refuse(r, "frame is not a serialized evbus.v1.Publish (%zu bytes could not be decoded)",
                   zmq_msg_size(payload));
        } else {
            r->request_id = r->pub->request_id;
            if (r->pub->version > WIRE_VERSION) {
                refuse(r, "wire format version %u is not supported; this evbusd speaks %d",
                       r->pub->version, WIRE_VERSION);
            } else if (r->pub->n_events > ing->cfg->max_events_per_request) {
                refuse(r,
                       "request has %zu events; the limit is %llu (ingest.max_events_per_request)",
                       r->pub->n_events, (unsigned long long)ing->cfg->max_events_per_request);
            }
            if (r->error)
                r->pub = NULL; /* its memory goes with the arena */
        }
    }
    if (r->error)
        ing->counters.bad_frames++;
    for (int i = 0; i < nframes; i++)
        zmq_msg_close(&frames[i]);
    return 1;
}

/* Validates the events of one request, fills in what the producer may leave
 * out, and encodes each acceptable event as the record the store keeps. */
static int prepare_events(evbus__ingest *ing, request *r, const char *now_text) {
    for (size_t i = 0; i < r->n_slots; i++) {
        slot *s = &ing->slots[r->first_slot + i];
        Evbus__V1__Event *ev = r->pub->events[i];
        memset(s, 0, sizeof *s);
        s->item = NO_ITEM;
        char why[256];
        if (evbus__event_validate(ev, ing->cfg->max_event_size, why, sizeof why)) {
            s->status = EVBUS__V1__ACK_STATUS__REJECTED;
            s->reason = strdup(why);
            s->reason_owned = s->reason != NULL;
            if (!s->reason)
                s->reason = "rejected (out of memory describing why)";
            s->id = ev->id;
            continue;
        }
        /* Encode a shallow copy with the defaults filled in, so that the
         * decoded request stays as it came. */
        Evbus__V1__Event copy = *ev;
        if (!copy.id[0]) {
            evbus__uuid_next(&ing->uuids, s->gen_id);
            copy.id = s->gen_id;
        }
        if (!copy.time[0])
            copy.time = (char *)now_text;
        if (!copy.origin_region[0])
            copy.origin_region = ing->cfg->region;
        s->id = copy.id;
        size_t len = evbus__v1__event__get_packed_size(&copy);
        if (grow((void **)&ing->recbuf, &ing->recbuf_cap, ing->recbuf_len + len, 1))
            return -1;
        evbus__v1__event__pack(&copy, ing->recbuf + ing->recbuf_len);
        s->rec_off = ing->recbuf_len;
        s->rec_len = len;
        ing->recbuf_len += len;
        s->status = EVBUS__V1__ACK_STATUS__ACK_STATUS_UNSPECIFIED;
    }
    return 0;
}

static const char *outcome_reason(evbus__store_outcome o) {
    switch (o) {
    case EVBUS__FULL:
        return "storage full: storage.map_size is reached; send again later (delivery frees "
               "space, or raise storage.map_size)";
    case EVBUS__BACKLOG:
        return "backlog limit reached (storage.max_backlog events are waiting); send again later";
    default: return "";
    }
}

static void send_ack(evbus__ingest *ing, request *r) {
    Evbus__V1__Ack ack = EVBUS__V1__ACK__INIT;
    ack.request_id = r->request_id;
    ack.version = WIRE_VERSION;
    if (r->error) {
        ack.error = (char *)r->error;
    } else {
        if (grow((void **)&ing->acks, &ing->acks_cap, r->n_slots, sizeof *ing->acks) ||
            grow((void **)&ing->ack_ptrs, &ing->ack_ptrs_cap, r->n_slots, sizeof *ing->ack_ptrs)) {
            ack.error = "evbusd is out of memory; send again later";
        } else {
            {
                for (size_t i = 0; i < r->n_slots; i++) {
                    const slot *s = &ing->slots[r->first_slot + i];
                    Evbus__V1__EventAck *a = &ing->acks[i];
                    evbus__v1__event_ack__init(a);
                    a->status = s->status;
                    a->event_id = (char *)s->id;
                    a->reason = (char *)(s->reason ? s->reason : "");
                    a->region = ing->cfg->region;
                    if (s->item != NO_ITEM) {
                        const evbus__store_item *it = &ing->items[s->item];
                        a->sequence = it->seq;
                    }
                    ing->ack_ptrs[i] = a;
                }
                ack.results = ing->ack_ptrs;
                ack.n_results = r->n_slots;
            }
        }
    }
    zmq_msg_t msg;
    size_t len = evbus__v1__ack__get_packed_size(&ack);
    if (zmq_msg_init_size(&msg, len) != 0)
        return;
    evbus__v1__ack__pack(&ack, zmq_msg_data(&msg));
    int rc = zmq_msg_send(&r->identity, ing->sock, ZMQ_SNDMORE);
    if (rc >= 0 && r->delimited)
        rc = zmq_send(ing->sock, "", 0, ZMQ_SNDMORE);
    if (rc >= 0)
        rc = zmq_msg_send(&msg, ing->sock, 0);
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

static void release(evbus__ingest *ing, request *reqs, size_t n) {
    for (size_t i = 0; i < n; i++) {
        request *r = &reqs[i];
        for (size_t j = 0; j < r->n_slots; j++) {
            slot *s = &ing->slots[r->first_slot + j];
            if (s->reason_owned)
                free((void *)s->reason);
        }
        zmq_msg_close(&r->identity);
    }
    evbus__arena_reset(&ing->arena);
}

/* Reads what is waiting (bounded), commits it in one transaction, acks it.
 * Returns the number of requests handled, or -1 when the store failed. When
 * `closing`, waiting requests are answered RETRY_LATER instead of stored. */
static int drain_once(evbus__ingest *ing, bool closing) {
    size_t nreq = 0, nslots = 0;
    int64_t now_ms = evbus__now_wall_ms();
    char now_text[21];
    evbus__format_time(now_ms, now_text);
    ing->recbuf_len = 0;

    while (nreq < DRAIN_MAX_REQUESTS && nslots < ing->cfg->commit_max_events) {
        if (grow((void **)&ing->reqs, &ing->reqs_cap, nreq + 1, sizeof *ing->reqs))
            break;
        request *r = &ing->reqs[nreq];
        int got = recv_request(ing, r);
        if (got <= 0)
            break;
        nreq++;
        if (!r->pub)
            continue;
        r->n_slots = r->pub->n_events;
        r->first_slot = nslots;
        if (grow((void **)&ing->slots, &ing->slots_cap, nslots + r->n_slots, sizeof *ing->slots)) {
            r->error = "evbusd is out of memory; send again later";
            r->pub = NULL;
            r->n_slots = 0;
            continue;
        }
        nslots += r->n_slots;
        size_t first = r->first_slot;
        if (prepare_events(ing, r, now_text)) {
            r->error = "evbusd is out of memory; send again later";
            r->n_slots = 0;
            nslots = first;
        }
        r->first_slot = first;
    }
    if (nreq == 0)
        return 0;

    /* Lay out the store items in slot order. */
    size_t nitems = 0;
    if (grow((void **)&ing->items, &ing->items_cap, nslots, sizeof *ing->items) == 0) {
        for (size_t i = 0; i < nreq; i++) {
            request *r = &ing->reqs[i];
            for (size_t j = 0; j < r->n_slots; j++) {
                slot *s = &ing->slots[r->first_slot + j];
                if (s->status != EVBUS__V1__ACK_STATUS__ACK_STATUS_UNSPECIFIED)
                    continue;
                if (closing) {
                    s->status = EVBUS__V1__ACK_STATUS__RETRY_LATER;
                    s->reason = "evbusd is shutting down; send again later";
                    continue;
                }
                evbus__store_item *it = &ing->items[nitems];
                it->id = s->id;
                it->id_len = strlen(s->id);
                it->record = ing->recbuf + s->rec_off;
                it->record_len = s->rec_len;
                s->item = nitems++;
            }
        }
    }

    int result = (int)nreq;
    if (nitems > 0) {
        int64_t expire_before = now_ms - ing->cfg->dedup_window_ms;
        if (evbus__store_append(ing->store, ing->items, nitems, now_ms, expire_before,
                                ing->cfg->max_backlog) != EVBUS_OK) {
            /* Nothing of this drain is durable: no ack may say otherwise. */
            release(ing, ing->reqs, nreq);
            return -1;
        }
        ing->counters.commits++;
    }
    for (size_t i = 0; i < nreq; i++) {
        request *r = &ing->reqs[i];
        for (size_t j = 0; j < r->n_slots; j++) {
            slot *s = &ing->slots[r->first_slot + j];
            if (s->item != NO_ITEM && s->status == EVBUS__V1__ACK_STATUS__ACK_STATUS_UNSPECIFIED) {
                evbus__store_outcome o = ing->items[s->item].outcome;
                s->status = o == EVBUS__STORED      ? EVBUS__V1__ACK_STATUS__ACCEPTED
                            : o == EVBUS__DUPLICATE ? EVBUS__V1__ACK_STATUS__DUPLICATE
                                                    : EVBUS__V1__ACK_STATUS__RETRY_LATER;
                s->reason = outcome_reason(o);
            } else if (s->status == EVBUS__V1__ACK_STATUS__ACK_STATUS_UNSPECIFIED) {
                s->status = EVBUS__V1__ACK_STATUS__RETRY_LATER;
                s->reason = "evbusd is out of memory; send again later";
            }
            switch (s->status) {
            case EVBUS__V1__ACK_STATUS__ACCEPTED: ing->counters.accepted++; break;
            case EVBUS__V1__ACK_STATUS__DUPLICATE: ing->counters.duplicates++; break;
            case EVBUS__V1__ACK_STATUS__REJECTED: ing->counters.rejected++; break;
            default: ing->counters.retry_later++; break;
            }
        }
        send_ack(ing, r);
    }
    release(ing, ing->reqs, nreq);
    return result;
}

evbus_err evbus__ingest_run(evbus__ingest *ing, volatile sig_atomic_t *stop) {
    zmq_pollitem_t item = {ing->sock, 0, ZMQ_POLLIN, 0};
    while (!*stop) {
        int rc = zmq_poll(&item, 1, 200);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            EVBUS_LOG_E("ingest", "poll failed: %s", zmq_strerror(errno));
            return EVBUS_EZMQ;
        }
        while (!*stop) {
            int n = drain_once(ing, false);
            if (n < 0)
                return EVBUS_ESTORE;
            if (n == 0)
                break;
        }
    }
    /* Stop accepting new connections, then answer what is already queued so
     * no producer waits for a timeout to learn it should send again. */
    for (size_t i = 0; i < ing->cfg->listen.n; i++)
        zmq_unbind(ing->sock, ing->cfg->listen.v[i]);
    int answered = 0, n;
    while ((n = drain_once(ing, true)) > 0)
        answered += n;
    if (answered)
        EVBUS_LOG_I("ingest", "answered %d queued request(s) with RETRY_LATER while stopping",
                    answered);
    return EVBUS_OK;
}
