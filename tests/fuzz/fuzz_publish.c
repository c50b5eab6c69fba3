/* Fuzz target: evbusd's own Publish decoder (publish_decode.c) against
 * protobuf-c's generated unpacker on the same bytes. Both must refuse the
 * same inputs, but for the decoder's one refusal of its own (checked as
 * such below); on the others both must give the same message (compared by
 * packing each with protobuf-c, which covers every field and unknown field
 * in order, and by the strings' bytes up to their terminating NUL), and the
 * decoder's per-event NUL notes must be those of an independent walk of the
 * wire (below, written from the rule in publish_decode.h). Every event
 * decoded is also encoded by evbusd's record encoder (proto_encode.c), and
 * an Ack made of its fields by the Ack encoder: both must write the bytes
 * protobuf-c's packer writes. Both results are
 * freed with protobuf-c's free_unpacked and the malloc allocator, so that a
 * sanitizer build sees a leak or a bad free of either. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "proto_encode.h"
#include "publish_decode.h"
#include "wire.h"

/* The reference walk: for each string field (found by protobuf-c's
 * descriptors) of a message and its sub-messages, in wire order, the first
 * raw NUL, the event's own id taking precedence. */
static int find_nul(const ProtobufCMessageDescriptor *desc, const unsigned char *data, size_t len,
                    const char *prefix, int depth, evbus__wire_check *c) {
    evbus__wire w;
    evbus__wire_field f;
    int rc;
    evbus__wire_init(&w, data, len);
    while ((rc = evbus__wire_next(&w, &f)) == 1) {
        if (f.type != EVBUS_WIRE_LEN)
            continue;
        const ProtobufCFieldDescriptor *fd =
            protobuf_c_message_descriptor_get_field(desc, f.number);
        if (!fd)
            continue;
        if (fd->type == PROTOBUF_C_TYPE_STRING) {
            const unsigned char *z = memchr(f.data, 0, f.len);
            int is_id = depth == 0 && strcmp(fd->name, "id") == 0;
            if (z && (!c->nul_field[0] || is_id)) {
                snprintf(c->nul_field, sizeof c->nul_field, "%s%s", prefix, fd->name);
                c->nul_at = (size_t)(z - f.data);
            }
        } else if (fd->type == PROTOBUF_C_TYPE_MESSAGE && depth < 4) {
            char sub[sizeof c->nul_field];
            snprintf(sub, sizeof sub, "%s%s.", prefix, fd->name);
            if (find_nul(fd->descriptor, f.data, f.len, sub, depth + 1, c))
                return -1;
        }
    }
    return rc;
}

static void *sys_alloc(void *data, size_t n) {
    (void)data;
    return malloc(n);
}
static void sys_free(void *data, void *p) {
    (void)data;
    free(p);
}
static ProtobufCAllocator sys = {sys_alloc, sys_free, NULL};

static void check_strings(const char *a, const char *b) {
    if (strcmp(a, b) != 0)
        abort();
}

static void compare_events(const Evbus__V1__Event *a, const Evbus__V1__Event *b) {
    check_strings(a->id, b->id);
    check_strings(a->source, b->source);
    check_strings(a->detail_type, b->detail_type);
    check_strings(a->detail, b->detail);
    check_strings(a->time, b->time);
    check_strings(a->partition_key, b->partition_key);
    check_strings(a->origin_region, b->origin_region);
    if (a->accepted_ms != b->accepted_ms || a->n_resources != b->n_resources ||
        a->n_attributes != b->n_attributes)
        abort();
    for (size_t i = 0; i < a->n_resources; i++)
        check_strings(a->resources[i], b->resources[i]);
    for (size_t i = 0; i < a->n_attributes; i++) {
        check_strings(a->attributes[i]->key, b->attributes[i]->key);
        check_strings(a->attributes[i]->value, b->attributes[i]->value);
    }
}

/* An Ack made of what the fuzzer gave (statuses out of range too, and the
 * negative one): evbusd's encoder against protobuf-c's packer. */
