#include "conn_guard.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <zmq.h>

#include "common/log.h"
#include "common/util.h"

#define MONITOR_EP "inproc://evbus-ingest-monitor"
/* How often the thread looks at its stop flag when no event comes. */
#define POLL_MS 200
/* At most one warning about refused connections this often. */
#define WARN_EVERY_MS 10000

struct evbus__conn_guard {
    void *sock;    /* the monitored socket: not ours */
    void *monitor; /* PAIR receiving its events: the guard thread's */
    uint64_t limit, configured;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    atomic_uint_fast64_t open, refused;
    /* Per descriptor: open as a monitored connection (1), or to refuse (2)
     * once the events waiting have been read. Indexed by descriptor. */
    unsigned char *fds;
    size_t fds_cap;
    uint64_t refused_logged;
    int64_t warned_ms;
};

static int fd_room(evbus__conn_guard *g, size_t fd) {
    if (fd < g->fds_cap)
        return 0;
    size_t cap = g->fds_cap ? g->fds_cap : 1024;
    while (cap <= fd)
        cap *= 2;
    unsigned char *v = realloc(g->fds, cap);
    if (!v)
        return -1;
    memset(v + g->fds_cap, 0, cap - g->fds_cap);
    g->fds = v;
    g->fds_cap = cap;
    return 0;
}

/* Reads one monitor event (two frames: event(2) value(4), then the
 * endpoint). Returns 1 with the event and its descriptor, 0 when none is
 * waiting. */
static int read_event(evbus__conn_guard *g, uint16_t *event, int32_t *fd) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, g->monitor, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&m);
        return 0;
    }
    bool ok = zmq_msg_size(&m) == 6;
    if (ok) {
        const unsigned char *p = zmq_msg_data(&m);
        memcpy(event, p, 2);
        memcpy(fd, p + 2, 4);
    }
    bool more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    while (more) { /* the endpoint address: not needed */
        zmq_msg_init(&m);
        if (zmq_msg_recv(&m, g->monitor, 0) < 0)
            more = false;
        else
            more = zmq_msg_more(&m);
        zmq_msg_close(&m);
    }
    return ok ? 1 : read_event(g, event, fd);
}

static void on_event(evbus__conn_guard *g, uint16_t event, int32_t fd, bool *any_refused) {
    if (fd < 0 || fd_room(g, (size_t)fd))
        return;
    if (event == ZMQ_EVENT_ACCEPTED) {
        /* Already marked: libzmq closed it without a disconnection event
         * (none is known, but the count must not drift if one exists). */
        if (!g->fds[fd])
            atomic_fetch_add(&g->open, 1);
        g->fds[fd] = atomic_load(&g->open) > g->limit ? 2 : 1;
        *any_refused |= g->fds[fd] == 2;
    } else if (event == ZMQ_EVENT_DISCONNECTED && g->fds[fd]) {
        g->fds[fd] = 0;
        atomic_fetch_sub(&g->open, 1);
    }
}

/* Shuts down the connections marked for refusal. Every event waiting has
 * been read, so a marked descriptor is still the connection accepted:
 * libzmq reports a disconnection before it closes one. */
static void refuse_marked(evbus__conn_guard *g) {
    for (size_t fd = 0; fd < g->fds_cap; fd++) {
        if (g->fds[fd] != 2)
            continue;
        g->fds[fd] = 1; /* counted open until its disconnection arrives */
        shutdown((int)fd, SHUT_RDWR);
        atomic_fetch_add(&g->refused, 1);
    }
}

static void warn_refused(evbus__conn_guard *g) {
    uint64_t refused = atomic_load(&g->refused);
    int64_t now = evbus__now_mono_ms();
    if (refused == g->refused_logged || now - g->warned_ms < WARN_EVERY_MS)
        return;
    EVBUS_LOG_W("ingest",
                "refused %llu producer connection(s) over the limit of %llu open at once "
                "(ingest.max_connections %llu, at most half the open files evbusd may have); "
                "%llu open now, %llu refused since start",
                (unsigned long long)(refused - g->refused_logged), (unsigned long long)g->limit,
                (unsigned long long)g->configured, (unsigned long long)atomic_load(&g->open),
                (unsigned long long)refused);
    g->refused_logged = refused;
    g->warned_ms = now;
}

static void *guard_main(void *arg) {
    evbus__conn_guard *g = arg;
    while (!atomic_load(&g->stop)) {
        zmq_pollitem_t it = {g->monitor, 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&it, 1, POLL_MS) < 0 && errno != EINTR)
            break;
        uint16_t event;
        int32_t fd;
        bool any_refused = false;
        while (read_event(g, &event, &fd))
            on_event(g, event, fd, &any_refused);
        if (any_refused)
            refuse_marked(g);
        warn_refused(g);
    }
    zmq_close(g->monitor);
    g->monitor = NULL;
    return NULL;
}

/* Half the descriptors the process may open, or UINT64_MAX without a
 * limit. */
static uint64_t half_of_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY)
        return UINT64_MAX;
    return (uint64_t)rl.rlim_cur / 2;
}

evbus_err evbus__conn_guard_start(void *zctx, void *sock, uint64_t max_connections,
                                  evbus__conn_guard **out, char *err, size_t errlen) {
    evbus__conn_guard *g = calloc(1, sizeof *g);
    if (!g)
        return EVBUS_ENOMEM;
    g->sock = sock;
    g->configured = max_connections;
    uint64_t half = half_of_nofile();
    g->limit = max_connections < half ? max_connections : half;
    int zero = 0;
    if (zmq_socket_monitor(sock, MONITOR_EP, ZMQ_EVENT_ACCEPTED | ZMQ_EVENT_DISCONNECTED) != 0 ||
        !(g->monitor = zmq_socket(zctx, ZMQ_PAIR)) ||
        zmq_setsockopt(g->monitor, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_connect(g->monitor, MONITOR_EP) != 0) {
        snprintf(err, errlen, "cannot monitor the ingest socket's connections: %s",
                 zmq_strerror(errno));
        goto fail;
    }
    if (pthread_create(&g->thread, NULL, guard_main, g) != 0) {
        snprintf(err, errlen, "cannot start the ingest connection guard thread");
        goto fail;
    }
    g->running = true;
    if (g->limit < max_connections)
        EVBUS_LOG_W("ingest",
                    "at most %llu producer connections at once: ingest.max_connections (%llu) "
                    "is more than half the open files evbusd may have (raise LimitNOFILE)",
                    (unsigned long long)g->limit, (unsigned long long)max_connections);
    else
        EVBUS_LOG_I("ingest", "at most %llu producer connections at once",
                    (unsigned long long)g->limit);
    *out = g;
    return EVBUS_OK;
fail:
    evbus__conn_guard_stop(&g);
    return EVBUS_EZMQ;
}

void evbus__conn_guard_counts(evbus__conn_guard *g, uint64_t *open, uint64_t *refused) {
    *open = g ? atomic_load(&g->open) : 0;
    *refused = g ? atomic_load(&g->refused) : 0;
}

void evbus__conn_guard_stop(evbus__conn_guard **gp) {
    if (!gp || !*gp)
        return;
    evbus__conn_guard *g = *gp;
    if (g->running) {
        atomic_store(&g->stop, true);
        pthread_join(g->thread, NULL);
    }
    if (g->monitor)
        zmq_close(g->monitor);
    zmq_socket_monitor(g->sock, NULL, 0);
    free(g->fds);
    free(g);
    *gp = NULL;
}
