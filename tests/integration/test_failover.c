/* Failover between two regions end to end: a real evbusd with the
 * region-health selector, the regions test sink (it writes the region of
 * every batch) and a health endpoint per region served by this process
 * (libmicrohttpd), switched healthy / unhealthy by the test. Each test
 * checks that no acked event is lost and that every event went to the
 * region it should have at the time it was published. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "two_regions.h"

TestSuite(failover, .fini = tr_stop, .timeout = 120);

Test(failover, primary_unhealthy_moves_to_secondary_then_fails_back_after_the_hold) {
    tr_start("    failback_hold: 2s\n", NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(10, "us-east-1");

    int64_t t0 = tr_now_ms();
    atomic_store(&tr_east.healthy, 0);
    int64_t took = tr_publish_until("us-west-2", t0);
    /* Two failed checks a second apart, the first up to a second away. */
    cr_log_info("failover took %lld ms (checks every 1 s, failure_threshold 2)", (long long)took);
    printf("failover: %lld ms from the outage to the first event in us-west-2\n", (long long)took);
    cr_assert_leq(took, 1000 * 2 + 1000 + 500, "failover took %lld ms", (long long)took);
    tr_publish_expecting(10, "us-west-2");

    int64_t t1 = tr_now_ms();
    atomic_store(&tr_east.healthy, 1);
    took = tr_publish_until("us-east-1", t1);
    printf("failback: %lld ms from recovery (recovery_threshold 2, failback_hold "
           "2 s)\n",
           (long long)took);
    cr_assert_geq(took, 2000, "failback before the hold: %lld ms", (long long)took);
    cr_assert_leq(took, 1000 * 2 + 2000 + 2500, "failback took %lld ms", (long long)took);
    tr_publish_expecting(10, "us-east-1");
    tr_assert_none_lost();
}

