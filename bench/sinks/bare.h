/* The bare loop: what libcurl alone does with the sinks' requests. One
 * thread, one curl multi, `concurrency` requests in flight on kept-alive
 * HTTP/1.1 connections, each the same captured body signed the same way as
 * the plugins sign (CURLOPT_AWS_SIGV4, the same headers), no evbus at all.
 * Its events/s is the ceiling the plugin path is compared with. */
#ifndef BENCH_SINKS_BARE_H
#define BENCH_SINKS_BARE_H

#include <stddef.h>

typedef struct bare_opts {
    const char *url;     /* the endpoint: http://127.0.0.1:PORT */
    const char *region;  /* signing region */
    const char *service; /* signing service: "sqs" */
    const char *key_id, *secret;
    const char *content_type; /* Content-Type */
    const char *amz_target;   /* X-Amz-Target */
    const char *body;         /* the request body, sent as is every time */
    size_t body_len;
    size_t entries; /* entries in body: counted per 200 answer */
    unsigned concurrency;
    double warmup_s, duration_s;
} bare_opts;

typedef struct bare_result {
    double events_per_s; /* entries of 200 answers completed while measuring / s */
    double cpu_us;       /* the loop thread's CPU time per entry, over the whole run */
    unsigned long long requests, failed; /* over the whole run */
    char error[256];
} bare_result;

/* Runs the loop for warmup + duration seconds. 0, or -1 with out->error
 * (a transfer error or a non-200 answer fails the run). */
int bare_run(const bare_opts *o, bare_result *out);

#endif
