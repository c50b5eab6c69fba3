/* evbus-bench-ingest: what the parts of the benchmark share. The load itself
 * (producers, clock, latencies) is common to the benchmarks (common/load.h);
 * what is here is the Redis side of the comparison. */
#ifndef BENCH_INGEST_H
#define BENCH_INGEST_H

#include <stddef.h>

#include "load.h"

/* The producer thread speaking RESP to redis-server (redis_load.c). */
void *bench_redis_producer(void *producer);

/* The producer thread speaking EventBridge PutEvents over HTTP to evbusd's
 * ingest.http (http_load.c); load->port is its port. */
void *bench_http_producer(void *producer);

/* A TCP connection to 127.0.0.1:port with TCP_NODELAY, or -1 (errno set)
 * (tcp.c). */
int bench_tcp_connect_loopback(int port);

/* Sends all len bytes of b (retrying on EINTR); 0, or -1 when the
 * connection failed. */
int bench_tcp_write_all(int fd, const char *b, size_t len);

/* 0 when a redis-server answers PING on the loopback port. */
int bench_redis_ping(int port);

#define BENCH_ROUTERS_MAX_RUNS  99
#define BENCH_ROUTERS_MAX_KILLS 100

/* What --routers measures with (routers.c). */
typedef struct bench_routers_opts {
    const char *evbusd, *tmpdir;
    unsigned runs; /* throughput runs, at most BENCH_ROUTERS_MAX_RUNS */
    double warmup_s, duration_s;
    size_t event_size, batch;
    const size_t *producers; /* a throughput row for each */
    size_t n_producers;
    unsigned window;        /* throughput: requests in flight per producer */
    unsigned resume_window; /* the failover producer's requests in flight */
    unsigned kills;         /* at most BENCH_ROUTERS_MAX_KILLS */
    int resend_ms;          /* the failover producer's */
    int keep, verbose;
} bench_routers_opts;

/* The --routers mode: events/s over one router and over two, then the
 * resume time of a failover producer whose router is killed. Prints its
 * tables; returns the exit status (0, 1 when a run failed, 130 when
 * interrupted). */
int bench_routers_run(const bench_routers_opts *o);

#endif
