/* Internal to the SQS plugin: what the request builder and the response
 * reader share with the plugin glue (sqs_plugin.c). */
#ifndef EVBUS_SQS_H
#define EVBUS_SQS_H

#include <stdbool.h>

#include "aws_sink.h"

/* Where a FIFO message's group id comes from (key message_group_id). */
typedef enum sqs_group { SQS_GROUP_PARTITION_KEY, SQS_GROUP_SOURCE, SQS_GROUP_CONSTANT } sqs_group;

typedef struct sqs_opts {
    const char *queue_url;
    bool fifo; /* the queue's name ends in .fifo */
    sqs_group group;
    const char *group_constant;
    bool message_attributes;
    uint64_t max_request_bytes; /* the queue's message and batch size limit */
} sqs_opts;

/* SendMessageBatch takes at most this many entries. */
#define SQS_MAX_ENTRIES 10

/* The size SQS counts for one message (body, plus each attribute's name,
 * type and value), or 0 with `why` filled when SQS would refuse the message
 * itself (too large, a character SQS does not allow, a bad attribute). */
size_t sqs_message_size(const sqs_opts *o, const evbus_sink_event *e, char *why, size_t len);

/* Appends the SendMessageBatch request for events idx[0..n) of `b` (entry
 * ids are their positions, "0".."9") to out. Returns 0 or -1 (memory). */
int sqs_build_request(const sqs_opts *o, const evbus_batch *b, const size_t *idx, size_t n,
                      evbus_aws_buf *out);

/* One entry's outcome in a SendMessageBatch answer: OK, or how its failure
 * is classified, with "Code: Message". */
typedef evbus_aws_entry sqs_entry_result;

/* Reads a 200 answer for n entries into res[0..n). An entry missing from
 * the answer is TRANSIENT (not known to be sent). Returns 0, or -1 when the
 * body is not a SendMessageBatch answer (then res is all TRANSIENT). */
int sqs_read_response(const char *body, size_t len, size_t n, sqs_entry_result *res);

#endif
