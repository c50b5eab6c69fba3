/* The routers a client publishes to: one DEALER socket each, what the client
 * thinks of each (up or down), which one gets a request under the client's
 * policy, and the probes that notice a router answering again. The request
 * bookkeeping stays in client.c; this file knows nothing of requests.
 *
 * Each DEALER also has a ZeroMQ socket monitor: a PAIR socket that hears of
 * its connection dropping or failing, so that a router killed outright is
 * taken down the moment the kernel closes its connection, rather than after
 * resend_ms of silence (which stays the verdict on a router that hangs with
 * its connection open). */
#ifndef EVBUS_CLIENT_ROUTER_SET_H
#define EVBUS_CLIENT_ROUTER_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#include "evbus/evbus.h"

typedef struct evbus__router {
    char *endpoint;
    void *sock;
    void *monitor; /* PAIR socket receiving sock's connection events */
    bool up;
    bool connected;         /* the monitor saw a handshake and no drop since */
    bool down_logged;       /* going down was logged: coming back is too */
    int64_t last_answer_ms; /* monotonic; 0: never answered */
    int64_t down_since_ms;  /* monotonic, while down */
    int64_t changed_wall_ms;
    int64_t next_probe_ms; /* monotonic, while down */
    /* Monotonic: since when its socket has refused every send (it is not
     * connected); 0 while sends go through. */
    int64_t refused_since_ms;
    uint64_t requests_sent, answers;
    char region[64]; /* from its last ack */
} evbus__router;

typedef struct evbus__router_set {
    evbus__router *r;
    size_t n;
    evbus_router_policy policy;
    int probe_ms;
    size_t next_turn; /* spread: where the next request goes */
    evbus_log_fn log_fn;
    void *log_arg;
} evbus__router_set;

/* Opens one socket per endpoint on `ctx`, with the CURVE keys of `o` when it
 * has them, and a monitor socket for each. With several routers a socket queues nothing for a
 * router it is not connected to (ZMQ_IMMEDIATE), so a request never waits in the pipe of a router
 * that is gone, to be stored there again when it comes back. Returns EVBUS_OK, EVBUS_EINVAL
 * (malformed endpoint), EVBUS_ENOMEM or EVBUS_EZMQ; on failure everything opened is closed again.
 */
evbus_err evbus__router_set_open(evbus__router_set *s, void *ctx, const char *const *endpoints,
                                 size_t n, const evbus_client_opts *o);
/* Stops the monitors and closes every socket; `ctx` can then be terminated. */
void evbus__router_set_close(evbus__router_set *s);

/* Fills items[0..2n) for zmq_poll(): each router's socket, then each one's
 * monitor. Returns how many items it filled. */
int evbus__router_set_poll_items(const evbus__router_set *s, zmq_pollitem_t *items);

/* Reads every connection event waiting on the monitors: a connection that
 * dropped, a connect that failed or a handshake the router refused takes
 * that router down at once; a handshake that succeeded with a router that
 * is down makes its probe due now. Call it before reading the routers'
 * answers, so that an answer on a new connection is never followed by the
 * news that the old one dropped. */
void evbus__router_set_read_monitors(evbus__router_set *s, int64_t now);

/* The router for a new request, or for one leaving router `avoid` (SIZE_MAX:
 * none): under failover the first router up; under spread the next router up
 * in turn. A router that is down is avoided while any other is up; when none
 * is, routers are taken in turn so that whichever comes back first answers. */
size_t evbus__router_set_pick(evbus__router_set *s, size_t avoid);

/* True when some router other than `except` (SIZE_MAX: none) is up. */
bool evbus__router_set_other_up(const evbus__router_set *s, size_t except);

/* Router i answered at `now`: it is up, unless the answer said it is
 * stopping, which takes it down. `region` may be NULL. */
void evbus__router_set_answered(evbus__router_set *s, size_t i, int64_t now, bool stopping,
                                const char *region);

/* Router i left a request unanswered past the resend interval: down. With
 * several routers this is logged; a lone router's slow answer is not (see
 * set_down() in router_set.c). */
void evbus__router_set_silent(evbus__router_set *s, size_t i, int64_t now, int waited_ms);

/* Sends an empty request (request id `*next_id`, then incremented) to each
 * router down and due for a probe (a lone router only while connected: its
 * socket would queue every probe until it reconnects). Returns the soonest next probe, or
 * INT64_MAX when every router is up. */
int64_t evbus__router_set_probe(evbus__router_set *s, int64_t now, uint64_t *next_id);

/* Sends one frame to router i without blocking; false when its socket
 * refused it (not connected). */
bool evbus__router_set_send(evbus__router_set *s, size_t i, const void *frame, size_t len,
                            int64_t now);

#endif
