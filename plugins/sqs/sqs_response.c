/* SendMessageBatch answers: a 200 lists Successful and Failed entries by Id.
 * An entry SQS blames on the sender (SenderFault true) will never succeed;
 * anything else is retried, and an entry the answer does not mention is
 * retried too (it was not confirmed; FIFO dedup absorbs a resend).
 *
 * The common answer, every entry successful, is read by plugins/aws's
 * scanner (json_scan.h) instead of jansson: building a tree of objects
 * per answer was an eighth of the delivery thread's time in bench/sinks.
 * Anything else (a failed entry, an escaped Id, a body that is not what
 * it should be) goes to jansson, which has the last word. */
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "sqs.h"

static long entry_index(json_t *entry, size_t n) {
    const char *id = json_string_value(json_object_get(entry, "Id"));
    char *end;
    if (!id || !*id)
        return -1;
    long i = strtol(id, &end, 10);
    return *end || i < 0 || (size_t)i >= n ? -1 : i;
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
    evbus_aws_scan s = {body, body + len};
    if (!evbus_aws_scan_eat(&s, '{'))
        return false;
    if (evbus_aws_scan_eat(&s, '}'))
        return evbus_aws_scan_done(&s);
    do {
        const char *k;
        size_t kl;
        bool esc;
        if (!evbus_aws_scan_string(&s, &k, &kl, &esc) || esc || !evbus_aws_scan_eat(&s, ':'))
            return false;
        if (evbus_aws_scan_is(k, kl, "Failed")) {
            /* Only an empty list stays on this path. */
            if (!evbus_aws_scan_eat(&s, '[') || !evbus_aws_scan_eat(&s, ']'))
                return false;
        } else if (evbus_aws_scan_is(k, kl, "Successful")) {
            if (!evbus_aws_scan_eat(&s, '['))
                return false;
            if (evbus_aws_scan_eat(&s, ']'))
                continue;
            do {
                if (!evbus_aws_scan_eat(&s, '{'))
                    return false;
                long idx = -1;
                if (!evbus_aws_scan_eat(&s, '}')) {
                    do {
                        const char *mk, *id;
                        size_t mkl, idl;
                        if (!evbus_aws_scan_string(&s, &mk, &mkl, &esc) || esc ||
                            !evbus_aws_scan_eat(&s, ':'))
                            return false;
                        if (evbus_aws_scan_is(mk, mkl, "Id")) {
                            if (!evbus_aws_scan_string(&s, &id, &idl, &esc) || esc)
                                return false;
                            idx = index_of(id, idl, n);
                        } else if (!evbus_aws_scan_skip(&s, 3)) {
                            return false;
                        }
                    } while (evbus_aws_scan_eat(&s, ','));
                    if (!evbus_aws_scan_eat(&s, '}'))
                        return false;
                }
                if (idx >= 0)
                    ok[idx] = true;
            } while (evbus_aws_scan_eat(&s, ','));
            if (!evbus_aws_scan_eat(&s, ']'))
                return false;
        } else if (!evbus_aws_scan_skip(&s, 1)) {
            return false;
        }
    } while (evbus_aws_scan_eat(&s, ','));
    return evbus_aws_scan_eat(&s, '}') && evbus_aws_scan_done(&s);
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
