/**
 * @file fold.c
 * @brief Simple case folding for equals-ignore-case.
 *
 * Only mappings that keep the UTF-8 length are applied, so that a folded
 * string can be compared and hashed byte for byte and a prefix of a folded
 * string is the folding of the prefix. That covers ASCII, Latin-1,
 * Latin Extended-A, Greek and Cyrillic capitals; other scripts compare
 * exactly.
 */
#include "match_int.h"

static uint32_t fold_cp(uint32_t c) {
    if (c >= 0xC0 && c <= 0xDE && c != 0xD7)
        return c + 0x20;
    if (c >= 0x100 && c <= 0x17F) {
        /* Pairs alternate even/odd, except 0x130-0x138 and 0x149-0x178
         * shift by one. */
        if (c == 0x130 || c == 0x131 || c == 0x138 || c == 0x149 || c == 0x17F)
            return c;
        if ((c >= 0x139 && c <= 0x148) || (c >= 0x179 && c <= 0x17E))
            return (c & 1) ? c + 1 : c;
        if (c == 0x178)
            return 0xFF;
        return (c & 1) ? c : c + 1;
    }
    if (c >= 0x391 && c <= 0x3A9 && c != 0x3A2)
        return c + 0x20;
    if (c >= 0x410 && c <= 0x42F)
        return c + 0x20;
    if (c >= 0x400 && c <= 0x40F)
        return c + 0x50;
    return c;
}

void evbus__fold(const char *s, size_t len, char *out) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        unsigned char b = p[i];
        if (b < 0x80) {
            out[i] = (char)((b >= 'A' && b <= 'Z') ? b + 32 : b);
            i++;
        } else if ((b & 0xE0) == 0xC0 && i + 1 < len) {
            uint32_t c = ((uint32_t)(b & 0x1F) << 6) | (p[i + 1] & 0x3F);
            uint32_t f = fold_cp(c);
            if (f < 0x80 || f > 0x7FF)
                f = c; /* would change length: keep */
            out[i] = (char)(0xC0 | (f >> 6));
            out[i + 1] = (char)(0x80 | (f & 0x3F));
            i += 2;
        } else {
            out[i] = (char)b;
            i++;
        }
    }
}
