#include "pace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evbus/evbus.h"
#include "load.h"

static void on_ack(void *arg, evbus_err err, const evbus_ack *a, size_t n) {
    pace_result *out = arg;
    if (err != EVBUS_OK) {
        if (!out->error[0])
            snprintf(out->error, sizeof out->error, "publish failed: %s", evbus_strerror(err));
        out->not_stored += n;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (a[i].status == EVBUS_ACK_ACCEPTED)
            out->accepted++;
        else
            out->not_stored++;
    }
}

static void sleep_ns(uint64_t ns) {
    struct timespec ts = {(time_t)(ns / 1000000000u), (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

int pace_run(const pace_opts *o, pace_result *out) {
    memset(out, 0, sizeof *out);
    evbus_client_t *c = NULL;
    evbus_event *evs = calloc(o->batch, sizeof *evs);
    char *ids = calloc(o->batch, BENCH_ID_LEN + 1);
    size_t dlen = bench_detail_len(o->event_size);
    char *detail = malloc(dlen + 1);
    bench_producer idgen = {.rng = ((uint64_t)o->nonce << 32) ^ 0x9e3779b9u};
    int rc = -1;
    if (!evs || !ids || !detail) {
        snprintf(out->error, sizeof out->error, "out of memory");
        goto out;
    }
    bench_detail_fill_stamped(detail, dlen);
    for (size_t i = 0; i < o->batch; i++) {
        evs[i].id = ids + i * (BENCH_ID_LEN + 1);
        evs[i].source = BENCH_SOURCE;
        evs[i].detail_type = BENCH_DETAIL_TYPE;
        evs[i].detail = detail;
    }
    evbus_client_opts co;
    evbus_client_opts_init(&co);
    co.max_in_flight = o->window;
    co.resend_ms = 15000;
    co.timeout_ms = 30000;
    evbus_err e = evbus_client_new(o->endpoint, &co, &c);
    if (e) {
        snprintf(out->error, sizeof out->error, "cannot open a client on %s: %s", o->endpoint,
                 evbus_strerror(e));
        goto out;
    }
    /* The schedule: request k is due at mono0 + k * interval; its stamp is
     * that time on the real-time clock, which the responder reads. */
    uint64_t mono0 = bench_now_ns(), real0 = bench_real_ns();
    double interval_ns = o->rate > 0 ? 1e9 * (double)o->batch / o->rate : 0;
    uint64_t measure_from = (uint64_t)(o->warmup_s * 1e9);
    uint64_t stop_at = measure_from + (uint64_t)(o->duration_s * 1e9);
    for (uint64_t k = 0; !bench_interrupted && !out->error[0]; k++) {
        uint64_t due = o->rate > 0 ? (uint64_t)((double)k * interval_ns) : 0;
        if (o->rate > 0 ? due >= stop_at : out->published >= o->events)
            break;
        while (evbus_client_in_flight(c) >= o->window && !bench_interrupted)
            evbus_client_poll(c, 5);
        if (o->rate > 0) {
            for (;;) {
                evbus_client_poll(c, 0);
                uint64_t now = bench_now_ns() - mono0;
                if (now >= due) {
                    double late = (double)(now - due) / 1e6;
                    if (late > out->late_ms)
                        out->late_ms = late;
                    break;
                }
                sleep_ns(due - now > 200000 ? 200000 : due - now);
            }
        }
        size_t n = o->batch;
        if (o->rate <= 0 && o->events - out->published < n)
            n = (size_t)(o->events - out->published);
        for (size_t i = 0; i < n; i++)
            bench_id_next(&idgen, (char *)evs[i].id);
        bench_detail_stamp(detail, o->rate > 0 ? real0 + due : bench_real_ns(),
                           o->rate > 0 && due >= measure_from);
        e = evbus_publish_async(c, evs, n, on_ack, out);
        if (e) {
            snprintf(out->error, sizeof out->error, "publish failed: %s", evbus_strerror(e));
            break;
        }
        out->published += n;
        evbus_client_poll(c, 0);
    }
    if (!out->error[0]) {
        e = evbus_client_flush(c, 30000);
        if (e)
            snprintf(out->error, sizeof out->error, "acks still missing at the end: %s",
                     evbus_strerror(e));
    }
    if (bench_interrupted && !out->error[0])
        snprintf(out->error, sizeof out->error, "interrupted");
    rc = out->error[0] ? -1 : 0;
out:
    evbus_client_destroy(&c);
    free(evs);
    free(ids);
    free(detail);
    return rc;
}
