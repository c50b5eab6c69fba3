#include "frame.h"

#include <stdio.h>
#include <stdlib.h>

#include "validate.h"

Evbus__V1__Publish *evbus__frame_decode(const evbus__config *cfg, ProtobufCAllocator *alloc,
                                        const void *data, size_t len, uint64_t *request_id,
                                        char *err, size_t errlen) {
    if (len > cfg->max_request_bytes) {
        snprintf(err, errlen, "request is %zu bytes; the limit is %llu (ingest.max_request_bytes)",
                 len, (unsigned long long)cfg->max_request_bytes);
        return NULL;
    }
    Evbus__V1__Publish *pub = evbus__v1__publish__unpack(alloc, len, data);
    if (!pub) {
        snprintf(err, errlen,
                 "frame is not a serialized evbus.v1.Publish (%zu bytes could not be decoded)",
                 len);
        return NULL;
    }
    *request_id = pub->request_id;
    if (pub->version > EVBUS_WIRE_VERSION) {
        snprintf(err, errlen, "wire format version %u is not supported; this evbusd speaks %d",
                 pub->version, EVBUS_WIRE_VERSION);
    } else if (pub->n_events > cfg->max_events_per_request) {
        snprintf(err, errlen,
                 "request has %zu events; the limit is %llu (ingest.max_events_per_request)",
                 pub->n_events, (unsigned long long)cfg->max_events_per_request);
    } else {
        return pub;
    }
    evbus__v1__publish__free_unpacked(pub, alloc);
    return NULL;
}

int evbus__bytes_reserve(evbus__bytes *b, size_t more) {
    if (b->len + more <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64 * 1024;
    while (cap < b->len + more)
        cap *= 2;
    unsigned char *d = realloc(b->data, cap);
    if (!d)
        return -1;
    b->data = d;
    b->cap = cap;
    return 0;
}

int evbus__event_prepare(const evbus__config *cfg, const Evbus__V1__Event *ev, evbus__uuid_gen *ids,
                         int64_t now_ms, const char *now_text, char gen_id[37],
                         Evbus__V1__Event *filled, evbus__bytes *out, size_t *off, size_t *len,
                         char *why, size_t whylen) {
    *filled = *ev;
    if (evbus__event_validate(ev, cfg->max_event_size, why, whylen))
        return 1;
    if (!filled->id[0]) {
        evbus__uuid_next(ids, gen_id);
        filled->id = gen_id;
    }
    if (!filled->time[0])
        filled->time = (char *)now_text;
    if (!filled->origin_region[0])
        filled->origin_region = cfg->region;
    filled->accepted_ms = (uint64_t)now_ms;
    size_t n = evbus__v1__event__get_packed_size(filled);
    if (evbus__bytes_reserve(out, n))
        return -1;
    evbus__v1__event__pack(filled, out->data + out->len);
    *off = out->len;
    *len = n;
    out->len += n;
    return 0;
}
