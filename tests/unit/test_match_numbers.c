/**
 * @file test_match_numbers.c
 * @brief Numbers in patterns compare as binary64 doubles, exactly, in exact
 * values, anything-but and numeric ranges (aws/event-ruler since 1.8.0 and
 * quamina do; event-ruler up to 1.7.3 rounded to six decimals, so that [0.1]
 * matched 0.1000001). Numbers whose text names another number than their
 * double are compared as text. See match.h.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

TestSuite(numbers, .timeout = 120);

static void mark(void *arg, uint32_t rule) {
    ((char *)arg)[rule] = 1;
}

/* Compiles `n` patterns, matches the event through both entry points (whole
 * JSON, and envelope plus detail text) and checks they agree. */
static void match_both(const char *const *patterns, size_t n, const char *detail, char *hit) {
    evbus__match_rule r[64];
    cr_assert_leq(n, 64);
    for (size_t i = 0; i < n; i++)
        r[i] = (evbus__match_rule){"r", patterns[i]};
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[512];
    cr_assert_eq(evbus__matcher_compile(r, n, &m, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
    char json[512], other[64] = {0};
    snprintf(json, sizeof json, "{\"source\":\"s\",\"detail\":%s}", detail);
    memset(hit, 0, n);
    cr_assert_eq(evbus__matcher_match_json(m, s, json, strlen(json), mark, hit), EVBUS_OK, "%s",
                 json);
    evbus__match_event ev = {.source = "s", .detail = detail, .detail_len = strlen(detail)};
    cr_assert_eq(evbus__matcher_match(m, s, &ev, mark, other), EVBUS_OK);
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(hit[i], other[i], "%s against %s: the two entry points disagree", patterns[i],
                     detail);
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
}

static bool matches(const char *pattern, const char *detail) {
    char hit[1];
    match_both(&pattern, 1, detail, hit);
    return hit[0];
}

typedef struct num_case {
    const char *pattern, *value;
    bool match;
} num_case;

static void run_cases(const num_case *c, size_t n) {
    for (size_t i = 0; i < n; i++) {
        char detail[128];
        snprintf(detail, sizeof detail, "{\"x\":%s}", c[i].value);
        cr_expect_eq(matches(c[i].pattern, detail), c[i].match, "%s against %s: expected %s",
                     c[i].pattern, detail, c[i].match ? "a match" : "no match");
    }
}

#define EXACT(v) "{\"detail\":{\"x\":[" v "]}}"
#define RANGE(r) "{\"detail\":{\"x\":[{\"numeric\":[" r "]}]}}"
#define NOT(v)   "{\"detail\":{\"x\":[{\"anything-but\":[" v "]}]}}"

/* The report: [0.1] matched 0.1000001 (rounded to six decimals). */
Test(numbers, exact_values_do_not_round_to_six_decimals) {
    static const num_case c[] = {
        {EXACT("0.1"), "0.1", true},
        {EXACT("0.1"), "0.100", true},
        {EXACT("0.1"), "1e-1", true},
        {EXACT("0.1"), "0.1000001", false},
        {EXACT("0.1"), "0.10000001", false},
        {EXACT("0.1"), "0.1000000000001", false},
        {EXACT("0.1000001"), "0.1", false},
        {EXACT("0.1000001"), "0.1000001", true},
        {EXACT("5"), "5.0000001", false},
        {EXACT("5"), "5.0", true},
        {EXACT("5"), "5e0", true},
        {EXACT("-0"), "0", true},
        {EXACT("1e-7"), "0", false},
        {EXACT("1e-7"), "0.0000001", true},
        {EXACT("123456.7890123"), "123456.7890123", true},
        {EXACT("123456.7890123"), "123456.789012", false},
        /* outside the range of numeric operators, still exact */
        {EXACT("6e9"), "6000000000", true},
        {EXACT("6e9"), "6000000000.000001", false},
        {EXACT("1e300"), "1.0e300", true},
        /* C's %.17g of 0.1 is 0.1's double */
        {EXACT("0.1"), "0.10000000000000001", true},
        {EXACT("0.10000000000000001"), "0.1", true},
        {EXACT("0.1"), "0.10000000000000002", false},
        /* texts naming another number than their double: compared as text */
        {EXACT("9007199254740993"), "9007199254740993", true},
        {EXACT("9007199254740993"), "9007199254740992", false},
        {EXACT("9007199254740992"), "9007199254740993", false},
        {EXACT("1234567890123456789"), "1234567890123456789", true},
        {EXACT("1234567890123456789"), "1234567890123456788", false},
        {EXACT("0.1"), "0.1000000000000000055511151231257827", false},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

/* Amazon's note (15 digits, six decimals) is what is promised; between
 * those digits the comparison is exact too. */
Test(numbers, ranges_compare_exactly) {
    static const num_case c[] = {
        {RANGE("\">\", 0.1"), "0.1000001", true},
        {RANGE("\">\", 0.1"), "0.1", false},
        {RANGE("\">\", 0.1"), "0.10000000000000002", true},
        {RANGE("\"<=\", 0.1"), "0.1000001", false},
        {RANGE("\"<=\", 0.1"), "0.1", true},
        {RANGE("\"<\", 0.1"), "0.09999999999999999", true},
        {RANGE("\"=\", 0.1"), "0.1000001", false},
        {RANGE("\"=\", 0.1"), "1e-1", true},
        {RANGE("\">=\", 1, \"<\", 1.0000001"), "1.00000001", true},
        {RANGE("\">=\", 1, \"<\", 1.0000001"), "1.0000001", false},
        {RANGE("\">\", -1.5"), "-1.4999999", true},
        {RANGE("\">\", -1.5"), "-1.5000001", false},
        {RANGE("\">\", 4999999999.999999"), "5000000000", true},
        /* the documented range still bounds numeric operators */
        {RANGE("\">\", 0"), "5000000000", true},
        {RANGE("\">\", 0"), "5000000000.000001", false},
        {RANGE("\"<\", 0"), "-1e10", false},
        /* numbers compared as text hold no numeric operator */
        {RANGE("\">\", 0"), "0.30000000000000003", false},
        {RANGE("\">\", 0"), "0.30000000000000004", true},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

Test(numbers, anything_but_numbers_compare_exactly) {
    static const num_case c[] = {
        {NOT("0.1"), "0.1", false},
        {NOT("0.1"), "0.1000001", true},
        {NOT("0.1"), "0.10000000000000001", false},
        {NOT("100, 200"), "200.0", false},
        {NOT("100, 200"), "200.0000001", true},
        /* a number compared as text is none of the numbers */
        {NOT("100"), "100.00000000000000001", true},
        {NOT("100"), "\"100\"", true},
    };
    run_cases(c, sizeof c / sizeof c[0]);
}

/* Numbers that cannot be compared by value are refused where only a value
 * will do; reals jansson would silently round are refused everywhere. */
Test(numbers, operands_that_are_not_doubles_are_refused) {
    static const struct {
        const char *pattern, *error;
    } c[] = {
        {RANGE("\">\", 0.30000000000000003"), "has more digits than a binary64 double holds"},
        {RANGE("\"<\", 9007199254740993"), "cannot be compared by value"},
        {NOT("9007199254740993"), "cannot be compared by value"},
        {EXACT("0.30000000000000003"), "it would read as 0.30000000000000004"},
        {EXACT("1e-400"), "beyond its range"},
        {RANGE("\">\", 5000000001"), "outside EventBridge's numeric range"},
    };
    for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
        evbus__match_rule r = {"n", c[i].pattern};
        evbus__matcher *m = NULL;
        char err[512] = "";
        cr_expect_eq(evbus__matcher_compile(&r, 1, &m, err, sizeof err), EVBUS_ECONFIG, "%s",
                     c[i].pattern);
        cr_expect(strstr(err, c[i].error) != NULL, "%s: %s", c[i].pattern, err);
        evbus__matcher_destroy(&m);
    }
}

/* ---- random numbers against C's own double comparisons ---- */

static unsigned seed = 20260;
static double rnd_unit(void) {
    seed = seed * 1103515245u + 12345u;
    return (double)(seed >> 8) / (double)(1u << 24);
}

/* A random double from about 1e-6 to 1e6, printed in one of the ways
 * producers print numbers: with up to 15 significant digits (%.15g and
 * shorter) or 17 (%.17g, which always names the double itself). */
static double rnd_number(char *out, size_t cap) {
    double d = (rnd_unit() - 0.5) * pow(10, (int)(rnd_unit() * 12) - 5);
    int digits = 1 + (int)(rnd_unit() * 16);
    if (digits == 16)
        digits = 17;
    snprintf(out, cap, "%.*g", digits, d);
    return strtod(out, NULL);
}

Test(numbers, ranges_agree_with_double_comparisons) {
    enum { N = 48 };
    static char pats[N][160];
    static double lo[N], hi[N];
    static int kind[N];
    const char *p[N];
    for (int i = 0; i < N; i++) {
        char a[40], b[40];
        double x = rnd_number(a, sizeof a), y = rnd_number(b, sizeof b);
        if (x > y) {
            double t = x;
            char tb[40];
            x = y;
            y = t;
            strcpy(tb, a);
            strcpy(a, b);
            strcpy(b, tb);
        }
        if (x == y)
            snprintf(b, sizeof b, "%.17g", y = nextafter(x, INFINITY));
        lo[i] = x;
        hi[i] = y;
        kind[i] = i % 4;
        char r[100];
        switch (kind[i]) {
        case 0: snprintf(r, sizeof r, "\">\",%s,\"<=\",%s", a, b); break;
        case 1: snprintf(r, sizeof r, "\">=\",%s,\"<\",%s", a, b); break;
        case 2: snprintf(r, sizeof r, "\">\",%s,\"<\",%s", a, b); break;
        default: snprintf(r, sizeof r, "\">=\",%s,\"<=\",%s", a, b); break;
        }
        snprintf(pats[i], sizeof pats[i], "{\"detail\":{\"x\":[{\"numeric\":[%s]}]}}", r);
        p[i] = pats[i];
    }
    char hit[N];
    for (int i = 0; i < N; i++) {
        /* at, just below and just above each bound, as %.17g prints them */
        double at[6] = {lo[i], nextafter(lo[i], -INFINITY), nextafter(lo[i], INFINITY),
                        hi[i], nextafter(hi[i], -INFINITY), nextafter(hi[i], INFINITY)};
        for (int k = 0; k < 6; k++) {
            char detail[64];
            snprintf(detail, sizeof detail, "{\"x\":%.17g}", at[k]);
            match_both(p, N, detail, hit);
            for (int j = 0; j < N; j++) {
                double v = at[k];
                bool want = (kind[j] == 0 || kind[j] == 2 ? v > lo[j] : v >= lo[j]) &&
                            (kind[j] == 0 || kind[j] == 3 ? v <= hi[j] : v < hi[j]);
                cr_assert_eq(hit[j], want, "%s against %s", p[j], detail);
            }
        }
    }
}

Test(numbers, exact_values_agree_with_double_equality) {
    for (int i = 0; i < 200; i++) {
        char a[40], pattern[96];
        double d = rnd_number(a, sizeof a);
        snprintf(pattern, sizeof pattern, "{\"detail\":{\"x\":[%s]}}", a);
        char same[64], shortest[64], next[64];
        snprintf(same, sizeof same, "{\"x\":%.17g}", d);
        for (int digits = 1; digits <= 17; digits++) {
            snprintf(shortest, sizeof shortest, "%.*g", digits, d);
            if (strtod(shortest, NULL) == d)
                break;
        }
        char sh[80];
        snprintf(sh, sizeof sh, "{\"x\":%s}", shortest);
        snprintf(next, sizeof next, "{\"x\":%.17g}", nextafter(d, INFINITY));
        cr_assert(matches(pattern, same), "%s against %s", pattern, same);
        cr_assert(matches(pattern, sh), "%s against %s", pattern, sh);
        cr_assert(!matches(pattern, next), "%s against %s", pattern, next);
    }
}
