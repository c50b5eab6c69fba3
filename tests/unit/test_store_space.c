/* A store short of space keeps working: a map filled by ingest still
 * records delivery results and deletes delivered entries (headroom ingest
 * may not use), and accepts events again once they are gone. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static char dir[64];
static evbus__store *store;
static char err[1024];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/evbus-space-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(evbus__store_open(dir, 1 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
    evbus__store_set_retention(store, 0, 1);
}

static void teardown(void) {
    evbus__store_close(&store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store_space, .init = setup, .fini = teardown, .timeout = 60);

#define BATCH 20

static const uint32_t to_target0 = 0;

/* Appends BATCH events of `size` bytes routed to target 0, ids from *next
 * on; stored sequences are added to seqs. Returns how many were refused as
 * FULL. */
static size_t append_batch(size_t size, int *next, uint64_t *seqs, size_t *n_seqs) {
    static char rec[8192];
    static char ids[BATCH][32];
    memset(rec, 'r', sizeof rec);
    evbus__store_item items[BATCH];
    for (int i = 0; i < BATCH; i++) {
        snprintf(ids[i], sizeof ids[i], "ev-%d", (*next)++);
        items[i] = (evbus__store_item){.id = ids[i],
                                       .id_len = strlen(ids[i]),
                                       .record = rec,
                                       .record_len = size,
                                       .targets = &to_target0,
                                       .n_targets = 1};
    }
    cr_assert_eq(evbus__store_append(store, items, BATCH, NULL, 1000, 0, 0), EVBUS_OK);
    size_t full = 0;
    for (int i = 0; i < BATCH; i++) {
        if (items[i].outcome == EVBUS__STORED)
            seqs[(*n_seqs)++] = items[i].seq;
        else
            full += items[i].outcome == EVBUS__FULL;
    }
    return full;
}

ParameterizedTestParameters(store_space, full_map_drains_and_accepts_again) {
    /* Small events packed on leaf pages, events just under and well over
     * the size that takes an overflow page of their own. */
    static size_t sizes[] = {100, 1500, 5000};
    return cr_make_param_array(size_t, sizes, sizeof sizes / sizeof sizes[0]);
}

ParameterizedTest(size_t *size, store_space, full_map_drains_and_accepts_again) {
    static uint64_t seqs[20000];
    size_t n_seqs = 0;
    int next = 0;
    /* Fill until events are refused, then a few batches more: a full store
     * must stay full without eating into what results need. */
    int extra = 5;
    for (int rounds = 0; rounds < 2000 && extra > 0; rounds++)
        if (append_batch(*size, &next, seqs, &n_seqs) > 0)
            extra--;
    cr_assert_eq(extra, 0, "1 MiB never filled up");
    cr_assert_gt(n_seqs, 10);

    /* Every stored event delivered, in one commit. */
    evbus__store_result *res = calloc(n_seqs, sizeof *res);
    for (size_t i = 0; i < n_seqs; i++)
        res[i] = (evbus__store_result){.target = 0, .seq = seqs[i], .outcome = EVBUS__DELIVERED};
    evbus__store_results r = {res, n_seqs, 1, 0, false};
    cr_assert_eq(evbus__store_append(store, NULL, 0, &r, 2000, 0, 0), EVBUS_OK);
    cr_assert_eq(r.n_recorded, n_seqs, "only %zu of %zu results recorded", r.n_recorded, n_seqs);
    free(res);
    evbus__store_stats st;
    cr_assert_eq(evbus__store_stats_get(store, &st), EVBUS_OK);
    cr_assert_eq(st.pending, 0);
    cr_assert_eq(st.events, 0, "delivered events leave the store");

    /* And ingest accepts again, by itself. */
    size_t before = n_seqs;
    cr_assert_eq(append_batch(*size, &next, seqs, &n_seqs), 0);
    cr_assert_eq(n_seqs, before + BATCH);
}

/* Results that move entries to the dead-letter store grow it; they still
 * commit into the headroom, in parts if need be. */
Test(store_space, full_map_still_records_dead_letters) {
    static uint64_t seqs[20000];
    size_t n_seqs = 0;
    int next = 0;
    while (append_batch(1500, &next, seqs, &n_seqs) == 0)
        cr_assert_lt(next, 20000, "1 MiB never filled up");
    size_t n = n_seqs < 40 ? n_seqs : 40;
    evbus__store_result res[40];
    for (size_t i = 0; i < n; i++)
        res[i] = (evbus__store_result){.target = 0,
                                       .seq = seqs[i],
                                       .outcome = EVBUS__DEAD,
                                       .attempts = 8,
                                       .reason = "Throttled: a reason of some length, as sinks "
                                                 "give them, naming what went wrong"};
    evbus__store_results r = {res, n, 1, 0, false};
    cr_assert_eq(evbus__store_append(store, NULL, 0, &r, 2000, 0, 0), EVBUS_OK);
    cr_assert_eq(r.n_recorded, n);
}
