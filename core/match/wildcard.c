/**
 * @file wildcard.c
 * @brief EventBridge wildcards: `*` matches any run of characters, `\*` a
 * star and `\\` a backslash.
 *
 * With `*` as the only metacharacter, matching each literal segment at its
 * leftmost occurrence is exact, so matching is linear in the value times the
 * segment lengths and needs no memory.
 */
#include <string.h>

#include "match_int.h"

const char *evbus__wildcard_check(const char *pat, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (pat[i] == '\\') {
            if (i + 1 >= len || (pat[i + 1] != '*' && pat[i + 1] != '\\'))
                return "a backslash may only escape '*' or '\\'";
            i++;
        } else if (pat[i] == '*' && i + 1 < len && pat[i + 1] == '*') {
            return "consecutive wildcard characters are not allowed";
        }
    }
    return NULL;
}

/* Next literal segment of the pattern from *pi: unescaped into seg (at most
 * the pattern's length). Returns its length; *star says whether a '*'
 * ended it. */
static size_t next_seg(const char *pat, size_t plen, size_t *pi, char *seg, bool *star) {
    size_t n = 0;
    *star = false;
    while (*pi < plen) {
        char c = pat[*pi];
        if (c == '\\' && *pi + 1 < plen) {
            seg[n++] = pat[*pi + 1];
            *pi += 2;
        } else if (c == '*') {
            *star = true;
            (*pi)++;
            break;
        } else {
            seg[n++] = c;
            (*pi)++;
        }
    }
    return n;
}

static const char *find(const char *h, size_t hlen, const char *n, size_t nlen) {
    if (nlen == 0)
        return h;
    if (nlen > hlen)
        return NULL;
    return memmem(h, hlen, n, nlen);
}

bool evbus__wildcard_match(const char *pat, size_t plen, const char *s, size_t slen) {
    /* Segments are unescaped on the fly into a small window; patterns are
     * bounded by the pattern length limit, so a stack buffer is enough. */
    char seg[EVBUS_MATCH_PATTERN_MAX * 4 + 8];
    size_t pi = 0, si = 0;
    bool star;
    bool first = true;
    bool after_star = false;

    if (plen > sizeof seg)
        return false;
    while (pi < plen || first) {
        size_t n = next_seg(pat, plen, &pi, seg, &star);
        if (!after_star) {
            /* anchored: must be here */
            if (n > slen - si || memcmp(s + si, seg, n) != 0)
                return false;
            si += n;
        } else if (!star && pi >= plen) {
            /* last segment after a star: must end the value */
            if (n > slen - si || memcmp(s + slen - n, seg, n) != 0)
                return false;
            return true;
        } else {
            const char *hit = find(s + si, slen - si, seg, n);
            if (!hit)
                return false;
            si = (size_t)(hit - s) + n;
        }
        first = false;
        after_star = star;
        if (pi >= plen)
            break;
    }
    return after_star || si == slen;
}
