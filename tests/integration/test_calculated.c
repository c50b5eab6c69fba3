/* Calculated health checks (Route 53's CALCULATED): us-east-1's health is
 * that of at least N of its child checks, each a simple check of its own.
 * The children are health endpoints this test switches; the test asserts
 * the region's health in `evbus region status` and where events go. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "two_regions.h"

TestSuite(calculated, .fini = tr_stop, .timeout = 120);

/* us-east-1 healthy while `at_least` of three children are; each child
 * flips on one result, so a change shows within about a second. */
static void start_calculated(const char *at_least) {
    static char check[512];
    snprintf(check, sizeof check,
             "    health_check:\n"
             "      interval: 1s\n"
             "      timeout: 500ms\n"
             "      failure_threshold: 1\n"
             "      recovery_threshold: 1\n"
             "      calculated:\n"
             "        at_least: %s\n"
             "        checks:\n"
             "          - {url: \"http://127.0.0.1:@P0@/ok\", match: \"OK\"}\n"
             "          - {url: \"http://127.0.0.1:@P1@/ok\"}\n"
             "          - {url: \"tcp://127.0.0.1:@P2@\", interval: 2s}\n",
             at_least);
    for (int i = 0; i < 3; i++)
        tr_serve(&tr_more[i]);
    tr_east_check = check;
    tr_start("    failback_hold: 0s\n", NULL, true);
}

/* Waits until `evbus region status` shows child `n` failing. */
static void wait_child_failed(int n) {
    char want[80];
    snprintf(want, sizeof want, "127.0.0.1:%d/ok: 503", tr_more[n].port);
    tr_wait_status(want);
}

Test(calculated, healthy_while_at_least_n_children_are) {
    start_calculated("2");
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(3, "us-east-1");

    /* One child down: two of three remain, the region stays healthy. */
    atomic_store(&tr_more[0].healthy, 0);
    wait_child_failed(0);
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(3, "us-east-1");

    /* A second one down: one of three, below at_least: traffic leaves. */
    int64_t t0 = tr_now_ms();
    atomic_store(&tr_more[1].healthy, 0);
    int64_t took = tr_publish_until("us-west-2", t0);
    cr_assert_leq(took, 3500, "failover took %lld ms", (long long)took);
    tr_wait_status("us-east-1        on       unhealthy");
    tr_publish_expecting(3, "us-west-2");

    /* One back: two of three again, healthy, and failback (hold 0s). */
    atomic_store(&tr_more[0].healthy, 1);
    tr_publish_until("us-east-1", tr_now_ms());
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(3, "us-east-1");
    tr_assert_none_lost();
}

/* at_least 0: always healthy, whatever the children say (Route 53). */
Test(calculated, at_least_zero_is_always_healthy) {
    start_calculated("0");
    for (int i = 0; i < 2; i++)
        atomic_store(&tr_more[i].healthy, 0);
    wait_child_failed(0);
    wait_child_failed(1);
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(3, "us-east-1");
    tr_assert_none_lost();
}

/* at_least above the number of children: never healthy, so traffic goes
 * to the secondary from the start, although every child passes. */
Test(calculated, at_least_above_the_children_is_never_healthy) {
    start_calculated("4");
    tr_wait_status("us-east-1        on       unhealthy");
    tr_publish_expecting(3, "us-west-2");
    tr_assert_none_lost();
}
