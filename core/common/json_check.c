#include "json_check.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>

typedef struct reader {
    const unsigned char *p, *end, *start;
    const char *why;
} reader;

static bool fail(reader *r, const char *why) {
    if (!r->why)
        r->why = why;
    return false;
}

static void skip_ws(reader *r) {
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* One UTF-8 sequence starting at r->p (already known to be >= 0x80). Rejects
 * overlong forms, surrogates and code points above U+10FFFF. */
static bool utf8_seq(reader *r) {
    const unsigned char *p = r->p;
    unsigned c = *p;
    size_t need;
    uint32_t cp, min;
    if (c >= 0xc2 && c <= 0xdf) {
        need = 1, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 2, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 3, cp = c & 0x07, min = 0x10000;
    } else {
        return fail(r, "invalid UTF-8");
    }
    if ((size_t)(r->end - p) <= need)
        return fail(r, "truncated UTF-8 sequence");
    for (size_t i = 1; i <= need; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return fail(r, "invalid UTF-8");
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return fail(r, "invalid UTF-8");
    r->p += need + 1;
    return true;
}

static bool hex4(reader *r, unsigned *out) {
    if (r->end - r->p < 4)
        return fail(r, "truncated \\u escape");
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = r->p[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16)
            return fail(r, "invalid \\u escape");
        v = v << 4 | d;
    }
    r->p += 4;
    *out = v;
    return true;
}

/* A \u escape (r->p just past the 'u'). Surrogates must come in pairs: a
 * lone one is no character, and the matcher, jansson and the services behind
 * the sinks all refuse it, so ingest refuses it too. */
static bool unicode_escape(reader *r) {
    unsigned v;
    if (!hex4(r, &v))
        return false;
    if (v >= 0xdc00 && v <= 0xdfff)
        return fail(r, "unpaired surrogate in \\u escape");
    if (v < 0xd800 || v > 0xdbff)
        return true;
    if (r->end - r->p < 2 || r->p[0] != '\\' || r->p[1] != 'u')
        return fail(r, "unpaired surrogate in \\u escape");
    r->p += 2;
    if (!hex4(r, &v))
        return false;
    if (v < 0xdc00 || v > 0xdfff)
        return fail(r, "unpaired surrogate in \\u escape");
    return true;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* Skips 8 bytes at a time while none of them needs a closer look: a quote, a
 * backslash, a control character or a non-ASCII byte. The tests are the
 * classic "has a zero byte" bit tricks; they may flag a byte that is fine
 * (then the byte loop looks at it), never miss one that is not. */
static const unsigned char *skip_plain(const unsigned char *p, const unsigned char *end) {
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        uint64_t quote = w ^ (ONES * '"'), bslash = w ^ (ONES * '\\');
        uint64_t special =
            ((quote - ONES) & ~quote) | ((bslash - ONES) & ~bslash) | ((w - ONES * 0x20) & ~w) | w;
        if (special & HIGHS)
            break;
        p += 8;
    }
    return p;
}

static const unsigned char *skip_ascii(const unsigned char *p, const unsigned char *end) {
    while (end - p >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        if (w & HIGHS)
            break;
        p += 8;
    }
    return p;
}

static bool string(reader *r) {
    r->p++; /* opening quote */
    while (r->p < r->end) {
        r->p = skip_plain(r->p, r->end);
        if (r->p >= r->end)
            break;
        unsigned char c = *r->p;
        if (c == '"') {
            r->p++;
            return true;
        }
        if (c == '\\') {
            r->p++;
            if (r->p >= r->end)
                break;
            c = *r->p++;
            if (c == 'u') {
                if (!unicode_escape(r))
                    return false;
            } else if (!(c == '"' || c == '\\' || c == '/' || c == 'b' || c == 'f' || c == 'n' ||
                         c == 'r' || c == 't')) {
                r->p--;
                return fail(r, "invalid escape in string");
            }
        } else if (c < 0x20) {
            return fail(r, "control character in string");
        } else if (c >= 0x80) {
            if (!utf8_seq(r))
                return false;
        } else {
            r->p++;
        }
    }
    return fail(r, "unterminated string");
}

static bool digits(reader *r) {
    if (r->p >= r->end || *r->p < '0' || *r->p > '9')
        return fail(r, "invalid number");
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
        r->p++;
    return true;
}

static bool number(reader *r) {
    if (*r->p == '-')
        r->p++;
    if (r->p < r->end && *r->p == '0')
        r->p++;
    else if (!digits(r))
        return false;
    if (r->p < r->end && *r->p == '.') {
        r->p++;
        if (!digits(r))
            return false;
    }
    if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        r->p++;
        if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
            r->p++;
        if (!digits(r))
            return false;
    }
    return true;
}

