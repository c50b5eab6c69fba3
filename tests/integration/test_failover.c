/* Failover between two regions end to end: a real evbusd with the
 * region-health selector, the regions test sink (it writes the region of
 * every batch) and a health endpoint per region served by this process
 * (libmicrohttpd), switched healthy / unhealthy by the test. Each test
 * checks that no acked event is lost and that every event went to the
 * region it should have at the time it was published. */
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

typedef struct health {
    struct MHD_Daemon *mhd;
    atomic_int healthy;
    int port;
} health;

static harness h;
static evbus_client_t *client;
static health east, west;
static int published;

static enum MHD_Result on_http(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls) {
    (void)url, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
    health *hs = cls;
    bool ok = atomic_load(&hs->healthy);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(ok ? 2 : 4, ok ? "OK" : "down", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, ok ? 200 : 503, r);
    MHD_destroy_response(r);
    return rc;
}

static void serve(health *hs) {
    atomic_store(&hs->healthy, 1);
    hs->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_http, hs,
                               MHD_OPTION_END);
    cr_assert_not_null(hs->mhd);
    hs->port = MHD_get_daemon_info(hs->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    if (east.mhd)
        MHD_stop_daemon(east.mhd);
    if (west.mhd)
        MHD_stop_daemon(west.mhd);
}

TestSuite(failover, .fini = stop, .timeout = 120);

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Two regions with checks every second; `target_extra` goes under the
 * target, `extra` at the top level. */
