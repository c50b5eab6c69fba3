/**
 * @file json_scan.c
 * @brief A strict, non-allocating JSON scanner.
 *
 * The matcher walks an event once: it descends only into keys some pattern
 * names and skips everything else with evbus__jscan_skip. Skipping still
 * validates (grammar, escapes, UTF-8, depth), because an event that is
 * accepted must be valid JSON whatever the patterns look at; strings are
 * checked eight bytes at a time so that validation costs little more than
 * finding the closing quote.
 */
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "match_int.h"

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

bool evbus__jscan_fail(evbus__jscan *j, const char *why) {
    if (!j->why) {
        j->why = why;
        j->err_off = (size_t)(j->p - j->beg);
    }
    return false;
}

static int hex4(const unsigned char *p) {
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    return v;
}

/* One UTF-8 sequence at p (first byte >= 0x80); returns its length or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned char b = p[0];
    size_t avail = (size_t)(end - p);
    if (b >= 0xC2 && b <= 0xDF) {
        if (avail < 2 || (p[1] & 0xC0) != 0x80)
            return 0;
        return 2;
    }
    if (b >= 0xE0 && b <= 0xEF) {
        if (avail < 3 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80)
            return 0;
        if (b == 0xE0 && p[1] < 0xA0)
            return 0; /* overlong */
        if (b == 0xED && p[1] >= 0xA0)
            return 0; /* surrogate */
        return 3;
    }
    if (b >= 0xF0 && b <= 0xF4) {
        if (avail < 4 || (p[1] & 0xC0) != 0x80 || (p[2] & 0xC0) != 0x80 || (p[3] & 0xC0) != 0x80)
            return 0;
        if (b == 0xF0 && p[1] < 0x90)
            return 0; /* overlong */
        if (b == 0xF4 && p[1] >= 0x90)
            return 0; /* above U+10FFFF */
        return 4;
    }
    return 0;
}

bool evbus__jscan_string(evbus__jscan *j, const char **s, size_t *len, bool *esc) {
    const unsigned char *p = j->p + 1; /* after the opening quote */
    const unsigned char *end = j->end;
    bool any_esc = false;

    for (;;) {
#ifdef __SSE2__
        /* Sixteen bytes at a time: a quote, a backslash, or a byte below
         * 0x20 as a signed char (control characters and every non-ASCII
         * byte) stops the run at its first position. */
        while ((size_t)(end - p) >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                    _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
                                       _mm_cmplt_epi8(v, _mm_set1_epi8(0x20)));
            int mask = _mm_movemask_epi8(hit);
            if (mask) {
                p += __builtin_ctz((unsigned)mask);
                goto found;
            }
            p += 16;
        }
#endif
        /* Fast path: eight plain ASCII bytes with no quote, backslash or
         * control character. */
        while ((size_t)(end - p) >= 8) {
            uint64_t w;
            memcpy(&w, p, 8);
            uint64_t q = w ^ (ONES * '"');
            uint64_t b = w ^ (ONES * '\\');
            uint64_t special =
                (((q - ONES) & ~q) | ((b - ONES) & ~b) | (w - ONES * 0x20) | w) & HIGHS;
            if (special) {
#if defined(__GNUC__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
                /* The lowest flagged byte is exact (borrows only run upwards): jump
                 * straight to it instead of stepping byte by byte. */
                p += __builtin_ctzll(special) / 8;
#endif
                break;
            }
            p += 8;
        }
#ifdef __SSE2__
    found:
#endif
        if (p >= end) {
            j->p = p;
            return evbus__jscan_fail(j, "unterminated string");
        }
        unsigned char c = *p;
        if (c == '"') {
            *s = (const char *)j->p + 1;
            *len = (size_t)(p - j->p) - 1;
            *esc = any_esc;
            j->p = p + 1;
            return true;
        }
        if (c == '\\') {
            any_esc = true;
            if (end - p < 2) {
                j->p = p;
                return evbus__jscan_fail(j, "unterminated string");
            }
            unsigned char e = p[1];
            if (e == 'u') {
                if (end - p < 6 || hex4(p + 2) < 0) {
                    j->p = p;
                    return evbus__jscan_fail(j, "bad \\u escape");
                }
                int u = hex4(p + 2);
                if (u >= 0xD800 && u <= 0xDBFF) {
                    int lo = (end - p >= 12 && p[6] == '\\' && p[7] == 'u') ? hex4(p + 8) : -1;
                    if (lo < 0xDC00 || lo > 0xDFFF) {
                        j->p = p;
                        return evbus__jscan_fail(j, "unpaired surrogate");
                    }
                    p += 12;
                } else if (u >= 0xDC00 && u <= 0xDFFF) {
                    j->p = p;
                    return evbus__jscan_fail(j, "unpaired surrogate");
                } else {
                    p += 6;
                }
            } else if (e == '"' || e == '\\' || e == '/' || e == 'b' || e == 'f' || e == 'n' ||
                       e == 'r' || e == 't') {
                p += 2;
            } else {
                j->p = p;
                return evbus__jscan_fail(j, "bad escape");
            }
        } else if (c < 0x20) {
            j->p = p;
            return evbus__jscan_fail(j, "control character in string");
        } else if (c >= 0x80) {
            size_t n = utf8_seq(p, end);
            if (!n) {
                j->p = p;
                return evbus__jscan_fail(j, "invalid UTF-8");
            }
            p += n;
        } else {
            p++;
        }
    }
}

