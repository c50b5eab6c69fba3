#include "http_putevents.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REFUSE(...)                                                                                \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        goto fail;                                                                                 \
    } while (0)

/* A string member, "" when absent; NULL when present with another type. */
static const char *string_member(json_t *o, const char *key) {
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return "";
    return json_is_string(v) ? json_string_value(v) : NULL;
}

/* Time: epoch seconds (what SDKs send for a timestamp in JSON 1.1) as
 * RFC 3339 UTC, or a string passed on for evbus to check. Returns the text,
 * "" when absent, NULL when of another type or out of range. */
static const char *time_member(json_t *o, char out[64]) {
    json_t *v = json_object_get(o, "Time");
    if (!v || json_is_null(v))
        return "";
    if (json_is_string(v))
        return json_string_value(v);
    if (!json_is_number(v))
        return NULL;
    double s = json_number_value(v);
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

bool evbus__putevents_decode(const char *body, size_t len, evbus__putevents *pe, char *why,
                             size_t whylen) {
    memset(pe, 0, offsetof(evbus__putevents, resources));
    memset(pe->early, 0, sizeof pe->early);
    json_error_t jerr;
    pe->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!pe->root)
        REFUSE("the body is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
               jerr.column);
    if (!json_is_object(pe->root))
        REFUSE("the body must be a JSON object such as {\"Entries\": [...]}");
    if (json_object_get(pe->root, "EndpointId"))
        REFUSE("EndpointId (a global endpoint) is not served by evbus: leave it out");
    json_t *entries = json_object_get(pe->root, "Entries");
    if (!entries)
        REFUSE("1 validation error detected: Value null at 'entries' failed to satisfy "
               "constraint: Member must not be null");
    if (!json_is_array(entries))
        REFUSE("Entries must be an array of entries");
    size_t n = json_array_size(entries);
    if (n < 1 || n > EVBUS__PUTEVENTS_MAX)
        REFUSE("1 validation error detected: Value at 'entries' failed to satisfy constraint: "
               "Member must have length %s %d (it has %zu)",
               n < 1 ? "greater than or equal to" : "less than or equal to",
               n < 1 ? 1 : EVBUS__PUTEVENTS_MAX, n);
    pe->n = n;
    for (size_t i = 0; i < n; i++) {
        json_t *e = json_array_get(entries, i);
        Evbus__V1__Event *ev = &pe->events[i];
        evbus__v1__event__init(ev);
        if (!json_is_object(e))
            REFUSE("Entries[%zu] must be an object", i);
        const char *source = string_member(e, "Source"),
                   *detail_type = string_member(e, "DetailType"),
                   *detail = string_member(e, "Detail"), *bus = string_member(e, "EventBusName"),
                   *trace = string_member(e, "TraceHeader"), *time = time_member(e, pe->time[i]);
        if (!source || !detail_type || !detail || !bus || !trace)
            REFUSE("Entries[%zu]: Source, DetailType, Detail, EventBusName and TraceHeader must "
                   "be strings",
                   i);
        if (!time)
            REFUSE("Entries[%zu]: Time must be epoch seconds (a number) or an RFC 3339 string", i);
        ev->source = (char *)source;
        ev->detail_type = (char *)detail_type;
        ev->detail = (char *)detail;
        ev->time = (char *)time;
        ev->id = "";
        json_t *res = json_object_get(e, "Resources");
        if (res && !json_is_null(res) && !json_is_array(res))
            REFUSE("Entries[%zu].Resources must be an array of strings", i);
        size_t nres = json_array_size(res);
        if (nres > EVBUS__PUTEVENTS_RESOURCES) {
            pe->early[i].code = "InvalidArgument";
            pe->early[i].message = "Parameter Resources is not valid. Reason: more than 100 "
                                   "resources";
            continue;
        }
        ev->resources = pe->resources[i];
        for (size_t k = 0; k < nres; k++) {
            json_t *r = json_array_get(res, k);
            if (!json_is_string(r))
                REFUSE("Entries[%zu].Resources[%zu] must be a string", i, k);
            const char *s = json_string_value(r);
            size_t plen = sizeof EVBUS__PUTEVENTS_ID_PREFIX - 1;
            if (strncmp(s, EVBUS__PUTEVENTS_ID_PREFIX, plen) == 0 && ev->id[0] == '\0')
                ev->id = (char *)s + plen;
            else
                ev->resources[ev->n_resources++] = (char *)s;
        }
        if (ev->id[0] == '\0' && nres > 0 && ev->n_resources < nres) {
            pe->early[i].code = "InvalidArgument";
            pe->early[i].message = "Parameter Resources is not valid. Reason: evbus:id/ needs an "
                                   "id after it (1 to 256 bytes)";
            continue;
        }
        if (bus[0]) {
            Evbus__V1__Attribute *a = &pe->bus[i];
            evbus__v1__attribute__init(a);
            a->key = "event_bus_name";
            a->value = (char *)bus;
            pe->bus_ptr[i] = a;
            ev->attributes = &pe->bus_ptr[i];
            ev->n_attributes = 1;
        }
    }
    return true;
fail:
    evbus__putevents_clear(pe);
    return false;
}

