/* Internal to the EventBridge plugin: what the request builder and the
 * response reader share with the plugin glue (eventbridge_plugin.c). */
#ifndef EVBUS_EVENTBRIDGE_H
#define EVBUS_EVENTBRIDGE_H

#include <stdbool.h>

#include "aws_sink.h"

typedef struct eb_opts {
    const char *event_bus;      /* name or ARN, as configured */
    uint64_t max_request_bytes; /* the sum of entry sizes one call may carry */
} eb_opts;

/* PutEvents takes at most this many entries. */
#define EB_MAX_ENTRIES 10

/* The size EventBridge counts for one entry: 14 bytes for Time (always
 * sent: evbusd stamps every event), plus the UTF-8 bytes of Source,
 * DetailType, Detail and each Resources item; JSON syntax is not counted.
 * Returns 0 with `why` filled when the entry alone exceeds
 * max_request_bytes (EventBridge would refuse it). */
size_t eb_entry_size(const eb_opts *o, const evbus_sink_event *e, char *why, size_t len);

/* Seconds since the epoch of an RFC 3339 timestamp (fractions dropped,
 * offsets applied). Returns 0, or -1 when `s` is not one. */
int eb_epoch_seconds(const char *s, int64_t *out);

/* Appends the PutEvents request for events idx[0..n) of `b` to out, in that
 * order (the answer's Entries follow it). Returns 0 or -1 (memory). */
int eb_build_request(const eb_opts *o, const evbus_batch *b, const size_t *idx, size_t n,
                     evbus_aws_buf *out);

/* One entry's outcome in a PutEvents answer: OK, or how its ErrorCode is
 * classified, with "ErrorCode: ErrorMessage". */
typedef evbus_aws_entry eb_entry_result;

/* Reads a 200 answer for n entries into res[0..n). An entry missing from
 * the answer, or with neither EventId nor ErrorCode, is TRANSIENT (not
 * known to be sent). Returns 0, or -1 when the body is not a PutEvents
 * answer (then res is all TRANSIENT). */
int eb_read_response(const char *body, size_t len, size_t n, eb_entry_result *res);

#endif
