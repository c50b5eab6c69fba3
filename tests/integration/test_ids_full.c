/* A store that fills with what it keeps after delivery: ids kept for
 * deduplication (storage.dedup_window, 24 h by default) and, without a
 * target, the events no rule routes. Neither is freed by delivery, so
 * "storage full ... delivery frees space" would be answered until the
 * window ends. evbusd must keep accepting: without retention, unrouted
 * events are removed when the space is wanted, and the oldest ids are
 * forgotten early, with a reason and a warning that say so. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h;
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_stop(&h);
    harness_cleanup(&h);
}

TestSuite(ids_full, .fini = stop, .timeout = 180);

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void start(const char *rest_yaml) {
    FILE *f = fopen(h.config, "w");
    cr_assert_not_null(f);
    /* 1 MiB holds about 12,000 ids of 32 characters. */
    fprintf(f,
            "log_level: info\ningest:\n  listen: [\"%s\"]\n"
            "storage:\n  data_dir: data\n  map_size: 1MiB\n%s",
            h.endpoint, rest_yaml);
    fclose(f);
    cr_assert(harness_start(&h), "evbusd did not start");
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 20000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

#define REQ    200
#define TOTAL  40000 /* over three times what the map holds as ids */
#define WITHIN 45000 /* ms */

/* Publishes new events until TOTAL are accepted, resending what got
 * RETRY_LATER. Fails if that takes longer than WITHIN; copies the last
 * RETRY_LATER reason into why. */
static void publish_total(char *why, size_t whylen) {
    static char ids[REQ][40];
    static evbus_event evs[REQ];
    static evbus_ack acks[REQ];
    size_t accepted = 0, next = 0;
    long long end = now_ms() + WITHIN;
    for (int i = 0; i < REQ; i++)
        snprintf(ids[i], sizeof ids[i], "%032zx", next++);
    while (accepted < TOTAL) {
        cr_assert_lt(now_ms(), end, "only %zu of %d events accepted in %d s; last: %s", accepted,
                     TOTAL, WITHIN / 1000, why);
        for (int i = 0; i < REQ; i++)
            evs[i] = (evbus_event){
                .id = ids[i], .source = "com.test", .detail_type = "T", .detail = "{\"a\":1}"};
        cr_assert_eq(evbus_publish(client, evs, REQ, acks), EVBUS_OK, "evbusd stopped answering");
        bool later = false;
        for (int i = 0; i < REQ; i++) {
            if (acks[i].status == EVBUS_ACK_RETRY_LATER) {
                snprintf(why, whylen, "%s", acks[i].reason);
                later = true;
                continue; /* the same id again */
            }
            cr_assert_eq(acks[i].status, EVBUS_ACK_ACCEPTED, "%s: %s", ids[i], acks[i].reason);
            accepted++;
            snprintf(ids[i], sizeof ids[i], "%032zx", next++);
        }
        if (later)
            usleep(20000);
    }
}

static bool log_has(const char *what) {
    static char log[1 << 20];
    harness_read_log(&h, log, sizeof log);
    return strstr(log, what) != NULL;
}

Test(ids_full, delivered_events_ids_fill_the_map_and_the_oldest_are_forgotten_early) {
    harness_init(&h, NULL);
    char rest[512];
    snprintf(rest, sizeof rest,
             "targets:\n"
             "  - name: out\n"
             "    plugin: %s/test_sink_good.so\n"
             "    config:\n"
             "      path: %s/out.txt\n"
             "routing:\n"
             "  catch_all_target: out\n",
             EVBUS_TEST_PLUGIN_DIR, h.dir);
    start(rest);
    char why[512] = "";
    publish_total(why, sizeof why);
    cr_assert(why[0], "the store never filled up");
    cr_assert(strstr(why, "ids kept for deduplication"), "the reason names another cause: %s", why);
    cr_assert(log_has("ids are now remembered for about"), "no warning naming the window");

    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "%s status -c %s --json", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "\"ids_forgotten_early\"") && !strstr(out, "\"ids_forgotten_early\": 0"),
              "%s", out);
    /* What a user reads: the store line counts the ids that fill it. */
    snprintf(cmd, sizeof cmd, "%s status -c %s", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    const char *line = strstr(out, "store: ");
    cr_assert(line, "%s", out);
    const char *ids = strstr(line, " ids kept for deduplication");
    cr_assert(ids && ids < strchr(line, '\n'), "the store line does not count ids: %s", out);
    while (ids > line && ids[-1] >= '0' && ids[-1] <= '9')
        ids--;
    cr_assert_gt(atoll(ids), 1000, "the store is full of ids, yet the line says: %s", out);
    cr_assert(strstr(out, "dedup window shortened"), "%s", out);
}

Test(ids_full, events_no_rule_routes_are_removed_to_make_room_without_retention) {
    harness_init(&h, NULL);
    start(""); /* no target, no rule */
    char why[512] = "";
    publish_total(why, sizeof why);
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "%s status -c %s --json", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    /* 1 MiB cannot hold 40,000 records: most were removed to make room. */
    cr_assert(strstr(out, "\"events\": "), "%s", out);
    long long events = atoll(strstr(out, "\"events\": ") + strlen("\"events\": "));
    cr_assert_lt(events, TOTAL / 2, "unrouted events are all still stored: %s", out);
}
