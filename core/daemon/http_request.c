/* One HTTP PutEvents request's life: who sent it (SigV4), what it says
 * (http_putevents.h), handing it to the ingest loop as a Publish, and its
 * answer from the ingest's ack. See http_ingest.h. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zmq.h>

#include "common/log.h"
#include "evbus.pb-c.h"
#include "frame.h"
#include "http_internal.h"
#include "sigv4_verify.h"

#define MAX_HEADERS  64
#define CONTENT_TYPE "application/x-amz-json-1.1"

static const char *region_of(const evbus__http_ingest *h) {
    return h->cfg->region;
}

/* An answer with the headers every response has: the JSON 1.1 type, a
 * request id, and the region whose evbusd processes the events. */
static struct MHD_Response *respond(evbus__http_ingest *h, char *body, size_t len) {
    struct MHD_Response *r = MHD_create_response_from_buffer(
        len, body, body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!r) {
        free(body);
        return NULL;
    }
    char id[37];
    evbus__uuid_next(&h->uuids, id);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, CONTENT_TYPE);
    MHD_add_response_header(r, "x-amzn-RequestId", id);
    MHD_add_response_header(r, "X-Evbus-Region", region_of(h));
    return r;
}

/* Sets req's answer to an AWS JSON 1.1 error (also named in
 * X-Amzn-ErrorType, which some SDKs read first). */
void evbus__http_set_error(evbus__http_ingest *h, evbus__http_request *req, unsigned status,
                           const char *type, const char *message) {
    EVBUS__HTTP_COUNT(h, requests);
    if (status == MHD_HTTP_FORBIDDEN)
        EVBUS__HTTP_COUNT(h, refused_signature);
    else if (strcmp(type, "ValidationException") == 0)
        EVBUS__HTTP_COUNT(h, validation);
    else if (strcmp(type, "RequestEntityTooLargeException") == 0)
        EVBUS__HTTP_COUNT(h, too_large);
    else if (strcmp(type, "UnknownOperationException") == 0)
        EVBUS__HTTP_COUNT(h, unknown_operation);
    else if (strcmp(type, "ThrottlingException") == 0)
        EVBUS__HTTP_COUNT(h, throttled);
    else
        EVBUS__HTTP_COUNT(h, internal);
    size_t len = 0;
    char *body = evbus__putevents_error_body(type, message, &len);
    req->resp = respond(h, body, len);
    if (req->resp)
        MHD_add_response_header(req->resp, "X-Amzn-ErrorType", type);
    req->status = status;
    req->phase = EVBUS__HTTP_ANSWERED;
}

static void set_results(evbus__http_ingest *h, evbus__http_request *req) {
    size_t len = 0;
    char *body = evbus__putevents_encode(req->results, req->pe.n, &len);
    if (!body) {
        evbus__http_set_error(h, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "InternalFailure",
                              "evbusd is out of memory; send again later");
        return;
    }
    size_t failed = 0;
    for (size_t i = 0; i < req->pe.n; i++)
        failed += req->results[i].code != NULL;
    EVBUS__HTTP_COUNT(h, requests);
    atomic_fetch_add_explicit(&h->count->entries_failed, failed, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->count->entries_stored, req->pe.n - failed, memory_order_relaxed);
    req->resp = respond(h, body, len);
    req->status = MHD_HTTP_OK;
    req->phase = EVBUS__HTTP_ANSWERED;
}

/* Spares kept, and the largest body buffer a spare keeps (a large request
 * should not pin its buffer for ever). */
#define MAX_SPARES     256
#define MAX_SPARE_BODY (64 * 1024)

evbus__http_request *evbus__http_request_get(evbus__http_ingest *h) {
    evbus__http_request *req = h->spares;
    if (!req)
        return calloc(1, sizeof *req);
    h->spares = req->next_spare;
    h->n_spares--;
    char *body = req->body;
    size_t cap = req->cap;
    memset(req, 0, offsetof(evbus__http_request, pe));
    req->body = body;
    req->cap = cap;
    return req;
}

