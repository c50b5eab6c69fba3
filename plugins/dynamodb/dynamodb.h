/* Internal to the DynamoDB plugin: what the item builder, the request
 * builder and the response reader share with the plugin glue
 * (dynamodb_plugin.c). */
#ifndef EVBUS_DYNAMODB_H
#define EVBUS_DYNAMODB_H

#include <stdbool.h>

#include "aws_sink.h"

/* How items are written (key mode). */
typedef enum ddb_mode {
    DDB_CONDITIONAL, /* PutItem with attribute_not_exists(key): a redelivery writes nothing */
    DDB_BATCH,       /* BatchWriteItem of up to 25 items: a redelivery overwrites the same item */
} ddb_mode;

typedef struct ddb_opts {
    const char *table;
    const char *key; /* the partition key attribute; holds the event id */
    ddb_mode mode;
    const char *ttl_attribute; /* NULL: no expiry attribute */
    uint64_t ttl_ms;
    uint64_t max_request_bytes;
} ddb_opts;

/* BatchWriteItem takes at most this many items. */
#define DDB_BATCH_MAX 25
/* An item's size limit, 400 KB, counted the way DynamoDB counts it. */
#define DDB_MAX_ITEM_SIZE 409600
/* A partition key value's limit. */
#define DDB_MAX_KEY_BYTES 2048

/* What converting an event to an item gives. */
typedef enum ddb_conv {
    DDB_CONV_OK = 0,
    DDB_CONV_REFUSED = 1, /* DynamoDB would refuse the item: `why` says why */
    DDB_CONV_NOMEM = -1,
} ddb_conv;

/*
 * Converts JSON text (one value, `len` bytes) to a DynamoDB attribute value
 * (M, L, S, N with the number's exact text, BOOL, NULL) appended to `out`,
 * and adds its size as DynamoDB counts it to *size. A number DynamoDB cannot
 * hold (more than 38 significant digits, magnitude outside 1E-130 ..
 * 9.99..E+125) or text that is not JSON is REFUSED with `why` filled.
 */
ddb_conv ddb_json_to_av(const char *json, size_t len, evbus_aws_buf *out, size_t *size, char *why,
                        size_t whylen);

/*
 * Checks a JSON number's text as DynamoDB would, and gives the size
 * DynamoDB counts for it (1 byte of exponent, 1 per base-100 digit, 1 more
 * when negative). Returns OK or REFUSED (why filled).
 */
ddb_conv ddb_number(const char *text, size_t len, size_t *size, char *why, size_t whylen);

/*
 * Appends event `e` as an item, {"KEY":{"S":...},"source":...,"detail":{"M":
 * ...}}, to `out`, and sets *size to its size as DynamoDB counts it (names
 * plus values). REFUSED (why filled) when DynamoDB would refuse it: a
 * number it cannot hold, an id longer than a key may be, or more than
 * DDB_MAX_ITEM_SIZE. The expiry is the event's time plus ttl (the delivery
 * time when the event's time does not parse), so every delivery of one
 * event writes the same item.
 */
ddb_conv ddb_item(const ddb_opts *o, const evbus_sink_event *e, evbus_aws_buf *out, size_t *size,
                  char *why, size_t whylen);

/* Appends a PutItem request for one item (JSON text from ddb_item) to out,
 * with ConditionExpression attribute_not_exists(#k) in conditional mode.
 * Returns 0 or -1 (memory). */
int ddb_put_request(const ddb_opts *o, const char *item, size_t len, evbus_aws_buf *out);

/* Appends a BatchWriteItem request with a PutRequest for each of the n
 * items to out. Returns 0 or -1 (memory). */
int ddb_batch_request(const ddb_opts *o, const evbus_aws_buf *items, size_t n, evbus_aws_buf *out);

/* The bytes a request adds around its items (table name, JSON syntax), so
 * that calls are cut below max_request_bytes. */
size_t ddb_request_overhead(const ddb_opts *o);

/*
 * Reads a BatchWriteItem 200 answer: sets unprocessed[k] for each of the n
 * events whose id (ids[k]) the answer lists in UnprocessedItems, and
 * clears it for the others. Returns 0, or -1 when the body is not a
 * BatchWriteItem answer (then every unprocessed[k] is set: nothing is known
 * to be written).
 */
int ddb_read_batch_response(const ddb_opts *o, const char *body, size_t len, const char *const *ids,
                            size_t n, bool *unprocessed);

#endif
