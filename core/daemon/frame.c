#include "frame.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_check.h"
#include "proto_encode.h"
#include "publish_decode.h"
#include "validate.h"

/* Raw NUL bytes. protobuf-c's structs hold every string field as a
 * NUL-terminated char * without its length, so "nul\0a" would become "nul"
 * for everything downstream (validation, dedup, the stored record). The
 * decoder (publish_decode.c) notes, for each event, the first string field
 * holding a raw NUL; such an event is refused, so for every event that is
 * accepted each C string's length is exactly the length that was sent, and
 * what is stored is what was sent. */

Evbus__V1__Publish *evbus__frame_decode(const evbus__config *cfg, ProtobufCAllocator *alloc,
                                        const void *data, size_t len, uint64_t *request_id,
                                        evbus__wire_check **checks, char *err, size_t errlen) {
    if (len > cfg->max_request_bytes) {
        snprintf(err, errlen, "request is %zu bytes; the limit is %llu (ingest.max_request_bytes)",
                 len, (unsigned long long)cfg->max_request_bytes);
        return NULL;
    }
    evbus__wire_check *c = NULL;
    Evbus__V1__Publish *pub = evbus__publish_decode(alloc, data, len, &c);
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
        *checks = c;
        return pub;
    }
    alloc->free(alloc->allocator_data, c);
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

/* Whether the event's id can go back in EventAck.event_id, a proto3 string:
 * strict decoders (Python's protobuf) refuse a whole Ack, and so the answers
 * to every other event of the request, over one string that is not UTF-8;
 * and an id with a NUL would come back cut short, naming another event. */
static bool id_returnable(const Evbus__V1__Event *ev, const evbus__wire_check *check) {
    if (check && strcmp(check->nul_field, "id") == 0)
        return false;
    return evbus__utf8_valid(ev->id, strlen(ev->id)); /* NUL-free: see above */
}

int evbus__event_prepare(const evbus__config *cfg, const Evbus__V1__Event *ev,
                         const evbus__wire_check *check, evbus__uuid_gen *ids, int64_t now_ms,
                         const char *now_text, char gen_id[37], Evbus__V1__Event *filled,
                         evbus__bytes *out, size_t *off, size_t *len, char *why, size_t whylen) {
    *filled = *ev;
    int bad = 0;
    if (check && check->nul_field[0]) {
        snprintf(why, whylen,
                 "%s contains a NUL byte (at byte %zu); text fields must not contain raw NUL "
                 "bytes (a JSON detail may escape one as \\u0000)",
                 check->nul_field, check->nul_at);
        bad = 1;
    } else {
        bad = evbus__event_validate(ev, cfg->max_event_size, why, whylen) != 0;
    }
    if (bad) {
        /* Ids are checked first, so `why` is then about the id. */
        if (!id_returnable(ev, check)) {
            filled->id = "";
            size_t n = strlen(why);
            snprintf(why + n, whylen - n,
                     "; this answer names the event by its index in the request");
        }
        return 1;
    }
    if (!filled->id[0]) {
        evbus__uuid_next(ids, gen_id);
        filled->id = gen_id;
    }
    if (!filled->time[0])
        filled->time = (char *)now_text;
    if (!filled->origin_region[0])
        filled->origin_region = cfg->region;
    filled->accepted_ms = (uint64_t)now_ms;
    *off = out->len;
    return evbus__event_encode(filled, out, len);
}
