/**
 * @file test_number_text.c
 * @brief Which number texts are compared by value: those that name their
 * own double (printed with as many significant digits, the double gives the
 * text back). The parser decides this for 16 and 17 digits with integer
 * arithmetic instead of printing; here it is checked against printing, on
 * texts of every length near doubles of every magnitude the fast check
 * takes, and on the texts just beside them.
 */
#include <criterion/criterion.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

/* The reference: print strtod(text) with the text's significant digits and
 * compare the digits and exponent. `text` is "D.DDDDe±X" (as %.*e prints). */
static bool names_own_double(const char *text, int nd) {
    double d = strtod(text, NULL);
    char back[64];
    snprintf(back, sizeof back, "%.*e", nd - 1, fabs(d));
    return strcmp(back, text[0] == '-' ? text + 1 : text) == 0;
}

static uint64_t next_rand(uint64_t *s) {
    *s ^= *s << 13;
    *s ^= *s >> 7;
    *s ^= *s << 17;
    return *s;
}

Test(number_text, sixteen_and_seventeen_digits_agree_with_printing, .timeout = 60) {
    uint64_t seed = 0x9E3779B97F4A7C15ULL;
    size_t own = 0, text = 0;
    for (int i = 0; i < 200000; i++) {
        /* A double of any magnitude from 1e-20 to 1e20, printed with 16 or
         * 17 digits, then that text's last digit moved by -1, 0 or +1. */
        uint64_t r = next_rand(&seed);
        double d = ldexp((double)(r >> 11) / 9007199254740992.0 + 0.5, (int)(r % 133) - 66);
        int nd = 16 + (int)(r >> 7 & 1);
        char t[64];
        snprintf(t, sizeof t, "%.*e", nd - 1, d);
        char *e = strchr(t, 'e');
        cr_assert_not_null(e);
        int bump = (int)((r >> 9) % 3) - 1;
        char last = e[-1];
        if (bump && last + bump >= '1' && last + bump <= '9')
            e[-1] = (char)(last + bump);
        if (e[-1] == '0')
            continue; /* a trailing zero: fewer digits, tested elsewhere */
        evbus__num n;
        cr_assert(evbus__num_parse(t, strlen(t), &n), "%s not parsed", t);
        bool want = names_own_double(t, nd);
        cr_assert_eq(n.exact, want, "%s: exact %d, printing says %d", t, n.exact, want);
        cr_assert_eq(n.d, strtod(t, NULL), "%s: %.17g is not strtod's", t, n.d);
        if (want)
            cr_assert_eq(n.key, evbus__num_key(strtod(t, NULL)), "%s: wrong double", t);
        own += want;
        text += !want;
    }
    /* Both answers were exercised, many times. */
    cr_assert_gt(own, 10000);
    cr_assert_gt(text, 10000);
}

/* Random 16- to 19-digit mantissas over every power of ten the parser turns
 * into a double without strtod, and ties between two doubles: the double
 * must be strtod's, to the bit. */
Test(number_text, doubles_of_long_texts_are_strtods, .timeout = 60) {
    uint64_t seed = 0x0123456789ABCDEFULL;
    char t[64];
    for (int i = 0; i < 300000; i++) {
        uint64_t r = next_rand(&seed);
        uint64_t mant = 1000000000000000ULL + r % 9000000000000000000ULL;
        int k = 1 + (int)(next_rand(&seed) % 30);
        if (i % 3 == 0) {
            /* Exactly halfway between two doubles: in [2^52, 2^53) they are
             * the integers, so M.5 (17 digits) is a tie, which strtod
             * rounds to the even one. */
            snprintf(t, sizeof t, "%" PRIu64 ".5", (uint64_t)1 << 52 | (r >> 12));
        } else {
            snprintf(t, sizeof t, "%" PRIu64 "e-%d", mant, k);
        }
        evbus__num n;
        cr_assert(evbus__num_parse(t, strlen(t), &n), "%s not parsed", t);
        if (!isnan(n.d))
            cr_assert_eq(n.d, strtod(t, NULL), "%s: %.17g is not strtod's", t, n.d);
    }
}

Test(number_text, longer_texts_are_text_and_known_cases_hold) {
    static const struct {
        const char *s;
        bool exact;
    } cases[] = {
        {"37.807807921694092", true},     {"-122.497517059608882", false},
        {"0.30000000000000004", true},    {"0.30000000000000003", false},
        {"9007199254740993", false},      {"9007199254740992", true},
        {"0.10000000000000001", true},    {"0.1000000000000000055511", false},
        {"1.7976931348623157e308", true}, {"2.2250738585072014e-308", true},
        {"123456789012345678", false},    {"1234567890123456700", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        evbus__num n;
        cr_assert(evbus__num_parse(cases[i].s, strlen(cases[i].s), &n), "%s", cases[i].s);
        cr_expect_eq(n.exact, cases[i].exact, "%s: exact %d", cases[i].s, n.exact);
    }
}
