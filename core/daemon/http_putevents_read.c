/* Reading a PutEvents request body (evbus__putevents_decode, see
 * http_putevents.h) without a JSON tree.
 *
 * A general JSON library built a tree of the body, allocated every value and
 * copied every string, which cost about three quarters of the HTTP thread's
 * instructions per request. Here the body is checked once by the strict,
 * allocation-free validator (json_check.h: RFC 8259, UTF-8, paired
 * surrogates), then walked a second time, knowing it is valid, to pick out
 * the members a PutEvents entry has. Their strings are unescaped in place
 * (an escape is never shorter than what it stands for) and NUL-terminated
 * there, so the decoded events point into the caller's body. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/json_check.h"
#include "http_putevents.h"

#define REFUSE(...)                                                                                \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

typedef struct walk {
    char *p;   /* the body is valid JSON: no bounds to check while walking it */
    char *end; /* except for reading it a word at a time */
} walk;

static void ws(walk *w) {
    while (*w->p == ' ' || *w->p == '\t' || *w->p == '\n' || *w->p == '\r')
        w->p++;
}

static unsigned hex4(const char *p) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v = v << 4 | (unsigned)(c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10);
    }
    return v;
}

static char *put_utf8(char *out, uint32_t cp) {
    if (cp < 0x80) {
        *out++ = (char)cp;
    } else if (cp < 0x800) {
        *out++ = (char)(0xc0 | cp >> 6);
        *out++ = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        *out++ = (char)(0xe0 | cp >> 12);
        *out++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *out++ = (char)(0x80 | (cp & 0x3f));
    } else {
        *out++ = (char)(0xf0 | cp >> 18);
        *out++ = (char)(0x80 | (cp >> 12 & 0x3f));
        *out++ = (char)(0x80 | (cp >> 6 & 0x3f));
        *out++ = (char)(0x80 | (cp & 0x3f));
    }
    return out;
}

#define ONES  0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

/* The next quote or backslash at or after p, which the validator has seen
 * before `end`. Eight bytes at a time while eight remain (the classic "has
 * a zero byte" test on the word XORed with each character), then by bytes. */
static char *next_special(char *p, const char *end) {
    while (end - p >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        uint64_t q = v ^ (ONES * '"'), b = v ^ (ONES * '\\');
        if ((((q - ONES) & ~q) | ((b - ONES) & ~b)) & HIGHS)
            break;
        p += 8;
    }
    while (*p != '"' && *p != '\\')
        p++;
    return p;
}

/* The string at w->p (its opening quote), unescaped in place and
 * NUL-terminated; NULL when it holds a \u0000, which no C string can carry
 * (JSON libraries refuse it too unless told otherwise). */
static char *string(walk *w) {
    char *in = w->p + 1, *start = in;
    /* The common case, a run without escapes, needs no copying. */
    in = next_special(in, w->end);
    char *out = in;
    for (;;) {
        char c = *in++;
        if (c == '"')
            break;
        if (c != '\\') {
            /* A run between escapes, moved down whole. */
            char *run_end = next_special(in, w->end);
            size_t n = (size_t)(run_end - in) + 1;
            memmove(out, in - 1, n);
            out += n;
            in = run_end;
            continue;
        }
        c = *in++;
        switch (c) {
        case 'b': *out++ = '\b'; break;
        case 'f': *out++ = '\f'; break;
        case 'n': *out++ = '\n'; break;
        case 'r': *out++ = '\r'; break;
        case 't': *out++ = '\t'; break;
        case 'u': {
            uint32_t cp = hex4(in);
            in += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) { /* the validator saw its pair */
                cp = 0x10000 + ((cp - 0xd800) << 10) + (hex4(in + 2) - 0xdc00);
                in += 6;
            }
            if (cp == 0) {
                while (*in != '"') /* to the end of the string, for the walk to go on */
                    in += *in == '\\' ? 2 : 1;
                w->p = in + 1;
                return NULL;
            }
            out = put_utf8(out, cp);
            break;
        }
        default: *out++ = c; /* " \ / */
        }
    }
    *out = '\0';
    w->p = in;
    return start;
}

/* Skips one value. */
static void skip(walk *w) {
    int depth = 0;
    do {
        char c = *w->p;
        if (c == '"') {
            w->p++;
            while (*w->p != '"')
                w->p += *w->p == '\\' ? 2 : 1;
            w->p++;
        } else if (c == '{' || c == '[') {
            depth++;
            w->p++;
        } else if (c == '}' || c == ']') {
            depth--;
            w->p++;
        } else if (c == ',' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            w->p++;
        } else { /* a number or a literal */
            while (*w->p && !strchr(",]} \t\n\r", *w->p))
                w->p++;
        }
    } while (depth > 0);
}

/* Steps over ',' (and the white space after it) or the closing bracket
 * after a member or element; returns false at the closing bracket. */
static bool next(walk *w) {
    ws(w);
    if (*w->p++ != ',')
        return false;
    ws(w);
    return true;
}

