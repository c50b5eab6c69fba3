/* The metrics endpoint: Prometheus text at /metrics, and the same figures as
 * a page a person can read at /, served over HTTP (libmicrohttpd, its own
 * thread) from the control module's status document. Off unless
 * metrics.listen is set. */
#ifndef EVBUS_METRICS_H
#define EVBUS_METRICS_H

#include "control.h"

typedef struct evbus__metrics evbus__metrics;

/* Starts serving on cfg->metrics_listen ("HOST:PORT"); *out stays NULL when
 * it is not set. Idle connections are closed after cfg->metrics_timeout_ms
 * (rounded up to whole seconds) without a byte, and a request's headers must
 * arrive whole within cfg->metrics_timeout_ms of the connection (or of its
 * previous request) however slowly they trickle; at most
 * cfg->metrics_max_connections are open at once, and
 * cfg->metrics_max_connections_per_ip from one address. Only GET and HEAD
 * are answered (others: 405). EVBUS_ECONFIG / EVBUS_EIO with err naming the
 * address. */
evbus_err evbus__metrics_start(const evbus__config *cfg, evbus__control *control,
                               evbus__metrics **out, char *err, size_t errlen);

/* Stops serving; NULLs *m; accepts NULL. */
void evbus__metrics_destroy(evbus__metrics **m);

/* Renders a status document (evbus__control_status()) as Prometheus text.
 * Caller frees. */
char *evbus__metrics_render(struct json_t *status);

#endif
