/* SendMessageBatch answers: a 200 lists Successful and Failed entries by Id.
 * An entry SQS blames on the sender (SenderFault true) will never succeed;
 * anything else is retried, and an entry the answer does not mention is
 * retried too (it was not confirmed; FIFO dedup absorbs a resend).
 *
 * The common answer, every entry successful, is read by a small scanner
 * instead of jansson: building a tree of objects per answer was an eighth
 * of the delivery thread's time in bench/sinks. Anything else (a failed
 * entry, an escaped Id, a body that is not what it should be) goes to
 * jansson, which has the last word. */
#include <ctype.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sqs.h"

static long entry_index(json_t *entry, size_t n) {
    const char *id = json_string_value(json_object_get(entry, "Id"));
    char *end;
    if (!id || !*id)
        return -1;
    long i = strtol(id, &end, 10);
    return *end || i < 0 || (size_t)i >= n ? -1 : i;
}

/* ---- the scanner: JSON text in, nothing built ---- */

typedef struct scan {
    const char *p, *end;
} scan;

static void ws(scan *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static bool eat(scan *s, char c) {
    ws(s);
    if (s->p < s->end && *s->p == c) {
        s->p++;
        return true;
    }
    return false;
}

/* A string at s->p: its raw text (between the quotes) into *str / *len;
 * *escaped when it holds a backslash, so that its text is not its value. */
static bool string(scan *s, const char **str, size_t *len, bool *escaped) {
    ws(s);
    if (s->p >= s->end || *s->p != '"')
        return false;
    const char *q = ++s->p;
    *escaped = false;
    for (;;) {
        /* Runs of plain bytes 8 at a time (MessageId, MD5OfMessageBody). */
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

static bool value(scan *s, int depth);

/* Skips an object's or array's members after its opening bracket. */
static bool members(scan *s, int depth, bool object) {
    char close = object ? '}' : ']';
    if (eat(s, close))
        return true;
    do {
        const char *k;
        size_t kl;
        bool esc;
        if (object && (!string(s, &k, &kl, &esc) || !eat(s, ':')))
            return false;
        if (!value(s, depth + 1))
            return false;
    } while (eat(s, ','));
    return eat(s, close);
}

/* Skips one value; numbers and literals loosely (jansson re-reads any
 * answer this scanner does not take whole). */
static bool value(scan *s, int depth) {
    ws(s);
    if (s->p >= s->end || depth > 32)
        return false;
    const char *str;
    size_t len;
    bool esc;
    switch (*s->p) {
    case '"': return string(s, &str, &len, &esc);
    case '{': s->p++; return members(s, depth, true);
    case '[': s->p++; return members(s, depth, false);
    default:
        while (s->p < s->end &&
               (isalnum((unsigned char)*s->p) || *s->p == '-' || *s->p == '+' || *s->p == '.'))
            s->p++;
        return true;
    }
}

static bool key_is(const char *k, size_t kl, const char *want) {
    return kl == strlen(want) && memcmp(k, want, kl) == 0;
}

/* The entry index an Id's text names ("0".."9"), or -1. */
static long index_of(const char *id, size_t len, size_t n) {
    if (len == 0 || len > 6)
        return -1;
    long i = 0;
    for (size_t k = 0; k < len; k++) {
        if (id[k] < '0' || id[k] > '9')
            return -1;
        i = i * 10 + (id[k] - '0');
    }
    return (size_t)i < n ? i : -1;
}

/* Reads an answer with no failed entry, setting ok[i] for each entry it
 * lists as successful. False, with ok[] meaningless, sends the body to
 * jansson. */
static bool scan_successful(const char *body, size_t len, size_t n, bool *ok) {
    scan s = {body, body + len};
    if (!eat(&s, '{'))
        return false;
    if (eat(&s, '}')) {
        ws(&s);
        return s.p == s.end;
    }
    do {
        const char *k;
        size_t kl;
        bool esc;
        if (!string(&s, &k, &kl, &esc) || esc || !eat(&s, ':'))
            return false;
        if (key_is(k, kl, "Failed")) {
            /* Only an empty list stays on this path. */
            if (!eat(&s, '[') || !eat(&s, ']'))
                return false;
        } else if (key_is(k, kl, "Successful")) {
            if (!eat(&s, '['))
                return false;
            if (eat(&s, ']'))
                continue;
            do {
                if (!eat(&s, '{'))
                    return false;
                long idx = -1;
                if (!eat(&s, '}')) {
                    do {
                        const char *mk, *id;
                        size_t mkl, idl;
                        if (!string(&s, &mk, &mkl, &esc) || esc || !eat(&s, ':'))
                            return false;
                        if (key_is(mk, mkl, "Id")) {
                            if (!string(&s, &id, &idl, &esc) || esc)
                                return false;
                            idx = index_of(id, idl, n);
                        } else if (!value(&s, 3)) {
                            return false;
                        }
                    } while (eat(&s, ','));
                    if (!eat(&s, '}'))
                        return false;
                }
                if (idx >= 0)
                    ok[idx] = true;
            } while (eat(&s, ','));
            if (!eat(&s, ']'))
                return false;
        } else if (!value(&s, 1)) {
            return false;
        }
    } while (eat(&s, ','));
    if (!eat(&s, '}'))
        return false;
    ws(&s);
    return s.p == s.end;
}

int sqs_read_response(const char *body, size_t len, size_t n, sqs_entry_result *res) {
    for (size_t i = 0; i < n; i++) {
        res[i].fault = EVBUS_AWS_TRANSIENT;
        snprintf(res[i].reason, sizeof res[i].reason,
                 "MissingResult: SQS did not say whether the message was sent");
    }
    bool ok[SQS_MAX_ENTRIES] = {false};
    if (n <= SQS_MAX_ENTRIES && scan_successful(body, len, n, ok)) {
        for (size_t i = 0; i < n; i++) {
            if (ok[i]) {
                res[i].fault = EVBUS_AWS_OK;
                res[i].reason[0] = '\0';
            }
        }
        return 0;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        return -1;
    }
    size_t k;
    json_t *e;
    json_array_foreach(json_object_get(j, "Successful"), k, e) {
        long i = entry_index(e, n);
        if (i >= 0) {
            res[i].fault = EVBUS_AWS_OK;
            res[i].reason[0] = '\0';
        }
    }
    json_array_foreach(json_object_get(j, "Failed"), k, e) {
        long i = entry_index(e, n);
        if (i < 0)
            continue;
        const char *code = json_string_value(json_object_get(e, "Code"));
        const char *msg = json_string_value(json_object_get(e, "Message"));
        evbus_aws_fault f = evbus_aws_classify_code(code);
        /* The code decides when it names throttling or a target fault;
         * otherwise SenderFault does, as SQS documents. */
        if (f == EVBUS_AWS_EVENT_FAULT && !json_is_true(json_object_get(e, "SenderFault")))
            f = EVBUS_AWS_TRANSIENT;
        res[i].fault = f;
        snprintf(res[i].reason, sizeof res[i].reason, "%s: %s", code ? code : "Failed",
                 msg ? msg : "no message");
    }
    json_decref(j);
    return 0;
}
