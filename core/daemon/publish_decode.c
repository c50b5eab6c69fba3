/* evbus.v1.Publish decoded by hand into protobuf-c's structs
 * (publish_decode.h). The rules below are protobuf-c 1.4's, so that a frame
 * means the same whichever decoder reads it:
 *  - a tag is at most 5 bytes, and one whose first byte carries no field
 *    number bits and no continuation is refused;
 *  - except that field number 0 is refused in every form: protobuf-c keeps
 *    a tag of 0 spelled in two bytes as an unknown field, then packs it into
 *    the stored record as the one byte 0, which no reader takes back (the
 *    record could never be delivered). The walk this decoder replaces
 *    refused such frames too;
 *  - a varint is at most 10 bytes (bits past 64 dropped; a uint32 field keeps
 *    the low 32), a length prefix at most 5 bytes and at most INT_MAX;
 *  - wire types 3 and 4 (groups), 6 and 7 are refused;
 *  - a known field sent with another wire type than its own refuses the
 *    whole message; a singular field sent twice keeps the last value; an
 *    unknown field is kept, as its raw bytes after the tag;
 *  - every field of a message is scanned before any is decoded, so a
 *    malformed field anywhere refuses the message. */
#include "publish_decode.h"

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define WIRE_VARINT  0
#define WIRE_FIXED64 1
#define WIRE_LEN     2
#define WIRE_FIXED32 5

/* One field as scanned. */
typedef struct field {
    uint32_t number;
    unsigned type;
    uint64_t varint;           /* WIRE_VARINT */
    const unsigned char *data; /* WIRE_LEN: the payload */
    size_t len;
    const unsigned char *raw; /* everything after the tag, as kept for an unknown field */
    size_t raw_len;
} field;

typedef struct reader {
    const unsigned char *p, *end;
} reader;

/* Reads the next field. Returns 1, 0 at the end, -1 when malformed. */
static int next_field(reader *r, field *f) {
    if (r->p >= r->end)
        return 0;
    size_t rem = (size_t)(r->end - r->p);
    const unsigned char *p = r->p;
    if ((p[0] & 0xf8) == 0)
        return -1;
    uint32_t tag = (uint32_t)(p[0] & 0x7f) >> 3;
    size_t used = 1;
    if (p[0] & 0x80) {
        size_t max = rem > 5 ? 5 : rem;
        unsigned shift = 4;
        for (;; used++) {
            if (used >= max)
                return -1;
            tag |= (uint32_t)(p[used] & 0x7f) << shift;
            shift += 7;
            if (!(p[used] & 0x80)) {
                used++;
                break;
            }
        }
    }
    if (tag == 0)
        return -1; /* see the top of this file */
    f->number = tag;
    f->type = p[0] & 7;
    p += used;
    rem -= used;
    f->raw = p;
    switch (f->type) {
    case WIRE_VARINT: {
        size_t max = rem < 10 ? rem : 10, i = 0;
        uint64_t v = 0;
        for (; i < max; i++) {
            v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
            if (!(p[i] & 0x80))
                break;
        }
        if (i == max)
            return -1;
        f->varint = v;
        f->raw_len = i + 1;
        break;
    }
    case WIRE_FIXED64:
        if (rem < 8)
            return -1;
        f->raw_len = 8;
        break;
    case WIRE_FIXED32:
        if (rem < 4)
            return -1;
        f->raw_len = 4;
        break;
    case WIRE_LEN: {
        size_t max = rem < 5 ? rem : 5, i = 0, v = 0;
        for (; i < max; i++) {
            v |= (size_t)(p[i] & 0x7f) << (7 * i);
            if (!(p[i] & 0x80))
                break;
        }
        if (i == max || v > INT_MAX || i + 1 + v > rem)
            return -1;
        f->data = p + i + 1;
        f->len = v;
        f->raw_len = i + 1 + v;
        break;
    }
    default: return -1;
    }
    r->p = p + f->raw_len;
    return 1;
}

static void *get(ProtobufCAllocator *a, size_t n) {
    return a->alloc(a->allocator_data, n ? n : 1);
}

/* The string field's bytes as a NUL-terminated copy. */
static char *copy_string(ProtobufCAllocator *a, const field *f) {
    char *s = get(a, f->len + 1);
    if (s) {
        memcpy(s, f->data, f->len);
        s[f->len] = '\0';
    }
    return s;
}

