/* Delivery figures of one run, as the sink side sees them: how many stamped
 * events arrived and how long each took from its publish call. The null sink
 * plugin keeps them in a file it maps shared, so the benchmark reads them
 * live without a round trip through evbusd; the JSON Lines follower keeps
 * them in memory. Both record with dstats_record().
 *
 * Publish times come from the event's detail, {"t":<CLOCK_REALTIME ns>,
 * "m":<1 while measuring>,...} (bench_detail_stamp): producer and sink run on
 * one host, so the two clocks are the same clock. */
#ifndef BENCH_DELIVERY_STATS_H
#define BENCH_DELIVERY_STATS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define DSTATS_MAGIC 0x4556424453544154ull /* "EVBDSTAT" */
/* Log-linear buckets: exact below 64 ns, then 32 per power of two (within
 * about 3 %), up to 2^64 ns. */
#define DSTATS_SUB     32
#define DSTATS_BUCKETS (64 + 58 * DSTATS_SUB)

typedef struct dstats {
    uint64_t magic;
    uint64_t size; /* sizeof(dstats) of the writer */
    /* Counters the benchmark reads while the run goes on; only the writer
     * changes them. */
    _Atomic uint64_t delivered; /* every event, stamped or not, each time it came */
    _Atomic uint64_t measured;  /* stamped events published while measuring */
    _Atomic uint64_t retried;   /* events that came with attempt > 1 */
    _Atomic uint64_t first_t;   /* earliest publish time of a measured event */
    _Atomic uint64_t last_at;   /* latest arrival of a measured event */
    /* Publish-to-arrival of measured events in ns; read once the writer has
     * stopped. */
    uint64_t hist[DSTATS_BUCKETS];
} dstats;

/* Resets s to an empty record. */
void dstats_init(dstats *s);

/* Records n arrivals at now_ns (CLOCK_REALTIME) of events whose detail is
 * `detail` (NULL when not known). Only details made by bench_detail_stamp
 * add a latency. */
void dstats_record(dstats *s, const char *detail, uint64_t now_ns, uint32_t attempt);

/* The q-quantile (0 < q <= 1) of the recorded latencies, in ms; 0 when
 * there are none. */
double dstats_quantile_ms(const dstats *s, double q);

#endif
