/* One evbus producer: its own client (a client belongs to one thread), a
 * bounded window of pipelined requests, and a latency sample per request. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evbus/evbus.h"
#include "load.h"
#include "proc.h"

/* One request in flight: when it was handed to the client (open loop: when
 * it was scheduled); n == 0 marks a free slot. */
typedef struct flight {
    bench_producer *p;
    uint64_t t0;
    size_t n;
    /* Open loop: whether it was scheduled in the measured interval; -1 in a
     * closed loop, where what counts is an ack during that interval. */
    int measured;
} flight;

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    flight *f = arg;
    bench_producer *p = f->p;
    uint64_t t = bench_now_ns();
    size_t durable = 0;
    if (err == EVBUS_OK) {
        for (size_t i = 0; i < n; i++) {
            durable +=
                acks[i].status == EVBUS_ACK_ACCEPTED || acks[i].status == EVBUS_ACK_DUPLICATE;
            p->accepted += acks[i].status == EVBUS_ACK_ACCEPTED;
        }
        if (durable < n && p->not_stored == 0) {
            for (size_t i = 0; i < n; i++)
                if (acks[i].status != EVBUS_ACK_ACCEPTED && acks[i].status != EVBUS_ACK_DUPLICATE) {
                    /* Not a failure of the run (backpressure is a valid
                     * answer), but worth showing under the table. */
                    fprintf(stderr, "%s: evbus answered %s: %s\n", bench_name,
                            evbus_ack_status_name(acks[i].status), acks[i].reason);
                    break;
                }
        }
    } else if (!p->error[0]) {
        snprintf(p->error, sizeof p->error, "request failed: %s", evbus_strerror(err));
    }
    p->not_stored += f->n - durable;
    p->durable += durable;
    int measuring = atomic_load_explicit(p->phase, memory_order_relaxed) == PHASE_MEASURE;
    if (measuring && durable == f->n)
        p->acked += durable;
    if (durable == f->n && (f->measured < 0 ? measuring : f->measured))
        bench_lat_add(&p->lat, t - f->t0);
    f->n = 0; /* the slot is free again */
}

