/**
 * @file fold.c
 * @brief Unicode simple case folding for equals-ignore-case.
 *
 * Both sides of an equals-ignore-case comparison are folded code point by
 * code point with the simple case folding of Unicode's CaseFolding.txt
 * (records C and S), and the folded bytes are compared, hashed and cut into
 * prefixes and suffixes. The table is generated at build time
 * (gen_casefold.c); see match.h for the semantics and how they relate to
 * event-ruler's and quamina's.
 *
 * A folding may change the UTF-8 length (K, the Kelvin sign, 3 bytes, folds
 * to k; Ⱥ, 2 bytes, to ⱥ, 3 bytes): the folded string has its own length,
 * at most EVBUS__FOLD_LEN_MAX of the original. A prefix or suffix of a
 * folded string that is valid UTF-8 is the folding of a prefix or suffix of
 * the original, so prefix and suffix tests on folded bytes stay exact.
 *
 * Bytes that are not well-formed UTF-8 (only envelope strings handed to
 * evbus__matcher_match can hold them) are copied one by one, unfolded. A
 * copied byte can never be part of what a pattern's folded operand — always
 * well-formed — matches at its position, so such a string matches an
 * equals-ignore-case operand only where the operand does not reach into the
 * bad bytes (a prefix before them, a suffix after them).
 */
#include "match_int.h"

#include "casefold_table.h"

static inline bool cont(unsigned char b) {
    return (b & 0xC0) == 0x80;
}

static inline uint32_t fold_cp(uint32_t c) {
    return (uint32_t)((int32_t)c + evbus__fold_delta[evbus__fold_block[c >> EVBUS__CASEFOLD_SHIFT]]
                                                    [c & ((1u << EVBUS__CASEFOLD_SHIFT) - 1)]);
}

static inline unsigned char *put_utf8(unsigned char *o, uint32_t c) {
    if (c < 0x80) {
        *o++ = (unsigned char)c;
    } else if (c < 0x800) {
        *o++ = (unsigned char)(0xC0 | (c >> 6));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    } else if (c < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (c >> 12));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | (c >> 18));
        *o++ = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (c & 0x3F));
    }
    return o;
}

/* Lower-case eight ASCII bytes at once: 0x20 is added to each byte in
 * 'A'..'Z', found by two carry-free additions on the low seven bits. */
static inline uint64_t ascii_lower8(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ULL;
    uint64_t ge_a = w + ones * (0x80 - 'A');     /* high bit: byte >= 'A' */
    uint64_t gt_z = w + ones * (0x80 - 'Z' - 1); /* high bit: byte > 'Z' */
    uint64_t upper = ge_a & ~gt_z & ones * 0x80;
    return w | (upper >> 2);
}

size_t evbus__fold(const char *s, size_t len, char *out) {
    const unsigned char *p = (const unsigned char *)s;
    unsigned char *o = (unsigned char *)out;
    size_t i = 0;
    while (i < len) {
        unsigned char b = p[i];
        if (b < 0x80) {
            /* ASCII, the common case, eight bytes at a time; a tail shorter
             * than eight is done as the string's last eight bytes, which
             * rewrites a few already folded ASCII bytes with the same. */
            uint64_t w;
            if (len - i >= 8) {
                memcpy(&w, p + i, 8);
                if (!(w & 0x8080808080808080ULL)) {
                    w = ascii_lower8(w);
                    memcpy(o, &w, 8);
                    o += 8;
                    i += 8;
                    continue;
                }
            } else if (len >= 8) {
                memcpy(&w, p + len - 8, 8);
                if (!(w & 0x8080808080808080ULL)) {
                    w = ascii_lower8(w);
                    memcpy(o + (len - i) - 8, &w, 8);
                    o += len - i;
                    break;
                }
            }
            *o++ = (unsigned char)((unsigned)(b - 'A') < 26u ? b + 32 : b);
            i++;
            continue;
        }
        /* Decode one well-formed sequence (Unicode's table 3-7: no overlong
         * forms, no surrogates, nothing past U+10FFFF) and fold it. Most
         * foldings keep the UTF-8 length: that case is written in line. */
        uint32_t c;
        if (b >= 0xC2 && b <= 0xDF && i + 1 < len && cont(p[i + 1])) {
            /* Latin, Greek, Cyrillic, Armenian...: one direct table. */
            c = ((uint32_t)(b & 0x1F) << 6) | (p[i + 1] & 0x3F);
            c = (uint32_t)((int32_t)c + evbus__fold_low[c]);
            i += 2;
            if (c >= 0x80 && c < 0x800) {
                o[0] = (unsigned char)(0xC0 | (c >> 6));
                o[1] = (unsigned char)(0x80 | (c & 0x3F));
                o += 2;
                continue;
            }
        } else if (b >= 0xE0 && b <= 0xEF && i + 2 < len && cont(p[i + 1]) && cont(p[i + 2])) {
            c = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(p[i + 1] & 0x3F) << 6) |
                (p[i + 2] & 0x3F);
            if (c < 0x800 || (c >= 0xD800 && c <= 0xDFFF))
                goto bad;
            c = fold_cp(c);
            i += 3;
            if (c >= 0x800) {
                o[0] = (unsigned char)(0xE0 | (c >> 12));
                o[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
                o[2] = (unsigned char)(0x80 | (c & 0x3F));
                o += 3;
                continue;
            }
        } else if (b >= 0xF0 && b <= 0xF4 && i + 3 < len && cont(p[i + 1]) && cont(p[i + 2]) &&
                   cont(p[i + 3])) {
            c = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(p[i + 1] & 0x3F) << 12) |
                ((uint32_t)(p[i + 2] & 0x3F) << 6) | (p[i + 3] & 0x3F);
            if (c < 0x10000 || c > 0x10FFFF)
                goto bad;
            c = fold_cp(c);
            i += 4;
        } else {
            goto bad;
        }
        o = put_utf8(o, c);
        continue;
    bad:
        *o++ = b;
        i++;
    }
    return (size_t)(o - (unsigned char *)out);
}
