/* The figures of a bench/failover run (failover.h), all drawn after the run
 * from two sources that do not depend on evbusd's own account: the
 * producer's per-millisecond sends and acks, and the sink's record of what
 * each region received, per millisecond and per event. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "failover.h"
#include "host.h"

/* Full throughput: the secondary delivers at least this share of the
 * offered rate over a window this long. */
#define FULL_SHARE     0.9
#define FULL_WINDOW_MS 100

/* The figures of one outage, from its start to its recovery. */
typedef struct outage {
    const fo_mark *start, *end;
    int64_t first_ms;    /* to the first event in the secondary; -1: none */
    int64_t full_ms;     /* to full throughput in the secondary; -1: never */
    double during_per_s; /* delivered per second in the secondary from full_ms to the end */
    uint64_t primary_ok; /* delivered by the primary in the meantime */
    uint64_t refused;    /* refused by the primary in the meantime */
    int64_t peak_pending;
    int64_t failback_ms; /* from the recovery to the first event back in the primary */
    int already;         /* the secondary had traffic just before the outage */
} outage;

typedef struct series {
    int64_t n;                   /* milliseconds covered */
    int64_t *acked, *first_seen; /* cumulative, per millisecond */
} series;

static const char *const mark_names[] = {
    [FO_OUTAGE] = "us-east-1 down",
    [FO_RECOVER] = "us-east-1 back",
    [FO_FLIP] = "us-east-1 down + region off",
    [FO_FLIP_RECOVER] = "us-east-1 back + region on",
};

uint64_t fo_count_lost(const fo_producer *p, const fo_record *rec, uint64_t limit) {
    uint64_t lost = 0;
    for (uint64_t n = 0; n < limit && n < FO_MAX_EVENTS; n++)
        if (p->acked[n] && atomic_load_explicit(&rec->seen[n][0], memory_order_relaxed) == 0 &&
            atomic_load_explicit(&rec->seen[n][1], memory_order_relaxed) == 0)
            lost++;
    return lost;
}

static uint64_t sum_ms(const _Atomic uint32_t *b, int64_t from, int64_t to) {
    uint64_t s = 0;
    if (from < 0)
        from = 0;
    for (int64_t m = from; m < to && m < FO_MAX_MS; m++)
        s += atomic_load_explicit(&b[m], memory_order_relaxed);
    return s;
}

static uint64_t sum_u32(const uint32_t *b, int64_t from, int64_t to) {
    uint64_t s = 0;
    for (int64_t m = from < 0 ? 0 : from; m < to && m < FO_MAX_MS; m++)
        s += b[m];
    return s;
}

static int series_build(const fo_run *r, series *s) {
    s->n = (r->drained_ms > r->end_ms ? r->drained_ms : r->end_ms) + 1000;
    if (s->n > FO_MAX_MS)
        s->n = FO_MAX_MS;
    s->acked = malloc((size_t)s->n * sizeof *s->acked);
    s->first_seen = malloc((size_t)s->n * sizeof *s->first_seen);
    if (!s->acked || !s->first_seen)
        return -1;
    int64_t a = 0, f = 0;
    for (int64_t m = 0; m < s->n; m++) {
        a += r->prod->acked_ms[m];
        f += atomic_load_explicit(&r->rec->first_ms[m], memory_order_relaxed);
        s->acked[m] = a;
        s->first_seen[m] = f;
    }
    return 0;
}

static void series_free(series *s) {
    free(s->acked);
    free(s->first_seen);
}

/* Acked and not yet received anywhere, at the end of millisecond m. An
 * event can arrive before its ack reaches the producer: never below 0. */
static int64_t pending_at(const series *s, int64_t m) {
    if (m >= s->n)
        m = s->n - 1;
    int64_t p = s->acked[m] - s->first_seen[m];
    return p > 0 ? p : 0;
}

