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

int evbus_aws_buf_json_str(evbus_aws_buf *b, const char *s, size_t n) {
    /* Worst case: every byte becomes \u00XX. */
    if (reserve(b, n * 6 + 2))
        return -1;
    char *o = b->data + b->len;
    *o++ = '"';
    size_t i = 0;
#ifdef WORD_AT_A_TIME
    /* An envelope is mostly bytes copied as they are, with a quote every few
     * of them: 8 are checked and copied at once, up to the first to escape.
     * (The output has room for 6 per input byte left, so writing 8 ahead is
     * safe.) */
    while (i + 8 <= n) {
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
        o = escape(o + k, (unsigned char)s[i + k]);
        i += k + 1;
    }
#endif
    for (; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            *o++ = (char)c;
        else
            o = escape(o, c);
    }
    *o++ = '"';
    b->len = (size_t)(o - b->data);
    b->data[b->len] = '\0';
    return 0;
}

void evbus_aws_buf_free(evbus_aws_buf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
