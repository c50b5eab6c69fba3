/* The LMDB store: group commit outcomes, persistence, the directory lock, a
 * full map and the dedup window. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store.h"

static char dir[64];
static evbus__store *store;
static char err[1024];

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/evbus-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(evbus__store_open(dir, 64 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
}

static void teardown(void) {
    evbus__store_close(&store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 30);

static evbus__store_item item(const char *id, const char *rec) {
    evbus__store_item it = {0};
    it.id = id;
    it.id_len = strlen(id);
    it.record = rec;
    it.record_len = strlen(rec);
    return it;
}

Test(store, append_assigns_sequences_and_deduplicates) {
    evbus__store_item items[4] = {item("a", "ra"), item("b", "rb"), item("a", "again"),
                                  item("c", "rc")};
    cr_assert_eq(evbus__store_append(store, items, 4, NULL, 1000, 0, 0), EVBUS_OK);
    cr_assert_eq(items[0].outcome, EVBUS__STORED);
    cr_assert_eq(items[0].seq, 1);
    cr_assert_eq(items[1].seq, 2);
    cr_assert_eq(items[2].outcome, EVBUS__DUPLICATE, "same id later in the same batch");
    cr_assert_eq(items[2].seq, 1);
    cr_assert_eq(items[3].seq, 3);

    evbus__store_item again = item("b", "x");
    cr_assert_eq(evbus__store_append(store, &again, 1, NULL, 1000, 0, 0), EVBUS_OK);
    cr_assert_eq(again.outcome, EVBUS__DUPLICATE);
    cr_assert_eq(again.seq, 2);
}

static int collect(void *arg, uint64_t seq, const void *rec, size_t len) {
    char *out = arg;
    char line[64];
    snprintf(line, sizeof line, "%llu=%.*s;", (unsigned long long)seq, (int)len, (const char *)rec);
    strcat(out, line);
    return 0;
}

Test(store, survives_reopen_and_continues_sequence) {
    evbus__store_item items[2] = {item("a", "ra"), item("b", "rb")};
    cr_assert_eq(evbus__store_append(store, items, 2, NULL, 1000, 0, 0), EVBUS_OK);
    evbus__store_close(&store);
    cr_assert_null(store, "close NULLs the pointer");
    cr_assert_eq(evbus__store_open(dir, 64 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
    char seen[256] = "";
    cr_assert_eq(evbus__store_foreach_event(store, collect, seen), EVBUS_OK);
    cr_assert_str_eq(seen, "1=ra;2=rb;");
    evbus__store_item c = item("c", "rc");
    cr_assert_eq(evbus__store_append(store, &c, 1, NULL, 1000, 0, 0), EVBUS_OK);
    cr_assert_eq(c.seq, 3);
    evbus__store_item a = item("a", "dup");
    cr_assert_eq(evbus__store_append(store, &a, 1, NULL, 1000, 0, 0), EVBUS_OK);
    cr_assert_eq(a.outcome, EVBUS__DUPLICATE, "dedup survives a reopen");
}

Test(store, second_open_of_a_directory_is_refused) {
    evbus__store *other = NULL;
    cr_assert_eq(evbus__store_open(dir, 64 << 20, &other, err, sizeof err), EVBUS_EBUSY);
    cr_assert_null(other);
    cr_assert(strstr(err, "is in use by another evbusd (pid "), "%s", err);
}

Test(store, full_map_commits_what_fits_and_keeps_earlier_events) {
    /* A separate, tiny store. */
    evbus__store_close(&store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'/*", dir);
    cr_assert_eq(system(cmd), 0);
    cr_assert_eq(evbus__store_open(dir, 1 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
    /* Each event is pending for a target: still needed, so a full store
     * keeps it (a record no target needs may be removed to make room). */
    evbus__store_set_retention(store, 0, 1);
    static const uint32_t target0 = 0;
    static char rec[4000];
    memset(rec, 'r', sizeof rec - 1);
    char ids[400][16];
    evbus__store_item items[400];
    for (int i = 0; i < 400; i++) {
        snprintf(ids[i], sizeof ids[i], "id-%d", i);
        items[i] = item(ids[i], rec);
        items[i].targets = &target0;
        items[i].n_targets = 1;
    }
    cr_assert_eq(evbus__store_append(store, items, 400, NULL, 1000, 0, 0), EVBUS_OK);
    int stored = 0, full = 0;
    for (int i = 0; i < 400; i++) {
        if (items[i].outcome == EVBUS__STORED)
            cr_assert_eq(full, 0, "stored items form a prefix");
        stored += items[i].outcome == EVBUS__STORED;
        full += items[i].outcome == EVBUS__FULL;
    }
    cr_assert_gt(stored, 0);
    cr_assert_gt(full, 0, "1 MiB cannot hold 1.6 MB of records");
    cr_assert_eq(stored + full, 400);
    /* Halving may leave room for a few more: fill it one by one until even a
     * single event no longer fits; then it stays full, with no crash. */
    int extra = 0;
    for (int i = 0; i < 400; i++) {
        char id[16];
        snprintf(id, sizeof id, "more-%d", i);
        evbus__store_item more = item(id, rec);
        more.targets = &target0;
        more.n_targets = 1;
        cr_assert_eq(evbus__store_append(store, &more, 1, NULL, 1000, 0, 0), EVBUS_OK);
        if (more.outcome == EVBUS__FULL)
            break;
        cr_assert_eq(more.outcome, EVBUS__STORED);
        extra++;
    }
    cr_assert_lt(extra, 400, "the map never filled up");
    stored += extra;
    evbus__store_item last = item("last", rec);
    last.targets = &target0;
    last.n_targets = 1;
    cr_assert_eq(evbus__store_append(store, &last, 1, NULL, 1000, 0, 0), EVBUS_OK);
    cr_assert_eq(last.outcome, EVBUS__FULL);
    evbus__store_stats st;
    cr_assert_eq(evbus__store_stats_get(store, &st), EVBUS_OK);
    cr_assert_eq(st.events, (uint64_t)stored);
}

Test(store, backlog_limit_turns_new_events_away) {
    evbus__store_item items[3] = {item("a", "1"), item("b", "2"), item("c", "3")};
    cr_assert_eq(evbus__store_append(store, items, 3, NULL, 1000, 0, 2), EVBUS_OK);
    cr_assert_eq(items[0].outcome, EVBUS__STORED);
    cr_assert_eq(items[1].outcome, EVBUS__STORED);
    cr_assert_eq(items[2].outcome, EVBUS__BACKLOG);
    evbus__store_item dup = item("a", "1");
    cr_assert_eq(evbus__store_append(store, &dup, 1, NULL, 1000, 0, 2), EVBUS_OK);
    cr_assert_eq(dup.outcome, EVBUS__DUPLICATE, "duplicates are still answered at the limit");
}

Test(store, ids_are_forgotten_after_the_dedup_window) {
    evbus__store_item a = item("old", "1");
    cr_assert_eq(evbus__store_append(store, &a, 1, NULL, 1000, 0, 0), EVBUS_OK);
    evbus__store_item b = item("new", "2");
    cr_assert_eq(evbus__store_append(store, &b, 1, NULL, 5000, 2000, 0), EVBUS_OK);
    evbus__store_stats st;
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.ids, 1, "'old' (accepted at 1000) expired before 2000");
    evbus__store_item again = item("old", "3");
    cr_assert_eq(evbus__store_append(store, &again, 1, NULL, 6000, 2000, 0), EVBUS_OK);
    cr_assert_eq(again.outcome, EVBUS__STORED, "an expired id is new again");
    cr_assert_eq(again.seq, 3);
    evbus__store_item newer = item("new", "4");
    cr_assert_eq(evbus__store_append(store, &newer, 1, NULL, 6000, 2000, 0), EVBUS_OK);
    cr_assert_eq(newer.outcome, EVBUS__DUPLICATE);
}

static int first_seq(void *arg, uint64_t seq, const void *rec, size_t len) {
    (void)rec;
    (void)len;
    *(uint64_t *)arg = seq;
    return 1;
}

Test(store, retention_keeps_delivered_events_until_their_time_is_up) {
    evbus__store_set_retention(store, 1000, 1);
    static const uint32_t to_target0 = 0;
    /* A record with accepted_ms (field 15) = 1000, as ingest writes it. */
    static const unsigned char rec[] = {0x0a, 0x01, 'x', 0x78, 0xe8, 0x07};
    evbus__store_item a = {.id = "r1",
                           .id_len = 2,
                           .record = rec,
                           .record_len = sizeof rec,
                           .targets = &to_target0,
                           .n_targets = 1};
    cr_assert_eq(evbus__store_append(store, &a, 1, NULL, 1000, 0, 0), EVBUS_OK);
    evbus__store_result done = {.target = 0, .seq = a.seq, .outcome = EVBUS__DELIVERED};
    evbus__store_results res = {&done, 1, 1, 0, false};
    cr_assert_eq(evbus__store_append(store, NULL, 0, &res, 1500, 0, 0), EVBUS_OK);
    evbus__store_stats st;
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.pending, 0);
    cr_assert_eq(st.events, 1, "kept: delivered, but within the retention");
    static const unsigned char rec2[] = {0x0a, 0x01, 'y', 0x78, 0x88, 0x27}; /* at 5000 */
    evbus__store_item b = {.id = "r2", .id_len = 2, .record = rec2, .record_len = sizeof rec2};
    cr_assert_eq(evbus__store_append(store, &b, 1, NULL, 5000, 0, 0), EVBUS_OK);
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.events, 1, "r1 (accepted at 1000) swept once 1000 ms had passed");
    uint64_t seq = 0;
    evbus__store_foreach_event(store, first_seq, &seq);
    cr_assert_eq(seq, b.seq, "r2 (accepted at 5000) is kept");
}

