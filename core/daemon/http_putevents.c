#include "http_putevents.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
        /* An answer to ten entries with UUID ids takes about 600 bytes. */
        size_t cap = t->cap ? t->cap * 2 : 1024;
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