static void measure(const fo_run *r, const series *s, outage *o, int64_t next_ms) {
    const fo_record *rec = r->rec;
    int64_t t = o->start->at_ms, end = o->end ? o->end->at_ms : r->end_ms;
    o->first_ms = o->full_ms = o->failback_ms = -1;
    /* Traffic already in the secondary (an earlier failback not done yet)
     * would make any figure meaningless. */
    o->already = sum_ms(rec->ok_ms[1], t - 200, t) > 0;
    for (int64_t m = t; m < end && o->first_ms < 0; m++)
        if (atomic_load_explicit(&rec->ok_ms[1][m], memory_order_relaxed))
            o->first_ms = m - t;
    double want = FULL_SHARE * r->rate * FULL_WINDOW_MS / 1000.0;
    for (int64_t m = t + (o->first_ms > 0 ? o->first_ms : 0);
         o->first_ms >= 0 && m + FULL_WINDOW_MS <= end && o->full_ms < 0; m++)
        if ((double)sum_ms(rec->ok_ms[1], m, m + FULL_WINDOW_MS) >= want)
            o->full_ms = m - t;
    if (o->full_ms >= 0 && t + o->full_ms < end)
        o->during_per_s = (double)sum_ms(rec->ok_ms[1], t + o->full_ms, end) /
                          ((double)(end - t - o->full_ms) / 1000.0);
    o->primary_ok = sum_ms(rec->ok_ms[0], t, end);
    o->refused = sum_ms(rec->refused_ms[0], t, end);
    for (int64_t m = t; m < end; m++) {
        int64_t p = pending_at(s, m);
        if (p > o->peak_pending)
            o->peak_pending = p;
    }
    /* Failback: the first event back in the primary before the next
     * outage (after it, a delivery there says nothing about failback). */
    if (o->end)
        for (int64_t m = end; m < next_ms && m < s->n && o->failback_ms < 0; m++)
            if (atomic_load_explicit(&rec->ok_ms[0][m], memory_order_relaxed))
                o->failback_ms = m - end;
}

static void print_timeline(const fo_run *r, const series *s) {
    const fo_record *rec = r->rec;
    printf("   t |    offered   accepted | delivered %-9s %-9s | refused %-9s |   pending | "
           "what happened\n",
           r->regions[0], r->regions[1], r->regions[0]);
    printf("-----+-----------------------+-------------------------------+-------------------+--"
           "---------+--------------\n");
    int64_t last = s->n / 1000;
    for (int64_t sec = 0; sec < last; sec++) {
        int64_t a = sec * 1000, b = a + 1000;
        char c[6][32], what[160] = "";
        for (size_t i = 0; i < r->n_marks; i++) {
            const fo_mark *m = &r->marks[i];
            if (m->at_ms >= a && m->at_ms < b) {
                size_t used = strlen(what);
                snprintf(what + used, sizeof what - used, "%s%.3f s %s", used ? "; " : "",
                         (double)m->at_ms / 1000, mark_names[m->kind]);
            }
        }
        if (r->drained_ms >= a && r->drained_ms < b && r->drained_ms > r->end_ms) {
            size_t used = strlen(what);
            snprintf(what + used, sizeof what - used, "%sall acked events delivered",
                     used ? "; " : "");
        }
        if (a == r->end_ms / 1000 * 1000 && r->end_ms >= a && r->end_ms < b) {
            size_t used = strlen(what);
            snprintf(what + used, sizeof what - used, "%sload ends", used ? "; " : "");
        }
        printf("%4lld | %10s %10s | %9s %9s %9s | %7s %9s | %9s | %s\n", (long long)sec,
               bench_fmt_count((double)sum_u32(r->prod->sent_ms, a, b), c[0], sizeof c[0]),
               bench_fmt_count((double)sum_u32(r->prod->acked_ms, a, b), c[1], sizeof c[1]), "",
               bench_fmt_count((double)sum_ms(rec->ok_ms[0], a, b), c[2], sizeof c[2]),
               bench_fmt_count((double)sum_ms(rec->ok_ms[1], a, b), c[3], sizeof c[3]), "",
               bench_fmt_count((double)sum_ms(rec->refused_ms[0], a, b), c[4], sizeof c[4]),
               bench_fmt_count((double)pending_at(s, b - 1), c[5], sizeof c[5]), what);
    }
    printf("\n");
}