/* Opens the container at w->p; returns false when it is empty. */
static bool enter(walk *w) {
    w->p++;
    ws(w);
    if (*w->p == '}' || *w->p == ']') {
        w->p++;
        return false;
    }
    return true;
}

/* A member's name (unescaped: "\u0053ource" is Source) and the start of its
 * value. */
static char *member(walk *w) {
    char *name = string(w);
    ws(w);
    w->p++; /* ':' */
    ws(w);
    return name;
}

typedef enum kind { STRING, NUMBER, NULLV, OTHER } kind;

static kind kind_of(const walk *w) {
    char c = *w->p;
    return c == '"'                               ? STRING
           : c == 'n'                             ? NULLV
           : (c == '-' || (c >= '0' && c <= '9')) ? NUMBER
                                                  : OTHER;
}

/* Time given as epoch seconds, as RFC 3339 UTC; NULL when out of range. */
static const char *epoch_time(double s, char out[64]) {
    /* Years 1 to 9999: what RFC 3339 can write. */
    if (!(s >= -62135596800.0 && s < 253402300800.0))
        return NULL;
    time_t whole = (time_t)floor(s);
    struct tm tm;
    if (!gmtime_r(&whole, &tm))
        return NULL;
    int ms = (int)((s - floor(s)) * 1000.0);
    if (ms > 0)
        snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
    else
        snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return out;
}

/* What is wrong with one entry, first thing first; NULL when nothing. The
 * request is refused for it unless a count error comes first. */
typedef struct entry_error {
    char text[160];
    bool set, nul;
} entry_error;

/* Notes the first error; the walk goes on to the end of the entry, so that
 * the entries after it are still counted. */
#define ENTRY_FAIL(...)                                                                            \
    do {                                                                                           \
        if (!err->set)                                                                             \
            snprintf(err->text, sizeof err->text, __VA_ARGS__);                                    \
        err->set = true;                                                                           \
    } while (0)

enum { F_SOURCE, F_TYPE, F_DETAIL, F_BUS, F_TRACE, F_TIME, F_RESOURCES, N_FIELDS };
static const char *const field_names[N_FIELDS] = {
    "Source", "DetailType", "Detail", "EventBusName", "TraceHeader", "Time", "Resources"};

static void resources(walk *w, evbus__putevents *pe, size_t i, entry_error *err) {
    Evbus__V1__Event *ev = &pe->events[i];
    if (kind_of(w) == NULLV) {
        skip(w);
        return;
    }
    if (*w->p != '[') {
        ENTRY_FAIL("Entries[%zu].Resources must be an array of strings", i);
        skip(w);
        return;
    }
    ev->resources = pe->resources[i];
    size_t nres = 0;
    bool more = enter(w);
    for (; more; more = next(w), nres++) {
        ws(w);
        if (nres >= EVBUS__PUTEVENTS_RESOURCES) {
            skip(w); /* too many: answered for this entry alone, below */
            continue;
        }
        if (kind_of(w) != STRING) {
            ENTRY_FAIL("Entries[%zu].Resources[%zu] must be a string", i, nres);
            skip(w);
            continue;
        }
        char *s = string(w);
        if (!s) {
            err->nul = true;
            ENTRY_FAIL("\\u0000 in a string");
            continue;
        }
        size_t plen = sizeof EVBUS__PUTEVENTS_ID_PREFIX - 1;
        if (strncmp(s, EVBUS__PUTEVENTS_ID_PREFIX, plen) == 0 && ev->id[0] == '\0')
            ev->id = s + plen;
        else
            ev->resources[ev->n_resources++] = s;
    }
    if (nres > EVBUS__PUTEVENTS_RESOURCES) {
        pe->early[i].code = "InvalidArgument";
        pe->early[i].message = "Parameter Resources is not valid. Reason: more than 100 resources";
    } else if (ev->id[0] == '\0' && nres > 0 && ev->n_resources < nres) {
        pe->early[i].code = "InvalidArgument";
        pe->early[i].message = "Parameter Resources is not valid. Reason: evbus:id/ needs an "
                               "id after it (1 to 256 bytes)";
    }
}

