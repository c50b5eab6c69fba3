/* The ingest/writer loop: receives Publish frames on a ZeroMQ ROUTER socket,
 * validates and deduplicates each event, writes everything drained in one
 * LMDB transaction (group commit) and only then acks. It is the store's only
 * writer. */
#ifndef EVBUS_INGEST_H
#define EVBUS_INGEST_H

#include <signal.h>
#include <stdint.h>

#include "auth.h"
#include "config.h"
#include "routing.h"
#include "store.h"

typedef struct evbus__ingest evbus__ingest;

/* Where the writer takes delivery results (PULL, bound by the ingest) and
 * wakes the dispatcher after new pending entries (PUSH, connects). */
#define EVBUS__RESULTS_ENDPOINT "inproc://evbus-results"
#define EVBUS__WAKE_ENDPOINT    "inproc://evbus-dispatch-wake"
/* Where evbusd's own HTTP ingest (http_ingest.h) sends its Publish requests:
 * a second ROUTER of the same loop, so that they get the same validation,
 * deduplication, routing and group commit, and their answer only after the
 * commit. Its requests carry no CURVE identity; the HTTP side has checked
 * who sent them (and their sources) already. */
#define EVBUS__HTTP_INGEST_ENDPOINT "inproc://evbus-ingest-http"

typedef struct evbus__ingest_counters {
    uint64_t requests, accepted, duplicates, rejected, retry_later, bad_frames, acks_dropped,
        commits, unmatched;
} evbus__ingest_counters;

/* Binds the ingest endpoints. Events are routed with `router` (NULL: no
 * routing, no pending entries). With `auth` (may be NULL) the socket
 * authenticates producers as ingest.curve says. The caller keeps cfg, store,
 * router, auth and zctx alive for the life of the ingest and owns *out (evbus__ingest_destroy()).
 * Returns EVBUS_EZMQ with err naming the endpoint when a bind fails. */
evbus_err evbus__ingest_new(const evbus__config *cfg, evbus__store *store,
                            const evbus__router *router, evbus__auth *auth, void *zctx,
                            evbus__ingest **out, char *err, size_t errlen);

/* Runs until *stop becomes non-zero. Then it finishes and acks the commit in
 * progress, commits and acks the requests it had read behind it, answers
 * requests that were already queued with RETRY_LATER (for up to a second),
 * and returns EVBUS_OK: every request read gets an answer. The writer keeps
 * running (recording delivery results) until evbus__ingest_destroy(), which
 * also closes the socket (sending the answers still queued within its
 * linger). Returns EVBUS_ESTORE if the store fails: the requests read are
 * then answered RETRY_LATER, never acked as durable. */
evbus_err evbus__ingest_run(evbus__ingest *ing, volatile sig_atomic_t *stop);

/* Counters since start, as of the last acked batch. Safe from any thread. */
void evbus__ingest_counters_get(evbus__ingest *ing, evbus__ingest_counters *out);

/* Closes the socket; NULLs *ing; accepts NULL. */
void evbus__ingest_destroy(evbus__ingest **ing);

#endif
