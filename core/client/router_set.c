/* One socket per router rather than one DEALER connected to all of them: a
 * DEALER hides which peer answered and keeps sending to a peer that has gone
 * quiet, and a producer needs both to fail over and to say where an event
 * became durable. */
#include "router_set.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "common/log.h"
#include "common/util.h"
#include "evbus.pb-c.h"

static void say(const evbus__router_set *s, bool warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(const evbus__router_set *s, bool warn, const char *fmt, ...) {
    char line[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (s->log_fn)
        s->log_fn(s->log_arg, line);
    else
        evbus__log(warn ? EVBUS_LOG_WARN : EVBUS_LOG_INFO, "evbus client", "%s", line);
}

/* The socket, not yet connected: its monitor must start first. */
static int open_socket(void *ctx, bool immediate, const evbus_client_opts *o, void **out) {
    void *sock = zmq_socket(ctx, ZMQ_DEALER);
    if (!sock)
        return EVBUS_EZMQ;
    int linger = 0, ivl = 100, ivl_max = 1000, hwm = 0, imm = immediate;
    zmq_setsockopt(sock, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL, &ivl, sizeof ivl);
    zmq_setsockopt(sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max, sizeof ivl_max);
    /* In-flight requests are bounded by max_in_flight, not by the pipe. */
    zmq_setsockopt(sock, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(sock, ZMQ_IMMEDIATE, &imm, sizeof imm);
    if (o->curve_server_key &&
        (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, o->curve_server_key, 41) != 0 ||
         zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, o->curve_public_key, 41) != 0 ||
         zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, o->curve_secret_key, 41) != 0)) {
        zmq_close(sock);
        return EVBUS_EZMQ;
    }
    *out = sock;
    return EVBUS_OK;
}

/* What the monitors report. A drop is DISCONNECTED (kill -9 included: the
 * kernel closes the connection); a router that is not listening shows as
 * CONNECT_RETRIED after each failed attempt (CLOSED, which comes with it,
 * says nothing more); a router refusing our CURVE keys as a failed
 * handshake. HANDSHAKE_SUCCEEDED (every mechanism, NULL included) is the
 * moment requests can flow again. */
