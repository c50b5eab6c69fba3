/* What the benchmarks share for driving load: one load runs a number of
 * producer threads against one server for a warm-up and then a measured
 * interval; see load.c for the clock and evbus_load.c for the libevbus
 * producer. bench_catch_signals() sets bench_interrupted; each benchmark's
 * main.c defines bench_name. */
#ifndef BENCH_LOAD_H
#define BENCH_LOAD_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Ids are UUID-shaped (36 characters) so that servers index keys of the
 * size a real producer sends. */
#define BENCH_ID_LEN      36
#define BENCH_SOURCE      "com.example.bench"
#define BENCH_DETAIL_TYPE "BenchEvent"
/* The smallest event this benchmark can build: id, source, detail type and
 * the shortest padded detail object. */
#define BENCH_MIN_EVENT_SIZE                                                                       \
    (BENCH_ID_LEN + sizeof BENCH_SOURCE - 1 + sizeof BENCH_DETAIL_TYPE - 1 + 16)

/* A stamped detail starts with {"t":<19 digits>,"m":<0|1>, and then holds the
 * padding member: BENCH_STAMP_LEN bytes more than the shortest detail. */
#define BENCH_STAMP_LEN 30

/* Where a load is; producers read it, only load.c writes it. */
enum { PHASE_SETUP, PHASE_WARMUP, PHASE_MEASURE, PHASE_STOP };

/* Set by SIGINT/SIGTERM: every loop stops at its next check and cleans up. */
extern volatile sig_atomic_t bench_interrupted;

/* Sets bench_interrupted on SIGINT and SIGTERM (so a run stops cleanly and
 * its servers are stopped and reaped) and ignores SIGPIPE. */
void bench_catch_signals(void);
/* Prefix of the messages the shared code prints ("bench-ingest"). */
extern const char *bench_name;

/* CURVE keys of a producer and of the server it talks to (Z85). */
typedef struct bench_curve {
    char server[41], pub[41], sec[41];
} bench_curve;

typedef struct bench_load {
    size_t event_size; /* bytes of id + source + detail type + detail */
    size_t batch;      /* events per request */
    unsigned producers;
    unsigned window; /* requests in flight per producer */
    double warmup_s, duration_s;
    const char *endpoint; /* evbus: a ZeroMQ endpoint; redis: ignored */
    /* evbus: several routers instead of `endpoint` (NULL then), which each
     * producer's client spreads its requests over (EVBUS_ROUTER_SPREAD). */
    const char *const *endpoints;
    size_t n_endpoints;
    int port;       /* redis: the loopback port */
    uint32_t nonce; /* makes ids of one run unlike those of another */
    /* Non-zero: each request's detail carries its publish time on
     * CLOCK_REALTIME and whether it was sent while measuring (see
     * bench_detail_stamp), so that whoever receives it can time delivery. */
    int stamp;
    /* With max_undelivered > 0, a producer holds back while more than that
     * many events were published (counted in *published by the producers)
     * and not yet delivered (*delivered, kept by the benchmark), so that a
     * slow sink bounds the backlog instead of growing it for the whole run. */
    uint64_t max_undelivered;
    _Atomic uint64_t *published;
    const _Atomic uint64_t *delivered;
    const bench_curve *curve; /* evbus: connect with CURVE; NULL: plain */
    /* Open loop when > 0: requests go out on a fixed schedule of this many
     * events/s (all producers together), whatever the server does, and a
     * request's latency counts from its scheduled time, so that a stall
     * shows as latency instead of slowing the producers down (no
     * coordinated omission). Latencies are those of the requests scheduled
     * during the measured interval. 0: closed loop, as fast as the window
     * allows. */
    double rate;
} bench_load;

/* One producer's open-loop schedule (bench_load.rate > 0). */
typedef struct bench_schedule {
    uint64_t next_ns;     /* monotonic: when the next request is due */
    uint64_t interval_ns; /* between two requests of this producer */
} bench_schedule;

/* Per-batch ack latencies in microseconds, in arrival order. */
typedef struct bench_lat {
    uint32_t *v;
    size_t n, cap;
} bench_lat;

