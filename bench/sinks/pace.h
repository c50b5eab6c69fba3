/* One libevbus producer on a schedule: as fast as the window allows (to
 * preload a backlog), or open loop at a fixed rate, where each publish
 * request has a scheduled time and its events carry that time as their
 * stamp, so that a producer (or server) falling behind shows up as latency
 * instead of silently lowering the rate (no coordinated omission). */
#ifndef BENCH_SINKS_PACE_H
#define BENCH_SINKS_PACE_H

#include <stddef.h>
#include <stdint.h>

typedef struct pace_opts {
    const char *endpoint; /* evbusd's ZeroMQ endpoint */
    size_t event_size;    /* bytes of id + source + detail type + detail */
    size_t batch;         /* events per publish request */
    unsigned window;      /* requests in flight */
    uint64_t events;      /* as fast as possible: stop after this many (rate 0) */
    double rate;          /* open loop: events/s; 0: as fast as possible */
    /* Open loop: requests are scheduled for warmup_s + duration_s; those of
     * the last duration_s are marked measured ("m":1). */
    double warmup_s, duration_s;
    uint32_t nonce; /* makes ids of one run unlike another's */
} pace_opts;

typedef struct pace_result {
    uint64_t published, accepted; /* events sent; acked ACCEPTED */
    uint64_t not_stored;          /* answered otherwise, or not at all */
    double late_ms;               /* open loop: the most a request was sent after its time */
    char error[256];
} pace_result;

/* Publishes and waits for every ack. 0, or -1 with out->error. */
int pace_run(const pace_opts *o, pace_result *out);

#endif
