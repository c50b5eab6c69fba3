/* An event's stored record and an Ack, byte for byte as protobuf-c packs
 * them (proto_encode.h). */
#include "proto_encode.h"

#include <stdint.h>
#include <string.h>

/* Singular string fields of Event, in number order with accepted_ms (15)
 * after the last of them. 6 (resources) and 8 (attributes) are repeated. */
enum { N_STRINGS = 7 };
static const unsigned char STRING_NUMBER[N_STRINGS] = {1, 2, 3, 4, 5, 7, 9};

static size_t varint_size(uint64_t v) {
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static unsigned char *put_varint(unsigned char *p, uint64_t v) {
    while (v >= 0x80) {
        *p++ = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    *p++ = (unsigned char)v;
    return p;
}

/* A length-delimited field with a one-byte tag (numbers below 16). */
static unsigned char *put_bytes(unsigned char *p, unsigned number, const void *s, size_t len) {
    *p++ = (unsigned char)(number << 3 | 2);
    p = put_varint(p, len);
    memcpy(p, s, len);
    return p + len;
}

static size_t bytes_size(size_t len) {
    return 1 + varint_size(len) + len;
}

static size_t unknown_size(const ProtobufCMessage *m) {
    size_t n = 0;
    for (unsigned i = 0; i < m->n_unknown_fields; i++)
        n += varint_size((uint64_t)m->unknown_fields[i].tag << 3) + m->unknown_fields[i].len;
    return n;
}

static unsigned char *put_unknown(unsigned char *p, const ProtobufCMessage *m) {
    for (unsigned i = 0; i < m->n_unknown_fields; i++) {
        const ProtobufCMessageUnknownField *u = &m->unknown_fields[i];
        p = put_varint(p, (uint64_t)u->tag << 3 | (unsigned)u->wire_type);
        memcpy(p, u->data, u->len);
        p += u->len;
    }
    return p;
}

static size_t attribute_size(const Evbus__V1__Attribute *a, size_t *key, size_t *value) {
    *key = strlen(a->key);
    *value = strlen(a->value);
    return (*key ? bytes_size(*key) : 0) + (*value ? bytes_size(*value) : 0) +
           unknown_size(&a->base);
}

int evbus__event_encode(const Evbus__V1__Event *e, evbus__bytes *out, size_t *len) {
    const char *s[N_STRINGS] = {e->id,   e->source,        e->detail_type,  e->detail,
                                e->time, e->partition_key, e->origin_region};
    size_t slen[N_STRINGS], n = 0;
    for (int i = 0; i < N_STRINGS; i++) {
        slen[i] = strlen(s[i]);
        n += slen[i] ? bytes_size(slen[i]) : 0;
    }
    for (size_t i = 0; i < e->n_resources; i++)
        n += bytes_size(strlen(e->resources[i]));
    for (size_t i = 0; i < e->n_attributes; i++) {
        size_t k, v;
        n += bytes_size(attribute_size(e->attributes[i], &k, &v));
    }
    if (e->accepted_ms)
        n += 1 + varint_size(e->accepted_ms);
    n += unknown_size(&e->base);
    *len = n;
    if (n == 0) /* an event with nothing set: no bytes (and maybe no buffer yet) */
        return 0;
    if (evbus__bytes_reserve(out, n))
        return -1;

    unsigned char *p = out->data + out->len;
    int next = 0; /* the next singular string, in number order */
    for (unsigned number = 1; number <= 9; number++) {
        if (number == 6) {
            for (size_t i = 0; i < e->n_resources; i++)
                p = put_bytes(p, 6, e->resources[i], strlen(e->resources[i]));
        } else if (number == 8) {
            for (size_t i = 0; i < e->n_attributes; i++) {
                const Evbus__V1__Attribute *a = e->attributes[i];
                size_t k, v, size = attribute_size(a, &k, &v);
                *p++ = 8 << 3 | 2;
                p = put_varint(p, size);
                if (k)
                    p = put_bytes(p, 1, a->key, k);
                if (v)
                    p = put_bytes(p, 2, a->value, v);
                p = put_unknown(p, &a->base);
            }
        } else {
            if (slen[next])
                p = put_bytes(p, STRING_NUMBER[next], s[next], slen[next]);
            next++;
        }
    }
    if (e->accepted_ms) {
        *p++ = 15 << 3;
        p = put_varint(p, e->accepted_ms);
    }
    p = put_unknown(p, &e->base);
    out->len += n;
    return 0;
}

/* Ack: request_id 1, results 2 (EventAck), error 3, version 4, stopping 5.
 * EventAck: status 1 (an enum: int32), sequence 2, event_id 3, reason 4,
 * region 5, index 6. */

/* A varint field with a one-byte tag, left out when zero. */
static size_t varint_field_size(uint64_t v) {
    return v ? 1 + varint_size(v) : 0;
}

static unsigned char *put_varint_field(unsigned char *p, unsigned number, uint64_t v) {
    if (!v)
        return p;
    *p++ = (unsigned char)(number << 3);
    return put_varint(p, v);
}

/* A proto3 string field: left out when empty. */
static size_t string_field_size(const char *s) {
    size_t n = strlen(s);
    return n ? bytes_size(n) : 0;
}

static unsigned char *put_string_field(unsigned char *p, unsigned number, const char *s) {
    size_t n = strlen(s);
    return n ? put_bytes(p, number, s, n) : p;
}

/* An enum is an int32: a negative one takes ten bytes, as a sign-extended
 * varint. */
static uint64_t enum_value(int v) {
    return (uint64_t)(int64_t)v;
}

static size_t event_ack_size(const Evbus__V1__EventAck *r) {
    return varint_field_size(enum_value(r->status)) + varint_field_size(r->sequence) +
           string_field_size(r->event_id) + string_field_size(r->reason) +
           string_field_size(r->region) + varint_field_size(r->index);
}

size_t evbus__ack_size(const Evbus__V1__Ack *a) {
    size_t n = varint_field_size(a->request_id) + string_field_size(a->error) +
               varint_field_size(a->version) + (a->stopping ? 2 : 0);
    for (size_t i = 0; i < a->n_results; i++)
        n += bytes_size(event_ack_size(a->results[i]));
    return n;
}

void evbus__ack_encode(const Evbus__V1__Ack *a, unsigned char *p) {
    p = put_varint_field(p, 1, a->request_id);
    for (size_t i = 0; i < a->n_results; i++) {
        const Evbus__V1__EventAck *r = a->results[i];
        *p++ = 2 << 3 | 2;
        p = put_varint(p, event_ack_size(r));
        p = put_varint_field(p, 1, enum_value(r->status));
        p = put_varint_field(p, 2, r->sequence);
        p = put_string_field(p, 3, r->event_id);
        p = put_string_field(p, 4, r->reason);
        p = put_string_field(p, 5, r->region);
        p = put_varint_field(p, 6, r->index);
    }
    p = put_string_field(p, 3, a->error);
    p = put_varint_field(p, 4, a->version);
    if (a->stopping) {
        *p++ = 5 << 3;
        *p = 1;
    }
}
