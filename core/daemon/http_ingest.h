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

#include "config.h"
#include "evbus/error.h"

typedef struct evbus__http_ingest evbus__http_ingest;

/* Starts serving ingest.http.listen, reading the credentials file; *out is
 * NULL (and EVBUS_OK returned) when ingest.http.listen is not set. The
 * caller keeps cfg and zctx alive until evbus__http_ingest_stop(), and the
 * ingest (which binds EVBUS__HTTP_INGEST_ENDPOINT) until then too. Returns
 * EVBUS_EIO with err naming the address when it cannot listen, or the error
 * of the credentials or TLS files (never a secret). */
evbus_err evbus__http_ingest_start(const evbus__config *cfg, void *zctx, evbus__http_ingest **out,
                                   char *err, size_t errlen);

/* Stops listening: requests waiting for an ack get the ack if it comes
 * within a second, else a ThrottlingException (nothing is claimed durable
 * that was not acked). Frees everything; NULLs *h; accepts NULL. */
void evbus__http_ingest_stop(evbus__http_ingest **h);

#endif