static void start(const char *target_extra, const char *extra, bool checks) {
    serve(&east);
    serve(&west);
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "a");
    cr_assert_not_null(f);
    char ce[256] = "", cw[256] = "";
    if (checks) {
        snprintf(ce, sizeof ce,
                 "    health_check: {url: \"http://127.0.0.1:%d/ok\", interval: 1s, timeout: "
                 "500ms, failure_threshold: 2, recovery_threshold: 2, match: \"OK\"}\n",
                 east.port);
        snprintf(cw, sizeof cw,
                 "    health_check: {url: \"http://127.0.0.1:%d/ok\", interval: 1s, timeout: "
                 "500ms, failure_threshold: 2, recovery_threshold: 2}\n",
                 west.port);
    }
    fprintf(f,
            "%s"
            "regions:\n"
            "  - name: us-east-1\n%s"
            "  - name: us-west-2\n%s"
            "targets:\n"
            "  - name: orders\n"
            "    plugin: %s/test_sink_regions.so\n"
            "    batch_max_events: 1\n"
            "    config: {path: \"%s/orders.txt\"}\n"
            "%s"
            "    regions:\n"
            "      us-east-1: {queue_url: q-east}\n"
            "      us-west-2: {queue_url: q-west}\n"
            "rules:\n"
            "  - name: all\n"
            "    pattern: {source: [a]}\n"
            "    targets: [orders]\n",
            extra ? extra : "", ce, cw, EVBUS_TEST_PLUGIN_DIR, h.dir,
            target_extra ? target_extra : "");
    fclose(f);
    cr_assert(harness_start(&h), "log: %s", h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

/* Publishes one event, ev-N, and returns N. */
static int publish(void) {
    char id[32];
    int n = published++;
    snprintf(id, sizeof id, "ev-%d", n);
    evbus_event e = {.id = id, .source = "a", .detail_type = "T", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s", ack.reason);
    return n;
}

/* The region ev-N was delivered to ("" when not yet), from the sink's
 * lines "deliver orders REGION queue_url=Q SEQ ID". */
static void region_of(int n, char *out, size_t len) {
    char path[400], line[512], want[40];
    snprintf(path, sizeof path, "%s/orders.txt", h.dir);
    snprintf(want, sizeof want, " ev-%d\n", n);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        size_t l = strlen(line), w = strlen(want);
        if (strncmp(line, "deliver orders ", 15) == 0 && l > w && strcmp(line + l - w, want) == 0)
            sscanf(line + 15, "%63s", out), (void)len;
    }
    if (f)
        fclose(f);
}

/* Waits until ev-N is delivered; returns its region. */
static void wait_delivered(int n, char *out, size_t len) {
    int64_t end = now_ms() + 20000;
    do {
        region_of(n, out, len);
        if (out[0])
            return;
        usleep(10000);
    } while (now_ms() < end);
    cr_assert_fail("ev-%d was never delivered", n);
}

/* Publishes `count` events; each must land in `region`. */
static void publish_expecting(int count, const char *region) {
    int first = published;
    for (int i = 0; i < count; i++)
        publish();
    for (int i = first; i < first + count; i++) {
        char got[64];
        wait_delivered(i, got, sizeof got);
        cr_assert_str_eq(got, region, "ev-%d went to %s, wanted %s", i, got, region);
    }
}

/* Publishes one event every 50 ms until one lands in `region`; returns the
 * milliseconds from `since` to that event's delivery. Events published
 * before may have gone to the old region: the test says which was right. */
static int64_t publish_until(const char *region, int64_t since) {
    int64_t end = now_ms() + 30000;
    while (now_ms() < end) {
        int n = publish();
        char got[64];
        wait_delivered(n, got, sizeof got);
        if (strcmp(got, region) == 0)
            return now_ms() - since;
        usleep(50000);
    }
    cr_assert_fail("no event reached %s", region);
    return -1;
}

/* Every published event was delivered (no acked event lost). */
static void assert_none_lost(void) {
    for (int i = 0; i < published; i++) {
        char got[64];
        wait_delivered(i, got, sizeof got);
    }
}

static int cli(const char *args, char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1", harness_bin("evbus"), args, h.config);
    return harness_run(cmd, out, len);
}

static void wait_status(const char *want) {
    char out[16384];
    int64_t end = now_ms() + 15000;
    while (now_ms() < end) {
        cli("region status", out, sizeof out);
        if (strstr(out, want))
            return;
        usleep(50000);
    }
    cr_assert_fail("'%s' not in:\n%s", want, out);
}

Test(failover, primary_unhealthy_moves_to_secondary_then_fails_back_after_the_hold) {
    start("    failback_hold: 2s\n", NULL, true);
    wait_status("us-east-1        on       healthy");
    publish_expecting(10, "us-east-1");

    int64_t t0 = now_ms();
    atomic_store(&east.healthy, 0);
    int64_t took = publish_until("us-west-2", t0);
    /* Two failed checks a second apart, the first up to a second away. */
    cr_log_info("failover took %lld ms (checks every 1 s, failure_threshold 2)", (long long)took);
    printf("failover: %lld ms from the outage to the first event in us-west-2\n", (long long)took);
    cr_assert_leq(took, 1000 * 2 + 1000 + 500, "failover took %lld ms", (long long)took);
    publish_expecting(10, "us-west-2");

    int64_t t1 = now_ms();
    atomic_store(&east.healthy, 1);
    took = publish_until("us-east-1", t1);
    printf("failback: %lld ms from recovery (recovery_threshold 2, failback_hold 2 s)\n",
           (long long)took);
    cr_assert_geq(took, 2000, "failback before the hold: %lld ms", (long long)took);
    cr_assert_leq(took, 1000 * 2 + 2000 + 2500, "failback took %lld ms", (long long)took);
    publish_expecting(10, "us-east-1");
    assert_none_lost();
}

Test(failover, flapping_health_does_not_flap_traffic) {
    start("    failback_hold: 30s\n", NULL, true);
    wait_status("us-east-1        on       healthy");
    atomic_store(&east.healthy, 0);
    publish_until("us-west-2", now_ms());
    /* The primary comes and goes: every pass is followed by a failure. */
    for (int i = 0; i < 4; i++) {
        atomic_store(&east.healthy, i % 2);
        publish_expecting(5, "us-west-2");
    }
    assert_none_lost();
}

Test(failover, both_unhealthy_fails_open_to_the_primary) {
    start("    failback_hold: 1s\n", NULL, true);
    wait_status("us-east-1        on       healthy");
    atomic_store(&west.healthy, 0);
    wait_status("us-west-2        on       unhealthy");
    atomic_store(&east.healthy, 0);
    wait_status("us-east-1        on       unhealthy");
    /* Route 53's rule: when every region is unhealthy, the primary. */
    publish_expecting(10, "us-east-1");
    assert_none_lost();
}

/* Events the failing region refused wait for a retry; when traffic moves
 * they go to the new region at once instead of waiting out a backoff meant
 * for the old one (here up to 30 s and more: wait_delivered gives each 20 s),
 * with the attempt spent on the old region given back. */
Test(failover, retries_follow_the_route_to_the_new_region) {
    start("    retry_base_delay: 30s\n    retry_max_delay: 5m\n", NULL, true);
    wait_status("us-east-1        on       healthy");
    char down[400];
    snprintf(down, sizeof down, "%s/orders.txt.down-q-east", h.dir);
    FILE *f = fopen(down, "w");
    cr_assert_not_null(f);
    fclose(f);
    atomic_store(&east.healthy, 0);
    int first = published;
    for (int i = 0; i < 10; i++)
        publish();
    /* One deadline for all ten: failover takes about 2 s here; a retry left
     * to its backoff would come after up to 30 s, 60 s, ... */
    int64_t end = now_ms() + 12000;
    char got[64];
    for (int n = first; n < first + 10; n++) {
        do {
            region_of(n, got, sizeof got);
        } while (!got[0] && now_ms() < end && usleep(10000) == 0);
        cr_assert_str_eq(got, "us-west-2", "ev-%d (\"\": not delivered within 12 s)", n);
    }
    char out[8192];
    cr_assert_eq(cli("dlq list", out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "no dead letters\n");
    unlink(down);
    assert_none_lost();
}

Test(failover, manual_failback_waits_for_the_operator) {
    start("    failback: manual\n    failback_hold: 0s\n", NULL, true);
    wait_status("us-east-1        on       healthy");
    atomic_store(&east.healthy, 0);
    publish_until("us-west-2", now_ms());
    atomic_store(&east.healthy, 1);
    wait_status("us-east-1        on       healthy");
    publish_expecting(10, "us-west-2");
    char out[4096];
    /* Failback needs the target fenced first, then moves it back. */
    cr_assert_neq(cli("region failback -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "fence it first"), "%s", out);
    cr_assert_eq(cli("region fence -t orders", out, sizeof out), 0, "%s", out);
    cr_assert_eq(cli("region failback -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "orders: fenced:active -> active"), "%s", out);
    publish_until("us-east-1", now_ms());
    publish_expecting(10, "us-east-1");
    assert_none_lost();
}

Test(failover, routing_control_moves_traffic_at_once_within_the_safety_rules) {
    start(NULL, NULL, false);
    publish_expecting(5, "us-east-1");
    char out[4096];
    int64_t t0 = now_ms();
    cr_assert_eq(cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    int64_t took = publish_until("us-west-2", t0);
    printf("routing control flip: %lld ms to the first event in us-west-2\n", (long long)took);
    publish_expecting(5, "us-west-2");

    /* The assertion rule: at least one region stays on, unless forced. */
    cr_assert_neq(cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "refused by the assertion rule: at least 1 region(s) must stay on"), "%s",
              out);
    cr_assert_eq(cli("region off us-west-2 --force", out, sizeof out), 0, "%s", out);
    wait_status("(held: every region's control is off)");
    int held = publish();
    cr_assert_eq(cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    char got[64];
    wait_delivered(held, got, sizeof got);
    cr_assert_str_eq(got, "us-east-1");
    assert_none_lost();
}

Test(failover, fenced_holds_events_and_unfence_drains_them) {
    start(NULL, NULL, false);
    char out[4096];
    cr_assert_neq(cli("region failover -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "fence it first"), "%s", out);
    cr_assert_eq(cli("region fence", out, sizeof out), 0, "%s", out);
    wait_status("(held: fenced)");
    int first = published;
    for (int i = 0; i < 10; i++)
        publish();
    /* Nothing is dispatched while fenced: the status keeps them pending. */
    char st[16384];
    cli("status", st, sizeof st);
    cr_assert(strstr(st, "orders                   test-sink-regions         10"), "%s", st);
    char got[64];
    region_of(first, got, sizeof got);
    cr_assert_str_eq(got, "");
    /* fenced -> failover: the target leaves its primary. */
    cr_assert_eq(cli("region failover", out, sizeof out), 0, "%s", out);
    for (int i = first; i < first + 10; i++) {
        wait_delivered(i, got, sizeof got);
        cr_assert_str_eq(got, "us-west-2");
    }
    assert_none_lost();
}

Test(failover, a_restart_in_the_middle_of_a_failover_keeps_it) {
    start("    failback_hold: 60s\n", NULL, true);
    wait_status("us-east-1        on       healthy");
    atomic_store(&east.healthy, 0);
    publish_until("us-west-2", now_ms());
    char out[4096];
    cr_assert_eq(cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert_eq(harness_stop(&h), 0);
    /* The primary is back, but the hold is not over: stay. */
    atomic_store(&east.healthy, 1);
    evbus_client_destroy(&client);
    cr_assert(harness_start(&h), "log: %s", h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
    wait_status("us-east-1        off");
    publish_expecting(10, "us-west-2");
    cr_assert_eq(cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    wait_status("us-east-1        on       healthy");
    publish_expecting(5, "us-west-2");
    assert_none_lost();
}

Test(failover, a_selector_written_from_the_header_alone_is_followed) {
    char extra[512];
    snprintf(extra, sizeof extra, "selector: %s/test_selector.so\n", EVBUS_TEST_PLUGIN_DIR);
    start(NULL, extra, false);
    publish_expecting(5, "us-west-2");
    char out[4096];
    cr_assert_eq(cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    publish_until("us-east-1", now_ms());
    assert_none_lost();
}

Test(failover, selector_settings_are_checked_with_file_line_and_column) {
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "a");
    fprintf(f,
            "regions:\n"
            "  - name: us-east-1\n"
            "    health_check: {url: \"ftp://x\", interval: 1s, timeout: 2s}\n"
            "  - name: us-west-2\n"
            "targets:\n"
            "  - name: orders\n"
            "    plugin: %s/test_sink_regions.so\n"
            "    config: {path: x, queue_url: q}\n"
            "    primary: eu-west-1\n"
            "    policy: weighted\n"
            "    weights: {us-east-1: 300, us-west-2: 1}\n"
            "    regions:\n"
            "      us-east-1:\n"
            "      us-west-2:\n",
            EVBUS_TEST_PLUGIN_DIR);
    fclose(f);
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    cr_assert_neq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    /* The harness writes 8 lines before these. */
    const char *const want[] = {
        ":11:25: regions[0].health_check.url: 'ftp://x' is not an http://",
        ":11:59: regions[0].health_check.timeout: 2000ms is not shorter than the interval",
        ":17:14: targets[0].primary: 'eu-west-1' is not one of target 'orders''s regions",
        ":19:26: targets[0].weights.us-east-1: expected a weight from 0 to 255, got '300'", NULL};
    for (const char *const *w = want; *w; w++)
        cr_assert(strstr(out, *w), "wanted '%s' in:\n%s", *w, out);
}

Test(failover, weighted_splits_exactly_and_skips_a_region_switched_off) {
    start("    policy: weighted\n    weights: {us-east-1: 3, us-west-2: 1}\n", NULL, false);
    int east_n = 0, west_n = 0;
    int first = published;
    for (int i = 0; i < 40; i++)
        publish();
    for (int i = first; i < first + 40; i++) {
        char got[64];
        wait_delivered(i, got, sizeof got);
        east_n += strcmp(got, "us-east-1") == 0;
        west_n += strcmp(got, "us-west-2") == 0;
    }
    cr_assert_eq(east_n, 30, "us-east-1 got %d of 40 (weights 3:1)", east_n);
    cr_assert_eq(west_n, 10, "us-west-2 got %d of 40 (weights 3:1)", west_n);
    char out[4096];
    cr_assert_eq(cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    publish_until("us-west-2", now_ms());
    publish_expecting(8, "us-west-2");
    assert_none_lost();
}