static const char *verdict(int met) {
    return met ? "met" : "MISSED";
}

static void print_outage(const fo_run *r, const outage *o, double steady) {
    char a[32], b[32];
    int flip = o->start->kind == FO_FLIP;
    if (flip)
        printf("%-30s", "evbus region off (at once)");
    else
        printf("%-30s", "health checks");
    if (o->already) {
        printf(" (%s already had the traffic: the failback before had not happened)\n",
               r->regions[1]);
        return;
    }
    if (o->first_ms >= 0)
        printf(" %9lld ms", (long long)o->first_ms);
    else
        printf(" %12s", "never");
    if (o->full_ms >= 0)
        printf(" %9lld ms", (long long)o->full_ms);
    else
        printf(" %12s", "never");
    double share = steady > 0 ? o->during_per_s / steady : 0;
    printf(" %10s/s (%5.1f %%) %9s", bench_fmt_count(o->during_per_s, a, sizeof a), share * 100,
           bench_fmt_count((double)o->peak_pending, b, sizeof b));
    if (o->failback_ms >= 0)
        printf(" %8.1f s", (double)o->failback_ms / 1000);
    else
        printf(" %10s", "-");
    int64_t goal = flip ? 100 : 2000;
    printf("  < %lld ms: %s; >= 90 %%: %s\n", (long long)goal,
           verdict(o->first_ms >= 0 && o->first_ms < goal), verdict(share >= 0.9));
    if (flip)
        printf("%30s (the command itself took %.0f ms and exited %d)\n", "", o->start->cli_ms,
               WIFEXITED(o->start->cli_status) ? WEXITSTATUS(o->start->cli_status) : -1);
    if (o->primary_ok)
        printf("%30s %llu event(s) still delivered in %s after it went down\n", "",
               (unsigned long long)o->primary_ok, r->regions[0]);
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Publish-to-delivery of the events whose scheduled send falls in [a, b),
 * in ms: the time from when the producer was due to send an event to its
 * first delivery anywhere. Prints p50, p99 and the largest. */
static void print_latency(const fo_run *r, const char *what, int64_t a, int64_t b) {
    uint64_t n0 = (uint64_t)((double)a / 1000.0 * r->rate),
             n1 = (uint64_t)((double)b / 1000.0 * r->rate);
    if (n1 > r->prod->sent)
        n1 = r->prod->sent;
    if (n1 <= n0)
        return;
    uint32_t *v = malloc((n1 - n0) * sizeof *v);
    if (!v)
        return;
    size_t k = 0;
    for (uint64_t n = n0; n < n1; n++) {
        uint32_t at = atomic_load_explicit(&r->rec->first_at[n], memory_order_relaxed);
        int64_t due = (int64_t)((double)n / r->rate * 1000.0);
        if (at && r->prod->acked[n])
            v[k++] = (uint32_t)((int64_t)at - 1 > due ? (int64_t)at - 1 - due : 0);
    }
    if (k) {
        qsort(v, k, sizeof *v, cmp_u32);
        printf("  %-44s %8u %8u %8u ms\n", what, v[k / 2], v[(size_t)((double)(k - 1) * 0.99)],
               v[k - 1]);
    }
    free(v);
}

uint64_t fo_report(const fo_run *r, const char *loadavg_start, const char *loadavg_end) {
    series s = {0};
    if (series_build(r, &s)) {
        fprintf(stderr, "bench-failover: out of memory\n");
        series_free(&s);
        return 1;
    }
    print_timeline(r, &s);

    /* Steady state: from the first second (ramp-up left out) to the first
     * outage, both regions together (only the primary has traffic). */
    int64_t s0 = r->marks[0].at_ms > 2000 ? 1000 : r->marks[0].at_ms / 3;
    int64_t s1 = r->n_marks ? r->marks[0].at_ms : r->end_ms;
    double steady =
        s1 > s0 ? (double)(sum_ms(r->rec->ok_ms[0], s0, s1) + sum_ms(r->rec->ok_ms[1], s0, s1)) /
                      ((double)(s1 - s0) / 1000.0)
                : 0;
    char a[32], b[32], c[32];
    printf("steady state (%.1f-%.1f s): %s delivered/s for %s offered/s\n\n", (double)s0 / 1000,
           (double)s1 / 1000, bench_fmt_count(steady, a, sizeof a),
           bench_fmt_count(r->rate, b, sizeof b));
    printf("recovery (from the outage)    first in %-9s  full rate  rate after takeover    peak "
           "pending  failback  goals\n",
           r->regions[1]);
    for (size_t i = 0; i < r->n_marks; i++) {
        if (r->marks[i].kind != FO_OUTAGE && r->marks[i].kind != FO_FLIP)
            continue;
        outage o = {.start = &r->marks[i], .end = i + 1 < r->n_marks ? &r->marks[i + 1] : NULL};
        int64_t next = i + 2 < r->n_marks ? r->marks[i + 2].at_ms : s.n;
        measure(r, &s, &o, next);
        print_outage(r, &o, steady);
    }
    printf("  full rate: from the outage to the start of the first %d ms in which %s "
           "delivered\n  %.0f %% of the offered rate; rate after takeover: %s's deliveries per "
           "second from\n  then to the recovery (backlog included), against the steady state; "
           "failback: from the\n  recovery to the first event back in %s (recovery_threshold %u "
           "x %lld ms checks\n  + failback_hold %.1f s)\n\n",
           FULL_WINDOW_MS, r->regions[1], FULL_SHARE * 100, r->regions[1], r->regions[0],
           r->recovery_threshold, (long long)r->interval_ms, (double)r->failback_hold_ms / 1000);

    printf("publish to first delivery, by when the event was due to be sent   p50      p99      "
           "max\n");
    print_latency(r, "steady state", s0, s1);
    for (size_t i = 0; i < r->n_marks; i++) {
        if (r->marks[i].kind != FO_OUTAGE && r->marks[i].kind != FO_FLIP)
            continue;
        int64_t end = i + 1 < r->n_marks ? r->marks[i + 1].at_ms : r->end_ms;
        char what[96];
        snprintf(what, sizeof what, "during the outage at %.1f s (%s)",
                 (double)r->marks[i].at_ms / 1000,
                 r->marks[i].kind == FO_FLIP ? "region off" : "health checks");
        print_latency(r, what, r->marks[i].at_ms, end);
    }
    printf("\n");

    const fo_producer *p = r->prod;
    const fo_record *rec = r->rec;
    uint64_t lost = fo_count_lost(p, rec, p->sent), redelivered = 0, extra = 0, unacked_seen = 0;
    for (uint64_t n = 0; n < p->sent && n < FO_MAX_EVENTS; n++) {
        unsigned k = atomic_load_explicit(&rec->seen[n][0], memory_order_relaxed) +
                     atomic_load_explicit(&rec->seen[n][1], memory_order_relaxed);
        if (k > 1) {
            redelivered++;
            extra += k - 1;
        }
        unacked_seen += k && !p->acked[n];
    }
    printf("events: %s published, %s acked durable, %llu not acked; producer late by > 1 ms on "
           "%llu request(s) (max %.1f ms)\n",
           bench_fmt_count((double)p->sent, a, sizeof a),
           bench_fmt_count((double)p->acked_n, b, sizeof b), (unsigned long long)p->not_stored,
           (unsigned long long)p->late, p->max_late_ms);
    printf("delivered: %s in %s, %s in %s; %s refused by %s while down (evbusd retried them)\n",
           bench_fmt_count((double)atomic_load(&rec->delivered[0]), a, sizeof a), r->regions[0],
           bench_fmt_count((double)atomic_load(&rec->delivered[1]), b, sizeof b), r->regions[1],
           bench_fmt_count((double)atomic_load(&rec->refused[0]), c, sizeof c), r->regions[0]);
    if (r->drained_ms >= 0)
        printf("every acked event delivered by %.2f s (the load ended at %.2f s)\n",
               (double)r->drained_ms / 1000, (double)r->end_ms / 1000);
    else
        printf("NOT every acked event was delivered (drain stalled for 20 s)\n");
    printf("acked events lost: %llu (every acked id checked against the sink's record)\n",
           (unsigned long long)lost);
    printf("redelivered: %llu event(s), %llu extra deliveries\n", (unsigned long long)redelivered,
           (unsigned long long)extra);
    if (unacked_seen)
        printf("delivered without an ack reaching the producer: %llu\n",
               (unsigned long long)unacked_seen);
    printf("load average %s at start, %s at the end\n", loadavg_start, loadavg_end);
    series_free(&s);
    return lost;
}

int fo_write_data(const fo_run *r, const char *dir, char *err, size_t errlen) {
    series s = {0};
    char path[4096];
    if (series_build(r, &s)) {
        snprintf(err, errlen, "out of memory");
        series_free(&s);
        return -1;
    }
    snprintf(path, sizeof path, "%s/timeline.dat", dir);
    FILE *f = fopen(path, "w");
    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        series_free(&s);
        return -1;
    }
    /* Per 100 ms, as rates per second, so that the plot shows the
     * transitions sharper than the per-second table. */
    fprintf(f, "# t_s offered_per_s accepted_per_s %s_per_s %s_per_s refused_per_s pending\n",
            r->regions[0], r->regions[1]);
    for (int64_t a = 0; a + 100 <= s.n; a += 100) {
        int64_t b = a + 100;
        fprintf(f, "%.1f %llu %llu %llu %llu %llu %lld\n", (double)b / 1000,
                (unsigned long long)sum_u32(r->prod->sent_ms, a, b) * 10,
                (unsigned long long)sum_u32(r->prod->acked_ms, a, b) * 10,
                (unsigned long long)sum_ms(r->rec->ok_ms[0], a, b) * 10,
                (unsigned long long)sum_ms(r->rec->ok_ms[1], a, b) * 10,
                (unsigned long long)sum_ms(r->rec->refused_ms[0], a, b) * 10,
                (long long)pending_at(&s, b - 1));
    }
    int bad = fclose(f) != 0;
    /* The marks as gnuplot commands: a shaded band per outage, a line and
     * a label per step. */
    snprintf(path, sizeof path, "%s/marks.gp", dir);
    f = fopen(path, "w");
    if (!f || bad) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        if (f)
            fclose(f);
        series_free(&s);
        return -1;
    }
    for (size_t i = 0; i < r->n_marks; i++) {
        const fo_mark *m = &r->marks[i];
        double t = (double)m->at_ms / 1000;
        if ((m->kind == FO_OUTAGE || m->kind == FO_FLIP) && i + 1 < r->n_marks)
            fprintf(f,
                    "set object %zu rect from %.3f, graph 0 to %.3f, graph 1 behind fc rgb "
                    "\"%s\" fs solid 0.12 noborder\n",
                    i + 1, t, (double)r->marks[i + 1].at_ms / 1000,
                    m->kind == FO_FLIP ? "#9467bd" : "#d62728");
        fprintf(
            f, "set arrow %zu from %.3f, graph 0 to %.3f, graph 1 nohead dt 2 lc rgb \"#555555\"\n",
            i + 1, t, t);
        /* Alternate heights: steps close together would overwrite each other. */
        fprintf(f, "set label %zu \"%s\" at %.3f, graph %.2f left offset 0.3,0 font \",9\"\n",
                i + 1, mark_names[m->kind], t, i % 2 ? 0.92 : 0.97);
    }
    bad = fclose(f) != 0;
    series_free(&s);
    if (bad) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    return 0;
}