Test(failover, flapping_health_does_not_flap_traffic) {
    tr_start("    failback_hold: 30s\n", NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    atomic_store(&tr_east.healthy, 0);
    tr_publish_until("us-west-2", tr_now_ms());
    /* The primary comes and goes: every pass is followed by a failure. */
    for (int i = 0; i < 4; i++) {
        atomic_store(&tr_east.healthy, i % 2);
        tr_publish_expecting(5, "us-west-2");
    }
    tr_assert_none_lost();
}

/* A primary whose checks fail one in two never reaches failure_threshold
 * (2), so it counts healthy; but each failure restarts the failback hold:
 * it must pass every check for the whole hold before traffic goes back. */
Test(failover, a_failed_check_restarts_the_failback_hold) {
    tr_start("    failback_hold: 3s\n", NULL, true);
    tr_fail_over_and_recover();
    atomic_store(&tr_east.healthy, TR_FLAPPING);
    /* Twice the hold and more, checks every second: without the restart the
     * hold would end 3 s after the recovery, amid failing checks. */
    int64_t end = tr_now_ms() + 7000;
    while (tr_now_ms() < end && usleep(100000) == 0) /* pacing: ~10 events/s */
        tr_publish_expecting(1, "us-west-2");
    int64_t t1 = tr_now_ms();
    atomic_store(&tr_east.healthy, 1);
    int64_t took = tr_publish_until("us-east-1", t1);
    cr_assert_geq(took, 3000 - 1000, "failback %lld ms after the last failed check may be",
                  (long long)took);
    tr_publish_expecting(5, "us-east-1");
    tr_assert_none_lost();
}

Test(failover, both_unhealthy_fails_open_to_the_primary) {
    tr_start("    failback_hold: 1s\n", NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    atomic_store(&tr_west.healthy, 0);
    tr_wait_status("us-west-2        on       unhealthy");
    atomic_store(&tr_east.healthy, 0);
    tr_wait_status("us-east-1        on       unhealthy");
    /* Route 53's rule: when every region is unhealthy, the primary. */
    tr_publish_expecting(10, "us-east-1");
    tr_assert_none_lost();
}

/* Events the failing region refused wait for a retry; when traffic moves
 * they go to the new region at once instead of waiting out a backoff meant
 * for the old one (here up to 30 s and more: wait_delivered gives each 20 s),
 * with the attempt spent on the old region given back. */
Test(failover, retries_follow_the_route_to_the_new_region) {
    tr_start("    retry_base_delay: 30s\n    retry_max_delay: 5m\n", NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    tr_fail("us-east-1", "retry");
    atomic_store(&tr_east.healthy, 0);
    int first = tr_published;
    for (int i = 0; i < 10; i++)
        tr_publish();
    /* One deadline for all ten: failover takes about 2 s here; a retry left
     * to its backoff would come after up to 30 s, 60 s, ... */
    int64_t end = tr_now_ms() + 12000;
    char got[64];
    for (int n = first; n < first + 10; n++) {
        do {
            tr_region_of(n, got, sizeof got);
        } while (!got[0] && tr_now_ms() < end && usleep(10000) == 0);
        cr_assert_str_eq(got, "us-west-2", "ev-%d (\"\": not delivered within 12 s)", n);
    }
    char out[8192];
    cr_assert_eq(tr_cli("dlq list", out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "no dead letters\n");
    tr_fail("us-east-1", NULL);
    tr_assert_none_lost();
}

Test(failover, manual_failback_waits_for_the_operator) {
    tr_start("    failback: manual\n    failback_hold: 0s\n", NULL, true);
    tr_fail_over_and_recover();
    tr_publish_expecting(10, "us-west-2");
    char out[4096];
    /* Failback needs the target fenced first, then moves it back. */
    cr_assert_neq(tr_cli("region failback -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "fence it first"), "%s", out);
    cr_assert_eq(tr_cli("region fence -t orders", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region failback -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "orders: fenced:active -> active"), "%s", out);
    tr_publish_until("us-east-1", tr_now_ms());
    tr_publish_expecting(10, "us-east-1");
    tr_assert_none_lost();
}

/* An accepted failback is stored with the application state in one commit
 * and handed to the selector once applied. evbusd stopping in between
 * (here: the stored request written into the state database while it is
 * stopped, as a crash would leave it) must not lose it: with failback:
 * manual nothing else would ever move the target back. It is applied at the
 * next start, once. */
Test(failover, a_failback_stored_but_not_applied_before_a_restart_is_applied_after_it) {
    tr_start("    failback: manual\n    failback_hold: 0s\n", NULL, true);
    tr_fail_over_and_recover();
    /* As a store of evbus 0.2 holds it: the time, no asker. */
    tr_restart_with_state("failback/orders", "1700000000000");
    tr_publish_expecting(3, "us-east-1");
    /* Applied once: a second restart does not apply it again. */
    cr_assert_eq(harness_stop(&tr_h), 0);
    cr_assert(harness_start(&tr_h), "log: %s", tr_h.log);
    tr_wait_status("us-east-1        on       healthy");
    static char log[8 << 20];
    harness_read_log(&tr_h, log, sizeof log);
    const char *first = strstr(log, "not applied then: applying it now");
    cr_assert(first, "%s", log);
    cr_assert_null(strstr(first + 1, "not applied then: applying it now"), "%s", log);
    tr_publish_expecting(2, "us-east-1");
    tr_assert_none_lost();
}

/* A manual failback while the primary is unhealthy would end the fence and
 * leave the target on the secondary for good: it is refused with why, the
 * target stays fenced, and the same command works once the primary is back. */
Test(failover, manual_failback_to_an_unhealthy_primary_is_refused_with_why) {
    tr_start("    failback: manual\n    failback_hold: 0s\n", NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    atomic_store(&tr_east.healthy, 0);
    tr_publish_until("us-west-2", tr_now_ms());
    tr_wait_status("us-east-1        on       unhealthy");
    char out[4096];
    cr_assert_eq(tr_cli("region fence -t orders", out, sizeof out), 0, "%s", out);
    cr_assert_neq(tr_cli("region failback -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "its primary us-east-1 is unhealthy; try again once it is healthy"), "%s",
              out);
    tr_wait_status("(held: fenced)");
    int held = tr_publish();
    atomic_store(&tr_east.healthy, 1);
    tr_wait_status("us-east-1        on       healthy");
    cr_assert_eq(tr_cli("region failback -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "orders: fenced:active -> active"), "%s", out);
    char got[64];
    tr_wait_delivered(held, got, sizeof got);
    cr_assert_str_eq(got, "us-east-1");
    tr_publish_expecting(5, "us-east-1");
    tr_assert_none_lost();
}

Test(failover, routing_control_moves_traffic_at_once_within_the_safety_rules) {
    tr_start(NULL, NULL, false);
    tr_publish_expecting(5, "us-east-1");
    char out[4096];
    int64_t t0 = tr_now_ms();
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    int64_t took = tr_publish_until("us-west-2", t0);
    printf("routing control flip: %lld ms to the first event in us-west-2\n", (long long)took);
    tr_publish_expecting(5, "us-west-2");

    /* The assertion rule: at least one region stays on, unless forced. */
    cr_assert_neq(tr_cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "refused by the assertion rule: at least 1 region(s) must stay on"), "%s",
              out);
    cr_assert_eq(tr_cli("region off us-west-2 --force", out, sizeof out), 0, "%s", out);
    tr_wait_status("(held: every region's control is off)");
    int held = tr_publish();
    cr_assert_eq(tr_cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    char got[64];
    tr_wait_delivered(held, got, sizeof got);
    cr_assert_str_eq(got, "us-east-1");
    tr_assert_none_lost();
}

/* The gating rule: a second routing control change within
 * routing_controls.wait_period is refused with why; after it, allowed. */
Test(failover, a_change_within_the_wait_period_is_refused_and_allowed_after_it) {
    tr_start(NULL, "routing_controls: {wait_period: 1500ms}\n", false);
    char out[4096];
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    int64_t t0 = tr_now_ms();
    tr_publish_until("us-west-2", t0);
    cr_assert_neq(tr_cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "refused by the gating rule: the last routing control change was"), "%s",
              out);
    cr_assert(strstr(out, "routing_controls.wait_period is 1500 ms"), "%s", out);
    tr_wait_status("us-east-1        off");
    /* Allowed once the period has passed: retried until then. */
    int64_t end = t0 + 10000;
    while (tr_cli("region on us-east-1", out, sizeof out) != 0) {
        cr_assert(strstr(out, "refused by the gating rule"), "%s", out);
        cr_assert_lt(tr_now_ms(), end, "still refused after 10 s: %s", out);
        usleep(50000);
    }
    cr_assert_geq(tr_now_ms() - t0, 1500 - 100, "allowed %lld ms after the change",
                  (long long)(tr_now_ms() - t0));
    tr_publish_until("us-east-1", tr_now_ms());
    tr_assert_none_lost();
}

Test(failover, fenced_holds_events_and_unfence_drains_them) {
    tr_start(NULL, NULL, false);
    char out[4096];
    cr_assert_neq(tr_cli("region failover -t orders", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "fence it first"), "%s", out);
    cr_assert_eq(tr_cli("region fence", out, sizeof out), 0, "%s", out);
    tr_wait_status("(held: fenced)");
    int first = tr_published;
    for (int i = 0; i < 10; i++)
        tr_publish();
    /* Nothing is dispatched while fenced: the status keeps them pending. */
    char st[16384];
    tr_cli("status", st, sizeof st);
    cr_assert(strstr(st, "orders                   test-sink-regions         10"), "%s", st);
    char got[64];
    tr_region_of(first, got, sizeof got);
    cr_assert_str_eq(got, "");
    /* fenced -> failover: the target leaves its primary. */
    cr_assert_eq(tr_cli("region failover", out, sizeof out), 0, "%s", out);
    for (int i = first; i < first + 10; i++) {
        tr_wait_delivered(i, got, sizeof got);
        cr_assert_str_eq(got, "us-west-2");
    }
    tr_assert_none_lost();
}

Test(failover, a_restart_in_the_middle_of_a_failover_keeps_it) {
    tr_start("    failback_hold: 60s\n", NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    atomic_store(&tr_east.healthy, 0);
    tr_publish_until("us-west-2", tr_now_ms());
    char out[4096];
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert_eq(harness_stop(&tr_h), 0);
    /* The primary is back, but the hold is not over: stay. */
    atomic_store(&tr_east.healthy, 1);
    evbus_client_destroy(&tr_client);
    cr_assert(harness_start(&tr_h), "log: %s", tr_h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    cr_assert_eq(evbus_client_new(tr_h.endpoint, &o, &tr_client), EVBUS_OK);
    tr_wait_status("us-east-1        off");
    tr_publish_expecting(10, "us-west-2");
    cr_assert_eq(tr_cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(5, "us-west-2");
    tr_assert_none_lost();
}

/* Waits until `evbus region status` shows target orders in application
 * state `state`, delivering to `route`, for exactly the reason `why`. */
static void wait_target(const char *state, const char *route, const char *why) {
    char line[512];
    snprintf(line, sizeof line, "%-24s %-10s %-28s %s\n", "orders", state, route, why);
    tr_wait_status(line);
}

/* The WHY of `evbus region status` is the current decision, always: not a
 * fail-open that has ended, not the selector's last reason while the
 * host's rules decide (fenced, a region switched off, every region off),
 * not "as before the restart" once the selector has looked again. */
Test(failover, the_why_in_status_is_the_current_decision) {
    tr_start("    failback_hold: 0s\n", NULL, true);
    wait_target("active", "us-east-1", "us-east-1, the first region of the order, is healthy");
    atomic_store(&tr_west.healthy, 0);
    tr_wait_status("us-west-2        on       unhealthy");
    atomic_store(&tr_east.healthy, 0);
    wait_target("active", "us-east-1", "no region healthy: failing open to us-east-1");
    char out[4096];
    cr_assert_eq(tr_cli("region fence -t orders", out, sizeof out), 0, "%s", out);
    wait_target("fenced", "(held: fenced)",
                "fenced: events are stored and wait for evbus region unfence, failover or "
                "failback");
    cr_assert_eq(tr_cli("region unfence -t orders", out, sizeof out), 0, "%s", out);
    wait_target("active", "us-east-1", "no region healthy: failing open to us-east-1");
    /* The fail-open ends with the primary's recovery; the route stays. */
    atomic_store(&tr_east.healthy, 1);
    wait_target("active", "us-east-1", "us-east-1, the first region of the order, is healthy");
    /* Off, with us-west-2 still unhealthy: the selector fails open to
     * us-east-1, and the host moves the target on, saying why. */
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    wait_target("active", "us-west-2",
                "us-east-1 is switched off: the next region of the target's order that is on");
    cr_assert_eq(tr_cli("region off us-west-2 --force", out, sizeof out), 0, "%s", out);
    wait_target("active", "(held: every region's control is off)",
                "every region of the target is switched off: events wait for evbus region on");
    cr_assert_eq(tr_cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region on us-west-2", out, sizeof out), 0, "%s", out);
    wait_target("active", "us-east-1", "us-east-1, the first region of the order, is healthy");
    /* A restart: the stored route comes back, and the selector says why. */
    atomic_store(&tr_west.healthy, 1);
    atomic_store(&tr_east.healthy, 0);
    wait_target("active", "us-west-2", "us-east-1 is unhealthy");
    cr_assert_eq(harness_stop(&tr_h), 0);
    cr_assert(harness_start(&tr_h), "log: %s", tr_h.log);
    wait_target("active", "us-west-2", "us-east-1 is unhealthy");
    evbus_client_destroy(&tr_client);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    cr_assert_eq(evbus_client_new(tr_h.endpoint, &o, &tr_client), EVBUS_OK);
    tr_publish_expecting(2, "us-west-2");
    tr_assert_none_lost();
}

/* Polls `evbus status` (up to 15 s) until it holds `want`; its text in out. */
static void wait_cli_status(const char *want, char *out, size_t len) {
    int64_t end = tr_now_ms() + 15000;
    do {
        cr_assert_eq(tr_cli("status", out, len), 0, "%s", out);
        if (strstr(out, want))
            return;
    } while (tr_now_ms() < end && usleep(100000) == 0);
    tr_dump(want);
    cr_assert_fail("`evbus status` never showed \"%s\":\n%s", want, out);
}

/* What `evbus status` says of a target fault after traffic moves: the
 * fault of us-east-1 is shown as us-east-1's, not as the target's fault now,
 * while us-west-2 (answering RETRY, which is no target fault) has not
 * delivered yet; its first delivery clears the line. */
Test(failover, status_attributes_a_fault_to_the_region_traffic_left) {
    tr_start("    retry_base_delay: 100ms\n    retry_max_delay: 300ms\n"
             "    retry_max_attempts: 1000\n",
             NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    tr_fail("us-east-1", "fault");
    tr_publish();
    char out[8192];
    wait_cli_status("orders: target fault (events are kept and retried): us-east-1: fault", out,
                    sizeof out);
    tr_fail("us-west-2", "retry");
    atomic_store(&tr_east.healthy, 0);
    wait_target("active", "us-west-2", "us-east-1 is unhealthy");
    /* us-west-2 has refused at least once since (the sink's line). */
    char path[400], line[512];
    snprintf(path, sizeof path, "%s/orders.txt", tr_h.dir);
    bool tried = false;
    for (int64_t end = tr_now_ms() + 15000; !tried && tr_now_ms() < end; usleep(50000)) {
        FILE *f = fopen(path, "r");
        while (f && !tried && fgets(line, sizeof line, f))
            tried = strncmp(line, "fail orders us-west-2 retry ", 28) == 0;
        if (f)
            fclose(f);
    }
    if (!tried)
        tr_dump("us-west-2 was never tried");
    cr_assert(tried, "us-west-2 was never tried");
    cr_assert_eq(tr_cli("status", out, sizeof out), 0, "%s", out);
    cr_assert_null(strstr(out, "orders: target fault"),
                   "us-east-1's fault shown as the target's after traffic left it:\n%s", out);
    cr_assert(strstr(out, "orders: delivers to us-west-2 now; the last target fault was in "
                          "us-east-1: fault\n"),
              "%s", out);
    /* The first delivery in us-west-2 clears it. */
    tr_fail("us-west-2", NULL);
    wait_cli_status("0 pending deliveries", out, sizeof out);
    cr_assert_null(strstr(out, "target fault"), "%s", out);
    tr_assert_none_lost();
}

Test(failover, a_selector_written_from_the_header_alone_is_followed) {
    char extra[512];
    snprintf(extra, sizeof extra, "selector: %s/test_selector.so\n", EVBUS_TEST_PLUGIN_DIR);
    tr_start(NULL, extra, false);
    tr_publish_expecting(5, "us-west-2");
    char out[4096];
    cr_assert_eq(tr_cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    tr_publish_until("us-east-1", tr_now_ms());
    tr_assert_none_lost();
}

Test(failover, selector_settings_are_checked_with_file_line_and_column) {
    harness_init(&tr_h, NULL);
    FILE *f = fopen(tr_h.config, "a");
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
             tr_h.config);
    cr_assert_neq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    /* The harness writes 8 lines before these. */
    const char *const want[] = {
        ":11:25: regions[0].health_check.url: 'ftp://x' is not an http://",
        ":11:59: regions[0].health_check.timeout: 2000ms is not shorter than the "
        "interval",
        ":17:14: targets[0].primary: 'eu-west-1' is not one of target 'orders''s "
        "regions",
        ":19:26: targets[0].weights.us-east-1: expected a weight from 0 to 255, "
        "got '300'",
        NULL};
    for (const char *const *w = want; *w; w++)
        cr_assert(strstr(out, *w), "wanted '%s' in:\n%s", *w, out);
}

/* Two regions whose health checks have the given urls, and a target in
 * both; asserts that --check-config fails and prints every line of `want`
 * (the harness writes 8 lines before these, so the urls are on lines 11
 * and 13). */
static void expect_url_errors(const char *east_url, const char *west_url, const char *const *want) {
    harness_init(&tr_h, NULL);
    FILE *f = fopen(tr_h.config, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "regions:\n"
            "  - name: us-east-1\n"
            "    health_check: {url: \"%s\"}\n"
            "  - name: us-west-2\n"
            "    health_check: {url: \"%s\"}\n"
            "targets:\n"
            "  - name: orders\n"
            "    plugin: %s/test_sink_regions.so\n"
            "    config: {path: x, queue_url: q}\n"
            "    regions:\n"
            "      us-east-1:\n"
            "      us-west-2:\n",
            east_url, west_url, EVBUS_TEST_PLUGIN_DIR);
    fclose(f);
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             tr_h.config);
    cr_assert_neq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    for (const char *const *w = want; *w; w++)
        cr_assert(strstr(out, *w), "wanted '%s' in:\n%s", *w, out);
}

Test(failover, a_health_check_port_out_of_range_is_refused_with_file_line_and_column) {
    const char *const want[] = {
        ":11:25: regions[0].health_check.url: 'http://127.0.0.1:99999/ok': port '99999' is not "
        "a number from 1 to 65535",
        ":13:25: regions[1].health_check.url: 'tcp://[::1]:0': port '0' is not a number from 1 "
        "to 65535",
        NULL};
    expect_url_errors("http://127.0.0.1:99999/ok", "tcp://[::1]:0", want);
}

/* A TCP check needs HOST:PORT and nothing after it: without a port the
 * region would be unhealthy for good, and a path would be ignored. */
Test(failover, a_tcp_health_check_without_a_port_or_with_a_path_is_refused) {
    const char *const want[] = {
        ":11:25: regions[0].health_check.url: 'tcp://127.0.0.1' is not tcp://HOST:PORT",
        ":13:25: regions[1].health_check.url: 'tcp://127.0.0.1:18812/some/path?x=1' is not "
        "tcp://HOST:PORT",
        NULL};
    expect_url_errors("tcp://127.0.0.1", "tcp://127.0.0.1:18812/some/path?x=1", want);
}

Test(failover, weighted_splits_exactly_and_skips_a_region_switched_off) {
    tr_start("    policy: weighted\n    weights: {us-east-1: 3, us-west-2: 1}\n", NULL, false);
    int east_n = 0, west_n = 0;
    int first = tr_published;
    for (int i = 0; i < 40; i++)
        tr_publish();
    for (int i = first; i < first + 40; i++) {
        char got[64];
        tr_wait_delivered(i, got, sizeof got);
        east_n += strcmp(got, "us-east-1") == 0;
        west_n += strcmp(got, "us-west-2") == 0;
    }
    cr_assert_eq(east_n, 30, "us-east-1 got %d of 40 (weights 3:1)", east_n);
    cr_assert_eq(west_n, 10, "us-west-2 got %d of 40 (weights 3:1)", west_n);
    char out[4096];
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    tr_publish_until("us-west-2", tr_now_ms());
    tr_publish_expecting(8, "us-west-2");
    tr_assert_none_lost();
}