void evbus__putevents_clear(evbus__putevents *pe) {
    if (pe->root)
        json_decref(pe->root);
    pe->root = NULL;
    pe->n = 0;
}

void evbus__putevents_result_of(const Evbus__V1__EventAck *ack, evbus__putevents_result *out) {
    out->event_id = ack->event_id;
    out->message = ack->reason;
    switch (ack->status) {
    case EVBUS__V1__ACK_STATUS__ACCEPTED:
    case EVBUS__V1__ACK_STATUS__DUPLICATE: out->code = NULL; break;
    case EVBUS__V1__ACK_STATUS__REJECTED:
        /* EventBridge names a detail that is not a JSON object MalformedDetail
         * and every other bad field InvalidArgument. */
        out->code = strncmp(ack->reason, "detail is not a JSON object", 27) == 0
                        ? "MalformedDetail"
                        : "InvalidArgument";
        break;
    case EVBUS__V1__ACK_STATUS__RETRY_LATER:
        /* Retryable in EventBridge's words: SDKs and producers resend it. */
        out->code = "ThrottlingException";
        break;
    default: out->code = "InternalFailure"; break;
    }
}

typedef struct text {
    char *s;
    size_t len, cap;
    bool oom;
} text;

static void put(text *t, const char *s, size_t n) {
    if (t->oom)
        return;
    if (t->len + n + 1 > t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 512;
        while (cap < t->len + n + 1)
            cap *= 2;
        char *p = realloc(t->s, cap);
        if (!p) {
            t->oom = true;
            return;
        }
        t->s = p;
        t->cap = cap;
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void put_lit(text *t, const char *s) {
    put(t, s, strlen(s));
}

/* A JSON string; the input is valid UTF-8 (ids and reasons from evbus). */
static void put_str(text *t, const char *s) {
    put(t, "\"", 1);
    const char *run = s;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        put(t, run, (size_t)(s - run));
        char esc[8];
        if (c == '"' || c == '\\')
            snprintf(esc, sizeof esc, "\\%c", c);
        else
            snprintf(esc, sizeof esc, "\\u%04x", c);
        put_lit(t, esc);
        run = s + 1;
    }
    put(t, run, (size_t)(s - run));
    put(t, "\"", 1);
}

char *evbus__putevents_encode(const evbus__putevents_result *res, size_t n, size_t *len) {
    text t = {0};
    size_t failed = 0;
    for (size_t i = 0; i < n; i++)
        failed += res[i].code != NULL;
    char head[64];
    snprintf(head, sizeof head, "{\"FailedEntryCount\":%zu,\"Entries\":[", failed);
    put_lit(&t, head);
    for (size_t i = 0; i < n; i++) {
        put_lit(&t, i ? ",{" : "{");
        if (res[i].code) {
            put_lit(&t, "\"ErrorCode\":");
            put_str(&t, res[i].code);
            put_lit(&t, ",\"ErrorMessage\":");
            put_str(&t, res[i].message ? res[i].message : "");
        } else {
            put_lit(&t, "\"EventId\":");
            put_str(&t, res[i].event_id ? res[i].event_id : "");
        }
        put_lit(&t, "}");
    }
    put_lit(&t, "]}");
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    *len = t.len;
    return t.s;
}

char *evbus__putevents_error_body(const char *type, const char *message, size_t *len) {
    text t = {0};
    put_lit(&t, "{\"__type\":");
    put_str(&t, type);
    put_lit(&t, ",\"message\":");
    put_str(&t, message);
    put_lit(&t, "}");
    if (t.oom) {
        free(t.s);
        return NULL;
    }
    *len = t.len;
    return t.s;
}