/* Sets a singular string field to the field's bytes; a value sent earlier
 * for it goes, as in protobuf-c (the last one sent counts). */
static bool set_string(ProtobufCAllocator *a, char **dst, const field *f) {
    char *s = f->type == WIRE_LEN ? copy_string(a, f) : NULL;
    if (!s)
        return false;
    if (*dst != protobuf_c_empty_string)
        a->free(a->allocator_data, *dst);
    *dst = s;
    return true;
}

/* Keeps an unknown field, as protobuf-c does: its tag, wire type and the raw
 * bytes after the tag. */
static bool keep_unknown(ProtobufCAllocator *a, ProtobufCMessage *m, const field *f) {
    ProtobufCMessageUnknownField *u = &m->unknown_fields[m->n_unknown_fields];
    u->tag = f->number;
    u->wire_type = (ProtobufCWireType)f->type;
    u->len = f->raw_len;
    u->data = get(a, f->raw_len);
    if (!u->data)
        return false;
    memcpy(u->data, f->raw, f->raw_len);
    m->n_unknown_fields++;
    return true;
}

static bool alloc_unknown(ProtobufCAllocator *a, ProtobufCMessage *m, size_t n) {
    if (!n)
        return true;
    m->unknown_fields = get(a, n * sizeof *m->unknown_fields);
    return m->unknown_fields != NULL;
}

/* Scans a whole message: -1 when malformed; else counts the occurrences of
 * the field numbers in `numbers` (n of them) into counts[], and of the
 * numbers `known` does not name into *unknown. */
static int scan(const unsigned char *data, size_t len, const uint32_t *numbers, size_t n,
                size_t *counts, uint64_t known, size_t *unknown) {
    reader r = {data, data + len};
    field f;
    int rc;
    *unknown = 0;
    for (size_t i = 0; i < n; i++)
        counts[i] = 0;
    while ((rc = next_field(&r, &f)) == 1) {
        if (f.number >= 64 || !(known >> f.number & 1)) {
            (*unknown)++;
            continue;
        }
        for (size_t i = 0; i < n; i++)
            counts[i] += f.number == numbers[i];
    }
    return rc;
}

/* Records a raw NUL in string field `name` (prefix.name) of one event, by
 * the rule of publish_decode.h: the first in wire order, the id always. */
static void note_nul(evbus__wire_check *c, const field *f, const char *prefix, const char *name,
                     bool is_id) {
    const unsigned char *z = memchr(f->data, 0, f->len);
    if (!c || !z || (c->nul_field[0] && !is_id))
        return;
    snprintf(c->nul_field, sizeof c->nul_field, "%s%s", prefix, name);
    c->nul_at = (size_t)(z - f->data);
}

/* Attribute: key = 1, value = 2. */
static Evbus__V1__Attribute *decode_attribute(ProtobufCAllocator *a, const field *outer,
                                              evbus__wire_check *c) {
    size_t unknown, none;
    if (scan(outer->data, outer->len, NULL, 0, &none, (1u << 1) | (1u << 2), &unknown) < 0)
        return NULL;
    Evbus__V1__Attribute *m = get(a, sizeof *m);
    if (!m)
        return NULL;
    *m = (Evbus__V1__Attribute)EVBUS__V1__ATTRIBUTE__INIT;
    if (!alloc_unknown(a, &m->base, unknown))
        goto fail;
    reader r = {outer->data, outer->data + outer->len};
    field f;
    while (next_field(&r, &f) == 1) {
        char **dst = f.number == 1 ? &m->key : f.number == 2 ? &m->value : NULL;
        if (!dst) {
            if (!keep_unknown(a, &m->base, &f))
                goto fail;
            continue;
        }
        if (!set_string(a, dst, &f))
            goto fail;
        note_nul(c, &f, "attributes.", f.number == 1 ? "key" : "value", false);
    }
    return m;
fail:
    /* Counts only ever cover what is in place, so protobuf-c can free it. */
    evbus__v1__attribute__free_unpacked(m, a);
    return NULL;
}

/* The singular string fields of Event, by number (1..9; 6 and 8 are
 * repeated), and their names as the checks give them. */
static char **event_string(Evbus__V1__Event *e, uint32_t number, const char **name) {
    switch (number) {
    case 1: *name = "id"; return &e->id;
    case 2: *name = "source"; return &e->source;
    case 3: *name = "detail_type"; return &e->detail_type;
    case 4: *name = "detail"; return &e->detail;
    case 5: *name = "time"; return &e->time;
    case 7: *name = "partition_key"; return &e->partition_key;
    case 9: *name = "origin_region"; return &e->origin_region;
    default: return NULL;
    }
}

