/* The PutEvents body reader (http_putevents_read.c): what it takes out of
 * an entry (escapes, surrogate pairs, escaped member names, Time as a number,
 * the id resource), what it skips (members it does not know, at any depth),
 * and which bodies it refuses whole, with the reason. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_putevents.h"

TestSuite(putevents_decode, .timeout = 30);

static evbus__putevents pe;
static char why[512];
static char *body;

/* Decodes text from a heap copy of exactly its size (the reader works in
 * place; the sanitizers see a read past the end). */
static bool decode(const char *text) {
    free(body);
    size_t len = strlen(text);
    body = malloc(len ? len : 1);
    memcpy(body, text, len);
    why[0] = '\0';
    return evbus__putevents_decode(body, len, &pe, why, sizeof why);
}

Test(putevents_decode, takes_every_member_of_an_entry) {
    cr_assert(decode(" {\"Entries\" : [ {\"Source\":\"com.example.a\", \"DetailType\":\"T\",\n"
                     "\"Detail\":\"{\\\"k\\\":\\\"v\\\"}\",\"Resources\":[\"arn:x\",\"evbus:id/"
                     "id-1\",\"arn:y\"],\"EventBusName\":\"orders\",\"TraceHeader\":\"t\","
                     "\"Time\":1795455860.25}, {\"Source\":\"com.example.b\",\"DetailType\":"
                     "\"U\",\"Detail\":\"{}\",\"Time\":\"2026-11-23T17:44:20Z\"} ] } \n"),
              "%s", why);
    cr_assert_eq(pe.n, 2);
    Evbus__V1__Event *a = &pe.events[0], *b = &pe.events[1];
    cr_assert_str_eq(a->source, "com.example.a");
    cr_assert_str_eq(a->detail_type, "T");
    cr_assert_str_eq(a->detail, "{\"k\":\"v\"}");
    cr_assert_str_eq(a->id, "id-1");
    cr_assert_eq(a->n_resources, 2);
    cr_assert_str_eq(a->resources[0], "arn:x");
    cr_assert_str_eq(a->resources[1], "arn:y");
    cr_assert_str_eq(a->time, "2026-11-23T17:44:20.250Z");
    cr_assert_eq(a->n_attributes, 1);
    cr_assert_str_eq(a->attributes[0]->key, "event_bus_name");
    cr_assert_str_eq(a->attributes[0]->value, "orders");
    cr_assert_str_eq(b->id, "");
    cr_assert_str_eq(b->time, "2026-11-23T17:44:20Z");
    cr_assert_eq(b->n_resources, 0);
    cr_assert_eq(b->n_attributes, 0);
    cr_assert_null(pe.early[0].code);
}

Test(putevents_decode, unescapes_strings_and_member_names) {
    cr_assert(decode("{\"Entries\":[{\"\\u0053ource\":\"a\\\"b\\\\c\\/d\\n\\t\\u00e9\\u20ac"
                     "\\ud83d\\ude00\xc3\xa9\",\"DetailType\":\"\",\"Detail\":null}]}"),
              "%s", why);
    cr_assert_str_eq(pe.events[0].source,
                     "a\"b\\c/d\n\t\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xc3\xa9");
    cr_assert_str_eq(pe.events[0].detail_type, "");
    cr_assert_str_eq(pe.events[0].detail, "");
}

Test(putevents_decode, skips_members_it_does_not_know) {
    cr_assert(decode("{\"Other\":{\"a\":[1,{\"b\":\"]}\\\"\"}],\"c\":-1.5e3},\"Entries\":[{\"X\":"
                     "[[[true,false,null]]],\"Source\":\"s\",\"Y\":\"\\u0000\"}],\"Z\":0}"),
              "%s", why);
    cr_assert_eq(pe.n, 1);
    cr_assert_str_eq(pe.events[0].source, "s");
}

