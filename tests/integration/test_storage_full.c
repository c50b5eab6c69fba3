/* A store out of space keeps evbusd up: a full map drains once delivery
 * works again and ingest then accepts by itself; a full file system is
 * answered RETRY_LATER "disk full", logged once, and ingest resumes once
 * space is freed. Nothing acked is lost, and no event is delivered more
 * often than the in-flight window allows. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h;
static evbus_client_t *client;
static char mnt[320]; /* a tmpfs mounted by the test, or "" */

static void stop(void) {
    evbus_client_destroy(&client);
    harness_stop(&h);
    if (mnt[0])
        umount2(mnt, MNT_DETACH);
    mnt[0] = '\0';
    harness_cleanup(&h);
}

TestSuite(storage_full, .fini = stop, .timeout = 180);

static void write_config(const char *storage_yaml, const char *rest_yaml) {
    FILE *f = fopen(h.config, "w");
    cr_assert_not_null(f);
    fprintf(f, "log_level: debug\ningest:\n  listen: [\"%s\"]\nstorage:\n%s%s", h.endpoint,
            storage_yaml, rest_yaml);
    fclose(f);
}

static void open_client(void) {
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 20000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A detail of about 2 KB, so that a small store fills in a few hundred
 * events. */
static const char *big_detail(void) {
    static char d[2048];
    if (!d[0]) {
        memset(d, 'x', sizeof d - 1);
        memcpy(d, "{\"pad\":\"", 8);
        memcpy(d + sizeof d - 3, "\"}", 3);
    }
    return d;
}

#define REQ     20
#define MAX_IDS 20000

static char accepted[MAX_IDS][32];
static size_t n_accepted;

/* Publishes one request of REQ new events (ids "<prefix>-<n>"); remembers
 * the accepted ones. Returns how many came back RETRY_LATER, and copies the
 * last such reason into why. */
static size_t publish_req(const char *prefix, int *next, const char *source, char *why,
                          size_t whylen) {
    char ids[REQ][32];
    evbus_event evs[REQ];
    evbus_ack acks[REQ];
    for (int i = 0; i < REQ; i++) {
        snprintf(ids[i], sizeof ids[i], "%.16s-%d", prefix, (*next)++);
        evs[i] = (evbus_event){
            .id = ids[i], .source = source, .detail_type = "T", .detail = big_detail()};
    }
    cr_assert_eq(evbus_publish(client, evs, REQ, acks), EVBUS_OK, "evbusd stopped answering");
    size_t later = 0;
    for (int i = 0; i < REQ; i++) {
        if (acks[i].status == EVBUS_ACK_ACCEPTED) {
            cr_assert_lt(n_accepted, MAX_IDS);
            memcpy(accepted[n_accepted++], ids[i], sizeof accepted[0]);
        } else {
            cr_assert_eq(acks[i].status, EVBUS_ACK_RETRY_LATER, "%s: %s", ids[i], acks[i].reason);
            snprintf(why, whylen, "%s", acks[i].reason);
            later++;
        }
    }
    return later;
}

/* Publishes until events are refused, then a few requests more. */
static void fill_until_refused(const char *prefix, const char *source, int *next, char *why,
                               size_t whylen) {
    int extra = 3;
    while (extra > 0) {
        cr_assert_lt(*next, MAX_IDS, "the store never filled up");
        if (publish_req(prefix, next, source, why, whylen) > 0)
            extra--;
    }
}

/* Publishes single events until one is accepted, within `seconds`. */
static void wait_until_accepted(const char *prefix, const char *source, int *next, int seconds) {
    long long end = now_ms() + seconds * 1000LL;
    char why[512] = "";
    while (now_ms() < end) {
        size_t before = n_accepted;
        publish_req(prefix, next, source, why, sizeof why);
        if (n_accepted > before)
            return;
        usleep(50000);
    }
    cr_assert_fail("ingest did not resume within %d s (last: %s)", seconds, why);
}

static size_t count_in_log(const char *what) {
    static char log[1 << 20];
    harness_read_log(&h, log, sizeof log);
    size_t n = 0;
    for (const char *p = log; (p = strstr(p, what)); p++)
        n++;
    return n;
}

/* Lines the sink wrote, and how many distinct ids; checks every accepted
 * id is among them. */
static size_t sink_lines(size_t *distinct) {
    char path[300];
    snprintf(path, sizeof path, "%s/out.txt", h.dir);
    FILE *f = fopen(path, "r");
    size_t lines = 0;
    static char seen[MAX_IDS];
    memset(seen, 0, sizeof seen);
    *distinct = 0;
    char target[64], id[64];
    unsigned long long seq;
    while (f && fscanf(f, "%63s %llu %63s", target, &seq, id) == 3) {
        lines++;
        int n = -1;
        if (sscanf(id, "full-%d", &n) == 1 && n >= 0 && n < MAX_IDS && !seen[n]++)
            (*distinct)++;
    }
    if (f)
        fclose(f);
    return lines;
}

Test(storage_full, full_map_drains_once_delivery_works_and_ingest_resumes) {
    harness_init(&h, NULL);
    char rest[1024];
    snprintf(rest, sizeof rest,
             "targets:\n"
             "  - name: out\n"
             "    plugin: %s/test_sink_good.so\n"
             "    config:\n"
             "      path: %s/out.txt\n"
             "    max_in_flight: 4\n"
             "    retry_max_attempts: 1000\n"
             "    retry_base_delay: 20ms\n"
             "    retry_max_delay: 100ms\n"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [a]}\n"
             "    targets: [out]\n",
             EVBUS_TEST_PLUGIN_DIR, h.dir);
    write_config("  data_dir: data\n  map_size: 2MiB\n", rest);
    /* The destination is down while the store fills. */
    char down[320];
    snprintf(down, sizeof down, "%s/out.txt.down", h.dir);
    FILE *f = fopen(down, "w");
    cr_assert_not_null(f);
    fclose(f);
    cr_assert(harness_start(&h));
    open_client();

    int next = 0;
    char why[512] = "";
    fill_until_refused("full", "a", &next, why, sizeof why);
    cr_assert(strstr(why, "storage full"), "%s", why);
    size_t before = n_accepted;
    cr_assert_gt(before, 20);

    /* The destination comes back: everything accepted is delivered, and
     * ingest accepts again by itself. */
    cr_assert_eq(unlink(down), 0);
    long long end = now_ms() + 60000;
    size_t distinct = 0;
    while (now_ms() < end && (sink_lines(&distinct), distinct < before))
        usleep(50000);
    cr_assert_eq(distinct, before, "only %zu of %zu accepted events delivered", distinct, before);
    wait_until_accepted("full", "a", &next, 30);
    end = now_ms() + 30000;
    while (now_ms() < end && (sink_lines(&distinct), distinct < n_accepted))
        usleep(50000);
    size_t lines = sink_lines(&distinct);
    cr_assert_eq(distinct, n_accepted, "only %zu of %zu accepted events delivered", distinct,
                 n_accepted);
    /* Redeliveries are bounded by the window: 2 x max_in_flight (4)
     * batches of the sink's 10 events, in flight or with results not yet
     * durable. */
    cr_log_info("%zu accepted before the store was full, %zu in all, %zu deliveries", before,
                n_accepted, lines);
    cr_assert_leq(lines - distinct, 2 * 4 * 10, "%zu deliveries for %zu events", lines, distinct);
    cr_assert_eq(count_in_log("cannot even record"), 0);
    cr_assert_eq(harness_stop(&h), 0, "evbusd exits cleanly");
}

