/* PutEvents answers: a 200 carries FailedEntryCount and Entries[], one per
 * request entry in request order, each with an EventId (accepted) or an
 * ErrorCode and ErrorMessage. The code decides who is at fault: throttling
 * and internal failures are retried, missing permissions are the target's,
 * anything else (MalformedDetail, InvalidArgument, ...) is the event's. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "eventbridge.h"
#include "json_scan.h"

/* Reads an answer in which no entry carries an ErrorCode, setting ok[i]
 * for each entry i with a string EventId. False, with ok[] meaningless,
 * sends the body to jansson: an ErrorCode, an EventId that is not a
 * string, Entries twice (jansson keeps the last), anything malformed.
 * Building a jansson tree per answer was a seventh of the delivery
 * thread's instructions in bench/sinks. */
static bool scan_accepted(const char *body, size_t len, size_t n, bool *ok) {
    evbus_aws_scan s = {body, body + len};
    bool esc, seen_entries = false;
    const char *k, *v;
    size_t kl, vl;
    if (!evbus_aws_scan_eat(&s, '{'))
        return false;
    if (evbus_aws_scan_eat(&s, '}'))
        return false; /* no Entries: jansson says it is not an answer */
    do {
        if (!evbus_aws_scan_string(&s, &k, &kl, &esc) || esc || !evbus_aws_scan_eat(&s, ':'))
            return false;
        if (!evbus_aws_scan_is(k, kl, "Entries")) {
            if (!evbus_aws_scan_skip(&s, 1))
                return false;
            continue;
        }
        if (seen_entries || !evbus_aws_scan_eat(&s, '['))
            return false;
        seen_entries = true;
        if (evbus_aws_scan_eat(&s, ']'))
            continue;
        size_t i = 0;
        do {
            if (!evbus_aws_scan_eat(&s, '{'))
                return false;
            bool has_id = false;
            if (!evbus_aws_scan_eat(&s, '}')) {
                do {
                    if (!evbus_aws_scan_string(&s, &k, &kl, &esc) || esc ||
                        !evbus_aws_scan_eat(&s, ':'))
                        return false;
                    if (evbus_aws_scan_is(k, kl, "EventId")) {
                        if (!evbus_aws_scan_string(&s, &v, &vl, &esc))
                            return false;
                        has_id = true;
                    } else if (evbus_aws_scan_is(k, kl, "ErrorCode") ||
                               !evbus_aws_scan_skip(&s, 3)) {
                        return false;
                    }
                } while (evbus_aws_scan_eat(&s, ','));
                if (!evbus_aws_scan_eat(&s, '}'))
                    return false;
            }
            if (i < n)
                ok[i] = has_id;
            i++;
        } while (evbus_aws_scan_eat(&s, ','));
        if (!evbus_aws_scan_eat(&s, ']'))
            return false;
    } while (evbus_aws_scan_eat(&s, ','));
    return seen_entries && evbus_aws_scan_eat(&s, '}') && evbus_aws_scan_done(&s);
}

int eb_read_response(const char *body, size_t len, size_t n, eb_entry_result *res) {
    static const char missing[] =
        "MissingResult: EventBridge did not say whether the entry was accepted";
    _Static_assert(sizeof missing <= sizeof res[0].reason, "the reason fits");
    for (size_t i = 0; i < n; i++) {
        res[i].fault = EVBUS_AWS_TRANSIENT;
        memcpy(res[i].reason, missing, sizeof missing);
    }
    bool ok[EB_MAX_ENTRIES] = {false};
    if (n <= EB_MAX_ENTRIES && scan_accepted(body, len, n, ok)) {
        for (size_t i = 0; i < n; i++) {
            if (ok[i]) {
                res[i].fault = EVBUS_AWS_OK;
                res[i].reason[0] = '\0';
            }
        }
        return 0;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    json_t *entries = json_object_get(j, "Entries");
    if (!json_is_array(entries)) {
        json_decref(j);
        return -1;
    }
    /* Positional: an answer longer than the request names nothing we sent,
     * so its extra entries are ignored rather than trusted. */
    for (size_t i = 0; i < n && i < json_array_size(entries); i++) {
        json_t *e = json_array_get(entries, i);
        const char *code = json_string_value(json_object_get(e, "ErrorCode"));
        const char *msg = json_string_value(json_object_get(e, "ErrorMessage"));
        if (code && *code) {
            res[i].fault = evbus_aws_classify_code(code);
            snprintf(res[i].reason, sizeof res[i].reason, "%s: %s", code, msg ? msg : "no message");
        } else if (json_string_value(json_object_get(e, "EventId"))) {
            res[i].fault = EVBUS_AWS_OK;
            res[i].reason[0] = '\0';
        }
    }
    json_decref(j);
    return 0;
}
