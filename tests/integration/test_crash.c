/* kill -9 at any instant loses nothing that was acked: producers publish
 * continuously while the daemon is killed and restarted several times; then
 * every acked event id must be in the store exactly once. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus.pb-c.h"
#include "evbus/evbus.h"
#include "harness.h"
#include "store.h"

#define PRODUCERS 3
#define BATCH     20
#define MAX_ACKED 400000
#define KILLS     4

typedef struct producer {
    int index;
    const char *endpoint;
    unsigned long next; /* next event number to publish */
    char (*acked)[24];  /* ids acked ACCEPTED or DUPLICATE */
    size_t n_acked;
    unsigned long errors; /* requests that timed out (resent later by us) */
} producer;

static harness h;
static atomic_int stop_producing;
static atomic_ulong total_acked;

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    producer *p = arg;
    if (err != EVBUS_OK) {
        p->errors++;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        if (acks[i].status != EVBUS_ACK_ACCEPTED && acks[i].status != EVBUS_ACK_DUPLICATE)
            continue;
        if (p->n_acked < MAX_ACKED)
            snprintf(p->acked[p->n_acked++], 24, "%s", acks[i].event_id);
    }
    atomic_fetch_add(&total_acked, n);
}

static void *produce(void *arg) {
    producer *p = arg;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.max_in_flight = 8;
    o.resend_ms = 300;
    o.timeout_ms = 60000;
    evbus_client_t *c;
    if (evbus_client_new(p->endpoint, &o, &c) != EVBUS_OK)
        return NULL;
    char ids[BATCH][24];
    evbus_event evs[BATCH];
    while (!atomic_load(&stop_producing) && p->n_acked + BATCH < MAX_ACKED) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(ids[i], sizeof ids[i], "p%d-%lu", p->index, p->next++);
            evs[i] = (evbus_event){.id = ids[i],
                                   .source = "crash.test",
                                   .detail_type = "Tick",
                                   .detail = "{\"payload\":\"0123456789abcdef0123456789\"}"};
        }
        if (evbus_publish_async(c, evs, BATCH, on_ack, p) != EVBUS_OK)
            p->errors++;
    }
    evbus_client_flush(c, -1);
    evbus_client_destroy(&c);
    return NULL;
}

static void wait_for_progress(unsigned long more) {
    unsigned long target = atomic_load(&total_acked) + more;
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (atomic_load(&total_acked) >= target)
            return;
        clock_gettime(CLOCK_MONOTONIC, &now);
        cr_assert_lt(now.tv_sec - start.tv_sec, 30, "no progress: producers stalled");
        usleep(2000);
    }
}

typedef struct seen {
    char **ids;
    size_t n, cap;
} seen;

static int collect(void *arg, uint64_t seq, const void *rec, size_t len) {
    (void)seq;
    seen *s = arg;
    Evbus__V1__Event *ev = evbus__v1__event__unpack(NULL, len, rec);
    cr_assert_not_null(ev, "stored record %llu does not decode", (unsigned long long)seq);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
    }
    s->ids[s->n++] = strdup(ev->id);
    evbus__v1__event__free_unpacked(ev, NULL);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static void cleanup(void) {
    harness_cleanup(&h);
}

Test(crash, kill9_during_publishing_loses_no_acked_event, .fini = cleanup, .timeout = 240) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h));
    producer ps[PRODUCERS];
    pthread_t threads[PRODUCERS];
    for (int i = 0; i < PRODUCERS; i++) {
        ps[i] = (producer){.index = i, .endpoint = h.endpoint};
        ps[i].acked = calloc(MAX_ACKED, sizeof *ps[i].acked);
        cr_assert_not_null(ps[i].acked);
        pthread_create(&threads[i], NULL, produce, &ps[i]);
    }
    srand((unsigned)time(NULL));
    for (int k = 0; k < KILLS; k++) {
        wait_for_progress(2000 + (unsigned long)(rand() % 3000));
        usleep((useconds_t)(rand() % 20000)); /* land at a random point of a commit */
        harness_kill9(&h);
        cr_assert(harness_start(&h), "restart %d failed", k + 1);
    }
    wait_for_progress(2000);
    atomic_store(&stop_producing, 1);
    for (int i = 0; i < PRODUCERS; i++)
        pthread_join(threads[i], NULL);
    cr_assert_eq(harness_stop(&h), 0);

    evbus__store *store;
    char err[512], data[300];
    snprintf(data, sizeof data, "%s/data", h.dir);
    cr_assert_eq(evbus__store_open(data, 256 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
    seen s = {0};
    evbus__store_foreach_event(store, collect, &s);
    evbus__store_close(&store);
    qsort(s.ids, s.n, sizeof *s.ids, cmp_str);
    for (size_t i = 1; i < s.n; i++)
        cr_assert_str_neq(s.ids[i - 1], s.ids[i], "event %s stored twice", s.ids[i]);

    size_t acked = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        for (size_t j = 0; j < ps[i].n_acked; j++) {
            const char *id = ps[i].acked[j];
            cr_assert_not_null(bsearch(&id, s.ids, s.n, sizeof *s.ids, cmp_str),
                               "acked event %s is missing after kill -9", id);
        }
        acked += ps[i].n_acked;
        free(ps[i].acked);
    }
    cr_assert_gt(acked, 10000, "too few events to mean anything: %zu", acked);
    cr_log_info("%zu acked events, %zu stored, %d kills: none lost, none twice", acked, s.n, KILLS);
    for (size_t i = 0; i < s.n; i++)
        free(s.ids[i]);
    free(s.ids);
}