Test(putevents_decode, answers_bad_resources_per_entry) {
    char text[4096] = "{\"Entries\":[{\"Source\":\"s\",\"Resources\":[";
    for (int i = 0; i < 102; i++)
        strcat(text, i ? ",\"r\"" : "\"r\"");
    strcat(text, "]},{\"Source\":\"t\",\"Resources\":[\"evbus:id/\"]}]}");
    cr_assert(decode(text), "%s", why);
    cr_assert_eq(pe.n, 2);
    cr_assert_str_eq(pe.early[0].code, "InvalidArgument");
    cr_assert(strstr(pe.early[0].message, "more than 100"));
    cr_assert_str_eq(pe.early[1].code, "InvalidArgument");
    cr_assert(strstr(pe.early[1].message, "evbus:id/"));
}

typedef struct refusal {
    char body[200];
    char reason[80];
} refusal;

ParameterizedTestParameters(putevents_decode, refuses_the_whole_request) {
    static refusal cases[] = {
        {"", "not valid JSON"},
        {"{\"Entries\": [", "not valid JSON"},
        {"{\"Entries\":[{\"Source\":\"\xff\"}]}", "not valid JSON"},
        {"{\"Entries\":[{\"Source\":\"\\ud800\"}]}", "not valid JSON"},
        {"{\"Entries\":[{\"Source\":\"a\"}]} x", "not valid JSON"},
        {"{\"Entries\":[{\"Source\":\"a\\u0000b\"}]}", "\\u0000"},
        {"{\"Entries\":[{\"Source\":\"a\",\"Source\":\"b\"}]}", "Source twice"},
        {"{\"Entries\":[],\"Entries\":[]}", "Entries twice"},
        {"[1]", "must be a JSON object"},
        {"{}", "Member must not be null"},
        {"{\"Entries\":null}", "Member must not be null"},
        {"{\"Entries\":{}}", "must be an array"},
        {"{\"Entries\":[]}", "greater than or equal to 1"},
        {"{\"Entries\":[{},{},{},{},{},{},{},{},{},{},{}]}",
         "less than or equal to 10 (it has 11)"},
        {"{\"Entries\":[1,{},{},{},{},{},{},{},{},{},{}]}", "less than or equal to 10"},
        {"{\"Entries\":[{\"Source\":\"a\"},2]}", "Entries[1] must be an object"},
        {"{\"Entries\":[{\"Source\":1}]}", "must be strings"},
        {"{\"Entries\":[{\"Time\":true}]}", "Time must be epoch seconds"},
        {"{\"Entries\":[{\"Time\":1e300}]}", "Time must be epoch seconds"},
        {"{\"Entries\":[{\"Resources\":\"r\"}]}", "Resources must be an array"},
        {"{\"Entries\":[{\"Resources\":[\"a\",{}]}]}", "Resources[1] must be a string"},
        {"{\"EndpointId\":\"x\",\"Entries\":[{}]}", "EndpointId"},
    };
    return cr_make_param_array(refusal, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(refusal *c, putevents_decode, refuses_the_whole_request) {
    cr_assert_not(decode(c->body), "accepted %s", c->body);
    cr_assert(strstr(why, c->reason), "%s: %s", c->body, why);
    free(body);
    body = NULL;
}

/* Runs between escapes of every length around the word size the reader
 * scans by, with the string ending at every offset from the body's end. */
Test(putevents_decode, unescapes_runs_of_every_length) {
    for (size_t run = 0; run < 20; run++) {
        char text[512] = "{\"Entries\":[{\"Detail\":\"", want[256] = "";
        for (int k = 0; k < 3; k++) {
            for (size_t i = 0; i < run; i++) {
                strcat(text, "ab");
                strcat(want, "ab");
            }
            strcat(text, k == 1 ? "\\u00e9" : "\\\"");
            strcat(want, k == 1 ? "\xc3\xa9" : "\"");
        }
        strcat(text, "z\"}]}");
        strcat(want, "z");
        cr_assert(decode(text), "%s: %s", text, why);
        cr_assert_str_eq(pe.events[0].detail, want, "%s", text);
    }
}
