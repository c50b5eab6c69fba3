/* Event validation and the JSON detail check, as tables of cases. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "common/json_check.h"
#include "evbus/evbus.h"
#include "validate.h"

typedef struct json_case {
    char text[96];
    int ok;
    char why[48];
} json_case;

ParameterizedTestParameters(json, check_object) {
    static json_case cases[] = {
        {"{}", 1, ""},
        {"  {\"a\": 1}\n", 1, ""},
        {"{\"a\":[1,-2.5e+3,true,false,null,\"x\",{}]}", 1, ""},
        {"{\"u\":\"\\u00e9\\n\\\"\"}", 1, ""},
        {"{\"k\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}", 1, ""},
        {"[]", 0, "not a JSON object"},
        {"\"str\"", 0, "not a JSON object"},
        {"", 0, "not a JSON object"},
        {"{", 0, "expected a member name"},
        {"{\"a\":1", 0, "unterminated object"},
        {"{\"a\":1,}", 0, "expected a member name"},
        {"{\"a\" 1}", 0, "expected ':'"},
        {"{\"a\":01}", 0, "expected ',' or '}'"},
        {"{\"a\":1.}", 0, "invalid number"},
        {"{\"a\":-}", 0, "invalid number"},
        {"{\"a\":tru}", 0, "invalid literal"},
        {"{\"a\":\"\\x\"}", 0, "invalid escape"},
        {"{\"a\":\"\\u12G4\"}", 0, "invalid \\u escape"},
        {"{\"a\":\"\\ud83d\\ude00\"}", 1, ""},
        {"{\"a\":\"\\uDDDD\"}", 0, "unpaired surrogate"},
        {"{\"a\":\"\\ud83d x\"}", 0, "unpaired surrogate"},
        {"{\"a\":\"\\ud83d\\u0041\"}", 0, "unpaired surrogate"},
        {"{\"a\":\"tab\there\"}", 0, "control character"},
        {"{\"a\":\"\xc0\xaf\"}", 0, "invalid UTF-8"},
        {"{\"a\":\"\xed\xa0\x80\"}", 0, "invalid UTF-8"},
        {"{\"a\":\"\xe2\x82\"}", 0, "invalid UTF-8"},
        {"{} {}", 0, "trailing characters"},
        {"{\"a\":[1 2]}", 0, "expected ',' or ']'"},
    };
    return cr_make_param_array(json_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(json_case *c, json, check_object) {
    const char *why = NULL;
    size_t off = 0;
    int rc = evbus__json_check_object(c->text, strlen(c->text), &why, &off);
    if (c->ok) {
        cr_assert_eq(rc, 0, "'%s' refused: %s at %zu", c->text, why, off);
    } else {
        cr_assert_eq(rc, -1, "'%s' accepted", c->text);
        cr_assert(strstr(why, c->why), "'%s': got '%s', wanted '%s'", c->text, why, c->why);
        cr_assert_leq(off, strlen(c->text));
    }
}

Test(json, depth_limit) {
    char deep[2 * (EVBUS_JSON_MAX_DEPTH + 2) + 8];
    size_t n = 0;
    deep[n++] = '{';
    deep[n++] = '"', deep[n++] = 'a', deep[n++] = '"', deep[n++] = ':';
    for (int i = 0; i < EVBUS_JSON_MAX_DEPTH; i++)
        deep[n++] = '[';
    for (int i = 0; i < EVBUS_JSON_MAX_DEPTH; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    const char *why;
    size_t off;
    cr_assert_eq(evbus__json_check_object(deep, n, &why, &off), -1);
    cr_assert_str_eq(why, "nested too deeply");
}

typedef struct event_case {
    char field[24];
    char value[300];
    char why[64]; /* "" when valid */
} event_case;

