#include "envelope.h"

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

/* A JSON string; the input is valid UTF-8 (checked at ingest), so only
 * quotes, backslashes and control characters need escaping. */
static int str(evbus__bytes *b, const char *s) {
    if (put(b, "\"", 1))
        return -1;
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c != '"' && c != '\\' && c >= 0x20)
            continue;
        char esc[8];
        int n = c == '"'    ? snprintf(esc, sizeof esc, "\\\"")
                : c == '\\' ? snprintf(esc, sizeof esc, "\\\\")
                : c == '\n' ? snprintf(esc, sizeof esc, "\\n")
                : c == '\t' ? snprintf(esc, sizeof esc, "\\t")
                            : snprintf(esc, sizeof esc, "\\u%04x", c);
        if (put(b, run, (size_t)(s - run)) || put(b, esc, (size_t)n))
            return -1;
        run = s + 1;
    }
    return put(b, run, (size_t)(s - run)) || put(b, "\"", 1) ? -1 : 0;
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
