/* PutItem and BatchWriteItem requests (AWS JSON 1.0) around items built by
 * dynamodb_item.c. In conditional mode PutItem carries
 * attribute_not_exists(#k), #k standing for the key attribute (a name
 * expression attribute names make safe whatever its spelling), so that a
 * redelivered event writes nothing and the plugin counts the refusal as
 * delivered. */
#include <string.h>

#include "dynamodb.h"

int ddb_put_request(const ddb_opts *o, const char *item, size_t len, evbus_aws_buf *out) {
    int bad = evbus_aws_buf_puts(out, "{\"TableName\":") ||
              evbus_aws_buf_json_str(out, o->table, strlen(o->table)) ||
              evbus_aws_buf_puts(out, ",\"Item\":") || evbus_aws_buf_add(out, item, len);
    if (!bad && o->mode == DDB_CONDITIONAL)
        bad = evbus_aws_buf_puts(out, ",\"ConditionExpression\":\"attribute_not_exists(#k)\","
                                      "\"ExpressionAttributeNames\":{\"#k\":") ||
              evbus_aws_buf_json_str(out, o->key, strlen(o->key)) || evbus_aws_buf_puts(out, "}");
    return bad || evbus_aws_buf_puts(out, "}") ? -1 : 0;
}

int ddb_batch_request(const ddb_opts *o, const evbus_aws_buf *items, size_t n, evbus_aws_buf *out) {
    int bad = evbus_aws_buf_puts(out, "{\"RequestItems\":{") ||
              evbus_aws_buf_json_str(out, o->table, strlen(o->table)) ||
              evbus_aws_buf_puts(out, ":[");
    for (size_t k = 0; k < n && !bad; k++)
        bad = evbus_aws_buf_puts(out, k ? ",{\"PutRequest\":{\"Item\":"
                                        : "{\"PutRequest\":{\"Item\":") ||
              evbus_aws_buf_add(out, items[k].data, items[k].len) || evbus_aws_buf_puts(out, "}}");
    return bad || evbus_aws_buf_puts(out, "]}}") ? -1 : 0;
}

size_t ddb_request_overhead(const ddb_opts *o) {
    /* The table and key names may be escaped (6 bytes a byte at worst);
     * the rest is the longer of the two requests' fixed text. */
    return 6 * (strlen(o->table) + strlen(o->key)) + 200;
}
