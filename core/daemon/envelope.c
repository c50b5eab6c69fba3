#include "envelope.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int put(evbus__bytes *b, const char *s, size_t n) {
    if (evbus__bytes_reserve(b, n))
        return -1;
    memcpy(b->data + b->len, s, n);
    b->len += n;
    return 0;
}

/* How many of s's first n bytes JSON holds as they are (up to the first
 * quote, backslash or control character): 8 bytes at a time, as most of an
 * event's strings have nothing to escape. */
static size_t plain_run(const char *s, size_t n) {
    const uint64_t ones = 0x0101010101010101ull, highs = 0x8080808080808080ull;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, s + i, 8);
        uint64_t q = w ^ (ones * '"'), b = w ^ (ones * '\\');
        if ((((w - ones * 0x20) & ~w) | ((q - ones) & ~q) | ((b - ones) & ~b)) & highs)
            break; /* one of these 8 is to escape: found below */
    }
    while (i < n && (unsigned char)s[i] >= 0x20 && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* A JSON string; the input is valid UTF-8 (checked at ingest), so only
 * quotes, backslashes and control characters need escaping. */
static int str(evbus__bytes *b, const char *s) {
    size_t n = strlen(s), run = plain_run(s, n);
    if (evbus__bytes_reserve(b, run + 2))
        return -1;
    b->data[b->len++] = '"';
    memcpy(b->data + b->len, s, run);
    b->len += run;
    const char *start = s + run, *end = s + n;
    for (s = start; s < end; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        char esc[8];
        int k = c == '"'    ? snprintf(esc, sizeof esc, "\\\"")
                : c == '\\' ? snprintf(esc, sizeof esc, "\\\\")
                : c == '\n' ? snprintf(esc, sizeof esc, "\\n")
                : c == '\t' ? snprintf(esc, sizeof esc, "\\t")
                            : snprintf(esc, sizeof esc, "\\u%04x", c);
        if (put(b, start, (size_t)(s - start)) || put(b, esc, (size_t)k))
            return -1;
        start = s + 1;
    }
    return put(b, start, (size_t)(end - start)) || put(b, "\"", 1) ? -1 : 0;
}

#define LIT(b, s) put((b), (s), sizeof(s) - 1)

int evbus__envelope_json(const Evbus__V1__Event *ev, evbus__bytes *out) {
    if (LIT(out, "{\"version\":\"0\",\"id\":") || str(out, ev->id) ||
        LIT(out, ",\"detail-type\":") || str(out, ev->detail_type) || LIT(out, ",\"source\":") ||
        str(out, ev->source) || LIT(out, ",\"account\":\"\",\"time\":") || str(out, ev->time) ||
        LIT(out, ",\"region\":") || str(out, ev->origin_region) || LIT(out, ",\"resources\":["))
        return -1;
    for (size_t i = 0; i < ev->n_resources; i++)
        if ((i && LIT(out, ",")) || str(out, ev->resources[i]))
            return -1;
    if (LIT(out, "],\"detail\":") || put(out, ev->detail, strlen(ev->detail)) || LIT(out, "}"))
        return -1;
    return 0;
}