/* Mounts a tmpfs of `size` (mount's option, "8m") at dir; false (the test
 * is skipped) where this process may not mount. */
static bool mount_small_fs(const char *dir, const char *size) {
    cr_assert_eq(mkdir(dir, 0700), 0);
    char opts[32];
    snprintf(opts, sizeof opts, "size=%s", size);
    if (mount("tmpfs", dir, "tmpfs", 0, opts) != 0) {
        fprintf(stderr, "cannot mount a tmpfs at %s (%s): needs root (CAP_SYS_ADMIN)\n", dir,
                strerror(errno));
        return false;
    }
    snprintf(mnt, sizeof mnt, "%s", dir);
    return true;
}

Test(storage_full, full_disk_answers_retry_later_and_resumes_when_space_is_freed) {
    harness_init(&h, NULL);
    char disk[300];
    snprintf(disk, sizeof disk, "%s/disk", h.dir);
    if (!mount_small_fs(disk, "8m"))
        cr_skip_test("cannot mount a small tmpfs here (needs root); disk-full test skipped");
    /* Something else on the file system, freed later. */
    char ballast[340];
    snprintf(ballast, sizeof ballast, "%s/ballast", disk);
    FILE *f = fopen(ballast, "w");
    cr_assert_not_null(f);
    static char mib[1 << 20];
    for (int i = 0; i < 2; i++)
        cr_assert_eq(fwrite(mib, 1, sizeof mib, f), sizeof mib);
    cr_assert_eq(fclose(f), 0);
    char storage[400];
    /* The map is far from full when the file system is. */
    snprintf(storage, sizeof storage, "  data_dir: %s/data\n  map_size: 16MiB\n", disk);
    write_config(storage, "");
    cr_assert(harness_start(&h));
    open_client();

    int next = 0;
    char why[512] = "";
    fill_until_refused("disk", "s", &next, why, sizeof why);
    cr_assert(strstr(why, "disk full"), "%s", why);
    size_t before = n_accepted;
    cr_assert_gt(before, 20);
    /* Still refused, still up, logged once. */
    publish_req("disk", &next, "s", why, sizeof why);
    cr_assert_eq(count_in_log("[store] disk full"), 1);
    cr_assert_eq(count_in_log("Input/output error"), 0);

    cr_assert_eq(unlink(ballast), 0);
    long long freed = now_ms();
    wait_until_accepted("disk", "s", &next, 10);
    cr_log_info("%zu accepted before the disk was full; accepting again %lld ms after space was "
                "freed",
                before, now_ms() - freed);

    /* Every acked event is there after a restart: answered DUPLICATE. */
    cr_assert_eq(harness_stop(&h), 0, "evbusd exits cleanly");
    evbus_client_destroy(&client);
    cr_assert(harness_start(&h));
    open_client();
    for (size_t i = 0; i < n_accepted; i++) {
        evbus_event e = {.id = accepted[i], .source = "s", .detail_type = "T", .detail = "{}"};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
        cr_assert_eq(ack.status, EVBUS_ACK_DUPLICATE, "%s was acked, then lost", accepted[i]);
    }
}