static size_t put_utf8(char *o, uint32_t cp) {
    if (cp < 0x80) {
        o[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (char)(0xC0 | (cp >> 6));
        o[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (char)(0xE0 | (cp >> 12));
        o[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
        o[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    o[0] = (char)(0xF0 | (cp >> 18));
    o[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
    o[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
    o[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

size_t evbus__json_unescape(const char *s, size_t len, char *out, size_t cap) {
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, o = 0;
    /* Decoded text is never longer than the raw text. */
    if (len > cap)
        return SIZE_MAX;
    while (i < len) {
        if (p[i] != '\\') {
            out[o++] = (char)p[i++];
            continue;
        }
        unsigned char e = p[i + 1];
        switch (e) {
        case 'b': out[o++] = '\b'; break;
        case 'f': out[o++] = '\f'; break;
        case 'n': out[o++] = '\n'; break;
        case 'r': out[o++] = '\r'; break;
        case 't': out[o++] = '\t'; break;
        case 'u': {
            uint32_t u = (uint32_t)hex4(p + i + 2);
            if (u >= 0xD800 && u <= 0xDBFF) {
                uint32_t lo = (uint32_t)hex4(p + i + 8);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i += 6;
            }
            o += put_utf8(out + o, u);
            i += 6;
            continue;
        }
        default: out[o++] = (char)e; break;
        }
        i += 2;
    }
    return o;
}

bool evbus__jscan_number(evbus__jscan *j, const char **s, size_t *len) {
    const unsigned char *p = j->p, *end = j->end, *start = p;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return evbus__jscan_fail(j, "bad number");
    if (*p == '0') {
        p++;
    } else {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') {
            j->p = p;
            return evbus__jscan_fail(j, "bad number");
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9') {
            j->p = p;
            return evbus__jscan_fail(j, "bad number");
        }
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    /* A number must end at a delimiter: 01 or 1x are not numbers. */
    if (p < end && !(*p == ',' || *p == ']' || *p == '}' || *p == ' ' || *p == '\n' || *p == '\r' ||
                     *p == '\t')) {
        j->p = p;
        return evbus__jscan_fail(j, "bad number");
    }
    *s = (const char *)start;
    *len = (size_t)(p - start);
    j->p = p;
    return true;
}

static bool literal(evbus__jscan *j) {
    size_t avail = (size_t)(j->end - j->p);
    const char *w = *j->p == 't' ? "true" : *j->p == 'f' ? "false" : "null";
    size_t n = strlen(w);
    if (avail < n || memcmp(j->p, w, n) != 0)
        return evbus__jscan_fail(j, "unexpected character");
    j->p += n;
    return true;
}

bool evbus__jscan_skip(evbus__jscan *j, int depth) {
    /* Container kinds as a bit stack: 1 = object, 0 = array. */
    uint64_t stack[(EVBUS_MATCH_DEPTH_MAX + 63) / 64 + 1] = {0};
    int sp = 0;
    unsigned char c;
    const char *s;
    size_t len;
    bool esc;

value:
    c = evbus__jscan_ws(j);
    switch (c) {
    case '{':
    case '[':
        if (depth + sp >= EVBUS_MATCH_DEPTH_MAX)
            return evbus__jscan_fail(j, "nested too deep");
        {
            bool obj = c == '{';
            if (obj)
                stack[sp / 64] |= 1ULL << (sp % 64);
            else
                stack[sp / 64] &= ~(1ULL << (sp % 64));
            sp++;
            j->p++;
            if (evbus__jscan_ws(j) == (obj ? '}' : ']')) {
                sp--;
                j->p++;
                goto after;
            }
            if (obj)
                goto key;
            goto value;
        }
    case '"':
        if (!evbus__jscan_string(j, &s, &len, &esc))
            return false;
        goto after;
    case 't':
    case 'f':
    case 'n':
        if (!literal(j))
            return false;
        goto after;
    case 0:
        if (j->p >= j->end)
            return evbus__jscan_fail(j, "unexpected end");
        return evbus__jscan_fail(j, "unexpected character");
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            if (!evbus__jscan_number(j, &s, &len))
                return false;
            goto after;
        }
        return evbus__jscan_fail(j, "unexpected character");
    }
key:
    c = evbus__jscan_ws(j);
    if (c != '"')
        return evbus__jscan_fail(j, "expected a key");
    if (!evbus__jscan_string(j, &s, &len, &esc))
        return false;
    if (evbus__jscan_ws(j) != ':')
        return evbus__jscan_fail(j, "expected ':'");
    j->p++;
    goto value;
after:
    if (sp == 0)
        return true;
    c = evbus__jscan_ws(j);
    {
        bool obj = stack[(sp - 1) / 64] >> ((sp - 1) % 64) & 1;
        if (c == ',') {
            j->p++;
            if (obj)
                goto key;
            goto value;
        }
        if (c == (obj ? '}' : ']')) {
            sp--;
            j->p++;
            goto after;
        }
        return evbus__jscan_fail(j, obj ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* ---- skipping text already known to be valid ---- */

/* After a string's opening quote at p: the byte after its closing quote, or
 * NULL if the text ends first. Only quotes and backslashes matter here. */
static const unsigned char *past_valid_string(const unsigned char *p, const unsigned char *end) {
    for (;;) {
#ifdef __SSE2__
        while ((size_t)(end - p) >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
                                                      _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))));
            if (mask) {
                p += __builtin_ctz((unsigned)mask);
                break;
            }
            p += 16;
        }
#endif
        while (p < end && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return NULL;
        if (*p == '"')
            return p + 1;
        p += 2; /* an escape: the escaped byte cannot end the string */
        if (p > end)
            return NULL;
    }
}

static inline bool ends_scalar(unsigned char c) {
    return c == ',' || c == '}' || c == ']' || c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

bool evbus__jscan_skip_valid(evbus__jscan *j) {
    unsigned char c = evbus__jscan_ws(j);
    const unsigned char *p = j->p, *end = j->end;
    if (p >= end)
        return evbus__jscan_fail(j, "unexpected end");
    if (c == '"') {
        p = past_valid_string(p + 1, end);
        if (!p)
            return evbus__jscan_fail(j, "unterminated string");
        j->p = p;
        return true;
    }
    if (c != '{' && c != '[') {
        do
            p++;
        while (p < end && !ends_scalar(*p));
        j->p = p;
        return true;
    }
    /* A container: count brackets outside strings until the depth returns
     * to zero. '[' | 0x20 is '{' and ']' | 0x20 is '}', and no other byte
     * becomes either, so one compare finds both kinds. */
    size_t depth = 1;
    p++;
    while (p < end) {
#ifdef __SSE2__
        if ((size_t)(end - p) >= 16) {
            __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
            __m128i low = _mm_or_si128(v, _mm_set1_epi8(0x20));
            __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
            __m128i o = _mm_cmpeq_epi8(low, _mm_set1_epi8('{'));
            __m128i x = _mm_cmpeq_epi8(low, _mm_set1_epi8('}'));
            unsigned mask = (unsigned)_mm_movemask_epi8(_mm_or_si128(_mm_or_si128(q, o), x));
            if (!mask) { /* numbers, commas, plain bytes: most of a big array */
                p += 16;
                continue;
            }
            unsigned quote = (unsigned)_mm_movemask_epi8(q);
            unsigned open = (unsigned)_mm_movemask_epi8(o);
            const unsigned char *next = p + 16;
            while (mask) {
                unsigned bit = mask & -mask;
                const unsigned char *at = p + __builtin_ctz(mask);
                mask ^= bit;
                if (quote & bit) {
                    next = past_valid_string(at + 1, end);
                    if (!next)
                        return evbus__jscan_fail(j, "unterminated string");
                    break;
                }
                if (open & bit) {
                    depth++;
                } else if (--depth == 0) {
                    j->p = at + 1;
                    return true;
                }
            }
            p = next;
            continue;
        }
#endif
        c = *p;
        if (c == '"') {
            p = past_valid_string(p + 1, end);
            if (!p)
                return evbus__jscan_fail(j, "unterminated string");
            continue;
        }
        if (c == '{' || c == '[') {
            depth++;
        } else if ((c == '}' || c == ']') && --depth == 0) {
            j->p = p + 1;
            return true;
        }
        p++;
    }
    j->p = end;
    return evbus__jscan_fail(j, "unexpected end");
}

evbus_err evbus__json_validate(const char *json, size_t len, const char **why, size_t *offset) {
    evbus__jscan j = {(const unsigned char *)json, (const unsigned char *)json,
                      (const unsigned char *)json + len, NULL, 0};
    if (!json) {
        if (why)
            *why = "no text";
        if (offset)
            *offset = 0;
        return EVBUS_EPROTO;
    }
    if (evbus__jscan_skip(&j, 0)) {
        if (evbus__jscan_ws(&j) == 0 && j.p >= j.end)
            return EVBUS_OK;
        evbus__jscan_fail(&j, "trailing characters after the JSON value");
    }
    if (why)
        *why = j.why;
    if (offset)
        *offset = j.err_off;
    return EVBUS_EPROTO;
}
