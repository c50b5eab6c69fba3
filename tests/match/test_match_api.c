/**
 * @file test_match_api.c
 * @brief The matcher's contract beyond the conformance table: argument
 * checks, several rules at once, the envelope entry point, errors on bad
 * events, explanations, and the value helpers (numbers, CIDR, wildcards,
 * case folding, JSON validation) at their edges.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

typedef struct hits {
    uint32_t rules[64];
    size_t n;
} hits;

static void collect(void *arg, uint32_t rule) {
    hits *h = arg;
    if (h->n < 64)
        h->rules[h->n++] = rule;
}

static void mark(void *arg, uint32_t rule) {
    ((char *)arg)[rule] = 1;
}

static bool has(const hits *h, uint32_t r) {
    for (size_t i = 0; i < h->n; i++)
        if (h->rules[i] == r)
            return true;
    return false;
}

TestSuite(match_api, .timeout = 30);

Test(match_api, arguments_are_checked) {
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[256];
    evbus__match_rule r = {"r", "{\"a\":[\"b\"]}"};
    cr_assert_eq(evbus__matcher_compile(NULL, 1, &m, err, sizeof err), EVBUS_EINVAL);
    cr_assert_eq(evbus__matcher_compile(&r, 1, NULL, err, sizeof err), EVBUS_EINVAL);
    cr_assert_eq(evbus__matcher_compile(&r, 1, &m, NULL, 0), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(NULL, &s), EVBUS_EINVAL);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    hits h = {0};
    cr_assert_eq(evbus__matcher_match_json(m, s, NULL, 3, collect, &h), EVBUS_EINVAL);
    cr_assert_eq(evbus__matcher_match_json(m, s, "{}", 2, NULL, &h), EVBUS_EINVAL);
    cr_assert_eq(evbus__matcher_match(m, s, NULL, collect, &h), EVBUS_EINVAL);

    evbus__matcher *other = NULL;
    cr_assert_eq(evbus__matcher_compile(&r, 1, &other, err, sizeof err), EVBUS_OK);
    cr_assert_eq(evbus__matcher_match_json(other, s, "{}", 2, collect, &h), EVBUS_EINVAL,
                 "a scratch belongs to one matcher");
    char buf[64];
    cr_assert_eq(evbus__matcher_explain(m, s, 1, buf, sizeof buf), EVBUS_EINVAL);

    evbus__match_rule none = {"r", NULL};
    cr_assert_eq(evbus__matcher_compile(&none, 1, &other, err, sizeof err), EVBUS_ECONFIG);
    cr_assert_not_null(other, "untouched on failure");

    evbus__match_scratch_destroy(&s);
    cr_assert_null(s);
    evbus__match_scratch_destroy(&s);
    evbus__match_scratch_destroy(NULL);
    evbus__matcher_destroy(&m);
    cr_assert_null(m);
    evbus__matcher_destroy(&m);
    evbus__matcher_destroy(NULL);
    evbus__matcher_destroy(&other);
}

Test(match_api, zero_rules_match_nothing) {
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    cr_assert_eq(evbus__matcher_compile(NULL, 0, &m, NULL, 0), EVBUS_OK);
    cr_assert_eq(evbus__matcher_rule_count(m), 0);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    hits h = {0};
    cr_assert_eq(evbus__matcher_match_json(m, s, "{\"a\":1}", 7, collect, &h), EVBUS_OK);
    cr_assert_eq(h.n, 0);
    cr_assert_eq(evbus__matcher_match_json(m, s, "{\"a\":", 5, collect, &h), EVBUS_EPROTO,
                 "still validated");
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

Test(match_api, many_rules_report_each_once) {
    evbus__match_rule r[] = {
        {"by-source", "{\"source\":[\"aws.ec2\"]}"},
        {"by-state", "{\"detail\":{\"state\":[\"running\"]}}"},
        {"both", "{\"source\":[\"aws.ec2\"],\"detail\":{\"state\":[\"running\"]}}"},
        {"or", "{\"$or\":[{\"source\":[\"aws.ec2\"]},{\"detail\":{\"state\":[\"running\"]}}]}"},
        {"never", "{\"source\":[\"aws.s3\"]}"},
        {"absent", "{\"detail\":{\"gone\":[{\"exists\":false}]}}"},
        {"same-as-0", "{\"source\":[\"aws.ec2\"]}"},
    };
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(r, 7, &m, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(evbus__matcher_rule_count(m), 7);
    cr_assert_gt(evbus__matcher_memory(m), 0);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    const char *ev = "{\"source\":\"aws.ec2\",\"detail\":{\"state\":[\"running\",\"running\"]}}";
    for (int round = 0; round < 3; round++) {
        hits h = {0};
        cr_assert_eq(evbus__matcher_match_json(m, s, ev, strlen(ev), collect, &h), EVBUS_OK);
        cr_assert_eq(h.n, 6, "round %d: %zu hits", round, h.n);
        for (uint32_t i = 0; i < 7; i++)
            cr_assert_eq(has(&h, i), i != 4, "rule %u", i);
    }
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

Test(match_api, envelope_struct) {
    evbus__match_rule r[] = {
        {"res", "{\"resources\":[\"arn:b\"]}"},
        {"detail",
         "{\"source\":[{\"prefix\":\"com.\"}],\"detail\":{\"n\":[{\"numeric\":[\">=\",2]}]}}"},
        {"no-detail", "{\"detail\":[{\"exists\":false}]}"},
        {"account",
         "{\"account\":[\"1\"],\"version\":[\"0\"],\"id\":[\"x\"],\"time\":[{\"prefix\":\"2026\"}],"
         "\"region\":[\"eu-west-1\"],\"detail-type\":[\"T\"]}"},
    };
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(r, 4, &m, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    const char *res[] = {"arn:a", "arn:b"};
    const char *detail = "{\"n\":2.5}";
    evbus__match_event ev = {"0", "x", "com.acme", "T",    "2026-01-01",   "eu-west-1",
                             "1", res, 2,          detail, strlen(detail), false};
    hits h = {0};
    cr_assert_eq(evbus__matcher_match(m, s, &ev, collect, &h), EVBUS_OK);
    /* exists:false on "detail" holds: an object is not a value (EventBridge's
     * exists works on leaves only). */
    cr_assert(has(&h, 0) && has(&h, 1) && has(&h, 2) && has(&h, 3));
    ev.detail = NULL;
    ev.detail_len = 0;
    ev.n_resources = 1;
    h.n = 0;
    cr_assert_eq(evbus__matcher_match(m, s, &ev, collect, &h), EVBUS_OK);
    cr_assert(!has(&h, 0) && !has(&h, 1) && has(&h, 2) && has(&h, 3));
    ev.detail = "{\"n\":";
    ev.detail_len = 5;
    h.n = 0;
    cr_assert_eq(evbus__matcher_match(m, s, &ev, collect, &h), EVBUS_EPROTO);
    cr_assert_eq(h.n, 0, "nothing is reported for a bad event");
    size_t off = 99;
    cr_assert_not_null(evbus__match_scratch_error(s, &off));
    cr_assert_eq(off, 5);
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

