/* A health endpoint a benchmark serves for one simulated region, the way
 * tests/integration/test_failover.c does: libmicrohttpd on a free loopback
 * port answers every GET with 200 "OK" while healthy and 503 "down" while
 * not, so that evbusd's region-health selector sees the region fail at the
 * moment the benchmark says so. */
#ifndef BENCH_HEALTH_H
#define BENCH_HEALTH_H

#include <stddef.h>
#include <stdint.h>

typedef struct bench_health bench_health;

/* Starts an endpoint, healthy, on a loopback port of its own. 0 with *out
 * set (the caller owns it: bench_health_stop), or -1 with err filled. */
int bench_health_start(bench_health **out, char *err, size_t errlen);

/* Its URL for a health_check (http://127.0.0.1:PORT/ok). Owned by h. */
const char *bench_health_url(const bench_health *h);

/* Switches what the next check sees; safe from any thread. */
void bench_health_set(bench_health *h, int healthy);

/* Checks answered so far. */
uint64_t bench_health_checks(const bench_health *h);

/* Stops the endpoint and frees it; NULLs *h; accepts NULL. */
void bench_health_stop(bench_health **h);

#endif
