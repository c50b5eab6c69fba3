/**
 * @file evbus.h
 * @brief libevbus: publish events to an evbus router.
 *
 * @mainpage libevbus
 *
 * A producer opens a client on evbusd's ingest endpoint and publishes events,
 * one at a time or in batches. evbusd acknowledges each event only once it is
 * durable in its store (committed and fsynced), so an ACCEPTED or DUPLICATE
 * ack means the event survives a crash of the router.
 *
 * Two modes share one client:
 *  - synchronous: evbus_publish() sends a batch and waits for its acks;
 *  - pipelined: evbus_publish_async() sends a batch and returns at once; up to
 *    `max_in_flight` requests are outstanding, and evbus_client_poll() or
 *    evbus_client_flush() delivers each batch's acks to its callback.
 *
 * @section caveats Caveats
 *  - A client is not thread-safe: use it from one thread at a time (it owns a
 *    ZeroMQ socket, and ZeroMQ sockets belong to one thread). Open one client
 *    per producing thread; they may share nothing.
 *  - Delivery is at least once. A request that is not acknowledged within
 *    `resend_ms` is sent again with the same event ids (the router restarted,
 *    or the connection dropped). An event the router had already committed
 *    then comes back DUPLICATE with the sequence number it was first accepted
 *    under: treat ACCEPTED and DUPLICATE alike as "durable".
 *  - Events without an id get a random UUID from the client before the first
 *    send, so that a resend cannot store them twice. The id is returned in the
 *    ack.
 *  - Strings in an ::evbus_ack belong to the client and stay valid only until
 *    the callback returns (pipelined mode) or until the next call on the same
 *    client (synchronous mode). Copy what you keep.
 *  - RETRY_LATER is not an error of the call: the router is applying
 *    backpressure (storage full, backlog limit, shutting down). Publish those
 *    events again later.
 *
 * @section routers Several routers
 *
 * A client may name several routers (`endpoints` in ::evbus_client_opts)
 * that share nothing: each has its own store, and the services behind the
 * sinks are what they have in common. The client keeps one ZeroMQ socket per
 * router, so it always knows which one answered, and a `policy`:
 *  - ::EVBUS_ROUTER_FAILOVER sends every request to the first router, in the
 *    order listed, that it considers up. A router is considered down as soon
 *    as its connection drops (a router killed or its host rebooted: the
 *    client watches each connection with a ZeroMQ socket monitor), a connect
 *    to it fails or it refuses the CURVE handshake; when a request sent to
 *    it gets no answer within `resend_ms` while that router answered nothing
 *    else (a router that hangs with its connection open); or when it answers
 *    that it is shutting down (RETRY_LATER acks with the wire format's
 *    `stopping` flag). Its outstanding requests then go to the next router
 *    at once, with the same event ids. A router that is down is probed
 *    every `probe_ms`, and as soon as its connection is back, with an empty
 *    request, and is up again as soon as it answers: failover then returns
 *    to it for new requests.
 *  - ::EVBUS_ROUTER_SPREAD sends requests to the routers it considers up in
 *    turn (as a ZeroMQ DEALER connected to several endpoints does), and a
 *    request due for a resend goes to another router.
 *
 * When every router is down, requests go round all of them until one
 * answers or `timeout_ms` ends the request. A router going down or coming
 * back is logged once per change (see `log_fn`), never per request. A client
 * with a single router logs only outages (a connection that worked dropping,
 * a refused handshake, a shutdown) and the router answering after one: not
 * a slow answer, nor a connect failing before any succeeded, since it has
 * nowhere else to send and those come with ordinary load or start-up order
 * (evbus_client_router() still reports the router down until it answers);
 * evbus_client_router() tells a producer's health page or metrics what the
 * client thinks of each router.
 *
 * @section durable_somewhere Durable somewhere: duplicates across routers
 *
 * A request resent to another router carries the same event ids, and the ack
 * the client delivers is the first that arrives. An ACCEPTED or DUPLICATE ack
 * therefore means "durable on the router that answered"
 * (evbus_client_ack_router() names it; the ack's `region` is that router's
 * region), not "stored once in the whole deployment":
 *  - each router deduplicates ids only against its own store, so an event
 *    whose first send reached a router that then stopped answering, and whose
 *    resend reached another, may be stored by both and delivered by both;
 *  - duplicates across routers are removed where the destination service
 *    allows it: SQS FIFO queues drop a repeat of the deduplication id (the
 *    event id) within their five-minute window, and DynamoDB targets with
 *    conditional puts (`attribute_not_exists`) write each event id once;
 *    EventBridge buses and standard SQS queues deliver such an event twice,
 *    with the same id, for the consumer to deduplicate.
 * With one router (or a router that keeps answering), nothing changes: an id
 * is stored once.
 */
