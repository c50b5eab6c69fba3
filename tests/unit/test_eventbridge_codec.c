/* The EventBridge plugin's request builder and response reader, without a
 * service: EventBridge's entry-size rule, RFC 3339 to epoch seconds, the
 * request's shape, and how each per-entry ErrorCode is classified (cases
 * moto never answers: throttling, internal failures, access denied). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "eventbridge.h"

TestSuite(eventbridge_codec, .timeout = 30);

typedef struct time_case {
    char text[48];
    int rc;
    int64_t epoch;
} time_case;

ParameterizedTestParameters(eventbridge_codec, epoch_seconds) {
    static time_case cases[] = {
        {"1970-01-01T00:00:00Z", 0, 0},
        {"2026-11-23T17:44:20Z", 0, 1795455860},
        {"2026-11-23T18:44:20.250+01:00", 0, 1795455860}, /* fraction dropped */
        {"2000-02-29T12:00:00-05:30", 0, 951845400},      /* leap day, negative offset */
        {"1969-12-31T23:59:59z", 0, -1},
        {"9999-12-31t23:59:59Z", 0, 253402300799},
        {"2026-11-23 17:44:20Z", -1, 0},
        {"2026-13-01T00:00:00Z", -1, 0},
        {"2026-11-23T17:44:20", -1, 0},
        {"2026-11-23T17:44:20+0100", -1, 0},
        {"2026-11-23T17:44:20Zjunk", -1, 0},
        {"", -1, 0},
    };
    return cr_make_param_array(time_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(time_case *c, eventbridge_codec, epoch_seconds) {
    int64_t t = 42;
    cr_assert_eq(eb_epoch_seconds(c->text, &t), c->rc, "%s", c->text);
    if (c->rc == 0)
        cr_assert_eq(t, c->epoch, "%s: %lld", c->text, (long long)t);
}

static const char *const two_resources[] = {"arn:aws:s3:::a", "r\xc3\xa9"};

static evbus_sink_event event(const char *detail) {
    return (evbus_sink_event){.id = "e-1",
                              .source = "com.example.orders",
                              .detail_type = "OrderPlaced",
                              .detail = detail,
                              .time = "2026-11-23T17:44:20Z",
                              .partition_key = "",
                              .resources = two_resources,
                              .n_resources = 2};
}

/* 14 for Time, then the UTF-8 bytes of Source, DetailType, Detail and each
 * resource; no JSON syntax, no bus name. */
Test(eventbridge_codec, entry_size_follows_eventbridges_rule) {
    const char *detail = "{\"name\":\"caf\xc3\xa9\"}";
    evbus_sink_event e = event(detail);
    size_t want = 14 + 18 + 11 + strlen(detail) + 14 + 3;
    eb_opts o = {.event_bus = "a-very-long-bus-name-that-is-not-counted",
                 .max_request_bytes = want};
    char why[400] = "";
    cr_assert_eq(eb_entry_size(&o, &e, why, sizeof why), want);
    o.max_request_bytes = want - 1;
    cr_assert_eq(eb_entry_size(&o, &e, why, sizeof why), 0);
    char text[128];
    snprintf(text, sizeof text, "EntryTooLarge: the entry is %zu bytes", want);
    cr_assert(strstr(why, text), "%s", why);
}

Test(eventbridge_codec, request_carries_the_events_fields_on_the_bus) {
    evbus_sink_event evs[2] = {event("{\"n\":1,\"s\":\"a\\\"b\"}"), event("{}")};
    evs[1].n_resources = 0;
    evs[1].time = "2026-11-23T18:44:20+01:00";
    evbus_batch b = {.target = "t", .region = "us-east-1", .events = evs, .n_events = 2};
    eb_opts o = {.event_bus = "arn:aws:events:us-east-1:123456789012:event-bus/orders",
                 .max_request_bytes = 262144};
    size_t idx[] = {1, 0}; /* the request follows idx, not the batch */
    evbus_aws_buf out = {0};
    cr_assert_eq(eb_build_request(&o, &b, idx, 2, &out), 0);
    json_error_t err;
    json_t *j = json_loadb(out.data, out.len, 0, &err);
    cr_assert_not_null(j, "%s: %s", err.text, out.data);
    json_t *entries = json_object_get(j, "Entries");
    cr_assert_eq(json_array_size(entries), 2);
    json_t *first = json_array_get(entries, 0), *second = json_array_get(entries, 1);
    cr_assert_str_eq(json_string_value(json_object_get(first, "Detail")), "{}");
    cr_assert_null(json_object_get(first, "Resources"), "no empty Resources list");
    cr_assert_eq(json_integer_value(json_object_get(first, "Time")), 1795455860);
    cr_assert_str_eq(json_string_value(json_object_get(second, "EventBusName")), o.event_bus);
    cr_assert_str_eq(json_string_value(json_object_get(second, "Source")), "com.example.orders");
    cr_assert_str_eq(json_string_value(json_object_get(second, "DetailType")), "OrderPlaced");
    cr_assert_str_eq(json_string_value(json_object_get(second, "Detail")),
                     "{\"n\":1,\"s\":\"a\\\"b\"}");
    json_t *res = json_object_get(second, "Resources");
    cr_assert_eq(json_array_size(res), 2);
    cr_assert_str_eq(json_string_value(json_array_get(res, 1)), "r\xc3\xa9");
    cr_assert(json_is_integer(json_object_get(second, "Time")));
    json_decref(j);
    evbus_aws_buf_free(&out);
}

/* One answer, every kind of entry, in request order. */
Test(eventbridge_codec, per_entry_error_codes_are_classified) {
    const char *body =
        "{\"FailedEntryCount\":7,\"Entries\":["
        "{\"EventId\":\"11111111-1111-1111-1111-111111111111\"},"
        "{\"ErrorCode\":\"ThrottlingException\",\"ErrorMessage\":\"Rate exceeded\"},"
        "{\"ErrorCode\":\"InternalFailure\",\"ErrorMessage\":\"oops\"},"
        "{\"ErrorCode\":\"InternalException\"},"
        "{\"ErrorCode\":\"MalformedDetail\",\"ErrorMessage\":\"Detail is malformed.\"},"
        "{\"ErrorCode\":\"InvalidArgument\",\"ErrorMessage\":\"Parameter Source is not valid.\"},"
        "{\"ErrorCode\":\"AccessDeniedException\",\"ErrorMessage\":\"not allowed\"},"
        "{}"
        "]}";
    eb_entry_result res[9];
    cr_assert_eq(eb_read_response(body, strlen(body), 9, res), 0);
    static const evbus_aws_fault want[9] = {
        EVBUS_AWS_OK,           EVBUS_AWS_TRANSIENT,   EVBUS_AWS_TRANSIENT,
        EVBUS_AWS_TRANSIENT,    EVBUS_AWS_EVENT_FAULT, EVBUS_AWS_EVENT_FAULT,
        EVBUS_AWS_TARGET_FAULT, EVBUS_AWS_TRANSIENT, /* neither EventId nor ErrorCode: not known to
                                                        be sent */
        EVBUS_AWS_TRANSIENT,                         /* missing from the answer */
    };
    for (int i = 0; i < 9; i++)
        cr_assert_eq(res[i].fault, want[i], "entry %d: %d (%s)", i, res[i].fault, res[i].reason);
    cr_assert_str_eq(res[0].reason, "");
    cr_assert_str_eq(res[4].reason, "MalformedDetail: Detail is malformed.");
    cr_assert_str_eq(res[3].reason, "InternalException: no message");
}

Test(eventbridge_codec, an_answer_that_is_not_putevents_sends_nothing_as_delivered) {
    eb_entry_result res[2];
    const char *bodies[] = {"", "<html>bad gateway</html>", "{\"Entries\":{}}", "[1,2]"};
    for (size_t b = 0; b < sizeof bodies / sizeof bodies[0]; b++) {
        cr_assert_eq(eb_read_response(bodies[b], strlen(bodies[b]), 2, res), -1, "%s", bodies[b]);
        cr_assert_eq(res[0].fault, EVBUS_AWS_TRANSIENT);
        cr_assert_eq(res[1].fault, EVBUS_AWS_TRANSIENT);
    }
}

/* The all-accepted answer is read without jansson; every shape it must
 * hand over (or read alike) gives what jansson gives. */
typedef struct answer_case {
    char body[256];
    int rc;
    char faults[4]; /* per entry of 3: 'o' OK, 't' TRANSIENT, 'e' EVENT_FAULT */
} answer_case;

ParameterizedTestParameters(eventbridge_codec, accepted_answers_read_as_jansson_reads_them) {
    static answer_case cases[] = {
        {"{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},"
         "{\"EventId\":\"c\"}]}",
         0, "ooo"},
        /* white space, members in another order, unknown members skipped */
        {" {\n\"Entries\" : [ {\"X\":[1,{\"y\":null}],\"EventId\":\"a\"} , {\"EventId\":\"b\","
         "\"Z\":true},{\"EventId\":\"c\"}] ,\"FailedEntryCount\":0.0e0 }\r\n",
         0, "ooo"},
        /* an escaped EventId is a string all the same */
        {"{\"Entries\":[{\"EventId\":\"a\\\"\\u00e9\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}]}",
         0, "ooo"},
        /* fewer entries than sent: the rest are not known to be sent */
        {"{\"Entries\":[{\"EventId\":\"a\"}]}", 0, "ott"},
        /* more than sent: the extra ones are ignored */
        {"{\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"},"
         "{\"EventId\":\"d\"}]}",
         0, "ooo"},
        /* an entry with neither EventId nor ErrorCode, or an EventId that is not a string */
        {"{\"Entries\":[{},{\"EventId\":5},{\"EventId\":\"c\"}]}", 0, "tto"},
        /* a later EventId overrides (jansson keeps the last member of a name) */
        {"{\"Entries\":[{\"EventId\":\"a\",\"EventId\":null},{\"EventId\":\"b\"},"
         "{\"EventId\":\"c\"}]}",
         0, "too"},
        /* an ErrorCode, even beside an EventId */
        {"{\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\",\"ErrorCode\":\"MalformedDetail\"},"
         "{\"ErrorCode\":\"\",\"EventId\":\"c\"}]}",
         0, "oeo"},
        /* Entries twice: the last one counts */
        {"{\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}],"
         "\"Entries\":[{\"ErrorCode\":\"MalformedDetail\"}]}",
         0, "ett"},
        /* an escaped member name is its decoded name */
        {"{\"Entries\":[{\"Event\\u0049d\":\"a\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}]}", 0,
         "ooo"},
        /* not JSON, or not an answer: nothing is delivered */
        {"{\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}]} x", -1,
         "ttt"},
        {"{\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}]", -1, "ttt"},
        {"{\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}],}", -1, "ttt"},
        {"{\"Entries\":[{\"EventId\":\"a\x01\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}]}", -1,
         "ttt"},
        {"{\"Entries\":[{\"EventId\":\"a\"},{\"EventId\":\"b\"},{\"EventId\":\"c\"}],\"F\":tru}",
         -1, "ttt"},
        {"{\"FailedEntryCount\":0}", -1, "ttt"},
        {"{}", -1, "ttt"},
    };
    return cr_make_param_array(answer_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(answer_case *c, eventbridge_codec, accepted_answers_read_as_jansson_reads_them) {
    eb_entry_result res[3];
    cr_assert_eq(eb_read_response(c->body, strlen(c->body), 3, res), c->rc, "%s", c->body);
    for (int i = 0; i < 3; i++) {
        evbus_aws_fault want = c->faults[i] == 'o'   ? EVBUS_AWS_OK
                               : c->faults[i] == 'e' ? EVBUS_AWS_EVENT_FAULT
                                                     : EVBUS_AWS_TRANSIENT;
        cr_assert_eq(res[i].fault, want, "%s: entry %d is %d (%s)", c->body, i, res[i].fault,
                     res[i].reason);
        if (want == EVBUS_AWS_OK)
            cr_assert_str_eq(res[i].reason, "");
        else
            cr_assert_neq(res[i].reason[0], '\0');
    }
}

/* Time is written by hand: zero, before the epoch, and far ahead come out
 * as the integers they are. */
Test(eventbridge_codec, request_time_is_the_exact_integer) {
    static const struct {
        const char *time;
        const char *want;
    } cases[] = {
        {"1970-01-01T00:00:00Z", "\"Time\":0}"},
        {"1969-12-31T23:59:59Z", "\"Time\":-1}"},
        {"1900-03-01T00:00:00.123Z", "\"Time\":-2203891200}"},
        {"9999-12-31T23:59:59Z", "\"Time\":253402300799}"},
        {"2026-11-23T18:44:20+01:00", "\"Time\":1795455860}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        evbus_sink_event e = event("{}");
        e.time = cases[i].time;
        evbus_batch b = {.target = "t", .region = "us-east-1", .events = &e, .n_events = 1};
        eb_opts o = {.event_bus = "default", .max_request_bytes = 262144};
        size_t idx[] = {0};
        evbus_aws_buf out = {0};
        cr_assert_eq(eb_build_request(&o, &b, idx, 1, &out), 0);
        cr_assert(strstr(out.data, cases[i].want), "%s: %s", cases[i].time, out.data);
        evbus_aws_buf_free(&out);
    }
}
