/* The open-loop producer of bench/failover (failover.h): one thread, one
 * libevbus client, pipelined requests on a fixed schedule. A closed loop
 * (wait for acks, then send more) would slow down with evbusd and hide a
 * stall; a schedule keeps offering the same load through the outage, so
 * that what piles up shows as pending. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "evbus/evbus.h"
#include "failover.h"
#include "load.h"

typedef struct flight {
    fo_producer *p;
    uint64_t first; /* the number of its first event */
    size_t n;       /* 0: a free slot */
} flight;

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void bucket_add(uint32_t *b, const fo_producer *p, uint64_t t_ns, size_t n) {
    if (t_ns < p->t0_ns)
        t_ns = p->t0_ns;
    uint64_t ms = (t_ns - p->t0_ns) / 1000000u;
    if (ms < FO_MAX_MS)
        b[ms] += (uint32_t)n;
}

int fo_producer_init(fo_producer *p) {
    p->acked = calloc(FO_MAX_EVENTS, 1);
    p->sent_ms = calloc(FO_MAX_MS, sizeof *p->sent_ms);
    p->acked_ms = calloc(FO_MAX_MS, sizeof *p->acked_ms);
    if (p->acked && p->sent_ms && p->acked_ms)
        return 0;
    fo_producer_free(p);
    return -1;
}

void fo_producer_free(fo_producer *p) {
    free(p->acked);
    free(p->sent_ms);
    free(p->acked_ms);
    p->acked = NULL;
    p->sent_ms = p->acked_ms = NULL;
}

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    flight *f = arg;
    fo_producer *p = f->p;
    uint64_t now = mono_ns();
    size_t durable = 0;
    if (err == EVBUS_OK) {
        for (size_t i = 0; i < n && i < f->n; i++) {
            if (acks[i].status != EVBUS_ACK_ACCEPTED && acks[i].status != EVBUS_ACK_DUPLICATE) {
                if (p->not_stored == 0)
                    fprintf(stderr, "bench-failover: evbus answered %s: %s\n",
                            evbus_ack_status_name(acks[i].status), acks[i].reason);
                continue;
            }
            p->acked[f->first + i] = 1;
            durable++;
        }
    } else if (!p->error[0]) {
        /* Not acked, so not promised: such events are left out of the loss
         * check, and the run says how many there were. */
        snprintf(p->error, sizeof p->error, "a request failed: %s", evbus_strerror(err));
    }
    p->acked_n += durable;
    p->not_stored += f->n - durable;
    bucket_add(p->acked_ms, p, now, durable);
    f->n = 0;
}

void *fo_producer_main(void *arg) {
    fo_producer *p = arg;
    evbus_client_t *c = NULL;
    flight *slots = calloc(p->window, sizeof *slots);
    evbus_event *evs = calloc(p->batch, sizeof *evs);
    char(*ids)[48] = calloc(p->batch, sizeof *ids);
    size_t dlen = bench_detail_len(p->event_size);
    char *detail = malloc(dlen + 1);
    if (!slots || !evs || !ids || !detail) {
        snprintf(p->error, sizeof p->error, "out of memory");
        goto out;
    }
    bench_detail_fill(detail, dlen);
    for (size_t i = 0; i < p->batch; i++) {
        evs[i].id = ids[i];
        evs[i].source = BENCH_SOURCE;
        evs[i].detail_type = BENCH_DETAIL_TYPE;
        evs[i].detail = detail;
    }
    for (unsigned i = 0; i < p->window; i++)
        slots[i].p = p;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.max_in_flight = p->window;
    /* Resends would come back DUPLICATE and blur the figures; only a real
     * loss of a request should cause one. */
    o.resend_ms = 15000;
    o.timeout_ms = 30000;
    evbus_err rc = evbus_client_new(p->endpoint, &o, &c);
    if (rc) {
        snprintf(p->error, sizeof p->error, "cannot open a client on %s: %s", p->endpoint,
                 evbus_strerror(rc));
        goto out;
    }
    uint64_t total = (uint64_t)(p->rate * (double)p->end_ms / 1000.0);
    if (total > FO_MAX_EVENTS)
        total = FO_MAX_EVENTS;
    while (p->sent < total && !bench_interrupted) {
        uint64_t due = p->t0_ns + (uint64_t)((double)p->sent / p->rate * 1e9);
        uint64_t now = mono_ns();
        if (now < due) {
            /* Acks in the meantime; then sleep in short steps, so that a
             * request leaves within a fraction of a millisecond of its time. */
            evbus_client_poll(c, 0);
            now = mono_ns();
            if (now < due) {
                uint64_t wait = due - now < 200000u ? due - now : 200000u;
                struct timespec ts = {0, (long)wait};
                nanosleep(&ts, NULL);
            }
            continue;
        }
        if (evbus_client_in_flight(c) >= p->window) {
            evbus_client_poll(c, 1);
            continue;
        }
        double late = (double)(now - due) / 1e6;
        p->late += late > 1.0;
        if (late > p->max_late_ms)
            p->max_late_ms = late;
        flight *f = NULL;
        for (unsigned i = 0; i < p->window && !f; i++)
            if (slots[i].n == 0)
                f = &slots[i];
        if (!f) { /* every slot taken: acks are due first */
            evbus_client_poll(c, 1);
            continue;
        }
        size_t n = total - p->sent < p->batch ? (size_t)(total - p->sent) : p->batch;
        for (size_t i = 0; i < n; i++)
            snprintf(ids[i], sizeof ids[i], "fo-%08x-%llu", p->nonce,
                     (unsigned long long)(p->sent + i));
        f->first = p->sent;
        f->n = n;
        rc = evbus_publish_async(c, evs, n, on_ack, f);
        if (rc) {
            f->n = 0;
            snprintf(p->error, sizeof p->error, "publish failed: %s", evbus_strerror(rc));
            break;
        }
        bucket_add(p->sent_ms, p, now, n);
        p->sent += n;
    }
    evbus_client_flush(c, 30000);
out:
    evbus_client_destroy(&c);
    free(slots);
    free(evs);
    free(ids);
    free(detail);
    return NULL;
}
