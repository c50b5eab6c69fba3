/* Which commits of the store skip the sync of LMDB's meta page: only those
 * holding nothing but delivery results whose loss means delivering again,
 * and only when the caller allows it (store.h: may_undo). Never a commit
 * with events. This file interposes pwrite() and fdatasync() to count, per
 * commit, the meta page written through LMDB's synchronous descriptor
 * (opened O_DSYNC) and the data syncs. */
#include <criterion/criterion.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store.h"

static atomic_int dsync_writes, data_syncs;

#define INTERPOSE __attribute__((visibility("default")))

INTERPOSE ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    ssize_t (*real)(int, const void *, size_t, off_t) =
        (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0 && (fl & O_DSYNC))
        dsync_writes++;
    return real(fd, buf, n, off);
}

INTERPOSE int fdatasync(int fd) {
    int (*real)(int) = (int (*)(int))dlsym(RTLD_NEXT, "fdatasync");
    data_syncs++;
    return real(fd);
}

static char dir[64];
static evbus__store *store;
static uint32_t target0 = 0;

static void setup(void) {
    char err[512];
    snprintf(dir, sizeof dir, "/tmp/evbus-store-sync-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    cr_assert_eq(evbus__store_open(dir, 64 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
    evbus__store_set_retention(store, 0, 1);
}

static void teardown(void) {
    evbus__store_close(&store);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(store_sync, .init = setup, .fini = teardown, .timeout = 30);

/* Stores events e-<from>..e-<to-1>, pending for target 0, in one commit. */
static void store_events(int from, int to) {
    evbus__store_item items[16];
    char ids[16][16];
    cr_assert_leq(to - from, 16);
    for (int i = from; i < to; i++) {
        snprintf(ids[i - from], sizeof ids[0], "e-%d", i);
        items[i - from] = (evbus__store_item){.id = ids[i - from],
                                              .id_len = strlen(ids[i - from]),
                                              .record = "rec",
                                              .record_len = 3,
                                              .targets = &target0,
                                              .n_targets = 1};
    }
    cr_assert_eq(evbus__store_append(store, items, (size_t)(to - from), NULL, 1000, 0, 0),
                 EVBUS_OK);
}

/* One commit of `res` (plus `items`), and what it synced: the meta page
 * through the synchronous descriptor (1) or not (0). */
static int meta_syncs_of(evbus__store_item *items, size_t n, evbus__store_result *res, size_t nres,
                         bool may_undo) {
    evbus__store_results r = {res, nres, 1, 0, may_undo};
    int before = dsync_writes, syncs_before = data_syncs;
    cr_assert_eq(evbus__store_append(store, items, n, &r, 1000, 0, 0), EVBUS_OK);
    cr_assert_eq(r.n_recorded, nres);
    cr_assert_geq(data_syncs - syncs_before, 1, "data pages are synced by every commit");
    return dsync_writes - before;
}

static evbus__store_result result(uint64_t seq, evbus__delivery outcome) {
    return (evbus__store_result){.target = 0, .seq = seq, .outcome = outcome, .reason = "x"};
}

Test(store_sync, only_results_that_redeliver_skip_the_meta_sync_and_only_when_allowed) {
    store_events(0, 8); /* sequences 1..8 */
    evbus__store_result delivered[2] = {result(1, EVBUS__DELIVERED), result(2, EVBUS__DEAD)};
    cr_assert_eq(meta_syncs_of(NULL, 0, delivered, 2, false), 1, "not allowed: synced");
    cr_assert_not(evbus__store_unsynced(store));

    evbus__store_result more[2] = {result(3, EVBUS__DELIVERED), result(4, EVBUS__RETRY)};
    more[1].due_ms = 5000;
    more[1].attempts = 1;
    cr_assert_eq(meta_syncs_of(NULL, 0, more, 2, true), 0, "results only: meta not synced");
    cr_assert(evbus__store_unsynced(store));

    /* With events in the same commit: synced, whatever the caller allows. */
    evbus__store_item it = {.id = "new",
                            .id_len = 3,
                            .record = "r",
                            .record_len = 1,
                            .targets = &target0,
                            .n_targets = 1};
    evbus__store_result five = result(5, EVBUS__DELIVERED);
    cr_assert_eq(meta_syncs_of(&it, 1, &five, 1, true), 1, "a commit with events is synced");
    cr_assert_eq(it.outcome, EVBUS__STORED);
    cr_assert_not(evbus__store_unsynced(store), "a synced commit makes the earlier one durable");

    /* Results an operator was told are done: synced. (Event 2 is a dead
     * letter, so its record is still there to replay.) */
    evbus__store_result replay = result(2, EVBUS__REPLAY);
    cr_assert_eq(meta_syncs_of(NULL, 0, &replay, 1, true), 1, "a replay is synced");
    evbus__store_result state = {.outcome = EVBUS__STATE, .reason = "control/us-east-1=off"};
    cr_assert_eq(meta_syncs_of(NULL, 0, &state, 1, true), 1, "routing state is synced");
    evbus__store_result mixed[2] = {result(6, EVBUS__DELIVERED), result(2, EVBUS__REQUEUE)};
    cr_assert_eq(meta_syncs_of(NULL, 0, mixed, 2, true), 1, "a requeue among them: synced");
}

Test(store_sync, sync_makes_the_last_commit_durable_and_is_free_otherwise) {
    store_events(0, 4);
    cr_assert_not(evbus__store_unsynced(store));
    int before = data_syncs;
    cr_assert_eq(evbus__store_sync(store), EVBUS_OK);
    cr_assert_eq(data_syncs, before, "nothing to sync: no flush");

    evbus__store_result r = result(1, EVBUS__DELIVERED);
    cr_assert_eq(meta_syncs_of(NULL, 0, &r, 1, true), 0);
    cr_assert(evbus__store_unsynced(store));
    before = data_syncs;
    cr_assert_eq(evbus__store_sync(store), EVBUS_OK);
    cr_assert_eq(data_syncs, before + 1, "one flush syncs the meta page too");
    cr_assert_not(evbus__store_unsynced(store));

    /* The undoable commit is a commit like any other for what it holds. */
    evbus__store_close(&store);
    char err[512];
    cr_assert_eq(evbus__store_open(dir, 64 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
    size_t pending = 0;
    cr_assert_eq(evbus__store_target_backlog(store, 0, (uint64_t *)&pending, &(int64_t){0}),
                 EVBUS_OK);
    cr_assert_eq(pending, 3, "the delivered entry left pending");
}
