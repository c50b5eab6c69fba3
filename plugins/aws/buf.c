/* A growable byte buffer and a JSON string writer: request bodies are built
 * by hand rather than through jansson because every event's envelope is
 * embedded as an escaped string, the hottest step of a sink. */
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

int evbus_aws_buf_json_str(evbus_aws_buf *b, const char *s, size_t n) {
    /* Worst case: every byte becomes \u00XX. */
    if (reserve(b, n * 6 + 2))
        return -1;
    static const char hex[] = "0123456789abcdef";
    char *o = b->data + b->len;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
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