/* With the default map_size (1 GiB) on a file system of 32 MiB, the data
 * file cannot be preallocated in the map's 64 MiB steps: evbusd takes
 * smaller ones and accepts events until the disk is really full, instead
 * of answering "disk full" to the first event. */
Test(storage_full, small_disk_with_the_default_map_size_is_used_to_the_end) {
    harness_init(&h, NULL);
    char disk[300];
    snprintf(disk, sizeof disk, "%s/disk", h.dir);
    if (!mount_small_fs(disk, "32m"))
        cr_skip_test("cannot mount a small tmpfs here (needs root); small-disk test skipped");
    char storage[400];
    snprintf(storage, sizeof storage, "  data_dir: %s/data\n", disk); /* default map_size */
    write_config(storage, "");
    cr_assert(harness_start(&h));
    open_client();

    int next = 0;
    char why[512] = "";
    cr_assert_eq(publish_req("small", &next, "s", why, sizeof why), 0,
                 "the first events were refused with 32 MiB free: %s", why);
    fill_until_refused("small", "s", &next, why, sizeof why);
    cr_assert(strstr(why, "disk full"), "%s", why);
    struct statvfs vfs;
    cr_assert_eq(statvfs(disk, &vfs), 0);
    unsigned long long free_kib = (unsigned long long)vfs.f_bavail * vfs.f_frsize >> 10;
    cr_log_info("%zu events accepted; %llu KiB free when \"disk full\" was answered", n_accepted,
                free_kib);
    /* Full means full: what is left would not hold another commit with its
     * reserve (a batch of these events is about 100 KiB). */
    cr_assert_lt(free_kib, 4096, "\"disk full\" with %llu KiB free", free_kib);
    cr_assert_gt(n_accepted, 3000, "only %zu events of 2 KiB fitted in 32 MiB", n_accepted);
    cr_assert_eq(count_in_log("Input/output error"), 0);
}

