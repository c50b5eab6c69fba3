/* evbusd's Publish decoder (publish_decode.c): what protobuf-c reads, it
 * reads the same; its one refusal of its own (field number 0); and the NUL
 * notes that make evbusd refuse an event whose string would be cut short. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "publish_decode.h"

TestSuite(publish_decode, .timeout = 30);

static void *sys_alloc(void *data, size_t n) {
    (void)data;
    return malloc(n);
}
static void sys_free(void *data, void *p) {
    (void)data;
    free(p);
}
static ProtobufCAllocator sys = {sys_alloc, sys_free, NULL};

/* The bytes protobuf-c packs for pub, in buf (at most cap). */
static size_t pack(const Evbus__V1__Publish *pub, uint8_t *buf, size_t cap) {
    size_t n = evbus__v1__publish__get_packed_size(pub);
    cr_assert_leq(n, cap);
    return evbus__v1__publish__pack(pub, buf);
}

Test(publish_decode, reads_every_field_as_protobuf_c_does) {
    Evbus__V1__Attribute at = EVBUS__V1__ATTRIBUTE__INIT;
    at.key = "tenant";
    at.value = "acme";
    Evbus__V1__Attribute *ats[1] = {&at};
    char *res[2] = {"arn:a", "arn:b"};
    Evbus__V1__Event e1 = EVBUS__V1__EVENT__INIT, e2 = EVBUS__V1__EVENT__INIT;
    e1.id = "id-1";
    e1.source = "com.example";
    e1.detail_type = "Order";
    e1.detail = "{\"n\":1}";
    e1.time = "2026-12-02T00:00:00Z";
    e1.n_resources = 2;
    e1.resources = res;
    e1.partition_key = "pk";
    e1.n_attributes = 1;
    e1.attributes = ats;
    e1.origin_region = "us-east-1";
    e1.accepted_ms = 1234567890123ull;
    e2.source = "s";
    e2.detail_type = "T";
    e2.detail = "{}";
    Evbus__V1__Event *evs[2] = {&e1, &e2};
    Evbus__V1__Publish p = EVBUS__V1__PUBLISH__INIT;
    p.request_id = 1ull << 40;
    p.n_events = 2;
    p.events = evs;
    p.version = 1;
    uint8_t buf[1024];
    size_t n = pack(&p, buf, sizeof buf);
    /* An unknown field (number 100, a string) at the end of the request. */
    memcpy(buf + n, "\xa2\x06\x03xyz", 6);
    n += 6;

    evbus__wire_check *c = NULL;
    Evbus__V1__Publish *got = evbus__publish_decode(&sys, buf, n, &c);
    cr_assert_not_null(got);
    cr_assert_eq(got->request_id, 1ull << 40);
    cr_assert_eq(got->version, 1);
    cr_assert_eq(got->n_events, 2);
    const Evbus__V1__Event *g = got->events[0];
    cr_assert_str_eq(g->id, "id-1");
    cr_assert_str_eq(g->detail, "{\"n\":1}");
    cr_assert_str_eq(g->time, "2026-12-02T00:00:00Z");
    cr_assert_eq(g->n_resources, 2);
    cr_assert_str_eq(g->resources[1], "arn:b");
    cr_assert_eq(g->n_attributes, 1);
    cr_assert_str_eq(g->attributes[0]->value, "acme");
    cr_assert_str_eq(g->origin_region, "us-east-1");
    cr_assert_eq(g->accepted_ms, 1234567890123ull);
    cr_assert_str_eq(got->events[1]->id, "");
    cr_assert_eq(got->base.n_unknown_fields, 1);
    cr_assert_eq(got->base.unknown_fields[0].tag, 100);
    cr_assert_eq(c[0].nul_field[0], '\0');
    /* Packed again, it is byte for byte what was sent. */
    uint8_t again[1024];
    cr_assert_eq(pack(got, again, sizeof again), n);
    cr_assert(memcmp(again, buf, n) == 0);
    free(c);
    evbus__v1__publish__free_unpacked(got, &sys);
}

/* Refused, as protobuf-c refuses it: and nothing leaks (ASan build). */
static void refused(const char *bytes, size_t n, const char *why) {
    evbus__wire_check *c = NULL;
    cr_assert_null(evbus__publish_decode(&sys, bytes, n, &c), "%s", why);
}

Test(publish_decode, refuses_what_protobuf_c_refuses) {
    refused("\x08", 1, "truncated varint");
    refused("\x12\x05"
            "ab",
            4, "length past the end");
    refused("\x0a\x01x", 3, "request_id (a varint) sent as a string");
    refused("\x12\x02\x08\x01", 4, "an event whose id is sent as a varint");
    refused("\x1b\x00", 2, "a group");
    refused("\x12\x04\x42\x02\x08\x01\x00", 6, "an attribute whose key is sent as a varint");
    cr_assert_null(evbus__v1__publish__unpack(NULL, 3, (const uint8_t *)"\x0a\x01x"));
}

/* protobuf-c keeps a field number 0 spelled in two bytes as an unknown field,
 * and would pack it into the stored record as one byte 0 that nothing reads
 * back: evbusd refuses it. */
Test(publish_decode, refuses_field_number_zero_in_any_spelling) {
    const uint8_t zero[] = {0x80, 0x00, 0x01, 0x08, 0x07};
    Evbus__V1__Publish *pc = evbus__v1__publish__unpack(NULL, sizeof zero, zero);
    cr_assert_not_null(pc, "protobuf-c takes it");
    evbus__v1__publish__free_unpacked(pc, NULL);
    refused((const char *)zero, sizeof zero, "field number 0");
}

Test(publish_decode, a_field_sent_twice_keeps_the_last_value) {
    /* events { id: "a"  id: "b" }  request_id 1, then 2 */
    const char b[] = "\x08\x01\x12\x06\x0a\x01"
                     "a\x0a\x01"
                     "b\x08\x02";
    evbus__wire_check *c = NULL;
    Evbus__V1__Publish *got = evbus__publish_decode(&sys, b, sizeof b - 1, &c);
    cr_assert_not_null(got);
    cr_assert_eq(got->request_id, 2);
    cr_assert_str_eq(got->events[0]->id, "b");
    free(c);
    evbus__v1__publish__free_unpacked(got, &sys);
}

Test(publish_decode, names_the_first_string_with_a_raw_nul_and_the_id_first_of_all) {
    /* source "s\0x", attributes { value "v\0" }, then id "i\0d" */
    const char b[] = "\x12\x10"
                     "\x12\x03s\0x"
                     "\x42\x04\x12\x02v\0"
                     "\x0a\x03i\0d"
                     "\x12\x0a"
                     "\x42\x08\x0a\x01k\x12\x03v\0w";
    evbus__wire_check *c = NULL;
    Evbus__V1__Publish *got = evbus__publish_decode(&sys, b, sizeof b - 1, &c);
    cr_assert_not_null(got);
    cr_assert_eq(got->n_events, 2);
    cr_assert_str_eq(c[0].nul_field, "id");
    cr_assert_eq(c[0].nul_at, 1);
    cr_assert_str_eq(c[1].nul_field, "attributes.value");
    cr_assert_eq(c[1].nul_at, 1);
    free(c);
    evbus__v1__publish__free_unpacked(got, &sys);
}
