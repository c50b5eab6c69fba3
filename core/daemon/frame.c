#include "frame.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/json_check.h"
#include "validate.h"
#include "wire.h"

/* Raw NUL bytes. protobuf-c decodes every string field into a NUL-terminated
 * char * and drops its length, so "nul\0a" would become "nul" for everything
 * downstream (validation, dedup, the stored record). Rather than fork the
 * generated types or decode strings as bytes, the frame's bytes are walked
 * once more (cheap next to the decode itself) and every string field, found
 * by the generated descriptors so that fields added later are covered too, is
 * searched for a NUL. An event with one is refused, so for every event that
 * is accepted each C string's length is exactly the length that was sent, and
 * what is stored is what was sent. */

/* Deepest message nesting followed: Event > Attribute (evbus.proto has no
 * recursive messages; the bound only keeps a future one from recursing
 * without end). */
#define NUL_SCAN_MAX_DEPTH 4

/* Searches the string fields of the message data[0..len), described by desc,
 * and of its sub-messages for a raw NUL byte; `prefix` names the enclosing
 * fields ("attributes."). The first one found is recorded in *c, except that
 * the event's own id, named in its ack, takes precedence. Returns 0, or -1
 * when the bytes are not a well-formed message. */
static int find_nul(const ProtobufCMessageDescriptor *desc, const unsigned char *data, size_t len,
                    const char *prefix, int depth, evbus__wire_check *c) {
    evbus__wire w;
    evbus__wire_field f;
    int rc;
    evbus__wire_init(&w, data, len);
    while ((rc = evbus__wire_next(&w, &f)) == 1) {
        if (f.type != EVBUS_WIRE_LEN)
            continue;
        /* Unknown fields are kept as bytes and never read as text. */
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(desc, f.number);
        if (!fd)
            continue;
        if (fd->type == PROTOBUF_C_TYPE_STRING) {
            const unsigned char *z = memchr(f.data, 0, f.len);
            bool is_id = depth == 0 && strcmp(fd->name, "id") == 0;
            if (z && (!c->nul_field[0] || is_id)) {
                snprintf(c->nul_field, sizeof c->nul_field, "%s%s", prefix, fd->name);
                c->nul_at = (size_t)(z - f.data);
            }
        } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE && depth < NUL_SCAN_MAX_DEPTH) {
            char sub[sizeof c->nul_field];
            snprintf(sub, sizeof sub, "%s%s.", prefix, fd->name);
            if (find_nul(fd->descriptor, f.data, f.len, sub, depth + 1, c))
                return -1;
        }
    }
    return rc;
}

/* Fills one check per event of the Publish data[0..len), which protobuf-c
 * decoded into n_events events. Returns 0, or -1 when the walk disagrees
 * with protobuf-c (then nothing of the frame is trusted). */
static int check_events(const unsigned char *data, size_t len, evbus__wire_check *checks,
                        size_t n_events) {
    const ProtobufCFieldDescriptor *events =
        protobuf_c_message_descriptor_get_field_by_name(&evbus__v1__publish__descriptor, "events");
    evbus__wire w;
    evbus__wire_field f;
    size_t k = 0;
    int rc;
    evbus__wire_init(&w, data, len);
    while ((rc = evbus__wire_next(&w, &f)) == 1) {
        if (f.number != events->id || f.type != EVBUS_WIRE_LEN)
            continue;
        if (k == n_events)
            return -1;
        memset(&checks[k], 0, sizeof checks[k]);
        if (find_nul(events->descriptor, f.data, f.len, "", 0, &checks[k]))
            return -1;
        k++;
    }
    return rc < 0 || k != n_events ? -1 : 0;
}

Evbus__V1__Publish *evbus__frame_decode(const evbus__config *cfg, ProtobufCAllocator *alloc,
                                        const void *data, size_t len, uint64_t *request_id,
                                        evbus__wire_check **checks, char *err, size_t errlen) {
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
        evbus__wire_check *c =
            alloc->alloc(alloc->allocator_data, (pub->n_events ? pub->n_events : 1) * sizeof *c);
        if (!c) {
            snprintf(err, errlen, "evbusd is out of memory; send again later");
        } else if (check_events(data, len, c, pub->n_events)) {
            alloc->free(alloc->allocator_data, c);
            snprintf(err, errlen,
                     "frame is not a serialized evbus.v1.Publish (%zu bytes could not be read "
                     "field by field)",
                     len);
        } else {
            *checks = c;
            return pub;
        }
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
    size_t n = evbus__v1__event__get_packed_size(filled);
    if (evbus__bytes_reserve(out, n))
        return -1;
    evbus__v1__event__pack(filled, out->data + out->len);
    *off = out->len;
    *len = n;
    out->len += n;
    return 0;
}
