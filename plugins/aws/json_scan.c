/* The in-place JSON scanner of json_scan.h. */
#include "json_scan.h"

#include <string.h>

#include "aws.h"

#define MAX_DEPTH 32

static void ws(evbus_aws_scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

bool evbus_aws_scan_eat(evbus_aws_scan *s, char c) {
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

bool evbus_aws_scan_string(evbus_aws_scan *s, const char **str, size_t *len, bool *escaped) {
    ws(s);
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *q = ++s->p;
    *escaped = false;
    for (;;) {
        /* Runs of plain bytes 8 at a time (ids, digests). */
        q += evbus_aws_json_plain(q, (size_t)(s->end - q));
        if (q >= s->end || (unsigned char)*q < 0x20)
            return false;
        if (*q == '"')
            break;
        *escaped = true; /* a backslash: skip what it escapes */
        q += 2;
        if (q > s->end)
            return false;
    }
    *str = s->p;
    *len = (size_t)(q - s->p);
    s->p = q + 1;
    return true;
}

static bool members(evbus_aws_scan *s, int depth, bool object) {
    char close = object ? '}' : ']';
    if (evbus_aws_scan_eat(s, close))
        return true;
    do {
        const char *k;
        size_t kl;
        bool esc;
        if (object && (!evbus_aws_scan_string(s, &k, &kl, &esc) || !evbus_aws_scan_eat(s, ':')))
            return false;
        if (!evbus_aws_scan_skip(s, depth + 1))
            return false;
    } while (evbus_aws_scan_eat(s, ','));
    return evbus_aws_scan_eat(s, close);
}

static bool literal(evbus_aws_scan *s, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(s->end - s->p) < n || memcmp(s->p, word, n) != 0)
        return false;
    s->p += n;
    return true;
}

bool evbus_aws_scan_skip(evbus_aws_scan *s, int depth) {
    ws(s);
    if (s->p >= s->end || depth > MAX_DEPTH)
        return false;
    const char *str;
    size_t len;
    bool esc;
    switch (*s->p) {
    case '"': return evbus_aws_scan_string(s, &str, &len, &esc);
    case '{': s->p++; return members(s, depth, true);
    case '[': s->p++; return members(s, depth, false);
    case 't': return literal(s, "true");
    case 'f': return literal(s, "false");
    case 'n': return literal(s, "null");
    default: break;
    }
    const char *start = s->p;
    while (s->p < s->end && ((*s->p >= '0' && *s->p <= '9') || *s->p == '-' || *s->p == '+' ||
                             *s->p == '.' || *s->p == 'e' || *s->p == 'E'))
        s->p++;
    return s->p > start;
}

bool evbus_aws_scan_done(evbus_aws_scan *s) {
    ws(s);
    return s->p == s->end;
}

bool evbus_aws_scan_is(const char *k, size_t kl, const char *want) {
    return kl == strlen(want) && memcmp(k, want, kl) == 0;
}
