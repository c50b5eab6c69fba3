/* The DynamoDB plugin's item, request and answer code: numbers as DynamoDB
 * takes them (38 significant digits, 1E-130 .. 9.99E+125) with the size it
 * counts, the detail transcoded to attribute values with its text kept, the
 * 400 KB item limit at its exact boundary, the two requests, and
 * UnprocessedItems matched back to events. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dynamodb.h"

typedef struct num_case {
    char text[64];
    bool ok;
    size_t size; /* when ok */
} num_case;

ParameterizedTestParameters(ddb_item, numbers) {
    static num_case cases[] = {
        {"0", true, 1},
        {"-0.000e5", true, 1},
        {"5", true, 2},
        {"-5", true, 3},
        {"12", true, 2},  /* one base-100 digit: 12 */
        {"1.2", true, 3}, /* 01.20: two */
        {"123", true, 3}, /* 01 23 */
        {"100", true, 2}, /* 01 (00) */
        {"0.5", true, 2}, /* .50 */
        {"1e-130", true, 2},
        {"0.1e-129", true, 2},
        {"1e-131", false, 0},
        {"9.9999999999999999999999999999999999999e125", true, 20},
        {"1e126", false, 0},
        {"10e125", false, 0},
        {"12345678901234567890123456789012345678", true, 20},
        {"123456789012345678901234567890123456789", false, 0},
        {"1.00000000000000000000000000000000000000000000", true, 2},
        {"1000000000000000000000000000000000000000000000", true, 2},
        {"1e999999999999999999999", false, 0},
        {"-1e-999999999999999999999", false, 0},
        {"1e", false, 0},
        {"-", false, 0},
    };
    return cr_make_param_array(num_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(num_case *c, ddb_item, numbers) {
    size_t size = 0;
    char why[300] = "";
    ddb_conv rc = ddb_number(c->text, strlen(c->text), &size, why, sizeof why);
    cr_assert_eq(rc == DDB_CONV_OK, c->ok, "%s: %s", c->text, why);
    if (c->ok)
        cr_assert_eq(size, c->size, "%s: size %zu, want %zu", c->text, size, c->size);
    else
        cr_assert(strstr(why, "ValidationException: "), "%s", why);
}

TestSuite(ddb_item, .timeout = 10);

Test(ddb_item, detail_becomes_attribute_values_with_its_text_and_size) {
    const char *json = "{\"a\":[1,\"x\",true,null,{}],\"b\":\"\",\"c\":-1.50E+3,"
                       "\"\\u00e9\\ud83d\\ude00\\n\":false}";
    evbus_aws_buf out = {0};
    size_t size = 0;
    char why[200];
    cr_assert_eq(ddb_json_to_av(json, strlen(json), &out, &size, why, sizeof why), DDB_CONV_OK,
                 "%s", why);
    cr_assert_str_eq(out.data, "{\"M\":{\"a\":{\"L\":[{\"N\":\"1\"},{\"S\":\"x\"},{\"BOOL\":true},"
                               "{\"NULL\":true},{\"M\":{}}]},\"b\":{\"S\":\"\"},"
                               "\"c\":{\"N\":\"-1.50E+3\"},"
                               "\"\\u00e9\\ud83d\\ude00\\n\":{\"BOOL\":false}}}");
    /* M: 3 + 4 elements + a(1) + L(3 + 3+2+2+2+4) + b(1) + 0 + c(1) + -1500 (one
     * base-100 digit, exponent, sign: 3) + key (2 + 4 + 1) + false (1). */
    cr_assert_eq(size, 3 + 4 + 1 + 16 + 1 + 0 + 1 + 3 + 7 + 1);
    evbus_aws_buf_free(&out);
}

Test(ddb_item, malformed_or_unholdable_detail_is_refused) {
    const char *bad[] = {"{\"a\":1", "{\"a\" 1}", "[1,]x", "{\"a\":tru}", "{\"n\":1e200}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        evbus_aws_buf out = {0};
        size_t size = 0;
        char why[200] = "";
        cr_assert_eq(ddb_json_to_av(bad[i], strlen(bad[i]), &out, &size, why, sizeof why),
                     DDB_CONV_REFUSED, "%s", bad[i]);
        cr_assert(strstr(why, "ValidationException: "), "%s", why);
        evbus_aws_buf_free(&out);
    }
}

/* An event whose detail is one string of `blob` bytes. */
static ddb_conv item_with_blob(const ddb_opts *o, size_t blob, size_t *size, char *why,
                               evbus_aws_buf *out) {
    char *detail = malloc(blob + 16);
    strcpy(detail, "{\"b\":\"");
    memset(detail + 6, 'x', blob);
    strcpy(detail + 6 + blob, "\"}");
    const char *env = "{\"version\":\"0\",\"id\":\"x\",\"detail-type\":\"t\",\"source\":\"s\","
                      "\"account\":\"\",\"time\":\"2024-05-01T14:00:00+02:00\",\"region\":\"r\","
                      "\"resources\":[],\"detail\":{}}";
    evbus_sink_event e = {.id = "x",
                          .source = "s",
                          .detail_type = "t",
                          .detail = detail,
                          .time = "2024-05-01T14:00:00+02:00",
                          .origin_region = "r",
                          .partition_key = "",
                          .envelope_json = env,
                          .envelope_len = strlen(env)};
    ddb_conv rc = ddb_item(o, &e, out, size, why, 600);
    free(detail);
    return rc;
}

Test(ddb_item, the_400KB_limit_is_checked_as_dynamodb_counts) {
    ddb_opts o = {.table = "events", .key = "id"};
    /* id+x 3, source+s 7, detail-type+t 12, time+value 29, region+r 7,
     * resources+[] 12, detail 6 + M(3 + 1 + b 1 + blob). */
    size_t fixed = 3 + 7 + 12 + 29 + 7 + 12 + 6 + 3 + 1 + 1;
    size_t size = 0;
    char why[600] = "";
    evbus_aws_buf out = {0};
    cr_assert_eq(item_with_blob(&o, DDB_MAX_ITEM_SIZE - fixed, &size, why, &out), DDB_CONV_OK, "%s",
                 why);
    cr_assert_eq(size, DDB_MAX_ITEM_SIZE);
    cr_assert_null(strstr(out.data, "\"account\""), "an empty account is left out");
    evbus_aws_buf_free(&out);
    cr_assert_eq(item_with_blob(&o, DDB_MAX_ITEM_SIZE - fixed + 1, &size, why, &out),
                 DDB_CONV_REFUSED);
    cr_assert(strstr(why, "Item size has exceeded the maximum allowed size: the item is 409601 "
                          "bytes"),
              "%s", why);
    evbus_aws_buf_free(&out);
}

Test(ddb_item, expiry_is_the_event_time_plus_ttl) {
    ddb_opts o = {.table = "events", .key = "pk", .ttl_attribute = "exp", .ttl_ms = 3600000};
    size_t size = 0;
    char why[600] = "";
    evbus_aws_buf out = {0};
    cr_assert_eq(item_with_blob(&o, 1, &size, why, &out), DDB_CONV_OK, "%s", why);
    /* 2024-05-01T14:00:00+02:00 is 1714564800. */
    cr_assert(strstr(out.data, ",\"exp\":{\"N\":\"1714568400\"}}"), "%s", out.data);
    cr_assert(strncmp(out.data, "{\"pk\":{\"S\":\"x\"}", 15) == 0, "%s", out.data);
    evbus_aws_buf_free(&out);
}

Test(ddb_item, requests_carry_the_condition_only_in_conditional_mode) {
    ddb_opts o = {.table = "ev\"ents", .key = "pk", .mode = DDB_CONDITIONAL};
    const char *item = "{\"pk\":{\"S\":\"a\"}}";
    evbus_aws_buf out = {0};
    cr_assert_eq(ddb_put_request(&o, item, strlen(item), &out), 0);
    cr_assert_str_eq(out.data, "{\"TableName\":\"ev\\\"ents\",\"Item\":{\"pk\":{\"S\":\"a\"}},"
                               "\"ConditionExpression\":\"attribute_not_exists(#k)\","
                               "\"ExpressionAttributeNames\":{\"#k\":\"pk\"}}");
    evbus_aws_buf_free(&out);
    o.mode = DDB_BATCH;
    evbus_aws_buf items[2] = {{0}, {0}};
    evbus_aws_buf_puts(&items[0], item);
    evbus_aws_buf_puts(&items[1], "{\"pk\":{\"S\":\"b\"}}");
    cr_assert_eq(ddb_batch_request(&o, items, 2, &out), 0);
    cr_assert_str_eq(out.data, "{\"RequestItems\":{\"ev\\\"ents\":["
                               "{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"a\"}}}},"
                               "{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"b\"}}}}]}}");
    cr_assert_lt(strlen(out.data) - items[0].len - items[1].len, ddb_request_overhead(&o));
    evbus_aws_buf_free(&out);
    evbus_aws_buf_free(&items[0]);
    evbus_aws_buf_free(&items[1]);
}

/* Only what UnprocessedItems lists is retried; a body that is no answer
 * leaves every item unconfirmed. */
Test(ddb_item, unprocessed_items_are_matched_back_by_key) {
    ddb_opts o = {.table = "events", .key = "pk", .mode = DDB_BATCH};
    const char *ids[] = {"a", "b", "c"};
    bool un[3];
    const char *body = "{\"UnprocessedItems\":{\"events\":["
                       "{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"c\"},\"x\":{\"N\":\"1\"}}}},"
                       "{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"a\"}}}}]}}";
    cr_assert_eq(ddb_read_batch_response(&o, body, strlen(body), ids, 3, un), 0);
    cr_assert(un[0] && !un[1] && un[2]);
    cr_assert_eq(ddb_read_batch_response(&o, "{\"UnprocessedItems\":{}}", 23, ids, 3, un), 0);
    cr_assert(!un[0] && !un[1] && !un[2]);
    cr_assert_eq(ddb_read_batch_response(&o, "<html>", 6, ids, 3, un), -1);
    cr_assert(un[0] && un[1] && un[2]);
}

/* The answer with nothing unprocessed is read without jansson; every other
 * shape is read as jansson reads it. */
Test(ddb_item, answers_with_nothing_unprocessed_read_as_jansson_reads_them) {
    ddb_opts o = {.table = "events", .key = "pk", .mode = DDB_BATCH};
    const char *ids[] = {"a", "b", "c"};
    bool un[3];
    static const char *const all_written[] = {
        "{}",
        " { \"UnprocessedItems\" : { } }\n",
        "{\"ConsumedCapacity\":[{\"TableName\":\"events\",\"CapacityUnits\":3.5e0}],"
        "\"UnprocessedItems\":{},\"ItemCollectionMetrics\":{\"x\":[true,false,null]}}",
        /* jansson keeps the last member of a name */
        "{\"UnprocessedItems\":{\"events\":[{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"a\"}}}}]},"
        "\"UnprocessedItems\":{}}",
        /* another table's leftovers are not this call's */
        "{\"UnprocessedItems\":{\"other\":[{\"PutRequest\":{\"Item\":{\"pk\":{\"S\":\"a\"}}}}]}}",
    };
    for (size_t i = 0; i < sizeof all_written / sizeof all_written[0]; i++) {
        un[0] = un[1] = un[2] = true;
        cr_assert_eq(
            ddb_read_batch_response(&o, all_written[i], strlen(all_written[i]), ids, 3, un), 0,
            "%s", all_written[i]);
        cr_assert(!un[0] && !un[1] && !un[2], "%s", all_written[i]);
    }
    /* an escaped member name is its decoded name */
    const char *escaped = "{\"Unprocessed\\u0049tems\":{\"events\":[{\"PutRequest\":{\"Item\":"
                          "{\"pk\":{\"S\":\"b\"}}}}]}}";
    cr_assert_eq(ddb_read_batch_response(&o, escaped, strlen(escaped), ids, 3, un), 0);
    cr_assert(!un[0] && un[1] && !un[2]);
    static const char *const not_answers[] = {
        "",
        "{\"UnprocessedItems\":{}} x",
        "{\"UnprocessedItems\":{}",
        "{\"UnprocessedItems\":{},}",
        "[]",
        "{\"UnprocessedItems\":{},\"x\":nul}",
    };
    for (size_t i = 0; i < sizeof not_answers / sizeof not_answers[0]; i++) {
        un[0] = un[1] = un[2] = false;
        cr_assert_eq(
            ddb_read_batch_response(&o, not_answers[i], strlen(not_answers[i]), ids, 3, un), -1,
            "%s", not_answers[i]);
        cr_assert(un[0] && un[1] && un[2], "%s", not_answers[i]);
    }
}

/* Strings are counted a run of plain bytes at a time: escapes, control
 * characters and multi-byte characters on each side of 8-byte boundaries
 * give the same text and size as byte by byte. */
Test(ddb_item, long_strings_keep_their_text_and_decoded_size) {
    static const struct {
        const char *json;
        size_t size; /* {"S":...} in a list of one: 3 + 1 + decoded bytes */
    } ok[] = {
        {"[\"abcdefghijklmnopqrstuvwxyz\"]", 4 + 26},
        {"[\"abcdefg\\\"hijklmnop\\\\qrstuvw\\/xyz\"]", 4 + 29},
        {"[\"abcdefgh\\u0041ijklmnop\\u00e9qrstuvwx\\u20acyz\"]", 4 + 26 + 1 + 2 + 3},
        {"[\"\\ud83d\\ude00abcdefghijklmnop\\ud83dxyz\"]", 4 + 4 + 16 + 3 + 3},
        {"[\"caf\xc3\xa9 cr\xc3\xa8me br\xc3\xbbl\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", 4 + 27},
        {"[\"1234567\\n1234567\\t\\r\\b\\f12345678\"]", 4 + 7 + 1 + 7 + 4 + 8},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        evbus_aws_buf out = {0};
        size_t size = 0;
        char why[200] = "";
        size_t len = strlen(ok[i].json);
        cr_assert_eq(ddb_json_to_av(ok[i].json, len, &out, &size, why, sizeof why), DDB_CONV_OK,
                     "%s: %s", ok[i].json, why);
        cr_assert_eq(size, ok[i].size, "%s: size %zu, want %zu", ok[i].json, size, ok[i].size);
        /* {"L":[{"S":<the string's text as it was>}]} */
        cr_assert_eq(out.len, len - 2 + strlen("{\"L\":[{\"S\":}]}"), "%s", out.data);
        cr_assert(strncmp(out.data + strlen("{\"L\":[{\"S\":"), ok[i].json + 1, len - 2) == 0, "%s",
                  out.data);
        evbus_aws_buf_free(&out);
    }
    static const char *const bad[] = {
        "[\"abcdefghijklmnop\x01qrstuvwxyz\"]", /* a control character deep in a run */
        "[\"abcdefgh\x1f\"]",
        "[\"abcdefghijklmnop\tq\"]",
        "[\"abcdefghijklmnop\\x\"]",     /* an unknown escape */
        "[\"abcdefghijklmnop\\u12g4\"]", /* a bad \u */
        "[\"abcdefghijklmnopqrstuvwxyz", /* unterminated */
        "[\"abcdefghijklmnop\\",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        evbus_aws_buf out = {0};
        size_t size = 0;
        char why[200] = "";
        cr_assert_eq(ddb_json_to_av(bad[i], strlen(bad[i]), &out, &size, why, sizeof why),
                     DDB_CONV_REFUSED, "%s", bad[i]);
        cr_assert(strstr(why, "ValidationException: "), "%s", why);
        evbus_aws_buf_free(&out);
    }
}

/* The whole item, byte for byte: the envelope's account is taken, an
 * "account" inside the detail is not, and big numbers keep their text. */
Test(ddb_item, item_text_is_exact) {
    ddb_opts o = {.table = "events", .key = "p\"k", .mode = DDB_BATCH};
    const char *detail = "{\"account\":\"999\",\"n\":123456789012345678901234567890.12345678,"
                         "\"s\":\"\\\"\\u00e9\"}";
    char env[512];
    const char *const accounts[] = {"123456789012", ""};
    for (int a = 0; a < 2; a++) {
        snprintf(env, sizeof env,
                 "{\"version\":\"0\",\"id\":\"i\",\"detail-type\":\"t\",\"source\":\"s\","
                 "\"account\":\"%s\",\"time\":\"2024-05-01T14:00:00Z\",\"region\":\"r\","
                 "\"resources\":[\"x\"],\"detail\":%s}",
                 accounts[a], detail);
        const char *res[] = {"arn:\"x\""};
        evbus_sink_event e = {.id = "i",
                              .source = "s\\",
                              .detail_type = "t\n",
                              .detail = detail,
                              .time = "2024-05-01T14:00:00Z",
                              .origin_region = "r",
                              .resources = res,
                              .n_resources = 1,
                              .partition_key = "",
                              .envelope_json = env,
                              .envelope_len = strlen(env)};
        evbus_aws_buf out = {0};
        size_t size = 0;
        char why[600] = "";
        cr_assert_eq(ddb_item(&o, &e, &out, &size, why, sizeof why), DDB_CONV_OK, "%s", why);
        char want[1024];
        snprintf(want, sizeof want,
                 "{\"p\\\"k\":{\"S\":\"i\"},\"source\":{\"S\":\"s\\\\\"},"
                 "\"detail-type\":{\"S\":\"t\\n\"},\"time\":{\"S\":\"2024-05-01T14:00:00Z\"},"
                 "\"region\":{\"S\":\"r\"}%s,\"resources\":{\"L\":[{\"S\":\"arn:\\\"x\\\"\"}]},"
                 "\"detail\":{\"M\":{\"account\":{\"S\":\"999\"},"
                 "\"n\":{\"N\":\"123456789012345678901234567890.12345678\"},"
                 "\"s\":{\"S\":\"\\\"\\u00e9\"}}}}",
                 a == 0 ? ",\"account\":{\"S\":\"123456789012\"}" : "");
        cr_assert_str_eq(out.data, want);
        /* names + values: p"k i, source s\, detail-type t\n, time (20), region r,
         * account, resources (3 + 1 + 7), detail (M 3 + 3 elements + account 7 + 3,
         * n 1 + 38 digits: 1 + 19 pairs + exponent, s 1 + 3) */
        size_t want_size = 3 + 1 + 6 + 2 + 11 + 2 + 4 + 20 + 6 + 1 + (a == 0 ? 7 + 12 : 0) + 9 +
                           11 + 6 + 3 + 3 + 7 + 3 + 1 + 20 + 1 + 3;
        cr_assert_eq(size, want_size, "size %zu, want %zu", size, want_size);
        evbus_aws_buf_free(&out);
    }
}