#define EVENT_KNOWN ((uint64_t)0x3fe | ((uint64_t)1 << 15)) /* 1..9 and 15 */

static Evbus__V1__Event *decode_event(ProtobufCAllocator *a, const field *outer,
                                      evbus__wire_check *c) {
    static const uint32_t repeated[2] = {6, 8};
    size_t counts[2], unknown;
    if (scan(outer->data, outer->len, repeated, 2, counts, EVENT_KNOWN, &unknown) < 0)
        return NULL;
    Evbus__V1__Event *e = get(a, sizeof *e);
    if (!e)
        return NULL;
    *e = (Evbus__V1__Event)EVBUS__V1__EVENT__INIT;
    if (!alloc_unknown(a, &e->base, unknown) ||
        (counts[0] && !(e->resources = get(a, counts[0] * sizeof *e->resources))) ||
        (counts[1] && !(e->attributes = get(a, counts[1] * sizeof *e->attributes))))
        goto fail;
    reader r = {outer->data, outer->data + outer->len};
    field f;
    while (next_field(&r, &f) == 1) {
        const char *name = NULL;
        char **dst = event_string(e, f.number, &name);
        if (dst) {
            if (!set_string(a, dst, &f))
                goto fail;
            note_nul(c, &f, "", name, f.number == 1);
        } else if (f.number == 6) {
            char *s = f.type == WIRE_LEN ? copy_string(a, &f) : NULL;
            if (!s)
                goto fail;
            e->resources[e->n_resources++] = s;
            note_nul(c, &f, "", "resources", false);
        } else if (f.number == 8) {
            Evbus__V1__Attribute *at = f.type == WIRE_LEN ? decode_attribute(a, &f, c) : NULL;
            if (!at)
                goto fail;
            e->attributes[e->n_attributes++] = at;
        } else if (f.number == 15) {
            if (f.type != WIRE_VARINT)
                goto fail;
            e->accepted_ms = f.varint;
        } else if (!keep_unknown(a, &e->base, &f)) {
            goto fail;
        }
    }
    return e;
fail:
    evbus__v1__event__free_unpacked(e, a);
    return NULL;
}

Evbus__V1__Publish *evbus__publish_decode(ProtobufCAllocator *alloc, const void *data, size_t len,
                                          evbus__wire_check **checks) {
    static const uint32_t repeated[1] = {2};
    size_t n_events, unknown;
    const unsigned char *bytes = data;
    if (scan(bytes, len, repeated, 1, &n_events, (1u << 1) | (1u << 2) | (1u << 3), &unknown) < 0)
        return NULL;
    Evbus__V1__Publish *pub = get(alloc, sizeof *pub);
    if (!pub)
        return NULL;
    *pub = (Evbus__V1__Publish)EVBUS__V1__PUBLISH__INIT;
    evbus__wire_check *c = NULL;
    if (checks) {
        c = get(alloc, (n_events ? n_events : 1) * sizeof *c);
        if (!c)
            goto fail;
        memset(c, 0, (n_events ? n_events : 1) * sizeof *c);
    }
    if (!alloc_unknown(alloc, &pub->base, unknown) ||
        (n_events && !(pub->events = get(alloc, n_events * sizeof *pub->events))))
        goto fail;
    reader r = {bytes, bytes + len};
    field f;
    while (next_field(&r, &f) == 1) {
        if (f.number == 1 || f.number == 3) {
            if (f.type != WIRE_VARINT)
                goto fail;
            if (f.number == 1)
                pub->request_id = f.varint;
            else
                pub->version = (uint32_t)f.varint;
        } else if (f.number == 2) {
            Evbus__V1__Event *e =
                f.type == WIRE_LEN ? decode_event(alloc, &f, c ? &c[pub->n_events] : NULL) : NULL;
            if (!e)
                goto fail;
            pub->events[pub->n_events++] = e;
        } else if (!keep_unknown(alloc, &pub->base, &f)) {
            goto fail;
        }
    }
    if (checks)
        *checks = c;
    return pub;
fail:
    if (c)
        alloc->free(alloc->allocator_data, c);
    evbus__v1__publish__free_unpacked(pub, alloc);
    return NULL;
}
