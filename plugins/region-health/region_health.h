/* The region-health selector: health checks (probe.c) and the decision per
 * target (region_health.c). Private to this plugin. */
#ifndef EVBUS_REGION_HEALTH_H
#define EVBUS_REGION_HEALTH_H

/* memmem: the build defines _GNU_SOURCE */
#include <evbus/plugin.h>
#include <stdbool.h>
#include <stdint.h>

/* Route 53 looks for a check's string in the first 5,120 bytes. */
#define RH_BODY_MAX 5120

typedef struct probe {
    void *owner; /* the region's state, for done */
    void (*done)(void *owner, bool ok, const char *detail);
    evbus_check_type type;
    const char *url, *match; /* the host's, valid until shutdown */
    int64_t timeout_ms;
    void *easy; /* CURL *, reused across checks (TCP: one per check) */
    bool running;
    size_t body_len;
    char body[RH_BODY_MAX + 1];
} probe;

/* Starts one check; its end calls p->done on the delivery thread. A check
 * still running is left to its timeout (no second one). */
evbus_err rh_probe_start(probe *p, const evbus_host_api *api, evbus_host *host);

/* Frees the handle. The host has taken back running transfers by then. */
void rh_probe_free(probe *p);

#endif