Test(match_api, bad_events_are_refused_with_an_offset) {
    static const struct {
        const char *json;
        size_t off;
        const char *why;
    } bad[] = {
        {"", 0, "an event is a JSON object"},
        {"[1]", 0, "an event is a JSON object"},
        {"{\"a\":1,}", 7, "expected a key"},
        {"{\"a\" 1}", 5, "expected ':'"},
        {"{\"source\":\"x\\q\"}", 12, "bad escape"},
        {"{\"source\":\"\\ud800\"}", 11, "unpaired surrogate"},
        {"{\"source\":\"\xc3\x28\"}", 11, "invalid UTF-8"},
        {"{\"n\":01}", 6, "bad number"},
        {"{\"a\":tru}", 5, "unexpected character"},
        {"{} {}", 3, "trailing characters"},
        {"{\"source\":\"a\nb\"}", 12, "control character"},
    };
    evbus__match_rule r = {"r", "{\"source\":[\"x\"],\"n\":[1]}"};
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    cr_assert_eq(evbus__matcher_compile(&r, 1, &m, NULL, 0), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hits h = {0};
        size_t off = 0;
        cr_expect_eq(evbus__matcher_match_json(m, s, bad[i].json, strlen(bad[i].json), collect, &h),
                     EVBUS_EPROTO, "%s", bad[i].json);
        const char *why = evbus__match_scratch_error(s, &off);
        cr_expect(why && strstr(why, bad[i].why), "%s: %s", bad[i].json, why ? why : "(null)");
        cr_expect_eq(off, bad[i].off, "%s: offset %zu", bad[i].json, off);
    }
    /* Deep nesting is refused, not a stack overflow. */
    char deep[1024];
    size_t n = 0;
    n += (size_t)sprintf(deep, "{\"n\":");
    for (int i = 0; i < 200; i++)
        deep[n++] = '[';
    deep[n] = '\0';
    cr_expect_eq(evbus__matcher_match_json(m, s, deep, n, collect, NULL), EVBUS_EPROTO);
    cr_expect_str_eq(evbus__match_scratch_error(s, NULL), "nested too deep");
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

Test(match_api, errors_name_the_rule) {
    evbus__match_rule r[] = {
        {"fine", "{\"a\":[\"b\"]}"},
        {"orders", "{\"detail\":{\"amount\":[{\"numeric\":[\">\"]}]}}"},
    };
    evbus__matcher *m = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(r, 2, &m, err, sizeof err), EVBUS_ECONFIG);
    cr_assert_null(m);
    const char *want = "rule \"orders\": pattern.detail.amount[0].numeric: numeric needs an "
                       "operator and a number";
    cr_assert(!strncmp(err, want, strlen(want)), "%s", err);
    size_t bad = 99;
    evbus__match_opts opts = {0, &bad};
    cr_assert_eq(evbus__matcher_compile_opts(r, 2, &opts, &m, err, sizeof err), EVBUS_ECONFIG);
    cr_assert_eq(bad, 1, "the index of the refused rule");
    /* A short buffer still ends in a NUL. */
    char small[8];
    cr_assert_eq(evbus__matcher_compile(r, 2, &m, small, sizeof small), EVBUS_ECONFIG);
    cr_assert_eq(strlen(small), 7);
}

