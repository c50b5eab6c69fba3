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

static int open_socket(void *ctx, const char *endpoint, bool immediate, const evbus_client_opts *o,
                       void **out) {
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
    if (zmq_connect(sock, endpoint) != 0) {
        int rc = errno == EINVAL || errno == EPROTONOSUPPORT ? EVBUS_EINVAL : EVBUS_EZMQ;
        zmq_close(sock);
        return rc;
    }
    *out = sock;
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
        int rc = open_socket(ctx, r->endpoint, n > 1, o, &r->sock);
        if (rc != EVBUS_OK) {
            evbus__router_set_close(s);
            return (evbus_err)rc;
        }
    }
    return EVBUS_OK;
}

void evbus__router_set_close(evbus__router_set *s) {
    for (size_t i = 0; s->r && i < s->n; i++) {
        if (s->r[i].sock)
            zmq_close(s->r[i].sock);
        free(s->r[i].endpoint);
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

static void set_down(evbus__router_set *s, size_t i, int64_t now, const char *why) {
    evbus__router *r = &s->r[i];
    if (!r->up)
        return;
    r->up = false;
    r->down_since_ms = now;
    r->changed_wall_ms = evbus__now_wall_ms();
    r->next_probe_ms = now + s->probe_ms;
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
        set_down(s, i, now, "it is shutting down");
        return;
    }
    r->last_answer_ms = now;
    if (r->up)
        return;
    r->up = true;
    r->changed_wall_ms = evbus__now_wall_ms();
    say(s, false, "router %s answers again (down for %lld ms)%s", r->endpoint,
        (long long)(now - r->down_since_ms),
        s->policy == EVBUS_ROUTER_FAILOVER && evbus__router_set_pick(s, SIZE_MAX) == i && s->n > 1
            ? "; requests go to it again"
            : "");
}

void evbus__router_set_silent(evbus__router_set *s, size_t i, int64_t now, int waited_ms) {
    char why[64];
    snprintf(why, sizeof why, "no answer in %d ms", waited_ms);
    set_down(s, i, now, why);
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
        if (r->up)
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
