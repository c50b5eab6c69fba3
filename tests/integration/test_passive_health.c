/* Passive health: a region whose sink calls keep failing counts as
 * unhealthy even with no health check endpoint at all, so traffic moves to
 * the next region; the events that failed there are retried in the new
 * region (none lost), and traffic comes back once the region has been
 * quiet for a window (plus failback_hold). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "two_regions.h"

TestSuite(passive_health, .fini = tr_stop, .timeout = 180);

/* How many attempts the log of the regions sink shows failing in `region`;
 * `last_ms` (if not NULL) gets the CLOCK_MONOTONIC time of the last one. */
static int failed_attempts_at(const char *region, int64_t *last_ms) {
    char path[400], line[512], want[80];
    snprintf(path, sizeof path, "%s/orders.txt", tr_h.dir);
    snprintf(want, sizeof want, "fail orders %s ", region);
    int n = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, want, strlen(want)) != 0)
            continue;
        n++;
        const char *stamp = strrchr(line, ' ');
        if (last_ms && stamp)
            *last_ms = atoll(stamp + 1);
    }
    if (f)
        fclose(f);
    return n;
}

static int failed_attempts(const char *region) {
    return failed_attempts_at(region, NULL);
}

static void fails_over_and_back(const char *mode) {
    tr_region_extra = "    passive_health: {window: 2s, min_failures: 3}\n";
    tr_start("    failback_hold: 1s\n    retry_base_delay: 50ms\n    retry_max_delay: 200ms\n",
             NULL, false);
    tr_publish_expecting(5, "us-east-1");

    tr_fail("us-east-1", mode);
    int64_t t0 = tr_now_ms();
    int64_t took = tr_publish_until("us-west-2", t0);
    printf("passive health (%s): %lld ms from the first failure to an event in us-west-2\n", mode,
           (long long)took);
    cr_assert_geq(failed_attempts("us-east-1"), 3, "three failed calls make it unhealthy");
    tr_wait_status("us-east-1        on       unhealthy");
    int failed = failed_attempts("us-east-1");
    tr_publish_expecting(10, "us-west-2");
    cr_assert_eq(failed_attempts("us-east-1"), failed, "nothing more was sent to us-east-1");

    /* Repaired: after a quiet window (2 s from the last failed call) and
     * the hold (1 s), back. The window runs from that last failure, which
     * came before the repair by however long the publishing above took. */
    int64_t last_failure = 0;
    failed_attempts_at("us-east-1", &last_failure);
    cr_assert_gt(last_failure, 0, "the failed calls carry no time");
    tr_fail("us-east-1", NULL);
    took = tr_publish_until("us-east-1", last_failure);
    cr_assert_geq(took, 2000, "back %lld ms after the last failure: before the window passed",
                  (long long)took);
    tr_publish_expecting(5, "us-east-1");
    tr_assert_none_lost();
}

Test(passive_health, target_faults_without_any_health_check_move_traffic_to_the_secondary) {
    fails_over_and_back("fault");
}

Test(passive_health, retries_as_after_a_5xx_move_traffic_to_the_secondary) {
    fails_over_and_back("retry");
}
