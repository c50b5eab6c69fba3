/* An endpoint that answers the AWS sinks' calls at once: a libmicrohttpd
 * server on loopback, one epoll thread, keep-alive, that reads each POST
 * just enough to echo per-entry success in the service's shape (shape.h,
 * chosen by X-Amz-Target) and counts the entries. It also times every
 * stamped entry from its publish stamp (delivery_stats.h) and keeps a copy
 * of one full request, so that the bare loop can send the very bytes the
 * plugin sent. */
#ifndef BENCH_SINKS_RESPONDER_H
#define BENCH_SINKS_RESPONDER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery_stats.h"

typedef struct responder responder;

/* Starts the responder on a free loopback port. Caller owns *out
 * (responder_stop). 0, or -1 with err filled. */
int responder_start(responder **out, char *err, size_t errlen);

/* The port it listens on. */
int responder_port(const responder *r);

/* Zeroes the counters and the latency record, and forgets the captured
 * request. Call only while nothing is sending. */
void responder_reset(responder *r);

/* Entries answered since the last reset (read any time). */
uint64_t responder_entries(const responder *r);
/* Requests answered since the last reset; requests answered 400. */
uint64_t responder_requests(const responder *r);
uint64_t responder_bad(const responder *r);

/* Entries per second between the first and the last request since the
 * reset (the first request's entries not counted: they start the clock);
 * 0 with fewer than two requests. Read once nothing is sending. */
double responder_rate(const responder *r);

/* Latencies of stamped entries published while measuring ("m":1), from
 * their stamps; read once nothing is sending. */
const dstats *responder_stats(const responder *r);

/* The first request since the reset that held `entries` entries: its body
 * and X-Amz-Target, valid until the next reset. 0, or -1 when none came. */
int responder_captured(const responder *r, size_t entries, const char **body, size_t *len,
                       const char **target);

/* Stops the server and frees; NULLs *r; accepts NULL. */
void responder_stop(responder **r);

#endif