static void request_free(evbus__http_request *req) {
    free(req->body);
    free(req);
}

void evbus__http_request_put(evbus__http_ingest *h, evbus__http_request *req) {
    if (!req)
        return;
    for (size_t i = 0; i < EVBUS__PUTEVENTS_MAX; i++) {
        free(req->reasons[i]);
        req->reasons[i] = NULL;
    }
    evbus__putevents_clear(&req->pe);
    if (req->resp)
        MHD_destroy_response(req->resp);
    req->resp = NULL;
    if (h->n_spares >= MAX_SPARES) {
        request_free(req);
        return;
    }
    if (req->cap > MAX_SPARE_BODY) {
        free(req->body);
        req->body = NULL;
        req->cap = 0;
    }
    req->next_spare = h->spares;
    h->spares = req;
    h->n_spares++;
}

void evbus__http_requests_free(evbus__http_ingest *h) {
    while (h->spares) {
        evbus__http_request *req = h->spares;
        h->spares = req->next_spare;
        request_free(req);
    }
    h->n_spares = 0;
}

/* --- SigV4 ------------------------------------------------------------ */

typedef struct headers {
    evbus__sigv4_header v[MAX_HEADERS];
    size_t n;
    bool overflow;
} headers;

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                      const char *value) {
    (void)kind;
    headers *hs = cls;
    if (hs->n == MAX_HEADERS) {
        hs->overflow = true;
        return MHD_NO;
    }
    hs->v[hs->n].name = key;
    hs->v[hs->n].value = value ? value : "";
    hs->n++;
    return MHD_YES;
}

static const char *find_secret(void *arg, const char *key_id, size_t len, const void **who) {
    const evbus__http_key *k = evbus__http_keys_find(arg, key_id, len);
    *who = k;
    return k ? k->secret : NULL;
}

/* Checks who sent req. Returns true with *key set (NULL: unsigned, allowed),
 * or false with req answered. */
static bool authenticate(evbus__http_ingest *h, evbus__http_request *req,
                         const evbus__http_key **key) {
    *key = NULL;
    headers hs = {.n = 0};
    MHD_get_connection_values(req->mc, MHD_HEADER_KIND, collect_header, &hs);
    bool has_auth = false;
    for (size_t i = 0; i < hs.n; i++)
        has_auth |= strcasecmp(hs.v[i].name, "authorization") == 0;
    /* Unsigned requests pass with allow_unsigned; signed ones are checked
     * when there are keys to check them with (without, an SDK's signature
     * made with any key passes, which is what local development needs). */
    if (h->cfg->http_allow_unsigned && (!has_auth || !h->cfg->http_credentials))
        return true;
    if (hs.overflow) {
        evbus__http_set_error(h, req, MHD_HTTP_BAD_REQUEST, "IncompleteSignature",
                              "more than 64 headers: evbusd cannot check the signature");
        return false;
    }
    evbus__sigv4_request sr = {.method = "POST",
                               .canonical_uri = "/",
                               .canonical_query = "",
                               .headers = hs.v,
                               .n_headers = hs.n,
                               .body = req->body ? req->body : "",
                               .body_len = req->len};
    char why[512], region[64];
    const void *who = NULL;
    evbus__sigv4_result rc =
        evbus__sigv4_verify(&sr, "events", (int64_t)time(NULL), find_secret, &h->keys, &who, region,
                            sizeof region, why, sizeof why);
    if (rc == EVBUS__SIGV4_OK) {
        *key = who;
        return true;
    }
    /* Every refusal is a 403 (the producer's credentials or clock, not the
     * request, must change); the type is the one AWS gives each case. */
    static const char *const types[] = {
        [EVBUS__SIGV4_MISSING] = "MissingAuthenticationTokenException",
        [EVBUS__SIGV4_INCOMPLETE] = "IncompleteSignatureException",
        [EVBUS__SIGV4_UNKNOWN_KEY] = "UnrecognizedClientException",
        [EVBUS__SIGV4_MISMATCH] = "InvalidSignatureException",
        [EVBUS__SIGV4_EXPIRED] = "InvalidSignatureException",
    };
    evbus__http_set_error(h, req, MHD_HTTP_FORBIDDEN, types[rc], why);
    int64_t second = evbus__now_mono_ms() / 1000;
    if (second != h->log_second) {
        h->log_second = second;
        h->log_lines = 0;
    }
    if (h->log_lines++ < 5)
        EVBUS_LOG_W("http", "refused a request (%s): %s", types[rc], why);
    return false;
}

