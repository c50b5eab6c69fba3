/* Failure modes of a region, end to end with the regions test sink (each
 * region's instance can be made to fail: tests/plugins/region_sink.c) and
 * passive health: a primary that hangs (in-flight calls time out and are
 * retried in the new region, neither lost nor stuck), and both regions
 * down (events wait durably, across a restart, and drain when one
 * returns). Each asserts no acked event is lost and where each landed.
 * (A primary answering 5xx or refusing connections: test_passive_health;
 * a failing health endpoint while the service still answers:
 * test_failover.) */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "two_regions.h"

TestSuite(failure_modes, .fini = tr_stop, .timeout = 180);

/* Attempts the sink log shows failing in `region`. */
static int failed_attempts(const char *region) {
    char path[400], line[512], want[80];
    snprintf(path, sizeof path, "%s/orders.txt", tr_h.dir);
    snprintf(want, sizeof want, "fail orders %s ", region);
    int n = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f))
        n += strncmp(line, want, strlen(want)) == 0;
    if (f)
        fclose(f);
    return n;
}

static void wait_failed(const char *region, int at_least) {
    int64_t end = tr_now_ms() + 15000;
    while (failed_attempts(region) < at_least && tr_now_ms() < end)
        usleep(20000);
    cr_assert_geq(failed_attempts(region), at_least, "%s", region);
}

Test(failure_modes, a_hanging_primary_times_out_and_its_events_are_retried_in_the_secondary) {
    tr_region_extra = "    passive_health: {window: 3s, min_failures: 2}\n";
    tr_start("    delivery_timeout: 1s\n    failback_hold: 60s\n    retry_base_delay: 50ms\n"
             "    retry_max_delay: 200ms\n",
             NULL, false);
    tr_publish_expecting(3, "us-east-1");
    tr_fail("us-east-1", "hang");
    int first = tr_published;
    for (int i = 0; i < 6; i++)
        tr_publish();
    /* Calls in flight to us-east-1 never answer: at delivery_timeout they
     * count as failures, the region turns unhealthy, and every event,
     * those that were in flight there included, lands in us-west-2. */
    for (int i = first; i < first + 6; i++) {
        char got[64];
        tr_wait_delivered(i, got, sizeof got);
        cr_assert_str_eq(got, "us-west-2", "ev-%d went to %s", i, got);
    }
    cr_assert_geq(failed_attempts("us-east-1"), 2, "the hung calls were made in us-east-1");
    tr_wait_status("us-east-1        on       unhealthy");
    tr_publish_expecting(5, "us-west-2");
    tr_assert_none_lost();
}

Test(failure_modes, both_regions_down_events_wait_durably_then_drain_when_one_returns) {
    tr_region_extra = "    passive_health: {window: 1s, min_failures: 2}\n";
    tr_start("    retry_base_delay: 50ms\n    retry_max_delay: 300ms\n", NULL, false);
    /* Target faults: retried without spending attempts, never dead letters. */
    tr_fail("us-east-1", "fault");
    tr_fail("us-west-2", "fault");
    int first = tr_published;
    for (int i = 0; i < 10; i++)
        tr_publish();
    wait_failed("us-east-1", 2);
    wait_failed("us-west-2", 2);
    char st[16384];
    tr_cli("status", st, sizeof st);
    cr_assert(strstr(st, "orders                   test-sink-regions         10"), "%s", st);
    /* They are durable: a restart keeps them waiting. */
    cr_assert_eq(harness_stop(&tr_h), 0);
    cr_assert(harness_start(&tr_h), "log: %s", tr_h.log);
    evbus_client_destroy(&tr_client);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(tr_h.endpoint, &o, &tr_client), EVBUS_OK);
    for (int i = first; i < first + 10; i++) {
        char got[64];
        tr_region_of(i, got, sizeof got);
        cr_assert_str_eq(got, "", "ev-%d delivered while both regions were down", i);
    }
    /* us-west-2 returns: everything drains there. */
    tr_fail("us-west-2", NULL);
    for (int i = first; i < first + 10; i++) {
        char got[64];
        tr_wait_delivered(i, got, sizeof got);
        cr_assert_str_eq(got, "us-west-2", "ev-%d went to %s", i, got);
    }
    tr_publish_expecting(5, "us-west-2");
    tr_assert_none_lost();
}