static void compare_acks(const Evbus__V1__Publish *p) {
    Evbus__V1__EventAck *acks = calloc(p->n_events + 1, sizeof *acks);
    Evbus__V1__EventAck **ptrs = calloc(p->n_events + 1, sizeof *ptrs);
    for (size_t i = 0; i < p->n_events; i++) {
        const Evbus__V1__Event *e = p->events[i];
        evbus__v1__event_ack__init(&acks[i]);
        acks[i].status = (Evbus__V1__AckStatus)((int)(e->accepted_ms % 7) - 1);
        acks[i].sequence = e->accepted_ms;
        acks[i].event_id = e->id;
        acks[i].reason = e->source;
        acks[i].region = e->origin_region;
        acks[i].index = (uint32_t)(e->accepted_ms >> 3);
        ptrs[i] = &acks[i];
    }
    Evbus__V1__Ack ack = EVBUS__V1__ACK__INIT;
    ack.request_id = p->request_id;
    ack.version = p->version;
    ack.stopping = p->request_id & 1;
    ack.error = p->n_events ? p->events[0]->detail_type : "";
    ack.n_results = p->n_events;
    ack.results = ptrs;
    size_t n = evbus__v1__ack__get_packed_size(&ack);
    if (evbus__ack_size(&ack) != n)
        abort();
    unsigned char *want = malloc(n + 1), *got = malloc(n + 1);
    evbus__v1__ack__pack(&ack, want);
    evbus__ack_encode(&ack, got);
    if (memcmp(want, got, n) != 0)
        abort();
    free(want);
    free(got);
    free(acks);
    free(ptrs);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    Evbus__V1__Publish *ref = evbus__v1__publish__unpack(NULL, size, data);
    evbus__wire_check *checks = NULL;
    Evbus__V1__Publish *own = evbus__publish_decode(&sys, data, size, &checks);
    /* One refusal of its own: a field number 0 (see publish_decode.c), which
     * protobuf-c takes but cannot read back once packed. */
    if (ref && !own) {
        size_t n = evbus__v1__publish__get_packed_size(ref);
        unsigned char *packed = malloc(n ? n : 1);
        evbus__v1__publish__pack(ref, packed);
        Evbus__V1__Publish *again = evbus__v1__publish__unpack(NULL, n, packed);
        free(packed);
        if (again)
            abort(); /* refused a message that round-trips */
        evbus__v1__publish__free_unpacked(ref, NULL);
        return 0;
    }
    if (!ref != !own)
        abort();
    if (ref) {
        if (ref->request_id != own->request_id || ref->version != own->version ||
            ref->n_events != own->n_events)
            abort();
        for (size_t i = 0; i < ref->n_events; i++) {
            compare_events(ref->events[i], own->events[i]);
            /* The record evbusd stores: its own encoder against protobuf-c's. */
            evbus__bytes rec = {0};
            size_t len;
            size_t want = evbus__v1__event__get_packed_size(own->events[i]);
            if (evbus__event_encode(own->events[i], &rec, &len) || len != want)
                abort();
            unsigned char *pc = malloc(want ? want : 1);
            evbus__v1__event__pack(own->events[i], pc);
            if (want && memcmp(pc, rec.data, want) != 0)
                abort();
            free(pc);
            free(rec.data);
        }
        compare_acks(own);
        size_t n = evbus__v1__publish__get_packed_size(ref);
        if (n != evbus__v1__publish__get_packed_size(own))
            abort();
        unsigned char *pa = malloc(n ? n : 1), *pb = malloc(n ? n : 1);
        evbus__v1__publish__pack(ref, pa);
        evbus__v1__publish__pack(own, pb);
        if (memcmp(pa, pb, n) != 0)
            abort();
        free(pa);
        free(pb);
        /* The NUL notes, event by event, against the reference walk. */
        const ProtobufCFieldDescriptor *events = protobuf_c_message_descriptor_get_field_by_name(
            &evbus__v1__publish__descriptor, "events");
        evbus__wire w;
        evbus__wire_field f;
        size_t k = 0;
        evbus__wire_init(&w, data, size);
        while (evbus__wire_next(&w, &f) == 1) {
            if (f.number != events->id || f.type != EVBUS_WIRE_LEN)
                continue;
            evbus__wire_check want;
            memset(&want, 0, sizeof want);
            find_nul(events->descriptor, f.data, f.len, "", 0, &want);
            if (k >= own->n_events || strcmp(want.nul_field, checks[k].nul_field) != 0 ||
                (want.nul_field[0] && want.nul_at != checks[k].nul_at))
                abort();
            k++;
        }
        if (k != own->n_events)
            abort();
        free(checks);
    }
    evbus__v1__publish__free_unpacked(ref, NULL);
    evbus__v1__publish__free_unpacked(own, &sys);
    return 0;
}