#ifndef EVBUS_EVBUS_H
#define EVBUS_EVBUS_H

#include <stddef.h>
#include <stdint.h>

#include "evbus/error.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Longest event id the router accepts, in bytes. */
#define EVBUS_EVENT_ID_MAX 256

/** A string attribute carried with an event. */
typedef struct evbus_attr {
    const char *key;
    const char *value;
} evbus_attr;

/**
 * One event to publish. All strings are NUL-terminated UTF-8 and belong to the
 * caller; the client copies what it needs before the publishing call returns.
 * Fields marked optional may be NULL.
 */
typedef struct evbus_event {
    const char *id;               /**< optional: unique id used for deduplication */
    const char *source;           /**< required, 1..256 bytes */
    const char *detail_type;      /**< required, 1..128 bytes */
    const char *detail;           /**< required: a JSON object */
    const char *time;             /**< optional: RFC 3339; the router sets it if NULL */
    const char *const *resources; /**< optional: n_resources strings */
    size_t n_resources;
    const char *partition_key;    /**< optional: ordering key */
    const evbus_attr *attributes; /**< optional: n_attributes pairs */
    size_t n_attributes;
    const char *origin_region; /**< optional: the router's region if NULL */
} evbus_event;

/** What the router did with one event. Values match the wire format. */
typedef enum evbus_ack_status {
    EVBUS_ACK_ACCEPTED = 1,    /**< durable under `sequence` */
    EVBUS_ACK_DUPLICATE = 2,   /**< id seen before; durable under `sequence` */
    EVBUS_ACK_REJECTED = 3,    /**< invalid; `reason` says why; do not resend */
    EVBUS_ACK_RETRY_LATER = 4, /**< not stored now; send again later */
} evbus_ack_status;

/** The router's answer for one event. See the caveats on string lifetime. */
typedef struct evbus_ack {
    evbus_ack_status status;
    uint64_t sequence;    /**< ACCEPTED / DUPLICATE: the event's sequence */
    const char *event_id; /**< the id sent or assigned; never NULL */
    const char *reason;   /**< REJECTED / RETRY_LATER: why; "" otherwise */
    const char *region;   /**< region that will process the event; may be "" */
} evbus_ack;

/** How a client with several routers chooses one; see @ref routers. */
typedef enum evbus_router_policy {
    EVBUS_ROUTER_FAILOVER = 0, /**< the first router up, in the order listed */
    EVBUS_ROUTER_SPREAD = 1,   /**< every router up, in turn */
} evbus_router_policy;

/**
 * Receives the client's log lines (a router going down or coming back), one
 * line without a trailing newline, valid only during the call.
 */
typedef void (*evbus_log_fn)(void *arg, const char *line);

/** Client tuning. Initialise with evbus_client_opts_init(), then change. */
typedef struct evbus_client_opts {
    /** sizeof(evbus_client_opts), set by evbus_client_opts_init(); lets the
     * struct grow without breaking callers built against an older header. */
    size_t size;
    /** Give up on a request this long after its first send (default 30000). */
    int timeout_ms;
    /** Send an unacknowledged request again after this long (default 2000). */
    int resend_ms;
    /** Pipelined mode: most requests outstanding at once (default 64). */
    unsigned max_in_flight;
    /** CURVE: the router's public key, 40 Z85 characters (the line of
     * `evbus keygen`'s PATH.pub that evbusd's ingest.curve.secret_key pairs
     * with). NULL (the default): a plain connection. When set,
     * curve_public_key and curve_secret_key are required. The three strings
     * are read only during evbus_client_new(). */
    const char *curve_server_key;
    /** CURVE: this producer's public key, 40 Z85 characters; the router
     * must list it in ingest.curve.authorized_keys, or it answers nothing. */
    const char *curve_public_key;
    /** CURVE: this producer's secret key, 40 Z85 characters. Never sent. */
    const char *curve_secret_key;
    /** Several routers (see @ref routers): n_endpoints ZeroMQ endpoints, in
     * order of preference for ::EVBUS_ROUTER_FAILOVER; the endpoint argument
     * of evbus_client_new() must then be NULL. At most ::EVBUS_ROUTERS_MAX.
     * The client copies the strings during evbus_client_new(). NULL (the
     * default): the one endpoint given to evbus_client_new(). */
    const char *const *endpoints;
    size_t n_endpoints;
    /** Which router gets a request (default ::EVBUS_ROUTER_FAILOVER; with one
     * router both policies behave alike). */
    evbus_router_policy policy;
    /** How often a router considered down is probed (default 1000 ms). */
    int probe_ms;
    /** Where log lines go; NULL (the default): stderr, one timestamped line
     * each, as evbusd writes them. */
    evbus_log_fn log_fn;
    void *log_arg;
} evbus_client_opts;

/** Most routers one client can name. */
#define EVBUS_ROUTERS_MAX 64

