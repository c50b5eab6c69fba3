/**
 * @file test_match_checked.c
 * @brief Matching text already known to be valid JSON (detail_checked,
 * evbus__matcher_match_checked_json): what no pattern names is skipped by
 * counting brackets sixteen bytes at a time, so the cases that matter are
 * the ones a bracket counter can get wrong — brackets and quotes inside
 * strings, escaped quotes, escaped backslashes before a quote — at every
 * position relative to a sixteen-byte chunk.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

static void mark(void *arg, uint32_t rule) {
    ((char *)arg)[rule] = 1;
}

/* Values a skipper must get past whole; each is valid JSON. */
static const char *const tricky[] = {
    "\"]}\"",
    "\"{[\"",
    "\"a\\\"]}\"",
    "\"\\\\\"",
    "\"\\\\\\\"}\"",
    "[\"]\",\"[\",{\"}\":\"{\"}]",
    "{\"k\":[1,2,[3,[4,{\"x\":\"]]]\"}]]],\"q\":\"\\\"\"}",
    "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]",
    "[-122.497517059608882, 37.711109244911924, 0.0]",
    "\"\\u005d\\u007d\\\"\"",
    "\"\xc3\xa9\xe2\x82\xac]\"",
    "{}",
    "[]",
    "true",
    "null",
    "-1.5e3",
    "\"\"",
};

/* Every tricky value, preceded by padding of every length up to 40 bytes so
 * that each of its bytes falls at every chunk position, under a key no
 * pattern names, then the key the pattern names: both paths must agree, and
 * the named field must be found. */
Test(match_checked, skips_tricky_values_at_every_offset, .timeout = 60) {
    evbus__match_rule rules[] = {
        {"after", "{\"detail\":{\"want\":[\"yes\"]}}"},
        {"nested", "{\"detail\":{\"skip\":{\"inner\":[\"no\"]}}}"},
    };
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(rules, 2, &m, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    char ev[512];
    for (size_t t = 0; t < sizeof tricky / sizeof tricky[0]; t++) {
        for (int pad = 0; pad <= 40; pad++) {
            int n = snprintf(ev, sizeof ev,
                             "{\"detail\":{\"pad\":\"%*s\",\"other\":%s,\"skip\":[%s,%s],"
                             "\"want\":\"yes\"}}",
                             pad, "", tricky[t], tricky[t], tricky[t]);
            cr_assert_lt((size_t)n, sizeof ev);
            char plain[2] = {0}, checked[2] = {0};
            cr_assert_eq(evbus__matcher_match_json(m, s, ev, (size_t)n, mark, plain), EVBUS_OK,
                         "%s", ev);
            cr_assert_eq(evbus__matcher_match_checked_json(m, s, ev, (size_t)n, mark, checked),
                         EVBUS_OK, "%s", ev);
            cr_assert(plain[0] && !plain[1], "validating path: %s", ev);
            cr_assert(checked[0] && !checked[1], "checked path disagrees: %s", ev);
        }
    }
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

/* The envelope entry point: a detail no pattern looks into is not read at
 * all when checked (so even text that is not JSON passes, by contract), and
 * one it looks into is walked the same way. */
Test(match_checked, envelope_detail_checked) {
    evbus__match_rule rules[] = {
        {"src", "{\"source\":[\"a\"]}"},
        {"det", "{\"detail\":{\"x\":[1]}}"},
    };
    evbus__matcher *only_src = NULL, *both = NULL;
    evbus__match_scratch *s1 = NULL, *s2 = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(rules, 1, &only_src, err, sizeof err), EVBUS_OK);
    cr_assert_eq(evbus__matcher_compile(rules, 2, &both, err, sizeof err), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(only_src, &s1), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(both, &s2), EVBUS_OK);
    const char *not_json = "{\"x\": nope";
    evbus__match_event ev = {.source = "a", .detail = not_json, .detail_len = strlen(not_json)};
    char hit[2] = {0};
    cr_expect_eq(evbus__matcher_match(only_src, s1, &ev, mark, hit), EVBUS_EPROTO,
                 "unchecked, the detail is validated");
    ev.detail_checked = true;
    cr_expect_eq(evbus__matcher_match(only_src, s1, &ev, mark, hit), EVBUS_OK);
    cr_expect(hit[0]);
    const char *detail = "{\"y\":[\"]\",{\"z\":\"\\\"\"}],\"x\":1}";
    ev.detail = detail;
    ev.detail_len = strlen(detail);
    memset(hit, 0, sizeof hit);
    cr_expect_eq(evbus__matcher_match(both, s2, &ev, mark, hit), EVBUS_OK);
    cr_expect(hit[0] && hit[1]);
    evbus__match_scratch_destroy(&s1);
    evbus__match_scratch_destroy(&s2);
    evbus__matcher_destroy(&only_src);
    evbus__matcher_destroy(&both);
}

/* Text wrongly vouched for: truncated at every length, or with a stray
 * quote or bracket. The answer is unspecified but every byte read is inside
 * the text (each prefix is copied to a buffer of exactly its length, so the
 * sanitizer build catches a read past it). */
Test(match_checked, wrong_text_is_never_read_past_its_end, .timeout = 60) {
    evbus__match_rule rules[] = {{"r", "{\"detail\":{\"want\":[\"yes\"]}}"}};
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(rules, 1, &m, err, sizeof err), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    const char *full = "{\"detail\":{\"skip\":[\"a\\\\\",{\"b\":[1,2,3,\"]]]]\"]},"
                       "[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]],\"want\":\"yes\"}}";
    size_t n = strlen(full);
    char hit[1];
    for (size_t len = 0; len <= n; len++) {
        char *copy = malloc(len ? len : 1);
        cr_assert_not_null(copy);
        memcpy(copy, full, len);
        evbus__matcher_match_checked_json(m, s, copy, len, mark, hit);
        evbus__match_event ev = {
            .source = "x", .detail = copy, .detail_len = len, .detail_checked = true};
        evbus__matcher_match(m, s, &ev, mark, hit);
        free(copy);
    }
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}