Test(match_api, pattern_length_option) {
    char *p = malloc(5000);
    strcpy(p, "{\"a\":[\"");
    size_t o = strlen(p);
    while (o < 3000)
        p[o++] = 'x';
    strcpy(p + o, "\"]}");
    evbus__match_rule r = {"long", p};
    evbus__matcher *m = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(&r, 1, &m, err, sizeof err), EVBUS_ECONFIG);
    cr_assert(strstr(err, "EventBridge's limit is 2048"), "%s", err);
    evbus__match_opts opts = {4096, NULL};
    cr_assert_eq(evbus__matcher_compile_opts(&r, 1, &opts, &m, err, sizeof err), EVBUS_OK);
    evbus__matcher_destroy(&m);
    /* Characters, not bytes: 2000 two-byte characters fit. */
    strcpy(p, "{\"a\":[\"");
    o = strlen(p);
    for (int i = 0; i < 2000; i++) {
        p[o++] = (char)0xC3;
        p[o++] = (char)0xA9;
    }
    strcpy(p + o, "\"]}");
    cr_assert_eq(evbus__matcher_compile(&r, 1, &m, err, sizeof err), EVBUS_OK, "%s", err);
    evbus__matcher_destroy(&m);
    free(p);
}

Test(match_api, explain_names_the_first_failing_field) {
    static const struct {
        const char *pattern, *event, *want;
    } cases[] = {
        {"{\"source\":[\"a\"],\"detail\":{\"state\":[\"running\"]}}",
         "{\"source\":\"a\",\"detail\":{\"state\":\"stopped\"}}",
         "detail.state: wanted [\"running\"] (no value of the event matched)"},
        {"{\"source\":[\"a\"],\"detail\":{\"state\":[\"running\"]}}", "{\"source\":\"b\"}",
         "source: wanted [\"a\"] (no value of the event matched)"},
        {"{\"detail\":{\"x\":[{\"exists\":true}]}}", "{}",
         "detail.x: wanted [{\"exists\":true}] (the event has no value there)"},
        {"{\"detail\":{\"x\":[{\"exists\":false}]}}", "{\"detail\":{\"x\":1}}",
         "detail.x: wanted no value (exists:false) but the event has one"},
        {"{\"$or\":[{\"a\":[\"1\"],\"b\":[\"2\"]},{\"c\":[\"3\"]}]}", "{\"a\":\"1\"}",
         "b: wanted [\"2\"] (the event has no value there)"},
        {"{\"a\":[\"1\"]}", "{\"a\":\"1\"}", "the rule matches"},
        {"{\"e\":{\"f\":[\"A\"],\"l\":[\"D\"]}}",
         "{\"e\":[{\"f\":\"J\",\"l\":\"D\"},{\"f\":\"A\",\"l\":\"S\"}]}",
         "every field matched, but in different elements of the same array (fields must match "
         "within one element)"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        evbus__match_rule r = {"r", cases[i].pattern};
        evbus__matcher *m = NULL;
        evbus__match_scratch *s = NULL;
        char buf[256];
        cr_assert_eq(evbus__matcher_compile(&r, 1, &m, NULL, 0), EVBUS_OK);
        cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
        hits h = {0};
        cr_assert_eq(
            evbus__matcher_match_json(m, s, cases[i].event, strlen(cases[i].event), collect, &h),
            EVBUS_OK);
        cr_assert_eq(evbus__matcher_explain(m, s, 0, buf, sizeof buf), EVBUS_OK);
        cr_expect_str_eq(buf, cases[i].want, "case %zu", i);
        evbus__match_scratch_destroy(&s);
        evbus__matcher_destroy(&m);
    }
}

/* The walk that descends into named fields and the validator that skips
 * the rest must agree on the depth limit, on either side of it. */
Test(match_api, depth_limit_is_the_same_walked_or_skipped) {
    evbus__match_rule r = {"r", "{\"detail\":{\"a\":[\"x\"]},\"b\":[\"y\"]}"};
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    cr_assert_eq(evbus__matcher_compile(&r, 1, &m, NULL, 0), EVBUS_OK);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    for (int levels = EVBUS_MATCH_DEPTH_MAX - 1; levels <= EVBUS_MATCH_DEPTH_MAX + 1; levels++) {
        for (int walked = 0; walked < 2; walked++) {
            /* {"detail":{"a":[[...["x"]...]]}} or the same under "c" */
            char buf[1024];
            size_t n = (size_t)sprintf(buf, "{\"b\":\"y\",\"detail\":{\"%s\":", walked ? "a" : "c");
            int arrays = levels - 2;
            for (int i = 0; i < arrays; i++)
                buf[n++] = '[';
            n += (size_t)sprintf(buf + n, "\"x\"");
            for (int i = 0; i < arrays; i++)
                buf[n++] = ']';
            n += (size_t)sprintf(buf + n, "}}");
            evbus_err want = levels <= EVBUS_MATCH_DEPTH_MAX ? EVBUS_OK : EVBUS_EPROTO;
            cr_expect_eq(evbus__json_validate(buf, n, NULL, NULL), want, "%d levels", levels);
            hits h = {0};
            cr_expect_eq(evbus__matcher_match_json(m, s, buf, n, collect, &h), want,
                         "%d levels, walked %d", levels, walked);
            if (want == EVBUS_OK)
                cr_expect_eq(h.n, (size_t)walked, "%d levels, walked %d", levels, walked);
        }
    }
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

/* Many numeric ranges on one field (the interval tree) against a direct
 * evaluation, at and around every bound. */
static void fmt_micros(char *out, long long v) {
    long long a = v < 0 ? -v : v;
    sprintf(out, "%s%lld.%06lld", v < 0 ? "-" : "", a / 1000000, a % 1000000);
}

typedef struct range {
    int has_lo, lo_incl, has_hi, hi_incl;
    long long lo, hi;
} range;

static bool in_range(const range *r, long long v) {
    if (r->has_lo && (r->lo_incl ? v < r->lo : v <= r->lo))
        return false;
    if (r->has_hi && (r->hi_incl ? v > r->hi : v >= r->hi))
        return false;
    return true;
}

Test(match_api, many_numeric_ranges_agree_with_direct_evaluation, .timeout = 60) {
    enum { N = 400 };
    static range rg[N];
    static char pats[N][160];
    evbus__match_rule rules[N];
    unsigned seed = 12345;
#define RND() (seed = seed * 1103515245u + 12345u, (seed >> 8))
    for (int i = 0; i < N; i++) {
        range *r = &rg[i];
        long long x = (long long)(RND() % 2000000) - 1000000; /* +-1.0 in micros */
        long long y = x + (long long)(RND() % 400000) + 1;
        char a[40], b[40];
        fmt_micros(a, x);
        fmt_micros(b, y);
        switch (RND() % 5) {
        case 0: /* = */
            *r = (range){1, 1, 1, 1, x, x};
            sprintf(pats[i], "{\"n\":[{\"numeric\":[\"=\",%s]}]}", a);
            break;
        case 1: /* one lower bound */
            *r = (range){1, (int)(RND() & 1), 0, 0, x, 0};
            sprintf(pats[i], "{\"n\":[{\"numeric\":[\"%s\",%s]}]}", r->lo_incl ? ">=" : ">", a);
            break;
        case 2: /* one upper bound */
            *r = (range){0, 0, 1, (int)(RND() & 1), 0, y};
            sprintf(pats[i], "{\"n\":[{\"numeric\":[\"%s\",%s]}]}", r->hi_incl ? "<=" : "<", b);
            break;
        default: /* a range */
            *r = (range){1, (int)(RND() & 1), 1, (int)(RND() & 1), x, y};
            sprintf(pats[i], "{\"n\":[{\"numeric\":[\"%s\",%s,\"%s\",%s]}]}",
                    r->lo_incl ? ">=" : ">", a, r->hi_incl ? "<=" : "<", b);
            break;
        }
        rules[i] = (evbus__match_rule){"n", pats[i]};
    }
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[256];
    cr_assert_eq(evbus__matcher_compile(rules, N, &m, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    static char got[N];
    for (int i = 0; i < N * 3; i++) {
        const range *r = &rg[i % N];
        long long base = (i / N == 0)   ? r->lo
                         : (i / N == 1) ? r->hi
                                        : (long long)(RND() % 3000000) - 1500000;
        for (long long d = -1; d <= 1; d++) {
            long long v = base + d;
            char num[40], ev[80];
            fmt_micros(num, v);
            sprintf(ev, "{\"n\":%s}", num);
            memset(got, 0, sizeof got);
            cr_assert_eq(evbus__matcher_match_json(m, s, ev, strlen(ev), mark, got), EVBUS_OK);
            for (int k = 0; k < N; k++)
                cr_assert_eq(got[k], in_range(&rg[k], v), "%s vs %s", ev, pats[k]);
        }
    }
#undef RND
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

/* ---- value helpers ---- */

typedef struct num_case {
    char text[40];
    int ok, exact, in_range;
    double value; /* when exact */
} num_case;

/* Numbers compare as binary64 values when their text is what their double
 * prints with as many digits (see numeric.c), as text otherwise. */
ParameterizedTestParameters(values, numbers) {
    static num_case c[] = {
        {"0", 1, 1, 1, 0},
        {"-0", 1, 1, 1, 0},
        {"-0.0e5", 1, 1, 1, 0},
        {"1", 1, 1, 1, 1},
        {"-1.5", 1, 1, 1, -1.5},
        {"0.000001", 1, 1, 1, 1e-6},
        {"0.0000005", 1, 1, 1, 5e-7},
        {"0.1", 1, 1, 1, 0.1},
        {"0.1000001", 1, 1, 1, 0.1000001},
        {"3.018e2", 1, 1, 1, 301.8},
        {"1E+2", 1, 1, 1, 100},
        {"5e9", 1, 1, 1, 5e9},
        {"-5000000000", 1, 1, 1, -5e9},
        {"5000000000.000001", 1, 1, 0, 5000000000.000001},
        {"1e300", 1, 1, 0, 1e300},
        {"1E-300", 1, 1, 1, 1e-300},
        {"0.30000000000000004", 1, 1, 1, 0.30000000000000004},
        {"9007199254740992", 1, 1, 0, 9007199254740992.0},
        {"4.9e-324", 1, 1, 1, 4.9e-324},
        {"2.2250738585072014e-308", 1, 1, 1, 2.2250738585072014e-308},
        /* a double printed with 17 digits (C's %.17g) is that double */
        {"0.10000000000000001", 1, 1, 1, 0.1},
        {"1.0000000000000002", 1, 1, 1, 1.0000000000000002},
        {"5e-324", 1, 1, 1, 4.9e-324},
        /* texts that name another number than their double: compared as text */
        {"1.00000000000000022", 1, 0, 0, 0},
        {"0.30000000000000003", 1, 0, 0, 0},
        {"9007199254740993", 1, 0, 0, 0},
        {"1234567890123456789", 1, 0, 0, 0},
        {"123456789012345678901234567890", 1, 0, 0, 0},
        {"0.1234567890123456789", 1, 0, 0, 0},
        {"1e400", 1, 0, 0, 0},
        {"1e-400", 1, 0, 0, 0},
        {"01", 0, 0, 0, 0},
        {"1.", 0, 0, 0, 0},
        {".5", 0, 0, 0, 0},
        {"1e", 0, 0, 0, 0},
        {"-", 0, 0, 0, 0},
        {"+1", 0, 0, 0, 0},
        {"1x", 0, 0, 0, 0},
        {"1.2.3", 0, 0, 0, 0},
    };
    return cr_make_param_array(num_case, c, sizeof c / sizeof c[0]);
}

ParameterizedTest(num_case *c, values, numbers, .timeout = 10) {
    evbus__num n;
    bool ok = evbus__num_parse(c->text, strlen(c->text), &n);
    cr_assert_eq(ok, c->ok, "%s", c->text);
    if (!ok)
        return;
    cr_assert_eq(n.exact, c->exact, "%s", c->text);
    cr_assert_eq(n.in_range, c->in_range, "%s", c->text);
    if (n.exact)
        cr_assert_eq(n.key, evbus__num_key(c->value), "%s", c->text);
}

Test(values, number_keys_order_as_doubles, .timeout = 10) {
    static const double v[] = {-1e300, -5e9, -1.5,      -1, -0.1, -4.9e-324, 0,    4.9e-324,
                               1e-300, 0.1,  0.1000001, 1,  1.5,  5e9,       1e300};
    for (size_t i = 0; i + 1 < sizeof v / sizeof v[0]; i++)
        cr_expect_lt(evbus__num_key(v[i]), evbus__num_key(v[i + 1]), "%g < %g", v[i], v[i + 1]);
    cr_expect_eq(evbus__num_key(-0.0), evbus__num_key(0.0));
    cr_expect_eq(evbus__num_key(1.0) + 1, evbus__num_key(nextafter(1.0, 2.0)));
    cr_expect_eq(evbus__num_key(-1.0) + 1, evbus__num_key(nextafter(-1.0, 0.0)));
}

Test(values, cidr, .timeout = 10) {
    static const struct {
        const char *block, *ip;
        int parse, in;
    } c[] = {
        {"10.0.0.0/24", "10.0.0.1", 1, 1},
        {"10.0.0.0/24", "10.0.1.1", 1, 0},
        {"10.0.0.0/24", "010.0.0.1", 1, 0},
        {"10.0.0.0/8", " 10.0.0.1", 1, 0},
        {"192.168.1.1", "192.168.1.1", 1, 1},
        {"192.168.1.1", "192.168.1.2", 1, 0},
        {"1.2.3.4/33", "", 0, 0},
        {"1.2.3/24", "", 0, 0},
        {"1.2.3.4/", "", 0, 0},
        {"1.2.3.4/a", "", 0, 0},
        {"::/0", "::", 1, 1},
        {"::/0", "1.2.3.4", 1, 0},
        {"2001:db8::/32", "2001:db8:0:0:0:0:0:1", 1, 1},
        {"2001:db8::/33", "2001:db8:8000::", 1, 0},
        {"::1/128", "0:0:0:0:0:0:0:1", 1, 1},
        {"1::2::3/64", "", 0, 0},
        {"1:2:3:4:5:6:7:8:9/64", "", 0, 0},
        {"12345::/16", "", 0, 0},
        {"::ffff:1.2.3.4/128", "::ffff:102:304", 1, 1},
        {"fe80::/10", "fe80::1%eth0", 1, 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        evbus__cidr x;
        bool p = evbus__cidr_parse(c[i].block, strlen(c[i].block), &x);
        cr_expect_eq(p, c[i].parse, "%s", c[i].block);
        if (p)
            cr_expect_eq(evbus__cidr_contains(&x, c[i].ip, strlen(c[i].ip)), c[i].in, "%s in %s",
                         c[i].ip, c[i].block);
    }
}

Test(values, wildcard, .timeout = 10) {
    static const struct {
        const char *pat, *s;
        int ok;
    } c[] = {
        {"*", "", 1},          {"*", "abc", 1},           {"a*", "a", 1},
        {"*a", "ba", 1},       {"*a", "ab", 0},           {"a*b*c", "abc", 1},
        {"a*b*c", "aXbYc", 1}, {"a*b*c", "acb", 0},       {"*ab*ab*", "abab", 1},
        {"*ab*ab*", "aba", 0}, {"x\\*y", "x*y", 1},       {"x\\*y", "xzy", 0},
        {"\\\\*", "\\", 1},    {"\\\\*", "\\abc", 1},     {"\\\\*", "abc", 0},
        {"a*a", "a", 0},       {"a*a", "aa", 1},          {"", "", 1},
        {"", "a", 0},          {"*.png", "a.png.png", 1}, {"*.png", "a.pn", 0},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        cr_assert_null(evbus__wildcard_check(c[i].pat, strlen(c[i].pat)), "%s", c[i].pat);
        cr_expect_eq(evbus__wildcard_match(c[i].pat, strlen(c[i].pat), c[i].s, strlen(c[i].s)),
                     c[i].ok, "%s ~ %s", c[i].pat, c[i].s);
    }
    cr_expect_not_null(evbus__wildcard_check("a**", 3));
    cr_expect_not_null(evbus__wildcard_check("a\\", 2));
    cr_expect_not_null(evbus__wildcard_check("a\\n", 3));
}

Test(values, fold, .timeout = 10) {
    static const struct {
        const char *in, *out;
    } c[] = {
        {"ABC xyz 123", "abc xyz 123"},
        {"ÀÉÎÕÜ×", "àéîõü×"},
        {"ĀĂĄĆ", "āăąć"},
        {"ΑΒΓΣΩ", "αβγσω"},
        {"АБВЯЁ", "абвяё"},
        {"日本語", "日本語"},
        {"😀A", "😀a"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        char buf[64] = {0};
        evbus__fold(c[i].in, strlen(c[i].in), buf);
        cr_expect_str_eq(buf, c[i].out);
    }
}

Test(values, json_validate, .timeout = 10) {
    static const char *good[] = {
        "{}",
        "[]",
        "0",
        "-0.5e+10",
        "\"\"",
        "true",
        " null ",
        "[1,\"a\",{\"b\":[]}]",
        "\"\\ud83d\\ude00\"",
        "\"\\u0000\"",
        "\"\xf0\x9f\x98\x80\"",
        "{\"a\":{\"a\":{}}}",
    };
    static const char *bad[] = {
        "",
        "{",
        "[1,]",
        "{\"a\"}",
        "{\"a\":}",
        "[01]",
        "[1.]",
        "[.1]",
        "[1e]",
        "\"\\x\"",
        "\"\\u12\"",
        "\"\\udc00\"",
        "\"\xc0\xaf\"",
        "\"\xed\xa0\x80\"",
        "\"\xf4\x90\x80\x80\"",
        "[nul]",
        "{} x",
        "\"a",
        "[\"\t\"]",
        "{1:2}",
        "[1 2]",
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        cr_expect_eq(evbus__json_validate(good[i], strlen(good[i]), NULL, NULL), EVBUS_OK, "%s",
                     good[i]);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *why = NULL;
        cr_expect_eq(evbus__json_validate(bad[i], strlen(bad[i]), &why, NULL), EVBUS_EPROTO, "%s",
                     bad[i]);
        cr_expect_not_null(why);
    }
    char deep[300];
    memset(deep, '[', 129);
    memset(deep + 129, ']', 129);
    cr_expect_eq(evbus__json_validate(deep, 258, NULL, NULL), EVBUS_EPROTO);
    cr_expect_eq(evbus__json_validate(deep + 1, 256, NULL, NULL), EVBUS_OK);
}
