/**
 * @file numeric.c
 * @brief JSON number text to EventBridge's comparable form.
 *
 * The value is computed from the decimal digits, not through a double, so
 * that 0.1 + the six-decimal rounding gives exactly 100000 micros and
 * comparisons at the edges of a range are exact.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

static const int64_t pow10_tab[19] = {1LL,
                                      10LL,
                                      100LL,
                                      1000LL,
                                      10000LL,
                                      100000LL,
                                      1000000LL,
                                      10000000LL,
                                      100000000LL,
                                      1000000000LL,
                                      10000000000LL,
                                      100000000000LL,
                                      1000000000000LL,
                                      10000000000000LL,
                                      100000000000000LL,
                                      1000000000000000LL,
                                      10000000000000000LL,
                                      100000000000000000LL,
                                      1000000000000000000LL};

/* The double, only for equality of numbers outside the micros range:
 * strtod costs more than the rest of the parse, so it is not done for the
 * numbers that matter. */
static bool out_of_range(const char *s, size_t len, evbus__num *out) {
    char tmp[64];
    size_t n = len < sizeof tmp - 1 ? len : sizeof tmp - 1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    out->in_range = false;
    out->micros = 0;
    out->d = strtod(tmp, NULL);
    return true;
}

bool evbus__num_parse(const char *s, size_t len, evbus__num *out) {
    size_t i = 0;
    bool neg = false;
    uint64_t mant = 0;   /* up to 18 significant digits */
    int ndig = 0;        /* significant digits kept */
    long exp10 = 0;      /* value = mant * 10^exp10 */
    int round_digit = 0; /* first dropped digit, for rounding */
    bool dropped = false;

    if (i < len && s[i] == '-') {
        neg = true;
        i++;
    }
    if (i >= len || s[i] < '0' || s[i] > '9')
        return false;
    if (s[i] == '0') {
        i++;
    } else {
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (ndig < 18) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                if (mant)
                    ndig++;
            } else {
                if (!dropped)
                    round_digit = s[i] - '0';
                dropped = true;
                exp10++;
            }
            i++;
        }
    }
    if (i < len && s[i] == '.') {
        i++;
        if (i >= len || s[i] < '0' || s[i] > '9')
            return false;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (ndig < 18) {
                mant = mant * 10 + (uint64_t)(s[i] - '0');
                if (mant)
                    ndig++;
                exp10--;
            } else if (!dropped) {
                round_digit = s[i] - '0';
                dropped = true;
            }
            i++;
        }
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        long e = 0;
        bool eneg = false;
        i++;
        if (i < len && (s[i] == '+' || s[i] == '-')) {
            eneg = s[i] == '-';
            i++;
        }
        if (i >= len || s[i] < '0' || s[i] > '9')
            return false;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            /* Clamp: anything past 10^±100000 is out of range either way. */
            if (e < 100000)
                e = e * 10 + (s[i] - '0');
            i++;
        }
        exp10 += eneg ? -e : e;
    }
    if (i != len)
        return false;
    if (dropped && round_digit >= 5 && exp10 >= -6) {
        /* Only matters when the dropped digit lands above the micro unit. */
        mant++;
    }

    out->d = 0.0;
    if (mant == 0) {
        out->in_range = true;
        out->micros = 0;
        out->d = 0.0; /* -0 equals 0 */
        return true;
    }
    long e6 = exp10 + 6; /* micros = mant * 10^e6 */
    int64_t micros;
    if (e6 >= 0) {
        if (e6 > 18)
            return out_of_range(s, len, out);
        if (mant > (uint64_t)EVBUS__NUM_MICROS_MAX / (uint64_t)pow10_tab[e6])
            return out_of_range(s, len, out);
        micros = (int64_t)mant * pow10_tab[e6];
    } else {
        if (-e6 > 18) {
            micros = 0; /* below a micro: rounds to zero */
        } else {
            int64_t div = pow10_tab[-e6];
            micros = (int64_t)(mant / (uint64_t)div);
            if ((int64_t)(mant % (uint64_t)div) * 2 >= div)
                micros++;
        }
    }
    if (micros > EVBUS__NUM_MICROS_MAX)
        return out_of_range(s, len, out);
    out->in_range = true;
    out->micros = neg ? -micros : micros;
    return true;
}