/**
 * What a client thinks of one of its routers (evbus_client_router()). Set
 * `size` to sizeof(evbus_router_info) before the call: the struct may grow,
 * and the client fills only what the caller's size holds.
 */
typedef struct evbus_router_info {
    size_t size;
    /** The endpoint as given; owned by the client, valid until it is
     * destroyed. */
    const char *endpoint;
    /** 1 when the client sends to it, 0 while it is considered down. Routers
     * start up: the client has no reason to doubt them yet. */
    int up;
    /** When `up` last changed, in milliseconds since the Unix epoch; 0 when
     * it never did. */
    int64_t changed_ms;
    /** Requests sent to it (resends and probes included), and answers
     * received from it. */
    uint64_t requests_sent;
    uint64_t answers;
    /** The region named in its last ack, or "" before any; owned by the
     * client, valid until the next call on it. */
    const char *region;
} evbus_router_info;

/**
 * Read a CURVE key pair from a key file written by `evbus keygen PATH`
 * (PATH.key: the public key line, then the secret key line).
 *
 * @param[in]  path       the key file.
 * @param[out] public_key 41 bytes: the Z85 public key and a NUL.
 * @param[out] secret_key 41 bytes: the Z85 secret key and a NUL.
 * @param[out] err        why it failed (names the file; never holds a key);
 *                        may be NULL.
 * @param[in]  errlen     size of @p err.
 * @return EVBUS_OK; EVBUS_EINVAL for a NULL argument; EVBUS_EIO when the file
 *         cannot be read; EVBUS_ECONFIG when it is not a key file, its secret
 *         does not match its public key, or other users may read it (as ssh,
 *         it insists on mode 0600). The keys are untouched on failure.
 */
EVBUS_API evbus_err evbus_curve_keyfile_read(const char *path, char public_key[41],
                                             char secret_key[41], char *err, size_t errlen);

/** An open connection to one router, or to several. Opaque. */
typedef struct evbus_client evbus_client_t;

/**
 * Called once per pipelined request with its acks.
 *
 * @param arg  the pointer given to evbus_publish_async().
 * @param err  EVBUS_OK with @p n acks, one per event in publish order;
 *             EVBUS_ETIMEDOUT when no ack came within `timeout_ms` (the events
 *             may or may not be durable: publish them again, ids make that
 *             safe); EVBUS_EREMOTE when the router refused the whole request
 *             (@p acks is NULL and @p n is 0; the reason is logged by
 *             evbus_client_last_error()); EVBUS_ECLOSED when the client was
 *             destroyed first.
 * @param acks valid only during the call.
 */
typedef void (*evbus_ack_fn)(void *arg, evbus_err err, const evbus_ack *acks, size_t n);

/**
 * Fill @p opts with the defaults.
 * @param[out] opts must not be NULL.
 */
EVBUS_API void evbus_client_opts_init(evbus_client_opts *opts);

/**
 * Open a client on a router endpoint, or on several (see @ref routers).
 *
 * The connections are made in the background: this call does not wait for a
 * router, and publishing before one is up simply waits for it (up to the
 * request timeout).
 *
 * @param[in]  endpoint a ZeroMQ endpoint, e.g. "tcp://127.0.0.1:5555" or
 *             "ipc:///run/evbus.sock"; NULL when opts->endpoints lists the
 *             routers instead.
 * @param[in]  opts     NULL for the defaults. With CURVE keys set, a router
 *                      that does not list this client's public key answers
 *                      nothing: requests end in EVBUS_ETIMEDOUT. The same
 *                      keys are used with every router.
 * @param[out] out      the new client; the caller owns it and releases it with
 *                      evbus_client_destroy(). Untouched on failure.
 * @return EVBUS_OK; EVBUS_EINVAL for a NULL @p out, no endpoint at all or
 *         both @p endpoint and opts->endpoints, more than ::EVBUS_ROUTERS_MAX
 *         routers, a NULL or malformed endpoint, an unknown policy, options
 *         out of range, a CURVE key that is not 40 Z85 characters (or only
 *         some of the three given), or CURVE keys with a libzmq built without
 *         CURVE; EVBUS_ENOMEM; EVBUS_EZMQ when ZeroMQ fails.
 */
EVBUS_API evbus_err evbus_client_new(const char *endpoint, const evbus_client_opts *opts,
                                     evbus_client_t **out);

/**
 * Close a client and set @p *client to NULL. Requests still in flight get
 * their callback with EVBUS_ECLOSED. Accepts NULL and a pointer to NULL.
 */
EVBUS_API void evbus_client_destroy(evbus_client_t **client);

