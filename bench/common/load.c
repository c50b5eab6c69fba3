/* The clock of one load and the small helpers every producer shares. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "load.h"

uint64_t bench_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

uint64_t bench_real_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_schedule_start(bench_schedule *s, const bench_producer *p) {
    const bench_load *ld = p->load;
    double interval = (double)ld->batch * ld->producers / ld->rate * 1e9;
    s->interval_ns = interval < 1 ? 1 : (uint64_t)interval;
    s->next_ns = bench_now_ns() + s->interval_ns * p->index / ld->producers;
    /* The default slack (50 us) would add up to that much to every short
     * wait, and the schedule is finer than that at high rates. */
    prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
}

uint64_t bench_schedule_wait_ns(const bench_schedule *s) {
    uint64_t now = bench_now_ns();
    return s->next_ns > now ? s->next_ns - now : 0;
}

uint64_t bench_schedule_take(bench_schedule *s) {
    uint64_t due = s->next_ns;
    s->next_ns += s->interval_ns;
    return due;
}

void bench_schedule_nap(const bench_schedule *s, uint64_t max_ns) {
    uint64_t ns = bench_schedule_wait_ns(s);
    if (ns > max_ns)
        ns = max_ns;
    if (ns == 0)
        return;
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

size_t bench_detail_len(size_t event_size) {
    return event_size - (BENCH_ID_LEN + strlen(BENCH_SOURCE) + strlen(BENCH_DETAIL_TYPE));
}

void bench_detail_fill(char *buf, size_t len) {
    /* A JSON object with one string member, padded with varied letters so
     * that neither server gets an unrealistically compressible value. */
    static const char head[] = "{\"pad\":\"";
    size_t pad = len - (sizeof head - 1) - 2;
    memcpy(buf, head, sizeof head - 1);
    for (size_t i = 0; i < pad; i++)
        buf[sizeof head - 1 + i] = (char)('a' + (i * 7 + i / 26) % 26);
    memcpy(buf + sizeof head - 1 + pad, "\"}", 3);
}

void bench_detail_fill_stamped(char *buf, size_t len) {
    /* The padded object goes after the stamp; its '{' becomes the ',' that
     * separates the stamp from the padding. */
    bench_detail_fill(buf + BENCH_STAMP_LEN, len - BENCH_STAMP_LEN);
    memcpy(buf, "{\"t\":0000000000000000000,\"m\":0", BENCH_STAMP_LEN);
    buf[BENCH_STAMP_LEN] = ',';
}

void bench_detail_stamp(char *buf, uint64_t t_ns, int measured) {
    /* Fixed width, so the detail keeps its length and needs no re-layout;
     * 19 digits hold CLOCK_REALTIME nanoseconds until the year 2286. */
    char *digits = buf + 5;
    for (int i = 18; i >= 0; i--) {
        digits[i] = (char)('0' + t_ns % 10);
        t_ns /= 10;
    }
    buf[BENCH_STAMP_LEN - 1] = measured ? '1' : '0';
}

/* splitmix64: cheap and good enough to make ids that land all over the
 * servers' indexes, like the random UUIDs real producers send. */
static uint64_t next_random(uint64_t *state) {
    uint64_t z = (*state += 0x9e3779b97f4a7c15u);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
    return z ^ (z >> 31);
}

void bench_id_next(bench_producer *p, char *out) {
    static const char hex[] = "0123456789abcdef";
    uint64_t a = next_random(&p->rng), b = next_random(&p->rng);
    int bit = 0;
    for (int i = 0; i < BENCH_ID_LEN; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23) {
            out[i] = '-';
            continue;
        }
        uint64_t *src = bit < 64 ? &a : &b;
        out[i] = hex[(*src >> (bit % 64)) & 15];
        bit += 4;
    }
}

