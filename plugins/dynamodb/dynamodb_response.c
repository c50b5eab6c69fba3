/* BatchWriteItem answers: a 200 says which puts DynamoDB did not write in
 * UnprocessedItems (throughput exceeded, internal trouble), each with its
 * whole item; every other put of the request was written. The plugin
 * retries only those, matched back to events by the key attribute (a call
 * never carries two events with the same id). */
#include <jansson.h>
#include <string.h>

#include "dynamodb.h"

int ddb_read_batch_response(const ddb_opts *o, const char *body, size_t len, const char *const *ids,
                            size_t n, bool *unprocessed) {
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
