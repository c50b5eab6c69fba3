/* The EventBridge-compatible HTTP ingest (ingest.http): answers the PutEvents
 * API of Amazon EventBridge (POST / with X-Amz-Target: AWSEvents.PutEvents,
 * an AWS JSON 1.1 body), so that an AWS SDK or the AWS CLI publishes to evbus
 * by changing only its endpoint URL.
 *
 * Requests are checked here (SigV4 against ingest.http.credentials, or none
 * with allow_unsigned on loopback; the size against ingest.max_request_bytes;
 * each key's source limits), turned into one evbus Publish
 * (http_putevents.h) and sent to the ingest loop over
 * EVBUS__HTTP_INGEST_ENDPOINT: the same validation, deduplication, routing and
 * group commit as ZeroMQ producers get. The connection is suspended until the
 * ingest acks, so the HTTP answer comes only after the commit.
 *
 * One thread runs libmicrohttpd's event loop and the ZeroMQ socket together
 * (no thread per connection): connections are bounded by
 * ingest.http.max_connections (and per address), each has at most one
 * request in flight, and a connection that takes longer than
 * ingest.http.connection_timeout to send a request is closed. */
#ifndef EVBUS_HTTP_INGEST_H
#define EVBUS_HTTP_INGEST_H

#include <jansson.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "config.h"
#include "evbus/error.h"

typedef struct evbus__http_ingest evbus__http_ingest;

/* What the HTTP ingest has done, for the status document and /metrics.
 * Written by the HTTP thread alone, read by the control thread at any time:
 * each counter is atomic, the set is not a snapshot. The caller owns it and
 * keeps it as long as both threads may use it (evbusd: all its life). */
typedef struct evbus__http_counters {
    _Atomic uint64_t requests;          /* every request answered */
    _Atomic uint64_t entries_stored;    /* entries answered with an EventId */
    _Atomic uint64_t entries_failed;    /* entries answered with an ErrorCode */
    _Atomic uint64_t refused_signature; /* 403: no, unknown or wrong SigV4 */
    _Atomic uint64_t validation;        /* 400 ValidationException: a bad body */
    _Atomic uint64_t too_large;         /* 413: over ingest.max_request_bytes */
    _Atomic uint64_t unknown_operation; /* not POST / with AWSEvents.PutEvents */
    _Atomic uint64_t throttled;         /* ThrottlingException: in flight or queue full */
    _Atomic uint64_t internal;          /* 500 InternalFailure */
    _Atomic uint64_t truncated;         /* connections closed mid-request by the client */
    _Atomic uint64_t timed_out;         /* connections cut by connection_timeout */
    _Atomic uint64_t key_reloads;       /* credentials files read again (SIGHUP) */
} evbus__http_counters;

/* The counters as the status document's "http" object: {"requests",
 * "entries_stored", "entries_failed", "refused_signature", "errors":
 * {"validation", "too_large", "unknown_operation", "throttled", "internal",
 * "truncated", "timed_out"}, "key_reloads"}. Caller owns the reference;
 * NULL when out of memory. */
json_t *evbus__http_counters_status(const evbus__http_counters *c);

/* Starts serving ingest.http.listen, reading the credentials file; *out is
 * NULL (and EVBUS_OK returned) when ingest.http.listen is not set. The
 * caller keeps cfg and zctx alive until evbus__http_ingest_stop(), and the
 * ingest (which binds EVBUS__HTTP_INGEST_ENDPOINT) until then too; likewise
 * `counters` (where the HTTP thread counts) and `reload` (may be NULL):
 * whenever *reload is set (SIGHUP) the HTTP thread clears it and reads the
 * credentials file again, keeping the keys it had when the new file is not
 * usable (logged, never a secret). Returns EVBUS_EIO with err naming the
 * address when it cannot listen, or the error of the credentials or TLS
 * files (never a secret). */
evbus_err evbus__http_ingest_start(const evbus__config *cfg, void *zctx,
                                   evbus__http_counters *counters, volatile sig_atomic_t *reload,
                                   evbus__http_ingest **out, char *err, size_t errlen);

/* Stops listening: requests waiting for an ack get the ack if it comes
 * within a second, else a ThrottlingException (nothing is claimed durable
 * that was not acked). Frees everything; NULLs *h; accepts NULL. */
void evbus__http_ingest_stop(evbus__http_ingest **h);

#endif
