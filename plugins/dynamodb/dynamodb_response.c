/* BatchWriteItem answers: a 200 says which puts DynamoDB did not write in
 * UnprocessedItems (throughput exceeded, internal trouble), each with its
 * whole item; every other put of the request was written. The plugin
 * retries only those, matched back to events by the key attribute (a call
 * never carries two events with the same id). */
#include <jansson.h>
#include <string.h>

#include "dynamodb.h"
#include "json_scan.h"

/* True when the answer is an object whose UnprocessedItems, wherever it
 * appears, is {} (or which has none): every put was written. Anything else
 * (an item left over, an escaped key, a malformed body) goes to jansson.
 * Other members (ConsumedCapacity, ItemCollectionMetrics) are skipped. */
static bool scan_all_written(const char *body, size_t len) {
    evbus_aws_scan s = {body, body + len};
    const char *k;
    size_t kl;
    bool esc;
    if (!evbus_aws_scan_eat(&s, '{'))
        return false;
    if (evbus_aws_scan_eat(&s, '}'))
        return evbus_aws_scan_done(&s);
    do {
        if (!evbus_aws_scan_string(&s, &k, &kl, &esc) || esc || !evbus_aws_scan_eat(&s, ':'))
            return false;
        if (evbus_aws_scan_is(k, kl, "UnprocessedItems")) {
            if (!evbus_aws_scan_eat(&s, '{') || !evbus_aws_scan_eat(&s, '}'))
                return false;
        } else if (!evbus_aws_scan_skip(&s, 1)) {
            return false;
        }
    } while (evbus_aws_scan_eat(&s, ','));
    return evbus_aws_scan_eat(&s, '}') && evbus_aws_scan_done(&s);
}

int ddb_read_batch_response(const ddb_opts *o, const char *body, size_t len, const char *const *ids,
                            size_t n, bool *unprocessed) {
    if (scan_all_written(body, len)) {
        for (size_t k = 0; k < n; k++)
            unprocessed[k] = false;
        return 0;
    }
    json_t *j = json_loadb(body, len, 0, NULL);
    if (!json_is_object(j)) {
        json_decref(j);
        for (size_t k = 0; k < n; k++)
            unprocessed[k] = true;
        return -1;
    }
    for (size_t k = 0; k < n; k++)
        unprocessed[k] = false;
    size_t i;
    json_t *req;
    json_array_foreach(json_object_get(json_object_get(j, "UnprocessedItems"), o->table), i, req) {
        json_t *item = json_object_get(json_object_get(req, "PutRequest"), "Item");
        const char *id = json_string_value(json_object_get(json_object_get(item, o->key), "S"));
        for (size_t k = 0; id && k < n; k++)
            if (strcmp(ids[k], id) == 0)
                unprocessed[k] = true;
    }
    json_decref(j);
    return 0;
}
