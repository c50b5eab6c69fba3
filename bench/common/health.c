/* One simulated region's health endpoint (health.h). */
#include "health.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

struct bench_health {
    struct MHD_Daemon *mhd;
    atomic_int healthy;
    _Atomic uint64_t checks;
    char url[64];
};

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls) {
    (void)url, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
    bench_health *h = cls;
    int ok = atomic_load(&h->healthy);
    atomic_fetch_add(&h->checks, 1);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(ok ? 2 : 4, ok ? "OK" : "down", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    enum MHD_Result rc =
        MHD_queue_response(conn, ok ? MHD_HTTP_OK : MHD_HTTP_SERVICE_UNAVAILABLE, r);
    MHD_destroy_response(r);
    return rc;
}

int bench_health_start(bench_health **out, char *err, size_t errlen) {
    bench_health *h = calloc(1, sizeof *h);
    if (!h) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    atomic_store(&h->healthy, 1);
    /* Port 0: the kernel picks a free one; loopback only. */
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    h->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_request, h,
                              MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, errlen, "cannot start a health endpoint (libmicrohttpd)");
        free(h);
        return -1;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    snprintf(h->url, sizeof h->url, "http://127.0.0.1:%u/ok", info ? info->port : 0u);
    *out = h;
    return 0;
}

const char *bench_health_url(const bench_health *h) {
    return h->url;
}

void bench_health_set(bench_health *h, int healthy) {
    atomic_store(&h->healthy, healthy ? 1 : 0);
}

uint64_t bench_health_checks(const bench_health *h) {
    return atomic_load(&h->checks);
}

void bench_health_stop(bench_health **h) {
    if (!h || !*h)
        return;
    MHD_stop_daemon((*h)->mhd);
    free(*h);
    *h = NULL;
}