/* ---- policy replicate: what each entry still owes ---- */

static uint32_t owed_of_first;

static int note_owed(void *arg, uint64_t seq, uint32_t owed) {
    (void)seq;
    *(uint32_t *)arg = owed;
    return 1;
}

static void apply(evbus__store_result r) {
    evbus__store_results res = {&r, 1, 1, 0, false};
    cr_assert_eq(evbus__store_append(store, NULL, 0, &res, 2000, 0, 0), EVBUS_OK);
    cr_assert_eq(res.n_recorded, 1);
}

static int note_dead(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t dead_ms,
                     const char *reason) {
    (void)target, (void)seq, (void)attempts, (void)dead_ms;
    snprintf(arg, 512, "%s", reason);
    return 0;
}

Test(store, a_replicate_entry_leaves_pending_once_every_region_has_it) {
    static const uint32_t to_target0 = 0;
    evbus__store_item a = item("r", "rec");
    a.targets = &to_target0;
    a.n_targets = 1;
    cr_assert_eq(evbus__store_append(store, &a, 1, NULL, 1000, 0, 0), EVBUS_OK);
    /* Written as any pending entry (accepted_ms alone): owed to all. */
    evbus__store_foreach_owed(store, 0, 0, 0x3, note_owed, &owed_of_first);
    cr_assert_eq(owed_of_first, 0x3);
    uint64_t counts[2];
    evbus__store_owed_counts(store, 0, 0x3, counts, 2);
    cr_assert(counts[0] == 1 && counts[1] == 1);

    /* Region 1 retries (nothing stored), region 0 delivers. */
    apply((evbus__store_result){
        .target = 0, .seq = a.seq, .outcome = EVBUS__RETRY, .regions = 0x2, .regions_all = 0x3});
    apply((evbus__store_result){.target = 0,
                                .seq = a.seq,
                                .outcome = EVBUS__DELIVERED,
                                .regions = 0x1,
                                .regions_all = 0x3});
    evbus__store_foreach_owed(store, 0, 0, 0x3, note_owed, &owed_of_first);
    cr_assert_eq(owed_of_first, 0x2, "still owed to region 1 only");
    int64_t oldest = 0;
    uint64_t pending = 0;
    evbus__store_target_backlog(store, 0, &pending, &oldest);
    cr_assert_eq(pending, 1);
    cr_assert_eq(oldest, 1000, "the acceptance time is kept");

    /* Region 1 dead-letters it: the entry is done, the dead letter names it. */
    apply((evbus__store_result){.target = 0,
                                .seq = a.seq,
                                .outcome = EVBUS__DEAD,
                                .reason = "region us-west-2: bad",
                                .regions = 0x2,
                                .regions_all = 0x3});
    evbus__store_stats st;
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.pending, 0);
    cr_assert_eq(st.events, 1, "kept for the dead letter");
    char reason[512] = "";
    evbus__store_foreach_dead(store, 0, note_dead, reason);
    cr_assert_str_eq(reason, "region us-west-2: bad");

    /* Replayed: owed again to region 1 alone, not to the one that has it. */
    apply((evbus__store_result){
        .target = 0, .seq = a.seq, .outcome = EVBUS__REQUEUE, .due_ms = 2000});
    owed_of_first = 0;
    evbus__store_foreach_owed(store, 0, 0, 0x3, note_owed, &owed_of_first);
    cr_assert_eq(owed_of_first, 0x2);
    apply((evbus__store_result){.target = 0,
                                .seq = a.seq,
                                .outcome = EVBUS__DELIVERED,
                                .regions = 0x2,
                                .regions_all = 0x3});
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.pending, 0);
    cr_assert_eq(st.events, 0, "released once no region owes it");
}

