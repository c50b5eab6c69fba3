/* Calculated health checks (Route 53's CALCULATED): us-east-1's health is
 * that of at least N of its child checks, each a simple check of its own.
 * The children are health endpoints this test switches; the test asserts
 * the region's health in `evbus region status` and where events go. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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

/* The line of `evbus region status` (in out) that starts with `start`,
 * copied into line; false when there is none. */
static bool status_line(const char *out, const char *start, char *line, size_t len) {
    for (const char *p = out; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
        if (strncmp(p, start, strlen(start)) != 0)
            continue;
        snprintf(line, len, "%.*s", (int)strcspn(p, "\n"), p);
        return true;
    }
    return false;
}

/* Child n's line under us-east-1: its url, then its own recent results. */
static bool child_line(const char *out, int n, char *line, size_t len) {
    char start[80];
    snprintf(start, sizeof start, "  %s://127.0.0.1:%d", n == 2 ? "tcp" : "http", tr_more[n].port);
    return status_line(out, start, line, len);
}

/* Waits until `evbus region status` shows child `n`'s last check failed. */
static void wait_child_failed(int n) {
    char out[16384], line[512] = "";
    int64_t end = tr_now_ms() + 15000;
    while (tr_now_ms() < end) {
        tr_cli("region status", out, sizeof out);
        if (child_line(out, n, line, sizeof line) && strstr(line, "(last: 503)"))
            return;
        usleep(50000);
    }
    cr_assert_fail("child %d never showed a failed check:\n%s", n, out);
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

/* `evbus region status` keeps each child's results apart, on a line of its
 * own labelled by its url, and the region's own line has the calculated
 * verdicts: a failing child's results never show among the others'. */
Test(calculated, status_shows_each_child_apart_and_the_calculated_verdict) {
    start_calculated("2");
    tr_wait_status("us-east-1        on       healthy");
    atomic_store(&tr_more[0].healthy, 0);
    wait_child_failed(0);
    /* Two failed checks of child 0, so that there are failures to mix up
     * if the lists were one. */
    char out[16384], line[512];
    int64_t end = tr_now_ms() + 15000;
    do {
        tr_cli("region status", out, sizeof out);
        cr_assert(child_line(out, 0, line, sizeof line), "no line for child 0:\n%s", out);
    } while (strstr(line, "- -") == NULL && tr_now_ms() < end && usleep(100000) == 0);
    cr_assert(strstr(line, "- -"), "child 0 should have failed twice:\n%s", out);
    for (int n = 1; n < 3; n++) {
        cr_assert(child_line(out, n, line, sizeof line), "no line for child %d:\n%s", n, out);
        cr_assert(!strchr(line + 2 + strcspn(line + 2, " "), '-'),
                  "child %d passes every check, yet its line shows a failure:\n%s", n, out);
        cr_assert(strstr(line, n == 2 ? "(last: connected)" : "(last: 200)"), "%s", out);
    }
    cr_assert(
        status_line(out, "us-east-1        on       healthy     calculated: ", line, sizeof line),
        "%s", out);
    cr_assert(strstr(line, "(last: 2 of 3 child checks healthy, at least 2)"), "%s", out);
    cr_assert(!strchr(line + strlen("us-east-1        on       healthy     calculated: "), '-'),
              "two of three children stay healthy: every verdict passes:\n%s", out);
    tr_assert_none_lost();
}
