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

/* own_digits without printing, for a normal d and exp10 <= 0: the text T =
 * mant * 10^exp10 names d when d is nearer to T than half a unit of T's last
 * digit, h = 5 * 10^(exp10 - 1) (T has no trailing zero, so d is then in T's
 * decade and prints on T's grid). With d = M * 2^E, both sides are scaled by
 * 10^(1 - exp10) * 2^-E to integers: |M * 10^(1-exp10) - 10 mant * 2^-E| <
 * 5 * 2^-E. Returns 1 or 0, or -1 when that does not fit in 128 bits or d is
 * exactly halfway (printing decides). */
static int own_digits_exact(double d, uint64_t mant, long exp10) {
    int e2;
    double f = frexp(d, &e2); /* d = f * 2^e2, f in [0.5, 1) */
    uint64_t m2 = (uint64_t)ldexp(f, 53);
    long shift = 53 - (long)e2; /* d = m2 * 2^-shift */
    if (exp10 > 0 || 1 - exp10 > 38 || shift <= 0 || shift > 120)
        return -1;
    unsigned __int128 p10 = 1, x, y, z;
    for (long i = 0; i < 1 - exp10; i++)
        p10 *= 10;
    if (__builtin_mul_overflow((unsigned __int128)m2, p10, &x) ||
        __builtin_mul_overflow((unsigned __int128)mant * 10, (unsigned __int128)1 << shift, &y) ||
        __builtin_mul_overflow((unsigned __int128)5, (unsigned __int128)1 << shift, &z))
        return -1;
    unsigned __int128 diff = x > y ? x - y : y - x;
    return diff < z ? 1 : diff > z ? 0 : -1;
}

static int bit_length(unsigned __int128 x) {
    uint64_t hi = (uint64_t)(x >> 64);
    return hi ? 128 - __builtin_clzll(hi) : 64 - __builtin_clzll((uint64_t)x | 1);
}

/* The double nearest to mant / 10^k (mant nonzero, below 2^64; k <= 22),
 * rounded as strtod rounds (to nearest, ties to even), without strtod: the
 * quotient is taken with 54 or more bits in 128-bit integers, and its
 * remainder decides the rounding past them. */
static double nearest_double(uint64_t mant, int k) {
    unsigned __int128 p10 = 1;
    for (int i = 0; i < k; i++)
        p10 *= 10;
    int s = 128 - bit_length(mant); /* mant << s uses all 128 bits */
    unsigned __int128 num = (unsigned __int128)mant << s;
    unsigned __int128 q = num / p10;
    bool inexact = num % p10 != 0;
    int b = bit_length(q); /* >= 54, since p10 < 2^74 */
    int extra = b - 53;
    uint64_t m53 = (uint64_t)(q >> extra);
    unsigned __int128 rest = q & (((unsigned __int128)1 << extra) - 1);
    unsigned __int128 half = (unsigned __int128)1 << (extra - 1);
    if (rest > half || (rest == half && (inexact || (m53 & 1))))
        m53++; /* 2^53 after a carry is still exact */
    return ldexp((double)m53, extra - s);
}

/* "MANTeEXP" into t (48 bytes is room for any), as snprintf's "%llue%ld"
 * would write it, at a tenth of its cost: this runs for every number of
 * more than 15 digits that a pattern can compare. */
static void strtod_text(char *t, uint64_t mant, long exp10) {
    char rev[24];
    int n = 0;
    do
        rev[n++] = (char)('0' + mant % 10);
    while ((mant /= 10) != 0);
    while (n)
        *t++ = rev[--n];
    *t++ = 'e';
    unsigned long e = exp10 < 0 ? 0UL - (unsigned long)exp10 : (unsigned long)exp10;
    if (exp10 < 0)
        *t++ = '-';
    do
        rev[n++] = (char)('0' + e % 10);
    while ((e /= 10) != 0);
    while (n)
        *t++ = rev[--n];
    *t = '\0';
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
        /* No double prints with more than 17 significant digits of its
         * own: compared as text, whatever its double (the costly strtod is
         * skipped; coordinates such as -122.497517059608882 are common). */
        if (nd > 17) {
            out->d = NAN;
            return true;
        }
    }
    double d;
    if (nd <= 15 && exp10 >= -22 && exp10 <= 22) {
        d = exp10 < 0 ? (double)mant / pow10_exact[-exp10] : (double)mant * pow10_exact[exp10];
    } else if (exp10 < 0 && exp10 >= -22) {
        d = nearest_double(mant, (int)-exp10);
    } else {
        char t[48];
        strtod_text(t, mant, exp10);
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
        int own = fabs(d) >= DBL_MIN ? own_digits_exact(fabs(d), mant, exp10) : -1;
        if (own < 0)
            own = own_digits(d, mant, nd, exp10);
        if (nd > 17 || !own)
            return true;
    }
    out->exact = true;
    out->key = evbus__num_key(d);
    out->in_range = fabs(d) <= EVBUS__NUM_RANGE;
    return true;
}
