/* Policy home: an event goes to the region it came from (its
 * origin_region) while that region is healthy, else by the failover order.
 * Events of two origin regions, interleaved, through one target: each lands
 * in its own region; when one region fails, its events move to the other
 * and come back with it, while the other's never move. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "two_regions.h"

TestSuite(home_region, .fini = tr_stop, .timeout = 180);

/* Publishes `count` events alternately from us-east-1 and us-west-2 (the
 * first from `first_origin`), each expected in the region named by
 * want(origin). */
static void publish_pairs(int count, const char *east_goes_to, const char *west_goes_to) {
    int first = tr_published;
    for (int i = 0; i < count; i++)
        tr_publish_from(i % 2 ? "us-west-2" : "us-east-1");
    for (int i = 0; i < count; i++) {
        char got[64];
        const char *want = i % 2 ? west_goes_to : east_goes_to;
        tr_wait_delivered(first + i, got, sizeof got);
        cr_assert_str_eq(got, want, "ev-%d from %s went to %s, wanted %s", first + i,
                         i % 2 ? "us-west-2" : "us-east-1", got, want);
    }
}

Test(home_region, events_go_to_their_origin_region_while_it_is_healthy) {
    /* Several events per batch, so that one batch holds both origins. */
    tr_start("    policy: home\n    batch_max_events: 10\n    batch_linger: 50ms\n"
             "    failback_hold: 1s\n",
             NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    tr_wait_status("us-west-2        on       healthy");
    publish_pairs(20, "us-east-1", "us-west-2");
    /* From a region the target does not deliver to: the failover order. */
    int n = tr_publish_from("eu-west-1");
    char got[64];
    tr_wait_delivered(n, got, sizeof got);
    cr_assert_str_eq(got, "us-east-1");

    /* us-east-1 fails: its events go to us-west-2, us-west-2's stay. */
    atomic_store(&tr_east.healthy, 0);
    tr_wait_status("us-east-1        on       unhealthy");
    publish_pairs(10, "us-west-2", "us-west-2");
    /* us-east-1 is back: home again (after the recovery threshold). */
    atomic_store(&tr_east.healthy, 1);
    tr_wait_status("us-east-1        on       healthy");
    publish_pairs(10, "us-east-1", "us-west-2");

    /* us-west-2 switched off by its routing control: its events go to
     * us-east-1 at once. */
    char out[4096];
    cr_assert_eq(tr_cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    publish_pairs(10, "us-east-1", "us-east-1");
    tr_assert_none_lost();
}
