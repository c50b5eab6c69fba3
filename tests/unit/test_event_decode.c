/* The delivery thread's decoder of stored records (event_decode.c) reads
 * what protobuf-c's unpacker reads, field for field, and refuses what it
 * refuses; and the envelope built from it escapes what JSON needs. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "envelope.h"
#include "event_decode.h"

TestSuite(event_decode, .timeout = 30);

static void same_as_protobuf_c(const uint8_t *buf, size_t len) {
    Evbus__V1__Event *want = evbus__v1__event__unpack(NULL, len, buf);
    evbus__arena a;
    evbus__arena_init(&a, 4096);
    Evbus__V1__Event *got = evbus__event_decode(&a, buf, len);
    if (!want) {
        cr_assert_null(got, "protobuf-c refuses these %zu bytes; the decoder must too", len);
        evbus__arena_destroy(&a);
        return;
    }
    cr_assert_not_null(got, "protobuf-c reads these %zu bytes; the decoder refuses them", len);
    cr_assert_str_eq(got->id, want->id);
    cr_assert_str_eq(got->source, want->source);
    cr_assert_str_eq(got->detail_type, want->detail_type);
    cr_assert_str_eq(got->detail, want->detail);
    cr_assert_str_eq(got->time, want->time);
    cr_assert_str_eq(got->partition_key, want->partition_key);
    cr_assert_str_eq(got->origin_region, want->origin_region);
    cr_assert_eq(got->accepted_ms, want->accepted_ms);
    cr_assert_eq(got->n_resources, want->n_resources);
    for (size_t i = 0; i < want->n_resources; i++)
        cr_assert_str_eq(got->resources[i], want->resources[i]);
    cr_assert_eq(got->n_attributes, want->n_attributes);
    for (size_t i = 0; i < want->n_attributes; i++) {
        cr_assert_str_eq(got->attributes[i]->key, want->attributes[i]->key);
        cr_assert_str_eq(got->attributes[i]->value, want->attributes[i]->value);
    }
    evbus__v1__event__free_unpacked(want, NULL);
    evbus__arena_destroy(&a);
}

static size_t pack(const Evbus__V1__Event *ev, uint8_t *buf) {
    size_t n = evbus__v1__event__get_packed_size(ev);
    cr_assert_lt(n, 4096);
    return evbus__v1__event__pack(ev, buf);
}

Test(event_decode, reads_every_field_as_protobuf_c_does) {
    uint8_t buf[8192];
    char *res[] = {"arn:aws:a", "", "arn:aws:c"};
    Evbus__V1__Attribute a1 = EVBUS__V1__ATTRIBUTE__INIT, a2 = EVBUS__V1__ATTRIBUTE__INIT;
    a1.key = "tenant";
    a1.value = "acme";
    a2.key = "empty";
    Evbus__V1__Attribute *attrs[] = {&a1, &a2};
    Evbus__V1__Event ev = EVBUS__V1__EVENT__INIT;
    ev.id = "3f1d2c4e-0000-4000-8000-000000000001";
    ev.source = "orders";
    ev.detail_type = "Order Placed";
    ev.detail = "{\"n\":1,\"s\":\"quote \\\" here\"}";
    ev.time = "2026-12-02T10:00:00Z";
    ev.partition_key = "customer-42";
    ev.origin_region = "us-west-2";
    ev.accepted_ms = 1796205600123ull; /* a varint of six bytes */
    ev.resources = res;
    ev.n_resources = 3;
    ev.attributes = attrs;
    ev.n_attributes = 2;
    same_as_protobuf_c(buf, pack(&ev, buf));
    /* Nothing but defaults: every string "". */
    Evbus__V1__Event empty = EVBUS__V1__EVENT__INIT;
    same_as_protobuf_c(buf, pack(&empty, buf));
    /* A long detail: a length of two varint bytes and more. */
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    ev.detail = big;
    same_as_protobuf_c(buf, pack(&ev, buf));
}

Test(event_decode, unknown_fields_repeated_fields_and_malformed_bytes) {
    uint8_t buf[8192];
    Evbus__V1__Event ev = EVBUS__V1__EVENT__INIT;
    ev.id = "id-1";
    ev.source = "s";
    size_t n = pack(&ev, buf);
    /* Unknown fields of every wire type: skipped. */
    const uint8_t unknown[] = {
        0x50, 0x05,                                   /* 10: varint */
        0x59, 1,    2,    3,   4,   5,    6, 7,    8, /* 11: fixed64 */
        0x65, 1,    2,    3,   4,                     /* 12: fixed32 */
        0x6a, 3,    'a',  'b', 'c',                   /* 13: bytes */
        0x0a, 4,    'i',  'd', '-', '2',              /* id again: the last wins */
        0x42, 6,    0x0a, 1,   'k', 0x12, 1, 'v',     /* an attribute */
        0x42, 7,    0x0a, 1,   'k', 0x18, 1, 0x12, 0, /* with an unknown field */
    };
    memcpy(buf + n, unknown, sizeof unknown);
    same_as_protobuf_c(buf, n + sizeof unknown);
    /* Truncated anywhere: refused by both (or read alike where the cut
     * falls between fields). */
    for (size_t cut = 0; cut < n + sizeof unknown; cut++)
        same_as_protobuf_c(buf, cut);
    /* A known field of the wrong wire type. */
    const uint8_t wrong[] = {0x08, 0x01}; /* id as a varint */
    same_as_protobuf_c(wrong, sizeof wrong);
    const uint8_t wrong_ms[] = {0x7a, 0x01, 'x'}; /* accepted_ms as bytes */
    same_as_protobuf_c(wrong_ms, sizeof wrong_ms);
    const uint8_t group[] = {0x53, 0x54}; /* a group (10) */
    same_as_protobuf_c(group, sizeof group);
    const uint8_t zero[] = {0x02, 0x00}; /* field number 0 */
    same_as_protobuf_c(zero, sizeof zero);
}

Test(event_decode, envelope_escapes_what_json_needs) {
    evbus__arena a;
    evbus__arena_init(&a, 4096);
    Evbus__V1__Event ev = EVBUS__V1__EVENT__INIT;
    ev.id = "plain-id-of-more-than-eight-bytes";
    ev.source = "a\"b\\c\nd\te\x01 and a longer tail after the escapes";
    ev.detail_type = "\"";
    ev.detail = "{}";
    ev.time = "";
    ev.origin_region = "r\xc3\xa9gion"; /* UTF-8 is kept as it is */
    char *res[] = {"x\"y"};
    ev.resources = res;
    ev.n_resources = 1;
    evbus__bytes out = {0};
    cr_assert_eq(evbus__envelope_json(&ev, &out), 0);
    const char want[] =
        "{\"version\":\"0\",\"id\":\"plain-id-of-more-than-eight-bytes\",\"detail-type\":\"\\\"\","
        "\"source\":\"a\\\"b\\\\c\\nd\\te\\u0001 and a longer tail after the escapes\","
        "\"account\":\"\",\"time\":\"\",\"region\":\"r\xc3\xa9gion\",\"resources\":[\"x\\\"y\"],"
        "\"detail\":{}}";
    cr_assert_eq(out.len, strlen(want), "%.*s", (int)out.len, out.data);
    cr_assert(memcmp(out.data, want, out.len) == 0, "%.*s", (int)out.len, out.data);
    free(out.data);
    evbus__arena_destroy(&a);
}
