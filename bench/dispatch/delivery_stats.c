#include "delivery_stats.h"

#include <string.h>

void dstats_init(dstats *s) {
    memset(s, 0, sizeof *s);
    s->magic = DSTATS_MAGIC;
    s->size = sizeof *s;
}

static size_t bucket_of(uint64_t v) {
    if (v < 64)
        return (size_t)v;
    int msb = 63 - __builtin_clzll(v);
    int shift = msb - 5; /* keeps the top 6 bits: 32..63 */
    return 64 + (size_t)(msb - 6) * DSTATS_SUB + (size_t)((v >> shift) - DSTATS_SUB);
}

/* The middle of a bucket, which is within half a bucket of every value in it. */
static double bucket_mid(size_t i) {
    if (i < 64)
        return (double)i;
    int msb = (int)((i - 64) / DSTATS_SUB) + 6;
    int shift = msb - 5;
    uint64_t top = (i - 64) % DSTATS_SUB + DSTATS_SUB;
    return (double)(top << shift) + (double)(1ull << shift) / 2;
}

/* One writer per record: plain load and store, so that the hot path takes no
 * locked instruction, and readers still never see a torn value. */
static void bump(_Atomic uint64_t *c, uint64_t by) {
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + by,
                          memory_order_relaxed);
}

/* {"t":<19 digits>,"m":<0|1>, as bench_detail_stamp writes it. */
static int parse_stamp(const char *d, uint64_t *t, int *measured) {
    if (!d || strncmp(d, "{\"t\":", 5) != 0)
        return -1;
    uint64_t v = 0;
    for (int i = 5; i < 24; i++) {
        if (d[i] < '0' || d[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(d[i] - '0');
    }
    if (strncmp(d + 24, ",\"m\":", 5) != 0 || (d[29] != '0' && d[29] != '1'))
        return -1;
    *t = v;
    *measured = d[29] == '1';
    return 0;
}

void dstats_record(dstats *s, const char *detail, uint64_t now_ns, uint32_t attempt) {
    bump(&s->delivered, 1);
    if (attempt > 1)
        bump(&s->retried, 1);
    uint64_t t;
    int measured;
    if (parse_stamp(detail, &t, &measured) != 0 || !measured)
        return;
    uint64_t first = atomic_load_explicit(&s->first_t, memory_order_relaxed);
    if (first == 0 || t < first)
        atomic_store_explicit(&s->first_t, t, memory_order_relaxed);
    if (now_ns > atomic_load_explicit(&s->last_at, memory_order_relaxed))
        atomic_store_explicit(&s->last_at, now_ns, memory_order_relaxed);
    /* A stamp from the future can only be clock trouble: count it as 0. */
    s->hist[bucket_of(now_ns > t ? now_ns - t : 0)]++;
    /* Last, with release: a reader that sees the count sees the rest. */
    atomic_store_explicit(&s->measured,
                          atomic_load_explicit(&s->measured, memory_order_relaxed) + 1,
                          memory_order_release);
}

double dstats_quantile_ms(const dstats *s, double q) {
    uint64_t total = 0;
    for (size_t i = 0; i < DSTATS_BUCKETS; i++)
        total += s->hist[i];
    if (total == 0)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)total + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > total)
        rank = total;
    uint64_t seen = 0;
    for (size_t i = 0; i < DSTATS_BUCKETS; i++) {
        seen += s->hist[i];
        if (seen >= rank)
            return bucket_mid(i) / 1e6;
    }
    return 0;
}
