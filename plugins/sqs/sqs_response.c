/* SendMessageBatch answers: a 200 lists Successful and Failed entries by Id.
 * An entry SQS blames on the sender (SenderFault true) will never succeed;
 * anything else is retried, and an entry the answer does not mention is
 * retried too (it was not confirmed; FIFO dedup absorbs a resend). */
#include <jansson.h>
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

int sqs_read_response(const char *body, size_t len, size_t n, sqs_entry_result *res) {
    for (size_t i = 0; i < n; i++) {
        res[i].fault = EVBUS_AWS_TRANSIENT;
        snprintf(res[i].reason, sizeof res[i].reason,
                 "MissingResult: SQS did not say whether the message was sent");
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