void bench_lat_add(bench_lat *l, uint64_t ns) {
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 4096;
        uint32_t *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return;
        l->v = v;
        l->cap = cap;
    }
    uint64_t us = ns / 1000;
    l->v[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

double bench_lat_quantile_ms(bench_lat *l, double q) {
    if (l->n == 0)
        return 0;
    qsort(l->v, l->n, sizeof *l->v, cmp_u32);
    size_t rank = (size_t)(q * (double)l->n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > l->n)
        rank = l->n;
    return l->v[rank - 1] / 1000.0;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double bench_median(double *v, size_t n) {
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static int any_failed(bench_producer *ps, unsigned n) {
    for (unsigned i = 0; i < n; i++)
        if (atomic_load(&ps[i].ready) < 0)
            return 1;
    return 0;
}

/* Sleeps up to `seconds`, waking early when the user interrupts or a producer
 * fails, so that a dead server does not cost the rest of the interval. */
static void wait_phase(bench_producer *ps, unsigned n, double seconds) {
    uint64_t until = bench_now_ns() + (uint64_t)(seconds * 1e9);
    while (!bench_interrupted && !any_failed(ps, n) && bench_now_ns() < until) {
        struct timespec ts = {0, 5 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
}

int bench_load_run(const bench_load *load, bench_producer_fn fn, bench_result *out) {
    memset(out, 0, sizeof *out);
    _Atomic int phase = PHASE_SETUP;
    bench_producer *ps = calloc(load->producers, sizeof *ps);
    pthread_t *th = calloc(load->producers, sizeof *th);
    bench_lat all = {0};
    unsigned started = 0;
    int rc = -1;
    if (!ps || !th) {
        snprintf(out->error, sizeof out->error, "out of memory");
        goto out;
    }
    for (unsigned i = 0; i < load->producers; i++) {
        ps[i].load = load;
        ps[i].phase = &phase;
        ps[i].index = i;
        ps[i].rng = ((uint64_t)load->nonce << 32) ^ ((uint64_t)i << 56) ^ 0x5bd1e995u;
        int e = pthread_create(&th[i], NULL, fn, &ps[i]);
        if (e) {
            snprintf(out->error, sizeof out->error, "cannot start producer thread: %s",
                     strerror(e));
            break;
        }
        started++;
    }
    /* Start the clock only once every producer is connected, so that
     * connection set-up is not part of any figure. */
    uint64_t deadline = bench_now_ns() + 15ull * 1000000000u;
    for (unsigned i = 0; i < started && !bench_interrupted;) {
        int r = atomic_load(&ps[i].ready);
        if (r < 0 || bench_now_ns() > deadline)
            break;
        if (r > 0) {
            i++;
            continue;
        }
        struct timespec ts = {0, 2 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    atomic_store(&phase, PHASE_WARMUP);
    wait_phase(ps, started, load->warmup_s);
    uint64_t t0 = bench_now_ns();
    atomic_store(&phase, PHASE_MEASURE);
    wait_phase(ps, started, load->duration_s);
    uint64_t t1 = bench_now_ns();
    atomic_store(&phase, PHASE_STOP);
    for (unsigned i = 0; i < started; i++)
        pthread_join(th[i], NULL);

    for (unsigned i = 0; i < started; i++) {
        bench_producer *p = &ps[i];
        out->acked += p->acked;
        out->durable += p->durable;
        out->accepted += p->accepted;
        out->not_stored += p->not_stored;
        if (p->error[0] && !out->error[0])
            snprintf(out->error, sizeof out->error, "producer %u: %s", i, p->error);
        for (size_t j = 0; j < p->lat.n; j++) {
            uint64_t us = p->lat.v[j];
            bench_lat_add(&all, us * 1000);
        }
    }
    if (!out->error[0] && bench_interrupted)
        snprintf(out->error, sizeof out->error, "interrupted");
    if (!out->error[0] && started == load->producers) {
        if (out->acked == 0) {
            snprintf(out->error, sizeof out->error, "no event was acked in the measured interval");
        } else {
            out->events_per_s = (double)out->acked / ((double)(t1 - t0) / 1e9);
            out->p50_ms = bench_lat_quantile_ms(&all, 0.50);
            out->p99_ms = bench_lat_quantile_ms(&all, 0.99);
            out->p999_ms = bench_lat_quantile_ms(&all, 0.999);
            rc = 0;
        }
    }
out:
    for (unsigned i = 0; ps && i < load->producers; i++)
        free(ps[i].lat.v);
    free(all.v);
    free(ps);
    free(th);
    return rc;
}

volatile sig_atomic_t bench_interrupted;

static void on_signal(int sig) {
    (void)sig;
    bench_interrupted = 1;
}

void bench_catch_signals(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}
