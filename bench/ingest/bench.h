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

#endif
