/* PutEvents answers: a 200 carries FailedEntryCount and Entries[], one per
 * request entry in request order, each with an EventId (accepted) or an
 * ErrorCode and ErrorMessage. The code decides who is at fault: throttling
 * and internal failures are retried, missing permissions are the target's,
 * anything else (MalformedDetail, InvalidArgument, ...) is the event's. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "eventbridge.h"

int eb_read_response(const char *body, size_t len, size_t n, eb_entry_result *res) {
    for (size_t i = 0; i < n; i++) {
        res[i].fault = EVBUS_AWS_TRANSIENT;
        snprintf(res[i].reason, sizeof res[i].reason,
                 "MissingResult: EventBridge did not say whether the entry was accepted");
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
