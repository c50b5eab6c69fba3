/* A growable byte buffer and a JSON string writer: request bodies are built
 * by hand rather than through jansson because every event's envelope is
 * embedded as an escaped string, the hottest step of a sink. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "aws.h"

static int reserve(evbus_aws_buf *b, size_t more) {
    if (b->len + more + 1 <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p)
        return -1;
    b->data = p;
    b->cap = cap;
    return 0;
}

int evbus_aws_buf_add(evbus_aws_buf *b, const void *p, size_t n) {
    if (reserve(b, n))
        return -1;
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
}

int evbus_aws_buf_puts(evbus_aws_buf *b, const char *s) {
    return evbus_aws_buf_add(b, s, strlen(s));
}

/* Writes the escape of c, a byte JSON does not take as it is, at o. */
static char *escape(char *o, unsigned char c) {
    static const char hex[] = "0123456789abcdef";
    *o++ = '\\';
    switch (c) {
    case '"':
    case '\\': *o++ = (char)c; break;
    case '\n': *o++ = 'n'; break;
    case '\r': *o++ = 'r'; break;
    case '\t': *o++ = 't'; break;
    default:
        *o++ = 'u';
        *o++ = '0';
        *o++ = '0';
        *o++ = hex[c >> 4];
        *o++ = hex[c & 15];
    }
    return o;
}

#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define WORD_AT_A_TIME 1
/* Of 8 bytes at once: the high bit of each byte that needs escaping (below
 * 0x20, '"', '\\') is set. A borrow can set bits above the first such
 * byte, never below it, so the lowest bit set is exact: that is all the
 * caller uses. */
static uint64_t to_escape(uint64_t w) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
    return (((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs;
}
#endif

#if defined(__SSE2__) && defined(WORD_AT_A_TIME)
#include <emmintrin.h>
#define SIXTEEN_AT_A_TIME 1
/* Of 16 bytes at once: bit k is set when byte k needs escaping (at most
 * 0x1f, '"', '\\'); exact for every byte, unlike to_escape. */
static unsigned to_escape16(const char *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i ctl = _mm_cmpeq_epi8(_mm_max_epu8(v, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
    __m128i q = _mm_cmpeq_epi8(v, _mm_set1_epi8('"'));
    __m128i b = _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'));
    return (unsigned)_mm_movemask_epi8(_mm_or_si128(ctl, _mm_or_si128(q, b)));
}
#endif

size_t evbus_aws_json_plain(const char *s, size_t n) {
    size_t i = 0;
#ifdef WORD_AT_A_TIME
    while (i + 8 <= n) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t m = to_escape(w);
        if (m)
            return i + ((size_t)__builtin_ctzll(m) >> 3);
        i += 8;
    }
#endif
    while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* Room for what is left of a string whose every byte may need escaping
 * (\u00XX, 6 bytes), asked for only when the first guess runs out. */
static char *more_room(evbus_aws_buf *b, char *o, size_t left) {
    b->len = (size_t)(o - b->data);
    if (reserve(b, left * 6 + 16))
        return NULL;
    return b->data + b->len;
}

int evbus_aws_buf_json_str(evbus_aws_buf *b, const char *s, size_t n) {
    /* Room for the string as it is and a few escapes: the worst case (6
     * bytes per byte) made every request body grow, and be copied, several
     * times over. The loop asks for more when its guess runs out. */
    if (reserve(b, n + n / 8 + 32))
        return -1;
    char *o = b->data + b->len;
    char *limit = b->data + b->cap - 1; /* the NUL stays within */
    *o++ = '"';
    size_t i = 0;
#ifdef SIXTEEN_AT_A_TIME
    /* As below, 16 at a time (every 16 written have 16 + 6 of room). */
    while (i + 16 <= n) {
        if (limit - o < 22) {
            if (!(o = more_room(b, o, n - i)))
                return -1;
            limit = b->data + b->cap - 1;
        }
        _mm_storeu_si128((__m128i *)(void *)o,
                         _mm_loadu_si128((const __m128i *)(const void *)(s + i)));
        unsigned m = to_escape16(s + i);
        if (!m) {
            o += 16;
            i += 16;
            continue;
        }
        size_t k = (size_t)__builtin_ctz(m);
        unsigned char c = (unsigned char)s[i + k];
        o += k;
        if (c == '"' || c == '\\') {
            o[0] = '\\';
            o[1] = (char)c;
            o += 2;
        } else {
            o = escape(o, c);
        }
        i += k + 1;
    }
#endif
#ifdef WORD_AT_A_TIME
    /* An envelope is mostly bytes copied as they are, with a quote every few
     * of them: 8 are checked and copied at once, up to the first to escape
     * (every 8 written have 8 + 6 of room, so writing 8 ahead is safe). */
    while (i + 8 <= n) {
        if (limit - o < 14) {
            if (!(o = more_room(b, o, n - i)))
                return -1;
            limit = b->data + b->cap - 1;
        }
        uint64_t w;
        memcpy(&w, s + i, 8);
        memcpy(o, &w, 8);
        uint64_t m = to_escape(w);
        if (!m) {
            o += 8;
            i += 8;
            continue;
        }
        size_t k = (size_t)__builtin_ctzll(m) >> 3;
        unsigned char c = (unsigned char)s[i + k];
        o += k;
        if (c == '"' || c == '\\') { /* the common escapes, without a call */
            o[0] = '\\';
            o[1] = (char)c;
            o += 2;
        } else {
            o = escape(o, c);
        }
        i += k + 1;
    }
#endif
    for (; i < n; i++) {
        if (limit - o < 8) {
            if (!(o = more_room(b, o, n - i)))
                return -1;
            limit = b->data + b->cap - 1;
        }
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            *o++ = (char)c;
        else
            o = escape(o, c);
    }
    if (limit - o < 1) {
        if (!(o = more_room(b, o, 0)))
            return -1;
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

int evbus_aws_buf_reserve(evbus_aws_buf *b, size_t more) {
    return reserve(b, more);
}

void evbus_aws_buf_free(evbus_aws_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
