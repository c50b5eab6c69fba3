/* A buggy plugin must not take the router down: evbusd runs a sink that
 * reports late, twice or never (tests/plugins/buggy_sink.c) and must stay
 * up, keep delivering the other events, say in its log what the plugin did
 * wrong, and not let a missing result stall the target. */
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
    harness_cleanup(&h);
}

TestSuite(plugin_faults, .fini = stop, .timeout = 120);

/* One target, `out`, delivered by the buggy sink, with `settings` (YAML
 * lines of the target) added. */
static void start_with_buggy_sink(const char *settings) {
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "targets:\n"
            "  - name: out\n"
            "    plugin: %s/test_sink_buggy.so\n"
            "    config:\n"
            "      path: %s/out.txt\n"
            "%s"
            "rules:\n"
            "  - name: all\n"
            "    pattern: {source: [a]}\n"
            "    targets: [out]\n",
            EVBUS_TEST_PLUGIN_DIR, h.dir, settings);
    fclose(f);
    cr_assert(harness_start(&h), "log: %s", h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 60000;
    o.resend_ms = 300;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

/* Publishes events "prefix-0" ... with the detail {"mistake":"MISTAKE"}
 * (or {} for NULL), in requests of up to 50. */
static void publish(const char *prefix, int n, const char *mistake) {
    char ids[50][48], detail[64];
    evbus_event evs[50];
    evbus_ack acks[50];
    if (mistake)
        snprintf(detail, sizeof detail, "{\"mistake\":\"%s\"}", mistake);
    else
        snprintf(detail, sizeof detail, "{}");
    for (int base = 0; base < n; base += 50) {
        int k = n - base < 50 ? n - base : 50;
        for (int i = 0; i < k; i++) {
            snprintf(ids[i], sizeof ids[i], "%s-%d", prefix, base + i);
            evs[i] =
                (evbus_event){.id = ids[i], .source = "a", .detail_type = "T", .detail = detail};
        }
        cr_assert_eq(evbus_publish(client, evs, (size_t)k, acks), EVBUS_OK);
        for (int i = 0; i < k; i++)
            cr_assert_eq(acks[i].status, EVBUS_ACK_ACCEPTED, "%s: %s", ids[i], acks[i].reason);
    }
}

/* Lines in the sink's file (one per event it wrote). */
static size_t sink_lines(void) {
    char path[300], line[256];
    snprintf(path, sizeof path, "%s/out.txt", h.dir);
    FILE *f = fopen(path, "r");
    size_t n = 0;
    while (f && fgets(line, sizeof line, f))
        n++;
    if (f)
        fclose(f);
    return n;
}

static void wait_for_lines(size_t want, int seconds) {
    time_t end = time(NULL) + seconds;
    size_t n = 0;
    while ((n = sink_lines()) < want && time(NULL) < end)
        usleep(20000);
    cr_assert_geq(n, want, "only %zu of %zu events reached the sink; log: %s", n, want, h.log);
}

static bool log_has(const char *what, int seconds) {
    static char log[1 << 20];
    time_t end = time(NULL) + seconds;
    do {
        harness_read_log(&h, log, sizeof log);
        if (strstr(log, what))
            return true;
        usleep(20000);
    } while (time(NULL) < end);
    cr_log_error("no \"%s\" in the log:\n%s", what, log);
    return false;
}

/* The output of `evbus ARGS` against the running daemon. */
static void evbus_cli(const char *args, char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1", harness_bin("evbus"), args, h.config);
    cr_assert_eq(harness_run(cmd, out, len), 0, "%s: %s", cmd, out);
}

static bool status_has(const char *what, int seconds) {
    char out[8192];
    time_t end = time(NULL) + seconds;
    do {
        evbus_cli("status --json", out, sizeof out);
        if (strstr(out, what))
            return true;
        usleep(20000);
    } while (time(NULL) < end);
    cr_log_error("evbus status --json: %s", out);
    return false;
}

/* A report from a timer after the batch's last report used to make evbusd
 * read freed memory (and crash under load); a second report for one event
 * was logged as an "invalid result". Both are now recognised, logged once
 * with the plugin and target named, and ignored. */
Test(plugin_faults, late_and_duplicate_reports_are_ignored_and_logged) {
    start_with_buggy_sink("");
    publish("late", 20, "late");
    publish("ok", 1000, NULL);
    publish("twice", 20, "twice");
    publish("more", 1000, NULL);
    wait_for_lines(2040, 30);
    cr_assert(log_has("for target out: batch already finished (every event had its result, or "
                      "its delivery_timeout had passed); the late report is ignored",
                      10), );
    cr_assert(log_has("[sink:test-buggy:out] plugin test-buggy reported event ", 1));
    cr_assert(log_has("for target out twice: already reported DELIVERED; the second result "
                      "(DELIVERED) is ignored",
                      1),
              "log: %s", h.log);
    /* Once, not once per mistake: 20 late reports, at most a line a minute. */
    static char log[1 << 20];
    harness_read_log(&h, log, sizeof log);
    int lines = 0;
    for (const char *p = log; (p = strstr(p, "batch already finished")); p++)
        lines++;
    cr_assert_eq(lines, 1, "%s", log);
    cr_assert(status_has("\"delivered\": 2040", 10));
    cr_assert(status_has("\"pending\": 0", 10));
    cr_assert_eq(harness_stop(&h), 0, "evbusd stays up and stops cleanly; log: %s", h.log);
    cr_assert_eq(sink_lines(), 2040, "nothing was delivered twice");
}

/* Events the plugin never reports count as RETRY after the target's
 * delivery_timeout: the target keeps delivering, the log says which plugin
 * and target, and after retry_max_attempts they are dead letters. */
Test(plugin_faults, unreported_events_count_as_retry_after_delivery_timeout) {
    start_with_buggy_sink("    delivery_timeout: 300ms\n"
                          "    max_in_flight: 1\n"
                          "    batch_max_events: 2\n"
                          "    retry_max_attempts: 2\n"
                          "    retry_base_delay: 10ms\n"
                          "    retry_max_delay: 20ms\n");
    publish("never", 3, "never");
    publish("ok", 30, NULL);
    wait_for_lines(30, 20);
    cr_assert(log_has("[sink:test-buggy:out] plugin test-buggy reported no result for 2 of 2 "
                      "events of a batch of target out within its delivery_timeout (300ms): "
                      "they count as RETRY",
                      10));
    cr_assert(status_has("\"dead_lettered\": 3", 20));
    char out[8192];
    evbus_cli("dlq list", out, sizeof out);
    cr_assert(strstr(out, "id=never-0 attempts=2"), "%s", out);
    cr_assert(strstr(out, "gave up after 2 attempts: no result from plugin test-buggy within "
                          "delivery_timeout (300ms)"),
              "%s", out);
    cr_assert(status_has("\"pending\": 0", 10));
    cr_assert_eq(harness_stop(&h), 0);
}

/* Results reported for a batch still waiting for another event's result are
 * applied anyway (within a second), so they are not delivered again after a
 * restart; the batch keeps its place in max_in_flight until it ends. */
Test(plugin_faults, reported_results_are_applied_before_the_batch_ends) {
    start_with_buggy_sink("    delivery_timeout: 1h\n");
    evbus_event evs[2] = {
        {.id = "ok", .source = "a", .detail_type = "T", .detail = "{}"},
        {.id = "never", .source = "a", .detail_type = "T", .detail = "{\"mistake\":\"never\"}"},
    };
    evbus_ack acks[2];
    cr_assert_eq(evbus_publish(client, evs, 2, acks), EVBUS_OK);
    wait_for_lines(1, 10);
    cr_assert(status_has("\"delivered\": 1", 10));
    cr_assert(status_has("\"in_flight_batches\": 1", 10));
    cr_assert(status_has("\"pending\": 1", 10), "the delivered event left the store");
    harness_kill9(&h);
    cr_assert(harness_start(&h), "log: %s", h.log);
    cr_assert(status_has("\"in_flight\": 1", 10));
    cr_assert_eq(harness_stop(&h), 0);
    cr_assert_eq(sink_lines(), 1, "only the unreported event was submitted again");
}