typedef struct bench_producer {
    const bench_load *load;
    _Atomic int *phase;
    unsigned index;
    uint64_t rng;        /* id generator state */
    uint64_t acked;      /* durable events acked during PHASE_MEASURE */
    uint64_t durable;    /* durable events acked in any phase */
    uint64_t accepted;   /* events acked ACCEPTED (stored for the first time) */
    uint64_t not_stored; /* events answered rejected / retry later / not at all */
    bench_lat lat;       /* batches acked during PHASE_MEASURE */
    _Atomic int ready;   /* connected; waiting for PHASE_WARMUP */
    char error[256];     /* the first failure, "" if none */
} bench_producer;

typedef struct bench_result {
    double events_per_s;
    double p50_ms, p99_ms, p999_ms;
    double rss_mib;      /* the server's VmHWM; 0 when unknown */
    double cpu_us;       /* server CPU (user + system) per durable event */
    uint64_t durable;    /* durable events over the whole load */
    uint64_t accepted;   /* events stored for the first time, over the whole load */
    uint64_t acked;      /* during the measured interval */
    uint64_t not_stored; /* over the whole load */
    char error[256];     /* why the run failed, "" when it did not */
} bench_result;

typedef void *(*bench_producer_fn)(void *producer);

/* Runs one load: starts load->producers threads running fn, waits until all
 * are connected, warms up, measures, stops them and sums their figures into
 * out (all but rss_mib). Returns 0, or -1 when the run failed (out->error). */
int bench_load_run(const bench_load *load, bench_producer_fn fn, bench_result *out);

/* The libevbus producer thread (evbus_load.c). */
void *bench_evbus_producer(void *producer);

/* Publishes one event of `source` to the evbusd at endpoint until it is
 * ACCEPTED: the server is then up and storing. Gives up when *pid has exited
 * (then reaped: *pid = 0, *status set) or after limit_ms. 0 or -1 with err
 * filled. */
/* The same, for an evbusd that authenticates producers with CURVE. */
int bench_evbusd_wait_ready_curve(const char *endpoint, const char *source,
                                  const bench_curve *curve, pid_t *pid, int *status, int limit_ms,
                                  char *err, size_t errlen);
int bench_evbusd_wait_ready(const char *endpoint, const char *source, pid_t *pid, int *status,
                            int limit_ms, char *err, size_t errlen);

/* Writes the detail JSON object, exactly len bytes plus a NUL, into buf
 * (len + 1 bytes). len >= 16. */
void bench_detail_fill(char *buf, size_t len);
/* Like bench_detail_fill, but the object starts with a time stamp to be
 * rewritten by bench_detail_stamp: {"t":...,"m":0,"pad":"..."}.
 * len >= BENCH_STAMP_LEN + 16. */
void bench_detail_fill_stamped(char *buf, size_t len);
/* Writes t_ns (19 digits) and measured (0 or 1) into a detail made by
 * bench_detail_fill_stamped; the length does not change. */
void bench_detail_stamp(char *buf, uint64_t t_ns, int measured);
/* Detail length that makes an event of event_size bytes. */
size_t bench_detail_len(size_t event_size);
/* Writes the next UUID-shaped id (BENCH_ID_LEN characters, no NUL). */
void bench_id_next(bench_producer *p, char *out);

/* Starts producer p's schedule now: p sends every producers * batch / rate
 * seconds, producers evenly staggered. Also asks the kernel to wake this
 * thread on time (timer slack) for the short waits between requests. */
void bench_schedule_start(bench_schedule *s, const bench_producer *p);
/* Nanoseconds until the next request is due; 0 when it is due or late. */
uint64_t bench_schedule_wait_ns(const bench_schedule *s);
/* Takes the request that is due: returns its scheduled time (monotonic) and
 * moves to the next one. A producer that fell behind sends the late ones at
 * once, each timed from its own scheduled time. */
uint64_t bench_schedule_take(bench_schedule *s);
/* Sleeps until the next request is due, or at most max_ns. */
void bench_schedule_nap(const bench_schedule *s, uint64_t max_ns);

/* Monotonic clock in nanoseconds. */
uint64_t bench_now_ns(void);
/* CLOCK_REALTIME in nanoseconds: comparable across processes. */
uint64_t bench_real_ns(void);
/* Appends one latency; on allocation failure the sample is dropped, which
 * only thins the distribution. */
void bench_lat_add(bench_lat *l, uint64_t ns);
/* Sorts l and returns the q-quantile (0 < q <= 1, nearest rank) in ms. */
double bench_lat_quantile_ms(bench_lat *l, double q);
/* The median of n values; sorts v. 0 for n == 0. */
double bench_median(double *v, size_t n);

#endif