#define HANDSHAKE_FAILED                                                                           \
    (ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |                  \
     ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
#define MONITORED                                                                                  \
    (ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_HANDSHAKE_SUCCEEDED |          \
     HANDSHAKE_FAILED)

/* Starts the monitor of router i's socket: libzmq binds a PAIR socket to an
 * inproc endpoint (unique within the client's own context) and we connect
 * ours to it. Done before the socket connects, so no event is missed. */
static int open_monitor(void *ctx, evbus__router *r, size_t i) {
    char inproc[64];
    snprintf(inproc, sizeof inproc, "inproc://evbus-client-monitor-%zu", i);
    if (zmq_socket_monitor(r->sock, inproc, MONITORED) != 0)
        return EVBUS_EZMQ;
    r->monitor = zmq_socket(ctx, ZMQ_PAIR);
    if (!r->monitor)
        return EVBUS_EZMQ;
    int linger = 0;
    zmq_setsockopt(r->monitor, ZMQ_LINGER, &linger, sizeof linger);
    if (zmq_connect(r->monitor, inproc) != 0)
        return EVBUS_EZMQ;
    return EVBUS_OK;
}

evbus_err evbus__router_set_open(evbus__router_set *s, void *ctx, const char *const *endpoints,
                                 size_t n, const evbus_client_opts *o) {
    memset(s, 0, sizeof *s);
    s->policy = o->policy;
    s->probe_ms = o->probe_ms;
    s->log_fn = o->log_fn;
    s->log_arg = o->log_arg;
    s->r = calloc(n, sizeof *s->r);
    if (!s->r)
        return EVBUS_ENOMEM;
    s->n = n;
    for (size_t i = 0; i < n; i++) {
        evbus__router *r = &s->r[i];
        r->up = true;
        r->endpoint = strdup(endpoints[i]);
        if (!r->endpoint) {
            evbus__router_set_close(s);
            return EVBUS_ENOMEM;
        }
        /* A lone router keeps the old behaviour: requests wait in the pipe
         * until it is connected, since there is nowhere else to send them. */
        int rc = open_socket(ctx, n > 1, o, &r->sock);
        if (rc == EVBUS_OK)
            rc = open_monitor(ctx, r, i);
        if (rc == EVBUS_OK && zmq_connect(r->sock, r->endpoint) != 0)
            rc = errno == EINVAL || errno == EPROTONOSUPPORT ? EVBUS_EINVAL : EVBUS_EZMQ;
        if (rc != EVBUS_OK) {
            evbus__router_set_close(s);
            return (evbus_err)rc;
        }
    }
    return EVBUS_OK;
}

void evbus__router_set_close(evbus__router_set *s) {
    for (size_t i = 0; s->r && i < s->n; i++) {
        evbus__router *r = &s->r[i];
        /* The monitor first: stopping it closes libzmq's end of the pair
         * while the socket it watches still exists; then our end, then the
         * socket. All three linger 0, so zmq_ctx_term() does not wait. */
        if (r->sock && r->monitor)
            zmq_socket_monitor(r->sock, NULL, 0);
        if (r->monitor)
            zmq_close(r->monitor);
        if (r->sock)
            zmq_close(r->sock);
        free(r->endpoint);
    }
    free(s->r);
    s->r = NULL;
    s->n = 0;
}

bool evbus__router_set_other_up(const evbus__router_set *s, size_t except) {
    for (size_t i = 0; i < s->n; i++)
        if (i != except && s->r[i].up)
            return true;
    return false;
}

size_t evbus__router_set_pick(evbus__router_set *s, size_t avoid) {
    if (s->n == 1)
        return 0;
    bool others_up = evbus__router_set_other_up(s, avoid);
    if (!others_up && avoid != SIZE_MAX && s->r[avoid].up)
        return avoid; /* the only router up: better than one that is down */
    if (s->policy == EVBUS_ROUTER_FAILOVER && others_up) {
        for (size_t i = 0; i < s->n; i++)
            if (i != avoid && s->r[i].up)
                return i;
    }
    /* Spread, or no router up: the next one in turn, skipping `avoid`, and
     * the routers that are down while another is up. */
    for (size_t k = 0; k < s->n; k++) {
        size_t i = (s->next_turn + k) % s->n;
        if (i == avoid || (others_up && !s->r[i].up))
            continue;
        s->next_turn = (i + 1) % s->n;
        return i;
    }
    return avoid == SIZE_MAX ? 0 : avoid;
}

/* `outage`: worth a line even for a lone router. With several routers every
 * change is logged, since it moves requests. A lone router's slow answer is
 * not an outage: the client can only resend to it, which it does anyway,
 * and slow answers come with ordinary load (a backlog, a long fsync), so the
 * line would be noise that cries wolf. Nor is a connect that fails before
 * any succeeded (a producer started before its router); the caller learns
 * of a real outage from ETIMEDOUT. Losing a connection that worked, a
 * refused handshake and a shutdown are outages: logged, once. */
static void set_down(evbus__router_set *s, size_t i, int64_t now, const char *why, bool outage) {
    evbus__router *r = &s->r[i];
    if (r->up) {
        r->up = false;
        r->down_since_ms = now;
        r->changed_wall_ms = evbus__now_wall_ms();
        r->next_probe_ms = now + s->probe_ms;
    } else if (r->down_logged || !outage) {
        return; /* logged once per change */
    }
    /* else: a lone router down quietly (slow) turns out to be an outage */
    r->down_logged = s->n > 1 || outage;
    if (!r->down_logged)
        return;
    if (s->n > 1) {
        size_t next = evbus__router_set_pick(s, i);
        if (s->r[next].up)
            say(s, true, "router %s is down (%s); requests go to %s", r->endpoint, why,
                s->policy == EVBUS_ROUTER_SPREAD ? "the other routers" : s->r[next].endpoint);
        else
            say(s, true, "router %s is down (%s); no router is up", r->endpoint, why);
    } else {
        say(s, true, "router %s is down (%s)", r->endpoint, why);
    }
}

void evbus__router_set_answered(evbus__router_set *s, size_t i, int64_t now, bool stopping,
                                const char *region) {
    evbus__router *r = &s->r[i];
    r->answers++;
    if (region && region[0])
        snprintf(r->region, sizeof r->region, "%s", region);
    if (stopping) {
        set_down(s, i, now, "it is shutting down", true);
        return;
    }
    r->last_answer_ms = now;
    if (r->up)
        return;
    r->up = true;
    r->changed_wall_ms = evbus__now_wall_ms();
    if (!r->down_logged)
        return;
    say(s, false, "router %s answers again (down for %lld ms)%s", r->endpoint,
        (long long)(now - r->down_since_ms),
        s->policy == EVBUS_ROUTER_FAILOVER && evbus__router_set_pick(s, SIZE_MAX) == i && s->n > 1
            ? "; requests go to it again"
            : "");
}

void evbus__router_set_silent(evbus__router_set *s, size_t i, int64_t now, int waited_ms) {
    char why[64];
    snprintf(why, sizeof why, "no answer in %d ms", waited_ms);
    set_down(s, i, now, why, false);
}

bool evbus__router_set_send(evbus__router_set *s, size_t i, const void *frame, size_t len,
                            int64_t now) {
    evbus__router *r = &s->r[i];
    if (zmq_send(r->sock, frame, len, ZMQ_DONTWAIT) < 0) {
        if (!r->refused_since_ms)
            r->refused_since_ms = now;
        return false;
    }
    r->refused_since_ms = 0;
    r->requests_sent++;
    return true;
}

int64_t evbus__router_set_probe(evbus__router_set *s, int64_t now, uint64_t *next_id) {
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < s->n; i++) {
        evbus__router *r = &s->r[i];
        if (r->up || (s->n == 1 && !r->connected))
            continue;
        if (r->next_probe_ms <= now) {
            /* An empty Publish: evbusd answers it without touching its
             * store, which is all a probe needs to know. */
            Evbus__V1__Publish probe = EVBUS__V1__PUBLISH__INIT;
            probe.request_id = (*next_id)++;
            probe.version = 1;
            unsigned char buf[32];
            size_t len = evbus__v1__publish__pack(&probe, buf);
            evbus__router_set_send(s, i, buf, len, now);
            r->next_probe_ms = now + s->probe_ms;
        }
        if (r->next_probe_ms < next)
            next = r->next_probe_ms;
    }
    return next;
}