/**
 * Publish a batch and wait for its acks.
 *
 * Pipelined requests of the same client keep progressing (their callbacks may
 * run) while this call waits.
 *
 * @param[in]  client
 * @param[in]  events @p n events; must not be NULL when n > 0.
 * @param[in]  n      1..10000 events.
 * @param[out] acks   caller-provided array of @p n entries, filled in publish
 *                    order on EVBUS_OK; strings valid until the next call on
 *                    this client.
 * @return EVBUS_OK when every event has an ack (check each status);
 *         EVBUS_EINVAL for bad arguments; EVBUS_ETIMEDOUT when the router did
 *         not answer within `timeout_ms` (publish again: ids make it safe);
 *         EVBUS_EREMOTE when the router refused the whole request (see
 *         evbus_client_last_error()); EVBUS_ENOMEM; EVBUS_EZMQ.
 */
EVBUS_API evbus_err evbus_publish(evbus_client_t *client, const evbus_event *events, size_t n,
                                  evbus_ack *acks);

/**
 * Publish a batch without waiting for its acks.
 *
 * The events are encoded before the call returns; the caller may reuse them.
 * When `max_in_flight` requests are already outstanding, this call first
 * waits for acks (running their callbacks) to make room.
 *
 * @param[in] client
 * @param[in] events @p n events, 1..10000.
 * @param[in] fn     called exactly once with this request's acks; not NULL.
 * @param[in] arg    passed to @p fn.
 * @return EVBUS_OK when the request is on its way; EVBUS_EINVAL;
 *         EVBUS_ETIMEDOUT when no room was made within `timeout_ms`;
 *         EVBUS_ENOMEM; EVBUS_EZMQ. On failure @p fn is not called.
 */
EVBUS_API evbus_err evbus_publish_async(evbus_client_t *client, const evbus_event *events, size_t n,
                                        evbus_ack_fn fn, void *arg);

/**
 * Receive acks that have arrived, run their callbacks, resend requests due
 * for it, and expire requests past their timeout.
 *
 * @param[in] client
 * @param[in] timeout_ms how long to wait for the first ack: 0 does not wait,
 *            -1 waits until at least one request completes (or none is out).
 * @return EVBUS_OK; EVBUS_EZMQ when the socket failed.
 */
EVBUS_API evbus_err evbus_client_poll(evbus_client_t *client, int timeout_ms);

/**
 * Wait until every pipelined request has completed (acked, refused or timed
 * out), running their callbacks.
 *
 * @return EVBUS_OK; EVBUS_ETIMEDOUT when requests were still outstanding after
 *         @p timeout_ms (-1: no limit beyond each request's own timeout);
 *         EVBUS_EZMQ.
 */
EVBUS_API evbus_err evbus_client_flush(evbus_client_t *client, int timeout_ms);

/** Number of requests sent and not yet completed. */
EVBUS_API unsigned evbus_client_in_flight(const evbus_client_t *client);

/**
 * The router's last whole-request error message (for EVBUS_EREMOTE), or "".
 * Owned by the client; valid until the next call on it.
 */
EVBUS_API const char *evbus_client_last_error(const evbus_client_t *client);

/**
 * The endpoint of the router that answered the request whose acks are being
 * delivered: call it from an ::evbus_ack_fn, or after evbus_publish()
 * returned EVBUS_OK. With the ack's `region`, it says where the events became
 * durable (see @ref durable_somewhere). Owned by the client, valid until it
 * is destroyed; "" before any answer or for NULL.
 */
EVBUS_API const char *evbus_client_ack_router(const evbus_client_t *client);

/** Number of routers the client was opened on (1 or more; 0 for NULL). */
EVBUS_API size_t evbus_client_router_count(const evbus_client_t *client);

/**
 * What the client thinks of router @p i (0-based, in the order given), for a
 * producer's own health page and metrics.
 *
 * @param[in]     client
 * @param[in]     i      0 .. evbus_client_router_count() - 1.
 * @param[in,out] info   its `size` set by the caller; filled up to that size.
 * @return EVBUS_OK; EVBUS_EINVAL for a NULL argument, @p i out of range or a
 *         `size` smaller than the first three fields. Untouched on failure.
 */
EVBUS_API evbus_err evbus_client_router(const evbus_client_t *client, size_t i,
                                        evbus_router_info *info);

/**
 * Parse "failover" or "spread" into @p out (untouched on failure).
 * @return EVBUS_OK; EVBUS_EINVAL for NULL or another name.
 */
EVBUS_API evbus_err evbus_router_policy_parse(const char *name, evbus_router_policy *out);

/** "failover", "spread" or "unknown". Static. */
EVBUS_API const char *evbus_router_policy_name(evbus_router_policy policy);

/** "accepted", "duplicate", "rejected", "retry_later" or "unknown". Static. */
EVBUS_API const char *evbus_ack_status_name(evbus_ack_status status);

#ifdef __cplusplus
}
#endif

#endif /* EVBUS_EVBUS_H */