static bool literal(reader *r, const char *word, size_t n) {
    if ((size_t)(r->end - r->p) < n)
        return fail(r, "invalid literal");
    for (size_t i = 0; i < n; i++)
        if (r->p[i] != (unsigned char)word[i])
            return fail(r, "invalid literal");
    r->p += n;
    return true;
}

static bool value(reader *r, int depth);

static bool container(reader *r, int depth, bool is_object) {
    if (depth > EVBUS_JSON_MAX_DEPTH)
        return fail(r, "nested too deeply");
    unsigned char close = is_object ? '}' : ']';
    r->p++;
    skip_ws(r);
    if (r->p < r->end && *r->p == close) {
        r->p++;
        return true;
    }
    for (;;) {
        if (is_object) {
            if (r->p >= r->end || *r->p != '"')
                return fail(r, "expected a member name");
            if (!string(r))
                return false;
            skip_ws(r);
            if (r->p >= r->end || *r->p != ':')
                return fail(r, "expected ':'");
            r->p++;
            skip_ws(r);
        }
        if (!value(r, depth))
            return false;
        skip_ws(r);
        if (r->p >= r->end)
            return fail(r, is_object ? "unterminated object" : "unterminated array");
        if (*r->p == ',') {
            r->p++;
            skip_ws(r);
            continue;
        }
        if (*r->p == close) {
            r->p++;
            return true;
        }
        return fail(r, is_object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

static bool value(reader *r, int depth) {
    if (r->p >= r->end)
        return fail(r, "expected a value");
    switch (*r->p) {
    case '{': return container(r, depth + 1, true);
    case '[': return container(r, depth + 1, false);
    case '"': return string(r);
    case 't': return literal(r, "true", 4);
    case 'f': return literal(r, "false", 5);
    case 'n': return literal(r, "null", 4);
    default:
        if (*r->p == '-' || (*r->p >= '0' && *r->p <= '9'))
            return number(r);
        return fail(r, "expected a value");
    }
}

int evbus__json_check_object(const char *s, size_t len, const char **why, size_t *offset) {
    reader r = {(const unsigned char *)s, (const unsigned char *)s + len, (const unsigned char *)s,
                NULL};
    skip_ws(&r);
    bool ok;
    if (r.p >= r.end || *r.p != '{')
        ok = fail(&r, "not a JSON object");
    else
        ok = container(&r, 1, true);
    if (ok) {
        skip_ws(&r);
        if (r.p != r.end)
            ok = fail(&r, "trailing characters after the object");
    }
    if (ok)
        return 0;
    *why = r.why;
    *offset = (size_t)(r.p - r.start);
    return -1;
}

int evbus__utf8_valid(const char *s, size_t len) {
    reader r = {(const unsigned char *)s, (const unsigned char *)s + len, (const unsigned char *)s,
                NULL};
    while (r.p < r.end) {
        r.p = skip_ascii(r.p, r.end);
        if (r.p >= r.end)
            break;
        if (*r.p < 0x80)
            r.p++;
        else if (!utf8_seq(&r))
            return 0;
    }
    return 1;
}
