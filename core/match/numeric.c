/**
 * @file numeric.c
 * @brief JSON number text to the form numbers are compared in.
 *
 * Numbers compare as IEEE 754 binary64 values, exactly, as aws/event-ruler
 * has since 1.8.0 (ComparableNumber) and quamina do: [0.1] matches 0.1, 0.10
 * and 1e-1, not 0.1000001. A number is compared by value only when its text
 * names its nearest double itself: printing that double with as many
 * significant digits gives the text back. That holds for every number of up
 * to 15 significant digits (DBL_DIG) and for what JavaScript, Java, Python,
 * Go and C's %.17g print; it fails for 9007199254740993,
 * 1234567890123456789 or 0.30000000000000003, which stand for a double they
 * are not and are compared as text (match.h says where). event-ruler draws
 * the line at the shortest decimal (Java's Double.toString), which also
 * makes 0.10000000000000001, C's %.17g of 0.1 (jansson prints reals so),
 * text; here it is 0.1.
 *
 * The common case costs no strtod: up to 15 significant digits and a power
 * of ten up to 22, the double is one exact multiplication or division
 * (both operands are exact doubles and IEEE rounds the result correctly).
 * Longer texts and subnormal values go through strtod and snprintf, which
 * glibc rounds correctly.
 */
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

static const double pow10_exact[23] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                       1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                       1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

int64_t evbus__num_key(double d) {
    uint64_t bits;
    if (d == 0)
        d = 0; /* -0 is 0 */
    memcpy(&bits, &d, sizeof bits);
    /* Positive doubles order as their bits; negative ones in reverse, so
     * their magnitude bits are flipped below zero. */
    return (bits >> 63) ? (int64_t)(bits ^ 0x7FFFFFFFFFFFFFFFULL) : (int64_t)bits;
}

/* The digits and exponent of a decimal text "d.ddde±x" (snprintf's %e):
 * value = *mant * 10^*exp10 with no trailing zero in *mant. */
static void scan_e(const char *t, uint64_t *mant, long *exp10) {
    uint64_t m = 0;
    long frac = 0, e = 0;
    bool point = false;
    for (; *t && *t != 'e'; t++) {
        if (*t == '.') {
            point = true;
        } else {
            m = m * 10 + (uint64_t)(*t - '0');
            frac += point;
        }
    }
    if (*t == 'e')
        e = strtol(t + 1, NULL, 10);
    e -= frac;
    while (m && m % 10 == 0) {
        m /= 10;
        e++;
    }
    *mant = m;
    *exp10 = e;
}

/* Whether mant * 10^exp10 (nd significant digits, no trailing zero) is
 * what printing its nearest double d (finite, not zero) with nd significant
 * digits gives: the text names d itself, not another number near it. */
static bool own_digits(double d, uint64_t mant, int nd, long exp10) {
    char t[48];
    uint64_t m;
    long e;
    snprintf(t, sizeof t, "%.*e", nd - 1, fabs(d));
    scan_e(t, &m, &e);
    return m == mant && e == exp10;
}

bool evbus__num_parse(const char *s, size_t len, evbus__num *out) {
    const char *p = s, *end = s + len;
    bool neg = false;
    uint64_t mant = 0;    /* the first 19 significant digits */
    int nd = 0;           /* digits in mant from the first nonzero one */
    long exp10 = 0;       /* value = mant * 10^exp10 */
    bool dropped = false; /* a nonzero digit past the 19th: too many */

    if (p < end && *p == '-') {
        neg = true;
        p++;
    }
    if (p >= end || *p < '0' || *p > '9')
        return false;
    if (*p == '0' && p + 1 < end && p[1] >= '0' && p[1] <= '9')
        return false; /* no leading zeros in JSON */
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (nd < 19) {
            mant = mant * 10 + (uint64_t)(*p - '0');
            nd += mant != 0;
        } else {
            exp10++;
            dropped |= *p != '0';
        }
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return false;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (nd < 19) {
                mant = mant * 10 + (uint64_t)(*p - '0');
                nd += mant != 0;
                exp10--;
            } else {
                dropped |= *p != '0';
            }
        }
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        long e = 0;
        bool eneg = false;
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= end || *p < '0' || *p > '9')
            return false;
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            /* Clamp: past 10^±100000 everything is zero or infinite. */
            if (e < 100000)
                e = e * 10 + (*p - '0');
        }
        exp10 += eneg ? -e : e;
    }
    if (p != end)
        return false;

    out->exact = out->in_range = false;
    out->key = 0;
    if (mant == 0) {
        out->exact = out->in_range = true; /* every zero, -0 included */
        out->d = 0;
        return true;
    }
    if (dropped) {
        /* More digits than a double's own decimal ever has: compared as
         * text. (No double: matching does not allocate for a copy.) */
        out->d = NAN;
        return true;
    }
    if (nd > 15) {
        /* Trailing zeros are no digits of the value. */
        while (mant % 10 == 0) {
            mant /= 10;
            nd--;
            exp10++;
        }
    }
    double d;
    if (nd <= 15 && exp10 >= -22 && exp10 <= 22) {
        d = exp10 < 0 ? (double)mant / pow10_exact[-exp10] : (double)mant * pow10_exact[exp10];
    } else {
        char t[48];
        snprintf(t, sizeof t, "%" PRIu64 "e%ld", mant, exp10);
        d = strtod(t, NULL);
    }
    if (neg)
        d = -d;
    out->d = d;
    if (!isfinite(d) || d == 0)
        return true; /* beyond a double's range: compared as text */
    if (nd > 15 || fabs(d) < DBL_MIN) {
        while (mant % 10 == 0) {
            mant /= 10;
            nd--;
            exp10++;
        }
        if (nd > 17 || !own_digits(d, mant, nd, exp10))
            return true;
    }
    out->exact = true;
    out->key = evbus__num_key(d);
    out->in_range = fabs(d) <= EVBUS__NUM_RANGE;
    return true;
}