int evbus__router_set_poll_items(const evbus__router_set *s, zmq_pollitem_t *items) {
    for (size_t i = 0; i < s->n; i++) {
        items[i] = (zmq_pollitem_t){s->r[i].sock, 0, ZMQ_POLLIN, 0};
        items[s->n + i] = (zmq_pollitem_t){s->r[i].monitor, 0, ZMQ_POLLIN, 0};
    }
    return (int)(2 * s->n);
}

/* One event off a monitor: its number, or -1 when none is waiting. The
 * first frame holds the number (16 bits) and a value (32 bits) in host
 * order, the second the endpoint, which we know already. */
static int next_event(void *monitor) {
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    if (zmq_msg_recv(&msg, monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&msg);
        return -1;
    }
    uint16_t event = 0;
    if (zmq_msg_size(&msg) >= sizeof event)
        memcpy(&event, zmq_msg_data(&msg), sizeof event);
    while (zmq_msg_more(&msg)) {
        zmq_msg_close(&msg);
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, monitor, ZMQ_DONTWAIT) < 0)
            break;
    }
    zmq_msg_close(&msg);
    return event;
}

void evbus__router_set_read_monitors(evbus__router_set *s, int64_t now) {
    for (size_t i = 0; i < s->n; i++) {
        evbus__router *r = &s->r[i];
        for (int ev; (ev = next_event(r->monitor)) >= 0;) {
            if (ev == ZMQ_EVENT_HANDSHAKE_SUCCEEDED) {
                r->connected = true;
                if (!r->up)
                    r->next_probe_ms = now; /* it may be back: ask at once */
                continue;
            }
            r->connected = false;
            if (ev == ZMQ_EVENT_DISCONNECTED)
                set_down(s, i, now, "its connection dropped", true);
            else if (ev == ZMQ_EVENT_CONNECT_RETRIED)
                set_down(s, i, now, "cannot connect", false);
            else if (ev & HANDSHAKE_FAILED)
                set_down(s, i, now, "the handshake failed (CURVE keys?)", true);
        }
    }
}