/* Entry i, at w->p. */
static void entry(walk *w, evbus__putevents *pe, size_t i, entry_error *err) {
    Evbus__V1__Event *ev = &pe->events[i];
    evbus__v1__event__init(ev);
    ev->id = ev->source = ev->detail_type = ev->detail = ev->time = "";
    if (*w->p != '{') {
        ENTRY_FAIL("Entries[%zu] must be an object", i);
        skip(w);
        return;
    }
    const char *bus = "";
    unsigned seen = 0;
    for (bool more = enter(w); more; more = next(w)) {
        char *name = member(w);
        int f = 0;
        while (f < N_FIELDS && !(name && strcmp(name, field_names[f]) == 0))
            f++;
        if (f == N_FIELDS) {
            skip(w);
            continue;
        }
        if (seen & 1u << f) {
            ENTRY_FAIL("the body is not valid JSON: Entries[%zu] has %s twice", i, field_names[f]);
            skip(w);
            continue;
        }
        seen |= 1u << f;
        if (f == F_RESOURCES) {
            resources(w, pe, i, err);
            continue;
        }
        kind k = kind_of(w);
        if (f == F_TIME && k == NUMBER) {
            const char *t = epoch_time(strtod(w->p, NULL), pe->time[i]);
            if (!t)
                ENTRY_FAIL("Entries[%zu]: Time must be epoch seconds (a number) or an RFC 3339 "
                           "string",
                           i);
            else
                ev->time = (char *)t;
            skip(w);
            continue;
        }
        if (k == NULLV) {
            skip(w);
            continue;
        }
        if (k != STRING) {
            if (f == F_TIME)
                ENTRY_FAIL("Entries[%zu]: Time must be epoch seconds (a number) or an RFC 3339 "
                           "string",
                           i);
            else
                ENTRY_FAIL("Entries[%zu]: Source, DetailType, Detail, EventBusName and "
                           "TraceHeader must be strings",
                           i);
            skip(w);
            continue;
        }
        char *s = string(w);
        if (!s) {
            err->nul = true;
            ENTRY_FAIL("\\u0000 in a string");
            continue;
        }
        switch (f) {
        case F_SOURCE: ev->source = s; break;
        case F_TYPE: ev->detail_type = s; break;
        case F_DETAIL: ev->detail = s; break;
        case F_BUS: bus = s; break;
        case F_TIME: ev->time = s; break;
        default: break; /* TraceHeader: checked, not kept (no X-Ray here) */
        }
    }
    if (bus[0] && !pe->early[i].code) {
        Evbus__V1__Attribute *a = &pe->bus[i];
        evbus__v1__attribute__init(a);
        a->key = "event_bus_name";
        a->value = (char *)bus;
        pe->bus_ptr[i] = a;
        ev->attributes = &pe->bus_ptr[i];
        ev->n_attributes = 1;
    }
}

bool evbus__putevents_decode(char *body, size_t len, evbus__putevents *pe, char *why,
                             size_t whylen) {
    memset(pe, 0, offsetof(evbus__putevents, resources));
    memset(pe->early, 0, sizeof pe->early);
    const char *jwhy = NULL;
    size_t at = 0;
    if (len == 0 || evbus__json_check_object(body, len, &jwhy, &at) != 0) {
        /* Not an object at all is a shape problem, the rest bad JSON. */
        if (jwhy && strcmp(jwhy, "not a JSON object") == 0)
            REFUSE("the body must be a JSON object such as {\"Entries\": [...]}");
        REFUSE("the body is not valid JSON: %s (at byte %zu)", jwhy ? jwhy : "empty body", at);
    }
    /* The validator stopped at the end of the object; anything after it
     * was white space, and the walk never passes the closing brace. */
    walk w = {body, body + len};
    ws(&w);
    bool has_entries = false, has_endpoint = false, entries_array = false;
    size_t n = 0;
    entry_error err = {.set = false};
    for (bool more = enter(&w); more; more = next(&w)) {
        char *name = member(&w);
        if (name && strcmp(name, "EndpointId") == 0) {
            has_endpoint = true;
            skip(&w);
            continue;
        }
        if (!name || strcmp(name, "Entries") != 0) {
            skip(&w);
            continue;
        }
        if (has_entries)
            REFUSE("the body is not valid JSON: it has Entries twice");
        has_entries = true;
        if (kind_of(&w) == NULLV) {
            has_entries = false; /* as if absent */
            skip(&w);
            continue;
        }
        if (*w.p != '[') {
            skip(&w);
            continue;
        }
        entries_array = true;
        for (bool el = enter(&w); el; el = next(&w), n++) {
            ws(&w);
            if (n >= EVBUS__PUTEVENTS_MAX || err.set) {
                skip(&w); /* counted for the error only */
                continue;
            }
            entry(&w, pe, n, &err);
        }
    }
    if (has_endpoint)
        REFUSE("EndpointId (a global endpoint) is not served by evbus: leave it out");
    if (!has_entries)
        REFUSE("1 validation error detected: Value null at 'entries' failed to satisfy "
               "constraint: Member must not be null");
    if (!entries_array)
        REFUSE("Entries must be an array of entries");
    if (n < 1 || n > EVBUS__PUTEVENTS_MAX)
        REFUSE("1 validation error detected: Value at 'entries' failed to satisfy constraint: "
               "Member must have length %s %d (it has %zu)",
               n < 1 ? "greater than or equal to" : "less than or equal to",
               n < 1 ? 1 : EVBUS__PUTEVENTS_MAX, n);
    if (err.nul)
        REFUSE("the body is not valid JSON: \\u0000 is not allowed in a string evbus reads");
    if (err.set)
        REFUSE("%s", err.text);
    pe->n = n;
    return true;
fail:
    evbus__putevents_clear(pe);
    return false;
}

void evbus__putevents_clear(evbus__putevents *pe) {
    pe->n = 0;
}
