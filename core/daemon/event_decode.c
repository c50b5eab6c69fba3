#include "event_decode.h"

#include <stdint.h>
#include <string.h>

/* The wire format as Event uses it (wire.c reads any message, slower): a
 * field is a varint tag (number << 3 | type), then a varint, or a varint
 * length and that many bytes; 64- and 32-bit fields are skipped. */
typedef struct reader {
    const unsigned char *p, *end;
} reader;

/* A varint of at most ten bytes; most are one (tags, short lengths). */
static inline int varint(reader *r, uint64_t *out) {
    if (r->p < r->end && *r->p < 0x80) {
        *out = *r->p++;
        return 0;
    }
    uint64_t v = 0;
    for (int shift = 0; shift < 70; shift += 7) {
        if (r->p >= r->end)
            return -1;
        unsigned char b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 0;
        }
    }
    return -1;
}

typedef struct field {
    uint64_t number;
    unsigned type;
    uint64_t value;            /* a varint's */
    const unsigned char *data; /* a length-delimited field's bytes */
    size_t len;
} field;

/* The next field: 1, 0 at the end, -1 when malformed (as wire.c says). */
static int next(reader *r, field *f) {
    if (r->p >= r->end)
        return 0;
    uint64_t tag, len;
    if (varint(r, &tag) || (tag >> 3) == 0)
        return -1;
    f->number = tag >> 3;
    f->type = (unsigned)(tag & 7);
    switch (f->type) {
    case 0: return varint(r, &f->value) ? -1 : 1;
    case 1: len = 8; break;
    case 5: len = 4; break;
    case 2:
        if (varint(r, &len))
            return -1;
        break;
    default: return -1; /* groups are not used by evbus.proto; 6 and 7 do not exist */
    }
    if (len > (uint64_t)(r->end - r->p))
        return -1;
    f->data = r->p;
    f->len = (size_t)len;
    r->p += len;
    return 1;
}

static char *text(evbus__arena *a, const field *f) {
    return evbus__arena_strdup(a, (const char *)f->data, f->len);
}

/* Key (1) and value (2) of one Attribute message. */
static Evbus__V1__Attribute *attribute(evbus__arena *a, const field *outer) {
    Evbus__V1__Attribute *at = evbus__arena_alloc(a, sizeof *at);
    if (!at)
        return NULL;
    *at = (Evbus__V1__Attribute)EVBUS__V1__ATTRIBUTE__INIT; /* absent strings: "" */
    reader r = {outer->data, outer->data + outer->len};
    field f;
    int rc;
    while ((rc = next(&r, &f)) == 1) {
        if (f.number != 1 && f.number != 2)
            continue;
        if (f.type != 2)
            return NULL;
        char *s = text(a, &f);
        if (!s)
            return NULL;
        *(f.number == 1 ? &at->key : &at->value) = s;
    }
    return rc == 0 ? at : NULL;
}

Evbus__V1__Event *evbus__event_decode(evbus__arena *a, const void *data, size_t len) {
    const unsigned char *bytes = data;
    field f;
    int rc;
    /* First pass: the repeated fields' counts, and well-formedness. */
    size_t n_res = 0, n_attr = 0;
    reader r = {bytes, bytes + len};
    while ((rc = next(&r, &f)) == 1) {
        if (f.number == 15 ? f.type != 0 : f.number >= 1 && f.number <= 9 && f.type != 2)
            return NULL; /* a known field of another type: protobuf-c refuses it too */
        n_res += f.number == 6;
        n_attr += f.number == 8;
    }
    if (rc != 0)
        return NULL;
    Evbus__V1__Event *ev = evbus__arena_alloc(a, sizeof *ev);
    if (!ev)
        return NULL;
    *ev = (Evbus__V1__Event)EVBUS__V1__EVENT__INIT; /* absent strings: "" */
    if (n_res && !(ev->resources = evbus__arena_alloc(a, n_res * sizeof *ev->resources)))
        return NULL;
    if (n_attr && !(ev->attributes = evbus__arena_alloc(a, n_attr * sizeof *ev->attributes)))
        return NULL;
    r = (reader){bytes, bytes + len};
    while (next(&r, &f) == 1) {
        char **dst = NULL;
        switch (f.number) {
        case 1: dst = &ev->id; break;
        case 2: dst = &ev->source; break;
        case 3: dst = &ev->detail_type; break;
        case 4: dst = &ev->detail; break;
        case 5: dst = &ev->time; break;
        case 6: dst = &ev->resources[ev->n_resources++]; break;
        case 7: dst = &ev->partition_key; break;
        case 9: dst = &ev->origin_region; break;
        case 8:
            if (!(ev->attributes[ev->n_attributes++] = attribute(a, &f)))
                return NULL;
            continue;
        case 15: ev->accepted_ms = f.value; continue;
        default: continue; /* unknown: skipped */
        }
        if (!(*dst = text(a, &f)))
            return NULL;
    }
    return ev;
}