void *bench_evbus_producer(void *arg) {
    bench_producer *p = arg;
    const bench_load *ld = p->load;
    evbus_client_t *c = NULL;
    flight *slots = calloc(ld->window, sizeof *slots);
    evbus_event *evs = calloc(ld->batch, sizeof *evs);
    char *ids = calloc(ld->batch, BENCH_ID_LEN + 1);
    size_t dlen = bench_detail_len(ld->event_size);
    char *detail = malloc(dlen + 1);
    if (!slots || !evs || !ids || !detail) {
        snprintf(p->error, sizeof p->error, "out of memory");
        goto out;
    }
    if (ld->stamp)
        bench_detail_fill_stamped(detail, dlen);
    else
        bench_detail_fill(detail, dlen);
    for (size_t i = 0; i < ld->batch; i++) {
        evs[i].id = ids + i * (BENCH_ID_LEN + 1);
        evs[i].source = BENCH_SOURCE;
        evs[i].detail_type = BENCH_DETAIL_TYPE;
        evs[i].detail = detail;
    }
    for (unsigned i = 0; i < ld->window; i++)
        slots[i].p = p;

    evbus_client_opts o;
    evbus_client_opts_init(&o);
    /* The window is kept by this loop, not by the client, so that a publish
     * call never waits inside and its start time is its send time. */
    o.max_in_flight = ld->window;
    /* A resend under load would turn into DUPLICATE acks and count work
     * twice; a generous resend interval keeps it to real losses. */
    o.resend_ms = 15000;
    o.timeout_ms = 30000;
    if (ld->curve) {
        o.curve_server_key = ld->curve->server;
        o.curve_public_key = ld->curve->pub;
        o.curve_secret_key = ld->curve->sec;
    }
    if (ld->n_endpoints) {
        o.endpoints = ld->endpoints;
        o.n_endpoints = ld->n_endpoints;
        o.policy = EVBUS_ROUTER_SPREAD;
    }
    evbus_err rc = evbus_client_new(ld->n_endpoints ? NULL : ld->endpoint, &o, &c);
    if (rc) {
        snprintf(p->error, sizeof p->error, "cannot open client on %s%s: %s",
                 ld->n_endpoints ? ld->endpoints[0] : ld->endpoint,
                 ld->n_endpoints > 1 ? " and others" : "", evbus_strerror(rc));
        goto out;
    }
    atomic_store(&p->ready, 1);
    while (atomic_load(p->phase) == PHASE_SETUP && !bench_interrupted) {
        struct timespec ts = {0, 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    bench_schedule sched = {0};
    if (ld->rate > 0)
        bench_schedule_start(&sched, p);

    while (atomic_load_explicit(p->phase, memory_order_relaxed) != PHASE_STOP &&
           !bench_interrupted && !p->error[0]) {
        uint64_t wait = ld->rate > 0 ? bench_schedule_wait_ns(&sched) : 0;
        if (wait > 2000000) {
            /* Acks are timed as they arrive while the next request waits. */
            rc = evbus_client_poll(c, (int)(wait / 1000000) - 1);
            if (rc) {
                snprintf(p->error, sizeof p->error, "poll failed: %s", evbus_strerror(rc));
                break;
            }
            continue;
        }
        if (wait) {
            evbus_client_poll(c, 0);
            bench_schedule_nap(&sched, 100000);
            continue;
        }
        if (evbus_client_in_flight(c) >= ld->window) {
            rc = evbus_client_poll(c, 20);
            if (rc) {
                snprintf(p->error, sizeof p->error, "poll failed: %s", evbus_strerror(rc));
                break;
            }
            continue;
        }
        if (ld->rate <= 0 && ld->max_undelivered &&
            atomic_load_explicit(ld->published, memory_order_relaxed) -
                    atomic_load_explicit(ld->delivered, memory_order_relaxed) >
                ld->max_undelivered) {
            /* Acks keep being timed while the sink catches up. */
            rc = evbus_client_poll(c, 1);
            if (rc) {
                snprintf(p->error, sizeof p->error, "poll failed: %s", evbus_strerror(rc));
                break;
            }
            continue;
        }
        flight *f = NULL;
        for (unsigned i = 0; i < ld->window && !f; i++)
            if (slots[i].n == 0)
                f = &slots[i];
        if (!f) {
            snprintf(p->error, sizeof p->error, "internal: no free request slot");
            break;
        }
        for (size_t i = 0; i < ld->batch; i++)
            bench_id_next(p, (char *)evs[i].id);
        f->n = ld->batch;
        int phase = atomic_load_explicit(p->phase, memory_order_relaxed);
        uint64_t now = bench_now_ns();
        f->t0 = ld->rate > 0 ? bench_schedule_take(&sched) : now;
        f->measured = ld->rate > 0 ? phase == PHASE_MEASURE : -1;
        /* One stamp per request: its events are sent together, and the
         * client copies the detail before publish returns. Open loop: the
         * scheduled time, on the clock the receiver reads. */
        if (ld->stamp)
            bench_detail_stamp(detail, bench_real_ns() - (now - f->t0), phase == PHASE_MEASURE);
        if (ld->published)
            atomic_fetch_add_explicit(ld->published, ld->batch, memory_order_relaxed);
        rc = evbus_publish_async(c, evs, ld->batch, on_ack, f);
        if (rc) {
            snprintf(p->error, sizeof p->error, "publish failed: %s", evbus_strerror(rc));
            break;
        }
        /* Run callbacks for acks already here, so that an ack is timed when
         * it arrives rather than when the window next fills. */
        evbus_client_poll(c, 0);
    }
    if (c && !p->error[0]) {
        rc = evbus_client_flush(c, 20000);
        if (rc && !p->error[0])
            snprintf(p->error, sizeof p->error, "acks still missing at the end: %s",
                     evbus_strerror(rc));
    }
out:
    if (p->error[0])
        atomic_store(&p->ready, -1);
    evbus_client_destroy(&c);
    free(slots);
    free(evs);
    free(ids);
    free(detail);
    return NULL;
}

int bench_evbusd_wait_ready(const char *endpoint, const char *source, pid_t *pid, int *status,
                            int limit_ms, char *err, size_t errlen) {
    return bench_evbusd_wait_ready_curve(endpoint, source, NULL, pid, status, limit_ms, err,
                                         errlen);
}

int bench_evbusd_wait_ready_curve(const char *endpoint, const char *source,
                                  const bench_curve *curve, pid_t *pid, int *status, int limit_ms,
                                  char *err, size_t errlen) {
    evbus_client_opts co;
    evbus_client_opts_init(&co);
    co.timeout_ms = 500;
    co.resend_ms = 250;
    if (curve) {
        co.curve_server_key = curve->server;
        co.curve_public_key = curve->pub;
        co.curve_secret_key = curve->sec;
    }
    evbus_client_t *c = NULL;
    evbus_err rc = evbus_client_new(endpoint, &co, &c);
    if (rc) {
        snprintf(err, errlen, "cannot open a client on %s: %s", endpoint, evbus_strerror(rc));
        return -1;
    }
    evbus_event e = {.source = source, .detail_type = BENCH_DETAIL_TYPE, .detail = "{}"};
    evbus_ack ack;
    int ret = -1;
    uint64_t deadline = bench_now_ns() + (uint64_t)limit_ms * 1000000u;
    while (!bench_interrupted) {
        if (*pid && !bench_alive(*pid, status))
            *pid = 0;
        if (!*pid) {
            snprintf(err, errlen, "evbusd exited during start-up");
            break;
        }
        if (evbus_publish(c, &e, 1, &ack) == EVBUS_OK && ack.status == EVBUS_ACK_ACCEPTED) {
            ret = 0;
            break;
        }
        if (bench_now_ns() > deadline) {
            snprintf(err, errlen, "evbusd did not accept an event within %d ms", limit_ms);
            break;
        }
    }
    evbus_client_destroy(&c);
    return ret;
}