ParameterizedTestParameters(event, validate) {
    static event_case cases[] = {
        {"none", "", ""},
        {"source", "", "source is required"},
        {"detail_type", "", "detail_type is required"},
        {"detail", "", "detail is required"},
        {"detail", "[1]", "detail is not a JSON object"},
        {"time", "2026-11-23T17:44:20Z", ""},
        {"time", "2026-11-23T17:44:20.123+01:00", ""},
        {"time", "2026-13-23T17:44:20Z", "RFC 3339"},
        {"time", "2026-11-23 17:44:20", "RFC 3339"},
        /* Days past the month's end: February by leap year (by 4, not by
         * 100 unless by 400), and the 30-day months. */
        {"time", "2026-02-31T00:00:00Z", "RFC 3339"},
        {"time", "2026-02-29T00:00:00Z", "RFC 3339"},
        {"time", "2028-02-29T00:00:00Z", ""},
        {"time", "1900-02-29T00:00:00Z", "RFC 3339"},
        {"time", "2000-02-29T00:00:00Z", ""},
        {"time", "2026-04-31T00:00:00Z", "RFC 3339"},
        {"time", "2026-12-31T23:59:59Z", ""},
        {"time", "2026-01-00T00:00:00Z", "RFC 3339"},
        {"id", "\xff\xfe", "id is not valid UTF-8"},
        {"time", "2026-11-23T17:44:20\xffZ", "time is not valid UTF-8"},
        {"partition_key", "k", ""},
        /* Named as the raw-NUL check names them (frame.c). */
        {"attributes.key", "\xff", "attributes.key is not valid UTF-8"},
        {"attributes.value", "\xff", "attributes.value is not valid UTF-8"},
        {"resources", "\xff", "resources is not valid UTF-8"},
    };
    return cr_make_param_array(event_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(event_case *c, event, validate) {
    Evbus__V1__Event ev = EVBUS__V1__EVENT__INIT;
    ev.source = "app";
    ev.detail_type = "T";
    ev.detail = "{}";
    if (strcmp(c->field, "source") == 0)
        ev.source = c->value;
    else if (strcmp(c->field, "detail_type") == 0)
        ev.detail_type = c->value;
    else if (strcmp(c->field, "detail") == 0)
        ev.detail = c->value;
    else if (strcmp(c->field, "time") == 0)
        ev.time = c->value;
    else if (strcmp(c->field, "id") == 0)
        ev.id = c->value;
    else if (strcmp(c->field, "partition_key") == 0)
        ev.partition_key = c->value;
    Evbus__V1__Attribute attr = EVBUS__V1__ATTRIBUTE__INIT, *attrs[] = {&attr};
    attr.key = strcmp(c->field, "attributes.key") == 0 ? c->value : "k";
    attr.value = strcmp(c->field, "attributes.value") == 0 ? c->value : "v";
    if (strncmp(c->field, "attributes.", 11) == 0) {
        ev.attributes = attrs;
        ev.n_attributes = 1;
    }
    char *res[] = {c->value};
    if (strcmp(c->field, "resources") == 0) {
        ev.resources = res;
        ev.n_resources = 1;
    }
    char why[256] = "";
    int rc = evbus__event_validate(&ev, 256 * 1024, why, sizeof why);
    if (!c->why[0])
        cr_assert_eq(rc, 0, "%s=%s refused: %s", c->field, c->value, why);
    else
        cr_assert(rc == -1 && strstr(why, c->why), "%s=%s: got '%s', wanted '%s'", c->field,
                  c->value, why, c->why);
}

Test(event, limits_follow_eventbridge) {
    static char big[EVBUS_SOURCE_MAX + 2];
    memset(big, 'x', sizeof big - 1);
    Evbus__V1__Event ev = EVBUS__V1__EVENT__INIT;
    ev.source = big;
    ev.detail_type = "T";
    ev.detail = "{}";
    char why[256];
    cr_assert_eq(evbus__event_validate(&ev, 256 * 1024, why, sizeof why), -1);
    cr_assert_str_eq(why, "source is 257 bytes; the limit is 256");
    big[EVBUS_SOURCE_MAX] = '\0';
    cr_assert_eq(evbus__event_validate(&ev, 256 * 1024, why, sizeof why), 0, "%s", why);

    /* The whole event counts against max_event_size. */
    cr_assert_eq(evbus__event_validate(&ev, 100, why, sizeof why), -1);
    cr_assert(strstr(why, "the limit is 100 (ingest.max_event_size)"), "%s", why);

    char *resources[EVBUS_RESOURCES_MAX + 1];
    for (int i = 0; i <= EVBUS_RESOURCES_MAX; i++)
        resources[i] = "arn:x";
    ev.source = "app";
    ev.resources = resources;
    ev.n_resources = EVBUS_RESOURCES_MAX + 1;
    cr_assert_eq(evbus__event_validate(&ev, 256 * 1024, why, sizeof why), -1);
    cr_assert_str_eq(why, "101 resources; the limit is 100");
}

/* A reason travels back in EventAck.reason, a proto3 string: it must stay
 * valid UTF-8 even when it quotes what was sent. */
Test(event, reasons_stay_utf8) {
    Evbus__V1__Event ev = EVBUS__V1__EVENT__INIT;
    ev.source = "app";
    ev.detail_type = "T";
    ev.detail = "{}";
    /* 39 bytes, then a two-byte character across byte 40. */
    ev.time = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\xc3\xa9";
    char why[256];
    cr_assert_eq(evbus__event_validate(&ev, 256 * 1024, why, sizeof why), -1);
    cr_assert(strstr(why, "RFC 3339"), "%s", why);
    cr_assert(evbus__utf8_valid(why, strlen(why)), "reason is not UTF-8: %s", why);

    /* An id too long and not UTF-8: refused for not being UTF-8, the reason
     * that keeps it out of the ack. */
    static char id[EVBUS_EVENT_ID_MAX + 10];
    memset(id, '\xff', sizeof id - 1);
    ev.time = "";
    ev.id = id;
    cr_assert_eq(evbus__event_validate(&ev, 256 * 1024, why, sizeof why), -1);
    cr_assert_str_eq(why, "id is not valid UTF-8");
}