Test(store, a_region_switched_off_is_settled_with_the_others_results) {
    static const uint32_t to_target0 = 0;
    evbus__store_item a = item("s", "rec");
    a.targets = &to_target0;
    a.n_targets = 1;
    cr_assert_eq(evbus__store_append(store, &a, 1, NULL, 1000, 0, 0), EVBUS_OK);
    apply((evbus__store_result){.target = 0,
                                .seq = a.seq,
                                .outcome = EVBUS__DELIVERED,
                                .regions = 0x1,
                                .settled = 0x2,
                                .regions_all = 0x3});
    evbus__store_stats st;
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.pending, 0);
    cr_assert_eq(st.events, 0);
}

static void collect_read(void *arg, size_t i, const void *rec, size_t len) {
    char *out = arg;
    char line[64];
    snprintf(line, sizeof line, "%zu=%.*s;", i, (int)len, (const char *)rec);
    strcat(out, line);
}

/* Reading a batch's records: runs of sequences, gaps, missing records,
 * sequences going back and repeated, each found record reported with its
 * index in the request. */
Test(store, read_events_finds_each_record_whatever_the_order) {
    evbus__store_item items[6] = {item("a", "r1"), item("b", "r2"), item("c", "r3"),
                                  item("d", "r4"), item("e", "r5"), item("f", "r6")};
    cr_assert_eq(evbus__store_append(store, items, 6, NULL, 1000, 0, 0), EVBUS_OK);
    uint64_t seqs[] = {1, 2, 3, 5, 9, 6, 7, 2, 2, 4, 0, 6};
    char seen[512] = "";
    cr_assert_eq(
        evbus__store_read_events(store, seqs, sizeof seqs / sizeof seqs[0], collect_read, seen),
        EVBUS_OK);
    cr_assert_str_eq(seen, "0=r1;1=r2;2=r3;3=r5;5=r6;7=r2;8=r2;9=r4;11=r6;");
}