/* --- Handing requests to the ingest ----------------------------------- */

static void take_slot(evbus__http_ingest *h, evbus__http_request *req) {
    req->slot = h->free_slots[--h->n_free];
    h->slots[req->slot].req = req;
}

void evbus__http_give_slot(evbus__http_ingest *h, evbus__http_request *req) {
    evbus__http_slot *s = &h->slots[req->slot];
    s->req = NULL;
    s->gen++;
    h->free_slots[h->n_free++] = req->slot;
}

/* Marks entries whose source the key may not publish, as EventBridge's
 * resource policies would. */
static void check_sources(evbus__http_request *req, const evbus__http_key *key) {
    for (size_t i = 0; key && i < req->pe.n; i++) {
        if (req->results[i].code || evbus__principal_allows(&key->who, req->pe.events[i].source))
            continue;
        req->results[i].code = "NotAuthorizedForSourceException";
        req->results[i].message = "this access key may not publish events of this source "
                                  "(its source limits in ingest.http.credentials)";
    }
}

/* Sends the entries not answered yet as one Publish. Returns false when
 * there were none (the request can be answered at once) or with req
 * answered on a failure. */
static bool submit(evbus__http_ingest *h, evbus__http_request *req) {
    Evbus__V1__Event *evs[EVBUS__PUTEVENTS_MAX];
    size_t n = 0;
    for (size_t i = 0; i < req->pe.n; i++) {
        req->sent_as[i] = -1;
        if (req->results[i].code)
            continue;
        req->sent_as[i] = (int)n;
        evs[n++] = &req->pe.events[i];
    }
    if (n == 0)
        return false;
    if (h->n_free == 0) {
        evbus__http_set_error(h, req, MHD_HTTP_BAD_REQUEST, "ThrottlingException",
                              "evbusd has too many requests in flight; send again later");
        return true;
    }
    take_slot(h, req);
    Evbus__V1__Publish pub = EVBUS__V1__PUBLISH__INIT;
    pub.request_id = ((uint64_t)h->slots[req->slot].gen << 32) | req->slot;
    pub.version = EVBUS_WIRE_VERSION;
    pub.events = evs;
    pub.n_events = n;
    zmq_msg_t msg;
    size_t size = evbus__v1__publish__get_packed_size(&pub);
    if (zmq_msg_init_size(&msg, size) != 0) {
        evbus__http_give_slot(h, req);
        evbus__http_set_error(h, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "InternalFailure",
                              "evbusd is out of memory; send again later");
        return true;
    }
    evbus__v1__publish__pack(&pub, zmq_msg_data(&msg));
    if (zmq_msg_send(&msg, h->dealer, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        evbus__http_give_slot(h, req);
        evbus__http_set_error(h, req, MHD_HTTP_BAD_REQUEST, "ThrottlingException",
                              "evbusd's ingest queue is full; send again later");
        return true;
    }
    req->phase = EVBUS__HTTP_WAITING;
    MHD_suspend_connection(req->mc);
    return true;
}

/* The request's body is in: check, decode, and hand it over (or answer). */
void evbus__http_request_process(evbus__http_ingest *h, evbus__http_request *req) {
    if (req->too_large) {
        char why[160];
        snprintf(why, sizeof why,
                 "the request is larger than ingest.max_request_bytes (%llu bytes)",
                 (unsigned long long)h->cfg->max_request_bytes);
        evbus__http_set_error(h, req, MHD_HTTP_CONTENT_TOO_LARGE, "RequestEntityTooLargeException",
                              why);
        return;
    }
    const evbus__http_key *key;
    if (!authenticate(h, req, &key))
        return;
    char why[512];
    if (!evbus__putevents_decode(req->body, req->len, &req->pe, why, sizeof why)) {
        evbus__http_set_error(h, req, MHD_HTTP_BAD_REQUEST, "ValidationException", why);
        return;
    }
    memcpy(req->results, req->pe.early, sizeof req->results);
    check_sources(req, key);
    if (!submit(h, req))
        set_results(h, req);
}

/* An ack from the ingest: the request's answer. */
static void take_ack(evbus__http_ingest *h, const void *data, size_t len) {
    Evbus__V1__Ack *ack = evbus__v1__ack__unpack(NULL, len, data);
    if (!ack)
        return;
    uint32_t s = (uint32_t)ack->request_id, gen = (uint32_t)(ack->request_id >> 32);
    evbus__http_request *req = s < h->n_slots && h->slots[s].gen == gen ? h->slots[s].req : NULL;
    if (!req) {
        evbus__v1__ack__free_unpacked(ack, NULL);
        return;
    }
    evbus__http_give_slot(h, req);
    if (ack->error && ack->error[0]) {
        evbus__http_set_error(h, req, MHD_HTTP_INTERNAL_SERVER_ERROR, "InternalFailure",
                              ack->error);
    } else {
        for (size_t i = 0; i < req->pe.n; i++) {
            int k = req->sent_as[i];
            if (k < 0)
                continue;
            evbus__putevents_result *r = &req->results[i];
            if ((size_t)k >= ack->n_results) {
                r->code = "InternalFailure";
                r->message = "evbusd gave no answer for this entry; send it again";
                continue;
            }
            evbus__putevents_result_of(ack->results[k], r);
            /* Copied by hand: snprintf here was a visible part of each ack. */
            const char *id = r->event_id ? r->event_id : "";
            size_t n = strnlen(id, sizeof req->ids[i] - 1);
            memcpy(req->ids[i], id, n);
            req->ids[i][n] = '\0';
            r->event_id = req->ids[i];
            if (r->code) {
                req->reasons[i] = strdup(r->message ? r->message : "");
                r->message = req->reasons[i] ? req->reasons[i] : "";
            }
        }
        set_results(h, req);
    }
    evbus__v1__ack__free_unpacked(ack, NULL);
    MHD_resume_connection(req->mc);
}

void evbus__http_take_acks(evbus__http_ingest *h) {
    for (;;) {
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, h->dealer, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        take_ack(h, zmq_msg_data(&msg), zmq_msg_size(&msg));
        zmq_msg_close(&msg);
    }
}

json_t *evbus__http_counters_status(const evbus__http_counters *c) {
#define GET(x) (json_int_t) atomic_load_explicit(&c->x, memory_order_relaxed)
    return json_pack("{s:I, s:I, s:I, s:I, s:{s:I, s:I, s:I, s:I, s:I, s:I, s:I}, s:I}", "requests",
                     GET(requests), "entries_stored", GET(entries_stored), "entries_failed",
                     GET(entries_failed), "refused_signature", GET(refused_signature), "errors",
                     "validation", GET(validation), "too_large", GET(too_large),
                     "unknown_operation", GET(unknown_operation), "throttled", GET(throttled),
                     "internal", GET(internal), "truncated", GET(truncated), "timed_out",
                     GET(timed_out), "key_reloads", GET(key_reloads));
#undef GET
}
