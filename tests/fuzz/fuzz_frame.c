/* Fuzz target: the bytes a producer sends. Decodes a Publish under the
 * default limits and prepares every event exactly as evbusd does. Every
 * record it produces must say exactly what was sent, read from the input's
 * own bytes (not from protobuf-c's C strings, which end at a NUL): each
 * string field byte for byte, every repeated element in order, and only the
 * fields a producer may leave empty filled in. What a refused event would be
 * answered with (its id, the reason) must be valid UTF-8, as an Ack's
 * strings must be. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/json_check.h"
#include "config.h"
#include "frame.h"
#include "wire.h"

static void *arena_alloc(void *data, size_t size) {
    return evbus__arena_alloc(data, size);
}
static void arena_free(void *data, void *ptr) {
    (void)data;
    (void)ptr;
}

typedef struct slice {
    const unsigned char *p;
    size_t n;
} slice;

/* The i-th occurrence (or, with i == SIZE_MAX, the last) of length-delimited
 * field `number` in msg; empty when there is none. Returns how many there are. */
static size_t field_at(slice msg, uint32_t number, size_t i, slice *out) {
    evbus__wire w;
    evbus__wire_field f;
    size_t k = 0;
    *out = (slice){(const unsigned char *)"", 0};
    evbus__wire_init(&w, msg.p, msg.n);
    while (evbus__wire_next(&w, &f) == 1) {
        if (f.number != number || f.type != EVBUS_WIRE_LEN)
            continue;
        if (i == SIZE_MAX || k == i)
            *out = (slice){f.data, f.len};
        k++;
    }
    return k;
}

static int same(slice a, slice b) {
    return a.n == b.n && (a.n == 0 || memcmp(a.p, b.p, a.n) == 0);
}

/* Compares what was sent with what is stored, field by field as desc lists
 * them. A string sent empty must be stored as `filled` has it (the defaults
 * evbusd fills in; "" for every other field). Returns 1 when they agree. */
static int stored_as_sent(const ProtobufCMessageDescriptor *desc, slice sent, slice rec,
                          const void *filled) {
    for (unsigned j = 0; j < desc->n_fields; j++) {
        const ProtobufCFieldDescriptor *fd = &desc->fields[j];
        slice a, b;
        if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = field_at(sent, fd->id, SIZE_MAX, &a);
            if (field_at(rec, fd->id, SIZE_MAX, &b) != n)
                return 0;
            for (size_t i = 0; i < n; i++) {
                field_at(sent, fd->id, i, &a);
                field_at(rec, fd->id, i, &b);
                if (fd->type == PROTOBUF_C_TYPE_MESSAGE
                        ? !stored_as_sent(fd->descriptor, a, b, NULL)
                        : !same(a, b))
                    return 0;
            }
        } else if (fd->type == PROTOBUF_C_TYPE_STRING) {
            field_at(sent, fd->id, SIZE_MAX, &a);
            field_at(rec, fd->id, SIZE_MAX, &b);
            if (a.n == 0 && filled) {
                const char *d = *(char *const *)((const char *)filled + fd->offset);
                a = (slice){(const unsigned char *)d, strlen(d)};
            }
            if (!same(a, b))
                return 0;
        }
        /* Scalars: only accepted_ms, which evbusd sets. */
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static evbus__config cfg;
    static int ready;
    static evbus__uuid_gen ids;
    if (!ready) {
        evbus__config_defaults(&cfg);
        evbus__uuid_gen_init(&ids);
        ready = 1;
    }
    evbus__arena arena;
    evbus__arena_init(&arena, 64 * 1024);
    ProtobufCAllocator alloc = {arena_alloc, arena_free, &arena};
    char err[256];
    uint64_t request_id = 0;
    evbus__wire_check *checks = NULL;
    Evbus__V1__Publish *pub =
        evbus__frame_decode(&cfg, &alloc, data, size, &request_id, &checks, err, sizeof err);
    if (!pub) {
        if (!err[0])
            abort(); /* a refusal must say why */
    } else {
        evbus__bytes records = {0};
        evbus__wire frame;
        evbus__wire_field f;
        evbus__wire_init(&frame, data, size);
        for (size_t i = 0; i < pub->n_events; i++) {
            /* The i-th event as sent: the i-th `events` field of the frame. */
            do {
                if (evbus__wire_next(&frame, &f) != 1)
                    abort(); /* protobuf-c found more events than the bytes hold */
            } while (f.number != 2);
            char gen_id[37], why[256];
            Evbus__V1__Event filled;
            size_t off, len;
            int rc = evbus__event_prepare(&cfg, pub->events[i], &checks[i], &ids, 1795456460000,
                                          "2026-11-23T17:44:20Z", gen_id, &filled, &records, &off,
                                          &len, why, sizeof why);
            if (rc == 1 && (!why[0] || !evbus__utf8_valid(why, strlen(why)) ||
                            !evbus__utf8_valid(filled.id, strlen(filled.id))))
                abort();
            if (rc != 0)
                continue;
            slice sent = {f.data, f.len}, rec = {records.data + off, len};
            if (!stored_as_sent(&evbus__v1__event__descriptor, sent, rec, &filled))
                abort();
            Evbus__V1__Event *back = evbus__v1__event__unpack(NULL, len, records.data + off);
            if (!back || strcmp(back->id, filled.id) != 0 || !back->time[0])
                abort();
            evbus__v1__event__free_unpacked(back, NULL);
        }
        free(records.data);
    }
    evbus__arena_destroy(&arena);
    return 0;
}