static int count_retries(void *arg, uint32_t target, uint64_t seq, uint32_t attempts,
                         int64_t due_ms) {
    (void)target, (void)seq, (void)attempts, (void)due_ms;
    (*(int *)arg)++;
    return 0;
}

/* Results for an event two targets take: a delivered result removes the
 * target's scheduled retry, and the record stays while the other target
 * has it pending or dead-lettered, also when both results are in one
 * commit; it goes with the last of them. */
Test(store, the_record_stays_while_another_target_needs_it) {
    static const uint32_t both[2] = {0, 1};
    evbus__store_item a = item("a", "ra"), b = item("b", "rb");
    a.targets = b.targets = both;
    a.n_targets = b.n_targets = 2;
    cr_assert_eq(evbus__store_append(store, &a, 1, NULL, 1000, 0, 0), EVBUS_OK);
    cr_assert_eq(evbus__store_append(store, &b, 1, NULL, 1000, 0, 0), EVBUS_OK);
    evbus__store_result r[2];
    evbus__store_results res = {r, 1, 2, 0, true};
    evbus__store_stats st;
    int retries = 0;

    r[0] = (evbus__store_result){
        .target = 0, .seq = a.seq, .outcome = EVBUS__RETRY, .attempts = 1, .due_ms = 9000};
    cr_assert_eq(evbus__store_append(store, NULL, 0, &res, 2000, 0, 0), EVBUS_OK);
    evbus__store_foreach_retry(store, count_retries, &retries);
    cr_assert_eq(retries, 1);
    r[0] = (evbus__store_result){.target = 0, .seq = a.seq, .outcome = EVBUS__DELIVERED};
    cr_assert_eq(evbus__store_append(store, NULL, 0, &res, 2000, 0, 0), EVBUS_OK);
    retries = 0;
    evbus__store_foreach_retry(store, count_retries, &retries);
    cr_assert_eq(retries, 0, "delivered: its retry is gone");
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.events, 2, "target 1 still has a pending");
    r[0] = (evbus__store_result){.target = 1, .seq = a.seq, .outcome = EVBUS__DELIVERED};
    cr_assert_eq(evbus__store_append(store, NULL, 0, &res, 2000, 0, 0), EVBUS_OK);
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.events, 1, "a: delivered to both, its record is gone");

    /* One commit: b dead for target 1, then delivered to target 0. */
    r[0] = (evbus__store_result){.target = 1, .seq = b.seq, .outcome = EVBUS__DEAD, .reason = "no"};
    r[1] = (evbus__store_result){.target = 0, .seq = b.seq, .outcome = EVBUS__DELIVERED};
    res.n = 2;
    cr_assert_eq(evbus__store_append(store, NULL, 0, &res, 2000, 0, 0), EVBUS_OK);
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.pending, 0);
    cr_assert_eq(st.events, 1, "b is a dead letter of target 1: its record stays");
    r[0] = (evbus__store_result){.target = 1, .seq = b.seq, .outcome = EVBUS__DROP};
    res.n = 1;
    cr_assert_eq(evbus__store_append(store, NULL, 0, &res, 2000, 0, 0), EVBUS_OK);
    evbus__store_stats_get(store, &st);
    cr_assert_eq(st.events, 0, "dropped: nothing needs b any more");
}
