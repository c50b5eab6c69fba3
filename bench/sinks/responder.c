/* The instant endpoint. One libmicrohttpd thread (epoll) serves every
 * connection, which keeps the delivery record single-writer (dstats needs
 * that) and costs the two CPUs of a small machine the least; at 10 entries
 * per request it answers far more calls per second than the sinks make. */
#include "responder.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "load.h"
#include "shape.h"

/* Larger bodies are refused: no sink sends more than 1 MiB per call. */
#define MAX_BODY (2u << 20)

struct responder {
    struct MHD_Daemon *d;
    int port;
    _Atomic uint64_t entries, requests, bad;
    /* Written by the server thread only. */
    uint64_t first_ns, last_ns, first_entries;
    dstats stats;
    char *captured, *captured_target;
    size_t captured_len, captured_entries;
    _Atomic int has_capture;
};

/* One request's body, gathered across upload callbacks. */
typedef struct upload {
    char *data;
    size_t len, cap;
    int too_big;
} upload;

static void on_entry(void *arg, const char *stamp) {
    responder *r = arg;
    dstats_record(&r->stats, stamp, bench_real_ns(), 1);
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, const char *type,
                             const char *body, size_t len) {
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", type);
    MHD_add_response_header(resp, "x-amzn-RequestId", "00000000-0000-4000-8000-000000000000");
    enum MHD_Result rc = MHD_queue_response(c, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result bad_request(responder *r, struct MHD_Connection *c, const char *why) {
    atomic_fetch_add(&r->bad, 1);
    char body[256];
    int n =
        snprintf(body, sizeof body, "{\"__type\":\"ValidationException\",\"message\":\"%s\"}", why);
    return reply(c, 400, "application/x-amz-json-1.0", body, (size_t)n);
}

static void capture(responder *r, const upload *u, const char *target, size_t entries) {
    r->captured = malloc(u->len + 1);
    r->captured_target = strdup(target);
    if (!r->captured || !r->captured_target) {
        free(r->captured);
        free(r->captured_target);
        r->captured = r->captured_target = NULL;
        return;
    }
    memcpy(r->captured, u->data, u->len);
    r->captured[u->len] = '\0';
    r->captured_len = u->len;
    r->captured_entries = entries;
    atomic_store(&r->has_capture, 1);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *data_size, void **con_cls) {
    responder *r = cls;
    (void)url;
    (void)version;
    upload *u = *con_cls;
    if (!u) {
        if (!(u = calloc(1, sizeof *u)))
            return MHD_NO;
        *con_cls = u;
        return MHD_YES;
    }
    if (*data_size) {
        size_t n = *data_size;
        *data_size = 0;
        if (u->too_big || u->len + n > MAX_BODY) {
            u->too_big = 1;
            return MHD_YES;
        }
        if (u->len + n + 1 > u->cap) {
            size_t cap = u->cap ? u->cap * 2 : 16384;
            while (cap < u->len + n + 1)
                cap *= 2;
            char *p = realloc(u->data, cap);
            if (!p)
                return MHD_NO;
            u->data = p;
            u->cap = cap;
        }
        memcpy(u->data + u->len, data, n);
        u->len += n;
        return MHD_YES;
    }
    if (strcmp(method, "POST") != 0 || u->too_big || !u->data)
        return bad_request(r, c, "expected a POST with a body of at most 2 MiB");
    const char *target = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Amz-Target");
    const sink_shape *s = shape_by_target(target);
    if (!s)
        return bad_request(r, c, "unknown X-Amz-Target");
    shape_answer a = {.on_entry = on_entry, .arg = r};
    int n = s->answer(u->data, u->len, &a);
    enum MHD_Result rc;
    if (n < 0) {
        rc = bad_request(r, c, "not a request of this X-Amz-Target");
    } else {
        uint64_t now = bench_now_ns();
        if (!r->first_ns) {
            r->first_ns = now;
            r->first_entries = (uint64_t)n;
        }
        r->last_ns = now;
        if (!atomic_load(&r->has_capture) && (size_t)n == s->max_entries)
            capture(r, u, target, (size_t)n);
        atomic_fetch_add(&r->entries, (uint64_t)n);
        atomic_fetch_add(&r->requests, 1);
        rc = reply(c, 200, s->content_type, a.data ? a.data : "{}", a.data ? a.len : 2);
    }
    free(a.data);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)cls;
    (void)c;
    (void)toe;
    upload *u = *con_cls;
    if (u) {
        free(u->data);
        free(u);
        *con_cls = NULL;
    }
}

int responder_start(responder **out, char *err, size_t errlen) {
    responder *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    dstats_init(&r->stats);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    r->d =
        MHD_start_daemon(MHD_USE_EPOLL_INTERNAL_THREAD, 0, NULL, NULL, on_request, r,
                         MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_CONNECTION_LIMIT,
                         (unsigned)4096, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_END);
    const union MHD_DaemonInfo *info =
        r->d ? MHD_get_daemon_info(r->d, MHD_DAEMON_INFO_BIND_PORT) : NULL;
    if (!info || !info->port) {
        snprintf(err, errlen, "cannot start the responder (libmicrohttpd) on loopback");
        responder_stop(&r);
        return -1;
    }
    r->port = info->port;
    *out = r;
    return 0;
}

int responder_port(const responder *r) {
    return r->port;
}

void responder_reset(responder *r) {
    atomic_store(&r->entries, 0);
    atomic_store(&r->requests, 0);
    atomic_store(&r->bad, 0);
    r->first_ns = r->last_ns = r->first_entries = 0;
    dstats_init(&r->stats);
    atomic_store(&r->has_capture, 0);
    free(r->captured);
    free(r->captured_target);
    r->captured = r->captured_target = NULL;
    r->captured_len = r->captured_entries = 0;
}

uint64_t responder_entries(const responder *r) {
    return atomic_load(&r->entries);
}

uint64_t responder_requests(const responder *r) {
    return atomic_load(&r->requests);
}

uint64_t responder_bad(const responder *r) {
    return atomic_load(&r->bad);
}

double responder_rate(const responder *r) {
    uint64_t n = atomic_load(&r->entries);
    if (atomic_load(&r->requests) < 2 || r->last_ns <= r->first_ns)
        return 0;
    return (double)(n - r->first_entries) / ((double)(r->last_ns - r->first_ns) / 1e9);
}

const dstats *responder_stats(const responder *r) {
    return &r->stats;
}

int responder_captured(const responder *r, size_t entries, const char **body, size_t *len,
                       const char **target) {
    if (!atomic_load(&r->has_capture) || r->captured_entries != entries)
        return -1;
    *body = r->captured;
    *len = r->captured_len;
    *target = r->captured_target;
    return 0;
}

void responder_stop(responder **rp) {
    if (!rp || !*rp)
        return;
    responder *r = *rp;
    if (r->d)
        MHD_stop_daemon(r->d);
    free(r->captured);
    free(r->captured_target);
    free(r);
    *rp = NULL;
}
