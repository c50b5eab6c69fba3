/* The record bench/failover and its fault sink share: a file the benchmark
 * creates and both map shared. The benchmark writes the fault switches and
 * the start of the clock; the sink (every region's instance, all on evbusd's
 * delivery thread, so one writer) writes everything else: per millisecond
 * and per region what it delivered and what it refused, and per event how
 * many times each region got it. That per-event record is what proves that
 * no acked event was lost: the benchmark checks every id it had acked
 * against it, not against anything evbusd says.
 *
 * Event ids are "fo-NONCE-N" with N counting from 0; the sink records event
 * N in seen[N]. Times are CLOCK_MONOTONIC, which is one clock for every
 * process of the machine. */
#ifndef BENCH_FAILOVER_RECORD_H
#define BENCH_FAILOVER_RECORD_H

#include <stdatomic.h>
#include <stdint.h>

#define FO_MAGIC   0x4556424641494c31ull /* "EVBFAIL1" */
#define FO_REGIONS 2
/* Five minutes of one-millisecond buckets. */
#define FO_MAX_MS (5 * 60 * 1000)
/* Events one run can publish (the file is sparse: only what is touched
 * takes memory). */
#define FO_MAX_EVENTS (1u << 22)

typedef struct fo_record {
    uint64_t magic;
    uint64_t size; /* sizeof(fo_record) of the writer */
    /* The benchmark's: when its clock started (0: not yet; the sink then
     * counts totals but no buckets), and per region slot whether the
     * region's endpoint is down (the sink then refuses every event). */
    _Atomic uint64_t t0_ns;
    _Atomic uint32_t fault[FO_REGIONS];
    /* The sink's. */
    _Atomic uint64_t delivered[FO_REGIONS]; /* reported DELIVERED */
    _Atomic uint64_t refused[FO_REGIONS];   /* refused by the fault switch */
    _Atomic uint64_t unique;                /* events delivered for the first time */
    _Atomic uint64_t foreign;               /* events whose id is not fo-NONCE-N */
    _Atomic uint32_t ok_ms[FO_REGIONS][FO_MAX_MS];
    _Atomic uint32_t refused_ms[FO_REGIONS][FO_MAX_MS];
    _Atomic uint32_t first_ms[FO_MAX_MS]; /* first deliveries, any region */
    /* Deliveries of event N per region, stopping at 255. */
    _Atomic uint8_t seen[FO_MAX_EVENTS][FO_REGIONS];
    /* When event N was first delivered: milliseconds since t0, plus 1 (0:
     * not yet). */
    _Atomic uint32_t first_at[FO_MAX_EVENTS];
} fo_record;

#endif