/* Delivered events leave their ids behind (storage.dedup_window, 24 h by
 * default). On a file system far smaller than the map those ids fill the
 * disk, not the map: with nothing left to deliver, "disk full" would be
 * answered until the window ends. The oldest ids must be forgotten early
 * instead, as when they fill the map, and ingest keep going. */
Test(storage_full, ids_filling_a_small_disk_are_forgotten_early) {
    harness_init(&h, NULL);
    char disk[300];
    snprintf(disk, sizeof disk, "%s/disk", h.dir);
    if (!mount_small_fs(disk, "4m"))
        cr_skip_test("cannot mount a small tmpfs here (needs root); ids-on-disk test skipped");
    char storage[400], rest[512];
    snprintf(storage, sizeof storage, "  data_dir: %s/data\n", disk); /* default map_size */
    snprintf(rest, sizeof rest,
             "targets:\n"
             "  - name: out\n"
             "    plugin: %s/test_sink_good.so\n"
             "    config:\n"
             "      path: %s/out.txt\n"
             "routing:\n"
             "  catch_all_target: out\n",
             EVBUS_TEST_PLUGIN_DIR, h.dir);
    write_config(storage, rest);
    cr_assert(harness_start(&h));
    open_client();

    /* Ids of 120 characters: 4 MiB holds about 25,000 of them. */
    enum { N = 200, TOTAL = 80000, WITHIN = 60000 };
    static char ids[N][128];
    static evbus_event evs[N];
    static evbus_ack acks[N];
    size_t ok = 0, next = 0, later = 0;
    char why[512] = "";
    for (int i = 0; i < N; i++)
        snprintf(ids[i], sizeof ids[i], "%0120zu", next++);
    long long end = now_ms() + WITHIN;
    while (ok < TOTAL) {
        cr_assert_lt(now_ms(), end, "only %zu of %d events accepted in %d s; last: %s", ok, TOTAL,
                     WITHIN / 1000, why);
        for (int i = 0; i < N; i++)
            evs[i] = (evbus_event){.id = ids[i], .source = "s", .detail_type = "T", .detail = "{}"};
        cr_assert_eq(evbus_publish(client, evs, N, acks), EVBUS_OK, "evbusd stopped answering");
        bool again = false;
        for (int i = 0; i < N; i++) {
            if (acks[i].status == EVBUS_ACK_RETRY_LATER) {
                snprintf(why, sizeof why, "%s", acks[i].reason);
                later++;
                again = true;
                continue; /* the same id again */
            }
            cr_assert_eq(acks[i].status, EVBUS_ACK_ACCEPTED, "%s: %s", ids[i], acks[i].reason);
            ok++;
            snprintf(ids[i], sizeof ids[i], "%0120zu", next++);
        }
        if (again)
            usleep(20000);
    }
    cr_log_info("%zu events accepted on a 4 MiB file system, %zu answered RETRY_LATER (%s)", ok,
                later, why);
    cr_assert_gt(later, 0, "the disk never filled up");
    cr_assert_eq(count_in_log("ids are now remembered for about"), 1,
                 "no warning naming the window");
    /* Each cause is logged once, however often batches switch between them. */
    cr_assert_leq(count_in_log("[store] disk full"), 1);
    cr_assert_eq(count_in_log("at least half of"), 1); /* the ids line, either wording */
}
